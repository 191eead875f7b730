// SPDX-License-Identifier: GPL-2.0
//! Metadata journaling: the `journal` service, with jbd2's on-disk format in both builds.
//!
//! # The model
//!
//! A [`Journal`] lives in a contiguous range of blocks `[start, start + len)` of the
//! file system's [`BlockDevice`]; journal block 0 is a jbd2 superblock (version 2), the
//! rest is a circular log. The format is jbd2's, with the features pinned: 64-bit block
//! numbers, `CSUM_V3` checksums (crc32c seeded from the journal UUID) and revoke records;
//! no asynchronous commit, no fast commit. In the kernel the journal *is* jbd2; in
//! userspace it is a Rust implementation of the same format, so an image left with a
//! dirty journal by either build is recovered by the other, and by `e2fsck`.
//!
//! Changes to metadata are grouped into **transactions**. A file system operation opens
//! a [`Handle`] with [`Journal::start`], saying how many metadata blocks it may change
//! (its *credits*); the handle joins the running transaction. Each change goes through
//! [`Handle::modify`] (or [`Handle::create`] for a block just allocated), which takes the
//! buffer lock itself, runs the closure on the block's bytes and files the block in the
//! transaction; [`Handle::stop`] ends the operation. A transaction commits when its
//! handles have all stopped and either 5 seconds passed (a background thread), the log
//! needs room, a handle asked for it ([`Handle::set_sync`]) or someone forces it
//! ([`Journal::force_commit`], [`Journal::commit_and_wait`]). All the changes of a
//! transaction survive a crash, or none do.
//!
//! Commit is **data=ordered**: before a transaction's commit record is written, every
//! dirty unjournaled buffer of the device (file data) is written back, so metadata never
//! points at blocks whose data did not reach the disk. Committed metadata is later
//! *checkpointed*: written in place, after which its log space is reused.
//!
//! **Freeing blocks.** A metadata block that is freed must be revoked
//! ([`Handle::revoke`]), or recovery could replay an old copy over the block's next
//! user. And a freed block (data or metadata) must not be reused before the freeing
//! transaction commits, or a crash would leave it owned twice: record it with
//! [`Journal::defer_free`] and let the allocator ask [`Journal::reusable`] (or
//! [`Journal::first_pending`]) before handing a block out.
//!
//! **Rules** (as with jbd2): never hold a buffer lock while calling the journal; starting
//! a handle on a thread that already holds one gives a nested handle on the same
//! transaction (sharing the outer handle's credits); a thread holding a handle cannot
//! force a commit of its own transaction (it would wait for itself): use
//! [`Handle::set_sync`]. Handles stay on the thread that started them.
//!
//! Loading a journal ([`Journal::load`]) replays it if it is dirty, with jbd2's three
//! passes (find the end of the log, collect revoke records, replay the blocks that were
//! not revoked), checking every checksum; the log ends at the first transaction that is
//! incomplete or whose commit block does not verify.
//!
//! # In the kernel
//!
//! The journal is jbd2 on the mounted device, handed to the framework, which commits it
//! on `sync_fs`/`fsync` and writes ordered file data ([`Handle::order_data`]) before each
//! commit. Where the kernel differs from the userspace implementation:
//! - Calling the journal while holding a buffer lock, or modifying a block whose lock
//!   the thread holds, deadlocks instead of failing with `EINVAL` (the kernel does not
//!   know who holds a buffer lock). [`Journal::force_commit`] fails with `EINVAL` on a
//!   thread holding a handle on any journal.
//! - Dirty unjournaled buffers are not written before commits: only the file data filed
//!   with [`Handle::order_data`] is (see [`crate::block`]).
//! - [`Journal::format`] and [`Journal::recover`] (mkfs and fsck) fail with `EOPNOTSUPP`.
//!   [`Journal::recovery`] reports `was_dirty`, `first_tid` and `end_tid`; the block
//!   and record counts stay 0 (jbd2 does not report them).
//! - A handle's limit is jbd2's: `credits` plus one block per revoke-record block
//!   (`revokes` divided by the records per block, rounded up) may not exceed
//!   [`Journal::max_credits`]. [`Journal::start`] fails with `EROFS` on a read-only
//!   mount too.
//! - [`Handle::revoke`] of a block already revoked in an uncommitted transaction is a
//!   no-op when the block is cached, and uses another revoke credit otherwise.
//! - An error of jbd2's `dirty_metadata` after the closure ran (an aborted journal)
//!   leaves the change in the buffer but not in the transaction.

