//! The storage layer's text: every SQL statement of the core (a shard's tables, its full-text
//! index, its HNSW shadow tables, the manager's catalog) as a named constant, the format
//! version and migrations, and the one decoder of item rows shared by loading, catch-up and
//! the index ([`ItemRow`]).
//!
//! A shard is one SQLite database:
//!
//! * [`CREATE_META`]: `meta(key TEXT PRIMARY KEY, value TEXT)`, the shard's profile
//!   (`dimension`, `metric`, `embedding_model`, `durability`, `searchable_fields` (a JSON array of
//!   metadata paths), `site_id`, `format_version`, `created_at`) and, when quantized, the int8
//!   `quantizer`; `site_id:wal`, the `seq` of the last transaction that put the site id's page
//!   into a new WAL.
//! * [`CREATE_ITEMS`]: `items`, one row per external id, alive or tombstoned. Besides the payload
//!   (`vector` BLOB of `dimension × 4` little-endian f32 bytes, `metadata` JSONB, `text`) every
//!   row carries the sync columns of ARCHITECTURE rule 7: `hlc` (hybrid logical clock of its last
//!   change), `site_id` (16 bytes, the site that made the change), `cl` (causal length: odd =
//!   alive, even = deleted; a delete leaves a tombstone with `vector`, `metadata` and `text` set
//!   to NULL) and `seq`, this shard's local change counter (the "db version" of cr-sqlite): every
//!   committed change gets a `seq` larger than any before it, so "changes since version V"
//!   is the indexed range query [`CHANGES_SINCE`], and another process's commits can be caught up
//!   incrementally.
//! * [`CREATE_ITEMS_FTS`] (created by the first item with text or searchable fields, in its
//!   transaction): `items_fts`, the FTS5 index behind text and hybrid search, and its vocabulary
//!   view [`CREATE_ITEMS_FTS_VOCAB`]. A shard of vectors only has none (its four shadow tables
//!   would be four of the nine pages of a closed tiny shard); text search there finds nothing.
//! * [`CREATE_SYNC_SEEN`] (created by the first change received from another site):
//!   `sync_seen`, the highest HLC received from each other site.
//! * [`CREATE_SYNC_CURSOR`] (created by the first sync cursor): `sync_cursor`, how far the
//!   changes of each other shard have been applied here.
//! * [`CREATE_SYNC_PEER`] (created by the first peer acknowledgement): `sync_peer`, how far
//!   each sync peer has applied this shard's changes, for tombstone collection (whose bound is
//!   the `meta` row `gc_horizon`).
//! * [`CREATE_HNSW_TABLES`] (only with an index): the graph's header and node records.
//!
//! The two optional tables need no format-version bump: a build that does not know them leaves
//! them alone (and the stamp catch-up of the index covers the writes such a build makes).
//!
//! The `rowid` is internal: stable for the life of a row (tombstones keep theirs, so a
//! re-inserted id reuses its row) and used as the key of the in-memory arena and as the HNSW
//! node id.

use rusqlite::Row;

use crate::error::{Error, Result};

/// Format version written by this build. Bump it, and add a step to [`MIGRATIONS`], whenever the
/// schema or the meaning of a column changes.
pub const FORMAT_VERSION: u32 = 1;

/// `application_id` written in the SQLite header (`PRAGMA application_id`), ASCII "SQVE", so
/// tools such as `file(1)` can recognise a shard.
pub const APPLICATION_ID: i32 = 0x5351_5645;

// ------------------------------------------------------------------ tables

/// The profile table.
pub const CREATE_META: &str = "CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID";

/// The items table (see the module docs for the meaning of each column).
pub const CREATE_ITEMS: &str = "CREATE TABLE items (
    rowid    INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    vector   BLOB,
    metadata BLOB,
    text     TEXT,
    hlc      INTEGER NOT NULL,
    site_id  BLOB NOT NULL,
    cl       INTEGER NOT NULL,
    seq      INTEGER NOT NULL
)";

/// Index behind [`CHANGES_SINCE`] and the catch-up of other processes' writes.
pub const CREATE_ITEMS_SEQ_INDEX: &str = "CREATE INDEX items_seq ON items(seq)";

