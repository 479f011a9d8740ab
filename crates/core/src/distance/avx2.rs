//! AVX2 + FMA kernels (x86_64): 8 `f32` lanes per register.
//!
//! * Single pair: four independent accumulators over 32 floats per iteration, then
//!   single registers, then one masked load (`_mm256_maskload_ps`) for the last
//!   `n % 8` floats, so there is no scalar tail.
//! * Block: four rows at a time, one from each quarter of the block (see the module
//!   docs of `distance`), share each query load, with two accumulators per row (eight
//!   independent FMA chains, leaving room in the 16 `ymm` registers for the query and
//!   the loads); the four results are reduced together with a shuffle tree. Leftover
//!   rows (`rows % 4`) use the single-pair kernel.
//!
//! Every function here is only reachable through [`KERNELS`], which
//! [`Kernels::for_isa`](super::Kernels::for_isa) hands out only after
//! `is_x86_feature_detected!` confirmed both `avx2` and `fma`.

use core::arch::x86_64::*;

use super::{check_block, check_pair, Isa, Kernels};

/// `f32` lanes per register.
const W: usize = 8;

/// The AVX2+FMA kernel family.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::Avx2,
    dot,
    l2sq,
    dot_block,
    l2sq_block,
};

fn dot(a: &[f32], b: &[f32]) -> f32 {
    check_pair(a, b);
    // SAFETY: `KERNELS` is only handed out when the CPU supports AVX2 and FMA, and the
    // lengths were just checked to be equal.
    unsafe { pair::<false>(a, b) }
}

fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    check_pair(a, b);
    // SAFETY: as in `dot`.
    unsafe { pair::<true>(a, b) }
}

fn dot_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
    check_block(q, rows, out);
    // SAFETY: `KERNELS` is only handed out when the CPU supports AVX2 and FMA, and the
    // block shape was just checked.
    unsafe { block::<false>(q, rows, out) }
}

fn l2sq_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
    check_block(q, rows, out);
    // SAFETY: as in `dot_block`.
    unsafe { block::<true>(q, rows, out) }
}

/// One accumulation step: `acc + a·b` (dot) or `acc + (a - b)²` (`L2`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn step<const L2: bool>(acc: __m256, a: __m256, b: __m256) -> __m256 {
    if L2 {
        let d = _mm256_sub_ps(a, b);
        _mm256_fmadd_ps(d, d, acc)
    } else {
        _mm256_fmadd_ps(a, b, acc)
    }
}

/// Mask for `_mm256_maskload_ps` selecting lanes `0..rem` (sign bit set), for `rem < 8`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tail_mask(rem: usize) -> __m256i {
    debug_assert!(rem < W);
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(rem as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// Horizontal sum of one register.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce(x: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Horizontal sums of four registers: `[Σx0, Σx1, Σx2, Σx3]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce4(x0: __m256, x1: __m256, x2: __m256, x3: __m256) -> __m128 {
    // Within each 128-bit lane: [x0₀+x0₂, x1₀+x1₂, x0₁+x0₃, x1₁+x1₃].
    let t01 = _mm256_add_ps(_mm256_unpacklo_ps(x0, x1), _mm256_unpackhi_ps(x0, x1));
    let t23 = _mm256_add_ps(_mm256_unpacklo_ps(x2, x3), _mm256_unpackhi_ps(x2, x3));
    // Within each 128-bit lane: [Σx0, Σx1, Σx2, Σx3] over that lane's four floats.
    let (t01, t23) = (_mm256_castps_pd(t01), _mm256_castps_pd(t23));
    let s = _mm256_add_ps(
        _mm256_castpd_ps(_mm256_unpacklo_pd(t01, t23)),
        _mm256_castpd_ps(_mm256_unpackhi_pd(t01, t23)),
    );
    // Add the two 128-bit lanes.
    _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s))
}

