// SPDX-License-Identifier: GPL-2.0
//! Superblocks: `fill_super`, `kill_sb` and the superblock operations.

use core::sync::atomic::{AtomicPtr, Ordering};

use bento::abi::{Instance, FLAG_BLOCK_DEVICE};
use bento::{Attr, Statfs, ROOT_INO};
use kernel::bindings;
use kernel::error::{from_result, to_result};
use kernel::prelude::*;

use crate::call::{self, Fs};
use crate::context;
use crate::inode;
use crate::registry;

/// `statfs` `f_type` of bento mounts: "BENT".
const BENTO_MAGIC: u64 = 0x4245_4e54;

/// What the framework keeps per superblock (`sb->s_fs_info`).
///
/// # Invariants
///
/// The module of the implementation in `link` is referenced (one `try_module_get`) for
/// as long as this exists; `fs` runs that implementation, and its instance is null or a
/// live instance of it. `fs.gate` is initialised.
pub(crate) struct SbInfo {
    /// The registry's view: the implementation, the sysfs directory, upgrade counts.
    pub(crate) link: registry::Link,
    pub(crate) fs: Fs,
    /// The jbd2 journal the file system loaded on this superblock's device, if any
    /// (set and cleared by the `bento` journal service, see `journal.rs`).
    pub(crate) journal: AtomicPtr<bindings::journal_t>,
    /// The options the mount was given (`fs=` aside), for `/proc/mounts`.
    options: KVec<u8>,
}

impl Drop for SbInfo {
    fn drop(&mut self) {
        unmount(self);
        // SAFETY: `unmount` detached the superblock: the registry no longer touches it.
        registry::put(unsafe { self.link.imp() });
    }
}

/// The journal of a bento superblock (null if the file system has none).
///
/// # Safety
///
/// `sb` must be a bento superblock whose `fill_super` started and that is not yet
/// killed.
pub(crate) unsafe fn journal_of(sb: *const bindings::super_block) -> *mut bindings::journal_t {
    // SAFETY: By the caller's guarantee `s_fs_info` is our `SbInfo`.
    unsafe {
        (*(*sb).s_fs_info.cast::<SbInfo>())
            .journal
            .load(Ordering::Acquire)
    }
}

/// The mounted instance of a bento superblock.
///
/// # Safety
///
/// `sb` must be a bento superblock whose `fill_super` succeeded and that is not yet
/// killed.
pub(crate) unsafe fn fs_of<'a>(sb: *const bindings::super_block) -> &'a Fs {
    // SAFETY: By the caller's guarantee `s_fs_info` is our `SbInfo`.
    unsafe { &(*(*sb).s_fs_info.cast::<SbInfo>()).fs }
}

static SUPER_OPS: bindings::super_operations = {
    // SAFETY: An all-zero table is valid: every operation is optional.
    let mut ops: bindings::super_operations = unsafe { core::mem::zeroed() };
    ops.alloc_inode = Some(inode::alloc_inode);
    ops.free_inode = Some(inode::free_inode);
    ops.statfs = Some(statfs);
    ops.evict_inode = Some(inode::evict_inode);
    ops.dirty_inode = Some(crate::attr::dirty_inode);
    ops.put_super = Some(put_super);
    ops.sync_fs = Some(sync_fs);
    ops.freeze_fs = Some(freeze_fs);
    ops.show_options = Some(show_options);
    ops
};

/// `show_options`: the file system's options as given at mount (`errors=` included),
/// after the VFS's own (`ro`, ...).
///
/// # Safety
///
/// Called by the VFS with a live `seq_file` and a mounted bento superblock's root.
unsafe extern "C" fn show_options(m: *mut bindings::seq_file, root: *mut bindings::dentry) -> i32 {
    // SAFETY: VFS contract; `s_fs_info` is our `SbInfo`.
    unsafe {
        let info = &*(*(*root).d_sb).s_fs_info.cast::<SbInfo>();
        let opts = &info.options[..];
        if !opts.is_empty() {
            bindings::seq_putc(m, b',' as _);
            bindings::seq_write(m, opts.as_ptr().cast(), opts.len());
        }
    }
    0
}

