// SPDX-License-Identifier: GPL-2.0
//! Extended attributes: one block per inode holding sorted entries (FORMAT.md).
//!
//! From version 2 on ([`crate::VERSION`]), the root also has `trusted.xv6fs.version`,
//! made up (not stored): the module version in decimal, which cannot be set or removed
//! and is not listed. Version 1 treats the name as any other.

use bento::bytes::{Reader, Writer};
use bento::journal::Handle;
use bento::types::xattr_flags;
use bento::{Errno, Request, Result};

use crate::fs::{State, Xv6Fs};
use crate::layout::{
    corrupt, xattr_checksum, DiskInode, BLOCK_SIZE, ROOT_INO, XATTR_ENTRY_FIXED, XATTR_HEADER,
    XATTR_MAGIC,
};

/// One attribute: namespace, name (without prefix), value.
type Attr<'a> = (u8, &'a [u8], &'a [u8]);

/// A visitor of attributes.
type Visit<'f> = dyn FnMut(u8, &[u8], &[u8]) + 'f;

/// Namespaces and their prefixes.
const NAMESPACES: [(u8, &[u8]); 3] = [(1, b"user."), (NS_TRUSTED, b"trusted."), (6, b"security.")];

/// The `trusted.` namespace.
const NS_TRUSTED: u8 = 4;

/// The name (in `trusted.`) of the root's version attribute.
const VERSION_NAME: &[u8] = b"xv6fs.version";

/// Whether (`ns`, `name`) of inode `ino` is the version attribute (version 2 on).
pub fn is_version_attr(ino: u32, ns: u8, name: &[u8]) -> bool {
    crate::VERSION >= 2 && ino == ROOT_INO && ns == NS_TRUSTED && name == VERSION_NAME
}

/// `getxattr` of the version attribute: [`crate::VERSION`] in decimal.
pub fn get_version(buf: &mut [u8]) -> Result<usize> {
    let mut digits = [0u8; 10];
    let mut n = crate::VERSION;
    let mut start = digits.len();
    for d in digits.iter_mut().rev() {
        *d = b'0'.saturating_add(u8::try_from(n % 10).unwrap_or(0));
        start = start.saturating_sub(1);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let v = digits.get(start..).unwrap_or(&[]);
    reply(v.len(), buf, |d| d.copy_from_slice(v))
}

/// Splits `name` into (namespace, name without prefix). `trusted.` needs root; `system.`
/// (POSIX ACLs) and unknown prefixes are not supported.
pub fn split_name<'a>(req: &Request, name: &'a [u8], _write: bool) -> Result<(u8, &'a [u8])> {
    for (ns, prefix) in NAMESPACES {
        if let Some(rest) = name.strip_prefix(prefix) {
            if rest.is_empty() {
                return Err(Errno::EINVAL);
            }
            if rest.len() > 255 {
                return Err(Errno::ERANGE);
            }
            if ns == NS_TRUSTED && req.uid != 0 {
                return Err(Errno::EPERM);
            }
            return Ok((ns, rest));
        }
    }
    Err(Errno::EOPNOTSUPP)
}

fn prefix(ns: u8) -> &'static [u8] {
    NAMESPACES
        .iter()
        .find(|(n, _)| *n == ns)
        .map(|(_, p)| *p)
        .unwrap_or(b"")
}

/// One entry: (namespace, name, value) and the offset after it.
fn parse(b: &[u8], off: usize, used: usize, ino: u32) -> Result<(Attr<'_>, usize)> {
    let r = Reader::new(b);
    let ns = r.u8(off);
    let nlen = usize::from(r.u8(off.saturating_add(1)));
    let vlen = usize::from(r.u16(off.saturating_add(2)));
    let name = r.bytes(off.saturating_add(XATTR_ENTRY_FIXED), nlen);
    let value = r.bytes(
        off.saturating_add(XATTR_ENTRY_FIXED).saturating_add(nlen),
        vlen,
    );
    let end = off
        .saturating_add(XATTR_ENTRY_FIXED)
        .saturating_add(nlen)
        .saturating_add(vlen);
    if r.finish().is_err() || end > used || nlen == 0 || prefix(ns).is_empty() {
        return Err(corrupt(format_args!("inode {ino}: xattr entry at {off}")));
    }
    Ok(((ns, name, value), end))
}

