// SPDX-License-Identifier: GPL-2.0
//! Remounting: read-write → read-only marks the superblock clean and makes every change
//! fail with `EROFS` while reads go on; read-only → read-write processes the orphan list
//! as a read-write mount does, and is refused on a read-only device or with unknown
//! ro-compat features.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use bento::block::BlockDevice;
use bento::{Errno, FileSystem, MountOptions, SetAttr, ROOT_INO};
use common::*;
use xv6fs::layout::STATE_CLEAN;
use xv6fs::Xv6Fs;

fn clean(dev: &BlockDevice) -> bool {
    superblock(dev).state & STATE_CLEAN != 0
}

fn mount_ro(dev: &BlockDevice) -> bento::Result<Xv6Fs> {
    let mut o = MountOptions::new(b"test", b"", true);
    o.device = Some(dev);
    Xv6Fs::mount(&o)
}

/// Every kind of change fails with `EROFS`; reads work.
fn assert_read_only(fs: &Xv6Fs, f: u64) {
    let ro = Some(Errno::EROFS);
    assert_eq!(fs.create(&REQ, ROOT_INO, b"new", 0o100644, 0).err(), ro);
    assert_eq!(fs.mkdir(&REQ, ROOT_INO, b"newdir", 0o755).err(), ro);
    assert_eq!(fs.symlink(&REQ, ROOT_INO, b"sym", b"f").err(), ro);
    assert_eq!(fs.link(&REQ, f, ROOT_INO, b"f2").err(), ro);
    assert_eq!(fs.unlink(&REQ, ROOT_INO, b"f").err(), ro);
    assert_eq!(fs.rmdir(&REQ, ROOT_INO, b"d").err(), ro);
    assert_eq!(fs.rename(&REQ, ROOT_INO, b"f", ROOT_INO, b"g", 0).err(), ro);
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(fs.setattr(&REQ, f, &chmod).err(), ro);
    let cut = SetAttr {
        size: Some(1),
        ..SetAttr::default()
    };
    // (`setattr` itself: the FUSE data path's `file_setattr` zeroes the cut tail in
    // the block cache first, which only the kernel's read-only check would prevent.)
    assert_eq!(fs.setattr(&REQ, f, &cut).err(), ro);
    // A write past the end needs a new block.
    assert_eq!(fs.file_write(&REQ, f, 0, 1 << 20, b"x", 0).err(), ro);
    assert_eq!(fs.map_blocks(f, 100, 1, true).err(), ro);
    assert_eq!(fs.setxattr(&REQ, f, b"user.a", b"1", 0).err(), ro);
    assert_eq!(fs.removexattr(&REQ, f, b"user.k").err(), ro);
    assert_eq!(fs.fallocate(&REQ, f, 0, 0, 1 << 20, 0).err(), ro);
    assert_eq!(
        fs.fallocate(&REQ, f, 0, 0, 4096, PUNCH_HOLE | KEEP_SIZE)
            .err(),
        ro
    );
    assert_eq!(read_all(fs, f).unwrap(), b"hello");
    let mut v = [0u8; 8];
    assert_eq!(fs.getxattr(&REQ, f, b"user.k", &mut v).unwrap(), 1);
    assert_eq!(list(fs, ROOT_INO).unwrap().len(), 2);
}

