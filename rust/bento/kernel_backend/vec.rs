// SPDX-License-Identifier: GPL-2.0
//! What [`bento::collections::Vec`](crate::collections::Vec) needs from `KVVec` beyond
//! 6.12's API: a bounded, fallible `reserve`, `pop` and `truncate` (6.12's `KVec` has
//! neither), and a `Send`/`Sync` owning iterator. Everything else (`insert`, `remove`,
//! `retain`, ...) is built in `collections/vec.rs` from these, safely, and is the same code
//! in both builds.

use core::mem::size_of;
use core::ptr;

use kernel::alloc::{allocator::KVmalloc, flags::GFP_KERNEL, kvec, KVVec};

use crate::errno::{Errno, Result};

/// The largest buffer a `Vec` asks for, in bytes: `kvmalloc` refuses anything larger, with a
/// `WARN` unless told `__GFP_NOWARN`. Asking for more fails with `ENOMEM` up front, so that a
/// size read from a corrupt image gives an error and not a warning in the kernel log.
const MAX_ALLOC_BYTES: usize = i32::MAX as usize;

/// Makes room for `additional` more elements (an amortised growth, as `KVVec::reserve`
/// does), or fails with `ENOMEM` leaving `v` unchanged.
pub(crate) fn reserve<T>(v: &mut KVVec<T>, additional: usize) -> Result {
    let (len, cap) = (v.len(), v.capacity());
    // `len <= cap` always (zero-sized types: `cap == usize::MAX`).
    if cap.saturating_sub(len) >= additional {
        return Ok(());
    }
    // What `KVVec::reserve` will ask the allocator for: the larger of twice the capacity and
    // what is needed.
    let want = len
        .checked_add(additional)
        .ok_or(Errno::ENOMEM)?
        .max(cap.saturating_mul(2));
    match want.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= MAX_ALLOC_BYTES => {}
        _ => return Err(Errno::ENOMEM),
    }
    v.reserve(additional, GFP_KERNEL).map_err(|_| Errno::ENOMEM)
}

/// Removes and returns the last element.
pub(crate) fn pop<T>(v: &mut KVVec<T>) -> Option<T> {
    let new_len = v.len().checked_sub(1)?;
    // SAFETY: `new_len` is below the current length, so below the capacity, and the
    // elements before it stay initialised.
    unsafe { v.set_len(new_len) };
    // SAFETY: The element at `new_len` is initialised (it was below the old length), lies
    // within the allocation, and is no longer part of the vector: it is moved out exactly
    // once, here.
    Some(unsafe { v.as_mut_ptr().add(new_len).read() })
}

/// Drops the elements from `len` on; no effect if the vector is not longer than `len`. The
/// capacity is kept.
pub(crate) fn truncate<T>(v: &mut KVVec<T>, len: usize) {
    let count = match v.len().checked_sub(len) {
        Some(count) if count > 0 => count,
        _ => return,
    };
    // SAFETY: `len` is below the current length, so `len..len + count` lies within the
    // allocation (for a zero-sized `T` the offset is a no-op).
    let tail = ptr::slice_from_raw_parts_mut(unsafe { v.as_mut_ptr().add(len) }, count);
    // SAFETY: `len` is below the current length and the elements before it stay initialised.
    // Shortening first means a panicking destructor leaks the rest of the tail rather than
    // letting the vector drop it a second time (as `std` does).
    unsafe { v.set_len(len) };
    // SAFETY: `tail` holds the `count` initialised elements just cut off the vector: nothing
    // else can reach them, and they are dropped exactly once, here.
    unsafe { ptr::drop_in_place(tail) };
}

/// `KVVec`'s owning iterator, `Send` and `Sync` like `std::vec::IntoIter` (6.12's lacks both
/// impls: its raw pointers make it neither).
pub(crate) struct IntoIter<T>(kvec::IntoIter<T, KVmalloc>);

impl<T> IntoIter<T> {
    pub(crate) fn new(v: KVVec<T>) -> Self {
        IntoIter(v.into_iter())
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

// SAFETY: The iterator owns its buffer and the elements left in it, and nothing else points
// into the buffer (the vector was consumed): sending it sends those `T`s, as for
// `std::vec::IntoIter`.
unsafe impl<T: Send> Send for IntoIter<T> {}

// SAFETY: `&IntoIter` gives no access to the elements at all (`next` takes `&mut self`), so
// sharing it is harmless whenever sharing `T` is (the bound `std::vec::IntoIter` has).
unsafe impl<T: Sync> Sync for IntoIter<T> {}
