//! The one query type: a `Query` runs the same search through a shard or a manager as the
//! direct calls, and its mode and scope rules hold.

use serde_json::json;
use sqlite_vector::{
    Error, HybridParams, ManagerOptions, Metric, Mode, NewItem, Profile, Query, Scope,
    SearchParams, ShardManager,
};

use crate::random_vectors;

#[test]
fn queries_equal_the_direct_searches() {
    let dir = tempfile::tempdir().unwrap();
    let m = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
    let profile = Profile::new(8, Metric::L2);
    let v = random_vectors(60, 8, 11);
    for (s, name) in ["team/a", "team/b"].iter().enumerate() {
        let shard = m.create(name, &profile).unwrap();
        let items = (0..30)
            .map(|i| {
                NewItem::new(v[s * 30 + i].clone())
                    .with_id(format!("{name}-{i}"))
                    .with_text(format!("doc {i} about topic{}", i % 3))
                    .with_metadata(json!({"i": i}))
            })
            .collect();
        shard.insert_batch(items).unwrap();
    }
    let shard = m.open_shard("team/a").unwrap();
    let params = SearchParams::k(5).with_filter(r#"{"i": {"$lt": 20}}"#.parse().unwrap());
    let q = &v[3];

    let direct = shard.search(q, &params).unwrap();
    let via = shard
        .query(&Query::vector(q.clone()).with_params(params.clone()))
        .unwrap();
    assert_eq!(via.mode, Mode::Vector);
    assert!(!via.higher_is_better, "l2 distances: smaller is better");
    assert_eq!(
        via.hits.iter().map(|h| h.hit.clone()).collect::<Vec<_>>(),
        direct
    );
    assert!(via.hits.iter().all(|h| h.shard.is_none()));

    let direct = shard.search_text("topic1", &params).unwrap();
    let via = shard
        .query(&Query::text("topic1").with_params(params.clone()))
        .unwrap();
    assert_eq!(
        via.hits.iter().map(|h| h.hit.clone()).collect::<Vec<_>>(),
        direct
    );
    assert!(via.higher_is_better);

    let fusion = HybridParams {
        rrf_k: 10.0,
        ..HybridParams::default()
    };
    let direct = shard.search_hybrid(q, "topic2", &params, &fusion).unwrap();
    let via = shard
        .query(
            &Query::hybrid(q.clone(), "topic2")
                .with_params(params.clone())
                .with_fusion(fusion),
        )
        .unwrap();
    assert_eq!(
        via.hits.iter().map(|h| h.hit.clone()).collect::<Vec<_>>(),
        direct
    );

    // Across shards: a prefix, names (with an unknown one reported), one shard.
    let across = m
        .query(&Query::vector(q.clone()).with_scope(Scope::Prefix("team/".into())))
        .unwrap();
    let direct = m
        .search_prefix("team/", q, &SearchParams::default())
        .unwrap();
    assert_eq!(
        across
            .hits
            .iter()
            .map(|h| (h.shard.clone().unwrap(), h.hit.id.clone()))
            .collect::<Vec<_>>(),
        direct
            .hits
            .iter()
            .map(|h| (h.shard.clone(), h.hit.id.clone()))
            .collect::<Vec<_>>()
    );
    let names = m
        .query(
            &Query::text("topic0")
                .with_scope(Scope::Names(vec!["team/b".into(), "team/nope".into()])),
        )
        .unwrap();
    assert!(names
        .hits
        .iter()
        .all(|h| h.shard.as_deref() == Some("team/b")));
    assert_eq!(names.failures.len(), 1);
    assert_eq!(names.failures[0].shard, "team/nope");
    let one = m
        .query(&Query::vector(q.clone()).with_scope(Scope::Shard("team/a".into())))
        .unwrap();
    assert_eq!(one.hits[0].hit.id, "team/a-3");
    assert!(one.hits[0].shard.is_none());

    // Scope and parts are checked.
    for (err, q) in [
        (m.query(&Query::vector(q.clone())).unwrap_err(), "no scope"),
        (
            shard
                .query(&Query::text("x").with_scope(Scope::Prefix("t".into())))
                .unwrap_err(),
            "scope on a shard",
        ),
        (
            shard
                .query(&Query::new(Mode::Hybrid, Some(q.clone()), None))
                .unwrap_err(),
            "hybrid without text",
        ),
        (
            m.query(&Query::vector(q.clone()).with_scope(Scope::Names(vec![])))
                .unwrap_err(),
            "no names",
        ),
    ] {
        assert!(matches!(err, Error::InvalidArgument(_)), "{q}: {err}");
    }
    assert!(matches!(
        m.query(&Query::text("x").with_scope(Scope::Shard("nope".into()))),
        Err(Error::UnknownShard(_))
    ));
}
