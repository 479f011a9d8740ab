//! AVX-512F register operations (x86_64): 16 `f32` lanes per register. The loops are
//! [`super::driver`]'s: four accumulators per single pair, four rows at a time (one per
//! quarter of the block) with two accumulators each in block kernels, and one masked load
//! (`_mm512_maskz_loadu_ps`) for the last `n % 16` floats, so there is no scalar tail.
//!
//! Every function here is only reachable through [`KERNELS`], which
//! [`Kernels::for_isa`](super::Kernels::for_isa) hands out only after
//! `is_x86_feature_detected!("avx512f")`.

use core::arch::x86_64::*;

use super::driver::F32Ops;
use super::Isa;

/// The AVX-512F register type.
struct Avx512;

impl F32Ops for Avx512 {
    type V = __m512;
    const W: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: the caller guarantees AVX-512F (trait contract).
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F and 16 readable floats; no alignment needed.
        unsafe { _mm512_loadu_ps(p) }
    }

    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> __m512 {
        debug_assert!(n < Self::W);
        // SAFETY: the caller guarantees AVX-512F and `n` readable floats; the mask selects
        // only lanes `0..n`, masked-off lanes are not accessed (and cannot fault).
        unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p) }
    }

    #[inline(always)]
    unsafe fn fma(acc: __m512, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, acc) }
    }

    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn reduce(x: __m512) -> f32 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_reduce_add_ps(x) }
    }

    #[inline(always)]
    unsafe fn reduce4(x0: __m512, x1: __m512, x2: __m512, x3: __m512) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: the caller guarantees AVX-512F; `out` has room for four floats.
        unsafe {
            // Within each 128-bit lane: [x0₀+x0₂, x1₀+x1₂, x0₁+x0₃, x1₁+x1₃].
            let t01 = _mm512_add_ps(_mm512_unpacklo_ps(x0, x1), _mm512_unpackhi_ps(x0, x1));
            let t23 = _mm512_add_ps(_mm512_unpacklo_ps(x2, x3), _mm512_unpackhi_ps(x2, x3));
            // Within each 128-bit lane: [Σx0, Σx1, Σx2, Σx3] over that lane's four floats.
            let (t01, t23) = (_mm512_castps_pd(t01), _mm512_castps_pd(t23));
            let s = _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(t01, t23)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(t01, t23)),
            );
            // Add the four 128-bit lanes.
            let s = _mm256_add_ps(
                _mm512_castps512_ps256(s),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s))),
            );
            let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            _mm_storeu_ps(out.as_mut_ptr(), s);
        }
        out
    }
}

f32_kernels!(Isa::Avx512, Avx512, "avx512f");
