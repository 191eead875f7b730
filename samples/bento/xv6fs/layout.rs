// SPDX-License-Identifier: GPL-2.0
//! The on-disk format of xv6fs, in one place (see FORMAT.md): constants, the
//! superblock and inode structures, their validation and checksums.

use bento::bytes::{Reader, Writer};
use bento::crc32c::crc32c;
use bento::{Errno, FileType, Result, Timespec};

/// Block size (the only one supported).
pub const BLOCK_SIZE: usize = 4096;
/// `BLOCK_SIZE` as a `u64`.
pub const BLOCK_SIZE_U64: u64 = 4096;
/// Superblock magic: the bytes `x v 6 f`.
pub const MAGIC: u32 = 0x6636_7678;
/// Format version.
pub const VERSION: u32 = 1;
/// The block holding the superblock.
pub const SUPERBLOCK_BLOCK: u64 = 1;
/// Bytes per inode.
pub const INODE_SIZE: usize = 256;
/// Inodes per block.
pub const INODES_PER_BLOCK: u32 = 16;
/// Direct block pointers per inode.
pub const NDIRECT: usize = 12;
/// Block numbers per indirect block.
pub const PTRS_PER_BLOCK: u64 = 1024;
/// Root directory inode.
pub const ROOT_INO: u32 = 1;
/// Longest symlink target stored inside the inode.
pub const INLINE_SYMLINK_MAX: usize = 60;
/// Longest symlink target.
pub const SYMLINK_MAX: usize = BLOCK_SIZE - 1;
/// Longest file name.
pub const NAME_MAX: usize = 255;
/// jbd2's smallest journal.
pub const MIN_JOURNAL_BLOCKS: u32 = 1024;
/// Bits in one bitmap block.
pub const BITS_PER_BLOCK: u32 = 8 * 4096;
/// Largest file: 12 + 1024 + 1024² + 1024³ blocks.
pub const MAX_FILE_BLOCKS: u64 = 12 + 1024 + 1024 * 1024 + 1024 * 1024 * 1024;

/// Superblock state: unmounted cleanly.
pub const STATE_CLEAN: u32 = 1;
/// Superblock state: errors were found.
pub const STATE_ERRORS: u32 = 2;

/// Inode flag: the symlink target is stored in the block pointer area.
pub const FLAG_INLINE_SYMLINK: u32 = 1;

/// Incompat feature: data block pointers of regular files may carry [`UNWRITTEN`]
/// (set by mkfs on file systems of at most 2³¹ blocks).
pub const INCOMPAT_UNWRITTEN: u32 = 1;
/// Incompat features this version knows.
pub const INCOMPAT_SUPPORTED: u32 = INCOMPAT_UNWRITTEN;
/// Top bit of a regular file's data block pointer ([`INCOMPAT_UNWRITTEN`]): the block
/// is allocated (`fallocate`) but was never written, and reads as zeros whatever the
/// disk holds there. The first write clears it.
pub const UNWRITTEN: u32 = 1 << 31;
/// Ro-compat features this version knows.
pub const RO_COMPAT_SUPPORTED: u32 = 0;

/// Logs a corrupt structure and returns the error for it.
pub fn corrupt(what: core::fmt::Arguments<'_>) -> Errno {
    bento::error!("xv6fs: corrupt {}", what);
    Errno::EUCLEAN
}

/// The superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Compat features.
    pub compat: u32,
    /// Ro-compat features.
    pub ro_compat: u32,
    /// Incompat features.
    pub incompat: u32,
    /// Blocks in the file system.
    pub nblocks: u32,
    /// Inode numbers `0..ninodes`.
    pub ninodes: u32,
    /// Journal region.
    pub journal_start: u32,
    /// Journal length in blocks.
    pub journal_len: u32,
    /// Inode bitmap region.
    pub inode_bitmap_start: u32,
    /// Inode bitmap length.
    pub inode_bitmap_len: u32,
    /// Block bitmap region.
    pub block_bitmap_start: u32,
    /// Block bitmap length.
    pub block_bitmap_len: u32,
    /// Inode table region.
    pub inode_table_start: u32,
    /// Inode table length.
    pub inode_table_len: u32,
    /// First data block.
    pub data_start: u32,
    /// Root inode.
    pub root_ino: u32,
    /// First orphan, 0 if none.
    pub orphan_head: u32,
    /// `STATE_*` bits.
    pub state: u32,
    /// mkfs time.
    pub mkfs_time: i64,
    /// Last mount time.
    pub mount_time: i64,
    /// Last write time.
    pub write_time: i64,
    /// File system UUID.
    pub uuid: [u8; 16],
    /// Label, NUL-padded.
    pub label: [u8; 32],
}

