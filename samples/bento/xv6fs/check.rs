// SPDX-License-Identifier: GPL-2.0
//! Checking and repairing a file system: the logic of `fsck.xv6fs` (`bin/fsck.rs` is its
//! command line), callable in-process by tests.
//!
//! [`check`] works on an unmounted device, in passes as e2fsck does:
//!
//! 0. the superblock, the journal (replayed when repairing; only reported with `-n`),
//!    the orphan list;
//! 1. every inode: checksum, fields, block pointers (inside the data area, each block
//!    claimed once), blocks count, extended attribute block; orphans are released or
//!    truncated as mount would do; blocks claimed twice are copied for the second owner;
//! 2. every directory: block checksums, B+tree structure, leaf chain, entry keys against
//!    the hash of their names, entry types, targets; a directory whose tree is damaged is
//!    rebuilt from its readable entries; `..`;
//! 3. connectivity: directories unreachable from the root and files in no directory are
//!    reconnected to `/lost+found` (created if missing);
//! 4. link counts;
//! 5. the inode and block bitmaps against what is in use.
//!
//! Repairs are written straight to the device through its buffer cache (no journal:
//! the file system is not mounted) and synced at the end. Without
//! [`CheckOptions::repair`] nothing is written, whatever the device allows, and the
//! report says what a repair would do.

use core::cell::RefCell;
use core::fmt;
use core::fmt::Write as _;

use bento::block::BlockDevice;
use bento::bytes::{Reader, Writer};
use bento::collections::{BTreeMap, Vec};
use bento::crc32c::crc32c;
use bento::journal::Journal;
use bento::log::Bytes;
use bento::{Errno, FileType, Result, Timespec};

use crate::dir::{self, DirStore};
use crate::hash::siphash13;
use crate::layout::{
    dir_checksum, inode_checksum, xattr_checksum, DirHeader, DiskInode, Superblock, BITS_PER_BLOCK,
    BLOCK_SIZE, BLOCK_SIZE_U64, DIR_HEADER_SIZE, DIR_INDEX, DIR_LEAF, FLAG_INLINE_SYMLINK,
    INCOMPAT_SUPPORTED, INLINE_SYMLINK_MAX, INODES_PER_BLOCK, INODE_SIZE, MAGIC, MAX_FILE_BLOCKS,
    MIN_JOURNAL_BLOCKS, NDIRECT, PTRS_PER_BLOCK, ROOT_INO, RO_COMPAT_SUPPORTED, STATE_CLEAN,
    STATE_ERRORS, SUPERBLOCK_BLOCK, SYMLINK_MAX, UNWRITTEN, VERSION, XATTR_ENTRY_FIXED,
    XATTR_HEADER, XATTR_MAGIC,
};

/// What to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Replay a dirty journal and repair what is found (`-y`, `-p`). Otherwise (`-n`)
    /// nothing is written.
    pub repair: bool,
    /// Check even a file system marked clean (`-f`).
    pub force: bool,
}

/// The kind of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The superblock: checksum, fields, features, geometry.
    Superblock,
    /// The journal superblock is invalid, or recovery failed.
    Journal,
    /// The journal needed recovery (replayed when repairing).
    JournalDirty,
    /// The orphan list is damaged (bad member, loop, stray link).
    OrphanList,
    /// An orphan was processed as mount would (freed or truncated).
    OrphanProcessed,
    /// An inode's checksum does not match.
    InodeChecksum,
    /// An inode field is invalid (mode, flags, times, size, symlink, device fields).
    InodeInvalid,
    /// A block pointer outside the data area.
    BadBlock,
    /// A block claimed twice.
    DuplicateBlock,
    /// An inode's blocks count does not match its blocks.
    BlockCount,
    /// An extended attribute block is damaged.
    Xattr,
    /// A directory block's checksum does not match (the block is otherwise sound).
    DirChecksum,
    /// A directory's B+tree is damaged (headers, levels, keys, leaf chain, holes, size).
    DirTree,
    /// A directory entry is invalid (bad name, target free, out of range, the root).
    DirEntry,
    /// A directory entry's key does not match the hash of its name.
    DirHash,
    /// A directory entry's type does not match its inode.
    DirEntryType,
    /// Two entries of a directory have the same name.
    DirDuplicateName,
    /// A directory is named by more than one entry.
    DirHardLink,
    /// A directory's `..` is not its parent.
    DotDot,
    /// The root inode is missing or not a directory.
    RootDir,
    /// `/lost+found` was created, or is unusable.
    LostFound,
    /// An inode in use is in no directory (or a directory unreachable from the root).
    Unattached,
    /// An inode's link count is wrong.
    LinkCount,
    /// The block bitmap differs from the blocks in use.
    BlockBitmap,
    /// The inode bitmap differs from the inodes in use.
    InodeBitmap,
    /// A repair could not be made.
    RepairFailed,
    /// Not an error: a note (orphans a mount will process, unknown compatible features).
    Info,
}

/// One problem found.
#[derive(Debug)]
pub struct Problem {
    /// What kind of problem.
    pub kind: Kind,
    /// The inode concerned, 0 if none.
    pub ino: u32,
    /// The block concerned, 0 if none.
    pub block: u64,
    /// What is wrong (ASCII).
    pub message: Vec<u8>,
    /// What the repair does ("fixed", "entry removed", ...).
    pub action: &'static str,
    /// Whether it was repaired.
    pub fixed: bool,
}

impl Problem {
    /// Whether this is an error (not a note).
    pub fn is_error(&self) -> bool {
        self.kind != Kind::Info
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Bytes(&self.message))?;
        match (self.kind, self.fixed) {
            (Kind::Info, _) => Ok(()),
            (_, true) => write!(f, ": {}", self.action),
            (_, false) if self.action.is_empty() => Ok(()),
            (_, false) => write!(f, " (not fixed; -y: {})", self.action),
        }
    }
}

/// What is in the file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inode numbers (including the unused 0).
    pub ninodes: u32,
    /// Inodes in use.
    pub inodes_used: u32,
    /// Blocks of the file system.
    pub nblocks: u32,
    /// Blocks in use (metadata included).
    pub blocks_used: u32,
    /// Regular files.
    pub files: u32,
    /// Directories.
    pub dirs: u32,
    /// Symbolic links.
    pub symlinks: u32,
    /// Character and block devices.
    pub devices: u32,
    /// Named pipes.
    pub fifos: u32,
    /// Sockets.
    pub sockets: u32,
    /// Indirect blocks.
    pub indirect_blocks: u32,
    /// Extended attribute blocks.
    pub xattr_blocks: u32,
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems found, in the order found.
    pub problems: Vec<Problem>,
    /// The file system could not be checked (not xv6fs, unusable superblock).
    pub aborted: bool,
    /// Marked clean and not forced: not checked.
    pub skipped: bool,
    /// A dirty journal was not replayed (`-n`): the results may be stale.
    pub stale: bool,
    /// Something was written to the device.
    pub modified: bool,
    /// What is in the file system.
    pub stats: Stats,
}

impl Report {
    /// e2fsck's exit status: 0 clean, 1 errors fixed, 4 errors left (both: 5), 8 not
    /// checked (operational error).
    pub fn exit_code(&self) -> i32 {
        if self.aborted {
            return 8;
        }
        let mut code = 0;
        if self.problems.iter().any(|p| p.is_error() && p.fixed) {
            code |= 1;
        }
        if self.problems.iter().any(|p| p.is_error() && !p.fixed) {
            code |= 4;
        }
        code
    }

    /// The number of problems of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.problems.iter().filter(|p| p.kind == kind).count()
    }

    /// The number of errors (notes excluded).
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    /// No errors at all (exit status 0).
    pub fn is_clean(&self) -> bool {
        self.exit_code() == 0
    }

    /// What a clean unmount or a crash leaves is consistent: no errors but a journal
    /// replay and orphan processing (what mount itself would do).
    pub fn is_consistent(&self) -> bool {
        !self.aborted
            && self.problems.iter().all(|p| {
                matches!(
                    p.kind,
                    Kind::Info | Kind::JournalDirty | Kind::OrphanProcessed
                )
            })
    }
}

/// Checks (and with `opts.repair`, repairs) the xv6fs on `dev`, which must not be
/// mounted. `Err` is an operational error (an I/O error, out of memory); a device that
/// holds no usable xv6fs gives a report with [`Report::aborted`] set.
pub fn check(dev: &BlockDevice, opts: &CheckOptions) -> Result<Report> {
    if opts.repair && dev.read_only() {
        return Err(Errno::EROFS);
    }
    let mut report = Report::default();
    let Some(sb) = open(dev, opts, &mut report)? else {
        return Ok(report);
    };
    let mut ck = Checker::new(dev, sb, opts, report)?;
    ck.run()?;
    Ok(ck.report)
}

/// Builds a message.
struct Msg(Vec<u8>);

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

fn msg(args: fmt::Arguments<'_>) -> Result<Vec<u8>> {
    let mut m = Msg(Vec::new());
    m.write_fmt(args).map_err(|_| Errno::ENOMEM)?;
    Ok(m.0)
}

fn push_problem(
    report: &mut Report,
    kind: Kind,
    ino: u32,
    block: u64,
    fixed: bool,
    action: &'static str,
    args: fmt::Arguments<'_>,
) -> Result {
    report.problems.push(Problem {
        kind,
        ino,
        block,
        message: msg(args)?,
        action,
        fixed,
    })
}

/// A kind's name for messages.
fn kind_name(code: u8) -> &'static str {
    match code {
        1 => "regular file",
        2 => "directory",
        3 => "symbolic link",
        4 => "named pipe",
        5 => "character device",
        6 => "block device",
        7 => "socket",
        _ => "unknown type",
    }
}

const K_FILE: u8 = FileType::RegularFile as u8;
const K_DIR: u8 = FileType::Directory as u8;
const K_SYMLINK: u8 = FileType::Symlink as u8;

fn file_type(code: u8) -> Option<FileType> {
    [
        FileType::RegularFile,
        FileType::Directory,
        FileType::Symlink,
        FileType::NamedPipe,
        FileType::CharDevice,
        FileType::BlockDevice,
        FileType::Socket,
    ]
    .into_iter()
    .find(|k| *k as u8 == code)
}

/// 512-byte units per block.
const SECTORS_PER_BLOCK: u64 = 8;
/// Largest directory accepted, in blocks (a larger one is corrupt).
const DIR_MAX_BLOCKS: u64 = 1 << 22;
/// Deepest directory tree (as dir.rs).
const DIR_MAX_DEPTH: usize = 8;
/// Bad pointers of one inode listed one by one (the rest are counted).
const MAX_BAD_LISTED: u32 = 8;
/// Bitmap difference ranges listed one by one.
const MAX_RANGES_LISTED: u32 = 32;
/// Largest file in bytes.
const MAX_FILE_BYTES: u64 = MAX_FILE_BLOCKS * BLOCK_SIZE_U64;

// ---------------------------------------------------------------------------------------
// Checksums and the xattr block layout come from layout.rs.

// ---------------------------------------------------------------------------------------
// Bitmaps in memory.

struct Bits {
    v: Vec<u8>,
}

impl Bits {
    fn new(nbits: u64) -> Result<Bits> {
        let bytes = usize::try_from(nbits.div_ceil(8)).map_err(|_| Errno::ENOMEM)?;
        Ok(Bits {
            v: Vec::zeroed(bytes)?,
        })
    }

    fn loc(n: u64) -> (usize, u8) {
        (usize::try_from(n / 8).unwrap_or(usize::MAX), 1u8 << (n % 8))
    }

    fn get(&self, n: u64) -> bool {
        let (i, m) = Bits::loc(n);
        self.v.get(i).is_some_and(|b| b & m != 0)
    }

    fn set(&mut self, n: u64) {
        let (i, m) = Bits::loc(n);
        if let Some(b) = self.v.get_mut(i) {
            *b |= m;
        }
    }

    fn clear(&mut self, n: u64) {
        let (i, m) = Bits::loc(n);
        if let Some(b) = self.v.get_mut(i) {
            *b &= !m;
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.v.get(i).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------
// The device, the superblock and block allocation.

/// Blocks in use as found (plus what the repair allocated), and blocks whose state the
/// repair itself changed (their bitmap bits are not reported, only rewritten).
struct Space {
    used: Bits,
    touched: Bits,
    hint: u32,
}

struct Ctx<'d> {
    dev: &'d BlockDevice,
    sb: Superblock,
    seed: u32,
    repair: bool,
    space: RefCell<Space>,
    /// Something was written.
    wrote: core::cell::Cell<bool>,
}

/// Where file block `fblk` hangs: inode slot, indirection level, indices below it.
fn block_path(fblk: u64) -> Option<(usize, usize, [u64; 3])> {
    if fblk < NDIRECT as u64 {
        return Some((usize::try_from(fblk).ok()?, 0, [0; 3]));
    }
    let mut rest = fblk.checked_sub(NDIRECT as u64)?;
    let mut span = PTRS_PER_BLOCK;
    for level in 1..=3usize {
        if rest < span {
            let mut idx = [0u64; 3];
            let mut r = rest;
            for slot in (0..level).rev() {
                if let Some(x) = idx.get_mut(slot) {
                    *x = r % PTRS_PER_BLOCK;
                }
                r /= PTRS_PER_BLOCK;
            }
            return Some((NDIRECT.checked_add(level)?.checked_sub(1)?, level, idx));
        }
        rest = rest.checked_sub(span)?;
        span = span.checked_mul(PTRS_PER_BLOCK)?;
    }
    None
}

/// The indirection level and first file block of inode slot `slot`.
fn slot_geometry(slot: usize) -> (u32, u64) {
    const SINGLE: u64 = NDIRECT as u64;
    const DOUBLE: u64 = SINGLE + PTRS_PER_BLOCK;
    const TRIPLE: u64 = DOUBLE + PTRS_PER_BLOCK * PTRS_PER_BLOCK;
    match slot {
        12 => (1, SINGLE),
        13 => (2, DOUBLE),
        14 => (3, TRIPLE),
        s => (0, s as u64),
    }
}

fn ptr_at(b: &[u8], i: u64) -> u32 {
    Reader::new(b).u32(usize::try_from(i).unwrap_or(usize::MAX).saturating_mul(4))
}

fn set_ptr_at(b: &mut [u8], i: u64, v: u32) {
    Writer::new(b).u32(
        usize::try_from(i).unwrap_or(usize::MAX).saturating_mul(4),
        v,
    );
}

/// Decodes an inode's fields without validating them.
fn inode_fields(b: &[u8]) -> DiskInode {
    let r = Reader::new(b);
    let ts = |s: usize, n: usize| Timespec::new(r.i64(s), r.u32(n));
    let mut addrs = [0u32; NDIRECT + 3];
    for (i, a) in addrs.iter_mut().enumerate() {
        *a = r.u32(104usize.saturating_add(i.saturating_mul(4)));
    }
    DiskInode {
        mode: r.u32(0),
        uid: r.u32(4),
        gid: r.u32(8),
        nlink: r.u32(12),
        size: r.u64(16),
        blocks: r.u64(24),
        atime: ts(32, 64),
        mtime: ts(40, 68),
        ctime: ts(48, 72),
        crtime: ts(56, 76),
        flags: r.u32(80),
        generation: r.u32(84),
        rdev: r.u32(88),
        xattr_block: r.u32(92),
        orphan_next: r.u32(96),
        addrs,
    }
}

impl Ctx<'_> {
    fn writable(&self) -> Result {
        if self.repair {
            self.wrote.set(true);
            Ok(())
        } else {
            Err(Errno::EROFS)
        }
    }

    fn is_data(&self, b: u32) -> bool {
        self.sb.is_data_block(b)
    }

    /// Copies block `blk` into `out`.
    fn read_block(&self, blk: u32, out: &mut [u8]) -> Result {
        let buf = self.dev.read(u64::from(blk))?;
        let g = buf.lock();
        let n = out.len().min(g.len());
        out.get_mut(..n)
            .ok_or(Errno::EIO)?
            .copy_from_slice(g.get(..n).ok_or(Errno::EIO)?);
        Ok(())
    }

    /// Writes `data` (a whole block) to block `blk`.
    fn write_block(&self, blk: u32, data: &[u8]) -> Result {
        self.writable()?;
        let buf = self.dev.get(u64::from(blk))?;
        {
            let mut g = buf.lock();
            if g.len() != data.len() {
                return Err(Errno::EIO);
            }
            g.copy_from_slice(data);
        }
        buf.mark_dirty();
        Ok(())
    }

    /// Changes block `blk` in place.
    fn modify_block(&self, blk: u32, f: &mut dyn FnMut(&mut [u8]) -> Result) -> Result {
        self.writable()?;
        let buf = self.dev.read(u64::from(blk))?;
        let r = {
            let mut g = buf.lock();
            f(&mut g)
        };
        buf.mark_dirty();
        r
    }

    fn zero_block(&self, blk: u32) -> Result {
        self.writable()?;
        let buf = self.dev.get(u64::from(blk))?;
        buf.lock().fill(0);
        buf.mark_dirty();
        Ok(())
    }

    fn ptr(&self, blk: u32, i: u64) -> Result<u32> {
        let buf = self.dev.read(u64::from(blk))?;
        let g = buf.lock();
        Ok(ptr_at(&g, i))
    }

    fn set_ptr(&self, blk: u32, i: u64, v: u32) -> Result {
        self.modify_block(blk, &mut |b| {
            set_ptr_at(b, i, v);
            Ok(())
        })
    }

    /// The 256 bytes of inode `ino`.
    fn raw_inode(&self, ino: u32, out: &mut [u8; INODE_SIZE]) -> Result {
        let (blk, off) = self.sb.inode_location(ino).ok_or(Errno::EINVAL)?;
        let buf = self.dev.read(blk)?;
        let g = buf.lock();
        out.copy_from_slice(
            g.get(off..off.saturating_add(INODE_SIZE))
                .ok_or(Errno::EIO)?,
        );
        Ok(())
    }

    /// Inode `ino`, which must be valid (it is, once pass 1 repaired it).
    fn load_inode(&self, ino: u32) -> Result<DiskInode> {
        let mut raw = [0u8; INODE_SIZE];
        self.raw_inode(ino, &mut raw)?;
        DiskInode::decode(&raw, ino, self.seed)
    }

    /// Writes inode `ino` (`None`: zeroes it, a never-used inode).
    fn store_inode(&self, ino: u32, inode: Option<&DiskInode>) -> Result {
        self.writable()?;
        let (blk, off) = self.sb.inode_location(ino).ok_or(Errno::EINVAL)?;
        self.modify_block(u32::try_from(blk).map_err(|_| Errno::EIO)?, &mut |b| {
            let slot = b
                .get_mut(off..off.saturating_add(INODE_SIZE))
                .ok_or(Errno::EIO)?;
            match inode {
                Some(i) => i.encode(slot, ino, self.seed),
                None => {
                    slot.fill(0);
                    Ok(())
                }
            }
        })
    }

    fn space(&self) -> Result<core::cell::RefMut<'_, Space>> {
        self.space.try_borrow_mut().map_err(|_| Errno::EIO)
    }

