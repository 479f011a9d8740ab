//! The stored int8 quantizer (`Quantizer::from_bytes`), read back from a shard's `meta` on
//! open. First byte: 0 = the rest is the record as stored; 1 = the rest is a record without
//! its CRC-32, which the target appends (so the fuzzer gets past the checksum and reaches the
//! field checks). An accepted quantizer must re-encode to the same bytes and be usable: encode,
//! decode, prepare queries for every metric and scan codes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlite_vector::distance::int8::Int8Kernels;
use sqlite_vector::quant::{scan, PreparedQuery, Quantizer};
use sqlite_vector::Metric;

/// CRC-32 (IEEE, reflected, as zlib), written here independently of the crate's.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        let mut b = rest.to_vec();
        b.extend_from_slice(&crc32(rest).to_le_bytes());
        b
    } else {
        rest.to_vec()
    };
    let Ok(q) = Quantizer::from_bytes(&bytes) else {
        return;
    };
    assert_eq!(q.to_bytes(), bytes);
    let dim = q.dim();
    assert!(dim >= 1 && dim <= sqlite_vector::MAX_DIMENSION);

    let rows = 4;
    let vectors: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 31) % 17) as f32 - 8.0)
        .collect();
    let mut codes = vec![0u8; rows * dim];
    let mut norms = Vec::with_capacity(rows);
    for (v, c) in vectors.chunks_exact(dim).zip(codes.chunks_exact_mut(dim)) {
        norms.push(q.encode(v, c));
    }
    let mut back = vec![0f32; dim];
    q.decode(&codes[..dim], &mut back);

    let query: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).cos()).collect();
    for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
        let Ok(prepared) = PreparedQuery::new(&q, &query, metric) else {
            continue;
        };
        assert_eq!(prepared.weights().len(), dim);
        assert!(prepared
            .weights()
            .iter()
            .all(|&w| (-127..=127).contains(&w)));
        let hits = scan(Int8Kernels::best(), &prepared, &codes, &norms, 3);
        assert!(hits.len() <= 3);
        assert!(hits.iter().all(|h| (h.row as usize) < rows));
    }
});
