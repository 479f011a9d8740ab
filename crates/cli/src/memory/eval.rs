//! `memory eval`: similar-past-task retrieval on the WebArena tasks, with the protocol of
//! `shared/data/FORMAT-webarena.md` (Zhou et al., "WebArena: A Realistic Web Environment for
//! Building Autonomous Agents", ICLR 2024: 812 tasks made from 190 intent templates; tasks of
//! one template are the relevant ones).
//!
//! The bank is an in-memory memory shard holding one experience per task (its intent as the
//! task and as the item's title and content, its sites in the description). Four rankings of
//! the top 10 are scored, each entry mapped to its task: `vector` (cosine of the task
//! vectors), `bm25` (FTS5 over the items' text and their `task` field), `hybrid` (both fused
//! by DBSF, [`HybridParams::default`]) and `memory` ([`Memory::find_patterns`], which adds the
//! outcome prior to a hybrid score whose BM25 ranking weighs
//! [`sqlite_vector_memory::TEXT_WEIGHT`]: the prior is ½ for every item here, so `memory`
//! differs from `hybrid` by that weight and by how each leaves the query's task out: the
//! baselines filter it out before the rankings are fused, `find_patterns` drops it from the
//! fused hits, so its fusion statistics include the query's own item).
//!
//! Without `queries.jsonl` (webarena-tasks): leave one task out. Every task whose template has
//! at least 2 tasks is a query (its intent and vector), its own items are excluded
//! (`find_patterns` with its task id; a `task_id` `$ne` filter for the baselines), and the
//! other tasks of its template are relevant. With `queries.jsonl` (webarena-paraphrase): each
//! rewording is a query, nothing is excluded, and every task of the reworded task's template
//! is relevant, the task itself included.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use sqlite_vector::{Filter, Hit, HybridParams, SearchParams, Shard};
use sqlite_vector_dataset::Matrix;
use sqlite_vector_embed::{Embedder, StaticEmbedder};
use sqlite_vector_memory::{
    Distilled, Experience, FindParams, Memory, Polarity, StoreOptions, MAX_TITLE_CHARS,
};

use super::metrics::Scores;
use crate::{existing_file, user, CliResult, Failure};

/// Where the query and bank vectors come from.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EvalEmbedder {
    /// The built-in offline model (minilm-static-256, 256-d) embeds tasks and queries.
    Builtin,
    /// The dataset's all-MiniLM-L6-v2 vectors (tasks.npy, queries.npy; 384-d).
    Vectors,
}

impl EvalEmbedder {
    fn name(self) -> &'static str {
        match self {
            EvalEmbedder::Builtin => "builtin",
            EvalEmbedder::Vectors => "vectors",
        }
    }
}

/// Options of `memory eval`.
#[derive(Args)]
pub(crate) struct EvalArgs {
    /// Dataset directory: ../shared/data/webarena-tasks (leave one task out) or
    /// ../shared/data/webarena-paraphrase (reworded queries, queries.jsonl).
    #[arg(long)]
    data: PathBuf,
    /// Vectors of the tasks and queries.
    #[arg(long, value_enum, default_value = "builtin")]
    embedder: EvalEmbedder,
    /// Print JSON lines, one ranking each.
    #[arg(long)]
    json: bool,
}

/// A line of `tasks.jsonl`.
#[derive(Deserialize)]
struct Task {
    task_id: usize,
    intent: String,
    /// Any JSON scalar (WebArena's are integers).
    template_id: serde_json::Value,
    /// Missing in other datasets of this shape: an empty list.
    #[serde(default)]
    sites: Vec<String>,
}

/// A line of `queries.jsonl`.
#[derive(Deserialize)]
struct QueryLine {
    task_id: usize,
    text: String,
}

/// One query of the protocol.
struct Query {
    text: String,
    /// Its vector (`None`: the built-in embedder makes it).
    vector: Option<Vec<f32>>,
    /// The task left out of every ranking (leave one task out).
    exclude: Option<usize>,
    relevant: HashSet<usize>,
}

