//! `sqlite-vector`: the command-line interface.
//!
//! Every subcommand is a thin layer over the `sqlite-vector` crate's [`Shard`] API; errors are
//! printed to stderr with a non-zero exit code (2 for bad input, 1 for internal failures).

#![warn(missing_docs)]

mod bench;
mod demo;
mod import;
mod mcp;
mod memory;
mod sync;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use sqlite_vector::{
    Durability, Filter, HybridParams, ManagerOptions, Metric, Profile, Query, Scope, SearchParams,
    Shard, ShardManager,
};

/// Embedded vector database for AI agents: SQLite shards, exact SIMD search.
#[derive(Parser)]
#[command(name = "sqlite-vector", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an empty shard file.
    Create {
        /// Path of the new shard file.
        path: PathBuf,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Build a shard's HNSW index (stored in the shard, maintained by every write), or drop it
    /// with --drop. Searches use it above the planner's size threshold. The shard is a file
    /// (PATH) or a shard of a root (--root with --shard).
    #[command(override_usage = "sqlite-vector index [OPTIONS] <PATH>\n       \
                                sqlite-vector index [OPTIONS] --root <ROOT> --shard <NAME>")]
    Index {
        #[command(flatten)]
        shard: ShardArg,
        /// HNSW `M` (layer 0 keeps 2·M neighbours).
        #[arg(long, default_value_t = 16)]
        m: usize,
        /// HNSW `ef_construction`.
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        /// Default `ef_search` of queries that do not set one.
        #[arg(long, default_value_t = 64)]
        ef_search: usize,
        /// Drop the index instead.
        #[arg(long)]
        drop: bool,
    },
    /// Import vectors from a .npy file (with ids/metadata/text from JSONL) or from JSONL lines
    /// that carry a vector, into a shard file (PATH) or a shard of a root (--root with --shard).
    #[command(override_usage = "sqlite-vector import [OPTIONS] <PATH>\n       \
                                sqlite-vector import [OPTIONS] --root <ROOT> --shard <NAME>")]
    Import(import::ImportArgs),
    /// Search a shard (PATH) or several shards of a root (--root with --shard/--prefix): by
    /// vector, by text (BM25, --text), or both fused (--hybrid).
    Search(SearchArgs),
    /// Print one item as JSON, from a shard file (`get PATH ID`) or a shard of a root
    /// (`get --root DIR --shard NAME ID`).
    // PATH is optional before the required ID: a single positional is the ID.
    #[command(allow_missing_positional = true)]
    #[command(override_usage = "sqlite-vector get <PATH> <ID>\n       \
                                sqlite-vector get --root <ROOT> --shard <NAME> <ID>")]
    Get {
        #[command(flatten)]
        shard: ShardArg,
        /// Item id (a negative integer id is taken as the id, not an option).
        #[arg(allow_negative_numbers = true)]
        id: String,
    },
    /// Delete items, all or nothing: one unknown id deletes none (each deleted item leaves a
    /// tombstone for sync). From a shard file (`delete PATH ID...`) or a shard of a root
    /// (`delete --root DIR --shard NAME ID...`, where every positional is an id).
    #[command(override_usage = "sqlite-vector delete <PATH> <ID>...\n       \
                                sqlite-vector delete --root <ROOT> --shard <NAME> <ID>...")]
    Delete {
        #[command(flatten)]
        named: NamedShard,
        /// The shard file, then the item ids; with --root and --shard, the ids alone (negative
        /// integer ids are taken as ids, not options).
        #[arg(value_name = "PATH|ID", required = true, allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Show a shard's profile, counts and sizes: a shard file (PATH) or a shard of a root
    /// (--root with --shard).
    #[command(override_usage = "sqlite-vector stats [OPTIONS] <PATH>\n       \
                                sqlite-vector stats [OPTIONS] --root <ROOT> --shard <NAME>")]
    Stats {
        #[command(flatten)]
        shard: ShardArg,
        /// Also run an integrity check.
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of a shard to a new file while it stays in use (one file, no
    /// -wal; it keeps the shard's identity: a backup to restore, not a second replica). The
    /// shard is a file (`backup PATH DEST`) or a shard of a root (`backup --root DIR --shard
    /// NAME DEST`).
    // PATH is optional before the required DEST: a single positional is the DEST.
    #[command(allow_missing_positional = true)]
    #[command(override_usage = "sqlite-vector backup <PATH> <DEST>\n       \
                                sqlite-vector backup --root <ROOT> --shard <NAME> <DEST>")]
    Backup {
        #[command(flatten)]
        shard: ShardArg,
        /// The copy (a new file, not in a root: it must not exist).
        dest: PathBuf,
    },
    /// Manage the shards of a root directory.
    Shards {
        #[command(subcommand)]
        command: ShardsCommand,
    },
    /// Benchmark on a dataset directory (shared/data/FORMAT.md layout) or synthetic data.
    Bench(bench::BenchArgs),
    /// A tour on the built-in sample of 2,000 Debian package descriptions (no setup, no network).
    Demo {
        /// Keep the demo shard at this path instead of a temporary file.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Serve MCP on stdio (for Claude Code, Claude Desktop and other MCP clients).
    Mcp(mcp::McpArgs),
    /// Write a shard's items as JSON lines sorted by id (`id`, `vector`, `metadata`, `text`;
    /// with --include-deleted also tombstones, as `{"id", "deleted": true}`): the backup format,
    /// and how two shards are compared. The shard is a file (PATH) or a shard of a root (--root
    /// with --shard).
    #[command(override_usage = "sqlite-vector export [OPTIONS] <PATH>\n       \
                                sqlite-vector export [OPTIONS] --root <ROOT> --shard <NAME>")]
    Export {
        #[command(flatten)]
        shard: ShardArg,
        /// Also write tombstones.
        #[arg(long)]
        include_deleted: bool,
    },
    /// Agent memory after ReasoningBank on the shards of a root: store what a finished task
    /// taught, find the lessons of past tasks like a new one, feed outcomes back, consolidate,
    /// write a context block, save sessions; `eval` measures it on WebArena tasks.
    Memory {
        #[command(subcommand)]
        command: memory::MemoryCommand,
    },
    /// Sync shards with other roots over QUIC (mutual TLS on pinned node keys): identity,
    /// trust list, server, one-shot pull / push / both.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
}

/// The shard a command works on: a shard file (PATH), or a shard of a root by name (`--root DIR
/// --shard NAME`), opened through the root's manager.
#[derive(clap::Args)]
pub(crate) struct ShardArg {
    /// Shard file (or give --root and --shard instead).
    // A negative number is a value here: `get PATH -5` must not make `-5` an option, and
    // `get --root R --shard s -5` hands it on to the ID.
    #[arg(
        required_unless_present = "root",
        conflicts_with_all = ["root", "shard"],
        allow_negative_numbers = true
    )]
    path: Option<PathBuf>,
    #[command(flatten)]
    named: NamedShard,
}

/// `--root DIR --shard NAME`: a shard of a root, instead of a shard file.
#[derive(clap::Args)]
pub(crate) struct NamedShard {
    /// Root directory of a shard manager (with --shard, instead of a shard file).
    #[arg(long, requires = "shard")]
    root: Option<PathBuf>,
    /// Name of the shard under --root (e.g. team-a/coder).
    #[arg(long, requires = "root", value_name = "NAME")]
    shard: Option<String>,
}

impl ShardArg {
    /// Opens the shard: the file, or the named shard through its root's manager.
    pub(crate) fn open(&self) -> CliResult<ShardHandle> {
        match &self.path {
            Some(path) => ShardHandle::file(path),
            None => self.named.open(),
        }
    }
}

impl NamedShard {
    /// Opens the named shard through the manager of an existing root ([`existing_root`]): an
    /// unknown or invalid name is the manager's error, and nothing is created.
    fn open(&self) -> CliResult<ShardHandle> {
        let (Some(root), Some(name)) = (&self.root, &self.shard) else {
            // Clap requires a PATH, or --root and --shard together.
            return Err(user("give a shard PATH, or --root and --shard"));
        };
        let manager = existing_root(root)?;
        // The manager's handle checks, in every commit, that the shard was not dropped meanwhile.
        let shard = manager.open_shard(name)?;
        Ok(ShardHandle {
            shard,
            _manager: Some(manager),
            label: format!("shard {name}"),
        })
    }
}

/// An open shard, whichever way it was named: derefs to the [`Shard`], and displays as the
/// shard file's path or as `shard NAME`.
pub(crate) struct ShardHandle {
    shard: Arc<Shard>,
    /// The manager of the root the shard was opened through, kept open while the shard is in
    /// use (declared after `shard`, so it is dropped after the shard).
    _manager: Option<ShardManager>,
    label: String,
}

impl ShardHandle {
    /// Opens the shard file at `path` (see [`open_shard`]).
    fn file(path: &Path) -> CliResult<ShardHandle> {
        Ok(ShardHandle {
            shard: Arc::new(open_shard(path)?),
            _manager: None,
            label: path.display().to_string(),
        })
    }
}

impl std::ops::Deref for ShardHandle {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        &self.shard
    }
}

impl std::fmt::Display for ShardHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

#[derive(clap::Args)]
struct SearchArgs {
    /// Shard file (or use --root with --shard / --prefix).
    #[arg(required_unless_present = "root", conflicts_with = "root")]
    path: Option<PathBuf>,
    /// Root directory of a shard manager.
    #[arg(long, requires = "targets")]
    root: Option<PathBuf>,
    /// Shard name under --root (repeatable).
    #[arg(long = "shard", group = "targets")]
    shards: Vec<String>,
    /// Every shard under --root whose name starts with this (e.g. team-a/).
    #[arg(long, group = "targets")]
    prefix: Option<String>,
    /// Query vector as a JSON array, e.g. '[0.1, 0.2, 0.3]'.
    #[arg(long, conflicts_with = "npy")]
    vector: Option<String>,
    /// Read the query vector from a row of a .npy file (f32 [n, dim]).
    #[arg(long, requires = "row")]
    npy: Option<PathBuf>,
    /// Row of --npy to use.
    #[arg(long)]
    row: Option<usize>,
    /// Query text: ranked by BM25 (--mode text), or fused with the vector ranking (--mode
    /// hybrid, the default with a vector, and on shards that record the built-in embedding
    /// model, which then embeds the text).
    #[arg(long)]
    text: Option<String>,
    /// How to rank: vector, text (BM25) or hybrid (both fused, see --fusion). Default: hybrid for text
    /// with a vector or on text shards, text for text on shards of raw vectors, vector for a
    /// vector alone (the same rule as the MCP server's `search`).
    #[arg(long, conflicts_with = "hybrid")]
    mode: Option<sqlite_vector::Mode>,
    /// Same as --mode hybrid.
    #[arg(long, requires = "text")]
    hybrid: bool,
    /// How hybrid search fuses its two rankings: dbsf (z-scores of both exact scores over the
    /// candidates, summed: 0 is the candidates' average, each standard deviation above it in a
    /// ranking adds 1) or rrf (reciprocal rank fusion, Σ 1/(rrf_k + rank)).
    #[arg(long, default_value = "dbsf")]
    fusion: sqlite_vector::Fusion,
    /// RRF constant for --fusion rrf.
    #[arg(long, default_value_t = 60.0)]
    rrf_k: f32,
    /// Number of hits.
    #[arg(long, short, default_value_t = 10)]
    k: usize,
    /// Metadata filter as JSON, e.g. '{"kind": "python", "words": {"$gte": 50}}'.
    #[arg(long)]
    filter: Option<String>,
    /// Metric override: cosine, l2 or dot.
    #[arg(long)]
    metric: Option<Metric>,
    /// Keep hits with score ≥ this (cosine, dot, BM25, or hybrid's fused score).
    #[arg(long)]
    min_score: Option<f32>,
    /// HNSW beam width for this search (shards with an index; default: the index's).
    #[arg(long)]
    ef_search: Option<usize>,
    /// Scan exactly even when the shard has an index.
    #[arg(long)]
    exact: bool,
    /// Keep hits with L2 distance ≤ this (l2).
    #[arg(long)]
    max_distance: Option<f32>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The profile flags of `create` and `shards create`.
#[derive(clap::Args)]
struct ProfileArgs {
    /// Vector dimension.
    #[arg(long)]
    dim: usize,
    /// Metric: cosine, l2 or dot.
    #[arg(long, default_value = "cosine")]
    metric: Metric,
    /// Durability: full or normal.
    #[arg(long, default_value = "normal")]
    durability: Durability,
    /// Id of the embedding model the vectors come from.
    #[arg(long)]
    model: Option<String>,
    /// Metadata fields indexed for full-text search (repeatable).
    #[arg(long = "searchable")]
    searchable: Vec<String>,
}

impl ProfileArgs {
    fn profile(&self) -> Profile {
        let mut profile = Profile::new(self.dim, self.metric)
            .with_durability(self.durability)
            .with_searchable_fields(self.searchable.clone());
        profile.embedding_model = self.model.clone();
        profile
    }
}

#[derive(Subcommand)]
enum ShardsCommand {
    /// List shards (name, profile, size), optionally under a namespace prefix.
    List {
        /// Root directory.
        #[arg(long)]
        root: PathBuf,
        /// Only names starting with this (e.g. team-a/).
        #[arg(long)]
        prefix: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a shard, e.g. `shards create team-a/coder --root DIR --dim 384`.
    Create {
        /// Shard name: [A-Za-z0-9._-] segments separated by '/'.
        name: String,
        /// Root directory (created if missing).
        #[arg(long)]
        root: PathBuf,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Drop a shard and its files.
    Drop {
        /// Shard name.
        name: String,
        /// Root directory.
        #[arg(long)]
        root: PathBuf,
    },
    /// Show a shard's stats.
    Stats {
        /// Shard name.
        name: String,
        /// Root directory.
        #[arg(long)]
        root: PathBuf,
    },
}

/// A CLI failure: the message and whether the user caused it (exit code 2) or the system did
/// (exit code 1).
pub(crate) struct Failure {
    msg: String,
    user: bool,
}

impl From<sqlite_vector::Error> for Failure {
    /// User or system as the core classifies it ([`sqlite_vector::ErrorKind::is_user_error`]).
    fn from(e: sqlite_vector::Error) -> Self {
        Failure {
            user: e.kind().is_user_error(),
            msg: e.to_string(),
        }
    }
}

impl From<sqlite_vector_dataset::DatasetError> for Failure {
    /// A malformed file is the user's; a file that cannot be read is theirs when the path is
    /// wrong (missing, a directory), the system's otherwise.
    fn from(e: sqlite_vector_dataset::DatasetError) -> Self {
        use sqlite_vector_dataset::DatasetError;
        let user = match &e {
            DatasetError::Io { source, .. } => is_path_mistake(source),
            _ => true,
        };
        Failure {
            user,
            msg: e.to_string(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure {
            user: false,
            msg: e.to_string(),
        }
    }
}

impl Failure {
    /// An internal failure with this message.
    pub(crate) fn internal(msg: impl Into<String>) -> Failure {
        Failure {
            msg: msg.into(),
            user: false,
        }
    }

    /// The same failure (same exit code), its message prefixed with `what: `.
    pub(crate) fn context(self, what: impl std::fmt::Display) -> Failure {
        Failure {
            msg: format!("{what}: {}", self.msg),
            ..self
        }
    }

    /// Whether the user's input caused it.
    pub(crate) fn is_user(&self) -> bool {
        self.user
    }
}

/// A user error with this message.
pub(crate) fn user(msg: impl Into<String>) -> Failure {
    Failure {
        msg: msg.into(),
        user: true,
    }
}

/// Whether an I/O error on a path the user gave is a mistake in that path (it does not exist,
/// or it or one of its parents is of the wrong kind) rather than a failure of the system.
fn is_path_mistake(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), NotFound | IsADirectory | NotADirectory)
}

/// The failure of reading `path`'s metadata: the user's when the path is wrong.
fn path_failure(path: &Path, e: std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::NotFound => user(format!("no such file: {}", path.display())),
        _ if is_path_mistake(&e) => user(format!("{}: {e}", path.display())),
        _ => Failure::internal(format!("{}: {e}", path.display())),
    }
}

/// Checks that `path` names an existing file (a shard, or an input): a missing path or a
/// directory is the user's mistake, named in the message.
pub(crate) fn existing_file(path: &Path) -> CliResult {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(user(format!(
            "{} is a directory, not a file",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(path_failure(path, e)),
    }
}

/// Opens the shard file at `path` (see [`existing_file`]).
pub(crate) fn open_shard(path: &Path) -> CliResult<Shard> {
    existing_file(path)?;
    Ok(Shard::open(path)?)
}

/// Checks that a new file can be made at `path`: it is not a directory and its parent
/// directory exists.
pub(crate) fn new_file(path: &Path) -> CliResult {
    if path.is_dir() {
        return Err(user(format!("{} is a directory", path.display())));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(user(format!("{} is not a directory", parent.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(user(format!(
            "directory {} does not exist",
            parent.display()
        ))),
        Err(e) => Err(path_failure(parent, e)),
    }
}

/// The catalog file of a shard root (see `ShardManager`): its presence tells a root from
/// any other directory.
const ROOT_CATALOG: &str = "catalog.db";

/// Opens the manager of an existing root, for every command but `shards create`: a mistyped
/// `--root` is refused instead of becoming a new, empty root.
fn existing_root(root: &Path) -> CliResult<ShardManager> {
    match std::fs::metadata(root) {
        Ok(m) if !m.is_dir() => {
            return Err(user(format!(
                "--root {} is not a directory",
                root.display()
            )))
        }
        Ok(_) if !root.join(ROOT_CATALOG).is_file() => {
            return Err(user(format!(
                "--root {} is not a shard root (it has no {ROOT_CATALOG}); `shards create` \
                 makes one",
                root.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(user(format!(
                "no shard root at {}; `shards create` makes one",
                root.display()
            )))
        }
        Err(e) => return Err(path_failure(root, e)),
    }
    Ok(ShardManager::open(root, ManagerOptions::default())?)
}

/// Opens the manager of `root` for `shards create`, creating the root if missing.
pub(crate) fn new_root(root: &Path) -> CliResult<ShardManager> {
    if root.exists() && !root.is_dir() {
        return Err(user(format!(
            "--root {} is not a directory",
            root.display()
        )));
    }
    Ok(ShardManager::open(root, ManagerOptions::default())?)
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

fn parse_vector(s: &str) -> CliResult<Vec<f32>> {
    serde_json::from_str::<Vec<f32>>(s)
        .map_err(|e| user(format!("--vector must be a JSON array of numbers: {e}")))
}

fn query_vector(args: &SearchArgs) -> CliResult<Option<Vec<f32>>> {
    match (&args.vector, &args.npy, args.row) {
        (Some(v), _, _) => Ok(Some(parse_vector(v)?)),
        (None, Some(p), Some(r)) => {
            existing_file(p)?;
            let m = sqlite_vector_dataset::read_f32(p)?;
            if r >= m.rows {
                return Err(user(format!(
                    "--row {r} is out of range: {} has {} rows",
                    p.display(),
                    m.rows
                )));
            }
            Ok(Some(m.row(r).to_vec()))
        }
        _ => Ok(None),
    }
}

/// The built-in embedder, to embed a text query for shards that record its model.
fn embed_query(text: &str, profiles: &[(String, Profile)]) -> CliResult<Vec<f32>> {
    use sqlite_vector_embed::{Embedder, StaticEmbedder, BUILTIN_MODEL_ID};
    for (name, p) in profiles {
        if p.embedding_model.as_deref() != Some(BUILTIN_MODEL_ID) {
            return Err(user(format!(
                "shard {name:?} holds vectors of {}, and this command embeds text only with the \
                 built-in model {BUILTIN_MODEL_ID}: give --vector, or --mode text for BM25",
                p.embedding_model
                    .as_deref()
                    .unwrap_or("no embedding model (raw vectors)")
            )));
        }
    }
    let embedder = StaticEmbedder::builtin()
        .map_err(|e| Failure::internal(format!("the built-in embedder failed to load: {e}")))?;
    embedder.embed(text).map_err(|e| {
        let msg = format!("cannot embed the query text: {e}");
        if e.is_user_error() {
            user(msg)
        } else {
            Failure::internal(msg)
        }
    })
}

fn search(args: SearchArgs) -> CliResult {
    let vector = query_vector(&args)?;
    let params = SearchParams {
        k: args.k,
        metric: args.metric,
        min_score: args.min_score,
        max_distance: args.max_distance,
        filter: args
            .filter
            .as_deref()
            .map(str::parse::<Filter>)
            .transpose()?,
        ef_search: args.ef_search,
        exact: args.exact,
        ..SearchParams::default()
    };
    let fusion = HybridParams {
        fusion: args.fusion,
        rrf_k: args.rrf_k,
        ..HybridParams::default()
    };
    let mode = if args.hybrid {
        Some(sqlite_vector::Mode::Hybrid)
    } else {
        args.mode
    };
    let t = std::time::Instant::now();
    enum Target {
        File(Box<Shard>),
        Root(Box<ShardManager>, Scope),
    }
    let (target, profiles) = match (&args.path, &args.root) {
        (Some(path), _) => {
            let shard = open_shard(path)?;
            let profiles = vec![(path.display().to_string(), shard.profile().clone())];
            (Target::File(Box::new(shard)), profiles)
        }
        (None, Some(root)) => {
            let manager = existing_root(root)?;
            let (scope, profiles) = match &args.prefix {
                Some(p) => {
                    let list = manager.list(Some(p))?;
                    let profiles = list.into_iter().map(|i| (i.name, i.profile)).collect();
                    (Scope::Prefix(p.clone()), profiles)
                }
                None => {
                    // An unknown name fails the search, as in the MCP server; a shard that
                    // exists but fails to search is reported with the results.
                    let mut profiles = Vec::new();
                    for name in &args.shards {
                        let shard = manager.open_shard(name)?;
                        profiles.push((name.clone(), shard.profile().clone()));
                    }
                    (Scope::Names(args.shards.clone()), profiles)
                }
            };
            (Target::Root(Box::new(manager), scope), profiles)
        }
        (None, None) => return Err(user("give a shard file or --root")),
    };
    let text_shards =
        !profiles.is_empty() && profiles.iter().all(|(_, p)| p.embedding_model.is_some());
    let mode =
        sqlite_vector::Mode::resolve(mode, args.text.is_some(), vector.is_some(), text_shards)
            .map_err(|e| match (&e, &args.text, &vector) {
                (_, None, None) => {
                    user("give the query with --vector JSON, --npy FILE --row N, or --text")
                }
                _ => e.into(),
            })?;
    let vector = match (mode, vector, &args.text) {
        (sqlite_vector::Mode::Text, _, _) => None,
        (_, Some(v), _) => Some(v),
        (_, None, Some(text)) => Some(embed_query(text, &profiles)?),
        (_, None, None) => None,
    };
    let mut query = Query::new(mode, vector, args.text.clone())
        .with_params(params)
        .with_fusion(fusion);
    let result = match target {
        Target::File(shard) => shard.query(&query)?,
        Target::Root(manager, scope) => {
            query.scope = Some(scope);
            manager.query(&query)?
        }
    };
    let us = t.elapsed().as_secs_f64() * 1e6;
    for f in &result.failures {
        eprintln!("warning: shard {:?} failed: {}", f.shard, f.error);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result.hits).expect("hits serialise")
        );
    } else {
        let label = if result.higher_is_better {
            "score"
        } else {
            "distance"
        };
        let hybrid = result.mode == sqlite_vector::Mode::Hybrid;
        if hybrid {
            // The fused score and its parts (BM25 "-": none of the words is in the item).
            println!(
                "{:>4}  {:>9}  {:>9}  {:>9}  id",
                "rank", "fused", "vector", "bm25"
            );
        } else {
            println!("{:>4}  {:>9}  id", "rank", label);
        }
        for (i, h) in result.hits.iter().enumerate() {
            let id = match &h.shard {
                Some(s) => format!("{s}:{}", h.hit.id),
                None => h.hit.id.clone(),
            };
            match (hybrid, h.hit.hybrid) {
                (true, Some(p)) => {
                    let bm25 = p.text_score.map_or("-".to_string(), |t| format!("{t:.4}"));
                    println!(
                        "{:>4}  {:>9.4}  {:>9.4}  {bm25:>9}  {id}",
                        i + 1,
                        h.hit.score,
                        p.vector_score
                    );
                }
                _ => println!("{:>4}  {:>9.4}  {id}", i + 1, h.hit.score),
            }
        }
        eprintln!(
            "{} hits in {us:.0} µs ({} mode)",
            result.hits.len(),
            result.mode
        );
    }
    Ok(())
}

fn shards(command: ShardsCommand) -> CliResult {
    match command {
        ShardsCommand::List { root, prefix, json } => {
            let manager = existing_root(&root)?;
            let list = manager.list(prefix.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).expect("json"));
            } else {
                println!(
                    "{:<40} {:>6} {:>7} {:>12}  model",
                    "name", "dim", "metric", "bytes"
                );
                for s in &list {
                    println!(
                        "{:<40} {:>6} {:>7} {:>12}  {}",
                        s.name,
                        s.profile.dimension,
                        s.profile.metric,
                        s.bytes_on_disk,
                        s.profile.embedding_model.as_deref().unwrap_or("-")
                    );
                }
                eprintln!("{} shard(s)", list.len());
            }
        }
        ShardsCommand::Create {
            name,
            root,
            profile,
        } => {
            let manager = new_root(&root)?;
            manager.create(&name, &profile.profile())?;
            println!(
                "created shard {name} (dim {}, {}) in {}",
                profile.dim,
                profile.metric,
                root.display()
            );
        }
        ShardsCommand::Drop { name, root } => {
            let manager = existing_root(&root)?;
            manager.drop_shard(&name)?;
            println!("dropped shard {name}");
        }
        ShardsCommand::Stats { name, root } => {
            let manager = existing_root(&root)?;
            let s = manager.stats(&name)?;
            println!("{}", serde_json::to_string_pretty(&s).expect("json"));
        }
    }
    Ok(())
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Index {
            shard,
            m,
            ef_construction,
            ef_search,
            drop,
        } => {
            let shard = shard.open()?;
            if drop {
                let had = shard.drop_index()?;
                println!(
                    "{}",
                    if had {
                        "dropped the hnsw index"
                    } else {
                        "the shard had no index"
                    }
                );
            } else {
                let params = sqlite_vector::HnswParams {
                    m,
                    ef_construction,
                    ef_search,
                    ..Default::default()
                };
                let t = std::time::Instant::now();
                shard.create_index(params)?;
                println!(
                    "built the hnsw index over {} items in {:.2} s (M = {m}, ef_construction = \
                     {ef_construction}, ef_search = {ef_search})",
                    shard.len(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        Command::Create { path, profile } => {
            new_file(&path)?;
            Shard::create(&path, &profile.profile())?;
            println!(
                "created {} (dim {}, {}, durability {})",
                path.display(),
                profile.dim,
                profile.metric,
                profile.durability
            );
        }
        Command::Import(args) => import::run(args)?,
        Command::Search(args) => search(args)?,
        Command::Shards { command } => shards(command)?,
        Command::Get { shard, id } => {
            let shard = shard.open()?;
            let item = shard.get(&id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&item).expect("item serialises")
            );
        }
        Command::Delete { named, args } => {
            // With --root, every positional is an id; without, the first is the shard file.
            let (shard, ids) = match args.split_first() {
                _ if named.root.is_some() => (named.open()?, &args[..]),
                Some((path, ids)) if !ids.is_empty() => (ShardHandle::file(Path::new(path))?, ids),
                _ => {
                    return Err(user(
                        "give the shard file and the ids (delete PATH ID...), or --root and \
                         --shard and the ids (see --help)",
                    ))
                }
            };
            // One transaction: all of the ids or none.
            shard
                .transaction(|tx| ids.iter().try_for_each(|id| tx.delete(id)))
                .map_err(|e| match Failure::from(e) {
                    f if ids.len() > 1 => f.context("nothing was deleted"),
                    f => f,
                })?;
            println!("deleted {} item(s)", ids.len());
        }
        Command::Stats { shard, check, json } => {
            let shard = shard.open()?;
            if check {
                shard.check_integrity()?;
            }
            let s = shard.stats()?;
            // The sync state: the digest of the live items, how far each peer shard's changes
            // are applied here and how far each peer holds this shard's.
            let sync = shard.sync_state()?;
            let mut v = serde_json::to_value(&s).expect("stats serialise");
            let o = v.as_object_mut().expect("object");
            o.insert("sync_digest".into(), format!("{:016x}", sync.digest).into());
            o.insert(
                "sync_cursors".into(),
                serde_json::to_value(&sync.cursors).expect("cursors serialise"),
            );
            // How far each peer holds this shard's changes, and the tombstone collection's
            // bound (a peer below it gets a snapshot).
            o.insert(
                "sync_peers".into(),
                serde_json::to_value(&sync.peers).expect("peers serialise"),
            );
            o.insert("sync_horizon".into(), sync.horizon.into());
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).expect("stats serialise")
                );
            } else {
                for (k, v) in v.as_object().expect("object") {
                    println!("{k:>18}: {v}");
                }
                if check {
                    println!("{:>18}: ok", "integrity");
                }
            }
        }
        Command::Backup { shard, dest } => {
            let shard = shard.open()?;
            new_file(&dest)?;
            shard.backup_to(&dest)?;
            println!("backed up {shard} to {}", dest.display());
        }
        Command::Bench(args) => bench::run(args)?,
        Command::Demo { keep } => demo::run(keep)?,
        Command::Mcp(args) => mcp::run(args)?,
        Command::Sync { command } => sync::run(command)?,
        Command::Memory { command } => memory::run(command)?,
        Command::Export {
            shard,
            include_deleted,
        } => {
            let shard = shard.open()?;
            export(&shard, include_deleted)?;
        }
    }
    Ok(())
}

/// Writes every item of `shard` (and tombstones with `include_deleted`) as JSON lines, sorted
/// by id.
fn export(shard: &Shard, include_deleted: bool) -> CliResult {
    use std::io::Write;
    let mut rows = shard.changes_since(0, usize::MAX)?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for c in rows {
        let line = if c.is_alive() {
            let metadata: serde_json::Value = match &c.metadata {
                Some(m) => serde_json::from_str(m)
                    .map_err(|e| Failure::internal(format!("item {:?}: metadata: {e}", c.id)))?,
                None => serde_json::json!({}),
            };
            serde_json::json!({
                "id": c.id,
                "vector": c.vector,
                "metadata": metadata,
                "text": c.text,
            })
        } else if include_deleted {
            serde_json::json!({"id": c.id, "deleted": true})
        } else {
            continue;
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// A clap error as one line: its first paragraph (the message and the values it lists),
/// without the usage and the tips that follow.
fn argument_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let msg = first.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    format!("{msg} (see --help)")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("error: {}", argument_error(&e));
            return ExitCode::from(2);
        }
    };
    let result = run(cli);
    // The shards this command closed are checkpointed into single files before it exits (a
    // close that cannot finish in time leaves the WAL beside the file, which is safe).
    sqlite_vector::wait_for_closes(std::time::Duration::from_secs(10));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // One line, whatever the cause put in its message.
            let msg: Vec<&str> = f.msg.lines().map(str::trim).collect();
            eprintln!("error: {}", msg.join(" "));
            if f.user {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
