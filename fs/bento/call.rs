// SPDX-License-Identifier: GPL-2.0
//! How fs/bento calls into a file system module.
//!
//! Every call runs under `memalloc_nofs_save()`: the module allocates with plain
//! `GFP_KERNEL`, and reclaim must not re-enter a file system from inside one.

use bento::abi::{FsOps, Instance};
use bento::Request;
use kernel::bindings;

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

/// A mounted instance of a file system implementation.
#[derive(Clone, Copy)]
pub(crate) struct Fs {
    pub(crate) ops: &'static FsOps,
    pub(crate) inst: Instance,
}

impl Fs {
    /// Runs `f` (a call through the ops table) in a NOFS scope.
    pub(crate) fn call<R>(&self, f: impl FnOnce(&'static FsOps, Instance) -> R) -> R {
        let _nofs = NoFs::enter();
        f(self.ops, self.inst)
    }
}

/// The kernel error for a bento error number.
pub(crate) fn errno(e: bento::Errno) -> kernel::error::Error {
    kernel::error::Error::from_errno(e.to_kernel())
}

/// An operation table in a `static`. Bindgen's tables hold raw pointers (`owner`), which
/// are not `Sync`; the tables are never written after initialisation.
#[repr(transparent)]
pub(crate) struct Table<T>(pub(crate) T);

// SAFETY: The wrapped table is immutable; the pointers in it (NULL `owner`, functions)
// are fine to read from any thread.
unsafe impl<T> Sync for Table<T> {}
