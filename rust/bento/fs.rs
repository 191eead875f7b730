// SPDX-License-Identifier: GPL-2.0
//! The [`FileSystem`] trait: what a Bento file system implements.
//!
//! It is inode-number based and close to FUSE's low-level API (and to fuser's
//! `Filesystem`), but every operation returns its reply as a typed [`Result`]: an operation
//! cannot forget to answer, and every default is an error (`ENOSYS`), never a silent 0.

use crate::errno::{Errno, Result};
use crate::types::{Attr, Entry, Extent, FileType, Ino, Open, OpenFlags, Request, SetAttr, Statfs};

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
    /// The device, when the caller opened it already (the FUSE host, tests); otherwise
    /// [`MountOptions::open_device`] opens `source`.
    #[cfg(not(kernel))]
    pub device: Option<&'a crate::block::BlockDevice>,
    /// The framework's superblock (`struct super_block *`) of a block-device mount, or
    /// null; [`MountOptions::open_device`] makes the device from it.
    #[cfg(kernel)]
    pub(crate) sb: *mut core::ffi::c_void,
}

#[cfg(kernel)]
impl MountOptions<'_> {
    /// The mounted block device, with its block size set to `block_size` (the framework
    /// opened it for the mount). `ENOTBLK` for a file system not declared with
    /// `FLAG_BLOCK_DEVICE`, `EINVAL` for a block size the device cannot use.
    pub fn open_device(&self, block_size: usize) -> Result<crate::block::BlockDevice> {
        if self.sb.is_null() {
            return Err(Errno::ENOTBLK);
        }
        let sb = self.sb.cast();
        // SAFETY: The framework passes the superblock being mounted, live until the
        // instance made by this mount is unmounted (which drops every device handle).
        let inner = unsafe { crate::backend::block::Device::from_super(sb, block_size) }?;
        Ok(crate::block::BlockDevice { inner })
    }
}

#[cfg(not(kernel))]
impl MountOptions<'_> {
    /// Opens the mount source as the file system's block device (an image file or a
    /// device), read-only for read-only mounts. (In the kernel the framework opens the
    /// device and hands it over; that backend comes with the kernel build of xv6fs.)
    pub fn open_device(&self, block_size: usize) -> Result<crate::block::BlockDevice> {
        use crate::block::BlockDevice;
        if let Some(dev) = self.device {
            if dev.block_size() != block_size {
                return Err(Errno::EINVAL);
            }
            return Ok(dev.clone());
        }
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(self.source));
        // Read-write even for a read-only mount, as ext4 does: a dirty journal is
        // replayed at mount. Only a device that cannot be written is opened read-only.
        let dev = BlockDevice::open(path, false, block_size).or_else(|e| match e {
            Errno::EACCES | Errno::EROFS | Errno::EPERM => {
                BlockDevice::open(path, true, block_size)
            }
            e => Err(e),
        })?;
        dev.claim(std::time::Duration::from_secs(10))?;
        Ok(dev)
    }
}

impl<'a> MountOptions<'a> {
    /// Options for mounting `source` with the fs-specific `options`.
    pub fn new(source: &'a [u8], options: &'a [u8], read_only: bool) -> Self {
        MountOptions {
            source,
            options,
            read_only,
            #[cfg(not(kernel))]
            device: None,
            #[cfg(kernel)]
            sb: core::ptr::null_mut(),
        }
    }

    /// Options with the framework's superblock (kernel build, see `abi`).
    #[cfg(kernel)]
    pub(crate) fn with_sb(mut self, sb: *mut core::ffi::c_void) -> Self {
        self.sb = sb;
        self
    }

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
    /// For file systems without a [`FileSystem::block_device`] (the framework reads
    /// block-backed ones through [`FileSystem::map_blocks`]).
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

    /// Changes attributes of `ino`; returns the attributes after the change.
    fn setattr(&self, _req: &Request, _ino: Ino, _set: &SetAttr) -> Result<Attr> {
        Err(Errno::ENOSYS)
    }