/// Full-text index (FTS5) over each live item's `text` and the values of the metadata fields the
/// shard declares searchable (`fields`). Contentless (`content=''`): the text is stored once, in
/// `items`; `contentless_delete=1` lets a row be removed by rowid alone. Tokenizer `unicode61`
/// with diacritics removed, so "café" matches "cafe". The rowid is the item's rowid.
pub const CREATE_ITEMS_FTS: &str = "CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(\
     text, fields, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')";

/// The tokenizer of [`CREATE_ITEMS_FTS`] and its arguments, for code that tokenizes text as the
/// index does (hybrid search's re-scoring).
pub const FTS_TOKENIZER: &std::ffi::CStr = c"unicode61";
/// Arguments of [`FTS_TOKENIZER`], as in [`CREATE_ITEMS_FTS`].
pub const FTS_TOKENIZER_ARGS: [&std::ffi::CStr; 2] = [c"remove_diacritics", c"2"];

/// Per-term document counts of [`CREATE_ITEMS_FTS`] (an `fts5vocab` view, no storage of its own).
pub const CREATE_ITEMS_FTS_VOCAB: &str =
    "CREATE VIRTUAL TABLE IF NOT EXISTS items_fts_vocab USING fts5vocab(items_fts, row)";

/// Whether the full-text index exists ([`CREATE_ITEMS_FTS`]).
pub const FTS_EXISTS: &str =
    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'items_fts'";

/// The highest HLC received from each other site, whether its change won the merge or not:
/// what a sync peer has seen, for its watermarks. Created by the first remote change.
pub const CREATE_SYNC_SEEN: &str = "CREATE TABLE IF NOT EXISTS sync_seen (
    site_id BLOB PRIMARY KEY NOT NULL,
    hlc     INTEGER NOT NULL
) WITHOUT ROWID";

/// All DDL of the current format, in order.
pub const CREATE_ALL: &[&str] = &[CREATE_META, CREATE_ITEMS, CREATE_ITEMS_SEQ_INDEX];

/// Migrations: `MIGRATIONS[i]` upgrades format `i + 1` to `i + 2`, in one transaction with the
/// `format_version` update. Empty while only format 1 has been released.
pub const MIGRATIONS: &[&[&str]] = &[];

/// Whether the `sync_seen` table exists.
pub const SYNC_SEEN_EXISTS: &str =
    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_seen'";

// ------------------------------------------------------------------ meta

/// Whether the database has a `meta` table.
pub const META_EXISTS: &str =
    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'";
/// One `meta` value by key (`?1`).
pub const META_GET: &str = "SELECT value FROM meta WHERE key = ?1";
/// Writes the `seq` (`?1`) of this transaction in the `meta` row `site_id:wal`, so the page
/// that identifies the shard (the key sorts right after `site_id`: the same leaf page) is in
/// the WAL generation this transaction writes (see `Writer::wal_mark_needed`). The value
/// changes each time: SQLite does not rewrite a page whose row is unchanged.
pub const META_MARK_WAL: &str = "INSERT INTO meta (key, value) VALUES ('site_id:wal', ?1) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";
/// Adds a `meta` row (`?1` key, `?2` value).
pub const META_INSERT: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2)";
/// Sets a `meta` value (`?1` key, `?2` value), adding the row if missing.
pub const META_SET: &str = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)";
/// Removes a `meta` row by key (`?1`).
pub const META_DELETE: &str = "DELETE FROM meta WHERE key = ?1";
/// The `meta` key of the int8 quantizer (hex of `Quantizer::to_bytes`).
pub const META_QUANTIZER: &str = "quantizer";
/// 16 random bytes from SQLite's generator (a new site id).
pub const RANDOM_BLOB_16: &str = "SELECT randomblob(16)";
/// A random 64-bit integer from SQLite's generator.
pub const RANDOM_I64: &str = "SELECT random()";

// ------------------------------------------------------------------ items

