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