/// Rounds `a / b` up.
fn div_ceil(a: u32, b: u32) -> Option<u32> {
    (b != 0).then(|| a.div_ceil(b))
}

impl Superblock {
    /// The layout mkfs makes for a device of `nblocks` blocks with `ninodes` inodes and a
    /// journal of `journal_len` blocks; `None` if they do not fit.
    pub fn geometry(nblocks: u32, ninodes: u32, journal_len: u32) -> Option<Superblock> {
        let journal_start: u32 = 2;
        let inode_bitmap_start = journal_start.checked_add(journal_len)?;
        let inode_bitmap_len = div_ceil(ninodes, BITS_PER_BLOCK)?;
        let block_bitmap_start = inode_bitmap_start.checked_add(inode_bitmap_len)?;
        let block_bitmap_len = div_ceil(nblocks, BITS_PER_BLOCK)?;
        let inode_table_start = block_bitmap_start.checked_add(block_bitmap_len)?;
        let inode_table_len = div_ceil(ninodes, INODES_PER_BLOCK)?;
        let data_start = inode_table_start.checked_add(inode_table_len)?;
        // Room for the root directory and some data at least.
        if data_start.checked_add(16)? > nblocks || journal_len < MIN_JOURNAL_BLOCKS || ninodes < 16
        {
            return None;
        }
        Some(Superblock {
            compat: 0,
            ro_compat: 0,
            incompat: if nblocks <= UNWRITTEN {
                INCOMPAT_UNWRITTEN
            } else {
                0
            },
            nblocks,
            ninodes,
            journal_start,
            journal_len,
            inode_bitmap_start,
            inode_bitmap_len,
            block_bitmap_start,
            block_bitmap_len,
            inode_table_start,
            inode_table_len,
            data_start,
            root_ino: ROOT_INO,
            orphan_head: 0,
            state: STATE_CLEAN,
            mkfs_time: 0,
            mount_time: 0,
            write_time: 0,
            uuid: [0; 16],
            label: [0; 32],
        })
    }

    /// Decodes and validates the superblock block.
    pub fn decode(b: &[u8]) -> Result<Superblock> {
        let r = Reader::new(b);
        if r.u32(0) != MAGIC {
            bento::error!("xv6fs: bad magic {:#x}: not an xv6fs file system", r.u32(0));
            return Err(Errno::EINVAL);
        }
        let stored = r.u32(252);
        let sum = crc32c(!0, r.bytes(0, 252));
        if r.u32(4) != VERSION {
            bento::error!(
                "xv6fs: format version {} is not supported (this is version {VERSION})",
                r.u32(4)
            );
            return Err(Errno::EINVAL);
        }
        if stored != sum {
            return Err(corrupt(format_args!(
                "superblock: checksum {stored:#x}, computed {sum:#x}"
            )));
        }
        if r.u32(20) != BLOCK_SIZE as u32 {
            return Err(corrupt(format_args!(
                "superblock: block size {}",
                r.u32(20)
            )));
        }
        let sb = Superblock::fields(&r);
        r.finish()?;
        sb.validate()?;
        Ok(sb)
    }

    /// The superblock's fields as stored, without any validation (fsck reports what is
    /// wrong with them itself).
    pub fn fields(r: &Reader<'_>) -> Superblock {
        Superblock {
            compat: r.u32(8),
            ro_compat: r.u32(12),
            incompat: r.u32(16),
            nblocks: r.u32(24),
            ninodes: r.u32(28),
            journal_start: r.u32(32),
            journal_len: r.u32(36),
            inode_bitmap_start: r.u32(40),
            inode_bitmap_len: r.u32(44),
            block_bitmap_start: r.u32(48),
            block_bitmap_len: r.u32(52),
            inode_table_start: r.u32(56),
            inode_table_len: r.u32(60),
            data_start: r.u32(64),
            root_ino: r.u32(68),
            orphan_head: r.u32(72),
            state: r.u32(76),
            mkfs_time: r.i64(80),
            mount_time: r.i64(88),
            write_time: r.i64(96),
            uuid: r.array(104),
            label: r.array(120),
        }
    }

