//! The on-disk format of a shard: every DDL statement as a named constant, the format version,
//! and the migrations between versions.
//!
//! A shard is one SQLite database with two tables:
//!
//! * [`CREATE_META`]: `meta(key TEXT PRIMARY KEY, value TEXT)`, the shard's profile
//!   (`dimension`, `metric`, `embedding_model`, `durability`, `searchable_fields` (a JSON array of
//!   metadata paths), `site_id`, `format_version`, `created_at`).
//! * [`CREATE_ITEMS`]: `items`, one row per external id, alive or tombstoned. Besides the payload
//!   (`vector` BLOB of `dimension × 4` little-endian f32 bytes, `metadata` JSONB, `text`) every
//!   row carries the sync columns of ARCHITECTURE rule 7: `hlc` (hybrid logical clock of its last
//!   change), `site_id` (16 bytes, the site that made the change), `cl` (causal length: odd =
//!   alive, even = deleted; a delete leaves a tombstone with `vector`, `metadata` and `text` set
//!   to NULL) and `seq`, this shard's local change counter (the "db version" of cr-sqlite): every
//!   committed change gets a `seq` larger than any before it, so "changes since version V"
//!   is the indexed range query [`CHANGES_SINCE`], and another process's commits can be caught up
//!   incrementally.
//!
//! * [`CREATE_ITEMS_FTS`]: `items_fts`, the FTS5 index behind text and hybrid search.
//!
//! The `rowid` is internal: stable for the life of a row (tombstones keep theirs, so a
//! re-inserted id reuses its row) and used as the key of the in-memory arena.

/// Format version written by this build. Bump it, and add a step to [`MIGRATIONS`], whenever the
/// schema or the meaning of a column changes.
pub const FORMAT_VERSION: u32 = 1;

/// `application_id` written in the SQLite header (`PRAGMA application_id`), ASCII "SQVE", so
/// tools such as `file(1)` can recognise a shard.
pub const APPLICATION_ID: i32 = 0x5351_5645;

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
pub const CREATE_ITEMS_FTS: &str = "CREATE VIRTUAL TABLE items_fts USING fts5(\
     text, fields, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')";

/// Per-term document counts of [`CREATE_ITEMS_FTS`] (an `fts5vocab` view, no storage of its own).
pub const CREATE_ITEMS_FTS_VOCAB: &str =
    "CREATE VIRTUAL TABLE items_fts_vocab USING fts5vocab(items_fts, row)";

/// All DDL of the current format, in order.
pub const CREATE_ALL: &[&str] = &[
    CREATE_META,
    CREATE_ITEMS,
    CREATE_ITEMS_SEQ_INDEX,
    CREATE_ITEMS_FTS,
    CREATE_ITEMS_FTS_VOCAB,
];

/// Index a row's text (`?2`) and searchable field values (`?3`) under its rowid (`?1`).
pub const FTS_INSERT: &str = "INSERT INTO items_fts (rowid, text, fields) VALUES (?1, ?2, ?3)";

/// Remove a row from the full-text index.
pub const FTS_DELETE: &str = "DELETE FROM items_fts WHERE rowid = ?1";

/// Rows changed after local version `?1` (a `seq`), oldest first: the sync "changes since"
/// query, and the incremental catch-up of writes made by another connection.
pub const CHANGES_SINCE: &str = "SELECT rowid, id, vector, cl, seq, hlc FROM items \
     WHERE seq > ?1 ORDER BY seq";

/// Every row, alive or not, in table order, for loading the arena on open (tombstones are read
/// too, for the highest `seq` and `hlc`; their BLOBs are NULL so they cost little).
pub const LOAD_ALL: &str = "SELECT rowid, id, vector, cl, seq, hlc FROM items";

/// Insert a brand-new row (`?1` id, `?2` vector, `?3` metadata JSON text, `?4` text, `?5` hlc,
/// `?6` site id, `?7` seq). Causal length 1.
pub const INSERT_ITEM: &str =
    "INSERT INTO items (id, vector, metadata, text, hlc, site_id, cl, seq) \
     VALUES (?1, ?2, jsonb(?3), ?4, ?5, ?6, 1, ?7)";

/// Look up a row by external id: rowid, causal length.
pub const FIND_BY_ID: &str = "SELECT rowid, cl FROM items WHERE id = ?1";

/// Revive a tombstone or overwrite a live row by rowid (`?1`); `?2` is the new causal length.
pub const OVERWRITE_ITEM: &str = "UPDATE items SET vector = ?3, metadata = jsonb(?4), text = ?5, \
     hlc = ?6, site_id = ?7, cl = ?2, seq = ?8 WHERE rowid = ?1";

/// Turn a live row into a tombstone (`?1` rowid, `?2` new even causal length).
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

/// Migrations: `MIGRATIONS[i]` upgrades format `i + 1` to `i + 2`. Empty while only format 1
/// has been released.
pub const MIGRATIONS: &[&[&str]] = &[];
