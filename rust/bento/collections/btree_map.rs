// SPDX-License-Identifier: GPL-2.0
//! [`BTreeMap`], an ordered map whose insertions are fallible.

use core::fmt;
use core::ops::{Bound, RangeBounds};

#[cfg(not(kernel))]
use super::alloc_point;
use super::TryClone;
use crate::errno::Result;
// The backend's map and iterators, with `std`'s names: `std`'s own, or the kernel's
// red-black tree behind the same method names.
#[cfg(kernel)]
use crate::kernel_backend::btree_map as backend;
#[cfg(not(kernel))]
use std::collections::btree_map as backend;

/// An ordered map from `K` to `V`: `std::collections::BTreeMap` in userspace, the kernel's
/// red-black tree (`kernel::rbtree::RBTree`) in the kernel.
///
/// The method set is what both can provide: keys are looked up by `&K` (no `Borrow`
/// lookups), iteration runs in ascending key order and only forwards, and insertion
/// allocates one node (so [`insert`](BTreeMap::insert) can fail with `ENOMEM`, also when
/// it replaces a value). Lookups, insertion and removal take O(log n); in the kernel,
/// [`range`](BTreeMap::range) and [`last_key_value`](BTreeMap::last_key_value) take O(n)
/// for now (a walk from the smallest key).
///
/// ```
/// use bento::collections::BTreeMap;
/// # fn main() -> bento::Result {
/// let mut orphans = BTreeMap::new();
/// for ino in [40u64, 10, 30, 20] {
///     orphans.insert(ino, ())?;
/// }
/// // The next orphan after inode 20, and everything in order.
/// assert_eq!(orphans.range(21..).next(), Some((&30, &())));
/// assert!(orphans.keys().copied().eq([10, 20, 30, 40]));
/// assert_eq!(orphans.pop_first(), Some((10, ())));
/// # Ok(())
/// # }
/// ```
pub struct BTreeMap<K, V> {
    inner: backend::BTreeMap<K, V>,
}

impl<K, V> BTreeMap<K, V> {
    /// An empty map; allocates nothing.
    pub fn new() -> BTreeMap<K, V> {
        BTreeMap {
            inner: backend::BTreeMap::new(),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.inner.clear()
    }

    /// The entries in ascending key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            inner: self.inner.iter(),
        }
    }

    /// The entries in ascending key order, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut {
            inner: self.inner.iter_mut(),
        }
    }

    /// The keys in ascending order.
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys {
            inner: self.inner.keys(),
        }
    }

    /// The values in ascending key order.
    pub fn values(&self) -> Values<'_, K, V> {
        Values {
            inner: self.inner.values(),
        }
    }

    /// The values in ascending key order, mutable.
    pub fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        ValuesMut {
            inner: self.inner.values_mut(),
        }
    }
}

impl<K: Ord, V> BTreeMap<K, V> {
    /// Inserts `value` under `key` and returns the value it replaces, if any; fails with
    /// `ENOMEM` (leaving the map unchanged) if the node cannot be allocated, which may
    /// happen even when `key` is present.
    #[cfg(not(kernel))]
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>> {
        alloc_point()?;
        Ok(self.inner.insert(key, value))
    }

    /// Inserts `value` under `key` and returns the value it replaces, if any; fails with
    /// `ENOMEM` (leaving the map unchanged) if the node cannot be allocated, which may
    /// happen even when `key` is present.
    #[cfg(kernel)]
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>> {
        self.inner.try_insert(key, value)
    }

