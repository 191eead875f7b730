// SPDX-License-Identifier: GPL-2.0
//! `/sys/fs/bento`: one directory per file system name and one per superblock below it.
//!
//! ```text
//! /sys/fs/bento/NAME/version           current version (new mounts and upgrades)
//!                    module            its module
//!                    build_id          the bento build the framework and modules share
//!                    state_version     its state format
//!                    loaded            every loaded version: "VERSION MODULE" per line
//!                    drain_timeout_ms  how long an upgrade waits for running calls (rw)
//!                    downgrade         write a version: switch to it (loaded) or let
//!                                      it load once although not newer (w)
//!                    MAJ:MIN/version   the version serving this superblock
//!                            module
//!                            calls     calls made into the file system
//!                            upgrades  live upgrades this superblock went through
//!                            last_pause_ns  how long the last one held its calls
//!                            last_drain_ns  the part of it spent waiting for running
//!                                           calls to return
//! ```
//!
//! The directories are plain kobjects; a read looks its node up in the registry by
//! kobject (under the registry lock), so the registry removes a directory only after
//! dropping that lock.

use core::ffi::CStr;
use core::fmt::{self, Write};
use core::ptr::addr_of;
use core::sync::atomic::{AtomicPtr, Ordering};

use bento::abi;
use kernel::bindings;
use kernel::error::code::*;
use kernel::prelude::*;

use crate::call::Table;
use crate::registry::{self, Impl, Node};

/// `/sys/fs/bento`.
static ROOT: AtomicPtr<bindings::kobject> = AtomicPtr::new(core::ptr::null_mut());

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Version,
    Module,
    BuildId,
    StateVersion,
    Loaded,
    DrainMs,
    Downgrade,
    Calls,
    Upgrades,
    LastPause,
    LastDrain,
}

const fn attr(name: &'static CStr, mode: u16, store: bool) -> Table<bindings::kobj_attribute> {
    // SAFETY: An all-zero attribute is valid; the fields that matter are set below.
    let mut a: bindings::kobj_attribute = unsafe { core::mem::zeroed() };
    a.attr.name = name.as_ptr().cast();
    a.attr.mode = mode;
    a.show = Some(show);
    if store {
        a.store = Some(store_fn);
    }
    Table(a)
}

static A_VERSION: Table<bindings::kobj_attribute> = attr(c"version", 0o444, false);
static A_MODULE: Table<bindings::kobj_attribute> = attr(c"module", 0o444, false);
static A_BUILD_ID: Table<bindings::kobj_attribute> = attr(c"build_id", 0o444, false);
static A_STATE: Table<bindings::kobj_attribute> = attr(c"state_version", 0o444, false);
static A_LOADED: Table<bindings::kobj_attribute> = attr(c"loaded", 0o444, false);
static A_DRAIN: Table<bindings::kobj_attribute> = attr(c"drain_timeout_ms", 0o644, true);
static A_DOWNGRADE: Table<bindings::kobj_attribute> = attr(c"downgrade", 0o200, true);
static A_CALLS: Table<bindings::kobj_attribute> = attr(c"calls", 0o444, false);
static A_UPGRADES: Table<bindings::kobj_attribute> = attr(c"upgrades", 0o444, false);
static A_PAUSE: Table<bindings::kobj_attribute> = attr(c"last_pause_ns", 0o444, false);
static A_DRAIN_NS: Table<bindings::kobj_attribute> = attr(c"last_drain_ns", 0o444, false);

static ALL: [(&Table<bindings::kobj_attribute>, Which); 11] = [
    (&A_VERSION, Which::Version),
    (&A_MODULE, Which::Module),
    (&A_BUILD_ID, Which::BuildId),
    (&A_STATE, Which::StateVersion),
    (&A_LOADED, Which::Loaded),
    (&A_DRAIN, Which::DrainMs),
    (&A_DOWNGRADE, Which::Downgrade),
    (&A_CALLS, Which::Calls),
    (&A_UPGRADES, Which::Upgrades),
    (&A_PAUSE, Which::LastPause),
    (&A_DRAIN_NS, Which::LastDrain),
];

