//! A shard's connections: one writer, a pool of readers (file shards), and the background WAL
//! checkpoints.
//!
//! Readers are opened on first use and kept for reuse (at most [`IDLE_READERS`] idle); a
//! search borrows one for its SQLite reads and returns it. An in-memory shard has no second
//! connection to open: its reads borrow the writer's ([`Reader::Shared`]).
//!
//! With the feature `threads`, the writer's automatic checkpoint is replaced: a WAL hook
//! records the WAL's size after each commit, and past [`CHECKPOINT_PAGES`] the writer asks one
//! process-wide background thread to run a `PASSIVE` checkpoint on a reader (which copies WAL
//! frames into the database file without blocking writers or readers). The write path then never
//! pays for a checkpoint unless the WAL grows past [`INLINE_CHECKPOINT_PAGES`] (the background
//! thread cannot keep up, or readers pin old frames).

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
/// WAL pages after which the writer checkpoints itself.
#[cfg(feature = "threads")]
const INLINE_CHECKPOINT_PAGES: u32 = 16 * CHECKPOINT_PAGES;

/// The write side: the writer connection and its id generator.
pub(super) struct Writer {
    pub(super) db: Connection,
    /// xorshift64* state for generated ids.
    pub(super) rng: u64,
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
                wal_pages,
            })
        }
        #[cfg(not(feature = "threads"))]
        {
            let _ = file;
            Ok(Writer { db, rng: seed | 1 })
        }
    }

    /// After a commit: a background checkpoint when the WAL passed [`CHECKPOINT_PAGES`], an
    /// inline one when it passed [`INLINE_CHECKPOINT_PAGES`].
    pub(super) fn after_commit(&self, readers: &Readers) {
        #[cfg(feature = "threads")]
        if let (Some(pages), Some(pool)) = (&self.wal_pages, &readers.0) {
            let n = pages.load(Ordering::Relaxed);
            if n >= INLINE_CHECKPOINT_PAGES {
                // Best effort: a checkpoint that cannot finish now is retried by the next one.
                let _ = checkpoint(&self.db);
                pages.store(0, Ordering::Relaxed);
            } else if n >= CHECKPOINT_PAGES {
                checkpointer::request(pool);
            }
        }
        #[cfg(not(feature = "threads"))]
        let _ = readers;
    }
}

/// Runs a `PASSIVE` checkpoint on `db`.
#[cfg_attr(not(feature = "threads"), allow(dead_code))]
fn checkpoint(db: &Connection) -> rusqlite::Result<()> {
    db.prepare_cached(schema::CHECKPOINT_PASSIVE)?
        .query_row([], |_| Ok(()))
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
    /// A background checkpoint is queued.
    #[cfg(feature = "threads")]
    checkpoint_queued: AtomicBool,
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

    use super::{checkpoint, ReadPool};

    static QUEUE: OnceLock<Option<Sender<Weak<ReadPool>>>> = OnceLock::new();

    /// Queues a checkpoint of `pool`'s file (once until it has run).
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
                        pool.checkpoint_queued.store(false, Ordering::Release);
                        // Best effort: a checkpoint that cannot finish (readers on old frames)
                        // is asked for again by a later commit.
                        if let Ok(conn) = pool.take() {
                            let _ = checkpoint(&conn.db);
                            pool.give_back(conn);
                        }
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
