use proptest::prelude::*;
use sqlite_vector_dataset::SeededRng;

use super::*;
use crate::distance::int8::{Int8Isa, Int8Kernels};
use crate::Metric;

fn rng_rows(seed: u64, rows: usize, dim: usize) -> Vec<f32> {
    SeededRng(seed).vec(rows * dim)
}

fn encode_all(qz: &Quantizer, data: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let d = qz.dim();
    let mut codes = vec![0u8; data.len()];
    let norms = data
        .chunks_exact(d)
        .zip(codes.chunks_exact_mut(d))
        .map(|(x, c)| qz.encode(x, c))
        .collect();
    (codes, norms)
}

// ---- training -----------------------------------------------------------------------------

#[test]
fn train_refuses_bad_input() {
    let invalid = |r: Result<Quantizer>| matches!(r, Err(Error::InvalidArgument(_)));
    assert!(invalid(Quantizer::train(&[], 4)));
    assert!(invalid(Quantizer::train(&[1.0; 4], 0)));
    assert!(invalid(Quantizer::train(&[1.0; 5], 4)));
    assert!(invalid(Quantizer::train(
        &[1.0; 4],
        crate::MAX_DIMENSION + 1
    )));
    for clip in [-0.1, 0.5, f32::NAN] {
        let opts = TrainOptions {
            per_dimension: true,
            clip,
        };
        assert!(invalid(Quantizer::train_with(&[1.0; 4], 2, opts)), "{clip}");
    }
    let err = Quantizer::train(&[1.0, 2.0, 3.0, f32::INFINITY], 2).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 1, .. }), "{err}");
    assert!(err.is_user_error());
}

#[test]
fn train_min_max_per_dimension() {
    // Dimension 0 spans [-1, 3], dimension 1 is constant 5.
    let qz = Quantizer::train(&[-1.0, 5.0, 3.0, 5.0, 0.5, 5.0], 2).unwrap();
    assert_eq!(qz.dim(), 2);
    assert_eq!(qz.offsets(), [-1.0, 5.0]);
    assert_eq!(qz.scales(), [4.0 / 255.0, 0.0]);
    let mut c = [0u8; 2];
    assert_eq!(qz.encode(&[3.0, 5.0], &mut c), (9.0f32 + 25.0).sqrt());
    assert_eq!(c, [255, 0]);
    qz.encode(&[-1.0, 7.0], &mut c);
    assert_eq!(c, [0, 0]);
    // Outside the trained range: clamped.
    qz.encode(&[100.0, -7.0], &mut c);
    assert_eq!(c, [255, 0]);
    qz.encode(&[-100.0, f32::NAN], &mut c);
    assert_eq!(c, [0, 0]);
    let mut x = [0.0; 2];
    qz.decode(&[255, 200], &mut x);
    assert!((x[0] - 3.0).abs() < 1e-6 && x[1] == 5.0, "{x:?}");

    // A shared range: both dimensions use [-1, 5].
    let global = TrainOptions {
        per_dimension: false,
        clip: 0.0,
    };
    let qz = Quantizer::train_with(&[-1.0, 5.0, 3.0, 5.0, 0.5, 5.0], 2, global).unwrap();
    assert_eq!(qz.offsets(), [-1.0, -1.0]);
    assert_eq!(qz.scales(), [6.0 / 255.0; 2]);
}

#[test]
fn clipped_range_ignores_the_tails() {
    let mut v: Vec<f32> = (0..=1000).map(|i| i as f32).collect();
    assert_eq!(clipped_range(&mut v, 0.0), (0.0, 1000.0));
    assert_eq!(clipped_range(&mut v, 0.125), (125.0, 875.0));
    assert_eq!(clipped_range(&mut v, 0.0001), (0.0, 1000.0));
    assert_eq!(clipped_range(&mut [7.0], 0.3), (7.0, 7.0));
}

proptest! {
    /// In-range values come back within half a step; the norm is the original's.
    #[test]
    fn encode_decode_within_half_a_step(seed in any::<u64>(), dim in 1usize..=70) {
        let data = rng_rows(seed, 50, dim);
        let qz = Quantizer::train(&data, dim).unwrap();
        let mut codes = vec![0u8; dim];
        let mut back = vec![0.0f32; dim];
        for x in data.chunks_exact(dim) {
            let norm = qz.encode(x, &mut codes);
            prop_assert_eq!(norm, crate::distance::norm(x));
            qz.decode(&codes, &mut back);
            for d in 0..dim {
                let tol = qz.scales()[d] * 0.5001 + 1e-6;
                prop_assert!((back[d] - x[d]).abs() <= tol, "d={} {} vs {}", d, back[d], x[d]);
            }
        }
    }
}