    /// Creates a special file or a regular file (`mode` holds the kind and permission
    /// bits, umask already applied) named `name` in `parent`.
    fn mknod(
        &self,
        _req: &Request,
        _parent: Ino,
        _name: &[u8],
        _mode: u32,
        _rdev: u32,
    ) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// Creates directory `name` in `parent` (`mode`: permission bits, umask applied).
    fn mkdir(&self, _req: &Request, _parent: Ino, _name: &[u8], _mode: u32) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// Removes the non-directory `name` from `parent`. An inode whose last link goes
    /// while it is open keeps its data until `forget`.
    fn unlink(&self, _req: &Request, _parent: Ino, _name: &[u8]) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Removes the empty directory `name` from `parent`.
    fn rmdir(&self, _req: &Request, _parent: Ino, _name: &[u8]) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Creates symbolic link `name` in `parent` pointing to `target`.
    fn symlink(&self, _req: &Request, _parent: Ino, _name: &[u8], _target: &[u8]) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// Renames `parent/name` to `newparent/newname`; `flags` are
    /// [`rename_flags`](crate::types::rename_flags).
    fn rename(
        &self,
        _req: &Request,
        _parent: Ino,
        _name: &[u8],
        _newparent: Ino,
        _newname: &[u8],
        _flags: u32,
    ) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Makes `newparent/newname` a new hard link to `ino`.
    fn link(&self, _req: &Request, _ino: Ino, _newparent: Ino, _newname: &[u8]) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// Creates and opens regular file `name` in `parent` (`mode`: kind and permission
    /// bits, umask applied).
    fn create(
        &self,
        _req: &Request,
        _parent: Ino,
        _name: &[u8],
        _mode: u32,
        _flags: OpenFlags,
    ) -> Result<(Entry, Open)> {
        Err(Errno::ENOSYS)
    }

    /// Writes `data` at `offset`; returns how many bytes were written. For file systems
    /// without a [`FileSystem::block_device`], like [`FileSystem::read`].
    fn write(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _offset: u64,
        _data: &[u8],
        _flags: OpenFlags,
    ) -> Result<usize> {
        Err(Errno::ENOSYS)
    }

    /// Called on each `close` of an open file (not only the last). The default,
    /// `ENOSYS`, says a close has nothing to do here: the close succeeds, and FUSE
    /// stops sending the request for the rest of the mount (a round trip less per
    /// close; a version loaded later by a live upgrade does not get it either).
    fn flush(&self, _req: &Request, _ino: Ino, _fh: u64) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Makes the file's data (and, unless `datasync`, its metadata) durable.
    fn fsync(&self, _req: &Request, _ino: Ino, _fh: u64, _datasync: bool) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Makes a directory's entries durable.
    fn fsyncdir(&self, _req: &Request, _ino: Ino, _fh: u64, _datasync: bool) -> Result {
        Err(Errno::ENOSYS)
    }

    /// Sets extended attribute `name` (with its namespace prefix, e.g. `user.x`);
    /// `flags` are [`xattr_flags`](crate::types::xattr_flags).
    fn setxattr(
        &self,
        _req: &Request,
        _ino: Ino,
        _name: &[u8],
        _value: &[u8],
        _flags: i32,
    ) -> Result {
        Err(Errno::EOPNOTSUPP)
    }

