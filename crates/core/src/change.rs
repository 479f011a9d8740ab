//! Changes as sync sees them: one item's whole register (vector, metadata, text) with its
//! stamp, and the merge rule that decides between two versions of an item.
//!
//! Every item carries the version of its last change (ARCHITECTURE rule 7):
//!
//! * the **causal length** `cl`: 1 when first inserted, +1 on every delete and every re-insert,
//!   so odd = alive and even = deleted (cr-sqlite's causal-length sets, Yu & Rostad 2020,
//!   "A Low-Cost Set CRDT Based on Causal Lengths");
//! * the **HLC** of the change (`physical_ms << 16 | counter`, [`crate::clock::hlc_after`]);
//! * the **site id** of the site that made it ([`SiteId`]).
//!
//! [`merge`] orders two versions of one item by causal length, then HLC, then site id: the
//! greater wins whole (vector, metadata and text are one register, never merged piecewise). A
//! stale update (lower causal length) never resurrects a delete; an explicit re-insert (higher
//! causal length) does. Because the order is total and the winner is a function of the two
//! versions only, applying the same set of changes in any order, any number of times, gives the
//! same item everywhere (commutative, associative, idempotent: see the property tests below).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The id of a site (a shard file's writer identity): 16 random bytes, shown as 32 hex digits.
/// Every handle on the same file shares it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SiteId(pub [u8; 16]);

impl SiteId {
    /// The 32 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A site id from a 16-byte slice.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another length.
    pub fn from_slice(bytes: &[u8]) -> Result<SiteId> {
        <[u8; 16]>::try_from(bytes).map(SiteId).map_err(|_| {
            Error::InvalidArgument(format!("a site id is 16 bytes, got {}", bytes.len()))
        })
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteId({})", self.to_hex())
    }
}

impl FromStr for SiteId {
    type Err = Error;
    /// Parses 32 hex digits.
    fn from_str(s: &str) -> Result<SiteId> {
        let bytes = crate::schema::unhex(s)
            .ok_or_else(|| Error::InvalidArgument(format!("site id {s:?} is not hex")))?;
        SiteId::from_slice(&bytes)
    }
}

impl Serialize for SiteId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SiteId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<SiteId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The version of an item's last change: what [`merge`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Causal length: odd = alive, even = deleted.
    pub causal_length: i64,
    /// Hybrid logical clock of the change.
    pub hlc: i64,
    /// The site that made the change.
    pub site_id: SiteId,
}

impl Version {
    /// Whether the item is alive in this version (odd causal length).
    pub fn is_alive(&self) -> bool {
        self.causal_length % 2 == 1
    }

    /// The total order of versions: causal length, then HLC, then site id.
    pub fn order(&self, other: &Version) -> Ordering {
        self.causal_length
            .cmp(&other.causal_length)
            .then(self.hlc.cmp(&other.hlc))
            .then(self.site_id.cmp(&other.site_id))
    }
}

/// What [`merge`] decides for an incoming version against the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Merge {
    /// The incoming change wins (or the item is new here): it replaces the stored register.
    Apply,
    /// The stored version is greater: the incoming change loses (it is still recorded as seen).
    Stale,
    /// The stored version is the incoming one: nothing to do.
    Duplicate,
}

/// Decides between the stored version of an item (`None` when the item is unknown here) and an
/// incoming one (see the [module docs](self)).
pub fn merge(stored: Option<&Version>, incoming: &Version) -> Merge {
    match stored.map(|s| incoming.order(s)) {
        None | Some(Ordering::Greater) => Merge::Apply,
        Some(Ordering::Less) => Merge::Stale,
        Some(Ordering::Equal) => Merge::Duplicate,
    }
}

/// One item's last change with its whole register: a row of [`crate::Shard::changes_since`],
/// and what [`crate::WriteTx::apply_remote`] takes from another site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// External id.
    pub id: String,
    /// Local version (`seq`) of the change at the shard it was read from; the receiver assigns
    /// its own and ignores this one.
    pub seq: i64,
    /// Hybrid logical clock of the change: physical milliseconds << 16 | logical counter.
    pub hlc: i64,
    /// Site that made the change.
    pub site_id: SiteId,
    /// Causal length: odd = alive, even = deleted.
    pub causal_length: i64,
    /// The vector (`dimension` values); `None` for a delete.
    pub vector: Option<Vec<f32>>,
    /// Metadata as compact JSON object text; `None` for `{}` and for a delete.
    pub metadata: Option<String>,
    /// Text; `None` when the item has none, and for a delete.
    pub text: Option<String>,
}

impl Change {
    /// The change's [`Version`].
    pub fn version(&self) -> Version {
        Version {
            causal_length: self.causal_length,
            hlc: self.hlc,
            site_id: self.site_id,
        }
    }

    /// Whether the change leaves the item alive (odd causal length).
    pub fn is_alive(&self) -> bool {
        self.causal_length % 2 == 1
    }
}

/// The highest HLC a shard has received from one other site (applied or not), from
/// [`crate::Shard::seen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SiteHead {
    /// The site.
    pub site_id: SiteId,
    /// The highest HLC of its changes this shard has received.
    pub hlc: i64,
}

/// How far this shard has applied another shard's changes: all of them up to its local
/// version `seq` are committed here ([`crate::WriteTx::set_cursor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SiteCursor {
    /// The other shard's site id.
    pub site_id: SiteId,
    /// Its local version (`seq`) up to which its changes are applied here.
    pub seq: i64,
}

