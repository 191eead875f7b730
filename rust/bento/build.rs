// SPDX-License-Identifier: GPL-2.0
//! Sets `BENTO_BUILD_ID` for the userspace build: a hash of this crate's sources and of
//! the compiler's version, so that a FUSE host refuses a file system version built
//! against another `bento` (`abi::BUILD_ID`). The kernel build sets it from Kbuild.

use std::path::{Path, PathBuf};

/// FNV-1a, 64 bit.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            // Tests do not change what crosses the ops table.
            if name != "tests" && name != "target" {
                sources(&p, out);
            }
        } else if p
            .extension()
            .is_some_and(|x| x == "rs" || x == "c" || x == "h" || x == "toml")
        {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    let mut h = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        h = fnv(h, rel.to_string_lossy().as_bytes());
        h = fnv(h, &std::fs::read(f).unwrap_or_default());
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    if let Ok(out) = std::process::Command::new(rustc).arg("-vV").output() {
        h = fnv(h, &out.stdout);
    }
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rustc-env=BENTO_BUILD_ID={h:016x}");
}
