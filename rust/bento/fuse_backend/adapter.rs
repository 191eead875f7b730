// SPDX-License-Identifier: GPL-2.0
//! The adapter from [`FileSystem`] to `fuser::Filesystem`: it plays the part fs/bento
//! plays in the kernel (lookup counting, umask already applied, typed results to replies).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    BsdFileFlags, CopyFileRangeFlags, FileAttr, FileHandle, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, TimeOrNow, WriteFlags,
};

use crate::errno::Result;
use crate::fs::{DirSink, FileSystem};
use crate::fuse_backend::data;
use crate::fuse_backend::names::Names;
use crate::types::{
    Attr, Entry, FileType, Ino, Open, Request, SetAttr, TimeSet, Timespec, ROOT_INO,
};

/// How long the kernel may cache entries and attributes. Every change to a mounted
/// bento file system goes through this mount, so the kernel's caches stay right (as
/// the kernel build answers `getattr` from the VFS inode); the bound only limits
/// staleness after a live upgrade (which, in FUSE mode, will invalidate explicitly).
/// One second made every stat of a file older than that a FUSE round trip.
const TTL: Duration = Duration::from_secs(60);

/// Largest write the kernel may send (DESIGN §4).
const MAX_WRITE: u32 = 1 << 20;

/// Worker threads of the session.
pub(crate) const THREADS: usize = 4;

pub(crate) struct Adapter<T> {
    fs: T,
    /// Lookup counts: the kernel's references to each inode. The file system sees one
    /// `forget` when a count drops to zero, as in the kernel build.
    lookups: Mutex<HashMap<Ino, u64>>,
    /// The names the kernel caches, when a FUSE host must invalidate them on upgrade.
    names: Option<Arc<Names>>,
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

fn timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec::new(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            // Before the epoch: round toward minus infinity, nanoseconds stay positive.
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => Timespec::new(-secs, 0),
                n => Timespec::new(-secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

fn time_set(t: TimeOrNow) -> TimeSet {
    match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(t) => TimeSet::At(timespec(t)),
    }
}

fn empty(r: Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e.into()),
    }
}

