// SPDX-License-Identifier: GPL-2.0
//! Userspace journal: jbd2's format and transaction model in Rust (see
//! [`crate::journal`] for the model).
//!
//! # Transactions and locks
//!
//! `State` (one mutex, one condvar) holds the running transaction, the ids and the log
//! space accounting; handles take it briefly. `LogState` (the commit mutex) serialises
//! commits and checkpoints and owns the log head, tail, superblock and checkpoint list.
//! Lock order: commit mutex, then `State`, then a buffer's lock. A thread holding a
//! buffer lock takes neither journal lock (the API refuses it).
//!
//! A commit (1) marks the running transaction *locked*: new handles wait until (2) its
//! handles have all stopped, (3) it takes a copy of every block of the transaction (the
//! committed contents; no handle can be changing them), (4) unlocks, so the next
//! transaction opens and runs while (5) the copies are written to the log. So handles
//! of the next transaction block only for the copying, never for the I/O.
//!
//! Log space: a handle reserves the log blocks its credits may need at start. A
//! transaction may take at most a third of the log (as jbd2); a handle that does not fit
//! in the running transaction commits it first, one that does not fit in the log
//! checkpoints first.

mod commit;
mod format;
mod handle;
mod replay;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::commit::{Geometry, LogState};
use self::format::{Features, Layout, Superblock};
pub(crate) use self::handle::Handle;
use super::block::{holds_buffer_lock, lock, Buf, Device};
use crate::block::BlockDevice;
use crate::errno::{Errno, Result};
use crate::journal::deferred::Deferred;
use crate::journal::{Recovery, Tid};

/// jbd2's default commit interval.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// Log blocks kept free as slack (jbd2's `jbd2_log_space_left` keeps 32).
const LOG_SLACK: u64 = 32;

fn after(a: u32, b: u32) -> bool {
    Tid::from_raw(a).is_after(Tid::from_raw(b))
}

/// A block the journal holds: plain writeback leaves it alone, the cache keeps it.
pub(super) struct Held(Buf);

impl Held {
    fn new(buf: &Buf) -> Held {
        buf.jhold();
        Held(buf.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.jrelease();
    }
}

struct Transaction {
    tid: u32,
    /// Handles running in it.
    updates: u32,
    bufs: BTreeMap<u64, Held>,
    revokes: BTreeSet<u64>,
    /// Credits reserved by its handles (blocks, revoke records).
    res_bufs: u64,
    res_revokes: u64,
    opened: Instant,
}

impl Transaction {
    fn is_empty(&self) -> bool {
        self.bufs.is_empty() && self.revokes.is_empty()
    }
}

struct State {
    running: Option<Transaction>,
    /// The running transaction is being closed: new handles wait.
    locked: bool,
    /// The id the next transaction opened gets.
    next_tid: u32,
    /// The transaction being written, with the log blocks it takes.
    committing: Option<(u32, u64)>,
    last_committed: u32,
    /// Log blocks of committed transactions not yet checkpointed.
    log_used: u64,
    aborted: Option<Errno>,
    stop: bool,
}

struct Shared {
    dev: BlockDevice,
    geo: Geometry,
    max_credits: u32,
    state: Mutex<State>,
    cond: Condvar,
    log: Mutex<LogState>,
    deferred: Mutex<Deferred>,
    recovery: Recovery,
}

/// The backend of [`crate::journal::Journal`].
pub(crate) struct Journal {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    closed: bool,
}

fn wait<'a, T>(cond: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cond.wait(g).unwrap_or_else(PoisonError::into_inner)
}

/// Checks that `[start, start + len)` is on `dev` and returns the device.
fn check_area(dev: &BlockDevice, start: u64, len: u64) -> Result<&Device> {
    let d = &dev.inner;
    if d.block_size() < format::SUPERBLOCK_SIZE {
        crate::error!(
            "bento: journal: block size {} is below jbd2's minimum of 1024",
            d.block_size()
        );
        return Err(Errno::EINVAL);
    }
    if start.checked_add(len).is_none_or(|end| end > d.nr_blocks()) || len > u64::from(u32::MAX) {
        crate::error!(
            "bento: journal: area of {len} blocks at {start} does not fit the device ({} blocks)",
            d.nr_blocks()
        );
        return Err(Errno::EINVAL);
    }
    Ok(d)
}

