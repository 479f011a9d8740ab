//! Administration of a shard: its HNSW index, its quantization, stats, the change feed with
//! payloads, integrity checks and read-only SQL.

use std::sync::PoisonError;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};

use super::catchup::max_seq;
use super::{open, Shard, State, Stats};
use crate::arena::Arena;
use crate::change::{Change, Collected, PeerAck, SiteCursor, SiteHead, SiteId, SyncState};
use crate::codec;
use crate::error::{Error, Result};
use crate::hnsw::HnswParams;
use crate::index::{PlannerParams, Quantization, SearchPath, ShardIndex};
use crate::profile::Durability;
use crate::quant::Quantizer;
use crate::schema;

/// The [`Quantization`] of an arena.
fn quantization_of(arena: &Arena) -> Quantization {
    match arena.quantizer() {
        Some(_) => Quantization::Int8,
        None => Quantization::None,
    }
}

impl Shard {
    /// Runs `f` on the writer connection inside `BEGIN IMMEDIATE`, after catching up, with the
    /// state locked for writing; commits when `f` succeeds.
    fn admin<R>(&self, f: impl FnOnce(&Connection, &mut State) -> Result<R>) -> Result<R> {
        let writer = self.lock_writer()?;
        let db = &writer.db;
        let mut st = self.write_state();
        db.execute_batch(schema::BEGIN_IMMEDIATE)?;
        let r = (|| {
            if max_seq(db)? > st.last_seq {
                self.catch_up(db, &mut st)?;
            }
            let r = f(db, &mut st)?;
            db.execute_batch(schema::COMMIT)?;
            Ok(r)
        })();
        if r.is_err() && !db.is_autocommit() {
            let _ = db.execute_batch(schema::ROLLBACK);
        }
        st.version += 1;
        r
    }

    /// Builds an HNSW index over the shard's live items (Malkov & Yashunin, arXiv:1603.09320;
    /// see [`crate::hnsw`]) and stores it in the shard (see [`crate::index`]); from then on
    /// every write maintains it in its own transaction and searches use it when the planner
    /// says so. Holds the write lock while building (about 0.3 ms per 384-d item with the
    /// default parameters on one core); searches wait.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for invalid `params`; [`Error::IndexExists`] when the shard
    /// already has an index (drop it first to change parameters); [`Error::Sqlite`] writing it.
    pub fn create_index(&self, params: HnswParams) -> Result<()> {
        params.validate()?;
        {
            let writer = self.lock_writer()?;
            let mut st = self.write_state();
            if st.index.is_none() && !st.arena.has_f32() {
                // An int8-only arena: the graph reads f32 rows, so load them (they stay while
                // the index exists).
                open::load(&writer.db, &mut st, &self.profile, true, &self.readers)?;
            }
        }
        self.admin(|db, st| {
            if st.index.is_some() {
                return Err(Error::IndexExists);
            }
            if !st.arena.has_f32() {
                return Err(Error::Busy(
                    "the shard was quantized by another connection while the index was being \
                     prepared; try again"
                        .into(),
                ));
            }
            let mut ix = ShardIndex::build(params, self.profile.metric, &st.arena, true)?;
            if self.profile.durability == Durability::Memory {
                ix.persist = false;
            } else {
                ix.create_in(db, st.last_seq)?;
            }
            st.index = Some(ix);
            st.index_damage = None;
            Ok(())
        })
    }

    /// Removes the shard's index (its tables too); searches scan exactly again. `false` when
    /// there was none.
    ///
    /// # Errors
    /// [`Error::Sqlite`] dropping the tables.
    pub fn drop_index(&self) -> Result<bool> {
        let had = self.admin(|db, st| {
            db.execute_batch(schema::DROP_HNSW_TABLES)?;
            // Dropping a damaged index repairs the shard: nothing of it is left.
            let had = st.index.take().is_some() || st.index_damage.take().is_some();
            Ok(had)
        })?;
        let writer = self.lock_writer()?;
        let mut st = self.write_state();
        if st.arena.quantizer().is_some() && st.arena.has_f32() {
            // Quantized and no graph left to feed: drop the f32 rows.
            open::load(&writer.db, &mut st, &self.profile, false, &self.readers)?;
        }
        Ok(had)
    }

