//! The agent-memory tools (crate `sqlite-vector-memory`): store what a task taught, find the
//! lessons of similar past tasks, report how they worked, consolidate, synthesize a context,
//! save and restore a working set.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlite_vector_memory::{
    synthesize_context, ConsolidateParams, ContextParams, Distilled, Experience, FindParams,
    Memory, MemoryError, Polarity, StoreOptions,
};

use super::{out, user, Inner, ToolError, ToolResult};

impl From<MemoryError> for ToolError {
    fn from(e: MemoryError) -> Self {
        match e {
            MemoryError::Shard(e) => e.into(),
            MemoryError::Embed(e) => e.into(),
            e if e.is_user_error() => ToolError::User(e.to_string()),
            e => ToolError::Internal(e.to_string()),
        }
    }
}

/// One distilled lesson.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LessonArgs {
    /// A short name for the strategy or pitfall (≤ 200 characters).
    pub title: String,
    /// When to use it, or when not to (≤ 1,000 characters).
    pub description: String,
    /// The lesson, 1–3 sentences (≤ 4,000 characters).
    pub content: String,
    /// Free tags (≤ 16).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeded: the lessons are strategies.
    Success,
    /// It failed: the lessons are pitfalls to avoid.
    Failure,
}

/// Arguments of `memory_store`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryStoreArgs {
    /// Memory shard (created on first use), e.g. `memory/coder`.
    pub shard: String,
    /// The task as it was given.
    pub task: String,
    /// Your id for the task (items are never returned to the same task).
    pub task_id: String,
    /// How the task ended: `success` or `failure`.
    pub outcome: Outcome,
    /// 1 to 3 lessons distilled from the task.
    pub items: Vec<LessonArgs>,
}

/// One stored (or linked) lesson.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StoredOut {
    /// The item's id.
    pub id: String,
    /// It repeated an existing lesson and was linked to it.
    pub linked: bool,
}

/// Result of `memory_store`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MemoryStoreOut {
    /// The shard.
    pub shard: String,
    /// One entry per lesson, in order.
    pub stored: Vec<StoredOut>,
}

/// Arguments of `memory_find`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryFindArgs {
    /// One memory shard; or use `shards` or `prefix`.
    pub shard: Option<String>,
    /// Several memory shards.
    pub shards: Option<Vec<String>>,
    /// Every memory shard under this prefix (e.g. `memory/`).
    pub prefix: Option<String>,
    /// The new task.
    pub task: String,
    /// Its id: lessons from this same task are left out.
    pub task_id: Option<String>,
    /// Lessons wanted (default 5, at most 100).
    pub k: Option<usize>,
    /// Keep only lessons scoring at least this.
    pub min_score: Option<f32>,
}

/// One lesson found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LessonOut {
    /// The shard it is in.
    pub shard: String,
    /// Its id (give it to memory_feedback).
    pub id: String,
    /// `Do: …` for a strategy that worked, `Avoid: …` for a pitfall.
    pub advice: String,
    /// Title.
    pub title: String,
    /// When to use it.
    pub description: String,
    /// The lesson.
    pub content: String,
    /// `success` or `failure`: how its source task ended.
    pub polarity: String,
    /// The source task's id.
    pub task_id: String,
    /// The ranking: relevance + 2 × (prior − 0.5).
    pub score: f32,
    /// How similar the new task is to its text and source task (hybrid fused score, BM25
    /// weighted 2).
    pub relevance: f32,
    /// Cosine similarity of the tasks.
    pub vector_score: f32,
    /// BM25 of the task's words (null: none matched).
    pub text_score: Option<f32>,
    /// (wins + 1) / (wins + losses + 2): how it worked when used.
    pub prior: f32,
    /// Times reported used, won, lost.
    pub uses: u64,
    /// See `uses`.
    pub wins: u64,
    /// See `uses`.
    pub losses: u64,
}

/// Result of `memory_find`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MemoryFindOut {
    /// Best first.
    pub hits: Vec<LessonOut>,
}

/// Arguments of `memory_feedback`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryFeedbackArgs {
    /// The memory shard.
    pub shard: String,
    /// The task that used the lessons.
    pub task_id: String,
    /// Ids of the lessons it used.
    pub item_ids: Vec<String>,
    /// Whether the task succeeded.
    pub success: bool,
}

/// One lesson's counts after feedback.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CountsOut {
    /// Its id.
    pub id: String,
    /// Times used, won, lost.
    pub uses: u64,
    /// See `uses`.
    pub wins: u64,
    /// See `uses`.
    pub losses: u64,
    /// The new prior, (wins + 1) / (wins + losses + 2).
    pub confidence: f64,
}

/// Result of `memory_feedback`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MemoryFeedbackOut {
    /// The shard.
    pub shard: String,
    /// Each lesson's counts.
    pub items: Vec<CountsOut>,
}