/// `freeze_fs`: the VFS has stopped writers, page faults and internal writers and
/// synced; checkpoint the journal so the frozen device holds a clean file system (for
/// snapshots). As ext4 does, updates are locked only around the flush: the VFS freeze
/// levels keep new handles out (holding `j_barrier` until thaw would return to user
/// space with a lock held).
///
/// # Safety
///
/// Called by the VFS on a mounted bento superblock.
unsafe extern "C" fn freeze_fs(sb: *mut bindings::super_block) -> i32 {
    // SAFETY: `sb` is mounted (VFS contract).
    let journal = unsafe { journal_of(sb) };
    if journal.is_null() {
        return 0;
    }
    // SAFETY: The journal stays loaded while the superblock is mounted.
    unsafe {
        bindings::jbd2_journal_lock_updates(journal);
        let ret = bindings::jbd2_journal_flush(journal, 0);
        bindings::jbd2_journal_unlock_updates(journal);
        ret
    }
}

/// Unmounts the file system instance. Called once every inode is gone, while the block
/// device is still open: the instance may write (its journal) as it goes.
fn unmount(info: &mut SbInfo) {
    // SAFETY: `info` is live. Off the registry's list, no upgrade switches it any more.
    unsafe { registry::detach(info) };
    if !info.fs.instance().is_null() {
        // SAFETY: No inode or call of this superblock is left, so the instance can go.
        info.fs.call(|ops, fs| unsafe { (ops.unmount)(fs) });
        info.fs.set_instance(core::ptr::null_mut());
    }
}

/// # Safety
///
/// Called by the VFS on a bento superblock that was filled.
unsafe extern "C" fn put_super(sb: *mut bindings::super_block) {
    // SAFETY: `s_fs_info` is our `SbInfo`; the superblock is being shut down, so no
    // call runs concurrently.
    unsafe { unmount(&mut *(*sb).s_fs_info.cast::<SbInfo>()) };
}

/// `sync_fs`: commit the journal (data=ordered writes the data first) and, when asked,
/// wait for it.
///
/// # Safety
///
/// Called by the VFS on a mounted bento superblock.
unsafe extern "C" fn sync_fs(sb: *mut bindings::super_block, wait: i32) -> i32 {
    // SAFETY: `sb` is mounted (VFS contract).
    let journal = unsafe { journal_of(sb) };
    if journal.is_null() {
        return 0;
    }
    let mut tid: bindings::tid_t = 0;
    // SAFETY: The journal stays loaded while the superblock is mounted.
    unsafe {
        if bindings::jbd2_journal_start_commit(journal, &mut tid) != 0 && wait != 0 {
            return bindings::jbd2_log_wait_commit(journal, tid);
        }
    }
    0
}

/// Fills a new superblock: mounts the file system instance and reads the root inode.
///
/// # Safety
///
/// Called by `get_tree_nodev`/`get_tree_bdev` with a new `sb` and a bento `fc` whose
/// `get_tree` chose an implementation.
pub(crate) unsafe extern "C" fn fill_super(
    sb: *mut bindings::super_block,
    fc: *mut bindings::fs_context,
) -> i32 {
    from_result(|| {
        // SAFETY: Both are valid (caller's contract).
        let (sbr, ctx) = unsafe { (&mut *sb, context::context(fc)) };
        let imp = ctx.imp.take().ok_or(EINVAL)?;
        let info = KBox::new(
            SbInfo {
                link: registry::Link::new(imp),
                fs: Fs::new(imp.ops, sb, ctx.on_error),
                journal: AtomicPtr::new(core::ptr::null_mut()),
                options: {
                    let mut o = KVec::new();
                    o.extend_from_slice(&ctx.options, GFP_KERNEL)?;
                    o
                },
            },
            GFP_KERNEL,
        )?;
        // INVARIANT: the module reference moved from the context into `info`; `kill_sb`
        // frees it even if we fail below.
        let info = KBox::into_raw(info);
        // SAFETY: `info` is live and will not move (it is only freed).
        unsafe { (*info).fs.gate.init() };
        sbr.s_fs_info = info.cast();
        sbr.s_op = &SUPER_OPS;
        sbr.s_magic = BENTO_MAGIC as _;
        sbr.s_maxbytes = bindings::MAX_LFS_FILESIZE as _;
        if imp.ops.flags & FLAG_BLOCK_DEVICE == 0 {
            // Block file systems set their block size on the device when they open it.
            sbr.s_blocksize = bindings::PAGE_SIZE as _;
            sbr.s_blocksize_bits = bindings::PAGE_SHIFT as _;
        }
        sbr.s_time_gran = 1;
        sbr.s_xattr = crate::xattr::HANDLERS.0.as_ptr();
        sbr.s_export_op = &crate::export::EXPORT_OPS.0;
        sbr.s_d_op = &crate::dentry::DENTRY_OPS.0;

        let read_only = sbr.s_flags & bindings::SB_RDONLY != 0;
        // SAFETY: `fc` is valid.
        let opts = ctx.mount_options(unsafe { &*fc }, sb, read_only);
        let mut inst: Instance = core::ptr::null_mut();
        // SAFETY: `info` is live; `opts` borrows buffers that outlive the call.
        let fs = unsafe { &mut (*info).fs };
        // SAFETY: The table's contract: valid options, `inst` valid for writes.
        to_result(fs.call(|ops, _| unsafe { (ops.mount)(&opts, &mut inst) }))?;
        fs.set_instance(inst);
        // SAFETY: `info` is live and `sb` is being filled; `attach`'s contract: the
        // instance is mounted and `unmount` detaches.
        let r = unsafe { root(sb, &mut *info).and_then(|r| registry::attach(info).map(|()| r)) };
        if r.is_err() {
            // Unmount now, while the block device is still open (`kill_sb` releases it
            // before it frees `info`).
            // SAFETY: `info` is live; no inode of `sb` refers to the instance any more.
            unsafe { unmount(&mut *info) };
        }
        r
    })
}

