//! Insert throughput into file-backed shards (WAL, durability `normal`) in a temporary
//! directory; throughput lines are vectors per second.
//!
//! * `insert_batch/384/10000`: one `insert_batch` (one transaction) of 10,000 seeded random
//!   384-d vectors into a fresh, empty shard per iteration (creating the shard and the items is
//!   not timed).
//! * `insert_batch/128/100000`: the same with 100,000 × 128-d vectors.
//! * `insert_single/384`: one `insert` (its own transaction) of a 384-d vector per iteration
//!   into a shard that keeps growing; it starts with 1,000 items.
//!
//! Run with `cargo bench -p sqlite-vector --bench insert` (add `-- --quick` for a fast check).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use sqlite_vector::{Durability, Metric, NewItem, Profile, Shard};
use sqlite_vector_dataset::SeededRng as Rng;

fn profile(dim: usize) -> Profile {
    Profile::new(dim, Metric::Cosine).with_durability(Durability::Normal)
}

/// `n` items of dimension `dim` with ids `{prefix}{i}`.
fn items(rng: &mut Rng, prefix: &str, n: usize, dim: usize) -> Vec<NewItem> {
    (0..n)
        .map(|i| NewItem::new(rng.vec(dim)).with_id(format!("{prefix}{i}")))
        .collect()
}

fn batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_batch");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    let mut rng = Rng(0x5EED_1234_ABCD_0101);
    for (dim, n, secs) in [(384, 10_000, 6), (128, 100_000, 8)] {
        group
            .measurement_time(Duration::from_secs(secs))
            .throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(dim.to_string(), n), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let shard =
                        Shard::create(dir.path().join("batch.db"), &profile(dim)).expect("create");
                    (dir, shard, items(&mut rng, "v", n, dim))
                },
                |(dir, shard, items)| {
                    let ids = shard.insert_batch(black_box(items)).expect("insert_batch");
                    black_box(ids);
                    // Returned so that closing the shard and removing the file are not timed.
                    (dir, shard)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn single(c: &mut Criterion) {
    const DIM: usize = 384;
    let mut rng = Rng(0x5EED_1234_ABCD_0102);
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = open_seeded(dir.path(), &mut rng, DIM);
    let mut next = 0u64;

    let mut group = c.benchmark_group("insert_single");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    group.bench_function(DIM.to_string(), |b| {
        b.iter_batched(
            || {
                next += 1;
                NewItem::new(rng.vec(DIM)).with_id(format!("single-{next}"))
            },
            |item| shard.insert(black_box(item)).expect("insert"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A file-backed shard in `dir` holding 1,000 items (ids `seed-{i}`).
fn open_seeded(dir: &Path, rng: &mut Rng, dim: usize) -> Shard {
    let shard = Shard::create(dir.join("single.db"), &profile(dim)).expect("create");
    shard
        .insert_batch(items(rng, "seed-", 1_000, dim))
        .expect("seed items");
    shard
}

criterion_group!(benches, batches, single);
criterion_main!(benches);
