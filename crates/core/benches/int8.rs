//! The int8 scan ([`sqlite_vector::quant`]) against the `f32` scan, on the same 25,000 × 384
//! vectors: debian-minilm's base and queries (`../shared/data/debian-minilm`), or, when it is
//! missing (a note goes to stderr), 25,000 seeded unit vectors and 100 seeded queries.
//!
//! * `int8_scan/25000x384/f32_dot_block/{isa}`: one query against every row with
//!   `Kernels::dot_block` in blocks of 256 rows (the arena's exact-scan kernel and block).
//! * `int8_scan/25000x384/int8_dot_block/{isa}`: the same with `Int8Kernels::dot_block` over
//!   `u8` codes, blocks of 512 rows, for every int8 ISA this CPU supports.
//! * `int8_scan/25000x384/int8_scan_top40/{isa}`: `quant::scan` for the best 40 rows: the
//!   int8 block kernel plus the approximate cosine scores and the bounded selection.
//!   Throughput counts the bytes of the rows read (f32: 38.4 MB, int8: 9.6 MB).
//! * `int8_search/25000x384/k10/f32_exact`: a complete cosine top-10: `dot_block` in blocks of
//!   256, times the stored inverse norms, bounded top-10 selection.
//! * `int8_search/25000x384/k10/int8_rescore{D}`: a complete cosine top-10 the int8 way:
//!   prepare the query, scan the codes for the best `D` (the rescoring depth) by approximate
//!   score, rescore those `D` rows exactly with `f32` from the original vectors, keep 10.
//!   Searches cycle through the queries; time per iteration is one query's latency.
//!
//! Run with `cargo bench -p sqlite-vector --bench int8 -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sqlite_vector::distance::int8::Int8Kernels;
use sqlite_vector::distance::{norm, Kernels};
use sqlite_vector::quant::{scan, PreparedQuery, Quantizer};
use sqlite_vector::Metric;
use sqlite_vector_dataset::SeededRng as Rng;
use sqlite_vector_dataset::{shared_dataset, Dataset, GtMetric, Matrix, QuerySet};

const ROWS: usize = 25_000;
const DIM: usize = 384;
const F32_BLOCK: usize = 256;
const INT8_BLOCK: usize = 512;
const K: usize = 10;
const DEPTHS: [usize; 2] = [20, 40];

/// `rows` seeded vectors of dimension `dim`, each normalised to unit length.
fn unit_vectors(seed: u64, rows: usize, dim: usize) -> Matrix<f32> {
    let mut rng = Rng(seed);
    let mut data = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let v: Vec<f32> = (0..dim).map(|_| rng.next_normal()).collect();
        let n = norm(&v);
        data.extend(v.iter().map(|x| x / n));
    }
    Matrix {
        rows,
        cols: dim,
        data,
    }
}

/// Base and queries: the real dataset when present, else synthetic of the same shape.
fn data() -> (&'static str, Matrix<f32>, Matrix<f32>) {
    if let Some(dir) = shared_dataset("debian-minilm") {
        let ds = Dataset::load(&dir, GtMetric::Cos, QuerySet::Full).expect("load debian-minilm");
        assert_eq!((ds.base.rows, ds.base.cols), (ROWS, DIM));
        return ("debian-minilm", ds.base, ds.queries);
    }
    eprintln!("note: ../shared/data/debian-minilm not found; using seeded synthetic vectors");
    (
        "synthetic",
        unit_vectors(0x1A78_0001, ROWS, DIM),
        unit_vectors(0x1A78_0002, 100, DIM),
    )
}

/// The best `k` rows by score (larger is better), best first, in a sorted `Vec`: a new
/// score costs one comparison with the worst kept one unless it enters.
struct Top {
    k: usize,
    best: Vec<(usize, f32)>,
}

