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
use xv6fs::layout::{Superblock, BLOCK_SIZE};
use xv6fs::mkfs::{make, Params};

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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let mut p = Params {
        inodes: o.inodes,
        journal_blocks: o.journal,
        uuid: uuid().map_err(|e| e.to_string())?,
        time: bento::Timespec::new(
            i64::try_from(now.as_secs()).unwrap_or(0),
            now.subsec_nanos(),
        ),
        ..Params::default()
    };
    for (d, s) in p.label.iter_mut().zip(o.label.bytes()) {
        *d = s;
    }
    let nblocks = u32::try_from(dev.nr_blocks()).unwrap_or(u32::MAX);
    if p.plan(nblocks).is_none() {
        let (ninodes, journal) = p.sizes(nblocks);
        return Err(format!(
            "{nblocks} blocks are too few for {ninodes} inodes and a {journal}-block journal"
        ));
    }
    make(&dev, &p).map_err(|e| e.to_string())
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
