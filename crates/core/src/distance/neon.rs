//! NEON kernels (aarch64): 4 `f32` lanes per register.
//!
//! * Single pair: four independent accumulators over 16 floats per iteration, then
//!   single registers, then a scalar tail for the last `n % 4` floats.
//! * Block: four rows at a time, one from each quarter of the block (see the module
//!   docs of `distance`), share each query load, with two accumulators per row (eight
//!   independent FMA chains); the four results are reduced together with pairwise
//!   adds, then each row's scalar tail is added. Leftover rows (`rows % 4`) use the
//!   single-pair kernel.
//!
//! NEON is part of the aarch64 baseline, but [`Kernels::for_isa`](super::Kernels::for_isa)
//! still checks `is_aarch64_feature_detected!("neon")` before handing out [`KERNELS`].

use core::arch::aarch64::*;

use super::{check_block, check_pair, Isa, Kernels};

/// `f32` lanes per register.
const W: usize = 4;

/// The NEON kernel family.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::Neon,
    dot,
    l2sq,
    dot_block,
    l2sq_block,
};

fn dot(a: &[f32], b: &[f32]) -> f32 {
    check_pair(a, b);
    // SAFETY: `KERNELS` is only handed out when the CPU supports NEON, and the lengths
    // were just checked to be equal.
    unsafe { pair::<false>(a, b) }
}

fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    check_pair(a, b);
    // SAFETY: as in `dot`.
    unsafe { pair::<true>(a, b) }
}

fn dot_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
    check_block(q, rows, out);
    // SAFETY: `KERNELS` is only handed out when the CPU supports NEON, and the block
    // shape was just checked.
    unsafe { block::<false>(q, rows, out) }
}

fn l2sq_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
    check_block(q, rows, out);
    // SAFETY: as in `dot_block`.
    unsafe { block::<true>(q, rows, out) }
}

/// One accumulation step: `acc + a·b` (dot) or `acc + (a - b)²` (`L2`).
#[inline]
#[target_feature(enable = "neon")]
fn step<const L2: bool>(acc: float32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
    if L2 {
        let d = vsubq_f32(a, b);
        vfmaq_f32(acc, d, d)
    } else {
        vfmaq_f32(acc, a, b)
    }
}

/// Scalar `Σ aᵢ·bᵢ` (or `Σ (aᵢ - bᵢ)²` if `L2`) for the tails (fewer than 4 floats).
#[inline]
fn tail<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (&x, &y) in a.iter().zip(b) {
        s += if L2 { (x - y) * (x - y) } else { x * y };
    }
    s
}

/// `Σ aᵢ·bᵢ` (or `Σ (aᵢ - bᵢ)²` if `L2`).
///
/// # Safety
/// The CPU must support NEON, and `a.len() == b.len()`.
#[target_feature(enable = "neon")]
unsafe fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = vdupq_n_f32(0.0);
    let mut acc1 = vdupq_n_f32(0.0);
    let mut acc2 = vdupq_n_f32(0.0);
    let mut acc3 = vdupq_n_f32(0.0);
    let mut i = 0;
    while i + 4 * W <= n {
        // SAFETY: `i + 4W <= n == a.len() == b.len()`, so every lane read is in bounds.
        unsafe {
            acc0 = step::<L2>(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
            acc1 = step::<L2>(acc1, vld1q_f32(pa.add(i + W)), vld1q_f32(pb.add(i + W)));
            acc2 = step::<L2>(
                acc2,
                vld1q_f32(pa.add(i + 2 * W)),
                vld1q_f32(pb.add(i + 2 * W)),
            );
            acc3 = step::<L2>(
                acc3,
                vld1q_f32(pa.add(i + 3 * W)),
                vld1q_f32(pb.add(i + 3 * W)),
            );
        }
        i += 4 * W;
    }
    while i + W <= n {
        // SAFETY: `i + W <= n == a.len() == b.len()`.
        unsafe {
            acc0 = step::<L2>(acc0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
        }
        i += W;
    }
    let s = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    s + tail::<L2>(&a[i..], &b[i..])
}

/// `out[r] = pair(q, row r)` for the row-major block `rows`.
///
/// # Safety
/// The CPU must support NEON, and `rows.len() == out.len() * q.len()`.
#[target_feature(enable = "neon")]
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
        // SAFETY: NEON is enabled here (same target features); each row has
        // `d == q.len()` floats.
        let s = unsafe { rows4::<L2>(q, [r0, r1, r2, r3]) };
        out[j] = s[0];
        out[quarter + j] = s[1];
        out[2 * quarter + j] = s[2];
        out[3 * quarter + j] = s[3];
    }
    for (row, o) in rest.chunks_exact(d).zip(&mut out[4 * quarter..]) {
        // SAFETY: NEON is enabled here; `row.len() == d == q.len()`.
        *o = unsafe { pair::<L2>(q, row) };
    }
}

