//! `sqlite-vector-bench concurrent`: the search throughput of `--threads` threads on one file
//! shard (exact search, k = 10 by default), first alone, then while one more thread inserts
//! (`--batch` items per transaction, continuously), each phase for `--seconds`. Reports queries
//! per second in both phases, the writer's rate and the latency percentiles of both sides.
//!
//! It uses only the shard API every released version has (`create`, `insert_batch`, `search`),
//! so the same source measures an older build in the same run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sqlite_vector::{Metric, NewItem, Profile, SearchParams, Shard};
use sqlite_vector_dataset::{percentile, read_f32, Matrix, SeededRng};

use crate::{Failure, Result};

/// Options of `concurrent`.
#[derive(Args)]
pub struct ConcurrentArgs {
    /// Dataset directory (base.npy, queries.npy).
    #[arg(long, conflicts_with = "synth")]
    data: Option<PathBuf>,
    /// Synthetic data instead: NxD seeded normal vectors, 200 queries.
    #[arg(long)]
    synth: Option<String>,
    /// Search threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Items per writer transaction (1: single inserts).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// What one phase measured.
struct Phase {
    queries: usize,
    search_us: Vec<f64>,
    writes: usize,
    write_us: Vec<f64>,
    secs: f64,
}

fn data(args: &ConcurrentArgs) -> Result<(String, Matrix<f32>, Matrix<f32>)> {
    match (&args.data, &args.synth) {
        (Some(dir), _) => Ok((
            dir.file_name()
                .map_or("data".into(), |n| n.to_string_lossy().into_owned()),
            read_f32(dir.join("base.npy"))?,
            read_f32(dir.join("queries.npy"))?,
        )),
        (None, Some(s)) => {
            let bad = || Failure(format!("--synth wants NxD, e.g. 100000x384, got {s:?}"));
            let (n, d) = s.split_once(['x', 'X']).ok_or_else(bad)?;
            let (n, d): (usize, usize) =
                (n.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
            let mut rng = SeededRng(0x5EED_C0C0_1234_5678);
            Ok((
                format!("synth-{n}x{d}"),
                rng.matrix(n, d, false),
                rng.matrix(200, d, false),
            ))
        }
        (None, None) => Err(Failure("give --data DIR or --synth NxD".into())),
    }
}

/// Runs `threads` searchers (and a writer when `batch` is some) on `shard` for `secs`.
fn phase(
    shard: &Shard,
    base: &Matrix<f32>,
    queries: &Matrix<f32>,
    args: &ConcurrentArgs,
    writer: bool,
    next_id: &AtomicUsize,
) -> Result<Phase> {
    let stop = AtomicBool::new(false);
    let params = SearchParams::k(args.k);
    let t0 = Instant::now();
    let (searches, writes) = std::thread::scope(|s| {
        let searchers: Vec<_> = (0..args.threads)
            .map(|t| {
                let (stop, params) = (&stop, &params);
                s.spawn(move || -> Result<Vec<f64>> {
                    let mut lat = Vec::new();
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let q = queries.row(i % queries.rows);
                        let t = Instant::now();
                        shard.search(q, params)?;
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                        i += args.threads;
                    }
                    Ok(lat)
                })
            })
            .collect();
        let writer = writer.then(|| {
            let stop = &stop;
            s.spawn(move || -> Result<Vec<f64>> {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let first = next_id.fetch_add(args.batch, Ordering::Relaxed);
                    let items = (first..first + args.batch)
                        .map(|j| {
                            NewItem::new(base.row(j % base.rows).to_vec()).with_id(format!("w-{j}"))
                        })
                        .collect();
                    let t = Instant::now();
                    shard.insert_batch(items)?;
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
                Ok(lat)
            })
        });
        std::thread::sleep(Duration::from_secs_f64(args.seconds));
        stop.store(true, Ordering::Relaxed);
        let searches: Vec<Result<Vec<f64>>> = searchers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure("a searcher panicked".into())))
            })
            .collect();
        let writes = writer.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Failure("the writer panicked".into())))
        });
        (searches, writes)
    });
    let secs = t0.elapsed().as_secs_f64();
    let mut search_us = Vec::new();
    for s in searches {
        search_us.extend(s?);
    }
    let write_us = writes.transpose()?.unwrap_or_default();
    Ok(Phase {
        queries: search_us.len(),
        writes: write_us.len() * args.batch,
        search_us,
        write_us,
        secs,
    })
}

/// Runs `concurrent` (see the module docs).
pub fn run(args: ConcurrentArgs) -> Result {
    if args.threads == 0 || args.batch == 0 || args.seconds <= 0.0 {
        return Err(Failure(
            "--threads, --batch and --seconds must be positive".into(),
        ));
    }
    let (name, base, queries) = data(&args)?;
    let dir = std::env::temp_dir().join(format!("sqlite-vector-concurrent-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let shard = Shard::create(
            dir.join("bench.db"),
            &Profile::new(base.cols, Metric::Cosine),
        )?;
        for start in (0..base.rows).step_by(10_000) {
            let items = (start..(start + 10_000).min(base.rows))
                .map(|i| NewItem::new(base.row(i).to_vec()).with_id(i.to_string()))
                .collect();
            shard.insert_batch(items)?;
        }
        let next_id = AtomicUsize::new(0);
        // Warm-up, untimed.
        for i in 0..queries.rows.min(50) {
            shard.search(queries.row(i), &SearchParams::k(args.k))?;
        }
        let alone = phase(&shard, &base, &queries, &args, false, &next_id)?;
        let mut busy = phase(&shard, &base, &queries, &args, true, &next_id)?;
        let qps = |p: &Phase| p.queries as f64 / p.secs;
        let out = json!({
            "bench": "concurrent", "dataset": name, "n": base.rows, "dim": base.cols,
            "k": args.k, "threads": args.threads, "seconds": args.seconds, "batch": args.batch,
            "qps_alone": qps(&alone),
            "qps_with_writer": qps(&busy),
            "writes_per_s": busy.writes as f64 / busy.secs,
            "search_p50_us_with_writer": percentile(&mut busy.search_us, 50.0),
            "search_p99_us_with_writer": percentile(&mut busy.search_us, 99.0),
            "write_p50_us": percentile(&mut busy.write_us, 50.0),
            "write_p99_us": percentile(&mut busy.write_us, 99.0),
        });
        if args.json {
            println!("{out}");
        } else {
            println!(
                "{name}: {} × {}, {} search threads, k = {}, writer batches of {}",
                base.rows, base.cols, args.threads, args.k, args.batch
            );
            println!("  queries/s alone          {:.0}", qps(&alone));
            println!(
                "  queries/s with a writer  {:.0} ({:.0} writes/s)",
                qps(&busy),
                out["writes_per_s"].as_f64().unwrap_or(0.0)
            );
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
