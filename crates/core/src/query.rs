//! One query type for every interface (ARCHITECTURE rule 12): what to search with (a vector,
//! text, or both fused), where (one shard, or a manager's shards by names or prefix), and how
//! (`k`, `filter`, `min_score`, `max_distance`, `metric`, `ef_search`, fusion). The CLI and the
//! MCP server only map their arguments onto a [`Query`] and print its [`QueryResult`], so a
//! word means the same everywhere: `text` is the query text; [`Mode`] says how it is used.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manager::{ShardFailure, ShardManager, Targets};
use crate::shard::{Hit, HybridParams, SearchParams, Shard};

/// How a query ranks items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// By vector similarity in the shard's metric ([`Shard::search`]).
    Vector,
    /// By BM25 over text and searchable metadata ([`Shard::search_text`]).
    Text,
    /// Both rankings fused ([`Shard::search_hybrid`]).
    Hybrid,
}

impl Mode {
    /// `"vector"`, `"text"` or `"hybrid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Vector => "vector",
            Mode::Text => "text",
            Mode::Hybrid => "hybrid",
        }
    }

    /// The mode of a query given as `text` and/or a `vector`: `mode` when the caller named one
    /// (checked against what was given), else the one rule every interface applies:
    ///
    /// * text and a vector → [`Mode::Hybrid`];
    /// * text alone → [`Mode::Hybrid`] when the target shards record an embedding model
    ///   (`text_shards`: their vectors embed text, so the interface embeds the query with that
    ///   model, or fails naming it), [`Mode::Text`] when they hold raw vectors (nothing could
    ///   embed the text for them);
    /// * a vector alone → [`Mode::Vector`].
    ///
    /// A [`Mode::Vector`] or [`Mode::Hybrid`] query without a vector is completed by the
    /// interface, which embeds the text.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when neither text nor a vector is given, or the named mode
    /// lacks what it needs (text for `text` and `hybrid`; a vector or text for `vector`).
    pub fn resolve(
        mode: Option<Mode>,
        has_text: bool,
        has_vector: bool,
        text_shards: bool,
    ) -> Result<Mode> {
        if !has_text && !has_vector {
            return Err(Error::InvalidArgument(
                "give a query: text and/or a vector".into(),
            ));
        }
        let mode = match mode {
            Some(m) => m,
            None if has_text && (has_vector || text_shards) => Mode::Hybrid,
            None if has_text => Mode::Text,
            None => Mode::Vector,
        };
        match mode {
            Mode::Text | Mode::Hybrid if !has_text => Err(Error::InvalidArgument(format!(
                "mode {mode} needs the query text"
            ))),
            _ => Ok(mode),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "vector" => Ok(Mode::Vector),
            "text" => Ok(Mode::Text),
            "hybrid" => Ok(Mode::Hybrid),
            _ => Err(Error::InvalidArgument(format!(
                "unknown mode {s:?}: expected vector, text or hybrid"
            ))),
        }
    }
}

/// Which shards of a [`ShardManager`] a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One shard; its hits carry no shard name.
    Shard(String),
    /// These shards (repeats read once); hits carry their shard's name, and unknown names
    /// become [`QueryResult::failures`].
    Names(Vec<String>),
    /// Every shard whose name starts with this (e.g. `team-a/`).
    Prefix(String),
}

/// A search: its input, its mode, where it runs and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// How the query ranks.
    pub mode: Mode,
    /// The query vector (`vector` and `hybrid`).
    pub vector: Option<Vec<f32>>,
    /// The query text (`text` and `hybrid`).
    pub text: Option<String>,
    /// Where it runs on a [`ShardManager`] (`None` for [`Shard::query`]).
    pub scope: Option<Scope>,
    /// `k`, `filter`, `min_score`, `max_distance`, `metric`, `ef_search`, `exact`, `payload`.
    pub params: SearchParams,
    /// How `hybrid` fuses the two rankings.
    pub fusion: HybridParams,
}

impl Query {
    /// A vector query with default parameters (k = 10).
    pub fn vector(vector: Vec<f32>) -> Query {
        Query::new(Mode::Vector, Some(vector), None)
    }
    /// A text (BM25) query with default parameters.
    pub fn text(text: impl Into<String>) -> Query {
        Query::new(Mode::Text, None, Some(text.into()))
    }
    /// A hybrid query with default parameters.
    pub fn hybrid(vector: Vec<f32>, text: impl Into<String>) -> Query {
        Query::new(Mode::Hybrid, Some(vector), Some(text.into()))
    }
    /// A query of `mode` with these parts (checked when it runs).
    pub fn new(mode: Mode, vector: Option<Vec<f32>>, text: Option<String>) -> Query {
        Query {
            mode,
            vector,
            text,
            scope: None,
            params: SearchParams::default(),
            fusion: HybridParams::default(),
        }
    }
    /// Sets the search parameters.
    pub fn with_params(mut self, params: SearchParams) -> Query {
        self.params = params;
        self
    }
    /// Sets the fusion parameters.
    pub fn with_fusion(mut self, fusion: HybridParams) -> Query {
        self.fusion = fusion;
        self
    }
    /// Sets where the query runs on a manager.
    pub fn with_scope(mut self, scope: Scope) -> Query {
        self.scope = Some(scope);
        self
    }

