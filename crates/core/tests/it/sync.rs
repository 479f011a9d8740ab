//! Changes from other sites: `WriteTx::apply_remote` against local writes, the change feed with
//! payloads, what is recorded as seen, and the clock.

use std::sync::Arc;

use serde_json::json;
use sqlite_vector::{
    Applied, Change, Error, HnswParams, ManualClock, Metric, NewItem, OpenOptions, PlannerParams,
    Profile, SearchParams, Shard, SiteId, Update,
};

use crate::random_vectors;

const T0: i64 = 1_800_000_000_000;

fn profile() -> Profile {
    Profile::new(16, Metric::Cosine).with_searchable_fields(["title"])
}

/// A file shard with an HNSW index (the planner forced onto the graph) and a manual clock.
fn shard(dir: &std::path::Path, name: &str, clock: &Arc<ManualClock>) -> Shard {
    let options = OpenOptions::default().with_clock(clock.clone());
    let s = Shard::create_with(dir.join(name), &profile(), &options).unwrap();
    s.create_index(HnswParams::default()).unwrap();
    s.set_planner(PlannerParams {
        exact_max_items: 0,
        ..PlannerParams::default()
    });
    s
}

/// The local history every test replays: inserts, a vector+text update, a metadata-only
/// update, a delete, a re-insert of the deleted id, an upsert, and deletes that stay deleted.
fn local_history(s: &Shard, clock: &ManualClock) {
    let v = random_vectors(240, 16, 7);
    let items: Vec<NewItem> = (0..200)
        .map(|i| {
            NewItem::new(v[i].clone())
                .with_id(format!("item-{i}"))
                .with_metadata(json!({"title": format!("title{i}"), "n": i}))
                .with_text(format!("word{i} common text of item {i}"))
        })
        .collect();
    s.insert_batch(items).unwrap();
    clock.advance(5);
    s.update(
        "item-1",
        Update {
            vector: Some(v[200].clone()),
            text: Some("rewritten alpha".into()),
            ..Update::default()
        },
    )
    .unwrap();
    s.update(
        "item-2",
        Update {
            metadata: Some(json!({"title": "renamed", "n": 2})),
            ..Update::default()
        },
    )
    .unwrap();
    clock.advance(5);
    s.transaction(|tx| {
        tx.delete("item-3")?;
        for i in 10..20 {
            tx.delete(&format!("item-{i}"))?;
        }
        Ok(())
    })
    .unwrap();
    s.insert(
        NewItem::new(v[201].clone())
            .with_id("item-3")
            .with_text("reborn beta"),
    )
    .unwrap();
    s.upsert(NewItem::new(v[202].clone()).with_id("item-4"))
        .unwrap();
}

