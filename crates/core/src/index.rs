//! A shard's HNSW index: the graph of [`crate::hnsw`] kept in step with the shard's data, stored
//! in the shard's own SQLite file, and the planner that picks exact or graph search per query.
//!
//! # Node ids
//!
//! Graph node ids are the items' SQLite rowids (stable for the life of a row; tombstones keep
//! theirs, rowids are never reused), so a node's vector is one load away: the arena's dense
//! `rowid → slot` array, then the slot's row. Cosine uses the inverse norms the arena stores.
//!
//! # Storage (shadow tables, created by [`crate::Shard::create_index`])
//!
//! | table | columns | content |
//! |---|---|---|
//! | `hnsw_state` | `id INTEGER PRIMARY KEY CHECK (id = 1)`, `header BLOB`, `epoch INTEGER` | the graph header ([`crate::hnsw::Hnsw::header`], 80 bytes, format version 1) and a counter bumped by every write of graph rows |
//! | `hnsw_nodes` | `node INTEGER PRIMARY KEY` (= the item's rowid), `record BLOB` | one node record per node ([`crate::hnsw::Hnsw::encode_node`]) |
//!
//! Every write transaction that changes items applies the same changes to the graph and writes
//! the node records that changed, plus the header, **in that same transaction**: what is
//! committed for the items is committed for the index. The header's stamp is the last local
//! change (`seq`) the graph has applied.
//!
//! On open the graph is loaded (no rebuild), then checked against the data: changes with a
//! `seq` above the stamp (made by a process that did not maintain the graph, e.g. an older
//! build, or by a second writer of the same file, see below) are applied, and the graph must then
//! hold exactly the live rowids. A graph that fails to decode or to match is rebuilt from the
//! items (logged at `warn`): the index never serves a stale or deleted id.
//!
//! Two processes writing one shard each keep a graph in memory (each applies the other's
//! commits when it sees them), but only one may write graph rows, or the stored records would
//! mix two graphs. The `epoch` arbitrates: a handle writes rows only while the stored epoch is
//! the one it last wrote or loaded; once another handle has written, it stops persisting (its
//! in-memory graph stays correct) and the other's stored graph plus the stamp catch-up remain
//! the truth on disk.
//!
//! Removals past [`REBUILD_RATIO`] (as many removed since the build as nodes remain) rebuild the
//! graph from the live items in the transaction that crosses it.
//!
//! # Planner
//!
//! [`plan`] picks, per query: an exact scan when the shard is small (at most
//! [`PlannerParams::exact_max_items`] live items), HNSW above it; with a filter, an exact scan of
//! the matching items when they are few, a filtered graph traversal otherwise (see [`plan`]).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::arena::Arena;
use crate::hnsw::{Hnsw, HnswParams, VectorSource, REBUILD_RATIO};
use crate::schema::{self, ItemRow};
use crate::{Error, Metric, Result};

/// Which way a search ran (or would run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchPath {
    /// Exact scan of the arena (all items, or the items matching the filter).
    Exact,
    /// Approximate search over the HNSW graph (with the filter checked per visited node).
    Hnsw,
}

impl SearchPath {
    /// `"exact"` or `"hnsw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchPath::Exact => "exact",
            SearchPath::Hnsw => "hnsw",
        }
    }
}

impl std::fmt::Display for SearchPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a shard's exact path stores and scans vectors ([`crate::Shard::set_quantization`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// f32 rows only: the exact scan reads `4·dim` bytes per item.
    None,
    /// int8 scalar quantization ([`crate::quant`]): the arena keeps one code byte per
    /// component (and drops the f32 rows unless an HNSW index needs them); the exact path scans
    /// the codes for the best [`crate::quant::rescore_depth`]`(k)` items and rescores those with
    /// their f32 vectors (read from SQLite when the arena has none).
    Int8,
}

impl Quantization {
    /// `"none"` or `"int8"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Quantization {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "f32" => Ok(Quantization::None),
            "int8" | "sq8" => Ok(Quantization::Int8),
            _ => Err(Error::InvalidArgument(format!(
                "unknown quantization {s:?}: expected none or int8"
            ))),
        }
    }
}

