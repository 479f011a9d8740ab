//! Readers for embedding datasets in the layout of `shared/data/FORMAT.md`, and the recall@k
//! measure with its tie rule. Used by the CLI's `bench` and `demo`, the integration tests and the
//! criterion benchmarks, so every number comes from one implementation.
//!
//! A dataset directory holds NumPy `.npy` arrays (little-endian, C order): `base.npy` f32
//! `[n, dim]`, `queries.npy` / `queries_short.npy` f32 `[q, dim]`, and exact ground truth
//! `gt_{cos,l2}_{ids,dist}.npy` (`gt_short_…` for the short queries), i32 / f32 `[q, ≥ k]`,
//! nearest first. Cosine ground-truth distances are `1 − cos`; L2 ones are *squared* L2.

#![warn(missing_docs)]

pub mod jsonl;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Errors reading a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not the array it should be (dtype, rank, order).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A row-major 2-D array.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub data: Vec<T>,
}

impl<T> Matrix<T> {
    /// Row `i` (`cols` values). Panics if `i >= rows`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Bytes before a `.npy` header: magic (6), version (2), header length (2 in version 1, 4 in
/// versions 2 and 3).
const NPY_PREAMBLE_V1: u64 = 10;
const NPY_PREAMBLE_V2: u64 = 12;

/// Checks a `.npy` preamble (the first up to 12 bytes) against the file's length `len`: the
/// header it announces must fit in the file, so that a hostile header length never makes the
/// parser allocate more than the file holds. Returns the offset of the data.
fn npy_data_offset(prefix: &[u8], len: u64) -> Result<u64, String> {
    if prefix.len() < NPY_PREAMBLE_V1 as usize || &prefix[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (preamble, header) = match prefix[6] {
        1 => (
            NPY_PREAMBLE_V1,
            u64::from(u16::from_le_bytes([prefix[8], prefix[9]])),
        ),
        2 | 3 if prefix.len() >= NPY_PREAMBLE_V2 as usize => (
            NPY_PREAMBLE_V2,
            u64::from(u32::from_le_bytes([
                prefix[8], prefix[9], prefix[10], prefix[11],
            ])),
        ),
        v => {
            return Err(format!(
                "unsupported .npy version {v} (or a truncated file)"
            ))
        }
    };
    let end = preamble + header;
    if end > len {
        return Err(format!(
            "the header claims {header} bytes but the file holds {len} bytes"
        ));
    }
    Ok(end)
}

/// The number of elements of the `shape` in a `.npy` header (`header`: the file's bytes up to
/// the data), refusing a product that overflows `u64`.
fn npy_shape_elements(header: &[u8]) -> Result<u64, String> {
    let text = String::from_utf8_lossy(header);
    let shape = text
        .find("'shape'")
        .and_then(|at| {
            let rest = &text[at..];
            let open = rest.find('(')?;
            let close = rest[open..].find(')')?;
            Some(rest[open + 1..open + close].to_string())
        })
        .ok_or("the .npy header has no shape tuple")?;
    let mut n: u64 = 1;
    for dim in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: u64 = dim
            .trim_end_matches('L')
            .parse()
            .map_err(|_| format!("bad dimension {dim:?} in the .npy shape"))?;
        n = n.checked_mul(d).ok_or_else(|| {
            format!("the .npy shape ({shape}) has more elements than fit in 64 bits")
        })?;
    }
    Ok(n)
}

/// Deepest bracket nesting a `.npy` header may have: the dict, a structured dtype's list, its
/// field tuples and their shape tuples.
const NPY_MAX_DEPTH: usize = 4;

/// Refuses a `.npy` header whose brackets nest deeper than [`NPY_MAX_DEPTH`]: npyz's header
/// parser backtracks, and takes exponential time in the depth (found by fuzzing: 20 `[` took
/// longer than the fuzzer's timeout).
fn npy_header_depth(header: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    for &b in header {
        match b {
            b'[' | b'(' | b'{' => {
                depth += 1;
                if depth > NPY_MAX_DEPTH {
                    return Err(format!(
                        "the .npy header nests brackets deeper than {NPY_MAX_DEPTH}"
                    ));
                }
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Reads a 2-D (or 1-D, as one column) array from `reader`, a file of `len` bytes. Every size
/// is bounded by `len` before anything is allocated.
fn read_matrix<T: npyz::Deserialize, R: Read>(
    mut reader: R,
    len: u64,
    path: &str,
) -> Result<Matrix<T>, DatasetError> {
    let fmt = |reason: String| DatasetError::Format {
        path: path.to_string(),
        reason,
    };
    let io = |source| DatasetError::Io {
        path: path.to_string(),
        source,
    };
    let mut prefix = Vec::with_capacity(NPY_PREAMBLE_V2 as usize);
    (&mut reader)
        .take(NPY_PREAMBLE_V2)
        .read_to_end(&mut prefix)
        .map_err(io)?;
    let data_offset = npy_data_offset(&prefix, len).map_err(fmt)?;
    // The whole header (bounded by the file's length above), its shape checked before the
    // parser sees it (npyz multiplies the dimensions without checking for overflow).
    // A version-1 header shorter than 2 bytes ends inside the 12 bytes already read (found by
    // fuzzing: the subtraction overflowed); those extra bytes stay in `prefix` for the parser.
    (&mut reader)
        .take(data_offset.saturating_sub(prefix.len() as u64))
        .read_to_end(&mut prefix)
        .map_err(io)?;
    let header_end = usize::try_from(data_offset).map_or(prefix.len(), |e| e.min(prefix.len()));
    npy_shape_elements(&prefix[..header_end]).map_err(fmt)?;
    npy_header_depth(&prefix[..header_end]).map_err(fmt)?;
    let npy = npyz::NpyFile::new(std::io::Cursor::new(prefix).chain(reader))
        .map_err(|e| fmt(format!("bad .npy header: {e}")))?;
    if npy.order() != npyz::Order::C {
        return Err(fmt("array is not in C order".into()));
    }
    let shape = npy.shape().to_vec();
    let (rows, cols) = match shape.as_slice() {
        [r, c] => (*r, *c),
        [r] => (*r, 1),
        other => return Err(fmt(format!("expected a 2-D array, got shape {other:?}"))),
    };
    if rows > 0 && cols == 0 {
        return Err(fmt(format!(
            "shape [{rows}, 0]: every row is empty (0 values per vector)"
        )));
    }
    let width = std::mem::size_of::<T>() as u64;
    let bytes = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .filter(|&b| b <= len - data_offset)
        .ok_or_else(|| {
            fmt(format!(
                "shape [{rows}, {cols}] needs more than the {} data bytes the file holds",
                len - data_offset
            ))
        })?;
    let (rows, cols) = (rows as usize, cols as usize);
    let data: Vec<T> = npy
        .into_vec()
        .map_err(|e| fmt(format!("unexpected dtype or data: {e}")))?;
    if data.len() != rows * cols {
        return Err(fmt(format!(
            "{} values for shape [{rows}, {cols}] ({bytes} bytes)",
            data.len()
        )));
    }
    Ok(Matrix { rows, cols, data })
}

/// Reads a 2-D `.npy` file of f32.
///
/// # Errors
/// [`DatasetError::Io`], or [`DatasetError::Format`] for another dtype, rank or order.
pub fn read_f32(path: impl AsRef<Path>) -> Result<Matrix<f32>, DatasetError> {
    let p = path.as_ref();
    let name = p.display().to_string();
    let io = |source| DatasetError::Io {
        path: name.clone(),
        source,
    };
    let f = File::open(p).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    read_matrix(BufReader::new(f), len, &name)
}

/// Reads a 2-D `.npy` array of f32 from bytes (e.g. `include_bytes!`).
///
/// # Errors
/// [`DatasetError::Format`] as [`read_f32`].
pub fn read_f32_bytes(bytes: &[u8], name: &str) -> Result<Matrix<f32>, DatasetError> {
    read_matrix(bytes, bytes.len() as u64, name)
}

/// Reads a 2-D `.npy` file of i32 (ground-truth ids).
///
/// # Errors
/// As [`read_f32`].
pub fn read_i32(path: impl AsRef<Path>) -> Result<Matrix<i32>, DatasetError> {
    let p = path.as_ref();
    let name = p.display().to_string();
    let io = |source| DatasetError::Io {
        path: name.clone(),
        source,
    };
    let f = File::open(p).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    read_matrix(BufReader::new(f), len, &name)
}

/// Reads a 2-D `.npy` array of i32 from bytes.
///
/// # Errors
/// As [`read_f32_bytes`].
pub fn read_i32_bytes(bytes: &[u8], name: &str) -> Result<Matrix<i32>, DatasetError> {
    read_matrix(bytes, bytes.len() as u64, name)
}

/// Which metric's ground truth to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GtMetric {
    /// Cosine: distances are `1 − cos`.
    Cos,
    /// L2: distances are squared L2.
    L2,
}

/// Which query set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuerySet {
    /// `queries.npy` (full text) with `gt_{metric}_*`.
    Full,
    /// `queries_short.npy` (synopsis) with `gt_short_{metric}_*`.
    Short,
}

/// A dataset loaded for one metric and query set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Base vectors `[n, dim]`.
    pub base: Matrix<f32>,
    /// Query vectors `[q, dim]`.
    pub queries: Matrix<f32>,
    /// Exact neighbour rows `[q, ≥ k]`, nearest first.
    pub gt_ids: Matrix<i32>,
    /// Their distances (`1 − cos`, or squared L2).
    pub gt_dist: Matrix<f32>,
}

impl Dataset {
    /// Loads `base.npy`, the query set and its ground truth for `metric` from `dir`.
    ///
    /// # Errors
    /// [`DatasetError`] for a missing or malformed file, or mismatched shapes.
    pub fn load(dir: &Path, metric: GtMetric, queries: QuerySet) -> Result<Dataset, DatasetError> {
        let (qfile, prefix) = match queries {
            QuerySet::Full => ("queries.npy", "gt_"),
            QuerySet::Short => ("queries_short.npy", "gt_short_"),
        };
        let m = match metric {
            GtMetric::Cos => "cos",
            GtMetric::L2 => "l2",
        };
        let ds = Dataset {
            base: read_f32(dir.join("base.npy"))?,
            queries: read_f32(dir.join(qfile))?,
            gt_ids: read_i32(dir.join(format!("{prefix}{m}_ids.npy")))?,
            gt_dist: read_f32(dir.join(format!("{prefix}{m}_dist.npy")))?,
        };
        let bad = |reason: String| DatasetError::Format {
            path: dir.display().to_string(),
            reason,
        };
        if ds.base.cols != ds.queries.cols {
            return Err(bad(format!(
                "base has dimension {}, queries {}",
                ds.base.cols, ds.queries.cols
            )));
        }
        if ds.gt_ids.rows != ds.queries.rows || ds.gt_dist.rows != ds.queries.rows {
            return Err(bad(
                "ground truth rows differ from the number of queries".into()
            ));
        }
        Ok(ds)
    }
}

/// recall@k of one query: the share of the true top-k rows found among `got` (row ids, best
/// first, distances in the ground truth's unit). A returned row outside the true top k still
/// counts when its distance equals the true k-th distance within `1e-6` (a tie at the k-th
/// place, as FORMAT.md prescribes).
///
/// `got_ids.len()` may be below `k` (missing results count as misses). Panics if
/// `got_dist.len() != got_ids.len()` or the ground-truth rows are shorter than `k`.
pub fn recall_at_k(
    got_ids: &[usize],
    got_dist: &[f32],
    gt_ids: &[i32],
    gt_dist: &[f32],
    k: usize,
) -> f64 {
    assert_eq!(got_ids.len(), got_dist.len());
    assert!(gt_ids.len() >= k && gt_dist.len() >= k);
    let truth = &gt_ids[..k];
    let kth = gt_dist[k - 1];
    let hits = got_ids
        .iter()
        .zip(got_dist)
        .take(k)
        .filter(|(id, d)| truth.contains(&(**id as i32)) || (**d - kth).abs() <= 1e-6)
        .count();
    hits as f64 / k as f64
}

/// The `p`-th percentile (0–100, nearest rank) of `values` (sorted in place).
/// Returns NaN for an empty slice.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// One known-item query (`known_item.jsonl`): a base package's one-line synopsis and the base
/// row it should find.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct KnownItem {
    /// Row of `known_item_queries.npy` holding this query's vector.
    pub query_id: usize,
    /// The base row the query should find.
    pub target_row: usize,
    /// The target's package name.
    pub package: String,
    /// The query text.
    pub query: String,
}

/// One base text of `texts.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct BaseText {
    /// `"base"` or `"query"`.
    pub set: String,
    /// Row within its set.
    pub id: usize,
    /// Package name (unique).
    pub package: String,
    /// Synopsis and description.
    pub text: String,
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, DatasetError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: name.clone(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DatasetError::Format {
                path: name.clone(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// The known-item set of a dataset directory: `known_item.jsonl`, the query vectors
/// `known_item_queries.npy` and the base texts (the `"base"` lines of `texts.jsonl`, in row
/// order).
#[derive(Debug, Clone)]
pub struct KnownItemSet {
    /// The queries.
    pub items: Vec<KnownItem>,
    /// Their vectors `[queries, dim]`.
    pub vectors: Matrix<f32>,
    /// Base texts, index = base row.
    pub base_texts: Vec<BaseText>,
}

impl KnownItemSet {
    /// Loads the known-item files of `dir`.
    ///
    /// # Errors
    /// [`DatasetError`] for missing or malformed files.
    pub fn load(dir: &Path) -> Result<KnownItemSet, DatasetError> {
        let items: Vec<KnownItem> = read_jsonl(&dir.join("known_item.jsonl"))?;
        let vectors = read_f32(dir.join("known_item_queries.npy"))?;
        let base_texts: Vec<BaseText> = read_jsonl::<BaseText>(&dir.join("texts.jsonl"))?
            .into_iter()
            .filter(|t| t.set == "base")
            .collect();
        if base_texts.iter().enumerate().any(|(i, t)| t.id != i) {
            return Err(DatasetError::Format {
                path: dir.display().to_string(),
                reason: "texts.jsonl base lines are not in row order".into(),
            });
        }
        if items
            .iter()
            .any(|q| q.query_id >= vectors.rows || q.target_row >= base_texts.len())
        {
            return Err(DatasetError::Format {
                path: dir.display().to_string(),
                reason: "known_item.jsonl refers to rows that do not exist".into(),
            });
        }
        Ok(KnownItemSet {
            items,
            vectors,
            base_texts,
        })
    }
}

/// Known-item measures over a set of queries: mean reciprocal rank within the top 10, and the
/// share of queries whose target is first (hit@1) or in the top 10 (hit@10).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KnownItemScore {
    /// MRR@10.
    pub mrr_at_10: f64,
    /// hit@1.
    pub hit_at_1: f64,
    /// hit@10.
    pub hit_at_10: f64,
}

/// The reciprocal rank at 10 of a 1-based rank (`None` or beyond 10: 0).
fn rr10(r: Option<usize>) -> f64 {
    match r {
        Some(r) if (1..=10).contains(&r) => 1.0 / r as f64,
        _ => 0.0,
    }
}

/// A paired bootstrap of the difference of MRR@10 between two rankings of the same queries
/// (`a` − `b`, ranks as for [`KnownItemScore::from_ranks`]): the observed difference and the
/// 95 % percentile interval of `resamples` resamples of the queries with replacement (Efron &
/// Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13), seeded.
///
/// # Panics
/// If `a` and `b` have different lengths.
pub fn bootstrap_mrr_diff(
    a: &[Option<usize>],
    b: &[Option<usize>],
    resamples: usize,
    seed: u64,
) -> (f64, f64, f64) {
    assert_eq!(a.len(), b.len(), "paired rankings of the same queries");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| rr10(*x) - rr10(*y)).collect();
    let n = d.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let observed = d.iter().sum::<f64>() / n as f64;
    let mut rng = SeededRng(seed | 1);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            (0..n)
                .map(|_| d[(rng.next_u64() % n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    let lo = percentile(&mut means, 2.5);
    let hi = percentile(&mut means, 97.5);
    (observed, lo, hi)
}

impl KnownItemScore {
    /// Scores 1-based ranks of the targets (`None`: not in the ranking).
    pub fn from_ranks(ranks: &[Option<usize>]) -> KnownItemScore {
        let n = ranks.len().max(1) as f64;
        let within = |r: &&Option<usize>| r.is_some_and(|r| r <= 10);
        KnownItemScore {
            mrr_at_10: ranks
                .iter()
                .filter(within)
                .map(|r| 1.0 / r.unwrap() as f64)
                .sum::<f64>()
                / n,
            hit_at_1: ranks.iter().filter(|r| **r == Some(1)).count() as f64 / n,
            hit_at_10: ranks.iter().filter(within).count() as f64 / n,
        }
    }
}

/// A seeded xorshift64* generator (Vigna, "An experimental exploration of Marsaglia's xorshift
/// generators, scrambled", 2016) for synthetic data, so that benchmarks and tests compare like
/// with like across runs. Not for anything that needs unpredictability.
#[derive(Debug, Clone)]
pub struct SeededRng(pub u64);

impl SeededRng {
    /// The next 64 random bits (a zero state is replaced by a fixed non-zero one).
    pub fn next_u64(&mut self) -> u64 {
        if self.0 == 0 {
            self.0 = 0x9E37_79B9_7F4A_7C15;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1]: never 0, so `ln` is finite.
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-1, 1), 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    }

    /// `n` values of [`SeededRng::next_f32`].
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }

    /// Standard normal (Box–Muller).
    pub fn next_normal(&mut self) -> f32 {
        let (u, v) = (self.next_unit(), self.next_unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// `rows × dim` standard-normal values; with `unit`, each row scaled to length 1.
    pub fn matrix(&mut self, rows: usize, dim: usize, unit: bool) -> Matrix<f32> {
        let mut data: Vec<f32> = (0..rows * dim).map(|_| self.next_normal()).collect();
        if unit {
            for row in data.chunks_exact_mut(dim) {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        Matrix {
            rows,
            cols: dim,
            data,
        }
    }
}

/// The shared dataset directory `../shared/data/<name>` relative to the workspace root (or
/// `$SQLITE_VECTOR_DATA/<name>` when that variable is set), if it exists.
pub fn shared_dataset(name: &str) -> Option<PathBuf> {
    let root = match std::env::var_os("SQLITE_VECTOR_DATA") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    let dir = root.join(name);
    dir.join("base.npy").is_file().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 `.npy` of `descr` with `shape` (a Python tuple) and `data`.
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    /// Found by fuzzing (`fuzz/` target `npy`): a version-1 header length below 2 made the
    /// reader subtract past zero (a panic with overflow checks).
    #[test]
    fn npy_v1_header_shorter_than_the_preamble_read_is_an_error() {
        let mut bytes = npy("<f4", "(2, 3)", &[0u8; 24]);
        for len in [0u16, 1] {
            bytes[8..10].copy_from_slice(&len.to_le_bytes());
            assert!(matches!(
                read_f32_bytes(&bytes, "short"),
                Err(DatasetError::Format { .. })
            ));
        }
    }

    #[test]
    fn a_deeply_nested_npy_header_is_refused_at_once() {
        // The fuzzer's input (a timeout in npyz's backtracking parser): a v2 header opening
        // twenty lists.
        let bytes: &[u8] = &[
            147, 78, 85, 77, 80, 89, 2, 0, 116, 0, 0, 0, 123, 91, 91, 91, 91, 91, 91, 91, 91, 91,
            91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
            32, 32, 32, 32, 32, 39, 39, 39, 99, 121, 39, 58, 32, 39, 60, 105, 52, 39, 44, 32, 39,
            102, 111, 114, 116, 88, 114, 98, 98, 98, 98, 98, 98, 98, 97, 110, 95, 111, 114, 100,
            101, 114, 39, 58, 32, 70, 97, 108, 115, 101, 44, 32, 39, 115, 104, 97, 112, 101, 39,
            58, 32, 40, 51, 44, 32, 49, 41, 44, 32, 125, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
            32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
            32, 32, 32, 32, 32, 127, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 10, 7, 0, 0, 0, 0,
            0,
        ];
        let t = std::time::Instant::now();
        match read_i32_bytes(bytes, "nested") {
            Err(DatasetError::Format { reason, .. }) => {
                assert!(reason.contains("nests brackets deeper"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        // A valid header nests two levels: still read.
        let values: Vec<u8> = [1i32, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
        let m = read_i32_bytes(&npy("<i4", "(2, 1)", &values), "ok").unwrap();
        assert_eq!((m.rows, m.cols), (2, 1));
    }

    #[test]
    fn npy_round_trip_and_hostile_headers() {
        let values: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let m = read_f32_bytes(&npy("<f4", "(2, 3)", &values), "ok").unwrap();
        assert_eq!((m.rows, m.cols), (2, 3));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        let format_error = |bytes: &[u8], needle: &str| match read_f32_bytes(bytes, "bad") {
            Err(DatasetError::Format { reason, .. }) => {
                assert!(reason.contains(needle), "{reason}")
            }
            other => panic!("{other:?}"),
        };
        // A shape whose product overflows: an error, not a panic or an allocation.
        format_error(&npy("<f4", "(4611686018427387904, 4)", &values), "64 bits");
        format_error(
            &npy("<f4", "(4611686018427387904, 2)", &values),
            "needs more",
        );
        format_error(&npy("<f4", "(1000000, 384)", &values), "needs more");
        // A 15-byte version-2 file announcing a 4 GiB header: refused before reading it.
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        v2.extend_from_slice(b"{'d");
        assert_eq!(v2.len(), 15);
        format_error(&v2, "header claims 4294967295 bytes");
        format_error(b"\x93NUMPY\x01", "bad magic");
        format_error(b"PK\x03\x04 not numpy at all", "bad magic");
        format_error(&npy("<f4", "(2, 3)", &values[..20]), "needs more");
        format_error(&npy("<f4", "(2, 3, 1)", &values), "2-D");
        // Rows of no values: empty vectors. No rows at all is an empty dataset.
        format_error(&npy("<f4", "(5, 0)", &[]), "every row is empty");
        let none = read_f32_bytes(&npy("<f4", "(0, 3)", &[]), "empty").unwrap();
        assert_eq!((none.rows, none.cols), (0, 3));
    }

    #[test]
    fn recall_counts_ties() {
        let gt_ids = [5, 7, 9];
        let gt_dist = [0.1, 0.2, 0.3];
        assert_eq!(
            recall_at_k(&[5, 7, 9], &[0.1, 0.2, 0.3], &gt_ids, &gt_dist, 3),
            1.0
        );
        // Row 11 ties with the 3rd true neighbour: still a hit.
        assert_eq!(
            recall_at_k(&[5, 7, 11], &[0.1, 0.2, 0.3], &gt_ids, &gt_dist, 3),
            1.0
        );
        // Row 11 is farther: a miss.
        let r = recall_at_k(&[5, 7, 11], &[0.1, 0.2, 0.31], &gt_ids, &gt_dist, 3);
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
        // Missing results are misses.
        assert!((recall_at_k(&[5], &[0.1], &gt_ids, &gt_dist, 3) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn known_item_scores() {
        let s = KnownItemScore::from_ranks(&[Some(1), Some(2), None, Some(11)]);
        assert!((s.mrr_at_10 - 1.5 / 4.0).abs() < 1e-12);
        assert_eq!(s.hit_at_1, 0.25);
        assert_eq!(s.hit_at_10, 0.5);
    }

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }

    #[test]
    fn reads_npy_bytes_and_refuses_garbage() {
        // A hand-made v1.0 .npy header for float32 [2, 2].
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 64 - (10 + header.len() + 1) % 64;
        let hlen = header.len() + pad + 1;
        bytes.extend_from_slice(&(hlen as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(b' ', pad));
        bytes.push(b'\n');
        for x in [1.0f32, 2.0, 3.0, 4.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let m = read_f32_bytes(&bytes, "t").unwrap();
        assert_eq!((m.rows, m.cols), (2, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert!(
            read_i32_bytes(&bytes, "t").is_err(),
            "dtype must be checked"
        );
        assert!(read_f32_bytes(b"not an npy file", "t").is_err());
        assert!(
            read_f32_bytes(&bytes[..bytes.len() - 3], "t").is_err(),
            "truncated data"
        );
    }
}
