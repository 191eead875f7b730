// SPDX-License-Identifier: GPL-2.0
//! Concurrency: several threads write, create, unlink, truncate, punch holes and
//! fallocate against one mount while another thread forces commits (fsync) in a loop
//! and a reader walks everything. Buffered writes go through the framework's outer
//! journal handle (`DATA_CREDITS`) as fs/bento does them, so `map_blocks` and `setattr`
//! run nested in it. A lock-order mistake (an fs lock held while waiting for a commit)
//! deadlocks here; a watchdog turns that into a failure. At the end every file holds
//! what its thread wrote, and fsck finds nothing wrong.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bento::{Errno, FileSystem, FileType, Ino, SetAttr, TimeSet, ROOT_INO};
use common::*;
use xv6fs::Xv6Fs;

const BS: u64 = 4096;
const WORKERS: u64 = 4;

/// A buffered write as fs/bento does it, one block per handle: the framework's handle
/// (`DATA_CREDITS`) is started first, then `map_blocks` allocates inside it (nested),
/// the data goes into the block, and `setattr` records the size (nested too) before the
/// handle stops. On `ENOSPC` the handle is stopped, the journal committed and the block
/// tried once more, as `allocate_in_handle` does. `off` and `data.len()` are multiples
/// of the block size.
fn framework_write(fs: &Xv6Fs, ino: Ino, off: u64, data: &[u8]) -> bento::Result<()> {
    assert!(off % BS == 0 && data.len() as u64 % BS == 0);
    let dev = fs.block_device().unwrap();
    for (i, chunk) in data.chunks(BS as usize).enumerate() {
        let pos = off + i as u64 * BS;
        let mut retried = false;
        loop {
            let h = fs.journal().start(<Xv6Fs as FileSystem>::DATA_CREDITS)?;
            let r = (|| {
                let e = fs.map_blocks(ino, pos / BS, 1, true)?;
                assert_ne!(e.disk_block, 0);
                let b = dev.get(e.disk_block)?;
                b.lock().copy_from_slice(chunk);
                b.mark_dirty();
                let size = fs.getattr(&REQ, ino)?.size;
                let end = pos + BS;
                let set = SetAttr {
                    size: (end > size).then_some(end),
                    mtime: Some(TimeSet::Now),
                    ..SetAttr::default()
                };
                fs.setattr(&REQ, ino, &set).map(|_| ())
            })();
            let stopped = h.stop();
            match r {
                Err(Errno::ENOSPC) if !retried => {
                    retried = true;
                    fs.journal().force_commit()?;
                }
                r => {
                    r?;
                    stopped?;
                    break;
                }
            }
        }
    }
    Ok(())
}

/// One worker's files: name, inode, contents.
type Files = Vec<(Vec<u8>, Ino, Vec<u8>)>;

