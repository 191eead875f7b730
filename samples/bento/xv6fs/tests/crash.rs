// SPDX-License-Identifier: GPL-2.0
//! Crash consistency: a random workload runs until the "power" is cut after N block
//! writes, for every N up to the workload's total; then the image is mounted again
//! (journal replay, orphan recovery) and must be consistent, with every file that was
//! fsynced before the cut present with exactly its fsynced contents.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use bento::{FileSystem, SetAttr, ROOT_INO};
use common::*;

/// (name, contents) of the files fsynced, in order.
type Synced = Vec<(Vec<u8>, Vec<u8>)>;

/// The workload: creates, writes, renames, unlinks and mkdirs at random, fsyncing some
/// files (which are never touched again). Stops at the first error (the cut).
fn workload(fs: &xv6fs::Xv6Fs, seed: u64, synced: &mut Synced) -> bento::Result<()> {
    let mut rng = Rng(seed | 1);
    let mut files: Vec<(Vec<u8>, u64)> = Vec::new();
    for step in 0..40u32 {
        match rng.below(6) {
            0 | 1 => {
                let name = format!("f{step}").into_bytes();
                let (e, _) = fs.create(&REQ, ROOT_INO, &name, 0o100644, 0)?;
                let len = rng.below(3 * 4096 + 100) as usize;
                let mut data: Vec<u8> = (0..len).map(|i| (i as u64 ^ seed) as u8).collect();
                fs.file_write(&REQ, e.attr.ino, 0, 0, &data, 0)?;
                if rng.below(3) == 0 {
                    // Cut the file inside a block, then write past the end: the cut
                    // tail must come back as zeros, around a hole.
                    let cut = rng.below(len as u64 + 1);
                    let set = SetAttr {
                        size: Some(cut),
                        ..SetAttr::default()
                    };
                    fs.file_setattr(&REQ, e.attr.ino, &set)?;
                    data.truncate(cut as usize);
                    let at = cut + rng.below(3 * 4096);
                    fs.file_write(&REQ, e.attr.ino, 0, at, b"tail", 0)?;
                    data.resize(at as usize, 0);
                    data.extend_from_slice(b"tail");
                }
                if rng.below(2) == 0 {
                    fs.fsync(&REQ, e.attr.ino, 0, false)?;
                    synced.push((name, data));
                } else {
                    files.push((name, e.attr.ino));
                }
            }
            2 if !files.is_empty() => {
                let (name, _) = files.remove(rng.below(files.len() as u64) as usize);
                fs.unlink(&REQ, ROOT_INO, &name)?;
            }
            3 if !files.is_empty() => {
                let i = rng.below(files.len() as u64) as usize;
                let new = format!("r{step}").into_bytes();
                fs.rename(&REQ, ROOT_INO, &files[i].0, ROOT_INO, &new, 0)?;
                files[i].0 = new;
            }
            4 => {
                let d = fs.mkdir(&REQ, ROOT_INO, format!("d{step}").as_bytes(), 0o755)?;
                fs.create(&REQ, d.attr.ino, b"inner", 0o100644, 0)?;
            }
            _ if !files.is_empty() => {
                let i = rng.below(files.len() as u64) as usize;
                let set = SetAttr {
                    size: Some(rng.below(5000)),
                    ..SetAttr::default()
                };
                fs.file_setattr(&REQ, files[i].1, &set)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_recovered(img: &std::path::Path, synced: &Synced, cut: u64) {
    let dev = open(img);
    let fs = mount(&dev).unwrap_or_else(|e| panic!("cut at {cut}: mount after crash: {e}"));
    walk(&fs).unwrap_or_else(|e| panic!("cut at {cut}: walking the recovered tree: {e}"));
    for (name, data) in synced {
        let e = fs.lookup(&REQ, ROOT_INO, name).unwrap_or_else(|e| {
            panic!(
                "cut at {cut}: fsynced {} lost: {e}",
                String::from_utf8_lossy(name)
            )
        });
        assert_eq!(
            &read_all(&fs, e.attr.ino).unwrap(),
            data,
            "cut at {cut}: fsynced data differs"
        );
    }
    // The recovered file system keeps working, and fsck finds nothing wrong.
    fs.create(&REQ, ROOT_INO, b"after-crash", 0o100644, 0)
        .unwrap();
    drop(fs);
    let opts = xv6fs::check::CheckOptions {
        repair: false,
        force: true,
    };
    let report = xv6fs::check::check(&dev, &opts).unwrap();
    assert!(
        report.is_clean(),
        "cut at {cut}: fsck after recovery: {report:?}"
    );
}

#[test]
fn power_cut_at_every_write() {
    let dir = tempdir("crash");
    for seed in [0x1234_5678u64, 0x9e37_79b9] {
        let clean = mkfs(&dir, 16);
        // Count the writes of a full run.
        let total = {
            let work = dir.join("work");
            std::fs::copy(&clean, &work).unwrap();
            let dev = open(&work);
            let fs = mount(&dev).unwrap();
            let before = dev.blocks_written();
            workload(&fs, seed, &mut Vec::new()).unwrap();
            drop(fs);
            dev.blocks_written() - before
        };
        assert!(total > 10, "workload wrote {total} blocks");
        let step = (total / 150).max(1);
        let mut cut = 0;
        while cut <= total {
            let work = dir.join("work");
            std::fs::copy(&clean, &work).unwrap();
            let mut synced = Vec::new();
            {
                let dev = open(&work);
                let fs = mount(&dev).unwrap();
                dev.set_write_limit(Some(cut));
                let _ = workload(&fs, seed, &mut synced);
                // Unmounting after the cut fails to write: that is the crash.
                drop(fs);
            }
            check_recovered(&work, &synced, cut);
            cut += step;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
