// SPDX-License-Identifier: GPL-2.0
//! Registry: file system name → the implementation (module + ops table) serving it.
//!
//! Each name gets one of a fixed pool of `file_system_type`s with static storage (lockdep
//! keys live in them, and the VFS keeps pointers), `owner` NULL: the framework, not the
//! module, owns the type. Mounts take a reference on the implementation's module instead,
//! so `rmmod` is refused while a superblock uses it. The type is registered while an
//! implementation is loaded; `mount -t NAME` autoloads the module through its `fs-NAME`
//! alias.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::size_of;
use core::sync::atomic::{AtomicPtr, Ordering};

use bento::abi::{self, FsOps};
use kernel::bindings;
use kernel::error::code::*;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::BStr;
use kernel::sync::Mutex;

use crate::{context, superblock};

/// Number of distinct file system names the framework can serve at once.
const MAX_TYPES: usize = 16;
/// Longest file system name, without the NUL.
pub(crate) const NAME_MAX: usize = 31;

/// A `file_system_type` plus its name, in static storage.
///
/// # Invariants
///
/// `fstype` is only written while it is not registered with the VFS, with the registry
/// lock held; `name` is written once, before the first registration, and never changes.
pub(crate) struct TypeCell {
    fstype: UnsafeCell<bindings::file_system_type>,
    name: UnsafeCell<[u8; NAME_MAX + 1]>,
}

// SAFETY: Shared access follows the invariants above (writes only while unregistered,
// under the registry lock); the VFS reads it under its own locks once registered.
unsafe impl Sync for TypeCell {}