/// Replies to `getxattr`/`listxattr`: the size when asked for it (`size` 0), else data.
fn xattr(r: Result<usize>, buf: &[u8], size: u32, reply: ReplyXattr) {
    match r {
        Ok(n) if size == 0 => reply.size(u32::try_from(n).unwrap_or(u32::MAX)),
        Ok(n) => match buf.get(..n) {
            Some(data) => reply.data(data),
            None => reply.error(fuser::Errno::ERANGE),
        },
        Err(e) => reply.error(e.into()),
    }
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
    pub(crate) fn new(fs: T, names: Option<Arc<Names>>) -> Self {
        Adapter {
            fs,
            lookups: Mutex::new(HashMap::new()),
            names,
        }
    }

    /// The kernel took one more reference to `ino` (a lookup or a create), through
    /// `parent`/`name`.
    fn count_lookup(&self, ino: Ino, parent: INodeNo, name: &OsStr) {
        if ino != ROOT_INO {
            let mut l = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
            *l.entry(ino).or_insert(0) += 1;
        }
        if let Some(n) = &self.names {
            n.add(ino, parent.0, name.as_bytes());
        }
    }

    /// The open flags of `o`. A block-backed file system's data moves only through this
    /// mount (data.rs), so the kernel's cached pages of a file stay right from one open
    /// to the next: keep them, as a local file system does (without `keep_cache` FUSE
    /// drops them at every open and each read is a round trip).
    fn fopen_flags(&self, mut o: Open) -> FopenFlags {
        o.keep_cache |= self.fs.block_device().is_some();
        fopen_flags(&o)
    }

    /// Replies with the entry `parent`/`name`, counting the kernel's reference to it.
    fn entry(&self, parent: INodeNo, name: &OsStr, r: Result<Entry>, reply: ReplyEntry) {
        match r {
            Ok(e) => {
                self.count_lookup(e.attr.ino, parent, name);
                reply.entry(
                    &TTL,
                    &file_attr(&e.attr),
                    Generation(u64::from(e.attr.generation)),
                );
            }
            Err(e) => reply.error(e.into()),
        }
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
        self.entry(
            parent,
            name,
            self.fs.lookup(&request(req), parent.0, name.as_bytes()),
            reply,
        )
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
            if let Some(n) = &self.names {
                n.forget(ino.0);
            }
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
            Ok(o) => reply.opened(FileHandle(o.fh), self.fopen_flags(o)),
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
            // Block-backed file systems through `map_blocks` (data.rs).
            match data::read(
                &self.fs,
                &request(req),
                ino.0,
                fh.0,
                offset + filled as u64,
                rest,
            ) {
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

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            atime: atime.map(time_set),
            mtime: mtime.map(time_set),
            ctime: ctime.map(timespec),
            fh: fh.map(|f| f.0),
        };
        match data::setattr(&self.fs, &request(req), ino.0, &set) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(e.into()),
        }
    }

    fn mknod(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        // The kernel applied the umask already (no FUSE_DONT_MASK), as the VFS does.
        self.entry(
            parent,
            name,
            self.fs
                .mknod(&request(req), parent.0, name.as_bytes(), mode, rdev),
            reply,
        )
    }

    fn mkdir(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(
            parent,
            name,
            self.fs
                .mkdir(&request(req), parent.0, name.as_bytes(), mode),
            reply,
        )
    }

    fn unlink(&self, req: &fuser::Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            self.fs.unlink(&request(req), parent.0, name.as_bytes()),
            reply,
        )
    }

    fn rmdir(&self, req: &fuser::Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            self.fs.rmdir(&request(req), parent.0, name.as_bytes()),
            reply,
        )
    }

    fn symlink(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.fs.symlink(
            &request(req),
            parent.0,
            name.as_bytes(),
            target.as_os_str().as_bytes(),
        );
        self.entry(parent, name, r, reply)
    }

    fn rename(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.fs.rename(
            &request(req),
            parent.0,
            name.as_bytes(),
            newparent.0,
            newname.as_bytes(),
            flags.bits(),
        );
        empty(r, reply)
    }

    fn link(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.entry(
            newparent,
            newname,
            self.fs
                .link(&request(req), ino.0, newparent.0, newname.as_bytes()),
            reply,
        )
    }

    fn create(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self
            .fs
            .create(&request(req), parent.0, name.as_bytes(), mode, flags)
        {
            Ok((e, o)) => {
                self.count_lookup(e.attr.ino, parent, name);
                let generation = Generation(u64::from(e.attr.generation));
                reply.created(
                    &TTL,
                    &file_attr(&e.attr),
                    generation,
                    FileHandle(o.fh),
                    self.fopen_flags(o),
                );
            }
            Err(e) => reply.error(e.into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match data::write(&self.fs, &request(req), ino.0, fh.0, offset, data, flags.0) {
            // `data` is at most max_write (1 MiB) long, so the count fits.
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e.into()),
        }
    }

    fn flush(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        empty(self.fs.flush(&request(req), ino.0, fh.0), reply)
    }

    fn fsync(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.fs.fsync(&request(req), ino.0, fh.0, datasync), reply)
    }

    fn fsyncdir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(
            self.fs.fsyncdir(&request(req), ino.0, fh.0, datasync),
            reply,
        )
    }

    fn setxattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        empty(
            self.fs
                .setxattr(&request(req), ino.0, name.as_bytes(), value, flags),
            reply,
        )
    }

    fn getxattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        let mut buf = vec![0u8; size as usize];
        xattr(
            self.fs
                .getxattr(&request(req), ino.0, name.as_bytes(), &mut buf),
            &buf,
            size,
            reply,
        )
    }

    fn listxattr(&self, req: &fuser::Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let mut buf = vec![0u8; size as usize];
        xattr(
            self.fs.listxattr(&request(req), ino.0, &mut buf),
            &buf,
            size,
            reply,
        )
    }

    fn removexattr(&self, req: &fuser::Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            self.fs.removexattr(&request(req), ino.0, name.as_bytes()),
            reply,
        )
    }

    fn fallocate(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        empty(
            data::fallocate(&self.fs, &request(req), ino.0, fh.0, offset, length, mode),
            reply,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_file_range(
        &self,
        req: &fuser::Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let r = self.fs.copy_file_range(
            &request(req),
            ino_in.0,
            fh_in.0,
            offset_in,
            ino_out.0,
            fh_out.0,
            offset_out,
            len,
        );
        match r {
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e.into()),
        }
    }

    fn lseek(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.fs.lseek(&request(req), ino.0, fh.0, offset, whence) {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(e.into()),
        }
    }
}
