//! The shard manager in Node: named shards under a root directory (the core's
//! [`ShardManager`]: a catalog, an LRU of open shards, searches across shards), the layout
//! the CLI's `--root` and the MCP server use.

use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::{AsyncTask, Float32Array};
use napi_derive::napi;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlite_vector::{ManagerOptions, MultiSearch, ShardManager, Targets};
use sqlite_vector_jsapi as jsapi;

use crate::{Db, OpenTask, TextTask, UnitTask, Work};

/// `null` after `close()`.
type SharedManager = Arc<RwLock<Option<Arc<ShardManager>>>>;

/// Where a search across shards looks: exactly one of `shards` (names, in order) or `prefix`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsJson {
    shards: Option<Vec<String>>,
    prefix: Option<String>,
}

/// Options of [`Manager::open`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManagerOptionsJson {
    capacity: Option<usize>,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> jsapi::JsResult<T> {
    serde_json::from_str(json).map_err(|e| jsapi::JsError::invalid_input(format!("{what}: {e}")))
}

/// Runs `f` with the targets of `targets_json`.
fn with_targets<R>(
    targets_json: &str,
    f: impl FnOnce(Targets<'_>) -> sqlite_vector::Result<R>,
) -> jsapi::JsResult<R> {
    let t: TargetsJson = parse("search targets", targets_json)?;
    match (t.shards, t.prefix) {
        (Some(names), None) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Ok(f(Targets::Names(&names))?)
        }
        (None, Some(prefix)) => Ok(f(Targets::Prefix(&prefix))?),
        _ => Err(jsapi::JsError::invalid_input(
            "a search across shards needs exactly one of shards (names) or prefix",
        )),
    }
}

/// `{hits: [{shard, id, score, metadata, text, vector_score?, text_score?}], failures:
/// [{shard, error}]}` as JSON text.
fn multi_json(m: MultiSearch) -> String {
    let hits: Vec<Value> = m
        .hits
        .into_iter()
        .map(|h| {
            let mut v = serde_json::to_value(jsapi::HitOut::from(h.hit)).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.insert("shard".to_owned(), Value::String(h.shard));
            }
            v
        })
        .collect();
    let failures: Vec<Value> = m
        .failures
        .into_iter()
        .map(|f| json!({"shard": f.shard, "error": f.error}))
        .collect();
    json!({"hits": hits, "failures": failures}).to_string()
}

/// Named shards under a root directory (the core's `ShardManager`): each shard a file in WAL
/// mode, a catalog (`catalog.db`), up to `capacity` shards open at once (least recently used
/// closed first). The root of `sqlite-vector … --root DIR` and of the MCP server. Every method
/// that touches disk returns a promise and runs off the JS thread.
#[napi]
pub struct Manager {
    inner: SharedManager,
}

impl Manager {
    fn task<R>(
        &self,
        f: impl FnOnce(&ShardManager) -> jsapi::JsResult<R> + Send + 'static,
    ) -> Work<R> {
        let m = Arc::clone(&self.inner);
        Box::new(move || {
            let m = m
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or_else(|| jsapi::JsError::invalid_input("the manager is closed"))?;
            f(&m)
        })
    }
}

#[napi]
impl Manager {
    /// Opens (or creates) the root directory `root`; `optionsJson`: `{capacity?}` (shards kept
    /// open, default 256). Rejects with `Io` when the directory cannot be made or read,
    /// `Corrupt`/`NotAShard` for a damaged catalog.
    #[napi(ts_return_type = "Promise<Manager>")]
    pub fn open(root: String, options_json: String) -> AsyncTask<ManagerTask> {
        AsyncTask::new(ManagerTask(Some(Box::new(move || {
            let o: ManagerOptionsJson = parse("manager options", &options_json)?;
            let mut options = ManagerOptions::default();
            if let Some(c) = o.capacity {
                options = options.with_capacity(c);
            }
            let m = ShardManager::open(&root, options)?;
            Ok(Manager {
                inner: Arc::new(RwLock::new(Some(Arc::new(m)))),
            })
        }))))
    }

