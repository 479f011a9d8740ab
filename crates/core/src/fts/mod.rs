//! BM25 ranking of a shard's FTS5 index for [`crate::Shard::search_text`].
//!
//! With the feature `fts5-api` (default), [`api`] ranks through an FTS5 auxiliary function
//! registered with SQLite's C API: the exact top k of `bm25()` with MaxScore pruning and
//! per-connection caches (see its docs). Without it (builds whose SQLite exposes no FTS5 C API
//! to Rust), the ranking is FTS5's own `ORDER BY bm25(items_fts)` over the same words (those in
//! at least half of the items dropped first): the same scores and order, more work per query.
//!
//! A shard with at least [`textindex::MIN_ROWS`] text rows ranks (and scores given rows) from
//! an in-memory inverted index instead, [`textindex`], one per shard shared by its readers
//! ([`SharedText`]): the same scores, about ten times less work. Filtered queries, a reader on a
//! snapshot older than the index, and query words FTS5 would cut in several tokens still go
//! through FTS5.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use crate::error::Result;

#[cfg(feature = "fts5-api")]
mod api;
#[cfg(feature = "fts5-api")]
mod textindex;

/// A shard's in-memory text index, shared by its reader connections (one copy per shard, not
/// per connection). Handed to each new reader by [`share_text`].
#[derive(Default)]
pub(crate) struct SharedText {
    #[cfg(feature = "fts5-api")]
    slot: std::sync::Mutex<Slot>,
}

impl SharedText {
    /// Bytes the index holds (0 when none is built).
    pub(crate) fn memory_bytes(&self) -> usize {
        #[cfg(feature = "fts5-api")]
        {
            let slot = self
                .slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.built {
                slot.index.memory_bytes()
            } else {
                0
            }
        }
        #[cfg(not(feature = "fts5-api"))]
        {
            0
        }
    }
}

/// The in-memory text index of [`SharedText`] and the shard version it describes.
#[cfg(feature = "fts5-api")]
#[derive(Default)]
pub(crate) struct Slot {
    /// The version `index` describes (`None`: not built, or being changed).
    version: Option<i64>,
    /// Whether `index` is usable at `version` (`false`: it cannot be built there).
    built: bool,
    index: textindex::TextIndex,
}

/// Makes the text searches of `db` (a new connection, before its first text query) use
/// `shared`.
///
/// # Errors
/// [`crate::Error::Sqlite`] when SQLite cannot store it (out of memory).
pub(crate) fn share_text(db: &Connection, shared: &std::sync::Arc<SharedText>) -> Result<()> {
    #[cfg(feature = "fts5-api")]
    {
        api::share(db, shared)
    }
    #[cfg(not(feature = "fts5-api"))]
    {
        let _ = (db, shared);
        Ok(())
    }
}

/// A text query's words as FTS5 will see them.
pub(crate) struct QueryWord<'a> {
    /// The word as typed (quoted into the MATCH expression).
    pub text: &'a str,
    /// Lowercased, the key of the document-frequency cache.
    pub folded: String,
}

/// What [`rank`] needs from the shard's state.
#[cfg_attr(not(feature = "fts5-api"), allow(dead_code))]
pub(crate) struct RankInput<'a> {
    /// The shard version the connection's snapshot shows (`State::last_seq`).
    pub version: i64,
    /// Live items (for the "word in half of the documents" rule).
    pub n_live: i64,
    /// Hits wanted.
    pub k: usize,
    /// Filter as an SQL expression over `metadata` and its bound values.
    pub filter: Option<(String, Vec<SqlValue>)>,
    /// Query words in order.
    pub words: &'a [QueryWord<'a>],
    /// The shard's searchable metadata fields (indexed beside the text).
    pub fields: &'a [String],
}

/// The query words of `text` (see [`crate::shard::query_words`]), as FTS5 will see them.
pub(crate) fn words(text: &str) -> Result<Vec<QueryWord<'_>>> {
    Ok(crate::shard::query_words(text)?
        .into_iter()
        .map(|w| QueryWord {
            text: w,
            folded: w.to_lowercase(),
        })
        .collect())
}

