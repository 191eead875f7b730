// SPDX-License-Identifier: GPL-2.0
//! Live upgrade from the file system's side: `export_state` of a mounted instance (with
//! files, open unlinked files on the orphan list and a partly used allocator),
//! `import_state` into a new instance, the old one dropped, and the workload goes on;
//! rollback (the export dropped or the new instance dropped, the old one resumed);
//! corrupt states refused with `EINVAL`; and many switches under a concurrent workload,
//! paused around each switch as the framework's gate pauses calls.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use bento::block::BlockDevice;
use bento::types::Statfs;
use bento::upgrade::Handover;
use bento::{Errno, FileSystem, FileType, Ino, MountOptions, SetAttr, ROOT_INO};
use common::*;
use xv6fs::upgrade::{off, FLAG_ORPHANS_LOADED, HEADER_LEN, SB_BYTES, STATE_MAGIC};
use xv6fs::Xv6Fs;

fn statfs(fs: &Xv6Fs) -> (u64, u64) {
    let s: Statfs = fs.statfs(&REQ, ROOT_INO).unwrap();
    (s.bfree, s.ffree)
}

/// The metadata the file system changes through its journal (superblock, bitmaps, inode
/// table), as the buffer cache holds it.
fn metadata(dev: &BlockDevice) -> Vec<Vec<u8>> {
    let sb = superblock(dev);
    let mut blocks = vec![1u64];
    blocks.extend(u64::from(sb.inode_bitmap_start)..u64::from(sb.data_start));
    blocks
        .into_iter()
        .map(|b| dev.read(b).unwrap().lock().to_vec())
        .collect()
}

/// The switch as the framework makes it: export, import, drop the old instance.
fn switch(old: Xv6Fs) -> Xv6Fs {
    let state = old.export_state().unwrap();
    let new = Xv6Fs::import_state(state).unwrap();
    drop(old);
    new
}

/// Creates `name` in `dir` with `len` bytes of pattern `seed`; returns its inode.
fn make_file(fs: &Xv6Fs, dir: Ino, name: &[u8], seed: u64, len: usize) -> Ino {
    let (e, _) = fs.create(&REQ, dir, name, 0o100644, 0).unwrap();
    let data = pattern(seed, len);
    assert_eq!(
        fs.file_write(&REQ, e.attr.ino, 0, 0, &data, 0).unwrap(),
        len
    );
    e.attr.ino
}

/// Files, a directory, a symlink, an xattr, and three open unlinked files (orphans), one
/// of them truncated. Returns the orphans.
fn populate(fs: &Xv6Fs) -> Vec<Ino> {
    make_file(fs, ROOT_INO, b"small", 1, 100);
    make_file(fs, ROOT_INO, b"big", 2, 300_000);
    let d = fs.mkdir(&REQ, ROOT_INO, b"dir", 0o755).unwrap().attr.ino;
    make_file(fs, d, b"inner", 3, 5000);
    fs.symlink(&REQ, d, b"link", b"../small").unwrap();
    fs.setxattr(&REQ, ROOT_INO, b"user.note", b"kept", 0)
        .unwrap();
    let mut orphans = Vec::new();
    for (i, name) in [&b"o1"[..], b"o2", b"o3"].into_iter().enumerate() {
        let ino = make_file(fs, ROOT_INO, name, 10 + i as u64, 200_000);
        fs.unlink(&REQ, ROOT_INO, name).unwrap();
        orphans.push(ino);
    }
    let set = SetAttr {
        size: Some(7000),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, orphans[1], &set).unwrap();
    orphans
}

