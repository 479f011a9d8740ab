//! A shard's connections: one writer, a pool of readers (file shards), and the background WAL
//! checkpoints.
//!
//! Readers are opened on first use and kept for reuse (at most [`IDLE_READERS`] idle); a
//! search borrows one for its SQLite reads and returns it. An in-memory shard has no second
//! connection to open: its reads borrow the writer's ([`Reader::Shared`]).
//!
//! Checkpoints. A WAL hook records the WAL's size after each commit (every file shard). When a
//! write burst fills the WAL past [`CHECKPOINT_PAGES`] the writer checkpoints inline, as
//! SQLite's own automatic checkpoint would: most of that cost is the fsync of a WAL that
//! `synchronous=NORMAL` never synced (16 MB at 16 KiB pages, ≈ 6 ms here). With the feature
//! `threads`, the common case never gets there: past [`IDLE_CHECKPOINT_PAGES`] the writer asks
//! one process-wide background thread for a `PASSIVE` checkpoint, which it runs once the shard
//! has seen no commit for [`IDLE`], so it neither delays a write nor competes with a burst of
//! them for the disk (measured: a checkpoint's fsyncs running beside a burst of single inserts
//! raised their p99 2.5×); the next write then starts the WAL over, so the file stays small and
//! is rewritten in place. An agent's writes (a few per second) never pay for a checkpoint.
//!
//! Closing. A closed shard is one self-contained file: when a `normal` handle closes
//! ([`CloseOnDrop`]), the same thread (or, without `threads`, the closing thread) checkpoints
//! the WAL into the database file and, when no other connection has the file open, SQLite
//! deletes the `-wal` and `-shm` files. Copying a closed shard's file copies all of it, a `-wal`
//! left beside it cannot be taken for its own, and a closed tiny shard costs its pages only.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OpenFlags};

use super::{open, Shard};
use crate::error::Result;
use crate::profile::Durability;
use crate::schema;

/// Idle readers a shard keeps open.
const IDLE_READERS: usize = 2;
/// Fewest items written between two merges of the full-text index ([`Writer::after_write`]).
pub(super) const MERGE_MIN_ITEMS: usize = 1000;
/// WAL pages past which the writer checkpoints inline (SQLite's own default).
pub(super) const CHECKPOINT_PAGES: u32 = 1000;
/// WAL pages past which a background checkpoint is asked for, to run when the shard is idle.
#[cfg(feature = "threads")]
const IDLE_CHECKPOINT_PAGES: u32 = 128;
/// How long a shard must see no commit before its background checkpoint runs.
#[cfg(feature = "threads")]
const IDLE: std::time::Duration = std::time::Duration::from_millis(5);

/// The write side: the writer connection and its id generator.
pub(super) struct Writer {
    pub(super) db: Connection,
    /// xorshift64* state for generated ids.
    pub(super) rng: u64,
    /// `PRAGMA data_version` of the writer when it last caught up: while it stays the same, no
    /// other connection has committed.
    pub(super) seen_data_version: Option<i64>,
    /// WAL pages after the last commit, from the WAL hook (`None` for an in-memory shard).
    wal_pages: Option<Arc<AtomicU32>>,
    /// Items written since the full-text index was last merged into one segment (since open).
    pub(super) text_debt: usize,
    /// Whether the current WAL generation holds the `meta` page with the shard's site id,
    /// written by one of this writer's commits (see [`Writer::wal_mark_needed`]).
    wal_marked: bool,
    /// The WAL hook's frame count after this writer's last commit: a smaller count after a
    /// commit means the WAL was started over.
    last_wal_pages: u32,
}