/// Random operations in directory `dir` until `stop`; returns the files as they
/// should be.
fn worker(fs: &Xv6Fs, id: u64, dir: Ino, stop: &AtomicBool, ops: &AtomicU64) -> Files {
    let mut rng = Rng(0x5eed_0000 + id * 7919);
    let mut files: Files = Vec::new();
    let mut dirs: Vec<Vec<u8>> = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let pick = if files.is_empty() { 0 } else { rng.below(12) };
        let i = rng.below(files.len().max(1) as u64) as usize;
        match pick {
            0 | 1 => {
                let name = format!("f{id}-{n}").into_bytes();
                let (e, _) = fs.create(&REQ, dir, &name, 0o100644, 0).unwrap();
                files.push((name, e.attr.ino, Vec::new()));
            }
            2 | 3 => {
                // Whole blocks through the framework's handle.
                let (_, ino, data) = &mut files[i];
                let at = rng.below(48) * BS;
                let len = (1 + rng.below(8)) * BS;
                let buf = pattern(rng.step(), len as usize);
                framework_write(fs, *ino, at, &buf).unwrap();
                let end = (at + len) as usize;
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[at as usize..end].copy_from_slice(&buf);
            }
            4 => {
                // Any offset and length, through the FUSE build's data path.
                let (_, ino, data) = &mut files[i];
                let at = rng.below(200_000);
                let len = 1 + rng.below(20_000) as usize;
                write_tracked(fs, *ino, data, at, &pattern(rng.step(), len));
            }
            5 => {
                let (_, ino, data) = &mut files[i];
                let size = rng.below(data.len() as u64 + 30_000);
                truncate_tracked(fs, *ino, data, size);
            }
            6 => {
                // Unlinked and forgotten: freed over several transactions if large.
                let (name, ino, _) = files.swap_remove(i);
                fs.unlink(&REQ, dir, &name).unwrap();
                fs.forget(ino);
            }
            7 => {
                let (_, ino, data) = &mut files[i];
                let off = rng.below(data.len() as u64 + 1);
                let len = 1 + rng.below(100_000);
                fs.file_fallocate(&REQ, *ino, 0, off, len, PUNCH_HOLE | KEEP_SIZE)
                    .unwrap();
                let end = ((off + len) as usize).min(data.len());
                data[off as usize..end].fill(0);
            }
            8 if rng.below(8) == 0 => {
                // Large: fallocate and truncation take several transactions each
                // (more than FREE_BUDGET blocks).
                let (_, ino, data) = &mut files[i];
                let len = 9000 * BS;
                fs.file_fallocate(&REQ, *ino, 0, 0, len, 0).unwrap();
                if (data.len() as u64) < len {
                    data.resize(len as usize, 0);
                }
                let set = SetAttr {
                    size: Some(rng.below(3 * BS)),
                    ..SetAttr::default()
                };
                fs.file_setattr(&REQ, *ino, &set).unwrap();
                data.resize(set.size.unwrap() as usize, 0);
            }
            9 => {
                let (name, _, _) = &mut files[i];
                let new = format!("r{id}-{n}").into_bytes();
                fs.rename(&REQ, dir, name, dir, &new, 0).unwrap();
                *name = new;
            }
            10 => {
                if dirs.is_empty() || rng.below(2) == 0 {
                    let name = format!("d{id}-{n}").into_bytes();
                    let d = fs.mkdir(&REQ, dir, &name, 0o755).unwrap();
                    fs.create(&REQ, d.attr.ino, b"inner", 0o100644, 0).unwrap();
                    dirs.push(name);
                } else {
                    let name = dirs.swap_remove(rng.below(dirs.len() as u64) as usize);
                    let d = fs.lookup(&REQ, dir, &name).unwrap().attr.ino;
                    let inner = fs.lookup(&REQ, d, b"inner").unwrap().attr.ino;
                    fs.unlink(&REQ, d, b"inner").unwrap();
                    fs.forget(inner);
                    fs.rmdir(&REQ, dir, &name).unwrap();
                    fs.forget(d);
                }
            }
            _ => {
                let (_, ino, _) = &files[i];
                if rng.below(2) == 0 {
                    fs.setxattr(&REQ, *ino, b"user.k", &[id as u8; 300], 0)
                        .unwrap();
                } else {
                    match fs.removexattr(&REQ, *ino, b"user.k") {
                        Ok(()) | Err(Errno::ENODATA) => {}
                        Err(e) => panic!("removexattr: {e}"),
                    }
                }
                if rng.below(4) == 0 {
                    fs.fsync(&REQ, *ino, 0, false).unwrap();
                }
            }
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
    files
}

/// Errors a reader racing with writers may see: the names and inodes it found go.
fn racy(e: Errno) -> bool {
    matches!(
        e,
        Errno::ENOENT | Errno::ESTALE | Errno::EISDIR | Errno::EINVAL | Errno::ENOTDIR
    )
}

/// Reads everything it finds until `stop` (map_blocks without create, readdir, lookups).
fn reader(fs: &Xv6Fs, stop: &AtomicBool) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut stack = vec![ROOT_INO];
        while let Some(d) = stack.pop() {
            let entries = match list(fs, d) {
                Ok(v) => v,
                Err(e) if racy(e) => continue,
                Err(e) => panic!("reader: readdir: {e}"),
            };
            for (ino, kind, _) in entries {
                match kind {
                    FileType::Directory => stack.push(ino),
                    _ => {
                        let mut buf = vec![0u8; 64 << 10];
                        match fs.file_read(&REQ, ino, 0, 0, &mut buf) {
                            Ok(_) => n += 1,
                            Err(e) if racy(e) => {}
                            Err(e) => panic!("reader: read of {ino}: {e}"),
                        }
                    }
                }
            }
        }
    }
    n
}

