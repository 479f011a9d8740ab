//! Distance kernels: inner product and squared Euclidean distance over `f32` slices.
//!
//! # Design
//!
//! * **One scalar reference, one file per ISA.** `scalar.rs` holds the portable
//!   reference implementation (plain safe Rust). `avx2.rs` (x86_64 AVX2 + FMA),
//!   `avx512.rs` (x86_64 AVX-512F) and `neon.rs` (aarch64 NEON) hold the SIMD
//!   versions. Each file exposes one `static` [`Kernels`] table whose function
//!   pointers are *safe* wrappers: they check the slice lengths and then call the
//!   `unsafe` `#[target_feature]` implementation.
//! * **Dispatch is chosen once.** A [`Kernels`] table for an ISA is only handed out
//!   (by [`Kernels::for_isa`], [`Kernels::available`], [`Kernels::best`]) after runtime
//!   detection (`is_x86_feature_detected!` / `is_aarch64_feature_detected!`) confirmed
//!   that this CPU supports it; that check is what makes the wrappers sound. Callers
//!   resolve [`Kernels::best`] once (it is cached in a [`OnceLock`]) and then call the
//!   function pointers directly: one indirect call per vector, or per *block* of rows
//!   with [`Kernels::dot_block`] / [`Kernels::l2sq_block`].
//! * **Block kernels are the hot loop** of the exact scan. They take a row-major block
//!   of rows and compute one result per row inside the `#[target_feature]` function
//!   (no per-row indirect call). They work on four rows at a time so each query load
//!   is shared by four rows, with two independent accumulators per row for
//!   instruction-level parallelism. The four rows come from the four *quarters* of the
//!   block (rows `j`, `n/4 + j`, `n/2 + j`, `3n/4 + j`), so memory sees four long
//!   sequential streams: a scan over 25 000 × 384 rows reads ~38 MB per query and is
//!   DRAM-bandwidth bound, and on the development machine (AMD EPYC) four quarter
//!   streams reached ~30 GB/s where four *adjacent* rows reached only ~12 GB/s and one
//!   row at a time ~22 GB/s. Pass blocks as large as you have (hundreds of rows or
//!   more) so the streams are long.
//! * **Any length works**, including 0 and lengths that are not a multiple of the SIMD
//!   width: AVX2 and AVX-512 finish with one masked load (masked-off lanes are not
//!   read), NEON and scalar with a scalar tail. The empty slice gives `0.0`.
//! * **Cosine is not a kernel here.** The store keeps each vector's norm (computed once
//!   with [`norm`] when the vector is written), so a cosine scan is a
//!   [`Kernels::dot_block`] pass plus one division per row by `|q|·|x|`. Inner-product,
//!   cosine and (via [`Kernels::l2sq_block`]) L2 scans therefore all run on the same
//!   tight, bandwidth-bound loops, and the norms do not have to be recomputed for every
//!   query.
//!
//! # Numerical agreement between ISAs
//!
//! Floating-point addition is not associative, and the SIMD kernels sum in a different
//! order than the scalar reference (many lane-wise partial sums, fused multiply-add), so
//! results differ in the last bits. Each kernel's rounding error is bounded by about
//! `(n/lanes + log2(lanes)) · ε · Σ|aᵢbᵢ|` (ε = 2⁻²⁴ ≈ 6e-8, `n ≤ 1100` in the tests);
//! the property tests therefore check, for every ISA available on the machine,
//!
//! ```text
//! |simd - scalar| <= 1e-5 * (Σ|aᵢ·bᵢ| + 1)        (dot, dot_block)
//! |simd - scalar| <= 1e-5 * (Σ(aᵢ - bᵢ)² + 1)     (l2sq, l2sq_block)
//! ```
//!
//! The bound is relative to the sum of the *absolute* terms (the condition number of a
//! dot product makes a bound relative to the result itself impossible under
//! cancellation); the `+ 1` absorbs underflow to subnormals with tiny inputs. The
//! reference itself is checked against an `f64` computation with the same tolerance.
//!
//! # Choosing an ISA
//!
//! [`Kernels::best`] prefers AVX-512F, then AVX2+FMA, then NEON, then scalar; a wasm32
//! build with `target_feature = "simd128"` (`-C target-feature=+simd128`) has the simd128
//! family, chosen at build time (an engine without SIMD refuses such a module, so there is
//! nothing to detect). The environment variable [`ISA_ENV_VAR`] (`SQLITE_VECTOR_ISA`) set to
//! `scalar`, `avx2`, `avx512`, `neon` or `simd128` (see [`Isa::from_name`]) forces that
//! choice if this CPU supports it; an unknown or unsupported value is silently ignored and
//! the best ISA is used.
//! The variable is read once, on the first call to [`Kernels::best`].

