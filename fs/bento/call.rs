// SPDX-License-Identifier: GPL-2.0
//! How fs/bento calls into a file system module.
//!
//! Every call runs under `memalloc_nofs_save()`: the module allocates with plain
//! `GFP_KERNEL`, and reclaim must not re-enter a file system from inside one.

use bento::abi::{FsOps, Instance};
use bento::Request;
use kernel::bindings;
use kernel::prelude::*;

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

/// A mounted instance of a file system implementation.
#[derive(Clone, Copy)]
pub(crate) struct Fs {
    pub(crate) ops: &'static FsOps,
    pub(crate) inst: Instance,
    /// The superblock of the instance.
    pub(crate) sb: *mut bindings::super_block,
    /// The `errors=` policy of the mount.
    pub(crate) on_error: OnError,
}

/// Results of calls into a file system that the framework inspects.
pub(crate) trait CallResult {
    /// Reacts to the result of a call into `fs`.
    fn check(&self, _fs: &Fs) {}
}

impl CallResult for () {}

impl CallResult for i32 {
    fn check(&self, fs: &Fs) {
        if *self == -(bindings::EUCLEAN as i32) {
            fs.corrupted();
        }
    }
}

impl Fs {
    /// Runs `f` (a call through the ops table) in a NOFS scope, and applies the
    /// `errors=` policy when it reports corruption.
    pub(crate) fn call<R: CallResult>(&self, f: impl FnOnce(&'static FsOps, Instance) -> R) -> R {
        let r = {
            let _nofs = NoFs::enter();
            f(self.ops, self.inst)
        };
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
