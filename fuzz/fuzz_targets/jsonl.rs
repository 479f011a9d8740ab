//! One line of a JSONL import (`sqlite-vector import --jsonl`): the line parser the CLI uses,
//! [`sqlite_vector_dataset::jsonl::parse_item`], with the default field names. An item the
//! parser accepts is inserted into a fresh in-memory shard (dimension 3); the shard may refuse
//! it with an error, never panic, and must give back what it stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlite_vector::{Metric, NewItem, Profile, SearchParams, Shard};
use sqlite_vector_dataset::jsonl::{parse_item, ItemFields};

fuzz_target!(|line: &str| {
    let fields = ItemFields::default();
    // Without a vector field required (the `--npy` + `--jsonl` form) only for the parse.
    let _ = parse_item(line, 1, &fields, false);
    let Ok(it) = parse_item(line, 1, &fields, true) else {
        return;
    };
    let item = NewItem {
        id: it.id,
        vector: it.vector,
        metadata: it.metadata,
        text: it.text,
    };
    let shard = Shard::in_memory(&Profile::new(3, Metric::Cosine)).expect("in-memory shard");
    let text = item.text.clone();
    let Ok(id) = shard.upsert(item) else {
        return;
    };
    let stored = shard
        .get(&id)
        .expect("an acknowledged item can be read back");
    assert_eq!(stored.id, id);
    assert_eq!(stored.text, text);
    assert!(stored.metadata.is_object(), "{:?}", stored.metadata);
    let hits = shard
        .search(&[1.0, 0.5, -0.25], &SearchParams::k(3))
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].score.is_finite(), "{hits:?}");
});
