//! Hybrid search with score fusion: every hit carries both exact scores, the fused score is the
//! sum of their z-scores over the union of the two rankings, in a shard and across shards.

use std::collections::HashMap;

use serde_json::json;
use sqlite_vector::{
    Fusion, Hit, HybridParams, ManagerOptions, Metric, NewItem, Profile, SearchParams, Shard,
    ShardManager, Targets,
};

use crate::random_vectors;

const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "omega", "sigma"];

fn items(n: usize, seed: u64, prefix: &str) -> Vec<NewItem> {
    let v = random_vectors(n, 8, seed);
    (0..n)
        .map(|i| {
            let text = format!(
                "{} {} item{i} {}",
                WORDS[i % 6],
                WORDS[(i / 6) % 6],
                if i % 5 == 0 { "alpha alpha" } else { "" }
            );
            NewItem::new(v[i].clone())
                .with_id(format!("{prefix}{i}"))
                .with_text(text)
                .with_metadata(json!({"i": i}))
        })
        .collect()
}

/// z-scores of `xs` (population standard deviation; 0 when constant).
fn z(xs: &[f64]) -> Vec<f64> {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    xs.iter()
        .map(|x| if sd > 0.0 { (x - mean) / sd } else { 0.0 })
        .collect()
}

/// The expected fused order over a union that holds every item: scores from the direct
/// searches, z-scored, summed.
fn expected(
    vector: &HashMap<String, f32>,
    text: &HashMap<String, f32>,
    l2: bool,
) -> Vec<(String, f64)> {
    let ids: Vec<&String> = vector.keys().collect();
    let v: Vec<f64> = ids
        .iter()
        .map(|id| f64::from(if l2 { -vector[*id] } else { vector[*id] }))
        .collect();
    let t: Vec<f64> = ids
        .iter()
        .map(|id| f64::from(text.get(*id).copied().unwrap_or(0.0)))
        .collect();
    let (zv, zt) = (z(&v), z(&t));
    let mut out: Vec<(String, f64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ((*id).clone(), zv[i] + zt[i]))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn scores(hits: Vec<Hit>) -> HashMap<String, f32> {
    hits.into_iter().map(|h| (h.id, h.score)).collect()
}

#[test]
fn hybrid_hits_carry_both_scores_and_their_z_sum() {
    for metric in [Metric::Cosine, Metric::L2] {
        let shard = Shard::in_memory(&Profile::new(8, metric)).unwrap();
        shard.insert_batch(items(40, 3, "d")).unwrap();
        let q = random_vectors(1, 8, 99).remove(0);
        let text = "alpha gamma";
        let all = SearchParams::k(40);
        let vector = scores(shard.search(&q, &all.clone().with_exact(true)).unwrap());
        let bm25 = scores(shard.search_text(text, &all).unwrap());
        assert!(bm25.len() < 40, "some items must not match");
        let hits = shard
            .search_hybrid(&q, text, &SearchParams::k(40), &HybridParams::default())
            .unwrap();
        assert_eq!(hits.len(), 40);
        let want = expected(&vector, &bm25, metric == Metric::L2);
        for (hit, (id, fused)) in hits.iter().zip(&want) {
            let parts = hit.hybrid.expect("hybrid hits carry their parts");
            assert!((f64::from(hit.score) - fused).abs() < 1e-4, "{metric} {id}");
            assert!((parts.vector_score - vector[&hit.id]).abs() < 1e-5);
            match bm25.get(&hit.id) {
                Some(s) => assert!((parts.text_score.unwrap() - s).abs() < 1e-4),
                None => assert_eq!(parts.text_score, None, "{}", hit.id),
            }
            assert!(hit.metadata["i"].is_u64() && hit.text.is_some());
        }
        // The scale reads directly: the union's fused scores average 0.
        let mean: f32 = hits.iter().map(|h| h.score).sum::<f32>() / 40.0;
        assert!(mean.abs() < 1e-4);
        // min_score applies to the fused score.
        let top = shard
            .search_hybrid(
                &q,
                text,
                &SearchParams {
                    min_score: Some(0.5),
                    ..SearchParams::k(40)
                },
                &HybridParams::default(),
            )
            .unwrap();
        assert!(!top.is_empty() && top.iter().all(|h| h.score >= 0.5));
        assert_eq!(top.len(), want.iter().filter(|w| w.1 >= 0.5).count());
        // The JSON of a hit: the parts inline, a missing BM25 as null.
        let no_text = hits.iter().find(|h| h.hybrid.unwrap().text_score.is_none());
        let j = serde_json::to_value(no_text.unwrap()).unwrap();
        assert!(
            j["vector_score"].is_number() && j["text_score"].is_null(),
            "{j}"
        );
        assert!(j.get("hybrid").is_none());
    }
}

#[test]
fn more_than_a_hundred_hits_and_rrf_on_request() {
    let shard = Shard::in_memory(&Profile::new(8, Metric::Cosine)).unwrap();
    shard.insert_batch(items(300, 5, "d")).unwrap();
    let q = random_vectors(1, 8, 7).remove(0);
    // k above the default 100 candidates: the rankings take k each.
    for k in [101, 150, 300] {
        let hits = shard
            .search_hybrid(&q, "beta", &SearchParams::k(k), &HybridParams::default())
            .unwrap();
        assert_eq!(hits.len(), k);
    }
    let rrf = HybridParams {
        fusion: Fusion::Rrf,
        ..HybridParams::default()
    };
    let hits = shard
        .search_hybrid(&q, "beta", &SearchParams::k(5), &rrf)
        .unwrap();
    assert!(hits[0].score <= 2.0 / 61.0 + 1e-6);
    assert!(hits.iter().all(|h| h.hybrid.is_some()));
    // Bad parameters.
    for bad in [
        HybridParams {
            candidates: 0,
            ..HybridParams::default()
        },
        HybridParams {
            vector_weight: 0.0,
            text_weight: 0.0,
            ..HybridParams::default()
        },
        HybridParams {
            text_weight: f32::NAN,
            ..HybridParams::default()
        },
    ] {
        assert!(shard
            .search_hybrid(&q, "beta", &SearchParams::k(5), &bad)
            .is_err());
    }
    assert!(shard
        .search_hybrid(
            &q,
            "beta",
            &SearchParams {
                max_distance: Some(1.0),
                ..SearchParams::k(5)
            },
            &HybridParams::default()
        )
        .is_err());
}

#[test]
fn hybrid_across_shards_fuses_the_union_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
    let p = Profile::new(8, Metric::Cosine);
    m.create("t/a", &p)
        .unwrap()
        .insert_batch(items(20, 11, "a"))
        .unwrap();
    m.create("t/b", &p)
        .unwrap()
        .insert_batch(items(20, 12, "b"))
        .unwrap();
    let q = random_vectors(1, 8, 13).remove(0);
    let text = "delta sigma";
    let all = SearchParams::k(40);
    let key = |s: &str, id: &str| format!("{s}:{id}");
    let mut vector = HashMap::new();
    let mut bm25 = HashMap::new();
    for name in ["t/a", "t/b"] {
        let s = m.open_shard(name).unwrap();
        for h in s.search(&q, &all).unwrap() {
            vector.insert(key(name, &h.id), h.score);
        }
        for h in s.search_text(text, &all).unwrap() {
            bm25.insert(key(name, &h.id), h.score);
        }
    }
    let found = m
        .search_hybrid(
            Targets::Prefix("t/"),
            &q,
            text,
            &SearchParams::k(40),
            &HybridParams::default(),
        )
        .unwrap();
    assert!(found.failures.is_empty());
    assert_eq!(found.hits.len(), 40);
    let want = expected(&vector, &bm25, false);
    for (h, (k, fused)) in found.hits.iter().zip(&want) {
        assert_eq!(&key(&h.shard, &h.hit.id), k);
        assert!((f64::from(h.hit.score) - fused).abs() < 1e-4);
        let parts = h.hit.hybrid.unwrap();
        assert!((parts.vector_score - vector[k]).abs() < 1e-5);
        assert_eq!(parts.text_score.is_some(), bm25.contains_key(k));
        assert!(h.hit.text.is_some());
    }
}

