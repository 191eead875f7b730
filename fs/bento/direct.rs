// SPDX-License-Identifier: GPL-2.0
//! Direct I/O and fiemap of block file systems, through iomap (as ext2 in 6.12): the
//! same `map_blocks` answers, turned into `struct iomap` extents. Buffered I/O stays on
//! buffer heads (`data`).
//!
//! Direct writes wait for their I/O (`IOMAP_DIO_FORCE_WAIT`) and then grow the file;
//! they allocate only past the size, blocks written by the direct I/O itself (iomap
//! zeroes the parts of a new block the write does not cover). Holes and unwritten
//! blocks inside the file are filled by the buffered path.

use kernel::bindings;

use crate::data::map;

static IOMAP_OPS: bindings::iomap_ops = bindings::iomap_ops {
    iomap_begin: Some(iomap_begin),
    iomap_end: None,
};

/// `iomap_begin`: one extent (mapped run or hole) from `pos`, allocating for writes.
///
/// # Safety
///
/// Called by iomap with a live inode of a block bento superblock and a writable `iomap`.
unsafe extern "C" fn iomap_begin(
    inode: *mut bindings::inode,
    pos: i64,
    length: i64,
    flags: u32,
    iomap: *mut bindings::iomap,
    _srcmap: *mut bindings::iomap,
) -> i32 {
    // SAFETY: iomap's contract (see above).
    unsafe {
        let bits = (*inode).i_blkbits as u32;
        let first = pos as u64 >> bits;
        let last = (pos + length.max(1) - 1) as u64 >> bits;
        let count = u32::try_from(last - first + 1).unwrap_or(u32::MAX);
        let write = flags & bindings::BENTO_IOMAP_WRITE != 0;
        // A hole (or unwritten block) inside the file is not filled by direct I/O: its
        // allocation could commit before the data reached the disk, and a reader
        // meanwhile, or the file after a crash, would show the block's old contents.
        // `-ENOTBLK` sends the rest of the write to the buffered path (as ext4 does for
        // its indirect-mapped files); past the size, the blocks are unseen until the
        // write grows the file after its I/O.
        let inside = (first << bits) < bindings::i_size_read(inode) as u64;
        let e = match map(inode, first, count, write && !inside) {
            Ok(e) if write && inside && e.disk_block == 0 => return -(bindings::ENOTBLK as i32),
            Ok(e) => e,
            Err(e) => return e.to_errno(),
        };
        let m = &mut *iomap;
        m.offset = (first << bits) as i64;
        m.length = u64::from(e.len) << bits;
        m.bdev = (*(*inode).i_sb).s_bdev;
        m.flags = 0;
        if e.disk_block == 0 {
            m.type_ = bindings::BENTO_IOMAP_HOLE as u16;
            m.addr = u64::MAX; // IOMAP_NULL_ADDR
        } else {
            m.type_ = bindings::BENTO_IOMAP_MAPPED as u16;
            m.addr = e.disk_block << bits;
            if e.new {
                m.flags |= bindings::BENTO_IOMAP_F_NEW as u16;
            }
        }
    }
    0
}

/// `read_iter` of block-backed files: direct reads through iomap, the rest generic.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn read_iter(
    iocb: *mut bindings::kiocb,
    to: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: VFS contract.
    unsafe {
        if (*iocb).ki_flags & bindings::BENTO_IOCB_DIRECT == 0 {
            return bindings::generic_file_read_iter(iocb, to);
        }
        let file = (*iocb).ki_filp;
        let inode = (*file).f_inode;
        bindings::bento_inode_lock_shared(inode);
        let ret = bindings::iomap_dio_rw(
            iocb,
            to,
            &IOMAP_OPS,
            core::ptr::null(),
            0,
            core::ptr::null_mut(),
            0,
        );
        bindings::bento_inode_unlock_shared(inode);
        bindings::bento_file_accessed(file);
        ret
    }
}

/// `write_iter` of block-backed files: direct writes through iomap (falling back to
/// buffered I/O where iomap asks), the rest generic.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn write_iter(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: VFS contract.
    unsafe {
        if (*iocb).ki_flags & bindings::BENTO_IOCB_DIRECT == 0 {
            return crate::data::buffered_write(iocb, from);
        }
        let inode = (*(*iocb).ki_filp).f_inode;
        bindings::bento_inode_lock(inode);
        let ret = direct_write(iocb, from, inode);
        bindings::bento_inode_unlock(inode);
        if ret > 0 {
            return bindings::bento_generic_write_sync(iocb, ret);
        }
        ret
    }
}

/// # Safety
///
/// `iocb` and `from` are a direct write's; `inode` is its file's inode, locked.
unsafe fn direct_write(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
    inode: *mut bindings::inode,
) -> isize {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let ret = bindings::generic_write_checks(iocb, from);
        if ret <= 0 {
            return ret;
        }
        let err = bindings::kiocb_modified(iocb);
        if err != 0 {
            return err as isize;
        }
        let mut ret = bindings::iomap_dio_rw(
            iocb,
            from,
            &IOMAP_OPS,
            core::ptr::null(),
            bindings::BENTO_IOMAP_DIO_FORCE_WAIT,
            core::ptr::null_mut(),
            0,
        );
        // `-ENOTBLK`: iomap could not do it directly (page cache in the way); the
        // buffered path below does the rest.
        if ret == -(bindings::ENOTBLK as isize) {
            ret = 0;
        }
        if ret < 0 {
            return ret;
        }
        let pos = (*iocb).ki_pos;
        if pos > bindings::i_size_read(inode) {
            bindings::i_size_write(inode, pos);
            bindings::bento_mark_inode_dirty(inode);
        }
        if bindings::bento_iov_iter_count(from) == 0 {
            return ret;
        }
        (*iocb).ki_flags &= !bindings::BENTO_IOCB_DIRECT;
        let start = (*iocb).ki_pos;
        let done = crate::data::perform_write(iocb, from, inode);
        if done < 0 {
            return if ret > 0 { ret } else { done };
        }
        let end = start + done as i64 - 1;
        if done > 0 {
            let err = bindings::filemap_write_and_wait_range((*inode).i_mapping, start, end);
            if err != 0 {
                return err as isize;
            }
            bindings::invalidate_mapping_pages(
                (*inode).i_mapping,
                (start >> bindings::PAGE_SHIFT) as _,
                (end >> bindings::PAGE_SHIFT) as _,
            );
        }
        ret + done
    }
}

/// `fiemap`.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn fiemap(
    inode: *mut bindings::inode,
    info: *mut bindings::fiemap_extent_info,
    start: u64,
    len: u64,
) -> i32 {
    // SAFETY: VFS contract.
    unsafe {
        bindings::bento_inode_lock(inode);
        let ret = bindings::iomap_fiemap(inode, info, start, len, &IOMAP_OPS);
        bindings::bento_inode_unlock(inode);
        ret
    }
}

/// Marks `file` as able to do direct I/O (checked by `open` after our `open`).
///
/// # Safety
///
/// `file` must be a file being opened.
pub(crate) unsafe fn allow_direct(file: *mut bindings::file) {
    // SAFETY: By the caller's guarantee; the file is not visible to others yet.
    unsafe { (*file).f_mode |= bindings::BENTO_FMODE_CAN_ODIRECT };
}
