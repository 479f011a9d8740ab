//! The write side: [`Shard::transaction`] and its [`WriteTx`], the single path every change
//! takes, local or from another site.
//!
//! A transaction runs on the writer connection inside `BEGIN IMMEDIATE` (SQLite's write lock:
//! one writer across processes). It first catches up with other connections' commits, then
//! runs the caller's operations, which write rows and the full-text index and record what the
//! arena and the index must do. At the end, under the state lock, the arena and the index take
//! those changes and the index writes its changed rows into the same transaction, which then
//! commits. A failed commit reloads arena and index from the file (they were ahead of it).
//!
//! Each change is stamped (`seq`, HLC, site id, causal length) either locally (the next `seq`,
//! [`crate::clock::hlc_after`] of the injected clock, this shard's site id) or, for
//! [`WriteTx::apply_remote`], with the other site's HLC, site id and causal length after
//! [`crate::change::merge`] decided that it wins.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::types::{
    check_text, check_vector, metadata_json, parse_metadata, searchable_values, validate_id,
};
use super::{catchup, corrupt_item, open, Item, NewItem, Shard, State, Update};
use crate::change::{merge, Applied, Change, Merge, SiteId, Version};
use crate::clock::{hlc_after, hlc_millis};
use crate::codec;
use crate::error::{Error, Result};
use crate::schema;

/// What the arena and the index must do once a transaction commits.
enum Op {
    /// A new or changed vector.
    Put {
        rowid: i64,
        id: String,
        vector: Vec<f32>,
    },
    /// A deleted item.
    Remove { rowid: i64 },
}

/// A write transaction in progress, from [`Shard::transaction`]. Every operation is applied in
/// order; all of them commit together when the closure returns `Ok`, none when it returns
/// `Err`. An operation that fails leaves the transaction as it was before it, except for an
/// internal failure after it started writing (I/O, a damaged file), which aborts the whole
/// transaction ([`Error::TransactionAborted`] at commit if the closure carried on).
pub struct WriteTx<'a> {
    shard: &'a Shard,
    db: &'a Connection,
    rng: &'a mut u64,
    /// The last local version (`seq`) assigned.
    seq: i64,
    /// The last HLC produced or received.
    hlc: i64,
    ops: Vec<Op>,
    /// Highest HLC received per other site in this transaction.
    seen: HashMap<SiteId, i64>,
    /// Whether any row was written.
    wrote: bool,
    /// Why the transaction cannot commit.
    failed: Option<String>,
    /// Whether the full-text index exists (asked once per transaction; created by the first
    /// text, see [`schema::CREATE_ITEMS_FTS`]).
    fts: std::cell::Cell<Option<bool>>,
    /// The causal length of an item inserted under an id with no row, once read
    /// ([`WriteTx::fresh_cl`]).
    fresh_cl: Option<i64>,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// A rowid SQLite just assigned, checked to be usable as an index node id.
fn checked_new_rowid(rowid: i64) -> Result<i64> {
    crate::index::node_of(rowid).map(i64::from).map_err(|_| {
        Error::InvalidArgument(format!(
            "the shard has used all {} rowids an item can have",
            crate::index::MAX_NODE
        ))
    })
}

