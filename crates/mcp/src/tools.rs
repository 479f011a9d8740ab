//! The tools: their arguments, results, JSON Schemas, descriptions and handlers.
//!
//! Every tool result carries the same JSON twice: as `structuredContent` (validated by the
//! tool's `outputSchema`) and as one text content block, for clients that read only text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlite_vector::{
    ErrorKind, Filter, Fusion, HnswParams, HybridParams, Metric, Mode, NewItem, Profile, Query,
    Scope, SearchParams, Shard, ShardManager, Update,
};
use sqlite_vector_embed::{EmbedError, Embedder};

use crate::order::{Access, Target, Ticket};

mod memory;
use crate::ServerLimits;

/// A failed tool call: a user error becomes a tool result with `isError: true`, an internal
/// one a JSON-RPC error -32603.
#[derive(Debug)]
enum ToolError {
    User(String),
    Internal(String),
}

type ToolResult<T> = Result<T, ToolError>;

impl From<sqlite_vector::Error> for ToolError {
    fn from(e: sqlite_vector::Error) -> Self {
        // The server opens only files its manager made, so a file there that is not a shard
        // was damaged or replaced behind its back: nothing the caller did or can fix.
        let damaged = e.kind() == ErrorKind::NotAShard;
        if e.is_user_error() && !damaged {
            ToolError::User(e.to_string())
        } else {
            ToolError::Internal(e.to_string())
        }
    }
}

impl From<EmbedError> for ToolError {
    fn from(e: EmbedError) -> Self {
        if e.is_user_error() {
            ToolError::User(format!("cannot embed the text: {e}"))
        } else {
            ToolError::Internal(format!("the embedder failed: {e}"))
        }
    }
}

fn user(msg: impl Into<String>) -> ToolError {
    ToolError::User(msg.into())
}

// ------------------------------------------------------------------ arguments

/// Arguments of `shard_create`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardCreateArgs {
    /// Shard name: segments of `[A-Za-z0-9._-]` separated by `/`, e.g. `notes` or `team-a/coder`.
    pub name: String,
    /// Vector dimension. Omit it for a text shard: the server's embedder decides (and the shard
    /// records the embedder's model). Give it only to store your own raw vectors.
    pub dim: Option<usize>,
    /// `cosine` (default), `l2` or `dot`.
    pub metric: Option<String>,
    /// Metadata fields (dotted paths) indexed for keyword search with the text.
    pub searchable: Option<Vec<String>>,
    /// Keep an HNSW graph index (default false: exact search). With it, searches of shards above
    /// 4,096 items walk the graph: about 0.2 ms instead of 1 ms for the vector part at 25,000
    /// items, but approximate (with the built-in model, known-item MRR@10 of hybrid search on
    /// 25,000 package descriptions falls from 0.896 to 0.857), and every insert costs about
    /// 0.25 ms more. For big shards searched far more often than written.
    pub index: Option<bool>,
}

/// Arguments of `shard_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardListArgs {
    /// Only shards whose name starts with this prefix, e.g. `team-a/`.
    pub prefix: Option<String>,
}

/// Arguments of `shard_stats` and `shard_drop`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardNameArgs {
    /// The shard's name.
    pub name: String,
}

/// One item to insert.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemArgs {
    /// The item's id (1-512 bytes). Omit it to get a generated one. An existing id is an error.
    pub id: Option<String>,
    /// The text to store; it is embedded when no `vector` is given, and indexed for keyword search.
    pub text: Option<String>,
    /// A raw vector of the shard's dimension (instead of embedding `text`).
    pub vector: Option<Vec<f32>>,
    /// A JSON object of metadata, usable in search filters.
    pub metadata: Option<Value>,
}

/// Arguments of `insert`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertArgs {
    /// The shard's name.
    pub shard: String,
    /// The item's id (1-512 bytes). Omit it to get a generated one. An existing id is an error.
    pub id: Option<String>,
    /// The text to store; it is embedded when no `vector` is given, and indexed for keyword search.
    pub text: Option<String>,
    /// A raw vector of the shard's dimension (instead of embedding `text`).
    pub vector: Option<Vec<f32>>,
    /// A JSON object of metadata, usable in search filters.
    pub metadata: Option<Value>,
}

/// Arguments of `insert_batch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsertBatchArgs {
    /// The shard's name.
    pub shard: String,
    /// The items; all are inserted or none.
    pub items: Vec<ItemArgs>,
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// One shard to search.
    pub shard: Option<String>,
    /// Several shards to search; their hits are merged into one top k.
    pub shards: Option<Vec<String>>,
    /// Search every shard whose name starts with this prefix.
    pub prefix: Option<String>,
    /// The query text.
    pub text: Option<String>,
    /// A raw query vector (instead of, or with, `text`).
    pub vector: Option<Vec<f32>>,
    /// Number of hits (default 10).
    pub k: Option<usize>,
    /// Metadata filter, e.g. `{"lang": "rust", "stars": {"$gte": 3}}` with `$eq $ne $in $nin $gt
    /// $gte $lt $lte $exists $and $or $not`.
    pub filter: Option<Value>,
    /// Drop hits scoring below this (cosine and dot shards; the fused score in hybrid mode).
    pub min_score: Option<f32>,
    /// Drop hits farther than this L2 distance (l2 shards, `vector` mode; a finite number ≥ 0).
    pub max_distance: Option<f32>,
    /// `vector` (meaning), `text` (keywords, BM25) or `hybrid` (both fused). Default: `hybrid`
    /// with a text query on text shards (and with text and a vector), `text` with a text query
    /// on shards of raw vectors, `vector` with only a vector.
    pub mode: Option<String>,
    /// How `hybrid` fuses its two rankings: `dbsf` (default: z-scores of both scores over the
    /// candidates, summed) or `rrf` (reciprocal rank fusion, Σ 1/(60 + rank)).
    pub fusion: Option<String>,
}

/// Arguments of `get` and `delete`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRefArgs {
    /// The shard's name.
    pub shard: String,
    /// The item's id.
    pub id: String,
}

/// Arguments of `get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The shard's name.
    pub shard: String,
    /// The item's id.
    pub id: String,
    /// Also return the stored vector (default false; vectors are long).
    pub include_vector: Option<bool>,
}

/// Arguments of `update`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The shard's name.
    pub shard: String,
    /// The item's id.
    pub id: String,
    /// New text. On a text shard it is re-embedded unless a `vector` is given.
    pub text: Option<String>,
    /// New raw vector.
    pub vector: Option<Vec<f32>>,
    /// New metadata (replaces the old object).
    pub metadata: Option<Value>,
}

// ------------------------------------------------------------------ results

/// A shard's description.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ShardOut {
    /// The shard's name.
    pub name: String,
    /// Vector dimension.
    pub dim: usize,
    /// `cosine`, `l2` or `dot`.
    pub metric: String,
    /// The model whose vectors the shard holds (null for raw-vector shards).
    pub embedding_model: Option<String>,
    /// Whether text can be inserted and searched by meaning with this server's embedder.
    pub accepts_text: bool,
}

/// Result of `shard_create`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ShardCreateOut {
    /// The new shard.
    pub shard: ShardOut,
}

/// Result of `shard_list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ShardListOut {
    /// The shards, by name.
    pub shards: Vec<ShardOut>,
}

/// Result of `shard_stats`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ShardStatsOut {
    /// The shard.
    pub shard: ShardOut,
    /// Live items.
    pub count: usize,
    /// Deleted items kept as tombstones.
    pub tombstones: usize,
    /// File size in bytes.
    pub bytes_on_disk: u64,
    /// How searches run.
    pub search_method: String,
}

