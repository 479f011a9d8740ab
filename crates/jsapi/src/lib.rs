//! The JavaScript-facing semantics of sqlite-vector, written once so that every JS binding (the
//! wasm-bindgen module in `crates/wasm`, a later napi-rs addon) behaves the same.
//!
//! A binding passes plain values across its boundary: vectors as `&[f32]`, everything else as
//! JSON text. This crate parses that JSON into the core's types ([`SearchParams`],
//! [`HybridParams`], [`HnswParams`], [`NewItem`], [`Update`], [`Filter`]), calls the core, and
//! renders results as JSON text with the field names of the MCP server's tool outputs (`HitOut`,
//! `GetOut`, `ShardStatsOut` in `crates/mcp/src/tools.rs`). Option names are the core's and the
//! MCP server's (ARCHITECTURE rule 12): `k`, `filter`, `min_score`, `max_distance`, `metric`,
//! `ef_search`, `exact`; hybrid search adds `fusion`, `rrf_k`, `vector_weight`, `text_weight`,
//! `candidates`; an index takes `m`, `ef_construction`, `ef_search`.
//!
//! There is no behaviour of its own: every range and rule (k, dimensions, finite values, ids,
//! metadata, filters) is checked by the core. Input this crate cannot even parse (malformed
//! JSON, an unknown option name, a value of the wrong JSON type, a batch buffer whose length is
//! not a multiple of its item count) is an [`JsError`] of kind `InvalidInput`, like the core's
//! own input errors. Every error carries `kind` = [`ErrorKind::as_str`].

#![warn(missing_docs)]

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;
use sqlite_vector::{
    Clock, ErrorKind, Filter, Fusion, Hit, HnswParams, HybridParams, IndexStats, Item, Metric,
    NewItem, OpenOptions, Profile, SearchParams, Shard, Stats, Update,
};

// ------------------------------------------------------------------ errors

/// An error as a JS binding throws it: the core's message and its [`ErrorKind`] name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsError {
    kind: &'static str,
    message: String,
}

impl JsError {
    /// An `InvalidInput` error with this message (input the binding could not parse).
    pub fn invalid_input(message: impl Into<String>) -> JsError {
        JsError {
            kind: ErrorKind::InvalidInput.as_str(),
            message: message.into(),
        }
    }

    /// An `Internal` error with this message (a bug: a caught panic, a broken invariant).
    pub fn internal(message: impl Into<String>) -> JsError {
        JsError {
            kind: ErrorKind::Internal.as_str(),
            message: message.into(),
        }
    }

    /// The kind: one of the [`ErrorKind::as_str`] names (`"InvalidInput"`, `"NotFound"`,
    /// `"AlreadyExists"`, `"ProfileMismatch"`, `"NotAShard"`, `"Busy"`, `"Corrupt"`, `"Io"`,
    /// `"Internal"`, `"UnknownShard"`).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The human-readable message (the core's `Display` text for core errors).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsError {}

impl From<sqlite_vector::Error> for JsError {
    fn from(e: sqlite_vector::Error) -> Self {
        JsError {
            kind: e.kind().as_str(),
            message: e.to_string(),
        }
    }
}

/// Result of every call in this crate.
pub type JsResult<T> = Result<T, JsError>;

/// A failure to parse the JSON text of `what` (syntax, unknown field, wrong type):
/// `InvalidInput` naming it.
fn invalid_json(what: &str, e: serde_json::Error) -> JsError {
    JsError::invalid_input(format!("invalid {what}: {e}"))
}

// ------------------------------------------------------------------ option objects
//
// The option structs below were `#[derive(Deserialize)] #[serde(deny_unknown_fields)]`; each
// derive instantiated serde_json's struct parser once more with every field's parsing inlined
// (7 copies, ~17 KB of wasm before wasm-opt). One table-driven visitor replaces them: the same
// field names, the same per-field parsing (`Option<usize>`, `Option<f32>`, … through serde),
// so the same error messages with the same positions (`unknown field `x`, expected one of …`,
// `duplicate field …`, `invalid type: string "3", expected usize at line 1 column 8`), `null`
// for an absent field. The one difference: a JSON array is no longer read as the struct's
// fields in order (serde's derive accepted `[3, null, …]`); it is `invalid type: sequence`.

/// How one field is parsed: the type its derive had (every field was an `Option`).
#[derive(Clone, Copy)]
enum Ty {
    Usize,
    F32,
    Bool,
    Str,
    Strs,
    Any,
}

/// A parsed field value.
enum Field {
    Usize(usize),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    Any(Value),
}

/// The fields of one option object: its struct name (serde's `expected struct X`) and field
/// names with their types.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    names: &'static [&'static str],
    types: &'static [Ty],
}

