//! A shard: one SQLite database of vectors with ids, metadata and text, plus the in-memory arena
//! that search scans.
//!
//! # Layout
//! * `open`: create / open / in-memory, connection settings, the full load of the arena and
//!   the index, migrations ([`OpenOptions`]).
//! * `write`: the write side, [`Shard::transaction`] and its [`WriteTx`] (insert, upsert,
//!   update, delete, [`WriteTx::apply_remote`]), and the one path that applies a committed
//!   transaction to the arena and the index.
//! * `read`: the read side: exact, HNSW, text and hybrid search, `get`.
//! * `catchup`: noticing and applying other connections' commits.
//! * `admin`: the index, quantization, stats, the change feed, integrity, read-only SQL.
//! * `conn`: the connections: one writer, a pool of readers, background WAL checkpoints.
//! * `types`: the API's items, parameters, hits and stats, and the shared input checks.
//!
//! # Consistency model
//! SQLite is the source of truth. A write transaction runs on the writer connection inside one
//! `BEGIN IMMEDIATE`; it is acknowledged (the method returns `Ok`) only after `COMMIT`. Its
//! changes reach the arena and the index (and the index's rows reach SQLite, in the same
//! transaction) under the state lock held across the commit, so no search sees a half-applied
//! write, and none sees a write that did not commit.
//!
//! Reads use their own connections (a small pool; WAL readers never block the writer, and a
//! search never waits for a write's SQLite work, only for the short apply of a commit to the
//! arena). In-memory shards have one connection: their reads share the writer's.
//!
//! Other connections (another process, or another handle on the same file) are noticed through
//! `PRAGMA data_version` on a reader and `max(seq)`, before every search and inside every write
//! transaction; their changes are read incrementally by local version (`seq`) from the
//! `items_seq` index.
//!
//! **Lock order**: a connection (the writer, or a reader) before the state lock; the state lock
//! is never held while waiting for a connection. Every path follows it.
//!
//! # Pragmas
//! * `journal_mode=WAL`: readers never block the writer and vice versa, across processes
//!   (unless opened with [`Journal::Rollback`], the default on wasm32-unknown-unknown: one
//!   connection, `journal_mode=TRUNCATE`, `synchronous=FULL`).
//! * `synchronous=FULL` (durability `full`) or `NORMAL` (durability `normal`): see
//!   [`Durability`].
//! * `busy_timeout=5000`: a writer waits up to 5 s for another process's write lock instead of
//!   failing at once with `SQLITE_BUSY`.
//! * `cache_size=-8192` (8 MiB): vectors are served from the arena, so SQLite's page cache only
//!   needs the b-tree interiors and recent pages.
//! * `journal_size_limit=67108864`: the WAL file is truncated back to 64 MiB after checkpoints.
//! * `temp_store=MEMORY`: sorter and temporary b-trees stay off disk.
//! * WAL checkpoints run off the write path (feature `threads`): the writer's automatic
//!   checkpoint is off, and a background thread checkpoints (`PASSIVE`) once the WAL holds
//!   1,000 pages.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::arena::Arena;
use crate::change::SiteId;
use crate::clock::Clock;
use crate::distance::Kernels;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index::{PlannerParams, ShardIndex};
use crate::profile::Profile;

mod admin;
mod catchup;
mod conn;
mod hybrid;
mod open;
mod read;
mod types;
mod write;

pub use conn::wait_for_closes;
pub(crate) use hybrid::{both, fusion_vector_score};
pub use open::{Journal, OpenOptions, MAX_IMAGE_BYTES};
pub(crate) use types::query_words;
#[cfg(feature = "fts5-api")]
pub(crate) use types::searchable_values;
pub use types::{
    Hit, HybridParams, HybridScores, Item, NewItem, SearchParams, Stats, Update, MAX_EF_SEARCH,
    MAX_ID_BYTES, MAX_K, MAX_METADATA_BYTES, MAX_TEXT_BYTES,
};
pub use write::WriteTx;

/// What searches read: the arena and the index, and the versions they reflect.
pub(crate) struct State {
    pub(crate) arena: Arena,
    /// The HNSW index, kept in step with `arena`.
    pub(crate) index: Option<ShardIndex>,
    pub(crate) planner: PlannerParams,
    /// The highest local version (`seq`) applied.
    pub(crate) last_seq: i64,
    /// The highest HLC produced or received: the local clock never stamps below it.
    pub(crate) last_hlc: i64,
    /// Bumped by every change of the state (a commit, a catch-up, a reload): the key of the
    /// caches whose contents depend on arena slots or committed data.
    pub(crate) version: u64,
    /// Why the stored index could not be loaded at open (the shard searches exactly until the
    /// index is rebuilt or dropped), if it could not.
    pub(crate) index_damage: Option<String>,
    /// Why the stored int8 quantizer could not be read at the last load (the exact path scans
    /// f32 until it is retrained or removed), if it could not.
    pub(crate) quantizer_damage: Option<String>,
}

