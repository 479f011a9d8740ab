//! Integer kernels for 8-bit scalar quantization: `Σ qᵢ·cᵢ` with an `i8` query and `u8`
//! codes, exact in `i32`.
//!
//! These are the inner loop of the quantized exact scan in [`crate::quant`]: a query is turned
//! into `i8` weights `q` once, every stored vector is a row of `u8` codes `c`, and the scan
//! needs `Σ qᵢ·cᵢ` for every row. The sum is an *integer*, so unlike the `f32` kernels of
//! [`crate::distance`] every ISA returns **exactly** the scalar reference's value (the tests
//! check equality, not closeness).
//!
//! # Operand types: `u8` codes × `i8` query
//!
//! The codes are unsigned (`0..=255`) and the query signed (`-128..=127`) because that is the
//! operand order of the AVX-512 VNNI instruction `vpdpbusd`, which multiplies 64 unsigned bytes
//! by 64 signed bytes and adds each group of four products to an `i32` lane, with no
//! intermediate saturation. Signed codes would need a per-row correction term (`128·Σcᵢ`) to
//! use it; unsigned codes need none, and give 256 levels instead of 255.
//!
//! Every product fits in 16 bits only if it is not summed: `255 · (-128) = -32640`, and two of
//! them overflow `i16`. So the kernels without VNNI never add two products in 16 bits
//! (`vpmaddubsw`, which does, would saturate): they widen both operands to `i16` and use
//! `vpmaddwd` (AVX2, AVX-512BW), which adds pairs of `i16 × i16` products into `i32`, or
//! `smlal` (NEON), which multiplies `i16` lanes into `i32` accumulators. With every product
//! and every pair of products exact, the result is exact.
//!
//! # Range
//!
//! `|Σ qᵢ·cᵢ| ≤ 128 · 255 · n`, which fits in `i32` for `n ≤ 65 793` (4× [`MAX_DIMENSION`]).
//! Beyond that the sum wraps modulo 2³²; every kernel wraps the same way (integer addition
//! is associative), so the ISAs still agree.
//!
//! # Kernels and dispatch
//!
//! As in [`crate::distance`]: one scalar reference (`scalar.rs`, also the fallback on every
//! other target, e.g. wasm32) and one file per ISA (`avx2.rs`, `avx512.rs` with the BW and the
//! VNNI family, `neon.rs`). Each exposes a `static` [`Int8Kernels`] table of *safe* function
//! pointers, handed out by [`Int8Kernels::for_isa`] only after run-time detection confirmed
//! the CPU supports the ISA. [`Int8Kernels::best`] resolves once (cached) and honours the
//! same [`ISA_ENV_VAR`] as the `f32` kernels (see [`Int8Isa::from_name`]).
//!
//! The block kernel works on four rows at a time, one from each quarter of the block, as the
//! `f32` block kernels do (four long memory streams; each query load shared by four rows).
//! Any length works, including 0 and lengths that are not a multiple of the SIMD width
//! (AVX-512 finishes with a masked load, AVX2 and NEON with a scalar tail).
//!
//! [`MAX_DIMENSION`]: crate::MAX_DIMENSION

use std::fmt;
use std::sync::OnceLock;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use super::driver::by_quarters;
use super::ISA_ENV_VAR;

mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

/// Instruction set of an [`Int8Kernels`] family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Int8Isa {
    /// Portable Rust, available everywhere; the reference implementation.
    Scalar,
    /// x86_64 AVX2: bytes widened to `i16`, `vpmaddwd` (16 bytes per register).
    Avx2,
    /// x86_64 AVX-512F + BW: bytes widened to `i16`, `vpmaddwd` (32 bytes per register).
    Avx512Bw,
    /// x86_64 AVX-512F + BW + VNNI: `vpdpbusd` (64 bytes per instruction).
    Avx512Vnni,
    /// aarch64 Advanced SIMD: bytes widened to `i16`, `smlal` (16 bytes per step).
    Neon,
}

impl Int8Isa {
    /// Every ISA, in the order [`Int8Kernels::available`] lists them (scalar first).
    pub const ALL: [Int8Isa; 5] = [
        Int8Isa::Scalar,
        Int8Isa::Avx2,
        Int8Isa::Avx512Bw,
        Int8Isa::Avx512Vnni,
        Int8Isa::Neon,
    ];

    /// Display name: `"scalar"`, `"avx2"`, `"avx512bw"`, `"avx512vnni"` or `"neon"`.
    pub fn name(self) -> &'static str {
        match self {
            Int8Isa::Scalar => "scalar",
            Int8Isa::Avx2 => "avx2",
            Int8Isa::Avx512Bw => "avx512bw",
            Int8Isa::Avx512Vnni => "avx512vnni",
            Int8Isa::Neon => "neon",
        }
    }

    /// Parses an ISA name, ignoring ASCII case and surrounding whitespace.
    ///
    /// Accepts the [`Int8Isa::name`]s and the `f32` kernels' names of
    /// [`Isa::from_name`](super::Isa::from_name), so that one [`ISA_ENV_VAR`] value forces
    /// both families: `avx2+fma` is [`Int8Isa::Avx2`], and `avx512` / `avx512f` ask for
    /// [`Int8Isa::Avx512Vnni`] (a CPU without VNNI then gets its fastest family, which is
    /// [`Int8Isa::Avx512Bw`] when it has AVX-512BW); `simd128` is [`Int8Isa::Scalar`] (no
    /// int8 family for WebAssembly SIMD yet). Anything else gives `None`.
    pub fn from_name(name: &str) -> Option<Int8Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Int8Isa::Scalar),
            "avx2" | "avx2+fma" => Some(Int8Isa::Avx2),
            "avx512bw" => Some(Int8Isa::Avx512Bw),
            "avx512vnni" | "avx512" | "avx512f" => Some(Int8Isa::Avx512Vnni),
            "neon" => Some(Int8Isa::Neon),
            "simd128" => Some(Int8Isa::Scalar),
            _ => None,
        }
    }
}

