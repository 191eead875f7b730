// SPDX-License-Identifier: GPL-2.0
//! Plain data types exchanged between a file system and the framework.
//!
//! The `#[repr(C)]` ones cross the ops vtable between fs/bento and a file system module
//! (see [`crate::abi`]), so their layout is part of [`crate::abi::ABI_VERSION`].

/// An inode number. The root directory is always [`ROOT_INO`] (as in FUSE).
pub type Ino = u64;

/// Inode number of the root directory.
pub const ROOT_INO: Ino = 1;

/// The kind of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FileType {
    /// Regular file.
    RegularFile = 1,
    /// Directory.
    Directory = 2,
    /// Symbolic link.
    Symlink = 3,
    /// Named pipe.
    NamedPipe = 4,
    /// Character device.
    CharDevice = 5,
    /// Block device.
    BlockDevice = 6,
    /// Unix domain socket.
    Socket = 7,
}

impl FileType {
    /// The `S_IFMT` bits of this kind.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::RegularFile => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::NamedPipe => 0o010000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Socket => 0o140000,
        }
    }

    /// The kind encoded in the `S_IFMT` bits of `mode`, if any.
    pub const fn from_mode(mode: u32) -> Option<FileType> {
        match mode & 0o170000 {
            0o100000 => Some(FileType::RegularFile),
            0o040000 => Some(FileType::Directory),
            0o120000 => Some(FileType::Symlink),
            0o010000 => Some(FileType::NamedPipe),
            0o020000 => Some(FileType::CharDevice),
            0o060000 => Some(FileType::BlockDevice),
            0o140000 => Some(FileType::Socket),
            _ => None,
        }
    }

    /// The `d_type` value (`DT_*`) used in directory listings.
    pub const fn dtype(self) -> u8 {
        match self {
            FileType::RegularFile => 8,
            FileType::Directory => 4,
            FileType::Symlink => 10,
            FileType::NamedPipe => 1,
            FileType::CharDevice => 2,
            FileType::BlockDevice => 6,
            FileType::Socket => 12,
        }
    }
}

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C)]
pub struct Timespec {
    /// Seconds since the epoch (may be negative).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

impl Timespec {
    /// Builds a timestamp from seconds and nanoseconds.
    pub const fn new(sec: i64, nsec: u32) -> Self {
        Timespec { sec, nsec }
    }
}

/// Attributes of an inode, as `stat(2)` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Size in bytes.
    pub size: u64,
    /// Allocated space in 512-byte units.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last data modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Kind of inode.
    pub kind: FileType,
    /// Permission bits (`0o7777`).
    pub perm: u16,
    /// Number of hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device inodes (`makedev` encoding of Linux's `new_encode_dev`).
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Inode generation, for NFS file handles.
    pub generation: u32,
}

impl Attr {
    /// Full `st_mode`: kind bits and permission bits.
    pub const fn mode(&self) -> u32 {
        self.kind.mode_bits() | (self.perm as u32 & 0o7777)
    }
}

/// The answer to `lookup` (and later `mknod`/`mkdir`/`create`/...): the inode's attributes.
///
/// Both backends count lookups themselves; a file system never sees a lookup count.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Entry {
    /// Attributes of the inode found.
    pub attr: Attr,
}

/// The answer to `open`/`opendir`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Open {
    /// File handle passed back to `read`/`release`/... for this open file.
    pub fh: u64,
    /// Read bypassing the page cache (FUSE `direct_io`).
    pub direct_io: bool,
    /// Keep cached pages from earlier opens (FUSE `keep_cache`).
    pub keep_cache: bool,
}

/// File system statistics, as `statfs(2)` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Statfs {
    /// Total data blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Maximum name length.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}

/// Who is asking: the credentials of the calling task.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Request {
    /// File system user id of the caller.
    pub uid: u32,
    /// File system group id of the caller.
    pub gid: u32,
    /// Thread group id of the caller (0 when the kernel itself calls).
    pub pid: u32,
}

/// Open flags (`O_*` as in `open(2)`).
pub type OpenFlags = i32;

/// A time to set with `setattr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// The current time (`UTIME_NOW`).
    Now,
    /// This time.
    At(Timespec),
}

/// The attributes `setattr` changes; `None` leaves one as it is.
///
/// Permission checks (and clearing set-id bits on chown or truncate) are done by the
/// kernel before the call arrives, in both builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (`0o7777`).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend with a hole).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
    /// New change time (otherwise the file system sets it to now on any change).
    pub ctime: Option<Timespec>,
    /// File handle when the change comes through an open file (`ftruncate`).
    pub fh: Option<u64>,
}