/// How a `sync` call moves changes.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Send this server's changes to the peer.
    Push,
    /// Take the peer's changes.
    Pull,
    /// Both ways.
    Both,
}

/// Arguments of `sync`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncArgs {
    /// One shard to sync (or use `prefix`; neither: every shard).
    pub shard: Option<String>,
    /// Every shard whose name starts with this prefix, e.g. `team-a/`.
    pub prefix: Option<String>,
    /// The peer's address, host:port (its `sqlite-vector sync serve --listen`).
    pub peer: String,
    /// The peer's node id (64 hex digits, from `sqlite-vector sync id` on the peer).
    pub peer_id: String,
    /// `push`, `pull` or `both` (default `both`).
    pub mode: Option<SyncMode>,
}

/// Result of `sync`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncOut {
    /// Shards synced.
    pub shards: usize,
    /// Changes sent to the peer.
    pub sent: u64,
    /// Changes received from it.
    pub received: u64,
    /// Received changes that won and were stored.
    pub applied: u64,
    /// Two-way shard sessions that ended with equal digests (the shards now hold the same
    /// items).
    pub converged: usize,
    /// Bytes sent and received on the connection.
    pub bytes_sent: u64,
    /// See `bytes_sent`.
    pub bytes_received: u64,
    /// Wall time, ms.
    pub ms: f64,
    /// Snapshots received: shards that were behind the peer's tombstone collection and took
    /// every item it holds instead of a delta.
    pub snapshots_received: usize,
    /// Tombstones collected here (every trusted peer of the shard holds them).
    pub collected: u64,
    /// Shards whose changes were not sent: this root must take a snapshot first (`pull` or
    /// `both`).
    pub held_back: usize,
    /// Shards that failed, with why.
    pub failures: std::collections::BTreeMap<String, String>,
}

/// Result of `shard_drop`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ShardDropOut {
    /// The dropped shard's name.
    pub dropped: String,
}

/// Result of `insert`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InsertOut {
    /// The shard.
    pub shard: String,
    /// The stored item's id.
    pub id: String,
}

/// Result of `insert_batch`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InsertBatchOut {
    /// The shard.
    pub shard: String,
    /// The stored ids, in input order.
    pub ids: Vec<String>,
    /// How many were stored.
    pub count: usize,
}

/// One search hit.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HitOut {
    /// The item's id.
    pub id: String,
    /// Similarity (cosine, dot: higher is closer), L2 distance (lower is closer), BM25 (text)
    /// or the fused score (hybrid: with `dbsf`, 0 is the candidates' average and each standard
    /// deviation above it in a ranking adds 1).
    pub score: f32,
    /// Hybrid only: the item's vector score (cosine or dot similarity, or L2 distance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f32>,
    /// Hybrid only: the item's BM25 score; null when none of the query's words is in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_score: Option<Option<f32>>,
    /// The item's metadata.
    pub metadata: Value,
    /// The item's text.
    pub text: Option<String>,
    /// The shard holding the item (searches across shards only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// A shard that failed in a search across shards.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FailureOut {
    /// The shard.
    pub shard: String,
    /// Why it failed.
    pub error: String,
}

/// Result of `search`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOut {
    /// The mode used: `vector`, `text` or `hybrid`.
    pub mode: String,
    /// The hits, best first.
    pub hits: Vec<HitOut>,
    /// Shards that could not be searched (across shards only).
    pub failures: Vec<FailureOut>,
}

/// Result of `get`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GetOut {
    /// The item's id.
    pub id: String,
    /// The item's metadata.
    pub metadata: Value,
    /// The item's text.
    pub text: Option<String>,
    /// The stored vector (only with `include_vector`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// Result of `update` and `delete`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DoneOut {
    /// The shard.
    pub shard: String,
    /// The item's id.
    pub id: String,
    /// `updated` or `deleted`.
    pub status: String,
}

// ------------------------------------------------------------------ tool table

struct ToolSpec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    input: fn() -> Value,
    output: fn() -> Value,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_else(|_| json!({"type": "object"}))
}

