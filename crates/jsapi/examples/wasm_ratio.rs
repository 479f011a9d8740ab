//! Native side of issue 14's WebAssembly-vs-native speed targets: the workload of
//! `npm/bench/ratio.mjs`, run here through [`sqlite_vector_jsapi::Db`] (the layer the wasm
//! module wraps) on an in-memory shard, with the same data, options and JSON.
//!
//! ```sh
//! # jsapi's own features (the core with default-features = false: one thread, as in wasm)
//! cargo run --release -p sqlite-vector-jsapi --example wasm_ratio -- [--json]
//! # the core's default features (threads: an exact scan above 2M floats runs in two halves)
//! cargo run --release -p sqlite-vector-jsapi --example wasm_ratio --features sqlite-vector/default -- [--json]
//! # both against the wasm package, alternately (see npm/bench/ratio.mjs)
//! node npm/bench/ratio.mjs --rounds 3 --native 1t=<binary> --native default=<binary>
//! ```
//!
//! Options (defaults in brackets): `--data DIR` [../shared/data/debian-minilm], `--n` items of
//! the search shard [20000], `--queries` timed exact queries [31], `--hnsw-queries` [200],
//! `--runs` repetitions of each query set and of each insert [5], `--m` [16],
//! `--ef-construction` [200], `--ef` search beam widths [16,32,64], `--insert-n` [10000],
//! `--batch` items per `insert_batch` [1000], `--json` (one JSON line instead of text).
//!
//! Workload (ratio.mjs does exactly the same through the npm package):
//! 1. the first `n` rows of `base.npy` into a cosine shard by `insert_batch` of 2,000 (ids
//!    `b<row>`, no text);
//! 2. exact top-10 (`{"k":10,"exact":true}`) of `queries.npy` rows `0..queries`, 5 warm-up
//!    queries, then `runs` passes; each sample is one call plus parsing its JSON result;
//! 3. the exact top-10 of rows `0..hnsw-queries` (ground truth), `create_index` with `m`,
//!    `ef_construction`, then per `ef` `runs` passes of `{"k":10,"ef_search":ef}` over those
//!    queries: median latency and recall@10 against the exact ids;
//! 4. `insert-n` items (rows `0..insert-n` of `base.npy`, the same rows' `text` from
//!    `texts.jsonl`, ids `t<row>`) into a fresh shard, `runs` times by `insert_batch` of `batch`
//!    items and `runs` times one `insert` each; the JSON of the items is built inside the timing
//!    (as the JS API stringifies inside its call).
//!
//! Medians are over all samples (queries × runs); the insert medians over the `runs` totals.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{json, Value};
use sqlite_vector_jsapi::Db;

const DIM: usize = 384;
const K: usize = 10;

/// Command-line options (see the module documentation).
struct Args {
    data: String,
    n: usize,
    queries: usize,
    hnsw_queries: usize,
    runs: usize,
    m: usize,
    ef_construction: usize,
    ef: Vec<usize>,
    insert_n: usize,
    batch: usize,
    json: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        data: "../shared/data/debian-minilm".into(),
        n: 20_000,
        queries: 31,
        hnsw_queries: 200,
        runs: 5,
        m: 16,
        ef_construction: 200,
        ef: vec![16, 32, 64],
        insert_n: 10_000,
        batch: 1_000,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = || -> usize { value.parse().unwrap_or_else(|_| panic!("bad {flag}")) };
        match flag.as_str() {
            "--data" => a.data = value.clone(),
            "--n" => a.n = num(),
            "--queries" => a.queries = num(),
            "--hnsw-queries" => a.hnsw_queries = num(),
            "--runs" => a.runs = num(),
            "--m" => a.m = num(),
            "--ef-construction" => a.ef_construction = num(),
            "--ef" => {
                a.ef = value
                    .split(',')
                    .map(|s| s.parse().expect("bad --ef"))
                    .collect()
            }
            "--insert-n" => a.insert_n = num(),
            "--batch" => a.batch = num(),
            _ => panic!("unknown option {flag}"),
        }
    }
    a
}

/// The first `rows` rows of a little-endian f32 `.npy` file of `DIM` columns, row-major.
fn read_npy(path: &str, rows: usize) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}: not a .npy file");
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("header");
    assert!(
        header.contains("'<f4'") && header.contains("False"),
        "{header}"
    );
    let data = &bytes[start + header_len..];
    assert!(
        data.len() >= rows * DIM * 4,
        "{path} has fewer than {rows} rows"
    );
    data[..rows * DIM * 4]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The `text` of the first `rows` lines of `texts.jsonl`.
