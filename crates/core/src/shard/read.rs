//! The read side: exact, HNSW, text and hybrid search, and `get`.
//!
//! A vector search runs in three phases so that it never holds a connection and the state
//! lock at once longer than it must (and an in-memory shard's searches, whose reads share the
//! writer's connection, still scan in parallel):
//!
//! 1. with a reader: catch up with other connections' commits, and, for a filter not in the
//!    cache, evaluate it in SQLite (checked to be at the state's version);
//! 2. under the state read lock: the planner's path over the arena or the graph, giving
//!    rowids, ids and scores (or, in an int8-only arena, the approximate candidates);
//! 3. with a reader: f32 rescoring from the file (int8-only arenas) and the hits' payloads; a
//!    hit deleted by another process in between sends the search back to phase 1.

use std::sync::{Arc, PoisonError};

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use super::catchup::max_seq;
use super::conn::Reader;
use super::types::parse_metadata;
use super::{corrupt_item, Shard, State, FILTER_CACHE};
use super::{Hit, Item, SearchParams, MAX_EF_SEARCH, MAX_K};
use crate::codec;
use crate::distance;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index::{self, SearchPath};
use crate::profile::Metric;
use crate::quant::{rescore_depth, PreparedQuery};
use crate::schema;
use crate::topk::{Candidate, TopK};

/// Attempts of a search that races another process's writes before it gives up.
const ATTEMPTS: usize = 8;

/// Before attempt `attempt` of a search (0 = the first): nothing, then a yield, then waits
/// doubling from 50 µs (3.2 ms in all before the last attempt). A commit is published to the
/// state a moment after it reaches the file; retrying at once would meet the same moment.
/// On wasm32-unknown-unknown (one connection, no other process, and no `sleep`) it retries at
/// once.
fn backoff(attempt: usize) {
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    match attempt {
        0 => {}
        1 => std::thread::yield_now(),
        n => std::thread::sleep(std::time::Duration::from_micros(25 << (n - 1).min(8))),
    }
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    let _ = attempt;
}

/// A candidate of phase 2: what phase 3 needs without the state lock.
struct Found {
    rowid: i64,
    id: String,
    /// Larger is better: cosine similarity, dot product, or negated squared L2.
    score: f32,
}

/// Phase 2's result.
enum Candidates {
    /// The best k, best first.
    Ranked(Vec<Found>),
    /// An int8-only arena's approximate best rows, to rescore with f32 from the file: rowid,
    /// id, inverse norm.
    Rescore(Vec<(i64, String, f32)>),
}

/// A read transaction (one snapshot for several statements) on cached `BEGIN` / `COMMIT`
/// statements: `Connection::transaction` prepares both anew every time, a few µs each.
pub(super) struct ReadSnapshot<'a>(&'a Connection);

impl<'a> ReadSnapshot<'a> {
    pub(super) fn begin(db: &'a Connection) -> Result<ReadSnapshot<'a>> {
        db.prepare_cached(schema::BEGIN)?.execute([])?;
        Ok(ReadSnapshot(db))
    }
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        // Ending a read transaction does not fail in practice; if it did, roll back so that
        // the connection is never left inside one.
        if self
            .0
            .prepare_cached(schema::COMMIT)
            .and_then(|mut s| s.execute([]))
            .is_err()
        {
            let _ = self.0.execute_batch(schema::ROLLBACK);
        }
    }
}

pub(super) fn racing(what: &str) -> Error {
    Error::Busy(format!(
        "{what} kept racing with another process's writes ({ATTEMPTS} attempts)"
    ))
}

impl Shard {
    /// Fetches a live item by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or deleted id; [`Error::Corrupt`] for a stored vector
    /// of the wrong length.
    pub fn get(&self, id: &str) -> Result<Item> {
        let reader = self.reader()?;
        self.get_on(reader.db(), id)
    }