    /// Sets how the exact path stores and scans vectors (see [`Quantization`]). `Int8` trains
    /// a per-dimension quantizer ([`crate::quant::Quantizer`]) on the shard's live vectors (all
    /// of them, up to 100,000 evenly spaced) and stores it in `meta`; later writes encode with
    /// it (values outside its trained range are clamped; call again after the data has changed
    /// a lot to retrain). `None` removes it. The arena is rebuilt from the file either way.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `Int8` on a shard without items (nothing to train on);
    /// [`Error::Sqlite`] writing `meta`.
    pub fn set_quantization(&self, quantization: Quantization) -> Result<()> {
        self.admin(|db, st| {
            db.execute(schema::META_DELETE, [schema::META_QUANTIZER])?;
            if quantization == Quantization::Int8 {
                let dim = self.profile.dimension;
                let n = st.arena.len();
                if n == 0 {
                    return Err(Error::InvalidArgument(
                        "int8 quantization trains on the shard's vectors: insert items first"
                            .into(),
                    ));
                }
                let step = n.div_ceil(100_000);
                let mut sample = Vec::with_capacity(n.div_ceil(step) * dim);
                if st.arena.has_f32() {
                    for slot in (0..n as u32).step_by(step) {
                        sample.extend_from_slice(st.arena.row(slot));
                    }
                } else {
                    let mut stmt = db.prepare_cached(schema::GET_VECTOR)?;
                    let mut v = Vec::with_capacity(dim);
                    for slot in (0..n as u32).step_by(step) {
                        let blob: Vec<u8> = stmt.query_row([st.arena.rowid(slot)], |r| r.get(0))?;
                        codec::decode_into(&blob, dim, &mut v)?;
                        sample.extend_from_slice(&v);
                    }
                }
                let qz = Quantizer::train(&sample, dim)?;
                db.execute(
                    schema::META_INSERT,
                    params![schema::META_QUANTIZER, schema::hex(&qz.to_bytes())],
                )?;
            }
            Ok(())
        })?;
        let writer = self.lock_writer()?;
        let mut st = self.write_state();
        open::load(&writer.db, &mut st, &self.profile, false, &self.readers)
    }

    /// The shard's [`Quantization`].
    pub fn quantization(&self) -> Quantization {
        quantization_of(&self.read_state().arena)
    }

    /// The parameters of the shard's HNSW index, if it has one.
    pub fn index_params(&self) -> Option<HnswParams> {
        self.read_state()
            .index
            .as_ref()
            .map(|ix| *ix.graph.params())
    }

    /// Sets this handle's planner thresholds (see [`crate::index::plan`]).
    pub fn set_planner(&self, planner: PlannerParams) {
        self.write_state().planner = planner;
    }

    /// This handle's planner thresholds.
    pub fn planner(&self) -> PlannerParams {
        self.read_state().planner
    }

    /// Counts and sizes of the shard.
    ///
    /// # Errors
    /// [`Error::Sqlite`] / [`Error::Io`] reading sizes.
    pub fn stats(&self) -> Result<Stats> {
        let mut reader = self.reader()?;
        self.sync_reader(&mut reader)?;
        let db = reader.db();
        let tombstones: i64 = db.query_row(schema::COUNT_TOMBSTONES, [], |r| r.get(0))?;
        let bytes_on_disk = self.bytes_on_disk(db)?;
        let st = self.read_state();
        let index_stats = st.index.as_ref().map(|ix| ix.stats(&st.planner));
        Ok(Stats {
            count: st.arena.len(),
            tombstones: tombstones as usize,
            dimension: self.profile.dimension,
            metric: self.profile.metric,
            durability: self.profile.durability,
            embedding_model: self.profile.embedding_model.clone(),
            bytes_on_disk,
            bytes_in_memory: st.arena.bytes_in_memory(),
            raw_vector_bytes: st.arena.raw_vector_bytes(),
            text_index_bytes: self.text.memory_bytes(),
            format_version: self.format_version,
            search_method: {
                let path = index_stats
                    .as_ref()
                    .map_or(SearchPath::Exact, |i| i.unfiltered_path);
                match (path, st.arena.quantizer()) {
                    (SearchPath::Exact, Some(_)) => format!(
                        "exact int8 ({}) + f32 rescoring",
                        crate::distance::int8::Int8Kernels::best().isa.name()
                    ),
                    _ => format!("{path} ({})", self.kernels.isa.name()),
                }
            },
            quantization: quantization_of(&st.arena),
            index: index_stats,
            site_id: self.site_id,
            version: st.last_seq,
            damage: damage_report(&st),
        })
    }

