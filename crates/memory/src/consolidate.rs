//! Memory consolidation: clusters of near-duplicate items become one canonical item; the
//! others are kept, marked `valid_to` and `superseded_by` (never silently deleted), and can be
//! given back ([`Memory::unconsolidate`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use sqlite_vector::{SearchParams, Update};

use crate::{jaccard, words, Absorbed, Memory, MemoryError, MemoryItem, Result, DUPLICATE_JACCARD};

/// How [`Memory::consolidate`] merges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConsolidateParams {
    /// Word-set Jaccard similarity at or above which two items of the same polarity are one
    /// (default [`DUPLICATE_JACCARD`]); 0 < threshold ≤ 1.
    pub threshold: f64,
    /// Only report what would change.
    pub dry_run: bool,
}

impl Default for ConsolidateParams {
    fn default() -> Self {
        ConsolidateParams {
            threshold: DUPLICATE_JACCARD,
            dry_run: false,
        }
    }
}

/// One cluster merged (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merge {
    /// The item that stays current: the most used, then the oldest, then the smallest id.
    pub canonical: String,
    /// The items merged into it.
    pub absorbed: Vec<String>,
}

/// Union-find over item indexes.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

impl Memory {
    /// Finds clusters of near duplicates among the current memory items (same polarity,
    /// word-set Jaccard of title, description and content ≥ `params.threshold`, linked
    /// transitively; each item's candidates are its top 20 BM25 matches) and, unless
    /// `params.dry_run`, merges each into its canonical item in one transaction: the canonical
    /// item takes the others' uses, wins, losses and linked tasks and records what each
    /// brought (`absorbed`); the others get `valid_to` (now) and `superseded_by`. Returns the
    /// clusters.
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] for a threshold outside (0, 1]; the shard's errors.
    pub fn consolidate(&self, params: ConsolidateParams) -> Result<Vec<Merge>> {
        if !(params.threshold > 0.0 && params.threshold <= 1.0) {
            return Err(MemoryError::InvalidArgument(format!(
                "threshold must be in (0, 1], got {}",
                params.threshold
            )));
        }
        let items = self.current_items()?;
        let index: BTreeMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.as_str(), i))
            .collect();
        let sets: Vec<BTreeSet<String>> = items.iter().map(|i| words(&i.text())).collect();
        let mut parent: Vec<usize> = (0..items.len()).collect();
        for (i, item) in items.iter().enumerate() {
            let hits = self.shard.search_text(&item.text(), &SearchParams::k(20))?;
            for h in hits {
                if !crate::is_current(&h.metadata, item.polarity) {
                    continue;
                }
                let Some(&j) = index.get(h.id.as_str()) else {
                    continue;
                };
                if j != i && jaccard(&sets[i], &sets[j]) >= params.threshold {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        let mut clusters: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..items.len() {
            let r = root(&mut parent, i);
            clusters.entry(r).or_default().push(i);
        }
        let mut merges = Vec::new();
        for members in clusters.into_values().filter(|m| m.len() > 1) {
            let canonical = *members
                .iter()
                .min_by(|&&a, &&b| {
                    let (x, y) = (&items[a], &items[b]);
                    y.uses
                        .cmp(&x.uses)
                        .then(x.created_at.cmp(&y.created_at))
                        .then(x.id.cmp(&y.id))
                })
                .expect("a cluster has members");
            merges.push((
                canonical,
                members
                    .into_iter()
                    .filter(|&m| m != canonical)
                    .collect::<Vec<_>>(),
            ));
        }
        let report: Vec<Merge> = merges
            .iter()
            .map(|(c, rest)| Merge {
                canonical: items[*c].id.clone(),
                absorbed: rest.iter().map(|&r| items[r].id.clone()).collect(),
            })
            .collect();
        if params.dry_run || merges.is_empty() {
            return Ok(report);
        }
        let now = self.clock.now_ms();
        self.shard.transaction(|tx| {
            for (c, rest) in &merges {
                let mut canon = items[*c].clone();
                for &r in rest {
                    let mut other = items[r].clone();
                    canon.uses += other.uses;
                    canon.wins += other.wins;
                    canon.losses += other.losses;
                    for t in &other.linked_tasks {
                        crate::link_task(&mut canon.linked_tasks, t);
                    }
                    canon.absorbed.push(Absorbed {
                        id: other.id.clone(),
                        uses: other.uses,
                        wins: other.wins,
                        losses: other.losses,
                        linked_tasks: other.linked_tasks.clone(),
                    });
                    other.valid_to = Some(now);
                    other.superseded_by = Some(canon.id.clone());
                    tx.update(&other.id, metadata_update(&other))?;
                }
                canon.confidence = canon.prior();
                tx.update(&canon.id, metadata_update(&canon))?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// Gives back what consolidation merged into `canonical_id`: every absorbed item is current
    /// again (its `valid_to` and `superseded_by` cleared) and the canonical item returns the
    /// counts and linked tasks each brought. Returns the ids given back (none when nothing was
    /// merged into it). One transaction.
    ///
    /// # Errors
    /// [`MemoryError::NotFound`] for an id that is not a memory item; the shard's errors.
    pub fn unconsolidate(&self, canonical_id: &str) -> Result<Vec<String>> {
        let mut canon = self.get(canonical_id)?;
        if canon.absorbed.is_empty() {
            return Ok(Vec::new());
        }
        let absorbed = std::mem::take(&mut canon.absorbed);
        let mut back = Vec::new();
        self.shard.transaction(|tx| {
            for a in &absorbed {
                canon.uses = canon.uses.saturating_sub(a.uses);
                canon.wins = canon.wins.saturating_sub(a.wins);
                canon.losses = canon.losses.saturating_sub(a.losses);
                canon
                    .linked_tasks
                    .retain(|t| !a.linked_tasks.contains(t) || *t == canon.task_id);
                if let Ok(got) = tx.get(&a.id) {
                    if let Ok(mut other) = MemoryItem::from_parts(&a.id, &got.metadata) {
                        if other.superseded_by.as_deref() == Some(canonical_id) {
                            other.valid_to = None;
                            other.superseded_by = None;
                            tx.update(&a.id, metadata_update(&other))?;
                            back.push(a.id.clone());
                        }
                    }
                }
            }
            canon.confidence = canon.prior();
            tx.update(canonical_id, metadata_update(&canon))?;
            Ok(())
        })?;
        Ok(back)
    }

    /// Every current memory item, by id.
    pub(crate) fn current_items(&self) -> Result<Vec<MemoryItem>> {
        let rows = self.shard.query_sql(
            "SELECT id, json(metadata) FROM items WHERE cl % 2 = 1 \
             AND metadata ->> '$.kind' = 'memory' AND metadata ->> '$.valid_to' IS NULL \
             ORDER BY id",
            &[],
        )?;
        rows.into_iter()
            .map(|r| {
                let (
                    sqlite_vector::rusqlite::types::Value::Text(id),
                    sqlite_vector::rusqlite::types::Value::Text(meta),
                ) = (&r[0], &r[1])
                else {
                    return Err(MemoryError::Shard(sqlite_vector::Error::Corrupt(
                        "a memory row without id or metadata".into(),
                    )));
                };
                let v: Value = serde_json::from_str(meta).map_err(|e| {
                    MemoryError::Shard(sqlite_vector::Error::Corrupt(format!(
                        "memory item {id:?} has bad metadata: {e}"
                    )))
                })?;
                MemoryItem::from_parts(id, &v)
            })
            .collect()
    }
}

fn metadata_update(item: &MemoryItem) -> Update {
    Update {
        metadata: Some(item.metadata()),
        ..Update::default()
    }
}
