// SPDX-License-Identifier: GPL-2.0
//! Regular files: open/release, and reads through the page cache.
//!
//! File systems without a block device implement `read`; the framework fills page-cache
//! folios from it (`read_folio`), so reads, `mmap` and `splice` all go through one cache.

use core::ffi::c_void;

use core::sync::atomic::Ordering;

use bento::types::whence;
use bento::Open;
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call::{self, Table};
use crate::dir::fh;
use crate::inode::{container, fs, getattr, refresh};
use crate::superblock::journal_of;
use crate::xattr;
use crate::{data, direct};

pub(crate) static FILE_INODE_OPS: bindings::inode_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::inode_operations = unsafe { core::mem::zeroed() };
    ops.getattr = Some(getattr);
    ops.setattr = Some(crate::attr::setattr);
    ops.listxattr = Some(xattr::listxattr);
    ops.fiemap = Some(direct::fiemap);
    ops
};

/// Device nodes, fifos and sockets.
pub(crate) static SPECIAL_INODE_OPS: bindings::inode_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::inode_operations = unsafe { core::mem::zeroed() };
    ops.getattr = Some(getattr);
    ops.setattr = Some(crate::attr::setattr);
    ops.listxattr = Some(xattr::listxattr);
    ops
};

/// Regular files of block file systems: data through the page cache (`data`).
pub(crate) static BLOCK_FILE_OPS: Table<bindings::file_operations> = Table({
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::file_operations = unsafe { core::mem::zeroed() };
    ops.open = Some(open);
    ops.release = Some(release);
    ops.flush = Some(flush);
    ops.read_iter = Some(direct::read_iter);
    ops.write_iter = Some(direct::write_iter);
    ops.splice_read = Some(bindings::filemap_splice_read);
    ops.splice_write = Some(bindings::iter_file_splice_write);
    ops.mmap = Some(data::mmap);
    ops.fsync = Some(fsync);
    ops.llseek = Some(llseek);
    ops.fallocate = Some(fallocate);
    ops
});

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
        unsafe {
            (*file).private_data = open.fh as *mut c_void;
            if crate::inode::block_backed((*inode).i_sb) {
                direct::allow_direct(file);
            }
        }
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

/// `flush`: each `close` of an open file. `ENOSYS` from the file system means nothing
/// to do (the trait's default, as in FUSE): the close succeeds.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn flush(file: *mut bindings::file, _id: bindings::fl_owner_t) -> i32 {
    let req = call::request();
    // SAFETY: `file` is an open bento file (VFS contract).
    let ret = unsafe {
        let inode = (*file).f_inode;
        let (ino, fh) = ((*inode).i_ino as u64, fh(file));
        fs(inode).call(|ops, fs| (ops.flush)(fs, &req, ino, fh))
    };
    if ret == -(bindings::ENOSYS as i32) {
        return 0;
    }
    ret
}

/// `fsync` of files and directories: write the file's dirty pages back and wait, then
/// let the file system make them and its metadata durable (a journal commit).
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn fsync(
    file: *mut bindings::file,
    start: i64,
    end: i64,
    datasync: i32,
) -> i32 {
    // SAFETY: `file` is an open bento file (VFS contract).
    unsafe {
        let ret = bindings::file_write_and_wait_range(file, start, end);
        if ret != 0 {
            return ret;
        }
        let inode = (*file).f_inode;
        let dir = (*inode).i_mode & 0o170000 == 0o040000;
        let regular = (*inode).i_mode & 0o170000 == 0o100000;
        if regular
            && crate::inode::block_backed((*inode).i_sb)
            && bindings::i_size_read(inode) as u64
                > container(inode).disk_size.load(Ordering::Relaxed)
        {
            // A write's size was not recorded (it failed, or the write is still going:
            // wait for it).
            bindings::bento_inode_lock(inode);
            let r = crate::attr::record_size(inode);
            bindings::bento_inode_unlock(inode);
            if let Err(e) = r {
                return e.to_errno();
            }
        }
        let req = call::request();
        let (ino, fh) = ((*inode).i_ino as u64, fh(file));
        let ret = fs(inode).call(|ops, fs| (ops.fsync)(fs, &req, ino, fh, datasync != 0, dir));
        if ret != 0 {
            return ret;
        }
        // The file system's changes are in its journal (`Journal::commit_for_fsync`):
        // commit and flush here, outside the upgrade gate.
        let sb = (*inode).i_sb;
        let journal = journal_of(sb);
        if journal.is_null() {
            return 0;
        }
        let ret = bindings::jbd2_journal_force_commit(journal);
        if ret != 0 {
            return ret;
        }
        bindings::blkdev_issue_flush((*sb).s_bdev)
    }
}

