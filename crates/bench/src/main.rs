//! `sqlite-vector-bench`: sqlite-vector against its peers in the same run, and the benchmarks
//! that need more than one thread. A tool of the workspace, not shipped: the peer harness
//! (Python with numpy, faiss, hnswlib, usearch: `../shared/peers/README.md`) and the chart
//! (plotters) stay out of the `sqlite-vector` binary, whose `bench --json` rows this tool reads
//! for our own numbers, so they are the numbers users get.
//!
//! * `hnsw`: `sqlite-vector bench --index hnsw --json` (our ef_search sweep), then
//!   `tools/peer_sweep.py` for hnswlib and usearch with the **same** k, M, ef_construction,
//!   ef_search values and query set; one JSON row per point, and a recall/QPS SVG chart.
//! * `exact`: `sqlite-vector bench --json` (exact search), then faiss `IndexFlat` through the same
//!   script with the same k and query set.
//! * `concurrent`: search throughput of N threads on one shard, alone and while one writer
//!   inserts (see [`concurrent`]).

#![warn(missing_docs)]

mod concurrent;
mod peers;
mod plot;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use crate::peers::{default_python, default_script, peer_series, run_peer_sweep, SweepParams};
use crate::plot::{write_recall_qps_svg, Series};

/// sqlite-vector against its peers, measured in one run.
#[derive(Parser)]
#[command(name = "sqlite-vector-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// HNSW: our ef_search sweep and the peers' (hnswlib, usearch) with the same parameters,
    /// plus a recall/QPS chart.
    Hnsw(HnswArgs),
    /// Exact search: ours and faiss IndexFlat with the same k and query set.
    Exact(Common),
    /// Search throughput of N threads alone and while one writer inserts.
    Concurrent(concurrent::ConcurrentArgs),
}

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