#[test]
fn read_write_to_read_only_and_back() {
    let (dir, dev) = fresh("remount", 16);
    assert!(clean(&dev), "mkfs leaves it clean");
    let fs = mount(&dev).unwrap();
    assert!(!clean(&dev), "a read-write mount is not clean");
    let (e, _) = fs.create(&REQ, ROOT_INO, b"f", 0o100644, 0).unwrap();
    let f = e.attr.ino;
    fs.file_write(&REQ, f, 0, 0, b"hello", 0).unwrap();
    fs.setxattr(&REQ, f, b"user.k", b"v", 0).unwrap();
    fs.mkdir(&REQ, ROOT_INO, b"d", 0o755).unwrap();
    // Already read-write: nothing to do.
    fs.remount(false).unwrap();
    assert!(!clean(&dev));

    fs.remount(true).unwrap();
    assert!(clean(&dev), "read-only: clean");
    assert_read_only(&fs, f);
    // Already read-only: nothing to do.
    fs.remount(true).unwrap();

    fs.remount(false).unwrap();
    assert!(!clean(&dev));
    let (g, _) = fs.create(&REQ, ROOT_INO, b"g", 0o100644, 0).unwrap();
    fs.file_write(&REQ, g.attr.ino, 0, 0, b"world", 0).unwrap();
    fs.unlink(&REQ, ROOT_INO, b"g").unwrap();
    fs.forget(g.attr.ino);
    let d = fs.lookup(&REQ, ROOT_INO, b"d").unwrap().attr.ino;
    fs.rmdir(&REQ, ROOT_INO, b"d").unwrap();
    fs.forget(d);
    fs.mkdir(&REQ, ROOT_INO, b"d", 0o755).unwrap();

    fs.remount(true).unwrap();
    assert!(clean(&dev));
    assert_read_only(&fs, f);
    drop(fs);
    fsck_clean(&dev);
    // Clean, and no orphans: fsck without -f has nothing to check.
    let quick = xv6fs::check::CheckOptions {
        repair: false,
        force: false,
    };
    assert!(xv6fs::check::check(&dev, &quick).unwrap().skipped);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_write_again_processes_orphans() {
    let (dir, dev) = fresh("remount-orphans", 16);
    {
        let fs = mount(&dev).unwrap();
        let (e, _) = fs.create(&REQ, ROOT_INO, b"f", 0o100644, 0).unwrap();
        fs.file_write(&REQ, e.attr.ino, 0, 0, &vec![7u8; 300_000], 0)
            .unwrap();
        // Unlinked while "open", never forgotten: an orphan at unmount.
        fs.unlink(&REQ, ROOT_INO, b"f").unwrap();
    }
    let orphan = superblock(&dev).orphan_head;
    assert_ne!(orphan, 0);
    let free_before = {
        let fs = mount_ro(&dev).unwrap();
        assert_eq!(
            superblock(&dev).orphan_head,
            orphan,
            "read-only: left alone"
        );
        let before = fs.statfs(&REQ, ROOT_INO).unwrap().bfree;
        assert_eq!(
            fs.create(&REQ, ROOT_INO, b"x", 0o100644, 0).err(),
            Some(Errno::EROFS)
        );
        fs.remount(false).unwrap();
        assert_eq!(superblock(&dev).orphan_head, 0);
        assert!(fs.statfs(&REQ, ROOT_INO).unwrap().bfree > before);
        fs.create(&REQ, ROOT_INO, b"x", 0o100644, 0).unwrap();
        fs.remount(true).unwrap();
        before
    };
    assert!(free_before > 0);
    fsck_clean(&dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_write_refused_on_a_read_only_device() {
    let dir = tempdir("remount-rodev");
    let img = mkfs(&dir, 16);
    let dev = BlockDevice::open(&img, true, 4096).unwrap();
    let fs = mount_ro(&dev).unwrap();
    assert_eq!(fs.remount(false).err(), Some(Errno::EROFS));
    assert_eq!(
        fs.mkdir(&REQ, ROOT_INO, b"d", 0o755).err(),
        Some(Errno::EROFS)
    );
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_write_refused_with_unknown_ro_compat_features() {
    let dir = tempdir("remount-rocompat");
    let img = mkfs(&dir, 16);
    {
        let dev = open(&img);
        let b = dev.read(1).unwrap();
        let mut sb = superblock(&dev);
        sb.ro_compat |= 1 << 7;
        sb.encode(&mut b.lock()).unwrap();
        b.mark_dirty();
        dev.sync().unwrap();
    }
    let dev = open(&img);
    assert_eq!(mount(&dev).err(), Some(Errno::EROFS));
    let fs = mount_ro(&dev).unwrap();
    assert_eq!(fs.remount(false).err(), Some(Errno::EROFS));
    assert_eq!(
        fs.mkdir(&REQ, ROOT_INO, b"d", 0o755).err(),
        Some(Errno::EROFS)
    );
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}