    fn used(&self, b: u32) -> Result<bool> {
        Ok(self.space()?.used.get(u64::from(b)))
    }

    /// Whether the on-disk block bitmap marks block `b` free.
    fn free_on_disk(&self, b: u32) -> Result<bool> {
        let blk = self
            .sb
            .block_bitmap_start
            .saturating_add(b / BITS_PER_BLOCK);
        let bit = b % BITS_PER_BLOCK;
        let buf = self.dev.read(u64::from(blk))?;
        let g = buf.lock();
        let byte = g
            .get(usize::try_from(bit / 8).unwrap_or(usize::MAX))
            .copied();
        Ok(byte.is_some_and(|x| x & (1 << (bit % 8)) == 0))
    }

    /// Allocates a free data block, at or after `goal` if possible. Blocks the on-disk
    /// bitmap also has free come first: a block marked used that nothing uses stays
    /// reported as leaked (and its contents kept) as long as there is another choice.
    fn alloc_block(&self, goal: u32) -> Result<u32> {
        let first = self.sb.data_start;
        let end = self.sb.nblocks;
        let start = {
            let sp = self.space()?;
            if (first..end).contains(&goal) {
                goal
            } else {
                sp.hint.clamp(first, end.saturating_sub(1))
            }
        };
        let mut fallback = None;
        let mut found = None;
        for b in (start..end).chain(first..start) {
            if self.space()?.used.get(u64::from(b)) {
                continue;
            }
            if self.free_on_disk(b)? {
                found = Some(b);
                break;
            }
            fallback = fallback.or(Some(b));
        }
        let found = found.or(fallback).ok_or(Errno::ENOSPC)?;
        let mut sp = self.space()?;
        sp.used.set(u64::from(found));
        sp.touched.set(u64::from(found));
        sp.hint = found.saturating_add(1);
        Ok(found)
    }

    /// Marks block `b` free (its bitmap bit is rewritten, not reported).
    fn free_block(&self, b: u32) -> Result {
        let mut sp = self.space()?;
        sp.used.clear(u64::from(b));
        sp.touched.set(u64::from(b));
        Ok(())
    }

    /// Marks block `b` as changed by the repair without claiming it.
    fn touch_block(&self, b: u32) -> Result {
        self.space()?.touched.set(u64::from(b));
        Ok(())
    }

    /// The disk block of file block `fblk` of `inode` (0: a hole).
    fn bmap(&self, ino: u32, inode: &DiskInode, fblk: u64) -> Result<u32> {
        let (slot, level, idx) = block_path(fblk).ok_or(Errno::EFBIG)?;
        let mut cur = inode.addrs.get(slot).copied().unwrap_or(0);
        for i in idx.iter().take(level) {
            if cur == 0 {
                return Ok(0);
            }
            if !self.is_data(cur) {
                bento::error!("xv6fs: fsck: inode {ino}: block pointer {cur}");
                return Err(Errno::EUCLEAN);
            }
            cur = self.ptr(cur, *i)?;
        }
        if cur != 0 && !self.is_data(cur) {
            return Err(Errno::EUCLEAN);
        }
        Ok(cur)
    }

    /// Maps file block `fblk` of `inode` to a newly allocated (zeroed) block, allocating
    /// the indirect blocks on the way; updates the blocks count. Returns the block.
    fn bmap_alloc(&self, inode: &mut DiskInode, fblk: u64) -> Result<u32> {
        let (slot, level, idx) = block_path(fblk).ok_or(Errno::EFBIG)?;
        let goal = inode
            .addrs
            .first()
            .copied()
            .filter(|a| *a != 0)
            .unwrap_or(self.sb.data_start);
        let mut cur = inode.addrs.get(slot).copied().unwrap_or(0);
        if cur == 0 {
            cur = self.alloc_block(goal)?;
            self.zero_block(cur)?;
            inode.blocks = inode.blocks.saturating_add(SECTORS_PER_BLOCK);
            *inode.addrs.get_mut(slot).ok_or(Errno::EIO)? = cur;
        } else if level == 0 {
            return Err(Errno::EEXIST);
        }
        for (depth, i) in idx.iter().take(level).enumerate() {
            let next = self.ptr(cur, *i)?;
            if next != 0 {
                if depth.saturating_add(1) == level {
                    return Err(Errno::EEXIST);
                }
                cur = next;
                continue;
            }
            let b = self.alloc_block(cur)?;
            self.zero_block(b)?;
            inode.blocks = inode.blocks.saturating_add(SECTORS_PER_BLOCK);
            self.set_ptr(cur, *i, b)?;
            cur = b;
        }
        Ok(cur)
    }
}

/// A directory changed in place by the repair, through dir.rs. Every access checks the
/// block's checksum (the repair also changes blocks outside dir.rs), except the first
/// change of an appended block, which seals it (`fresh`).
struct DevDir<'c, 'd> {
    ctx: &'c Ctx<'d>,
    ino: u32,
    inode: RefCell<DiskInode>,
    fresh: RefCell<BTreeMap<u32, ()>>,
}

impl<'c, 'd> DevDir<'c, 'd> {
    fn new(ctx: &'c Ctx<'d>, ino: u32, inode: DiskInode) -> Self {
        DevDir {
            ctx,
            ino,
            inode: RefCell::new(inode),
            fresh: RefCell::new(BTreeMap::new()),
        }
    }

    /// Checks the checksum of block `lblk` (bytes `b`) unless it is fresh.
    fn check(&self, lblk: u32, b: &[u8]) -> Result {
        let fresh = self.fresh.try_borrow().map_err(|_| Errno::EIO)?;
        if fresh.contains_key(&lblk) {
            return Ok(());
        }
        DirHeader::check_sum(b, self.ino, self.ctx.seed)
    }

    /// Block `lblk` was changed (and sealed) by `r`'s success: no longer fresh.
    fn changed(&self, lblk: u32, r: Result) -> Result {
        if r.is_ok() {
            self.fresh
                .try_borrow_mut()
                .map_err(|_| Errno::EIO)?
                .remove(&lblk);
        }
        r
    }

    fn open(ctx: &'c Ctx<'d>, ino: u32) -> Result<Self> {
        Ok(DevDir::new(ctx, ino, ctx.load_inode(ino)?))
    }

    fn block(&self, lblk: u32) -> Result<u32> {
        let inode = self.inode.try_borrow().map_err(|_| Errno::EIO)?;
        if u64::from(lblk).saturating_mul(BLOCK_SIZE_U64) >= inode.size {
            return Err(Errno::EUCLEAN);
        }
        match self.ctx.bmap(self.ino, &inode, u64::from(lblk))? {
            0 => Err(Errno::EUCLEAN),
            b => Ok(b),
        }
    }

    fn hash(&self, name: &[u8]) -> u64 {
        siphash13(&self.ctx.sb.uuid, name)
    }
}

impl DirStore for DevDir<'_, '_> {
    fn ino(&self) -> u32 {
        self.ino
    }

    fn seed(&self) -> u32 {
        self.ctx.seed
    }

    fn read(&self, lblk: u32, f: &mut dyn FnMut(&[u8]) -> Result) -> Result {
        let buf = self.ctx.dev.read(u64::from(self.block(lblk)?))?;
        let g = buf.lock();
        self.check(lblk, &g)?;
        f(&g)
    }

    fn modify(&self, lblk: u32, f: &mut dyn FnMut(&mut [u8]) -> Result) -> Result {
        let b = self.block(lblk)?;
        let r = self.ctx.modify_block(b, &mut |d| {
            self.check(lblk, d)?;
            f(d)
        });
        self.changed(lblk, r)
    }

    fn modify2(&self, a: u32, b: u32, f: &mut dyn FnMut(&mut [u8], &mut [u8]) -> Result) -> Result {
        self.ctx.writable()?;
        let (pa, pb) = (self.block(a)?, self.block(b)?);
        if pa == pb {
            return Err(Errno::EIO);
        }
        let (ba, bb) = (
            self.ctx.dev.read(u64::from(pa))?,
            self.ctx.dev.read(u64::from(pb))?,
        );
        let r = {
            let mut ga = ba.lock();
            let mut gb = bb.lock();
            self.check(a, &ga)
                .and_then(|()| self.check(b, &gb))
                .and_then(|()| f(&mut ga, &mut gb))
        };
        ba.mark_dirty();
        bb.mark_dirty();
        let r = self.changed(a, r);
        self.changed(b, r)
    }

    fn append(&self) -> Result<u32> {
        let mut inode = self.inode.try_borrow_mut().map_err(|_| Errno::EIO)?;
        let lblk = inode.size / BLOCK_SIZE_U64;
        self.ctx.bmap_alloc(&mut inode, lblk)?;
        inode.size = inode.size.saturating_add(BLOCK_SIZE_U64);
        self.ctx.store_inode(self.ino, Some(&inode))?;
        let lblk = u32::try_from(lblk).map_err(|_| Errno::EFBIG)?;
        self.fresh
            .try_borrow_mut()
            .map_err(|_| Errno::EIO)?
            .insert(lblk, ())?;
        Ok(lblk)
    }
}

// ---------------------------------------------------------------------------------------
// Pass 0: superblock and journal.

/// What pass 0 found.
struct Opened {
    sb: Superblock,
    /// The superblock needs rewriting (checksum, reserved bytes, state bits).
    rewrite: bool,
}

fn abort(report: &mut Report, args: fmt::Arguments<'_>) -> Result<Option<Opened>> {
    push_problem(
        report,
        Kind::Superblock,
        0,
        SUPERBLOCK_BLOCK,
        false,
        "",
        args,
    )?;
    report.aborted = true;
    Ok(None)
}

/// Why the superblock's geometry is unusable, if it is.
fn geometry_problem(sb: &Superblock) -> Option<(&'static str, u32, u32)> {
    let regions = [
        ("journal", sb.journal_start, sb.journal_len),
        ("inode bitmap", sb.inode_bitmap_start, sb.inode_bitmap_len),
        ("block bitmap", sb.block_bitmap_start, sb.block_bitmap_len),
        ("inode table", sb.inode_table_start, sb.inode_table_len),
    ];
    let mut next = 2u32;
    for (name, start, len) in regions {
        match start.checked_add(len) {
            Some(end) if start >= next && end <= sb.nblocks && len > 0 => next = end,
            _ => return Some((name, start, len)),
        }
    }
    if sb.data_start < next || sb.data_start >= sb.nblocks {
        return Some((
            "data area",
            sb.data_start,
            sb.nblocks.saturating_sub(sb.data_start),
        ));
    }
    let table = u64::from(sb.inode_table_len).saturating_mul(u64::from(INODES_PER_BLOCK));
    let ibits = u64::from(sb.inode_bitmap_len).saturating_mul(u64::from(BITS_PER_BLOCK));
    let bbits = u64::from(sb.block_bitmap_len).saturating_mul(u64::from(BITS_PER_BLOCK));
    if sb.journal_len < MIN_JOURNAL_BLOCKS {
        return Some((
            "journal (below 1024 blocks)",
            sb.journal_start,
            sb.journal_len,
        ));
    }
    if table < u64::from(sb.ninodes) || ibits < u64::from(sb.ninodes) || sb.ninodes <= ROOT_INO {
        return Some((
            "inode table or bitmap (too small for the inode count)",
            sb.ninodes,
            0,
        ));
    }
    if bbits < u64::from(sb.nblocks) {
        return Some((
            "block bitmap (too small for the block count)",
            sb.block_bitmap_start,
            sb.block_bitmap_len,
        ));
    }
    None
}

