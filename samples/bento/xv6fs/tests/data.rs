// SPDX-License-Identifier: GPL-2.0
//! The data path as a mount sees it (bento's FUSE data path over `map_blocks`): runs,
//! holes, zeroing on truncation, hole punching and fallocate, short writes when full.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use bento::{Errno, FileSystem, SetAttr, ROOT_INO};
use common::*;

const BS: u64 = 4096;

fn truncate(fs: &xv6fs::Xv6Fs, ino: u64, size: u64) {
    let set = SetAttr {
        size: Some(size),
        ..SetAttr::default()
    };
    fs.file_setattr(&REQ, ino, &set).unwrap();
}

fn read_at(fs: &xv6fs::Xv6Fs, ino: u64, off: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0xeeu8; len];
    let n = fs.file_read(&REQ, ino, 0, off, &mut b).unwrap();
    b.truncate(n);
    b
}

fn sectors(fs: &xv6fs::Xv6Fs, ino: u64) -> u64 {
    fs.getattr(&REQ, ino).unwrap().blocks
}

/// A fresh file system in `dir`, with a file "f" holding `data`.
fn setup(tag: &str, mib: u32, data: &[u8]) -> (std::path::PathBuf, bento::block::BlockDevice) {
    let (dir, dev) = fresh(tag, mib);
    {
        let fs = mount(&dev).unwrap();
        let (e, _) = fs.create(&REQ, ROOT_INO, b"f", 0o100644, 0).unwrap();
        if !data.is_empty() {
            assert_eq!(
                fs.file_write(&REQ, e.attr.ino, 0, 0, data, 0).unwrap(),
                data.len()
            );
        }
    }
    (dir, dev)
}

fn file(fs: &xv6fs::Xv6Fs) -> u64 {
    fs.lookup(&REQ, ROOT_INO, b"f").unwrap().attr.ino
}

/// fsck finds nothing wrong, then the temporary directory goes.
fn finish(dir: std::path::PathBuf, dev: &bento::block::BlockDevice) {
    fsck_clean(dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bulk_writes_map_in_runs() {
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (dir, dev) = setup("data-runs", 32, &data);
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        assert_eq!(read_at(&fs, ino, 0, data.len() + 10), data);
        // The 12 direct blocks, then one run in the indirect block.
        let mut fblk = 0;
        let mut runs = 0;
        while fblk < 256 {
            let e = fs.map_blocks(ino, fblk, 256 - fblk as u32, false).unwrap();
            assert_ne!(e.disk_block, 0);
            assert!(!e.new);
            fblk += u64::from(e.len);
            runs += 1;
        }
        assert_eq!(fblk, 256);
        assert!(runs <= 2, "1 MiB mapped in {runs} runs");
        // Past the end: holes, up to the end of the indirect block...
        let e = fs.map_blocks(ino, 256, 5000, false).unwrap();
        assert_eq!((e.disk_block, e.len), (0, 12 + 1024 - 256));
        // ... or as long as asked where a whole indirect tree is missing.
        let e = fs.map_blocks(ino, 12 + 1024 + 7, 5000, false).unwrap();
        assert_eq!((e.disk_block, e.len), (0, 5000));
        // Allocation happens only with `create`, and leaves the size alone.
        let e = fs.map_blocks(ino, 300, 8, true).unwrap();
        assert!(e.new && e.disk_block != 0 && e.len >= 1 && e.len <= 8);
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, 1 << 20);
        truncate(&fs, ino, 1 << 20);
        assert_eq!(
            fs.map_blocks(ROOT_INO, 0, 1, false).map(|_| ()),
            Err(Errno::EISDIR)
        );
    }
    finish(dir, &dev);
}

