//! Hybrid search in a shard: the vector and BM25 rankings of one query (in parallel with the
//! feature `threads`), their union re-scored so that every candidate has both exact scores, and
//! [`crate::fusion::fuse`] over it.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::read::ReadSnapshot;
use super::types::parse_metadata;
use super::{corrupt_item, Hit, HybridParams, HybridScores, SearchParams, Shard};
use crate::codec;
use crate::error::Result;
use crate::fusion::{fuse, Candidate};
use crate::profile::Metric;
use crate::schema;

/// A candidate's vector score (in the fused scale's units) and BM25 score (`None`: no word).
pub(crate) type Parts = (f32, Option<f32>);

/// Runs `a` and `b`, in parallel when the feature `threads` is on: `b` on a persistent helper
/// thread ([`crate::par::join`]; a panic in either is resumed here).
pub(crate) fn both<A, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B)
where
    A: Send,
    B: Send,
{
    crate::par::join(a, b)
}

/// A vector score in the fused scale's units: larger is better, L2 as the negated distance.
pub(crate) fn fusion_vector_score(metric: Metric, score: f32) -> f32 {
    match metric {
        Metric::L2 => -score,
        _ => score,
    }
}

/// A vector score of the arena's kind (larger is better; L2 as the negated squared distance)
/// in the metric's units (L2 as the distance).
fn metric_units(metric: Metric, internal: f32) -> f32 {
    match metric {
        Metric::L2 => (-internal).max(0.0).sqrt(),
        _ => internal,
    }
}

impl Shard {
    /// Hybrid search: the vector ranking of `query` and the BM25 ranking of `text` (each the
    /// top [`HybridParams::candidates_for`]`(k)` among the items matching `params.filter`), then
    /// their union with both exact scores of every candidate (its vector score from the arena,
    /// its BM25 score from FTS5: `None` when none of the words is in it), fused by
    /// `hybrid.fusion` ([`crate::fusion`]: distribution-based score fusion by default, or
    /// reciprocal rank fusion). Returns the top `params.k` by the fused score, each hit with
    /// its parts ([`Hit::hybrid`]); `params.min_score` applies to the fused score. Metadata and
    /// text are read for the returned hits alone (when [`SearchParams::payload`] is set).
    ///
    /// # Errors
    /// As [`Shard::search`] and [`Shard::search_text`]; [`Error::InvalidArgument`] for bad
    /// [`HybridParams`].
    pub fn search_hybrid(
        &self,
        query: &[f32],
        text: &str,
        params: &SearchParams,
        hybrid: &HybridParams,
    ) -> Result<Vec<Hit>> {
        let (sub, text_sub) = hybrid.rankings(params)?;
        let metric = params.metric.unwrap_or(self.profile.metric);
        let (by_vector, by_text) = both(
            || self.vector_ranked(query, &sub),
            || self.text_search(text, &text_sub),
        );
        let (by_vector, by_text) = (by_vector?, by_text?);
        // The union, keyed by rowid.
        let mut cands: Vec<Candidate<(String, i64)>> = Vec::new();
        let mut at: HashMap<i64, usize> = HashMap::new();
        for (rank, (rowid, id, score)) in by_vector.into_iter().enumerate() {
            at.insert(rowid, cands.len());
            cands.push(Candidate {
                key: (id, rowid),
                vector: fusion_vector_score(metric, metric_units(metric, score)),
                text: None,
                vector_rank: Some(rank),
                text_rank: None,
            });
        }
        let mut need_vector = Vec::new();
        for (rank, (rowid, hit)) in by_text.into_iter().enumerate() {
            match at.get(&rowid) {
                Some(&i) => {
                    cands[i].text = Some(hit.score);
                    cands[i].text_rank = Some(rank);
                }
                None => {
                    need_vector.push(cands.len());
                    cands.push(Candidate {
                        key: (hit.id, rowid),
                        vector: f32::NAN,
                        text: Some(hit.score),
                        vector_rank: None,
                        text_rank: Some(rank),
                    });
                }
            }
        }
        let need_text: Vec<usize> = (0..cands.len())
            .filter(|&i| cands[i].text_rank.is_none())
            .collect();
        self.rescore_union(query, metric, text, &mut cands, &need_vector, &need_text)?;
        // Candidates deleted since their ranking have no vector score: dropped.
        cands.retain(|c| !c.vector.is_nan());
        let fused = fuse(cands, &hybrid.fuse_params());
        let hits = fused
            .into_iter()
            .filter(|(_, s)| params.min_score.is_none_or(|m| *s >= m))
            .map(|(c, score)| {
                let (id, rowid) = c.key;
                let vector_score = match metric {
                    Metric::L2 => -c.vector,
                    _ => c.vector,
                };
                (
                    rowid,
                    Hit {
                        id,
                        score,
                        metadata: serde_json::Value::Null,
                        text: None,
                        hybrid: Some(HybridScores {
                            vector_score,
                            text_score: c.text,
                        }),
                    },
                )
            });
        if !params.payload {
            return Ok(hits.take(params.k).map(|(_, h)| h).collect());
        }
        // All fused hits, so that one deleted by another process since the rankings can be
        // replaced by the next.
        let reader = self.reader()?;
        with_payloads_by_rowid(reader.db(), hits, params.k)
    }

