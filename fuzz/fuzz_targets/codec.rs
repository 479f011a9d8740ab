//! The vector BLOB codec: a BLOB read back from a shard (or handed to the SQL functions) is
//! decoded against a dimension. The first two bytes choose the dimension (up to
//! `MAX_DIMENSION`, as a shard's profile allows), the rest is the BLOB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlite_vector::codec;

fuzz_target!(|data: &[u8]| {
    let Some((head, blob)) = data.split_first_chunk::<2>() else {
        return;
    };
    let dim = usize::from(u16::from_le_bytes(*head)) % (sqlite_vector::MAX_DIMENSION + 1);

    match codec::decode(blob, dim) {
        Ok(v) => {
            assert_eq!(blob.len(), dim * 4);
            assert_eq!(v.len(), dim);
            // Bit-exact round trip, NaN payloads included.
            assert_eq!(codec::encode(&v), blob);
            assert_eq!(&*codec::as_blob(&v), blob);
            // Validation decides, never panics; accepted vectors have a finite norm.
            if codec::validate(&v, Some(dim)).is_ok() {
                assert!(v.iter().all(|x| x.is_finite()));
                assert!(sqlite_vector::distance::norm(&v).is_finite());
            }
        }
        Err(e) => {
            assert_ne!(blob.len(), dim * 4, "{e}");
            assert!(matches!(e, sqlite_vector::Error::Corrupt(_)), "{e:?}");
        }
    }

    // `decode_into` reuses a buffer and leaves it cleared-and-filled only on success.
    let mut buf = vec![1.0f32; 3];
    if codec::decode_into(blob, dim, &mut buf).is_ok() {
        assert_eq!(buf.len(), dim);
    }

    match codec::decode_any(blob) {
        Ok(v) => {
            assert_eq!(v.len() * 4, blob.len());
            assert_eq!(codec::encode(&v), blob);
        }
        Err(_) => assert!(blob.len() % 4 != 0),
    }
});
