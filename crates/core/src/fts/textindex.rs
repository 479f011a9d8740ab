//! An in-memory inverted index of a shard's full-text rows: the exact BM25 top k of a query
//! without FTS5's work per matching row.
//!
//! FTS5 ranks by walking the query words' posting lists through its segment b-trees and calling
//! the scoring function once per matching row (about 0.5 µs a row; a 6-word query over 25,000
//! package descriptions visits 2,500 rows even with MaxScore pruning, 1.1–1.3 ms for the top
//! 100). Held in memory, the same posting lists are scored term at a time into one accumulator
//! per row ("term-at-a-time" evaluation, Turtle & Flood, IP&M 1995): a few µs per thousand
//! postings, and every matching row's exact score is known, not only the top k's.
//!
//! The index holds, per term, the rows containing it with the term's frequency (sorted by
//! rowid), and per row its distinct terms (to remove a row that changed). It is built from the
//! live rows' text and searchable fields cut into tokens exactly as the FTS5 index cuts them
//! (see [`super::api`]), so its document frequencies are FTS5's; row lengths, the row count and
//! the average length still come from FTS5's own tables. Scores are summed phrase by phrase in
//! the query's order with `bm25()`'s arithmetic, so they are the same `f64`s.
//!
//! Memory: 12 bytes per distinct (row, term) pair plus the vocabulary (about 13 MB for the
//! 25,000 descriptions of debian-minilm). Built for shards with at least [`MIN_ROWS`] text rows
//! (below that FTS5 has few rows to walk; at 900 rows it took about 1.5 ms per
//! hybrid search, ranking and re-scoring, against 0.5 ms here: see BENCHMARKS.md, "Agent
//! memory"), then kept current by the rows changed since its version.

use std::collections::HashMap;

use super::api::{B, K1};
use crate::error::Result;

/// Text rows (FTS5's row count) from which a connection builds the index.
pub(super) const MIN_ROWS: i64 = 256;

/// Rowids the index takes (they index its per-row tables); a shard past them ranks with FTS5.
pub(super) const MAX_ROWID: i64 = (u32::MAX - 1) as i64;

/// See the module docs.
#[derive(Default)]
pub(super) struct TextIndex {
    /// Token → term number.
    terms: HashMap<Box<[u8]>, u32>,
    /// Per term: `(rowid, term frequency)`, sorted by rowid.
    postings: Vec<Vec<(u32, u32)>>,
    /// Per rowid: its distinct terms (empty for a row not in the index).
    docs: Vec<Box<[u32]>>,
    /// Per rowid: its tokens (its length as the index counted it; 0 when not in the index).
    lens: Vec<u32>,
    /// Rows in the index.
    n_docs: usize,
    /// Scratch of [`TextIndex::add`]: the term numbers of one row, in token order.
    scratch: Vec<u32>,
}

/// One phrase of a query: its term (`None`: in no row) and its IDF.
pub(super) struct Phrase {
    pub term: Option<u32>,
    pub idf: f64,
}

impl TextIndex {
    /// The term number of `token` (as the index stores it: lowercase), if any row holds it.
    pub(super) fn term(&self, token: &[u8]) -> Option<u32> {
        self.terms.get(token).copied()
    }

    /// Rows holding `term`.
    pub(super) fn df(&self, term: Option<u32>) -> i64 {
        term.map_or(0, |t| self.postings[t as usize].len() as i64)
    }

