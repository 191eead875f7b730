// SPDX-License-Identifier: GPL-2.0
//! Inodes: the VFS inode cache keyed by the file system's inode numbers, and the inode
//! operations (`lookup`, `getattr`).
//!
//! The VFS inode is the framework's: a file system sees an inode number and gets one
//! `forget` when the inode is evicted (not one per lookup).

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use bento::abi::FLAG_BLOCK_DEVICE;
use bento::{Attr, Entry, Errno, FileType};
use kernel::bindings;
use kernel::error::to_result;
use kernel::prelude::*;

use crate::call::{self, Fs};
use crate::mapcache::MapCache;
use crate::superblock::{fs_of, journal_of};
use crate::{data, dir, file, namei, xattr};

/// The framework's inode: the VFS inode plus what the framework keeps per inode.
///
/// # Invariants
///
/// Allocated only by [`alloc_inode`] from [`INODE_CACHE`]; `jinode` is initialised for
/// `vfs` (`jbd2_journal_init_jbd_inode`) before the inode is used.
#[repr(C)]
pub(crate) struct BentoInode {
    /// data=ordered tracking of this inode's data in jbd2 transactions.
    pub(crate) jinode: bindings::jbd2_inode,
    /// The size the file system has recorded (for regular files of block file systems,
    /// the VFS size leads: writes grow it, `dirty_inode` passes it on).
    pub(crate) disk_size: AtomicU64,
    /// Blocks `write_begin` just allocated, as a bit mask from block `new_first`, so
    /// that `get_block` marks their buffers new (serialised by `i_rwsem`).
    pub(crate) new_blocks: AtomicU64,
    /// See `new_blocks`.
    pub(crate) new_first: AtomicU64,
    /// The end (in bytes) of the buffered write in progress, 0 if none (written under
    /// `i_rwsem`): the write allocates blocks up to it at once, and records the size
    /// (`attr::record_size`) when it is done, not at each page.
    pub(crate) writing_to: AtomicU64,
    /// File blocks `[fresh_from, fresh_end)` were mapped ahead by the buffered write in
    /// progress (`data::premap`), which has not copied its data there yet: their disk
    /// blocks hold garbage, so reads take them for holes. Written under `i_rwsem`.
    pub(crate) fresh_from: AtomicU64,
    /// See `fresh_from`.
    pub(crate) fresh_end: AtomicU64,
    /// The fresh window is one folio's (`data::prepare`), closed by its `write_end`.
    pub(crate) fresh_folio: AtomicBool,
    /// The write in progress must record the attributes at its end: it allocated blocks
    /// ahead, past the recorded size, or `dirty_inode` left times to it.
    pub(crate) record: AtomicBool,
    /// The superblock's upgrade generation + 1 when the VFS attributes were last taken
    /// from the file system and nothing changed them behind the VFS since; 0: stale
    /// (see [`getattr`]).
    pub(crate) attr_valid: AtomicUsize,
    /// The last mapped run of a block-backed regular file (`data::map`).
    pub(crate) map: MapCache,
    /// The VFS inode.
    pub(crate) vfs: bindings::inode,
}

/// The slab cache of [`BentoInode`]s, created once at boot.
static INODE_CACHE: AtomicPtr<bindings::kmem_cache> = AtomicPtr::new(core::ptr::null_mut());

/// Creates the inode cache (at framework init).
pub(crate) fn init_cache() -> Result {
    // SAFETY: The name is a static NUL-terminated string; `inode_init_once_ctor` is a
    // valid constructor for objects of this size.
    let cache = unsafe {
        bindings::bento_inode_cache_create(
            c"bento_inode_cache".as_ptr().cast(),
            core::mem::size_of::<BentoInode>() as u32,
            Some(inode_init_once_ctor),
        )
    };
    if cache.is_null() {
        return Err(ENOMEM);
    }
    INODE_CACHE.store(cache, Ordering::Release);
    Ok(())
}

