//! `sqlite-vector memory`: agent memory after ReasoningBank (crate `sqlite-vector-memory`) on
//! the shards of a root. `store` keeps the items an agent distilled from a finished task,
//! `find` returns the items of past tasks like a new one (never the task's own), `feedback`
//! is the learning loop (which items a task used, and how it ended), `consolidate` /
//! `unconsolidate` merge near duplicates reversibly, `context` writes one block from several
//! shards within a character budget, `session save` / `restore` keep a working set; `eval`
//! measures similar-past-task retrieval on WebArena tasks ([`eval`]).
//!
//! Every verb is a thin layer over [`Memory`]: the shard is opened through the root's manager
//! (an unknown or hostile name is refused, nothing is created; only `store` creates the shard,
//! and the root, when missing), text is embedded by the built-in model, and errors are the
//! memory crate's, user errors (exit 2) apart from the system's (exit 1).

/// `println!` that returns instead of panicking when stdout is gone: a closed pipe (`| head`)
/// ends the output quietly, another write error fails the command (exit 1).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::memory::write_line(format_args!($($arg)*))?
    };
}

mod eval;
mod metrics;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::json;
use sqlite_vector::{Metric, Profile, ShardManager};
use sqlite_vector_embed::{Embedder, StaticEmbedder};
use sqlite_vector_memory::{
    synthesize_context, ConsolidateParams, ContextParams, Distilled, Experience, FindParams,
    Memory, MemoryError, Pattern, Polarity, StoreOptions, DUPLICATE_JACCARD, TASK_FIELD,
};

use crate::{existing_file, existing_root, new_root, user, CliResult, Failure};

/// `memory` subcommands.
#[derive(Subcommand)]
pub(crate) enum MemoryCommand {
    /// Store what an agent learned from a finished task: 1 to 3 distilled items (a JSON array
    /// of {"title", "description", "content", "tags"?} in a file, or on stdin with `-`), each
    /// a strategy (--outcome success) or a pitfall (--outcome failure). A near duplicate of a
    /// current item is linked to it instead of stored twice. Creates the shard (and the root)
    /// when missing.
    Store(StoreArgs),
    /// Find the items of past tasks most useful for a new task, best first: relevance (hybrid
    /// search of the task) plus how each item worked when used. Items of --task-id itself are
    /// left out. Failures come back as lessons ("Avoid: …").
    Find(FindArgs),
    /// Report which items a task used and whether it succeeded: each item's uses and wins or
    /// losses move by one (all or nothing), and later rankings follow.
    Feedback(FeedbackArgs),
    /// Merge clusters of near-duplicate items into one canonical item each (the others are
    /// kept, marked superseded; `unconsolidate` gives them back).
    Consolidate(ConsolidateArgs),
    /// Give back the items consolidation merged into ID.
    Unconsolidate(UnconsolidateArgs),
    /// Write one context block for a task from one or more memory shards, within a character
    /// budget, best first, near duplicates dropped.
    Context(ContextArgs),
    /// Save or restore an agent's working set (item ids and a note).
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Similar-past-task retrieval on WebArena tasks (shared/data/FORMAT-webarena.md): MRR@10,
    /// recall@5, recall@10 and NDCG@10 of vector, BM25, hybrid and memory (`find`) rankings.
    Eval(eval::EvalArgs),
}

/// `memory session` subcommands.
#[derive(Subcommand)]
pub(crate) enum SessionCommand {
    /// Save a working set under --session (replacing an earlier save under that id).
    Save(SessionSaveArgs),
    /// Print the working set saved under --session, with the items still present.
    Restore(SessionRestoreArgs),
}

/// `--root DIR --shard NAME`: one memory shard.
#[derive(Args)]
pub(crate) struct OneShard {
    /// Root directory of the shards.
    #[arg(long)]
    root: PathBuf,
    /// The memory shard's name under --root (e.g. team-a/coder).
    #[arg(long, value_name = "NAME")]
    shard: String,
}

/// `--root DIR (--shard NAME ... | --prefix P)`: memory shards searched together.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).args(["shards", "prefix"])))]
pub(crate) struct ManyShards {
    /// Root directory of the shards.
    #[arg(long)]
    root: PathBuf,
    /// A memory shard's name under --root (repeatable).
    #[arg(long = "shard", value_name = "NAME")]
    shards: Vec<String>,
    /// Every memory shard under --root whose name starts with this (other shards are skipped).
    #[arg(long)]
    prefix: Option<String>,
}

