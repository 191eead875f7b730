// SPDX-License-Identifier: GPL-2.0
//! Journal recovery, following `fs/jbd2/recovery.c` pass for pass: `Scan` finds the end
//! of the log (the first transaction without a valid commit block), `Revoke` collects
//! the revoke records of the transactions found, `Replay` copies every logged block that
//! no later revoke record covers back to its place (through the buffer cache, so blocks
//! a caller already holds see the replayed contents).
//!
//! The checks and their outcomes are jbd2's: a commit block whose checksum fails ends
//! the log there (an interrupted commit); a descriptor or revoke block whose checksum
//! fails makes the scan look at the commit time, so that stale blocks of an older log
//! end it quietly while a corrupt block inside the live log is an error; a logged block
//! whose tag checksum fails is skipped and reported.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic
)]

use std::collections::HashMap;

use super::format::{self, Features, Superblock};
use crate::errno::{Errno, Result};
use crate::fuse_backend::block::Device;
use crate::journal::{Recovery, Tid};

/// Where the log is and how to read it.
pub(super) struct Log<'a> {
    pub dev: &'a Device,
    /// Device block of journal block 0.
    pub start: u64,
    /// First and one-past-last log blocks (journal-relative).
    pub first: u64,
    pub last: u64,
    pub block_size: usize,
    pub features: Features,
    pub seed: u32,
}

