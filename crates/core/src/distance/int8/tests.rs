//! The int8 kernels of every ISA this CPU supports against the scalar reference (exact
//! equality), and the reference against an `i64` computation.

use proptest::prelude::*;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn scalar() -> &'static Int8Kernels {
    Int8Kernels::for_isa(Int8Isa::Scalar).unwrap()
}

/// `Σ qᵢ·cᵢ` in `i64` (never overflows for the lengths tested).
fn reference(q: &[i8], c: &[u8]) -> i64 {
    q.iter()
        .zip(c)
        .map(|(&a, &b)| i64::from(a) * i64::from(b))
        .sum()
}

/// Query bytes: uniform, or only the extremes (`-128`, `127`) with zeros, or constant `-128`.
fn query_byte() -> impl Strategy<Value = i8> {
    prop_oneof![
        6 => any::<i8>(),
        2 => prop_oneof![Just(-128i8), Just(127), Just(0), Just(-127)],
    ]
}

/// Code bytes: uniform, or only the extremes (`0`, `255`).
fn code_byte() -> impl Strategy<Value = u8> {
    prop_oneof![6 => any::<u8>(), 2 => prop_oneof![Just(0u8), Just(255)]]
}

/// A query of dimension `0..=1100` and a block of `0..=9` rows of that dimension.
fn block() -> impl Strategy<Value = (Vec<i8>, Vec<u8>, usize)> {
    (0usize..=1100, 0usize..=9).prop_flat_map(|(d, n)| {
        (
            proptest::collection::vec(query_byte(), d),
            proptest::collection::vec(code_byte(), d * n),
            Just(n),
        )
    })
}

proptest! {
    #[test]
    fn int8_kernels_match_scalar_exactly((q, codes, n) in block()) {
        let d = q.len();
        let row = |r: usize| &codes[r * d..(r + 1) * d];
        let mut want = vec![i32::MIN; n];
        (scalar().dot_block)(&q, &codes, &mut want);
        for (r, &w) in want.iter().enumerate() {
            prop_assert_eq!(i64::from(w), reference(&q, row(r)));
            prop_assert_eq!(w, (scalar().dot)(&q, row(r)));
        }
        for k in Int8Kernels::available() {
            let mut got = vec![i32::MIN; n];
            (k.dot_block)(&q, &codes, &mut got);
            prop_assert_eq!(&got, &want, "{} dot_block d={} rows={}", k.isa, d, n);
            for (r, &w) in want.iter().enumerate() {
                prop_assert_eq!((k.dot)(&q, row(r)), w, "{} dot d={} row {}", k.isa, d, r);
            }
        }
    }
}

/// The extremes at every length `0..=300` (every tail path of every width, and the four-row
/// groups plus leftovers for 0..=9 rows), and at the largest shard dimension.
#[test]
fn int8_extremes_all_lengths() {
    let cases: [(i8, u8); 4] = [(-128, 255), (127, 255), (-128, 0), (127, 1)];
    for n in (0..=300usize).chain([4096, crate::MAX_DIMENSION]) {
        for (qv, cv) in cases {
            let q = vec![qv; n];
            // Rows of the extreme code, and rows mixing it with 0 and 128.
            let rows: Vec<u8> = (0..9usize)
                .flat_map(|r| (0..n).map(move |i| if (i + r) % 3 == 0 { cv } else { 128 }))
                .collect();
            for k in Int8Kernels::available() {
                let c = vec![cv; n];
                assert_eq!(
                    i64::from((k.dot)(&q, &c)),
                    i64::from(qv) * i64::from(cv) * n as i64,
                    "{} n={n}",
                    k.isa
                );
                for m in 0..=9 {
                    let block = &rows[..m * n];
                    let mut out = vec![i32::MIN; m];
                    (k.dot_block)(&q, block, &mut out);
                    for (r, &o) in out.iter().enumerate() {
                        let want = reference(&q, &block[r * n..(r + 1) * n]);
                        assert_eq!(i64::from(o), want, "{} n={n} rows={m} r={r}", k.isa);
                    }
                }
            }
        }
    }
}