fn read_texts(path: &str, rows: usize) -> Vec<String> {
    let all = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    all.lines()
        .take(rows)
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("texts.jsonl line");
            v["text"].as_str().expect("text").to_owned()
        })
        .collect()
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// FNV-1a (32 bits) over UTF-8 bytes; ratio.mjs computes the same over the same strings.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// One search: the call and the parsing of its JSON result; returns the hit ids.
fn search(db: &Db, q: &[f32], options: &str) -> Vec<String> {
    let hits: Value = serde_json::from_str(&db.search(q, options).expect("search")).expect("hits");
    hits.as_array()
        .expect("array")
        .iter()
        .map(|h| h["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Helper threads of the core's `threads` feature (`sqlite-vector-par-N`) alive in this
/// process (Linux; `None` elsewhere).
fn helper_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            // Thread names are cut to 15 bytes: `sqlite-vector-p`.
            .filter(|name| name.starts_with("sqlite-vector-p"))
            .count(),
    )
}

fn main() {
    let a = parse_args();
    let nq = a.queries.max(a.hnsw_queries);
    let base = read_npy(&format!("{}/base.npy", a.data), a.n.max(a.insert_n));
    let queries = read_npy(&format!("{}/queries.npy", a.data), nq);
    let texts = read_texts(&format!("{}/texts.jsonl", a.data), a.insert_n);
    let row = |v: &[f32], i: usize| -> Vec<f32> { v[i * DIM..(i + 1) * DIM].to_vec() };
    let query = |i: usize| row(&queries, i);

    // 1. The search shard.
    let db = Db::in_memory(DIM, "cosine", "{}", None).expect("open");
    let t = Instant::now();
    for start in (0..a.n).step_by(2_000) {
        let end = (start + 2_000).min(a.n);
        let items: Vec<Value> = (start..end)
            .map(|i| json!({ "id": format!("b{i}") }))
            .collect();
        db.insert_batch(
            &base[start * DIM..end * DIM],
            &serde_json::to_string(&items).unwrap(),
        )
        .expect("insert_batch");
    }
    let load_ms = ms_since(t);

    // 2. Exact top-10.
    let exact = format!(r#"{{"k":{K},"exact":true}}"#);
    for i in 0..5 {
        search(&db, &query(i % a.queries), &exact);
    }
    let mut samples = Vec::new();
    let mut tops = Vec::new();
    for run in 0..a.runs {
        for i in 0..a.queries {
            let q = query(i);
            let t = Instant::now();
            let ids = search(&db, &q, &exact);
            samples.push(ms_since(t));
            if run == 0 {
                tops.push(ids.join(","));
            }
        }
    }
    let exact_ms = median(&mut samples);
    let exact_checksum = fnv1a(&tops.join(";"));
    let exact_method = stats_field(&db, "search_method");
    let threads = helper_threads();

    // 3. HNSW.
    let truth: Vec<HashSet<String>> = (0..a.hnsw_queries)
        .map(|i| search(&db, &query(i), &exact).into_iter().collect())
        .collect();
    let t = Instant::now();
    db.create_index(
        &json!({ "m": a.m, "ef_construction": a.ef_construction, "ef_search": a.ef[0] })
            .to_string(),
    )
    .expect("create_index");
    let build_ms = ms_since(t);
    let hnsw_method = stats_field(&db, "search_method");
    let mut hnsw = Vec::new();
    for &ef in &a.ef {
        let options = format!(r#"{{"k":{K},"ef_search":{ef}}}"#);
        for i in 0..5 {
            search(&db, &query(i), &options);
        }
        let mut samples = Vec::new();
        let mut found = 0usize;
        for run in 0..a.runs {
            for (i, truth) in truth.iter().enumerate() {
                let q = query(i);
                let t = Instant::now();
                let ids = search(&db, &q, &options);
                samples.push(ms_since(t));
                if run == 0 {
                    found += ids.iter().filter(|id| truth.contains(*id)).count();
                }
            }
        }
        let recall = found as f64 / (K * a.hnsw_queries) as f64;
        hnsw.push(json!({ "ef": ef, "recall": recall, "ms": median(&mut samples) }));
    }
    drop(db);

    // 4. Inserting items with text.
    let item = |i: usize| json!({ "id": format!("t{i}"), "text": texts[i] });
    let mut batch_ms = Vec::new();
    let mut single_ms = Vec::new();
    for _ in 0..a.runs {
        let db = Db::in_memory(DIM, "cosine", "{}", None).expect("open");
        let t = Instant::now();
        for start in (0..a.insert_n).step_by(a.batch) {
            let end = (start + a.batch).min(a.insert_n);
            let items: Vec<Value> = (start..end).map(item).collect();
            db.insert_batch(
                &base[start * DIM..end * DIM],
                &serde_json::to_string(&items).unwrap(),
            )
            .expect("insert_batch");
        }
        batch_ms.push(ms_since(t));
        assert_eq!(stats_count(&db), a.insert_n);
        drop(db);

        let db = Db::in_memory(DIM, "cosine", "{}", None).expect("open");
        let t = Instant::now();
        for i in 0..a.insert_n {
            db.insert(&base[i * DIM..(i + 1) * DIM], &item(i).to_string())
                .expect("insert");
        }
        single_ms.push(ms_since(t));
        assert_eq!(stats_count(&db), a.insert_n);
    }
    let text_chars: usize = texts.iter().map(|s| s.chars().count()).sum();

    let out = json!({
        "side": "native",
        "n": a.n, "dim": DIM, "queries": a.queries, "hnsw_queries": a.hnsw_queries, "runs": a.runs,
        "load_ms": load_ms,
        "exact_ms": exact_ms, "exact_method": exact_method, "exact_checksum": exact_checksum,
        "helper_threads": threads,
        "m": a.m, "ef_construction": a.ef_construction, "build_ms": build_ms,
        "hnsw_method": hnsw_method, "hnsw": hnsw,
        "insert_n": a.insert_n, "batch": a.batch, "mean_text_chars": text_chars as f64 / a.insert_n as f64,
        "insert_batch_ms": median(&mut batch_ms), "insert_single_ms": median(&mut single_ms),
    });
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    }
}

fn stats_field(db: &Db, field: &str) -> Value {
    let stats: Value = serde_json::from_str(&db.stats().expect("stats")).expect("stats JSON");
    stats[field].clone()
}

fn stats_count(db: &Db) -> usize {
    stats_field(db, "count").as_u64().expect("count") as usize
}
