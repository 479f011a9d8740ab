//! `sqlite-vector demo`: a tour on the sample of 2,000 real Debian package descriptions with
//! all-MiniLM-L6-v2 vectors that ships inside the binary (`data/sample/`), so it runs on a fresh
//! clone with no network and no other files.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use sqlite_vector::{Filter, NewItem, Profile, SearchParams, Shard};
use sqlite_vector_dataset::{percentile, read_f32_bytes, read_i32_bytes, recall_at_k};

use crate::{new_file, user, CliResult};

/// A file of `data/sample/`, compiled in with the `demo-data` feature (default); without it (the
/// npm platform package's build, which must stay small) empty, and the demo says so.
macro_rules! sample {
    (bytes $name:literal) => {{
        #[cfg(feature = "demo-data")]
        let data: &[u8] = include_bytes!(concat!("../../../data/sample/", $name));
        #[cfg(not(feature = "demo-data"))]
        let data: &[u8] = &[];
        data
    }};
    (str $name:literal) => {{
        #[cfg(feature = "demo-data")]
        let data: &str = include_str!(concat!("../../../data/sample/", $name));
        #[cfg(not(feature = "demo-data"))]
        let data: &str = "";
        data
    }};
}

const BASE: &[u8] = sample!(bytes "base.npy");
const ITEMS: &str = sample!(str "items.jsonl");
const QUERIES: &[u8] = sample!(bytes "queries.npy");
const QUERY_TEXTS: &str = sample!(str "queries.jsonl");
const GT_IDS: &[u8] = sample!(bytes "gt_cos_ids.npy");
const GT_DIST: &[u8] = sample!(bytes "gt_cos_dist.npy");

/// The error of a build without the sample.
fn no_sample() -> CliResult<()> {
    if cfg!(feature = "demo-data") {
        Ok(())
    } else {
        Err(user(
            "this build of sqlite-vector leaves out the demo's sample data (the npm package's, to \
             stay small): run the demo from a clone of the repository (cargo run -p \
             sqlite-vector-cli -- demo)",
        ))
    }
}

/// The sample as items ready to insert (vectors, ids = package names, metadata, text).
pub(crate) fn sample_items() -> CliResult<Vec<NewItem>> {
    no_sample()?;
    let base = read_f32_bytes(BASE, "sample base.npy")?;
    let mut items = Vec::with_capacity(base.rows);
    for (row, line) in ITEMS.lines().enumerate() {
        let mut v: Value = serde_json::from_str(line).map_err(|e| user(format!("sample: {e}")))?;
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let text = v["text"].as_str().map(str::to_string);
        let metadata = v.get_mut("metadata").map(Value::take);
        items.push(NewItem {
            id: Some(id),
            vector: base.row(row).to_vec(),
            metadata,
            text,
        });
    }
    Ok(items)
}

fn snippet(text: &Option<String>, n: usize) -> String {
    let t = text.as_deref().unwrap_or("");
    let s: String = t.chars().take(n).collect();
    if t.chars().count() > n {
        format!("{s}…")
    } else {
        s
    }
}

fn show(hits: &[sqlite_vector::Hit]) {
    for (i, h) in hits.iter().enumerate() {
        println!(
            "   {}. {:<32} {:.3}  [{}]  {}",
            i + 1,
            h.id,
            h.score,
            h.metadata["kind"].as_str().unwrap_or("?"),
            snippet(&h.text, 60)
        );
    }
}