impl Top {
    fn new(k: usize) -> Top {
        Top {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    #[inline]
    fn push(&mut self, row: usize, s: f32) {
        if self.best.len() == self.k && s <= self.best[self.k - 1].1 {
            return;
        }
        let at = self.best.partition_point(|b| b.1 >= s);
        self.best.insert(at, (row, s));
        self.best.truncate(self.k);
    }
}

fn benches(c: &mut Criterion) {
    let (source, base, queries) = data();
    let f32k = Kernels::best();
    let qz = Quantizer::train(&base.data, DIM).expect("train");
    let mut codes = vec![0u8; ROWS * DIM];
    let norms: Vec<f32> = base
        .data
        .chunks_exact(DIM)
        .zip(codes.chunks_exact_mut(DIM))
        .map(|(x, c)| qz.encode(x, c))
        .collect();
    let inv_norms: Vec<f32> = norms.iter().map(|n| 1.0 / n).collect();
    eprintln!(
        "int8 bench: {source} {ROWS} x {DIM}; f32 kernels {}, int8 kernels {}; \
         int8 memory {} B (codes + norms) vs f32 {} B",
        f32k.isa,
        Int8Kernels::best().isa,
        codes.len() + 4 * norms.len(),
        base.data.len() * 4
    );

    // ---- raw block scans --------------------------------------------------------------------
    let q = queries.row(0);
    let mut group = c.benchmark_group(format!("int8_scan/{ROWS}x{DIM}"));
    let mut out = vec![0.0f32; F32_BLOCK];
    group.throughput(Throughput::Bytes((ROWS * DIM * 4) as u64));
    group.bench_function(BenchmarkId::new("f32_dot_block", f32k.isa.name()), |b| {
        b.iter(|| {
            for block in base.data.chunks(F32_BLOCK * DIM) {
                let o = &mut out[..block.len() / DIM];
                (f32k.dot_block)(black_box(q), block, o);
                black_box(&o);
            }
        })
    });
    let prepared = PreparedQuery::new(&qz, q, Metric::Cosine).expect("prepare");
    let w = prepared.weights();
    let mut sums = vec![0i32; INT8_BLOCK];
    group.throughput(Throughput::Bytes((ROWS * DIM) as u64));
    for k in Int8Kernels::available() {
        group.bench_function(BenchmarkId::new("int8_dot_block", k.isa.name()), |b| {
            b.iter(|| {
                for block in codes.chunks(INT8_BLOCK * DIM) {
                    let o = &mut sums[..block.len() / DIM];
                    (k.dot_block)(black_box(w), block, o);
                    black_box(&o);
                }
            })
        });
    }
    let int8k = Int8Kernels::best();
    group.bench_function(BenchmarkId::new("int8_scan_top40", int8k.isa.name()), |b| {
        b.iter(|| black_box(scan(int8k, &prepared, &codes, &norms, 40)))
    });
    group.finish();

    // ---- complete top-10 searches -----------------------------------------------------------
    let mut group = c.benchmark_group(format!("int8_search/{ROWS}x{DIM}/k{K}"));
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function(format!("f32_exact/{}", f32k.isa.name()), |b| {
        b.iter(|| {
            let q = queries.row(next % queries.rows);
            next += 1;
            let qn = 1.0 / norm(q);
            let mut top = Top::new(K);
            for (i, block) in base.data.chunks(F32_BLOCK * DIM).enumerate() {
                let o = &mut out[..block.len() / DIM];
                (f32k.dot_block)(black_box(q), block, o);
                let first = i * F32_BLOCK;
                let inv = &inv_norms[first..first + o.len()];
                for (r, (&d, &inv)) in o.iter().zip(inv).enumerate() {
                    top.push(first + r, d * qn * inv);
                }
            }
            black_box(top.best)
        })
    });
    for depth in DEPTHS {
        let mut next = 0;
        group.bench_function(format!("int8_rescore{depth}/{}", int8k.isa.name()), |b| {
            b.iter(|| {
                let q = queries.row(next % queries.rows);
                next += 1;
                let p = PreparedQuery::new(&qz, black_box(q), Metric::Cosine).expect("prepare");
                let hits = scan(int8k, &p, &codes, &norms, depth);
                let qn = norm(q);
                let mut top = Top::new(K);
                for h in &hits {
                    let r = h.row as usize;
                    top.push(r, (f32k.dot)(q, base.row(r)) / (qn * norms[r]));
                }
                black_box(top.best)
            })
        });
    }
    group.finish();
}

criterion_group!(int8, benches);
criterion_main!(int8);
