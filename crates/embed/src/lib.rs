//! Text embedders for `sqlite-vector`: turn text into the vectors a shard stores and searches.
//!
//! ```
//! use sqlite_vector_embed::{Embedder, StaticEmbedder};
//!
//! # fn main() -> Result<(), sqlite_vector_embed::EmbedError> {
//! // The built-in model is compiled into the binary: no files, no network.
//! let embedder = StaticEmbedder::builtin()?;
//! assert_eq!(embedder.model_id(), "minilm-static-256");
//! assert_eq!(embedder.dimension(), 256);
//!
//! let docs = embedder.embed_batch(&[
//!     "command-line tool to convert HTML to PDF",
//!     "Nintendo 64 emulator audio plugins",
//! ])?;
//! let query = embedder.embed("html to pdf converter")?;
//!
//! // Vectors are unit length, so cosine similarity is a dot product.
//! let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
//! assert!(cos(&query, &docs[0]) > cos(&query, &docs[1]));
//!
//! // A text with no known tokens is refused, never embedded as a zero vector.
//! let err = embedder.embed("😀🚀").unwrap_err();
//! assert!(err.is_user_error());
//! # Ok(())
//! # }
//! ```
//!
//! Two embedders implement the [`Embedder`] trait:
//!
//! - [`StaticEmbedder`]: the built-in offline model `minilm-static-256` (256-d, a model2vec
//!   static model distilled from all-MiniLM-L6-v2, Apache-2.0; see `model/README.md` and
//!   `model/NOTICE`). About 8 MB of model and tokenizer are embedded in the binary with
//!   `include_bytes!`; [`StaticEmbedder::from_dir`] loads the same format from a directory.
//!   One thread embeds tens of thousands of short texts per second.
//! - [`HttpEmbedder`]: any OpenAI-compatible `POST {base_url}/embeddings` endpoint (OpenAI,
//!   Ollama's `http://localhost:11434/v1`, vLLM, ...), configured by an [`HttpConfig`] or by
//!   environment variables ([`HttpConfig::from_env`]).
//!
//! **Model ids.** [`Embedder::model_id`] names the model whose vectors an embedder makes. A shard
//! records the id of the model it was filled with; vectors of different models are not
//! comparable, so text search or insert with another model must be refused.
//!
//! **No silent fallback.** An embedder that cannot embed returns an [`EmbedError`]; nothing here
//! ever switches to another model or returns placeholder vectors. Errors caused by the input
//! (no tokens, text or batch over the [`Limits`]) are told apart from internal ones by
//! [`EmbedError::is_user_error`]. A batch is all or nothing: the first failing text fails it.

mod error;
mod http;
mod static_model;

pub use error::{EmbedError, Result};
pub use http::{HttpConfig, HttpEmbedder};
pub use static_model::{StaticEmbedder, BUILTIN_MODEL_ID};

/// Turns texts into vectors of one fixed dimension, made by one model.
///
/// Implementations are `Send + Sync`: one embedder can serve many threads.
pub trait Embedder: Send + Sync {
    /// The id of the model that makes the vectors (for example `"minilm-static-256"`). A shard
    /// records it, and refuses text from an embedder with another id.
    fn model_id(&self) -> &str;

    /// The length of every vector this embedder returns. `0` only for an [`HttpEmbedder`] whose
    /// dimension was neither configured nor learned yet (see
    /// [`HttpEmbedder::detect_dimension`]).
    fn dimension(&self) -> usize;

    /// Embeds a batch of texts: one vector per text, in order. All or nothing: the first text
    /// that cannot be embedded fails the whole batch, with its index in the error. An empty
    /// batch gives an empty result.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;

    /// Embeds one text.
    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let mut vectors = self.embed_batch(&[text])?;
        match (vectors.pop(), vectors.is_empty()) {
            (Some(v), true) => Ok(v),
            _ => Err(EmbedError::BadResponse {
                url: self.model_id().to_owned(),
                reason: format!("embedder returned {} vectors for 1 text", vectors.len() + 1),
            }),
        }
    }

    /// The limits [`embed_batch`](Embedder::embed_batch) enforces. The default implementation
    /// returns [`Limits::default`].
    fn limits(&self) -> Limits {
        Limits::default()
    }
}

/// Bounds on what one call may ask of an embedder; going over is a user error
/// ([`EmbedError::TextTooLong`], [`EmbedError::BatchTooLarge`]), never a silent cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest text, in UTF-8 bytes. Default 1,048,576 (1 MiB, like the core's metadata
    /// limit). The static model reads at most the first 3,072 characters (and 512 tokens) of a
    /// text, so its cost does not grow with the length; the byte limit stops absurd inputs
    /// before any work is done. (64 KiB would be too tight: one of debian-minilm's 25,000 real
    /// package descriptions is 80 KB.)
    pub max_text_bytes: usize,
    /// Largest number of texts in one [`Embedder::embed_batch`] call. Default 4,096. (The HTTP
    /// embedder also splits a batch into requests of [`HttpConfig::max_request_batch`] texts.)
    pub max_batch: usize,
}

impl Limits {
    /// The default limits: 1 MiB per text, 4,096 texts per batch.
    pub const DEFAULT: Limits = Limits {
        max_text_bytes: 1 << 20,
        max_batch: 4096,
    };

    /// Checks a batch against the limits (its size first, then each text's length).
    pub fn check(&self, texts: &[&str]) -> Result<()> {
        if texts.len() > self.max_batch {
            return Err(EmbedError::BatchTooLarge {
                len: texts.len(),
                max: self.max_batch,
            });
        }
        for (index, text) in texts.iter().enumerate() {
            if text.len() > self.max_text_bytes {
                return Err(EmbedError::TextTooLong {
                    index,
                    bytes: text.len(),
                    max: self.max_text_bytes,
                });
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl<E: Embedder + ?Sized> Embedder for Box<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        (**self).embed_batch(texts)
    }
    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        (**self).embed(text)
    }
    fn limits(&self) -> Limits {
        (**self).limits()
    }
}

impl<E: Embedder + ?Sized> Embedder for std::sync::Arc<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        (**self).embed_batch(texts)
    }
    fn embed(&self, text: &str) -> Result<Vec<f32>> {
        (**self).embed(text)
    }
    fn limits(&self) -> Limits {
        (**self).limits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_check_batch_then_texts() {
        let limits = Limits {
            max_text_bytes: 4,
            max_batch: 2,
        };
        assert!(limits.check(&["abcd", ""]).is_ok());
        assert!(matches!(
            limits.check(&["a", "b", "c"]),
            Err(EmbedError::BatchTooLarge { len: 3, max: 2 })
        ));
        assert!(matches!(
            limits.check(&["a", "abcde"]),
            Err(EmbedError::TextTooLong {
                index: 1,
                bytes: 5,
                max: 4
            })
        ));
    }

    #[test]
    fn error_kinds() {
        assert!(EmbedError::NoTokens { index: 0 }.is_user_error());
        assert!(EmbedError::InvalidConfig("x".into()).is_user_error());
        assert!(!EmbedError::Http {
            url: "u".into(),
            message: "m".into()
        }
        .is_user_error());
        assert_eq!(
            EmbedError::TextTooLong {
                index: 2,
                bytes: 70000,
                max: 65536
            }
            .to_string(),
            "text 2 is too long: 70000 bytes, the limit is 65536"
        );
    }
}