/// # Safety
///
/// Called by the slab allocator on a new object of [`INODE_CACHE`].
unsafe extern "C" fn inode_init_once_ctor(p: *mut core::ffi::c_void) {
    let bi = p.cast::<BentoInode>();
    // SAFETY: `p` is an object of the cache, so a `BentoInode`-sized allocation.
    unsafe { bindings::inode_init_once(core::ptr::addr_of_mut!((*bi).vfs)) };
}

/// The container of a VFS inode.
///
/// # Safety
///
/// `inode` must be an inode of a bento superblock (so allocated by [`alloc_inode`]).
pub(crate) unsafe fn container<'a>(inode: *const bindings::inode) -> &'a BentoInode {
    let off = core::mem::offset_of!(BentoInode, vfs);
    // SAFETY: By the caller's guarantee `inode` is the `vfs` field of a `BentoInode`.
    unsafe { &*inode.cast::<u8>().sub(off).cast::<BentoInode>() }
}

/// `alloc_inode`.
///
/// # Safety
///
/// Called by the VFS for a bento superblock.
pub(crate) unsafe extern "C" fn alloc_inode(
    sb: *mut bindings::super_block,
) -> *mut bindings::inode {
    let cache = INODE_CACHE.load(Ordering::Acquire);
    // SAFETY: `cache` was created at init; `sb` is live.
    let bi = unsafe { bindings::bento_alloc_inode_sb(sb, cache) }.cast::<BentoInode>();
    if bi.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `bi` is a fresh object of the cache; the VFS part was set up by the
    // constructor and is finished by `inode_init_always` after we return.
    unsafe {
        let vfs = core::ptr::addr_of_mut!((*bi).vfs);
        // INVARIANT: `jinode` is initialised for this inode.
        bindings::jbd2_journal_init_jbd_inode(core::ptr::addr_of_mut!((*bi).jinode), vfs);
        core::ptr::addr_of_mut!((*bi).disk_size).write(AtomicU64::new(0));
        core::ptr::addr_of_mut!((*bi).new_blocks).write(AtomicU64::new(0));
        core::ptr::addr_of_mut!((*bi).new_first).write(AtomicU64::new(0));
        core::ptr::addr_of_mut!((*bi).writing_to).write(AtomicU64::new(0));
        core::ptr::addr_of_mut!((*bi).fresh_from).write(AtomicU64::new(0));
        core::ptr::addr_of_mut!((*bi).fresh_end).write(AtomicU64::new(0));
        core::ptr::addr_of_mut!((*bi).fresh_folio).write(AtomicBool::new(false));
        core::ptr::addr_of_mut!((*bi).record).write(AtomicBool::new(false));
        core::ptr::addr_of_mut!((*bi).attr_valid).write(AtomicUsize::new(0));
        // INVARIANT: `map` is initialised for this inode. Its initialiser cannot fail.
        let _ = MapCache::new().__pinned_init(core::ptr::addr_of_mut!((*bi).map));
        vfs
    }
}

/// `free_inode` (after an RCU grace period).
///
/// # Safety
///
/// Called by the VFS with an inode made by [`alloc_inode`].
pub(crate) unsafe extern "C" fn free_inode(inode: *mut bindings::inode) {
    // SAFETY: By the caller's guarantee `inode` sits in a `BentoInode` of the cache.
    unsafe {
        let bi = (container(inode) as *const BentoInode).cast_mut();
        bindings::kmem_cache_free(INODE_CACHE.load(Ordering::Acquire), bi.cast());
    }
}

/// Whether the superblock's file system serves data from a block device.
///
/// # Safety
///
/// `sb` must be a mounted bento superblock.
pub(crate) unsafe fn block_backed(sb: *const bindings::super_block) -> bool {
    // SAFETY: By the caller's guarantee.
    unsafe { fs_of(sb) }.flags & FLAG_BLOCK_DEVICE != 0
}

/// The file system instance that owns `inode`.
///
/// # Safety
///
/// `inode` must be a live inode of a mounted bento superblock.
pub(crate) unsafe fn fs<'a>(inode: *const bindings::inode) -> &'a Fs {
    // SAFETY: By the caller's guarantee.
    unsafe { fs_of((*inode).i_sb) }
}

