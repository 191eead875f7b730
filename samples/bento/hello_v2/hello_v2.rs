// SPDX-License-Identifier: GPL-2.0
//! Bento sample: version 2 of `hello` (the same source, `../hello/fs.rs`), with a second
//! file, `version`. `modprobe hello_v2` live-upgrades every mounted hello file system.
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

#[path = "../hello/fs.rs"]
pub mod fs;

/// This build's version of the file system.
pub(crate) const VERSION: u32 = 2;
/// Whether `import_state` fails on purpose (the `hello_broken` test build).
pub(crate) const BROKEN_IMPORT: bool = false;

bento::module_fs! {
    type: fs::HelloFs,
    name: "hello",
    version: 2,
    description: "Bento sample: hello world file system, version 2 (live upgrade)",
    autoload: false,
}
