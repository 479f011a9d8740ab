//! Agent memory after ReasoningBank (Ouyang et al., "ReasoningBank: Scaling Agent Self-Evolving
//! with Reasoning Memory", arXiv 2509.25140) over sqlite-vector shards.
//!
//! An agent that finished a task distils it, with its own LLM, into up to three *memory items*
//! (a title, a description of when to use it, 1–3 sentences of content), from successes and
//! from failures. [`Memory::store_experience`] keeps them after a quality gate, linking a near
//! duplicate to the item it repeats instead of storing it twice. [`Memory::find_patterns`] finds
//! the items of the past tasks most like a new one (never the task's own items: the
//! leave-one-out guard), ranked by relevance and by how the items worked when used;
//! [`Memory::record_outcome`] is the learning loop that feeds those counts.
//! [`Memory::consolidate`] merges clusters of near duplicates (reversibly),
//! [`synthesize_context`] writes one context block from several shards, and sessions save an
//! agent's working set. No LLM is called here.
//!
//! Items are ordinary shard items, so search, filters, sync and `export` work on them:
//! * id: generated (16 hex digits), or `session:<id>` for a saved session;
//! * vector: the embedding of the source task (the paper retrieves by task similarity);
//! * text: title, description and content, one per line (BM25 and hybrid search);
//! * metadata: `kind` (`memory` or `session`) and every field of [`MemoryItem`] but the id; the
//!   shard declares `task` searchable, so BM25 matches the past task's words too.
//!
//! # Ranking
//! `score = relevance + PRIOR_WEIGHT × (prior − ½)`, where `relevance` is the hybrid search's
//! fused score (distribution-based score fusion: 0 is the candidates' average, each standard
//! deviation above it adds 1 per unit of weight) with the BM25 ranking weighted
//! [`TEXT_WEIGHT`] = 2 and the vector ranking 1, and `prior` the posterior mean of a Beta(1, 1)
//! prior updated by the item's outcomes, `(wins + 1) / (wins + losses + 2)` (Laplace's rule of
//! succession): ½ before any evidence, so a new item is ranked by relevance alone, and an item
//! that always worked gains up to [`PRIOR_WEIGHT`]/2.
//!
//! Why 2 for BM25: it matches two fields of an item (the lesson's own words and its source
//! task), the vector one (the source task's embedding); each field counts once. The weight was
//! set by that rule, then checked on data the memory evaluation does not use: on the
//! debian-minilm known-item set (`sqlite-vector bench --known-item`, 500 queries over 25,000
//! texts) it moves hybrid MRR@10 from 0.953 to 0.962 with the built-in embedder and from 0.971
//! to 0.969 with MiniLM vectors (both still above either ranking alone).

#![warn(missing_docs)]

mod consolidate;
mod context;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlite_vector::clock::SystemClock;
use sqlite_vector::{
    Clock, Filter, Hit, HybridParams, Metric, NewItem, Profile, SearchParams, Shard, Update,
};
use sqlite_vector_embed::Embedder;

pub use consolidate::{ConsolidateParams, Merge};
pub use context::{synthesize_context, Context, ContextEntry, ContextParams};