use std::fmt;
use std::sync::OnceLock;

/// Generates an ISA file's `f32` kernel family from its [`driver::F32Ops`] implementation:
/// the `#[target_feature]` entry points (the loops of [`driver`], inlined with `$features`
/// enabled), the safe wrappers that check slice lengths, and the `static KERNELS` table.
/// `Kernels::for_isa` must hand the table out only after run-time detection confirmed every
/// feature in `$features`.
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(unused_macros)
)]
macro_rules! f32_kernels {
    ($isa:expr, $ops:ty, $features:literal) => {
        /// This ISA's kernel family.
        pub(super) static KERNELS: super::Kernels = super::Kernels {
            isa: $isa,
            dot,
            l2sq,
            dot_block,
            l2sq_block,
        };

        fn dot(a: &[f32], b: &[f32]) -> f32 {
            super::check_pair(a, b);
            // SAFETY: `KERNELS` is only handed out when the CPU supports `$features`, and
            // the lengths were just checked to be equal.
            unsafe { pair::<false>(a, b) }
        }

        fn l2sq(a: &[f32], b: &[f32]) -> f32 {
            super::check_pair(a, b);
            // SAFETY: as in `dot`.
            unsafe { pair::<true>(a, b) }
        }

        fn dot_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
            super::check_block(q, rows, out);
            // SAFETY: `KERNELS` is only handed out when the CPU supports `$features`, and
            // the block shape was just checked.
            unsafe { block::<false>(q, rows, out) }
        }

        fn l2sq_block(q: &[f32], rows: &[f32], out: &mut [f32]) {
            super::check_block(q, rows, out);
            // SAFETY: as in `dot_block`.
            unsafe { block::<true>(q, rows, out) }
        }

        /// # Safety
        /// The CPU must support `$features`, and `a.len() == b.len()`.
        #[target_feature(enable = $features)]
        unsafe fn pair<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
            // SAFETY: the features are enabled here; the caller checked the lengths.
            unsafe { super::driver::pair::<$ops, L2>(a, b) }
        }

        /// # Safety
        /// The CPU must support `$features`, and `rows.len() == out.len() * q.len()`.
        #[target_feature(enable = $features)]
        unsafe fn block<const L2: bool>(q: &[f32], rows: &[f32], out: &mut [f32]) {
            // SAFETY: the features are enabled here; the caller checked the shape.
            unsafe { super::driver::block::<$ops, L2>(q, rows, out) }
        }
    };
}

mod driver;
pub mod int8;
mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

/// Name of the environment variable that forces the ISA chosen by [`Kernels::best`].
///
/// Accepted values are those of [`Isa::from_name`]; unknown values and ISAs this CPU does
/// not support are ignored (the best available ISA is used instead).
pub const ISA_ENV_VAR: &str = "SQLITE_VECTOR_ISA";

/// Instruction set of a kernel family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, available everywhere; the reference implementation.
    Scalar,
    /// x86_64 AVX2 with FMA (8 lanes of `f32`).
    Avx2,
    /// x86_64 AVX-512 Foundation (16 lanes of `f32`).
    Avx512,
    /// aarch64 Advanced SIMD (4 lanes of `f32`).
    Neon,
    /// WebAssembly SIMD (4 lanes of `f32`), in builds with `target_feature = "simd128"`.
    Simd128,
}

