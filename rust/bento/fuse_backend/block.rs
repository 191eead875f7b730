// SPDX-License-Identifier: GPL-2.0
//! Userspace block device: an image file or block device node, `pread`/`pwrite`, and a
//! bounded buffer cache with one copy per block.
//!
//! Locking: the cache map is one mutex, taken briefly (lookup, insert, evict); each block
//! has its own mutex over its bytes (the buffer lock). Order: cache map, then a block's
//! bytes (eviction writes an unreferenced dirty block back under both; nobody else can
//! hold such a block's lock, since locking needs a reference).
//!
//! A block is *unreferenced* when the cache map holds the only `Arc` to it: a `Buf`
//! (the public `Buffer`) holds one, and so does the journal for every block a
//! transaction or a pending checkpoint holds. Only unreferenced blocks are evicted.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#![deny(missing_docs)]

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};

use crate::block::BlockDevice;
use crate::errno::{Errno, Result};

thread_local! {
    /// Buffer locks the current thread holds (the journal refuses to block on a commit
    /// while any is held: the commit may need that lock).
    static LOCKS_HELD: Cell<u32> = const { Cell::new(0) };
}

/// Whether the calling thread holds any buffer lock.
pub(crate) fn holds_buffer_lock() -> bool {
    LOCKS_HELD.with(|c| c.get() > 0)
}

/// Default cache size: 64 MiB worth of blocks.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data
/// consistent before anything that could panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BlockDevice {
    /// Claims the device for one mount: an exclusive `flock` on it, held until the last
    /// handle to the device is dropped. Waits up to `wait` for an earlier holder (a FUSE
    /// daemon still flushing after `fusermount3 -u` returned), then fails with `EBUSY`.
    pub fn claim(&self, wait: std::time::Duration) -> Result {
        use std::os::fd::AsRawFd;
        let fd = self.inner.0.file.as_raw_fd();
        let deadline = std::time::Instant::now() + wait;
        loop {
            // SAFETY: `fd` is the open file this device owns; flock has no memory effects.
            if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                crate::error!("bento: device is in use by another mount");
                return Err(Errno::EBUSY);
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Opens an image file or block device node with a cache of 64 MiB
    /// ([`DEFAULT_CACHE_BYTES`]). `block_size` must be a power of two from 512 to 65536.
    /// Userspace only: in the kernel the framework hands the mounted device over.
    pub fn open(path: &Path, read_only: bool, block_size: usize) -> Result<BlockDevice> {
        let blocks = DEFAULT_CACHE_BYTES.checked_div(block_size).unwrap_or(1);
        Self::open_with_cache(path, read_only, block_size, blocks)
    }

    /// Like [`BlockDevice::open`], with a cache of at most `cache_blocks` blocks (at
    /// least 1) that nobody references.
    pub fn open_with_cache(
        path: &Path,
        read_only: bool,
        block_size: usize,
        cache_blocks: usize,
    ) -> Result<BlockDevice> {
        if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
            crate::error!("bento: block size {block_size} is not a power of two in 512..=65536");
            return Err(Errno::EINVAL);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| {
                crate::error!("bento: cannot open {}: {e}", path.display());
                io_errno(&e)
            })?;
        let len = (&file).seek(SeekFrom::End(0)).map_err(|e| {
            crate::error!("bento: cannot size {}: {e}", path.display());
            io_errno(&e)
        })?;
        let bs = block_size as u64;
        Ok(BlockDevice {
            inner: Device(Arc::new(Dev {
                file,
                bs: block_size,
                nr_blocks: len / bs,
                read_only,
                cache: Mutex::new(Cache {
                    map: HashMap::new(),
                    clock: VecDeque::new(),
                    capacity: cache_blocks.max(1),
                }),
                limit: Mutex::new(Limit {
                    left: None,
                    writes: 0,
                }),
            })),
        })
    }

    /// Test hook, userspace only: after `limit` more block writes the device fails every
    /// write and flush with `EIO`, as if the machine had crashed at that point (what was
    /// written stays in the file). `None` removes the limit.
    pub fn set_write_limit(&self, limit: Option<u64>) {
        lock(&self.inner.0.limit).left = limit;
    }

    /// Test hook, userspace only: the number of blocks written to the device so far.
    pub fn blocks_written(&self) -> u64 {
        lock(&self.inner.0.limit).writes
    }
}

pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error()
        .and_then(Errno::from_raw)
        .unwrap_or(Errno::EIO)
}

/// The backend of [`BlockDevice`].
#[derive(Clone)]
pub(crate) struct Device(Arc<Dev>);

struct Dev {
    file: File,
    bs: usize,
    nr_blocks: u64,
    read_only: bool,
    cache: Mutex<Cache>,
    limit: Mutex<Limit>,
}

