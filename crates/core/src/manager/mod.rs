//! The shard manager: many named shards under one root directory, an LRU set of open handles,
//! and search across shards.
//!
//! # Names
//! A shard name is 1–128 characters from `[A-Za-z0-9._-]`, with `/` separating namespace
//! segments (`team-a/coder`). No segment is empty, `.` or `..`; a name neither starts nor ends
//! with `/`. Anything else (NUL, `\`, spaces, non-ASCII, ...) is refused with
//! [`Error::InvalidArgument`] before the filesystem is touched ([`validate_name`]). Names never
//! become file names: they live only in the catalog.
//!
//! # Layout on disk
//! ```text
//! root/
//!   catalog.db        SQLite (WAL): shards(id INTEGER PRIMARY KEY AUTOINCREMENT, name UNIQUE,
//!                     state 'creating'|'ready'|'dropping', profile JSON, created_at Unix s)
//!   lock              advisory file lock: shared while a manager is open, exclusive for recovery
//!   shards/<xx>/<id>.db   one shard file per catalog row; <xx> = id % 256 in two hex digits
//! ```
//! The 256 fan-out directories keep directories small: 100,000 shards are about 400 files per
//! directory. Closed shards leave no `-wal`/`-shm` files (SQLite checkpoints and removes them on
//! close).
//!
//! # Crash safety
//! * **create**: insert the catalog row with state `creating` (commit) → remove any stale file
//!   at the id's path → create the shard file → set state `ready` (commit).
//! * **drop**: set state `dropping` (commit) → close the manager's handle → take the shard's
//!   write lock → remove `.db`, `-wal`, `-shm`, `-journal` → release the lock → delete the row.
//!
//! A process that dies between two steps leaves a `creating` or `dropping` row. When a manager
//! opens a root and no other manager (in any process) has it open, it finishes pending drops and
//! undoes pending creates (removes their files and rows), so the name can be created again. Ids
//! are never reused, except after a power failure lost the last catalog commits: a shard file
//! whose row was lost that way is removed when its id is handed out again. Only `ready` rows are visible to [`ShardManager::open_shard`], `list` and searches.
//!
//! The catalog's durability follows [`ManagerOptions::durability`] (`normal` by default: a
//! returned create or drop survives a crash of the process, the last ones may be lost with power).
//!
//! # Handles
//! Shards are handed out as `Arc<Shard>`, one handle per shard per manager. The manager keeps the
//! most recently used [`ManagerOptions::capacity`] of them open; eviction only drops the
//! manager's reference, so a handle a caller still holds stays usable (and is handed out again,
//! rather than a second one opened, while it lives). [`ShardManager::drop_shard`] refuses a shard
//! that a caller still holds.
//!
//! Another process, or another manager on the same root, may drop a shard this manager has
//! open, and create a new one of the same name. Before [`ShardManager::open_shard`] hands out
//! a cached handle it compares the file's identity (device and inode) with the path's and
//! reopens the shard if they differ; every commit of a handle the manager opened repeats that
//! check with the write lock held, and fails with [`Error::ShardDropped`] (nothing written)
//! when the file is gone or replaced. A write the manager's handles acknowledge is therefore
//! never lost in a dropped file: see [`files`] for the exact guarantee and its cost.
//!
//! # Links and file descriptors
//! Shard directories and files are never reached through a symbolic link inside the root
//! (create, open and drop refuse one with [`Error::Io`]; the root itself may be a link). The
//! number of shards kept open is capped by the file-descriptor limit (see
//! [`ManagerOptions::capacity`]); when opening a shard still runs out of descriptors, the
//! manager closes idle shards and tries again, and says "too many open files" if that is not
//! enough.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::profile::{Durability, Profile};
use crate::schema;
use crate::shard::{Hit, OpenOptions, Shard, Stats};

mod files;
mod search;

use files::{FileId, OpenFile};

/// Longest shard name, in characters (all ASCII).
pub const MAX_NAME_LEN: usize = 128;

/// Suffixes of the files SQLite may keep for one database.
const FILE_SUFFIXES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

