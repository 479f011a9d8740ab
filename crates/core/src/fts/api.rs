//! The fast BM25 ranking (feature `fts5-api`): exact top k, with less work than
//! `ORDER BY bm25(items_fts)`.
//!
//! FTS5's own ranking scores every row that holds any query word, and `bm25()` reads each row's
//! length with one SQL lookup in `items_fts_docsize`; with a few common words in a query that
//! is thousands of rows (25,000 package descriptions, 6-word queries: 5,800 rows per query on
//! average, 2.6–4 ms). Three things make the same ranking cheaper:
//!
//! * **MaxScore pruning** (Turtle & Flood, "Query evaluation: strategies and optimizations",
//!   IP&M 1995). A word contributes at most `weight · idf · (k1 + 1)` to any row's score. With
//!   the query's words sorted by document frequency, the rows matching only the common words
//!   (set C) score below `Σ_C bound`; so when the k-th best score among the rows holding a
//!   rare word (set R) is above that, the top k is among those rows. The query then runs as
//!   `(R) AND (all words)`: FTS5 visits only rows with a rare word, and the function below
//!   scores them with every word (skipping the R group's repeated phrases). The k-th score is
//!   not known before running: a first pass takes the rarest words up to about `3·k` documents;
//!   if its k-th score does not clear the bound, a second pass moves into R exactly the words
//!   the first pass's k-th score cannot rule out (that score only rises with more rows, so the
//!   second pass is always exact). Measured on debian-minilm's known-item queries: 2,500
//!   instead of 5,800 rows at k = 100, 1,300 at k = 10, identical rankings and scores.
//! * **`sqlite_vector_bm25`**, an FTS5 auxiliary function with `bm25()`'s arithmetic (same
//!   `k1 = 1.2`, `b = 0.75`, IDF floor, phrase order, so the same `f64` scores) that takes the
//!   phrases' document frequencies as an argument instead of counting them per query, and reads
//!   row lengths from a per-connection cache instead of one `items_fts_docsize` lookup per row.
//! * **Per-connection caches**, kept as SQLite client data on the shard's connection: document
//!   frequencies of query words (the `items_fts_vocab` lookup walks the word's whole posting
//!   list: 0.7 ms per query for common words) and row lengths by rowid, both valid for one
//!   shard version (`State::last_seq`); row lengths are brought up to date by reading the rows
//!   changed since (the `items_seq` index), like the arena's catch-up.
//!
//! Shards with at least [`MIN_ROWS`] text rows skip all of this for most queries: they rank
//! from the in-memory index of [`super::textindex`] ([`indexed_query`]), with the same words,
//! document frequencies and arithmetic.
//!
//! Words are ASCII-folded by Rust only when they are ASCII (FTS5's `unicode61` tokenizer then
//! yields exactly the lowercased word); any other word's document frequency is counted by the
//! function as `bm25()` does, and it is never pruned.

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::types::Value as SqlValue;
use rusqlite::{ffi, Connection, OptionalExtension};

use super::textindex::{Phrase, TextIndex, MAX_ROWID, MIN_ROWS};
use super::{or_query, QueryWord, RankInput};
use crate::error::Result;
use crate::schema;

/// Name of the auxiliary function (SQL: `sqlite_vector_bm25(items_fts, dfs)`).
const FUNCTION: &CStr = c"sqlite_vector_bm25";
/// Name of the connection's client data holding [`TextState`].
const CLIENT_DATA: &CStr = c"sqlite_vector.text";
/// Name of the connection's client data holding its shard's [`super::SharedText`] ([`share`]).
const SHARED_DATA: &CStr = c"sqlite_vector.text_shared";

/// BM25 constants, as FTS5's `bm25()`.
pub(super) const K1: f64 = 1.2;
pub(super) const B: f64 = 0.75;
/// Per-phrase argument: the phrase only restricts the rows (MaxScore's R group), not scored.
const SKIP: f64 = -2.0;
/// Per-phrase argument: document frequency unknown; count it as `bm25()` does.
const COUNT: f64 = -1.0;
/// Row length not cached: ask FTS5 (`xColumnSize`).
const UNKNOWN_LEN: u32 = u32::MAX;
/// Query words cached per shard version before the cache starts over.
const MAX_CACHED_WORDS: usize = 4096;
/// Longest word (bytes) whose document frequency is looked up by its text; FTS5 truncates
/// very long tokens, so longer ones are counted by the function.
const MAX_LOOKUP_WORD: usize = 256;

/// The BM25 top `k` as `(rowid, score)`, best first, equal scores by rowid: exactly the ranking
/// of `SELECT rowid, -bm25(items_fts) … ORDER BY bm25(items_fts), rowid LIMIT k` over the kept
/// words (words in at least half of the live items are dropped first: their IDF is floored to
/// 1e-6 and they only make FTS5 visit nearly every row; all but the first if every word is).
/// The caller holds one read transaction, whose snapshot is at version `input.version`.
pub(super) fn rank(db: &Connection, input: &RankInput<'_>) -> Result<Vec<(i64, f64)>> {
    // A filter's rows, read once (one pass over the metadata), for the in-memory index; FTS5
    // with the filter as a subquery took ~1 s at 10,000 rows for a long OR query.
    let allowed: Option<std::collections::HashSet<i64>> = match &input.filter {
        None => None,
        Some((expr, values)) => {
            let mut stmt = db.prepare_cached(&crate::schema::filter_rowids(expr))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                r.get::<_, i64>(0)
            })?;
            Some(rows.collect::<rusqlite::Result<_>>()?)
        }
    };
    let state = TextState::of(db)?;
    let mut inner = state.lock();
    inner.at_version(db, input.version)?;
    if let Some(q) = indexed_query(&mut inner, state, db, input)? {
        let ix = q.index();
        let allow = |r: u32| allowed.as_ref().is_none_or(|a| a.contains(&i64::from(r)));
        return Ok(ix.top_k(&q.phrases, input.k, q.avgdl, |r| q.len(r), allow));
    }
    let kept = kept_words(&mut inner, db, input)?;
    let n_row = inner.n_row;
    let lengths = inner.lengths(db, input.version)?;
    drop(inner);
    // Rows are scored by the function with the lengths of this version (and with FTS5's own
    // lookups for the others); cleared on every exit.
    let _active = Active::set(state, lengths);
    let query = |n_rare: Option<usize>, terms: &[Term]| -> Result<Vec<(i64, f64)>> {
        let rare: Vec<&str> = match n_rare {
            Some(n) => terms[..n].iter().map(|t| t.text).collect(),
            None => Vec::new(),
        };
        run(db, input, &kept, &rare)
    };
    // Distinct words with their multiplicity: first those whose document frequency FTS5
    // counts (never pruned, no bound), then the others rarest first.
    let mut forced: Vec<Term> = Vec::new();
    let mut terms: Vec<Term> = Vec::new();
    for (w, df) in &kept {
        let list = if df.is_some() {
            &mut terms
        } else {
            &mut forced
        };
        match list.iter_mut().find(|t| t.folded == w.folded) {
            Some(t) => t.weight += 1.0,
            None => list.push(Term {
                text: w.text,
                folded: &w.folded,
                df: df.unwrap_or(0),
                weight: 1.0,
            }),
        }
    }
    if input.filter.is_some() || terms.len() < 2 {
        // A filter costs a pass over the metadata per query: one query, every row.
        return query(None, &[]);
    }
    terms.sort_by(|a, b| a.df.cmp(&b.df).then_with(|| a.folded.cmp(b.folded)));
    let n_forced = forced.len();
    let order: Vec<Term> = forced.into_iter().chain(terms).collect();
    let plan = Plan::new(&order, n_forced, input.k);
    if plan.first == order.len() {
        return query(None, &[]);
    }
    let first = query(Some(plan.first), &order)?;
    match plan.second(&order, n_row, kth(&first, input.k)) {
        None => Ok(first),
        Some(n) if n == order.len() => query(None, &[]),
        Some(n) => query(Some(n), &order),
    }
}

