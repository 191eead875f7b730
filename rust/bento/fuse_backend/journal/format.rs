// SPDX-License-Identifier: GPL-2.0
//! jbd2's on-disk format (`include/linux/jbd2.h`): the superblock, the block header, the
//! descriptor, revoke and commit blocks and their checksums. All fields are big-endian.
//!
//! Readers here accept what jbd2 accepts (any tag size, `CSUM_V2` or `V3` or none);
//! writers produce only the pinned format (`64BIT | CSUM_V3 | REVOKE`).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic
)]

use crate::crc32c::crc32c;
use crate::errno::{Errno, Result};

/// `JBD2_MAGIC_NUMBER`, the first word of every journal metadata block.
pub(super) const MAGIC: u32 = 0xc03b_3998;

/// `JBD2_DESCRIPTOR_BLOCK`.
pub(super) const DESCRIPTOR_BLOCK: u32 = 1;
/// `JBD2_COMMIT_BLOCK`.
pub(super) const COMMIT_BLOCK: u32 = 2;
/// `JBD2_SUPERBLOCK_V1`.
pub(super) const SUPERBLOCK_V1: u32 = 3;
/// `JBD2_SUPERBLOCK_V2`.
pub(super) const SUPERBLOCK_V2: u32 = 4;
/// `JBD2_REVOKE_BLOCK`.
pub(super) const REVOKE_BLOCK: u32 = 5;

/// Tag flag: the logged copy had its first word (the magic) zeroed.
pub(super) const FLAG_ESCAPE: u16 = 1;
/// Tag flag: no UUID follows this tag.
pub(super) const FLAG_SAME_UUID: u16 = 2;
/// Tag flag: the last tag of its descriptor block.
pub(super) const FLAG_LAST_TAG: u16 = 8;

/// `JBD2_FEATURE_COMPAT_CHECKSUM` (checksum v1).
pub(super) const COMPAT_CHECKSUM: u32 = 0x1;
/// `JBD2_FEATURE_INCOMPAT_REVOKE`.
pub(super) const INCOMPAT_REVOKE: u32 = 0x1;
/// `JBD2_FEATURE_INCOMPAT_64BIT`.
pub(super) const INCOMPAT_64BIT: u32 = 0x2;
/// `JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT`.
pub(super) const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V2`.
pub(super) const INCOMPAT_CSUM_V2: u32 = 0x8;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V3`.
pub(super) const INCOMPAT_CSUM_V3: u32 = 0x10;
/// `JBD2_FEATURE_INCOMPAT_FAST_COMMIT`.
pub(super) const INCOMPAT_FAST_COMMIT: u32 = 0x20;
/// Every incompatible feature jbd2 in Linux 6.12 knows.
pub(super) const KNOWN_INCOMPAT: u32 = INCOMPAT_REVOKE
    | INCOMPAT_64BIT
    | INCOMPAT_ASYNC_COMMIT
    | INCOMPAT_CSUM_V2
    | INCOMPAT_CSUM_V3
    | INCOMPAT_FAST_COMMIT;
/// The features this project writes.
pub(super) const PINNED_INCOMPAT: u32 = INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_CSUM_V3;

/// `JBD2_CRC32C_CHKSUM`, the superblock's checksum type for `CSUM_V2`/`V3`.
pub(super) const CRC32C_CHKSUM: u8 = 4;
/// `JBD2_MIN_JOURNAL_BLOCKS`.
pub(super) const MIN_JOURNAL_BLOCKS: u64 = 1024;
/// `JBD2_DEFAULT_FAST_COMMIT_BLOCKS`.
const DEFAULT_FAST_COMMIT_BLOCKS: u32 = 256;

/// `sizeof(journal_header_t)`.
pub(super) const HEADER_SIZE: usize = 12;
/// `sizeof(struct jbd2_journal_block_tail)`.
pub(super) const TAIL_SIZE: usize = 4;
/// `sizeof(jbd2_journal_revoke_header_t)`.
pub(super) const REVOKE_HEADER_SIZE: usize = 16;
/// `sizeof(journal_superblock_t)`.
pub(super) const SUPERBLOCK_SIZE: usize = 1024;
/// `sizeof(journal_block_tag3_t)`: the tag size of the pinned format.
const TAG3_SIZE: usize = 16;
/// The UUID that follows the first tag of a descriptor block.
pub(super) const UUID_SIZE: usize = 16;
/// Offset of `h_chksum[0]` in a commit block.
pub(super) const COMMIT_CHKSUM: usize = 16;
/// Offset of `h_commit_sec` in a commit block.
pub(super) const COMMIT_SEC: usize = 48;
/// `sizeof(struct commit_header)`.
pub(super) const COMMIT_HEADER_SIZE: usize = 60;