/// Reads, validates and (if dirty) replays the journal; marks it clean with the pinned
/// features. With `strict`, a replay error fails (the journal stays dirty); without it
/// (fsck) the error is reported in the result and the journal is reset anyway.
fn open(
    dev: &BlockDevice,
    start: u64,
    len: u64,
    strict: bool,
) -> Result<(Superblock, Recovery, u32)> {
    let d = check_area(dev, start, len)?;
    let mut block = vec![0u8; d.block_size()];
    d.read_raw(start, &mut block)?;
    let mut sb = Superblock::parse(&block);
    sb.check(d.block_size(), len)?;
    let f = sb.features();
    if sb.errno() != 0 {
        crate::warn!(
            "bento: journal: was aborted with error {} before",
            sb.errno()
        );
    }
    let mut recovery = Recovery {
        first_tid: sb.sequence(),
        end_tid: sb.sequence(),
        ..Recovery::default()
    };
    let next_tid;
    if sb.start() != 0 {
        if f.compat & format::COMPAT_CHECKSUM != 0 || f.has(format::INCOMPAT_FAST_COMMIT) {
            crate::error!(
                "bento: journal: needs recovery with unsupported features (compat {:#x}, incompat {:#x})",
                f.compat,
                f.incompat
            );
            return Err(Errno::EINVAL);
        }
        if d.read_only() {
            crate::error!("bento: journal: needs recovery but the device is read-only");
            return Err(Errno::EROFS);
        }
        let log = replay::Log {
            dev: d,
            start,
            first: u64::from(sb.first()),
            last: sb.last(),
            block_size: d.block_size(),
            features: f,
            seed: format::seed(&sb.uuid()),
        };
        let (info, res) = replay::recover(&log, &sb);
        recovery = info;
        let synced = d.sync();
        if let Err(e) = res.and(synced) {
            if strict {
                crate::error!("bento: journal: recovery failed ({e}); the journal stays dirty");
                return Err(e);
            }
            crate::error!("bento: journal: recovery failed ({e}); resetting the journal");
            recovery.error = Some(e);
        }
        crate::info!(
            "bento: journal: recovered transactions {}..{}: {} blocks replayed, {} revoked",
            recovery.first_tid,
            recovery.end_tid,
            recovery.replayed_blocks,
            recovery.revoked_blocks
        );
        next_tid = recovery.end_tid.wrapping_add(1);
    } else {
        next_tid = sb.sequence().wrapping_add(1);
    }
    if !d.read_only() {
        let changed = sb.start() != 0 || f != Features::PINNED || sb.errno() != 0;
        sb.set_features(Features::PINNED);
        sb.set_start(0);
        sb.set_sequence(next_tid);
        sb.set_errno(0);
        if changed {
            sb.seal();
            d.write_raw(start, &sb.to_block(d.block_size()))?;
            d.flush()?;
        }
    }
    Ok((sb, recovery, next_tid))
}

impl Journal {
    pub(crate) fn format(dev: &BlockDevice, start: u64, len: u64, uuid: [u8; 16]) -> Result {
        let d = check_area(dev, start, len)?;
        if len < format::MIN_JOURNAL_BLOCKS {
            crate::error!(
                "bento: journal: {len} blocks is below jbd2's minimum of {}",
                format::MIN_JOURNAL_BLOCKS
            );
            return Err(Errno::EINVAL);
        }
        let bs = d.block_size();
        let chunk_blocks = ((1usize << 20) / bs).max(1) as u64;
        let zeroes = vec![0u8; chunk_blocks as usize * bs];
        let mut b = 1;
        while b < len {
            let n = chunk_blocks.min(len - b);
            d.write_raw(start + b, &zeroes[..n as usize * bs])?;
            b += n;
        }
        let sb = Superblock::new(bs as u32, len as u32, uuid);
        d.write_raw(start, &sb.to_block(bs))?;
        d.flush()
    }

    pub(crate) fn recover(dev: &BlockDevice, start: u64, len: u64) -> Result<Recovery> {
        open(dev, start, len, false).map(|(_, r, _)| r)
    }

