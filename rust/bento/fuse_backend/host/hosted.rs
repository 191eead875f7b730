// SPDX-License-Identifier: GPL-2.0
//! The FUSE host's file system: a [`FileSystem`] that calls the current version through
//! its ops table, behind the [`Gate`], and switches versions on live upgrade (the
//! userspace twin of fs/bento's `Fs::call` and registry `switch`, DESIGN.md §5).
//!
//! The FUSE adapter and the data path run on top of it unchanged, so a mount served by
//! the host behaves exactly as one served by the fs linked in.

use core::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::gate::{Current, Gate, Inside};
use super::plugin::{self, Plugin};
use crate::abi::{RawDirSink, RawMountOptions};
use crate::block::BlockDevice;
use crate::errno::{Errno, Result};
use crate::fs::{DirSink, FileSystem, MountOptions};
use crate::fuse_backend::block::lock;
use crate::fuse_backend::names::Names;
use crate::types::{Attr, Entry, Extent, FileType, Ino, Open, OpenFlags, Request, SetAttr, Statfs};
use crate::upgrade::Handover;

/// Default drain timeout of an upgrade, as fs/bento's `drain_timeout_ms`.
pub(crate) const DRAIN_MS: u32 = 1000;

/// The versions a host has loaded and which one runs.
struct Versions {
    loaded: Vec<Plugin>,
    current: Plugin,
}

/// A mounted file system served through a version's table. See the module docs.
pub(crate) struct Host {
    gate: Gate,
    versions: Mutex<Versions>,
    /// The instance's block device, the same across versions (handed over).
    device: Option<BlockDevice>,
    /// Calls into the file system so far.
    pub(crate) calls: AtomicU64,
    /// Live upgrades so far.
    pub(crate) upgrades: AtomicU64,
    /// Gate closed to open in the last upgrade, and its drain part, in ns.
    pub(crate) last_pause_ns: AtomicU64,
    pub(crate) last_drain_ns: AtomicU64,
    /// How long an upgrade waits for the calls inside to return.
    pub(crate) drain_ms: AtomicU32,
    /// What the kernel caches of this mount, invalidated after each switch.
    pub(crate) names: Arc<Names>,
    notifier: Mutex<Option<fuser::Notifier>>,
}

/// `0`/`-errno` to a `Result`.
fn errno(r: i32) -> Result {
    match r {
        0 => Ok(()),
        r => Err(r
            .checked_neg()
            .and_then(Errno::from_raw)
            .unwrap_or(Errno::EIO)),
    }
}

impl Host {
    /// Mounts `source` with `version`.
    pub(crate) fn mount(
        version: Plugin,
        source: &[u8],
        options: &[u8],
        read_only: bool,
    ) -> Result<Arc<Host>> {
        let mut device: Option<BlockDevice> = None;
        let raw = RawMountOptions {
            source: source.as_ptr(),
            source_len: source.len(),
            options: options.as_ptr(),
            options_len: options.len(),
            read_only,
            sb: (&mut device as *mut Option<BlockDevice>).cast::<c_void>(),
        };
        let mut inst: crate::abi::Instance = core::ptr::null_mut();
        // SAFETY: `raw` points to valid buffers for their lengths, and in userspace `sb`
        // to the device slot; `inst` is valid for writes.
        errno(unsafe { (version.ops.mount)(&raw, &mut inst) })?;
        Ok(Arc::new(Host {
            gate: Gate::new(Current {
                ops: version.ops,
                inst,
            }),
            versions: Mutex::new(Versions {
                loaded: vec![version.clone()],
                current: version,
            }),
            device,
            calls: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            last_pause_ns: AtomicU64::new(0),
            last_drain_ns: AtomicU64::new(0),
            drain_ms: AtomicU32::new(DRAIN_MS),
            names: Arc::default(),
            notifier: Mutex::new(None),
        }))
    }

