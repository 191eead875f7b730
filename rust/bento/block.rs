// SPDX-License-Identifier: GPL-2.0
//! Block devices and their buffer cache: the `block` service.
//!
//! # The model
//!
//! A [`BlockDevice`] is a shared handle on the device a file system lives on, divided into
//! blocks of [`BlockDevice::block_size`] bytes. Blocks are reached through a cache that
//! keeps **at most one copy of each block**: [`BlockDevice::read`] returns a [`Buffer`], a
//! counted reference to that copy (the `buffer_head` reference of the kernel: `get_bh` /
//! `brelse`), and two reads of the same block give two references to the same bytes.
//!
//! The bytes are only reachable through [`Buffer::lock`], whose guard derefs to `[u8]`
//! (mutably too) and unlocks when dropped, so there are never two `&mut` views of one
//! block. A guard is meant to be short-lived: the journal takes the same lock
//! ([`crate::journal::Handle::modify`]), so do not call into the journal or the device
//! while holding one.
//!
//! Writes reach the disk in one of two ways:
//! - **Unjournaled** blocks (file data, or metadata of a file system without a journal):
//!   change them under the lock, then [`Buffer::mark_dirty`]. Dirty buffers are written
//!   back by [`BlockDevice::sync`], [`Buffer::sync`], when the cache evicts them, and,
//!   when a journal is loaded on the device, before each journal commit (data=ordered).
//! - **Journaled** metadata: change it only through a journal handle
//!   ([`crate::journal::Handle::modify`]). Such a buffer belongs to the journal until its
//!   transaction is committed and checkpointed; `sync` and eviction leave it alone.
//!
//! The cache is bounded; it evicts buffers that nobody references, writing dirty ones
//! back first, and never evicts a buffer a journal transaction holds. When every cached
//! buffer is referenced it grows past its bound rather than fail.
//!
//! # Backends
//!
//! In the kernel a `BlockDevice` is the mounted block device and a `Buffer` a
//! `buffer_head` (`sb_bread`, `sb_getblk`, `lock_buffer`, `mark_buffer_dirty`,
//! `sync_dirty_buffer`, `sync_blockdev`). In userspace it is an image file or a block
//! device node read and written with `pread`/`pwrite`, with its own cache; the userspace
//! constructor is `BlockDevice::open` (in the FUSE backend).
//!
//! Where the kernel backend differs:
//! - The device comes from the mount (`MountOptions::open_device`, which sets the block
//!   size of the block device's cache: call it before using any buffer).
//!   [`BlockDevice::read_only`] says whether the device itself is read-only; a
//!   read-only mount is the file system's business (`MountOptions::read_only`).
//! - The cache is the block device's page cache, bounded by memory pressure.
//! - A block from [`BlockDevice::get`] that was not cached holds whatever its page held
//!   (not zeros) until written; it counts as up to date once [`Buffer::mark_dirty`] or
//!   the journal ([`crate::journal::Handle::modify`] or `create`, which zeroes it first)
//!   wrote it.
//! - Buffers marked dirty are written back by the kernel's writeback and by
//!   [`BlockDevice::sync`]/[`Buffer::sync`], but **not** before journal commits: jbd2
//!   orders only the file data filed with [`crate::journal::Handle::order_data`]. (File
//!   data does not go through buffers in the kernel, and [`BlockDevice::zero_blocks`] is
//!   synchronous.) [`Buffer::mark_dirty`] of a block the journal holds (changed by a
//!   transaction not yet checkpointed) is refused with a log line: a dirty bit on a
//!   journaled buffer breaks jbd2.

#![deny(missing_docs)]

use core::fmt;
use core::ops::{Deref, DerefMut};

use crate::backend::block as imp;
use crate::errno::Result;

/// A block device: the disk (or image file) a file system lives on. Cloning is cheap and
/// gives another handle on the same device and cache.
#[derive(Clone)]
pub struct BlockDevice {
    pub(crate) inner: imp::Device,
}

impl BlockDevice {
    /// The size of one block in bytes (a power of two; 4096 in practice).
    pub fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    /// The number of whole blocks on the device.
    pub fn nr_blocks(&self) -> u64 {
        self.inner.nr_blocks()
    }

    /// Whether the device was opened read-only: every write then fails with `EROFS`.
    pub fn read_only(&self) -> bool {
        self.inner.read_only()
    }

    /// Returns a reference to block `blocknr`, reading it from the device unless it is
    /// cached. Fails with `EIO` (and a log line) past the end of the device or when the
    /// read fails.
    pub fn read(&self, blocknr: u64) -> Result<Buffer> {
        self.inner.read(blocknr).map(|inner| Buffer { inner })
    }