    /// Bytes of the database file plus its WAL (with the `fs-metadata` feature; otherwise, and
    /// for in-memory shards, SQLite's pages).
    fn bytes_on_disk(&self, db: &Connection) -> Result<u64> {
        #[cfg(feature = "fs-metadata")]
        if let Some(p) = &self.path {
            let main = std::fs::metadata(p)?.len();
            let mut wal = p.as_os_str().to_owned();
            wal.push("-wal");
            return Ok(
                main + std::fs::metadata(std::path::PathBuf::from(wal)).map_or(0, |m| m.len())
            );
        }
        Ok(db.query_row(schema::DATABASE_BYTES, [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Changes with a local version above `since`, oldest first, at most `limit` of them, each
    /// with the item's whole register (vector, metadata, text; none for a tombstone) and its
    /// stamp: the sync "changes since version V" feed (served by the `items_seq` index), which
    /// another shard takes with [`crate::WriteTx::apply_remote`].
    ///
    /// # Errors
    /// [`Error::Sqlite`]; [`Error::Corrupt`] for a stored vector of the wrong length or a bad
    /// site id.
    pub fn changes_since(&self, since: i64, limit: usize) -> Result<Vec<Change>> {
        let reader = self.reader()?;
        let db = reader.db();
        let mut stmt = db.prepare_cached(schema::CHANGE_FEED)?;
        let mut rows = stmt.query(params![since, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(self.change_row(r)?);
        }
        Ok(out)
    }

    /// The change feed as the sync peer whose shard has site id `peer` needs it: like
    /// [`Shard::changes_since`] (`since`, at most `limit` rows read), but without the versions
    /// that peer holds already (made there: same site id; or delivered from there:
    /// [`crate::WriteTx::apply_remote_via`]). Returns the changes and the highest version read
    /// (`since` when none): the peer's cursor may move there once it has applied them.
    ///
    /// # Errors
    /// As [`Shard::changes_since`].
    pub fn changes_for(
        &self,
        peer: SiteId,
        since: i64,
        limit: usize,
    ) -> Result<(Vec<Change>, i64)> {
        let reader = self.reader()?;
        let db = reader.db();
        let via: bool = db.query_row(schema::SYNC_VIA_EXISTS, [], |r| r.get(0))?;
        let sql = if via {
            schema::CHANGE_FEED_VIA
        } else {
            schema::CHANGE_FEED
        };
        let mut stmt = db.prepare_cached(sql)?;
        let mut rows = stmt.query(params![since, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let (mut out, mut to) = (Vec::new(), since);
        while let Some(r) = rows.next()? {
            to = r.get(1)?;
            let site = r.get_ref(3)?.as_blob()?;
            if site == &peer.0[..] {
                continue;
            }
            if via && r.get_ref(8)?.as_blob_or_null()? == Some(&peer.0[..]) {
                continue;
            }
            out.push(self.change_row(r)?);
        }
        Ok((out, to))
    }

    /// A row of [`schema::CHANGE_FEED`] as a change.
    fn change_row(&self, r: &rusqlite::Row<'_>) -> Result<Change> {
        let id: String = r.get(0)?;
        let site = r.get_ref(3)?.as_blob()?;
        let site_id = SiteId::from_slice(site)
            .map_err(|_| Error::Corrupt(format!("item {id:?} has a bad site id")))?;
        let cl: i64 = r.get(4)?;
        let vector = match r.get_ref(5)?.as_blob_or_null()? {
            Some(b) if cl % 2 == 1 => Some(
                codec::decode(b, self.profile.dimension)
                    .map_err(|e| super::corrupt_item(&id, e))?,
            ),
            _ => None,
        };
        Ok(Change {
            seq: r.get(1)?,
            hlc: r.get(2)?,
            site_id,
            causal_length: cl,
            vector,
            metadata: r.get(6)?,
            text: r.get(7)?,
            id,
        })
    }

    /// The highest HLC this shard has received from each other site, applied or not (the
    /// changes [`crate::WriteTx::apply_remote`] took), by site id.
    ///
    /// # Errors
    /// [`Error::Sqlite`]; [`Error::Corrupt`] for a bad site id.
    pub fn seen(&self) -> Result<Vec<SiteHead>> {
        let reader = self.reader()?;
        let db = reader.db();
        let exists: bool = db.query_row(schema::SYNC_SEEN_EXISTS, [], |r| r.get(0))?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = db.prepare_cached(schema::SYNC_SEEN_ALL)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?)))?;
        rows.map(|r| {
            let (site, hlc) = r?;
            let site_id = SiteId::from_slice(&site)
                .map_err(|_| Error::Corrupt("sync_seen holds a bad site id".into()))?;
            Ok(SiteHead { site_id, hlc })
        })
        .collect()
    }

    /// The shard's head: its highest committed local version (`seq`), by this or any other
    /// process (one indexed lookup). It moves with every write: how a live sync notices
    /// commits.
    ///
    /// # Errors
    /// [`Error::Sqlite`].
    pub fn head(&self) -> Result<i64> {
        let reader = self.reader()?;
        max_seq(reader.db())
    }

    /// The shard's sync state (site id, head, cursors, digest of its live items), read in one
    /// snapshot. The digest is kept in memory and brought up to date from the rows stamped
    /// since the last call (one indexed range read); the first call scans every row (about
    /// 0.2 µs each) and the cache then costs about 40 bytes per live item.
    ///
    /// # Errors
    /// [`Error::Sqlite`]; [`Error::Corrupt`] for a bad site id.
    pub fn sync_state(&self) -> Result<SyncState> {
        let reader = self.reader()?;
        let db = reader.db();
        let tx = rusqlite::Transaction::new_unchecked(db, rusqlite::TransactionBehavior::Deferred)?;
        let head = max_seq(&tx)?;
        let cursors = read_cursors(&tx)?;
        let peers = read_peers(&tx)?;
        let horizon = gc_horizon(&tx)?;
        let (digest, live) = {
            let mut cache = self.digest.lock().unwrap_or_else(PoisonError::into_inner);
            if head < cache.as_of || horizon > cache.as_of {
                // The versions went back (a restored file), or tombstones the cache had not
                // seen were collected (their rows are gone, not stamped anew): start over.
                *cache = super::DigestCache {
                    as_of: -1,
                    ..Default::default()
                };
            }
            if head > cache.as_of {
                let mut stmt = tx.prepare_cached(schema::VERSIONS_SINCE)?;
                let mut rows = stmt.query([cache.as_of])?;
                while let Some(r) = rows.next()? {
                    let rowid: i64 = r.get(0)?;
                    if let Some(old) = cache.rows.remove(&rowid) {
                        cache.digest ^= old;
                    }
                    let cl: i64 = r.get(2)?;
                    if cl % 2 == 0 {
                        continue;
                    }
                    let id = r.get_ref(1)?.as_str()?;
                    let site_id = SiteId::from_slice(r.get_ref(4)?.as_blob()?)
                        .map_err(|_| Error::Corrupt(format!("item {id:?} has a bad site id")))?;
                    let v = crate::change::Version {
                        causal_length: cl,
                        hlc: r.get(3)?,
                        site_id,
                    };
                    let h = crate::change::digest_item(id, &v);
                    cache.rows.insert(rowid, h);
                    cache.digest ^= h;
                }
                cache.as_of = head;
            }
            (cache.digest, cache.rows.len() as u64)
        };
        tx.finish()?;
        Ok(SyncState {
            site_id: self.site_id,
            head,
            cursors,
            digest,
            live,
            horizon,
            peers,
        })
    }

    /// Collects the tombstones every peer holds: deletes those stamped at or below the lowest
    /// [`PeerAck::acked`] over every peer that ever synced this shard with this one (per node,
    /// its latest shard: a recreated shard gets a new site id) and the `members`, the nodes
    /// that may (a root's trusted peers for this shard, [`PeerAck::node`]). A member that never
    /// acknowledged this shard holds collection back: it may hold an item this shard deleted,
    /// made concurrently. So a delete is forgotten only once no peer can still hold an older
    /// version of the item; peers of peers need not be known (in a chain A–B–C, A waits for
    /// B, and B keeps the tombstone until C has it). With `peer_expiry_ms`, a peer silent for
    /// longer is written off (as Cassandra's `gc_grace_seconds`): if it comes back with its
    /// cursor below the new bound it gets a snapshot, and an item it holds that this shard
    /// deleted may come back to life. With no peer and no member nothing is collected. The
    /// tombstone holding the shard's head stays, so versions never go back.
    ///
    /// Costs one pass over the rows stamped since the last collection, in one write
    /// transaction (none when the bound has not moved).
    ///
    /// # Errors
    /// [`Error::Sqlite`]; [`Error::Busy`] as any write.
    pub fn collect_tombstones(
        &self,
        members: &[String],
        peer_expiry_ms: Option<i64>,
    ) -> Result<Collected> {
        let (peers, horizon, head) = {
            let reader = self.reader()?;
            let db = reader.db();
            (read_peers(db)?, gc_horizon(db)?, max_seq(db)?)
        };
        let nothing = Collected {
            removed: 0,
            horizon,
        };
        if peers.is_empty() && members.is_empty() {
            return Ok(nothing);
        }
        if members
            .iter()
            .any(|m| !peers.iter().any(|p| p.node.as_deref() == Some(m.as_str())))
        {
            return Ok(nothing);
        }
        let now = self.clock.now_ms();
        let latest = |p: &PeerAck| {
            p.node.is_none()
                || !peers
                    .iter()
                    .any(|q| q.node == p.node && q.seen_ms > p.seen_ms)
        };
        let bound = peers
            .iter()
            .filter(|p| latest(p))
            .filter(|p| peer_expiry_ms.is_none_or(|e| now.saturating_sub(p.seen_ms) <= e))
            .map(|p| p.acked)
            .min()
            // Every peer was written off.
            .unwrap_or(i64::MAX);
        if bound.min(head - 1) <= horizon {
            return Ok(Collected {
                removed: 0,
                horizon,
            });
        }
        self.transaction(|tx| tx.collect_tombstones(bound))
    }

    /// Runs a read-only SQL statement on a reader connection, where the functions of
    /// [`crate::sqlfn`] (`vec_distance_cosine`, `vec_distance_l2`, `vec_dot`, `vec_norm`) are
    /// registered, and returns all rows. Writes are refused: they would bypass the arena.
    ///
    /// ```
    /// use sqlite_vector::{Metric, NewItem, Profile, Shard};
    /// use rusqlite::types::Value;
    /// let shard = Shard::in_memory(&Profile::new(2, Metric::L2))?;
    /// shard.insert(NewItem::new(vec![3.0, 4.0]).with_id("p"))?;
    /// let rows = shard.query_sql("SELECT id, vec_norm(vector) FROM items", &[])?;
    /// assert_eq!(rows[0][1], Value::Real(5.0));
    /// # Ok::<(), sqlite_vector::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a statement that writes; [`Error::Sqlite`] for SQL errors
    /// (including the functions' errors, e.g. vectors of different lengths).
    pub fn query_sql(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>> {
        let reader = self.reader()?;
        let mut stmt = reader.db().prepare(sql)?;
        if !stmt.readonly() {
            return Err(Error::InvalidArgument(
                "query_sql runs read-only statements; write through the Shard API".into(),
            ));
        }
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((0..n).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?);
        }
        Ok(out)
    }

    /// Writes a consistent copy of the shard, as of one snapshot, to the new file `dest`: one
    /// self-contained file (no `-wal`), compacted (SQLite's `VACUUM INTO`), while writers carry
    /// on. A backup keeps the shard's identity (site id): restore it in place of the shard
    /// (delete the old `-wal` and `-shm` first), never run it beside the original as a second
    /// replica (two shards with one site id would not sync correctly).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when `dest` exists; [`Error::InvalidArgument`] for an in-memory
    /// shard's path that cannot be written; [`Error::Sqlite`] / [`Error::Io`] writing it.
    pub fn backup_to(&self, dest: impl AsRef<std::path::Path>) -> Result<()> {
        let dest = dest.as_ref();
        #[cfg(feature = "fs-metadata")]
        if dest.exists() {
            return Err(Error::AlreadyExists(format!("{} exists", dest.display())));
        }
        let dest = dest.to_str().ok_or_else(|| {
            Error::InvalidArgument(format!("{} is not valid UTF-8", dest.display()))
        })?;
        let reader = self.reader()?;
        let db = reader.db();
        // Pooled readers are `query_only`, which refuses `VACUUM INTO` although it writes only
        // `dest` (an in-memory shard reads through its writer, which is not).
        let query_only: bool = db.pragma_query_value(None, "query_only", |r| r.get(0))?;
        db.pragma_update(None, "query_only", false)?;
        let r = db.execute(schema::VACUUM_INTO, [dest]);
        db.pragma_update(None, "query_only", query_only)?;
        match r {
            Ok(_) => Ok(()),
            // SQLite's own check (builds without `fs-metadata`, or a file created meanwhile).
            Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("already exists") => {
                Err(Error::AlreadyExists(format!("{dest} exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The shard as one self-contained database file, in bytes (an *image*): what a closed
    /// shard's file holds, as of one snapshot, with a rollback-journal header (bytes 18 and 19
    /// are 1; a native handle converts the file back to WAL when it opens it). Write it to a
    /// file and [`Shard::open`] opens it anywhere, or pass it to [`Shard::from_image`]. An
    /// in-memory shard's image records durability `normal` and holds its HNSW index, so it
    /// opens as a file shard like any other. Like [`Shard::backup_to`], the image keeps the
    /// shard's identity (site id): use it in place of the shard (moving it between a browser
    /// and a native build), never as a second live replica beside it.
    ///
    /// Holds the writer for the copy (about the file's size in bytes, plus a second copy for
    /// an in-memory shard).
    ///
    /// # Errors
    /// [`Error::Sqlite`] reading the pages (a full memory: `SQLITE_NOMEM`).
    pub fn to_image(&self) -> Result<Vec<u8>> {
        let mut writer = self.lock_writer()?;
        let mut bytes = writer.db.serialize(rusqlite::MAIN_DB)?.to_vec();
        if self.profile.durability == Durability::Memory {
            let st = self.read_state();
            let mut db = Connection::open_in_memory()?;
            let len = bytes.len();
            db.deserialize_read_exact(rusqlite::MAIN_DB, &bytes[..], len, false)?;
            db.execute_batch(schema::BEGIN_IMMEDIATE)?;
            db.execute(
                schema::META_SET,
                params!["durability", Durability::Normal.to_string()],
            )?;
            // An in-memory index is not kept in the tables: write it there.
            db.execute_batch(schema::DROP_HNSW_TABLES)?;
            if let Some(ix) = &st.index {
                ix.write_copy(&db)?;
            }
            db.execute_batch(schema::COMMIT)?;
            drop(st);
            bytes = db.serialize(rusqlite::MAIN_DB)?.to_vec();
        }
        drop(writer);
        if bytes.len() >= 20 {
            bytes[18] = 1;
            bytes[19] = 1;
        }
        Ok(bytes)
    }

    /// Runs SQLite's `PRAGMA integrity_check` and re-validates every stored vector: its length,
    /// finite components and a norm within [`codec::MAX_NORM`]; reports damaged derived data
    /// found at load (see [`Stats::damage`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] describing the first problem found.
    pub fn check_integrity(&self) -> Result<()> {
        let reader = self.reader()?;
        let db = reader.db();
        let res: String = db.query_row(schema::INTEGRITY_CHECK, [], |r| r.get(0))?;
        if res != "ok" {
            return Err(Error::Corrupt(res));
        }
        let bad: Option<String> = db
            .query_row(
                schema::FIND_BAD_VECTOR,
                [self.profile.dimension as i64 * 4],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = bad {
            return Err(Error::Corrupt(format!(
                "item {id:?} has a vector blob of the wrong length"
            )));
        }
        // Every stored vector as an insert would check it (finite, norm within the limit).
        let mut stmt = db.prepare(schema::LIVE_VECTORS)?;
        let mut rows = stmt.query([])?;
        let mut v = Vec::with_capacity(self.profile.dimension);
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let blob = r.get_ref(1)?.as_blob()?;
            codec::decode_into(blob, self.profile.dimension, &mut v)?;
            if let Err(e) = codec::validate(&v, None) {
                return Err(Error::Corrupt(format!(
                    "item {id:?} has an invalid vector: {e}"
                )));
            }
        }
        drop(rows);
        drop(stmt);
        drop(reader);
        if let Some(first) = damage_report(&self.read_state()).into_iter().next() {
            return Err(Error::Corrupt(first));
        }
        Ok(())
    }
}

/// The sentences of [`Stats::damage`] for `st`.
fn damage_report(st: &State) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(why) = &st.index_damage {
        out.push(format!(
            "index damaged: {why}; searches scan exactly until it is rebuilt (`index`, \
             Shard::create_index) or dropped (`index --drop`, Shard::drop_index)"
        ));
    }
    if let Some(why) = &st.quantizer_damage {
        out.push(format!(
            "quantizer damaged: {why}; the exact path scans f32 vectors until it is retrained \
             or removed (Shard::set_quantization)"
        ));
    }
    out
}

/// Every sync cursor ([`schema::CREATE_SYNC_CURSOR`]), by site id.
fn read_cursors(db: &Connection) -> Result<Vec<SiteCursor>> {
    let mut cursors = Vec::new();
    if db.query_row(schema::SYNC_CURSOR_EXISTS, [], |r| r.get(0))? {
        let mut stmt = db.prepare_cached(schema::SYNC_CURSOR_ALL)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let site_id = SiteId::from_slice(r.get_ref(0)?.as_blob()?)
                .map_err(|_| Error::Corrupt("sync_cursor holds a bad site id".into()))?;
            cursors.push(SiteCursor {
                site_id,
                seq: r.get(1)?,
            });
        }
    }
    Ok(cursors)
}

/// Every sync peer's acknowledgement ([`schema::CREATE_SYNC_PEER`]), by site id.
fn read_peers(db: &Connection) -> Result<Vec<PeerAck>> {
    if !db.query_row(schema::SYNC_PEER_EXISTS, [], |r| r.get::<_, bool>(0))? {
        return Ok(Vec::new());
    }
    let mut stmt = db.prepare_cached(schema::SYNC_PEER_ALL)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let site_id = SiteId::from_slice(r.get_ref(0)?.as_blob()?)
            .map_err(|_| Error::Corrupt("sync_peer holds a bad site id".into()))?;
        out.push(PeerAck {
            site_id,
            acked: r.get(1)?,
            seen_ms: r.get(2)?,
            node: r.get(3)?,
        });
    }
    Ok(out)
}

/// A `meta` integer (0 when absent).
pub(super) fn meta_i64(db: &Connection, key: &str) -> Result<i64> {
    let v: Option<String> = db
        .prepare_cached(schema::META_GET)?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match v {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Corrupt(format!("meta {key} is not an integer: {v:?}"))),
    }
}

/// The tombstone collection's bound ([`schema::META_GC_HORIZON`]; 0: none).
pub(super) fn gc_horizon(db: &Connection) -> Result<i64> {
    meta_i64(db, schema::META_GC_HORIZON)
}