// Superblock field offsets.
const SB_BLOCKSIZE: usize = 0x0c;
const SB_MAXLEN: usize = 0x10;
const SB_FIRST: usize = 0x14;
const SB_SEQUENCE: usize = 0x18;
const SB_START: usize = 0x1c;
const SB_ERRNO: usize = 0x20;
const SB_COMPAT: usize = 0x24;
const SB_INCOMPAT: usize = 0x28;
const SB_RO_COMPAT: usize = 0x2c;
const SB_UUID: usize = 0x30;
const SB_NR_USERS: usize = 0x40;
const SB_CHECKSUM_TYPE: usize = 0x50;
const SB_NUM_FC_BLKS: usize = 0x54;
const SB_HEAD: usize = 0x58;
const SB_CHECKSUM: usize = 0xfc;

/// Reads a big-endian `u32` at `off`, if it is inside `b`.
pub(super) fn get32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut w = [0u8; 4];
    w.copy_from_slice(s);
    Some(u32::from_be_bytes(w))
}

/// Reads a big-endian `u16` at `off`, if it is inside `b`.
pub(super) fn get16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    let mut w = [0u8; 2];
    w.copy_from_slice(s);
    Some(u16::from_be_bytes(w))
}

/// Reads a big-endian `u64` at `off`, if it is inside `b`.
pub(super) fn get64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(s);
    Some(u64::from_be_bytes(w))
}

/// Writes `v` big-endian at `off`; a write outside `b` is dropped (callers stay inside
/// by construction).
pub(super) fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(s) = off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
        s.copy_from_slice(v);
    }
}

/// The checksum seed of a journal: `crc32c(~0, uuid)`, as jbd2's `j_csum_seed`.
pub(super) fn seed(uuid: &[u8; 16]) -> u32 {
    crc32c(!0, uuid)
}

/// The checksum of `block` from `seed`, with the 4 bytes at `csum_off` taken as zero
/// (how jbd2 checksums a block that holds its own checksum).
pub(super) fn csum_skipping(seed: u32, block: &[u8], csum_off: usize) -> u32 {
    let (head, rest) = block.split_at(csum_off.min(block.len()));
    let crc = crc32c(seed, head);
    let zeroes = [0u8; 4];
    let crc = crc32c(crc, zeroes.get(..rest.len().min(4)).unwrap_or(&[]));
    crc32c(crc, rest.get(4..).unwrap_or(&[]))
}

/// The checksum of a logged block in its tag: `crc32c(seed, be32(tid) + data)`.
pub(super) fn tag_csum(seed: u32, tid: u32, data: &[u8]) -> u32 {
    crc32c(crc32c(seed, &tid.to_be_bytes()), data)
}

/// Whether the tail checksum of a descriptor or revoke block verifies.
pub(super) fn tail_csum_ok(seed: u32, block: &[u8]) -> bool {
    let off = block.len().saturating_sub(TAIL_SIZE);
    get32(block, off) == Some(csum_skipping(seed, block, off))
}

/// Whether the checksum of a commit block verifies over the whole block.
pub(super) fn commit_csum_ok(seed: u32, block: &[u8]) -> bool {
    get32(block, COMMIT_CHKSUM) == Some(csum_skipping(seed, block, COMMIT_CHKSUM))
}

/// Whether the checksum of a commit block verifies over its header alone, the rest of
/// the block taken as zero (a commit block whose tail did not reach the disk).
pub(super) fn commit_csum_ok_partial(seed: u32, block: &[u8]) -> bool {
    let mut tmp = vec![0u8; block.len()];
    let n = COMMIT_HEADER_SIZE.min(block.len());
    if let (Some(d), Some(s)) = (tmp.get_mut(..n), block.get(..n)) {
        d.copy_from_slice(s);
    }
    commit_csum_ok(seed, &tmp)
}

/// The feature words of a journal superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Features {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

