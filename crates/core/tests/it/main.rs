//! Integration tests of the core crate: one binary, a module per area.

mod api;
mod bad_input;
mod concurrency;
mod durability;
mod fixtures;
mod hybrid;
mod image;
mod index;
mod manager;
mod manager_reliability;
mod query;
mod real_data;
mod soak;
mod sync;
mod transaction;

use std::path::PathBuf;

use sqlite_vector::{Metric, NewItem, Profile, Shard};

/// The sample shipped in the repository (`data/sample`).
pub fn sample_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample"))
}

/// Seeded pseudo-random vectors (xorshift64*), values in [-1, 1).
pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = sqlite_vector_dataset::SeededRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n).map(|_| rng.vec(dim)).collect()
}

/// A file shard in a fresh temporary directory (kept alive by the returned guard).
pub fn temp_shard(dim: usize, metric: Metric) -> (tempfile::TempDir, PathBuf, Shard) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let shard = Shard::create(&path, &Profile::new(dim, metric)).unwrap();
    (dir, path, shard)
}

/// Inserts `vectors` with ids `"0"`, `"1"`, ...
pub fn fill(shard: &Shard, vectors: &[Vec<f32>]) {
    let items = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| NewItem::new(v.clone()).with_id(i.to_string()))
        .collect();
    shard.insert_batch(items).unwrap();
}
