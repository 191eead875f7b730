// SPDX-License-Identifier: GPL-2.0
//! fsck.xv6fs: clean images check clean; targeted corruptions are each reported (with
//! `-n`, which changes nothing) and repaired (with `-y`) so that a second check is
//! clean and the file system mounts and reads; the command line's exit statuses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bento::block::BlockDevice;
use bento::fuse_backend::data::FileData;
use bento::{DirSink, FileSystem, FileType, Ino, MountOptions, Request, ROOT_INO};
use xv6fs::check::{check, CheckOptions, Kind, Report};
use xv6fs::layout::{DirHeader, DiskInode, Superblock, BLOCK_SIZE, INODE_SIZE};
use xv6fs::mkfs::{make, Params};
use xv6fs::Xv6Fs;

const REQ: Request = Request {
    uid: 0,
    gid: 0,
    pid: 1,
};
const BS: u64 = BLOCK_SIZE as u64;

/// A temporary directory, removed with its images when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("xv6fs-fsck-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// A fresh image of `mib` MiB made in-process by `mkfs::make`.
fn mkfs(path: &Path, mib: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(mib << 20).unwrap();
    drop(f);
    let dev = open(path);
    let p = Params {
        uuid: *b"fsck-test-uuid!!",
        time: bento::Timespec::new(1_700_000_000, 5),
        ..Params::default()
    };
    make(&dev, &p).unwrap();
}

fn open(path: &Path) -> BlockDevice {
    BlockDevice::open(path, false, BLOCK_SIZE).unwrap()
}

fn mount(dev: &BlockDevice) -> Xv6Fs {
    let mut o = MountOptions::new(b"test", b"", false);
    o.device = Some(dev);
    Xv6Fs::mount(&o).unwrap()
}

fn show(r: &Report) -> String {
    let mut s = String::new();
    for p in r.problems.iter() {
        s += &format!("  [{:?}] {p}\n", p.kind);
    }
    s
}

/// `fsck -n -f`: reports; the image must not change.
fn check_n(path: &Path) -> Report {
    let before = std::fs::read(path).unwrap();
    let r = check(
        &open(path),
        &CheckOptions {
            repair: false,
            force: true,
        },
    )
    .unwrap();
    assert!(
        std::fs::read(path).unwrap() == before,
        "-n changed the image"
    );
    r
}

/// `fsck -y -f`.
fn check_y(path: &Path) -> Report {
    check(
        &open(path),
        &CheckOptions {
            repair: true,
            force: true,
        },
    )
    .unwrap()
}

fn assert_clean(path: &Path, when: &str) {
    let r = check_n(path);
    assert!(r.is_clean(), "{when}: not clean:\n{}", show(&r));
    assert_eq!(r.exit_code(), 0);
}

struct Names(Vec<(Ino, FileType, Vec<u8>)>);

impl DirSink for Names {
    fn add(&mut self, ino: Ino, _next: i64, kind: FileType, name: &[u8]) -> bool {
        if name != b"." && name != b".." {
            self.0.push((ino, kind, name.to_vec()));
        }
        false
    }
}

fn list(fs: &Xv6Fs, dir: Ino) -> Vec<(Ino, FileType, Vec<u8>)> {
    let mut n = Names(Vec::new());
    fs.readdir(&REQ, dir, 0, 0, &mut n).unwrap();
    n.0
}

fn read_all(fs: &Xv6Fs, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(&REQ, ino).unwrap().size;
    let mut buf = vec![0u8; size as usize];
    let mut off = 0;
    while off < buf.len() {
        let n = fs
            .file_read(&REQ, ino, 0, off as u64, &mut buf[off..])
            .unwrap();
        if n == 0 {
            break;
        }
        off += n;
    }
    buf
}

/// Reads the first 8 MiB and the last block of a file (sizes may be huge after damage).
fn read_some(fs: &Xv6Fs, ino: Ino) {
    let size = fs.getattr(&REQ, ino).unwrap().size;
    let mut buf = vec![0u8; 1 << 16];
    let mut off = 0u64;
    while off < size.min(8 << 20) {
        let n = fs.file_read(&REQ, ino, 0, off, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        off += n as u64;
    }
    if size > 0 {
        fs.file_read(&REQ, ino, 0, (size - 1) / BS * BS, &mut buf)
            .unwrap();
    }
}

/// Mounts, reads every file and lists every directory; returns the inodes seen.
fn walk(path: &Path) -> usize {
    let dev = open(path);
    let fs = mount(&dev);
    let mut stack = vec![ROOT_INO];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for (ino, kind, name) in list(&fs, d) {
            n += 1;
            assert_eq!(fs.lookup(&REQ, d, &name).unwrap().attr.ino, ino);
            match kind {
                FileType::Directory => stack.push(ino),
                FileType::RegularFile => read_some(&fs, ino),
                FileType::Symlink => {
                    fs.readlink(&REQ, ino, &mut [0u8; 4096]).unwrap();
                }
                _ => {}
            }
        }
    }
    n
}

fn lookup(fs: &Xv6Fs, path: &str) -> u64 {
    let mut ino = ROOT_INO;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs.lookup(&REQ, ino, part.as_bytes()).unwrap().attr.ino;
    }
    ino
}

