// SPDX-License-Identifier: GPL-2.0
//! Collections and fallible allocation: [`Vec`], [`Box`] and [`BTreeMap`], the `collections`
//! service.
//!
//! A file system uses these types instead of `std`'s or the kernel's, so that one source
//! builds both as a kernel module and as a FUSE program.
//!
//! # Every allocation is fallible
//!
//! Every method that may allocate returns [`Result`] and fails with [`Errno::ENOMEM`]
//! when memory runs out; the file system passes the error up (`?`) and the operation
//! fails with `ENOMEM`. The reasons:
//!
//! - **The kernel has no infallible allocation.** 6.12 has no `alloc` crate; its `KBox`,
//!   `KVec` and `RBTree` return an error from every allocation. There is no OOM abort to
//!   fall back on, and a panic is a kernel `BUG`: a file system must survive allocation
//!   failure.
//! - **One API in both builds.** If the userspace build offered `Vec::push` without a
//!   `Result`, code would compile under cargo and fail under Kbuild. So nothing here
//!   allocates behind the caller's back: [`Vec::new`] and [`BTreeMap::new`] allocate
//!   nothing, there is no `Clone` that allocates (use [`TryClone::try_clone`]), no
//!   `FromIterator`/`collect`/`Extend` (use [`Vec::try_extend`]), no `vec!`, `String` or
//!   `format!` (names are `Vec<u8>`; log lines are built with `bento::info!` and friends,
//!   which format without allocating).
//! - **No GFP flags.** Every call into a file system runs under `memalloc_nofs_save` in the
//!   kernel, so the backend allocates with `GFP_KERNEL` (made `GFP_NOFS` by the scope) and
//!   reclaim cannot re-enter the file system. (Code that runs outside a file-system call,
//!   such as a thread of the file system's own, must take care of this itself.)
//!
//! No method panics either: out-of-range positions give `None` or [`Errno::EINVAL`]
//! instead of the panics of `std`'s `insert`, `remove` or `range`.
//!
//! ```
//! use bento::collections::{BTreeMap, Vec};
//! # fn main() -> bento::Result {
//! let mut name = Vec::new();
//! name.extend_from_slice(b"hello")?;
//! let mut dir = BTreeMap::new();
//! dir.insert(name, 12u64)?;
//! assert_eq!(dir.get(&Vec::try_from_slice(b"hello")?), Some(&12));
//! # Ok(())
//! # }
//! ```
//!
//! # Deref to slices
//!
//! A [`Vec`] derefs to a slice, so `len`, `iter`, `get`, `sort_unstable`, `binary_search`,
//! `copy_from_slice` … come from `core`. In the userspace build that slice is `std`'s, which
//! also has the few methods that `alloc` adds (`sort`, `sort_by_key`, `to_vec`, `concat`,
//! `join`, `repeat`): they do not exist in the kernel. Use `sort_unstable*` and
//! [`Vec::try_from_slice`] instead.
//!
//! # Backends
//!
//! Userspace: `std`'s `Vec`, `Box` and `BTreeMap`. `Vec` growth is truly fallible
//! (`try_reserve`); the other allocations abort the process on exhaustion, as `std` does,
//! but [`fail_allocations_after`] makes any of them fail on demand so tests can walk the
//! `ENOMEM` paths.
//!
//! Kernel: `KVVec` (kmalloc, falling back to vmalloc for large buffers, so a big
//! [`Vec::zeroed`] block buffer does not need contiguous pages), `KBox`, and
//! `kernel::rbtree::RBTree`, which allocates one node per new key. The kernel build differs
//! only where noted: a `Vec` buffer is limited to `i32::MAX` bytes (kvmalloc's limit: larger
//! requests fail with `ENOMEM`), and [`BTreeMap::range`] and [`BTreeMap::last_key_value`]
//! take O(n) (the tree's seek cursor needs `&mut`).

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[cfg(not(kernel))]
use core::cell::Cell;
use core::fmt;
use core::ops::{Deref, DerefMut};

#[cfg(kernel)]
use kernel::alloc::{flags::GFP_KERNEL, KBox};

use crate::errno::{Errno, Result};

pub mod btree_map;
pub mod vec;

pub use btree_map::BTreeMap;
pub use vec::Vec;