impl TypeCell {
    const fn new() -> Self {
        TypeCell {
            // SAFETY: An all-zero `file_system_type` is a valid (unregistered) value.
            fstype: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            name: UnsafeCell::new([0; NAME_MAX + 1]),
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::file_system_type {
        self.fstype.get()
    }

    /// Fills in the type. Only before its first registration.
    fn setup(&self, name: &[u8], flags: i32) {
        // SAFETY: By the type invariants nobody else accesses the cell now.
        unsafe {
            let buf = &mut *self.name.get();
            buf[..name.len()].copy_from_slice(name);
            let t = &mut *self.fstype.get();
            t.name = buf.as_ptr().cast();
            t.fs_flags = flags;
            t.init_fs_context = Some(context::init_fs_context);
            t.kill_sb = Some(superblock::kill_sb);
            t.owner = core::ptr::null_mut();
        }
    }
}

static TYPES: [TypeCell; MAX_TYPES] = [const { TypeCell::new() }; MAX_TYPES];

/// The generic type: `mount -t bento -o fs=NAME`.
static GENERIC: TypeCell = TypeCell::new();

/// One loaded implementation of a file system.
#[derive(Clone, Copy)]
pub(crate) struct Impl {
    pub(crate) ops: &'static FsOps,
    pub(crate) owner: *mut bindings::module,
}

struct Slot {
    name: [u8; NAME_MAX],
    len: usize,
    current: Option<Impl>,
    registered: bool,
}

struct Registry {
    slots: [Slot; MAX_TYPES],
}

// SAFETY: The raw pointers in `Impl` (a static table and a module) are valid from any
// thread; the registry lock serialises access.
unsafe impl Send for Registry {}

static REGISTRY: AtomicPtr<Mutex<Registry>> = AtomicPtr::new(core::ptr::null_mut());

fn registry() -> &'static Mutex<Registry> {
    let p = REGISTRY.load(Ordering::Acquire);
    // SAFETY: `init` stores a leaked, pinned mutex before any file system can register
    // or mount (it runs as an initcall, before user space), and it is never freed.
    unsafe { &*p }
}

/// Creates the registry and registers the generic `bento` type.
pub(crate) fn init() -> Result {
    let reg = KBox::pin_init(
        kernel::new_mutex!(Registry {
            slots: [const {
                Slot {
                    name: [0; NAME_MAX],
                    len: 0,
                    current: None,
                    registered: false,
                }
            }; MAX_TYPES],
        }),
        GFP_KERNEL,
    )?;
    // SAFETY: The mutex is leaked, so it is never moved or freed.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(reg) });
    REGISTRY.store(raw, Ordering::Release);
    GENERIC.setup(b"bento", 0);
    // SAFETY: `GENERIC` is set up and static.
    to_result(unsafe { bindings::register_filesystem(GENERIC.as_ptr()) })
}

/// The slot of a per-fs type, `None` for the generic type.
pub(crate) fn slot_of(fstype: *const bindings::file_system_type) -> Option<usize> {
    TYPES.iter().position(|t| core::ptr::eq(t.as_ptr(), fstype))
}

/// Copies the name served by slot `slot` into `buf`; returns its length.
pub(crate) fn slot_name(slot: usize, buf: &mut [u8; NAME_MAX]) -> usize {
    let reg = registry().lock();
    match reg.slots.get(slot) {
        Some(s) => {
            *buf = s.name;
            s.len
        }
        None => 0,
    }
}

/// Finds the implementation serving `name` and takes a reference on its module.
/// The caller owns the reference (see [`put`]).
pub(crate) fn get(name: &[u8]) -> Option<Impl> {
    let reg = registry().lock();
    let imp = reg
        .slots
        .iter()
        .find(|s| &s.name[..s.len] == name)?
        .current?;
    // SAFETY: `imp.owner` is a live module: it stays registered (so loaded) while the
    // registry lock is held, and unregistration takes the lock.
    if unsafe { bindings::try_module_get(imp.owner) } {
        Some(imp)
    } else {
        None
    }
}

/// Drops a module reference taken by [`get`].
pub(crate) fn put(imp: Impl) {
    // SAFETY: The caller owns a reference taken by `get`.
    unsafe { bindings::module_put(imp.owner) }
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name != b"bento"
        && name
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// Checks that a module's table was built against this framework.
fn check_abi(ops: &FsOps, name: &[u8]) -> Result {
    if ops.abi_version != abi::ABI_VERSION
        || ops.size as usize != size_of::<FsOps>()
        || ops.layout != abi::LAYOUT
    {
        pr_err!(
            "{}: refused: ops ABI {} (size {}, layout {:x}), framework has ABI {} (size {}, layout {:x})\n",
            BStr::from_bytes(name),
            ops.abi_version,
            ops.size,
            ops.layout,
            abi::ABI_VERSION,
            size_of::<FsOps>(),
            abi::LAYOUT
        );
        return Err(ENOEXEC);
    }
    if ops.build_id != abi::BUILD_ID {
        pr_err!(
            "{}: refused: module built against bento build {:016x}, kernel has {:016x}; rebuild the module with this kernel\n",
            BStr::from_bytes(name),
            ops.build_id,
            abi::BUILD_ID
        );
        return Err(ENOEXEC);
    }
    Ok(())
}

/// Reads the NUL-terminated name of a table, at most `NAME_MAX + 1` bytes.
///
/// # Safety
///
/// `ops.name` must point to a NUL-terminated string.
unsafe fn ops_name(ops: &FsOps) -> &[u8] {
    let mut len = 0;
    // SAFETY: The string is NUL-terminated; we stop at the NUL or one past `NAME_MAX`.
    while len <= NAME_MAX && unsafe { *ops.name.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: The first `len` bytes were just read.
    unsafe { core::slice::from_raw_parts(ops.name, len) }
}

fn register(ops: &'static FsOps, owner: *mut bindings::module) -> Result {
    // The leading fields of `FsOps` are stable across ABI versions: check before using
    // the rest.
    if ops.abi_version != abi::ABI_VERSION {
        pr_err!(
            "refused a module with ops ABI {} (framework has {})\n",
            ops.abi_version,
            abi::ABI_VERSION
        );
        return Err(ENOEXEC);
    }
    // SAFETY: The ABI matches, so `name` is the NUL-terminated name `module_fs!` made.
    let name = unsafe { ops_name(ops) };
    if !valid_name(name) {
        pr_err!(
            "refused a file system named '{}': want 1-{} of [a-z0-9_], not \"bento\"\n",
            BStr::from_bytes(name),
            NAME_MAX
        );
        return Err(EINVAL);
    }
    check_abi(ops, name)?;

    let mut reg = registry().lock();
    let idx = match reg.slots.iter().position(|s| &s.name[..s.len] == name) {
        Some(i) => i,
        None => {
            let i = reg.slots.iter().position(|s| s.len == 0).ok_or_else(|| {
                pr_err!(
                    "{}: refused: all {} file system slots in use\n",
                    BStr::from_bytes(name),
                    MAX_TYPES
                );
                ENOSPC
            })?;
            let slot = &mut reg.slots[i];
            slot.name[..name.len()].copy_from_slice(name);
            slot.len = name.len();
            let flags = if ops.flags & abi::FLAG_BLOCK_DEVICE != 0 {
                bindings::FS_REQUIRES_DEV as i32
            } else {
                0
            };
            TYPES[i].setup(name, flags);
            i
        }
    };
    let slot = &mut reg.slots[idx];
    if let Some(cur) = slot.current {
        pr_err!(
            "{}: refused version {}: version {} is loaded and live upgrade is not available yet\n",
            BStr::from_bytes(name),
            ops.version,
            cur.ops.version
        );
        return Err(EBUSY);
    }
    if !slot.registered {
        // SAFETY: The type is set up, static, and not registered (`next` is NULL).
        to_result(unsafe { bindings::register_filesystem(TYPES[idx].as_ptr()) })?;
        slot.registered = true;
    }
    slot.current = Some(Impl { ops, owner });
    pr_info!(
        "{}: version {} registered\n",
        BStr::from_bytes(name),
        ops.version
    );
    Ok(())
}

fn unregister(ops: *const FsOps) {
    let mut reg = registry().lock();
    let Some(idx) = reg
        .slots
        .iter()
        .position(|s| s.current.is_some_and(|c| core::ptr::eq(c.ops, ops)))
    else {
        return;
    };
    let slot = &mut reg.slots[idx];
    slot.current = None;
    if slot.registered {
        // Every superblock holds a reference on the module, so none is left: the type
        // can go until a module registers the name again.
        // SAFETY: The type was registered by `register`.
        unsafe { bindings::unregister_filesystem(TYPES[idx].as_ptr()) };
        slot.registered = false;
    }
    pr_info!(
        "{}: unregistered\n",
        BStr::from_bytes(&slot.name[..slot.len])
    );
}

/// Entry point for file system modules (through `bento::module_fs!`): registers `ops`.
///
/// # Safety
///
/// `ops` must point to a table that stays valid until [`bento_unregister_fs`] is called
/// with it, and `owner` must be the module containing it.
#[no_mangle]
pub(crate) unsafe extern "C" fn bento_register_fs(ops: *const FsOps, owner: *mut c_void) -> i32 {
    // SAFETY: By the caller's guarantee `ops` is valid for the module's lifetime, which
    // outlasts its registration.
    let ops: &'static FsOps = unsafe { &*ops };
    match register(ops, owner.cast()) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Entry point for file system modules: unregisters `ops` (module exit).
///
/// # Safety
///
/// `ops` must have been passed to [`bento_register_fs`] by the same module.
#[no_mangle]
pub(crate) unsafe extern "C" fn bento_unregister_fs(ops: *const FsOps) {
    unregister(ops)
}