    /// Starts reading `blocks` into the cache (those not there), without waiting, so
    /// that a later [`BlockDevice::read`] of one finds it, or waits less: for metadata
    /// a sequential walk will need next (ext4 reads inode table blocks ahead the same
    /// way). Neighbours on the disk, in ascending order, go in one request. A hint:
    /// blocks off the device and errors are ignored (the later `read` reports them).
    /// The userspace backend reads synchronously and ignores it.
    pub fn readahead(&self, blocks: &[u64]) {
        self.inner.readahead(blocks)
    }

    /// Returns a reference to block `blocknr` **without reading it**, for a block that is
    /// about to be overwritten completely (a newly allocated block). Its contents are
    /// unspecified until written (the userspace backend zeroes a block it did not have
    /// cached). Fails with `EIO` past the end of the device.
    pub fn get(&self, blocknr: u64) -> Result<Buffer> {
        self.inner.get(blocknr).map(|inner| Buffer { inner })
    }

    /// Fills blocks `[first, first + count)` with zeros on the device, for blocks just
    /// allocated to a file (`fallocate`): file data is never written through buffers,
    /// because the framework caches it elsewhere (the kernel's page cache). In the kernel
    /// this is `sb_issue_zeroout`, done when it returns; in userspace the zeros go through
    /// the cache and are written before the next journal commit (data=ordered). `EIO`
    /// past the end of the device.
    pub fn zero_blocks(&self, first: u64, count: u64) -> Result {
        self.inner.zero_blocks(first, count)
    }

    /// Writes every dirty unjournaled buffer back and flushes the device's write cache:
    /// when it returns, everything marked dirty before the call is durable. Journaled
    /// metadata is made durable by the journal instead
    /// ([`crate::journal::Journal::force_commit`]).
    pub fn sync(&self) -> Result {
        self.inner.sync()
    }
}

impl fmt::Debug for BlockDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockDevice")
            .field("block_size", &self.block_size())
            .field("nr_blocks", &self.nr_blocks())
            .finish()
    }
}

/// One reference to a cached block (a `buffer_head` reference). Cloning takes another
/// reference to the same block; the block stays cached while any reference exists.
#[derive(Clone)]
pub struct Buffer {
    pub(crate) inner: imp::Buf,
}

impl Buffer {
    /// The block number on the device.
    pub fn blocknr(&self) -> u64 {
        self.inner.blocknr()
    }

    /// Locks the block and gives access to its bytes (exactly
    /// [`BlockDevice::block_size`] of them) until the guard is dropped. Other threads
    /// locking the same block wait meanwhile. Locking a block twice from one thread
    /// deadlocks, and so does calling the journal with the lock held.
    pub fn lock(&self) -> BufferGuard<'_> {
        BufferGuard {
            inner: self.inner.lock(),
        }
    }

    /// Marks an unjournaled block dirty after changing it under [`Buffer::lock`]: it
    /// will be written back by [`BlockDevice::sync`], [`Buffer::sync`], eviction or the
    /// next journal commit. Journaled metadata must use the journal instead.
    pub fn mark_dirty(&self) {
        self.inner.mark_dirty()
    }

    /// Whether the block has changes not yet written back (journaled changes are not
    /// counted: the journal writes those).
    pub fn is_dirty(&self) -> bool {
        self.inner.is_dirty()
    }

    /// Whether the file system marked the block's bytes checked
    /// ([`Buffer::set_verified`]) since they were last read from the device: the
    /// kernel's `BH_Verified`, with which ext4 verifies a metadata block's checksum once
    /// per read from the disk instead of at every use. Reading the block from the device,
    /// [`BlockDevice::get`] and [`Buffer::clear_verified`] clear the mark.
    pub fn verified(&self) -> bool {
        self.inner.verified()
    }

    /// Marks the bytes checked. Only for bytes the file system checked, and which it then
    /// keeps valid: it changes them only in ways that keep them so (a failed change
    /// should [`Buffer::clear_verified`]).
    pub fn set_verified(&self) {
        self.inner.set_verified()
    }

    /// Drops the mark of [`Buffer::verified`]: the next user checks the bytes again.
    pub fn clear_verified(&self) {
        self.inner.clear_verified()
    }

    /// Writes this block back now if it is dirty and waits for the write. As with
    /// `sync_dirty_buffer`, the device's volatile write cache is not flushed: use
    /// [`BlockDevice::sync`] for durability. Journaled metadata is left to the journal.
    pub fn sync(&self) -> Result {
        self.inner.sync()
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("blocknr", &self.blocknr())
            .finish()
    }
}

/// The locked bytes of a block, from [`Buffer::lock`]. Unlocks when dropped.
pub struct BufferGuard<'a> {
    pub(crate) inner: imp::Guard<'a>,
}

impl Deref for BufferGuard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

impl DerefMut for BufferGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.inner
    }
}
