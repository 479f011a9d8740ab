//! A shard's connections: one writer, a pool of readers (file shards), and the background WAL
//! checkpoints.
//!
//! Readers are opened on first use and kept for reuse (at most [`IDLE_READERS`] idle); a
//! search borrows one for its SQLite reads and returns it. An in-memory shard has no second
//! connection to open: its reads borrow the writer's ([`Reader::Shared`]).
//!
//! With the feature `threads`, checkpoints move off the write path. SQLite's automatic
//! checkpoint copies the WAL into the database file inside the commit that crosses 1,000 pages,
//! and most of its cost is the fsync of a WAL that `synchronous=NORMAL` never synced (16 MB at
//! 16 KiB pages: ≈ 6 ms here), which is the tail of single-insert latency. Instead a WAL hook
//! records the WAL's size after each commit; past [`CHECKPOINT_PAGES`] the writer asks one
//! process-wide background thread for a `PASSIVE` checkpoint (it copies frames and syncs without
//! blocking writers or readers), and once that has copied all but [`FINISH_PAGES`] frames the
//! writer finishes the job itself: a checkpoint of the few frames left (two small fsyncs), after
//! which the next write starts the WAL over, so the file stays bounded and is rewritten in place.
//! A WAL past [`INLINE_CHECKPOINT_PAGES`] (the thread cannot keep up) is checkpointed inline.

use std::path::PathBuf;
#[cfg(feature = "threads")]
use std::sync::atomic::AtomicU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OpenFlags};

use super::{open, Shard};
use crate::error::Result;
use crate::profile::Durability;
use crate::schema;

/// Idle readers a shard keeps open.
const IDLE_READERS: usize = 2;
/// WAL pages after which a background checkpoint is requested (SQLite's own default).
pub(super) const CHECKPOINT_PAGES: u32 = 1000;
/// Frames not yet copied by the background checkpoint below which the writer finishes it.
#[cfg(feature = "threads")]
const FINISH_PAGES: u32 = 64;
/// WAL pages after which the writer checkpoints itself.
#[cfg(feature = "threads")]
const INLINE_CHECKPOINT_PAGES: u32 = 16 * CHECKPOINT_PAGES;

/// The write side: the writer connection and its id generator.
pub(super) struct Writer {
    pub(super) db: Connection,
    /// xorshift64* state for generated ids.
    pub(super) rng: u64,
    /// `PRAGMA data_version` of the writer when it last caught up: while it stays the same, no
    /// other connection has committed.
    pub(super) seen_data_version: Option<i64>,
    /// WAL pages after the last commit, from the WAL hook (`None`: SQLite checkpoints inline).
    #[cfg(feature = "threads")]
    wal_pages: Option<Arc<AtomicU32>>,
}

impl Writer {
    /// The writer of `db` (already configured), with WAL checkpoints moved off the write path
    /// when the shard is a file and the `threads` feature is on.
    pub(super) fn new(db: Connection, seed: u64, file: bool) -> Result<Writer> {
        #[cfg(feature = "threads")]
        {
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
            })
        }
        #[cfg(not(feature = "threads"))]
        {
            let _ = file;
            Ok(Writer {
                db,
                rng: seed | 1,
                seen_data_version: None,
            })
        }
    }

    /// After a commit: see the module docs.
    pub(super) fn after_commit(&self, readers: &Readers) {
        #[cfg(feature = "threads")]
        if let (Some(pages), Some(pool)) = (&self.wal_pages, &readers.0) {
            let n = pages.load(Ordering::Relaxed);
            if n < CHECKPOINT_PAGES {
                return;
            }
            // Frames the background checkpoint copied in this WAL (0 once the WAL started over).
            let copied = pool.copied.load(Ordering::Acquire);
            let copied = if copied > n { 0 } else { copied };
            let queued = pool.checkpoint_queued.load(Ordering::Acquire);
            if n >= INLINE_CHECKPOINT_PAGES || (!queued && n - copied <= FINISH_PAGES) {
                // Best effort: a checkpoint that cannot finish now (readers on old frames) is
                // tried again after a later commit.
                if checkpoint(&self.db).unwrap_or(false) {
                    pool.copied.store(0, Ordering::Release);
                }
            } else {
                checkpointer::request(pool);
            }
        }
        #[cfg(not(feature = "threads"))]
        let _ = readers;
    }

    /// When the handle closes: checkpoint a WAL past [`CHECKPOINT_PAGES`] (closing under
    /// `normal` otherwise leaves the WAL for the next open to read through; a small one costs
    /// nothing to keep, a big one slows every read until it is checkpointed).
    pub(super) fn before_close(&self) {
        #[cfg(feature = "threads")]
        if self
            .wal_pages
            .as_ref()
            .is_some_and(|p| p.load(Ordering::Relaxed) >= CHECKPOINT_PAGES)
        {
            let _ = checkpoint(&self.db);
        }
    }
}

