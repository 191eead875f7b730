// SPDX-License-Identifier: GPL-2.0
//! The kernel side of the `journal` service ([`crate::journal`]): jbd2 itself.
//!
//! A [`Journal`] is a `journal_t` over blocks `[start, start + len)` of the mounted device
//! (`jbd2_journal_init_dev` + `jbd2_journal_load`, which replays a dirty log), set up for
//! data=ordered and cache flushes at commit, with the pinned on-disk features (64-bit
//! block numbers, `CSUM_V3` with crc32c, revoke records). Once loaded it is handed to the
//! framework (`bento_sb_set_journal`), which releases each inode's `jbd2_inode` on evict
//! and commits on `sync_fs`/`fsync`; it is taken back before `jbd2_journal_destroy`.
//!
//! A [`Handle`] is a `handle_t` (`jbd2__journal_start`, `jbd2_journal_stop`), which jbd2
//! ties to the task that started it (`current->journal_info`); a nested start on that task
//! returns the same `handle_t` with one more reference, which is the nesting the API
//! documents.
//!
//! Differences from the userspace backend, which the kernel cannot detect cheaply (see
//! the public docs): calling into the journal while holding a buffer lock deadlocks
//! instead of failing with `EINVAL`, and [`Journal::recovery`] reports whether the log was
//! replayed and which transactions it held, but not the block counts (jbd2 keeps those to
//! itself).

use core::ffi::c_int;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use kernel::bindings;
use kernel::error::from_err_ptr;

use super::block::{errno_of, Buf, Device};
use crate::block::BlockDevice;
use crate::errno::{Errno, Result};
use crate::journal::deferred::Deferred;
use crate::journal::{Recovery, Tid};
use crate::sync::Mutex;
use crate::types::Ino;

// The pointees are bindgen structs passed by pointer only (without lockdep some of them
// embed an empty struct, which the lint flags).
#[allow(improper_ctypes)]
extern "C" {
    /// Records the loaded journal of `sb` in the framework (fs/bento), or forgets it
    /// (`journal` null): from then on the framework releases each inode's `jbd2_inode`
    /// when the inode is evicted and commits on `sync_fs` and `fsync`.
    fn bento_sb_set_journal(sb: *mut bindings::super_block, journal: *mut bindings::journal_t);

    /// Orders bytes `[start, start + len)` of inode `ino` of `sb` with the transaction of
    /// `handle` (fs/bento: looks the inode up and calls `jbd2_journal_inode_ranged_write`
    /// on its `jbd2_inode`). Returns 0 or `-errno`.
    fn bento_order_data(
        handle: *mut bindings::handle_t,
        sb: *mut bindings::super_block,
        ino: u64,
        start: i64,
        len: i64,
    ) -> c_int;
}

/// `JBD2_FEATURE_COMPAT_CHECKSUM`: checksums version 1.
const COMPAT_CHECKSUM: u32 = bindings::JBD2_FEATURE_COMPAT_CHECKSUM;
/// `JBD2_FEATURE_INCOMPAT_FAST_COMMIT`.
const INCOMPAT_FAST_COMMIT: u32 = bindings::JBD2_FEATURE_INCOMPAT_FAST_COMMIT;
/// Incompatible features that are replaced by the pinned ones when a journal is loaded
/// writable (checksum versions 2 and 3, asynchronous commit, fast commit).
const INCOMPAT_REPLACED: u32 = bindings::JBD2_FEATURE_INCOMPAT_CSUM_V2
    | bindings::JBD2_FEATURE_INCOMPAT_CSUM_V3
    | bindings::JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT
    | INCOMPAT_FAST_COMMIT;
/// The incompatible features bento writes: revoke records, 64-bit block numbers and
/// checksums version 3 (crc32c). No compatible or read-only-compatible features.
const PINNED_INCOMPAT: u32 = bindings::JBD2_FEATURE_INCOMPAT_REVOKE
    | bindings::JBD2_FEATURE_INCOMPAT_64BIT
    | bindings::JBD2_FEATURE_INCOMPAT_CSUM_V3;

/// jbd2's smallest block size: the journal superblock takes 1024 bytes.
const MIN_BLOCK_SIZE: usize = 1024;

