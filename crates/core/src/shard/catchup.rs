//! Noticing and applying the commits of other connections (another process, or another handle
//! on the same file): incrementally, by local version (`seq`), through the `items_seq` index.

use rusqlite::Connection;

use super::conn::Reader;
use super::{corrupt_item, Shard, State};
use crate::codec;
use crate::error::Result;
use crate::schema::{self, ItemRow};

/// The highest committed `seq` as `db` sees it (0 for an empty shard).
pub(super) fn max_seq(db: &Connection) -> Result<i64> {
    Ok(db
        .prepare_cached(schema::MAX_SEQ)?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(0))
}

impl Shard {
    /// Applies the committed changes `db` shows above `st.last_seq` to the arena and the index.
    pub(super) fn catch_up(&self, db: &Connection, st: &mut State) -> Result<()> {
        let dim = self.profile.dimension;
        let mut stmt = db.prepare_cached(schema::CHANGES_SINCE)?;
        let mut rows = stmt.query([st.last_seq])?;
        let mut v = Vec::with_capacity(dim);
        let mut changed = false;
        while let Some(row) = rows.next()? {
            let row = ItemRow::read(row)?;
            changed = true;
            st.last_seq = st.last_seq.max(row.seq);
            st.last_hlc = st.last_hlc.max(row.hlc);
            match row.vector {
                Some(blob) => {
                    codec::decode_into(blob, dim, &mut v).map_err(|e| corrupt_item(row.id, e))?;
                    // A change of metadata or text only: arena and graph stay as they are.
                    let unchanged = st.arena.has_f32()
                        && st
                            .arena
                            .slot(row.rowid)
                            .is_some_and(|s| st.arena.row(s) == v.as_slice());
                    if !unchanged {
                        st.arena.upsert(row.rowid, row.id, &v);
                        if let Some(ix) = st.index.as_mut() {
                            ix.put(row.rowid, &st.arena)?;
                        }
                    }
                }
                None => {
                    st.arena.remove(row.rowid);
                    if let Some(ix) = st.index.as_mut() {
                        ix.remove(row.rowid, &st.arena);
                    }
                }
            }
        }
        if changed {
            if let Some(ix) = st.index.as_mut() {
                ix.rebuild_if_worn(&st.arena)?;
            }
            st.version += 1;
        }
        Ok(())
    }

    /// Brings the state up to what `reader` sees, if other connections committed since it last
    /// looked: `PRAGMA data_version` of the reader (one call when nothing moved), then `max(seq)`
    /// against the state. A no-op for in-memory shards (their only connection is this handle's
    /// writer, whose commits reach the state before they are acknowledged); a rollback-journal
    /// file shard reads through its writer, and other handles or processes may write the file.
    pub(super) fn sync_reader(&self, reader: &mut Reader<'_>) -> Result<()> {
        match reader {
            Reader::Pooled {
                conn: Some(conn), ..
            } => self.catch_up_if_moved(&conn.db, &mut conn.verified),
            Reader::Shared(w) if self.path.is_some() => {
                let w = &mut **w;
                self.catch_up_if_moved(&w.db, &mut w.seen_data_version)
            }
            _ => Ok(()),
        }
    }

    /// [`Shard::sync_reader`] on connection `db`, whose `data_version` was `verified` when the
    /// state was last found current through it.
    fn catch_up_if_moved(&self, db: &Connection, verified: &mut Option<i64>) -> Result<()> {
        let dv: i64 = db
            .prepare_cached(schema::DATA_VERSION)?
            .query_row([], |r| r.get(0))?;
        if *verified == Some(dv) {
            return Ok(());
        }
        let committed = max_seq(db)?;
        // Our own writer's commits reach the state before its lock is released, so a `seq`
        // above the state's is another connection's.
        if committed > self.read_state().last_seq {
            let mut st = self.write_state();
            self.catch_up(db, &mut st)?;
        }
        *verified = Some(dv);
        Ok(())
    }

    /// Catches up with other connections' commits now (searches and writes do this on their
    /// own; call it to make [`Shard::len`] current).
    ///
    /// # Errors
    /// [`crate::Error::Sqlite`] or [`crate::Error::Corrupt`] from reading the changes.
    pub fn refresh(&self) -> Result<()> {
        let mut reader = self.reader()?;
        self.sync_reader(&mut reader)
    }
}