#[test]
fn a_file_written_in_sequence_is_one_run_across_its_indirect_blocks() {
    // The direct blocks, the single-indirect leaf and three double-indirect leaves.
    let blocks = 12 + 1024 + 2 * 1024 + 100;
    let data: Vec<u8> = (0..blocks * BS).map(|i| (i % 253) as u8).collect();
    let (dir, dev) = setup("data-seq", 64, &[]);
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        for (k, chunk) in data.chunks(1 << 20).enumerate() {
            let off = k as u64 * (1 << 20);
            assert_eq!(fs.file_write(&REQ, ino, 0, off, chunk, 0), Ok(chunk.len()));
        }
        let start = fs.map_blocks(ino, 0, 1, false).unwrap().disk_block;
        let mut fblk = 0;
        while fblk < blocks {
            let e = fs
                .map_blocks(ino, fblk, (blocks - fblk) as u32, false)
                .unwrap();
            assert_eq!(
                e.disk_block,
                start + fblk,
                "file block {fblk} is not where the run from {start} goes"
            );
            fblk += u64::from(e.len);
        }
        assert_eq!(read_at(&fs, ino, 0, data.len()), data);
        // The data, and the 5 indirect blocks that map it, elsewhere.
        assert_eq!(sectors(&fs, ino), (blocks + 5) * BS / 512);
    }
    finish(dir, &dev);
}

#[test]
fn bytes_past_the_end_read_back_as_zeros() {
    let (dir, dev) = setup("data-tail", 16, &[0xaa; 10000]);
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        // Truncate into a block, then extend: the old tail is gone.
        truncate(&fs, ino, 5000);
        truncate(&fs, ino, 12000);
        let b = read_at(&fs, ino, 0, 20000);
        assert_eq!(b.len(), 12000);
        assert!(b[..5000].iter().all(|&x| x == 0xaa));
        assert!(b[5000..].iter().all(|&x| x == 0));
        // Truncate again and write further on: a hole, and zeros around the write.
        truncate(&fs, ino, 3000);
        fs.file_write(&REQ, ino, 0, 20000, b"end", 0).unwrap();
        let b = read_at(&fs, ino, 0, 30000);
        assert_eq!(b.len(), 20003);
        assert!(b[..3000].iter().all(|&x| x == 0xaa));
        assert!(b[3000..20000].iter().all(|&x| x == 0));
        assert_eq!(&b[20000..], b"end");
        // A partial write into a new block zeroes the rest of it.
        truncate(&fs, ino, 24576);
        assert!(read_at(&fs, ino, 20003, 10000).iter().all(|&x| x == 0));
        // Times move with the data, the size only when it grows.
        let before = fs.getattr(&REQ, ino).unwrap();
        fs.file_write(&REQ, ino, 0, 0, b"x", 0).unwrap();
        let after = fs.getattr(&REQ, ino).unwrap();
        assert_eq!(after.size, before.size);
        assert!(after.mtime >= before.mtime && after.ctime >= before.ctime);
    }
    finish(dir, &dev);
}

#[test]
fn freed_blocks_never_show_through() {
    let (dir, dev) = setup("data-stale", 16, &[0x5a; 256 * 1024]);
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        fs.unlink(&REQ, ROOT_INO, b"f").unwrap();
        fs.forget(ino);
        fs.fsync(&REQ, ROOT_INO, 0, false).unwrap();
        // New files get those blocks again: partial writes, fallocate, holes.
        let (a, _) = fs.create(&REQ, ROOT_INO, b"a", 0o100644, 0).unwrap();
        let a = a.attr.ino;
        fs.file_write(&REQ, a, 0, 5000, b"hello", 0).unwrap();
        fs.file_write(&REQ, a, 0, 70000, b"world", 0).unwrap();
        let b = read_at(&fs, a, 0, 1 << 20);
        assert_eq!(b.len(), 70005);
        assert!(b.iter().all(|&x| x == 0 || b"helloworld".contains(&x)));
        let (f, _) = fs.create(&REQ, ROOT_INO, b"falloc", 0o100644, 0).unwrap();
        let f = f.attr.ino;
        fs.file_fallocate(&REQ, f, 0, 0, 100_000, 0).unwrap();
        assert_eq!(fs.getattr(&REQ, f).unwrap().size, 100_000);
        assert!(sectors(&fs, f) >= 25 * 8);
        assert!(read_at(&fs, f, 0, 200_000).iter().all(|&x| x == 0));
        // KEEP_SIZE allocates past the end without growing; extending shows zeros.
        fs.file_fallocate(&REQ, f, 0, 100_000, 100_000, KEEP_SIZE)
            .unwrap();
        assert_eq!(fs.getattr(&REQ, f).unwrap().size, 100_000);
        truncate(&fs, f, 200_000);
        assert!(read_at(&fs, f, 0, 300_000).iter().all(|&x| x == 0));
    }
    finish(dir, &dev);
}

