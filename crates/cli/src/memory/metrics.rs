//! Ranking metrics of `memory eval`, as shared/data/FORMAT-webarena.md defines them: per query,
//! over a ranking (best first) and the query's relevant set R, with binary relevance. The
//! caller averages them over the queries.
//!
//! * MRR@k: 1 / rank of the first relevant entry in the top k, 0 if there is none;
//! * recall@k: |R ∩ top k| / min(k, |R|), so a query with more than k relevant entries can
//!   still reach 1;
//! * NDCG@k: DCG = Σ over ranks r = 1..k of [entry at r ∈ R] / log2(r + 1), divided by the
//!   ideal DCG, Σ for r = 1..min(k, |R|) of 1 / log2(r + 1) (Järvelin & Kekäläinen,
//!   "Cumulated gain-based evaluation of IR techniques", TOIS 2002).
//!
//! A ranking is expected to hold each entry once; an empty R scores 0 everywhere.

use std::collections::HashSet;
use std::hash::Hash;

/// MRR@k of one query: 1 / rank of the first entry of `ranking` (within its first `k`) that is
/// in `relevant`, or 0.
pub(crate) fn reciprocal_rank<T: Eq + Hash>(ranking: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|t| relevant.contains(t))
        .map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

/// recall@k of one query: the relevant entries in the first `k` of `ranking`, over
/// min(k, |relevant|).
pub(crate) fn recall<T: Eq + Hash>(ranking: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    let wanted = k.min(relevant.len());
    if wanted == 0 {
        return 0.0;
    }
    let found = ranking
        .iter()
        .take(k)
        .filter(|t| relevant.contains(t))
        .count();
    found as f64 / wanted as f64
}

/// NDCG@k of one query with binary gains.
pub(crate) fn ndcg<T: Eq + Hash>(ranking: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    let discount = |r: usize| 1.0 / ((r + 1) as f64).log2();
    let ideal: f64 = (1..=k.min(relevant.len())).map(discount).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, t)| relevant.contains(t))
        .map(|(i, _)| discount(i + 1))
        .sum();
    dcg / ideal
}

/// The four numbers `memory eval` reports, summed over queries until [`Scores::mean`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Scores {
    /// MRR@10.
    pub(crate) mrr_at_10: f64,
    /// recall@5.
    pub(crate) recall_at_5: f64,
    /// recall@10.
    pub(crate) recall_at_10: f64,
    /// NDCG@10.
    pub(crate) ndcg_at_10: f64,
}

impl Scores {
    /// Adds one query's scores.
    pub(crate) fn add<T: Eq + Hash>(&mut self, ranking: &[T], relevant: &HashSet<T>) {
        self.mrr_at_10 += reciprocal_rank(ranking, relevant, 10);
        self.recall_at_5 += recall(ranking, relevant, 5);
        self.recall_at_10 += recall(ranking, relevant, 10);
        self.ndcg_at_10 += ndcg(ranking, relevant, 10);
    }

    /// The sums over `n` queries as means (zeros for none).
    pub(crate) fn mean(self, n: usize) -> Scores {
        let n = n.max(1) as f64;
        Scores {
            mrr_at_10: self.mrr_at_10 / n,
            recall_at_5: self.recall_at_5 / n,
            recall_at_10: self.recall_at_10 / n,
            ndcg_at_10: self.ndcg_at_10 / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u32]) -> HashSet<u32> {
        ids.iter().copied().collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mrr_is_the_first_relevant_rank_within_k() {
        let ranking = [5, 3, 7, 3];
        assert!(close(reciprocal_rank(&ranking, &set(&[3]), 10), 0.5));
        assert!(close(reciprocal_rank(&ranking, &set(&[7, 3]), 10), 0.5));
        assert!(close(reciprocal_rank(&ranking, &set(&[5]), 10), 1.0));
        assert!(close(reciprocal_rank(&ranking, &set(&[9]), 10), 0.0));
        // Rank 3 is beyond k = 2.
        assert!(close(reciprocal_rank(&ranking, &set(&[7]), 2), 0.0));
        assert!(close(reciprocal_rank::<u32>(&[], &set(&[7]), 10), 0.0));
    }

    #[test]
    fn recall_caps_its_denominator_at_k() {
        // 12 relevant, the top 10 all relevant: 10 / min(10, 12) = 1.
        let relevant: HashSet<u32> = (0..12).collect();
        let ranking: Vec<u32> = (0..10).collect();
        assert!(close(recall(&ranking, &relevant, 10), 1.0));
        // recall@5 of the same: 5 / min(5, 12) = 1.
        assert!(close(recall(&ranking, &relevant, 5), 1.0));
        // 2 relevant, 1 found: 1 / 2.
        assert!(close(recall(&[1, 9, 8], &set(&[1, 2]), 10), 0.5));
        // 4 relevant, 2 of them in the top 5 and 1 more at rank 6: 2 / 4 at 5, 3 / 4 at 10.
        let ranking = [1, 90, 2, 91, 92, 3, 93];
        let relevant = set(&[1, 2, 3, 4]);
        assert!(close(recall(&ranking, &relevant, 5), 0.5));
        assert!(close(recall(&ranking, &relevant, 10), 0.75));
        // 7 relevant, 5 of them in the top 5: 5 / min(5, 7) = 1.
        let relevant = set(&[1, 2, 3, 4, 5, 6, 7]);
        assert!(close(recall(&[1, 2, 3, 4, 5], &relevant, 5), 1.0));
        assert!(close(recall(&[1, 2], &set(&[]), 10), 0.0));
    }

    #[test]
    fn ndcg_with_binary_gains() {
        // Relevant at ranks 1 and 3 of R = {a, c}: DCG = 1/log2(2) + 1/log2(4) = 1.5,
        // IDCG = 1/log2(2) + 1/log2(3) = 1.630930; NDCG = 0.919721.
        let got = ndcg(&[10, 20, 30], &set(&[10, 30]), 10);
        let want = 1.5 / (1.0 + 1.0 / 3f64.log2());
        assert!(close(got, want), "{got} vs {want}");
        assert!((got - 0.919_721).abs() < 1e-6, "{got}");
        // A perfect ranking is 1, one with nothing relevant 0.
        assert!(close(ndcg(&[30, 10, 20], &set(&[10, 30]), 10), 1.0));
        assert!(close(ndcg(&[20, 40], &set(&[10, 30]), 10), 0.0));
        // Only relevant entry at rank 2 of 1: (1/log2(3)) / 1 = 0.630930.
        assert!(close(ndcg(&[20, 10], &set(&[10]), 10), 1.0 / 3f64.log2()));
        // The ideal DCG stops at k: 12 relevant, all 10 ranked relevant: 1.
        let relevant: HashSet<u32> = (0..12).collect();
        let ranking: Vec<u32> = (0..10).collect();
        assert!(close(ndcg(&ranking, &relevant, 10), 1.0));
        // Beyond k does not count.
        assert!(close(ndcg(&[20, 10], &set(&[10]), 1), 0.0));
    }

    #[test]
    fn scores_average_over_queries() {
        let mut s = Scores::default();
        s.add(&[1, 2], &set(&[1]));
        s.add(&[1, 2], &set(&[3]));
        let m = s.mean(2);
        assert!(close(m.mrr_at_10, 0.5));
        assert!(close(m.recall_at_5, 0.5));
        assert!(close(m.recall_at_10, 0.5));
        assert!(close(m.ndcg_at_10, 0.5));
    }
}
