//! Every bad input of the core issue: a typed error with a clear message, and nothing already
//! stored is lost.

use std::path::Path;

use serde_json::json;
use sqlite_vector::{Error, Filter, Metric, NewItem, Profile, SearchParams, Shard, Update};

use crate::{fill, random_vectors, temp_shard};

/// A shard with 50 known items; returns a checker that asserts they are all intact.
fn seeded() -> (tempfile::TempDir, std::path::PathBuf, Shard, Vec<Vec<f32>>) {
    let (d, path, shard) = temp_shard(8, Metric::Cosine);
    let vectors = random_vectors(50, 8, 5);
    fill(&shard, &vectors);
    (d, path, shard, vectors)
}

fn intact(shard: &Shard, vectors: &[Vec<f32>]) {
    assert_eq!(shard.len(), vectors.len());
    for (i, v) in vectors.iter().enumerate() {
        assert_eq!(&shard.get(&i.to_string()).unwrap().vector, v);
    }
    let hits = shard.search(&vectors[7], &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, "7");
}

#[test]
fn wrong_dimension() {
    let (_d, path, shard, vectors) = seeded();
    let e = shard
        .insert(NewItem::new(vec![1.0; 9]).with_id("x"))
        .unwrap_err();
    assert_eq!(e.to_string(), "dimension mismatch: shard has 8, got 9");
    let e = shard.search(&[1.0; 7], &SearchParams::k(3)).unwrap_err();
    assert!(matches!(
        e,
        Error::DimensionMismatch {
            expected: 8,
            got: 7
        }
    ));
    let e = shard
        .update(
            "3",
            Update {
                vector: Some(vec![1.0; 3]),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(
        e,
        Error::DimensionMismatch {
            expected: 8,
            got: 3
        }
    ));
    intact(&shard, &vectors);
    drop(shard);
    let e = Shard::open_or_create(&path, &Profile::new(384, Metric::Cosine))
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "dimension mismatch: shard has 8, got 384");
    intact(&Shard::open(&path).unwrap(), &vectors);
}

#[test]
fn nan_and_infinities() {
    let (_d, _p, shard, vectors) = seeded();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = vec![0.5; 8];
        v[5] = bad;
        let e = shard
            .insert(NewItem::new(v.clone()).with_id("bad"))
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { index: 5, .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("non-finite vector component at index 5"),
            "{e}"
        );
        assert!(matches!(
            shard.search(&v, &SearchParams::k(1)),
            Err(Error::NonFinite { .. })
        ));
        let e = shard
            .update(
                "1",
                Update {
                    vector: Some(v),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { .. }));
    }
    let e = shard.search(&[0.0; 8], &SearchParams::k(1)).unwrap_err();
    assert!(
        matches!(e, Error::ZeroVector),
        "cosine query of norm 0: {e}"
    );
    let e = shard.insert(NewItem::new(vec![0.0; 8])).unwrap_err();
    assert!(matches!(e, Error::ZeroVector));
    intact(&shard, &vectors);
}

#[test]
fn empty_vector() {
    let (_d, _p, shard, vectors) = seeded();
    assert!(matches!(
        shard.insert(NewItem::new(vec![])),
        Err(Error::EmptyVector)
    ));
    assert!(matches!(
        shard.search(&[], &SearchParams::k(1)),
        Err(Error::EmptyVector)
    ));
    assert_eq!(
        Error::EmptyVector.to_string(),
        "empty vector: a vector needs at least one component"
    );
    intact(&shard, &vectors);
}

#[test]
fn k_zero_or_huge() {
    let (_d, _p, shard, vectors) = seeded();
    for k in [0, 10_001, usize::MAX] {
        let e = shard.search(&vectors[0], &SearchParams::k(k)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid argument: k must be 1..=10000, got {k}")
        );
    }
    // Bad thresholds.
    let p = SearchParams {
        min_score: Some(f32::NAN),
        ..Default::default()
    };
    assert!(matches!(
        shard.search(&vectors[0], &p),
        Err(Error::InvalidArgument(_))
    ));
    let p = SearchParams {
        max_distance: Some(1.0),
        ..Default::default()
    };
    assert!(shard
        .search(&vectors[0], &p)
        .unwrap_err()
        .to_string()
        .contains("max_distance applies to l2"));
    let p = SearchParams {
        min_score: Some(0.1),
        metric: Some(Metric::L2),
        ..Default::default()
    };
    assert!(shard
        .search(&vectors[0], &p)
        .unwrap_err()
        .to_string()
        .contains("use max_distance"));
    intact(&shard, &vectors);
}

