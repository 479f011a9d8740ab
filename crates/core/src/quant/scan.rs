//! Query preparation and the quantized scan: approximate scores from the integer kernels and
//! a bounded selection of the best `k'` rows.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::{Quantizer, MAX_CODE};
use crate::distance::int8::Int8Kernels;
use crate::error::{Error, Result};
use crate::Metric;

/// Rows per kernel call: 512 × 384 bytes = 192 KiB of codes, far inside L2, and long enough
/// quarter streams for the block kernel.
const SCAN_BLOCK: usize = 512;

/// Scores tested together against the selection's threshold before any is offered.
const SKIP_CHUNK: usize = 32;

/// The largest query weight: weights are symmetric in `-127..=127`.
const MAX_WEIGHT: f64 = 127.0;

/// A query prepared for the integer scan against codes of one [`Quantizer`].
///
/// With `w_d = q_d · scale_d`, the inner product with an encoded row is
/// `q·x ≈ Σ q_d·offset_d + Σ w_d·c_d`. The weights are quantized with one symmetric step per
/// query, `u_d = round(w_d / δ)` with `δ = max_d |w_d| / 127`, so the second sum is
/// `δ · Σ u_d·c_d`, an exact integer dot product (`u8` codes × `i8` weights, the
/// [`Int8Kernels`]). [`PreparedQuery::score`] maps that integer back to an approximate score
/// of the query's metric. The approximation only chooses candidates: rescore them with `f32`.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    metric: Metric,
    weights: Vec<i8>,
    /// Score before the per-row norm term: `base + slope · sum`.
    pub(super) base: f32,
    pub(super) slope: f32,
}

impl PreparedQuery {
    /// Prepares `q` for scanning codes of `quantizer` under `metric`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if `q.len() != quantizer.dim()`, [`Error::NonFinite`] for a
    /// NaN or infinite component, [`Error::ZeroVector`] for a zero query under
    /// [`Metric::Cosine`].
    pub fn new(quantizer: &Quantizer, q: &[f32], metric: Metric) -> Result<PreparedQuery> {
        if q.len() != quantizer.dim() {
            return Err(Error::DimensionMismatch {
                expected: quantizer.dim(),
                got: q.len(),
            });
        }
        if let Some((index, &value)) = q.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite { index, value });
        }
        let w: Vec<f64> = q
            .iter()
            .zip(quantizer.scales())
            .map(|(&q, &s)| f64::from(q) * f64::from(s))
            .collect();
        let max = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let step = max / MAX_WEIGHT;
        let weights: Vec<i8> = w
            .iter()
            .map(|&v| {
                if step > 0.0 {
                    (v / step).round() as i8
                } else {
                    0
                }
            })
            .collect();
        // Σ q_d·offset_d, the inner product with the all-zero codes, plus the weights'
        // rounding error Σ (w_d − δ·u_d)·c_d estimated at the middle code, so that scores are
        // unbiased for codes spread around it (a constant per query: it does not change the
        // ranking of rows of equal norm).
        let mid = f64::from(MAX_CODE) / 2.0;
        let bias: f64 = q
            .iter()
            .zip(quantizer.offsets())
            .zip(w.iter().zip(&weights))
            .map(|((&q, &o), (&w, &u))| {
                f64::from(q) * f64::from(o) + (w - step * f64::from(u)) * mid
            })
            .sum();
        let qq: f64 = q.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let (base, slope) = match metric {
            Metric::Dot => (bias, step),
            Metric::Cosine => {
                let qn = qq.sqrt();
                if qn == 0.0 {
                    return Err(Error::ZeroVector);
                }
                (bias / qn, step / qn)
            }
            // −|q − x|² = −|q|² + 2 q·x − |x|²; the last term is per row.
            Metric::L2 => (2.0 * bias - qq, 2.0 * step),
        };
        Ok(PreparedQuery {
            metric,
            weights,
            base: base as f32,
            slope: slope as f32,
        })
    }

    /// The metric the scores estimate.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The `i8` weights `u_d` (`dim` values in `-127..=127`), the query side of the kernels.
    pub fn weights(&self) -> &[i8] {
        &self.weights
    }

    /// The approximate score, larger is better, of a row whose codes give the kernel sum `sum`
    /// (`Σ u_d·c_d`) and whose original vector has Euclidean norm `norm` (as returned by
    /// [`Quantizer::encode`]):
    ///
    /// * [`Metric::Cosine`]: the cosine similarity `q·x / (|q| |x|)` (`-∞` for `norm == 0`);
    /// * [`Metric::Dot`]: the inner product `q·x` (`norm` unused);
    /// * [`Metric::L2`]: the *negated squared* distance `−|q − x|²`.
    #[inline]
    pub fn score(&self, sum: i32, norm: f32) -> f32 {
        let s = self.base + self.slope * sum as f32;
        match self.metric {
            Metric::Dot => s,
            Metric::Cosine => cosine(s, norm),
            Metric::L2 => s - norm * norm,
        }
    }

    /// `out[r] = self.score(sums[r], norms[r])`, in one loop per metric (vectorized).
    fn scores(&self, sums: &[i32], norms: &[f32], out: &mut [f32]) {
        let (base, slope) = (self.base, self.slope);
        let n = out.len();
        let (sums, norms) = (&sums[..n], &norms[..n]);
        match self.metric {
            Metric::Dot => {
                for i in 0..n {
                    out[i] = base + slope * sums[i] as f32;
                }
            }
            Metric::Cosine => {
                for i in 0..n {
                    out[i] = cosine(base + slope * sums[i] as f32, norms[i]);
                }
            }
            Metric::L2 => {
                for i in 0..n {
                    out[i] = base + slope * sums[i] as f32 - norms[i] * norms[i];
                }
            }
        }
    }
}

