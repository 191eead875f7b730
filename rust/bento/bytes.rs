// SPDX-License-Identifier: GPL-2.0
//! Little-endian encoding of on-disk structures without panics.
//!
//! A [`Reader`] or [`Writer`] works on a byte slice at fixed offsets and remembers whether
//! any access fell outside it instead of panicking (a panic in the kernel is a BUG);
//! `finish` turns that into an error. With the offsets of a format checked against the
//! structure size once, no access ever fails, but a bug becomes `EIO`, not a crash.
//!
//! ```
//! use bento::bytes::{Reader, Writer};
//! let mut b = [0u8; 8];
//! let mut w = Writer::new(&mut b);
//! w.u32(0, 7);
//! w.u16(4, 9);
//! w.finish().unwrap();
//! let r = Reader::new(&b);
//! assert_eq!((r.u32(0), r.u16(4)), (7, 9));
//! assert!(r.finish().is_ok());
//! ```

use core::cell::Cell;

use crate::errno::{Errno, Result};

#[inline]
fn chunk<const N: usize>(b: &[u8], off: usize) -> Option<&[u8; N]> {
    b.get(off..)?.first_chunk::<N>()
}

#[inline]
fn chunk_mut<const N: usize>(b: &mut [u8], off: usize) -> Option<&mut [u8; N]> {
    b.get_mut(off..)?.first_chunk_mut::<N>()
}

/// Reads little-endian values at offsets of a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    bad: Cell<bool>,
}

macro_rules! read_fns {
    ($($name:ident: $t:ty),*) => {$(
        #[doc = concat!("The `", stringify!($t), "` at `off` (0 if out of range; `finish` reports it).")]
        #[inline]
        pub fn $name(&self, off: usize) -> $t {
            match chunk::<{ core::mem::size_of::<$t>() }>(self.buf, off) {
                Some(a) => <$t>::from_le_bytes(*a),
                None => {
                    self.bad.set(true);
                    0
                }
            }
        }
    )*};
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            bad: Cell::new(false),
        }
    }

    read_fns!(u8: u8, u16: u16, u32: u32, u64: u64, i64: i64);

    /// The `len` bytes at `off` (empty if out of range; `finish` reports it).
    #[inline]
    pub fn bytes(&self, off: usize, len: usize) -> &'a [u8] {
        match off.checked_add(len).and_then(|end| self.buf.get(off..end)) {
            Some(s) => s,
            None => {
                self.bad.set(true);
                &[]
            }
        }
    }

    /// The `N` bytes at `off` as an array (zeros if out of range).
    #[inline]
    pub fn array<const N: usize>(&self, off: usize) -> [u8; N] {
        match chunk::<N>(self.buf, off) {
            Some(a) => *a,
            None => {
                self.bad.set(true);
                [0; N]
            }
        }
    }

    /// `EIO` if any access was out of range.
    #[inline]
    pub fn finish(&self) -> Result {
        if self.bad.get() {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }
}

/// Writes little-endian values at offsets of a byte slice.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    bad: bool,
}

macro_rules! write_fns {
    ($($name:ident: $t:ty),*) => {$(
        #[doc = concat!("Writes a `", stringify!($t), "` at `off` (`finish` reports an out-of-range write).")]
        #[inline]
        pub fn $name(&mut self, off: usize, v: $t) {
            match chunk_mut::<{ core::mem::size_of::<$t>() }>(self.buf, off) {
                Some(a) => *a = v.to_le_bytes(),
                None => self.bad = true,
            }
        }
    )*};
}

impl<'a> Writer<'a> {
    /// A writer over `buf`.
    #[inline]
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, bad: false }
    }

    write_fns!(u8: u8, u16: u16, u32: u32, u64: u64, i64: i64);

    /// Copies `data` to `off`.
    #[inline]
    pub fn bytes(&mut self, off: usize, data: &[u8]) {
        match off
            .checked_add(data.len())
            .and_then(|end| self.buf.get_mut(off..end))
        {
            Some(s) => s.copy_from_slice(data),
            None => self.bad = true,
        }
    }

    /// `EIO` if any write was out of range.
    #[inline]
    pub fn finish(&self) -> Result {
        if self.bad {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_is_reported_not_a_panic() {
        let b = [1u8, 2, 3];
        let r = Reader::new(&b);
        assert_eq!(r.u16(1), 0x0302);
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u32(0), 0);
        assert_eq!(r.bytes(2, usize::MAX), &[] as &[u8]);
        assert_eq!(r.finish(), Err(Errno::EIO));
        let mut m = [0u8; 3];
        let mut w = Writer::new(&mut m);
        w.u64(0, 1);
        assert_eq!(w.finish(), Err(Errno::EIO));
    }
}
