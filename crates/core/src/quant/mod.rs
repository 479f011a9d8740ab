//! 8-bit scalar quantization: a per-dimension affine quantizer, `u8` codes, and the quantized
//! exact scan that picks candidates for exact `f32` rescoring.
//!
//! The exact `f32` scan reads `4 · dim` bytes per row and is bound by memory bandwidth. Codes
//! of one byte per component make the same scan read a quarter of the bytes (and 25,000 ×
//! 384 codes, 9.6 MB, stay in the last-level cache where the 38.4 MB of floats do not). The
//! scores they give are approximate, so they only *choose candidates*: the caller scans for
//! the best `k' = `[`rescore_depth`]`(k)` rows ([`scan`], [`Scanner`]) and rescores those with
//! the original `f32` vectors to return the exact top `k`.
//!
//! # Method
//!
//! Scalar quantization with one affine map per dimension, as faiss's `ScalarQuantizer` with
//! `QT_8bit` ("per-dimension min-max"; M. Douze et al., *The Faiss library*,
//! arXiv:2401.08281, 2024):
//!
//! * **Training** ([`Quantizer::train`]): over a sample, each dimension's range
//!   `[lo_d, hi_d]` (minimum and maximum); `offset_d = lo_d`, `scale_d = (hi_d − lo_d) / 255`.
//! * **Encoding** ([`Quantizer::encode`]): `c_d = round((x_d − offset_d) / scale_d)`, clamped to
//!   `0..=255`, so `x_d ≈ offset_d + scale_d · c_d` within `scale_d / 2` inside the trained
//!   range. Per row the caller also keeps the exact norm `|x|` of the original vector
//!   (returned by `encode`): 4 bytes, used by cosine and L2.
//! * **Query** ([`PreparedQuery::new`]): `q·x ≈ Σ q_d·offset_d + Σ w_d·c_d` with
//!   `w_d = q_d·scale_d`. The weights are quantized with one symmetric step per query,
//!   `δ = max_d |w_d| / 127`, `u_d = round(w_d / δ) ∈ −127..=127`, so the row-dependent part
//!   is `δ · Σ u_d·c_d`: an exact integer dot product of `u8` codes and `i8` weights, the
//!   [`Int8Kernels`](crate::distance::int8::Int8Kernels) (AVX-512 VNNI `vpdpbusd`, AVX-512BW,
//!   AVX2, NEON, scalar; identical results on every ISA). The weights' rounding error
//!   `Σ (w_d − δu_d)·c_d` is estimated at the middle code and folded into the constant
//!   (it cut the RMS score error on debian-minilm from 1.6e-3 to 5.7e-4; being the same for
//!   every row, it does not change the ranking of rows of equal norm).
//! * **Scores** ([`PreparedQuery::score`]): cosine `q·x / (|q| |x|)`, dot `q·x`, and for L2
//!   `−(|q|² − 2 q·x + |x|²)` with the stored exact `|x|²`. Larger is better throughout.
//!
//! **Codes are `u8`, the query `i8`** (not `i8` codes in `−127..=127`): that is the operand
//! order of `vpdpbusd` (unsigned × signed bytes), so VNNI needs no per-row correction term
//! (signed codes would need `+128` and `−128 · Σ c_d` per row), and 256 levels are one more
//! than 255. The kernels without VNNI widen to `i16` and never saturate (see
//! [`crate::distance::int8`]).
//!
//! # Evidence (debian-minilm: 25,000 × 384, 500 queries, k = 10)
//!
//! `debian_minilm_quant_study` (an ignored test in this module) measures each choice on the
//! full and the short query sets, for cosine and L2 (the four give the same picture; the
//! table shows cosine full / short). "Depth" is the smallest rescoring depth `k'` at which a
//! query reaches recall@10 = 1 (p99 and maximum over the 500 queries); "rms" is the RMS
//! difference between approximate and exact cosine over each query's top 100.
//!
//! | ranges | trained on | int8 recall@10 (no rescoring) | depth p99 / max | rms |
//! |---|---|---|---|---|
//! | **per dimension, min-max** | 25,000 | **0.9940 / 0.9944** | 11 / 12 | 5.7e-4 |
//! | per dimension, clip 1e-4 | 25,000 | 0.9942 / 0.9946 | 11 / 12 | 5.9e-4 |
//! | per dimension, clip 1e-3 | 25,000 | 0.9886 / 0.9878 | 12 / 14 | 1.2e-3 |
//! | per dimension, clip 1e-2 | 25,000 | 0.9558 / 0.9578 | 16 / 20 | 6.9e-3 |
//! | global, min-max | 25,000 | 0.9922 / 0.9908 | 12 / 13 | 7.4e-4 |
//! | global, clip 1e-4 | 25,000 | 0.9928 / 0.9922 | 12 / 14 | 7.8e-4 |
//! | per dimension, min-max | first 2,000 | 0.9920 / 0.9908 | 12 / 14 | 1.0e-3 |
//! | per dimension, min-max | first 500 | 0.9804 / 0.9810 | 13 / 15 | 2.3e-3 |
//!
//! Recall@10 after rescoring, default quantizer, by depth `k'` = 10, 16, 20, 24, 32, 40, 48,
//! 64, 100: 0.994 at 10 (rescoring the int8 top 10 only reorders it), then **1.000 from 16
//! on**, for all four query sets and metrics.
//!
//! * **Per dimension beats global**: a dimension's quantization noise is proportional to its
//!   step, and one shared range must span the widest dimension (here 0.558 wide, against a
//!   per-dimension median of 0.373, p90 0.407, and one dimension nearly constant, range < 0.001),
//!   so the summed noise power `Σ scale_d²` is 2.2× higher (1.8e-3 against 8.2e-4), the score
//!   error 30 % higher and int8 recall lower. MiniLM's dimensions are fairly even, so the gap
//!   is modest here; embeddings with a few outlier dimensions (common in transformer models)
//!   make a global range waste most of its 256 levels.
//! * **No clipping**: clipping 1e-4 of each tail is a wash (+0.0002 recall, +4 % score error)
//!   and more clipping hurts steadily: the values clamped at the range ends are exactly the
//!   large components that decide nearest neighbours. Min-max also has no parameter.
//! * **Training sample**: a sample's ranges are narrower than the data's, and rows outside
//!   them clamp; 2,000 rows lost 0.2 % of int8 recall and nothing after rescoring 16. Train
//!   on all rows available (a few thousand at least) and retrain when the data has grown
//!   several-fold.
//! * **Rescoring depth**: every query reached recall 1 by depth 12 (15 with a 500-row
//!   training sample). [`rescore_depth`] takes `max(4k, 40)`, a margin of ≥ 2.5× for data
//!   whose quantization error is larger, at the cost of reading 40 rows of `f32`.
//!
//! # Cost
//!
//! Memory: `dim + 4` bytes per row (codes and norm) against `4 · dim` for `f32`: **0.253×**
//! at 384-d (9.70 MB against 38.4 MB), plus `8 · dim + 16` bytes for the quantizer.
//!
//! Time, `benches/int8.rs` on debian-minilm (medians of one run on the development machine,
//! AMD EPYC with AVX-512 VNNI, 2 cores shared with other jobs; run-to-run spread ±15 %):
//!
//! | 25,000 × 384, one query | time | ÷ `f32` |
//! |---|---|---|
//! | `f32` `dot_block` (AVX-512F), 38.4 MB | 1.38 ms | 1 |
//! | int8 `dot_block` (AVX-512 VNNI), 9.6 MB | 0.158 ms | 0.11 |
//! | int8 `dot_block` (AVX-512BW / AVX2 / scalar) | 0.199 / 0.249 / 1.53 ms | |
//! | [`scan`] for the best 40 (VNNI kernel, scores, selection) | 0.168 ms | 0.12 |
//! | cosine top 10, `f32` scan and selection | 1.43 ms | 1 |
//! | cosine top 10, int8 scan of 40 + `f32` rescoring of those 40 | 0.210 ms | 0.15 |
//!
//! The codes stay in the 32 MB last-level cache between queries (≈ 60 GB/s); scanned from
//! DRAM at the `f32` scan's ≈ 28 GB/s they would take ≈ 0.35 ms.
//!
//! # Storing a quantizer
//!
//! [`Quantizer::to_bytes`] writes a versioned little-endian record with a CRC-32;
//! [`Quantizer::from_bytes`] refuses anything damaged with [`Error::Corrupt`] (never panics)
//! and a newer version with [`Error::UnsupportedFormat`].

