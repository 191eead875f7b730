// SPDX-License-Identifier: GPL-2.0
//! Logging for file systems: the kernel log in the kernel, standard error in FUSE mode.
//!
//! ```ignore
//! bento::error!("xv6fs: bad magic {:#x}", magic);
//! ```

use core::fmt;

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something failed (`KERN_ERR`).
    Error,
    /// Something is odd but handled (`KERN_WARNING`).
    Warning,
    /// Normal but notable (`KERN_INFO`).
    Info,
}

/// Emits one log line. Use the [`error!`](crate::error), [`warn!`](crate::warn) and
/// [`info!`](crate::info) macros instead.
pub fn emit(level: Level, args: fmt::Arguments<'_>) {
    crate::backend::log(level, args)
}

/// Displays a byte string (a file name, an option) with non-printable bytes escaped.
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Logs an error line.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Error, format_args!($($arg)*)) };
}

/// Logs a warning line.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Warning, format_args!($($arg)*)) };
}

/// Logs an informational line.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Info, format_args!($($arg)*)) };
}