/// Runs the demo.
pub fn run(keep: Option<PathBuf>) -> CliResult {
    no_sample()?;
    let queries = read_f32_bytes(QUERIES, "sample queries.npy")?;
    let gt_ids = read_i32_bytes(GT_IDS, "sample gt_cos_ids.npy")?;
    let gt_dist = read_f32_bytes(GT_DIST, "sample gt_cos_dist.npy")?;
    let qtexts: Vec<Value> = QUERY_TEXTS
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| user(format!("sample: {e}")))?;
    let items = sample_items()?;
    let n = items.len();
    let row_of: std::collections::HashMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.id.clone().unwrap_or_default(), i))
        .collect();

    let tmp = std::env::temp_dir().join(format!("sqlite-vector-demo-{}.db", std::process::id()));
    let path = keep.clone().unwrap_or_else(|| tmp.clone());
    if path.exists() {
        return Err(user(format!("{} already exists", path.display())));
    }
    new_file(&path)?;
    println!("sqlite-vector demo: {n} Debian package descriptions, all-MiniLM-L6-v2 vectors (384-d), cosine\n");

    let profile = Profile::new(queries.cols, sqlite_vector::Metric::Cosine)
        .with_embedding_model("sentence-transformers/all-MiniLM-L6-v2");
    let shard = Shard::create(&path, &profile)?;
    let t = Instant::now();
    shard.insert_batch(items)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "1. Stored {n} items in one transaction in {:.1} ms ({:.0} vectors/s), durable on disk at {}",
        secs * 1e3,
        n as f64 / secs,
        path.display()
    );

    let q = 2;
    let qpkg = qtexts[q]["package"].as_str().unwrap_or("?");
    println!(
        "\n2. Packages like {qpkg:?} (a package that is not in the shard):\n   \"{}\"",
        snippet(&qtexts[q]["text"].as_str().map(str::to_string), 90)
    );
    let t = Instant::now();
    let hits = shard.search(queries.row(q), &SearchParams::k(5))?;
    let us = t.elapsed().as_secs_f64() * 1e6;
    show(&hits);
    println!(
        "   ({us:.0} µs, exact search, {})",
        shard.stats()?.search_method
    );

    let q = 0;
    let qpkg = qtexts[q]["package"].as_str().unwrap_or("?");
    let filter_text = r#"{"kind": {"$in": ["haskell", "dev"]}, "words": {"$gte": 40}}"#;
    println!("\n3. Packages like {qpkg:?}, filtered by metadata {filter_text}:");
    let filter: Filter = filter_text.parse()?;
    let t = Instant::now();
    let hits = shard.search(queries.row(q), &SearchParams::k(5).with_filter(filter))?;
    let us = t.elapsed().as_secs_f64() * 1e6;
    show(&hits);
    println!("   ({us:.0} µs; the true top 5 among matching items)");

    println!(
        "\n4. Exact search against the shipped ground truth, {} held-out queries, k = 10:",
        queries.rows
    );
    let params = SearchParams::k(10);
    let mut lat = Vec::with_capacity(queries.rows);
    let mut recall = 0.0;
    for i in 0..queries.rows {
        let t = Instant::now();
        let hits = shard.search(queries.row(i), &params)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        let ids: Vec<usize> = hits.iter().map(|h| row_of[&h.id]).collect();
        let dists: Vec<f32> = hits.iter().map(|h| 1.0 - h.score).collect();
        recall += recall_at_k(&ids, &dists, gt_ids.row(i), gt_dist.row(i), 10);
    }
    println!(
        "   recall@10 = {:.3}, latency p50 = {:.0} µs, p99 = {:.0} µs",
        recall / queries.rows as f64,
        percentile(&mut lat, 50.0),
        percentile(&mut lat, 99.0)
    );

    let victim = hits_first_id(&shard, queries.row(2))?;
    shard.delete(&victim)?;
    drop(shard);
    let t = Instant::now();
    let shard = Shard::open(&path)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let after = hits_first_id(&shard, queries.row(2))?;
    let stats = shard.stats()?;
    println!(
        "\n5. Deleted {victim:?} (a tombstone stays for sync), closed and reopened in {open_ms:.1} ms: \
         {} live items, {} tombstone, the best match is now {after:?}",
        stats.count, stats.tombstones
    );
    println!(
        "   shard: {:.1} MB on disk, arena {:.1} MB in memory ({:.2}× the raw vectors), format v{}",
        stats.bytes_on_disk as f64 / 1e6,
        stats.bytes_in_memory as f64 / 1e6,
        stats.bytes_in_memory as f64 / stats.raw_vector_bytes as f64,
        stats.format_version
    );
    drop(shard);
    match keep {
        Some(p) => println!(
            "\nKept the shard at {}; try: sqlite-vector stats {}",
            p.display(),
            p.display()
        ),
        None => {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = tmp.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
    }
    Ok(())
}

fn hits_first_id(shard: &Shard, q: &[f32]) -> CliResult<String> {
    let hits = shard.search(q, &SearchParams::k(1))?;
    hits.into_iter()
        .next()
        .map(|h| h.id)
        .ok_or_else(|| user("empty shard"))
}