/// Reads and checks the superblock. Problems that make checking impossible abort;
/// the others are recorded when `record` (the final look, after journal replay).
fn read_superblock(
    dev: &BlockDevice,
    opts: &CheckOptions,
    report: &mut Report,
    record: bool,
) -> Result<Option<Opened>> {
    if dev.nr_blocks() <= SUPERBLOCK_BLOCK {
        return abort(
            report,
            format_args!("the device is too small ({} blocks)", dev.nr_blocks()),
        );
    }
    let mut b = Vec::zeroed(BLOCK_SIZE)?;
    {
        let buf = dev.read(SUPERBLOCK_BLOCK)?;
        let g = buf.lock();
        b.copy_from_slice(g.get(..BLOCK_SIZE).ok_or(Errno::EIO)?);
    }
    let r = Reader::new(&b);
    if r.u32(0) != MAGIC {
        return abort(
            report,
            format_args!(
                "not an xv6fs file system (superblock magic {:#x}, expected {MAGIC:#x})",
                r.u32(0)
            ),
        );
    }
    if r.u32(4) != VERSION {
        return abort(
            report,
            format_args!(
                "xv6fs format version {} is not supported (this fsck knows version {VERSION})",
                r.u32(4)
            ),
        );
    }
    if r.u32(20) != BLOCK_SIZE as u32 {
        return abort(
            report,
            format_args!("superblock: block size {} is not {BLOCK_SIZE}", r.u32(20)),
        );
    }
    let sb = Superblock::fields(&r);
    let stored = r.u32(252);
    let sum = crc32c(!0, r.bytes(0, 252));
    let reserved = r.bytes(152, 100).iter().any(|x| *x != 0);
    r.finish()?;
    if let Some((what, start, len)) = geometry_problem(&sb) {
        return abort(
            report,
            format_args!(
                "superblock: unusable geometry: {what} at {start} (+{len}) in a file system of {} blocks",
                sb.nblocks
            ),
        );
    }
    if sb.root_ino != ROOT_INO {
        return abort(
            report,
            format_args!("superblock: root inode {} is not {ROOT_INO}", sb.root_ino),
        );
    }
    if u64::from(sb.nblocks) > dev.nr_blocks() {
        return abort(
            report,
            format_args!(
                "the file system has {} blocks but the device only {}",
                sb.nblocks,
                dev.nr_blocks()
            ),
        );
    }
    if sb.incompat & !INCOMPAT_SUPPORTED != 0 {
        return abort(
            report,
            format_args!(
                "unsupported incompatible features {:#x}",
                sb.incompat & !INCOMPAT_SUPPORTED
            ),
        );
    }
    if sb.ro_compat & !RO_COMPAT_SUPPORTED != 0 && opts.repair {
        return abort(
            report,
            format_args!(
                "unsupported read-only compatible features {:#x}: cannot repair (check with -n)",
                sb.ro_compat & !RO_COMPAT_SUPPORTED
            ),
        );
    }
    let mut rewrite = false;
    if record {
        if sb.ro_compat & !RO_COMPAT_SUPPORTED != 0 {
            push_problem(
                report,
                Kind::Info,
                0,
                SUPERBLOCK_BLOCK,
                false,
                "",
                format_args!(
                    "note: unknown read-only compatible features {:#x}: checked as far as known",
                    sb.ro_compat & !RO_COMPAT_SUPPORTED
                ),
            )?;
        }
        if sb.compat != 0 {
            push_problem(
                report,
                Kind::Info,
                0,
                SUPERBLOCK_BLOCK,
                false,
                "",
                format_args!(
                    "note: unknown compatible features {:#x} (ignored)",
                    sb.compat
                ),
            )?;
        }
        let fix = opts.repair;
        if stored != sum {
            rewrite = true;
            push_problem(
                report,
                Kind::Superblock,
                0,
                SUPERBLOCK_BLOCK,
                fix,
                "checksum rewritten",
                format_args!(
                    "superblock checksum {stored:#x} does not match its contents ({sum:#x})"
                ),
            )?;
        }
        if reserved {
            rewrite = true;
            push_problem(
                report,
                Kind::Superblock,
                0,
                SUPERBLOCK_BLOCK,
                fix,
                "zeroed",
                format_args!("superblock: reserved bytes 152..252 are not zero"),
            )?;
        }
        if sb.state & !(STATE_CLEAN | STATE_ERRORS) != 0 {
            rewrite = true;
            push_problem(
                report,
                Kind::Superblock,
                0,
                SUPERBLOCK_BLOCK,
                fix,
                "cleared",
                format_args!("superblock: unknown state bits {:#x}", sb.state),
            )?;
        }
        if sb.state & STATE_ERRORS != 0 {
            push_problem(
                report,
                Kind::Info,
                0,
                SUPERBLOCK_BLOCK,
                false,
                "",
                format_args!("note: the file system was marked as having errors"),
            )?;
        }
    }
    Ok(Some(Opened { sb, rewrite }))
}

/// The state of a journal, seen without replaying it.
enum Peek {
    Clean,
    Dirty,
    Invalid(&'static str),
}

/// Looks at the jbd2 superblock (big-endian) without changing anything.
fn peek_journal(dev: &BlockDevice, start: u64, len: u64) -> Result<Peek> {
    let buf = dev.read(start)?;
    let g = buf.lock();
    let r = Reader::new(&g);
    let be = |off: usize| u32::from_be_bytes(r.array(off));
    let (magic, kind, bsize, maxlen, first, log_start) =
        (be(0), be(4), be(12), be(16), be(20), be(28));
    r.finish()?;
    Ok(if magic != 0xc03b_3998 {
        Peek::Invalid("bad magic number")
    } else if kind != 4 {
        Peek::Invalid("not a jbd2 version 2 superblock")
    } else if bsize != BLOCK_SIZE as u32 {
        Peek::Invalid("wrong block size")
    } else if u64::from(maxlen) > len || maxlen < MIN_JOURNAL_BLOCKS {
        Peek::Invalid("bad length")
    } else if first == 0 || first >= maxlen {
        Peek::Invalid("bad first log block")
    } else if log_start == 0 {
        Peek::Clean
    } else if log_start < first || log_start >= maxlen {
        Peek::Invalid("log start outside the log")
    } else {
        Peek::Dirty
    })
}

/// Recovers the journal (repairing) or reports its state (`-n`). Returns whether it
/// was replayed.
fn journal(
    dev: &BlockDevice,
    sb: &Superblock,
    opts: &CheckOptions,
    report: &mut Report,
) -> Result<bool> {
    let (start, len) = (u64::from(sb.journal_start), u64::from(sb.journal_len));
    let blk = start;
    if opts.repair {
        return match Journal::recover(dev, start, len) {
            Ok(r) => {
                if r.was_dirty {
                    report.modified = true;
                    push_problem(
                        report,
                        Kind::JournalDirty,
                        0,
                        blk,
                        true,
                        "replayed",
                        format_args!(
                            "the journal needed recovery: {} transaction(s), {} block(s)",
                            r.transactions(),
                            r.replayed_blocks
                        ),
                    )?;
                }
                if r.bad_blocks > 0 || r.error.is_some() {
                    push_problem(
                        report,
                        Kind::Journal,
                        0,
                        blk,
                        true,
                        "journal reset; the file system is checked in full",
                        format_args!(
                            "journal recovery failed ({}): {} logged block(s) could not be replayed",
                            r.error.unwrap_or(Errno::EIO),
                            r.bad_blocks
                        ),
                    )?;
                }
                Ok(r.was_dirty)
            }
            Err(e @ (Errno::EIO | Errno::ENOMEM | Errno::EROFS)) => Err(e),
            Err(e) => {
                let fixed = Journal::format(dev, start, len, sb.uuid).is_ok();
                report.modified |= fixed;
                push_problem(
                    report,
                    Kind::Journal,
                    0,
                    blk,
                    fixed,
                    "journal recreated (empty)",
                    format_args!("the journal superblock is invalid ({e})"),
                )?;
                Ok(false)
            }
        };
    }
    match peek_journal(dev, start, len)? {
        Peek::Dirty => {
            report.stale = true;
            push_problem(
                report,
                Kind::JournalDirty,
                0,
                blk,
                false,
                "replayed",
                format_args!(
                    "the journal needs recovery and is not replayed with -n: the results below describe the file system without it and may be stale"
                ),
            )?;
        }
        Peek::Invalid(why) => {
            push_problem(
                report,
                Kind::Journal,
                0,
                blk,
                false,
                "journal recreated (empty)",
                format_args!("the journal superblock is invalid: {why}"),
            )?;
        }
        Peek::Clean if dev.read_only() => {
            // Validates everything recovery checks; a clean journal on a read-only
            // device is neither replayed nor written.
            if let Err(e) = Journal::recover(dev, start, len) {
                push_problem(
                    report,
                    Kind::Journal,
                    0,
                    blk,
                    false,
                    "journal recreated (empty)",
                    format_args!("the journal superblock is invalid ({e})"),
                )?;
            }
        }
        Peek::Clean => {}
    }
    Ok(false)
}

/// Set bits of the bitmap at `start` among its first `nbits`.
fn count_bits(dev: &BlockDevice, start: u32, nbits: u32) -> Result<u32> {
    let mut n = 0u32;
    for i in 0..nbits.div_ceil(BITS_PER_BLOCK) {
        let buf = dev.read(u64::from(start.saturating_add(i)))?;
        let g = buf.lock();
        let base = i.saturating_mul(BITS_PER_BLOCK);
        for (j, byte) in g.iter().enumerate() {
            let first = base.saturating_add(u32::try_from(j).unwrap_or(u32::MAX).saturating_mul(8));
            if first >= nbits {
                break;
            }
            let valid = nbits.saturating_sub(first).min(8);
            let mask = if valid >= 8 {
                0xff
            } else {
                (1u8 << valid).wrapping_sub(1)
            };
            n = n.saturating_add((byte & mask).count_ones());
        }
    }
    Ok(n)
}

/// Pass 0: superblock, journal, and whether a full check is needed.
fn open(dev: &BlockDevice, opts: &CheckOptions, report: &mut Report) -> Result<Option<Superblock>> {
    if dev.block_size() != BLOCK_SIZE {
        push_problem(
            report,
            Kind::Superblock,
            0,
            0,
            false,
            "",
            format_args!(
                "the device block size is {}, not {BLOCK_SIZE}",
                dev.block_size()
            ),
        )?;
        report.aborted = true;
        return Ok(None);
    }
    // Where the journal is: its replay may bring a newer superblock, so the problems of
    // the superblock are recorded only from the second look.
    let Some(first) = read_superblock(dev, opts, report, false)? else {
        return Ok(None);
    };
    let replayed = journal(dev, &first.sb, opts, report)?;
    let Some(Opened { mut sb, rewrite }) = read_superblock(dev, opts, report, true)? else {
        return Ok(None);
    };
    let clean = sb.state & (STATE_CLEAN | STATE_ERRORS) == STATE_CLEAN;
    if !opts.force && clean && !replayed && sb.orphan_head == 0 && report.errors() == 0 {
        report.skipped = true;
        report.stats = Stats {
            ninodes: sb.ninodes,
            inodes_used: count_bits(dev, sb.inode_bitmap_start, sb.ninodes)?.saturating_sub(1),
            nblocks: sb.nblocks,
            blocks_used: count_bits(dev, sb.block_bitmap_start, sb.nblocks)?,
            ..Stats::default()
        };
        return Ok(None);
    }
    if rewrite {
        // Encoded afresh at the end: reserved bytes zeroed, checksum recomputed.
        sb.state &= STATE_CLEAN | STATE_ERRORS;
    }
    Ok(Some(sb))
}

// ---------------------------------------------------------------------------------------
// The checker.

/// What is known of one inode.
#[derive(Clone, Copy, Debug, Default)]
struct Info {
    /// `FileType` code, 0 if free (or cleared).
    kind: u8,
    /// `F_*`.
    flags: u8,
    /// Link count stored (as the repair leaves it).
    nlink: u32,
    /// Directory entries naming it (files; directories count their parent instead).
    refs: u32,
}

/// On the orphan list.
const F_ORPHAN: u8 = 1;
/// On the orphan list with links: an interrupted truncate.
const F_TRUNC: u8 = 2;
/// Seen while walking the orphan list.
const F_LISTED: u8 = 4;

/// An entry naming a directory.
struct Naming {
    parent: u32,
    name: Vec<u8>,
}

/// What is known of one directory.
#[derive(Default)]
struct DirInfo {
    /// Disk block of each logical block as pass 1 left them (0: hole).
    blocks: Vec<u32>,
    size: u64,
    /// `..` as recorded in the root block, if readable.
    dotdot: Option<u32>,
    /// The directory it is in (0: none found).
    parent: u32,
    /// Its name there.
    name: Vec<u8>,
    /// Subdirectories (whose parent it is).
    subdirs: u32,
    /// Entries naming it.
    namings: Vec<Naming>,
    /// Entries to remove (other names of subdirectories).
    remove: Vec<Vec<u8>>,
    /// `..` must be set to `parent`.
    set_parent: bool,
    /// Needs repairs (pass 2 found something).
    dirty: bool,
    /// Reconnected (or given up on): counts as reachable.
    settled: bool,
}

/// Where a block pointer lives.
#[derive(Clone, Copy, Debug)]
enum Loc {
    /// In the inode, slot `n`.
    Inode(usize),
    /// In indirect block `blk`, index `i`.
    Ind(u32, u64),
}

/// A data block claimed a second time (resolved after pass 1).
struct DupRef {
    ino: u32,
    loc: Loc,
    blk: u32,
    fblk: u64,
    /// The pointer marks the block unwritten: the copy needs no data.
    unwritten: bool,
}

/// One inode's block walk.
struct Walk {
    ino: u32,
    is_dir: bool,
    /// A regular file: its data block pointers may be marked unwritten.
    is_file: bool,
    /// Interrupted truncate being completed: file blocks from here on are released.
    keep: Option<u64>,
    /// Blocks claimed (data, indirect, xattr; pending duplicates included).
    count: u64,
    /// Invalid pointers found.
    bad: u32,
    /// Highest file block mapped.
    max_fblk: Option<u64>,
    /// Directories: disk block of each logical block.
    dir_blocks: Vec<u32>,
    /// Has duplicate data blocks to resolve.
    pending: bool,
}

struct Checker<'d> {
    ctx: Ctx<'d>,
    report: Report,
    info: Vec<Info>,
    /// Inodes whose state the repair changed (bitmap bits rewritten, not reported).
    ino_touched: Bits,
    dirs: BTreeMap<u32, DirInfo>,
    dups: Vec<DupRef>,
    /// Inodes with duplicate blocks: (blocks count stored, blocks count expected).
    dup_counts: BTreeMap<u32, (u64, u64)>,
    /// `/lost+found`: 0 unknown or absent.
    lost_found: u32,
    /// The name `/lost+found` exists but is not a directory.
    lost_found_bad: bool,
    /// `lost_found_dir` already decided.
    lost_found_done: bool,
    indirect_blocks: u32,
    xattr_blocks: u32,
}

fn ft_name(k: Option<FileType>) -> &'static str {
    k.map_or("invalid type", |k| kind_name(k as u8))
}

impl<'d> Checker<'d> {
    fn new(
        dev: &'d BlockDevice,
        sb: Superblock,
        opts: &CheckOptions,
        report: Report,
    ) -> Result<Self> {
        let total = u64::from(sb.block_bitmap_len).saturating_mul(u64::from(BITS_PER_BLOCK));
        let mut used = Bits::new(total)?;
        for b in 0..u64::from(sb.data_start) {
            used.set(b);
        }
        for b in u64::from(sb.nblocks)..total {
            used.set(b);
        }
        let mut info = Vec::new();
        info.resize(
            usize::try_from(sb.ninodes).map_err(|_| Errno::ENOMEM)?,
            Info::default(),
        )?;
        let ninodes = u64::from(sb.ninodes);
        Ok(Checker {
            ctx: Ctx {
                dev,
                seed: sb.csum_seed(),
                repair: opts.repair,
                space: RefCell::new(Space {
                    used,
                    touched: Bits::new(total)?,
                    hint: sb.data_start,
                }),
                wrote: core::cell::Cell::new(false),
                sb,
            },
            report,
            info,
            ino_touched: Bits::new(ninodes)?,
            dirs: BTreeMap::new(),
            dups: Vec::new(),
            dup_counts: BTreeMap::new(),
            lost_found: 0,
            lost_found_bad: false,
            lost_found_done: false,
            indirect_blocks: 0,
            xattr_blocks: 0,
        })
    }

    fn run(&mut self) -> Result {
        self.orphans()?;
        self.pass1()?;
        self.resolve_dups()?;
        self.check_root()?;
        self.pass2()?;
        self.resolve_names()?;
        if self.ctx.repair {
            self.fix_dirs()?;
        }
        self.pass3()?;
        self.pass4()?;
        self.pass5()?;
        self.finish()
    }

