// SPDX-License-Identifier: GPL-2.0
//! The block allocator's search: blocks freed by a transaction that has not committed
//! are skipped (asked for once per run of them, not per bit), a run stops before them,
//! and freeing does not pull the search back into them. Indirect blocks keep to the
//! metadata zones, which data takes last.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::cell::Cell;

use bento::block::BlockDevice;
use bento::Errno;
use common::*;
use xv6fs::alloc::{blocks_pending, Bitmap, META_ZONE};
use xv6fs::layout::Superblock;

/// The block bitmap of `sb`, loaded as a mount loads it.
fn block_bitmap(dev: &BlockDevice, sb: &Superblock) -> Bitmap {
    Bitmap::load(
        dev,
        sb.block_bitmap_start,
        sb.nblocks,
        sb.data_start,
        "test blocks",
    )
    .unwrap()
    .for_blocks()
}

#[test]
fn pending_blocks_are_skipped_until_their_free_commits() {
    let (dir, dev) = fresh("alloc", 16);
    let sb = superblock(&dev);
    // The mounted file system lends its journal; its own allocator stays idle.
    let fs = mount(&dev).unwrap();
    let journal = fs.journal();
    let mut bm = block_bitmap(&dev, &sb);
    let pending = blocks_pending(journal);
    let asked = Cell::new(0u32);
    let counting = |n: u32, len: u32| {
        asked.set(asked.get() + 1);
        pending(n, len)
    };

    let h = journal.start(64).unwrap();
    let (first, n) = bm.alloc_run(&dev, &h, None, 64, &counting).unwrap();
    assert_eq!(n, 64);
    // Free 48 of them in this transaction: they wait for its commit.
    for b in first + 8..first + 56 {
        bm.release(&dev, &h, b).unwrap();
    }
    journal
        .defer_free(h.tid(), u64::from(first + 8), 48)
        .unwrap();
    let hint = bm.hint();
    assert_eq!(
        hint,
        first + 64,
        "a free leaves the block search where it was"
    );

    // Asked to start inside the pending run: the search jumps past it, and the
    // journal is asked about it a few times, not once per block.
    asked.set(0);
    let (b, n) = bm
        .alloc_run(&dev, &h, Some(first + 8), 4, &counting)
        .unwrap();
    assert!(
        b >= first + 56,
        "allocated {b}, freed blocks were {}..",
        first + 8
    );
    assert_eq!(n, 4);
    assert!(asked.get() <= 3, "{} questions", asked.get());
    // A run that starts just before pending blocks stops at them: free the block right
    // before them (committed frees come back, pending ones do not).
    bm.release(&dev, &h, first + 7).unwrap();
    let (b, n) = bm
        .alloc_run(&dev, &h, Some(first + 7), 8, &counting)
        .unwrap();
    // first + 7 is itself pending now (freed in this transaction, not yet recorded):
    // without a record it is usable, and the run ends at the first recorded one.
    assert_eq!((b, n), (first + 7, 1));
    h.stop().unwrap();

    // Committed: the freed blocks are usable again.
    journal.force_commit().unwrap();
    let h = journal.start(64).unwrap();
    let (b, n) = bm
        .alloc_run(&dev, &h, Some(first + 8), 64, &counting)
        .unwrap();
    assert_eq!((b, n), (first + 8, 48));
    // Full bytes are skipped 8 bits at a time (no visible effect but speed): the
    // search from the start of the data area finds the first clear bit.
    let (b, _) = bm
        .alloc_run(&dev, &h, Some(sb.data_start), 1, &counting)
        .unwrap();
    assert!(b >= sb.data_start);
    h.stop().unwrap();
    drop(pending);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn indirect_blocks_keep_to_their_zone_which_data_takes_last() {
    let (dir, dev) = fresh("alloc-zone", 16);
    let sb = superblock(&dev);
    let fs = mount(&dev).unwrap();
    let journal = fs.journal();
    let mut bm = block_bitmap(&dev, &sb);
    let pending = blocks_pending(journal);
    // 16 MiB: one bitmap block, so one zone, at the start of the data area.
    let zone = sb.data_start..sb.data_start + META_ZONE;
    let h = journal.start(16).unwrap();

    // Data starts past the zone, even when asked to start in it.
    let (d, n) = bm
        .alloc_run(&dev, &h, Some(sb.data_start), 8, &pending)
        .unwrap();
    assert!(d >= zone.end, "data at {d}, zone {zone:?}");
    let hint = bm.hint();
    assert_eq!(hint, d + n);
    // An indirect block goes in the zone and leaves the data's hint alone, so the
    // next data run follows the last one.
    let m = bm.alloc_meta(&dev, &h, Some(d), &pending).unwrap();
    assert!(zone.contains(&m), "indirect block at {m}, zone {zone:?}");
    assert_eq!(bm.hint(), hint);
    assert_eq!(
        bm.alloc_run(&dev, &h, None, 1, &pending).unwrap(),
        (hint, 1)
    );
    // A full zone sends indirect blocks next to the data.
    let mut in_zone = 1;
    let outside = loop {
        let b = bm.alloc_meta(&dev, &h, Some(d), &pending).unwrap();
        if !zone.contains(&b) {
            break b;
        }
        in_zone += 1;
        assert!(in_zone <= META_ZONE);
    };
    assert_eq!(outside, hint + 1);

    // Data fills the disk outside the zone, then takes what the zone frees.
    bm.release(&dev, &h, m).unwrap();
    let mut last = None;
    let err = loop {
        match bm.alloc_run(&dev, &h, None, 4096, &pending) {
            Ok((b, n)) => last = Some((b, n)),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Errno::ENOSPC);
    assert_eq!(last, Some((m, 1)), "the zone's block came last");
    assert_eq!(bm.free(), 0);
    h.stop().unwrap();
    drop(pending);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A create whose inode table block holds no other inode starts the block from zeros
/// when it is not cached, rather than reading it (the other slots are free); one
/// whose block holds others reads it. Either way every inode keeps its contents.
#[test]
fn a_table_block_of_free_inodes_is_not_read_to_create() {
    use bento::{FileSystem, ROOT_INO};
    use xv6fs::layout::INODES_PER_BLOCK;

    let (dir, dev) = fresh("alloc-fresh", 16);
    let per = u64::from(INODES_PER_BLOCK);
    let fs = mount(&dev).unwrap();
    let mut inos = Vec::new();
    for i in 0..3 * per {
        let name = format!("f{i}");
        inos.push(
            fs.create(&REQ, ROOT_INO, name.as_bytes(), 0o100644, 0)
                .unwrap()
                .0
                .attr
                .ino,
        );
    }
    // Free every inode of the second table block the files reached.
    let block_of = |ino: u64| ino / per;
    let target = block_of(inos[0]) + 1;
    let mut kept = Vec::new();
    for (i, &ino) in inos.iter().enumerate() {
        if block_of(ino) == target {
            fs.unlink(&REQ, ROOT_INO, format!("f{i}").as_bytes())
                .unwrap();
            fs.forget(ino);
        } else {
            kept.push((i, ino));
        }
    }
    drop(fs);
    // Scribble over the free slots on the disk: a block read keeps that, a block
    // started from zeros does not.
    let sb = superblock(&dev);
    let blk = u64::from(sb.inode_table_start) + target;
    {
        let b = dev.read(blk).unwrap();
        let mut g = b.lock();
        for slot in g.chunks_exact_mut(256) {
            slot[8..16].copy_from_slice(b"stalestl");
            slot[252..256].copy_from_slice(b"bad!");
        }
        drop(g);
        b.mark_dirty();
    }
    dev.sync().unwrap();
    drop(dev);
    let dev = open(&dir.join("img"));
    let fs = mount(&dev).unwrap();
    let new = fs
        .create(&REQ, ROOT_INO, b"new", 0o100644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    assert_eq!(block_of(new), target, "the freed block is reused first");
    {
        let b = dev.read(blk).unwrap();
        let g = b.lock();
        let slot = usize::try_from(new % per).unwrap();
        for (i, other) in g.chunks_exact(256).enumerate() {
            assert!(
                i == slot || other.iter().all(|&x| x == 0),
                "slot {i} was read"
            );
        }
    }
    // A second create in the same block finds it cached and keeps the first.
    let next = fs
        .create(&REQ, ROOT_INO, b"next", 0o100644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    assert_eq!(block_of(next), target);
    for &(i, ino) in &kept {
        assert_eq!(
            fs.lookup(&REQ, ROOT_INO, format!("f{i}").as_bytes())
                .unwrap()
                .attr
                .ino,
            ino
        );
    }
    // The files kept and the two new ones, all read without an error.
    assert_eq!(walk(&fs).unwrap(), kept.len() + 2);
    drop(fs);
    fsck_clean(&dev);
}

/// Freeing a file's blocks a run at a time (contiguous on the disk, within a leaf)
/// returns every block, whatever the layout: two files written in alternation (runs
/// of one block), one written in sequence past one transaction's budget of frees, and
/// truncations that end inside a leaf and inside a run.
#[test]
fn blocks_come_back_a_run_at_a_time() {
    use bento::{FileSystem, ROOT_INO};

    let (_dir, dev) = fresh("alloc-runs", 128);
    let fs = mount(&dev).unwrap();
    let free0 = fs.statfs(&REQ, ROOT_INO).unwrap().bfree;
    let mk = |name: &[u8]| {
        fs.create(&REQ, ROOT_INO, name, 0o100644, 0)
            .unwrap()
            .0
            .attr
            .ino
    };
    let (a, b, big) = (mk(b"a"), mk(b"b"), mk(b"big"));
    let (mut da, mut db, mut dbig) = (Vec::new(), Vec::new(), Vec::new());
    let block = pattern(1, 4096);
    for i in 0..600u64 {
        write_tracked(&fs, a, &mut da, i * 4096, &block);
        write_tracked(&fs, b, &mut db, i * 4096, &pattern(i, 4096));
    }
    let chunk = pattern(7, 1 << 20);
    for i in 0..40u64 {
        write_tracked(&fs, big, &mut dbig, i << 20, &chunk);
    }
    // Inside a leaf and inside a run; then past one transaction's budget.
    truncate_tracked(&fs, big, &mut dbig, (17 << 20) + 12345);
    truncate_tracked(&fs, a, &mut da, 300 * 4096 + 1);
    assert_eq!(read_all(&fs, big).unwrap(), dbig);
    assert_eq!(read_all(&fs, a).unwrap(), da);
    assert_eq!(read_all(&fs, b).unwrap(), db);
    for (name, ino) in [(&b"a"[..], a), (b"b", b), (b"big", big)] {
        fs.unlink(&REQ, ROOT_INO, name).unwrap();
        fs.forget(ino);
    }
    assert_eq!(fs.statfs(&REQ, ROOT_INO).unwrap().bfree, free0);
    drop(fs);
    fsck_clean(&dev);
}