    /// Checks that the regions are ordered, inside the device and large enough.
    pub fn validate(&self) -> Result {
        let regions = [
            ("journal", self.journal_start, self.journal_len),
            (
                "inode bitmap",
                self.inode_bitmap_start,
                self.inode_bitmap_len,
            ),
            (
                "block bitmap",
                self.block_bitmap_start,
                self.block_bitmap_len,
            ),
            ("inode table", self.inode_table_start, self.inode_table_len),
        ];
        let mut next = 2u32;
        for (name, start, len) in regions {
            let end = start.checked_add(len);
            if start < next || end.is_none_or(|e| e > self.nblocks) || len == 0 {
                return Err(corrupt(format_args!(
                    "superblock: {name} region {start}+{len} (device {} blocks)",
                    self.nblocks
                )));
            }
            next = end.unwrap_or(u32::MAX);
        }
        let ok = self.data_start >= next
            && self.data_start < self.nblocks
            && self.journal_len >= MIN_JOURNAL_BLOCKS
            && u64::from(self.inode_table_len).saturating_mul(u64::from(INODES_PER_BLOCK))
                >= u64::from(self.ninodes)
            && u64::from(self.inode_bitmap_len).saturating_mul(u64::from(BITS_PER_BLOCK))
                >= u64::from(self.ninodes)
            && u64::from(self.block_bitmap_len).saturating_mul(u64::from(BITS_PER_BLOCK))
                >= u64::from(self.nblocks)
            && self.root_ino == ROOT_INO
            && self.ninodes > ROOT_INO
            && self.orphan_head < self.ninodes
            && (self.incompat & INCOMPAT_UNWRITTEN == 0 || self.nblocks <= UNWRITTEN);
        if !ok {
            return Err(corrupt(format_args!(
                "superblock: inconsistent geometry {self:?}"
            )));
        }
        Ok(())
    }

    /// Encodes into the superblock block (with its checksum).
    pub fn encode(&self, b: &mut [u8]) -> Result {
        let mut w = Writer::new(b);
        w.u32(0, MAGIC);
        w.u32(4, VERSION);
        w.u32(8, self.compat);
        w.u32(12, self.ro_compat);
        w.u32(16, self.incompat);
        w.u32(20, BLOCK_SIZE as u32);
        w.u32(24, self.nblocks);
        w.u32(28, self.ninodes);
        w.u32(32, self.journal_start);
        w.u32(36, self.journal_len);
        w.u32(40, self.inode_bitmap_start);
        w.u32(44, self.inode_bitmap_len);
        w.u32(48, self.block_bitmap_start);
        w.u32(52, self.block_bitmap_len);
        w.u32(56, self.inode_table_start);
        w.u32(60, self.inode_table_len);
        w.u32(64, self.data_start);
        w.u32(68, self.root_ino);
        w.u32(72, self.orphan_head);
        w.u32(76, self.state);
        w.i64(80, self.mkfs_time);
        w.i64(88, self.mount_time);
        w.i64(96, self.write_time);
        w.bytes(104, &self.uuid);
        w.bytes(120, &self.label);
        w.bytes(152, &[0; 100]);
        w.finish()?;
        let sum = crc32c(!0, Reader::new(b).bytes(0, 252));
        let mut w = Writer::new(b);
        w.u32(252, sum);
        w.finish()
    }

    /// The checksum seed derived from the UUID.
    pub fn csum_seed(&self) -> u32 {
        crc32c(!0, &self.uuid)
    }