/// The rule for pipelined calls, ending every tool description (see `crate::order`).
macro_rules! in_order {
    () => {
        " Calls on the same shard apply in the order you send them (reads of it side by side), \
so you may send the next call without waiting for this reply; match replies by id."
    };
}

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "shard_create",
        title: "Create a shard",
        description: concat!(
            "Create a named shard (a small vector database file) to hold memories, notes or documents. \
Omit `dim` and `metric` to store text: the server's offline embedder sets the dimension and the shard records its model. \
Give `dim` only if you will insert your own raw vectors. Search is exact; `index: true` adds an HNSW graph for big shards (over 4,096 items) searched far more than written: faster, approximate, slower inserts. \
Do not use it when the shard already exists (that is an error; use shard_list). \
Example: {\"name\": \"notes\"} or {\"name\": \"team-a/coder\", \"searchable\": [\"title\"]}.",
            in_order!()
        ),
        input: schema::<ShardCreateArgs>,
        output: schema::<ShardCreateOut>,
        read_only: false,
        destructive: false,
        idempotent: false,
    },
    ToolSpec {
        name: "shard_list",
        title: "List shards",
        description: concat!(
            "List the shards that exist (name, dimension, metric, embedding model), optionally those under a name prefix. \
Use it to find where memories live before searching. Not for item counts (use shard_stats). \
Example: {} or {\"prefix\": \"team-a/\"}.",
            in_order!()
        ),
        input: schema::<ShardListArgs>,
        output: schema::<ShardListOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "shard_stats",
        title: "Shard statistics",
        description: concat!(
            "Show one shard's profile and size: live items, tombstones, bytes on disk, search method. \
Not for finding items (use search or get). Example: {\"name\": \"notes\"}.",
            in_order!()
        ),
        input: schema::<ShardNameArgs>,
        output: schema::<ShardStatsOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "shard_drop",
        title: "Drop a shard",
        description: concat!(
            "Delete a whole shard and every item in it, permanently. \
Do not use it to remove single items (use delete) or to empty a shard you still need. Example: {\"name\": \"scratch\"}.",
            in_order!()
        ),
        input: schema::<ShardNameArgs>,
        output: schema::<ShardDropOut>,
        read_only: false,
        destructive: true,
        idempotent: false,
    },
    ToolSpec {
        name: "sync",
        title: "Sync shards with a peer",
        description: concat!(
            "Exchange changes of shards with another sqlite-vector node over QUIC (mutual TLS on pinned node keys), once: `pull` takes the peer's changes (creating shards missing here), `push` sends this server's, `both` does both and reports `converged`. The peer must run `sqlite-vector sync serve` and trust this root's node id, and this root must trust the peer's (`sqlite-vector sync trust`). Only changes since the last sync with that peer travel. Not for copying a shard within this server. Example: {\"peer\": \"10.0.0.5:7878\", \"peer_id\": \"<64 hex digits>\", \"prefix\": \"team-a/\", \"mode\": \"both\"}.",
            in_order!()
        ),
        input: schema::<SyncArgs>,
        output: schema::<SyncOut>,
        read_only: false,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "insert",
        title: "Insert one item",
        description: concat!(
            "Store one item (a memory, note or document) in a shard: its text is embedded offline and indexed for keyword search; metadata can be filtered on later. \
The write is durable when the call returns. An existing id is an error (use update to change an item). For many items use insert_batch. \
Example: {\"shard\": \"notes\", \"text\": \"The deploy key lives in vault path ops/deploy\", \"metadata\": {\"topic\": \"ops\"}}. Returns the item's id.",
            in_order!()
        ),
        input: schema::<InsertArgs>,
        output: schema::<InsertOut>,
        read_only: false,
        destructive: false,
        idempotent: false,
    },
    ToolSpec {
        name: "insert_batch",
        title: "Insert many items",
        description: concat!(
            "Store many items in one shard in one transaction (all or none); each item has `text` and/or `vector`, optional `id` and `metadata`. \
Prefer it to repeated insert calls. Not for changing existing items (use update). \
Example: {\"shard\": \"notes\", \"items\": [{\"text\": \"first fact\"}, {\"id\": \"f2\", \"text\": \"second fact\", \"metadata\": {\"src\": \"chat\"}}]}.",
            in_order!()
        ),
        input: schema::<InsertBatchArgs>,
        output: schema::<InsertBatchOut>,
        read_only: false,
        destructive: false,
        idempotent: false,
    },
    ToolSpec {
        name: "search",
        title: "Search",
        description: concat!(
            "Find the items most relevant to a query in one shard (`shard`), several (`shards`) or all under a name prefix (`prefix`). \
`mode`: `vector` (by meaning), `text` (by keywords, BM25) or `hybrid` (both fused; the default for a text query on text shards; on shards of raw vectors a text query searches by keywords). \
Hybrid hits carry `vector_score` (similarity), `text_score` (BM25, null when no query word is in the item) and `score`, their fusion: with the default `fusion` `dbsf` it sums how many standard deviations each part is above the candidates' average, so 0 is average and 2 is strong; `fusion` `rrf` ranks by reciprocal rank instead. \
Optional `filter` on metadata, e.g. {\"topic\": \"ops\"} or {\"stars\": {\"$gte\": 3}}; `min_score` drops hits scoring below it (cosine and dot shards; on the fused scale in hybrid mode, e.g. 1.0); on l2 shards `max_distance` drops hits farther than it (vector mode). Hits come best first with id, score, metadata and text. \
Not for fetching a known id (use get). Example: {\"shard\": \"notes\", \"text\": \"where is the deploy key?\", \"k\": 5}.",
            in_order!()
        ),
        input: schema::<SearchArgs>,
        output: schema::<SearchOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "get",
        title: "Get an item",
        description: concat!(
            "Fetch one item by id: its metadata and text (and vector with include_vector). \
Not for finding items by content (use search). Example: {\"shard\": \"notes\", \"id\": \"note-1\"}.",
            in_order!()
        ),
        input: schema::<GetArgs>,
        output: schema::<GetOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "update",
        title: "Update an item",
        description: concat!(
            "Change an existing item's text, vector and/or metadata (metadata is replaced whole). New text on a text shard is re-embedded. \
The id must exist (use insert for new items). Example: {\"shard\": \"notes\", \"id\": \"note-1\", \"text\": \"The deploy key moved to ops/deploy-v2\"}.",
            in_order!()
        ),
        input: schema::<UpdateArgs>,
        output: schema::<DoneOut>,
        read_only: false,
        destructive: true,
        idempotent: true,
    },
    ToolSpec {
        name: "delete",
        title: "Delete an item",
        description: concat!(
            "Delete one item by id, permanently. Not for whole shards (use shard_drop). \
Example: {\"shard\": \"notes\", \"id\": \"note-1\"}.",
            in_order!()
        ),
        input: schema::<ItemRefArgs>,
        output: schema::<DoneOut>,
        read_only: false,
        destructive: true,
        idempotent: false,
    },
    ToolSpec {
        name: "memory_store",
        title: "Store lessons from a task",
        description: concat!(
            "After finishing a task, store 1 to 3 lessons you distilled from it (title, when to use it, 1-3 sentences), from a success or a failure: failures become pitfalls to avoid. \
A lesson that repeats one already stored (same outcome, nearly the same words) is linked to it instead of stored twice. The shard is created on first use. \
Do not use it for plain notes (use insert). \
Example: {\"shard\": \"memory/coder\", \"task\": \"Fix the failing date parser test\", \"task_id\": \"t-42\", \"outcome\": \"success\", \"items\": [{\"title\": \"Check the timezone first\", \"description\": \"When a date test fails only in CI\", \"content\": \"CI runs in UTC; pin the timezone in the test.\"}]}.",
            in_order!()
        ),
        input: schema::<memory::MemoryStoreArgs>,
        output: schema::<memory::MemoryStoreOut>,
        read_only: false,
        destructive: false,
        idempotent: false,
    },
    ToolSpec {
        name: "memory_find",
        title: "Find lessons for a task",
        description: concat!(
            "Before starting a task, get the lessons of the most similar past tasks: each with its advice (\"Do: ...\" or \"Avoid: ...\"), its evidence (uses, wins, losses, prior) and why it matched (relevance, vector_score, text_score). \
Pass your task_id so the task's own lessons are never returned. After the task, report which lessons you used with memory_feedback. \
Example: {\"shard\": \"memory/coder\", \"task\": \"Fix the flaky time zone test\", \"task_id\": \"t-57\", \"k\": 5}.",
            in_order!()
        ),
        input: schema::<memory::MemoryFindArgs>,
        output: schema::<memory::MemoryFindOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "memory_feedback",
        title: "Report how lessons worked",
        description: concat!(
            "After a task, say which lessons (ids from memory_find) you used and whether the task succeeded: their counts move and later rankings follow (prior = (wins + 1) / (wins + losses + 2)). \
Call it once per task. \
Example: {\"shard\": \"memory/coder\", \"task_id\": \"t-57\", \"item_ids\": [\"9f2c...\"], \"success\": true}.",
            in_order!()
        ),
        input: schema::<memory::MemoryFeedbackArgs>,
        output: schema::<memory::MemoryFeedbackOut>,
        read_only: false,
        destructive: false,
        idempotent: false,
    },
    ToolSpec {
        name: "memory_consolidate",
        title: "Merge duplicate lessons",
        description: concat!(
            "Merge clusters of near-duplicate lessons into one (the others are kept, marked superseded, and stop being returned). \
Try dry_run first; `undo` with a canonical id gives a merge back. \
Example: {\"shard\": \"memory/coder\", \"dry_run\": true}.",
            in_order!()
        ),
        input: schema::<memory::MemoryConsolidateArgs>,
        output: schema::<memory::MemoryConsolidateOut>,
        read_only: false,
        destructive: false,
        idempotent: false,
    },
    ToolSpec {
        name: "memory_context",
        title: "Write a context block from memory",
        description: concat!(
            "One ready-to-paste block of the lessons most relevant to a task, drawn from several memory shards (yours and your team's), deduplicated, best first, within a character budget; each line names its shard, id and whether it is a strategy or a pitfall. \
Example: {\"shards\": [\"memory/coder\", \"memory/team\"], \"task\": \"Migrate the billing table\", \"budget_chars\": 2000}.",
            in_order!()
        ),
        input: schema::<memory::MemoryContextArgs>,
        output: schema::<memory::MemoryContextOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "session_save",
        title: "Save a working set",
        description: concat!(
            "Save the lessons you are working with (ids) and a note under a session id, to pick up later with session_restore. Saving again under the same id replaces it. \
Example: {\"shard\": \"memory/coder\", \"session_id\": \"refactor-1\", \"item_ids\": [\"9f2c...\"], \"note\": \"halfway through the parser\"}.",
            in_order!()
        ),
        input: schema::<memory::SessionSaveArgs>,
        output: schema::<memory::SessionOut>,
        read_only: false,
        destructive: false,
        idempotent: true,
    },
    ToolSpec {
        name: "session_restore",
        title: "Restore a working set",
        description: concat!(
            "Get back a saved session: its note and the lessons still present (and the ids no longer there). \
Example: {\"shard\": \"memory/coder\", \"session_id\": \"refactor-1\"}.",
            in_order!()
        ),
        input: schema::<memory::SessionRestoreArgs>,
        output: schema::<memory::SessionRestoreOut>,
        read_only: true,
        destructive: false,
        idempotent: true,
    },
];

