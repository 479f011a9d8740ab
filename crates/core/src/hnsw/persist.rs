//! The persisted header and node records (layouts in the [module docs](super)).
//!
//! Every decoder here checks lengths, versions, ranges and reserved bytes and reports damage as
//! [`Error::Corrupt`] (or [`Error::UnsupportedFormat`] for a newer format); none panics.

use super::{Hnsw, HnswParams, Rng, ABSENT, DEAD, MAX_LEVEL, NONE};
use crate::{Error, Metric, Result};

/// Version of the header and node record formats written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Length in bytes of a format-1 header ([`Hnsw::header`]).
pub const HEADER_LEN: usize = 80;

const MAGIC: &[u8; 4] = b"HNSW";

/// Largest removal count a header may carry (the count is a `u64` that every removal
/// increments; anything above this is damage).
const MAX_REMOVED: u64 = i64::MAX as u64;

/// Node record flag: the node was removed and is kept for pass-through.
const FLAG_REMOVED: u8 = 1;

fn corrupt(msg: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("hnsw {msg}"))
}

/// Little-endian reader over a byte slice; `None` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

fn metric_code(m: Metric) -> u8 {
    match m {
        Metric::Cosine => 0,
        Metric::L2 => 1,
        Metric::Dot => 2,
    }
}

/// A decoded node record ([`decode_node`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node was removed and is kept only so that searches pass through it until the next
    /// purge ([`Hnsw::purge_dead_links`]).
    pub removed: bool,
    /// Neighbour ids of layers `0 ..= level`, layer 0 first (so `links.len() = level + 1`).
    pub links: Vec<Vec<u32>>,
}

/// Decodes a node record (format 1) of a graph with parameter `m`.
///
/// # Errors
/// [`Error::UnsupportedFormat`] for a newer record version; [`Error::Corrupt`] for a record
/// that is truncated or too long, has another version, a level above [`MAX_LEVEL`], unknown
/// flags or non-zero reserved bytes, a list longer than its layer's degree (`2·m` on layer 0,
/// `m` above), or the reserved id `u32::MAX`.
pub fn decode_node(bytes: &[u8], m: usize) -> Result<NodeRecord> {
    let mut r = Reader { bytes, pos: 0 };
    let truncated = || corrupt(format!("node record truncated ({} bytes)", bytes.len()));
    let version = r.u8().ok_or_else(truncated)?;
    if u32::from(version) != FORMAT_VERSION {
        return Err(if u32::from(version) > FORMAT_VERSION {
            Error::UnsupportedFormat {
                found: version.into(),
                supported: FORMAT_VERSION,
            }
        } else {
            corrupt(format!("node record version {version}"))
        });
    }
    let level = usize::from(r.u8().ok_or_else(truncated)?);
    if level > MAX_LEVEL {
        return Err(corrupt(format!(
            "node record level {level} above {MAX_LEVEL}"
        )));
    }
    let flags = r.u8().ok_or_else(truncated)?;
    if flags & !FLAG_REMOVED != 0 {
        return Err(corrupt(format!("node record flags {flags:#04x}")));
    }
    if r.u8().ok_or_else(truncated)? != 0 {
        return Err(corrupt("node record reserved byte is not zero"));
    }
    let mut links = Vec::with_capacity(level + 1);
    for l in 0..=level {
        let cap = if l == 0 { 2 * m } else { m };
        let count = r.u32().ok_or_else(truncated)? as usize;
        if count > cap {
            return Err(corrupt(format!(
                "node record layer {l} has {count} links, at most {cap} allowed"
            )));
        }
        let raw = r.take(count * 4).ok_or_else(truncated)?;
        let ids: Vec<u32> = raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if ids.contains(&NONE) {
            return Err(corrupt("node record links to the reserved id u32::MAX"));
        }
        links.push(ids);
    }
    if r.pos != bytes.len() {
        return Err(corrupt(format!(
            "node record has {} trailing bytes",
            bytes.len() - r.pos
        )));
    }
    Ok(NodeRecord {
        removed: flags & FLAG_REMOVED != 0,
        links,
    })
}

