// SPDX-License-Identifier: GPL-2.0
//! The FUSE host's gate: the userspace twin of fs/bento's per-superblock gate
//! (DESIGN.md §5.2). Every call into the file system version passes it; a live upgrade
//! closes it, waits for the calls inside to return (with a deadline), swaps the version
//! and opens it again.
//!
//! It also holds what the calls need, the current table and instance, so that a call
//! reads them under the same lock that admits it: no call can see the old table with
//! the new instance. Unlike the kernel's, it needs no exception for tasks holding a
//! journal handle: the userspace data path holds none between two calls.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::abi::{FsOps, Instance};

/// The version a call runs on.
///
/// # Invariants
///
/// `inst` is a live instance made by `ops` (its `mount` or `import_state`).
#[derive(Clone, Copy)]
pub(crate) struct Current {
    pub(crate) ops: &'static FsOps,
    pub(crate) inst: Instance,
}

struct State {
    /// `None` once unmounted: calls fail with `ENODEV`.
    current: Option<Current>,
    inflight: u32,
    closed: bool,
}

/// See the module documentation.
pub(crate) struct Gate {
    state: Mutex<State>,
    /// Callers wait here for the gate to open; the closer for `inflight` to reach 0.
    cv: Condvar,
}

// SAFETY: `Instance` is a pointer to a `FileSystem` value, which is `Send + Sync`; the
// table is immutable. The gate hands them only to callers it admitted.
unsafe impl Send for Gate {}
// SAFETY: As above.
unsafe impl Sync for Gate {}

/// A call inside the gate; leaves it when dropped.
pub(crate) struct Inside<'a> {
    gate: &'a Gate,
    pub(crate) cur: Current,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.inflight = s.inflight.saturating_sub(1);
        if s.closed && s.inflight == 0 {
            self.gate.cv.notify_all();
        }
    }
}

/// A closed and drained gate: no call runs until [`Sealed::open`] (or the drop).
pub(crate) struct Sealed<'a> {
    gate: &'a Gate,
    guard: Option<MutexGuard<'a, State>>,
}

impl Gate {
    pub(crate) fn new(cur: Current) -> Self {
        Gate {
            state: Mutex::new(State {
                current: Some(cur),
                inflight: 0,
                closed: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters the gate, waiting while it is closed; `None` after [`Gate::take`].
    pub(crate) fn enter(&self) -> Option<Inside<'_>> {
        let mut s = self.lock();
        while s.closed {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        let cur = s.current?;
        s.inflight += 1;
        Some(Inside { gate: self, cur })
    }

    /// Closes the gate and waits up to `timeout` for the calls inside to return. On
    /// timeout the gate is open again and `None` is returned; no call failed.
    pub(crate) fn seal(&self, timeout: Duration) -> Option<Sealed<'_>> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        s.closed = true;
        while s.inflight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                s.closed = false;
                self.cv.notify_all();
                return None;
            }
            s = self
                .cv
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(Sealed {
            gate: self,
            guard: Some(s),
        })
    }

    /// Closes the gate for good (unmount) and returns the last version, once no call
    /// runs.
    pub(crate) fn take(&self) -> Option<Current> {
        let mut s = self.lock();
        s.closed = true;
        while s.inflight > 0 {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        let cur = s.current.take();
        s.closed = false;
        self.cv.notify_all();
        cur
    }
}

impl Sealed<'_> {
    /// The version the gate was closed on.
    pub(crate) fn current(&self) -> Option<Current> {
        self.guard.as_ref().and_then(|s| s.current)
    }

    /// Opens the gate on `cur`.
    pub(crate) fn open(mut self, cur: Current) {
        if let Some(s) = self.guard.as_mut() {
            s.current = Some(cur);
        }
    }
}

impl Drop for Sealed<'_> {
    fn drop(&mut self) {
        if let Some(mut s) = self.guard.take() {
            s.closed = false;
            drop(s);
            self.gate.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FileSystem, MountOptions};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct Dummy;
    impl FileSystem for Dummy {
        fn mount(_: &MountOptions<'_>) -> crate::Result<Self> {
            Ok(Dummy)
        }
    }
    static V1: FsOps = FsOps::new::<Dummy>(b"dummy\0", 1, 0);
    static V2: FsOps = FsOps::new::<Dummy>(b"dummy\0", 2, 0);

    fn cur(ops: &'static FsOps, n: usize) -> Current {
        Current {
            ops,
            inst: n as Instance,
        }
    }

    #[test]
    fn idle_gate_seals_at_once_and_opens_on_the_new_version() {
        let g = Gate::new(cur(&V1, 1));
        let s = g.seal(Duration::ZERO).expect("nothing inside");
        assert_eq!(s.current().map(|c| c.ops.version), Some(1));
        s.open(cur(&V2, 2));
        let inside = g.enter().expect("open");
        assert_eq!((inside.cur.ops.version, inside.cur.inst as usize), (2, 2));
    }

    #[test]
    fn a_call_inside_makes_the_seal_time_out_and_the_gate_reopen() {
        let g = Gate::new(cur(&V1, 1));
        let inside = g.enter().expect("open");
        let t = Instant::now();
        assert!(g.seal(Duration::from_millis(50)).is_none());
        assert!(t.elapsed() >= Duration::from_millis(50));
        // Reopened: another call passes while the first is still inside.
        assert!(g.enter().is_some());
        drop(inside);
        assert!(g.seal(Duration::ZERO).is_some());
    }

    #[test]
    fn calls_wait_while_sealed_and_run_on_the_new_version() {
        let g = Arc::new(Gate::new(cur(&V1, 1)));
        let s = g.seal(Duration::ZERO).expect("idle");
        let passed = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (g, passed) = (g.clone(), passed.clone());
            std::thread::spawn(move || {
                let v = g.enter().map(|i| i.cur.ops.version);
                passed.store(true, Ordering::SeqCst);
                v
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !passed.load(Ordering::SeqCst),
            "a call passed a sealed gate"
        );
        s.open(cur(&V2, 2));
        assert_eq!(waiter.join().ok().flatten(), Some(2));
    }

    #[test]
    fn take_waits_for_the_calls_and_then_refuses_every_call() {
        let g = Arc::new(Gate::new(cur(&V1, 1)));
        let inside = g.enter().expect("open");
        let taker = {
            let g = g.clone();
            std::thread::spawn(move || g.take().map(|c| c.ops.version))
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(!taker.is_finished(), "took the instance with a call inside");
        drop(inside);
        assert_eq!(taker.join().ok().flatten(), Some(1));
        assert!(g.enter().is_none());
        assert!(g.seal(Duration::ZERO).and_then(|s| s.current()).is_none());
    }
}
