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

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Mutex;

use crate::distance::Kernels;
use crate::{Error, Metric, Result};

mod persist;
#[cfg(test)]
mod tests;

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

/// Seeded xorshift64* generator (splitmix64 seeding): small, fast, reproducible everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rng(u64);

impl Rng {
    fn from_seed(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `(0, 1]`: never 0, so `ln` is finite.
    fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// A node and its distance to the current query.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cand {
    d: f32,
    id: u32,
}

impl Cand {
    /// Nearer first; ties by id, so results do not depend on heap internals.
    #[inline]
    fn order(&self, other: &Cand) -> Ordering {
        self.d
            .total_cmp(&other.d)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// Max-heap entry: the heap's top is the farthest candidate (the result set).
#[derive(Clone, Copy)]
struct Far(Cand);

/// Min-heap entry: the heap's top is the nearest candidate (the frontier).
#[derive(Clone, Copy)]
struct Near(Cand);

impl PartialEq for Far {
    fn eq(&self, o: &Self) -> bool {
        self.0.order(&o.0) == Ordering::Equal
    }
}
impl Eq for Far {}
impl PartialOrd for Far {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Far {
    #[inline]
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.order(&o.0)
    }
}
impl PartialEq for Near {
    fn eq(&self, o: &Self) -> bool {
        self.0.order(&o.0) == Ordering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    #[inline]
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.order(&self.0)
    }
}

/// Visited marks: `marks[id] == gen` means visited in the current search. Bumping `gen` clears
/// all marks in O(1); the array is zeroed only when `gen` wraps (every 65,535 searches).
#[derive(Default)]
struct Visited {
    marks: Vec<u16>,
    gen: u16,
}

impl Visited {
    /// Starts a new search over ids `0..n`.
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            self.marks.fill(0);
            self.gen = 1;
        }
    }

    /// Marks `id`; `true` if it was not marked yet. `id` must be below the `n` of `reset`.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let m = &mut self.marks[id as usize];
        if *m == self.gen {
            false
        } else {
            *m = self.gen;
            true
        }
    }
}

/// Per-operation working memory, pooled so a search does not allocate.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    frontier: BinaryHeap<Near>,
    results: BinaryHeap<Far>,
    /// Unvisited neighbours of the node being expanded.
    batch: Vec<u32>,
    /// Removed nodes to pass through.
    dead: Vec<u32>,
    /// Candidates sorted nearest first (neighbour selection).
    sorted: Vec<Cand>,
    /// Selected neighbours.
    picked: Vec<Cand>,
    /// Candidates the heuristic discarded (`keep_pruned_connections`).
    pruned: Vec<Cand>,
}

/// Scratch buffers kept for reuse (more concurrent searches than this allocate and drop).
const POOL_MAX: usize = 64;

/// A query vector with its inverse norm (cosine only).
#[derive(Clone, Copy)]
struct Query<'q> {
    v: &'q [f32],
    inv: f32,
}

/// How many vectors ahead of the one being scored a search prefetches.
const PREFETCH_AHEAD: usize = 2;

/// Hints the CPU to load the memory of `v` into cache. No effect on other architectures.
#[inline(always)]
fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(v);
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch is a hint: it never faults and has no visible effect, and the
            // address stays inside `v`. SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
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

