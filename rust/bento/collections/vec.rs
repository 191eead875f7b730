// SPDX-License-Identifier: GPL-2.0
//! [`Vec`], a growable array whose every allocation is fallible.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::{Deref, DerefMut};

#[cfg(kernel)]
use kernel::alloc::flags::GFP_KERNEL;

#[cfg(not(kernel))]
use super::alloc_point;
use super::TryClone;
use crate::errno::{Errno, Result};
#[cfg(kernel)]
use crate::kernel_backend::vec as backend;

/// The backend's vector: `std`'s, or the kernel's `KVVec` (kmalloc, or vmalloc when large).
#[cfg(not(kernel))]
type Inner<T> = std::vec::Vec<T>;
#[cfg(kernel)]
type Inner<T> = kernel::alloc::KVVec<T>;

/// A contiguous growable array: `std::vec::Vec` in userspace, the kernel's `KVVec` in the
/// kernel. Owned byte strings (file names, xattr values, block buffers) are `Vec<u8>`.
///
/// Growing the capacity is the only thing that allocates, and it is fallible: [`push`],
/// [`insert`], [`extend_from_slice`], [`resize`], [`reserve`] and the constructors return
/// `ENOMEM` when it fails, leaving the vector as it was. Positions out of range give `None`
/// or `EINVAL`, never a panic.
///
/// ```
/// use bento::collections::Vec;
/// # fn main() -> bento::Result {
/// let mut v = Vec::new();
/// v.push(1u32)?;
/// v.extend_from_slice(&[2, 3])?;
/// v.insert(0, 0)?;
/// assert_eq!(v, [0, 1, 2, 3]);
/// assert_eq!(v.remove(9), None);
/// assert!(v.insert(9, 4).is_err());
/// assert_eq!(v.iter().sum::<u32>(), 6);
/// let block = Vec::zeroed(4096)?;
/// assert!(block.iter().all(|&b| b == 0));
/// # Ok(())
/// # }
/// ```
///
/// [`push`]: Vec::push
/// [`insert`]: Vec::insert
/// [`extend_from_slice`]: Vec::extend_from_slice
/// [`resize`]: Vec::resize
/// [`reserve`]: Vec::reserve
pub struct Vec<T> {
    inner: Inner<T>,
}

impl<T> Vec<T> {
    /// An empty vector; allocates nothing.
    pub const fn new() -> Vec<T> {
        Vec {
            inner: Inner::new(),
        }
    }

