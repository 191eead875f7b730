// SPDX-License-Identifier: GPL-2.0
//! Registry: file system name → the implementations (module + ops table) loaded for it,
//! the current one, and the mounted superblocks; live upgrade switches them all.
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
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use bento::abi::{self, FsOps, Instance};
use bento::upgrade::Handover;
use kernel::bindings;
use kernel::error::code::*;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::BStr;
use kernel::sync::Mutex;

use crate::call::NoFs;
use crate::superblock::SbInfo;
use crate::{context, superblock, sysfs};

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

impl Impl {
    fn same(&self, other: &Impl) -> bool {
        core::ptr::eq(self.ops, other.ops)
    }

    /// The name of the implementation's module.
    pub(crate) fn module_name(&self) -> &BStr {
        // SAFETY: `owner` is a loaded module while its table is registered; `name` is a
        // NUL-terminated array.
        let name = unsafe { &(*self.owner).name };
        let len = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        // SAFETY: `c_char` is `u8` in the kernel's bindings; `len` is within the array.
        BStr::from_bytes(unsafe { core::slice::from_raw_parts(name.as_ptr().cast(), len) })
    }
}

/// Implementations of one name that may be loaded at once.
const MAX_IMPLS: usize = 4;
/// Default limit on how long an upgrade waits for running calls to return.
const DEFAULT_DRAIN_MS: u32 = 1000;

/// What the registry keeps per superblock (inside its `SbInfo`).
///
/// # Invariants
///
/// `imp`, `slot` and `kobj` are accessed only with the registry lock held, or by the
/// superblock alone once it is detached (`slot` is `None`).
pub(crate) struct Link {
    imp: UnsafeCell<Impl>,
    slot: UnsafeCell<Option<usize>>,
    kobj: UnsafeCell<*mut bindings::kobject>,
    /// The pause of the last one, in nanoseconds.
    pub(crate) last_pause_ns: AtomicU64,
    /// The part of it spent waiting for running calls to return.
    pub(crate) last_drain_ns: AtomicU64,
}

impl Link {
    pub(crate) fn new(imp: Impl) -> Self {
        Link {
            imp: UnsafeCell::new(imp),
            slot: UnsafeCell::new(None),
            kobj: UnsafeCell::new(core::ptr::null_mut()),
            last_pause_ns: AtomicU64::new(0),
            last_drain_ns: AtomicU64::new(0),
        }
    }

    /// The implementation serving the superblock.
    ///
    /// # Safety
    ///
    /// The registry lock is held, or the superblock is detached.
    pub(crate) unsafe fn imp(&self) -> Impl {
        // SAFETY: Per the type invariants and the caller's guarantee, no one writes it.
        unsafe { *self.imp.get() }
    }
}

/// A superblock on a slot's list.
#[derive(Clone, Copy)]
struct Super(*mut SbInfo);

impl Super {
    /// The superblock's `SbInfo`, live while it is on a list (or being attached or
    /// detached by its own superblock).
    fn info<'a>(self) -> &'a SbInfo {
        // SAFETY: Superblocks on a list are live: `detach` takes them off (under the
        // registry lock) before their `SbInfo` goes; `attach` and `detach` are called by
        // the superblock itself.
        unsafe { &*self.0 }
    }

    fn imp(self) -> Impl {
        // SAFETY: Only called with the registry lock held.
        unsafe { self.info().link.imp() }
    }

    fn set_imp(self, imp: Impl) {
        // SAFETY: As above: the registry lock serialises the writes and reads.
        unsafe { *self.info().link.imp.get() = imp };
    }
}

struct Slot {
    name: [u8; NAME_MAX],
    len: usize,
    /// The implementation new mounts get and superblocks run.
    current: Option<Impl>,
    /// Every registered implementation, `current` included.
    loaded: [Option<Impl>; MAX_IMPLS],
    registered: bool,
    /// The live superblocks.
    supers: KVec<Super>,
    /// A version the administrator allowed to load although not newer (sysfs).
    downgrade_to: u32,
    drain_ms: u32,
    /// `/sys/fs/bento/NAME`.
    kobj: *mut bindings::kobject,
}

impl Slot {
    fn name(&self) -> &BStr {
        BStr::from_bytes(&self.name[..self.len])
    }
}

struct Registry {
    slots: KVec<Slot>,
}

