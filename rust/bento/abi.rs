// SPDX-License-Identifier: GPL-2.0
//! The versioned ops vtable between the framework and a file system module.
//!
//! fs/bento (built into the kernel) owns every VFS object and calls a file system only
//! through an [`FsOps`] table that the file system's module registers. Modules are built
//! at different times from different crates, so everything crossing here is `#[repr(C)]`
//! and checked at registration: [`ABI_VERSION`], the table's size, a layout fingerprint
//! ([`LAYOUT`]), the [`BUILD_ID`] of the `bento` crate the module was compiled against
//! (Rust modules have no MODVERSIONS, so nothing else would notice a stale module) and
//! the address of [`ANCHOR`] as the module sees it, which is the framework's own only
//! when both are linked to the one copy of `bento` in memory (a FUSE host and the file
//! system versions it loads as shared objects: DESIGN.md §5.7).
//!
//! The trampolines below are generic over the [`FileSystem`] and get monomorphised in the
//! file system's module: they turn raw arguments into safe ones and `Result`s into
//! `0`/`-errno`.

use core::ffi::c_void;
use core::mem::size_of;

use crate::errno::{Errno, Result};
use crate::fs::{DirSink, FileSystem, MountOptions};
use crate::types::{Attr, Entry, Extent, FileType, Ino, Open, OpenFlags, Request, SetAttr, Statfs};
use crate::upgrade::Handover;

/// Version of this table's layout and calling conventions. Bump on any change.
pub const ABI_VERSION: u32 = 4;

/// Fingerprint of the sizes of every type that crosses the table.
pub const LAYOUT: u64 = (size_of::<FsOps>() as u64)
    | ((size_of::<Attr>() as u64) << 12)
    | ((size_of::<Entry>() as u64) << 24)
    | ((size_of::<Open>() as u64) << 36)
    | ((size_of::<Statfs>() as u64) << 44)
    | ((size_of::<Request>() as u64) << 56)
        ^ ((size_of::<SetAttr>() as u64) << 4)
        ^ ((size_of::<Extent>() as u64) << 16);

/// Identifies the build of the `bento` crate: `BENTO_BUILD_ID`, a hash of this crate's
/// sources and of the kernel configuration (set by the kernel build) or of the compiler
/// (set by `build.rs` in the userspace build). Modules embed the value they were compiled
/// against and registration refuses a mismatch.
pub const BUILD_ID: u64 = match option_env!("BENTO_BUILD_ID") {
    Some(s) => parse_hex(s.as_bytes()),
    None => 0,
};

const fn parse_hex(s: &[u8]) -> u64 {
    let mut v: u64 = 0;
    let mut i = 0;
    while i < s.len() && i < 16 {
        let d = match s[i] {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => 0,
        };
        v = (v << 4) | d as u64;
        i += 1;
    }
    v
}

/// A static whose address identifies the copy of `bento` a table was built against
/// ([`FsOps::anchor`]).
pub static ANCHOR: u8 = 0;

/// The file system serves data from a block device (the framework opens the mount
/// source as one).
pub const FLAG_BLOCK_DEVICE: u32 = 1;

/// Where a `readdir` trampoline sends entries: a callback into the framework.
#[repr(C)]
pub struct RawDirSink {
    /// Framework context passed back to `add`.
    pub ctx: *mut c_void,
    /// Adds one entry; returns `true` when full (entry not taken).
    pub add: unsafe extern "C" fn(
        ctx: *mut c_void,
        ino: Ino,
        next: i64,
        kind: FileType,
        name: *const u8,
        len: usize,
    ) -> bool,
}

/// Mount arguments as they cross the table.
#[repr(C)]
pub struct RawMountOptions {
    /// Mount source, not NUL-terminated.
    pub source: *const u8,
    /// Length of `source`.
    pub source_len: usize,
    /// Fs-specific options, not NUL-terminated.
    pub options: *const u8,
    /// Length of `options`.
    pub options_len: usize,
    /// Mounted read-only.
    pub read_only: bool,
    /// Kernel: the `struct super_block` of a [`FLAG_BLOCK_DEVICE`] mount (null
    /// otherwise). Userspace: null, or an `Option<BlockDevice>` that receives the new
    /// instance's [`FileSystem::block_device`] (how the FUSE host learns it).
    pub sb: *mut c_void,
}

