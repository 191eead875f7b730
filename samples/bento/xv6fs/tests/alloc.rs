// SPDX-License-Identifier: GPL-2.0
//! The block allocator's search: blocks freed by a transaction that has not committed
//! are skipped (asked for once per run of them, not per bit), a run stops before them,
//! and freeing does not pull the search back into them.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::cell::Cell;

use common::*;
use xv6fs::alloc::{blocks_pending, Bitmap};

#[test]
fn pending_blocks_are_skipped_until_their_free_commits() {
    let dir = tempdir("alloc");
    let img = mkfs(&dir, 16);
    let dev = open(&img);
    let sb = superblock(&dev);
    // The mounted file system lends its journal; its own allocator stays idle.
    let fs = mount(&dev).unwrap();
    let journal = fs.journal();
    let mut bm = Bitmap::load(
        &dev,
        sb.block_bitmap_start,
        sb.nblocks,
        sb.data_start,
        "test blocks",
    )
    .unwrap()
    .reused_after_commit();
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