impl fmt::Display for Int8Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A family of integer kernels for one ISA.
///
/// All functions are safe to call: an `Int8Kernels` for a SIMD ISA is only handed out (by
/// [`Int8Kernels::best`], [`Int8Kernels::for_isa`], [`Int8Kernels::available`]) when the
/// CPU supports that ISA. Obtain it once and call the function pointers in the hot loop.
/// Results are identical across ISAs (see the module docs).
pub struct Int8Kernels {
    /// The instruction set these kernels use.
    pub isa: Int8Isa,
    /// `Σ qᵢ·cᵢ` over `i8` query weights `q` and `u8` codes `c`, exact in `i32`; `0` for
    /// empty slices.
    ///
    /// # Panics
    /// If `q.len() != c.len()`.
    pub dot: fn(q: &[i8], c: &[u8]) -> i32,
    /// Block form: `codes` is a row-major block of `out.len()` rows of `q.len()` codes each,
    /// and `out[r] = dot(q, codes[r*d .. (r+1)*d])` with `d = q.len()`. With `d == 0`,
    /// `codes` must be empty and `out` is filled with `0`.
    ///
    /// # Panics
    /// If `codes.len() != out.len() * q.len()`.
    pub dot_block: fn(q: &[i8], codes: &[u8], out: &mut [i32]),
}

impl fmt::Debug for Int8Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Int8Kernels")
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

impl Int8Kernels {
    /// The best kernels for this CPU, detected once and cached.
    ///
    /// Preference order: AVX-512 VNNI, AVX-512BW, AVX2, NEON, scalar. If [`ISA_ENV_VAR`]
    /// names an ISA ([`Int8Isa::from_name`]) this CPU supports, that ISA is used instead; an
    /// unknown or unsupported value is ignored. The variable is read only on the first call.
    pub fn best() -> &'static Int8Kernels {
        static BEST: OnceLock<&'static Int8Kernels> = OnceLock::new();
        BEST.get_or_init(|| {
            let forced = std::env::var(ISA_ENV_VAR).ok();
            select(forced.as_deref())
        })
    }

    /// Kernels for `isa` if this CPU supports it, else `None`.
    ///
    /// [`Int8Isa::Scalar`] is always supported.
    pub fn for_isa(isa: Int8Isa) -> Option<&'static Int8Kernels> {
        match isa {
            Int8Isa::Scalar => Some(&scalar::KERNELS),
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx2 if std::arch::is_x86_feature_detected!("avx2") => Some(&avx2::KERNELS),
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Bw
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw") =>
            {
                Some(&avx512::KERNELS_BW)
            }
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Vnni
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni") =>
            {
                Some(&avx512::KERNELS_VNNI)
            }
            #[cfg(target_arch = "aarch64")]
            Int8Isa::Neon if std::arch::is_aarch64_feature_detected!("neon") => {
                Some(&neon::KERNELS)
            }
            _ => None,
        }
    }

    /// All kernel families usable on this CPU, scalar first (in [`Int8Isa::ALL`] order).
    pub fn available() -> Vec<&'static Int8Kernels> {
        Int8Isa::ALL
            .into_iter()
            .filter_map(Int8Kernels::for_isa)
            .collect()
    }
}

/// The fastest supported kernels, ignoring the environment.
fn fastest() -> &'static Int8Kernels {
    [
        Int8Isa::Avx512Vnni,
        Int8Isa::Avx512Bw,
        Int8Isa::Avx2,
        Int8Isa::Neon,
    ]
    .into_iter()
    .find_map(Int8Kernels::for_isa)
    .unwrap_or(&scalar::KERNELS)
}

/// The kernels for a forced ISA name if it parses and is supported, else [`fastest`].
fn select(forced: Option<&str>) -> &'static Int8Kernels {
    forced
        .and_then(Int8Isa::from_name)
        .and_then(Int8Kernels::for_isa)
        .unwrap_or_else(fastest)
}

/// Panics unless `q` and `c` have the same length. Shared by every ISA's wrappers.
#[inline]
#[track_caller]
fn check_pair(q: &[i8], c: &[u8]) {
    assert_eq!(
        q.len(),
        c.len(),
        "int8 kernel: query and codes have different lengths"
    );
}

/// Panics unless `codes.len() == out.len() * q.len()`. Shared by every ISA's wrappers.
#[inline]
#[track_caller]
fn check_block(q: &[i8], codes: &[u8], out: &[i32]) {
    assert!(
        out.len().checked_mul(q.len()) == Some(codes.len()),
        "int8 block kernel: codes.len() = {} but out.len() * q.len() = {} * {}",
        codes.len(),
        out.len(),
        q.len()
    );
}

#[cfg(test)]
mod tests;