/// Options of [`ShardManager::open`].
#[derive(Clone)]
pub struct ManagerOptions {
    /// How many shards the manager keeps open (least recently used are closed first); default
    /// 256. 0 keeps none open beyond the handles callers hold. On unix the manager keeps fewer
    /// when the file-descriptor limit (`RLIMIT_NOFILE`, soft) is too low for this many: an open
    /// shard costs up to 7 descriptors (its writer's database file and WAL, the shared `-shm`,
    /// two idle readers' database file and WAL), and a quarter of the limit (at least 32) is
    /// left to the rest of the process; see [`ShardManager::capacity`].
    pub capacity: usize,
    /// Durability of the catalog's commits: `normal` (default) or `full`.
    pub durability: Durability,
    /// The clock of the catalog's creation times and of every shard the manager opens
    /// (`None`: the system clock).
    pub clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for ManagerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerOptions")
            .field("capacity", &self.capacity)
            .field("durability", &self.durability)
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            capacity: 256,
            durability: Durability::Normal,
            clock: None,
        }
    }
}

impl ManagerOptions {
    /// Sets the number of shards kept open.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }
    /// Sets the catalog's durability.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// One shard in [`ShardManager::list`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardInfo {
    /// The shard's name.
    pub name: String,
    /// Its profile, as created.
    pub profile: Profile,
    /// Bytes of its file plus its WAL.
    pub bytes_on_disk: u64,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// The shard file.
    pub path: PathBuf,
}

/// One hit of a search across shards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardHit {
    /// The shard the hit comes from.
    pub shard: String,
    /// The hit (serialized inline: `{"shard", "id", "score", "metadata", "text"}`).
    #[serde(flatten)]
    pub hit: Hit,
}

/// A shard whose search failed, in [`MultiSearch::failures`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardFailure {
    /// The shard's name.
    pub shard: String,
    /// What went wrong (the error's message).
    pub error: String,
}

/// The result of a search across shards.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MultiSearch {
    /// The merged top k, best first; ties broken by id, then shard name.
    pub hits: Vec<ShardHit>,
    /// Shards that could not be searched: unknown names first, then shards that failed to open
    /// or search (unreadable, corrupt, ...), each in target order.
    pub failures: Vec<ShardFailure>,
}

/// Which shards a search across shards reads.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// These names, in this order (repeats are searched once). Unknown names become
    /// [`MultiSearch::failures`] entries.
    Names(&'a [&'a str]),
    /// Every shard whose name starts with this string (e.g. `team-a/`), in name order.
    Prefix(&'a str),
}

