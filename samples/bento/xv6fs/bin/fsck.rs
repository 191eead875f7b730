// SPDX-License-Identifier: GPL-2.0
//! `fsck.xv6fs`: checks and repairs an xv6fs file system (the checking is
//! `xv6fs::check`). Cargo builds it as `fsck-xv6fs`, since crate names cannot hold a
//! dot; `make fuse` links the usual name.
//!
//! ```text
//! fsck.xv6fs [-n|-y|-p] [-f] [-v] DEVICE
//! ```
//! - `-n`: check only. The device is opened read-only and nothing is changed; a dirty
//!   journal is reported, not replayed (the results may then be stale). The default.
//! - `-y`: replay a dirty journal, then repair everything found.
//! - `-p`: the same repairs as `-y` (none needs a decision), with terse output for
//!   boot scripts: problem lines are prefixed with the device.
//! - `-f`: check even a file system marked clean.
//! - `-v`: print statistics.
//!
//! Exit status (e2fsck's, summed): 0 no errors, 1 errors fixed, 4 errors left
//! uncorrected, 8 operational error (cannot open, not an xv6fs, I/O error), 16 usage.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bento::block::BlockDevice;
use xv6fs::check::{check, CheckOptions, Report};
use xv6fs::layout::BLOCK_SIZE;

const USAGE: &str = "usage: fsck.xv6fs [-n|-y|-p] [-f] [-v] DEVICE
  -n  check only: open read-only and change nothing (the default)
  -y  replay the journal and repair everything found
  -p  repair automatically, with terse output (preen)
  -f  check even if the file system is marked clean
  -v  verbose: print statistics";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Check,
    Repair,
    Preen,
}

struct Opts {
    mode: Mode,
    force: bool,
    verbose: bool,
    device: PathBuf,
}

/// `Ok(None)`: help was asked for.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Opts>, String> {
    let mut mode = None;
    let mut force = false;
    let mut verbose = false;
    let mut device = None;
    let set = |m: Mode, mode: &mut Option<Mode>| match mode {
        Some(old) if *old != m => Err("only one of -n, -y and -p may be given".to_string()),
        _ => {
            *mode = Some(m);
            Ok(())
        }
    };
    for a in args {
        if a == "--help" {
            return Ok(None);
        }
        if let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            for c in flags.chars() {
                match c {
                    'n' => set(Mode::Check, &mut mode)?,
                    'y' => set(Mode::Repair, &mut mode)?,
                    'p' | 'a' => set(Mode::Preen, &mut mode)?,
                    'f' => force = true,
                    'v' => verbose = true,
                    'h' => return Ok(None),
                    _ => return Err(format!("unknown option -{c}")),
                }
            }
        } else if device.is_some() {
            return Err("more than one device given".into());
        } else {
            device = Some(PathBuf::from(a));
        }
    }
    Ok(Some(Opts {
        mode: mode.unwrap_or(Mode::Check),
        force,
        verbose,
        device: device.ok_or("no device given")?,
    }))
}

fn print_report(o: &Opts, r: &Report) {
    let dev = o.device.display();
    let prefix = if o.mode == Mode::Preen {
        format!("{dev}: ")
    } else {
        String::new()
    };
    if r.aborted {
        for p in r.problems.iter() {
            eprintln!("fsck.xv6fs: {dev}: {p}");
        }
        return;
    }
    for p in r.problems.iter() {
        println!("{prefix}{p}");
    }
    let s = &r.stats;
    if r.skipped {
        println!(
            "{dev}: clean, {}/{} files, {}/{} blocks",
            s.inodes_used,
            s.ninodes.saturating_sub(1),
            s.blocks_used,
            s.nblocks
        );
        return;
    }
    if r.stale {
        println!("{prefix}warning: the journal was not replayed (-n): these results may be stale");
    }
    if o.verbose {
        println!();
        println!(
            "{:>10} inodes used of {}",
            s.inodes_used,
            s.ninodes.saturating_sub(1)
        );
        println!("{:>10} regular files", s.files);
        println!("{:>10} directories", s.dirs);
        println!("{:>10} symbolic links", s.symlinks);
        println!("{:>10} character and block devices", s.devices);
        println!("{:>10} named pipes", s.fifos);
        println!("{:>10} sockets", s.sockets);
        println!("{:>10} blocks used of {}", s.blocks_used, s.nblocks);
        println!("{:>10} indirect blocks", s.indirect_blocks);
        println!("{:>10} extended attribute blocks", s.xattr_blocks);
        println!();
    }
    println!(
        "{dev}: {}/{} files ({} directories), {}/{} blocks",
        s.inodes_used,
        s.ninodes.saturating_sub(1),
        s.dirs,
        s.blocks_used,
        s.nblocks
    );
    if r.modified {
        println!("\n{dev}: ***** FILE SYSTEM WAS MODIFIED *****");
    }
    if r.exit_code() & 4 != 0 {
        println!("\n{dev}: ********** WARNING: file system still has errors **********");
    }
}

fn main() -> ExitCode {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("fsck.xv6fs: {msg}\n{USAGE}");
            return ExitCode::from(16);
        }
    };
    let dev = o.device.display();
    let read_only = o.mode == Mode::Check;
    let device = match BlockDevice::open(&o.device, read_only, BLOCK_SIZE) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fsck.xv6fs: cannot open {dev}: {e}");
            return ExitCode::from(8);
        }
    };
    // A mounted image is held (flock) by its FUSE daemon: never repair under it.
    if let Err(e) = device.claim(Duration::ZERO) {
        if !read_only {
            eprintln!("fsck.xv6fs: {dev} is in use (mounted?): {e}; not checked");
            return ExitCode::from(8);
        }
        eprintln!("fsck.xv6fs: warning: {dev} is in use (mounted?): the results may be inaccurate");
    }
    let opts = CheckOptions {
        repair: !read_only,
        force: o.force,
    };
    match check(&device, &opts) {
        Ok(r) => {
            print_report(&o, &r);
            ExitCode::from(u8::try_from(r.exit_code()).unwrap_or(8))
        }
        Err(e) => {
            eprintln!("fsck.xv6fs: {dev}: the check failed: {e}");
            ExitCode::from(8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Option<Opts>, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let o = parse(&["-fy", "img"]).unwrap().unwrap();
        assert!(o.force && o.mode == Mode::Repair && !o.verbose);
        let o = parse(&["img", "-v"]).unwrap().unwrap();
        assert!(o.mode == Mode::Check && o.verbose);
        assert!(parse(&["-n", "-y", "img"]).is_err());
        assert!(parse(&["-x", "img"]).is_err());
        assert!(parse(&["-n"]).is_err());
        assert!(parse(&["a", "b"]).is_err());
        assert!(parse(&["-h"]).unwrap().is_none());
        assert!(parse(&["-p", "-p", "img"]).unwrap().is_some());
    }
}