/// Copies `attr` into the VFS inode. The size is left alone when `keep_size` is set
/// (regular files of block file systems, whose VFS size leads).
///
/// # Safety
///
/// `inode` must be valid, and new or locked against concurrent attribute updates.
unsafe fn set_attr(inode: *mut bindings::inode, attr: &Attr, keep_size: bool) {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let i = &mut *inode;
        i.i_mode = attr.mode() as _;
        bindings::i_uid_write(inode, attr.uid);
        bindings::i_gid_write(inode, attr.gid);
        bindings::set_nlink(inode, attr.nlink);
        if !keep_size {
            bindings::i_size_write(inode, attr.size as i64);
        }
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
        set_attr(inode, attr, false);
        container(inode)
            .disk_size
            .store(attr.size, Ordering::Relaxed);
        mark_valid(inode);
        let block = block_backed(sb);
        let i = &mut *inode;
        match attr.kind {
            FileType::Directory => {
                i.i_op = &dir::DIR_INODE_OPS;
                i.__bindgen_anon_3.i_fop = &dir::DIR_FILE_OPS.0;
            }
            FileType::RegularFile if block => {
                i.i_op = &file::FILE_INODE_OPS;
                i.__bindgen_anon_3.i_fop = &file::BLOCK_FILE_OPS.0;
                (*i.i_mapping).a_ops = &data::BLOCK_AOPS;
            }
            FileType::RegularFile => {
                i.i_op = &file::FILE_INODE_OPS;
                i.__bindgen_anon_3.i_fop = &file::FILE_FILE_OPS.0;
                (*i.i_mapping).a_ops = &file::FILE_AOPS;
            }
            FileType::Symlink => {
                i.i_op = &namei::SYMLINK_INODE_OPS;
            }
            _ => {
                i.i_op = &file::SPECIAL_INODE_OPS;
                let rdev = bindings::bento_decode_dev(attr.rdev);
                bindings::init_special_inode(inode, attr.mode() as _, rdev);
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
        let journal = journal_of((*inode).i_sb);
        if !journal.is_null() {
            // Waits until no committing transaction still writes this inode's data.
            let jinode = core::ptr::addr_of!(container(inode).jinode).cast_mut();
            bindings::jbd2_journal_release_jbd_inode(journal, jinode);
        }
        bindings::clear_inode(inode);
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.forget)(fs, ino));
    }
}

/// Turns a `lookup` answer into a dentry result.
fn splice(dentry: *mut bindings::dentry, inode: *mut bindings::inode) -> *mut bindings::dentry {
    // SAFETY: `dentry` is the lookup's dentry; `inode` is null (negative entry) or a
    // referenced inode whose reference `d_splice_alias` takes.
    unsafe {
        crate::dentry::mark_current(dentry);
        bindings::d_splice_alias(inode, dentry)
    }
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
    // SAFETY: `dir` is a live inode; `name` is valid for `len` bytes.
    match unsafe { fs_lookup(dir, name, len as usize) } {
        Ok(None) => splice(dentry, core::ptr::null_mut()),
        // SAFETY: `dir` is live.
        Ok(Some(entry)) => match iget(unsafe { (*dir).i_sb }, &entry.attr) {
            Ok(inode) => splice(dentry, inode),
            Err(e) => e.to_ptr(),
        },
        Err(e) => e.to_ptr(),
    }
}

/// Asks the file system for `name` in directory `dir`: `None` if it does not exist.
///
/// # Safety
///
/// `dir` is a live inode of a mounted bento superblock; `name` is valid for `len` bytes.
pub(crate) unsafe fn fs_lookup(
    dir: *mut bindings::inode,
    name: *const u8,
    len: usize,
) -> Result<Option<Entry>> {
    let req = call::request();
    let mut entry = core::mem::MaybeUninit::<Entry>::uninit();
    // SAFETY: By the caller's guarantee; `entry` is writable.
    let ret = unsafe {
        let ino = (*dir).i_ino as u64;
        fs(dir).call(|ops, fs| (ops.lookup)(fs, &req, ino, name, len, entry.as_mut_ptr()))
    };
    if ret == Errno::ENOENT.to_kernel() {
        return Ok(None);
    }
    to_result(ret)?;
    // SAFETY: `lookup` returned 0, so it wrote `entry`.
    Ok(Some(unsafe { entry.assume_init() }))
}