/// The crash-simulation hook.
struct Limit {
    left: Option<u64>,
    writes: u64,
}

struct Cache {
    map: HashMap<u64, Arc<Block>>,
    /// Every cached block number once, in CLOCK order.
    clock: VecDeque<u64>,
    capacity: usize,
}

/// One cached block.
pub(crate) struct Block {
    nr: u64,
    data: Mutex<Data>,
    /// Changed and not yet written back (unjournaled writes only).
    dirty: AtomicBool,
    /// The file system checked the bytes since they were read (the kernel's
    /// `BH_Verified`): cleared when they come from the device and by `get`.
    verified: AtomicBool,
    /// Used since the CLOCK hand last passed.
    referenced: AtomicBool,
    /// How many journal transactions and pending checkpoints hold the block. Writeback
    /// leaves it alone while non-zero: the journal writes it.
    jcount: AtomicU32,
    /// The thread holding the buffer lock, to refuse journal calls that would deadlock.
    owner: Mutex<Option<ThreadId>>,
}

struct Data {
    bytes: Box<[u8]>,
    uptodate: bool,
}

impl Device {
    pub(crate) fn block_size(&self) -> usize {
        self.0.bs
    }

    pub(crate) fn nr_blocks(&self) -> u64 {
        self.0.nr_blocks
    }

    pub(crate) fn read_only(&self) -> bool {
        self.0.read_only
    }

    pub(crate) fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn cache_capacity(&self) -> usize {
        lock(&self.0.cache).capacity
    }