/// `Σ aᵢ·bᵢ` (or `Σ (aᵢ - bᵢ)²` if `L2`).
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut acc2 = _mm256_setzero_ps();
    let mut acc3 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 4 * W <= n {
        // SAFETY: `i + 4W <= n == a.len() == b.len()`, so every lane read is in bounds.
        unsafe {
            acc0 = step::<L2>(acc0, _mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            acc1 = step::<L2>(
                acc1,
                _mm256_loadu_ps(pa.add(i + W)),
                _mm256_loadu_ps(pb.add(i + W)),
            );
            acc2 = step::<L2>(
                acc2,
                _mm256_loadu_ps(pa.add(i + 2 * W)),
                _mm256_loadu_ps(pb.add(i + 2 * W)),
            );
            acc3 = step::<L2>(
                acc3,
                _mm256_loadu_ps(pa.add(i + 3 * W)),
                _mm256_loadu_ps(pb.add(i + 3 * W)),
            );
        }
        i += 4 * W;
    }
    while i + W <= n {
        // SAFETY: `i + W <= n == a.len() == b.len()`.
        unsafe {
            acc0 = step::<L2>(acc0, _mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        }
        i += W;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: `i < n`, and the mask selects only lanes `i..n`, which are in bounds;
        // masked-off lanes are not accessed (and cannot fault).
        unsafe {
            acc1 = step::<L2>(
                acc1,
                _mm256_maskload_ps(pa.add(i), m),
                _mm256_maskload_ps(pb.add(i), m),
            );
        }
    }
    reduce(_mm256_add_ps(
        _mm256_add_ps(acc0, acc1),
        _mm256_add_ps(acc2, acc3),
    ))
}

/// `out[r] = pair(q, row r)` for the row-major block `rows`.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `rows.len() == out.len() * q.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const L2: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
    debug_assert_eq!(Some(rows.len()), out.len().checked_mul(q.len()));
    let d = q.len();
    if d == 0 {
        out.fill(0.0);
        return;
    }
    // Four rows at a time, one from each quarter of the block: the memory system then
    // sees four long sequential streams (adjacent rows would make it see short ones).
    let quarter = out.len() / 4;
    let (main, rest) = rows.split_at(4 * quarter * d);
    let (h0, h1) = main.split_at(2 * quarter * d);
    let (s0, s1) = h0.split_at(quarter * d);
    let (s2, s3) = h1.split_at(quarter * d);
    let quarters = s0
        .chunks_exact(d)
        .zip(s1.chunks_exact(d))
        .zip(s2.chunks_exact(d).zip(s3.chunks_exact(d)));
    for (j, ((r0, r1), (r2, r3))) in quarters.enumerate() {
        // SAFETY: AVX2 and FMA is enabled here (same target features); each row has
        // `d == q.len()` floats.
        let s = unsafe { rows4::<L2>(q, [r0, r1, r2, r3]) };
        out[j] = s[0];
        out[quarter + j] = s[1];
        out[2 * quarter + j] = s[2];
        out[3 * quarter + j] = s[3];
    }
    for (row, o) in rest.chunks_exact(d).zip(&mut out[4 * quarter..]) {
        // SAFETY: AVX2 and FMA is enabled here; `row.len() == d == q.len()`.
        *o = unsafe { pair::<L2>(q, row) };
    }
}

/// The results for the four rows `r`, in order.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and every row must have `q.len()` floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows4<const L2: bool>(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let d = q.len();
    debug_assert!(r.iter().all(|row| row.len() == d));
    let pq = q.as_ptr();
    let [p0, p1, p2, p3] = r.map(<[f32]>::as_ptr);
    let mut a0 = _mm256_setzero_ps();
    let mut a1 = _mm256_setzero_ps();
    let mut a2 = _mm256_setzero_ps();
    let mut a3 = _mm256_setzero_ps();
    let mut b0 = _mm256_setzero_ps();
    let mut b1 = _mm256_setzero_ps();
    let mut b2 = _mm256_setzero_ps();
    let mut b3 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 2 * W <= d {
        // SAFETY: `i + 2W <= d`: floats `i..i + 2W` of `q` and of each of the four
        // rows (each `d` long) are in bounds.
        unsafe {
            let q0 = _mm256_loadu_ps(pq.add(i));
            let q1 = _mm256_loadu_ps(pq.add(i + W));
            a0 = step::<L2>(a0, q0, _mm256_loadu_ps(p0.add(i)));
            b0 = step::<L2>(b0, q1, _mm256_loadu_ps(p0.add(i + W)));
            a1 = step::<L2>(a1, q0, _mm256_loadu_ps(p1.add(i)));
            b1 = step::<L2>(b1, q1, _mm256_loadu_ps(p1.add(i + W)));
            a2 = step::<L2>(a2, q0, _mm256_loadu_ps(p2.add(i)));
            b2 = step::<L2>(b2, q1, _mm256_loadu_ps(p2.add(i + W)));
            a3 = step::<L2>(a3, q0, _mm256_loadu_ps(p3.add(i)));
            b3 = step::<L2>(b3, q1, _mm256_loadu_ps(p3.add(i + W)));
        }
        i += 2 * W;
    }
    if i + W <= d {
        // SAFETY: `i + W <= d`, as above.
        unsafe {
            let q0 = _mm256_loadu_ps(pq.add(i));
            a0 = step::<L2>(a0, q0, _mm256_loadu_ps(p0.add(i)));
            a1 = step::<L2>(a1, q0, _mm256_loadu_ps(p1.add(i)));
            a2 = step::<L2>(a2, q0, _mm256_loadu_ps(p2.add(i)));
            a3 = step::<L2>(a3, q0, _mm256_loadu_ps(p3.add(i)));
        }
        i += W;
    }
    if i < d {
        let m = tail_mask(d - i);
        // SAFETY: `i < d`; the mask selects only lanes `i..d` of `q` and of each row,
        // which are in bounds; masked-off lanes are not accessed.
        unsafe {
            let q0 = _mm256_maskload_ps(pq.add(i), m);
            b0 = step::<L2>(b0, q0, _mm256_maskload_ps(p0.add(i), m));
            b1 = step::<L2>(b1, q0, _mm256_maskload_ps(p1.add(i), m));
            b2 = step::<L2>(b2, q0, _mm256_maskload_ps(p2.add(i), m));
            b3 = step::<L2>(b3, q0, _mm256_maskload_ps(p3.add(i), m));
        }
    }
    let sums = reduce4(
        _mm256_add_ps(a0, b0),
        _mm256_add_ps(a1, b1),
        _mm256_add_ps(a2, b2),
        _mm256_add_ps(a3, b3),
    );
    let mut out = [0.0f32; 4];
    // SAFETY: `out` has room for four floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), sums) };
    out
}
