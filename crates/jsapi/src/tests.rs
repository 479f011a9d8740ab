use serde_json::{json, Value};

use super::*;

fn db(dim: usize, metric: &str) -> Db {
    Db::in_memory(dim, metric, "{}", None).unwrap()
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn kind<T: fmt::Debug>(r: JsResult<T>) -> &'static str {
    r.unwrap_err().kind()
}

/// Four items on the axes of a 4-d cosine shard, with metadata and text.
fn filled() -> Db {
    let d = db(4, "cosine");
    let rows = [
        (
            [1.0, 0.0, 0.0, 0.0],
            r#"{"id":"a","metadata":{"lang":"rust","n":1},"text":"red apple pie"}"#,
        ),
        (
            [0.0, 1.0, 0.0, 0.0],
            r#"{"id":"b","metadata":{"lang":"go","n":2},"text":"green apple"}"#,
        ),
        (
            [0.0, 0.0, 1.0, 0.0],
            r#"{"id":"c","metadata":{"lang":"rust","n":3},"text":"blue sky"}"#,
        ),
        (
            [0.7, 0.7, 0.0, 0.0],
            r#"{"id":"d","metadata":{"lang":"rust","n":4}}"#,
        ),
    ];
    for (v, item) in rows {
        d.insert(&v, item).unwrap();
    }
    d
}