    /// Takes the session's notifier (once the session exists).
    pub(crate) fn set_notifier(&self, n: fuser::Notifier) {
        *lock(&self.notifier) = Some(n);
    }

    /// The running version: its table and path.
    pub(crate) fn current(&self) -> Plugin {
        lock(&self.versions).current.clone()
    }

    /// The paths of the loaded versions.
    pub(crate) fn loaded(&self) -> Vec<Plugin> {
        lock(&self.versions).loaded.clone()
    }

    fn enter(&self) -> Result<Inside<'_>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.gate.enter().ok_or(Errno::ENODEV)
    }

    /// Unmounts the running instance, once the calls inside returned; calls and
    /// upgrades after it fail with `ENODEV`.
    pub(crate) fn unmount(&self) {
        let _v = lock(&self.versions);
        if let Some(cur) = self.gate.take() {
            // SAFETY: `inst` is an instance of `ops`, and no call runs on it or can.
            unsafe { (cur.ops.unmount)(cur.inst) }
        }
    }

    /// Switches the mount to the version at `path` (loaded if it is not yet): refused
    /// unless its version is higher than the running one's, or lower when `downgrade`
    /// (an explicit rollback). Returns the new version number.
    pub(crate) fn switch(&self, path: &std::path::Path, downgrade: bool) -> Result<u32> {
        let mut v = lock(&self.versions);
        let canon = path.canonicalize().map_err(|_| Errno::ENOENT)?;
        let to = match v.loaded.iter().find(|p| p.path == canon) {
            Some(p) => p.clone(),
            None => {
                let p = plugin::load(&canon)?;
                v.loaded.push(p.clone());
                p
            }
        };
        check_switch(&v.current, &to, downgrade)?;
        let start = Instant::now();
        let drain = Duration::from_millis(u64::from(self.drain_ms.load(Ordering::Relaxed)));
        let Some(sealed) = self.gate.seal(drain) else {
            crate::error!(
                "bento: {}: upgrade to version {} refused: a call into the file system did not return within {} ms (drain_timeout_ms)",
                String::from_utf8_lossy(to.name()),
                to.ops.version,
                drain.as_millis()
            );
            return Err(Errno::EBUSY);
        };
        let drained = start.elapsed();
        let old = sealed.current().ok_or(Errno::ENODEV)?;
        let mut state: *mut Handover = core::ptr::null_mut();
        // SAFETY: The gate is sealed: no call runs on `old.inst`, a live instance of
        // `old.ops`; `state` is valid for writes.
        errno(unsafe { (old.ops.export_state)(old.inst, &mut state) })?;
        let mut new: crate::abi::Instance = core::ptr::null_mut();
        // SAFETY: `state` came from `export_state` and is consumed; `new` is valid for
        // writes.
        if let Err(e) = errno(unsafe { (to.ops.import_state)(state, &mut new) }) {
            // SAFETY: `old.inst` is live and the gate still sealed.
            unsafe { (old.ops.resume)(old.inst) };
            crate::error!(
                "bento: {}: upgrade to version {} failed ({e}): the mount stays on version {}",
                String::from_utf8_lossy(to.name()),
                to.ops.version,
                old.ops.version
            );
            return Err(e);
        }
        sealed.open(Current {
            ops: to.ops,
            inst: new,
        });
        let pause = start.elapsed();
        // SAFETY: Nothing can reach the old instance any more: the gate was drained and
        // now admits calls to `new` only.
        unsafe { (old.ops.unmount)(old.inst) };
        let version = to.ops.version;
        v.current = to;
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.last_pause_ns.store(ns(pause), Ordering::Relaxed);
        self.last_drain_ns.store(ns(drained), Ordering::Relaxed);
        self.upgrades.fetch_add(1, Ordering::Relaxed);
        // The kernel's entries and attributes came from the old version: drop them, as
        // the kernel build's `d_revalidate` does (after the pause: the gate is open).
        let failed = lock(&self.notifier)
            .as_ref()
            .map_or(0, |n| self.names.invalidate(n));
        if failed > 0 {
            crate::warn!("bento: {failed} cache invalidations failed after the switch");
        }
        crate::info!(
            "bento: {}: {} from version {} to {} ({}), pause {} us (drain {} us)",
            String::from_utf8_lossy(v.current.name()),
            if downgrade { "downgraded" } else { "upgraded" },
            old.ops.version,
            version,
            v.current.path.display(),
            pause.as_micros(),
            drained.as_micros()
        );
        Ok(version)
    }
}

