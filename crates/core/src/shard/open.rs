//! Creating and opening shards: connection settings, the profile in `meta`, migrations, and the
//! full load of the arena and the index.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::conn::{CloseOnDrop, ReadPool, Readers, Writer};
use super::{corrupt_item, Shard, State};
use crate::arena::Arena;
use crate::change::SiteId;
use crate::clock::Clock;
use crate::codec;
use crate::distance::Kernels;
use crate::error::{Error, Result};
use crate::index::{self, Loaded, PlannerParams, ShardIndex};
use crate::profile::{Durability, Metric, Profile};
use crate::quant::Quantizer;
use crate::schema::{self, ItemRow};

/// The largest image [`Shard::from_image`] takes: 512 MiB (it is copied once into SQLite's
/// memory, and the vectors again into the arena).
pub const MAX_IMAGE_BYTES: usize = 512 << 20;

/// The default [`OpenOptions::max_clock_skew_ms`]: 60 s.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: i64 = 60_000;

/// How a file shard journals its writes (SQLite's `journal_mode`).
///
/// The default is [`Journal::Wal`] on every target but `wasm32-unknown-unknown`, whose storage
/// (the in-memory VFS, OPFS through the `sahpool` VFS) has no shared memory and so no WAL:
/// there it is [`Journal::Rollback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// A write-ahead log (`journal_mode=WAL`): readers on their own connections never block the
    /// writer and vice versa, across processes; checkpoints run off the write path.
    Wal,
    /// A rollback journal (`journal_mode=TRUNCATE`, `synchronous=FULL` whatever the
    /// durability: a rollback journal under `NORMAL` can be corrupted by a power loss) on one
    /// connection: reads share the writer's, as in an in-memory shard. Opening a WAL file this
    /// way converts it (which needs no other connection on it); opening it again with
    /// [`Journal::Wal`] converts it back.
    Rollback,
}

impl Default for Journal {
    fn default() -> Self {
        if cfg!(all(target_family = "wasm", target_os = "unknown")) {
            Journal::Rollback
        } else {
            Journal::Wal
        }
    }
}

/// How a handle is opened: durability override, clock, accepted clock skew of remote changes,
/// journal mode.
#[derive(Clone)]
pub struct OpenOptions {
    /// Durability of this handle (`full` or `normal`) instead of the one recorded in the shard
    /// ([`Shard::open_with_options`] only).
    pub durability: Option<Durability>,
    /// The clock that stamps changes (`None`: the system clock; required on
    /// `wasm32-unknown-unknown`, which has none).
    pub clock: Option<Arc<dyn Clock>>,
    /// How far ahead of this clock, in ms, a change from another site may be stamped
    /// ([`crate::WriteTx::apply_remote`] refuses one further ahead with
    /// [`Error::ClockSkew`]); default [`DEFAULT_MAX_CLOCK_SKEW_MS`].
    pub max_clock_skew_ms: i64,
    /// Open for reading only ([`Shard::open_with_options`] only): searches and reads work,
    /// writes fail with [`Error::ReadOnly`], and nothing is created beside the file when no
    /// `-wal` is there (SQLite's `immutable` mode). A shard in a directory this process cannot
    /// write is opened this way on its own.
    pub read_only: bool,
    /// The site id of a shard being created (`None`: 16 random bytes, as it should be). For
    /// deterministic tests and simulations only: two shards that share a site id cannot sync
    /// (each would take the other's changes for its own).
    pub site_id: Option<crate::change::SiteId>,
    /// The journal mode of a file shard (ignored by in-memory shards); default
    /// [`Journal::default`].
    pub journal: Journal,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: None,
            clock: None,
            max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
            read_only: false,
            site_id: None,
            journal: Journal::default(),
        }
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("durability", &self.durability)
            .field("clock", &self.clock)
            .field("max_clock_skew_ms", &self.max_clock_skew_ms)
            .field("read_only", &self.read_only)
            .field("site_id", &self.site_id)
            .field("journal", &self.journal)
            .finish()
    }
}

impl OpenOptions {
    /// Sets the site id of a shard being created (see [`OpenOptions::site_id`]).
    pub fn with_site_id(mut self, site_id: crate::change::SiteId) -> Self {
        self.site_id = Some(site_id);
        self
    }

    /// Sets the durability override.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }
    /// Sets the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Sets the accepted clock skew of remote changes, in ms.
    pub fn with_max_clock_skew_ms(mut self, ms: i64) -> Self {
        self.max_clock_skew_ms = ms;
        self
    }
    /// Opens for reading only (see [`OpenOptions::read_only`]).
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Sets the journal mode of a file shard (see [`Journal`]).
    pub fn with_journal(mut self, journal: Journal) -> Self {
        self.journal = journal;
        self
    }
    fn clock(&self) -> Result<Arc<dyn Clock>> {
        match &self.clock {
            Some(c) => Ok(Arc::clone(c)),
            None => crate::clock::default_clock(),
        }
    }
}

