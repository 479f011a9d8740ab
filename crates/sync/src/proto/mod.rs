//! The sync protocol core, sans-IO (the quinn-proto pattern): [`Session`] takes frames and
//! returns frames; it opens no socket and reads no clock, so tests drive any number of peers
//! in memory, deterministically, and the transport only moves bytes.

pub mod frame;
pub mod session;

pub use frame::{Decoder, Frame, Hello, RejectCode, WireProfile, PROTOCOL_VERSION};
pub use session::{ApplyCounts, Config, Grant, Outcome, Session, ShardStore, Store};

/// Errors of the protocol core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The peer sent bytes that are not a valid frame (truncated, overlong, bad UTF-8, unknown
    /// kind or code, counts past the limits).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame (or chunk body) larger than the limits, in bytes.
    #[error("frame of {0} bytes exceeds the limit")]
    Oversize(usize),
    /// Compression failed.
    #[error("compression: {0}")]
    Codec(String),
    /// A valid frame that the session did not expect now (protocol violation).
    #[error("protocol violation: {0}")]
    Unexpected(String),
    /// This side refused the peer (version, grant, profile).
    #[error("refused the peer ({}): {message}", code.as_str())]
    Refused {
        /// Why.
        code: RejectCode,
        /// What to tell a person.
        message: String,
    },
    /// The peer refused this side.
    #[error("the peer refused ({}): {message}", code.as_str())]
    Rejected {
        /// Why.
        code: RejectCode,
        /// The peer's words.
        message: String,
    },
    /// The shard failed to read or apply changes (including a change it refuses: wrong
    /// dimension, NaN, a clock too far ahead).
    #[error(transparent)]
    Store(#[from] sqlite_vector::Error),
    /// The session is already over.
    #[error("the session is over")]
    Closed,
}
