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
    /// An error from SQLite.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An I/O error outside SQLite.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// JSON stored in the shard could not be decoded.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// `true` for errors caused by the caller's input (bad arguments, unknown ids, profile
    /// mismatches), `false` for internal or environmental failures (I/O, SQLite, corruption).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Error::UnsupportedFormat { .. }
                | Error::Corrupt(_)
                | Error::Sqlite(_)
                | Error::Io(_)
                | Error::Json(_)
        )
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    /// A stored value of an unexpected SQL type (e.g. a vector that is not a BLOB) means the
    /// shard was damaged or written by something else.
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Error::Corrupt(format!("unexpected stored value: {e}"))
    }
}