    pub(crate) fn load(dev: &BlockDevice, start: u64, len: u64) -> Result<Journal> {
        let (sb, recovery, next_tid) = open(dev, start, len, true)?;
        let bs = dev.inner.block_size();
        let layout = Layout::new(bs);
        let maxlen = u64::from(sb.maxlen());
        let first = u64::from(sb.first());
        let max_tx = maxlen / 3;
        let mut max_credits = max_tx;
        while max_credits > 0 && layout.log_blocks(max_credits, 0) > max_tx {
            max_credits -= 1;
        }
        let uuid = sb.uuid();
        let geo = Geometry {
            start,
            maxlen,
            first,
            last: maxlen,
            uuid,
            seed: format::seed(&uuid),
            layout,
            max_tx,
            capacity: (maxlen - first).saturating_sub(LOG_SLACK),
        };
        let shared = Arc::new(Shared {
            dev: dev.clone(),
            geo,
            max_credits: u32::try_from(max_credits).unwrap_or(u32::MAX),
            state: Mutex::new(State {
                running: None,
                locked: false,
                next_tid,
                committing: None,
                last_committed: next_tid.wrapping_sub(1),
                log_used: 0,
                aborted: None,
                stop: false,
            }),
            cond: Condvar::new(),
            log: Mutex::new(LogState {
                head: first,
                tail: first,
                sb_clean: true,
                sb,
                checkpoint: BTreeMap::new(),
            }),
            deferred: Mutex::new(Deferred::default()),
            recovery,
        });
        let bg = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bento-journal".into())
            .spawn(move || bg.commit_thread())
            .map_err(|e| {
                crate::error!("bento: journal: cannot start the commit thread: {e}");
                Errno::EAGAIN
            })?;
        Ok(Journal {
            shared,
            thread: Some(thread),
            closed: false,
        })
    }

    pub(crate) fn recovery(&self) -> Recovery {
        self.shared.recovery
    }

    pub(crate) fn max_credits(&self) -> u32 {
        self.shared.max_credits
    }

    pub(crate) fn start(&self, credits: u32, revokes: u32) -> Result<Handle<'_>> {
        Handle::start(&self.shared, credits, revokes)
    }

    pub(crate) fn force_commit(&self) -> Result {
        let j = &*self.shared;
        j.refuse_own_handle(None)?;
        let target = {
            let s = lock(&j.state);
            if s.aborted.is_some() {
                return Err(Errno::EIO);
            }
            match &s.running {
                Some(t) if !t.is_empty() || t.updates > 0 => t.tid,
                _ => s.committing.map_or(s.last_committed, |(tid, _)| tid),
            }
        };
        j.commit_and_wait(target)
    }

    pub(crate) fn commit_and_wait(&self, tid: Tid) -> Result {
        let j = &*self.shared;
        j.refuse_own_handle(Some(tid.raw()))?;
        j.commit_and_wait(tid.raw())
    }

    pub(crate) fn committed(&self, tid: Tid) -> bool {
        !after(tid.raw(), lock(&self.shared.state).last_committed)
    }

    pub(crate) fn defer_free(&self, tid: Tid, first: u64, count: u64) -> Result {
        let last = lock(&self.shared.state).last_committed;
        lock(&self.shared.deferred).add(tid.raw(), first, count, last)
    }

    pub(crate) fn pending_run(&self, first: u64, count: u64) -> Option<(u64, u64)> {
        let last = lock(&self.shared.state).last_committed;
        lock(&self.shared.deferred).pending_run(first, count, last)
    }

    pub(crate) fn close(mut self) -> Result {
        self.shutdown()
    }

    /// Stops the commit thread, commits, checkpoints and marks the journal clean.
    fn shutdown(&mut self) -> Result {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let j = &*self.shared;
        lock(&j.state).stop = true;
        j.cond.notify_all();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                crate::error!("bento: journal: the commit thread panicked");
            }
        }
        if let Some(e) = lock(&j.state).aborted {
            crate::error!("bento: journal: aborted ({e}); left for recovery");
            return Err(e);
        }
        if j.dev.read_only() {
            return Ok(());
        }
        let tid = {
            let s = lock(&j.state);
            s.running.as_ref().filter(|t| !t.is_empty()).map(|t| t.tid)
        };
        if let Some(tid) = tid {
            j.commit_and_wait(tid)?;
        }
        let mut log = lock(&j.log);
        j.checkpoint_locked(&mut log)?;
        let next = lock(&j.state).last_committed.wrapping_add(1);
        commit::mark_clean(&j.dev.inner, &j.geo, &mut log, next)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            crate::error!("bento: journal: closing failed: {e}");
        }
    }
}