/// The fields parsed, indexed like [`Shape::names`] (`None`: absent or `null`).
struct Fields(Vec<Option<Field>>);

impl Fields {
    fn take(&mut self, i: usize) -> Option<Field> {
        self.0[i].take()
    }
    fn usize(&mut self, i: usize) -> Option<usize> {
        match self.take(i) {
            Some(Field::Usize(v)) => Some(v),
            _ => None,
        }
    }
    fn f32(&mut self, i: usize) -> Option<f32> {
        match self.take(i) {
            Some(Field::F32(v)) => Some(v),
            _ => None,
        }
    }
    fn bool(&mut self, i: usize) -> Option<bool> {
        match self.take(i) {
            Some(Field::Bool(v)) => Some(v),
            _ => None,
        }
    }
    fn string(&mut self, i: usize) -> Option<String> {
        match self.take(i) {
            Some(Field::Str(v)) => Some(v),
            _ => None,
        }
    }
    fn strings(&mut self, i: usize) -> Option<Vec<String>> {
        match self.take(i) {
            Some(Field::Strs(v)) => Some(v),
            _ => None,
        }
    }
    fn value(&mut self, i: usize) -> Option<Value> {
        match self.take(i) {
            Some(Field::Any(v)) => Some(v),
            _ => None,
        }
    }
}

impl<'de> Visitor<'de> for Shape {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {}", self.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let n = self.names.len();
        let mut out: Vec<Option<Field>> = (0..n).map(|_| None).collect();
        let mut seen = vec![false; n];
        while let Some(key) = map.next_key::<String>()? {
            let Some(i) = self.names.iter().position(|&f| f == key) else {
                return Err(de::Error::unknown_field(&key, self.names));
            };
            if seen[i] {
                return Err(de::Error::duplicate_field(self.names[i]));
            }
            seen[i] = true;
            out[i] = match self.types[i] {
                Ty::Usize => map.next_value::<Option<usize>>()?.map(Field::Usize),
                Ty::F32 => map.next_value::<Option<f32>>()?.map(Field::F32),
                Ty::Bool => map.next_value::<Option<bool>>()?.map(Field::Bool),
                Ty::Str => map.next_value::<Option<String>>()?.map(Field::Str),
                Ty::Strs => map.next_value::<Option<Vec<String>>>()?.map(Field::Strs),
                Ty::Any => map.next_value::<Option<Value>>()?.map(Field::Any),
            };
        }
        Ok(Fields(out))
    }
}

impl<'de> DeserializeSeed<'de> for Shape {
    type Value = Fields;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(self)
    }
}

/// A JSON array of objects of one shape (serde's `Vec<T>`: `expected a sequence`).
struct ArrayOf(Shape);

impl<'de> Visitor<'de> for ArrayOf {
    type Value = Vec<Fields>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Fields>, A::Error> {
        let mut out = Vec::new();
        while let Some(fields) = seq.next_element_seed(self.0)? {
            out.push(fields);
        }
        Ok(out)
    }
}

/// Parses `json` (all of it, as `serde_json::from_str`) with `visit`; errors as [`invalid_json`].
fn parse_with<'a, V: Visitor<'a>>(
    what: &str,
    json: &'a str,
    visit: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
    ) -> serde_json::Result<V::Value>,
) -> JsResult<V::Value> {
    let mut de = serde_json::Deserializer::from_str(json);
    visit(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| invalid_json(what, e))
}

/// Parses one option object of `shape`.
fn parse_fields(what: &str, json: &str, shape: Shape) -> JsResult<Fields> {
    parse_with::<Shape>(what, json, |de| {
        de::Deserializer::deserialize_map(de, shape)
    })
}

const OPEN_OPTIONS: Shape = Shape {
    name: "OpenOptionsJson",
    names: &["searchable", "embedding_model"],
    types: &[Ty::Strs, Ty::Str],
};

const STORE_OPTIONS: Shape = Shape {
    name: "StoreOptionsJson",
    names: &["dim", "metric", "searchable", "embedding_model"],
    types: &[Ty::Usize, Ty::Str, Ty::Strs, Ty::Str],
};

const SEARCH_OPTIONS: Shape = Shape {
    name: "SearchOptions",
    names: &[
        "k",
        "filter",
        "min_score",
        "max_distance",
        "metric",
        "ef_search",
        "exact",
    ],
    types: &[
        Ty::Usize,
        Ty::Any,
        Ty::F32,
        Ty::F32,
        Ty::Str,
        Ty::Usize,
        Ty::Bool,
    ],
};

