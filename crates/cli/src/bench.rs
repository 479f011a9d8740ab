//! `sqlite-vector bench`: builds a fresh shard from a dataset directory (shared/data/FORMAT.md
//! layout) or seeded synthetic vectors, then measures, on one thread: the batch insert rate,
//! every query once after a warm-up (latency percentiles and recall@k against the exact ground
//! truth), reopening the shard and answering a first query, single-item inserts in their own
//! transactions, and the arena's memory against the raw vector bytes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::json;
use sqlite_vector::{Durability, HybridParams, Metric, NewItem, Profile, SearchParams, Shard};
use sqlite_vector_dataset::{
    percentile, recall_at_k, Dataset, GtMetric, KnownItemScore, KnownItemSet, Matrix, QuerySet,
    SeededRng,
};

use crate::{user, CliResult};

#[derive(Clone, Copy, ValueEnum)]
enum BenchMetric {
    Cos,
    L2,
}

#[derive(Clone, Copy, ValueEnum)]
enum Queries {
    Full,
    Short,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Index {
    /// Exact SIMD scan over the in-memory arena.
    Exact,
    /// HNSW graph index stored in the shard (sweeps --ef-search, writes a recall/QPS plot).
    Hnsw,
}

/// Embedders of `bench --known-item --embedder`.
#[derive(Clone, Copy, ValueEnum)]
enum BenchEmbedder {
    /// The built-in offline model (minilm-static-256).
    Builtin,
}

mod hnsw;

/// Options of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Dataset directory (base.npy, queries*.npy, gt_*.npy).
    #[arg(long, required_unless_present_any = ["synth", "shards"], conflicts_with_all = ["synth", "shards"])]
    data: Option<PathBuf>,
    /// Synthetic data instead: NxD seeded standard-normal vectors (e.g. 1000000x128), 200
    /// queries; recall is not computed (exact search is its own oracle).
    #[arg(long)]
    synth: Option<String>,
    /// Metric.
    #[arg(long, value_enum, default_value = "cos")]
    metric: BenchMetric,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Query set: full text (queries.npy) or synopsis only (queries_short.npy).
    #[arg(long, value_enum, default_value = "full")]
    queries: Queries,
    /// Index to search with.
    #[arg(long, value_enum, default_value = "exact")]
    index: Index,
    /// Quantization of the exact path: `int8` trains a quantizer after the build and searches
    /// the int8 codes with f32 rescoring (the arena drops its f32 rows without an index).
    #[arg(long, default_value = "none")]
    quantization: sqlite_vector::Quantization,
    /// HNSW `M` (layer 0 keeps 2·M neighbours).
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW `ef_construction`.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// HNSW `ef_search` values to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    ef_search: Vec<usize>,
    /// Synthetic data drawn around this many Gaussian cluster centres instead of i.i.d. normal
    /// (with --synth; real embeddings are clustered, i.i.d. noise defeats every graph index).
    #[arg(long, requires = "synth")]
    clusters: Option<usize>,
    /// Moved: peers run in `cargo run --release -p sqlite-vector-bench -- hnsw` (same
    /// parameters, same run); `none` is accepted and does nothing.
    #[arg(long, hide = true)]
    peers: Option<String>,
    /// Moved with `--peers`.
    #[arg(long, hide = true)]
    peers_python: Option<PathBuf>,
    /// Planner threshold for --index hnsw: shards with at most this many items scan exactly
    /// (default: the library's; 0 forces the graph, for measuring the crossover).
    #[arg(long)]
    exact_max_items: Option<usize>,
    /// Also read each hit's metadata and text from SQLite in the --index hnsw sweep (off by
    /// default: the peers return labels and distances only).
    #[arg(long)]
    payload: bool,
    /// Moved with `--peers`: the chart is drawn by `sqlite-vector-bench hnsw --plot`.
    #[arg(long, hide = true)]
    plot: Option<PathBuf>,
    /// Durability of the bench shard (`memory`: an in-memory shard; no reopen measurement).
    #[arg(long, default_value = "normal")]
    durability: Durability,
    /// Items per insert_batch transaction while building.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Warm-up queries before timing.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Single-item inserts to time after the build (0 to skip).
    #[arg(long, default_value_t = 1_000)]
    single_inserts: usize,
    /// Many shards instead: SxM = S shards of M seeded vectors each under a fresh root. Measures
    /// create + first insert + close of a shard, open of a closed shard + first query, the
    /// process's resident memory with up to 256 shards open, and (S ≤ 1,000) search across all
    /// S shards against one exact scan of the same S·M vectors in one shard.
    #[arg(long, conflicts_with = "synth")]
    shards: Option<String>,
    /// Vector dimension for --shards.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Keep the --shards root here instead of a temporary directory.
    #[arg(long, requires = "shards")]
    root: Option<PathBuf>,
    /// Known-item retrieval instead: rank each `known_item.jsonl` query's target among the base
    /// texts by vector (known_item_queries.npy), BM25, hybrid (the default fusion, DBSF) and
    /// hybrid by RRF (k = 60), and report MRR@10, hit@1, hit@10 and p50 latency per ranking,
    /// and 95 % bootstrap intervals of hybrid's MRR@10 minus the better single ranking's and
    /// minus RRF's.
    #[arg(long, requires = "data")]
    known_item: bool,
    /// With --known-item: embed the base texts and the query texts with this model instead of
    /// reading base.npy and known_item_queries.npy (`builtin`: the offline minilm-static-256,
    /// 256-d). Embedding happens before timing; latencies are search only.
    #[arg(long, value_enum, requires = "known_item")]
    embedder: Option<BenchEmbedder>,
    /// Print JSON (one object; with --known-item, one object per ranking and line).
    #[arg(long)]
    json: bool,
}

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!(
            "sqlite-vector-bench-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seeded standard-normal matrix (see [`SeededRng`]).
pub(crate) fn synth_normal(rows: usize, cols: usize, seed: u64) -> Matrix<f32> {
    SeededRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).matrix(rows, cols, false)
}