fn ids(hits_json: &str) -> Vec<String> {
    parse(hits_json)
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn error_kinds_are_the_core_names() {
    let e: JsError = sqlite_vector::Error::NotFound("x".into()).into();
    assert_eq!(e.kind(), "NotFound");
    assert_eq!(e.message(), r#"unknown id: "x""#);
    assert_eq!(e.to_string(), e.message());
    let e: JsError = sqlite_vector::Error::DuplicateId("x".into()).into();
    assert_eq!(e.kind(), "AlreadyExists");
    assert_eq!(JsError::invalid_input("m").kind(), "InvalidInput");
}

#[test]
fn open_options_build_the_profile() {
    let p = profile(
        8,
        "l2",
        r#"{"searchable":["title"],"embedding_model":"m1"}"#,
    )
    .unwrap();
    assert_eq!(p.dimension, 8);
    assert_eq!(p.metric, Metric::L2);
    assert_eq!(p.embedding_model.as_deref(), Some("m1"));
    assert_eq!(p.searchable_fields, vec!["title".to_string()]);
    assert_eq!(profile(8, "dot", "{}").unwrap().metric, Metric::Dot);
    // Bad input: unknown metric, unknown option, malformed JSON, dimension 0.
    assert_eq!(kind(profile(8, "hamming", "{}")), "InvalidInput");
    assert_eq!(kind(profile(8, "cosine", r#"{"dims":3}"#)), "InvalidInput");
    assert_eq!(kind(profile(8, "cosine", "{")), "InvalidInput");
    assert_eq!(kind(profile(0, "cosine", "{}")), "InvalidInput");
    let e = profile(8, "cosine", r#"{"searchable":"title"}"#).unwrap_err();
    assert_eq!(e.kind(), "InvalidInput");
    assert!(e.message().starts_with("invalid open options"), "{e}");
}

#[test]
fn search_options_map_onto_search_params() {
    let p = SearchOptions::parse(
        r#"{"k":3,"filter":{"lang":"rust"},"min_score":0.5,"max_distance":2.5,"metric":"dot","ef_search":99,"exact":true}"#,
    )
    .unwrap()
    .params()
    .unwrap();
    assert_eq!(p.k, 3);
    assert_eq!(p.min_score, Some(0.5));
    assert_eq!(p.max_distance, Some(2.5));
    assert_eq!(p.metric, Some(Metric::Dot));
    assert_eq!(p.ef_search, Some(99));
    assert!(p.exact);
    assert_eq!(
        p.filter,
        Some(Filter::parse(&json!({"lang": "rust"})).unwrap())
    );
    // Defaults are the core's.
    assert_eq!(
        SearchOptions::parse("{}").unwrap().params().unwrap(),
        SearchParams::default()
    );
    // `null` is "not given".
    assert_eq!(
        SearchOptions::parse(r#"{"k":null,"filter":null}"#)
            .unwrap()
            .params()
            .unwrap(),
        SearchParams::default()
    );
}

#[test]
fn bad_search_options_are_invalid_input() {
    for bad in [
        "",
        "[]",
        "{",
        r#"{"ef":10}"#,
        r#"{"topk":3}"#,
        r#"{"k":-1}"#,
        r#"{"k":1.5}"#,
        r#"{"k":"3"}"#,
        r#"{"exact":"yes"}"#,
        r#"{"min_score":"high"}"#,
    ] {
        let e = SearchOptions::parse(bad).unwrap_err();
        assert_eq!(e.kind(), "InvalidInput", "{bad}");
        assert!(
            e.message().starts_with("invalid search options"),
            "{bad}: {e}"
        );
    }
    for bad in [
        r#"{"metric":"hamming"}"#,
        r#"{"filter":{"n":{"$near":1}}}"#,
        r#"{"filter":[1]}"#,
    ] {
        let e = SearchOptions::parse(bad).unwrap().params().unwrap_err();
        assert_eq!(e.kind(), "InvalidInput", "{bad}");
    }
}

#[test]
fn hybrid_options_map_onto_both_parameter_sets() {
    let (p, h) = HybridOptions::parse(
        r#"{"k":4,"filter":{"n":{"$gte":2}},"min_score":-1,"fusion":"rrf","rrf_k":10,"vector_weight":2,"text_weight":0.5,"candidates":50,"ef_search":40,"exact":true,"metric":"dot"}"#,
    )
    .unwrap()
    .params()
    .unwrap();
    assert_eq!(p.k, 4);
    assert_eq!(p.min_score, Some(-1.0));
    assert_eq!(p.ef_search, Some(40));
    assert!(p.exact);
    assert_eq!(p.metric, Some(Metric::Dot));
    assert!(p.filter.is_some());
    assert_eq!(h.fusion, Fusion::Rrf);
    assert_eq!(h.rrf_k, 10.0);
    assert_eq!(h.vector_weight, 2.0);
    assert_eq!(h.text_weight, 0.5);
    assert_eq!(h.candidates, 50);
    let (p, h) = HybridOptions::parse("{}").unwrap().params().unwrap();
    assert_eq!(p, SearchParams::default());
    assert_eq!(h, HybridParams::default());
    assert_eq!(
        kind(HybridOptions::parse(r#"{"alpha":0.5}"#)),
        "InvalidInput"
    );
    assert_eq!(
        kind(
            HybridOptions::parse(r#"{"fusion":"max"}"#)
                .unwrap()
                .params()
        ),
        "InvalidInput"
    );
}

#[test]
fn index_options_map_onto_hnsw_params() {
    let p = IndexOptions::parse(r#"{"m":8,"ef_construction":50,"ef_search":30}"#).unwrap();
    assert_eq!((p.m, p.ef_construction, p.ef_search), (8, 50, 30));
    assert_eq!(IndexOptions::parse("{}").unwrap(), HnswParams::default());
    assert_eq!(kind(IndexOptions::parse(r#"{"M":8}"#)), "InvalidInput");
    assert_eq!(kind(IndexOptions::parse(r#"{"m":-8}"#)), "InvalidInput");
}

#[test]
fn items_pair_json_with_vectors() {
    let item = new_item(&[1.0, 2.0], r#"{"id":"x","metadata":{"a":1},"text":"t"}"#).unwrap();
    assert_eq!(
        item,
        NewItem::new(vec![1.0, 2.0])
            .with_id("x")
            .with_metadata(json!({"a": 1}))
            .with_text("t")
    );
    assert_eq!(new_item(&[1.0], "{}").unwrap(), NewItem::new(vec![1.0]));
    assert_eq!(kind(new_item(&[1.0], r#"{"vector":[1]}"#)), "InvalidInput");
    assert_eq!(kind(new_item(&[1.0], r#"{"meta":{}}"#)), "InvalidInput");
    assert_eq!(kind(new_item(&[1.0], r#"{"id":7}"#)), "InvalidInput");

    let items = new_items(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], r#"[{"id":"a"},{}]"#).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].vector, vec![1.0, 2.0, 3.0]);
    assert_eq!(items[0].id.as_deref(), Some("a"));
    assert_eq!(items[1].vector, vec![4.0, 5.0, 6.0]);
    assert_eq!(new_items(&[], "[]").unwrap(), Vec::new());
    assert_eq!(kind(new_items(&[1.0; 5], "[{},{}]")), "InvalidInput");
    assert_eq!(kind(new_items(&[1.0], "[]")), "InvalidInput");
    assert_eq!(kind(new_items(&[1.0], "{}")), "InvalidInput");

    let u = update(Some(vec![1.0]), r#"{"metadata":{"b":2},"text":"new"}"#).unwrap();
    assert_eq!(u.vector, Some(vec![1.0]));
    assert_eq!(u.metadata, Some(json!({"b": 2})));
    assert_eq!(u.text.as_deref(), Some("new"));
    assert_eq!(kind(update(None, r#"{"id":"x"}"#)), "InvalidInput");
}

#[test]
fn insert_get_upsert_update_delete() {
    let d = db(3, "l2");
    assert_eq!(d.dim().unwrap(), 3);
    let id = d
        .insert(
            &[1.0, 2.0, 3.0],
            r#"{"id":"a","metadata":{"x":1},"text":"hi"}"#,
        )
        .unwrap();
    assert_eq!(id, "a");
    let got = parse(&d.get("a").unwrap());
    assert_eq!(
        got,
        json!({"id": "a", "metadata": {"x": 1}, "text": "hi", "vector": [1.0, 2.0, 3.0]})
    );
    // Generated ids: 16 hex digits.
    let gen = d.insert(&[0.5, 0.5, 0.5], "{}").unwrap();
    assert_eq!(gen.len(), 16);
    assert!(gen.chars().all(|c| c.is_ascii_hexdigit()), "{gen}");
    assert_eq!(parse(&d.get(&gen).unwrap())["text"], Value::Null);
    assert_eq!(parse(&d.get(&gen).unwrap())["metadata"], json!({}));
    // Duplicate id, then upsert replaces.
    assert_eq!(kind(d.insert(&[0.0; 3], r#"{"id":"a"}"#)), "AlreadyExists");
    d.upsert(&[3.0, 2.0, 1.0], r#"{"id":"a","text":"again"}"#)
        .unwrap();
    let got = parse(&d.get("a").unwrap());
    assert_eq!(got["vector"], json!([3.0, 2.0, 1.0]));
    assert_eq!(got["text"], "again");
    assert_eq!(got["metadata"], json!({}));
    // Update: metadata only, then vector only.
    d.update("a", None, r#"{"metadata":{"y":2}}"#).unwrap();
    d.update("a", Some(vec![9.0, 9.0, 9.0]), "{}").unwrap();
    let got = parse(&d.get("a").unwrap());
    assert_eq!(got["metadata"], json!({"y": 2}));
    assert_eq!(got["vector"], json!([9.0, 9.0, 9.0]));
    assert_eq!(got["text"], "again");
    assert_eq!(kind(d.update("a", None, "{}")), "InvalidInput");
    assert_eq!(kind(d.update("zz", None, r#"{"text":"t"}"#)), "NotFound");
    assert_eq!(kind(d.update("a", Some(vec![1.0]), "{}")), "InvalidInput");
    // Delete.
    d.delete("a").unwrap();
    assert_eq!(kind(d.get("a")), "NotFound");
    assert_eq!(kind(d.delete("a")), "NotFound");
    let stats = parse(&d.stats().unwrap());
    assert_eq!(stats["count"], 1);
    assert_eq!(stats["tombstones"], 1);
}

#[test]
fn bad_vectors_ids_and_metadata_are_the_cores_errors() {
    let d = db(3, "cosine");
    let e = d.insert(&[1.0, 2.0], "{}").unwrap_err();
    assert_eq!(e.kind(), "InvalidInput");
    assert_eq!(e.message(), "dimension mismatch: shard has 3, got 2");
    assert_eq!(kind(d.insert(&[1.0, f32::NAN, 0.0], "{}")), "InvalidInput");
    assert_eq!(
        kind(d.insert(&[1.0, f32::INFINITY, 0.0], "{}")),
        "InvalidInput"
    );
    assert_eq!(kind(d.insert(&[0.0, 0.0, 0.0], "{}")), "InvalidInput");
    assert_eq!(
        kind(d.insert(&[1.0, 0.0, 0.0], r#"{"id":""}"#)),
        "InvalidInput"
    );
    assert_eq!(
        kind(d.insert(&[1.0, 0.0, 0.0], r#"{"metadata":[1]}"#)),
        "InvalidInput"
    );
    assert_eq!(kind(d.insert(&[1.0, 0.0, 0.0], "not json")), "InvalidInput");
    assert_eq!(kind(d.search(&[1.0, 0.0], "{}")), "InvalidInput");
    assert_eq!(kind(d.search(&[f32::NAN, 0.0, 0.0], "{}")), "InvalidInput");
    assert_eq!(parse(&d.stats().unwrap())["count"], 0);
}

#[test]
fn batches_are_all_or_nothing() {
    let d = db(2, "l2");
    let ids = d
        .insert_batch(
            &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            r#"[{"id":"a"},{"id":"b","text":"t"},{}]"#,
        )
        .unwrap();
    let ids: Vec<String> = serde_json::from_str(&ids).unwrap();
    assert_eq!(&ids[..2], ["a", "b"]);
    assert_eq!(ids.len(), 3);
    assert_eq!(parse(&d.get("b").unwrap())["vector"], json!([0.0, 1.0]));
    // A duplicate in the batch: nothing of it is stored.
    assert_eq!(
        kind(d.insert_batch(&[5.0, 5.0, 6.0, 6.0], r#"[{"id":"new"},{"id":"a"}]"#)),
        "AlreadyExists"
    );
    assert_eq!(kind(d.get("new")), "NotFound");
    // Rows of the wrong dimension (the core's check), a ragged buffer (ours).
    assert_eq!(kind(d.insert_batch(&[1.0; 6], "[{},{}]")), "InvalidInput");
    assert_eq!(kind(d.insert_batch(&[1.0; 5], "[{},{}]")), "InvalidInput");
    assert_eq!(d.insert_batch(&[], "[]").unwrap(), "[]");
    assert_eq!(parse(&d.stats().unwrap())["count"], 3);
}

#[test]
fn search_returns_hits_with_the_mcp_field_names() {
    let d = filled();
    let hits = parse(&d.search(&[1.0, 0.1, 0.0, 0.0], r#"{"k":2}"#).unwrap());
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["id"], "a");
    assert_eq!(hits[1]["id"], "d");
    assert_eq!(hits[0]["metadata"], json!({"lang": "rust", "n": 1}));
    assert_eq!(hits[0]["text"], "red apple pie");
    assert_eq!(hits[1]["text"], Value::Null);
    let s0 = hits[0]["score"].as_f64().unwrap();
    assert!((s0 - 1.0 / (1.01f64).sqrt()).abs() < 1e-6, "{s0}");
    assert!(hits[0].get("vector_score").is_none());
    // k defaults to 10.
    assert_eq!(
        ids(&d.search(&[1.0, 0.0, 0.0, 0.0], "{}").unwrap()).len(),
        4
    );
}

#[test]
fn filter_min_score_and_k_are_the_cores() {
    let d = filled();
    let q = [1.0, 0.0, 0.0, 0.0];
    assert_eq!(
        ids(&d.search(&q, r#"{"filter":{"lang":"go"}}"#).unwrap()),
        ["b"]
    );
    assert_eq!(
        ids(&d.search(&q, r#"{"filter":{"n":{"$gte":3}}}"#).unwrap()),
        ["d", "c"]
    );
    assert_eq!(
        ids(&d.search(&q, r#"{"min_score":0.5}"#).unwrap()),
        ["a", "d"]
    );
    assert_eq!(kind(d.search(&q, r#"{"k":0}"#)), "InvalidInput");
    assert_eq!(kind(d.search(&q, r#"{"k":10001}"#)), "InvalidInput");
    // min_score with an L2 metric override is refused by the core.
    assert_eq!(
        kind(d.search(&q, r#"{"metric":"l2","min_score":0.5}"#)),
        "InvalidInput"
    );
    assert_eq!(
        ids(&d
            .search(&q, r#"{"metric":"l2","max_distance":0.5}"#)
            .unwrap()),
        ["a"]
    );
    assert_eq!(
        kind(d.search(&q, r#"{"filter":{"$bogus":1}}"#)),
        "InvalidInput"
    );
    assert_eq!(kind(d.search(&q, r#"{"ef_search":0}"#)), "InvalidInput");
}

#[test]
fn text_and_hybrid_search() {
    let d = filled();
    assert_eq!(ids(&d.search_text("apple", "{}").unwrap()), ["b", "a"]);
    assert_eq!(
        ids(&d
            .search_text("apple", r#"{"filter":{"lang":"rust"}}"#)
            .unwrap()),
        ["a"]
    );
    assert_eq!(kind(d.search_text("!!!", "{}")), "InvalidInput");
    let hits = parse(
        &d.search_hybrid(&[1.0, 0.0, 0.0, 0.0], "apple", r#"{"k":3}"#)
            .unwrap(),
    );
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    // `a` is first in both rankings.
    assert_eq!(hits[0]["id"], "a");
    assert!(hits[0]["vector_score"].as_f64().unwrap() > 0.99);
    assert!(hits[0]["text_score"].as_f64().unwrap() > 0.0);
    // An item without the words has a null text score.
    let d_hit = hits.iter().find(|h| h["id"] == "d").unwrap();
    assert_eq!(d_hit["text_score"], Value::Null);
    let rrf = parse(
        &d.search_hybrid(&[1.0, 0.0, 0.0, 0.0], "apple", r#"{"fusion":"rrf","k":1}"#)
            .unwrap(),
    );
    assert_eq!(rrf[0]["id"], "a");
    assert_eq!(
        kind(d.search_hybrid(&[1.0, 0.0, 0.0, 0.0], "apple", r#"{"max_distance":1}"#)),
        "InvalidInput"
    );
    assert_eq!(
        kind(d.search_hybrid(
            &[1.0, 0.0, 0.0, 0.0],
            "apple",
            r#"{"vector_weight":0,"text_weight":0}"#
        )),
        "InvalidInput"
    );
    assert_eq!(
        kind(d.search_hybrid(&[1.0, 0.0, 0.0, 0.0], "apple", r#"{"candidates":0}"#)),
        "InvalidInput"
    );
}

#[test]
fn index_and_stats() {
    let d = db(8, "cosine");
    let mut flat = Vec::new();
    let mut items = Vec::new();
    let mut x = 1u32;
    for i in 0..5000 {
        for _ in 0..8 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            flat.push((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5);
        }
        items.push(json!({"id": format!("i{i}")}));
    }
    d.insert_batch(&flat, &json!(items).to_string()).unwrap();
    let before = parse(&d.stats().unwrap());
    assert_eq!(before["count"], 5000);
    assert_eq!(before["dim"], 8);
    assert_eq!(before["metric"], "cosine");
    assert_eq!(before["durability"], "memory");
    assert_eq!(before["index"], Value::Null);
    assert!(before["search_method"]
        .as_str()
        .unwrap()
        .starts_with("exact"));
    d.create_index(r#"{"m":8,"ef_construction":64,"ef_search":80}"#)
        .unwrap();
    let after = parse(&d.stats().unwrap());
    assert!(
        after["search_method"].as_str().unwrap().starts_with("hnsw"),
        "{after}"
    );
    assert_eq!(after["index"]["m"], 8);
    assert_eq!(after["index"]["ef_search"], 80);
    assert_eq!(after["index"]["nodes"], 5000);
    assert_eq!(kind(d.create_index("{}")), "AlreadyExists");
    // The graph search finds an item's own vector first.
    let q = &flat[8 * 1234..8 * 1235];
    assert_eq!(ids(&d.search(q, r#"{"k":1}"#).unwrap()), ["i1234"]);
    assert_eq!(
        ids(&d.search(q, r#"{"k":1,"exact":true}"#).unwrap()),
        ["i1234"]
    );
    let fresh = db(8, "cosine");
    assert_eq!(kind(fresh.create_index(r#"{"m":1}"#)), "InvalidInput");
    assert_eq!(
        kind(fresh.create_index(r#"{"ef_construction":"big"}"#)),
        "InvalidInput"
    );
}

#[test]
fn a_closed_db_refuses_every_call() {
    let mut d = filled();
    assert!(!d.is_closed());
    d.close();
    assert!(d.is_closed());
    d.close();
    assert_eq!(kind(d.stats()), "InvalidInput");
    assert_eq!(kind(d.get("a")), "InvalidInput");
    assert_eq!(kind(d.insert(&[1.0, 0.0, 0.0, 0.0], "{}")), "InvalidInput");
    assert_eq!(kind(d.search(&[1.0, 0.0, 0.0, 0.0], "{}")), "InvalidInput");
    assert_eq!(d.stats().unwrap_err().message(), "the database is closed");
}

#[test]
fn file_store_creates_reopens_and_checks_its_profile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    assert_eq!(
        kind(Db::open_file(&path, "{}", None, false)),
        "InvalidInput"
    );
    assert_eq!(
        kind(Db::open_file(&path, r#"{"dim":4,"shape":1}"#, None, false)),
        "InvalidInput"
    );
    let mut d = Db::open_file(
        &path,
        r#"{"dim":4,"metric":"l2","searchable":["lang"]}"#,
        None,
        false,
    )
    .unwrap();
    d.insert(
        &[1.0, 0.0, 0.0, 0.0],
        r#"{"id":"a","metadata":{"lang":"rust"}}"#,
    )
    .unwrap();
    d.close();
    // Reopened without a profile: the store's own; with a different one: ProfileMismatch.
    let d = Db::open_file(&path, "{}", None, true).unwrap();
    assert_eq!(d.dim().unwrap(), 4);
    assert_eq!(parse(&d.stats().unwrap())["metric"], "l2");
    assert_eq!(parse(&d.search_text("rust", "{}").unwrap())[0]["id"], "a");
    drop(d);
    assert_eq!(
        kind(Db::open_file(&path, r#"{"dim":5}"#, None, true)),
        "ProfileMismatch"
    );
    assert_eq!(
        kind(Db::open_file(&path, r#"{"metric":"dot"}"#, None, true)),
        "ProfileMismatch"
    );
    assert_eq!(
        kind(Db::open_file(&path, r#"{"metric":"hamming"}"#, None, true)),
        "InvalidInput"
    );
    // A file that is not a shard.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    assert_eq!(kind(Db::open_file(&junk, "{}", None, true)), "NotAShard");
}

#[test]
fn export_and_import_round_trip() {
    let d = filled();
    let image = d.export().unwrap();
    let copy = Db::from_image(&image, r#"{"dim":4,"metric":"cosine"}"#, None).unwrap();
    assert_eq!(copy.stats().unwrap(), d.stats().unwrap());
    let q = [0.9, 0.1, 0.0, 0.0];
    assert_eq!(copy.search(&q, "{}").unwrap(), d.search(&q, "{}").unwrap());
    assert_eq!(
        kind(Db::from_image(b"not a shard", "{}", None)),
        "NotAShard"
    );
    assert_eq!(
        kind(Db::from_image(&image[..image.len() / 3], "{}", None)),
        "Corrupt"
    );
    assert_eq!(
        kind(Db::from_image(&image, r#"{"dim":3}"#, None)),
        "ProfileMismatch"
    );
    assert_eq!(
        kind(Db::from_image(&image, r#"{"metric":"l2"}"#, None)),
        "ProfileMismatch"
    );
    assert_eq!(
        kind(Db::from_image(&image, r#"{"k":1}"#, None)),
        "InvalidInput"
    );
    let mut closed = filled();
    closed.close();
    assert_eq!(kind(closed.export()), "InvalidInput");
}

/// The option objects' table-driven parsing gives the messages that serde's derives gave
/// (`deny_unknown_fields`, `Option` fields), error positions included: derived mirrors of the
/// old structs are the reference.
#[test]
fn option_errors_are_the_derives_messages() {
    mod derived {
        use serde_json::Value;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct SearchOptions {
            k: Option<usize>,
            filter: Option<Value>,
            min_score: Option<f32>,
            max_distance: Option<f32>,
            metric: Option<String>,
            ef_search: Option<usize>,
            exact: Option<bool>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct StoreOptionsJson {
            dim: Option<usize>,
            metric: Option<String>,
            searchable: Option<Vec<String>>,
            embedding_model: Option<String>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        pub struct ItemJson {
            id: Option<String>,
            metadata: Option<Value>,
            text: Option<String>,
        }
    }
    fn want<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Option<String> {
        serde_json::from_str::<T>(json)
            .err()
            .map(|e| format!("invalid {what}: {e}"))
    }
    fn got<T>(r: JsResult<T>) -> Option<String> {
        r.err().map(|e| e.message().to_owned())
    }
    let search = [
        "",
        " ",
        "{",
        "{}",
        "{} x",
        "null",
        "3",
        "\"k\"",
        r#"{"ef":10}"#,
        r#"{"k":3,"k":4}"#,
        r#"{"k":null,"k":4}"#,
        r#"{"k":-1}"#,
        r#"{"k":1.5}"#,
        r#"{"k":"3"}"#,
        r#"{"k":true}"#,
        r#"{"k":[3]}"#,
        r#"{"k":{"n":3}}"#,
        r#"{"k":99999999999999999999}"#,
        "{\n  \"k\": 3,\n  \"exact\": \"yes\"\n}",
        r#"{"min_score":"high"}"#,
        r#"{"min_score":1e400}"#,
        r#"{"metric":3}"#,
        r#"{"filter":{"a":1},"metric":null,"ef_search":-3}"#,
        r#"{"k\u0000":1}"#,
    ];
    for json in search {
        assert_eq!(
            got(SearchOptions::parse(json)),
            want::<derived::SearchOptions>("search options", json),
            "{json}"
        );
    }
    for json in [
        r#"{"dim":3,"searchable":["a",1]}"#,
        r#"{"dim":3,"searchable":"a"}"#,
        r#"{"dims":3}"#,
        r#"{"dim":3,"metric":"l2","embedding_model":"m","searchable":[]}"#,
    ] {
        assert_eq!(
            got(StoreOptionsJson::parse(json)),
            want::<derived::StoreOptionsJson>("open options", json),
            "{json}"
        );
    }
    for json in [r#"{"id":1}"#, r#"{"meta":{}}"#, r#"{"text":"t","id":"a"}"#] {
        assert_eq!(
            got(new_item(&[1.0], json)),
            want::<derived::ItemJson>("item", json),
            "{json}"
        );
    }
    let items = "items (a JSON array of items)";
    for json in [
        "[]",
        "{}",
        "[{}, {\"idd\": 1}]",
        "[{}, 3]",
        "[{}] {}",
        "[{},",
    ] {
        assert_eq!(
            got(new_items(&[], json)).filter(|m| m.starts_with("invalid")),
            want::<Vec<derived::ItemJson>>(items, json),
            "{json}"
        );
    }
    // The one difference: serde's derive read an array as the fields in order.
    let e = SearchOptions::parse("[]").unwrap_err();
    assert_eq!(
        e.message(),
        "invalid search options: invalid type: sequence, expected struct SearchOptions at line 1 column 0"
    );
}