/// Checks the xattr block header: (count, used).
fn header(b: &[u8], ino: u32, seed: u32) -> Result<usize> {
    let r = Reader::new(b);
    let used = usize::try_from(r.u32(8)).unwrap_or(usize::MAX);
    let stored = r.u32(12);
    let sum = xattr_checksum(b, ino, seed);
    if r.u32(0) != XATTR_MAGIC || !(XATTR_HEADER..=BLOCK_SIZE).contains(&used) || stored != sum {
        return Err(corrupt(format_args!("inode {ino}: xattr block header")));
    }
    Ok(used)
}

/// Calls `f` for each entry of inode `ino`'s xattr block.
fn for_each(fs: &Xv6Fs, ino: u32, inode: &DiskInode, f: &mut Visit<'_>) -> Result {
    if inode.xattr_block == 0 {
        return Ok(());
    }
    if !fs.sb.is_data_block(inode.xattr_block) {
        return Err(corrupt(format_args!(
            "inode {ino}: xattr block {}",
            inode.xattr_block
        )));
    }
    let buf = fs.dev.read(u64::from(inode.xattr_block))?;
    let g = buf.lock();
    let used = header(&g, ino, fs.seed)?;
    let mut off = XATTR_HEADER;
    while off < used {
        let ((ns, name, value), next) = parse(&g, off, used, ino)?;
        f(ns, name, value);
        off = next;
    }
    Ok(())
}

/// Copies `data` to `buf` with getxattr's size rules.
fn reply(data_len: usize, buf: &mut [u8], fill: impl FnOnce(&mut [u8])) -> Result<usize> {
    if buf.is_empty() {
        return Ok(data_len);
    }
    let dst = buf.get_mut(..data_len).ok_or(Errno::ERANGE)?;
    fill(dst);
    Ok(data_len)
}

/// `getxattr`.
pub fn get(
    fs: &Xv6Fs,
    ino: u32,
    inode: &DiskInode,
    ns: u8,
    name: &[u8],
    buf: &mut [u8],
) -> Result<usize> {
    let mut found: Option<(usize, [u8; 0])> = None;
    let mut copy_err = None;
    let mut out = 0usize;
    for_each(fs, ino, inode, &mut |n, k, v| {
        if n == ns && k == name && found.is_none() {
            found = Some((v.len(), []));
            match reply(v.len(), buf, |d| d.copy_from_slice(v)) {
                Ok(len) => out = len,
                Err(e) => copy_err = Some(e),
            }
        }
    })?;
    match (found, copy_err) {
        (None, _) => Err(Errno::ENODATA),
        (Some(_), Some(e)) => Err(e),
        (Some(_), None) => Ok(out),
    }
}

/// `listxattr`: NUL-terminated full names (`trusted.` ones only for root).
pub fn list(
    fs: &Xv6Fs,
    req: &Request,
    ino: u32,
    inode: &DiskInode,
    buf: &mut [u8],
) -> Result<usize> {
    let mut total = 0usize;
    let mut short = false;
    for_each(fs, ino, inode, &mut |n, k, _| {
        if (n == NS_TRUSTED && req.uid != 0) || is_version_attr(ino, n, k) {
            return;
        }
        let p = prefix(n);
        let len = p.len().saturating_add(k.len()).saturating_add(1);
        if !buf.is_empty() {
            match buf.get_mut(total..total.saturating_add(len)) {
                Some(dst) => {
                    let (a, rest) = dst.split_at_mut(p.len());
                    a.copy_from_slice(p);
                    let (b, z) = rest.split_at_mut(k.len());
                    b.copy_from_slice(k);
                    z.fill(0);
                }
                None => short = true,
            }
        }
        total = total.saturating_add(len);
    })?;
    if short {
        return Err(Errno::ERANGE);
    }
    Ok(total)
}