/// `dot_over_q / norm`, or `-∞` for a zero norm (cosine is undefined there).
#[inline(always)]
fn cosine(dot_over_q: f32, norm: f32) -> f32 {
    // Divide unconditionally and select, so that the loop vectorizes.
    let c = dot_over_q / norm;
    if norm > 0.0 {
        c
    } else {
        f32::NEG_INFINITY
    }
}

/// One candidate of a scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanHit {
    /// Row index, as numbered by the caller of [`Scanner::scan_rows`] / [`Scanner::scan_row`].
    pub row: u32,
    /// Approximate score, larger is better (see [`PreparedQuery::score`]).
    pub score: f32,
}

/// Heap entry ordered so that the *worst* candidate is the greatest: lower score, or equal
/// score and larger row.
#[derive(Clone, Copy)]
struct Worst(ScanHit);

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .score
            .total_cmp(&self.0.score)
            .then(self.0.row.cmp(&other.0.row))
    }
}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Worst {}

/// The quantized exact scan: scores rows of codes with the integer kernels and keeps the best
/// `k` by approximate score (ties: the smaller row wins, so the result does not depend on the
/// order rows are offered in).
///
/// Offer rows with [`Scanner::scan_rows`] (contiguous blocks, e.g. one per arena chunk) or
/// [`Scanner::scan_row`] (single rows, e.g. those passing a filter), then take the candidates
/// with [`Scanner::into_hits`]. Time is one kernel pass over the codes plus `O(n log k)` for
/// the selection, which rejects most rows with one comparison against the worst kept score.
#[derive(Debug)]
pub struct Scanner<'q> {
    kernels: &'static Int8Kernels,
    query: &'q PreparedQuery,
    best: Best,
    sums: Vec<i32>,
    scores: Vec<f32>,
}

impl std::fmt::Debug for Worst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'q> Scanner<'q> {
    /// A scan for the best `k` rows for `query`, scored with `kernels` (normally
    /// [`Int8Kernels::best`]). `k == 0` keeps nothing.
    pub fn new(kernels: &'static Int8Kernels, query: &'q PreparedQuery, k: usize) -> Self {
        Scanner {
            kernels,
            query,
            best: Best {
                k,
                heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
                worst: None,
            },
            sums: vec![0; SCAN_BLOCK],
            scores: vec![0.0; SCAN_BLOCK],
        }
    }