/// The words of `input` in fewer than half of the live items (all but the first if every word
/// is), each with the document frequency to pass for it.
fn kept_words<'q, 'w>(
    inner: &mut Inner,
    db: &Connection,
    input: &'q RankInput<'w>,
) -> Result<Vec<(&'q QueryWord<'w>, Option<i64>)>> {
    let mut kept = Vec::with_capacity(input.words.len());
    for w in input.words {
        let n = inner.df(db, &w.folded)?;
        if 2 * n <= input.n_live {
            kept.push((w, known_df(w, n)));
        }
    }
    if kept.is_empty() {
        let w = &input.words[0];
        let n = inner.df(db, &w.folded)?;
        kept.push((w, known_df(w, n)));
    }
    Ok(kept)
}

/// [`super::score_rows`]: the live rows `rowids` scored with the same words, document
/// frequencies and arithmetic as [`rank`] (so with the same `f64` scores).
///
/// FTS5 offers no cheap way to score given rows: `MATCH … AND rowid IN (…)` runs the whole
/// MATCH once per rowid (40–100 µs each on debian-minilm). When every kept word's document
/// frequency is known (ASCII words: each is one token, itself lowercased), each row's text and
/// searchable fields are read from `items` and cut into tokens by FTS5's own tokenizer, with
/// the index's arguments ([`schema::FTS_TOKENIZER`]); a word's term frequency is the number of
/// its tokens over both columns, the row's length comes from the same cache as [`rank`]'s.
/// Otherwise (or without the tokenizer) the rows go through the function, one MATCH per row.
pub(super) fn score_rows(
    db: &Connection,
    input: &RankInput<'_>,
    rowids: &[i64],
    fields: &[String],
) -> Result<Vec<(i64, f64)>> {
    let state = TextState::of(db)?;
    let mut inner = state.lock();
    inner.at_version(db, input.version)?;
    if let Some(q) = indexed_query(&mut inner, state, db, input)? {
        let ix = q.index();
        return Ok(rowids
            .iter()
            .filter_map(|&r| {
                let len = u32::try_from(r).map_or(0, |r| q.len(r));
                ix.score(r, &q.phrases, len, q.avgdl).map(|s| (r, s))
            })
            .collect());
    }
    let kept = kept_words(&mut inner, db, input)?;
    let lengths = inner.lengths(db, input.version)?;
    let (n_row, n_tok) = (inner.n_row, inner.n_tok);
    drop(inner);
    let dfs: Option<Vec<i64>> = kept.iter().map(|(_, df)| *df).collect();
    let mut tokenizer = state
        .tokenizer
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (Some(dfs), Some(tok)) = (dfs, tokenizer.as_mut()) else {
        drop(tokenizer);
        let _active = Active::set(state, lengths);
        return score_rows_by_match(db, &kept, rowids);
    };
    // Distinct words, and per phrase (kept word, in order) the index of its word.
    let mut terms: Vec<&str> = Vec::new();
    let phrase_term: Vec<usize> = kept
        .iter()
        .map(|(w, _)| match terms.iter().position(|t| *t == w.folded) {
            Some(i) => i,
            None => {
                terms.push(&w.folded);
                terms.len() - 1
            }
        })
        .collect();
    let idfs: Vec<f64> = dfs.iter().map(|&df| idf(n_row, df)).collect();
    let avgdl = n_tok as f64 / n_row as f64;
    let mut get = db.prepare_cached(schema::GET_LIVE_TEXT_FIELDS)?;
    let mut counts = TermCounts {
        terms: &terms,
        tf: vec![0; terms.len()],
        tokens: 0,
        lengths: terms.iter().fold(0, |m, t| m | length_bit(t.len())),
    };
    let mut out = Vec::with_capacity(rowids.len());
    for &rowid in rowids {
        let row: Option<(Option<String>, Option<String>)> = get
            .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((text, meta)) = row else { continue };
        let field_values = match meta {
            Some(m) if !fields.is_empty() => {
                let meta: serde_json::Value = serde_json::from_str(&m)?;
                crate::shard::searchable_values(fields, Some(&meta))
            }
            _ => String::new(),
        };
        counts.tf.iter_mut().for_each(|n| *n = 0);
        counts.tokens = 0;
        // As the index: blank text is not indexed.
        if let Some(t) = text.as_deref().filter(|t| !t.trim().is_empty()) {
            count_terms(tok, t, &mut counts)?;
        }
        count_terms(tok, &field_values, &mut counts)?;
        if counts.tf.iter().all(|&n| n == 0) {
            continue;
        }
        let len = match lengths.get(rowid) {
            UNKNOWN_LEN => counts.tokens,
            n => n,
        };
        let d = f64::from(len);
        let mut score = 0.0f64;
        for (&t, &idf) in phrase_term.iter().zip(&idfs) {
            let tf = f64::from(counts.tf[t]);
            if tf > 0.0 {
                score += idf * ((tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * d / avgdl)));
            }
        }
        out.push((rowid, score));
    }
    Ok(out)
}

