//! The vector BLOB codec and input validation.
//!
//! A stored vector is exactly `dim * 4` bytes: `dim` IEEE-754 binary32 values, little-endian, no
//! header (ARCHITECTURE rule 5; the same layout as sqlite-vec's float32 vectors, so its SQL
//! functions can read our BLOBs and ours can read theirs). Decoding validates the length, so a
//! BLOB of the wrong size inside a shard is reported as [`Error::Corrupt`] instead of being read
//! out of bounds or silently truncated.

use crate::error::{Error, Result};

/// Checks a vector given by a user: non-empty, of length `dim` (when `dim` is `Some`), and with
/// only finite components.
///
/// # Errors
/// [`Error::EmptyVector`], [`Error::DimensionMismatch`], [`Error::NonFinite`],
/// [`Error::VectorTooLarge`] (norm above [`MAX_NORM`]).
pub fn validate(v: &[f32], dim: Option<usize>) -> Result<()> {
    if v.is_empty() {
        return Err(Error::EmptyVector);
    }
    if let Some(expected) = dim {
        if v.len() != expected {
            return Err(Error::DimensionMismatch {
                expected,
                got: v.len(),
            });
        }
    }
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::NonFinite { index, value });
    }
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > MAX_NORM {
        return Err(Error::VectorTooLarge { norm });
    }
    Ok(())
}

/// Largest Euclidean norm a stored or query vector may have. Two vectors within it have a dot
/// product of at most 1e36 in magnitude and a squared L2 distance of at most 4e36 (Cauchy–Schwarz,
/// and the same for every partial sum a kernel keeps), far below `f32::MAX` ≈ 3.4e38: every
/// score stays finite. Finite components of ≈ 1.8e19 and more would otherwise make norms and
/// distances infinite and scores NaN.
pub const MAX_NORM: f64 = 1e18;

/// Encodes `v` as a BLOB of `v.len() * 4` bytes, little-endian f32.
pub fn encode(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The BLOB bytes of `v` without copying on little-endian targets (a copy via [`encode`] on
/// big-endian ones).
pub fn as_blob(v: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: f32 has no padding and every byte pattern is a valid u8; the length is
        // exactly the f32 slice's size in bytes, and the borrow keeps `v` alive.
        std::borrow::Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
        })
    } else {
        std::borrow::Cow::Owned(encode(v))
    }
}

/// Decodes a BLOB of exactly `dim * 4` bytes into `out` (cleared first).
///
/// # Errors
/// [`Error::Corrupt`] when the length is not `dim * 4`.
pub fn decode_into(blob: &[u8], dim: usize, out: &mut Vec<f32>) -> Result<()> {
    if blob.len() != dim * 4 {
        return Err(Error::Corrupt(format!(
            "vector blob of {} bytes, expected {} ({} × 4)",
            blob.len(),
            dim * 4,
            dim
        )));
    }
    out.clear();
    #[cfg(target_endian = "little")]
    {
        // The stored bytes are already the in-memory representation: one memcpy (the
        // element-wise decode below was 10 % of opening a 100k × 384 shard).
        out.reserve(dim);
        // SAFETY: `out` has capacity for `dim` f32 = `blob.len()` bytes; every bit pattern is
        // a valid f32; the regions cannot overlap (`out` is our own allocation).
        unsafe {
            std::ptr::copy_nonoverlapping(blob.as_ptr(), out.as_mut_ptr().cast::<u8>(), blob.len());
            out.set_len(dim);
        }
    }
    #[cfg(not(target_endian = "little"))]
    out.extend(
        blob.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    Ok(())
}

/// Decodes a BLOB of exactly `dim * 4` bytes into a new vector.
///
/// # Errors
/// [`Error::Corrupt`] when the length is not `dim * 4`.
pub fn decode(blob: &[u8], dim: usize) -> Result<Vec<f32>> {
    let mut v = Vec::with_capacity(dim);
    decode_into(blob, dim, &mut v)?;
    Ok(v)
}

/// Decodes a BLOB of any length that is a multiple of 4 (used by the SQL functions, which know
/// no dimension).
///
/// # Errors
/// [`Error::InvalidArgument`] when the length is not a multiple of 4.
pub fn decode_any(blob: &[u8]) -> Result<Vec<f32>> {
    if !blob.len().is_multiple_of(4) {
        return Err(Error::InvalidArgument(format!(
            "vector blob of {} bytes is not a whole number of f32 values",
            blob.len()
        )));
    }
    let mut v = Vec::with_capacity(blob.len() / 4);
    decode_into(blob, blob.len() / 4, &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_bytes() {
        assert_eq!(encode(&[1.0, -2.0]), vec![0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    }

    #[test]
    fn borrowed_blob_equals_encoding() {
        let v = [1.5f32, -0.0, 3e-39, f32::MAX];
        assert_eq!(&*as_blob(&v), &encode(&v)[..]);
    }

    #[test]
    fn wrong_length_is_corrupt() {
        let blob = encode(&[1.0, 2.0, 3.0]);
        match decode(&blob, 4) {
            Err(Error::Corrupt(msg)) => assert!(msg.contains("12 bytes"), "{msg}"),
            other => panic!("expected corrupt, got {other:?}"),
        }
        assert!(decode(&blob[..11], 3).is_err());
        assert!(decode_any(&blob[..11]).is_err());
    }

    #[test]
    fn validation() {
        assert!(matches!(validate(&[], None), Err(Error::EmptyVector)));
        assert!(matches!(
            validate(&[1.0, 2.0], Some(3)),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2
            })
        ));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            match validate(&[0.0, bad], Some(2)) {
                Err(Error::NonFinite { index: 1, .. }) => {}
                other => panic!("expected non-finite, got {other:?}"),
            }
        }
        validate(&[0.5, -0.5], Some(2)).unwrap();
    }

    proptest! {
        #[test]
        fn round_trip(v in proptest::collection::vec(proptest::num::f32::ANY, 0..600)) {
            let blob = encode(&v);
            prop_assert_eq!(blob.len(), v.len() * 4);
            let back = decode(&blob, v.len()).unwrap();
            // Bit-exact, NaN payloads included.
            let a: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            let b: Vec<u32> = back.iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(a, b);
        }
    }
}
