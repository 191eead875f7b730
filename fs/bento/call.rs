// SPDX-License-Identifier: GPL-2.0
//! How fs/bento calls into a file system module.
//!
//! Every call passes the superblock's gate (which a live upgrade closes) and runs under
//! `memalloc_nofs_save()`: the module allocates with plain `GFP_KERNEL`, and reclaim
//! must not re-enter a file system from inside one.

use core::ffi::c_void;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use bento::abi::{FsOps, Instance};
use bento::Request;
use kernel::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// Scope in which allocations behave as `GFP_NOFS`.
pub(crate) struct NoFs(u32);

impl NoFs {
    pub(crate) fn enter() -> Self {
        // SAFETY: Always safe; the flags are restored by `drop`, in LIFO order.
        NoFs(unsafe { bindings::memalloc_nofs_save() })
    }
}

impl Drop for NoFs {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from the matching `memalloc_nofs_save()`.
        unsafe { bindings::memalloc_nofs_restore(self.0) }
    }
}

/// The calling task's credentials, as the file system sees them.
pub(crate) fn request() -> Request {
    let mut req = Request::default();
    // SAFETY: The pointers are valid for writes of `u32`.
    unsafe { bindings::bento_current_cred(&mut req.uid, &mut req.gid, &mut req.pid) };
    req
}

/// What to do when a file system reports corruption (`EUCLEAN`): the `errors=` mount
/// option, as ext4 has it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Log and go on (the default, as ext4's).
    #[default]
    Continue,
    /// Log, stop the journal and make the superblock read-only.
    RemountRo,
    /// Panic the kernel.
    Panic,
}

impl OnError {
    /// Parses an `errors=` value.
    pub(crate) fn parse(v: &[u8]) -> Option<Self> {
        match v {
            b"continue" => Some(OnError::Continue),
            b"remount-ro" => Some(OnError::RemountRo),
            b"panic" => Some(OnError::Panic),
            _ => None,
        }
    }
}

/// Results of calls into a file system that the framework inspects.
pub(crate) trait CallResult: Sized {
    /// Reacts to the result of a call into `fs`.
    fn check(&self, _fs: &Fs) {}

    /// What a call returns when its task is killed while it waits at a closed gate;
    /// `None`: the call cannot fail, so it waits uninterruptibly.
    fn interrupted() -> Option<Self> {
        None
    }
}

impl CallResult for () {}

impl CallResult for i32 {
    fn interrupted() -> Option<Self> {
        Some(-(bindings::EINTR as i32))
    }

    fn check(&self, fs: &Fs) {
        if *self == -(bindings::EUCLEAN as i32) {
            fs.corrupted();
        }
    }
}

/// The per-superblock gate (DESIGN.md §5.2): every call into the file system module
/// passes it, and a live upgrade closes it, waits for the calls inside to return, swaps
/// the implementation and opens it again.
///
/// A counter of calls inside plus a state (open, draining, sealed), both atomics, and a
/// wait queue for the slow paths. (DESIGN.md suggested SRCU: its grace periods take
/// milliseconds under TCG, longer than the whole pause may, and `synchronize_srcu` has
/// no timeout; the counter drains in the time the last call takes, with
/// `wait_event_timeout`.) It is taken innermost, around the module call only, so a
/// caller never holds it while it takes a folio lock, waits on writeback or on a
/// commit; a call that waits in the file system holds it, which the drain timeout
/// bounds.
///
/// One wait the framework cannot avoid: a buffered write holds a journal handle from
/// `write_begin` to `write_end` and calls the module in between. Were it held at the
/// gate, a call still inside that starts a handle while the commit thread waits for
/// the running transaction's handles to stop would wait for the commit, the commit for
/// the held write, the write for the drain: a cycle only the drain timeout breaks. So
/// while the gate is *draining*, a task holding a journal handle passes (and is
/// drained like the others); once the gate is *sealed* (no call inside), everyone
/// waits, and nothing during the handover waits for a commit.
///
/// # Invariants
///
/// `wq` is initialised (by [`Gate::init`]) before any other method runs, and `inflight`
/// counts the callers between `enter` and `leave`.
pub(crate) struct Gate {
    inflight: AtomicI32,
    /// [`OPEN`], [`DRAINING`] or [`SEALED`].
    closed: AtomicI32,
    wq: Opaque<bindings::wait_queue_head>,
}

/// Calls pass.
const OPEN: i32 = 0;
/// Only calls from tasks holding a journal handle pass (see [`Gate`]).
const DRAINING: i32 = 1;
/// No call passes.
const SEALED: i32 = 2;