impl Isa {
    /// Every ISA, in the order [`Kernels::available`] lists them (scalar first).
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::Simd128];

    /// Display name: `"scalar"`, `"avx2+fma"`, `"avx512f"`, `"neon"` or `"simd128"`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2+fma",
            Isa::Avx512 => "avx512f",
            Isa::Neon => "neon",
            Isa::Simd128 => "simd128",
        }
    }

    /// Parses an ISA name, ignoring ASCII case and surrounding whitespace.
    ///
    /// Accepts `scalar`, `avx2` (or `avx2+fma`), `avx512` (or `avx512f`), `neon` and `simd128`;
    /// anything else gives `None`. This is the syntax of [`ISA_ENV_VAR`].
    pub fn from_name(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" | "avx2+fma" => Some(Isa::Avx2),
            "avx512" | "avx512f" => Some(Isa::Avx512),
            "neon" => Some(Isa::Neon),
            "simd128" => Some(Isa::Simd128),
            _ => None,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A family of kernels for one ISA.
///
/// All functions are safe to call: a `Kernels` for a SIMD ISA is only handed out (by
/// [`Kernels::best`], [`Kernels::for_isa`], [`Kernels::available`]) when the CPU
/// supports that ISA. Obtain it once and call the function pointers in the hot loop.
pub struct Kernels {
    /// The instruction set these kernels use.
    pub isa: Isa,
    /// `dot(a, b) = Σ aᵢ·bᵢ`; `0.0` for empty slices.
    ///
    /// # Panics
    /// If `a.len() != b.len()`.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// Squared Euclidean distance `Σ (aᵢ - bᵢ)²`; `0.0` for empty slices.
    ///
    /// # Panics
    /// If `a.len() != b.len()`.
    pub l2sq: fn(&[f32], &[f32]) -> f32,
    /// Block inner product: `rows` is a row-major block of `out.len()` rows of
    /// `q.len()` floats each, and `out[r] = dot(q, rows[r*d .. (r+1)*d])` with
    /// `d = q.len()`. With `d == 0`, `rows` must be empty and `out` is filled with `0.0`.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * q.len()`.
    pub dot_block: fn(q: &[f32], rows: &[f32], out: &mut [f32]),
    /// Block squared L2: like [`Kernels::dot_block`] with
    /// `out[r] = l2sq(q, rows[r*d .. (r+1)*d])`.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * q.len()`.
    pub l2sq_block: fn(q: &[f32], rows: &[f32], out: &mut [f32]),
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

impl Kernels {
    /// The best kernels for this CPU, detected once and cached.
    ///
    /// Preference order: AVX-512F, AVX2+FMA, NEON, simd128 (wasm32 builds with it), scalar. If the environment variable
    /// [`ISA_ENV_VAR`] (`SQLITE_VECTOR_ISA`) names an ISA ([`Isa::from_name`]) that this
    /// CPU supports, that ISA is used instead; an unknown or unsupported value is
    /// ignored (falls back to the best ISA). The variable is read only on the first
    /// call.
    pub fn best() -> &'static Kernels {
        static BEST: OnceLock<&'static Kernels> = OnceLock::new();
        BEST.get_or_init(|| {
            let forced = std::env::var(ISA_ENV_VAR).ok();
            select(forced.as_deref())
        })
    }

    /// Kernels for `isa` if this CPU supports it, else `None`.
    ///
    /// [`Isa::Scalar`] is always supported.
    pub fn for_isa(isa: Isa) -> Option<&'static Kernels> {
        match isa {
            Isa::Scalar => Some(&scalar::KERNELS),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma") =>
            {
                Some(&avx2::KERNELS)
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => Some(&avx512::KERNELS),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon if std::arch::is_aarch64_feature_detected!("neon") => Some(&neon::KERNELS),
            // Compiled in only when the build enables simd128, which an engine without it
            // refuses to load: present means supported.
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => Some(&simd128::KERNELS),
            _ => None,
        }
    }

    /// All kernel families usable on this CPU, scalar first (in [`Isa::ALL`] order).
    pub fn available() -> Vec<&'static Kernels> {
        Isa::ALL.into_iter().filter_map(Kernels::for_isa).collect()
    }
}

/// The fastest supported kernels, ignoring the environment.
fn fastest() -> &'static Kernels {
    [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Simd128]
        .into_iter()
        .find_map(Kernels::for_isa)
        .unwrap_or(&scalar::KERNELS)
}

/// The kernels for a forced ISA name if it parses and is supported, else [`fastest`].
fn select(forced: Option<&str>) -> &'static Kernels {
    forced
        .and_then(Isa::from_name)
        .and_then(Kernels::for_isa)
        .unwrap_or_else(fastest)
}