/// Most items one experience may carry (the paper distils up to 3; the caller may lower it).
pub const MAX_ITEMS: usize = 3;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Longest content, in characters.
pub const MAX_CONTENT_CHARS: usize = 4_000;
/// Longest source task, in characters.
pub const MAX_TASK_CHARS: usize = 8_000;
/// Longest task id, in characters.
pub const MAX_TASK_ID_CHARS: usize = 256;
/// Most tags per item, each at most [`MAX_TAG_CHARS`].
pub const MAX_TAGS: usize = 16;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Most task ids an item remembers as its sources (its own and those of the experiences linked
/// to it), for the leave-one-out guard.
pub const MAX_LINKED_TASKS: usize = 64;
/// Word-set Jaccard similarity (of title, description and content) at or above which two items
/// of the same polarity are near duplicates.
pub const DUPLICATE_JACCARD: f64 = 0.8;
/// Weight of the BM25 ranking in the relevance's fusion (the vector ranking's is 1); see the
/// crate docs' "Ranking" for why 2.
pub const TEXT_WEIGHT: f32 = 2.0;
/// Weight of the outcome prior in [`Pattern::score`] (standard deviations of relevance per unit
/// of prior).
pub const PRIOR_WEIGHT: f32 = 2.0;
/// Most hits [`Memory::find_patterns`] returns.
pub const MAX_K: usize = 100;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// Bad input (the quality gate, a bad parameter): nothing was stored.
    #[error("{0}")]
    InvalidArgument(String),
    /// An item or session id that is not in the shard (or not a memory item).
    #[error("not found: {0}")]
    NotFound(String),
    /// The shard's error.
    #[error(transparent)]
    Shard(#[from] sqlite_vector::Error),
    /// The embedder's error.
    #[error(transparent)]
    Embed(#[from] sqlite_vector_embed::EmbedError),
}

impl MemoryError {
    /// Whether the caller's input caused it (a tool answers `isError`, a CLI exits 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            MemoryError::InvalidArgument(_) | MemoryError::NotFound(_) => true,
            MemoryError::Shard(e) => e.is_user_error(),
            MemoryError::Embed(e) => e.is_user_error(),
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, MemoryError>;

/// Whether the task an item came from succeeded or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// A strategy that worked.
    Success,
    /// A pitfall: what went wrong, to avoid.
    Failure,
}

impl Polarity {
    /// `"success"` or `"failure"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Polarity::Success => "success",
            Polarity::Failure => "failure",
        }
    }
}

/// One memory item as an agent distilled it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Distilled {
    /// A short name for the strategy or pitfall (≤ [`MAX_TITLE_CHARS`]).
    pub title: String,
    /// When to use it, or when not to (≤ [`MAX_DESCRIPTION_CHARS`]).
    pub description: String,
    /// The lesson itself, 1–3 sentences (≤ [`MAX_CONTENT_CHARS`]).
    pub content: String,
    /// Free tags (≤ [`MAX_TAGS`]).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A finished task and what was learned from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Experience {
    /// The task as it was given (≤ [`MAX_TASK_CHARS`]).
    pub task: String,
    /// The caller's id of the task (≤ [`MAX_TASK_ID_CHARS`]): the leave-one-out guard's key.
    pub task_id: String,
    /// How it ended: the polarity of its items.
    pub outcome: Polarity,
    /// The distilled items: 1 ..= `max_items` of [`StoreOptions`].
    pub items: Vec<Distilled>,
    /// The task's embedding, when the caller has one (else the memory's embedder makes it).
    pub task_vector: Option<Vec<f32>>,
}

impl Experience {
    /// The quality gate of [`Memory::store_experience`], without storing: the task (1 ..=
    /// [`MAX_TASK_CHARS`] characters, not blank), the task id, 1 ..= `max_items` items (at
    /// least 1 is allowed whatever `max_items`), each field within its limit ([`MAX_TITLE_CHARS`],
    /// [`MAX_DESCRIPTION_CHARS`], [`MAX_CONTENT_CHARS`], [`MAX_TAGS`] tags of [`MAX_TAG_CHARS`]).
    /// Whether the task embeds is not checked (that needs the memory's embedder).
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] naming the first bad field (`items[1].title`, …).
    pub fn validate(&self, max_items: usize) -> Result<()> {
        check_text("task", &self.task, MAX_TASK_CHARS)?;
        check_text("task_id", &self.task_id, MAX_TASK_ID_CHARS)?;
        if self.items.is_empty() || self.items.len() > max_items.max(1) {
            return Err(MemoryError::InvalidArgument(format!(
                "an experience carries 1 to {} items, got {}",
                max_items.max(1),
                self.items.len()
            )));
        }
        for (i, d) in self.items.iter().enumerate() {
            let at = |f: &str| format!("items[{i}].{f}");
            check_text(&at("title"), &d.title, MAX_TITLE_CHARS)?;
            check_text(&at("description"), &d.description, MAX_DESCRIPTION_CHARS)?;
            check_text(&at("content"), &d.content, MAX_CONTENT_CHARS)?;
            if d.tags.len() > MAX_TAGS {
                return Err(MemoryError::InvalidArgument(format!(
                    "{}: at most {MAX_TAGS} tags, got {}",
                    at("tags"),
                    d.tags.len()
                )));
            }
            for t in &d.tags {
                check_text(&at("tags[]"), t, MAX_TAG_CHARS)?;
            }
        }
        Ok(())
    }
}