#[test]
fn punching_holes() {
    let (dir, dev) = setup("data-punch", 16, &[0xaa; 5 * 4096]);
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        let s0 = sectors(&fs, ino);
        // Partial blocks at both edges are zeroed, the two whole ones freed.
        fs.file_fallocate(
            &REQ,
            ino,
            0,
            1000,
            3 * BS + 100 - 1000,
            PUNCH_HOLE | KEEP_SIZE,
        )
        .unwrap();
        let b = read_at(&fs, ino, 0, 10 * 4096);
        assert_eq!(b.len(), 5 * 4096);
        for (i, &x) in b.iter().enumerate() {
            let want = if (1000..3 * 4096 + 100).contains(&i) {
                0
            } else {
                0xaa
            };
            assert_eq!(x, want, "byte {i}");
        }
        assert_eq!(sectors(&fs, ino), s0 - 16);
        let seek = |off, wh| fs.lseek(&REQ, ino, 0, off, wh).unwrap();
        assert_eq!(seek(0, bento::types::whence::SEEK_HOLE), 4096);
        assert_eq!(seek(4096, bento::types::whence::SEEK_DATA), 3 * 4096);
        // Inside one block: only zeroing.
        fs.file_fallocate(&REQ, ino, 0, 4 * BS + 10, 20, PUNCH_HOLE | KEEP_SIZE)
            .unwrap();
        assert_eq!(read_at(&fs, ino, 4 * BS + 5, 30)[5..25], [0; 20]);
        assert_eq!(sectors(&fs, ino), s0 - 16);
        // Past the end: clipped to the size, so the partial last block is zeroed (and
        // stays), the size too.
        truncate(&fs, ino, 4 * BS + 100);
        fs.file_fallocate(&REQ, ino, 0, 4 * BS, 1 << 20, PUNCH_HOLE | KEEP_SIZE)
            .unwrap();
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, 4 * BS + 100);
        assert_eq!(sectors(&fs, ino), s0 - 16);
        truncate(&fs, ino, 5 * BS);
        let b = read_at(&fs, ino, 3 * BS, 1 << 20);
        assert_eq!(b.len(), 2 * 4096);
        assert!(b[..100].iter().all(|&x| x == 0));
        assert!(b[100..4096].iter().all(|&x| x == 0xaa));
        assert!(b[4096..].iter().all(|&x| x == 0));
        // Punching from the middle of the last block to far past it zeroes up to the
        // end only, and the block stays.
        truncate(&fs, ino, 0);
        fs.file_write(&REQ, ino, 0, 0, &[0xbb; 6000], 0).unwrap();
        fs.file_fallocate(&REQ, ino, 0, 5000, 3000, PUNCH_HOLE | KEEP_SIZE)
            .unwrap();
        assert_eq!(sectors(&fs, ino), 16);
        truncate(&fs, ino, 8192);
        let b = read_at(&fs, ino, 0, 8192);
        assert!(b[..5000].iter().all(|&x| x == 0xbb));
        assert!(b[5000..].iter().all(|&x| x == 0));
    }
    finish(dir, &dev);
}