impl Features {
    /// The pinned features.
    pub const PINNED: Features = Features {
        compat: 0,
        incompat: PINNED_INCOMPAT,
        ro_compat: 0,
    };

    pub fn has(&self, incompat: u32) -> bool {
        self.incompat & incompat != 0
    }

    /// Checksums v2 or v3 are on: metadata blocks carry tails, tags checksums.
    pub fn csum(&self) -> bool {
        self.has(INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3)
    }

    /// `journal_tag_bytes()`.
    pub fn tag_bytes(&self) -> usize {
        if self.has(INCOMPAT_CSUM_V3) {
            return TAG3_SIZE;
        }
        let sz = if self.has(INCOMPAT_CSUM_V2) { 14 } else { 12 };
        if self.has(INCOMPAT_64BIT) {
            sz
        } else {
            sz.saturating_sub(4)
        }
    }

    /// Bytes at the end of a descriptor or revoke block taken by the checksum tail.
    pub fn tail_size(&self) -> usize {
        if self.csum() {
            TAIL_SIZE
        } else {
            0
        }
    }
}

/// A journal superblock: its first 1024 bytes, kept whole so that fields this code does
/// not use (`s_users`, ...) survive a rewrite.
#[derive(Clone)]
pub(super) struct Superblock {
    raw: Vec<u8>,
}

impl Superblock {
    /// Takes the superblock out of journal block 0 (at least 1024 bytes).
    pub fn parse(block: &[u8]) -> Superblock {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        let n = SUPERBLOCK_SIZE.min(block.len());
        if let (Some(d), Some(s)) = (raw.get_mut(..n), block.get(..n)) {
            d.copy_from_slice(s);
        }
        Superblock { raw }
    }

    /// A fresh superblock for an empty journal with the pinned features.
    pub fn new(block_size: u32, maxlen: u32, uuid: [u8; 16]) -> Superblock {
        let mut sb = Superblock {
            raw: vec![0u8; SUPERBLOCK_SIZE],
        };
        sb.set(0, MAGIC);
        sb.set(4, SUPERBLOCK_V2);
        sb.set(SB_BLOCKSIZE, block_size);
        sb.set(SB_MAXLEN, maxlen);
        sb.set(SB_FIRST, 1);
        sb.set(SB_SEQUENCE, 1);
        put(&mut sb.raw, SB_UUID, &uuid);
        sb.set(SB_NR_USERS, 1);
        sb.set_features(Features::PINNED);
        sb.seal();
        sb
    }

    fn get(&self, off: usize) -> u32 {
        get32(&self.raw, off).unwrap_or(0)
    }

    fn set(&mut self, off: usize, v: u32) {
        put(&mut self.raw, off, &v.to_be_bytes());
    }

