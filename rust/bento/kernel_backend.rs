// SPDX-License-Identifier: GPL-2.0
//! Kernel backend: allocation, logging and module registration with fs/bento, and the
//! kernel halves of the `collections` and `sync` services.

pub(crate) mod block;
pub(crate) mod btree_map;
pub(crate) mod journal;
pub(crate) mod rwsem;
pub(crate) mod vec;

use core::ffi::c_void;
use core::fmt;

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::print::{call_printk, format_strings};

use crate::abi::FsOps;
use crate::errno::{Errno, Result};
use crate::log::Level;

pub(crate) fn box_into_raw<T>(v: T) -> Result<*mut T> {
    KBox::new(v, GFP_KERNEL)
        .map(KBox::into_raw)
        .map_err(|_| Errno::ENOMEM)
}

/// # Safety
///
/// `p` must come from [`box_into_raw`] and not be used afterwards.
pub(crate) unsafe fn drop_raw<T>(p: *mut T) {
    // SAFETY: By the caller's guarantee `p` is an owned `KBox` pointer.
    drop(unsafe { KBox::from_raw(p) })
}

/// The kernel's `crc32c` (`<linux/crc32c.h>`) over `data`, in pieces its `unsigned int`
/// length can hold.
#[inline]
pub(crate) fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    const MAX: usize = u32::MAX as usize;
    for piece in data.chunks(MAX) {
        let len = u32::try_from(piece.len()).unwrap_or(u32::MAX);
        // SAFETY: `piece` is valid for reads of `len` bytes; `crc32c` only reads them.
        crc = unsafe { kernel::bindings::crc32c(crc, piece.as_ptr().cast(), len) };
    }
    crc
}

pub(crate) fn log(level: Level, args: fmt::Arguments<'_>) {
    let fmt = match level {
        Level::Error => &format_strings::ERR,
        Level::Warning => &format_strings::WARNING,
        Level::Info => &format_strings::INFO,
    };
    // SAFETY: The format strings are the kernel's fixed ones and the prefix is
    // NUL-terminated. The newline ends the record (printk would hold it back otherwise).
    unsafe { call_printk(fmt, crate::__LOG_PREFIX, format_args!("{args}\n")) }
}

// `FsOps` holds functions taking `*const SetAttr`, a Rust type: both sides are built
// against the same `bento` (the build id is checked at registration).
#[allow(improper_ctypes)]
extern "C" {
    // Exported by fs/bento (fs/bento/exports.c).
    fn bento_register_fs(ops: *const FsOps, owner: *mut c_void) -> i32;
    fn bento_unregister_fs(ops: *const FsOps);
}

/// Registers a file system module's ops table with fs/bento. Called from the module's
/// init function that [`module_fs!`](crate::module_fs) generates.
///
/// # Safety
///
/// `owner` must be the calling module's `struct module`.
#[doc(hidden)]
pub unsafe fn register(ops: &'static FsOps, owner: *mut c_void) -> i32 {
    // SAFETY: `ops` is a static table and `owner` is the calling module's `THIS_MODULE`;
    // both live until `unregister` returns in the module's exit function.
    unsafe { bento_register_fs(ops, owner) }
}

/// Unregisters a table registered with [`register`].
#[doc(hidden)]
pub fn unregister(ops: &'static FsOps) {
    // SAFETY: `ops` was registered by `register`; fs/bento holds a module reference per
    // superblock, so no instance made from it can be alive when the module exits.
    unsafe { bento_unregister_fs(ops) }
}