/// Every kind of inode and block mapping: small and large files (indirect and double
/// indirect blocks, holes), a directory big enough for an index level, symlinks of
/// both kinds, devices, a fifo, hard links, xattrs, renames and unlinks.
fn populate(fs: &Xv6Fs) {
    let d1 = fs.mkdir(&REQ, ROOT_INO, b"d1", 0o755).unwrap().attr.ino;
    let d2 = fs.mkdir(&REQ, ROOT_INO, b"d2", 0o755).unwrap().attr.ino;
    let sub = fs.mkdir(&REQ, d1, b"sub", 0o700).unwrap().attr.ino;
    let write = |dir, name: &[u8], off: u64, data: &[u8]| {
        let (e, _) = fs.create(&REQ, dir, name, 0o644, 0).unwrap();
        if !data.is_empty() {
            fs.file_write(&REQ, e.attr.ino, 0, off, data, 0).unwrap();
        }
        e.attr.ino
    };
    write(d1, b"small", 0, b"hello, world\n");
    let a = write(d1, b"three", 0, &[0xa5; 3 * 4096]);
    write(d1, b"empty", 0, b"");
    write(sub, b"indirect", 0, &vec![7u8; 60 * 1024]);
    write(d2, b"sparse", 6 << 20, b"far away");
    // Unwritten blocks (fallocate), one of them since written, across the single
    // indirect block, and more past the size.
    let pre = write(d2, b"prealloc", 0, b"");
    fs.file_fallocate(&REQ, pre, 0, 0, 20 * 4096, 0).unwrap();
    fs.file_fallocate(&REQ, pre, 0, 20 * 4096, 4 * 4096, 1)
        .unwrap();
    fs.file_write(&REQ, pre, 0, 13 * 4096 + 5, b"written", 0)
        .unwrap();
    fs.symlink(&REQ, d1, b"short", b"small").unwrap();
    fs.symlink(&REQ, d2, b"long", &[b'x'; 300]).unwrap();
    fs.mknod(&REQ, d2, b"null", 0o020666, 0x0103).unwrap();
    fs.mknod(&REQ, d2, b"fifo", 0o010644, 0).unwrap();
    fs.link(&REQ, a, d2, b"three-again").unwrap();
    fs.setxattr(&REQ, a, b"user.colour", b"blue", 0).unwrap();
    let big = fs.mkdir(&REQ, ROOT_INO, b"big", 0o755).unwrap().attr.ino;
    for i in 0..700 {
        let name = format!("entry-number-{i:04}-with-a-longer-name");
        write(big, name.as_bytes(), 0, b"");
    }
    for i in (0..700).step_by(3) {
        let name = format!("entry-number-{i:04}-with-a-longer-name");
        let ino = fs.lookup(&REQ, big, name.as_bytes()).unwrap().attr.ino;
        fs.unlink(&REQ, big, name.as_bytes()).unwrap();
        fs.forget(ino);
    }
    fs.rename(&REQ, d1, b"small", d2, b"moved", 0).unwrap();
    let gone = write(ROOT_INO, b"gone", 0, b"soon");
    fs.unlink(&REQ, ROOT_INO, b"gone").unwrap();
    // An unlinked inode goes when the kernel forgets it (until then it is an orphan).
    fs.forget(gone);
}

/// A populated image, made once and copied for each test.
fn base_image() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempdir("base");
        let img = dir.join("base.img");
        mkfs(&img, 16);
        let dev = open(&img);
        let fs = mount(&dev);
        populate(&fs);
        drop(fs);
        dev.sync().unwrap();
        std::fs::read(&img).unwrap()
    })
}

/// A copy of the populated image in a new temporary directory.
fn copy_base(tag: &str) -> (TempDir, PathBuf) {
    let dir = tempdir(tag);
    let img = dir.join("img");
    std::fs::write(&img, base_image()).unwrap();
    (dir, img)
}

fn superblock(path: &Path) -> Superblock {
    let f = std::fs::File::open(path).unwrap();
    let mut b = vec![0u8; BLOCK_SIZE];
    f.read_exact_at(&mut b, BS).unwrap();
    Superblock::decode(&b).unwrap()
}

fn read_block(path: &Path, blk: u64) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut b = vec![0u8; BLOCK_SIZE];
    f.read_exact_at(&mut b, blk * BS).unwrap();
    b
}

fn write_block(path: &Path, blk: u64, b: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(b, blk * BS).unwrap();
}

fn inode(path: &Path, ino: u32) -> DiskInode {
    let sb = superblock(path);
    let (blk, off) = sb.inode_location(ino).unwrap();
    DiskInode::decode(
        &read_block(path, blk)[off..off + INODE_SIZE],
        ino,
        sb.csum_seed(),
    )
    .unwrap()
}

fn set_inode(path: &Path, ino: u32, i: &DiskInode) {
    let sb = superblock(path);
    let (blk, off) = sb.inode_location(ino).unwrap();
    let mut b = read_block(path, blk);
    i.encode(&mut b[off..off + INODE_SIZE], ino, sb.csum_seed())
        .unwrap();
    write_block(path, blk, &b);
}

fn set_bit(path: &Path, start: u32, n: u32, on: bool) {
    let blk = u64::from(start + n / (8 * BLOCK_SIZE as u32));
    let bit = n % (8 * BLOCK_SIZE as u32);
    let mut b = read_block(path, blk);
    if on {
        b[(bit / 8) as usize] |= 1 << (bit % 8);
    } else {
        b[(bit / 8) as usize] &= !(1 << (bit % 8));
    }
    write_block(path, blk, &b);
}

/// The inode number at `path` in the image.
fn ino_of(img: &Path, path: &str) -> u32 {
    let dev = open(img);
    let fs = mount(&dev);
    lookup(&fs, path) as u32
}

/// `-n` reports `kinds` (and nothing else), `-y` repairs them (exit 1), a second check
/// is clean and the file system mounts and reads.
fn expect_repair(img: &Path, kinds: &[Kind]) -> Report {
    let r = check_n(img);
    if std::env::var_os("FSCK_SHOW").is_some() {
        eprintln!("{}: -n:\n{}", img.display(), show(&r));
    }
    let mut found: Vec<Kind> = r
        .problems
        .iter()
        .filter(|p| p.is_error())
        .map(|p| p.kind)
        .collect();
    found.sort();
    found.dedup();
    let mut want = kinds.to_vec();
    want.sort();
    assert_eq!(found, want, "-n found:\n{}", show(&r));
    assert_eq!(r.exit_code(), 4, "{}", show(&r));
    assert!(r.problems.iter().all(|p| !p.fixed));
    let y = check_y(img);
    if std::env::var_os("FSCK_SHOW").is_some() {
        eprintln!("{}: -y:\n{}", img.display(), show(&y));
    }
    assert_eq!(y.exit_code(), 1, "-y:\n{}", show(&y));
    assert!(y.modified);
    for k in kinds {
        assert!(y.count(*k) > 0, "-y did not see {k:?}:\n{}", show(&y));
    }
    assert_clean(img, "after -y");
    walk(img);
    y
}

