// SPDX-License-Identifier: GPL-2.0
//! `xv6fs`: the FUSE program (mount helper) of xv6fs, the same code as `xv6fs.ko`.
//!
//! ```text
//! xv6fs [-f] [-o OPTIONS] IMAGE_OR_DEVICE MOUNTPOINT
//! ```
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    xv6fs::main()
}