#[test]
fn writers_and_commits_in_parallel() {
    let secs = std::env::var("XV6FS_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u64);
    let (dir, dev) = fresh("concurrent", 512);
    let fs = mount(&dev).unwrap();
    let stop = AtomicBool::new(false);
    let done = std::sync::Arc::new(AtomicBool::new(false));
    {
        // A deadlock hangs the threads: fail instead of hanging the test run.
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() > Duration::from_secs(secs + 120) {
                    eprintln!("concurrent: threads stuck: deadlock");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
    let ops = AtomicU64::new(0);
    let dirs: Vec<Ino> = (0..WORKERS)
        .map(|w| {
            fs.mkdir(&REQ, ROOT_INO, format!("w{w}").as_bytes(), 0o755)
                .unwrap()
                .attr
                .ino
        })
        .collect();
    let (results, commits, reads) = std::thread::scope(|s| {
        let workers: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(w, &d)| {
                let (fs, stop, ops) = (&fs, &stop, &ops);
                s.spawn(move || worker(fs, w as u64, d, stop, ops))
            })
            .collect();
        let committer = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                fs.fsync(&REQ, ROOT_INO, 0, false).unwrap();
                n += 1;
            }
            n
        });
        let reader = s.spawn(|| reader(&fs, &stop));
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Files> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (results, committer.join().unwrap(), reader.join().unwrap())
    });
    done.store(true, Ordering::Relaxed);
    eprintln!(
        "concurrent: {} operations, {commits} forced commits, {reads} reads in {secs} s",
        ops.load(Ordering::Relaxed)
    );
    assert!(commits > 0 && ops.load(Ordering::Relaxed) > 0);
    let check_files = |fs: &Xv6Fs| {
        for (w, files) in results.iter().enumerate() {
            for (name, ino, data) in files {
                let e = fs.lookup(&REQ, dirs[w], name).unwrap();
                assert_eq!(e.attr.ino, *ino);
                let got = read_all(fs, *ino).unwrap();
                assert!(
                    got == *data,
                    "worker {w}: {} differs (size {} vs {})",
                    String::from_utf8_lossy(name),
                    got.len(),
                    data.len()
                );
            }
        }
    };
    check_files(&fs);
    drop(fs);
    fsck_clean(&dev);
    // Everything unlinked was forgotten, hence freed: no orphan is left.
    assert_eq!(superblock(&dev).orphan_head, 0);
    let fs = mount(&dev).unwrap();
    walk(&fs).unwrap();
    check_files(&fs);
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The worst case of `DATA_CREDITS`: a write into a hole under a missing triple
/// indirect tree allocates three indirect blocks and the data block, all in the
/// framework's handle, with the `setattr` after it.
#[test]
fn data_credits_cover_a_triple_indirect_allocation() {
    let (dir, dev) = fresh("data-credits", 32);
    let fs = mount(&dev).unwrap();
    let (e, _) = fs.create(&REQ, ROOT_INO, b"f", 0o100644, 0).unwrap();
    let ino = e.attr.ino;
    let triple = (12 + 1024 + 1024 * 1024 + 5) * BS;
    for at in [0, 12 * BS, (12 + 1024 + 3) * BS, triple] {
        let buf = pattern(at, BS as usize);
        framework_write(&fs, ino, at, &buf).unwrap();
        let mut got = vec![0u8; BS as usize];
        assert_eq!(fs.file_read(&REQ, ino, 0, at, &mut got).unwrap(), got.len());
        assert_eq!(got, buf);
    }
    drop(fs);
    fsck_clean(&dev);
    let _ = std::fs::remove_dir_all(&dir);
}