/// Maps errors of opening/reading a file that may not be a shard at all.
pub(super) fn map_foreign(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        match f.code {
            ErrorCode::NotADatabase => {
                return Error::NotAShard(format!(
                    "{}: file is not a SQLite database",
                    path.display()
                ))
            }
            ErrorCode::DatabaseCorrupt => {
                return Error::Corrupt(format!(
                    "{}: {}",
                    path.display(),
                    msg.as_deref().unwrap_or("database disk image is malformed")
                ))
            }
            ErrorCode::CannotOpen => {
                return Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no shard file at {} (cannot open it)", path.display()),
                ))
            }
            _ => {}
        }
    }
    Error::from(e)
}

/// `path` with `suffix` appended (`-wal`, `-shm`).
#[cfg(feature = "fs-metadata")]
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A SQLite `file:` URI for `path` with the query `params` (path bytes outside the unreserved
/// set percent-encoded, RFC 3986 §2; SQLite decodes them).
#[cfg(feature = "fs-metadata")]
fn file_uri(path: &Path, params: &str) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push('?');
    uri.push_str(params);
    uri
}

/// Refuses to open `path` beside a write-ahead log that belongs to another shard (a `-wal`
/// copied next to it, or left behind by the shard a copied `.db` replaced): SQLite would
/// silently read the other shard's pages over this one's. The shard's identity is its site id
/// (`meta.site_id`): read from the main file alone (an `immutable` connection, which reads no
/// WAL), and through the WAL on a read-only connection that never checkpoints (so nothing of
/// the foreign log reaches the file). Costs two connection opens, and only when a non-empty
/// `-wal` exists at open (closing a shard checkpoints and deletes it).
///
/// # Errors
/// [`Error::Corrupt`] naming both site ids and the fix (move the `-wal` and `-shm` away).
#[cfg(feature = "fs-metadata")]
fn check_wal_owner(path: &Path) -> Result<()> {
    let wal = sidecar(path, "-wal");
    if std::fs::metadata(&wal).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    let (Some(in_file), through_wal) = identities(path)? else {
        // A main file without a profile yet (everything still in the WAL): nothing to compare.
        return Ok(());
    };
    match through_wal {
        Some(through_wal) if through_wal != in_file => Err(Error::Corrupt(format!(
            "{} belongs to another shard (site {through_wal}), not to {} (site {in_file}): \
             move the -wal and -shm files away to open the shard as it was last checkpointed",
            wal.display(),
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// The site id (hex) of the shard file at `path` as its main file alone shows it (an
/// `immutable` connection, which reads no WAL and takes no lock), and as seen through its WAL
/// (a read-only connection that never checkpoints, so nothing of a foreign log reaches the
/// file); `None` where there is none to read.
///
/// # Errors
/// [`Error::Sqlite`] (or the mapped open errors) from the read-only connection.
#[cfg(feature = "fs-metadata")]
pub(super) fn identities(path: &Path) -> Result<(Option<String>, Option<String>)> {
    let site = |db: &Connection| -> Option<String> {
        db.query_row(schema::META_GET, ["site_id"], |r| r.get(0))
            .ok()
    };
    let ro = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let in_file = Connection::open_with_flags(
        file_uri(path, "immutable=1"),
        ro | OpenFlags::SQLITE_OPEN_URI,
    )
    .ok()
    .and_then(|db| site(&db));
    let db = Connection::open_with_flags(path, ro).map_err(|e| map_foreign(path, e))?;
    db.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok((in_file, site(&db)))
}

/// Whether opening the existing file `path` for writing failed because it, or its directory,
/// cannot be written (SQLite's "cannot open" for the `-wal` / `-shm` it creates beside the
/// file, or "read-only database").
fn cannot_write(path: &Path, e: &Error) -> bool {
    match e {
        Error::ReadOnly(_) => true,
        // "Cannot open" also covers running out of file descriptors: only a directory this
        // process cannot write means read-only.
        Error::Io(io) => {
            io.kind() == std::io::ErrorKind::NotFound
                && file_exists(path) != Some(false)
                && !dir_writable(path.parent().unwrap_or(Path::new(".")))
        }
        _ => false,
    }
}

/// Whether this process may create files in `dir` (`access(2)` with `W_OK`: permissions,
/// read-only mounts).
#[cfg(unix)]
fn dir_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Whether this process may create files in `dir` (the permission bits' read-only flag).
#[cfg(not(unix))]
fn dir_writable(dir: &Path) -> bool {
    std::fs::metadata(dir).map_or(true, |m| !m.permissions().readonly())
}

/// The URI of a read-only connection to `path`: SQLite's `immutable` mode (reads the file
/// alone, creates and locks nothing) when no `-wal` is beside it, so a shard in a directory
/// nobody can write is readable; `mode=ro` otherwise (the WAL's frames are read, which needs
/// its `-shm`).
fn read_only_uri(path: &Path) -> String {
    #[cfg(feature = "fs-metadata")]
    {
        let wal = std::fs::metadata(sidecar(path, "-wal")).is_ok_and(|m| m.len() > 0);
        file_uri(path, if wal { "mode=ro" } else { "immutable=1" })
    }
    #[cfg(not(feature = "fs-metadata"))]
    {
        format!("file:{}?mode=ro", path.display())
    }
}

/// Flags of a read-only connection opened by [`read_only_uri`].
pub(super) fn read_only_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Maps an error of reading a file that may not be a shard at all.
fn foreign(path: Option<&Path>, e: Error) -> Error {
    match (path, e) {
        (Some(p), Error::Sqlite(s)) => map_foreign(p, s),
        (_, e) => e,
    }
}

/// Page size for a new shard: the smallest of 4, 8, 16 or 32 KiB that holds at least eight
/// rows of this dimension (a row is the vector BLOB plus about 80 bytes of id, sync columns and
/// cell header), and 32 KiB above that. With 4 KiB pages a 384-d row (1,536 bytes) fits only
/// twice, wasting a quarter of every page and doubling the b-tree work per row; 16 KiB pages hold
/// ten (measured: batch inserts 53k → 101k vectors/s on debian-minilm). Small dimensions keep
/// small pages, so the many small shards of an agent fleet stay small on disk and a single-row
/// commit writes few bytes.
fn page_size_for(dim: usize) -> i64 {
    let row = dim * 4 + 80;
    [4096i64, 8192, 16384, 32768]
        .into_iter()
        .find(|&p| (p as usize - 100) / row >= 8)
        .unwrap_or(32768)
}

/// Settings every connection shares: busy timeout, cache, temp store, no checkpoint at close
/// under `normal`, the SQL functions, and the query planner stability guarantee (FTS5 looks up
/// each word's segments with `… WHERE segid = ? AND term <= ?`; without it SQLite re-prepares
/// such a statement whenever its `= ?` flips between 0/1 and other values, twice per word and
/// query: 6 % of a hybrid search).
fn configure_common(db: &Connection, durability: Durability) -> Result<()> {
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    db.pragma_update(None, "cache_size", -8192i64)?;
    db.pragma_update(None, "temp_store", "MEMORY")?;
    // Under `normal`, closing a connection does not checkpoint: that costs the checkpoint's
    // fsyncs (1–20 ms measured here), so a closing handle leaves it to the background closer
    // (`conn::CloseOnDrop`), which checkpoints the WAL into the file and deletes the `-wal`
    // and `-shm` off the caller's path. `full` checkpoints at close as SQLite does by default.
    if durability != Durability::Memory {
        db.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            durability == Durability::Normal,
        )?;
    }
    db.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    crate::sqlfn::register_functions(db)?;
    Ok(())
}

/// The `synchronous` level of a file shard's writer.
fn sync_level(durability: Durability, journal: Journal) -> &'static str {
    match (durability, journal) {
        (Durability::Memory, _) => "OFF",
        (Durability::Normal, Journal::Wal) => "NORMAL",
        (Durability::Full, _) | (Durability::Normal, Journal::Rollback) => "FULL",
    }
}

/// The writer's settings: the journal mode (see [`Journal`]) and its `synchronous` level, plus
/// [`configure_common`].
fn configure_writer(db: &Connection, durability: Durability, journal: Journal) -> Result<()> {
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    match durability {
        Durability::Memory => {
            db.pragma_update(None, "synchronous", "OFF")?;
        }
        Durability::Full | Durability::Normal if journal == Journal::Rollback => {
            let mode: String =
                db.pragma_update_and_check(None, "journal_mode", "TRUNCATE", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("truncate") {
                return Err(Error::InvalidArgument(format!(
                    "could not enable the rollback journal (journal_mode is {mode})"
                )));
            }
            db.pragma_update(None, "synchronous", sync_level(durability, journal))?;
        }
        Durability::Full | Durability::Normal => {
            // No fsync while switching a new file to WAL (it would go through a rollback
            // journal under the default synchronous=FULL: four fsyncs, most of the cost of
            // creating a shard); the mode's own level is set right after.
            db.pragma_update(None, "synchronous", "OFF")?;
            let mode: String =
                db.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::InvalidArgument(format!(
                    "could not enable WAL (journal_mode is {mode})"
                )));
            }
            db.pragma_update(None, "synchronous", sync_level(durability, journal))?;
            db.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
        }
    }
    configure_common(db, durability)
}

/// A reader's settings: [`configure_common`], and `query_only` (readers never write; a
/// `PASSIVE` checkpoint still runs on them).
pub(super) fn configure_reader(db: &Connection, durability: Durability) -> Result<()> {
    // The durability's level also decides the fsyncs of the checkpoints readers run.
    let sync = if durability == Durability::Full {
        "FULL"
    } else {
        "NORMAL"
    };
    db.pragma_update(None, "synchronous", sync)?;
    configure_common(db, durability)?;
    db.pragma_update(None, "query_only", true)?;
    Ok(())
}

/// Maps the database file into memory for reads (`mmap_size`), or stops mapping it. A no-op
/// without the `mmap` feature.
pub(super) fn set_mapped(db: &Connection, mapped: bool) -> Result<()> {
    #[cfg(feature = "mmap")]
    db.pragma_update(None, "mmap_size", if mapped { 1i64 << 40 } else { 0 })?;
    #[cfg(not(feature = "mmap"))]
    let _ = (db, mapped);
    Ok(())
}

/// Whether `path` names an existing file (`None` when this build cannot tell: without the
/// `fs-metadata` feature, SQLite's own open decides).
fn file_exists(path: &Path) -> Option<bool> {
    #[cfg(feature = "fs-metadata")]
    {
        Some(path.exists())
    }
    #[cfg(not(feature = "fs-metadata"))]
    {
        let _ = path;
        None
    }
}

/// Creates the empty file `path` for [`Shard::create`], failing if anything is there (`false`:
/// this build cannot create files itself, and SQLite's open makes it).
fn claim_new_file(path: &Path) -> Result<bool> {
    #[cfg(feature = "fs-metadata")]
    {
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(path.display().to_string()))
            }
            Err(e) => Err(Error::Io(e)),
        }
    }
    #[cfg(not(feature = "fs-metadata"))]
    {
        let _ = path;
        Ok(false)
    }
}

