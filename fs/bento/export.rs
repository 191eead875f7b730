// SPDX-License-Identifier: GPL-2.0
//! NFS export (and `open_by_handle_at`): file handles are the inode number and the
//! generation (the VFS's default `FILEID_INO32_GEN` encoding); decoding asks the file
//! system for the inode's attributes, and a generation mismatch is a stale handle.

use bento::{Attr, Entry};
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call::{self, Table};
use crate::inode::{fs, iget};
use crate::superblock::fs_of;

fn stale<T>() -> *mut T {
    Error::from_errno(-(bindings::ESTALE as i32)).to_ptr()
}

pub(crate) static EXPORT_OPS: Table<bindings::export_operations> = Table({
    // SAFETY: An all-zero table is valid: unset operations have defaults or are optional.
    let mut ops: bindings::export_operations = unsafe { core::mem::zeroed() };
    ops.fh_to_dentry = Some(fh_to_dentry);
    ops.fh_to_parent = Some(fh_to_parent);
    ops.get_parent = Some(get_parent);
    ops
});

/// The inode `ino` with generation `generation`, or `ESTALE`.
///
/// # Safety
///
/// Called by exportfs with a mounted bento superblock.
unsafe extern "C" fn get_inode(
    sb: *mut bindings::super_block,
    ino: u64,
    generation: u32,
) -> *mut bindings::inode {
    let req = call::request();
    let mut attr = core::mem::MaybeUninit::<Attr>::uninit();
    // SAFETY: `sb` is mounted; `attr` is valid for writes.
    let r = to_result(unsafe {
        fs_of(sb).call(|ops, fs| (ops.getattr)(fs, &req, ino, attr.as_mut_ptr()))
    });
    if r.is_err() {
        return stale();
    }
    // SAFETY: `getattr` returned 0, so it wrote `attr`.
    let attr = unsafe { attr.assume_init() };
    if attr.ino != ino || (generation != 0 && attr.generation != generation) || attr.nlink == 0 {
        return stale();
    }
    match iget(sb, &attr) {
        Ok(inode) => inode,
        Err(e) => e.to_ptr(),
    }
}

/// # Safety
///
/// Called by exportfs, whose contract makes every pointer valid.
unsafe extern "C" fn fh_to_dentry(
    sb: *mut bindings::super_block,
    fid: *mut bindings::fid,
    len: i32,
    kind: i32,
) -> *mut bindings::dentry {
    // SAFETY: Same contract.
    unsafe { bindings::generic_fh_to_dentry(sb, fid, len, kind, Some(get_inode)) }
}

/// # Safety
///
/// Called by exportfs, whose contract makes every pointer valid.
unsafe extern "C" fn fh_to_parent(
    sb: *mut bindings::super_block,
    fid: *mut bindings::fid,
    len: i32,
    kind: i32,
) -> *mut bindings::dentry {
    // SAFETY: Same contract.
    unsafe { bindings::generic_fh_to_parent(sb, fid, len, kind, Some(get_inode)) }
}

/// The parent directory of a directory: its `..`.
///
/// # Safety
///
/// Called by exportfs with a positive directory dentry.
unsafe extern "C" fn get_parent(child: *mut bindings::dentry) -> *mut bindings::dentry {
    let req = call::request();
    let mut entry = core::mem::MaybeUninit::<Entry>::uninit();
    // SAFETY: `child` is positive (exportfs contract).
    unsafe {
        let dir = (*child).d_inode;
        let ino = (*dir).i_ino as u64;
        let ret = fs(dir)
            .call(|ops, fs| (ops.lookup)(fs, &req, ino, b"..".as_ptr(), 2, entry.as_mut_ptr()));
        if ret != 0 {
            return Error::from_errno(ret).to_ptr();
        }
        match iget((*dir).i_sb, &entry.assume_init().attr) {
            Ok(inode) => bindings::d_obtain_alias(inode),
            Err(e) => e.to_ptr(),
        }
    }
}