    /// Fills the missing scores of a union: the vector score of the candidates `need_vector`
    /// (from the arena, or from the file in an int8-only arena; `NaN` when the item is gone)
    /// and the BM25 score of the candidates `need_text` (`None` when no word is in it).
    fn rescore_union(
        &self,
        query: &[f32],
        metric: Metric,
        text: &str,
        cands: &mut [Candidate<(String, i64)>],
        need_vector: &[usize],
        need_text: &[usize],
    ) -> Result<()> {
        let words = crate::fts::words(text)?;
        let q_norm = crate::distance::norm(query);
        let q_inv = if q_norm > 0.0 { 1.0 / q_norm } else { 0.0 };
        let reader = self.reader()?;
        let db = reader.db();
        let _snapshot = ReadSnapshot::begin(db)?;
        // The BM25 statistics and caches are those of this snapshot's version (the state may
        // be ahead of it: another commit since).
        let version = super::catchup::max_seq(db)?;
        let mut from_file = Vec::new();
        let (version, n_live) = {
            let st = self.read_state();
            for &i in need_vector {
                let rowid = cands[i].key.1;
                match st.arena.slot(rowid) {
                    Some(slot) if st.arena.has_f32() => {
                        let v = st.arena.row(slot);
                        let s = match metric {
                            Metric::Cosine => {
                                (self.kernels.dot)(query, v) * st.arena.inv_norm(slot) * q_inv
                            }
                            Metric::Dot => (self.kernels.dot)(query, v),
                            Metric::L2 => -(self.kernels.l2sq)(query, v),
                        };
                        cands[i].vector = fusion_vector_score(metric, metric_units(metric, s));
                    }
                    Some(slot) => from_file.push((i, st.arena.inv_norm(slot))),
                    None => {}
                }
            }
            (version, st.arena.len() as i64)
        };
        if !from_file.is_empty() {
            let mut stmt = db.prepare_cached(schema::GET_VECTOR)?;
            let mut v = Vec::with_capacity(self.profile.dimension);
            for (i, inv_norm) in from_file {
                let blob: Option<Vec<u8>> = stmt
                    .query_row([cands[i].key.1], |r| r.get(0))
                    .optional()?
                    .flatten();
                let Some(blob) = blob else { continue };
                codec::decode_into(&blob, self.profile.dimension, &mut v)
                    .map_err(|e| corrupt_item(&cands[i].key.0, e))?;
                let s = match metric {
                    Metric::Cosine => (self.kernels.dot)(query, &v) * inv_norm * q_inv,
                    Metric::Dot => (self.kernels.dot)(query, &v),
                    Metric::L2 => -(self.kernels.l2sq)(query, &v),
                };
                cands[i].vector = fusion_vector_score(metric, metric_units(metric, s));
            }
        }
        let rowids: Vec<i64> = need_text.iter().map(|&i| cands[i].key.1).collect();
        let input = crate::fts::RankInput {
            version,
            n_live,
            k: rowids.len(),
            filter: None,
            words: &words,
            fields: &self.profile.searchable_fields,
        };
        let scores: HashMap<i64, f64> =
            crate::fts::score_rows(db, &input, &rowids, &self.profile.searchable_fields)?
                .into_iter()
                .collect();
        for &i in need_text {
            cands[i].text = scores.get(&cands[i].key.1).map(|&s| s as f32);
        }
        Ok(())
    }