fn tool_definition(spec: &ToolSpec) -> Tool {
    let value = json!({
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "inputSchema": (spec.input)(),
        "outputSchema": (spec.output)(),
        "annotations": {
            "title": spec.title,
            "readOnlyHint": spec.read_only,
            "destructiveHint": spec.destructive,
            "idempotentHint": spec.idempotent,
            "openWorldHint": false,
        },
    });
    serde_json::from_value(value).expect("tool definitions are valid")
}

// ------------------------------------------------------------------ the server

/// The MCP server: a [`ShardManager`] and an [`Embedder`] behind the tools.
#[derive(Clone)]
pub struct SqliteVectorServer {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Arc<ShardManager>,
    embedder: Arc<dyn Embedder>,
    limits: ServerLimits,
    tools: Vec<Tool>,
    by_name: HashMap<&'static str, usize>,
}

impl SqliteVectorServer {
    /// A server over `manager`, embedding text with `embedder`, bounded by `limits`.
    pub fn new(manager: ShardManager, embedder: Arc<dyn Embedder>, limits: ServerLimits) -> Self {
        // Without the `sync` feature the sync tool is absent (not listed, unknown if called).
        let specs: Vec<&ToolSpec> = TOOLS
            .iter()
            .filter(|t| cfg!(feature = "sync") || t.name != "sync")
            .collect();
        let tools = specs.iter().map(|t| tool_definition(t)).collect();
        let by_name = specs.iter().enumerate().map(|(i, t)| (t.name, i)).collect();
        SqliteVectorServer {
            inner: Arc::new(Inner {
                manager: Arc::new(manager),
                embedder,
                limits,
                tools,
                by_name,
            }),
        }
    }

    /// The tool definitions (name, schemas, annotations, description).
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }

    /// The limits the server enforces.
    pub fn limits(&self) -> ServerLimits {
        self.inner.limits
    }

    /// Runs one tool synchronously and returns its structured result, or the tool error
    /// (`Err(Ok(message))` for a user error, `Err(Err(message))` for an internal one).
    pub fn call(&self, name: &str, args: Value) -> Result<Value, Result<String, String>> {
        match self.inner.dispatch(name, args) {
            Ok(v) => Ok(v),
            Err(ToolError::User(m)) => Err(Ok(m)),
            Err(ToolError::Internal(m)) => Err(Err(m)),
        }
    }
}

/// What a call of tool `name` with `args` touches, read leniently from the raw arguments (a
/// call whose arguments are wrong touches what it names, and fails when it runs).
pub(crate) fn access(name: &str, args: Option<&JsonObject>) -> Access {
    let string = |key: &str| args.and_then(|a| a.get(key)).and_then(Value::as_str);
    let shard = |key: &str| string(key).map(|s| Target::Shard(s.to_owned()));
    let (write, targets) = match name {
        "shard_create" | "shard_drop" => (true, shard("name").into_iter().collect()),
        "insert" | "insert_batch" | "update" | "delete" => {
            (true, shard("shard").into_iter().collect())
        }
        "shard_stats" => (false, shard("name").into_iter().collect()),
        "sync" => {
            let mut targets: Vec<Target> = shard("shard").into_iter().collect();
            if targets.is_empty() {
                targets.push(Target::Prefix(
                    string("prefix").unwrap_or_default().to_owned(),
                ));
            }
            (true, targets)
        }
        "get" => (false, shard("shard").into_iter().collect()),
        "memory_store" | "memory_feedback" | "memory_consolidate" | "session_save" => {
            (true, shard("shard").into_iter().collect())
        }
        "session_restore" => (false, shard("shard").into_iter().collect()),
        "shard_list" => (
            false,
            vec![Target::Prefix(
                string("prefix").unwrap_or_default().to_owned(),
            )],
        ),
        "search" | "memory_find" | "memory_context" => {
            let mut targets: Vec<Target> = shard("shard").into_iter().collect();
            if let Some(Value::Array(names)) = args.and_then(|a| a.get("shards")) {
                let names = names.iter().filter_map(Value::as_str);
                targets.extend(names.map(|n| Target::Shard(n.to_owned())));
            }
            targets.extend(string("prefix").map(|p| Target::Prefix(p.to_owned())));
            (false, targets)
        }
        _ => (false, Vec::new()),
    };
    debug_assert_eq!(
        write,
        TOOLS.iter().any(|t| t.name == name && !t.read_only),
        "{name}"
    );
    Access { write, targets }
}

fn parse<T: serde::de::DeserializeOwned>(tool: &str, args: Value) -> ToolResult<T> {
    serde_json::from_value(args).map_err(|e| {
        user(format!(
            "invalid arguments for {tool}: {e}; see the tool's input schema"
        ))
    })
}

fn out<T: Serialize>(v: T) -> ToolResult<Value> {
    serde_json::to_value(v).map_err(|e| ToolError::Internal(e.to_string()))
}

impl Inner {
    fn dispatch(&self, name: &str, args: Value) -> ToolResult<Value> {
        match name {
            "shard_create" => self.shard_create(parse(name, args)?),
            "shard_list" => self.shard_list(parse(name, args)?),
            "shard_stats" => self.shard_stats(parse(name, args)?),
            "shard_drop" => self.shard_drop(parse(name, args)?),
            #[cfg(feature = "sync")]
            "sync" => self.sync(parse(name, args)?),
            "insert" => {
                let a: InsertArgs = parse(name, args)?;
                let item = ItemArgs {
                    id: a.id,
                    text: a.text,
                    vector: a.vector,
                    metadata: a.metadata,
                };
                let shard = self.open(&a.shard)?;
                let mut items = self.prepare(&a.shard, &shard, vec![item])?;
                let id = shard.insert(items.remove(0))?;
                out(InsertOut { shard: a.shard, id })
            }
            "insert_batch" => {
                let a: InsertBatchArgs = parse(name, args)?;
                if a.items.len() > self.limits.max_batch {
                    return Err(user(format!(
                        "batch too large: {} items, the limit is {}; split it into several insert_batch calls",
                        a.items.len(),
                        self.limits.max_batch
                    )));
                }
                let shard = self.open(&a.shard)?;
                let items = self.prepare(&a.shard, &shard, a.items)?;
                let ids = shard.insert_batch(items)?;
                out(InsertBatchOut {
                    shard: a.shard,
                    count: ids.len(),
                    ids,
                })
            }
            "search" => self.search(parse(name, args)?),
            "get" => {
                let a: GetArgs = parse(name, args)?;
                let item = self.open(&a.shard)?.get(&a.id)?;
                out(GetOut {
                    id: item.id,
                    metadata: item.metadata,
                    text: item.text,
                    vector: a.include_vector.unwrap_or(false).then_some(item.vector),
                })
            }
            "update" => self.update(parse(name, args)?),
            "memory_store" => self.memory_store(parse(name, args)?),
            "memory_find" => self.memory_find(parse(name, args)?),
            "memory_feedback" => self.memory_feedback(parse(name, args)?),
            "memory_consolidate" => self.memory_consolidate(parse(name, args)?),
            "memory_context" => self.memory_context(parse(name, args)?),
            "session_save" => self.session_save(parse(name, args)?),
            "session_restore" => self.session_restore(parse(name, args)?),
            "delete" => {
                let a: ItemRefArgs = parse(name, args)?;
                self.open(&a.shard)?.delete(&a.id)?;
                out(DoneOut {
                    shard: a.shard,
                    id: a.id,
                    status: "deleted".into(),
                })
            }
            _ => Err(user(format!("unknown tool {name}"))),
        }
    }