/// Checks a shard name (see the [module docs](self)).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the rule broken.
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty".to_string()
    } else if name.contains('\0') {
        "contains a NUL byte".to_string()
    } else if name.starts_with('/') {
        "starts with '/' (names are relative)".to_string()
    } else if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        format!("character {c:?} not allowed (use A-Z a-z 0-9 . _ - and '/' between segments)")
    } else if name.len() > MAX_NAME_LEN {
        format!("longer than {MAX_NAME_LEN} characters")
    } else if name.ends_with('/') {
        "ends with '/'".to_string()
    } else if name.split('/').any(str::is_empty) {
        "has an empty segment ('//')".to_string()
    } else if name.split('/').any(|s| s == "." || s == "..") {
        "has a '.' or '..' segment".to_string()
    } else {
        return Ok(());
    };
    let shown: String = name.chars().take(64).collect();
    Err(Error::InvalidArgument(format!(
        "invalid shard name {shown:?}: {reason}"
    )))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_NAME_LEN || !prefix.chars().all(is_name_char) {
        let shown: String = prefix.chars().take(64).collect();
        return Err(Error::InvalidArgument(format!(
            "invalid shard name prefix {shown:?}: at most {MAX_NAME_LEN} characters from \
             A-Z a-z 0-9 . _ - /"
        )));
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes a database file and its companions; missing files are fine.
fn remove_db_files(path: &Path) -> Result<()> {
    for suffix in FILE_SUFFIXES {
        match std::fs::remove_file(with_suffix(path, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

fn bytes_on_disk(path: &Path) -> u64 {
    let len = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    len(path.to_path_buf()) + len(with_suffix(path, "-wal"))
}

fn parse_profile(json: &str, name: &str) -> Result<Profile> {
    serde_json::from_str(json)
        .map_err(|e| Error::Corrupt(format!("catalog profile of shard {name:?}: {e}")))
}

/// The handles the manager knows about: every live one (weak), the LRU set (strong).
#[derive(Default)]
struct Registry {
    entries: HashMap<String, Entry>,
    /// tick → (name, handle); the smallest tick is the least recently used.
    lru: BTreeMap<u64, (String, Arc<Shard>)>,
    tick: u64,
    /// `entries` is pruned of dead handles when it grows past this.
    prune_at: usize,
}

struct Entry {
    handle: Weak<Shard>,
    /// The shard's catalog id and the identity of the file the handle has open.
    file: OpenFile,
    /// Key in `Registry::lru` while the manager holds the handle.
    tick: Option<u64>,
}

impl Registry {
    /// The live handle of `name`, marked most recently used.
    fn get(
        &mut self,
        name: &str,
        capacity: usize,
        evicted: &mut Vec<Arc<Shard>>,
    ) -> Option<(Arc<Shard>, OpenFile)> {
        let entry = self.entries.get(name)?;
        let (shard, file) = (entry.handle.upgrade()?, entry.file);
        self.touch(name, &shard, capacity, evicted);
        Some((shard, file))
    }

    fn insert(
        &mut self,
        name: &str,
        shard: &Arc<Shard>,
        file: OpenFile,
        capacity: usize,
        evicted: &mut Vec<Arc<Shard>>,
    ) {
        if let Some(old) = self.remove(name) {
            evicted.push(old);
        }
        self.entries.insert(
            name.to_string(),
            Entry {
                handle: Arc::downgrade(shard),
                file,
                tick: None,
            },
        );
        self.touch(name, shard, capacity, evicted);
        // Forget handles that died outside the LRU set, so the map stays bounded (amortized:
        // the threshold doubles with the entries that stay).
        if self.entries.len() > self.prune_at.max(2 * capacity + 64) {
            self.entries
                .retain(|_, e| e.tick.is_some() || e.handle.strong_count() > 0);
            self.prune_at = 2 * self.entries.len();
        }
    }

    fn touch(
        &mut self,
        name: &str,
        shard: &Arc<Shard>,
        capacity: usize,
        evicted: &mut Vec<Arc<Shard>>,
    ) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        if let Some(t) = entry.tick.take() {
            self.lru.remove(&t); // not the last reference: the caller holds `shard`
        }
        if capacity == 0 {
            return;
        }
        self.tick += 1;
        entry.tick = Some(self.tick);
        self.lru
            .insert(self.tick, (name.to_string(), shard.clone()));
        while self.lru.len() > capacity {
            if let Some((_, (old, s))) = self.lru.pop_first() {
                if let Some(e) = self.entries.get_mut(&old) {
                    e.tick = None;
                }
                evicted.push(s);
            }
        }
    }

    /// Forgets `name`; returns the manager's handle if it held one.
    fn remove(&mut self, name: &str) -> Option<Arc<Shard>> {
        let entry = self.entries.remove(name)?;
        entry.tick.and_then(|t| self.lru.remove(&t)).map(|(_, s)| s)
    }

    /// Forgets `name` if its handle is `shard` (not one opened since); returns the manager's
    /// handle if it held one.
    fn remove_handle(&mut self, name: &str, shard: &Arc<Shard>) -> Option<Arc<Shard>> {
        let same = self
            .entries
            .get(name)
            .is_some_and(|e| std::ptr::eq(e.handle.as_ptr(), Arc::as_ptr(shard)));
        if same {
            self.remove(name)
        } else {
            None
        }
    }

    /// Closes the least recently used half of the handles only the manager holds (at least
    /// one); returns them, to be dropped outside the lock, or an empty list if there were none.
    fn shed(&mut self) -> Vec<Arc<Shard>> {
        let idle: Vec<u64> = self
            .lru
            .iter()
            .filter(|(_, (_, s))| Arc::strong_count(s) == 1)
            .map(|(t, _)| *t)
            .collect();
        let n = idle.len().div_ceil(2);
        let mut closed = Vec::with_capacity(n);
        for t in idle.into_iter().take(n) {
            if let Some((name, s)) = self.lru.remove(&t) {
                if let Some(e) = self.entries.get_mut(&name) {
                    e.tick = None;
                }
                closed.push(s);
            }
        }
        closed
    }
}

/// Named shards under one root directory (see the [module docs](self) for names, layout and
/// crash safety). `Send + Sync`: share it behind an `Arc`.
///
/// ```
/// use sqlite_vector::manager::{ManagerOptions, ShardManager};
/// use sqlite_vector::{Metric, NewItem, Profile, SearchParams};
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = ShardManager::open(dir.path(), ManagerOptions::default())?;
/// let profile = Profile::new(2, Metric::Cosine);
/// manager.create("team-a/coder", &profile)?.insert(NewItem::new(vec![1.0, 0.0]).with_id("x"))?;
/// manager.create("team-a/writer", &profile)?.insert(NewItem::new(vec![0.0, 1.0]).with_id("y"))?;
/// let found = manager.search_prefix("team-a/", &[0.9, 0.1], &SearchParams::k(2))?;
/// assert_eq!(found.hits[0].shard, "team-a/coder");
/// assert_eq!(found.hits[1].hit.id, "y");
/// # Ok::<(), sqlite_vector::Error>(())
/// ```
pub struct ShardManager {
    root: PathBuf,
    capacity: usize,
    catalog: Mutex<Connection>,
    /// Lock order: registry, then catalog.
    registry: Mutex<Registry>,
    /// Held (shared) for the manager's lifetime; see the module docs.
    #[cfg_attr(not(feature = "file-locks"), allow(dead_code))]
    lock_file: File,
    clock: Arc<dyn Clock>,
    /// How shards are opened (the clock).
    open_options: OpenOptions,
}

impl ShardManager {
    /// Opens the manager of `root`, creating the directory and its catalog if missing, and
    /// recovers from interrupted creates and drops when no other manager has `root` open.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for durability `memory`; [`Error::Io`] when `root` cannot be
    /// created or locked; [`Error::NotAShard`] when `root/catalog.db` is not a catalog;
    /// [`Error::UnsupportedFormat`] for a newer catalog; [`Error::Sqlite`].
    pub fn open(root: impl AsRef<Path>, options: ManagerOptions) -> Result<ShardManager> {
        let root = root.as_ref().to_path_buf();
        let sync = match options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
            Durability::Memory => {
                let msg =
                    "a shard manager keeps its catalog on disk: durability must be normal or full";
                return Err(Error::InvalidArgument(msg.into()));
            }
        };
        let clock = match &options.clock {
            Some(c) => Arc::clone(c),
            None => crate::clock::default_clock()?,
        };
        std::fs::create_dir_all(root.join("shards"))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))?;
        // Recovery only when nobody else has the root open: their creates and drops in
        // progress look exactly like interrupted ones. Without file locks (the feature
        // `file-locks`), one process is assumed to own the root.
        #[cfg(feature = "file-locks")]
        let alone = match lock.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                true
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        };
        #[cfg(not(feature = "file-locks"))]
        let alone = true;
        let db = Self::open_catalog(&root.join("catalog.db"), sync)?;
        let capacity = match files::fd_limit() {
            Some(limit) => options.capacity.min(files::capacity_for_fds(limit)),
            None => options.capacity,
        };
        let manager = ShardManager {
            root,
            capacity,
            catalog: Mutex::new(db),
            registry: Mutex::new(Registry::default()),
            lock_file: lock,
            open_options: OpenOptions::default().with_clock(Arc::clone(&clock)),
            clock,
        };
        if alone {
            manager.recover()?;
        }
        #[cfg(feature = "file-locks")]
        match manager.lock_file.lock_shared() {
            Err(e) if e.kind() != std::io::ErrorKind::Unsupported => return Err(e.into()),
            _ => {}
        }
        Ok(manager)
    }

    fn open_catalog(path: &Path, sync: &str) -> Result<Connection> {
        let mut db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let not_catalog = || Error::NotAShard(format!("{} is not a shard catalog", path.display()));
        let app: i64 = db
            .query_row(schema::GET_APPLICATION_ID, [], |r| r.get(0))
            .map_err(|_| not_catalog())?;
        db.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        db.pragma_update(None, "synchronous", sync)?;
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row(schema::GET_USER_VERSION, [], |r| r.get(0))?;
        if app == 0 && version == 0 {
            let tables: i64 = tx.query_row(schema::COUNT_SCHEMA_OBJECTS, [], |r| r.get(0))?;
            if tables > 0 {
                return Err(not_catalog());
            }
            tx.execute_batch(schema::CATALOG_DDL)?;
            tx.pragma_update(None, "application_id", schema::CATALOG_APPLICATION_ID)?;
            tx.pragma_update(None, "user_version", schema::CATALOG_VERSION)?;
        } else if app != schema::CATALOG_APPLICATION_ID {
            return Err(not_catalog());
        } else if version > schema::CATALOG_VERSION {
            return Err(Error::UnsupportedFormat {
                found: version as u32,
                supported: schema::CATALOG_VERSION as u32,
            });
        }
        tx.commit()?;
        Ok(db)
    }

    /// Finishes interrupted drops and undoes interrupted creates.
    fn recover(&self) -> Result<()> {
        let pending: Vec<i64> = {
            let db = self.lock_catalog();
            let mut stmt = db.prepare(schema::CATALOG_PENDING)?;
            let ids = stmt.query_map([], |r| r.get(0))?;
            ids.collect::<rusqlite::Result<_>>()?
        };
        for id in pending {
            let path = self.shard_path(id);
            // Never through a link out of the root: such a row stays pending (and its name
            // taken) until the link is removed.
            if let Err(e) = files::check_no_links(&self.root, &path) {
                tracing::warn!("not recovering shard file {}: {e}", path.display());
                continue;
            }
            remove_db_files(&path)?;
            self.lock_catalog().execute(schema::CATALOG_DELETE, [id])?;
        }
        Ok(())
    }

    fn lock_catalog(&self) -> MutexGuard<'_, Connection> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn lock_registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many shards the manager holds open now (at most the capacity).
    pub fn open_count(&self) -> usize {
        self.lock_registry().lru.len()
    }

    /// How many shards the manager keeps open at most: [`ManagerOptions::capacity`], lowered
    /// to what the file-descriptor limit affords (see there).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The file of the shard with catalog id `id`: `root/shards/<id % 256 in hex>/<id>.db`.
    fn shard_path(&self, id: i64) -> PathBuf {
        self.root
            .join("shards")
            .join(format!("{:02x}", id.rem_euclid(256)))
            .join(format!("{id}.db"))
    }

    /// The id and profile of a `ready` shard.
    fn lookup(&self, name: &str) -> Result<Option<(i64, Profile)>> {
        let db = self.lock_catalog();
        let row: Option<(i64, String)> = db
            .prepare_cached(schema::CATALOG_LOOKUP)?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        drop(db);
        row.map(|(id, p)| Ok((id, parse_profile(&p, name)?)))
            .transpose()
    }

    /// Creates a shard named `name` and returns its handle.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid name or profile (or durability `memory`);
    /// [`Error::AlreadyExists`] if the name is taken (or being created or dropped);
    /// [`Error::Sqlite`] / [`Error::Io`] when the catalog or the file cannot be written (nothing
    /// is left behind), when the shard's directory is a symbolic link, or (saying "too many
    /// open files") when descriptors run out although idle shards were closed.
    pub fn create(&self, name: &str, profile: &Profile) -> Result<Arc<Shard>> {
        validate_name(name)?;
        profile.validate()?;
        if profile.durability == Durability::Memory {
            return Err(Error::InvalidArgument(
                "a managed shard lives on disk: durability must be normal or full".into(),
            ));
        }
        let id = {
            let db = self.lock_catalog();
            let r = db.prepare_cached(schema::CATALOG_INSERT)?.execute(params![
                name,
                serde_json::to_string(profile)?,
                self.clock.now_ms() / 1000
            ]);
            match r {
                Ok(_) => db.last_insert_rowid(),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(Error::AlreadyExists(format!("shard {name:?}")))
                }
                Err(e) => return Err(e.into()),
            }
        };
        let path = self.shard_path(id);
        let mut links_refused = false;
        let made = (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            files::check_no_links(&self.root, &path).inspect_err(|_| links_refused = true)?;
            remove_db_files(&path)?; // a file whose catalog row was lost
            let shard = self.with_fds(name, || {
                Shard::create_with(&path, profile, &self.open_options)
            })?;
            // Nobody else drops a `creating` row: the file is still the one just created.
            let file = OpenFile {
                id,
                file: files::file_id(&path),
            };
            self.guard_commits(&shard, path.clone(), file.file)?;
            self.lock_catalog()
                .prepare_cached(schema::CATALOG_READY)?
                .execute([id])?;
            Ok((shard, file))
        })();
        let (shard, file) = match made {
            Ok((s, f)) => (Arc::new(s), f),
            Err(e) => {
                if !links_refused {
                    let _ = remove_db_files(&path);
                }
                let _ = self.lock_catalog().execute(schema::CATALOG_DELETE, [id]);
                return Err(e);
            }
        };
        let mut evicted = Vec::new();
        self.lock_registry()
            .insert(name, &shard, file, self.capacity, &mut evicted);
        drop(evicted); // closed outside the lock
        Ok(shard)
    }

    /// Makes every commit of `shard` first check that `path` is still the file `file` it has
    /// open (see the [`files`] module docs).
    fn guard_commits(&self, shard: &Shard, path: PathBuf, file: Option<FileId>) -> Result<()> {
        if cfg!(unix) {
            let open = OpenFile { id: 0, file };
            shard.set_commit_check(move || open.is_current(&path))?;
        }
        Ok(())
    }

    /// Runs `open` (which opens a shard's files); when it fails for want of file descriptors,
    /// closes the least recently used half of the idle shards and tries again, as long as
    /// there are idle shards to close.
    ///
    /// # Errors
    /// `open`'s error; [`Error::Io`] saying "too many open files" when the descriptors stay
    /// exhausted.
    fn with_fds<T>(&self, name: &str, mut open: impl FnMut() -> Result<T>) -> Result<T> {
        loop {
            let err = match open() {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            if !files::out_of_fds(&self.root) {
                return Err(err);
            }
            let closed = self.lock_registry().shed();
            if closed.is_empty() {
                let open_now = self.open_count();
                return Err(files::too_many_open_files(
                    name,
                    open_now,
                    files::fd_limit(),
                ));
            }
            tracing::debug!(
                "out of file descriptors opening shard {name:?}: closed {} idle shards",
                closed.len()
            );
            drop(closed);
        }
    }

    /// The handle of shard `name`: the open one if there is one, else the file is opened (and
    /// kept among the most recently used).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid name; [`Error::UnknownShard`] for an unknown
    /// name (or one dropped meanwhile); [`Error::Io`] for a shard directory or file that is a
    /// symbolic link, or saying "too many open files" when descriptors run out although idle
    /// shards were closed; as [`Shard::open`] when the file cannot be opened ([`Error::Io`],
    /// [`Error::NotAShard`], [`Error::Corrupt`], ...).
    pub fn open_shard(&self, name: &str) -> Result<Arc<Shard>> {
        validate_name(name)?;
        let mut evicted = Vec::new();
        loop {
            let cached = self.lock_registry().get(name, self.capacity, &mut evicted);
            if let Some((s, file)) = cached {
                // Dropped (and maybe created again) by another process or manager meanwhile?
                if file.is_current(&self.shard_path(file.id)) {
                    return Ok(s);
                }
                evicted.extend(self.lock_registry().remove_handle(name, &s));
                continue;
            }
            let (id, _) = self
                .lookup(name)?
                .ok_or_else(|| Error::UnknownShard(name.to_string()))?;
            let path = self.shard_path(id);
            files::check_no_links(&self.root, &path)?;
            // Identity first: if the catalog still names this id after the open, no drop had
            // begun removing the file, so the file opened is the one identified.
            let file = OpenFile {
                id,
                file: files::file_id(&path),
            };
            // Opened outside the lock, so opens of different shards run in parallel.
            let opened = self.with_fds(name, || {
                let shard = Shard::open_with_options(&path, &self.open_options)?;
                self.guard_commits(&shard, path.clone(), file.file)?;
                Ok(shard)
            });
            let mut reg = self.lock_registry();
            if let Some((s, _)) = reg.get(name, self.capacity, &mut evicted) {
                // Another thread opened it meanwhile; ours is closed. (Checked on the next
                // call if it is the dropped file.)
                return Ok(s);
            }
            // A drop (or drop and re-create) may have run while the file was being opened.
            match self.lookup(name)? {
                None => return Err(Error::UnknownShard(name.to_string())),
                Some((now, _)) if now != id => continue,
                Some(_) => {}
            }
            let shard = Arc::new(opened?);
            reg.insert(name, &shard, file, self.capacity, &mut evicted);
            drop(reg);
            return Ok(shard);
        }
    }

    /// Opens shard `name`, checking that its dimension, metric and embedding model equal
    /// `profile`'s, or creates it. (An open shard keeps the durability it was created with.)
    ///
    /// # Errors
    /// As [`ShardManager::open_shard`] and [`ShardManager::create`];
    /// [`Error::DimensionMismatch`] / [`Error::ProfileMismatch`] when the shard exists with
    /// another profile.
    pub fn get_or_create(&self, name: &str, profile: &Profile) -> Result<Arc<Shard>> {
        for _ in 0..100 {
            match self.open_shard(name) {
                Ok(s) => {
                    s.profile().check_compatible(profile)?;
                    return Ok(s);
                }
                Err(Error::UnknownShard(_)) => {}
                Err(e) => return Err(e),
            }
            match self.create(name, profile) {
                // Another thread is creating (or dropping) it: look again shortly.
                Err(Error::AlreadyExists(_)) => {
                    #[cfg(feature = "threads")]
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                r => return r,
            }
        }
        Err(Error::AlreadyExists(format!(
            "shard {name:?} (still being created or dropped)"
        )))
    }

    /// `true` when a shard named `name` exists.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid name; [`Error::Sqlite`] / [`Error::Corrupt`]
    /// reading the catalog.
    pub fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        Ok(self.lookup(name)?.is_some())
    }

    /// The shards whose names start with `prefix` (all with `None`), in name order, with
    /// profile, size on disk and creation time. Reads the catalog and stats the files; opens no
    /// shard.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a prefix with characters no name has; [`Error::Sqlite`] /
    /// [`Error::Corrupt`] reading the catalog.
    pub fn list(&self, prefix: Option<&str>) -> Result<Vec<ShardInfo>> {
        let prefix = prefix.unwrap_or("");
        validate_prefix(prefix)?;
        let rows: Vec<(i64, String, String, i64)> = {
            let db = self.lock_catalog();
            // Every name character sorts below U+007F, so this range is exactly the prefix.
            let mut stmt = db.prepare_cached(schema::CATALOG_LIST)?;
            let rows = stmt.query_map([prefix], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        rows.into_iter()
            .map(|(id, name, profile, created_at)| {
                let path = self.shard_path(id);
                Ok(ShardInfo {
                    profile: parse_profile(&profile, &name)?,
                    bytes_on_disk: bytes_on_disk(&path),
                    name,
                    created_at,
                    path,
                })
            })
            .collect()
    }

    /// Deletes shard `name`: its catalog row and its files.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid name, or when a caller still holds a handle of
    /// the shard (drop it first); [`Error::UnknownShard`] for an unknown name; [`Error::Io`] when a
    /// file cannot be removed, or a shard directory or file is a symbolic link (nothing is
    /// removed then); [`Error::Busy`] when another connection holds the shard's write lock
    /// past 5 s. After a failure once the removal has begun, the drop is finished by the next
    /// recovery, and the name stays taken until then.
    pub fn drop_shard(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        if let Some((id, _)) = self.lookup(name)? {
            files::check_no_links(&self.root, &self.shard_path(id))?;
        }
        let (id, held) = {
            let mut reg = self.lock_registry();
            if let Some(e) = reg.entries.get(name) {
                if let Some(s) = e.handle.upgrade() {
                    let ours = 1 + usize::from(e.tick.is_some());
                    let users = Arc::strong_count(&s) - ours;
                    if users > 0 {
                        return Err(Error::InvalidArgument(format!(
                            "shard {name:?} is in use ({users} handle(s) held): drop them first"
                        )));
                    }
                }
            }
            let id = {
                let db = self.lock_catalog();
                let id: Option<i64> = db
                    .prepare_cached(schema::CATALOG_DROPPING)?
                    .query_row([name], |r| r.get(0))
                    .optional()?;
                id.ok_or_else(|| Error::UnknownShard(name.to_string()))?
            };
            (id, reg.remove(name))
        };
        drop(held); // closes the file before it is removed
        let path = self.shard_path(id);
        files::check_no_links(&self.root, &path)?;
        // Removed under the shard's write lock: a writer elsewhere either committed before, or
        // finds the file gone inside its commit (see the `files` module docs).
        let lock = files::lock_for_drop(&path)?;
        remove_db_files(&path)?;
        drop(lock);
        self.lock_catalog().execute(schema::CATALOG_DELETE, [id])?;
        Ok(())
    }

    /// [`Shard::stats`] of shard `name` (opening it if needed).
    ///
    /// # Errors
    /// As [`ShardManager::open_shard`] and [`Shard::stats`].
    pub fn stats(&self, name: &str) -> Result<Stats> {
        self.open_shard(name)?.stats()
    }
}