    /// Records a problem (fixed when repairing).
    fn problem(
        &mut self,
        kind: Kind,
        ino: u32,
        block: u64,
        action: &'static str,
        args: fmt::Arguments<'_>,
    ) -> Result {
        let fixed = self.ctx.repair && kind != Kind::Info;
        push_problem(&mut self.report, kind, ino, block, fixed, action, args)
    }

    /// Records a repair that failed with `e` (out of memory and I/O errors stop the
    /// check instead).
    fn failed(&mut self, e: Errno, ino: u32, args: fmt::Arguments<'_>) -> Result {
        if matches!(e, Errno::ENOMEM | Errno::EIO) {
            return Err(e);
        }
        push_problem(
            &mut self.report,
            Kind::RepairFailed,
            ino,
            0,
            false,
            "",
            format_args!("could not repair {args} ({e})"),
        )
    }

    fn info(&self, ino: u32) -> Info {
        usize::try_from(ino)
            .ok()
            .and_then(|i| self.info.get(i))
            .copied()
            .unwrap_or_default()
    }

    fn info_mut(&mut self, ino: u32) -> Result<&mut Info> {
        usize::try_from(ino)
            .ok()
            .and_then(|i| self.info.get_mut(i))
            .ok_or(Errno::EIO)
    }

    fn dir_mut(&mut self, ino: u32) -> Result<&mut DirInfo> {
        self.dirs.get_mut(&ino).ok_or(Errno::EIO)
    }

    // -----------------------------------------------------------------------------------
    // The orphan list.

