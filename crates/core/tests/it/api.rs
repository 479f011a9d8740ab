//! The shard API: writes, reads, tombstones, search semantics, filters against a brute-force
//! oracle, sync columns and the SQL functions.

use serde_json::json;
use sqlite_vector::rusqlite::types::Value as SqlValue;
use sqlite_vector::{Filter, Metric, NewItem, Profile, SearchParams, Shard, Update};

use crate::{fill, random_vectors, temp_shard};

/// Brute-force reference ranking in f64: ids best first.
fn oracle(
    vectors: &[Vec<f32>],
    q: &[f32],
    metric: Metric,
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<String> {
    let score = |v: &[f32]| -> f64 {
        let dot: f64 = v.iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum();
        match metric {
            Metric::Dot => dot,
            Metric::Cosine => {
                let nv: f64 = v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                let nq: f64 = q.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                dot / (nv * nq)
            }
            Metric::L2 => -v
                .iter()
                .zip(q)
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum::<f64>(),
        }
    };
    let mut idx: Vec<usize> = (0..vectors.len()).filter(|&i| keep(i)).collect();
    idx.sort_by(|&a, &b| score(&vectors[b]).total_cmp(&score(&vectors[a])));
    idx.into_iter().take(k).map(|i| i.to_string()).collect()
}

fn ids(hits: &[sqlite_vector::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

#[test]
fn exact_search_matches_oracle_for_every_metric() {
    for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
        let vectors = random_vectors(3000, 37, 7);
        let shard = Shard::in_memory(&Profile::new(37, metric)).unwrap();
        fill(&shard, &vectors);
        for (qi, q) in random_vectors(20, 37, 99).iter().enumerate() {
            let hits = shard.search(q, &SearchParams::k(15)).unwrap();
            assert_eq!(
                ids(&hits),
                oracle(&vectors, q, metric, 15, |_| true),
                "{metric} query {qi}"
            );
            // Scores are best first and in the metric's unit.
            for w in hits.windows(2) {
                if metric.higher_is_better() {
                    assert!(w[0].score >= w[1].score);
                } else {
                    assert!(w[0].score <= w[1].score);
                }
            }
        }
    }
}

#[test]
fn score_units_are_documented_ones() {
    let shard = Shard::in_memory(&Profile::new(2, Metric::L2)).unwrap();
    shard
        .insert(NewItem::new(vec![3.0, 4.0]).with_id("p"))
        .unwrap();
    let l2 = shard.search(&[0.0, 0.0], &SearchParams::k(1)).unwrap();
    assert!((l2[0].score - 5.0).abs() < 1e-6, "L2 distance, not squared");
    let dot = shard
        .search(&[1.0, 1.0], &SearchParams::k(1).with_metric(Metric::Dot))
        .unwrap();
    assert!((dot[0].score - 7.0).abs() < 1e-6);
    let cos = shard
        .search(&[4.0, 3.0], &SearchParams::k(1).with_metric(Metric::Cosine))
        .unwrap();
    assert!((cos[0].score - 24.0 / 25.0).abs() < 1e-6);
}

#[test]
fn ties_are_broken_by_id() {
    let shard = Shard::in_memory(&Profile::new(2, Metric::Dot)).unwrap();
    // Inserted in non-sorted id order; all have the same score.
    for id in ["m", "c", "x", "a", "k"] {
        shard
            .insert(NewItem::new(vec![1.0, 0.0]).with_id(id))
            .unwrap();
    }
    let hits = shard.search(&[1.0, 0.0], &SearchParams::k(3)).unwrap();
    assert_eq!(ids(&hits), ["a", "c", "k"]);
    // Deleting reshuffles slots; the answer stays the same.
    shard.delete("m").unwrap();
    let hits = shard.search(&[1.0, 0.0], &SearchParams::k(5)).unwrap();
    assert_eq!(ids(&hits), ["a", "c", "k", "x"]);
}

#[test]
fn crud_and_tombstones() {
    let (_d, path, shard) = temp_shard(3, Metric::Cosine);
    let id = shard
        .insert(
            NewItem::new(vec![1.0, 0.0, 0.0])
                .with_metadata(json!({"a": 1}))
                .with_text("hello"),
        )
        .unwrap();
    assert_eq!(id.len(), 16, "generated ids are 16 hex digits: {id}");
    let item = shard.get(&id).unwrap();
    assert_eq!(item.vector, vec![1.0, 0.0, 0.0]);
    assert_eq!(item.metadata, json!({"a": 1}));
    assert_eq!(item.text.as_deref(), Some("hello"));

    shard
        .update(
            &id,
            Update {
                metadata: Some(json!({"a": 2})),
                ..Default::default()
            },
        )
        .unwrap();
    let item = shard.get(&id).unwrap();
    assert_eq!(item.metadata, json!({"a": 2}));
    assert_eq!(item.vector, vec![1.0, 0.0, 0.0], "vector kept");
    assert_eq!(item.text.as_deref(), Some("hello"), "text kept");
    shard
        .update(
            &id,
            Update {
                vector: Some(vec![0.0, 1.0, 0.0]),
                ..Default::default()
            },
        )
        .unwrap();
    let hits = shard.search(&[0.0, 1.0, 0.0], &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, id);
    assert!((hits[0].score - 1.0).abs() < 1e-6, "arena follows updates");

    shard.delete(&id).unwrap();
    assert!(matches!(
        shard.get(&id),
        Err(sqlite_vector::Error::NotFound(_))
    ));
    assert!(shard
        .search(&[0.0, 1.0, 0.0], &SearchParams::k(5))
        .unwrap()
        .is_empty());
    assert_eq!(shard.len(), 0);
    let stats = shard.stats().unwrap();
    assert_eq!((stats.count, stats.tombstones), (0, 1));

    // The tombstone: even causal length, payload gone, still listed in the change feed.
    let rows = shard
        .query_sql(
            "SELECT cl, vector IS NULL, metadata IS NULL, text IS NULL FROM items WHERE id = ?1",
            &[SqlValue::Text(id.clone())],
        )
        .unwrap();
    assert_eq!(
        rows[0],
        vec![
            SqlValue::Integer(2),
            SqlValue::Integer(1),
            SqlValue::Integer(1),
            SqlValue::Integer(1)
        ]
    );

    // Re-inserting revives the id with an odd causal length (3).
    shard
        .insert(NewItem::new(vec![0.0, 0.0, 1.0]).with_id(id.clone()))
        .unwrap();
    let changes = shard.changes_since(0, 100).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].causal_length, 3);
    assert_eq!(changes[0].site_id, stats.site_id);

    // upsert replaces a live item without changing its causal length.
    shard
        .upsert(NewItem::new(vec![1.0, 1.0, 0.0]).with_id(id.clone()))
        .unwrap();
    assert_eq!(shard.changes_since(0, 100).unwrap()[0].causal_length, 3);
    assert_eq!(shard.get(&id).unwrap().vector, vec![1.0, 1.0, 0.0]);
    drop(shard);
    let shard = Shard::open(&path).unwrap();
    assert_eq!(shard.get(&id).unwrap().vector, vec![1.0, 1.0, 0.0]);
    assert_eq!(shard.len(), 1);
}

