//! The native Node backend of the `sqlite-vector` npm package: a napi-rs addon over the core,
//! through `sqlite-vector-jsapi`, so that it has exactly the wasm build's semantics (JSON options
//! and results, error kinds) and the JS wrapper (`npm/sqlite-vector/src/core.js`) drives both.
//!
//! What it adds over the wasm build: shard *files* in WAL mode (every acknowledged write is
//! durable; several processes may open one file), the core's helper threads for large scans,
//! and work off the JS thread: every call that touches a shard runs as an `AsyncTask` on
//! libuv's thread pool and returns a `Promise`, so concurrent searches run in parallel.
//!
//! Errors reject (or throw) a JS `Error` whose `kind` (and `code`) is the core's error class
//! (`InvalidInput`, `NotFound`, `AlreadyExists`, `ProfileMismatch`, `NotAShard`, `Corrupt`,
//! `Busy`, `Io`, `Internal`) and whose message is the core's. A panic in the core is caught
//! and becomes an `Internal` error; the handle stays usable (SQLite rolled the transaction
//! back).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::{AsyncTask, Buffer, Float32Array, JsObjectValue, Uint8Array};
use napi::{Env, JsValue};
use napi_derive::napi;
use sqlite_vector_jsapi as jsapi;

/// A handle shared by the JS object and the tasks in flight; `close` takes it for writing,
/// so it waits for them.
type Shared = Arc<RwLock<jsapi::Db>>;

/// The JS error for `e`: an `Error` with the core's message, `code` and `kind` its kind.
fn to_js_error(env: &Env, e: jsapi::JsError) -> napi::Error {
    let value =
        napi::JsError::from(napi::Error::new(e.kind(), e.message().to_owned())).into_unknown(*env);
    if let Ok(mut object) = value.coerce_to_object() {
        // Setting a property on a fresh Error cannot fail; `code` already carries the kind.
        let _ = object.set_named_property("kind", e.kind());
    }
    napi::Error::from(value)
}

/// Runs `f`, turning a panic into an `Internal` error.
fn guarded<R>(f: impl FnOnce() -> jsapi::JsResult<R>) -> jsapi::JsResult<R> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(jsapi::JsError::internal(format!(
            "sqlite-vector panicked: {what}"
        )))
    })
}

/// Runs `f` on the shard under the read lock (a poisoned lock is used as is: a panic is caught
/// before it can leave a half-made change, and SQLite rolls back its transaction).
fn with_db<R>(db: &Shared, f: impl FnOnce(&jsapi::Db) -> jsapi::JsResult<R>) -> jsapi::JsResult<R> {
    guarded(|| {
        let guard = db.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    })
}

/// The work of one call, run on a libuv thread.
type Work<R> = Box<dyn FnOnce() -> jsapi::JsResult<R> + Send>;

/// A call whose result is JSON text (or an id): resolves to a `string`.
pub struct TextTask(Option<Work<String>>);
/// A call with no result: resolves to `undefined`.
pub struct UnitTask(Option<Work<()>>);
/// A call whose result is bytes: resolves to a `Buffer`.
pub struct BytesTask(Option<Work<Vec<u8>>>);
/// A call that opens a shard: resolves to a [`Db`].
pub struct OpenTask(Option<Work<Db>>);

/// `impl Task` for a task type `$name(Option<Work<$out>>)` resolving to `$js` through
/// `$convert`; errors become JS errors with the core's kind.
macro_rules! task {
    ($name:ident, $out:ty, $js:ty, $convert:expr) => {
        impl ::napi::Task for $name {
            type Output = ::sqlite_vector_jsapi::JsResult<$out>;
            type JsValue = $js;

            fn compute(&mut self) -> ::napi::Result<Self::Output> {
                let work = self.0.take().expect("a task is computed once");
                Ok($crate::guarded(work))
            }

            fn resolve(
                &mut self,
                env: ::napi::Env,
                output: Self::Output,
            ) -> ::napi::Result<Self::JsValue> {
                output
                    .map($convert)
                    .map_err(|e| $crate::to_js_error(&env, e))
            }
        }
    };
}

pub(crate) use task;

mod manager;
pub use manager::{Manager, ManagerTask};