    pub fn magic(&self) -> u32 {
        self.get(0)
    }
    pub fn blocktype(&self) -> u32 {
        self.get(4)
    }
    pub fn blocksize(&self) -> u32 {
        self.get(SB_BLOCKSIZE)
    }
    pub fn maxlen(&self) -> u32 {
        self.get(SB_MAXLEN)
    }
    pub fn first(&self) -> u32 {
        self.get(SB_FIRST)
    }
    pub fn sequence(&self) -> u32 {
        self.get(SB_SEQUENCE)
    }
    pub fn start(&self) -> u32 {
        self.get(SB_START)
    }
    pub fn errno(&self) -> u32 {
        self.get(SB_ERRNO)
    }
    pub fn features(&self) -> Features {
        Features {
            compat: self.get(SB_COMPAT),
            incompat: self.get(SB_INCOMPAT),
            ro_compat: self.get(SB_RO_COMPAT),
        }
    }
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        if let Some(s) = self.raw.get(SB_UUID..SB_UUID.saturating_add(16)) {
            u.copy_from_slice(s);
        }
        u
    }
    pub fn checksum_type(&self) -> u8 {
        self.raw.get(SB_CHECKSUM_TYPE).copied().unwrap_or(0)
    }
    /// `jbd2_journal_get_num_fc_blks()`.
    pub fn num_fc_blks(&self) -> u32 {
        match self.get(SB_NUM_FC_BLKS) {
            0 => DEFAULT_FAST_COMMIT_BLOCKS,
            n => n,
        }
    }

    pub fn set_sequence(&mut self, v: u32) {
        self.set(SB_SEQUENCE, v)
    }
    pub fn set_start(&mut self, v: u32) {
        self.set(SB_START, v)
    }
    pub fn set_head(&mut self, v: u32) {
        self.set(SB_HEAD, v)
    }
    pub fn set_errno(&mut self, v: u32) {
        self.set(SB_ERRNO, v)
    }
    pub fn set_features(&mut self, f: Features) {
        self.set(SB_COMPAT, f.compat);
        self.set(SB_INCOMPAT, f.incompat);
        self.set(SB_RO_COMPAT, f.ro_compat);
        if f.csum() {
            put(&mut self.raw, SB_CHECKSUM_TYPE, &[CRC32C_CHKSUM]);
        }
    }

    /// The checksum the superblock should carry (`jbd2_superblock_csum`).
    fn csum(&self) -> u32 {
        csum_skipping(!0, &self.raw, SB_CHECKSUM)
    }

    /// Whether the stored checksum verifies (true without `CSUM_V2`/`V3`).
    pub fn csum_ok(&self) -> bool {
        !self.features().csum() || self.get(SB_CHECKSUM) == self.csum()
    }

    /// Recomputes the checksum after changes (when checksums are on).
    pub fn seal(&mut self) {
        if self.features().csum() {
            let c = self.csum();
            self.set(SB_CHECKSUM, c);
        }
    }

    /// Journal block 0: the superblock followed by zeroes up to the block size.
    pub fn to_block(&self, block_size: usize) -> Vec<u8> {
        let mut b = vec![0u8; block_size.max(SUPERBLOCK_SIZE)];
        put(&mut b, 0, &self.raw);
        b.truncate(block_size);
        b
    }

    /// Validates the superblock of a journal of `len` blocks of `block_size` bytes (as
    /// `journal_check_superblock` and `journal_reset` do), logging what is wrong.
    pub fn check(&self, block_size: usize, len: u64) -> Result {
        if self.magic() != MAGIC || u64::from(self.blocksize()) != block_size as u64 {
            crate::error!(
                "bento: journal: no valid jbd2 superblock (magic {:#x}, block size {})",
                self.magic(),
                self.blocksize()
            );
            return Err(Errno::EINVAL);
        }
        if self.blocktype() != SUPERBLOCK_V2 {
            let v1 = self.blocktype() == SUPERBLOCK_V1;
            crate::error!(
                "bento: journal: {} superblock (type {}); only jbd2 v2 is supported",
                if v1 { "version 1" } else { "unknown" },
                self.blocktype()
            );
            return Err(Errno::EINVAL);
        }
        let maxlen = u64::from(self.maxlen());
        let first = u64::from(self.first());
        if maxlen > len || maxlen < MIN_JOURNAL_BLOCKS {
            crate::error!(
                "bento: journal: bad length {maxlen} (area of {len} blocks, minimum {MIN_JOURNAL_BLOCKS})"
            );
            return Err(Errno::EUCLEAN);
        }
        if first == 0 || first.saturating_add(MIN_JOURNAL_BLOCKS) > maxlen.saturating_add(1) {
            crate::error!("bento: journal: bad first log block {first} of {maxlen}");
            return Err(Errno::EUCLEAN);
        }
        let f = self.features();
        if f.compat & !COMPAT_CHECKSUM != 0 || f.incompat & !KNOWN_INCOMPAT != 0 || f.ro_compat != 0
        {
            crate::error!(
                "bento: journal: unknown features (compat {:#x}, incompat {:#x}, ro_compat {:#x})",
                f.compat,
                f.incompat,
                f.ro_compat
            );
            return Err(Errno::EINVAL);
        }
        if f.has(INCOMPAT_CSUM_V2) && f.has(INCOMPAT_CSUM_V3)
            || f.csum() && f.compat & COMPAT_CHECKSUM != 0
        {
            crate::error!(
                "bento: journal: conflicting checksum features {:#x}",
                f.incompat
            );
            return Err(Errno::EUCLEAN);
        }
        if f.csum() && self.checksum_type() != CRC32C_CHKSUM {
            crate::error!(
                "bento: journal: unknown checksum type {}",
                self.checksum_type()
            );
            return Err(Errno::EINVAL);
        }
        if !self.csum_ok() {
            crate::error!("bento: journal: superblock checksum mismatch");
            return Err(Errno::EUCLEAN);
        }
        let start = u64::from(self.start());
        if start != 0 && (start < first || start >= self.last()) {
            crate::error!("bento: journal: log start {start} outside the log [{first}, {maxlen})");
            return Err(Errno::EUCLEAN);
        }
        Ok(())
    }

    /// One past the last log block (`j_last`): the fast-commit area, if any, follows.
    pub fn last(&self) -> u64 {
        let maxlen = u64::from(self.maxlen());
        if self.features().has(INCOMPAT_FAST_COMMIT) {
            maxlen.saturating_sub(u64::from(self.num_fc_blks()))
        } else {
            maxlen
        }
    }
}