const fn a(t: &'static Table<bindings::kobj_attribute>) -> *mut bindings::attribute {
    addr_of!(t.0.attr).cast_mut()
}

static FS_ATTRS: Table<[*mut bindings::attribute; 8]> = Table([
    a(&A_VERSION),
    a(&A_MODULE),
    a(&A_BUILD_ID),
    a(&A_STATE),
    a(&A_LOADED),
    a(&A_DRAIN),
    a(&A_DOWNGRADE),
    core::ptr::null_mut(),
]);

static SB_ATTRS: Table<[*mut bindings::attribute; 7]> = Table([
    a(&A_VERSION),
    a(&A_MODULE),
    a(&A_CALLS),
    a(&A_UPGRADES),
    a(&A_PAUSE),
    a(&A_DRAIN_NS),
    core::ptr::null_mut(),
]);

const fn group(attrs: *const *mut bindings::attribute) -> Table<bindings::attribute_group> {
    // SAFETY: An all-zero group is valid (no name: the attributes go in the directory).
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.attrs = attrs.cast_mut();
    Table(g)
}

static FS_GROUP: Table<bindings::attribute_group> = group(FS_ATTRS.0.as_ptr());
static SB_GROUP: Table<bindings::attribute_group> = group(SB_ATTRS.0.as_ptr());

/// Creates `/sys/fs/bento`.
pub(crate) fn init() -> Result {
    // SAFETY: `fs_kobj` is the kernel's `/sys/fs`; the name is NUL-terminated.
    let root =
        unsafe { bindings::kobject_create_and_add(c"bento".as_ptr().cast(), bindings::fs_kobj) };
    if root.is_null() {
        return Err(ENOMEM);
    }
    ROOT.store(root, Ordering::Release);
    Ok(())
}

/// Makes a directory `name` under `parent` with the attributes of `group`; null (and a
/// log line) on failure: the file system works without it.
fn add(
    parent: *mut bindings::kobject,
    name: &[u8],
    group: &'static Table<bindings::attribute_group>,
) -> *mut bindings::kobject {
    let mut buf = [0u8; 40];
    let Some(dst) = buf.get_mut(..name.len()) else {
        return core::ptr::null_mut();
    };
    dst.copy_from_slice(name);
    if parent.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `buf` is NUL-terminated (it is longer than `name`); `parent` is a live
    // directory of ours.
    let kobj = unsafe { bindings::kobject_create_and_add(buf.as_ptr().cast(), parent) };
    if kobj.is_null() {
        pr_warn!(
            "sysfs: no directory for {}\n",
            kernel::str::BStr::from_bytes(name)
        );
        return kobj;
    }
    // SAFETY: `kobj` is live; the group and its attributes are static.
    if unsafe { bindings::sysfs_create_group(kobj, &group.0) } != 0 {
        pr_warn!(
            "sysfs: no attributes for {}\n",
            kernel::str::BStr::from_bytes(name)
        );
    }
    kobj
}

/// `/sys/fs/bento/NAME`.
pub(crate) fn add_fs(name: &[u8]) -> *mut bindings::kobject {
    add(ROOT.load(Ordering::Acquire), name, &FS_GROUP)
}

/// `/sys/fs/bento/NAME/MAJ:MIN` for a superblock on device `dev`.
pub(crate) fn add_super(parent: *mut bindings::kobject, dev: u32) -> *mut bindings::kobject {
    let mut name = Buf::<24>::default();
    let _ = write!(name, "{}:{}", dev >> 20, dev & 0xf_ffff);
    add(parent, name.bytes(), &SB_GROUP)
}