/// Arguments of `memory_consolidate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryConsolidateArgs {
    /// The memory shard.
    pub shard: String,
    /// Word overlap (Jaccard, 0–1] at which two lessons are one (default 0.8).
    pub threshold: Option<f64>,
    /// Only report what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Instead: give back what was merged into this canonical lesson.
    pub undo: Option<String>,
}

/// One merge.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MergeOut {
    /// The lesson that stays.
    pub canonical: String,
    /// The lessons merged into it (kept, marked superseded).
    pub absorbed: Vec<String>,
}

/// Result of `memory_consolidate`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MemoryConsolidateOut {
    /// The shard.
    pub shard: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The clusters merged (or that would be).
    pub merges: Vec<MergeOut>,
    /// With `undo`: the lessons made current again.
    pub restored: Vec<String>,
}

/// Arguments of `memory_context`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryContextArgs {
    /// Memory shards to draw from (e.g. yours and your team's); or use `prefix`.
    pub shards: Option<Vec<String>>,
    /// Every memory shard under this prefix.
    pub prefix: Option<String>,
    /// The task.
    pub task: String,
    /// Its id (its own lessons are left out).
    pub task_id: Option<String>,
    /// Most characters of the block (default 4,000; 200 to 100,000).
    pub budget_chars: Option<usize>,
}

/// One entry of the block.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EntryOut {
    /// Its shard.
    pub shard: String,
    /// Its id.
    pub id: String,
    /// `success` or `failure`.
    pub polarity: String,
    /// Its score.
    pub score: f32,
    /// Its title.
    pub title: String,
}

/// Result of `memory_context`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MemoryContextOut {
    /// The block to paste into a prompt.
    pub text: String,
    /// Its entries, in order.
    pub entries: Vec<EntryOut>,
    /// Lessons dropped as near duplicates.
    pub duplicates: usize,
    /// Lessons dropped for the budget.
    pub over_budget: usize,
}

/// Arguments of `session_save`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSaveArgs {
    /// The memory shard.
    pub shard: String,
    /// The session's id (saving again replaces it).
    pub session_id: String,
    /// Lesson ids of the working set.
    #[serde(default)]
    pub item_ids: Vec<String>,
    /// A note to your future self.
    #[serde(default)]
    pub note: String,
}

/// Result of `session_save`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionOut {
    /// The session's id.
    pub session_id: String,
    /// Lesson ids of the working set.
    pub item_ids: Vec<String>,
    /// The note.
    pub note: String,
    /// When it was saved, Unix ms.
    pub saved_at: i64,
}

/// Arguments of `session_restore`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRestoreArgs {
    /// The memory shard.
    pub shard: String,
    /// The session's id.
    pub session_id: String,
}

/// Result of `session_restore`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionRestoreOut {
    /// What was saved.
    pub session: SessionOut,
    /// The lessons still present, in order (title, content, polarity and counts).
    pub items: Vec<Value>,
    /// Ids no longer present.
    pub missing: Vec<String>,
}

impl Inner {
    /// The memory layer over an existing shard.
    fn memory(&self, name: &str) -> ToolResult<Memory> {
        let shard = self.open(name)?;
        self.check_model(name, shard.profile())?;
        Ok(Memory::new(shard, Some(self.embedder.clone()))?)
    }

    /// The memory shards a read names.
    fn memories(
        &self,
        shard: Option<String>,
        shards: Option<Vec<String>>,
        prefix: Option<String>,
    ) -> ToolResult<Vec<(String, Memory)>> {
        let names = match (shard, shards, prefix) {
            (Some(s), None, None) => vec![s],
            (None, Some(list), None) if !list.is_empty() => list,
            (None, None, Some(p)) => self
                .manager
                .list(Some(&p))?
                .into_iter()
                .filter(|i| {
                    i.profile
                        .searchable_fields
                        .iter()
                        .any(|f| f == sqlite_vector_memory::TASK_FIELD)
                })
                .map(|i| i.name)
                .collect(),
            _ => {
                return Err(user(
                    "give exactly one of `shard`, `shards` (a non-empty list) or `prefix`",
                ))
            }
        };
        names
            .into_iter()
            .map(|n| Ok((n.clone(), self.memory(&n)?)))
            .collect()
    }

    pub(super) fn memory_store(&self, a: MemoryStoreArgs) -> ToolResult<Value> {
        sqlite_vector::manager::validate_name(&a.shard)?;
        let profile = Memory::profile(self.embedder.dimension(), Some(self.embedder.model_id()));
        let shard = if self.manager.exists(&a.shard)? {
            self.open(&a.shard)?
        } else {
            self.manager.get_or_create(&a.shard, &profile)?
        };
        self.check_model(&a.shard, shard.profile())?;
        let memory = Memory::new(shard, Some(self.embedder.clone()))?;
        let exp = Experience {
            task: a.task,
            task_id: a.task_id,
            outcome: match a.outcome {
                Outcome::Success => Polarity::Success,
                Outcome::Failure => Polarity::Failure,
            },
            items: a
                .items
                .into_iter()
                .map(|l| Distilled {
                    title: l.title,
                    description: l.description,
                    content: l.content,
                    tags: l.tags,
                })
                .collect(),
            task_vector: None,
        };
        let stored = memory.store_experience(&exp, StoreOptions::default())?;
        out(MemoryStoreOut {
            shard: a.shard,
            stored: stored
                .into_iter()
                .map(|s| StoredOut {
                    id: s.id,
                    linked: s.linked,
                })
                .collect(),
        })
    }

