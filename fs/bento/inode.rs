// SPDX-License-Identifier: GPL-2.0
//! Inodes: the VFS inode cache keyed by the file system's inode numbers, and the inode
//! operations (`lookup`, `getattr`).
//!
//! The VFS inode is the framework's: a file system sees an inode number and gets one
//! `forget` when the inode is evicted (not one per lookup).

use bento::{Attr, Entry, Errno, FileType};
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call::{self, Fs};
use crate::superblock::fs_of;
use crate::{dir, file};

/// The file system instance that owns `inode`.
///
/// # Safety
///
/// `inode` must be a live inode of a mounted bento superblock.
pub(crate) unsafe fn fs<'a>(inode: *const bindings::inode) -> &'a Fs {
    // SAFETY: By the caller's guarantee.
    unsafe { fs_of((*inode).i_sb) }
}

/// Copies `attr` into the VFS inode.
///
/// # Safety
///
/// `inode` must be valid, and new or locked against concurrent attribute updates.
unsafe fn set_attr(inode: *mut bindings::inode, attr: &Attr) {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let i = &mut *inode;
        i.i_mode = attr.mode() as _;
        bindings::i_uid_write(inode, attr.uid);
        bindings::i_gid_write(inode, attr.gid);
        bindings::set_nlink(inode, attr.nlink);
        bindings::i_size_write(inode, attr.size as i64);
        i.i_blocks = attr.blocks;
        i.i_atime_sec = attr.atime.sec;
        i.i_atime_nsec = attr.atime.nsec;
        i.i_mtime_sec = attr.mtime.sec;
        i.i_mtime_nsec = attr.mtime.nsec;
        i.i_ctime_sec = attr.ctime.sec;
        i.i_ctime_nsec = attr.ctime.nsec;
        i.i_generation = attr.generation;
    }
}

/// Gets the VFS inode for `attr.ino`, creating and filling it if it is not cached.
/// Returns a referenced inode.
pub(crate) fn iget(sb: *mut bindings::super_block, attr: &Attr) -> Result<*mut bindings::inode> {
    // SAFETY: `sb` is a live superblock.
    let inode = unsafe { bindings::iget_locked(sb, attr.ino as _) };
    if inode.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `inode` is referenced.
    if unsafe { (*inode).i_state } & bindings::BENTO_I_NEW == 0 {
        return Ok(inode);
    }
    // SAFETY: The inode is new and locked (I_NEW) until `unlock_new_inode`.
    unsafe {
        set_attr(inode, attr);
        let i = &mut *inode;
        match attr.kind {
            FileType::Directory => {
                i.i_op = &dir::DIR_INODE_OPS;
                i.__bindgen_anon_3.i_fop = &dir::DIR_FILE_OPS.0;
            }
            FileType::RegularFile => {
                i.i_op = &file::FILE_INODE_OPS;
                i.__bindgen_anon_3.i_fop = &file::FILE_FILE_OPS.0;
                (*i.i_mapping).a_ops = &file::FILE_AOPS;
            }
            FileType::Symlink => {
                // Symbolic links arrive with the kernel xv6fs; until then refuse them
                // rather than serve them wrong.
                bindings::iget_failed(inode);
                return Err(call::errno(Errno::EOPNOTSUPP));
            }
            _ => {
                i.i_op = &file::FILE_INODE_OPS;
                bindings::init_special_inode(inode, attr.mode() as _, attr.rdev);
            }
        }
        bindings::unlock_new_inode(inode);
    }
    Ok(inode)
}

/// `evict_inode`: the VFS drops the inode for good; tell the file system.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn evict_inode(inode: *mut bindings::inode) {
    // SAFETY: `inode` is being evicted: valid and unused (VFS contract).
    unsafe {
        bindings::truncate_inode_pages_final(&mut (*inode).i_data);
        bindings::clear_inode(inode);
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.forget)(fs, ino));
    }
}

/// Turns a `lookup` answer into a dentry result.
fn splice(dentry: *mut bindings::dentry, inode: *mut bindings::inode) -> *mut bindings::dentry {
    // SAFETY: `dentry` is the lookup's dentry; `inode` is null (negative entry) or a
    // referenced inode whose reference `d_splice_alias` takes.
    unsafe { bindings::d_splice_alias(inode, dentry) }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn lookup(
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    _flags: u32,
) -> *mut bindings::dentry {
    let mut len = 0u32;
    // SAFETY: `dentry` is valid during lookup; its name is stable under the parent lock.
    let name = unsafe { bindings::bento_dentry_name(dentry, &mut len) };
    let req = call::request();
    let mut entry = core::mem::MaybeUninit::<Entry>::uninit();
    // SAFETY: `dir` is a live inode; `name` is valid for `len` bytes; `entry` is writable.
    let ret = unsafe {
        let ino = (*dir).i_ino as u64;
        fs(dir).call(|ops, fs| (ops.lookup)(fs, &req, ino, name, len as usize, entry.as_mut_ptr()))
    };
    if ret == Errno::ENOENT.to_kernel() {
        return splice(dentry, core::ptr::null_mut());
    }
    if ret < 0 {
        return kernel::error::Error::from_errno(ret).to_ptr();
    }
    // SAFETY: `lookup` returned 0, so it wrote `entry`.
    let entry = unsafe { entry.assume_init() };
    // SAFETY: `dir` is live.
    match iget(unsafe { (*dir).i_sb }, &entry.attr) {
        Ok(inode) => splice(dentry, inode),
        Err(e) => e.to_ptr(),
    }
}

/// Refreshes the VFS inode from the file system's attributes.
fn refresh(inode: *mut bindings::inode) -> Result {
    let req = call::request();
    let mut attr = core::mem::MaybeUninit::<Attr>::uninit();
    // SAFETY: `inode` is live; `attr` is writable.
    to_result(unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.getattr)(fs, &req, ino, attr.as_mut_ptr()))
    })?;
    // SAFETY: `getattr` returned 0, so it wrote `attr`.
    let attr = unsafe { attr.assume_init() };
    // The kind of an inode never changes; a file system claiming otherwise is corrupt.
    // SAFETY: `inode` is live.
    if attr.mode() & 0o170000 != u32::from(unsafe { (*inode).i_mode }) & 0o170000 {
        return Err(EIO);
    }
    // SAFETY: Attribute updates from the file system are whole-inode snapshots; the
    // VFS tolerates concurrent readers of these fields (as FUSE does).
    unsafe { set_attr(inode, &attr) };
    Ok(())
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn getattr(
    idmap: *mut bindings::mnt_idmap,
    path: *const bindings::path,
    stat: *mut bindings::kstat,
    request_mask: u32,
    _flags: u32,
) -> i32 {
    // SAFETY: `path` is valid (VFS contract) and its dentry is positive.
    let inode = unsafe { (*(*path).dentry).d_inode };
    if let Err(e) = refresh(inode) {
        return e.to_errno();
    }
    // SAFETY: All pointers are valid (VFS contract).
    unsafe { bindings::generic_fillattr(idmap, request_mask, inode, stat) };
    0
}

/// Inode operations shared by directories.
pub(crate) const fn dir_inode_ops() -> bindings::inode_operations {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::inode_operations = unsafe { core::mem::zeroed() };
    ops.lookup = Some(lookup);
    ops.getattr = Some(getattr);
    ops
}