#[test]
fn fresh_image_is_clean() {
    let dir = tempdir("fresh");
    let img = dir.join("img");
    mkfs(&img, 16);
    // Marked clean by mkfs: without -f the check is skipped.
    let r = check(&open(&img), &CheckOptions::default()).unwrap();
    assert!(r.skipped && r.is_clean());
    assert_eq!(r.stats.inodes_used, 1);
    assert_clean(&img, "fresh");
    let y = check_y(&img);
    assert!(y.is_clean() && !y.modified, "{}", show(&y));
    let r = check_n(&img);
    assert_eq!((r.stats.inodes_used, r.stats.dirs), (1, 1));
}

#[test]
fn populated_image_is_clean() {
    let (_dir, img) = copy_base("populated");
    let r = check_n(&img);
    assert!(r.is_clean(), "{}", show(&r));
    assert!(r.stats.files >= 400 && r.stats.dirs == 5, "{:?}", r.stats);
    assert_eq!(r.stats.symlinks, 2);
    assert_eq!((r.stats.devices, r.stats.fifos), (1, 1));
    assert!(r.stats.indirect_blocks >= 3 && r.stats.xattr_blocks == 1);
    // -y on a consistent image fixes nothing; it marks it clean.
    let y = check_y(&img);
    assert_eq!(y.exit_code(), 0, "{}", show(&y));
    assert!(!y.modified, "marking it clean is not a modification");
    let r = check(&open(&img), &CheckOptions::default()).unwrap();
    assert!(r.skipped);
    assert!(walk(&img) > 400);
}

#[test]
fn wrong_link_count() {
    let (_dir, img) = copy_base("nlink");
    let ino = ino_of(&img, "d1/sub/indirect");
    let mut i = inode(&img, ino);
    i.nlink = 3;
    set_inode(&img, ino, &i);
    let d = ino_of(&img, "d2");
    let mut i = inode(&img, d);
    i.nlink = 7;
    set_inode(&img, d, &i);
    let y = expect_repair(&img, &[Kind::LinkCount]);
    assert_eq!(y.count(Kind::LinkCount), 2);
    assert_eq!(inode(&img, ino).nlink, 1);
    assert_eq!(inode(&img, d).nlink, 2);
}

#[test]
fn leaked_block() {
    let (_dir, img) = copy_base("leak");
    let sb = superblock(&img);
    set_bit(&img, sb.block_bitmap_start, sb.nblocks - 3, true);
    set_bit(&img, sb.block_bitmap_start, sb.nblocks - 2, true);
    let y = expect_repair(&img, &[Kind::BlockBitmap]);
    assert_eq!(y.count(Kind::BlockBitmap), 1, "one range:\n{}", show(&y));
}

#[test]
fn used_block_marked_free() {
    let (_dir, img) = copy_base("usedfree");
    let sb = superblock(&img);
    let i = inode(&img, ino_of(&img, "d1/three"));
    set_bit(&img, sb.block_bitmap_start, i.addrs[1], false);
    // And a metadata block, and a bit past the end of the device.
    set_bit(&img, sb.block_bitmap_start, sb.inode_table_start, false);
    set_bit(&img, sb.block_bitmap_start, sb.nblocks + 5, false);
    let y = expect_repair(&img, &[Kind::BlockBitmap]);
    assert_eq!(y.count(Kind::BlockBitmap), 3, "{}", show(&y));
}

#[test]
fn doubly_claimed_block() {
    let (_dir, img) = copy_base("dup");
    let a = ino_of(&img, "d1/three");
    let b = ino_of(&img, "d1/empty");
    let ia = inode(&img, a);
    let mut ib = inode(&img, b);
    ib.addrs[0] = ia.addrs[2];
    ib.size = 100;
    ib.blocks = 8;
    set_inode(&img, b, &ib);
    let y = expect_repair(&img, &[Kind::DuplicateBlock]);
    assert_eq!(y.count(Kind::DuplicateBlock), 1);
    let ib = inode(&img, b);
    assert_ne!(ib.addrs[0], ia.addrs[2], "the second owner got a copy");
    assert_eq!(
        inode(&img, a).addrs,
        ia.addrs,
        "the first owner kept its block"
    );
    let dev = open(&img);
    let fs = mount(&dev);
    assert_eq!(read_all(&fs, u64::from(b)), vec![0xa5; 100]);
    assert_eq!(read_all(&fs, u64::from(a)), vec![0xa5; 3 * 4096]);
}

#[test]
fn block_claimed_twice_by_one_file_and_bad_pointers() {
    let (_dir, img) = copy_base("dup1");
    let a = ino_of(&img, "d1/three");
    let mut i = inode(&img, a);
    let sb = superblock(&img);
    i.addrs[3] = i.addrs[0];
    i.addrs[4] = sb.inode_table_start + 1; // metadata
    i.addrs[5] = sb.nblocks + 100; // past the end
    i.blocks += 8;
    set_inode(&img, a, &i);
    let y = expect_repair(&img, &[Kind::DuplicateBlock, Kind::BadBlock]);
    assert_eq!(y.count(Kind::BadBlock), 2);
    let i = inode(&img, a);
    assert_eq!((i.addrs[4], i.addrs[5]), (0, 0));
    assert_ne!(i.addrs[3], i.addrs[0], "the second claim got a copy");
    assert_eq!(i.blocks, 5 * 8, "3 blocks, the copy, the xattr block");
}