/// Adds the tokens of `text` to `counts`: ASCII text cut by Rust, exactly as `unicode61` cuts
/// it (its token characters below 128 are the letters and digits, folded to lowercase; the
/// query words here are lowercase ASCII), anything else by the tokenizer.
fn count_terms(tok: &mut Tokenizer, text: &str, counts: &mut TermCounts<'_>) -> Result<()> {
    if !text.is_ascii() {
        return tok.tokens(
            text,
            ffi::FTS5_TOKENIZE_DOCUMENT,
            &mut |token, colocated| {
                // A colocated token (a synonym) shares its position: not a token of the row's
                // length.
                if !colocated {
                    counts.tokens = counts.tokens.saturating_add(1);
                }
                if token.is_empty() {
                    return;
                }
                for (t, tf) in counts.terms.iter().zip(counts.tf.iter_mut()) {
                    if t.as_bytes() == token {
                        *tf += 1;
                    }
                }
            },
        );
    }
    for token in text
        .as_bytes()
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
    {
        counts.add(token);
    }
    Ok(())
}

/// [`score_rows`] through the function: one MATCH over the kept words per row.
fn score_rows_by_match(
    db: &Connection,
    kept: &[(&QueryWord<'_>, Option<i64>)],
    rowids: &[i64],
) -> Result<Vec<(i64, f64)>> {
    let mut dfs: Vec<u8> = Vec::with_capacity(8 * kept.len());
    for (_, df) in kept {
        dfs.extend_from_slice(&df.map_or(COUNT, |n| n as f64).to_le_bytes());
    }
    let values = [
        SqlValue::Blob(dfs),
        SqlValue::Text(or_query(kept.iter().map(|(w, _)| w.text))),
        SqlValue::Text(serde_json::to_string(rowids)?),
    ];
    super::rows_of(
        db,
        &schema::fts_score_rows("sqlite_vector_bm25(items_fts, ?)"),
        &values,
    )
}

/// The document frequency to pass for `w` (exact for ASCII words), `None` when FTS5 must count.
fn known_df(w: &QueryWord<'_>, n: i64) -> Option<i64> {
    (w.text.is_ascii() && w.text.len() <= MAX_LOOKUP_WORD).then_some(n)
}

/// A query ready for the in-memory index ([`super::textindex`]), holding the shard's index
/// (locked: text queries of one shard take turns on it, about 0.1 ms each).
struct IndexedQuery<'s> {
    index: MutexGuard<'s, super::Slot>,
    /// The kept words' phrases, in order.
    phrases: Vec<Phrase>,
    lengths: Arc<Lengths>,
    avgdl: f64,
}

impl IndexedQuery<'_> {
    /// The index (present: [`text_index`] returns the lock only with one).
    fn index(&self) -> &TextIndex {
        &self.index.index
    }

    /// Row `r`'s length in tokens: FTS5's (`%_docsize`), else the index's own count.
    fn len(&self, r: u32) -> u32 {
        match self.lengths.get(i64::from(r)) {
            UNKNOWN_LEN => self.index().len(r),
            n => n,
        }
    }
}

/// The query of `input` on the connection's in-memory index at `input.version`, or `None` when
/// it runs through FTS5: a shard under [`MIN_ROWS`] text rows, an index that cannot be built
/// (see [`text_index`]), or a query word that is not one token of the index (a word
/// FTS5 would cut in several, or longer than [`MAX_LOOKUP_WORD`]). Words are kept or dropped
/// by the rule of [`kept_words`], with the index's document frequencies (FTS5's).
fn indexed_query<'s>(
    inner: &mut Inner,
    state: &'s TextState,
    db: &Connection,
    input: &RankInput<'_>,
) -> Result<Option<IndexedQuery<'s>>> {
    if inner.n_row < MIN_ROWS || input.words.is_empty() {
        return Ok(None);
    }
    let Some(guard) = text_index(db, state, input.version, input.fields)? else {
        return Ok(None);
    };
    let index = &guard.index;
    // Each word as the index's token: the lowercase word when ASCII, else what the
    // tokenizer makes of it (one token, or the query goes to FTS5).
    let mut tokens: Vec<Option<u32>> = Vec::with_capacity(input.words.len());
    for w in input.words {
        if w.text.len() > MAX_LOOKUP_WORD {
            return Ok(None);
        }
        if w.text.is_ascii() {
            tokens.push(index.term(w.folded.as_bytes()));
            continue;
        }
        let mut tokenizer = state
            .tokenizer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(tok) = tokenizer.as_mut() else {
            return Ok(None);
        };
        let mut got: Vec<Vec<u8>> = Vec::new();
        tok.tokens(w.text, ffi::FTS5_TOKENIZE_QUERY, &mut |t, _| {
            got.push(t.to_vec())
        })?;
        match got.as_slice() {
            [one] => tokens.push(index.term(one)),
            _ => return Ok(None),
        }
    }
    // The "half of the live items" rule of `kept_words`, on the lowercase word (a word that
    // is not its own token, such as "café", is looked up as typed and so always kept).
    let df_folded = |w: &QueryWord<'_>| index.df(index.term(w.folded.as_bytes()));
    let mut kept: Vec<usize> = (0..input.words.len())
        .filter(|&i| 2 * df_folded(&input.words[i]) <= input.n_live)
        .collect();
    if kept.is_empty() {
        kept.push(0);
    }
    let n_row = inner.n_row;
    let phrases = kept
        .into_iter()
        .map(|i| Phrase {
            term: tokens[i],
            idf: idf(n_row, index.df(tokens[i])),
        })
        .collect();
    Ok(Some(IndexedQuery {
        lengths: inner.lengths(db, input.version)?,
        avgdl: inner.n_tok as f64 / n_row as f64,
        index: guard,
        phrases,
    }))
}

/// One distinct query word for pruning.
struct Term<'a> {
    text: &'a str,
    folded: &'a str,
    df: i64,
    /// Occurrences among the kept words (each is one phrase, scored separately).
    weight: f64,
}

