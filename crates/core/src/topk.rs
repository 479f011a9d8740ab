//! Bounded top-k selection.
//!
//! A binary heap of at most `k` candidates whose root is the *worst* kept candidate, so a scan
//! rejects most rows with one comparison against the root and never holds more than `k` entries
//! (O(n log k) time, O(k) memory). Scores are "larger is better" (the caller negates distances).
//! Ties on score are broken by a caller-given key (the external id): the smaller key wins, so the
//! result is deterministic whatever the scan order.

use std::cmp::Ordering;

/// One candidate: a score (larger is better) and the arena slot it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Larger is better.
    pub score: f32,
    /// Arena slot of the row.
    pub slot: u32,
}

/// Keeps the best `k` candidates seen so far.
pub struct TopK<'a, K: Ord + ?Sized> {
    k: usize,
    heap: Vec<Candidate>,
    key: &'a dyn Fn(u32) -> &'a K,
}

impl<'a, K: Ord + ?Sized> TopK<'a, K> {
    /// A selector for the best `k` candidates; `key(slot)` gives the tie-break key of a slot.
    /// Allocates `min(k, capacity_hint)` entries up front.
    pub fn new(k: usize, capacity_hint: usize, key: &'a dyn Fn(u32) -> &'a K) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k.min(capacity_hint)),
            key,
        }
    }

    /// `Ordering::Greater` when `a` ranks better than `b`.
    #[inline]
    fn rank(&self, a: &Candidate, b: &Candidate) -> Ordering {
        match a.score.total_cmp(&b.score) {
            Ordering::Equal => (self.key)(b.slot).cmp((self.key)(a.slot)),
            o => o,
        }
    }

    /// The score a new candidate must beat (or tie) to enter, once `k` are held.
    #[inline]
    pub fn threshold(&self) -> Option<f32> {
        if self.heap.len() == self.k {
            self.heap.first().map(|c| c.score)
        } else {
            None
        }
    }

    /// Offers a candidate.
    #[inline]
    pub fn push(&mut self, c: Candidate) {
        // A non-finite score (only from vectors stored before the norm limit) ranks nothing.
        if self.k == 0 || !c.score.is_finite() {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(c);
            self.sift_up(self.heap.len() - 1);
        } else if c.score >= self.heap[0].score && self.rank(&c, &self.heap[0]) == Ordering::Greater
        {
            self.heap[0] = c;
            self.sift_down(0);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            // Min-heap by rank: the parent must rank worse than (or equal to) the child.
            if self.rank(&self.heap[i], &self.heap[parent]) == Ordering::Less {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            let r = l + 1;
            let mut worst = i;
            if l < n && self.rank(&self.heap[l], &self.heap[worst]) == Ordering::Less {
                worst = l;
            }
            if r < n && self.rank(&self.heap[r], &self.heap[worst]) == Ordering::Less {
                worst = r;
            }
            if worst == i {
                break;
            }
            self.heap.swap(i, worst);
            i = worst;
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        let TopK { mut heap, key, .. } = self;
        heap.sort_by(|a, b| match b.score.total_cmp(&a.score) {
            Ordering::Equal => key(a.slot).cmp(key(b.slot)),
            o => o,
        });
        heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(scores: &[f32], keys: &[u32], k: usize) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
        idx.sort_by(
            |&a, &b| match scores[b as usize].total_cmp(&scores[a as usize]) {
                Ordering::Equal => keys[a as usize].cmp(&keys[b as usize]),
                o => o,
            },
        );
        idx.truncate(k);
        idx
    }

    proptest! {
        #[test]
        fn matches_full_sort(
            // Few distinct scores, so ties are common.
            scores in proptest::collection::vec(0u8..8, 0..300),
            k in 0usize..40,
            seed in any::<u32>(),
        ) {
            let scores: Vec<f32> = scores.iter().map(|&s| s as f32 * 0.5).collect();
            // Tie-break keys: a permutation of slots, so key order differs from slot order.
            let keys: Vec<u32> = (0..scores.len() as u32)
                .map(|i| i.wrapping_mul(2_654_435_761).wrapping_add(seed))
                .collect();
            let key = |slot: u32| &keys[slot as usize];
            let mut top = TopK::new(k, scores.len(), &key);
            for (slot, &score) in scores.iter().enumerate() {
                top.push(Candidate { score, slot: slot as u32 });
            }
            let got: Vec<u32> = top.into_sorted().iter().map(|c| c.slot).collect();
            prop_assert_eq!(got, reference(&scores, &keys, k));
        }
    }

    #[test]
    fn k_zero_keeps_nothing() {
        let keys = [1u32];
        let key = |s: u32| &keys[s as usize];
        let mut top = TopK::new(0, 1, &key);
        top.push(Candidate {
            score: 1.0,
            slot: 0,
        });
        assert!(top.into_sorted().is_empty());
    }
}