#[test]
fn duplicate_id_in_batch_writes_nothing() {
    let (_d, path, shard, vectors) = seeded();
    let v = random_vectors(3, 8, 77);
    let batch = vec![
        NewItem::new(v[0].clone()).with_id("new-1"),
        NewItem::new(v[1].clone()).with_id("new-2"),
        NewItem::new(v[2].clone()).with_id("new-1"),
    ];
    let e = shard.insert_batch(batch).unwrap_err();
    assert_eq!(e.to_string(), "duplicate id: \"new-1\" already exists");
    assert!(matches!(shard.get("new-1"), Err(Error::NotFound(_))));
    assert!(matches!(shard.get("new-2"), Err(Error::NotFound(_))));
    // Duplicate against an existing live item, after valid new ones: still all or nothing.
    let batch = vec![
        NewItem::new(v[0].clone()).with_id("new-3"),
        NewItem::new(v[1].clone()).with_id("4"),
    ];
    assert!(matches!(shard.insert_batch(batch), Err(Error::DuplicateId(id)) if id == "4"));
    assert!(matches!(shard.get("new-3"), Err(Error::NotFound(_))));
    // A bad vector in the middle of a batch is refused before anything is written.
    let batch = vec![
        NewItem::new(v[0].clone()).with_id("new-4"),
        NewItem::new(vec![1.0; 2]).with_id("new-5"),
    ];
    assert!(matches!(
        shard.insert_batch(batch),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(shard.get("new-4"), Err(Error::NotFound(_))));
    intact(&shard, &vectors);
    assert!(
        shard.changes_since(0, 1000).unwrap().len() == 50,
        "no stray rows"
    );
    drop(shard);
    intact(&Shard::open(&path).unwrap(), &vectors);
}

#[test]
fn unknown_ids() {
    let (_d, _p, shard, vectors) = seeded();
    assert_eq!(
        shard.get("nope").unwrap_err().to_string(),
        "unknown id: \"nope\""
    );
    assert!(matches!(shard.delete("nope"), Err(Error::NotFound(_))));
    let up = Update {
        metadata: Some(json!({"a": 1})),
        ..Default::default()
    };
    assert!(matches!(shard.update("nope", up), Err(Error::NotFound(_))));
    shard.delete("3").unwrap();
    assert!(
        matches!(shard.delete("3"), Err(Error::NotFound(_))),
        "double delete"
    );
    let up = Update {
        metadata: Some(json!({"a": 1})),
        ..Default::default()
    };
    assert!(
        matches!(shard.update("3", up), Err(Error::NotFound(_))),
        "update of a tombstone"
    );
    assert!(matches!(
        shard.update("4", Update::default()),
        Err(Error::InvalidArgument(_))
    ));
    let mut rest = vectors.clone();
    rest.remove(3);
    assert_eq!(shard.len(), 49);
    // Invalid ids.
    for bad in ["", "a\u{0}b", "line\nbreak"] {
        let e = shard
            .insert(NewItem::new(vectors[0].clone()).with_id(bad))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidId { .. }), "{bad:?}: {e}");
    }
    let long = "x".repeat(513);
    assert!(matches!(
        shard.insert(NewItem::new(vectors[0].clone()).with_id(long)),
        Err(Error::InvalidId { .. })
    ));
}

