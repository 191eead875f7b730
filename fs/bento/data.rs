// SPDX-License-Identifier: GPL-2.0
//! File data of block file systems: the page cache over buffer heads, in the shape of
//! ext2 in 6.12 (`block_read_full_folio`, `mpage_readahead`, `block_write_begin`,
//! `mpage_writepages`, `block_page_mkwrite`), with the file system asked only to map
//! file blocks to disk blocks (`map_blocks`).
//!
//! **Allocation happens before any folio is locked.** `write_begin` and `page_mkwrite`
//! first ask the file system to map (allocating) the blocks they will write, with no
//! folio locked, and only then lock the folio, whose `get_block` finds the blocks mapped.
//! The file system starts journal transactions while allocating; jbd2 commits lock
//! folios to write ordered data, so starting a transaction under a folio lock could
//! deadlock against a commit that waits for that folio (ext4 orders them the same way:
//! transaction first, folio second). For the same reason writeback (`writepages`, also
//! run by jbd2's commit) never allocates: every dirty block is mapped already.

use core::sync::atomic::Ordering;

use bento::Extent;
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call::Table;
use crate::inode::{container, fs};
use crate::superblock::journal_of;

pub(crate) static BLOCK_AOPS: bindings::address_space_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::address_space_operations = unsafe { core::mem::zeroed() };
    ops.read_folio = Some(read_folio);
    ops.readahead = Some(readahead);
    ops.writepages = Some(writepages);
    ops.write_begin = Some(write_begin);
    ops.write_end = Some(write_end);
    ops.dirty_folio = Some(bindings::block_dirty_folio);
    ops.invalidate_folio = Some(bindings::block_invalidate_folio);
    ops.is_partially_uptodate = Some(bindings::block_is_partially_uptodate);
    ops.error_remove_folio = Some(bindings::generic_error_remove_folio);
    ops
};

static VM_OPS: Table<bindings::vm_operations_struct> = Table({
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::vm_operations_struct = unsafe { core::mem::zeroed() };
    ops.fault = Some(bindings::filemap_fault);
    ops.map_pages = Some(bindings::filemap_map_pages);
    ops.page_mkwrite = Some(page_mkwrite);
    ops
});

/// How many blocks a lookup in order asks the file system for, at least: the run it
/// answers is cached ([`MapCache`](crate::mapcache::MapCache)), so the next blocks of a
/// sequential read or overwrite need no call. (Random lookups ask for what they need:
/// a longer answer costs the file system a longer walk, for nothing.)
const LOOKAHEAD: u32 = 256;

/// Maps `count` blocks of `inode` from `block` (allocating holes if `create`): from the
/// inode's cached run, or by asking the file system.
///
/// # Safety
///
/// `inode` must be a live inode of a block bento superblock.
pub(crate) unsafe fn map(
    inode: *const bindings::inode,
    block: u64,
    count: u32,
    create: bool,
) -> Result<Extent> {
    let count = count.max(1);
    // SAFETY: `inode` is live.
    let cache = unsafe { &container(inode).map };
    let miss = match cache.lookup(block, count) {
        Ok(e) => return Ok(e),
        Err(miss) => miss,
    };
    // Creating maps exactly what is asked for: it allocates the holes.
    let ask = if !create && miss.follows {
        count.max(LOOKAHEAD)
    } else {
        count
    };
    let mut e = Extent::default();
    // SAFETY: `inode` is live; `e` is valid for writes.
    to_result(unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.map_blocks)(fs, ino, block, ask, create, &mut e))
    })?;
    e.len = e.len.clamp(1, ask);
    cache.store(miss.token, block, &e);
    e.len = e.len.min(count);
    if e.new {
        // The file system's block count changed.
        crate::inode::invalidate(inode.cast_mut());
    }
    Ok(e)
}

/// Whether every block of `inode` that bytes `[pos, end)` touch is mapped.
///
/// # Safety
///
/// `inode` must be a live inode of a block bento superblock.
unsafe fn mapped(inode: *const bindings::inode, pos: i64, end: i64) -> Result<bool> {
    // SAFETY: `inode` is live.
    let bits = unsafe { (*inode).i_blkbits } as u32;
    let last = (end.max(pos + 1) as u64 - 1) >> bits;
    let mut b = pos as u64 >> bits;
    while b <= last {
        let want = u32::try_from(last - b + 1).unwrap_or(u32::MAX);
        // SAFETY: By the caller's guarantee.
        let e = unsafe { map(inode, b, want, false) }?;
        if e.disk_block == 0 {
            return Ok(false);
        }
        b += u64::from(e.len);
    }
    Ok(true)
}