/// A hybrid query's BM25 part of a candidate found only by the vector ranking is computed
/// apart from FTS5's ranking (the row's text tokenized again); it must be the score
/// `search_text` gives the same row, to the bit: diacritics, case, punctuation, searchable
/// fields, repeated and common words, blank text, updated and deleted rows, non-ASCII words.
#[test]
fn rescored_text_parts_equal_search_text_scores() {
    // 200 rows in memory: FTS5 ranks. 1,300 rows in a file: past the in-memory text index's
    // threshold (256 rows), shared by the shard's readers; its scores must be FTS5's own.
    rescored_text_parts(200, false);
    rescored_text_parts(1300, true);
}

fn rescored_text_parts(n: usize, file: bool) {
    let profile = Profile::new(8, Metric::Cosine).with_searchable_fields(["tags", "doc.title"]);
    let dir = tempfile::tempdir().unwrap();
    let shard = if file {
        Shard::create(dir.path().join("t.db"), &profile).unwrap()
    } else {
        Shard::in_memory(&profile).unwrap()
    };
    let vocab = [
        "Café",
        "cafe",
        "CAFE",
        "naïve",
        "naive",
        "alpha-beta",
        "alpha",
        "42",
        "the",
        "Zürich",
        "über",
        "résumé",
        "resume",
        "x_y",
        "beta.gamma",
    ];
    let v = random_vectors(n, 8, 17);
    let items: Vec<NewItem> = (0..n)
        .map(|i| {
            let mut words: Vec<&str> = (0..(i % 9))
                .map(|j| vocab[(i * 7 + j * 3) % vocab.len()])
                .collect();
            words.push("the");
            let text = if i % 11 == 0 {
                "   ".to_string()
            } else {
                words.join(if i % 2 == 0 { " " } else { ", " })
            };
            NewItem::new(v[i].clone())
                .with_id(format!("r{i}"))
                .with_text(text)
                .with_metadata(json!({
                    "tags": [vocab[i % vocab.len()], i],
                    "doc": {"title": vocab[(i * 5) % vocab.len()]},
                }))
        })
        .collect();
    shard.insert_batch(items).unwrap();
    assert_eq!(
        shard.stats().unwrap().text_index_bytes,
        0,
        "built by a text query"
    );
    shard
        .update(
            "r5",
            sqlite_vector::Update {
                text: Some("cafe cafe cafe resume".into()),
                ..Default::default()
            },
        )
        .unwrap();
    shard.delete("r6").unwrap();
    let queries = random_vectors(40, 8, 5);
    let ten = HybridParams {
        candidates: 10,
        ..HybridParams::default()
    };
    for text in [
        "cafe naive 42",
        "CAFE the alpha",
        "resume Zurich beta gamma",
        "café naïve",
        "über alles",
    ] {
        let ranked: Vec<(String, f32)> = shard
            .search_text(text, &SearchParams::k(n))
            .unwrap()
            .into_iter()
            .map(|h| (h.id, h.score))
            .collect();
        assert_eq!(
            ranked,
            crate::api::bm25_reference(&shard, text, n),
            "{text}"
        );
        let bm25: HashMap<String, f32> = ranked.into_iter().collect();
        let mut rescored = 0;
        for q in &queries {
            // Ten candidates from each ranking: the vector ranking's rows outside the text
            // ranking's ten get their BM25 score apart.
            let hits = shard
                .search_hybrid(q, text, &SearchParams::k(10), &ten)
                .unwrap();
            let top_text: Vec<&String> = {
                let mut b: Vec<(&String, &f32)> = bm25.iter().collect();
                b.sort_by(|x, y| y.1.total_cmp(x.1).then_with(|| x.0.cmp(y.0)));
                b.into_iter().take(10).map(|(id, _)| id).collect()
            };
            for h in &hits {
                let parts = h.hybrid.unwrap();
                assert_eq!(
                    parts.text_score,
                    bm25.get(&h.id).copied(),
                    "{text} {}",
                    h.id
                );
                rescored += usize::from(parts.text_score.is_some() && !top_text.contains(&&h.id));
            }
        }
        assert!(rescored > 10, "{text}: rows are scored apart ({rescored})");
    }
    // The in-memory index exists from 256 text rows, and its bytes are reported.
    let bytes = shard.stats().unwrap().text_index_bytes;
    if n >= 256 {
        assert!(
            (n * 20..n * 400).contains(&bytes),
            "{bytes} bytes for {n} rows"
        );
    } else {
        assert_eq!(bytes, 0);
    }
}

