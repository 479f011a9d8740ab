//! `bench --index hnsw`: builds a shard with an HNSW index (the build rate includes writing
//! the graph into SQLite), measures the exact scan once as the reference, then one query pass
//! per `--ef-search` value (latency percentiles, queries/s, recall@k against the exact ground
//! truth, the path the planner took), and reopening the shard with its index plus a first
//! query. The peers' sweep with the same parameters and the recall/QPS chart are
//! `sqlite-vector-bench hnsw`, which reads these rows (`--json`).

use std::time::Instant;

use serde_json::{json, Value};
use sqlite_vector::{
    Durability, HnswParams, Metric, PlannerParams, Profile, SearchParams, SearchPath, Shard,
    MAX_EF_SEARCH,
};
use sqlite_vector_dataset::{percentile, recall_at_k, Matrix};

use super::{build, BenchArgs, TempDir};
use crate::{user, CliResult, Failure};

/// One timed pass over the queries.
struct Pass {
    recall: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    mean: f64,
    /// `"exact"`, `"hnsw"`, or `"mixed"` when queries took different paths.
    path: &'static str,
}

/// Ground truth: ids and distances (`1 − cos` or squared L2) per query, nearest first.
type Truth = (Matrix<i32>, Matrix<f32>);

fn distance_of(metric: Metric, score: f32) -> f32 {
    match metric {
        Metric::Cosine => 1.0 - score,
        Metric::L2 => score * score,
        Metric::Dot => -score,
    }
}

fn row_ids(hits: &[sqlite_vector::Hit]) -> Vec<usize> {
    hits.iter()
        .map(|h| h.id.parse().unwrap_or(usize::MAX))
        .collect()
}

/// Exact top-k of every query by the shard's own exact path (the oracle for synthetic data).
fn exact_truth(shard: &Shard, queries: &Matrix<f32>, k: usize, metric: Metric) -> CliResult<Truth> {
    let mut ids = Matrix {
        rows: queries.rows,
        cols: k,
        data: vec![-1; queries.rows * k],
    };
    let mut dist = Matrix {
        rows: queries.rows,
        cols: k,
        data: vec![f32::INFINITY; queries.rows * k],
    };
    let p = SearchParams::k(k).with_exact(true);
    for q in 0..queries.rows {
        for (j, h) in shard.search(queries.row(q), &p)?.iter().enumerate() {
            ids.data[q * k + j] = h.id.parse().unwrap_or(-1);
            dist.data[q * k + j] = distance_of(metric, h.score);
        }
    }
    Ok((ids, dist))
}

fn pass(
    shard: &Shard,
    queries: &Matrix<f32>,
    truth: &Truth,
    params: &SearchParams,
    metric: Metric,
    warmup: usize,
) -> CliResult<Pass> {
    for i in 0..warmup.min(queries.rows) {
        shard.search(queries.row(i), params)?;
    }
    let mut lat = Vec::with_capacity(queries.rows);
    let (mut recall, mut exact, mut graph) = (0.0, 0, 0);
    for i in 0..queries.rows {
        let t = Instant::now();
        let (hits, path) = shard.search_with_path(queries.row(i), params)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        match path {
            SearchPath::Exact => exact += 1,
            SearchPath::Hnsw => graph += 1,
        }
        let dist: Vec<f32> = hits.iter().map(|h| distance_of(metric, h.score)).collect();
        recall += recall_at_k(
            &row_ids(&hits),
            &dist,
            truth.0.row(i),
            truth.1.row(i),
            params.k,
        );
    }
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    Ok(Pass {
        recall: recall / queries.rows.max(1) as f64,
        p50: percentile(&mut lat, 50.0),
        p95: percentile(&mut lat, 95.0),
        p99: percentile(&mut lat, 99.0),
        mean,
        path: match (exact, graph) {
            (_, 0) => "exact",
            (0, _) => "hnsw",
            _ => "mixed",
        },
    })
}