/// Writes the standard header of a journal metadata block.
pub(super) fn header(block: &mut [u8], blocktype: u32, tid: u32) {
    put(block, 0, &MAGIC.to_be_bytes());
    put(block, 4, &blocktype.to_be_bytes());
    put(block, 8, &tid.to_be_bytes());
}

/// Reads the header of a journal block: `(blocktype, sequence)` if it has the magic.
pub(super) fn read_header(block: &[u8]) -> Option<(u32, u32)> {
    if get32(block, 0)? != MAGIC {
        return None;
    }
    Some((get32(block, 4)?, get32(block, 8)?))
}

/// How the writer packs blocks of a given size (pinned format).
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    pub block_size: usize,
    /// Tags per descriptor block, filled as jbd2's commit code does.
    pub tags_per_desc: usize,
    /// Revoke records per revoke block.
    pub revokes_per_block: usize,
}

impl Layout {
    pub fn new(block_size: usize) -> Layout {
        let tag = TAG3_SIZE;
        // jbd2 closes a descriptor when less than a tag, 16 bytes of slack and the tail
        // are left.
        let mut space = block_size.saturating_sub(HEADER_SIZE);
        let mut tags = 0usize;
        loop {
            space = space.saturating_sub(tag);
            if tags == 0 {
                space = space.saturating_sub(UUID_SIZE);
            }
            tags = tags.saturating_add(1);
            if space < tag.saturating_add(16).saturating_add(TAIL_SIZE) {
                break;
            }
        }
        let revokes = block_size
            .saturating_sub(REVOKE_HEADER_SIZE)
            .saturating_sub(TAIL_SIZE)
            / 8;
        Layout {
            block_size,
            tags_per_desc: tags,
            revokes_per_block: revokes.max(1),
        }
    }

    /// Log blocks a transaction of `bufs` blocks and `revokes` revoke records takes at
    /// most: descriptors, the blocks, revoke blocks and the commit block.
    pub fn log_blocks(&self, bufs: u64, revokes: u64) -> u64 {
        let desc = bufs.div_ceil(self.tags_per_desc as u64);
        let rev = revokes.div_ceil(self.revokes_per_block as u64);
        bufs.saturating_add(desc)
            .saturating_add(rev)
            .saturating_add(1)
    }
}

/// One tag of a descriptor block being written.
pub(super) struct Tag {
    pub blocknr: u64,
    pub escaped: bool,
    pub csum: u32,
}

/// A descriptor block for `tags` (at most `tags_per_desc` of them).
pub(super) fn descriptor_block(
    layout: &Layout,
    tid: u32,
    uuid: &[u8; 16],
    seed: u32,
    tags: &[Tag],
) -> Vec<u8> {
    let mut b = vec![0u8; layout.block_size];
    header(&mut b, DESCRIPTOR_BLOCK, tid);
    let mut off = HEADER_SIZE;
    let last = tags.len().saturating_sub(1);
    for (i, t) in tags.iter().enumerate() {
        let mut flags = 0u16;
        if t.escaped {
            flags |= FLAG_ESCAPE;
        }
        if i != 0 {
            flags |= FLAG_SAME_UUID;
        }
        if i == last {
            flags |= FLAG_LAST_TAG;
        }
        // journal_block_tag3_t: blocknr, flags (be32), blocknr_high, checksum.
        put(
            &mut b,
            off,
            &((t.blocknr & 0xffff_ffff) as u32).to_be_bytes(),
        );
        put(
            &mut b,
            off.saturating_add(4),
            &u32::from(flags).to_be_bytes(),
        );
        put(
            &mut b,
            off.saturating_add(8),
            &((t.blocknr >> 32) as u32).to_be_bytes(),
        );
        put(&mut b, off.saturating_add(12), &t.csum.to_be_bytes());
        off = off.saturating_add(TAG3_SIZE);
        if i == 0 {
            put(&mut b, off, uuid);
            off = off.saturating_add(UUID_SIZE);
        }
    }
    set_tail_csum(&mut b, seed);
    b
}