/// Segments of a shard's full-text index (FTS5 `%_data` rows past the header records carry
/// their segment id in the bits above 37).
fn fts_segments(shard: &Shard) -> i64 {
    let rows = shard
        .query_sql(
            "SELECT count(DISTINCT id >> 37) FROM items_fts_data WHERE id >= (1 << 37)",
            &[],
        )
        .unwrap();
    match rows[0][0] {
        rusqlite::types::Value::Integer(n) => n,
        ref v => panic!("{v:?}"),
    }
}

/// Each write transaction adds a segment to the full-text index; once the items written since
/// the last merge reach a quarter of the shard (and 1,000), the segments are merged into one,
/// and text search ranks as it does over an index written at once.
#[test]
fn the_text_index_is_merged_after_enough_writes() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new(8, Metric::Cosine);
    let shard = Shard::create(dir.path().join("m.db"), &profile).unwrap();
    let all = items(1100, 7, "m");
    for chunk in all[..900].chunks(150) {
        shard.insert_batch(chunk.to_vec()).unwrap();
    }
    assert!(fts_segments(&shard) > 1, "a segment per transaction");
    shard.insert_batch(all[900..1050].to_vec()).unwrap();
    assert_eq!(fts_segments(&shard), 1, "merged after 1,050 items");
    shard.insert_batch(all[1050..].to_vec()).unwrap();
    assert_eq!(fts_segments(&shard), 2);
    let at_once = Shard::create(dir.path().join("o.db"), &profile).unwrap();
    at_once.insert_batch(all.clone()).unwrap();
    for text in ["alpha gamma", "omega item7", "sigma delta beta"] {
        let p = SearchParams::k(100);
        assert_eq!(
            shard.search_text(text, &p).unwrap(),
            at_once.search_text(text, &p).unwrap(),
            "{text}"
        );
    }
}

