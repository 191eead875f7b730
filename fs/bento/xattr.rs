// SPDX-License-Identifier: GPL-2.0
//! Extended attributes: one VFS handler per namespace the file systems serve (`user.`,
//! `security.`, `trusted.`), each passing the full name (prefix included) to the file
//! system, as FUSE does. The VFS checks namespace permissions before calling.

use kernel::bindings;

use crate::call::{self, Table};
use crate::inode::fs;

/// The longest full name: a prefix plus `XATTR_NAME_MAX` bytes.
const FULL_NAME_MAX: usize = 16 + bindings::BENTO_XATTR_NAME_MAX as usize;

const fn handler(prefix: &'static core::ffi::CStr) -> bindings::xattr_handler {
    // SAFETY: An all-zero handler is valid (null name, no operations).
    let mut h: bindings::xattr_handler = unsafe { core::mem::zeroed() };
    h.prefix = prefix.as_ptr().cast();
    h.get = Some(get);
    h.set = Some(set);
    h
}

static USER: Table<bindings::xattr_handler> = Table(handler(c"user."));
static SECURITY: Table<bindings::xattr_handler> = Table(handler(c"security."));
static TRUSTED: Table<bindings::xattr_handler> = Table(handler(c"trusted."));

/// `sb->s_xattr`: the handlers, NULL-terminated.
pub(crate) static HANDLERS: Table<[*const bindings::xattr_handler; 4]> =
    Table([&USER.0, &SECURITY.0, &TRUSTED.0, core::ptr::null()]);

/// Writes `prefix` + `name` into `buf`; returns the length, or `None` if too long.
///
/// # Safety
///
/// `prefix` and `name` must be NUL-terminated strings.
unsafe fn full_name(
    prefix: *const u8,
    name: *const u8,
    buf: &mut [u8; FULL_NAME_MAX],
) -> Option<usize> {
    // SAFETY: By the caller's guarantee.
    let (p, n) = unsafe {
        (
            kernel::str::CStr::from_char_ptr(prefix).as_bytes(),
            kernel::str::CStr::from_char_ptr(name).as_bytes(),
        )
    };
    let len = p.len().checked_add(n.len())?;
    buf.get_mut(..p.len())?.copy_from_slice(p);
    buf.get_mut(p.len()..len)?.copy_from_slice(n);
    Some(len)
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn get(
    handler: *const bindings::xattr_handler,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const u8,
    buffer: *mut core::ffi::c_void,
    size: usize,
) -> i32 {
    let mut full = [0u8; FULL_NAME_MAX];
    // SAFETY: VFS contract: the handler's prefix and `name` are NUL-terminated.
    let Some(len) = (unsafe { full_name((*handler).prefix, name, &mut full) }) else {
        return kernel::error::code::ERANGE.to_errno();
    };
    let req = call::request();
    let mut n = 0usize;
    // SAFETY: `inode` is live; `buffer` has `size` bytes (or is null with size 0).
    let ret = unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| {
            (ops.getxattr)(
                fs,
                &req,
                ino,
                full.as_ptr(),
                len,
                buffer.cast(),
                size,
                &mut n,
            )
        })
    };
    if ret != 0 {
        return ret;
    }
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn set(
    handler: *const bindings::xattr_handler,
    _idmap: *mut bindings::mnt_idmap,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const u8,
    value: *const core::ffi::c_void,
    size: usize,
    flags: i32,
) -> i32 {
    let mut full = [0u8; FULL_NAME_MAX];
    // SAFETY: VFS contract: the handler's prefix and `name` are NUL-terminated.
    let Some(len) = (unsafe { full_name((*handler).prefix, name, &mut full) }) else {
        return kernel::error::code::ERANGE.to_errno();
    };
    let req = call::request();
    // SAFETY: `inode` is live and locked; `value` has `size` bytes, or is null for a
    // removal.
    let ret = unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| {
            if value.is_null() {
                (ops.removexattr)(fs, &req, ino, full.as_ptr(), len)
            } else {
                (ops.setxattr)(fs, &req, ino, full.as_ptr(), len, value.cast(), size, flags)
            }
        })
    };
    if ret == 0 {
        // SAFETY: `inode` is live and locked.
        unsafe { bindings::inode_set_ctime_current(inode) };
        // The file system may have allocated or freed an xattr block.
        crate::inode::invalidate(inode);
    }
    ret
}

/// `listxattr`: the file system lists every name itself.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn listxattr(
    dentry: *mut bindings::dentry,
    buffer: *mut u8,
    size: usize,
) -> isize {
    let req = call::request();
    let mut n = 0usize;
    // SAFETY: `dentry` is positive; `buffer` has `size` bytes (or is null with size 0).
    let ret = unsafe {
        let inode = (*dentry).d_inode;
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.listxattr)(fs, &req, ino, buffer.cast(), size, &mut n))
    };
    if ret != 0 {
        return ret as isize;
    }
    isize::try_from(n).unwrap_or(isize::MAX)
}