const HYBRID_OPTIONS: Shape = Shape {
    name: "HybridOptions",
    names: &[
        "k",
        "filter",
        "min_score",
        "max_distance",
        "metric",
        "ef_search",
        "exact",
        "fusion",
        "rrf_k",
        "vector_weight",
        "text_weight",
        "candidates",
    ],
    types: &[
        Ty::Usize,
        Ty::Any,
        Ty::F32,
        Ty::F32,
        Ty::Str,
        Ty::Usize,
        Ty::Bool,
        Ty::Str,
        Ty::F32,
        Ty::F32,
        Ty::F32,
        Ty::Usize,
    ],
};

const INDEX_OPTIONS: Shape = Shape {
    name: "IndexOptions",
    names: &["m", "ef_construction", "ef_search"],
    types: &[Ty::Usize, Ty::Usize, Ty::Usize],
};

const ITEM: Shape = Shape {
    name: "ItemJson",
    names: &["id", "metadata", "text"],
    types: &[Ty::Str, Ty::Any, Ty::Str],
};

const PATCH: Shape = Shape {
    name: "PatchJson",
    names: &["metadata", "text"],
    types: &[Ty::Any, Ty::Str],
};

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs of strings, numbers and `Value`s cannot fail.
    serde_json::to_string(value).expect("JSON output")
}

// ------------------------------------------------------------------ options in

/// Options of [`Db::open`] beyond the dimension and metric (JSON object, every field optional).
#[derive(Debug, Default)]
pub struct OpenOptionsJson {
    /// Metadata fields (dotted paths) indexed for keyword search with the text (the MCP
    /// server's `shard_create` name).
    pub searchable: Option<Vec<String>>,
    /// The model whose vectors the shard holds, recorded in its profile.
    pub embedding_model: Option<String>,
}

impl OpenOptionsJson {
    fn parse(json: &str) -> JsResult<OpenOptionsJson> {
        let mut f = parse_fields("open options", json, OPEN_OPTIONS)?;
        Ok(OpenOptionsJson {
            searchable: f.strings(0),
            embedding_model: f.string(1),
        })
    }
}

/// Options of a persistent store ([`Db::open_file`]; JSON object, every field optional).
#[derive(Debug, Default)]
pub struct StoreOptionsJson {
    /// The dimension: required to create the store; checked against an existing one.
    pub dim: Option<usize>,
    /// The metric (default `cosine` for a new store); checked against an existing one.
    pub metric: Option<String>,
    /// As [`OpenOptionsJson::searchable`] (a new store only).
    pub searchable: Option<Vec<String>>,
    /// As [`OpenOptionsJson::embedding_model`] (a new store only).
    pub embedding_model: Option<String>,
}

impl StoreOptionsJson {
    fn parse(json: &str) -> JsResult<StoreOptionsJson> {
        let mut f = parse_fields("open options", json, STORE_OPTIONS)?;
        Ok(StoreOptionsJson {
            dim: f.usize(0),
            metric: f.string(1),
            searchable: f.strings(2),
            embedding_model: f.string(3),
        })
    }

    /// Checks an existing shard against the dimension and metric given.
    fn check(&self, shard: &Shard) -> JsResult<()> {
        let have = shard.profile();
        if let Some(dim) = self.dim.filter(|&d| d != have.dimension) {
            return Err(mismatch("dimension", dim, have.dimension));
        }
        if let Some(metric) = &self.metric {
            let metric: Metric = metric.parse()?;
            if metric != have.metric {
                return Err(mismatch("metric", metric, have.metric));
            }
        }
        Ok(())
    }
}

fn mismatch(field: &'static str, asked: impl fmt::Display, have: impl fmt::Display) -> JsError {
    sqlite_vector::Error::ProfileMismatch {
        field,
        shard: have.to_string(),
        requested: asked.to_string(),
    }
    .into()
}

/// Builds the profile of a new shard from `dim`, a metric name (`cosine`, `l2`, `dot` and the
/// core's aliases) and [`OpenOptionsJson`] text.
///
/// # Errors
/// `InvalidInput` for malformed options, an unknown metric, or a profile the core refuses
/// (dimension 0 or above [`sqlite_vector::MAX_DIMENSION`]).
pub fn profile(dim: usize, metric: &str, options_json: &str) -> JsResult<Profile> {
    new_profile(dim, metric, OpenOptionsJson::parse(options_json)?)
}

/// [`profile`] from parsed options.
fn new_profile(dim: usize, metric: &str, options: OpenOptionsJson) -> JsResult<Profile> {
    let metric: Metric = metric.parse()?;
    let mut profile = Profile::new(dim, metric);
    if let Some(model) = options.embedding_model {
        profile = profile.with_embedding_model(model);
    }
    if let Some(fields) = options.searchable {
        profile = profile.with_searchable_fields(fields);
    }
    profile.validate()?;
    Ok(profile)
}

