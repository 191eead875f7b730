// SPDX-License-Identifier: GPL-2.0
//! Inodes: reading and writing them, mapping file blocks to disk blocks (12 direct,
//! single, double and triple indirect pointers) and freeing blocks on truncate.

use bento::block::Buffer;
use bento::journal::Handle;
use bento::{Attr, Errno, Result};

use crate::fs::{State, Xv6Fs};
use crate::layout::{corrupt, DiskInode, INODE_SIZE, MAX_FILE_BLOCKS, NDIRECT, PTRS_PER_BLOCK};

/// Blocks a truncate frees per transaction (keeps each one small).
pub const FREE_BUDGET: u32 = 8192;

/// 512-byte units per block.
const SECTORS_PER_BLOCK: u64 = 8;

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
        let bytes = g
            .get(off..off.saturating_add(INODE_SIZE))
            .ok_or(Errno::EIO)?;
        DiskInode::decode(bytes, ino, self.seed)
    }

    /// Writes inode `ino` in transaction `h`.
    pub(crate) fn iput(&self, h: &Handle<'_>, ino: u32, inode: &DiskInode) -> Result {
        let (blk, off) = self.sb.inode_location(ino).ok_or(Errno::EIO)?;
        let buf = self.dev.read(blk)?;
        h.modify(&buf, |b| {
            match b.get_mut(off..off.saturating_add(INODE_SIZE)) {
                Some(slot) => inode.encode(slot, ino, self.seed),
                None => Err(Errno::EIO),
            }
        })?
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

    /// Allocates a block near `goal`; metadata blocks are zeroed in the transaction.
    fn new_block(
        &self,
        st: &mut State,
        h: &Handle<'_>,
        inode: &mut DiskInode,
        goal: u32,
        meta: bool,
    ) -> Result<u32> {
        let usable = crate::alloc::block_usable(&self.journal);
        let b = st.blocks.alloc(&self.dev, h, Some(goal), &usable)?;
        inode.blocks = inode.blocks.saturating_add(SECTORS_PER_BLOCK);
        if meta {
            let buf = self.dev.get(u64::from(b))?;
            h.create(&buf, |d| d.fill(0))?;
        }
        Ok(b)
    }

    /// Maps file block `fblk` of inode `ino` to a disk block (0: a hole). With `alloc`
    /// (and a handle), allocates what is missing; the second value says the data block
    /// is new (its contents are garbage until written). The inode is updated in memory;
    /// the caller writes it back.
    pub(crate) fn bmap(
        &self,
        st: Option<&mut State>,
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
        let goal = inode
            .addrs
            .first()
            .copied()
            .filter(|a| *a != 0)
            .unwrap_or(self.sb.data_start);
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
            let b = self.new_block(st, h, inode, cur, !leaf)?;
            h.modify(&buf, |d| set_ptr(d, *i, b))?;
            cur = b;
            new = true;
        }
        Ok((cur, new))
    }

    /// Frees a block the file used (`meta`: an indirect block, revoked in the journal).
    fn drop_block(
        &self,
        st: &mut State,
        h: &Handle<'_>,
        inode: &mut DiskInode,
        b: u32,
        meta: bool,
    ) -> Result {
        st.blocks.release(&self.dev, h, b)?;
        if meta {
            h.revoke(u64::from(b))?;
        }
        self.journal.defer_free(h.tid(), u64::from(b), 1)?;
        inode.blocks = inode.blocks.saturating_sub(SECTORS_PER_BLOCK);
        Ok(())
    }

    /// Frees, below indirect block `blk` of `level` covering file blocks from `base`,
    /// the blocks at or after `keep` (highest first), at most `*budget` of them.
    /// Returns whether the block is now empty.
    #[allow(clippy::too_many_arguments)]
    fn trim(
        &self,
        st: &mut State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        blk: u32,
        level: u32,
        base: u64,
        keep: u64,
        budget: &mut u32,
    ) -> Result<bool> {
        let span = PTRS_PER_BLOCK.saturating_pow(level.saturating_sub(1));
        let buf = self.dev.read(u64::from(blk))?;
        let mut empty = true;
        for i in (0..PTRS_PER_BLOCK).rev() {
            let child_base = base.saturating_add(i.saturating_mul(span));
            let p = self.check_ptr(ino, ptr_at(&buf.lock(), i))?;
            if p == 0 {
                continue;
            }
            if child_base.saturating_add(span) <= keep || *budget == 0 {
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
                    budget,
                )?
            };
            if gone {
                self.drop_block(st, h, inode, p, level > 1)?;
                h.modify(&buf, |d| set_ptr(d, i, 0))?;
                *budget = budget.saturating_sub(1);
            } else {
                empty = false;
            }
        }
        Ok(empty)
    }

    /// Frees the blocks of inode `ino` from file block `keep` on, within one
    /// transaction's budget. Returns whether it finished (else call again in a new
    /// transaction).
    pub(crate) fn free_from(
        &self,
        st: &mut State,
        h: &Handle<'_>,
        ino: u32,
        inode: &mut DiskInode,
        keep: u64,
    ) -> Result<bool> {
        let mut budget = FREE_BUDGET;
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
            if self.trim(st, h, ino, inode, root, level, tree_base, keep, &mut budget)?
                && keep <= tree_base
                && budget > 0
            {
                self.drop_block(st, h, inode, root, true)?;
                if let Some(s) = inode.addrs.get_mut(slot) {
                    *s = 0;
                }
                budget = budget.saturating_sub(1);
            }
            if budget == 0 {
                return Ok(false);
            }
        }
        for i in (0..NDIRECT).rev() {
            let p = self.check_ptr(ino, inode.addrs.get(i).copied().unwrap_or(0))?;
            if p != 0 && i as u64 >= keep {
                self.drop_block(st, h, inode, p, false)?;
                if let Some(s) = inode.addrs.get_mut(i) {
                    *s = 0;
                }
            }
        }
        Ok(true)
    }

    /// Unmaps file block `fblk` (now at disk block `b`) and frees it; indirect blocks
    /// stay, even if empty (a later truncate frees them).
    pub(crate) fn clear_block(
        &self,
        st: &mut State,
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
