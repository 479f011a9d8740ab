//! AVX2 int8 kernels (x86_64): 16 bytes per step, widened to 16 `i16` lanes.
//!
//! Each step zero-extends 16 codes (`vpmovzxbw`) and sign-extends 16 query weights
//! (`vpmovsxbw`) to `i16`, then `vpmaddwd` multiplies them and adds adjacent pairs into eight
//! `i32` lanes (a pair is at most `2 · 255 · 128 = 65 280` in magnitude: exact; `vpmaddubsw`
//! would add the pair in `i16` and saturate). A scalar tail handles the last `n % 16` bytes.
//!
//! * Single pair: two accumulators over 32 bytes per iteration.
//! * Block: four rows at a time, one from each quarter of the block, share each widened
//!   query load, two accumulators per row; the four sums are reduced together. Leftover rows
//!   (`rows % 4`) use the single-pair kernel.
//!
//! Every function here is only reachable through [`KERNELS`], which
//! [`Int8Kernels::for_isa`](super::Int8Kernels::for_isa) hands out only after
//! `is_x86_feature_detected!("avx2")`.

use core::arch::x86_64::*;

use super::scalar::dot_impl as tail;
use super::{by_quarters, check_block, check_pair, Int8Isa, Int8Kernels};

/// Bytes per step.
const W: usize = 16;

/// The AVX2 kernel family.
pub(super) static KERNELS: Int8Kernels = Int8Kernels {
    isa: Int8Isa::Avx2,
    dot,
    dot_block,
};

fn dot(q: &[i8], c: &[u8]) -> i32 {
    check_pair(q, c);
    // SAFETY: `KERNELS` is only handed out when the CPU supports AVX2, and the lengths were
    // just checked to be equal.
    unsafe { pair(q, c) }
}

fn dot_block(q: &[i8], codes: &[u8], out: &mut [i32]) {
    check_block(q, codes, out);
    // SAFETY: `KERNELS` is only handed out when the CPU supports AVX2, and the block shape
    // was just checked.
    unsafe { block(q, codes, out) }
}

/// 16 query weights at `p`, sign-extended to `i16`.
///
/// # Safety
/// The CPU must support AVX2, and `p .. p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_q(p: *const i8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes; `loadu` has no alignment requirement.
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(p.cast()) })
}

/// 16 codes at `p`, zero-extended to `i16`.
///
/// # Safety
/// The CPU must support AVX2, and `p .. p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_c(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes; `loadu` has no alignment requirement.
    _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(p.cast()) })
}

/// `acc + Σ pairs of q·c` (eight `i32` lanes).
#[inline]
#[target_feature(enable = "avx2")]
fn step(acc: __m256i, q: __m256i, c: __m256i) -> __m256i {
    _mm256_add_epi32(acc, _mm256_madd_epi16(q, c))
}

/// Horizontal sum of eight `i32` lanes (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn reduce(x: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// Horizontal sums of four registers: `[Σx0, Σx1, Σx2, Σx3]` (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn reduce4(x0: __m256i, x1: __m256i, x2: __m256i, x3: __m256i) -> __m128i {
    // Within each 128-bit lane: [x0₀+x0₂, x1₀+x1₂, x0₁+x0₃, x1₁+x1₃].
    let t01 = _mm256_add_epi32(_mm256_unpacklo_epi32(x0, x1), _mm256_unpackhi_epi32(x0, x1));
    let t23 = _mm256_add_epi32(_mm256_unpacklo_epi32(x2, x3), _mm256_unpackhi_epi32(x2, x3));
    // Within each 128-bit lane: [Σx0, Σx1, Σx2, Σx3] over that lane's four values.
    let s = _mm256_add_epi32(
        _mm256_unpacklo_epi64(t01, t23),
        _mm256_unpackhi_epi64(t01, t23),
    );
    // Add the two 128-bit lanes.
    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s))
}