/// How far a sync peer has applied this shard's changes ([`crate::WriteTx::set_peer_ack`]):
/// what tombstone collection waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerAck {
    /// The peer shard's site id.
    pub site_id: SiteId,
    /// The peer's node (its identity in the transport's trust list), when known.
    pub node: Option<String>,
    /// This shard's local version (`seq`) up to which the peer holds its changes.
    pub acked: i64,
    /// When the peer last said so (Unix ms, the shard's clock).
    pub seen_ms: i64,
}

/// What a tombstone collection did ([`crate::Shard::collect_tombstones`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    /// Tombstones deleted.
    pub removed: u64,
    /// The collection's bound after it: tombstones stamped at or below this local version are
    /// gone, and a peer whose cursor is below it needs a snapshot.
    pub horizon: i64,
}

/// A shard's sync state, read in one snapshot ([`crate::Shard::sync_state`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncState {
    /// The shard's site id.
    pub site_id: SiteId,
    /// Its highest local version (`seq`): the head of its change feed (0 when empty).
    pub head: i64,
    /// How far it has applied each other shard's changes, by site id.
    pub cursors: Vec<SiteCursor>,
    /// The digest of its live items ([`digest_item`] of each, XOR-ed): two shards holding the
    /// same versions of the same live items have the same digest, whatever their history.
    pub digest: u64,
    /// Live items.
    pub live: u64,
    /// The tombstone collection's bound: tombstones stamped at or below this local version may
    /// be gone (0: none was collected). A peer whose cursor for this shard is below it needs a
    /// snapshot, not a delta.
    pub horizon: i64,
    /// What each sync peer has acknowledged of this shard's changes, by site id.
    pub peers: Vec<PeerAck>,
}

/// One live item's contribution to a shard's sync digest: a 64-bit hash of its id and version
/// (FNV-1a over the bytes, then the SplitMix64 finaliser; stable across platforms and builds).
/// Digests are the XOR of these, so they are kept or compared in any order.
pub fn digest_item(id: &str, v: &Version) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&(id.len() as u64).to_le_bytes());
    eat(id.as_bytes());
    eat(&v.causal_length.to_le_bytes());
    eat(&v.hlc.to_le_bytes());
    eat(&v.site_id.0);
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What [`crate::WriteTx::apply_remote`] did with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    /// The change won and is now the item's version (inserted, replaced or deleted it).
    Applied,
    /// The change lost to the stored version; recorded as seen, nothing else changed.
    Stale,
    /// The stored version is this change: nothing changed.
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn version() -> impl Strategy<Value = Version> {
        (1i64..6, 0i64..4, 0u8..3).prop_map(|(cl, hlc, s)| Version {
            causal_length: cl,
            hlc,
            site_id: SiteId([s; 16]),
        })
    }

    /// The stored version after applying `changes` in order to an empty store.
    fn fold(changes: &[Version]) -> Option<Version> {
        changes
            .iter()
            .fold(None, |stored, c| match merge(stored.as_ref(), c) {
                Merge::Apply => Some(*c),
                Merge::Stale | Merge::Duplicate => stored,
            })
    }

    proptest! {
        /// Any order, any duplication: the same final version (the maximum).
        #[test]
        fn merge_is_order_free_and_idempotent(
            changes in proptest::collection::vec(version(), 1..12),
            seed in any::<u64>(),
        ) {
            let mut shuffled = changes.clone();
            // Fisher-Yates with a tiny LCG: a permutation drawn from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (x >> 33) as usize % (i + 1));
            }
            let mut doubled = shuffled.clone();
            doubled.extend(changes.iter().copied());
            let max = changes.iter().copied().max_by(|a, b| a.order(b));
            prop_assert_eq!(fold(&changes), max);
            prop_assert_eq!(fold(&shuffled), max);
            prop_assert_eq!(fold(&doubled), max);
        }

        /// Merging two partial histories equals merging everything (associativity).
        #[test]
        fn merge_is_associative(
            a in proptest::collection::vec(version(), 0..6),
            b in proptest::collection::vec(version(), 0..6),
        ) {
            let left = fold(&a);
            let right = fold(&b);
            let both: Vec<Version> = left.into_iter().chain(right).collect();
            let all: Vec<Version> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(fold(&both), fold(&all));
        }
    }

    #[test]
    fn causal_length_beats_clocks() {
        let site = |b| SiteId([b; 16]);
        let alive = Version {
            causal_length: 1,
            hlc: 100,
            site_id: site(9),
        };
        let deleted = Version {
            causal_length: 2,
            hlc: 5,
            site_id: site(1),
        };
        // A stale update (higher clock, lower causal length) never resurrects the delete.
        assert_eq!(merge(Some(&deleted), &alive), Merge::Stale);
        // An explicit re-insert does.
        let reinserted = Version {
            causal_length: 3,
            hlc: 1,
            site_id: site(0),
        };
        assert_eq!(merge(Some(&deleted), &reinserted), Merge::Apply);
        // Same causal length: the later clock, then the greater site.
        let later = Version { hlc: 101, ..alive };
        assert_eq!(merge(Some(&alive), &later), Merge::Apply);
        let other_site = Version {
            site_id: site(10),
            ..alive
        };
        assert_eq!(merge(Some(&alive), &other_site), Merge::Apply);
        assert_eq!(merge(Some(&other_site), &alive), Merge::Stale);
        assert_eq!(merge(Some(&alive), &alive), Merge::Duplicate);
        assert_eq!(merge(None, &deleted), Merge::Apply);
    }

    #[test]
    fn site_ids_round_trip_as_hex() {
        let s = SiteId([0xab; 16]);
        assert_eq!(s.to_hex().parse::<SiteId>().unwrap(), s);
        assert!("abc".parse::<SiteId>().is_err());
        assert!("zz".repeat(16).parse::<SiteId>().is_err());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.to_hex())
        );
    }
}