    fn orphans(&mut self) -> Result {
        let n = self.ctx.sb.ninodes;
        let mut cur = self.ctx.sb.orphan_head;
        let act = "taken off the orphan list";
        while cur != 0 {
            if cur >= n {
                self.problem(
                    Kind::OrphanList,
                    0,
                    0,
                    "orphan list cut there",
                    format_args!("the orphan list links to inode {cur}, past the last inode"),
                )?;
                break;
            }
            if self.info(cur).flags & F_LISTED != 0 {
                self.problem(
                    Kind::OrphanList,
                    cur,
                    0,
                    "orphan list cut there",
                    format_args!("the orphan list loops back to inode {cur}"),
                )?;
                break;
            }
            self.info_mut(cur)?.flags |= F_LISTED;
            let mut raw = [0u8; INODE_SIZE];
            self.ctx.raw_inode(cur, &mut raw)?;
            let i = inode_fields(&raw);
            if i.mode == 0 {
                self.problem(
                    Kind::OrphanList,
                    cur,
                    0,
                    "orphan list cut there",
                    format_args!("the orphan list links to inode {cur}, which is free"),
                )?;
                break;
            }
            if Reader::new(&raw).u32(252) != inode_checksum(&raw, cur, self.ctx.seed) {
                self.problem(
                    Kind::OrphanList,
                    cur,
                    0,
                    "orphan list cut there",
                    format_args!(
                        "the orphan list links to inode {cur}, whose checksum does not match"
                    ),
                )?;
                break;
            }
            let kind = FileType::from_mode(i.mode);
            if i.nlink > 0 && kind != Some(FileType::RegularFile) {
                self.problem(
                    Kind::OrphanList,
                    cur,
                    0,
                    act,
                    format_args!(
                        "inode {cur} ({}, {} links) is on the orphan list but is neither unlinked nor being truncated",
                        ft_name(kind),
                        i.nlink
                    ),
                )?;
            } else {
                let f = &mut self.info_mut(cur)?.flags;
                *f |= F_ORPHAN;
                if i.nlink > 0 {
                    *f |= F_TRUNC;
                }
                if !self.ctx.repair {
                    let what = if i.nlink > 0 {
                        "an interrupted truncate: mount will complete it"
                    } else {
                        "unlinked: mount will free it"
                    };
                    self.problem(
                        Kind::Info,
                        cur,
                        0,
                        "",
                        format_args!(
                            "note: inode {cur} ({}) is on the orphan list, {what}",
                            ft_name(kind)
                        ),
                    )?;
                }
            }
            cur = i.orphan_next;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Pass 1: inodes and their blocks.

    fn pass1(&mut self) -> Result {
        let (start, len, n) = (
            self.ctx.sb.inode_table_start,
            self.ctx.sb.inode_table_len,
            self.ctx.sb.ninodes,
        );
        let mut table = Vec::zeroed(BLOCK_SIZE)?;
        for t in 0..len {
            let first = t.saturating_mul(INODES_PER_BLOCK);
            if first >= n {
                break;
            }
            self.ctx.read_block(start.saturating_add(t), &mut table)?;
            for k in 0..INODES_PER_BLOCK {
                let ino = first.saturating_add(k);
                if ino == 0 {
                    continue;
                }
                if ino >= n {
                    break;
                }
                let off = usize::try_from(k).unwrap_or(0).saturating_mul(INODE_SIZE);
                let raw: [u8; INODE_SIZE] = Reader::new(&table).array(off);
                if Reader::new(&raw).u32(0) != 0 {
                    self.inode(ino, &raw)?;
                }
            }
        }
        Ok(())
    }

    /// Checks inode `ino` (in use) and claims its blocks.
    fn inode(&mut self, ino: u32, raw: &[u8; INODE_SIZE]) -> Result {
        let repair = self.ctx.repair;
        let mut i = inode_fields(raw);
        let r = Reader::new(raw);
        let stored = r.u32(252);
        let sum = inode_checksum(raw, ino, self.ctx.seed);
        let flags = self.info(ino).flags;
        let kind = FileType::from_mode(i.mode);
        let kn = ft_name(kind);
        if flags & F_ORPHAN != 0 && i.nlink == 0 && repair {
            // As mount does: an unlinked orphan goes, with its blocks.
            self.release_unclaimed(&i)?;
            self.ctx.store_inode(ino, None)?;
            self.ino_touched.set(u64::from(ino));
            return self.problem(
                Kind::OrphanProcessed,
                ino,
                0,
                "freed",
                format_args!("inode {ino} ({kn}) is an unlinked orphan"),
            );
        }
        // Field checks: a fatal problem makes the inode unusable; the others are fixed.
        let mut fatal: Option<&'static str> = None;
        let mut fixes: [Option<&'static str>; 8] = [None; 8];
        let mut nfix = 0usize;
        let mut fix = |what: &'static str| {
            if let Some(s) = fixes.get_mut(nfix) {
                *s = Some(what);
            }
            nfix = nfix.saturating_add(1);
        };
        let inline = i.flags & FLAG_INLINE_SYMLINK != 0;
        match kind {
            None => fatal = Some("invalid file type in its mode"),
            Some(k) => {
                let mut bad_time = false;
                for t in [&mut i.atime, &mut i.mtime, &mut i.ctime, &mut i.crtime] {
                    if t.nsec >= 1_000_000_000 {
                        t.nsec = 0;
                        bad_time = true;
                    }
                }
                if bad_time {
                    fix("timestamp nanoseconds out of range");
                }
                if i.flags & !FLAG_INLINE_SYMLINK != 0 {
                    i.flags &= FLAG_INLINE_SYMLINK;
                    fix("unknown flags set");
                }
                if inline && k != FileType::Symlink {
                    i.flags &= !FLAG_INLINE_SYMLINK;
                    fix("inline-symlink flag on an inode that is not a symlink");
                }
                if r.u32(100) != 0 || r.bytes(164, 88).iter().any(|b| *b != 0) {
                    fix("reserved fields are not zero");
                }
                let device = matches!(k, FileType::CharDevice | FileType::BlockDevice);
                if i.rdev != 0 && !device {
                    i.rdev = 0;
                    fix("device number on an inode that is not a device");
                }
                match k {
                    FileType::Symlink => {
                        if i.size == 0 || i.size > SYMLINK_MAX as u64 {
                            fatal = Some("symbolic link target of length 0 or over 4095 bytes");
                        } else if inline && i.size > INLINE_SYMLINK_MAX as u64 {
                            fatal = Some("inline symbolic link target over 60 bytes");
                        } else if !inline && i.addrs.first() == Some(&0) {
                            fatal = Some("symbolic link without a target block");
                        } else if !inline && i.addrs.iter().skip(1).any(|a| *a != 0) {
                            for a in i.addrs.iter_mut().skip(1) {
                                *a = 0;
                            }
                            fix("symbolic link with more than one block pointer");
                        }
                    }
                    FileType::RegularFile | FileType::Directory => {
                        if i.size > MAX_FILE_BYTES {
                            fix("size beyond the largest file (set to the end of its last block)");
                        }
                    }
                    _ => {
                        if i.size != 0 {
                            i.size = 0;
                            fix("special file with a non-zero size");
                        }
                        if i.addrs.iter().any(|a| *a != 0) {
                            i.addrs = [0; NDIRECT + 3];
                            fix("special file with block pointers");
                        }
                    }
                }
            }
        }
        let csum_ok = stored == sum;
        let first_fix = fixes.first().copied().flatten();
        if let Some(why) = fatal.or(if csum_ok { None } else { first_fix }) {
            let (pk, also) = if csum_ok {
                (Kind::InodeInvalid, "")
            } else {
                (Kind::InodeChecksum, ", and its checksum does not match")
            };
            if repair {
                self.ctx.store_inode(ino, None)?;
            }
            self.ino_touched.set(u64::from(ino));
            return self.problem(
                pk,
                ino,
                0,
                "inode cleared",
                format_args!("inode {ino} (mode {:#o}): {why}{also}", i.mode),
            );
        }
        let Some(k) = kind else { return Ok(()) };
        let mut changed = false;
        if !csum_ok {
            changed = true;
            self.problem(
                Kind::InodeChecksum,
                ino,
                0,
                "checksum fixed",
                format_args!(
                    "inode {ino} ({kn}): checksum {stored:#x} does not match its contents ({sum:#x})"
                ),
            )?;
        }
        for what in fixes.iter().flatten() {
            changed = true;
            self.problem(
                Kind::InodeInvalid,
                ino,
                0,
                "fixed",
                format_args!("inode {ino} ({kn}): {what}"),
            )?;
        }
        // Blocks.
        let is_dir = k == FileType::Directory;
        let mut w = Walk {
            ino,
            is_dir,
            is_file: k == FileType::RegularFile,
            keep: None,
            count: 0,
            bad: 0,
            max_fblk: None,
            dir_blocks: Vec::new(),
            pending: false,
        };
        if repair && flags & F_TRUNC != 0 {
            w.keep = Some(i.size.div_ceil(BLOCK_SIZE_U64));
        }
        let uses_blocks = match k {
            FileType::RegularFile | FileType::Directory => true,
            FileType::Symlink => i.flags & FLAG_INLINE_SYMLINK == 0,
            _ => false,
        };
        if uses_blocks {
            for slot in 0..NDIRECT.saturating_add(3) {
                let p = i.addrs.get(slot).copied().unwrap_or(0);
                if p == 0 {
                    continue;
                }
                let (level, fblk) = slot_geometry(slot);
                if !self.visit(&mut w, p, level, fblk, Loc::Inode(slot))? {
                    *i.addrs.get_mut(slot).ok_or(Errno::EIO)? = 0;
                    changed = true;
                }
            }
        }
        if w.bad > MAX_BAD_LISTED {
            self.problem(
                Kind::BadBlock,
                ino,
                0,
                "pointers cleared",
                format_args!(
                    "inode {ino}: {} more block pointers outside the data area",
                    w.bad.saturating_sub(MAX_BAD_LISTED)
                ),
            )?;
        }
        if k == FileType::Symlink && uses_blocks && i.addrs.first() == Some(&0) {
            // Its one block was invalid: nothing left to point to.
            if repair {
                self.ctx.store_inode(ino, None)?;
            }
            self.ino_touched.set(u64::from(ino));
            return self.problem(
                Kind::InodeInvalid,
                ino,
                0,
                "inode cleared",
                format_args!("inode {ino} (symbolic link): its target block was invalid"),
            );
        }
        if i.xattr_block != 0 {
            changed |= self.xattr(ino, &mut i, &mut w)?;
        }
        if flags & F_ORPHAN == 0 && i.orphan_next != 0 {
            self.problem(
                Kind::OrphanList,
                ino,
                0,
                "link cleared",
                format_args!(
                    "inode {ino} is not on the orphan list but links to inode {}",
                    i.orphan_next
                ),
            )?;
            i.orphan_next = 0;
            changed = true;
        }
        let processed = repair && flags & F_TRUNC != 0;
        if processed {
            i.orphan_next = 0;
            changed = true;
            self.problem(
                Kind::OrphanProcessed,
                ino,
                0,
                "truncate completed",
                format_args!(
                    "inode {ino} ({kn}) is on the orphan list: an interrupted truncate to {} bytes",
                    i.size
                ),
            )?;
        }
        if i.size > MAX_FILE_BYTES {
            i.size = w
                .max_fblk
                .map_or(0, |m| m.saturating_add(1).saturating_mul(BLOCK_SIZE_U64));
        }
        let expected = w.count.saturating_mul(SECTORS_PER_BLOCK);
        if w.pending {
            self.dup_counts.insert(ino, (i.blocks, expected))?;
        } else if i.blocks != expected {
            if !processed {
                self.problem(
                    Kind::BlockCount,
                    ino,
                    0,
                    "fixed",
                    format_args!(
                        "inode {ino} ({kn}): blocks count {}, should be {expected} (512-byte units)",
                        i.blocks
                    ),
                )?;
            }
            i.blocks = expected;
            changed = true;
        }
        if is_dir {
            let settled = flags & F_ORPHAN != 0 && i.nlink == 0;
            self.dirs.insert(
                ino,
                DirInfo {
                    blocks: core::mem::take(&mut w.dir_blocks),
                    size: i.size,
                    settled,
                    ..DirInfo::default()
                },
            )?;
        }
        let info = self.info_mut(ino)?;
        info.kind = k as u8;
        info.nlink = i.nlink;
        if changed && repair {
            self.ctx.store_inode(ino, Some(&i))?;
        }
        Ok(())
    }

    /// Visits block pointer `p` (`level` 0: data; 1..3: indirect) covering file blocks
    /// from `fblk`. Returns whether the pointer stays (false: clear it).
    fn visit(&mut self, w: &mut Walk, p: u32, level: u32, fblk: u64, loc: Loc) -> Result<bool> {
        if w.keep.is_some_and(|keep| fblk >= keep) {
            self.release_tree(p, level)?;
            return Ok(false);
        }
        let what = match (level, w.is_dir) {
            (0, true) => "directory block",
            (0, false) => "data block",
            _ => "indirect block",
        };
        let ino = w.ino;
        // A regular file's data block may be marked unwritten (`INCOMPAT_UNWRITTEN`);
        // a mark anywhere else leaves the pointer outside the data area.
        let (p, unwritten) = match (level, w.is_file) {
            (0, true) => self.ctx.sb.data_ptr(p).unwrap_or((p, false)),
            _ => (p, false),
        };
        if !self.ctx.is_data(p) || (w.is_dir && level == 0 && fblk >= DIR_MAX_BLOCKS) {
            w.bad = w.bad.saturating_add(1);
            if w.bad <= MAX_BAD_LISTED {
                let (first, end) = (self.ctx.sb.data_start, self.ctx.sb.nblocks);
                self.problem(
                    Kind::BadBlock,
                    ino,
                    u64::from(p),
                    "pointer cleared",
                    format_args!(
                        "inode {ino}: {what} pointer for file block {fblk} is block {p}, outside the data area {first}..{end}"
                    ),
                )?;
            }
            return Ok(false);
        }
        if self.ctx.used(p)? {
            if level == 0 && !w.is_dir {
                // Resolved after pass 1: the second owner gets a copy.
                self.dups.push(DupRef {
                    ino,
                    loc,
                    blk: p,
                    fblk,
                    unwritten,
                })?;
                w.pending = true;
                w.count = w.count.saturating_add(1);
                return Ok(true);
            }
            self.problem(
                Kind::DuplicateBlock,
                ino,
                u64::from(p),
                "pointer cleared",
                format_args!(
                    "inode {ino}: {what} {p} (file block {fblk}) is already used by another inode or by this one"
                ),
            )?;
            return Ok(false);
        }
        self.ctx.space()?.used.set(u64::from(p));
        w.count = w.count.saturating_add(1);
        if level == 0 {
            w.max_fblk = Some(w.max_fblk.map_or(fblk, |m| m.max(fblk)));
            if w.is_dir {
                let l = usize::try_from(fblk).map_err(|_| Errno::EIO)?;
                if w.dir_blocks.len() <= l {
                    w.dir_blocks.resize(l.saturating_add(1), 0)?;
                }
                *w.dir_blocks.get_mut(l).ok_or(Errno::EIO)? = p;
            }
            return Ok(true);
        }
        self.indirect_blocks = self.indirect_blocks.saturating_add(1);
        let mut b = Vec::zeroed(BLOCK_SIZE)?;
        self.ctx.read_block(p, &mut b)?;
        let span = PTRS_PER_BLOCK.saturating_pow(level.saturating_sub(1));
        let mut dirty = false;
        for i in 0..PTRS_PER_BLOCK {
            let c = ptr_at(&b, i);
            if c == 0 {
                continue;
            }
            let child = fblk.saturating_add(i.saturating_mul(span));
            if !self.visit(w, c, level.saturating_sub(1), child, Loc::Ind(p, i))? {
                set_ptr_at(&mut b, i, 0);
                dirty = true;
            }
        }
        if dirty && self.ctx.repair {
            self.ctx.write_block(p, &b)?;
        }
        Ok(true)
    }

    /// Releases the blocks under pointer `p` that nobody claimed (an orphan's, a
    /// truncated tail): their bitmap bits are rewritten as free, not reported.
    fn release_tree(&mut self, p: u32, level: u32) -> Result {
        let p = self.data_block(p, level);
        if !self.ctx.is_data(p) || self.ctx.used(p)? {
            return Ok(());
        }
        self.ctx.touch_block(p)?;
        if level == 0 {
            return Ok(());
        }
        let mut b = Vec::zeroed(BLOCK_SIZE)?;
        self.ctx.read_block(p, &mut b)?;
        for i in 0..PTRS_PER_BLOCK {
            let c = ptr_at(&b, i);
            if c != 0 {
                self.release_tree(c, level.saturating_sub(1))?;
            }
        }
        Ok(())
    }

    /// Releases all blocks of an inode freed in pass 1 (an unlinked orphan).
    fn release_unclaimed(&mut self, i: &DiskInode) -> Result {
        let kind = FileType::from_mode(i.mode);
        let uses_blocks = matches!(kind, Some(FileType::RegularFile | FileType::Directory))
            || (kind == Some(FileType::Symlink) && i.flags & FLAG_INLINE_SYMLINK == 0);
        if uses_blocks {
            for (slot, p) in i.addrs.iter().enumerate() {
                if *p != 0 {
                    self.release_tree(*p, slot_geometry(slot).0)?;
                }
            }
        }
        if i.xattr_block != 0 {
            self.release_tree(i.xattr_block, 0)?;
        }
        Ok(())
    }

    /// Frees the blocks an inode claimed (it is being deleted after pass 1).
    fn free_claimed(&mut self, i: &DiskInode, with_xattr: bool) -> Result {
        let kind = FileType::from_mode(i.mode);
        let uses_blocks = matches!(kind, Some(FileType::RegularFile | FileType::Directory))
            || (kind == Some(FileType::Symlink) && i.flags & FLAG_INLINE_SYMLINK == 0);
        if uses_blocks {
            for (slot, p) in i.addrs.iter().enumerate() {
                if *p != 0 {
                    self.free_tree(*p, slot_geometry(slot).0)?;
                }
            }
        }
        if with_xattr && i.xattr_block != 0 && self.ctx.is_data(i.xattr_block) {
            self.ctx.free_block(i.xattr_block)?;
        }
        Ok(())
    }

    /// The block pointer `p` at `level` names: a data block pointer (level 0) without
    /// its unwritten mark.
    fn data_block(&self, p: u32, level: u32) -> u32 {
        match level {
            0 => self.ctx.sb.data_ptr(p).map_or(p, |(b, _)| b),
            _ => p,
        }
    }

    fn free_tree(&mut self, p: u32, level: u32) -> Result {
        let p = self.data_block(p, level);
        if !self.ctx.is_data(p) || !self.ctx.used(p)? {
            return Ok(());
        }
        if level > 0 {
            let mut b = Vec::zeroed(BLOCK_SIZE)?;
            self.ctx.read_block(p, &mut b)?;
            for i in 0..PTRS_PER_BLOCK {
                let c = ptr_at(&b, i);
                if c != 0 {
                    self.free_tree(c, level.saturating_sub(1))?;
                }
            }
        }
        self.ctx.free_block(p)
    }

    /// Checks the xattr block of inode `ino`. Returns whether the inode changed.
    fn xattr(&mut self, ino: u32, i: &mut DiskInode, w: &mut Walk) -> Result<bool> {
        let p = i.xattr_block;
        if !self.ctx.is_data(p) {
            self.problem(
                Kind::BadBlock,
                ino,
                u64::from(p),
                "pointer cleared",
                format_args!("inode {ino}: extended attribute block {p} is outside the data area"),
            )?;
            i.xattr_block = 0;
            return Ok(true);
        }
        if self.ctx.used(p)? {
            self.problem(
                Kind::DuplicateBlock,
                ino,
                u64::from(p),
                "pointer cleared (attributes lost)",
                format_args!(
                    "inode {ino}: extended attribute block {p} is already used by another inode"
                ),
            )?;
            i.xattr_block = 0;
            return Ok(true);
        }
        let mut b = Vec::zeroed(BLOCK_SIZE)?;
        self.ctx.read_block(p, &mut b)?;
        match xattr_verdict(&b, ino, self.ctx.seed) {
            Err(why) => {
                self.ctx.touch_block(p)?;
                self.problem(
                    Kind::Xattr,
                    ino,
                    u64::from(p),
                    "block dropped (attributes lost)",
                    format_args!("inode {ino}: extended attribute block {p}: {why}"),
                )?;
                i.xattr_block = 0;
                Ok(true)
            }
            Ok(csum) => {
                self.ctx.space()?.used.set(u64::from(p));
                w.count = w.count.saturating_add(1);
                self.xattr_blocks = self.xattr_blocks.saturating_add(1);
                if let Some((stored, sum)) = csum {
                    self.problem(
                        Kind::Xattr,
                        ino,
                        u64::from(p),
                        "checksum fixed",
                        format_args!(
                            "inode {ino}: extended attribute block {p}: checksum {stored:#x} does not match its contents ({sum:#x})"
                        ),
                    )?;
                    if self.ctx.repair {
                        self.ctx.modify_block(p, &mut |b| {
                            Writer::new(b).u32(12, sum);
                            Ok(())
                        })?;
                    }
                }
                Ok(false)
            }
        }
    }

    /// Gives the second owner of each doubly claimed data block a copy of it.
    fn resolve_dups(&mut self) -> Result {
        let dups = core::mem::take(&mut self.dups);
        let mut copy = Vec::zeroed(BLOCK_SIZE)?;
        for d in dups.iter() {
            let ino = d.ino;
            let (blk, fblk) = (d.blk, d.fblk);
            let (target, action) = match self.ctx.alloc_block(blk) {
                Ok(nb) => (nb, "copied to a new block"),
                Err(Errno::ENOSPC) => {
                    if let Some(c) = self.dup_counts.get_mut(&ino) {
                        c.1 = c.1.saturating_sub(SECTORS_PER_BLOCK);
                    }
                    (0, "pointer cleared (no free block for a copy)")
                }
                Err(e) => return Err(e),
            };
            self.problem(
                Kind::DuplicateBlock,
                ino,
                u64::from(blk),
                action,
                format_args!(
                    "inode {ino}: data block {blk} (file block {fblk}) is also used by another inode or by this one"
                ),
            )?;
            if !self.ctx.repair {
                continue;
            }
            let target = match target {
                0 => 0,
                t if d.unwritten => t | UNWRITTEN,
                t => {
                    self.ctx.read_block(blk, &mut copy)?;
                    self.ctx.write_block(t, &copy)?;
                    t
                }
            };
            match d.loc {
                Loc::Inode(slot) => {
                    let mut i = self.ctx.load_inode(ino)?;
                    *i.addrs.get_mut(slot).ok_or(Errno::EIO)? = target;
                    self.ctx.store_inode(ino, Some(&i))?;
                }
                Loc::Ind(b, idx) => self.ctx.set_ptr(b, idx, target)?,
            }
        }
        let counts = core::mem::take(&mut self.dup_counts);
        for (ino, (stored, expected)) in counts.iter() {
            if stored == expected {
                continue;
            }
            self.problem(
                Kind::BlockCount,
                *ino,
                0,
                "fixed",
                format_args!(
                    "inode {ino}: blocks count {stored}, should be {expected} (512-byte units)"
                ),
            )?;
            if self.ctx.repair {
                let mut i = self.ctx.load_inode(*ino)?;
                i.blocks = *expected;
                self.ctx.store_inode(*ino, Some(&i))?;
            }
        }
        Ok(())
    }
}

/// Checks an xattr block: `Err(why)` if unusable, `Ok(Some((stored, computed)))` if
/// only its checksum is wrong.
fn xattr_verdict(
    b: &[u8],
    ino: u32,
    seed: u32,
) -> core::result::Result<Option<(u32, u32)>, &'static str> {
    let r = Reader::new(b);
    let (magic, count, used, stored) = (r.u32(0), r.u32(4), r.u32(8), r.u32(12));
    let used = usize::try_from(used).unwrap_or(usize::MAX);
    if magic != XATTR_MAGIC {
        return Err("bad magic number");
    }
    if !(XATTR_HEADER..=BLOCK_SIZE).contains(&used) {
        return Err("used size out of range");
    }
    let mut off = XATTR_HEADER;
    let mut n = 0u32;
    let mut prev: Option<(u8, &[u8])> = None;
    while off < used {
        let ns = r.u8(off);
        let nlen = usize::from(r.u8(off.saturating_add(1)));
        let vlen = usize::from(r.u16(off.saturating_add(2)));
        let name = r.bytes(off.saturating_add(XATTR_ENTRY_FIXED), nlen);
        let end = off
            .saturating_add(XATTR_ENTRY_FIXED)
            .saturating_add(nlen)
            .saturating_add(vlen);
        if nlen == 0 || !matches!(ns, 1 | 4 | 6) || end > used || r.finish().is_err() {
            return Err("invalid entry");
        }
        if prev.is_some_and(|p| p >= (ns, name)) {
            return Err("entries out of order or repeated");
        }
        prev = Some((ns, name));
        n = n.saturating_add(1);
        off = end;
    }
    if n != count {
        return Err("entry count does not match its entries");
    }
    if n == 0 {
        return Err("no attributes");
    }
    let sum = xattr_checksum(b, ino, seed);
    Ok((stored != sum).then_some((stored, sum)))
}

// ---------------------------------------------------------------------------------------
// Directory trees.

/// Bytes of entries a directory block holds.
const DIR_PAYLOAD: usize = BLOCK_SIZE - DIR_HEADER_SIZE;
/// Fixed part of a leaf entry.
const LEAF_FIXED: usize = 14;
/// Size of an index entry.
const INDEX_ENTRY: usize = 12;
/// Tree problems listed per directory.
const MAX_TREE_ISSUES: usize = 16;

/// A directory block header, as stored.
#[derive(Clone, Copy, Debug)]
struct Hdr {
    kind: u8,
    level: u8,
    count: u16,
    used: u16,
    next: u32,
    parent: u32,
    reserved_zero: bool,
    stored: u32,
}

fn parse_hdr(b: &[u8]) -> Hdr {
    let r = Reader::new(b);
    Hdr {
        kind: r.u8(0),
        level: r.u8(1),
        count: r.u16(2),
        used: r.u16(4),
        next: r.u32(8),
        parent: r.u32(12),
        reserved_zero: r.u16(6) == 0 && r.u32(16) == 0,
        stored: r.u32(20),
    }
}

/// The header rules of `DirHeader::decode` (checksum aside), plus zero reserved fields.
fn hdr_valid(h: &Hdr) -> bool {
    let fits = usize::from(h.used) <= DIR_PAYLOAD;
    h.reserved_zero
        && fits
        && match h.kind {
            DIR_LEAF => h.level == 0,
            DIR_INDEX => {
                h.level > 0
                    && usize::from(h.used) == usize::from(h.count).saturating_mul(INDEX_ENTRY)
            }
            _ => false,
        }
}

/// One directory entry read from disk.
struct Ent {
    key: u64,
    ino: u32,
    kind: u8,
    name: Vec<u8>,
}

/// A problem found in a directory tree.
struct Issue {
    kind: Kind,
    block: u64,
    message: Vec<u8>,
}

/// What reading a directory found.
struct Scan {
    /// Its entries: in key order from the tree, or salvaged from every readable leaf.
    entries: Vec<Ent>,
    /// The tree is sound (checksums aside).
    tree_ok: bool,
    /// Logical blocks sound but for their checksum.
    reseal: Vec<u32>,
    /// `..` from the root block, if readable.
    dotdot: Option<u32>,
    issues: Vec<Issue>,
    /// Issues not listed.
    more_issues: usize,
}

impl Scan {
    fn issue(&mut self, kind: Kind, block: u32, args: fmt::Arguments<'_>) -> Result {
        if kind == Kind::DirTree {
            self.tree_ok = false;
        }
        if self.issues.len() >= MAX_TREE_ISSUES {
            self.more_issues = self.more_issues.saturating_add(1);
            return Ok(());
        }
        self.issues.push(Issue {
            kind,
            block: u64::from(block),
            message: msg(args)?,
        })
    }
}

/// Why a leaf entry is unusable: structurally (the parse cannot go on) or not.
enum LeafError {
    /// The rest of the leaf cannot be parsed.
    Fatal(&'static str),
    /// This entry is bad, the parse can go on.
    Entry(&'static str),
}

/// Parses leaf `b` into `out`. `strict`: the first error ends the parse and is
/// returned (with its offset), and keys must be increasing and inside `lo..hi`.
/// Otherwise (salvage) bad entries are skipped while the leaf can be parsed.
fn parse_leaf(
    b: &[u8],
    h: &Hdr,
    range: (u64, Option<u64>),
    strict: bool,
    out: &mut Vec<Ent>,
) -> Result<Option<(&'static str, usize)>> {
    let r = Reader::new(b);
    let used = usize::from(h.used);
    let (mut off, mut n, mut prev) = (0usize, 0u16, None::<u64>);
    while off < used {
        let at = DIR_HEADER_SIZE.saturating_add(off);
        let key = r.u64(at);
        let ino = r.u32(at.saturating_add(8));
        let len = usize::from(r.u8(at.saturating_add(12)));
        let kind = r.u8(at.saturating_add(13));
        let name = r.bytes(at.saturating_add(LEAF_FIXED), len);
        let end = off.saturating_add(LEAF_FIXED).saturating_add(len);
        let verdict = if len == 0 {
            Some(LeafError::Fatal("an entry with an empty name"))
        } else if end > used || r.finish().is_err() {
            Some(LeafError::Fatal("an entry runs past the used bytes"))
        } else if file_type(kind).is_none() {
            Some(LeafError::Entry("an entry with an invalid type"))
        } else if ino == 0 {
            Some(LeafError::Entry("an entry for inode 0"))
        } else if strict && prev.is_some_and(|p| p >= key) {
            Some(LeafError::Entry("entries out of key order"))
        } else if strict && (key < range.0 || range.1.is_some_and(|hi| key >= hi)) {
            Some(LeafError::Entry(
                "an entry key outside the range of its leaf",
            ))
        } else {
            None
        };
        match verdict {
            Some(LeafError::Fatal(why)) => return Ok(Some((why, off))),
            Some(LeafError::Entry(why)) if strict => return Ok(Some((why, off))),
            Some(LeafError::Entry(_)) => {}
            None => out.push(Ent {
                key,
                ino,
                kind,
                name: Vec::try_from_slice(name)?,
            })?,
        }
        prev = Some(key);
        n = n.saturating_add(1);
        off = end;
    }
    if strict && n != h.count {
        return Ok(Some(("the entry count does not match the header", 0)));
    }
    Ok(None)
}

/// Walks a directory tree from its root block.
struct TreeWalk<'a, 'c, 'd> {
    ctx: &'c Ctx<'d>,
    dino: u32,
    blocks: &'a [u32],
    /// Logical blocks within the size.
    nblk: u64,
    visited: Bits,
    /// Leaves in key order: (logical block, next leaf).
    leaves: Vec<(u32, u32)>,
    s: Scan,
    buf: Vec<u8>,
}

impl TreeWalk<'_, '_, '_> {
    fn node(
        &mut self,
        l: u32,
        expect: Option<u8>,
        range: (u64, Option<u64>),
        depth: usize,
    ) -> Result {
        let d = self.dino;
        if depth > DIR_MAX_DEPTH {
            return self.s.issue(
                Kind::DirTree,
                0,
                format_args!("directory {d}: tree deeper than {DIR_MAX_DEPTH} levels"),
            );
        }
        let p = if u64::from(l) < self.nblk {
            usize::try_from(l)
                .ok()
                .and_then(|i| self.blocks.get(i))
                .copied()
                .unwrap_or(0)
        } else {
            0
        };
        if p == 0 {
            let what = if u64::from(l) < self.nblk {
                "a hole"
            } else {
                "past its end"
            };
            return self.s.issue(
                Kind::DirTree,
                0,
                format_args!(
                    "directory {d}: the tree refers to logical block {l}, which is {what}"
                ),
            );
        }
        if self.visited.get(u64::from(l)) {
            return self.s.issue(
                Kind::DirTree,
                p,
                format_args!("directory {d}: logical block {l} appears twice in the tree"),
            );
        }
        self.visited.set(u64::from(l));
        self.ctx.read_block(p, &mut self.buf)?;
        let h = parse_hdr(&self.buf);
        let sum = dir_checksum(&self.buf, d, self.ctx.seed);
        let csum_ok = h.stored == sum;
        if !hdr_valid(&h) {
            let also = if csum_ok { "" } else { " and a wrong checksum" };
            return self.s.issue(
                Kind::DirTree,
                p,
                format_args!(
                    "directory {d}, logical block {l} (block {p}): invalid header (kind {}, level {}, count {}, used {}){also}",
                    h.kind, h.level, h.count, h.used
                ),
            );
        }
        if let Some(e) = expect {
            if h.level != e {
                return self.s.issue(
                    Kind::DirTree,
                    p,
                    format_args!(
                        "directory {d}, logical block {l} (block {p}): at level {}, expected {e}",
                        h.level
                    ),
                );
            }
        }
        if l == 0 {
            self.s.dotdot = Some(h.parent);
        } else if h.parent != 0 {
            self.s.issue(
                Kind::DirTree,
                p,
                format_args!(
                    "directory {d}, logical block {l} (block {p}): a parent field ({}) outside the root block",
                    h.parent
                ),
            )?;
        }
        let csum_issue = |s: &mut Scan| -> Result {
            s.reseal.push(l)?;
            s.issue(
                Kind::DirChecksum,
                p,
                format_args!(
                    "directory {d}, logical block {l} (block {p}): checksum {:#x} does not match its contents ({sum:#x})",
                    h.stored
                ),
            )
        };
        if h.kind == DIR_LEAF {
            let mut out = core::mem::take(&mut self.s.entries);
            let err = parse_leaf(&self.buf, &h, range, true, &mut out)?;
            self.s.entries = out;
            if let Some((why, off)) = err {
                self.s.issue(
                    Kind::DirTree,
                    p,
                    format_args!(
                        "directory {d}, logical block {l} (block {p}): {why} (byte {off} of the leaf)"
                    ),
                )?;
            } else if !csum_ok {
                csum_issue(&mut self.s)?;
            }
            return self.leaves.push((l, h.next));
        }
        // An index block: children cover [key, next key).
        let count = usize::from(h.count);
        let mut kids: Vec<(u64, u32)> = Vec::with_capacity(count)?;
        let r = Reader::new(&self.buf);
        for i in 0..count {
            let at = DIR_HEADER_SIZE.saturating_add(i.saturating_mul(INDEX_ENTRY));
            kids.push((r.u64(at), r.u32(at.saturating_add(8))))?;
        }
        let sorted = kids.windows(2).all(|w| match w {
            [a, b] => a.0 < b.0,
            _ => true,
        });
        let inside = kids.iter().all(|(k, _)| range.1.is_none_or(|hi| *k < hi));
        let why = if count == 0 {
            Some("an empty index block")
        } else if kids.first().is_some_and(|(k, _)| *k != range.0) {
            Some("its first key is not the start of its range")
        } else if !sorted || !inside {
            Some("index keys out of order or outside its range")
        } else if kids.iter().any(|(_, c)| *c == 0) {
            Some("an index entry points at the root block")
        } else {
            None
        };
        if let Some(why) = why {
            return self.s.issue(
                Kind::DirTree,
                p,
                format_args!("directory {d}, logical block {l} (block {p}): {why}"),
            );
        }
        if !csum_ok {
            csum_issue(&mut self.s)?;
        }
        let below = h.level.saturating_sub(1);
        for (i, (k, c)) in kids.iter().enumerate() {
            let hi = kids.get(i.saturating_add(1)).map(|n| n.0).or(range.1);
            self.node(*c, Some(below), (*k, hi), depth.saturating_add(1))?;
        }
        Ok(())
    }
}

/// Reads directory `dino` (its blocks as pass 1 found them).
fn scan_dir(ctx: &Ctx<'_>, dino: u32, blocks: &[u32], size: u64) -> Result<Scan> {
    let nblk = size / BLOCK_SIZE_U64;
    let mut w = TreeWalk {
        ctx,
        dino,
        blocks,
        nblk,
        visited: Bits::new(blocks.len() as u64)?,
        leaves: Vec::new(),
        s: Scan {
            entries: Vec::new(),
            tree_ok: true,
            reseal: Vec::new(),
            dotdot: None,
            issues: Vec::new(),
            more_issues: 0,
        },
        buf: Vec::zeroed(BLOCK_SIZE)?,
    };
    let d = dino;
    if size % BLOCK_SIZE_U64 != 0 || size == 0 || nblk > DIR_MAX_BLOCKS {
        w.s.issue(
            Kind::DirTree,
            0,
            format_args!("directory {d}: size {size} is not a whole, non-zero number of blocks"),
        )?;
    }
    if nblk > 0 {
        w.node(0, None, (0, None), 0)?;
    }
    if w.s.tree_ok {
        // The leaf chain must visit the leaves in key order.
        for (i, (l, next)) in w.leaves.iter().enumerate() {
            let want = w.leaves.get(i.saturating_add(1)).map_or(0, |x| x.0);
            if *next != want {
                w.s.issue(
                    Kind::DirTree,
                    0,
                    format_args!(
                        "directory {d}: leaf {l} links to logical block {next} as the next leaf, not {want}"
                    ),
                )?;
                break;
            }
        }
    }
    let mut hole_seen = false;
    for (l, p) in blocks.iter().enumerate() {
        let l64 = l as u64;
        if l64 >= nblk {
            if *p != 0 {
                w.s.issue(
                    Kind::DirTree,
                    *p,
                    format_args!(
                        "directory {d}: logical block {l} (block {p}) lies past its size {size}"
                    ),
                )?;
            }
        } else if *p == 0 {
            if !hole_seen {
                hole_seen = true;
                w.s.issue(
                    Kind::DirTree,
                    0,
                    format_args!("directory {d}: logical block {l} is a hole"),
                )?;
            }
        } else if !w.visited.get(l64) && w.s.tree_ok {
            w.s.issue(
                Kind::DirTree,
                *p,
                format_args!(
                    "directory {d}: logical block {l} (block {p}) is not part of its tree"
                ),
            )?;
        }
    }
    if nblk > blocks.len() as u64 && !hole_seen {
        w.s.issue(
            Kind::DirTree,
            0,
            format_args!(
                "directory {d}: size {size} goes past its last block ({} blocks mapped)",
                blocks.len()
            ),
        )?;
    }
    if !w.s.tree_ok {
        // Salvage: every entry of every leaf that can still be read.
        w.s.entries.clear();
        for (l, p) in blocks.iter().enumerate() {
            if *p == 0 {
                continue;
            }
            ctx.read_block(*p, &mut w.buf)?;
            let h = parse_hdr(&w.buf);
            if !hdr_valid(&h) {
                continue;
            }
            if l == 0 && w.s.dotdot.is_none() {
                w.s.dotdot = Some(h.parent);
            }
            if h.kind == DIR_LEAF {
                parse_leaf(&w.buf, &h, (0, None), false, &mut w.s.entries)?;
            }
        }
    }
    Ok(w.s)
}

/// Why a directory entry goes.
#[derive(Clone, Copy)]
enum BadEntry {
    Name,
    Duplicate,
    Range,
    Itself,
    Root,
    /// Its inode is free (true: cleared by this check).
    Free(bool),
}

impl BadEntry {
    fn kind(self) -> Kind {
        match self {
            BadEntry::Duplicate => Kind::DirDuplicateName,
            _ => Kind::DirEntry,
        }
    }
}

/// What to do with the entries of a directory.
#[derive(Default)]
struct Verdict {
    /// Entries to keep (indices into `Scan::entries`).
    keep: Vec<usize>,
    /// Entries to remove.
    drop: Vec<usize>,
    /// Kept entries whose type must be set to their inode's.
    retype: Vec<usize>,
    /// The directory must be rebuilt (keys to recompute, duplicate names).
    rebuild: bool,
}

impl Checker<'_> {
    // -----------------------------------------------------------------------------------
    // The root directory.