/// Options of a vector or text search (JSON object, every field optional). Defaults are the
/// core's [`SearchParams::default`] (k = 10, the shard's metric, no filter, the index's
/// `ef_search`, index allowed).
#[derive(Debug, Default)]
pub struct SearchOptions {
    /// Number of hits, 1 ..= 10,000.
    pub k: Option<usize>,
    /// Metadata filter, e.g. `{"lang": "rust", "stars": {"$gte": 3}}`.
    pub filter: Option<Value>,
    /// Keep hits scoring at least this (cosine and dot similarity, BM25 for text search).
    pub min_score: Option<f32>,
    /// Keep hits at most this L2 distance away (l2 shards).
    pub max_distance: Option<f32>,
    /// Metric of this search (`cosine`, `l2`, `dot`) instead of the shard's.
    pub metric: Option<String>,
    /// HNSW beam width of this search (shards with an index).
    pub ef_search: Option<usize>,
    /// Scan exactly even when the shard has an index.
    pub exact: Option<bool>,
}

impl SearchOptions {
    /// Parses options JSON text.
    ///
    /// # Errors
    /// `InvalidInput` for malformed JSON, unknown fields or values of the wrong type.
    pub fn parse(json: &str) -> JsResult<SearchOptions> {
        let mut f = parse_fields("search options", json, SEARCH_OPTIONS)?;
        Ok(SearchOptions {
            k: f.usize(0),
            filter: f.value(1),
            min_score: f.f32(2),
            max_distance: f.f32(3),
            metric: f.string(4),
            ef_search: f.usize(5),
            exact: f.bool(6),
        })
    }

    /// The core's search parameters.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed filter or an unknown metric.
    pub fn params(&self) -> JsResult<SearchParams> {
        let mut params = SearchParams::default();
        if let Some(k) = self.k {
            params.k = k;
        }
        params.min_score = self.min_score;
        params.max_distance = self.max_distance;
        params.ef_search = self.ef_search;
        params.exact = self.exact.unwrap_or(false);
        if let Some(m) = &self.metric {
            params.metric = Some(m.parse::<Metric>()?);
        }
        if let Some(f) = &self.filter {
            params.filter = Some(Filter::parse(f)?);
        }
        Ok(params)
    }
}

/// Options of a hybrid search: those of [`SearchOptions`] plus the fusion's (JSON object, every
/// field optional; defaults are [`HybridParams::default`]).
#[derive(Debug, Default)]
pub struct HybridOptions {
    /// As [`SearchOptions::k`].
    pub k: Option<usize>,
    /// As [`SearchOptions::filter`].
    pub filter: Option<Value>,
    /// Keep hits whose fused score is at least this.
    pub min_score: Option<f32>,
    /// Refused by the core for hybrid search (accepted here so the core says why).
    pub max_distance: Option<f32>,
    /// As [`SearchOptions::metric`] (the vector ranking's metric).
    pub metric: Option<String>,
    /// As [`SearchOptions::ef_search`].
    pub ef_search: Option<usize>,
    /// As [`SearchOptions::exact`].
    pub exact: Option<bool>,
    /// `dbsf` (default) or `rrf`.
    pub fusion: Option<String>,
    /// RRF's constant (default 60; `rrf` only).
    pub rrf_k: Option<f32>,
    /// Weight of the vector ranking (default 1).
    pub vector_weight: Option<f32>,
    /// Weight of the BM25 ranking (default 1).
    pub text_weight: Option<f32>,
    /// Candidates taken from each ranking (default 100, at least `k`).
    pub candidates: Option<usize>,
}

impl HybridOptions {
    /// Parses options JSON text.
    ///
    /// # Errors
    /// `InvalidInput` for malformed JSON, unknown fields or values of the wrong type.
    pub fn parse(json: &str) -> JsResult<HybridOptions> {
        let mut f = parse_fields("hybrid search options", json, HYBRID_OPTIONS)?;
        Ok(HybridOptions {
            k: f.usize(0),
            filter: f.value(1),
            min_score: f.f32(2),
            max_distance: f.f32(3),
            metric: f.string(4),
            ef_search: f.usize(5),
            exact: f.bool(6),
            fusion: f.string(7),
            rrf_k: f.f32(8),
            vector_weight: f.f32(9),
            text_weight: f.f32(10),
            candidates: f.usize(11),
        })
    }