/// MaxScore's split points over the terms (forced ones first, then rarest first).
struct Plan {
    /// Terms in R for the first pass.
    first: usize,
}

impl Plan {
    fn new(order: &[Term<'_>], n_forced: usize, k: usize) -> Plan {
        // Forced terms are always in R (their bound is unknown); then the rarest words until
        // their posting lists reach about 3·k documents.
        let want = 3 * k as i64;
        let mut first = n_forced.min(order.len());
        let mut docs = 0i64;
        while first < order.len() && (first == n_forced || docs < want) {
            docs += order[first].df;
            first += 1;
        }
        Plan { first }
    }

    /// After a first pass whose k-th best score is `theta` (0 with fewer than k hits): `None`
    /// when its result is already exact, else how many terms the second pass keeps in R.
    fn second(&self, order: &[Term<'_>], n_row: i64, theta: f64) -> Option<usize> {
        let rest: f64 = order[self.first..].iter().map(|t| bound(t, n_row)).sum();
        if clears(rest, theta) {
            return None;
        }
        let mut n = order.len();
        let mut c = 0.0;
        while n > self.first && clears(c + bound(&order[n - 1], n_row), theta) {
            c += bound(&order[n - 1], n_row);
            n -= 1;
        }
        Some(n)
    }
}

/// `bound` strictly below `theta`, with a margin for rounding (sums in another order).
fn clears(bound: f64, theta: f64) -> bool {
    bound * (1.0 + 1e-9) < theta
}

/// Largest score `t` can add to any row: each of its phrases adds `idf · tf·(k1+1) / (tf + …)`,
/// which is below `idf · (k1 + 1)`.
fn bound(t: &Term<'_>, n_row: i64) -> f64 {
    t.weight * idf(n_row, t.df) * (K1 + 1.0)
}

/// FTS5's IDF: `ln((N − n + 0.5) / (n + 0.5))`, floored to 1e-6.
fn idf(n_row: i64, n_hit: i64) -> f64 {
    let x = (((n_row - n_hit) as f64 + 0.5) / (n_hit as f64 + 0.5)).ln();
    if x <= 0.0 {
        1e-6
    } else {
        x
    }
}

/// The k-th best score of a ranking (0 when it has fewer than k rows).
fn kth(ranked: &[(i64, f64)], k: usize) -> f64 {
    ranked.get(k.wrapping_sub(1)).map_or(0.0, |r| r.1)
}

/// Runs one ranking query: all kept words scored, rows restricted to those holding a word of
/// `rare` (all rows with any kept word when `rare` is empty).
fn run(
    db: &Connection,
    input: &RankInput<'_>,
    kept: &[(&QueryWord<'_>, Option<i64>)],
    rare: &[&str],
) -> Result<Vec<(i64, f64)>> {
    let all = or_query(kept.iter().map(|(w, _)| w.text));
    let expr = if rare.is_empty() {
        all
    } else {
        format!("({}) AND ({all})", or_query(rare.iter().copied()))
    };
    let mut dfs: Vec<u8> = Vec::with_capacity(8 * (rare.len() + kept.len()));
    for _ in rare {
        dfs.extend_from_slice(&SKIP.to_le_bytes());
    }
    for (_, df) in kept {
        let v = df.map_or(COUNT, |n| n as f64);
        dfs.extend_from_slice(&v.to_le_bytes());
    }
    super::ranked(
        db,
        input,
        "sqlite_vector_bm25(items_fts, ?)",
        vec![SqlValue::Blob(dfs), SqlValue::Text(expr)],
    )
}

// ------------------------------------------------------------------ per-connection state

/// Row lengths (tokens over all columns) by rowid; [`UNKNOWN_LEN`] where not cached.
#[derive(Clone, Default)]
struct Lengths(Vec<u32>);

/// The text-search state of one connection (SQLite client data, freed with the connection).
pub(crate) struct TextState {
    inner: Mutex<Inner>,
    /// Row lengths the function may use while the shard runs a ranking query.
    active: Mutex<Option<Arc<Lengths>>>,
    /// The index's tokenizer (`None` when FTS5 does not hand it out).
    tokenizer: Mutex<Option<Tokenizer>>,
    /// The shard's in-memory index ([`share`]; this connection's own when not shared).
    shared: Arc<super::SharedText>,
}

struct Inner {
    /// Version the document frequencies and the row count describe.
    version: Option<i64>,
    df: HashMap<String, i64>,
    /// FTS5's row count (its `N`).
    n_row: i64,
    /// Tokens in all rows and columns (FTS5's `xColumnTotalSize(-1)`).
    n_tok: i64,
    /// Row lengths and the version they describe.
    lengths: Option<(i64, Arc<Lengths>)>,
}

impl TextState {
    /// The state of `db`, created (and the function registered) on first use.
    fn of(db: &Connection) -> Result<&TextState> {
        // SAFETY: `handle` is the live connection `db` borrows; the client data, when set, is
        // an `Arc<TextState>` leaked by `register` below and freed only when the connection
        // closes, which cannot happen while `db` is borrowed for the returned lifetime.
        unsafe {
            let h = db.handle();
            let p = ffi::sqlite3_get_clientdata(h, CLIENT_DATA.as_ptr()) as *const TextState;
            if !p.is_null() {
                return Ok(&*p);
            }
            register(db)?;
            let p = ffi::sqlite3_get_clientdata(h, CLIENT_DATA.as_ptr()) as *const TextState;
            if p.is_null() {
                return Err(sqlite_error(ffi::SQLITE_ERROR, "text state missing").into());
            }
            Ok(&*p)
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Starts over when the shard's version moved.
    fn at_version(&mut self, db: &Connection, version: i64) -> Result<()> {
        if self.version == Some(version) {
            return Ok(());
        }
        self.df.clear();
        let block: Option<Vec<u8>> = db
            .prepare_cached(schema::FTS_TOTALS)?
            .query_row([], |r| r.get(0))
            .optional()?;
        // The averages record: the row count, then each column's token total (varints).
        let (mut n_row, mut n_tok) = (0i64, 0i64);
        if let Some(mut b) = block.as_deref() {
            let mut first = true;
            while let Some((v, used)) = varint(b) {
                if first {
                    n_row = v as i64;
                    first = false;
                } else {
                    n_tok = n_tok.saturating_add(v as i64);
                }
                b = &b[used..];
            }
        }
        self.n_row = n_row;
        self.n_tok = n_tok;
        self.version = Some(version);
        Ok(())
    }

    /// Documents holding `folded` (0 when none).
    fn df(&mut self, db: &Connection, folded: &str) -> Result<i64> {
        if let Some(&n) = self.df.get(folded) {
            return Ok(n);
        }
        let n: i64 = db
            .prepare_cached(schema::FTS_TERM_DF)?
            .query_row([folded], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if self.df.len() >= MAX_CACHED_WORDS {
            self.df.clear();
        }
        self.df.insert(folded.to_string(), n);
        Ok(n)
    }

    /// Row lengths at `version`: read whole the first time, then by the rows changed since.
    fn lengths(&mut self, db: &Connection, version: i64) -> Result<Arc<Lengths>> {
        if let Some((v, l)) = &self.lengths {
            if *v == version {
                return Ok(Arc::clone(l));
            }
        }
        let updated = match self.lengths.take() {
            Some((v, mut l)) if v < version => {
                let changed: Vec<i64> = db
                    .prepare_cached(schema::ROWIDS_CHANGED_SINCE)?
                    .query_map([v], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                if changed.len() > 1024 && changed.len() > l.0.len() / 8 {
                    None
                } else {
                    let lens = Arc::make_mut(&mut l);
                    let mut one = db.prepare_cached(schema::FTS_ONE_LENGTH)?;
                    for rowid in changed {
                        let sz: Option<Vec<u8>> =
                            one.query_row([rowid], |r| r.get(0)).optional()?;
                        lens.set(rowid, sz.as_deref().map_or(UNKNOWN_LEN, row_length));
                    }
                    Some(l)
                }
            }
            _ => None,
        };
        let l = match updated {
            Some(l) => l,
            None => {
                let mut lens = Lengths::default();
                let mut stmt = db.prepare_cached(schema::FTS_ALL_LENGTHS)?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let sz = r.get_ref(1)?.as_blob_or_null()?;
                    lens.set(r.get(0)?, sz.map_or(UNKNOWN_LEN, row_length));
                }
                Arc::new(lens)
            }
        };
        self.lengths = Some((version, Arc::clone(&l)));
        Ok(l)
    }
}

/// The shard's in-memory index at `version` (see [`super::textindex`]), shared by its
/// connections ([`super::SharedText`]) and returned locked: built whole the first time, then
/// brought up to date in place by the rows changed since (the `items_seq` index), like the row
/// lengths. `None` when it cannot be built (a rowid past [`MAX_ROWID`], or non-ASCII text
/// without FTS5's tokenizer) or when it is already past `version` (a reader on an older
/// snapshot: that query runs through FTS5).
fn text_index<'s>(
    db: &Connection,
    state: &'s TextState,
    version: i64,
    fields: &[String],
) -> Result<Option<MutexGuard<'s, super::Slot>>> {
    let mut slot = state
        .shared
        .slot
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if slot.version == Some(version) {
        return Ok(slot.built.then_some(slot));
    }
    if slot.version.is_some_and(|v| v > version) {
        return Ok(None);
    }
    let mut tokenizer = state
        .tokenizer
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut tok = tokenizer.as_mut();
    // Marked unusable while it changes: an error on the way leaves it to be built again.
    let since = slot.version.filter(|_| slot.built);
    slot.version = None;
    slot.built = false;
    let mut caught_up = false;
    if let Some(v) = since {
        let changed: Vec<i64> = db
            .prepare_cached(schema::ROWIDS_CHANGED_SINCE)?
            .query_map([v], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if changed.len() <= 1024 || changed.len() <= slot.index.n_docs() / 8 {
            let mut get = db.prepare_cached(schema::GET_LIVE_TEXT_FIELDS)?;
            caught_up = true;
            for rowid in changed {
                slot.index.remove(rowid);
                let row: Option<(Option<String>, Option<String>)> = get
                    .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((text, meta)) = row else { continue };
                if !add_row(&mut slot.index, &mut tok, fields, (rowid, text, meta))? {
                    caught_up = false;
                    break;
                }
            }
        }
    }
    if !caught_up {
        slot.index = TextIndex::default();
        let mut stmt = db.prepare_cached(schema::LIVE_TEXT_ROWS)?;
        let mut rows = stmt.query([])?;
        let mut ok = true;
        while let Some(r) = rows.next()? {
            let row = (r.get(0)?, r.get(1)?, r.get(2)?);
            if !add_row(&mut slot.index, &mut tok, fields, row)? {
                ok = false;
                break;
            }
        }
        if !ok {
            // Not buildable at this version: free what was built.
            slot.index = TextIndex::default();
        }
        caught_up = ok;
    }
    slot.version = Some(version);
    slot.built = caught_up;
    drop(tokenizer);
    Ok(caught_up.then_some(slot))
}

/// Adds one live row to `index` with the tokens the FTS5 index holds for it (its text when not
/// blank, then its searchable fields' values); `false` when it cannot (see [`text_index`]).
fn add_row(
    index: &mut TextIndex,
    tok: &mut Option<&mut Tokenizer>,
    fields: &[String],
    (rowid, text, meta): (i64, Option<String>, Option<String>),
) -> Result<bool> {
    // Rowids are dense (SQLite assigns max + 1); the index's per-row tables are indexed by
    // them, so a stray huge one leaves the shard to FTS5 rather than grow them.
    if !(0..=MAX_ROWID).contains(&rowid) || rowid as usize > 4 * index.rows_spanned() + (1 << 16) {
        return Ok(false);
    }
    let field_values = match meta {
        Some(m) if !fields.is_empty() => {
            let meta: serde_json::Value = serde_json::from_str(&m)?;
            crate::shard::searchable_values(fields, Some(&meta))
        }
        _ => String::new(),
    };
    let text = text.filter(|t| !t.trim().is_empty());
    let parts = [text.as_deref().unwrap_or(""), field_values.as_str()];
    if tok.is_none() && parts.iter().any(|p| !p.is_ascii()) {
        return Ok(false);
    }
    index.add(rowid, |f| {
        let mut lower = Vec::new();
        for part in parts {
            if part.is_ascii() {
                for t in part
                    .as_bytes()
                    .split(|b| !b.is_ascii_alphanumeric())
                    .filter(|t| !t.is_empty())
                {
                    lower.clear();
                    lower.extend(t.iter().map(u8::to_ascii_lowercase));
                    f(&lower);
                }
            } else if let Some(tok) = tok.as_deref_mut() {
                tok.tokens(part, ffi::FTS5_TOKENIZE_DOCUMENT, &mut |t, _| {
                    if !t.is_empty() {
                        f(t);
                    }
                })?;
            }
        }
        Ok(())
    })?;
    Ok(true)
}

impl Lengths {
    fn set(&mut self, rowid: i64, len: u32) {
        // Rowids are dense in shards (SQLite assigns max + 1); a stray huge one is left to
        // FTS5's own lookup rather than grow the table.
        let Ok(i) = usize::try_from(rowid) else {
            return;
        };
        if i >= self.0.len() {
            if len == UNKNOWN_LEN || i > 4 * self.0.len() + (1 << 16) {
                return;
            }
            self.0.resize(i + 1, UNKNOWN_LEN);
        }
        self.0[i] = len;
    }

    fn get(&self, rowid: i64) -> u32 {
        usize::try_from(rowid)
            .ok()
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(UNKNOWN_LEN)
    }
}

/// Sum of a `%_docsize.sz` blob's varints (tokens per column); [`UNKNOWN_LEN`] if malformed.
fn row_length(mut sz: &[u8]) -> u32 {
    let mut total: u64 = 0;
    while !sz.is_empty() {
        let Some((v, used)) = varint(sz) else {
            return UNKNOWN_LEN;
        };
        total += v;
        sz = &sz[used..];
    }
    u32::try_from(total)
        .ok()
        .filter(|&t| t != UNKNOWN_LEN)
        .unwrap_or(UNKNOWN_LEN)
}

/// SQLite's varint (big-endian groups of 7 bits, up to 9 bytes, the 9th with 8): value and
/// bytes used.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(9) {
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), 9));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Publishes row lengths to the function for one ranking; withdraws them when dropped.
struct Active<'a>(&'a TextState);

impl<'a> Active<'a> {
    fn set(state: &'a TextState, lengths: Arc<Lengths>) -> Active<'a> {
        *state.active.lock().unwrap_or_else(PoisonError::into_inner) = Some(lengths);
        Active(state)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        *self.0.active.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

// ------------------------------------------------------------------ the index's tokenizer

/// An instance of FTS5's tokenizer [`schema::FTS_TOKENIZER`] with the index's arguments.
struct Tokenizer {
    methods: ffi::fts5_tokenizer,
    handle: *mut ffi::Fts5Tokenizer,
}

// SAFETY: the instance belongs to no connection or thread (unicode61 keeps only its own
// buffers), and it is used under the `Mutex` of `TextState::tokenizer`, one call at a time.
unsafe impl Send for Tokenizer {}

impl Tokenizer {
    /// The tokenizer from `api`, `None` if FTS5 does not have it.
    ///
    /// # Safety
    /// `api` is null or the live connection's `fts5_api`.
    unsafe fn find(api: *mut ffi::fts5_api) -> Option<Tokenizer> {
        // SAFETY: FTS5 C API calls on the live `api`; `methods` is filled by xFindTokenizer
        // (a copy of the registered table), `args` outlive the xCreate call.
        unsafe {
            let find = api.as_ref()?.xFindTokenizer?;
            let mut user: *mut c_void = std::ptr::null_mut();
            let mut methods = ffi::fts5_tokenizer {
                xCreate: None,
                xDelete: None,
                xTokenize: None,
            };
            if find(api, schema::FTS_TOKENIZER.as_ptr(), &mut user, &mut methods) != ffi::SQLITE_OK
            {
                return None;
            }
            methods.xDelete?;
            methods.xTokenize?;
            let mut args: Vec<*const std::ffi::c_char> = schema::FTS_TOKENIZER_ARGS
                .iter()
                .map(|a| a.as_ptr())
                .collect();
            let mut handle: *mut ffi::Fts5Tokenizer = std::ptr::null_mut();
            let rc = methods.xCreate?(user, args.as_mut_ptr(), args.len() as c_int, &mut handle);
            (rc == ffi::SQLITE_OK && !handle.is_null()).then_some(Tokenizer { methods, handle })
        }
    }

    /// Calls `f` with each token of `text` (tokenized with `flags`), in order, and whether it
    /// is colocated (a synonym sharing the previous token's position).
    fn tokens(&mut self, text: &str, flags: c_int, f: &mut dyn FnMut(&[u8], bool)) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let n = c_int::try_from(text.len())
            .map_err(|_| sqlite_error(ffi::SQLITE_TOOBIG, "text too long to tokenize"))?;
        let Some(tokenize) = self.methods.xTokenize else {
            return Err(sqlite_error(ffi::SQLITE_MISUSE, "tokenizer lost").into());
        };
        let mut sink: &mut dyn FnMut(&[u8], bool) = f;
        // SAFETY: `handle` is the live instance from xCreate; `text` outlives the call; the
        // callback gets a pointer to `sink` (which outlives the call) as its context.
        let rc = unsafe {
            tokenize(
                self.handle,
                (&mut sink as *mut &mut dyn FnMut(&[u8], bool)).cast(),
                flags,
                text.as_ptr().cast(),
                n,
                Some(each_token),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_error(rc, "tokenizing text").into());
        }
        Ok(())
    }
}

/// The tokenizer's callback for [`Tokenizer::tokens`]: passes one token on.
unsafe extern "C" fn each_token(
    ctx: *mut c_void,
    tflags: c_int,
    token: *const std::ffi::c_char,
    n: c_int,
    _start: c_int,
    _end: c_int,
) -> c_int {
    // SAFETY: `ctx` points at the `&mut dyn FnMut(&[u8], bool)` of `Tokenizer::tokens`, `token`
    // at `n` bytes for the duration of the call.
    unsafe {
        let sink = &mut *(ctx as *mut &mut dyn FnMut(&[u8], bool));
        let colocated = tflags & ffi::FTS5_TOKEN_COLOCATED != 0;
        match usize::try_from(n) {
            Ok(n) if n > 0 && !token.is_null() => {
                sink(std::slice::from_raw_parts(token as *const u8, n), colocated)
            }
            _ => sink(&[], colocated),
        }
        ffi::SQLITE_OK
    }
}

impl Drop for Tokenizer {
    fn drop(&mut self) {
        if let Some(delete) = self.methods.xDelete {
            // SAFETY: `handle` came from xCreate and is deleted once.
            unsafe { delete(self.handle) }
        }
    }
}

/// Term frequencies of the distinct query words in one row, and its token count.
struct TermCounts<'a> {
    terms: &'a [&'a str],
    tf: Vec<u32>,
    tokens: u32,
    /// [`length_bit`]s of the words' lengths: most tokens are skipped by length alone.
    lengths: u64,
}

/// One bit per token length in bytes (63 for every length from 63 on).
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl TermCounts<'_> {
    /// Counts one (ASCII) token: compared to the lowercase query words without case.
    fn add(&mut self, token: &[u8]) {
        self.tokens = self.tokens.saturating_add(1);
        if self.lengths & length_bit(token.len()) == 0 {
            return;
        }
        for (t, tf) in self.terms.iter().zip(self.tf.iter_mut()) {
            if t.len() == token.len() && t.as_bytes().eq_ignore_ascii_case(token) {
                *tf += 1;
            }
        }
    }
}

// ------------------------------------------------------------------ the FTS5 function

fn sqlite_error(code: c_int, msg: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg.to_string()))
}