    /// Both exact scores of the live items `ids` for a hybrid query (for fusing across shards):
    /// per id, `None` when it is not a live item, else its vector score in the fused scale's
    /// units (see [`fusion_vector_score`]) and its BM25 score (`None` when no word is in it).
    pub(crate) fn hybrid_parts(
        &self,
        query: &[f32],
        metric: Metric,
        text: &str,
        ids: &[&str],
    ) -> Result<Vec<Option<Parts>>> {
        let rowids: Vec<Option<i64>> = {
            let reader = self.reader()?;
            let db = reader.db();
            let mut stmt = db.prepare_cached(schema::FIND_BY_ID)?;
            ids.iter()
                .map(|id| {
                    let row: Option<(i64, i64)> = stmt
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    Ok(row.filter(|(_, cl)| cl % 2 == 1).map(|(rowid, _)| rowid))
                })
                .collect::<Result<_>>()?
        };
        let mut cands: Vec<Candidate<(String, i64)>> = ids
            .iter()
            .zip(&rowids)
            .filter_map(|(id, r)| {
                r.map(|rowid| Candidate {
                    key: (id.to_string(), rowid),
                    vector: f32::NAN,
                    text: None,
                    vector_rank: None,
                    text_rank: None,
                })
            })
            .collect();
        let all: Vec<usize> = (0..cands.len()).collect();
        self.rescore_union(query, metric, text, &mut cands, &all, &all)?;
        let mut by_rowid: HashMap<i64, Parts> = cands
            .into_iter()
            .filter(|c| !c.vector.is_nan())
            .map(|c| (c.key.1, (c.vector, c.text)))
            .collect();
        Ok(rowids
            .into_iter()
            .map(|r| r.and_then(|r| by_rowid.remove(&r)))
            .collect())
    }

    /// The first `k` of `hits` that are still live, with their metadata and text read from
    /// SQLite (one snapshot); hits deleted since their search are skipped.
    pub(crate) fn with_payloads(&self, hits: Vec<Hit>, k: usize) -> Result<Vec<Hit>> {
        let reader = self.reader()?;
        let keyed = hits.into_iter().map(|h| (h.id.clone(), h));
        payloads(reader.db(), schema::GET_PAYLOAD, keyed, k)
    }
}

/// The first `k` of `hits` (rowid, hit) still live, with their payloads (one snapshot).
fn with_payloads_by_rowid(
    db: &Connection,
    hits: impl Iterator<Item = (i64, Hit)>,
    k: usize,
) -> Result<Vec<Hit>> {
    payloads(db, schema::GET_PAYLOAD_BY_ROWID, hits, k)
}

/// The first `k` of `hits` still live, filled with their metadata and text by `sql` (one
/// snapshot), which takes a hit's key and returns `(metadata JSON, text)` for a live item.
fn payloads<K: rusqlite::ToSql>(
    db: &Connection,
    sql: &str,
    hits: impl Iterator<Item = (K, Hit)>,
    k: usize,
) -> Result<Vec<Hit>> {
    let _snapshot = ReadSnapshot::begin(db)?;
    let mut get = db.prepare_cached(sql)?;
    let mut out = Vec::with_capacity(k);
    for (key, hit) in hits {
        if out.len() == k {
            break;
        }
        let row = get
            .query_row([key], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            })
            .optional()?;
        if let Some((meta, text)) = row {
            out.push(Hit {
                metadata: parse_metadata(meta)?,
                text,
                ..hit
            });
        }
    }
    Ok(out)
}
