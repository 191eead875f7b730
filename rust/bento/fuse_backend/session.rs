// SPDX-License-Identifier: GPL-2.0
//! The fuser session: an adapter from [`FileSystem`] to `fuser::Filesystem`, and `main`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    Config, FileAttr, FileHandle, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, SessionACL,
};

use super::args::Args;
use crate::fs::{DirSink, FileSystem, MountOptions};
use crate::types::{Attr, FileType, Ino, Open, Request, Timespec, ROOT_INO};

/// How long the kernel may cache entries and attributes. Every change to a mounted
/// bento file system goes through this mount, so the kernel's caches stay right; the
/// bound only limits staleness after a live upgrade.
const TTL: Duration = Duration::from_secs(1);

/// Largest write the kernel may send (DESIGN §4).
const MAX_WRITE: u32 = 1 << 20;

/// Worker threads of the session.
const THREADS: usize = 4;

struct Adapter<T> {
    fs: T,
    /// Lookup counts: the kernel's references to each inode. The file system sees one
    /// `forget` when a count drops to zero, as in the kernel build.
    lookups: Mutex<HashMap<Ino, u64>>,
}

fn request(req: &fuser::Request) -> Request {
    Request {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn system_time(t: Timespec) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.nsec));
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(t.sec.unsigned_abs()) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs()) + nanos
    }
}

fn kind(k: FileType) -> fuser::FileType {
    match k {
        FileType::RegularFile => fuser::FileType::RegularFile,
        FileType::Directory => fuser::FileType::Directory,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::NamedPipe => fuser::FileType::NamedPipe,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::Socket => fuser::FileType::Socket,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.ctime),
        kind: kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

fn fopen_flags(o: &Open) -> FopenFlags {
    let mut f = FopenFlags::empty();
    if o.direct_io {
        f |= FopenFlags::FOPEN_DIRECT_IO;
    }
    if o.keep_cache {
        f |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    f
}

struct Sink<'a>(&'a mut ReplyDirectory);

impl DirSink for Sink<'_> {
    fn add(&mut self, ino: Ino, next_offset: i64, kind_: FileType, name: &[u8]) -> bool {
        let Ok(next) = u64::try_from(next_offset) else {
            return true;
        };
        self.0.add(
            INodeNo(ino),
            next,
            kind(kind_),
            std::ffi::OsStr::from_bytes(name),
        )
    }
}

impl<T: FileSystem> Adapter<T> {
    fn counted_entry(&self, attr: &Attr, reply: ReplyEntry) {
        if attr.ino != ROOT_INO {
            let mut l = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
            *l.entry(attr.ino).or_insert(0) += 1;
        }
        reply.entry(
            &TTL,
            &file_attr(attr),
            Generation(u64::from(attr.generation)),
        );
    }
}

impl<T: FileSystem> fuser::Filesystem for Adapter<T> {
    fn init(&mut self, _req: &fuser::Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Both are best effort: an older kernel keeps its defaults.
        let _ = config.add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE);
        let _ = config.set_max_write(MAX_WRITE);
        Ok(())
    }

    fn lookup(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        name: &std::ffi::OsStr,
        reply: ReplyEntry,
    ) {
        match self.fs.lookup(&request(req), parent.0, name.as_bytes()) {
            Ok(e) => self.counted_entry(&e.attr, reply),
            Err(e) => reply.error(e.into()),
        }
    }

    fn forget(&self, _req: &fuser::Request, ino: INodeNo, nlookup: u64) {
        let gone = {
            let mut l = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
            match l.get_mut(&ino.0) {
                Some(n) if *n > nlookup => {
                    *n -= nlookup;
                    false
                }
                Some(_) => {
                    l.remove(&ino.0);
                    true
                }
                None => false,
            }
        };
        if gone {
            self.fs.forget(ino.0);
        }
    }

    fn getattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        _fh: Option<FileHandle>,
        reply: ReplyAttr,
    ) {
        match self.fs.getattr(&request(req), ino.0) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(e.into()),
        }
    }

    fn readlink(&self, req: &fuser::Request, ino: INodeNo, reply: ReplyData) {
        let mut buf = vec![0u8; 4096];
        match self.fs.readlink(&request(req), ino.0, &mut buf) {
            Ok(n) => reply.data(buf.get(..n).unwrap_or_default()),
            Err(e) => reply.error(e.into()),
        }
    }

    fn open(&self, req: &fuser::Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.open(&request(req), ino.0, flags.0) {
            Ok(o) => reply.opened(FileHandle(o.fh), fopen_flags(&o)),
            Err(e) => reply.error(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        // Fill the whole request, as the kernel's page cache expects (a short read
        // means end of file).
        while filled < buf.len() {
            let Some(rest) = buf.get_mut(filled..) else {
                break;
            };
            match self
                .fs
                .read(&request(req), ino.0, fh.0, offset + filled as u64, rest)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if filled == 0 => return reply.error(e.into()),
                Err(_) => break,
            }
        }
        reply.data(buf.get(..filled).unwrap_or_default());
    }

    fn release(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.fs.release(&request(req), ino.0, fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn opendir(&self, req: &fuser::Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(&request(req), ino.0, flags.0) {
            Ok(o) => reply.opened(FileHandle(o.fh), fopen_flags(&o)),
            Err(e) => reply.error(e.into()),
        }
    }

    fn readdir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Ok(offset) = i64::try_from(offset) else {
            return reply.error(fuser::Errno::EINVAL);
        };
        match self
            .fs
            .readdir(&request(req), ino.0, fh.0, offset, &mut Sink(&mut reply))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn releasedir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        match self.fs.releasedir(&request(req), ino.0, fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn statfs(&self, req: &fuser::Request, ino: INodeNo, reply: ReplyStatfs) {
        match self.fs.statfs(&request(req), ino.0) {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(e.into()),
        }
    }
}

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
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(msg) => return usage(name, desc, &msg),
    };
    if !args.foreground {
        return daemonize(name, &args.mountpoint);
    }
    let opts = MountOptions {
        source: args.source.as_bytes(),
        options: args.fs_options.as_bytes(),
        read_only: args.read_only,
    };
    let fs = match T::mount(&opts) {
        Ok(fs) => fs,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: mount failed: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    let adapter = Adapter {
        fs,
        lookups: Mutex::new(HashMap::new()),
    };
    match fuser::mount(adapter, &args.mountpoint, &config) {
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