/// Reads a JSON-lines file of `T`, naming the file and line of a bad one.
fn read_jsonl<T: DeserializeOwned>(path: &Path) -> CliResult<Vec<T>> {
    existing_file(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::internal(format!("{}: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| user(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Reads an f32 `.npy` of `rows` rows.
fn read_npy(path: &Path, rows: usize) -> CliResult<Matrix<f32>> {
    existing_file(path)?;
    let m = sqlite_vector_dataset::read_f32(path)?;
    if m.rows != rows {
        return Err(user(format!(
            "{} has {} rows, the protocol needs {rows}",
            path.display(),
            m.rows
        )));
    }
    Ok(m)
}

/// The first `n` characters of `s`.
fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Distinct task ids of `hits` (metadata `task_id`), in order.
fn task_ids(hits: &[Hit]) -> CliResult<Vec<usize>> {
    let mut out: Vec<usize> = Vec::with_capacity(hits.len());
    for h in hits {
        let id = h
            .metadata
            .get("task_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Failure::internal(format!("bank item {} has no task_id", h.id)))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Runs `memory eval`.
pub(crate) fn run(args: EvalArgs) -> CliResult {
    let dir = &args.data;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(user(format!("{} is not a directory", dir.display()))),
        Err(_) => return Err(user(format!("no such directory: {}", dir.display()))),
    }
    let started = Instant::now();
    let tasks: Vec<Task> = read_jsonl(&dir.join("tasks.jsonl"))?;
    // Task ids are distinct (WebArena's are 0, 1, 2, … in order); row i of the `.npy` files
    // is line i.
    let mut template_of: HashMap<usize, String> = HashMap::new();
    let mut by_template: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        let key = t.template_id.to_string();
        if template_of.insert(t.task_id, key.clone()).is_some() {
            return Err(user(format!(
                "{}: line {} repeats task_id {}",
                dir.join("tasks.jsonl").display(),
                i + 1,
                t.task_id
            )));
        }
        by_template.entry(key).or_default().push(t.task_id);
    }
    let template = |task: usize| -> &Vec<usize> { &by_template[&template_of[&task]] };

    let queries_path = dir.join("queries.jsonl");
    let paraphrase = queries_path.exists();
    let vectors = args.embedder == EvalEmbedder::Vectors;
    let task_vectors = if vectors {
        Some(read_npy(&dir.join("tasks.npy"), tasks.len())?)
    } else {
        None
    };
    let queries: Vec<Query> = if paraphrase {
        let lines: Vec<QueryLine> = read_jsonl(&queries_path)?;
        let qv = if vectors {
            Some(read_npy(&dir.join("queries.npy"), lines.len())?)
        } else {
            None
        };
        lines
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                if !template_of.contains_key(&q.task_id) {
                    return Err(user(format!(
                        "{} line {}: task_id {} is not in tasks.jsonl",
                        queries_path.display(),
                        i + 1,
                        q.task_id
                    )));
                }
                Ok(Query {
                    text: q.text,
                    vector: qv.as_ref().map(|m| m.row(i).to_vec()),
                    exclude: None,
                    relevant: template(q.task_id).iter().copied().collect(),
                })
            })
            .collect::<CliResult<_>>()?
    } else {
        tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| template(t.task_id).len() >= 2)
            .map(|(row, t)| Query {
                text: t.intent.clone(),
                vector: task_vectors.as_ref().map(|m| m.row(row).to_vec()),
                exclude: Some(t.task_id),
                relevant: template(t.task_id)
                    .iter()
                    .copied()
                    .filter(|&o| o != t.task_id)
                    .collect(),
            })
            .collect()
    };

    // The bank.
    let embedder: Option<Arc<dyn Embedder>> = if vectors {
        None
    } else {
        Some(Arc::new(StaticEmbedder::builtin().map_err(|e| {
            Failure::internal(format!("the built-in embedder failed to load: {e}"))
        })?))
    };
    let (dim, model) = match (&embedder, &task_vectors) {
        (Some(e), _) => (e.dimension(), Some(e.model_id().to_string())),
        (None, Some(m)) => (m.cols, None),
        (None, None) => unreachable!("vectors or an embedder"),
    };
    let shard = Arc::new(Shard::in_memory(&Memory::profile(dim, model.as_deref()))?);
    let memory = Memory::new(shard.clone(), embedder.clone())?;
    // 19 tasks share an intent word for word with another task: linking near duplicates
    // would merge different tasks.
    let opts = StoreOptions {
        link_duplicates: false,
        ..StoreOptions::default()
    };
    for (row, t) in tasks.iter().enumerate() {
        let exp = Experience {
            task: t.intent.clone(),
            task_id: t.task_id.to_string(),
            outcome: Polarity::Success,
            items: vec![Distilled {
                title: truncate_chars(&t.intent, MAX_TITLE_CHARS),
                description: if t.sites.is_empty() {
                    "Past task".into()
                } else {
                    format!("WebArena task on {}", t.sites.join(", "))
                },
                content: t.intent.clone(),
                tags: Vec::new(),
            }],
            task_vector: task_vectors.as_ref().map(|m| m.row(row).to_vec()),
        };
        memory
            .store_experience(&exp, opts)
            .map_err(|e| Failure::from(e).context(format!("task {}", t.task_id)))?;
    }
    let build_s = started.elapsed().as_secs_f64();

    // The rankings.
    const K: usize = 10;
    let names = ["vector", "bm25", "hybrid", "memory"];
    let mut scores = [Scores::default(); 4];
    let t = Instant::now();
    for q in &queries {
        let vector = match (&q.vector, &embedder) {
            (Some(v), _) => v.clone(),
            (None, Some(e)) => e.embed(&q.text).map_err(|e| {
                Failure::internal(format!("cannot embed the query {:?}: {e}", q.text))
            })?,
            (None, None) => unreachable!("vectors or an embedder"),
        };
        let mut params = SearchParams::k(K);
        if let Some(x) = q.exclude {
            params =
                params.with_filter(Filter::parse(&json!({"task_id": {"$ne": x.to_string()}}))?);
        }
        let rankings = [
            task_ids(&shard.search(&vector, &params)?)?,
            task_ids(&shard.search_text(&q.text, &params)?)?,
            task_ids(&shard.search_hybrid(&vector, &q.text, &params, &HybridParams::default())?)?,
            {
                let mut find = FindParams::new(q.text.clone());
                find.task_id = q.exclude.map(|x| x.to_string());
                find.k = K;
                // The memory's own embedder makes the builtin vector, as in `memory find`.
                find.task_vector = q.vector.clone();
                let mut ids = Vec::with_capacity(K);
                for p in memory.find_patterns(&find)? {
                    let id: usize = p.item.task_id.parse().map_err(|_| {
                        Failure::internal(format!(
                            "bank item {} has task_id {:?}",
                            p.item.id, p.item.task_id
                        ))
                    })?;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                ids
            },
        ];
        for (s, r) in scores.iter_mut().zip(&rankings) {
            s.add(r, &q.relevant);
        }
    }
    let query_s = t.elapsed().as_secs_f64();

    let protocol = if paraphrase {
        "reworded queries, every task of the template relevant"
    } else {
        "leave one task out, the other tasks of the template relevant"
    };
    if !args.json {
        out!(
            "memory eval on {} ({} tasks, {} queries: {protocol}), embedder {}{}",
            dir.display(),
            tasks.len(),
            queries.len(),
            args.embedder.name(),
            model.map_or(String::new(), |m| format!(" ({m})"))
        );
        out!(
            "{:<8} {:>8} {:>9} {:>10} {:>8}",
            "ranking",
            "MRR@10",
            "recall@5",
            "recall@10",
            "NDCG@10"
        );
    }
    for (name, s) in names.iter().zip(scores) {
        let m = s.mean(queries.len());
        if args.json {
            out!(
                "{}",
                json!({
                    "ranking": name,
                    "embedder": args.embedder.name(),
                    "queries": queries.len(),
                    "mrr_at_10": m.mrr_at_10,
                    "recall_at_5": m.recall_at_5,
                    "recall_at_10": m.recall_at_10,
                    "ndcg_at_10": m.ndcg_at_10,
                })
            );
        } else {
            out!(
                "{name:<8} {:>8.4} {:>9.4} {:>10.4} {:>8.4}",
                m.mrr_at_10,
                m.recall_at_5,
                m.recall_at_10,
                m.ndcg_at_10
            );
        }
    }
    if !args.json {
        eprintln!(
            "bank built in {build_s:.2} s; {} queries × 4 rankings in {query_s:.2} s",
            queries.len()
        );
    }
    Ok(())
}