/// Checks that a mount running `from` can switch to `to`, as fs/bento's
/// `check_switch` plus its registration rules.
fn check_switch(from: &Plugin, to: &Plugin, downgrade: bool) -> Result {
    let name = String::from_utf8_lossy(to.name());
    if from.name() != to.name() {
        crate::error!(
            "bento: {} refused: it is file system {name}, the mount runs {}",
            to.path.display(),
            String::from_utf8_lossy(from.name())
        );
        return Err(Errno::EINVAL);
    }
    let from = from.ops;
    let (fv, tv) = (from.version, to.ops.version);
    if (downgrade && tv >= fv) || (!downgrade && tv <= fv) {
        crate::error!(
            "bento: {name}: refused version {tv}: the mount runs version {fv} ({})",
            if downgrade {
                "a downgrade goes to a lower version"
            } else {
                "an upgrade needs a higher version; downgrade explicitly to go back"
            }
        );
        return Err(Errno::EPERM);
    }
    if from.flags != to.ops.flags {
        crate::error!(
            "bento: {name}: refused version {tv}: flags {:#x} differ from version {fv}'s {:#x}",
            to.ops.flags,
            from.flags
        );
        return Err(Errno::EINVAL);
    }
    if from.state_version == 0 || to.ops.state_version == 0 {
        crate::error!(
            "bento: {name}: refused version {tv}: version {} cannot hand over its state (no STATE_VERSION); unmount first",
            if from.state_version == 0 { fv } else { tv }
        );
        return Err(Errno::EOPNOTSUPP);
    }
    if !(to.ops.state_compat..=to.ops.state_version).contains(&from.state_version) {
        crate::error!(
            "bento: {name}: refused version {tv}: it reads state formats {}..={}, version {fv} writes {}",
            to.ops.state_compat,
            to.ops.state_version,
            from.state_version
        );
        return Err(Errno::EPROTO);
    }
    Ok(())
}

/// The [`FileSystem`] the FUSE adapter serves: calls go through the host's gate to the
/// running version. Dropping it (end of the session) unmounts.
pub(crate) struct Hosted(pub(crate) Arc<Host>);

impl Drop for Hosted {
    fn drop(&mut self) {
        self.0.unmount()
    }
}

/// A name or buffer as the table takes it.
fn raw(b: &[u8]) -> (*const u8, usize) {
    (b.as_ptr(), b.len())
}

unsafe extern "C" fn sink_add(
    ctx: *mut c_void,
    ino: Ino,
    next: i64,
    kind: FileType,
    name: *const u8,
    len: usize,
) -> bool {
    // SAFETY: `ctx` is the `&mut &mut dyn DirSink` `readdir` below passes, live for the
    // call; `name` is valid for `len` bytes (the trampoline passes a slice).
    unsafe {
        let sink = &mut *ctx.cast::<&mut dyn DirSink>();
        sink.add(ino, next, kind, core::slice::from_raw_parts(name, len))
    }
}