    /// Reads extended attribute `name` into `buf`; returns its length. With an empty
    /// `buf`, returns the length only; `ERANGE` if `buf` is too small, `ENODATA` if absent.
    fn getxattr(&self, _req: &Request, _ino: Ino, _name: &[u8], _buf: &mut [u8]) -> Result<usize> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Lists attribute names, each NUL-terminated, into `buf` (same length rules as
    /// `getxattr`).
    fn listxattr(&self, _req: &Request, _ino: Ino, _buf: &mut [u8]) -> Result<usize> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Removes extended attribute `name` (`ENODATA` if absent).
    fn removexattr(&self, _req: &Request, _ino: Ino, _name: &[u8]) -> Result {
        Err(Errno::EOPNOTSUPP)
    }

    /// Allocates (mode 0 or `FALLOC_FL_KEEP_SIZE`) or deallocates
    /// (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`) the byte range.
    ///
    /// A block-backed file system (see [`FileSystem::map_blocks`]) zeroes the blocks it
    /// allocates with [`BlockDevice::zero_blocks`](crate::block::BlockDevice::zero_blocks),
    /// or keeps them *unwritten* (as ext4's unwritten extents): `map_blocks` answers
    /// them as holes, which read as zeros, until a write maps them with `create`, which
    /// takes them as it would allocate a hole (ordered data, [`Extent::new`]).
    /// When punching a hole, the framework has already zeroed the partial blocks at the
    /// edges of the range within the file size; the file system frees the blocks lying
    /// wholly inside `[offset, min(offset + length, size))` and touches no data.
    fn fallocate(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _offset: u64,
        _length: u64,
        _mode: i32,
    ) -> Result {
        Err(Errno::EOPNOTSUPP)
    }

    /// `SEEK_DATA`/`SEEK_HOLE` (see [`whence`](crate::types::whence)); other whence
    /// values never reach the file system.
    fn lseek(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _offset: i64,
        _whence: i32,
    ) -> Result<i64> {
        Err(Errno::ENOSYS)
    }

    /// Copies `len` bytes from file `ino_in` at `off_in` to file `ino_out` at `off_out`
    /// inside the file system; returns the bytes copied. The default (`ENOSYS`) makes the
    /// kernel fall back to reading and writing.
    #[allow(clippy::too_many_arguments)]
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: Ino,
        _fh_in: u64,
        _off_in: u64,
        _ino_out: Ino,
        _fh_out: u64,
        _off_out: u64,
        _len: u64,
    ) -> Result<usize> {
        Err(Errno::ENOSYS)
    }

    /// The block device of a block-backed file system (the one its `mount` opened),
    /// `None` (the default) for others.
    ///
    /// A file system that returns its device must implement
    /// [`FileSystem::map_blocks`]: the framework then moves file data itself and never
    /// calls [`FileSystem::read`] or [`FileSystem::write`]. In the kernel the data lives
    /// in the page cache; the FUSE backend serves `read` and `write` through
    /// `map_blocks` and this device's block cache, and does what the kernel does around
    /// truncation and hole punching (zeroing partial blocks), so both builds behave the
    /// same.
    fn block_device(&self) -> Option<&crate::block::BlockDevice> {
        None
    }

    /// Journal credits the framework reserves around each buffered write and
    /// `page_mkwrite` of a block-backed file system with a journal (0: none). The
    /// framework starts a journal handle with these credits before it locks the page
    /// and stops it after the data is in the page and the size recorded, as ext4 does,
    /// so the allocating transaction cannot commit before the new blocks' data is
    /// dirty in the page cache (data=ordered then writes it first). The file system's
    /// own `Journal::start` calls in `map_blocks` and `setattr` nest in that handle and
    /// share these credits: give enough for one `map_blocks` allocation plus one
    /// `setattr`. A file system using this must start its journal handles before
    /// taking its own locks (jbd2's rule), since the framework's handle is outermost.
    const DATA_CREDITS: u32 = 0;

    /// The mount is switched between read-only and read-write (`mount -o remount,ro`
    /// or `rw`). Going read-only, the framework has synced the file system already.
    /// The default refuses (`EOPNOTSUPP`).
    fn remount(&self, _read_only: bool) -> Result {
        Err(Errno::EOPNOTSUPP)
    }

    /// Version of the state format [`FileSystem::export_state`] writes. 0 (the default):
    /// the file system cannot be live-upgraded while mounted.
    const STATE_VERSION: u32 = 0;

    /// Oldest state format [`FileSystem::import_state`] reads (a version reads formats
    /// `STATE_COMPAT..=STATE_VERSION`). The framework refuses an upgrade, or a
    /// downgrade, between versions whose formats do not meet.
    const STATE_COMPAT: u32 = Self::STATE_VERSION;

