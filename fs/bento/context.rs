// SPDX-License-Identifier: GPL-2.0
//! Mount contexts: option parsing and `get_tree` (which implementation serves a mount).
//!
//! `ro`/`rw` and the other superblock flags are handled by the VFS before `parse_param`
//! sees them. The generic `bento` type takes `fs=NAME`; every other option is collected
//! and handed to the file system's `mount`, which rejects what it does not know.

use bento::abi::RawMountOptions;
use kernel::bindings;
use kernel::error::{from_result, to_result};
use kernel::prelude::*;
use kernel::str::BStr;

use crate::call::OnError;
use crate::registry::{self, Impl, NAME_MAX};
use crate::superblock;

/// Per-mount-attempt state (`fc->fs_private`).
pub(crate) struct Context {
    /// Slot of the per-fs type, `None` for the generic type.
    slot: Option<usize>,
    /// `fs=` of the generic type.
    fs_name: KVec<u8>,
    /// Fs-specific options, comma separated.
    pub(crate) options: KVec<u8>,
    /// The implementation chosen in `get_tree`, with a module reference that
    /// `fill_super` moves into the superblock.
    pub(crate) imp: Option<Impl>,
    /// `errors=` (also passed on to the file system).
    pub(crate) on_error: OnError,
}

/// Whether `sb` was set up by `get_tree_bdev` (it has a block device).
fn sb_has_bdev(sb: *mut bindings::super_block) -> bool {
    // SAFETY: `sb` is the superblock being filled, valid for reads.
    !sb.is_null() && !unsafe { (*sb).s_bdev }.is_null()
}

impl Context {
    /// The options for the file system's `mount`, borrowing from `self` and `fc`.
    pub(crate) fn mount_options(
        &self,
        fc: &bindings::fs_context,
        sb: *mut bindings::super_block,
        read_only: bool,
    ) -> RawMountOptions {
        let (source, source_len) = if fc.source.is_null() {
            (core::ptr::null(), 0)
        } else {
            // SAFETY: `fc->source` is a NUL-terminated string owned by `fc`.
            let len = unsafe { kernel::str::CStr::from_char_ptr(fc.source) }.len();
            (fc.source.cast::<u8>(), len)
        };
        RawMountOptions {
            source,
            source_len,
            options: self.options.as_ptr(),
            options_len: self.options.len(),
            read_only,
            sb: if sb_has_bdev(sb) {
                sb.cast()
            } else {
                core::ptr::null_mut()
            },
        }
    }

