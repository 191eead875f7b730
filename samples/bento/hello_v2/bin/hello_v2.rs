// SPDX-License-Identifier: GPL-2.0
//! `hello_v2`: the FUSE program (mount helper) of the hello_v2 sample, the same code as `hello_v2.ko`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hello_v2::main()
}