/// Duplicates a value, allocating fallibly: the `Clone` of this crate's collections.
///
/// Every `Clone` type is `TryClone` (cloning it is assumed not to allocate: an
/// [`Arc`](crate::sync::Arc) clone only counts a reference). [`Vec`], [`Box`] and
/// [`BTreeMap`] implement it when their elements do, so nested collections
/// (`Vec<Vec<u8>>`) can be duplicated too.
///
/// ```
/// use bento::collections::{TryClone, Vec};
/// # fn main() -> bento::Result {
/// let mut names: Vec<Vec<u8>> = Vec::new();
/// names.push(Vec::try_from_slice(b"a")?)?;
/// let copy = names.try_clone()?;
/// assert_eq!(copy, names);
/// # Ok(())
/// # }
/// ```
pub trait TryClone: Sized {
    /// Returns a copy of `self`, or `ENOMEM`.
    fn try_clone(&self) -> Result<Self>;
}

impl<T: Clone> TryClone for T {
    fn try_clone(&self) -> Result<Self> {
        Ok(self.clone())
    }
}

/// An owned, heap-allocated value: `std::boxed::Box` / the kernel's `KBox`, created
/// fallibly.
///
/// ```
/// use bento::collections::Box;
/// # fn main() -> bento::Result {
/// let mut b = Box::new([0u8; 16])?;
/// b[3] = 7;
/// assert_eq!(Box::into_inner(b)[3], 7);
/// # Ok(())
/// # }
/// ```
pub struct Box<T> {
    #[cfg(not(kernel))]
    inner: std::boxed::Box<T>,
    #[cfg(kernel)]
    inner: KBox<T>,
}

impl<T> Box<T> {
    /// Moves `v` to the heap, or fails with `ENOMEM`.
    ///
    /// The value is built on the stack first: for large buffers use [`Vec::zeroed`].
    pub fn new(v: T) -> Result<Box<T>> {
        #[cfg(not(kernel))]
        let inner = {
            alloc_point()?;
            std::boxed::Box::new(v)
        };
        #[cfg(kernel)]
        let inner = KBox::new(v, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        Ok(Box { inner })
    }

    /// Moves the value out of the box, freeing the allocation.
    #[cfg(not(kernel))]
    pub fn into_inner(b: Box<T>) -> T {
        *b.inner
    }

    /// Moves the value out of the box, freeing the allocation.
    #[cfg(kernel)]
    pub fn into_inner(b: Box<T>) -> T {
        KBox::into_inner(b.inner)
    }

    /// A copy of the box and its contents.
    pub fn try_clone(&self) -> Result<Box<T>>
    where
        T: TryClone,
    {
        Box::new(T::try_clone(self)?)
    }
}

impl<T: TryClone> TryClone for Box<T> {
    fn try_clone(&self) -> Result<Self> {
        Box::try_clone(self)
    }
}

impl<T> Deref for Box<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for Box<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> AsRef<T> for Box<T> {
    fn as_ref(&self) -> &T {
        &self.inner
    }
}

impl<T> AsMut<T> for Box<T> {
    fn as_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for Box<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl<T: PartialEq> PartialEq for Box<T> {
    fn eq(&self, other: &Self) -> bool {
        *self.inner == *other.inner
    }
}

impl<T: Eq> Eq for Box<T> {}

#[cfg(not(kernel))]
thread_local! {
    /// How many more allocations this thread may make; `None`: no limit.
    static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Counts one allocation against the budget set by [`fail_allocations_after`].
///
/// Every allocating function of `collections` and `sync` calls it before allocating.
#[cfg(not(kernel))]
pub(crate) fn alloc_point() -> Result {
    BUDGET.with(|b| match b.get() {
        None => Ok(()),
        Some(0) => Err(Errno::ENOMEM),
        Some(n) => {
            b.set(n.checked_sub(1));
            Ok(())
        }
    })
}

/// *Userspace build only, for tests:* after `n` more successful allocations, every
/// allocation by this thread through `bento::collections` or `bento::sync` fails with
/// `ENOMEM`, until the returned guard is dropped.
///
/// What counts as one allocation is what allocates in the kernel: each `Box::new`,
/// `Arc::new`, `Mutex::new`/`RwLock::new`, each [`BTreeMap::insert`] (one tree node, even
/// when the key is present), and each growth of a [`Vec`]'s capacity. Only the calling
/// thread is affected, so tests may run in parallel. Guards nest; dropping one restores
/// the previous limit.
///
/// The usual pattern walks every failure point of an operation in turn:
///
/// ```
/// use bento::collections::{fail_allocations_after, Vec};
/// use bento::Errno;
///
/// fn build() -> bento::Result<Vec<Vec<u8>>> {
///     let mut v = Vec::with_capacity(2)?;
///     v.push(Vec::try_from_slice(b"x")?)?;
///     v.push(Vec::try_from_slice(b"y")?)?;
///     Ok(v)
/// }
///
/// let mut n = 0;
/// loop {
///     let _fail = fail_allocations_after(n);
///     match build() {
///         Err(e) => assert_eq!(e, Errno::ENOMEM),
///         Ok(v) => {
///             assert_eq!(v.len(), 2);
///             break;
///         }
///     }
///     n += 1;
/// }
/// assert_eq!(n, 3);
/// ```
#[cfg(not(kernel))]
#[must_use = "allocations fail only while the guard lives"]
pub fn fail_allocations_after(n: usize) -> FailAllocations {
    let prev = BUDGET.with(|b| b.replace(Some(n)));
    FailAllocations {
        prev,
        _not_send: core::marker::PhantomData,
    }
}

/// The guard returned by [`fail_allocations_after`]; dropping it restores the previous
/// allocation limit of the thread.
#[cfg(not(kernel))]
pub struct FailAllocations {
    prev: Option<usize>,
    // The limit belongs to the thread that set it.
    _not_send: core::marker::PhantomData<*const ()>,
}

#[cfg(not(kernel))]
impl FailAllocations {
    /// How many more allocations will succeed.
    pub fn remaining(&self) -> usize {
        BUDGET.with(|b| b.get()).unwrap_or(usize::MAX)
    }
}

#[cfg(not(kernel))]
impl Drop for FailAllocations {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.prev));
    }
}