#[test]
fn full_disk_makes_a_short_write() {
    let (dir, dev) = setup("data-full", 16, b"");
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        let chunk = vec![0x11u8; 1 << 20];
        let mut off = 0u64;
        let short = loop {
            match fs.file_write(&REQ, ino, 0, off, &chunk, 0) {
                Ok(n) if n == chunk.len() => off += n as u64,
                Ok(n) => break n,
                Err(e) => panic!("write at {off}: {e}"),
            }
        };
        let size = off + short as u64;
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, size);
        assert_eq!(
            fs.file_write(&REQ, ino, 0, size, &chunk, 0),
            Err(Errno::ENOSPC)
        );
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, size);
        assert!(read_at(&fs, ino, size - 10, 100) == [0x11; 10]);
        // Freed space is usable again at once (committing for it).
        truncate(&fs, ino, 0);
        assert_eq!(fs.file_write(&REQ, ino, 0, 0, &chunk, 0), Ok(chunk.len()));
    }
    finish(dir, &dev);
}

#[test]
fn removing_the_last_xattr() {
    let (dir, dev) = setup("data-xattr", 16, b"");
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        fs.setxattr(&REQ, ino, b"user.a", b"1", 0).unwrap();
        fs.removexattr(&REQ, ino, b"user.a").unwrap();
        // A long symlink's block is metadata, freed with the link.
        fs.symlink(&REQ, ROOT_INO, b"l", &[b'y'; 300]).unwrap();
        let mut b = [0u8; 400];
        assert_eq!(
            fs.readlink(
                &REQ,
                fs.lookup(&REQ, ROOT_INO, b"l").unwrap().attr.ino,
                &mut b
            ),
            Ok(300)
        );
        assert_eq!(b[..300], [b'y'; 300]);
        let l = fs.lookup(&REQ, ROOT_INO, b"l").unwrap().attr.ino;
        fs.unlink(&REQ, ROOT_INO, b"l").unwrap();
        fs.forget(l);
    }
    finish(dir, &dev);
}

#[test]
fn freeing_many_metadata_blocks() {
    let (dir, dev) = setup("data-revokes", 32, b"");
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        // One data block under each of 200 indirect blocks: truncating revokes them
        // all, over several transactions.
        for i in 0..200u64 {
            let off = (12 + 1024 + i * 1024) * BS;
            fs.file_write(&REQ, ino, 0, off, b"x", 0).unwrap();
        }
        truncate(&fs, ino, 0);
        assert_eq!(sectors(&fs, ino), 0);
        // A directory of many blocks: every one is revoked when it goes.
        let d = fs.mkdir(&REQ, ROOT_INO, b"d", 0o755).unwrap().attr.ino;
        let name = |i: u32| format!("{i:0>250}").into_bytes();
        for i in 0..1500 {
            fs.create(&REQ, d, &name(i), 0o100644, 0).unwrap();
        }
        assert!(sectors(&fs, d) > 100 * 8);
        for i in 0..1500 {
            fs.unlink(&REQ, d, &name(i)).unwrap();
        }
        fs.rmdir(&REQ, ROOT_INO, b"d").unwrap();
        fs.forget(d);
    }
    finish(dir, &dev);
}

/// Leaves blocks full of 0x5a free for the next allocations of a fresh image.
fn stale_blocks(tag: &str) -> (std::path::PathBuf, bento::block::BlockDevice) {
    let (dir, dev) = setup(tag, 16, &[0x5a; 256 * 1024]);
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        fs.unlink(&REQ, ROOT_INO, b"f").unwrap();
        fs.forget(ino);
        fs.fsync(&REQ, ROOT_INO, 0, false).unwrap();
    }
    (dir, dev)
}

