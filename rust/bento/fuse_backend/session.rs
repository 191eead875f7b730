// SPDX-License-Identifier: GPL-2.0
//! `main` of a FUSE program: command line, daemon mode, the fuser session.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, SessionACL};

use super::adapter::{Adapter, THREADS};
use super::args::Args;
use super::names::Names;
use crate::fs::{FileSystem, MountOptions};

fn usage(name: &str, desc: &str, msg: &str) -> ExitCode {
    if !msg.is_empty() {
        let _ = writeln!(std::io::stderr(), "{name}: {msg}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "{desc}\nusage: {name} [-f] [-o OPTIONS] SOURCE MOUNTPOINT\n  -f  stay in the foreground\n  -o  ro, rw, allow_other, auto_unmount, generic flags (nodev, noexec, ...) and options of {name}"
    );
    ExitCode::from(2)
}

/// The fuser option for a generic mount flag [`Args`] accepted.
fn generic_flag(flag: &str) -> Option<MountOption> {
    Some(match flag {
        "dev" => MountOption::Dev,
        "nodev" => MountOption::NoDev,
        "suid" => MountOption::Suid,
        "nosuid" => MountOption::NoSuid,
        "exec" => MountOption::Exec,
        "noexec" => MountOption::NoExec,
        "atime" => MountOption::Atime,
        "noatime" => MountOption::NoAtime,
        "sync" => MountOption::Sync,
        "async" => MountOption::Async,
        "dirsync" => MountOption::DirSync,
        _ => return None,
    })
}

/// Whether this process runs as root (`/proc/self` belongs to the effective uid).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether `mountpoint` is a mount point now (listed in `/proc/self/mountinfo`).
fn is_mounted(mountpoint: &Path) -> bool {
    let Ok(canon) = mountpoint.canonicalize() else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == canon.as_os_str().as_bytes())
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b.get(i), b.get(i + 1..i + 4)) {
            (Some(b'\\'), Some(oct)) if oct.iter().all(|c| (b'0'..=b'7').contains(c)) => {
                out.push(
                    oct.iter()
                        .fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            (Some(&c), _) => {
                out.push(c);
                i += 1;
            }
            (None, _) => break,
        }
    }
    out
}

/// Without `-f`: runs the program again with `-f` in its own process group, relays its
/// messages until the mount appears (exit 0) or the child fails (its status).
fn daemonize(name: &str, mountpoint: &Path) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: cannot find own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut child = match Command::new(exe)
        .arg("-f")
        .args(std::env::args_os().skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Relay the child's messages from a thread; stop listening once mounted.
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(50)); // let the relay drain
            return ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1).max(1));
        }
        if is_mounted(mountpoint) {
            return ExitCode::SUCCESS;
        }
        if Instant::now() > deadline {
            let _ = writeln!(
                std::io::stderr(),
                "{name}: mount did not appear within 30 s"
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `main` of a FUSE program: parses the mount-helper command line, creates the file
/// system instance and serves it until unmounted.
pub fn main<T: FileSystem>(name: &str, desc: &str) -> ExitCode {
    let args = match parse_args(name, desc) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let opts = MountOptions::new(
        args.source.as_bytes(),
        args.fs_options.as_bytes(),
        args.read_only,
    );
    let fs = match T::mount(&opts) {
        Ok(fs) => fs,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: mount failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    serve(fs, name, &args, None)
}

/// What a FUSE host needs of the session it serves: the names the kernel caches are
/// tracked into `names`, and `notifier` receives the session's notifier to invalidate
/// them with.
pub(crate) struct HostHooks {
    pub(crate) names: Arc<Names>,
    pub(crate) notifier: Box<dyn FnOnce(fuser::Notifier)>,
}

/// Parses the command line; `Err` is the exit code after a usage message or, without
/// `-f`, the daemon's start (see `daemonize`).
pub(crate) fn parse_args(name: &str, desc: &str) -> Result<Args, ExitCode> {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(msg) => return Err(usage(name, desc, &msg)),
    };
    if !args.foreground {
        return Err(daemonize(name, &args.mountpoint));
    }
    Ok(args)
}

/// Serves the mounted `fs` as file system type `fuse.NAME` at `args.mountpoint` until
/// it is unmounted.
pub(crate) fn serve<F: FileSystem>(
    fs: F,
    name: &str,
    args: &Args,
    host: Option<HostHooks>,
) -> ExitCode {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(String::from_utf8_lossy(args.source.as_bytes()).into_owned()),
        MountOption::Subtype(name.to_string()),
        MountOption::DefaultPermissions,
        if args.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    config
        .mount_options
        .extend(args.flags.iter().filter_map(|f| generic_flag(f)));
    // As root, fuser mounts with mount(2) itself and drops `Subtype` (only fusermount3
    // reads it): pass it to the kernel so the type shows as `fuse.NAME`.
    if is_root() {
        config
            .mount_options
            .push(MountOption::CUSTOM(format!("subtype={name}")));
    }
    if args.auto_unmount {
        config.mount_options.push(MountOption::AutoUnmount);
    }
    config.acl = match (args.allow_other, args.auto_unmount) {
        (true, _) => SessionACL::All,
        (false, true) => SessionACL::RootAndOwner,
        (false, false) => SessionACL::Owner,
    };
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    let (names, notifier) = match host {
        Some(h) => (Some(h.names), Some(h.notifier)),
        None => (None, None),
    };
    let adapter = Adapter::new(fs, names);
    let session = fuser::Session::new(adapter, &args.mountpoint, &config).inspect(|s| {
        if let Some(f) = notifier {
            f(s.notifier());
        }
    });
    match session.and_then(fuser::Session::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "{name}: {}: {e}",
                args.mountpoint.display()
            );
            ExitCode::FAILURE
        }
    }
}
