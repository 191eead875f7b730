// SPDX-License-Identifier: GPL-2.0
//! Directories: a B+tree of entries sorted by a keyed hash of their names, in the
//! directory's own blocks (FORMAT.md, "Directories").
//!
//! Keys are 62-bit: the name's SipHash shifted right by two, with the two low bits a
//! collision counter, so every entry of a directory has a distinct key and `readdir` can
//! resume from any key however the tree changed in between. The tree code works on block
//! bytes handed out by a [`DirStore`] (the inode layer, journaled), so it is tested here on
//! memory.

use bento::bytes::{Reader, Writer};
use bento::{Errno, FileType, Result};

use crate::layout::{
    corrupt, DirHeader, BLOCK_SIZE, DIR_HEADER_SIZE, DIR_INDEX, DIR_LEAF, NAME_MAX,
};

/// Fixed part of a leaf entry: key u64, ino u32, name_len u8, kind u8.
const LEAF_FIXED: usize = 14;
/// Size of an index entry: key u64, child u32.
const INDEX_ENTRY: usize = 12;
/// Bytes of entries a block holds.
const PAYLOAD: usize = BLOCK_SIZE - DIR_HEADER_SIZE;
/// Deepest tree accepted (a deeper one is corrupt: 340^8 leaves is far beyond any disk).
const MAX_DEPTH: usize = 8;

/// A directory's blocks, by logical block number. Block 0 is the root of the tree.
pub trait DirStore {
    /// The directory's inode number (part of each block's checksum).
    fn ino(&self) -> u32;
    /// The file system's checksum seed.
    fn seed(&self) -> u32;
    /// Calls `f` with the bytes of block `lblk`, whose checksum is right
    /// ([`DirHeader::check_sum`], checked once per read from the disk: the tree code
    /// checks only the structure).
    fn read(&self, lblk: u32, f: &mut dyn FnMut(&[u8]) -> Result) -> Result;
    /// Calls `f` to change block `lblk` (checksum right, as for `read`); `f` seals what
    /// it changes.
    fn modify(&self, lblk: u32, f: &mut dyn FnMut(&mut [u8]) -> Result) -> Result;
    /// Calls `f` to change blocks `a` and `b` (distinct) together.
    fn modify2(&self, a: u32, b: u32, f: &mut dyn FnMut(&mut [u8], &mut [u8]) -> Result) -> Result;
    /// Adds a zeroed block at the end of the directory; returns its logical number. Its
    /// first change (`modify`, `modify2`) must seal it.
    fn append(&self) -> Result<u32>;
}

/// One directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// The entry's key (see the module documentation).
    pub key: u64,
    /// Inode number.
    pub ino: u32,
    /// Kind of the inode.
    pub kind: FileType,
    /// Name.
    pub name: &'a [u8],
}

impl DirEntry<'_> {
    /// The `readdir` offset of this entry (offsets 0 and 1 are `.` and `..`).
    pub fn cookie(&self) -> i64 {
        i64::try_from(self.key)
            .unwrap_or(i64::MAX)
            .saturating_add(2)
    }
}

/// The smallest key a name can get: its hash, low two bits clear.
pub fn base_key(hash: u64) -> u64 {
    (hash >> 2) & !3
}

fn kind_code(k: FileType) -> u8 {
    k as u8
}

