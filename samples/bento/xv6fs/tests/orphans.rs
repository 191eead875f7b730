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
    superblock(dev).orphan_head
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
    let (dir, dev) = fresh("orphans", 16);
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
    let (dir, dev) = fresh("orphans-mount", 16);
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

/// Four threads, each in its own directory, put files on the orphan list (unlinked while
/// "open", some truncated too) and take them off (forgotten) in an order of their own,
/// all at once: the list's links are the list's, not the inodes', so no thread's write
/// of an inode undoes another's link. Half the orphans are left for the next mount.
#[test]
fn threads_share_the_list() {
    const THREADS: u64 = 4;
    const FILES: u64 = 60;
    let (dir, dev) = fresh("orphans-threads", 32);
    let free = {
        let fs = mount(&dev).unwrap();
        let free = fs.statfs(&REQ, ROOT_INO).unwrap().bfree;
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let fs = &fs;
                s.spawn(move || {
                    let d = fs
                        .mkdir(&REQ, ROOT_INO, format!("t{t}").as_bytes(), 0o755)
                        .unwrap()
                        .attr
                        .ino;
                    let mut open = Vec::new();
                    for i in 0..FILES {
                        let name = format!("f{i}").into_bytes();
                        let (e, _) = fs.create(&REQ, d, &name, 0o100644, 0).unwrap();
                        let ino = e.attr.ino;
                        fs.file_write(&REQ, ino, 0, 0, &vec![t as u8; 20_000], 0)
                            .unwrap();
                        fs.unlink(&REQ, d, &name).unwrap();
                        if i % 3 == 0 {
                            let set = SetAttr {
                                size: Some(1000),
                                ..SetAttr::default()
                            };
                            fs.file_setattr(&REQ, ino, &set).unwrap();
                        }
                        open.push(ino);
                        // Forget every other one, from the middle of the list.
                        if i % 2 == 1 {
                            fs.forget(open.swap_remove(open.len() / 2));
                        }
                    }
                    fs.rmdir(&REQ, ROOT_INO, format!("t{t}").as_bytes())
                        .unwrap();
                });
            }
        });
        assert_ne!(orphan_head(&dev), 0);
        free
    };
    // The orphans left are freed by the next mount; every block comes back.
    fsck_clean(&dev);
    let fs = mount(&dev).unwrap();
    assert_eq!(orphan_head(&dev), 0);
    assert_eq!(fs.statfs(&REQ, ROOT_INO).unwrap().bfree, free);
    drop(fs);
    fsck_clean(&dev);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write's blocks allocated past the size (`map_blocks`, before the framework sets
/// the size) keep the file on the orphan list: the `setattr` giving the size a short
/// write reached frees the rest and takes it off; without one (a crash), mount frees
/// every block past the size.
#[test]
fn blocks_past_the_size_wait_for_it() {
    let (dir, dev) = fresh("orphans-ahead", 16);
    let (free, a, b) = {
        let fs = mount(&dev).unwrap();
        let free = fs.statfs(&REQ, ROOT_INO).unwrap().bfree;
        let (a, _) = fs.create(&REQ, ROOT_INO, b"a", 0o100644, 0).unwrap();
        let (b, _) = fs.create(&REQ, ROOT_INO, b"b", 0o100644, 0).unwrap();
        let (a, b) = (a.attr.ino, b.attr.ino);
        for ino in [a, b] {
            let e = fs.map_blocks(ino, 0, 64, true).unwrap();
            assert!(e.new && e.len > 1, "{e:?}");
        }
        assert_ne!(orphan_head(&dev), 0);
        // A short write to `a`: 2 blocks and a bit.
        fs.file_write(&REQ, a, 0, 0, &pattern(1, 8200), 0).unwrap();
        assert_eq!(fs.getattr(&REQ, a).unwrap().blocks, 3 * 8);
        assert_eq!(read_all(&fs, a).unwrap(), pattern(1, 8200));
        // `b` never gets a size: the mount below frees its blocks.
        (free, a, b)
    };
    assert_ne!(orphan_head(&dev), 0);
    let fs = mount(&dev).unwrap();
    assert_eq!(orphan_head(&dev), 0);
    assert_eq!(fs.getattr(&REQ, b).unwrap().blocks, 0);
    assert_eq!(fs.statfs(&REQ, ROOT_INO).unwrap().bfree, free - 3);
    // Growing `a` shows zeros past its old end.
    let set = SetAttr {
        size: Some(40_000),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, a, &set).unwrap();
    let mut want = pattern(1, 8200);
    want.resize(40_000, 0);
    assert_eq!(read_all(&fs, a).unwrap(), want);
    drop(fs);
    fsck_clean(&dev);
    let _ = std::fs::remove_dir_all(&dir);
}