// ---- serialization ------------------------------------------------------------------------

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn bytes_round_trip_and_layout() {
    let data = rng_rows(7, 40, 13);
    let qz = Quantizer::train(&data, 13).unwrap();
    let bytes = qz.to_bytes();
    assert_eq!(bytes.len(), 16 + 8 * 13);
    assert_eq!(&bytes[..4], b"SVQ8");
    assert_eq!(bytes[4], QUANTIZER_FORMAT_VERSION);
    assert_eq!(&bytes[8..12], &13u32.to_le_bytes());
    assert_eq!(&bytes[12..16], &qz.offsets()[0].to_le_bytes());
    assert_eq!(Quantizer::from_bytes(&bytes).unwrap(), qz);
}

#[test]
fn damaged_bytes_are_errors() {
    let qz = Quantizer::train(&rng_rows(8, 20, 5), 5).unwrap();
    let bytes = qz.to_bytes();
    for len in 0..bytes.len() {
        let err = Quantizer::from_bytes(&bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "len {len}: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Quantizer::from_bytes(&longer),
        Err(Error::Corrupt(_))
    ));
    // Every single-byte change is caught (by a field check or the checksum).
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            assert!(Quantizer::from_bytes(&b).is_err(), "byte {i} ^ {flip:#x}");
        }
    }
    // A newer version is reported as such.
    let mut newer = bytes.clone();
    newer[4] = QUANTIZER_FORMAT_VERSION + 1;
    assert!(matches!(
        Quantizer::from_bytes(&newer),
        Err(Error::UnsupportedFormat {
            found: 2,
            supported: 1
        })
    ));
    // A negative scale with a valid checksum is still refused.
    let mut neg = bytes[..bytes.len() - 4].to_vec();
    neg[12 + 4 * 5..12 + 4 * 6].copy_from_slice(&(-1.0f32).to_le_bytes());
    let crc = crc32(&neg);
    neg.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        Quantizer::from_bytes(&neg),
        Err(Error::Corrupt(_))
    ));
    // Finite but huge: codes whose values pass the largest norm a vector may have (scores
    // would be infinite or NaN).
    let with = |at: usize, x: f32| {
        let mut b = bytes[..bytes.len() - 4].to_vec();
        b[12 + 4 * at..16 + 4 * at].copy_from_slice(&x.to_le_bytes());
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        Quantizer::from_bytes(&b)
    };
    for (at, x) in [(5, 1e30f32), (5, 4e15), (0, 3e38), (0, -2e18)] {
        assert!(matches!(with(at, x), Err(Error::Corrupt(_))), "{at} {x}");
    }
    // Within it: accepted.
    assert!(with(5, 1e15).is_ok());
}

proptest! {
    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Quantizer::from_bytes(&bytes);
        let mut framed = b"SVQ8\x01\x01\x00\x00".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = Quantizer::from_bytes(&framed);
    }
}

// ---- query preparation and scan -----------------------------------------------------------

#[test]
fn prepare_refuses_bad_queries() {
    let qz = Quantizer::train(&rng_rows(9, 10, 4), 4).unwrap();
    assert!(matches!(
        PreparedQuery::new(&qz, &[1.0; 3], Metric::Dot),
        Err(Error::DimensionMismatch {
            expected: 4,
            got: 3
        })
    ));
    assert!(matches!(
        PreparedQuery::new(&qz, &[0.0; 4], Metric::Cosine),
        Err(Error::ZeroVector)
    ));
    assert!(matches!(
        PreparedQuery::new(&qz, &[0.0, f32::NAN, 0.0, 0.0], Metric::L2),
        Err(Error::NonFinite { index: 1, .. })
    ));
    // A zero query is fine for dot and L2: every weight is 0.
    let p = PreparedQuery::new(&qz, &[0.0; 4], Metric::L2).unwrap();
    assert_eq!(p.weights(), [0; 4]);
    assert_eq!(p.score(0, 2.0), -4.0);
}

