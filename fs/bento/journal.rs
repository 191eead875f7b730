// SPDX-License-Identifier: GPL-2.0
//! The framework's side of the journal service: the `bento` crate's kernel backend loads
//! jbd2 on the file system's device and reports the `journal_t` here, so that the
//! framework (which owns the inodes) can file each inode's data in transactions
//! (data=ordered), release inodes from the journal on evict, and commit on `sync_fs`.
//!
//! These functions are called from the `bento` crate, which is built into the kernel
//! with fs/bento; they are not exported to modules.

use core::sync::atomic::Ordering;

use kernel::bindings;

use crate::inode::container;
use crate::superblock::SbInfo;

/// Records (or, with null, forgets) the journal of bento superblock `sb`.
///
/// # Safety
///
/// `sb` must be a bento superblock being mounted or mounted; a non-null `journal` must
/// stay loaded until this is called again with null, before the superblock goes.
#[no_mangle]
pub(crate) unsafe extern "C" fn bento_sb_set_journal(
    sb: *mut bindings::super_block,
    journal: *mut bindings::journal_t,
) {
    // SAFETY: By the caller's guarantee `s_fs_info` is our `SbInfo`.
    unsafe {
        (*(*sb).s_fs_info.cast::<SbInfo>())
            .journal
            .store(journal, Ordering::Release)
    };
}

/// Files bytes `[start, start + len)` of inode `ino` of `sb` in the transaction of
/// `handle` as ordered data: the transaction commits only after that data is written.
/// Returns 0 or a negative errno (`ESTALE` if the inode is not in memory, which cannot
/// happen for an inode being written).
///
/// # Safety
///
/// `handle` must be a running jbd2 handle of the journal of bento superblock `sb`.
#[no_mangle]
pub(crate) unsafe extern "C" fn bento_order_data(
    handle: *mut bindings::handle_t,
    sb: *mut bindings::super_block,
    ino: u64,
    start: i64,
    len: i64,
) -> i32 {
    if len <= 0 {
        return 0;
    }
    // SAFETY: `sb` is a live bento superblock; `ilookup` returns a referenced inode of
    // it or null. The caller writes this inode, so it is in memory and not being freed.
    unsafe {
        let inode = bindings::ilookup(sb, ino as _);
        if inode.is_null() {
            return -(bindings::ESTALE as i32);
        }
        let jinode = core::ptr::addr_of!(container(inode).jinode).cast_mut();
        let ret = bindings::jbd2_journal_inode_ranged_write(handle, jinode, start, len);
        bindings::iput(inode);
        ret
    }
}
