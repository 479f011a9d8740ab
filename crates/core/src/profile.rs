//! A shard's profile: what its vectors are (dimension, metric, embedding model) and how its
//! writes are made durable. The profile is stored in the shard's `meta` table; a vector or a
//! peer with another profile is refused with an error naming both values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest supported dimension (a 64 KiB vector BLOB).
pub const MAX_DIMENSION: usize = 16_384;

/// Similarity measure of a shard (and, optionally, of one search).
///
/// Scores returned by a search:
/// * [`Metric::Cosine`]: cosine similarity `a·b / (|a| |b|)`, in `[-1, 1]`, larger is closer;
/// * [`Metric::Dot`]: the inner product `a·b`, larger is closer;
/// * [`Metric::L2`]: the Euclidean distance `|a − b|`, smaller is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity (uses each vector's stored norm).
    Cosine,
    /// Euclidean (L2) distance.
    L2,
    /// Inner (dot) product.
    Dot,
}

impl Metric {
    /// The canonical name: `cosine`, `l2` or `dot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }

    /// `true` when a larger score is closer (cosine, dot), `false` for a distance (L2).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = Error;
    /// Accepts `cosine`/`cos`, `l2`/`euclidean`, `dot`/`ip`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Ok(Metric::Cosine),
            "l2" | "euclidean" => Ok(Metric::L2),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            _ => Err(Error::InvalidArgument(format!(
                "unknown metric {s:?}: expected cosine, l2 or dot"
            ))),
        }
    }
}

/// How a committed write is made durable (ARCHITECTURE rule 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// WAL with `synchronous=FULL`: every commit is fsynced; survives power loss.
    Full,
    /// WAL with `synchronous=NORMAL` (the default): a commit survives a crash of the process;
    /// the last commits before a power loss or OS crash may be lost (the WAL is fsynced at
    /// checkpoints). Commits cost tens of microseconds instead of an fsync.
    #[default]
    Normal,
    /// Nothing on disk: an in-memory shard that ends with its handle.
    Memory,
}

impl Durability {
    /// The canonical name: `full`, `normal` or `memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
            Durability::Memory => "memory",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            "memory" => Ok(Durability::Memory),
            _ => Err(Error::InvalidArgument(format!(
                "unknown durability {s:?}: expected full, normal or memory"
            ))),
        }
    }
}

/// What a shard holds and how it stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Components per vector, 1 ..= [`MAX_DIMENSION`].
    pub dimension: usize,
    /// The shard's metric (searches may override it).
    pub metric: Metric,
    /// Durability of writes.
    pub durability: Durability,
    /// Id of the embedding model that produced the vectors, if known (e.g.
    /// `sentence-transformers/all-MiniLM-L6-v2`).
    pub embedding_model: Option<String>,
    /// Metadata fields (dotted paths such as `title` or `author.name`) whose values are indexed
    /// for full-text search together with each item's text. At most 16.
    #[serde(default)]
    pub searchable_fields: Vec<String>,
}

impl Profile {
    /// A profile with the given dimension and metric, durability [`Durability::Normal`] and no
    /// embedding model.
    pub fn new(dimension: usize, metric: Metric) -> Self {
        Profile {
            dimension,
            metric,
            durability: Durability::Normal,
            embedding_model: None,
            searchable_fields: Vec::new(),
        }
    }

    /// Sets the durability.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the embedding model id.
    pub fn with_embedding_model(mut self, model: impl Into<String>) -> Self {
        self.embedding_model = Some(model.into());
        self
    }

    /// Declares metadata fields whose values full-text search also indexes.
    pub fn with_searchable_fields<S: Into<String>>(
        mut self,
        fields: impl IntoIterator<Item = S>,
    ) -> Self {
        self.searchable_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a dimension of 0 or above [`MAX_DIMENSION`], an empty
    /// embedding model id, or more than 16 (or empty, or over 256-byte) searchable fields.
    pub fn validate(&self) -> Result<()> {
        if self.dimension == 0 || self.dimension > MAX_DIMENSION {
            return Err(Error::InvalidArgument(format!(
                "dimension must be 1..={MAX_DIMENSION}, got {}",
                self.dimension
            )));
        }
        if let Some(m) = &self.embedding_model {
            if m.trim().is_empty() || m.len() > 256 {
                return Err(Error::InvalidArgument(
                    "embedding model id must be 1..=256 non-blank bytes".into(),
                ));
            }
        }
        if self.searchable_fields.len() > 16
            || self
                .searchable_fields
                .iter()
                .any(|f| f.is_empty() || f.len() > 256 || f.split('.').any(str::is_empty))
        {
            return Err(Error::InvalidArgument(
                "searchable fields: at most 16 non-empty dotted paths of ≤ 256 bytes".into(),
            ));
        }
        Ok(())
    }

    /// Checks that `self` (the shard's profile) is compatible with `wanted`: same dimension,
    /// metric and embedding model (durability may differ: it is a property of the handle).
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] or [`Error::ProfileMismatch`] naming both values.
    pub fn check_compatible(&self, wanted: &Profile) -> Result<()> {
        if self.dimension != wanted.dimension {
            return Err(Error::DimensionMismatch {
                expected: self.dimension,
                got: wanted.dimension,
            });
        }
        if self.metric != wanted.metric {
            return Err(Error::ProfileMismatch {
                field: "metric",
                shard: self.metric.to_string(),
                requested: wanted.metric.to_string(),
            });
        }
        if self.embedding_model != wanted.embedding_model {
            let show = |m: &Option<String>| m.clone().unwrap_or_else(|| "(none)".into());
            return Err(Error::ProfileMismatch {
                field: "embedding model",
                shard: show(&self.embedding_model),
                requested: show(&wanted.embedding_model),
            });
        }
        Ok(())
    }
}
