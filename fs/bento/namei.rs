// SPDX-License-Identifier: GPL-2.0
//! Namespace operations on directories (create, mknod, mkdir, unlink, rmdir, symlink,
//! rename, link) and symbolic links (`get_link`).
//!
//! The file system does the work; the framework then instantiates the dentry, counts
//! the links the VFS relies on (an unlinked file's count reaching 0 is what evicts it)
//! as local file systems do, and marks the attributes of every inode involved stale, so
//! the next `getattr` takes the times, sizes and directory link counts from the file
//! system instead of guessing them.

use bento::{Entry, Ino};
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call;
use crate::inode::{fs, getattr, iget, invalidate};
use crate::xattr;

pub(crate) static SYMLINK_INODE_OPS: bindings::inode_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::inode_operations = unsafe { core::mem::zeroed() };
    ops.get_link = Some(get_link);
    ops.getattr = Some(getattr);
    ops.setattr = Some(crate::attr::setattr);
    ops.listxattr = Some(xattr::listxattr);
    ops
};

/// The name of `dentry`.
///
/// # Safety
///
/// `dentry` must be valid, with its name stable (the parent is locked).
unsafe fn name<'a>(dentry: *const bindings::dentry) -> &'a [u8] {
    let mut len = 0u32;
    // SAFETY: By the caller's guarantee.
    unsafe {
        let p = bindings::bento_dentry_name(dentry, &mut len);
        core::slice::from_raw_parts(p, len as usize)
    }
}

/// After a namespace operation: the file system changed `inode`'s times, and for a
/// directory its size and link count; the next `getattr` asks it (no call now: a create
/// or unlink costs one call into the file system, not three).
fn changed(inode: *mut bindings::inode) {
    if !inode.is_null() {
        invalidate(inode);
    }
}

/// `inode` lost a link (unlink, or replaced by a rename), as the file system counted it.
///
/// # Safety
///
/// `inode` must be a live bento inode, locked by the VFS for the operation.
unsafe fn lost_link(inode: *mut bindings::inode) {
    // SAFETY: By the caller's guarantee.
    unsafe {
        if (*inode).i_mode & 0o170000 == 0o040000 {
            bindings::clear_nlink(inode);
        } else if (*inode).__bindgen_anon_1.i_nlink > 0 {
            bindings::drop_nlink(inode);
        }
    }
    changed(inode);
}

/// Makes the dentry of a newly created entry positive.
///
/// # Safety
///
/// `dir` and `dentry` must be valid (a create operation's arguments).
unsafe fn instantiate(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    entry: &Entry,
) -> Result {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let inode = iget((*dir).i_sb, &entry.attr)?;
        bindings::d_instantiate(dentry, inode);
    }
    changed(dir);
    Ok(())
}