/// `n` base and 200 query vectors around `clusters` standard-normal centres, each point a
/// centre plus normal noise of standard deviation 0.5 per component (seeded).
pub(crate) fn synth_clustered(
    n: usize,
    dim: usize,
    clusters: usize,
    seed: u64,
) -> (Matrix<f32>, Matrix<f32>) {
    let centres = synth_normal(clusters, dim, seed ^ 0xC1);
    let mut rng = SeededRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut draw = |rows: usize| {
        let mut m = synth_normal(rows, dim, rng.next_u64());
        for r in 0..rows {
            let c = (rng.next_u64() % clusters as u64) as usize;
            let start = r * dim;
            for (x, centre) in m.data[start..start + dim].iter_mut().zip(centres.row(c)) {
                *x = centre + 0.5 * *x;
            }
        }
        m
    };
    let base = draw(n);
    let queries = draw(200);
    (base, queries)
}

fn parse_synth(s: &str) -> CliResult<(usize, usize)> {
    let bad = || user(format!("--synth wants NxD, e.g. 100000x128, got {s:?}"));
    let (n, d) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    let d: usize = d.trim().parse().map_err(|_| bad())?;
    if n == 0 || d == 0 {
        return Err(bad());
    }
    Ok((n, d))
}

fn build(
    path: &Path,
    profile: &Profile,
    base: &Matrix<f32>,
    batch: usize,
    index: Option<sqlite_vector::HnswParams>,
) -> CliResult<(Shard, f64)> {
    let shard = if profile.durability == Durability::Memory {
        Shard::in_memory(profile)?
    } else {
        Shard::create(path, profile)?
    };
    let t = Instant::now();
    if let Some(params) = index {
        shard.create_index(params)?;
    }
    let mut row = 0;
    while row < base.rows {
        let end = (row + batch).min(base.rows);
        let items = (row..end)
            .map(|i| NewItem::new(base.row(i).to_vec()).with_id(i.to_string()))
            .collect();
        shard.insert_batch(items)?;
        row = end;
    }
    Ok((shard, t.elapsed().as_secs_f64()))
}