impl Writer {
    /// The writer of `db` (already configured); a file shard's WAL checkpoints follow the
    /// module docs.
    pub(super) fn new(db: Connection, seed: u64, file: bool) -> Result<Writer> {
        let mut db = db;
        let wal_pages = if file {
            let pages = Arc::new(AtomicU32::new(0));
            let hook = Arc::clone(&pages);
            // Replaces SQLite's automatic checkpoint (itself a WAL hook).
            db.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n| {
                hook.store(u32::try_from(n).unwrap_or(0), Ordering::Relaxed);
                Ok(())
            }))?;
            Some(pages)
        } else {
            None
        };
        Ok(Writer {
            db,
            rng: seed | 1,
            seen_data_version: None,
            wal_pages,
            text_debt: 0,
            wal_marked: false,
            last_wal_pages: 0,
        })
    }

    /// Whether the next write transaction must rewrite the `meta` page
    /// ([`schema::META_MARK_WAL`]): once in each WAL generation (after open, after a complete
    /// checkpoint of this handle, after the WAL was seen to start over), so that every WAL
    /// holds the shard's identity and a WAL copied beside another shard is recognised as
    /// foreign when that shard opens (`open::check_wal_owner`). One page per generation.
    pub(super) fn wal_mark_needed(&mut self, readers: &Readers) -> bool {
        if self.wal_pages.is_none() {
            return false;
        }
        if readers
            .0
            .as_ref()
            .is_some_and(|p| p.checkpointed.swap(false, Ordering::AcqRel))
        {
            self.wal_marked = false;
        }
        !self.wal_marked
    }

    /// After a commit of `written` items in a shard of `n_live`: merges the full-text index's
    /// segments (FTS5 `optimize`) once the items written since the last merge reach a quarter
    /// of the shard and at least [`MERGE_MIN_ITEMS`]. FTS5 adds a segment per transaction and
    /// merges them only by level (`automerge`), so a query reads each word's postings from
    /// several b-trees; one segment makes text search 13–43 % faster (25,000 debian texts
    /// written by 1,000 or 10 per transaction, k = 100 and 10). The merge rewrites the whole
    /// index (90 ms for those 25,000 texts) in its own transaction, after the commit (the write
    /// is durable already; a merge that fails is retried after a later write); the quarter
    /// bounds its cost to about four rewrites of each item's postings over the shard's life.
    pub(super) fn after_write(&mut self, written: usize, n_live: usize) {
        self.text_debt = self.text_debt.saturating_add(written);
        if self.text_debt < MERGE_MIN_ITEMS.max(n_live / 4) {
            return;
        }
        if !crate::fts::exists(&self.db).unwrap_or(false) {
            // No text written yet: nothing to merge.
            self.text_debt = 0;
            return;
        }
        match self.db.execute_batch(schema::FTS_OPTIMIZE) {
            Ok(()) => self.text_debt = 0,
            Err(e) => tracing::debug!("merging the full-text index failed: {e}"),
        }
    }

    /// After a commit (`marked`: it rewrote the `meta` page, see [`Writer::wal_mark_needed`]):
    /// see the module docs.
    pub(super) fn after_commit(&mut self, readers: &Readers, marked: bool) {
        let (Some(pages), Some(pool)) = (&self.wal_pages, &readers.0) else {
            return;
        };
        let n = pages.load(Ordering::Relaxed);
        let restarted = n < self.last_wal_pages;
        self.last_wal_pages = n;
        self.wal_marked = marked || (self.wal_marked && !restarted);
        if n >= CHECKPOINT_PAGES {
            // Best effort: a checkpoint that cannot finish now (readers on old frames) is tried
            // again after a later commit.
            if checkpoint(&self.db) == Ok(true) {
                self.wal_marked = false;
            }
        } else {
            #[cfg(feature = "threads")]
            if n >= IDLE_CHECKPOINT_PAGES {
                checkpointer::request(pool);
            }
            #[cfg(not(feature = "threads"))]
            let _ = pool;
        }
        #[cfg(feature = "threads")]
        pool.touched
            .store(checkpointer::now_us(), Ordering::Release);
    }
}