/// How [`Memory::store_experience`] stores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreOptions {
    /// Most items per experience (default [`MAX_ITEMS`]).
    pub max_items: usize,
    /// Link a near duplicate to the item it repeats instead of storing it (default true).
    pub link_duplicates: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_items: MAX_ITEMS,
            link_duplicates: true,
        }
    }
}

/// What happened to one distilled item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// The item's id: a new one, or the existing item it was linked to.
    pub id: String,
    /// It repeated an existing item (same polarity, near-duplicate text) and was linked to it.
    pub linked: bool,
}

/// A stored memory item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryItem {
    /// Its id in the shard.
    #[serde(default, skip_deserializing)]
    pub id: String,
    /// See [`Distilled::title`].
    pub title: String,
    /// See [`Distilled::description`].
    pub description: String,
    /// See [`Distilled::content`].
    pub content: String,
    /// Whether its source task succeeded.
    pub polarity: Polarity,
    /// The source task's text.
    pub task: String,
    /// The source task's id.
    pub task_id: String,
    /// Ids of every task it came from: its own and those of linked duplicates (at most
    /// [`MAX_LINKED_TASKS`], oldest dropped first).
    #[serde(default)]
    pub linked_tasks: Vec<String>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The outcome prior, `(wins + 1) / (wins + losses + 2)`, kept for filters.
    pub confidence: f64,
    /// Times it was reported used ([`Memory::record_outcome`]).
    pub uses: u64,
    /// Uses in tasks that succeeded.
    pub wins: u64,
    /// Uses in tasks that failed.
    pub losses: u64,
    /// When it was stored, Unix ms.
    pub created_at: i64,
    /// When it stopped being current (consolidated into another item), Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<i64>,
    /// The item that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Items merged into this one by [`Memory::consolidate`], with the counts they brought
    /// (what [`Memory::unconsolidate`] gives back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absorbed: Vec<Absorbed>,
}

/// An item merged into another, with the counts it brought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absorbed {
    /// Its id.
    pub id: String,
    /// Its uses, wins and losses when merged.
    pub uses: u64,
    /// See `uses`.
    pub wins: u64,
    /// See `uses`.
    pub losses: u64,
    /// Its linked tasks when merged.
    #[serde(default)]
    pub linked_tasks: Vec<String>,
}

impl MemoryItem {
    /// The outcome prior: the posterior mean of Beta(1 + wins, 1 + losses).
    pub fn prior(&self) -> f64 {
        (self.wins as f64 + 1.0) / ((self.wins + self.losses) as f64 + 2.0)
    }

    /// The item's search text: title, description and content, one per line.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}", self.title, self.description, self.content)
    }

    fn metadata(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("a memory item serialises");
        let o = v.as_object_mut().expect("an object");
        o.remove("id");
        o.insert("kind".into(), "memory".into());
        v
    }

    fn from_parts(id: &str, metadata: &Value) -> Result<MemoryItem> {
        if metadata.get("kind").and_then(Value::as_str) != Some("memory") {
            return Err(MemoryError::NotFound(format!("{id} (not a memory item)")));
        }
        let mut item: MemoryItem = serde_json::from_value(metadata.clone()).map_err(|e| {
            MemoryError::Shard(sqlite_vector::Error::Corrupt(format!(
                "memory item {id:?} has bad metadata: {e}"
            )))
        })?;
        item.id = id.to_string();
        Ok(item)
    }

    fn count(&mut self, success: bool) {
        self.uses += 1;
        if success {
            self.wins += 1;
        } else {
            self.losses += 1;
        }
        self.confidence = self.prior();
    }
}

