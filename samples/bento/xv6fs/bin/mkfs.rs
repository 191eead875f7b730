// SPDX-License-Identifier: GPL-2.0
//! `mkfs.xv6fs`: makes an xv6fs file system on a device or image file. (Cargo builds it
//! as `mkfs-xv6fs`, since crate names cannot hold a dot; `make fuse` links the usual name.)
//!
//! ```text
//! mkfs.xv6fs [-s SIZE] [-N INODES] [-J JOURNAL_BLOCKS] [-L LABEL] [-q] DEVICE
//! ```
//! `-s` creates or resizes an image file (suffixes K, M, G, T).

use std::fs::OpenOptions;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bento::block::BlockDevice;
use bento::journal::Journal;
use xv6fs::layout::{
    DirHeader, DiskInode, Superblock, BLOCK_SIZE, BLOCK_SIZE_U64, DIR_LEAF, INODE_SIZE,
    MIN_JOURNAL_BLOCKS, ROOT_INO, SUPERBLOCK_BLOCK,
};

struct Opts {
    device: PathBuf,
    size: Option<u64>,
    inodes: Option<u32>,
    journal: Option<u32>,
    label: String,
    quiet: bool,
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        (i, 'T' | 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        device: PathBuf::new(),
        size: None,
        inodes: None,
        journal: None,
        label: String::new(),
        quiet: false,
    };
    let mut device = None;
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-s" => o.size = Some(parse_size(&val("-s")?).ok_or("bad size")?),
            "-N" => o.inodes = Some(val("-N")?.parse().map_err(|_| "bad inode count")?),
            "-J" => o.journal = Some(val("-J")?.parse().map_err(|_| "bad journal size")?),
            "-L" => o.label = val("-L")?,
            "-q" => o.quiet = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if device.is_some() => return Err("more than one device".into()),
            _ => device = Some(PathBuf::from(a)),
        }
    }
    o.device = device.ok_or("no device given")?;
    if o.label.len() > 32 {
        return Err("label longer than 32 bytes".into());
    }
    Ok(o)
}

fn uuid() -> std::io::Result<[u8; 16]> {
    let mut u = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut u)?;
    Ok(u)
}

/// Writes `f(bytes)` to block `blk` (zeroed first).
fn put(dev: &BlockDevice, blk: u64, f: impl FnOnce(&mut [u8]) -> bento::Result) -> bento::Result {
    let buf = dev.get(blk)?;
    {
        let mut g = buf.lock();
        g.fill(0);
        f(&mut g)?;
    }
    buf.mark_dirty();
    Ok(())
}

fn set_bits(b: &mut [u8], bits: impl Iterator<Item = u32>) {
    for bit in bits {
        if let Some(byte) = b.get_mut((bit / 8) as usize) {
            *byte |= 1 << (bit % 8);
        }
    }
}