/// Removes a directory made here (null: nothing). Waits for its readers: never call it
/// with the registry lock held.
pub(crate) fn remove(kobj: *mut bindings::kobject) {
    if !kobj.is_null() {
        // SAFETY: `kobj` came from `kobject_create_and_add`; this drops its reference.
        unsafe { bindings::kobject_put(kobj) };
    }
}

/// A fixed buffer that `write!` fills, truncating.
struct Buf<const N: usize> {
    data: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Buf {
            data: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Buf<N> {
    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl<const N: usize> Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - 1 - self.len.min(N - 1);
        let n = s.len().min(room);
        self.data[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The sysfs page a `show` fills.
struct Page<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Page<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn which(attr: *const bindings::kobj_attribute) -> Option<Which> {
    ALL.iter()
        .find(|(t, _)| core::ptr::eq(&t.0, attr))
        .map(|&(_, w)| w)
}

fn show_impl(p: &mut Page<'_>, imp: Option<Impl>, w: Which) -> fmt::Result {
    match (w, imp) {
        (Which::Version, Some(i)) => writeln!(p, "{}", i.ops.version),
        (Which::Module, Some(i)) => writeln!(p, "{}", i.module_name()),
        (Which::StateVersion, Some(i)) => writeln!(p, "{}", i.ops.state_version),
        (_, None) => writeln!(p, "none"),
        _ => Ok(()),
    }
}

fn fill(p: &mut Page<'_>, node: Node<'_>, w: Which) -> fmt::Result {
    match node {
        Node::Fs {
            current,
            loaded,
            drain_ms,
            ..
        } => match w {
            Which::BuildId => writeln!(p, "{:016x}", abi::BUILD_ID),
            Which::DrainMs => writeln!(p, "{drain_ms}"),
            Which::Loaded => {
                for i in loaded.iter().flatten() {
                    writeln!(p, "{} {}", i.ops.version, i.module_name())?;
                }
                Ok(())
            }
            _ => show_impl(p, current, w),
        },
        Node::Super {
            imp,
            calls,
            upgrades,
            last_pause_ns,
            last_drain_ns,
        } => match w {
            Which::Calls => writeln!(p, "{calls}"),
            Which::Upgrades => writeln!(p, "{upgrades}"),
            Which::LastPause => writeln!(p, "{last_pause_ns}"),
            Which::LastDrain => writeln!(p, "{last_drain_ns}"),
            _ => show_impl(p, Some(imp), w),
        },
    }
}

/// `show` of every attribute.
///
/// # Safety
///
/// Called by sysfs with a live kobject of ours, one of our attributes and a page.
unsafe extern "C" fn show(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *mut u8,
) -> isize {
    let Some(w) = which(attr) else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: sysfs passes a page-sized buffer.
    let page = unsafe { core::slice::from_raw_parts_mut(buf, bindings::PAGE_SIZE) };
    let mut p = Page { buf: page, len: 0 };
    match registry::with_node(kobj, |node| fill(&mut p, node, w)) {
        Ok(_) => p.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Parses a decimal `u32` written to an attribute (a trailing newline allowed).
fn parse_u32(s: &[u8]) -> Option<u32> {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    s.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit()
            .then(|| v.checked_mul(10)?.checked_add(u32::from(c - b'0')))
            .flatten()
    })
}

/// `store` of the writable attributes.
///
/// # Safety
///
/// Called by sysfs with a live kobject of ours, one of our attributes and `count` bytes.
unsafe extern "C" fn store_fn(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *const u8,
    count: usize,
) -> isize {
    // SAFETY: sysfs passes `count` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf, count) };
    let Some(v) = parse_u32(input) else {
        return EINVAL.to_errno() as isize;
    };
    let r = match which(attr) {
        Some(Which::Downgrade) => registry::downgrade(kobj, v),
        Some(Which::DrainMs) if v > 0 => registry::set_drain_ms(kobj, v),
        _ => Err(EINVAL),
    };
    match r {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}