/// Thresholds of the search planner ([`plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlannerParams {
    /// Shards with at most this many live items are scanned exactly even with an index.
    pub exact_max_items: usize,
    /// Graph search cost, in exact-scan row equivalents per unit of `ef`: an HNSW search with
    /// beam `ef` is taken to cost as much as an exact scan of `graph_cost_per_ef · ef` rows.
    pub graph_cost_per_ef: usize,
}

impl Default for PlannerParams {
    /// `exact_max_items = 4,096`, `graph_cost_per_ef = 48`: measured on this project's 2-core
    /// machine with debian-minilm (384-d); see BENCHMARKS.md ("HNSW: planner crossover").
    fn default() -> Self {
        PlannerParams {
            exact_max_items: 4_096,
            graph_cost_per_ef: 48,
        }
    }
}

/// The planner's choice for one query on a shard with an index.
///
/// * no filter: [`SearchPath::Exact`] when `live ≤ exact_max_items`, else [`SearchPath::Hnsw`];
/// * a filter matching `m` of `live` items: a filtered traversal visits about `live / m` times
///   the nodes of an unfiltered one (it keeps going until `ef` matching nodes are held), so its
///   cost is about `graph_cost_per_ef · ef · live / m` rows, against `m` rows for an exact scan
///   of the matches: exact when `m ≤ exact_max_items` or
///   `m² ≤ graph_cost_per_ef · ef · live`.
pub fn plan(p: &PlannerParams, live: usize, matching: Option<usize>, ef: usize) -> SearchPath {
    if live <= p.exact_max_items {
        return SearchPath::Exact;
    }
    match matching {
        None => SearchPath::Hnsw,
        Some(m) => {
            let graph = (p.graph_cost_per_ef as u128) * (ef as u128) * (live as u128);
            if m <= p.exact_max_items || (m as u128) * (m as u128) <= graph {
                SearchPath::Exact
            } else {
                SearchPath::Hnsw
            }
        }
    }
}

/// Facts about a shard's index, from [`crate::Shard::stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexStats {
    /// Index kind: `"hnsw"`.
    pub kind: &'static str,
    /// `M` (layer 0 keeps `2·M` neighbours).
    pub m: usize,
    /// `ef_construction`.
    pub ef_construction: usize,
    /// Default `ef_search` of queries that do not set one.
    pub ef_search: usize,
    /// Nodes in the graph (equals the live items).
    pub nodes: usize,
    /// Removals since the graph was built, over the nodes; rebuilt past [`REBUILD_RATIO`].
    pub deleted_ratio: f64,
    /// Bytes of the graph in memory (links, levels, scratch buffers).
    pub bytes_in_memory: usize,
    /// Whether this handle writes graph rows (false for in-memory shards, and after another
    /// handle wrote the same file's graph; see the module docs).
    pub persisted: bool,
    /// The path an unfiltered query with the default `ef_search` takes now.
    pub unfiltered_path: SearchPath,
    /// `true` when the stored graph could not be used as it was when this handle opened the
    /// shard (damaged, or out of step with the items) and was rebuilt from the items.
    pub rebuilt_on_open: bool,
}

/// Reads a shard's vectors for the graph, by rowid.
pub(crate) struct ArenaSource<'a>(pub &'a Arena);

impl VectorSource for ArenaSource<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        self.0.row(self.slot(node))
    }
    #[inline]
    fn inv_norm(&self, node: u32) -> f32 {
        self.0.inv_norm(self.slot(node))
    }
}

impl ArenaSource<'_> {
    #[inline]
    fn slot(&self, node: u32) -> u32 {
        // The graph holds exactly the live rowids (ShardIndex keeps it so), so a miss is a bug.
        self.0
            .slot(i64::from(node))
            .expect("hnsw node without a live arena row")
    }
}

/// [`ArenaSource`] that serves a zero vector (inverse norm 0) for nodes without a live row: only
/// for taking such nodes out of a loaded graph that lags the items.
struct TolerantSource<'a> {
    arena: &'a Arena,
    zeros: Vec<f32>,
}

impl VectorSource for TolerantSource<'_> {
    fn dim(&self) -> usize {
        self.arena.dim()
    }
    fn vector(&self, node: u32) -> &[f32] {
        match self.arena.slot(i64::from(node)) {
            Some(s) => self.arena.row(s),
            None => &self.zeros,
        }
    }
    fn inv_norm(&self, node: u32) -> f32 {
        self.arena
            .slot(i64::from(node))
            .map_or(0.0, |s| self.arena.inv_norm(s))
    }
}

