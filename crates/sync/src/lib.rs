//! Shard sync between peers: a sans-IO protocol core ([`proto`]) that moves each item's latest
//! register (vector, metadata, text, version) from one shard to another in bounded, compressed
//! chunks, merged by causal length, then HLC, then site id ([`sqlite_vector::change::merge`]).
//!
//! Each shard file has a site id; each shard keeps, per other shard it syncs with, a cursor:
//! the other's local version (`seq`) up to which its changes are committed here, written in the
//! same transaction as the changes ([`sqlite_vector::WriteTx::set_cursor`]). A session sends the
//! change feed ([`sqlite_vector::Shard::changes_since`]) from the peer's cursor on; applied
//! changes get new local versions and flow on to further peers, so any topology converges.

#![warn(missing_docs)]

pub mod proto;

pub use proto::{Config, Grant, Outcome, ProtoError, Session, ShardStore, Store};
#[cfg(feature = "transport")]
pub mod transport;

#[cfg(feature = "transport")]
pub use transport::{
    sync_live, sync_once, Direction, Identity, PeerConnection, Report, Selection, Server,
    ServerStats, SyncError, TrustList, TrustedPeer,
};
