//! The on-disk format: a schema snapshot (sqlite-vec's `test_shadow`), and fixture shards of
//! released formats opened on every run.

use std::path::{Path, PathBuf};

use serde_json::json;
use sqlite_vector::rusqlite::types::Value as SqlValue;
use sqlite_vector::{
    Change, HnswParams, Metric, NewItem, PlannerParams, Profile, Quantization, SearchParams,
    SearchPath, Shard, SiteId,
};

use crate::random_vectors;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// A shard with every table the format has: items and their full-text index, an HNSW index,
/// an int8 quantizer, and changes received from another site.
fn full_shard(path: &Path) -> Shard {
    let profile = Profile::new(8, Metric::Cosine).with_searchable_fields(["title"]);
    let shard = Shard::create(path, &profile).unwrap();
    let v = random_vectors(300, 8, 2024);
    let items = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            NewItem::new(x.clone())
                .with_id(format!("item-{i}"))
                .with_metadata(json!({"title": format!("title {i}"), "n": i}))
                .with_text(format!("text of item {i}"))
        })
        .collect();
    shard.insert_batch(items).unwrap();
    shard.delete("item-7").unwrap();
    shard.set_quantization(Quantization::Int8).unwrap();
    shard.create_index(HnswParams::default()).unwrap();
    let remote = Change {
        id: "from-away".into(),
        seq: 1,
        hlc: 1 << 16,
        site_id: SiteId([0x42; 16]),
        causal_length: 1,
        vector: Some(vec![0.5; 8]),
        metadata: Some(r#"{"title": "remote"}"#.into()),
        text: Some("sent by another site".into()),
    };
    shard.transaction(|tx| tx.apply_remote(&remote)).unwrap();
    shard
}

/// The schema of a shard: every object of `sqlite_schema` (tables, indexes, FTS5 shadow tables,
/// views), one line each, in name order.
fn schema_of(shard: &Shard) -> String {
    let rows = shard
        .query_sql(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY name",
            &[],
        )
        .unwrap();
    let text = |v: &SqlValue| match v {
        SqlValue::Text(t) => t.split_whitespace().collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    };
    rows.iter()
        .map(|r| r.iter().map(text).collect::<Vec<_>>().join(" | "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn schema_matches_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let shard = full_shard(&dir.path().join("s.db"));
    let got = schema_of(&shard);
    let path = fixture("schema.snapshot");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        got, want,
        "the schema changed: bump FORMAT_VERSION with a migration if a released build cannot \
         read it, then rerun with UPDATE_SNAPSHOTS=1 and commit tests/fixtures/schema.snapshot"
    );
}

/// Writes the fixture of format 1 with an index and a quantizer. Run once per released format:
/// `cargo test -p sqlite-vector --test it -- --ignored make_fixture_v1_hnsw_int8`.
#[test]
#[ignore = "writes tests/fixtures/format-v1-hnsw-int8.db"]
fn make_fixture_v1_hnsw_int8() {
    let path = fixture("format-v1-hnsw-int8.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    drop(full_shard(&path));
    // One file: the WAL copied into it and removed.
    let db = sqlite_vector::rusqlite::Connection::open(&path).unwrap();
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(db);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn fixture_with_index_and_quantizer_opens_without_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    std::fs::copy(fixture("format-v1-hnsw-int8.db"), &path).unwrap();
    let shard = Shard::open(&path).unwrap();
    let stats = shard.stats().unwrap();
    assert_eq!(
        (stats.count, stats.tombstones, stats.format_version),
        (300, 1, 1)
    );
    assert_eq!(stats.quantization, Quantization::Int8);
    let index = stats.index.expect("the fixture has an index");
    assert!(
        !index.rebuilt_on_open,
        "the stored graph must load as it is"
    );
    assert_eq!(
        (index.nodes, index.m, index.ef_construction),
        (300, 16, 200)
    );
    assert_eq!(shard.seen().unwrap()[0].site_id, SiteId([0x42; 16]));
    // The stored vectors answer exactly, through the int8 path and the graph alike.
    let v = random_vectors(300, 8, 2024);
    shard.set_planner(PlannerParams {
        exact_max_items: 0,
        ..PlannerParams::default()
    });
    let exact = SearchParams::k(1).with_exact(true);
    for i in [0usize, 42, 299] {
        assert_eq!(
            shard.search(&v[i], &exact).unwrap()[0].id,
            format!("item-{i}")
        );
        let (hits, path) = shard
            .search_with_path(&v[i], &SearchParams::k(1).with_ef_search(64))
            .unwrap();
        assert_eq!(path, SearchPath::Hnsw);
        assert_eq!(hits[0].id, format!("item-{i}"));
    }
    assert_eq!(
        shard.search_text("remote", &SearchParams::k(1)).unwrap()[0].id,
        "from-away"
    );
    assert!(shard.get("item-7").is_err());
    // And it takes writes: the graph and the codes follow.
    shard
        .insert(NewItem::new(vec![0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]).with_id("new"))
        .unwrap();
    assert_eq!(
        shard
            .search(
                &[0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
                &SearchParams::k(1)
            )
            .unwrap()[0]
            .id,
        "new"
    );
    shard.check_integrity().unwrap();
}
