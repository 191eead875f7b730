// SPDX-License-Identifier: GPL-2.0
//! Inodes: reading and writing them, mapping file blocks to disk blocks (12 direct,
//! single, double and triple indirect pointers), allocating runs of data blocks for
//! `map_blocks`, and freeing blocks on truncate.
//!
//! Which blocks are metadata: indirect blocks, and every block of a directory or of a
//! symlink (changed through the journal). They are revoked when freed, so that neither
//! journal replay nor the checkpoint of an older logged copy can overwrite the block's
//! next owner. Data blocks of regular files are never read or written here: the
//! framework moves file data (see `FileSystem::map_blocks`).

use bento::block::Buffer;
use bento::journal::Handle;
use bento::{Attr, Errno, FileType, Result};

use crate::fs::{State, Xv6Fs};
use crate::layout::{
    corrupt, DiskInode, INODES_PER_BLOCK, INODE_SIZE, MAX_FILE_BLOCKS, NDIRECT, PTRS_PER_BLOCK,
    UNWRITTEN,
};

/// Blocks a truncate frees per transaction (keeps each one small).
pub const FREE_BUDGET: u32 = 8192;

/// Revoke records a truncate uses per transaction: its handle must be started with at
/// least this many (`Journal::start_with_revokes`).
pub const REVOKE_BUDGET: u32 = 64;

/// Journal credits a truncation keeps in hand while it frees blocks: freeing one
/// changes its bitmap block and the block holding its pointer (2), and the end of the
/// transaction may write the inode, take it off the orphan list (the superblock or the
/// previous orphan) and free its xattr block and number (two bitmap blocks): 2 + 4,
/// rounded up.
const FREE_RESERVE: u32 = 8;

/// Journal credits of one `map_blocks` allocation (one [`Xv6Fs::alloc_run`]), at most:
/// the indirect blocks on the path to the run, each created or given a new pointer (3,
/// for a triple indirect path), the bitmap blocks the new indirect blocks and the run
/// come from (3 + 1: a run lies within one bitmap block) and the inode. A run lies within
/// one indirect block (or the direct pointers), so its length does not matter.
pub const ALLOC_CREDITS: u32 = 3 + 4 + 1;

/// Journal credits of a `map_blocks` call: [`ALLOC_CREDITS`], and 1 more for a run
/// wholly past the file's size, which puts the file on the orphan list (the superblock,
/// or the inode's block again).
pub const MAP_CREDITS: u32 = ALLOC_CREDITS + 1;

/// What one transaction may still free.
struct Budget {
    blocks: u32,
    revokes: u32,
    /// A block was left because of the budget or the handle's credits.
    starved: bool,
}

impl Budget {
    /// Whether a block (`meta`: one that needs a revoke) may still be freed in `h`.
    fn allows(&mut self, h: &Handle<'_>, meta: bool) -> bool {
        self.allows_keeping(h, meta, FREE_RESERVE)
    }

    /// Whether a data block may still be freed in `h` as part of a run freed later
    /// ([`Xv6Fs::trim_data_leaf`]): the run's own changes (at most two bitmap blocks
    /// and the leaf) come on top of the reserve.
    fn allows_in_run(&mut self, h: &Handle<'_>) -> bool {
        self.allows_keeping(h, false, FREE_RESERVE.saturating_add(3))
    }

    /// [`Budget::allows`] with `reserve` credits kept in hand.
    fn allows_keeping(&mut self, h: &Handle<'_>, meta: bool, reserve: u32) -> bool {
        let ok = self.blocks > 0 && (!meta || self.revokes > 0) && h.credits_left() >= reserve;
        self.starved |= !ok;
        ok
    }

    fn take(&mut self, meta: bool) {
        self.blocks = self.blocks.saturating_sub(1);
        if meta {
            self.revokes = self.revokes.saturating_sub(1);
        }
    }

    fn exhausted(&self) -> bool {
        self.starved || self.blocks == 0 || self.revokes == 0
    }
}

/// Where the pointer to a file block lives.
enum Leaf {
    /// In the inode's direct pointers, at this slot.
    Direct(usize),
    /// In indirect block `blk`, at index `idx`.
    Indirect { blk: u32, idx: u64 },
    /// Nowhere: an indirect block above it is missing; the hole spans this many blocks
    /// from the one asked for.
    Hole(u64),
}

/// A run of file blocks ([`Xv6Fs::lookup_run`]): contiguous disk blocks, all written
/// or all unwritten, or a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// The first disk block; 0 for a hole.
    pub(crate) block: u32,
    /// Blocks in the run (at least 1).
    pub(crate) len: u64,
    /// Allocated but never written (`fallocate`): reads as zeros.
    pub(crate) unwritten: bool,
}

impl Run {
    /// Whether the run holds file data (written blocks): what reads see.
    pub(crate) fn is_data(&self) -> bool {
        self.block != 0 && !self.unwritten
    }
}

/// 512-byte units per block.
const SECTORS_PER_BLOCK: u64 = 8;

/// Leaves read ahead together ([`Xv6Fs::find_leaf`]): an aligned group of 8 maps 32 MiB.
const LEAF_READAHEAD: u64 = 8;