task!(TextTask, String, String, |s| s);
task!(UnitTask, (), (), |()| ());
task!(BytesTask, Vec<u8>, Buffer, Buffer::from);
task!(OpenTask, Db, Db, |db| db);

/// A sqlite-vector shard: in memory (the constructor, [`Db::from_image`]) or a shard file in WAL
/// mode ([`Db::open_file`]: every write is durable when its promise resolves).
///
/// Vectors are `Float32Array`s of exactly `dim` finite values (copied before the call returns:
/// the caller may reuse its array). Every other argument and every result is JSON text in
/// the shapes of `sqlite-vector-jsapi` (those of the wasm build). Methods that touch the shard
/// return promises and run off the JS thread.
#[napi]
pub struct Db {
    inner: Shared,
    file: bool,
}

impl Db {
    fn wrap(inner: jsapi::Db, file: bool) -> Db {
        Db {
            inner: Arc::new(RwLock::new(inner)),
            file,
        }
    }

    fn text(
        &self,
        f: impl FnOnce(&jsapi::Db) -> jsapi::JsResult<String> + Send + 'static,
    ) -> AsyncTask<TextTask> {
        let db = Arc::clone(&self.inner);
        AsyncTask::new(TextTask(Some(Box::new(move || with_db(&db, f)))))
    }

    fn unit(
        &self,
        f: impl FnOnce(&jsapi::Db) -> jsapi::JsResult<()> + Send + 'static,
    ) -> AsyncTask<UnitTask> {
        let db = Arc::clone(&self.inner);
        AsyncTask::new(UnitTask(Some(Box::new(move || with_db(&db, f)))))
    }
}

#[napi]
impl Db {
    /// Creates an empty in-memory shard of `dim` dimensions (1 ..= 16,384) and `metric`
    /// (`"cosine"`, `"l2"` or `"dot"`); `optionsJson`: `{searchable?, embedding_model?}`.
    /// Throws `InvalidInput` for a bad profile or options.
    #[napi(constructor)]
    pub fn new(env: Env, dim: u32, metric: String, options_json: String) -> napi::Result<Db> {
        guarded(|| jsapi::Db::in_memory(dim as usize, &metric, &options_json, None))
            .map(|db| Db::wrap(db, false))
            .map_err(|e| to_js_error(&env, e))
    }

