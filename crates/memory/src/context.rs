//! Context synthesis: one task, several memory shards, a character budget → one block an agent
//! can paste into its prompt.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::{jaccard, words, FindParams, Memory, MemoryError, Pattern, Result, DUPLICATE_JACCARD};

/// What [`synthesize_context`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextParams {
    /// The task.
    pub task: String,
    /// Its id (the leave-one-out guard, in every shard).
    pub task_id: Option<String>,
    /// Most characters of the block (default 4,000), 200 ..= 100,000.
    pub budget_chars: usize,
    /// Items looked at per shard (default 8), 1 ..= 100.
    pub per_shard: usize,
}

impl ContextParams {
    /// `task` with the defaults.
    pub fn new(task: impl Into<String>) -> ContextParams {
        ContextParams {
            task: task.into(),
            task_id: None,
            budget_chars: 4_000,
            per_shard: 8,
        }
    }
}

/// One entry of the block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextEntry {
    /// The shard it came from (the name the caller gave).
    pub shard: String,
    /// The item's id there.
    pub id: String,
    /// `success` or `failure`.
    pub polarity: &'static str,
    /// Its [`Pattern::score`].
    pub score: f32,
    /// Its title.
    pub title: String,
}

/// The synthesized context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Context {
    /// The block: a heading line, then one line per entry, best first, within the budget.
    pub text: String,
    /// The entries, in the block's order.
    pub entries: Vec<ContextEntry>,
    /// Items left out as near duplicates of an entry above them.
    pub duplicates: usize,
    /// Items left out because the budget was spent.
    pub over_budget: usize,
}

/// Pattern matching over several shards (`(name, memory)` pairs: the agent's own, its team's),
/// merged by score, near duplicates (word-set Jaccard ≥ [`DUPLICATE_JACCARD`] with an entry
/// above) dropped, written one line per item (`- [success|failure] title: content (shard/id,
/// score s)`) until `budget_chars` is spent.
///
/// # Errors
/// [`MemoryError::InvalidArgument`] for no shard or parameters out of range; the errors of
/// [`Memory::find_patterns`].
pub fn synthesize_context(shards: &[(String, &Memory)], params: &ContextParams) -> Result<Context> {
    if shards.is_empty() {
        return Err(MemoryError::InvalidArgument(
            "give at least one shard".into(),
        ));
    }
    if !(200..=100_000).contains(&params.budget_chars) {
        return Err(MemoryError::InvalidArgument(format!(
            "budget_chars must be 200 to 100,000, got {}",
            params.budget_chars
        )));
    }
    if !(1..=100).contains(&params.per_shard) {
        return Err(MemoryError::InvalidArgument(format!(
            "per_shard must be 1 to 100, got {}",
            params.per_shard
        )));
    }
    // The task is embedded once per model, then each shard is searched (its hybrid search
    // runs its two halves on two threads).
    let mut vectors: Vec<(String, Vec<f32>)> = Vec::new();
    let mut finds = Vec::with_capacity(shards.len());
    for (_, memory) in shards {
        let mut find = FindParams::new(params.task.clone());
        find.task_id = params.task_id.clone();
        find.k = params.per_shard;
        if let Some(e) = &memory.embedder {
            let key = e.model_id().to_string();
            let v = match vectors.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = e.embed(&params.task)?;
                    vectors.push((key, v.clone()));
                    v
                }
            };
            find.task_vector = Some(v);
        }
        finds.push(find);
    }
    let found: Vec<Result<Vec<Pattern>>> = shards
        .iter()
        .zip(&finds)
        .map(|((_, memory), find)| memory.find_patterns(find))
        .collect();
    let mut all: Vec<(&str, Pattern)> = Vec::new();
    for ((name, _), r) in shards.iter().zip(found) {
        for p in r? {
            all.push((name.as_str(), p));
        }
    }
    all.sort_by(|a, b| {
        b.1.score
            .total_cmp(&a.1.score)
            .then(a.0.cmp(b.0))
            .then(a.1.item.id.cmp(&b.1.item.id))
    });
    let heading = "Lessons from past tasks, most relevant first:";
    let mut text = heading.to_string();
    let (mut entries, mut taken) = (Vec::new(), Vec::<BTreeSet<String>>::new());
    let (mut duplicates, mut over_budget) = (0, 0);
    for (shard, p) in all {
        let w = words(&p.item.text());
        if taken.iter().any(|t| jaccard(t, &w) >= DUPLICATE_JACCARD) {
            duplicates += 1;
            continue;
        }
        let line = format!(
            "\n- [{}] {}: {} ({shard}/{}, score {:.2})",
            p.item.polarity.as_str(),
            p.item.title,
            p.item.content,
            p.item.id,
            p.score
        );
        if text.chars().count() + line.chars().count() > params.budget_chars {
            over_budget += 1;
            continue;
        }
        text.push_str(&line);
        taken.push(w);
        entries.push(ContextEntry {
            shard: shard.to_string(),
            id: p.item.id.clone(),
            polarity: p.item.polarity.as_str(),
            score: p.score,
            title: p.item.title.clone(),
        });
    }
    Ok(Context {
        text,
        entries,
        duplicates,
        over_budget,
    })
}