    fn open(&self, name: &str) -> ToolResult<Arc<Shard>> {
        sqlite_vector::manager::validate_name(name)?;
        if !self.manager.exists(name)? {
            return Err(user(format!(
                "unknown shard {name:?}; create it with shard_create or see shard_list"
            )));
        }
        Ok(self.manager.open_shard(name)?)
    }

    fn describe(&self, name: String, profile: &Profile) -> ShardOut {
        ShardOut {
            accepts_text: profile.embedding_model.as_deref() == Some(self.embedder.model_id())
                && profile.dimension == self.embedder.dimension(),
            name,
            dim: profile.dimension,
            metric: profile.metric.as_str().to_owned(),
            embedding_model: profile.embedding_model.clone(),
        }
    }

    /// Refuses text embedding for a shard filled with another model (or raw vectors).
    fn check_model(&self, name: &str, profile: &Profile) -> ToolResult<()> {
        let ours = self.embedder.model_id();
        match profile.embedding_model.as_deref() {
            Some(m) if m == ours => {
                if profile.dimension != self.embedder.dimension() {
                    return Err(user(format!(
                        "dimension mismatch: shard {name:?} has {}, the embedder {ours} makes {}",
                        profile.dimension,
                        self.embedder.dimension()
                    )));
                }
                Ok(())
            }
            Some(m) => Err(user(format!(
                "embedding model mismatch: shard {name:?} was filled with {m}, this server embeds with {ours}; \
pass raw `vector`s of model {m}, use mode \"text\" for keyword search, or use another shard"
            ))),
            None => Err(user(format!(
                "shard {name:?} holds raw vectors (no embedding model), so text cannot be embedded for it \
(this server embeds with {ours}); pass a `vector`, use mode \"text\" for keyword search, \
or create a text shard with shard_create without `dim`"
            ))),
        }
    }

    fn check_text(&self, what: &str, text: &str) -> ToolResult<()> {
        if text.len() > self.limits.max_text_bytes {
            return Err(user(format!(
                "{what} is too long: {} bytes, the limit is {}; shorten or split it",
                text.len(),
                self.limits.max_text_bytes
            )));
        }
        Ok(())
    }

    fn check_vector(&self, what: &str, v: &[f32]) -> ToolResult<()> {
        if v.len() > self.limits.max_dim {
            return Err(user(format!(
                "{what} is too long: {} components, the limit is {}",
                v.len(),
                self.limits.max_dim
            )));
        }
        Ok(())
    }