    /// Adds row `rowid` (not in the index; `rowid` ≤ [`MAX_ROWID`]) with the tokens `tokens`
    /// pushes through the callback it is given (each token lowercase, as FTS5 stores it).
    pub(super) fn add(
        &mut self,
        rowid: i64,
        tokens: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<()>,
    ) -> Result<()> {
        let r = rowid as u32;
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        {
            let terms = &mut self.terms;
            let postings = &mut self.postings;
            tokens(&mut |tok: &[u8]| {
                let id = match terms.get(tok) {
                    Some(&id) => id,
                    None => {
                        let id = postings.len() as u32;
                        postings.push(Vec::new());
                        terms.insert(tok.into(), id);
                        id
                    }
                };
                ids.push(id);
            })?;
        }
        ids.sort_unstable();
        let mut distinct = Vec::new();
        let mut i = 0;
        while i < ids.len() {
            let t = ids[i];
            let mut j = i;
            while j < ids.len() && ids[j] == t {
                j += 1;
            }
            let list = &mut self.postings[t as usize];
            let tf = (j - i) as u32;
            match list.last() {
                Some(&(last, _)) if last >= r => {
                    let at = list.partition_point(|&(x, _)| x < r);
                    list.insert(at, (r, tf));
                }
                _ => list.push((r, tf)),
            }
            distinct.push(t);
            i = j;
        }
        let at = rowid as usize;
        if at >= self.docs.len() {
            self.docs.resize_with(at + 1, Default::default);
            self.lens.resize(at + 1, 0);
        }
        self.docs[at] = distinct.into_boxed_slice();
        self.lens[at] = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        if !ids.is_empty() {
            self.n_docs += 1;
        }
        self.scratch = ids;
        Ok(())
    }

    /// Row `r`'s length in tokens as the index counted it (0 when not in the index).
    pub(super) fn len(&self, r: u32) -> u32 {
        self.lens.get(r as usize).copied().unwrap_or(0)
    }

    /// One past the highest rowid the per-row tables hold.
    pub(super) fn rows_spanned(&self) -> usize {
        self.docs.len()
    }

    /// Rows in the index.
    pub(super) fn n_docs(&self) -> usize {
        self.n_docs
    }

    /// Bytes held (allocated capacity; the vocabulary's hash table estimated at 32 bytes per
    /// entry beside its keys).
    pub(super) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let postings: usize = self
            .postings
            .iter()
            .map(|l| l.capacity() * size_of::<(u32, u32)>())
            .sum::<usize>()
            + self.postings.capacity() * size_of::<Vec<(u32, u32)>>();
        let docs: usize = self.docs.iter().map(|d| d.len() * 4).sum::<usize>()
            + self.docs.capacity() * size_of::<Box<[u32]>>();
        let vocab: usize = self.terms.keys().map(|k| k.len() + 32).sum();
        postings + docs + vocab + self.lens.capacity() * 4 + self.scratch.capacity() * 4
    }

    /// Removes row `rowid` (nothing when it is not in the index).
    pub(super) fn remove(&mut self, rowid: i64) {
        let Some(doc) = usize::try_from(rowid)
            .ok()
            .and_then(|i| self.docs.get_mut(i))
        else {
            return;
        };
        let r = rowid as u32;
        let doc = std::mem::take(doc);
        if doc.is_empty() {
            return;
        }
        self.lens[r as usize] = 0;
        self.n_docs -= 1;
        for &t in doc.iter() {
            let list = &mut self.postings[t as usize];
            if let Ok(at) = list.binary_search_by_key(&r, |&(x, _)| x) {
                list.remove(at);
            }
        }
    }

    /// The term frequency of `term` in row `rowid` (0 when absent).
    fn tf(&self, term: u32, rowid: u32) -> u32 {
        let list = &self.postings[term as usize];
        list.binary_search_by_key(&rowid, |&(x, _)| x)
            .map_or(0, |at| list[at].1)
    }

    /// The BM25 score of row `rowid` for `phrases` (`None` when it holds none of them), with
    /// the row length `len` (tokens) and the average length `avgdl`.
    pub(super) fn score(
        &self,
        rowid: i64,
        phrases: &[Phrase],
        len: u32,
        avgdl: f64,
    ) -> Option<f64> {
        let r = u32::try_from(rowid).ok()?;
        let d = f64::from(len);
        let mut score = 0.0f64;
        let mut any = false;
        for p in phrases {
            let Some(t) = p.term else { continue };
            let tf = self.tf(t, r);
            if tf > 0 {
                any = true;
                score += term_score(p.idf, f64::from(tf), d, avgdl);
            }
        }
        any.then_some(score)
    }

    /// The top `k` rows for `phrases` as `(rowid, score)`, best first, equal scores by rowid:
    /// every row holding any phrase, scored phrase by phrase in order; `len` gives a row's
    /// length in tokens.
    pub(super) fn top_k(
        &self,
        phrases: &[Phrase],
        k: usize,
        avgdl: f64,
        len: impl Fn(u32) -> u32,
        allow: impl Fn(u32) -> bool,
    ) -> Vec<(i64, f64)> {
        let mut acc = vec![0.0f64; self.docs.len()];
        let mut touched: Vec<u32> = Vec::new();
        for p in phrases {
            let Some(t) = p.term else { continue };
            for &(r, tf) in &self.postings[t as usize] {
                let s = &mut acc[r as usize];
                if *s == 0.0 {
                    touched.push(r);
                }
                *s += term_score(p.idf, f64::from(tf), f64::from(len(r)), avgdl);
            }
        }
        let mut rows: Vec<(i64, f64)> = touched
            .into_iter()
            .filter(|&r| allow(r))
            .map(|r| (i64::from(r), acc[r as usize]))
            .collect();
        let order = |a: &(i64, f64), b: &(i64, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if rows.len() > k {
            rows.select_nth_unstable_by(k, order);
            rows.truncate(k);
        }
        rows.sort_unstable_by(order);
        rows
    }
}

