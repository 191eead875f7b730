// SPDX-License-Identifier: GPL-2.0
//! Error numbers, 1:1 with Linux `errno` values in both builds.

use core::fmt;

/// A Linux error number (positive), the error type of every file system operation.
///
/// Both backends pass it through unchanged: the kernel glue returns `-errno` to the VFS,
/// the FUSE backend replies with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Errno(i32);

/// The result type of file system operations.
pub type Result<T = ()> = core::result::Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident = $val:literal, $doc:literal;)*) => {
        impl Errno {
            $(#[doc = $doc] pub const $name: Errno = Errno($val);)*

            /// The symbolic name, e.g. `"ENOENT"`, for log lines.
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($val => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    EINTR = 4, "Interrupted system call.";
    EIO = 5, "I/O error.";
    ENXIO = 6, "No such device or address.";
    E2BIG = 7, "Argument list too long.";
    ENOEXEC = 8, "Exec format error (not a usable file system version).";
    EBADF = 9, "Bad file number.";
    EAGAIN = 11, "Try again.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    ENOTBLK = 15, "Block device required.";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    EXDEV = 18, "Cross-device link.";
    ENODEV = 19, "No such device.";
    ENOTDIR = 20, "Not a directory.";
    EISDIR = 21, "Is a directory.";
    EINVAL = 22, "Invalid argument.";
    ENFILE = 23, "File table overflow.";
    EMFILE = 24, "Too many open files.";
    ENOTTY = 25, "Not a typewriter.";
    EFBIG = 27, "File too large.";
    ENOSPC = 28, "No space left on device.";
    ESPIPE = 29, "Illegal seek.";
    EROFS = 30, "Read-only file system.";
    EMLINK = 31, "Too many links.";
    ERANGE = 34, "Math result not representable.";
    ENAMETOOLONG = 36, "File name too long.";
    ENOSYS = 38, "Function not implemented.";
    ENOTEMPTY = 39, "Directory not empty.";
    ELOOP = 40, "Too many symbolic links encountered.";
    ENODATA = 61, "No data available (no such attribute).";
    EPROTO = 71, "Protocol error (an incompatible state format).";
    EOVERFLOW = 75, "Value too large for defined data type.";
    EUCLEAN = 117, "Structure needs cleaning (corrupt file system).";
    EOPNOTSUPP = 95, "Operation not supported.";
    EDQUOT = 122, "Quota exceeded.";
    ESTALE = 116, "Stale file handle.";
    ETIMEDOUT = 110, "Connection timed out.";
    ECONNREFUSED = 111, "Connection refused.";
    ENOTCONN = 107, "Transport endpoint is not connected.";
    EADDRINUSE = 98, "Address already in use.";
}

impl Errno {
    /// Builds an `Errno` from a positive error number; `None` outside `1..4096`.
    pub const fn from_raw(errno: i32) -> Option<Errno> {
        if errno > 0 && errno < 4096 {
            Some(Errno(errno))
        } else {
            None
        }
    }

    /// The positive error number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The negative value the kernel returns for this error.
    pub const fn to_kernel(self) -> i32 {
        // Cannot overflow: the constructor keeps the value in 1..4096.
        0 - self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