/// Which leaves to read ahead (the first pointer and how many, in the parent indirect
/// block) when a lookup is at pointer `in_leaf` of leaf `leaf`. A sequential read or
/// write needs the next leaf soon: in the last quarter of a leaf, start reading the
/// next one rather than stall on it then. If it starts an aligned group of leaves,
/// read the whole group, which the metadata zones keep side by side on the disk: one
/// request per group, whose other leaves are then found read (not asked for again,
/// which costs a cache lookup each). A walk that starts at the head of a group (the
/// first leaf) reads that group with it.
fn leaves_ahead(leaf: u64, in_leaf: u64) -> Option<(u64, u64)> {
    let quarter = PTRS_PER_BLOCK / 4;
    if in_leaf >= PTRS_PER_BLOCK.saturating_sub(quarter) {
        let next = leaf.saturating_add(1);
        let group_head = next % LEAF_READAHEAD == 0;
        Some((next, if group_head { LEAF_READAHEAD } else { 1 }))
    } else if in_leaf < quarter && leaf % LEAF_READAHEAD == 0 {
        Some((leaf, LEAF_READAHEAD))
    } else {
        None
    }
}

/// Where file block `fblk` hangs: the inode slot and the indices below it.
fn path(fblk: u64) -> Result<(usize, usize, [u64; 3])> {
    let mut rest = fblk;
    if rest < NDIRECT as u64 {
        return Ok((usize::try_from(rest).map_err(|_| Errno::EFBIG)?, 0, [0; 3]));
    }
    rest = rest.saturating_sub(NDIRECT as u64);
    let mut span = PTRS_PER_BLOCK;
    for level in 1..=3usize {
        if rest < span {
            let mut idx = [0u64; 3];
            let mut r = rest;
            for slot in (0..level).rev() {
                if let Some(x) = idx.get_mut(slot) {
                    *x = r % PTRS_PER_BLOCK;
                }
                r /= PTRS_PER_BLOCK;
            }
            return Ok((NDIRECT.saturating_add(level).saturating_sub(1), level, idx));
        }
        rest = rest.saturating_sub(span);
        span = span.saturating_mul(PTRS_PER_BLOCK);
    }
    Err(Errno::EFBIG)
}

fn ptr_at(b: &[u8], i: u64) -> u32 {
    let off = usize::try_from(i).unwrap_or(usize::MAX).saturating_mul(4);
    bento::bytes::Reader::new(b).u32(off)
}

fn set_ptr(b: &mut [u8], i: u64, v: u32) {
    let off = usize::try_from(i).unwrap_or(usize::MAX).saturating_mul(4);
    bento::bytes::Writer::new(b).u32(off, v);
}

impl Xv6Fs {
    /// Reads inode `ino` (`ESTALE` if it is free: the kernel's handle outlived it).
    pub(crate) fn iget(&self, ino: u32) -> Result<DiskInode> {
        let inode = self.iread(ino)?;
        if inode.mode == 0 {
            return Err(Errno::ESTALE);
        }
        Ok(inode)
    }

    /// Reads inode `ino`, free or not.
    pub(crate) fn iread(&self, ino: u32) -> Result<DiskInode> {
        let (blk, off) = self.sb.inode_location(ino).ok_or(Errno::ESTALE)?;
        let buf = self.dev.read(blk)?;
        let g = buf.lock();
        let checked = self.inode_block_checked(&buf, blk, &g);
        let bytes = g
            .get(off..off.saturating_add(INODE_SIZE))
            .ok_or(Errno::EIO)?;
        self.decode_inode(bytes, ino, checked)
    }

    /// Inode `ino` from its bytes, its checksum checked unless `checked` says its
    /// block's were.
    fn decode_inode(&self, b: &[u8], ino: u32, checked: bool) -> Result<DiskInode> {
        if checked {
            DiskInode::parse(b, ino)
        } else {
            DiskInode::decode(b, ino, self.seed)
        }
    }

    /// Whether the checksums of every inode of inode table block `blk` (bytes `b`,
    /// locked) are right, checked once per read from the disk (the buffer's verified
    /// mark, as for directory blocks): an operation reads several inodes, some more than
    /// once. A block with a bad inode stays unmarked, so each read checks its inode. The
    /// file system's own writes keep the checksums right.
    fn inode_block_checked(&self, buf: &Buffer, blk: u64, b: &[u8]) -> bool {
        if buf.verified() {
            return true;
        }
        let Some(first) = blk
            .checked_sub(u64::from(self.sb.inode_table_start))
            .and_then(|i| i.checked_mul(u64::from(INODES_PER_BLOCK)))
        else {
            return false;
        };
        let ok =
            b.chunks_exact(INODE_SIZE)
                .zip(first..)
                .all(|(slot, ino)| match u32::try_from(ino) {
                    // Inode 0 and those past the last are never read.
                    Ok(ino) if ino != 0 && ino < self.sb.ninodes => {
                        DiskInode::check_sum(slot, ino, self.seed).is_ok()
                    }
                    _ => true,
                });
        if ok {
            buf.set_verified();
        }
        ok
    }