/// One phrase's part of a row's BM25 score, as FTS5's `bm25()` computes it.
fn term_score(idf: f64, tf: f64, d: f64, avgdl: f64) -> f64 {
    idf * ((tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * d / avgdl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ix: &mut TextIndex, rowid: i64, text: &str) {
        ix.add(rowid, |f| {
            text.split(' ').for_each(|t| f(t.as_bytes()));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn postings_follow_adds_and_removes() {
        let mut ix = TextIndex::default();
        doc(&mut ix, 3, "a b a");
        doc(&mut ix, 1, "b c");
        doc(&mut ix, 7, "a");
        let (a, b, c) = (ix.term(b"a"), ix.term(b"b"), ix.term(b"c"));
        assert_eq!((ix.df(a), ix.df(b), ix.df(c)), (2, 2, 1));
        assert_eq!(ix.tf(a.unwrap(), 3), 2);
        assert_eq!(ix.postings[b.unwrap() as usize], [(1, 1), (3, 1)]);
        ix.remove(3);
        ix.remove(99);
        assert_eq!((ix.df(a), ix.df(b), ix.df(c)), (1, 1, 1));
        doc(&mut ix, 3, "c");
        assert_eq!(ix.postings[c.unwrap() as usize], [(1, 1), (3, 1)]);
        assert_eq!(ix.df(ix.term(b"zz")), 0);
    }

    #[test]
    fn top_k_sums_phrases_in_order_and_breaks_ties_by_rowid() {
        let mut ix = TextIndex::default();
        for r in 1..=5 {
            doc(&mut ix, r, if r % 2 == 0 { "x y" } else { "x" });
        }
        let ph = [
            Phrase {
                term: ix.term(b"x"),
                idf: 0.5,
            },
            Phrase {
                term: ix.term(b"y"),
                idf: 2.0,
            },
            Phrase {
                term: None,
                idf: 9.0,
            },
        ];
        let top = ix.top_k(&ph, 3, 2.0, |_| 2, |_| true);
        let x = term_score(0.5, 1.0, 2.0, 2.0);
        let xy = x + term_score(2.0, 1.0, 2.0, 2.0);
        assert_eq!(top, [(2, xy), (4, xy), (1, x)]);
        assert_eq!(ix.score(4, &ph, 2, 2.0), Some(xy));
        assert_eq!(ix.score(9, &ph, 2, 2.0), None);
        assert_eq!(ix.top_k(&ph, 10, 2.0, |_| 2, |_| true).len(), 5);
        // A filter keeps the order of what it allows.
        assert_eq!(ix.top_k(&ph, 2, 2.0, |_| 2, |r| r != 2), [(4, xy), (1, x)]);
    }
}