    fn check(&self, blocknr: u64) -> Result {
        if blocknr >= self.0.nr_blocks {
            crate::error!(
                "bento: block {blocknr} is beyond the end of the device ({} blocks)",
                self.0.nr_blocks
            );
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// The cached block `blocknr`, inserted (not up to date) if missing.
    fn lookup(&self, blocknr: u64) -> Arc<Block> {
        let mut cache = lock(&self.0.cache);
        if let Some(b) = cache.map.get(&blocknr) {
            b.referenced.store(true, Ordering::Relaxed);
            return b.clone();
        }
        self.0.make_room(&mut cache);
        let b = Arc::new(Block {
            nr: blocknr,
            data: Mutex::new(Data {
                bytes: vec![0u8; self.0.bs].into_boxed_slice(),
                uptodate: false,
            }),
            dirty: AtomicBool::new(false),
            verified: AtomicBool::new(false),
            referenced: AtomicBool::new(false),
            jcount: AtomicU32::new(0),
            owner: Mutex::new(None),
        });
        cache.map.insert(blocknr, b.clone());
        cache.clock.push_back(blocknr);
        b
    }

    pub(crate) fn read(&self, blocknr: u64) -> Result<Buf> {
        self.check(blocknr)?;
        let b = self.lookup(blocknr);
        {
            let mut d = lock(&b.data);
            if !d.uptodate {
                b.verified.store(false, Ordering::Release);
                self.read_raw(blocknr, &mut d.bytes)?;
                d.uptodate = true;
            }
        }
        Ok(Buf {
            dev: self.clone(),
            b,
        })
    }

    /// Reads are synchronous here: nothing to start.
    pub(crate) fn readahead(&self, _blocks: &[u64]) {}

    pub(crate) fn get(&self, blocknr: u64) -> Result<Buf> {
        self.check(blocknr)?;
        let b = self.lookup(blocknr);
        // To be overwritten: whatever was checked no longer holds.
        b.verified.store(false, Ordering::Release);
        {
            let mut d = lock(&b.data);
            if !d.uptodate {
                d.bytes.fill(0);
                d.uptodate = true;
            }
        }
        Ok(Buf {
            dev: self.clone(),
            b,
        })
    }

    pub(crate) fn zero_blocks(&self, first: u64, count: u64) -> Result {
        let end = first.checked_add(count).ok_or(Errno::EIO)?;
        for nr in first..end {
            let b = self.get(nr)?;
            b.lock().fill(0);
            b.mark_dirty();
        }
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result {
        let wb = self.write_dirty();
        let fl = self.flush();
        wb.and(fl)
    }

    /// Writes every dirty block the journal does not hold back (no flush). Returns the
    /// first error after trying them all.
    pub(crate) fn write_dirty(&self) -> Result {
        let mut dirty: Vec<Arc<Block>> = lock(&self.0.cache)
            .map
            .values()
            .filter(|b| b.dirty.load(Ordering::Acquire))
            .cloned()
            .collect();
        dirty.sort_by_key(|b| b.nr);
        let mut res = Ok(());
        for b in dirty {
            if let Err(e) = self.0.write_back(&b) {
                res = res.and(Err(e));
            }
        }
        res
    }

    /// Flushes the file to stable storage (`fdatasync`).
    pub(crate) fn flush(&self) -> Result {
        if self.0.read_only {
            return Ok(());
        }
        if lock(&self.0.limit).left == Some(0) {
            return Err(Errno::EIO);
        }
        self.0.file.sync_data().map_err(|e| {
            crate::error!("bento: flushing the device failed: {e}");
            io_errno(&e)
        })
    }

    /// Splits `count` blocks from `first` into the cached ones (up to date), one at a
    /// time, and the runs of others, calling `f(from, to, block)` for each in order
    /// (indices from `first`; `block` is `None` for a run of uncached ones).
    fn split_cached(
        &self,
        first: u64,
        count: usize,
        mut f: impl FnMut(usize, usize, Option<&Block>) -> Result,
    ) -> Result {
        let cached: Vec<Option<Arc<Block>>> = {
            let cache = lock(&self.0.cache);
            (0..count as u64)
                .map(|i| {
                    let b = cache.map.get(&first.saturating_add(i))?;
                    // Order: cache map, then a block's bytes.
                    lock(&b.data).uptodate.then(|| b.clone())
                })
                .collect()
        };
        let mut run = None;
        for (i, b) in cached.iter().enumerate() {
            match b {
                None => {
                    run.get_or_insert(i);
                }
                Some(b) => {
                    if let Some(s) = run.take() {
                        f(s, i, None)?;
                    }
                    b.referenced.store(true, Ordering::Relaxed);
                    f(i, i + 1, Some(b))?;
                }
            }
        }
        run.map_or(Ok(()), |s| f(s, count, None))
    }

    /// Writes whole blocks of file data from `first` on. A block the cache holds is
    /// changed there (writeback or the journal writes it: no stale copy stays); each
    /// run of others goes to the device at once, in one write, without entering the
    /// cache: file data lives in the kernel's page cache above FUSE, a copy here would
    /// be a second one. The caller holds the file's lock, so nobody reads these blocks
    /// meanwhile (which could cache them as they were).
    pub(crate) fn write_data(&self, first: u64, bytes: &[u8]) -> Result {
        let bs = self.0.bs;
        self.0.offset(first, bytes.len())?;
        self.split_cached(first, bytes.len() / bs, |from, to, b| {
            let part = bytes.get(from * bs..to * bs).ok_or(Errno::EIO)?;
            let Some(b) = b else {
                return self.0.write_raw(first.saturating_add(from as u64), part);
            };
            let mut d = lock(&b.data);
            b.verified.store(false, Ordering::Release);
            d.bytes.copy_from_slice(part);
            b.dirty.store(true, Ordering::Release);
            Ok(())
        })
    }

    /// Reads whole blocks of file data from `first` on into `buf`: a block the cache
    /// holds from there, each run of others from the device at once, in one read,
    /// without entering the cache (see [`Device::write_data`]).
    pub(crate) fn read_data(&self, first: u64, buf: &mut [u8]) -> Result {
        let bs = self.0.bs;
        self.0.offset(first, buf.len())?;
        self.split_cached(first, buf.len() / bs, |from, to, b| {
            let part = buf.get_mut(from * bs..to * bs).ok_or(Errno::EIO)?;
            match b {
                Some(b) => part.copy_from_slice(&lock(&b.data).bytes),
                None => self.read_raw(first.saturating_add(from as u64), part)?,
            }
            Ok(())
        })
    }

    /// Reads whole blocks starting at `blocknr` into `buf`, bypassing the cache (the
    /// journal's own blocks).
    pub(crate) fn read_raw(&self, blocknr: u64, buf: &mut [u8]) -> Result {
        let off = self.0.offset(blocknr, buf.len())?;
        self.0.file.read_exact_at(buf, off).map_err(|e| {
            crate::error!("bento: reading block {blocknr} failed: {e}");
            Errno::EIO
        })
    }

    /// Writes whole blocks starting at `blocknr` from `buf`, bypassing the cache.
    pub(crate) fn write_raw(&self, blocknr: u64, buf: &[u8]) -> Result {
        self.0.write_raw(blocknr, buf)
    }
}

impl Dev {
    /// The byte offset of block `blocknr`, checking that `len` bytes from there are
    /// whole blocks on the device.
    fn offset(&self, blocknr: u64, len: usize) -> Result<u64> {
        let bs = self.bs as u64;
        let n = (len as u64) / bs;
        let fits = len as u64 % bs == 0
            && blocknr
                .checked_add(n)
                .is_some_and(|end| end <= self.nr_blocks);
        match blocknr.checked_mul(bs) {
            Some(off) if fits => Ok(off),
            _ => {
                crate::error!(
                    "bento: I/O of {len} bytes at block {blocknr} is outside the device ({} blocks)",
                    self.nr_blocks
                );
                Err(Errno::EIO)
            }
        }
    }

    fn write_raw(&self, blocknr: u64, buf: &[u8]) -> Result {
        if self.read_only {
            crate::error!("bento: write to block {blocknr} of a read-only device");
            return Err(Errno::EROFS);
        }
        let off = self.offset(blocknr, buf.len())?;
        let n = (buf.len() / self.bs) as u64;
        // The crash hook: write only as many blocks as are left.
        let allowed = {
            let mut l = lock(&self.limit);
            let allowed = l.left.map_or(n, |left| left.min(n));
            if let Some(left) = l.left.as_mut() {
                *left -= allowed;
            }
            l.writes = l.writes.saturating_add(allowed);
            allowed
        };
        let part = buf.get(..(allowed as usize) * self.bs).unwrap_or(buf);
        self.file.write_all_at(part, off).map_err(|e| {
            crate::error!("bento: writing block {blocknr} failed: {e}");
            io_errno(&e)
        })?;
        if allowed < n {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Writes `b` back if it is dirty and the journal does not hold it.
    fn write_back(&self, b: &Block) -> Result {
        let d = lock(&b.data);
        if b.jcount.load(Ordering::Acquire) != 0 || !b.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        self.write_raw(b.nr, &d.bytes).inspect_err(|_| {
            b.dirty.store(true, Ordering::Release);
        })
    }

    /// Evicts unreferenced blocks (CLOCK: a recently used one gets a second chance)
    /// until the cache is under its capacity or a full sweep found nothing to evict.
    fn make_room(&self, cache: &mut Cache) {
        let mut budget = cache.clock.len().saturating_mul(2);
        while cache.map.len() >= cache.capacity && budget > 0 {
            budget -= 1;
            let Some(nr) = cache.clock.pop_front() else {
                break;
            };
            let Some(b) = cache.map.get(&nr) else {
                continue;
            };
            if Arc::strong_count(b) > 1 || b.referenced.swap(false, Ordering::Relaxed) {
                cache.clock.push_back(nr);
                continue;
            }
            if self.write_back(b).is_err() {
                cache.clock.push_back(nr);
                continue;
            }
            cache.map.remove(&nr);
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        let blocks: Vec<Arc<Block>> = lock(&self.cache).map.values().cloned().collect();
        let mut failed = false;
        for b in blocks {
            failed |= self.write_back(&b).is_err();
        }
        if failed || self.file.sync_data().is_err() {
            crate::error!("bento: writing the cache back failed when closing the device");
        }
    }
}

/// The backend of [`crate::block::Buffer`].
#[derive(Clone)]
pub(crate) struct Buf {
    dev: Device,
    b: Arc<Block>,
}

impl Buf {
    pub(crate) fn blocknr(&self) -> u64 {
        self.b.nr
    }

    pub(crate) fn device(&self) -> &Device {
        &self.dev
    }

    pub(crate) fn lock(&self) -> Guard<'_> {
        let g = lock(&self.b.data);
        *lock(&self.b.owner) = Some(thread::current().id());
        LOCKS_HELD.with(|c| c.set(c.get().saturating_add(1)));
        Guard { g, b: &self.b }
    }

    /// Whether the calling thread holds this buffer's lock.
    pub(crate) fn locked_by_me(&self) -> bool {
        *lock(&self.b.owner) == Some(thread::current().id())
    }

    pub(crate) fn mark_dirty(&self) {
        self.b.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.b.dirty.load(Ordering::Acquire)
    }

    pub(crate) fn verified(&self) -> bool {
        self.b.verified.load(Ordering::Acquire)
    }

    pub(crate) fn set_verified(&self) {
        self.b.verified.store(true, Ordering::Release);
    }

    pub(crate) fn clear_verified(&self) {
        self.b.verified.store(false, Ordering::Release);
    }

    pub(crate) fn sync(&self) -> Result {
        self.dev.0.write_back(&self.b)
    }

    /// The journal takes the block over: plain writeback stops until [`Buf::jrelease`].
    /// Changes made before are now the journal's to write.
    pub(crate) fn jhold(&self) {
        self.b.jcount.fetch_add(1, Ordering::AcqRel);
        self.b.dirty.store(false, Ordering::Release);
    }

    /// Drops one journal hold taken with [`Buf::jhold`].
    pub(crate) fn jrelease(&self) {
        let _ = self
            .b
            .jcount
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
    }

    /// A copy of the block's bytes, taken under its lock.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        lock(&self.b.data).bytes.to_vec()
    }
}

/// The backend of [`crate::block::BufferGuard`].
pub(crate) struct Guard<'a> {
    g: MutexGuard<'a, Data>,
    b: &'a Block,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        *lock(&self.b.owner) = None;
        LOCKS_HELD.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

impl Deref for Guard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.g.bytes
    }
}

impl DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.g.bytes
    }
}
