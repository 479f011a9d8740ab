//! The graph algorithms of [`Hnsw`] (Malkov & Yashunin, arXiv:1603.09320): greedy descent,
//! the beam search of a layer, the neighbour-selection heuristic (Algorithm 4), insertion,
//! removal with neighbour repair, updates, and the search with a filter; and the scratch
//! buffers and heaps they share.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::*;

/// Seeded xorshift64* generator (splitmix64 seeding): small, fast, reproducible everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn from_seed(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `(0, 1]`: never 0, so `ln` is finite.
    pub(super) fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// A node and its distance to the current query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cand {
    pub(super) d: f32,
    pub(super) id: u32,
}

impl Cand {
    /// Nearer first; ties by id, so results do not depend on heap internals.
    #[inline]
    pub(super) fn order(&self, other: &Cand) -> Ordering {
        self.d
            .total_cmp(&other.d)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// Max-heap entry: the heap's top is the farthest candidate (the result set).
#[derive(Clone, Copy)]
pub(super) struct Far(Cand);

/// Min-heap entry: the heap's top is the nearest candidate (the frontier).
#[derive(Clone, Copy)]
pub(super) struct Near(Cand);

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
pub(super) struct Visited {
    pub(super) marks: Vec<u16>,
    pub(super) gen: u16,
}

impl Visited {
    /// Starts a new search over ids `0..n`.
    pub(super) fn reset(&mut self, n: usize) {
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
    pub(super) fn insert(&mut self, id: u32) -> bool {
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
pub(super) struct Scratch {
    pub(super) visited: Visited,
    pub(super) frontier: BinaryHeap<Near>,
    pub(super) results: BinaryHeap<Far>,
    /// Unvisited neighbours of the node being expanded.
    pub(super) batch: Vec<u32>,
    /// Removed nodes to pass through.
    pub(super) dead: Vec<u32>,
    /// Candidates sorted nearest first (neighbour selection).
    pub(super) sorted: Vec<Cand>,
    /// Selected neighbours.
    pub(super) picked: Vec<Cand>,
    /// Candidates the heuristic discarded (`keep_pruned_connections`).
    pub(super) pruned: Vec<Cand>,
}

/// Scratch buffers kept for reuse (more concurrent searches than this allocate and drop).
pub(super) const POOL_MAX: usize = 64;

/// A query vector with its inverse norm (cosine only).
#[derive(Clone, Copy)]
pub(super) struct Query<'q> {
    v: &'q [f32],
    inv: f32,
}

/// How many vectors ahead of the one being scored a search prefetches.
pub(super) const PREFETCH_AHEAD: usize = 2;

/// Hints the CPU to load the memory of `v` into cache. No effect on other architectures.
#[inline(always)]
pub(super) fn prefetch<T>(v: &[T]) {
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

#[inline(always)]
pub(super) fn distance<S: VectorSource + ?Sized>(
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
    /// `true` when `node` is in the index and has a list on `level` (links may be dangling, or
    /// point at an id re-inserted with a lower level: both are skipped).
    #[inline]
    pub(super) fn on_layer(&self, node: u32, level: usize) -> bool {
        self.levels
            .get(node as usize)
            .is_some_and(|&l| l < DEAD && usize::from(l) >= level)
    }

    /// Sorts `n` for a traversal of `level`: `Some(true)` when it is in the index on that
    /// layer, `Some(false)` when it is a removed node whose lists on that layer are kept (pass
    /// through it), `None` otherwise.
    #[inline(always)]
    pub(super) fn kind(&self, n: u32, level: usize) -> Option<bool> {
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
    pub(super) fn gather(
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
    pub(super) fn links(&self, node: u32, level: usize) -> &[u32] {
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
    pub(super) fn prefetch_links(&self, node: u32, level: usize) {
        if level == 0 {
            let base = node as usize * self.stride0;
            if let Some(slot) = self.links0.get(base..base + self.stride0) {
                prefetch(slot);
            }
        }
    }

    /// The whole slot (`[count, capacity ids…]`) of `node` on `level`.
    #[inline]
    pub(super) fn slot_mut(&mut self, node: u32, level: usize) -> &mut [u32] {
        if level == 0 {
            let base = node as usize * self.stride0;
            &mut self.links0[base..base + self.stride0]
        } else {
            let base = (level - 1) * self.stride_up;
            &mut self.upper[node as usize][base..base + self.stride_up]
        }
    }

    /// Replaces the list of `node` on `level` (`ids.len()` ≤ the layer's degree).
    pub(super) fn set_links(
        &mut self,
        node: u32,
        level: usize,
        ids: impl ExactSizeIterator<Item = u32>,
    ) {
        let slot = self.slot_mut(node, level);
        slot[0] = ids.len() as u32;
        for (dst, id) in slot[1..].iter_mut().zip(ids) {
            *dst = id;
        }
    }

    /// Maximum list length on `level`.
    #[inline]
    pub(super) fn degree(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Makes the per-id arrays cover ids `0..n`.
    pub(super) fn grow(&mut self, n: usize) {
        if self.levels.len() < n {
            self.levels.resize(n, ABSENT);
            self.links0.resize(n * self.stride0, 0);
            self.upper.resize_with(n, Vec::new);
            self.dirty_bits.resize(n.div_ceil(64), 0);
        }
    }

    /// Records that the persisted record of `node` changed.
    #[inline]
    pub(super) fn touch(&mut self, node: u32) {
        let (w, b) = (node as usize / 64, node % 64);
        if self.dirty_bits[w] & (1 << b) == 0 {
            self.dirty_bits[w] |= 1 << b;
            self.dirty.push(node);
        }
    }

    pub(super) fn random_level(&mut self) -> usize {
        let l = (-self.rng.next_unit().ln() * self.level_mult).floor();
        (l as usize).min(MAX_LEVEL)
    }

    pub(super) fn take_scratch(&self) -> Scratch {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    pub(super) fn put_scratch(&self, s: Scratch) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(s);
        }
    }

    pub(super) fn query<'q, S: VectorSource + ?Sized>(
        &self,
        src: &S,
        v: &'q [f32],
        node: u32,
    ) -> Query<'q> {
        let inv = match self.metric {
            Metric::Cosine => src.inv_norm(node),
            _ => 1.0,
        };
        Query { v, inv }
    }

    pub(super) fn check_dim(&self, got: usize) -> Result<()> {
        if self.dim != 0 && got != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got,
            });
        }
        Ok(())
    }

    /// Greedy walk on one layer (`ef = 1`) from `cur` to a local minimum.
    pub(super) fn greedy<S: VectorSource + ?Sized>(
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
    pub(super) fn search_layer<S: VectorSource + ?Sized>(
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
    pub(super) fn score<S: VectorSource + ?Sized>(
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
    pub(super) fn select<S: VectorSource + ?Sized>(
        &self,
        k: &Kernels,
        src: &S,
        m: usize,
        s: &mut Scratch,
    ) {
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
    pub(super) fn add_link<S: VectorSource + ?Sized>(
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
    pub(super) fn repair<S: VectorSource + ?Sized>(
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
    pub(super) fn reset_entry(&mut self) {
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
