//! Fusion of a vector ranking and a BM25 ranking into one (hybrid search).
//!
//! Hybrid search takes the top candidates of each ranking, forms their union, and gives every
//! candidate **both** exact scores: its vector score (from the arena) and its BM25 score (from
//! FTS5; no score when none of the query's words is in it). [`fuse`] then orders the union:
//!
//! * [`Fusion::Dbsf`] (the default): each score is standardised over the union (z-score:
//!   `(s − mean) / standard deviation`; a missing BM25 counts as 0, a constant score as z = 0),
//!   and the fused score is `vector_weight · z_vector + text_weight · z_text`. With equal weights
//!   this orders the candidates as Qdrant's distribution-based score fusion does after
//!   re-scoring the union (its `(z + 3) / 6` per score is a monotone map of the same sum). The
//!   scale reads directly: 0 is the candidates' average, each standard deviation above it adds
//!   1 per ranking. Convex combinations of normalised scores beat reciprocal rank fusion and do
//!   not depend on a rank constant (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for
//!   Hybrid Retrieval", ACM TOIS 2023); no constant here was tuned on a test set.
//! * [`Fusion::Rrf`]: reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009),
//!   `Σ weight / (rrf_k + rank)` over the rankings a candidate appears in (rank from 1).
//!
//! Equal fused scores are ordered by the vector rank, then the BM25 rank, then the key.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How hybrid search fuses its two rankings (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Distribution-based score fusion: z-scores of both exact scores over the union, summed.
    #[default]
    Dbsf,
    /// Reciprocal rank fusion.
    Rrf,
}

impl Fusion {
    /// `"dbsf"` or `"rrf"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fusion::Dbsf => "dbsf",
            Fusion::Rrf => "rrf",
        }
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fusion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Fusion> {
        match s.to_ascii_lowercase().as_str() {
            "dbsf" | "zscore" | "score" => Ok(Fusion::Dbsf),
            "rrf" => Ok(Fusion::Rrf),
            _ => Err(Error::InvalidArgument(format!(
                "unknown fusion {s:?}: expected dbsf or rrf"
            ))),
        }
    }
}

/// One candidate of a hybrid search with both of its exact scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<K> {
    /// What identifies it (an item id, or a shard and an id).
    pub key: K,
    /// Vector score, larger is better (cosine similarity, dot product, negated L2 distance).
    pub vector: f32,
    /// BM25 score; `None` when no query word is in the item.
    pub text: Option<f32>,
    /// Rank (0-based) in the vector ranking, if the candidate came from it.
    pub vector_rank: Option<usize>,
    /// Rank (0-based) in the BM25 ranking, if the candidate came from it.
    pub text_rank: Option<usize>,
}

/// The weights and constant [`fuse`] uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FuseParams {
    /// The method.
    pub fusion: Fusion,
    /// RRF's constant (ignored by DBSF).
    pub rrf_k: f32,
    /// Weight of the vector ranking.
    pub vector_weight: f32,
    /// Weight of the BM25 ranking.
    pub text_weight: f32,
}