impl Shared {
    fn id(&self) -> usize {
        self as *const Shared as usize
    }

    /// Refuses a commit wait the calling thread's own handle would block forever
    /// (`tid` `None`: any commit).
    fn refuse_own_handle(&self, tid: Option<u32>) -> Result {
        if let Some(cur) = handle::current_tid(self.id()) {
            if tid.is_none_or(|t| t == cur) {
                crate::error!(
                    "bento: journal: waiting for a commit of transaction {cur} while holding a handle on it"
                );
                return Err(Errno::EINVAL);
            }
        }
        Ok(())
    }

    /// Refuses to block on a commit while the calling thread holds a buffer lock: the
    /// commit takes every buffer lock of its transaction.
    fn refuse_buffer_lock(&self, what: &str) -> Result {
        if holds_buffer_lock() {
            crate::error!("bento: journal: {what} while holding a buffer lock");
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Reserves room for a new handle in the running transaction (opening one if need
    /// be) and returns its id.
    fn admit(&self, credits: u32, revokes: u32) -> Result<u32> {
        self.refuse_buffer_lock("starting a handle")?;
        let layout = &self.geo.layout;
        if layout.log_blocks(u64::from(credits), u64::from(revokes)) > self.geo.max_tx {
            crate::error!(
                "bento: journal: a handle wants too many credits ({credits} blocks, {revokes} revokes; max {})",
                self.max_credits
            );
            return Err(Errno::ENOSPC);
        }
        if self.dev.read_only() {
            crate::error!("bento: journal: cannot start a handle on a read-only device");
            return Err(Errno::EROFS);
        }
        loop {
            let mut s = lock(&self.state);
            if s.aborted.is_some() {
                return Err(Errno::EROFS);
            }
            if s.locked {
                drop(wait(&self.cond, s));
                continue;
            }
            if s.running.is_none() {
                let tid = s.next_tid;
                s.next_tid = tid.wrapping_add(1);
                s.running = Some(Transaction {
                    tid,
                    updates: 0,
                    bufs: BTreeMap::new(),
                    revokes: BTreeSet::new(),
                    res_bufs: 0,
                    res_revokes: 0,
                    opened: Instant::now(),
                });
            }
            let used = s.log_used + s.committing.map_or(0, |(_, n)| n);
            let Some(t) = s.running.as_mut() else {
                continue;
            };
            let need = layout.log_blocks(
                t.res_bufs + u64::from(credits),
                t.res_revokes + u64::from(revokes),
            );
            if need > self.geo.max_tx {
                let tid = t.tid;
                drop(s);
                self.commit_and_wait(tid)?;
                continue;
            }
            if used + need > self.geo.capacity {
                drop(s);
                let mut log = lock(&self.log);
                self.checkpoint_locked(&mut log)?;
                continue;
            }
            t.res_bufs += u64::from(credits);
            t.res_revokes += u64::from(revokes);
            t.updates += 1;
            return Ok(t.tid);
        }
    }

    fn commit_and_wait(&self, tid: u32) -> Result {
        self.refuse_buffer_lock("waiting for a commit")?;
        loop {
            let s = lock(&self.state);
            if !after(tid, s.last_committed) {
                return Ok(());
            }
            if s.aborted.is_some() {
                return Err(Errno::EIO);
            }
            let running = s.running.as_ref().is_some_and(|t| t.tid == tid);
            let committing = s.committing.is_some_and(|(t, _)| t == tid);
            if !running && !committing {
                crate::error!(
                    "bento: journal: waiting for transaction {tid}, which was never started"
                );
                return Err(Errno::EINVAL);
            }
            drop(s);
            self.commit(tid)?;
        }
    }

    /// Commits the running transaction if its id is `tid` (or returns once `tid` is
    /// committed by someone else).
    fn commit(&self, tid: u32) -> Result {
        let mut log = lock(&self.log);
        let mut s = lock(&self.state);
        if !after(tid, s.last_committed) {
            return Ok(());
        }
        if let Some(e) = s.aborted {
            return Err(e);
        }
        if s.running.as_ref().is_none_or(|t| t.tid != tid) {
            return Ok(());
        }
        // (1) Close the transaction to new handles, (2) wait for its handles.
        s.locked = true;
        while s.running.as_ref().is_some_and(|t| t.updates > 0) {
            s = wait(&self.cond, s);
        }
        let Some(t) = s.running.take() else {
            s.locked = false;
            drop(s);
            self.cond.notify_all();
            return Ok(());
        };
        let nblocks = self
            .geo
            .layout
            .log_blocks(t.bufs.len() as u64, t.revokes.len() as u64);
        s.committing = Some((tid, nblocks));
        drop(s);
        // (3) Take the committed contents, (4) let the next transaction open.
        let mut blocks: Vec<(u64, Vec<u8>)> = Vec::with_capacity(t.bufs.len());
        let mut held: Vec<Held> = Vec::with_capacity(t.bufs.len());
        for (nr, h) in t.bufs {
            blocks.push((nr, h.0.snapshot()));
            held.push(h);
        }
        let revokes = t.revokes;
        {
            let mut s = lock(&self.state);
            s.locked = false;
        }
        self.cond.notify_all();
        // (5) Write.
        let res =
            commit::write_transaction(&self.dev.inner, &self.geo, &mut log, tid, &blocks, &revokes);
        let mut s = lock(&self.state);
        s.committing = None;
        match res {
            Ok(n) => {
                s.last_committed = tid;
                s.log_used += n;
            }
            Err(e) => {
                crate::error!(
                    "bento: journal: commit of transaction {tid} failed ({e}); journal aborted"
                );
                s.aborted = Some(e);
            }
        }
        let log_used = s.log_used;
        drop(s);
        self.cond.notify_all();
        res?;
        let filed = blocks
            .into_iter()
            .zip(held)
            .map(|((nr, data), h)| (nr, data, h))
            .collect();
        commit::add_checkpoint(&mut log, tid, filed, &revokes);
        let pinned_limit = self.dev.inner.cache_capacity() / 2;
        if log_used > self.geo.capacity / 2 || log.checkpoint.len() > pinned_limit {
            self.checkpoint_locked(&mut log)?;
        }
        Ok(())
    }

    /// Checkpoints everything committed (the caller holds the commit mutex).
    fn checkpoint_locked(&self, log: &mut LogState) -> Result {
        let next = lock(&self.state).last_committed.wrapping_add(1);
        let res = commit::checkpoint(&self.dev.inner, &self.geo, log, next);
        let mut s = lock(&self.state);
        match res {
            Ok(()) => s.log_used = 0,
            Err(e) => {
                crate::error!("bento: journal: checkpoint failed ({e}); journal aborted");
                s.aborted = Some(e);
            }
        }
        drop(s);
        self.cond.notify_all();
        res
    }

    /// The background commit thread: commits a transaction with changes once it is
    /// [`COMMIT_INTERVAL`] old, and checkpoints when idle.
    fn commit_thread(&self) {
        loop {
            let mut s = lock(&self.state);
            let tid = loop {
                if s.stop || s.aborted.is_some() {
                    return;
                }
                let due = s
                    .running
                    .as_ref()
                    .filter(|t| !t.is_empty())
                    .map(|t| (t.tid, t.opened.elapsed()));
                match due {
                    Some((tid, age)) if age >= COMMIT_INTERVAL => break Some(tid),
                    Some((_, age)) => {
                        s = self
                            .cond
                            .wait_timeout(s, COMMIT_INTERVAL - age)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    None => {
                        let (g, timeout) = self
                            .cond
                            .wait_timeout(s, COMMIT_INTERVAL)
                            .unwrap_or_else(PoisonError::into_inner);
                        s = g;
                        if timeout.timed_out()
                            && s.log_used > 0
                            && s.running.as_ref().is_none_or(|t| t.is_empty())
                        {
                            break None;
                        }
                    }
                }
            };
            drop(s);
            match tid {
                Some(tid) => {
                    let _ = self.commit_and_wait(tid);
                }
                None => {
                    // Idle: write committed metadata in place, after another interval
                    // without commits.
                    let mut log = lock(&self.log);
                    let _ = self.checkpoint_locked(&mut log);
                }
            }
        }
    }
}