    /// Live upgrade, old version: hands this instance's state to the next version (see
    /// [`crate::upgrade`]). No call into the instance is running or will start unless the
    /// upgrade fails ([`FileSystem::resume`]); stop the instance's own threads, timers
    /// and sockets here. Leave the instance usable: it is dropped only once every
    /// superblock has switched. The default refuses (`EOPNOTSUPP`).
    fn export_state(&self) -> Result<crate::upgrade::Handover> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Live upgrade, new version: makes the instance from the state the old version
    /// exported. Read what is needed from the handed-over device (its buffer cache is
    /// warm); change nothing on disk: if another superblock fails to switch, this
    /// instance is dropped and the old one resumes. The default refuses (`EOPNOTSUPP`).
    fn import_state(_state: crate::upgrade::Handover) -> Result<Self> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Live upgrade failed after [`FileSystem::export_state`]: the instance serves again
    /// (restart what `export_state` stopped).
    fn resume(&self) {}

    /// Maps up to `count` (≥ 1) blocks of regular file `ino`, from `file_block`, to
    /// disk blocks: returns the first run, either blocks mapped contiguously on the
    /// disk (`disk_block` is the first) or a hole (`disk_block` 0), at most `count`
    /// long and at least 1.
    ///
    /// Block-backed file systems implement this (and [`FileSystem::block_device`]).
    /// **The file system maps file blocks, it never touches file data bytes**: the
    /// framework caches file data elsewhere (the kernel's page cache), so reading or
    /// writing a file data block through [`BlockDevice`](crate::block::BlockDevice)
    /// buffers would make a second, aliased copy whose writeback can overwrite newer
    /// data. The framework does all data I/O, zeroes partial blocks on truncation and
    /// hole punching, and updates the size and times after a write (with
    /// [`FileSystem::setattr`]). The one exception is
    /// [`BlockDevice::zero_blocks`](crate::block::BlockDevice::zero_blocks) on blocks
    /// the file system has just allocated without data (`fallocate`).
    ///
    /// - Without `create`, nothing is allocated.
    /// - With `create`, a hole at `file_block` is filled: the file system allocates
    ///   blocks in a journal transaction it starts and stops itself (of bounded size),
    ///   calls [`Handle::order_data`](crate::journal::Handle::order_data)`(ino,
    ///   byte_offset, byte_len)` for the new blocks inside that transaction (data=ordered:
    ///   the allocation must not commit before the data is written), updates its block
    ///   pointers and returns the run with [`Extent::new`] set: the blocks hold garbage
    ///   until the framework writes them. The size is not changed. An already mapped
    ///   `file_block` is returned as without `create`. `ENOSPC` when not even one block
    ///   could be allocated.
    /// - Map (and allocate) as long a run as possible, up to `count`: the framework
    ///   calls once per run, and one call (and transaction) per block would make bulk
    ///   I/O slow.
    /// - A run may be allocated wholly past the size: a write allocates up to its own
    ///   end at once, copies the data in, and only then sets the new size with
    ///   [`FileSystem::setattr`] (which also comes after a short write, with the size
    ///   it reached). The run's first block is the one being written now; the others
    ///   must not be able to show stale data until that `setattr`: a file system that,
    ///   like xv6fs, keeps the blocks past the size zeroed puts the file on its orphan
    ///   list when such a run is longer than one block (recovery frees blocks past the
    ///   size), and its `setattr` frees the blocks past the size it sets. A `setattr`
    ///   that grows the size orders the data it takes in
    ///   ([`Handle::order_data`](crate::journal::Handle::order_data)).
    fn map_blocks(
        &self,
        _ino: Ino,
        _file_block: u64,
        _count: u32,
        _create: bool,
    ) -> Result<Extent> {
        Err(Errno::ENOSYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_split() {
        let o = MountOptions::new(b"img", b"a,b=1,,c=x=y", false);
        let v: Vec<_> = o.iter().collect();
        assert_eq!(
            v,
            [
                (&b"a"[..], None),
                (b"b", Some(&b"1"[..])),
                (b"c", Some(&b"x=y"[..]))
            ]
        );
    }
}