/// Opaque pointer to a mounted file system instance.
pub type Instance = *mut c_void;

/// The ops table a file system module registers. See the module documentation.
#[repr(C)]
pub struct FsOps {
    /// [`ABI_VERSION`] the module was built with.
    pub abi_version: u32,
    /// `size_of::<FsOps>()` in the module's build.
    pub size: u32,
    /// [`LAYOUT`] in the module's build.
    pub layout: u64,
    /// [`BUILD_ID`] in the module's build.
    pub build_id: u64,
    /// The address of [`ANCHOR`] in the module's build: the framework's own when both
    /// use the same `bento` in memory.
    pub anchor: *const u8,
    /// File system name, NUL-terminated (the `mount -t` type).
    pub name: *const u8,
    /// Version of this implementation; an upgrade needs a higher one.
    pub version: u32,
    /// [`FileSystem::STATE_VERSION`]: the state format handed over on upgrade (0: none).
    pub state_version: u32,
    /// [`FileSystem::STATE_COMPAT`]: the oldest state format `import_state` reads.
    pub state_compat: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// [`FileSystem::DATA_CREDITS`].
    pub data_credits: u32,
    /// Creates an instance; on success stores it in `out`.
    pub mount: unsafe extern "C" fn(opts: *const RawMountOptions, out: *mut Instance) -> i32,
    /// Destroys an instance after the last inode is gone.
    pub unmount: unsafe extern "C" fn(fs: Instance),
    /// [`FileSystem::lookup`].
    pub lookup: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
        out: *mut Entry,
    ) -> i32,
    /// [`FileSystem::forget`].
    pub forget: unsafe extern "C" fn(fs: Instance, ino: Ino),
    /// [`FileSystem::getattr`].
    pub getattr:
        unsafe extern "C" fn(fs: Instance, req: *const Request, ino: Ino, out: *mut Attr) -> i32,
    /// [`FileSystem::readlink`]; the length read goes to `out`.
    pub readlink: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        buf: *mut u8,
        len: usize,
        out: *mut usize,
    ) -> i32,
    /// [`FileSystem::open`].
    pub open: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        flags: OpenFlags,
        out: *mut Open,
    ) -> i32,
    /// [`FileSystem::read`]; the length read goes to `out`.
    pub read: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        fh: u64,
        off: u64,
        buf: *mut u8,
        len: usize,
        out: *mut usize,
    ) -> i32,
    /// [`FileSystem::release`].
    pub release: unsafe extern "C" fn(fs: Instance, req: *const Request, ino: Ino, fh: u64) -> i32,
    /// [`FileSystem::opendir`].
    pub opendir: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        flags: OpenFlags,
        out: *mut Open,
    ) -> i32,
    /// [`FileSystem::readdir`].
    pub readdir: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        fh: u64,
        off: i64,
        sink: *mut RawDirSink,
    ) -> i32,
    /// [`FileSystem::releasedir`].
    pub releasedir:
        unsafe extern "C" fn(fs: Instance, req: *const Request, ino: Ino, fh: u64) -> i32,
    /// [`FileSystem::statfs`].
    pub statfs:
        unsafe extern "C" fn(fs: Instance, req: *const Request, ino: Ino, out: *mut Statfs) -> i32,
    /// [`FileSystem::setattr`]. `SetAttr` is not `repr(C)`: both sides are compiled
    /// against the same `bento` build (checked through [`BUILD_ID`]).
    pub setattr: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        set: *const SetAttr,
        out: *mut Attr,
    ) -> i32,
    /// [`FileSystem::mknod`].
    pub mknod: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
        mode: u32,
        rdev: u32,
        out: *mut Entry,
    ) -> i32,
    /// [`FileSystem::mkdir`].
    pub mkdir: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
        mode: u32,
        out: *mut Entry,
    ) -> i32,
    /// [`FileSystem::unlink`].
    pub unlink: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
    ) -> i32,
    /// [`FileSystem::rmdir`].
    pub rmdir: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
    ) -> i32,
    /// [`FileSystem::symlink`].
    pub symlink: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
        target: *const u8,
        target_len: usize,
        out: *mut Entry,
    ) -> i32,
    /// [`FileSystem::rename`].
    pub rename: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        parent: Ino,
        name: *const u8,
        len: usize,
        newparent: Ino,
        newname: *const u8,
        newlen: usize,
        flags: u32,
    ) -> i32,
    /// [`FileSystem::link`].
    pub link: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        newparent: Ino,
        newname: *const u8,
        newlen: usize,
        out: *mut Entry,
    ) -> i32,
    /// [`FileSystem::write`]; the length written goes to `out`.
    pub write: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        fh: u64,
        off: u64,
        buf: *const u8,
        len: usize,
        flags: OpenFlags,
        out: *mut usize,
    ) -> i32,
    /// [`FileSystem::flush`].
    pub flush: unsafe extern "C" fn(fs: Instance, req: *const Request, ino: Ino, fh: u64) -> i32,
    /// [`FileSystem::fsync`], or [`FileSystem::fsyncdir`] when `dir` is set.
    pub fsync: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        fh: u64,
        datasync: bool,
        dir: bool,
    ) -> i32,
    /// [`FileSystem::setxattr`].
    pub setxattr: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        name: *const u8,
        len: usize,
        value: *const u8,
        value_len: usize,
        flags: i32,
    ) -> i32,
    /// [`FileSystem::getxattr`]; the value length goes to `out`.
    pub getxattr: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        name: *const u8,
        len: usize,
        buf: *mut u8,
        buf_len: usize,
        out: *mut usize,
    ) -> i32,
    /// [`FileSystem::listxattr`]; the list length goes to `out`.
    pub listxattr: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        buf: *mut u8,
        buf_len: usize,
        out: *mut usize,
    ) -> i32,
    /// [`FileSystem::removexattr`].
    pub removexattr: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        name: *const u8,
        len: usize,
    ) -> i32,
    /// [`FileSystem::fallocate`].
    pub fallocate: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        fh: u64,
        off: u64,
        len: u64,
        mode: i32,
    ) -> i32,
    /// [`FileSystem::lseek`]; the new offset goes to `out`.
    pub lseek: unsafe extern "C" fn(
        fs: Instance,
        req: *const Request,
        ino: Ino,
        fh: u64,
        off: i64,
        whence: i32,
        out: *mut i64,
    ) -> i32,
    /// [`FileSystem::remount`].
    pub remount: unsafe extern "C" fn(fs: Instance, read_only: bool) -> i32,
    /// [`FileSystem::map_blocks`].
    pub map_blocks: unsafe extern "C" fn(
        fs: Instance,
        ino: Ino,
        file_block: u64,
        count: u32,
        create: bool,
        out: *mut Extent,
    ) -> i32,
    /// [`FileSystem::export_state`]; the boxed [`Handover`] goes to `out` (free it with
    /// [`drop_handover`] or pass it to `import_state`).
    pub export_state: unsafe extern "C" fn(fs: Instance, out: *mut *mut Handover) -> i32,
    /// [`FileSystem::import_state`]: consumes `state` (also on failure); on success
    /// stores the new instance in `out`.
    pub import_state: unsafe extern "C" fn(state: *mut Handover, out: *mut Instance) -> i32,
    /// [`FileSystem::resume`].
    pub resume: unsafe extern "C" fn(fs: Instance),
}

