// SPDX-License-Identifier: GPL-2.0
//! Allocation bitmaps (blocks and inodes): one bit per object, journaled.
//!
//! Free counts and a search hint live in memory, computed at mount (or handed over by
//! the previous version on live upgrade: [`Bitmap::with_counts`]). A block freed by a
//! transaction is not handed out again until that transaction commits (the journal's
//! deferred-free list), so recovery never replays an old metadata copy over new data.

use bento::block::BlockDevice;
use bento::journal::{Handle, Journal};
use bento::{Errno, Result};

use crate::layout::{corrupt, BITS_PER_BLOCK};

/// One bitmap region.
pub struct Bitmap {
    /// First bitmap block.
    start: u32,
    /// Objects covered (bits past this are never used).
    nbits: u32,
    /// First object that may ever be allocated (below: metadata, inode 0...).
    first: u32,
    /// Free objects.
    free: u32,
    /// Where the next search starts.
    hint: u32,
    /// Whether a free moves the hint back to the freed object: not for blocks, which
    /// wait for the commit of their freeing (the search would walk through them).
    rewind: bool,
    /// Objects at the start of each bitmap block's range kept for metadata: data
    /// takes them only when nothing else is free (0: none).
    zone: u32,
    /// What it allocates, for messages.
    what: &'static str,
}

/// Blocks at the start of each bitmap block's range (128 MiB of disk) kept for
/// indirect blocks, so that those of a file written in sequence do not split its data
/// into 4 MiB pieces (ext3's metaclustering): one leaf per 4 MiB of data, 63 leaves and
/// a double-indirect block per zone.
pub const META_ZONE: u32 = 64;

/// The first object of `[n, n + len)` that must not be allocated yet although its bit may
/// be clear (a block whose freeing has not committed), and the end of the run of such
/// objects it starts, if any.
pub type Pending<'a> = &'a dyn Fn(u32, u32) -> Option<(u32, u32)>;

/// [`Pending`] for objects that are reusable at once (inodes).
pub fn never_pending(_: u32, _: u32) -> Option<(u32, u32)> {
    None
}

fn bit_location(n: u32) -> (u32, usize, u8) {
    let block = n / BITS_PER_BLOCK;
    let bit = n % BITS_PER_BLOCK;
    (block, (bit / 8) as usize, 1u8 << (bit % 8))
}

/// Whether object `n`'s bit is set in `b`, its bitmap block's bytes.
fn bit_set(b: &[u8], n: u32) -> bool {
    let (_, byte, mask) = bit_location(n);
    b.get(byte).is_some_and(|x| x & mask != 0)
}

impl Bitmap {
    /// Loads the bitmap at `start` covering `nbits` objects (the first `first` are
    /// reserved) and counts its free bits.
    pub fn load(
        dev: &BlockDevice,
        start: u32,
        nbits: u32,
        first: u32,
        what: &'static str,
    ) -> Result<Bitmap> {
        let mut free = 0u32;
        let blocks = nbits.div_ceil(BITS_PER_BLOCK);
        for i in 0..blocks {
            let buf = dev.read(u64::from(start.saturating_add(i)))?;
            let g = buf.lock();
            let base = i.saturating_mul(BITS_PER_BLOCK);
            for (byte_no, byte) in g.iter().enumerate() {
                let first_bit = base
                    .saturating_add(u32::try_from(byte_no).unwrap_or(u32::MAX).saturating_mul(8));
                if first_bit >= nbits {
                    break;
                }
                for bit in 0..8u32 {
                    let n = first_bit.saturating_add(bit);
                    if n >= first && n < nbits && byte & (1 << bit) == 0 {
                        free = free.saturating_add(1);
                    }
                }
            }
        }
        Bitmap::with_counts(start, nbits, first, free, first, what)
    }

    /// The bitmap at `start` covering `nbits` objects (the first `first` are reserved)
    /// with `free` free objects and search hint `hint`, as [`Bitmap::free`] and
    /// [`Bitmap::hint`] gave them (a live upgrade hands them over instead of counting the
    /// bits again). `EINVAL` if they cannot belong to such a bitmap.
    pub fn with_counts(
        start: u32,
        nbits: u32,
        first: u32,
        free: u32,
        hint: u32,
        what: &'static str,
    ) -> Result<Bitmap> {
        let usable = nbits.checked_sub(first);
        if usable.is_none_or(|n| free > n) || hint < first || hint > nbits {
            bento::error!(
                "xv6fs: {what}: {free} free, hint {hint}: impossible for objects {first}..{nbits}"
            );
            return Err(Errno::EINVAL);
        }
        Ok(Bitmap {
            start,
            nbits,
            first,
            free,
            hint,
            rewind: true,
            zone: 0,
            what,
        })
    }