/// `EUCLEAN` for jbd2's `EFSBADCRC` (`EBADMSG`: a checksum did not verify), so that a
/// corrupt journal gives the error the API documents; other errors as they are.
fn load_errno(ret: c_int) -> Errno {
    match errno_of(ret).raw() {
        74 => Errno::EUCLEAN,
        _ => errno_of(ret),
    }
}

/// The fields of the on-disk journal superblock that loading checks, in host order.
struct SbInfo {
    blocktype: u32,
    sequence: u32,
    start: u32,
    errno: u32,
    compat: u32,
    incompat: u32,
    ro_compat: u32,
}

impl SbInfo {
    /// Reads the superblock of `journal`.
    ///
    /// # Safety
    ///
    /// `journal` comes from `jbd2_journal_init_dev` (which read the superblock) and is not
    /// destroyed, and no handle or commit is running on it (so nothing changes the
    /// superblock concurrently).
    unsafe fn read(journal: NonNull<bindings::journal_t>) -> SbInfo {
        // SAFETY: `j_superblock` points into the journal's superblock buffer, which the
        // journal holds while it exists (the caller's guarantee).
        let sb = unsafe { &*(*journal.as_ptr()).j_superblock };
        SbInfo {
            blocktype: u32::from_be(sb.s_header.h_blocktype),
            sequence: u32::from_be(sb.s_sequence),
            start: u32::from_be(sb.s_start),
            errno: u32::from_be(sb.s_errno),
            compat: u32::from_be(sb.s_feature_compat),
            incompat: u32::from_be(sb.s_feature_incompat),
            ro_compat: u32::from_be(sb.s_feature_ro_compat),
        }
    }

    fn pinned(&self) -> bool {
        self.compat == 0 && self.incompat == PINNED_INCOMPAT && self.ro_compat == 0
    }
}

/// A `journal_t` that is destroyed when dropped, while [`Journal::load`] sets it up.
struct Unloaded(NonNull<bindings::journal_t>);

impl Unloaded {
    /// Gives the journal up without destroying it.
    fn into_inner(self) -> NonNull<bindings::journal_t> {
        ManuallyDrop::new(self).0
    }
}

impl Drop for Unloaded {
    fn drop(&mut self) {
        // SAFETY: The journal came from `jbd2_journal_init_dev`, was not handed to the
        // framework, and has no handles; it is destroyed exactly once, here. (Its error, an
        // `EIO` for a journal that was never loaded, is not news: loading failed. A loaded
        // one is marked empty, as on unmount.)
        let _ = unsafe { bindings::jbd2_journal_destroy(self.0.as_ptr()) };
    }
}

/// The backend of [`crate::journal::Journal`].
///
/// # Invariants
///
/// `journal` is a loaded jbd2 journal (from `jbd2_journal_init_dev` and
/// `jbd2_journal_load`) over blocks `[start, start + len)` of `dev`, registered with the
/// framework by `bento_sb_set_journal`, and not destroyed until `destroyed` is set.
/// `max_credits` and `revokes_per_block` are its transaction limits, which do not change
/// once it is loaded (its features are final).
pub(crate) struct Journal {
    journal: NonNull<bindings::journal_t>,
    dev: Device,
    start: u64,
    len: u64,
    max_credits: u32,
    revokes_per_block: u32,
    recovery: Recovery,
    deferred: Mutex<Deferred>,
    destroyed: bool,
}

// SAFETY: A `journal_t` is not tied to a task: any task may start handles on it, wait for
// its commits or destroy it. The other fields are `Send`.
unsafe impl Send for Journal {}

// SAFETY: Every `&self` method calls jbd2 functions, which do their own locking, or locks
// `deferred`; the other fields are not written after `load`.
unsafe impl Sync for Journal {}

impl Journal {
    /// mkfs only: not available in the kernel.
    pub(crate) fn format(_dev: &BlockDevice, _start: u64, _len: u64, _uuid: [u8; 16]) -> Result {
        Err(Errno::EOPNOTSUPP)
    }

    /// fsck only: not available in the kernel.
    pub(crate) fn recover(_dev: &BlockDevice, _start: u64, _len: u64) -> Result<Recovery> {
        Err(Errno::EOPNOTSUPP)
    }

