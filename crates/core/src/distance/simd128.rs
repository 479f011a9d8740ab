//! WebAssembly SIMD (`simd128`): 4 `f32` lanes per `v128`. The loops are [`super::driver`]'s,
//! as for NEON; the last `n % 4` floats are copied into a zeroed register. simd128 has no fused
//! multiply-add (relaxed-simd's is not enabled by default in Node 20 / V8 11), so `fma` is a
//! multiply then an add: the same sums as the scalar reference up to rounding.
//!
//! A module holding `v128` instructions does not validate on an engine without SIMD, so there
//! is no run-time detection: this family is compiled only when the build enables the feature
//! (`-C target-feature=+simd128`) and is then always available.

use core::arch::wasm32::*;

use super::driver::F32Ops;
use super::Isa;

/// The simd128 register type.
struct Simd128;

impl F32Ops for Simd128 {
    type V = v128;
    const W: usize = 4;

    #[inline(always)]
    unsafe fn zero() -> v128 {
        f32x4_splat(0.0)
    }

    #[inline(always)]
    unsafe fn load(p: *const f32) -> v128 {
        // SAFETY: the caller guarantees 4 readable floats at `p`; `v128_load` needs no
        // alignment.
        unsafe { v128_load(p.cast()) }
    }

    #[inline(always)]
    unsafe fn load_part(p: *const f32, n: usize) -> v128 {
        debug_assert!(n < Self::W);
        let mut buf = [0.0f32; 4];
        // SAFETY: the caller guarantees `n < 4` readable floats at `p`; `buf` has room for
        // them and does not overlap `p`.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            v128_load(buf.as_ptr().cast())
        }
    }

    #[inline(always)]
    unsafe fn fma(acc: v128, a: v128, b: v128) -> v128 {
        f32x4_add(acc, f32x4_mul(a, b))
    }

    #[inline(always)]
    unsafe fn sub(a: v128, b: v128) -> v128 {
        f32x4_sub(a, b)
    }

    #[inline(always)]
    unsafe fn add(a: v128, b: v128) -> v128 {
        f32x4_add(a, b)
    }

    #[inline(always)]
    unsafe fn reduce(x: v128) -> f32 {
        // [x0+x2, x1+x3, …], then lane 0 + lane 1.
        let h = f32x4_add(x, i32x4_shuffle::<2, 3, 0, 1>(x, x));
        let s = f32x4_add(h, i32x4_shuffle::<1, 0, 3, 2>(h, h));
        f32x4_extract_lane::<0>(s)
    }

    #[inline(always)]
    unsafe fn reduce4(x0: v128, x1: v128, x2: v128, x3: v128) -> [f32; 4] {
        // SAFETY: the trait contract holds for every call below.
        unsafe {
            [
                Self::reduce(x0),
                Self::reduce(x1),
                Self::reduce(x2),
                Self::reduce(x3),
            ]
        }
    }
}

f32_kernels!(Isa::Simd128, Simd128, "simd128");
