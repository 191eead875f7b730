// SPDX-License-Identifier: GPL-2.0
//! Shared helpers of the xv6fs integration tests: images, mounting through the
//! `FileSystem` trait in-process, walking a tree.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bento::block::BlockDevice;
pub use bento::fuse_backend::data::FileData;
use bento::{DirSink, FileSystem, FileType, Ino, MountOptions, Request, SetAttr, ROOT_INO};
use xv6fs::Xv6Fs;

/// `fallocate` modes (`FALLOC_FL_*`).
pub const KEEP_SIZE: i32 = 1;
/// See [`KEEP_SIZE`].
pub const PUNCH_HOLE: i32 = 2;

/// The superblock as the device has it now (through its cache).
pub fn superblock(dev: &BlockDevice) -> xv6fs::layout::Superblock {
    let b = dev.read(1).unwrap();
    let g = b.lock();
    xv6fs::layout::Superblock::decode(&g).unwrap()
}

/// A full `fsck.xv6fs -fn` of `dev` finds nothing wrong (the file system is unmounted).
pub fn fsck_clean(dev: &BlockDevice) {
    let opts = xv6fs::check::CheckOptions {
        repair: false,
        force: true,
    };
    let report = xv6fs::check::check(dev, &opts).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

pub const REQ: Request = Request {
    uid: 0,
    gid: 0,
    pid: 1,
};

/// A fresh image of `mib` MiB in a new temporary directory.
pub fn mkfs(dir: &Path, mib: u32) -> PathBuf {
    mkfs_with(dir, mib, &[])
}

/// A fresh image of `mib` MiB in a new temporary directory named for `tag`, opened:
/// the directory and the device.
pub fn fresh(tag: &str, mib: u32) -> (PathBuf, BlockDevice) {
    let dir = tempdir(tag);
    let img = mkfs(&dir, mib);
    (dir, open(&img))
}

/// Like [`mkfs`], with more mkfs.xv6fs arguments.
pub fn mkfs_with(dir: &Path, mib: u32, args: &[&str]) -> PathBuf {
    let img = dir.join("img");
    let st = Command::new(env!("CARGO_BIN_EXE_mkfs-xv6fs"))
        .args(["-q", "-s", &format!("{mib}M")])
        .args(args)
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    img
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xv6fs-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn open(img: &Path) -> BlockDevice {
    BlockDevice::open(img, false, 4096).unwrap()
}

pub fn mount(dev: &BlockDevice) -> bento::Result<Xv6Fs> {
    let mut o = MountOptions::new(b"test", b"", false);
    o.device = Some(dev);
    Xv6Fs::mount(&o)
}

struct Names(Vec<(Ino, FileType, Vec<u8>)>, i64);

impl DirSink for Names {
    fn add(&mut self, ino: Ino, next: i64, kind: FileType, name: &[u8]) -> bool {
        self.0.push((ino, kind, name.to_vec()));
        self.1 = next;
        false
    }
}

/// Lists a directory (without `.` and `..`).
pub fn list(fs: &Xv6Fs, dir: Ino) -> bento::Result<Vec<(Ino, FileType, Vec<u8>)>> {
    let mut n = Names(Vec::new(), 0);
    fs.readdir(&REQ, dir, 0, 0, &mut n)?;
    Ok(n.0
        .into_iter()
        .filter(|e| e.2 != b"." && e.2 != b"..")
        .collect())
}

/// Reads a whole file.
pub fn read_all(fs: &Xv6Fs, ino: Ino) -> bento::Result<Vec<u8>> {
    let size = fs.getattr(&REQ, ino)?.size;
    let mut buf = vec![0u8; size as usize];
    let mut off = 0usize;
    while off < buf.len() {
        let n = fs.file_read(&REQ, ino, 0, off as u64, &mut buf[off..])?;
        if n == 0 {
            break;
        }
        off += n;
    }
    buf.truncate(off);
    Ok(buf)
}

/// Visits every inode reachable from the root (depth first), reading every file:
/// returns the number of inodes visited, or the first error.
pub fn walk(fs: &Xv6Fs) -> bento::Result<usize> {
    let mut stack = vec![ROOT_INO];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for (ino, kind, name) in list(fs, d)? {
            n += 1;
            let e = fs.lookup(&REQ, d, &name)?;
            assert_eq!(e.attr.ino, ino);
            match kind {
                FileType::Directory => stack.push(ino),
                FileType::RegularFile => {
                    read_all(fs, ino)?;
                }
                FileType::Symlink => {
                    let mut b = [0u8; 4096];
                    fs.readlink(&REQ, ino, &mut b)?;
                }
                _ => {}
            }
            if n > 100_000 {
                return Err(bento::Errno::ELOOP);
            }
        }
    }
    Ok(n)
}

/// A tiny deterministic generator (xorshift), so failures replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn step(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.step() % n.max(1)
    }
}

/// `len` bytes of a pattern made from `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..len).map(|_| r.step() as u8).collect()
}

/// Writes `buf` at `at` to file `ino` (through the FUSE build's data path) and records it
/// in `data`, what the file should hold.
pub fn write_tracked(fs: &Xv6Fs, ino: Ino, data: &mut Vec<u8>, at: u64, buf: &[u8]) {
    assert_eq!(fs.file_write(&REQ, ino, 0, at, buf, 0).unwrap(), buf.len());
    let end = at as usize + buf.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[at as usize..end].copy_from_slice(buf);
}

/// Truncates file `ino` to `size` and `data`, what it should hold, with it.
pub fn truncate_tracked(fs: &Xv6Fs, ino: Ino, data: &mut Vec<u8>, size: u64) {
    let set = SetAttr {
        size: Some(size),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, ino, &set).unwrap();
    data.resize(size as usize, 0);
}
