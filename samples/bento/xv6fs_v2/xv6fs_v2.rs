// SPDX-License-Identifier: GPL-2.0
//! xv6fs version 2: the live-upgrade demo. The same sources as xv6fs (`../xv6fs/`, see
//! its `xv6fs.rs`), built with [`VERSION`] 2: the root directory has a read-only
//! extended attribute `trusted.xv6fs.version` holding `2` (see `xattr.rs`). The state
//! handed over on upgrade is the same format, so a mount switches from version 1 to 2
//! (`modprobe xv6fs_v2`) and back.
#![forbid(unsafe_code)]
// What fails only in the kernel (overflow checks, 16 KiB stacks, panics = BUG): deny it
// here so that the FUSE build's clippy catches it first (DESIGN.md §2).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::large_stack_arrays,
    clippy::large_stack_frames
)]

// fsck and mkfs (`check.rs`, `mkfs.rs`) are programs' logic: they stay with xv6fs.
#[path = "../xv6fs/alloc.rs"]
pub mod alloc;
#[path = "../xv6fs/dir.rs"]
pub mod dir;
#[path = "../xv6fs/fs.rs"]
pub mod fs;
#[path = "../xv6fs/hash.rs"]
pub mod hash;
#[path = "../xv6fs/inode.rs"]
pub mod inode;
#[path = "../xv6fs/layout.rs"]
pub mod layout;
#[path = "../xv6fs/store.rs"]
pub mod store;
#[path = "../xv6fs/upgrade.rs"]
pub mod upgrade;
#[path = "../xv6fs/xattr.rs"]
pub mod xattr;

pub use fs::Xv6Fs;

/// This build's version of the file system (the `version` of `module_fs!` below).
pub(crate) const VERSION: u32 = 2;

bento::module_fs! {
    type: Xv6Fs,
    name: "xv6fs",
    version: 2,
    description: "Bento sample: xv6fs, version 2 (live upgrade demo)",
    flags: bento::abi::FLAG_BLOCK_DEVICE,
    autoload: false,
}