/// Checkpoints and deletes a `normal` file shard's WAL once the handle's own connections are
/// closed (it is the last field of [`Shard`]). Off the caller's path with `threads` (the
/// checkpoint's fsyncs cost 1–20 ms here); [`Shard::close`] does it before returning.
pub(super) struct CloseOnDrop {
    /// The shard file and its site id (hex).
    path: Option<(PathBuf, String)>,
    now: bool,
}

impl CloseOnDrop {
    /// For the shard file at `path` whose site id is `site_hex` (`None`: nothing to do on
    /// close).
    pub(super) fn new(path: Option<(PathBuf, String)>) -> CloseOnDrop {
        CloseOnDrop { path, now: false }
    }

    /// Makes the close run on the dropping thread, before the drop returns.
    pub(super) fn run_now(&mut self) {
        self.now = true;
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let Some(job) = self.path.take() else {
            return;
        };
        #[cfg(feature = "threads")]
        if !self.now {
            checkpointer::close_later(job);
            return;
        }
        close_file(&job);
    }
}

/// Checkpoints the WAL of the shard file at `path` (`TRUNCATE`, without waiting for other
/// connections) on a connection of its own, which closes with checkpoint-on-close: when it is
/// the file's last connection, SQLite deletes the `-wal` and `-shm` files. Only when both the
/// file and the WAL still belong to the shard with site id `site` (hex): a file dropped and
/// re-created or replaced meanwhile, or a WAL copied beside it, is left as it is (checkpointing
/// would write one shard's pages into another). Best effort: a file in use stays as it is; a
/// missing one is not recreated (no `CREATE` flag).
fn close_file((path, site): &(PathBuf, String)) {
    #[cfg(feature = "fs-metadata")]
    match open::identities(path) {
        Ok((in_file, Some(through_wal)))
            if &through_wal == site && in_file.as_ref().is_none_or(|f| f == site) => {}
        _ => return,
    }
    let _ = site;
    let Ok(db) = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return;
    };
    let _ = db.busy_timeout(std::time::Duration::ZERO);
    let _ = db.pragma_update(None, "synchronous", "NORMAL");
    let _ = db.query_row(schema::CHECKPOINT_TRUNCATE, [], |_| Ok(()));
}

/// Waits until the shard closes handed to the background thread (see [`CloseOnDrop`]) have
/// run, at most `timeout`; `true` when none is left. Call it before a process exits so the
/// shards it closed are single files on disk (a close that does not run leaves the WAL beside
/// the file, which is safe: the next open reads it).
pub fn wait_for_closes(timeout: std::time::Duration) -> bool {
    #[cfg(feature = "threads")]
    {
        checkpointer::wait_for_closes(timeout)
    }
    #[cfg(not(feature = "threads"))]
    {
        let _ = timeout;
        true
    }
}

/// Runs a `PASSIVE` checkpoint on `db`; `true` when every frame of the WAL is in the database
/// file (the next write starts the WAL over).
fn checkpoint(db: &Connection) -> rusqlite::Result<bool> {
    db.prepare_cached(schema::CHECKPOINT_PASSIVE)?
        .query_row([], |r| Ok(r.get::<_, i64>(1)? <= r.get::<_, i64>(2)?))
}

/// The read side: a pool of reader connections for a file shard, nothing for an in-memory one
/// (its reads borrow the writer).
pub(super) struct Readers(pub(super) Option<Arc<ReadPool>>);

