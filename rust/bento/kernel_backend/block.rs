// SPDX-License-Identifier: GPL-2.0
//! The kernel side of the `block` service ([`crate::block`]): the mounted block device
//! and its buffer heads.
//!
//! A [`Device`] is the superblock of the mount (its `s_bdev`, block size and flags); a
//! [`Buf`] is one reference to a `buffer_head` of that device (`sb_bread`/`sb_getblk`,
//! `get_bh`/`brelse`); a [`Guard`] holds the buffer lock (`lock_buffer`/`unlock_buffer`)
//! and gives the `b_size` bytes at `b_data`. The cache is the block device's page cache:
//! the kernel bounds and evicts it, and jbd2 keeps the buffers it holds.

use core::ffi::c_int;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use kernel::bindings;

use crate::errno::{Errno, Result};

/// The errno of a kernel return value (`-errno`), `EIO` for anything unexpected.
pub(crate) fn errno_of(ret: c_int) -> Errno {
    ret.checked_neg()
        .and_then(Errno::from_raw)
        .unwrap_or(Errno::EIO)
}

/// The backend of [`crate::block::BlockDevice`]: the block device of a mounted
/// superblock.
///
/// # Invariants
///
/// `sb` is the superblock of a block-device mount, with `s_bdev` set, and stays valid
/// while any `Device` made from it (or anything holding one) exists. Its block size is
/// `block_size`, a power of two, set by [`Device::from_super`].
#[derive(Clone)]
pub(crate) struct Device {
    sb: NonNull<bindings::super_block>,
    block_size: usize,
}

// SAFETY: A `Device` only names the superblock; every operation on it goes through kernel
// functions (buffer cache, block layer) that may be called from any task.
unsafe impl Send for Device {}

// SAFETY: All methods take `&self` and call thread-safe kernel functions; the fields are
// never written after construction.
unsafe impl Sync for Device {}

impl Device {
    /// The device of the superblock being mounted, with its block size set to
    /// `block_size` (`sb_set_blocksize`, which also sets the block size of the block
    /// device's cache). `EINVAL` (logged) for a size the device cannot use: not a power of
    /// two from 512 to `PAGE_SIZE`, or below the device's logical block size.
    ///
    /// Call it before any buffer of the device is in use: changing the block size of a
    /// block device drops its cache.
    ///
    /// # Safety
    ///
    /// `sb` is the superblock being mounted, with `s_bdev` set; it stays valid until every
    /// `Device` made from it (and every `Buf`, `Journal` made through one) is dropped,
    /// which the framework ensures by dropping the file system instance in `put_super`,
    /// before the block device is released.
    pub(crate) unsafe fn from_super(
        sb: *mut bindings::super_block,
        block_size: usize,
    ) -> Result<Device> {
        let Some(sb) = NonNull::new(sb) else {
            crate::error!("block: no superblock to take the block device from");
            return Err(Errno::EINVAL);
        };
        let set = match c_int::try_from(block_size) {
            // SAFETY: `sb` is a live superblock with `s_bdev` set (the caller's guarantee);
            // `sb_set_blocksize` validates the size itself and returns 0 if it is unusable.
            Ok(size) if block_size.is_power_of_two() => unsafe {
                bindings::sb_set_blocksize(sb.as_ptr(), size)
            },
            _ => 0,
        };
        if set == 0 || usize::try_from(set) != Ok(block_size) {
            crate::error!("block: the device cannot use a block size of {block_size} bytes");
            return Err(Errno::EINVAL);
        }
        // INVARIANT: `sb` is valid for as long as the caller promised, and its block size is
        // now `block_size`, a power of two.
        Ok(Device { sb, block_size })
    }

    /// The superblock (valid while `self` exists, by the type invariant).
    pub(crate) fn sb(&self) -> *mut bindings::super_block {
        self.sb.as_ptr()
    }