/// The BM25 scores of the live rows `rowids` for the query of `input` (same words, same
/// arithmetic as [`rank`]), as `(rowid, score)`; a row holding none of the words is absent.
/// `fields` are the shard's searchable metadata fields. `input.k` and `input.filter` are not
/// used.
pub(crate) fn score_rows(
    db: &Connection,
    input: &RankInput<'_>,
    rowids: &[i64],
    fields: &[String],
) -> Result<Vec<(i64, f64)>> {
    if rowids.is_empty() || !exists(db)? {
        return Ok(Vec::new());
    }
    #[cfg(feature = "fts5-api")]
    {
        api::score_rows(db, input, rowids, fields)
    }
    #[cfg(not(feature = "fts5-api"))]
    {
        // One MATCH per row: FTS5 runs the expression for each rowid of the list.
        let _ = fields;
        let kept = plain_kept_words(db, input)?;
        let values = [
            SqlValue::Text(or_query(kept.into_iter())),
            SqlValue::Text(serde_json::to_string(rowids)?),
        ];
        rows_of(
            db,
            &crate::schema::fts_score_rows("-bm25(items_fts)"),
            &values,
        )
    }
}

/// The words of `input` that are in fewer than half of the live items (all but the first if
/// every word is): FTS5 floors the IDF of the others to 1e-6, and they only make it visit
/// nearly every row.
#[cfg(not(feature = "fts5-api"))]
fn plain_kept_words<'w>(db: &Connection, input: &RankInput<'w>) -> Result<Vec<&'w str>> {
    use rusqlite::OptionalExtension;
    let df = |w: &QueryWord<'_>| -> Result<i64> {
        Ok(db
            .prepare_cached(crate::schema::FTS_TERM_DF)?
            .query_row([&w.folded], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    };
    let mut kept = Vec::with_capacity(input.words.len());
    for w in input.words {
        if 2 * df(w)? <= input.n_live {
            kept.push(w.text);
        }
    }
    if kept.is_empty() {
        kept.push(input.words[0].text);
    }
    Ok(kept)
}

/// Whether the shard behind `db` has its full-text index (created by the first item with
/// text, [`crate::schema::CREATE_ITEMS_FTS`]); without it every text query finds nothing.
pub(crate) fn exists(db: &Connection) -> Result<bool> {
    Ok(db
        .prepare_cached(crate::schema::FTS_EXISTS)?
        .query_row([], |r| r.get(0))?)
}

/// Runs a query of `(rowid, score)` rows.
pub(super) fn rows_of(db: &Connection, sql: &str, values: &[SqlValue]) -> Result<Vec<(i64, f64)>> {
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The FTS5 expression matching any of `words`, each quoted (FTS5 syntax in user text is never
/// interpreted; the words contain no quotes, see `query_words`).
fn or_query<'w>(words: impl Iterator<Item = &'w str>) -> String {
    words
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The BM25 top `k` as `(rowid, score)`, best first (score larger is better), equal scores by
/// rowid. The caller holds one read transaction, whose snapshot is at version
/// `input.version`.
pub(crate) fn rank(db: &Connection, input: &RankInput<'_>) -> Result<Vec<(i64, f64)>> {
    if !exists(db)? {
        return Ok(Vec::new());
    }
    #[cfg(feature = "fts5-api")]
    {
        api::rank(db, input)
    }
    #[cfg(not(feature = "fts5-api"))]
    {
        let kept = plain_kept_words(db, input)?;
        ranked(
            db,
            input,
            "-bm25(items_fts)",
            vec![SqlValue::Text(or_query(kept.into_iter()))],
        )
    }
}

/// Runs the ranking query of [`crate::schema::fts_rank`] with the scoring expression `score`:
/// `values` are its leading parameters (the score's, then the MATCH expression's), the filter's
/// follow.
pub(super) fn ranked(
    db: &Connection,
    input: &RankInput<'_>,
    score: &str,
    mut values: Vec<SqlValue>,
) -> Result<Vec<(i64, f64)>> {
    let sql = crate::schema::fts_rank(
        score,
        input.filter.as_ref().map(|(e, _)| e.as_str()),
        input.k,
    );
    if let Some((_, v)) = &input.filter {
        values.extend(v.iter().cloned());
    }
    rows_of(db, &sql, &values)
}
