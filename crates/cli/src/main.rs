//! `sqlite-vector`: the command-line interface.
//!
//! Every subcommand is a thin layer over the `sqlite-vector` crate's [`Shard`] API; errors are
//! printed to stderr with a non-zero exit code (2 for bad input, 1 for internal failures).

#![warn(missing_docs)]

mod bench;
mod demo;
mod import;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sqlite_vector::{Durability, Filter, Metric, Profile, SearchParams, Shard};

/// Embedded vector database for AI agents: SQLite shards, exact SIMD search.
#[derive(Parser)]
#[command(name = "sqlite-vector", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an empty shard file.
    Create {
        /// Path of the new shard file.
        path: PathBuf,
        /// Vector dimension.
        #[arg(long)]
        dim: usize,
        /// Metric: cosine, l2 or dot.
        #[arg(long, default_value = "cosine")]
        metric: Metric,
        /// Durability: full or normal.
        #[arg(long, default_value = "normal")]
        durability: Durability,
        /// Id of the embedding model the vectors come from.
        #[arg(long)]
        model: Option<String>,
    },
    /// Import vectors from a .npy file (with ids/metadata/text from JSONL) or from JSONL lines
    /// that carry a vector.
    Import(import::ImportArgs),
    /// Search a shard with a query vector.
    Search {
        /// Shard file.
        path: PathBuf,
        /// Query vector as a JSON array, e.g. '[0.1, 0.2, 0.3]'.
        #[arg(long, conflicts_with = "npy")]
        vector: Option<String>,
        /// Read the query from a row of a .npy file (f32 [n, dim]).
        #[arg(long, requires = "row")]
        npy: Option<PathBuf>,
        /// Row of --npy to use.
        #[arg(long)]
        row: Option<usize>,
        /// Number of hits.
        #[arg(long, short, default_value_t = 10)]
        k: usize,
        /// Metadata filter as JSON, e.g. '{"kind": "python", "words": {"$gte": 50}}'.
        #[arg(long)]
        filter: Option<String>,
        /// Metric override: cosine, l2 or dot.
        #[arg(long)]
        metric: Option<Metric>,
        /// Keep hits with score ≥ this (cosine, dot).
        #[arg(long)]
        min_score: Option<f32>,
        /// Keep hits with L2 distance ≤ this (l2).
        #[arg(long)]
        max_distance: Option<f32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one item as JSON.
    Get {
        /// Shard file.
        path: PathBuf,
        /// Item id.
        id: String,
    },
    /// Delete items (each leaves a tombstone for sync).
    Delete {
        /// Shard file.
        path: PathBuf,
        /// Item ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Show a shard's profile, counts and sizes.
    Stats {
        /// Shard file.
        path: PathBuf,
        /// Also run an integrity check.
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark on a dataset directory (shared/data/FORMAT.md layout) or synthetic data.
    Bench(bench::BenchArgs),
    /// A tour on the built-in sample of 2,000 Debian package descriptions (no setup, no network).
    Demo {
        /// Keep the demo shard at this path instead of a temporary file.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

/// A CLI failure: the message and whether the user caused it.
pub(crate) struct Failure {
    msg: String,
    user: bool,
}

impl From<sqlite_vector::Error> for Failure {
    fn from(e: sqlite_vector::Error) -> Self {
        Failure {
            user: e.is_user_error(),
            msg: e.to_string(),
        }
    }
}

impl From<sqlite_vector_dataset::DatasetError> for Failure {
    fn from(e: sqlite_vector_dataset::DatasetError) -> Self {
        Failure {
            user: true,
            msg: e.to_string(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure {
            user: false,
            msg: e.to_string(),
        }
    }
}

/// A user error with this message.
pub(crate) fn user(msg: impl Into<String>) -> Failure {
    Failure {
        msg: msg.into(),
        user: true,
    }
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

fn parse_vector(s: &str) -> CliResult<Vec<f32>> {
    serde_json::from_str::<Vec<f32>>(s)
        .map_err(|e| user(format!("--vector must be a JSON array of numbers: {e}")))
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Create {
            path,
            dim,
            metric,
            durability,
            model,
        } => {
            let mut profile = Profile::new(dim, metric).with_durability(durability);
            profile.embedding_model = model;
            Shard::create(&path, &profile)?;
            println!(
                "created {} (dim {dim}, {metric}, durability {durability})",
                path.display()
            );
        }
        Command::Import(args) => import::run(args)?,
        Command::Search {
            path,
            vector,
            npy,
            row,
            k,
            filter,
            metric,
            min_score,
            max_distance,
            json,
        } => {
            let query = match (vector, npy, row) {
                (Some(v), _, _) => parse_vector(&v)?,
                (None, Some(p), Some(r)) => {
                    let m = sqlite_vector_dataset::read_f32(&p)?;
                    if r >= m.rows {
                        return Err(user(format!(
                            "--row {r} is out of range: {} has {} rows",
                            p.display(),
                            m.rows
                        )));
                    }
                    m.row(r).to_vec()
                }
                _ => {
                    return Err(user(
                        "give the query with --vector JSON or --npy FILE --row N",
                    ))
                }
            };
            let shard = Shard::open(&path)?;
            let params = SearchParams {
                k,
                metric,
                min_score,
                max_distance,
                filter: filter.as_deref().map(str::parse::<Filter>).transpose()?,
            };
            let t = std::time::Instant::now();
            let hits = shard.search(&query, &params)?;
            let us = t.elapsed().as_secs_f64() * 1e6;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&hits).expect("hits serialise")
                );
            } else {
                let m = metric.unwrap_or(shard.profile().metric);
                let label = if m.higher_is_better() {
                    "score"
                } else {
                    "distance"
                };
                println!("{:>4}  {:>9}  id", "rank", label);
                for (i, h) in hits.iter().enumerate() {
                    println!("{:>4}  {:>9.4}  {}", i + 1, h.score, h.id);
                }
                eprintln!("{} hits in {us:.0} µs", hits.len());
            }
        }
        Command::Get { path, id } => {
            let shard = Shard::open(&path)?;
            let item = shard.get(&id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&item).expect("item serialises")
            );
        }
        Command::Delete { path, ids } => {
            let shard = Shard::open(&path)?;
            for id in &ids {
                shard.delete(id)?;
            }
            println!("deleted {} item(s)", ids.len());
        }
        Command::Stats { path, check, json } => {
            let shard = Shard::open(&path)?;
            if check {
                shard.check_integrity()?;
            }
            let s = shard.stats()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&s).expect("stats serialise")
                );
            } else {
                let v = serde_json::to_value(&s).expect("stats serialise");
                for (k, v) in v.as_object().expect("object") {
                    println!("{k:>18}: {v}");
                }
                if check {
                    println!("{:>18}: ok", "integrity");
                }
            }
        }
        Command::Bench(args) => bench::run(args)?,
        Command::Demo { keep } => demo::run(keep)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.msg);
            if f.user {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
