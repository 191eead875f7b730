// SPDX-License-Identifier: GPL-2.0
//! Live upgrade: the blob one version of xv6fs hands the next (`export_state` /
//! `import_state` in `fs.rs`).
//!
//! The device and the journal cross as handles (`bento::upgrade::Handover`). The blob
//! carries what lives only in memory ([`State`]), so that the new version neither
//! rescans the bitmaps nor walks the orphan list, and the superblock as the old version
//! holds it (decoded and checked again), so that the new version reads nothing from the
//! device: a block being written back (the superblock, the root's inode block: hot
//! under load) would make it wait for the I/O while every call of the mount is held.
//! State format [`STATE_VERSION`], every field a little-endian `u32`:
//!
//! | offset | field |
//! |---|---|
//! | 0 | [`STATE_MAGIC`] (`"xv6u"`) |
//! | 4 | length of the blob in bytes: [`HEADER_LEN`] + 4 × orphan count |
//! | 8 | flags: [`FLAG_ORPHANS_LOADED`] (the orphan set was read from the disk) |
//! | 12 | blocks in the file system (checked against the superblock) |
//! | 16 | inodes in the file system (checked against the superblock) |
//! | 20 | orphan list head (checked against the superblock) |
//! | 24 | generation of the next new inode |
//! | 28 | block bitmap: free blocks |
//! | 32 | block bitmap: search hint |
//! | 36 | inode bitmap: free inodes |
//! | 40 | inode bitmap: search hint |
//! | 44 | orphan count |
//! | 48 | the orphan inode numbers, ascending, 4 bytes each |
//! | 48 + 4 × count | the superblock, [`SB_BYTES`] bytes in its on-disk encoding (with the orphan head above) |
//!
//! A blob that does not fit the superblock (wrong magic or length, a value out of range)
//! is refused with `EINVAL` and a log line: the old version then keeps the mount.

use bento::bytes::{Reader, Writer};
use bento::collections::BTreeMap;
use bento::upgrade::Handover;
use bento::{Errno, Result};

use crate::alloc::Bitmap;
use crate::fs::{Link, Orphans, State, BLOCK_BITMAP, FIRST_INODE, INODE_BITMAP};
use crate::layout::Superblock;

/// The state format written here (`FileSystem::STATE_VERSION`).
pub const STATE_VERSION: u32 = 1;
/// First field of the blob: the bytes `x v 6 u`.
pub const STATE_MAGIC: u32 = 0x7536_7678;
/// Bytes before the orphan inode numbers.
pub const HEADER_LEN: usize = 48;
/// Bytes of the encoded superblock at the end of the blob.
pub const SB_BYTES: usize = 256;
/// Flag: the orphan set was read from the disk (the mount has been read-write).
pub const FLAG_ORPHANS_LOADED: u32 = 1;

/// Offsets of the fields (see the module documentation).
pub mod off {
    /// [`super::STATE_MAGIC`].
    pub const MAGIC: usize = 0;
    /// Length of the blob.
    pub const LEN: usize = 4;
    /// Flags.
    pub const FLAGS: usize = 8;
    /// Blocks in the file system.
    pub const NBLOCKS: usize = 12;
    /// Inodes in the file system.
    pub const NINODES: usize = 16;
    /// Orphan list head.
    pub const ORPHAN_HEAD: usize = 20;
    /// Next generation.
    pub const GENERATION: usize = 24;
    /// Free blocks.
    pub const BLOCKS_FREE: usize = 28;
    /// Block search hint.
    pub const BLOCKS_HINT: usize = 32;
    /// Free inodes.
    pub const INODES_FREE: usize = 36;
    /// Inode search hint.
    pub const INODES_HINT: usize = 40;
    /// Orphan count.
    pub const ORPHAN_COUNT: usize = 44;
}

/// Where the superblock starts in a blob with `count` orphans.
fn sb_offset(count: usize) -> Option<usize> {
    count.checked_mul(4)?.checked_add(HEADER_LEN)
}

/// The blob's length for `count` orphans.
fn blob_len(count: usize) -> Option<usize> {
    sb_offset(count)?.checked_add(SB_BYTES)
}

/// Logs why a blob is refused; returns `EINVAL`.
fn bad(what: core::fmt::Arguments<'_>) -> Errno {
    bento::error!("xv6fs: upgrade state refused: {}", what);
    Errno::EINVAL
}