    /// The vector and/or text the mode needs.
    fn parts(&self) -> Result<(&[f32], &str)> {
        let need = |what: &str| {
            Error::InvalidArgument(format!("a {} query needs {what}", self.mode.as_str()))
        };
        let vector = match self.mode {
            Mode::Vector | Mode::Hybrid => {
                self.vector.as_deref().ok_or_else(|| need("a vector"))?
            }
            Mode::Text => &[],
        };
        let text = match self.mode {
            Mode::Text | Mode::Hybrid => self.text.as_deref().ok_or_else(|| need("text"))?,
            Mode::Vector => "",
        };
        Ok((vector, text))
    }
}

/// One hit of a [`Query`]: the item and, across shards, the shard it is in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryHit {
    /// The shard holding the item (queries of [`Scope::Names`] / [`Scope::Prefix`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The item and its score (serialized inline).
    #[serde(flatten)]
    pub hit: Hit,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    /// The mode that ran.
    pub mode: Mode,
    /// The hits, best first.
    pub hits: Vec<QueryHit>,
    /// Shards that could not be searched (across shards only).
    pub failures: Vec<ShardFailure>,
    /// Whether a larger score is better (`false` for L2 distances in `vector` mode).
    pub higher_is_better: bool,
}

impl Shard {
    /// Runs `query` on this shard ([`Shard::search`], [`Shard::search_text`] or
    /// [`Shard::search_hybrid`] by its mode).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a query with a [`Query::scope`] (scopes are for
    /// [`ShardManager::query`]) or without the parts its mode needs; the errors of the search
    /// its mode runs.
    pub fn query(&self, query: &Query) -> Result<QueryResult> {
        if query.scope.is_some() {
            return Err(Error::InvalidArgument(
                "a shard searches itself: scopes are for ShardManager::query".into(),
            ));
        }
        let (vector, text) = query.parts()?;
        let p = &query.params;
        let hits = match query.mode {
            Mode::Vector => self.search(vector, p)?,
            Mode::Text => self.search_text(text, p)?,
            Mode::Hybrid => self.search_hybrid(vector, text, p, &query.fusion)?,
        };
        Ok(QueryResult {
            mode: query.mode,
            hits: hits
                .into_iter()
                .map(|hit| QueryHit { shard: None, hit })
                .collect(),
            failures: Vec::new(),
            higher_is_better: query.mode != Mode::Vector
                || p.metric.unwrap_or(self.profile().metric).higher_is_better(),
        })
    }
}

impl ShardManager {
    /// Runs `query` on the shards of its scope: one shard, or several merged into one top k
    /// ([`ShardManager::search`], [`ShardManager::search_text`],
    /// [`ShardManager::search_hybrid`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a query without a scope, an empty list of names, or
    /// without the parts its mode needs; [`Error::UnknownShard`] for a [`Scope::Shard`] that
    /// does not exist; the errors of the searches.
    pub fn query(&self, query: &Query) -> Result<QueryResult> {
        let Some(scope) = &query.scope else {
            return Err(Error::InvalidArgument(
                "a query on a shard manager needs a scope: a shard, names or a prefix".into(),
            ));
        };
        let names: Vec<&str>;
        let targets = match scope {
            Scope::Shard(name) => {
                let shard = self.open_shard(name)?;
                return shard.query(&Query {
                    scope: None,
                    ..query.clone()
                });
            }
            Scope::Names(list) if list.is_empty() => {
                return Err(Error::InvalidArgument(
                    "give at least one shard name".into(),
                ))
            }
            Scope::Names(list) => {
                names = list.iter().map(String::as_str).collect();
                Targets::Names(&names)
            }
            Scope::Prefix(p) => Targets::Prefix(p),
        };
        let (vector, text) = query.parts()?;
        let p = &query.params;
        let found = match query.mode {
            Mode::Vector => self.search(targets, vector, p)?,
            Mode::Text => self.search_text(targets, text, p)?,
            Mode::Hybrid => self.search_hybrid(targets, vector, text, p, &query.fusion)?,
        };
        let higher_is_better = match (query.mode, p.metric) {
            (Mode::Vector, Some(m)) => m.higher_is_better(),
            (Mode::Vector, None) => match found.hits.first() {
                Some(h) => self
                    .open_shard(&h.shard)?
                    .profile()
                    .metric
                    .higher_is_better(),
                None => true,
            },
            _ => true,
        };
        Ok(QueryResult {
            mode: query.mode,
            hits: found
                .hits
                .into_iter()
                .map(|h| QueryHit {
                    shard: Some(h.shard),
                    hit: h.hit,
                })
                .collect(),
            failures: found.failures,
            higher_is_better,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_resolve_by_one_rule() {
        use Mode::*;
        let r = |m, t, v, e| Mode::resolve(m, t, v, e);
        assert_eq!(r(None, true, true, false).unwrap(), Hybrid);
        assert_eq!(r(None, true, false, true).unwrap(), Hybrid);
        assert_eq!(r(None, true, false, false).unwrap(), Text);
        assert_eq!(r(None, false, true, false).unwrap(), Vector);
        assert!(r(None, false, false, true).is_err());
        assert_eq!(r(Some(Text), true, true, true).unwrap(), Text);
        assert!(r(Some(Text), false, true, true).is_err());
        assert!(r(Some(Hybrid), false, true, true).is_err());
        assert_eq!(r(Some(Hybrid), true, false, false).unwrap(), Hybrid);
        assert_eq!(r(Some(Vector), true, false, true).unwrap(), Vector);
        assert_eq!("HYBRID".parse::<Mode>().unwrap(), Hybrid);
        assert!("fuzzy".parse::<Mode>().is_err());
    }
}