#[test]
fn change_feed_is_ordered_indexed_and_clocked() {
    let shard = Shard::in_memory(&Profile::new(2, Metric::L2)).unwrap();
    for i in 0..10 {
        shard
            .insert(NewItem::new(vec![i as f32, 0.0]).with_id(format!("i{i}")))
            .unwrap();
    }
    shard.delete("i3").unwrap();
    let all = shard.changes_since(0, 1000).unwrap();
    assert_eq!(all.len(), 10);
    for w in all.windows(2) {
        assert!(w[0].seq < w[1].seq);
        assert!(
            w[0].hlc < w[1].hlc,
            "hlc strictly increases with local changes"
        );
    }
    let last = all.last().unwrap();
    assert_eq!((last.id.as_str(), last.causal_length), ("i3", 2));
    let since = shard.changes_since(all[7].seq, 1000).unwrap();
    assert_eq!(since.len(), 2);
    let plan = shard
        .query_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM items WHERE seq > 5 ORDER BY seq",
            &[],
        )
        .unwrap();
    let plan = format!("{plan:?}");
    assert!(
        plan.contains("items_seq"),
        "changes-since must use the seq index: {plan}"
    );
    assert_eq!(shard.stats().unwrap().version, last.seq);
}

#[test]
fn filtered_search_is_true_top_k_among_matches() {
    let vectors = random_vectors(2000, 16, 3);
    let shard = Shard::in_memory(&Profile::new(16, Metric::Cosine)).unwrap();
    let tags = ["a", "b", "c", "d"];
    let items = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut meta = json!({"tag": tags[i % 4], "n": i, "even": i % 2 == 0});
            if i % 10 == 0 {
                meta["rare"] = json!(true);
            }
            NewItem::new(v.clone())
                .with_id(i.to_string())
                .with_metadata(meta)
        })
        .collect();
    shard.insert_batch(items).unwrap();
    type Pred = Box<dyn Fn(usize) -> bool>;
    let cases: Vec<(&str, Pred)> = vec![
        (r#"{"tag": "b"}"#, Box::new(|i| i % 4 == 1)),
        (
            r#"{"tag": {"$in": ["a", "c"]}, "n": {"$gte": 500, "$lt": 1500}}"#,
            Box::new(|i| i % 2 == 0 && (500..1500).contains(&i)),
        ),
        (
            r#"{"$or": [{"rare": true}, {"n": {"$lt": 20}}]}"#,
            Box::new(|i| i % 10 == 0 || i < 20),
        ),
        (r#"{"$not": {"even": true}}"#, Box::new(|i| i % 2 == 1)),
        (
            r#"{"rare": {"$exists": false}, "tag": {"$ne": "d"}}"#,
            Box::new(|i| i % 10 != 0 && i % 4 != 3),
        ),
        (r#"{"n": {"$gt": 1995}}"#, Box::new(|i| i > 1995)),
        (r#"{"tag": "zzz"}"#, Box::new(|_| false)),
    ];
    for (text, pred) in cases {
        let filter: Filter = text.parse().unwrap();
        for q in random_vectors(5, 16, 11) {
            let hits = shard
                .search(&q, &SearchParams::k(10).with_filter(filter.clone()))
                .unwrap();
            assert_eq!(
                ids(&hits),
                oracle(&vectors, &q, Metric::Cosine, 10, &pred),
                "filter {text}"
            );
        }
    }
}

#[test]
fn thresholds_and_overrides() {
    let shard = Shard::in_memory(&Profile::new(2, Metric::Cosine)).unwrap();
    shard
        .insert(NewItem::new(vec![1.0, 0.0]).with_id("x"))
        .unwrap();
    shard
        .insert(NewItem::new(vec![0.0, 1.0]).with_id("y"))
        .unwrap();
    shard
        .insert(NewItem::new(vec![1.0, 1.0]).with_id("xy"))
        .unwrap();
    let p = SearchParams {
        k: 10,
        min_score: Some(0.5),
        ..Default::default()
    };
    assert_eq!(ids(&shard.search(&[1.0, 0.0], &p).unwrap()), ["x", "xy"]);
    let p = SearchParams {
        k: 10,
        metric: Some(Metric::L2),
        max_distance: Some(1.01),
        ..Default::default()
    };
    assert_eq!(ids(&shard.search(&[1.0, 0.0], &p).unwrap()), ["x", "xy"]);
    // Fewer items than k: all of them.
    assert_eq!(
        shard
            .search(&[1.0, 0.0], &SearchParams::k(10_000))
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn sql_functions_on_the_shard() {
    let shard = Shard::in_memory(&Profile::new(3, Metric::Cosine)).unwrap();
    shard
        .insert(NewItem::new(vec![1.0, 2.0, 2.0]).with_id("a"))
        .unwrap();
    let rows = shard
        .query_sql(
            "SELECT vec_norm(vector), vec_dot(vector, '[1,0,0]'), vec_distance_l2(vector, '[1,2,2]'), \
             vec_distance_cosine(vector, vector) FROM items",
            &[],
        )
        .unwrap();
    assert_eq!(rows[0][0], SqlValue::Real(3.0));
    assert_eq!(rows[0][1], SqlValue::Real(1.0));
    assert_eq!(rows[0][2], SqlValue::Real(0.0));
    match rows[0][3] {
        SqlValue::Real(d) => assert!(d.abs() < 1e-6),
        ref other => panic!("{other:?}"),
    }
    let err = shard
        .query_sql("SELECT vec_dot(vector, '[1,0]') FROM items", &[])
        .unwrap_err();
    assert!(err.to_string().contains("length mismatch: 3 vs 2"), "{err}");
    let err = shard.query_sql("DELETE FROM items", &[]).unwrap_err();
    assert!(
        matches!(err, sqlite_vector::Error::InvalidArgument(_)),
        "{err}"
    );
    assert_eq!(shard.len(), 1);
}

#[test]
fn open_or_create_checks_the_profile() {
    let (_d, path, shard) = temp_shard(8, Metric::Cosine);
    drop(shard);
    let ok = Shard::open_or_create(&path, &Profile::new(8, Metric::Cosine)).unwrap();
    drop(ok);
    match Shard::open_or_create(&path, &Profile::new(16, Metric::Cosine)) {
        Err(
            e @ sqlite_vector::Error::DimensionMismatch {
                expected: 8,
                got: 16,
            },
        ) => {
            assert_eq!(e.to_string(), "dimension mismatch: shard has 8, got 16");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened with another dimension"),
    }
    let err = Shard::open_or_create(&path, &Profile::new(8, Metric::L2))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "profile mismatch: shard has metric cosine, requested l2"
    );
    let err = Shard::open_or_create(
        &path,
        &Profile::new(8, Metric::Cosine).with_embedding_model("m2"),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("embedding model (none), requested m2"),
        "{err}"
    );
    assert!(matches!(
        Shard::create(&path, &Profile::new(8, Metric::Cosine)),
        Err(sqlite_vector::Error::AlreadyExists(_))
    ));
}

#[test]
fn fixture_of_format_v1_opens() {
    // A shard written by format version 1 (see tests/fixtures/README.md); must stay readable.
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1.db");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    std::fs::copy(src, &path).unwrap();
    let shard = Shard::open(&path).unwrap();
    let stats = shard.stats().unwrap();
    assert_eq!(
        (
            stats.count,
            stats.tombstones,
            stats.dimension,
            stats.format_version
        ),
        (9, 1, 4, 1)
    );
    let item = shard.get("item-2").unwrap();
    assert_eq!(item.vector, vec![2.0, 1.0, 0.0, 0.5]);
    assert_eq!(item.metadata, json!({"n": 2, "tag": "even"}));
    let hits = shard
        .search(&[2.0, 1.0, 0.0, 0.5], &SearchParams::k(1))
        .unwrap();
    assert_eq!(hits[0].id, "item-2");
    assert!(matches!(
        shard.get("item-9"),
        Err(sqlite_vector::Error::NotFound(_))
    ));
}

#[test]
fn text_search_ranks_filters_and_follows_writes() {
    let profile = Profile::new(4, Metric::Cosine).with_searchable_fields(["title", "tags"]);
    let shard = Shard::in_memory(&profile).unwrap();
    let v = random_vectors(6, 4, 21);
    let docs = [
        (
            "rust-book",
            "The Rust programming language book",
            json!({"title": "Rust book", "lang": "rust"}),
        ),
        (
            "go-tour",
            "A tour of the Go programming language",
            json!({"title": "Go tour", "lang": "go"}),
        ),
        (
            "cafe",
            "Notes from a café in Paris",
            json!({"title": "Travel", "tags": ["coffee", "paris"]}),
        ),
        (
            "tokio",
            "An asynchronous runtime for Rust",
            json!({"title": "Tokio", "lang": "rust"}),
        ),
        ("empty", "", json!({"lang": "none"})),
        ("plain", "Nothing to see", json!({})),
    ];
    for (i, (id, text, meta)) in docs.iter().enumerate() {
        shard
            .insert(
                NewItem::new(v[i].clone())
                    .with_id(*id)
                    .with_text(*text)
                    .with_metadata(meta.clone()),
            )
            .unwrap();
    }
    let p = SearchParams::k(10);
    let hits = shard.search_text("rust runtime", &p).unwrap();
    assert_eq!(ids(&hits)[0], "tokio", "matches both words");
    assert_eq!(ids(&hits), ["tokio", "rust-book"]);
    assert!(hits[0].score > hits[1].score && hits[1].score > 0.0);
    assert_eq!(
        hits[0].text.as_deref(),
        Some("An asynchronous runtime for Rust")
    );
    // Diacritics folded; searchable metadata fields indexed (strings inside arrays too).
    assert_eq!(ids(&shard.search_text("cafe", &p).unwrap()), ["cafe"]);
    assert_eq!(ids(&shard.search_text("coffee", &p).unwrap()), ["cafe"]);
    // A filter applies to the text ranking.
    let f: Filter = r#"{"lang": "go"}"#.parse().unwrap();
    let hits = shard
        .search_text("programming language", &SearchParams::k(10).with_filter(f))
        .unwrap();
    assert_eq!(ids(&hits), ["go-tour"]);
    // FTS5 syntax in user text is inert.
    for hostile in [
        "\"rust",
        "rust*",
        "NEAR(rust go)",
        "rust -go",
        "title:rust",
        "rust OR",
        "C++ (",
        "a\"b",
    ] {
        shard.search_text(hostile, &p).unwrap();
    }
    assert!(matches!(
        shard.search_text("  ?! ", &p),
        Err(sqlite_vector::Error::InvalidArgument(_))
    ));
    // Updates re-index; deletes un-index.
    shard
        .update(
            "tokio",
            Update {
                text: Some("An event loop".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        ids(&shard.search_text("runtime", &p).unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&shard.search_text("event loop", &p).unwrap()),
        ["tokio"]
    );
    shard.delete("rust-book").unwrap();
    assert!(shard.search_text("book", &p).unwrap().is_empty());
    shard
        .upsert(
            NewItem::new(v[0].clone())
                .with_id("go-tour")
                .with_text("replaced"),
        )
        .unwrap();
    assert!(
        shard.search_text("tour", &p).unwrap().is_empty(),
        "upsert replaces indexed text"
    );
    assert_eq!(
        ids(&shard.search_text("replaced", &p).unwrap()),
        ["go-tour"]
    );
}

#[test]
fn hybrid_fuses_by_reciprocal_rank() {
    let shard = Shard::in_memory(&Profile::new(2, Metric::Cosine)).unwrap();
    // Vector ranking for query [1, 0]: a, b, c. Text ranking for "zebra": c (twice), b.
    let items = [
        ("a", [1.0, 0.0], "apple"),
        ("b", [0.9, 0.3], "zebra apple"),
        ("c", [0.5, 0.8], "zebra zebra"),
    ];
    for (id, v, t) in items {
        shard
            .insert(NewItem::new(v.to_vec()).with_id(id).with_text(t))
            .unwrap();
    }
    let h = sqlite_vector::HybridParams {
        fusion: sqlite_vector::Fusion::Rrf,
        ..Default::default()
    };
    let hits = shard
        .search_hybrid(&[1.0, 0.0], "zebra", &SearchParams::k(3), &h)
        .unwrap();
    // b: 1/62 + 1/62; a: 1/61; c: 1/63 + 1/61.
    let expect = [
        ("c", 1.0 / 63.0 + 1.0 / 61.0),
        ("b", 2.0 / 62.0),
        ("a", 1.0 / 61.0),
    ];
    assert_eq!(ids(&hits), expect.iter().map(|e| e.0).collect::<Vec<_>>());
    for (hit, (_, s)) in hits.iter().zip(expect) {
        assert!((hit.score - s as f32).abs() < 1e-6);
    }
    // Text weight 0: the vector ranking alone.
    let h0 = sqlite_vector::HybridParams {
        text_weight: 0.0,
        ..h
    };
    let hits = shard
        .search_hybrid(&[1.0, 0.0], "zebra", &SearchParams::k(3), &h0)
        .unwrap();
    assert_eq!(ids(&hits), ["a", "b", "c"]);
    let bad = sqlite_vector::HybridParams { rrf_k: 0.0, ..h };
    assert!(shard
        .search_hybrid(&[1.0, 0.0], "zebra", &SearchParams::k(3), &bad)
        .is_err());
}

#[test]
fn repeated_filters_see_every_write() {
    // The same filter is served from a cache keyed by the shard's version: every write, from
    // this handle or another connection, must show up in the next filtered search.
    let (_d, path, shard) = temp_shard(3, Metric::Cosine);
    let other = Shard::open(&path).unwrap();
    let f: Filter = r#"{"tag": "x"}"#.parse().unwrap();
    let p = SearchParams::k(10).with_filter(f);
    let q = [1.0, 0.0, 0.0];
    assert!(shard.search(&q, &p).unwrap().is_empty());
    shard
        .insert(
            NewItem::new(vec![1.0, 0.1, 0.0])
                .with_id("a")
                .with_metadata(json!({"tag": "x"})),
        )
        .unwrap();
    assert_eq!(ids(&shard.search(&q, &p).unwrap()), ["a"]);
    other
        .insert(
            NewItem::new(vec![1.0, 0.2, 0.0])
                .with_id("b")
                .with_metadata(json!({"tag": "x"})),
        )
        .unwrap();
    assert_eq!(ids(&shard.search(&q, &p).unwrap()), ["a", "b"]);
    shard
        .update(
            "a",
            Update {
                metadata: Some(json!({"tag": "y"})),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ids(&shard.search(&q, &p).unwrap()), ["b"]);
    other.delete("b").unwrap();
    assert!(shard.search(&q, &p).unwrap().is_empty());
}

/// The text ranking as `search_text` computed it before pruning: FTS5's own `bm25()` over the
/// query's words, words in at least half of the live items dropped (all but the first if every
/// word is), equal scores by rowid. `(id, score)` best first.
pub(crate) fn bm25_reference(shard: &Shard, text: &str, k: usize) -> Vec<(String, f32)> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let n_live = shard.len() as i64;
    let df = |w: &str| -> i64 {
        let rows = shard
            .query_sql(
                "SELECT doc FROM items_fts_vocab WHERE term = ?1",
                &[SqlValue::Text(w.to_lowercase())],
            )
            .unwrap();
        match rows.first().map(|r| &r[0]) {
            Some(SqlValue::Integer(n)) => *n,
            _ => 0,
        }
    };
    let mut kept: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| 2 * df(w) <= n_live)
        .collect();
    if kept.is_empty() {
        kept.push(words[0]);
    }
    let expr = kept
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    shard
        .query_sql(
            "SELECT i.id, -bm25(items_fts) FROM items_fts JOIN items i ON i.rowid = items_fts.rowid \
             WHERE items_fts MATCH ?1 ORDER BY bm25(items_fts), items_fts.rowid LIMIT ?2",
            &[SqlValue::Text(expr), SqlValue::Integer(k as i64)],
        )
        .unwrap()
        .into_iter()
        .map(|r| match (&r[0], &r[1]) {
            (SqlValue::Text(id), SqlValue::Real(s)) => (id.clone(), *s as f32),
            other => panic!("unexpected row {other:?}"),
        })
        .collect()
}

/// A seeded corpus with a Zipf-like vocabulary (`w0` most common), some words in nearly every
/// document, repeated words and non-ASCII words.
fn zipf_text(rng: &mut sqlite_vector_dataset::SeededRng, len: usize) -> String {
    let mut words = Vec::with_capacity(len + 2);
    for _ in 0..len {
        // rank ~ 1/u: a few very common words, a long tail of rare ones.
        let r = ((1.0 / (rng.next_unit() + 0.004)) as usize).min(400);
        words.push(match r % 97 {
            13 => format!("café{r}"),
            _ => format!("w{r}"),
        });
    }
    if rng.next_unit() < 0.8 {
        words.push("the".into());
    }
    if rng.next_unit() < 0.3 {
        words.push("Straße".into());
    }
    words.join(" ")
}

#[test]
fn text_search_equals_fts5_bm25_across_writes() {
    // The pruned ranking (MaxScore, cached document frequencies and lengths, payload-free
    // ranking) must return exactly the ids and scores of FTS5's bm25() over every row, for
    // k from 1 to past the number of matches, and stay exact across inserts, updates and
    // deletes from this handle and from another connection.
    let (_d, path, shard) = temp_shard(4, Metric::Cosine);
    let other = Shard::open(&path).unwrap();
    let mut rng = sqlite_vector_dataset::SeededRng(0x5EED_7E47 | 1);
    let n = 1500;
    let v = random_vectors(n + 200, 4, 91);
    let items: Vec<NewItem> = (0..n)
        .map(|i| {
            let len = 3 + (rng.next_u64() % 40) as usize;
            NewItem::new(v[i].clone())
                .with_id(format!("d{i}"))
                .with_text(zipf_text(&mut rng, len))
                .with_metadata(json!({"i": i}))
        })
        .collect();
    shard.insert_batch(items).unwrap();
    let mut queries: Vec<String> = (0..40)
        .map(|_| {
            let len = 1 + (rng.next_u64() % 7) as usize;
            zipf_text(&mut rng, len)
        })
        .collect();
    queries.extend(
        [
            "w1 w2 w3 w250",
            "w1 w1 w1 w300",
            "the",
            "the w1",
            "café13 w2 w7",
            "Straße w5 w399",
            "W3 w3 w40 w41 w42 w43 w44",
            "nothingmatches",
        ]
        .map(String::from),
    );
    let check = |shard: &Shard, round: &str| {
        for q in &queries {
            for k in [1, 3, 10, 60, 2000] {
                let p = SearchParams::k(k).with_payload(false);
                let got: Vec<(String, f32)> = shard
                    .search_text(q, &p)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.id, h.score))
                    .collect();
                assert_eq!(got, bm25_reference(shard, q, k), "{round}: {q:?} k={k}");
            }
        }
    };
    check(&shard, "fresh");
    // Writes from this handle: lengths and frequencies must follow.
    for i in 0..50 {
        shard
            .update(
                &format!("d{i}"),
                Update {
                    text: Some(zipf_text(&mut rng, 5)),
                    ..Default::default()
                },
            )
            .unwrap();
        shard.delete(&format!("d{}", 100 + i)).unwrap();
    }
    check(&shard, "after updates and deletes");
    // Writes from another connection: caught up before ranking.
    let more: Vec<NewItem> = (n..n + 200)
        .map(|i| {
            NewItem::new(v[i].clone())
                .with_id(format!("d{i}"))
                .with_text(zipf_text(&mut rng, 20))
        })
        .collect();
    other.insert_batch(more).unwrap();
    check(&shard, "after another connection's inserts");
    check(&other, "the other connection");
}

#[test]
fn text_search_stays_exact_while_readers_share_the_index_under_writes() {
    // 1,200 texts: past the in-memory text index's threshold. Three threads search (text and
    // hybrid) while this handle writes; the shard's readers share one index, each at its own snapshot (a reader
    // behind the index ranks through FTS5). Every ranking is ordered; once the writes end,
    // every ranking is FTS5's exactly.
    let (_d, _path, shard) = temp_shard(4, Metric::Cosine);
    let mut rng = sqlite_vector_dataset::SeededRng(0x5EED_5A2E | 1);
    let v = random_vectors(1500, 4, 93);
    let items: Vec<NewItem> = (0..1200)
        .map(|i| {
            let len = 3 + (rng.next_u64() % 30) as usize;
            NewItem::new(v[i].clone())
                .with_id(format!("d{i}"))
                .with_text(zipf_text(&mut rng, len))
        })
        .collect();
    shard.insert_batch(items).unwrap();
    let queries = [
        "w1 w2 w3 w250",
        "w7 w40",
        "the w9",
        "café13 w2",
        "w300 w301 w5",
    ];
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for (i, q) in queries.iter().enumerate() {
                        let hits = shard
                            .search_text(q, &SearchParams::k(20).with_payload(false))
                            .unwrap();
                        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{q}");
                        // Hybrid scores the union's rows from the index too, at its own
                        // snapshot's version.
                        let hits = shard
                            .search_hybrid(
                                &v[i],
                                q,
                                &SearchParams::k(10),
                                &sqlite_vector::HybridParams::default(),
                            )
                            .unwrap();
                        assert!(hits.len() <= 10, "{q}");
                    }
                }
            });
        }
        for i in 0..300 {
            match i % 3 {
                0 => shard
                    .update(
                        &format!("d{i}"),
                        Update {
                            text: Some(zipf_text(&mut rng, 8)),
                            ..Default::default()
                        },
                    )
                    .map(drop)
                    .unwrap(),
                1 => shard.delete(&format!("d{i}")).map(drop).unwrap(),
                _ => shard
                    .insert(
                        NewItem::new(v[1200 + i].clone())
                            .with_id(format!("n{i}"))
                            .with_text(zipf_text(&mut rng, 12)),
                    )
                    .map(drop)
                    .unwrap(),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    for q in queries {
        for k in [1, 10, 100, 2000] {
            let got: Vec<(String, f32)> = shard
                .search_text(q, &SearchParams::k(k).with_payload(false))
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.score))
                .collect();
            assert_eq!(got, bm25_reference(&shard, q, k), "{q} k={k}");
        }
    }
}

