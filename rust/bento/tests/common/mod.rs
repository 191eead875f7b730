// SPDX-License-Identifier: GPL-2.0
//! Helpers shared by the block and journal tests: temporary image files.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use bento::block::BlockDevice;

pub const BS: usize = 4096;

/// A temporary image file, removed when dropped.
pub struct Image {
    pub path: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Image {
    /// A zeroed image of `blocks` blocks.
    pub fn new(tag: &str, blocks: u64) -> Image {
        let path = std::env::temp_dir().join(format!(
            "bento-test-{}-{tag}-{}.img",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let f = File::create(&path).unwrap();
        f.set_len(blocks * BS as u64).unwrap();
        Image { path }
    }

    /// A copy of this image (a crash snapshot).
    pub fn copy(&self, tag: &str) -> Image {
        let img = Image::new(tag, 0);
        std::fs::copy(&self.path, &img.path).unwrap();
        img
    }

    pub fn open(&self) -> BlockDevice {
        BlockDevice::open(&self.path, false, BS).unwrap()
    }

    /// Reads block `nr` straight from the file.
    pub fn block(&self, nr: u64) -> Vec<u8> {
        read_block(&self.path, nr)
    }

    /// Writes block `nr` straight to the file.
    pub fn write_block(&self, nr: u64, data: &[u8]) {
        let f = OpenOptions::new().write(true).open(&self.path).unwrap();
        f.write_all_at(data, nr * BS as u64).unwrap();
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn read_block(path: &Path, nr: u64) -> Vec<u8> {
    let f = File::open(path).unwrap();
    let mut b = vec![0u8; BS];
    f.read_exact_at(&mut b, nr * BS as u64).unwrap();
    b
}

/// A block filled with a recognisable pattern.
pub fn pattern(seed: u32) -> Vec<u8> {
    (0..BS as u32)
        .map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(0x9e37_79b9)) as u8 ^ (seed as u8))
        .collect()
}

pub fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
}