impl Log<'_> {
    fn read(&self, jblock: u64, buf: &mut [u8]) -> Result {
        if jblock < self.first || jblock >= self.last {
            crate::error!(
                "bento: journal: log block {jblock} outside the log [{}, {})",
                self.first,
                self.last
            );
            return Err(Errno::EUCLEAN);
        }
        let blk = self.start.checked_add(jblock).ok_or(Errno::EUCLEAN)?;
        self.dev.read_raw(blk, buf)
    }

    /// The log block `n` blocks after `b`, wrapping around the circular log.
    fn advance(&self, b: u64, n: u64) -> u64 {
        let len = self.last.saturating_sub(self.first).max(1);
        let rel = b
            .saturating_sub(self.first)
            .saturating_add(n)
            .checked_rem(len)
            .unwrap_or(0);
        self.first.saturating_add(rel)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pass {
    Scan,
    Revoke,
    Replay,
}

fn tid_gt(a: u32, b: u32) -> bool {
    Tid::from_raw(a).is_after(Tid::from_raw(b))
}

struct State {
    info: Recovery,
    /// `end_tid` is known (set by the scan).
    end_known: bool,
    /// Revoked block → the latest transaction revoking it.
    revoked: HashMap<u64, u32>,
}

impl State {
    fn set_revoke(&mut self, blocknr: u64, tid: u32) {
        let e = self.revoked.entry(blocknr).or_insert(tid);
        if tid_gt(tid, *e) {
            *e = tid;
        }
    }

    fn is_revoked(&self, blocknr: u64, tid: u32) -> bool {
        self.revoked.get(&blocknr).is_some_and(|&r| !tid_gt(tid, r))
    }
}

/// Replays the log described by `sb` (whose `s_start` is non-zero). Blocks are written
/// to the cache and marked dirty; the caller syncs the device. On error the recovery
/// counts so far are returned with it.
pub(super) fn recover(log: &Log<'_>, sb: &Superblock) -> (Recovery, Result) {
    let mut st = State {
        info: Recovery {
            was_dirty: true,
            first_tid: sb.sequence(),
            end_tid: sb.sequence(),
            ..Recovery::default()
        },
        end_known: false,
        revoked: HashMap::new(),
    };
    let mut res = Ok(());
    for pass in [Pass::Scan, Pass::Revoke, Pass::Replay] {
        res = one_pass(log, sb, &mut st, pass);
        if res.is_err() {
            break;
        }
    }
    (st.info, res)
}

/// The number of tags in a descriptor block (`count_tags`).
fn count_tags(f: &Features, block: &[u8]) -> u64 {
    let mut n = 0u64;
    for_each_tag(f, block, |_, _| n = n.saturating_add(1));
    n
}

/// Calls `each(offset, flags)` for every tag of a descriptor block, as jbd2 walks them.
fn for_each_tag(f: &Features, block: &[u8], mut each: impl FnMut(usize, u16)) {
    let tag_bytes = f.tag_bytes();
    let limit = block.len().saturating_sub(f.tail_size());
    let mut off = format::HEADER_SIZE;
    while off.saturating_add(tag_bytes) <= limit {
        // The flags are the low half of a 32-bit field in tag3, a 16-bit field at the
        // same place otherwise.
        let flags = format::get16(block, off.saturating_add(6)).unwrap_or(0);
        each(off, flags);
        off = off.saturating_add(tag_bytes);
        if flags & format::FLAG_SAME_UUID == 0 {
            off = off.saturating_add(format::UUID_SIZE);
        }
        if flags & format::FLAG_LAST_TAG != 0 {
            break;
        }
    }
}

fn one_pass(log: &Log<'_>, sb: &Superblock, st: &mut State, pass: Pass) -> Result {
    let f = log.features;
    let mut next_tid = sb.sequence();
    let mut next = u64::from(sb.start());
    let mut need_check_commit_time = false;
    let mut last_commit_time = 0u64;
    let mut success: Result = Ok(());
    let mut buf = vec![0u8; log.block_size];
    let mut obuf = vec![0u8; log.block_size];

    loop {
        if pass != Pass::Scan && !tid_gt(st.info.end_tid, next_tid) {
            break;
        }
        log.read(next, &mut buf)?;
        next = log.advance(next, 1);
        let Some((blocktype, sequence)) = format::read_header(&buf) else {
            break;
        };
        if sequence != next_tid {
            break;
        }
        match blocktype {
            format::DESCRIPTOR_BLOCK => {
                if f.csum() && !format::tail_csum_ok(log.seed, &buf) {
                    if pass != Pass::Scan {
                        crate::error!(
                            "bento: journal: bad descriptor checksum in transaction {next_tid}"
                        );
                        return Err(Errno::EUCLEAN);
                    }
                    need_check_commit_time = true;
                }
                if pass != Pass::Replay {
                    next = log.advance(next, count_tags(&f, &buf));
                    continue;
                }
                let mut err = Ok(());
                for_each_tag(&f, &buf, |off, flags| {
                    let io_block = next;
                    next = log.advance(next, 1);
                    if let Err(e) =
                        replay_tag(log, st, &buf, off, flags, io_block, next_tid, &mut obuf)
                    {
                        err = Err(e);
                    }
                });
                if err.is_err() {
                    success = err;
                }
            }
            format::COMMIT_BLOCK => {
                let commit_time = format::get64(&buf, format::COMMIT_SEC).unwrap_or(0);
                if need_check_commit_time {
                    if commit_time >= last_commit_time {
                        crate::error!(
                            "bento: journal: invalid checksum found in transaction {next_tid}"
                        );
                        return Err(Errno::EUCLEAN);
                    }
                    // A stale block of an older log: the log ends here.
                    break;
                }
                let mut ok = true;
                if pass == Pass::Scan && f.csum() && !format::commit_csum_ok(log.seed, &buf) {
                    if format::commit_csum_ok_partial(log.seed, &buf) {
                        crate::info!(
                            "bento: journal: incomplete commit block in transaction {next_tid}"
                        );
                    } else {
                        ok = false;
                    }
                }
                if !ok {
                    if commit_time < last_commit_time {
                        break;
                    }
                    // An interrupted commit: the log ends before this transaction.
                    st.info.end_tid = next_tid;
                    st.end_known = true;
                    if !f.has(format::INCOMPAT_ASYNC_COMMIT) {
                        break;
                    }
                }
                if pass == Pass::Scan {
                    last_commit_time = commit_time;
                }
                next_tid = next_tid.wrapping_add(1);
            }
            format::REVOKE_BLOCK => {
                if pass == Pass::Scan && f.csum() && !format::tail_csum_ok(log.seed, &buf) {
                    need_check_commit_time = true;
                }
                if pass == Pass::Revoke {
                    scan_revoke_records(&f, st, &buf, next_tid)?;
                }
            }
            _ => break,
        }
    }

    if pass == Pass::Scan {
        if !st.end_known {
            st.info.end_tid = next_tid;
            st.end_known = true;
        }
    } else if st.info.end_tid != next_tid {
        crate::error!(
            "bento: journal: recovery pass {pass:?} ended at transaction {next_tid}, expected {}",
            st.info.end_tid
        );
        success = success.and(Err(Errno::EUCLEAN));
    }
    success
}

/// Replays the block of one tag (pass `Replay`).
#[allow(clippy::too_many_arguments)]
fn replay_tag(
    log: &Log<'_>,
    st: &mut State,
    desc: &[u8],
    off: usize,
    flags: u16,
    io_block: u64,
    tid: u32,
    obuf: &mut [u8],
) -> Result {
    let f = log.features;
    if let Err(e) = log.read(io_block, obuf) {
        st.info.bad_blocks = st.info.bad_blocks.saturating_add(1);
        crate::error!("bento: journal: I/O error {e} recovering log block {io_block}");
        return Err(Errno::EIO);
    }
    let mut blocknr = u64::from(format::get32(desc, off).unwrap_or(0));
    if f.has(format::INCOMPAT_64BIT) {
        let high = u64::from(format::get32(desc, off.saturating_add(8)).unwrap_or(0));
        blocknr |= high << 32;
    }
    if st.is_revoked(blocknr, tid) {
        st.info.revoked_blocks = st.info.revoked_blocks.saturating_add(1);
        return Ok(());
    }
    if f.csum() {
        let csum = format::tag_csum(log.seed, tid, obuf);
        let ok = if f.has(format::INCOMPAT_CSUM_V3) {
            format::get32(desc, off.saturating_add(12)) == Some(csum)
        } else {
            format::get16(desc, off.saturating_add(4)) == Some((csum & 0xffff) as u16)
        };
        if !ok {
            st.info.bad_blocks = st.info.bad_blocks.saturating_add(1);
            crate::error!(
                "bento: journal: invalid checksum recovering data block {blocknr} in log block {io_block}"
            );
            return Err(Errno::EIO);
        }
    }
    if blocknr >= log.dev.nr_blocks() {
        st.info.bad_blocks = st.info.bad_blocks.saturating_add(1);
        crate::error!("bento: journal: logged block {blocknr} is beyond the end of the device");
        return Err(Errno::EIO);
    }
    let buf = log.dev.get(blocknr)?;
    {
        let mut g = buf.lock();
        g.copy_from_slice(obuf);
        if flags & format::FLAG_ESCAPE != 0 {
            format::put(&mut g, 0, &format::MAGIC.to_be_bytes());
        }
    }
    buf.mark_dirty();
    st.info.replayed_blocks = st.info.replayed_blocks.saturating_add(1);
    Ok(())
}

/// Reads the records of a revoke block (`scan_revoke_records`).
fn scan_revoke_records(f: &Features, st: &mut State, block: &[u8], tid: u32) -> Result {
    let rcount = format::get32(block, format::HEADER_SIZE).unwrap_or(0) as usize;
    if rcount > block.len().saturating_sub(f.tail_size()) {
        crate::error!("bento: journal: revoke block of transaction {tid} claims {rcount} bytes");
        return Err(Errno::EUCLEAN);
    }
    let record_len = if f.has(format::INCOMPAT_64BIT) { 8 } else { 4 };
    let mut off = format::REVOKE_HEADER_SIZE;
    while off.saturating_add(record_len) <= rcount {
        let blocknr = if record_len == 8 {
            format::get64(block, off)
        } else {
            format::get32(block, off).map(u64::from)
        }
        .unwrap_or(0);
        st.set_revoke(blocknr, tid);
        st.info.revoke_records = st.info.revoke_records.saturating_add(1);
        off = off.saturating_add(record_len);
    }
    Ok(())
}