// SAFETY: The raw pointers in `Impl` (a static table and a module), the superblocks and
// the kobjects are valid from any thread; the registry lock serialises access.
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
    let mut slots = KVec::with_capacity(MAX_TYPES, GFP_KERNEL)?;
    for _ in 0..MAX_TYPES {
        slots.push(
            Slot {
                name: [0; NAME_MAX],
                len: 0,
                current: None,
                loaded: [None; MAX_IMPLS],
                registered: false,
                supers: KVec::new(),
                downgrade_to: 0,
                drain_ms: DEFAULT_DRAIN_MS,
                kobj: core::ptr::null_mut(),
            },
            GFP_KERNEL,
        )?;
    }
    let reg = KBox::pin_init(kernel::new_mutex!(Registry { slots }), GFP_KERNEL)?;
    // SAFETY: The mutex is leaked, so it is never moved or freed.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(reg) });
    REGISTRY.store(raw, Ordering::Release);
    sysfs::init()?;
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
        .find(|s| s.len > 0 && &s.name[..s.len] == name)?
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

/// Puts a mounted superblock on its file system's list (end of `fill_super`), so that
/// upgrades switch it and sysfs shows it. If the file system was upgraded while this
/// one was being mounted with the old version, it is switched now.
///
/// # Safety
///
/// `info` is the live `SbInfo` of a superblock whose instance is mounted; it calls
/// [`detach`] before it goes.
pub(crate) unsafe fn attach(info: *mut SbInfo) -> Result {
    let sup = Super(info);
    let mut reg = registry().lock();
    let idx = slot_index(&reg, sup.imp().ops).ok_or(ENOENT)?;
    let slot = &mut reg.slots[idx];
    let current = slot.current.ok_or(ENOENT)?;
    if !current.same(&sup.imp()) {
        switch(slot.name(), &[sup], current, slot.drain_ms)?;
    }
    slot.supers.push(sup, GFP_KERNEL)?;
    let sb = sup.info().fs.sb;
    // SAFETY: `sb` is the live superblock of `info`.
    let dev = unsafe { (*sb).s_dev };
    let kobj = sysfs::add_super(slot.kobj, dev);
    // SAFETY: The registry lock is held (the `Link` invariant).
    unsafe {
        *sup.info().link.slot.get() = Some(idx);
        *sup.info().link.kobj.get() = kobj;
    }
    Ok(())
}

/// Takes a superblock off its file system's list (unmount). Idempotent.
///
/// # Safety
///
/// `info` is a live `SbInfo`.
pub(crate) unsafe fn detach(info: *mut SbInfo) {
    let kobj = {
        let mut reg = registry().lock();
        let link = &Super(info).info().link;
        // SAFETY: The registry lock is held (the `Link` invariant).
        let Some(idx) = (unsafe { (*link.slot.get()).take() }) else {
            return;
        };
        let supers = &mut reg.slots[idx].supers;
        if let Some(i) = supers.iter().position(|s| s.0 == info) {
            let last = supers.len() - 1;
            supers.as_mut_slice().swap(i, last);
            // SAFETY: `last < len`; the dropped element is `Copy` (a pointer).
            unsafe { supers.set_len(last) };
        }
        // SAFETY: As above.
        unsafe { core::mem::replace(&mut *link.kobj.get(), core::ptr::null_mut()) }
    };
    // Outside the lock: removing the directory waits for its readers, which take it.
    sysfs::remove(kobj);
}

/// The slot in which table `ops` is loaded.
fn slot_index(reg: &Registry, ops: *const FsOps) -> Option<usize> {
    reg.slots
        .iter()
        .position(|s| s.loaded.iter().flatten().any(|i| core::ptr::eq(i.ops, ops)))
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
    if !core::ptr::eq(ops.anchor, &abi::ANCHOR) {
        pr_err!(
            "{}: refused: module linked to another copy of bento\n",
            BStr::from_bytes(name)
        );
        return Err(ENOEXEC);
    }
    Ok(())
}

/// Checks that superblocks running `from` can switch to `to`.
fn check_switch(name: &BStr, from: &FsOps, to: &FsOps) -> Result {
    if from.flags != to.flags {
        pr_err!(
            "{}: refused version {}: flags {:#x} differ from version {}'s {:#x}\n",
            name,
            to.version,
            to.flags,
            from.version,
            from.flags
        );
        return Err(EINVAL);
    }
    if from.state_version == 0 || to.state_version == 0 {
        pr_err!(
            "{}: refused version {}: version {} cannot hand over its state (no STATE_VERSION); unmount first\n",
            name,
            to.version,
            if from.state_version == 0 { from.version } else { to.version }
        );
        return Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)));
    }
    if !(to.state_compat..=to.state_version).contains(&from.state_version) {
        pr_err!(
            "{}: refused version {}: it reads state formats {}..={}, version {} writes {}\n",
            name,
            to.version,
            to.state_compat,
            to.state_version,
            from.version,
            from.state_version
        );
        return Err(Error::from_errno(-(bindings::EPROTO as i32)));
    }
    Ok(())
}