    pub(super) fn memory_find(&self, a: MemoryFindArgs) -> ToolResult<Value> {
        let k = a.k.unwrap_or(5);
        let memories = self.memories(a.shard, a.shards, a.prefix)?;
        let mut hits = Vec::new();
        for (name, m) in &memories {
            let mut p = FindParams::new(a.task.clone());
            p.task_id = a.task_id.clone();
            p.k = k;
            p.min_score = a.min_score;
            for h in m.find_patterns(&p)? {
                hits.push(LessonOut {
                    shard: name.clone(),
                    id: h.item.id,
                    advice: h.advice,
                    title: h.item.title,
                    description: h.item.description,
                    content: h.item.content,
                    polarity: h.item.polarity.as_str().to_string(),
                    task_id: h.item.task_id,
                    score: h.score,
                    relevance: h.relevance,
                    vector_score: h.vector_score,
                    text_score: h.text_score,
                    prior: h.prior,
                    uses: h.item.uses,
                    wins: h.item.wins,
                    losses: h.item.losses,
                });
            }
        }
        hits.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.id.cmp(&y.id)));
        hits.truncate(k);
        out(MemoryFindOut { hits })
    }

    pub(super) fn memory_feedback(&self, a: MemoryFeedbackArgs) -> ToolResult<Value> {
        let m = self.memory(&a.shard)?;
        let items = m.record_outcome(&a.task_id, &a.item_ids, a.success)?;
        out(MemoryFeedbackOut {
            shard: a.shard,
            items: items
                .into_iter()
                .map(|i| CountsOut {
                    id: i.id,
                    uses: i.uses,
                    wins: i.wins,
                    losses: i.losses,
                    confidence: i.confidence,
                })
                .collect(),
        })
    }

    pub(super) fn memory_consolidate(&self, a: MemoryConsolidateArgs) -> ToolResult<Value> {
        let m = self.memory(&a.shard)?;
        if let Some(id) = a.undo {
            if a.dry_run || a.threshold.is_some() {
                return Err(user("`undo` takes no `dry_run` or `threshold`"));
            }
            let restored = m.unconsolidate(&id)?;
            return out(MemoryConsolidateOut {
                shard: a.shard,
                dry_run: false,
                merges: Vec::new(),
                restored,
            });
        }
        let merges = m.consolidate(ConsolidateParams {
            threshold: a
                .threshold
                .unwrap_or(sqlite_vector_memory::DUPLICATE_JACCARD),
            dry_run: a.dry_run,
        })?;
        out(MemoryConsolidateOut {
            shard: a.shard,
            dry_run: a.dry_run,
            merges: merges
                .into_iter()
                .map(|m| MergeOut {
                    canonical: m.canonical,
                    absorbed: m.absorbed,
                })
                .collect(),
            restored: Vec::new(),
        })
    }

    pub(super) fn memory_context(&self, a: MemoryContextArgs) -> ToolResult<Value> {
        let memories = self.memories(None, a.shards, a.prefix)?;
        let pairs: Vec<(String, &Memory)> = memories.iter().map(|(n, m)| (n.clone(), m)).collect();
        let mut p = ContextParams::new(a.task);
        p.task_id = a.task_id;
        if let Some(b) = a.budget_chars {
            p.budget_chars = b;
        }
        let c = synthesize_context(&pairs, &p)?;
        out(MemoryContextOut {
            text: c.text,
            entries: c
                .entries
                .into_iter()
                .map(|e| EntryOut {
                    shard: e.shard,
                    id: e.id,
                    polarity: e.polarity.to_string(),
                    score: e.score,
                    title: e.title,
                })
                .collect(),
            duplicates: c.duplicates,
            over_budget: c.over_budget,
        })
    }

    pub(super) fn session_save(&self, a: SessionSaveArgs) -> ToolResult<Value> {
        let m = self.memory(&a.shard)?;
        let s = m.save_session(&a.session_id, &a.item_ids, &a.note)?;
        out(SessionOut {
            session_id: s.session_id,
            item_ids: s.item_ids,
            note: s.note,
            saved_at: s.saved_at,
        })
    }

    pub(super) fn session_restore(&self, a: SessionRestoreArgs) -> ToolResult<Value> {
        let m = self.memory(&a.shard)?;
        let r = m.restore_session(&a.session_id)?;
        out(SessionRestoreOut {
            session: SessionOut {
                session_id: r.session.session_id,
                item_ids: r.session.item_ids,
                note: r.session.note,
                saved_at: r.session.saved_at,
            },
            items: r
                .items
                .into_iter()
                .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
                .collect(),
            missing: r.missing,
        })
    }
}