use crate::error::{Error, Result};
use crate::MAX_DIMENSION;

mod scan;
#[cfg(test)]
mod tests;

pub use scan::{scan, PreparedQuery, ScanHit, Scanner};

/// Number of candidates to rescore with `f32` for an exact top `k`: `max(4·k, 40)`.
///
/// On debian-minilm every query reached recall@10 = 1 by 12 candidates (see the module docs);
/// the factor leaves room for data whose quantization error is larger, and the floor keeps
/// small `k` safe. Saturates at `usize::MAX`.
pub fn rescore_depth(k: usize) -> usize {
    k.saturating_mul(4).max(40)
}

/// The largest code: codes are `0..=MAX_CODE` (256 levels).
pub const MAX_CODE: u8 = u8::MAX;

/// Version of the byte format written by [`Quantizer::to_bytes`].
pub const QUANTIZER_FORMAT_VERSION: u8 = 1;

/// First four bytes of a serialized quantizer.
const MAGIC: [u8; 4] = *b"SVQ8";

/// Bytes before the per-dimension arrays: magic, version, kind, reserved `u16`, `dim: u32`.
const HEADER: usize = 12;

/// Bytes after the arrays: CRC-32 of everything before it.
const TRAILER: usize = 4;

/// The `kind` byte of format version 1: per-dimension affine, `u8` codes.
const KIND_AFFINE_U8: u8 = 1;