/// A call inside the gate; leaves it when dropped.
pub(crate) struct Inside<'a>(&'a Gate);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Gate {
    pub(crate) const fn new() -> Self {
        Gate {
            inflight: AtomicI32::new(0),
            closed: AtomicI32::new(0),
            wq: Opaque::uninit(),
        }
    }

    /// Initialises the wait queue where the gate lives.
    ///
    /// # Safety
    ///
    /// Call once, before any other method, and never move the gate afterwards.
    pub(crate) unsafe fn init(&self) {
        // SAFETY: `wq` is valid for writes and, per the caller, not in use yet.
        unsafe { bindings::bento_init_waitqueue_head(self.wq.get()) }
    }

    /// Enters the gate, waiting while it is closed: killably when `R` has an
    /// "interrupted" value (returned if the task is killed), uninterruptibly otherwise.
    fn enter<R: CallResult>(&self) -> core::result::Result<Inside<'_>, R> {
        loop {
            self.inflight.fetch_add(1, Ordering::SeqCst);
            match self.closed.load(Ordering::SeqCst) {
                OPEN => return Ok(Inside(self)),
                // SAFETY: Always safe.
                DRAINING if unsafe { bindings::bento_in_journal_handle() } => {
                    return Ok(Inside(self))
                }
                _ => {}
            }
            self.leave();
            match R::interrupted() {
                // SAFETY: `wq` is initialised (type invariant); `closed` is an `i32`.
                Some(r) => unsafe {
                    if bindings::bento_wait_zero_killable(self.wq.get(), self.closed.as_ptr()) != 0
                    {
                        return Err(r);
                    }
                },
                // SAFETY: As above.
                None => unsafe { bindings::bento_wait_zero(self.wq.get(), self.closed.as_ptr()) },
            }
        }
    }

    fn leave(&self) {
        // The closer sets `closed` before it reads `inflight`, we decrement before we
        // read `closed` (both sequentially consistent): one of us sees the other.
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.closed.load(Ordering::SeqCst) != OPEN
        {
            // SAFETY: `wq` is initialised (type invariant).
            unsafe { bindings::bento_wake_up_all(self.wq.get()) };
        }
    }

    /// Closes the gate: new calls wait until [`Gate::open`] (but see [`Gate`] for
    /// tasks holding a journal handle, until [`Gate::drain`] seals it).
    pub(crate) fn close(&self) {
        self.closed.store(DRAINING, Ordering::SeqCst);
    }

    fn wait_empty(&self, jiffies: isize) -> bool {
        // SAFETY: `wq` is initialised (type invariant); `inflight` is an `i32`.
        unsafe {
            bindings::bento_wait_zero_timeout(self.wq.get(), self.inflight.as_ptr(), jiffies) != 0
        }
    }

    /// Waits until no call is inside, then seals the gate (no call passes any more) and
    /// waits for the calls that passed meanwhile; at most about `jiffies` in all.
    /// `false` on timeout (the gate stays closed: [`Gate::open`] it).
    pub(crate) fn drain(&self, jiffies: isize) -> bool {
        if !self.wait_empty(jiffies) {
            return false;
        }
        self.closed.store(SEALED, Ordering::SeqCst);
        self.wait_empty(jiffies)
    }

    /// Opens the gate and wakes the callers waiting at it.
    pub(crate) fn open(&self) {
        self.closed.store(OPEN, Ordering::SeqCst);
        // SAFETY: `wq` is initialised (type invariant).
        unsafe { bindings::bento_wake_up_all(self.wq.get()) };
    }
}

/// A mounted instance of a file system implementation: the implementation (which a live
/// upgrade swaps, with the gate closed and drained), the instance and the gate.
///
/// # Invariants
///
/// `ops` points to the table of a registered implementation whose module this
/// superblock references, and `inst` is null or a live instance made by it; both change
/// only while the gate is closed and no call is inside.
pub(crate) struct Fs {
    ops: AtomicPtr<FsOps>,
    inst: AtomicPtr<c_void>,
    /// The implementation's `data_credits` (read without the gate).
    data_credits: AtomicU32,
    /// The implementation's `FLAG_*` bits (the same for every version).
    pub(crate) flags: u32,
    /// The superblock of the instance.
    pub(crate) sb: *mut bindings::super_block,
    /// The `errors=` policy of the mount.
    pub(crate) on_error: OnError,
    pub(crate) gate: Gate,
    /// Calls made into the module, for sysfs.
    pub(crate) calls: AtomicU64,
    /// Live upgrades of this superblock (see `dentry.rs`).
    generation: AtomicUsize,
}

