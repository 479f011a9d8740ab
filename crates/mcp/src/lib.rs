//! The MCP server of `sqlite-vector`: AI agents create shards, store texts (or raw vectors)
//! and search them over the Model Context Protocol, on stdio, fully offline.
//!
//! ```no_run
//! use sqlite_vector_mcp::{serve_stdio, EmbedderChoice, ServerConfig};
//!
//! # async fn run() -> Result<(), sqlite_vector_mcp::Error> {
//! let config = ServerConfig::new("/tmp/agent-shards").with_embedder(EmbedderChoice::Builtin);
//! serve_stdio(config).await // returns when the client closes stdin
//! # }
//! ```
//!
//! The server is a thin shim over [`sqlite_vector::ShardManager`] (shards under one root
//! directory) and an [`Embedder`] (the built-in offline model `minilm-static-256`, or an
//! OpenAI-compatible HTTP endpoint). The tools are named like the Rust API: `shard_create`,
//! `shard_list`, `shard_stats`, `shard_drop`, `insert`, `insert_batch`, `search`, `get`,
//! `update`, `delete`, and `sync` (a one-shot sync with another node, crate
//! `sqlite-vector-sync`; see [`tools`]).
//!
//! **Errors.** Input errors (bad arguments, unknown shard or id, dimension or model mismatch,
//! hostile shard names, inputs over the [`ServerLimits`]) come back as tool results with
//! `isError: true` and a message a model can act on; internal failures (I/O, SQLite,
//! corruption, a shard file damaged or replaced behind the server's back, an unreachable
//! embedder, a panic) are JSON-RPC errors `-32603`. Malformed JSON-RPC gets the JSON-RPC 2.0
//! codes, with the request's id when it has one: `-32700` for a line that is not JSON, `-32600`
//! for JSON that is not a JSON-RPC 2.0 message (batches included) or a line over
//! [`ServerLimits::max_message_bytes`], `-32601` for an unknown method, `-32602` for params
//! that do not fit a known method (see [`transport`]).
//!
//! **Durability.** Every write runs in one SQLite transaction that commits before the response
//! is sent, so an acknowledged write survives a crash of the server. Several server processes
//! may share one root.
//!
//! **Protocol.** rmcp 3.9 negotiates 2024-11-05 through 2025-11-25 over the `initialize`
//! handshake, and serves the stateless 2026-07-28 revision (per-request `_meta`, no handshake).
//! No message ends a session: notifications and responses before it starts are ignored.
//!
//! **Order.** Tool calls pipelined on one connection that touch the same shard apply in
//! arrival order; reads run side by side (see [`transport`]).
//! Only protocol messages go to stdout; logs go to stderr.

use std::path::PathBuf;
use std::sync::Arc;

use sqlite_vector::{ManagerOptions, ShardManager};
use sqlite_vector_embed::{EmbedError, Embedder, HttpConfig, HttpEmbedder, StaticEmbedder};

mod order;
pub mod tools;
pub mod transport;

pub use tools::SqliteVectorServer;
pub use transport::serve_io;

/// The name the server reports in `serverInfo`.
pub const SERVER_NAME: &str = "sqlite-vector";

/// Errors that stop the server from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The root directory or its catalog could not be opened.
    #[error("cannot open the shard root {root}: {source}")]
    Root {
        /// The root directory.
        root: PathBuf,
        /// The underlying error.
        source: sqlite_vector::Error,
    },
    /// The embedder could not be set up (model load, HTTP configuration).
    #[error("cannot set up the embedder: {0}")]
    Embedder(#[from] EmbedError),
    /// The embedder is `http` but `SQLITE_VECTOR_EMBED_URL` / `SQLITE_VECTOR_EMBED_MODEL` are
    /// not set.
    #[error("the http embedder needs SQLITE_VECTOR_EMBED_URL and SQLITE_VECTOR_EMBED_MODEL")]
    HttpNotConfigured,
    /// A limit is zero, or above what the core or the embedder accepts.
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// The MCP transport failed (the handshake, or the serving task).
    #[error("mcp transport: {0}")]
    Transport(String),
}

/// Which embedder turns text into vectors.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum EmbedderChoice {
    /// The built-in offline model `minilm-static-256` (256-d), compiled into the binary.
    #[default]
    Builtin,
    /// An OpenAI-compatible `POST {base_url}/embeddings` endpoint.
    Http(HttpConfig),
    /// An embedder supplied by the caller (tests, other models).
    Custom(Arc<dyn Embedder>),
}

impl std::fmt::Debug for EmbedderChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbedderChoice::Builtin => f.write_str("Builtin"),
            EmbedderChoice::Http(c) => write!(f, "Http({} {})", c.base_url, c.model),
            EmbedderChoice::Custom(e) => write!(f, "Custom({})", e.model_id()),
        }
    }
}

