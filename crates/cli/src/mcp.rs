//! `sqlite-vector mcp`: the MCP server on stdio (see the `sqlite-vector-mcp` crate).

use std::path::PathBuf;

use sqlite_vector_mcp::{EmbedderChoice, ServerConfig, ServerLimits};

use crate::{user, CliResult, Failure};

/// Flags of `sqlite-vector mcp`.
#[derive(clap::Args)]
pub(crate) struct McpArgs {
    /// Root directory of the shards (else $SQLITE_VECTOR_HOME, else the platform data
    /// directory: $XDG_DATA_HOME/sqlite-vector or ~/.local/share/sqlite-vector).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Embedder for text: `builtin` (offline minilm-static-256) or `http` (OpenAI-compatible;
    /// reads SQLITE_VECTOR_EMBED_URL, SQLITE_VECTOR_EMBED_MODEL, SQLITE_VECTOR_EMBED_API_KEY).
    #[arg(long, default_value = "builtin", value_parser = ["builtin", "http"])]
    embedder: String,
    /// Most items in one insert_batch call.
    #[arg(long, default_value_t = ServerLimits::default().max_batch)]
    max_batch: usize,
    /// Largest text (item or query) in bytes.
    #[arg(long, default_value_t = ServerLimits::default().max_text_bytes)]
    max_text_bytes: usize,
    /// Largest vector dimension.
    #[arg(long, default_value_t = ServerLimits::default().max_dim)]
    max_dim: usize,
    /// Largest JSON-RPC message (one stdin line) in bytes; a longer one is answered with
    /// error -32600 and skipped.
    #[arg(long, default_value_t = ServerLimits::default().max_message_bytes)]
    max_message_bytes: usize,
}

/// The root directory: the flag, else `SQLITE_VECTOR_HOME`, else the platform data directory.
fn default_root() -> CliResult<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(home) = non_empty("SQLITE_VECTOR_HOME") {
        return Ok(PathBuf::from(home));
    }
    if let Some(data) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("sqlite-vector"));
    }
    if cfg!(target_os = "macos") {
        if let Some(home) = non_empty("HOME") {
            return Ok(PathBuf::from(home).join("Library/Application Support/sqlite-vector"));
        }
    }
    if cfg!(windows) {
        if let Some(appdata) = non_empty("APPDATA") {
            return Ok(PathBuf::from(appdata).join("sqlite-vector"));
        }
    }
    match non_empty("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/sqlite-vector")),
        None => Err(user(
            "no root directory: pass --root DIR or set SQLITE_VECTOR_HOME",
        )),
    }
}

pub(crate) fn run(args: McpArgs) -> CliResult {
    let root = match args.root {
        Some(r) => r,
        None => default_root()?,
    };
    let embedder = match args.embedder.as_str() {
        "http" => sqlite_vector_mcp::http_from_env().map_err(|e| user(e.to_string()))?,
        _ => EmbedderChoice::Builtin,
    };
    let limits = ServerLimits {
        max_batch: args.max_batch,
        max_text_bytes: args.max_text_bytes,
        max_dim: args.max_dim,
        max_message_bytes: args.max_message_bytes,
        ..ServerLimits::default()
    };
    let config = ServerConfig::new(root)
        .with_embedder(embedder)
        .with_limits(limits);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime
        .block_on(sqlite_vector_mcp::serve_stdio(config))
        .map_err(|e| {
            let user_error = matches!(
                e,
                sqlite_vector_mcp::Error::HttpNotConfigured
                    | sqlite_vector_mcp::Error::InvalidLimit(_)
            );
            if user_error {
                user(e.to_string())
            } else {
                Failure::internal(e.to_string())
            }
        })
}