#[test]
fn malformed_filters() {
    let (_d, _p, shard, vectors) = seeded();
    for bad in [
        "{not json",
        "[1, 2]",
        r#"{"a": {"$regex": "x"}}"#,
        r#"{"a": {"$in": 3}}"#,
        r#"{"$or": {"a": 1}}"#,
        r#"{"a": {"$gt": true}}"#,
    ] {
        let e = bad.parse::<Filter>().unwrap_err();
        assert!(matches!(e, Error::InvalidFilter(_)), "{bad}: {e}");
        assert!(e.to_string().starts_with("invalid filter: "), "{e}");
    }
    // Values that look like SQL stay values.
    let f: Filter = r#"{"x'); DROP TABLE items; --": "'; DELETE FROM items; --"}"#
        .parse()
        .unwrap();
    let hits = shard
        .search(&vectors[0], &SearchParams::k(5).with_filter(f))
        .unwrap();
    assert!(hits.is_empty());
    intact(&shard, &vectors);
}

#[test]
fn metadata_not_an_object_or_too_large() {
    let (_d, _p, shard, vectors) = seeded();
    for bad in [
        json!([1, 2]),
        json!("text"),
        json!(3),
        json!(null),
        json!(true),
    ] {
        let e = shard
            .insert(
                NewItem::new(vectors[0].clone())
                    .with_id("m")
                    .with_metadata(bad.clone()),
            )
            .unwrap_err();
        assert!(matches!(e, Error::InvalidMetadata(_)), "{bad}: {e}");
        assert!(e.to_string().contains("must be a JSON object"), "{e}");
    }
    let huge = json!({"blob": "x".repeat(1 << 20)});
    let e = shard
        .insert(NewItem::new(vectors[0].clone()).with_metadata(huge))
        .unwrap_err();
    assert!(e.to_string().contains("the limit is 1048576"), "{e}");
    let e = shard
        .insert(NewItem::new(vectors[0].clone()).with_text("y".repeat((4 << 20) + 1)))
        .unwrap_err();
    assert!(e.to_string().contains("text of 4194305 bytes"), "{e}");
    intact(&shard, &vectors);
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn foreign_truncated_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    write(
        &text,
        b"these are not the pages you are looking for, just text that is long enough...",
    );
    let e = Shard::open(&text).err().unwrap();
    assert!(matches!(e, Error::NotAShard(_)), "{e}");
    assert!(e.to_string().contains("not a SQLite database"), "{e}");

    // A real SQLite database, but not a shard.
    let other = dir.path().join("other.db");
    {
        let c = sqlite_vector::rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let e = Shard::open(&other).err().unwrap();
    assert!(matches!(e, Error::NotAShard(_)), "{e}");
    let c = sqlite_vector::rusqlite::Connection::open(&other).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the foreign database is untouched");

    // A shard cut short (durability full: checkpointed at close, so the file holds the data).
    let path = dir.path().join("full.db");
    let shard = Shard::create(
        &path,
        &Profile::new(64, Metric::L2).with_durability(sqlite_vector::Durability::Full),
    )
    .unwrap();
    fill(&shard, &random_vectors(2000, 64, 1));
    drop(shard);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 100_000);
    let cut = dir.path().join("cut.db");
    write(&cut, &bytes[..bytes.len() / 2]);
    let e = Shard::open(&cut).err().unwrap();
    assert!(matches!(e, Error::Corrupt(_) | Error::NotAShard(_)), "{e}");
    let cut = dir.path().join("header-only.db");
    write(&cut, &bytes[..60]);
    assert!(Shard::open(&cut).is_err());
    let empty = dir.path().join("empty.db");
    write(&empty, b"");
    assert!(matches!(Shard::open(&empty), Err(Error::NotAShard(_))));

    let e = Shard::open(dir.path().join("missing.db")).err().unwrap();
    assert!(matches!(e, Error::Io(_)), "{e}");
    assert!(e.to_string().contains("no shard file"), "{e}");
    // A directory is not a shard either.
    assert!(Shard::open(dir.path()).is_err());
}