/// Rows changed after local version `?1` (a `seq`), oldest first, decoded by [`ItemRow`]: the
/// incremental catch-up of writes made by another connection, and of the index.
pub const CHANGES_SINCE: &str = "SELECT rowid, id, vector, cl, seq, hlc FROM items \
     WHERE seq > ?1 ORDER BY seq";

/// Every row, alive or not, in table order, decoded by [`ItemRow`], for loading the arena on
/// open (tombstones are read too, for the highest `seq` and `hlc`; their BLOBs are NULL so they
/// cost little).
pub const LOAD_ALL: &str = "SELECT rowid, id, vector, cl, seq, hlc FROM items";

/// The change feed with whole registers, `?2` rows after local version `?1`, oldest first.
pub const CHANGE_FEED: &str = "SELECT id, seq, hlc, site_id, cl, vector, json(metadata), text \
     FROM items WHERE seq > ?1 ORDER BY seq LIMIT ?2";

/// The highest local version (`seq`) committed; `NULL` for an empty table.
pub const MAX_SEQ: &str = "SELECT max(seq) FROM items";

/// Live items.
pub const COUNT_LIVE: &str = "SELECT count(*) FROM items WHERE cl % 2 = 1";

/// Tombstones.
pub const COUNT_TOMBSTONES: &str = "SELECT count(*) FROM items WHERE cl % 2 = 0";

/// Insert a row (`?1` id, `?2` vector, `?3` metadata JSON text, `?4` text, `?5` hlc, `?6` site
/// id, `?7` seq, `?8` causal length: 1 for a local insert, any for a remote change).
pub const INSERT_ITEM: &str =
    "INSERT INTO items (id, vector, metadata, text, hlc, site_id, cl, seq) \
     VALUES (?1, ?2, jsonb(?3), ?4, ?5, ?6, ?8, ?7)";

/// Look up a row by external id: rowid, causal length.
pub const FIND_BY_ID: &str = "SELECT rowid, cl FROM items WHERE id = ?1";

/// Look up a row's version by external id: rowid, causal length, hlc, site id, vector.
pub const FIND_VERSION: &str = "SELECT rowid, cl, hlc, site_id, vector FROM items WHERE id = ?1";

/// A live row's text and metadata JSON by rowid (to rebuild its full-text row after an update).
pub const GET_TEXT_FIELDS: &str = "SELECT text, json(metadata) FROM items WHERE rowid = ?1";

/// A live row's text and metadata (JSON) by rowid (no row for a tombstone).
pub const GET_LIVE_TEXT_FIELDS: &str =
    "SELECT text, json(metadata) FROM items WHERE rowid = ?1 AND cl % 2 = 1";

/// Revive a tombstone or overwrite a live row by rowid (`?1`); `?2` is the new causal length.
pub const OVERWRITE_ITEM: &str = "UPDATE items SET vector = ?3, metadata = jsonb(?4), text = ?5, \
     hlc = ?6, site_id = ?7, cl = ?2, seq = ?8 WHERE rowid = ?1";

/// Update parts of a live row by rowid (`?1`): the vector when `?2` is not NULL, the metadata
/// when `?3` is true (to `?4`, JSON text or NULL), the text when `?5` is not NULL; stamped
/// `?6` hlc, `?7` site id, `?8` seq. Unchanged columns are not rewritten.
pub const UPDATE_ITEM: &str = "UPDATE items SET vector = coalesce(?2, vector), \
     metadata = CASE WHEN ?3 THEN jsonb(?4) ELSE metadata END, text = coalesce(?5, text), \
     hlc = ?6, site_id = ?7, seq = ?8 WHERE rowid = ?1";

/// Turn a row into a tombstone (`?1` rowid, `?2` new even causal length).
pub const TOMBSTONE_ITEM: &str = "UPDATE items SET vector = NULL, metadata = NULL, text = NULL, \
     hlc = ?3, site_id = ?4, cl = ?2, seq = ?5 WHERE rowid = ?1";

/// Fetch one live item by external id.
pub const GET_ITEM: &str = "SELECT rowid, vector, json(metadata), text FROM items \
     WHERE id = ?1 AND cl % 2 = 1";