#[test]
fn text_and_hybrid_hits_carry_payload_of_the_final_hits() {
    let profile = Profile::new(3, Metric::Cosine).with_searchable_fields(["title"]);
    let shard = Shard::in_memory(&profile).unwrap();
    let v = random_vectors(40, 3, 5);
    for (i, vec) in v.iter().enumerate() {
        let text = format!("note {i} about {}", ["rust", "go", "zig", "c"][i % 4]);
        shard
            .insert(
                NewItem::new(vec.clone())
                    .with_id(format!("n{i}"))
                    .with_text(text)
                    .with_metadata(json!({"title": format!("title {i}"), "i": i})),
            )
            .unwrap();
    }
    let h = sqlite_vector::HybridParams {
        candidates: 20,
        ..Default::default()
    };
    for k in [1, 5, 12] {
        let with = shard
            .search_hybrid(&v[3], "rust title", &SearchParams::k(k), &h)
            .unwrap();
        let without = shard
            .search_hybrid(
                &v[3],
                "rust title",
                &SearchParams::k(k).with_payload(false),
                &h,
            )
            .unwrap();
        assert_eq!(with.len(), k);
        assert_eq!(
            ids(&with),
            ids(&without),
            "payload does not change the ranking"
        );
        for (a, b) in with.iter().zip(&without) {
            assert_eq!(a.score, b.score);
            let item = shard.get(&a.id).unwrap();
            assert_eq!(a.metadata, item.metadata, "{}", a.id);
            assert_eq!(a.text, item.text, "{}", a.id);
            assert!(b.metadata.is_null() && b.text.is_none());
        }
        let text = shard.search_text("rust", &SearchParams::k(k)).unwrap();
        for hit in &text {
            let item = shard.get(&hit.id).unwrap();
            assert_eq!((&hit.metadata, &hit.text), (&item.metadata, &item.text));
        }
    }
}