/// What both peer comparisons share.
#[derive(Args)]
struct Common {
    /// Dataset directory (base.npy, queries*.npy, gt_*.npy).
    #[arg(long)]
    data: PathBuf,
    /// Metric.
    #[arg(long, value_enum, default_value = "cos")]
    metric: BenchMetric,
    /// Hits per query (recall@k), for us and the peers.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Query set, for us and the peers: queries.npy (full) or queries_short.npy (short).
    #[arg(long, value_enum, default_value = "full")]
    queries: Queries,
    /// Peer libraries, comma-separated (`none` for ours only).
    #[arg(long)]
    peers: Option<String>,
    /// The peers' Python (default: $SQLITE_VECTOR_PEERS_PYTHON, else
    /// ~/.cache/peers-venv/bin/python).
    #[arg(long)]
    peers_python: Option<PathBuf>,
    /// The `sqlite-vector` binary (default: the one next to this tool, e.g.
    /// target/release/sqlite-vector).
    #[arg(long)]
    sqlite_vector: Option<PathBuf>,
    /// Print JSON rows (ours, then the peers').
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct HnswArgs {
    #[command(flatten)]
    common: Common,
    /// HNSW `M`, for us and the peers (usearch `connectivity`).
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW `ef_construction`, for us and the peers (usearch `expansion_add`).
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// `ef_search` values to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    ef_search: Vec<usize>,
    /// Our quantization (`none` or `int8`).
    #[arg(long, default_value = "none")]
    quantization: String,
    /// Where to write the recall/QPS chart (SVG; default bench-hnsw-<dataset>.svg).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// A failure, printed as one line.
pub(crate) struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

type Result<T = (), E = Failure> = std::result::Result<T, E>;

impl Common {
    fn metric(&self) -> &'static str {
        match self.metric {
            BenchMetric::Cos => "cos",
            BenchMetric::L2 => "l2",
        }
    }
    fn qset(&self) -> &'static str {
        match self.queries {
            Queries::Full => "",
            Queries::Short => "short",
        }
    }
    /// The `sqlite-vector bench` arguments for this run's common parameters.
    fn our_args(&self) -> Vec<String> {
        let queries = match self.queries {
            Queries::Full => "full",
            Queries::Short => "short",
        };
        vec![
            "bench".into(),
            "--data".into(),
            self.data.display().to_string(),
            "--metric".into(),
            self.metric().into(),
            "--k".into(),
            self.k.to_string(),
            "--queries".into(),
            queries.into(),
            "--json".into(),
        ]
    }
    fn binary(&self) -> Result<PathBuf> {
        if let Some(b) = &self.sqlite_vector {
            return Ok(b.clone());
        }
        let sibling = std::env::current_exe()?.with_file_name("sqlite-vector");
        if sibling.is_file() {
            Ok(sibling)
        } else {
            Err(Failure(format!(
                "no sqlite-vector binary at {}: build it (cargo build --release -p \
                 sqlite-vector-cli) or pass --sqlite-vector",
                sibling.display()
            )))
        }
    }
    fn libs(&self, default: &str) -> Vec<String> {
        let list = self.peers.as_deref().unwrap_or(default);
        if list == "none" {
            return Vec::new();
        }
        list.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

/// Runs `sqlite-vector` with `args` and returns the JSON values it printed on stdout (its
/// progress and summary go to our stderr).
fn run_ours(binary: &Path, args: &[String]) -> Result<Vec<Value>> {
    eprintln!(
        "sqlite-vector-bench: {} {}",
        binary.display(),
        args.join(" ")
    );
    let out = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Failure(format!("cannot run {}: {e}", binary.display())))?;
    if !out.status.success() {
        return Err(Failure(format!(
            "{} {} failed ({})",
            binary.display(),
            args.join(" "),
            out.status
        )));
    }
    let text = String::from_utf8(out.stdout)?;
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map(|v| v.map_err(Failure::from))
        .collect()
}

/// The peers' rows for `params`, as JSON rows; a missing harness is reported, not fatal.
fn peer_rows(common: &Common, libs: &[String], params: &SweepParams) -> (Vec<Value>, Vec<Series>) {
    if libs.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let python = common.peers_python.clone().unwrap_or_else(default_python);
    let Some(script) = default_script() else {
        eprintln!("sqlite-vector-bench: peers not measured: tools/peer_sweep.py not found");
        return (Vec::new(), Vec::new());
    };
    match run_peer_sweep(&python, &script, &common.data, libs, params) {
        Ok(points) => {
            let rows = points
                .iter()
                .map(|p| {
                    json!({
                        "peer": p.lib, "k": params.k, "ef_search": p.ef_search,
                        "recall_at_k": p.recall10, "p50_us": p.p50_us, "p95_us": p.p95_us,
                        "p99_us": p.p99_us, "qps": p.qps, "build_s": p.build_s,
                        "insert_vps": p.insert_vps, "params": p.params,
                    })
                })
                .collect();
            (rows, peer_series(&points))
        }
        Err(e) => {
            eprintln!("sqlite-vector-bench: peers not measured: {e}");
            (Vec::new(), Vec::new())
        }
    }
}

fn print_rows(json: bool, rows: &[Value]) {
    for r in rows {
        if json {
            println!("{r}");
        } else {
            let who = r.get("peer").and_then(Value::as_str).map_or_else(
                || format!("sqlite-vector {}", r["path"].as_str().unwrap_or("")),
                String::from,
            );
            let ef = r
                .get("ef_search")
                .filter(|v| !v.is_null())
                .map_or("-".into(), Value::to_string);
            let num = |k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
            println!(
                "  {who:<22} {ef:>6} {:>10.4} {:>8.0} {:>8.0} {:>10.0}",
                num("recall_at_k"),
                num("p50_us"),
                num("p99_us"),
                num("qps")
            );
        }
    }
}

fn hnsw(args: HnswArgs) -> Result {
    let c = &args.common;
    let mut ours_args = c.our_args();
    ours_args.extend([
        "--index".into(),
        "hnsw".into(),
        "--m".into(),
        args.m.to_string(),
        "--ef-construction".into(),
        args.ef_construction.to_string(),
        "--ef-search".into(),
        args.ef_search
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        "--quantization".into(),
        args.quantization.clone(),
    ]);
    let ours = run_ours(&c.binary()?, &ours_args)?;
    let params = SweepParams {
        metric: c.metric().into(),
        k: c.k,
        qset: c.qset().into(),
        m: args.m,
        ef_construction: args.ef_construction,
        efs: args.ef_search.clone(),
    };
    let (peers, peer_lines) = peer_rows(c, &c.libs("hnswlib,usearch"), &params);
    let name = c
        .data
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy().into_owned());
    let point = |r: &Value| {
        let recall = r["recall_at_k"].as_f64()?;
        let qps = r["qps"].as_f64()?;
        Some((recall, qps))
    };
    let mut series = vec![Series {
        label: format!(
            "sqlite-vector hnsw (M={}, efC={})",
            args.m, args.ef_construction
        ),
        points: ours
            .iter()
            .filter(|r| !r["ef_search"].is_null())
            .filter_map(|r| point(r).map(|(x, y)| (x, y, format!("ef={}", r["ef_search"]))))
            .collect(),
    }];
    series.push(Series {
        label: "sqlite-vector exact".into(),
        points: ours
            .iter()
            .filter(|r| r["ef_search"].is_null())
            .filter_map(|r| point(r).map(|(x, y)| (x, y, "exact".into())))
            .collect(),
    });
    series.extend(peer_lines);
    let plot = args
        .plot
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("bench-hnsw-{name}.svg")));
    let (n, dim) = ours.first().map_or((0, 0), |r| {
        (r["n"].as_u64().unwrap_or(0), r["dim"].as_u64().unwrap_or(0))
    });
    let title = format!(
        "{name}: {n} × {dim}, {}, k = {}, one thread",
        c.metric(),
        c.k
    );
    write_recall_qps_svg(&plot, &title, &series)?;
    if !c.json {
        println!(
            "{name}: k = {}, M = {}, ef_construction = {}, queries {}, one thread (ours and peers)",
            c.k,
            args.m,
            args.ef_construction,
            if c.qset().is_empty() { "full" } else { "short" }
        );
        println!(
            "  {:<22} {:>6} {:>10} {:>8} {:>8} {:>10}",
            "who", "ef", "recall@k", "p50 µs", "p99 µs", "queries/s"
        );
    }
    print_rows(c.json, &ours);
    print_rows(c.json, &peers);
    eprintln!("sqlite-vector-bench: chart {}", plot.display());
    Ok(())
}

fn exact(c: Common) -> Result {
    let ours = run_ours(&c.binary()?, &c.our_args())?;
    let params = SweepParams {
        metric: c.metric().into(),
        k: c.k,
        qset: c.qset().into(),
        m: 16,
        ef_construction: 200,
        // Exact libraries take no ef; the script still wants a valid list.
        efs: vec![1],
    };
    let (peers, _) = peer_rows(&c, &c.libs("faiss"), &params);
    if !c.json {
        println!(
            "  {:<22} {:>6} {:>10} {:>8} {:>8} {:>10}",
            "who", "ef", "recall@k", "p50 µs", "p99 µs", "queries/s"
        );
    }
    let ours: Vec<Value> = ours
        .into_iter()
        .map(|mut r| {
            if let Some(mean) = r["mean_us"].as_f64() {
                r["qps"] = json!(1e6 / mean);
            }
            r["path"] = json!("exact");
            r
        })
        .collect();
    print_rows(c.json, &ours);
    print_rows(c.json, &peers);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Cmd::Hnsw(a) => hnsw(a),
        Cmd::Exact(a) => exact(a),
        Cmd::Concurrent(a) => concurrent::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
