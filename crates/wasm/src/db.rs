//! The `Db` class: one in-memory shard.

use std::sync::Arc;

use sqlite_vector_jsapi as jsapi;
use wasm_bindgen::prelude::*;

use crate::clock::JsClock;

/// Turns a binding error into a thrown JS `Error` with the core's message and a `kind`
/// property.
pub(crate) fn throw(e: jsapi::JsError) -> JsValue {
    let err = js_sys::Error::new(e.message());
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(
        &err,
        &JsValue::from_str("kind"),
        &JsValue::from_str(e.kind()),
    );
    err.into()
}

/// A sqlite-vector shard: in memory (the constructor, [`Db::from_image`]: nothing is
/// persisted, the data ends with `close()` or when the object is freed) or a persistent store
/// in OPFS (`openOpfs`, `importOpfs`, in a dedicated worker: every write is durable when it
/// returns).
///
/// Vectors are `Float32Array`s of exactly `dim` finite values. Every other argument is JSON
/// text and every result is JSON text (see `sqlite-vector-jsapi` for the shapes). Every method
/// throws an `Error` with a `kind` property on failure: `InvalidInput` (bad vector, id,
/// metadata, filter, option name or value, JSON that does not parse, a closed database),
/// `NotFound` (unknown id), `AlreadyExists` (a live id on insert, a second index), `Internal`.
#[wasm_bindgen]
pub struct Db {
    inner: jsapi::Db,
    /// A store in OPFS (see `opfs.rs`), whose access handles `close` releases.
    persistent: bool,
}

impl Db {
    /// A handle on a persistent store's shard.
    pub(crate) fn persistent(inner: jsapi::Db) -> Db {
        Db {
            inner,
            persistent: true,
        }
    }
}

#[wasm_bindgen]
impl Db {
    /// Creates an empty shard of `dim` dimensions (1 ..= 16,384) and `metric` (`"cosine"`,
    /// `"l2"` or `"dot"`); `options_json` is a JSON object with optional `searchable` (metadata
    /// paths indexed for keyword search) and `embedding_model`. Changes are stamped with
    /// `Date.now()`.
    #[wasm_bindgen(constructor)]
    pub fn new(dim: u32, metric: &str, options_json: &str) -> Result<Db, JsValue> {
        let inner =
            jsapi::Db::in_memory(dim as usize, metric, options_json, Some(Arc::new(JsClock)))
                .map_err(throw)?;
        Ok(Db {
            inner,
            persistent: false,
        })
    }

    /// Opens a shard image (the bytes of a shard file: what [`Db::export`] returns, or a
    /// closed shard's file from a native build) as an in-memory shard. Throws `NotAShard` for
    /// bytes that are not a shard, `Corrupt` for a damaged one, `InvalidInput` above 512 MiB.
    /// `options_json`: `{dim?, metric?}`, checked against the image (`ProfileMismatch`).
    #[wasm_bindgen(js_name = fromImage)]
    pub fn from_image(image: &[u8], options_json: &str) -> Result<Db, JsValue> {
        let inner =
            jsapi::Db::from_image(image, options_json, Some(Arc::new(JsClock))).map_err(throw)?;
        Ok(Db {
            inner,
            persistent: false,
        })
    }

    /// The shard as the bytes of one self-contained shard file (a `Uint8Array` of about the
    /// store's size), which a native build opens as a file and [`Db::from_image`] as a copy.
    /// It keeps the shard's identity (site id): a move or a backup, not a second replica.
    pub fn export(&self) -> Result<Vec<u8>, JsValue> {
        self.inner.export().map_err(throw)
    }

    /// Where the shard lives: `"opfs"` or `"memory"`.
    #[wasm_bindgen(getter)]
    pub fn storage(&self) -> String {
        if self.persistent { "opfs" } else { "memory" }.to_owned()
    }