/// Node ids are rowids below this (`u32::MAX` is the graph's reserved id).
pub(crate) const MAX_NODE: i64 = u32::MAX as i64;

/// A shard's graph and its persistence state.
pub(crate) struct ShardIndex {
    pub(crate) graph: Hnsw,
    /// The stored epoch this handle last wrote or loaded.
    epoch: i64,
    /// Whether this handle writes graph rows.
    pub(crate) persist: bool,
    /// The graph was rebuilt: the next flush replaces every stored record.
    rewrite_pending: bool,
    /// The stored graph was unusable when this handle opened the shard and was rebuilt.
    rebuilt_on_open: bool,
}

/// `rowid` as a graph node id, or [`Error::Corrupt`] when it is outside `0..MAX_NODE`.
pub(crate) fn node_of(rowid: i64) -> Result<u32> {
    if (0..MAX_NODE).contains(&rowid) {
        Ok(rowid as u32)
    } else {
        Err(Error::Corrupt(format!(
            "rowid {rowid} is outside the range an index node can have"
        )))
    }
}

/// Whether the shard behind `db` has the index tables.
/// What [`ShardIndex::load`] found in a shard.
pub(crate) enum Loaded {
    /// No index tables.
    Absent,
    /// The stored graph (or one rebuilt from the items when its records were unusable).
    Ready(Box<ShardIndex>),
    /// The index's state row is missing or unreadable: the shard opens without a graph and
    /// searches scan exactly until the index is rebuilt or dropped. The reason.
    Damaged(String),
}

/// Whether `e` is a failure of the database itself (I/O, a busy or locked file, memory, damaged
/// pages) rather than a problem with the contents of one table.
pub(crate) fn is_storage_failure(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::SystemIoFailure
                | C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
                | C::DatabaseCorrupt
                | C::NotADatabase
                | C::CannotOpen
                | C::DiskFull
        )
    )
}

pub(crate) fn tables_exist(db: &Connection) -> Result<bool> {
    Ok(db
        .prepare_cached(schema::HNSW_TABLES_EXIST)?
        .query_row([], |r| r.get(0))?)
}

impl ShardIndex {
    /// A graph of every live item of `arena`, inserted in rowid order (so the same data and
    /// parameters give the same graph).
    pub(crate) fn build(
        params: HnswParams,
        metric: Metric,
        arena: &Arena,
        persist: bool,
    ) -> Result<ShardIndex> {
        let mut graph = Hnsw::new(params, metric)?;
        let mut rowids: Vec<i64> = (0..arena.len() as u32).map(|s| arena.rowid(s)).collect();
        rowids.sort_unstable();
        let src = ArenaSource(arena);
        for r in rowids {
            graph.insert(node_of(r)?, &src)?;
        }
        Ok(ShardIndex {
            graph,
            epoch: 0,
            persist,
            rewrite_pending: true,
            rebuilt_on_open: false,
        })
    }

    /// Applies a committed put (insert, or a changed vector when the node exists). The arena
    /// already holds the new vector.
    pub(crate) fn put(&mut self, rowid: i64, arena: &Arena) -> Result<()> {
        let node = node_of(rowid)?;
        let src = ArenaSource(arena);
        if self.graph.contains(node) {
            self.graph.update(node, &src)
        } else {
            self.graph.insert(node, &src)
        }
    }

    /// Applies a removal. The arena no longer holds the row.
    pub(crate) fn remove(&mut self, rowid: i64, arena: &Arena) {
        if let Ok(node) = node_of(rowid) {
            self.graph.remove(node, &ArenaSource(arena));
        }
    }

    /// Rebuilds the graph from `arena` when removals passed [`REBUILD_RATIO`]; returns whether
    /// it did.
    pub(crate) fn rebuild_if_worn(&mut self, arena: &Arena) -> Result<bool> {
        if self.graph.deleted_ratio() <= REBUILD_RATIO {
            return Ok(false);
        }
        self.rebuild(arena)?;
        Ok(true)
    }

