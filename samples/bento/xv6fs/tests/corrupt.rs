// SPDX-License-Identifier: GPL-2.0
//! Corrupted images: random bytes of a populated image's metadata are damaged, then it
//! is mounted and used. Every outcome is allowed except a panic (in the kernel a panic is
//! a BUG): errors must come back as errno values.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use bento::{FileSystem, ROOT_INO};
use common::*;
use xv6fs::layout::Superblock;

fn populate(img: &std::path::Path) {
    let dev = open(img);
    let fs = mount(&dev).unwrap();
    for d in 0..4u32 {
        let de = fs
            .mkdir(&REQ, ROOT_INO, format!("dir{d}").as_bytes(), 0o755)
            .unwrap();
        for f in 0..60u32 {
            let (e, _) = fs
                .create(
                    &REQ,
                    de.attr.ino,
                    format!("file-{f}-with-a-name").as_bytes(),
                    0o100644,
                    0,
                )
                .unwrap();
            let data = vec![f as u8; (f as usize % 7) * 3000];
            fs.file_write(&REQ, e.attr.ino, 0, 0, &data, 0).unwrap();
        }
    }
    let (big, _) = fs.create(&REQ, ROOT_INO, b"big", 0o100644, 0).unwrap();
    fs.file_write(&REQ, big.attr.ino, 0, 5 << 20, b"far", 0)
        .unwrap();
    fs.symlink(&REQ, ROOT_INO, b"link", &[b'x'; 100]).unwrap();
    fs.setxattr(&REQ, big.attr.ino, b"user.k", b"value", 0)
        .unwrap();
}

/// Uses the file system every way it can, ignoring errors.
fn exercise(fs: &xv6fs::Xv6Fs) {
    let _ = walk(fs);
    for name in [&b"dir0"[..], b"dir1", b"big", b"link"] {
        if let Ok(e) = fs.lookup(&REQ, ROOT_INO, name) {
            let _ = list(fs, e.attr.ino);
            let _ = read_all(fs, e.attr.ino);
            let mut b = [0u8; 64];
            let _ = fs.getxattr(&REQ, e.attr.ino, b"user.k", &mut b);
            let _ = fs.file_write(&REQ, e.attr.ino, 0, 1000, b"xyz", 0);
            let _ = fs.unlink(&REQ, e.attr.ino, b"file-3-with-a-name");
            let _ = fs.create(&REQ, e.attr.ino, b"new-file", 0o100644, 0);
            let _ = fs.rename(
                &REQ,
                e.attr.ino,
                b"file-5-with-a-name",
                ROOT_INO,
                b"moved",
                0,
            );
            fs.forget(e.attr.ino);
        }
    }
    let _ = fs.mkdir(&REQ, ROOT_INO, b"newdir", 0o755);
    let _ = fs.statfs(&REQ, ROOT_INO);
}

#[test]
fn damaged_metadata_never_panics() {
    let dir = tempdir("corrupt");
    let clean = mkfs(&dir, 16);
    populate(&clean);
    let image = std::fs::read(&clean).unwrap();
    let sb = Superblock::decode(&image[4096..8192]).unwrap();
    // Metadata: superblock, bitmaps, inode table, and the first data blocks (directory,
    // indirect, xattr and symlink blocks sit there).
    let mut targets: Vec<u64> = vec![1];
    targets.extend(
        u64::from(sb.inode_bitmap_start)..u64::from(sb.inode_table_start + sb.inode_table_len),
    );
    targets.extend(u64::from(sb.data_start)..u64::from(sb.data_start) + 400);
    let mut rng = Rng(0x5eed);
    let mut mounted = 0;
    for trial in 0..300 {
        let mut img = image.clone();
        for _ in 0..1 + rng.below(8) {
            let blk = targets[rng.below(targets.len() as u64) as usize];
            let off = blk as usize * 4096 + rng.below(4096) as usize;
            img[off] ^= 1 << rng.below(8);
        }
        let path = dir.join("bad");
        std::fs::write(&path, &img).unwrap();
        let dev = open(&path);
        if let Ok(fs) = mount(&dev) {
            mounted += 1;
            exercise(&fs);
        }
        let _ = trial;
    }
    // Most damage is found lazily: the fs must still mount and then refuse the bad parts.
    assert!(
        mounted > 100,
        "only {mounted} of 300 damaged images mounted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