/// Writes `st` (of the file system described by `sb`) into `state`'s blob.
pub(crate) fn encode(st: &State, sb: &Superblock, state: &mut Handover) -> Result {
    let orphans = st.orphans.lock();
    let (blocks, inodes) = {
        let (b, i) = (st.blocks.lock(), st.inodes.lock());
        ((b.free(), b.hint()), (i.free(), i.hint()))
    };
    let count = orphans.set.len();
    let len = blob_len(count).ok_or(Errno::ENOMEM)?;
    let (len32, count32) = match (u32::try_from(len), u32::try_from(count)) {
        (Ok(l), Ok(c)) => (l, c),
        _ => return Err(Errno::ENOMEM),
    };
    let blob = state.blob_mut(len)?;
    let mut w = Writer::new(blob);
    w.u32(off::MAGIC, STATE_MAGIC);
    w.u32(off::LEN, len32);
    w.u32(
        off::FLAGS,
        if orphans.loaded {
            FLAG_ORPHANS_LOADED
        } else {
            0
        },
    );
    w.u32(off::NBLOCKS, sb.nblocks);
    w.u32(off::NINODES, sb.ninodes);
    w.u32(off::ORPHAN_HEAD, orphans.head);
    w.u32(
        off::GENERATION,
        st.generation.load(core::sync::atomic::Ordering::Relaxed),
    );
    w.u32(off::BLOCKS_FREE, blocks.0);
    w.u32(off::BLOCKS_HINT, blocks.1);
    w.u32(off::INODES_FREE, inodes.0);
    w.u32(off::INODES_HINT, inodes.1);
    w.u32(off::ORPHAN_COUNT, count32);
    let mut at = HEADER_LEN;
    for &ino in orphans.set.keys() {
        w.u32(at, ino);
        at = at.saturating_add(4);
    }
    w.finish()?;
    let mut current = sb.clone();
    current.orphan_head = orphans.head;
    current.encode(blob.get_mut(at..).ok_or(Errno::EINVAL)?)
}

/// The state and the superblock in `blob`.
pub(crate) fn decode(blob: &[u8]) -> Result<(State, Superblock)> {
    let r = Reader::new(blob);
    let magic = r.u32(off::MAGIC);
    let len = r.u32(off::LEN);
    let count = r.u32(off::ORPHAN_COUNT);
    if r.finish().is_err() || magic != STATE_MAGIC {
        return Err(bad(format_args!(
            "not an xv6fs state ({} bytes, magic {magic:#x})",
            blob.len()
        )));
    }
    let expected = usize::try_from(count).ok().and_then(blob_len);
    if usize::try_from(len).ok() != Some(blob.len()) || expected != Some(blob.len()) {
        return Err(bad(format_args!(
            "{} bytes, length field {len}, {count} orphans",
            blob.len()
        )));
    }
    let sb = usize::try_from(count)
        .ok()
        .and_then(sb_offset)
        .and_then(|at| blob.get(at..))
        .ok_or_else(|| bad(format_args!("no superblock")))
        .and_then(|b| {
            Superblock::decode(b).map_err(|e| bad(format_args!("bad superblock ({e})")))
        })?;
    let sb = &sb;
    let flags = r.u32(off::FLAGS);
    if flags & !FLAG_ORPHANS_LOADED != 0 {
        return Err(bad(format_args!("unknown flags {flags:#x}")));
    }
    let loaded = flags & FLAG_ORPHANS_LOADED != 0;
    let (nblocks, ninodes) = (r.u32(off::NBLOCKS), r.u32(off::NINODES));
    if (nblocks, ninodes) != (sb.nblocks, sb.ninodes) {
        return Err(bad(format_args!(
            "made for {nblocks} blocks and {ninodes} inodes, the file system has {} and {}",
            sb.nblocks, sb.ninodes
        )));
    }
    let head = r.u32(off::ORPHAN_HEAD);
    if head != sb.orphan_head {
        return Err(bad(format_args!(
            "orphan list head {head}, the superblock says {}",
            sb.orphan_head
        )));
    }
    if !loaded && count != 0 {
        return Err(bad(format_args!("{count} orphans, but none were loaded")));
    }
    let mut orphans = BTreeMap::new();
    let mut prev = 0u32;
    for i in 0..count {
        let at = usize::try_from(i)
            .ok()
            .and_then(|i| i.checked_mul(4))
            .and_then(|o| o.checked_add(HEADER_LEN))
            .ok_or(Errno::EINVAL)?;
        let ino = r.u32(at);
        if ino <= prev || ino < FIRST_INODE || ino >= ninodes {
            return Err(bad(format_args!(
                "orphan {ino} (after {prev}; inodes {FIRST_INODE}..{ninodes})"
            )));
        }
        // (Linked from the disk at the list's first change: `Xv6Fs::link_orphans`.)
        orphans.insert(ino, Link::default())?;
        prev = ino;
    }
    // A loaded set holds every inode on the list: the head too, and none without one.
    if loaded
        && if head == 0 {
            count != 0
        } else {
            !orphans.contains_key(&head)
        }
    {
        return Err(bad(format_args!(
            "orphan list head {head} and the {count} orphans disagree"
        )));
    }
    let blocks = Bitmap::with_counts(
        sb.block_bitmap_start,
        sb.nblocks,
        sb.data_start,
        r.u32(off::BLOCKS_FREE),
        r.u32(off::BLOCKS_HINT),
        BLOCK_BITMAP,
    )?;
    let inodes = Bitmap::with_counts(
        sb.inode_bitmap_start,
        sb.ninodes,
        FIRST_INODE,
        r.u32(off::INODES_FREE),
        r.u32(off::INODES_HINT),
        INODE_BITMAP,
    )?;
    let generation = r.u32(off::GENERATION);
    r.finish().map_err(|_| bad(format_args!("truncated")))?;
    Ok((
        State::new(
            blocks,
            inodes,
            Orphans {
                head,
                linked: orphans.is_empty(),
                set: orphans,
                // Not handed over: the new version walks (`setattr`).
                ahead: BTreeMap::new(),
                loaded,
            },
            generation,
        )?,
        sb.clone(),
    ))
}