    fn check_root(&mut self) -> Result {
        let root = self.info(ROOT_INO);
        if root.kind == K_DIR {
            return Ok(());
        }
        let what = if root.kind == 0 {
            "free (or was cleared)"
        } else {
            kind_name(root.kind)
        };
        self.problem(
            Kind::RootDir,
            ROOT_INO,
            0,
            "new empty root directory made",
            format_args!("the root inode {ROOT_INO} is {what}, not a directory"),
        )?;
        if !self.ctx.repair {
            return Ok(());
        }
        if root.kind != 0 {
            let old = self.ctx.load_inode(ROOT_INO)?;
            self.free_claimed(&old, true)?;
        }
        let now = bento::time::now();
        let inode = DiskInode {
            mode: FileType::Directory.mode_bits() | 0o755,
            nlink: 2,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            ..DiskInode::default()
        };
        let made = (|| -> Result<u32> {
            let d = DevDir::new(&self.ctx, ROOT_INO, inode);
            d.append()?;
            dir::init(&d, ROOT_INO)?;
            d.block(0)
        })();
        match made {
            Ok(b) => {
                let mut blocks = Vec::new();
                blocks.push(b)?;
                self.dirs.insert(
                    ROOT_INO,
                    DirInfo {
                        blocks,
                        size: BLOCK_SIZE_U64,
                        ..DirInfo::default()
                    },
                )?;
                *self.info_mut(ROOT_INO)? = Info {
                    kind: K_DIR,
                    nlink: 2,
                    ..Info::default()
                };
                self.ino_touched.set(u64::from(ROOT_INO));
                Ok(())
            }
            Err(e) => self.failed(e, ROOT_INO, format_args!("the root directory")),
        }
    }

    // -----------------------------------------------------------------------------------
    // Pass 2: directories.

    fn dir_inos(&self) -> Result<Vec<u32>> {
        let mut v = Vec::with_capacity(self.dirs.len())?;
        v.try_extend(self.dirs.keys().copied())?;
        Ok(v)
    }

    fn scan(&self, dino: u32) -> Result<Scan> {
        let d = self.dirs.get(&dino).ok_or(Errno::EIO)?;
        scan_dir(&self.ctx, dino, &d.blocks, d.size)
    }

    fn pass2(&mut self) -> Result {
        for dino in self.dir_inos()?.iter().copied() {
            let scan = self.scan(dino)?;
            for i in scan.issues.iter() {
                let action = if i.kind == Kind::DirChecksum && scan.tree_ok {
                    "checksum fixed"
                } else {
                    "directory rebuilt from its readable entries"
                };
                let fixed = self.ctx.repair;
                self.report.problems.push(Problem {
                    kind: i.kind,
                    ino: dino,
                    block: i.block,
                    message: Vec::try_from_slice(&i.message)?,
                    action,
                    fixed,
                })?;
            }
            if scan.more_issues > 0 {
                self.problem(
                    Kind::DirTree,
                    dino,
                    0,
                    "directory rebuilt from its readable entries",
                    format_args!(
                        "directory {dino}: {} more problems in its tree",
                        scan.more_issues
                    ),
                )?;
            }
            let v = self.check_entries(dino, &scan, true)?;
            let dirty = !scan.tree_ok
                || !scan.reseal.is_empty()
                || v.rebuild
                || !v.drop.is_empty()
                || !v.retype.is_empty();
            if !scan.tree_ok || v.rebuild {
                // Its blocks are all replaced: their bitmap bits are the repair's.
                self.touch_dir_blocks(dino)?;
            }
            let d = self.dir_mut(dino)?;
            d.dotdot = scan.dotdot;
            d.dirty |= dirty;
        }
        Ok(())
    }

    /// Marks the blocks of directory `dino` (data and indirect) as changed by the repair.
    fn touch_dir_blocks(&mut self, dino: u32) -> Result {
        fn tree(ctx: &Ctx<'_>, p: u32, level: u32) -> Result {
            if !ctx.is_data(p) || !ctx.used(p)? {
                return Ok(());
            }
            ctx.touch_block(p)?;
            if level > 0 {
                let mut b = Vec::zeroed(BLOCK_SIZE)?;
                ctx.read_block(p, &mut b)?;
                for i in 0..PTRS_PER_BLOCK {
                    let c = ptr_at(&b, i);
                    if c != 0 {
                        tree(ctx, c, level.saturating_sub(1))?;
                    }
                }
            }
            Ok(())
        }
        let mut raw = [0u8; INODE_SIZE];
        self.ctx.raw_inode(dino, &mut raw)?;
        let i = inode_fields(&raw);
        for (slot, p) in i.addrs.iter().enumerate() {
            if *p != 0 {
                tree(&self.ctx, *p, slot_geometry(slot).0)?;
            }
        }
        Ok(())
    }

