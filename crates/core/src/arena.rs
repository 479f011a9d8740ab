//! The in-memory vector arena and the exact scan over it.
//!
//! The arena is derived state (ARCHITECTURE rule 1): a dense, 64-byte aligned, row-major copy of
//! every live vector of a shard, rebuilt from the `items` table on open and kept in step with
//! committed writes. Slots are dense (`0..len`); removing a row moves the last row into its slot,
//! so the exact scan reads one contiguous block of `len × dim × 4` bytes, the memory-bandwidth
//! floor of an exact search.
//!
//! Beside the vectors it keeps, per slot: the inverse L2 norm (so cosine similarity is a dot
//! product times two stored factors), the SQLite rowid, and the external id (the tie-break key
//! of the top-k selection). A dense `rowid → slot` array (4 bytes per rowid ever allocated:
//! rowids are SQLite's, assigned in increasing order and never reused within a shard) finds the
//! slot of a changed row in one load, which the HNSW graph (whose node ids are rowids) relies on.
//! Vectors live in 64-byte aligned chunks of about 1 MiB, so growth never copies stored rows
//! and at most one chunk is partly empty.

use crate::distance::int8::Int8Kernels;
use crate::distance::Kernels;
use crate::quant::{PreparedQuery, Quantizer, ScanHit, Scanner};
use crate::topk::{Candidate, TopK};
use crate::Metric;

/// 64 bytes: one cache line, one AVX-512 register of f32.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// Rows scored per kernel call in a full scan: 256 × 384 × 4 bytes = 384 KiB fits in L2.
const SCAN_BLOCK: usize = 256;

/// Floats (rows × dimension) from which a full scan runs in two halves on two cores
/// ([`crate::par::join`]): 2M floats, 8 MiB, about 0.25 ms of scanning, where the hand-over
/// (tens of µs) is small beside the half it saves.
const PARALLEL_MIN_FLOATS: usize = 1 << 21;

/// Target bytes of one chunk of rows.
const CHUNK_BYTES: usize = 1 << 20;

/// Row storage in 64-byte aligned chunks of `2^shift` rows (about 1 MiB each). Only the first
/// chunk grows (by doubling, until full); later chunks are allocated whole. Growing therefore
/// never copies the rows already stored: with one contiguous buffer, every reallocation of a
/// 64-byte aligned block copies it whole (the system allocator cannot `mremap` over-aligned
/// blocks), which cost a quarter of the time of a 1M-row bulk load.
struct Rows {
    dim: usize,
    shift: u32,
    chunks: Vec<Vec<Line>>,
    len: usize,
}

impl Rows {
    fn new(dim: usize) -> Rows {
        let per_chunk = (CHUNK_BYTES / (dim * 4)).clamp(16, 1 << 16);
        Rows {
            dim,
            shift: usize::BITS - 1 - per_chunk.leading_zeros(),
            chunks: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn chunk_rows(&self) -> usize {
        1 << self.shift
    }

    fn lines_for(&self, rows: usize) -> usize {
        (rows * self.dim).div_ceil(16)
    }

    /// Rows chunk `c` can hold.
    fn capacity_of(&self, c: usize) -> usize {
        (self.chunks[c].len() * 16 / self.dim).min(self.chunk_rows())
    }

    fn as_f32(lines: &[Line]) -> &[f32] {
        // SAFETY: Line is repr(C) over [f32; 16] (size 64, no padding), so `lines` is
        // `lines.len() * 16` initialised f32 values.
        unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<f32>(), lines.len() * 16) }
    }