    /// An empty vector with room for at least `capacity` elements, or `ENOMEM`.
    pub fn with_capacity(capacity: usize) -> Result<Vec<T>> {
        let mut v = Vec::new();
        v.grow(capacity, true)?;
        Ok(v)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the vector has no elements.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// How many elements fit without allocating.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Makes room for at least `additional` more elements, or fails with `ENOMEM` (also
    /// when the size would overflow).
    pub fn reserve(&mut self, additional: usize) -> Result {
        self.grow(additional, false)
    }

    /// Appends `v`, or fails with `ENOMEM` (`v` is then dropped).
    pub fn push(&mut self, v: T) -> Result {
        self.grow(1, false)?;
        self.push_reserved(v)
    }

    /// Inserts `v` at `index`, shifting later elements up. `EINVAL` if `index > len`,
    /// `ENOMEM` if the vector cannot grow.
    pub fn insert(&mut self, index: usize, v: T) -> Result {
        if index > self.inner.len() {
            return Err(Errno::EINVAL);
        }
        self.push(v)?;
        // `index <= len - 1` now: move the new last element down to `index`.
        if let Some(tail) = self.inner.get_mut(index..) {
            tail.rotate_right(1);
        }
        Ok(())
    }

    /// Removes and returns the element at `index`, shifting later elements down; `None` if
    /// `index >= len`.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        if index >= self.inner.len() {
            return None;
        }
        // Move the element at `index` to the end, the later ones down by one.
        self.inner.get_mut(index..)?.rotate_left(1);
        self.pop()
    }

    /// Removes and returns the element at `index`, replacing it with the last element
    /// (O(1), changes the order); `None` if `index >= len`.
    pub fn swap_remove(&mut self, index: usize) -> Option<T> {
        let last = self.inner.len().checked_sub(1)?;
        if index > last {
            return None;
        }
        self.inner.swap(index, last);
        self.pop()
    }

    /// Removes every element; the capacity is kept.
    pub fn clear(&mut self) {
        self.truncate(0)
    }

    /// Keeps only the elements for which `keep` returns `true`, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        // Swap each kept element down to the end of the kept prefix (`kept <= i`): the kept
        // ones keep their order, `keep` sees every element once and in order, and the
        // rejected ones end up after the prefix, to be dropped.
        let mut kept = 0usize;
        for i in 0..self.inner.len() {
            if self.inner.get(i).is_some_and(&mut keep) {
                self.inner.swap(kept, i);
                kept = kept.saturating_add(1);
            }
        }
        self.truncate(kept);
    }

    /// Appends every item of `iter`, or fails with `ENOMEM`. On failure the items appended
    /// before it stay, and the rest of `iter` is dropped.
    pub fn try_extend<I: IntoIterator<Item = T>>(&mut self, iter: I) -> Result {
        let iter = iter.into_iter();
        self.grow(iter.size_hint().0, false)?;
        for v in iter {
            self.push(v)?;
        }
        Ok(())
    }

    /// The elements as a slice.
    pub fn as_slice(&self) -> &[T] {
        &self.inner
    }

    /// The elements as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.inner
    }

    /// A copy of the vector and its elements.
    pub fn try_clone(&self) -> Result<Vec<T>>
    where
        T: TryClone,
    {
        let mut v = Vec::with_capacity(self.len())?;
        for e in self.iter() {
            v.push(e.try_clone()?)?;
        }
        Ok(v)
    }
}

impl<T: Copy> Vec<T> {
    /// A vector holding a copy of `s`, or `ENOMEM`: the owned form of a name.
    pub fn try_from_slice(s: &[T]) -> Result<Vec<T>> {
        let mut v = Vec::with_capacity(s.len())?;
        v.extend_reserved(s)?;
        Ok(v)
    }

    /// Appends a copy of `s`, or fails with `ENOMEM` (appending nothing).
    pub fn extend_from_slice(&mut self, s: &[T]) -> Result {
        self.grow(s.len(), false)?;
        self.extend_reserved(s)
    }

    /// Sets the length to `len`: truncates, or appends copies of `v`. Fails with `ENOMEM`
    /// (changing nothing) if the vector cannot grow.
    pub fn resize(&mut self, len: usize, v: T) -> Result {
        match len.checked_sub(self.inner.len()) {
            None | Some(0) => {
                self.truncate(len);
                Ok(())
            }
            Some(n) => {
                self.grow(n, true)?;
                self.fill_reserved(n, v)
            }
        }
    }
}

// The backend primitives: the only methods whose code differs between the builds. The rest
// of `Vec` is built on them (and on slice methods), so the cargo tests exercise the code
// the kernel runs.
impl<T> Vec<T> {
    /// Makes room for `additional` elements beyond the length (one allocation, amortized
    /// unless `exact`), so that pushing as many cannot fail; `ENOMEM` leaves `self` as it
    /// was.
    #[cfg(not(kernel))]
    fn grow(&mut self, additional: usize, exact: bool) -> Result {
        // `capacity >= len` always; zero-sized types have capacity `usize::MAX`.
        if self.inner.capacity().saturating_sub(self.inner.len()) >= additional {
            return Ok(());
        }
        alloc_point()?;
        let r = if exact {
            self.inner.try_reserve_exact(additional)
        } else {
            self.inner.try_reserve(additional)
        };
        r.map_err(|_| Errno::ENOMEM)
    }

    /// Makes room for `additional` elements beyond the length (one allocation, amortized:
    /// `KVVec` has no exact reservation), so that pushing as many cannot fail; `ENOMEM` leaves
    /// `self` as it was.
    #[cfg(kernel)]
    fn grow(&mut self, additional: usize, _exact: bool) -> Result {
        backend::reserve(&mut self.inner, additional)
    }