#![deny(missing_docs)]

use core::fmt;

use crate::backend::journal as imp;
use crate::block::{BlockDevice, Buffer};
use crate::errno::{Errno, Result};

pub(crate) mod deferred;

/// A transaction id (jbd2's `tid_t`). Ids increase by one per transaction and wrap
/// around, so compare them with [`Tid::is_after`], not `>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tid(u32);

impl Tid {
    /// The id with the raw value `raw`.
    pub const fn from_raw(raw: u32) -> Tid {
        Tid(raw)
    }

    /// The raw value, as stored on disk.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Whether `self` comes after `other` (jbd2's `tid_gt`: modular comparison).
    pub const fn is_after(self, other: Tid) -> bool {
        (self.0.wrapping_sub(other.0) as i32) > 0
    }

    /// The next id.
    pub const fn next(self) -> Tid {
        Tid(self.0.wrapping_add(1))
    }
}

impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tid({})", self.0)
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What recovery found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The journal needed recovery (it was not cleanly closed).
    pub was_dirty: bool,
    /// The first transaction in the log.
    pub first_tid: u32,
    /// One past the last complete transaction: `end_tid - first_tid` transactions were
    /// replayed.
    pub end_tid: u32,
    /// Blocks written back to their place.
    pub replayed_blocks: u64,
    /// Revoke records read.
    pub revoke_records: u64,
    /// Logged blocks skipped because a later revoke record covered them.
    pub revoked_blocks: u64,
    /// Logged blocks that could not be replayed (unreadable, failed their checksum, or
    /// outside the device). Non-zero makes [`Journal::load`] fail with `EIO`.
    pub bad_blocks: u64,
    /// The error that ended recovery, when [`Journal::recover`] reset the journal
    /// regardless (`EIO` for bad blocks, `EUCLEAN` for a corrupt log).
    pub error: Option<Errno>,
}

impl Recovery {
    /// How many transactions were replayed.
    pub const fn transactions(&self) -> u32 {
        self.end_tid.wrapping_sub(self.first_tid)
    }
}

/// A loaded journal. Dropping it commits the running transaction, checkpoints
/// everything and marks the journal clean (errors are logged; [`Journal::close`]
/// returns them instead).
pub struct Journal {
    pub(crate) inner: imp::Journal,
}

impl Journal {
    /// Creates an empty journal in blocks `[start, start + len)` of `dev` (mkfs): a jbd2
    /// v2 superblock in block `start` with the pinned features and the given UUID, and a
    /// zeroed log. `len` must be at least 1024 blocks (jbd2's minimum) and fit in 32
    /// bits.
    pub fn format(dev: &BlockDevice, start: u64, len: u64, uuid: [u8; 16]) -> Result {
        imp::Journal::format(dev, start, len, uuid)
    }

    /// Loads the journal in blocks `[start, start + len)` of `dev`: validates its
    /// superblock, replays it if it is dirty, marks it clean and starts the commit
    /// thread. Errors: `EINVAL` for something that is not a jbd2 v2 journal of this block
    /// size or has features this implementation does not know or support (a journal
    /// written without the pinned features is upgraded to them once empty),
    /// `EUCLEAN` for a corrupt superblock or log, `EIO` when a logged block could not be
    /// replayed (the journal stays dirty: run fsck), `EROFS` for a dirty journal on a
    /// read-only device. Every error is logged.
    pub fn load(dev: &BlockDevice, start: u64, len: u64) -> Result<Journal> {
        imp::Journal::load(dev, start, len).map(|inner| Journal { inner })
    }