    /// Writes inode `ino` in transaction `h`, except its orphan link (`orphan_next`),
    /// which keeps the value on disk: the link belongs to the orphan list and its lock,
    /// not to the inode's ([`Xv6Fs::set_orphan_link`]), so a thread changing the list
    /// and one changing the inode never undo each other's write.
    pub(crate) fn iput(&self, h: &Handle<'_>, ino: u32, inode: &DiskInode) -> Result {
        self.write_inode(h, ino, false, |slot| {
            inode.encode_keep_link(slot, ino, self.seed)
        })
    }

    /// Writes inode `ino` whole, its orphan link (`inode.orphan_next`) included, in
    /// transaction `h`: under the orphan list's lock (the list changes the link), or for
    /// an inode on no list (whose link is 0).
    pub(crate) fn iput_with_link(&self, h: &Handle<'_>, ino: u32, inode: &DiskInode) -> Result {
        self.write_inode(h, ino, false, |slot| inode.encode(slot, ino, self.seed))
    }

    /// Writes new inode `ino` whole, in transaction `h` (a number just allocated: on no
    /// orphan list). `fresh`: the other inodes of its table block are all free
    /// ([`Bitmap::others_clear`](crate::alloc::Bitmap::others_clear), asked under the
    /// inode allocator's lock), so the block is not read from the disk but started from
    /// zeros if it is not cached (free inodes are zeros to every reader), as ext4 skips
    /// that read: after a `drop_caches`, creating files read one table block per 16.
    pub(crate) fn iput_new(
        &self,
        h: &Handle<'_>,
        ino: u32,
        inode: &DiskInode,
        fresh: bool,
    ) -> Result {
        self.write_inode(h, ino, fresh, |slot| inode.encode(slot, ino, self.seed))
    }

    /// Sets the orphan link of inode `ino` to `next`, in transaction `h` (under the
    /// orphan list's lock), changing nothing else.
    pub(crate) fn set_orphan_link(&self, h: &Handle<'_>, ino: u32, next: u32) -> Result {
        let (blk, off) = self.sb.inode_location(ino).ok_or(Errno::EIO)?;
        let buf = self.dev.read(blk)?;
        h.modify(&buf, |b| {
            let checked = self.inode_block_checked(&buf, blk, b);
            let slot = b
                .get_mut(off..off.saturating_add(INODE_SIZE))
                .ok_or(Errno::EIO)?;
            let mut inode = self.decode_inode(slot, ino, checked)?;
            inode.orphan_next = next;
            inode.encode(slot, ino, self.seed)
        })?
    }

    /// Changes the 256 bytes of inode `ino` with `f`, in transaction `h`; `fresh`: in a
    /// table block of otherwise free inodes, not read (see [`Xv6Fs::iput_new`]).
    fn write_inode(
        &self,
        h: &Handle<'_>,
        ino: u32,
        fresh: bool,
        f: impl FnOnce(&mut [u8]) -> Result,
    ) -> Result {
        let (blk, off) = self.sb.inode_location(ino).ok_or(Errno::EIO)?;
        let buf = if fresh {
            self.dev.get(blk)?
        } else {
            self.dev.read(blk)?
        };
        let change = |b: &mut [u8]| {
            let r = match b.get_mut(off..off.saturating_add(INODE_SIZE)) {
                Some(slot) => f(slot),
                None => Err(Errno::EIO),
            };
            crate::store::unchecked_on_error(&buf, r)
        };
        if fresh {
            h.create(&buf, change)?
        } else {
            h.modify(&buf, change)?
        }
    }

    /// The attributes the framework sees.
    pub(crate) fn attr(&self, ino: u32, i: &DiskInode) -> Result<Attr> {
        Ok(Attr {
            ino: u64::from(ino),
            size: i.size,
            blocks: i.blocks,
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            kind: i
                .kind()
                .ok_or_else(|| corrupt(format_args!("inode {ino}: mode {:#o}", i.mode)))?,
            perm: (i.mode & 0o7777) as u16,
            nlink: i.nlink,
            uid: i.uid,
            gid: i.gid,
            rdev: i.rdev,
            blksize: crate::layout::BLOCK_SIZE as u32,
            generation: i.generation,
        })
    }

    /// A pointer read from disk must name a data block.
    fn check_ptr(&self, ino: u32, p: u32) -> Result<u32> {
        if p != 0 && !self.sb.is_data_block(p) {
            return Err(corrupt(format_args!("inode {ino}: block pointer {p}")));
        }
        Ok(p)
    }

    /// A pointer a truncation frees through: the block it names, without the unwritten
    /// mark if it is a regular file's data block pointer (`data`).
    fn check_freed(&self, ino: u32, p: u32, data: bool) -> Result<u32> {
        if data {
            Ok(self.check_data(ino, p)?.0)
        } else {
            self.check_ptr(ino, p)
        }
    }

    /// A regular file's data block pointer read from disk: the block (0: none) and
    /// whether it is unwritten.
    fn check_data(&self, ino: u32, p: u32) -> Result<(u32, bool)> {
        self.sb
            .data_ptr(p)
            .ok_or_else(|| corrupt(format_args!("inode {ino}: data block pointer {p:#x}")))
    }

