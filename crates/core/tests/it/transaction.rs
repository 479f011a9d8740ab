//! Write transactions: several writes in one commit, all or nothing, metadata-only updates,
//! and reads that do not wait for a write's SQLite work.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use sqlite_vector::{Error, Metric, NewItem, Profile, SearchParams, Shard, Update};

use crate::random_vectors;

#[test]
fn several_writes_commit_together_or_not_at_all() {
    let (_dir, path, s) = crate::temp_shard(4, Metric::Cosine);
    let v = random_vectors(6, 4, 1);
    s.insert_batch(vec![
        NewItem::new(v[0].clone()).with_id("a"),
        NewItem::new(v[1].clone()).with_id("b"),
    ])
    .unwrap();
    // Consolidation-style: supersede two items, insert one, bump a counter, in one commit.
    let version = s.stats().unwrap().version;
    let new_id = s
        .transaction(|tx| {
            let a = tx.get("a")?;
            tx.update(
                "a",
                Update {
                    metadata: Some(json!({"superseded_by": "c", "uses": 1})),
                    ..Update::default()
                },
            )?;
            tx.delete("b")?;
            // The transaction reads its own writes.
            assert_eq!(tx.get("a")?.metadata["uses"], 1);
            assert!(matches!(tx.get("b"), Err(Error::NotFound(_))));
            tx.insert(NewItem::new(a.vector).with_id("c").with_text("merged"))
        })
        .unwrap();
    assert_eq!(new_id, "c");
    assert_eq!(s.stats().unwrap().version, version + 3);
    assert_eq!(s.len(), 2);
    // An error returned from the closure rolls everything back, including what came before it
    // in the same transaction.
    let err = s
        .transaction(|tx| {
            tx.insert(NewItem::new(v[2].clone()).with_id("d"))?;
            tx.delete("a")?;
            tx.insert(NewItem::new(v[3].clone()).with_id("c")) // duplicate: fails
        })
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateId(_)), "{err}");
    assert_eq!(s.len(), 2);
    assert!(s.get("a").is_ok());
    assert!(matches!(s.get("d"), Err(Error::NotFound(_))));
    // A refused operation the closure handles leaves the rest of the transaction intact.
    s.transaction(|tx| {
        assert!(tx
            .insert(NewItem::new(vec![f32::NAN; 4]).with_id("nan"))
            .is_err());
        assert!(tx.delete("nope").is_err());
        tx.insert(NewItem::new(v[4].clone()).with_id("e")).map(drop)
    })
    .unwrap();
    assert_eq!(s.len(), 3);
    drop(s);
    let s = Shard::open(&path).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.get("a").unwrap().metadata["superseded_by"], "c");
}

#[test]
fn a_transaction_cannot_call_back_into_its_own_shard_on_the_same_thread() {
    let mem = Shard::in_memory(&Profile::new(2, Metric::L2)).unwrap();
    let err = mem
        .transaction(|tx| {
            tx.insert(NewItem::new(vec![1.0, 0.0]).with_id("a"))?;
            mem.get("a") // an in-memory shard's reads share the writer's connection
        })
        .unwrap_err();
    assert!(err.to_string().contains("own write transaction"), "{err}");
    assert_eq!(mem.len(), 0);
    let err = mem
        .transaction(|_| mem.insert(NewItem::new(vec![1.0, 0.0])))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let (_dir, _path, file) = crate::temp_shard(2, Metric::L2);
    let err = file
        .transaction(|_| file.create_index(sqlite_vector::HnswParams::default()))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn searches_do_not_wait_for_a_writes_sqlite_work() {
    let (_dir, _path, s) = crate::temp_shard(8, Metric::Cosine);
    let v = random_vectors(500, 8, 5);
    crate::fill(&s, &v);
    // A search (vector, filtered, text) from another thread while this thread's transaction has
    // written and not committed: it answers from the committed state without waiting.
    s.transaction(|tx| {
        tx.insert(
            NewItem::new(v[0].clone())
                .with_id("pending")
                .with_text("pending"),
        )?;
        let (send, recv) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let r = (|| {
                    let hits = s.search(&v[0], &SearchParams::k(3))?;
                    let filtered = s.search(
                        &v[0],
                        &SearchParams::k(3).with_filter(r#"{"n": {"$exists": false}}"#.parse()?),
                    )?;
                    let text = s.search_text("pending", &SearchParams::k(3))?;
                    Ok::<_, Error>((hits, filtered, text, s.get("0")?))
                })();
                let _ = send.send(r);
            });
            let (hits, filtered, text, item) = recv
                .recv_timeout(Duration::from_secs(30))
                .expect("the search waited for the writer")
                .expect("search");
            assert_eq!(hits[0].id, "0");
            assert_eq!(filtered[0].id, "0");
            assert!(text.is_empty(), "uncommitted text must not be found");
            assert_eq!(item.vector, v[0]);
        });
        Ok(())
    })
    .unwrap();
    assert_eq!(
        s.search_text("pending", &SearchParams::k(3)).unwrap()[0].id,
        "pending"
    );
}

#[test]
fn metadata_only_updates_keep_vector_and_text() {
    let profile = Profile::new(4, Metric::Cosine).with_searchable_fields(["title"]);
    let plain = Shard::in_memory(&Profile::new(4, Metric::Cosine)).unwrap();
    let indexed = Shard::in_memory(&profile).unwrap();
    for s in [&plain, &indexed] {
        s.insert(
            NewItem::new(vec![1.0, 2.0, 3.0, 4.0])
                .with_id("a")
                .with_metadata(json!({"title": "first", "uses": 0}))
                .with_text("body words"),
        )
        .unwrap();
        let before = s.changes_since(0, 1).unwrap().remove(0);
        s.update(
            "a",
            Update {
                metadata: Some(json!({"title": "second", "uses": 1})),
                ..Update::default()
            },
        )
        .unwrap();
        let after = s.changes_since(0, 1).unwrap().remove(0);
        assert!(after.seq > before.seq && after.hlc > before.hlc);
        assert_eq!(after.vector, before.vector);
        assert_eq!(after.text.as_deref(), Some("body words"));
        let item = s.get("a").unwrap();
        assert_eq!(item.metadata, json!({"title": "second", "uses": 1}));
        assert_eq!(
            s.search_text("body", &SearchParams::k(1)).unwrap()[0].id,
            "a"
        );
        let hit = &s
            .search(&[1.0, 2.0, 3.0, 4.0], &SearchParams::k(1))
            .unwrap()[0];
        assert!(hit.score > 0.9999, "{}", hit.score);
        // Clearing the metadata is an update too ({} is stored as none).
        s.update(
            "a",
            Update {
                metadata: Some(json!({})),
                ..Update::default()
            },
        )
        .unwrap();
        assert_eq!(s.get("a").unwrap().metadata, json!({}));
    }
    // The shard that indexes `title` follows the metadata in text search.
    let found = |s: &Shard, q: &str| s.search_text(q, &SearchParams::k(1)).unwrap().len();
    assert_eq!(found(&indexed, "first"), 0);
    assert_eq!(found(&indexed, "second"), 0); // cleared above
    assert_eq!(found(&indexed, "body"), 1);
    indexed
        .update(
            "a",
            Update {
                metadata: Some(json!({"title": "third"})),
                ..Update::default()
            },
        )
        .unwrap();
    assert_eq!(found(&indexed, "third"), 1);
    assert_eq!(found(&plain, "third"), 0);
}
