//! HNSW: an approximate nearest-neighbour graph index.
//!
//! The hierarchical navigable small world graph of Yu. A. Malkov and D. A. Yashunin,
//! *Efficient and robust approximate nearest neighbor search using Hierarchical Navigable Small
//! World graphs*, arXiv:1603.09320 (IEEE TPAMI 42(4), 2020). Algorithm numbers below are the
//! paper's.
//!
//! # Model
//!
//! Every node lives on layers `0 ..= level`, its level drawn once as
//! `floor(−ln U · mL)` with `U` uniform in `(0, 1]` and `mL = 1 / ln m` (capped at
//! [`MAX_LEVEL`]). On each layer a node keeps a list of neighbour ids: at most `2·m` on layer 0
//! and `m` above. The entry point is a node of the highest level.
//!
//! * **Insert** (Algorithm 1): greedy descent from the entry point down to the node's level + 1,
//!   then on each layer from `min(level, max_level)` down to 0 a beam search
//!   (Algorithm 2) with `ef_construction` candidates, whose result seeds the next layer. The
//!   node takes `m` neighbours on every layer, chosen by the heuristic of Algorithm 4 (a
//!   candidate is kept only if it is closer to the new node than to every neighbour kept before
//!   it; `extendCandidates` off; `keepPrunedConnections` per [`HnswParams`], off by default), and
//!   each neighbour links back; a neighbour whose list overflows re-selects its list with the same
//!   heuristic. Like hnswlib, a candidate set smaller than the target degree is kept whole.
//! * **Search** (Algorithm 5): greedy descent to layer 1, then a beam search of width
//!   `max(ef, k)` on layer 0.
//! * **Determinism**: levels come from an inline seeded xorshift64* generator (seeded by
//!   splitmix64 from [`HnswParams::seed`]); its state is part of the persisted header. The same
//!   parameters, seed and sequence of inserts/removes give the same graph on every platform
//!   whose distance kernels round alike (the SIMD and scalar kernels differ in the last bits,
//!   which can change close ties).
//!
//! # Vectors and distances
//!
//! The index does not own vectors: it reads them through a [`VectorSource`] given to every
//! call, by node id. Node ids are dense `u32` chosen by the caller (`u32::MAX` is reserved);
//! internal arrays are indexed by id, so memory grows with the largest id, not with the number
//! of nodes. A node's vector must not change while it is in the index (use [`Hnsw::update`]),
//! and the source must serve every node that is in the index at every call.
//!
//! Internally, and in search results, distance is "smaller is better":
//!
//! | metric | distance | from the shard's score |
//! |---|---|---|
//! | [`Metric::Cosine`] | `1 − cos(q, x)`, computed as `1 − (q·x) · inv_norm(q) · inv_norm(x)` | `score = 1 − d` |
//! | [`Metric::Dot`] | `−(q·x)` | `score = −d` |
//! | [`Metric::L2`] | `‖q − x‖²` (squared) | `score = √d` |
//!
//! For cosine nothing is assumed about norms: [`VectorSource::inv_norm`] gives `1/|x|` (the
//! arena already stores it; the default method recomputes it), and the query's inverse norm
//! is computed once per search. A zero vector has inverse norm 0 (distance 1 to everything).
//! Inner-product "distance" is not a metric: HNSW still works on it in practice for embeddings
//! of similar norms, but recall is lower than for cosine on data with widely varying norms.
//!
//! # Removal
//!
//! [`Hnsw::remove`] takes a node out at once: it is never returned again and its vector is never
//! read again (the source may drop it first). Links are directed, so two kinds of nodes link
//! to it:
//!
//! * its own neighbours that link back (most in-links, in a graph built with the heuristic) are
//!   **repaired at once**: each keeps its other links and is offered the removed node's
//!   neighbours, nearest first, for the free slots, each accepted only if no kept link is closer
//!   to it than the repaired node is (Algorithm 4's test). Re-selecting the whole list with the
//!   heuristic instead shrank lists that reverse links had filled and cost recall.
//! * other in-links stay until the next **purge**; meanwhile the removed node's own lists are
//!   kept and searches *pass through* it (they follow its links without scoring it), so no
//!   region is cut off. [`Hnsw::purge_dead_links`] repairs every node that still links to a
//!   removed node the same way (candidates: the nodes reachable through the removed ones) and
//!   frees the removed nodes' lists. `remove` runs it once removed nodes reach 1/16 of the
//!   nodes (at least 64): one pass over all lists, amortised O(16·m) link reads per removal.
//!
//! The entry point moves to a node of the highest remaining level. Measured on debian-minilm
//! (25,000 × 384, cosine, default parameters), recall@10 at `ef = 64` was 0.9945 fresh,
//! 0.9965 after updating every node twice, and 0.9925 after removing half of the nodes
//! (0.9950 for a fresh build of the remaining half). [`Hnsw::deleted_ratio`] counts removals
//! (not updates) since the graph was built from empty; rebuild (a new index, inserting every
//! live node) past [`REBUILD_RATIO`].
//!
//! # Filters
//!
//! A filtered search traverses the graph through every node but collects only nodes that pass
//! the filter, and keeps exploring until `max(ef, k)` passing nodes are held and no candidate
//! is closer than the worst of them (the hnswlib rule). So k matching results come back when
//! they are reachable, but a very selective filter makes the search visit most of the graph: a
//! planner should scan the few matching items exactly instead. Measured on debian-minilm
//! (25,000 nodes, k = 10, `ef = 16`, filters uncorrelated with the data; one busy 2-core
//! machine): 50 % passing, recall@10 0.969 at 97 µs p50; 10 %, 0.988 at 485 µs; 1 %, 0.998
//! at 2.8 ms. Because `ef` counts passing nodes, a filtered search needs a smaller `ef` than
//! an unfiltered one for the same recall.
//!
//! # Persistence
//!
//! The graph is saved as one header ([`Hnsw::header`], [`HEADER_LEN`] bytes) and one record per
//! node ([`Hnsw::encode_node`]); both formats are versioned ([`FORMAT_VERSION`]) and
//! little-endian, and are laid out in the two tables below. [`Hnsw::take_dirty`] lists
//! the nodes whose records changed since it was last called, so a caller can write exactly
//! those rows in the transaction that commits the data change. Reopening is
//! [`Hnsw::from_header`], [`Hnsw::load_node`] for every record, then [`Hnsw::finish_load`].
//! Damaged bytes give [`Error::Corrupt`]; decoding never panics.
//!
//! ## Header (format version 1, 80 bytes, little-endian)
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | `[u8; 4]` | magic `b"HNSW"` |
//! | 4 | u32 | format version (1) |
//! | 8 | u32 | `m` |
//! | 12 | u32 | `ef_construction` |
//! | 16 | u32 | `ef_search` |
//! | 20 | u8 | metric: 0 cosine, 1 L2, 2 dot |
//! | 21 | u8 | flags: bit 0 `keep_pruned_connections`; other bits 0 |
//! | 22 | u8 | max level |
//! | 23 | u8 | reserved, 0 |
//! | 24 | u32 | entry point (`u32::MAX` = empty graph) |
//! | 28 | u32 | vector dimension (0 = not known yet) |
//! | 32 | u32 | id bound: every node id is below it |
//! | 36 | u32 | reserved, 0 |
//! | 40 | u64 | seed |
//! | 48 | u64 | level generator state |
//! | 56 | u64 | number of nodes |
//! | 64 | u64 | removals since the graph was built from empty |
//! | 72 | u64 | the caller's stamp ([`Hnsw::set_stamp`]), e.g. the last change applied to the graph |
//!
//! ## Node record (format version 1, little-endian)
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | u8 | format version (1) |
//! | 1 | u8 | level `L` (0 ..= [`MAX_LEVEL`]) |
//! | 2 | u8 | flags: bit 0 *removed* (a removed node kept for pass-through until the next purge); other bits 0 |
//! | 3 | u8 | reserved, 0 |
//! | 4 | per layer `l = 0 ..= L` | u32 count `c_l` (≤ `2·m` on layer 0, ≤ `m` above), then `c_l` u32 neighbour ids |
//!
//! A record is exactly `4 + Σ (4 + 4·c_l)` bytes: 136 bytes for a layer-0 node with 32
//! neighbours. Neighbour ids may name nodes that are no longer in the index (links to removed
//! nodes, see Removal): they are skipped, or passed through while the removed node's record
//! is kept.
//!
//! # Concurrency and memory
//!
//! Searches take `&self` and may run in parallel; each borrows a scratch buffer (visited marks
//! with a generation counter, heaps) from a small pool behind a mutex, so a search allocates only
//! its result. Writes take `&mut self`. No threads are spawned (the module builds for wasm32).
//! Memory is about `(2·m + 1) · 4 + 1` bytes per node id for layer 0, plus `(m + 1) · 4` bytes per
//! upper layer of each node, plus 2 bytes per id per pooled scratch buffer ([`Hnsw::memory_bytes`]).