    /// Allocates a block near `goal` (else where the allocator's search is); metadata
    /// blocks go in the metadata zone of `goal`'s part of the disk
    /// ([`Bitmap::alloc_meta`](crate::alloc::Bitmap::alloc_meta)) and are zeroed in
    /// the transaction.
    fn new_block(
        &self,
        st: &State,
        h: &Handle<'_>,
        inode: &mut DiskInode,
        goal: Option<u32>,
        meta: bool,
    ) -> Result<u32> {
        let pending = crate::alloc::blocks_pending(&self.journal);
        let b = if meta {
            st.blocks.lock().alloc_meta(&self.dev, h, goal, &pending)?
        } else {
            st.blocks.lock().alloc(&self.dev, h, goal, &pending)?
        };
        inode.blocks = inode.blocks.saturating_add(SECTORS_PER_BLOCK);
        if meta {
            let buf = self.dev.get(u64::from(b))?;
            h.create(&buf, |d| d.fill(0))?;
        }
        Ok(b)
    }

    /// Maps block `fblk` of inode `ino` to a disk block (0: a hole), one block at a time:
    /// for directory and symlink blocks (regular files use [`Xv6Fs::lookup_run`] and
    /// [`Xv6Fs::alloc_run`]). With `alloc` (and a handle), allocates what is missing; the
    /// second value says the block is new (its contents are garbage until written). The
    /// inode is updated in memory; the caller writes it back.
    pub(crate) fn bmap(
        &self,
        st: Option<&State>,
        h: Option<&Handle<'_>>,
        ino: u32,
        inode: &mut DiskInode,
        fblk: u64,
    ) -> Result<(u32, bool)> {
        if fblk >= MAX_FILE_BLOCKS {
            return Err(Errno::EFBIG);
        }
        let (slot, level, idx) = path(fblk)?;
        let mut alloc = st.zip(h);
        let goal = self.goal(inode);
        let mut cur = self.check_ptr(ino, inode.addrs.get(slot).copied().ok_or(Errno::EIO)?)?;
        let mut new = false;
        if cur == 0 {
            let Some((st, h)) = alloc.as_mut() else {
                return Ok((0, false));
            };
            cur = self.new_block(st, h, inode, goal, level > 0)?;
            new = true;
            if let Some(s) = inode.addrs.get_mut(slot) {
                *s = cur;
            }
        }
        for (depth, i) in idx.iter().take(level).enumerate() {
            let buf: Buffer = self.dev.read(u64::from(cur))?;
            let next = self.check_ptr(ino, ptr_at(&buf.lock(), *i))?;
            if next != 0 {
                cur = next;
                new = false;
                continue;
            }
            let Some((st, h)) = alloc.as_mut() else {
                return Ok((0, false));
            };
            let leaf = depth.saturating_add(1) == level;
            let b = self.new_block(st, h, inode, Some(cur), !leaf)?;
            h.modify(&buf, |d| set_ptr(d, *i, b))?;
            cur = b;
            new = true;
        }
        Ok((cur, new))
    }

    /// Finds where the pointer to file block `fblk` lives, without allocating.
    fn find_leaf(&self, ino: u32, inode: &DiskInode, fblk: u64) -> Result<Leaf> {
        if fblk >= MAX_FILE_BLOCKS {
            return Err(Errno::EFBIG);
        }
        let (slot, level, idx) = path(fblk)?;
        if level == 0 {
            return Ok(Leaf::Direct(slot));
        }
        // Blocks from `fblk` to the end of the subtree below the pointer at `depth`.
        let rest_below = |depth: usize| {
            let mut rel = 0u64;
            let mut span = 1u64;
            for i in idx.iter().take(level).skip(depth).rev() {
                rel = rel.saturating_add(i.saturating_mul(span));
                span = span.saturating_mul(PTRS_PER_BLOCK);
            }
            span.saturating_sub(rel)
        };
        let mut cur = self.check_ptr(ino, inode.addrs.get(slot).copied().ok_or(Errno::EIO)?)?;
        if cur == 0 {
            return Ok(Leaf::Hole(rest_below(0)));
        }
        for (depth, i) in idx.iter().take(level).enumerate() {
            if depth.saturating_add(1) == level {
                return Ok(Leaf::Indirect { blk: cur, idx: *i });
            }
            let buf = self.dev.read(u64::from(cur))?;
            let g = buf.lock();
            let next = self.check_ptr(ino, ptr_at(&g, *i))?;
            if next == 0 {
                return Ok(Leaf::Hole(rest_below(depth.saturating_add(1))));
            }
            if depth.saturating_add(2) == level {
                let in_leaf = idx.get(level.saturating_sub(1)).copied().unwrap_or(0);
                if let Some((first, count)) = leaves_ahead(*i, in_leaf) {
                    self.read_leaves_ahead(&g, first, count);
                }
            }
            cur = next;
        }
        Err(Errno::EIO)
    }