/// Fetch the vector of a live row by rowid (for f32 rescoring in a quantized shard).
pub const GET_VECTOR: &str = "SELECT vector FROM items WHERE rowid = ?1 AND cl % 2 = 1";

/// Fetch the payload of a live row by rowid (for search hits).
pub const GET_HIT: &str =
    "SELECT id, json(metadata), text FROM items WHERE rowid = ?1 AND cl % 2 = 1";

/// Fetch the payload of a live row by external id (for fused hits).
pub const GET_PAYLOAD: &str = "SELECT json(metadata), text FROM items WHERE id = ?1 AND cl % 2 = 1";

/// A live item's metadata (JSON) and text by rowid.
pub const GET_PAYLOAD_BY_ROWID: &str =
    "SELECT json(metadata), text FROM items WHERE rowid = ?1 AND cl % 2 = 1";

/// The first live item whose vector BLOB is missing or not `?1` bytes long.
pub const FIND_BAD_VECTOR: &str = "SELECT id FROM items WHERE cl % 2 = 1 AND \
     (vector IS NULL OR length(vector) != ?1) LIMIT 1";

/// Every live item's id and vector (for the integrity check).
pub const LIVE_VECTORS: &str = "SELECT id, vector FROM items WHERE cl % 2 = 1";

/// The rowids of the live items whose metadata matches a filter's SQL expression (from
/// [`crate::Filter::to_sql`] over the column `metadata`).
pub fn filter_rowids(filter_expr: &str) -> String {
    format!("SELECT rowid FROM items WHERE cl % 2 = 1 AND ({filter_expr})")
}

/// SQLite's checks of the whole file.
pub const INTEGRITY_CHECK: &str = "PRAGMA integrity_check";

/// Writes a compacted copy of the database, as of one snapshot, to the new file `?1`.
pub const VACUUM_INTO: &str = "VACUUM INTO ?1";

/// Bytes of an in-memory database.
pub const DATABASE_BYTES: &str =
    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()";

/// Frees the page cache's unused memory.
pub const SHRINK_MEMORY: &str = "PRAGMA shrink_memory";

/// Counter that moves when another connection commits to the database.
pub const DATA_VERSION: &str = "PRAGMA data_version";

// ------------------------------------------------------------------ transactions

/// Starts a read transaction (a snapshot for several statements).
pub const BEGIN: &str = "BEGIN";
/// Starts a write transaction, taking the write lock at once.
pub const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";
/// Ends a transaction.
pub const COMMIT: &str = "COMMIT";
/// Abandons a transaction.
pub const ROLLBACK: &str = "ROLLBACK";
/// Copies WAL frames into the database file without blocking writers or readers: `busy`,
/// frames in the log, frames checkpointed.
pub const CHECKPOINT_PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
/// A checkpoint that copies the whole WAL into the database file and truncates the WAL to zero
/// bytes (run by the closer of a shard, with no busy timeout).
pub const CHECKPOINT_TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

// ------------------------------------------------------------------ sync

/// Raises the highest HLC received from site `?1` to `?2`.
pub const SYNC_SEEN_RAISE: &str = "INSERT INTO sync_seen (site_id, hlc) VALUES (?1, ?2) \
     ON CONFLICT (site_id) DO UPDATE SET hlc = max(hlc, excluded.hlc)";

/// Every site's highest received HLC, by site id.
pub const SYNC_SEEN_ALL: &str = "SELECT site_id, hlc FROM sync_seen ORDER BY site_id";

/// Sync cursors: for each other shard (by its site id), the highest of its local versions
/// (`seq`) up to which all of its changes are committed here. Written in the transaction that
/// applies them, so a cursor never runs ahead of the data. Created by the first cursor.
pub const CREATE_SYNC_CURSOR: &str = "CREATE TABLE IF NOT EXISTS sync_cursor (
    site_id BLOB PRIMARY KEY NOT NULL,
    seq     INTEGER NOT NULL
) WITHOUT ROWID";

/// Whether the `sync_cursor` table exists.
pub const SYNC_CURSOR_EXISTS: &str =
    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_cursor'";