/// Calls `$op` of the running version with the instance and the arguments, storing the
/// result through the last one when it is an `out` value. Each use is one FFI call into
/// the version's trampoline, whose contract (valid pointers for the lengths given, `req`
/// valid, `out` writable) the arguments here meet.
macro_rules! call {
    ($self:ident, $op:ident ( $($arg:expr),* ) -> $t:ty) => {{
        let inside = $self.0.enter()?;
        let mut out = core::mem::MaybeUninit::<$t>::uninit();
        // SAFETY: See the macro's documentation; `inside` keeps the instance live.
        errno(unsafe { (inside.cur.ops.$op)(inside.cur.inst, $($arg,)* out.as_mut_ptr()) })?;
        // SAFETY: The trampoline wrote `out` on success.
        Ok(unsafe { out.assume_init() })
    }};
    ($self:ident, $op:ident ( $($arg:expr),* )) => {{
        let inside = $self.0.enter()?;
        // SAFETY: See the macro's documentation; `inside` keeps the instance live.
        errno(unsafe { (inside.cur.ops.$op)(inside.cur.inst, $($arg),*) })
    }};
}

impl FileSystem for Hosted {
    fn mount(_opts: &MountOptions<'_>) -> Result<Self> {
        // A host mounts through `Host::mount` with a version's table.
        Err(Errno::EINVAL)
    }

    fn lookup(&self, req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        let (n, l) = raw(name);
        call!(self, lookup(req, parent, n, l) -> Entry)
    }

    fn forget(&self, ino: Ino) {
        if let Ok(inside) = self.0.enter() {
            // SAFETY: `inside` keeps the instance live.
            unsafe { (inside.cur.ops.forget)(inside.cur.inst, ino) }
        }
    }

    fn getattr(&self, req: &Request, ino: Ino) -> Result<Attr> {
        call!(self, getattr(req, ino) -> Attr)
    }

    fn readlink(&self, req: &Request, ino: Ino, buf: &mut [u8]) -> Result<usize> {
        let (p, l) = (buf.as_mut_ptr(), buf.len());
        call!(self, readlink(req, ino, p, l) -> usize)
    }

    fn open(&self, req: &Request, ino: Ino, flags: OpenFlags) -> Result<Open> {
        call!(self, open(req, ino, flags) -> Open)
    }

    fn read(&self, req: &Request, ino: Ino, fh: u64, off: u64, buf: &mut [u8]) -> Result<usize> {
        let (p, l) = (buf.as_mut_ptr(), buf.len());
        call!(self, read(req, ino, fh, off, p, l) -> usize)
    }

    fn release(&self, req: &Request, ino: Ino, fh: u64) -> Result {
        call!(self, release(req, ino, fh))
    }

    fn opendir(&self, req: &Request, ino: Ino, flags: OpenFlags) -> Result<Open> {
        call!(self, opendir(req, ino, flags) -> Open)
    }

    fn readdir(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        off: i64,
        sink: &mut dyn DirSink,
    ) -> Result {
        let mut sink = sink;
        let mut raw_sink = RawDirSink {
            ctx: (&mut sink as *mut &mut dyn DirSink).cast::<c_void>(),
            add: sink_add,
        };
        let rs = &mut raw_sink as *mut RawDirSink;
        call!(self, readdir(req, ino, fh, off, rs))
    }

    fn releasedir(&self, req: &Request, ino: Ino, fh: u64) -> Result {
        call!(self, releasedir(req, ino, fh))
    }

    fn statfs(&self, req: &Request, ino: Ino) -> Result<Statfs> {
        call!(self, statfs(req, ino) -> Statfs)
    }

    fn setattr(&self, req: &Request, ino: Ino, set: &SetAttr) -> Result<Attr> {
        call!(self, setattr(req, ino, set) -> Attr)
    }

    fn mknod(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        let (n, l) = raw(name);
        call!(self, mknod(req, parent, n, l, mode, rdev) -> Entry)
    }

    fn mkdir(&self, req: &Request, parent: Ino, name: &[u8], mode: u32) -> Result<Entry> {
        let (n, l) = raw(name);
        call!(self, mkdir(req, parent, n, l, mode) -> Entry)
    }

