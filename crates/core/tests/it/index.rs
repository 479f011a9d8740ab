//! The HNSW index inside a shard: recall against the exact oracle on real data, filtered
//! recall, deletes never returned, persistence and catch-up after the stored graph falls
//! behind or is damaged, two handles on one file, reads during writes.

use std::collections::HashSet;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use sqlite_vector::{
    Filter, HnswParams, Metric, NewItem, PlannerParams, Profile, Quantization, SearchParams,
    SearchPath, Shard,
};
use sqlite_vector_dataset::{recall_at_k, Dataset, GtMetric, QuerySet};

/// Planner that always takes the graph (for tests on small shards).
const GRAPH_ALWAYS: PlannerParams = PlannerParams {
    exact_max_items: 0,
    graph_cost_per_ef: 0,
};

/// Clustered synthetic vectors: `clusters` Gaussian blobs (the shape of real embeddings, unlike
/// i.i.d. noise on which no graph index works).
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = sqlite_vector_dataset::SeededRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| rng.vec(dim)).collect();
    (0..n)
        .map(|i| {
            centres[i % clusters]
                .iter()
                .map(|c| c + 0.15 * rng.next_normal())
                .collect()
        })
        .collect()
}

/// Inserts `vs` in one batch with ids `v0, v1, …`.
fn fill(shard: &Shard, vs: &[Vec<f32>]) {
    shard
        .insert_batch(
            vs.iter()
                .enumerate()
                .map(|(i, v)| NewItem::new(v.clone()).with_id(format!("v{i}")))
                .collect(),
        )
        .unwrap();
}