/// How a task ended.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Outcome {
    /// The task succeeded: its items are strategies.
    Success,
    /// The task failed: its items are pitfalls.
    Failure,
}

/// Options of `memory store`.
#[derive(Args)]
pub(crate) struct StoreArgs {
    #[command(flatten)]
    at: OneShard,
    /// The task as it was given.
    #[arg(long)]
    task: String,
    /// Your id of the task (the key of the leave-one-out guard of `find`).
    #[arg(long)]
    task_id: String,
    /// How the task ended.
    #[arg(long, value_enum)]
    outcome: Outcome,
    /// JSON array of the distilled items, [{"title", "description", "content", "tags"?}], in
    /// FILE, or on stdin with `-`.
    #[arg(long, value_name = "FILE|-")]
    items: PathBuf,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

/// Options of `memory find`.
#[derive(Args)]
pub(crate) struct FindArgs {
    #[command(flatten)]
    new: NewTask,
    /// Number of hits (1 to 100).
    #[arg(long, short, default_value_t = 5)]
    k: usize,
    /// Keep hits whose score (relevance + 2 × (prior − ½)) is at least this.
    #[arg(long, allow_negative_numbers = true)]
    min_score: Option<f32>,
    /// Print JSON lines, one hit each.
    #[arg(long)]
    json: bool,
}

/// The shards and the new task of `memory find` and `memory context`.
#[derive(Args)]
pub(crate) struct NewTask {
    #[command(flatten)]
    at: ManyShards,
    /// The new task.
    #[arg(long)]
    task: String,
    /// Its id: items that came from this task are left out.
    #[arg(long)]
    task_id: Option<String>,
}

/// Options of `memory feedback`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("result").required(true).args(["success", "failure"])))]
pub(crate) struct FeedbackArgs {
    #[command(flatten)]
    at: OneShard,
    /// The id of the task that used the items.
    #[arg(long)]
    task_id: String,
    /// The ids of the items it used, comma-separated.
    #[arg(long, value_name = "ID,...", value_delimiter = ',', required = true)]
    items: Vec<String>,
    /// The task succeeded.
    #[arg(long)]
    success: bool,
    /// The task failed.
    #[arg(long)]
    failure: bool,
    /// Print JSON lines, one updated item each.
    #[arg(long)]
    json: bool,
}

/// Options of `memory consolidate`.
#[derive(Args)]
pub(crate) struct ConsolidateArgs {
    #[command(flatten)]
    at: OneShard,
    /// Word-set Jaccard similarity (of title, description and content) at or above which two
    /// items of the same polarity are merged, in (0, 1].
    #[arg(long, default_value_t = DUPLICATE_JACCARD)]
    threshold: f64,
    /// Only print what would be merged.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON lines, one cluster each.
    #[arg(long)]
    json: bool,
}

/// Options of `memory unconsolidate`.
#[derive(Args)]
pub(crate) struct UnconsolidateArgs {
    #[command(flatten)]
    at: OneShard,
    /// The canonical item of a consolidation.
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `memory context`.
#[derive(Args)]
pub(crate) struct ContextArgs {
    #[command(flatten)]
    new: NewTask,
    /// Most characters of the block (200 to 100,000).
    #[arg(long, default_value_t = 4_000)]
    budget: usize,
    /// Items looked at per shard (1 to 100).
    #[arg(long, default_value_t = 8)]
    per_shard: usize,
    /// Print JSON: the block and its entries.
    #[arg(long)]
    json: bool,
}

/// Options of `memory session save`.
#[derive(Args)]
pub(crate) struct SessionSaveArgs {
    #[command(flatten)]
    at: OneShard,
    /// The session's id.
    #[arg(long)]
    session: String,
    /// The ids of the working set's items, comma-separated, in order.
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    items: Vec<String>,
    /// A note (what the agent was doing).
    #[arg(long, default_value = "")]
    note: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `memory session restore`.
#[derive(Args)]
pub(crate) struct SessionRestoreArgs {
    #[command(flatten)]
    at: OneShard,
    /// The session's id.
    #[arg(long)]
    session: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl From<MemoryError> for Failure {
    /// User or system as the memory crate classifies it ([`MemoryError::is_user_error`]).
    fn from(e: MemoryError) -> Self {
        Failure {
            user: e.is_user_error(),
            msg: e.to_string(),
        }
    }
}

/// Writes one line to stdout (see [`out!`]).
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) -> CliResult {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{args}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The failure of a memory call that embeds `what`: an embedder's error names it (the
/// embedder's own message only says "text 0").
fn embedding(what: &'static str) -> impl Fn(MemoryError) -> Failure {
    move |e| match e {
        MemoryError::Embed(_) => Failure::from(e).context(format!("cannot embed {what}")),
        e => e.into(),
    }
}

/// The built-in embedder (`minilm-static-256`).
fn builtin() -> CliResult<Arc<dyn Embedder>> {
    let e = StaticEmbedder::builtin()
        .map_err(|e| Failure::internal(format!("the built-in embedder failed to load: {e}")))?;
    Ok(Arc::new(e))
}

/// Whether a shard of this profile is a memory shard ([`Memory::profile`]).
fn is_memory_profile(p: &Profile) -> bool {
    p.metric == Metric::Cosine && p.searchable_fields.iter().any(|f| f == TASK_FIELD)
}

/// Memories open through a root's manager, which stays open while they are in use.
struct Opened {
    /// `(shard name, memory)`, in the order asked.
    memories: Vec<(String, Memory)>,
    /// Declared after `memories`, so dropped after their shards.
    _manager: ShardManager,
}

impl Opened {
    /// The one memory of a [`OneShard`] command.
    fn one(&self) -> &Memory {
        &self.memories[0].1
    }
}

/// [`Memory::new`] over shard `name`, the failure naming the shard.
fn memory(
    manager: &ShardManager,
    name: &str,
    embedder: Option<Arc<dyn Embedder>>,
) -> CliResult<Memory> {
    let shard = manager.open_shard(name)?;
    Memory::new(shard, embedder).map_err(|e| Failure::from(e).context(format!("shard {name}")))
}

/// Opens the memory shard of `at` in an existing root; with `embed`, with the built-in
/// embedder (for the verbs that embed text).
fn open_one(at: &OneShard, embed: bool) -> CliResult<Opened> {
    let manager = existing_root(&at.root)?;
    let embedder = if embed { Some(builtin()?) } else { None };
    let m = memory(&manager, &at.shard, embedder)?;
    Ok(Opened {
        memories: vec![(at.shard.clone(), m)],
        _manager: manager,
    })
}

/// Opens the memory shards of `at`, with the built-in embedder: the names given (each must
/// be a memory shard), or the memory shards under the prefix (at least one).
fn open_many(at: &ManyShards) -> CliResult<Opened> {
    let manager = existing_root(&at.root)?;
    let embedder = builtin()?;
    let names: Vec<String> = match &at.prefix {
        Some(p) => {
            let names: Vec<String> = manager
                .list(Some(p))?
                .into_iter()
                .filter(|s| is_memory_profile(&s.profile))
                .map(|s| s.name)
                .collect();
            if names.is_empty() {
                return Err(user(format!(
                    "no memory shard under --root {} has a name starting with {p:?}",
                    at.root.display()
                )));
            }
            names
        }
        None => at.shards.clone(),
    };
    let mut memories = Vec::with_capacity(names.len());
    for name in names {
        let m = memory(&manager, &name, Some(embedder.clone()))?;
        memories.push((name, m));
    }
    Ok(Opened {
        memories,
        _manager: manager,
    })
}

/// One distilled item as `--items` gives it (unknown fields refused: a typo must not drop a
/// field silently).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn {
    title: String,
    description: String,
    content: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// Reads and parses `--items` (a file, or stdin for `-`).
fn read_items(path: &Path) -> CliResult<Vec<Distilled>> {
    let stdin = path == Path::new("-");
    let name = if stdin {
        "stdin".to_string()
    } else {
        existing_file(path)?;
        path.display().to_string()
    };
    let read = if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    };
    // Text that is not UTF-8 is the user's; another read failure the system's.
    let text = read.map_err(|e| {
        let msg = format!("--items {name}: {e}");
        if e.kind() == std::io::ErrorKind::InvalidData {
            user(msg)
        } else {
            Failure::internal(msg)
        }
    })?;
    let items: Vec<ItemIn> = serde_json::from_str(&text).map_err(|e| {
        user(format!(
            "--items {name}: not a JSON array of {{\"title\", \"description\", \"content\", \
             \"tags\"?}} objects: {e}"
        ))
    })?;
    Ok(items
        .into_iter()
        .map(|i| Distilled {
            title: i.title,
            description: i.description,
            content: i.content,
            tags: i.tags,
        })
        .collect())
}

fn store(args: StoreArgs) -> CliResult {
    let items = read_items(&args.items)?;
    let outcome = match args.outcome {
        Outcome::Success => Polarity::Success,
        Outcome::Failure => Polarity::Failure,
    };
    let mut exp = Experience {
        task: args.task,
        task_id: args.task_id,
        outcome,
        items,
        task_vector: None,
    };
    // Nothing is created for a refused name or experience: the name, the quality gate and
    // the task's embedding are checked before the root is made (the embedding is then
    // stored, not made again).
    sqlite_vector::manager::validate_name(&args.at.shard)?;
    exp.validate(sqlite_vector_memory::MAX_ITEMS)
        .map_err(Failure::from)?;
    let embedder = builtin()?;
    exp.task_vector = Some(
        embedder
            .embed(&exp.task)
            .map_err(sqlite_vector_memory::MemoryError::from)
            .map_err(embedding("--task"))?,
    );
    let profile = Memory::profile(embedder.dimension(), Some(embedder.model_id()));
    let manager = new_root(&args.at.root)?;
    let shard = manager.get_or_create(&args.at.shard, &profile)?;
    let memory = Memory::new(shard, Some(embedder))
        .map_err(|e| Failure::from(e).context(format!("shard {}", args.at.shard)))?;
    let stored = memory
        .store_experience(&exp, StoreOptions::default())
        .map_err(embedding("--task"))?;
    for (s, d) in stored.iter().zip(&exp.items) {
        if args.json {
            out!(
                "{}",
                json!({"id": s.id, "linked": s.linked, "title": d.title})
            );
        } else if s.linked {
            out!("linked to {} (a near duplicate): {}", s.id, d.title.trim());
        } else {
            out!("stored {}: {}", s.id, d.title.trim());
        }
    }
    Ok(())
}

fn find(args: FindArgs) -> CliResult {
    let opened = open_many(&args.new.at)?;
    let mut params = FindParams::new(args.new.task);
    params.task_id = args.new.task_id;
    params.k = args.k;
    params.min_score = args.min_score;
    let mut hits: Vec<(&str, Pattern)> = Vec::new();
    for (name, m) in &opened.memories {
        for p in m.find_patterns(&params).map_err(embedding("--task"))? {
            hits.push((name, p));
        }
    }
    // Merged by score, as `synthesize_context` merges; ties by shard, then id.
    hits.sort_by(|a, b| {
        b.1.score
            .total_cmp(&a.1.score)
            .then(a.0.cmp(b.0))
            .then(a.1.item.id.cmp(&b.1.item.id))
    });
    hits.truncate(args.k);
    for (i, (shard, p)) in hits.iter().enumerate() {
        let it = &p.item;
        if args.json {
            out!(
                "{}",
                json!({
                    "shard": shard, "id": it.id, "title": it.title,
                    "description": it.description, "content": it.content,
                    "polarity": it.polarity, "task_id": it.task_id, "tags": it.tags,
                    "uses": it.uses, "wins": it.wins, "losses": it.losses,
                    "score": p.score, "relevance": p.relevance,
                    "vector_score": p.vector_score, "text_score": p.text_score,
                    "prior": p.prior, "advice": p.advice,
                })
            );
        } else {
            let bm25 = p.text_score.map_or("-".to_string(), |t| format!("{t:.2}"));
            out!("{:>2}. {}", i + 1, p.advice);
            out!("    when: {}", it.description);
            out!("    {}", it.content);
            out!(
                "    score {:.3} = relevance {:.3} + prior {:.2} (uses {}, wins {}, losses {}); \
                 cosine {:.3}, bm25 {bm25}; {shard}/{} from task {}",
                p.score,
                p.relevance,
                p.prior,
                it.uses,
                it.wins,
                it.losses,
                p.vector_score,
                it.id,
                it.task_id
            );
        }
    }
    if !args.json {
        eprintln!("{} hit(s)", hits.len());
    }
    Ok(())
}

fn feedback(args: FeedbackArgs) -> CliResult {
    let opened = open_one(&args.at, false)?;
    let success = args.success && !args.failure;
    let items = opened
        .one()
        .record_outcome(&args.task_id, &args.items, success)
        .map_err(|e| Failure::from(e).context("nothing was changed"))?;
    for it in &items {
        if args.json {
            out!(
                "{}",
                json!({"id": it.id, "uses": it.uses, "wins": it.wins, "losses": it.losses,
                       "prior": it.prior()})
            );
        } else {
            out!(
                "{}: uses {}, wins {}, losses {}, prior {:.3}",
                it.id,
                it.uses,
                it.wins,
                it.losses,
                it.prior()
            );
        }
    }
    Ok(())
}

fn consolidate(args: ConsolidateArgs) -> CliResult {
    let opened = open_one(&args.at, false)?;
    let merges = opened.one().consolidate(ConsolidateParams {
        threshold: args.threshold,
        dry_run: args.dry_run,
    })?;
    for m in &merges {
        if args.json {
            out!(
                "{}",
                json!({"canonical": m.canonical, "absorbed": m.absorbed, "dry_run": args.dry_run})
            );
        } else {
            let verb = if args.dry_run {
                "would merge"
            } else {
                "merged"
            };
            out!("{verb} {} into {}", m.absorbed.join(", "), m.canonical);
        }
    }
    if !args.json {
        let n: usize = merges.iter().map(|m| m.absorbed.len()).sum();
        eprintln!(
            "{} cluster(s), {n} item(s) {}",
            merges.len(),
            if args.dry_run {
                "would be superseded (dry run: nothing changed)"
            } else {
                "superseded"
            }
        );
    }
    Ok(())
}

fn unconsolidate(args: UnconsolidateArgs) -> CliResult {
    let opened = open_one(&args.at, false)?;
    let back = opened.one().unconsolidate(&args.id)?;
    if args.json {
        out!("{}", json!({"canonical": args.id, "restored": back}));
    } else if back.is_empty() {
        out!("nothing was merged into {}", args.id);
    } else {
        out!("gave back {} from {}", back.join(", "), args.id);
    }
    Ok(())
}

fn context(args: ContextArgs) -> CliResult {
    let opened = open_many(&args.new.at)?;
    let shards: Vec<(String, &Memory)> = opened
        .memories
        .iter()
        .map(|(n, m)| (n.clone(), m))
        .collect();
    let mut params = ContextParams::new(args.new.task);
    params.task_id = args.new.task_id;
    params.budget_chars = args.budget;
    params.per_shard = args.per_shard;
    let c = synthesize_context(&shards, &params).map_err(embedding("--task"))?;
    if args.json {
        out!(
            "{}",
            serde_json::to_string(&c).expect("a context serialises")
        );
    } else {
        out!("{}", c.text);
        eprintln!(
            "{} entr{}, {} near duplicate(s) and {} over the budget left out",
            c.entries.len(),
            if c.entries.len() == 1 { "y" } else { "ies" },
            c.duplicates,
            c.over_budget
        );
    }
    Ok(())
}

fn session(command: SessionCommand) -> CliResult {
    match command {
        SessionCommand::Save(args) => {
            let opened = open_one(&args.at, true)?;
            let s = opened
                .one()
                .save_session(&args.session, &args.items, &args.note)
                .map_err(embedding("the session"))?;
            if args.json {
                out!(
                    "{}",
                    serde_json::to_string(&s).expect("a session serialises")
                );
            } else {
                out!(
                    "saved session {}: {} item(s)",
                    s.session_id,
                    s.item_ids.len()
                );
            }
        }
        SessionCommand::Restore(args) => {
            let opened = open_one(&args.at, false)?;
            let r = opened.one().restore_session(&args.session)?;
            if args.json {
                out!(
                    "{}",
                    serde_json::to_string(&r).expect("a session serialises")
                );
            } else {
                out!(
                    "session {} (saved at {} ms): {}",
                    r.session.session_id,
                    r.session.saved_at,
                    r.session.note
                );
                for it in &r.items {
                    out!("- [{}] {}: {}", it.polarity.as_str(), it.id, it.title);
                }
                if !r.missing.is_empty() {
                    out!("missing: {}", r.missing.join(", "));
                }
            }
        }
    }
    Ok(())
}

/// Runs a `memory` subcommand.
pub(crate) fn run(command: MemoryCommand) -> CliResult {
    match command {
        MemoryCommand::Store(args) => store(args),
        MemoryCommand::Find(args) => find(args),
        MemoryCommand::Feedback(args) => feedback(args),
        MemoryCommand::Consolidate(args) => consolidate(args),
        MemoryCommand::Unconsolidate(args) => unconsolidate(args),
        MemoryCommand::Context(args) => context(args),
        MemoryCommand::Session { command } => session(command),
        MemoryCommand::Eval(args) => eval::run(args),
    }
}
