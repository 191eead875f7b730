// SPDX-License-Identifier: GPL-2.0
//! A mount goes from xv6fs version 1 to version 2 and back: version 2 answers
//! `trusted.xv6fs.version` on the root with `2` (read-only, not listed), version 1 knows
//! no such attribute; the files, the orphans and the allocators carry over both ways.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use bento::block::BlockDevice;
use bento::fuse_backend::data::FileData;
use bento::{Errno, FileSystem, Ino, MountOptions, Request, SetAttr, ROOT_INO};

type V1 = xv6fs::Xv6Fs;
type V2 = xv6fs_v2::Xv6Fs;

const REQ: Request = Request {
    uid: 0,
    gid: 0,
    pid: 1,
};
const USER: Request = Request {
    uid: 1000,
    gid: 1000,
    pid: 1,
};
const VERSION_ATTR: &[u8] = b"trusted.xv6fs.version";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh image of `mib` MiB made in-process, opened.
fn image(tag: &str, mib: u64) -> (TempDir, BlockDevice) {
    let d = std::env::temp_dir().join(format!("xv6fs-v2-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(mib << 20).unwrap();
    drop(f);
    let dev = open(&path);
    let p = xv6fs::mkfs::Params {
        uuid: *b"xv6fs-v2-test-id",
        time: bento::Timespec::new(1_700_000_000, 0),
        ..xv6fs::mkfs::Params::default()
    };
    xv6fs::mkfs::make(&dev, &p).unwrap();
    (TempDir(d), dev)
}

fn open(path: &Path) -> BlockDevice {
    BlockDevice::open(path, false, 4096).unwrap()
}

fn mount_v1(dev: &BlockDevice) -> V1 {
    let mut o = MountOptions::new(b"test", b"", false);
    o.device = Some(dev);
    V1::mount(&o).unwrap()
}

fn fsck_clean(dev: &BlockDevice) {
    let opts = xv6fs::check::CheckOptions {
        repair: false,
        force: true,
    };
    let report = xv6fs::check::check(dev, &opts).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

fn orphan_head(dev: &BlockDevice) -> u32 {
    let b = dev.read(1).unwrap();
    let g = b.lock();
    xv6fs::layout::Superblock::decode(&g).unwrap().orphan_head
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(seed | 1).wrapping_add(seed >> 3) as u8)
        .collect()
}

/// Creates `name` in the root with `len` bytes of pattern `seed`; returns its inode.
fn make_file<F: FileSystem>(fs: &F, name: &[u8], seed: u64, len: usize) -> Ino {
    let (e, _) = fs.create(&REQ, ROOT_INO, name, 0o100644, 0).unwrap();
    fs.file_write(&REQ, e.attr.ino, 0, 0, &pattern(seed, len), 0)
        .unwrap();
    e.attr.ino
}

fn read_all<F: FileSystem>(fs: &F, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(&REQ, ino).unwrap().size;
    let mut buf = vec![0u8; size as usize];
    let n = fs.file_read(&REQ, ino, 0, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// `name`'s contents are pattern `seed` of `len` bytes.
fn check_file<F: FileSystem>(fs: &F, name: &[u8], seed: u64, len: usize) {
    let ino = fs.lookup(&REQ, ROOT_INO, name).unwrap().attr.ino;
    assert!(read_all(fs, ino) == pattern(seed, len));
}

fn getxattr<F: FileSystem>(fs: &F, req: &Request, ino: Ino, name: &[u8]) -> Result<Vec<u8>, Errno> {
    let len = fs.getxattr(req, ino, name, &mut [])?;
    let mut buf = vec![0u8; len];
    let n = fs.getxattr(req, ino, name, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn listxattr<F: FileSystem>(fs: &F, ino: Ino) -> Vec<Vec<u8>> {
    let len = fs.listxattr(&REQ, ino, &mut []).unwrap();
    let mut buf = vec![0u8; len];
    let n = fs.listxattr(&REQ, ino, &mut buf).unwrap();
    buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn version_1_to_2_and_back() {
    let (_dir, dev) = image("switch", 32);
    let v1 = mount_v1(&dev);
    make_file(&v1, b"one", 1, 123_456);
    v1.setxattr(&REQ, ROOT_INO, b"user.keep", b"yes", 0)
        .unwrap();
    // An open unlinked file, forgotten only by version 2.
    let orphan = make_file(&v1, b"orphan", 9, 70_000);
    v1.unlink(&REQ, ROOT_INO, b"orphan").unwrap();
    // Version 1 knows no version attribute.
    assert_eq!(
        getxattr(&v1, &REQ, ROOT_INO, VERSION_ATTR),
        Err(Errno::ENODATA)
    );
    let free = v1.statfs(&REQ, ROOT_INO).unwrap();

    // Up to version 2.
    let state = v1.export_state().unwrap();
    assert_eq!(state.version(), <V2 as FileSystem>::STATE_VERSION);
    let v2 = V2::import_state(state).unwrap();
    drop(v1);
    assert_eq!(v2.statfs(&REQ, ROOT_INO).unwrap().bfree, free.bfree);
    assert_eq!(getxattr(&v2, &REQ, ROOT_INO, VERSION_ATTR).unwrap(), b"2");
    let mut one = [0u8; 1];
    assert_eq!(v2.getxattr(&REQ, ROOT_INO, VERSION_ATTR, &mut one), Ok(1));
    assert_eq!(&one, b"2");
    // trusted.* is root's only; the attribute is on the root only.
    assert_eq!(
        getxattr(&v2, &USER, ROOT_INO, VERSION_ATTR),
        Err(Errno::EPERM)
    );
    let one_ino = v2.lookup(&REQ, ROOT_INO, b"one").unwrap().attr.ino;
    assert_eq!(
        getxattr(&v2, &REQ, one_ino, VERSION_ATTR),
        Err(Errno::ENODATA)
    );
    // Read-only and not listed.
    assert_eq!(
        v2.setxattr(&REQ, ROOT_INO, VERSION_ATTR, b"3", 0),
        Err(Errno::EPERM)
    );
    assert_eq!(
        v2.removexattr(&REQ, ROOT_INO, VERSION_ATTR),
        Err(Errno::EPERM)
    );
    assert_eq!(listxattr(&v2, ROOT_INO), vec![b"user.keep".to_vec()]);
    assert_eq!(getxattr(&v2, &REQ, ROOT_INO, b"user.keep").unwrap(), b"yes");
    // Other names on other inodes are ordinary.
    v2.setxattr(&REQ, one_ino, VERSION_ATTR, b"mine", 0)
        .unwrap();
    v2.removexattr(&REQ, one_ino, VERSION_ATTR).unwrap();
    // The data, and more of it.
    check_file(&v2, b"one", 1, 123_456);
    assert!(read_all(&v2, orphan) == pattern(9, 70_000));
    make_file(&v2, b"two", 2, 50_000);
    let set = SetAttr {
        size: Some(1000),
        ..SetAttr::default()
    };
    let one = v2.lookup(&REQ, ROOT_INO, b"one").unwrap().attr.ino;
    v2.file_setattr(&REQ, one, &set).unwrap();
    let gone = make_file(&v2, b"gone", 3, 10_000);
    v2.unlink(&REQ, ROOT_INO, b"gone").unwrap();
    v2.forget(gone);
    v2.forget(orphan);
    assert_eq!(orphan_head(&dev), 0);
    // An orphan of version 2, forgotten by version 1.
    let orphan2 = make_file(&v2, b"orphan2", 4, 30_000);
    v2.unlink(&REQ, ROOT_INO, b"orphan2").unwrap();
    assert_ne!(orphan_head(&dev), 0);

    // Back to version 1 (a downgrade: same state format).
    let state = v2.export_state().unwrap();
    let v1 = V1::import_state(state).unwrap();
    drop(v2);
    assert_eq!(
        getxattr(&v1, &REQ, ROOT_INO, VERSION_ATTR),
        Err(Errno::ENODATA)
    );
    check_file(&v1, b"two", 2, 50_000);
    check_file(&v1, b"one", 1, 1000);
    assert!(read_all(&v1, orphan2) == pattern(4, 30_000));
    v1.forget(orphan2);
    assert_eq!(orphan_head(&dev), 0);
    make_file(&v1, b"three", 5, 9000);
    // Version 1 may store the name as an ordinary attribute; version 2 hides it.
    v1.setxattr(&REQ, ROOT_INO, VERSION_ATTR, b"old", 0)
        .unwrap();
    assert_eq!(listxattr(&v1, ROOT_INO).len(), 2);
    let v2 = V2::import_state(v1.export_state().unwrap()).unwrap();
    drop(v1);
    assert_eq!(getxattr(&v2, &REQ, ROOT_INO, VERSION_ATTR).unwrap(), b"2");
    assert_eq!(listxattr(&v2, ROOT_INO), vec![b"user.keep".to_vec()]);
    let v1 = V1::import_state(v2.export_state().unwrap()).unwrap();
    drop(v2);
    assert_eq!(getxattr(&v1, &REQ, ROOT_INO, VERSION_ATTR).unwrap(), b"old");
    v1.removexattr(&REQ, ROOT_INO, VERSION_ATTR).unwrap();
    let counts = v1.statfs(&REQ, ROOT_INO).unwrap();
    drop(v1);
    fsck_clean(&dev);

    // The counts carried over four switches match what a mount counts.
    let v1 = mount_v1(&dev);
    let again = v1.statfs(&REQ, ROOT_INO).unwrap();
    assert_eq!((again.bfree, again.ffree), (counts.bfree, counts.ffree));
    check_file(&v1, b"three", 5, 9000);
    check_file(&v1, b"two", 2, 50_000);
    drop(v1);
}

#[test]
fn version_2_mounts_by_itself() {
    let (_dir, dev) = image("mount", 16);
    let mut o = MountOptions::new(b"test", b"", false);
    o.device = Some(&dev);
    let v2 = V2::mount(&o).unwrap();
    assert_eq!(getxattr(&v2, &REQ, ROOT_INO, VERSION_ATTR).unwrap(), b"2");
    make_file(&v2, b"f", 7, 5000);
    drop(v2);
    fsck_clean(&dev);
}