    /// The core's search and fusion parameters.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed filter, an unknown metric or fusion.
    pub fn params(&self) -> JsResult<(SearchParams, HybridParams)> {
        let search = SearchOptions {
            k: self.k,
            filter: self.filter.clone(),
            min_score: self.min_score,
            max_distance: self.max_distance,
            metric: self.metric.clone(),
            ef_search: self.ef_search,
            exact: self.exact,
        }
        .params()?;
        let mut hybrid = HybridParams::default();
        if let Some(f) = &self.fusion {
            hybrid.fusion = f.parse::<Fusion>()?;
        }
        if let Some(v) = self.rrf_k {
            hybrid.rrf_k = v;
        }
        if let Some(v) = self.vector_weight {
            hybrid.vector_weight = v;
        }
        if let Some(v) = self.text_weight {
            hybrid.text_weight = v;
        }
        if let Some(v) = self.candidates {
            hybrid.candidates = v;
        }
        Ok((search, hybrid))
    }
}

/// Parameters of [`Db::create_index`] (JSON object, every field optional; defaults are
/// [`HnswParams::default`]: m 16, ef_construction 200, ef_search 64).
#[derive(Debug, Default)]
pub struct IndexOptions {
    /// Neighbours per node (`M`).
    pub m: Option<usize>,
    /// Beam width while building.
    pub ef_construction: Option<usize>,
    /// Default beam width of searches that do not set one.
    pub ef_search: Option<usize>,
}

impl IndexOptions {
    /// Parses options JSON text into the core's HNSW parameters (ranges are the core's, checked
    /// when the index is built).
    ///
    /// # Errors
    /// `InvalidInput` for malformed JSON, unknown fields or values of the wrong type.
    pub fn parse(json: &str) -> JsResult<HnswParams> {
        let mut f = parse_fields("index options", json, INDEX_OPTIONS)?;
        let o = IndexOptions {
            m: f.usize(0),
            ef_construction: f.usize(1),
            ef_search: f.usize(2),
        };
        let mut p = HnswParams::default();
        if let Some(m) = o.m {
            p.m = m;
        }
        if let Some(v) = o.ef_construction {
            p.ef_construction = v;
        }
        if let Some(v) = o.ef_search {
            p.ef_search = v;
        }
        Ok(p)
    }
}

/// An item's fields besides its vector (JSON object, every field optional).
#[derive(Debug, Default)]
pub struct ItemJson {
    /// External id (1-512 bytes, no control characters); absent: generated.
    pub id: Option<String>,
    /// Metadata: a JSON object (`null` or absent: `{}`).
    pub metadata: Option<Value>,
    /// Text, indexed for keyword search.
    pub text: Option<String>,
}

impl ItemJson {
    fn from_fields(mut f: Fields) -> ItemJson {
        ItemJson {
            id: f.string(0),
            metadata: f.value(1),
            text: f.string(2),
        }
    }

    fn into_item(self, vector: Vec<f32>) -> NewItem {
        NewItem {
            id: self.id,
            vector,
            metadata: self.metadata,
            text: self.text,
        }
    }
}

/// Parses one item's JSON and pairs it with `vector`.
///
/// # Errors
/// `InvalidInput` for malformed JSON, unknown fields or values of the wrong type.
pub fn new_item(vector: &[f32], item_json: &str) -> JsResult<NewItem> {
    let item = ItemJson::from_fields(parse_fields("item", item_json, ITEM)?);
    Ok(item.into_item(vector.to_vec()))
}

/// Parses a JSON array of `n` items and pairs item `i` with row `i` of `flat`, an `n × dim`
/// row-major buffer (`dim = flat.len() / n`; the core then checks it against the shard's).
///
/// # Errors
/// `InvalidInput` for malformed JSON, or a buffer whose length is not a multiple of `n` (or is
/// not empty when `n` is 0).
pub fn new_items(flat: &[f32], items_json: &str) -> JsResult<Vec<NewItem>> {
    let items = parse_with::<ArrayOf>("items (a JSON array of items)", items_json, |de| {
        de::Deserializer::deserialize_seq(de, ArrayOf(ITEM))
    })?;
    let n = items.len();
    if n == 0 {
        if !flat.is_empty() {
            return Err(JsError::invalid_input(format!(
                "no items but {} vector values",
                flat.len()
            )));
        }
        return Ok(Vec::new());
    }
    if !flat.len().is_multiple_of(n) {
        return Err(JsError::invalid_input(format!(
            "{} vector values for {n} items: the buffer must hold n × dim values",
            flat.len()
        )));
    }
    let dim = flat.len() / n;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            ItemJson::from_fields(item).into_item(flat[i * dim..(i + 1) * dim].to_vec())
        })
        .collect())
}

/// The fields of an update besides its vector (JSON object, every field optional).
#[derive(Debug, Default)]
pub struct PatchJson {
    /// New metadata object (replaces the old one whole).
    pub metadata: Option<Value>,
    /// New text.
    pub text: Option<String>,
}