use std::fmt;
use std::sync::Mutex;

use crate::distance::Kernels;
use crate::{Error, Metric, Result};

mod graph;
mod persist;
#[cfg(test)]
mod tests;

use graph::{Rng, Scratch};
pub use persist::{decode_node, NodeRecord, FORMAT_VERSION, HEADER_LEN};

/// Largest accepted [`HnswParams::m`].
pub const MAX_M: usize = 256;

/// Highest layer a node can be drawn on (the level draw is capped here; with `m ≥ 2` a level
/// above 32 has probability below 2⁻³²).
pub const MAX_LEVEL: usize = 32;

/// Recommended rebuild threshold for [`Hnsw::deleted_ratio`]: past it (that is, once as many
/// nodes were removed as remain, half of a built graph), build a new index from the live nodes.
/// At this point on debian-minilm recall@10 at `ef = 64` was 0.9925 against 0.9950 for a fresh
/// build; it keeps falling with further removals.
pub const REBUILD_RATIO: f64 = 1.0;

/// Level byte of an id that is not in the index.
const ABSENT: u8 = u8::MAX;

/// Flag in the level byte of a removed node whose lists are kept until the next
/// [`Hnsw::purge_dead_links`]: searches pass through it to its neighbours.
const DEAD: u8 = 0x80;

