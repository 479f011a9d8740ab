//! Portable reference int8 kernels (plain safe Rust, every target).
//!
//! `Σ qᵢ·cᵢ` with wrapping `i32` addition (each product fits in `i32`; the sum can only wrap
//! beyond 65 793 components, see the module docs). Integer addition is associative, so the
//! optimiser is free to vectorise the loop without changing the result.

use super::{check_block, check_pair, Int8Isa, Int8Kernels};

/// The scalar kernel family; always available.
pub(super) static KERNELS: Int8Kernels = Int8Kernels {
    isa: Int8Isa::Scalar,
    dot,
    dot_block,
};

fn dot(q: &[i8], c: &[u8]) -> i32 {
    check_pair(q, c);
    dot_impl(q, c)
}

fn dot_block(q: &[i8], codes: &[u8], out: &mut [i32]) {
    check_block(q, codes, out);
    if q.is_empty() {
        out.fill(0);
        return;
    }
    for (o, row) in out.iter_mut().zip(codes.chunks_exact(q.len())) {
        *o = dot_impl(q, row);
    }
}

/// `Σ qᵢ·cᵢ` over the common length of `q` and `c` (callers pass equal lengths); also the
/// scalar tail of the SIMD kernels.
#[inline]
pub(super) fn dot_impl(q: &[i8], c: &[u8]) -> i32 {
    debug_assert_eq!(q.len(), c.len());
    q.iter().zip(c).fold(0i32, |acc, (&a, &b)| {
        acc.wrapping_add(i32::from(a) * i32::from(b))
    })
}