/// Maps (allocating) every block of `inode` that bytes `[pos, end)` touch. Returns the
/// blocks that were newly allocated, as a bit mask from the first one.
///
/// # Safety
///
/// `inode` must be a live inode of a block bento superblock; no folio of it may be
/// locked by the caller.
unsafe fn allocate(inode: *const bindings::inode, pos: i64, end: i64) -> Result<u64> {
    if end <= pos {
        return Ok(0);
    }
    // SAFETY: `inode` is live.
    let (bits, size, bi) = unsafe {
        (
            (*inode).i_blkbits as u32,
            bindings::i_size_read(inode) as u64,
            container(inode),
        )
    };
    let first = pos as u64 >> bits;
    let last = (end as u64 - 1) >> bits;
    // A buffered write past the end of the file allocates up to its own end at once
    // (at most `LOOKAHEAD` blocks a call): the blocks of the pages it has not copied
    // yet lie past the size until the write records it.
    let ahead = bi.writing_to.load(Ordering::Relaxed);
    let ahead_last = ahead.checked_sub(1).map_or(0, |a| a >> bits);
    let mut new = 0u64;
    let mut b = first;
    while b <= last {
        let mut want = last - b + 1;
        let asks_ahead = ahead_last > last && b << bits >= size;
        if asks_ahead {
            want = want.max((ahead_last - b + 1).min(u64::from(LOOKAHEAD)));
        }
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        // SAFETY: By the caller's guarantee.
        let e = unsafe { map(inode, b, want, true) }?;
        if e.new {
            if asks_ahead {
                // Allocated ahead, past the size: the file system keeps them until a
                // size is recorded (`FileSystem::map_blocks`), which the write does at
                // its end.
                bi.record.store(true, Ordering::SeqCst);
            }
            for i in 0..u64::from(e.len) {
                if let Some(bit) = 1u64.checked_shl((b + i - first) as u32) {
                    new |= bit;
                }
            }
        }
        b += u64::from(e.len);
    }
    Ok(new)
}

/// Fills `bh` from extent `e` of file block `iblock`.
///
/// # Safety
///
/// `inode` and `bh` must be valid (a `get_block` call's arguments).
unsafe fn set_bh(
    inode: *mut bindings::inode,
    bh: *mut bindings::buffer_head,
    e: &Extent,
    new: bool,
) {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let bits = (*inode).i_blkbits as u32;
        let want = ((*bh).b_size >> bits).max(1);
        let len = (e.len as usize).min(want);
        bindings::bento_map_bh(bh, (*inode).i_sb, e.disk_block, len << bits, new);
    }
}

/// How many blocks from file block `block` of `inode` lie before the window of blocks a
/// buffered write mapped ahead of its data ([`premap`]; `u64::MAX` if none): 0 if
/// `block` is in it, a hole to readers, since its disk block holds garbage until the
/// write's data is in the page cache. A reader checks after mapping: the window opens
/// before the file system maps anything in it, so a mapping seen means an open window
/// is seen too.
///
/// # Safety
///
/// `inode` must be a live inode of a block bento superblock.
unsafe fn fresh(inode: *const bindings::inode, block: u64) -> u64 {
    // SAFETY: `inode` is live.
    let bi = unsafe { container(inode) };
    let from = bi.fresh_from.load(Ordering::SeqCst);
    let end = bi.fresh_end.load(Ordering::SeqCst);
    if from >= end || block >= end {
        u64::MAX
    } else {
        from.saturating_sub(block)
    }
}

