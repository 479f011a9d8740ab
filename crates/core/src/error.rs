//! The crate's one error type.
//!
//! User errors (bad input, unknown ids, profile mismatches) are distinct variants from internal
//! ones (I/O, SQLite, corruption), so callers such as the MCP server can report the first kind to
//! the user and escalate the second. Messages are short, lower-case and carry the values involved.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `sqlite-vector`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // ---- user errors -------------------------------------------------------------------------
    /// A vector's length differs from the shard's dimension.
    #[error("dimension mismatch: shard has {expected}, got {got}")]
    DimensionMismatch {
        /// The shard's dimension.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A vector has no components.
    #[error("empty vector: a vector needs at least one component")]
    EmptyVector,
    /// A vector component is NaN or ±Inf.
    #[error("non-finite vector component at index {index}: {value}")]
    NonFinite {
        /// Index of the first offending component.
        index: usize,
        /// Its value (NaN, inf or -inf).
        value: f32,
    },
    /// A vector's Euclidean norm is above [`crate::codec::MAX_NORM`] (1e18): its distances and
    /// dot products would overflow 32-bit floats.
    #[error(
        "vector norm {norm:e} is too large: the limit is 1e18 (its distances would overflow \
         32-bit floats); scale the vector down"
    )]
    VectorTooLarge {
        /// The vector's norm (computed in f64; may be infinite).
        norm: f64,
    },
    /// A write to a shard opened read-only ([`crate::OpenOptions::read_only`], or a file or
    /// directory this process cannot write).
    #[error("read-only shard: {0}")]
    ReadOnly(String),
    /// A zero vector cannot be stored in, or used to query, a cosine shard: its direction is
    /// undefined.
    #[error("zero vector: cosine similarity is undefined for a vector of norm 0")]
    ZeroVector,
    /// No live item has this id.
    #[error("unknown id: {0:?}")]
    NotFound(String),
    /// An insert named an id that is already live (use `upsert` to replace it).
    #[error("duplicate id: {0:?} already exists")]
    DuplicateId(String),
    /// An id is empty, too long, or contains control characters.
    #[error("invalid id {id:?}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Metadata was given that is not a JSON object (or is too large).
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    /// A metadata filter could not be parsed.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// Some other argument is out of range or inconsistent (`k = 0`, `min_score` with L2, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The shard was created with another profile value than the one requested.
    #[error("profile mismatch: shard has {field} {shard}, requested {requested}")]
    ProfileMismatch {
        /// Which profile field differs (`dimension`, `metric`, `embedding model`).
        field: &'static str,
        /// The shard's value.
        shard: String,
        /// The requested value.
        requested: String,
    },
    /// A shard file already exists where `create` was asked to make a new one.
    #[error("shard already exists: {0}")]
    AlreadyExists(String),
    /// No shard of this name exists under the manager's root.
    #[error("unknown shard: {0:?}")]
    UnknownShard(String),
    /// The shard's file was dropped or replaced (by another process or shard manager) while this
    /// handle had it open: the write was rolled back, nothing was written. Open the shard again
    /// (it may now be another shard of the same name, or none).
    #[error(
        "shard dropped: its file was removed or replaced while this handle was open; nothing \
         was written (open the shard again)"
    )]
    ShardDropped,
    /// The shard already has an HNSW index (drop it first to change its parameters).
    #[error("the shard already has an hnsw index (drop_index first to change its parameters)")]
    IndexExists,
    /// A change from another site is stamped further in the future than the shard accepts
    /// ([`crate::OpenOptions::max_clock_skew_ms`]): refused, so it cannot win every later merge.
    #[error("clock skew: change {id:?} is stamped {ahead_ms} ms ahead of this clock (the limit is {limit_ms} ms)")]
    ClockSkew {
        /// The item the change is for.
        id: String,
        /// How far ahead of the local clock its HLC is, in ms.
        ahead_ms: i64,
        /// The accepted skew, in ms.
        limit_ms: i64,
    },

    // ---- internal / environment errors ------------------------------------------------------
    /// The file is not a sqlite-vector shard (not SQLite, or SQLite without our `meta` table).
    #[error("not a sqlite-vector shard: {0}")]
    NotAShard(String),
    /// The shard was written by a newer, unknown format version.
    #[error("unsupported format version {found} (this build reads up to {supported})")]
    UnsupportedFormat {
        /// Format version recorded in the shard.
        found: u32,
        /// Highest version this build understands.
        supported: u32,
    },
    /// Stored data failed validation (wrong BLOB length, bad profile value, damaged pages).
    #[error("corrupt shard: {0}")]
    Corrupt(String),
    /// The database stayed locked by another connection (usually another process) for longer
    /// than the busy timeout, or a read kept racing its writes; retrying later can succeed.
    #[error("database busy: {0}")]
    Busy(String),
    /// A write transaction could not commit: one of its operations failed after it had
    /// started writing (an I/O error, a damaged file), and the caller carried on. Nothing of
    /// the transaction was written.
    #[error("write transaction aborted: {0}")]
    TransactionAborted(String),
    /// An error from SQLite.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// An I/O error outside SQLite.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// JSON stored in the shard could not be decoded.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The class of an [`Error`], for callers that map errors to exit codes, protocol errors or
