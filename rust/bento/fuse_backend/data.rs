// SPDX-License-Identifier: GPL-2.0
//! The data path of the FUSE build: file data of a block-backed file system (one whose
//! [`FileSystem::block_device`] is `Some`) moves between FUSE requests and the device
//! here, through [`FileSystem::map_blocks`], as fs/bento moves it between the page cache
//! and the device in the kernel: runs of whole blocks in one `pread`/`pwrite` outside the
//! block cache (the kernel's page cache above FUSE holds the data already), partial
//! blocks through the cache. The file system only maps blocks; this
//! module reads and writes the data, zeroes new blocks around partial writes and partial
//! blocks on truncation and hole punching, and sets the size and times after a write.
//!
//! Every function falls back to the file system's own operation (`read`, `write`,
//! `setattr`, `fallocate`) when it has no block device. The adapter calls them for the
//! FUSE requests; in-process tests call them to see a file system as a mount sees it.
//!
//! The invariant kept for the kernel's semantics: bytes of a file's last block past its
//! size are zero on the device (and blocks wholly past it hold zeros or are holes), so
//! extending a file (by a write past the end or a truncate up) shows zeros.
//!
//! Locking: a striped per-inode reader-writer lock plays the part of the kernel's
//! `i_rwsem`/`invalidate_lock`: reads share it; writes, truncation and `fallocate`
//! hold it exclusively, so that no read maps a block that a truncation is freeing and
//! no two writes zero and fill one new block at the same time. No buffer lock is held
//! while calling into the file system.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::block::BlockDevice;
use crate::errno::{Errno, Result};
use crate::fs::FileSystem;
use crate::types::{Attr, FileType, Ino, OpenFlags, Request, SetAttr, TimeSet};

/// `fallocate` modes (`FALLOC_FL_*`).
const KEEP_SIZE: i32 = 1;
const PUNCH_HOLE: i32 = 2;

/// Stripes of the per-inode lock (inode numbers share a stripe modulo this).
const STRIPES: usize = 64;

static LOCKS: [RwLock<()>; STRIPES] = [const { RwLock::new(()) }; STRIPES];

fn stripe(ino: Ino) -> &'static RwLock<()> {
    &LOCKS[usize::try_from(ino % STRIPES as u64).unwrap_or(0)]
}

fn shared(ino: Ino) -> RwLockReadGuard<'static, ()> {
    stripe(ino).read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive(ino: Ino) -> RwLockWriteGuard<'static, ()> {
    stripe(ino).write().unwrap_or_else(PoisonError::into_inner)
}

/// The attributes of `ino`, which must be a regular file (`EISDIR` for a directory,
/// `EINVAL` for the others, as the kernel's read and write would answer).
fn regular<F: FileSystem>(fs: &F, req: &Request, ino: Ino) -> Result<Attr> {
    let attr = fs.getattr(req, ino)?;
    match attr.kind {
        FileType::RegularFile => Ok(attr),
        FileType::Directory => Err(Errno::EISDIR),
        _ => Err(Errno::EINVAL),
    }
}

/// Block size of `dev` in bytes, as `u64`.
fn block_size(dev: &BlockDevice) -> u64 {
    dev.block_size() as u64
}

/// The number of blocks from `fblk` to the one holding byte `last` (inclusive), for a
/// `map_blocks` count.
fn blocks_until(fblk: u64, last: u64, bs: u64) -> u32 {
    u32::try_from((last / bs).saturating_sub(fblk).saturating_add(1)).unwrap_or(u32::MAX)
}

/// Zeroes bytes `[from, to)` of disk block `blk`.
fn zero_in_block(dev: &BlockDevice, blk: u64, from: usize, to: usize) -> Result {
    let b = dev.read(blk)?;
    b.lock().get_mut(from..to).ok_or(Errno::EIO)?.fill(0);
    b.mark_dirty();
    Ok(())
}

/// Zeroes bytes `[from, to)` of file block `fblk` if it is mapped (a hole reads as
/// zeros already).
fn zero_file_range<F: FileSystem>(
    fs: &F,
    dev: &BlockDevice,
    ino: Ino,
    fblk: u64,
    from: usize,
    to: usize,
) -> Result {
    if from >= to {
        return Ok(());
    }
    let ext = fs.map_blocks(ino, fblk, 1, false)?;
    if ext.disk_block == 0 {
        return Ok(());
    }
    zero_in_block(dev, ext.disk_block, from, to)
}