/// Registers `sqlite_vector_bm25` on `db` and stores the connection's [`TextState`].
///
/// # Safety
/// `db` must be a live connection (it is: borrowed).
unsafe fn register(db: &Connection) -> rusqlite::Result<()> {
    // SAFETY: (whole body) plain SQLite C API calls on the live handle; the statement is
    // finalized on every path; `fts5(?1)` writes the API pointer into `api` (the documented way
    // to obtain `fts5_api`); the leaked `Arc`s are freed by the destructors SQLite calls when
    // the connection closes.
    unsafe {
        let h = db.handle();
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let rc = ffi::sqlite3_prepare_v2(
            h,
            schema::FTS5_API.as_ptr(),
            -1,
            &mut stmt,
            std::ptr::null_mut(),
        );
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_error(rc, "fts5 is not available"));
        }
        let mut api: *mut ffi::fts5_api = std::ptr::null_mut();
        ffi::sqlite3_bind_pointer(
            stmt,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        ffi::sqlite3_step(stmt);
        ffi::sqlite3_finalize(stmt);
        let create = if api.is_null() || (*api).iVersion < 2 {
            None
        } else {
            (*api).xCreateFunction
        };
        let Some(create) = create else {
            return Err(sqlite_error(ffi::SQLITE_ERROR, "fts5 api unavailable"));
        };
        let state = Arc::new(TextState {
            inner: Mutex::new(Inner {
                version: None,
                df: HashMap::new(),
                n_row: 0,
                n_tok: 0,
                lengths: None,
            }),
            active: Mutex::new(None),
            tokenizer: Mutex::new(Tokenizer::find(api)),
            shared: shared_of(db).unwrap_or_default(),
        });
        let for_fn = Arc::into_raw(Arc::clone(&state)) as *mut c_void;
        let rc = create(api, FUNCTION.as_ptr(), for_fn, Some(bm25), Some(drop_state));
        if rc != ffi::SQLITE_OK {
            drop_state(for_fn);
            return Err(sqlite_error(rc, "registering sqlite_vector_bm25"));
        }
        let for_db = Arc::into_raw(state) as *mut c_void;
        let rc = ffi::sqlite3_set_clientdata(h, CLIENT_DATA.as_ptr(), for_db, Some(drop_state));
        if rc != ffi::SQLITE_OK {
            // SQLite has called the destructor on `for_db` already (it does when it fails).
            return Err(sqlite_error(rc, "storing the text state"));
        }
        Ok(())
    }
}