    /// Appends `v` within the capacity reserved by [`grow`](Vec::grow).
    fn push_reserved(&mut self, v: T) -> Result {
        #[cfg(not(kernel))]
        self.inner.push(v);
        // Cannot allocate (nor fail): `grow` made room.
        #[cfg(kernel)]
        self.inner.push(v, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        Ok(())
    }

    /// Removes and returns the last element.
    #[cfg(not(kernel))]
    pub fn pop(&mut self) -> Option<T> {
        self.inner.pop()
    }

    /// Removes and returns the last element.
    #[cfg(kernel)]
    pub fn pop(&mut self) -> Option<T> {
        backend::pop(&mut self.inner)
    }

    /// Shortens the vector to `len` elements, dropping the rest; no effect if it is not
    /// longer. The capacity is kept.
    pub fn truncate(&mut self, len: usize) {
        #[cfg(not(kernel))]
        self.inner.truncate(len);
        #[cfg(kernel)]
        backend::truncate(&mut self.inner, len);
    }
}

impl<T: Copy> Vec<T> {
    /// Appends a copy of `s` within the capacity reserved by [`grow`](Vec::grow).
    fn extend_reserved(&mut self, s: &[T]) -> Result {
        #[cfg(not(kernel))]
        self.inner.extend_from_slice(s);
        // Cannot allocate (nor fail): `grow` made room.
        #[cfg(kernel)]
        self.inner
            .extend_from_slice(s, GFP_KERNEL)
            .map_err(|_| Errno::ENOMEM)?;
        Ok(())
    }

    /// Appends `n` copies of `v` within the capacity reserved by [`grow`](Vec::grow).
    fn fill_reserved(&mut self, n: usize, v: T) -> Result {
        #[cfg(not(kernel))]
        self.inner.resize(self.inner.len().saturating_add(n), v);
        // Cannot allocate (nor fail): `grow` made room.
        #[cfg(kernel)]
        self.inner
            .extend_with(n, v, GFP_KERNEL)
            .map_err(|_| Errno::ENOMEM)?;
        Ok(())
    }
}

impl Vec<u8> {
    /// `len` zero bytes (a block buffer), or `ENOMEM`.
    pub fn zeroed(len: usize) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        v.resize(len, 0)?;
        Ok(v)
    }
}

impl<T: TryClone> TryClone for Vec<T> {
    fn try_clone(&self) -> Result<Self> {
        Vec::try_clone(self)
    }
}

impl<T> Default for Vec<T> {
    fn default() -> Self {
        Vec::new()
    }
}

impl<T> Deref for Vec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.inner
    }
}

impl<T> DerefMut for Vec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.inner
    }
}

impl<T> AsRef<[T]> for Vec<T> {
    fn as_ref(&self) -> &[T] {
        &self.inner
    }
}

impl<T> AsMut<[T]> for Vec<T> {
    fn as_mut(&mut self) -> &mut [T] {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for Vec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<T: PartialEq<U>, U> PartialEq<Vec<U>> for Vec<T> {
    fn eq(&self, other: &Vec<U>) -> bool {
        self.inner[..] == other.inner[..]
    }
}

impl<T: PartialEq<U>, U> PartialEq<[U]> for Vec<T> {
    fn eq(&self, other: &[U]) -> bool {
        self.inner[..] == *other
    }
}

impl<T: PartialEq<U>, U> PartialEq<&[U]> for Vec<T> {
    fn eq(&self, other: &&[U]) -> bool {
        self.inner[..] == **other
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<[U; N]> for Vec<T> {
    fn eq(&self, other: &[U; N]) -> bool {
        self.inner[..] == other[..]
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<&[U; N]> for Vec<T> {
    fn eq(&self, other: &&[U; N]) -> bool {
        self.inner[..] == other[..]
    }
}

impl<T: Eq> Eq for Vec<T> {}

/// Lexicographic, as for slices: a `Vec<u8>` name orders as its bytes.
impl<T: PartialOrd> PartialOrd for Vec<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.inner[..].partial_cmp(&other.inner[..])
    }
}

/// Lexicographic, as for slices, so a `Vec<u8>` can key a [`BTreeMap`](super::BTreeMap).
impl<T: Ord> Ord for Vec<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.inner[..].cmp(&other.inner[..])
    }
}

impl<T: Hash> Hash for Vec<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner[..].hash(state)
    }
}