/// A superblock being switched.
struct Step {
    sup: Super,
    from: Impl,
    old: Instance,
    new: Instance,
    exported: bool,
}

/// Switches `supers` to `to`, all or none (DESIGN.md §5): takes module references,
/// closes every gate, waits up to `drain_ms` for the calls inside to return, hands each
/// instance's state from its implementation to `to`, installs the new instances and
/// opens the gates; then drops the old instances and their module references. On any
/// failure every superblock resumes on its old instance. Called with the registry lock
/// held.
fn switch(name: &BStr, supers: &[Super], to: Impl, drain_ms: u32) -> Result {
    for sup in supers {
        check_switch(name, sup.imp().ops, to.ops)?;
    }
    let mut steps = KVec::with_capacity(supers.len(), GFP_KERNEL)?;
    for sup in supers {
        steps.push(
            Step {
                sup: *sup,
                from: sup.imp(),
                old: sup.info().fs.instance(),
                new: core::ptr::null_mut(),
                exported: false,
            },
            GFP_KERNEL,
        )?;
    }
    for refs in 0..supers.len() {
        // SAFETY: `to.owner` is a registered module (registration holds the lock).
        if !unsafe { bindings::try_module_get(to.owner) } {
            for _ in 0..refs {
                put(to);
            }
            pr_err!("{}: version {} is going away\n", name, to.ops.version);
            return Err(ENOENT);
        }
    }
    let put_refs = || {
        for _ in supers {
            put(to);
        }
    };
    let open_all = || {
        for s in supers {
            s.info().fs.gate.open();
        }
    };

    // Commit first (DESIGN.md §5.3): right after, no transaction is being written, so
    // the calls the gate drains rarely wait for journal I/O (a buffer of the committing
    // transaction), and the pause is shorter.
    for s in supers {
        // SAFETY: The superblock is live (on the list), its journal loaded if set.
        unsafe {
            let journal = superblock::journal_of(s.info().fs.sb);
            if !journal.is_null() {
                bindings::jbd2_journal_force_commit(journal);
            }
        }
    }
    // SAFETY: Always safe.
    let start = unsafe { bindings::ktime_get() };
    for s in supers {
        s.info().fs.gate.close();
    }
    for s in supers {
        // SAFETY: Always safe.
        let elapsed_ms = (unsafe { bindings::ktime_get() } - start) / 1_000_000;
        let left = u32::try_from(i64::from(drain_ms) - elapsed_ms).unwrap_or(0);
        // SAFETY: Always safe.
        let jiffies = unsafe { bindings::bento_msecs_to_jiffies(left) };
        if !s
            .info()
            .fs
            .gate
            .drain(jiffies.try_into().unwrap_or(isize::MAX))
        {
            open_all();
            put_refs();
            pr_err!(
                "{}: upgrade to version {} refused: a call into the file system did not return within {} ms (drain_timeout_ms)\n",
                name,
                to.ops.version,
                drain_ms
            );
            return Err(EBUSY);
        }
    }

    // SAFETY: Always safe.
    let drained = unsafe { bindings::ktime_get() };
    let mut failure = 0;
    for step in steps.iter_mut() {
        let mut state: *mut Handover = core::ptr::null_mut();
        let r = {
            let _nofs = NoFs::enter();
            // SAFETY: The gate is drained: no call runs on `old`, a live instance of
            // `from`; `state` is valid for writes.
            unsafe { (step.from.ops.export_state)(step.old, &mut state) }
        };
        if r != 0 {
            failure = r;
            break;
        }
        step.exported = true;
        let mut new: Instance = core::ptr::null_mut();
        let r = {
            let _nofs = NoFs::enter();
            // SAFETY: `state` came from `export_state` and is consumed; `new` is valid
            // for writes.
            unsafe { (to.ops.import_state)(state, &mut new) }
        };
        if r != 0 {
            failure = r;
            break;
        }
        step.new = new;
    }
    if failure != 0 {
        for step in steps.iter() {
            let _nofs = NoFs::enter();
            if !step.new.is_null() {
                // SAFETY: `new` is an instance of `to` nothing else knows of.
                unsafe { (to.ops.unmount)(step.new) };
            }
            if step.exported {
                // SAFETY: `old` is live and its gate still closed.
                unsafe { (step.from.ops.resume)(step.old) };
            }
        }
        open_all();
        put_refs();
        pr_err!(
            "{}: upgrade to version {} failed ({}): every superblock stays on its version\n",
            name,
            to.ops.version,
            Error::from_errno(failure).to_errno()
        );
        return Err(Error::from_errno(failure));
    }

    for step in steps.iter() {
        // SAFETY: The gate is closed and drained, `to` is referenced for this
        // superblock (above) and `new` was made by it.
        unsafe { step.sup.info().fs.swap(to.ops, step.new) };
        step.sup.set_imp(to);
    }
    // SAFETY: Always safe.
    let pause = u64::try_from(unsafe { bindings::ktime_get() } - start).unwrap_or(0);
    for step in steps.iter() {
        let link = &step.sup.info().link;
        link.last_pause_ns.store(pause, Ordering::Relaxed);
        link.last_drain_ns.store(
            u64::try_from(drained - start).unwrap_or(0),
            Ordering::Relaxed,
        );
        step.sup.info().fs.gate.open();
    }
    for step in steps.iter() {
        {
            let _nofs = NoFs::enter();
            // SAFETY: Nothing refers to `old` any more: the superblock runs `new`.
            unsafe { (step.from.ops.unmount)(step.old) };
        }
        put(step.from);
    }
    if let Some(first) = steps.first() {
        pr_info!(
            "{}: {} superblock(s) switched from version {} ({}) to {} ({}) in {} ns (drain {} ns)\n",
            name,
            steps.len(),
            first.from.ops.version,
            first.from.module_name(),
            to.ops.version,
            to.module_name(),
            pause,
            drained - start
        );
    }
    Ok(())
}