/// Runs `bench --index hnsw` (see the module docs).
pub(super) fn run(
    args: &BenchArgs,
    metric: Metric,
    name: &str,
    base: &Matrix<f32>,
    queries: &Matrix<f32>,
    truth: Option<&Truth>,
) -> CliResult {
    if args.ef_search.is_empty() {
        return Err(user("--ef-search needs at least one value"));
    }
    if let Some(bad) = args
        .ef_search
        .iter()
        .find(|&&e| e == 0 || e > MAX_EF_SEARCH)
    {
        return Err(user(format!(
            "--ef-search values must be 1..={MAX_EF_SEARCH}, got {bad}"
        )));
    }
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ..HnswParams::default()
    };
    params.validate()?;
    let dim = base.cols;
    let tmp = TempDir::new()?;
    let path = tmp.0.join("bench.db");
    let profile = Profile::new(dim, metric).with_durability(args.durability);
    // The index exists before the first insert: the build rate includes maintaining the graph
    // and writing its rows in every batch's transaction.
    let (shard, build_s) = build(&path, &profile, base, args.batch, Some(params))?;
    let insert_vps = base.rows as f64 / build_s;
    if let Some(n) = args.exact_max_items {
        shard.set_planner(PlannerParams {
            exact_max_items: n,
            ..shard.planner()
        });
    }
    // The oracle: the f32 exact scan (before any quantization).
    let truth = match truth {
        Some(t) => (t.0.clone(), t.1.clone()),
        None => exact_truth(&shard, queries, args.k, metric)?,
    };
    shard.set_quantization(args.quantization)?;

    let mut ours: Vec<(Option<usize>, Pass)> = Vec::new();
    let exact = SearchParams::k(args.k)
        .with_exact(true)
        .with_payload(args.payload);
    ours.push((
        None,
        pass(&shard, queries, &truth, &exact, metric, args.warmup)?,
    ));
    for &ef in &args.ef_search {
        let p = SearchParams::k(args.k)
            .with_ef_search(ef)
            .with_payload(args.payload);
        ours.push((
            Some(ef),
            pass(&shard, queries, &truth, &p, metric, args.warmup)?,
        ));
    }
    let stats = shard.stats()?;
    let index = stats
        .index
        .clone()
        .ok_or_else(|| Failure::internal("the bench shard lost its index"))?;
    drop(shard);
    let open_first_query_ms = if args.durability == Durability::Memory {
        f64::NAN
    } else {
        let t = Instant::now();
        let reopened = Shard::open(&path)?;
        reopened.search(queries.row(0), &SearchParams::k(args.k))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let rebuilt = reopened.stats()?.index.is_some_and(|i| i.rebuilt_on_open);
        if rebuilt {
            return Err(Failure::internal(
                "reopening rebuilt the index instead of loading it",
            ));
        }
        ms
    };

    let rows: Vec<Value> = ours
        .iter()
        .map(|(ef, p)| {
            json!({
                "dataset": name, "n": base.rows, "dim": dim, "metric": metric.as_str(),
                "k": args.k, "index": "hnsw", "m": params.m,
                "ef_construction": params.ef_construction, "ef_search": ef,
                "quantization": args.quantization.as_str(), "payload": args.payload, "path": p.path, "recall_at_k": p.recall,
                "p50_us": p.p50, "p95_us": p.p95, "p99_us": p.p99, "mean_us": p.mean,
                "qps": 1e6 / p.mean, "queries": queries.rows, "build_s": build_s,
                "insert_vps": insert_vps, "durability": args.durability.as_str(),
                "open_first_query_ms": open_first_query_ms,
                "index_bytes": index.bytes_in_memory, "arena_bytes": stats.bytes_in_memory,
                "raw_vector_bytes": stats.raw_vector_bytes, "bytes_on_disk": stats.bytes_on_disk,
                "query_set": match args.queries { super::Queries::Full => "full", super::Queries::Short => "short" },
            })
        })
        .collect();
    if args.json {
        for r in &rows {
            println!("{r}");
        }
        return Ok(());
    }
    println!(
        "sqlite-vector bench: {name}, n = {}, dim = {dim}, {metric}, k = {}, hnsw M = {}, \
         ef_construction = {}, one thread",
        base.rows, args.k, params.m, params.ef_construction
    );
    println!(
        "  build {build_s:.2} s ({insert_vps:.0} vectors/s incl. the graph rows), reopen + 1st \
         query {open_first_query_ms:.1} ms, graph {:.1} MB, arena {:.1} MB",
        index.bytes_in_memory as f64 / 1e6,
        stats.bytes_in_memory as f64 / 1e6
    );
    println!(
        "  {:<22} {:>6} {:>10} {:>8} {:>8} {:>8} {:>9}",
        "who", "ef", "recall@k", "p50 µs", "p95 µs", "p99 µs", "queries/s"
    );
    for (ef, p) in &ours {
        println!(
            "  {:<22} {:>6} {:>10.4} {:>8.0} {:>8.0} {:>8.0} {:>9.0}",
            format!("sqlite-vector {}", p.path),
            ef.map_or("-".into(), |e| e.to_string()),
            p.recall,
            p.p50,
            p.p95,
            p.p99,
            1e6 / p.mean
        );
    }
    Ok(())
}