/// A run of blocks of a file mapped to the disk, the answer of `map_blocks`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Extent {
    /// First disk block, or 0 for a hole (nothing allocated).
    pub disk_block: u64,
    /// Number of file blocks, from the one asked for, that map contiguously (at least 1).
    pub len: u32,
    /// The blocks were allocated by this call: their contents are garbage until written.
    pub new: bool,
}

/// `rename` flags (`renameat2(2)`).
pub mod rename_flags {
    /// Fail with `EEXIST` if the target exists.
    pub const NOREPLACE: u32 = 1;
    /// Atomically exchange source and target (both must exist).
    pub const EXCHANGE: u32 = 2;
    /// Leave a whiteout (overlayfs); not supported by the samples.
    pub const WHITEOUT: u32 = 4;
}

/// `setxattr` flags.
pub mod xattr_flags {
    /// Fail with `EEXIST` if the attribute exists.
    pub const CREATE: i32 = 1;
    /// Fail with `ENODATA` if the attribute does not exist.
    pub const REPLACE: i32 = 2;
}

/// `lseek` whence values the framework passes on (others are handled by the kernel).
pub mod whence {
    /// Next offset at or after the given one that holds data.
    pub const SEEK_DATA: i32 = 3;
    /// Next hole at or after the given one (end of file counts as a hole).
    pub const SEEK_HOLE: i32 = 4;
}

/// The owner and mode of a new inode, as the kernel's `inode_init_owner()` computes them:
/// the caller's uid; the caller's gid, or the parent's when the parent directory is
/// set-group-ID (then new directories inherit `S_ISGID` too, and a non-member creating a
/// file loses `S_ISGID`). `mode` already has the umask applied (both builds do that).
pub fn new_inode_owner(req: &Request, parent: &Attr, kind: FileType, mode: u32) -> (u32, u32, u32) {
    const S_ISGID: u32 = 0o2000;
    const S_IXGRP: u32 = 0o010;
    let mut mode = mode & 0o7777;
    if u32::from(parent.perm) & S_ISGID == 0 {
        return (req.uid, req.gid, mode);
    }
    if kind == FileType::Directory {
        mode |= S_ISGID;
    } else if mode & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP)
        && req.gid != parent.gid
        && req.uid != 0
    {
        mode &= !S_ISGID;
    }
    (req.uid, parent.gid, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(perm: u16, gid: u32) -> Attr {
        Attr {
            ino: 5,
            size: 0,
            blocks: 0,
            atime: Timespec::default(),
            mtime: Timespec::default(),
            ctime: Timespec::default(),
            kind: FileType::Directory,
            perm,
            nlink: 2,
            uid: 0,
            gid,
            rdev: 0,
            blksize: 4096,
            generation: 0,
        }
    }

    #[test]
    fn owner_of_new_inodes() {
        let req = Request {
            uid: 1000,
            gid: 1000,
            pid: 1,
        };
        // Plain parent: the caller's ids and the mode as given.
        assert_eq!(
            new_inode_owner(&req, &dir(0o755, 50), FileType::RegularFile, 0o644),
            (1000, 1000, 0o644)
        );
        // Set-gid parent: the parent's group; directories inherit the bit.
        assert_eq!(
            new_inode_owner(&req, &dir(0o2775, 50), FileType::Directory, 0o755),
            (1000, 50, 0o2755)
        );
        // A non-member's set-gid executable file loses the bit; root keeps it.
        assert_eq!(
            new_inode_owner(&req, &dir(0o2775, 50), FileType::RegularFile, 0o2755),
            (1000, 50, 0o755)
        );
        let root = Request {
            uid: 0,
            gid: 0,
            pid: 1,
        };
        assert_eq!(
            new_inode_owner(&root, &dir(0o2775, 50), FileType::RegularFile, 0o2755),
            (0, 50, 0o2755)
        );
    }

    #[test]
    fn file_types_round_trip() {
        for k in [
            FileType::RegularFile,
            FileType::Directory,
            FileType::Symlink,
            FileType::NamedPipe,
            FileType::CharDevice,
            FileType::BlockDevice,
            FileType::Socket,
        ] {
            assert_eq!(FileType::from_mode(k.mode_bits() | 0o644), Some(k));
        }
        assert_eq!(FileType::from_mode(0o644), None);
    }
}