fn exec(db: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<usize> {
    Ok(db.prepare_cached(sql)?.execute(p)?)
}

impl Shard {
    /// Runs `f` in one write transaction and commits what it did: any number of inserts,
    /// upserts, updates, deletes and changes from other sites, acknowledged together (durable
    /// once this returns `Ok`). When `f` returns `Err`, nothing of it is written and the error
    /// is returned.
    ///
    /// ```
    /// use sqlite_vector::{Metric, NewItem, Profile, Shard, Update};
    /// let shard = Shard::in_memory(&Profile::new(2, Metric::Cosine))?;
    /// shard.transaction(|tx| {
    ///     tx.insert(NewItem::new(vec![1.0, 0.0]).with_id("a"))?;
    ///     tx.insert(NewItem::new(vec![0.0, 1.0]).with_id("b"))?;
    ///     tx.update("a", Update { metadata: Some(serde_json::json!({"uses": 1})), ..Default::default() })
    /// })?;
    /// assert_eq!(shard.len(), 2);
    /// # Ok::<(), sqlite_vector::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first error `f` returns; [`Error::TransactionAborted`] when an operation failed
    /// after it had started writing and `f` carried on; [`Error::Busy`] when another process
    /// holds the write lock past the busy timeout; [`Error::Sqlite`] / [`Error::Io`] for the
    /// commit.
    pub fn transaction<R>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<R>) -> Result<R> {
        let mut guard = self.lock_writer()?;
        let writer = &mut *guard;
        let _mark = super::TransactionMark::set(self);
        let mark_wal = writer.wal_mark_needed(&self.readers);
        let db = &writer.db;
        exec(db, schema::BEGIN_IMMEDIATE, [])?;
        let ran = (|| {
            // Other connections' commits first: the next `seq` must be above all of them.
            // `data_version` of this connection moves only when another one commits.
            let dv: i64 = db
                .prepare_cached(schema::DATA_VERSION)?
                .query_row([], |r| r.get(0))?;
            let (mut seq, mut hlc) = {
                let st = self.read_state();
                (st.last_seq, st.last_hlc)
            };
            if writer.seen_data_version != Some(dv) && catchup::max_seq(db)? > seq {
                let mut st = self.write_state();
                self.catch_up(db, &mut st)?;
                (seq, hlc) = (st.last_seq, st.last_hlc);
            }
            writer.seen_data_version = Some(dv);
            let mut tx = WriteTx {
                shard: self,
                db,
                rng: &mut writer.rng,
                seq,
                hlc,
                ops: Vec::new(),
                seen: HashMap::new(),
                wrote: false,
                failed: None,
                fts: std::cell::Cell::new(None),
                fresh_cl: None,
            };
            let r = f(&mut tx)?;
            if let Some(why) = tx.failed.take() {
                return Err(Error::TransactionAborted(why));
            }
            tx.record_seen()?;
            Ok((r, tx.seq, tx.hlc, tx.ops, tx.wrote))
        })();
        let (r, seq, hlc, ops, wrote) = match ran {
            Ok(done) => done,
            Err(e) => {
                rollback(db);
                return Err(e);
            }
        };
        if !wrote {
            rollback(db);
            return Ok(r);
        }
        let written = ops.len();
        let mut st = self.write_state();
        // The arena and the index take the changes before the commit, so the index rows can be
        // written in the same transaction. Past this point any failure leaves them ahead of the
        // database: reload both from it.
        let applied = self
            .apply(&mut st, ops, db, seq)
            .and_then(|()| {
                if mark_wal {
                    exec(db, schema::META_MARK_WAL, [seq.to_string()]).map(drop)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| exec(db, schema::COMMIT, []).map(drop));
        if let Err(e) = applied {
            rollback(db);
            if let Err(reload) = open::load(db, &mut st, &self.profile, false, &self.readers) {
                return Err(Error::Corrupt(format!(
                    "{e}; reloading the shard after the failed write failed too: {reload}"
                )));
            }
            return Err(e);
        }
        st.last_seq = st.last_seq.max(seq);
        st.last_hlc = st.last_hlc.max(hlc);
        st.version += 1;
        let n_live = st.arena.len();
        drop(st);
        guard.after_write(written, n_live);
        guard.after_commit(&self.readers, mark_wal);
        Ok(r)
    }

    /// Applies a transaction's operations to the arena and the index, and writes the index rows
    /// that changed into `db`'s open transaction (stamped `seq`).
    fn apply(&self, st: &mut State, ops: Vec<Op>, db: &Connection, seq: i64) -> Result<()> {
        let puts = ops.iter().filter(|o| matches!(o, Op::Put { .. })).count();
        st.arena.reserve_rows(puts);
        let State { arena, index, .. } = st;
        for op in ops {
            match op {
                Op::Put { rowid, id, vector } => {
                    arena.upsert(rowid, &id, &vector);
                    if let Some(ix) = index.as_mut() {
                        ix.put(rowid, arena)?;
                    }
                }
                Op::Remove { rowid } => {
                    arena.remove(rowid);
                    if let Some(ix) = index.as_mut() {
                        ix.remove(rowid, arena);
                    }
                }
            }
        }
        if let Some(ix) = index.as_mut() {
            ix.rebuild_if_worn(arena)?;
            ix.flush(db, seq)?;
        }
        Ok(())
    }

    /// Inserts one item in its own transaction and returns its id.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if the id is live (a deleted id may be reused),
    /// [`Error::DimensionMismatch`], [`Error::EmptyVector`], [`Error::NonFinite`],
    /// [`Error::ZeroVector`] (cosine shards), [`Error::InvalidId`], [`Error::InvalidMetadata`],
    /// [`Error::InvalidArgument`] (text too long); nothing is written on error.
    pub fn insert(&self, item: NewItem) -> Result<String> {
        self.transaction(|tx| tx.insert(item))
    }

    /// Inserts or replaces one item and returns its id.
    ///
    /// # Errors
    /// As [`Shard::insert`], except that a live id is replaced instead of refused.
    pub fn upsert(&self, item: NewItem) -> Result<String> {
        self.transaction(|tx| tx.upsert(item))
    }

    /// Inserts all `items` in one transaction: all or nothing. Returns their ids in order.
    ///
    /// # Errors
    /// As [`Shard::insert`] for any item; a duplicate id within the batch or against a live
    /// item is [`Error::DuplicateId`]. On any error nothing of the batch is written.
    pub fn insert_batch(&self, items: Vec<NewItem>) -> Result<Vec<String>> {
        for item in &items {
            check_item(self, item)?;
        }
        self.transaction(|tx| items.into_iter().map(|it| tx.insert(it)).collect())
    }

    /// Inserts or replaces all `items` in one transaction: all or nothing.
    ///
    /// # Errors
    /// As [`Shard::insert_batch`], but live ids are replaced; an id repeated within the batch
    /// keeps its last value.
    pub fn upsert_batch(&self, items: Vec<NewItem>) -> Result<Vec<String>> {
        for item in &items {
            check_item(self, item)?;
        }
        self.transaction(|tx| items.into_iter().map(|it| tx.upsert(it)).collect())
    }

    /// Changes the vector, metadata and/or text of a live item. Only what is given is
    /// rewritten: a metadata-only update touches neither the vector nor the full-text index
    /// (unless the shard indexes metadata fields for text search).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or deleted id; [`Error::InvalidArgument`] when the
    /// update changes nothing; vector and metadata errors as [`Shard::insert`].
    pub fn update(&self, id: &str, update: Update) -> Result<()> {
        self.transaction(|tx| tx.update(id, update))
    }

    /// Deletes a live item, leaving a tombstone (causal length made even) for sync.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or already deleted id.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.transaction(|tx| tx.delete(id))
    }
}

/// Ends the writer's transaction without committing, if one is open.
fn rollback(db: &Connection) {
    if !db.is_autocommit() {
        // A failed rollback leaves SQLite to roll back when the connection next begins or
        // closes; nothing here could do better.
        let _ = db.execute_batch(schema::ROLLBACK);
    }
}

/// Checks an item for `shard` without writing.
fn check_item(shard: &Shard, item: &NewItem) -> Result<()> {
    if let Some(id) = &item.id {
        validate_id(id)?;
    }
    check_vector(&shard.profile, &item.vector)?;
    metadata_json(item.metadata.as_ref())?;
    if let Some(t) = &item.text {
        check_text(t)?;
    }
    Ok(())
}

impl WriteTx<'_> {
    /// Inserts an item; returns its id (generated when the item has none).
    ///
    /// # Errors
    /// As [`Shard::insert`].
    pub fn insert(&mut self, item: NewItem) -> Result<String> {
        self.put(item, false)
    }

    /// Inserts or replaces an item; returns its id.
    ///
    /// # Errors
    /// As [`Shard::upsert`].
    pub fn upsert(&mut self, item: NewItem) -> Result<String> {
        self.put(item, true)
    }

    /// Reads a live item as this transaction sees it (its own writes included).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or deleted id; [`Error::Corrupt`] for a stored vector
    /// of the wrong length.
    pub fn get(&self, id: &str) -> Result<Item> {
        self.shard.get_on(self.db, id)
    }

    /// The next local stamp (`seq`, HLC), not yet taken: an operation takes it with
    /// [`WriteTx::take`] once its first write succeeded.
    fn stamp(&self) -> (i64, i64) {
        (self.seq + 1, hlc_after(self.hlc, self.shard.clock.now_ms()))
    }

    fn take(&mut self, (seq, hlc): (i64, i64)) {
        self.seq = seq;
        self.hlc = hlc;
        self.wrote = true;
    }

    /// Marks the transaction aborted when `r` failed after its operation started writing.
    fn finish<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.failed
                .get_or_insert_with(|| format!("an operation failed after writing: {e}"));
        }
        r
    }

    fn generate_id(&mut self) -> String {
        // xorshift64*: ids only need to be unique, and collisions are retried by the caller.
        let mut x = *self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *self.rng = x;
        format!("{:016x}", x.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }

    fn put(&mut self, item: NewItem, replace: bool) -> Result<String> {
        check_item(self.shard, &item)?;
        let generated = item.id.is_none();
        let mut id = match item.id {
            Some(id) => id,
            None => self.generate_id(),
        };
        let blob = codec::as_blob(&item.vector);
        let meta = metadata_json(item.metadata.as_ref())?;
        let stamp = self.stamp();
        let (seq, hlc) = stamp;
        let site = &self.shard.site_id.0[..];
        let mut replaced = false;
        let fresh_cl = self.fresh_cl()?;
        let rowid = loop {
            let r = self
                .db
                .prepare_cached(schema::INSERT_ITEM)?
                .execute(params![id, blob, meta, item.text, hlc, site, seq, fresh_cl]);
            match r {
                Ok(_) => break checked_new_rowid(self.db.last_insert_rowid())?,
                Err(e) if is_unique_violation(&e) => {
                    let (rowid, cl): (i64, i64) = self
                        .db
                        .prepare_cached(schema::FIND_BY_ID)?
                        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    let alive = cl % 2 == 1;
                    if alive && generated {
                        id = self.generate_id();
                        continue;
                    }
                    if alive && !replace {
                        return Err(Error::DuplicateId(id));
                    }
                    let new_cl = if alive { cl } else { cl + 1 };
                    exec(
                        self.db,
                        schema::OVERWRITE_ITEM,
                        params![rowid, new_cl, blob, meta, item.text, hlc, site, seq],
                    )?;
                    replaced = alive;
                    break rowid;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.take(stamp);
        let indexed = (|| {
            if replaced {
                self.fts_delete(rowid)?;
            }
            self.index_text(rowid, item.text.as_deref(), item.metadata.as_ref())
        })();
        self.finish(indexed)?;
        self.ops.push(Op::Put {
            rowid,
            id: id.clone(),
            vector: item.vector,
        });
        Ok(id)
    }

    /// Adds a row's text and searchable metadata values to the full-text index (nothing when
    /// both are empty).
    fn index_text(&self, rowid: i64, text: Option<&str>, metadata: Option<&Value>) -> Result<()> {
        let fields = searchable_values(&self.shard.profile.searchable_fields, metadata);
        let text = text.filter(|t| !t.trim().is_empty());
        if text.is_none() && fields.is_empty() {
            return Ok(());
        }
        if !self.fts_exists()? {
            self.db.execute_batch(schema::CREATE_ITEMS_FTS)?;
            self.db.execute_batch(schema::CREATE_ITEMS_FTS_VOCAB)?;
            self.fts.set(Some(true));
        }
        exec(self.db, schema::FTS_INSERT, params![rowid, text, fields])?;
        // Hybrid search now reads rows at random: see `open::load`.
        if let Some(pool) = &self.shard.readers.0 {
            pool.set_mapped(true);
        }
        Ok(())
    }

    /// Whether the shard has its full-text index (see [`schema::CREATE_ITEMS_FTS`]).
    fn fts_exists(&self) -> Result<bool> {
        if let Some(known) = self.fts.get() {
            return Ok(known);
        }
        let exists = self
            .db
            .prepare_cached(schema::FTS_EXISTS)?
            .query_row([], |r| r.get(0))?;
        self.fts.set(Some(exists));
        Ok(exists)
    }

    /// Removes a row from the full-text index (nothing without one).
    fn fts_delete(&self, rowid: i64) -> Result<usize> {
        if !self.fts_exists()? {
            return Ok(0);
        }
        exec(self.db, schema::FTS_DELETE, [rowid])
    }

    /// Rebuilds a row's full-text entry from what the row holds now.
    fn reindex_text(&self, rowid: i64) -> Result<()> {
        let (text, meta): (Option<String>, Option<String>) = self
            .db
            .prepare_cached(schema::GET_TEXT_FIELDS)?
            .query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let meta = match meta {
            Some(m) if !self.shard.profile.searchable_fields.is_empty() => {
                Some(serde_json::from_str::<Value>(&m)?)
            }
            _ => None,
        };
        self.fts_delete(rowid)?;
        self.index_text(rowid, text.as_deref(), meta.as_ref())
    }

    /// Changes the vector, metadata and/or text of a live item (see [`Shard::update`]).
    ///
    /// # Errors
    /// As [`Shard::update`].
    pub fn update(&mut self, id: &str, update: Update) -> Result<()> {
        if update.vector.is_none() && update.metadata.is_none() && update.text.is_none() {
            return Err(Error::InvalidArgument(
                "update needs a vector, metadata or text".into(),
            ));
        }
        if let Some(v) = &update.vector {
            check_vector(&self.shard.profile, v)?;
        }
        let meta = metadata_json(update.metadata.as_ref())?;
        if let Some(t) = &update.text {
            check_text(t)?;
        }
        let row: Option<(i64, i64)> = self
            .db
            .prepare_cached(schema::FIND_BY_ID)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((rowid, _)) = row.filter(|r| r.1 % 2 == 1) else {
            return Err(Error::NotFound(id.to_string()));
        };
        let stamp = self.stamp();
        let (seq, hlc) = stamp;
        exec(
            self.db,
            schema::UPDATE_ITEM,
            params![
                rowid,
                update.vector.as_deref().map(codec::as_blob),
                update.metadata.is_some(),
                meta,
                update.text,
                hlc,
                &self.shard.site_id.0[..],
                seq
            ],
        )?;
        self.take(stamp);
        let reindex = update.text.is_some()
            || (update.metadata.is_some() && !self.shard.profile.searchable_fields.is_empty());
        if reindex {
            let r = self.reindex_text(rowid);
            self.finish(r)?;
        }
        if let Some(vector) = update.vector {
            self.ops.push(Op::Put {
                rowid,
                id: id.to_string(),
                vector,
            });
        }
        Ok(())
    }

    /// Deletes a live item, leaving a tombstone (see [`Shard::delete`]).
    ///
    /// # Errors
    /// As [`Shard::delete`].
    pub fn delete(&mut self, id: &str) -> Result<()> {
        let row: Option<(i64, i64)> = self
            .db
            .prepare_cached(schema::FIND_BY_ID)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((rowid, cl)) = row.filter(|r| r.1 % 2 == 1) else {
            return Err(Error::NotFound(id.to_string()));
        };
        let stamp = self.stamp();
        let (seq, hlc) = stamp;
        exec(
            self.db,
            schema::TOMBSTONE_ITEM,
            params![rowid, cl + 1, hlc, &self.shard.site_id.0[..], seq],
        )?;
        self.take(stamp);
        let r = self.fts_delete(rowid);
        self.finish(r)?;
        self.ops.push(Op::Remove { rowid });
        Ok(())
    }

    /// Applies a change made by another site (a row of its [`Shard::changes_since`]): merged
    /// against the stored version of the item by causal length, then HLC, then site id
    /// ([`crate::change::merge`]). A winning change replaces the item's whole register
    /// (vector, metadata, text) or deletes it, through the same path as a local write, so the
    /// full-text index, the arena, the HNSW graph and the int8 codes follow in this
    /// transaction; it gets a new local `seq` (so it flows on to other peers) and keeps its own
    /// HLC, site id and causal length. A losing change is still recorded as seen
    /// ([`Shard::seen`]). Either way the local HLC moves past the change's, so later local
    /// changes order after it.
    ///
    /// # Errors
    /// [`Error::InvalidId`], [`Error::InvalidArgument`] (causal length below 1, a negative
    /// HLC, a delete carrying a payload, an alive change without a vector, text too long),
    /// [`Error::InvalidMetadata`], the vector errors of [`Shard::insert`] (dimension, NaN/Inf,
    /// zero vector in a cosine shard), [`Error::ClockSkew`] for an HLC further ahead of this
    /// clock than [`crate::OpenOptions::max_clock_skew_ms`]; nothing is applied or recorded on
    /// error.
    pub fn apply_remote(&mut self, change: &Change) -> Result<Applied> {
        self.apply_remote_via(change, None)
    }

    /// [`WriteTx::apply_remote`] for a change delivered by the shard with site id `via` (a sync
    /// peer, which may have it from a third shard): when it wins, the item's new version is
    /// marked as held by `via`, and [`Shard::changes_for`] that peer leaves it out (no echo).
    ///
    /// # Errors
    /// As [`WriteTx::apply_remote`].
    pub fn apply_remote_via(&mut self, change: &Change, via: Option<SiteId>) -> Result<Applied> {
        let (meta, empty_meta) = self.check_remote(change)?;
        // `{}` is stored as NULL, as for a local write.
        let metadata = change.metadata.as_deref().filter(|_| !empty_meta);
        let incoming = change.version();
        let blob = change.vector.as_deref().map(codec::as_blob);
        // The stored version, and whether the stored vector is the incoming one (a change of
        // metadata or text only leaves the arena and the graph as they are).
        let stored: Option<(i64, Version, bool)> = self
            .db
            .prepare_cached(schema::FIND_VERSION)?
            .query_row([&change.id], |r| {
                let site_id = SiteId::from_slice(r.get_ref(3)?.as_blob()?);
                let same = match (r.get_ref(4)?.as_blob_or_null()?, &blob) {
                    (Some(old), Some(new)) => old == &new[..],
                    _ => false,
                };
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, site_id, same))
            })
            .optional()?
            .map(|(rowid, cl, hlc, site_id, same)| {
                let site_id = site_id.map_err(|_| {
                    Error::Corrupt(format!("item {:?} has a bad site id", change.id))
                })?;
                Ok::<_, Error>((
                    rowid,
                    Version {
                        causal_length: cl,
                        hlc,
                        site_id,
                    },
                    same,
                ))
            })
            .transpose()?;
        match merge(stored.as_ref().map(|s| &s.1), &incoming) {
            Merge::Stale => {
                self.saw(change);
                return Ok(Applied::Stale);
            }
            Merge::Duplicate => {
                self.saw(change);
                return Ok(Applied::Duplicate);
            }
            Merge::Apply => {}
        }
        let seq = self.seq + 1;
        let site = &change.site_id.0[..];
        let same_vector = stored.as_ref().is_some_and(|s| s.1.is_alive() && s.2);
        let (rowid, was_alive) = match stored {
            None => {
                exec(
                    self.db,
                    schema::INSERT_ITEM,
                    params![
                        change.id,
                        blob,
                        metadata,
                        change.text,
                        change.hlc,
                        site,
                        seq,
                        change.causal_length
                    ],
                )?;
                (checked_new_rowid(self.db.last_insert_rowid())?, false)
            }
            Some((rowid, v, _)) => {
                if change.is_alive() {
                    exec(
                        self.db,
                        schema::OVERWRITE_ITEM,
                        params![
                            rowid,
                            change.causal_length,
                            blob,
                            metadata,
                            change.text,
                            change.hlc,
                            site,
                            seq
                        ],
                    )?;
                } else {
                    exec(
                        self.db,
                        schema::TOMBSTONE_ITEM,
                        params![rowid, change.causal_length, change.hlc, site, seq],
                    )?;
                }
                (rowid, v.is_alive())
            }
        };
        self.seq = seq;
        self.wrote = true;
        if let Some(via) = via {
            self.db.execute_batch(schema::CREATE_SYNC_VIA)?;
            exec(
                self.db,
                schema::SYNC_VIA_SET,
                params![rowid, seq, &via.0[..]],
            )?;
        }
        let indexed = (|| {
            if was_alive {
                self.fts_delete(rowid)?;
            }
            if change.is_alive() {
                self.index_text(rowid, change.text.as_deref(), meta.as_ref())?;
            }
            Ok(())
        })();
        self.finish(indexed)?;
        self.saw(change);
        match &change.vector {
            Some(_) if change.is_alive() && same_vector => {}
            Some(v) if change.is_alive() => self.ops.push(Op::Put {
                rowid,
                id: change.id.clone(),
                vector: v.clone(),
            }),
            _ if was_alive => self.ops.push(Op::Remove { rowid }),
            _ => {}
        }
        Ok(Applied::Applied)
    }

    /// Records, in this transaction, that every change of the shard with site id `site` up to
    /// its local version `seq` is applied here: the sync cursor [`Shard::sync_state`] reports.
    /// Set it in the transaction that applies those changes, so it commits with them and never
    /// runs ahead. It may move back (the other shard restarted its versions: a resync).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative `seq` or this shard's own site id;
    /// [`Error::Sqlite`].
    pub fn set_cursor(&mut self, site: SiteId, seq: i64) -> Result<()> {
        if seq < 0 {
            return Err(Error::InvalidArgument(format!(
                "a sync cursor is a version ≥ 0, got {seq}"
            )));
        }
        if site == self.shard.site_id {
            return Err(Error::InvalidArgument(
                "a shard keeps no sync cursor for its own site".into(),
            ));
        }
        self.db.execute_batch(schema::CREATE_SYNC_CURSOR)?;
        exec(self.db, schema::SYNC_CURSOR_SET, params![&site.0[..], seq])?;
        self.wrote = true;
        Ok(())
    }

    /// Records, in this transaction, that the sync peer whose shard has site id `site` (on the
    /// node `node`, its identity in the transport's trust list, when known) holds this shard's
    /// changes up to local version `acked` (its cursor for this shard, from its hello or its
    /// acknowledgements), heard from now (the shard's clock): what
    /// [`Shard::collect_tombstones`] waits for. It may move back (the peer restored an older
    /// copy).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative `acked` or this shard's own site id;
    /// [`Error::Sqlite`].
    pub fn set_peer_ack(&mut self, site: SiteId, acked: i64, node: Option<&str>) -> Result<()> {
        if acked < 0 {
            return Err(Error::InvalidArgument(format!(
                "a peer acknowledges a version ≥ 0, got {acked}"
            )));
        }
        if site == self.shard.site_id {
            return Err(Error::InvalidArgument(
                "a shard is not its own sync peer".into(),
            ));
        }
        self.db.execute_batch(schema::CREATE_SYNC_PEER)?;
        exec(
            self.db,
            schema::SYNC_PEER_SET,
            params![&site.0[..], acked, self.shard.clock.now_ms(), node],
        )?;
        self.wrote = true;
        Ok(())
    }

    /// Deletes the tombstones stamped at or below local version `bound` (and above the last
    /// collection's bound), except the one holding the shard's head, and raises the bound
    /// ([`crate::SyncState::horizon`]). The policy (which bound every peer allows) is
    /// [`Shard::collect_tombstones`]'s; call this directly only with a bound every peer of the
    /// shard has acknowledged. Returns what was removed and the new bound.
    ///
    /// # Errors
    /// [`Error::Sqlite`]; [`Error::Corrupt`] for a bad `gc_horizon` in `meta`.
    pub fn collect_tombstones(&mut self, bound: i64) -> Result<crate::Collected> {
        let old = super::admin::gc_horizon(self.db)?;
        // The head's row stays: the next version must stay above every one a peer has seen.
        let new = bound.min(self.seq - 1);
        if new <= old {
            return Ok(crate::Collected {
                removed: 0,
                horizon: old,
            });
        }
        let (n, hlc, cl): (i64, i64, i64) = self
            .db
            .prepare_cached(schema::TOMBSTONES_IN)?
            .query_row(params![old, new], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if n > 0 {
            if self
                .db
                .query_row(schema::SYNC_VIA_EXISTS, [], |r| r.get::<_, bool>(0))?
            {
                exec(
                    self.db,
                    schema::SYNC_VIA_FORGET_TOMBSTONES,
                    params![old, new],
                )?;
            }
            exec(self.db, schema::COLLECT_TOMBSTONES, params![old, new])?;
            for (key, v) in [(schema::META_GC_HLC, hlc), (schema::META_GC_CL, cl)] {
                if v > super::admin::meta_i64(self.db, key)? {
                    exec(self.db, schema::META_SET, params![key, v.to_string()])?;
                }
            }
            self.fresh_cl = None;
        }
        exec(
            self.db,
            schema::META_SET,
            params![schema::META_GC_HORIZON, new.to_string()],
        )?;
        self.wrote = true;
        Ok(crate::Collected {
            removed: n as u64,
            horizon: new,
        })
    }

    /// A snapshot's reconciliation (sync, after a peer sent every item it holds because this
    /// shard was too far behind its tombstone collection): deletes, as local deletes, the live
    /// items the peer no longer holds (`held` returns false for their id) though it had seen
    /// their current version: made there (site id `peer`), delivered from there
    /// ([`WriteTx::apply_remote_via`]), or stamped here at or below `peer_has_through`, the
    /// peer's cursor for this shard. Those are deletes whose tombstones the peer collected.
    /// Items the peer never saw stay (and flow to it). Returns the deleted ids.
    ///
    /// # Errors
    /// [`Error::Sqlite`]; [`Error::Corrupt`] for a bad site id; the errors of
    /// [`WriteTx::delete`].
    pub fn delete_unheld(
        &mut self,
        peer: SiteId,
        peer_has_through: i64,
        held: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let via: bool = self
            .db
            .query_row(schema::SYNC_VIA_EXISTS, [], |r| r.get(0))?;
        let sql = if via {
            schema::LIVE_HELD
        } else {
            schema::LIVE_HELD_NO_VIA
        };
        let mut gone = Vec::new();
        {
            let mut stmt = self.db.prepare_cached(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id = r.get_ref(0)?.as_str()?;
                if held(id) {
                    continue;
                }
                let seq: i64 = r.get(1)?;
                let seen = seq <= peer_has_through
                    || r.get_ref(2)?.as_blob()? == &peer.0[..]
                    || r.get_ref(3)?.as_blob_or_null()? == Some(&peer.0[..]);
                if seen {
                    gone.push(id.to_string());
                }
            }
        }
        for id in &gone {
            self.delete(id)?;
        }
        Ok(gone)
    }

    /// The causal length of a local insert under an id with no row: 1, or past every
    /// collected tombstone (`meta` `gc_cl`, the highest causal length collected), so a
    /// re-insert of an id whose tombstone was collected here still wins over that tombstone
    /// where a peer holds it. Read once per transaction.
    fn fresh_cl(&mut self) -> Result<i64> {
        if let Some(cl) = self.fresh_cl {
            return Ok(cl);
        }
        let collected = super::admin::meta_i64(self.db, schema::META_GC_CL)?;
        let cl = collected.max(0) / 2 * 2 + 1;
        self.fresh_cl = Some(cl);
        Ok(cl)
    }

    /// Records a change as received: its HLC in `sync_seen` at commit, and the local clock past
    /// it.
    fn saw(&mut self, change: &Change) {
        let seen = self.seen.entry(change.site_id).or_insert(change.hlc);
        *seen = (*seen).max(change.hlc);
        self.hlc = self.hlc.max(change.hlc);
    }

    /// Checks a remote change; returns its metadata parsed when the shard indexes metadata
    /// fields for text search, and whether the metadata is the empty object.
    fn check_remote(&self, change: &Change) -> Result<(Option<Value>, bool)> {
        validate_id(&change.id)?;
        if change.causal_length < 1 {
            return Err(Error::InvalidArgument(format!(
                "change {:?}: causal length must be ≥ 1, got {}",
                change.id, change.causal_length
            )));
        }
        if change.hlc < 0 {
            return Err(Error::InvalidArgument(format!(
                "change {:?}: negative hlc {}",
                change.id, change.hlc
            )));
        }
        let ahead = hlc_millis(change.hlc) - self.shard.clock.now_ms();
        if ahead > self.shard.max_clock_skew_ms {
            return Err(Error::ClockSkew {
                id: change.id.clone(),
                ahead_ms: ahead,
                limit_ms: self.shard.max_clock_skew_ms,
            });
        }
        if !change.is_alive() {
            if change.vector.is_some() || change.metadata.is_some() || change.text.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "change {:?} deletes the item but carries a vector, metadata or text",
                    change.id
                )));
            }
            return Ok((None, false));
        }
        let Some(v) = &change.vector else {
            return Err(Error::InvalidArgument(format!(
                "change {:?} leaves the item alive but has no vector",
                change.id
            )));
        };
        check_vector(&self.shard.profile, v)?;
        if let Some(t) = &change.text {
            check_text(t)?;
        }
        match &change.metadata {
            None => Ok((None, false)),
            Some(m) => {
                if m.len() > crate::shard::MAX_METADATA_BYTES {
                    return Err(Error::InvalidMetadata(format!(
                        "{} bytes of JSON, the limit is {}",
                        m.len(),
                        crate::shard::MAX_METADATA_BYTES
                    )));
                }
                let value: Value = serde_json::from_str(m)
                    .map_err(|e| Error::InvalidMetadata(format!("not JSON: {e}")))?;
                let empty = metadata_json(Some(&value))?.is_none();
                let fts = !self.shard.profile.searchable_fields.is_empty();
                Ok((fts.then_some(value), empty))
            }
        }
    }

    /// Writes the highest HLC received per site (`sync_seen`).
    fn record_seen(&mut self) -> Result<()> {
        if self.seen.is_empty() {
            return Ok(());
        }
        self.db.execute_batch(schema::CREATE_SYNC_SEEN)?;
        for (site, hlc) in &self.seen {
            exec(self.db, schema::SYNC_SEEN_RAISE, params![&site.0[..], hlc])?;
        }
        self.wrote = true;
        Ok(())
    }
}

impl Shard {
    /// Reads a live item on `db` (a reader, or the writer inside a transaction).
    pub(super) fn get_on(&self, db: &Connection, id: &str) -> Result<Item> {
        let row = db
            .prepare_cached(schema::GET_ITEM)?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, Option<Vec<u8>>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        let (blob, meta, text) = row.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let blob = blob.ok_or_else(|| Error::Corrupt(format!("live item {id:?} has no vector")))?;
        let vector =
            codec::decode(&blob, self.profile.dimension).map_err(|e| corrupt_item(id, e))?;
        Ok(Item {
            id: id.to_string(),
            vector,
            metadata: parse_metadata(meta)?,
            text,
        })
    }
}