    fn as_f32_mut(lines: &mut [Line]) -> &mut [f32] {
        // SAFETY: as in `as_f32`; the `&mut` borrow makes the view unique.
        unsafe {
            std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<f32>(), lines.len() * 16)
        }
    }

    #[inline]
    fn row(&self, slot: usize) -> &[f32] {
        let off = (slot & (self.chunk_rows() - 1)) * self.dim;
        &Self::as_f32(&self.chunks[slot >> self.shift])[off..off + self.dim]
    }

    fn row_mut(&mut self, slot: usize) -> &mut [f32] {
        let off = (slot & (self.chunk_rows() - 1)) * self.dim;
        let dim = self.dim;
        &mut Self::as_f32_mut(&mut self.chunks[slot >> self.shift])[off..off + dim]
    }

    /// Makes room for `rows` rows in total.
    fn reserve(&mut self, rows: usize) {
        if rows == 0 {
            return;
        }
        if self.chunks.is_empty() {
            let first = rows.min(self.chunk_rows());
            self.chunks
                .push(vec![Line([0.0; 16]); self.lines_for(first)]);
        } else if rows > self.capacity_of(0) && self.capacity_of(0) < self.chunk_rows() {
            let grown = rows.min(self.chunk_rows());
            let lines = self.lines_for(grown);
            self.chunks[0].resize(lines, Line([0.0; 16]));
            self.chunks[0].shrink_to_fit();
        }
        let full = rows.div_ceil(self.chunk_rows());
        while self.chunks.len() < full {
            self.chunks
                .push(vec![Line([0.0; 16]); self.lines_for(self.chunk_rows())]);
        }
    }

    fn push(&mut self, v: &[f32]) {
        let slot = self.len;
        let c = slot >> self.shift;
        if c >= self.chunks.len() || (c == 0 && slot >= self.capacity_of(0)) {
            // Double the first chunk while it is small; later chunks come whole.
            let want = if c == 0 { (slot * 2).max(16) } else { slot + 1 };
            self.reserve(want);
        }
        self.len += 1;
        self.row_mut(slot).copy_from_slice(v);
    }

    fn pop(&mut self) {
        self.len -= 1;
        // Free a trailing chunk once it is empty (but never the first).
        let used = self.len.div_ceil(self.chunk_rows()).max(1);
        self.chunks.truncate(used);
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * 64).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Line>>()
    }

    /// `(first slot, rows)` of each chunk's filled part, in slot order.
    fn filled(&self) -> impl Iterator<Item = (usize, &[f32])> {
        let per = self.chunk_rows();
        self.chunks
            .iter()
            .enumerate()
            .filter_map(move |(c, lines)| {
                let first = c * per;
                let n = self.len.saturating_sub(first).min(per);
                (n > 0).then(|| (first, &Self::as_f32(lines)[..n * self.dim]))
            })
    }
}

/// The int8 copy of every row (see [`crate::quant`]): `dim` code bytes per row, stored in a
/// [`Rows`] of `dim.div_ceil(4)` 4-byte words per row (so the same aligned chunks serve), and
/// each row's exact norm.
pub(crate) struct Codes {
    quantizer: Quantizer,
    rows: Rows,
    norms: Vec<f32>,
    /// Encoding buffer: one row of words.
    buf: Vec<f32>,
}

impl Codes {
    fn new(quantizer: Quantizer) -> Codes {
        let words = quantizer.dim().div_ceil(4);
        Codes {
            quantizer,
            rows: Rows::new(words),
            norms: Vec::new(),
            buf: vec![0.0; words],
        }
    }

    fn bytes_of(words: &[f32]) -> &[u8] {
        // SAFETY: any initialised f32 memory is valid as bytes; u8 has alignment 1.
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 4) }
    }

    /// Encodes `v` into the buffer; returns its norm.
    fn encode(&mut self, v: &[f32]) -> f32 {
        let dim = self.quantizer.dim();
        // SAFETY: as in `bytes_of`, mutably: the buffer holds `4 · words ≥ dim` bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<u8>(), self.buf.len() * 4)
        };
        self.quantizer.encode(v, &mut bytes[..dim])
    }

    fn code(&self, slot: usize) -> &[u8] {
        &Self::bytes_of(self.rows.row(slot))[..self.quantizer.dim()]
    }
}

/// Dense, aligned storage for `len` vectors of `dim` f32 values.
pub(crate) struct Arena {
    dim: usize,
    /// The f32 rows; empty when `keep_f32` is off (an int8-only arena).
    rows: Rows,
    keep_f32: bool,
    codes: Option<Codes>,
    inv_norms: Vec<f32>,
    rowids: Vec<i64>,
    ids: Vec<Box<str>>,
    /// `slot_of[rowid]` is the slot of a live rowid, [`NO_SLOT`] otherwise.
    slot_of: Vec<u32>,
}

/// Marks a rowid without a live row in [`Arena`]'s `rowid → slot` array.
const NO_SLOT: u32 = u32::MAX;