#[test]
fn entry_to_a_free_inode() {
    let (_dir, img) = copy_base("freeino");
    let ino = ino_of(&img, "d1/empty");
    let sb = superblock(&img);
    set_inode(&img, ino, &DiskInode::default());
    set_bit(&img, sb.inode_bitmap_start, ino, false);
    expect_repair(&img, &[Kind::DirEntry]);
    let dev = open(&img);
    let fs = mount(&dev);
    let d1 = lookup(&fs, "d1");
    assert!(fs.lookup(&REQ, d1, b"empty").is_err());
    assert!(fs.lookup(&REQ, d1, b"three").is_ok());
}

#[test]
fn unreachable_inode_goes_to_lost_and_found() {
    let (_dir, img) = copy_base("lonely");
    let sb = superblock(&img);
    // A valid file that no directory names, in a free inode.
    let ino = sb.ninodes - 2;
    let f = DiskInode {
        mode: 0o100600,
        nlink: 1,
        ..DiskInode::default()
    };
    set_inode(&img, ino, &f);
    set_bit(&img, sb.inode_bitmap_start, ino, true);
    // And a directory (with a file in it) that no directory names either.
    let dev = open(&img);
    let fs = mount(&dev);
    let d = fs.mkdir(&REQ, ROOT_INO, b"hidden", 0o755).unwrap().attr.ino;
    fs.create(&REQ, d, b"inside", 0o644, 0).unwrap();
    drop(fs);
    drop(dev);
    // Its entry goes (as a crash of a buggy fs could leave it): the inodes stay.
    remove_entry(&img, 1, b"hidden");
    let y = expect_repair(&img, &[Kind::Unattached, Kind::LostFound, Kind::LinkCount]);
    assert_eq!(y.count(Kind::Unattached), 2, "{}", show(&y));
    let dev = open(&img);
    let fs = mount(&dev);
    let lf = lookup(&fs, "lost+found");
    let names: Vec<Vec<u8>> = list(&fs, lf).into_iter().map(|e| e.2).collect();
    assert!(names.contains(&format!("#{ino}").into_bytes()), "{names:?}");
    assert!(names.contains(&format!("#{d}").into_bytes()), "{names:?}");
    assert!(fs.lookup(&REQ, d, b"inside").is_ok());
}

/// Removes entry `name` from the root leaf of directory `dir` (a one-leaf directory),
/// resealing the block: the inode it named stays as it is.
fn remove_entry(img: &Path, dir: u32, name: &[u8]) {
    let sb = superblock(img);
    let di = inode(img, dir);
    let blk = u64::from(di.addrs[0]);
    let mut b = read_block(img, blk);
    let mut h = DirHeader::decode(&b, dir, sb.csum_seed()).unwrap();
    assert_eq!(h.kind, 1, "a single-leaf directory");
    let mut off = 0usize;
    while off < h.used as usize {
        let at = 24 + off;
        let len = b[at + 12] as usize;
        let size = 14 + len;
        if &b[at + 14..at + 14 + len] == name {
            let end = 24 + h.used as usize;
            b.copy_within(at + size..end, at);
            b[end - size..end].fill(0);
            h.used -= size as u16;
            h.count -= 1;
            h.encode(&mut b).unwrap();
            DirHeader::seal(&mut b, dir, sb.csum_seed()).unwrap();
            write_block(img, blk, &b);
            return;
        }
        off += size;
    }
    panic!("no entry {name:?}");
}

#[test]
fn bad_dotdot() {
    let (_dir, img) = copy_base("dotdot");
    let sb = superblock(&img);
    let d2 = ino_of(&img, "d2");
    let d1 = ino_of(&img, "d1");
    let i = inode(&img, d2);
    let blk = u64::from(i.addrs[0]);
    let mut b = read_block(&img, blk);
    let mut h = DirHeader::decode(&b, d2, sb.csum_seed()).unwrap();
    h.parent = d1;
    h.encode(&mut b).unwrap();
    DirHeader::seal(&mut b, d2, sb.csum_seed()).unwrap();
    write_block(&img, blk, &b);
    expect_repair(&img, &[Kind::DotDot]);
    let b = read_block(&img, blk);
    assert_eq!(DirHeader::decode(&b, d2, sb.csum_seed()).unwrap().parent, 1);
}

#[test]
fn corrupted_inode_checksum() {
    let (_dir, img) = copy_base("icsum");
    let sb = superblock(&img);
    let ino = ino_of(&img, "d1/sub/indirect");
    let (blk, off) = sb.inode_location(ino).unwrap();
    let mut b = read_block(&img, blk);
    b[off + 4] ^= 0x40; // uid
    write_block(&img, blk, &b);
    expect_repair(&img, &[Kind::InodeChecksum]);
    assert_eq!(inode(&img, ino).uid, 0x40);
}

#[test]
fn garbage_inode_is_cleared() {
    let (_dir, img) = copy_base("igarbage");
    let sb = superblock(&img);
    let ino = ino_of(&img, "d2/fifo");
    let (blk, off) = sb.inode_location(ino).unwrap();
    let mut b = read_block(&img, blk);
    b[off] = 0xff; // mode: invalid type; checksum now wrong too
    b[off + 1] = 0xff;
    write_block(&img, blk, &b);
    expect_repair(&img, &[Kind::InodeChecksum, Kind::DirEntry]);
    let dev = open(&img);
    let fs = mount(&dev);
    assert!(fs.lookup(&REQ, lookup(&fs, "d2"), b"fifo").is_err());
}

#[test]
fn corrupted_directory_block_checksum() {
    let (_dir, img) = copy_base("dcsum");
    let d1 = ino_of(&img, "d1");
    let blk = u64::from(inode(&img, d1).addrs[0]);
    let mut b = read_block(&img, blk);
    b[4000] ^= 1; // unused space of the leaf
    write_block(&img, blk, &b);
    expect_repair(&img, &[Kind::DirChecksum]);
}

