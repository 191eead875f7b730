// SPDX-License-Identifier: GPL-2.0
//! The FUSE host (DESIGN.md §5.7): `bento-fuse`, a program that mirrors the kernel
//! split. It owns the fuser session and, through the one `libbento.so` it shares with
//! them, the block cache and the journal; file system versions are shared objects it
//! loads, and a command on its control socket switches a mounted file system to another
//! version without unmounting, with the kernel's checks, gate, handover and rollback.
//!
//! ```text
//! bento-fuse [-f] -o fs=LIBFS.so[,control=SOCKET][,OPTIONS] SOURCE MOUNTPOINT
//! bento-fuse ctl SOCKET upgrade LIBFS_V2.so | downgrade LIBFS.so | status | loaded
//!                       | drain_timeout_ms N
//! ```
//!
//! The host and the versions must be built together with `-C prefer-dynamic` and
//! `--cfg bento_plugin` (tools/testing/bento/fuse-host-build.sh); the table's build id and
//! anchor checks refuse anything else.

mod control;
mod gate;
mod hosted;
mod plugin;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use hosted::{Host, Hosted};

const NAME: &str = "bento-fuse";
const DESC: &str = "Bento FUSE host: serves a file system version loaded from a shared object \
and switches versions live.\n  -o fs=LIBFS.so     the version to mount with\n  -o control=SOCKET \
where `bento-fuse ctl SOCKET upgrade LIBFS_V2.so` (or downgrade, status, loaded, \
drain_timeout_ms N) reaches it";

fn fail(msg: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "{NAME}: {msg}");
    ExitCode::FAILURE
}

/// Splits the host's own options (`fs=`, `control=`) from the file system's.
fn host_options(opts: &str) -> (Option<PathBuf>, Option<PathBuf>, String) {
    let (mut fs, mut control, mut rest) = (None, None, Vec::new());
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("fs", v)) => fs = Some(PathBuf::from(v)),
            Some(("control", v)) => control = Some(PathBuf::from(v)),
            _ => rest.push(o),
        }
    }
    (fs, control, rest.join(","))
}

/// `main` of `bento-fuse` (see the module documentation).
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some((cmd, rest)) = argv.split_first() {
        if cmd == "ctl" {
            let Some((socket, words)) = rest.split_first().filter(|(_, w)| !w.is_empty()) else {
                return fail("usage: bento-fuse ctl SOCKET COMMAND [ARG]");
            };
            return match control::client(std::path::Path::new(socket), &words.join(" ")) {
                Ok(reply) => {
                    println!("{reply}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{}: {e}", words.join(" "))),
            };
        }
    }
    let mut args = match super::session::parse_args(NAME, DESC) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (fs, socket, rest) = host_options(&args.fs_options);
    args.fs_options = rest;
    let Some(fs) = fs else {
        return fail("-o fs=LIBFS.so is required");
    };
    if !plugin::bento_is_shared() {
        return fail("this build links bento statically and cannot load file system versions; build it with tools/testing/bento/fuse-host-build.sh");
    }
    let version = match plugin::load(&fs) {
        Ok(v) => v,
        Err(e) => return fail(&format!("{}: {e}", fs.display())),
    };
    let listener = match socket.as_deref().map(control::bind).transpose() {
        Ok(l) => l,
        Err(e) => return fail(&format!("control socket: {e}")),
    };
    let name = String::from_utf8_lossy(version.name()).into_owned();
    let host = match Host::mount(
        version,
        args.source.as_encoded_bytes(),
        args.fs_options.as_bytes(),
        args.read_only,
    ) {
        Ok(h) => h,
        Err(e) => return fail(&format!("{name}: mount failed: {e}")),
    };
    if let Some(l) = listener {
        control::serve(l, host.clone());
    }
    let hooks = super::session::HostHooks {
        names: host.names.clone(),
        notifier: {
            let host = host.clone();
            Box::new(move |n| host.set_notifier(n))
        },
    };
    let code = super::session::serve(Hosted(host), &name, &args, Some(hooks));
    if let Some(s) = socket {
        let _ = std::fs::remove_file(s);
    }
    code
}