    /// The same bitmap, for blocks: a block is reused only after the commit of its
    /// freeing, so a free leaves the hint where it is; and the first [`META_ZONE`]
    /// blocks of each bitmap block's range are kept for indirect blocks
    /// ([`Bitmap::alloc_meta`]).
    pub fn for_blocks(self) -> Bitmap {
        Bitmap {
            rewind: false,
            zone: META_ZONE,
            ..self
        }
    }

    /// Free objects.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// Where the next search starts (between the first allocatable object and the end).
    pub fn hint(&self) -> u32 {
        self.hint
    }

    /// Whether object `n` is marked used.
    pub fn is_set(&self, dev: &BlockDevice, n: u32) -> Result<bool> {
        let (block, _, _) = bit_location(n);
        let buf = dev.read(u64::from(self.start.saturating_add(block)))?;
        let g = buf.lock();
        Ok(bit_set(&g, n))
    }

    /// Whether every object of `n`'s aligned group of `group` objects (a power of two)
    /// other than `n` is free: objects that share a disk block (inodes in a table
    /// block), whose block then needs no read to write `n`'s part of it.
    pub fn others_clear(&self, dev: &BlockDevice, n: u32, group: u32) -> Result<bool> {
        let first = n & !group.saturating_sub(1);
        let (block, _, _) = bit_location(first);
        let buf = dev.read(u64::from(self.start.saturating_add(block)))?;
        let g = buf.lock();
        Ok((first..first.saturating_add(group))
            .all(|obj| obj == n || (bit_location(obj).0 == block && !bit_set(&g, obj))))
    }

    /// Allocates a free object, preferring one at or after `goal` (else the hint),
    /// skipping those `pending` names (blocks whose freeing has not committed).
    pub fn alloc(
        &mut self,
        dev: &BlockDevice,
        h: &Handle<'_>,
        goal: Option<u32>,
        pending: Pending<'_>,
    ) -> Result<u32> {
        self.alloc_run(dev, h, goal, 1, pending).map(|(n, _)| n)
    }

    /// Allocates a run of up to `max` (at least 1) consecutive free objects: the first
    /// free one at or after `goal` (as [`Bitmap::alloc`] finds it) and the free, usable
    /// ones right after it, within its bitmap block. Returns the first and the count.
    /// The search skips full bytes, and asks `pending` once per window and again past
    /// each run of pending objects it meets, not once per free bit. It leaves the
    /// metadata zones ([`Bitmap::alloc_meta`]) alone while anything else is free.
    pub fn alloc_run(
        &mut self,
        dev: &BlockDevice,
        h: &Handle<'_>,
        goal: Option<u32>,
        max: u32,
        pending: Pending<'_>,
    ) -> Result<(u32, u32)> {
        if self.free == 0 {
            return Err(Errno::ENOSPC);
        }
        let start = goal
            .filter(|g| *g >= self.first && *g < self.nbits)
            .unwrap_or(self.hint);
        let blocks = self.nbits.div_ceil(BITS_PER_BLOCK);
        let first_block = start / BITS_PER_BLOCK;
        // Visit every bitmap block once, starting with the goal's, wrapping around.
        for step in 0..=blocks {
            let block = first_block
                .saturating_add(step)
                .checked_rem(blocks)
                .unwrap_or(0);
            let base = block.saturating_mul(BITS_PER_BLOCK);
            let from = if step == 0 { start } else { base };
            let to = base.saturating_add(BITS_PER_BLOCK).min(self.nbits);
            let from = from.max(self.zone(block).1);
            if let Some((n, count)) = self.take(dev, h, from, to, max, pending)? {
                self.hint = n.saturating_add(count);
                return Ok((n, count));
            }
        }
        // Only the metadata zones have room (a nearly full disk): data may use them.
        if self.zone > 0 {
            for block in 0..blocks {
                let (lo, hi) = self.zone(block);
                if let Some(found) = self.take(dev, h, lo, hi, max, pending)? {
                    return Ok(found);
                }
            }
        }
        // Free objects exist but all await the commit of their freeing: make room.
        Err(Errno::ENOSPC)
    }

    /// Allocates an object for metadata (an indirect block) in the metadata zone of
    /// the bitmap block that covers `near` (else the hint), out of the way of data
    /// runs; if that zone is full, as [`Bitmap::alloc`] would, near `near`. Leaves
    /// the hint, which belongs to data, where it is.
    pub fn alloc_meta(
        &mut self,
        dev: &BlockDevice,
        h: &Handle<'_>,
        near: Option<u32>,
        pending: Pending<'_>,
    ) -> Result<u32> {
        let near = near.filter(|g| *g >= self.first && *g < self.nbits);
        if self.zone > 0 && self.free > 0 {
            let block = near.unwrap_or(self.hint) / BITS_PER_BLOCK;
            let (lo, hi) = self.zone(block);
            if let Some((n, _)) = self.take(dev, h, lo, hi, 1, pending)? {
                return Ok(n);
            }
        }
        self.alloc(dev, h, near, pending)
    }

