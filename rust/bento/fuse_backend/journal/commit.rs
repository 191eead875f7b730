// SPDX-License-Identifier: GPL-2.0
//! Writing the log: committing a transaction (`fs/jbd2/commit.c`), checkpointing
//! committed metadata in place and moving the log tail (`checkpoint.c`), and the
//! journal superblock updates that go with them.
//!
//! A commit writes, in order: the journal superblock if the journal was marked clean (so
//! that recovery looks at the log again), every dirty unjournaled buffer of the device
//! (data=ordered), the transaction's revoke blocks, its descriptor blocks each followed
//! by the logged copies of the blocks it describes (escaped when they start with the
//! jbd2 magic), a flush, the commit block, and another flush. After that the
//! transaction is durable.
//!
//! Checkpointing writes the committed copy of every logged block in place (not the
//! cached block, which may already hold changes of a newer, uncommitted transaction),
//! flushes, then moves the log tail to the head in the superblock and flushes again;
//! only then may the log space be reused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use super::format::{self, Layout, Superblock, Tag};
use super::Held;
use crate::errno::Result;
use crate::fuse_backend::block::Device;
use crate::journal::Tid;

/// Where the journal is on the device, and the numbers derived from its superblock.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    /// Device block of journal block 0 (the superblock).
    pub start: u64,
    /// Journal length in blocks (`s_maxlen`).
    pub maxlen: u64,
    /// First and one-past-last log blocks (journal-relative).
    pub first: u64,
    pub last: u64,
    pub uuid: [u8; 16],
    pub seed: u32,
    pub layout: Layout,
    /// Most log blocks one transaction may take (jbd2: a third of the journal).
    pub max_tx: u64,
    /// Log blocks that may be in use at once (the log less some slack).
    pub capacity: u64,
}

/// A committed block waiting to be written in place.
pub(super) struct Checkpoint {
    tid: u32,
    data: Vec<u8>,
    _held: Held,
}

/// The log's state, under the journal's commit mutex: only one commit or checkpoint
/// runs at a time.
pub(super) struct LogState {
    /// Next log block to write.
    pub head: u64,
    /// Oldest log block recovery would need (equal to `head` when the log is empty).
    pub tail: u64,
    pub sb: Superblock,
    /// The on-disk superblock says the journal is empty (`s_start == 0`).
    pub sb_clean: bool,
    /// Committed blocks not yet written in place, by block number.
    pub checkpoint: BTreeMap<u64, Checkpoint>,
}

/// Writes consecutive log blocks, batching runs that do not wrap.
struct LogWriter<'a> {
    dev: &'a Device,
    geo: &'a Geometry,
    pos: u64,
    run_start: u64,
    run: Vec<u8>,
    written: u64,
}

/// Largest single write.
const MAX_RUN: usize = 1 << 20;

impl<'a> LogWriter<'a> {
    fn new(dev: &'a Device, geo: &'a Geometry, pos: u64) -> Self {
        LogWriter {
            dev,
            geo,
            pos,
            run_start: pos,
            run: Vec::new(),
            written: 0,
        }
    }