/// The iterator that moves the elements out of a [`Vec`], first to last.
pub struct IntoIter<T> {
    #[cfg(not(kernel))]
    inner: std::vec::IntoIter<T>,
    #[cfg(kernel)]
    inner: backend::IntoIter<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> IntoIterator for Vec<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        #[cfg(not(kernel))]
        let inner = self.inner.into_iter();
        #[cfg(kernel)]
        let inner = backend::IntoIter::new(self.inner);
        IntoIter { inner }
    }
}

impl<'a, T> IntoIterator for &'a Vec<T> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Vec<T> {
    type Item = &'a mut T;
    type IntoIter = core::slice::IterMut<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fail_allocations_after;
    use super::*;

    #[test]
    fn new_allocates_nothing() {
        let _g = fail_allocations_after(0);
        let v: Vec<u64> = Vec::new();
        assert_eq!((v.len(), v.capacity(), v.is_empty()), (0, 0, true));
        let v: Vec<u64> = Vec::default();
        assert_eq!(v.capacity(), 0);
        // Zero-sized elements never allocate.
        let mut z = Vec::new();
        for _ in 0..1000 {
            z.push(()).unwrap();
        }
        assert_eq!(z.len(), 1000);
        // Nor does a zero capacity.
        assert_eq!(Vec::<u8>::with_capacity(0).unwrap().capacity(), 0);
        assert!(Vec::<u8>::try_from_slice(&[]).is_ok());
    }

    #[test]
    fn push_pop_and_growth() {
        let mut v = Vec::with_capacity(2).unwrap();
        assert!(v.capacity() >= 2);
        for i in 0..100u32 {
            v.push(i).unwrap();
        }
        assert_eq!(v.len(), 100);
        assert_eq!(v.first(), Some(&0));
        assert_eq!(v.pop(), Some(99));
        assert_eq!(v.as_slice().last(), Some(&98));
        v.as_mut_slice()[0] = 7;
        assert_eq!(v[0], 7);
        v.clear();
        assert_eq!(v.pop(), None);
        assert!(v.capacity() >= 100);
    }

    #[test]
    fn out_of_range_is_none_or_einval() {
        let mut v = Vec::try_from_slice(&[1, 2, 3]).unwrap();
        assert_eq!(v.remove(3), None);
        assert_eq!(v.remove(usize::MAX), None);
        assert_eq!(v.swap_remove(3), None);
        assert_eq!(v.insert(4, 9), Err(Errno::EINVAL));
        assert_eq!(v.insert(usize::MAX, 9), Err(Errno::EINVAL));
        assert_eq!(v, [1, 2, 3]);
        v.truncate(10);
        assert_eq!(v.len(), 3);
        v.insert(3, 4).unwrap();
        v.insert(0, 0).unwrap();
        assert_eq!(v, [0, 1, 2, 3, 4]);
        assert_eq!(v.remove(1), Some(1));
        assert_eq!(v.swap_remove(0), Some(0));
        assert_eq!(v, [4, 2, 3]);
        v.truncate(1);
        assert_eq!(v, [4]);
        assert_eq!(v.get(1), None);
        let mut e: Vec<u8> = Vec::new();
        assert_eq!(e.remove(0), None);
        assert_eq!(e.swap_remove(0), None);
        e.insert(0, 1).unwrap();
        assert_eq!(e, [1]);
    }

    #[test]
    fn huge_requests_are_enomem() {
        assert_eq!(
            Vec::<u64>::with_capacity(usize::MAX).err(),
            Some(Errno::ENOMEM)
        );
        assert_eq!(Vec::zeroed(usize::MAX).err(), Some(Errno::ENOMEM));
        let mut v = Vec::try_from_slice(b"abc").unwrap();
        assert_eq!(v.reserve(usize::MAX), Err(Errno::ENOMEM));
        assert_eq!(v.resize(usize::MAX, 0), Err(Errno::ENOMEM));
        assert_eq!(v, b"abc");
        let mut w: Vec<u32> = Vec::new();
        assert_eq!(w.reserve(usize::MAX / 2), Err(Errno::ENOMEM));
        assert!(w.is_empty());
    }