/// Builds an [`Update`] from an optional new vector and patch JSON.
///
/// # Errors
/// `InvalidInput` for malformed JSON, unknown fields or values of the wrong type.
pub fn update(vector: Option<Vec<f32>>, patch_json: &str) -> JsResult<Update> {
    let mut f = parse_fields("update", patch_json, PATCH)?;
    Ok(Update {
        vector,
        metadata: f.value(0),
        text: f.string(1),
    })
}

// ------------------------------------------------------------------ results out

/// One search hit (the MCP server's `HitOut`, without `shard`).
#[derive(Debug, Serialize)]
pub struct HitOut {
    /// The item's id.
    pub id: String,
    /// Similarity (cosine, dot), L2 distance, BM25 (text) or the fused score (hybrid).
    pub score: f32,
    /// Hybrid only: the vector score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f32>,
    /// Hybrid only: the BM25 score; `null` when none of the query's words is in the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_score: Option<Option<f32>>,
    /// The item's metadata object.
    pub metadata: Value,
    /// The item's text (`null` when none).
    pub text: Option<String>,
}

impl From<Hit> for HitOut {
    fn from(h: Hit) -> Self {
        HitOut {
            vector_score: h.hybrid.map(|p| p.vector_score),
            text_score: h.hybrid.map(|p| p.text_score),
            id: h.id,
            score: h.score,
            metadata: h.metadata,
            text: h.text,
        }
    }
}

/// Hits as a JSON array of [`HitOut`], best first.
pub fn hits_json(hits: Vec<Hit>) -> String {
    to_json(&hits.into_iter().map(HitOut::from).collect::<Vec<_>>())
}

/// A stored item (the MCP server's `GetOut`, always with its vector).
#[derive(Debug, Serialize)]
pub struct GetOut {
    /// The item's id.
    pub id: String,
    /// The item's metadata object.
    pub metadata: Value,
    /// The item's text (`null` when none).
    pub text: Option<String>,
    /// The stored vector.
    pub vector: Vec<f32>,
}

/// An item as JSON text ([`GetOut`]).
pub fn item_json(item: Item) -> String {
    to_json(&GetOut {
        id: item.id,
        metadata: item.metadata,
        text: item.text,
        vector: item.vector,
    })
}

/// A shard's numbers (the MCP server's `ShardStatsOut`, flattened: the shard description's
/// `dim`, `metric`, `embedding_model`, then the core's [`Stats`] fields that mean something to
/// a JS caller).
#[derive(Debug, Serialize)]
pub struct StatsOut {
    /// Vector dimension.
    pub dim: usize,
    /// `cosine`, `l2` or `dot`.
    pub metric: &'static str,
    /// The model whose vectors the shard holds (`null` for raw vectors).
    pub embedding_model: Option<String>,
    /// Live items.
    pub count: usize,
    /// Deleted items kept as tombstones.
    pub tombstones: usize,
    /// Bytes of the database (SQLite's pages for in-memory shards).
    pub bytes_on_disk: u64,
    /// Bytes held by the in-memory arena.
    pub bytes_in_memory: usize,
    /// How an unfiltered search runs now, e.g. `exact (simd128)` or `hnsw (simd128)`.
    pub search_method: String,
    /// The HNSW index, if any.
    pub index: Option<IndexStats>,
    /// `memory`, `normal` or `full`.
    pub durability: &'static str,
    /// Shard format version.
    pub format_version: u32,
    /// Damaged derived data found at load, one sentence each (empty when none).
    pub damage: Vec<String>,
}

/// Stats as JSON text ([`StatsOut`]).
pub fn stats_json(s: Stats) -> String {
    to_json(&StatsOut {
        dim: s.dimension,
        metric: s.metric.as_str(),
        embedding_model: s.embedding_model,
        count: s.count,
        tombstones: s.tombstones,
        bytes_on_disk: s.bytes_on_disk,
        bytes_in_memory: s.bytes_in_memory,
        search_method: s.search_method,
        index: s.index,
        durability: s.durability.as_str(),
        format_version: s.format_version,
        damage: s.damage,
    })
}

// ------------------------------------------------------------------ the handle

/// One in-memory shard behind a JS handle: every method takes and returns what crosses a JS
/// boundary (vectors as `f32` slices, the rest as JSON text).
pub struct Db {
    /// Shared with a shard manager for its shards (the Node addon's `Manager`), else the
    /// only handle.
    shard: Option<Arc<Shard>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("profile", &self.shard.as_ref().map(|s| s.profile()))
            .finish()
    }
}

