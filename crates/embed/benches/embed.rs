//! Throughput of the built-in static embedder on one thread; throughput lines are texts per
//! second.
//!
//! * `embed_static/short`: the 500 known-item queries of debian-minilm (one-line package
//!   synopses, about 10 tokens each), one `embed` call per text.
//! * `embed_static/description`: 1,000 full package descriptions (every 25th base text of
//!   debian-minilm; about 90 tokens, 410 characters on average), one `embed` call per text.
//!
//! The texts come from `../shared/data/debian-minilm` (or `$SQLITE_VECTOR_DATA/debian-minilm`);
//! without it a note goes to stderr and built-in sample strings stand in.
//!
//! Run with `cargo bench -p sqlite-vector-embed --bench embed` (add `-- --quick` for a fast
//! check).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlite_vector_embed::{Embedder, StaticEmbedder};

/// debian-minilm's directory, if present.
fn dataset_dir() -> Option<PathBuf> {
    let root = match std::env::var_os("SQLITE_VECTOR_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    };
    let dir = root.join("debian-minilm");
    (dir.join("texts.jsonl").is_file() && dir.join("known_item.jsonl").is_file()).then_some(dir)
}

/// The string field `field` of every line of a JSON-lines file that passes `keep`.
fn jsonl_field(
    path: &PathBuf,
    field: &str,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| keep(v))
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

/// (short texts, descriptions).
fn texts() -> (Vec<String>, Vec<String>) {
    if let Some(dir) = dataset_dir() {
        let short = jsonl_field(&dir.join("known_item.jsonl"), "query", |_| true);
        let base = jsonl_field(&dir.join("texts.jsonl"), "text", |v| v["set"] == "base");
        let long = base.into_iter().step_by(25).collect();
        return (short, long);
    }
    eprintln!(
        "note: ../shared/data/debian-minilm not found (set SQLITE_VECTOR_DATA): benchmarking \
         built-in sample strings instead of the real texts"
    );
    let short: Vec<String> = [
        "command-line tool to convert HTML to PDF",
        "Haskell library: efficient parsers for floating-point literals",
        "plugin-based Nintendo 64 emulator, audio plugins",
        "GNU C library: shared libraries",
        "X11 Athena Widget library (development headers)",
        "NFS-safe file-based lock with timeouts (common documentation)",
        "SIP library for Erlang",
        "window-manager selection tool used at X startup",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let long = short
        .iter()
        .map(|s| {
            format!(
                "{s} This package contains the {s} runtime files, together with the \
                 documentation, the examples and the shared libraries needed by programs \
                 linked against it. It is part of a larger suite of tools for developers; see \
                 the project homepage for details on configuration, supported platforms and \
                 known limitations of this release."
            )
        })
        .collect();
    (short, long)
}

fn embed_static(c: &mut Criterion) {
    let embedder = StaticEmbedder::builtin().unwrap();
    let (short, long) = texts();
    let mut group = c.benchmark_group("embed_static");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, set) in [("short", &short), ("description", &long)] {
        group.throughput(Throughput::Elements(set.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for t in set {
                    black_box(embedder.embed(black_box(t)).unwrap());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, embed_static);
criterion_main!(benches);
