// SPDX-License-Identifier: GPL-2.0
//! Directories: open/release and listing through the file system's `readdir`.

use core::ffi::c_void;

use bento::abi::RawDirSink;
use bento::{FileType, Ino, Open};
use kernel::bindings;
use kernel::error::to_result;

use crate::call::{self, Table};
use crate::inode::{self, fs};

pub(crate) static DIR_INODE_OPS: bindings::inode_operations = inode::dir_inode_ops();

pub(crate) static DIR_FILE_OPS: Table<bindings::file_operations> = Table({
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::file_operations = unsafe { core::mem::zeroed() };
    ops.open = Some(open);
    ops.release = Some(release);
    ops.iterate_shared = Some(iterate_shared);
    ops.read = Some(bindings::generic_read_dir);
    ops.llseek = Some(bindings::generic_file_llseek);
    ops.fsync = Some(crate::file::fsync);
    ops
});

/// The file handle the file system gave this open file.
///
/// # Safety
///
/// `file` must be a live file of a bento inode.
pub(crate) unsafe fn fh(file: *const bindings::file) -> u64 {
    // SAFETY: By the caller's guarantee; `private_data` holds the handle (never a pointer).
    unsafe { (*file).private_data as u64 }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    let req = call::request();
    let mut open = Open::default();
    // SAFETY: `inode` and `file` are valid (VFS contract).
    let ret = unsafe {
        let ino = (*inode).i_ino as u64;
        let flags = (*file).f_flags as i32;
        fs(inode).call(|ops, fs| (ops.opendir)(fs, &req, ino, flags, &mut open))
    };
    if ret == 0 {
        // SAFETY: `file` is valid and not yet visible to others.
        unsafe { (*file).private_data = open.fh as *mut c_void };
    }
    ret
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn release(inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    let req = call::request();
    // SAFETY: `inode` and `file` are valid (VFS contract).
    unsafe {
        let (ino, fh) = ((*inode).i_ino as u64, fh(file));
        fs(inode).call(|ops, fs| (ops.releasedir)(fs, &req, ino, fh))
    }
}

/// Receives entries from the file system's `readdir` and emits them to the VFS.
///
/// # Safety
///
/// `ctx` is the `dir_context` passed to `iterate_shared`; `name` is valid for `len` bytes.
unsafe extern "C" fn add(
    ctx: *mut c_void,
    ino: Ino,
    next: i64,
    kind: FileType,
    name: *const u8,
    len: usize,
) -> bool {
    let ctx = ctx.cast::<bindings::dir_context>();
    let Ok(len) = i32::try_from(len) else {
        return true;
    };
    // SAFETY: By the function's contract.
    unsafe {
        if !bindings::dir_emit(ctx, name.cast(), len, ino, kind.dtype().into()) {
            return true;
        }
        (*ctx).pos = next;
    }
    false
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn iterate_shared(
    file: *mut bindings::file,
    ctx: *mut bindings::dir_context,
) -> i32 {
    let req = call::request();
    let mut sink = RawDirSink {
        ctx: ctx.cast(),
        add,
    };
    // SAFETY: `file` and `ctx` are valid (VFS contract); `sink` outlives the call.
    let ret = unsafe {
        let inode = (*file).f_inode;
        let (ino, fh, pos) = ((*inode).i_ino as u64, fh(file), (*ctx).pos);
        fs(inode).call(|ops, fs| (ops.readdir)(fs, &req, ino, fh, pos, &mut sink))
    };
    match to_result(ret) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