    /// The block and byte offset of inode `ino`, or `None` if out of range.
    pub fn inode_location(&self, ino: u32) -> Option<(u64, usize)> {
        if ino == 0 || ino >= self.ninodes {
            return None;
        }
        let block =
            u64::from(self.inode_table_start).checked_add(u64::from(ino / INODES_PER_BLOCK))?;
        let off = usize::try_from(ino % INODES_PER_BLOCK)
            .ok()?
            .checked_mul(INODE_SIZE)?;
        Some((block, off))
    }

    /// Whether `blk` is a data-area block (may be allocated to files).
    pub fn is_data_block(&self, blk: u32) -> bool {
        blk >= self.data_start && blk < self.nblocks
    }

    /// Splits a regular file's data block pointer into the block and whether it is
    /// unwritten; `None` if it is neither 0 nor a data block (a flagged pointer without
    /// [`INCOMPAT_UNWRITTEN`] is not one).
    pub fn data_ptr(&self, p: u32) -> Option<(u32, bool)> {
        let unwritten = p & UNWRITTEN != 0 && self.incompat & INCOMPAT_UNWRITTEN != 0;
        let blk = if unwritten { p & !UNWRITTEN } else { p };
        (p == 0 || self.is_data_block(blk)).then_some((blk, unwritten))
    }
}

/// An inode as stored on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskInode {
    /// Kind and permission bits; 0 = free.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Size in bytes.
    pub size: u64,
    /// Allocated space in 512-byte units.
    pub blocks: u64,
    /// Access time.
    pub atime: Timespec,
    /// Modification time.
    pub mtime: Timespec,
    /// Change time.
    pub ctime: Timespec,
    /// Creation time.
    pub crtime: Timespec,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Generation.
    pub generation: u32,
    /// Device number.
    pub rdev: u32,
    /// Xattr block.
    pub xattr_block: u32,
    /// Next orphan.
    pub orphan_next: u32,
    /// Direct, single, double and triple indirect pointers (or an inline symlink).
    pub addrs: [u32; NDIRECT + 3],
}

/// Offset of the block pointers (and inline symlink target) in an inode.
const ADDRS_OFF: usize = 104;
/// Offset of the orphan link in an inode.
const ORPHAN_NEXT_OFF: usize = 96;