impl Drop for Readers {
    /// Closes the pool's connections on this thread, before the shard's drop returns: the
    /// background checkpointer may hold the pool for a moment (a queued checkpoint), and a
    /// connection it kept open would keep the last close of the file (which checkpoints a
    /// `full` shard's WAL into it and deletes the WAL) from happening here. It is told to let
    /// go, and waited for (one `PASSIVE` checkpoint at most).
    fn drop(&mut self) {
        let Some(mut pool) = self.0.take() else {
            return;
        };
        pool.closing.store(true, Ordering::Release);
        loop {
            match Arc::try_unwrap(pool) {
                Ok(pool) => {
                    drop(pool);
                    return;
                }
                Err(shared) => {
                    pool = shared;
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            }
        }
    }
}

/// Reader connections of one shard file.
pub(super) struct ReadPool {
    path: PathBuf,
    /// The URI every reader opens instead of `path`, for a shard opened read-only.
    read_only_uri: Option<String>,
    durability: Durability,
    /// Whether readers map the file (an int8-only arena rescoring from the file).
    mapped: AtomicBool,
    idle: Mutex<Vec<ReadConn>>,
    /// Set when the shard closes: the checkpointer lets go of the pool (see `Readers::drop`).
    closing: AtomicBool,
    /// The in-memory text index the readers share.
    text: Arc<crate::fts::SharedText>,
    /// Set by a complete background checkpoint: the next write starts a new WAL generation.
    checkpointed: AtomicBool,
    /// A background checkpoint is queued or running.
    #[cfg(feature = "threads")]
    checkpoint_queued: AtomicBool,
    /// When the writer last committed (µs on the checkpointer's clock).
    #[cfg(feature = "threads")]
    touched: std::sync::atomic::AtomicU64,
}

/// One reader connection.
pub(super) struct ReadConn {
    pub(super) db: Connection,
    /// `PRAGMA data_version` when the shard's state was last found current through this
    /// connection (see `Shard::sync_reader`).
    pub(super) verified: Option<i64>,
    mapped: bool,
}

impl ReadPool {
    pub(super) fn new(
        path: PathBuf,
        durability: Durability,
        read_only_uri: Option<String>,
        text: Arc<crate::fts::SharedText>,
    ) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            path,
            read_only_uri,
            durability,
            mapped: AtomicBool::new(false),
            idle: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
            text,
            checkpointed: AtomicBool::new(false),
            #[cfg(feature = "threads")]
            checkpoint_queued: AtomicBool::new(false),
            #[cfg(feature = "threads")]
            touched: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Sets whether readers map the file (applied as each reader is next borrowed).
    pub(super) fn set_mapped(&self, mapped: bool) {
        self.mapped.store(mapped, Ordering::Relaxed);
    }

    /// An idle reader, or a new one.
    fn take(&self) -> Result<ReadConn> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(c) => c,
            None => {
                let db = match &self.read_only_uri {
                    Some(uri) => Connection::open_with_flags(uri, open::read_only_flags()),
                    None => Connection::open_with_flags(
                        &self.path,
                        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    ),
                }
                .map_err(|e| open::map_foreign(&self.path, e))?;
                open::configure_reader(&db, self.durability)?;
                crate::fts::share_text(&db, &self.text)?;
                ReadConn {
                    db,
                    verified: None,
                    mapped: false,
                }
            }
        };
        let mapped = self.mapped.load(Ordering::Relaxed);
        if conn.mapped != mapped {
            open::set_mapped(&conn.db, mapped)?;
            conn.mapped = mapped;
        }
        Ok(conn)
    }

    fn give_back(&self, conn: ReadConn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// A borrowed reader: a pooled connection (returned on drop), or the writer's connection of an
/// in-memory shard.
pub(super) enum Reader<'a> {
    /// A reader of the pool.
    Pooled {
        pool: &'a ReadPool,
        conn: Option<ReadConn>,
    },
    /// The writer's connection (in-memory shards).
    Shared(MutexGuard<'a, Writer>),
}

impl Reader<'_> {
    /// The connection.
    pub(super) fn db(&self) -> &Connection {
        match self {
            Reader::Pooled { conn, .. } => &conn.as_ref().expect("taken until drop").db,
            Reader::Shared(w) => &w.db,
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Reader::Pooled { pool, conn } = self {
            if let Some(c) = conn.take() {
                pool.give_back(c);
            }
        }
    }
}

impl Shard {
    /// A reader (see [`Reader`]). Lock order: call it before taking the state lock.
    ///
    /// # Errors
    /// [`crate::Error`] from opening a new reader connection.
    pub(super) fn reader(&self) -> Result<Reader<'_>> {
        match &self.readers.0 {
            Some(pool) => Ok(Reader::Pooled {
                conn: Some(pool.take()?),
                pool,
            }),
            None => Ok(Reader::Shared(self.lock_writer()?)),
        }
    }
}