/// Declares a file system module: in the kernel, the module's init/exit functions that
/// register the fs with fs/bento, and its `.modinfo` (GPL, alias `fs-NAME` so that
/// `mount -t NAME` loads it).
///
/// ```ignore
/// bento::module_fs! {
///     type: HelloFs,
///     name: "hello",
///     version: 1,
///     description: "Hello world file system",
///     // Optional: `bento::abi::FLAG_BLOCK_DEVICE` for a file system on a block device.
///     flags: 0,
///     // Optional, default true: the `fs-NAME` alias, so that `mount -t NAME` loads
///     // this module. Give it to the first version only; later versions (live
///     // upgrades, loaded by name) say `false`.
///     autoload: true,
/// }
/// ```
#[macro_export]
#[allow_internal_unsafe]
macro_rules! module_fs {
    (
        type: $t:ty,
        name: $name:literal,
        version: $ver:literal,
        description: $desc:literal
        $(, flags: $flags:expr)?
        $(, autoload: $auto:tt)? $(,)?
    ) => {
        #[cfg(not(MODULE))]
        compile_error!("a bento file system is a loadable module: build it as =m");

        #[doc(hidden)]
        const __LOG_PREFIX: &[u8] = concat!($name, "\0").as_bytes();

        #[doc(hidden)]
        static __BENTO_OPS: $crate::abi::FsOps =
            $crate::abi::FsOps::new::<$t>(
                concat!($name, "\0").as_bytes(),
                $ver,
                0 $(| $flags)?,
            );

        #[doc(hidden)]
        mod __bento_module {
            extern "C" {
                // Defined by modpost in the module's `.mod.c`.
                static __this_module: u8;
            }

            #[no_mangle]
            #[link_section = ".init.text"]
            unsafe extern "C" fn init_module() -> i32 {
                #[allow(unused_unsafe)]
                // SAFETY: Only the address of the module's own `struct module` is taken.
                let this = unsafe { core::ptr::addr_of!(__this_module) } as *mut core::ffi::c_void;
                // SAFETY: `this` is this module's `struct module`.
                unsafe { $crate::kernel_backend::register(&super::__BENTO_OPS, this) }
            }

            #[used(compiler)]
            #[link_section = ".init.data"]
            static __UNIQUE_ID___addressable_init_module: unsafe extern "C" fn() -> i32 =
                init_module;

            #[no_mangle]
            #[link_section = ".exit.text"]
            extern "C" fn cleanup_module() {
                $crate::kernel_backend::unregister(&super::__BENTO_OPS)
            }

            #[used(compiler)]
            #[link_section = ".exit.data"]
            static __UNIQUE_ID___addressable_cleanup_module: extern "C" fn() = cleanup_module;

            #[used(compiler)]
            static __IS_RUST_MODULE: () = ();

            $crate::__modinfo!(__MODINFO_LICENSE, "license=GPL");
            $crate::__modinfo!(__MODINFO_DESCRIPTION, concat!("description=", $desc));
            $crate::__modinfo_alias!($($auto)?; $name);
            $crate::__modinfo!(__MODINFO_BENTO_VERSION, concat!("bento_fs_version=", $ver));
        }
    };
}

/// The `fs-NAME` alias of [`module_fs!`], unless `autoload: false`.
#[doc(hidden)]
#[macro_export]
macro_rules! __modinfo_alias {
    (false; $name:literal) => {};
    (true; $name:literal) => {
        $crate::__modinfo_alias!(; $name);
    };
    (; $name:literal) => {
        $crate::__modinfo!(__MODINFO_ALIAS, concat!("alias=fs-", $name));
    };
}

/// One `.modinfo` entry (`key=value\0`).
#[doc(hidden)]
#[macro_export]
#[allow_internal_unsafe]
macro_rules! __modinfo {
    ($id:ident, $s:expr) => {
        #[used(compiler)]
        #[link_section = ".modinfo"]
        static $id: [u8; concat!($s, "\0").len()] =
            $crate::__to_array(concat!($s, "\0").as_bytes());
    };
}

/// # Safety
///
/// `p` must come from [`box_into_raw`] and not be used afterwards.
pub(crate) unsafe fn take_raw<T>(p: *mut T) -> T {
    // SAFETY: By the caller's guarantee `p` is an owned `KBox` pointer.
    KBox::into_inner(unsafe { KBox::from_raw(p) })
}

pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: Always safe in process context, where every file system call runs.
    unsafe { kernel::bindings::msleep(ms) }
}

pub(crate) fn now() -> crate::types::Timespec {
    let mut ts = kernel::bindings::timespec64::default();
    // SAFETY: `ts` is valid for writes.
    unsafe { kernel::bindings::ktime_get_real_ts64(&mut ts) };
    crate::types::Timespec::new(ts.tv_sec, u32::try_from(ts.tv_nsec).unwrap_or(0))
}