/// Switches every superblock of `slot` to `to` and makes it current.
fn switch_slot(slot: &mut Slot, to: Impl) -> Result {
    let supers = core::mem::take(&mut slot.supers);
    let r = switch(slot.name(), &supers, to, slot.drain_ms);
    let idle = supers.is_empty();
    slot.supers = supers;
    r?;
    if idle {
        pr_info!(
            "{}: version {} ({}) is current (nothing mounted)\n",
            slot.name(),
            to.ops.version,
            to.module_name()
        );
    }
    slot.current = Some(to);
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
    let imp = Impl { ops, owner };

    let mut reg = registry().lock();
    let idx = match reg
        .slots
        .iter()
        .position(|s| s.len > 0 && &s.name[..s.len] == name)
    {
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
    let free = slot
        .loaded
        .iter()
        .position(Option::is_none)
        .ok_or_else(|| {
            pr_err!(
                "{}: refused version {}: {} versions are loaded already\n",
                slot.name(),
                ops.version,
                MAX_IMPLS
            );
            EBUSY
        })?;
    if let Some(cur) = slot.current {
        if cur.ops.flags != ops.flags {
            check_switch(slot.name(), cur.ops, ops)?;
        }
        let allowed = ops.version > cur.ops.version || slot.downgrade_to == ops.version;
        if !allowed {
            pr_err!(
                "{}: refused version {} ({}): version {} runs; load only newer versions, or allow a downgrade with 'echo {} > /sys/fs/bento/{}/downgrade'\n",
                slot.name(),
                ops.version,
                imp.module_name(),
                cur.ops.version,
                ops.version,
                slot.name()
            );
            return Err(EPERM);
        }
        switch_slot(slot, imp)?;
        slot.downgrade_to = 0;
    } else {
        slot.current = Some(imp);
    }
    slot.loaded[free] = Some(imp);
    if slot.kobj.is_null() {
        slot.kobj = sysfs::add_fs(name);
    }
    if !slot.registered {
        // SAFETY: The type is set up, static, and not registered (`next` is NULL).
        let r = to_result(unsafe { bindings::register_filesystem(TYPES[idx].as_ptr()) });
        if let Err(e) = r {
            slot.loaded[free] = None;
            slot.current = None;
            return Err(e);
        }
        slot.registered = true;
    }
    pr_info!(
        "{}: version {} ({}) registered\n",
        slot.name(),
        ops.version,
        imp.module_name()
    );
    Ok(())
}

fn unregister(ops: *const FsOps) {
    let kobj = {
        let mut reg = registry().lock();
        let Some(idx) = slot_index(&reg, ops) else {
            return;
        };
        let slot = &mut reg.slots[idx];
        for l in slot.loaded.iter_mut() {
            if l.is_some_and(|i| core::ptr::eq(i.ops, ops)) {
                *l = None;
            }
        }
        pr_info!("{}: a version was unloaded\n", slot.name());
        if !slot.current.is_some_and(|c| core::ptr::eq(c.ops, ops)) {
            return;
        }
        // Every superblock references its module, so none runs the current version:
        // new mounts get the newest loaded version, if any.
        slot.current = slot
            .loaded
            .iter()
            .flatten()
            .copied()
            .max_by_key(|i| i.ops.version);
        if slot.current.is_some() {
            return;
        }
        if slot.registered {
            // SAFETY: The type was registered by `register`.
            unsafe { bindings::unregister_filesystem(TYPES[idx].as_ptr()) };
            slot.registered = false;
        }
        pr_info!("{}: unregistered\n", slot.name());
        core::mem::replace(&mut slot.kobj, core::ptr::null_mut())
    };
    sysfs::remove(kobj);
}

/// What a sysfs directory of the registry is.
pub(crate) enum Node<'a> {
    /// `/sys/fs/bento/NAME`.
    Fs {
        current: Option<Impl>,
        loaded: &'a [Option<Impl>],
        drain_ms: u32,
    },
    /// `/sys/fs/bento/NAME/MAJ:MIN`.
    Super {
        imp: Impl,
        calls: u64,
        upgrades: usize,
        last_pause_ns: u64,
        last_drain_ns: u64,
    },
}