    /// The value under `key`, inserting `make()` first if there is none; `ENOMEM` (and the
    /// map unchanged, `make` not called) if the node cannot be allocated.
    ///
    /// ```
    /// use bento::collections::BTreeMap;
    /// # fn main() -> bento::Result {
    /// let mut refs = BTreeMap::new();
    /// *refs.get_or_insert_with(7u64, || 0u32)? += 1;
    /// *refs.get_or_insert_with(7, || 0)? += 1;
    /// assert_eq!(refs.get(&7), Some(&2));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(not(kernel))]
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> Result<&mut V> {
        use std::collections::btree_map::Entry;
        match self.inner.entry(key) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                alloc_point()?;
                Ok(e.insert(make()))
            }
        }
    }

    /// The value under `key`, inserting `make()` first if there is none; `ENOMEM` (and the
    /// map unchanged, `make` not called) if the node cannot be allocated.
    #[cfg(kernel)]
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> Result<&mut V> {
        self.inner.get_or_try_insert_with(key, make)
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.inner.get(key)
    }

    /// The value under `key`, mutable.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.inner.get_mut(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.inner.contains_key(key)
    }

    /// Removes the entry of `key` and returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.inner.remove(key)
    }

    /// The entry with the smallest key.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.inner.first_key_value()
    }

    /// The entry with the largest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.inner.last_key_value()
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        self.inner.pop_first()
    }

    /// Removes and returns the entry with the largest key.
    pub fn pop_last(&mut self) -> Option<(K, V)> {
        self.inner.pop_last()
    }

    /// Keeps only the entries for which `keep` returns `true`.
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.inner.retain(keep)
    }

    /// The entries whose keys lie in `range`, in ascending key order: `map.range(x..)`,
    /// `map.range(&x..)`, `map.range(a..=b)`, `map.range((Bound::Excluded(&x),
    /// Bound::Unbounded))`. An empty or inverted range yields nothing (where `std`
    /// panics).
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> Range<'_, K, V> {
        let empty = match (range.start_bound(), range.end_bound()) {
            (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e)) => s > e,
            (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
            _ => false,
        };
        Range {
            // Checked above: `std` panics on an inverted range, or an empty one with both
            // ends excluded.
            inner: if empty {
                None
            } else {
                #[cfg(not(kernel))]
                let r = self.inner.range(range);
                #[cfg(kernel)]
                let r = self.inner.range(range.start_bound(), range.end_bound());
                Some(r)
            },
        }
    }

    /// A copy of the map, its keys and its values.
    pub fn try_clone(&self) -> Result<BTreeMap<K, V>>
    where
        K: TryClone,
        V: TryClone,
    {
        let mut m = BTreeMap::new();
        for (k, v) in self.iter() {
            m.insert(k.try_clone()?, v.try_clone()?)?;
        }
        Ok(m)
    }
}

impl<K: Ord + TryClone, V: TryClone> TryClone for BTreeMap<K, V> {
    fn try_clone(&self) -> Result<Self> {
        BTreeMap::try_clone(self)
    }
}

impl<K, V> Default for BTreeMap<K, V> {
    fn default() -> Self {
        BTreeMap::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for BTreeMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for BTreeMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<K: Eq, V: Eq> Eq for BTreeMap<K, V> {}

macro_rules! iterators {
    ($($(#[$doc:meta])* $name:ident<$($lt:lifetime,)? K, V> = $std:ident => $item:ty;)*) => {$(
        $(#[$doc])*
        pub struct $name<$($lt,)? K, V> {
            inner: backend::$std<$($lt,)? K, V>,
        }

        impl<$($lt,)? K, V> Iterator for $name<$($lt,)? K, V> {
            type Item = $item;

            fn next(&mut self) -> Option<Self::Item> {
                self.inner.next()
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                self.inner.size_hint()
            }
        }
    )*};
}

iterators! {
    /// The entries of a [`BTreeMap`] in ascending key order ([`BTreeMap::iter`]).
    Iter<'a, K, V> = Iter => (&'a K, &'a V);
    /// The entries of a [`BTreeMap`] in ascending key order, values mutable
    /// ([`BTreeMap::iter_mut`]).
    IterMut<'a, K, V> = IterMut => (&'a K, &'a mut V);
    /// The keys of a [`BTreeMap`] in ascending order ([`BTreeMap::keys`]).
    Keys<'a, K, V> = Keys => &'a K;
    /// The values of a [`BTreeMap`] in ascending key order ([`BTreeMap::values`]).
    Values<'a, K, V> = Values => &'a V;
    /// The values of a [`BTreeMap`] in ascending key order, mutable
    /// ([`BTreeMap::values_mut`]).
    ValuesMut<'a, K, V> = ValuesMut => &'a mut V;
    /// The entries moved out of a [`BTreeMap`] in ascending key order.
    IntoIter<K, V> = IntoIter => (K, V);
}

/// The entries of a [`BTreeMap`] in a key range, in ascending key order
/// ([`BTreeMap::range`]).
pub struct Range<'a, K, V> {
    inner: Option<backend::Range<'a, K, V>>,
}

impl<'a, K, V> Iterator for Range<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.as_mut()?.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            Some(r) => r.size_hint(),
            None => (0, Some(0)),
        }
    }
}