/// Everything observable of a shard's items: every row of the feed without `seq` (the local
/// version differs between shards), sorted by id.
fn registers(s: &Shard) -> Vec<Change> {
    let mut all = s.changes_since(0, usize::MAX).unwrap();
    for c in &mut all {
        c.seq = 0;
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

fn ids(hits: &[sqlite_vector::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

/// Same items, same tombstones, same text ranking, same graph answers as the exact scan.
fn assert_same(a: &Shard, b: &Shard) {
    assert_eq!(registers(a), registers(b));
    assert_eq!(a.len(), b.len());
    for q in [
        "alpha",
        "beta",
        "renamed",
        "title2",
        "word7 common",
        "word3",
        "word10",
    ] {
        let p = SearchParams::k(10);
        let (ta, tb) = (a.search_text(q, &p), b.search_text(q, &p));
        assert_eq!(
            ta.as_ref().map(|h| ids(h)).ok(),
            tb.as_ref().map(|h| ids(h)).ok(),
            "{q}"
        );
    }
    let queries = random_vectors(20, 16, 99);
    for q in &queries {
        let exact_a = a.search(q, &SearchParams::k(5).with_exact(true)).unwrap();
        let exact_b = b.search(q, &SearchParams::k(5).with_exact(true)).unwrap();
        assert_eq!(ids(&exact_a), ids(&exact_b));
        for s in [a, b] {
            let (hits, path) = s
                .search_with_path(q, &SearchParams::k(5).with_ef_search(200))
                .unwrap();
            assert_eq!(path, sqlite_vector::SearchPath::Hnsw);
            assert_eq!(ids(&hits), ids(&exact_a));
        }
    }
    for s in [a, b] {
        let st = s.stats().unwrap();
        assert_eq!(st.index.unwrap().nodes, st.count);
    }
}

#[test]
fn remote_changes_reach_the_same_state_as_local_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let local = shard(dir.path(), "local.db", &clock);
    local_history(&local, &clock);

    // The same history applied as changes from `local`'s site, three ways: in one transaction,
    // in feed order chunk by chunk, and in reverse order one change per transaction.
    let feed = local.changes_since(0, usize::MAX).unwrap();
    assert!(feed.iter().all(|c| c.site_id == local.site_id()));
    assert!(feed
        .iter()
        .all(|c| c.is_alive() == c.vector.is_some() && (c.is_alive() || c.text.is_none())));
    let one = shard(dir.path(), "one.db", &clock);
    one.transaction(|tx| {
        for c in &feed {
            assert_eq!(tx.apply_remote(c)?, Applied::Applied);
        }
        Ok(())
    })
    .unwrap();
    let chunks = shard(dir.path(), "chunks.db", &clock);
    for part in feed.chunks(37) {
        chunks
            .transaction(|tx| part.iter().try_for_each(|c| tx.apply_remote(c).map(drop)))
            .unwrap();
    }
    let reverse = shard(dir.path(), "reverse.db", &clock);
    for c in feed.iter().rev() {
        reverse.transaction(|tx| tx.apply_remote(c)).unwrap();
    }
    for other in [&one, &chunks, &reverse] {
        assert_same(&local, other);
        // What was received from `local` is recorded, at its highest stamp.
        let seen = other.seen().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].site_id, local.site_id());
        assert_eq!(seen[0].hlc, feed.iter().map(|c| c.hlc).max().unwrap());
    }

    // Applying the feed again changes nothing (idempotent).
    one.transaction(|tx| {
        for c in &feed {
            assert_eq!(tx.apply_remote(c)?, Applied::Duplicate);
        }
        Ok(())
    })
    .unwrap();
    assert_same(&local, &one);

    // A stale update (lower HLC, same causal length) loses but is recorded as seen; a stale
    // update of a deleted item never resurrects it; an explicit re-insert does.
    let stranger = SiteId([0xee; 16]);
    let item0 = feed.iter().find(|c| c.id == "item-0").unwrap();
    let stale = Change {
        hlc: item0.hlc - 1,
        site_id: stranger,
        text: Some("stale".into()),
        ..item0.clone()
    };
    let deleted = feed.iter().find(|c| c.id == "item-10").unwrap();
    assert_eq!(deleted.causal_length, 2);
    let resurrect = Change {
        causal_length: 1,
        hlc: deleted.hlc + 1_000,
        vector: Some(vec![1.0; 16]),
        site_id: stranger,
        ..deleted.clone()
    };
    let reinsert = Change {
        causal_length: 3,
        hlc: deleted.hlc + 1,
        vector: Some(vec![0.5; 16]),
        text: Some("reinserted gamma".into()),
        site_id: stranger,
        ..deleted.clone()
    };
    let before = one.len();
    one.transaction(|tx| {
        assert_eq!(tx.apply_remote(&stale)?, Applied::Stale);
        assert_eq!(tx.apply_remote(&resurrect)?, Applied::Stale);
        Ok(())
    })
    .unwrap();
    assert_eq!(one.len(), before);
    assert_eq!(one.get("item-0").unwrap().text, item0.text);
    assert!(matches!(one.get("item-10"), Err(Error::NotFound(_))));
    let seen = one.seen().unwrap();
    assert!(seen
        .iter()
        .any(|h| h.site_id == stranger && h.hlc == resurrect.hlc));
    one.transaction(|tx| tx.apply_remote(&reinsert)).unwrap();
    assert_eq!(one.len(), before + 1);
    assert_eq!(
        ids(&one.search_text("gamma", &SearchParams::k(3)).unwrap()),
        ["item-10"]
    );
    assert_eq!(
        ids(&one
            .search(&[0.5; 16], &SearchParams::k(1).with_ef_search(200))
            .unwrap()),
        ["item-10"]
    );
    // The local clock moved past every received stamp: a local write orders after them.
    clock.set(T0 - 60_000);
    one.insert(NewItem::new(vec![0.3; 16]).with_id("after"))
        .unwrap();
    let after = one.changes_since(0, usize::MAX).unwrap();
    let mine = after.iter().find(|c| c.id == "after").unwrap();
    assert!(after.iter().all(|c| c.id == "after" || c.hlc < mine.hlc));

    // Reopening rebuilds nothing: the graph rows were written in the same transactions.
    let path = one.path().unwrap().to_path_buf();
    drop(one);
    let reopened = Shard::open(&path).unwrap();
    assert!(!reopened.stats().unwrap().index.unwrap().rebuilt_on_open);
}

#[test]
fn concurrent_edits_converge_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let clock_a = Arc::new(ManualClock::new(T0));
    let clock_b = Arc::new(ManualClock::new(T0 + 3));
    let a = shard(dir.path(), "a.db", &clock_a);
    let b = shard(dir.path(), "b.db", &clock_b);
    let v = random_vectors(8, 16, 3);
    // Both sites write the same ids concurrently: an insert each, then a's update and b's
    // delete of "x", and an insert of "y" on a deleted and re-inserted on b.
    a.insert(NewItem::new(v[0].clone()).with_id("x").with_text("from a"))
        .unwrap();
    b.insert(NewItem::new(v[1].clone()).with_id("x").with_text("from b"))
        .unwrap();
    a.insert(NewItem::new(v[2].clone()).with_id("y")).unwrap();
    clock_a.advance(10);
    a.update(
        "x",
        Update {
            text: Some("a edits".into()),
            ..Update::default()
        },
    )
    .unwrap();
    b.delete("x").unwrap();
    b.insert(NewItem::new(v[3].clone()).with_id("z")).unwrap();
    let feed_a = a.changes_since(0, usize::MAX).unwrap();
    let feed_b = b.changes_since(0, usize::MAX).unwrap();
    a.transaction(|tx| feed_b.iter().try_for_each(|c| tx.apply_remote(c).map(drop)))
        .unwrap();
    b.transaction(|tx| feed_a.iter().try_for_each(|c| tx.apply_remote(c).map(drop)))
        .unwrap();
    assert_same(&a, &b);
    // b's delete has the greater causal length: "x" is deleted on both.
    assert!(matches!(a.get("x"), Err(Error::NotFound(_))));
    assert_eq!(a.len(), 2);
}