/// retries without matching every variant. Each variant is classified in one place,
/// [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: a vector, id, metadata, filter, argument or change the call cannot take.
    InvalidInput,
    /// An unknown item id.
    NotFound,
    /// An unknown shard name.
    UnknownShard,
    /// Something that already exists: a live id on insert, a shard, an index.
    AlreadyExists,
    /// A dimension, metric or embedding model differs from the one required.
    ProfileMismatch,
    /// The file is not a sqlite-vector shard (or catalog).
    NotAShard,
    /// The database is busy (locked past the busy timeout); retry later.
    Busy,
    /// Stored data is damaged, or written by a newer format version.
    Corrupt,
    /// An I/O error outside SQLite.
    Io,
    /// Any other failure inside SQLite or the library.
    Internal,
}

impl ErrorKind {
    /// The variant's name (`"InvalidInput"`, `"NotFound"`, …): the stable `kind` string that
    /// bindings (JS errors, protocol replies) carry.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::UnknownShard => "UnknownShard",
            ErrorKind::AlreadyExists => "AlreadyExists",
            ErrorKind::ProfileMismatch => "ProfileMismatch",
            ErrorKind::NotAShard => "NotAShard",
            ErrorKind::Busy => "Busy",
            ErrorKind::Corrupt => "Corrupt",
            ErrorKind::Io => "Io",
            ErrorKind::Internal => "Internal",
        }
    }

    /// `true` for the kinds the caller's input causes (and can fix by changing it), `false`
    /// for internal or environmental ones.
    pub fn is_user_error(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidInput
                | ErrorKind::NotFound
                | ErrorKind::UnknownShard
                | ErrorKind::AlreadyExists
                | ErrorKind::ProfileMismatch
                | ErrorKind::NotAShard
        )
    }
}

impl Error {
    /// The error's class (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DimensionMismatch { .. }
            | Error::EmptyVector
            | Error::NonFinite { .. }
            | Error::VectorTooLarge { .. }
            | Error::ReadOnly(_)
            | Error::ZeroVector
            | Error::InvalidId { .. }
            | Error::InvalidMetadata(_)
            | Error::InvalidFilter(_)
            | Error::InvalidArgument(_)
            | Error::ClockSkew { .. } => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::UnknownShard(_) | Error::ShardDropped => ErrorKind::UnknownShard,
            Error::DuplicateId(_) | Error::AlreadyExists(_) | Error::IndexExists => {
                ErrorKind::AlreadyExists
            }
            Error::ProfileMismatch { .. } => ErrorKind::ProfileMismatch,
            Error::NotAShard(_) => ErrorKind::NotAShard,
            Error::Busy(_) => ErrorKind::Busy,
            Error::UnsupportedFormat { .. } | Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Io(_) => ErrorKind::Io,
            Error::TransactionAborted(_) | Error::Sqlite(_) | Error::Json(_) => ErrorKind::Internal,
        }
    }

    /// `true` for errors caused by the caller's input (bad arguments, unknown ids or shards,
    /// profile mismatches), `false` for internal or environmental failures (I/O, SQLite,
    /// corruption, a busy database): [`ErrorKind::is_user_error`] of [`Error::kind`].
    pub fn is_user_error(&self) -> bool {
        self.kind().is_user_error()
    }

    /// Whether the error is a bad query or search parameter, which every shard would refuse
    /// alike (a search across shards fails as a whole on it instead of reporting each shard).
    pub fn is_query_error(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }
}

impl From<rusqlite::Error> for Error {
    /// SQLite's busy and locked results become [`Error::Busy`], its read-only result
    /// [`Error::ReadOnly`]; a commit refused by the shard manager's commit check
    /// [`Error::ShardDropped`]; everything else [`Error::Sqlite`].
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error()
            .is_some_and(|f| f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_COMMITHOOK)
        {
            return Error::ShardDropped;
        }
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Error::Busy(e.to_string())
            }
            Some(rusqlite::ErrorCode::ReadOnly) => {
                Error::ReadOnly(format!("{e}: writes need a shard opened for writing"))
            }
            _ => Error::Sqlite(e),
        }
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    /// A stored value of an unexpected SQL type (e.g. a vector that is not a BLOB) means the
    /// shard was damaged or written by something else.
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Error::Corrupt(format!("unexpected stored value: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn kind_names_are_the_variant_names() {
        let all = [
            ErrorKind::InvalidInput,
            ErrorKind::NotFound,
            ErrorKind::UnknownShard,
            ErrorKind::AlreadyExists,
            ErrorKind::ProfileMismatch,
            ErrorKind::NotAShard,
            ErrorKind::Busy,
            ErrorKind::Corrupt,
            ErrorKind::Io,
            ErrorKind::Internal,
        ];
        for kind in all {
            assert_eq!(kind.as_str(), format!("{kind:?}"));
        }
    }
}