/// What `populate` left, as seen by `fs`.
fn check_populated(fs: &Xv6Fs, orphans: &[Ino]) {
    let small = fs.lookup(&REQ, ROOT_INO, b"small").unwrap().attr.ino;
    assert_eq!(read_all(fs, small).unwrap(), pattern(1, 100));
    let big = fs.lookup(&REQ, ROOT_INO, b"big").unwrap().attr.ino;
    assert_eq!(read_all(fs, big).unwrap(), pattern(2, 300_000));
    let d = fs.lookup(&REQ, ROOT_INO, b"dir").unwrap().attr.ino;
    let inner = fs.lookup(&REQ, d, b"inner").unwrap().attr.ino;
    assert_eq!(read_all(fs, inner).unwrap(), pattern(3, 5000));
    let link = fs.lookup(&REQ, d, b"link").unwrap().attr.ino;
    let mut b = [0u8; 64];
    let n = fs.readlink(&REQ, link, &mut b).unwrap();
    assert_eq!(&b[..n], b"../small");
    let mut v = [0u8; 16];
    let n = fs.getxattr(&REQ, ROOT_INO, b"user.note", &mut v).unwrap();
    assert_eq!(&v[..n], b"kept");
    // The open unlinked files are still readable.
    assert_eq!(read_all(fs, orphans[0]).unwrap(), pattern(10, 200_000));
    assert_eq!(
        read_all(fs, orphans[1]).unwrap(),
        pattern(11, 200_000)[..7000]
    );
    assert_eq!(fs.getattr(&REQ, orphans[2]).unwrap().nlink, 0);
}

/// Drops `fs`, checks the file system, mounts it again: the free counts the instance
/// carried (over its upgrades) match the bitmaps a fresh mount counts.
fn unmount_and_check(fs: Xv6Fs, dev: &BlockDevice) {
    let counts = statfs(&fs);
    drop(fs);
    fsck_clean(dev);
    let fs = mount(dev).unwrap();
    assert_eq!(statfs(&fs), counts, "free counts differ from the bitmaps");
    walk(&fs).unwrap();
    drop(fs);
}