/// Runs `f` on the registry node of sysfs directory `kobj`, with the registry lock
/// held; `ENODEV` if it is gone.
pub(crate) fn with_node<R>(
    kobj: *mut bindings::kobject,
    f: impl FnOnce(Node<'_>) -> R,
) -> Result<R> {
    let reg = registry().lock();
    for slot in reg.slots.iter() {
        if slot.len == 0 {
            continue;
        }
        if slot.kobj == kobj {
            return Ok(f(Node::Fs {
                current: slot.current,
                loaded: &slot.loaded,
                drain_ms: slot.drain_ms,
            }));
        }
        for sup in slot.supers.iter() {
            let info = sup.info();
            // SAFETY: The registry lock is held (the `Link` invariant).
            if unsafe { *info.link.kobj.get() } == kobj {
                return Ok(f(Node::Super {
                    imp: sup.imp(),
                    calls: info.fs.calls.load(Ordering::Relaxed),
                    upgrades: info.fs.generation(),
                    last_pause_ns: info.link.last_pause_ns.load(Ordering::Relaxed),
                    last_drain_ns: info.link.last_drain_ns.load(Ordering::Relaxed),
                }));
            }
        }
    }
    Err(ENODEV)
}

/// sysfs `downgrade`: switches the file system of directory `kobj` to the loaded
/// `version`, or, if it is not loaded, lets a module of that version load once.
pub(crate) fn downgrade(kobj: *mut bindings::kobject, version: u32) -> Result {
    let mut reg = registry().lock();
    let slot = slot_of_kobj(&mut reg, kobj)?;
    let target = slot
        .loaded
        .iter()
        .flatten()
        .copied()
        .find(|i| i.ops.version == version);
    match target {
        Some(t) if slot.current.is_some_and(|c| c.same(&t)) => Ok(()),
        Some(t) => {
            pr_info!(
                "{}: switching to version {} ({}) as asked through sysfs\n",
                slot.name(),
                version,
                t.module_name()
            );
            switch_slot(slot, t)
        }
        None => {
            slot.downgrade_to = version;
            pr_info!(
                "{}: version {} may load although not newer (asked through sysfs)\n",
                slot.name(),
                version
            );
            Ok(())
        }
    }
}

/// sysfs `drain_timeout_ms`.
pub(crate) fn set_drain_ms(kobj: *mut bindings::kobject, ms: u32) -> Result {
    let mut reg = registry().lock();
    slot_of_kobj(&mut reg, kobj)?.drain_ms = ms;
    Ok(())
}

/// The slot whose sysfs directory is `kobj`.
fn slot_of_kobj(reg: &mut Registry, kobj: *mut bindings::kobject) -> Result<&mut Slot> {
    reg.slots
        .iter_mut()
        .find(|s| s.len > 0 && s.kobj == kobj)
        .ok_or(ENODEV)
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
