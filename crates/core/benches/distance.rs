//! Distance kernel micro-benchmarks, for every ISA this CPU supports.
//!
//! * `dot/{isa}/{dim}` and `l2sq/{isa}/{dim}`: one vector pair, dims 128, 384, 1536;
//!   throughput counts the bytes of both vectors.
//! * `dot_block/{isa}/384x1000`: one 384-d query against a block of 1000 rows (the
//!   exact-scan hot loop); throughput counts the bytes of the block and the query.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sqlite_vector::distance::Kernels;
use sqlite_vector_dataset::SeededRng as Rng;

const DIMS: [usize; 3] = [128, 384, 1536];
const F32: u64 = std::mem::size_of::<f32>() as u64;

fn pairs(c: &mut Criterion) {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for (name, pick) in [
        (
            "dot",
            (|k| k.dot) as fn(&Kernels) -> fn(&[f32], &[f32]) -> f32,
        ),
        ("l2sq", |k| k.l2sq),
    ] {
        let mut group = c.benchmark_group(name);
        for dim in DIMS {
            let (a, b) = (rng.vec(dim), rng.vec(dim));
            group.throughput(Throughput::Bytes(2 * dim as u64 * F32));
            for k in Kernels::available() {
                let f = pick(k);
                group.bench_with_input(BenchmarkId::new(k.isa.name(), dim), &dim, |bch, _| {
                    bch.iter(|| f(black_box(&a), black_box(&b)))
                });
            }
        }
        group.finish();
    }
}

fn blocks(c: &mut Criterion) {
    const DIM: usize = 384;
    const ROWS: usize = 1000;
    let mut rng = Rng(0x5EED_1234_ABCD_0002);
    let q = rng.vec(DIM);
    let rows = rng.vec(DIM * ROWS);
    let mut out = vec![0.0f32; ROWS];
    let mut group = c.benchmark_group("dot_block");
    group.throughput(Throughput::Bytes(((ROWS + 1) * DIM) as u64 * F32));
    for k in Kernels::available() {
        let id = BenchmarkId::new(k.isa.name(), format!("{DIM}x{ROWS}"));
        group.bench_function(id, |bch| {
            bch.iter(|| {
                (k.dot_block)(black_box(&q), black_box(&rows), &mut out);
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pairs, blocks);
criterion_main!(benches);