#[cfg(not(kernel))]
impl fmt::Debug for FailAllocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailAllocations")
            .field("remaining", &self.remaining())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_basics() {
        let mut b = Box::new(5u32).unwrap();
        *b += 1;
        assert_eq!(*b, 6);
        assert_eq!(*b.as_ref(), 6);
        let c = b.try_clone().unwrap();
        assert_eq!(b, c);
        assert_eq!(format!("{c:?}"), "6");
        assert_eq!(Box::into_inner(c), 6);
    }

    #[test]
    fn box_allocation_failure() {
        let _g = fail_allocations_after(0);
        let r: Result<Box<u64>> = Box::new(1);
        assert_eq!(r.err(), Some(Errno::ENOMEM));
    }

    #[test]
    fn nested_try_clone() {
        let mut inner = Vec::new();
        inner.extend_from_slice(b"abc").unwrap();
        let mut outer: Vec<Box<Vec<u8>>> = Vec::new();
        outer.push(Box::new(inner).unwrap()).unwrap();
        let copy = TryClone::try_clone(&outer).unwrap();
        assert_eq!(copy, outer);
        // Three allocations: the outer buffer, the box, the inner buffer.
        for n in 0..3 {
            let _g = fail_allocations_after(n);
            assert_eq!(outer.try_clone().err(), Some(Errno::ENOMEM));
        }
        let g = fail_allocations_after(3);
        assert!(outer.try_clone().is_ok());
        assert_eq!(g.remaining(), 0);
    }

    #[test]
    fn fault_guards_nest_and_are_per_thread() {
        let outer = fail_allocations_after(5);
        {
            let inner = fail_allocations_after(0);
            assert_eq!(alloc_point(), Err(Errno::ENOMEM));
            assert_eq!(inner.remaining(), 0);
            // Another thread is not limited.
            std::thread::scope(|s| {
                s.spawn(|| assert_eq!(alloc_point(), Ok(())))
                    .join()
                    .unwrap();
            });
        }
        assert_eq!(outer.remaining(), 5);
        assert_eq!(alloc_point(), Ok(()));
        assert_eq!(outer.remaining(), 4);
        drop(outer);
        assert_eq!(BUDGET.with(|b| b.get()), None);
    }
}