    pub(crate) fn load(dev: &BlockDevice, start: u64, len: u64) -> Result<Journal> {
        let d = &dev.inner;
        let bs = d.block_size();
        if bs < MIN_BLOCK_SIZE {
            crate::error!("journal: block size {bs} is below jbd2's minimum of {MIN_BLOCK_SIZE}");
            return Err(Errno::EINVAL);
        }
        let fits = start
            .checked_add(len)
            .is_some_and(|end| end <= d.nr_blocks());
        let (Ok(len_c), Ok(bs_c), true) = (c_int::try_from(len), c_int::try_from(bs), fits) else {
            crate::error!(
                "journal: area of {len} blocks at {start} does not fit the device ({} blocks)",
                d.nr_blocks()
            );
            return Err(Errno::EINVAL);
        };
        let deferred = crate::new_mutex!(Deferred::default(), "bento::journal::deferred")?;

        let bdev = d.bdev();
        // SAFETY: `bdev` is the open block device of the mounted superblock (the `Device`
        // invariant), whose block size is `bs`; the area is on the device.
        let raw = unsafe { bindings::jbd2_journal_init_dev(bdev, bdev, start, len_c, bs_c) };
        let raw = match from_err_ptr(raw).map(NonNull::new) {
            Ok(Some(j)) => Unloaded(j),
            Ok(None) => return Err(Errno::EIO),
            Err(e) => {
                let e = load_errno(e.to_errno());
                crate::error!("journal: no valid jbd2 journal at block {start} ({e})");
                return Err(e);
            }
        };
        // SAFETY: The journal was just made and nothing else uses it.
        let sb = unsafe { SbInfo::read(raw.0) };
        if sb.blocktype != bindings::JBD2_SUPERBLOCK_V2 {
            crate::error!(
                "journal: superblock type {}; only jbd2 v2 is supported",
                sb.blocktype
            );
            return Err(Errno::EINVAL);
        }
        let was_dirty = sb.start != 0;
        if was_dirty {
            if sb.compat & COMPAT_CHECKSUM != 0 || sb.incompat & INCOMPAT_FAST_COMMIT != 0 {
                crate::error!(
                    "journal: needs recovery with unsupported features (compat {:#x}, incompat {:#x})",
                    sb.compat,
                    sb.incompat
                );
                return Err(Errno::EINVAL);
            }
            if d.bdev_read_only() {
                crate::error!("journal: needs recovery but the device is read-only");
                return Err(Errno::EROFS);
            }
        }

        // SAFETY: The journal is made and not loaded: nothing runs on it yet.
        unsafe { bindings::bento_jbd2_setup(raw.0.as_ptr()) };
        // SAFETY: As above; loading replays the log and starts the commit thread.
        let ret = unsafe { bindings::jbd2_journal_load(raw.0.as_ptr()) };
        if ret != 0 {
            let e = load_errno(ret);
            crate::error!("journal: loading failed ({e})");
            return Err(e);
        }
        // SAFETY: The journal is loaded; no handle exists yet.
        let next = unsafe { bindings::bento_jbd2_next_tid(raw.0.as_ptr()) };
        let recovery = Recovery {
            was_dirty,
            first_tid: sb.sequence,
            end_tid: next.wrapping_sub(1),
            ..Recovery::default()
        };
        if was_dirty {
            crate::info!(
                "journal: recovered transactions {}..{}",
                recovery.first_tid,
                recovery.end_tid
            );
        }

        if !d.read_only() {
            if sb.errno != 0 {
                crate::warn!("journal: was aborted with error {} before", sb.errno as i32);
                // SAFETY: The journal is loaded and not aborted (loading cleared that); no
                // handle exists yet. Clearing the error rewrites the superblock.
                unsafe {
                    bindings::jbd2_journal_clear_err(raw.0.as_ptr());
                    bindings::jbd2_journal_update_sb_errno(raw.0.as_ptr());
                }
            }
            if !sb.pinned() {
                // The log is empty after loading, so its format may change: to the pinned
                // features, written with the next superblock update (as ext4 does with its
                // checksum features).
                // SAFETY: The journal is loaded and no handle exists yet.
                let set = unsafe {
                    bindings::jbd2_journal_clear_features(
                        raw.0.as_ptr(),
                        COMPAT_CHECKSUM as _,
                        0,
                        INCOMPAT_REPLACED as _,
                    );
                    bindings::jbd2_journal_set_features(raw.0.as_ptr(), 0, 0, PINNED_INCOMPAT as _)
                };
                // SAFETY: As above.
                let now = unsafe { SbInfo::read(raw.0) };
                if set == 0 || !now.pinned() {
                    crate::error!(
                        "journal: cannot use features (compat {:#x}, incompat {:#x}, ro_compat {:#x}); bento writes incompat {PINNED_INCOMPAT:#x} only",
                        now.compat,
                        now.incompat,
                        now.ro_compat
                    );
                    return Err(Errno::EINVAL);
                }
                if was_dirty {
                    // Recovery left the old superblock on disk marked in use, and jbd2
                    // rewrites it only at checkpoints: a crash before one would replay the
                    // new log with the old features. Mark the log empty now, which writes
                    // the superblock with the new features (and again at the first commit).
                    // SAFETY: The journal is loaded and no handle exists yet.
                    let ret = unsafe { bindings::jbd2_journal_flush(raw.0.as_ptr(), 0) };
                    if ret != 0 {
                        let e = errno_of(ret);
                        crate::error!("journal: writing the new features failed ({e})");
                        return Err(e);
                    }
                }
            }
        }

        // SAFETY: The journal is loaded; its limits are final (its features are).
        let (max_tx, overhead, per_block) = unsafe {
            let j = raw.0.as_ptr();
            (
                (*j).j_max_transaction_buffers,
                (*j).j_transaction_overhead_buffers,
                (*j).j_revoke_records_per_block,
            )
        };
        let max_credits = u32::try_from(max_tx.saturating_sub(overhead)).unwrap_or(0);
        let revokes_per_block = u32::try_from(per_block).unwrap_or(1).max(1);

        let journal = raw.into_inner();
        // SAFETY: `sb` is the mounted superblock (the `Device` invariant) and `journal` its
        // loaded journal, which stays valid until `destroy` takes it back from the
        // framework.
        unsafe { bento_sb_set_journal(d.sb(), journal.as_ptr()) };
        // INVARIANT: `journal` is loaded over `[start, start + len)` of `d`, registered, and
        // its limits were read after its features were set.
        Ok(Journal {
            journal,
            dev: d.clone(),
            start,
            len,
            max_credits,
            revokes_per_block,
            recovery,
            deferred,
            destroyed: false,
        })
    }