/// Reads the root inode and makes the root dentry.
///
/// # Safety
///
/// `sb` must be the superblock being filled, `info` its `SbInfo`, with a mounted
/// instance.
unsafe fn root(sb: *mut bindings::super_block, info: &mut SbInfo) -> Result<i32> {
    let fs = &info.fs;
    {
        let req = call::request();
        let mut attr = core::mem::MaybeUninit::<Attr>::uninit();
        to_result(fs.call(|ops, fs| {
            // SAFETY: `inst` is live; `attr` is valid for writes.
            unsafe { (ops.getattr)(fs, &req, ROOT_INO, attr.as_mut_ptr()) }
        }))?;
        // SAFETY: `getattr` returned 0, so it wrote `attr`.
        let attr = unsafe { attr.assume_init() };
        let root = inode::iget(sb, &attr)?;
        // SAFETY: `root` is a referenced inode; `d_make_root` consumes it (also on error).
        let dentry = unsafe { bindings::d_make_root(root) };
        if dentry.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `sb` is being filled by us.
        unsafe { (*sb).s_root = dentry };
        Ok(0)
    }
}

/// `kill_sb` of every bento type.
///
/// # Safety
///
/// Called by the VFS on a bento superblock (also one whose `fill_super` failed).
pub(crate) unsafe extern "C" fn kill_sb(sb: *mut bindings::super_block) {
    // SAFETY: `sb` is valid (VFS contract).
    let info = unsafe { (*sb).s_fs_info.cast::<SbInfo>() };
    // SAFETY: As above. Evicting the inodes calls `forget` on the still-mounted instance.
    unsafe {
        if (*sb).s_bdev.is_null() {
            bindings::kill_anon_super(sb)
        } else {
            bindings::kill_block_super(sb)
        }
    };
    if !info.is_null() {
        // SAFETY: `info` was made by `KBox::into_raw` in `fill_super`; the superblock is
        // gone, so nothing else uses it.
        drop(unsafe { KBox::from_raw(info) });
    }
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn statfs(dentry: *mut bindings::dentry, buf: *mut bindings::kstatfs) -> i32 {
    from_result(|| {
        // SAFETY: `dentry` is a live dentry of a mounted bento superblock.
        let (sb, fs) = unsafe { ((*dentry).d_sb, fs_of((*dentry).d_sb)) };
        let req = call::request();
        let mut st = Statfs::default();
        // SAFETY: `st` is valid for writes.
        to_result(fs.call(|ops, inst| unsafe { (ops.statfs)(inst, &req, ROOT_INO, &mut st) }))?;
        // SAFETY: `buf` is valid for writes (VFS contract), `sb` is live.
        let buf = unsafe { &mut *buf };
        buf.f_type = BENTO_MAGIC as _;
        buf.f_bsize = st.bsize as _;
        buf.f_frsize = st.frsize as _;
        buf.f_blocks = st.blocks;
        buf.f_bfree = st.bfree;
        buf.f_bavail = st.bavail;
        buf.f_files = st.files;
        buf.f_ffree = st.ffree;
        buf.f_namelen = st.namelen as _;
        // SAFETY: `sb` is live.
        let dev = unsafe { (*sb).s_dev };
        buf.f_fsid = bindings::__kernel_fsid_t {
            val: [dev as i32, 0],
        };
        Ok(0)
    })
}
