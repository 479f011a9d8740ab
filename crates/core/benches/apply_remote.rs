//! Applying another site's changes (`WriteTx::apply_remote`) to a file shard (WAL, durability
//! `normal`); throughput lines are changes per second.
//!
//! * `apply_remote/384/10000`: 10,000 new 384-d items (vector, metadata, text) from another
//!   site, read from its change feed, applied in one transaction to a fresh shard per iteration.
//! * `apply_remote/384/10000/chunks_of_1000`: the same in ten transactions of 1,000 (the sync
//!   protocol's bounded chunks).
//! * `apply_remote/metadata_only/10000`: 10,000 changes of metadata only (same vectors) to
//!   items the shard already has.
//!
//! Run with `cargo bench -p sqlite-vector --bench apply_remote` (add `-- --quick` for a fast
//! check).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use serde_json::json;
use sqlite_vector::{Change, Metric, NewItem, Profile, Shard, Update};
use sqlite_vector_dataset::SeededRng as Rng;

const N: usize = 10_000;
const DIM: usize = 384;

/// The change feed of a source shard holding `N` seeded items.
fn source_feed(rng: &mut Rng) -> (Shard, Vec<Change>) {
    let source = Shard::in_memory(&Profile::new(DIM, Metric::Cosine)).expect("source");
    let items = (0..N)
        .map(|i| {
            NewItem::new(rng.vec(DIM))
                .with_id(format!("item-{i}"))
                .with_metadata(json!({"n": i, "tag": "remote"}))
                .with_text(format!("text of item {i} from the other site"))
        })
        .collect();
    source.insert_batch(items).expect("fill");
    let feed = source.changes_since(0, usize::MAX).expect("feed");
    (source, feed)
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_remote");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(N as u64));
    let mut rng = Rng(0xA991_0000_0000_0384);
    let (source, feed) = source_feed(&mut rng);
    let fresh = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let shard = Shard::create(dir.path().join("r.db"), &Profile::new(DIM, Metric::Cosine))
            .expect("create");
        (dir, shard)
    };
    group.bench_function(format!("{DIM}/{N}"), |b| {
        b.iter_batched(
            fresh,
            |(dir, shard)| {
                shard
                    .transaction(|tx| feed.iter().try_for_each(|c| tx.apply_remote(c).map(drop)))
                    .expect("apply");
                (dir, shard)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(format!("{DIM}/{N}/chunks_of_1000"), |b| {
        b.iter_batched(
            fresh,
            |(dir, shard)| {
                for chunk in feed.chunks(1000) {
                    shard
                        .transaction(|tx| {
                            chunk.iter().try_for_each(|c| tx.apply_remote(c).map(drop))
                        })
                        .expect("apply");
                }
                (dir, shard)
            },
            BatchSize::PerIteration,
        )
    });
    // Metadata-only changes: the source updates every item's metadata; the target already has
    // the items.
    for i in 0..N {
        source
            .update(
                &format!("item-{i}"),
                Update {
                    metadata: Some(json!({"n": i, "tag": "remote", "uses": 1})),
                    ..Update::default()
                },
            )
            .expect("update");
    }
    let updates = source
        .changes_since(feed.last().map_or(0, |c| c.seq), usize::MAX)
        .expect("feed");
    assert_eq!(updates.len(), N);
    group.bench_function(format!("metadata_only/{N}"), |b| {
        b.iter_batched(
            || {
                let (dir, shard) = fresh();
                shard
                    .transaction(|tx| feed.iter().try_for_each(|c| tx.apply_remote(c).map(drop)))
                    .expect("apply");
                (dir, shard)
            },
            |(dir, shard)| {
                shard
                    .transaction(|tx| {
                        updates
                            .iter()
                            .try_for_each(|c| tx.apply_remote(c).map(drop))
                    })
                    .expect("apply");
                black_box(&shard);
                (dir, shard)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