fn ids(hits: &[sqlite_vector::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

/// Share of the exact top k (`exact: true`) found by the planner's path.
fn overlap(shard: &Shard, q: &[f32], params: &SearchParams) -> (f64, SearchPath) {
    let (got, path) = shard.search_with_path(q, params).unwrap();
    let want = shard.search(q, &params.clone().with_exact(true)).unwrap();
    let want: HashSet<String> = ids(&want).into_iter().collect();
    if want.is_empty() {
        return (1.0, path);
    }
    let found = got.iter().filter(|h| want.contains(&h.id)).count();
    (found as f64 / want.len() as f64, path)
}

#[test]
fn small_shards_scan_exactly_and_large_ones_use_the_graph() {
    let (_d, _p, shard) = crate::temp_shard(16, Metric::Cosine);
    let vs = clustered(600, 16, 20, 1);
    fill(&shard, &vs);
    shard.create_index(HnswParams::default()).unwrap();
    assert!(shard.create_index(HnswParams::default()).is_err());
    // Default planner: 600 items is below the exact threshold.
    let (_, path) = shard.search_with_path(&vs[3], &SearchParams::k(5)).unwrap();
    assert_eq!(path, SearchPath::Exact);
    let st = shard.stats().unwrap();
    let ix = st.index.expect("index stats");
    assert_eq!(
        (ix.nodes, ix.m, ix.unfiltered_path),
        (600, 16, SearchPath::Exact)
    );
    assert!(
        st.search_method.starts_with("exact"),
        "{}",
        st.search_method
    );
    // Forced to the graph: same answers as exact on this easy data.
    shard.set_planner(GRAPH_ALWAYS);
    let (r, path) = overlap(&shard, &vs[3], &SearchParams::k(5));
    assert_eq!(path, SearchPath::Hnsw);
    assert!(r >= 0.8, "recall {r}");
    assert!(shard.stats().unwrap().search_method.starts_with("hnsw"));
    // Other metric than the shard's, or `exact`: exact path.
    let p = SearchParams::k(5).with_metric(Metric::L2);
    assert_eq!(
        shard.search_with_path(&vs[3], &p).unwrap().1,
        SearchPath::Exact
    );
    let p = SearchParams::k(5).with_exact(true);
    assert_eq!(
        shard.search_with_path(&vs[3], &p).unwrap().1,
        SearchPath::Exact
    );
    // ef_search bounds.
    for bad in [0, sqlite_vector::MAX_EF_SEARCH + 1] {
        let p = SearchParams::k(5).with_ef_search(bad);
        assert!(matches!(
            shard.search(&vs[3], &p),
            Err(sqlite_vector::Error::InvalidArgument(_))
        ));
    }
    // Bad index parameters are refused and change nothing.
    assert!(shard.drop_index().unwrap());
    assert!(!shard.drop_index().unwrap());
    let bad = HnswParams {
        m: 1,
        ..HnswParams::default()
    };
    assert!(matches!(
        shard.create_index(bad),
        Err(sqlite_vector::Error::InvalidArgument(_))
    ));
    assert!(shard.index_params().is_none());
}

#[test]
fn writes_maintain_the_index_and_reopening_loads_it() {
    let (_d, path, shard) = crate::temp_shard(24, Metric::Cosine);
    shard.create_index(HnswParams::default()).unwrap();
    let vs = clustered(1500, 24, 30, 2);
    // Inserts one by one and in batches, after the index exists.
    for (i, v) in vs.iter().enumerate().take(300) {
        shard
            .insert(NewItem::new(v.clone()).with_id(format!("v{i}")))
            .unwrap();
    }
    shard
        .insert_batch(
            vs.iter()
                .enumerate()
                .skip(300)
                .map(|(i, v)| NewItem::new(v.clone()).with_id(format!("v{i}")))
                .collect(),
        )
        .unwrap();
    // Updates (vector and metadata-only) and deletes.
    for i in (0..1500).step_by(7) {
        shard.delete(&format!("v{i}")).unwrap();
    }
    for i in (1..1500).step_by(11).filter(|i| i % 7 != 0) {
        let update = sqlite_vector::Update {
            vector: Some(vs[(i + 1) % 1500].clone()),
            ..Default::default()
        };
        shard.update(&format!("v{i}"), update).unwrap();
    }
    shard
        .update(
            "v2",
            sqlite_vector::Update {
                metadata: Some(json!({"tag": "x"})),
                ..Default::default()
            },
        )
        .unwrap();
    shard.set_planner(GRAPH_ALWAYS);
    let live = shard.len();
    assert_eq!(shard.stats().unwrap().index.unwrap().nodes, live);
    let before: Vec<Vec<String>> = vs
        .iter()
        .step_by(50)
        .map(|q| ids(&shard.search(q, &SearchParams::k(10)).unwrap()))
        .collect();
    let mut total = 0.0;
    for q in vs.iter().step_by(50) {
        let (r, path) = overlap(&shard, q, &SearchParams::k(10));
        assert_eq!(path, SearchPath::Hnsw);
        total += r;
    }
    let mean = total / before.len() as f64;
    assert!(
        mean >= 0.95,
        "recall@10 {mean} after inserts, updates and deletes"
    );
    for hits in &before {
        for id in hits {
            let n: usize = id[1..].parse().unwrap();
            assert_ne!(n % 7, 0, "deleted id {id} returned");
        }
    }
    drop(shard);

    // Reopen: the stored graph is used as is (same answers, not rebuilt).
    let shard = Shard::open(&path).unwrap();
    shard.set_planner(GRAPH_ALWAYS);
    let ix = shard
        .stats()
        .unwrap()
        .index
        .expect("index survives reopening");
    assert!(!ix.rebuilt_on_open);
    assert_eq!(ix.nodes, live);
    let after: Vec<Vec<String>> = vs
        .iter()
        .step_by(50)
        .map(|q| ids(&shard.search(q, &SearchParams::k(10)).unwrap()))
        .collect();
    assert_eq!(before, after);
    // Writes after reopening keep it in step.
    shard
        .insert(NewItem::new(vs[0].clone()).with_id("again"))
        .unwrap();
    let hits = shard.search(&vs[0], &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, "again");
}

fn raw_db(path: &std::path::Path) -> sqlite_vector::rusqlite::Connection {
    sqlite_vector::rusqlite::Connection::open(path).unwrap()
}

#[test]
fn a_lagging_or_damaged_stored_graph_is_caught_up_or_rebuilt() {
    let (_d, path, shard) = crate::temp_shard(16, Metric::L2);
    let vs = clustered(800, 16, 16, 3);
    fill(&shard, &vs);
    shard.create_index(HnswParams::default()).unwrap();
    drop(shard);

    // 1. Changes the graph has not seen: an older build (or a crash) left its stamp behind.
    //    Simulated by writing items through a handle opened before the index existed... here
    //    by dropping the index tables' knowledge of the last writes: set the stamp back to 0.
    {
        let db = raw_db(&path);
        let mut header: Vec<u8> = db
            .query_row("SELECT header FROM hnsw_state", [], |r| r.get(0))
            .unwrap();
        header[72..80].copy_from_slice(&0u64.to_le_bytes());
        db.execute("UPDATE hnsw_state SET header = ?1", [header])
            .unwrap();
        // And an item deleted behind the index's back (a tombstone with a newer seq).
        db.execute(
            "UPDATE items SET vector = NULL, metadata = NULL, text = NULL, cl = cl + 1, \
             seq = (SELECT max(seq) + 1 FROM items) WHERE id = 'v5'",
            [],
        )
        .unwrap();
    }
    let shard = Shard::open(&path).unwrap();
    shard.set_planner(GRAPH_ALWAYS);
    let ix = shard.stats().unwrap().index.unwrap();
    assert_eq!(ix.nodes, 799);
    assert!(
        !ix.rebuilt_on_open,
        "a lagging graph is caught up, not rebuilt"
    );
    let hits = shard.search(&vs[5], &SearchParams::k(20)).unwrap();
    assert!(hits.iter().all(|h| h.id != "v5"), "deleted id returned");
    drop(shard);

    // 2. A node record lost: the graph no longer matches the items → rebuilt.
    raw_db(&path)
        .execute(
            "DELETE FROM hnsw_nodes WHERE node = (SELECT max(node) FROM hnsw_nodes)",
            [],
        )
        .unwrap();
    let shard = Shard::open(&path).unwrap();
    let ix = shard.stats().unwrap().index.unwrap();
    assert!(ix.rebuilt_on_open);
    assert_eq!(ix.nodes, 799);
    // The rebuilt graph is written back by the next write.
    shard
        .insert(NewItem::new(vs[1].clone()).with_id("new"))
        .unwrap();
    drop(shard);
    let shard = Shard::open(&path).unwrap();
    let ix = shard.stats().unwrap().index.unwrap();
    assert!(!ix.rebuilt_on_open);
    assert_eq!(ix.nodes, 800);
    drop(shard);

    // 3. Garbage in the header and in a record: still opens, rebuilt, never wrong.
    for sql in [
        "UPDATE hnsw_state SET header = x'00112233'",
        "UPDATE hnsw_nodes SET record = x'01ff' WHERE node = (SELECT min(node) FROM hnsw_nodes)",
    ] {
        raw_db(&path).execute(sql, []).unwrap();
        let shard = Shard::open(&path).unwrap();
        shard.set_planner(GRAPH_ALWAYS);
        let ix = shard.stats().unwrap().index.unwrap();
        assert!(ix.rebuilt_on_open, "{sql}");
        assert_eq!(ix.nodes, shard.len());
        let (r, path_taken) = overlap(&shard, &vs[9], &SearchParams::k(10));
        assert_eq!(path_taken, SearchPath::Hnsw);
        assert!(r >= 0.8, "{sql}: recall {r}");
        shard
            .insert(NewItem::new(vs[2].clone()).with_id(format!("after-{}", sql.len())))
            .unwrap();
    }
}

#[test]
fn two_handles_on_one_file_both_see_everything() {
    let (_d, path, a) = crate::temp_shard(16, Metric::Cosine);
    a.create_index(HnswParams::default()).unwrap();
    let b = Shard::open(&path).unwrap();
    a.set_planner(GRAPH_ALWAYS);
    b.set_planner(GRAPH_ALWAYS);
    let vs = clustered(400, 16, 10, 4);
    for (i, v) in vs.iter().enumerate() {
        let h = if i % 2 == 0 { &a } else { &b };
        h.insert(NewItem::new(v.clone()).with_id(format!("v{i}")))
            .unwrap();
    }
    b.delete("v0").unwrap();
    for h in [&a, &b] {
        let hits = h.search(&vs[0], &SearchParams::k(3)).unwrap();
        assert!(hits.iter().all(|x| x.id != "v0"));
        let hits = h.search(&vs[1], &SearchParams::k(1)).unwrap();
        assert_eq!(hits[0].id, "v1");
        assert_eq!(h.stats().unwrap().index.unwrap().nodes, 399);
    }
    drop((a, b));
    let c = Shard::open(&path).unwrap();
    let ix = c.stats().unwrap().index.unwrap();
    assert_eq!(ix.nodes, 399);
    assert!(
        !ix.rebuilt_on_open,
        "the stored graph plus catch-up matches"
    );
}

#[test]
fn readers_search_while_a_writer_inserts() {
    let shard = Arc::new(Shard::in_memory(&Profile::new(16, Metric::Cosine)).unwrap());
    shard.create_index(HnswParams::default()).unwrap();
    shard.set_planner(GRAPH_ALWAYS);
    let vs = Arc::new(clustered(1200, 16, 12, 5));
    shard
        .insert_batch(
            vs.iter()
                .take(200)
                .enumerate()
                .map(|(i, v)| NewItem::new(v.clone()).with_id(format!("v{i}")))
                .collect(),
        )
        .unwrap();
    let writer = {
        let (shard, vs) = (shard.clone(), vs.clone());
        std::thread::spawn(move || {
            for i in 200..1200 {
                shard
                    .insert(NewItem::new(vs[i].clone()).with_id(format!("v{i}")))
                    .unwrap();
                if i % 3 == 0 {
                    shard.delete(&format!("v{}", i - 100)).unwrap();
                }
            }
        })
    };
    let mut searches = 0;
    while !writer.is_finished() {
        let q = &vs[searches % 1200];
        let hits = shard.search(q, &SearchParams::k(5)).unwrap();
        assert!(!hits.is_empty());
        searches += 1;
    }
    writer.join().unwrap();
    assert!(searches > 0);
    let deleted: HashSet<String> = (200..1200)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("v{}", i - 100))
        .collect();
    for q in vs.iter().step_by(40) {
        for h in shard.search(q, &SearchParams::k(10)).unwrap() {
            assert!(!deleted.contains(&h.id), "deleted {} returned", h.id);
        }
    }
    assert_eq!(
        shard.stats().unwrap().index.unwrap().nodes,
        1200 - deleted.len()
    );
}

#[test]
fn removing_most_items_rebuilds_the_graph() {
    let shard = Shard::in_memory(&Profile::new(8, Metric::L2)).unwrap();
    let vs = clustered(1000, 8, 10, 6);
    fill(&shard, &vs);
    shard.create_index(HnswParams::default()).unwrap();
    shard.set_planner(GRAPH_ALWAYS);
    for i in 0..700 {
        shard.delete(&format!("v{i}")).unwrap();
        let ratio = shard.stats().unwrap().index.unwrap().deleted_ratio;
        assert!(
            ratio <= sqlite_vector::hnsw::REBUILD_RATIO,
            "ratio {ratio} after {i}"
        );
    }
    let (r, _) = overlap(&shard, &vs[900], &SearchParams::k(10));
    assert!(r >= 0.9, "recall {r}");
}

/// Filters: a selective one scans the matching items exactly, a broad one walks the graph; both
/// return only matching items, at recall close to the exact filtered search.
#[test]
fn filtered_search_picks_its_path_and_keeps_recall() {
    let shard = Shard::in_memory(&Profile::new(16, Metric::Cosine)).unwrap();
    let vs = clustered(6000, 16, 40, 7);
    shard
        .insert_batch(
            vs.iter()
                .enumerate()
                .map(|(i, v)| {
                    NewItem::new(v.clone())
                        .with_id(format!("v{i}"))
                        .with_metadata(json!({"b": i % 100}))
                })
                .collect(),
        )
        .unwrap();
    shard.create_index(HnswParams::default()).unwrap();
    shard.set_planner(PlannerParams {
        exact_max_items: 100,
        graph_cost_per_ef: 4,
    });
    let broad: Filter = r#"{"b": {"$lt": 60}}"#.parse().unwrap();
    let narrow: Filter = r#"{"b": 7}"#.parse().unwrap();
    type Case = (Filter, SearchPath, f64, fn(u64) -> bool);
    let cases: [Case; 2] = [
        (broad, SearchPath::Hnsw, 0.9, |b| b < 60),
        (narrow, SearchPath::Exact, 1.0, |b| b == 7),
    ];
    for (filter, want_path, min_recall, matches) in cases {
        let (mut sum, mut n) = (0.0, 0);
        for q in vs.iter().step_by(97) {
            let p = SearchParams::k(10).with_filter(filter.clone());
            let (hits, path) = shard.search_with_path(q, &p).unwrap();
            assert_eq!(path, want_path);
            assert_eq!(hits.len(), 10);
            for h in &hits {
                let b = h.metadata["b"].as_u64().unwrap();
                assert!(matches(b), "{want_path}: b = {b} does not match");
            }
            sum += overlap(&shard, q, &p).0;
            n += 1;
        }
        let mean = sum / n as f64;
        assert!(mean >= min_recall, "{want_path}: filtered recall {mean}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random inserts, deletes, re-inserts and updates: the graph path never returns an id that
    /// is not live, holds exactly the live items, and survives reopening.
    #[test]
    fn deleted_ids_are_never_returned(ops in proptest::collection::vec((0u8..4, 0usize..60), 1..160)) {
        let (_d, path, shard) = crate::temp_shard(6, Metric::L2);
        shard.create_index(HnswParams { m: 4, ef_construction: 16, ..HnswParams::default() }).unwrap();
        shard.set_planner(GRAPH_ALWAYS);
        let mut live: HashSet<usize> = HashSet::new();
        let vec_of = |i: usize, salt: u8| -> Vec<f32> {
            (0..6).map(|j| ((i * 7 + j * 3 + salt as usize) % 11) as f32 - 5.0).collect()
        };
        for (op, i) in ops {
            let id = format!("k{i}");
            match op {
                0 | 1 => {
                    let r = shard.upsert(NewItem::new(vec_of(i, op)).with_id(&id));
                    prop_assert!(r.is_ok());
                    live.insert(i);
                }
                2 => {
                    let r = shard.delete(&id);
                    prop_assert_eq!(r.is_ok(), live.remove(&i));
                }
                _ => {
                    let u = sqlite_vector::Update { vector: Some(vec_of(i, 9)), ..Default::default() };
                    prop_assert_eq!(shard.update(&id, u).is_ok(), live.contains(&i));
                }
            }
            let hits = shard.search(&vec_of(i, 1), &SearchParams::k(60)).unwrap();
            for h in &hits {
                let n: usize = h.id[1..].parse().unwrap();
                prop_assert!(live.contains(&n), "{} returned but not live", h.id);
            }
        }
        prop_assert_eq!(shard.stats().unwrap().index.unwrap().nodes, live.len());
        drop(shard);
        let shard = Shard::open(&path).unwrap();
        shard.set_planner(GRAPH_ALWAYS);
        let ix = shard.stats().unwrap().index.unwrap();
        prop_assert_eq!(ix.nodes, live.len());
        prop_assert!(!ix.rebuilt_on_open);
        let hits = shard.search(&vec_of(0, 0), &SearchParams::k(60)).unwrap();
        prop_assert_eq!(hits.len(), live.len().min(60));
    }
}

/// Real data: default parameters reach recall@10 ≥ 0.99 on debian-minilm against its exact
/// ground truth, by the HNSW path, and the graph persists in the shard file.
#[test]
fn debian_minilm_hnsw_recall_and_persistence() {
    let dir = match sqlite_vector_dataset::shared_dataset("debian-minilm") {
        Some(d) => d,
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must provide ../shared/data/debian-minilm beside the checkout")
        }
        None => {
            eprintln!("SKIPPED debian_minilm_hnsw_recall_and_persistence: no debian-minilm");
            return;
        }
    };
    let ds = Dataset::load(&dir, GtMetric::Cos, QuerySet::Full).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("debian.db");
    let shard = Shard::create(&path, &Profile::new(ds.base.cols, Metric::Cosine)).unwrap();
    shard.create_index(HnswParams::default()).unwrap();
    shard
        .insert_batch(
            (0..ds.base.rows)
                .map(|i| NewItem::new(ds.base.row(i).to_vec()).with_id(i.to_string()))
                .collect(),
        )
        .unwrap();
    drop(shard);
    let shard = Shard::open(&path).unwrap();
    assert!(!shard.stats().unwrap().index.unwrap().rebuilt_on_open);
    let mut sum = 0.0;
    for qi in 0..ds.queries.rows {
        let (hits, path) = shard
            .search_with_path(ds.queries.row(qi), &SearchParams::k(10))
            .unwrap();
        assert_eq!(path, SearchPath::Hnsw);
        let got: Vec<usize> = hits.iter().map(|h| h.id.parse().unwrap()).collect();
        let dist: Vec<f32> = hits.iter().map(|h| 1.0 - h.score).collect();
        sum += recall_at_k(&got, &dist, ds.gt_ids.row(qi), ds.gt_dist.row(qi), 10);
    }
    let recall = sum / ds.queries.rows as f64;
    eprintln!("debian-minilm hnsw default recall@10 = {recall:.4}");
    assert!(
        recall >= 0.99,
        "recall@10 {recall} < 0.99 with default parameters"
    );

    // int8 without the index: codes only in memory, f32 rescoring from SQLite.
    assert!(shard.drop_index().unwrap());
    shard.set_quantization(Quantization::Int8).unwrap();
    let st = shard.stats().unwrap();
    let ratio = st.bytes_in_memory as f64 / st.raw_vector_bytes as f64;
    assert!(ratio <= 0.35, "int8 arena is {ratio:.3}× the f32 bytes");
    let mut sum = 0.0;
    for qi in 0..ds.queries.rows {
        let (hits, path) = shard
            .search_with_path(ds.queries.row(qi), &SearchParams::k(10))
            .unwrap();
        assert_eq!(path, SearchPath::Exact);
        let got: Vec<usize> = hits.iter().map(|h| h.id.parse().unwrap()).collect();
        let dist: Vec<f32> = hits.iter().map(|h| 1.0 - h.score).collect();
        sum += recall_at_k(&got, &dist, ds.gt_ids.row(qi), ds.gt_dist.row(qi), 10);
    }
    let recall = sum / ds.queries.rows as f64;
    eprintln!("debian-minilm int8 + rescoring recall@10 = {recall:.4}, memory {ratio:.3}× f32");
    assert!(recall >= 0.99, "int8 recall@10 {recall}");
}

/// int8 quantization in a shard: trained on its items, stored, maintained by writes, exact
/// answers after rescoring, memory under 0.35× of f32 without an index, f32 rows back while an
/// index needs them.
#[test]
fn int8_quantization_round_trip() {
    let (_d, path, shard) = crate::temp_shard(384, Metric::Cosine);
    assert!(matches!(
        shard.set_quantization(Quantization::Int8),
        Err(sqlite_vector::Error::InvalidArgument(_))
    ));
    let base = sqlite_vector_dataset::read_f32(crate::sample_dir().join("base.npy")).unwrap();
    let vs: Vec<Vec<f32>> = (0..base.rows).map(|i| base.row(i).to_vec()).collect();
    fill(&shard, &vs);
    let exact_before: Vec<Vec<String>> = vs
        .iter()
        .step_by(97)
        .map(|q| ids(&shard.search(q, &SearchParams::k(10)).unwrap()))
        .collect();
    let f32_bytes = shard.stats().unwrap().bytes_in_memory;
    shard.set_quantization(Quantization::Int8).unwrap();
    assert_eq!(shard.quantization(), Quantization::Int8);
    let st = shard.stats().unwrap();
    assert_eq!(st.quantization, Quantization::Int8);
    assert!(st.search_method.contains("int8"), "{}", st.search_method);
    let ratio = st.bytes_in_memory as f64 / st.raw_vector_bytes as f64;
    assert!(
        ratio <= 0.35,
        "{ratio} ({} vs {f32_bytes})",
        st.bytes_in_memory
    );
    let check = |shard: &Shard| {
        let got: Vec<Vec<String>> = vs
            .iter()
            .step_by(97)
            .map(|q| ids(&shard.search(q, &SearchParams::k(10)).unwrap()))
            .collect();
        let same: usize = got
            .iter()
            .zip(&exact_before)
            .map(|(g, w)| g.iter().filter(|id| w.contains(id)).count())
            .sum();
        let recall = same as f64 / (10 * got.len()) as f64;
        assert!(recall >= 0.99, "int8 recall {recall}");
    };
    check(&shard);
    // Writes keep the codes: a new item is found, a deleted one never returned.
    let mut v = vs[3].clone();
    v[0] += 0.01;
    shard
        .insert(NewItem::new(v.clone()).with_id("new"))
        .unwrap();
    assert_eq!(shard.search(&v, &SearchParams::k(1)).unwrap()[0].id, "new");
    shard.delete("new").unwrap();
    assert!(shard
        .search(&v, &SearchParams::k(5))
        .unwrap()
        .iter()
        .all(|h| h.id != "new"));
    // A filter scans the matching codes only.
    shard
        .update(
            "v7",
            sqlite_vector::Update {
                metadata: Some(json!({"tag": 1})),
                ..Default::default()
            },
        )
        .unwrap();
    let f: Filter = r#"{"tag": 1}"#.parse().unwrap();
    let hits = shard
        .search(&vs[0], &SearchParams::k(3).with_filter(f))
        .unwrap();
    assert_eq!(ids(&hits), ["v7"]);
    drop(shard);
    // Reopen: still quantized.
    let shard = Shard::open(&path).unwrap();
    assert_eq!(shard.quantization(), Quantization::Int8);
    check(&shard);
    // An index brings the f32 rows back for the graph; dropping it frees them again.
    shard.create_index(HnswParams::default()).unwrap();
    assert!(shard.stats().unwrap().bytes_in_memory > f32_bytes);
    shard.set_planner(GRAPH_ALWAYS);
    check(&shard);
    shard.drop_index().unwrap();
    let st = shard.stats().unwrap();
    assert!((st.bytes_in_memory as f64 / st.raw_vector_bytes as f64) <= 0.35);
    // Back to f32.
    shard.set_quantization(Quantization::None).unwrap();
    let st = shard.stats().unwrap();
    assert_eq!(st.quantization, Quantization::None);
    assert!(st.bytes_in_memory as f64 >= st.raw_vector_bytes as f64);
    let got: Vec<Vec<String>> = vs
        .iter()
        .step_by(97)
        .map(|q| ids(&shard.search(q, &SearchParams::k(10)).unwrap()))
        .collect();
    assert_eq!(got, exact_before);
}

/// Exact top-`k` ids by brute force over `vs` (ids `v0, v1, …`), L2.
fn brute_force(vs: &[Vec<f32>], q: &[f32], k: usize) -> Vec<String> {
    let mut d: Vec<(f32, usize)> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), i))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    d.iter().take(k).map(|&(_, i)| format!("v{i}")).collect()
}