    /// Judges the entries of directory `dino`. `first`: the pass-2 look, which reports
    /// and counts links; the repair looks again silently.
    fn check_entries(&mut self, dino: u32, scan: &Scan, first: bool) -> Result<Verdict> {
        let mut v = Verdict {
            rebuild: !scan.tree_ok,
            ..Verdict::default()
        };
        let mut names: BTreeMap<Vec<u8>, ()> = BTreeMap::new();
        let n = self.ctx.sb.ninodes;
        for (idx, e) in scan.entries.iter().enumerate() {
            let name = Bytes(&e.name);
            let ino = e.ino;
            let target = self.info(ino);
            let hb = dir::base_key(siphash13(&self.ctx.sb.uuid, &e.name));
            let bad = if dir::check_name(&e.name).is_err() {
                Some(BadEntry::Name)
            } else if names.contains_key(&e.name) {
                v.rebuild = true;
                Some(BadEntry::Duplicate)
            } else if ino >= n {
                Some(BadEntry::Range)
            } else if ino == dino {
                Some(BadEntry::Itself)
            } else if ino == ROOT_INO {
                Some(BadEntry::Root)
            } else if target.kind == 0 {
                Some(BadEntry::Free(self.ino_touched.get(u64::from(ino))))
            } else {
                None
            };
            if let Some(b) = bad {
                if first {
                    let (kind, fixed) = (b.kind(), self.ctx.repair);
                    let r = &mut self.report;
                    let a = "entry removed";
                    match b {
                        BadEntry::Name => push_problem(r, kind, dino, 0, fixed, a, format_args!(
                            "directory {dino}: entry '{name}' (inode {ino}) has an invalid name")),
                        BadEntry::Duplicate => push_problem(r, kind, dino, 0, fixed, a, format_args!(
                            "directory {dino}: a second entry is named '{name}' (inode {ino})")),
                        BadEntry::Range => push_problem(r, kind, dino, 0, fixed, a, format_args!(
                            "directory {dino}: entry '{name}' points to inode {ino}, past the last inode")),
                        BadEntry::Itself => push_problem(r, kind, dino, 0, fixed, a, format_args!(
                            "directory {dino}: entry '{name}' names the directory itself")),
                        BadEntry::Root => push_problem(r, kind, dino, 0, fixed, a, format_args!(
                            "directory {dino}: entry '{name}' names the root directory")),
                        BadEntry::Free(cleared) => push_problem(r, kind, dino, 0, fixed, a, format_args!(
                            "directory {dino}: entry '{name}' points to inode {ino}, which {}",
                            if cleared { "was cleared" } else { "is free" })),
                    }?;
                }
                // Removing in place finds an entry by the hash of its name.
                v.rebuild |= e.key & !3 != hb;
                v.drop.push(idx)?;
                continue;
            }
            names.insert(Vec::try_from_slice(&e.name)?, ())?;
            if e.key & !3 != hb {
                v.rebuild = true;
                if first {
                    self.problem(
                        Kind::DirHash,
                        dino,
                        0,
                        "entry filed again under its hash",
                        format_args!(
                            "directory {dino}: entry '{name}' has key {:#x}, but its name hashes to {hb:#x}",
                            e.key
                        ),
                    )?;
                }
            }
            if e.kind != target.kind {
                v.retype.push(idx)?;
                if first {
                    self.problem(
                        Kind::DirEntryType,
                        dino,
                        0,
                        "type fixed",
                        format_args!(
                            "directory {dino}: entry '{name}' (inode {ino}) says {}, but the inode is a {}",
                            kind_name(e.kind),
                            kind_name(target.kind)
                        ),
                    )?;
                }
            }
            v.keep.push(idx)?;
            if !first {
                continue;
            }
            if target.kind == K_DIR {
                self.dir_mut(ino)?.namings.push(Naming {
                    parent: dino,
                    name: Vec::try_from_slice(&e.name)?,
                })?;
            } else {
                let t = self.info_mut(ino)?;
                t.refs = t.refs.saturating_add(1);
            }
            if dino == ROOT_INO && e.name.as_slice() == b"lost+found" {
                if target.kind == K_DIR {
                    self.lost_found = ino;
                } else {
                    self.lost_found_bad = true;
                }
            }
        }
        Ok(v)
    }

