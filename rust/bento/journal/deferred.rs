// SPDX-License-Identifier: GPL-2.0
//! Deferred frees, for both backends: blocks freed by a transaction that has not
//! committed yet, which the allocator must not hand out again (a crash would otherwise
//! leave the block with its old owner, replayed from the log, and its new one).
//!
//! A list of disjoint ranges sorted by first block (a block waiting here cannot be
//! allocated, hence not freed again), searched by bisection; ranges of consecutive frees
//! by one transaction merge. Entries of committed transactions are dropped whenever
//! the committed transaction id moved since the last look.

use crate::collections::Vec;
use crate::errno::{Errno, Result};
use crate::journal::Tid;

/// Blocks `[first, first + count)` freed by transaction `tid`.
struct Freed {
    tid: u32,
    first: u64,
    count: u64,
}

impl Freed {
    fn end(&self) -> u64 {
        self.first.saturating_add(self.count)
    }
}

/// The blocks waiting for the commit of their freeing.
#[derive(Default)]
pub(crate) struct Deferred {
    ranges: Vec<Freed>,
    /// The committed transaction id when the list was last pruned.
    pruned_at: Option<u32>,
}

/// Whether transaction `tid` is committed when `committed` is the last committed id.
fn is_committed(tid: u32, committed: u32) -> bool {
    !Tid::from_raw(tid).is_after(Tid::from_raw(committed))
}

impl Deferred {
    fn prune(&mut self, committed: u32) {
        if self.pruned_at != Some(committed) {
            self.ranges.retain(|r| !is_committed(r.tid, committed));
            self.pruned_at = Some(committed);
        }
    }

    /// Records `[first, first + count)` as freed by `tid`, `committed` being the last
    /// committed transaction (a free by a committed one is no free to wait for).
    pub(crate) fn add(&mut self, tid: u32, first: u64, count: u64, committed: u32) -> Result {
        let Some(end) = first.checked_add(count) else {
            crate::error!("bento: journal: deferred free of {count} blocks at {first} overflows");
            return Err(Errno::EINVAL);
        };
        self.prune(committed);
        if count == 0 || is_committed(tid, committed) {
            return Ok(());
        }
        // Where it goes in order; frees of neighbouring blocks by one transaction (a
        // truncate) extend the range before or after it instead.
        let at = self.ranges.partition_point(|r| r.first < first);
        if let Some(prev) = at.checked_sub(1).and_then(|i| self.ranges.get_mut(i)) {
            if prev.tid == tid && prev.end() == first {
                prev.count = prev.count.saturating_add(count);
                return Ok(());
            }
        }
        if let Some(next) = self.ranges.get_mut(at) {
            if next.tid == tid && end == next.first {
                next.first = first;
                next.count = next.count.saturating_add(count);
                return Ok(());
            }
        }
        self.ranges.insert(at, Freed { tid, first, count })
    }

    /// The first block of `[first, first + count)` still waiting for its free to
    /// commit, and the end of the range holding it.
    pub(crate) fn pending_run(
        &mut self,
        first: u64,
        count: u64,
        committed: u32,
    ) -> Option<(u64, u64)> {
        self.prune(committed);
        if count == 0 {
            return None;
        }
        let end = first.saturating_add(count);
        // Disjoint and sorted: the ends are sorted too.
        let r = self
            .ranges
            .get(self.ranges.partition_point(|r| r.end() <= first))?;
        (r.first < end).then(|| (r.first.max(first), r.end()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Deferred;

    fn first_pending(d: &mut Deferred, first: u64, count: u64, committed: u32) -> Option<u64> {
        d.pending_run(first, count, committed).map(|(p, _)| p)
    }

    #[test]
    fn pending_until_committed() {
        let mut d = Deferred::default();
        d.add(5, 100, 10, 4).unwrap();
        d.add(5, 200, 1, 4).unwrap();
        assert_eq!(first_pending(&mut d, 0, 100, 4), None);
        assert_eq!(first_pending(&mut d, 95, 10, 4), Some(100));
        assert_eq!(first_pending(&mut d, 105, 100, 4), Some(105));
        assert_eq!(d.pending_run(105, 100, 4), Some((105, 110)));
        assert_eq!(first_pending(&mut d, 110, 90, 4), None);
        assert_eq!(first_pending(&mut d, 200, 1, 4), Some(200));
        // A later transaction's neighbouring range waits for it, not for the first.
        d.add(6, 110, 5, 4).unwrap();
        assert_eq!(first_pending(&mut d, 112, 1, 5), Some(112));
        assert_eq!(first_pending(&mut d, 100, 10, 5), None);
        assert_eq!(first_pending(&mut d, 200, 1, 5), None);
        assert_eq!(first_pending(&mut d, 0, 1000, 6), None);
        // One transaction's neighbouring frees (a truncate, highest first) merge.
        d.add(7, 50, 10, 6).unwrap();
        d.add(7, 40, 10, 6).unwrap();
        d.add(7, 60, 5, 6).unwrap();
        assert_eq!(d.pending_run(0, 1000, 6), Some((40, 65)));
        // A free by an already committed transaction is no free to wait for.
        d.add(6, 300, 1, 6).unwrap();
        assert_eq!(first_pending(&mut d, 300, 1, 6), None);
        assert!(d.add(8, u64::MAX, 2, 6).is_err());
    }
}