/// `Σ qᵢ·cᵢ`.
///
/// # Safety
/// The CPU must support AVX2, and `q.len() == c.len()`.
#[target_feature(enable = "avx2")]
unsafe fn pair(q: &[i8], c: &[u8]) -> i32 {
    debug_assert_eq!(q.len(), c.len());
    let n = q.len();
    let (pq, pc) = (q.as_ptr(), c.as_ptr());
    let mut acc0 = _mm256_setzero_si256();
    let mut acc1 = _mm256_setzero_si256();
    let mut i = 0;
    while i + 2 * W <= n {
        // SAFETY: `i + 2W <= n == q.len() == c.len()`, so bytes `i .. i + 2W` are in bounds.
        unsafe {
            acc0 = step(acc0, load_q(pq.add(i)), load_c(pc.add(i)));
            acc1 = step(acc1, load_q(pq.add(i + W)), load_c(pc.add(i + W)));
        }
        i += 2 * W;
    }
    if i + W <= n {
        // SAFETY: `i + W <= n`, as above.
        unsafe { acc0 = step(acc0, load_q(pq.add(i)), load_c(pc.add(i))) };
        i += W;
    }
    reduce(_mm256_add_epi32(acc0, acc1)).wrapping_add(tail(&q[i..], &c[i..]))
}

/// `out[r] = pair(q, row r)` for the row-major block `codes`.
///
/// # Safety
/// The CPU must support AVX2, and `codes.len() == out.len() * q.len()`.
#[target_feature(enable = "avx2")]
unsafe fn block(q: &[i8], codes: &[u8], out: &mut [i32]) {
    by_quarters(
        codes,
        q.len(),
        out,
        0,
        // SAFETY: AVX2 is enabled here (closures inherit it), and
        // `by_quarters` passes rows of `q.len()` codes.
        |rows| unsafe { rows4(q, rows) },
        // SAFETY: as above.
        |row| unsafe { pair(q, row) },
    );
}

/// The sums for the four rows `r`, in order.
///
/// # Safety
/// The CPU must support AVX2, and every row must have `q.len()` codes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rows4(q: &[i8], r: [&[u8]; 4]) -> [i32; 4] {
    let d = q.len();
    debug_assert!(r.iter().all(|row| row.len() == d));
    let pq = q.as_ptr();
    let [p0, p1, p2, p3] = r.map(<[u8]>::as_ptr);
    let mut a0 = _mm256_setzero_si256();
    let mut a1 = _mm256_setzero_si256();
    let mut a2 = _mm256_setzero_si256();
    let mut a3 = _mm256_setzero_si256();
    let mut b0 = _mm256_setzero_si256();
    let mut b1 = _mm256_setzero_si256();
    let mut b2 = _mm256_setzero_si256();
    let mut b3 = _mm256_setzero_si256();
    let mut i = 0;
    while i + 2 * W <= d {
        // SAFETY: `i + 2W <= d`: bytes `i .. i + 2W` of `q` and of each of the four rows
        // (each `d` long) are in bounds.
        unsafe {
            let q0 = load_q(pq.add(i));
            let q1 = load_q(pq.add(i + W));
            a0 = step(a0, q0, load_c(p0.add(i)));
            b0 = step(b0, q1, load_c(p0.add(i + W)));
            a1 = step(a1, q0, load_c(p1.add(i)));
            b1 = step(b1, q1, load_c(p1.add(i + W)));
            a2 = step(a2, q0, load_c(p2.add(i)));
            b2 = step(b2, q1, load_c(p2.add(i + W)));
            a3 = step(a3, q0, load_c(p3.add(i)));
            b3 = step(b3, q1, load_c(p3.add(i + W)));
        }
        i += 2 * W;
    }
    if i + W <= d {
        // SAFETY: `i + W <= d`, as above.
        unsafe {
            let q0 = load_q(pq.add(i));
            a0 = step(a0, q0, load_c(p0.add(i)));
            a1 = step(a1, q0, load_c(p1.add(i)));
            a2 = step(a2, q0, load_c(p2.add(i)));
            a3 = step(a3, q0, load_c(p3.add(i)));
        }
        i += W;
    }
    let sums = reduce4(
        _mm256_add_epi32(a0, b0),
        _mm256_add_epi32(a1, b1),
        _mm256_add_epi32(a2, b2),
        _mm256_add_epi32(a3, b3),
    );
    let mut s = [0i32; 4];
    // SAFETY: `s` has room for four `i32`; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(s.as_mut_ptr().cast(), sums) };
    if i < d {
        let qt = &q[i..];
        for (sum, row) in s.iter_mut().zip(r) {
            *sum = sum.wrapping_add(tail(qt, &row[i..]));
        }
    }
    s
}