/// Marks the VFS attributes of `inode` as current.
///
/// # Safety
///
/// `inode` is a live bento inode.
unsafe fn mark_valid(inode: *mut bindings::inode) {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let gen = fs(inode).generation().wrapping_add(1);
        container(inode).attr_valid.store(gen, Ordering::Release);
    }
}

/// Marks the VFS attributes of `inode` as stale: the file system changed some (its
/// block count, its ctime) behind the VFS; the next `getattr` asks it.
pub(crate) fn invalidate(inode: *mut bindings::inode) {
    // SAFETY: `inode` is a live bento inode (all callers hold one).
    unsafe { container(inode).attr_valid.store(0, Ordering::Release) };
}

/// Refreshes the VFS inode from the file system's attributes.
pub(crate) fn refresh(inode: *mut bindings::inode) -> Result {
    let req = call::request();
    let mut attr = core::mem::MaybeUninit::<Attr>::uninit();
    // Valid from before the call on: a change made meanwhile marks it stale again.
    // SAFETY: `inode` is live.
    unsafe { mark_valid(inode) };
    // SAFETY: `inode` is live; `attr` is writable.
    to_result(unsafe {
        let ino = (*inode).i_ino as u64;
        fs(inode).call(|ops, fs| (ops.getattr)(fs, &req, ino, attr.as_mut_ptr()))
    })
    .inspect_err(|_| invalidate(inode))?;
    // SAFETY: `getattr` returned 0, so it wrote `attr`.
    let attr = unsafe { attr.assume_init() };
    // The kind of an inode never changes; a file system claiming otherwise is corrupt.
    // SAFETY: `inode` is live.
    if attr.mode() & 0o170000 != u32::from(unsafe { (*inode).i_mode }) & 0o170000 {
        return Err(EIO);
    }
    // SAFETY: Attribute updates from the file system are whole-inode snapshots; the
    // VFS tolerates concurrent readers of these fields (as FUSE does).
    unsafe { update(inode, &attr) };
    Ok(())
}

/// Copies attributes the file system returned into a live VFS inode.
///
/// # Safety
///
/// `inode` must be a live bento inode.
pub(crate) unsafe fn update(inode: *mut bindings::inode, attr: &Attr) {
    // SAFETY: By the caller's guarantee.
    unsafe {
        let keep_size = block_backed((*inode).i_sb) && attr.kind == FileType::RegularFile;
        set_attr(inode, attr, keep_size);
    }
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
    // A block file system changes only through the VFS, which keeps the inode up to
    // date, except for what the framework marks stale (block allocation, xattrs) and a
    // live upgrade: no call for the rest. Others (hello, network file systems) are asked
    // every time.
    // SAFETY: `inode` is live.
    let cached = unsafe {
        block_backed((*inode).i_sb)
            && container(inode).attr_valid.load(Ordering::Acquire)
                == fs(inode).generation().wrapping_add(1)
    };
    if !cached {
        if let Err(e) = refresh(inode) {
            return e.to_errno();
        }
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
    ops.setattr = Some(crate::attr::setattr);
    ops.listxattr = Some(xattr::listxattr);
    ops.create = Some(namei::create);
    ops.mknod = Some(namei::mknod);
    ops.mkdir = Some(namei::mkdir);
    ops.unlink = Some(namei::unlink);
    ops.rmdir = Some(namei::rmdir);
    ops.symlink = Some(namei::symlink);
    ops.rename = Some(namei::rename);
    ops.link = Some(namei::link);
    ops
}
