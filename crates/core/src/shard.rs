//! A shard: one SQLite database of vectors with ids, metadata and text, plus the in-memory arena
//! that search scans.
//!
//! # Consistency model
//! SQLite is the source of truth. A write runs in one `BEGIN IMMEDIATE` transaction; it is
//! acknowledged (the method returns `Ok`) only after `COMMIT`, and only then is the arena
//! updated. Within a process, the arena lock is held across commit and apply, so no search sees a
//! half-applied write. Other connections (another process, or another handle on the same file)
//! are noticed through `PRAGMA data_version` before every search and every write, and their
//! changes are read incrementally by local version (`seq`) from the `items_seq` index.
//!
//! Lock order is arena state, then connection; every path follows it.
//!
//! # Pragmas
//! * `journal_mode=WAL`: readers never block the writer and vice versa, across processes.
//! * `synchronous=FULL` (durability `full`) or `NORMAL` (durability `normal`): see
//!   [`Durability`].
//! * `busy_timeout=5000`: a writer waits up to 5 s for another process's write lock instead of
//!   failing at once with `SQLITE_BUSY`.
//! * `cache_size=-8192` (8 MiB): vectors are served from the arena, so SQLite's page cache only
//!   needs the b-tree interiors and recent pages.
//! * `journal_size_limit=67108864`: the WAL file is truncated back to 64 MiB after checkpoints.
//! * `temp_store=MEMORY`: sorter and temporary b-trees stay off disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::Value as SqlValue;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::arena::Arena;
use crate::codec;
use crate::distance::{self, Kernels};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::hnsw::HnswParams;
use crate::index::{self, IndexStats, PlannerParams, Quantization, SearchPath, ShardIndex};
use crate::profile::{Durability, Metric, Profile};
use crate::quant::{rescore_depth, PreparedQuery, Quantizer};
use crate::schema;
use crate::topk::{Candidate, TopK};

/// Largest `k` a search accepts.
pub const MAX_K: usize = 10_000;
/// Longest external id, in bytes.
pub const MAX_ID_BYTES: usize = 512;
/// Largest metadata object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 1 << 20;
/// Largest text, in bytes (UTF-8).
pub const MAX_TEXT_BYTES: usize = 4 << 20;

/// An item to insert.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewItem {
    /// External id; `None` generates one (16 hex digits, random).
    pub id: Option<String>,
    /// The vector, `dimension` finite f32 values.
    pub vector: Vec<f32>,
    /// Metadata: a JSON object, or `None` for `{}`.
    pub metadata: Option<Value>,
    /// Optional text (the document the vector embeds).
    pub text: Option<String>,
}

impl NewItem {
    /// An item with a generated id, no metadata and no text.
    pub fn new(vector: Vec<f32>) -> Self {
        NewItem {
            vector,
            ..Default::default()
        }
    }
    /// Sets the external id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Sets the metadata (must be a JSON object).
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
    /// Sets the text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
}

/// A stored item, as returned by [`Shard::get`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// External id.
    pub id: String,
    /// The vector (`dimension` values).
    pub vector: Vec<f32>,
    /// Metadata object (`{}` when none was given).
    pub metadata: Value,
    /// Text, if any.
    pub text: Option<String>,
}

/// A partial change for [`Shard::update`]; fields left `None` keep their value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    /// New vector.
    pub vector: Option<Vec<f32>>,
    /// New metadata object (replaces the old one whole).
    pub metadata: Option<Value>,
    /// New text.
    pub text: Option<String>,
}

/// Parameters of [`Shard::search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    /// Number of hits wanted, 1 ..= [`MAX_K`] (default 10). Fewer come back when fewer items
    /// match.
    pub k: usize,
    /// Metric for this search; `None` uses the shard's.
    pub metric: Option<Metric>,
    /// Keep only hits with a score ≥ this (cosine and dot only).
    pub min_score: Option<f32>,
    /// Keep only hits with an L2 distance ≤ this (L2 only).
    pub max_distance: Option<f32>,
    /// Metadata filter: the search returns the true top k among matching items (exactly on the
    /// exact path; approximately, like an unfiltered graph search, on the HNSW path).
    pub filter: Option<Filter>,
    /// Beam width of an HNSW search (`ef`, used as `max(ef_search, k)`); `None` uses the
    /// index's default. Ignored on the exact path. 1 ..= [`MAX_EF_SEARCH`].
    pub ef_search: Option<usize>,
    /// Skip the index: always scan exactly (the oracle for recall measurements).
    pub exact: bool,
    /// Read each hit's metadata and text from SQLite (default `true`). With `false` hits carry
    /// only `id` and `score` (`metadata` is `null`, `text` `None`), which saves one SQLite
    /// lookup per hit (about 2–4 µs each): for callers that fetch payloads themselves, and for
    /// like-for-like comparisons with index libraries that return only labels.
    pub payload: bool,
}

/// Largest accepted [`SearchParams::ef_search`].
pub const MAX_EF_SEARCH: usize = 100_000;

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            k: 10,
            metric: None,
            min_score: None,
            max_distance: None,
            filter: None,
            ef_search: None,
            exact: false,
            payload: true,
        }
    }
}

impl SearchParams {
    /// Default parameters with this `k`.
    pub fn k(k: usize) -> Self {
        SearchParams {
            k,
            ..Default::default()
        }
    }
    /// Sets the filter.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }
    /// Sets the metric.
    pub fn with_metric(mut self, metric: Metric) -> Self {
        self.metric = Some(metric);
        self
    }
    /// Sets the HNSW beam width for this query.
    pub fn with_ef_search(mut self, ef: usize) -> Self {
        self.ef_search = Some(ef);
        self
    }
    /// Sets whether hits carry metadata and text ([`SearchParams::payload`]).
    pub fn with_payload(mut self, payload: bool) -> Self {
        self.payload = payload;
        self
    }
    /// Forces (or not) an exact scan.
    pub fn with_exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }
}

/// Parameters of [`Shard::search_hybrid`]'s reciprocal rank fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridParams {
    /// The RRF constant `k` (default 60, as in the RRF paper).
    pub rrf_k: f32,
    /// Weight of the vector ranking (default 1).
    pub vector_weight: f32,
    /// Weight of the BM25 ranking (default 1).
    pub text_weight: f32,
    /// How many hits of each ranking are fused (default 100).
    pub candidates: usize,
}

impl Default for HybridParams {
    fn default() -> Self {
        HybridParams {
            rrf_k: 60.0,
            vector_weight: 1.0,
            text_weight: 1.0,
            candidates: 100,
        }
    }
}

impl HybridParams {
    /// Checks the values for a search of `k` hits.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a non-positive or non-finite `rrf_k`, a negative or
    /// non-finite weight, or `candidates` outside `k ..= MAX_K`.
    pub fn validate(&self, k: usize) -> Result<()> {
        let finite_non_negative = |w: f32| w.is_finite() && w >= 0.0;
        let valid = self.rrf_k.is_finite()
            && self.rrf_k > 0.0
            && finite_non_negative(self.vector_weight)
            && finite_non_negative(self.text_weight);
        if !valid {
            return Err(Error::InvalidArgument(
                "rrf_k must be > 0 and weights ≥ 0 (finite)".into(),
            ));
        }
        if self.candidates < k || self.candidates > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "candidates must be k..={MAX_K}, got {}",
                self.candidates
            )));
        }
        Ok(())
    }
}

/// Fuses rankings (best first) by reciprocal rank fusion: `Σ w / (rrf_k + rank)`, rank from 1.
/// Returns the best `k`; equal fused scores are ordered by the rankings in the order given, then
/// by id; hits below `min_score` are dropped. Public so that search
/// across shards fuses the same way.
pub fn rrf_fuse<const N: usize>(
    rankings: [(Vec<Hit>, f32); N],
    rrf_k: f32,
    k: usize,
    min_score: Option<f32>,
) -> Vec<Hit> {
    // Per id: the hit, its fused score, and its rank in each ranking (usize::MAX if absent).
    let mut fused: std::collections::HashMap<String, (Hit, [usize; N])> =
        std::collections::HashMap::new();
    for (r, (hits, weight)) in rankings.into_iter().enumerate() {
        for (rank, hit) in hits.into_iter().enumerate() {
            let add = weight / (rrf_k + rank as f32 + 1.0);
            let e = fused
                .entry(hit.id.clone())
                .or_insert_with(|| (Hit { score: 0.0, ..hit }, [usize::MAX; N]));
            e.0.score += add;
            e.1[r] = rank;
        }
    }
    let mut out: Vec<(Hit, [usize; N])> = fused
        .into_values()
        .filter(|(h, _)| min_score.is_none_or(|m| h.score >= m))
        .collect();
    // Equal fused scores (e.g. ranks (1, 2) and (2, 1)) fall back to the rankings in the order
    // given (the first ranking's rank decides first), then the id.
    out.sort_by(|(a, ra), (b, rb)| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| ra.cmp(rb))
            .then_with(|| a.id.cmp(&b.id))
    });
    out.truncate(k);
    out.into_iter().map(|(h, _)| h).collect()
}

/// The words of a text query (maximal runs of alphanumeric characters, at most 256). Each is
/// later quoted, so FTS5 syntax in the text (quotes, `*`, `NEAR`, `-`, `:`) is never
/// interpreted.
fn query_words(text: &str) -> Result<Vec<&str>> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::InvalidArgument(format!(
            "text query of {} bytes, the limit is {MAX_TEXT_BYTES}",
            text.len()
        )));
    }
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(256)
        .collect();
    if words.is_empty() {
        return Err(Error::InvalidArgument(
            "text query has no words to search for".into(),
        ));
    }
    Ok(words)
}

