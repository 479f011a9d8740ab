//! The HNSW graph index on its own (no shard, no SQLite): build rate and single-query latency.
//!
//! * `hnsw_build/debian-minilm-5k/m16_efc200`: inserting the first 5,000 vectors of
//!   debian-minilm (cosine, `m = 16`, `ef_construction = 200`) into an empty index; one build
//!   per iteration, so the throughput line is vectors per second.
//! * `hnsw_search/debian-minilm/ef{16,32,64,128}/k10`: one `k = 10` search per iteration over
//!   the index of all 25,000 vectors (default parameters), cycling through the 500 queries; the
//!   recall@10 of each `ef` against the exact ground truth goes to stderr first.
//! * `hnsw_search/debian-minilm/ef64/k10/filter10pct`: the same with a filter passing 10 % of
//!   the nodes.
//! * When the real dataset is missing (a note goes to stderr), the same run on a seeded
//!   synthetic set of 25,000 × 384 unit vectors around 1,000 centres, named
//!   `…/synthetic-25000x384…` (recall is then measured against a brute-force scan).
//!
//! Run with `cargo bench -p sqlite-vector --bench hnsw` (add `-- --quick` for a fast check).
//! Set `SQLITE_VECTOR_DATA` to read datasets from another directory.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlite_vector::hnsw::{Hnsw, HnswParams, SliceSource, VectorSource};
use sqlite_vector::Metric;
use sqlite_vector_dataset::SeededRng as Rng;
use sqlite_vector_dataset::{recall_at_k, shared_dataset, Dataset, GtMetric, Matrix, QuerySet};

/// Vectors per build in `hnsw_build`.
const BUILD_ROWS: usize = 5_000;

/// The data set: name, base vectors, queries, and exact top-10 ids and cosine distances per
/// query.
struct Data {
    name: &'static str,
    base: Matrix<f32>,
    queries: Matrix<f32>,
    gt: Vec<(Vec<i32>, Vec<f32>)>,
}

/// `rows × dim` unit vectors around `centres` (rows of the matrix), spread by `spread`.
fn around(rng: &mut Rng, centres: &Matrix<f32>, rows: usize, spread: f32) -> Matrix<f32> {
    let dim = centres.cols;
    let mut data = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let c = centres.row(rng.next_u64() as usize % centres.rows);
        let mut row: Vec<f32> = c.iter().map(|&x| x + spread * rng.next_normal()).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
        data.extend(row);
    }
    Matrix {
        rows,
        cols: dim,
        data,
    }
}

fn data() -> Data {
    if let Some(dir) = shared_dataset("debian-minilm") {
        let ds = Dataset::load(&dir, GtMetric::Cos, QuerySet::Full)
            .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
        let gt = (0..ds.queries.rows)
            .map(|q| {
                let ids = ds.gt_ids.row(q)[..10].to_vec();
                (ids, ds.gt_dist.row(q)[..10].to_vec())
            })
            .collect();
        return Data {
            name: "debian-minilm",
            base: ds.base,
            queries: ds.queries,
            gt,
        };
    }
    eprintln!(
        "hnsw bench: real dataset debian-minilm not found (../shared/data or \
         $SQLITE_VECTOR_DATA); using synthetic 25000x384 unit vectors around 1000 centres instead"
    );
    let mut rng = Rng(0x5EED_4E5A_0000_0001);
    let centres = Matrix {
        rows: 1000,
        cols: 384,
        data: (0..1000 * 384).map(|_| rng.next_normal()).collect(),
    };
    let base = around(&mut rng, &centres, 25_000, 0.7);
    let queries = around(&mut rng, &centres, 500, 0.7);
    let src = SliceSource::new(&base.data, base.cols);
    let gt = (0..queries.rows)
        .map(|q| {
            let q = queries.row(q);
            let mut all: Vec<(f32, usize)> = (0..base.rows)
                .map(|i| {
                    let v = src.vector(i as u32);
                    (1.0 - q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>(), i)
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            all.truncate(10);
            (
                all.iter().map(|a| a.1 as i32).collect(),
                all.iter().map(|a| a.0).collect(),
            )
        })
        .collect();
    Data {
        name: "synthetic-25000x384",
        base,
        queries,
        gt,
    }
}

fn build(src: &SliceSource<'_>, rows: usize) -> Hnsw {
    let mut g = Hnsw::new(HnswParams::default(), Metric::Cosine).expect("params");
    for i in 0..rows as u32 {
        g.insert(i, src).expect("insert");
    }
    g
}

fn benches(c: &mut Criterion) {
    let d = data();
    let src = SliceSource::new(&d.base.data, d.base.cols);

    let mut group = c.benchmark_group("hnsw_build");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(BUILD_ROWS as u64));
    group.bench_function(format!("{}-5k/m16_efc200", d.name), |b| {
        b.iter(|| black_box(build(&src, BUILD_ROWS)))
    });
    group.finish();

    let t = Instant::now();
    let g = build(&src, d.base.rows);
    eprintln!(
        "hnsw bench: built {} ({} × {}) in {:.2} s ({:.0} vectors/s), max level {}, {:.1} MB",
        d.name,
        d.base.rows,
        d.base.cols,
        t.elapsed().as_secs_f64(),
        d.base.rows as f64 / t.elapsed().as_secs_f64(),
        g.max_level(),
        g.memory_bytes() as f64 / 1e6
    );
    for ef in [16, 32, 64, 128] {
        let mut sum = 0.0;
        for (q, (ids, dist)) in d.gt.iter().enumerate() {
            let hits = g
                .search(d.queries.row(q), 10, ef, &src, None)
                .expect("search");
            let got: Vec<usize> = hits.iter().map(|h| h.1 as usize).collect();
            let got_d: Vec<f32> = hits.iter().map(|h| h.0).collect();
            sum += recall_at_k(&got, &got_d, ids, dist, 10);
        }
        eprintln!(
            "hnsw bench: {} ef = {ef}: recall@10 = {:.4}",
            d.name,
            sum / d.gt.len() as f64
        );
    }

    let mut group = c.benchmark_group("hnsw_search");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    for ef in [16, 32, 64, 128] {
        let mut next = 0;
        group.bench_function(format!("{}/ef{ef}/k10", d.name), |b| {
            b.iter(|| {
                let q = d.queries.row(next % d.queries.rows);
                next += 1;
                black_box(g.search(black_box(q), 10, ef, &src, None).expect("search"))
            })
        });
    }
    let keep = |id: u32| id.wrapping_mul(2_654_435_761) % 10 == 3;
    let mut next = 0;
    group.bench_function(format!("{}/ef64/k10/filter10pct", d.name), |b| {
        b.iter(|| {
            let q = d.queries.row(next % d.queries.rows);
            next += 1;
            black_box(
                g.search(black_box(q), 10, 64, &src, Some(&keep))
                    .expect("search"),
            )
        })
    });
    group.finish();
}

criterion_group!(hnsw, benches);
criterion_main!(hnsw);
