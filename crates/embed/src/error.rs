//! The crate's one error type.
//!
//! User errors (a text that yields no tokens, a text or a batch over the limits, a bad
//! configuration) are distinct variants from internal ones (HTTP failures, bad server responses,
//! a model that cannot be loaded), so a caller such as the MCP server can report the first kind
//! to the user and escalate the second ([`EmbedError::is_user_error`]). Messages are short,
//! lower-case and carry the values involved. An embedder that fails returns one of these errors:
//! it never falls back to another model or to made-up vectors.

use std::time::Duration;

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading an embedder or embedding text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EmbedError {
    // ---- user errors -------------------------------------------------------------------------
    /// A text yields no token ids: it is empty, blank, or (for the static model) made only of
    /// words the vocabulary does not know (emoji, unknown scripts). Such a text has no meaning
    /// to embed, so it is refused rather than turned into a zero vector.
    #[error(
        "text {index} yields no tokens: it is empty, blank or made only of unknown words \
         (emoji, unsupported scripts)"
    )]
    NoTokens {
        /// Position of the text in the batch (0 for a single text).
        index: usize,
    },
    /// A text is longer than the embedder's [`Limits::max_text_bytes`](crate::Limits).
    #[error("text {index} is too long: {bytes} bytes, the limit is {max}")]
    TextTooLong {
        /// Position of the text in the batch (0 for a single text).
        index: usize,
        /// The text's length in bytes (UTF-8).
        bytes: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A batch holds more texts than the embedder's [`Limits::max_batch`](crate::Limits).
    #[error("batch too large: {len} texts, the limit is {max}")]
    BatchTooLarge {
        /// Number of texts in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An embedder configuration (a struct, flags or environment variables) is missing a value
    /// or holds an invalid one.
    #[error("invalid embedder configuration: {0}")]
    InvalidConfig(String),

    // ---- internal / environment errors ------------------------------------------------------
    /// The HTTP request could not be made or completed: connection refused, host not found,
    /// TLS failure, connection reset, ...
    #[error("embedding request to {url} failed: {message}")]
    Http {
        /// The endpoint that was called.
        url: String,
        /// What went wrong, from the HTTP client.
        message: String,
    },
    /// The embedding server did not answer within the configured timeout.
    #[error("embedding request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The endpoint that was called.
        url: String,
        /// The configured request timeout.
        timeout: Duration,
    },
    /// The embedding server answered with an HTTP error status (401 bad API key, 404 unknown
    /// model or path, 429 rate limit, 500 server error, ...).
    #[error("embedding server {url} answered http {status}: {message}")]
    Status {
        /// The endpoint that was called.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's error message (`error.message` of an OpenAI-style error body, else the
        /// start of the body).
        message: String,
    },
    /// The embedding server answered 2xx with a body that is not a valid embeddings response:
    /// not JSON, the wrong number of embeddings, bad or duplicate indexes, empty, non-finite or
    /// zero vectors.
    #[error("bad response from embedding server {url}: {reason}")]
    BadResponse {
        /// The endpoint that was called.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The embedding server returned vectors of another dimension than the one configured, or
    /// than the one it returned before.
    #[error("dimension mismatch: model {model:?} should give {expected}-d vectors, the server returned {got}-d")]
    DimensionMismatch {
        /// The model name sent to the server.
        model: String,
        /// The configured (or first observed) dimension.
        expected: usize,
        /// The dimension of the offending vector.
        got: usize,
    },
    /// A static model could not be loaded: a file is missing or unreadable, the tokenizer or the
    /// safetensors file is malformed, or the tensors have unexpected names, types or shapes.
    #[error("cannot load static model from {source_name}: {reason}")]
    ModelLoad {
        /// Where the model came from (a directory, or `built-in`).
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The tokenizer failed on a text (not expected with the built-in model).
    #[error("tokenizer failed on text {index}: {message}")]
    Tokenizer {
        /// Position of the text in the batch.
        index: usize,
        /// The tokenizer's message.
        message: String,
    },
}

impl EmbedError {
    /// `true` for errors caused by the caller's input or configuration ([`NoTokens`],
    /// [`TextTooLong`], [`BatchTooLarge`], [`InvalidConfig`]); `false` for failures of the
    /// embedder, the network or the server.
    ///
    /// [`NoTokens`]: EmbedError::NoTokens
    /// [`TextTooLong`]: EmbedError::TextTooLong
    /// [`BatchTooLarge`]: EmbedError::BatchTooLarge
    /// [`InvalidConfig`]: EmbedError::InvalidConfig
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            EmbedError::NoTokens { .. }
                | EmbedError::TextTooLong { .. }
                | EmbedError::BatchTooLarge { .. }
                | EmbedError::InvalidConfig(_)
        )
    }
}
