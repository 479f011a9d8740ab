//! The `.npy` reader of `crates/dataset` (`import --npy`, `search --npy`, the benchmarks).
//! Every size must be bounded by the input's length: no panic, no allocation beyond it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlite_vector_dataset::{read_f32_bytes, read_i32_bytes};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = read_f32_bytes(data, "fuzz.npy") {
        assert_eq!(m.data.len(), m.rows * m.cols);
        assert!(m.data.len() * 4 <= data.len());
        // A shape (n, 0) is accepted with any n: look at the first rows only.
        for r in 0..m.rows.min(64) {
            assert_eq!(m.row(r).len(), m.cols);
        }
    }
    if let Ok(m) = read_i32_bytes(data, "fuzz.npy") {
        assert_eq!(m.data.len(), m.rows * m.cols);
        assert!(m.data.len() * 4 <= data.len());
    }
});