/// Sets the cursor of site `?1` to `?2` (a reset may lower it: the other shard restarted its
/// versions).
pub const SYNC_CURSOR_SET: &str = "INSERT INTO sync_cursor (site_id, seq) VALUES (?1, ?2) \
     ON CONFLICT (site_id) DO UPDATE SET seq = excluded.seq";

/// Every cursor, by site id.
pub const SYNC_CURSOR_ALL: &str = "SELECT site_id, seq FROM sync_cursor ORDER BY site_id";

/// Which sync peer delivered an item's current version: `site` (the delivering shard's site
/// id) holds the version of row `rowid` stamped `seq` here. Valid while the row's `seq` is
/// still `seq` (a later write gives it another). Created by the first change applied from a
/// peer.
pub const CREATE_SYNC_VIA: &str = "CREATE TABLE IF NOT EXISTS sync_via (
    rowid INTEGER PRIMARY KEY,
    seq   INTEGER NOT NULL,
    site  BLOB NOT NULL
)";

/// Whether the `sync_via` table exists.
pub const SYNC_VIA_EXISTS: &str =
    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_via'";

/// Marks row `?1`, stamped `?2`, as delivered by site `?3`.
pub const SYNC_VIA_SET: &str = "INSERT INTO sync_via (rowid, seq, site) VALUES (?1, ?2, ?3) \
     ON CONFLICT (rowid) DO UPDATE SET seq = excluded.seq, site = excluded.site";

/// [`CHANGE_FEED`] with the site that delivered each row's current version (`NULL`: made
/// here, or before the mark).
pub const CHANGE_FEED_VIA: &str = "SELECT i.id, i.seq, i.hlc, i.site_id, i.cl, i.vector, \
     json(i.metadata), i.text, v.site FROM items i \
     LEFT JOIN sync_via v ON v.rowid = i.rowid AND v.seq = i.seq \
     WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2";

/// What each sync peer has acknowledged of this shard's change feed: for the peer shard with
/// site id `site_id`, on the node `node` (its identity, when the transport knows it), every
/// local version up to `acked` is committed there (its sync cursor for this shard, as its
/// hello or its acks said), last heard from at `seen_ms` (Unix ms, the shard's clock).
/// Tombstones every member has acknowledged may be collected ([`COLLECT_TOMBSTONES`]).
/// Created by the first acknowledgement.
pub const CREATE_SYNC_PEER: &str = "CREATE TABLE IF NOT EXISTS sync_peer (
    site_id BLOB PRIMARY KEY NOT NULL,
    acked   INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL,
    node    TEXT
) WITHOUT ROWID";

/// Whether the `sync_peer` table exists.
pub const SYNC_PEER_EXISTS: &str =
    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_peer'";

/// Records that peer `?1` (on node `?4`, or NULL) has acknowledged up to `?2`, heard from at
/// `?3` (it may move back: the peer restored an older copy).
pub const SYNC_PEER_SET: &str = "INSERT INTO sync_peer (site_id, acked, seen_ms, node) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (site_id) DO UPDATE SET acked = excluded.acked, seen_ms = excluded.seen_ms, \
     node = coalesce(excluded.node, node)";

/// Every peer's acknowledgement, by site id.
pub const SYNC_PEER_ALL: &str =
    "SELECT site_id, acked, seen_ms, node FROM sync_peer ORDER BY site_id";

/// The tombstones stamped in `(?1, ?2]`: how many, their highest HLC and causal length.
pub const TOMBSTONES_IN: &str =
    "SELECT count(*), coalesce(max(hlc), 0), coalesce(max(cl), 0) FROM items \
     WHERE seq > ?1 AND seq <= ?2 AND cl % 2 = 0";

/// Forgets which peer delivered the tombstones stamped in `(?1, ?2]` (before
/// [`COLLECT_TOMBSTONES`]).
pub const SYNC_VIA_FORGET_TOMBSTONES: &str = "DELETE FROM sync_via WHERE rowid IN \
     (SELECT rowid FROM items WHERE seq > ?1 AND seq <= ?2 AND cl % 2 = 0)";