#[test]
fn upgrade_keeps_files_orphans_and_allocator() {
    let (dir, dev) = fresh("upgrade", 32);
    let fs = mount(&dev).unwrap();
    let orphans = populate(&fs);
    fs.fsync(&REQ, ROOT_INO, 0, false).unwrap();
    let counts = statfs(&fs);
    let head = superblock(&dev).orphan_head;
    assert_ne!(head, 0);
    let before = metadata(&dev);

    let state = fs.export_state().unwrap();
    assert_eq!(state.version(), Xv6Fs::STATE_VERSION);
    assert!(!state.read_only());
    assert_eq!(
        state.blob().len(),
        HEADER_LEN + 4 * orphans.len() + SB_BYTES
    );
    let new = Xv6Fs::import_state(state).unwrap();
    drop(fs);
    // Nothing changed on disk: not by the export, the import, nor dropping the old one.
    assert!(metadata(&dev) == before, "the switch changed metadata");
    assert_eq!(superblock(&dev).orphan_head, head);
    assert_eq!(statfs(&new), counts);
    check_populated(&new, &orphans);

    // The workload goes on.
    let fs = new;
    let f = make_file(&fs, ROOT_INO, b"after", 20, 50_000);
    fs.file_write(&REQ, f, 0, 100_000, b"tail", 0).unwrap();
    let set = SetAttr {
        size: Some(30_000),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, f, &set).unwrap();
    assert_eq!(read_all(&fs, f).unwrap(), pattern(20, 50_000)[..30_000]);
    let small = fs.lookup(&REQ, ROOT_INO, b"small").unwrap().attr.ino;
    fs.unlink(&REQ, ROOT_INO, b"small").unwrap();
    fs.forget(small);
    let big = fs.lookup(&REQ, ROOT_INO, b"big").unwrap().attr.ino;
    fs.unlink(&REQ, ROOT_INO, b"big").unwrap();
    fs.forget(big);
    // Forgetting the orphans the old instance made frees them.
    let (bfree, ffree) = statfs(&fs);
    for &ino in &orphans {
        fs.forget(ino);
    }
    assert_eq!(superblock(&dev).orphan_head, 0);
    let (bfree2, ffree2) = statfs(&fs);
    assert!(bfree2 > bfree + 100, "{bfree} -> {bfree2}");
    assert_eq!(ffree2, ffree + 3);
    // Inode numbers and blocks the new instance allocates are free ones.
    for i in 0..20u64 {
        make_file(&fs, ROOT_INO, format!("n{i}").as_bytes(), 30 + i, 9000);
    }
    unmount_and_check(fs, &dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn orphans_made_after_an_upgrade_and_switched_again() {
    let (dir, dev) = fresh("upgrade-twice", 32);
    let mut fs = mount(&dev).unwrap();
    let mut open_unlinked = Vec::new();
    for round in 0..6u64 {
        let name = format!("r{round}");
        let ino = make_file(&fs, ROOT_INO, name.as_bytes(), round, 40_000);
        fs.unlink(&REQ, ROOT_INO, name.as_bytes()).unwrap();
        open_unlinked.push(ino);
        if round % 2 == 1 {
            // One forgotten by an instance that did not unlink it.
            fs.forget(open_unlinked.remove(0));
        }
        fs = switch(fs);
    }
    assert_ne!(superblock(&dev).orphan_head, 0);
    for ino in open_unlinked {
        fs.forget(ino);
    }
    assert_eq!(superblock(&dev).orphan_head, 0);
    unmount_and_check(fs, &dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rollback_keeps_the_old_instance() {
    let (dir, dev) = fresh("upgrade-rollback", 32);
    let fs = mount(&dev).unwrap();
    let orphans = populate(&fs);
    let counts = statfs(&fs);

    // The upgrade fails before this superblock's import: the state is dropped.
    let state = fs.export_state().unwrap();
    drop(state);
    fs.resume();
    check_populated(&fs, &orphans);
    assert_eq!(statfs(&fs), counts);
    make_file(&fs, ROOT_INO, b"after-rollback", 40, 20_000);

    // The import succeeded but another superblock's failed: the new instance is dropped.
    let state = fs.export_state().unwrap();
    let new = Xv6Fs::import_state(state).unwrap();
    check_populated(&new, &orphans);
    drop(new);
    fs.resume();
    check_populated(&fs, &orphans);
    let f = fs
        .lookup(&REQ, ROOT_INO, b"after-rollback")
        .unwrap()
        .attr
        .ino;
    assert_eq!(read_all(&fs, f).unwrap(), pattern(40, 20_000));
    fs.unlink(&REQ, ROOT_INO, b"after-rollback").unwrap();
    fs.forget(f);
    for &ino in &orphans {
        fs.forget(ino);
    }
    assert_eq!(superblock(&dev).orphan_head, 0);
    unmount_and_check(fs, &dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_only_mount_hands_over_unprocessed_orphans() {
    let (dir, dev) = fresh("upgrade-ro", 32);
    let free = {
        let fs = mount(&dev).unwrap();
        let free = statfs(&fs);
        populate(&fs);
        // Unmounted with the orphans still open: left for the next mount.
        free
    };
    let mut o = MountOptions::new(b"test", b"", true);
    o.device = Some(&dev);
    let fs = Xv6Fs::mount(&o).unwrap();
    let head = superblock(&dev).orphan_head;
    assert_ne!(head, 0);
    let state = fs.export_state().unwrap();
    assert!(state.read_only());
    let flags = u32::from_le_bytes(state.blob()[off::FLAGS..][..4].try_into().unwrap());
    assert_eq!(flags & FLAG_ORPHANS_LOADED, 0);
    let fs = {
        let new = Xv6Fs::import_state(state).unwrap();
        drop(fs);
        new
    };
    assert_eq!(
        fs.create(&REQ, ROOT_INO, b"x", 0o100644, 0).unwrap_err(),
        Errno::EROFS
    );
    assert_eq!(superblock(&dev).orphan_head, head);
    // Read-write: the new version processes the orphans the old one left.
    fs.remount(false).unwrap();
    assert_eq!(superblock(&dev).orphan_head, 0);
    let fs = switch(fs);
    let rw = make_file(&fs, ROOT_INO, b"rw", 50, 1000);
    fs.unlink(&REQ, ROOT_INO, b"rw").unwrap();
    fs.forget(rw);
    let (bfree, ffree) = statfs(&fs);
    // Everything but the files populate left linked (and the freed "rw") is free.
    assert!(bfree < free.0 && ffree < free.1);
    unmount_and_check(fs, &dev);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A handover of `dev` and `journal` with blob `blob`, in state format `version`.
fn handover(
    version: u32,
    dev: Option<&BlockDevice>,
    journal: Option<&bento::sync::Arc<bento::journal::Journal>>,
    blob: &[u8],
) -> Handover {
    let mut h = Handover::new(version, false);
    if let Some(dev) = dev {
        h.set_device(dev.clone());
    }
    if let Some(j) = journal {
        h.set_journal(j.clone());
    }
    h.blob_mut(blob.len()).unwrap().copy_from_slice(blob);
    h
}

fn put_u32(blob: &mut [u8], at: usize, v: u32) {
    blob[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn corrupt_states_are_refused() {
    let (dir, dev) = fresh("upgrade-corrupt", 32);
    let fs = mount(&dev).unwrap();
    let orphans = populate(&fs);
    let sb = superblock(&dev);
    let mut state = fs.export_state().unwrap();
    let good = state.blob().to_vec();
    let journal = state.take_journal().unwrap();
    drop(state);
    assert_eq!(good.len(), HEADER_LEN + 12 + SB_BYTES);
    assert_eq!(&good[..4], &STATE_MAGIC.to_le_bytes());

    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("short header", good[..HEADER_LEN - 4].to_vec()),
        ("magic", edit(&|b| put_u32(b, off::MAGIC, 0x1234_5678))),
        (
            "length field",
            edit(&|b| put_u32(b, off::LEN, HEADER_LEN as u32)),
        ),
        ("truncated", good[..good.len() - 4].to_vec()),
        ("extra bytes", {
            let mut b = good.clone();
            b.extend_from_slice(&[0; 4]);
            b
        }),
        ("flags", edit(&|b| put_u32(b, off::FLAGS, 6))),
        (
            "nblocks",
            edit(&|b| put_u32(b, off::NBLOCKS, sb.nblocks + 1)),
        ),
        (
            "ninodes",
            edit(&|b| put_u32(b, off::NINODES, sb.ninodes / 2)),
        ),
        ("orphan head", edit(&|b| put_u32(b, off::ORPHAN_HEAD, 0))),
        ("orphan count", edit(&|b| put_u32(b, off::ORPHAN_COUNT, 2))),
        ("orphan count huge", {
            edit(&|b| put_u32(b, off::ORPHAN_COUNT, u32::MAX))
        }),
        ("orphans unsorted", {
            edit(&|b| {
                let (x, y) = (
                    b[HEADER_LEN..][..4].to_vec(),
                    b[HEADER_LEN + 4..][..4].to_vec(),
                );
                b[HEADER_LEN..][..4].copy_from_slice(&y);
                b[HEADER_LEN + 4..][..4].copy_from_slice(&x);
            })
        }),
        ("orphan twice", {
            edit(&|b| {
                let x = b[HEADER_LEN..][..4].to_vec();
                b[HEADER_LEN + 4..][..4].copy_from_slice(&x);
            })
        }),
        ("orphan 0", edit(&|b| put_u32(b, HEADER_LEN, 0))),
        ("orphan root", edit(&|b| put_u32(b, HEADER_LEN, 1))),
        ("orphan past the end", {
            edit(&|b| put_u32(b, HEADER_LEN + 8, sb.ninodes))
        }),
        ("orphan head not in the set", {
            // The head is the last orphan made (the largest number here).
            edit(&|b| put_u32(b, HEADER_LEN + 8, sb.ninodes - 1))
        }),
        ("orphans not loaded", {
            edit(&|b| put_u32(b, off::FLAGS, 0))
        }),
        ("free blocks", {
            edit(&|b| put_u32(b, off::BLOCKS_FREE, sb.nblocks - sb.data_start + 1))
        }),
        ("block hint past the end", {
            edit(&|b| put_u32(b, off::BLOCKS_HINT, sb.nblocks + 1))
        }),
        ("block hint in metadata", {
            edit(&|b| put_u32(b, off::BLOCKS_HINT, sb.data_start - 1))
        }),
        (
            "free inodes",
            edit(&|b| put_u32(b, off::INODES_FREE, sb.ninodes)),
        ),
        ("inode hint 0", edit(&|b| put_u32(b, off::INODES_HINT, 0))),
        ("superblock checksum", {
            edit(&|b| {
                let at = b.len() - SB_BYTES + 40;
                b[at] ^= 1;
            })
        }),
        ("superblock missing", {
            edit(&|b| {
                let len = b.len();
                b.truncate(len - SB_BYTES);
                put_u32(b, off::LEN, len as u32);
            })
        }),
    ];
    let head = sb.orphan_head;
    assert_eq!(
        Some(&head),
        orphans.iter().map(|&i| i as u32).max().as_ref()
    );
    for (what, blob) in &cases {
        let r = Xv6Fs::import_state(handover(1, Some(&dev), Some(&journal), blob));
        assert_eq!(r.err(), Some(Errno::EINVAL), "{what}");
    }
    for version in [0, 2] {
        let r = Xv6Fs::import_state(handover(version, Some(&dev), Some(&journal), &good));
        assert_eq!(r.err(), Some(Errno::EINVAL), "state format {version}");
    }
    let r = Xv6Fs::import_state(handover(1, None, Some(&journal), &good));
    assert_eq!(r.err(), Some(Errno::EINVAL), "no device");
    let r = Xv6Fs::import_state(handover(1, Some(&dev), None, &good));
    assert_eq!(r.err(), Some(Errno::EINVAL), "no journal");
    // The edges of the ranges are accepted.
    for blob in [
        edit(&|b| put_u32(b, off::BLOCKS_HINT, sb.nblocks)),
        edit(&|b| put_u32(b, off::BLOCKS_HINT, sb.data_start)),
        edit(&|b| put_u32(b, off::GENERATION, u32::MAX)),
    ] {
        let new = Xv6Fs::import_state(handover(1, Some(&dev), Some(&journal), &blob)).unwrap();
        drop(new);
    }
    // Refused imports left nothing behind: the old instance goes on, and a good state
    // still switches.
    fs.resume();
    check_populated(&fs, &orphans);
    let new = Xv6Fs::import_state(handover(1, Some(&dev), Some(&journal), &good)).unwrap();
    drop(journal);
    drop(fs);
    check_populated(&new, &orphans);
    for &ino in &orphans {
        new.forget(ino);
    }
    unmount_and_check(new, &dev);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One worker's files: name, inode, contents.
type Files = Vec<(Vec<u8>, Ino, Vec<u8>)>;

/// The mount as the workers see it: the lock plays the framework's gate (every call
/// holds it shared; a switch holds it exclusively).
type Gate = RwLock<Xv6Fs>;

/// Random operations in directory `dir` until `stop`, each through the gate; returns the
/// files as they should be. Some unlinked files stay open (on the orphan list) across
/// switches before they are forgotten.
fn worker(gate: &Gate, id: u64, dir: Ino, stop: &AtomicBool, ops: &AtomicU64) -> Files {
    let mut rng = Rng(0x0dd5_0000 + id * 7919);
    let mut files: Files = Vec::new();
    let mut open_unlinked: Vec<Ino> = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // At most 40 files and 20 open unlinked ones per worker: the space stays bounded
        // however long the test runs.
        let pick = match rng.below(10) {
            _ if files.is_empty() => 0,
            0 | 1 if files.len() >= 40 => 6,
            p => p,
        };
        let i = rng.below(files.len().max(1) as u64) as usize;
        let fs = gate.read().unwrap();
        match pick {
            0 | 1 => {
                let name = format!("f{id}-{n}").into_bytes();
                let (e, _) = fs.create(&REQ, dir, &name, 0o100644, 0).unwrap();
                files.push((name, e.attr.ino, Vec::new()));
            }
            2..=4 => {
                let (_, ino, data) = &mut files[i];
                let at = rng.below(100_000);
                let len = 1 + rng.below(30_000) as usize;
                write_tracked(&fs, *ino, data, at, &pattern(rng.step(), len));
            }
            5 => {
                let (_, ino, data) = &mut files[i];
                let size = rng.below(data.len() as u64 + 10_000);
                truncate_tracked(&fs, *ino, data, size);
            }
            6 => {
                let (name, ino, _) = files.swap_remove(i);
                fs.unlink(&REQ, dir, &name).unwrap();
                if rng.below(2) == 0 || open_unlinked.len() >= 20 {
                    fs.forget(ino);
                } else {
                    open_unlinked.push(ino);
                }
            }
            7 => {
                if let Some(ino) = open_unlinked.pop() {
                    fs.forget(ino);
                }
            }
            8 => {
                let (name, _, _) = &mut files[i];
                let new = format!("r{id}-{n}").into_bytes();
                fs.rename(&REQ, dir, name, dir, &new, 0).unwrap();
                *name = new;
            }
            _ => {
                let (_, ino, data) = &files[i];
                if rng.below(3) == 0 {
                    fs.fsync(&REQ, *ino, 0, false).unwrap();
                } else {
                    assert!(read_all(&fs, *ino).unwrap() == *data);
                }
            }
        }
        drop(fs);
        ops.fetch_add(1, Ordering::Relaxed);
    }
    let fs = gate.read().unwrap();
    for ino in open_unlinked {
        fs.forget(ino);
    }
    files
}

#[test]
fn many_switches_under_a_concurrent_workload() {
    const WORKERS: u64 = 3;
    let switches: u32 = std::env::var("XV6FS_UPGRADE_SWITCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let (dir, dev) = fresh("upgrade-concurrent", 128);
    let fs = mount(&dev).unwrap();
    let dirs: Vec<Ino> = (0..WORKERS)
        .map(|w| {
            fs.mkdir(&REQ, ROOT_INO, format!("w{w}").as_bytes(), 0o755)
                .unwrap()
                .attr
                .ino
        })
        .collect();
    let gate: Gate = RwLock::new(fs);
    let stop = AtomicBool::new(false);
    let done = std::sync::Arc::new(AtomicBool::new(false));
    {
        // A deadlock hangs the threads: fail instead of hanging the test run.
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() > Duration::from_secs(300) {
                    eprintln!("upgrade: threads stuck: deadlock");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
    let ops = AtomicU64::new(0);
    let (results, orphan_states) = std::thread::scope(|s| {
        let workers: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(w, &d)| {
                let (gate, stop, ops) = (&gate, &stop, &ops);
                s.spawn(move || worker(gate, w as u64, d, stop, ops))
            })
            .collect();
        let mut with_orphans = 0u32;
        for i in 0..switches {
            std::thread::sleep(Duration::from_millis(2 + u64::from(i % 5)));
            let mut fs = gate.write().unwrap();
            let state = fs.export_state().unwrap();
            if state.blob().len() > HEADER_LEN {
                with_orphans += 1;
            }
            if i % 10 == 9 {
                // Now and then the switch fails and the old instance resumes.
                drop(state);
                fs.resume();
                continue;
            }
            let new = Xv6Fs::import_state(state).unwrap();
            let old = std::mem::replace(&mut *fs, new);
            drop(old);
        }
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Files> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (results, with_orphans)
    });
    done.store(true, Ordering::Relaxed);
    eprintln!(
        "upgrade: {} operations, {switches} switches ({orphan_states} with orphans)",
        ops.load(Ordering::Relaxed)
    );
    assert!(ops.load(Ordering::Relaxed) > u64::from(switches));
    let fs = gate.into_inner().unwrap();
    let check_files = |fs: &Xv6Fs| {
        for (w, files) in results.iter().enumerate() {
            for (name, ino, data) in files {
                let e = fs.lookup(&REQ, dirs[w], name).unwrap();
                assert_eq!(e.attr.ino, *ino);
                assert_eq!(e.attr.kind, FileType::RegularFile);
                assert!(
                    read_all(fs, *ino).unwrap() == *data,
                    "worker {w}: data differs"
                );
            }
        }
    };
    check_files(&fs);
    assert_eq!(superblock(&dev).orphan_head, 0);
    unmount_and_check(fs, &dev);
    let fs = mount(&dev).unwrap();
    check_files(&fs);
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Blocks a write allocated past the size before the switch (the file on the orphan
/// list, where they end not handed over): the `setattr` after it finds them by walking,
/// frees them and takes the file off the list.
#[test]
fn blocks_allocated_ahead_survive_a_switch() {
    let (dir, dev) = fresh("upgrade-ahead", 16);
    let fs = mount(&dev).unwrap();
    let (e, _) = fs.create(&REQ, ROOT_INO, b"f", 0o100644, 0).unwrap();
    let ino = e.attr.ino;
    let free = fs.statfs(&REQ, ROOT_INO).unwrap().bfree;
    let run = fs.map_blocks(ino, 0, 40, true).unwrap();
    assert!(run.new && run.len > 2, "{run:?}");
    let fs = switch(fs);
    assert_ne!(superblock(&dev).orphan_head, 0);
    let set = SetAttr {
        size: Some(5000),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, ino, &set).unwrap();
    assert_eq!(superblock(&dev).orphan_head, 0);
    assert_eq!(fs.getattr(&REQ, ino).unwrap().blocks, 2 * 8);
    assert_eq!(fs.statfs(&REQ, ROOT_INO).unwrap().bfree, free - 2);
    unmount_and_check(fs, &dev);
    let _ = std::fs::remove_dir_all(&dir);
}
