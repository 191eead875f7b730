// SPDX-License-Identifier: GPL-2.0
//! The kernel side of [`bento::collections::BTreeMap`](crate::collections::BTreeMap): an
//! ordered map over `kernel::rbtree::RBTree`, with the names and signatures of the part of
//! `std::collections::btree_map` that `collections/btree_map.rs` uses, so that file is one
//! source for both builds.
//!
//! All safe code. Costs: lookups, insertion, removal, `first_key_value`, `pop_first` and
//! `pop_last` take O(log n); `last_key_value` and `range` take O(n) (the tree only offers
//! its seek and backward cursors through `&mut`, and these take `&self`): `range` walks from
//! the smallest key to the start of the range. Each insertion of a new key allocates one node
//! (`GFP_KERNEL`); replacing the value of a present key allocates nothing.

use core::ops::Bound;

use kernel::alloc::flags::GFP_KERNEL;
use kernel::rbtree::{self, RBTree, RBTreeNodeReservation};

use crate::errno::{Errno, Result};

/// An ordered map: a red-black tree and its number of entries (the tree does not count).
pub(crate) struct BTreeMap<K, V> {
    tree: RBTree<K, V>,
    len: usize,
}

impl<K, V> BTreeMap<K, V> {
    pub(crate) fn new() -> Self {
        BTreeMap {
            tree: RBTree::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn clear(&mut self) {
        *self = BTreeMap::new();
    }

    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            inner: self.tree.iter(),
            remaining: self.len,
        }
    }

    pub(crate) fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut {
            inner: self.tree.iter_mut(),
            remaining: self.len,
        }
    }

    pub(crate) fn keys(&self) -> Keys<'_, K, V> {
        Keys { inner: self.iter() }
    }

    pub(crate) fn values(&self) -> Values<'_, K, V> {
        Values { inner: self.iter() }
    }

    pub(crate) fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        ValuesMut {
            inner: self.iter_mut(),
        }
    }

    pub(crate) fn first_key_value(&self) -> Option<(&K, &V)> {
        self.tree.iter().next()
    }

    /// O(n): see the module docs.
    pub(crate) fn last_key_value(&self) -> Option<(&K, &V)> {
        self.tree.iter().last()
    }

    pub(crate) fn pop_first(&mut self) -> Option<(K, V)> {
        let (_, node) = self.tree.cursor_front()?.remove_current();
        self.len -= 1;
        Some(node.to_key_value())
    }

    pub(crate) fn pop_last(&mut self) -> Option<(K, V)> {
        let (_, node) = self.tree.cursor_back()?.remove_current();
        self.len -= 1;
        Some(node.to_key_value())
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let mut cursor = self.tree.cursor_front();
        while let Some(mut c) = cursor {
            let (k, v) = c.current_mut();
            if keep(k, v) {
                cursor = c.move_next();
                continue;
            }
            // `remove_current` moves to the next node, or to the previous one when there is
            // no next: then the walk is over.
            let last = c.peek_next().is_none();
            let (next, node) = c.remove_current();
            self.len -= 1;
            drop(node);
            cursor = if last { None } else { next };
        }
    }
}

impl<K: Ord, V> BTreeMap<K, V> {
    /// Inserts `value` under `key`; a present key keeps its key object and gets the new
    /// value without allocating (as in `std`), a new key takes one node or fails with
    /// `ENOMEM`, the map unchanged.
    pub(crate) fn try_insert(&mut self, key: K, value: V) -> Result<Option<V>> {
        match self.tree.entry(key) {
            rbtree::Entry::Occupied(mut e) => Ok(Some(core::mem::replace(e.get_mut(), value))),
            rbtree::Entry::Vacant(e) => {
                let node = RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
                e.insert(value, node);
                self.len += 1;
                Ok(None)
            }
        }
    }

    /// The value under `key`, inserting `make()` first if there is none; `ENOMEM` (the map
    /// unchanged, `make` not called) if the node cannot be allocated.
    pub(crate) fn get_or_try_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> Result<&mut V> {
        match self.tree.entry(key) {
            rbtree::Entry::Occupied(e) => Ok(e.into_mut()),
            rbtree::Entry::Vacant(e) => {
                let node = RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
                self.len += 1;
                Ok(e.insert(make(), node))
            }
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.tree.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.tree.get_mut(key)
    }

    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.tree.get(key).is_some()
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let v = self.tree.remove(key)?;
        self.len -= 1;
        Some(v)
    }

    /// The entries with keys between `start` and `end`; O(n) (module docs).
    pub(crate) fn range(&self, start: Bound<&K>, end: Bound<&K>) -> Range<'_, K, V> {
        let below = |k: &K| match start {
            Bound::Included(s) => k < s,
            Bound::Excluded(s) => k <= s,
            Bound::Unbounded => false,
        };
        let within = |k: &K| match end {
            Bound::Included(e) => k <= e,
            Bound::Excluded(e) => k < e,
            Bound::Unbounded => true,
        };
        // The keys are sorted: count those before the range and those in it, then skip the
        // former. `range` cannot keep the bounds (they may be owned by the caller's range),
        // so the count is what ends the iteration.
        let skip = self.tree.keys().take_while(|&k| below(k)).count();
        let count = self
            .tree
            .keys()
            .skip(skip)
            .take_while(|&k| within(k))
            .count();
        let mut inner = self.iter();
        if let Some(last_skipped) = skip.checked_sub(1) {
            inner.nth(last_skipped);
        }
        Range {
            inner,
            remaining: count,
        }
    }
}

impl<K, V> IntoIterator for BTreeMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter { map: self }
    }
}

/// The entries in ascending key order.
pub(crate) struct Iter<'a, K, V> {
    inner: rbtree::Iter<'a, K, V>,
    /// Entries not yet returned (the tree's iterator has no size hint of its own).
    remaining: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let kv = self.inner.next()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(kv)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// The entries in ascending key order, values mutable.
pub(crate) struct IterMut<'a, K, V> {
    inner: rbtree::IterMut<'a, K, V>,
    remaining: usize,
}

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        let kv = self.inner.next()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(kv)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// The keys in ascending order.
pub(crate) struct Keys<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Iterator for Keys<'a, K, V> {
    type Item = &'a K;

    fn next(&mut self) -> Option<&'a K> {
        self.inner.next().map(|(k, _)| k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The values in ascending key order.
pub(crate) struct Values<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Iterator for Values<'a, K, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        self.inner.next().map(|(_, v)| v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The values in ascending key order, mutable.
pub(crate) struct ValuesMut<'a, K, V> {
    inner: IterMut<'a, K, V>,
}

impl<'a, K, V> Iterator for ValuesMut<'a, K, V> {
    type Item = &'a mut V;

    fn next(&mut self) -> Option<&'a mut V> {
        self.inner.next().map(|(_, v)| v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// The entries moved out of the map in ascending key order: each step removes the first
/// node (O(log n)); dropping the iterator drops what is left.
pub(crate) struct IntoIter<K, V> {
    map: BTreeMap<K, V>,
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.map.pop_first()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.map.len, Some(self.map.len))
    }
}

/// The entries in a key range, in ascending key order.
pub(crate) struct Range<'a, K, V> {
    inner: Iter<'a, K, V>,
    /// Entries of the range not yet returned.
    remaining: usize,
}

impl<'a, K, V> Iterator for Range<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.remaining = self.remaining.checked_sub(1)?;
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}