/// Deletes the tombstones stamped in `(?1, ?2]` (sync's tombstone collection: every peer has
/// them). A tombstone stamped at or below an earlier collection's bound cannot exist: a later
/// delete stamps a new `seq`.
pub const COLLECT_TOMBSTONES: &str =
    "DELETE FROM items WHERE seq > ?1 AND seq <= ?2 AND cl % 2 = 0";

/// The `meta` key of the tombstone collection's bound: tombstones stamped at or below this
/// local version may have been collected (a peer whose cursor is below it needs a snapshot).
pub const META_GC_HORIZON: &str = "gc_horizon";
/// The `meta` key of the highest causal length among collected tombstones: a local insert
/// under an id with no row starts above it (the id may be one whose tombstone was collected).
pub const META_GC_CL: &str = "gc_cl";
/// The `meta` key of the highest HLC among collected tombstones (the clock never goes back
/// below it after a reopen).
pub const META_GC_HLC: &str = "gc_hlc";

/// Every live item's id and local version, with the sync peer that delivered its current
/// version (`NULL`: made here, or before the mark), for a snapshot's reconciliation.
pub const LIVE_HELD: &str = "SELECT i.id, i.seq, i.site_id, v.site FROM items i \
     LEFT JOIN sync_via v ON v.rowid = i.rowid AND v.seq = i.seq WHERE i.cl % 2 = 1";

/// [`LIVE_HELD`] for a shard without `sync_via`.
pub const LIVE_HELD_NO_VIA: &str = "SELECT id, seq, site_id, NULL FROM items WHERE cl % 2 = 1";

/// The version of every row stamped after `?1`, for the sync digest kept up to date.
pub const VERSIONS_SINCE: &str = "SELECT rowid, id, cl, hlc, site_id FROM items WHERE seq > ?1";

// ------------------------------------------------------------------ full-text index

/// Index a row's text (`?2`) and searchable field values (`?3`) under its rowid (`?1`).
pub const FTS_INSERT: &str = "INSERT INTO items_fts (rowid, text, fields) VALUES (?1, ?2, ?3)";

/// Merges all segments of the full-text index into one (FTS5's `optimize` command).
pub const FTS_OPTIMIZE: &str = "INSERT INTO items_fts (items_fts) VALUES ('optimize')";

/// Remove a row from the full-text index.
pub const FTS_DELETE: &str = "DELETE FROM items_fts WHERE rowid = ?1";

/// Documents holding a term (the `row` vocabulary view walks the term's posting list).
pub const FTS_TERM_DF: &str = "SELECT doc FROM items_fts_vocab WHERE term = ?1";
/// FTS5's totals record (rowid 1 of `%_data`): varint row count, then tokens per column.
pub const FTS_TOTALS: &str = "SELECT block FROM items_fts_data WHERE id = 1";
/// Every indexed row's per-column token counts (varints).
pub const FTS_ALL_LENGTHS: &str = "SELECT id, sz FROM items_fts_docsize";
/// Whether the full-text index holds any row.
pub const FTS_HAS_ROWS: &str = "SELECT EXISTS (SELECT 1 FROM items_fts_docsize)";
/// One row's per-column token counts.
pub const FTS_ONE_LENGTH: &str = "SELECT sz FROM items_fts_docsize WHERE id = ?1";
/// Every live row's rowid, text and metadata (JSON text), for the in-memory text index.
pub const LIVE_TEXT_ROWS: &str = "SELECT rowid, text, json(metadata) FROM items WHERE cl % 2 = 1";
/// Rows changed after a version (the `items_seq` index).
pub const ROWIDS_CHANGED_SINCE: &str = "SELECT rowid FROM items WHERE seq > ?1";
/// Obtains the FTS5 API pointer (bound with `sqlite3_bind_pointer` as `fts5_api_ptr`), for the
/// C API.
pub const FTS5_API: &std::ffi::CStr = c"SELECT fts5(?1)";