/// How [`Quantizer::train_with`] chooses each dimension's range `[lo, hi]`.
///
/// The default, per dimension with no clipping (`per_dimension: true, clip: 0.0`, i.e. the
/// per-dimension min-max of faiss's `ScalarQuantizer` `QT_8bit`), gave the best int8 ranking
/// and the smallest score error on debian-minilm (clipping 1e-4 tied, more clipping and a
/// global range were worse); see the module docs for the measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// One range per dimension (`true`), or one range shared by all dimensions (`false`, as
    /// faiss's `QT_8bit_uniform`).
    pub per_dimension: bool,
    /// Fraction of the sample ignored at each end of a range, in `[0, 0.5)`: `lo` and `hi`
    /// are the `clip` and `1 − clip` quantiles (nearest rank) instead of the minimum and the
    /// maximum. Values outside the range are clamped to it when encoded.
    pub clip: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            per_dimension: true,
            clip: 0.0,
        }
    }
}

/// A per-dimension affine 8-bit quantizer: `x_d ≈ offset_d + scale_d · c_d` with codes
/// `c_d ∈ 0..=255`.
///
/// Trained once from a sample ([`Quantizer::train`]); afterwards [`Quantizer::encode`] turns a
/// vector of `dim` floats into `dim` code bytes (values outside the trained range are clamped),
/// and [`PreparedQuery::new`] turns a query into the `i8` weights of the integer scan. The
/// quantizer is a few KiB ([`Quantizer::to_bytes`]: `8 · dim + 16` bytes) and is meant to be
/// stored beside the codes so that they can be decoded and scanned after a reopen.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    /// `lo_d`: the value of code 0.
    offset: Vec<f32>,
    /// `(hi_d − lo_d) / 255`: the step between codes; `0` for a constant dimension.
    scale: Vec<f32>,
    /// `1 / scale_d`, or `0` where `scale_d == 0` (derived; not serialized).
    inv_scale: Vec<f32>,
}

impl Quantizer {
    /// Trains with the default [`TrainOptions`] (per-dimension min-max).
    ///
    /// `sample` is a row-major block of vectors of `dim` floats each: all vectors, or a
    /// sample of a few thousand (the ranges are all that is learnt; training on 2,000 of
    /// debian-minilm's 25,000 rows cost 0.2 % of int8 recall and nothing after rescoring, see
    /// the module docs).
    ///
    /// # Errors
    /// As [`Quantizer::train_with`].
    pub fn train(sample: &[f32], dim: usize) -> Result<Quantizer> {
        Quantizer::train_with(sample, dim, TrainOptions::default())
    }