    /// Recovers the journal without starting it, for fsck: validates and replays as
    /// [`Journal::load`] does, then marks the journal clean **even if some blocks could
    /// not be replayed** (as `e2fsck` does; they are counted in
    /// [`Recovery::bad_blocks`] and the file system needs a full check).
    pub fn recover(dev: &BlockDevice, start: u64, len: u64) -> Result<Recovery> {
        imp::Journal::recover(dev, start, len)
    }

    /// What [`Journal::load`] replayed.
    pub fn recovery(&self) -> Recovery {
        self.inner.recovery()
    }

    /// Starts a handle that may change up to `credits` metadata blocks and revoke none.
    /// See [`Journal::start_with_revokes`].
    pub fn start(&self, credits: u32) -> Result<Handle<'_>> {
        self.start_with_revokes(credits, 0)
    }

    /// Starts a handle that may change up to `credits` metadata blocks and revoke up to
    /// `revokes` blocks, joining the running transaction. Blocks while the running
    /// transaction is being closed, and when the handle does not fit in it or in the log
    /// (then the transaction is committed, or the log checkpointed, first). Errors:
    /// `ENOSPC` when the handle alone exceeds [`Journal::max_credits`], `EROFS` after
    /// the journal was aborted by an I/O error. On a thread that already holds a handle
    /// it returns a nested handle on the same transaction and ignores the credits.
    pub fn start_with_revokes(&self, credits: u32, revokes: u32) -> Result<Handle<'_>> {
        self.inner
            .start(credits, revokes)
            .map(|inner| Handle { inner })
    }

    /// The most credits (blocks plus revoke records) one handle may ask for.
    pub fn max_credits(&self) -> u32 {
        self.inner.max_credits()
    }

    /// Commits the running transaction, if it has changes, and waits until it and every
    /// earlier one are durable. Fails with `EINVAL` on a thread holding a handle.
    pub fn force_commit(&self) -> Result {
        self.inner.force_commit()
    }

    /// Makes every change so far durable for an `fsync`: commits and waits (as
    /// [`Journal::force_commit`]), then flushes the device's cache (data overwritten in
    /// place changes no metadata, so no commit covers it).
    ///
    /// In the kernel the framework does exactly this itself, right after the file
    /// system's `fsync` or `fsyncdir` returns and outside the live-upgrade gate (a call
    /// that waits for a commit inside the file system would hold every upgrade back for
    /// that long), so there this returns at once. Use it as the last step of `fsync`.
    pub fn commit_for_fsync(&self, dev: &crate::block::BlockDevice) -> Result {
        #[cfg(kernel)]
        {
            let _ = dev;
            Ok(())
        }
        #[cfg(not(kernel))]
        {
            self.force_commit()?;
            dev.sync()
        }
    }

    /// Waits until transaction `tid` is durable, committing it if it is still running.
    /// Fails with `EINVAL` for a transaction that was never started, or for the calling
    /// thread's own running transaction.
    pub fn commit_and_wait(&self, tid: Tid) -> Result {
        self.inner.commit_and_wait(tid)
    }

    /// Whether transaction `tid` is committed (durable). A transaction not started yet
    /// is not committed.
    pub fn committed(&self, tid: Tid) -> bool {
        self.inner.committed(tid)
    }

    /// Records that blocks `[first, first + count)` were freed by transaction `tid`:
    /// until `tid` commits, [`Journal::reusable`] says they must not be reused.
    pub fn defer_free(&self, tid: Tid, first: u64, count: u64) -> Result {
        self.inner.defer_free(tid, first, count)
    }

    /// Whether block `blocknr` may be allocated: it was not freed by a transaction that
    /// has not committed yet.
    pub fn reusable(&self, blocknr: u64) -> bool {
        self.first_pending(blocknr, 1).is_none()
    }

    /// The first block of `[first, first + count)` that must not be reused yet (freed
    /// by an uncommitted transaction), if any.
    pub fn first_pending(&self, first: u64, count: u64) -> Option<u64> {
        self.pending_run(first, count).map(|(p, _)| p)
    }

    /// The first block of `[first, first + count)` that must not be reused yet, and the
    /// end of the run of such blocks it starts (freed together, possibly past `first +
    /// count`), if any: an allocator skips the whole run with one question.
    pub fn pending_run(&self, first: u64, count: u64) -> Option<(u64, u64)> {
        self.inner.pending_run(first, count)
    }

    /// Closes the journal: commits the running transaction, checkpoints everything and
    /// marks the journal clean, returning the first error.
    pub fn close(self) -> Result {
        self.inner.close()
    }
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