/// `(mean, standard deviation)` of `xs` (population), in f64.
fn mean_sd(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count().max(1) as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The z-score of `x` (0 when the scores do not vary).
fn z(x: f64, (mean, sd): (f64, f64)) -> f64 {
    if sd > 1e-12 * mean.abs().max(1.0) {
        (x - mean) / sd
    } else {
        0.0
    }
}

/// The fused score of every candidate, best first (see the [module docs](self)).
pub fn fuse<K: Ord>(candidates: Vec<Candidate<K>>, p: &FuseParams) -> Vec<(Candidate<K>, f32)> {
    let scored: Vec<f64> = match p.fusion {
        Fusion::Dbsf => {
            let v = mean_sd(candidates.iter().map(|c| f64::from(c.vector)));
            let t = mean_sd(candidates.iter().map(|c| f64::from(c.text.unwrap_or(0.0))));
            candidates
                .iter()
                .map(|c| {
                    f64::from(p.vector_weight) * z(f64::from(c.vector), v)
                        + f64::from(p.text_weight) * z(f64::from(c.text.unwrap_or(0.0)), t)
                })
                .collect()
        }
        Fusion::Rrf => candidates
            .iter()
            .map(|c| {
                let part = |w: f32, rank: Option<usize>| {
                    rank.map_or(0.0, |r| {
                        f64::from(w) / (f64::from(p.rrf_k) + r as f64 + 1.0)
                    })
                };
                part(p.vector_weight, c.vector_rank) + part(p.text_weight, c.text_rank)
            })
            .collect(),
    };
    let mut out: Vec<(Candidate<K>, f32)> = candidates
        .into_iter()
        .zip(scored)
        .map(|(c, s)| (c, s as f32))
        .collect();
    let rank = |r: Option<usize>| r.unwrap_or(usize::MAX);
    out.sort_by(|(a, sa), (b, sb)| {
        sb.total_cmp(sa)
            .then_with(|| rank(a.vector_rank).cmp(&rank(b.vector_rank)))
            .then_with(|| rank(a.text_rank).cmp(&rank(b.text_rank)))
            .then_with(|| a.key.cmp(&b.key))
            .then(Ordering::Equal)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(
        key: &str,
        v: f32,
        t: Option<f32>,
        vr: Option<usize>,
        tr: Option<usize>,
    ) -> Candidate<String> {
        Candidate {
            key: key.into(),
            vector: v,
            text: t,
            vector_rank: vr,
            text_rank: tr,
        }
    }

    const DBSF: FuseParams = FuseParams {
        fusion: Fusion::Dbsf,
        rrf_k: 60.0,
        vector_weight: 1.0,
        text_weight: 1.0,
    };

    #[test]
    fn dbsf_sums_z_scores() {
        // Vector scores 0.9, 0.5, 0.1 (mean 0.5, sd 0.3266); BM25 12, absent (0), 6 (mean 6,
        // sd 4.899): z = (1.22, 0, -1.22) and (1.22, -1.22, 0), so b and c tie at -1.22 and
        // the vector rank orders them.
        let out = fuse(
            vec![
                cand("a", 0.9, Some(12.0), Some(0), Some(0)),
                cand("b", 0.5, None, Some(1), None),
                cand("c", 0.1, Some(6.0), Some(2), Some(1)),
            ],
            &DBSF,
        );
        let keys: Vec<&str> = out.iter().map(|(c, _)| c.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!((out[1].1 - out[2].1).abs() < 1e-5);
        let sd_v = (((0.4f64 * 0.4) * 2.0) / 3.0).sqrt();
        let sd_t = ((36.0f64 + 36.0 + 0.0) / 3.0).sqrt();
        let want_a = 0.4 / sd_v + 6.0 / sd_t;
        assert!((f64::from(out[0].1) - want_a).abs() < 1e-5, "{}", out[0].1);
        // The fused scores of a union sum to 0 with equal weights (z-scores have mean 0).
        let sum: f32 = out.iter().map(|(_, s)| s).sum();
        assert!(sum.abs() < 1e-5);
    }

    #[test]
    fn scores_decide_where_ranks_tie() {
        // `target` is second by vector score by a hair and first by BM25 by a wide margin;
        // `x` the other way round. Their ranks tie under RRF (the vector rank then puts `x`
        // first); the scores say `target`.
        let cands = vec![
            cand("target", 0.80, Some(30.0), Some(1), Some(0)),
            cand("x", 0.81, Some(3.0), Some(0), Some(1)),
            cand("y", 0.30, None, Some(2), None),
            cand("z", 0.20, None, Some(3), None),
        ];
        let out = fuse(cands.clone(), &DBSF);
        assert_eq!(out[0].0.key, "target");
        let rrf = fuse(
            cands,
            &FuseParams {
                fusion: Fusion::Rrf,
                ..DBSF
            },
        );
        assert_eq!(rrf[0].0.key, "x");
        assert_eq!(rrf[0].1, rrf[1].1);
    }

    #[test]
    fn constant_scores_and_ties_are_ordered_by_rank_then_key() {
        let out = fuse(
            vec![
                cand("b", 0.5, None, None, Some(1)),
                cand("a", 0.5, None, None, Some(1)),
                cand("c", 0.5, None, Some(0), None),
            ],
            &DBSF,
        );
        assert!(out.iter().all(|(_, s)| *s == 0.0));
        let keys: Vec<&str> = out.iter().map(|(c, _)| c.key.as_str()).collect();
        assert_eq!(keys, ["c", "a", "b"]);
        assert!(fuse::<String>(Vec::new(), &DBSF).is_empty());
    }

    #[test]
    fn rrf_adds_reciprocal_ranks() {
        let p = FuseParams {
            fusion: Fusion::Rrf,
            ..DBSF
        };
        let out = fuse(
            vec![
                cand("a", 0.0, None, Some(0), Some(1)),
                cand("b", 0.0, None, Some(1), Some(0)),
                cand("c", 0.0, None, None, Some(2)),
            ],
            &p,
        );
        assert!((out[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-7);
        // a and b tie; the vector rank decides.
        assert_eq!(out[0].0.key, "a");
        assert_eq!(out[2].0.key, "c");
        assert_eq!("RRF".parse::<Fusion>().unwrap(), Fusion::Rrf);
        assert!("max".parse::<Fusion>().is_err());
    }
}