#[test]
fn the_text_index_is_created_by_the_first_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lazy.db");
    let shard = Shard::create(&path, &Profile::new(8, Metric::Cosine)).unwrap();
    let v = random_vectors(3, 8, 21);
    shard
        .insert(NewItem::new(v[0].clone()).with_id("plain"))
        .unwrap();
    shard.delete("plain").unwrap();
    shard
        .insert(NewItem::new(v[0].clone()).with_id("plain"))
        .unwrap();
    let tables = |s: &Shard| {
        s.query_sql(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'items_fts%'",
            &[],
        )
        .unwrap()[0][0]
            .clone()
    };
    use sqlite_vector::rusqlite::types::Value as V;
    assert_eq!(tables(&shard), V::Integer(0), "vectors only: no text index");
    // Text and hybrid search on a shard without text: nothing from the text side.
    assert!(shard
        .search_text("alpha", &SearchParams::k(5))
        .unwrap()
        .is_empty());
    let hits = shard
        .search_hybrid(
            &v[0],
            "alpha",
            &SearchParams::k(5),
            &HybridParams::default(),
        )
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].hybrid.unwrap().text_score, None);
    // A second handle opened before any text existed sees the index the first one creates.
    let other = Shard::open(&path).unwrap();
    assert!(other
        .search_text("alpha", &SearchParams::k(5))
        .unwrap()
        .is_empty());
    shard
        .insert(
            NewItem::new(v[1].clone())
                .with_id("t")
                .with_text("alpha beta"),
        )
        .unwrap();
    assert_eq!(
        tables(&shard),
        V::Integer(6),
        "items_fts, its 4 shadow tables, the vocabulary"
    );
    for s in [&shard, &other] {
        let hits = s.search_text("alpha", &SearchParams::k(5)).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "t");
    }
    // Updating and deleting text items keeps the index in step.
    shard
        .update(
            "t",
            sqlite_vector::Update {
                text: Some("gamma".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(other
        .search_text("alpha", &SearchParams::k(5))
        .unwrap()
        .is_empty());
    assert_eq!(
        other.search_text("gamma", &SearchParams::k(5)).unwrap()[0].id,
        "t"
    );
    shard.delete("t").unwrap();
    assert!(other
        .search_text("gamma", &SearchParams::k(5))
        .unwrap()
        .is_empty());
}