/// What [`Memory::find_patterns`] looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FindParams {
    /// The new task.
    pub task: String,
    /// Its id: items that came from this task are left out (leave-one-out).
    pub task_id: Option<String>,
    /// Hits wanted, 1 ..= [`MAX_K`] (default 5).
    pub k: usize,
    /// Keep only hits whose [`Pattern::score`] is at least this.
    pub min_score: Option<f32>,
    /// The task's embedding, when the caller has one.
    pub task_vector: Option<Vec<f32>>,
    /// Also return items superseded by consolidation.
    pub include_superseded: bool,
    /// An extra metadata filter (the core's filter language), e.g. on `tags` or `polarity`.
    pub filter: Option<Value>,
}

impl FindParams {
    /// `task`, k = 5, nothing else.
    pub fn new(task: impl Into<String>) -> FindParams {
        FindParams {
            task: task.into(),
            task_id: None,
            k: 5,
            min_score: None,
            task_vector: None,
            include_superseded: false,
            filter: None,
        }
    }
}

/// One item [`Memory::find_patterns`] found, with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pattern {
    /// The item.
    pub item: MemoryItem,
    /// `relevance + PRIOR_WEIGHT × (prior − ½)`: the ranking.
    pub score: f32,
    /// The hybrid search's fused score of the new task against the item (text and source task;
    /// BM25 weighted [`TEXT_WEIGHT`]).
    pub relevance: f32,
    /// Cosine similarity of the new task and the item's source task.
    pub vector_score: f32,
    /// BM25 of the new task's words in the item's text and source task (`None`: no word).
    pub text_score: Option<f32>,
    /// The outcome prior ([`MemoryItem::prior`]).
    pub prior: f32,
    /// How to read it: `"Do: …"` for a success, `"Avoid: …"` for a failure (a lesson, not hidden).
    pub advice: String,
}

/// A saved working set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Its id.
    pub session_id: String,
    /// The memory item ids of the working set, in order.
    pub item_ids: Vec<String>,
    /// The agent's note.
    pub note: String,
    /// When it was saved, Unix ms.
    pub saved_at: i64,
}

/// A restored session: the saved set and the items still present.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoredSession {
    /// What was saved.
    pub session: Session,
    /// The items of `item_ids` still in the shard, in order.
    pub items: Vec<MemoryItem>,
    /// Ids of the set no longer in the shard.
    pub missing: Vec<String>,
}

/// The memory layer over one shard.
pub struct Memory {
    shard: Arc<Shard>,
    pub(crate) embedder: Option<Arc<dyn Embedder>>,
    clock: Arc<dyn Clock>,
}

/// The metadata field the shard must declare searchable (BM25 over the past task).
pub const TASK_FIELD: &str = "task";

impl Memory {
    /// The profile of a memory shard for vectors of `dimension` made by `model` (cosine,
    /// `task` searchable).
    pub fn profile(dimension: usize, model: Option<&str>) -> Profile {
        let p = Profile::new(dimension, Metric::Cosine).with_searchable_fields([TASK_FIELD]);
        match model {
            Some(m) => p.with_embedding_model(m),
            None => p,
        }
    }