#[test]
fn damaged_directory_tree_is_rebuilt() {
    let (_dir, img) = copy_base("dtree");
    let big = ino_of(&img, "big");
    let before: Vec<Vec<u8>> = {
        let dev = open(&img);
        let fs = mount(&dev);
        let mut v: Vec<Vec<u8>> = list(&fs, u64::from(big)).into_iter().map(|e| e.2).collect();
        v.sort();
        v
    };
    assert!(before.len() > 400);
    // Garbage over the root index block's entries (its header says index, level 1).
    let i = inode(&img, big);
    let root = u64::from(i.addrs[0]);
    let mut b = read_block(&img, root);
    assert_eq!(b[0], 2, "the root of a big directory is an index block");
    for x in b[24..60].iter_mut() {
        *x = 0x5a;
    }
    write_block(&img, root, &b);
    expect_repair(&img, &[Kind::DirTree]);
    let dev = open(&img);
    let fs = mount(&dev);
    let mut after: Vec<Vec<u8>> = list(&fs, u64::from(big)).into_iter().map(|e| e.2).collect();
    after.sort();
    assert_eq!(after, before, "every entry survives the rebuild");
}

#[test]
fn entry_type_and_hash_mismatch() {
    let (_dir, img) = copy_base("etype");
    let sb = superblock(&img);
    let d2 = ino_of(&img, "d2");
    let i = inode(&img, d2);
    let blk = u64::from(i.addrs[0]);
    let mut b = read_block(&img, blk);
    let h = DirHeader::decode(&b, d2, sb.csum_seed()).unwrap();
    // Find "fifo": make its type say regular file; find "null": change its name.
    let mut off = 0usize;
    while off < h.used as usize {
        let at = 24 + off;
        let len = b[at + 12] as usize;
        let name = b[at + 14..at + 14 + len].to_vec();
        if name == b"fifo" {
            b[at + 13] = 1;
        }
        if name == b"null" {
            b[at + 14] = b'm';
        }
        off += 14 + len;
    }
    DirHeader::seal(&mut b, d2, sb.csum_seed()).unwrap();
    write_block(&img, blk, &b);
    expect_repair(&img, &[Kind::DirEntryType, Kind::DirHash]);
    let dev = open(&img);
    let fs = mount(&dev);
    let e = fs.lookup(&REQ, u64::from(d2), b"mull").unwrap();
    assert_eq!(e.attr.kind, FileType::CharDevice);
}

#[test]
fn broken_xattr_block() {
    let (_dir, img) = copy_base("xattr");
    let ino = ino_of(&img, "d1/three");
    let blk = u64::from(inode(&img, ino).xattr_block);
    let mut b = read_block(&img, blk);
    b[0] ^= 0xff; // magic
    write_block(&img, blk, &b);
    let y = expect_repair(&img, &[Kind::Xattr, Kind::BlockCount]);
    assert_eq!(y.count(Kind::Xattr), 1);
    assert_eq!(inode(&img, ino).xattr_block, 0);
}

#[test]
fn orphans_are_processed_as_mount_would() {
    let dir = tempdir("orphan");
    let img = dir.join("img");
    mkfs(&img, 16);
    {
        let dev = open(&img);
        let fs = mount(&dev);
        let (e, _) = fs
            .create(&REQ, ROOT_INO, b"open-unlinked", 0o644, 0)
            .unwrap();
        fs.file_write(&REQ, e.attr.ino, 0, 0, &[1u8; 20000], 0)
            .unwrap();
        // Unlinked while "open": on the orphan list until forgotten, which never comes.
        fs.unlink(&REQ, ROOT_INO, b"open-unlinked").unwrap();
    }
    let r = check_n(&img);
    assert!(r.is_clean() && r.is_consistent(), "{}", show(&r));
    assert_eq!(r.count(Kind::Info), 1, "{}", show(&r));
    let y = check_y(&img);
    assert_eq!(y.count(Kind::OrphanProcessed), 1, "{}", show(&y));
    assert!(y.is_consistent());
    assert_eq!(y.exit_code(), 1);
    assert_eq!(superblock(&img).orphan_head, 0);
    assert_clean(&img, "after orphan processing");
    let r = check_n(&img);
    assert_eq!(
        (r.stats.inodes_used, r.stats.blocks_used),
        (1, superblock(&img).data_start + 1)
    );
}

#[test]
fn dirty_journal_is_replayed_with_y_and_reported_with_n() {
    let dir = tempdir("journal");
    let img = dir.join("img");
    mkfs(&img, 16);
    {
        let dev = open(&img);
        let fs = mount(&dev);
        let (e, _) = fs.create(&REQ, ROOT_INO, b"logged", 0o644, 0).unwrap();
        fs.file_write(&REQ, e.attr.ino, 0, 0, b"in the log", 0)
            .unwrap();
        fs.mkdir(&REQ, ROOT_INO, b"dir", 0o755).unwrap();
        // Committed to the log; then the power goes before any checkpoint.
        fs.fsync(&REQ, e.attr.ino, 0, false).unwrap();
        dev.set_write_limit(Some(0));
        drop(fs);
    }
    let r = check_n(&img);
    assert_eq!(r.count(Kind::JournalDirty), 1, "{}", show(&r));
    assert!(r.stale && !r.problems[0].fixed);
    assert_eq!(r.exit_code() & 4, 4);
    let y = check_y(&img);
    assert_eq!(y.count(Kind::JournalDirty), 1, "{}", show(&y));
    assert!(y.problems[0].fixed && y.is_consistent(), "{}", show(&y));
    assert_eq!(y.exit_code(), 1);
    assert_clean(&img, "after replay");
    let dev = open(&img);
    let fs = mount(&dev);
    let ino = lookup(&fs, "logged");
    assert_eq!(read_all(&fs, ino), b"in the log");
    assert!(fs.lookup(&REQ, ROOT_INO, b"dir").is_ok());
}