#[test]
fn int8_hand_computed() {
    for k in Int8Kernels::available() {
        assert_eq!((k.dot)(&[1, -2, 3], &[4, 5, 6]), 4 - 10 + 18, "{}", k.isa);
        assert_eq!((k.dot)(&[-128], &[255]), -32640, "{}", k.isa);
        let mut out = [0; 3];
        (k.dot_block)(&[1, 2], &[1, 0, 0, 1, 3, 255], &mut out);
        assert_eq!(out, [1, 2, 513], "{}", k.isa);
    }
}

#[test]
fn int8_empty_is_zero() {
    for k in Int8Kernels::available() {
        assert_eq!((k.dot)(&[], &[]), 0);
        let mut out = [i32::MIN; 3];
        (k.dot_block)(&[], &[], &mut out);
        assert_eq!(out, [0; 3]);
        (k.dot_block)(&[1, 2], &[], &mut []);
    }
}

#[test]
#[cfg(panic = "unwind")] // wasm aborts on a panic: nothing to catch
fn int8_mismatched_lengths_panic() {
    let panics = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    for k in Int8Kernels::available() {
        assert!(panics(&|| {
            let _ = (k.dot)(&[1; 17], &[1; 16]);
        }));
        assert!(panics(&|| (k.dot_block)(&[1; 17], &[1; 16], &mut [0])));
        assert!(panics(&|| (k.dot_block)(&[1; 8], &[1; 8], &mut [0; 2])));
        assert!(panics(&|| (k.dot_block)(&[], &[1; 8], &mut [0])));
    }
}

#[test]
fn int8_best_is_fastest_supported() {
    if std::env::var_os(ISA_ENV_VAR).is_some() {
        return; // forced choice: nothing to check
    }
    assert_eq!(Int8Kernels::best().isa, fastest().isa);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        assert_eq!(fastest().isa, Int8Isa::Avx512Vnni);
    } else if std::arch::is_x86_feature_detected!("avx2") {
        assert_ne!(fastest().isa, Int8Isa::Scalar);
    }
    #[cfg(target_arch = "aarch64")]
    assert_eq!(fastest().isa, Int8Isa::Neon);
}

#[test]
fn int8_env_override_selection() {
    assert_eq!(select(Some(" SCALAR\n")).isa, Int8Isa::Scalar);
    assert_eq!(select(None).isa, fastest().isa);
    assert_eq!(select(Some("sse9")).isa, fastest().isa);
    for isa in Int8Isa::ALL {
        let want = Int8Kernels::for_isa(isa).unwrap_or_else(fastest).isa;
        assert_eq!(select(Some(isa.name())).isa, want, "{isa}");
        assert_eq!(Int8Isa::from_name(isa.name()), Some(isa));
    }
    // The f32 kernels' names force the matching int8 family.
    for f32_isa in super::super::Isa::ALL {
        assert!(Int8Isa::from_name(f32_isa.name()).is_some(), "{f32_isa}");
    }
    assert_eq!(Int8Isa::from_name("avx512"), Some(Int8Isa::Avx512Vnni));
    assert_eq!(Int8Isa::from_name("avx2+fma"), Some(Int8Isa::Avx2));
}

#[test]
fn int8_available_is_consistent() {
    let all = Int8Kernels::available();
    assert_eq!(all[0].isa, Int8Isa::Scalar);
    for k in &all {
        assert!(std::ptr::eq(*k, Int8Kernels::for_isa(k.isa).unwrap()));
    }
    assert!(all.iter().any(|k| k.isa == Int8Kernels::best().isa));
    #[cfg(target_arch = "x86_64")]
    assert!(Int8Kernels::for_isa(Int8Isa::Neon).is_none());
    #[cfg(target_arch = "aarch64")]
    assert!(all
        .iter()
        .all(|k| matches!(k.isa, Int8Isa::Scalar | Int8Isa::Neon)));
}