#[test]
fn fallocated_blocks_are_unwritten_until_written() {
    use bento::types::whence::{SEEK_DATA, SEEK_HOLE};
    let (dir, dev) = stale_blocks("data-unwritten");
    assert_ne!(
        superblock(&dev).incompat & xv6fs::layout::INCOMPAT_UNWRITTEN,
        0
    );
    let ino;
    {
        let fs = mount(&dev).unwrap();
        let (e, _) = fs.create(&REQ, ROOT_INO, b"u", 0o100644, 0).unwrap();
        ino = e.attr.ino;
        // 16 blocks in the direct pointers and the single indirect block.
        fs.file_fallocate(&REQ, ino, 0, 8 * BS, 16 * BS, 0).unwrap();
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, 24 * BS);
        assert_eq!(sectors(&fs, ino), 17 * 8);
        assert!(read_at(&fs, ino, 0, 1 << 20).iter().all(|&x| x == 0));
        // Unwritten blocks are holes to readers and to SEEK_DATA.
        let seek = |off, wh| fs.lseek(&REQ, ino, 0, off, wh);
        assert_eq!(seek(0, SEEK_DATA), Err(Errno::ENXIO));
        // A write inside a block takes it: the rest of it reads as zeros, its
        // neighbours stay unwritten.
        fs.file_write(&REQ, ino, 0, 9 * BS + 100, b"partial", 0)
            .unwrap();
        fs.file_write(&REQ, ino, 0, 13 * BS, &[7; 4096], 0).unwrap();
        assert_eq!(seek(0, SEEK_DATA), Ok(9 * BS as i64));
        assert_eq!(seek(9 * BS as i64, SEEK_HOLE), Ok(10 * BS as i64));
        assert_eq!(seek(10 * BS as i64, SEEK_DATA), Ok(13 * BS as i64));
        assert_eq!(sectors(&fs, ino), 17 * 8);
    }
    {
        // What was written, and where, survives a remount.
        let fs = mount(&dev).unwrap();
        let b = read_at(&fs, ino, 0, 1 << 20);
        assert_eq!(b.len(), 24 * 4096);
        for (i, &x) in b.iter().enumerate() {
            let i = i as u64;
            let want = match i {
                _ if (9 * BS + 100..9 * BS + 107).contains(&i) => {
                    b"partial"[(i - 9 * BS - 100) as usize]
                }
                _ if (13 * BS..14 * BS).contains(&i) => 7,
                _ => 0,
            };
            assert_eq!(x, want, "byte {i}");
        }
        // Punching and truncating free unwritten blocks like written ones.
        fs.file_fallocate(&REQ, ino, 0, 10 * BS, 2 * BS, PUNCH_HOLE | KEEP_SIZE)
            .unwrap();
        assert_eq!(sectors(&fs, ino), 15 * 8);
        truncate(&fs, ino, 12 * BS);
        // Blocks 8 and 9 stay; the indirect block goes with 12 and on.
        assert_eq!(sectors(&fs, ino), 2 * 8);
    }
    finish(dir, &dev);
}

#[test]
fn appends_take_keep_size_preallocation_one_block_at_a_time() {
    let (dir, dev) = stale_blocks("data-prealloc");
    {
        let fs = mount(&dev).unwrap();
        let (e, _) = fs.create(&REQ, ROOT_INO, b"log", 0o100644, 0).unwrap();
        let ino = e.attr.ino;
        fs.file_fallocate(&REQ, ino, 0, 0, 32 * BS, KEEP_SIZE)
            .unwrap();
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, 0);
        let s0 = sectors(&fs, ino);
        // Appends (the second one long, past blocks still unwritten) keep the rest
        // of the preallocation.
        fs.file_write(&REQ, ino, 0, 0, &[1; 1000], 0).unwrap();
        fs.file_write(&REQ, ino, 0, 1000, &[2; 5 * 4096], 0)
            .unwrap();
        assert_eq!(sectors(&fs, ino), s0);
        let end = 1000 + 5 * BS;
        assert_eq!(fs.getattr(&REQ, ino).unwrap().size, end);
        let b = read_at(&fs, ino, 0, 1 << 20);
        assert!(b[..1000].iter().all(|&x| x == 1));
        assert!(b[1000..].iter().all(|&x| x == 2));
        // Growing the file shows zeros past the old end, never stale blocks.
        truncate(&fs, ino, 32 * BS);
        assert!(read_at(&fs, ino, end, 1 << 20).iter().all(|&x| x == 0));
        assert_eq!(sectors(&fs, ino), s0);
    }
    finish(dir, &dev);
}