#[test]
fn a_filtered_text_search_over_the_in_memory_index_equals_filtering_the_full_ranking() {
    // 2,000 items: above the size where the in-memory text index ranks (256 rows).
    let shard = Shard::in_memory(&Profile::new(8, Metric::Cosine)).unwrap();
    let words = [
        "rust", "async", "runtime", "parser", "json", "http", "server", "client", "queue", "cache",
        "vector", "index", "search", "sqlite", "shard", "sync",
    ];
    let vectors = random_vectors(2_000, 8, 41);
    let items = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let text: Vec<&str> = (0..6)
                .map(|j| words[(i * 7 + j * j * 3 + i / 13) % 16])
                .collect();
            NewItem::new(v)
                .with_id(format!("d{i}"))
                .with_text(text.join(" "))
                .with_metadata(json!({"g": i % 5, "tags": [format!("t{}", i % 3)]}))
        })
        .collect();
    shard.insert_batch(items).unwrap();
    let all = |q: &str| shard.search_text(q, &SearchParams::k(2_000)).unwrap();
    for (q, filter, keep) in [
        (
            "rust async runtime server",
            json!({"g": 2}),
            &(|m: &serde_json::Value| m["g"] == 2) as &dyn Fn(&serde_json::Value) -> bool,
        ),
        (
            "sqlite shard sync vector index search",
            json!({"tags": "t1"}),
            &|m| m["tags"][0] == "t1",
        ),
        ("json", json!({"$or": [{"g": 0}, {"g": 4}]}), &|m| {
            m["g"] == 0 || m["g"] == 4
        }),
    ] {
        let f = Filter::parse(&filter).unwrap();
        let got = shard
            .search_text(q, &SearchParams::k(25).with_filter(f))
            .unwrap();
        let want: Vec<_> = all(q)
            .into_iter()
            .filter(|h| keep(&h.metadata))
            .take(25)
            .collect();
        assert_eq!(ids(&got), ids(&want), "{q}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.score, w.score, "{q}");
        }
    }
}