    /// The shard's dimension.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> Result<u32, JsValue> {
        self.inner.dim().map(|d| d as u32).map_err(throw)
    }

    /// Inserts one item: `vector` (`dim` values) and `item_json` `{id?, metadata?, text?}`.
    /// Returns its id (generated when none is given: 16 hex digits). Throws `AlreadyExists` for
    /// a live id.
    pub fn insert(&self, vector: &[f32], item_json: &str) -> Result<String, JsValue> {
        self.inner.insert(vector, item_json).map_err(throw)
    }

    /// Inserts or replaces one item (as [`Db::insert`], without `AlreadyExists`).
    pub fn upsert(&self, vector: &[f32], item_json: &str) -> Result<String, JsValue> {
        self.inner.upsert(vector, item_json).map_err(throw)
    }

    /// Inserts `n` items in one transaction (all or none): `flat` holds the `n × dim` vector
    /// values row by row, `items_json` a JSON array of `n` objects `{id?, metadata?, text?}`.
    /// Returns the ids as a JSON array of strings, in input order.
    #[wasm_bindgen(js_name = insertBatch)]
    pub fn insert_batch(&self, flat: &[f32], items_json: &str) -> Result<String, JsValue> {
        self.inner.insert_batch(flat, items_json).map_err(throw)
    }

    /// The item `id` as JSON `{id, metadata, text, vector}` (`vector`: an array of `dim`
    /// numbers, exact f32 values). Throws `NotFound` for an unknown id.
    pub fn get(&self, id: &str) -> Result<String, JsValue> {
        self.inner.get(id).map_err(throw)
    }

    /// Changes item `id`: a new `vector` (or `undefined`) and `patch_json` `{metadata?,
    /// text?}`. Throws `NotFound` for an unknown id, `InvalidInput` when nothing changes.
    pub fn update(
        &self,
        id: &str,
        vector: Option<Vec<f32>>,
        patch_json: &str,
    ) -> Result<(), JsValue> {
        self.inner.update(id, vector, patch_json).map_err(throw)
    }

    /// Deletes item `id`. Throws `NotFound` for an unknown id.
    pub fn delete(&self, id: &str) -> Result<(), JsValue> {
        self.inner.delete(id).map_err(throw)
    }

    /// Vector search. `options_json`: `{k?, filter?, min_score?, max_distance?, metric?,
    /// ef_search?, exact?}`. Returns a JSON array of hits `{id, score, metadata, text}`, best
    /// first (score: cosine or dot similarity, or L2 distance).
    pub fn search(&self, vector: &[f32], options_json: &str) -> Result<String, JsValue> {
        self.inner.search(vector, options_json).map_err(throw)
    }

    /// Keyword search (BM25 over text and searchable metadata), with the options of
    /// [`Db::search`]. Returns hits as [`Db::search`] does (score: BM25, higher is better).
    #[wasm_bindgen(js_name = searchText)]
    pub fn search_text(&self, text: &str, options_json: &str) -> Result<String, JsValue> {
        self.inner.search_text(text, options_json).map_err(throw)
    }

    /// Hybrid search: the vector and BM25 rankings fused. `options_json`: those of
    /// [`Db::search`] plus `{fusion?: "dbsf"|"rrf", rrf_k?, vector_weight?, text_weight?,
    /// candidates?}`. Hits also carry `vector_score` and `text_score` (`null` when no query
    /// word is in the item).
    #[wasm_bindgen(js_name = searchHybrid)]
    pub fn search_hybrid(
        &self,
        vector: &[f32],
        text: &str,
        options_json: &str,
    ) -> Result<String, JsValue> {
        self.inner
            .search_hybrid(vector, text, options_json)
            .map_err(throw)
    }

    /// Builds the HNSW index: `options_json` `{m?, ef_construction?, ef_search?}` (defaults 16,
    /// 200, 64). Unfiltered searches of shards above 4,096 items then walk the graph. Throws
    /// `AlreadyExists` when the shard has an index.
    #[wasm_bindgen(js_name = createIndex)]
    pub fn create_index(&self, options_json: &str) -> Result<(), JsValue> {
        self.inner.create_index(options_json).map_err(throw)
    }

    /// The shard's numbers as JSON: `{dim, metric, embedding_model, count, tombstones,
    /// bytes_on_disk, bytes_in_memory, search_method, index, durability, format_version,
    /// damage}` (bytes in bytes).
    pub fn stats(&self) -> Result<String, JsValue> {
        self.inner.stats().map_err(throw)
    }

    /// Frees the shard; later calls throw `InvalidInput`. Closing twice is a no-op.
    pub fn close(&mut self) {
        let open = !self.inner.is_closed();
        self.inner.close();
        if open && self.persistent {
            crate::opfs::release();
        }
    }
}

/// The version of the SQLite compiled into the module, e.g. `"3.53.4"`.
#[wasm_bindgen(js_name = sqliteVersion)]
pub fn sqlite_version() -> String {
    sqlite_vector::rusqlite::version().to_owned()
}
