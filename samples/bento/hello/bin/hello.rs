// SPDX-License-Identifier: GPL-2.0
//! `hello`: the FUSE program (mount helper) of the hello sample, the same code as `hello.ko`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hello::main()
}
