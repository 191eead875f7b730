// SPDX-License-Identifier: GPL-2.0
//! The userspace block device and its cache.

mod common;

use std::sync::Arc;

use bento::block::BlockDevice;
use bento::Errno;
use common::{pattern, Image, BS};

#[test]
fn read_write_sync() {
    let img = Image::new("rw", 16);
    img.write_block(3, &pattern(3));
    let dev = img.open();
    assert_eq!(dev.block_size(), BS);
    assert_eq!(dev.nr_blocks(), 16);
    let b = dev.read(3).unwrap();
    assert_eq!(b.blocknr(), 3);
    assert_eq!(&b.lock()[..], &pattern(3)[..]);
    b.lock().copy_from_slice(&pattern(9));
    b.mark_dirty();
    assert!(b.is_dirty());
    // Not written before sync.
    assert_eq!(img.block(3), pattern(3));
    dev.sync().unwrap();
    assert!(!b.is_dirty());
    assert_eq!(img.block(3), pattern(9));
    // Buffer::sync writes one block.
    b.lock()[0] ^= 0xff;
    b.mark_dirty();
    b.sync().unwrap();
    assert_eq!(img.block(3)[0], pattern(9)[0] ^ 0xff);
}

#[test]
fn one_copy_per_block() {
    let img = Image::new("share", 8);
    let dev = img.open();
    let a = dev.read(5).unwrap();
    let b = dev.clone().read(5).unwrap();
    a.lock()[100] = 42;
    assert_eq!(b.lock()[100], 42);
    let c = dev.get(5).unwrap();
    assert_eq!(c.lock()[100], 42, "get returns the cached copy");
}

#[test]
fn get_is_zeroed_and_bounds_are_checked() {
    let img = Image::new("get", 8);
    img.write_block(2, &pattern(2));
    let dev = img.open();
    assert!(dev.get(2).unwrap().lock().iter().all(|&b| b == 0));
    assert_eq!(dev.read(8).unwrap_err(), Errno::EIO);
    assert_eq!(dev.get(u64::MAX).unwrap_err(), Errno::EIO);
}

/// `readahead` is a hint: on or off the device it fails nothing, and a dirty cached
/// block it names keeps its contents.
#[test]
fn readahead_is_a_hint() {
    let img = Image::new("ra", 8);
    img.write_block(2, &pattern(2));
    let dev = img.open();
    let b = dev.read(5).unwrap();
    b.lock().copy_from_slice(&pattern(5));
    b.mark_dirty();
    dev.readahead(&[2, 5, 7, 8, u64::MAX]);
    dev.readahead(&[]);
    assert_eq!(&dev.read(2).unwrap().lock()[..], &pattern(2)[..]);
    assert_eq!(&dev.read(5).unwrap().lock()[..], &pattern(5)[..]);
}

#[test]
fn bad_block_size_is_refused() {
    let img = Image::new("bs", 8);
    assert_eq!(
        BlockDevice::open(&img.path, false, 1000).unwrap_err(),
        Errno::EINVAL
    );
    let missing = img.path.with_extension("missing");
    assert_eq!(
        BlockDevice::open(&missing, false, BS).unwrap_err(),
        Errno::ENOENT
    );
}

#[test]
fn eviction_writes_dirty_blocks_back() {
    let img = Image::new("evict", 64);
    let dev = BlockDevice::open_with_cache(&img.path, false, BS, 4).unwrap();
    for n in 0..32 {
        let b = dev.read(n).unwrap();
        b.lock().copy_from_slice(&pattern(n as u32 + 100));
        b.mark_dirty();
    }
    // The cache holds at most 4 unreferenced blocks: most were written back already.
    let on_disk = (0..32)
        .filter(|&n| img.block(n) == pattern(n as u32 + 100))
        .count();
    assert!(on_disk >= 27, "only {on_disk} blocks written back");
    // A block read back after eviction has the new contents.
    for n in 0..32 {
        assert_eq!(
            &dev.read(n).unwrap().lock()[..],
            &pattern(n as u32 + 100)[..]
        );
    }
    dev.sync().unwrap();
    for n in 0..32 {
        assert_eq!(img.block(n), pattern(n as u32 + 100));
    }
}