fn mkfs(o: &Opts) -> Result<Superblock, String> {
    if let Some(size) = o.size {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&o.device)
            .map_err(|e| e.to_string())?;
        f.set_len(size).map_err(|e| e.to_string())?;
    }
    let dev =
        BlockDevice::open(&o.device, false, BLOCK_SIZE).map_err(|e| format!("cannot open: {e}"))?;
    let nblocks = u32::try_from(dev.nr_blocks()).unwrap_or(u32::MAX);
    let ninodes = o.inodes.unwrap_or((nblocks / 4).clamp(64, 1 << 24));
    let journal = o
        .journal
        .unwrap_or((nblocks / 64).clamp(MIN_JOURNAL_BLOCKS, 32768));
    let mut sb = Superblock::geometry(nblocks, ninodes, journal).ok_or(format!(
        "{nblocks} blocks are too few for {ninodes} inodes and a {journal}-block journal"
    ))?;
    sb.uuid = uuid().map_err(|e| e.to_string())?;
    for (d, s) in sb.label.iter_mut().zip(o.label.bytes()) {
        *d = s;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    sb.mkfs_time = i64::try_from(now.as_secs()).unwrap_or(0);
    let seed = sb.csum_seed();
    let e = |e: bento::Errno| e.to_string();

    // Inode bitmap: inode 0 (never used) and the root.
    for i in 0..sb.inode_bitmap_len {
        put(&dev, u64::from(sb.inode_bitmap_start + i), |b| {
            if i == 0 {
                set_bits(b, [0, ROOT_INO].into_iter());
            }
            Ok(())
        })
        .map_err(e)?;
    }
    // Block bitmap: all metadata blocks and the root directory's block.
    let used = sb.data_start + 1;
    for i in 0..sb.block_bitmap_len {
        let first = i * 8 * BLOCK_SIZE as u32;
        put(&dev, u64::from(sb.block_bitmap_start + i), |b| {
            set_bits(
                b,
                (first..used.max(first))
                    .map(|n| n - first)
                    .take(8 * BLOCK_SIZE),
            );
            // Bits past the end of the device are "used" so they are never allocated.
            let end = nblocks.saturating_sub(first);
            set_bits(
                b,
                (end..8 * BLOCK_SIZE as u32).filter(|_| end < 8 * BLOCK_SIZE as u32),
            );
            Ok(())
        })
        .map_err(e)?;
    }
    // Inode table: zero (free inodes), with the root directory.
    let root_dir_block = sb.data_start;
    for i in 0..sb.inode_table_len {
        put(&dev, u64::from(sb.inode_table_start + i), |b| {
            if i == 0 {
                let t = bento::Timespec::new(sb.mkfs_time, now.subsec_nanos());
                let mut root = DiskInode {
                    mode: 0o40755,
                    nlink: 2,
                    size: BLOCK_SIZE_U64,
                    blocks: BLOCK_SIZE_U64 / 512,
                    atime: t,
                    mtime: t,
                    ctime: t,
                    crtime: t,
                    ..DiskInode::default()
                };
                root.addrs[0] = root_dir_block;
                let off = ROOT_INO as usize * INODE_SIZE;
                root.encode(&mut b[off..off + INODE_SIZE], ROOT_INO, seed)?;
            }
            Ok(())
        })
        .map_err(e)?;
    }
    // The root directory: one empty leaf whose parent is itself.
    put(&dev, u64::from(root_dir_block), |b| {
        DirHeader {
            kind: DIR_LEAF,
            parent: ROOT_INO,
            ..DirHeader::default()
        }
        .encode(b)?;
        DirHeader::seal(b, ROOT_INO, seed)
    })
    .map_err(e)?;
    Journal::format(
        &dev,
        u64::from(sb.journal_start),
        u64::from(sb.journal_len),
        sb.uuid,
    )
    .map_err(e)?;
    // The superblock last: until it is written, this is not an xv6fs.
    put(&dev, SUPERBLOCK_BLOCK, |b| sb.encode(b)).map_err(e)?;
    put(&dev, 0, |_| Ok(())).map_err(e)?;
    dev.sync().map_err(e)?;
    Ok(sb)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("mkfs.xv6fs: {msg}\nusage: mkfs.xv6fs [-s SIZE] [-N INODES] [-J JOURNAL_BLOCKS] [-L LABEL] [-q] DEVICE");
            return ExitCode::from(2);
        }
    };
    match mkfs(&o) {
        Ok(sb) => {
            if !o.quiet {
                println!(
                    "{}: xv6fs, {} blocks of {} bytes, {} inodes, journal {} blocks, data from block {}",
                    o.device.display(),
                    sb.nblocks,
                    BLOCK_SIZE,
                    sb.ninodes,
                    sb.journal_len,
                    sb.data_start
                );
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("mkfs.xv6fs: {}: {msg}", o.device.display());
            ExitCode::FAILURE
        }
    }
}