    /// The exact top-k items nearest to `query`, best first (ties broken by id, ascending).
    ///
    /// Scores are the metric's (see [`Metric`]): cosine similarity, dot product, or L2
    /// distance. With a filter, the result is the true top k among the items that match it.
    /// The scan reads the in-memory arena with the SIMD kernels chosen at start-up; only the k
    /// hits' metadata and text are read from SQLite.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`], [`Error::EmptyVector`], [`Error::NonFinite`],
    /// [`Error::ZeroVector`] (cosine) for a bad query; [`Error::InvalidArgument`] for `k` outside
    /// 1 ..= [`MAX_K`], `min_score` with L2, `max_distance` with cosine/dot, or a non-finite
    /// threshold.
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
        Ok(self.search_with_path(query, params)?.0)
    }

    /// [`Shard::search`], also saying which path the planner chose ([`index::plan`]): exact
    /// when the shard has no index, is small, the query sets [`SearchParams::exact`] or another
    /// metric than the shard's, or the filter matches few items; HNSW otherwise (approximate:
    /// recall@k below 1, tuned by [`SearchParams::ef_search`]).
    ///
    /// # Errors
    /// As [`Shard::search`]; also [`Error::InvalidArgument`] for `ef_search` outside
    /// 1 ..= [`MAX_EF_SEARCH`]; [`Error::Busy`] when another process's deletes kept removing
    /// hits between the scan and the payload reads.
    pub fn search_with_path(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<(Vec<Hit>, SearchPath)> {
        let metric = params.metric.unwrap_or(self.profile.metric);
        self.check_search(query, params, metric)?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt);
            let Some((found, path)) = self.ranked_once(query, params, metric)? else {
                continue;
            };
            let reader = self.reader()?;
            if let Some(hits) = self.finish_hits(reader.db(), metric, params, found)? {
                return Ok((hits, path));
            }
        }
        Err(racing("search"))
    }

    /// The vector ranking without payloads or thresholds: `(rowid, id, score)` of the best
    /// `params.k`, the score larger-is-better (cosine similarity, dot product, negated squared
    /// L2 distance).
    pub(crate) fn vector_ranked(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<Vec<(i64, String, f32)>> {
        let metric = params.metric.unwrap_or(self.profile.metric);
        self.check_search(query, params, metric)?;
        for attempt in 0..ATTEMPTS {
            backoff(attempt);
            if let Some((found, _)) = self.ranked_once(query, params, metric)? {
                return Ok(found
                    .into_iter()
                    .map(|f| (f.rowid, f.id, f.score))
                    .collect());
            }
        }
        Err(racing("search"))
    }

    /// Phases 1 to 3 of a vector search, without payloads; `None` when another process committed
    /// between the phases (the caller tries again).
    fn ranked_once(
        &self,
        query: &[f32],
        params: &SearchParams,
        metric: Metric,
    ) -> Result<Option<(Vec<Found>, SearchPath)>> {
        let q_norm = distance::norm(query);
        let q_inv = if q_norm > 0.0 { 1.0 / q_norm } else { 0.0 };
        let filter = params.filter.as_ref().filter(|f| !f.is_empty());
        // Phase 1.
        let slots = {
            let mut reader = self.reader()?;
            self.sync_reader(&mut reader)?;
            match filter {
                Some(f) => match self.filter_slots(&reader, f)? {
                    Some(s) => Some(s),
                    None => return Ok(None),
                },
                None => None,
            }
        };
        // Phase 2.
        let (cands, path) = {
            let st = self.read_state();
            if slots.as_ref().is_some_and(|(v, _)| *v != st.version) {
                return Ok(None);
            }
            let only = slots.as_ref().map(|(_, s)| s.as_slice());
            let (cands, path) = self.candidates(&st, metric, query, q_inv, params, only)?;
            // A graph search returns fewer than k hits only when it could not reach enough
            // items (a sparse graph after many deletions can leave some unlinked): the exact
            // scan answers then, so a search never misses items it could return.
            let reachable = only.map_or(st.arena.len(), <[u32]>::len);
            match cands {
                Candidates::Ranked(found)
                    if path == SearchPath::Hnsw && found.len() < params.k.min(reachable) =>
                {
                    let exact = params.clone().with_exact(true);
                    self.candidates(&st, metric, query, q_inv, &exact, only)?
                }
                cands => (cands, path),
            }
        };
        // Phase 3 (its rescoring part).
        let mut found = match cands {
            Candidates::Ranked(found) => found,
            Candidates::Rescore(approx) => {
                let reader = self.reader()?;
                self.rescore(reader.db(), metric, query, q_inv, params.k, approx)?
            }
        };
        // Scores are finite for every vector within `codec::MAX_NORM`; one stored before the
        // limit existed is never returned with a NaN or infinite score.
        found.retain(|f| f.score.is_finite());
        Ok(Some((found, path)))
    }

    /// Turns phase 2's candidates into hits (scores in the metric's units, thresholds applied,
    /// payloads read). `None` when a hit was deleted by another process meanwhile.
    fn finish_hits(
        &self,
        db: &Connection,
        metric: Metric,
        params: &SearchParams,
        found: Vec<Found>,
    ) -> Result<Option<Vec<Hit>>> {
        let snapshot = (params.payload && found.len() > 1)
            .then(|| ReadSnapshot::begin(db))
            .transpose()?;
        let mut get = db.prepare_cached(schema::GET_HIT)?;
        let mut hits = Vec::with_capacity(found.len());
        for f in found {
            let score = match metric {
                Metric::L2 => (-f.score).max(0.0).sqrt(),
                _ => f.score,
            };
            if params.min_score.is_some_and(|m| score < m)
                || params.max_distance.is_some_and(|m| score > m)
            {
                break;
            }
            if !params.payload {
                hits.push(Hit {
                    id: f.id,
                    score,
                    metadata: Value::Null,
                    text: None,
                    hybrid: None,
                });
                continue;
            }
            let row = get
                .query_row([f.rowid], |r| {
                    Ok((
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .optional()?;
            let Some((meta, text)) = row else {
                // Deleted by another process between the scan and this read.
                return Ok(None);
            };
            hits.push(Hit {
                id: f.id,
                score,
                metadata: parse_metadata(meta)?,
                text,
                hybrid: None,
            });
        }
        drop(snapshot);
        Ok(Some(hits))
    }

    /// The best `params.k` candidates by the path the planner picks (phase 2).
    fn candidates(
        &self,
        st: &State,
        metric: Metric,
        query: &[f32],
        q_inv: f32,
        params: &SearchParams,
        only: Option<&[u32]>,
    ) -> Result<(Candidates, SearchPath)> {
        let arena = &st.arena;
        let found = |cands: Vec<Candidate>| {
            Candidates::Ranked(
                cands
                    .into_iter()
                    .map(|c| Found {
                        rowid: arena.rowid(c.slot),
                        id: arena.id(c.slot).to_string(),
                        score: c.score,
                    })
                    .collect(),
            )
        };
        let ix = st
            .index
            .as_ref()
            .filter(|_| !params.exact && metric == self.profile.metric);
        let Some(ix) = ix else {
            let c = self.exact_candidates(st, metric, query, q_inv, params.k, only)?;
            return Ok((c.map_or_else(|r| r, found), SearchPath::Exact));
        };
        let ef = params
            .ef_search
            .unwrap_or(ix.graph.params().ef_search)
            .max(params.k);
        let path = index::plan(&st.planner, arena.len(), only.map(<[u32]>::len), ef);
        if path == SearchPath::Exact {
            let c = self.exact_candidates(st, metric, query, q_inv, params.k, only)?;
            return Ok((c.map_or_else(|r| r, found), path));
        }
        // Filter by rowid (the graph's node ids): a bitset of the matching rows.
        let bits: Option<Vec<u64>> = only.map(|slots| {
            let rowids = slots.iter().map(|&s| arena.rowid(s) as usize);
            let bound = rowids.clone().max().map_or(0, |m| m + 1);
            let mut bits = vec![0u64; bound.div_ceil(64)];
            for r in rowids {
                bits[r / 64] |= 1 << (r % 64);
            }
            bits
        });
        let pass = |node: u32| {
            let n = node as usize;
            bits.as_ref()
                .is_some_and(|b| b.get(n / 64).is_some_and(|w| (w >> (n % 64)) & 1 == 1))
        };
        let filter: Option<&dyn Fn(u32) -> bool> = if bits.is_some() { Some(&pass) } else { None };
        let src = index::ArenaSource(arena);
        let graph_hits = ix.graph.search(query, params.k, ef, &src, filter)?;
        let mut cands: Vec<Candidate> = graph_hits
            .into_iter()
            .filter_map(|(d, node)| {
                let slot = arena.slot(i64::from(node))?;
                let score = match metric {
                    Metric::Cosine => 1.0 - d,
                    Metric::Dot | Metric::L2 => -d,
                };
                Some(Candidate { score, slot })
            })
            .collect();
        // Same order as the exact path: score descending, ties by id.
        cands.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| arena.id(a.slot).cmp(arena.id(b.slot)))
        });
        Ok((found(cands), path))
    }

    /// The exact top k over all rows or the slots in `only`: the f32 scan; in a quantized
    /// shard, the int8 scan for the best [`rescore_depth`]`(k)` rows followed by f32 rescoring
    /// of those, here when the arena keeps f32 rows (`Ok(Err(..))` hands the rescoring from
    /// the file to phase 3 otherwise). Scores and ties as in [`crate::arena::Arena::scan`].
    fn exact_candidates(
        &self,
        st: &State,
        metric: Metric,
        query: &[f32],
        q_inv: f32,
        k: usize,
        only: Option<&[u32]>,
    ) -> Result<std::result::Result<Vec<Candidate>, Candidates>> {
        let arena = &st.arena;
        let Some(qz) = arena.quantizer() else {
            return Ok(Ok(arena.scan(self.kernels, metric, query, q_inv, k, only)));
        };
        let prepared = PreparedQuery::new(qz, query, metric)?;
        let approx = arena.scan_int8(
            crate::distance::int8::Int8Kernels::best(),
            &prepared,
            rescore_depth(k),
            only,
        );
        if !arena.has_f32() {
            return Ok(Err(Candidates::Rescore(
                approx
                    .into_iter()
                    .map(|h| {
                        let id = arena.id(h.row).to_string();
                        (arena.rowid(h.row), id, arena.inv_norm(h.row))
                    })
                    .collect(),
            )));
        }
        let key = |slot: u32| arena.id(slot);
        let mut top = TopK::new(k, approx.len(), &key);
        for h in approx {
            let v = arena.row(h.row);
            let score = match metric {
                Metric::Cosine => (self.kernels.dot)(query, v) * arena.inv_norm(h.row) * q_inv,
                Metric::Dot => (self.kernels.dot)(query, v),
                Metric::L2 => -(self.kernels.l2sq)(query, v),
            };
            top.push(Candidate { score, slot: h.row });
        }
        Ok(Ok(top.into_sorted()))
    }

    /// Phase 3 of an int8-only arena: the exact top k of the approximate candidates, their f32
    /// vectors read from the file.
    fn rescore(
        &self,
        db: &Connection,
        metric: Metric,
        query: &[f32],
        q_inv: f32,
        k: usize,
        approx: Vec<(i64, String, f32)>,
    ) -> Result<Vec<Found>> {
        let key = |i: u32| approx[i as usize].1.as_str();
        let mut top = TopK::new(k, approx.len(), &key);
        let mut stmt = db.prepare_cached(schema::GET_VECTOR)?;
        let mut v = Vec::with_capacity(self.profile.dimension);
        for (i, (rowid, id, inv_norm)) in approx.iter().enumerate() {
            let blob: Option<Vec<u8>> = stmt.query_row([rowid], |r| r.get(0)).optional()?.flatten();
            // A row deleted by another process since the scan: skipped (the next catch-up
            // removes it from the arena).
            let Some(blob) = blob else { continue };
            codec::decode_into(&blob, self.profile.dimension, &mut v)
                .map_err(|e| corrupt_item(id, e))?;
            let score = match metric {
                Metric::Cosine => (self.kernels.dot)(query, &v) * inv_norm * q_inv,
                Metric::Dot => (self.kernels.dot)(query, &v),
                Metric::L2 => -(self.kernels.l2sq)(query, &v),
            };
            top.push(Candidate {
                score,
                slot: i as u32,
            });
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .map(|c| {
                let (rowid, id, _) = &approx[c.slot as usize];
                Found {
                    rowid: *rowid,
                    id: id.clone(),
                    score: c.score,
                }
            })
            .collect())
    }

    fn check_search(&self, query: &[f32], params: &SearchParams, metric: Metric) -> Result<()> {
        if let Some(ef) = params.ef_search {
            if ef == 0 || ef > MAX_EF_SEARCH {
                return Err(Error::InvalidArgument(format!(
                    "ef_search must be 1..={MAX_EF_SEARCH}, got {ef}"
                )));
            }
        }
        codec::validate(query, Some(self.profile.dimension))?;
        if metric == Metric::Cosine && distance::norm(query) == 0.0 {
            return Err(Error::ZeroVector);
        }
        if params.k == 0 || params.k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k must be 1..={MAX_K}, got {}",
                params.k
            )));
        }
        if let Some(m) = params.min_score {
            if !m.is_finite() {
                return Err(Error::InvalidArgument("min_score must be finite".into()));
            }
            if metric == Metric::L2 {
                return Err(Error::InvalidArgument(
                    "min_score applies to cosine and dot; use max_distance with l2".into(),
                ));
            }
        }
        if let Some(m) = params.max_distance {
            if !m.is_finite() || m < 0.0 {
                return Err(Error::InvalidArgument(
                    "max_distance must be finite and ≥ 0".into(),
                ));
            }
            if metric != Metric::L2 {
                return Err(Error::InvalidArgument(
                    "max_distance applies to l2; use min_score with cosine or dot".into(),
                ));
            }
        }
        Ok(())
    }

    /// The slots (ascending) of the live items matching `filter`, and the state version they
    /// belong to: from the cache of recent filters, or evaluated in SQLite. `None` when the
    /// reader's snapshot is not the state's version (another process committed since the
    /// catch-up): the caller catches up and tries again.
    fn filter_slots(
        &self,
        reader: &Reader<'_>,
        filter: &Filter,
    ) -> Result<Option<(u64, Arc<Vec<u32>>)>> {
        let cached = {
            let version = self.read_state().version;
            let mut cache = self
                .filter_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache
                .iter()
                .position(|(f, v, _)| *v == version && f == filter)
                .map(|i| {
                    let entry = cache.remove(i);
                    let slots = entry.2.clone();
                    cache.insert(0, entry);
                    (version, slots)
                })
        };
        if cached.is_some() {
            return Ok(cached);
        }
        let db = reader.db();
        let (expr, values) = filter.to_sql("metadata");
        let (committed, rowids) = {
            let _snapshot = ReadSnapshot::begin(db)?;
            let committed = max_seq(db)?;
            let mut stmt = db.prepare_cached(&schema::filter_rowids(&expr))?;
            let rowids = stmt
                .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    r.get::<_, i64>(0)
                })?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            (committed, rowids)
        };
        let st = self.read_state();
        if committed != st.last_seq {
            return Ok(None);
        }
        let mut slots: Vec<u32> = rowids
            .into_iter()
            .filter_map(|r| st.arena.slot(r))
            .collect();
        slots.sort_unstable();
        let slots = Arc::new(slots);
        let mut cache = self
            .filter_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.retain(|(_, v, _)| *v == st.version);
        cache.insert(0, (filter.clone(), st.version, slots.clone()));
        cache.truncate(FILTER_CACHE);
        Ok(Some((st.version, slots)))
    }

    /// Full-text search: the top k live items by BM25 over their text and searchable metadata
    /// fields (SQLite FTS5 `bm25()`), best first. The query's words are OR-ed (any word may
    /// match; items matching more, and rarer, words rank higher); FTS5 query syntax in `text`
    /// is not interpreted, so any user text is safe. `score` is the BM25 score (larger is
    /// better; FTS5's `bm25()` negated); equal scores keep insertion order. `params.filter` and
    /// `params.min_score` apply; `metric` and `max_distance` do not.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a query without any word, one over 4 MiB, `k` outside
    /// 1 ..= [`MAX_K`], or a `metric` / `max_distance` in `params`.
    pub fn search_text(&self, text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        Ok(self
            .text_search(text, params)?
            .into_iter()
            .map(|(_, hit)| hit)
            .collect())
    }

    /// [`Shard::search_text`] with each hit's rowid.
    pub(crate) fn text_search(&self, text: &str, params: &SearchParams) -> Result<Vec<(i64, Hit)>> {
        if params.k == 0 || params.k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k must be 1..={MAX_K}, got {}",
                params.k
            )));
        }
        if params.metric.is_some() || params.max_distance.is_some() {
            return Err(Error::InvalidArgument(
                "text search ranks by BM25: metric and max_distance do not apply".into(),
            ));
        }
        let words = crate::fts::words(text)?;
        let filter = params
            .filter
            .as_ref()
            .filter(|f| !f.is_empty())
            .map(|f| f.to_sql("metadata"));
        for attempt in 0..ATTEMPTS {
            backoff(attempt);
            let mut reader = self.reader()?;
            self.sync_reader(&mut reader)?;
            let db = reader.db();
            // One read snapshot for the ranking and the payloads, at the arena's version
            // (another process may have committed since the catch-up: then catch up again).
            // The snapshot starts under the state lock: this process's writer, which holds
            // the lock from before its commit until the state shows it, cannot commit in
            // between, so a mismatch means another process's commit (caught up next attempt).
            let (tx, committed, n_live) = {
                let st = self.read_state();
                let tx = ReadSnapshot::begin(db)?;
                let committed = max_seq(db)?;
                if committed != st.last_seq {
                    continue;
                }
                (tx, committed, st.arena.len() as i64)
            };
            // Ranked without the state lock, so that a writer waiting to publish its commit
            // never waits for a ranking (and new rankings, behind that writer, for it).
            let ranked = crate::fts::rank(
                db,
                &crate::fts::RankInput {
                    version: committed,
                    n_live,
                    k: params.k,
                    filter: filter.clone(),
                    words: &words,
                    fields: &self.profile.searchable_fields,
                },
            )?;
            let mut found = Vec::with_capacity(ranked.len());
            {
                let st = self.read_state();
                // This process's writes since the snapshot have reached the arena: their
                // deletions are skipped (the snapshot's payloads are still read below).
                let moved = st.last_seq != committed;
                for (rowid, score) in ranked {
                    let score = score as f32;
                    if params.min_score.is_some_and(|m| score < m) {
                        break;
                    }
                    // The FTS index holds exactly the live items of this snapshot, and so does
                    // the arena at its version: ids come from it; only payloads need SQLite.
                    let Some(slot) = st.arena.slot(rowid) else {
                        if moved {
                            continue;
                        }
                        return Err(Error::Corrupt(format!(
                            "text index row {rowid} has no live item"
                        )));
                    };
                    found.push((rowid, score, st.arena.id(slot).to_string()));
                }
            }
            let mut get = db.prepare_cached(schema::GET_HIT)?;
            let mut hits = Vec::with_capacity(found.len());
            for (rowid, score, id) in found {
                let (metadata, text) = if params.payload {
                    let (meta, text) = get.query_row([rowid], |r| {
                        Ok((
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    })?;
                    (parse_metadata(meta)?, text)
                } else {
                    (Value::Null, None)
                };
                hits.push((
                    rowid,
                    Hit {
                        id,
                        score,
                        metadata,
                        text,
                        hybrid: None,
                    },
                ));
            }
            drop(tx);
            return Ok(hits);
        }
        Err(racing("text search"))
    }
}