/// Sets (`value` Some) or removes (None) attribute (`ns`, `name`) of inode `ino`.
#[allow(clippy::too_many_arguments)]
pub fn set(
    fs: &Xv6Fs,
    h: &Handle<'_>,
    st: &State,
    ino: u32,
    inode: &mut DiskInode,
    ns: u8,
    name: &[u8],
    value: Option<&[u8]>,
    flags: i32,
) -> Result {
    if value.is_some_and(|v| {
        v.len()
            > BLOCK_SIZE
                .saturating_sub(XATTR_HEADER)
                .saturating_sub(XATTR_ENTRY_FIXED)
    }) {
        return Err(Errno::E2BIG);
    }
    // Rebuild the entry list into a fresh block image: old entries minus the one being
    // changed, plus the new one, in (namespace, name) order.
    let mut exists = false;
    for_each(fs, ino, inode, &mut |n, k, _| {
        exists |= n == ns && k == name
    })?;
    if exists && flags & xattr_flags::CREATE != 0 {
        return Err(Errno::EEXIST);
    }
    if !exists && (flags & xattr_flags::REPLACE != 0 || value.is_none()) {
        return Err(Errno::ENODATA);
    }
    let mut img = bento::collections::Vec::zeroed(BLOCK_SIZE)?;
    let mut off = XATTR_HEADER;
    let mut overflow = false;
    let mut placed = value.is_none();
    let mut count = 0u32;
    let mut put = |img: &mut [u8], off: &mut usize, n: u8, k: &[u8], v: &[u8]| {
        let len = XATTR_ENTRY_FIXED
            .saturating_add(k.len())
            .saturating_add(v.len());
        if off.saturating_add(len) > BLOCK_SIZE {
            overflow = true;
            return;
        }
        let mut w = Writer::new(img);
        w.u8(*off, n);
        w.u8(off.saturating_add(1), u8::try_from(k.len()).unwrap_or(0));
        w.u16(off.saturating_add(2), u16::try_from(v.len()).unwrap_or(0));
        w.bytes(off.saturating_add(XATTR_ENTRY_FIXED), k);
        w.bytes(
            off.saturating_add(XATTR_ENTRY_FIXED)
                .saturating_add(k.len()),
            v,
        );
        *off = off.saturating_add(len);
        count = count.saturating_add(1);
    };
    for_each(fs, ino, inode, &mut |n, k, v| {
        if n == ns && k == name {
            return;
        }
        if !placed && (n, k) > (ns, name) {
            if let Some(val) = value {
                put(&mut img, &mut off, ns, name, val);
            }
            placed = true;
        }
        put(&mut img, &mut off, n, k, v);
    })?;
    if !placed {
        if let Some(val) = value {
            put(&mut img, &mut off, ns, name, val);
        }
    }
    if overflow {
        return Err(Errno::ENOSPC);
    }
    if count == 0 {
        // No attributes left: the block goes.
        let b = inode.xattr_block;
        if b != 0 {
            st.blocks.lock().release(&fs.dev, h, b)?;
            h.revoke(u64::from(b))?;
            fs.journal.defer_free(h.tid(), u64::from(b), 1)?;
            inode.xattr_block = 0;
            inode.blocks = inode.blocks.saturating_sub(8);
        }
        return Ok(());
    }
    let mut w = Writer::new(&mut img);
    w.u32(0, XATTR_MAGIC);
    w.u32(4, count);
    w.u32(8, u32::try_from(off).unwrap_or(0));
    w.finish()?;
    let sum = xattr_checksum(&img, ino, fs.seed);
    Writer::new(&mut img).u32(12, sum);
    let (b, fresh) = match inode.xattr_block {
        0 => {
            let pending = crate::alloc::blocks_pending(&fs.journal);
            let b = st
                .blocks
                .lock()
                .alloc(&fs.dev, h, inode.addrs.first().copied(), &pending)?;
            inode.blocks = inode.blocks.saturating_add(8);
            inode.xattr_block = b;
            (b, true)
        }
        b => (b, false),
    };
    let buf = if fresh {
        fs.dev.get(u64::from(b))?
    } else {
        fs.dev.read(u64::from(b))?
    };
    let write = |d: &mut [u8]| d.copy_from_slice(&img);
    if fresh {
        h.create(&buf, write)
    } else {
        h.modify(&buf, write)
    }
}