#[test]
fn referenced_blocks_are_not_evicted() {
    let img = Image::new("pin", 64);
    let dev = BlockDevice::open_with_cache(&img.path, false, BS, 2).unwrap();
    let held: Vec<_> = (0..10).map(|n| dev.read(n).unwrap()).collect();
    for (i, b) in held.iter().enumerate() {
        b.lock()[0] = i as u8 + 1;
    }
    for n in 10..40 {
        dev.read(n).unwrap();
    }
    // Still the same cached copies (not re-read from disk, where they are zero).
    for (i, b) in held.iter().enumerate() {
        assert_eq!(dev.read(i as u64).unwrap().lock()[0], i as u8 + 1);
        assert_eq!(b.lock()[0], i as u8 + 1);
    }
}

#[test]
fn dropping_the_device_writes_back() {
    let img = Image::new("drop", 8);
    {
        let dev = img.open();
        let b = dev.read(1).unwrap();
        b.lock().copy_from_slice(&pattern(1));
        b.mark_dirty();
    }
    assert_eq!(img.block(1), pattern(1));
}

#[test]
fn read_only_device() {
    let img = Image::new("ro", 8);
    let dev = BlockDevice::open(&img.path, true, BS).unwrap();
    assert!(dev.read_only());
    let b = dev.read(1).unwrap();
    b.lock()[0] = 1;
    b.mark_dirty();
    assert_eq!(dev.sync().unwrap_err(), Errno::EROFS);
}

#[test]
fn write_limit_simulates_a_crash() {
    let img = Image::new("limit", 8);
    let dev = img.open();
    dev.set_write_limit(Some(1));
    for n in 0..3 {
        let b = dev.read(n).unwrap();
        b.lock().copy_from_slice(&pattern(n as u32));
        b.mark_dirty();
    }
    assert_eq!(dev.sync().unwrap_err(), Errno::EIO);
    assert_eq!(dev.blocks_written(), 1);
    assert_eq!(img.block(0), pattern(0));
    assert_eq!(img.block(1), vec![0; BS]);
}

#[test]
fn concurrent_lockers_never_lose_updates() {
    let img = Image::new("conc", 32);
    let dev = BlockDevice::open_with_cache(&img.path, false, BS, 4).unwrap();
    let dev = Arc::new(dev);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dev = dev.clone();
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    // A shared counter block and a private one per thread, with other
                    // blocks read in between to make the cache evict.
                    let b = dev.read(0).unwrap();
                    {
                        let mut g = b.lock();
                        let v = u32::from_le_bytes(g[..4].try_into().unwrap());
                        g[..4].copy_from_slice(&(v + 1).to_le_bytes());
                    }
                    b.mark_dirty();
                    drop(b);
                    let p = dev.read(1 + t).unwrap();
                    p.lock()[i as usize % BS] = 1;
                    p.mark_dirty();
                    drop(p);
                    dev.read(8 + (i % 24)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    dev.sync().unwrap();
    let b = img.block(0);
    assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), 2000);
    for t in 0..4 {
        assert!(img.block(1 + t)[..500].iter().all(|&x| x == 1));
    }
}

#[test]
fn verified_mark_lasts_until_the_block_is_read_again() {
    let img = Image::new("verified", 64);
    let dev = BlockDevice::open_with_cache(&img.path, false, BS, 4).unwrap();
    let b = dev.read(3).unwrap();
    assert!(!b.verified(), "bytes just read are unchecked");
    b.set_verified();
    assert!(dev.read(3).unwrap().verified(), "the mark is the block's");
    b.clear_verified();
    assert!(!b.verified());
    b.set_verified();
    drop(b);
    // Evicted (the cache holds 4 unreferenced blocks) and read again: unchecked.
    for n in 10..20 {
        dev.read(n).unwrap();
    }
    assert!(!dev.read(3).unwrap().verified());
    // `get` is for a block about to be overwritten: whatever was checked is gone.
    let c = dev.read(5).unwrap();
    c.set_verified();
    assert!(!dev.get(5).unwrap().verified());
    assert!(!c.verified());
}