    fn ptr(&self) -> *mut bindings::journal_t {
        self.journal.as_ptr()
    }

    pub(crate) fn recovery(&self) -> Recovery {
        self.recovery
    }

    pub(crate) fn max_credits(&self) -> u32 {
        self.max_credits
    }

    /// The handle the calling task holds on this journal, if any; `EINVAL` (logged) if it
    /// holds one on another journal.
    fn current_handle(&self) -> Result<Option<NonNull<bindings::handle_t>>> {
        // SAFETY: Reads `current->journal_info`, which only the current task changes.
        let Some(cur) = NonNull::new(unsafe { bindings::bento_jbd2_current_handle() }) else {
            return Ok(None);
        };
        // SAFETY: A task's `journal_info` is the live `handle_t` it started (jbd2 sets and
        // clears it), so it may be read.
        if unsafe { bindings::bento_jbd2_handle_journal(cur.as_ptr()) } != self.ptr() {
            crate::error!("journal: a task may hold handles on one journal only");
            return Err(Errno::EINVAL);
        }
        Ok(Some(cur))
    }

    pub(crate) fn start(&self, credits: u32, revokes: u32) -> Result<Handle<'_>> {
        // A nested start returns the task's handle with one more reference and ignores the
        // credits (jbd2's nesting).
        if self.current_handle()?.is_none() {
            let total = u64::from(credits)
                .saturating_add(u64::from(revokes.div_ceil(self.revokes_per_block)));
            if total > u64::from(self.max_credits) {
                crate::error!(
                    "journal: a handle wants too many credits ({credits} blocks, {revokes} revokes; max {})",
                    self.max_credits
                );
                return Err(Errno::ENOSPC);
            }
            if self.dev.read_only() {
                crate::error!("journal: cannot start a handle on a read-only device");
                return Err(Errno::EROFS);
            }
        }
        let credits = c_int::try_from(credits).unwrap_or(c_int::MAX);
        let revokes = c_int::try_from(revokes).unwrap_or(c_int::MAX);
        // SAFETY: The journal is loaded (type invariant). The credits fit the transaction
        // limit (checked above, so jbd2 does not warn), or the start is nested, in which
        // case jbd2 only takes a reference on the task's handle, which is on this journal.
        let h = unsafe {
            bindings::jbd2__journal_start(
                self.ptr(),
                credits,
                0,
                revokes,
                bindings::BENTO_GFP_NOFS,
                0,
                0,
            )
        };
        let handle = match from_err_ptr(h).map(NonNull::new) {
            Ok(Some(h)) => h,
            Ok(None) => return Err(Errno::EIO),
            Err(e) => return Err(errno_of(e.to_errno())),
        };
        // SAFETY: `handle` is live: we hold a reference to it.
        let tid = unsafe { bindings::bento_jbd2_handle_tid(handle.as_ptr()) };
        // INVARIANT: `jbd2__journal_start` gave this task one reference to `handle`.
        Ok(Handle {
            j: self,
            handle,
            tid,
            done: false,
        })
    }

    pub(crate) fn force_commit(&self) -> Result {
        // SAFETY: Reads `current->journal_info`, which only the current task changes.
        if !unsafe { bindings::bento_jbd2_current_handle() }.is_null() {
            crate::error!("journal: forcing a commit while holding a handle");
            return Err(Errno::EINVAL);
        }
        // SAFETY: The journal is loaded (type invariant) and the task holds no handle, as
        // `jbd2_journal_force_commit` asserts.
        let ret = unsafe { bindings::jbd2_journal_force_commit(self.ptr()) };
        if ret != 0 {
            return Err(errno_of(ret));
        }
        Ok(())
    }

    pub(crate) fn commit_and_wait(&self, tid: Tid) -> Result {
        if let Some(cur) = self.current_handle()? {
            // SAFETY: `cur` is the task's live handle (see `current_handle`).
            if unsafe { bindings::bento_jbd2_handle_tid(cur.as_ptr()) } == tid.raw() {
                crate::error!(
                    "journal: waiting for a commit of transaction {tid} while holding a handle on it"
                );
                return Err(Errno::EINVAL);
            }
        }
        // SAFETY: The journal is loaded (type invariant).
        if !unsafe { bindings::bento_jbd2_tid_started(self.ptr(), tid.raw()) } {
            crate::error!("journal: waiting for transaction {tid}, which was never started");
            return Err(Errno::EINVAL);
        }
        // SAFETY: The journal is loaded, and `tid` was started and is not the transaction of
        // the task's own handle (the only one it could block).
        let ret = unsafe { bindings::jbd2_complete_transaction(self.ptr(), tid.raw()) };
        if ret != 0 {
            return Err(errno_of(ret));
        }
        Ok(())
    }

    pub(crate) fn committed(&self, tid: Tid) -> bool {
        // SAFETY: The journal is loaded (type invariant). jbd2 compares `tid` with the last
        // committed id, so a transaction not started yet is not committed.
        unsafe { bindings::jbd2_transaction_committed(self.ptr(), tid.raw()) != 0 }
    }

    /// The id of the last committed transaction.
    fn commit_sequence(&self) -> u32 {
        // SAFETY: The journal is loaded (type invariant).
        unsafe { bindings::bento_jbd2_commit_sequence(self.ptr()) }
    }

    pub(crate) fn defer_free(&self, tid: Tid, first: u64, count: u64) -> Result {
        let committed = self.commit_sequence();
        self.deferred.lock().add(tid.raw(), first, count, committed)
    }

    pub(crate) fn pending_run(&self, first: u64, count: u64) -> Option<(u64, u64)> {
        let committed = self.commit_sequence();
        self.deferred.lock().pending_run(first, count, committed)
    }

    /// `EINVAL` (logged) if `blocknr` lies in the journal itself.
    fn check_block(&self, blocknr: u64) -> Result {
        if blocknr >= self.start && blocknr - self.start < self.len {
            crate::error!("journal: block {blocknr} is inside the journal");
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    pub(crate) fn close(mut self) -> Result {
        self.destroy()
    }

    /// Takes the journal back from the framework and destroys it: commits the running
    /// transaction, checkpoints everything and marks the log empty (unless the journal was
    /// aborted: then the log is left for recovery and the result is `EIO`).
    fn destroy(&mut self) -> Result {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        // SAFETY: The superblock is live (the `Device` invariant) and the journal is the one
        // registered by `load`; after this call the framework no longer uses it.
        unsafe { bento_sb_set_journal(self.dev.sb(), ptr::null_mut()) };
        // SAFETY: The journal is loaded and not destroyed (type invariant). No handle exists:
        // handles borrow the `Journal`, and `destroy` takes it mutably. It is destroyed
        // exactly once (`destroyed` is set).
        let ret = unsafe { bindings::jbd2_journal_destroy(self.ptr()) };
        if ret != 0 {
            return Err(errno_of(ret));
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            crate::error!("journal: closing failed ({e}); the log is left for recovery");
        }
    }
}

/// The backend of [`crate::journal::Handle`].
///
/// # Invariants
///
/// Until `done` is set, the task that created the handle holds one reference to
/// `handle`, a live `handle_t` on `j`'s journal in transaction `tid`. The handle is `!Send`
/// (its raw pointer makes it so), as jbd2 ties a `handle_t` to the task that started it.
pub(crate) struct Handle<'j> {
    j: &'j Journal,
    handle: NonNull<bindings::handle_t>,
    tid: u32,
    done: bool,
}