/// Removes what a failed [`Shard::create`] left of the file it claimed (best effort: the
/// create's own error is the one reported).
fn remove_failed_create(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The shard's int8 quantizer (meta `quantizer`, hex of [`Quantizer::to_bytes`]), if it is
/// quantized.
pub(super) fn read_quantizer(db: &Connection, dim: usize) -> Result<Option<Quantizer>> {
    let hex: Option<String> = db
        .prepare_cached(schema::META_GET)?
        .query_row([schema::META_QUANTIZER], |r| r.get(0))
        .optional()?;
    let Some(hex) = hex else {
        return Ok(None);
    };
    let bytes =
        schema::unhex(&hex).ok_or_else(|| Error::Corrupt("meta quantizer is not hex".into()))?;
    let qz = Quantizer::from_bytes(&bytes)?;
    if qz.dim() != dim {
        return Err(Error::Corrupt(format!(
            "quantizer of dimension {} in a shard of dimension {dim}",
            qz.dim()
        )));
    }
    Ok(Some(qz))
}

impl Shard {
    /// Creates a new shard file at `path` with `profile`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `path` exists; [`Error::InvalidArgument`] for an invalid
    /// profile, or durability `memory` (use [`Shard::in_memory`]); [`Error::Sqlite`] /
    /// [`Error::Io`] when the file cannot be written.
    ///
    /// ```
    /// use sqlite_vector::{Metric, NewItem, Profile, SearchParams, Shard};
    /// let dir = tempfile::tempdir().unwrap();
    /// let shard = Shard::create(dir.path().join("notes.db"), &Profile::new(3, Metric::Cosine))?;
    /// shard.insert(NewItem::new(vec![1.0, 0.0, 0.0]).with_id("a"))?;
    /// shard.insert(NewItem::new(vec![0.0, 1.0, 0.0]).with_id("b"))?;
    /// let hits = shard.search(&[0.9, 0.1, 0.0], &SearchParams::k(1))?;
    /// assert_eq!(hits[0].id, "a");
    /// # Ok::<(), sqlite_vector::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, profile: &Profile) -> Result<Shard> {
        Self::create_with(path, profile, &OpenOptions::default())
    }

    /// [`Shard::create`] with options (the clock, the accepted clock skew; the durability is
    /// the profile's).
    ///
    /// # Errors
    /// As [`Shard::create`]; [`Error::InvalidArgument`] without a clock on a target that has
    /// none.
    pub fn create_with(
        path: impl AsRef<Path>,
        profile: &Profile,
        options: &OpenOptions,
    ) -> Result<Shard> {
        let path = path.as_ref();
        profile.validate()?;
        if profile.durability == Durability::Memory {
            return Err(Error::InvalidArgument(
                "durability memory keeps nothing on disk: use Shard::in_memory".into(),
            ));
        }
        if file_exists(path) == Some(true) {
            return Err(Error::AlreadyExists(path.display().to_string()));
        }
        let clock = options.clock()?;
        // The file exists from here on: a create that fails later (a full disk) removes it, or
        // the empty file would read as "shard already exists" ever after.
        let claimed = claim_new_file(path)?;
        let created = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_foreign(path, e))
        .and_then(|db| Self::init(db, Some(path.to_path_buf()), profile, clock, options));
        if created.is_err() && claimed {
            remove_failed_create(path);
        }
        created
    }

    /// Creates an in-memory shard (durability `memory`: nothing touches the disk, and the data
    /// ends with the handle).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid profile.
    pub fn in_memory(profile: &Profile) -> Result<Shard> {
        Self::in_memory_with(profile, &OpenOptions::default())
    }

    /// [`Shard::in_memory`] with options (the clock, the accepted clock skew).
    ///
    /// # Errors
    /// As [`Shard::in_memory`]; [`Error::InvalidArgument`] without a clock on a target that
    /// has none.
    pub fn in_memory_with(profile: &Profile, options: &OpenOptions) -> Result<Shard> {
        profile.validate()?;
        let clock = options.clock()?;
        let profile = profile.clone().with_durability(Durability::Memory);
        let db = Connection::open_in_memory()?;
        Self::init(db, None, &profile, clock, options)
    }

    /// Opens an in-memory shard from an image: the bytes of a shard file, as
    /// [`Shard::to_image`] writes them or as read from a closed shard's file (a WAL-mode header
    /// is accepted; its `-wal` must have been checkpointed into it, as closing does). The copy
    /// keeps the image's identity (site id); writes to it stay in memory until it is written
    /// out again with [`Shard::to_image`]. `options`' journal and read-only settings do not
    /// apply.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an image over [`MAX_IMAGE_BYTES`];
    /// [`Error::NotAShard`] for bytes that are not a SQLite database (too short, no header
    /// magic) or a database without a shard profile; [`Error::Corrupt`] for damaged pages or
    /// items; [`Error::UnsupportedFormat`] for a newer format.
    pub fn from_image(image: &[u8], options: &OpenOptions) -> Result<Shard> {
        const NAME: &str = "shard image";
        if image.len() > MAX_IMAGE_BYTES {
            return Err(Error::InvalidArgument(format!(
                "a shard image of {} bytes is over the limit of {MAX_IMAGE_BYTES} bytes for an \
                 in-memory copy: open the file with a native build instead",
                image.len()
            )));
        }
        if image.len() < 100 || !image.starts_with(b"SQLite format 3\0") {
            return Err(Error::NotAShard(format!(
                "{NAME}: {} bytes that are not a SQLite database",
                image.len()
            )));
        }
        let clock = options.clock()?;
        let mut bytes = image.to_vec();
        // Bytes 18 and 19 (file format write/read versions) are 2 in a WAL-mode file; the
        // in-memory database has no WAL and cannot open such a file (1: rollback journal).
        bytes[18] = 1;
        bytes[19] = 1;
        let mut db = Connection::open_in_memory()?;
        let len = bytes.len();
        db.deserialize_read_exact(rusqlite::MAIN_DB, &bytes[..], len, false)
            .map_err(|e| map_foreign(Path::new(NAME), e))?;
        drop(bytes);
        let foreign_image = |e: Error| match e {
            Error::Sqlite(s) => map_foreign(Path::new(NAME), s),
            e => e,
        };
        let (mut profile, version) = Self::read_profile(&db).map_err(foreign_image)?;
        profile.durability = Durability::Memory;
        configure_writer(&db, Durability::Memory, options.journal)?;
        Self::migrate(&mut db, version).map_err(foreign_image)?;
        Self::finish_open(db, None, profile, clock, options).map_err(foreign_image)
    }

    fn init(
        mut db: Connection,
        path: Option<PathBuf>,
        profile: &Profile,
        clock: Arc<dyn Clock>,
        options: &OpenOptions,
    ) -> Result<Shard> {
        // Must precede WAL mode and the first table. See `page_size_for`.
        db.pragma_update(None, "page_size", page_size_for(profile.dimension))?;
        // A new file switches to WAL without a rollback journal: the switch writes the empty
        // file's first page, which has nothing to roll back to, and creating and deleting the
        // `-journal` beside it was a quarter of the inodes a create churns through (on ext4 a
        // new inode's allocation scans past recently deleted ones: the main cost of a create).
        if profile.durability != Durability::Memory {
            db.pragma_update_and_check(None, "journal_mode", "OFF", |_| Ok(()))?;
        }
        configure_writer(&db, profile.durability, options.journal)?;
        // Under `normal`, the creating transaction itself skips the fsyncs of a fresh WAL (its
        // header sync and the directory sync): nothing has been acknowledged yet, and a shard
        // cut short by a power loss fails to open as "not a shard" instead of holding bad data.
        if profile.durability == Durability::Normal {
            db.pragma_update(None, "synchronous", "OFF")?;
        }
        let tx = db.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        let exists: bool = tx.query_row(schema::META_EXISTS, [], |r| r.get(0))?;
        if exists {
            return Err(Error::AlreadyExists(
                path.map_or_else(|| ":memory:".into(), |p| p.display().to_string()),
            ));
        }
        for ddl in schema::CREATE_ALL {
            tx.execute_batch(ddl)?;
        }
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)?;
        let site: Vec<u8> = match options.site_id {
            Some(s) => s.0.to_vec(),
            None => tx.query_row(schema::RANDOM_BLOB_16, [], |r| r.get(0))?,
        };
        let created = clock.now_ms().max(0) / 1000;
        let rows: [(&str, String); 8] = [
            ("format_version", schema::FORMAT_VERSION.to_string()),
            ("dimension", profile.dimension.to_string()),
            ("metric", profile.metric.to_string()),
            ("durability", profile.durability.to_string()),
            (
                "embedding_model",
                profile.embedding_model.clone().unwrap_or_default(),
            ),
            (
                "searchable_fields",
                serde_json::to_string(&profile.searchable_fields)?,
            ),
            ("site_id", schema::hex(&site)),
            ("created_at", created.to_string()),
        ];
        for (k, v) in rows {
            tx.execute(schema::META_INSERT, params![k, v])?;
        }
        tx.commit()?;
        if profile.durability == Durability::Normal {
            db.pragma_update(
                None,
                "synchronous",
                sync_level(profile.durability, options.journal),
            )?;
        }
        Self::finish_open(db, path, profile.clone(), clock, options)
    }

    /// Opens an existing shard file with the durability recorded in it.
    ///
    /// # Errors
    /// [`Error::Io`] (not found), [`Error::NotAShard`] for a file that is not SQLite or has no
    /// shard profile, [`Error::Corrupt`] for damaged pages or a vector BLOB of the wrong length,
    /// [`Error::UnsupportedFormat`] for a newer format.
    pub fn open(path: impl AsRef<Path>) -> Result<Shard> {
        Self::open_with_options(path, &OpenOptions::default())
    }

    /// Opens an existing shard, overriding its recorded durability for this handle when
    /// `durability` is given (`full` or `normal`).
    ///
    /// # Errors
    /// As [`Shard::open`]; [`Error::InvalidArgument`] for durability `memory`.
    pub fn open_with(path: impl AsRef<Path>, durability: Option<Durability>) -> Result<Shard> {
        let options = OpenOptions {
            durability,
            ..OpenOptions::default()
        };
        Self::open_with_options(path, &options)
    }

    /// Opens an existing shard with options (durability override, clock, accepted clock skew).
    ///
    /// # Errors
    /// As [`Shard::open_with`]; [`Error::InvalidArgument`] without a clock on a target that has
    /// none.
    pub fn open_with_options(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Shard> {
        let path = path.as_ref();
        if options.durability == Some(Durability::Memory) {
            return Err(Error::InvalidArgument(
                "durability memory cannot apply to a shard file".into(),
            ));
        }
        #[cfg(feature = "fs-metadata")]
        if !path.is_file() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no shard file at {}", path.display()),
            )));
        }
        let clock = options.clock()?;
        #[cfg(feature = "fs-metadata")]
        check_wal_owner(path)?;
        if options.read_only {
            return Self::open_read_only(path, options, clock);
        }
        match Self::open_read_write(path, options, Arc::clone(&clock)) {
            // The file exists but SQLite cannot open it for writing, or cannot create its
            // `-wal` / `-shm` beside it: a read-only file or directory. Serve reads.
            Err(e) if cannot_write(path, &e) => {
                let options = OpenOptions {
                    durability: options.durability,
                    clock: options.clock.clone(),
                    max_clock_skew_ms: options.max_clock_skew_ms,
                    read_only: true,
                    site_id: None,
                    journal: options.journal,
                };
                Self::open_read_only(path, &options, clock)
            }
            r => r,
        }
    }

    /// [`Shard::open_with_options`] for reading and writing.
    fn open_read_write(path: &Path, options: &OpenOptions, clock: Arc<dyn Clock>) -> Result<Shard> {
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_foreign(path, e))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let (mut profile, version) = Self::read_profile(&db).map_err(|e| foreign(Some(path), e))?;
        if let Some(d) = options.durability {
            profile.durability = d;
        }
        configure_writer(&db, profile.durability, options.journal)
            .map_err(|e| foreign(Some(path), e))?;
        let mut db = db;
        Self::migrate(&mut db, version)?;
        Self::finish_open(db, Some(path.to_path_buf()), profile, clock, options)
    }

    /// [`Shard::open_with_options`] for reading only: every connection is opened read-only
    /// ([`read_only_uri`]) and `query_only`.
    fn open_read_only(path: &Path, options: &OpenOptions, clock: Arc<dyn Clock>) -> Result<Shard> {
        let db = Connection::open_with_flags(read_only_uri(path), read_only_flags())
            .map_err(|e| map_foreign(path, e))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        let (mut profile, version) = Self::read_profile(&db).map_err(|e| foreign(Some(path), e))?;
        if version != schema::FORMAT_VERSION {
            return Err(Error::ReadOnly(format!(
                "{} is of format {version} and needs upgrading to {}, which writes it",
                path.display(),
                schema::FORMAT_VERSION
            )));
        }
        if let Some(d) = options.durability {
            profile.durability = d;
        }
        configure_reader(&db, profile.durability)?;
        Self::finish_open(db, Some(path.to_path_buf()), profile, clock, options)
    }

    /// Opens the shard at `path` if it exists, checking that its dimension, metric and
    /// embedding model equal `profile`'s; creates it otherwise.
    ///
    /// # Errors
    /// As [`Shard::create`] and [`Shard::open`]; [`Error::DimensionMismatch`] or
    /// [`Error::ProfileMismatch`] naming both values when the existing shard differs.
    pub fn open_or_create(path: impl AsRef<Path>, profile: &Profile) -> Result<Shard> {
        let path = path.as_ref();
        let opened = match file_exists(path) {
            Some(false) => return Self::create(path, profile),
            Some(true) => Self::open_with(path, Some(profile.durability)),
            // Without file metadata: open, and create when there is nothing to open.
            None => match Self::open_with(path, Some(profile.durability)) {
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Self::create(path, profile)
                }
                r => r,
            },
        };
        let shard = opened?;
        shard.profile.check_compatible(profile)?;
        Ok(shard)
    }

    fn read_profile(db: &Connection) -> Result<(Profile, u32)> {
        let has_meta: bool = db.query_row(schema::META_EXISTS, [], |r| r.get(0))?;
        if !has_meta {
            return Err(Error::NotAShard(
                "SQLite database without a sqlite-vector meta table".into(),
            ));
        }
        let get = |key: &str| -> Result<String> {
            db.query_row(schema::META_GET, [key], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::Corrupt(format!("meta has no {key}")))
        };
        let version: u32 = get("format_version")?
            .parse()
            .map_err(|_| Error::Corrupt("format_version is not a number".into()))?;
        if version > schema::FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: version,
                supported: schema::FORMAT_VERSION,
            });
        }
        let dimension: usize = get("dimension")?
            .parse()
            .map_err(|_| Error::Corrupt("dimension is not a number".into()))?;
        let metric: Metric = get("metric")?
            .parse()
            .map_err(|_| Error::Corrupt("unknown metric in meta".into()))?;
        let durability: Durability = get("durability")?
            .parse()
            .map_err(|_| Error::Corrupt("unknown durability in meta".into()))?;
        let model = get("embedding_model")?;
        let searchable_fields: Vec<String> = serde_json::from_str(&get("searchable_fields")?)
            .map_err(|_| {
                Error::Corrupt("searchable_fields is not a JSON array of strings".into())
            })?;
        let profile = Profile {
            dimension,
            metric,
            durability,
            embedding_model: (!model.is_empty()).then_some(model),
            searchable_fields,
        };
        profile
            .validate()
            .map_err(|e| Error::Corrupt(format!("bad profile in meta: {e}")))?;
        Ok((profile, version))
    }

    fn migrate(db: &mut Connection, from: u32) -> Result<()> {
        if from == schema::FORMAT_VERSION {
            return Ok(());
        }
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for step in &schema::MIGRATIONS[(from as usize - 1)..] {
            for sql in *step {
                tx.execute_batch(sql)?;
            }
        }
        tx.execute(
            schema::META_SET,
            params!["format_version", schema::FORMAT_VERSION.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn finish_open(
        db: Connection,
        path: Option<PathBuf>,
        profile: Profile,
        clock: Arc<dyn Clock>,
        options: &OpenOptions,
    ) -> Result<Shard> {
        let site_hex: String = db.query_row(schema::META_GET, ["site_id"], |r| r.get(0))?;
        let site_id = schema::unhex(&site_hex)
            .and_then(|b| SiteId::from_slice(&b).ok())
            .ok_or_else(|| Error::Corrupt(format!("bad site_id {site_hex:?}")))?;
        let seed: i64 = db.query_row(schema::RANDOM_I64, [], |r| r.get(0))?;
        let mut state = State {
            arena: Arena::with_capacity(profile.dimension, 0),
            index: None,
            planner: PlannerParams::default(),
            last_seq: 0,
            last_hlc: 0,
            version: 0,
            index_damage: None,
            quantizer_damage: None,
        };
        let text = Arc::new(crate::fts::SharedText::default());
        // The writer's connection too: an in-memory shard's reads go through it.
        crate::fts::share_text(&db, &text)?;
        // A rollback-journal shard has one connection (see `Journal::Rollback`).
        let wal = path.is_some() && options.journal == Journal::Wal;
        let readers = Readers(path.as_ref().filter(|_| wal).map(|p| {
            let uri = options.read_only.then(|| read_only_uri(p));
            ReadPool::new(p.clone(), profile.durability, uri, Arc::clone(&text))
        }));
        load(&db, &mut state, &profile, false, &readers)
            .map_err(|e| foreign(path.as_deref(), e))?;
        // The load filled SQLite's page cache with every vector page; the arena now holds the
        // vectors, so give that memory back (about 1.6 MB per 1,000 × 384 shard).
        db.execute_batch(schema::SHRINK_MEMORY)?;
        let writer = Writer::new(db, seed as u64, wal)?;
        let close = CloseOnDrop::new(match &path {
            Some(p) if wal && profile.durability == Durability::Normal && !options.read_only => {
                Some((p.clone(), site_hex))
            }
            _ => None,
        });
        Ok(Shard {
            path,
            profile,
            site_id,
            format_version: schema::FORMAT_VERSION,
            kernels: Kernels::best(),
            clock,
            max_clock_skew_ms: options.max_clock_skew_ms,
            state: RwLock::new(state),
            writer: Mutex::new(writer),
            readers,
            filter_cache: Mutex::new(Vec::new()),
            digest: Mutex::new(super::DigestCache {
                as_of: -1,
                ..Default::default()
            }),
            text,
            close,
        })
    }
}

/// Full load of the arena and the index, in one read transaction on `db`. The arena keeps int8
/// codes when the shard is quantized, and f32 rows unless it is quantized without an index
/// (the graph reads f32) and `force_f32` is off. A quantized arena without f32 rows keeps the
/// file mapped on the readers, which rescore from it.
pub(super) fn load(
    db: &Connection,
    st: &mut State,
    profile: &Profile,
    force_f32: bool,
    readers: &Readers,
) -> Result<()> {
    let dim = profile.dimension;
    let memory_index = match (&st.index, profile.durability) {
        (Some(ix), Durability::Memory) => Some(*ix.graph.params()),
        _ => None,
    };
    // The load reads every page once: map the file for it (no read syscall and copy per
    // page; measured −30 % on a 100k × 384 open), and unmap it afterwards.
    set_mapped(db, true)?;
    db.execute_batch(schema::BEGIN)?;
    let r = (|| -> Result<()> {
        let live: i64 = db.query_row(schema::COUNT_LIVE, [], |r| r.get(0))?;
        let mut arena = Arena::with_capacity(dim, 0);
        // Derived data (the quantizer, the graph) never makes the items unreadable: damage is
        // recorded, reported by `stats` and `check_integrity`, and repaired by rebuilding.
        st.quantizer_damage = None;
        match read_quantizer(db, dim) {
            Ok(Some(qz)) => {
                let keep_f32 = force_f32 || memory_index.is_some() || index::tables_exist(db)?;
                arena.quantize(qz, keep_f32);
            }
            Ok(None) => {}
            Err(e @ (Error::Corrupt(_) | Error::UnsupportedFormat { .. })) => {
                st.quantizer_damage = Some(e.to_string());
            }
            Err(Error::Sqlite(e)) if !index::is_storage_failure(&e) => {
                st.quantizer_damage = Some(format!("meta quantizer is unreadable ({e})"));
            }
            Err(e) => return Err(e),
        }
        arena.reserve_rows(live.max(0) as usize);
        let (mut max_seq, mut max_hlc) = (0i64, 0i64);
        let mut stmt = db.prepare(schema::LOAD_ALL)?;
        let mut rows = stmt.query([])?;
        let mut v = Vec::with_capacity(dim);
        while let Some(row) = rows.next()? {
            let row = ItemRow::read(row)?;
            max_seq = max_seq.max(row.seq);
            max_hlc = max_hlc.max(row.hlc);
            if let Some(blob) = row.vector {
                codec::decode_into(blob, dim, &mut v).map_err(|e| corrupt_item(row.id, e))?;
                arena.upsert(row.rowid, row.id, &v);
            }
        }
        st.index_damage = None;
        st.index = match memory_index {
            Some(params) => Some(ShardIndex::build(params, profile.metric, &arena, false)?),
            None => match ShardIndex::load(
                db,
                &arena,
                profile.metric,
                profile.durability != Durability::Memory,
            )? {
                Loaded::Absent => None,
                Loaded::Ready(ix) => Some(*ix),
                Loaded::Damaged(why) => {
                    st.index_damage = Some(why);
                    None
                }
            },
        };
        st.arena = arena;
        st.last_seq = max_seq;
        // Collected tombstones took their HLCs with them; the clock stays past them.
        let max_hlc = max_hlc.max(super::admin::meta_i64(db, schema::META_GC_HLC)?);
        st.last_hlc = st.last_hlc.max(max_hlc);
        st.version += 1;
        Ok(())
    })();
    db.execute_batch(schema::COMMIT)?;
    set_mapped(db, false)?;
    // Readers keep the file mapped when searches read rows at random (the OS page cache serves
    // them instead of SQLite's small one, no read syscall and copy per page): rescoring in an
    // int8-only arena reads a few vectors per query (−50 % per query measured), hybrid search
    // reads its candidates' text to score them by BM25 (−60 % of that step measured).
    if let Some(pool) = &readers.0 {
        let int8_only = st.arena.quantizer().is_some() && !st.arena.has_f32();
        let has_text = r.is_ok()
            && crate::fts::exists(db)?
            && db.query_row(schema::FTS_HAS_ROWS, [], |r| r.get(0))?;
        pool.set_mapped(int8_only || has_text);
    }
    r
}