#[inline(always)]
fn distance<S: VectorSource + ?Sized>(
    metric: Metric,
    k: &Kernels,
    q: Query<'_>,
    src: &S,
    n: u32,
) -> f32 {
    let v = src.vector(n);
    match metric {
        Metric::Cosine => 1.0 - (k.dot)(q.v, v) * q.inv * src.inv_norm(n),
        Metric::Dot => -(k.dot)(q.v, v),
        Metric::L2 => (k.l2sq)(q.v, v),
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

    // ---- internal helpers ---------------------------------------------------------------------

    /// `true` when `node` is in the index and has a list on `level` (links may be dangling, or
    /// point at an id re-inserted with a lower level: both are skipped).
    #[inline]
    fn on_layer(&self, node: u32, level: usize) -> bool {
        self.levels
            .get(node as usize)
            .is_some_and(|&l| l < DEAD && usize::from(l) >= level)
    }

    /// Sorts `n` for a traversal of `level`: `Some(true)` when it is in the index on that
    /// layer, `Some(false)` when it is a removed node whose lists on that layer are kept (pass
    /// through it), `None` otherwise.
    #[inline(always)]
    fn kind(&self, n: u32, level: usize) -> Option<bool> {
        let v = *self.levels.get(n as usize)?;
        if v < DEAD {
            (usize::from(v) >= level).then_some(true)
        } else {
            (v != ABSENT && usize::from(v & !DEAD) >= level).then_some(false)
        }
    }

    /// Appends to `out` the not yet visited nodes on `level` among the links of `node`, passing
    /// through removed nodes whose lists are kept (transitively); marks all of them visited.
    #[inline(always)]
    fn gather(
        &self,
        node: u32,
        level: usize,
        visited: &mut Visited,
        dead: &mut Vec<u32>,
        out: &mut Vec<u32>,
    ) {
        for &n in self.links(node, level) {
            match self.kind(n, level) {
                Some(true) if visited.insert(n) => out.push(n),
                Some(false) if visited.insert(n) => dead.push(n),
                _ => {}
            }
        }
        while let Some(d) = dead.pop() {
            for &n in self.links(d, level) {
                match self.kind(n, level) {
                    Some(true) if visited.insert(n) => out.push(n),
                    Some(false) if visited.insert(n) => dead.push(n),
                    _ => {}
                }
            }
        }
    }

    /// The list of `node` on `level` (the node must have that level).
    #[inline(always)]
    fn links(&self, node: u32, level: usize) -> &[u32] {
        if level == 0 {
            let base = node as usize * self.stride0;
            let c = self.links0[base] as usize;
            &self.links0[base + 1..base + 1 + c]
        } else {
            let base = (level - 1) * self.stride_up;
            let up = &self.upper[node as usize];
            let c = up[base] as usize;
            &up[base + 1..base + 1 + c]
        }
    }

    /// Hints the CPU to load the list of `node` on `level`.
    #[inline(always)]
    fn prefetch_links(&self, node: u32, level: usize) {
        if level == 0 {
            let base = node as usize * self.stride0;
            if let Some(slot) = self.links0.get(base..base + self.stride0) {
                prefetch(slot);
            }
        }
    }

    /// The whole slot (`[count, capacity ids…]`) of `node` on `level`.
    #[inline]
    fn slot_mut(&mut self, node: u32, level: usize) -> &mut [u32] {
        if level == 0 {
            let base = node as usize * self.stride0;
            &mut self.links0[base..base + self.stride0]
        } else {
            let base = (level - 1) * self.stride_up;
            &mut self.upper[node as usize][base..base + self.stride_up]
        }
    }

    /// Replaces the list of `node` on `level` (`ids.len()` ≤ the layer's degree).
    fn set_links(&mut self, node: u32, level: usize, ids: impl ExactSizeIterator<Item = u32>) {
        let slot = self.slot_mut(node, level);
        slot[0] = ids.len() as u32;
        for (dst, id) in slot[1..].iter_mut().zip(ids) {
            *dst = id;
        }
    }

    /// Maximum list length on `level`.
    #[inline]
    fn degree(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Makes the per-id arrays cover ids `0..n`.
    fn grow(&mut self, n: usize) {
        if self.levels.len() < n {
            self.levels.resize(n, ABSENT);
            self.links0.resize(n * self.stride0, 0);
            self.upper.resize_with(n, Vec::new);
            self.dirty_bits.resize(n.div_ceil(64), 0);
        }
    }

    /// Records that the persisted record of `node` changed.
    #[inline]
    fn touch(&mut self, node: u32) {
        let (w, b) = (node as usize / 64, node % 64);
        if self.dirty_bits[w] & (1 << b) == 0 {
            self.dirty_bits[w] |= 1 << b;
            self.dirty.push(node);
        }
    }

    fn random_level(&mut self) -> usize {
        let l = (-self.rng.next_unit().ln() * self.level_mult).floor();
        (l as usize).min(MAX_LEVEL)
    }

    fn take_scratch(&self) -> Scratch {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn put_scratch(&self, s: Scratch) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(s);
        }
    }

    fn query<'q, S: VectorSource + ?Sized>(&self, src: &S, v: &'q [f32], node: u32) -> Query<'q> {
        let inv = match self.metric {
            Metric::Cosine => src.inv_norm(node),
            _ => 1.0,
        };
        Query { v, inv }
    }

    fn check_dim(&self, got: usize) -> Result<()> {
        if self.dim != 0 && got != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got,
            });
        }
        Ok(())
    }

    /// Greedy walk on one layer (`ef = 1`) from `cur` to a local minimum.
    fn greedy<S: VectorSource + ?Sized>(
        &self,
        k: &Kernels,
        q: Query<'_>,
        src: &S,
        mut cur: Cand,
        level: usize,
    ) -> Cand {
        loop {
            let at = cur.id;
            let mut step = |n: u32| {
                let d = distance(self.metric, k, q, src, n);
                if d < cur.d {
                    cur = Cand { d, id: n };
                }
            };
            for &n in self.links(at, level) {
                match self.kind(n, level) {
                    Some(true) => step(n),
                    // A removed node: one hop through its kept list.
                    Some(false) => {
                        for &m in self.links(n, level) {
                            if self.on_layer(m, level) {
                                step(m);
                            }
                        }
                    }
                    None => {}
                }
            }
            if cur.id == at {
                return cur;
            }
        }
    }

    /// Beam search on one layer (Algorithm 2): leaves the best `ef` nodes that pass `filter`
    /// in `s.results` (a max-heap). Nodes failing the filter are traversed but not collected.
    #[allow(clippy::too_many_arguments)]
    fn search_layer<S: VectorSource + ?Sized>(
        &self,
        k: &Kernels,
        q: Query<'_>,
        src: &S,
        eps: &[Cand],
        level: usize,
        ef: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
        s: &mut Scratch,
    ) {
        let Scratch {
            visited,
            frontier,
            results,
            batch,
            dead,
            ..
        } = s;
        visited.reset(self.levels.len());
        frontier.clear();
        results.clear();
        let pass = |id: u32| filter.is_none_or(|f| f(id));
        for &e in eps {
            if self.on_layer(e.id, level) && visited.insert(e.id) {
                frontier.push(Near(e));
                if pass(e.id) {
                    results.push(Far(e));
                }
            }
        }
        while results.len() > ef {
            results.pop();
        }
        let mut worst = match results.peek() {
            Some(f) if results.len() >= ef => f.0.d,
            _ => f32::INFINITY,
        };
        while let Some(Near(c)) = frontier.pop() {
            if c.d > worst {
                break;
            }
            if let Some(next) = frontier.peek() {
                self.prefetch_links(next.0.id, level);
            }
            batch.clear();
            self.gather(c.id, level, visited, dead, batch);
            // Software-pipelined prefetch: the vectors two ahead are on their way while this one
            // is scored. (Prefetching the whole batch up front stalls on the CPU's miss buffers;
            // measured on debian-minilm: none 223 µs, whole batch 195 µs, two ahead 171 µs.)
            for &n in batch.iter().take(PREFETCH_AHEAD) {
                prefetch(src.vector(n));
            }
            for (i, &n) in batch.iter().enumerate() {
                if let Some(&next) = batch.get(i + PREFETCH_AHEAD) {
                    prefetch(src.vector(next));
                }
                let d = distance(self.metric, k, q, src, n);
                if d < worst {
                    let c = Cand { d, id: n };
                    frontier.push(Near(c));
                    if pass(n) {
                        results.push(Far(c));
                        if results.len() > ef {
                            results.pop();
                        }
                        if results.len() >= ef {
                            worst = results.peek().map_or(f32::INFINITY, |f| f.0.d);
                        }
                    }
                }
            }
        }
    }

    /// Appends the distance from `q` of each of `ids` (nodes in the index) to `out`, prefetching
    /// vectors ahead.
    fn score<S: VectorSource + ?Sized>(
        &self,
        k: &Kernels,
        q: Query<'_>,
        src: &S,
        ids: &[u32],
        out: &mut Vec<Cand>,
    ) {
        for &n in ids.iter().take(PREFETCH_AHEAD) {
            prefetch(src.vector(n));
        }
        for (i, &n) in ids.iter().enumerate() {
            if let Some(&next) = ids.get(i + PREFETCH_AHEAD) {
                prefetch(src.vector(next));
            }
            out.push(Cand {
                d: distance(self.metric, k, q, src, n),
                id: n,
            });
        }
    }

    /// Neighbour selection heuristic (Algorithm 4) over `s.sorted` (nearest first, distances to
    /// the base node): leaves at most `m` nodes in `s.picked`.
    fn select<S: VectorSource + ?Sized>(&self, k: &Kernels, src: &S, m: usize, s: &mut Scratch) {
        s.picked.clear();
        s.pruned.clear();
        if s.sorted.len() <= m {
            s.picked.extend_from_slice(&s.sorted);
            return;
        }
        for &c in &s.sorted {
            if s.picked.len() >= m {
                break;
            }
            let cq = self.query(src, src.vector(c.id), c.id);
            let good = s
                .picked
                .iter()
                .all(|p| distance(self.metric, k, cq, src, p.id) >= c.d);
            if good {
                s.picked.push(c);
            } else if self.params.keep_pruned_connections {
                s.pruned.push(c);
            }
        }
        if self.params.keep_pruned_connections {
            let room = m - s.picked.len();
            s.picked.extend(s.pruned.iter().take(room));
        }
    }

    /// Adds the link `node → new` on `level` (`d` = their distance), re-selecting `node`'s
    /// list with the heuristic when it is full.
    fn add_link<S: VectorSource + ?Sized>(
        &mut self,
        k: &Kernels,
        src: &S,
        node: u32,
        new: u32,
        d: f32,
        level: usize,
        s: &mut Scratch,
    ) {
        let cap = self.degree(level);
        let list = self.links(node, level);
        if list.contains(&new) {
            return;
        }
        if list.len() < cap {
            let slot = self.slot_mut(node, level);
            let c = slot[0] as usize;
            slot[1 + c] = new;
            slot[0] += 1;
            self.touch(node);
            return;
        }
        let nq = self.query(src, src.vector(node), node);
        s.batch.clear();
        s.batch
            .extend(list.iter().copied().filter(|&n| self.on_layer(n, level)));
        s.sorted.clear();
        self.score(k, nq, src, &s.batch, &mut s.sorted);
        s.sorted.push(Cand { d, id: new });
        s.sorted.sort_unstable_by(Cand::order);
        self.select(k, src, cap, s);
        let picked = std::mem::take(&mut s.picked);
        self.set_links(node, level, picked.iter().map(|c| c.id));
        s.picked = picked;
        self.touch(node);
    }

    // ---- writes -------------------------------------------------------------------------------

    /// Inserts `node`, whose vector is `src.vector(node)`.
    ///
    /// Ids may arrive in any order; arrays grow to cover the largest id. Costs about
    /// `ef_construction · log(n)` distance computations plus the reverse-link updates.
    ///
    /// # Errors
    /// * [`Error::InvalidArgument`] for `node == u32::MAX` (reserved);
    /// * [`Error::DimensionMismatch`] when `src.dim()` differs from the dimension of earlier
    ///   inserts (or of the loaded header);
    /// * [`Error::DuplicateId`] when `node` is already in the index (use [`Hnsw::update`]).
    pub fn insert<S: VectorSource + ?Sized>(&mut self, node: u32, src: &S) -> Result<()> {
        if node == NONE {
            return Err(Error::InvalidArgument(
                "hnsw node id u32::MAX is reserved".into(),
            ));
        }
        self.check_dim(src.dim())?;
        if self.contains(node) {
            return Err(Error::DuplicateId(format!("hnsw node {node}")));
        }
        if self.dim == 0 {
            self.dim = src.dim();
        }
        self.grow(node as usize + 1);
        let level = self.random_level();
        // The node is marked present only at the end, so the searches below never reach it
        // (not even through a dangling link left by an earlier removal of the same id, whose
        // kept lists are dropped here).
        self.levels[node as usize] = ABSENT;
        self.upper[node as usize] = vec![0; level * self.stride_up];
        self.slot_mut(node, 0)[0] = 0;
        self.touch(node);

        // The entry point's level is the max level in a consistent graph; using its own level
        // keeps a damaged one (see `finish_load`) from indexing missing lists.
        let top = self.entry.and_then(|e| self.level_of(e));
        if let (Some(ep), Some(top)) = (self.entry, top) {
            let k = Kernels::best();
            let q = self.query(src, src.vector(node), node);
            let mut s = self.take_scratch();
            let mut cur = Cand {
                d: distance(self.metric, k, q, src, ep),
                id: ep,
            };
            for l in (level + 1..=top).rev() {
                cur = self.greedy(k, q, src, cur, l);
            }
            let mut eps = vec![cur];
            let m = self.params.m;
            for l in (0..=level.min(top)).rev() {
                self.search_layer(
                    k,
                    q,
                    src,
                    &eps,
                    l,
                    self.params.ef_construction,
                    None,
                    &mut s,
                );
                s.sorted.clear();
                s.sorted.extend(s.results.drain().map(|f| f.0));
                s.sorted.sort_unstable_by(Cand::order);
                eps.clear();
                eps.extend_from_slice(&s.sorted);
                self.select(k, src, m, &mut s);
                let picked = std::mem::take(&mut s.picked);
                self.set_links(node, l, picked.iter().map(|c| c.id));
                for c in &picked {
                    self.add_link(k, src, c.id, node, c.d, l, &mut s);
                }
                s.picked = picked;
            }
            self.put_scratch(s);
        }

        self.levels[node as usize] = level as u8;
        self.len += 1;
        if top.is_none_or(|t| level > t) {
            self.entry = Some(node);
            self.max_level = level;
        }
        Ok(())
    }

    /// Removes `node`: it is never returned again and its vector is never read again (`src`
    /// may already have dropped it). Returns `false` (and does nothing) when it was not in the
    /// index.
    ///
    /// The nodes that linked to it and are among its neighbours are repaired at once (see the
    /// module docs), reading their own and their candidates' vectors from `src`; its lists are
    /// kept so that searches pass through it until the next purge. The entry point moves when it
    /// was `node`. Once removed nodes reach 1/16 of the nodes (at least 64), this also runs
    /// [`Hnsw::purge_dead_links`].
    pub fn remove<S: VectorSource + ?Sized>(&mut self, node: u32, src: &S) -> bool {
        let Some(level) = self.level_of(node) else {
            return false;
        };
        self.levels[node as usize] = DEAD | level as u8;
        self.graveyard.push(node);
        self.len -= 1;
        self.removed += 1;
        self.pending_dead += 1;
        self.touch(node);

        let k = Kernels::best();
        let mut s = self.take_scratch();
        let (mut out, mut keep) = (Vec::new(), Vec::new());
        for l in 0..=level {
            out.clear();
            s.visited.reset(self.levels.len());
            s.visited.insert(node);
            self.gather(node, l, &mut s.visited, &mut s.dead, &mut out);
            for &n in &out {
                if self.links(n, l).contains(&node) {
                    self.repair(k, src, n, l, &mut s, &mut keep);
                }
            }
        }
        self.put_scratch(s);

        if self.entry == Some(node) {
            self.reset_entry();
        }
        if self.pending_dead >= (self.len / 16).max(64) {
            self.purge_dead_links(src);
        }
        true
    }

    /// Re-links `node` on `level` after removals: keeps its links to nodes in the index, and
    /// offers the nodes reachable through its links to removed nodes, nearest first, for the
    /// free slots, each only if no kept link is closer to it than `node` is (Algorithm 4's
    /// test). Re-selecting the whole list with the heuristic would shrink lists that reverse
    /// links had filled, and costs recall. Returns the number of links dropped.
    fn repair<S: VectorSource + ?Sized>(
        &mut self,
        k: &Kernels,
        src: &S,
        node: u32,
        level: usize,
        s: &mut Scratch,
        keep: &mut Vec<u32>,
    ) -> usize {
        let before = self.links(node, level).len();
        {
            let Scratch {
                visited,
                dead,
                batch,
                ..
            } = &mut *s;
            visited.reset(self.levels.len());
            visited.insert(node);
            keep.clear();
            batch.clear();
            dead.clear();
            for &c in self.links(node, level) {
                match self.kind(c, level) {
                    Some(true) if visited.insert(c) => keep.push(c),
                    Some(false) if visited.insert(c) => dead.push(c),
                    _ => {}
                }
            }
            while let Some(d) = dead.pop() {
                for &c in self.links(d, level) {
                    match self.kind(c, level) {
                        Some(true) if visited.insert(c) => batch.push(c),
                        Some(false) if visited.insert(c) => dead.push(c),
                        _ => {}
                    }
                }
            }
        }
        let dropped = before - keep.len();
        let cap = self.degree(level);
        if keep.len() < cap && !s.batch.is_empty() {
            let nq = self.query(src, src.vector(node), node);
            s.sorted.clear();
            self.score(k, nq, src, &s.batch, &mut s.sorted);
            s.sorted.sort_unstable_by(Cand::order);
            for c in &s.sorted {
                if keep.len() >= cap {
                    break;
                }
                let cq = self.query(src, src.vector(c.id), c.id);
                if keep
                    .iter()
                    .all(|&x| distance(self.metric, k, cq, src, x) >= c.d)
                {
                    keep.push(c.id);
                }
            }
        }
        self.set_links(node, level, keep.iter().copied());
        self.touch(node);
        dropped
    }

    /// Replaces the vector of `node` (now `src.vector(node)`): a removal plus an insert of the
    /// same id. Inserts when `node` was not in the index.
    ///
    /// # Errors
    /// As [`Hnsw::insert`] (never [`Error::DuplicateId`]).
    pub fn update<S: VectorSource + ?Sized>(&mut self, node: u32, src: &S) -> Result<()> {
        self.check_dim(src.dim())?;
        if self.remove(node, src) {
            // An update does not count towards `deleted_ratio`: re-inserting the node heals
            // the graph (measured: recall unchanged after updating every node twice).
            self.removed -= 1;
        }
        self.insert(node, src)
    }

    /// Repairs every node that links to removed nodes (as [`Hnsw::remove`] repairs their
    /// neighbours: candidates are the nodes reachable through the removed ones) and frees the
    /// removed nodes' lists, in one pass over all lists; returns the number of links dropped.
    /// [`Hnsw::remove`] runs it automatically; a caller may run it earlier (e.g. before saving,
    /// as saved graphs lose the pass-through lists of removed nodes).
    pub fn purge_dead_links<S: VectorSource + ?Sized>(&mut self, src: &S) -> usize {
        let k = Kernels::best();
        let mut s = self.take_scratch();
        let mut keep = Vec::new();
        let mut dropped = 0;
        for node in 0..self.levels.len() as u32 {
            let Some(level) = self.level_of(node) else {
                continue;
            };
            for l in 0..=level {
                if !self.links(node, l).iter().all(|&n| self.on_layer(n, l)) {
                    dropped += self.repair(k, src, node, l, &mut s, &mut keep);
                }
            }
        }
        self.put_scratch(s);
        for d in std::mem::take(&mut self.graveyard) {
            let v = self.levels[d as usize];
            if v != ABSENT && v & DEAD != 0 {
                self.levels[d as usize] = ABSENT;
                self.slot_mut(d, 0)[0] = 0;
                self.upper[d as usize] = Vec::new();
                self.touch(d);
            }
        }
        self.pending_dead = 0;
        dropped
    }

    /// Moves the entry point to the lowest id of the highest level (O(ids)).
    fn reset_entry(&mut self) {
        let mut best: Option<(u8, u32)> = None;
        for (id, &l) in self.levels.iter().enumerate() {
            if l < DEAD && best.is_none_or(|(bl, _)| l > bl) {
                best = Some((l, id as u32));
            }
        }
        self.entry = best.map(|(_, id)| id);
        self.max_level = best.map_or(0, |(l, _)| usize::from(l));
    }

    /// The ids whose persisted record ([`Hnsw::encode_node`]) changed since the last call,
    /// ascending, and forgets them. For each: write `encode_node(id)` when it is `Some`, else
    /// delete the stored record. Rewrite the [`Hnsw::header`] with every batch as well.
    pub fn take_dirty(&mut self) -> Vec<u32> {
        let mut out = std::mem::take(&mut self.dirty);
        for &n in &out {
            self.dirty_bits[n as usize / 64] &= !(1 << (n % 64));
        }
        out.sort_unstable();
        out
    }

    // ---- search -------------------------------------------------------------------------------

    /// The `k` nearest nodes to `q` that pass `filter` (all nodes when `None`), nearest first,
    /// as `(distance, node)`; distances are "smaller is better" (see the module docs for the
    /// unit per metric). Fewer than `k` come back when fewer are reachable (or in the index).
    ///
    /// `ef` is the beam width (use [`HnswParams::ef_search`] by default); the search uses
    /// `max(ef, k)`. Larger `ef` gives higher recall and slower searches. With a filter the
    /// graph is traversed through all nodes and the search continues until `max(ef, k)` passing
    /// nodes are held (see the module docs); `filter` is called at most once per visited node.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] when `q.len()` differs from the index's dimension.
    pub fn search<S: VectorSource + ?Sized>(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        src: &S,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Result<Vec<(f32, u32)>> {
        self.check_dim(q.len())?;
        let Some(ep) = self.entry.filter(|&e| self.contains(e)) else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let kern = Kernels::best();
        let q = Query {
            v: q,
            inv: match self.metric {
                Metric::Cosine => inverse_norm(q),
                _ => 1.0,
            },
        };
        let mut cur = Cand {
            d: distance(self.metric, kern, q, src, ep),
            id: ep,
        };
        for l in (1..=self.max_level.min(self.level_of(ep).unwrap_or(0))).rev() {
            cur = self.greedy(kern, q, src, cur, l);
        }
        let mut s = self.take_scratch();
        self.search_layer(kern, q, src, &[cur], 0, ef.max(k), filter, &mut s);
        s.sorted.clear();
        s.sorted.extend(s.results.drain().map(|f| f.0));
        s.sorted.sort_unstable_by(Cand::order);
        let out = s.sorted.iter().take(k).map(|c| (c.d, c.id)).collect();
        self.put_scratch(s);
        Ok(out)
    }
}
