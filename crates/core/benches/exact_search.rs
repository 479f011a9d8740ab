//! Exact (brute-force SIMD) search over an in-memory shard: one `Shard::search` per iteration,
//! cycling through the query set, so the time per iteration is the latency of one query and the
//! throughput line is queries per second.
//!
//! * `exact_search/debian-minilm/cosine/k10`: the real dataset (25,000 × 384 unit vectors,
//!   500 queries, from `../shared/data/debian-minilm`), cosine shard, k = 10.
//! * `exact_search/debian-minilm/l2/k10`: the same vectors in an L2 shard.
//! * `exact_search/debian-minilm/cosine/k10/filter20pct`: cosine, k = 10, with the metadata
//!   filter `{"bucket": {"$in": [1, 2]}}` over items tagged `{"bucket": row % 10}` (20 % match).
//! * When the real dataset is missing (a note goes to stderr), the same three run on a seeded
//!   synthetic set of 25,000 × 384 unit vectors, named `exact_search/synthetic-25000x384/…`.
//! * `exact_search/synthetic-100000x128/l2/k5`: 100,000 × 128 seeded normal vectors, L2, k = 5
//!   (the size of the large seed shard).
//!
//! Run with `cargo bench -p sqlite-vector --bench exact_search` (add `-- --quick` for a fast
//! check). Set `SQLITE_VECTOR_DATA` to read datasets from another directory.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use serde_json::json;
use sqlite_vector::{Filter, Metric, NewItem, Profile, SearchParams, Shard};
use sqlite_vector_dataset::SeededRng as Rng;
use sqlite_vector_dataset::{shared_dataset, Dataset, GtMetric, Matrix, QuerySet};

/// An in-memory shard of `base` (ids are row numbers), with `{"bucket": row % 10}` metadata
/// when `buckets`.
fn build_shard(base: &Matrix<f32>, metric: Metric, buckets: bool) -> Shard {
    let shard = Shard::in_memory(&Profile::new(base.cols, metric)).expect("create shard");
    let items = (0..base.rows)
        .map(|i| {
            let item = NewItem::new(base.row(i).to_vec()).with_id(i.to_string());
            if buckets {
                item.with_metadata(json!({ "bucket": i % 10 }))
            } else {
                item
            }
        })
        .collect();
    shard.insert_batch(items).expect("insert base vectors");
    shard
}

/// Benchmarks one search per iteration, cycling through the rows of `queries`.
fn bench_search(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    shard: &Shard,
    queries: &Matrix<f32>,
    params: &SearchParams,
) {
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            let q = queries.row(next % queries.rows);
            next += 1;
            let hits = shard
                .search(black_box(q), black_box(params))
                .expect("search");
            black_box(hits)
        })
    });
}

fn group<'a>(c: &'a mut Criterion) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group("exact_search");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    group
}

/// The 25,000 × 384 benchmarks: the real dataset, or a synthetic stand-in of the same shape.
fn minilm(c: &mut Criterion) {
    let (name, base, queries) = match shared_dataset("debian-minilm") {
        Some(dir) => {
            let ds = Dataset::load(&dir, GtMetric::Cos, QuerySet::Full)
                .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
            ("debian-minilm", ds.base, ds.queries)
        }
        None => {
            eprintln!(
                "exact_search: real dataset debian-minilm not found (../shared/data or \
                 $SQLITE_VECTOR_DATA); using synthetic 25000x384 unit vectors instead"
            );
            let mut rng = Rng(0x5EED_5EA2_C400_0001);
            let base = rng.matrix(25_000, 384, true);
            let queries = rng.matrix(500, 384, true);
            ("synthetic-25000x384", base, queries)
        }
    };
    let cosine = build_shard(&base, Metric::Cosine, true);
    let l2 = build_shard(&base, Metric::L2, false);
    let filter: Filter = r#"{"bucket": {"$in": [1, 2]}}"#.parse().expect("filter");

    let mut group = group(c);
    let k10 = SearchParams::k(10);
    bench_search(
        &mut group,
        &format!("{name}/cosine/k10"),
        &cosine,
        &queries,
        &k10,
    );
    bench_search(&mut group, &format!("{name}/l2/k10"), &l2, &queries, &k10);
    bench_search(
        &mut group,
        &format!("{name}/cosine/k10/filter20pct"),
        &cosine,
        &queries,
        &SearchParams::k(10).with_filter(filter),
    );
    group.finish();
}

/// 100,000 × 128 normal vectors, L2, k = 5.
fn large(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_5EA2_C400_0002);
    let base = rng.matrix(100_000, 128, false);
    let queries = rng.matrix(500, 128, false);
    let shard = build_shard(&base, Metric::L2, false);
    let mut group = group(c);
    bench_search(
        &mut group,
        "synthetic-100000x128/l2/k5",
        &shard,
        &queries,
        &SearchParams::k(5),
    );
    group.finish();
}

criterion_group!(benches, minilm, large);
criterion_main!(benches);
