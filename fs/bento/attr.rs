// SPDX-License-Identifier: GPL-2.0
//! Attribute changes: `setattr` (chmod, chown, utimes, truncate) and `dirty_inode`,
//! which passes the VFS's own changes (file size after a write, timestamps) on to the
//! file system.

use core::sync::atomic::Ordering;

use bento::{Attr, FileType, SetAttr, TimeSet, Timespec};
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call;
use crate::data;
use crate::inode::{block_backed, container, fs, update};

fn ts(t: &bindings::timespec64) -> Timespec {
    Timespec::new(t.tv_sec, t.tv_nsec as u32)
}

/// Calls the file system's `setattr` and returns its answer.
///
/// # Safety
///
/// `inode` must be a live bento inode.
unsafe fn call_setattr(inode: *mut bindings::inode, set: &SetAttr) -> Result<Attr> {
    let req = call::request();
    let mut attr = core::mem::MaybeUninit::<Attr>::uninit();
    // SAFETY: `inode` is live; `set` and `attr` are valid for the call.
    to_result(unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.setattr)(fs, &req, ino, set, attr.as_mut_ptr()))
    })?;
    // SAFETY: `setattr` returned 0, so it wrote `attr`.
    Ok(unsafe { attr.assume_init() })
}

/// `setattr` of every bento inode.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid (the
/// inode is locked).
pub(crate) unsafe extern "C" fn setattr(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    iattr: *mut bindings::iattr,
) -> i32 {
    // SAFETY: VFS contract: `dentry` is positive, `iattr` valid, the inode locked.
    unsafe {
        let ret = bindings::setattr_prepare(idmap, dentry, iattr);
        if ret != 0 {
            return ret;
        }
        let inode = (*dentry).d_inode;
        let a = &*iattr;
        let valid = a.ia_valid;
        let mut set = SetAttr::default();
        if valid & bindings::BENTO_ATTR_MODE != 0 {
            set.mode = Some(u32::from(bindings::bento_setattr_mode(idmap, inode, iattr)) & 0o7777);
        }
        if valid & bindings::BENTO_ATTR_UID != 0 {
            set.uid = Some(bindings::bento_iattr_uid(idmap, inode, iattr));
        }
        if valid & bindings::BENTO_ATTR_GID != 0 {
            set.gid = Some(bindings::bento_iattr_gid(idmap, inode, iattr));
        }
        if valid & bindings::BENTO_ATTR_ATIME != 0 {
            set.atime = Some(TimeSet::At(ts(&a.ia_atime)));
        }
        if valid & bindings::BENTO_ATTR_MTIME != 0 {
            set.mtime = Some(TimeSet::At(ts(&a.ia_mtime)));
        }
        if valid & bindings::BENTO_ATTR_CTIME != 0 {
            set.ctime = Some(ts(&a.ia_ctime));
        }
        if valid & bindings::BENTO_ATTR_FILE != 0 && !a.ia_file.is_null() {
            set.fh = Some(crate::dir::fh(a.ia_file));
        }
        let resize = valid & bindings::BENTO_ATTR_SIZE != 0;
        if !resize {
            return match call_setattr(inode, &set) {
                Ok(attr) => {
                    update(inode, &attr);
                    0
                }
                Err(e) => e.to_errno(),
            };
        }
        set.size = Some(a.ia_size as u64);
        if !block_backed((*inode).i_sb) {
            return match call_setattr(inode, &set) {
                Ok(attr) => {
                    update(inode, &attr);
                    bindings::truncate_setsize(inode, attr.size as i64);
                    0
                }
                Err(e) => e.to_errno(),
            };
        }
        match truncate(inode, a.ia_size, &set) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

/// Changes the size of a regular file of a block file system, as ext2 does: zero the
/// tail of the new last block in the page cache, drop the page cache past it, then let
/// the file system free the blocks (and apply the other changes in `set`).
///
/// # Safety
///
/// `inode` must be a live, locked regular-file inode of a block bento superblock.
unsafe fn truncate(inode: *mut bindings::inode, size: i64, set: &SetAttr) -> Result {
    // SAFETY: By the caller's guarantee.
    unsafe {
        if (*inode).i_mode & 0o170000 != FileType::RegularFile.mode_bits() as u16 {
            return Err(EINVAL);
        }
        let mapping = (*inode).i_mapping;
        if size < bindings::i_size_read(inode) {
            to_result(bindings::block_truncate_page(
                mapping,
                size,
                Some(data::get_block_mapped),
            ))?;
        }
        bindings::bento_invalidate_lock(mapping, false);
        bindings::truncate_setsize(inode, size);
        let r = call_setattr(inode, set);
        // Blocks past the new size may be gone (even after an error).
        container(inode).map.forget();
        bindings::bento_invalidate_unlock(mapping, false);
        let attr = r?;
        container(inode)
            .disk_size
            .store(size as u64, Ordering::Relaxed);
        update(inode, &attr);
    }
    Ok(())
}

/// `dirty_inode`: the VFS changed the inode itself (a write grew the file, timestamps
/// moved); pass that on to the file system, which records it in its own transaction.
/// During a buffered write ([`data::buffered_write`]) that is left to the write's end.
///
/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
pub(crate) unsafe extern "C" fn dirty_inode(inode: *mut bindings::inode, flags: i32) {
    if flags as u32 & bindings::BENTO_I_DIRTY_INODE == 0 {
        return;
    }
    // SAFETY: `inode` is live (VFS contract).
    let bi = unsafe { container(inode) };
    if bi.writing_to.load(Ordering::SeqCst) != 0 {
        // Then checked again: a write that ended meanwhile may have missed the flag.
        bi.record.store(true, Ordering::SeqCst);
        if bi.writing_to.load(Ordering::SeqCst) != 0 {
            return;
        }
    }
    // SAFETY: `inode` is live.
    if let Err(e) = unsafe { record(inode, false) } {
        // SAFETY: As above.
        let ino = unsafe { (*inode).i_ino };
        pr_err!("inode {}: recording its attributes failed ({:?})\n", ino, e);
    }
}

/// After a buffered or direct write: records the file's size and times in the file
/// system, if the write grew the file, allocated blocks past its end or changed its
/// times. The file system frees what it allocated past the size (a short write).
///
/// # Safety
///
/// `inode` must be a live, locked regular-file inode of a block bento superblock.
pub(crate) unsafe fn record_size(inode: *mut bindings::inode) -> Result {
    // SAFETY: By the caller's guarantee.
    let bi = unsafe { container(inode) };
    let asked = bi.record.swap(false, Ordering::SeqCst);
    // SAFETY: As above.
    let size = unsafe { bindings::i_size_read(inode) } as u64;
    if !asked && size == bi.disk_size.load(Ordering::Relaxed) {
        return Ok(());
    }
    // SAFETY: As above.
    unsafe { record(inode, true) }
}

/// Passes the VFS inode's times, and its size if it grew (or always with `size`), to
/// the file system, now (in the caller's journal handle, if any).
///
/// # Safety
///
/// `inode` must be a live bento inode; with `size`, a locked regular file of a block
/// file system.
pub(crate) unsafe fn record(inode: *mut bindings::inode, size: bool) -> Result {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let i = &*inode;
        let bi = container(inode);
        let regular = i.i_mode & 0o170000 == FileType::RegularFile.mode_bits() as u16;
        let now = bindings::i_size_read(inode) as u64;
        let grow = regular && block_backed(i.i_sb) && now > bi.disk_size.load(Ordering::Relaxed);
        let set = SetAttr {
            size: (size || grow).then_some(now),
            atime: Some(TimeSet::At(Timespec::new(i.i_atime_sec, i.i_atime_nsec))),
            mtime: Some(TimeSet::At(Timespec::new(i.i_mtime_sec, i.i_mtime_nsec))),
            ctime: Some(Timespec::new(i.i_ctime_sec, i.i_ctime_nsec)),
            ..SetAttr::default()
        };
        let r = call_setattr(inode, &set);
        if set.size.is_some() {
            // The file system may have freed blocks past the size.
            bi.map.forget();
            crate::inode::invalidate(inode);
        }
        r?;
        if size {
            bi.disk_size.store(now, Ordering::Relaxed);
        } else if grow {
            bi.disk_size.fetch_max(now, Ordering::Relaxed);
        }
    }
    Ok(())
}
