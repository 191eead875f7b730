// SPDX-License-Identifier: GPL-2.0
//! Dentry revalidation across live upgrades.
//!
//! A bento file system changes only through the VFS, so its dentries (positive and
//! negative) stay valid indefinitely, as a local file system's do, with one exception:
//! after a live upgrade the new version may present a directory differently (`hello_v2`
//! adds a file; a downgrade removes it). Each dentry remembers in `d_time` the
//! superblock's upgrade generation it was last checked in; one made before the last
//! upgrade is checked once with a lookup in the new version.

use kernel::bindings;

use crate::call::Table;
use crate::inode::fs_lookup;
use crate::superblock::fs_of;

/// The dentry operations of every bento superblock (`s_d_op`).
pub(crate) static DENTRY_OPS: Table<bindings::dentry_operations> = Table({
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::dentry_operations = unsafe { core::mem::zeroed() };
    ops.d_revalidate = Some(d_revalidate);
    ops
});

/// Marks `dentry` as checked in the current generation of its superblock.
///
/// # Safety
///
/// `dentry` is a live dentry of a mounted bento superblock, being looked up or checked.
pub(crate) unsafe fn mark_current(dentry: *mut bindings::dentry) {
    // SAFETY: By the caller's guarantee.
    unsafe { (*dentry).d_time = fs_of((*dentry).d_sb).generation() };
}

/// # Safety
///
/// Called by the VFS with a live dentry of a mounted bento superblock.
unsafe extern "C" fn d_revalidate(dentry: *mut bindings::dentry, flags: u32) -> i32 {
    // SAFETY: `dentry` is live; its superblock is mounted.
    let gen = unsafe { fs_of((*dentry).d_sb).generation() };
    // SAFETY: As above; `d_time` is only a hint here, raced writes are harmless.
    if unsafe { (*dentry).d_time } == gen {
        return 1;
    }
    if flags & bindings::LOOKUP_RCU != 0 {
        return -(bindings::ECHILD as i32);
    }
    // SAFETY: `dentry` is live; `dget_parent` returns a referenced parent (dropped below)
    // and the name snapshot holds a stable copy of the name against a rename.
    unsafe {
        let parent = bindings::dget_parent(dentry);
        let mut snap: bindings::name_snapshot = core::mem::zeroed();
        bindings::take_dentry_name_snapshot(&mut snap, dentry);
        let dir = (*parent).d_inode;
        let inode = (*dentry).d_inode;
        let found = if dir.is_null() {
            Ok(None)
        } else {
            let (name, len) = (
                snap.name.name,
                snap.name.__bindgen_anon_1.__bindgen_anon_1.len,
            );
            fs_lookup(dir, name, len as usize)
        };
        bindings::release_dentry_name_snapshot(&mut snap);
        bindings::dput(parent);
        let valid = match found {
            Ok(Some(entry)) => !inode.is_null() && entry.attr.ino == (*inode).i_ino as u64,
            Ok(None) => inode.is_null(),
            Err(e) => return e.to_errno(),
        };
        if valid {
            mark_current(dentry);
        }
        i32::from(valid)
    }
}