/// `get_block` that only maps: holes stay unmapped for reads, and a hole where a write
/// is about to happen is a bug (the block should have been allocated before the folio
/// was locked), reported as `EIO`.
///
/// # Safety
///
/// Called by the buffer-head helpers with valid arguments.
pub(crate) unsafe extern "C" fn get_block_mapped(
    inode: *mut bindings::inode,
    iblock: bindings::sector_t,
    bh: *mut bindings::buffer_head,
    create: i32,
) -> i32 {
    // SAFETY: Valid arguments (caller's contract).
    let (bits, size) = unsafe { ((*inode).i_blkbits as u32, (*bh).b_size) };
    let count = u32::try_from((size >> bits).max(1)).unwrap_or(u32::MAX);
    // SAFETY: As above.
    match unsafe { map(inode, iblock, count, false) } {
        Ok(mut e) if e.disk_block != 0 => {
            if create == 0 {
                // Checked after mapping (see `fresh`). SAFETY: As above.
                let before = unsafe { fresh(inode, iblock) };
                if before == 0 {
                    return 0;
                }
                e.len = e.len.min(u32::try_from(before).unwrap_or(u32::MAX));
            }
            // SAFETY: As above.
            unsafe { set_bh(inode, bh, &e, false) };
            0
        }
        Ok(_) if create == 0 => 0,
        Ok(_) => {
            // SAFETY: `inode` is valid.
            let ino = unsafe { (*inode).i_ino };
            pr_err!("inode {}: block {} unmapped at write\n", ino, iblock);
            EIO.to_errno()
        }
        Err(e) => e.to_errno(),
    }
}