    /// Turns item arguments into [`NewItem`]s, embedding the texts that come without vectors
    /// (in one batch).
    fn prepare(&self, name: &str, shard: &Shard, items: Vec<ItemArgs>) -> ToolResult<Vec<NewItem>> {
        let mut to_embed = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = if items.len() > 1 {
                format!("item {i}: ")
            } else {
                String::new()
            };
            if let Some(t) = &item.text {
                self.check_text(&format!("{at}text"), t)?;
            }
            if let Some(v) = &item.vector {
                self.check_vector(&format!("{at}vector"), v)?;
            } else {
                match &item.text {
                    Some(t) => to_embed.push((i, t.as_str())),
                    None => {
                        return Err(user(format!(
                            "{at}give `text` (embedded by the server) or `vector`"
                        )))
                    }
                }
            }
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; items.len()];
        if !to_embed.is_empty() {
            self.check_model(name, shard.profile())?;
            let texts: Vec<&str> = to_embed.iter().map(|(_, t)| *t).collect();
            let embedded = self.embed(&texts).map_err(|e| match e {
                ToolError::User(m) if items.len() > 1 => {
                    ToolError::User(format!("{m} (index among the items that need embedding)"))
                }
                other => other,
            })?;
            for ((i, _), v) in to_embed.iter().zip(embedded) {
                vectors[*i] = Some(v);
            }
        }
        Ok(items
            .into_iter()
            .zip(vectors)
            .map(|(item, embedded)| NewItem {
                id: item.id,
                vector: item.vector.or(embedded).unwrap_or_default(),
                metadata: item.metadata,
                text: item.text,
            })
            .collect())
    }

    fn embed(&self, texts: &[&str]) -> ToolResult<Vec<Vec<f32>>> {
        let vectors = self.embedder.embed_batch(texts)?;
        if vectors.len() != texts.len() {
            return Err(ToolError::Internal(format!(
                "the embedder returned {} vectors for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        Ok(vectors)
    }

    fn shard_create(&self, a: ShardCreateArgs) -> ToolResult<Value> {
        sqlite_vector::manager::validate_name(&a.name)?;
        let metric: Metric = match &a.metric {
            Some(m) => m.parse()?,
            None => Metric::Cosine,
        };
        let mut profile = match a.dim {
            Some(dim) => {
                if dim > self.limits.max_dim {
                    return Err(user(format!(
                        "dim {dim} is over the limit {}",
                        self.limits.max_dim
                    )));
                }
                Profile::new(dim, metric)
            }
            None => {
                let dim = self.embedder.dimension();
                if dim == 0 {
                    return Err(ToolError::Internal(format!(
                        "the embedder {} does not know its dimension; configure it",
                        self.embedder.model_id()
                    )));
                }
                Profile::new(dim, metric).with_embedding_model(self.embedder.model_id())
            }
        };
        if let Some(fields) = a.searchable {
            profile = profile.with_searchable_fields(fields);
        }
        if self.manager.exists(&a.name)? {
            return Err(user(format!(
                "shard {:?} already exists; use it, or shard_drop it first",
                a.name
            )));
        }
        let shard = self.manager.create(&a.name, &profile)?;
        if a.index.unwrap_or(false) {
            if let Err(e) = shard.create_index(HnswParams::default()) {
                // No half-made shard: the caller may retry the whole call.
                drop(shard);
                let _ = self.manager.drop_shard(&a.name);
                return Err(e.into());
            }
        }
        out(ShardCreateOut {
            shard: self.describe(a.name, shard.profile()),
        })
    }

    fn shard_list(&self, a: ShardListArgs) -> ToolResult<Value> {
        let shards = self
            .manager
            .list(a.prefix.as_deref())?
            .into_iter()
            .map(|info| self.describe(info.name, &info.profile))
            .collect();
        out(ShardListOut { shards })
    }

    fn shard_stats(&self, a: ShardNameArgs) -> ToolResult<Value> {
        let shard = self.open(&a.name)?;
        let stats = shard.stats()?;
        out(ShardStatsOut {
            shard: self.describe(a.name, shard.profile()),
            count: stats.count,
            tombstones: stats.tombstones,
            bytes_on_disk: stats.bytes_on_disk,
            search_method: stats.search_method,
        })
    }

    #[cfg(feature = "sync")]
    fn sync(&self, a: SyncArgs) -> ToolResult<Value> {
        use sqlite_vector_sync::{Direction, Selection, SyncError};
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&a.peer)
            .ok()
            .and_then(|mut it| it.next())
            .ok_or_else(|| user(format!("peer {:?} is not a host:port address", a.peer)))?;
        let selection = match (a.shard, a.prefix) {
            (Some(_), Some(_)) => return Err(user("give `shard` or `prefix`, not both")),
            (Some(s), None) => {
                sqlite_vector::manager::validate_name(&s)?;
                Selection::Names(vec![s])
            }
            (None, p) => Selection::Prefix(p.unwrap_or_default()),
        };
        let direction = match a.mode.unwrap_or(SyncMode::Both) {
            SyncMode::Push => Direction::Push,
            SyncMode::Pull => Direction::Pull,
            SyncMode::Both => Direction::Both,
        };
        let failed = |e: SyncError| match e {
            SyncError::InvalidArgument(m) => user(m),
            SyncError::Shard(e) if e.is_user_error() => user(e.to_string()),
            e => ToolError::Internal(e.to_string()),
        };
        let identity =
            sqlite_vector_sync::Identity::load_or_create(self.manager.root()).map_err(failed)?;
        // A runtime of its own: this call runs on a blocking thread, and the transport's
        // shard work needs a multi-threaded runtime under it.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ToolError::Internal(format!("tokio runtime: {e}")))?;
        let r = rt
            .block_on(sqlite_vector_sync::sync_once(
                self.manager.clone(),
                &identity,
                addr,
                &a.peer_id,
                direction,
                &selection,
                sqlite_vector_sync::Config::default(),
            ))
            .map_err(failed)?;
        out(SyncOut {
            shards: r.shards,
            sent: r.sent,
            received: r.received,
            applied: r.applied,
            converged: r.converged,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            ms: r.ms,
            snapshots_received: r.snapshots.0,
            collected: r.collected,
            held_back: r.held_back,
            failures: r.failures,
        })
    }

    fn shard_drop(&self, a: ShardNameArgs) -> ToolResult<Value> {
        sqlite_vector::manager::validate_name(&a.name)?;
        if !self.manager.exists(&a.name)? {
            return Err(user(format!("unknown shard {:?}; see shard_list", a.name)));
        }
        self.manager.drop_shard(&a.name)?;
        out(ShardDropOut { dropped: a.name })
    }

    fn update(&self, a: UpdateArgs) -> ToolResult<Value> {
        let shard = self.open(&a.shard)?;
        if let Some(t) = &a.text {
            self.check_text("text", t)?;
        }
        if let Some(v) = &a.vector {
            self.check_vector("vector", v)?;
        }
        if a.text.is_none() && a.vector.is_none() && a.metadata.is_none() {
            return Err(user(
                "nothing to update: give `text`, `vector` and/or `metadata`",
            ));
        }
        let mut vector = a.vector;
        if let (None, Some(t)) = (&vector, &a.text) {
            // A text shard keeps text and vector in step; a raw-vector shard only re-indexes text.
            if shard.profile().embedding_model.is_some() {
                self.check_model(&a.shard, shard.profile())?;
                vector = Some(self.embed(&[t])?.remove(0));
            }
        }
        shard.update(
            &a.id,
            Update {
                vector,
                metadata: a.metadata,
                text: a.text,
            },
        )?;
        out(DoneOut {
            shard: a.shard,
            id: a.id,
            status: "updated".into(),
        })
    }

    fn search(&self, a: SearchArgs) -> ToolResult<Value> {
        let k = a.k.unwrap_or(10);
        if k == 0 || k > self.limits.max_k {
            return Err(user(format!(
                "k must be 1..={}, got {k}",
                self.limits.max_k
            )));
        }
        if let Some(t) = &a.text {
            self.check_text("query text", t)?;
        }
        if let Some(v) = &a.vector {
            self.check_vector("query vector", v)?;
        }
        let mode = a.mode.as_deref().map(str::parse::<Mode>).transpose()?;
        let fusion = a
            .fusion
            .as_deref()
            .map(str::parse::<Fusion>)
            .transpose()?
            .unwrap_or_default();
        let mut params = SearchParams::k(k);
        params.min_score = a.min_score;
        if let Some(d) = a.max_distance {
            if !d.is_finite() || d < 0.0 {
                return Err(user(format!(
                    "max_distance must be a finite number ≥ 0, got {d}"
                )));
            }
            params.max_distance = Some(d);
        }
        if let Some(f) = &a.filter {
            let filter: Filter = f.to_string().parse()?;
            params.filter = Some(filter);
        }
        let scope = match (a.shard, a.shards, a.prefix) {
            (Some(s), None, None) => Scope::Shard(s),
            (None, Some(list), None) if !list.is_empty() => Scope::Names(list),
            (None, None, Some(p)) => Scope::Prefix(p),
            _ => {
                return Err(user(
                    "give exactly one of `shard`, `shards` (a non-empty list) or `prefix`",
                ))
            }
        };
        // Profiles of the shards searched: text shards decide the default mode, and their
        // model must be this server's to embed the query.
        let profiles: Vec<(String, Profile)> = match &scope {
            Scope::Shard(name) => vec![(name.clone(), self.open(name)?.profile().clone())],
            Scope::Names(list) => list
                .iter()
                .map(|n| Ok((n.clone(), self.open(n)?.profile().clone())))
                .collect::<ToolResult<_>>()?,
            Scope::Prefix(p) => self
                .manager
                .list(Some(p))?
                .into_iter()
                .map(|i| (i.name, i.profile))
                .collect(),
        };
        let text_shards =
            !profiles.is_empty() && profiles.iter().all(|(_, p)| p.embedding_model.is_some());
        let mode = Mode::resolve(mode, a.text.is_some(), a.vector.is_some(), text_shards)?;
        if a.fusion.is_some() && mode != Mode::Hybrid {
            return Err(user(format!(
                "`fusion` applies to hybrid search; this search is in mode {mode}"
            )));
        }
        let vector = match (mode, a.vector, &a.text) {
            (Mode::Text, _, _) => None,
            (_, Some(v), _) => Some(v),
            (_, None, Some(text)) => {
                for (name, profile) in &profiles {
                    self.check_model(name, profile)?;
                }
                if profiles.is_empty() {
                    return out(SearchOut {
                        mode: mode.to_string(),
                        hits: Vec::new(),
                        failures: Vec::new(),
                    });
                }
                Some(self.embed(&[text.as_str()])?.remove(0))
            }
            (_, None, None) => return Err(user("give a query: `text` and/or `vector`")),
        };
        let query = Query::new(mode, vector, a.text)
            .with_params(params)
            .with_fusion(HybridParams {
                fusion,
                ..HybridParams::default()
            })
            .with_scope(scope);
        let result = self.manager.query(&query)?;
        out(SearchOut {
            mode: mode.to_string(),
            hits: result
                .hits
                .into_iter()
                .map(|h| HitOut {
                    vector_score: h.hit.hybrid.map(|p| p.vector_score),
                    text_score: h.hit.hybrid.map(|p| p.text_score),
                    id: h.hit.id,
                    score: h.hit.score,
                    metadata: h.hit.metadata,
                    text: h.hit.text,
                    shard: h.shard,
                })
                .collect(),
            failures: result
                .failures
                .into_iter()
                .map(|f| FailureOut {
                    shard: f.shard,
                    error: f.error,
                })
                .collect(),
        })
    }
}

fn tool_result(value: &Value, is_error: bool) -> Result<CallToolResult, McpError> {
    let text = if is_error {
        value["error"].as_str().unwrap_or_default().to_owned()
    } else {
        value.to_string()
    };
    let mut body = json!({
        "content": [{"type": "text", "text": text}],
        "isError": is_error,
        "resultType": "complete",
    });
    if !is_error {
        body["structuredContent"] = value.clone();
    }
    serde_json::from_value(body).map_err(|e| McpError::internal_error(e.to_string(), None))
}

impl ServerHandler for SqliteVectorServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = Implementation::new(crate::SERVER_NAME, env!("CARGO_PKG_VERSION"));
        info.title = Some("sqlite-vector: shards of vectors and text for agents".into());
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(info)
            .with_instructions(
                "Durable, offline vector memory. Create a shard (shard_create {\"name\": \"notes\"}), \
store texts with insert / insert_batch, find them with search (by meaning, keywords or both), \
and manage them with get / update / delete. Texts are embedded by the server, offline.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner
            .by_name
            .get(name)
            .map(|&i| self.inner.tools[i].clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name: Cow<'static, str> = request.name;
        // The transport took a ticket when the line arrived: wait for the earlier calls on
        // the same shards (see `order`). The ticket is released when `context` is dropped,
        // after the call has finished.
        if let Some(ticket) = context.extensions.get::<Ticket>() {
            ticket.ready().await;
        }
        if !self.inner.by_name.contains_key(name.as_ref()) {
            return Err(McpError::invalid_params(
                format!("unknown tool {name}; see tools/list"),
                None,
            ));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        let inner = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || inner.dispatch(&name, args))
            .await
            .map_err(|e| McpError::internal_error(format!("tool task failed: {e}"), None))?;
        let result = match result {
            Ok(v) => tool_result(&v, false)?,
            Err(ToolError::User(m)) => tool_result(&json!({ "error": m }), true)?,
            Err(ToolError::Internal(m)) => {
                eprintln!("sqlite-vector mcp: internal error: {m}");
                return Err(McpError::internal_error(m, None));
            }
        };
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlite_vector::ManagerOptions;
    use sqlite_vector_embed::StaticEmbedder;

    fn server(dir: &std::path::Path) -> SqliteVectorServer {
        let manager = ShardManager::open(dir, ManagerOptions::default()).unwrap();
        let embedder: Arc<dyn Embedder> = Arc::new(StaticEmbedder::builtin().unwrap());
        SqliteVectorServer::new(manager, embedder, ServerLimits::default())
    }

    #[test]
    fn every_tool_has_schemas_annotations_and_an_example() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        assert_eq!(
            s.tools().len(),
            TOOLS.len() - usize::from(!cfg!(feature = "sync"))
        );
        for t in s.tools() {
            let v = serde_json::to_value(t).unwrap();
            assert_eq!(v["inputSchema"]["type"], "object", "{v}");
            assert_eq!(v["outputSchema"]["type"], "object", "{v}");
            assert!(v["annotations"]["readOnlyHint"].is_boolean());
            let description = v["description"].as_str().unwrap();
            assert!(description.contains("Example"), "{description}");
            assert!(
                description.contains("in the order you send"),
                "{description}"
            );
        }
    }

    #[test]
    fn user_errors_and_results() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        s.call("shard_create", json!({"name": "n"})).unwrap();
        s.call("shard_create", json!({"name": "raw", "dim": 3}))
            .unwrap();
        let r = s
            .call(
                "insert",
                json!({"shard": "n", "text": "rust async runtime"}),
            )
            .unwrap();
        assert!(r["id"].is_string());
        let err = s
            .call("insert", json!({"shard": "raw", "text": "hello"}))
            .unwrap_err()
            .unwrap();
        assert!(err.contains("minilm-static-256"), "{err}");
        let err = s
            .call("insert", json!({"shard": "../etc", "text": "x"}))
            .unwrap_err()
            .unwrap();
        assert!(err.contains("invalid shard name"), "{err}");
        let hits = s
            .call(
                "search",
                json!({"shard": "n", "text": "async rust", "mode": "vector"}),
            )
            .unwrap();
        assert_eq!(hits["hits"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn memory_tools_store_find_learn_and_refuse_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        let lesson = |t: &str, c: &str| json!({"title": t, "description": "for flight searches", "content": c});
        let a = s
            .call(
                "memory_store",
                json!({"shard": "memory/a", "task": "Find the cheapest flight from Boston to Denver",
                       "task_id": "t1", "outcome": "success",
                       "items": [lesson("Sort by price", "Sort the results by price, then read the top row.")]}),
            )
            .unwrap();
        assert_eq!(a["stored"][0]["linked"], false, "{a}");
        let b = s
            .call(
                "memory_store",
                json!({"shard": "memory/a", "task": "Find the cheapest flight from Chicago to Seattle",
                       "task_id": "t2", "outcome": "failure",
                       "items": [lesson("Default order misleads", "The default order is by relevance, not price.")]}),
            )
            .unwrap();
        let (ida, idb) = (
            a["stored"][0]["id"].as_str().unwrap().to_string(),
            b["stored"][0]["id"].as_str().unwrap().to_string(),
        );
        let find = |task_id: &str| {
            s.call(
                "memory_find",
                json!({"shard": "memory/a", "task": "Find the cheapest flight from Austin to Miami", "task_id": task_id}),
            )
            .unwrap()
        };
        let hits = find("t9");
        assert_eq!(hits["hits"].as_array().unwrap().len(), 2, "{hits}");
        let fail = hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == idb.as_str())
            .unwrap();
        assert_eq!(fail["polarity"], "failure");
        assert!(
            fail["advice"].as_str().unwrap().starts_with("Avoid: "),
            "{fail}"
        );
        // Leave-one-out.
        let own = find("t1");
        assert!(
            own["hits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["id"] != ida.as_str()),
            "{own}"
        );
        // Feedback moves the prior.
        let f = s
            .call(
                "memory_feedback",
                json!({"shard": "memory/a", "task_id": "t9", "item_ids": [ida], "success": true}),
            )
            .unwrap();
        assert_eq!(f["items"][0]["wins"], 1, "{f}");
        let after = find("t9");
        let hit = after["hits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == ida.as_str())
            .unwrap();
        assert!(
            (hit["prior"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-6,
            "{hit}"
        );
        // Consolidation (dry run), context, sessions.
        let c = s
            .call(
                "memory_consolidate",
                json!({"shard": "memory/a", "dry_run": true}),
            )
            .unwrap();
        assert_eq!(c["merges"].as_array().unwrap().len(), 0, "{c}");
        let ctx = s
            .call(
                "memory_context",
                json!({"prefix": "memory/", "task": "Find a cheap flight to Denver", "budget_chars": 1000}),
            )
            .unwrap();
        assert_eq!(ctx["entries"].as_array().unwrap().len(), 2, "{ctx}");
        assert!(ctx["text"].as_str().unwrap().contains("[failure]"), "{ctx}");
        s.call(
            "session_save",
            json!({"shard": "memory/a", "session_id": "w1", "item_ids": [ida], "note": "flights"}),
        )
        .unwrap();
        let r = s
            .call(
                "session_restore",
                json!({"shard": "memory/a", "session_id": "w1"}),
            )
            .unwrap();
        assert_eq!(r["items"][0]["title"], "Sort by price", "{r}");
        // Bad input: user errors, nothing stored.
        for (tool, args, needle) in [
            (
                "memory_store",
                json!({"shard": "memory/a", "task": "x", "task_id": "t", "outcome": "maybe", "items": [lesson("a", "b")]}),
                "invalid arguments",
            ),
            (
                "memory_store",
                json!({"shard": "memory/a", "task": "x", "task_id": "t", "outcome": "success", "items": []}),
                "1 to 3 items",
            ),
            (
                "memory_store",
                json!({"shard": "memory/a", "task": "x", "task_id": "t", "outcome": "success", "items": [lesson("", "b")]}),
                "title is empty",
            ),
            (
                "memory_store",
                json!({"shard": "../x", "task": "x", "task_id": "t", "outcome": "success", "items": [lesson("a", "b")]}),
                "invalid shard name",
            ),
            (
                "memory_find",
                json!({"shard": "memory/none", "task": "x"}),
                "unknown shard",
            ),
            (
                "memory_find",
                json!({"shard": "memory/a", "task": "x", "k": 0}),
                "k must be",
            ),
            (
                "memory_feedback",
                json!({"shard": "memory/a", "task_id": "t", "item_ids": ["nope"], "success": true}),
                "not found",
            ),
            (
                "session_restore",
                json!({"shard": "memory/a", "session_id": "none"}),
                "not found",
            ),
            (
                "memory_consolidate",
                json!({"shard": "memory/a", "threshold": 2.0}),
                "threshold",
            ),
        ] {
            let e = s.call(tool, args).unwrap_err().unwrap();
            assert!(e.contains(needle), "{tool}: {e}");
        }
        assert!(!dir.path().join("x").exists());
        let stats = s.call("shard_stats", json!({"name": "memory/a"})).unwrap();
        assert_eq!(stats["count"], 3, "two lessons and a session: {stats}");
    }

    #[test]
    fn shard_create_index_is_opt_in() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        s.call("shard_create", json!({"name": "plain"})).unwrap();
        s.call("shard_create", json!({"name": "graph", "index": true}))
            .unwrap();
        let indexed = |name: &str| {
            let shard = s.inner.manager.open_shard(name).unwrap();
            shard.stats().unwrap().index.is_some()
        };
        assert!(!indexed("plain"));
        assert!(indexed("graph"));
        // Hybrid search on the indexed shard returns hits with their text.
        s.call(
            "insert_batch",
            json!({"shard": "graph", "items": [{"text": "rust async runtime"}, {"text": "go tour"}]}),
        )
        .unwrap();
        let hits = s
            .call("search", json!({"shard": "graph", "text": "rust runtime"}))
            .unwrap();
        assert_eq!(hits["mode"], "hybrid");
        assert_eq!(hits["hits"][0]["text"], "rust async runtime");
        assert!(s
            .call("shard_create", json!({"name": "bad", "index": "yes"}))
            .is_err());
    }

    #[test]
    fn hybrid_hits_show_their_parts_and_fusion_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        s.call("shard_create", json!({"name": "n"})).unwrap();
        s.call(
            "insert_batch",
            json!({"shard": "n", "items": [
                {"id": "a", "text": "rust async runtime"},
                {"id": "b", "text": "tokio schedules tasks"},
                {"id": "c", "text": "a tour of go"}
            ]}),
        )
        .unwrap();
        let r = s
            .call("search", json!({"shard": "n", "text": "rust runtime"}))
            .unwrap();
        assert_eq!(r["mode"], "hybrid");
        let hits = r["hits"].as_array().unwrap();
        assert_eq!(hits[0]["id"], "a");
        assert!(hits[0]["text_score"].as_f64().unwrap() > 0.0, "{r}");
        assert!(hits[0]["vector_score"].as_f64().unwrap() > 0.0, "{r}");
        // An item without the query's words: a BM25 of null, not 0 or absent.
        let c = hits.iter().find(|h| h["id"] == "c").unwrap();
        assert!(
            c["text_score"].is_null() && c.get("text_score").is_some(),
            "{c}"
        );
        // The fused DBSF scores of three candidates sum to 0; RRF's are all positive.
        let sum: f64 = hits.iter().map(|h| h["score"].as_f64().unwrap()).sum();
        assert!(sum.abs() < 1e-4, "{r}");
        let rrf = s
            .call(
                "search",
                json!({"shard": "n", "text": "rust runtime", "fusion": "rrf"}),
            )
            .unwrap();
        assert!(rrf["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["score"].as_f64().unwrap() > 0.0 && h["score"].as_f64().unwrap() < 0.04));
        // min_score on the fused scale.
        let top = s
            .call(
                "search",
                json!({"shard": "n", "text": "rust runtime", "min_score": 0.5}),
            )
            .unwrap();
        let top = top["hits"].as_array().unwrap();
        assert!(!top.is_empty() && top.len() < 3);
        // Vector and text hits carry no parts.
        let v = s
            .call(
                "search",
                json!({"shard": "n", "text": "rust runtime", "mode": "vector"}),
            )
            .unwrap();
        assert!(v["hits"][0].get("vector_score").is_none());
        for bad in [
            json!({"shard": "n", "text": "rust", "fusion": "max"}),
            json!({"shard": "n", "text": "rust", "mode": "text", "fusion": "rrf"}),
        ] {
            let err = s.call("search", bad.clone()).unwrap_err().unwrap();
            assert!(err.contains("fusion"), "{bad}: {err}");
        }
    }

    /// An embedder that is down: its failure is internal (JSON-RPC -32603), never a fallback.
    struct Down;

    impl Embedder for Down {
        fn model_id(&self) -> &str {
            "minilm-static-256"
        }
        fn dimension(&self) -> usize {
            256
        }
        fn embed_batch(&self, _texts: &[&str]) -> sqlite_vector_embed::Result<Vec<Vec<f32>>> {
            Err(EmbedError::Http {
                url: "http://127.0.0.1:9/embeddings".into(),
                message: "connection refused".into(),
            })
        }
    }

    #[cfg(feature = "sync")]
    #[test]
    fn the_sync_tool_pulls_from_and_pushes_to_a_trusted_peer() {
        use sqlite_vector_sync::{Identity, Server, TrustList, TrustedPeer};
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = server(da.path());
        let mb = Arc::new(ShardManager::open(db.path(), ManagerOptions::default()).unwrap());
        let (ia, ib) = (
            Identity::load_or_create(da.path()).unwrap(),
            Identity::load_or_create(db.path()).unwrap(),
        );
        // The peer serves on its own runtime thread.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let srv = rt.block_on(async {
            Server::bind(mb.clone(), &ib, "127.0.0.1:0".parse().unwrap()).unwrap()
        });
        let addr = srv.local_addr().unwrap().to_string();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = rt.spawn(srv.run(async {
            let _ = rx.await;
        }));
        a.call("shard_create", json!({"name": "team/notes"}))
            .unwrap();
        a.call(
            "insert",
            json!({"shard": "team/notes", "id": "n1", "text": "the deploy needs a vpn"}),
        )
        .unwrap();
        let args = json!({"peer": addr, "peer_id": ib.id(), "prefix": "team/"});
        // Not trusted by the peer yet: an internal (connection) error naming the trust list.
        let e = a.call("sync", args.clone()).unwrap_err().unwrap_err();
        assert!(e.contains("trust list"), "{e}");
        for (root, peer) in [(da.path(), &ib), (db.path(), &ia)] {
            let id = peer.id().to_string();
            TrustList::trust(
                root,
                TrustedPeer {
                    id,
                    prefixes: vec![],
                    read_only: false,
                },
            )
            .unwrap();
        }
        let r = a.call("sync", args).unwrap();
        assert_eq!(
            (r["shards"].as_u64(), r["sent"].as_u64()),
            (Some(1), Some(1)),
            "{r}"
        );
        assert_eq!(r["converged"], 1, "{r}");
        assert_eq!(mb.open_shard("team/notes").unwrap().len(), 1);
        // Bad arguments are the caller's to fix.
        let bad = json!({"peer": "nowhere", "peer_id": ib.id()});
        assert!(a.call("sync", bad).unwrap_err().is_ok());
        let bad = json!({"peer": addr, "peer_id": "abc"});
        assert!(a.call("sync", bad).unwrap_err().is_ok());
        let _ = stop.send(());
        rt.block_on(serving).unwrap().unwrap();
    }

    #[test]
    fn a_failing_embedder_is_an_internal_error() {
        let dir = tempfile::tempdir().unwrap();
        let manager = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let s = SqliteVectorServer::new(manager, Arc::new(Down), ServerLimits::default());
        s.call("shard_create", json!({"name": "n"})).unwrap();
        let err = s
            .call("insert", json!({"shard": "n", "text": "hello"}))
            .unwrap_err()
            .unwrap_err();
        assert!(err.contains("connection refused"), "{err}");
        assert_eq!(
            s.call("shard_stats", json!({"name": "n"})).unwrap()["count"],
            0
        );
    }
}