    /// Trains the ranges from `sample` (row-major, `dim` floats per vector) as `options` say.
    ///
    /// # Errors
    /// * [`Error::InvalidArgument`] if `dim` is 0 or above [`MAX_DIMENSION`], `sample` is empty
    ///   (there is nothing to learn a range from), its length is not a multiple of `dim`, or
    ///   `options.clip` is not in `[0, 0.5)`;
    /// * [`Error::NonFinite`] for a NaN or infinite value (`index` is its component).
    pub fn train_with(sample: &[f32], dim: usize, options: TrainOptions) -> Result<Quantizer> {
        if dim == 0 || dim > MAX_DIMENSION {
            return Err(Error::InvalidArgument(format!(
                "quantizer dimension must be 1..={MAX_DIMENSION}, got {dim}"
            )));
        }
        if sample.is_empty() {
            return Err(Error::InvalidArgument(
                "quantizer training set is empty".into(),
            ));
        }
        if !sample.len().is_multiple_of(dim) {
            return Err(Error::InvalidArgument(format!(
                "quantizer training set of {} floats is not a whole number of {dim}-d vectors",
                sample.len()
            )));
        }
        if !(0.0..0.5).contains(&options.clip) {
            return Err(Error::InvalidArgument(format!(
                "quantizer clip must be in [0, 0.5), got {}",
                options.clip
            )));
        }
        if let Some(i) = sample.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                index: i % dim,
                value: sample[i],
            });
        }
        let rows = sample.len() / dim;
        let ranges: Vec<(f32, f32)> = if options.per_dimension {
            let mut column = Vec::with_capacity(rows);
            (0..dim)
                .map(|d| {
                    column.clear();
                    column.extend(sample.iter().skip(d).step_by(dim));
                    clipped_range(&mut column, options.clip)
                })
                .collect()
        } else {
            let range = clipped_range(&mut sample.to_vec(), options.clip);
            vec![range; dim]
        };
        let (offset, scale) = ranges
            .into_iter()
            .map(|(lo, hi)| (lo, (hi - lo) / f32::from(MAX_CODE)))
            .unzip();
        Ok(Quantizer::from_parts(offset, scale))
    }

    /// A quantizer from checked `offset` and `scale` arrays (equal lengths, finite, scale ≥ 0).
    fn from_parts(offset: Vec<f32>, scale: Vec<f32>) -> Quantizer {
        debug_assert_eq!(offset.len(), scale.len());
        let inv_scale = scale
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        Quantizer {
            offset,
            scale,
            inv_scale,
        }
    }

    /// Components per vector (and code bytes per row).
    pub fn dim(&self) -> usize {
        self.offset.len()
    }

    /// `offset_d`, the value of code 0 in each dimension (`dim` values).
    pub fn offsets(&self) -> &[f32] {
        &self.offset
    }

    /// `scale_d`, the step between adjacent codes in each dimension (`dim` values, `≥ 0`).
    pub fn scales(&self) -> &[f32] {
        &self.scale
    }

    /// Encodes `x` into `codes` (`c_d = round((x_d − offset_d) / scale_d)`, clamped to
    /// `0..=255`) and returns the exact Euclidean norm `|x|` of the *original* vector, the
    /// per-row side data that [`scan`] needs for cosine and L2.
    ///
    /// A NaN component encodes as 0 (inputs are meant to be validated before).
    ///
    /// # Panics
    /// If `x.len()` or `codes.len()` differs from [`Quantizer::dim`].
    pub fn encode(&self, x: &[f32], codes: &mut [u8]) -> f32 {
        assert!(
            x.len() == self.dim() && codes.len() == self.dim(),
            "quantizer: encode of {} floats into {} codes, dimension is {}",
            x.len(),
            codes.len(),
            self.dim()
        );
        let max = f32::from(MAX_CODE);
        for (((c, &v), &off), &inv) in codes
            .iter_mut()
            .zip(x)
            .zip(&self.offset)
            .zip(&self.inv_scale)
        {
            // `as u8` truncates towards zero (and maps NaN to 0): with the value clamped to
            // [0, 255] first, adding 0.5 rounds to nearest.
            *c = (((v - off) * inv).clamp(0.0, max) + 0.5) as u8;
        }
        crate::distance::norm(x)
    }

    /// Reconstructs `offset_d + scale_d · c_d` into `out`: the vector the codes stand for.
    ///
    /// # Panics
    /// If `codes.len()` or `out.len()` differs from [`Quantizer::dim`].
    pub fn decode(&self, codes: &[u8], out: &mut [f32]) {
        assert!(
            codes.len() == self.dim() && out.len() == self.dim(),
            "quantizer: decode of {} codes into {} floats, dimension is {}",
            codes.len(),
            out.len(),
            self.dim()
        );
        for (((o, &c), &off), &s) in out.iter_mut().zip(codes).zip(&self.offset).zip(&self.scale) {
            *o = off + s * f32::from(c);
        }
    }

    /// Serializes the quantizer (format version [`QUANTIZER_FORMAT_VERSION`]), little-endian:
    ///
    /// | bytes | field |
    /// |---|---|
    /// | 4 | magic `SVQ8` |
    /// | 1 | format version (1) |
    /// | 1 | kind (1: per-dimension affine, `u8` codes) |
    /// | 2 | reserved, 0 |
    /// | 4 | `dim` (`u32`) |
    /// | `4 · dim` | `offset_d` (`f32`) |
    /// | `4 · dim` | `scale_d` (`f32`) |
    /// | 4 | CRC-32 (IEEE 802.3, as zlib) of all bytes before it |
    pub fn to_bytes(&self) -> Vec<u8> {
        let dim = self.dim();
        let mut out = Vec::with_capacity(HEADER + 8 * dim + TRAILER);
        out.extend_from_slice(&MAGIC);
        out.push(QUANTIZER_FORMAT_VERSION);
        out.push(KIND_AFFINE_U8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(dim as u32).to_le_bytes());
        for v in self.offset.iter().chain(&self.scale) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes bytes written by [`Quantizer::to_bytes`]. Never panics on any input.
    ///
    /// # Errors
    /// * [`Error::UnsupportedFormat`] for a format version above [`QUANTIZER_FORMAT_VERSION`];
    /// * [`Error::Corrupt`] for anything else that is not a valid quantizer: wrong magic,
    ///   length or kind, a checksum mismatch, a dimension outside `1..=MAX_DIMENSION`, a
    ///   non-finite offset or a negative or non-finite scale.
    pub fn from_bytes(bytes: &[u8]) -> Result<Quantizer> {
        let corrupt = |what: String| Error::Corrupt(format!("quantizer: {what}"));
        let header = bytes
            .get(..HEADER)
            .ok_or_else(|| corrupt(format!("{} bytes is too short", bytes.len())))?;
        if header[..4] != MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        let version = header[4];
        if version > QUANTIZER_FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: u32::from(version),
                supported: u32::from(QUANTIZER_FORMAT_VERSION),
            });
        }
        if version == 0 || header[5] != KIND_AFFINE_U8 || header[6..8] != [0, 0] {
            return Err(corrupt(format!(
                "unknown version {version} / kind {}",
                header[5]
            )));
        }
        let dim = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        if dim == 0 || dim > MAX_DIMENSION {
            return Err(corrupt(format!("dimension {dim}")));
        }
        let want = HEADER + 8 * dim + TRAILER;
        if bytes.len() != want {
            return Err(corrupt(format!(
                "{} bytes for dimension {dim}, expected {want}",
                bytes.len()
            )));
        }
        let (body, trailer) = bytes.split_at(want - TRAILER);
        let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if crc32(body) != stored {
            return Err(corrupt("checksum mismatch".into()));
        }
        let floats: Vec<f32> = body[HEADER..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let (offset, scale) = floats.split_at(dim);
        // Every code's value, offset_d + c × scale_d for c in 0..=255, within the norm any
        // stored vector may have (a trained quantizer's are): finite scores, never NaN.
        let max = crate::codec::MAX_NORM;
        let bad = |d: usize| {
            let (o, sc) = (f64::from(offset[d]), f64::from(scale[d]));
            !o.is_finite()
                || !sc.is_finite()
                || sc < 0.0
                || o.abs() > max
                || (o + 255.0 * sc).abs() > max
        };
        if let Some(d) = (0..dim).find(|&d| bad(d)) {
            return Err(corrupt(format!(
                "dimension {d} has offset {} and scale {}",
                offset[d], scale[d]
            )));
        }
        Ok(Quantizer::from_parts(offset.to_vec(), scale.to_vec()))
    }
}

/// `(lo, hi)`: the `clip` and `1 − clip` quantiles of `values` (nearest rank; the minimum and
/// maximum for `clip == 0`). `values` is non-empty and finite; it is reordered.
fn clipped_range(values: &mut [f32], clip: f32) -> (f32, f32) {
    debug_assert!(!values.is_empty());
    let last = values.len() - 1;
    let lo_rank = ((clip as f64) * last as f64).floor() as usize;
    let hi_rank = last - lo_rank;
    let (_, &mut lo, _) = values.select_nth_unstable_by(lo_rank, f32::total_cmp);
    let (_, &mut hi, _) = values.select_nth_unstable_by(hi_rank, f32::total_cmp);
    (lo, hi)
}

/// CRC-32 (IEEE 802.3 polynomial, reflected, as zlib's `crc32`), bit by bit: the quantizer is
/// a few KiB and serialized rarely.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