impl Arena {
    /// An empty arena for vectors of `dim` components, with room for `capacity` rows.
    pub(crate) fn with_capacity(dim: usize, capacity: usize) -> Self {
        let mut a = Arena {
            dim,
            rows: Rows::new(dim),
            keep_f32: true,
            codes: None,
            inv_norms: Vec::new(),
            rowids: Vec::new(),
            ids: Vec::new(),
            slot_of: Vec::new(),
        };
        a.reserve_rows(capacity);
        a
    }

    /// Makes room for `additional` more rows (vectors exactly, in chunks; the per-row side
    /// tables by the usual amortised growth).
    pub(crate) fn reserve_rows(&mut self, additional: usize) {
        let need = self.len() + additional;
        if self.keep_f32 {
            self.rows.reserve(need);
        }
        if let Some(c) = self.codes.as_mut() {
            c.rows.reserve(need);
            c.norms.reserve(additional);
        }
        self.inv_norms.reserve(additional);
        self.rowids.reserve(additional);
        self.ids.reserve(additional);
    }

    /// Components per vector.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Number of live rows.
    pub(crate) fn len(&self) -> usize {
        self.rowids.len()
    }

    /// Makes this (empty) arena keep an int8 copy of every row with `quantizer`, and the f32
    /// rows too only when `keep_f32`.
    pub(crate) fn quantize(&mut self, quantizer: Quantizer, keep_f32: bool) {
        assert_eq!(self.len(), 0, "quantize an empty arena");
        assert_eq!(quantizer.dim(), self.dim, "quantizer of another dimension");
        self.codes = Some(Codes::new(quantizer));
        self.keep_f32 = keep_f32;
    }

    /// Whether the f32 rows are in memory ([`Arena::row`] works).
    pub(crate) fn has_f32(&self) -> bool {
        self.keep_f32
    }

    /// The quantizer, when the arena keeps int8 codes.
    pub(crate) fn quantizer(&self) -> Option<&Quantizer> {
        self.codes.as_ref().map(|c| &c.quantizer)
    }

    /// The vector in `slot`.
    #[inline]
    pub(crate) fn row(&self, slot: u32) -> &[f32] {
        self.rows.row(slot as usize)
    }

    /// The external id in `slot`.
    #[inline]
    pub(crate) fn id(&self, slot: u32) -> &str {
        &self.ids[slot as usize]
    }

    /// The rowid in `slot`.
    #[inline]
    pub(crate) fn rowid(&self, slot: u32) -> i64 {
        self.rowids[slot as usize]
    }

    /// The slot of a rowid, if it is live.
    #[inline]
    pub(crate) fn slot(&self, rowid: i64) -> Option<u32> {
        match usize::try_from(rowid)
            .ok()
            .and_then(|r| self.slot_of.get(r))
        {
            Some(&s) if s != NO_SLOT => Some(s),
            _ => None,
        }
    }

    /// `1 / ‖v‖` of the vector in `slot` (0 for a zero vector).
    #[inline]
    pub(crate) fn inv_norm(&self, slot: u32) -> f32 {
        self.inv_norms[slot as usize]
    }

    /// Points `rowid` at `slot` in the dense map, growing it as needed.
    fn map_rowid(&mut self, rowid: i64, slot: u32) {
        let r = usize::try_from(rowid).expect("rowids are checked to be non-negative");
        if r >= self.slot_of.len() {
            let grow = (r + 1).max(self.slot_of.len() * 3 / 2);
            self.slot_of.resize(grow, NO_SLOT);
        }
        self.slot_of[r] = slot;
    }

    /// Inserts or replaces the row `rowid`. `v.len()` must equal the arena's dimension.
    pub(crate) fn upsert(&mut self, rowid: i64, id: &str, v: &[f32]) {
        assert_eq!(v.len(), self.dim, "arena row of wrong length");
        let norm = crate::distance::norm(v);
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let code_norm = self.codes.as_mut().map(|c| c.encode(v));
        if let Some(slot) = self.slot(rowid) {
            let s = slot as usize;
            if self.keep_f32 {
                self.rows.row_mut(s).copy_from_slice(v);
            }
            if let (Some(c), Some(n)) = (self.codes.as_mut(), code_norm) {
                c.rows.row_mut(s).copy_from_slice(&c.buf);
                c.norms[s] = n;
            }
            self.inv_norms[s] = inv;
            if &*self.ids[s] != id {
                self.ids[s] = id.into();
            }
            return;
        }
        let slot = self.len();
        if self.keep_f32 {
            self.rows.push(v);
        }
        if let (Some(c), Some(n)) = (self.codes.as_mut(), code_norm) {
            let Codes { rows, buf, .. } = c;
            rows.push(buf);
            c.norms.push(n);
        }
        self.inv_norms.push(inv);
        self.rowids.push(rowid);
        self.ids.push(id.into());
        self.map_rowid(rowid, slot as u32);
    }

