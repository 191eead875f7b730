// SPDX-License-Identifier: GPL-2.0
//! The userspace journal: format, load, transactions, crash recovery, revoke,
//! corruption, wraparound, concurrency and the handle rules.
//!
//! Crashes are simulated with the device's write limit: after N block writes nothing
//! more reaches the image file, which is then opened again as after a reboot.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use bento::block::BlockDevice;
use bento::journal::{Journal, Tid};
use bento::Errno;
use common::{be32, pattern, Image, BS};

/// Journal at blocks [JSTART, JSTART + JLEN) of a 2048-block image; the tests' own
/// blocks are below it.
const JSTART: u64 = 1024;
const JLEN: u64 = 1024;
const IMG_BLOCKS: u64 = 2048;
const UUID: [u8; 16] = *b"bento-journal-01";

fn fresh(tag: &str) -> Image {
    let img = Image::new(tag, IMG_BLOCKS);
    Journal::format(&img.open(), JSTART, JLEN, UUID).unwrap();
    img
}

/// Loads the journal of `img` and returns it with its device.
fn load(img: &Image) -> (BlockDevice, Journal) {
    let dev = img.open();
    let j = Journal::load(&dev, JSTART, JLEN).unwrap();
    (dev, j)
}

/// Simulates a crash: nothing written after this point reaches the image.
fn crash(dev: BlockDevice, j: Journal) {
    dev.set_write_limit(Some(0));
    drop(j);
    drop(dev);
}

/// One transaction setting each block of `blocks` to `pattern(seed)`.
fn write_tx(dev: &BlockDevice, j: &Journal, blocks: &[u64], seed: u32) -> bento::Result<Tid> {
    let h = j.start(blocks.len() as u32)?;
    for &b in blocks {
        let buf = dev.read(b)?;
        h.modify(&buf, |d| d.copy_from_slice(&pattern(seed)))?;
    }
    let tid = h.tid();
    h.stop()?;
    Ok(tid)
}

/// Checks the contents of block `nr` (without printing 4 KiB on a mismatch).
fn assert_block(dev: &BlockDevice, nr: u64, want: &[u8]) {
    assert!(
        dev.read(nr).unwrap().lock()[..] == *want,
        "block {nr} differs"
    );
}

/// The journal superblock as stored.
fn jsb(img: &Image) -> Vec<u8> {
    img.block(JSTART)
}

#[test]
fn format_then_load_clean() {
    let img = fresh("clean");
    let sb = jsb(&img);
    assert_eq!(be32(&sb, 0), 0xc03b_3998);
    assert_eq!(be32(&sb, 4), 4, "v2 superblock");
    assert_eq!(be32(&sb, 0x0c), BS as u32);
    assert_eq!(be32(&sb, 0x10), JLEN as u32);
    assert_eq!(be32(&sb, 0x1c), 0, "clean");
    assert_eq!(be32(&sb, 0x28), 0x13, "64BIT | CSUM_V3 | REVOKE");
    let (dev, j) = load(&img);
    assert!(!j.recovery().was_dirty);
    assert!(j.max_credits() > 300);
    j.close().unwrap();
    drop(dev);
    assert_eq!(
        jsb(&img),
        sb,
        "loading and closing an unused journal changes nothing"
    );
}

