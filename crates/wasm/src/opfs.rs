//! Persistent stores in the browser: one shard file per store in the Origin Private File
//! System, through the `sahpool` VFS of sqlite-wasm-vfs (a pool of OPFS sync access handles,
//! after SQLite's own `opfs-sahpool`; <https://sqlite.org/wasm/doc/trunk/persistence.md>).
//!
//! A store `name` is the directory `sqlite-vector/<name>` of the origin's OPFS, holding the
//! shard file `/shard.db` and its rollback journal. Sync access handles exist only in dedicated
//! workers, and the pool holds one on every file of its directory: a second context (another
//! tab's worker) cannot open the store while this one has it (its install fails with the
//! browser's `NoModificationAllowedError`, thrown here as kind `StorageBusy`). One store per
//! worker: the package's worker.js starts a worker per open store, and takes the store's Web
//! Lock before calling in here.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use rsqlite_vfs::transfer::DbTransfer;
use rsqlite_vfs::VfsFilesManager;
use sqlite_vector_jsapi as jsapi;
use sqlite_wasm_vfs::sahpool::{self, OpfsSAHError, OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil};
use wasm_bindgen::prelude::*;

use crate::clock::JsClock;
use crate::db::{throw, Db};

/// The shard file inside a store's pool.
const FILE: &str = "/shard.db";
/// The VFS's registered name (made SQLite's default: the worker has no other files).
const VFS: &str = "sqlite-vector-opfs";

thread_local! {
    /// The installed pool and its store's name (one per worker).
    static POOL: RefCell<Option<(String, OpfsSAHPoolUtil)>> = const { RefCell::new(None) };
}

/// A JS `Error` with `message` and `kind`.
fn error(kind: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("kind"), &JsValue::from_str(kind));
    err.into()
}

/// Maps a pool error to a JS error: `StorageBusy` when another context holds the store's
/// access handles, `StorageUnavailable` where OPFS sync access handles do not exist, `Io`
/// otherwise.
fn opfs_error(what: &str, e: OpfsSAHError) -> JsValue {
    let message = format!("{what}: {e}");
    let kind = match &e {
        OpfsSAHError::Opfs { message, .. } if message.contains("NoModificationAllowedError") => {
            "StorageBusy"
        }
        OpfsSAHError::DirectoryInUse(_) | OpfsSAHError::FileInUse(_) | OpfsSAHError::Busy => {
            "StorageBusy"
        }
        OpfsSAHError::NotSupported => "StorageUnavailable",
        _ => "Io",
    };
    error(kind, &message)
}

/// Installs (or reuses) the pool of store `name`.
async fn pool(name: &str) -> Result<OpfsSAHPoolUtil, JsValue> {
    if let Some((have, util)) = POOL.with(|p| p.borrow().clone()) {
        if have != name {
            return Err(error(
                "InvalidInput",
                &format!("this worker already serves the store {have:?}: one store per worker"),
            ));
        }
        if util.is_paused() {
            util.resume()
                .await
                .map_err(|e| opfs_error("reopening the store's OPFS files", e))?;
        }
        return Ok(util);
    }
    let cfg = OpfsSAHPoolCfgBuilder::new()
        .vfs_name(VFS)
        .directory(&format!("sqlite-vector/{name}"))
        .initial_capacity(4)
        .build();
    let util = sahpool::install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, true)
        .await
        .map_err(|e| opfs_error("opening the store's OPFS files", e))?;
    POOL.with(|p| *p.borrow_mut() = Some((name.to_owned(), util.clone())));
    Ok(util)
}

/// Releases the store's OPFS access handles (after its shard closed), so that another tab
/// can open it at once.
pub(crate) fn release() {
    if let Some((_, util)) = POOL.with(|p| p.borrow().clone()) {
        // Fails only while a file is open (the shard closed first) or a management call runs.
        let _ = util.pause();
    }
}

/// Opens the persistent store `name` (created on first use) in the Origin Private File
/// System. `options_json`: `{dim?, metric?, searchable?, embedding_model?}` — `dim` is
/// required to create the store; an existing one must match what is given. Call it from a
/// dedicated worker (OPFS sync access handles exist only there).
///
/// Throws `StorageBusy` while another tab or worker holds the store, `StorageUnavailable`
/// where OPFS sync access handles do not exist, `ProfileMismatch`, `InvalidInput` (no `dim`
/// for a new store, bad options), `NotAShard` / `Corrupt` for a damaged file.
#[wasm_bindgen(js_name = openOpfs)]
pub async fn open_opfs(name: String, options_json: String) -> Result<Db, JsValue> {
    let util = pool(&name).await?;
    let exists = util
        .contains(FILE)
        .map_err(|e| opfs_error("listing the store's files", e))?;
    let inner = jsapi::Db::open_file(
        Path::new(FILE),
        &options_json,
        Some(Arc::new(JsClock)),
        exists,
    );
    match inner {
        Ok(inner) => Ok(Db::persistent(inner)),
        Err(e) => {
            release();
            Err(throw(e))
        }
    }
}

/// Creates the persistent store `name` from a shard image (the bytes of a shard file, as
/// `Db.export()` returns them) and opens it. The image is checked first (it must open as a
/// shard). `options_json` as in [`open_opfs`] (checked against the image's profile).
///
/// Throws `AlreadyExists` when the store exists, `NotAShard` / `Corrupt` for a bad image, and
/// the errors of [`open_opfs`].
#[wasm_bindgen(js_name = importOpfs)]
pub async fn import_opfs(
    name: String,
    image: Vec<u8>,
    options_json: String,
) -> Result<Db, JsValue> {
    // Check the bytes before touching the store (an in-memory copy: it must open as a shard).
    jsapi::Db::from_image(&image, &options_json, Some(Arc::new(JsClock))).map_err(throw)?;
    let util = pool(&name).await?;
    let exists = util
        .contains(FILE)
        .map_err(|e| opfs_error("listing the store's files", e))?;
    if exists {
        release();
        return Err(error(
            "AlreadyExists",
            &format!("the store {name:?} exists: open it, or import under another name"),
        ));
    }
    // `import_db` resets the header to rollback-journal mode and flushes the file.
    if let Err(e) = util.import_db(FILE, &image) {
        release();
        return Err(opfs_error("writing the image into the store", e));
    }
    drop(image);
    open_opfs(name, options_json).await
}