    /// The memory layer over `shard`, embedding task text with `embedder` (without one, every
    /// call must carry the task's vector).
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] when the shard is not a memory shard (no searchable
    /// `task` field, or another metric than cosine), or the embedder's model or dimension is
    /// not the shard's.
    pub fn new(shard: Arc<Shard>, embedder: Option<Arc<dyn Embedder>>) -> Result<Memory> {
        let p = shard.profile();
        if !p.searchable_fields.iter().any(|f| f == TASK_FIELD) || p.metric != Metric::Cosine {
            return Err(MemoryError::InvalidArgument(
                "not a memory shard: it needs the cosine metric and the searchable field \
                 `task` (create it with Memory::profile)"
                    .into(),
            ));
        }
        if let Some(e) = &embedder {
            if e.dimension() != p.dimension {
                return Err(MemoryError::InvalidArgument(format!(
                    "the embedder makes {}-d vectors, the shard holds {}-d",
                    e.dimension(),
                    p.dimension
                )));
            }
            if let Some(m) = &p.embedding_model {
                if m != e.model_id() {
                    return Err(MemoryError::InvalidArgument(format!(
                        "the shard's vectors come from {m:?}, the embedder is {:?}",
                        e.model_id()
                    )));
                }
            }
        }
        Ok(Memory {
            shard,
            embedder,
            clock: Arc::new(SystemClock),
        })
    }

    /// Uses `clock` for `created_at`, `valid_to` and `saved_at` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Memory {
        self.clock = clock;
        self
    }

    /// The shard.
    pub fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    fn embed(&self, text: &str, given: Option<&[f32]>) -> Result<Vec<f32>> {
        match (given, &self.embedder) {
            (Some(v), _) => Ok(v.to_vec()),
            (None, Some(e)) => Ok(e.embed(text)?),
            (None, None) => Err(MemoryError::InvalidArgument(
                "no embedder here: give the task's vector".into(),
            )),
        }
    }

    /// Stores an experience's items (experience curation): checks every field (the quality
    /// gate: nothing empty or over its limit, 1 ..= `max_items` items), then, per item, links
    /// a near duplicate (same polarity, word-set Jaccard ≥ [`DUPLICATE_JACCARD`] with an
    /// existing current item) by adding this task to its `linked_tasks`, or stores a new item.
    /// All in one transaction. Returns one [`Stored`] per item, in order.
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] (the gate; nothing stored); the embedder's and the
    /// shard's errors (nothing stored).
    pub fn store_experience(&self, exp: &Experience, opts: StoreOptions) -> Result<Vec<Stored>> {
        exp.validate(opts.max_items)?;
        let vector = self.embed(&exp.task, exp.task_vector.as_deref())?;
        // Near duplicates among the current items (BM25 candidates, then the word sets).
        let dups: Vec<Option<String>> = if opts.link_duplicates {
            exp.items
                .iter()
                .map(|d| self.duplicate_of(d, exp.outcome))
                .collect::<Result<_>>()?
        } else {
            vec![None; exp.items.len()]
        };
        let now = self.clock.now_ms();
        self.shard
            .transaction(|tx| {
                let mut out = Vec::with_capacity(exp.items.len());
                // Within the batch, a repeat of an item stored just before links to it too.
                let mut fresh: Vec<(BTreeSet<String>, String)> = Vec::new();
                for (d, dup) in exp.items.iter().zip(&dups) {
                    let words = words(&format!("{}\n{}\n{}", d.title, d.description, d.content));
                    let target = dup.clone().or_else(|| {
                        fresh
                            .iter()
                            .find(|(w, _)| jaccard(w, &words) >= DUPLICATE_JACCARD)
                            .map(|(_, id)| id.clone())
                    });
                    if let Some(id) = target {
                        let got = tx.get(&id)?;
                        let mut item = MemoryItem::from_parts(&id, &got.metadata)
                            .map_err(|e| sqlite_vector::Error::Corrupt(e.to_string()))?;
                        link_task(&mut item.linked_tasks, &exp.task_id);
                        tx.update(
                            &id,
                            Update {
                                metadata: Some(item.metadata()),
                                ..Update::default()
                            },
                        )?;
                        out.push(Stored { id, linked: true });
                        continue;
                    }
                    let item = MemoryItem {
                        id: String::new(),
                        title: d.title.trim().to_string(),
                        description: d.description.trim().to_string(),
                        content: d.content.trim().to_string(),
                        polarity: exp.outcome,
                        task: exp.task.clone(),
                        task_id: exp.task_id.clone(),
                        linked_tasks: vec![exp.task_id.clone()],
                        tags: d.tags.clone(),
                        confidence: 0.5,
                        uses: 0,
                        wins: 0,
                        losses: 0,
                        created_at: now,
                        valid_to: None,
                        superseded_by: None,
                        absorbed: Vec::new(),
                    };
                    let id = tx.insert(
                        NewItem::new(vector.clone())
                            .with_metadata(item.metadata())
                            .with_text(item.text()),
                    )?;
                    fresh.push((words, id.clone()));
                    out.push(Stored { id, linked: false });
                }
                Ok(out)
            })
            .map_err(MemoryError::from)
    }

    /// The current item of `polarity` that `d` nearly repeats, if any.
    fn duplicate_of(&self, d: &Distilled, polarity: Polarity) -> Result<Option<String>> {
        let text = format!("{}\n{}\n{}", d.title, d.description, d.content);
        let mine = words(&text);
        // The best BM25 matches, checked here (a metadata filter in the text ranking would be
        // evaluated on every item).
        let hits = self.shard.search_text(&text, &SearchParams::k(20))?;
        for h in hits {
            if !is_current(&h.metadata, polarity) {
                continue;
            }
            let item = MemoryItem::from_parts(&h.id, &h.metadata)?;
            if jaccard(&mine, &words(&item.text())) >= DUPLICATE_JACCARD {
                return Ok(Some(h.id));
            }
        }
        Ok(None)
    }

    /// The items of past tasks most useful for `params.task` (pattern matching): a hybrid
    /// search of the task (its embedding against the items' source tasks, its words against
    /// the items' text and source task) among current memory items, leaving out every item
    /// that came from `params.task_id`, re-ranked with the outcome prior (see the [crate
    /// docs](crate)). Failures come back as lessons (`advice` "Avoid: …").
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] for an empty or over-long task, a k outside
    /// 1 ..= [`MAX_K`], a bad filter; the embedder's and the shard's errors.
    pub fn find_patterns(&self, params: &FindParams) -> Result<Vec<Pattern>> {
        check_text("task", &params.task, MAX_TASK_CHARS)?;
        if params.k == 0 || params.k > MAX_K {
            return Err(MemoryError::InvalidArgument(format!(
                "k must be 1 to {MAX_K}, got {}",
                params.k
            )));
        }
        let vector = self.embed(&params.task, params.task_vector.as_deref())?;
        // Current memory items only, never the task's own (the leave-one-out guard): checked on
        // the hits, not as a metadata filter, which the text ranking would evaluate on every
        // item at every call (~1 s at 10,000 items). A caller's filter goes to the shard.
        let filter = params.filter.as_ref().map(Filter::parse).transpose()?;
        // Candidates beyond k, so the prior can lift a proven item into the top k.
        let wanted = (params.k * 3).clamp(params.k, MAX_K);
        let keep = |h: &Hit| {
            h.metadata.get("kind").and_then(Value::as_str) == Some("memory")
                && (params.include_superseded
                    || h.metadata.get("valid_to").is_none_or(Value::is_null))
        };
        let own = |p: &Pattern| {
            params
                .task_id
                .as_ref()
                .is_some_and(|t| p.item.task_id == *t || p.item.linked_tasks.iter().any(|l| l == t))
        };
        let mut fetch = wanted + 8;
        let mut out = loop {
            let mut search = SearchParams::k(fetch);
            search.filter = filter.clone();
            let hits = self.shard.search_hybrid(
                &vector,
                &params.task,
                &search,
                &HybridParams {
                    text_weight: TEXT_WEIGHT,
                    ..HybridParams::default()
                },
            )?;
            let full = hits.len() == fetch;
            let mut got = hits
                .into_iter()
                .filter(keep)
                .map(pattern)
                .collect::<Result<Vec<_>>>()?;
            got.retain(|p| !own(p));
            if got.len() >= wanted || !full || fetch >= sqlite_vector::shard::MAX_K {
                break got;
            }
            fetch = (fetch * 4).min(sqlite_vector::shard::MAX_K);
        };
        out.truncate(wanted);
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.id.cmp(&b.item.id)));
        if let Some(m) = params.min_score {
            out.retain(|p| p.score >= m);
        }
        out.truncate(params.k);
        Ok(out)
    }

    /// The learning loop: the task `task_id` used `item_ids` and ended in `success` (or not).
    /// Each item's `uses` and `wins` or `losses` move by one, and its `confidence`, in one
    /// transaction; later rankings follow ([`Pattern::prior`]). Safe from several processes at
    /// once (each transaction holds the shard's write lock while it reads and writes).
    /// Returns the updated items.
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] for an empty list, a repeated id or a bad task id;
    /// [`MemoryError::NotFound`] for an id that is not a memory item (nothing is changed).
    pub fn record_outcome(
        &self,
        task_id: &str,
        item_ids: &[String],
        success: bool,
    ) -> Result<Vec<MemoryItem>> {
        check_text("task_id", task_id, MAX_TASK_ID_CHARS)?;
        if item_ids.is_empty() {
            return Err(MemoryError::InvalidArgument(
                "item_ids: give the ids of the items the task used".into(),
            ));
        }
        let mut seen = HashSet::new();
        for id in item_ids {
            if !seen.insert(id) {
                return Err(MemoryError::InvalidArgument(format!(
                    "item_ids: {id:?} is listed twice"
                )));
            }
        }
        let r = self.shard.transaction(|tx| {
            let mut out = Vec::new();
            for id in item_ids {
                let got = match tx.get(id) {
                    Ok(g) => g,
                    Err(sqlite_vector::Error::NotFound(_)) => {
                        return Err(sqlite_vector::Error::NotFound(id.clone()))
                    }
                    Err(e) => return Err(e),
                };
                let mut item = MemoryItem::from_parts(id, &got.metadata).map_err(|_| {
                    sqlite_vector::Error::NotFound(format!("{id} (not a memory item)"))
                })?;
                item.count(success);
                tx.update(
                    id,
                    Update {
                        metadata: Some(item.metadata()),
                        ..Update::default()
                    },
                )?;
                out.push(item);
            }
            Ok(out)
        });
        match r {
            Err(sqlite_vector::Error::NotFound(id)) => Err(MemoryError::NotFound(id)),
            other => other.map_err(MemoryError::from),
        }
    }

    /// One memory item by id.
    ///
    /// # Errors
    /// [`MemoryError::NotFound`]; the shard's errors.
    pub fn get(&self, id: &str) -> Result<MemoryItem> {
        match self.shard.get(id) {
            Ok(item) => MemoryItem::from_parts(id, &item.metadata),
            Err(sqlite_vector::Error::NotFound(_)) => Err(MemoryError::NotFound(id.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves a working set under `session_id`: the ids of memory items (checked to exist) and
    /// a note, replacing an earlier save under the same id. Stored as the shard item
    /// `session:<session_id>` (kind `session`, never returned by pattern matching; it syncs
    /// like any item), its vector the embedding of `"session <session_id>\n<note>"`.
    ///
    /// # Errors
    /// [`MemoryError::InvalidArgument`] for a bad session id or an over-long note;
    /// [`MemoryError::NotFound`] for an item id that is not a memory item; the embedder's and
    /// the shard's errors.
    pub fn save_session(
        &self,
        session_id: &str,
        item_ids: &[String],
        note: &str,
    ) -> Result<Session> {
        check_text("session_id", session_id, MAX_TASK_ID_CHARS)?;
        if note.chars().count() > MAX_CONTENT_CHARS {
            return Err(MemoryError::InvalidArgument(format!(
                "note: at most {MAX_CONTENT_CHARS} characters"
            )));
        }
        for id in item_ids {
            self.get(id)?;
        }
        let session = Session {
            session_id: session_id.to_string(),
            item_ids: item_ids.to_vec(),
            note: note.to_string(),
            saved_at: self.clock.now_ms(),
        };
        // "session", the id and the note: never without a word the embedder knows, whatever
        // the id and the note are made of (emoji, an unsupported script).
        let vector = self.embed(&format!("session {session_id}\n{note}"), None)?;
        let mut meta = serde_json::to_value(&session).expect("a session serialises");
        meta.as_object_mut()
            .expect("an object")
            .insert("kind".into(), "session".into());
        self.shard.upsert(
            NewItem::new(vector)
                .with_id(format!("session:{session_id}"))
                .with_metadata(meta),
        )?;
        Ok(session)
    }

    /// The working set saved under `session_id`, with the items still present.
    ///
    /// # Errors
    /// [`MemoryError::NotFound`] for an unknown session; the shard's errors.
    pub fn restore_session(&self, session_id: &str) -> Result<RestoredSession> {
        let key = format!("session:{session_id}");
        let got = match self.shard.get(&key) {
            Ok(g) => g,
            Err(sqlite_vector::Error::NotFound(_)) => {
                return Err(MemoryError::NotFound(format!("session {session_id:?}")))
            }
            Err(e) => return Err(e.into()),
        };
        if got.metadata.get("kind").and_then(Value::as_str) != Some("session") {
            return Err(MemoryError::NotFound(format!("session {session_id:?}")));
        }
        let session: Session = serde_json::from_value(got.metadata).map_err(|e| {
            MemoryError::Shard(sqlite_vector::Error::Corrupt(format!(
                "session {session_id:?} has bad metadata: {e}"
            )))
        })?;
        let (mut items, mut missing) = (Vec::new(), Vec::new());
        for id in &session.item_ids {
            match self.get(id) {
                Ok(i) => items.push(i),
                Err(MemoryError::NotFound(_)) => missing.push(id.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok(RestoredSession {
            session,
            items,
            missing,
        })
    }
}

/// Whether `metadata` is a current memory item of `polarity`.
pub(crate) fn is_current(metadata: &Value, polarity: Polarity) -> bool {
    metadata.get("kind").and_then(Value::as_str) == Some("memory")
        && metadata.get("polarity").and_then(Value::as_str) == Some(polarity.as_str())
        && metadata.get("valid_to").is_none_or(Value::is_null)
}

fn pattern(h: Hit) -> Result<Pattern> {
    let item = MemoryItem::from_parts(&h.id, &h.metadata)?;
    let prior = item.prior() as f32;
    let parts = h.hybrid.unwrap_or(sqlite_vector::HybridScores {
        vector_score: f32::NAN,
        text_score: None,
    });
    let advice = match item.polarity {
        Polarity::Success => format!("Do: {}", item.title),
        Polarity::Failure => format!("Avoid: {}", item.title),
    };
    Ok(Pattern {
        score: h.score + PRIOR_WEIGHT * (prior - 0.5),
        relevance: h.score,
        vector_score: parts.vector_score,
        text_score: parts.text_score,
        prior,
        advice,
        item,
    })
}

/// The quality gate of one text field: not blank, at most `max` characters.
fn check_text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.trim().is_empty() {
        return Err(MemoryError::InvalidArgument(format!("{field} is empty")));
    }
    let n = s.chars().count();
    if n > max {
        return Err(MemoryError::InvalidArgument(format!(
            "{field} has {n} characters; at most {max}"
        )));
    }
    Ok(())
}

/// Adds `task_id` to `linked`, keeping at most [`MAX_LINKED_TASKS`] (oldest dropped).
fn link_task(linked: &mut Vec<String>, task_id: &str) {
    if !linked.iter().any(|t| t == task_id) {
        linked.push(task_id.to_string());
        if linked.len() > MAX_LINKED_TASKS {
            linked.remove(0);
        }
    }
}

/// The lower-cased words (runs of letters and digits) of `s`.
pub(crate) fn words(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Jaccard similarity of two word sets (1 for two empty sets).
pub(crate) fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}