#[test]
fn load_rejects_bad_superblocks() {
    let img = fresh("badsb");
    let dev = img.open();
    assert_eq!(
        Journal::load(&dev, JSTART + 1, JLEN).unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        Journal::load(&dev, JSTART, 1000).unwrap_err(),
        Errno::EUCLEAN
    );
    assert_eq!(Journal::load(&dev, 2000, JLEN).unwrap_err(), Errno::EINVAL);
    drop(dev);
    let good = jsb(&img);
    // A flipped bit: checksum mismatch.
    let mut sb = good.clone();
    sb[0x70] ^= 1;
    img.write_block(JSTART, &sb);
    assert_eq!(
        Journal::load(&img.open(), JSTART, JLEN).unwrap_err(),
        Errno::EUCLEAN
    );
    // An unknown incompatible feature.
    let mut sb = good.clone();
    sb[0x28..0x2c].copy_from_slice(&0x1013u32.to_be_bytes());
    img.write_block(JSTART, &sb);
    assert_eq!(
        Journal::load(&img.open(), JSTART, JLEN).unwrap_err(),
        Errno::EINVAL
    );
    // Wrong block size.
    img.write_block(JSTART, &good);
    let dev1k = BlockDevice::open(&img.path, false, 1024).unwrap();
    assert_eq!(
        Journal::load(&dev1k, JSTART * 4, JLEN * 4).unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn committed_transactions_are_replayed() {
    let img = fresh("replay");
    let (dev, j) = load(&img);
    let tid = write_tx(&dev, &j, &[100, 101, 102], 1).unwrap();
    assert!(!j.committed(tid));
    j.force_commit().unwrap();
    assert!(j.committed(tid));
    crash(dev, j);
    // Not checkpointed: the blocks are only in the log.
    assert!(img.block(100) == vec![0; BS]);
    assert_ne!(be32(&jsb(&img), 0x1c), 0, "journal left dirty");

    let (dev, j) = load(&img);
    let r = j.recovery();
    assert!(r.was_dirty);
    assert_eq!(r.transactions(), 1);
    assert_eq!(r.replayed_blocks, 3);
    assert_eq!(r.bad_blocks, 0);
    for b in 100..103 {
        assert_block(&dev, b, &pattern(1));
        assert!(img.block(b) == pattern(1), "replayed blocks are synced");
    }
    assert_eq!(be32(&jsb(&img), 0x1c), 0, "marked clean after recovery");
    // New transactions continue after the recovered ones.
    let tid2 = write_tx(&dev, &j, &[100], 2).unwrap();
    assert!(tid2.is_after(tid));
    j.close().unwrap();
    assert!(img.block(100) == pattern(2), "close checkpoints");
    assert_eq!(be32(&jsb(&img), 0x1c), 0);
}

#[test]
fn uncommitted_transactions_are_not_replayed() {
    let img = fresh("uncommitted");
    let (dev, j) = load(&img);
    write_tx(&dev, &j, &[200], 1).unwrap();
    j.force_commit().unwrap();
    write_tx(&dev, &j, &[200, 201], 2).unwrap();
    crash(dev, j);
    let (dev, j) = load(&img);
    assert_eq!(j.recovery().transactions(), 1);
    assert_block(&dev, 200, &pattern(1));
    assert_block(&dev, 201, &[0; BS]);
}

/// The workload of the crash test: five transactions over overlapping blocks.
const WORKLOAD: [&[u64]; 5] = [
    &[300, 301, 302],
    &[301, 303],
    &[300, 304, 305, 306],
    &[302, 303, 304],
    &[306, 307],
];

/// The expected contents after the first `k` transactions of [`WORKLOAD`].
fn state_after(k: usize) -> HashMap<u64, Vec<u8>> {
    let mut s: HashMap<u64, Vec<u8>> = (300..308).map(|b| (b, vec![0; BS])).collect();
    for (i, blocks) in WORKLOAD.iter().enumerate().take(k) {
        for &b in *blocks {
            s.insert(b, pattern(i as u32 + 1));
        }
    }
    s
}

/// Runs the workload with a crash after `limit` block writes (None: no crash); returns
/// how many transactions were acknowledged as committed.
fn run_workload(img: &Image, limit: Option<u64>) -> usize {
    let (dev, j) = load(img);
    dev.set_write_limit(limit);
    let mut acked = 0;
    for (i, blocks) in WORKLOAD.iter().enumerate() {
        if write_tx(&dev, &j, blocks, i as u32 + 1).is_err() || j.force_commit().is_err() {
            break;
        }
        acked = i + 1;
    }
    drop(j); // commits nothing new, checkpoints and marks clean: all subject to the limit
    drop(dev);
    acked
}

#[test]
fn crash_at_every_write_recovers_a_committed_state() {
    let base = fresh("crash-base");
    // A run without crash counts the writes.
    let img = base.copy("crash-count");
    let (dev, j) = load(&img);
    for (i, blocks) in WORKLOAD.iter().enumerate() {
        write_tx(&dev, &j, blocks, i as u32 + 1).unwrap();
        j.force_commit().unwrap();
    }
    j.close().unwrap();
    let total = dev.blocks_written();
    drop(dev);
    assert!(total > 20, "only {total} writes");
    eprintln!("crashing at each of {} points", total + 1);

    for limit in 0..=total {
        let img = base.copy("crash");
        let acked = run_workload(&img, Some(limit));
        let (dev, j) = load(&img);
        let got: HashMap<u64, Vec<u8>> = (300..308)
            .map(|b| (b, dev.read(b).unwrap().lock().to_vec()))
            .collect();
        // The state is the one after every acknowledged transaction, or after one
        // more whose commit block reached the disk before the flush that failed.
        let ok = (acked..=(acked + 1).min(WORKLOAD.len())).any(|k| got == state_after(k));
        assert!(
            ok,
            "crash after {limit} writes: acknowledged {acked}, recovered state matches none"
        );
        j.close().unwrap();
    }
}

#[test]
fn revoke_prevents_replay_of_a_reused_block() {
    for use_revoke in [true, false] {
        let img = fresh("revoke");
        let (dev, j) = load(&img);
        write_tx(&dev, &j, &[400, 401], 1).unwrap();
        j.force_commit().unwrap();
        // Free block 400 (metadata until now) and reuse it for file data.
        let h = j.start_with_revokes(1, 1).unwrap();
        let tid = h.tid();
        if use_revoke {
            h.revoke(400).unwrap();
        }
        j.defer_free(tid, 400, 1).unwrap();
        // The allocation bitmap, say.
        h.modify(&dev.read(402).unwrap(), |d| d[0] = 1).unwrap();
        h.stop().unwrap();
        assert!(!j.reusable(400), "freed by an uncommitted transaction");
        assert!(j.reusable(401));
        assert_eq!(j.first_pending(390, 20), Some(400));
        assert_eq!(
            j.pending_run(390, 20),
            Some((400, 401)),
            "the run and its end"
        );
        assert_eq!(j.pending_run(401, 20), None);
        j.force_commit().unwrap();
        assert!(j.committed(tid));
        assert!(j.reusable(400));
        if use_revoke {
            let data = dev.get(400).unwrap();
            data.lock().copy_from_slice(&pattern(77));
            data.mark_dirty();
            dev.sync().unwrap();
            crash(dev, j);
            assert!(img.block(400) == pattern(77), "data written in place");
        } else {
            // The journal still holds the unrevoked block (its checkpoint is pending),
            // so the cache would not write it back: put the data on disk directly.
            crash(dev, j);
            img.write_block(400, &pattern(77));
        }

        let (dev, j) = load(&img);
        let r = j.recovery();
        assert_eq!(r.transactions(), 2);
        let got = dev.read(400).unwrap().lock().to_vec();
        if use_revoke {
            assert_eq!(r.revoked_blocks, 1);
            assert!(got == pattern(77), "the data survives");
        } else {
            // Without the revoke, recovery writes the old metadata over the data.
            assert!(got == pattern(1), "old metadata replayed over the data");
        }
        assert_block(&dev, 401, &pattern(1));
    }
}

#[test]
fn revoke_drops_the_change_of_its_own_transaction() {
    let img = fresh("forget");
    let (dev, j) = load(&img);
    let h = j.start_with_revokes(2, 1).unwrap();
    let b = dev.read(410).unwrap();
    h.modify(&b, |d| d.fill(5)).unwrap();
    h.revoke(410).unwrap();
    h.modify(&dev.read(411).unwrap(), |d| d.fill(6)).unwrap();
    h.stop().unwrap();
    j.force_commit().unwrap();
    crash(dev, j);
    let (dev, _j) = load(&img);
    assert_eq!(dev.read(410).unwrap().lock()[0], 0);
    assert_eq!(dev.read(411).unwrap().lock()[0], 6);
}

/// Finds the log block holding the `blocktype` block of transaction `tid`.
fn find_log_block(img: &Image, blocktype: u32, tid: u32) -> u64 {
    (1..JLEN)
        .find(|&b| {
            let d = img.block(JSTART + b);
            be32(&d, 0) == 0xc03b_3998 && be32(&d, 4) == blocktype && be32(&d, 8) == tid
        })
        .expect("block not found in the log")
}

fn three_committed(tag: &str) -> (Image, [Tid; 3]) {
    let img = fresh(tag);
    let (dev, j) = load(&img);
    let mut tids = [Tid::from_raw(0); 3];
    for (i, tid) in tids.iter_mut().enumerate() {
        *tid = write_tx(&dev, &j, &[500 + i as u64, 510], i as u32 + 1).unwrap();
        j.force_commit().unwrap();
    }
    crash(dev, j);
    (img, tids)
}

#[test]
fn bad_commit_checksum_ends_the_log() {
    let (img, tids) = three_committed("badcommit");
    let c = find_log_block(&img, 2, tids[1].raw());
    let mut blk = img.block(JSTART + c);
    blk[20] ^= 0x40; // inside the checksum
    img.write_block(JSTART + c, &blk);
    let (dev, j) = load(&img);
    let r = j.recovery();
    assert_eq!(r.first_tid, tids[0].raw());
    assert_eq!(
        r.end_tid,
        tids[1].raw(),
        "replay stops before the bad commit"
    );
    assert_block(&dev, 500, &pattern(1));
    assert_block(&dev, 510, &pattern(1));
    assert_eq!(dev.read(501).unwrap().lock()[0], 0);
    assert_eq!(dev.read(502).unwrap().lock()[0], 0);
}

#[test]
fn bad_block_checksum_fails_load_but_fsck_recovers_the_rest() {
    let (img, tids) = three_committed("badtag");
    let d = find_log_block(&img, 1, tids[1].raw());
    // The first logged block of transaction 2 follows its descriptor.
    let mut blk = img.block(JSTART + d + 1);
    blk[1000] ^= 1;
    img.write_block(JSTART + d + 1, &blk);
    let dev = img.open();
    assert_eq!(Journal::load(&dev, JSTART, JLEN).unwrap_err(), Errno::EIO);
    assert_ne!(be32(&jsb(&img), 0x1c), 0, "still dirty after a failed load");
    let r = Journal::recover(&dev, JSTART, JLEN).unwrap();
    assert_eq!(r.bad_blocks, 1);
    assert_eq!(r.error, Some(Errno::EIO));
    assert_eq!(r.transactions(), 3);
    assert_eq!(be32(&jsb(&img), 0x1c), 0, "fsck resets the journal");
    assert_eq!(
        dev.read(501).unwrap().lock()[0],
        0,
        "the corrupt block is skipped"
    );
    assert_block(&dev, 502, &pattern(3));
    assert_block(&dev, 510, &pattern(3));
    drop(dev);
    let (_dev, j) = load(&img);
    assert!(!j.recovery().was_dirty);
}

#[test]
fn bad_descriptor_checksum_in_the_live_log_is_corruption() {
    let (img, tids) = three_committed("baddesc");
    let d = find_log_block(&img, 1, tids[2].raw());
    let mut blk = img.block(JSTART + d);
    blk[BS - 100] ^= 1;
    img.write_block(JSTART + d, &blk);
    assert_eq!(
        Journal::load(&img.open(), JSTART, JLEN).unwrap_err(),
        Errno::EUCLEAN
    );
}

#[test]
fn escaped_blocks_round_trip() {
    let img = fresh("escape");
    let (dev, j) = load(&img);
    let mut magic_block = pattern(9);
    magic_block[..4].copy_from_slice(&0xc03b_3998u32.to_be_bytes());
    let h = j.start(1).unwrap();
    h.modify(&dev.read(600).unwrap(), |d| d.copy_from_slice(&magic_block))
        .unwrap();
    h.stop().unwrap();
    j.force_commit().unwrap();
    crash(dev, j);
    let (dev, _j) = load(&img);
    assert_block(&dev, 600, &magic_block);
}

#[test]
fn the_log_wraps_around() {
    let img = fresh("wrap");
    let (dev, j) = load(&img);
    // 100 blocks + descriptor + commit = 102 log blocks per transaction; the journal
    // checkpoints when half full, so the head goes round the 1023-block log.
    let mut tids = Vec::new();
    for t in 0..14u32 {
        let blocks: Vec<u64> = (0..100).map(|i| 700 + i + u64::from(t % 3) * 7).collect();
        tids.push(write_tx(&dev, &j, &blocks, t + 1).unwrap());
        j.force_commit().unwrap();
    }
    crash(dev, j);
    let sb = jsb(&img);
    let tail = u64::from(be32(&sb, 0x1c));
    let (dev, j) = load(&img);
    let r = j.recovery();
    assert!(r.transactions() >= 2);
    assert_eq!(r.end_tid, tids[13].next().raw());
    assert!(
        tail + 102 * u64::from(r.transactions()) > JLEN,
        "the replayed log (from {tail}, {} transactions) should wrap",
        r.transactions()
    );
    // Each block holds the pattern of the last transaction that wrote it.
    for b in 700..821u64 {
        let last = (0..14u32)
            .rev()
            .find(|&t| (700 + u64::from(t % 3) * 7..800 + u64::from(t % 3) * 7).contains(&b));
        let want = last.map_or(vec![0; BS], |t| pattern(t + 1));
        assert!(dev.read(b).unwrap().lock().to_vec() == want, "block {b}");
    }
}

#[test]
fn concurrent_handles() {
    let img = fresh("conc");
    let (dev, j) = load(&img);
    let j = Arc::new(j);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (dev, j) = (dev.clone(), j.clone());
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let h = j.start(2).unwrap();
                    // A shared counter block and one block per thread and iteration.
                    let c = dev.read(950).unwrap();
                    h.modify(&c, |d| {
                        let v = u32::from_le_bytes(d[..4].try_into().unwrap());
                        d[..4].copy_from_slice(&(v + 1).to_le_bytes());
                    })
                    .unwrap();
                    let p = dev.read(100 + t * 200 + u64::from(i)).unwrap();
                    h.modify(&p, |d| d[..4].copy_from_slice(&i.to_le_bytes()))
                        .unwrap();
                    h.stop().unwrap();
                    if i % 50 == 49 {
                        j.force_commit().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    j.force_commit().unwrap();
    let j = Arc::into_inner(j).unwrap();
    crash(dev, j);
    let (dev, _j) = load(&img);
    let c = dev.read(950).unwrap().lock()[..4].to_vec();
    assert_eq!(u32::from_le_bytes(c.try_into().unwrap()), 800);
    for t in 0..4u64 {
        for i in 0..200u32 {
            let b = dev.read(100 + t * 200 + u64::from(i)).unwrap();
            assert_eq!(b.lock()[..4], i.to_le_bytes());
        }
    }
}

#[test]
fn handle_rules() {
    let img = fresh("rules");
    let (dev, j) = load(&img);
    let max = j.max_credits();
    assert_eq!(j.start(max + 1).unwrap_err(), Errno::ENOSPC);

    let h = j.start(1).unwrap();
    // Nested handles share the transaction and the credits.
    let inner = j.start(50).unwrap();
    assert_eq!(inner.tid(), h.tid());
    inner.modify(&dev.read(950).unwrap(), |d| d[0] = 1).unwrap();
    assert_eq!(h.credits_left(), 0);
    // Changing a block already in the transaction needs no credit.
    h.modify(&dev.read(950).unwrap(), |d| d[1] = 1).unwrap();
    assert_eq!(
        h.modify(&dev.read(951).unwrap(), |d| d[0] = 1).unwrap_err(),
        Errno::ENOSPC
    );
    inner.stop().unwrap();
    // Revoking needs revoke credits.
    assert_eq!(h.revoke(952).unwrap_err(), Errno::EIO);
    // The journal's own blocks are off limits.
    assert_eq!(
        h.modify(&dev.read(JSTART + 5).unwrap(), |_| ())
            .unwrap_err(),
        Errno::EINVAL
    );
    // Changing a block whose lock this thread holds would deadlock.
    let b = dev.read(950).unwrap();
    let g = b.lock();
    assert_eq!(h.modify(&b, |_| ()).unwrap_err(), Errno::EINVAL);
    drop(g);
    // A thread cannot wait for its own transaction.
    assert_eq!(j.force_commit().unwrap_err(), Errno::EINVAL);
    assert_eq!(j.commit_and_wait(h.tid()).unwrap_err(), Errno::EINVAL);
    let tid = h.tid();
    h.set_sync();
    h.stop().unwrap();
    assert!(j.committed(tid), "a synchronous handle commits on stop");
    // Waiting for a transaction never started is an error.
    assert_eq!(
        j.commit_and_wait(tid.next().next()).unwrap_err(),
        Errno::EINVAL
    );
    // A dropped handle is stopped.
    {
        let h = j.start(1).unwrap();
        h.modify(&dev.read(953).unwrap(), |d| d[0] = 3).unwrap();
    }
    j.force_commit().unwrap();
    // Blocking on the journal while holding a buffer lock could deadlock with a commit.
    let b = dev.read(954).unwrap();
    let g = b.lock();
    assert_eq!(j.start(1).unwrap_err(), Errno::EINVAL);
    drop(g);
    // Other devices' buffers are refused.
    let other = Image::new("other", 4);
    let odev = other.open();
    let h = j.start(1).unwrap();
    assert_eq!(
        h.modify(&odev.read(1).unwrap(), |_| ()).unwrap_err(),
        Errno::EINVAL
    );
    h.stop().unwrap();
}

#[test]
fn large_handles_force_intermediate_commits() {
    let img = fresh("big");
    let (dev, j) = load(&img);
    let max = j.max_credits();
    // Each handle takes two thirds of the transaction limit: they cannot share one.
    let n = max * 2 / 3;
    let mut tids = Vec::new();
    for round in 0..4u64 {
        let h = j.start(n).unwrap();
        for i in 0..u64::from(n) {
            let b = dev.read(200 + (round % 2) * 300 + i).unwrap();
            h.modify(&b, |d| d[0] = round as u8 + 1).unwrap();
        }
        tids.push(h.tid());
        h.stop().unwrap();
    }
    assert!(tids.windows(2).all(|w| w[1].is_after(w[0])));
    j.close().unwrap();
    drop(dev);
    assert_eq!(img.block(200)[0], 3);
    assert_eq!(img.block(500)[0], 4);
}

#[test]
fn read_only_device_refuses_a_dirty_journal() {
    let img = fresh("rodirty");
    let (dev, j) = load(&img);
    write_tx(&dev, &j, &[960], 1).unwrap();
    j.force_commit().unwrap();
    crash(dev, j);
    let ro = BlockDevice::open(&img.path, true, BS).unwrap();
    assert_eq!(Journal::load(&ro, JSTART, JLEN).unwrap_err(), Errno::EROFS);
    // A clean journal loads read-only, but starts no handles.
    let (dev, j) = load(&img);
    j.close().unwrap();
    drop(dev);
    let ro = BlockDevice::open(&img.path, true, BS).unwrap();
    let j = Journal::load(&ro, JSTART, JLEN).unwrap();
    assert_eq!(j.start(1).unwrap_err(), Errno::EROFS);
}

#[test]
fn background_commit_after_the_interval() {
    let img = fresh("timer");
    let (dev, j) = load(&img);
    let tid = write_tx(&dev, &j, &[970], 1).unwrap();
    let t0 = std::time::Instant::now();
    while !j.committed(tid) {
        assert!(t0.elapsed().as_secs() < 20, "no background commit");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(t0.elapsed().as_millis() > 3000);
}

/// Bitwise CRC32C (raw update, as jbd2), to reseal corrupted blocks in the fuzz test.
fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn corrupt_logs_give_errors_not_panics() {
    let img = fresh("fuzz");
    let (dev, j) = load(&img);
    for t in 0..4u32 {
        let h = j.start_with_revokes(3, 2).unwrap();
        for i in 0..3u64 {
            let b = dev.read(100 + u64::from(t) * 2 + i).unwrap();
            h.modify(&b, |d| d.copy_from_slice(&pattern(t))).unwrap();
        }
        h.revoke(300 + u64::from(t)).unwrap();
        h.stop().unwrap();
        j.force_commit().unwrap();
    }
    crash(dev, j);
    let used = 1 + 4 * 6; // per transaction: revoke, descriptor, 3 blocks, commit
    let saved: Vec<Vec<u8>> = (0..=used).map(|b| img.block(JSTART + b)).collect();
    let seed = crc32c(!0, &UUID);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut outcomes: HashMap<String, u32> = HashMap::new();
    for iter in 0..400 {
        let victim = 1 + next() % used;
        let mut blk = saved[victim as usize].clone();
        for _ in 0..1 + next() % 4 {
            let off = if iter % 3 == 0 {
                (next() % 64) as usize // headers, tags, counts
            } else {
                (next() % BS as u64) as usize
            };
            blk[off] ^= 1 << (next() % 8);
        }
        let btype = be32(&blk, 4);
        if iter % 2 == 0 && be32(&blk, 0) == 0xc03b_3998 && (btype == 1 || btype == 5) {
            // Reseal the tail checksum so that the block's contents get parsed.
            blk[BS - 4..].fill(0);
            let c = crc32c(seed, &blk);
            blk[BS - 4..].copy_from_slice(&c.to_be_bytes());
        }
        img.write_block(JSTART + victim, &blk);
        let dev = img.open();
        let res = Journal::recover(&dev, JSTART, JLEN);
        let outcome = match res {
            Ok(r) => match r.error {
                None => "ok".to_string(),
                Some(e) => format!("recovered with {e}"),
            },
            Err(e) => format!("{e}"),
        };
        assert!(
            ["ok", "recovered with EIO(5)", "recovered with EUCLEAN(117)"]
                .contains(&outcome.as_str()),
            "iteration {iter}: {outcome}"
        );
        *outcomes.entry(outcome).or_default() += 1;
        drop(dev);
        for (b, data) in saved.iter().enumerate() {
            img.write_block(JSTART + b as u64, data);
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    assert!(
        outcomes.len() >= 2,
        "the corruption should hit something: {outcomes:?}"
    );
}