/// Reserved id: "no node".
const NONE: u32 = u32::MAX;

/// Gives the index read access to the vectors it indexes.
///
/// The index never stores vectors; it asks for them by node id. Implementations should be
/// cheap (an index computation): `vector` is called once per distance.
pub trait VectorSource {
    /// Components per vector; every vector must have this length.
    fn dim(&self) -> usize;

    /// The vector of `node` (`dim()` values). Only called for nodes that are in the index
    /// (or being inserted); may panic for others.
    fn vector(&self, node: u32) -> &[f32];

    /// `1 / |vector(node)|`, or `0.0` for a zero vector. Used by [`Metric::Cosine`] only. The
    /// default computes the norm on every call; sources that store norms (as the shard's arena
    /// does) should override it.
    fn inv_norm(&self, node: u32) -> f32 {
        inverse_norm(self.vector(node))
    }
}

impl<T: VectorSource + ?Sized> VectorSource for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        (**self).vector(node)
    }
    #[inline]
    fn inv_norm(&self, node: u32) -> f32 {
        (**self).inv_norm(node)
    }
}

/// `1 / |v|`, or `0.0` when `|v| = 0`.
fn inverse_norm(v: &[f32]) -> f32 {
    let n = crate::distance::norm(v);
    if n > 0.0 {
        1.0 / n
    } else {
        0.0
    }
}

/// A [`VectorSource`] over a row-major slice: node `i` is row `i`. Inverse norms are computed
/// once, at construction. Handy for building an index from a matrix (tests, benches, rebuilds).
#[derive(Debug, Clone)]
pub struct SliceSource<'a> {
    data: &'a [f32],
    dim: usize,
    inv_norms: Vec<f32>,
}

impl<'a> SliceSource<'a> {
    /// Rows of `dim` values from `data` (`data.len() / dim` rows).
    ///
    /// # Panics
    /// If `dim == 0` or `data.len()` is not a multiple of `dim`.
    pub fn new(data: &'a [f32], dim: usize) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "SliceSource: {} values do not make rows of {dim}",
            data.len()
        );
        let inv_norms = data.chunks_exact(dim).map(inverse_norm).collect();
        SliceSource {
            data,
            dim,
            inv_norms,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.inv_norms.len()
    }

    /// `true` when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.inv_norms.is_empty()
    }
}

impl VectorSource for SliceSource<'_> {
    fn dim(&self) -> usize {
        self.dim
    }
    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        let i = node as usize * self.dim;
        &self.data[i..i + self.dim]
    }
    #[inline]
    fn inv_norm(&self, node: u32) -> f32 {
        self.inv_norms[node as usize]
    }
}