impl Hnsw {
    /// The graph's header: parameters, metric, dimension, entry point, max level, level
    /// generator state, counts, the caller's stamp and format version ([`HEADER_LEN`] bytes; layout in the
    /// module docs). Store it with the node records and rewrite it after every change.
    pub fn header(&self) -> Vec<u8> {
        let bound = self
            .levels
            .len()
            .max(self.loading.map_or(0, |(_, b)| b as usize));
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        h.extend_from_slice(&(self.params.m as u32).to_le_bytes());
        h.extend_from_slice(&(self.params.ef_construction as u32).to_le_bytes());
        h.extend_from_slice(&(self.params.ef_search as u32).to_le_bytes());
        h.push(metric_code(self.metric));
        h.push(u8::from(self.params.keep_pruned_connections));
        h.push(self.max_level as u8);
        h.push(0);
        h.extend_from_slice(&self.entry.unwrap_or(NONE).to_le_bytes());
        h.extend_from_slice(&(self.dim as u32).to_le_bytes());
        h.extend_from_slice(&(bound as u32).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&self.params.seed.to_le_bytes());
        h.extend_from_slice(&self.rng.0.to_le_bytes());
        h.extend_from_slice(&(self.len as u64).to_le_bytes());
        h.extend_from_slice(&self.removed.to_le_bytes());
        h.extend_from_slice(&self.stamp.to_le_bytes());
        debug_assert_eq!(h.len(), HEADER_LEN);
        h
    }

    /// An index with the header's parameters and state and no nodes yet: call
    /// [`Hnsw::load_node`] for every stored record (any order), then [`Hnsw::finish_load`].
    /// Searches work at any point (nodes not loaded yet are skipped).
    ///
    /// # Errors
    /// [`Error::UnsupportedFormat`] for a newer format version; [`Error::Corrupt`] for a wrong
    /// length or magic, out-of-range parameters, an unknown metric or flag, non-zero reserved
    /// bytes, or an inconsistent entry point / node count / id bound.
    pub fn from_header(bytes: &[u8]) -> Result<Hnsw> {
        if bytes.len() != HEADER_LEN {
            return Err(corrupt(format!(
                "header has {} bytes, expected {HEADER_LEN}",
                bytes.len()
            )));
        }
        let mut r = Reader { bytes, pos: 0 };
        if &bytes[0..4] != MAGIC {
            return Err(corrupt("header magic is not HNSW"));
        }
        r.pos = 4;
        let version = r.u32().expect("length checked");
        if version != FORMAT_VERSION {
            return Err(if version > FORMAT_VERSION {
                Error::UnsupportedFormat {
                    found: version,
                    supported: FORMAT_VERSION,
                }
            } else {
                corrupt(format!("header version {version}"))
            });
        }
        let m = r.u32().expect("length checked") as usize;
        let ef_construction = r.u32().expect("length checked") as usize;
        let ef_search = r.u32().expect("length checked") as usize;
        let metric = match r.u8().expect("length checked") {
            0 => Metric::Cosine,
            1 => Metric::L2,
            2 => Metric::Dot,
            other => return Err(corrupt(format!("header metric code {other}"))),
        };
        let flags = r.u8().expect("length checked");
        if flags & !1 != 0 {
            return Err(corrupt(format!("header flags {flags:#04x}")));
        }
        let max_level = usize::from(r.u8().expect("length checked"));
        let reserved8 = r.u8().expect("length checked");
        let entry = r.u32().expect("length checked");
        let dim = r.u32().expect("length checked") as usize;
        let bound = r.u32().expect("length checked");
        let reserved32 = r.u32().expect("length checked");
        let seed = r.u64().expect("length checked");
        let rng = r.u64().expect("length checked");
        let len = r.u64().expect("length checked");
        let removed = r.u64().expect("length checked");
        let stamp = r.u64().expect("length checked");
        if reserved8 != 0 || reserved32 != 0 {
            return Err(corrupt("header reserved bytes are not zero"));
        }
        let params = HnswParams {
            m,
            ef_construction,
            ef_search,
            seed,
            keep_pruned_connections: flags & 1 != 0,
        };
        params
            .validate()
            .map_err(|e| corrupt(format!("header parameters: {e}")))?;
        if max_level > MAX_LEVEL {
            return Err(corrupt(format!("header max level {max_level}")));
        }
        if rng == 0 {
            return Err(corrupt("header level generator state is zero"));
        }
        // A count of removals, incremented by every remove: no real graph comes near 2^63
        // (found by fuzzing: u64::MAX overflowed on the next remove).
        if removed > MAX_REMOVED {
            return Err(corrupt(format!("header counts {removed} removals")));
        }
        if len > u64::from(bound) {
            return Err(corrupt(format!(
                "header counts {len} nodes below id {bound}"
            )));
        }
        let entry = match (entry, len) {
            (NONE, 0) if max_level == 0 => None,
            (e, n) if e != NONE && n > 0 && e < bound => Some(e),
            _ => {
                return Err(corrupt(format!(
                    "header entry point {entry} inconsistent with {len} nodes below id {bound} \
                     and max level {max_level}"
                )))
            }
        };
        let mut g = Hnsw::new(params, metric)?;
        g.dim = dim;
        g.entry = entry;
        g.max_level = max_level;
        g.rng = Rng(rng);
        g.removed = removed;
        g.stamp = stamp;
        g.loading = Some((len, bound));
        Ok(g)
    }