    fn push(&mut self, block: &[u8]) -> Result {
        if self.run.is_empty() {
            self.run_start = self.pos;
        }
        self.run.extend_from_slice(block);
        self.written += 1;
        self.pos += 1;
        if self.pos >= self.geo.last {
            self.pos = self.geo.first;
            self.finish()?;
        } else if self.run.len() >= MAX_RUN {
            self.finish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result {
        if self.run.is_empty() {
            return Ok(());
        }
        let res = self
            .dev
            .write_raw(self.geo.start + self.run_start, &self.run);
        self.run.clear();
        res
    }
}

/// Writes the superblock to journal block 0 and flushes it.
pub(super) fn write_superblock(dev: &Device, geo: &Geometry, sb: &mut Superblock) -> Result {
    sb.seal();
    dev.write_raw(geo.start, &sb.to_block(dev.block_size()))?;
    dev.flush()
}

/// Commits transaction `tid` made of `blocks` (block number and committed contents) and
/// `revokes`; returns the number of log blocks it took.
pub(super) fn write_transaction(
    dev: &Device,
    geo: &Geometry,
    log: &mut LogState,
    tid: u32,
    blocks: &[(u64, Vec<u8>)],
    revokes: &BTreeSet<u64>,
) -> Result<u64> {
    if log.sb_clean {
        log.tail = log.head;
        log.sb.set_start(log.head as u32);
        log.sb.set_sequence(tid);
        write_superblock(dev, geo, &mut log.sb)?;
        log.sb_clean = false;
    }
    // data=ordered: file data first.
    dev.write_dirty()?;

    let layout = &geo.layout;
    let mut w = LogWriter::new(dev, geo, log.head);
    let records: Vec<u64> = revokes.iter().copied().collect();
    for chunk in records.chunks(layout.revokes_per_block) {
        w.push(&format::revoke_block(layout, tid, geo.seed, chunk))?;
    }
    for chunk in blocks.chunks(layout.tags_per_desc) {
        let mut logged: Vec<std::borrow::Cow<'_, [u8]>> = Vec::with_capacity(chunk.len());
        let mut tags = Vec::with_capacity(chunk.len());
        for (nr, data) in chunk {
            let escaped = format::get32(data, 0) == Some(format::MAGIC);
            let copy: std::borrow::Cow<'_, [u8]> = if escaped {
                let mut c = data.clone();
                format::put(&mut c, 0, &[0; 4]);
                c.into()
            } else {
                data.as_slice().into()
            };
            tags.push(Tag {
                blocknr: *nr,
                escaped,
                csum: format::tag_csum(geo.seed, tid, &copy),
            });
            logged.push(copy);
        }
        w.push(&format::descriptor_block(
            layout, tid, &geo.uuid, geo.seed, &tags,
        ))?;
        for b in &logged {
            w.push(b)?;
        }
    }
    w.finish()?;
    dev.flush()?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    w.push(&format::commit_block(
        layout,
        tid,
        geo.seed,
        now.as_secs(),
        now.subsec_nanos(),
    ))?;
    w.finish()?;
    dev.flush()?;
    log.head = w.pos;
    Ok(w.written)
}

/// Files the blocks of committed transaction `tid` for checkpointing. A newer copy
/// replaces an older one; a block the transaction revoked no longer needs its older
/// copy written (it was freed, and may be reused once `tid` is committed).
pub(super) fn add_checkpoint(
    log: &mut LogState,
    tid: u32,
    blocks: Vec<(u64, Vec<u8>, Held)>,
    revokes: &BTreeSet<u64>,
) {
    for (nr, data, held) in blocks {
        log.checkpoint.insert(
            nr,
            Checkpoint {
                tid,
                data,
                _held: held,
            },
        );
    }
    for r in revokes {
        if log
            .checkpoint
            .get(r)
            .is_some_and(|c| Tid::from_raw(tid).is_after(Tid::from_raw(c.tid)))
        {
            log.checkpoint.remove(r);
        }
    }
}

/// Writes every committed block in place and empties the log: the tail moves to the
/// head, and recovery will start at transaction `next_tid`. On error the blocks stay
/// filed.
pub(super) fn checkpoint(
    dev: &Device,
    geo: &Geometry,
    log: &mut LogState,
    next_tid: u32,
) -> Result {
    if log.checkpoint.is_empty() && log.tail == log.head {
        return Ok(());
    }
    let mut run: Vec<u8> = Vec::new();
    let mut run_start = 0u64;
    let mut run_next = 0u64;
    for (&nr, cp) in &log.checkpoint {
        if !run.is_empty() && (nr != run_next || run.len() >= MAX_RUN) {
            dev.write_raw(run_start, &run)?;
            run.clear();
        }
        if run.is_empty() {
            run_start = nr;
        }
        run.extend_from_slice(&cp.data);
        run_next = nr + 1;
    }
    if !run.is_empty() {
        dev.write_raw(run_start, &run)?;
    }
    dev.flush()?;
    if !log.sb_clean {
        log.sb.set_start(log.head as u32);
        log.sb.set_sequence(next_tid);
        write_superblock(dev, geo, &mut log.sb)?;
    }
    log.tail = log.head;
    log.checkpoint.clear();
    Ok(())
}

/// Marks the (checkpointed) journal clean: `s_start = 0`, recovery not needed; the next
/// load starts after transaction `next_tid`.
pub(super) fn mark_clean(
    dev: &Device,
    geo: &Geometry,
    log: &mut LogState,
    next_tid: u32,
) -> Result {
    if log.sb_clean {
        return Ok(());
    }
    log.sb.set_start(0);
    log.sb.set_sequence(next_tid);
    log.sb.set_head(log.head as u32);
    write_superblock(dev, geo, &mut log.sb)?;
    log.sb_clean = true;
    Ok(())
}