    /// Starts reading the leaves that the pointers `[first, first + count)` of the
    /// indirect block `ptrs` name (at most [`LEAF_READAHEAD`]), in one go.
    fn read_leaves_ahead(&self, ptrs: &[u8], first: u64, count: u64) {
        let end = first.saturating_add(count).min(PTRS_PER_BLOCK);
        let mut leaves = [0u64; LEAF_READAHEAD as usize];
        let mut n = 0usize;
        for k in first..end {
            let p = ptr_at(ptrs, k);
            if let Some(slot) = leaves.get_mut(n).filter(|_| p != 0) {
                *slot = u64::from(p);
                n = n.saturating_add(1);
            }
        }
        self.dev.readahead(leaves.get(..n).unwrap_or_default());
    }

    /// Counts, in a leaf's pointers `ptrs` from index `from`, the run starting there:
    /// contiguous disk blocks of one kind (written or unwritten), or zeros (a hole).
    /// At most `max`.
    fn leaf_run(
        &self,
        ino: u32,
        ptrs: &dyn Fn(u64) -> u32,
        from: u64,
        end: u64,
        max: u64,
    ) -> Result<Run> {
        let raw = ptrs(from);
        let (block, unwritten) = self.check_data(ino, raw)?;
        let limit = end.min(from.saturating_add(max));
        let mut n = 1u64;
        while from.saturating_add(n) < limit {
            let p = ptrs(from.saturating_add(n));
            // The unwritten flag is the top bit and data blocks lie below it, so the
            // next pointer of a run is the first one plus `n`, flag and all.
            let want = if raw == 0 {
                0
            } else {
                match u32::try_from(n).ok().and_then(|n| raw.checked_add(n)) {
                    Some(w) => w,
                    None => break,
                }
            };
            if p != want {
                break;
            }
            self.check_data(ino, p)?;
            n = n.saturating_add(1);
        }
        Ok(Run {
            block,
            len: n,
            unwritten,
        })
    }