#[test]
fn bad_superblock_checksum_and_not_xv6fs() {
    let (_dir, img) = copy_base("sb");
    let mut b = read_block(&img, 1);
    b[200] = 1; // reserved, under the checksum
    write_block(&img, 1, &b);
    let r = check_n(&img);
    assert_eq!(r.count(Kind::Superblock), 2, "{}", show(&r));
    let y = check_y(&img);
    assert_eq!(y.exit_code(), 1, "{}", show(&y));
    assert_clean(&img, "superblock rewritten");
    // Not an xv6fs at all.
    write_block(&img, 1, &vec![0u8; BLOCK_SIZE]);
    let r = check_n(&img);
    assert!(r.aborted);
    assert_eq!(r.exit_code(), 8);
}

fn fsck(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fsck-xv6fs"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn command_line_exit_statuses() {
    let (_dir, img) = copy_base("cli");
    let p = img.to_str().unwrap();
    let (code, out) = fsck(&["-n", "-f", p]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = fsck(&["-fv", p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("regular files"), "{out}");
    // A wrong link count: 4 with -n (and nothing changes), 1 with -y, then 0.
    let ino = ino_of(&img, "d1/three");
    let mut i = inode(&img, ino);
    i.nlink = 9;
    set_inode(&img, ino, &i);
    let (code, out) = fsck(&["-n", p]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("link count 9, should be 2"), "{out}");
    let (code, out) = fsck(&["-n", p]);
    assert_eq!(code, 4, "{out}");
    let (code, out) = fsck(&["-y", p]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FILE SYSTEM WAS MODIFIED"), "{out}");
    let (code, out) = fsck(&["-p", "-f", p]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = fsck(&["-p", p]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("clean"), "{out}");
    // Not an xv6fs, a missing device, bad usage.
    let zero = img.with_file_name("zero");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    let (code, out) = fsck(&["-n", zero.to_str().unwrap()]);
    assert_eq!(code, 8, "{out}");
    assert!(out.contains("not an xv6fs"), "{out}");
    assert_eq!(fsck(&["-n", "/nonexistent/image"]).0, 8);
    assert_eq!(fsck(&[]).0, 16);
    assert_eq!(fsck(&["-n", "-y", p]).0, 16);
    assert_eq!(fsck(&["-q", p]).0, 16);
}

/// A tiny deterministic generator (xorshift), so failures replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Random namespace and data operations; stops at the first error (the power cut).
fn workload(fs: &Xv6Fs, seed: u64) -> bento::Result<()> {
    let mut rng = Rng(seed | 1);
    let mut files: Vec<(u64, Vec<u8>, u64)> = Vec::new();
    let mut dirs = vec![ROOT_INO];
    for step in 0..50u32 {
        match rng.below(9) {
            0..=2 => {
                let dir = dirs[rng.below(dirs.len() as u64) as usize];
                let name = format!("f{step}").into_bytes();
                let (e, _) = fs.create(&REQ, dir, &name, 0o644, 0)?;
                let len = rng.below(70_000) as usize;
                fs.file_write(
                    &REQ,
                    e.attr.ino,
                    0,
                    rng.below(3) * 8192,
                    &vec![step as u8; len],
                    0,
                )?;
                files.push((dir, name, e.attr.ino));
            }
            3 if !files.is_empty() => {
                let (dir, name, ino) = files.remove(rng.below(files.len() as u64) as usize);
                fs.unlink(&REQ, dir, &name)?;
                if rng.below(2) == 0 {
                    fs.forget(ino);
                }
            }
            4 if !files.is_empty() => {
                let i = rng.below(files.len() as u64) as usize;
                let to = dirs[rng.below(dirs.len() as u64) as usize];
                let new = format!("r{step}").into_bytes();
                fs.rename(&REQ, files[i].0, &files[i].1, to, &new, 0)?;
                files[i].0 = to;
                files[i].1 = new;
            }
            5 => {
                let d = fs.mkdir(&REQ, ROOT_INO, format!("d{step}").as_bytes(), 0o755)?;
                dirs.push(d.attr.ino);
            }
            6 if !files.is_empty() => {
                let ino = files[rng.below(files.len() as u64) as usize].2;
                let set = bento::SetAttr {
                    size: Some(rng.below(20_000)),
                    ..bento::SetAttr::default()
                };
                fs.file_setattr(&REQ, ino, &set)?;
            }
            7 if !files.is_empty() => {
                let ino = files[rng.below(files.len() as u64) as usize].2;
                fs.setxattr(&REQ, ino, b"user.x", &[1u8; 100], 0)?;
            }
            8 if !files.is_empty() => {
                let ino = files[rng.below(files.len() as u64) as usize].2;
                fs.fsync(&REQ, ino, 0, false)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn power_cuts_leave_what_fsck_calls_consistent() {
    let dir = tempdir("crash");
    let clean = dir.join("clean");
    mkfs(&clean, 16);
    let img = dir.join("img");
    for seed in [0x5eed_u64, 0xfeed_beef] {
        std::fs::copy(&clean, &img).unwrap();
        let total = {
            let dev = open(&img);
            let fs = mount(&dev);
            let start = dev.blocks_written();
            workload(&fs, seed).unwrap();
            drop(fs);
            dev.blocks_written() - start
        };
        let y = check_y(&img);
        assert!(y.is_consistent(), "seed {seed:#x}, no cut:\n{}", show(&y));
        let stride = (total / 40).max(1);
        for cut in (0..total).step_by(stride as usize) {
            std::fs::copy(&clean, &img).unwrap();
            {
                let dev = open(&img);
                let fs = mount(&dev);
                dev.set_write_limit(Some(cut));
                let _ = workload(&fs, seed);
                drop(fs);
            }
            let y = check_y(&img);
            assert!(
                y.is_consistent(),
                "seed {seed:#x}, cut at {cut} of {total}:\n{}",
                show(&y)
            );
            assert_clean(&img, &format!("seed {seed:#x}, cut at {cut}, after -y"));
            walk(&img);
        }
    }
}

#[test]
fn random_damage_is_repaired_for_good() {
    let base = base_image();
    let sb = Superblock::decode(&base[BLOCK_SIZE..2 * BLOCK_SIZE]).unwrap();
    // Metadata: bitmaps, the inode table blocks in use, directory/indirect/xattr blocks.
    let mut targets: Vec<u64> = Vec::new();
    targets.extend(u64::from(sb.inode_bitmap_start)..u64::from(sb.inode_table_start) + 50);
    targets.extend(u64::from(sb.data_start)..u64::from(sb.data_start) + 120);
    let dir = tempdir("damage");
    let img = dir.join("img");
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut rng = Rng(env("FSCK_SEED", 0xdead_beef));
    let (trials, flips) = (env("FSCK_TRIALS", 120), env("FSCK_FLIPS", 6));
    for trial in 0..trials {
        std::fs::write(&img, base).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&img)
            .unwrap();
        for _ in 0..1 + rng.below(flips) {
            let blk = targets[rng.below(targets.len() as u64) as usize];
            match rng.below(10) {
                // A zeroed block.
                0 => f.write_all_at(&[0u8; BLOCK_SIZE], blk * BS).unwrap(),
                // 32 random bytes.
                1 | 2 => {
                    let junk: Vec<u8> = (0..32).map(|_| rng.below(256) as u8).collect();
                    f.write_all_at(&junk, blk * BS + rng.below(BS - 32))
                        .unwrap();
                }
                // One bit.
                _ => {
                    let off = blk * BS + rng.below(BS);
                    let mut byte = [0u8];
                    f.read_exact_at(&mut byte, off).unwrap();
                    byte[0] ^= 1 << rng.below(8);
                    f.write_all_at(&byte, off).unwrap();
                }
            }
        }
        drop(f);
        let n = check_n(&img);
        let y = check_y(&img);
        assert!(!y.aborted, "trial {trial}:\n{}", show(&y));
        // -n and -y see the same problems.
        let kinds = |r: &Report| {
            let mut k: Vec<Kind> = r
                .problems
                .iter()
                .filter(|p| p.is_error())
                .map(|p| p.kind)
                .collect();
            k.dedup();
            k
        };
        assert_eq!(
            kinds(&n),
            kinds(&y),
            "trial {trial}: -n\n{}-y\n{}",
            show(&n),
            show(&y)
        );
        if std::env::var_os("FSCK_SHOW").is_some() {
            eprintln!("trial {trial}: {:?}", kinds(&y));
        }
        let again = check_n(&img);
        assert!(
            again.is_clean(),
            "trial {trial}: not clean after -y:\n{}\n-y said:\n{}",
            show(&again),
            show(&y)
        );
        walk(&img);
    }
}

/// Adds entry `name` → `ino` (of `FileType` code `kind`) to the root leaf of directory
/// `dir` (a one-leaf directory), keyed as the file system does.
fn add_entry(img: &Path, dir: u32, name: &[u8], ino: u32, kind: u8) {
    let sb = superblock(img);
    let blk = u64::from(inode(img, dir).addrs[0]);
    let mut b = read_block(img, blk);
    let mut h = DirHeader::decode(&b, dir, sb.csum_seed()).unwrap();
    assert_eq!(h.kind, 1, "a single-leaf directory");
    let key = xv6fs::dir::base_key(xv6fs::hash::siphash13(&sb.uuid, name));
    let mut off = 0usize;
    while off < h.used as usize {
        let at = 24 + off;
        if u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) > key {
            break;
        }
        off += 14 + b[at + 12] as usize;
    }
    let size = 14 + name.len();
    let (at, end) = (24 + off, 24 + h.used as usize);
    b.copy_within(at..end, at + size);
    b[at..at + 8].copy_from_slice(&key.to_le_bytes());
    b[at + 8..at + 12].copy_from_slice(&ino.to_le_bytes());
    b[at + 12] = name.len() as u8;
    b[at + 13] = kind;
    b[at + 14..at + size].copy_from_slice(name);
    h.used += size as u16;
    h.count += 1;
    h.encode(&mut b).unwrap();
    DirHeader::seal(&mut b, dir, sb.csum_seed()).unwrap();
    write_block(img, blk, &b);
}

fn set_superblock(img: &Path, f: impl FnOnce(&mut Superblock)) {
    let mut sb = superblock(img);
    f(&mut sb);
    let mut b = read_block(img, 1);
    sb.encode(&mut b).unwrap();
    write_block(img, 1, &b);
}

#[test]
fn second_name_of_a_directory_is_removed() {
    let (_dir, img) = copy_base("dirlink");
    let d1 = ino_of(&img, "d1");
    let sub = ino_of(&img, "d1/sub");
    add_entry(&img, sub, b"up", d1, 2);
    let y = expect_repair(&img, &[Kind::DirHardLink]);
    assert_eq!(y.count(Kind::DirHardLink), 1, "{}", show(&y));
    let dev = open(&img);
    let fs = mount(&dev);
    assert!(fs.lookup(&REQ, u64::from(sub), b"up").is_err());
    assert_eq!(lookup(&fs, "d1"), u64::from(d1));
}

#[test]
fn loop_of_directories_is_broken_and_reconnected() {
    let (_dir, img) = copy_base("dirloop");
    let (a, b) = {
        let dev = open(&img);
        let fs = mount(&dev);
        let a = fs.mkdir(&REQ, ROOT_INO, b"a", 0o755).unwrap().attr.ino;
        let b = fs.mkdir(&REQ, a, b"b", 0o755).unwrap().attr.ino;
        fs.create(&REQ, b, b"deep", 0o644, 0).unwrap();
        (a as u32, b as u32)
    };
    // a leaves the root and becomes b's child: a -> b -> a, unreachable.
    remove_entry(&img, 1, b"a");
    add_entry(&img, b, b"back", a, 2);
    let y = expect_repair(
        &img,
        &[
            Kind::DotDot,
            Kind::Unattached,
            Kind::LostFound,
            Kind::LinkCount,
        ],
    );
    // The loop is cut (one line), its top reconnected (another).
    assert_eq!(y.count(Kind::Unattached), 2, "{}", show(&y));
    let dev = open(&img);
    let fs = mount(&dev);
    let lf = lookup(&fs, "lost+found");
    let names: Vec<Vec<u8>> = list(&fs, lf).into_iter().map(|e| e.2).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let top = fs.lookup(&REQ, lf, &names[0]).unwrap().attr.ino;
    // Whichever of the two was cut from the loop, the other hangs below it.
    let other = if top == u64::from(a) { b } else { a };
    assert!(list(&fs, top).iter().any(|e| e.0 == u64::from(other)));
}

#[test]
fn orphan_list_loop() {
    let dir = tempdir("orphanloop");
    let img = dir.join("img");
    mkfs(&img, 16);
    let ino = {
        let dev = open(&img);
        let fs = mount(&dev);
        let (e, _) = fs.create(&REQ, ROOT_INO, b"x", 0o644, 0).unwrap();
        fs.file_write(&REQ, e.attr.ino, 0, 0, &[3u8; 9000], 0)
            .unwrap();
        fs.unlink(&REQ, ROOT_INO, b"x").unwrap();
        e.attr.ino as u32
    };
    assert_eq!(superblock(&img).orphan_head, ino);
    let mut i = inode(&img, ino);
    i.orphan_next = ino;
    set_inode(&img, ino, &i);
    let y = expect_repair(&img, &[Kind::OrphanList]);
    assert_eq!(y.count(Kind::OrphanProcessed), 1, "{}", show(&y));
    let r = check_n(&img);
    assert_eq!(r.stats.inodes_used, 1);
}

#[test]
fn interrupted_truncate_is_completed() {
    let dir = tempdir("trunc");
    let img = dir.join("img");
    mkfs(&img, 16);
    let ino = {
        let dev = open(&img);
        let fs = mount(&dev);
        let (e, _) = fs.create(&REQ, ROOT_INO, b"t", 0o644, 0).unwrap();
        fs.file_write(&REQ, e.attr.ino, 0, 0, &[9u8; 20 * 4096], 0)
            .unwrap();
        e.attr.ino as u32
    };
    let used_before = check_n(&img).stats.blocks_used;
    // As a crash in the middle of truncating to 5000 bytes leaves it.
    let mut i = inode(&img, ino);
    i.size = 5000;
    set_inode(&img, ino, &i);
    set_superblock(&img, |sb| sb.orphan_head = ino);
    let r = check_n(&img);
    assert!(r.is_clean() && r.is_consistent(), "{}", show(&r));
    assert_eq!(r.count(Kind::Info), 1, "{}", show(&r));
    let y = check_y(&img);
    assert_eq!(y.count(Kind::OrphanProcessed), 1, "{}", show(&y));
    assert!(y.is_consistent(), "{}", show(&y));
    assert_clean(&img, "after completing the truncate");
    let i = inode(&img, ino);
    assert_eq!((i.size, i.blocks, i.addrs[12]), (5000, 16, 0));
    // 18 data blocks and the indirect block went back.
    assert_eq!(check_n(&img).stats.blocks_used, used_before - 19);
    let dev = open(&img);
    let fs = mount(&dev);
    assert_eq!(read_all(&fs, u64::from(ino)), vec![9u8; 5000]);
}

#[test]
fn unwritten_marks_only_on_file_data_pointers() {
    use xv6fs::layout::UNWRITTEN;
    let (_dir, img) = copy_base("unwritten");
    let pre = ino_of(&img, "d2/prealloc");
    let ip = inode(&img, pre);
    assert_ne!(ip.addrs[0] & UNWRITTEN, 0, "fallocate marks its blocks");
    // On an indirect block pointer: a bad pointer (and the blocks below it leak).
    let mut i = inode(&img, pre);
    i.addrs[12] |= UNWRITTEN;
    set_inode(&img, pre, &i);
    let y = expect_repair(&img, &[Kind::BadBlock, Kind::BlockCount, Kind::BlockBitmap]);
    assert_eq!(y.count(Kind::BadBlock), 1, "{}", show(&y));
    assert_eq!(inode(&img, pre).addrs[12], 0);
}

#[test]
fn a_second_claim_on_an_unwritten_block_gets_an_unwritten_one() {
    use xv6fs::layout::UNWRITTEN;
    let (_dir, img) = copy_base("unwritten-dup");
    let pre = ino_of(&img, "d2/prealloc");
    let b = ino_of(&img, "d1/empty");
    let ip = inode(&img, pre);
    let mut ib = inode(&img, b);
    ib.addrs[0] = ip.addrs[1];
    ib.size = 100;
    ib.blocks = 8;
    set_inode(&img, b, &ib);
    expect_repair(&img, &[Kind::DuplicateBlock]);
    // One of them got a new block, unwritten like the one it shared.
    let (ib, ip2) = (inode(&img, b), inode(&img, pre));
    assert_ne!(ib.addrs[0], ip2.addrs[1]);
    assert_ne!(ib.addrs[0] & UNWRITTEN, 0);
    assert_ne!(ip2.addrs[1] & UNWRITTEN, 0);
    let dev = open(&img);
    let fs = mount(&dev);
    assert_eq!(read_all(&fs, u64::from(b)), vec![0; 100]);
    let data = read_all(&fs, u64::from(pre));
    assert_eq!(data.len(), 20 * 4096);
    assert_eq!(&data[13 * 4096 + 5..13 * 4096 + 12], b"written");
}
