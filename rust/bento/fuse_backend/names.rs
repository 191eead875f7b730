// SPDX-License-Identifier: GPL-2.0
//! The names the kernel may cache, by inode: the entries this mount replied with and
//! whose inode the kernel still references. After a live upgrade the FUSE host
//! invalidates them, and the attributes of those inodes, so that the new version
//! answers the next lookup and stat: what `d_revalidate` by upgrade generation does in
//! the kernel build.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use fuser::{INodeNo, Notifier};

use super::block::lock;
use crate::types::Ino;

/// Names kept per inode (hard links beyond are left to the entry timeout).
const MAX_NAMES: usize = 4;

/// The entries (parent, name) of one inode.
type Links = Vec<(Ino, Box<[u8]>)>;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Names {
    by_ino: Mutex<HashMap<Ino, Links>>,
}

impl Names {
    /// The kernel got an entry `parent`/`name` → `ino`.
    pub(crate) fn add(&self, ino: Ino, parent: Ino, name: &[u8]) {
        let mut m = lock(&self.by_ino);
        let v = m.entry(ino).or_default();
        if v.iter().any(|(p, n)| *p == parent && **n == *name) {
            return;
        }
        if v.len() >= MAX_NAMES {
            v.remove(0);
        }
        v.push((parent, name.into()));
    }

    /// The kernel forgot `ino`.
    pub(crate) fn forget(&self, ino: Ino) {
        lock(&self.by_ino).remove(&ino);
    }

    /// Asks the kernel to drop every entry and attribute it caches from this mount
    /// (names that no longer exist are skipped by the kernel). Returns how many
    /// notifications failed for another reason than the entry being gone.
    pub(crate) fn invalidate(&self, notifier: &Notifier) -> usize {
        let all: Vec<(Ino, Links)> = lock(&self.by_ino)
            .iter()
            .map(|(i, v)| (*i, v.clone()))
            .collect();
        let mut failed = 0;
        for (ino, names) in all {
            for (parent, name) in names {
                if let Err(e) = notifier.inval_entry(INodeNo(parent), OsStr::from_bytes(&name)) {
                    failed += usize::from(e.raw_os_error() != Some(libc::ENOENT));
                }
            }
            // A negative offset: attributes only, the page cache stays (the data did
            // not change).
            if let Err(e) = notifier.inval_inode(INodeNo(ino), -1, 0) {
                failed += usize::from(e.raw_os_error() != Some(libc::ENOENT));
            }
        }
        failed
    }
}