    /// Removes the row `rowid` if present; the last row moves into its slot.
    pub(crate) fn remove(&mut self, rowid: i64) {
        let Some(slot) = self.slot(rowid) else {
            return;
        };
        self.slot_of[rowid as usize] = NO_SLOT;
        let s = slot as usize;
        let last = self.len() - 1;
        if s != last {
            if self.keep_f32 {
                move_row(&mut self.rows, last, s);
            }
            if let Some(c) = self.codes.as_mut() {
                move_row(&mut c.rows, last, s);
                c.norms[s] = c.norms[last];
            }
            self.inv_norms[s] = self.inv_norms[last];
            self.rowids[s] = self.rowids[last];
            self.ids.swap(s, last);
            self.map_rowid(self.rowids[s], slot);
        }
        if self.keep_f32 {
            self.rows.pop();
        }
        if let Some(c) = self.codes.as_mut() {
            c.rows.pop();
            c.norms.pop();
        }
        self.inv_norms.pop();
        self.rowids.pop();
        self.ids.pop();
    }

    /// Bytes of memory held (capacity, not just length), including the id strings and the map.
    pub(crate) fn bytes_in_memory(&self) -> usize {
        let ids: usize = self.ids.iter().map(|s| s.len()).sum();
        let codes = self.codes.as_ref().map_or(0, |c| {
            c.rows.bytes() + c.norms.capacity() * 4 + c.quantizer.dim() * 8
        });
        codes
            + self.rows.bytes()
            + self.inv_norms.capacity() * 4
            + self.rowids.capacity() * 8
            + self.ids.capacity() * std::mem::size_of::<Box<str>>()
            + ids
            + self.slot_of.capacity() * 4
    }

    /// Bytes of raw vector data of the live rows (`len × dim × 4`).
    pub(crate) fn raw_vector_bytes(&self) -> usize {
        self.len() * self.dim * 4
    }

    /// Exact top-`k` of the query `q` over all rows, or over the slots in `only` (sorted
    /// ascending) when given. Scores are larger-is-better: cosine similarity, dot product, or
    /// the negated squared L2 distance. `q_inv_norm` is `1 / |q|` (used by cosine only).
    pub(crate) fn scan(
        &self,
        kernels: &Kernels,
        metric: Metric,
        q: &[f32],
        q_inv_norm: f32,
        k: usize,
        only: Option<&[u32]>,
    ) -> Vec<Candidate> {
        let key = |slot: u32| self.id(slot);
        let mut top = TopK::new(k, only.map_or(self.len(), <[u32]>::len), &key);
        let score = |slot: usize, raw: f32| self.score(metric, q_inv_norm, slot, raw);
        let kernel_one = match metric {
            Metric::L2 => kernels.l2sq,
            _ => kernels.dot,
        };
        match only {
            Some(slots) => {
                for &slot in slots {
                    let raw = kernel_one(q, self.row(slot));
                    top.push(Candidate {
                        score: score(slot as usize, raw),
                        slot,
                    });
                }
            }
            None if self.len() * self.dim >= PARALLEL_MIN_FLOATS => {
                // Two halves of the slots on two cores, each its own top k, merged.
                let mid = (self.len() / 2)
                    .next_multiple_of(SCAN_BLOCK)
                    .min(self.len());
                let (lo, hi) = crate::par::join(
                    || self.scan_slots(kernels, metric, q, q_inv_norm, k, 0..mid),
                    || self.scan_slots(kernels, metric, q, q_inv_norm, k, mid..self.len()),
                );
                for c in lo.into_iter().chain(hi) {
                    top.push(c);
                }
            }
            None => return self.scan_slots(kernels, metric, q, q_inv_norm, k, 0..self.len()),
        }
        top.into_sorted()
    }

