//! Sync frames as a peer sends them: the first byte chooses the shard dimension (1..=16), the
//! rest is the byte stream, fed to the frame decoder in two pieces. Every decoded frame
//! re-encodes to bytes that decode to the same frame; a chunk's body is opened against the
//! dimension, and the changes it yields go through `apply_remote` in an in-memory shard (a
//! refused change leaves nothing behind).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlite_vector::{Metric, Profile, Shard};
use sqlite_vector_sync::proto::frame::{open_chunk, Frame};
use sqlite_vector_sync::proto::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&d, stream)) = data.split_first() else {
        return;
    };
    let dim = 1 + u32::from(d % 16);
    let cut = stream.len() / 3;
    let mut dec = Decoder::new();
    let mut frames = Vec::new();
    'feed: for piece in [&stream[..cut], &stream[cut..]] {
        dec.push(piece);
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let shard = Shard::in_memory(&Profile::new(dim as usize, Metric::L2)).unwrap();
    for f in frames {
        let mut bytes = Vec::new();
        if f.encode(&mut bytes).is_ok() {
            let mut again = Decoder::new();
            again.push(&bytes);
            let back = again.next_frame().expect("a re-encoded frame decodes");
            assert_eq!(back.as_ref(), Some(&f));
        }
        if let Frame::Chunk(c) = &f {
            if let Ok(changes) = open_chunk(c, dim) {
                assert_eq!(changes.len(), c.count as usize);
                let before = shard.len();
                let r = shard.transaction(|tx| {
                    for ch in &changes {
                        tx.apply_remote(ch)?;
                    }
                    Ok(())
                });
                if r.is_err() {
                    assert_eq!(shard.len(), before, "a refused chunk stored nothing");
                }
            }
        }
    }
});