/// One file system operation's part of a transaction (jbd2's `handle_t`). Stop it with
/// [`Handle::stop`]; dropping it stops it too (logging any error). It stays on the thread
/// that started it.
pub struct Handle<'j> {
    pub(crate) inner: imp::Handle<'j>,
}

impl Handle<'_> {
    /// The transaction this handle belongs to.
    pub fn tid(&self) -> Tid {
        self.inner.tid()
    }

    /// Changes journaled metadata block `buf`: gets write access to it, locks it, runs
    /// `f` on its bytes, unlocks it and files it in the transaction (jbd2's
    /// `get_write_access` + `dirty_metadata`). A block not yet in the transaction uses
    /// one credit: `ENOSPC` when none is left. A pending revoke of the block in this
    /// transaction is cancelled. `EINVAL` if the calling thread holds the buffer's lock,
    /// or the block is not on the journal's device or lies in the journal itself.
    pub fn modify<R>(&self, buf: &Buffer, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        self.inner.modify(&buf.inner, false, f)
    }

    /// Like [`Handle::modify`], for a metadata block just allocated and about to be
    /// written from scratch (jbd2's `get_create_access`); typically from
    /// [`BlockDevice::get`], which does not read it. `f` gets zeros if the block was
    /// not cached, else its cached contents (as [`Handle::modify`]), so that a block
    /// written only in part, whose other parts are known to be unused (an inode table
    /// block whose other inodes are free), need not be read first.
    pub fn create<R>(&self, buf: &Buffer, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        self.inner.modify(&buf.inner, true, f)
    }

    /// Revokes block `blocknr`, a metadata block this transaction frees: once the
    /// transaction commits, recovery no longer replays older logged copies of it, so
    /// the block can be reused (as data, say). If this transaction changed the block,
    /// that change is dropped (jbd2's `forget`). Uses one revoke credit: `EIO` when
    /// none is left (as jbd2).
    pub fn revoke(&self, blocknr: u64) -> Result {
        self.inner.revoke(blocknr)
    }

    /// Orders file data with this transaction (data=ordered): bytes `[offset, offset +
    /// len)` of file `ino` were just given newly allocated blocks by this handle, so the
    /// transaction must not commit before that data is on disk, or a crash would leave
    /// the file pointing at stale blocks. Call it from `map_blocks` when allocating. In
    /// the kernel it files the inode's `jbd2_inode` in the transaction
    /// (`jbd2_journal_inode_ranged_write`); in userspace every commit writes all dirty
    /// data first anyway.
    pub fn order_data(&self, ino: crate::types::Ino, offset: u64, len: u64) -> Result {
        self.inner.order_data(ino, offset, len)
    }

    /// Makes the transaction synchronous: the stop of the last handle on it commits it
    /// and waits until it is durable.
    pub fn set_sync(&self) {
        self.inner.set_sync()
    }

    /// Credits left: blocks this handle may still add to the transaction.
    pub fn credits_left(&self) -> u32 {
        self.inner.credits_left()
    }

    /// Ends the handle. For a synchronous transaction ([`Handle::set_sync`]) it commits
    /// and waits; errors are those of that commit (or `EROFS` if the journal aborted).
    pub fn stop(self) -> Result {
        self.inner.stop()
    }
}

impl fmt::Debug for Handle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("tid", &self.tid()).finish()
    }
}