/// A read transaction (one snapshot for a search's several statements) on cached `BEGIN` /
/// `COMMIT` statements: `Connection::transaction` prepares both anew every time, a few µs each.
struct ReadSnapshot<'a>(&'a Connection);

impl<'a> ReadSnapshot<'a> {
    fn begin(db: &'a Connection) -> Result<ReadSnapshot<'a>> {
        db.prepare_cached("BEGIN")?.execute([])?;
        Ok(ReadSnapshot(db))
    }
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        // Ending a read transaction does not fail in practice; if it did, roll back so that
        // the connection is never left inside one.
        if self
            .0
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .is_err()
        {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// External id.
    pub id: String,
    /// Cosine similarity, dot product, or L2 distance, per the search's metric (see
    /// [`Metric`]).
    pub score: f32,
    /// Metadata object.
    pub metadata: Value,
    /// Text, if any.
    pub text: Option<String>,
}

/// One row of [`Shard::changes_since`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// External id.
    pub id: String,
    /// Local version of the change.
    pub seq: i64,
    /// Hybrid logical clock of the change: physical milliseconds << 16 | logical counter.
    pub hlc: i64,
    /// Site that made the change (16 bytes, hex).
    pub site_id: String,
    /// Causal length: odd = alive, even = deleted.
    pub causal_length: i64,
}

/// Numbers about a shard, from [`Shard::stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Live items.
    pub count: usize,
    /// Tombstones (deleted items kept for sync).
    pub tombstones: usize,
    /// Vector dimension.
    pub dimension: usize,
    /// Shard metric.
    pub metric: Metric,
    /// Durability of this handle.
    pub durability: Durability,
    /// Embedding model id, if recorded.
    pub embedding_model: Option<String>,
    /// Bytes of the database file plus its WAL (for in-memory shards: SQLite's pages).
    pub bytes_on_disk: u64,
    /// Bytes held by the in-memory arena (vectors, norms, ids, maps).
    pub bytes_in_memory: usize,
    /// Bytes of raw f32 vector data of the live items (`count × dimension × 4`).
    pub raw_vector_bytes: usize,
    /// Shard format version.
    pub format_version: u32,
    /// How an unfiltered search runs now, e.g. `exact (avx512f)` or `hnsw (avx512f)`.
    pub search_method: String,
    /// The HNSW index, if the shard has one.
    pub index: Option<IndexStats>,
    /// How the exact path stores vectors ([`Shard::set_quantization`]).
    pub quantization: Quantization,
    /// The site id of this shard (hex).
    pub site_id: String,
    /// Highest local version (`seq`).
    pub version: i64,
}

struct State {
    arena: Arena,
    /// The HNSW index, kept in step with `arena`.
    index: Option<ShardIndex>,
    planner: PlannerParams,
    last_seq: i64,
    last_hlc: i64,
    data_version: i64,
}

struct Conn {
    db: Connection,
    rng: u64,
}

/// A vector shard. `Send + Sync`: share it behind an `Arc`; searches run in parallel, writes are
/// serialised (one writer, many readers).
pub struct Shard {
    path: Option<PathBuf>,
    profile: Profile,
    site_id: [u8; 16],
    format_version: u32,
    kernels: &'static Kernels,
    state: RwLock<State>,
    conn: Mutex<Conn>,
    /// The matching slots of recently used filters, each valid for one state version
    /// (`State::last_seq`): agents repeat the same filter, and evaluating it costs one pass
    /// over the metadata. Most recent first, at most [`FILTER_CACHE`] entries.
    filter_cache: Mutex<FilterCache>,
}

/// Entries of [`Shard`]'s filter cache: filter, state version, matching slots.
type FilterCache = Vec<(Filter, i64, Arc<Vec<u32>>)>;

/// Filters whose matching slots a shard remembers.
const FILTER_CACHE: usize = 8;

enum Op {
    Put {
        rowid: i64,
        id: String,
        vector: Vec<f32>,
        /// `false` for an update that kept the vector (the index need not change).
        vector_changed: bool,
    },
    Remove {
        rowid: i64,
    },
}

/// Maps errors of opening/reading a file that may not be a shard at all.
fn map_foreign(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        match f.code {
            ErrorCode::NotADatabase => {
                return Error::NotAShard(format!(
                    "{}: file is not a SQLite database",
                    path.display()
                ))
            }
            ErrorCode::DatabaseCorrupt => {
                return Error::Corrupt(format!(
                    "{}: {}",
                    path.display(),
                    msg.as_deref().unwrap_or("database disk image is malformed")
                ))
            }
            ErrorCode::CannotOpen => {
                return Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("cannot open {}", path.display()),
                ))
            }
            _ => {}
        }
    }
    Error::Sqlite(e)
}

fn now_hlc(last: i64) -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (ms << 16).max(last + 1)
}

fn validate_id(id: &str) -> Result<()> {
    let reason = if id.is_empty() {
        "empty"
    } else if id.len() > MAX_ID_BYTES {
        "longer than 512 bytes"
    } else if id.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        id: id.chars().take(64).collect(),
        reason,
    })
}

fn metadata_json(m: Option<&Value>) -> Result<Option<String>> {
    match m {
        None => Ok(None),
        Some(Value::Object(o)) if o.is_empty() => Ok(None),
        Some(v @ Value::Object(_)) => {
            let s = serde_json::to_string(v)?;
            if s.len() > MAX_METADATA_BYTES {
                return Err(Error::InvalidMetadata(format!(
                    "{} bytes of JSON, the limit is {MAX_METADATA_BYTES}",
                    s.len()
                )));
            }
            Ok(Some(s))
        }
        Some(other) => Err(Error::InvalidMetadata(format!(
            "metadata must be a JSON object, got {}",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        ))),
    }
}

fn parse_metadata(s: Option<String>) -> Result<Value> {
    match s {
        None => Ok(Value::Object(Map::new())),
        Some(s) => Ok(serde_json::from_str(&s)?),
    }
}

/// Page size for a new shard: the smallest of 4, 8, 16 or 32 KiB that holds at least eight
/// rows of this dimension (a row is the vector BLOB plus about 80 bytes of id, sync columns and
/// cell header), and 32 KiB above that. With 4 KiB pages a 384-d row (1,536 bytes) fits only
/// twice, wasting a quarter of every page and doubling the b-tree work per row; 16 KiB pages hold
/// ten (measured: batch inserts 53k → 101k vectors/s on debian-minilm). Small dimensions keep
/// small pages, so the many small shards of an agent fleet stay small on disk and a single-row
/// commit writes few bytes.
fn page_size_for(dim: usize) -> i64 {
    let row = dim * 4 + 80;
    [4096i64, 8192, 16384, 32768]
        .into_iter()
        .find(|&p| (p as usize - 100) / row >= 8)
        .unwrap_or(32768)
}

