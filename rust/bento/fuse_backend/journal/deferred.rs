// SPDX-License-Identifier: GPL-2.0
//! Deferred frees: blocks freed by a transaction that has not committed yet, which the
//! allocator must not hand out again (a crash would otherwise leave the block with its
//! old owner, replayed from the log, and its new one).
//!
//! The ranges are kept disjoint, sorted by first block; entries of committed
//! transactions are dropped whenever the committed transaction id moved since the last
//! look.

use std::collections::BTreeMap;

use crate::errno::{Errno, Result};
use crate::journal::Tid;

#[derive(Default)]
pub(super) struct Deferred {
    /// First block → (count, freeing transaction).
    ranges: BTreeMap<u64, (u64, u32)>,
    /// The committed transaction id when entries were last dropped.
    pruned_at: Option<u32>,
}

fn after(a: u32, b: u32) -> bool {
    Tid::from_raw(a).is_after(Tid::from_raw(b))
}

impl Deferred {
    fn prune(&mut self, last_committed: u32) {
        if self.pruned_at != Some(last_committed) {
            self.ranges
                .retain(|_, &mut (_, tid)| after(tid, last_committed));
            self.pruned_at = Some(last_committed);
        }
    }

    /// Records `[first, first + count)` as freed by `tid`.
    pub fn add(&mut self, tid: u32, first: u64, count: u64, last_committed: u32) -> Result {
        let Some(end) = first.checked_add(count) else {
            crate::error!("bento: journal: deferred free of {count} blocks at {first} overflows");
            return Err(Errno::EINVAL);
        };
        self.prune(last_committed);
        if count == 0 || !after(tid, last_committed) {
            return Ok(());
        }
        // Merge with overlapping or adjacent ranges; the merged range waits for the
        // latest transaction among them (conservative).
        let (mut lo, mut hi, mut t) = (first, end, tid);
        let overlapping: Vec<u64> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(&s, &(c, _))| s.saturating_add(c) >= first)
            .map(|(&s, _)| s)
            .collect();
        for s in overlapping {
            if let Some((c, ot)) = self.ranges.remove(&s) {
                if s.saturating_add(c) > first && s < end {
                    crate::warn!(
                        "bento: journal: blocks {}..{} freed again before their free committed",
                        s.max(first),
                        s.saturating_add(c).min(end)
                    );
                }
                lo = lo.min(s);
                hi = hi.max(s.saturating_add(c));
                if after(ot, t) {
                    t = ot;
                }
            }
        }
        self.ranges.insert(lo, (hi - lo, t));
        Ok(())
    }

    /// The first block of `[first, first + count)` still waiting for its free to commit.
    #[cfg(test)]
    pub fn first_pending(&mut self, first: u64, count: u64, last_committed: u32) -> Option<u64> {
        self.pending_run(first, count, last_committed)
            .map(|(p, _)| p)
    }

    /// [`Deferred::first_pending`] and the end of the range holding it.
    pub fn pending_run(
        &mut self,
        first: u64,
        count: u64,
        last_committed: u32,
    ) -> Option<(u64, u64)> {
        self.prune(last_committed);
        let end = first.saturating_add(count);
        if count == 0 {
            return None;
        }
        self.ranges
            .range(..end)
            .rev()
            .take_while(|(&s, &(c, _))| s.saturating_add(c) > first)
            .map(|(&s, &(c, _))| (s.max(first), s.saturating_add(c)))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::Deferred;

    #[test]
    fn pending_until_committed() {
        let mut d = Deferred::default();
        d.add(5, 100, 10, 4).unwrap();
        d.add(5, 200, 1, 4).unwrap();
        assert_eq!(d.first_pending(0, 100, 4), None);
        assert_eq!(d.first_pending(95, 10, 4), Some(100));
        assert_eq!(d.first_pending(105, 100, 4), Some(105));
        assert_eq!(d.first_pending(110, 90, 4), None);
        assert_eq!(d.first_pending(200, 1, 4), Some(200));
        // Adjacent ranges of a later transaction merge and wait for it.
        d.add(6, 110, 5, 4).unwrap();
        assert_eq!(d.first_pending(112, 1, 5), Some(112));
        assert_eq!(d.first_pending(200, 1, 5), None);
        assert_eq!(d.first_pending(0, 1000, 6), None);
        // A free by an already committed transaction is no free to wait for.
        d.add(6, 300, 1, 6).unwrap();
        assert_eq!(d.first_pending(300, 1, 6), None);
        assert!(d.add(7, u64::MAX, 2, 6).is_err());
    }
}