/// A vector shard. `Send + Sync`: share it behind an `Arc`; searches run in parallel, writes are
/// serialised (one writer, many readers).
pub struct Shard {
    path: Option<PathBuf>,
    profile: Profile,
    site_id: SiteId,
    format_version: u32,
    kernels: &'static Kernels,
    clock: Arc<dyn Clock>,
    max_clock_skew_ms: i64,
    state: RwLock<State>,
    writer: Mutex<conn::Writer>,
    readers: conn::Readers,
    /// The matching slots of recently used filters, each valid for one state version
    /// ([`State::version`]): agents repeat the same filter, and evaluating it costs one pass
    /// over the metadata. Most recent first, at most [`FILTER_CACHE`] entries.
    filter_cache: Mutex<FilterCache>,
    /// The sync digest, kept up to date lazily ([`Shard::sync_state`] folds in the rows
    /// stamped since it was last computed); built by the first call.
    digest: Mutex<DigestCache>,
    /// The in-memory text index, shared by all of the shard's connections.
    text: Arc<crate::fts::SharedText>,
    /// Declared last, so it runs after the connections above are closed: checkpoints a
    /// `normal` file shard's WAL into the file and deletes it (see [`conn::CloseOnDrop`]).
    close: conn::CloseOnDrop,
}

/// The sync digest of a shard as of a local version: each live row's contribution by rowid,
/// and their XOR.
#[derive(Default)]
pub(crate) struct DigestCache {
    /// The head the digest reflects (-1: not built).
    pub(crate) as_of: i64,
    pub(crate) digest: u64,
    pub(crate) rows: std::collections::HashMap<i64, u64>,
}

thread_local! {
    /// The address of the shard whose write transaction runs on this thread (0: none).
    static IN_TRANSACTION: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks this thread as running `shard`'s write transaction until dropped.
pub(super) struct TransactionMark(usize);

impl TransactionMark {
    fn set(shard: &Shard) -> TransactionMark {
        TransactionMark(IN_TRANSACTION.with(|t| t.replace(shard as *const Shard as usize)))
    }
}

impl Drop for TransactionMark {
    fn drop(&mut self) {
        IN_TRANSACTION.with(|t| t.set(self.0));
    }
}

/// Entries of [`Shard`]'s filter cache: filter, state version, matching slots.
type FilterCache = Vec<(Filter, u64, Arc<Vec<u32>>)>;

/// Filters whose matching slots a shard remembers.
const FILTER_CACHE: usize = 8;

/// Prefixes a corruption found in one item with its id.
pub(crate) fn corrupt_item(id: &str, e: Error) -> Error {
    match e {
        Error::Corrupt(m) => Error::Corrupt(format!("item {id:?}: {m}")),
        other => other,
    }
}

impl Shard {
    /// Closes the handle and, for a `normal` shard file no other connection has open,
    /// checkpoints its WAL into the file and deletes the `-wal` and `-shm` files before
    /// returning, so the shard is one self-contained file (copy it, back it up). Dropping a
    /// handle does the same on a background thread (see [`wait_for_closes`]). `full` shards
    /// always do it as they close. Best effort: a file in use elsewhere keeps its WAL.
    pub fn close(mut self) {
        self.close.run_now();
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
    /// The writer connection. Refuses a call from inside this shard's own write transaction
    /// on the same thread (a nested transaction, an index build, or a read of an in-memory
    /// shard), which would otherwise wait for itself forever.
    fn lock_writer(&self) -> Result<MutexGuard<'_, conn::Writer>> {
        if IN_TRANSACTION.with(|t| t.get()) == self as *const Shard as usize {
            return Err(Error::InvalidArgument(
                "called inside this shard's own write transaction on the same thread: use the \
                 WriteTx's methods (insert, update, delete, get, ...) there"
                    .into(),
            ));
        }
        Ok(self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes every commit of this handle's writer first ask `live`, with the write lock held: a
    /// commit it answers `false` to is rolled back and fails with [`Error::ShardDropped`]. The
    /// shard manager's guard against acknowledging a write into a dropped or replaced file.
    pub(crate) fn set_commit_check(
        &self,
        mut live: impl FnMut() -> bool + Send + 'static,
    ) -> Result<()> {
        self.lock_writer()?.db.commit_hook(Some(move || !live()))?;
        Ok(())
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

    /// The shard's site id (every handle on the same file shares it).
    pub fn site_id(&self) -> SiteId {
        self.site_id
    }

    /// The clock this handle stamps changes with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}
