// SPDX-License-Identifier: GPL-2.0
//! Scale: a directory of 100 000 entries stays fast (a hashed B+tree: lookups do not scan)
//! and a sparse file reaches past 4 GiB (triple indirect blocks).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::time::Instant;

use bento::{FileSystem, ROOT_INO};
use common::*;

#[test]
fn hundred_thousand_entries() {
    let dir = tempdir("scale-dir");
    let img = mkfs_with(&dir, 256, &["-N", "110000"]);
    let dev = open(&img);
    let fs = mount(&dev).unwrap();
    let d = fs.mkdir(&REQ, ROOT_INO, b"big", 0o755).unwrap().attr.ino;
    let n = 100_000u32;
    let t = Instant::now();
    for i in 0..n {
        fs.mknod(&REQ, d, format!("entry-number-{i}").as_bytes(), 0o100644, 0)
            .unwrap();
    }
    let create = t.elapsed();
    // Lookups of the last names are as cheap as of the first: time a batch of each.
    let time = |range: std::ops::Range<u32>| {
        let t = Instant::now();
        for i in range {
            fs.lookup(&REQ, d, format!("entry-number-{i}").as_bytes())
                .unwrap();
        }
        t.elapsed()
    };
    let first = time(0..2000);
    let last = time(n - 2000..n);
    assert!(
        last < first * 4 + std::time::Duration::from_millis(50),
        "lookups slow down: {first:?} vs {last:?}"
    );
    assert_eq!(list(&fs, d).unwrap().len(), n as usize);
    eprintln!("100k entries: create {create:?}, 2000 lookups {first:?} / {last:?}");
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sparse_file_beyond_four_gib() {
    let (dir, dev) = fresh("scale-file", 32);
    let fs = mount(&dev).unwrap();
    let (e, _) = fs.create(&REQ, ROOT_INO, b"huge", 0o100644, 0).unwrap();
    let offsets = [0u64, 5 << 30, (1 << 40) + 12345];
    for (i, off) in offsets.iter().enumerate() {
        fs.file_write(
            &REQ,
            e.attr.ino,
            0,
            *off,
            format!("block {i}").as_bytes(),
            0,
        )
        .unwrap();
    }
    let attr = fs.getattr(&REQ, e.attr.ino).unwrap();
    assert_eq!(attr.size, (1 << 40) + 12345 + 7);
    // Three data blocks and their indirect blocks, not terabytes.
    assert!(attr.blocks < 100, "{} sectors allocated", attr.blocks);
    let mut b = [0u8; 7];
    for (i, off) in offsets.iter().enumerate() {
        fs.file_read(&REQ, e.attr.ino, 0, *off, &mut b).unwrap();
        assert_eq!(&b, format!("block {i}").as_bytes());
    }
    // A hole reads as zeros; SEEK_DATA finds the next block.
    fs.file_read(&REQ, e.attr.ino, 0, 1 << 30, &mut b).unwrap();
    assert_eq!(b, [0; 7]);
    assert_eq!(
        fs.lseek(
            &REQ,
            e.attr.ino,
            0,
            1 << 30,
            bento::types::whence::SEEK_DATA
        )
        .unwrap(),
        5 << 30
    );
    // Truncating frees the triple indirect tree again.
    fs.file_setattr(
        &REQ,
        e.attr.ino,
        &bento::SetAttr {
            size: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(fs.getattr(&REQ, e.attr.ino).unwrap().blocks <= 8);
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}