    /// Creates the shard `name` (segments of `[A-Za-z0-9._-]` joined by `/`) of `dim`
    /// dimensions and `metric`; `optionsJson`: `{searchable?, embedding_model?}`. Resolves to
    /// its `Db`. Rejects with `AlreadyExists`, or `InvalidInput` for a bad name or profile.
    #[napi(ts_return_type = "Promise<Db>")]
    pub fn create(
        &self,
        name: String,
        dim: u32,
        metric: String,
        options_json: String,
    ) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask(Some(self.task(move |m| {
            let profile = jsapi::profile(dim as usize, &metric, &options_json)?;
            let shard = m.create(&name, &profile)?;
            Ok(Db::wrap(jsapi::Db::from_shared(shard), true))
        }))))
    }

    /// The shard `name` as a `Db` (closing it leaves the shard open in the manager). Rejects
    /// with `UnknownShard` when there is none.
    #[napi(ts_return_type = "Promise<Db>")]
    pub fn open_shard(&self, name: String) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask(Some(self.task(move |m| {
            let shard = m.open_shard(&name)?;
            Ok(Db::wrap(jsapi::Db::from_shared(shard), true))
        }))))
    }

    /// The shards whose names start with `prefix` (all without), in name order, as JSON
    /// `[{name, dim, metric, embedding_model, bytes_on_disk, created_at}]` (bytes; Unix
    /// seconds).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn list(&self, prefix: Option<String>) -> AsyncTask<TextTask> {
        AsyncTask::new(TextTask(Some(self.task(move |m| {
            let list: Vec<Value> = m
                .list(prefix.as_deref())?
                .into_iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "dim": s.profile.dimension,
                        "metric": s.profile.metric.as_str(),
                        "embedding_model": s.profile.embedding_model,
                        "bytes_on_disk": s.bytes_on_disk,
                        "created_at": s.created_at,
                    })
                })
                .collect();
            Ok(Value::Array(list).to_string())
        }))))
    }

    /// Deletes the shard `name` and its files. Rejects with `UnknownShard`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn drop_shard(&self, name: String) -> AsyncTask<UnitTask> {
        AsyncTask::new(UnitTask(Some(self.task(move |m| Ok(m.drop_shard(&name)?)))))
    }

    /// Vector search across shards: `targetsJson` `{shards}` or `{prefix}`, `optionsJson` those
    /// of `Db.search`. Resolves to JSON `{hits, failures}`: the merged top k (each hit with its
    /// `shard`), and the shards that could not be searched (`{shard, error}`).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn search(
        &self,
        vector: Float32Array,
        targets_json: String,
        options_json: String,
    ) -> AsyncTask<TextTask> {
        let vector = vector.to_vec();
        AsyncTask::new(TextTask(Some(self.task(move |m| {
            let params = jsapi::SearchOptions::parse(&options_json)?.params()?;
            with_targets(&targets_json, |t| m.search(t, &vector, &params)).map(multi_json)
        }))))
    }

    /// Keyword search (BM25) across shards; arguments and result as [`Manager::search`].
    #[napi(ts_return_type = "Promise<string>")]
    pub fn search_text(
        &self,
        text: String,
        targets_json: String,
        options_json: String,
    ) -> AsyncTask<TextTask> {
        AsyncTask::new(TextTask(Some(self.task(move |m| {
            let params = jsapi::SearchOptions::parse(&options_json)?.params()?;
            with_targets(&targets_json, |t| m.search_text(t, &text, &params)).map(multi_json)
        }))))
    }

    /// Hybrid search across shards (the vector and BM25 rankings merged, then fused);
    /// options those of `Db.searchHybrid`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn search_hybrid(
        &self,
        vector: Float32Array,
        text: String,
        targets_json: String,
        options_json: String,
    ) -> AsyncTask<TextTask> {
        let vector = vector.to_vec();
        AsyncTask::new(TextTask(Some(self.task(move |m| {
            let (params, hybrid) = jsapi::HybridOptions::parse(&options_json)?.params()?;
            with_targets(&targets_json, |t| {
                m.search_hybrid(t, &vector, &text, &params, &hybrid)
            })
            .map(multi_json)
        }))))
    }

    /// Lets go of the manager (its open shards close once no `Db` holds them); later calls
    /// reject with `InvalidInput`. Idempotent.
    #[napi]
    pub fn close(&self) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// A call that opens a manager: resolves to a [`Manager`].
pub struct ManagerTask(Option<Work<Manager>>);

crate::task!(ManagerTask, Manager, Manager, |m| m);
