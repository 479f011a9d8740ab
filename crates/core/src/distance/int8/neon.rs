//! NEON int8 kernels (aarch64): 16 bytes per step, widened to `i16`.
//!
//! Each step zero-extends 16 codes (`uxtl`) and sign-extends 16 query weights (`sxtl`) to
//! `i16`, then `smlal` / `smlal2` multiply the `i16` lanes into `i32` accumulators, so every
//! product is added in 32 bits (exact; `smull` on bytes followed by `sadalp` would need the
//! query limited to `-127..=127` to keep a pair of products within `i16`). A scalar tail
//! handles the last `n % 16` bytes. (The `sdot` instruction of the dot-product extension
//! multiplies signed by signed bytes only, and its intrinsics are not stable in Rust 1.89.)
//!
//! * Single pair: four accumulators over 16 bytes per iteration.
//! * Block: four rows at a time, one from each quarter of the block, share each widened query
//!   load, two accumulators per row; the sums are reduced with `addv`. Leftover rows
//!   (`rows % 4`) use the single-pair kernel.
//!
//! NEON is part of the aarch64 baseline, but
//! [`Int8Kernels::for_isa`](super::Int8Kernels::for_isa) still checks
//! `is_aarch64_feature_detected!("neon")` before handing out [`KERNELS`].

use core::arch::aarch64::*;

use super::scalar::dot_impl as tail;
use super::{by_quarters, check_block, check_pair, Int8Isa, Int8Kernels};

/// Bytes per step.
const W: usize = 16;

/// The NEON kernel family.
pub(super) static KERNELS: Int8Kernels = Int8Kernels {
    isa: Int8Isa::Neon,
    dot,
    dot_block,
};

fn dot(q: &[i8], c: &[u8]) -> i32 {
    check_pair(q, c);
    // SAFETY: `KERNELS` is only handed out when the CPU supports NEON, and the lengths were
    // just checked to be equal.
    unsafe { pair(q, c) }
}

fn dot_block(q: &[i8], codes: &[u8], out: &mut [i32]) {
    check_block(q, codes, out);
    // SAFETY: `KERNELS` is only handed out when the CPU supports NEON, and the block shape
    // was just checked.
    unsafe { block(q, codes, out) }
}

/// 16 query weights at `p`, sign-extended to `i16` (low and high eight).
///
/// # Safety
/// The CPU must support NEON, and `p .. p + 16` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_q(p: *const i8) -> int16x8x2_t {
    // SAFETY: the caller guarantees 16 readable bytes; `vld1q` has no alignment requirement.
    let v = unsafe { vld1q_s8(p) };
    int16x8x2_t(vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v))
}

/// 16 codes at `p`, zero-extended to `i16` (low and high eight).
///
/// # Safety
/// The CPU must support NEON, and `p .. p + 16` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_c(p: *const u8) -> int16x8x2_t {
    // SAFETY: the caller guarantees 16 readable bytes; `vld1q` has no alignment requirement.
    let v = unsafe { vld1q_u8(p) };
    int16x8x2_t(
        vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))),
        vreinterpretq_s16_u16(vmovl_high_u8(v)),
    )
}

/// `(a + Σ products of the low halves, b + Σ products of the high halves)` over 16 bytes:
/// each accumulator takes eight `i16 × i16` products into its four `i32` lanes.
#[inline]
#[target_feature(enable = "neon")]
fn step(a: int32x4_t, b: int32x4_t, q: int16x8x2_t, c: int16x8x2_t) -> (int32x4_t, int32x4_t) {
    let a = vmlal_s16(a, vget_low_s16(q.0), vget_low_s16(c.0));
    let b = vmlal_high_s16(b, q.0, c.0);
    let a = vmlal_s16(a, vget_low_s16(q.1), vget_low_s16(c.1));
    let b = vmlal_high_s16(b, q.1, c.1);
    (a, b)
}

/// `Σ qᵢ·cᵢ`.
///
/// # Safety
/// The CPU must support NEON, and `q.len() == c.len()`.
#[target_feature(enable = "neon")]
unsafe fn pair(q: &[i8], c: &[u8]) -> i32 {
    debug_assert_eq!(q.len(), c.len());
    let n = q.len();
    let (pq, pc) = (q.as_ptr(), c.as_ptr());
    let mut a0 = vdupq_n_s32(0);
    let mut b0 = vdupq_n_s32(0);
    let mut a1 = vdupq_n_s32(0);
    let mut b1 = vdupq_n_s32(0);
    let mut i = 0;
    while i + 2 * W <= n {
        // SAFETY: `i + 2W <= n == q.len() == c.len()`, so bytes `i .. i + 2W` are in bounds.
        unsafe {
            (a0, b0) = step(a0, b0, load_q(pq.add(i)), load_c(pc.add(i)));
            (a1, b1) = step(a1, b1, load_q(pq.add(i + W)), load_c(pc.add(i + W)));
        }
        i += 2 * W;
    }
    if i + W <= n {
        // SAFETY: `i + W <= n`, as above.
        unsafe { (a0, b0) = step(a0, b0, load_q(pq.add(i)), load_c(pc.add(i))) };
        i += W;
    }
    let s = vaddvq_s32(vaddq_s32(vaddq_s32(a0, b0), vaddq_s32(a1, b1)));
    s.wrapping_add(tail(&q[i..], &c[i..]))
}

/// `out[r] = pair(q, row r)` for the row-major block `codes`.
///
/// # Safety
/// The CPU must support NEON, and `codes.len() == out.len() * q.len()`.
#[target_feature(enable = "neon")]
unsafe fn block(q: &[i8], codes: &[u8], out: &mut [i32]) {
    by_quarters(
        codes,
        q.len(),
        out,
        0,
        // SAFETY: NEON is enabled here (closures inherit it), and
        // `by_quarters` passes rows of `q.len()` codes.
        |rows| unsafe { rows4(q, rows) },
        // SAFETY: as above.
        |row| unsafe { pair(q, row) },
    );
}

/// The sums for the four rows `r`, in order.
///
/// # Safety
/// The CPU must support NEON, and every row must have `q.len()` codes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows4(q: &[i8], r: [&[u8]; 4]) -> [i32; 4] {
    let d = q.len();
    debug_assert!(r.iter().all(|row| row.len() == d));
    let pq = q.as_ptr();
    let [p0, p1, p2, p3] = r.map(<[u8]>::as_ptr);
    let mut a = [vdupq_n_s32(0); 4];
    let mut b = [vdupq_n_s32(0); 4];
    let mut i = 0;
    while i + W <= d {
        // SAFETY: `i + W <= d`: bytes `i .. i + W` of `q` and of each of the four rows (each
        // `d` long) are in bounds.
        unsafe {
            let q0 = load_q(pq.add(i));
            (a[0], b[0]) = step(a[0], b[0], q0, load_c(p0.add(i)));
            (a[1], b[1]) = step(a[1], b[1], q0, load_c(p1.add(i)));
            (a[2], b[2]) = step(a[2], b[2], q0, load_c(p2.add(i)));
            (a[3], b[3]) = step(a[3], b[3], q0, load_c(p3.add(i)));
        }
        i += W;
    }
    let mut s = [0i32; 4];
    for (k, sum) in s.iter_mut().enumerate() {
        *sum = vaddvq_s32(vaddq_s32(a[k], b[k])).wrapping_add(tail(&q[i..], &r[k][i..]));
    }
    s
}