/// The results for the four rows `r`, in order.
///
/// # Safety
/// The CPU must support NEON, and every row must have `q.len()` floats.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows4<const L2: bool>(q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let d = q.len();
    debug_assert!(r.iter().all(|row| row.len() == d));
    let [r0, r1, r2, r3] = r;
    let (pq, p0, p1, p2, p3) = (
        q.as_ptr(),
        r0.as_ptr(),
        r1.as_ptr(),
        r2.as_ptr(),
        r3.as_ptr(),
    );
    let mut a0 = vdupq_n_f32(0.0);
    let mut a1 = vdupq_n_f32(0.0);
    let mut a2 = vdupq_n_f32(0.0);
    let mut a3 = vdupq_n_f32(0.0);
    let mut b0 = vdupq_n_f32(0.0);
    let mut b1 = vdupq_n_f32(0.0);
    let mut b2 = vdupq_n_f32(0.0);
    let mut b3 = vdupq_n_f32(0.0);
    let mut i = 0;
    while i + 2 * W <= d {
        // SAFETY: `i + 2W <= d`: floats `i..i + 2W` of `q` and of `r0..r3` (each `d`
        // long) are in bounds.
        unsafe {
            let q0 = vld1q_f32(pq.add(i));
            let q1 = vld1q_f32(pq.add(i + W));
            a0 = step::<L2>(a0, q0, vld1q_f32(p0.add(i)));
            b0 = step::<L2>(b0, q1, vld1q_f32(p0.add(i + W)));
            a1 = step::<L2>(a1, q0, vld1q_f32(p1.add(i)));
            b1 = step::<L2>(b1, q1, vld1q_f32(p1.add(i + W)));
            a2 = step::<L2>(a2, q0, vld1q_f32(p2.add(i)));
            b2 = step::<L2>(b2, q1, vld1q_f32(p2.add(i + W)));
            a3 = step::<L2>(a3, q0, vld1q_f32(p3.add(i)));
            b3 = step::<L2>(b3, q1, vld1q_f32(p3.add(i + W)));
        }
        i += 2 * W;
    }
    if i + W <= d {
        // SAFETY: `i + W <= d`, as above.
        unsafe {
            let q0 = vld1q_f32(pq.add(i));
            a0 = step::<L2>(a0, q0, vld1q_f32(p0.add(i)));
            a1 = step::<L2>(a1, q0, vld1q_f32(p1.add(i)));
            a2 = step::<L2>(a2, q0, vld1q_f32(p2.add(i)));
            a3 = step::<L2>(a3, q0, vld1q_f32(p3.add(i)));
        }
        i += W;
    }
    // Pairwise adds: [Σx0, Σx1, Σx2, Σx3].
    let s01 = vpaddq_f32(vaddq_f32(a0, b0), vaddq_f32(a1, b1));
    let s23 = vpaddq_f32(vaddq_f32(a2, b2), vaddq_f32(a3, b3));
    let mut s = [0.0f32; 4];
    // SAFETY: `s` has room for four floats.
    unsafe { vst1q_f32(s.as_mut_ptr(), vpaddq_f32(s01, s23)) };
    if i < d {
        let qt = &q[i..];
        s[0] += tail::<L2>(qt, &r0[i..]);
        s[1] += tail::<L2>(qt, &r1[i..]);
        s[2] += tail::<L2>(qt, &r2[i..]);
        s[3] += tail::<L2>(qt, &r3[i..]);
    }
    s
}