impl Db {
    /// Creates an empty in-memory shard of `dim` dimensions and `metric`, with
    /// [`OpenOptionsJson`] text; `clock` stamps its changes (required on wasm32, which has no
    /// system clock; `None` natively uses the system clock).
    ///
    /// # Errors
    /// As [`profile`]; the core's errors of [`Shard::in_memory_with`].
    pub fn in_memory(
        dim: usize,
        metric: &str,
        options_json: &str,
        clock: Option<Arc<dyn Clock>>,
    ) -> JsResult<Db> {
        let profile = profile(dim, metric, options_json)?;
        let mut options = OpenOptions::default();
        if let Some(clock) = clock {
            options = options.with_clock(clock);
        }
        Ok(Db {
            shard: Some(Arc::new(Shard::in_memory_with(&profile, &options)?)),
        })
    }

    /// Opens the shard file at `path` (created when `create` is true and nothing is there)
    /// with [`StoreOptionsJson`] text; `clock` as in [`Db::in_memory`]. The file uses the
    /// target's default journal ([`sqlite_vector::Journal`]: a rollback journal on wasm32).
    /// An existing shard must match the dimension and metric given (those left out are the
    /// shard's); creating one needs `dim`.
    ///
    /// # Errors
    /// `InvalidInput` for malformed options, or for a missing shard without `dim`;
    /// `ProfileMismatch` when an existing shard's dimension or metric differs; `NotFound` for
    /// a missing shard when `create` is false; the core's errors of opening and creating
    /// (`NotAShard`, `Corrupt`, …).
    pub fn open_file(
        path: &std::path::Path,
        options_json: &str,
        clock: Option<Arc<dyn Clock>>,
        exists: bool,
    ) -> JsResult<Db> {
        let store = StoreOptionsJson::parse(options_json)?;
        let mut options = OpenOptions::default();
        if let Some(clock) = clock {
            options = options.with_clock(clock);
        }
        let shard = if exists {
            let shard = Shard::open_with_options(path, &options)?;
            store.check(&shard)?;
            shard
        } else {
            let dim = store
                .dim
                .ok_or_else(|| JsError::invalid_input("dim is required to create a new store"))?;
            let metric = store.metric.as_deref().unwrap_or("cosine");
            let extra = OpenOptionsJson {
                searchable: store.searchable,
                embedding_model: store.embedding_model,
            };
            let profile = new_profile(dim, metric, extra)?;
            Shard::create_with(path, &profile, &options)?
        };
        Ok(Db {
            shard: Some(Arc::new(shard)),
        })
    }

    /// Opens a shard image (the bytes of a shard file, as [`Db::export`] returns them) as an
    /// in-memory shard; `options_json` as in [`Db::open_file`] (a `dim` or `metric` given must
    /// be the image's); `clock` as in [`Db::in_memory`].
    ///
    /// # Errors
    /// `InvalidInput` for malformed options; `ProfileMismatch`; the core's errors of
    /// [`Shard::from_image`]: `NotAShard` for bytes that are not a shard, `Corrupt`,
    /// `InvalidInput` above [`sqlite_vector::MAX_IMAGE_BYTES`].
    pub fn from_image(
        image: &[u8],
        options_json: &str,
        clock: Option<Arc<dyn Clock>>,
    ) -> JsResult<Db> {
        let store = StoreOptionsJson::parse(options_json)?;
        let mut options = OpenOptions::default();
        if let Some(clock) = clock {
            options = options.with_clock(clock);
        }
        let shard = Shard::from_image(image, &options)?;
        store.check(&shard)?;
        Ok(Db {
            shard: Some(Arc::new(shard)),
        })
    }

    /// The shard as the bytes of one self-contained shard file (see [`Shard::to_image`]).
    ///
    /// # Errors
    /// `InvalidInput` after [`Db::close`]; the core's errors of [`Shard::to_image`].
    pub fn export(&self) -> JsResult<Vec<u8>> {
        Ok(self.shard()?.to_image()?)
    }

    fn shard(&self) -> JsResult<&Shard> {
        self.shard
            .as_deref()
            .ok_or_else(|| JsError::invalid_input("the database is closed"))
    }

    /// The shard's dimension.
    ///
    /// # Errors
    /// `InvalidInput` after [`Db::close`].
    pub fn dim(&self) -> JsResult<usize> {
        Ok(self.shard()?.profile().dimension)
    }

    /// Inserts one item; returns its id.
    ///
    /// # Errors
    /// As [`new_item`]; the core's (`InvalidInput` for a bad vector, id or metadata,
    /// `AlreadyExists` for a live id).
    pub fn insert(&self, vector: &[f32], item_json: &str) -> JsResult<String> {
        let item = new_item(vector, item_json)?;
        Ok(self.shard()?.insert(item)?)
    }

