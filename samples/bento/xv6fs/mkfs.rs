// SPDX-License-Identifier: GPL-2.0
//! Making a file system: the logic of `mkfs.xv6fs` (`bin/mkfs.rs` is its command line),
//! also used by the tests to make images in-process.

use bento::block::BlockDevice;
use bento::journal::Journal;
use bento::{Errno, Result, Timespec};

use crate::layout::{
    DirHeader, DiskInode, Superblock, BITS_PER_BLOCK, BLOCK_SIZE_U64, DIR_LEAF, INODE_SIZE,
    MIN_JOURNAL_BLOCKS, ROOT_INO, SUPERBLOCK_BLOCK,
};

/// What to make. [`Params::default`] picks the sizes from the device size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Inode numbers (`-N`); default a quarter of the blocks, 64 .. 2^24.
    pub inodes: Option<u32>,
    /// Journal blocks (`-J`); default 1/64 of the blocks, 1024 .. 32768.
    pub journal_blocks: Option<u32>,
    /// Label, NUL-padded (`-L`).
    pub label: [u8; 32],
    /// UUID (keys the directory hash and seeds the checksums): random in mkfs.xv6fs.
    pub uuid: [u8; 16],
    /// Creation time of the file system and its root directory.
    pub time: Timespec,
}

impl Params {
    /// The inode count and journal size used on a device of `nblocks` blocks.
    pub fn sizes(&self, nblocks: u32) -> (u32, u32) {
        let inodes = self.inodes.unwrap_or((nblocks / 4).clamp(64, 1 << 24));
        let journal = self
            .journal_blocks
            .unwrap_or((nblocks / 64).clamp(MIN_JOURNAL_BLOCKS, 32768));
        (inodes, journal)
    }

    /// The superblock `make` writes on a device of `nblocks` blocks, `None` if the
    /// sizes do not fit.
    pub fn plan(&self, nblocks: u32) -> Option<Superblock> {
        let (inodes, journal) = self.sizes(nblocks);
        let mut sb = Superblock::geometry(nblocks, inodes, journal)?;
        sb.uuid = self.uuid;
        sb.label = self.label;
        sb.mkfs_time = self.time.sec;
        Some(sb)
    }
}

/// Writes block `blk` as `f` fills it (zeroed first).
fn put(dev: &BlockDevice, blk: u64, f: impl FnOnce(&mut [u8]) -> Result) -> Result {
    let buf = dev.get(blk)?;
    {
        let mut g = buf.lock();
        g.fill(0);
        f(&mut g)?;
    }
    buf.mark_dirty();
    Ok(())
}

/// Sets bit `bit` of bitmap block `b`.
fn set_bit(b: &mut [u8], bit: u32) {
    if let Some(byte) = usize::try_from(bit / 8).ok().and_then(|i| b.get_mut(i)) {
        *byte |= 1 << (bit % 8);
    }
}

/// Makes an empty xv6fs on the whole of `dev` (its size in blocks, up to 2^32 - 1):
/// bitmaps, inode table with the root directory, journal, and the superblock last.
/// `EINVAL` if the device is too small for the sizes asked; returns the superblock.
pub fn make(dev: &BlockDevice, p: &Params) -> Result<Superblock> {
    let nblocks = u32::try_from(dev.nr_blocks()).unwrap_or(u32::MAX);
    let sb = p.plan(nblocks).ok_or(Errno::EINVAL)?;
    let seed = sb.csum_seed();
    // Inode bitmap: inode 0 (never used) and the root.
    for i in 0..sb.inode_bitmap_len {
        put(
            dev,
            u64::from(sb.inode_bitmap_start.saturating_add(i)),
            |b| {
                if i == 0 {
                    set_bit(b, 0);
                    set_bit(b, ROOT_INO);
                }
                Ok(())
            },
        )?;
    }
    // Block bitmap: the metadata blocks and the root directory's block are used; bits
    // past the end of the device are "used" so that they are never allocated.
    let used = sb.data_start.saturating_add(1);
    for i in 0..sb.block_bitmap_len {
        let first = i.saturating_mul(BITS_PER_BLOCK);
        put(
            dev,
            u64::from(sb.block_bitmap_start.saturating_add(i)),
            |b| {
                for bit in 0..BITS_PER_BLOCK {
                    let n = first.saturating_add(bit);
                    if n < used || n >= nblocks {
                        set_bit(b, bit);
                    }
                }
                Ok(())
            },
        )?;
    }
    // Inode table: zero (free inodes) but for the root directory.
    let root_dir_block = sb.data_start;
    let (root_blk, root_off) = sb.inode_location(ROOT_INO).ok_or(Errno::EINVAL)?;
    for i in 0..sb.inode_table_len {
        let blk = u64::from(sb.inode_table_start.saturating_add(i));
        put(dev, blk, |b| {
            if blk != root_blk {
                return Ok(());
            }
            let mut root = DiskInode {
                mode: 0o40755,
                nlink: 2,
                size: BLOCK_SIZE_U64,
                blocks: BLOCK_SIZE_U64 / 512,
                atime: p.time,
                mtime: p.time,
                ctime: p.time,
                crtime: p.time,
                ..DiskInode::default()
            };
            if let Some(a) = root.addrs.first_mut() {
                *a = root_dir_block;
            }
            let slot = b
                .get_mut(root_off..root_off.saturating_add(INODE_SIZE))
                .ok_or(Errno::EINVAL)?;
            root.encode(slot, ROOT_INO, seed)
        })?;
    }
    // The root directory: one empty leaf whose parent is itself.
    put(dev, u64::from(root_dir_block), |b| {
        DirHeader {
            kind: DIR_LEAF,
            parent: ROOT_INO,
            ..DirHeader::default()
        }
        .encode(b)?;
        DirHeader::seal(b, ROOT_INO, seed)
    })?;
    Journal::format(
        dev,
        u64::from(sb.journal_start),
        u64::from(sb.journal_len),
        sb.uuid,
    )?;
    // The superblock last: until it is written, this is not an xv6fs.
    put(dev, SUPERBLOCK_BLOCK, |b| sb.encode(b))?;
    put(dev, 0, |_| Ok(()))?;
    dev.sync()?;
    Ok(sb)
}
