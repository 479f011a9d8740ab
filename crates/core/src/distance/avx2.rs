//! AVX2 + FMA register operations (x86_64): 8 `f32` lanes per register. The loops are
//! [`super::driver`]'s: four accumulators per single pair, four rows at a time (one per
//! quarter of the block) with two accumulators each in block kernels, and one masked load
//! (`_mm256_maskload_ps`) for the last `n % 8` floats, so there is no scalar tail.
//!
//! Every function here is only reachable through [`KERNELS`], which
//! [`Kernels::for_isa`](super::Kernels::for_isa) hands out only after
//! `is_x86_feature_detected!` confirmed both `avx2` and `fma`.

use core::arch::x86_64::*;

use super::driver::F32Ops;
use super::Isa;

/// The AVX2+FMA register type.
struct Avx2;

impl F32Ops for Avx2 {
    type V = __m256;
    const W: usize = 8;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: the caller guarantees AVX2 (trait contract).
        unsafe { _mm256_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees AVX2 and 8 readable floats; no alignment needed.
        unsafe { _mm256_loadu_ps(p) }
    }

    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> __m256 {
        debug_assert!(n < Self::W);
        // SAFETY: the caller guarantees AVX2 and `n` readable floats; the mask (sign bit set
        // in lanes `0..n`) selects only those, masked-off lanes are not accessed.
        unsafe {
            let m = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(n as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            _mm256_maskload_ps(p, m)
        }
    }

    #[inline(always)]
    unsafe fn fma(acc: __m256, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller guarantees AVX2 and FMA.
        unsafe { _mm256_fmadd_ps(a, b, acc) }
    }

    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_sub_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_add_ps(a, b) }
    }

    #[inline(always)]
    unsafe fn reduce(x: __m256) -> f32 {
        // SAFETY: the caller guarantees AVX2.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        }
    }

    #[inline(always)]
    unsafe fn reduce4(x0: __m256, x1: __m256, x2: __m256, x3: __m256) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        // SAFETY: the caller guarantees AVX2; `out` has room for four floats.
        unsafe {
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
            let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            _mm_storeu_ps(out.as_mut_ptr(), s);
        }
        out
    }
}

f32_kernels!(Isa::Avx2, Avx2, "avx2,fma");