/// The BM25 ranking query: `rowid` and score `s` (larger is better) of the rows matching the
/// FTS5 expression (a bound parameter), optionally restricted to the live items matching a
/// metadata filter's SQL expression, best `k` first, equal scores by rowid. `score` is the
/// scoring expression: `sqlite_vector_bm25(items_fts, ?)` (with the document frequencies bound
/// first) or `-bm25(items_fts)`. `LIMIT` is a literal: a bound limit would make SQLite
/// re-prepare the statement on every run (it is pushed into the virtual table's plan).
pub fn fts_rank(score: &str, filter_expr: Option<&str>, k: usize) -> String {
    let mut sql = format!("SELECT rowid, {score} AS s FROM items_fts WHERE items_fts MATCH ?");
    if let Some(expr) = filter_expr {
        // The FTS index holds live rows only; the filter restricts the rowids through one
        // subquery, evaluated once. `+rowid`: without the unary plus SQLite hands the IN to
        // FTS5 as a rowid constraint and FTS5 runs the MATCH once per filtered row (243 ms
        // instead of 1.3 ms on 812 rows).
        sql.push_str(" AND +rowid IN (SELECT rowid FROM items WHERE cl % 2 = 1 AND (");
        sql.push_str(expr);
        sql.push_str("))");
    }
    sql.push_str(&format!(" ORDER BY s DESC, rowid LIMIT {k}"));
    sql
}

/// The BM25 scores (`score`, as in [`fts_rank`]) of the rows among a JSON array of rowids (the
/// last parameter) that match the FTS5 expression; a row holding none of its words is absent.
pub fn fts_score_rows(score: &str) -> String {
    format!(
        "SELECT rowid, {score} FROM items_fts WHERE items_fts MATCH ? \
         AND rowid IN (SELECT value FROM json_each(?))"
    )
}

// ------------------------------------------------------------------ HNSW shadow tables

/// The index's shadow tables: the graph header (80 bytes, format 1) and a counter bumped by
/// every write of graph rows; one record per node (= item rowid).
pub const CREATE_HNSW_TABLES: &str = "
CREATE TABLE IF NOT EXISTS hnsw_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    header BLOB NOT NULL,
    epoch  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hnsw_nodes (
    node   INTEGER PRIMARY KEY,
    record BLOB NOT NULL
);";

/// Drops the index's shadow tables.
pub const DROP_HNSW_TABLES: &str =
    "DROP TABLE IF EXISTS hnsw_nodes; DROP TABLE IF EXISTS hnsw_state;";

/// Whether both shadow tables exist.
pub const HNSW_TABLES_EXIST: &str = "SELECT count(*) = 2 FROM sqlite_schema \
     WHERE type = 'table' AND name IN ('hnsw_state', 'hnsw_nodes')";
/// The stored header and epoch.
pub const HNSW_GET_STATE: &str = "SELECT header, epoch FROM hnsw_state WHERE id = 1";
/// The stored epoch.
pub const HNSW_GET_EPOCH: &str = "SELECT epoch FROM hnsw_state WHERE id = 1";
/// A new index's header (`?1`), epoch 0.
pub const HNSW_INSERT_STATE: &str = "INSERT INTO hnsw_state (id, header, epoch) VALUES (1, ?1, 0)";
/// Replaces the header (`?1`) and epoch (`?2`).
pub const HNSW_SET_STATE: &str = "UPDATE hnsw_state SET header = ?1, epoch = ?2 WHERE id = 1";
/// Every node record.
pub const HNSW_ALL_NODES: &str = "SELECT node, record FROM hnsw_nodes";
/// Removes every node record.
pub const HNSW_CLEAR_NODES: &str = "DELETE FROM hnsw_nodes";
/// Adds a node record (`?1` node, `?2` record).
pub const HNSW_INSERT_NODE: &str = "INSERT INTO hnsw_nodes (node, record) VALUES (?1, ?2)";
/// Adds or replaces a node record.
pub const HNSW_PUT_NODE: &str = "INSERT OR REPLACE INTO hnsw_nodes (node, record) VALUES (?1, ?2)";
/// Removes a node record.
pub const HNSW_DELETE_NODE: &str = "DELETE FROM hnsw_nodes WHERE node = ?1";

// ------------------------------------------------------------------ the manager's catalog

