// SPDX-License-Identifier: GPL-2.0
//! `bento-fuse`: the FUSE host that loads file system versions as shared objects and
//! switches them live (see `bento::fuse_backend::host`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    bento::fuse_backend::host::main()
}