    fn unlink(&self, req: &Request, parent: Ino, name: &[u8]) -> Result {
        let (n, l) = raw(name);
        call!(self, unlink(req, parent, n, l))
    }

    fn rmdir(&self, req: &Request, parent: Ino, name: &[u8]) -> Result {
        let (n, l) = raw(name);
        call!(self, rmdir(req, parent, n, l))
    }

    fn symlink(&self, req: &Request, parent: Ino, name: &[u8], target: &[u8]) -> Result<Entry> {
        let ((n, l), (t, tl)) = (raw(name), raw(target));
        call!(self, symlink(req, parent, n, l, t, tl) -> Entry)
    }

    fn rename(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: u32,
    ) -> Result {
        let ((n, l), (nn, nl)) = (raw(name), raw(newname));
        call!(self, rename(req, parent, n, l, newparent, nn, nl, flags))
    }

    fn link(&self, req: &Request, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Entry> {
        let (n, l) = raw(newname);
        call!(self, link(req, ino, newparent, n, l) -> Entry)
    }

    /// `mknod` then `open`, as the kernel framework does (the table has no `create`).
    fn create(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        flags: OpenFlags,
    ) -> Result<(Entry, Open)> {
        let entry = self.mknod(req, parent, name, libc::S_IFREG | (mode & 0o7777), 0)?;
        let open = self.open(req, entry.attr.ino, flags)?;
        Ok((entry, open))
    }

    fn write(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        off: u64,
        data: &[u8],
        flags: OpenFlags,
    ) -> Result<usize> {
        let (p, l) = raw(data);
        call!(self, write(req, ino, fh, off, p, l, flags) -> usize)
    }

    fn flush(&self, req: &Request, ino: Ino, fh: u64) -> Result {
        call!(self, flush(req, ino, fh))
    }

    fn fsync(&self, req: &Request, ino: Ino, fh: u64, datasync: bool) -> Result {
        call!(self, fsync(req, ino, fh, datasync, false))
    }

    fn fsyncdir(&self, req: &Request, ino: Ino, fh: u64, datasync: bool) -> Result {
        call!(self, fsync(req, ino, fh, datasync, true))
    }

    fn setxattr(&self, req: &Request, ino: Ino, name: &[u8], value: &[u8], flags: i32) -> Result {
        let ((n, l), (v, vl)) = (raw(name), raw(value));
        call!(self, setxattr(req, ino, n, l, v, vl, flags))
    }

    fn getxattr(&self, req: &Request, ino: Ino, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let (n, l) = raw(name);
        let (p, bl) = (buf.as_mut_ptr(), buf.len());
        call!(self, getxattr(req, ino, n, l, p, bl) -> usize)
    }

    fn listxattr(&self, req: &Request, ino: Ino, buf: &mut [u8]) -> Result<usize> {
        let (p, l) = (buf.as_mut_ptr(), buf.len());
        call!(self, listxattr(req, ino, p, l) -> usize)
    }

    fn removexattr(&self, req: &Request, ino: Ino, name: &[u8]) -> Result {
        let (n, l) = raw(name);
        call!(self, removexattr(req, ino, n, l))
    }

    fn fallocate(&self, req: &Request, ino: Ino, fh: u64, off: u64, len: u64, mode: i32) -> Result {
        call!(self, fallocate(req, ino, fh, off, len, mode))
    }

    fn lseek(&self, req: &Request, ino: Ino, fh: u64, off: i64, whence: i32) -> Result<i64> {
        call!(self, lseek(req, ino, fh, off, whence) -> i64)
    }

    fn block_device(&self) -> Option<&BlockDevice> {
        self.0.device.as_ref()
    }

    fn remount(&self, read_only: bool) -> Result {
        call!(self, remount(read_only))
    }

    fn map_blocks(&self, ino: Ino, file_block: u64, count: u32, create: bool) -> Result<Extent> {
        call!(self, map_blocks(ino, file_block, count, create) -> Extent)
    }
}
