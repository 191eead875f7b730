// SPDX-License-Identifier: GPL-2.0
//! Test module: version 3 of `hello` whose `import_state` fails for every superblock but
//! the first, to test that a failed live upgrade leaves every superblock on the old
//! version.
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
pub(crate) const VERSION: u32 = 3;
/// Whether `import_state` fails on purpose.
pub(crate) const BROKEN_IMPORT: bool = true;

bento::module_fs! {
    type: fs::HelloFs,
    name: "hello",
    version: 3,
    description: "Bento test: a hello version whose live upgrade fails",
    autoload: false,
}