/// [`super::share_text`]: stores `shared` on `db`, for its [`TextState`] to use (set before the
/// connection's first text query).
pub(super) fn share(db: &Connection, shared: &Arc<super::SharedText>) -> Result<()> {
    let p = Arc::into_raw(Arc::clone(shared)) as *mut c_void;
    // SAFETY: `db.handle()` is the live connection; the client data is an `Arc` leaked here and
    // freed by `drop_shared` when replaced or when the connection closes.
    let rc = unsafe {
        ffi::sqlite3_set_clientdata(db.handle(), SHARED_DATA.as_ptr(), p, Some(drop_shared))
    };
    if rc != ffi::SQLITE_OK {
        // SQLite has called `drop_shared` on `p` already (it does when it fails).
        return Err(sqlite_error(rc, "storing the shared text index").into());
    }
    Ok(())
}

/// The [`super::SharedText`] stored on `db` by [`share`], if any.
fn shared_of(db: &Connection) -> Option<Arc<super::SharedText>> {
    // SAFETY: the client data, when set, is an `Arc<SharedText>` leaked by `share`, alive while
    // the connection is; the count is incremented before a new `Arc` is made from it.
    unsafe {
        let p = ffi::sqlite3_get_clientdata(db.handle(), SHARED_DATA.as_ptr())
            as *const super::SharedText;
        if p.is_null() {
            return None;
        }
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// Frees one leaked `Arc<SharedText>`.
unsafe extern "C" fn drop_shared(p: *mut c_void) {
    // SAFETY: `p` came from `Arc::into_raw` in `share`; SQLite calls the destructor once.
    unsafe { drop(Arc::from_raw(p as *const super::SharedText)) }
}

/// Frees one leaked `Arc<TextState>`.
unsafe extern "C" fn drop_state(p: *mut c_void) {
    // SAFETY: `p` came from `Arc::into_raw` in `register`, and SQLite calls each destructor once.
    unsafe { drop(Arc::from_raw(p as *const TextState)) }
}

/// What the function computes once per query (FTS5 auxiliary data).
struct QueryData {
    /// Per phrase: IDF, or NaN for a phrase that is not scored.
    idf: Vec<f64>,
    avgdl: f64,
    lengths: Option<Arc<Lengths>>,
}

unsafe extern "C" fn drop_query_data(p: *mut c_void) {
    // SAFETY: `p` came from `Box::into_raw` in `query_data`; FTS5 frees auxiliary data once.
    unsafe { drop(Box::from_raw(p as *mut QueryData)) }
}

unsafe extern "C" fn count_row(
    _api: *const ffi::Fts5ExtensionApi,
    _fts: *mut ffi::Fts5Context,
    n: *mut c_void,
) -> c_int {
    // SAFETY: `n` is the `i64` counter `query_data` passes to `xQueryPhrase`.
    unsafe { *(n as *mut i64) += 1 };
    ffi::SQLITE_OK
}

/// Fails with `SQLITE_MISUSE` when FTS5 offers no such method.
macro_rules! method {
    ($api:expr, $name:ident) => {
        match $api.$name {
            Some(f) => f,
            None => return Err(ffi::SQLITE_MISUSE),
        }
    };
}

/// The query's [`QueryData`], computed on the first row.
///
/// # Safety
/// Arguments as FTS5 passes them to an auxiliary function.
unsafe fn query_data(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    dfs: *mut ffi::sqlite3_value,
) -> std::result::Result<*const QueryData, c_int> {
    // SAFETY: (whole body) FTS5 API calls with the context FTS5 gave us; the blob pointer is
    // valid for `len` bytes until the value changes, and it is copied before any other call.
    unsafe {
        let p = method!(api, xGetAuxdata)(fts, 0) as *const QueryData;
        if !p.is_null() {
            return Ok(p);
        }
        let n_phrase = usize::try_from(method!(api, xPhraseCount)(fts)).unwrap_or(0);
        let len = usize::try_from(ffi::sqlite3_value_bytes(dfs)).unwrap_or(0);
        let blob = ffi::sqlite3_value_blob(dfs) as *const u8;
        if len != 8 * n_phrase || (len > 0 && blob.is_null()) {
            return Err(ffi::SQLITE_MISMATCH);
        }
        let dfs: Vec<f64> = if len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(blob, len)
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        };
        let (mut n_row, mut n_tok) = (0i64, 0i64);
        let rc = method!(api, xRowCount)(fts, &mut n_row);
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        let rc = method!(api, xColumnTotalSize)(fts, -1, &mut n_tok);
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        let mut idfs = Vec::with_capacity(n_phrase);
        for (i, &df) in dfs.iter().enumerate() {
            let n_hit = if df == SKIP {
                idfs.push(f64::NAN);
                continue;
            } else if df == COUNT {
                let mut n = 0i64;
                let rc = method!(api, xQueryPhrase)(
                    fts,
                    i as c_int,
                    (&mut n as *mut i64).cast(),
                    Some(count_row),
                );
                if rc != ffi::SQLITE_OK {
                    return Err(rc);
                }
                n
            } else if df >= 0.0 && df.fract() == 0.0 {
                df as i64
            } else {
                return Err(ffi::SQLITE_MISMATCH);
            };
            idfs.push(idf(n_row, n_hit));
        }
        let user = method!(api, xUserData)(fts) as *const TextState;
        let lengths = if user.is_null() {
            None
        } else {
            (*user)
                .active
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        let data = Box::into_raw(Box::new(QueryData {
            idf: idfs,
            avgdl: n_tok as f64 / n_row as f64,
            lengths,
        }));
        let rc = method!(api, xSetAuxdata)(fts, data.cast(), Some(drop_query_data));
        if rc != ffi::SQLITE_OK {
            // FTS5 frees the data itself when it cannot store it.
            return Err(rc);
        }
        Ok(data)
    }
}

/// One row's score, `bm25()`'s arithmetic over the scored phrases (see the module docs).
///
/// # Safety
/// Arguments as FTS5 passes them to an auxiliary function.
unsafe fn score(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    dfs: *mut ffi::sqlite3_value,
) -> std::result::Result<f64, c_int> {
    // SAFETY: (whole body) FTS5 API calls with the context FTS5 gave us; `data` stays valid for
    // the current query (FTS5 owns it until the cursor moves to another query).
    unsafe {
        let data = &*query_data(api, fts, dfs)?;
        let rowid = method!(api, xRowid)(fts);
        let mut len = data.lengths.as_ref().map_or(UNKNOWN_LEN, |l| l.get(rowid));
        if len == UNKNOWN_LEN {
            let mut n: c_int = 0;
            let rc = method!(api, xColumnSize)(fts, -1, &mut n);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            len = u32::try_from(n).unwrap_or(0);
        }
        let d = f64::from(len);
        let (first, next) = (method!(api, xPhraseFirst), method!(api, xPhraseNext));
        let mut score = 0.0f64;
        for (i, &idf) in data.idf.iter().enumerate() {
            if idf.is_nan() {
                continue;
            }
            let mut it = ffi::Fts5PhraseIter {
                a: std::ptr::null(),
                b: std::ptr::null(),
            };
            let (mut col, mut off): (c_int, c_int) = (0, 0);
            let rc = first(fts, i as c_int, &mut it, &mut col, &mut off);
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            let mut tf = 0.0f64;
            while col >= 0 {
                tf += 1.0;
                next(fts, &mut it, &mut col, &mut off);
            }
            // bm25() adds 0.0 for absent phrases; skipping them gives the same sum.
            if tf > 0.0 {
                score += idf * ((tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * d / data.avgdl)));
            }
        }
        Ok(score)
    }
}

/// `sqlite_vector_bm25(items_fts, dfs)`: the row's BM25 score (positive, larger is better).
/// `dfs` holds one little-endian `f64` per phrase of the MATCH expression: its document
/// frequency, `-1` to count it, or `-2` for a phrase that only restricts the rows.
unsafe extern "C" fn bm25(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_val: c_int,
    vals: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 calls this with a valid API table, context, and `n_val` argument values.
    unsafe {
        let r = if n_val == 1 && !api.is_null() {
            score(&*api, fts, *vals)
        } else {
            Err(ffi::SQLITE_MISUSE)
        };
        match r {
            Ok(s) => ffi::sqlite3_result_double(ctx, s),
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_like_sqlite() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff, 0x7f]), Some((16383, 2)));
        assert_eq!(varint(&[0x81]), None);
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(row_length(&[0x03, 0x81, 0x00]), 131);
        assert_eq!(row_length(&[0x83]), UNKNOWN_LEN);
    }

    #[test]
    fn idf_matches_fts5() {
        assert!((idf(100, 1) - (99.5f64 / 1.5).ln()).abs() < 1e-12);
        assert_eq!(idf(100, 60), 1e-6);
    }
}