/// Reads up to `buf.len()` bytes of `ino` at `offset` (clipped at the end of the file);
/// returns how many were read, 0 at or past the end. Holes read as zeros.
pub fn read<F: FileSystem>(
    fs: &F,
    req: &Request,
    ino: Ino,
    fh: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize> {
    let Some(dev) = fs.block_device() else {
        return fs.read(req, ino, fh, offset, buf);
    };
    let _l = shared(ino);
    let size = regular(fs, req, ino)?.size;
    if offset >= size || buf.is_empty() {
        return Ok(0);
    }
    let len = usize::try_from(size - offset).map_or(buf.len(), |n| n.min(buf.len()));
    let bs = block_size(dev);
    let last = offset.saturating_add(len as u64 - 1);
    let mut done = 0usize;
    while done < len {
        let pos = offset.saturating_add(done as u64);
        let fblk = pos / bs;
        let count = blocks_until(fblk, last, bs);
        let ext = fs.map_blocks(ino, fblk, count, false)?;
        let run = u64::from(ext.len.clamp(1, count));
        let mut i = 0;
        while i < run {
            let pos = offset.saturating_add(done as u64);
            let in_block = usize::try_from(pos % bs).unwrap_or(0);
            let (whole, n) = next_piece(in_block, len - done, run - i, dev.block_size());
            let dst = buf.get_mut(done..done + n).ok_or(Errno::EIO)?;
            let blk = ext.disk_block.saturating_add(i);
            if ext.disk_block == 0 {
                dst.fill(0);
            } else if whole > 0 {
                dev.inner.read_data(blk, dst)?;
            } else {
                let b = dev.read(blk)?;
                let g = b.lock();
                dst.copy_from_slice(g.get(in_block..in_block + n).ok_or(Errno::EIO)?);
            }
            done += n;
            i += whole.max(1);
        }
    }
    Ok(done)
}

/// The next piece of a transfer `in_block` bytes into a block, with `left` bytes and
/// `left_blocks` blocks of the mapped run to go: as many whole blocks as there are (at a
/// block's start), which move between the request and the device in one piece
/// ([`Device::write_data`]), or else the rest of one block. Returns the count of whole
/// blocks (0 for the latter) and the piece's length in bytes.
///
/// [`Device::write_data`]: crate::fuse_backend::block::Device::write_data
fn next_piece(in_block: usize, left: usize, left_blocks: u64, bs: usize) -> (u64, usize) {
    let whole = if in_block == 0 {
        ((left / bs) as u64).min(left_blocks)
    } else {
        0
    };
    if whole > 0 {
        (whole, whole as usize * bs)
    } else {
        (0, (bs - in_block).min(left))
    }
}

/// Copies `src`, part of a block, into disk block `blk` at `in_block` (whole blocks go
/// through [`Device::write_data`]). A new block's other bytes are zeroed; an old block
/// is read first.
///
/// [`Device::write_data`]: crate::fuse_backend::block::Device::write_data
fn copy_in(dev: &BlockDevice, blk: u64, in_block: usize, src: &[u8], new: bool) -> Result {
    let b = if new { dev.get(blk)? } else { dev.read(blk)? };
    {
        let mut g = b.lock();
        if new {
            g.fill(0);
        }
        g.get_mut(in_block..in_block + src.len())
            .ok_or(Errno::EIO)?
            .copy_from_slice(src);
    }
    b.mark_dirty();
    Ok(())
}

/// Writes `data` to `ino` at `offset`, allocating blocks as needed; returns how many
/// bytes were written. Afterwards one `setattr` sets the new size (only if the file
/// grew) and the modification and change times. An error after some bytes were written
/// (`ENOSPC`, `EFBIG` at the largest file size, ...) makes a short write, as in the
/// kernel.
pub fn write<F: FileSystem>(
    fs: &F,
    req: &Request,
    ino: Ino,
    fh: u64,
    offset: u64,
    data: &[u8],
    flags: OpenFlags,
) -> Result<usize> {
    let Some(dev) = fs.block_device() else {
        return fs.write(req, ino, fh, offset, data, flags);
    };
    let _l = exclusive(ino);
    let size = regular(fs, req, ino)?.size;
    if data.is_empty() {
        return Ok(0);
    }
    let last = offset
        .checked_add(data.len() as u64 - 1)
        .ok_or(Errno::EFBIG)?;
    let bs = block_size(dev);
    let mut done = 0usize;
    let mut failed = None;
    'runs: while done < data.len() {
        let pos = offset.saturating_add(done as u64);
        let fblk = pos / bs;
        let count = blocks_until(fblk, last, bs);
        let ext = match fs.map_blocks(ino, fblk, count, true) {
            Ok(e) if e.disk_block != 0 => e,
            Ok(_) => {
                crate::error!("bento: map_blocks of inode {ino} block {fblk} made a hole");
                failed = Some(Errno::EIO);
                break;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let run = u64::from(ext.len.clamp(1, count));
        let mut i = 0;
        while i < run {
            let pos = offset.saturating_add(done as u64);
            let in_block = usize::try_from(pos % bs).unwrap_or(0);
            let (whole, n) = next_piece(in_block, data.len() - done, run - i, dev.block_size());
            let src = data.get(done..done + n).ok_or(Errno::EIO)?;
            let blk = ext.disk_block.saturating_add(i);
            let res = if whole > 0 {
                dev.inner.write_data(blk, src)
            } else {
                copy_in(dev, blk, in_block, src, ext.new)
            };
            if let Err(e) = res {
                if ext.new {
                    // New blocks left unwritten must not show their old contents.
                    let _ = dev.zero_blocks(blk, run - i);
                }
                failed = Some(e);
                break 'runs;
            }
            done += n;
            i += whole.max(1);
        }
    }
    if done == 0 {
        return Err(failed.unwrap_or(Errno::EIO));
    }
    let end = offset.saturating_add(done as u64);
    let now = crate::time::now();
    let set = SetAttr {
        size: (end > size).then_some(end),
        mtime: Some(TimeSet::At(now)),
        ctime: Some(now),
        ..SetAttr::default()
    };
    fs.setattr(req, ino, &set)?;
    Ok(done)
}

/// Changes attributes. Truncating a regular file first zeroes the rest of the block
/// holding the new end (if mapped), so that extending the file again shows zeros;
/// the file system then frees the blocks past it.
pub fn setattr<F: FileSystem>(fs: &F, req: &Request, ino: Ino, set: &SetAttr) -> Result<Attr> {
    let (Some(dev), Some(new_size)) = (fs.block_device(), set.size) else {
        return fs.setattr(req, ino, set);
    };
    let _l = exclusive(ino);
    let attr = fs.getattr(req, ino)?;
    let bs = block_size(dev);
    let tail = usize::try_from(new_size % bs).unwrap_or(0);
    if attr.kind == FileType::RegularFile && new_size < attr.size && tail != 0 {
        zero_file_range(fs, dev, ino, new_size / bs, tail, dev.block_size())?;
    }
    fs.setattr(req, ino, set)
}

/// `fallocate`. For `PUNCH_HOLE | KEEP_SIZE` this zeroes the partial blocks at the
/// edges of the range clipped to the file size (mapped ones) first; the file system
/// then frees the blocks lying wholly inside `[offset, min(offset + length, size))`
/// (see [`FileSystem::fallocate`]).
pub fn fallocate<F: FileSystem>(
    fs: &F,
    req: &Request,
    ino: Ino,
    fh: u64,
    offset: u64,
    length: u64,
    mode: i32,
) -> Result {
    let Some(dev) = fs.block_device() else {
        return fs.fallocate(req, ino, fh, offset, length, mode);
    };
    let _l = exclusive(ino);
    if mode == PUNCH_HOLE | KEEP_SIZE {
        zero_punch_edges(fs, dev, req, ino, offset, length)?;
    }
    fs.fallocate(req, ino, fh, offset, length, mode)
}

fn zero_punch_edges<F: FileSystem>(
    fs: &F,
    dev: &BlockDevice,
    req: &Request,
    ino: Ino,
    offset: u64,
    length: u64,
) -> Result {
    let attr = fs.getattr(req, ino)?;
    let Some(end) = offset.checked_add(length) else {
        return Ok(()); // the file system refuses it
    };
    if attr.kind != FileType::RegularFile || length == 0 || offset >= attr.size {
        return Ok(());
    }
    let bs = block_size(dev);
    // The range clipped to the file: its whole blocks are freed, the rest zeroed.
    let end = end.min(attr.size);
    let first = offset / bs;
    let last = (end - 1) / bs;
    let edges = if first == last {
        &[first][..]
    } else {
        &[first, last][..]
    };
    for &fblk in edges {
        let start = fblk.saturating_mul(bs);
        let stop = start.saturating_add(bs);
        if offset <= start && stop <= end {
            continue; // freed whole
        }
        let from = usize::try_from(offset.max(start) - start).unwrap_or(0);
        let to = usize::try_from(end.min(stop) - start).unwrap_or(0);
        zero_file_range(fs, dev, ino, fblk, from, to)?;
    }
    Ok(())
}

/// The data path as methods of every [`FileSystem`], for in-process users such as
/// tests, which then see a file system as a mount does: `fs.file_read(...)` is
/// [`read`]`(&fs, ...)`, and so on.
pub trait FileData: FileSystem {
    /// [`read`].
    fn file_read(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        read(self, req, ino, fh, offset, buf)
    }

    /// [`write()`].
    fn file_write(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        offset: u64,
        data: &[u8],
        flags: OpenFlags,
    ) -> Result<usize> {
        write(self, req, ino, fh, offset, data, flags)
    }

    /// [`setattr`].
    fn file_setattr(&self, req: &Request, ino: Ino, set: &SetAttr) -> Result<Attr> {
        setattr(self, req, ino, set)
    }

    /// [`fallocate`].
    fn file_fallocate(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result {
        fallocate(self, req, ino, fh, offset, length, mode)
    }
}

impl<F: FileSystem> FileData for F {}