/// Bounds on one tool call. Going over is a tool error (`isError: true`), never a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Most items in one `insert_batch` (default 4,096; at most the embedder's own
    /// `max_batch`).
    pub max_batch: usize,
    /// Largest text (item text or query), in UTF-8 bytes (default 1 MiB; at most the
    /// embedder's own `max_text_bytes`).
    pub max_text_bytes: usize,
    /// Largest vector dimension accepted in `shard_create`, `insert` or `search` (default
    /// 4,096; the core's own bound is 16,384).
    pub max_dim: usize,
    /// Largest `k` of a search (default 1,000).
    pub max_k: usize,
    /// Largest JSON-RPC message (one input line, without its newline) in bytes (default 16
    /// MiB). A longer line is answered with JSON-RPC error `-32600` and skipped without being
    /// held in memory; keep it above the largest `insert_batch` you expect.
    pub max_message_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_batch: 4096,
            max_text_bytes: 1 << 20,
            max_dim: 4096,
            max_k: 1000,
            max_message_bytes: 16 << 20,
        }
    }
}

/// Everything the server needs: where shards live, how text is embedded, and the limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The root directory of the shards (created if missing).
    pub root: PathBuf,
    /// The embedder for text.
    pub embedder: EmbedderChoice,
    /// Bounds on one tool call.
    pub limits: ServerLimits,
}

impl ServerConfig {
    /// A configuration with the built-in embedder and the default limits.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ServerConfig {
            root: root.into(),
            embedder: EmbedderChoice::Builtin,
            limits: ServerLimits::default(),
        }
    }

    /// Sets the embedder.
    pub fn with_embedder(mut self, embedder: EmbedderChoice) -> Self {
        self.embedder = embedder;
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// The HTTP embedder configured from `SQLITE_VECTOR_EMBED_URL`, `SQLITE_VECTOR_EMBED_MODEL` and
/// `SQLITE_VECTOR_EMBED_API_KEY`.
///
/// # Errors
/// [`Error::HttpNotConfigured`] when the variables are missing; [`Error::Embedder`] when they
/// are invalid.
pub fn http_from_env() -> Result<EmbedderChoice, Error> {
    match HttpConfig::from_env()? {
        Some(config) => Ok(EmbedderChoice::Http(config)),
        None => Err(Error::HttpNotConfigured),
    }
}

/// Builds the server (opens the root, loads the embedder) without serving it.
///
/// # Errors
/// [`Error::Root`], [`Error::Embedder`], [`Error::InvalidLimit`] (also when `max_text_bytes`
/// or `max_batch` is above the embedder's own [limits](Embedder::limits)).
pub fn build_server(config: ServerConfig) -> Result<SqliteVectorServer, Error> {
    let l = config.limits;
    if l.max_batch == 0 || l.max_text_bytes == 0 || l.max_k == 0 || l.max_message_bytes == 0 {
        return Err(Error::InvalidLimit(
            "max_batch, max_text_bytes, max_k and max_message_bytes must be at least 1".into(),
        ));
    }
    if l.max_dim == 0 || l.max_dim > sqlite_vector::MAX_DIMENSION {
        return Err(Error::InvalidLimit(format!(
            "max_dim must be 1..={}, got {}",
            sqlite_vector::MAX_DIMENSION,
            l.max_dim
        )));
    }
    let embedder: Arc<dyn Embedder> = match config.embedder {
        EmbedderChoice::Builtin => Arc::new(StaticEmbedder::builtin()?),
        EmbedderChoice::Http(http) => Arc::new(HttpEmbedder::new(http)?),
        EmbedderChoice::Custom(e) => e,
    };
    // A text or batch the embedder would refuse must be refused as over the server's limit,
    // not accepted by the server and then failed by the embedder.
    let own = embedder.limits();
    for (what, ours, theirs) in [
        ("max_text_bytes", l.max_text_bytes, own.max_text_bytes),
        ("max_batch", l.max_batch, own.max_batch),
    ] {
        if ours > theirs {
            return Err(Error::InvalidLimit(format!(
                "{what} {ours} is above the embedder {}'s own limit of {theirs}",
                embedder.model_id()
            )));
        }
    }
    std::fs::create_dir_all(&config.root).map_err(|e| Error::Root {
        root: config.root.clone(),
        source: sqlite_vector::Error::Io(e),
    })?;
    let manager =
        ShardManager::open(&config.root, ManagerOptions::default()).map_err(|source| {
            Error::Root {
                root: config.root.clone(),
                source,
            }
        })?;
    Ok(SqliteVectorServer::new(manager, embedder, l))
}

/// Serves MCP on stdin/stdout until the client closes stdin, then returns once the responses
/// in flight are written.
///
/// # Errors
/// Those of [`build_server`], and [`Error::Transport`] when the session fails.
pub async fn serve_stdio(config: ServerConfig) -> Result<(), Error> {
    let server = build_server(config)?;
    // Non-blocking pipes on Linux when the client gave us pipes, else tokio's stdin/stdout.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    serve_io(server, stdin, stdout).await
}