#[test]
fn wrong_length_blob_inside_a_shard() {
    let (_d, path, shard, _vectors) = seeded();
    drop(shard);
    {
        let c = sqlite_vector::rusqlite::Connection::open(&path).unwrap();
        c.execute("UPDATE items SET vector = x'00000000' WHERE id = '9'", [])
            .unwrap();
    }
    let e = Shard::open(&path).err().unwrap();
    assert!(matches!(e, Error::Corrupt(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "corrupt shard: item \"9\": vector blob of 4 bytes, expected 32 (8 × 4)"
    );
    // Nothing was changed by the failed open: the other rows are still there.
    let c = sqlite_vector::rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM items WHERE length(vector) = 32",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 49);
}

#[test]
fn invalid_profiles() {
    let dir = tempfile::tempdir().unwrap();
    for dim in [0, 16_385] {
        let e = Shard::create(dir.path().join("p.db"), &Profile::new(dim, Metric::Cosine))
            .err()
            .unwrap();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    assert!(
        !dir.path().join("p.db").exists(),
        "nothing created on error"
    );
    let e = Shard::create(
        dir.path().join("m.db"),
        &Profile::new(4, Metric::Cosine).with_durability(sqlite_vector::Durability::Memory),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("Shard::in_memory"), "{e}");
    assert!("manhattan".parse::<Metric>().is_err());
}

#[test]
fn overflowing_components_are_refused_and_never_scored() {
    let (_d, path, shard, vectors) = seeded();
    // Finite components whose norm overflows f32: refused at insert, update and search.
    let huge = vec![1e19_f32; 8];
    let e = shard
        .insert(NewItem::new(huge.clone()).with_id("huge"))
        .unwrap_err();
    assert!(matches!(e, Error::VectorTooLarge { .. }), "{e}");
    assert!(e.to_string().starts_with("vector norm 2.8"), "{e}");
    assert_eq!(e.kind(), sqlite_vector::ErrorKind::InvalidInput);
    assert!(matches!(
        shard.search(&huge, &SearchParams::k(3)),
        Err(Error::VectorTooLarge { .. })
    ));
    let e = shard
        .update(
            "2",
            Update {
                vector: Some(huge),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, Error::VectorTooLarge { .. }), "{e}");
    // Large but within the limit: stored, and every score is finite.
    let big = vec![3e17_f32; 8];
    shard
        .insert(NewItem::new(big.clone()).with_id("big"))
        .unwrap();
    for metric_query in [&big, &vectors[3]] {
        for h in shard.search(metric_query, &SearchParams::k(51)).unwrap() {
            assert!(h.score.is_finite(), "{} scored {}", h.id, h.score);
        }
    }
    shard.delete("big").unwrap();
    intact(&shard, &vectors);
    shard.check_integrity().unwrap();
    drop(shard);

    // A vector stored before the limit existed (written here with raw SQL) never gets a
    // non-finite score (cosine scores it 0: its norm overflows), and the integrity check names it.
    let blob: Vec<u8> = [1e19_f32; 8].iter().flat_map(|x| x.to_le_bytes()).collect();
    {
        let c = sqlite_vector::rusqlite::Connection::open(&path).unwrap();
        c.execute("UPDATE items SET vector = ?1 WHERE id = '9'", [blob])
            .unwrap();
    }
    {
        let shard = Shard::open(&path).unwrap();
        let hits = shard.search(&vectors[9], &SearchParams::k(50)).unwrap();
        assert!(hits.iter().all(|h| h.score.is_finite()));
        assert!(hits.len() >= 49);
        assert_ne!(hits[0].id, "9", "{hits:?}");
        let e = shard.check_integrity().unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert!(
            e.to_string()
                .contains("item \"9\" has an invalid vector: vector norm"),
            "{e}"
        );
    }
}

#[test]
fn overflowing_components_in_an_l2_shard() {
    let (_d, _path, shard) = temp_shard(4, Metric::L2);
    shard
        .insert(NewItem::new(vec![1.0, 2.0, 3.0, 4.0]).with_id("a"))
        .unwrap();
    // A difference of two in-limit vectors stays finite: the largest allowed opposite pair.
    let edge = (1e18_f64 / 2.0) as f32 * 0.999;
    shard
        .insert(NewItem::new(vec![edge, edge, edge, edge]).with_id("far"))
        .unwrap();
    let hits = shard
        .search(&[-edge, -edge, -edge, -edge], &SearchParams::k(2))
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.score.is_finite()), "{hits:?}");
    assert!(matches!(
        shard.insert(NewItem::new(vec![2e18, 0.0, 0.0, 0.0])),
        Err(Error::VectorTooLarge { .. })
    ));
}
