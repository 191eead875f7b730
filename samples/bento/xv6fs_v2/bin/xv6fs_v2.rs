// SPDX-License-Identifier: GPL-2.0
//! `xv6fs_v2`: the FUSE program (mount helper) of xv6fs version 2, the same code as
//! `xv6fs_v2.ko`.
//!
//! ```text
//! xv6fs_v2 [-f] [-o OPTIONS] IMAGE_OR_DEVICE MOUNTPOINT
//! ```
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    xv6fs_v2::main()
}
