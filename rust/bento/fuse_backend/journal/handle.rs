// SPDX-License-Identifier: GPL-2.0
//! Handles: a file system operation's part of the running transaction (jbd2's
//! `handle_t`), and the thread's current handle (`current->journal_info`), which makes
//! a nested `start` return a handle on the same transaction.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::{Held, Shared, State, Transaction};
use crate::errno::{Errno, Result};
use crate::fuse_backend::block::{lock, Buf};
use crate::journal::Tid;

/// The handle a thread holds (jbd2's `current->journal_info`).
struct HandleState {
    journal: usize,
    tid: u32,
    credits: Cell<u32>,
    revokes: Cell<u32>,
    refs: Cell<u32>,
    sync: Cell<bool>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<HandleState>>> = const { RefCell::new(None) };
}

fn current() -> Option<Rc<HandleState>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The transaction of the calling thread's handle on journal `journal`, if any.
pub(super) fn current_tid(journal: usize) -> Option<u32> {
    current().filter(|c| c.journal == journal).map(|c| c.tid)
}

/// The backend of [`crate::journal::Handle`].
pub(crate) struct Handle<'j> {
    j: &'j Shared,
    st: Rc<HandleState>,
    done: bool,
}

impl<'j> Handle<'j> {
    /// Starts a handle (nested on the thread's current one, if any).
    pub(super) fn start(j: &'j Shared, credits: u32, revokes: u32) -> Result<Handle<'j>> {
        if let Some(cur) = current() {
            if cur.journal != j.id() {
                crate::error!("bento: journal: a thread may hold handles on one journal only");
                return Err(Errno::EINVAL);
            }
            cur.refs.set(cur.refs.get().saturating_add(1));
            return Ok(Handle {
                j,
                st: cur,
                done: false,
            });
        }
        let tid = j.admit(credits, revokes)?;
        let st = Rc::new(HandleState {
            journal: j.id(),
            tid,
            credits: Cell::new(credits),
            revokes: Cell::new(revokes),
            refs: Cell::new(1),
            sync: Cell::new(false),
        });
        CURRENT.with(|c| *c.borrow_mut() = Some(st.clone()));
        Ok(Handle { j, st, done: false })
    }
}

impl Handle<'_> {
    pub(crate) fn tid(&self) -> Tid {
        Tid::from_raw(self.st.tid)
    }

    pub(crate) fn credits_left(&self) -> u32 {
        self.st.credits.get()
    }

    pub(crate) fn set_sync(&self) {
        self.st.sync.set(true);
    }

    /// Every commit writes all dirty unjournaled buffers first, so file data is
    /// ordered without per-inode tracking.
    pub(crate) fn order_data(&self, _ino: crate::types::Ino, _offset: u64, _len: u64) -> Result {
        Ok(())
    }

    /// Checks that `blocknr` may be journaled by this journal.
    /// This handle's transaction, which must still be the running one: `EROFS` after an
    /// abort, `EIO` if the handle outlived its transaction.
    fn running<'s>(&self, s: &'s mut State) -> Result<&'s mut Transaction> {
        if s.aborted.is_some() {
            return Err(Errno::EROFS);
        }
        let tid = self.st.tid;
        s.running.as_mut().filter(|t| t.tid == tid).ok_or_else(|| {
            crate::error!("bento: journal: handle on transaction {tid} outlived it");
            Errno::EIO
        })
    }

    fn check_block(&self, blocknr: u64) -> Result {
        let g = &self.j.geo;
        if blocknr >= g.start && blocknr - g.start < g.maxlen {
            crate::error!("bento: journal: block {blocknr} is inside the journal");
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    pub(crate) fn modify<R>(
        &self,
        buf: &Buf,
        create: bool,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R> {
        let nr = buf.blocknr();
        if !buf.device().same(&self.j.dev.inner) {
            crate::error!("bento: journal: block {nr} is not on the journal's device");
            return Err(Errno::EINVAL);
        }
        if buf.locked_by_me() {
            crate::error!(
                "bento: journal: block {nr} changed through the journal while its lock is held"
            );
            return Err(Errno::EINVAL);
        }
        self.check_block(nr)?;
        {
            let mut s = lock(&self.j.state);
            let t = self.running(&mut s)?;
            let tid = t.tid;
            if let std::collections::btree_map::Entry::Vacant(slot) = t.bufs.entry(nr) {
                let Some(left) = self.st.credits.get().checked_sub(1) else {
                    crate::error!(
                        "bento: journal: handle out of credits changing block {nr} (transaction {tid})"
                    );
                    return Err(Errno::ENOSPC);
                };
                self.st.credits.set(left);
                slot.insert(Held::new(buf));
            }
            // A block journaled again is no longer revoked (jbd2_journal_cancel_revoke).
            let _ = create;
            t.revokes.remove(&nr);
        }
        let mut g = buf.lock();
        Ok(f(&mut g))
    }

    pub(crate) fn revoke(&self, blocknr: u64) -> Result {
        self.check_block(blocknr)?;
        let mut s = lock(&self.j.state);
        let t = self.running(&mut s)?;
        if t.revokes.contains(&blocknr) {
            return Ok(());
        }
        let Some(left) = self.st.revokes.get().checked_sub(1) else {
            crate::error!("bento: journal: handle out of revoke credits revoking block {blocknr}");
            return Err(Errno::EIO);
        };
        self.st.revokes.set(left);
        t.revokes.insert(blocknr);
        // jbd2_journal_forget: this transaction's change of the freed block is dropped.
        t.bufs.remove(&blocknr);
        Ok(())
    }

    pub(crate) fn stop(mut self) -> Result {
        self.finish()
    }

    fn finish(&mut self) -> Result {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let refs = self.st.refs.get().saturating_sub(1);
        self.st.refs.set(refs);
        if refs > 0 {
            return Ok(());
        }
        CURRENT.with(|c| *c.borrow_mut() = None);
        let tid = self.st.tid;
        let sync = self.st.sync.get();
        {
            let mut s = lock(&self.j.state);
            if let Some(t) = s.running.as_mut().filter(|t| t.tid == tid) {
                t.updates = t.updates.saturating_sub(1);
                // Give the unused credits back.
                t.res_bufs = t.res_bufs.saturating_sub(u64::from(self.st.credits.get()));
                t.res_revokes = t
                    .res_revokes
                    .saturating_sub(u64::from(self.st.revokes.get()));
            }
            if s.aborted.is_some() {
                drop(s);
                self.j.cond.notify_all();
                return Err(Errno::EROFS);
            }
        }
        self.j.cond.notify_all();
        if sync {
            self.j.commit_and_wait(tid)
        } else {
            Ok(())
        }
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            crate::error!("bento: journal: stopping a dropped handle failed: {e}");
        }
    }
}