impl Fs {
    pub(crate) const fn new(
        ops: &'static FsOps,
        sb: *mut bindings::super_block,
        on_error: OnError,
    ) -> Self {
        Fs {
            ops: AtomicPtr::new(ops as *const FsOps as *mut FsOps),
            inst: AtomicPtr::new(core::ptr::null_mut()),
            data_credits: AtomicU32::new(ops.data_credits),
            flags: ops.flags,
            sb,
            on_error,
            gate: Gate::new(),
            calls: AtomicU64::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// How many times the implementation was swapped.
    pub(crate) fn generation(&self) -> usize {
        self.generation.load(Ordering::Acquire)
    }

    /// The journal credits of the framework's data handle.
    pub(crate) fn data_credits(&self) -> u32 {
        self.data_credits.load(Ordering::Relaxed)
    }

    /// The current instance (null before mount and after unmount). Only for the
    /// registry and mount/unmount, which run while no other call can.
    pub(crate) fn instance(&self) -> Instance {
        self.inst.load(Ordering::Acquire)
    }

    /// The current implementation's table (see [`Fs::instance`]).
    pub(crate) fn ops(&self) -> &'static FsOps {
        // SAFETY: By the type invariants `ops` points to a live table; callers use it
        // only while the module is referenced.
        unsafe { &*self.ops.load(Ordering::Acquire) }
    }

    /// Sets the instance (mount, unmount).
    pub(crate) fn set_instance(&self, inst: Instance) {
        self.inst.store(inst, Ordering::Release);
    }

    /// Installs another implementation and its instance.
    ///
    /// # Safety
    ///
    /// The gate must be closed and drained, `ops` registered and referenced for this
    /// superblock, and `inst` made by it.
    pub(crate) unsafe fn swap(&self, ops: &'static FsOps, inst: Instance) {
        self.ops
            .store(ops as *const FsOps as *mut FsOps, Ordering::Release);
        self.inst.store(inst, Ordering::Release);
        self.data_credits.store(ops.data_credits, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `f` (a call through the ops table) inside the gate and in a NOFS scope, and
    /// applies the `errors=` policy when it reports corruption.
    pub(crate) fn call<R: CallResult>(&self, f: impl FnOnce(&'static FsOps, Instance) -> R) -> R {
        let inside = match self.gate.enter::<R>() {
            Ok(inside) => inside,
            Err(interrupted) => return interrupted,
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let r = {
            let _nofs = NoFs::enter();
            f(self.ops(), self.instance())
        };
        drop(inside);
        r.check(self);
        r
    }

    /// The file system found its on-disk structures corrupt.
    fn corrupted(&self) {
        if self.sb.is_null() {
            return;
        }
        // SAFETY: `sb` is the live superblock of this instance.
        let (sb, ro) = unsafe { (&*self.sb, (*self.sb).s_flags & bindings::SB_RDONLY != 0) };
        match self.on_error {
            OnError::Continue => {
                pr_err!(
                    "{}: file system corruption detected (errors=continue)\n",
                    sb_id(sb)
                );
            }
            OnError::RemountRo if ro => {}
            OnError::RemountRo => {
                pr_err!(
                    "{}: file system corruption detected: remounting read-only (errors=remount-ro)\n",
                    sb_id(sb)
                );
                // SAFETY: As above. As ext4 does on an error: the journal stops (nothing
                // more commits) and the superblock turns read-only.
                unsafe {
                    let journal = crate::superblock::journal_of(self.sb);
                    if !journal.is_null() {
                        bindings::jbd2_journal_abort(journal, -(bindings::EUCLEAN as i32));
                    }
                    bindings::bento_sb_set_rdonly(self.sb);
                }
            }
            OnError::Panic => {
                // SAFETY: The format is a NUL-terminated string with one `%s` argument,
                // `s_id`, NUL-terminated.
                unsafe {
                    bindings::panic(
                        c"bento: %s: file system corruption detected (errors=panic)\n"
                            .as_ptr()
                            .cast(),
                        sb.s_id.as_ptr(),
                    )
                };
            }
        }
    }
}

/// The superblock's device name, for log lines.
fn sb_id(sb: &bindings::super_block) -> &kernel::str::BStr {
    let id = &sb.s_id;
    let len = id.iter().position(|&c| c == 0).unwrap_or(id.len());
    // SAFETY: `c_char` is `u8` in the kernel's bindings; the slice is `s_id`'s bytes.
    let bytes = unsafe { core::slice::from_raw_parts(id.as_ptr().cast::<u8>(), len) };
    kernel::str::BStr::from_bytes(bytes)
}

/// An operation table in a `static`. Bindgen's tables hold raw pointers (`owner`), which
/// are not `Sync`; the tables are never written after initialisation.
#[repr(transparent)]
pub(crate) struct Table<T>(pub(crate) T);

// SAFETY: The wrapped table is immutable; the pointers in it (NULL `owner`, functions)
// are fine to read from any thread.
unsafe impl<T> Sync for Table<T> {}
