// SPDX-License-Identifier: GPL-2.0
//! Userspace backend: runs a [`FileSystem`](crate::FileSystem) as a FUSE file system on fuser.
//!
//! The FUSE program of a sample is a mount helper (see [`args`]). The adapter plays the
//! part fs/bento plays in the kernel: it owns the session, counts lookups so that the file
//! system sees one final `forget` per inode, and turns typed results into replies. For
//! block-backed file systems it also moves file data, in [`data`], as fs/bento does with
//! the page cache.

mod adapter;
pub mod args;
pub mod block;
pub mod data;
pub mod host;
pub(crate) mod journal;
pub(crate) mod names;
mod session;

use std::fmt;

use crate::errno::{Errno, Result};
use crate::log::Level;

pub use session::main;

pub(crate) fn box_into_raw<T>(v: T) -> Result<*mut T> {
    Ok(Box::into_raw(Box::new(v)))
}

/// # Safety
///
/// `p` must come from [`box_into_raw`] and not be used afterwards.
pub(crate) unsafe fn drop_raw<T>(p: *mut T) {
    // SAFETY: By the caller's guarantee `p` is an owned `Box` pointer.
    drop(unsafe { Box::from_raw(p) })
}

/// # Safety
///
/// `p` must come from [`box_into_raw`] and not be used afterwards.
pub(crate) unsafe fn take_raw<T>(p: *mut T) -> T {
    // SAFETY: By the caller's guarantee `p` is an owned `Box` pointer.
    *unsafe { Box::from_raw(p) }
}

pub(crate) fn sleep_ms(ms: u32) {
    std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)))
}

pub(crate) fn now() -> crate::types::Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::types::Timespec::new(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

pub(crate) fn log(level: Level, args: fmt::Arguments<'_>) {
    let tag = match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "info",
    };
    // Not `eprintln!`, which panics when stderr is gone: a daemon's stderr is a pipe to
    // the process that started it, which exits once the mount is up.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{tag}: {args}");
}

impl From<Errno> for fuser::Errno {
    fn from(e: Errno) -> Self {
        fuser::Errno::from_i32(e.raw())
    }
}

/// Declares a file system program: in the userspace build, `main` runs it as a FUSE
/// mount helper (`NAME [-f] [-o OPTIONS] SOURCE MOUNTPOINT`).
#[macro_export]
macro_rules! module_fs {
    (
        type: $t:ty,
        name: $name:literal,
        version: $ver:literal,
        description: $desc:literal
        $(, flags: $flags:expr)?
        $(, autoload: $auto:tt)? $(,)?
    ) => {
        /// Runs the file system as a FUSE mount helper.
        pub fn main() -> std::process::ExitCode {
            $crate::fuse_backend::main::<$t>($name, $desc)
        }

        /// The ops table a FUSE host (`bento-fuse`) loads from this version's shared
        /// object (the `--cfg bento_plugin` build).
        #[cfg(bento_plugin)]
        #[no_mangle]
        pub static BENTO_FS_OPS: $crate::abi::FsOps = $crate::abi::FsOps::new::<$t>(
            concat!($name, "\0").as_bytes(),
            $ver,
            0 $(| $flags)?,
        );
    };
}