#[test]
fn bad_remote_changes_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = shard(dir.path(), "s.db", &clock);
    let good = Change {
        id: "ok".into(),
        seq: 1,
        hlc: T0 << 16,
        site_id: SiteId([7; 16]),
        causal_length: 1,
        vector: Some(vec![0.25; 16]),
        metadata: Some(r#"{"title": "t"}"#.into()),
        text: Some("text".into()),
    };
    let cases: Vec<(&str, Change)> = vec![
        (
            "wrong dimension",
            Change {
                vector: Some(vec![1.0; 8]),
                ..good.clone()
            },
        ),
        (
            "nan",
            Change {
                vector: Some({
                    let mut v = vec![1.0; 16];
                    v[3] = f32::NAN;
                    v
                }),
                ..good.clone()
            },
        ),
        (
            "inf",
            Change {
                vector: Some({
                    let mut v = vec![1.0; 16];
                    v[0] = f32::INFINITY;
                    v
                }),
                ..good.clone()
            },
        ),
        (
            "zero vector (cosine)",
            Change {
                vector: Some(vec![0.0; 16]),
                ..good.clone()
            },
        ),
        (
            "empty vector",
            Change {
                vector: Some(vec![]),
                ..good.clone()
            },
        ),
        (
            "alive without vector",
            Change {
                vector: None,
                ..good.clone()
            },
        ),
        (
            "delete with a payload",
            Change {
                causal_length: 2,
                ..good.clone()
            },
        ),
        (
            "causal length 0",
            Change {
                causal_length: 0,
                ..good.clone()
            },
        ),
        (
            "negative hlc",
            Change {
                hlc: -5,
                ..good.clone()
            },
        ),
        (
            "empty id",
            Change {
                id: String::new(),
                ..good.clone()
            },
        ),
        (
            "control character id",
            Change {
                id: "a\u{7}".into(),
                ..good.clone()
            },
        ),
        (
            "metadata not an object",
            Change {
                metadata: Some("[1, 2]".into()),
                ..good.clone()
            },
        ),
        (
            "metadata not json",
            Change {
                metadata: Some("{\"a\": ".into()),
                ..good.clone()
            },
        ),
        (
            "metadata too big",
            Change {
                metadata: Some(format!("{{\"a\": \"{}\"}}", "x".repeat(1 << 20))),
                ..good.clone()
            },
        ),
        (
            "text too long",
            Change {
                text: Some("x".repeat((4 << 20) + 1)),
                ..good.clone()
            },
        ),
        (
            "stamped 2 minutes ahead",
            Change {
                hlc: (T0 + 120_000) << 16,
                ..good.clone()
            },
        ),
    ];
    for (what, change) in &cases {
        let err = s.transaction(|tx| tx.apply_remote(change)).unwrap_err();
        assert!(err.is_user_error(), "{what}: {err}");
        if what.starts_with("stamped") {
            assert!(
                matches!(
                    err,
                    Error::ClockSkew {
                        ahead_ms: 120_000,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
    assert_eq!(s.len(), 0);
    assert!(s.changes_since(0, 10).unwrap().is_empty());
    assert!(s.seen().unwrap().is_empty());
    // A refused change inside a transaction that carries on leaves the others committed.
    s.transaction(|tx| {
        assert!(tx.apply_remote(&cases[0].1).is_err());
        tx.apply_remote(&good)
    })
    .unwrap();
    assert_eq!(s.get("ok").unwrap().metadata, json!({"title": "t"}));
    // Within the accepted skew (59 s ahead) a change is taken.
    let ahead = Change {
        id: "ahead".into(),
        hlc: (T0 + 59_000) << 16,
        ..good.clone()
    };
    s.transaction(|tx| tx.apply_remote(&ahead)).unwrap();
    assert_eq!(s.len(), 2);
}

#[test]
fn the_injected_clock_stamps_changes() {
    let clock = Arc::new(ManualClock::new(T0));
    let s = Shard::in_memory_with(
        &Profile::new(2, Metric::L2),
        &OpenOptions::default().with_clock(clock.clone()),
    )
    .unwrap();
    s.insert(NewItem::new(vec![1.0, 2.0]).with_id("a")).unwrap();
    let created: String = match &s
        .query_sql("SELECT value FROM meta WHERE key = 'created_at'", &[])
        .unwrap()[0][0]
    {
        sqlite_vector::rusqlite::types::Value::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(created, (T0 / 1000).to_string());
    let first = s.changes_since(0, 1).unwrap()[0].hlc;
    assert_eq!(sqlite_vector::clock::hlc_millis(first), T0);
    // The clock steps back: stamps keep increasing.
    clock.set(T0 - 10_000);
    s.insert(NewItem::new(vec![2.0, 2.0]).with_id("b")).unwrap();
    let second = s.changes_since(1, 1).unwrap()[0].hlc;
    assert_eq!(second, first + 1);
    clock.set(T0 + 1);
    s.delete("a").unwrap();
    let third = s.changes_since(2, 1).unwrap()[0].hlc;
    assert_eq!(sqlite_vector::clock::hlc_millis(third), T0 + 1);
}

#[test]
fn cursors_digests_and_the_feed_for_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let a = shard(dir.path(), "a.db", &clock);
    let b = shard(dir.path(), "b.db", &clock);
    let c = shard(dir.path(), "c.db", &clock);
    let v = random_vectors(6, 16, 11);
    for (i, s) in [&a, &a, &b, &c].into_iter().enumerate() {
        s.insert(NewItem::new(v[i].clone()).with_id(format!("i{i}")))
            .unwrap();
    }
    // Empty state, then a cursor set with the changes it covers; a cursor for the shard's own
    // site, or a negative one, is refused and nothing is written.
    let st = b.sync_state().unwrap();
    assert_eq!((st.site_id, st.head, st.live), (b.site_id(), 1, 1));
    assert!(st.cursors.is_empty());
    let from_a = a.changes_since(0, usize::MAX).unwrap();
    let from_c = c.changes_since(0, usize::MAX).unwrap();
    b.transaction(|tx| {
        for ch in &from_a {
            tx.apply_remote_via(ch, Some(a.site_id()))?;
        }
        tx.set_cursor(a.site_id(), 2)
    })
    .unwrap();
    b.transaction(|tx| tx.apply_remote_via(&from_c[0], Some(c.site_id())).map(drop))
        .unwrap();
    let own = b.transaction(|tx| tx.set_cursor(b.site_id(), 3));
    assert!(matches!(own, Err(Error::InvalidArgument(_))), "{own:?}");
    let negative = b.transaction(|tx| tx.set_cursor(a.site_id(), -1));
    assert!(matches!(negative, Err(Error::InvalidArgument(_))));
    let st = b.sync_state().unwrap();
    assert_eq!(st.cursors.len(), 1);
    assert_eq!((st.cursors[0].site_id, st.cursors[0].seq), (a.site_id(), 2));
    assert_eq!((st.head, st.live), (4, 4));
    // The feed for a leaves out what a made (i0, i1) and nothing else; for c, what c
    // delivered (i3); both read up to b's head.
    let (for_a, to) = b.changes_for(a.site_id(), 0, usize::MAX).unwrap();
    let ids = |cs: &[Change]| cs.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!((ids(&for_a), to), (vec!["i2".to_string(), "i3".into()], 4));
    let (for_c, to) = b.changes_for(c.site_id(), 0, usize::MAX).unwrap();
    assert_eq!(
        (ids(&for_c), to),
        (vec!["i2".to_string(), "i0".into(), "i1".into()], 4)
    );
    // A local write to a delivered item makes it b's own again: it goes back to c.
    b.update(
        "i3",
        Update {
            text: Some("edited on b".into()),
            ..Update::default()
        },
    )
    .unwrap();
    let (for_c, to) = b.changes_for(c.site_id(), 4, usize::MAX).unwrap();
    assert_eq!((ids(&for_c), to), (vec!["i3".to_string()], 5));
    // The limit counts rows read, skipped or not.
    let (for_a, to) = b.changes_for(a.site_id(), 0, 2).unwrap();
    assert_eq!((ids(&for_a), to), (vec!["i2".to_string()], 2));
    // Digests: equal for the same live versions whatever the order they arrived in, different
    // otherwise.
    let d = shard(dir.path(), "d.db", &clock);
    let feed_b = b.changes_since(0, usize::MAX).unwrap();
    d.transaction(|tx| {
        feed_b
            .iter()
            .rev()
            .try_for_each(|ch| tx.apply_remote(ch).map(drop))
    })
    .unwrap();
    assert_eq!(
        d.sync_state().unwrap().digest,
        b.sync_state().unwrap().digest
    );
    assert_ne!(
        a.sync_state().unwrap().digest,
        b.sync_state().unwrap().digest
    );
    d.delete("i0").unwrap();
    assert_ne!(
        d.sync_state().unwrap().digest,
        b.sync_state().unwrap().digest
    );
    // Cursors survive a reopen.
    let path = b.path().unwrap().to_path_buf();
    drop(b);
    let b = Shard::open(&path).unwrap();
    assert_eq!(b.sync_state().unwrap().cursors[0].seq, 2);
}

#[test]
fn tombstones_are_collected_once_every_member_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = shard(dir.path(), "gc.db", &clock);
    let peer = SiteId([7; 16]);
    let v = random_vectors(4, 16, 3);
    for (i, x) in v.iter().enumerate() {
        s.insert(NewItem::new(x.clone()).with_id(format!("k{i}")))
            .unwrap();
    }
    s.delete("k0").unwrap();
    s.delete("k1").unwrap();
    let head = s.head().unwrap();
    assert_eq!(s.stats().unwrap().tombstones, 2);
    // No peer, no member: nothing is collected.
    assert_eq!(s.collect_tombstones(&[], None).unwrap().removed, 0);
    // A member that never acknowledged holds collection back.
    let members = vec!["node-b".to_string()];
    assert_eq!(s.collect_tombstones(&members, None).unwrap().removed, 0);
    // Acknowledged up to the first delete: only that tombstone goes.
    s.transaction(|tx| tx.set_peer_ack(peer, head - 1, Some("node-b")))
        .unwrap();
    let st = s.sync_state().unwrap();
    assert_eq!(st.peers.len(), 1);
    assert_eq!(st.peers[0].node.as_deref(), Some("node-b"));
    assert_eq!(st.peers[0].acked, head - 1);
    let got = s.collect_tombstones(&members, None).unwrap();
    assert_eq!((got.removed, got.horizon), (1, head - 1));
    assert_eq!(s.sync_state().unwrap().horizon, head - 1);
    // Acknowledged past the head: the head's tombstone stays (versions never go back).
    s.transaction(|tx| tx.set_peer_ack(peer, head, Some("node-b")))
        .unwrap();
    assert_eq!(s.collect_tombstones(&members, None).unwrap().removed, 0);
    assert_eq!(s.head().unwrap(), head);
    assert_eq!(s.stats().unwrap().tombstones, 1);
    // A re-insert of the collected id outranks the tombstone a peer may still hold.
    s.insert(NewItem::new(v[0].clone()).with_id("k0")).unwrap();
    let k0 = s
        .changes_since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .find(|c| c.id == "k0")
        .unwrap();
    assert!(k0.causal_length > 2 && k0.causal_length % 2 == 1, "{k0:?}");
    // Reopened: the bound, the acknowledgement and the clock stay.
    drop(s);
    let options = OpenOptions::default().with_clock(clock.clone());
    let s = Shard::open_with_options(dir.path().join("gc.db"), &options).unwrap();
    let st = s.sync_state().unwrap();
    assert_eq!(st.horizon, head - 1);
    assert_eq!(st.peers[0].acked, head);
    s.check_integrity().unwrap();
    // Bad input: a negative acknowledgement and the shard's own site are refused.
    let own = st.site_id;
    assert!(matches!(
        s.transaction(|tx| tx.set_peer_ack(peer, -1, None)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.transaction(|tx| tx.set_peer_ack(own, 1, None)),
        Err(Error::InvalidArgument(_))
    ));
    // Once the head moves on, k1's tombstone goes; k2's waits for the member, unless it is
    // silent past the expiry.
    s.delete("k2").unwrap();
    s.insert(NewItem::new(v[1].clone()).with_id("k9")).unwrap();
    assert_eq!(
        s.collect_tombstones(&members, Some(60_000))
            .unwrap()
            .removed,
        1
    );
    assert_eq!(s.stats().unwrap().tombstones, 1);
    clock.advance(120_000);
    let got = s.collect_tombstones(&members, Some(60_000)).unwrap();
    assert_eq!(got.removed, 1, "k2's tombstone: node-b is written off");
    assert_eq!(s.stats().unwrap().tombstones, 0);
}

#[test]
fn a_snapshot_deletes_only_what_the_peer_had_seen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = shard(dir.path(), "snap.db", &clock);
    let peer = SiteId([9; 16]);
    let v = random_vectors(3, 16, 5);
    s.insert(NewItem::new(v[0].clone()).with_id("old")).unwrap();
    let seen_through = s.head().unwrap();
    s.insert(NewItem::new(v[1].clone()).with_id("new")).unwrap();
    // From the peer itself: it has seen it (made there).
    let mut c = s.changes_since(0, 1).unwrap().remove(0);
    c.id = "theirs".into();
    c.site_id = peer;
    c.hlc += 1;
    s.transaction(|tx| tx.apply_remote(&c)).unwrap();
    let gone = s
        .transaction(|tx| tx.delete_unheld(peer, seen_through, |_| false))
        .unwrap();
    let mut gone = gone;
    gone.sort();
    assert_eq!(gone, ["old", "theirs"], "'new' was never seen by the peer");
    assert!(s.get("new").is_ok());
    assert!(s.get("old").is_err());
}

#[test]
fn the_cached_digest_follows_every_write_and_other_handles() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let s = shard(dir.path(), "d.db", &clock);
    let fresh = || {
        let options = OpenOptions::default().with_clock(clock.clone());
        Shard::open_with_options(dir.path().join("d.db"), &options)
            .unwrap()
            .sync_state()
            .unwrap()
    };
    let check = |s: &Shard| {
        let (cached, scanned) = (s.sync_state().unwrap(), fresh());
        assert_eq!((cached.digest, cached.live), (scanned.digest, scanned.live));
    };
    check(&s);
    local_history(&s, &clock);
    check(&s);
    // Another handle (as another process) writes: this one catches up on its next call.
    let other = {
        let options = OpenOptions::default().with_clock(clock.clone());
        Shard::open_with_options(dir.path().join("d.db"), &options).unwrap()
    };
    let v = random_vectors(3, 16, 11);
    other
        .insert(NewItem::new(v[0].clone()).with_id("from-other"))
        .unwrap();
    other.delete("from-other").unwrap();
    other
        .insert(NewItem::new(v[1].clone()).with_id("again"))
        .unwrap();
    check(&s);
    // A remote change that wins, a metadata-only update, a collection.
    let mut c = s.changes_since(0, 1).unwrap().remove(0);
    c.site_id = SiteId([3; 16]);
    c.hlc += 1 << 20;
    s.transaction(|tx| tx.apply_remote(&c)).unwrap();
    s.update(
        "again",
        Update {
            metadata: Some(json!({"title": "t"})),
            ..Update::default()
        },
    )
    .unwrap();
    s.transaction(|tx| tx.set_peer_ack(SiteId([3; 16]), i64::MAX / 2, None))
        .unwrap();
    assert!(s.collect_tombstones(&[], None).unwrap().removed > 0);
    check(&s);
    // A delete collected before any digest saw it as a tombstone.
    s.delete("again").unwrap();
    s.insert(NewItem::new(v[2].clone()).with_id("last"))
        .unwrap();
    s.transaction(|tx| tx.set_peer_ack(SiteId([3; 16]), i64::MAX / 2, None))
        .unwrap();
    assert_eq!(s.collect_tombstones(&[], None).unwrap().removed, 1);
    check(&s);
    assert_eq!(s.sync_state().unwrap().live, s.len() as u64);
}