/// Runs a creating call (`f` fills an `Entry`) and instantiates `dentry` from it.
///
/// # Safety
///
/// `dir` and `dentry` must be valid (a create operation's arguments).
unsafe fn make(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    f: impl FnOnce(&'static bento::abi::FsOps, bento::abi::Instance, Ino, &[u8], *mut Entry) -> i32,
) -> i32 {
    let mut entry = core::mem::MaybeUninit::<Entry>::uninit();
    // SAFETY: By the caller's guarantee; `entry` is valid for writes.
    let r = unsafe {
        let parent = (*dir).i_ino as u64;
        let nm = name(dentry);
        to_result(fs(dir).call(|ops, inst| f(ops, inst, parent, nm, entry.as_mut_ptr())))
    };
    if let Err(e) = r {
        return e.to_errno();
    }
    // SAFETY: The call returned 0, so it wrote `entry`; `dir`/`dentry` are valid.
    match unsafe { instantiate(dir, dentry, &entry.assume_init()) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn create(
    idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
    _excl: bool,
) -> i32 {
    // SAFETY: Same contract.
    unsafe { mknod(idmap, dir, dentry, mode, 0) }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn mknod(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
    rdev: bindings::dev_t,
) -> i32 {
    let req = call::request();
    // SAFETY: Called with a valid device number.
    let rdev = unsafe { bindings::bento_encode_dev(rdev) };
    // SAFETY: VFS contract.
    unsafe {
        make(dir, dentry, |ops, fs, parent, nm, out| {
            (ops.mknod)(
                fs,
                &req,
                parent,
                nm.as_ptr(),
                nm.len(),
                mode.into(),
                rdev,
                out,
            )
        })
    }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn mkdir(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: bindings::umode_t,
) -> i32 {
    let req = call::request();
    // SAFETY: VFS contract.
    unsafe {
        make(dir, dentry, |ops, fs, parent, nm, out| {
            (ops.mkdir)(fs, &req, parent, nm.as_ptr(), nm.len(), mode.into(), out)
        })
    }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn symlink(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    target: *const u8,
) -> i32 {
    let req = call::request();
    // SAFETY: VFS contract: `target` is NUL-terminated.
    unsafe {
        let t = kernel::str::CStr::from_char_ptr(target).as_bytes();
        make(dir, dentry, |ops, fs, parent, nm, out| {
            (ops.symlink)(
                fs,
                &req,
                parent,
                nm.as_ptr(),
                nm.len(),
                t.as_ptr(),
                t.len(),
                out,
            )
        })
    }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn link(
    old: *mut bindings::dentry,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> i32 {
    let req = call::request();
    let mut entry = core::mem::MaybeUninit::<Entry>::uninit();
    // SAFETY: VFS contract: `old` is positive; `dir` and `dentry` are locked.
    unsafe {
        let inode = (*old).d_inode;
        let ino = (*inode).i_ino as u64;
        let parent = (*dir).i_ino as u64;
        let nm = name(dentry);
        let ret = fs(dir).call(|ops, fs| {
            (ops.link)(
                fs,
                &req,
                ino,
                parent,
                nm.as_ptr(),
                nm.len(),
                entry.as_mut_ptr(),
            )
        });
        if ret != 0 {
            return ret;
        }
        bindings::ihold(inode);
        bindings::inc_nlink(inode);
        bindings::d_instantiate(dentry, inode);
        changed(inode);
        changed(dir);
    }
    0
}

/// Runs a removing call on `dir`/`dentry`.
///
/// # Safety
///
/// `dir` and `dentry` must be valid (a remove operation's arguments).
unsafe fn remove(dir: *mut bindings::inode, dentry: *mut bindings::dentry, rmdir: bool) -> i32 {
    let req = call::request();
    // SAFETY: By the caller's guarantee.
    unsafe {
        let parent = (*dir).i_ino as u64;
        let nm = name(dentry);
        let ret = fs(dir).call(|ops, fs| {
            let f = if rmdir { ops.rmdir } else { ops.unlink };
            f(fs, &req, parent, nm.as_ptr(), nm.len())
        });
        if ret != 0 {
            return ret;
        }
        lost_link((*dentry).d_inode);
        changed(dir);
    }
    0
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn unlink(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> i32 {
    // SAFETY: VFS contract.
    unsafe { remove(dir, dentry, false) }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn rmdir(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
) -> i32 {
    // SAFETY: VFS contract.
    unsafe { remove(dir, dentry, true) }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn rename(
    _idmap: *mut bindings::mnt_idmap,
    old_dir: *mut bindings::inode,
    old: *mut bindings::dentry,
    new_dir: *mut bindings::inode,
    new: *mut bindings::dentry,
    flags: u32,
) -> i32 {
    let req = call::request();
    // SAFETY: VFS contract: both directories are locked, `old` is positive.
    unsafe {
        let (p, np) = ((*old_dir).i_ino as u64, (*new_dir).i_ino as u64);
        let (nm, newnm) = (name(old), name(new));
        let ret = fs(old_dir).call(|ops, fs| {
            (ops.rename)(
                fs,
                &req,
                p,
                nm.as_ptr(),
                nm.len(),
                np,
                newnm.as_ptr(),
                newnm.len(),
                flags,
            )
        });
        if ret != 0 {
            return ret;
        }
        let target = (*new).d_inode;
        if !target.is_null() && flags & bento::types::rename_flags::EXCHANGE == 0 {
            // The target was replaced: it lost a link (a directory all of them).
            lost_link(target);
        } else {
            changed(target);
        }
        changed((*old).d_inode);
        changed(old_dir);
        changed(new_dir);
    }
    0
}

/// `get_link`: reads the target into a buffer freed when the walk is done.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn get_link(
    dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    done: *mut bindings::delayed_call,
) -> *const u8 {
    if dentry.is_null() {
        // RCU walk: the file system may sleep, try again in ref-walk mode.
        return ECHILD.to_ptr();
    }
    let max = bindings::BENTO_PATH_MAX as usize;
    let null = core::ptr::null();
    // SAFETY: A plain allocation, freed by `kfree_link` through `done` or below.
    let buf = unsafe { bindings::krealloc(null, max, bindings::GFP_KERNEL) }.cast::<u8>();
    if buf.is_null() {
        return ENOMEM.to_ptr();
    }
    let req = call::request();
    let mut n = 0usize;
    // SAFETY: `inode` is live; `buf` has `max` bytes; one is kept for the NUL.
    let ret = unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.readlink)(fs, &req, ino, buf, max - 1, &mut n))
    };
    if ret != 0 {
        // SAFETY: `buf` came from `kmalloc` above and was not handed out.
        unsafe { bindings::kfree(buf.cast()) };
        return kernel::error::Error::from_errno(ret).to_ptr();
    }
    // SAFETY: `n < max` (the trampoline checks the length), so the NUL fits; `done`
    // takes ownership of `buf`.
    unsafe {
        *buf.add(n) = 0;
        bindings::bento_set_delayed_kfree(done, buf.cast());
    }
    buf.cast()
}