/// `get_block` of `write_begin`: the blocks were allocated just before; those that are
/// new get `BH_New`, so the parts of them the write does not cover are zeroed (and any
/// stale alias in the block device's cache is dropped).
///
/// # Safety
///
/// Called by `block_write_begin` with valid arguments, under `i_rwsem`.
unsafe extern "C" fn get_block_prep(
    inode: *mut bindings::inode,
    iblock: bindings::sector_t,
    bh: *mut bindings::buffer_head,
    create: i32,
) -> i32 {
    // SAFETY: Valid arguments (caller's contract).
    let ret = unsafe { get_block_mapped(inode, iblock, bh, create) };
    if ret == 0 {
        // SAFETY: As above; the mask is written by `write_begin` under the same lock.
        let bi = unsafe { container(inode) };
        let first = bi.new_first.load(Ordering::Relaxed);
        let mask = bi.new_blocks.load(Ordering::Relaxed);
        // Blocks wholly past the end of the file hold no file data (whatever is on the
        // disk there): new as well, so that what the write does not cover is zeroed.
        // SAFETY: As above.
        let past_end =
            unsafe { (iblock << (*inode).i_blkbits) >= bindings::i_size_read(inode) as u64 };
        let new = past_end
            || iblock
                .checked_sub(first)
                .and_then(|d| 1u64.checked_shl(u32::try_from(d).ok()?))
                .is_some_and(|bit| mask & bit != 0);
        if new {
            // SAFETY: `bh` was just mapped; it is only flagged.
            unsafe {
                bindings::bento_map_bh(bh, (*inode).i_sb, (*bh).b_blocknr, (*bh).b_size, true)
            };
        }
    }
    ret
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn read_folio(_file: *mut bindings::file, folio: *mut bindings::folio) -> i32 {
    // SAFETY: `folio` is locked (VFS contract).
    unsafe { bindings::block_read_full_folio(folio, Some(get_block_mapped)) }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn readahead(rac: *mut bindings::readahead_control) {
    // SAFETY: VFS contract.
    unsafe { bindings::mpage_readahead(rac, Some(get_block_mapped)) }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn writepages(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
) -> i32 {
    // SAFETY: VFS contract.
    unsafe { bindings::mpage_writepages(mapping, wbc, Some(get_block_mapped)) }
}

/// The framework's journal handle around a data write (`FileSystem::DATA_CREDITS`),
/// started before any folio is locked: the file system's allocation nests in it, so
/// the allocating transaction cannot commit before the new blocks' data is dirty in the
/// page cache (data=ordered writes it first). Null when the file system has no journal
/// or asks for no credits.
struct DataHandle(*mut bindings::handle_t);

impl DataHandle {
    /// Starts the handle for `inode`'s file system.
    ///
    /// # Safety
    ///
    /// `inode` must be a live inode of a block bento superblock; the calling task must
    /// hold no folio lock of it and no other journal handle.
    unsafe fn start(inode: *const bindings::inode) -> Result<DataHandle> {
        // SAFETY: By the caller's guarantee.
        unsafe { Self::start_times(inode, 1) }
    }

    /// Starts the handle with `times` the file system's data credits (for as many
    /// `map_blocks` allocations).
    ///
    /// # Safety
    ///
    /// As for [`DataHandle::start`].
    unsafe fn start_times(inode: *const bindings::inode, times: u32) -> Result<DataHandle> {
        // SAFETY: By the caller's guarantee.
        let (journal, credits) = unsafe {
            let sb = (*inode).i_sb;
            (
                journal_of(sb),
                fs(inode).data_credits().saturating_mul(times),
            )
        };
        if journal.is_null() || credits == 0 {
            return Ok(DataHandle(core::ptr::null_mut()));
        }
        // SAFETY: The journal stays loaded while the superblock is mounted.
        let h = unsafe { bindings::jbd2_journal_start(journal, credits as i32) };
        Ok(DataHandle(kernel::error::from_err_ptr(h)?))
    }

    /// Stops the handle; returns jbd2's verdict (0 or a negative errno).
    fn stop(self) -> i32 {
        if self.0.is_null() {
            return 0;
        }
        // SAFETY: The handle was started by this task and is stopped once.
        unsafe { bindings::jbd2_journal_stop(self.0) }
    }

    fn into_raw(self) -> *mut core::ffi::c_void {
        self.0.cast()
    }

    /// Whether this task held a handle already, which this one joined: a commit would
    /// wait for that one to stop.
    fn is_nested(&self) -> bool {
        // SAFETY: A non-null handle is live until stopped (by `stop`, which consumes it).
        !self.0.is_null() && unsafe { (*self.0).h_ref } > 1
    }
}

/// Allocates the blocks of bytes `[pos, end)` of `inode` inside a [`DataHandle`],
/// retrying once after a journal commit on `ENOSPC` (blocks freed by transactions not
/// yet committed become free then; the file system cannot commit inside our handle).
///
/// # Safety
///
/// As for [`DataHandle::start`].
unsafe fn allocate_in_handle(
    inode: *const bindings::inode,
    pos: i64,
    end: i64,
) -> Result<(DataHandle, u64)> {
    let mut retried = false;
    loop {
        // SAFETY: By the caller's guarantee.
        let h = unsafe { DataHandle::start(inode) }?;
        // SAFETY: As above; no folio is locked.
        match unsafe { allocate(inode, pos, end) } {
            Ok(new) => return Ok((h, new)),
            Err(e) if e == ENOSPC && !retried && !h.0.is_null() && !h.is_nested() => {
                h.stop();
                retried = true;
                // SAFETY: No handle is held now; the journal is loaded.
                unsafe { bindings::jbd2_journal_force_commit(journal_of((*inode).i_sb)) };
            }
            Err(e) => {
                h.stop();
                return Err(e);
            }
        }
    }
}

/// Gets the blocks of bytes `[pos, end)` of `inode` ready to be written: if all are
/// mapped already (an overwrite), with no journal handle at all; otherwise allocated in
/// a [`DataHandle`] ([`allocate_in_handle`]). Blocks wholly past the end of the file
/// are taken for holes without a lookup: appending allocates in one call.
///
/// # Safety
///
/// As for [`DataHandle::start`].
unsafe fn prepare(
    inode: *const bindings::inode,
    pos: i64,
    end: i64,
    window: bool,
) -> Result<(DataHandle, u64)> {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let inside = pos < bindings::i_size_read(inode);
        let ready = if inside {
            mapped(inode, pos, end)?
        } else {
            // Blocks this write allocated ahead are in the cache.
            cached(inode, pos, end)
        };
        if ready {
            return Ok((DataHandle(core::ptr::null_mut()), 0));
        }
        let bits = (*inode).i_blkbits as u32;
        let block = pos as u64 >> bits;
        // A hole (or unwritten block) inside the file, which this folio's write fills:
        // a hole to readers until `write_end`, since the block is mapped before the
        // folio is locked (see `fresh`).
        let bi = container(inode);
        let opened = window && inside && (end.max(pos + 1) as u64 - 1) >> bits == block;
        if opened {
            open_window(bi, block, 1);
            bi.fresh_folio.store(true, Ordering::Relaxed);
        }
        let r = allocate_in_handle(inode, pos, end);
        if opened && r.is_err() {
            bi.fresh_folio.store(false, Ordering::Relaxed);
            close_window(bi);
        }
        r
    }
}

/// Opens `bi`'s fresh window on blocks `[from, from + n)` (see [`fresh`]): before the
/// file system is asked to map them. Under `i_rwsem`.
fn open_window(bi: &crate::inode::BentoInode, from: u64, n: u64) {
    close_window(bi);
    bi.fresh_from.store(from, Ordering::SeqCst);
    bi.fresh_end.store(from + n, Ordering::SeqCst);
}

/// Closes `bi`'s fresh window: its blocks hold data (or zeros) in the page cache, or
/// were never mapped.
fn close_window(bi: &crate::inode::BentoInode) {
    bi.fresh_end.store(0, Ordering::SeqCst);
}

/// Whether the inode's cached run maps every block that bytes `[pos, end)` touch.
///
/// # Safety
///
/// `inode` must be a live inode of a block bento superblock.
unsafe fn cached(inode: *const bindings::inode, pos: i64, end: i64) -> bool {
    // SAFETY: `inode` is live.
    let (bits, cache) = unsafe { ((*inode).i_blkbits as u32, &container(inode).map) };
    let first = pos as u64 >> bits;
    let last = (end.max(pos + 1) as u64 - 1) >> bits;
    let count = u32::try_from(last - first + 1).unwrap_or(u32::MAX);
    cache
        .lookup(first, count)
        .is_ok_and(|e| u64::from(e.len) > last - first)
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid
/// (`generic_perform_write`, under `i_rwsem`).
unsafe extern "C" fn write_begin(
    _file: *mut bindings::file,
    mapping: *mut bindings::address_space,
    pos: i64,
    len: u32,
    foliop: *mut *mut bindings::folio,
    fsdata: *mut *mut core::ffi::c_void,
) -> i32 {
    // SAFETY: VFS contract; no folio of the file is locked yet, nor a handle held.
    unsafe {
        let inode = (*mapping).host;
        let (h, new) = match prepare(inode, pos, pos + i64::from(len), true) {
            Ok(r) => r,
            Err(e) => return e.to_errno(),
        };
        let bi = container(inode);
        bi.new_first
            .store(pos as u64 >> (*inode).i_blkbits, Ordering::Relaxed);
        bi.new_blocks.store(new, Ordering::Relaxed);
        let ret = bindings::block_write_begin(mapping, pos, len, foliop, Some(get_block_prep));
        bi.new_blocks.store(0, Ordering::Relaxed);
        if ret != 0 {
            if bi.fresh_folio.swap(false, Ordering::Relaxed) {
                close_window(bi);
            }
            h.stop();
            return ret;
        }
        *fsdata = h.into_raw();
        0
    }
}

/// `write_iter` of buffered writes: `generic_file_write_iter`'s steps, but the pages go
/// through [`perform_write`].
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid (a
/// block-backed regular file).
pub(crate) unsafe fn buffered_write(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: VFS contract.
    unsafe {
        let inode = (*(*iocb).ki_filp).f_inode;
        bindings::bento_inode_lock(inode);
        let mut ret = bindings::generic_write_checks(iocb, from);
        if ret > 0 {
            // Before the write starts, so the new times are recorded now (if they
            // changed), as `dirty_inode` does.
            let err = bindings::kiocb_modified(iocb);
            ret = if err != 0 {
                err as isize
            } else {
                perform_write(iocb, from, inode)
            };
        }
        bindings::bento_inode_unlock(inode);
        if ret > 0 {
            ret = bindings::bento_generic_write_sync(iocb, ret);
        }
        ret
    }
}

/// Blocks a buffered write maps ahead at most at once inside the file ([`premap`]):
/// 1 MiB of 4 KiB blocks.
const PREMAP_BLOCKS: u64 = 256;

/// Data credits (`FileSystem::DATA_CREDITS`) of the handle [`premap`] holds: room for
/// several `map_blocks` calls (a run can end at an indirect block, or where the file
/// system's free space does).
const PREMAP_CREDIT_TIMES: u32 = 4;

/// What [`premap`] found where a write goes on.
enum Stretch {
    /// Blocks to write the usual way, folio by folio (`write_begin`): mapped already, or
    /// where mapping ahead did not work out.
    Plain(u64),
    /// Blocks mapped ahead, now the inode's fresh window, in a handle that must stay
    /// held until their data is in the page cache ([`finish_premap`]).
    Premapped(DataHandle, u64),
}

/// Maps ahead, inside the file, up to `want` (≥ 1) whole blocks of `inode` from
/// `block` that are holes (or unwritten, to the file system) for a buffered write that
/// overwrites all of them: one `map_blocks` call per run, not one per folio. They go in
/// a [`DataHandle`] that stays held until the data is copied in, so the transaction
/// mapping them cannot commit before the data is dirty (data=ordered then writes it
/// first), and they are the inode's fresh window meanwhile, holes to readers.
///
/// # Safety
///
/// `inode` must be a live, locked (`i_rwsem`) regular-file inode of a block bento
/// superblock; the task holds no folio lock and no journal handle.
unsafe fn premap(inode: *const bindings::inode, block: u64, want: u64) -> Stretch {
    let ask = u32::try_from(want).unwrap_or(u32::MAX);
    // SAFETY: By the caller's guarantee.
    let e = match unsafe { map(inode, block, ask, false) } {
        Ok(e) => e,
        Err(_) => return Stretch::Plain(1),
    };
    let n = u64::from(e.len).clamp(1, want);
    if e.disk_block != 0 || n < 2 {
        return Stretch::Plain(n);
    }
    // SAFETY: `inode` is live.
    let bi = unsafe { container(inode) };
    // Opened before anything is mapped (see `fresh`); `write_end` moves its start.
    open_window(bi, block, n);
    // SAFETY: By the caller's guarantee.
    let h = match unsafe { DataHandle::start_times(inode, PREMAP_CREDIT_TIMES) } {
        Ok(h) => h,
        Err(_) => {
            close_window(bi);
            return Stretch::Plain(1);
        }
    };
    let mut done = 0u64;
    while done < n {
        let ask = u32::try_from(n - done).unwrap_or(u32::MAX);
        // SAFETY: By the caller's guarantee; the handle is ours.
        match unsafe { map(inode, block + done, ask, true) } {
            Ok(e) if e.disk_block != 0 => {
                if e.new {
                    // A block freed as metadata may linger in the device's cache.
                    // SAFETY: The superblock and its device are live.
                    unsafe {
                        bindings::clean_bdev_aliases(
                            (*(*inode).i_sb).s_bdev,
                            e.disk_block,
                            u64::from(e.len),
                        )
                    };
                }
                done += u64::from(e.len);
            }
            // Out of credits or space: what is mapped is written; `write_begin` deals
            // with the rest (and retries after a commit).
            _ => break,
        }
    }
    if done == 0 {
        h.stop();
        close_window(bi);
        return Stretch::Plain(1);
    }
    bi.fresh_end.store(block + done, Ordering::SeqCst);
    Stretch::Premapped(h, done)
}

/// Ends a [`premap`] stretch once the write copied what it could (up to byte `pos`):
/// blocks mapped ahead that it did not reach (a short write) are zeroed through the
/// page cache, dirty before the handle stops, so neither a reader nor the commit can
/// show what the disk held there; then the window closes and the handle stops.
///
/// # Safety
///
/// As for [`premap`], whose handle `h` is.
unsafe fn finish_premap(inode: *mut bindings::inode, pos: i64, h: DataHandle) {
    // SAFETY: By the caller's guarantee.
    let (bits, bi) = unsafe { ((*inode).i_blkbits as u32, container(inode)) };
    let reached = (pos as u64).div_ceil(1u64 << bits);
    let from = bi.fresh_from.load(Ordering::SeqCst).max(reached);
    let end = bi.fresh_end.load(Ordering::SeqCst);
    for b in from..end {
        // SAFETY: By the caller's guarantee (the inode is locked).
        if let Err(e) = unsafe { zero_range(inode, (b << bits) as i64, 1u32 << bits) } {
            // SAFETY: `inode` is live.
            let ino = unsafe { (*inode).i_ino };
            pr_err!(
                "inode {}: zeroing block {} after a short write failed ({:?})\n",
                ino,
                b,
                e
            );
        }
    }
    close_window(bi);
    h.stop();
}

/// `generic_perform_write` in stretches: runs of whole blocks inside the file that are
/// holes, or unwritten to the file system, are mapped ahead ([`premap`]); the rest
/// (blocks mapped already, partial blocks, blocks past the size) goes folio by folio
/// through `write_begin`. Returns what `generic_perform_write` would.
///
/// # Safety
///
/// As for [`perform_write`]; `end` is where the write ends.
unsafe fn write_pages(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
    inode: *mut bindings::inode,
    end: i64,
) -> isize {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let bits = (*inode).i_blkbits as u32;
        let bs = 1i64 << bits;
        let mut written = 0isize;
        loop {
            let pos = (*iocb).ki_pos;
            if pos >= end {
                break;
            }
            let inside = (end.min(bindings::i_size_read(inode)) >> bits) - (pos >> bits);
            let (blocks, h) = if pos & (bs - 1) != 0 {
                // The rest of a partial first block.
                (0, None)
            } else if inside > 0 {
                match premap(
                    inode,
                    pos as u64 >> bits,
                    (inside as u64).min(PREMAP_BLOCKS),
                ) {
                    Stretch::Plain(n) => (n, None),
                    Stretch::Premapped(h, n) => (n, Some(h)),
                }
            } else {
                (u64::MAX, None)
            };
            let seg = match blocks {
                0 => bs - (pos & (bs - 1)),
                u64::MAX => end - pos,
                n => i64::try_from(n << bits).unwrap_or(i64::MAX),
            }
            .min(end - pos);
            let left = bindings::bento_iov_iter_count(from);
            bindings::bento_iov_iter_truncate(from, seg as u64);
            let n = bindings::generic_perform_write(iocb, from);
            bindings::bento_iov_iter_reexpand(from, left - n.max(0) as usize);
            if let Some(h) = h {
                finish_premap(inode, (*iocb).ki_pos, h);
            }
            if n <= 0 {
                return if written > 0 { written } else { n };
            }
            written += n;
            if (n as i64) < seg {
                break;
            }
        }
        written
    }
}

/// `generic_perform_write` with the file's size and times recorded once, at the end,
/// not at each page ([`crate::attr::record_size`]), and blocks past the end of the file
/// allocated up to the write's end at once ([`allocate`]): a crash before the size is
/// recorded leaves them to the file system's recovery (`FileSystem::map_blocks`), and a
/// short write has them freed when the size is recorded.
///
/// # Safety
///
/// `iocb` and `from` are a write's; `inode` is its file's, a block-backed regular file,
/// locked.
pub(crate) unsafe fn perform_write(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
    inode: *mut bindings::inode,
) -> isize {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let bi = container(inode);
        let end = (*iocb)
            .ki_pos
            .saturating_add(bindings::bento_iov_iter_count(from) as i64);
        bi.writing_to.store(end.max(1) as u64, Ordering::SeqCst);
        let ret = write_pages(iocb, from, inode, end);
        bi.writing_to.store(0, Ordering::SeqCst);
        let size = bindings::i_size_read(inode);
        if (*iocb).ki_pos < end && size < end {
            // Cut short: folios past the size may keep buffers mapping blocks that
            // recording the size frees (as ext2's `ext2_write_failed`).
            let mapping = (*inode).i_mapping;
            bindings::bento_invalidate_lock(mapping, false);
            bindings::truncate_pagecache(inode, size);
            bindings::bento_invalidate_unlock(mapping, false);
        }
        match crate::attr::record_size(inode) {
            Ok(()) => ret,
            Err(e) if ret <= 0 => e.to_errno() as isize,
            Err(e) => {
                // The data is in the page cache; `fsync` tries again.
                pr_err!(
                    "inode {}: recording the size after a write failed ({:?})\n",
                    (*inode).i_ino,
                    e
                );
                ret
            }
        }
    }
}

/// `write_end`: the generic one (the size grows; [`perform_write`] records it when the
/// write is done), then the data handle stops.
///
/// # Safety
///
/// Called by the VFS after a successful [`write_begin`], with its `fsdata`.
unsafe extern "C" fn write_end(
    file: *mut bindings::file,
    mapping: *mut bindings::address_space,
    pos: i64,
    len: u32,
    copied: u32,
    folio: *mut bindings::folio,
    fsdata: *mut core::ffi::c_void,
) -> i32 {
    // SAFETY: VFS contract; `fsdata` is the handle `write_begin` started (or null).
    unsafe {
        let ret = bindings::generic_write_end(file, mapping, pos, len, copied, folio, fsdata);
        let inode = (*mapping).host;
        let bi = container(inode);
        let bits = (*inode).i_blkbits as u32;
        if ret > 0 && pos & ((1i64 << bits) - 1) == 0 {
            // Whole blocks now hold the write's data in the page cache: out of the
            // window of blocks mapped ahead ([`premap`]), if they start it.
            let block = pos as u64 >> bits;
            let upto = (pos as u64 + ret as u64) >> bits;
            let _ =
                bi.fresh_from
                    .compare_exchange(block, upto, Ordering::SeqCst, Ordering::Relaxed);
        }
        if bi.fresh_folio.swap(false, Ordering::Relaxed) {
            // `write_begin` allocated for this folio: the block now holds the data, or
            // zeros where a short copy left it new.
            close_window(bi);
        }
        if !fsdata.is_null()
            && !bi.record.load(Ordering::SeqCst)
            && bindings::i_size_read(inode) as u64 > bi.disk_size.load(Ordering::Relaxed)
        {
            // This folio's blocks were allocated for it alone, in this handle, and the
            // write allocated nothing ahead: the new size goes in the same transaction
            // (a crash cannot separate them; the file system needs no orphan), as
            // ext2 and ext4 `nodelalloc` do. Otherwise the write records it at its end.
            if let Err(e) = crate::attr::record(inode, true) {
                pr_err!(
                    "inode {}: recording its size failed ({:?})\n",
                    (*inode).i_ino,
                    e
                );
                bi.record.store(true, Ordering::SeqCst);
            }
        }
        let err = DataHandle(fsdata.cast()).stop();
        if ret >= 0 && err < 0 {
            return err;
        }
        ret
    }
}

/// `page_mkwrite`: a shared writable mapping is about to dirty a folio: allocate its
/// blocks (no folio locked), then let `block_page_mkwrite` map and dirty it.
///
/// # Safety
///
/// Called by the MM, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn page_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: MM contract: `vmf` describes a fault on a bento file mapping.
    unsafe {
        let vma = (*vmf).__bindgen_anon_1.vma;
        let file = (*vma).vm_file;
        let inode = (*file).f_inode;
        let sb = (*inode).i_sb;
        let mapping = (*inode).i_mapping;
        bindings::bento_sb_start_pagefault(sb);
        bindings::file_update_time(file);
        bindings::bento_invalidate_lock(mapping, true);
        let pos = ((*vmf).__bindgen_anon_1.pgoff as i64) << bindings::PAGE_SHIFT;
        let end = (pos + bindings::PAGE_SIZE as i64).min(bindings::i_size_read(inode));
        // No fresh window: `i_rwsem` is not held here (a buffered write may own it).
        let err = match prepare(inode, pos, end, false) {
            Ok((h, _)) => {
                // The folio is dirtied before the handle stops, so the allocation's
                // commit writes it first.
                let err = bindings::block_page_mkwrite(vma, vmf, Some(get_block_mapped));
                let stop = h.stop();
                if err == 0 && stop < 0 {
                    // The folio came back locked: give it back.
                    bindings::folio_unlock(bindings::bento_page_folio((*vmf).page));
                    stop
                } else {
                    err
                }
            }
            Err(e) => e.to_errno(),
        };
        bindings::bento_invalidate_unlock(mapping, true);
        bindings::bento_sb_end_pagefault(sb);
        bindings::bento_block_page_mkwrite_return(err)
    }
}

/// `mmap` of block-backed files: shared writable mappings allocate in `page_mkwrite`.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> i32 {
    // SAFETY: VFS contract.
    unsafe { bindings::bento_file_mmap(file, vma, &VM_OPS.0) };
    0
}

/// Zeroes bytes `[pos, pos + len)` of a file, within one block, through the page cache
/// (for the partial blocks at the edges of a punched hole). Holes stay holes.
///
/// # Safety
///
/// `inode` must be a live, locked regular-file inode of a block bento superblock.
pub(crate) unsafe fn zero_range(inode: *mut bindings::inode, pos: i64, len: u32) -> Result {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: By the caller's guarantee.
    unsafe {
        let bits = (*inode).i_blkbits as u32;
        if map(inode, pos as u64 >> bits, 1, false)?.disk_block == 0 {
            return Ok(());
        }
        let mapping = (*inode).i_mapping;
        let mut folio: *mut bindings::folio = core::ptr::null_mut();
        to_result(bindings::block_write_begin(
            mapping,
            pos,
            len,
            &mut folio,
            Some(get_block_mapped),
        ))?;
        let off = (pos - bindings::folio_pos(folio)) as usize;
        bindings::bento_folio_zero_range(folio, off, len as usize);
        let ret = bindings::generic_write_end(
            core::ptr::null_mut(),
            mapping,
            pos,
            len,
            len,
            folio,
            core::ptr::null_mut(),
        );
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
    }
    Ok(())
}