impl DiskInode {
    /// The kind, if the inode is in use and its mode valid.
    pub fn kind(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// Decodes inode `ino` from its 256 bytes, checking the checksum and fields.
    pub fn decode(b: &[u8], ino: u32, seed: u32) -> Result<DiskInode> {
        DiskInode::check_sum(b, ino, seed)?;
        DiskInode::parse(b, ino)
    }

    /// Checks the checksum of inode `ino` (its 256 bytes `b`); a never-used inode (mode
    /// and checksum zero) has none.
    pub fn check_sum(b: &[u8], ino: u32, seed: u32) -> Result {
        let r = Reader::new(b);
        let (mode, stored) = (r.u32(0), r.u32(252));
        r.finish()?;
        if mode == 0 && stored == 0 {
            return Ok(());
        }
        let sum = inode_checksum(b, ino, seed);
        if stored != sum {
            return Err(corrupt(format_args!(
                "inode {ino}: checksum {stored:#x}, computed {sum:#x}"
            )));
        }
        Ok(())
    }

    /// Decodes inode `ino` whose checksum was checked ([`DiskInode::check_sum`], perhaps
    /// earlier): the fields are checked each time.
    pub fn parse(b: &[u8], ino: u32) -> Result<DiskInode> {
        let r = Reader::new(b);
        let stored = r.u32(252);
        r.finish()?;
        let mode = r.u32(0);
        if mode == 0 && stored == 0 {
            // A never-used inode: all zero.
            return Ok(DiskInode::default());
        }
        let ts = |s, n| -> Result<Timespec> {
            let nsec = r.u32(n);
            if nsec >= 1_000_000_000 {
                return Err(corrupt(format_args!("inode {ino}: nanoseconds {nsec}")));
            }
            Ok(Timespec::new(r.i64(s), nsec))
        };
        let mut addrs = [0u32; NDIRECT + 3];
        for (i, a) in addrs.iter_mut().enumerate() {
            *a = r.u32(ADDRS_OFF.saturating_add(i.saturating_mul(4)));
        }
        let inode = DiskInode {
            mode,
            uid: r.u32(4),
            gid: r.u32(8),
            nlink: r.u32(12),
            size: r.u64(16),
            blocks: r.u64(24),
            atime: ts(32, 64)?,
            mtime: ts(40, 68)?,
            ctime: ts(48, 72)?,
            crtime: ts(56, 76)?,
            flags: r.u32(80),
            generation: r.u32(84),
            rdev: r.u32(88),
            xattr_block: r.u32(92),
            orphan_next: r.u32(ORPHAN_NEXT_OFF),
            addrs,
        };
        r.finish()?;
        if mode != 0 && inode.kind().is_none() {
            return Err(corrupt(format_args!("inode {ino}: mode {mode:#o}")));
        }
        if inode.flags & !FLAG_INLINE_SYMLINK != 0
            || (inode.flags & FLAG_INLINE_SYMLINK != 0
                && (inode.kind() != Some(FileType::Symlink)
                    || inode.size > INLINE_SYMLINK_MAX as u64))
        {
            return Err(corrupt(format_args!(
                "inode {ino}: flags {:#x}",
                inode.flags
            )));
        }
        if inode.size > MAX_FILE_BLOCKS.saturating_mul(BLOCK_SIZE_U64) {
            return Err(corrupt(format_args!("inode {ino}: size {}", inode.size)));
        }
        Ok(inode)
    }

    /// [`DiskInode::encode`], except that the orphan link stays what `b` holds.
    pub fn encode_keep_link(&self, b: &mut [u8], ino: u32, seed: u32) -> Result {
        let r = Reader::new(b);
        let next = r.u32(ORPHAN_NEXT_OFF);
        r.finish()?;
        DiskInode {
            orphan_next: next,
            ..self.clone()
        }
        .encode(b, ino, seed)
    }

    /// Encodes inode `ino` into its 256 bytes, with its checksum.
    pub fn encode(&self, b: &mut [u8], ino: u32, seed: u32) -> Result {
        let mut w = Writer::new(b);
        w.u32(0, self.mode);
        w.u32(4, self.uid);
        w.u32(8, self.gid);
        w.u32(12, self.nlink);
        w.u64(16, self.size);
        w.u64(24, self.blocks);
        for (i, t) in [self.atime, self.mtime, self.ctime, self.crtime]
            .iter()
            .enumerate()
        {
            w.i64(32usize.saturating_add(i.saturating_mul(8)), t.sec);
            w.u32(64usize.saturating_add(i.saturating_mul(4)), t.nsec);
        }
        w.u32(80, self.flags);
        w.u32(84, self.generation);
        w.u32(88, self.rdev);
        w.u32(92, self.xattr_block);
        w.u32(ORPHAN_NEXT_OFF, self.orphan_next);
        w.u32(100, 0);
        for (i, a) in self.addrs.iter().enumerate() {
            w.u32(ADDRS_OFF.saturating_add(i.saturating_mul(4)), *a);
        }
        w.bytes(164, &[0; 88]);
        w.finish()?;
        let sum = inode_checksum(b, ino, seed);
        let mut w = Writer::new(b);
        w.u32(252, sum);
        w.finish()
    }

    /// The inline symlink target area (bytes 104..164) as stored in `addrs`.
    pub fn inline_data(&self) -> [u8; INLINE_SYMLINK_MAX] {
        let mut out = [0u8; INLINE_SYMLINK_MAX];
        let mut w = Writer::new(&mut out);
        for (i, a) in self.addrs.iter().enumerate() {
            w.u32(i.saturating_mul(4), *a);
        }
        out
    }

    /// Stores an inline symlink target (at most `INLINE_SYMLINK_MAX` bytes).
    pub fn set_inline_data(&mut self, data: &[u8]) {
        let mut buf = [0u8; INLINE_SYMLINK_MAX];
        for (d, s) in buf.iter_mut().zip(data) {
            *d = *s;
        }
        let r = Reader::new(&buf);
        for (i, a) in self.addrs.iter_mut().enumerate() {
            *a = r.u32(i.saturating_mul(4));
        }
    }
}

/// Directory block kind: leaf (entries).
pub const DIR_LEAF: u8 = 1;
/// Directory block kind: index (hash ranges → child blocks).
pub const DIR_INDEX: u8 = 2;
/// Size of a directory block header.
pub const DIR_HEADER_SIZE: usize = 24;

/// The header of a directory block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirHeader {
    /// `DIR_LEAF` or `DIR_INDEX`.
    pub kind: u8,
    /// 0 for leaves; height above the leaves for index blocks.
    pub level: u8,
    /// Number of entries.
    pub count: u16,
    /// Bytes of entries used after the header.
    pub used: u16,
    /// Next leaf in hash order (logical block), 0 at the end.
    pub next_leaf: u32,
    /// Parent directory (block 0 only).
    pub parent: u32,
}