    /// The run of file blocks from `fblk` (at most `max`, at least 1): mapped to
    /// contiguous disk blocks, written or unwritten, or a hole. Reads only.
    pub(crate) fn lookup_run(
        &self,
        ino: u32,
        inode: &DiskInode,
        fblk: u64,
        max: u64,
    ) -> Result<Run> {
        let max = max.clamp(1, MAX_FILE_BLOCKS.saturating_sub(fblk).max(1));
        match self.find_leaf(ino, inode, fblk)? {
            Leaf::Hole(n) => Ok(Run {
                block: 0,
                len: n.clamp(1, max),
                unwritten: false,
            }),
            Leaf::Direct(slot) => {
                let ptrs = |i: u64| {
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| inode.addrs.get(i))
                        .copied()
                        .unwrap_or(0)
                };
                self.leaf_run(ino, &ptrs, slot as u64, NDIRECT as u64, max)
            }
            Leaf::Indirect { blk, idx } => {
                let buf = self.dev.read(u64::from(blk))?;
                let g = buf.lock();
                let ptrs = |i: u64| ptr_at(&g, i);
                self.leaf_run(ino, &ptrs, idx, PTRS_PER_BLOCK, max)
            }
        }
    }

    /// Whether file `ino` has a block mapped at file block `from` or past it.
    pub(crate) fn mapped_from(&self, ino: u32, inode: &DiskInode, from: u64) -> Result<bool> {
        let mut fblk = from;
        while fblk < MAX_FILE_BLOCKS {
            let run = self.lookup_run(ino, inode, fblk, MAX_FILE_BLOCKS.saturating_sub(fblk))?;
            if run.block != 0 {
                return Ok(true);
            }
            fblk = fblk.saturating_add(run.len.max(1));
        }
        Ok(false)
    }

    /// Allocates the data blocks of a run of holes from file block `fblk` (which must be
    /// a hole), up to `max` of them: the indirect blocks above it if missing, then as many
    /// contiguous disk blocks as are free right after the first one (all within one
    /// indirect block, or among the direct pointers), in transaction `h`. The caller
    /// sees to their contents before it commits: orders the data the framework will
    /// write there ([`Handle::order_data`]), or zeroes them, unless they are allocated
    /// `unwritten` (the pointers say so). The inode is updated in memory (pointers and
    /// block count, not the size); the caller writes it. Returns the first disk block
    /// and the count.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn alloc_run(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        fblk: u64,
        max: u64,
        unwritten: bool,
    ) -> Result<(u32, u64)> {
        let flag = if unwritten { UNWRITTEN } else { 0 };
        // First the indirect blocks above the run, if missing.
        let leaf = match self.find_leaf(ino, inode, fblk)? {
            Leaf::Hole(_) => {
                self.alloc_path(st, h, ino, inode, fblk)?;
                self.find_leaf(ino, inode, fblk)?
            }
            l => l,
        };
        let pending = crate::alloc::blocks_pending(&self.journal);
        let max32 = |room: u64| u32::try_from(room.min(max).max(1)).unwrap_or(u32::MAX);
        let (first, n) = match leaf {
            Leaf::Direct(slot) => {
                let holes = self.lookup_run(ino, inode, fblk, max)?;
                if holes.block != 0 {
                    return Err(Errno::EEXIST);
                }
                let goal = self.near(ino, inode, fblk)?;
                let (first, n) =
                    st.blocks
                        .lock()
                        .alloc_run(&self.dev, h, goal, max32(holes.len), &pending)?;
                for k in 0..n {
                    let s = slot.saturating_add(k as usize);
                    if let Some(a) = inode.addrs.get_mut(s) {
                        *a = first.saturating_add(k) | flag;
                    }
                }
                (first, n)
            }
            Leaf::Indirect { blk, idx } => {
                let buf = self.dev.read(u64::from(blk))?;
                let holes = {
                    let g = buf.lock();
                    let ptrs = |i: u64| ptr_at(&g, i);
                    self.leaf_run(ino, &ptrs, idx, PTRS_PER_BLOCK, max)?
                };
                if holes.block != 0 {
                    return Err(Errno::EEXIST);
                }
                let prev = idx.checked_sub(1).map_or(0, |i| ptr_at(&buf.lock(), i));
                let goal = match self.check_data(ino, prev)?.0 {
                    0 => self.near(ino, inode, fblk)?,
                    p => Some(p.saturating_add(1)),
                };
                let (first, n) =
                    st.blocks
                        .lock()
                        .alloc_run(&self.dev, h, goal, max32(holes.len), &pending)?;
                h.modify(&buf, |d| {
                    for k in 0..n {
                        let p = first.saturating_add(k) | flag;
                        set_ptr(d, idx.saturating_add(u64::from(k)), p);
                    }
                })?;
                (first, n)
            }
            Leaf::Hole(_) => return Err(Errno::EIO),
        };
        inode.blocks = inode
            .blocks
            .saturating_add(u64::from(n).saturating_mul(SECTORS_PER_BLOCK));
        Ok((first, u64::from(n)))
    }

    /// Journal credits [`Xv6Fs::alloc_run`] needs from file block `fblk` (a hole): the
    /// inode and a bitmap block, plus the indirect block holding the pointers, or
    /// [`ALLOC_CREDITS`] if indirect blocks are missing above it.
    pub(crate) fn alloc_credits(&self, ino: u32, inode: &DiskInode, fblk: u64) -> Result<u32> {
        Ok(match self.find_leaf(ino, inode, fblk)? {
            Leaf::Direct(_) => 2,
            Leaf::Indirect { .. } => 3,
            Leaf::Hole(_) => ALLOC_CREDITS,
        })
    }

    /// Where new blocks of a file go when nothing better is known: near its first block;
    /// for a file with none, where the allocator's search is (from the start of the
    /// disk, each new file would walk every used block, and after a large delete every
    /// block waiting for the commit of its freeing).
    fn goal(&self, inode: &DiskInode) -> Option<u32> {
        inode
            .addrs
            .first()
            .map(|a| a & !UNWRITTEN)
            .filter(|a| *a != 0)
    }

    /// Where a new block for file block `fblk` goes: right after the disk block of file
    /// block `fblk - 1` if that is mapped (a file written in sequence stays one run
    /// across its indirect blocks, which lie elsewhere), else [`Xv6Fs::goal`].
    fn near(&self, ino: u32, inode: &DiskInode, fblk: u64) -> Result<Option<u32>> {
        if let Some(prev) = fblk.checked_sub(1) {
            let run = self.lookup_run(ino, inode, prev, 1)?;
            if run.block != 0 {
                return Ok(Some(run.block.saturating_add(1)));
            }
        }
        Ok(self.goal(inode))
    }

    /// Allocates the missing indirect blocks on the path to file block `fblk` (not the
    /// data block itself), in the metadata zone of the part of the disk its data goes
    /// to.
    fn alloc_path(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        fblk: u64,
    ) -> Result {
        let (slot, level, idx) = path(fblk)?;
        if level == 0 {
            return Ok(());
        }
        let near = self.near(ino, inode, fblk)?;
        let mut cur = self.check_ptr(ino, inode.addrs.get(slot).copied().ok_or(Errno::EIO)?)?;
        if cur == 0 {
            cur = self.new_block(st, h, inode, near, true)?;
            if let Some(s) = inode.addrs.get_mut(slot) {
                *s = cur;
            }
        }
        for i in idx.iter().take(level.saturating_sub(1)) {
            let buf: Buffer = self.dev.read(u64::from(cur))?;
            let next = self.check_ptr(ino, ptr_at(&buf.lock(), *i))?;
            if next != 0 {
                cur = next;
                continue;
            }
            let b = self.new_block(st, h, inode, near, true)?;
            h.modify(&buf, |d| set_ptr(d, *i, b))?;
            cur = b;
        }
        Ok(())
    }

    /// Frees a block the file used (`meta`: an indirect block, revoked in the journal).
    fn drop_block(
        &self,
        st: &State,
        h: &Handle<'_>,
        inode: &mut DiskInode,
        b: u32,
        meta: bool,
    ) -> Result {
        st.blocks.lock().release(&self.dev, h, b)?;
        if meta {
            h.revoke(u64::from(b))?;
        }
        self.journal.defer_free(h.tid(), u64::from(b), 1)?;
        inode.blocks = inode.blocks.saturating_sub(SECTORS_PER_BLOCK);
        Ok(())
    }

    /// Frees, below indirect block `blk` of `level` covering file blocks from `base`,
    /// the blocks at or after `keep` (highest first), within `budget`; `meta_leaves`:
    /// the file's blocks are metadata (a directory or symlink). Returns whether the
    /// block is now empty.
    #[allow(clippy::too_many_arguments)]
    fn trim(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        blk: u32,
        level: u32,
        base: u64,
        keep: u64,
        meta_leaves: bool,
        budget: &mut Budget,
    ) -> Result<bool> {
        let span = PTRS_PER_BLOCK.saturating_pow(level.saturating_sub(1));
        let buf = self.dev.read(u64::from(blk))?;
        if level == 1 && !meta_leaves {
            return self.trim_data_leaf(st, h, ino, inode, &buf, base, keep, budget);
        }
        // Every block below here is metadata: indirect blocks, or a directory's or
        // symlink's blocks (data leaves went to `trim_data_leaf`).
        let meta = true;
        let mut empty = true;
        for i in (0..PTRS_PER_BLOCK).rev() {
            let child_base = base.saturating_add(i.saturating_mul(span));
            let p = self.check_ptr(ino, ptr_at(&buf.lock(), i))?;
            if p == 0 {
                continue;
            }
            if child_base.saturating_add(span) <= keep || !budget.allows(h, meta) {
                empty = false;
                continue;
            }
            let gone = if level == 1 {
                child_base >= keep
            } else {
                self.trim(
                    st,
                    h,
                    ino,
                    inode,
                    p,
                    level.saturating_sub(1),
                    child_base,
                    keep,
                    meta_leaves,
                    budget,
                )?
            };
            if gone && budget.allows(h, meta) {
                self.drop_block(st, h, inode, p, meta)?;
                h.modify(&buf, |d| set_ptr(d, i, 0))?;
                budget.take(meta);
            } else {
                empty = false;
            }
        }
        Ok(empty)
    }

    /// [`Xv6Fs::trim`] of a leaf of a regular file's data blocks (`buf`, covering file
    /// blocks from `base`): blocks next to each other on the disk are freed as a run,
    /// with one change of their bitmap block, one deferred free and one change of the
    /// leaf, where a block at a time made three changes per block (a 1 GiB file has
    /// 262 144). Returns whether the leaf is now empty.
    #[allow(clippy::too_many_arguments)]
    fn trim_data_leaf(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        buf: &Buffer,
        base: u64,
        keep: u64,
        budget: &mut Budget,
    ) -> Result<bool> {
        let mut empty = true;
        // The run being gathered, highest first: disk blocks `first..first + count`,
        // pointed to from leaf indices `lo..=hi`.
        let mut run: Option<(u32, u32, u64, u64)> = None;
        for i in (0..PTRS_PER_BLOCK).rev() {
            let p = self.check_freed(ino, ptr_at(&buf.lock(), i), true)?;
            if p == 0 {
                continue;
            }
            if base.saturating_add(i) < keep || !budget.allows_in_run(h) {
                empty = false;
                // (Everything below is kept too: `keep` and the budget only fall.)
                break;
            }
            run = match run {
                Some((first, count, _, hi)) if p.checked_add(1) == Some(first) => {
                    Some((p, count.saturating_add(1), i, hi))
                }
                other => {
                    if let Some(r) = other {
                        self.free_data_run(st, h, inode, buf, r)?;
                    }
                    Some((p, 1, i, i))
                }
            };
            budget.take(false);
        }
        if let Some(r) = run {
            self.free_data_run(st, h, inode, buf, r)?;
        }
        Ok(empty)
    }

    /// Frees data blocks `first..first + count` that leaf `buf` points to from indices
    /// `lo..=hi` (any other pointer there is 0), and clears those pointers.
    fn free_data_run(
        &self,
        st: &State,
        h: &Handle<'_>,
        inode: &mut DiskInode,
        buf: &Buffer,
        (first, count, lo, hi): (u32, u32, u64, u64),
    ) -> Result {
        st.blocks.lock().release_run(&self.dev, h, first, count)?;
        self.journal
            .defer_free(h.tid(), u64::from(first), u64::from(count))?;
        inode.blocks = inode
            .blocks
            .saturating_sub(u64::from(count).saturating_mul(SECTORS_PER_BLOCK));
        h.modify(buf, |d| {
            for i in lo..=hi {
                set_ptr(d, i, 0);
            }
        })
    }

    /// Frees the blocks of inode `ino` from file block `keep` on, within one
    /// transaction's budget (blocks, revokes, and the credits left in `h`). Returns
    /// whether it finished (else call again in a new transaction); `ENOSPC` if it could
    /// not free anything (a nested handle short of credits).
    pub(crate) fn free_from(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        keep: u64,
    ) -> Result<bool> {
        let mut budget = Budget {
            blocks: FREE_BUDGET,
            revokes: REVOKE_BUDGET,
            starved: false,
        };
        let done = self.free_within(st, h, ino, inode, keep, &mut budget)?;
        if !done && budget.blocks == FREE_BUDGET {
            return Err(Errno::ENOSPC);
        }
        Ok(done)
    }

    /// [`Xv6Fs::free_from`] within `budget`.
    fn free_within(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        keep: u64,
        budget: &mut Budget,
    ) -> Result<bool> {
        let meta_leaves = inode.kind() != Some(FileType::RegularFile);
        // Triple, double, single indirect trees, then the direct blocks: highest first.
        let mut base = NDIRECT as u64;
        let mut bases = [0u64; 3];
        for (level, b) in bases.iter_mut().enumerate() {
            *b = base;
            base = base.saturating_add(
                PTRS_PER_BLOCK.saturating_pow(u32::try_from(level).unwrap_or(0).saturating_add(1)),
            );
        }
        for level in (1..=3u32).rev() {
            let slot = NDIRECT.saturating_add(level as usize).saturating_sub(1);
            let root = self.check_ptr(ino, inode.addrs.get(slot).copied().unwrap_or(0))?;
            if root == 0 {
                continue;
            }
            let tree_base = bases
                .get(level.saturating_sub(1) as usize)
                .copied()
                .unwrap_or(0);
            if self.trim(
                st,
                h,
                ino,
                inode,
                root,
                level,
                tree_base,
                keep,
                meta_leaves,
                budget,
            )? && keep <= tree_base
                && budget.allows(h, true)
            {
                self.drop_block(st, h, inode, root, true)?;
                if let Some(s) = inode.addrs.get_mut(slot) {
                    *s = 0;
                }
                budget.take(true);
            }
            if budget.exhausted() {
                return Ok(false);
            }
        }
        for i in (0..NDIRECT).rev() {
            let p =
                self.check_freed(ino, inode.addrs.get(i).copied().unwrap_or(0), !meta_leaves)?;
            if p != 0 && i as u64 >= keep {
                if !budget.allows(h, meta_leaves) {
                    return Ok(false);
                }
                self.drop_block(st, h, inode, p, meta_leaves)?;
                budget.take(meta_leaves);
                if let Some(s) = inode.addrs.get_mut(i) {
                    *s = 0;
                }
            }
        }
        Ok(true)
    }

    /// Marks the `n` unwritten blocks from file block `fblk` (a run
    /// [`Xv6Fs::lookup_run`] found, within one leaf) written, in transaction `h`: the
    /// caller orders the data the framework writes there ([`Handle::order_data`]). The
    /// inode is updated in memory; the caller writes it.
    pub(crate) fn mark_written(
        &self,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        fblk: u64,
        n: u64,
    ) -> Result {
        match self.find_leaf(ino, inode, fblk)? {
            Leaf::Direct(slot) => {
                let end = usize::try_from(n).map_or(NDIRECT, |n| slot.saturating_add(n));
                for a in inode
                    .addrs
                    .get_mut(slot..end.min(NDIRECT))
                    .unwrap_or_default()
                {
                    *a &= !UNWRITTEN;
                }
                Ok(())
            }
            Leaf::Indirect { blk, idx } => {
                let buf = self.dev.read(u64::from(blk))?;
                let end = idx.saturating_add(n).min(PTRS_PER_BLOCK);
                h.modify(&buf, |d| {
                    for i in idx..end {
                        set_ptr(d, i, ptr_at(d, i) & !UNWRITTEN);
                    }
                })
            }
            Leaf::Hole(_) => Err(Errno::EIO),
        }
    }

    /// Unmaps file block `fblk` (now at disk block `b`) and frees it; indirect blocks
    /// stay, even if empty (a later truncate frees them).
    pub(crate) fn clear_block(
        &self,
        st: &State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        fblk: u64,
        b: u32,
    ) -> Result {
        let (slot, level, idx) = path(fblk)?;
        if level == 0 {
            if let Some(s) = inode.addrs.get_mut(slot) {
                *s = 0;
            }
        } else {
            let mut cur = self.check_ptr(ino, inode.addrs.get(slot).copied().unwrap_or(0))?;
            for (depth, i) in idx.iter().take(level).enumerate() {
                let buf = self.dev.read(u64::from(cur))?;
                if depth.saturating_add(1) == level {
                    h.modify(&buf, |d| set_ptr(d, *i, 0))?;
                } else {
                    cur = self.check_ptr(ino, ptr_at(&buf.lock(), *i))?;
                    if cur == 0 {
                        return Ok(());
                    }
                }
            }
        }
        self.drop_block(st, h, inode, b, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_paths() {
        assert_eq!(path(0).ok(), Some((0, 0, [0; 3])));
        assert_eq!(path(11).ok(), Some((11, 0, [0; 3])));
        assert_eq!(path(12).ok(), Some((12, 1, [0, 0, 0])));
        assert_eq!(path(12 + 1023).ok(), Some((12, 1, [1023, 0, 0])));
        assert_eq!(path(12 + 1024).ok(), Some((13, 2, [0, 0, 0])));
        assert_eq!(path(12 + 1024 + 1025).ok(), Some((13, 2, [1, 1, 0])));
        assert_eq!(path(12 + 1024 + 1024 * 1024).ok(), Some((14, 3, [0, 0, 0])));
        assert_eq!(
            path(MAX_FILE_BLOCKS - 1).ok(),
            Some((14, 3, [1023, 1023, 1023]))
        );
        assert_eq!(path(MAX_FILE_BLOCKS).err(), Some(Errno::EFBIG));
    }
}