/// The values of the searchable metadata `fields` (dotted paths) of `metadata`, joined by
/// spaces: strings as they are, numbers and booleans as text, arrays element by element.
fn searchable_values(fields: &[String], metadata: Option<&Value>) -> String {
    fn push(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push(' ');
            }
            Value::Number(n) => {
                out.push_str(&n.to_string());
                out.push(' ');
            }
            Value::Bool(b) => {
                out.push_str(if *b { "true " } else { "false " });
            }
            Value::Array(a) => a.iter().for_each(|x| push(x, out)),
            Value::Null | Value::Object(_) => {}
        }
    }
    let mut out = String::new();
    let Some(meta) = metadata else { return out };
    for f in fields {
        let mut v = Some(meta);
        for seg in f.split('.') {
            v = v.and_then(|x| x.get(seg));
        }
        if let Some(v) = v {
            push(v, &mut out);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Prefixes a corruption found in one item with its id.
/// The shard's int8 quantizer (meta `quantizer`, hex of [`Quantizer::to_bytes`]), if it is
/// quantized.
fn read_quantizer(db: &Connection, dim: usize) -> Result<Option<Quantizer>> {
    let hex: Option<String> = db
        .prepare_cached("SELECT value FROM meta WHERE key = 'quantizer'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(hex) = hex else {
        return Ok(None);
    };
    let bytes = unhex(&hex).ok_or_else(|| Error::Corrupt("meta quantizer is not hex".into()))?;
    let qz = Quantizer::from_bytes(&bytes)?;
    if qz.dim() != dim {
        return Err(Error::Corrupt(format!(
            "quantizer of dimension {} in a shard of dimension {dim}",
            qz.dim()
        )));
    }
    Ok(Some(qz))
}

/// A stored rowid, checked to be usable as an index node id.
fn checked_rowid(rowid: i64) -> Result<i64> {
    index::node_of(rowid).map(i64::from)
}

/// A rowid SQLite just assigned, checked to be usable as an index node id.
fn checked_new_rowid(rowid: i64) -> Result<i64> {
    index::node_of(rowid).map(i64::from).map_err(|_| {
        Error::InvalidArgument(format!(
            "the shard has used all {} rowids an item can have",
            index::MAX_NODE
        ))
    })
}

fn corrupt_item(id: &str, e: Error) -> Error {
    match e {
        Error::Corrupt(m) => Error::Corrupt(format!("item {id:?}: {m}")),
        other => other,
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a string written by [`hex`]; `None` for an odd length or a non-hex digit.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// The [`Quantization`] of an arena.
fn quantization_of(arena: &Arena) -> Quantization {
    match arena.quantizer() {
        Some(_) => Quantization::Int8,
        None => Quantization::None,
    }
}

impl Shard {
    // ------------------------------------------------------------------ open / create

    /// Creates a new shard file at `path` with `profile`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `path` exists; [`Error::InvalidArgument`] for an invalid
    /// profile, or durability `memory` (use [`Shard::in_memory`]); [`Error::Sqlite`] /
    /// [`Error::Io`] when the file cannot be written.
    ///
    /// ```
    /// use sqlite_vector::{Metric, NewItem, Profile, SearchParams, Shard};
    /// let dir = tempfile::tempdir().unwrap();
    /// let shard = Shard::create(dir.path().join("notes.db"), &Profile::new(3, Metric::Cosine))?;
    /// shard.insert(NewItem::new(vec![1.0, 0.0, 0.0]).with_id("a"))?;
    /// shard.insert(NewItem::new(vec![0.0, 1.0, 0.0]).with_id("b"))?;
    /// let hits = shard.search(&[0.9, 0.1, 0.0], &SearchParams::k(1))?;
    /// assert_eq!(hits[0].id, "a");
    /// # Ok::<(), sqlite_vector::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, profile: &Profile) -> Result<Shard> {
        let path = path.as_ref();
        profile.validate()?;
        if profile.durability == Durability::Memory {
            return Err(Error::InvalidArgument(
                "durability memory keeps nothing on disk: use Shard::in_memory".into(),
            ));
        }
        if path.exists() {
            return Err(Error::AlreadyExists(path.display().to_string()));
        }
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_foreign(path, e))?;
        Self::init(db, Some(path.to_path_buf()), profile)
    }

    /// Creates an in-memory shard (durability `memory`: nothing touches the disk, and the data
    /// ends with the handle).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid profile.
    pub fn in_memory(profile: &Profile) -> Result<Shard> {
        profile.validate()?;
        let profile = profile.clone().with_durability(Durability::Memory);
        let db = Connection::open_in_memory()?;
        Self::init(db, None, &profile)
    }

    fn init(mut db: Connection, path: Option<PathBuf>, profile: &Profile) -> Result<Shard> {
        // Must precede WAL mode and the first table. See `page_size_for`.
        db.pragma_update(None, "page_size", page_size_for(profile.dimension))?;
        Self::configure(&db, profile.durability)?;
        // Under `normal`, the creating transaction itself skips the fsyncs of a fresh WAL (its
        // header sync and the directory sync): nothing has been acknowledged yet, and a shard
        // cut short by a power loss fails to open as "not a shard" instead of holding bad data.
        if profile.durability == Durability::Normal {
            db.pragma_update(None, "synchronous", "OFF")?;
        }
        let tx = db.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let exists: bool = tx.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if exists {
            return Err(Error::AlreadyExists(
                path.map_or_else(|| ":memory:".into(), |p| p.display().to_string()),
            ));
        }
        for ddl in schema::CREATE_ALL {
            tx.execute_batch(ddl)?;
        }
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)?;
        let site: Vec<u8> = tx.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let rows: [(&str, String); 8] = [
            ("format_version", schema::FORMAT_VERSION.to_string()),
            ("dimension", profile.dimension.to_string()),
            ("metric", profile.metric.to_string()),
            ("durability", profile.durability.to_string()),
            (
                "embedding_model",
                profile.embedding_model.clone().unwrap_or_default(),
            ),
            (
                "searchable_fields",
                serde_json::to_string(&profile.searchable_fields)?,
            ),
            ("site_id", hex(&site)),
            ("created_at", created.to_string()),
        ];
        for (k, v) in rows {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        tx.commit()?;
        if profile.durability == Durability::Normal {
            db.pragma_update(None, "synchronous", "NORMAL")?;
        }
        Self::finish_open(db, path, profile.clone(), schema::FORMAT_VERSION)
    }

    /// Opens an existing shard file with the durability recorded in it.
    ///
    /// # Errors
    /// [`Error::Io`] (not found), [`Error::NotAShard`] for a file that is not SQLite or has no
    /// shard profile, [`Error::Corrupt`] for damaged pages or a vector BLOB of the wrong length,
    /// [`Error::UnsupportedFormat`] for a newer format.
    pub fn open(path: impl AsRef<Path>) -> Result<Shard> {
        Self::open_with(path, None)
    }

    /// Opens an existing shard, overriding its recorded durability for this handle when
    /// `durability` is given (`full` or `normal`).
    ///
    /// # Errors
    /// As [`Shard::open`]; [`Error::InvalidArgument`] for durability `memory`.
    pub fn open_with(path: impl AsRef<Path>, durability: Option<Durability>) -> Result<Shard> {
        let path = path.as_ref();
        if durability == Some(Durability::Memory) {
            return Err(Error::InvalidArgument(
                "durability memory cannot apply to a shard file".into(),
            ));
        }
        if !path.is_file() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no shard file at {}", path.display()),
            )));
        }
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_foreign(path, e))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let (mut profile, version) = Self::read_profile(&db).map_err(|e| match e {
            Error::Sqlite(s) => map_foreign(path, s),
            other => other,
        })?;
        if let Some(d) = durability {
            profile.durability = d;
        }
        Self::configure(&db, profile.durability).map_err(|e| match e {
            Error::Sqlite(s) => map_foreign(path, s),
            other => other,
        })?;
        Self::finish_open(db, Some(path.to_path_buf()), profile, version)
    }

    /// Opens the shard at `path` if it exists, checking that its dimension, metric and
    /// embedding model equal `profile`'s; creates it otherwise.
    ///
    /// # Errors
    /// As [`Shard::create`] and [`Shard::open`]; [`Error::DimensionMismatch`] or
    /// [`Error::ProfileMismatch`] naming both values when the existing shard differs.
    pub fn open_or_create(path: impl AsRef<Path>, profile: &Profile) -> Result<Shard> {
        let path = path.as_ref();
        if path.exists() {
            let shard = Self::open_with(path, Some(profile.durability))?;
            shard.profile.check_compatible(profile)?;
            Ok(shard)
        } else {
            Self::create(path, profile)
        }
    }

    fn configure(db: &Connection, durability: Durability) -> Result<()> {
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        match durability {
            Durability::Memory => {
                db.pragma_update(None, "synchronous", "OFF")?;
            }
            Durability::Full | Durability::Normal => {
                // No fsync while switching a new file to WAL (it would go through a rollback
                // journal under the default synchronous=FULL: four fsyncs, most of the cost of
                // creating a shard); the mode's own level is set right after.
                db.pragma_update(None, "synchronous", "OFF")?;
                let mode: String =
                    db.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(Error::InvalidArgument(format!(
                        "could not enable WAL (journal_mode is {mode})"
                    )));
                }
                let sync = if durability == Durability::Full {
                    "FULL"
                } else {
                    "NORMAL"
                };
                db.pragma_update(None, "synchronous", sync)?;
                db.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
                // Under `normal`, closing does not checkpoint: the WAL stays beside the file and
                // is read on the next open. A checkpoint at close costs four fsyncs (about 1 ms),
                // and `normal` promises durability against process crashes, which the WAL gives;
                // power loss can roll back the last commits but never corrupts (WAL frames are
                // checksummed). `full` checkpoints at close as SQLite does by default.
                db.set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    durability == Durability::Normal,
                )?;
            }
        }
        db.pragma_update(None, "cache_size", -8192i64)?;
        db.pragma_update(None, "temp_store", "MEMORY")?;
        crate::sqlfn::register_functions(db)?;
        Ok(())
    }

    fn read_profile(db: &Connection) -> Result<(Profile, u32)> {
        let has_meta: bool = db.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if !has_meta {
            return Err(Error::NotAShard(
                "SQLite database without a sqlite-vector meta table".into(),
            ));
        }
        let get = |key: &str| -> Result<String> {
            db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::Corrupt(format!("meta has no {key}")))
        };
        let version: u32 = get("format_version")?
            .parse()
            .map_err(|_| Error::Corrupt("format_version is not a number".into()))?;
        if version > schema::FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: version,
                supported: schema::FORMAT_VERSION,
            });
        }
        let dimension: usize = get("dimension")?
            .parse()
            .map_err(|_| Error::Corrupt("dimension is not a number".into()))?;
        let metric: Metric = get("metric")?
            .parse()
            .map_err(|_| Error::Corrupt("unknown metric in meta".into()))?;
        let durability: Durability = get("durability")?
            .parse()
            .map_err(|_| Error::Corrupt("unknown durability in meta".into()))?;
        let model = get("embedding_model")?;
        let searchable_fields: Vec<String> = serde_json::from_str(&get("searchable_fields")?)
            .map_err(|_| {
                Error::Corrupt("searchable_fields is not a JSON array of strings".into())
            })?;
        let profile = Profile {
            dimension,
            metric,
            durability,
            embedding_model: (!model.is_empty()).then_some(model),
            searchable_fields,
        };
        profile
            .validate()
            .map_err(|e| Error::Corrupt(format!("bad profile in meta: {e}")))?;
        Ok((profile, version))
    }

    fn finish_open(
        mut db: Connection,
        path: Option<PathBuf>,
        profile: Profile,
        format_version: u32,
    ) -> Result<Shard> {
        Self::migrate(&mut db, format_version)?;
        let site_hex: String =
            db.query_row("SELECT value FROM meta WHERE key = 'site_id'", [], |r| {
                r.get(0)
            })?;
        let site_id: [u8; 16] = unhex(&site_hex)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Corrupt(format!("bad site_id {site_hex:?}")))?;
        let seed: i64 = db.query_row("SELECT random()", [], |r| r.get(0))?;
        let mut state = State {
            arena: Arena::with_capacity(profile.dimension, 0),
            index: None,
            planner: PlannerParams::default(),
            last_seq: 0,
            last_hlc: 0,
            data_version: 0,
        };
        Self::load(&db, &mut state, &profile, false).map_err(|e| match (&path, e) {
            (Some(p), Error::Sqlite(s)) => map_foreign(p, s),
            (_, e) => e,
        })?;
        // The load filled SQLite's page cache with every vector page; the arena now holds the
        // vectors, so give that memory back (about 1.6 MB per 1,000 × 384 shard).
        db.execute_batch("PRAGMA shrink_memory")?;
        Ok(Shard {
            path,
            profile,
            site_id,
            format_version: schema::FORMAT_VERSION,
            kernels: Kernels::best(),
            state: RwLock::new(state),
            filter_cache: Mutex::new(Vec::new()),
            conn: Mutex::new(Conn {
                db,
                rng: (seed as u64) | 1,
            }),
        })
    }

    fn migrate(db: &mut Connection, from: u32) -> Result<()> {
        if from == schema::FORMAT_VERSION {
            return Ok(());
        }
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for step in &schema::MIGRATIONS[(from as usize - 1)..] {
            for sql in *step {
                tx.execute_batch(sql)?;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'format_version'",
            [schema::FORMAT_VERSION.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Full load of the arena and the index, in one read transaction. The arena keeps int8
    /// codes when the shard is quantized, and f32 rows unless it is quantized without an index
    /// (the graph reads f32) and `force_f32` is off.
    fn load(db: &Connection, st: &mut State, profile: &Profile, force_f32: bool) -> Result<()> {
        let dim = profile.dimension;
        let memory_index = match (&st.index, profile.durability) {
            (Some(ix), Durability::Memory) => Some(*ix.graph.params()),
            _ => None,
        };
        // The load reads every page once: map the file for it (no read syscall and copy per
        // page; measured −30 % on a 100k × 384 open). Unmapped again afterwards unless the
        // arena keeps only int8 codes (see below).
        db.pragma_update(None, "mmap_size", 1i64 << 40)?;
        db.execute_batch("BEGIN")?;
        let r = (|| -> Result<()> {
            let dv: i64 = db.query_row("PRAGMA data_version", [], |r| r.get(0))?;
            let live: i64 =
                db.query_row("SELECT count(*) FROM items WHERE cl % 2 = 1", [], |r| {
                    r.get(0)
                })?;
            let mut arena = Arena::with_capacity(dim, 0);
            if let Some(qz) = read_quantizer(db, dim)? {
                let keep_f32 = force_f32 || memory_index.is_some() || index::tables_exist(db)?;
                arena.quantize(qz, keep_f32);
            }
            arena.reserve_rows(live.max(0) as usize);
            let (mut max_seq, mut max_hlc) = (0i64, 0i64);
            let mut stmt = db.prepare(schema::LOAD_ALL)?;
            let mut rows = stmt.query([])?;
            let mut v = Vec::with_capacity(dim);
            while let Some(row) = rows.next()? {
                let rowid = checked_rowid(row.get(0)?)?;
                let cl: i64 = row.get(3)?;
                max_seq = max_seq.max(row.get(4)?);
                max_hlc = max_hlc.max(row.get(5)?);
                if cl % 2 == 1 {
                    let id = row.get_ref(1)?.as_str()?;
                    let blob = row
                        .get_ref(2)?
                        .as_blob_or_null()?
                        .ok_or_else(|| Error::Corrupt(format!("live item {id:?} has no vector")))?;
                    codec::decode_into(blob, dim, &mut v).map_err(|e| corrupt_item(id, e))?;
                    arena.upsert(rowid, id, &v);
                }
            }
            st.index = match memory_index {
                Some(params) => Some(ShardIndex::build(params, profile.metric, &arena, false)?),
                None => ShardIndex::load(
                    db,
                    &arena,
                    profile.metric,
                    profile.durability != Durability::Memory,
                )?,
            };
            st.arena = arena;
            st.last_seq = max_seq;
            st.last_hlc = max_hlc;
            st.data_version = dv;
            Ok(())
        })();
        db.execute_batch("COMMIT")?;
        // Rescoring in an int8-only arena reads a few vectors per query from the file at
        // random: keep it mapped (the OS page cache serves them; −50 % per query measured)
        // instead of going through SQLite's small page cache.
        let keep_mapped = st.arena.quantizer().is_some() && !st.arena.has_f32();
        if !keep_mapped {
            db.pragma_update(None, "mmap_size", 0)?;
        }
        r
    }

    // ------------------------------------------------------------------ locking / catch-up

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
    fn lock_conn(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies other connections' commits to the arena (and index) if `PRAGMA data_version`
    /// moved.
    fn catch_up(db: &Connection, st: &mut State, dim: usize) -> Result<()> {
        let dv: i64 = db
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if dv == st.data_version {
            return Ok(());
        }
        let mut stmt = db.prepare_cached(schema::CHANGES_SINCE)?;
        let mut rows = stmt.query([st.last_seq])?;
        let mut v = Vec::with_capacity(dim);
        while let Some(row) = rows.next()? {
            let rowid = checked_rowid(row.get(0)?)?;
            let cl: i64 = row.get(3)?;
            st.last_seq = st.last_seq.max(row.get(4)?);
            st.last_hlc = st.last_hlc.max(row.get(5)?);
            if cl % 2 == 1 {
                let id = row.get_ref(1)?.as_str()?;
                let blob = row
                    .get_ref(2)?
                    .as_blob_or_null()?
                    .ok_or_else(|| Error::Corrupt(format!("live item {id:?} has no vector")))?;
                codec::decode_into(blob, dim, &mut v).map_err(|e| corrupt_item(id, e))?;
                st.arena.upsert(rowid, id, &v);
                if let Some(ix) = st.index.as_mut() {
                    ix.put(rowid, &st.arena)?;
                }
            } else {
                st.arena.remove(rowid);
                if let Some(ix) = st.index.as_mut() {
                    ix.remove(rowid, &st.arena);
                }
            }
        }
        if let Some(ix) = st.index.as_mut() {
            ix.rebuild_if_worn(&st.arena)?;
        }
        st.data_version = dv;
        Ok(())
    }

    /// Catches up with other connections' commits now (searches and writes do this on their
    /// own; call it to make [`Shard::len`] current).
    ///
    /// # Errors
    /// [`Error::Sqlite`] or [`Error::Corrupt`] from reading the changes.
    pub fn refresh(&self) -> Result<()> {
        let mut st = self.write_state();
        let c = self.lock_conn();
        Self::catch_up(&c.db, &mut st, self.profile.dimension)
    }

    /// Catches up only when `PRAGMA data_version` says another connection committed.
    fn catch_up_if_stale(&self) -> Result<()> {
        {
            let st = self.read_state();
            let c = self.lock_conn();
            let dv: i64 =
                c.db.prepare_cached("PRAGMA data_version")?
                    .query_row([], |r| r.get(0))?;
            if dv == st.data_version {
                return Ok(());
            }
        }
        self.refresh()
    }

    /// Runs `f` in one write transaction; applies its arena operations after the commit.
    fn write<R>(&self, f: impl FnOnce(&mut Writer<'_>) -> Result<R>) -> Result<R> {
        let mut st = self.write_state();
        let mut c = self.lock_conn();
        let Conn { db, rng } = &mut *c;
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::catch_up(&tx, &mut st, self.profile.dimension)?;
        let mut w = Writer {
            tx: &tx,
            shard: self,
            seq: st.last_seq,
            hlc: st.last_hlc,
            rng,
            ops: Vec::new(),
        };
        let r = f(&mut w)?;
        let Writer { seq, hlc, ops, .. } = w;
        // The arena and the index take the changes before the commit, so the index rows can be
        // written in the same transaction. Past this point any failure leaves them ahead of the
        // database: reload both from it.
        let applied = Self::apply(&mut st, ops, &tx, seq).and_then(|()| Ok(tx.commit()?));
        if let Err(e) = applied {
            let profile = &self.profile;
            if let Err(reload) = Self::load(db, &mut st, profile, false) {
                return Err(Error::Corrupt(format!(
                    "{e}; reloading the shard after the failed write failed too: {reload}"
                )));
            }
            return Err(e);
        }
        st.last_seq = seq;
        st.last_hlc = hlc;
        Ok(r)
    }

    /// Applies a write transaction's operations to the arena and the index, and writes the
    /// index rows that changed into `tx` (stamped `seq`).
    fn apply(st: &mut State, ops: Vec<Op>, tx: &Connection, seq: i64) -> Result<()> {
        let puts = ops.iter().filter(|o| matches!(o, Op::Put { .. })).count();
        st.arena.reserve_rows(puts);
        let State { arena, index, .. } = st;
        for op in ops {
            match op {
                Op::Put {
                    rowid,
                    id,
                    vector,
                    vector_changed,
                } => {
                    arena.upsert(rowid, &id, &vector);
                    if let Some(ix) = index.as_mut() {
                        if vector_changed || !ix.graph.contains(rowid as u32) {
                            ix.put(rowid, arena)?;
                        }
                    }
                }
                Op::Remove { rowid } => {
                    arena.remove(rowid);
                    if let Some(ix) = index.as_mut() {
                        ix.remove(rowid, arena);
                    }
                }
            }
        }
        if let Some(ix) = index.as_mut() {
            ix.rebuild_if_worn(arena)?;
            ix.flush(tx, seq)?;
        }
        Ok(())
    }

    fn check_vector(&self, v: &[f32]) -> Result<()> {
        codec::validate(v, Some(self.profile.dimension))?;
        if self.profile.metric == Metric::Cosine && distance::norm(v) == 0.0 {
            return Err(Error::ZeroVector);
        }
        Ok(())
    }

    fn check_item(&self, item: &NewItem) -> Result<()> {
        if let Some(id) = &item.id {
            validate_id(id)?;
        }
        self.check_vector(&item.vector)?;
        metadata_json(item.metadata.as_ref())?;
        if let Some(t) = &item.text {
            if t.len() > MAX_TEXT_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "text of {} bytes, the limit is {MAX_TEXT_BYTES}",
                    t.len()
                )));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ writes

    /// Inserts one item in its own transaction and returns its id.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if the id is live (a deleted id may be reused),
    /// [`Error::DimensionMismatch`], [`Error::EmptyVector`], [`Error::NonFinite`],
    /// [`Error::ZeroVector`] (cosine shards), [`Error::InvalidId`], [`Error::InvalidMetadata`],
    /// [`Error::InvalidArgument`] (text too long); nothing is written on error.
    pub fn insert(&self, item: NewItem) -> Result<String> {
        self.check_item(&item)?;
        self.write(|w| w.put(item, false))
    }

    /// Inserts or replaces one item and returns its id.
    ///
    /// # Errors
    /// As [`Shard::insert`], except that a live id is replaced instead of refused.
    pub fn upsert(&self, item: NewItem) -> Result<String> {
        self.check_item(&item)?;
        self.write(|w| w.put(item, true))
    }

    /// Inserts all `items` in one transaction: all or nothing. Returns their ids in order.
    ///
    /// # Errors
    /// As [`Shard::insert`] for any item (the error names the item's index); a duplicate id
    /// within the batch or against a live item is [`Error::DuplicateId`]. On any error nothing
    /// of the batch is written.
    pub fn insert_batch(&self, items: Vec<NewItem>) -> Result<Vec<String>> {
        for item in &items {
            self.check_item(item)?;
        }
        self.write(|w| items.into_iter().map(|it| w.put(it, false)).collect())
    }

    /// Inserts or replaces all `items` in one transaction: all or nothing.
    ///
    /// # Errors
    /// As [`Shard::insert_batch`], but live ids are replaced; an id repeated within the batch
    /// keeps its last value.
    pub fn upsert_batch(&self, items: Vec<NewItem>) -> Result<Vec<String>> {
        for item in &items {
            self.check_item(item)?;
        }
        self.write(|w| items.into_iter().map(|it| w.put(it, true)).collect())
    }

    /// Changes the vector, metadata and/or text of a live item.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or deleted id; [`Error::InvalidArgument`] when the
    /// update changes nothing; vector and metadata errors as [`Shard::insert`].
    pub fn update(&self, id: &str, update: Update) -> Result<()> {
        if update.vector.is_none() && update.metadata.is_none() && update.text.is_none() {
            return Err(Error::InvalidArgument(
                "update needs a vector, metadata or text".into(),
            ));
        }
        if let Some(v) = &update.vector {
            self.check_vector(v)?;
        }
        let meta = metadata_json(update.metadata.as_ref())?;
        if let Some(t) = &update.text {
            if t.len() > MAX_TEXT_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "text of {} bytes, the limit is {MAX_TEXT_BYTES}",
                    t.len()
                )));
            }
        }
        self.write(|w| w.update(id, update, meta))
    }

    /// Deletes a live item, leaving a tombstone (causal length made even) for sync.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or already deleted id.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.write(|w| w.delete(id))
    }

    // ------------------------------------------------------------------ reads

    /// Fetches a live item by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or deleted id; [`Error::Corrupt`] for a stored vector
    /// of the wrong length.
    pub fn get(&self, id: &str) -> Result<Item> {
        let c = self.lock_conn();
        let row =
            c.db.prepare_cached(schema::GET_ITEM)?
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .optional()?;
        let (blob, meta, text) = row.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let blob = blob.ok_or_else(|| Error::Corrupt(format!("live item {id:?} has no vector")))?;
        let vector =
            codec::decode(&blob, self.profile.dimension).map_err(|e| corrupt_item(id, e))?;
        Ok(Item {
            id: id.to_string(),
            vector,
            metadata: parse_metadata(meta)?,
            text,
        })
    }

    /// Number of live items (as of the last catch-up; see [`Shard::refresh`]).
    pub fn len(&self) -> usize {
        self.read_state().arena.len()
    }

    /// `true` when the shard holds no live item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard's profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The shard file's path (`None` for in-memory shards).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The exact top-k items nearest to `query`, best first (ties broken by id, ascending).
    ///
    /// Scores are the metric's (see [`Metric`]): cosine similarity, dot product, or L2
    /// distance. With a filter, the result is the true top k among the items that match it.
    /// The scan reads the in-memory arena with the SIMD kernels chosen at start-up; only the k
    /// hits' metadata and text are read from SQLite.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`], [`Error::EmptyVector`], [`Error::NonFinite`],
    /// [`Error::ZeroVector`] (cosine) for a bad query; [`Error::InvalidArgument`] for `k` outside
    /// 1 ..= [`MAX_K`], `min_score` with L2, `max_distance` with cosine/dot, or a non-finite
    /// threshold.
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
        Ok(self.search_with_path(query, params)?.0)
    }

    /// [`Shard::search`], also saying which path the planner chose ([`index::plan`]): exact
    /// when the shard has no index, is small, the query sets [`SearchParams::exact`] or another
    /// metric than the shard's, or the filter matches few items; HNSW otherwise (approximate:
    /// recall@k below 1, tuned by [`SearchParams::ef_search`]).
    ///
    /// # Errors
    /// As [`Shard::search`]; also [`Error::InvalidArgument`] for `ef_search` outside
    /// 1 ..= [`MAX_EF_SEARCH`].
    pub fn search_with_path(
        &self,
        query: &[f32],
        params: &SearchParams,
    ) -> Result<(Vec<Hit>, SearchPath)> {
        let metric = params.metric.unwrap_or(self.profile.metric);
        self.check_search(query, params, metric)?;
        let q_norm = distance::norm(query);
        let q_inv = if q_norm > 0.0 { 1.0 / q_norm } else { 0.0 };
        for _attempt in 0..8 {
            self.catch_up_if_stale()?;
            let st = self.read_state();
            let filtered = match &params.filter {
                Some(f) if !f.is_empty() => Some(self.cached_filter_slots(&st, f)?),
                _ => None,
            };
            let (cands, path) =
                self.candidates(&st, metric, query, q_inv, params, filtered.as_deref())?;
            let c = self.lock_conn();
            let mut stmt = c.db.prepare_cached(schema::GET_HIT)?;
            let mut hits = Vec::with_capacity(cands.len());
            let mut vanished = false;
            for cand in cands {
                let score = match metric {
                    Metric::L2 => (-cand.score).max(0.0).sqrt(),
                    _ => cand.score,
                };
                if params.min_score.is_some_and(|m| score < m)
                    || params.max_distance.is_some_and(|m| score > m)
                {
                    break;
                }
                if !params.payload {
                    hits.push(Hit {
                        id: st.arena.id(cand.slot).to_string(),
                        score,
                        metadata: Value::Null,
                        text: None,
                    });
                    continue;
                }
                let row = stmt
                    .query_row([st.arena.rowid(cand.slot)], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    })
                    .optional()?;
                match row {
                    Some((id, meta, text)) => hits.push(Hit {
                        id,
                        score,
                        metadata: parse_metadata(meta)?,
                        text,
                    }),
                    None => {
                        // Deleted by another process between our check and this read.
                        vanished = true;
                        break;
                    }
                }
            }
            if !vanished {
                return Ok((hits, path));
            }
        }
        Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("search kept racing with concurrent deletes from another process".into()),
        )))
    }

    /// Full-text search: the top k live items by BM25 over their text and searchable metadata
    /// fields (SQLite FTS5 `bm25()`), best first. The query's words are OR-ed (any word may
    /// match; items matching more, and rarer, words rank higher); FTS5 query syntax in `text`
    /// is not interpreted, so any user text is safe. `score` is the BM25 score (larger is
    /// better; FTS5's `bm25()` negated); equal scores keep insertion order. `params.filter` and
    /// `params.min_score` apply; `metric` and `max_distance` do not.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a query without any word, one over 4 MiB, `k` outside
    /// 1 ..= [`MAX_K`], or a `metric` / `max_distance` in `params`.
    pub fn search_text(&self, text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        if params.k == 0 || params.k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k must be 1..={MAX_K}, got {}",
                params.k
            )));
        }
        if params.metric.is_some() || params.max_distance.is_some() {
            return Err(Error::InvalidArgument(
                "text search ranks by BM25: metric and max_distance do not apply".into(),
            ));
        }
        let words: Vec<crate::fts::QueryWord<'_>> = query_words(text)?
            .into_iter()
            .map(|w| crate::fts::QueryWord {
                text: w,
                folded: w.to_lowercase(),
            })
            .collect();
        let filter = params
            .filter
            .as_ref()
            .filter(|f| !f.is_empty())
            .map(|f| f.to_sql("metadata"));
        for _attempt in 0..8 {
            self.catch_up_if_stale()?;
            let st = self.read_state();
            let c = self.lock_conn();
            // One read snapshot for the ranking and the payloads, at the arena's version (another
            // process may have committed since the catch-up: then catch up again).
            let tx = ReadSnapshot::begin(&c.db)?;
            let dv: i64 =
                tx.0.prepare_cached("PRAGMA data_version")?
                    .query_row([], |r| r.get(0))?;
            if dv != st.data_version {
                continue;
            }
            let ranked = crate::fts::rank(
                tx.0,
                &crate::fts::RankInput {
                    version: st.last_seq,
                    n_live: st.arena.len() as i64,
                    k: params.k,
                    filter: filter.clone(),
                    words: &words,
                },
            )?;
            let mut get = tx.0.prepare_cached(schema::GET_HIT)?;
            let mut hits = Vec::with_capacity(ranked.len());
            for (rowid, score) in ranked {
                let score = score as f32;
                if params.min_score.is_some_and(|m| score < m) {
                    break;
                }
                // The FTS index holds exactly the live items of this snapshot, and so does the
                // arena: ids come from it; only payloads need SQLite.
                let Some(slot) = st.arena.slot(rowid) else {
                    return Err(Error::Corrupt(format!(
                        "text index row {rowid} has no live item"
                    )));
                };
                if !params.payload {
                    hits.push(Hit {
                        id: st.arena.id(slot).to_string(),
                        score,
                        metadata: Value::Null,
                        text: None,
                    });
                    continue;
                }
                let (meta, text) = get.query_row([rowid], |r| {
                    Ok((
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?;
                hits.push(Hit {
                    id: st.arena.id(slot).to_string(),
                    score,
                    metadata: parse_metadata(meta)?,
                    text,
                });
            }
            return Ok(hits);
        }
        Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("text search kept racing with writes from another process".into()),
        )))
    }

    /// Hybrid search: the vector ranking of `query` and the BM25 ranking of `text` (each the top
    /// `hybrid.candidates` among items matching `params.filter`) fused by reciprocal rank fusion
    /// (Cormack, Clarke & Büttcher, SIGIR 2009): an item scores
    /// `Σ weight / (rrf_k + rank)` over the rankings it appears in (rank from 1). Returns the top
    /// `params.k` by that score, equal scores ordered by the vector rank, then the id; `score` is
    /// the fused score. The two rankings carry ids only; metadata and text are read for the
    /// returned hits alone (when [`SearchParams::payload`] is set).
    ///
    /// # Errors
    /// As [`Shard::search`] and [`Shard::search_text`]; [`Error::InvalidArgument`] for
    /// non-positive `rrf_k`, negative weights, or `candidates` below `k`.
    pub fn search_hybrid(
        &self,
        query: &[f32],
        text: &str,
        params: &SearchParams,
        hybrid: &HybridParams,
    ) -> Result<Vec<Hit>> {
        hybrid.validate(params.k)?;
        let sub = SearchParams {
            k: hybrid.candidates,
            min_score: None,
            max_distance: None,
            payload: false,
            ..params.clone()
        };
        let by_vector = self.search(query, &sub)?;
        let by_text = self.search_text(
            text,
            &SearchParams {
                metric: None,
                ..sub
            },
        )?;
        // All fused hits, so that one deleted by another process since the rankings can be
        // replaced by the next.
        let fused = rrf_fuse(
            [
                (by_vector, hybrid.vector_weight),
                (by_text, hybrid.text_weight),
            ],
            hybrid.rrf_k,
            usize::MAX,
            params.min_score,
        );
        if !params.payload {
            return Ok(fused.into_iter().take(params.k).collect());
        }
        self.with_payloads(fused, params.k)
    }

    /// The first `k` of `hits` that are still live, with their metadata and text read from
    /// SQLite (one snapshot); hits deleted since their search are skipped.
    pub(crate) fn with_payloads(&self, hits: Vec<Hit>, k: usize) -> Result<Vec<Hit>> {
        const GET_PAYLOAD: &str =
            "SELECT json(metadata), text FROM items WHERE id = ?1 AND cl % 2 = 1";
        let c = self.lock_conn();
        let tx = ReadSnapshot::begin(&c.db)?;
        let mut get = tx.0.prepare_cached(GET_PAYLOAD)?;
        let mut out = Vec::with_capacity(k.min(hits.len()));
        for hit in hits {
            if out.len() == k {
                break;
            }
            let row = get
                .query_row([&hit.id], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                    ))
                })
                .optional()?;
            if let Some((meta, text)) = row {
                out.push(Hit {
                    metadata: parse_metadata(meta)?,
                    text,
                    ..hit
                });
            }
        }
        Ok(out)
    }

    /// The best `params.k` candidates (larger-is-better scores: cosine similarity, dot product,
    /// negated squared L2) by the path the planner picks.
    fn candidates(
        &self,
        st: &State,
        metric: Metric,
        query: &[f32],
        q_inv: f32,
        params: &SearchParams,
        filtered: Option<&Vec<u32>>,
    ) -> Result<(Vec<Candidate>, SearchPath)> {
        let ix = st
            .index
            .as_ref()
            .filter(|_| !params.exact && metric == self.profile.metric);
        let Some(ix) = ix else {
            let only = filtered.map(Vec::as_slice);
            let cands = self.exact_candidates(st, metric, query, q_inv, params.k, only)?;
            return Ok((cands, SearchPath::Exact));
        };
        let ef = params
            .ef_search
            .unwrap_or(ix.graph.params().ef_search)
            .max(params.k);
        let path = index::plan(&st.planner, st.arena.len(), filtered.map(Vec::len), ef);
        if path == SearchPath::Exact {
            let only = filtered.map(Vec::as_slice);
            let cands = self.exact_candidates(st, metric, query, q_inv, params.k, only)?;
            return Ok((cands, path));
        }
        // Filter by rowid (the graph's node ids): a bitset of the matching rows.
        let bits: Option<Vec<u64>> = filtered.map(|slots| {
            let rowids = slots.iter().map(|&s| st.arena.rowid(s) as usize);
            let bound = rowids.clone().max().map_or(0, |m| m + 1);
            let mut bits = vec![0u64; bound.div_ceil(64)];
            for r in rowids {
                bits[r / 64] |= 1 << (r % 64);
            }
            bits
        });
        let pass = |node: u32| {
            let n = node as usize;
            bits.as_ref()
                .is_some_and(|b| b.get(n / 64).is_some_and(|w| (w >> (n % 64)) & 1 == 1))
        };
        let filter: Option<&dyn Fn(u32) -> bool> = if bits.is_some() { Some(&pass) } else { None };
        let src = index::ArenaSource(&st.arena);
        let found = ix.graph.search(query, params.k, ef, &src, filter)?;
        let mut cands: Vec<Candidate> = found
            .into_iter()
            .filter_map(|(d, node)| {
                let slot = st.arena.slot(i64::from(node))?;
                let score = match metric {
                    Metric::Cosine => 1.0 - d,
                    Metric::Dot | Metric::L2 => -d,
                };
                Some(Candidate { score, slot })
            })
            .collect();
        // Same order as the exact path: score descending, ties by id.
        cands.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| st.arena.id(a.slot).cmp(st.arena.id(b.slot)))
        });
        Ok((cands, path))
    }

    /// The exact top k over all rows or the slots in `only`: the f32 scan, or, in a quantized
    /// shard, the int8 scan for the best [`rescore_depth`]`(k)` rows followed by f32 rescoring of
    /// those (vectors from the arena, or from SQLite when the arena keeps only codes). Scores
    /// and ties as in [`crate::arena::Arena::scan`].
    fn exact_candidates(
        &self,
        st: &State,
        metric: Metric,
        query: &[f32],
        q_inv: f32,
        k: usize,
        only: Option<&[u32]>,
    ) -> Result<Vec<Candidate>> {
        let Some(qz) = st.arena.quantizer() else {
            return Ok(st.arena.scan(self.kernels, metric, query, q_inv, k, only));
        };
        let prepared = PreparedQuery::new(qz, query, metric)?;
        let approx = st.arena.scan_int8(
            crate::distance::int8::Int8Kernels::best(),
            &prepared,
            rescore_depth(k),
            only,
        );
        let key = |slot: u32| st.arena.id(slot);
        let mut top = TopK::new(k, approx.len(), &key);
        let score = |slot: u32, v: &[f32]| match metric {
            Metric::Cosine => (self.kernels.dot)(query, v) * st.arena.inv_norm(slot) * q_inv,
            Metric::Dot => (self.kernels.dot)(query, v),
            Metric::L2 => -(self.kernels.l2sq)(query, v),
        };
        if st.arena.has_f32() {
            for h in approx {
                let s = score(h.row, st.arena.row(h.row));
                top.push(Candidate {
                    score: s,
                    slot: h.row,
                });
            }
        } else {
            let c = self.lock_conn();
            let mut stmt = c.db.prepare_cached(schema::GET_VECTOR)?;
            let mut v = Vec::with_capacity(self.profile.dimension);
            for h in approx {
                let blob: Option<Vec<u8>> = stmt
                    .query_row([st.arena.rowid(h.row)], |r| r.get(0))
                    .optional()?
                    .flatten();
                // A row deleted by another process since the catch-up: skipped here, and the
                // caller retries when the hits' payloads vanish.
                let Some(blob) = blob else { continue };
                codec::decode_into(&blob, self.profile.dimension, &mut v)
                    .map_err(|e| corrupt_item(st.arena.id(h.row), e))?;
                top.push(Candidate {
                    score: score(h.row, &v),
                    slot: h.row,
                });
            }
        }
        Ok(top.into_sorted())
    }

    fn check_search(&self, query: &[f32], params: &SearchParams, metric: Metric) -> Result<()> {
        if let Some(ef) = params.ef_search {
            if ef == 0 || ef > MAX_EF_SEARCH {
                return Err(Error::InvalidArgument(format!(
                    "ef_search must be 1..={MAX_EF_SEARCH}, got {ef}"
                )));
            }
        }
        codec::validate(query, Some(self.profile.dimension))?;
        if metric == Metric::Cosine && distance::norm(query) == 0.0 {
            return Err(Error::ZeroVector);
        }
        if params.k == 0 || params.k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k must be 1..={MAX_K}, got {}",
                params.k
            )));
        }
        if let Some(m) = params.min_score {
            if !m.is_finite() {
                return Err(Error::InvalidArgument("min_score must be finite".into()));
            }
            if metric == Metric::L2 {
                return Err(Error::InvalidArgument(
                    "min_score applies to cosine and dot; use max_distance with l2".into(),
                ));
            }
        }
        if let Some(m) = params.max_distance {
            if !m.is_finite() || m < 0.0 {
                return Err(Error::InvalidArgument(
                    "max_distance must be finite and ≥ 0".into(),
                ));
            }
            if metric != Metric::L2 {
                return Err(Error::InvalidArgument(
                    "max_distance applies to l2; use min_score with cosine or dot".into(),
                ));
            }
        }
        Ok(())
    }

    /// [`Shard::filter_slots`] through the cache of recent filters.
    fn cached_filter_slots(&self, st: &State, filter: &Filter) -> Result<Arc<Vec<u32>>> {
        {
            let mut cache = self
                .filter_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = cache
                .iter()
                .position(|(f, seq, _)| *seq == st.last_seq && f == filter)
            {
                let entry = cache.remove(i);
                let slots = entry.2.clone();
                cache.insert(0, entry);
                return Ok(slots);
            }
        }
        let slots = {
            let c = self.lock_conn();
            Arc::new(self.filter_slots(&c.db, &st.arena, filter)?)
        };
        let mut cache = self
            .filter_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.retain(|(_, seq, _)| *seq == st.last_seq);
        cache.insert(0, (filter.clone(), st.last_seq, slots.clone()));
        cache.truncate(FILTER_CACHE);
        Ok(slots)
    }

    /// Slots (ascending) of the live items matching `filter`.
    fn filter_slots(&self, db: &Connection, arena: &Arena, filter: &Filter) -> Result<Vec<u32>> {
        let (expr, values) = filter.to_sql("metadata");
        let sql = format!("SELECT rowid FROM items WHERE cl % 2 = 1 AND ({expr})");
        let mut stmt = db.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
        let mut slots = Vec::new();
        while let Some(r) = rows.next()? {
            if let Some(s) = arena.slot(r.get(0)?) {
                slots.push(s);
            }
        }
        slots.sort_unstable();
        Ok(slots)
    }

    /// Changes with a local version above `since`, oldest first, at most `limit` of them: the
    /// sync "changes since version V" query (served by the `items_seq` index).
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn changes_since(&self, since: i64, limit: usize) -> Result<Vec<Change>> {
        let c = self.lock_conn();
        let mut stmt = c.db.prepare_cached(
            "SELECT id, seq, hlc, site_id, cl FROM items WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since, limit as i64], |r| {
            Ok(Change {
                id: r.get(0)?,
                seq: r.get(1)?,
                hlc: r.get(2)?,
                site_id: hex(&r.get::<_, Vec<u8>>(3)?),
                causal_length: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Runs a read-only SQL statement on the shard's connection, where the functions of
    /// [`crate::sqlfn`] (`vec_distance_cosine`, `vec_distance_l2`, `vec_dot`, `vec_norm`) are
    /// registered, and returns all rows. Writes are refused: they would bypass the arena.
    ///
    /// ```
    /// use sqlite_vector::{Metric, NewItem, Profile, Shard};
    /// use rusqlite::types::Value;
    /// let shard = Shard::in_memory(&Profile::new(2, Metric::L2))?;
    /// shard.insert(NewItem::new(vec![3.0, 4.0]).with_id("p"))?;
    /// let rows = shard.query_sql("SELECT id, vec_norm(vector) FROM items", &[])?;
    /// assert_eq!(rows[0][1], Value::Real(5.0));
    /// # Ok::<(), sqlite_vector::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a statement that writes; [`Error::Sqlite`] for SQL errors
    /// (including the functions' errors, e.g. vectors of different lengths).
    pub fn query_sql(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>> {
        let c = self.lock_conn();
        let mut stmt = c.db.prepare(sql)?;
        if !stmt.readonly() {
            return Err(Error::InvalidArgument(
                "query_sql runs read-only statements; write through the Shard API".into(),
            ));
        }
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((0..n).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?);
        }
        Ok(out)
    }

    /// Runs SQLite's `PRAGMA integrity_check` and re-validates every stored vector's length.
    ///
    /// # Errors
    /// [`Error::Corrupt`] describing the first problem found.
    pub fn check_integrity(&self) -> Result<()> {
        let c = self.lock_conn();
        let res: String = c.db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if res != "ok" {
            return Err(Error::Corrupt(res));
        }
        let bad: Option<String> =
            c.db.query_row(
                "SELECT id FROM items WHERE cl % 2 = 1 AND \
                 (vector IS NULL OR length(vector) != ?1) LIMIT 1",
                [self.profile.dimension as i64 * 4],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = bad {
            return Err(Error::Corrupt(format!(
                "item {id:?} has a vector blob of the wrong length"
            )));
        }
        Ok(())
    }

    // ------------------------------------------------------------------ index

    /// Builds an HNSW index over the shard's live items (Malkov & Yashunin, arXiv:1603.09320;
    /// see [`crate::hnsw`]) and stores it in the shard (see [`crate::index`]); from then on
    /// every write maintains it in its own transaction and searches use it when the planner
    /// says so. Holds the write lock while building (about 0.3 ms per 384-d item with the
    /// default parameters on one core); searches wait.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for invalid `params`; [`Error::AlreadyExists`] when the shard
    /// already has an index (drop it first to change parameters); [`Error::Sqlite`] writing it.
    pub fn create_index(&self, params: HnswParams) -> Result<()> {
        params.validate()?;
        let mut st = self.write_state();
        let mut c = self.lock_conn();
        let tx =
            c.db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::catch_up(&tx, &mut st, self.profile.dimension)?;
        if st.index.is_some() {
            return Err(Error::AlreadyExists(
                "this shard's hnsw index (drop_index first to change its parameters)".into(),
            ));
        }
        if !st.arena.has_f32() {
            // An int8-only arena: the graph reads f32 rows, so load them (they stay while the
            // index exists).
            drop(tx);
            Self::load(&c.db, &mut st, &self.profile, true)?;
            drop(c);
            drop(st);
            return self.create_index(params);
        }
        let mut ix = ShardIndex::build(params, self.profile.metric, &st.arena, true)?;
        if self.profile.durability == Durability::Memory {
            ix.persist = false;
        } else {
            ix.create_in(&tx, st.last_seq)?;
        }
        tx.commit()?;
        st.index = Some(ix);
        Ok(())
    }

    /// Removes the shard's index (its tables too); searches scan exactly again. `false` when
    /// there was none.
    ///
    /// # Errors
    /// [`Error::Sqlite`] dropping the tables.
    pub fn drop_index(&self) -> Result<bool> {
        let mut st = self.write_state();
        let c = self.lock_conn();
        c.db.execute_batch(&format!("BEGIN IMMEDIATE; {} COMMIT;", index::DROP_TABLES))
            .inspect_err(|_| {
                let _ = c.db.execute_batch("ROLLBACK");
            })?;
        let had = st.index.take().is_some();
        if st.arena.quantizer().is_some() && st.arena.has_f32() {
            // Quantized and no graph left to feed: drop the f32 rows.
            Self::load(&c.db, &mut st, &self.profile, false)?;
        }
        Ok(had)
    }

    /// Sets how the exact path stores and scans vectors (see [`Quantization`]). `Int8` trains
    /// a per-dimension quantizer ([`crate::quant::Quantizer`]) on the shard's live vectors (all
    /// of them, up to 100,000 evenly spaced) and stores it in `meta`; later writes encode with
    /// it (values outside its trained range are clamped; call again after the data has changed
    /// a lot to retrain). `None` removes it. The arena is rebuilt from the file either way.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `Int8` on a shard without items (nothing to train on);
    /// [`Error::Sqlite`] writing `meta`.
    pub fn set_quantization(&self, quantization: Quantization) -> Result<()> {
        let mut st = self.write_state();
        let mut c = self.lock_conn();
        let tx =
            c.db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::catch_up(&tx, &mut st, self.profile.dimension)?;
        tx.execute("DELETE FROM meta WHERE key = 'quantizer'", [])?;
        if quantization == Quantization::Int8 {
            let dim = self.profile.dimension;
            let n = st.arena.len();
            if n == 0 {
                return Err(Error::InvalidArgument(
                    "int8 quantization trains on the shard's vectors: insert items first".into(),
                ));
            }
            let step = n.div_ceil(100_000);
            let mut sample = Vec::with_capacity(n.div_ceil(step) * dim);
            if st.arena.has_f32() {
                for slot in (0..n as u32).step_by(step) {
                    sample.extend_from_slice(st.arena.row(slot));
                }
            } else {
                let mut stmt = tx.prepare_cached(schema::GET_VECTOR)?;
                let mut v = Vec::with_capacity(dim);
                for slot in (0..n as u32).step_by(step) {
                    let blob: Vec<u8> = stmt.query_row([st.arena.rowid(slot)], |r| r.get(0))?;
                    codec::decode_into(&blob, dim, &mut v)?;
                    sample.extend_from_slice(&v);
                }
            }
            let qz = Quantizer::train(&sample, dim)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('quantizer', ?1)",
                [hex(&qz.to_bytes())],
            )?;
        }
        tx.commit()?;
        Self::load(&c.db, &mut st, &self.profile, false)
    }

    /// The shard's [`Quantization`].
    pub fn quantization(&self) -> Quantization {
        quantization_of(&self.read_state().arena)
    }

    /// The parameters of the shard's HNSW index, if it has one.
    pub fn index_params(&self) -> Option<HnswParams> {
        self.read_state()
            .index
            .as_ref()
            .map(|ix| *ix.graph.params())
    }

    /// Sets this handle's planner thresholds (see [`index::plan`]).
    pub fn set_planner(&self, planner: PlannerParams) {
        self.write_state().planner = planner;
    }

    /// This handle's planner thresholds.
    pub fn planner(&self) -> PlannerParams {
        self.read_state().planner
    }

    /// Counts and sizes of the shard.
    ///
    /// # Errors
    /// [`Error::Sqlite`] / [`Error::Io`] reading sizes.
    pub fn stats(&self) -> Result<Stats> {
        self.refresh()?;
        let st = self.read_state();
        let c = self.lock_conn();
        let tombstones: i64 =
            c.db.query_row("SELECT count(*) FROM items WHERE cl % 2 = 0", [], |r| {
                r.get(0)
            })?;
        let bytes_on_disk = match &self.path {
            Some(p) => {
                let main = std::fs::metadata(p)?.len();
                let mut wal = p.as_os_str().to_owned();
                wal.push("-wal");
                main + std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
            }
            None => c.db.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64,
        };
        let index_stats = st.index.as_ref().map(|ix| ix.stats(&st.planner));
        Ok(Stats {
            count: st.arena.len(),
            tombstones: tombstones as usize,
            dimension: self.profile.dimension,
            metric: self.profile.metric,
            durability: self.profile.durability,
            embedding_model: self.profile.embedding_model.clone(),
            bytes_on_disk,
            bytes_in_memory: st.arena.bytes_in_memory(),
            raw_vector_bytes: st.arena.raw_vector_bytes(),
            format_version: self.format_version,
            search_method: {
                let path = index_stats
                    .as_ref()
                    .map_or(SearchPath::Exact, |i| i.unfiltered_path);
                match (path, st.arena.quantizer()) {
                    (SearchPath::Exact, Some(_)) => format!(
                        "exact int8 ({}) + f32 rescoring",
                        crate::distance::int8::Int8Kernels::best().isa.name()
                    ),
                    _ => format!("{path} ({})", self.kernels.isa.name()),
                }
            },
            quantization: quantization_of(&st.arena),
            index: index_stats,
            site_id: hex(&self.site_id),
            version: st.last_seq,
        })
    }
}

/// One write transaction in progress.
struct Writer<'a> {
    tx: &'a Transaction<'a>,
    shard: &'a Shard,
    seq: i64,
    hlc: i64,
    rng: &'a mut u64,
    ops: Vec<Op>,
}

impl Writer<'_> {
    fn stamp(&mut self) -> (i64, i64) {
        self.seq += 1;
        self.hlc = now_hlc(self.hlc);
        (self.seq, self.hlc)
    }

    fn generate_id(&mut self) -> String {
        // xorshift64*: ids only need to be unique, and collisions are retried by the caller.
        let mut x = *self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *self.rng = x;
        format!("{:016x}", x.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }

    fn put(&mut self, item: NewItem, replace: bool) -> Result<String> {
        let generated = item.id.is_none();
        let mut id = match item.id {
            Some(id) => id,
            None => self.generate_id(),
        };
        let blob = codec::as_blob(&item.vector);
        let meta = metadata_json(item.metadata.as_ref())?;
        let (seq, hlc) = self.stamp();
        let site = &self.shard.site_id[..];
        let mut replaced = false;
        let rowid = loop {
            let r = self
                .tx
                .prepare_cached(schema::INSERT_ITEM)?
                .execute(params![id, blob, meta, item.text, hlc, site, seq]);
            match r {
                Ok(_) => break checked_new_rowid(self.tx.last_insert_rowid())?,
                Err(e) if is_unique_violation(&e) => {
                    let (rowid, cl): (i64, i64) = self
                        .tx
                        .prepare_cached(schema::FIND_BY_ID)?
                        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    let alive = cl % 2 == 1;
                    if alive && generated {
                        id = self.generate_id();
                        continue;
                    }
                    if alive && !replace {
                        return Err(Error::DuplicateId(id));
                    }
                    let new_cl = if alive { cl } else { cl + 1 };
                    self.tx
                        .prepare_cached(schema::OVERWRITE_ITEM)?
                        .execute(params![
                            rowid, new_cl, blob, meta, item.text, hlc, site, seq
                        ])?;
                    replaced = alive;
                    break rowid;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if replaced {
            self.tx
                .prepare_cached(schema::FTS_DELETE)?
                .execute([rowid])?;
        }
        self.index_text(rowid, item.text.as_deref(), item.metadata.as_ref())?;
        self.ops.push(Op::Put {
            rowid,
            id: id.clone(),
            vector: item.vector,
            vector_changed: true,
        });
        Ok(id)
    }

    /// Adds a row's text and searchable metadata values to the full-text index (nothing when
    /// both are empty).
    fn index_text(
        &mut self,
        rowid: i64,
        text: Option<&str>,
        metadata: Option<&Value>,
    ) -> Result<()> {
        let fields = searchable_values(&self.shard.profile.searchable_fields, metadata);
        let text = text.filter(|t| !t.trim().is_empty());
        if text.is_none() && fields.is_empty() {
            return Ok(());
        }
        self.tx
            .prepare_cached(schema::FTS_INSERT)?
            .execute(params![rowid, text, fields])?;
        Ok(())
    }

    fn update(&mut self, id: &str, update: Update, meta: Option<String>) -> Result<()> {
        let row = self
            .tx
            .prepare_cached(
                "SELECT rowid, cl, vector, json(metadata), text FROM items WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()?;
        let Some((rowid, cl, old_blob, old_meta, old_text)) = row.filter(|r| r.1 % 2 == 1) else {
            return Err(Error::NotFound(id.to_string()));
        };
        let dim = self.shard.profile.dimension;
        let vector_changed = update.vector.is_some();
        let vector = match update.vector {
            Some(v) => v,
            None => codec::decode(
                &old_blob
                    .ok_or_else(|| Error::Corrupt(format!("live item {id:?} has no vector")))?,
                dim,
            )
            .map_err(|e| corrupt_item(id, e))?,
        };
        let meta = if update.metadata.is_some() {
            meta
        } else {
            old_meta
        };
        let text = update.text.or(old_text);
        self.tx
            .prepare_cached(schema::FTS_DELETE)?
            .execute([rowid])?;
        let meta_value: Option<Value> = match &meta {
            Some(m) if !self.shard.profile.searchable_fields.is_empty() => {
                Some(serde_json::from_str(m)?)
            }
            _ => None,
        };
        self.index_text(rowid, text.as_deref(), meta_value.as_ref())?;
        let (seq, hlc) = self.stamp();
        self.tx
            .prepare_cached(schema::OVERWRITE_ITEM)?
            .execute(params![
                rowid,
                cl,
                codec::encode(&vector),
                meta,
                text,
                hlc,
                &self.shard.site_id[..],
                seq
            ])?;
        self.ops.push(Op::Put {
            rowid,
            id: id.to_string(),
            vector,
            vector_changed,
        });
        Ok(())
    }

    fn delete(&mut self, id: &str) -> Result<()> {
        let row: Option<(i64, i64)> = self
            .tx
            .prepare_cached(schema::FIND_BY_ID)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((rowid, cl)) = row.filter(|r| r.1 % 2 == 1) else {
            return Err(Error::NotFound(id.to_string()));
        };
        let (seq, hlc) = self.stamp();
        self.tx
            .prepare_cached(schema::FTS_DELETE)?
            .execute([rowid])?;
        self.tx
            .prepare_cached(schema::TOMBSTONE_ITEM)?
            .execute(params![rowid, cl + 1, hlc, &self.shard.site_id[..], seq])?;
        self.ops.push(Op::Remove { rowid });
        Ok(())
    }
}
