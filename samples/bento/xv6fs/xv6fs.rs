// SPDX-License-Identifier: GPL-2.0
//! xv6fs: xv6's file system grown up for real use (see FORMAT.md), written once against
//! the bento API. Layers, each using only the one below: blocks and journal (`bento`) →
//! on-disk format (`layout`) → inodes → directories → the `FileSystem` operations, which
//! also hand the mount over to another version on live upgrade (`upgrade`; `xv6fs_v2`
//! builds these sources as version 2).
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

pub mod alloc;
// fsck and mkfs are programs' logic (and the tests'), not the kernel module's.
#[cfg(not(kernel))]
pub mod check;
pub mod dir;
pub mod fs;
pub mod hash;
pub mod inode;
pub mod layout;
#[cfg(not(kernel))]
pub mod mkfs;
pub mod store;
pub mod upgrade;
pub mod xattr;

pub use fs::Xv6Fs;

/// This build's version of the file system (the `version` of `module_fs!` below): the
/// shared sources ask it for what differs between versions (`xv6fs_v2` sets 2).
pub(crate) const VERSION: u32 = 1;

bento::module_fs! {
    type: Xv6Fs,
    name: "xv6fs",
    version: 1,
    description: "Bento sample: xv6fs, a journaled read-write file system",
    flags: bento::abi::FLAG_BLOCK_DEVICE,
}