    /// The record of `node` (format in the module docs): `Some` for a node in the index, and
    /// for a removed node kept for pass-through until the next purge; `None` otherwise (delete
    /// its stored record).
    pub fn encode_node(&self, node: u32) -> Option<Vec<u8>> {
        let v = *self.levels.get(node as usize)?;
        if v == ABSENT {
            return None;
        }
        let (level, flags) = (
            usize::from(v & !DEAD),
            if v & DEAD != 0 { FLAG_REMOVED } else { 0 },
        );
        let links: usize = (0..=level).map(|l| self.links(node, l).len()).sum();
        let mut out = Vec::with_capacity(4 + 4 * (level + 1) + 4 * links);
        out.extend_from_slice(&[FORMAT_VERSION as u8, level as u8, flags, 0]);
        for l in 0..=level {
            let list = self.links(node, l);
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for &n in list {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        Some(out)
    }

    /// Loads (or replaces) the stored record of `node`. Does not mark it dirty.
    ///
    /// # Errors
    /// As [`decode_node`]; also [`Error::Corrupt`] when `node` or a neighbour id is not below the
    /// header's id bound, the node links to itself, or (unless removed) its level is above
    /// the graph's max level.
    pub fn load_node(&mut self, node: u32, bytes: &[u8]) -> Result<()> {
        let NodeRecord {
            removed,
            links: lists,
        } = decode_node(bytes, self.params.m).map_err(|e| match e {
            Error::Corrupt(msg) => Error::Corrupt(format!("{msg} (node {node})")),
            other => other,
        })?;
        let bound = self.loading.map_or(NONE, |(_, b)| b);
        if node >= bound {
            return Err(corrupt(format!(
                "node {node} is not below the id bound {bound}"
            )));
        }
        let level = lists.len() - 1;
        if level > self.max_level && !removed {
            return Err(corrupt(format!(
                "node {node} has level {level} above the graph's max level {}",
                self.max_level
            )));
        }
        for ids in &lists {
            if let Some(&bad) = ids.iter().find(|&&n| n == node || n >= bound) {
                return Err(corrupt(format!(
                    "node {node} links to {bad} (itself, or not below the id bound {bound})"
                )));
            }
        }
        self.grow(node as usize + 1);
        if self.contains(node) {
            self.len -= 1;
        }
        if removed {
            self.levels[node as usize] = DEAD | level as u8;
            self.graveyard.push(node);
        } else {
            self.levels[node as usize] = level as u8;
            self.len += 1;
        }
        self.upper[node as usize] = vec![0; level * self.stride_up];
        for (l, ids) in lists.into_iter().enumerate() {
            self.set_links(node, l, ids.into_iter());
        }
        Ok(())
    }

    /// Ends a load started by [`Hnsw::from_header`]: checks that as many nodes were loaded as
    /// the header counts and that the entry point is a loaded node of the max level.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the inconsistency. The index stays usable for searches (over
    /// what was loaded), but the caller should rebuild it.
    pub fn finish_load(&mut self) -> Result<()> {
        if let Some((expected, _)) = self.loading {
            if self.len as u64 != expected {
                return Err(corrupt(format!(
                    "header counts {expected} nodes, {} were loaded",
                    self.len
                )));
            }
        }
        match self.entry {
            None if self.len == 0 => {}
            Some(e) if self.level_of(e) == Some(self.max_level) => {}
            _ => {
                return Err(corrupt(format!(
                    "entry point {:?} is not a loaded node of level {}",
                    self.entry, self.max_level
                )))
            }
        }
        // Links to removed nodes are legal; count the removed nodes (kept or not) so the
        // automatic purge runs in due time.
        let mut dangling = self.graveyard.len();
        for node in 0..self.levels.len() as u32 {
            if let Some(level) = self.level_of(node) {
                for l in 0..=level {
                    dangling += self
                        .links(node, l)
                        .iter()
                        .filter(|&&n| self.kind(n, l).is_none())
                        .count();
                }
            }
        }
        self.pending_dead = dangling;
        self.loading = None;
        Ok(())
    }
}
