//! Search across shards: the targets' hits searched in parallel (feature `threads`) and
//! merged into one top k; text search merged by BM25; hybrid search fused by RRF over the
//! merged rankings.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{validate_name, MultiSearch, ShardFailure, ShardHit, ShardManager, Targets};
use crate::error::{Error, Result};
use crate::fusion::{fuse, Candidate};
use crate::profile::{Metric, Profile};
use crate::shard::{Hit, HybridParams, HybridScores, SearchParams, Shard};

impl ShardManager {
    /// The exact top `params.k` over the named shards, merged; see [`ShardManager::search`].
    ///
    /// # Errors
    /// As [`ShardManager::search`].
    pub fn search_many(
        &self,
        names: &[&str],
        query: &[f32],
        params: &SearchParams,
    ) -> Result<MultiSearch> {
        self.search(Targets::Names(names), query, params)
    }

    /// The exact top `params.k` over every shard whose name starts with `prefix` (e.g.
    /// `team-a/`); see [`ShardManager::search`].
    ///
    /// # Errors
    /// As [`ShardManager::search`].
    pub fn search_prefix(
        &self,
        prefix: &str,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<MultiSearch> {
        self.search(Targets::Prefix(prefix), query, params)
    }

    /// Searches the target shards in parallel ([`Shard::search`] on each, with `params`) and
    /// merges their hits into one top `params.k`: best first (larger score for cosine and dot,
    /// smaller distance for L2), ties broken by id, then shard name. The result equals one exact
    /// search over the union of the shards' items.
    ///
    /// A shard that cannot be opened or searched, and an unknown name in a list, is reported in
    /// [`MultiSearch::failures`]; the others' hits still come back. A bad query or bad
    /// parameters fail the whole call, and so do shards of different profiles: all target
    /// shards must have the first one's dimension, metric and embedding model.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid name or prefix; [`Error::ProfileMismatch`] when
    /// a shard's dimension, metric or embedding model differs from the first shard's (the
    /// message names both shards and both values); [`Error::DimensionMismatch`],
    /// [`Error::EmptyVector`], [`Error::NonFinite`], [`Error::ZeroVector`],
    /// [`Error::InvalidArgument`], [`Error::InvalidFilter`] for a bad query or parameters;
    /// [`Error::Sqlite`] / [`Error::Corrupt`] reading the catalog.
    pub fn search(
        &self,
        targets: Targets<'_>,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<MultiSearch> {
        let (names, failures, profile) = self.resolve(targets)?;
        let Some(profile) = profile else {
            return Ok(MultiSearch {
                hits: Vec::new(),
                failures,
            });
        };
        crate::codec::validate(query, Some(profile.dimension))?;
        let metric = params.metric.unwrap_or(profile.metric);
        self.fan_out(names, failures, params.k, metric.higher_is_better(), |s| {
            s.search(query, params)
        })
    }

    /// Full-text search across shards: [`Shard::search_text`] on each target, merged into one
    /// top `params.k` by BM25 score. BM25 statistics (document frequencies) are each shard's
    /// own, so scores from shards of very different sizes are comparable only roughly, as in
    /// any sharded BM25.
    ///
    /// # Errors
    /// As [`ShardManager::search`] and [`Shard::search_text`].
    pub fn search_text(
        &self,
        targets: Targets<'_>,
        text: &str,
        params: &SearchParams,
    ) -> Result<MultiSearch> {
        self.search_with(targets, params.k, true, |s| s.search_text(text, params))
    }

    /// Hybrid search across shards: the merged vector ranking and the merged BM25 ranking of
    /// the targets (the top [`HybridParams::candidates_for`]`(k)` of each), their union re-scored
    /// in each candidate's shard so that every candidate has both exact scores, and one fusion
    /// over the union ([`crate::fusion`]), as [`Shard::search_hybrid`] does within a shard. BM25
    /// statistics are each shard's own; DBSF then standardises each kind of score over the
    /// whole union, so the fused scores of hits from different shards are on one scale. The
    /// rankings carry ids only; metadata and text are read for the returned hits alone (when
    /// [`SearchParams::payload`] is set).
    ///
    /// # Errors
    /// As [`ShardManager::search`], [`Shard::search_text`] and [`HybridParams::validate`].
    pub fn search_hybrid(
        &self,
        targets: Targets<'_>,
        query: &[f32],
        text: &str,
        params: &SearchParams,
        hybrid: &HybridParams,
    ) -> Result<MultiSearch> {
        let (sub, text_sub) = hybrid.rankings(params)?;
        let (by_vector, by_text) = crate::shard::both(
            || self.search(targets, query, &sub),
            || self.search_text(targets, text, &text_sub),
        );
        let (by_vector, by_text) = (by_vector?, by_text?);
        let mut failures = by_vector.failures;
        for f in by_text.failures {
            if !failures.iter().any(|g| g.shard == f.shard) {
                failures.push(f);
            }
        }
        let metric = match (
            params.metric,
            by_vector.hits.first().or(by_text.hits.first()),
        ) {
            (Some(m), _) => m,
            (None, Some(h)) => self.open_shard(&h.shard)?.profile().metric,
            (None, None) => {
                return Ok(MultiSearch {
                    hits: Vec::new(),
                    failures,
                })
            }
        };
        // The union, keyed by (shard, id): the same id in two shards is two items.
        let mut cands: Vec<Candidate<(String, String)>> = Vec::new();
        let mut at: HashMap<(String, String), usize> = HashMap::new();
        for (rank, h) in by_vector.hits.into_iter().enumerate() {
            let key = (h.shard, h.hit.id);
            at.insert(key.clone(), cands.len());
            cands.push(Candidate {
                key,
                vector: crate::shard::fusion_vector_score(metric, h.hit.score),
                text: None,
                vector_rank: Some(rank),
                text_rank: None,
            });
        }
        for (rank, h) in by_text.hits.into_iter().enumerate() {
            let key = (h.shard, h.hit.id);
            match at.get(&key) {
                Some(&i) => {
                    cands[i].text = Some(h.hit.score);
                    cands[i].text_rank = Some(rank);
                }
                None => cands.push(Candidate {
                    key,
                    vector: f32::NAN,
                    text: Some(h.hit.score),
                    vector_rank: None,
                    text_rank: Some(rank),
                }),
            }
        }
        // Both scores of every candidate, from its shard.
        let mut by_shard: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in cands.iter().enumerate() {
            by_shard.entry(c.key.0.clone()).or_default().push(i);
        }
        for (name, idx) in &by_shard {
            let ids: Vec<&str> = idx.iter().map(|&i| cands[i].key.1.as_str()).collect();
            let parts = self
                .open_shard(name)
                .and_then(|s| s.hybrid_parts(query, metric, text, &ids));
            match parts {
                Ok(parts) => {
                    for (&i, p) in idx.iter().zip(parts) {
                        match p {
                            Some((v, t)) => {
                                cands[i].vector = v;
                                cands[i].text = t;
                            }
                            // Deleted since its ranking.
                            None => cands[i].vector = f32::NAN,
                        }
                    }
                }
                Err(e) => {
                    for &i in idx {
                        cands[i].vector = f32::NAN;
                    }
                    failures.push(ShardFailure {
                        shard: name.clone(),
                        error: e.to_string(),
                    });
                }
            }
        }
        cands.retain(|c| !c.vector.is_nan());
        let fused = fuse(cands, &hybrid.fuse_params());
        let mut hits: Vec<ShardHit> = fused
            .into_iter()
            .filter(|(_, s)| params.min_score.is_none_or(|m| *s >= m))
            .map(|(c, score)| {
                let (shard, id) = c.key;
                ShardHit {
                    shard,
                    hit: Hit {
                        id,
                        score,
                        metadata: serde_json::Value::Null,
                        text: None,
                        hybrid: Some(HybridScores {
                            vector_score: match metric {
                                Metric::L2 => -c.vector,
                                _ => c.vector,
                            },
                            text_score: c.text,
                        }),
                    },
                }
            })
            .collect();
        if !params.payload {
            hits.truncate(params.k);
            return Ok(MultiSearch { hits, failures });
        }
        // One payload read per shard for the first hits; a hit deleted since its search is
        // dropped and the next one takes its place.
        let mut out = Vec::with_capacity(params.k);
        let mut start = 0;
        while out.len() < params.k && start < hits.len() {
            let end = (start + params.k - out.len()).min(hits.len());
            let window = &hits[start..end];
            let mut names: Vec<&str> = window.iter().map(|h| h.shard.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            let mut filled: HashMap<(String, String), Hit> = HashMap::new();
            for name in names {
                let mine: Vec<Hit> = window
                    .iter()
                    .filter(|h| h.shard == name)
                    .map(|h| h.hit.clone())
                    .collect();
                let n = mine.len();
                match self.open_shard(name).and_then(|s| s.with_payloads(mine, n)) {
                    Ok(with) => filled.extend(
                        with.into_iter()
                            .map(|h| ((name.to_string(), h.id.clone()), h)),
                    ),
                    Err(e) => failures.push(ShardFailure {
                        shard: name.to_string(),
                        error: e.to_string(),
                    }),
                }
            }
            for h in window {
                if let Some(hit) = filled.remove(&(h.shard.clone(), h.hit.id.clone())) {
                    out.push(ShardHit {
                        shard: h.shard.clone(),
                        hit,
                    });
                }
            }
            start = end;
        }
        Ok(MultiSearch {
            hits: out,
            failures,
        })
    }

    /// Runs `search` on every target shard in parallel and merges the hits into one top `k`
    /// (by score, larger first when `higher_is_better`, then id, then shard name): the same
    /// machinery as [`ShardManager::search`] for other per-shard rankings (text, hybrid).
    /// Targets, profile checks and failures are as for [`ShardManager::search`]; an error of
    /// `search` caused by the caller's input (see [`ShardManager::search`]) fails the call.
    ///
    /// # Errors
    /// As [`ShardManager::search`].
    pub fn search_with<F>(
        &self,
        targets: Targets<'_>,
        k: usize,
        higher_is_better: bool,
        search: F,
    ) -> Result<MultiSearch>
    where
        F: Fn(&Shard) -> Result<Vec<Hit>> + Sync,
    {
        let (names, failures, _) = self.resolve(targets)?;
        self.fan_out(names, failures, k, higher_is_better, search)
    }

    /// Validates and looks up the targets: the known names (deduplicated, in order), failures
    /// for unknown names, and the common profile (`None` when no target exists).
    fn resolve(
        &self,
        targets: Targets<'_>,
    ) -> Result<(Vec<String>, Vec<ShardFailure>, Option<Profile>)> {
        let found: Vec<(String, Option<Profile>)> = match targets {
            Targets::Names(names) => {
                for n in names {
                    validate_name(n)?;
                }
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::new();
                for &n in names {
                    if seen.insert(n) {
                        out.push((n.to_string(), self.lookup(n)?.map(|(_, p)| p)));
                    }
                }
                out
            }
            Targets::Prefix(p) => self
                .list(Some(p))?
                .into_iter()
                .map(|i| (i.name, Some(i.profile)))
                .collect(),
        };
        let mut first: Option<(String, Profile)> = None;
        let mut names = Vec::new();
        let mut failures = Vec::new();
        for (name, profile) in found {
            let Some(profile) = profile else {
                failures.push(ShardFailure {
                    error: Error::UnknownShard(name.clone()).to_string(),
                    shard: name,
                });
                continue;
            };
            match &first {
                None => first = Some((name.clone(), profile)),
                Some((first_name, p)) => {
                    let differs = [
                        (
                            "dimension",
                            p.dimension.to_string(),
                            profile.dimension.to_string(),
                        ),
                        ("metric", p.metric.to_string(), profile.metric.to_string()),
                        (
                            "embedding model",
                            p.embedding_model.clone().unwrap_or_else(|| "(none)".into()),
                            profile
                                .embedding_model
                                .clone()
                                .unwrap_or_else(|| "(none)".into()),
                        ),
                    ]
                    .into_iter()
                    .find(|(_, a, b)| a != b);
                    if let Some((field, want, got)) = differs {
                        return Err(Error::ProfileMismatch {
                            field,
                            shard: format!("{got} (shard {name:?})"),
                            requested: format!("{want} (the first shard, {first_name:?})"),
                        });
                    }
                }
            }
            names.push(name);
        }
        Ok((names, failures, first.map(|(_, p)| p)))
    }

    /// Searches `names` with up to `available_parallelism` scoped threads and merges the hits.
    fn fan_out<F>(
        &self,
        names: Vec<String>,
        mut failures: Vec<ShardFailure>,
        k: usize,
        higher_is_better: bool,
        search: F,
    ) -> Result<MultiSearch>
    where
        F: Fn(&Shard) -> Result<Vec<Hit>> + Sync,
    {
        let order = |a: &ShardHit, b: &ShardHit| {
            let by_score = if higher_is_better {
                b.hit.score.total_cmp(&a.hit.score)
            } else {
                a.hit.score.total_cmp(&b.hit.score)
            };
            by_score
                .then_with(|| a.hit.id.cmp(&b.hit.id))
                .then_with(|| a.shard.cmp(&b.shard))
        };
        let trim = |hits: &mut Vec<ShardHit>| {
            hits.sort_by(order);
            hits.truncate(k);
        };
        let next = AtomicUsize::new(0);
        let worker = || {
            let mut hits = Vec::new();
            // (index, error, whether the search itself refused the caller's input)
            let mut failed: Vec<(usize, Error, bool)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                let shard = match self.open_shard(name) {
                    Ok(s) => s,
                    Err(e) => {
                        failed.push((i, e, false));
                        continue;
                    }
                };
                match search(&shard) {
                    Ok(found) => {
                        hits.extend(found.into_iter().map(|hit| ShardHit {
                            shard: name.clone(),
                            hit,
                        }));
                        if hits.len() >= 2 * k.max(64) {
                            trim(&mut hits);
                        }
                    }
                    Err(e) => {
                        let input = e.is_query_error();
                        failed.push((i, e, input));
                    }
                }
            }
            (hits, failed)
        };
        #[cfg(feature = "threads")]
        let results: Vec<_> = {
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(names.len());
            if threads <= 1 {
                vec![worker()]
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect()
                })
            }
        };
        #[cfg(not(feature = "threads"))]
        let results: Vec<_> = vec![worker()];
        let mut hits = Vec::new();
        let mut failed = Vec::new();
        for (h, f) in results {
            hits.extend(h);
            failed.extend(f);
        }
        failed.sort_by_key(|f| f.0);
        if let Some(pos) = failed.iter().position(|f| f.2) {
            return Err(failed.swap_remove(pos).1);
        }
        failures.extend(failed.into_iter().map(|(i, e, _)| ShardFailure {
            shard: names[i].clone(),
            error: e.to_string(),
        }));
        trim(&mut hits);
        Ok(MultiSearch { hits, failures })
    }
}