#[test]
fn fallocate_zeroes_on_images_without_unwritten_blocks() {
    let (dir, dev) = stale_blocks("data-no-unwritten");
    {
        // An image made before the feature: clear its bit.
        let mut sb = superblock(&dev);
        sb.incompat &= !xv6fs::layout::INCOMPAT_UNWRITTEN;
        let b = dev.read(1).unwrap();
        sb.encode(&mut b.lock()).unwrap();
        b.mark_dirty();
        dev.sync().unwrap();
    }
    {
        let fs = mount(&dev).unwrap();
        let (e, _) = fs.create(&REQ, ROOT_INO, b"z", 0o100644, 0).unwrap();
        let ino = e.attr.ino;
        fs.file_fallocate(&REQ, ino, 0, 0, 20 * BS, 0).unwrap();
        // Zeroed blocks are data (no unwritten mark to say otherwise).
        let seek = fs.lseek(&REQ, ino, 0, 0, bento::types::whence::SEEK_DATA);
        assert_eq!(seek, Ok(0));
        assert!(read_at(&fs, ino, 0, 1 << 20).iter().all(|&x| x == 0));
        fs.file_write(&REQ, ino, 0, 100, b"x", 0).unwrap();
    }
    {
        let fs = mount(&dev).unwrap();
        let ino = fs.lookup(&REQ, ROOT_INO, b"z").unwrap().attr.ino;
        let b = read_at(&fs, ino, 0, 1 << 20);
        assert_eq!(b.len(), 20 * 4096);
        assert!(b
            .iter()
            .enumerate()
            .all(|(i, &x)| x == u8::from(i == 100) * b'x'));
    }
    finish(dir, &dev);
}

/// Whole blocks go between a request and the device in one piece, outside the block
/// cache; a block the cache holds (a partial read put it there) is changed in the cache
/// instead, so no stale copy is ever read.
#[test]
fn whole_blocks_bypass_the_cache_and_cached_ones_stay_current() {
    let old = pattern(1, 8 * BS as usize);
    let (dir, dev) = setup("data-direct", 16, &old);
    let img = dir.join("img");
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        // Block 2 enters the cache through a partial read.
        assert_eq!(
            read_at(&fs, ino, 2 * BS + 100, 10),
            old[2 * 4096 + 100..][..10]
        );
        let new = pattern(2, 8 * BS as usize);
        assert_eq!(fs.file_write(&REQ, ino, 0, 0, &new, 0).unwrap(), new.len());
        assert_eq!(read_at(&fs, ino, 0, new.len()), new);
        assert_eq!(
            read_at(&fs, ino, 2 * BS + 100, 10),
            new[2 * 4096 + 100..][..10]
        );
        // The uncached blocks are on the device already, before any commit or sync.
        let disk = fs.map_blocks(ino, 5, 1, false).unwrap().disk_block;
        let mut on_disk = vec![0u8; BS as usize];
        std::os::unix::fs::FileExt::read_exact_at(
            &std::fs::File::open(&img).unwrap(),
            &mut on_disk,
            disk * BS,
        )
        .unwrap();
        assert_eq!(on_disk, new[5 * 4096..][..4096]);
        // A partial write into a whole-written block, then whole reads around it.
        fs.file_write(&REQ, ino, 0, 5 * BS + 7, b"xyz", 0).unwrap();
        let mut want = new.clone();
        want[5 * 4096 + 7..][..3].copy_from_slice(b"xyz");
        assert_eq!(read_at(&fs, ino, 0, want.len()), want);
        fs.fsync(&REQ, ino, 0, false).unwrap();
    }
    {
        let fs = mount(&dev).unwrap();
        let ino = file(&fs);
        let mut want = pattern(2, 8 * BS as usize);
        want[5 * 4096 + 7..][..3].copy_from_slice(b"xyz");
        assert_eq!(read_at(&fs, ino, 0, want.len()), want);
    }
    finish(dir, &dev);
}
