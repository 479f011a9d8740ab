//! The persisted HNSW graph: an 80-byte header and node records, read back from a shard's
//! `hnsw_state` and `hnsw_nodes` tables on open. Input: the header, then records, each
//! `node: u16 LE, len: u16 LE, record bytes`. A graph the decoders accept must be safe to use:
//! it is searched, a node is removed and one inserted, and it is re-encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlite_vector::hnsw::{decode_node, Hnsw, SliceSource, HEADER_LEN};

/// Largest graph (ids) and dimension the target exercises after a successful load; the id
/// bound of a real graph is its largest rowid, by design (memory grows with it).
const MAX_IDS: u32 = 2048;
const MAX_DIM: usize = 16;

fn load(data: &[u8]) -> Option<Hnsw> {
    let (header, mut rest) = data.split_at_checked(HEADER_LEN)?;
    let mut g = Hnsw::from_header(header).ok()?;
    let m = g.params().m;
    while let Some((head, tail)) = rest.split_first_chunk::<4>() {
        let node = u32::from(u16::from_le_bytes([head[0], head[1]]));
        let len = usize::from(u16::from_le_bytes([head[2], head[3]])).min(tail.len());
        let (record, tail) = tail.split_at(len);
        rest = tail;
        // The standalone decoder and the loader agree on what is well-formed.
        let decoded = decode_node(record, m);
        match g.load_node(node, record) {
            Ok(()) => {
                let r = decoded.expect("loaded a record decode_node refuses");
                assert_eq!(g.level_of(node).is_some(), !r.removed);
            }
            Err(_) => {}
        }
    }
    g.finish_load().ok()?;
    Some(g)
}

fuzz_target!(|data: &[u8]| {
    let Some(mut g) = load(data) else {
        return;
    };
    // The header round-trips.
    let header = g.header();
    assert_eq!(header.len(), HEADER_LEN);
    let again = Hnsw::from_header(&header).expect("own header decodes");
    assert_eq!(again.params(), g.params());
    for node in 0..g.id_bound() {
        if let Some(record) = g.encode_node(node) {
            decode_node(&record, g.params().m).expect("own record decodes");
        }
    }

    let (bound, dim) = (g.id_bound(), g.dim());
    if bound >= MAX_IDS || dim == 0 || dim > MAX_DIM {
        return;
    }
    // Vectors for every id below the bound and one more (to insert), from a fixed pattern.
    let rows = bound as usize + 1;
    let vectors: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let src = SliceSource::new(&vectors, dim);
    let q: Vec<f32> = (0..dim).map(|i| (i as f32).sin()).collect();
    let check = |g: &Hnsw| {
        let hits = g.search(&q, 10, 16, &src, None).expect("search");
        assert!(hits.len() <= 10);
        for (d, id) in &hits {
            assert!(g.contains(*id), "search returned {id}, not in the graph");
            assert!(!d.is_nan());
        }
        let even = |n: u32| n % 2 == 0;
        let hits = g
            .search(&q, 5, 8, &src, Some(&even))
            .expect("filtered search");
        assert!(hits.iter().all(|(_, id)| even(*id)));
    };
    check(&g);
    if let Some(victim) = (0..bound).find(|&n| g.contains(n)) {
        assert!(g.remove(victim, &src));
        check(&g);
    }
    g.insert(bound, &src).expect("insert a new node");
    assert!(g.contains(bound));
    check(&g);
    g.purge_dead_links(&src);
    check(&g);
});
