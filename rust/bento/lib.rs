// SPDX-License-Identifier: GPL-2.0
//! Bento: write a Linux file system once, in safe Rust, and run it in the kernel
//! (through fs/bento) or as a FUSE program (through fuser).
//!
//! A file system implements [`FileSystem`] and declares itself with [`module_fs!`]. It
//! uses nothing but this crate: no `kernel::`, no `std::` items without a twin here, and
//! no `unsafe`. The crate has two backends chosen at build time: `--cfg kernel` (built by
//! Kbuild into vmlinux, on the `kernel` crate) and the default userspace one (built by
//! cargo, on `std` and fuser).
#![cfg_attr(kernel, no_std)]
#![cfg_attr(kernel, feature(allow_internal_unsafe))]
// `module_fs!` expands to the module boilerplate (`#[no_mangle]` init/exit, `.modinfo`)
// inside `#![forbid(unsafe_code)]` samples, as `std::thread_local!` does in such crates.
#![cfg_attr(kernel, allow(internal_features))]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod block;
pub mod bytes;
pub mod collections;
pub mod crc32c;
pub mod errno;
pub mod fs;
pub mod journal;
pub mod log;
pub mod sync;
pub mod time;
pub mod types;
pub mod upgrade;

#[cfg(kernel)]
#[doc(hidden)]
pub mod kernel_backend;
#[cfg(kernel)]
use kernel_backend as backend;

#[cfg(not(kernel))]
pub mod fuse_backend;
#[cfg(not(kernel))]
use fuse_backend as backend;

pub use errno::{Errno, Result};
pub use fs::{DirSink, FileSystem, MountOptions};
pub use types::{
    new_inode_owner, Attr, Entry, Extent, FileType, Ino, Open, OpenFlags, Request, SetAttr, Statfs,
    TimeSet, Timespec, ROOT_INO,
};

/// Prefix of kernel log lines printed by this crate's own code.
#[cfg(kernel)]
#[doc(hidden)]
pub const __LOG_PREFIX: &[u8] = b"bento\0";

/// Copies a byte string into an array of its exact length (for `.modinfo` entries).
#[doc(hidden)]
pub const fn __to_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < s.len() {
        out[i] = s[i];
        i += 1;
    }
    out
}