/// `llseek`: `SEEK_DATA`/`SEEK_HOLE` ask the file system (dirty data is always
/// allocated, so its map is complete); the rest is generic.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn llseek(file: *mut bindings::file, offset: i64, wh: i32) -> i64 {
    if wh != whence::SEEK_DATA && wh != whence::SEEK_HOLE {
        // SAFETY: VFS contract.
        return unsafe { bindings::generic_file_llseek(file, offset, wh) };
    }
    let req = call::request();
    let mut out = 0i64;
    // SAFETY: `file` is an open bento file (VFS contract).
    unsafe {
        let inode = (*file).f_inode;
        let (ino, fh) = ((*inode).i_ino as u64, fh(file));
        let ret = fs(inode).call(|ops, fs| (ops.lseek)(fs, &req, ino, fh, offset, wh, &mut out));
        if ret != 0 {
            return ret.into();
        }
        bindings::vfs_setpos(file, out, (*(*inode).i_sb).s_maxbytes)
    }
}

/// `fallocate`: allocation is the file system's; for a punched hole the framework
/// first zeroes the partial blocks at its edges and drops the page cache over it.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn fallocate(
    file: *mut bindings::file,
    mode: i32,
    offset: i64,
    len: i64,
) -> isize {
    // SAFETY: `file` is an open bento file (VFS contract).
    unsafe {
        let inode = (*file).f_inode;
        bindings::bento_inode_lock(inode);
        let r = fallocate_locked(file, inode, mode, offset, len);
        bindings::bento_inode_unlock(inode);
        match r {
            Ok(()) => 0,
            Err(e) => e.to_errno() as isize,
        }
    }
}

/// # Safety
///
/// `file` must be an open file of `inode`, a locked block-backed regular file.
unsafe fn fallocate_locked(
    file: *mut bindings::file,
    inode: *mut bindings::inode,
    mode: i32,
    offset: i64,
    len: i64,
) -> Result {
    let end = offset.checked_add(len).ok_or(EFBIG)?;
    let punch = mode & bindings::BENTO_FALLOC_FL_PUNCH_HOLE != 0;
    // SAFETY: By the caller's guarantee.
    unsafe {
        let mapping = (*inode).i_mapping;
        let bs = 1i64 << (*inode).i_blkbits;
        if punch {
            let size = bindings::i_size_read(inode);
            let (start, stop) = (offset.min(size), end.min(size));
            let first_full = (start + bs - 1) & !(bs - 1);
            let last_full = stop & !(bs - 1);
            if first_full > last_full {
                // Within one block.
                data::zero_range(inode, start, (stop - start) as u32)?;
            } else {
                data::zero_range(inode, start, (first_full - start) as u32)?;
                data::zero_range(inode, last_full, (stop - last_full) as u32)?;
            }
            to_result(bindings::filemap_write_and_wait_range(
                mapping,
                offset,
                end - 1,
            ))?;
            bindings::bento_invalidate_lock(mapping, false);
            if last_full > first_full {
                bindings::truncate_pagecache_range(inode, first_full, last_full - 1);
            }
        }
        let req = call::request();
        let (ino, fh) = ((*inode).i_ino as u64, fh(file));
        let r =
            to_result(fs(inode).call(|ops, fs| {
                (ops.fallocate)(fs, &req, ino, fh, offset as u64, len as u64, mode)
            }));
        if punch {
            // The hole's blocks are gone (some of them, after an error).
            container(inode).map.forget();
            bindings::bento_invalidate_unlock(mapping, false);
        }
        r?;
        if mode & bindings::BENTO_FALLOC_FL_KEEP_SIZE == 0 && end > bindings::i_size_read(inode) {
            bindings::i_size_write(inode, end);
            container(inode)
                .disk_size
                .fetch_max(end as u64, Ordering::Relaxed);
        }
        let _ = refresh(inode);
    }
    Ok(())
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