    fn rebuild(&mut self, arena: &Arena) -> Result<()> {
        let fresh = ShardIndex::build(*self.graph.params(), self.graph.metric(), arena, false)?;
        self.graph = fresh.graph;
        self.graph.take_dirty();
        self.rewrite_pending = true;
        Ok(())
    }

    /// Whether the graph matches the arena exactly: same node count, every live rowid a node.
    fn matches(&self, arena: &Arena) -> bool {
        self.graph.len() == arena.len()
            && (0..arena.len() as u32)
                .all(|s| node_of(arena.rowid(s)).is_ok_and(|n| self.graph.contains(n)))
    }

    /// Loads the stored graph of the shard behind `db`, brings it up to `arena` (whose rows
    /// reflect every change up to `last_seq`), and checks it (see [`Loaded`]). A graph whose
    /// header or records cannot be decoded, or that does not match the items, is rebuilt (and
    /// rewritten by the next write transaction).
    pub(crate) fn load(
        db: &Connection,
        arena: &Arena,
        metric: Metric,
        persist: bool,
    ) -> Result<Loaded> {
        if !tables_exist(db)? {
            return Ok(Loaded::Absent);
        }
        let state = db
            .query_row(schema::HNSW_GET_STATE, [], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .optional();
        let (header, epoch) = match state {
            Ok(Some(state)) => state,
            Ok(None) => return Ok(Loaded::Damaged("hnsw_state has no header row".into())),
            // A missing column, a row of the wrong types: the index's own tables are damaged
            // (the items are not); a failure of the database itself still fails the open.
            Err(e) if !is_storage_failure(&e) => {
                return Ok(Loaded::Damaged(format!("hnsw_state is unreadable ({e})")))
            }
            Err(e) => return Err(e.into()),
        };
        let mut ix = ShardIndex {
            graph: Hnsw::new(HnswParams::default(), metric)?,
            epoch,
            persist,
            rewrite_pending: false,
            rebuilt_on_open: false,
        };
        let mut graph = match Hnsw::from_header(&header) {
            Ok(g) => g,
            Err(e) => {
                tracing_warn(&format!(
                    "hnsw header unreadable ({e}); rebuilding with default parameters"
                ));
                ix.rebuild(arena)?;
                ix.rebuilt_on_open = true;
                return Ok(Loaded::Ready(Box::new(ix)));
            }
        };
        ix.graph = Hnsw::new(*graph.params(), metric)?;
        let decoded = (|| -> Result<Hnsw> {
            if graph.metric() != metric {
                return Err(Error::Corrupt(format!(
                    "index metric {} differs from the shard's {metric}",
                    graph.metric()
                )));
            }
            let mut stmt = db.prepare(schema::HNSW_ALL_NODES)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let node = node_of(row.get(0)?)?;
                graph.load_node(node, row.get_ref(1)?.as_blob()?)?;
            }
            graph.finish_load()?;
            Ok(graph)
        })();
        match decoded {
            Ok(g) => {
                ix.graph = g;
                // Catch up with the changes the graph has not seen (its stamp is the last change
                // it applied). The arena already holds the current items, so first take out
                // the nodes whose items are gone (their vectors are gone too: the source
                // serves a zero vector for them while they are being removed), then apply the
                // puts since the stamp.
                let stamp = ix.graph.stamp() as i64;
                let gone: Vec<u32> = (0..ix.graph.id_bound())
                    .filter(|&n| ix.graph.contains(n) && arena.slot(i64::from(n)).is_none())
                    .collect();
                let tolerant = TolerantSource {
                    arena,
                    zeros: vec![0.0; arena.dim()],
                };
                for n in gone {
                    ix.graph.remove(n, &tolerant);
                }
                let mut stmt = db.prepare(schema::CHANGES_SINCE)?;
                let mut rows = stmt.query([stamp])?;
                let mut caught_up = true;
                while let Some(row) = rows.next()? {
                    let rowid = ItemRow::read(row)?.rowid;
                    if arena.slot(rowid).is_some() && ix.put(rowid, arena).is_err() {
                        caught_up = false;
                        break;
                    }
                }
                if !caught_up || !ix.matches(arena) {
                    tracing_warn(&format!(
                        "hnsw index does not match the shard's items (stamp {stamp}); rebuilding"
                    ));
                    ix.rebuild(arena)?;
                    ix.rebuilt_on_open = true;
                }
            }
            Err(e) => {
                tracing_warn(&format!("hnsw index could not be read ({e}); rebuilding"));
                ix.rebuild(arena)?;
                ix.rebuilt_on_open = true;
            }
        }
        Ok(Loaded::Ready(Box::new(ix)))
    }