/// Build and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours per node on layers ≥ 1 (`M` in the paper); layer 0 keeps up to `2·m`. A new
    /// node links to `m` neighbours on each of its layers. `2 ..= MAX_M`; default 16.
    pub m: usize,
    /// Beam width while inserting (`efConstruction`); `≥ 1`; default 200. Larger builds a
    /// better graph, more slowly.
    pub ef_construction: usize,
    /// Default beam width of a search (`ef`), for callers that do not choose one per query
    /// ([`Hnsw::search`] takes it as an argument); `≥ 1`; default 64.
    pub ef_search: usize,
    /// Seed of the level generator; the same seed and inserts give the same graph.
    pub seed: u64,
    /// Algorithm 4's `keepPrunedConnections`: fill a neighbour list up to its target size with
    /// candidates the heuristic discarded. Default `false`.
    pub keep_pruned_connections: bool,
}

impl Default for HnswParams {
    /// `m = 16`, `ef_construction = 200`, `ef_search = 64`, `seed = 0x5EED`, no pruned
    /// connections: recall@10 ≈ 0.99 on debian-minilm (25,000 × 384, cosine).
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            seed: 0x5EED,
            keep_pruned_connections: false,
        }
    }
}

impl HnswParams {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `m` outside `2 ..= MAX_M`, or `ef_construction` or
    /// `ef_search` of 0 or above `u32::MAX`.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::InvalidArgument(format!(
                "hnsw m must be 2..={MAX_M}, got {}",
                self.m
            )));
        }
        for (name, v) in [
            ("ef_construction", self.ef_construction),
            ("ef_search", self.ef_search),
        ] {
            if v == 0 || v > u32::MAX as usize {
                return Err(Error::InvalidArgument(format!(
                    "hnsw {name} must be 1..={}, got {v}",
                    u32::MAX
                )));
            }
        }
        Ok(())
    }
}

/// A hierarchical navigable small world graph over caller-owned vectors.
///
/// See the [module docs](self) for the algorithm, removal, filters and the persisted format.
pub struct Hnsw {
    params: HnswParams,
    metric: Metric,
    /// Vector dimension; 0 until the first insert (or as loaded).
    dim: usize,
    /// `1 / ln m`.
    level_mult: f64,
    /// `2m + 1`: count + `2m` ids per node on layer 0.
    stride0: usize,
    /// `m + 1`: count + `m` ids per node and upper layer.
    stride_up: usize,
    /// Level of each id; [`DEAD`]` | level` for a removed node whose lists are kept; [`ABSENT`].
    levels: Vec<u8>,
    /// Layer-0 lists, `stride0` u32 per id: `[count, ids…]`.
    links0: Vec<u32>,
    /// Upper-layer lists per id: layers `1..=level`, `stride_up` u32 each.
    upper: Vec<Vec<u32>>,
    entry: Option<u32>,
    max_level: usize,
    len: usize,
    rng: Rng,
    /// Removals since the graph was built from empty.
    removed: u64,
    /// The caller's stamp (persisted in the header).
    stamp: u64,
    /// Removed ids that may still be the target of dangling links.
    pending_dead: usize,
    /// Removed ids whose lists are kept (level byte `DEAD | level`) until the next purge.
    graveyard: Vec<u32>,
    /// Ids whose record changed since [`Hnsw::take_dirty`], and their bitset.
    dirty: Vec<u32>,
    dirty_bits: Vec<u64>,
    /// Set by [`Hnsw::from_header`]: the header's node count and id bound, checked while loading.
    loading: Option<(u64, u32)>,
    pool: Mutex<Vec<Scratch>>,
}

impl fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hnsw")
            .field("params", &self.params)
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("len", &self.len)
            .field("entry_point", &self.entry)
            .field("max_level", &self.max_level)
            .finish_non_exhaustive()
    }
}

impl Clone for Hnsw {
    /// A deep copy of the graph (the scratch pool is not copied).
    fn clone(&self) -> Self {
        Hnsw {
            params: self.params,
            metric: self.metric,
            dim: self.dim,
            level_mult: self.level_mult,
            stride0: self.stride0,
            stride_up: self.stride_up,
            levels: self.levels.clone(),
            links0: self.links0.clone(),
            upper: self.upper.clone(),
            entry: self.entry,
            max_level: self.max_level,
            len: self.len,
            rng: self.rng,
            removed: self.removed,
            stamp: self.stamp,
            pending_dead: self.pending_dead,
            graveyard: self.graveyard.clone(),
            dirty: self.dirty.clone(),
            dirty_bits: self.dirty_bits.clone(),
            loading: self.loading,
            pool: Mutex::new(Vec::new()),
        }
    }
}