impl<K, V> IntoIterator for BTreeMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter {
            inner: self.inner.into_iter(),
        }
    }
}

impl<'a, K, V> IntoIterator for &'a BTreeMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut BTreeMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;

    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{fail_allocations_after, Vec};
    use super::*;
    use crate::errno::Errno;

    fn map(keys: &[u32]) -> BTreeMap<u32, u32> {
        let mut m = BTreeMap::new();
        for &k in keys {
            assert_eq!(m.insert(k, k * 10).unwrap(), None);
        }
        m
    }

    fn keys<'a>(it: impl Iterator<Item = (&'a u32, &'a u32)>) -> std::vec::Vec<u32> {
        it.map(|(k, _)| *k).collect()
    }

    #[test]
    fn insert_get_remove() {
        let mut m = map(&[5, 1, 3]);
        assert_eq!(m.len(), 3);
        assert_eq!(m.insert(3, 33), Ok(Some(30)));
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&3), Some(&33));
        assert_eq!(m.get(&4), None);
        *m.get_mut(&5).unwrap() += 1;
        assert_eq!(m.get(&5), Some(&51));
        assert!(m.get_mut(&6).is_none());
        assert!(m.contains_key(&1));
        assert!(!m.contains_key(&2));
        assert_eq!(m.remove(&1), Some(10));
        assert_eq!(m.remove(&1), None);
        assert_eq!(m.len(), 2);
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.first_key_value(), None);
        assert_eq!(m.pop_last(), None);
    }

    #[test]
    fn iteration_is_ordered() {
        // A scrambled permutation of 0..1000.
        let order: std::vec::Vec<u32> = (0..1000u32).map(|i| (i * 7919) % 1000).collect();
        let mut m = map(&order);
        assert_eq!(keys(m.iter()), (0..1000).collect::<std::vec::Vec<_>>());
        assert!(m.keys().copied().eq(0..1000));
        assert!(m.values().copied().eq((0..1000).map(|k| k * 10)));
        for v in m.values_mut() {
            *v += 1;
        }
        for (k, v) in &mut m {
            assert_eq!(*v, k * 10 + 1);
            *v = *k;
        }
        for (k, v) in &m {
            assert_eq!(k, v);
        }
        assert_eq!(m.first_key_value(), Some((&0, &0)));
        assert_eq!(m.last_key_value(), Some((&999, &999)));
        let mut it = m.into_iter();
        assert_eq!(it.size_hint(), (1000, Some(1000)));
        assert_eq!(it.next(), Some((0, 0)));
        assert_eq!(it.next(), Some((1, 1)));
    }

    #[test]
    // Inverted ranges are the point: they must yield nothing instead of panicking.
    #[allow(clippy::reversed_empty_ranges)]
    fn ranges() {
        let m = map(&[10, 20, 30, 40]);
        assert_eq!(keys(m.range(20..)), [20, 30, 40]);
        assert_eq!(keys(m.range(21..)), [30, 40]);
        assert_eq!(keys(m.range(41..)), []);
        assert_eq!(keys(m.range(..30)), [10, 20]);
        assert_eq!(keys(m.range(..=30)), [10, 20, 30]);
        assert_eq!(keys(m.range(15..=30)), [20, 30]);
        assert_eq!(keys(m.range(..)), [10, 20, 30, 40]);
        let x = 20;
        assert_eq!(keys(m.range(&x..)), [20, 30, 40]);
        assert_eq!(
            keys(m.range((Bound::Excluded(&x), Bound::Unbounded))),
            [30, 40]
        );
        assert_eq!(
            keys(m.range((Bound::Excluded(20), Bound::Included(40)))),
            [30, 40]
        );
        // Empty and inverted ranges: nothing, no panic.
        assert_eq!(keys(m.range(20..20)), []);
        assert_eq!(keys(m.range(20..=20)), [20]);
        assert_eq!(keys(m.range(30..20)), []);
        assert_eq!(keys(m.range(30..=20)), []);
        assert_eq!(
            keys(m.range((Bound::Excluded(20), Bound::Excluded(20)))),
            []
        );
        assert_eq!(
            keys(m.range((Bound::Excluded(20), Bound::Included(20)))),
            []
        );
        assert_eq!(
            keys(m.range((Bound::Excluded(30), Bound::Excluded(20)))),
            []
        );
        assert_eq!(m.range(30..20).size_hint(), (0, Some(0)));
        // Iterating a range of an empty map.
        let e: BTreeMap<u32, u32> = BTreeMap::new();
        assert_eq!(e.range(1..).next(), None);
    }

    #[test]
    fn lru_style_scan_from_a_cursor() {
        // Walk the map in chunks, resuming after the last key seen, while mutating it.
        let mut m = map(&[1, 2, 3, 4, 5, 6, 7]);
        let mut seen = std::vec::Vec::new();
        let mut next = 0;
        loop {
            let chunk: std::vec::Vec<u32> = m.range(next..).take(3).map(|(k, _)| *k).collect();
            let Some(&last) = chunk.last() else { break };
            for k in &chunk {
                if k % 2 == 0 {
                    m.remove(k);
                }
            }
            seen.extend(chunk);
            next = last + 1;
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(keys(m.iter()), [1, 3, 5, 7]);
    }

    #[test]
    fn pop_retain_get_or_insert() {
        let mut m = map(&[3, 1, 2, 5, 4]);
        assert_eq!(m.pop_first(), Some((1, 10)));
        assert_eq!(m.pop_last(), Some((5, 50)));
        m.retain(|k, v| {
            *v += 1;
            *k != 3
        });
        assert_eq!(keys(m.iter()), [2, 4]);
        assert_eq!(m.get(&4), Some(&41));
        *m.get_or_insert_with(4, || 0).unwrap() += 1;
        assert_eq!(m.get(&4), Some(&42));
        assert_eq!(*m.get_or_insert_with(9, || 90).unwrap(), 90);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn byte_string_keys() {
        let mut dir: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for (i, name) in [&b"b"[..], b"a", b"ab", b""].iter().enumerate() {
            dir.insert(Vec::try_from_slice(name).unwrap(), i as u64)
                .unwrap();
        }
        let names: std::vec::Vec<&[u8]> = dir.keys().map(|k| &k[..]).collect();
        assert_eq!(names, [&b""[..], b"a", b"ab", b"b"]);
        let key = Vec::try_from_slice(b"ab").unwrap();
        assert_eq!(dir.get(&key), Some(&2));
        assert_eq!(keys_after(&dir, &key), [&b"b"[..]]);
        let copy = dir.try_clone().unwrap();
        assert_eq!(copy, dir);
        assert_eq!(format!("{:?}", map(&[1])), "{1: 10}");
    }

    fn keys_after<'a>(m: &'a BTreeMap<Vec<u8>, u64>, k: &Vec<u8>) -> std::vec::Vec<&'a [u8]> {
        m.range((Bound::Excluded(k), Bound::Unbounded))
            .map(|(k, _)| &k[..])
            .collect()
    }

    #[test]
    fn allocation_failure_leaves_map_unchanged() {
        let mut m = map(&[1, 2]);
        let _g = fail_allocations_after(0);
        assert_eq!(m.insert(3, 30), Err(Errno::ENOMEM));
        // Replacing allocates a node in the kernel, so it may fail too.
        assert_eq!(m.insert(1, 11), Err(Errno::ENOMEM));
        let mut called = false;
        assert_eq!(
            m.get_or_insert_with(4, || {
                called = true;
                40
            })
            .err(),
            Some(Errno::ENOMEM)
        );
        assert!(!called);
        // An existing key needs no node.
        assert_eq!(m.get_or_insert_with(2, || 0).map(|v| *v), Ok(20));
        assert_eq!(keys(m.iter()), [1, 2]);
        assert_eq!(m.get(&1), Some(&10));
        assert_eq!(m.try_clone().err(), Some(Errno::ENOMEM));
        // Removal never allocates.
        assert_eq!(m.remove(&1), Some(10));
        assert_eq!(m.pop_first(), Some((2, 20)));
    }
}