fn kind_from(code: u8) -> Option<FileType> {
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

/// Checks a name for a directory entry.
pub fn check_name(name: &[u8]) -> Result {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn entry_size(name: &[u8]) -> usize {
    LEAF_FIXED.saturating_add(name.len())
}

/// Parses the leaf entry at payload offset `off` (bytes `DIR_HEADER_SIZE + off`).
fn leaf_entry(b: &[u8], off: usize, used: usize, dir: u32) -> Result<(DirEntry<'_>, usize)> {
    let r = Reader::new(b);
    let at = DIR_HEADER_SIZE.saturating_add(off);
    let len = usize::from(r.u8(at.saturating_add(12)));
    let end = off.saturating_add(LEAF_FIXED).saturating_add(len);
    let kind = kind_from(r.u8(at.saturating_add(13)));
    let e = DirEntry {
        key: r.u64(at),
        ino: r.u32(at.saturating_add(8)),
        kind: kind.unwrap_or(FileType::RegularFile),
        name: r.bytes(at.saturating_add(LEAF_FIXED), len),
    };
    if r.finish().is_err() || len == 0 || end > used || kind.is_none() || e.ino == 0 {
        return Err(corrupt(format_args!(
            "directory {dir}: leaf entry at {off}"
        )));
    }
    Ok((e, end))
}

/// Calls `f` on each entry of leaf block `b` (stops early when `f` returns `false`).
fn for_each_leaf_entry<'a>(
    b: &'a [u8],
    h: &DirHeader,
    dir: u32,
    mut f: impl FnMut(usize, DirEntry<'a>) -> bool,
) -> Result {
    let used = usize::from(h.used);
    let (mut off, mut n, mut prev) = (0usize, 0u16, None);
    while off < used {
        let (e, next) = leaf_entry(b, off, used, dir)?;
        if prev.is_some_and(|p| p >= e.key) {
            return Err(corrupt(format_args!(
                "directory {dir}: leaf entries out of order"
            )));
        }
        prev = Some(e.key);
        n = n.saturating_add(1);
        if !f(off, e) {
            return Ok(());
        }
        off = next;
    }
    if n != h.count {
        return Err(corrupt(format_args!(
            "directory {dir}: leaf count {} but {n} entries",
            h.count
        )));
    }
    Ok(())
}

/// The `i`th index entry (key, child).
fn index_entry(b: &[u8], i: usize) -> (u64, u32) {
    let r = Reader::new(b);
    let at = DIR_HEADER_SIZE.saturating_add(i.saturating_mul(INDEX_ENTRY));
    (r.u64(at), r.u32(at.saturating_add(8)))
}

/// The child of index block `b` covering `key`: that of the last entry with a key not
/// above `key` (entries are sorted by key; a binary search).
fn index_child(b: &[u8], h: &DirHeader, key: u64, dir: u32) -> Result<u32> {
    // Entries before `lo` have keys ≤ `key`, entries from `hi` on have keys > `key`.
    let (mut lo, mut hi) = (0usize, usize::from(h.count));
    while lo < hi {
        let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
        if index_entry(b, mid).0 <= key {
            lo = mid.saturating_add(1);
        } else {
            hi = mid;
        }
    }
    let child = lo.checked_sub(1).map(|i| index_entry(b, i).1);
    child.filter(|c| *c != 0).ok_or_else(|| {
        corrupt(format_args!(
            "directory {dir}: no index entry for key {key:#x}"
        ))
    })
}

/// The header of a block from the store (its checksum checked by the store).
fn header(store: &dyn DirStore, b: &[u8]) -> Result<DirHeader> {
    DirHeader::parse(b, store.ino())
}

/// The path from the root to the leaf covering `key`: block numbers, root first.
struct Path {
    blocks: [u32; MAX_DEPTH + 1],
    len: usize,
}

impl Path {
    fn leaf(&self) -> u32 {
        self.blocks
            .get(self.len.saturating_sub(1))
            .copied()
            .unwrap_or(0)
    }
}

fn descend(store: &dyn DirStore, key: u64) -> Result<Path> {
    let mut path = Path {
        blocks: [0; MAX_DEPTH + 1],
        len: 1,
    };
    let mut lblk = 0u32;
    let mut level = None;
    loop {
        let mut next = None;
        store.read(lblk, &mut |b| {
            let h = header(store, b)?;
            if level.is_some_and(|l: u8| h.level.checked_add(1) != Some(l)) {
                return Err(corrupt(format_args!(
                    "directory {}: block {lblk} at the wrong level",
                    store.ino()
                )));
            }
            level = Some(h.level);
            if h.kind == DIR_INDEX {
                next = Some(index_child(b, &h, key, store.ino())?);
            }
            Ok(())
        })?;
        let Some(child) = next else { return Ok(path) };
        let slot = path
            .blocks
            .get_mut(path.len)
            .ok_or_else(|| corrupt(format_args!("directory {}: tree too deep", store.ino())))?;
        *slot = child;
        path.len = path.len.saturating_add(1);
        lblk = child;
    }
}

/// Visits entries in key order from the leaf covering `from`, across leaves, until `f`
/// returns `false`. `f` sees only entries with key ≥ `from`, with the leaf holding each.
fn scan(store: &dyn DirStore, from: u64, f: &mut dyn FnMut(u32, &DirEntry<'_>) -> bool) -> Result {
    let mut lblk = descend(store, from)?.leaf();
    let mut hops = 0u64;
    loop {
        let mut go_on = true;
        let mut next = 0;
        store.read(lblk, &mut |b| {
            let h = header(store, b)?;
            next = h.next_leaf;
            for_each_leaf_entry(b, &h, store.ino(), |_, e| {
                if e.key >= from {
                    go_on = f(lblk, &e);
                }
                go_on
            })
        })?;
        if !go_on || next == 0 {
            return Ok(());
        }
        // A leaf chain longer than the directory's blocks is a loop.
        hops = hops.saturating_add(1);
        if hops > u64::from(u32::MAX) {
            return Err(corrupt(format_args!(
                "directory {}: leaf chain loops",
                store.ino()
            )));
        }
        lblk = next;
    }
}

/// Looks `name` (with hash `hash`) up: its inode and kind.
pub fn lookup(store: &dyn DirStore, hash: u64, name: &[u8]) -> Result<Option<(u32, FileType)>> {
    let base = base_key(hash);
    let mut found = None;
    scan(store, base, &mut |_, e| {
        if e.key > base | 3 {
            return false;
        }
        if e.name == name {
            found = Some((e.ino, e.kind));
            return false;
        }
        true
    })?;
    Ok(found)
}

/// Lists entries from `offset` (≥ 2; 0 and 1 are `.` and `..`, handled by the caller):
/// `emit(entry)` returns `true` when it is full (the entry was not taken).
pub fn readdir(
    store: &dyn DirStore,
    offset: i64,
    emit: &mut dyn FnMut(&DirEntry<'_>) -> bool,
) -> Result {
    let from = u64::try_from(offset.saturating_sub(2)).unwrap_or(0);
    scan(store, from, &mut |_, e| !emit(e))
}

/// Whether the directory has no entries.
pub fn is_empty(store: &dyn DirStore) -> Result<bool> {
    let mut empty = true;
    scan(store, 0, &mut |_, _| {
        empty = false;
        false
    })?;
    Ok(empty)
}

/// The key a new `name` (with hash `hash`) gets, for [`insert_at`]: `EEXIST` if it is
/// there, `ENOSPC` if four names already share its hash, `EINVAL` or `ENAMETOOLONG` for
/// a bad name. Valid until the directory changes.
pub fn new_key(store: &dyn DirStore, hash: u64, name: &[u8]) -> Result<u64> {
    check_name(name)?;
    let base = base_key(hash);
    let mut taken = [false; 4];
    let mut exists = false;
    scan(store, base, &mut |_, e| {
        if e.key > base | 3 {
            return false;
        }
        if e.name == name {
            exists = true;
            return false;
        }
        if let Some(t) = usize::try_from(e.key & 3)
            .ok()
            .and_then(|i| taken.get_mut(i))
        {
            *t = true;
        }
        true
    })?;
    if exists {
        return Err(Errno::EEXIST);
    }
    let seq = taken.iter().position(|t| !t).ok_or_else(|| {
        bento::error!(
            "xv6fs: directory {}: more than 4 names share one hash",
            store.ino()
        );
        Errno::ENOSPC
    })?;
    Ok(base | seq as u64)
}

fn write_leaf_entry(b: &mut [u8], off: usize, e: &DirEntry<'_>) -> Result {
    let at = DIR_HEADER_SIZE.saturating_add(off);
    let mut w = Writer::new(b);
    w.u64(at, e.key);
    w.u32(at.saturating_add(8), e.ino);
    w.u8(
        at.saturating_add(12),
        u8::try_from(e.name.len()).map_err(|_| Errno::ENAMETOOLONG)?,
    );
    w.u8(at.saturating_add(13), kind_code(e.kind));
    w.bytes(at.saturating_add(LEAF_FIXED), e.name);
    w.finish()
}

/// Moves the payload bytes `[from, used)` of `b` by `delta` (positive: right).
fn shift(b: &mut [u8], from: usize, used: usize, to: usize) -> Result {
    let src = DIR_HEADER_SIZE.saturating_add(from)..DIR_HEADER_SIZE.saturating_add(used);
    let dst = DIR_HEADER_SIZE.saturating_add(to);
    let fits = dst.saturating_add(src.len()) <= BLOCK_SIZE && src.end <= BLOCK_SIZE;
    if !fits {
        return Err(Errno::EIO);
    }
    b.copy_within(src, dst);
    Ok(())
}

fn seal(store: &dyn DirStore, b: &mut [u8], h: &DirHeader) -> Result {
    h.encode(b)?;
    DirHeader::seal(b, store.ino(), store.seed())
}

/// Inserts `e` into leaf `b` if it fits; `Ok(false)` if the leaf is full.
fn leaf_insert(store: &dyn DirStore, b: &mut [u8], e: &DirEntry<'_>) -> Result<bool> {
    let mut h = header(store, b)?;
    let size = entry_size(e.name);
    let used = usize::from(h.used);
    if used.saturating_add(size) > PAYLOAD {
        return Ok(false);
    }
    let mut pos = used;
    for_each_leaf_entry(b, &h, store.ino(), |off, x| {
        if x.key > e.key {
            pos = off;
            return false;
        }
        true
    })?;
    shift(b, pos, used, pos.saturating_add(size))?;
    write_leaf_entry(b, pos, e)?;
    h.used = u16::try_from(used.saturating_add(size)).map_err(|_| Errno::EIO)?;
    h.count = h.count.saturating_add(1);
    seal(store, b, &h)?;
    Ok(true)
}

/// Moves the upper half of full leaf `a` (logical `alblk`) into the empty block `b`
/// (logical `blblk`), links it after `a`; returns the first key of `b`.
fn split_leaf(store: &dyn DirStore, a: &mut [u8], b: &mut [u8], blblk: u32) -> Result<u64> {
    let mut ha = header(store, a)?;
    let used = usize::from(ha.used);
    let (mut cut, mut left, mut sep) = (None, 0u16, 0u64);
    for_each_leaf_entry(a, &ha, store.ino(), |off, e| {
        if off >= used / 2 && off > 0 {
            cut = Some(off);
            sep = e.key;
            return false;
        }
        left = left.saturating_add(1);
        true
    })?;
    let cut = cut.ok_or(Errno::EIO)?;
    let moved = used.saturating_sub(cut);
    let src = DIR_HEADER_SIZE.saturating_add(cut)..DIR_HEADER_SIZE.saturating_add(used);
    let dst = b
        .get_mut(DIR_HEADER_SIZE..DIR_HEADER_SIZE.saturating_add(moved))
        .ok_or(Errno::EIO)?;
    dst.copy_from_slice(a.get(src).ok_or(Errno::EIO)?);
    let hb = DirHeader {
        kind: DIR_LEAF,
        level: 0,
        count: ha.count.saturating_sub(left),
        used: u16::try_from(moved).map_err(|_| Errno::EIO)?,
        next_leaf: ha.next_leaf,
        parent: 0,
    };
    seal(store, b, &hb)?;
    ha.count = left;
    ha.used = u16::try_from(cut).map_err(|_| Errno::EIO)?;
    ha.next_leaf = blblk;
    seal(store, a, &ha)?;
    Ok(sep)
}

/// Inserts (key, child) into index block `b` if it fits; `Ok(false)` if full.
fn index_insert(store: &dyn DirStore, b: &mut [u8], key: u64, child: u32) -> Result<bool> {
    let mut h = header(store, b)?;
    let count = usize::from(h.count);
    if count.saturating_add(1).saturating_mul(INDEX_ENTRY) > PAYLOAD {
        return Ok(false);
    }
    let pos = (0..count)
        .find(|&i| index_entry(b, i).0 > key)
        .unwrap_or(count);
    let at = pos.saturating_mul(INDEX_ENTRY);
    shift(
        b,
        at,
        count.saturating_mul(INDEX_ENTRY),
        at.saturating_add(INDEX_ENTRY),
    )?;
    let mut w = Writer::new(b);
    w.u64(DIR_HEADER_SIZE.saturating_add(at), key);
    w.u32(DIR_HEADER_SIZE.saturating_add(at).saturating_add(8), child);
    w.finish()?;
    h.count = h.count.saturating_add(1);
    h.used = h.used.saturating_add(INDEX_ENTRY as u16);
    seal(store, b, &h)?;
    Ok(true)
}

/// Moves the upper half of full index block `a` into empty block `b`; returns the first
/// key of `b`.
fn split_index(store: &dyn DirStore, a: &mut [u8], b: &mut [u8]) -> Result<u64> {
    let mut ha = header(store, a)?;
    let count = usize::from(ha.count);
    let keep = count / 2;
    let moved = count.saturating_sub(keep);
    let src = DIR_HEADER_SIZE.saturating_add(keep.saturating_mul(INDEX_ENTRY))
        ..DIR_HEADER_SIZE.saturating_add(count.saturating_mul(INDEX_ENTRY));
    let dst = b
        .get_mut(DIR_HEADER_SIZE..DIR_HEADER_SIZE.saturating_add(moved.saturating_mul(INDEX_ENTRY)))
        .ok_or(Errno::EIO)?;
    dst.copy_from_slice(a.get(src).ok_or(Errno::EIO)?);
    let sep = index_entry(b, 0).0;
    let hb = DirHeader {
        kind: DIR_INDEX,
        level: ha.level,
        count: u16::try_from(moved).map_err(|_| Errno::EIO)?,
        used: u16::try_from(moved.saturating_mul(INDEX_ENTRY)).map_err(|_| Errno::EIO)?,
        next_leaf: 0,
        parent: 0,
    };
    seal(store, b, &hb)?;
    ha.count = u16::try_from(keep).map_err(|_| Errno::EIO)?;
    ha.used = u16::try_from(keep.saturating_mul(INDEX_ENTRY)).map_err(|_| Errno::EIO)?;
    seal(store, a, &ha)?;
    Ok(sep)
}

/// Makes the root (block 0) one level taller: its contents move to a new block, which
/// becomes the root's only child. Returns that block.
fn grow_root(store: &dyn DirStore) -> Result<u32> {
    let c = store.append()?;
    store.modify2(0, c, &mut |root, child| {
        let h = header(store, root)?;
        if h.level as usize >= MAX_DEPTH {
            return Err(Errno::ENOSPC);
        }
        child.copy_from_slice(root);
        let hc = DirHeader { parent: 0, ..h };
        seal(store, child, &hc)?;
        let hr = DirHeader {
            kind: DIR_INDEX,
            level: h.level.saturating_add(1),
            count: 1,
            used: INDEX_ENTRY as u16,
            next_leaf: 0,
            parent: h.parent,
        };
        root.get_mut(DIR_HEADER_SIZE..).ok_or(Errno::EIO)?.fill(0);
        let mut w = Writer::new(root);
        w.u64(DIR_HEADER_SIZE, 0);
        w.u32(DIR_HEADER_SIZE.saturating_add(8), c);
        w.finish()?;
        seal(store, root, &hr)
    })?;
    Ok(c)
}

/// Splits full index block `node` into it and a new sibling, and inserts (key, child)
/// into the half that covers `key`. Returns the sibling's first key and block.
fn split_index_insert(store: &dyn DirStore, node: u32, key: u64, child: u32) -> Result<(u64, u32)> {
    let sibling = store.append()?;
    let mut sep = 0;
    store.modify2(node, sibling, &mut |a, b| {
        sep = split_index(store, a, b)?;
        let target = if key >= sep { b } else { a };
        if index_insert(store, target, key, child)? {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    })?;
    Ok((sep, sibling))
}

/// Adds `name` → `ino` (hash `hash`). `EEXIST` if the name is there.
pub fn insert(store: &dyn DirStore, hash: u64, name: &[u8], ino: u32, kind: FileType) -> Result {
    let key = new_key(store, hash, name)?;
    insert_at(store, key, name, ino, kind)
}

/// Adds `name` → `ino` with key `key` from [`new_key`], the directory unchanged since.
pub fn insert_at(store: &dyn DirStore, key: u64, name: &[u8], ino: u32, kind: FileType) -> Result {
    check_name(name)?;
    let e = DirEntry {
        key,
        ino,
        kind,
        name,
    };
    let mut path = descend(store, key)?;
    let mut done = false;
    let leaf = path.leaf();
    store.modify(leaf, &mut |b| {
        done = leaf_insert(store, b, &e)?;
        Ok(())
    })?;
    if done {
        return Ok(());
    }
    // Split the leaf (the root is never split in place: it grows a level first).
    if path.len == 1 {
        let c = grow_root(store)?;
        path = Path {
            blocks: [0; MAX_DEPTH + 1],
            len: 2,
        };
        if let Some(s) = path.blocks.get_mut(1) {
            *s = c;
        }
    }
    let leaf = path.leaf();
    let new = store.append()?;
    let mut sep = 0;
    store.modify2(leaf, new, &mut |a, b| {
        sep = split_leaf(store, a, b, new)?;
        let target = if key >= sep { b } else { a };
        if leaf_insert(store, target, &e)? {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    })?;
    // Add the new child to its parent, splitting upwards as needed.
    let (mut key, mut child) = (sep, new);
    let mut depth = path.len.saturating_sub(1);
    loop {
        let parent = path
            .blocks
            .get(depth.saturating_sub(1))
            .copied()
            .ok_or(Errno::EIO)?;
        let mut inserted = false;
        store.modify(parent, &mut |b| {
            inserted = index_insert(store, b, key, child)?;
            Ok(())
        })?;
        if inserted {
            return Ok(());
        }
        if depth == 1 {
            // The full parent is the root: grow it, split its new child, and hang the
            // new sibling from the root.
            let node = grow_root(store)?;
            let (sep, sibling) = split_index_insert(store, node, key, child)?;
            let mut ok = false;
            store.modify(0, &mut |b| {
                ok = index_insert(store, b, sep, sibling)?;
                Ok(())
            })?;
            return if ok { Ok(()) } else { Err(Errno::EIO) };
        }
        let (sep, sibling) = split_index_insert(store, parent, key, child)?;
        key = sep;
        child = sibling;
        depth = depth.saturating_sub(1);
    }
}

/// Removes `name` (hash `hash`); returns the inode it named. `ENOENT` if absent.
pub fn remove(store: &dyn DirStore, hash: u64, name: &[u8]) -> Result<(u32, FileType)> {
    remove_if(store, hash, name, &mut |_, _| Ok(()))
}

/// [`remove`], if `check` accepts the inode and kind the name has (else its error, with
/// nothing changed).
pub fn remove_if(
    store: &dyn DirStore,
    hash: u64,
    name: &[u8],
    check: &mut dyn FnMut(u32, FileType) -> Result,
) -> Result<(u32, FileType)> {
    let base = base_key(hash);
    // The entry may sit in a later leaf than the one covering `base`.
    let mut found = None;
    scan(store, base, &mut |leaf, e| {
        if e.key > base | 3 {
            return false;
        }
        if e.name == name {
            found = Some((leaf, e.key, e.ino, e.kind));
            return false;
        }
        true
    })?;
    let (leaf, key, ino, kind) = found.ok_or(Errno::ENOENT)?;
    check(ino, kind)?;
    let mut out = None;
    store.modify(leaf, &mut |b| {
        let mut h = header(store, b)?;
        let mut hit = None;
        for_each_leaf_entry(b, &h, store.ino(), |off, e| {
            if e.key == key {
                hit = Some((off, entry_size(e.name), e.ino, e.kind));
                return false;
            }
            true
        })?;
        let (off, size, ino, kind) = hit.ok_or(Errno::EIO)?;
        let used = usize::from(h.used);
        shift(b, off.saturating_add(size), used, off)?;
        let end = DIR_HEADER_SIZE.saturating_add(used);
        b.get_mut(end.saturating_sub(size)..end)
            .ok_or(Errno::EIO)?
            .fill(0);
        h.used = u16::try_from(used.saturating_sub(size)).map_err(|_| Errno::EIO)?;
        h.count = h.count.saturating_sub(1);
        seal(store, b, &h)?;
        out = Some((ino, kind));
        Ok(())
    })?;
    out.ok_or(Errno::EIO)
}

/// Points existing entry `name` at another inode (rename over an existing target);
/// returns the inode it named before.
pub fn replace(
    store: &dyn DirStore,
    hash: u64,
    name: &[u8],
    ino: u32,
    kind: FileType,
) -> Result<(u32, FileType)> {
    let old = remove(store, hash, name)?;
    insert(store, hash, name, ino, kind)?;
    Ok(old)
}

/// The parent directory recorded in the root block.
pub fn parent(store: &dyn DirStore) -> Result<u32> {
    let mut p = 0;
    store.read(0, &mut |b| {
        p = header(store, b)?.parent;
        Ok(())
    })?;
    Ok(p)
}

/// Records `parent` in the root block (a directory moved by rename).
pub fn set_parent(store: &dyn DirStore, parent: u32) -> Result {
    store.modify(0, &mut |b| {
        let h = DirHeader {
            parent,
            ..header(store, b)?
        };
        seal(store, b, &h)
    })
}

/// Formats block 0 of a new, empty directory.
pub fn init(store: &dyn DirStore, parent: u32) -> Result {
    store.modify(0, &mut |b| {
        b.fill(0);
        seal(
            store,
            b,
            &DirHeader {
                kind: DIR_LEAF,
                parent,
                ..DirHeader::default()
            },
        )
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::hash::siphash13;
    use std::cell::RefCell;

    /// Blocks in memory. Checksums are checked at every access, as the buffer cache
    /// checks them at each read from the disk, except on blocks appended and not yet
    /// changed (`fresh`).
    struct Mem {
        blocks: RefCell<Vec<Vec<u8>>>,
        fresh: RefCell<Vec<bool>>,
    }

    impl Mem {
        fn new() -> Mem {
            let m = Mem {
                blocks: RefCell::new(vec![vec![0u8; BLOCK_SIZE]]),
                fresh: RefCell::new(vec![true]),
            };
            init(&m, 1).unwrap();
            m
        }

        fn get(&self, lblk: u32) -> Result<Vec<u8>> {
            let b = self
                .blocks
                .borrow()
                .get(lblk as usize)
                .cloned()
                .ok_or(Errno::EIO)?;
            if !self.fresh.borrow()[lblk as usize] {
                DirHeader::check_sum(&b, self.ino(), self.seed())?;
            }
            Ok(b)
        }

        fn put(&self, lblk: u32, b: Vec<u8>) {
            self.blocks.borrow_mut()[lblk as usize] = b;
            self.fresh.borrow_mut()[lblk as usize] = false;
        }
    }

    impl DirStore for Mem {
        fn ino(&self) -> u32 {
            7
        }
        fn seed(&self) -> u32 {
            0x1234
        }
        fn read(&self, lblk: u32, f: &mut dyn FnMut(&[u8]) -> Result) -> Result {
            f(&self.get(lblk)?)
        }
        fn modify(&self, lblk: u32, f: &mut dyn FnMut(&mut [u8]) -> Result) -> Result {
            let mut b = self.get(lblk)?;
            f(&mut b)?;
            self.put(lblk, b);
            Ok(())
        }
        fn modify2(
            &self,
            a: u32,
            b: u32,
            f: &mut dyn FnMut(&mut [u8], &mut [u8]) -> Result,
        ) -> Result {
            assert_ne!(a, b);
            let (mut x, mut y) = (self.get(a)?, self.get(b)?);
            f(&mut x, &mut y)?;
            self.put(a, x);
            self.put(b, y);
            Ok(())
        }
        fn append(&self) -> Result<u32> {
            let mut v = self.blocks.borrow_mut();
            v.push(vec![0u8; BLOCK_SIZE]);
            self.fresh.borrow_mut().push(true);
            Ok(v.len() as u32 - 1)
        }
    }

    const KEY: [u8; 16] = [3; 16];

    fn h(name: &[u8]) -> u64 {
        siphash13(&KEY, name)
    }

    fn name(i: usize, long: bool) -> Vec<u8> {
        let mut n = format!("file-{i}").into_bytes();
        if long {
            n.resize(200, b'x');
        }
        n
    }

    fn all(d: &Mem) -> Vec<(i64, Vec<u8>, u32)> {
        let mut v = Vec::new();
        readdir(d, 2, &mut |e| {
            v.push((e.cookie(), e.name.to_vec(), e.ino));
            false
        })
        .unwrap();
        v
    }

    fn run(n: usize, long: bool) {
        let d = Mem::new();
        for i in 0..n {
            let nm = name(i, long);
            insert(&d, h(&nm), &nm, i as u32 + 10, FileType::RegularFile).unwrap();
        }
        for i in 0..n {
            let nm = name(i, long);
            assert_eq!(
                lookup(&d, h(&nm), &nm).unwrap(),
                Some((i as u32 + 10, FileType::RegularFile)),
                "{i}"
            );
        }
        assert_eq!(lookup(&d, h(b"nope"), b"nope").unwrap(), None);
        let nm = name(0, long);
        assert_eq!(
            insert(&d, h(&nm), &nm, 5, FileType::Directory),
            Err(Errno::EEXIST)
        );
        // readdir: every entry once, in cookie order; resuming at any entry's next
        // offset continues right after it.
        let list = all(&d);
        assert_eq!(list.len(), n);
        assert!(list.windows(2).all(|w| w[0].0 < w[1].0));
        for (i, (cookie, _, _)) in list.iter().enumerate().step_by(97) {
            let mut rest = Vec::new();
            readdir(&d, cookie + 1, &mut |e| {
                rest.push(e.cookie());
                false
            })
            .unwrap();
            assert_eq!(rest.len(), n - i - 1);
        }
        // A full sink stops the listing without losing the entry.
        let mut got = 0;
        readdir(&d, 2, &mut |_| {
            got += 1;
            got > 3
        })
        .unwrap();
        assert_eq!(got, 4);
        // Remove every other entry.
        for i in (0..n).step_by(2) {
            let nm = name(i, long);
            assert_eq!(remove(&d, h(&nm), &nm).unwrap().0, i as u32 + 10);
        }
        assert_eq!(
            remove(&d, h(&name(0, long)), &name(0, long)),
            Err(Errno::ENOENT)
        );
        assert_eq!(all(&d).len(), n / 2);
        for i in (1..n).step_by(2) {
            let nm = name(i, long);
            assert!(lookup(&d, h(&nm), &nm).unwrap().is_some());
        }
        assert!(!is_empty(&d).unwrap());
        for i in (1..n).step_by(2) {
            let nm = name(i, long);
            remove(&d, h(&nm), &nm).unwrap();
        }
        assert!(is_empty(&d).unwrap());
        assert_eq!(parent(&d).unwrap(), 1);
    }

    #[test]
    fn small_directory_in_the_root_leaf() {
        run(20, false);
    }

    #[test]
    fn leaf_splits_and_one_index_level() {
        run(3000, false);
    }

    #[test]
    fn index_splits_with_long_names() {
        // ~19 entries per leaf: > 340 leaves, so the root index splits too.
        run(9000, true);
    }

    #[test]
    fn colliding_hashes_get_distinct_keys_up_to_four() {
        let d = Mem::new();
        for i in 0..4u32 {
            let nm = format!("c{i}").into_bytes();
            insert(&d, 0x1000, &nm, i + 10, FileType::RegularFile).unwrap();
        }
        assert_eq!(
            insert(&d, 0x1000, b"c4", 20, FileType::RegularFile),
            Err(Errno::ENOSPC)
        );
        assert_eq!(
            lookup(&d, 0x1000, b"c2").unwrap(),
            Some((12, FileType::RegularFile))
        );
        let cookies: Vec<i64> = all(&d).iter().map(|e| e.0).collect();
        assert_eq!(cookies.len(), 4);
        remove(&d, 0x1000, b"c1").unwrap();
        insert(&d, 0x1000, b"c4", 20, FileType::RegularFile).unwrap();
        assert_eq!(
            lookup(&d, 0x1000, b"c4").unwrap(),
            Some((20, FileType::RegularFile))
        );
    }

    #[test]
    fn bad_names_and_corruption() {
        let d = Mem::new();
        assert_eq!(
            insert(&d, 1, b"a/b", 3, FileType::RegularFile),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&d, 1, b"..", 3, FileType::RegularFile),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&d, 1, &[b'x'; 256], 3, FileType::RegularFile),
            Err(Errno::ENAMETOOLONG)
        );
        insert(&d, h(b"ok"), b"ok", 3, FileType::RegularFile).unwrap();
        d.blocks.borrow_mut()[0][DIR_HEADER_SIZE + 12] = 200; // name length past the end
        assert_eq!(lookup(&d, h(b"ok"), b"ok"), Err(Errno::EUCLEAN));
    }
}