/// Runs a `PASSIVE` checkpoint on `db`: frames in the WAL and frames copied into the database
/// file.
#[cfg_attr(not(feature = "threads"), allow(dead_code))]
fn checkpoint_frames(db: &Connection) -> rusqlite::Result<(i64, i64)> {
    db.prepare_cached(schema::CHECKPOINT_PASSIVE)?
        .query_row([], |r| Ok((r.get(1)?, r.get(2)?)))
}

/// [`checkpoint_frames`]; `true` when every frame of the WAL is in the database file (the next
/// write starts the WAL over).
#[cfg_attr(not(feature = "threads"), allow(dead_code))]
fn checkpoint(db: &Connection) -> rusqlite::Result<bool> {
    checkpoint_frames(db).map(|(log, done)| log <= done)
}

/// The read side: a pool of reader connections for a file shard, nothing for an in-memory one
/// (its reads borrow the writer).
pub(super) struct Readers(pub(super) Option<Arc<ReadPool>>);

/// Reader connections of one shard file.
pub(super) struct ReadPool {
    path: PathBuf,
    durability: Durability,
    /// Whether readers map the file (an int8-only arena rescoring from the file).
    mapped: AtomicBool,
    idle: Mutex<Vec<ReadConn>>,
    /// A background checkpoint is queued or running.
    #[cfg(feature = "threads")]
    checkpoint_queued: AtomicBool,
    /// WAL frames the last background checkpoint copied into the database file.
    #[cfg(feature = "threads")]
    copied: AtomicU32,
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
    pub(super) fn new(path: PathBuf, durability: Durability) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            path,
            durability,
            mapped: AtomicBool::new(false),
            idle: Mutex::new(Vec::new()),
            #[cfg(feature = "threads")]
            checkpoint_queued: AtomicBool::new(false),
            #[cfg(feature = "threads")]
            copied: AtomicU32::new(0),
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
                let db = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| open::map_foreign(&self.path, e))?;
                open::configure_reader(&db, self.durability)?;
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
    //! One process-wide thread running the checkpoints the writers ask for.

    use std::sync::atomic::Ordering;
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Arc, OnceLock, Weak};

    use super::{checkpoint_frames, ReadPool};

    static QUEUE: OnceLock<Option<Sender<Weak<ReadPool>>>> = OnceLock::new();

    /// Queues a `PASSIVE` checkpoint of `pool`'s file (once until it has run).
    pub(super) fn request(pool: &Arc<ReadPool>) {
        if pool.checkpoint_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let queue = QUEUE.get_or_init(|| {
            let (tx, rx) = channel::<Weak<ReadPool>>();
            std::thread::Builder::new()
                .name("sqlite-vector-checkpoint".into())
                .spawn(move || {
                    for job in rx {
                        let Some(pool) = job.upgrade() else { continue };
                        // Best effort: a failed checkpoint is asked for again by a later commit.
                        if let Ok(conn) = pool.take() {
                            if let Ok((_, copied)) = checkpoint_frames(&conn.db) {
                                let copied = u32::try_from(copied).unwrap_or(0);
                                pool.copied.store(copied, Ordering::Release);
                            }
                            pool.give_back(conn);
                        }
                        pool.checkpoint_queued.store(false, Ordering::Release);
                    }
                })
                .ok()
                .map(|_| tx)
        });
        match queue {
            Some(tx) if tx.send(Arc::downgrade(pool)).is_ok() => {}
            // No thread (it could not be started): the writer's inline checkpoint at
            // INLINE_CHECKPOINT_PAGES remains.
            _ => pool.checkpoint_queued.store(false, Ordering::Release),
        }
    }
}
