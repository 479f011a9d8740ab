//! Portable reference kernels (plain safe Rust, every target).
//!
//! The sums use [`LANES`] independent partial sums combined in a fixed order at the
//! end. That keeps the summation order well defined (Rust never reassociates float
//! arithmetic), lets the optimiser map the partial sums onto the baseline SIMD
//! registers (SSE2, NEON) without changing results, and bounds the rounding error by
//! about `(n / LANES + 3) · ε · Σ|terms|`, well inside the tolerance of the tests.

use super::{check_block, check_pair, Isa, Kernels};

/// Number of independent partial sums.
const LANES: usize = 8;

/// The scalar kernel family; always available.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::Scalar,
    dot,
    l2sq,
    dot_block,
    l2sq_block,
};

fn dot(a: &[f32], b: &[f32]) -> f32 {
    check_pair(a, b);
    dot_impl(a, b)
}

fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    check_pair(a, b);
    l2sq_impl(a, b)
}

fn dot_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
    check_block(q, rows, out);
    block(q, rows, out, dot_impl);
}

fn l2sq_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
    check_block(q, rows, out);
    block(q, rows, out, l2sq_impl);
}

/// `out[r] = f(q, row r)`; requires `rows.len() == out.len() * q.len()`.
#[inline(always)]
fn block(q: &[f32], rows: &[f32], out: &mut [f32], f: impl Fn(&[f32], &[f32]) -> f32) {
    if q.is_empty() {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(q.len())) {
        *o = f(q, row);
    }
}

/// `Σ term(aᵢ, bᵢ)` over equal-length slices with [`LANES`] partial sums.
#[inline(always)]
fn sum_terms(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += term(x[k], y[k]);
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in ta.iter().zip(tb) {
        tail += term(x, y);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[inline]
fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
    sum_terms(a, b, |x, y| x * y)
}

#[inline]
fn l2sq_impl(a: &[f32], b: &[f32]) -> f32 {
    sum_terms(a, b, |x, y| {
        let d = x - y;
        d * d
    })
}