#[test]
fn a_missing_or_mistyped_index_state_never_bricks_the_items() {
    let (_d, path, shard) = crate::temp_shard(16, Metric::L2);
    let vs = clustered(400, 16, 8, 11);
    fill(&shard, &vs);
    shard.create_index(HnswParams::default()).unwrap();
    drop(shard);
    for (sql, repair_by_rebuild) in [
        ("DELETE FROM hnsw_state", true),
        (
            "UPDATE hnsw_state SET header = 'not a blob', epoch = 'x'",
            false,
        ),
        (
            "DROP TABLE hnsw_state; CREATE TABLE hnsw_state (id INTEGER PRIMARY KEY)",
            true,
        ),
    ] {
        raw_db(&path).execute_batch(sql).unwrap();
        // Opens, searches exactly (the oracle), says why, and still takes writes.
        let shard = Shard::open(&path).unwrap();
        shard.set_planner(GRAPH_ALWAYS);
        let stats = shard.stats().unwrap();
        assert!(stats.index.is_none(), "{sql}");
        assert_eq!(stats.damage.len(), 1, "{sql}: {:?}", stats.damage);
        assert!(
            stats.damage[0].starts_with("index damaged: hnsw_state")
                && stats.damage[0].contains("index --drop"),
            "{sql}: {:?}",
            stats.damage
        );
        assert!(stats.search_method.starts_with("exact"), "{sql}");
        for q in [&vs[3], &vs[200]] {
            assert_eq!(
                ids(&shard.search(q, &SearchParams::k(10)).unwrap()),
                brute_force(&vs, q, 10),
                "{sql}"
            );
        }
        let e = shard.check_integrity().unwrap_err();
        assert!(e.to_string().contains("index damaged"), "{e}");
        assert_eq!(shard.len(), 400);
        drop(shard);
        // Every handle can repair it: rebuild or drop.
        let shard = Shard::open(&path).unwrap();
        if repair_by_rebuild {
            shard.create_index(HnswParams::default()).unwrap();
        } else {
            assert!(shard.drop_index().unwrap(), "a damaged index counts as one");
        }
        assert!(shard.stats().unwrap().damage.is_empty());
        shard.check_integrity().unwrap();
        drop(shard);
        let shard = Shard::open(&path).unwrap();
        let stats = shard.stats().unwrap();
        assert!(stats.damage.is_empty(), "{sql}: {:?}", stats.damage);
        assert_eq!(stats.index.is_some(), repair_by_rebuild, "{sql}");
        if !repair_by_rebuild {
            shard.create_index(HnswParams::default()).unwrap();
        }
    }
}