/// The checksum of the 256 bytes of inode `ino` (bytes 0..252).
pub fn inode_checksum(b: &[u8], ino: u32, seed: u32) -> u32 {
    crc32c(
        crc32c(seed, &ino.to_le_bytes()),
        Reader::new(b).bytes(0, 252),
    )
}

/// Magic of an extended attribute block.
pub const XATTR_MAGIC: u32 = 0x7861_7474;
/// Size of an extended attribute block header.
pub const XATTR_HEADER: usize = 16;
/// Fixed part of an extended attribute entry.
pub const XATTR_ENTRY_FIXED: usize = 4;

/// The checksum of extended attribute block `b` of inode `ino` (checksum field skipped).
pub fn xattr_checksum(b: &[u8], ino: u32, seed: u32) -> u32 {
    let r = Reader::new(b);
    let c = crc32c(crc32c(seed, &ino.to_le_bytes()), r.bytes(0, 12));
    crc32c(
        c,
        r.bytes(XATTR_HEADER, BLOCK_SIZE.saturating_sub(XATTR_HEADER)),
    )
}

/// The checksum of directory block `b` of directory `dir_ino` (checksum field as zero).
pub fn dir_checksum(b: &[u8], dir_ino: u32, seed: u32) -> u32 {
    let r = Reader::new(b);
    let c = crc32c(crc32c(seed, &dir_ino.to_le_bytes()), r.bytes(0, 20));
    crc32c(
        c,
        r.bytes(DIR_HEADER_SIZE, BLOCK_SIZE.saturating_sub(DIR_HEADER_SIZE)),
    )
}

impl DirHeader {
    /// Decodes and checks the header and checksum of a directory block.
    pub fn decode(b: &[u8], dir_ino: u32, seed: u32) -> Result<DirHeader> {
        DirHeader::check_sum(b, dir_ino, seed)?;
        DirHeader::parse(b, dir_ino)
    }

    /// Checks the checksum of directory block `b` of directory `dir_ino`.
    pub fn check_sum(b: &[u8], dir_ino: u32, seed: u32) -> Result {
        let r = Reader::new(b);
        let stored = r.u32(20);
        r.finish()?;
        let sum = dir_checksum(b, dir_ino, seed);
        if stored != sum {
            return Err(corrupt(format_args!(
                "directory {dir_ino}: block checksum {stored:#x}, computed {sum:#x}"
            )));
        }
        Ok(())
    }

    /// Decodes and checks the header of a directory block whose checksum was checked
    /// ([`DirHeader::check_sum`]), perhaps earlier: its structure is checked each time.
    pub fn parse(b: &[u8], dir_ino: u32) -> Result<DirHeader> {
        let r = Reader::new(b);
        let h = DirHeader {
            kind: r.u8(0),
            level: r.u8(1),
            count: r.u16(2),
            used: r.u16(4),
            next_leaf: r.u32(8),
            parent: r.u32(12),
        };
        r.finish()?;
        let fits = usize::from(h.used) <= BLOCK_SIZE.saturating_sub(DIR_HEADER_SIZE);
        let ok = match h.kind {
            DIR_LEAF => h.level == 0 && fits,
            DIR_INDEX => {
                h.level > 0
                    && usize::from(h.used) == usize::from(h.count).saturating_mul(12)
                    && fits
            }
            _ => false,
        };
        if !ok {
            return Err(corrupt(format_args!(
                "directory {dir_ino}: block header {h:?}"
            )));
        }
        Ok(h)
    }

