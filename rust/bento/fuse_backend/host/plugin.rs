// SPDX-License-Identifier: GPL-2.0
//! File system versions as shared objects: loading one and checking its ops table, as
//! fs/bento's registry checks a module's (DESIGN.md §5.1).
//!
//! A version is a Rust `dylib` of a sample crate built with `--cfg bento_plugin` and
//! `-C prefer-dynamic` (tools/testing/bento/fuse-host-build.sh): `module_fs!` then
//! exports its table as `BENTO_FS_OPS`, and the object links to the host's `libbento.so`,
//! so block caches and journals handed over are the host's own objects. A loaded
//! version is never unloaded: the table's functions and the instance's vtables live in
//! it, and a thread may still be returning from one of them.

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::abi::{self, FsOps};
use crate::errno::{Errno, Result};

/// A loaded version: its path and table.
///
/// # Invariants
///
/// `ops` passed [`check`]: it was built by `FsOps::new` against this very `bento` (so
/// its name is a static NUL-terminated string), and its object is never unloaded.
#[derive(Clone)]
pub(crate) struct Plugin {
    pub(crate) path: PathBuf,
    pub(crate) ops: &'static FsOps,
}

impl Plugin {
    /// The file system name of the table.
    pub(crate) fn name(&self) -> &'static [u8] {
        // SAFETY: By the type invariant the table was built by `FsOps::new`, which
        // stores a pointer to a static NUL-terminated name.
        unsafe { CStr::from_ptr(self.ops.name.cast()) }.to_bytes()
    }
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl
    // call on this thread; it is copied at once.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        return String::from("unknown error");
    }
    // SAFETY: As above, non-null.
    unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
}

/// Whether this process's `bento` is a shared object, so that a version loaded later
/// links to it (rather than bringing its own copy).
pub(crate) fn bento_is_shared() -> bool {
    let mut info = core::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: `ANCHOR` is a static of this crate; `info` is valid for writes.
    let found = unsafe { libc::dladdr((&abi::ANCHOR as *const u8).cast(), info.as_mut_ptr()) };
    if found == 0 {
        return false;
    }
    // SAFETY: dladdr succeeded and filled `info`.
    let fname = unsafe { info.assume_init() }.dli_fname;
    if fname.is_null() {
        return false;
    }
    // SAFETY: `dli_fname` is a NUL-terminated path owned by the loader.
    let path = unsafe { CStr::from_ptr(fname) }.to_bytes();
    Path::new(OsStr::from_bytes(path))
        .file_name()
        .is_some_and(|f| f.as_bytes().starts_with(b"libbento") && f.as_bytes().ends_with(b".so"))
}

/// Loads the version at `path` and checks its table (`ENOEXEC` for anything that is not
/// a version built against this host's `bento`, with a log line saying why).
pub(crate) fn load(path: &Path) -> Result<Plugin> {
    let path = path.canonicalize().map_err(|e| {
        crate::error!("bento: {}: {e}", path.display());
        Errno::ENOENT
    })?;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a NUL-terminated path. Loading runs the object's initialisers: a
    // Rust dylib has none but its dependencies' (libbento.so, already loaded).
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        crate::error!("bento: cannot load {}: {}", path.display(), dlerror());
        return Err(Errno::ENOEXEC);
    }
    // SAFETY: `handle` is a live handle (never closed); the name is NUL-terminated.
    let sym = unsafe { libc::dlsym(handle, c"BENTO_FS_OPS".as_ptr()) };
    if sym.is_null() {
        crate::error!(
            "bento: {} is not a bento file system version (no BENTO_FS_OPS; built without --cfg bento_plugin?)",
            path.display()
        );
        return Err(Errno::ENOEXEC);
    }
    // SAFETY: `BENTO_FS_OPS` is the `FsOps` static `module_fs!` exports; the object stays
    // loaded for the life of the process. Its layout is checked right below, reading
    // only the leading fields every ABI version has at the same place.
    let ops: &'static FsOps = unsafe { &*sym.cast::<FsOps>() };
    check(ops, &path)?;
    // INVARIANT: `ops` passed `check`; `handle` is never closed.
    Ok(Plugin { path, ops })
}

/// [`load`]'s checks, as fs/bento's `check_abi`.
fn check(ops: &FsOps, path: &Path) -> Result {
    if ops.abi_version != abi::ABI_VERSION
        || ops.size as usize != core::mem::size_of::<FsOps>()
        || ops.layout != abi::LAYOUT
    {
        crate::error!(
            "bento: {} refused: ops ABI {} (size {}, layout {:x}), host has ABI {} (size {}, layout {:x})",
            path.display(),
            ops.abi_version,
            ops.size,
            ops.layout,
            abi::ABI_VERSION,
            core::mem::size_of::<FsOps>(),
            abi::LAYOUT
        );
        return Err(Errno::ENOEXEC);
    }
    if ops.build_id != abi::BUILD_ID {
        crate::error!(
            "bento: {} refused: built against bento build {:016x}, host has {:016x}; rebuild it with the host",
            path.display(),
            ops.build_id,
            abi::BUILD_ID
        );
        return Err(Errno::ENOEXEC);
    }
    if !core::ptr::eq(ops.anchor, &abi::ANCHOR) {
        crate::error!(
            "bento: {} refused: it uses another copy of bento than the host (build both with -C prefer-dynamic)",
            path.display()
        );
        return Err(Errno::ENOEXEC);
    }
    Ok(())
}