#[test]
fn a_damaged_quantizer_never_bricks_the_items() {
    let (_d, path, shard) = crate::temp_shard(16, Metric::L2);
    let vs = clustered(300, 16, 8, 12);
    fill(&shard, &vs);
    shard.set_quantization(Quantization::Int8).unwrap();
    drop(shard);
    for sql in [
        "UPDATE meta SET value = 'zz' WHERE key = 'quantizer'",
        "UPDATE meta SET value = x'0102' WHERE key = 'quantizer'",
        "UPDATE meta SET value = '00112233' WHERE key = 'quantizer'",
    ] {
        raw_db(&path).execute_batch(sql).unwrap();
        let shard = Shard::open(&path).unwrap();
        let stats = shard.stats().unwrap();
        assert_eq!(stats.quantization, Quantization::None, "{sql}");
        assert_eq!(stats.damage.len(), 1, "{sql}: {:?}", stats.damage);
        assert!(
            stats.damage[0].starts_with("quantizer damaged: "),
            "{sql}: {:?}",
            stats.damage
        );
        assert_eq!(
            ids(&shard.search(&vs[7], &SearchParams::k(10)).unwrap()),
            brute_force(&vs, &vs[7], 10),
            "{sql}"
        );
        assert!(shard.check_integrity().is_err());
        // Retraining repairs it.
        shard.set_quantization(Quantization::Int8).unwrap();
        let stats = shard.stats().unwrap();
        assert!(stats.damage.is_empty(), "{sql}: {:?}", stats.damage);
        assert_eq!(stats.quantization, Quantization::Int8);
        shard.check_integrity().unwrap();
    }
}