    /// A scan's score of slot `slot` from its kernel value `raw` (larger is better): cosine
    /// similarity (with the query's inverse norm `q_inv_norm`), dot product, or negated
    /// squared L2.
    #[inline]
    fn score(&self, metric: Metric, q_inv_norm: f32, slot: usize, raw: f32) -> f32 {
        match metric {
            Metric::Cosine => raw * self.inv_norms[slot] * q_inv_norm,
            Metric::Dot => raw,
            Metric::L2 => -raw,
        }
    }

    /// The full scan's top `k` among the slots of `range` (whole scan blocks of the chunks but
    /// at its ends), best first.
    fn scan_slots(
        &self,
        kernels: &Kernels,
        metric: Metric,
        q: &[f32],
        q_inv_norm: f32,
        k: usize,
        range: std::ops::Range<usize>,
    ) -> Vec<Candidate> {
        let key = |slot: u32| self.id(slot);
        let mut top = TopK::new(k, range.len(), &key);
        let score = |slot: usize, raw: f32| self.score(metric, q_inv_norm, slot, raw);
        let block_kernel = match metric {
            Metric::L2 => kernels.l2sq_block,
            _ => kernels.dot_block,
        };
        let mut buf = [0f32; SCAN_BLOCK];
        for (first, chunk) in self.rows.filled() {
            // This chunk's part of the range.
            let n_rows = chunk.len() / self.dim;
            let from = range.start.clamp(first, first + n_rows);
            let to = range.end.clamp(first, first + n_rows);
            if from >= to {
                continue;
            }
            let part = &chunk[(from - first) * self.dim..(to - first) * self.dim];
            for (b, rows) in part.chunks(SCAN_BLOCK * self.dim).enumerate() {
                let n = rows.len() / self.dim;
                block_kernel(q, rows, &mut buf[..n]);
                let start = from + b * SCAN_BLOCK;
                let threshold = top.threshold();
                for (i, &raw) in buf[..n].iter().enumerate() {
                    let slot = start + i;
                    let s = score(slot, raw);
                    if threshold.is_some_and(|t| s < t) {
                        continue;
                    }
                    top.push(Candidate {
                        score: s,
                        slot: slot as u32,
                    });
                }
            }
        }
        top.into_sorted()
    }

    /// The `depth` best rows by the int8 codes' approximate score (larger is better, see
    /// [`PreparedQuery::score`]), over all rows or the slots in `only`; `(slot, approx score)`
    /// best first. Panics when the arena keeps no codes.
    pub(crate) fn scan_int8(
        &self,
        kernels: &'static Int8Kernels,
        q: &PreparedQuery,
        depth: usize,
        only: Option<&[u32]>,
    ) -> Vec<ScanHit> {
        let c = self
            .codes
            .as_ref()
            .expect("scan_int8 on an arena without codes");
        let dim = c.quantizer.dim();
        let mut scanner = Scanner::new(kernels, q, depth);
        match only {
            Some(slots) => {
                for &s in slots {
                    scanner.scan_row(c.code(s as usize), c.norms[s as usize], s);
                }
            }
            None if dim.is_multiple_of(4) => {
                for (first, words) in c.rows.filled() {
                    let bytes = Codes::bytes_of(words);
                    let n = bytes.len() / dim;
                    scanner.scan_rows(bytes, &c.norms[first..first + n], first as u32);
                }
            }
            None => {
                for s in 0..self.len() {
                    scanner.scan_row(c.code(s), c.norms[s], s as u32);
                }
            }
        }
        scanner.into_hits()
    }
}