impl Hnsw {
    /// An empty index.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `params` fail [`HnswParams::validate`].
    pub fn new(params: HnswParams, metric: Metric) -> Result<Hnsw> {
        params.validate()?;
        Ok(Hnsw {
            params,
            metric,
            dim: 0,
            level_mult: 1.0 / (params.m as f64).ln(),
            stride0: 2 * params.m + 1,
            stride_up: params.m + 1,
            levels: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            entry: None,
            max_level: 0,
            len: 0,
            rng: Rng::from_seed(params.seed),
            removed: 0,
            stamp: 0,
            pending_dead: 0,
            graveyard: Vec::new(),
            dirty: Vec::new(),
            dirty_bits: Vec::new(),
            loading: None,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The parameters the index was created with.
    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// The metric distances are computed with.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The vector dimension, or 0 before the first insert.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of nodes in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when the index has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `true` when `node` is in the index.
    #[inline]
    pub fn contains(&self, node: u32) -> bool {
        self.levels.get(node as usize).is_some_and(|&l| l < DEAD)
    }

    /// Every node id, in the index or removed but kept for pass-through, is below this bound
    /// (the length of the per-id arrays).
    pub fn id_bound(&self) -> u32 {
        self.levels.len() as u32
    }

    /// The highest layer of `node`, or `None` when it is not in the index.
    pub fn level_of(&self, node: u32) -> Option<usize> {
        self.contains(node)
            .then(|| usize::from(self.levels[node as usize]))
    }

    /// The neighbour ids of `node` on `layer` (may include dangling ids of removed nodes, see
    /// the module docs); empty when the node is not in the index or not on that layer.
    pub fn neighbours(&self, node: u32, layer: usize) -> &[u32] {
        match self.level_of(node) {
            Some(l) if layer <= l => self.links(node, layer),
            _ => &[],
        }
    }

    /// The entry point of searches (a node of the highest level), `None` when empty.
    pub fn entry_point(&self) -> Option<u32> {
        self.entry
    }

    /// The highest layer of any node (0 for an empty index).
    pub fn max_level(&self) -> usize {
        self.max_level
    }

    /// Removals ([`Hnsw::remove`], not [`Hnsw::update`]) since the graph was built from empty,
    /// divided by the current number of nodes: `0.0` for an untouched graph, `0.5` after
    /// removing a third of a built graph (the count itself when the index is empty). Rebuild
    /// past [`REBUILD_RATIO`].
    pub fn deleted_ratio(&self) -> f64 {
        self.removed as f64 / self.len.max(1) as f64
    }

    /// The caller's stamp, as last set with [`Hnsw::set_stamp`] (0 for a new index).
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// Sets a caller-defined stamp that travels in the [`Hnsw::header`], e.g. the sequence
    /// number of the last data change applied to the graph: after reopening, the caller replays
    /// the changes after it (or rebuilds) and never serves a graph that lags the data.
    pub fn set_stamp(&mut self, stamp: u64) {
        self.stamp = stamp;
    }

    /// Bytes of memory held by the graph (capacities) and the pooled scratch buffers.
    pub fn memory_bytes(&self) -> usize {
        let upper: usize = self.upper.iter().map(|u| u.capacity() * 4).sum();
        let pool: usize = self.pool.lock().map_or(0, |p| {
            p.iter()
                .map(|s| {
                    s.visited.marks.capacity() * 2
                        + s.frontier.capacity() * 8
                        + s.results.capacity() * 8
                        + s.batch.capacity() * 4
                        + (s.sorted.capacity() + s.picked.capacity() + s.pruned.capacity()) * 8
                })
                .sum()
        });
        std::mem::size_of::<Hnsw>()
            + self.levels.capacity()
            + self.links0.capacity() * 4
            + self.upper.capacity() * std::mem::size_of::<Vec<u32>>()
            + upper
            + self.dirty.capacity() * 4
            + self.dirty_bits.capacity() * 8
            + self.graveyard.capacity() * 4
            + pool
    }
}