/// Known-item retrieval: vector, BM25 and hybrid rankings of the same queries.
fn known_item(args: &BenchArgs, dir: &Path) -> CliResult {
    use sqlite_vector_embed::{Embedder, StaticEmbedder, BUILTIN_MODEL_ID};
    let set = KnownItemSet::load(dir)?;
    // Base vectors, and each query's vector by its position in `set.items`.
    let t = Instant::now();
    let (base, queries, vectors) = match args.embedder {
        None => {
            let base = sqlite_vector_dataset::read_f32(dir.join("base.npy"))?;
            let queries: Vec<Vec<f32>> = set
                .items
                .iter()
                .map(|q| set.vectors.row(q.query_id).to_vec())
                .collect();
            (base, queries, "known_item_queries.npy")
        }
        Some(BenchEmbedder::Builtin) => {
            let fail = |e: sqlite_vector_embed::EmbedError| crate::Failure::internal(e.to_string());
            let model = StaticEmbedder::builtin().map_err(fail)?;
            let texts: Vec<&str> = set.base_texts.iter().map(|b| b.text.as_str()).collect();
            let mut data = Vec::with_capacity(texts.len() * model.dimension());
            for chunk in texts.chunks(1000) {
                for v in model.embed_batch(chunk).map_err(fail)? {
                    data.extend(v);
                }
            }
            let base = Matrix {
                rows: texts.len(),
                cols: model.dimension(),
                data,
            };
            let queries: Vec<&str> = set.items.iter().map(|q| q.query.as_str()).collect();
            let queries = model.embed_batch(&queries).map_err(fail)?;
            (base, queries, BUILTIN_MODEL_ID)
        }
    };
    let embed_s = t.elapsed().as_secs_f64();
    if base.rows != set.base_texts.len() {
        return Err(user(
            "base.npy and texts.jsonl disagree on the number of base rows",
        ));
    }
    let tmp = TempDir::new()?;
    let profile = Profile::new(base.cols, Metric::Cosine).with_durability(args.durability);
    let shard = Shard::create(tmp.0.join("known-item.db"), &profile)?;
    let t = Instant::now();
    for start in (0..base.rows).step_by(args.batch) {
        let end = (start + args.batch).min(base.rows);
        let items = (start..end)
            .map(|i| {
                NewItem::new(base.row(i).to_vec())
                    .with_id(i.to_string())
                    .with_text(set.base_texts[i].text.clone())
            })
            .collect();
        shard.insert_batch(items)?;
    }
    let build_s = t.elapsed().as_secs_f64();
    let params = SearchParams::k(10);
    let hybrid = HybridParams::default();
    let rrf = HybridParams {
        fusion: sqlite_vector::Fusion::Rrf,
        ..HybridParams::default()
    };
    let mut out = Vec::new();
    let mut all_ranks: Vec<(&str, Vec<Option<usize>>, f64)> = Vec::new();
    for ranking in ["vector", "text", "hybrid", "rrf"] {
        let run_one = |i: usize| -> CliResult<Vec<sqlite_vector::Hit>> {
            let (q, v) = (&set.items[i], queries[i].as_slice());
            Ok(match ranking {
                "vector" => shard.search(v, &params)?,
                "text" => shard.search_text(&q.query, &params)?,
                "hybrid" => shard.search_hybrid(v, &q.query, &params, &hybrid)?,
                _ => shard.search_hybrid(v, &q.query, &params, &rrf)?,
            })
        };
        for i in 0..args.warmup.min(set.items.len()) {
            run_one(i)?;
        }
        let mut ranks = Vec::with_capacity(set.items.len());
        let mut lat = Vec::with_capacity(set.items.len());
        for (i, q) in set.items.iter().enumerate() {
            let t = Instant::now();
            let hits = run_one(i)?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            let target = q.target_row.to_string();
            ranks.push(hits.iter().position(|h| h.id == target).map(|p| p + 1));
        }
        let score = KnownItemScore::from_ranks(&ranks);
        all_ranks.push((ranking, ranks, score.mrr_at_10));
        out.push(json!({
            "ranking": ranking,
            "queries": set.items.len(),
            "n": base.rows,
            "mrr_at_10": score.mrr_at_10,
            "hit_at_1": score.hit_at_1,
            "hit_at_10": score.hit_at_10,
            "p50_us": percentile(&mut lat, 50.0),
            "p99_us": percentile(&mut lat, 99.0),
            "build_s": build_s,
            "vectors": vectors,
            "embed_s": embed_s,
            "fusion": match ranking { "hybrid" => Some("dbsf"), "rrf" => Some("rrf"), _ => None },
            "rrf_k": if ranking == "rrf" { Some(rrf.rrf_k) } else { None },
        }));
    }
    // The default against the better single ranking and against RRF: paired bootstrap of the
    // MRR@10 difference over the queries.
    let find = |name: &str| all_ranks.iter().find(|r| r.0 == name).expect("ranked");
    let best_single = if find("vector").2 >= find("text").2 {
        "vector"
    } else {
        "text"
    };
    for (other, label) in [
        (best_single, "hybrid - best single"),
        ("rrf", "hybrid - rrf"),
    ] {
        let (diff, lo, hi) = sqlite_vector_dataset::bootstrap_mrr_diff(
            &find("hybrid").1,
            &find(other).1,
            2000,
            0xB007_57A9,
        );
        out.push(json!({
            "compare": label, "against": other, "mrr_at_10_diff": diff, "ci95": [lo, hi],
            "resamples": 2000, "vectors": vectors,
        }));
    }
    if args.json {
        for o in out {
            println!("{o}");
        }
    } else {
        println!(
            "known-item retrieval: {} queries over {} base texts, vectors from {vectors} \
             (built with text in {build_s:.1} s)",
            set.items.len(),
            base.rows
        );
        println!(
            "  {:<8} {:>8} {:>7} {:>8} {:>9}",
            "ranking", "MRR@10", "hit@1", "hit@10", "p50 µs"
        );
        for o in &out {
            if let Some(label) = o["compare"].as_str() {
                println!(
                    "  {label} ({}): MRR@10 {:+.4}, 95 % CI [{:+.4}, {:+.4}]",
                    o["against"].as_str().unwrap_or(""),
                    o["mrr_at_10_diff"].as_f64().unwrap_or(f64::NAN),
                    o["ci95"][0].as_f64().unwrap_or(f64::NAN),
                    o["ci95"][1].as_f64().unwrap_or(f64::NAN)
                );
                continue;
            }
            println!(
                "  {:<8} {:>8.3} {:>7.3} {:>8.3} {:>9.0}",
                o["ranking"].as_str().unwrap_or(""),
                o["mrr_at_10"].as_f64().unwrap_or(f64::NAN),
                o["hit_at_1"].as_f64().unwrap_or(f64::NAN),
                o["hit_at_10"].as_f64().unwrap_or(f64::NAN),
                o["p50_us"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Bytes of the files under `dir`, recursively (0 for what cannot be read).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The many-shards benchmark (`--shards SxM`).
fn many_shards(args: &BenchArgs, spec: &str) -> CliResult {
    use sqlite_vector::{ManagerOptions, ShardManager, Targets};
    let (n_shards, per) = parse_synth(spec)?;
    let dim = args.dim;
    let tmp = TempDir::new()?;
    let root = args.root.clone().unwrap_or_else(|| tmp.0.join("root"));
    let manager = ShardManager::open(&root, ManagerOptions::default())?;
    let profile = Profile::new(dim, Metric::Cosine).with_durability(args.durability);
    let data = synth_normal(n_shards * per, dim, 7);
    // Phase 1: create + first insert + close, timed per shard (the manager keeps no handle:
    // capacity is bypassed by dropping ours and evicting through a capacity-0 manager).
    let solo = ShardManager::open(&root, ManagerOptions::default().with_capacity(0))?;
    let mut create_lat = Vec::with_capacity(n_shards);
    // The same, by step: create, first insert, close (dropping the last handle).
    let mut parts: [Vec<f64>; 3] = Default::default();
    let t_all = Instant::now();
    for s in 0..n_shards {
        let name = format!("bench/s{s:06}");
        let rows = (s * per..(s + 1) * per)
            .map(|i| NewItem::new(data.row(i).to_vec()).with_id(i.to_string()));
        let t = Instant::now();
        let shard = solo.create(&name, &profile)?;
        let t_created = t.elapsed();
        let mut rows = rows;
        if let Some(first) = rows.next() {
            shard.insert(first)?;
        }
        let t_inserted = t.elapsed();
        drop(shard);
        let total = t.elapsed();
        create_lat.push(total.as_secs_f64() * 1e6);
        parts[0].push(t_created.as_secs_f64() * 1e6);
        parts[1].push((t_inserted - t_created).as_secs_f64() * 1e6);
        parts[2].push((total - t_inserted).as_secs_f64() * 1e6);
        let rest: Vec<NewItem> = rows.collect();
        if !rest.is_empty() {
            let shard = solo.open_shard(&name)?;
            shard.insert_batch(rest)?;
        }
    }
    let create_all_s = t_all.elapsed().as_secs_f64();
    drop(solo);
    // Closed shards on disk, once the background closes (checkpoint, WAL and -shm deleted)
    // have run.
    let t_wait = Instant::now();
    sqlite_vector::wait_for_closes(std::time::Duration::from_secs(3600));
    let closes_drain_s = t_wait.elapsed().as_secs_f64();
    let closed_bytes = dir_bytes(&root.join("shards")) as f64 / n_shards.max(1) as f64;
    // Phase 2: resident memory with up to 256 shards open in the manager (its default LRU),
    // measured from here so that the generated vectors and the closed shards do not count.
    let rss0 = rss_bytes();
    for i in 0..n_shards.min(256) {
        manager.open_shard(&format!("bench/s{i:06}"))?;
    }
    let rss_open = rss_bytes().saturating_sub(rss0);
    let open_now = manager.open_count();
    // Phase 3: open a closed shard + first query (a manager of its own, keeping none open).
    let query = synth_normal(50, dim, 99);
    let mut open_lat = Vec::new();
    {
        let cold = ShardManager::open(&root, ManagerOptions::default().with_capacity(0))?;
        for i in 0..n_shards.min(200) {
            let t = Instant::now();
            let shard = cold.open_shard(&format!("bench/s{i:06}"))?;
            shard.search(query.row(i % query.rows), &SearchParams::k(args.k))?;
            open_lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    // Phase 4 (up to 1,000 shards): search across all shards against one exact scan of the
    // same vectors in one shard.
    let params = SearchParams::k(args.k);
    let (mut across, mut one) = (Vec::new(), Vec::new());
    if n_shards <= 1000 {
        let prefix = Targets::Prefix("bench/");
        for i in 0..args.warmup.min(5) {
            manager.search(prefix, query.row(i), &params)?;
        }
        for i in 0..query.rows {
            let t = Instant::now();
            let m = manager.search(prefix, query.row(i), &params)?;
            across.push(t.elapsed().as_secs_f64() * 1e6);
            if !m.failures.is_empty() {
                return Err(user(format!("shard failures: {:?}", m.failures[0])));
            }
        }
        let single = Shard::in_memory(&Profile::new(dim, Metric::Cosine))?;
        for start in (0..data.rows).step_by(10_000) {
            let end = (start + 10_000).min(data.rows);
            single.insert_batch(
                (start..end)
                    .map(|i| NewItem::new(data.row(i).to_vec()).with_id(i.to_string()))
                    .collect(),
            )?;
        }
        for i in 0..query.rows {
            let t = Instant::now();
            single.search(query.row(i), &params)?;
            one.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let (across_p50, one_p50) = (percentile(&mut across, 50.0), percentile(&mut one, 50.0));
    let finite = |x: f64| x.is_finite().then_some(x);
    let out = json!({
        "shards": n_shards,
        "vectors_per_shard": per,
        "dim": dim,
        "durability": args.durability.as_str(),
        "create_insert_close_p50_us": percentile(&mut create_lat, 50.0),
        "create_insert_close_p99_us": percentile(&mut create_lat, 99.0),
        "create_p50_us": percentile(&mut parts[0], 50.0),
        "first_insert_p50_us": percentile(&mut parts[1], 50.0),
        "close_p50_us": percentile(&mut parts[2], 50.0),
        "create_all_s": create_all_s,
        "closes_drain_s": closes_drain_s,
        "closed_shard_bytes_mean": closed_bytes,
        "open_first_query_p50_us": percentile(&mut open_lat, 50.0),
        "across_shards_p50_us": finite(across_p50),
        "one_shard_p50_us": finite(one_p50),
        "across_over_one": finite(across_p50 / one_p50),
        "open_shards": open_now,
        "rss_growth_mb_with_open_shards": rss_open as f64 / 1e6,
        "k": args.k,
    });
    if args.json {
        println!("{out}");
    } else {
        println!(
            "sqlite-vector bench --shards {n_shards}x{per} (dim {dim}, cosine, k = {})",
            args.k
        );
        for (k, v) in out.as_object().expect("object") {
            println!("  {k:<30} {v}");
        }
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> CliResult {
    let moved = args.peers.as_deref().is_some_and(|p| p != "none")
        || args.peers_python.is_some()
        || args.plot.is_some();
    if moved {
        return Err(user(
            "peer runs and the recall/QPS chart moved out of this binary: \
             cargo run --release -p sqlite-vector-bench -- hnsw --data DIR [--peers hnswlib,usearch] \
             [--plot FILE] (this command measures sqlite-vector only)",
        ));
    }
    if let Some(spec) = args.shards.clone() {
        return many_shards(&args, &spec);
    }
    if args.known_item {
        let dir = args
            .data
            .clone()
            .ok_or_else(|| user("--known-item needs --data DIR"))?;
        return known_item(&args, &dir);
    }
    if args.batch == 0 {
        return Err(user("--batch must be at least 1"));
    }
    let metric = match args.metric {
        BenchMetric::Cos => Metric::Cosine,
        BenchMetric::L2 => Metric::L2,
    };
    let (name, base, queries, truth) = match (&args.data, &args.synth) {
        (Some(dir), _) => {
            let ds = Dataset::load(
                dir,
                match args.metric {
                    BenchMetric::Cos => GtMetric::Cos,
                    BenchMetric::L2 => GtMetric::L2,
                },
                match args.queries {
                    Queries::Full => QuerySet::Full,
                    Queries::Short => QuerySet::Short,
                },
            )?;
            if ds.gt_ids.cols < args.k {
                return Err(user(format!(
                    "ground truth has {} neighbours per query, --k {} is larger",
                    ds.gt_ids.cols, args.k
                )));
            }
            let name = dir
                .file_name()
                .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
            (name, ds.base, ds.queries, Some((ds.gt_ids, ds.gt_dist)))
        }
        (None, Some(spec)) => {
            let (n, d) = parse_synth(spec)?;
            match args.clusters {
                Some(c) => {
                    if c == 0 || c > n {
                        return Err(user(format!("--clusters must be 1..={n}, got {c}")));
                    }
                    let (base, queries) = synth_clustered(n, d, c, 42);
                    (
                        format!("synthetic-clustered{c}-{n}x{d}"),
                        base,
                        queries,
                        None,
                    )
                }
                None => {
                    let base = synth_normal(n, d, 42);
                    let queries = synth_normal(200, d, 4242);
                    (format!("synthetic-normal-{n}x{d}"), base, queries, None)
                }
            }
        }
        (None, None) => return Err(user("give --data DIR or --synth NxD")),
    };
    if args.index == Index::Hnsw {
        return hnsw::run(&args, metric, &name, &base, &queries, truth.as_ref());
    }
    let dim = base.cols;
    let tmp = TempDir::new()?;
    let path = tmp.0.join("bench.db");
    let profile = Profile::new(dim, metric).with_durability(args.durability);
    let (shard, build_s) = build(&path, &profile, &base, args.batch, None)?;
    let insert_vps = base.rows as f64 / build_s;
    let t = Instant::now();
    shard.set_quantization(args.quantization)?;
    let quantize_s = t.elapsed().as_secs_f64();

    let params = SearchParams::k(args.k);
    for i in 0..args.warmup.min(queries.rows) {
        shard.search(queries.row(i), &params)?;
    }
    let mut lat = Vec::with_capacity(queries.rows);
    let mut recall_sum = 0.0;
    for i in 0..queries.rows {
        let q = queries.row(i);
        let t = Instant::now();
        let hits = shard.search(q, &params)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        if let Some((gt_ids, gt_dist)) = &truth {
            let ids: Vec<usize> = hits
                .iter()
                .map(|h| h.id.parse().unwrap_or(usize::MAX))
                .collect();
            let dists: Vec<f32> = hits
                .iter()
                .map(|h| match metric {
                    Metric::Cosine => 1.0 - h.score,
                    _ => h.score * h.score,
                })
                .collect();
            recall_sum += recall_at_k(&ids, &dists, gt_ids.row(i), gt_dist.row(i), args.k);
        }
    }
    let recall = truth.as_ref().map(|_| recall_sum / queries.rows as f64);
    let mean_us = lat.iter().sum::<f64>() / lat.len() as f64;
    let (p50, p95, p99) = (
        percentile(&mut lat, 50.0),
        percentile(&mut lat, 95.0),
        percentile(&mut lat, 99.0),
    );
    let stats = shard.stats()?;
    drop(shard);

    // Reopen the shard and answer a first query (cold start of a process).
    let (reopened, open_first_query_ms) = if args.durability == Durability::Memory {
        (Shard::in_memory(&profile)?, f64::NAN)
    } else {
        let t = Instant::now();
        let reopened = Shard::open(&path)?;
        reopened.search(queries.row(0), &params)?;
        (reopened, t.elapsed().as_secs_f64() * 1e3)
    };

    // Single inserts, each its own transaction.
    let mut single = Vec::with_capacity(args.single_inserts);
    for i in 0..args.single_inserts {
        let v = base.row(i % base.rows).to_vec();
        let item = NewItem::new(v).with_id(format!("single-{i}"));
        let t = Instant::now();
        reopened.insert(item)?;
        single.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let single_p50 = percentile(&mut single, 50.0);
    let single_p99 = percentile(&mut single, 99.0);
    let mem_ratio = stats.bytes_in_memory as f64 / stats.raw_vector_bytes.max(1) as f64;

    let out = json!({
        "dataset": name,
        "n": base.rows,
        "dim": dim,
        "metric": metric.as_str(),
        "k": args.k,
        "index": "exact",
        "quantization": args.quantization.as_str(),
        "quantize_s": quantize_s,
        "queries": queries.rows,
        "query_set": match args.queries { Queries::Full => "full", Queries::Short => "short" },
        "recall_at_k": recall,
        "p50_us": p50,
        "p95_us": p95,
        "p99_us": p99,
        "mean_us": mean_us,
        "build_s": build_s,
        "insert_vps": insert_vps,
        "durability": args.durability.as_str(),
        "open_first_query_ms": open_first_query_ms,
        "single_insert_p50_us": if single.is_empty() { None } else { Some(single_p50) },
        "single_insert_p99_us": if single.is_empty() { None } else { Some(single_p99) },
        "arena_bytes": stats.bytes_in_memory,
        "raw_vector_bytes": stats.raw_vector_bytes,
        "arena_over_raw": mem_ratio,
        "bytes_on_disk": stats.bytes_on_disk,
        "search_method": stats.search_method,
    });
    if args.json {
        println!("{out}");
    } else {
        println!("sqlite-vector bench: {name}, n = {}, dim = {dim}, {metric}, k = {}, index exact ({}), one thread", base.rows, args.k, stats.search_method);
        let rows: [(&str, String); 11] = [
            (
                "recall@k",
                recall.map_or("n/a (synthetic)".into(), |r| format!("{r:.4}")),
            ),
            ("query p50", format!("{p50:.0} µs")),
            ("query p95", format!("{p95:.0} µs")),
            ("query p99", format!("{p99:.0} µs")),
            ("build", format!("{build_s:.2} s")),
            (
                "insert rate",
                format!(
                    "{insert_vps:.0} vectors/s (batches of {}, durability {})",
                    args.batch, args.durability
                ),
            ),
            ("open + 1st query", format!("{open_first_query_ms:.1} ms")),
            (
                "single insert p50",
                if single.is_empty() {
                    "skipped".into()
                } else {
                    format!("{single_p50:.0} µs")
                },
            ),
            (
                "single insert p99",
                if single.is_empty() {
                    "skipped".into()
                } else {
                    format!("{single_p99:.0} µs")
                },
            ),
            (
                "arena memory",
                format!(
                    "{:.1} MB ({mem_ratio:.3}× raw vectors)",
                    stats.bytes_in_memory as f64 / 1e6
                ),
            ),
            (
                "on disk",
                format!("{:.1} MB", stats.bytes_on_disk as f64 / 1e6),
            ),
        ];
        for (k, v) in rows {
            println!("  {k:<18} {v}");
        }
    }
    Ok(())
}
