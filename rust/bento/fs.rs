// SPDX-License-Identifier: GPL-2.0
//! The [`FileSystem`] trait: what a Bento file system implements.
//!
//! It is inode-number based and close to FUSE's low-level API (and to fuser's
//! `Filesystem`), but every operation returns its reply as a typed [`Result`]: an operation
//! cannot forget to answer, and every default is an error (`ENOSYS`), never a silent 0.

use crate::errno::{Errno, Result};
use crate::types::{Attr, Entry, FileType, Ino, Open, OpenFlags, Request, Statfs};

/// Where `readdir` puts directory entries.
pub trait DirSink {
    /// Adds one entry. `next_offset` is the offset `readdir` will be called with to
    /// continue *after* this entry. Returns `true` when the sink is full: the entry was not
    /// taken and `readdir` should return.
    fn add(&mut self, ino: Ino, next_offset: i64, kind: FileType, name: &[u8]) -> bool;
}

/// Options given to `mount`.
#[derive(Clone, Copy, Debug)]
pub struct MountOptions<'a> {
    /// The mount source (device path for block file systems; free text otherwise).
    pub source: &'a [u8],
    /// The file system specific options, comma separated (`key` or `key=value`), with
    /// the options the framework handles (`ro`, `rw`, `fs=`, ...) already removed.
    pub options: &'a [u8],
    /// Mounted read-only.
    pub read_only: bool,
}

impl<'a> MountOptions<'a> {
    /// Iterates over the fs-specific options as `(key, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        self.options
            .split(|&b| b == b',')
            .filter(|opt| !opt.is_empty())
            .map(|opt| match opt.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    let (key, value) = opt.split_at(eq);
                    (key, value.get(1..))
                }
                None => (opt, None),
            })
    }
}

/// A file system. One value of the implementing type exists per mounted instance
/// (per superblock); the framework calls its methods concurrently from many tasks, so it
/// does its own locking, as a kernel file system does.
///
/// Permissions are checked by the kernel before calls reach the file system (in FUSE mode
/// through `default_permissions`); a file system stores owners and modes but does not
/// re-check them.
pub trait FileSystem: Sized + Send + Sync + 'static {
    /// Creates the instance for one mount. Reject bad options with `EINVAL` after logging
    /// what was wrong.
    fn mount(opts: &MountOptions<'_>) -> Result<Self>;

    /// Looks up `name` in directory `parent`.
    fn lookup(&self, _req: &Request, _parent: Ino, _name: &[u8]) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// The framework dropped inode `ino` for good: it will not be named again until
    /// a new `lookup` returns it. Called once per inode, not once per lookup.
    fn forget(&self, _ino: Ino) {}

    /// Reads the attributes of `ino`.
    fn getattr(&self, _req: &Request, _ino: Ino) -> Result<Attr> {
        Err(Errno::ENOSYS)
    }

    /// Reads the target of symbolic link `ino` into `buf`; returns the length.
    fn readlink(&self, _req: &Request, _ino: Ino, _buf: &mut [u8]) -> Result<usize> {
        Err(Errno::ENOSYS)
    }

    /// Opens file `ino`. The default is a stateless open with file handle 0.
    fn open(&self, _req: &Request, _ino: Ino, _flags: OpenFlags) -> Result<Open> {
        Ok(Open::default())
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at EOF).
    fn read(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _offset: u64,
        _buf: &mut [u8],
    ) -> Result<usize> {
        Err(Errno::ENOSYS)
    }

    /// Closes an open file (the last reference to it is gone).
    fn release(&self, _req: &Request, _ino: Ino, _fh: u64) -> Result {
        Ok(())
    }

    /// Opens directory `ino`. The default is a stateless open with file handle 0.
    fn opendir(&self, _req: &Request, _ino: Ino, _flags: OpenFlags) -> Result<Open> {
        Ok(Open::default())
    }

    /// Lists directory `ino` from `offset` (0 = start; otherwise a `next_offset` given
    /// earlier), including `.` and `..`, until the sink is full or the directory ends.
    fn readdir(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _offset: i64,
        _sink: &mut dyn DirSink,
    ) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Closes an open directory.
    fn releasedir(&self, _req: &Request, _ino: Ino, _fh: u64) -> Result {
        Ok(())
    }

    /// File system statistics.
    fn statfs(&self, _req: &Request, _ino: Ino) -> Result<Statfs> {
        Err(Errno::ENOSYS)
    }
}
