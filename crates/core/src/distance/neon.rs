//! NEON register operations (aarch64): 4 `f32` lanes per register. The loops are
//! [`super::driver`]'s: four accumulators per single pair, four rows at a time (one per
//! quarter of the block) with two accumulators each in block kernels; the last `n % 4` floats
//! are copied into a zeroed register (NEON has no masked load).
//!
//! NEON is part of the aarch64 baseline, but [`Kernels::for_isa`](super::Kernels::for_isa)
//! still checks `is_aarch64_feature_detected!("neon")` before handing out [`KERNELS`].

use core::arch::aarch64::*;

use super::driver::F32Ops;
use super::Isa;

/// The NEON register type.
struct Neon;

impl F32Ops for Neon {
    type V = float32x4_t;
    const W: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> float32x4_t {
        // SAFETY: the caller guarantees NEON (trait contract).
        unsafe { vdupq_n_f32(0.0) }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        // SAFETY: the caller guarantees NEON and 4 readable floats; no alignment needed.
        unsafe { vld1q_f32(p) }
    }

    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> float32x4_t {
        debug_assert!(n < Self::W);
        let mut buf = [0.0f32; 4];
        // SAFETY: the caller guarantees NEON and `n < 4` readable floats at `p`; `buf` has
        // room for them and does not overlap `p`.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            vld1q_f32(buf.as_ptr())
        }
    }

    #[inline(always)]
    unsafe fn fma(acc: float32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller guarantees NEON.
        unsafe { vfmaq_f32(acc, a, b) }
    }

    #[inline(always)]
    unsafe fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller guarantees NEON.
        unsafe { vsubq_f32(a, b) }
    }

    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the caller guarantees NEON.
        unsafe { vaddq_f32(a, b) }
    }

    #[inline(always)]
    unsafe fn reduce(x: float32x4_t) -> f32 {
        // SAFETY: the caller guarantees NEON.
        unsafe { vaddvq_f32(x) }
    }

    #[inline(always)]
    unsafe fn reduce4(
        x0: float32x4_t,
        x1: float32x4_t,
        x2: float32x4_t,
        x3: float32x4_t,
    ) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: the caller guarantees NEON; `out` has room for four floats.
        unsafe {
            // Pairwise adds: [Σx0, Σx1, Σx2, Σx3].
            let s = vpaddq_f32(vpaddq_f32(x0, x1), vpaddq_f32(x2, x3));
            vst1q_f32(out.as_mut_ptr(), s);
        }
        out
    }
}

f32_kernels!(Isa::Neon, Neon, "neon");