    /// Each directory keeps one name: the entry in the directory its `..` names, else the
    /// first found; the other entries go. Then `..` is checked against that parent.
    fn resolve_names(&mut self) -> Result {
        for dino in self.dir_inos()?.iter().copied() {
            let d = self.dir_mut(dino)?;
            let namings = core::mem::take(&mut d.namings);
            let dotdot = d.dotdot;
            if dino == ROOT_INO {
                d.parent = ROOT_INO;
            } else if let Some(keep) = namings
                .iter()
                .position(|n| Some(n.parent) == dotdot)
                .or((!namings.is_empty()).then_some(0))
            {
                let kept = namings.get(keep).ok_or(Errno::EIO)?;
                let (parent, kept_name) = (kept.parent, Vec::try_from_slice(&kept.name)?);
                for (i, other) in namings.iter().enumerate() {
                    if i == keep {
                        continue;
                    }
                    self.problem(
                        Kind::DirHardLink,
                        other.parent,
                        0,
                        "entry removed",
                        format_args!(
                            "directory {dino} is also named '{}' in directory {} (it is '{}' in directory {parent})",
                            Bytes(&other.name),
                            other.parent,
                            Bytes(&kept_name)
                        ),
                    )?;
                    let p = self.dir_mut(other.parent)?;
                    p.remove.push(Vec::try_from_slice(&other.name)?)?;
                    p.dirty = true;
                }
                let d = self.dir_mut(dino)?;
                d.parent = parent;
                d.name = kept_name;
                let p = self.dir_mut(parent)?;
                p.subdirs = p.subdirs.saturating_add(1);
            }
            let d = self.dir_mut(dino)?;
            let parent = d.parent;
            match d.dotdot {
                Some(dd) if parent != 0 && dd != parent => {
                    d.set_parent = true;
                    d.dirty = true;
                    if dino == ROOT_INO {
                        self.problem(
                            Kind::DotDot,
                            dino,
                            0,
                            "'..' fixed",
                            format_args!("the root directory's '..' is {dd}, not itself"),
                        )?;
                    } else {
                        self.problem(
                            Kind::DotDot,
                            dino,
                            0,
                            "'..' fixed",
                            format_args!(
                                "directory {dino}: '..' is {dd}, but the directory is in {parent}"
                            ),
                        )?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Repairs the directories pass 2 found wrong, now that every decision is made.
    fn fix_dirs(&mut self) -> Result {
        for dino in self.dir_inos()?.iter().copied() {
            if !self.dirs.get(&dino).is_some_and(|d| d.dirty) {
                continue;
            }
            if let Err(e) = self.fix_dir(dino) {
                self.failed(e, dino, format_args!("directory {dino}"))?;
            }
        }
        Ok(())
    }

    fn fix_dir(&mut self, dino: u32) -> Result {
        let scan = self.scan(dino)?;
        let v = self.check_entries(dino, &scan, false)?;
        let d = self.dirs.get(&dino).ok_or(Errno::EIO)?;
        let parent = match (dino, d.parent) {
            (ROOT_INO, _) => ROOT_INO,
            (_, 0) => scan.dotdot.filter(|p| *p != 0).unwrap_or(ROOT_INO),
            (_, p) => p,
        };
        let removed = |name: &[u8]| d.remove.iter().any(|r| r.as_slice() == name);
        if !scan.tree_ok || v.rebuild {
            let mut keep: Vec<(&[u8], u32, FileType)> = Vec::with_capacity(v.keep.len())?;
            for idx in v.keep.iter() {
                let e = scan.entries.get(*idx).ok_or(Errno::EIO)?;
                if removed(&e.name) {
                    continue;
                }
                let kind = file_type(self.info(e.ino).kind).ok_or(Errno::EIO)?;
                keep.push((&e.name, e.ino, kind))?;
            }
            return self.rebuild(dino, parent, &keep);
        }
        for l in scan.reseal.iter() {
            let p = usize::try_from(*l)
                .ok()
                .and_then(|i| d.blocks.get(i))
                .copied()
                .ok_or(Errno::EIO)?;
            self.ctx.modify_block(p, &mut |b| {
                let sum = dir_checksum(b, dino, self.ctx.seed);
                Writer::new(b).u32(20, sum);
                Ok(())
            })?;
        }
        let store = DevDir::open(&self.ctx, dino)?;
        for idx in v.drop.iter() {
            let e = scan.entries.get(*idx).ok_or(Errno::EIO)?;
            dir::remove(&store, store.hash(&e.name), &e.name)?;
        }
        for name in d.remove.iter() {
            dir::remove(&store, store.hash(name), name)?;
        }
        for idx in v.retype.iter() {
            let e = scan.entries.get(*idx).ok_or(Errno::EIO)?;
            if removed(&e.name) {
                continue;
            }
            let kind = file_type(self.info(e.ino).kind).ok_or(Errno::EIO)?;
            dir::replace(&store, store.hash(&e.name), &e.name, e.ino, kind)?;
        }
        if d.set_parent {
            dir::set_parent(&store, parent)?;
        }
        Ok(())
    }

    /// Builds directory `dino` anew with `entries`: its old blocks are freed and the
    /// entries inserted into a fresh tree.
    fn rebuild(&self, dino: u32, parent: u32, entries: &[(&[u8], u32, FileType)]) -> Result {
        let mut inode = self.ctx.load_inode(dino)?;
        // The old blocks (pass 1 left only blocks of its own) go back first.
        self.free_dir_blocks(&inode)?;
        inode.addrs = [0; NDIRECT + 3];
        inode.size = 0;
        inode.blocks = if inode.xattr_block != 0 {
            SECTORS_PER_BLOCK
        } else {
            0
        };
        let d = DevDir::new(&self.ctx, dino, inode);
        d.append()?;
        dir::init(&d, parent)?;
        for (name, ino, kind) in entries.iter() {
            match dir::insert(&d, d.hash(name), name, *ino, *kind) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn free_dir_blocks(&self, i: &DiskInode) -> Result {
        fn tree(ctx: &Ctx<'_>, p: u32, level: u32) -> Result {
            if !ctx.is_data(p) {
                return Ok(());
            }
            if level > 0 {
                let mut b = Vec::zeroed(BLOCK_SIZE)?;
                ctx.read_block(p, &mut b)?;
                for i in 0..PTRS_PER_BLOCK {
                    let c = ptr_at(&b, i);
                    if c != 0 {
                        tree(ctx, c, level.saturating_sub(1))?;
                    }
                }
            }
            ctx.free_block(p)
        }
        for (slot, p) in i.addrs.iter().enumerate() {
            if *p != 0 {
                tree(&self.ctx, *p, slot_geometry(slot).0)?;
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Pass 3: connectivity.

    /// Directories reachable from the root (or settled: reconnected, given up on, or
    /// orphans a mount will free).
    fn reachable(&self) -> Result<Bits> {
        let n = u64::from(self.ctx.sb.ninodes);
        let (mut reach, mut known) = (Bits::new(n)?, Bits::new(n)?);
        if self.info(ROOT_INO).kind == K_DIR {
            reach.set(u64::from(ROOT_INO));
        }
        known.set(u64::from(ROOT_INO));
        let mut path: Vec<u32> = Vec::new();
        for (dino, d0) in self.dirs.iter() {
            if known.get(u64::from(*dino)) {
                continue;
            }
            path.clear();
            let (mut cur, mut d, mut ok) = (*dino, d0, false);
            loop {
                if known.get(u64::from(cur)) {
                    ok = reach.get(u64::from(cur));
                    break;
                }
                if d.settled {
                    ok = true;
                    path.push(cur)?;
                    break;
                }
                if path.len() > self.dirs.len() {
                    break;
                }
                path.push(cur)?;
                match self.dirs.get(&d.parent) {
                    Some(p) if d.parent != 0 => {
                        cur = d.parent;
                        d = p;
                    }
                    _ => break,
                }
            }
            for x in path.iter() {
                known.set(u64::from(*x));
                if ok {
                    reach.set(u64::from(*x));
                }
            }
        }
        Ok(reach)
    }

    fn pass3(&mut self) -> Result {
        loop {
            let reach = self.reachable()?;
            let Some(start) = self
                .dirs
                .keys()
                .copied()
                .find(|d| !reach.get(u64::from(*d)))
            else {
                break;
            };
            // The top of its unreachable chain; inside a loop, where the climb ends.
            let mut top = start;
            let mut steps = 0usize;
            while let Some(p) = self.dirs.get(&top).map(|d| d.parent).filter(|p| *p != 0) {
                if steps > self.dirs.len() {
                    break;
                }
                steps = steps.saturating_add(1);
                top = p;
            }
            let d = self.dirs.get(&top).ok_or(Errno::EIO)?;
            let old = d.parent;
            if old != 0 {
                let name = Vec::try_from_slice(&d.name)?;
                self.problem(
                    Kind::Unattached,
                    top,
                    0,
                    "entry removed",
                    format_args!(
                        "directory {top} ('{}' in directory {old}) is in a loop of directories unreachable from the root",
                        Bytes(&name)
                    ),
                )?;
                if self.ctx.repair {
                    let r = DevDir::open(&self.ctx, old)
                        .and_then(|s| dir::remove(&s, s.hash(&name), &name).map(|_| ()));
                    if let Err(e) = r {
                        self.failed(e, old, format_args!("directory {old}"))?;
                    }
                }
                let o = self.dir_mut(old)?;
                o.subdirs = o.subdirs.saturating_sub(1);
                self.dir_mut(top)?.parent = 0;
            }
            self.reconnect(top, K_DIR)?;
        }
        // Files in no directory.
        for ino in 1..self.ctx.sb.ninodes {
            let t = self.info(ino);
            if t.kind == 0 || t.kind == K_DIR || t.refs > 0 {
                continue;
            }
            if t.flags & F_ORPHAN != 0 && t.nlink == 0 {
                continue; // (-n) a mount frees it
            }
            if t.nlink > 0 {
                self.reconnect(ino, t.kind)?;
                continue;
            }
            self.problem(
                Kind::Unattached,
                ino,
                0,
                "inode freed",
                format_args!(
                    "inode {ino} ({}) is in no directory and has no links",
                    kind_name(t.kind)
                ),
            )?;
            if self.ctx.repair {
                let i = self.ctx.load_inode(ino)?;
                self.free_claimed(&i, true)?;
                self.ctx.store_inode(ino, None)?;
            }
            self.info_mut(ino)?.kind = 0;
            self.ino_touched.set(u64::from(ino));
        }
        Ok(())
    }

    /// `/lost+found`, made if missing (repairing). `None` if there is none to use.
    fn lost_found_dir(&mut self) -> Result<Option<u32>> {
        if self.lost_found_done {
            return Ok((self.lost_found != 0).then_some(self.lost_found));
        }
        self.lost_found_done = true;
        if self.lost_found != 0 {
            return Ok(Some(self.lost_found));
        }
        if self.lost_found_bad {
            push_problem(
                &mut self.report,
                Kind::LostFound,
                ROOT_INO,
                0,
                false,
                "",
                format_args!("/lost+found is not a directory: nothing can be reconnected (rename it and check again)"),
            )?;
            return Ok(None);
        }
        let root_ok = self.info(ROOT_INO).kind == K_DIR;
        if !root_ok && self.ctx.repair {
            return Ok(None); // the root could not be remade
        }
        self.problem(
            Kind::LostFound,
            ROOT_INO,
            0,
            "created",
            format_args!("/lost+found does not exist"),
        )?;
        if !self.ctx.repair {
            if !root_ok {
                return Ok(None);
            }
            // Counted as made (the root gains a link), so that -n and -y report alike.
            let r = self.info_mut(ROOT_INO)?;
            r.nlink = r.nlink.saturating_add(1);
            let root = self.dir_mut(ROOT_INO)?;
            root.subdirs = root.subdirs.saturating_add(1);
            return Ok(None);
        }
        match self.make_lost_found() {
            Ok(ino) => {
                self.lost_found = ino;
                Ok(Some(ino))
            }
            Err(e) => {
                self.failed(e, ROOT_INO, format_args!("/lost+found"))?;
                Ok(None)
            }
        }
    }

    fn make_lost_found(&mut self) -> Result<u32> {
        let ino = (ROOT_INO.saturating_add(1)..self.ctx.sb.ninodes)
            .find(|i| self.info(*i).kind == 0)
            .ok_or(Errno::ENOSPC)?;
        let now = bento::time::now();
        let inode = DiskInode {
            mode: FileType::Directory.mode_bits() | 0o700,
            nlink: 2,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            ..DiskInode::default()
        };
        {
            let d = DevDir::new(&self.ctx, ino, inode);
            d.append()?;
            dir::init(&d, ROOT_INO)?;
            let root = DevDir::open(&self.ctx, ROOT_INO)?;
            let name = b"lost+found";
            dir::insert(&root, root.hash(name), name, ino, FileType::Directory)?;
            let mut ri = self.ctx.load_inode(ROOT_INO)?;
            ri.nlink = ri.nlink.saturating_add(1);
            self.ctx.store_inode(ROOT_INO, Some(&ri))?;
        }
        *self.info_mut(ino)? = Info {
            kind: K_DIR,
            nlink: 2,
            ..Info::default()
        };
        self.ino_touched.set(u64::from(ino));
        let r = self.info_mut(ROOT_INO)?;
        r.nlink = r.nlink.saturating_add(1);
        let root = self.dir_mut(ROOT_INO)?;
        root.subdirs = root.subdirs.saturating_add(1);
        self.dirs.insert(
            ino,
            DirInfo {
                parent: ROOT_INO,
                dotdot: Some(ROOT_INO),
                settled: true,
                ..DirInfo::default()
            },
        )?;
        Ok(ino)
    }

    /// Reconnects inode `ino` (of kind `kind`) to `/lost+found` as `#ino`.
    fn reconnect(&mut self, ino: u32, kind: u8) -> Result {
        let lf = self.lost_found_dir()?;
        let (what, action) = if kind == K_DIR {
            (
                "is not reachable from the root",
                "reconnected to /lost+found",
            )
        } else {
            ("is in no directory", "reconnected to /lost+found")
        };
        let kn = kind_name(kind);
        let available = lf.is_some() || !self.ctx.repair;
        if available {
            self.problem(
                Kind::Unattached,
                ino,
                0,
                action,
                format_args!("inode {ino} ({kn}) {what}"),
            )?;
        } else {
            push_problem(
                &mut self.report,
                Kind::Unattached,
                ino,
                0,
                false,
                action,
                format_args!("inode {ino} ({kn}) {what}"),
            )?;
        }
        if let (Some(lf), true) = (lf, self.ctx.repair) {
            if let Err(e) = self.link_into(lf, ino, kind) {
                self.failed(e, ino, format_args!("inode {ino} (reconnecting it)"))?;
            }
        }
        // Counted as reconnected whatever happened, so that the check goes on.
        if kind == K_DIR {
            if let Some(lf) = lf {
                let l = self.info_mut(lf)?;
                l.nlink = l.nlink.saturating_add(1);
                let ld = self.dir_mut(lf)?;
                ld.subdirs = ld.subdirs.saturating_add(1);
            }
            let d = self.dir_mut(ino)?;
            d.parent = lf.unwrap_or(0);
            d.dotdot = lf.or(d.dotdot);
            d.settled = true;
        } else {
            self.info_mut(ino)?.refs = 1;
        }
        Ok(())
    }

    /// Links `ino` into directory `lf` as `#ino` (or `#ino.N` if taken); a directory gets
    /// `lf` as its `..` and `lf` one more link.
    fn link_into(&self, lf: u32, ino: u32, kind: u8) -> Result {
        let ft = file_type(kind).ok_or(Errno::EIO)?;
        let store = DevDir::open(&self.ctx, lf)?;
        let mut done = false;
        for n in 0..10u32 {
            let name = if n == 0 {
                msg(format_args!("#{ino}"))?
            } else {
                msg(format_args!("#{ino}.{n}"))?
            };
            match dir::insert(&store, store.hash(&name), &name, ino, ft) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        if !done {
            return Err(Errno::EEXIST);
        }
        if kind == K_DIR {
            let child = DevDir::open(&self.ctx, ino)?;
            dir::set_parent(&child, lf)?;
            let mut li = self.ctx.load_inode(lf)?;
            li.nlink = li.nlink.saturating_add(1);
            self.ctx.store_inode(lf, Some(&li))?;
        }
        Ok(())
    }
}

/// A class of bitmap difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Diff {
    /// Marked used, nothing uses it.
    Leaked,
    /// Used, marked free.
    Missing,
    /// A metadata block (or inode 0) marked free.
    Meta,
    /// A bit past the end of the file system is clear.
    Tail,
}

/// Consecutive bitmap differences of one class.
struct Runs {
    list: Vec<(Diff, u64, u64)>,
    more: u32,
}

impl Runs {
    fn add(&mut self, d: Diff, n: u64) -> Result {
        if let Some(last) = self.list.last_mut() {
            if last.0 == d && last.2.checked_add(1) == Some(n) {
                last.2 = n;
                return Ok(());
            }
        }
        if self.list.len() >= MAX_RANGES_LISTED as usize {
            self.more = self.more.saturating_add(1);
            // Keep merging into the last one only; further ranges are just counted.
            return Ok(());
        }
        self.list.push((d, n, n))
    }
}

/// `a` or `a-b`.
struct Span(u64, u64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}-{}", self.0, self.1)
        }
    }
}

impl Checker<'_> {
    // -----------------------------------------------------------------------------------
    // Pass 4: link counts.

    fn pass4(&mut self) -> Result {
        for ino in 1..self.ctx.sb.ninodes {
            let t = self.info(ino);
            if t.kind == 0 || (t.flags & F_ORPHAN != 0 && t.nlink == 0) {
                continue;
            }
            let want = if t.kind == K_DIR {
                self.dirs
                    .get(&ino)
                    .map_or(2, |d| d.subdirs.saturating_add(2))
            } else {
                t.refs
            };
            if want == t.nlink {
                continue;
            }
            self.problem(
                Kind::LinkCount,
                ino,
                0,
                "fixed",
                format_args!(
                    "inode {ino} ({}): link count {}, should be {want}",
                    kind_name(t.kind),
                    t.nlink
                ),
            )?;
            self.info_mut(ino)?.nlink = want;
            if self.ctx.repair {
                let r = self.ctx.load_inode(ino).and_then(|mut i| {
                    i.nlink = want;
                    self.ctx.store_inode(ino, Some(&i))
                });
                if let Err(e) = r {
                    self.failed(e, ino, format_args!("the link count of inode {ino}"))?;
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Pass 5: bitmaps.

    fn pass5(&mut self) -> Result {
        let sb = self.ctx.sb.clone();
        let mut img = Vec::zeroed(BLOCK_SIZE)?;
        let mut want = Vec::zeroed(BLOCK_SIZE)?;
        // Blocks: the metadata, every block claimed, the bits past the end.
        let mut runs = Runs {
            list: Vec::new(),
            more: 0,
        };
        for i in 0..sb.block_bitmap_len {
            let blk = sb.block_bitmap_start.saturating_add(i);
            self.ctx.read_block(blk, &mut img)?;
            let base = usize::try_from(i)
                .map_err(|_| Errno::EIO)?
                .saturating_mul(BLOCK_SIZE);
            {
                let sp = self.ctx.space()?;
                for (j, (w, disk)) in want.iter_mut().zip(img.iter()).enumerate() {
                    let g = base.saturating_add(j);
                    *w = sp.used.byte(g);
                    let diff = (*w ^ *disk) & !sp.touched.byte(g);
                    if diff == 0 {
                        continue;
                    }
                    for bit in 0..8u32 {
                        if diff & (1 << bit) == 0 {
                            continue;
                        }
                        let n = (g as u64).saturating_mul(8).saturating_add(u64::from(bit));
                        let class = if n >= u64::from(sb.nblocks) {
                            Diff::Tail
                        } else if *w & (1 << bit) == 0 {
                            Diff::Leaked
                        } else if n < u64::from(sb.data_start) {
                            Diff::Meta
                        } else {
                            Diff::Missing
                        };
                        runs.add(class, n)?;
                    }
                }
            }
            if want != img && self.ctx.repair {
                self.ctx.write_block(blk, &want)?;
            }
        }
        for (d, a, b) in runs.list.iter() {
            let s = Span(*a, *b);
            let (r, fixed, k) = (&mut self.report, self.ctx.repair, Kind::BlockBitmap);
            match d {
                Diff::Leaked => push_problem(
                    r,
                    k,
                    0,
                    *a,
                    fixed,
                    "marked free",
                    format_args!("block bitmap: block(s) {s} marked in use, but nothing uses them"),
                ),
                Diff::Missing => push_problem(
                    r,
                    k,
                    0,
                    *a,
                    fixed,
                    "marked in use",
                    format_args!("block bitmap: block(s) {s} in use, but marked free"),
                ),
                Diff::Meta => push_problem(
                    r,
                    k,
                    0,
                    *a,
                    fixed,
                    "marked in use",
                    format_args!("block bitmap: metadata block(s) {s} marked free"),
                ),
                Diff::Tail => push_problem(
                    r,
                    k,
                    0,
                    *a,
                    fixed,
                    "set",
                    format_args!(
                        "block bitmap: bit(s) {s} past the end of the file system are clear"
                    ),
                ),
            }?;
        }
        if runs.more > 0 {
            self.problem(
                Kind::BlockBitmap,
                0,
                0,
                "fixed",
                format_args!("block bitmap: {} more differing ranges", runs.more),
            )?;
        }
        // Inodes: 0 and every inode in use; bits past the last inode are left alone.
        let mut runs = Runs {
            list: Vec::new(),
            more: 0,
        };
        let per_block = u64::from(BITS_PER_BLOCK);
        for i in 0..sb.inode_bitmap_len {
            let blk = sb.inode_bitmap_start.saturating_add(i);
            self.ctx.read_block(blk, &mut img)?;
            want.copy_from_slice(&img);
            let first = u64::from(i).saturating_mul(per_block);
            let last = first.saturating_add(per_block).min(u64::from(sb.ninodes));
            for n in first..last {
                let bit = n.saturating_sub(first);
                let (byte, mask) = (
                    usize::try_from(bit / 8).unwrap_or(usize::MAX),
                    1u8 << (bit % 8),
                );
                let ino = u32::try_from(n).unwrap_or(u32::MAX);
                let used = n == 0 || self.info(ino).kind != 0;
                let disk = img.get(byte).is_some_and(|b| b & mask != 0);
                if let Some(w) = want.get_mut(byte) {
                    if used {
                        *w |= mask;
                    } else {
                        *w &= !mask;
                    }
                }
                if used != disk && !self.ino_touched.get(n) {
                    let class = match (n, used) {
                        (0, _) => Diff::Meta,
                        (_, true) => Diff::Missing,
                        (_, false) => Diff::Leaked,
                    };
                    runs.add(class, n)?;
                }
            }
            if want != img && self.ctx.repair {
                self.ctx.write_block(blk, &want)?;
            }
        }
        for (d, a, b) in runs.list.iter() {
            let s = Span(*a, *b);
            let (r, fixed, k) = (&mut self.report, self.ctx.repair, Kind::InodeBitmap);
            match d {
                Diff::Leaked => push_problem(
                    r,
                    k,
                    0,
                    0,
                    fixed,
                    "marked free",
                    format_args!("inode bitmap: inode(s) {s} marked in use, but free"),
                ),
                Diff::Missing => push_problem(
                    r,
                    k,
                    0,
                    0,
                    fixed,
                    "marked in use",
                    format_args!("inode bitmap: inode(s) {s} in use, but marked free"),
                ),
                _ => push_problem(
                    r,
                    k,
                    0,
                    0,
                    fixed,
                    "set",
                    format_args!("inode bitmap: the bit of inode 0 (never used) is clear"),
                ),
            }?;
        }
        if runs.more > 0 {
            self.problem(
                Kind::InodeBitmap,
                0,
                0,
                "fixed",
                format_args!("inode bitmap: {} more differing ranges", runs.more),
            )?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // The end: superblock, statistics, sync.

    fn finish(&mut self) -> Result {
        let mut st = Stats {
            ninodes: self.ctx.sb.ninodes,
            nblocks: self.ctx.sb.nblocks,
            indirect_blocks: self.indirect_blocks,
            xattr_blocks: self.xattr_blocks,
            ..Stats::default()
        };
        for t in self.info.iter() {
            let c = match t.kind {
                0 => continue,
                K_FILE => &mut st.files,
                K_DIR => &mut st.dirs,
                K_SYMLINK => &mut st.symlinks,
                4 => &mut st.fifos,
                5 | 6 => &mut st.devices,
                _ => &mut st.sockets,
            };
            *c = c.saturating_add(1);
            st.inodes_used = st.inodes_used.saturating_add(1);
        }
        {
            let sp = self.ctx.space()?;
            st.blocks_used = (0..self.ctx.sb.nblocks)
                .filter(|b| sp.used.get(u64::from(*b)))
                .count()
                .try_into()
                .unwrap_or(u32::MAX);
        }
        self.report.stats = st;
        if !self.ctx.repair {
            return Ok(());
        }
        // The superblock: orphans processed, state clean unless errors are left.
        let mut sb = self.ctx.sb.clone();
        sb.orphan_head = 0;
        let left = self
            .report
            .problems
            .iter()
            .any(|p| p.is_error() && !p.fixed);
        sb.state = if left { STATE_ERRORS } else { STATE_CLEAN };
        let mut old = Vec::zeroed(BLOCK_SIZE)?;
        self.ctx.read_block(SUPERBLOCK_BLOCK as u32, &mut old)?;
        let mut new = old.try_clone()?;
        sb.encode(&mut new)?;
        // Marking a file system without problems clean is not a modification.
        let repaired = self.ctx.wrote.get() || self.report.errors() > 0;
        if new != old {
            self.ctx.write_block(SUPERBLOCK_BLOCK as u32, &new)?;
        }
        self.report.modified |= repaired;
        self.ctx.dev.sync()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::layout::DirHeader;

    #[test]
    fn checksums_match_layout() {
        let seed = 0x1234_5678;
        let mut b = [0u8; INODE_SIZE];
        let i = DiskInode {
            mode: 0o100644,
            nlink: 1,
            size: 77,
            ..DiskInode::default()
        };
        i.encode(&mut b, 42, seed).unwrap();
        assert_eq!(inode_checksum(&b, 42, seed), Reader::new(&b).u32(252));
        let mut d = std::vec![0u8; BLOCK_SIZE];
        DirHeader {
            kind: DIR_LEAF,
            parent: 9,
            ..DirHeader::default()
        }
        .encode(&mut d)
        .unwrap();
        d[100] = 7;
        DirHeader::seal(&mut d, 42, seed).unwrap();
        assert_eq!(dir_checksum(&d, 42, seed), Reader::new(&d).u32(20));
        assert!(hdr_valid(&parse_hdr(&d)));
    }

    #[test]
    fn block_paths_and_slots() {
        assert_eq!(block_path(0), Some((0, 0, [0; 3])));
        assert_eq!(block_path(12), Some((12, 1, [0; 3])));
        assert_eq!(block_path(12 + 1024 + 1025), Some((13, 2, [1, 1, 0])));
        assert_eq!(block_path(MAX_FILE_BLOCKS - 1), Some((14, 3, [1023; 3])));
        assert_eq!(block_path(MAX_FILE_BLOCKS), None);
        for slot in 0..15 {
            let (level, first) = slot_geometry(slot);
            let (s, l, _) = block_path(first).unwrap();
            assert_eq!((s, l as u32), (slot, level));
        }
    }

    #[test]
    fn xattr_verdicts() {
        let seed = 5;
        let mut b = std::vec![0u8; BLOCK_SIZE];
        let mut w = Writer::new(&mut b);
        w.u32(0, XATTR_MAGIC);
        w.u32(4, 1);
        w.u32(8, 16 + 4 + 1 + 2);
        w.u8(16, 1);
        w.u8(17, 1);
        w.u16(18, 2);
        w.bytes(20, b"kvv");
        let sum = xattr_checksum(&b, 3, seed);
        Writer::new(&mut b).u32(12, sum);
        assert_eq!(xattr_verdict(&b, 3, seed), Ok(None));
        assert_eq!(xattr_verdict(&b, 4, seed).map(|c| c.is_some()), Ok(true));
        b[16] = 9;
        assert!(xattr_verdict(&b, 3, seed).is_err());
    }
}
