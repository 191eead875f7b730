// SPDX-License-Identifier: GPL-2.0
//! The FUSE host's control socket: what `/sys/fs/bento/` and `modprobe` are to the
//! kernel build. One command per connection, one line each way:
//!
//! | command | reply |
//! |---|---|
//! | `upgrade PATH` | `ok VERSION`: switched to the version at `PATH` (a higher one) |
//! | `downgrade PATH` | `ok VERSION`: switched to a lower version (rollback) |
//! | `status` | `ok name=.. version=.. module=.. calls=.. upgrades=.. last_pause_ns=.. last_drain_ns=.. drain_timeout_ms=..` |
//! | `loaded` | `ok PATH:VERSION ...` |
//! | `drain_timeout_ms N` | `ok N` |
//!
//! A refusal or failure replies `error ENAME`; the host logs why on its stderr, as the
//! kernel does in its log. The socket is created mode 0600.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::hosted::Host;
use crate::errno::{Errno, Result};

/// Longest command line.
const MAX_LINE: u64 = 4096;

/// Binds `path` (replacing a stale socket nobody listens on).
pub(crate) fn bind(path: &Path) -> Result<UnixListener> {
    if UnixStream::connect(path).is_ok() {
        crate::error!("bento: control socket {} is in use", path.display());
        return Err(Errno::EADDRINUSE);
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| {
        crate::error!("bento: cannot bind control socket {}: {e}", path.display());
        Errno::from_raw(e.raw_os_error().unwrap_or(0)).unwrap_or(Errno::EIO)
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|_| Errno::EPERM)?;
    Ok(l)
}

/// Serves commands on `listener` for `host`, on a thread of its own, until the process
/// ends. Commands run one at a time.
pub(crate) fn serve(listener: UnixListener, host: Arc<Host>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let reply = match read_line(&stream) {
                Some(line) => match run(&host, &line) {
                    Ok(s) => format!("ok {s}"),
                    Err(e) => format!("error {}", e.name()),
                },
                None => "error EINVAL".to_string(),
            };
            let _ = writeln!(&stream, "{reply}");
        }
    });
}

fn read_line(stream: &UnixStream) -> Option<String> {
    let mut line = String::new();
    BufReader::new(std::io::Read::take(stream, MAX_LINE))
        .read_line(&mut line)
        .ok()?;
    Some(line.trim_end_matches('\n').to_string())
}

fn run(host: &Host, line: &str) -> Result<String> {
    let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "upgrade" | "downgrade" if !arg.is_empty() => host
            .switch(Path::new(arg), cmd == "downgrade")
            .map(|v| v.to_string()),
        "status" => {
            let cur = host.current();
            Ok(format!(
                "name={} version={} module={} calls={} upgrades={} last_pause_ns={} last_drain_ns={} drain_timeout_ms={}",
                String::from_utf8_lossy(cur.name()),
                cur.ops.version,
                cur.path.display(),
                host.calls.load(Ordering::Relaxed),
                host.upgrades.load(Ordering::Relaxed),
                host.last_pause_ns.load(Ordering::Relaxed),
                host.last_drain_ns.load(Ordering::Relaxed),
                host.drain_ms.load(Ordering::Relaxed)
            ))
        }
        "loaded" => Ok(host
            .loaded()
            .iter()
            .map(|p| format!("{}:{}", p.path.display(), p.ops.version))
            .collect::<Vec<_>>()
            .join(" ")),
        "drain_timeout_ms" => {
            let ms: u32 = arg.parse().map_err(|_| Errno::EINVAL)?;
            host.drain_ms.store(ms, Ordering::Relaxed);
            Ok(ms.to_string())
        }
        _ => Err(Errno::EINVAL),
    }
}

/// The client: sends `command` to the host at `socket`, prints the reply's text.
/// Returns the reply (`Ok` for `ok ...`).
pub(crate) fn client(socket: &Path, command: &str) -> std::result::Result<String, String> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach the host at {}: {e}", socket.display()))?;
    writeln!(s, "{command}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let line = line.trim_end();
    match line.strip_prefix("ok") {
        Some(rest) => Ok(rest.trim_start().to_string()),
        None => Err(line
            .strip_prefix("error ")
            .map(|e| format!("{e} (the host's log says why)"))
            .unwrap_or_else(|| format!("bad reply '{line}'"))),
    }
}