/// Exact score of `x` for `q`, larger is better (as [`PreparedQuery::score`] estimates it).
fn exact_score(metric: Metric, q: &[f32], x: &[f32]) -> f32 {
    let dot: f64 = q
        .iter()
        .zip(x)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let n = |v: &[f32]| v.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>();
    (match metric {
        Metric::Dot => dot,
        Metric::Cosine => dot / (n(q) * n(x)).sqrt(),
        Metric::L2 => -(n(q) - 2.0 * dot + n(x)),
    }) as f32
}

proptest! {
    /// The approximate score is within the quantization error of the exact one: each code is
    /// off by at most half a step, and each weight by half a weight step.
    #[test]
    fn approximate_scores_are_close(seed in any::<u64>(), dim in 1usize..=300) {
        let data = rng_rows(seed, 20, dim);
        let qz = Quantizer::train(&data, dim).unwrap();
        let (codes, norms) = encode_all(&qz, &data);
        let q = SeededRng(seed ^ 0xABCD).vec(dim);
        for metric in [Metric::Dot, Metric::Cosine, Metric::L2] {
            let Ok(p) = PreparedQuery::new(&qz, &q, metric) else { continue };
            for r in 0..20 {
                let x = &data[r * dim..(r + 1) * dim];
                let sum = (Int8Kernels::best().dot)(p.weights(), &codes[r * dim..(r + 1) * dim]);
                let got = p.score(sum, norms[r]);
                let want = exact_score(metric, &q, x);
                // q·x is off by at most Σ|q_d|·scale_d/2 (each code within half a step) plus
                // 255·dim·δ/2 (each weight within half a weight step δ, times a code ≤ 255).
                let qn = crate::distance::norm(&q);
                let delta = match metric {
                    Metric::Dot => p.slope,
                    Metric::Cosine => p.slope * qn,
                    Metric::L2 => p.slope / 2.0,
                };
                let code_err: f32 = q.iter().zip(qz.scales()).map(|(a, s)| a.abs() * s).sum();
                let dot_err = 0.5 * code_err + 255.0 * dim as f32 * delta / 2.0;
                let tol = match metric {
                    Metric::Dot => dot_err,
                    Metric::Cosine => dot_err / (qn * norms[r]),
                    Metric::L2 => 2.0 * dot_err,
                };
                prop_assert!((got - want).abs() <= tol * 1.01 + 1e-3,
                    "{metric}: {got} vs {want} (tol {tol})");
            }
        }
    }

    /// The scan keeps the best `k` by approximate score with the smaller row winning ties,
    /// identically on every ISA and however the rows are offered.
    #[test]
    fn scan_matches_brute_force(seed in any::<u64>(), dim in 1usize..=100, n in 0usize..=1200,
                                k in 0usize..=40, coarse in any::<bool>()) {
        let mut data = rng_rows(seed, n, dim);
        if coarse {
            // Few distinct values: many exact ties.
            data.iter_mut().for_each(|v| *v = (*v * 2.0).round());
        }
        let qz = match Quantizer::train(&data, dim) {
            Ok(qz) => qz,
            Err(_) => Quantizer::train(&vec![0.0; dim], dim).unwrap(),
        };
        let (codes, norms) = encode_all(&qz, &data);
        let q = SeededRng(!seed).vec(dim);
        for metric in [Metric::Dot, Metric::Cosine, Metric::L2] {
            let Ok(p) = PreparedQuery::new(&qz, &q, metric) else { continue };
            let scalar = Int8Kernels::for_isa(Int8Isa::Scalar).unwrap();
            let mut want: Vec<ScanHit> = (0..n)
                .map(|r| {
                    let sum = (scalar.dot)(p.weights(), &codes[r * dim..(r + 1) * dim]);
                    ScanHit { row: r as u32, score: p.score(sum, norms[r]) }
                })
                .collect();
            want.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
            want.truncate(k);
            for kernels in Int8Kernels::available() {
                prop_assert_eq!(&scan(kernels, &p, &codes, &norms, k), &want, "{}", kernels.isa);
                // The same rows offered in two pieces, the second one row at a time, backwards.
                let mut s = Scanner::new(kernels, &p, k);
                let half = n / 2;
                s.scan_rows(&codes[..half * dim], &norms[..half], 0);
                for r in (half..n).rev() {
                    s.scan_row(&codes[r * dim..(r + 1) * dim], norms[r], r as u32);
                }
                prop_assert_eq!(&s.into_hits(), &want, "{} pieces", kernels.isa);
            }
        }
    }
}

// ---- real data ----------------------------------------------------------------------------

mod real;
