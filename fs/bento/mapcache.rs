// SPDX-License-Identifier: GPL-2.0
//! The last mapped run of a block-backed file: `map_blocks` answers, kept so that the
//! buffered writes and reads of a run ask the file system once, not once per block
//! (ext4 keeps a whole extent-status tree per inode; one run serves sequential I/O).
//!
//! Only mapped runs are kept, never holes, so allocation cannot make an entry wrong;
//! what unmaps blocks (truncate, punching a hole) calls [`MapCache::forget`] after the
//! file system freed them. An answer is stored only if nothing was forgotten since
//! before the file system was asked ([`Miss::token`]), so a run read before a
//! truncate is never cached after it. The file system's mapping is the disk's: a live
//! upgrade does not change it.

use bento::Extent;
use kernel::prelude::*;
use kernel::sync::SpinLock;

/// The cached run and the count of `forget` calls.
#[derive(Default)]
struct Run {
    forgotten: u64,
    file_block: u64,
    disk_block: u64,
    /// 0: nothing cached.
    len: u64,
}

/// A lookup the cache could not answer.
pub(crate) struct Miss {
    /// What [`MapCache::store`] needs: the state before the file system is asked.
    pub(crate) token: u64,
    /// `block` is where the cached run ends (or, with nothing cached, the file's first
    /// block): the file is being read or written in order.
    pub(crate) follows: bool,
}

/// One file's cached run (see the module documentation).
#[pin_data]
pub(crate) struct MapCache {
    #[pin]
    run: SpinLock<Run>,
}

impl MapCache {
    /// An empty cache.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            run <- kernel::new_spinlock!(Run::default(), "bento::mapcache"),
        })
    }

    /// The run mapped from `block`, at most `count` blocks long, if it is cached;
    /// otherwise what the caller needs to ask the file system (one lock either way).
    pub(crate) fn lookup(&self, block: u64, count: u32) -> Result<Extent, Miss> {
        let r = self.run.lock();
        let off = block.wrapping_sub(r.file_block);
        if block < r.file_block || off >= r.len {
            return Err(Miss {
                token: r.forgotten,
                follows: r.file_block.saturating_add(r.len) == block,
            });
        }
        let len = (r.len - off).min(u64::from(count.max(1)));
        Ok(Extent {
            disk_block: r.disk_block.saturating_add(off),
            len: u32::try_from(len).unwrap_or(u32::MAX),
            new: false,
        })
    }

    /// Caches `e`, the file system's answer for `block`, unless it is a hole or the
    /// cache forgot its runs since the miss gave `token`.
    pub(crate) fn store(&self, token: u64, block: u64, e: &Extent) {
        if e.disk_block == 0 {
            return;
        }
        let mut r = self.run.lock();
        if r.forgotten == token {
            r.file_block = block;
            r.disk_block = e.disk_block;
            r.len = u64::from(e.len.max(1));
        }
    }

    /// Drops the cached run: blocks of the file were unmapped.
    pub(crate) fn forget(&self) {
        let mut r = self.run.lock();
        r.forgotten = r.forgotten.wrapping_add(1);
        r.len = 0;
    }
}
