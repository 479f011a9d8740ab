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
//! of the top-k selection). A `rowid → slot` map finds the slot of a changed row.
//! Growth is by 1/8 (not doubling) and batches reserve exactly, so capacity stays within
//! 1.125× of the live rows.

use std::collections::HashMap;

use crate::distance::Kernels;
use crate::topk::{Candidate, TopK};
use crate::Metric;

/// 64 bytes: one cache line, one AVX-512 register of f32.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// Rows scored per kernel call in a full scan: 256 × 384 × 4 bytes = 384 KiB fits in L2.
const SCAN_BLOCK: usize = 256;

/// Dense, aligned storage for `len` vectors of `dim` f32 values.
pub(crate) struct Arena {
    dim: usize,
    lines: Vec<Line>,
    len: usize,
    inv_norms: Vec<f32>,
    rowids: Vec<i64>,
    ids: Vec<Box<str>>,
    slot_of: HashMap<i64, u32>,
}

impl Arena {
    /// An empty arena for vectors of `dim` components, with room for `capacity` rows.
    pub(crate) fn with_capacity(dim: usize, capacity: usize) -> Self {
        let mut a = Arena {
            dim,
            lines: Vec::new(),
            len: 0,
            inv_norms: Vec::new(),
            rowids: Vec::new(),
            ids: Vec::new(),
            slot_of: HashMap::new(),
        };
        a.reserve_exact(capacity);
        a
    }

    fn reserve_exact(&mut self, rows: usize) {
        let lines = (rows * self.dim).div_ceil(16);
        self.lines.reserve_exact(lines.saturating_sub(self.lines.len()));
        self.inv_norms.reserve_exact(rows.saturating_sub(self.inv_norms.len()));
        self.rowids.reserve_exact(rows.saturating_sub(self.rowids.len()));
        self.ids.reserve_exact(rows.saturating_sub(self.ids.len()));
        self.slot_of.reserve(rows.saturating_sub(self.slot_of.len()));
    }

    /// Makes room for `additional` more rows without over-allocating.
    pub(crate) fn reserve_rows(&mut self, additional: usize) {
        self.reserve_exact(self.len + additional);
    }

    /// Number of live rows.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// All rows as one slice of `len × dim` floats.
    #[inline]
    pub(crate) fn data(&self) -> &[f32] {
        let n = self.len * self.dim;
        debug_assert!(n <= self.lines.len() * 16);
        // SAFETY: `lines` holds `lines.len() * 16` initialised f32 values (Line is repr(C) over
        // [f32; 16] with no padding: size 64, align 64), and `n` never exceeds that.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), n) }
    }

    fn data_mut(&mut self) -> &mut [f32] {
        let n = self.lines.len() * 16;
        // SAFETY: as in `data`, over the whole initialised buffer; `&mut self` makes it unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), n) }
    }

    /// The vector in `slot`.
    #[inline]
    pub(crate) fn row(&self, slot: u32) -> &[f32] {
        let s = slot as usize * self.dim;
        &self.data()[s..s + self.dim]
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
        self.slot_of.get(&rowid).copied()
    }

    /// Inserts or replaces the row `rowid`. `v.len()` must equal the arena's dimension.
    pub(crate) fn upsert(&mut self, rowid: i64, id: &str, v: &[f32]) {
        assert_eq!(v.len(), self.dim, "arena row of wrong length");
        let norm = crate::distance::norm(v);
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let dim = self.dim;
        if let Some(slot) = self.slot(rowid) {
            let s = slot as usize;
            self.data_mut()[s * dim..(s + 1) * dim].copy_from_slice(v);
            self.inv_norms[s] = inv;
            if &*self.ids[s] != id {
                self.ids[s] = id.into();
            }
            return;
        }
        let slot = self.len;
        let need_lines = ((slot + 1) * dim).div_ceil(16);
        if need_lines > self.lines.len() {
            if need_lines > self.lines.capacity() {
                // Grow by 1/8 (at least 1,024 rows) instead of doubling: bounded overhead.
                // Batches reserve their exact size up front (`reserve_rows`).
                let rows = (slot + slot / 8).max(slot + 1024);
                self.reserve_exact(rows);
            }
            self.lines.resize(need_lines, Line([0.0; 16]));
        }
        self.data_mut()[slot * dim..(slot + 1) * dim].copy_from_slice(v);
        self.inv_norms.push(inv);
        self.rowids.push(rowid);
        self.ids.push(id.into());
        self.slot_of.insert(rowid, slot as u32);
        self.len += 1;
    }

    /// Removes the row `rowid` if present; the last row moves into its slot.
    pub(crate) fn remove(&mut self, rowid: i64) {
        let Some(slot) = self.slot_of.remove(&rowid) else {
            return;
        };
        let s = slot as usize;
        let last = self.len - 1;
        let dim = self.dim;
        if s != last {
            self.data_mut()
                .copy_within(last * dim..(last + 1) * dim, s * dim);
            self.inv_norms[s] = self.inv_norms[last];
            self.rowids[s] = self.rowids[last];
            self.ids.swap(s, last);
            self.slot_of.insert(self.rowids[s], slot);
        }
        self.inv_norms.pop();
        self.rowids.pop();
        self.ids.pop();
        self.len -= 1;
        self.lines.truncate((self.len * dim).div_ceil(16));
    }

    /// Bytes of memory held (capacity, not just length), including the id strings and the map.
    pub(crate) fn bytes_in_memory(&self) -> usize {
        let ids: usize = self.ids.iter().map(|s| s.len()).sum();
        self.lines.capacity() * 64
            + self.inv_norms.capacity() * 4
            + self.rowids.capacity() * 8
            + self.ids.capacity() * std::mem::size_of::<Box<str>>()
            + ids
            // hashbrown: one (i64, u32) bucket (16 bytes with padding) + 1 control byte each.
            + self.slot_of.capacity() * 17
    }

    /// Bytes of raw vector data of the live rows (`len × dim × 4`).
    pub(crate) fn raw_vector_bytes(&self) -> usize {
        self.len * self.dim * 4
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
        let mut top = TopK::new(k, only.map_or(self.len, <[u32]>::len), &key);
        let score = |slot: usize, raw: f32| -> f32 {
            match metric {
                Metric::Cosine => raw * self.inv_norms[slot] * q_inv_norm,
                Metric::Dot => raw,
                Metric::L2 => -raw,
            }
        };
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
            None => {
                let block_kernel = match metric {
                    Metric::L2 => kernels.l2sq_block,
                    _ => kernels.dot_block,
                };
                let data = self.data();
                let mut buf = [0f32; SCAN_BLOCK];
                let mut start = 0;
                while start < self.len {
                    let n = SCAN_BLOCK.min(self.len - start);
                    let rows = &data[start * self.dim..(start + n) * self.dim];
                    block_kernel(q, rows, &mut buf[..n]);
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
                    start += n;
                }
            }
        }
        top.into_sorted()
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