#[cfg(feature = "threads")]
mod checkpointer {
    //! One process-wide thread running the checkpoints the writers ask for, each once its shard
    //! has been idle for [`IDLE`].

    use std::path::PathBuf;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
    use std::time::{Duration, Instant};

    use super::{checkpoint, close_file, ReadPool, IDLE};

    /// A shard file to close and its site id (hex).
    type CloseJob = (PathBuf, String);

    /// Work for the thread.
    enum Job {
        /// A `PASSIVE` checkpoint once the shard is idle.
        Checkpoint(Weak<ReadPool>),
        /// The checkpoint and WAL deletion of a closed shard file.
        Close(CloseJob),
    }

    static QUEUE: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Closes queued and not yet run, and its change signal.
    static CLOSES: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

    fn queue() -> &'static Option<Sender<Job>> {
        QUEUE.get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            std::thread::Builder::new()
                .name("sqlite-vector-checkpoint".into())
                .spawn(move || {
                    for job in rx {
                        match job {
                            Job::Checkpoint(pool) => run_when_idle(&pool),
                            Job::Close(path) => {
                                close_file(&path);
                                closed_one();
                            }
                        }
                    }
                })
                .ok()
                .map(|_| tx)
        })
    }

    fn closed_one() {
        let mut n = CLOSES.0.lock().unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        CLOSES.1.notify_all();
    }

    /// Queues the close of the shard file at `path` (runs it now if the thread is missing).
    pub(super) fn close_later(path: CloseJob) {
        *CLOSES.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        match queue() {
            Some(tx) => {
                if let Err(e) = tx.send(Job::Close(path)) {
                    let Job::Close(path) = e.0 else {
                        unreachable!("sent a close")
                    };
                    close_file(&path);
                    closed_one();
                }
            }
            None => {
                close_file(&path);
                closed_one();
            }
        }
    }

    /// See [`super::wait_for_closes`].
    pub(super) fn wait_for_closes(timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = CLOSES.0.lock().unwrap_or_else(PoisonError::into_inner);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = CLOSES
                .1
                .wait_timeout(n, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Microseconds on the checkpointer's monotonic clock.
    pub(super) fn now_us() -> u64 {
        EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
    }

    /// Checkpoints `pool`'s file once it has seen no commit for [`IDLE`]; nothing once the
    /// shard has closed. Holds the pool only while it checks and while it checkpoints, never
    /// while it waits (see `Readers::drop`).
    fn run_when_idle(pool: &Weak<ReadPool>) {
        let pool = loop {
            let Some(pool) = pool.upgrade() else { return };
            if pool.closing.load(Ordering::Acquire) {
                return;
            }
            let idle = now_us().saturating_sub(pool.touched.load(Ordering::Acquire));
            let wait = (IDLE.as_micros() as u64).saturating_sub(idle);
            if wait == 0 {
                break pool;
            }
            drop(pool);
            std::thread::sleep(Duration::from_micros(wait));
        };
        pool.checkpoint_queued.store(false, Ordering::Release);
        // Best effort: a failed checkpoint is asked for again by a later commit.
        if let Ok(conn) = pool.take() {
            if checkpoint(&conn.db) == Ok(true) {
                pool.checkpointed.store(true, Ordering::Release);
            }
            pool.give_back(conn);
        }
    }

    /// Queues a `PASSIVE` checkpoint of `pool`'s file (once until it has run).
    pub(super) fn request(pool: &Arc<ReadPool>) {
        if pool.checkpoint_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        match queue() {
            Some(tx) if tx.send(Job::Checkpoint(Arc::downgrade(pool))).is_ok() => {}
            // No thread (it could not be started): the writer's inline checkpoint remains.
            _ => pool.checkpoint_queued.store(false, Ordering::Release),
        }
    }
}