    /// Scores the rows of `codes` (row-major, `dim` bytes per row, as written by
    /// [`Quantizer::encode`]), numbered `first_row, first_row + 1, …`; `norms[r]` is row
    /// `r`'s norm from [`Quantizer::encode`].
    ///
    /// # Panics
    /// If `codes.len() != norms.len() * dim`, or a row number would exceed `u32::MAX`.
    pub fn scan_rows(&mut self, codes: &[u8], norms: &[f32], first_row: u32) {
        let d = self.query.weights.len();
        assert!(
            norms.len().checked_mul(d) == Some(codes.len()),
            "int8 scan: {} code bytes for {} rows of dimension {d}",
            codes.len(),
            norms.len()
        );
        assert!(
            u32::try_from(norms.len()).is_ok_and(|n| first_row.checked_add(n).is_some()),
            "int8 scan: row numbers overflow u32"
        );
        for (b, (block, norms)) in codes
            .chunks(SCAN_BLOCK * d)
            .zip(norms.chunks(SCAN_BLOCK))
            .enumerate()
        {
            let m = norms.len();
            let (sums, scores) = (&mut self.sums[..m], &mut self.scores[..m]);
            (self.kernels.dot_block)(&self.query.weights, block, sums);
            self.query.scores(sums, norms, scores);
            let first = first_row + (b * SCAN_BLOCK) as u32;
            for (c, chunk) in scores.chunks(SKIP_CHUNK).enumerate() {
                // Once `k` are kept, most chunks hold no score that can enter: test them with
                // one vectorized pass (a non-short-circuit `|`) before offering row by row.
                if let Some(w) = self.best.worst {
                    if !chunk.iter().fold(false, |any, &s| any | (s >= w.score)) {
                        continue;
                    }
                }
                let first = first + (c * SKIP_CHUNK) as u32;
                for (r, &score) in chunk.iter().enumerate() {
                    self.best.offer(ScanHit {
                        row: first + r as u32,
                        score,
                    });
                }
            }
        }
    }

    /// Scores one row: its `codes` (`dim` bytes) and `norm`, numbered `row`.
    ///
    /// # Panics
    /// If `codes.len() != dim`.
    pub fn scan_row(&mut self, codes: &[u8], norm: f32, row: u32) {
        let sum = (self.kernels.dot)(&self.query.weights, codes);
        self.best.offer(ScanHit {
            row,
            score: self.query.score(sum, norm),
        });
    }

    /// The kept candidates, best first (at most `k`; fewer if fewer rows were offered).
    pub fn into_hits(self) -> Vec<ScanHit> {
        self.best
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// The best `k` candidates so far: a binary heap whose top is the worst kept one.
#[derive(Debug)]
struct Best {
    k: usize,
    heap: BinaryHeap<Worst>,
    /// The worst kept candidate once `k` are kept.
    worst: Option<ScanHit>,
}

impl Best {
    /// Keeps `hit` if it is among the best `k` so far.
    #[inline]
    fn offer(&mut self, mut hit: ScanHit) {
        match self.worst {
            // Full: enter only by beating the worst kept (NaN never does).
            Some(w) if hit.score > w.score || (hit.score == w.score && hit.row < w.row) => {
                if let Some(mut top) = self.heap.peek_mut() {
                    *top = Worst(hit);
                }
                self.worst = self.heap.peek().map(|w| w.0);
            }
            Some(_) => {}
            None if self.heap.len() < self.k => {
                if hit.score.is_nan() {
                    hit.score = f32::NEG_INFINITY;
                }
                self.heap.push(Worst(hit));
                if self.heap.len() == self.k {
                    self.worst = self.heap.peek().map(|w| w.0);
                }
            }
            None => {} // k == 0
        }
    }
}

/// The best `k` rows of one contiguous block of codes by approximate score, best first: a
/// [`Scanner`] over `codes` (rows numbered from 0) and their `norms`.
///
/// # Panics
/// If `codes.len() != norms.len() * query.weights().len()`, or there are more than
/// `u32::MAX` rows.
pub fn scan(
    kernels: &'static Int8Kernels,
    query: &PreparedQuery,
    codes: &[u8],
    norms: &[f32],
    k: usize,
) -> Vec<ScanHit> {
    let mut scanner = Scanner::new(kernels, query, k);
    scanner.scan_rows(codes, norms, 0);
    scanner.into_hits()
}
