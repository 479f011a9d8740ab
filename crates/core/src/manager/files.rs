//! The manager's view of its shard files: their identity (to notice a file dropped or replaced
//! under an open handle), symbolic links inside the root, the lock a drop holds while it removes
//! the files, and the file-descriptor budget of the open-shard LRU.
//!
//! # Dropped or replaced files
//! A handle keeps its file open after another process (or another manager on the same root)
//! drops the shard and creates a new one of the same name: on unix the removed file lives on,
//! unlinked, as long as a descriptor points at it, and writes into it succeed and are lost. The
//! manager records the device and inode of the file when it opens a handle ([`OpenFile`]) and
//! compares them with the path's (`lstat`, ≈ 1 µs) before handing out a cached handle and inside
//! every commit of the handle's writer (a commit hook, run with the shard's write lock held).
//! A drop by a manager removes the files while it holds that same write lock ([`lock_for_drop`]).
//! So a commit that a manager's handle acknowledges went into the file that was live, and not
//! yet being removed, when it committed: it happened before the drop. A commit that finds the
//! file gone or replaced is rolled back and fails with [`Error::ShardDropped`]. (A drop by a
//! program that removes the files without taking the lock — not this crate — narrows the
//! window to the time between the check and the write of the commit's WAL frames; it does not
//! close it.) Windows cannot remove a file another process holds open, and wasm has one
//! process: there identities are not recorded and the checks pass.

use std::path::{Component, Path};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::schema;

/// Device and inode number of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file at `path` itself (a link is not followed), `None` when it cannot be
/// read (missing) or on platforms without inode numbers.
pub(super) fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What a handle has open: the shard's catalog id and the identity of its file when opened.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenFile {
    /// The catalog id (which names the file).
    pub(super) id: i64,
    /// The file's identity (`None` on platforms without one).
    pub(super) file: Option<FileId>,
}

impl OpenFile {
    /// `true` while `path` is still the file the handle opened (see the module docs); always
    /// `true` where files have no identity.
    pub(super) fn is_current(&self, path: &Path) -> bool {
        !cfg!(unix) || (self.file.is_some() && file_id(path) == self.file)
    }
}

/// Refuses a symbolic link between `root` and the shard file `path`: each directory below the
/// root, the file, and its `-wal`, `-shm` and `-journal` companions. (The root itself may be a
/// link: the user chose it.) Missing entries are fine: nothing below them can be followed.
///
/// # Errors
/// [`Error::Io`] naming the link.
pub(super) fn check_no_links(root: &Path, path: &Path) -> Result<()> {
    let refuse = |p: &Path| {
        Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "refusing to follow the symbolic link {} inside the shard root (shard \
                 directories and files must not be links)",
                p.display()
            ),
        )))
    };
    let is_link = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(m) => Some(m.file_type().is_symlink()),
        Err(_) => None, // missing (or unreadable: the operation itself will say so)
    };
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut at = root.to_path_buf();
    let mut parts = rel.components().peekable();
    while let Some(c) = parts.next() {
        if let Component::Normal(part) = c {
            at.push(part);
        }
        if parts.peek().is_none() {
            break; // the file: checked with its companions below
        }
        match is_link(&at) {
            Some(true) => return refuse(&at),
            Some(false) => {}
            None => return Ok(()),
        }
    }
    for suffix in super::FILE_SUFFIXES {
        let p = super::with_suffix(path, suffix);
        if is_link(&p) == Some(true) {
            return refuse(&p);
        }
    }
    Ok(())
}

/// Takes the write lock of the shard file at `path`, to be held while its files are removed
/// (see the module docs). `Ok(None)` when the file cannot be opened or locked for another
/// reason than a lock held by someone else (already removed, not a database): there is no
/// writer to exclude.
///
/// # Errors
/// [`Error::Busy`] when another connection keeps the write lock past the busy timeout (5 s).
pub(super) fn lock_for_drop(path: &Path) -> Result<Option<Connection>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(db) = Connection::open_with_flags(path, flags) else {
        return Ok(None);
    };
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    match db
        .execute_batch(schema::BEGIN_IMMEDIATE)
        .map_err(Error::from)
    {
        Ok(()) => Ok(Some(db)),
        Err(e @ Error::Busy(_)) => Err(e),
        Err(_) => Ok(None),
    }
}

/// File descriptors one open shard holds at most: its writer connection's database file and
/// WAL (2), the shared-memory index (`-shm`, 1, shared by every connection of the process to
/// the file), and the shard's idle reader connections (2), each with its database file
/// and WAL (4). Counted on Linux in `manager::fd_cost_of_an_open_shard` (tests/it/manager.rs):
/// 3 after create and insert, 7 after searches that needed two readers at once.
pub(super) const FDS_PER_SHARD: usize = 7;

/// Descriptors the LRU leaves to the rest of the process: a quarter of the limit, at least 32
/// (the catalog's 3, the lock file, standard streams, sockets, files being imported, ...).
fn reserved_fds(limit: u64) -> u64 {
    (limit / 4).max(32)
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`), `None` when unlimited or unknown.
pub(super) fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `getrlimit` only writes the `rlimit` it is given, a valid local.
        let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        if r != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        #[allow(clippy::useless_conversion)] // `rlim_t` is not `u64` on every unix
        u64::try_from(lim.rlim_cur).ok()
    }
    #[cfg(not(unix))]
    None
}

/// How many shards fit in a limit of `limit` descriptors (see [`FDS_PER_SHARD`]), at least 1.
pub(super) fn capacity_for_fds(limit: u64) -> usize {
    let left = limit.saturating_sub(reserved_fds(limit));
    usize::try_from(left / FDS_PER_SHARD as u64)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// `true` when the process cannot open the files one shard needs right now (`EMFILE` or
/// `ENFILE`), probed by opening `dir` as many times at once as a shard opens files (its
/// database, `-wal` and `-shm`, and a reader): SQLite reports both as "unable to open database
/// file", without the cause, and it closes the files it had opened before the one that failed,
/// so a probe of one descriptor would find the database's own descriptor free again.
pub(super) fn out_of_fds(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        let mut held = Vec::with_capacity(4);
        for _ in 0..4 {
            match std::fs::File::open(dir) {
                Ok(f) => held.push(f),
                Err(e) => return matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)),
            }
        }
        false
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

/// The error of a shard that could not be opened for want of file descriptors.
pub(super) fn too_many_open_files(name: &str, open: usize, limit: Option<u64>) -> Error {
    let limit = limit.map_or_else(|| "unknown".to_string(), |l| l.to_string());
    Error::Io(std::io::Error::other(format!(
        "too many open files: cannot open shard {name:?} ({open} shards open, descriptor \
             limit {limit}); raise the limit (ulimit -n) or lower the manager's capacity"
    )))
}
