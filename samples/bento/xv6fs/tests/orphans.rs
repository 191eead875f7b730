// SPDX-License-Identifier: GPL-2.0
//! The orphan list: an inode goes on it once whatever its reasons (unlinked while open,
//! a truncation in progress), so truncating an unlinked open file keeps the list whole;
//! after a crash, mount frees what is on it.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use bento::block::BlockDevice;
use bento::{FileSystem, SetAttr, ROOT_INO};
use common::*;

fn orphan_head(dev: &BlockDevice) -> u32 {
    let b = dev.read(1).unwrap();
    let g = b.lock();
    xv6fs::layout::Superblock::decode(&g).unwrap().orphan_head
}

/// Three unlinked "open" files on the list; the middle one is truncated.
fn unlinked_then_truncated(fs: &xv6fs::Xv6Fs) -> Vec<u64> {
    let mut inos = Vec::new();
    for name in [&b"a"[..], b"b", b"c"] {
        let (e, _) = fs.create(&REQ, ROOT_INO, name, 0o100644, 0).unwrap();
        fs.file_write(&REQ, e.attr.ino, 0, 0, &vec![1u8; 200_000], 0)
            .unwrap();
        fs.unlink(&REQ, ROOT_INO, name).unwrap();
        inos.push(e.attr.ino);
    }
    let set = SetAttr {
        size: Some(5000),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, inos[1], &set).unwrap();
    inos
}

#[test]
fn truncating_an_unlinked_file_keeps_the_list() {
    let dir = tempdir("orphans");
    let img = mkfs(&dir, 16);
    let dev = open(&img);
    let fs = mount(&dev).unwrap();
    let inos = unlinked_then_truncated(&fs);
    for ino in inos {
        assert_ne!(orphan_head(&dev), 0);
        fs.forget(ino);
    }
    assert_eq!(orphan_head(&dev), 0);
    drop(fs);
    fsck_clean(&dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mount_frees_every_orphan() {
    let dir = tempdir("orphans-mount");
    let img = mkfs(&dir, 16);
    let dev = open(&img);
    let free = {
        let fs = mount(&dev).unwrap();
        let free = fs.statfs(&REQ, ROOT_INO).unwrap().bfree;
        unlinked_then_truncated(&fs);
        free
    };
    assert_ne!(orphan_head(&dev), 0);
    let fs = mount(&dev).unwrap();
    assert_eq!(orphan_head(&dev), 0);
    assert_eq!(fs.statfs(&REQ, ROOT_INO).unwrap().bfree, free);
    drop(fs);
    fsck_clean(&dev);
    let _ = std::fs::remove_dir_all(&dir);
}