/// A revoke block for `records` (at most `revokes_per_block` of them).
pub(super) fn revoke_block(layout: &Layout, tid: u32, seed: u32, records: &[u64]) -> Vec<u8> {
    let mut b = vec![0u8; layout.block_size];
    header(&mut b, REVOKE_BLOCK, tid);
    let mut off = REVOKE_HEADER_SIZE;
    for r in records {
        put(&mut b, off, &r.to_be_bytes());
        off = off.saturating_add(8);
    }
    put(&mut b, HEADER_SIZE, &(off as u32).to_be_bytes());
    set_tail_csum(&mut b, seed);
    b
}

/// A commit block (`CSUM_V3`: checksum type and size 0, checksum over the block).
pub(super) fn commit_block(layout: &Layout, tid: u32, seed: u32, sec: u64, nsec: u32) -> Vec<u8> {
    let mut b = vec![0u8; layout.block_size];
    header(&mut b, COMMIT_BLOCK, tid);
    put(&mut b, COMMIT_SEC, &sec.to_be_bytes());
    put(&mut b, COMMIT_SEC.saturating_add(8), &nsec.to_be_bytes());
    let c = csum_skipping(seed, &b, COMMIT_CHKSUM);
    put(&mut b, COMMIT_CHKSUM, &c.to_be_bytes());
    b
}

fn set_tail_csum(b: &mut [u8], seed: u32) {
    let off = b.len().saturating_sub(TAIL_SIZE);
    let c = csum_skipping(seed, b, off);
    put(b, off, &c.to_be_bytes());
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn superblock_roundtrip_and_checksum() {
        let sb = Superblock::new(4096, 1024, [7; 16]);
        let block = sb.to_block(4096);
        let back = Superblock::parse(&block);
        assert!(back.check(4096, 1024).is_ok());
        assert_eq!(back.features(), Features::PINNED);
        assert_eq!(back.uuid(), [7; 16]);
        assert_eq!((back.first(), back.sequence(), back.start()), (1, 1, 0));
        let mut bad = block.clone();
        bad[0x60] ^= 1;
        assert_eq!(
            Superblock::parse(&bad).check(4096, 1024),
            Err(Errno::EUCLEAN)
        );
        assert_eq!(back.check(1024, 1024), Err(Errno::EINVAL));
        assert_eq!(back.check(4096, 1000), Err(Errno::EUCLEAN));
    }

    #[test]
    fn layout_matches_jbd2() {
        let l = Layout::new(4096);
        assert_eq!(l.tags_per_desc, 253);
        assert_eq!(l.revokes_per_block, 509);
        assert_eq!(l.log_blocks(0, 0), 1);
        assert_eq!(l.log_blocks(253, 1), 253 + 1 + 1 + 1);
        assert_eq!(l.log_blocks(254, 0), 254 + 2 + 1);
    }

    #[test]
    fn block_checksums_verify() {
        let l = Layout::new(4096);
        let seed = seed(&[3; 16]);
        let tags = [Tag {
            blocknr: 0x1_0000_0005,
            escaped: true,
            csum: 9,
        }];
        let d = descriptor_block(&l, 5, &[3; 16], seed, &tags);
        assert!(tail_csum_ok(seed, &d));
        assert_eq!(read_header(&d), Some((DESCRIPTOR_BLOCK, 5)));
        assert_eq!(
            get16(&d, HEADER_SIZE + 6),
            Some(FLAG_ESCAPE | FLAG_LAST_TAG)
        );
        let r = revoke_block(&l, 5, seed, &[1, 2]);
        assert!(tail_csum_ok(seed, &r));
        assert_eq!(get32(&r, HEADER_SIZE), Some(32));
        let mut c = commit_block(&l, 5, seed, 100, 5);
        assert!(commit_csum_ok(seed, &c));
        assert!(commit_csum_ok_partial(seed, &c));
        c[100] = 1;
        assert!(!commit_csum_ok(seed, &c));
        assert!(commit_csum_ok_partial(seed, &c));
    }
}