    #[test]
    fn copy_helpers() {
        let mut v = Vec::zeroed(4).unwrap();
        assert_eq!(v, [0, 0, 0, 0]);
        v.extend_from_slice(b"xy").unwrap();
        assert_eq!(v, b"\0\0\0\0xy");
        v.resize(2, 0).unwrap();
        assert_eq!(v, [0, 0]);
        v.resize(3, 9).unwrap();
        assert_eq!(v, &[0u8, 0, 9][..]);
        let w = Vec::try_from_slice(b"name").unwrap();
        assert_eq!(w.as_ref(), b"name");
        let c = w.try_clone().unwrap();
        assert_eq!(c, w);
    }

    #[test]
    fn retain_and_try_extend() {
        let mut v = Vec::new();
        v.try_extend(0..10u32).unwrap();
        v.retain(|&x| x % 3 == 0);
        assert_eq!(v, [0, 3, 6, 9]);
        v.try_extend(Vec::try_from_slice(&[1, 2]).unwrap()).unwrap();
        assert_eq!(v, [0, 3, 6, 9, 1, 2]);
        v.sort_unstable();
        assert_eq!(v, [0, 1, 2, 3, 6, 9]);
    }

    #[test]
    fn iteration() {
        let mut v = Vec::try_from_slice(&[1u32, 2, 3]).unwrap();
        for x in &mut v {
            *x *= 10;
        }
        let mut sum = 0;
        for x in &v {
            sum += x;
        }
        assert_eq!(sum, 60);
        assert_eq!(v.iter().next_back(), Some(&30));
        let mut it = v.into_iter();
        assert_eq!(it.size_hint(), (3, Some(3)));
        assert_eq!(it.next(), Some(10));
        assert_eq!(it.collect::<std::vec::Vec<_>>(), [20, 30]);
    }

    #[test]
    fn ordering_and_equality() {
        let a = Vec::try_from_slice(b"ab").unwrap();
        let b = Vec::try_from_slice(b"b").unwrap();
        let c = Vec::try_from_slice(b"abc").unwrap();
        assert!(a < b);
        assert!(a < c);
        assert_eq!(a.cmp(&a.try_clone().unwrap()), Ordering::Equal);
        assert_ne!(a, c);
        assert_eq!(a, &b"ab"[..]);
        assert_eq!(format!("{a:?}"), "[97, 98]");
    }

    #[test]
    fn allocation_failure_leaves_vector_unchanged() {
        let mut v = Vec::try_from_slice(&[1u8, 2]).unwrap();
        let cap = v.capacity();
        let _g = fail_allocations_after(0);
        // Within capacity nothing is allocated.
        let room = cap - v.len();
        for _ in 0..room {
            v.push(0).unwrap();
        }
        assert_eq!(v.push(3), Err(Errno::ENOMEM));
        assert_eq!(v.insert(0, 3), Err(Errno::ENOMEM));
        assert_eq!(v.extend_from_slice(&[3]), Err(Errno::ENOMEM));
        assert_eq!(v.resize(cap + 1, 3), Err(Errno::ENOMEM));
        assert_eq!(v.try_extend([3]), Err(Errno::ENOMEM));
        assert_eq!(v.len(), cap);
        assert_eq!(v.try_clone().err(), Some(Errno::ENOMEM));
        assert_eq!(Vec::<u8>::with_capacity(1).err(), Some(Errno::ENOMEM));
        assert_eq!(Vec::zeroed(1).err(), Some(Errno::ENOMEM));
        assert_eq!(Vec::try_from_slice(b"x").err(), Some(Errno::ENOMEM));
        // Shrinking never allocates.
        v.resize(1, 0).unwrap();
        assert_eq!(v, [1]);
    }
}