/// Copies row `from` over row `to` (a swap-remove's move).
fn move_row(rows: &mut Rows, from: usize, to: usize) {
    let (dim, mut tmp) = (rows.dim, [0f32; 64]);
    if dim <= 64 {
        tmp[..dim].copy_from_slice(rows.row(from));
        rows.row_mut(to).copy_from_slice(&tmp[..dim]);
    } else {
        let moved = rows.row(from).to_vec();
        rows.row_mut(to).copy_from_slice(&moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_remove_keeps_slots_dense() {
        let mut a = Arena::with_capacity(3, 0);
        for i in 0..2000i64 {
            let v = [i as f32, 1.0, 2.0];
            a.upsert(i, &format!("id{i}"), &v);
        }
        assert_eq!(a.len(), 2000);
        for i in (0..2000i64).step_by(3) {
            a.remove(i);
        }
        a.remove(99_999); // unknown: no-op
        for i in 0..2000i64 {
            match a.slot(i) {
                Some(s) => {
                    assert_ne!(i % 3, 0);
                    assert_eq!(a.row(s)[0], i as f32);
                    assert_eq!(a.rowid(s), i);
                    assert_eq!(a.id(s), format!("id{i}"));
                }
                None => assert_eq!(i % 3, 0),
            }
        }
        // Overwrite in place.
        a.upsert(1, "id1", &[7.0, 7.0, 7.0]);
        assert_eq!(a.row(a.slot(1).unwrap()), &[7.0, 7.0, 7.0]);
        assert_eq!(a.len(), 2000 - 667);
    }

    #[test]
    fn rows_span_many_chunks() {
        // 384-d: 512 rows per chunk, so 3,000 rows use 6 chunks.
        let dim = 384;
        let mut a = Arena::with_capacity(dim, 0);
        let row = |i: i64| -> Vec<f32> {
            (0..dim)
                .map(|j| ((i * 31 + j as i64) % 97) as f32 - 48.0)
                .collect()
        };
        for i in 0..3000i64 {
            a.upsert(i, &i.to_string(), &row(i));
        }
        assert!(a.rows.chunks.len() >= 6);
        for i in (0..3000i64).step_by(4) {
            a.remove(i);
        }
        assert_eq!(a.len(), 2250);
        for i in 0..3000i64 {
            match a.slot(i) {
                Some(s) => assert_eq!(a.row(s), &row(i)[..]),
                None => assert_eq!(i % 4, 0),
            }
        }
        // The scan over chunks equals a scalar brute force.
        let q = row(7);
        let k = crate::distance::Kernels::best();
        let got = a.scan(k, Metric::L2, &q, 1.0, 5, None);
        let mut want: Vec<(f32, u32)> = (0..a.len() as u32)
            .map(|s| (-crate::distance::l2sq(&q, a.row(s)), s))
            .collect();
        want.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| a.id(x.1).cmp(a.id(y.1))));
        let got: Vec<u32> = got.iter().map(|c| c.slot).collect();
        let want: Vec<u32> = want.iter().take(5).map(|w| w.1).collect();
        assert_eq!(got, want);
        // Emptying frees all chunks but the first.
        for i in 0..3000i64 {
            a.remove(i);
        }
        assert_eq!((a.len(), a.rows.chunks.len()), (0, 1));
    }

    #[test]
    fn a_scan_in_two_halves_equals_one_pass() {
        // 9,000 × 256 floats: past PARALLEL_MIN_FLOATS, so `scan` runs in two halves. Rows
        // repeat every 97, so equal scores fall in both halves and the tie-break by id decides.
        let dim = 256;
        let n = 9000i64;
        assert!(n as usize * dim >= PARALLEL_MIN_FLOATS);
        let mut a = Arena::with_capacity(dim, 0);
        let row = |i: i64| -> Vec<f32> {
            (0..dim)
                .map(|j| (((i % 97) * 31 + j as i64) % 89) as f32 - 44.0)
                .collect()
        };
        for i in 0..n {
            a.upsert(i, &format!("{:05}", (i * 7919) % n), &row(i));
        }
        a.remove(17);
        let kernels = crate::distance::Kernels::best();
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            for (qi, k) in [(3, 1), (50, 10), (96, 100), (5, 250)] {
                let q = row(qi);
                let q_inv = 1.0 / crate::distance::norm(&q);
                let got = a.scan(kernels, metric, &q, q_inv, k, None);
                let one = a.scan_slots(kernels, metric, &q, q_inv, k, 0..a.len());
                assert_eq!(got, one, "{metric:?} k={k}");
                assert_eq!(got.len(), k);
            }
        }
    }

    #[test]
    fn memory_overhead_is_bounded() {
        let dim = 384;
        let mut a = Arena::with_capacity(dim, 0);
        let v = vec![0.5f32; dim];
        for i in 0..10_000i64 {
            a.upsert(i, "some-package-name", &v);
        }
        let ratio = a.bytes_in_memory() as f64 / a.raw_vector_bytes() as f64;
        assert!(ratio <= 1.3, "arena uses {ratio:.3}× the raw vector bytes");
    }
}