/// `application_id` of a catalog database ("SQVC").
pub const CATALOG_APPLICATION_ID: i64 = 0x5351_5643;
/// Catalog schema version (`PRAGMA user_version`).
pub const CATALOG_VERSION: i64 = 1;
/// The catalog table. `AUTOINCREMENT`: an id is never handed out twice, so a handle opened
/// while its shard was dropped and re-created under the same name is recognised as stale.
pub const CATALOG_DDL: &str = "CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'dropping')),
    profile TEXT NOT NULL,
    created_at INTEGER NOT NULL
)";
/// The database's `application_id`.
pub const GET_APPLICATION_ID: &str = "PRAGMA application_id";
/// The database's `user_version`.
pub const GET_USER_VERSION: &str = "PRAGMA user_version";
/// Objects in the database.
pub const COUNT_SCHEMA_OBJECTS: &str = "SELECT count(*) FROM sqlite_schema";
/// Shards whose create or drop did not finish.
pub const CATALOG_PENDING: &str = "SELECT id FROM shards WHERE state != 'ready'";
/// Removes a shard's row (`?1` id).
pub const CATALOG_DELETE: &str = "DELETE FROM shards WHERE id = ?1";
/// A ready shard's id and profile JSON by name (`?1`).
pub const CATALOG_LOOKUP: &str =
    "SELECT id, profile FROM shards WHERE name = ?1 AND state = 'ready'";
/// A new shard's row (`?1` name, `?2` profile JSON, `?3` created_at), state `creating`.
pub const CATALOG_INSERT: &str = "INSERT INTO shards (name, state, profile, created_at) \
     VALUES (?1, 'creating', ?2, ?3)";
/// Marks a created shard ready (`?1` id).
pub const CATALOG_READY: &str = "UPDATE shards SET state = 'ready' WHERE id = ?1";
/// Ready shards whose names start with `?1` (every name character sorts below U+007F, so the
/// range is exactly the prefix), in name order.
pub const CATALOG_LIST: &str = "SELECT id, name, profile, created_at FROM shards \
     WHERE state = 'ready' AND name >= ?1 AND name < ?1 || char(127) ORDER BY name";
/// Marks a ready shard `dropping` by name (`?1`) and returns its id.
pub const CATALOG_DROPPING: &str =
    "UPDATE shards SET state = 'dropping' WHERE name = ?1 AND state = 'ready' RETURNING id";

// ------------------------------------------------------------------ decoding

/// One row of [`LOAD_ALL`] or [`CHANGES_SINCE`] (`rowid, id, vector, cl, seq, hlc`), borrowed
/// from the statement (a live row has `vector`, a tombstone none): the one decoder of item rows for the arena's load, the catch-up of other
/// connections' commits, and the index's catch-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemRow<'r> {
    /// The rowid, checked to be a valid node id ([`crate::index::node_of`]).
    pub rowid: i64,
    /// External id.
    pub id: &'r str,
    /// The vector BLOB of a live row; `None` for a tombstone.
    pub vector: Option<&'r [u8]>,
    /// Local version.
    pub seq: i64,
    /// HLC.
    pub hlc: i64,
}

impl<'r> ItemRow<'r> {
    /// Decodes a row, checking that a live row has a vector.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a rowid outside the node range, a live row without a vector, or
    /// a column of an unexpected type.
    pub fn read(row: &'r Row<'r>) -> Result<ItemRow<'r>> {
        let rowid = crate::index::node_of(row.get(0)?).map(i64::from)?;
        let id = row.get_ref(1)?.as_str()?;
        let cl: i64 = row.get(3)?;
        let vector = row.get_ref(2)?.as_blob_or_null()?;
        if cl % 2 == 1 && vector.is_none() {
            return Err(Error::Corrupt(format!("live item {id:?} has no vector")));
        }
        Ok(ItemRow {
            rowid,
            id,
            vector: if cl % 2 == 1 { vector } else { None },
            seq: row.get(4)?,
            hlc: row.get(5)?,
        })
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a string written by [`hex`]; `None` for an odd length or a non-hex digit.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