/// Panics unless `a` and `b` have the same length. Shared by every ISA's wrappers.
#[inline]
#[track_caller]
fn check_pair(a: &[f32], b: &[f32]) {
    assert_eq!(
        a.len(),
        b.len(),
        "distance kernel: vectors have different lengths"
    );
}

/// Panics unless `rows.len() == out.len() * q.len()`. Shared by every ISA's wrappers.
#[inline]
#[track_caller]
fn check_block(q: &[f32], rows: &[f32], out: &[f32]) {
    assert!(
        out.len().checked_mul(q.len()) == Some(rows.len()),
        "distance block kernel: rows.len() = {} but out.len() * q.len() = {} * {}",
        rows.len(),
        out.len(),
        q.len()
    );
}

/// Inner product `Σ aᵢ·bᵢ` with [`Kernels::best`]; `0.0` for empty slices.
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().dot)(a, b)
}

/// Squared Euclidean distance `Σ (aᵢ - bᵢ)²` with [`Kernels::best`]; `0.0` for empty
/// slices.
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().l2sq)(a, b)
}

/// Euclidean norm `sqrt(dot(a, a))` with [`Kernels::best`]; `0.0` for an empty slice.
#[inline]
pub fn norm(a: &[f32]) -> f32 {
    (Kernels::best().dot)(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    // On wasm the same tests run under Node through wasm-bindgen-test-runner (the simd128
    // kernels against the scalar reference).
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Relative tolerance of the property tests (see the module docs).
    const REL_TOL: f64 = 1e-5;

    /// `Σ|aᵢ·bᵢ|` in f64: the scale of the dot-product rounding error.
    fn dot_scale(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
            .sum()
    }

    /// `Σ(aᵢ - bᵢ)²` in f64: the scale of the squared-L2 rounding error.
    fn l2_scale(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum()
    }

    fn close(got: f32, want: f32, scale: f64) -> bool {
        (f64::from(got) - f64::from(want)).abs() <= REL_TOL * (scale + 1.0)
    }

    fn scalar() -> &'static Kernels {
        Kernels::for_isa(Isa::Scalar).unwrap()
    }

    /// A vector pair of equal length in `0..=1100`. Values are uniform in
    /// `[-scale, scale]`, with `scale` mostly 100 and sometimes tiny or huge.
    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (0usize..=1100, magnitude()).prop_flat_map(|(n, s)| {
            (
                proptest::collection::vec(-s..=s, n),
                proptest::collection::vec(-s..=s, n),
            )
        })
    }

    fn magnitude() -> impl Strategy<Value = f32> {
        prop_oneof![8 => Just(100.0f32), 1 => Just(1e-20f32), 1 => Just(1e15f32)]
    }

    /// A query of dimension `0..=1100` and a block of `0..=9` rows of that dimension.
    fn block() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
        (0usize..=1100, 0usize..=9, magnitude()).prop_flat_map(|(d, n, s)| {
            (
                proptest::collection::vec(-s..=s, d),
                proptest::collection::vec(-s..=s, d * n),
                Just(n),
            )
        })
    }

    proptest! {
        #[test]
        fn dot_matches_scalar((a, b) in pair()) {
            let want = (scalar().dot)(&a, &b);
            let scale = dot_scale(&a, &b);
            for k in Kernels::available() {
                let got = (k.dot)(&a, &b);
                prop_assert!(close(got, want, scale), "{}: {got} vs {want}", k.isa);
            }
        }

        #[test]
        fn l2sq_matches_scalar((a, b) in pair()) {
            let want = (scalar().l2sq)(&a, &b);
            let scale = l2_scale(&a, &b);
            for k in Kernels::available() {
                let got = (k.l2sq)(&a, &b);
                prop_assert!(close(got, want, scale), "{}: {got} vs {want}", k.isa);
            }
        }

        #[test]
        fn scalar_matches_f64((a, b) in pair()) {
            let dot64: f64 = a.iter().zip(&b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
            let got = (scalar().dot)(&a, &b);
            prop_assert!((f64::from(got) - dot64).abs() <= REL_TOL * (dot_scale(&a, &b) + 1.0));
            let l2_64 = l2_scale(&a, &b);
            let got = (scalar().l2sq)(&a, &b);
            prop_assert!((f64::from(got) - l2_64).abs() <= REL_TOL * (l2_64 + 1.0));
        }

        #[test]
        fn blocks_match_scalar((q, rows, n) in block()) {
            let d = q.len();
            let row = |r: usize| &rows[r * d..(r + 1) * d];
            let mut want_dot = vec![f32::NAN; n];
            let mut want_l2 = vec![f32::NAN; n];
            (scalar().dot_block)(&q, &rows, &mut want_dot);
            (scalar().l2sq_block)(&q, &rows, &mut want_l2);
            for r in 0..n {
                prop_assert_eq!(want_dot[r], (scalar().dot)(&q, row(r)));
                prop_assert_eq!(want_l2[r], (scalar().l2sq)(&q, row(r)));
            }
            for k in Kernels::available() {
                let mut got = vec![f32::NAN; n];
                (k.dot_block)(&q, &rows, &mut got);
                for r in 0..n {
                    prop_assert!(
                        close(got[r], want_dot[r], dot_scale(&q, row(r))),
                        "{} dot row {r}/{n}, d={d}: {} vs {}", k.isa, got[r], want_dot[r]
                    );
                }
                let mut got = vec![f32::NAN; n];
                (k.l2sq_block)(&q, &rows, &mut got);
                for r in 0..n {
                    prop_assert!(
                        close(got[r], want_l2[r], l2_scale(&q, row(r))),
                        "{} l2sq row {r}/{n}, d={d}: {} vs {}", k.isa, got[r], want_l2[r]
                    );
                }
            }
        }
    }

    #[test]
    fn hand_computed() {
        for k in Kernels::available() {
            assert_eq!(
                (k.dot)(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]),
                32.0,
                "{}",
                k.isa
            );
            assert_eq!(
                (k.l2sq)(&[1.0, 2.0, 3.0], &[4.0, 6.0, 8.0]),
                50.0,
                "{}",
                k.isa
            );
            assert_eq!((k.dot)(&[-2.5], &[4.0]), -10.0, "{}", k.isa);
            assert_eq!((k.l2sq)(&[-2.5], &[4.0]), 42.25, "{}", k.isa);
            let mut out = [0.0; 3];
            (k.dot_block)(&[1.0, 2.0], &[1.0, 0.0, 0.0, 1.0, 3.0, -4.0], &mut out);
            assert_eq!(out, [1.0, 2.0, -5.0], "{}", k.isa);
            (k.l2sq_block)(&[1.0, 2.0], &[1.0, 0.0, 0.0, 1.0, 3.0, -4.0], &mut out);
            assert_eq!(out, [4.0, 2.0, 40.0], "{}", k.isa);
        }
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
        assert_eq!(dot(&[3.0, 4.0], &[3.0, 4.0]), 25.0);
        assert_eq!(l2sq(&[3.0, 4.0], &[0.0, 0.0]), 25.0);
    }

    /// Small integers are summed exactly in any order, so every ISA must give the exact
    /// value; lengths 0..=70 cover every tail path of every SIMD width, and eleven
    /// distinct rows cover the four-row groups (two per quarter) plus leftover rows.
    #[test]
    fn exact_on_integers_all_lengths() {
        const ROWS: usize = 11;
        for n in 0..=70usize {
            let a: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
            let b = |r: usize, i: usize| ((i * 7 + r * 5) % 11) as f32 - 5.0;
            let rows: Vec<f32> = (0..ROWS)
                .flat_map(|r| (0..n).map(move |i| b(r, i)))
                .collect();
            let row = |r: usize| &rows[r * n..(r + 1) * n];
            let want_dot: Vec<f32> = (0..ROWS)
                .map(|r| {
                    (0..n)
                        .map(|i| f64::from(a[i]) * f64::from(b(r, i)))
                        .sum::<f64>() as f32
                })
                .collect();
            let want_l2: Vec<f32> = (0..ROWS)
                .map(|r| {
                    (0..n)
                        .map(|i| f64::from(a[i] - b(r, i)).powi(2))
                        .sum::<f64>() as f32
                })
                .collect();
            for k in Kernels::available() {
                for r in 0..ROWS {
                    assert_eq!((k.dot)(&a, row(r)), want_dot[r], "{} n={n} r={r}", k.isa);
                    assert_eq!((k.l2sq)(&a, row(r)), want_l2[r], "{} n={n} r={r}", k.isa);
                }
                for m in 0..=ROWS {
                    let mut out = vec![f32::NAN; m];
                    (k.dot_block)(&a, &rows[..m * n], &mut out);
                    assert_eq!(out, want_dot[..m], "{} n={n} rows={m}", k.isa);
                    (k.l2sq_block)(&a, &rows[..m * n], &mut out);
                    assert_eq!(out, want_l2[..m], "{} n={n} rows={m}", k.isa);
                }
            }
        }
    }

    #[test]
    fn empty_is_zero() {
        for k in Kernels::available() {
            assert_eq!((k.dot)(&[], &[]), 0.0);
            assert_eq!((k.l2sq)(&[], &[]), 0.0);
            let mut out = [f32::NAN; 3];
            (k.dot_block)(&[], &[], &mut out);
            assert_eq!(out, [0.0; 3]);
            let mut out = [f32::NAN; 3];
            (k.l2sq_block)(&[], &[], &mut out);
            assert_eq!(out, [0.0; 3]);
            (k.dot_block)(&[1.0, 2.0], &[], &mut []);
            (k.l2sq_block)(&[1.0, 2.0], &[], &mut []);
        }
        assert_eq!(norm(&[]), 0.0);
    }

    #[test]
    #[cfg(panic = "unwind")] // wasm aborts on a panic: nothing to catch
    fn mismatched_lengths_panic() {
        let a = [1.0f32; 17];
        let b = [1.0f32; 16];
        for k in Kernels::available() {
            let panics =
                |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
            assert!(
                panics(&|| {
                    let _ = (k.dot)(&a, &b);
                }),
                "{} dot",
                k.isa
            );
            assert!(
                panics(&|| {
                    let _ = (k.l2sq)(&b, &a);
                }),
                "{} l2sq",
                k.isa
            );
            assert!(
                panics(&|| (k.dot_block)(&a, &b, &mut [0.0])),
                "{} dot_block",
                k.isa
            );
            assert!(
                panics(&|| (k.l2sq_block)(&b, &a, &mut [0.0])),
                "{} l2sq_block",
                k.isa
            );
            assert!(
                panics(&|| (k.dot_block)(&b, &a, &mut [0.0; 2])),
                "{} dot_block",
                k.isa
            );
            assert!(
                panics(&|| (k.l2sq_block)(&[], &a, &mut [0.0])),
                "{} l2sq_block",
                k.isa
            );
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn free_dot_panics_on_mismatch() {
        dot(&[1.0, 2.0], &[1.0]);
    }

    #[test]
    fn best_is_avx512_when_supported() {
        if std::env::var_os(ISA_ENV_VAR).is_some() {
            return; // forced choice: nothing to check
        }
        let best = Kernels::best();
        assert_eq!(best.isa, fastest().isa);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(best.isa, Isa::Avx512);
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            assert_eq!(best.isa, Isa::Avx2);
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(best.isa, Isa::Neon);
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        assert_eq!(best.isa, Isa::Simd128);
    }

    #[test]
    fn env_override_selection() {
        assert_eq!(select(Some("scalar")).isa, Isa::Scalar);
        assert_eq!(select(Some("  SCALAR\n")).isa, Isa::Scalar);
        assert_eq!(select(None).isa, fastest().isa);
        assert_eq!(select(Some("")).isa, fastest().isa);
        assert_eq!(select(Some("sse9")).isa, fastest().isa);
        for isa in Isa::ALL {
            let want = Kernels::for_isa(isa).unwrap_or_else(fastest).isa;
            assert_eq!(select(Some(isa.name())).isa, want, "{isa}");
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("avx512"), Some(Isa::Avx512));
        assert_eq!(Isa::from_name("AVX2"), Some(Isa::Avx2));
    }

    #[test]
    fn available_is_consistent() {
        let all = Kernels::available();
        assert_eq!(all[0].isa, Isa::Scalar);
        for k in &all {
            assert!(std::ptr::eq(*k, Kernels::for_isa(k.isa).unwrap()));
        }
        assert!(all.iter().any(|k| k.isa == Kernels::best().isa));
        #[cfg(target_arch = "x86_64")]
        assert!(Kernels::for_isa(Isa::Neon).is_none());
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        assert!(Kernels::for_isa(Isa::Simd128).is_none());
        #[cfg(target_arch = "aarch64")]
        assert!(Kernels::for_isa(Isa::Avx2).is_none() && Kernels::for_isa(Isa::Avx512).is_none());
    }
}