    /// Inserts or replaces one item; returns its id.
    ///
    /// # Errors
    /// As [`Db::insert`], without `AlreadyExists`.
    pub fn upsert(&self, vector: &[f32], item_json: &str) -> JsResult<String> {
        let item = new_item(vector, item_json)?;
        Ok(self.shard()?.upsert(item)?)
    }

    /// Inserts `n` items in one transaction (all or none): `flat` holds `n × dim` values,
    /// `items_json` a JSON array of `n` [`ItemJson`]. Returns the ids as a JSON array of
    /// strings, in input order.
    ///
    /// # Errors
    /// As [`new_items`] and [`Db::insert`].
    pub fn insert_batch(&self, flat: &[f32], items_json: &str) -> JsResult<String> {
        let items = new_items(flat, items_json)?;
        let ids = self.shard()?.insert_batch(items)?;
        Ok(to_json(&ids))
    }

    /// The stored item `id` as [`GetOut`] JSON.
    ///
    /// # Errors
    /// `NotFound` for an unknown or deleted id.
    pub fn get(&self, id: &str) -> JsResult<String> {
        Ok(item_json(self.shard()?.get(id)?))
    }

    /// Changes item `id`: a new vector and/or [`PatchJson`] fields.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `InvalidInput` for an update that changes nothing or bad
    /// values.
    pub fn update(&self, id: &str, vector: Option<Vec<f32>>, patch_json: &str) -> JsResult<()> {
        let u = update(vector, patch_json)?;
        Ok(self.shard()?.update(id, u)?)
    }

    /// Deletes item `id`.
    ///
    /// # Errors
    /// `NotFound` for an unknown or already deleted id.
    pub fn delete(&self, id: &str) -> JsResult<()> {
        Ok(self.shard()?.delete(id)?)
    }

    /// Vector search with [`SearchOptions`] text; returns a JSON array of [`HitOut`].
    ///
    /// # Errors
    /// `InvalidInput` for bad options or a query vector the core refuses.
    pub fn search(&self, vector: &[f32], options_json: &str) -> JsResult<String> {
        let params = SearchOptions::parse(options_json)?.params()?;
        Ok(hits_json(self.shard()?.search(vector, &params)?))
    }

    /// Keyword (BM25) search with [`SearchOptions`] text; returns a JSON array of [`HitOut`].
    ///
    /// # Errors
    /// `InvalidInput` for bad options or a text with no words.
    pub fn search_text(&self, text: &str, options_json: &str) -> JsResult<String> {
        let params = SearchOptions::parse(options_json)?.params()?;
        Ok(hits_json(self.shard()?.search_text(text, &params)?))
    }

    /// Hybrid search (vector and BM25 rankings fused) with [`HybridOptions`] text; returns a
    /// JSON array of [`HitOut`] with `vector_score` and `text_score`.
    ///
    /// # Errors
    /// As [`Db::search`] and [`Db::search_text`]; `InvalidInput` for bad fusion parameters.
    pub fn search_hybrid(
        &self,
        vector: &[f32],
        text: &str,
        options_json: &str,
    ) -> JsResult<String> {
        let (params, hybrid) = HybridOptions::parse(options_json)?.params()?;
        Ok(hits_json(
            self.shard()?
                .search_hybrid(vector, text, &params, &hybrid)?,
        ))
    }

    /// Builds the HNSW index with [`IndexOptions`] text.
    ///
    /// # Errors
    /// `InvalidInput` for bad parameters; `AlreadyExists` when the shard has an index.
    pub fn create_index(&self, options_json: &str) -> JsResult<()> {
        let params = IndexOptions::parse(options_json)?;
        Ok(self.shard()?.create_index(params)?)
    }

    /// The shard's numbers as [`StatsOut`] JSON.
    ///
    /// # Errors
    /// The core's (internal) errors of [`Shard::stats`].
    pub fn stats(&self) -> JsResult<String> {
        Ok(stats_json(self.shard()?.stats()?))
    }

    /// Closes the shard (its memory is freed); later calls fail with `InvalidInput`. Closing
    /// twice is a no-op.
    pub fn close(&mut self) {
        // A shard shared with a manager stays open there: this handle lets go of it.
        if let Some(Ok(shard)) = self.shard.take().map(Arc::try_unwrap) {
            shard.close();
        }
    }

    /// A handle on a shard someone else also holds (a shard manager's); [`Db::close`] lets go
    /// of it without closing it.
    pub fn from_shared(shard: Arc<Shard>) -> Db {
        Db { shard: Some(shard) }
    }

    /// Whether [`Db::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shard.is_none()
    }
}

#[cfg(test)]
mod tests;