    /// The fs name this mount asks for.
    fn wanted_name<'a>(&'a self, buf: &'a mut [u8; NAME_MAX]) -> &'a [u8] {
        match self.slot {
            Some(slot) => {
                let len = registry::slot_name(slot, buf);
                &buf[..len]
            }
            None => &self.fs_name,
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Some(imp) = self.imp.take() {
            registry::put(imp);
        }
    }
}

static CONTEXT_OPS: bindings::fs_context_operations = bindings::fs_context_operations {
    free: Some(free),
    dup: None,
    parse_param: Some(parse_param),
    parse_monolithic: None,
    get_tree: Some(get_tree),
    reconfigure: Some(reconfigure),
};

/// `reconfigure` (`mount -o remount`): a switch between read-only and read-write goes
/// to the file system; other options are kept as they were mounted.
///
/// # Safety
///
/// Called by the VFS with a valid reconfiguration `fc` of a mounted bento superblock.
unsafe extern "C" fn reconfigure(fc: *mut bindings::fs_context) -> i32 {
    // SAFETY: VFS contract: `fc->root` is the mount's root, its superblock mounted.
    unsafe {
        let sb = (*(*fc).root).d_sb;
        let want_ro = (*fc).sb_flags & bindings::SB_RDONLY as u32 != 0;
        let is_ro = (*sb).s_flags & bindings::SB_RDONLY != 0;
        if want_ro == is_ro || (*fc).sb_flags_mask & bindings::SB_RDONLY as u32 == 0 {
            return 0;
        }
        let fs = superblock::fs_of(sb);
        let ret = fs.call(|ops, inst| (ops.remount)(inst, want_ro));
        if ret != 0 {
            pr_err!(
                "remount {}: the file system refused ({})\n",
                if want_ro { "read-only" } else { "read-write" },
                ret
            );
        }
        ret
    }
}

/// `init_fs_context` of every bento type.
///
/// # Safety
///
/// Called by the VFS with a valid, new `fc`.
pub(crate) unsafe extern "C" fn init_fs_context(fc: *mut bindings::fs_context) -> i32 {
    from_result(|| {
        // SAFETY: `fc` is valid (VFS contract).
        let fc = unsafe { &mut *fc };
        let ctx = KBox::new(
            Context {
                slot: registry::slot_of(fc.fs_type),
                fs_name: KVec::new(),
                options: KVec::new(),
                imp: None,
                on_error: OnError::default(),
            },
            GFP_KERNEL,
        )?;
        fc.fs_private = KBox::into_raw(ctx).cast();
        fc.ops = &CONTEXT_OPS;
        Ok(0)
    })
}

/// # Safety
///
/// `fc->fs_private` must be null or a `Context` made by `init_fs_context`.
unsafe extern "C" fn free(fc: *mut bindings::fs_context) {
    // SAFETY: `fc` is valid (VFS contract).
    let fc = unsafe { &mut *fc };
    if !fc.fs_private.is_null() {
        // SAFETY: `fs_private` was made by `KBox::into_raw` in `init_fs_context`.
        drop(unsafe { KBox::from_raw(fc.fs_private.cast::<Context>()) });
        fc.fs_private = core::ptr::null_mut();
    }
}

/// The `Context` of a bento `fc`.
///
/// # Safety
///
/// `fc` must be a context set up by `init_fs_context` and not yet freed.
pub(crate) unsafe fn context<'a>(fc: *mut bindings::fs_context) -> &'a mut Context {
    // SAFETY: By the caller's guarantee.
    unsafe { &mut *(*fc).fs_private.cast::<Context>() }
}

fn push_option(opts: &mut KVec<u8>, key: &[u8], value: Option<&[u8]>) -> Result {
    if !opts.is_empty() {
        opts.push(b',', GFP_KERNEL)?;
    }
    opts.extend_from_slice(key, GFP_KERNEL)?;
    if let Some(v) = value {
        opts.push(b'=', GFP_KERNEL)?;
        opts.extend_from_slice(v, GFP_KERNEL)?;
    }
    Ok(())
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn parse_param(
    fc: *mut bindings::fs_context,
    param: *mut bindings::fs_parameter,
) -> i32 {
    from_result(|| {
        // SAFETY: `fc` is ours, `param` valid for the call (VFS contract).
        let (ctx, param) = unsafe { (context(fc), &*param) };
        // SAFETY: `param->key` is a NUL-terminated string.
        let key = unsafe { kernel::str::CStr::from_char_ptr(param.key) }.as_bytes();
        // The VFS handles the mount source itself.
        if key == b"source" {
            return Err(Error::from_errno(-(bindings::ENOPARAM as i32)));
        }
        let value: Option<&[u8]> = match param.type_() {
            bindings::fs_value_type_fs_value_is_flag => None,
            bindings::fs_value_type_fs_value_is_string => {
                // SAFETY: For string parameters `string` is a NUL-terminated string.
                let s = unsafe { kernel::str::CStr::from_char_ptr(param.__bindgen_anon_1.string) };
                Some(s.as_bytes())
            }
            _ => {
                pr_err!("option '{}' must be a string\n", BStr::from_bytes(key));
                return Err(EINVAL);
            }
        };
        if key.contains(&b',') || value.is_some_and(|v| v.contains(&b',')) {
            pr_err!(
                "option '{}': commas are not allowed in keys or values\n",
                BStr::from_bytes(key)
            );
            return Err(EINVAL);
        }
        if ctx.slot.is_none() && key == b"fs" {
            let name = value.unwrap_or_default();
            if name.is_empty() || name.len() > NAME_MAX {
                pr_err!(
                    "option fs=: want a file system name of 1-{} bytes\n",
                    NAME_MAX
                );
                return Err(EINVAL);
            }
            ctx.fs_name = KVec::new();
            ctx.fs_name.extend_from_slice(name, GFP_KERNEL)?;
            return Ok(0);
        }
        if key == b"errors" {
            let Some(on_error) = value.and_then(OnError::parse) else {
                pr_err!("option errors=: want continue, remount-ro or panic\n");
                return Err(EINVAL);
            };
            ctx.on_error = on_error;
        }
        push_option(&mut ctx.options, key, value)?;
        Ok(0)
    })
}

/// Loads the module providing file system `name` (`fs-NAME` alias).
fn request_module(name: &[u8]) {
    let mut buf = [0u8; NAME_MAX + 4];
    buf[..3].copy_from_slice(b"fs-");
    buf[3..3 + name.len()].copy_from_slice(name);
    // SAFETY: The format and its argument are NUL-terminated strings.
    unsafe { bindings::__request_module(true, c"%s".as_ptr().cast(), buf.as_ptr()) };
}

/// # Safety
///
/// Called by the VFS, whose contract for this operation makes every pointer valid.
unsafe extern "C" fn get_tree(fc: *mut bindings::fs_context) -> i32 {
    from_result(|| {
        // SAFETY: `fc` is ours (VFS contract).
        let ctx = unsafe { context(fc) };
        let mut buf = [0u8; NAME_MAX];
        let name = ctx.wanted_name(&mut buf);
        if name.is_empty() {
            pr_err!("mount -t bento needs -o fs=NAME\n");
            return Err(EINVAL);
        }
        let mut imp = registry::get(name);
        if imp.is_none() && ctx.slot.is_none() {
            request_module(name);
            imp = registry::get(name);
        }
        let Some(imp) = imp else {
            pr_err!(
                "no file system named '{}' is available\n",
                BStr::from_bytes(name)
            );
            return Err(ENODEV);
        };
        let block = imp.ops.flags & bento::abi::FLAG_BLOCK_DEVICE != 0;
        ctx.imp = Some(imp);
        let fill: unsafe extern "C" fn(
            *mut bindings::super_block,
            *mut bindings::fs_context,
        ) -> i32 = superblock::fill_super;
        if block {
            // SAFETY: `fc` is valid; `fill_super` follows the `get_tree_bdev` contract.
            to_result(unsafe { bindings::get_tree_bdev(fc, Some(fill)) })?;
        } else {
            // SAFETY: As above for `get_tree_nodev`.
            to_result(unsafe { bindings::get_tree_nodev(fc, Some(fill)) })?;
        }
        Ok(0)
    })
}