    /// Writes the node records changed since the last flush and the header (stamp `seq`) into
    /// the open write transaction `tx`, if this handle persists and still owns the stored
    /// graph (see the module docs).
    pub(crate) fn flush(&mut self, tx: &Connection, seq: i64) -> Result<()> {
        self.graph.set_stamp(seq.max(0) as u64);
        if !self.persist {
            self.graph.take_dirty();
            return Ok(());
        }
        let stored: Option<i64> = if tables_exist(tx)? {
            tx.prepare_cached(schema::HNSW_GET_EPOCH)?
                .query_row([], |r| r.get(0))
                .optional()?
        } else {
            None
        };
        if stored != Some(self.epoch) {
            tracing_warn(
                "another handle wrote this shard's hnsw index; this one stops persisting it",
            );
            self.persist = false;
            self.graph.take_dirty();
            return Ok(());
        }
        if self.rewrite_pending {
            tx.execute(schema::HNSW_CLEAR_NODES, [])?;
            self.graph.take_dirty();
            let mut put = tx.prepare_cached(schema::HNSW_INSERT_NODE)?;
            for node in 0..self.graph.id_bound() {
                if let Some(rec) = self.graph.encode_node(node) {
                    put.execute(params![i64::from(node), rec])?;
                }
            }
            self.rewrite_pending = false;
        } else {
            let mut put = tx.prepare_cached(schema::HNSW_PUT_NODE)?;
            let mut del = tx.prepare_cached(schema::HNSW_DELETE_NODE)?;
            for node in self.graph.take_dirty() {
                match self.graph.encode_node(node) {
                    Some(rec) => put.execute(params![i64::from(node), rec])?,
                    None => del.execute([i64::from(node)])?,
                };
            }
        }
        self.epoch += 1;
        tx.prepare_cached(schema::HNSW_SET_STATE)?
            .execute(params![self.graph.header(), self.epoch])?;
        Ok(())
    }

    /// Writes the whole graph, as it is, into new shadow tables in `tx` (another database:
    /// an in-memory shard's image); this handle's persistence state does not change.
    pub(crate) fn write_copy(&self, tx: &Connection) -> Result<()> {
        tx.execute_batch(schema::CREATE_HNSW_TABLES)?;
        tx.execute(schema::HNSW_INSERT_STATE, [self.graph.header()])?;
        let mut put = tx.prepare(schema::HNSW_INSERT_NODE)?;
        for node in 0..self.graph.id_bound() {
            if let Some(rec) = self.graph.encode_node(node) {
                put.execute(params![i64::from(node), rec])?;
            }
        }
        Ok(())
    }

    /// Creates the shadow tables in `tx` and writes the whole graph (a new index).
    pub(crate) fn create_in(&mut self, tx: &Connection, seq: i64) -> Result<()> {
        tx.execute_batch(schema::DROP_HNSW_TABLES)?;
        tx.execute_batch(schema::CREATE_HNSW_TABLES)?;
        self.graph.set_stamp(seq.max(0) as u64);
        tx.execute(schema::HNSW_INSERT_STATE, [self.graph.header()])?;
        self.epoch = 0;
        self.persist = true;
        self.rewrite_pending = true;
        self.flush(tx, seq)
    }

    /// Numbers for [`crate::Shard::stats`].
    pub(crate) fn stats(&self, planner: &PlannerParams) -> IndexStats {
        let p = self.graph.params();
        IndexStats {
            kind: "hnsw",
            m: p.m,
            ef_construction: p.ef_construction,
            ef_search: p.ef_search,
            nodes: self.graph.len(),
            deleted_ratio: self.graph.deleted_ratio(),
            bytes_in_memory: self.graph.memory_bytes(),
            persisted: self.persist,
            unfiltered_path: plan(planner, self.graph.len(), None, p.ef_search),
            rebuilt_on_open: self.rebuilt_on_open,
        }
    }
}

fn tracing_warn(msg: &str) {
    tracing::warn!(target: "sqlite_vector::index", "{msg}");
}