    /// Opens the shard file at `path` (WAL mode, durable writes), creating it when nothing is
    /// there. `optionsJson`: `{dim?, metric?, searchable?, embedding_model?}`; creating needs
    /// `dim`; an existing shard must match the `dim`/`metric` given (`ProfileMismatch`).
    /// Rejects with `NotAShard`/`Corrupt` for a file that is not a sound shard, `Busy` when
    /// another process holds it past the busy timeout, `Io`.
    #[napi(ts_return_type = "Promise<Db>")]
    pub fn open_file(path: String, options_json: String) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask(Some(Box::new(move || {
            let path = PathBuf::from(path);
            let exists = path.exists();
            jsapi::Db::open_file(&path, &options_json, None, exists).map(|db| Db::wrap(db, true))
        }))))
    }

    /// Opens a shard image (the bytes of a shard file, ≤ 512 MiB) as an in-memory shard.
    /// `optionsJson`: `{dim?, metric?}`, checked against the image (`ProfileMismatch`).
    /// Rejects with `NotAShard`, `Corrupt` or `InvalidInput` (too large).
    #[napi(ts_return_type = "Promise<Db>")]
    pub fn from_image(image: Uint8Array, options_json: String) -> AsyncTask<OpenTask> {
        let image = image.to_vec();
        AsyncTask::new(OpenTask(Some(Box::new(move || {
            jsapi::Db::from_image(&image, &options_json, None).map(|db| Db::wrap(db, false))
        }))))
    }

    /// The shard as the bytes of one self-contained shard file (a `Buffer` of about the
    /// shard's size); it keeps the shard's identity (site id).
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn export(&self) -> AsyncTask<BytesTask> {
        let db = Arc::clone(&self.inner);
        AsyncTask::new(BytesTask(Some(Box::new(move || {
            with_db(&db, jsapi::Db::export)
        }))))
    }

    /// Where the shard lives: `"file"` or `"memory"`.
    #[napi(getter)]
    pub fn storage(&self) -> String {
        if self.file { "file" } else { "memory" }.to_owned()
    }

    /// The shard's dimension. Throws `InvalidInput` after `close()`.
    #[napi(getter)]
    pub fn dim(&self, env: Env) -> napi::Result<u32> {
        with_db(&self.inner, |db| db.dim().map(|d| d as u32)).map_err(|e| to_js_error(&env, e))
    }

    /// Inserts one item (`vector`: `dim` values; `itemJson`: `{id?, metadata?, text?}`);
    /// resolves to its id. Rejects with `AlreadyExists` for a live id.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn insert(&self, vector: Float32Array, item_json: String) -> AsyncTask<TextTask> {
        let vector = vector.to_vec();
        self.text(move |db| db.insert(&vector, &item_json))
    }

    /// Inserts or replaces one item (as `insert`, without `AlreadyExists`).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn upsert(&self, vector: Float32Array, item_json: String) -> AsyncTask<TextTask> {
        let vector = vector.to_vec();
        self.text(move |db| db.upsert(&vector, &item_json))
    }

    /// Inserts `n` items in one transaction (all or none): `flat` holds `n × dim` values row
    /// by row, `itemsJson` a JSON array of `n` objects. Resolves to the ids as a JSON array.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn insert_batch(&self, flat: Float32Array, items_json: String) -> AsyncTask<TextTask> {
        let flat = flat.to_vec();
        self.text(move |db| db.insert_batch(&flat, &items_json))
    }

    /// The item `id` as JSON `{id, metadata, text, vector}`. Rejects with `NotFound`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn get(&self, id: String) -> AsyncTask<TextTask> {
        self.text(move |db| db.get(&id))
    }

    /// Changes item `id`: a new `vector` (or `undefined`) and `patchJson` `{metadata?, text?}`.
    /// Rejects with `NotFound`, or `InvalidInput` when nothing changes.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn update(
        &self,
        id: String,
        vector: Option<Float32Array>,
        patch_json: String,
    ) -> AsyncTask<UnitTask> {
        let vector = vector.map(|v| v.to_vec());
        self.unit(move |db| db.update(&id, vector, &patch_json))
    }

    /// Deletes item `id`. Rejects with `NotFound`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn delete(&self, id: String) -> AsyncTask<UnitTask> {
        self.unit(move |db| db.delete(&id))
    }

    /// Vector search; `optionsJson`: `{k?, filter?, min_score?, max_distance?, metric?,
    /// ef_search?, exact?}`. Resolves to a JSON array of hits `{id, score, metadata, text}`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn search(&self, vector: Float32Array, options_json: String) -> AsyncTask<TextTask> {
        let vector = vector.to_vec();
        self.text(move |db| db.search(&vector, &options_json))
    }

    /// Keyword search (BM25), with the options of `search`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn search_text(&self, text: String, options_json: String) -> AsyncTask<TextTask> {
        self.text(move |db| db.search_text(&text, &options_json))
    }

    /// Hybrid search (vector and BM25 rankings fused); options of `search` plus `{fusion?,
    /// rrf_k?, vector_weight?, text_weight?, candidates?}`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn search_hybrid(
        &self,
        vector: Float32Array,
        text: String,
        options_json: String,
    ) -> AsyncTask<TextTask> {
        let vector = vector.to_vec();
        self.text(move |db| db.search_hybrid(&vector, &text, &options_json))
    }

    /// Builds the HNSW index: `optionsJson` `{m?, ef_construction?, ef_search?}` (defaults
    /// 16, 200, 64). Rejects with `AlreadyExists` when the shard has one.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn create_index(&self, options_json: String) -> AsyncTask<UnitTask> {
        self.unit(move |db| db.create_index(&options_json))
    }

    /// The shard's numbers as JSON (see `sqlite-vector-jsapi`'s `StatsOut`).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn stats(&self) -> AsyncTask<TextTask> {
        self.text(jsapi::Db::stats)
    }

    /// Closes the shard (a file shard: its connections, after a checkpoint), once the calls in
    /// flight are done; later calls reject with `InvalidInput`. Closing twice is a no-op.
    #[napi]
    pub fn close(&self) {
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        guard.close();
    }
}

/// The version of the SQLite compiled into the addon, e.g. `"3.53.4"`.
#[napi]
pub fn sqlite_version() -> String {
    sqlite_vector::rusqlite::version().to_owned()
}
