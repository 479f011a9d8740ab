//! The types of the shard API: items in and out, search parameters, hits, stats, and the input
//! checks every write path shares.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::change::SiteId;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::fusion::{FuseParams, Fusion};
use crate::index::{IndexStats, Quantization};
use crate::profile::{Durability, Metric};
#[allow(unused_imports)] // intra-doc links
use crate::Shard;

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

/// Parameters of [`Shard::search_hybrid`]: how the vector and BM25 rankings are fused (see
/// [`crate::fusion`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridParams {
    /// The method: distribution-based score fusion (default) or reciprocal rank fusion.
    pub fusion: Fusion,
    /// RRF's constant `k` (default 60, as in the RRF paper); only for [`Fusion::Rrf`].
    pub rrf_k: f32,
    /// Weight of the vector ranking (default 1).
    pub vector_weight: f32,
    /// Weight of the BM25 ranking (default 1).
    pub text_weight: f32,
    /// How many hits of each ranking are fused: at least this many (default 100), and at least
    /// the search's `k`.
    pub candidates: usize,
}

impl Default for HybridParams {
    fn default() -> Self {
        HybridParams {
            fusion: Fusion::Dbsf,
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
    /// non-finite weight, both weights 0, or `candidates` outside `1 ..= MAX_K`.
    pub fn validate(&self, k: usize) -> Result<()> {
        let finite_non_negative = |w: f32| w.is_finite() && w >= 0.0;
        let valid = self.rrf_k.is_finite()
            && self.rrf_k > 0.0
            && finite_non_negative(self.vector_weight)
            && finite_non_negative(self.text_weight)
            && self.vector_weight + self.text_weight > 0.0;
        if !valid {
            return Err(Error::InvalidArgument(
                "rrf_k must be > 0 and weights ≥ 0 (finite, not both 0)".into(),
            ));
        }
        if self.candidates == 0 || self.candidates > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "candidates must be 1..={MAX_K}, got {}",
                self.candidates
            )));
        }
        if k == 0 || k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k must be 1..={MAX_K}, got {k}"
            )));
        }
        Ok(())
    }

    /// The candidates taken from each ranking for a search of `k` hits.
    pub fn candidates_for(&self, k: usize) -> usize {
        self.candidates.max(k)
    }

    /// Checks these and `params` for a hybrid search and returns the parameters of its two
    /// rankings: the vector ranking's and the BM25 ranking's (the top
    /// [`HybridParams::candidates_for`]`(k)` under the filter, without payloads or thresholds).
    pub(crate) fn rankings(&self, params: &SearchParams) -> Result<(SearchParams, SearchParams)> {
        self.validate(params.k)?;
        if params.max_distance.is_some() {
            return Err(Error::InvalidArgument(
                "hybrid search ranks by a fused score: max_distance does not apply (use \
                 min_score on the fused score)"
                    .into(),
            ));
        }
        if params.min_score.is_some_and(|m| !m.is_finite()) {
            return Err(Error::InvalidArgument("min_score must be finite".into()));
        }
        let vector = SearchParams {
            k: self.candidates_for(params.k),
            min_score: None,
            max_distance: None,
            payload: false,
            ..params.clone()
        };
        let text = SearchParams {
            metric: None,
            ..vector.clone()
        };
        Ok((vector, text))
    }

    /// The parameters of [`crate::fusion::fuse`].
    pub fn fuse_params(&self) -> FuseParams {
        FuseParams {
            fusion: self.fusion,
            rrf_k: self.rrf_k,
            vector_weight: self.vector_weight,
            text_weight: self.text_weight,
        }
    }
}

/// The words of a text query (maximal runs of alphanumeric characters, at most 256). Each is
/// later quoted, so FTS5 syntax in the text (quotes, `*`, `NEAR`, `-`, `:`) is never
/// interpreted.
pub(crate) fn query_words(text: &str) -> Result<Vec<&str>> {
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

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// External id.
    pub id: String,
    /// Cosine similarity, dot product, or L2 distance, per the search's metric (see
    /// [`Metric`]); BM25 for text search; the fused score for hybrid search (see
    /// [`crate::fusion`]: with the default DBSF, 0 is the candidates' average and each standard
    /// deviation above it in a ranking adds 1).
    pub score: f32,
    /// Metadata object.
    pub metadata: Value,
    /// Text, if any.
    pub text: Option<String>,
    /// Hybrid search only: the two scores the fused one comes from (serialized inline as
    /// `vector_score` and `text_score`).
    #[serde(flatten)]
    pub hybrid: Option<HybridScores>,
}

/// The parts of a hybrid hit's fused score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HybridScores {
    /// The vector score in the search's metric: cosine similarity, dot product, or L2 distance.
    pub vector_score: f32,
    /// The BM25 score; `None` (`null`) when none of the query's words is in the item.
    pub text_score: Option<f32>,
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
    /// Bytes held by the in-memory text index (0 until a text query builds it: shards with
    /// at least 1,024 text rows; about 12 bytes per distinct word of each text).
    pub text_index_bytes: usize,
    /// Shard format version.
    pub format_version: u32,
    /// How an unfiltered search runs now, e.g. `exact (avx512f)` or `hnsw (avx512f)`.
    pub search_method: String,
    /// The HNSW index, if the shard has one.
    pub index: Option<IndexStats>,
    /// How the exact path stores vectors ([`Shard::set_quantization`]).
    pub quantization: Quantization,
    /// The site id of this shard.
    pub site_id: SiteId,
    /// Highest local version (`seq`).
    pub version: i64,
    /// Damaged derived data found when the shard was loaded, one sentence each with its
    /// repair (e.g. `index damaged: hnsw_state has no header row; …`); empty when none. The
    /// items are never affected: a damaged index means exact search, a damaged quantizer f32
    /// scans.
    pub damage: Vec<String>,
}

pub(crate) fn validate_id(id: &str) -> Result<()> {
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

pub(crate) fn metadata_json(m: Option<&Value>) -> Result<Option<String>> {
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

pub(crate) fn parse_metadata(s: Option<String>) -> Result<Value> {
    match s {
        None => Ok(Value::Object(Map::new())),
        Some(s) => Ok(serde_json::from_str(&s)?),
    }
}

/// The values of the searchable metadata `fields` (dotted paths) of `metadata`, joined by
/// spaces: strings as they are, numbers and booleans as text, arrays element by element.
pub(crate) fn searchable_values(fields: &[String], metadata: Option<&Value>) -> String {
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

/// Checks a vector for a shard of `profile`: dimension, finite components, and a non-zero
/// norm in a cosine shard.
pub(crate) fn check_vector(profile: &crate::Profile, v: &[f32]) -> Result<()> {
    crate::codec::validate(v, Some(profile.dimension))?;
    if profile.metric == Metric::Cosine && crate::distance::norm(v) == 0.0 {
        return Err(Error::ZeroVector);
    }
    Ok(())
}

/// Checks a text's length.
pub(crate) fn check_text(t: &str) -> Result<()> {
    if t.len() > MAX_TEXT_BYTES {
        return Err(Error::InvalidArgument(format!(
            "text of {} bytes, the limit is {MAX_TEXT_BYTES}",
            t.len()
        )));
    }
    Ok(())
}