/// The result of jbd2's create or write access to `what` `nr`, logged when refused
/// (not for `EROFS`: the journal was aborted, which jbd2 reported).
fn access_granted(ret: i32, what: &str, nr: u64) -> Result {
    if ret == 0 {
        return Ok(());
    }
    let e = errno_of(ret);
    if e != Errno::EROFS {
        crate::error!("journal: cannot journal {what} {nr} ({e})");
    }
    Err(e)
}

impl Handle<'_> {
    pub(crate) fn tid(&self) -> Tid {
        Tid::from_raw(self.tid)
    }

    fn ptr(&self) -> *mut bindings::handle_t {
        self.handle.as_ptr()
    }

    pub(crate) fn modify<R>(
        &self,
        buf: &Buf,
        create: bool,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R> {
        let nr = buf.blocknr();
        if buf.bdev() != self.j.dev.bdev() {
            crate::error!("journal: block {nr} is not on the journal's device");
            return Err(Errno::EINVAL);
        }
        self.j.check_block(nr)?;
        let (h, bh) = (self.ptr(), buf.as_ptr());
        // jbd2 wants a new buffer locked while it files it. A block to create that is
        // cached (up to date) may belong to a transaction (a table block whose other
        // entries were just freed), where jbd2's create access would assert: it is
        // changed in place instead, keeping its contents. One never read belongs to none.
        // (A plain change takes no lock here: a buffer lock is a sleeping bit lock, and
        // metadata changes are the hot path of every namespace operation.)
        let locked = create.then(|| buf.lock());
        let create = create && !buf.uptodate();
        let mut guard = match locked {
            Some(locked) if create => {
                // SAFETY: The handle is live (type invariant), `bh` is referenced by `buf` and
                // locked by this task, as `jbd2_journal_get_create_access` asserts.
                let ret = unsafe { bindings::jbd2_journal_get_create_access(h, bh) };
                access_granted(ret, "new block", nr)?;
                locked
            }
            locked => {
                drop(locked);
                // SAFETY: The handle is live (type invariant) and `bh` referenced by `buf`.
                // `jbd2_journal_get_write_access` takes the buffer lock itself (a task holding
                // it deadlocks here, as documented).
                let ret = unsafe { bindings::jbd2_journal_get_write_access(h, bh) };
                access_granted(ret, "block", nr)?;
                buf.lock()
            }
        };
        // SAFETY: The handle is live and has been granted access to `bh` (so `bh` has a
        // journal head).
        if unsafe { bindings::bento_jbd2_dirty_needs_missing_credit(h, bh) } {
            drop(guard);
            crate::error!(
                "journal: handle out of credits changing block {nr} (transaction {})",
                self.tid
            );
            return Err(Errno::ENOSPC);
        }
        if create {
            // A block never read: start from zeros rather than whatever the page held.
            guard.fill(0);
        }
        let r = f(&mut guard);
        // The closure wrote the block (a block from `get` was not up to date before).
        buf.set_uptodate();
        drop(guard);
        // SAFETY: The handle is live and was granted access to `bh` above; the buffer is
        // unlocked, as `jbd2_journal_dirty_metadata` expects.
        let ret = unsafe { bindings::jbd2_journal_dirty_metadata(h, bh) };
        if ret != 0 {
            crate::error!("journal: filing block {nr} failed ({})", errno_of(ret));
            return Err(errno_of(ret));
        }
        Ok(r)
    }

    pub(crate) fn revoke(&self, blocknr: u64) -> Result {
        self.j.check_block(blocknr)?;
        let h = self.ptr();
        // SAFETY: The handle is live (type invariant); only its task changes the field.
        if unsafe { (*h).h_revoke_credits } <= 0 {
            crate::error!("journal: handle out of revoke credits revoking block {blocknr}");
            return Err(Errno::EIO);
        }
        let cached = self.j.dev.find(blocknr);
        if let Some(b) = &cached {
            // SAFETY: `b` holds a reference to the buffer.
            if unsafe { bindings::bento_buffer_revoked(b.as_ptr()) } {
                // Revoked already by an uncommitted transaction and not journaled since: the
                // record is there (jbd2 would call this a double free).
                return Ok(());
            }
        }
        // The cached buffer goes to jbd2, which drops this transaction's change of it
        // (`jbd2_journal_forget`, which also consumes the reference).
        let bh = cached.map_or(ptr::null_mut(), |b| ManuallyDrop::new(b).as_ptr());
        // SAFETY: The handle is live and has a revoke credit, the journal has the revoke
        // feature (set at load), and `bh` is null or a referenced, unrevoked buffer of the
        // journal's device for `blocknr`, whose reference jbd2 takes over: with these
        // checks done, jbd2's only paths that would leave it to us are a concurrent revoke
        // of the same block (a double free in the file system) and a journal aborted
        // meanwhile; either leaks one reference, never frees one twice.
        let ret = unsafe { bindings::jbd2_journal_revoke(h, blocknr, bh) };
        if ret != 0 {
            crate::error!(
                "journal: revoking block {blocknr} failed ({})",
                errno_of(ret)
            );
            return Err(errno_of(ret));
        }
        Ok(())
    }

    pub(crate) fn order_data(&self, ino: Ino, offset: u64, len: u64) -> Result {
        if len == 0 {
            return Ok(());
        }
        let (Ok(start), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Err(Errno::EFBIG);
        };
        if start.checked_add(len).is_none() {
            return Err(Errno::EFBIG);
        }
        // SAFETY: The handle is live (type invariant) and the superblock is the journal's
        // (the `Device` invariant).
        let ret = unsafe { bento_order_data(self.ptr(), self.j.dev.sb(), ino, start, len) };
        if ret != 0 {
            let e = errno_of(ret);
            crate::error!("journal: ordering data of inode {ino} failed ({e})");
            return Err(e);
        }
        Ok(())
    }

    pub(crate) fn set_sync(&self) {
        // SAFETY: The handle is live (type invariant); only its task changes its bitfields.
        unsafe { bindings::bento_jbd2_handle_set_sync(self.ptr()) }
    }

    pub(crate) fn credits_left(&self) -> u32 {
        // SAFETY: The handle is live (type invariant).
        let n = unsafe { bindings::bento_jbd2_handle_buffer_credits(self.ptr()) };
        u32::try_from(n).unwrap_or(0)
    }

    pub(crate) fn stop(mut self) -> Result {
        self.finish()
    }

    /// Drops this task's reference to the handle (`jbd2_journal_stop`): the last one stops
    /// it, committing and waiting for a synchronous transaction.
    fn finish(&mut self) -> Result {
        if self.done {
            return Ok(());
        }
        self.done = true;
        // SAFETY: The task holds a reference to the live handle (type invariant) and gives
        // it up exactly once, here (`done` is set).
        let ret = unsafe { bindings::jbd2_journal_stop(self.ptr()) };
        if ret == 0 {
            return Ok(());
        }
        // SAFETY: The journal is loaded (`Journal` invariant; it outlives the handle).
        if unsafe { bindings::bento_jbd2_aborted(self.j.ptr()) } {
            return Err(Errno::EROFS);
        }
        Err(errno_of(ret))
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            crate::error!("journal: stopping a dropped handle failed ({e})");
        }
    }
}
