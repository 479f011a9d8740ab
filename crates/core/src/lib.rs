//! # sqlite-vector
//!
//! An embedded vector database for AI agents: each agent or task owns a *shard*, one SQLite
//! file (or an in-memory database) of vectors with external ids, JSON metadata and text, searched
//! exactly with SIMD kernels over an in-memory arena.
//!
//! ```
//! use serde_json::json;
//! use sqlite_vector::{Filter, Metric, NewItem, Profile, SearchParams, Shard};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("agent.db");
//! let shard = Shard::create(&path, &Profile::new(4, Metric::Cosine))?;
//! shard.insert_batch(vec![
//!     NewItem::new(vec![1.0, 0.0, 0.0, 0.0]).with_id("rust").with_metadata(json!({"lang": "rust", "stars": 5})),
//!     NewItem::new(vec![0.9, 0.1, 0.0, 0.0]).with_id("go").with_metadata(json!({"lang": "go", "stars": 2})),
//!     NewItem::new(vec![0.0, 0.0, 1.0, 0.0]).with_id("c").with_metadata(json!({"lang": "c", "stars": 4})),
//! ])?;
//!
//! // The two nearest items, best first; scores are cosine similarities.
//! let hits = shard.search(&[1.0, 0.05, 0.0, 0.0], &SearchParams::k(2))?;
//! assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["rust", "go"]);
//!
//! // A metadata filter: the true top k among the items that match.
//! let filter: Filter = r#"{"stars": {"$gte": 3}}"#.parse()?;
//! let hits = shard.search(&[0.0, 1.0, 0.0, 0.0], &SearchParams::k(5).with_filter(filter))?;
//! assert_eq!(hits.len(), 2);
//! assert!(hits.iter().all(|h| h.metadata["stars"].as_i64() >= Some(3)));
//!
//! // Deleting leaves a tombstone for sync; the write is durable once `delete` returns.
//! shard.delete("go")?;
//! drop(shard);
//! let reopened = Shard::open(&path)?;
//! assert_eq!(reopened.len(), 2);
//! # Ok::<(), sqlite_vector::Error>(())
//! ```
//!
//! ## Layout
//! * [`Shard`] ([`shard`]): the API: create/open, insert, upsert, batch, update, delete, get,
//!   search, stats, and the sync-ready "changes since" query.
//! * [`schema`]: every DDL statement, the format version and migrations.
//! * [`codec`]: the vector BLOB format (little-endian f32, `dim × 4` bytes) and input checks.
//! * [`distance`]: scalar, AVX2+FMA, AVX-512 and NEON kernels, dispatched once at run time.
//! * [`filter`]: the metadata filter language (`$eq $ne $in $nin $gt $gte $lt $lte $exists
//!   $and $or $not`), compiled to SQL with bound parameters.
//! * [`sqlfn`]: `vec_distance_cosine`, `vec_distance_l2`, `vec_dot`, `vec_norm` in SQL.
//! * [`manager`]: [`ShardManager`], named shards under a root directory, search across shards.
//! * [`hnsw`]: the HNSW graph over caller-provided vectors; [`index`]: a shard's stored HNSW
//!   index ([`Shard::create_index`]) and the planner choosing exact or graph search per query.
//! * [`quant`]: int8 scalar quantization ([`Shard::set_quantization`]): the quantizer, query
//!   preparation and the code scan whose best rows the exact path rescores with f32.
//!
//! Full-text (BM25) and hybrid (reciprocal rank fusion) search are [`Shard::search_text`] and
//! [`Shard::search_hybrid`].

#![warn(missing_docs)]

mod arena;
pub mod change;
pub mod clock;
pub mod codec;
pub mod distance;
mod error;
pub mod filter;
mod fts;
pub mod fusion;
pub mod hnsw;
pub mod index;
pub mod manager;
mod par;
mod profile;
pub mod quant;
pub mod query;
pub mod schema;
pub mod shard;
pub mod sqlfn;
mod topk;

pub use change::{Applied, Change, Collected, PeerAck, SiteCursor, SiteHead, SiteId, SyncState};
pub use clock::{Clock, ManualClock};
pub use error::{Error, ErrorKind, Result};
pub use filter::Filter;
pub use fusion::Fusion;
pub use hnsw::HnswParams;
pub use index::{IndexStats, PlannerParams, Quantization, SearchPath};
pub use manager::{
    ManagerOptions, MultiSearch, ShardFailure, ShardHit, ShardInfo, ShardManager, Targets,
};
pub use profile::{Durability, Metric, Profile, MAX_DIMENSION};
pub use query::{Mode, Query, QueryHit, QueryResult, Scope};
pub use shard::{
    wait_for_closes, Hit, HybridParams, HybridScores, Item, Journal, NewItem, OpenOptions,
    SearchParams, Shard, Stats, Update, WriteTx, MAX_EF_SEARCH, MAX_IMAGE_BYTES,
};
pub use sqlfn::register_functions;

/// Re-export of the SQLite bindings used by [`Shard::query_sql`].
pub use rusqlite;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn shard_is_send_sync() {
        assert_send_sync::<crate::Shard>();
    }
}