    /// The metadata zone of bitmap block `block`: its first [`Bitmap::zone`] allocatable
    /// objects (empty without zones).
    fn zone(&self, block: u32) -> (u32, u32) {
        let base = block.saturating_mul(BITS_PER_BLOCK);
        let end = base.saturating_add(BITS_PER_BLOCK).min(self.nbits);
        let lo = base.max(self.first).min(end);
        (lo, lo.saturating_add(self.zone).min(end))
    }

    /// Takes the first free, usable object in `[from, to)` (within one bitmap block)
    /// and the free, usable ones right after it, up to `max` (at least 1) in all: marks
    /// them used in transaction `h` and returns the first and the count.
    fn take(
        &mut self,
        dev: &BlockDevice,
        h: &Handle<'_>,
        from: u32,
        to: u32,
        max: u32,
        pending: Pending<'_>,
    ) -> Result<Option<(u32, u32)>> {
        let from = from.max(self.first);
        if from >= to {
            return Ok(None);
        }
        let block = from / BITS_PER_BLOCK;
        let buf = dev.read(u64::from(self.start.saturating_add(block)))?;
        let found = {
            let g = buf.lock();
            let clear = |n: u32| !bit_set(&g, n);
            let full_byte = |n: u32| {
                let (_, byte, _) = bit_location(n);
                n & 7 == 0 && g.get(byte) == Some(&0xff)
            };
            let window = |n: u32| pending(n, to.saturating_sub(n));
            let mut n = from;
            // The next pending run at or after `n`: (its first object, its end).
            let mut next_pending = window(n);
            let mut hit = None;
            while n < to {
                if next_pending.is_some_and(|(_, e)| e <= n) {
                    next_pending = window(n);
                }
                match next_pending {
                    Some((p, e)) if p <= n => {
                        n = e.max(n.saturating_add(1));
                        next_pending = window(n);
                    }
                    _ if full_byte(n) => n = n.saturating_add(8),
                    _ if !clear(n) => n = n.saturating_add(1),
                    _ => {
                        hit = Some(n);
                        break;
                    }
                }
            }
            hit.map(|n| {
                let limit = n.saturating_add(max.clamp(1, self.free)).min(to);
                let limit =
                    next_pending.map_or(limit, |(p, _)| p.max(n.saturating_add(1)).min(limit));
                let end = (n.saturating_add(1)..limit)
                    .find(|&m| !clear(m))
                    .unwrap_or(limit);
                (n, end.saturating_sub(n))
            })
        };
        let Some((n, count)) = found else {
            return Ok(None);
        };
        h.modify(&buf, |b| {
            for m in n..n.saturating_add(count) {
                let (_, byte, mask) = bit_location(m);
                if let Some(x) = b.get_mut(byte) {
                    *x |= mask;
                }
            }
        })?;
        self.free = self.free.saturating_sub(count);
        Ok(Some((n, count)))
    }

    /// Frees object `n`.
    pub fn release(&mut self, dev: &BlockDevice, h: &Handle<'_>, n: u32) -> Result {
        self.release_run(dev, h, n, 1)
    }

    /// Frees objects `[first, first + count)`, all of which must be in use, with one
    /// change per bitmap block (a file's blocks come back a run at a time).
    pub fn release_run(
        &mut self,
        dev: &BlockDevice,
        h: &Handle<'_>,
        first: u32,
        count: u32,
    ) -> Result {
        let end = first
            .checked_add(count)
            .filter(|&e| first >= self.first && e <= self.nbits)
            .ok_or_else(|| {
                corrupt(format_args!(
                    "{}: freeing {first} (+{count}), outside {}..{}",
                    self.what, self.first, self.nbits
                ))
            })?;
        let mut n = first;
        while n < end {
            let (block, _, _) = bit_location(n);
            let stop = block
                .saturating_add(1)
                .saturating_mul(BITS_PER_BLOCK)
                .min(end);
            let buf = dev.read(u64::from(self.start.saturating_add(block)))?;
            let all_used = h.modify(&buf, |b| {
                if !(n..stop).all(|m| bit_set(b, m)) {
                    return false;
                }
                for m in n..stop {
                    let (_, byte, mask) = bit_location(m);
                    if let Some(x) = b.get_mut(byte) {
                        *x &= !mask;
                    }
                }
                true
            })?;
            if !all_used {
                return Err(corrupt(format_args!(
                    "{}: freeing {n}..{stop}, not all of which are in use",
                    self.what
                )));
            }
            self.free = self.free.saturating_add(stop.saturating_sub(n));
            if self.rewind && n < self.hint {
                self.hint = n;
            }
            n = stop;
        }
        Ok(())
    }
}

/// [`Pending`] for blocks: those freed by a transaction that has not committed.
pub fn blocks_pending(journal: &Journal) -> impl Fn(u32, u32) -> Option<(u32, u32)> + '_ {
    move |n, len| {
        let (p, e) = journal.pending_run(u64::from(n), u64::from(len))?;
        Some((u32::try_from(p).ok()?, u32::try_from(e).unwrap_or(u32::MAX)))
    }
}
