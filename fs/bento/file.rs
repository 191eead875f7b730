// SPDX-License-Identifier: GPL-2.0
//! Regular files: open/release, and reads through the page cache.
//!
//! File systems without a block device implement `read`; the framework fills page-cache
//! folios from it (`read_folio`), so reads, `mmap` and `splice` all go through one cache.

use core::ffi::c_void;

use bento::Open;
use kernel::bindings;

use crate::call::{self, Table};
use crate::dir::fh;
use crate::inode::{fs, getattr};

pub(crate) static FILE_INODE_OPS: bindings::inode_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::inode_operations = unsafe { core::mem::zeroed() };
    ops.getattr = Some(getattr);
    ops
};

pub(crate) static FILE_FILE_OPS: Table<bindings::file_operations> = Table({
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::file_operations = unsafe { core::mem::zeroed() };
    ops.open = Some(open);
    ops.release = Some(release);
    ops.read_iter = Some(bindings::generic_file_read_iter);
    ops.splice_read = Some(bindings::filemap_splice_read);
    ops.mmap = Some(bindings::generic_file_readonly_mmap);
    ops.llseek = Some(bindings::generic_file_llseek);
    ops
});

pub(crate) static FILE_AOPS: bindings::address_space_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::address_space_operations = unsafe { core::mem::zeroed() };
    ops.read_folio = Some(read_folio);
    ops
};

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
    // SAFETY: `inode` and `file` are valid (VFS contract).
    let ret = unsafe { bindings::generic_file_open(inode, file) };
    if ret != 0 {
        return ret;
    }
    let req = call::request();
    let mut open = Open::default();
    // SAFETY: As above.
    let ret = unsafe {
        let ino = (*inode).i_ino as u64;
        let flags = (*file).f_flags as i32;
        fs(inode).call(|ops, fs| (ops.open)(fs, &req, ino, flags, &mut open))
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
        fs(inode).call(|ops, fs| (ops.release)(fs, &req, ino, fh))
    }
}

/// Fills one locked page-cache folio by calling the file system's `read`, zeroing what
/// lies past the end of the file.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn read_folio(file: *mut bindings::file, folio: *mut bindings::folio) -> i32 {
    let req = call::request();
    // SAFETY: `folio` is locked and belongs to a bento inode's mapping (VFS contract);
    // `file` is null or an open file of that inode.
    let ret = unsafe {
        let inode = (*(*folio).__bindgen_anon_1.__bindgen_anon_1.mapping).host;
        let ino = (*inode).i_ino as u64;
        let fh = if file.is_null() { 0 } else { fh(file) };
        let size = bindings::folio_size(folio);
        let pos = bindings::folio_pos(folio) as u64;
        let fs = fs(inode);
        let mut ret = 0;
        let mut done = 0usize;
        while done < size {
            let page = bindings::PAGE_SIZE.min(size - done);
            let buf = bindings::kmap_local_folio(folio, done).cast::<u8>();
            let mut filled = 0usize;
            while ret == 0 && filled < page {
                let mut n = 0usize;
                let off = pos + (done + filled) as u64;
                let len = page - filled;
                ret = fs.call(|ops, fs| {
                    (ops.read)(fs, &req, ino, fh, off, buf.add(filled), len, &mut n)
                });
                if n == 0 {
                    break;
                }
                filled += n;
            }
            core::ptr::write_bytes(buf.add(filled), 0, page - filled);
            bindings::kunmap_local(buf.cast());
            if ret != 0 {
                break;
            }
            done += page;
        }
        ret
    };
    // SAFETY: The folio is locked by the caller and ours to complete.
    unsafe {
        if ret == 0 {
            bindings::folio_mark_uptodate(folio);
        }
        bindings::folio_unlock(folio);
    }
    ret
}
