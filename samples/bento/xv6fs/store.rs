// SPDX-License-Identifier: GPL-2.0
//! A directory's blocks as the directory tree sees them ([`DirStore`]): logical blocks
//! of the directory inode, read through the buffer cache and changed in a transaction.

use core::cell::RefCell;

use bento::block::Buffer;
use bento::journal::Handle;
use bento::{Errno, Result};

use crate::dir::DirStore;
use crate::fs::{State, Xv6Fs};
use crate::layout::{DirHeader, DiskInode, BLOCK_SIZE_U64};

/// One directory, possibly being changed in transaction `h`.
pub struct Dir<'a, 'h> {
    pub(crate) fs: &'a Xv6Fs,
    pub(crate) ino: u32,
    pub(crate) inode: RefCell<DiskInode>,
    /// The transaction and allocator, for changes; `None` for lookups and listings.
    pub(crate) tx: Option<(&'a Handle<'h>, &'a State)>,
}

impl<'a, 'h> Dir<'a, 'h> {
    /// The directory for reading.
    pub fn reader(fs: &'a Xv6Fs, ino: u32, inode: DiskInode) -> Self {
        Dir {
            fs,
            ino,
            inode: RefCell::new(inode),
            tx: None,
        }
    }

    /// The directory for changing in `h`.
    pub fn writer(
        fs: &'a Xv6Fs,
        ino: u32,
        inode: DiskInode,
        h: &'a Handle<'h>,
        st: &'a State,
    ) -> Self {
        Dir {
            fs,
            ino,
            inode: RefCell::new(inode),
            tx: Some((h, st)),
        }
    }

    /// The directory inode, as changed (size and blocks grow with `append`).
    pub fn into_inode(self) -> DiskInode {
        self.inode.into_inner()
    }

    /// The directory inode, borrowed (never twice: a failure is a bug, reported as
    /// `EIO` rather than a panic, which would be a BUG in the kernel).
    fn inode_mut(&self) -> Result<core::cell::RefMut<'_, DiskInode>> {
        self.inode.try_borrow_mut().map_err(|_| Errno::EIO)
    }

    fn block(&self, lblk: u32) -> Result<u64> {
        let mut inode = self.inode_mut()?;
        if u64::from(lblk).saturating_mul(BLOCK_SIZE_U64) >= inode.size {
            return Err(crate::layout::corrupt(format_args!(
                "directory {}: block {lblk} past its end",
                self.ino
            )));
        }
        match self
            .fs
            .bmap(None, None, self.ino, &mut inode, u64::from(lblk))?
        {
            (0, _) => Err(crate::layout::corrupt(format_args!(
                "directory {}: hole at block {lblk}",
                self.ino
            ))),
            (b, _) => Ok(u64::from(b)),
        }
    }
}

impl Dir<'_, '_> {
    /// Checks the checksum of directory block `b` (the bytes of `buf`, locked) unless it
    /// was checked since it was read from the disk; marks it checked.
    fn check(&self, buf: &Buffer, b: &[u8]) -> Result {
        if !buf.verified() {
            DirHeader::check_sum(b, self.ino, self.fs.seed)?;
            buf.set_verified();
        }
        Ok(())
    }
}

/// `r`, forgetting that `buf` was checked if `r` failed: a change that failed half-way
/// may have left the block unsealed (directory and inode table blocks alike).
pub(crate) fn unchecked_on_error(buf: &Buffer, r: Result) -> Result {
    if r.is_err() {
        buf.clear_verified();
    }
    r
}

impl DirStore for Dir<'_, '_> {
    fn ino(&self) -> u32 {
        self.ino
    }

    fn seed(&self) -> u32 {
        self.fs.seed
    }

    fn read(&self, lblk: u32, f: &mut dyn FnMut(&[u8]) -> Result) -> Result {
        let buf = self.fs.dev.read(self.block(lblk)?)?;
        let g = buf.lock();
        self.check(&buf, &g)?;
        f(&g)
    }

    fn modify(&self, lblk: u32, f: &mut dyn FnMut(&mut [u8]) -> Result) -> Result {
        let (h, _) = self.tx.as_ref().ok_or(Errno::EROFS)?;
        let buf = self.fs.dev.read(self.block(lblk)?)?;
        h.modify(&buf, |b| {
            self.check(&buf, b)?;
            unchecked_on_error(&buf, f(b))
        })?
    }

    fn modify2(&self, a: u32, b: u32, f: &mut dyn FnMut(&mut [u8], &mut [u8]) -> Result) -> Result {
        let (h, _) = self.tx.as_ref().ok_or(Errno::EROFS)?;
        let (ba, bb) = (
            self.fs.dev.read(self.block(a)?)?,
            self.fs.dev.read(self.block(b)?)?,
        );
        h.modify(&ba, |x| {
            self.check(&ba, x)?;
            h.modify(&bb, |y| {
                self.check(&bb, y)?;
                let r = unchecked_on_error(&bb, f(x, y));
                unchecked_on_error(&ba, r)
            })?
        })?
    }

    fn append(&self) -> Result<u32> {
        let (h, st) = self.tx.as_ref().ok_or(Errno::EROFS)?;
        let mut inode = self.inode_mut()?;
        let lblk = inode.size / BLOCK_SIZE_U64;
        let (b, _) = self
            .fs
            .bmap(Some(st), Some(h), self.ino, &mut inode, lblk)?;
        let buf = self.fs.dev.get(u64::from(b))?;
        h.create(&buf, |d| d.fill(0))?;
        // Sealed by its first change, in this transaction (the `append` contract).
        buf.set_verified();
        inode.size = inode.size.saturating_add(BLOCK_SIZE_U64);
        self.fs.iput(h, self.ino, &inode)?;
        u32::try_from(lblk).map_err(|_| Errno::EFBIG)
    }
}