    /// The block device of the superblock.
    pub(crate) fn bdev(&self) -> *mut bindings::block_device {
        // SAFETY: `sb` is valid (type invariant); `s_bdev` is set before the mount and not
        // changed while the superblock is alive.
        unsafe { (*self.sb.as_ptr()).s_bdev }
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    /// The number of whole blocks on the device, read from the device's current size.
    pub(crate) fn nr_blocks(&self) -> u64 {
        // SAFETY: `sb` is valid with `s_bdev` set (type invariant).
        unsafe { bindings::bento_sb_nr_blocks(self.sb.as_ptr()) }
    }

    /// Whether the device itself is read-only. A read-only *mount* of a writable device
    /// is not: the file system decides what it writes then (a journal replay at mount,
    /// a remount to read-write), as in userspace, where this says whether the image was
    /// opened read-only.
    pub(crate) fn read_only(&self) -> bool {
        self.bdev_read_only()
    }

    /// Whether the device itself is read-only (regardless of the mount flags).
    pub(crate) fn bdev_read_only(&self) -> bool {
        // SAFETY: `sb` is valid with `s_bdev` set (type invariant).
        unsafe { bindings::bento_bdev_read_only(self.sb.as_ptr()) }
    }

    /// `EIO` (logged) unless blocks `[first, first + count)` are on the device.
    pub(crate) fn check_range(&self, first: u64, count: u64) -> Result {
        let nr = self.nr_blocks();
        if first.checked_add(count).is_none_or(|end| end > nr) {
            crate::error!(
                "block: blocks {first}+{count} are beyond the end of the device ({nr} blocks)"
            );
            return Err(Errno::EIO);
        }
        Ok(())
    }

    pub(crate) fn read(&self, blocknr: u64) -> Result<Buf> {
        self.check_range(blocknr, 1)?;
        // SAFETY: `sb` is valid with `s_bdev` set and its block size set (type invariant);
        // `blocknr` is on the device.
        let bh = unsafe { bindings::bento_sb_bread(self.sb.as_ptr(), blocknr) };
        match NonNull::new(bh) {
            // INVARIANT: `sb_bread` returned a buffer of this device with one reference for us.
            Some(bh) => Ok(Buf { bh }),
            None => {
                crate::error!("block: reading block {blocknr} failed");
                Err(Errno::EIO)
            }
        }
    }

    pub(crate) fn readahead(&self, blocks: &[u64]) {
        let n = u32::try_from(blocks.len()).unwrap_or(u32::MAX);
        // SAFETY: As in `read` (the helper skips blocks off the device); `blocks` is
        // valid for reads of its `n` elements, and `sb_breadahead` keeps no reference.
        unsafe {
            bindings::bento_sb_breadahead_many(
                self.sb.as_ptr(),
                blocks.as_ptr(),
                n,
                self.nr_blocks(),
            )
        };
    }

    pub(crate) fn get(&self, blocknr: u64) -> Result<Buf> {
        self.check_range(blocknr, 1)?;
        // SAFETY: As in `read`. `sb_getblk` does not read the block: the buffer may not be up
        // to date, and its bytes are unspecified until the caller writes them.
        let bh = unsafe { bindings::bento_sb_getblk(self.sb.as_ptr(), blocknr) };
        match NonNull::new(bh) {
            // INVARIANT: `sb_getblk` returned a buffer of this device with one reference for
            // us.
            Some(bh) => {
                let buf = Buf { bh };
                // To be overwritten: whatever was checked no longer holds.
                buf.clear_verified();
                Ok(buf)
            }
            None => {
                crate::error!("block: no memory for a buffer of block {blocknr}");
                Err(Errno::ENOMEM)
            }
        }
    }

    /// A reference to block `blocknr` if it is cached, without reading it.
    pub(crate) fn find(&self, blocknr: u64) -> Option<Buf> {
        if blocknr >= self.nr_blocks() {
            return None;
        }
        // SAFETY: `sb` is valid with `s_bdev` set and its block size set (type invariant).
        let bh = unsafe { bindings::bento_sb_find_get_block(self.sb.as_ptr(), blocknr) };
        // INVARIANT: A non-null result is a buffer of this device with a reference for us.
        NonNull::new(bh).map(|bh| Buf { bh })
    }

    pub(crate) fn zero_blocks(&self, first: u64, count: u64) -> Result {
        self.check_range(first, count)?;
        if count == 0 {
            return Ok(());
        }
        if self.read_only() {
            crate::error!("block: zeroing blocks {first}+{count} of a read-only device");
            return Err(Errno::EROFS);
        }
        // SAFETY: `sb` is valid with `s_bdev` set and its block size set (type invariant);
        // the range is on the device, so the sector arithmetic of `sb_issue_zeroout` cannot
        // overflow.
        let ret = unsafe { bindings::bento_sb_zero_blocks(self.sb.as_ptr(), first, count) };
        if ret != 0 {
            crate::error!(
                "block: zeroing blocks {first}+{count} failed ({})",
                errno_of(ret)
            );
            return Err(errno_of(ret));
        }
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result {
        let bdev = self.bdev();
        // SAFETY: `bdev` is the open block device of the live superblock (type invariant).
        let wb = unsafe { bindings::sync_blockdev(bdev) };
        // SAFETY: As above.
        let fl = unsafe { bindings::blkdev_issue_flush(bdev) };
        match (wb, fl) {
            (0, 0) => Ok(()),
            (0, e) | (e, _) => {
                crate::error!("block: syncing the device failed ({e})");
                Err(errno_of(e))
            }
        }
    }
}

/// The backend of [`crate::block::Buffer`]: one reference to a buffer head.
///
/// # Invariants
///
/// `bh` is a buffer head of a mounted block device whose superblock outlives the `Buf`
/// (see [`Device`]), and the `Buf` owns one reference to it (`b_count`), dropped in
/// `Drop`. The buffer is mapped to block `b_blocknr` and holds `b_size` bytes at
/// `b_data`, none of which change while a reference exists.
pub(crate) struct Buf {
    bh: NonNull<bindings::buffer_head>,
}

// SAFETY: A buffer head reference may be taken and dropped by any task (`b_count` is
// atomic), and the bytes are only reached under the buffer lock, which is not tied to a
// task either.
unsafe impl Send for Buf {}

// SAFETY: Shared `&Buf`s only read the fixed fields or call thread-safe buffer functions;
// the bytes are behind the buffer lock.
unsafe impl Sync for Buf {}

impl Clone for Buf {
    fn clone(&self) -> Self {
        // SAFETY: `bh` is a buffer we hold a reference to (type invariant), so it is alive.
        unsafe { bindings::bento_get_bh(self.bh.as_ptr()) };
        // INVARIANT: The new `Buf` owns the reference just taken.
        Buf { bh: self.bh }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: We own one reference (type invariant) and give it up exactly once, here.
        unsafe { bindings::bento_brelse(self.bh.as_ptr()) };
    }
}

impl Buf {
    /// The buffer head (alive while `self` exists).
    pub(crate) fn as_ptr(&self) -> *mut bindings::buffer_head {
        self.bh.as_ptr()
    }

    pub(crate) fn blocknr(&self) -> u64 {
        // SAFETY: The buffer is alive and its block number fixed (type invariant).
        unsafe { (*self.bh.as_ptr()).b_blocknr }
    }

    /// The block device the buffer belongs to.
    pub(crate) fn bdev(&self) -> *mut bindings::block_device {
        // SAFETY: The buffer is alive and its device fixed (type invariant).
        unsafe { (*self.bh.as_ptr()).b_bdev }
    }

    pub(crate) fn lock(&self) -> Guard<'_> {
        // SAFETY: The buffer is alive (type invariant). `lock_buffer` sleeps until the lock
        // is free.
        unsafe { bindings::bento_lock_buffer(self.bh.as_ptr()) };
        // INVARIANT: This task has just taken the buffer lock.
        Guard {
            buf: self,
            _not_send: PhantomData,
        }
    }

    /// Whether the file system marked the bytes checked since they were last read from
    /// the device (`BH_Verified`, which `bento_sb_bread` clears when it reads).
    pub(crate) fn verified(&self) -> bool {
        // SAFETY: The buffer is alive (type invariant).
        unsafe { bindings::bento_buffer_verified(self.bh.as_ptr()) }
    }

    pub(crate) fn set_verified(&self) {
        // SAFETY: The buffer is alive (type invariant); the bit is set atomically.
        unsafe { bindings::bento_set_buffer_verified(self.bh.as_ptr()) };
    }

    pub(crate) fn clear_verified(&self) {
        // SAFETY: The buffer is alive (type invariant); the bit is cleared atomically.
        unsafe { bindings::bento_clear_buffer_verified(self.bh.as_ptr()) };
    }

    pub(crate) fn uptodate(&self) -> bool {
        // SAFETY: The buffer is alive (type invariant).
        unsafe { bindings::bento_buffer_uptodate(self.bh.as_ptr()) }
    }

    /// Records that the bytes are the block's contents: called once a caller wrote them,
    /// for a buffer from [`Device::get`] that was never read.
    pub(crate) fn set_uptodate(&self) {
        // SAFETY: The buffer is alive (type invariant); the bit is set atomically.
        unsafe { bindings::bento_set_buffer_uptodate(self.bh.as_ptr()) };
    }

    /// Marks the buffer dirty, unless jbd2 holds it: a dirty bit on a buffer of a
    /// transaction breaks jbd2's own accounting (a warning, then a `BUG` in the commit), so
    /// a journaled block marked dirty is refused with a log line instead.
    pub(crate) fn mark_dirty(&self) {
        // SAFETY: The buffer is alive (type invariant).
        if unsafe { bindings::bento_buffer_jbd(self.bh.as_ptr()) } {
            crate::error!(
                "block: block {} is held by the journal: change it through the journal, not mark_dirty",
                self.blocknr()
            );
            return;
        }
        // The caller wrote the block under the lock: whatever `sb_getblk` left in the buffer
        // is gone, so it is now up to date (`mark_buffer_dirty` warns otherwise).
        self.set_uptodate();
        // SAFETY: The buffer is alive and mapped (type invariant).
        unsafe { bindings::mark_buffer_dirty(self.bh.as_ptr()) };
    }

    pub(crate) fn is_dirty(&self) -> bool {
        // SAFETY: The buffer is alive (type invariant).
        unsafe { bindings::bento_buffer_dirty(self.bh.as_ptr()) }
    }

    pub(crate) fn sync(&self) -> Result {
        // SAFETY: The buffer is alive and we hold a reference, as `sync_dirty_buffer`
        // requires; it takes the buffer lock itself.
        let ret = unsafe { bindings::sync_dirty_buffer(self.bh.as_ptr()) };
        if ret != 0 {
            crate::error!(
                "block: writing block {} failed ({})",
                self.blocknr(),
                errno_of(ret)
            );
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// The block's bytes, for reading.
    ///
    /// # Safety
    ///
    /// The calling task must hold the buffer lock for as long as the slice is used, and no
    /// mutable reference to the bytes may exist meanwhile.
    pub(crate) unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: `b_data` points to `b_size` bytes of the buffer's page, valid while the
        // buffer is referenced (type invariant). Any byte value is a valid `u8`, including
        // what a never-read buffer holds. Writers hold the buffer lock, which the caller
        // holds.
        unsafe {
            let bh = self.bh.as_ptr();
            core::slice::from_raw_parts((*bh).b_data.cast::<u8>(), (*bh).b_size)
        }
    }

    /// The block's bytes, for writing.
    ///
    /// # Safety
    ///
    /// The calling task must hold the buffer lock for as long as the slice is used, and no
    /// other reference to the bytes may exist meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn bytes_mut(&self) -> &mut [u8] {
        // SAFETY: As in `bytes`; the caller guarantees that this is the only reference.
        unsafe {
            let bh = self.bh.as_ptr();
            core::slice::from_raw_parts_mut((*bh).b_data.cast::<u8>(), (*bh).b_size)
        }
    }
}

/// The backend of [`crate::block::BufferGuard`]: the held buffer lock.
///
/// # Invariants
///
/// The task that created the guard holds the buffer lock of `buf` until the guard is
/// dropped. Bento code reaches a buffer's bytes only under that lock, so the guard's view
/// of them is exclusive among bento users. (The kernel reads them without it only for
/// journal commits, and jbd2 keeps those apart from writers: [`Handle::modify`] writes
/// only after `jbd2_journal_get_write_access`, which waits for or copies a block being
/// committed. A journaled block must not be written through a plain guard.)
///
/// [`Handle::modify`]: crate::journal::Handle::modify
pub(crate) struct Guard<'a> {
    buf: &'a Buf,
    /// Unlocked where it was locked (the kernel does not require it, but the public
    /// guard is `!Send` in the userspace build too).
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: This task holds the buffer lock (type invariant) and releases it exactly
        // once, here.
        unsafe { bindings::unlock_buffer(self.buf.as_ptr()) };
    }
}

impl Deref for Guard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: The lock is held for the guard's lifetime (type invariant), and the
        // returned borrow of `self` prevents a mutable one meanwhile.
        unsafe { self.buf.bytes() }
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: The lock is held for the guard's lifetime (type invariant), and `&mut self`
        // makes this the only view of the bytes.
        unsafe { self.buf.bytes_mut() }
    }
}