    /// Writes the header into `b` (call [`DirHeader::seal`] after changing entries).
    pub fn encode(&self, b: &mut [u8]) -> Result {
        let mut w = Writer::new(b);
        w.u8(0, self.kind);
        w.u8(1, self.level);
        w.u16(2, self.count);
        w.u16(4, self.used);
        w.u16(6, 0);
        w.u32(8, self.next_leaf);
        w.u32(12, self.parent);
        w.u32(16, 0);
        w.finish()
    }

    /// Stores the checksum of directory block `b`.
    pub fn seal(b: &mut [u8], dir_ino: u32, seed: u32) -> Result {
        let sum = dir_checksum(b, dir_ino, seed);
        let mut w = Writer::new(b);
        w.u32(20, sum);
        w.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sb() -> Superblock {
        let mut sb = Superblock::geometry(65536, 4096, 1024).unwrap();
        sb.uuid = [7; 16];
        sb
    }

    #[test]
    fn superblock_round_trip_and_checksum() {
        let sb = sb();
        let mut b = vec![0u8; BLOCK_SIZE];
        sb.encode(&mut b).unwrap();
        assert_eq!(Superblock::decode(&b).unwrap(), sb);
        b[30] ^= 1;
        assert_eq!(Superblock::decode(&b), Err(Errno::EUCLEAN));
        b[0] ^= 1;
        assert_eq!(Superblock::decode(&b), Err(Errno::EINVAL));
    }

    #[test]
    fn geometry_is_valid_and_ordered() {
        let sb = sb();
        assert!(sb.validate().is_ok());
        assert_eq!(
            sb.inode_location(1),
            Some((u64::from(sb.inode_table_start), 256))
        );
        assert_eq!(sb.inode_location(0), None);
        assert_eq!(sb.inode_location(4096), None);
        assert!(Superblock::geometry(1000, 64, 1024).is_none());
        let mut bad = sb.clone();
        bad.inode_table_start = bad.block_bitmap_start;
        assert_eq!(bad.validate(), Err(Errno::EUCLEAN));
    }

    #[test]
    fn dir_header_round_trip_and_checksum() {
        let seed = sb().csum_seed();
        let mut b = vec![0u8; BLOCK_SIZE];
        let h = DirHeader {
            kind: DIR_LEAF,
            parent: 1,
            ..DirHeader::default()
        };
        h.encode(&mut b).unwrap();
        DirHeader::seal(&mut b, 1, seed).unwrap();
        assert_eq!(DirHeader::decode(&b, 1, seed).unwrap(), h);
        assert_eq!(DirHeader::decode(&b, 2, seed), Err(Errno::EUCLEAN));
        b[100] = 1;
        assert_eq!(DirHeader::decode(&b, 1, seed), Err(Errno::EUCLEAN));
    }

    #[test]
    fn inode_round_trip_checksum_and_validation() {
        let seed = sb().csum_seed();
        let mut i = DiskInode {
            mode: 0o100644,
            nlink: 1,
            size: 5000,
            mtime: Timespec::new(-5, 999_999_999),
            ..DiskInode::default()
        };
        i.addrs[0] = 100;
        i.addrs[14] = 7;
        let mut b = [0u8; INODE_SIZE];
        i.encode(&mut b, 9, seed).unwrap();
        assert_eq!(DiskInode::decode(&b, 9, seed).unwrap(), i);
        // The checksum covers the inode number: a misdirected write is caught.
        assert_eq!(DiskInode::decode(&b, 10, seed), Err(Errno::EUCLEAN));
        assert_eq!(
            DiskInode::decode(&[0u8; INODE_SIZE], 3, seed).unwrap(),
            DiskInode::default()
        );
        let mut sym = DiskInode {
            mode: 0o120777,
            nlink: 1,
            size: 11,
            flags: FLAG_INLINE_SYMLINK,
            ..DiskInode::default()
        };
        sym.set_inline_data(b"hello/world");
        assert_eq!(&sym.inline_data()[..11], b"hello/world");
        sym.encode(&mut b, 4, seed).unwrap();
        assert_eq!(DiskInode::decode(&b, 4, seed).unwrap(), sym);
    }
}