/// Frees a [`Handover`] that `export_state` made and nobody imported.
///
/// # Safety
///
/// `state` must come from an `export_state` of a table and not be used afterwards.
pub unsafe fn drop_handover(state: *mut Handover) {
    // SAFETY: By the caller's guarantee `state` is an owned box made by the backend.
    unsafe { crate::backend::drop_raw(state) }
}

// SAFETY: The table is immutable after construction: function pointers, a pointer to a
// static NUL-terminated name valid for the lifetime of the module that owns it, and the
// address of `ANCHOR`, never dereferenced.
unsafe impl Sync for FsOps {}

impl FsOps {
    /// Builds the table for file system `T` named `name` (NUL-terminated).
    pub const fn new<T: FileSystem>(name: &'static [u8], version: u32, flags: u32) -> FsOps {
        FsOps {
            abi_version: ABI_VERSION,
            size: size_of::<FsOps>() as u32,
            layout: LAYOUT,
            build_id: BUILD_ID,
            anchor: &ANCHOR,
            name: name.as_ptr(),
            version,
            state_version: T::STATE_VERSION,
            state_compat: T::STATE_COMPAT,
            flags,
            data_credits: T::DATA_CREDITS,
            mount: mount::<T>,
            unmount: unmount::<T>,
            lookup: lookup::<T>,
            forget: forget::<T>,
            getattr: getattr::<T>,
            readlink: readlink::<T>,
            open: open::<T>,
            read: read::<T>,
            release: release::<T>,
            opendir: opendir::<T>,
            readdir: readdir::<T>,
            releasedir: releasedir::<T>,
            statfs: statfs::<T>,
            setattr: setattr::<T>,
            mknod: mknod::<T>,
            mkdir: mkdir::<T>,
            unlink: unlink::<T>,
            rmdir: rmdir::<T>,
            symlink: symlink::<T>,
            rename: rename::<T>,
            link: link::<T>,
            write: write::<T>,
            flush: flush::<T>,
            fsync: fsync::<T>,
            setxattr: setxattr::<T>,
            getxattr: getxattr::<T>,
            listxattr: listxattr::<T>,
            removexattr: removexattr::<T>,
            fallocate: fallocate::<T>,
            lseek: lseek::<T>,
            remount: remount::<T>,
            map_blocks: map_blocks::<T>,
            export_state: export_state::<T>,
            import_state: import_state::<T>,
            resume: resume::<T>,
        }
    }
}

