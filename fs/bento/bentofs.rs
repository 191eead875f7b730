// SPDX-License-Identifier: GPL-2.0
//! Bento: the framework side of Rust file systems written against the `bento` crate.
//!
//! fs/bento is built into the kernel and owns every VFS object: file system types,
//! superblocks, inodes, dentries and the page cache. File system modules register an ops
//! table ([`bento::abi::FsOps`]) through [`registry`]; every VFS call on their superblocks
//! lands in [`superblock`], [`inode`], [`dir`] or [`file`], which call the module through
//! that table ([`call`]).
//!
//! C headers: `include/linux/fs.h`, `include/linux/fs_context.h`.

use kernel::prelude::*;

mod attr;
mod call;
mod context;
mod data;
mod dentry;
mod dir;
mod direct;
mod export;
mod file;
mod inode;
mod journal;
mod mapcache;
mod namei;
mod registry;
mod superblock;
mod sysfs;
mod xattr;

module! {
    type: BentoModule,
    name: "bento",
    author: "Bento developers",
    description: "Bento: live-upgradable file systems in safe Rust",
    license: "GPL",
}

struct BentoModule;

impl kernel::Module for BentoModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        inode::init_cache()?;
        registry::init()?;
        pr_info!(
            "framework ready (ops ABI {}, build {:016x})\n",
            bento::abi::ABI_VERSION,
            bento::abi::BUILD_ID
        );
        Ok(BentoModule)
    }
}
