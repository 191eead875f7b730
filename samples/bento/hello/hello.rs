// SPDX-License-Identifier: GPL-2.0
//! Bento sample: a read-only file system whose root holds one file, `hello`, containing
//! `Hello, world!\n`. The same source builds as `hello.ko` (Kbuild) and as the FUSE
//! program `hello` (cargo). `hello_v2` is its next version (live upgrade).
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

pub mod fs;

/// This build's version of the file system.
pub(crate) const VERSION: u32 = 1;
/// Whether `import_state` fails on purpose (the `hello_broken` test build).
pub(crate) const BROKEN_IMPORT: bool = false;

bento::module_fs! {
    type: fs::HelloFs,
    name: "hello",
    version: 1,
    description: "Bento sample: read-only hello world file system",
}