fn ret(r: Result) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_kernel(),
    }
}

/// Stores `value` through `out` on success.
///
/// # Safety
///
/// `out` must be valid for writes of `T`.
unsafe fn put<T>(out: *mut T, r: Result<T>) -> i32 {
    ret(r.map(|v| {
        // SAFETY: The caller guarantees `out` is valid for writes.
        unsafe { out.write(v) }
    }))
}

/// Builds a byte slice from a raw pointer and length, empty when `len` is 0.
///
/// # Safety
///
/// When `len > 0`, `ptr` must be valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: By the caller's guarantee.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// Turns an instance pointer back into the file system.
///
/// # Safety
///
/// `fs` must come from `mount::<T>` and not yet be passed to `unmount::<T>`.
unsafe fn this<'a, T>(fs: Instance) -> &'a T {
    // SAFETY: By the caller's guarantee `fs` points to a live `T` made by `mount::<T>`.
    unsafe { &*(fs as *const T) }
}

// The trampolines. Safety (for all of them): `fs` is an instance made by `mount::<T>` and
// still mounted; `req` points to a valid `Request`; `out` is valid for writes; `name`/`buf`
// are valid for `len` bytes (writable for `buf`). fs/bento guarantees this for every call.

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn mount<T: FileSystem>(opts: *const RawMountOptions, out: *mut Instance) -> i32 {
    // SAFETY: The framework passes valid options.
    let raw = unsafe { &*opts };
    // SAFETY: The framework passes valid buffers with their lengths.
    let (source, options) = unsafe {
        (
            bytes(raw.source, raw.source_len),
            bytes(raw.options, raw.options_len),
        )
    };
    let opts = MountOptions::new(source, options, raw.read_only);
    #[cfg(kernel)]
    let opts = opts.with_sb(raw.sb);
    let r = T::mount(&opts);
    #[cfg(not(kernel))]
    if let (Ok(fs), false) = (&r, raw.sb.is_null()) {
        // SAFETY: In userspace a non-null `sb` is the host's device slot.
        unsafe { *raw.sb.cast::<Option<crate::block::BlockDevice>>() = fs.block_device().cloned() };
    }
    let r = r.and_then(crate::backend::box_into_raw);
    // SAFETY: `out` is valid for writes.
    unsafe { put(out, r.map(|p| p as Instance)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above; `out` is valid for writes.
unsafe extern "C" fn export_state<T: FileSystem>(fs: Instance, out: *mut *mut Handover) -> i32 {
    // SAFETY: See the trampolines' contract above.
    let r = unsafe { this::<T>(fs) }
        .export_state()
        .and_then(crate::backend::box_into_raw);
    // SAFETY: `out` is valid for writes.
    unsafe { put(out, r) }
}

/// # Safety
///
/// `state` comes from an `export_state` trampoline (of any version) and is consumed;
/// `out` is valid for writes.
unsafe extern "C" fn import_state<T: FileSystem>(state: *mut Handover, out: *mut Instance) -> i32 {
    // SAFETY: By the contract `state` is an owned box made by the backend.
    let state = unsafe { crate::backend::take_raw(state) };
    let r = T::import_state(state).and_then(crate::backend::box_into_raw);
    // SAFETY: `out` is valid for writes.
    unsafe { put(out, r.map(|p| p as Instance)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn resume<T: FileSystem>(fs: Instance) {
    // SAFETY: See the trampolines' contract above.
    unsafe { this::<T>(fs) }.resume()
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn unmount<T: FileSystem>(fs: Instance) {
    // SAFETY: `fs` came from `mount::<T>` and is unmounted exactly once.
    unsafe { crate::backend::drop_raw(fs as *mut T) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn lookup<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
    out: *mut Entry,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).lookup(&*req, parent, bytes(name, len))) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn forget<T: FileSystem>(fs: Instance, ino: Ino) {
    // SAFETY: See the trampolines' contract above.
    unsafe { this::<T>(fs) }.forget(ino)
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn getattr<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    out: *mut Attr,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).getattr(&*req, ino)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn readlink<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    buf: *mut u8,
    len: usize,
    out: *mut usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let buf = core::slice::from_raw_parts_mut(buf, len);
        put(
            out,
            this::<T>(fs)
                .readlink(&*req, ino, buf)
                .and_then(|n| check_len(n, len)),
        )
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn open<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    flags: OpenFlags,
    out: *mut Open,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).open(&*req, ino, flags)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn read<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
    off: u64,
    buf: *mut u8,
    len: usize,
    out: *mut usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let buf = core::slice::from_raw_parts_mut(buf, len);
        put(
            out,
            this::<T>(fs)
                .read(&*req, ino, fh, off, buf)
                .and_then(|n| check_len(n, len)),
        )
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn release<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).release(&*req, ino, fh) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn opendir<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    flags: OpenFlags,
    out: *mut Open,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).opendir(&*req, ino, flags)) }
}

struct Sink(*mut RawDirSink);

impl DirSink for Sink {
    fn add(&mut self, ino: Ino, next_offset: i64, kind: FileType, name: &[u8]) -> bool {
        // SAFETY: `self.0` is the valid sink the framework passed to `readdir`, and `name`
        // is valid for its length during the call.
        unsafe {
            ((*self.0).add)(
                (*self.0).ctx,
                ino,
                next_offset,
                kind,
                name.as_ptr(),
                name.len(),
            )
        }
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn readdir<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
    off: i64,
    sink: *mut RawDirSink,
) -> i32 {
    let mut sink = Sink(sink);
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).readdir(&*req, ino, fh, off, &mut sink) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn releasedir<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).releasedir(&*req, ino, fh) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn statfs<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    out: *mut Statfs,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).statfs(&*req, ino)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above (`set` is valid for reads).
unsafe extern "C" fn setattr<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    set: *const SetAttr,
    out: *mut Attr,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).setattr(&*req, ino, &*set)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn mknod<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
    mode: u32,
    rdev: u32,
    out: *mut Entry,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let r = this::<T>(fs).mknod(&*req, parent, bytes(name, len), mode, rdev);
        put(out, r)
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn mkdir<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
    mode: u32,
    out: *mut Entry,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        put(
            out,
            this::<T>(fs).mkdir(&*req, parent, bytes(name, len), mode),
        )
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn unlink<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).unlink(&*req, parent, bytes(name, len)) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn rmdir<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).rmdir(&*req, parent, bytes(name, len)) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn symlink<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
    target: *const u8,
    target_len: usize,
    out: *mut Entry,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let r = this::<T>(fs).symlink(&*req, parent, bytes(name, len), bytes(target, target_len));
        put(out, r)
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn rename<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    parent: Ino,
    name: *const u8,
    len: usize,
    newparent: Ino,
    newname: *const u8,
    newlen: usize,
    flags: u32,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe {
        this::<T>(fs).rename(
            &*req,
            parent,
            bytes(name, len),
            newparent,
            bytes(newname, newlen),
            flags,
        )
    })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn link<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    newparent: Ino,
    newname: *const u8,
    newlen: usize,
    out: *mut Entry,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let r = this::<T>(fs).link(&*req, ino, newparent, bytes(newname, newlen));
        put(out, r)
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn write<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
    off: u64,
    buf: *const u8,
    len: usize,
    flags: OpenFlags,
    out: *mut usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let r = this::<T>(fs)
            .write(&*req, ino, fh, off, bytes(buf, len), flags)
            .and_then(|n| check_len(n, len));
        put(out, r)
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn flush<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).flush(&*req, ino, fh) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn fsync<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
    datasync: bool,
    dir: bool,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    let (fs, req) = unsafe { (this::<T>(fs), &*req) };
    ret(if dir {
        fs.fsyncdir(req, ino, fh, datasync)
    } else {
        fs.fsync(req, ino, fh, datasync)
    })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn setxattr<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    name: *const u8,
    len: usize,
    value: *const u8,
    value_len: usize,
    flags: i32,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe {
        this::<T>(fs).setxattr(&*req, ino, bytes(name, len), bytes(value, value_len), flags)
    })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above (`buf` may be null when
/// `buf_len` is 0).
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn getxattr<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    name: *const u8,
    len: usize,
    buf: *mut u8,
    buf_len: usize,
    out: *mut usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let buf = bytes_mut(buf, buf_len);
        let r = this::<T>(fs).getxattr(&*req, ino, bytes(name, len), buf);
        put(out, r.and_then(|n| check_xattr_len(n, buf_len)))
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above (`buf` may be null when
/// `buf_len` is 0).
unsafe extern "C" fn listxattr<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    buf: *mut u8,
    buf_len: usize,
    out: *mut usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe {
        let r = this::<T>(fs).listxattr(&*req, ino, bytes_mut(buf, buf_len));
        put(out, r.and_then(|n| check_xattr_len(n, buf_len)))
    }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn removexattr<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    name: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).removexattr(&*req, ino, bytes(name, len)) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn fallocate<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
    off: u64,
    len: u64,
    mode: i32,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs).fallocate(&*req, ino, fh, off, len, mode) })
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn lseek<T: FileSystem>(
    fs: Instance,
    req: *const Request,
    ino: Ino,
    fh: u64,
    off: i64,
    whence: i32,
    out: *mut i64,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    unsafe { put(out, this::<T>(fs).lseek(&*req, ino, fh, off, whence)) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn map_blocks<T: FileSystem>(
    fs: Instance,
    ino: Ino,
    file_block: u64,
    count: u32,
    create: bool,
    out: *mut Extent,
) -> i32 {
    // SAFETY: See the trampolines' contract above.
    let r = unsafe { this::<T>(fs) }
        .map_blocks(ino, file_block, count, create)
        .and_then(|e| {
            // A mapping of no blocks, or a hole where allocation was asked for, would
            // send the framework's block mapping astray: refuse it.
            if e.len == 0 || (create && e.disk_block == 0) {
                Err(Errno::EIO)
            } else {
                Ok(e)
            }
        });
    // SAFETY: `out` is valid for writes.
    unsafe { put(out, r) }
}

/// # Safety
///
/// fs/bento calls it per the trampoline contract above.
unsafe extern "C" fn remount<T: FileSystem>(fs: Instance, read_only: bool) -> i32 {
    // SAFETY: See the trampolines' contract above.
    ret(unsafe { this::<T>(fs) }.remount(read_only))
}

/// Builds a mutable byte slice from a raw pointer and length, empty when `len` is 0.
///
/// # Safety
///
/// When `len > 0`, `ptr` must be valid for reads and writes of `len` bytes for `'a`.
unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: By the caller's guarantee.
    unsafe { core::slice::from_raw_parts_mut(ptr, len) }
}

/// `check_len` for the xattr calls, where an empty buffer asks for the size only.
fn check_xattr_len(n: usize, len: usize) -> Result<usize> {
    if len == 0 {
        Ok(n)
    } else {
        check_len(n, len)
    }
}

/// A file system claiming to have filled more than the buffer is a bug in it: refuse the
/// reply rather than let the framework copy past the buffer.
fn check_len(n: usize, len: usize) -> Result<usize> {
    if n <= len {
        Ok(n)
    } else {
        Err(Errno::EIO)
    }
}
