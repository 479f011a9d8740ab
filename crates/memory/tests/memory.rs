//! The memory layer on real shards with the built-in embedder: the leave-one-out guard, the
//! learning loop, near-duplicate linking, consolidation and its reversal, sessions, context
//! synthesis, concurrent outcomes, and bad input.

use std::sync::Arc;

use sqlite_vector::{ManualClock, Shard};
use sqlite_vector_embed::{Embedder, StaticEmbedder};
use sqlite_vector_memory::{
    synthesize_context, ConsolidateParams, ContextParams, Distilled, Experience, FindParams,
    Memory, MemoryError, Polarity, StoreOptions, PRIOR_WEIGHT,
};

fn embedder() -> Arc<dyn Embedder> {
    Arc::new(StaticEmbedder::builtin().unwrap())
}

fn memory_at(path: &std::path::Path) -> Memory {
    let e = embedder();
    let profile = Memory::profile(e.dimension(), Some(e.model_id()));
    let shard = if path.exists() {
        Shard::open(path).unwrap()
    } else {
        Shard::create(path, &profile).unwrap()
    };
    Memory::new(Arc::new(shard), Some(e))
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(1_800_000_000_000)))
}

fn item(title: &str, description: &str, content: &str) -> Distilled {
    Distilled {
        title: title.into(),
        description: description.into(),
        content: content.into(),
        tags: vec![],
    }
}

fn exp(task: &str, task_id: &str, outcome: Polarity, items: Vec<Distilled>) -> Experience {
    Experience {
        task: task.into(),
        task_id: task_id.into(),
        outcome,
        items,
        task_vector: None,
    }
}

fn store(m: &Memory, e: &Experience) -> Vec<String> {
    m.store_experience(e, StoreOptions::default())
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

fn seed(m: &Memory) -> (Vec<String>, Vec<String>, Vec<String>) {
    let a = store(
        m,
        &exp(
            "Find the cheapest flight from Boston to Denver next Friday",
            "t-flight-1",
            Polarity::Success,
            vec![item(
                "Sort results by price first",
                "Use when a task asks for the cheapest option in a listing",
                "Open the results, sort by price ascending, then read the first row.",
            )],
        ),
    );
    let b = store(
        m,
        &exp(
            "Find the cheapest flight from Chicago to Seattle next Monday",
            "t-flight-2",
            Polarity::Failure,
            vec![item(
                "Do not trust the default ordering of flight results",
                "When the cheapest option is asked, the default order is by relevance",
                "Reading the first row without sorting gave a wrong answer.",
            )],
        ),
    );
    let c = store(
        m,
        &exp(
            "Change the shipping address of my last order",
            "t-order-1",
            Polarity::Success,
            vec![item(
                "Edit the address from the order page",
                "Use for changes to an existing order",
                "Open My Orders, pick the order, press Edit address.",
            )],
        ),
    );
    (a, b, c)
}

#[test]
fn find_patterns_returns_lessons_of_similar_tasks_but_never_the_task_itself() {
    let dir = tempfile::tempdir().unwrap();
    let m = memory_at(&dir.path().join("m.db"));
    let (a, b, c) = seed(&m);
    let mut q = FindParams::new("Find the cheapest flight from Austin to Miami tomorrow");
    q.k = 3;
    let hits = m.find_patterns(&q).unwrap();
    let ids: Vec<&str> = hits.iter().map(|p| p.item.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[..2].contains(&a[0].as_str()) && ids[..2].contains(&b[0].as_str()),
        "{ids:?}"
    );
    assert_eq!(ids[2], c[0]);
    let fail = hits.iter().find(|p| p.item.id == b[0]).unwrap();
    assert_eq!(fail.item.polarity, Polarity::Failure);
    assert!(fail.advice.starts_with("Avoid: "), "{}", fail.advice);
    for p in &hits {
        assert!((p.score - (p.relevance + PRIOR_WEIGHT * (p.prior - 0.5))).abs() < 1e-6);
        assert_eq!(p.prior, 0.5);
    }
    // Leave-one-out: the items of the asking task are never its own lessons.
    q.task = "Find the cheapest flight from Boston to Denver next Friday".into();
    q.task_id = Some("t-flight-1".into());
    let hits = m.find_patterns(&q).unwrap();
    assert!(
        hits.iter().all(|p| p.item.task_id != "t-flight-1"),
        "{hits:?}"
    );
    assert_eq!(hits[0].item.id, b[0]);
    // A filter on top, and min_score.
    q.task_id = None;
    q.filter = Some(serde_json::json!({"polarity": "failure"}));
    let hits = m.find_patterns(&q).unwrap();
    assert_eq!(hits.len(), 1);
    q.filter = None;
    q.min_score = Some(f32::MAX);
    assert!(m.find_patterns(&q).unwrap().is_empty());
}

#[test]
fn outcomes_move_rankings_as_the_formula_says() {
    let dir = tempfile::tempdir().unwrap();
    let m = memory_at(&dir.path().join("m.db"));
    // Two lessons from the same kind of task, equally relevant: the one that keeps working
    // rises above the one that keeps failing.
    seed(&m);
    let x = store(
        &m,
        &exp(
            "Book a table for two at an Italian restaurant",
            "r1",
            Polarity::Success,
            vec![item(
                "Use the reservation widget",
                "For bookings",
                "Pick a time in the widget.",
            )],
        ),
    );
    let y = store(
        &m,
        &exp(
            "Book a table for two at an Italian restaurant",
            "r2",
            Polarity::Success,
            vec![item(
                "Use the reservation form",
                "For bookings",
                "Pick a slot in the form.",
            )],
        ),
    );
    let q = FindParams::new("Book a table for two at an Italian restaurant tonight");
    let before = m.find_patterns(&q).unwrap();
    assert!(
        (before[0].score - before[1].score).abs() < 0.5,
        "{before:?}"
    );
    let top = before[0].item.id.clone();
    let other = if top == x[0] {
        y[0].clone()
    } else {
        x[0].clone()
    };
    // The other one wins three times, the top one fails three times.
    for i in 0..3 {
        m.record_outcome(&format!("use-{i}"), std::slice::from_ref(&other), true)
            .unwrap();
        m.record_outcome(&format!("use-{i}"), std::slice::from_ref(&top), false)
            .unwrap();
    }
    let after = m.find_patterns(&q).unwrap();
    let o = after.iter().find(|p| p.item.id == other).unwrap();
    let t = after.iter().find(|p| p.item.id == top).unwrap();
    assert_eq!((o.item.uses, o.item.wins, o.item.losses), (3, 3, 0));
    assert_eq!((t.item.uses, t.item.wins, t.item.losses), (3, 0, 3));
    assert!((o.prior - 0.8).abs() < 1e-6, "(3 + 1) / (3 + 2)");
    assert!((t.prior - 0.2).abs() < 1e-6, "(0 + 1) / (3 + 2)");
    assert!((o.item.confidence - 0.8).abs() < 1e-9);
    assert_eq!(after[0].item.id, other, "{after:?}");
    for p in &after {
        assert!((p.score - (p.relevance + PRIOR_WEIGHT * (p.prior - 0.5))).abs() < 1e-6);
    }
}

#[test]
fn a_near_duplicate_is_linked_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let m = memory_at(&dir.path().join("m.db"));
    let (a, _, _) = seed(&m);
    let again = m
        .store_experience(
            &exp(
                "Find the cheapest flight from Boston to Austin",
                "t-flight-3",
                Polarity::Success,
                vec![item(
                    "Sort results by price first",
                    "Use when a task asks for the cheapest option in a listing",
                    "Open the results, sort by price ascending, then read the first row!",
                )],
            ),
            StoreOptions::default(),
        )
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].linked);
    assert_eq!(again[0].id, a[0]);
    assert_eq!(m.shard().len(), 3);
    let it = m.get(&a[0]).unwrap();
    assert_eq!(it.linked_tasks, ["t-flight-1", "t-flight-3"]);
    // The linked task does not get it back as its own lesson.
    let mut q = FindParams::new("Find the cheapest flight from Boston to Austin");
    q.task_id = Some("t-flight-3".into());
    assert!(m
        .find_patterns(&q)
        .unwrap()
        .iter()
        .all(|p| p.item.id != a[0]));
    // A failure with the same words is another item (polarity differs).
    let f = m
        .store_experience(
            &exp(
                "Find a flight",
                "t-flight-4",
                Polarity::Failure,
                vec![item(
                    "Sort results by price first",
                    "Use when a task asks for the cheapest option in a listing",
                    "Open the results, sort by price ascending, then read the first row.",
                )],
            ),
            StoreOptions::default(),
        )
        .unwrap();
    assert!(!f[0].linked);
    // Within one experience, a repeated item links to the first.
    let two = m
        .store_experience(
            &exp(
                "Renew a library book",
                "lib-1",
                Polarity::Success,
                vec![
                    item(
                        "Renew from the loans page",
                        "Library renewals",
                        "Press Renew.",
                    ),
                    item(
                        "Renew from the loans page",
                        "Library renewals",
                        "Press Renew!",
                    ),
                ],
            ),
            StoreOptions::default(),
        )
        .unwrap();
    assert!(!two[0].linked && two[1].linked && two[0].id == two[1].id);
}

#[test]
fn consolidation_merges_reversibly_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = memory_at(&dir.path().join("m.db"));
    let no_link = StoreOptions {
        link_duplicates: false,
        ..StoreOptions::default()
    };
    let lesson = |n: &str| {
        item(
            "Check the cart total before paying",
            "Use before any checkout",
            &format!("Compare the cart total with the sum of the items{n}"),
        )
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        let e = exp(
            &format!("Buy item {i}"),
            &format!("buy-{i}"),
            Polarity::Success,
            vec![lesson(if i == 2 { "!" } else { "." })],
        );
        ids.push(m.store_experience(&e, no_link).unwrap()[0].id.clone());
    }
    let other = store(
        &m,
        &exp(
            "Cancel a subscription",
            "sub-1",
            Polarity::Success,
            vec![item(
                "Cancel from account settings",
                "Subscriptions",
                "Settings, Billing, Cancel.",
            )],
        ),
    );
    m.record_outcome("u1", std::slice::from_ref(&ids[1]), true)
        .unwrap();
    m.record_outcome("u3", std::slice::from_ref(&ids[1]), true)
        .unwrap();
    m.record_outcome("u2", std::slice::from_ref(&ids[2]), false)
        .unwrap();
    let export = |m: &Memory| m.shard().changes_since(0, usize::MAX).unwrap();
    let before = export(&m);
    let dry = m
        .consolidate(ConsolidateParams {
            dry_run: true,
            ..ConsolidateParams::default()
        })
        .unwrap();
    assert_eq!(dry.len(), 1, "{dry:?}");
    // The most used is canonical.
    assert_eq!(dry[0].canonical, ids[1]);
    assert_eq!(dry[0].absorbed.len(), 2);
    assert_eq!(export(&m), before, "a dry run writes nothing");
    let done = m.consolidate(ConsolidateParams::default()).unwrap();
    assert_eq!(done, dry);
    let canon = m.get(&ids[1]).unwrap();
    assert_eq!((canon.uses, canon.wins, canon.losses), (3, 2, 1));
    assert_eq!(canon.linked_tasks.len(), 3);
    for id in [&ids[0], &ids[2]] {
        let it = m.get(id).unwrap();
        assert_eq!(it.superseded_by.as_deref(), Some(ids[1].as_str()));
        assert!(it.valid_to.is_some());
    }
    let q = FindParams::new("Buy item 7 and check out");
    let hits = m.find_patterns(&q).unwrap();
    let got: Vec<&str> = hits.iter().map(|p| p.item.id.as_str()).collect();
    assert!(
        got.contains(&ids[1].as_str()) && !got.contains(&ids[0].as_str()),
        "{got:?}"
    );
    assert!(got.contains(&other[0].as_str()));
    // Reversed: every item current again, the counts where they were.
    let back = m.unconsolidate(&ids[1]).unwrap();
    assert_eq!(back.len(), 2);
    for id in &ids {
        let it = m.get(id).unwrap();
        assert!(it.valid_to.is_none() && it.superseded_by.is_none() && it.absorbed.is_empty());
    }
    let canon = m.get(&ids[1]).unwrap();
    assert_eq!((canon.uses, canon.wins, canon.losses), (2, 2, 0));
    assert_eq!(canon.linked_tasks, ["buy-1"]);
    assert!(m.unconsolidate(&ids[1]).unwrap().is_empty());
    assert!(matches!(
        m.consolidate(ConsolidateParams {
            threshold: 0.0,
            dry_run: true
        }),
        Err(MemoryError::InvalidArgument(_))
    ));
}

#[test]
fn sessions_and_context_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mine = memory_at(&dir.path().join("mine.db"));
    let team = memory_at(&dir.path().join("team.db"));
    let (a, b, _) = seed(&mine);
    let (ta, _, _) = seed(&team);
    let s = mine
        .save_session("work-1", &[a[0].clone(), b[0].clone()], "flights")
        .unwrap();
    let r = mine.restore_session("work-1").unwrap();
    assert_eq!(r.session, s);
    assert_eq!(r.items.len(), 2);
    assert!(r.missing.is_empty());
    // A session is not a memory item: pattern matching never returns it.
    let hits = mine.find_patterns(&FindParams::new("flights")).unwrap();
    assert!(hits.iter().all(|p| !p.item.id.starts_with("session:")));
    mine.shard().delete(&b[0]).unwrap();
    let r = mine.restore_session("work-1").unwrap();
    assert_eq!((r.items.len(), r.missing.clone()), (1, vec![b[0].clone()]));
    assert!(matches!(
        mine.restore_session("nope"),
        Err(MemoryError::NotFound(_))
    ));
    assert!(matches!(
        mine.save_session("w", &["missing".into()], ""),
        Err(MemoryError::NotFound(_))
    ));
    // Context: both shards, the team's copy of the same lesson dropped as a duplicate.
    let shards = [("me".to_string(), &mine), ("team".to_string(), &team)];
    let mut p = ContextParams::new("Find the cheapest flight from Austin to Miami");
    let c = synthesize_context(&shards, &p).unwrap();
    assert!(c.text.starts_with("Lessons from past tasks"));
    assert!(c.duplicates >= 1, "{c:?}");
    let ids: Vec<(&str, &str)> = c
        .entries
        .iter()
        .map(|e| (e.shard.as_str(), e.id.as_str()))
        .collect();
    assert!(ids.contains(&("me", a[0].as_str())) ^ ids.contains(&("team", ta[0].as_str())));
    assert!(c.entries.iter().any(|e| e.polarity == "failure"));
    p.budget_chars = 200;
    let small = synthesize_context(&shards, &p).unwrap();
    assert!(small.text.chars().count() <= 200);
    assert!(small.over_budget > 0);
    p.budget_chars = 10;
    assert!(matches!(
        synthesize_context(&shards, &p),
        Err(MemoryError::InvalidArgument(_))
    ));
    assert!(matches!(
        synthesize_context(&[], &p),
        Err(MemoryError::InvalidArgument(_))
    ));
}

#[test]
fn concurrent_outcomes_from_two_handles_lose_no_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let m = memory_at(&path);
    let (a, _, _) = seed(&m);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (path, id) = (path.clone(), a[0].clone());
            std::thread::spawn(move || {
                // Each thread its own handle on the file, as another process would be.
                let m = memory_at(&path);
                for i in 0..100 {
                    m.record_outcome(&format!("t{t}-{i}"), std::slice::from_ref(&id), i % 2 == 0)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let it = m.get(&a[0]).unwrap();
    assert_eq!((it.uses, it.wins, it.losses), (200, 100, 100));
}

#[test]
fn bad_input_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = memory_at(&dir.path().join("m.db"));
    let (a, _, _) = seed(&m);
    let n = m.shard().len();
    let good = || item("t", "d", "c");
    let bad = |e: Experience| {
        // The gate alone says the same as the store.
        let v = e.validate(StoreOptions::default().max_items);
        assert!(matches!(v, Err(MemoryError::InvalidArgument(_))), "{v:?}");
        let r = m.store_experience(&e, StoreOptions::default());
        assert!(matches!(r, Err(MemoryError::InvalidArgument(_))), "{r:?}");
    };
    exp("task", "x", Polarity::Success, vec![good()])
        .validate(1)
        .unwrap();
    bad(exp("", "x", Polarity::Success, vec![good()]));
    bad(exp("task", "  ", Polarity::Success, vec![good()]));
    bad(exp("task", "x", Polarity::Success, vec![]));
    bad(exp(
        "task",
        "x",
        Polarity::Success,
        vec![good(), good(), good(), good()],
    ));
    bad(exp(
        "task",
        "x",
        Polarity::Success,
        vec![item("", "d", "c")],
    ));
    bad(exp(
        "task",
        "x",
        Polarity::Success,
        vec![item("t", "d", &"c".repeat(4_001))],
    ));
    bad(exp(
        "task",
        "x",
        Polarity::Success,
        vec![item(&"t".repeat(201), "d", "c")],
    ));
    let mut tagged = good();
    tagged.tags = vec!["x".into(); 17];
    bad(exp("task", "x", Polarity::Success, vec![tagged]));
    // A vector of the wrong dimension or with NaN: the shard's typed error, nothing stored.
    let mut e = exp("task", "x", Polarity::Success, vec![good()]);
    e.task_vector = Some(vec![0.5; 3]);
    assert!(m.store_experience(&e, StoreOptions::default()).is_err());
    let mut v = vec![0.5; 256];
    v[3] = f32::NAN;
    e.task_vector = Some(v);
    assert!(m.store_experience(&e, StoreOptions::default()).is_err());
    assert_eq!(m.shard().len(), n);
    // Outcomes: an unknown id changes nothing, even listed after a good one.
    let before = m.get(&a[0]).unwrap();
    let r = m.record_outcome("t", &[a[0].clone(), "nope".into()], true);
    assert!(matches!(r, Err(MemoryError::NotFound(_))), "{r:?}");
    assert_eq!(m.get(&a[0]).unwrap(), before);
    let r = m.record_outcome("t", &[a[0].clone(), a[0].clone()], true);
    assert!(matches!(r, Err(MemoryError::InvalidArgument(_))));
    assert!(matches!(
        m.record_outcome("t", &[], true),
        Err(MemoryError::InvalidArgument(_))
    ));
    // A session item is not a memory item.
    m.save_session("s", &[], "").unwrap();
    let r = m.record_outcome("t", &["session:s".into()], true);
    assert!(matches!(r, Err(MemoryError::NotFound(_))), "{r:?}");
    // Finding: k out of range, an empty task, a bad filter.
    let mut q = FindParams::new("x");
    q.k = 0;
    assert!(matches!(
        m.find_patterns(&q),
        Err(MemoryError::InvalidArgument(_))
    ));
    q.k = 101;
    assert!(matches!(
        m.find_patterns(&q),
        Err(MemoryError::InvalidArgument(_))
    ));
    assert!(matches!(
        m.find_patterns(&FindParams::new(" ")),
        Err(MemoryError::InvalidArgument(_))
    ));
    let mut q = FindParams::new("x");
    q.filter = Some(serde_json::json!({"a": {"$bogus": 1}}));
    let r = m.find_patterns(&q);
    assert!(r.as_ref().is_err_and(|e| e.is_user_error()), "{r:?}");
    // A shard that is not a memory shard, an embedder of another dimension.
    let plain = Shard::in_memory(&sqlite_vector::Profile::new(
        256,
        sqlite_vector::Metric::Cosine,
    ))
    .unwrap();
    assert!(matches!(
        Memory::new(Arc::new(plain), Some(embedder())),
        Err(MemoryError::InvalidArgument(_))
    ));
    let other = Shard::in_memory(&Memory::profile(8, None)).unwrap();
    assert!(matches!(
        Memory::new(Arc::new(other), Some(embedder())),
        Err(MemoryError::InvalidArgument(_))
    ));
    // Without an embedder every call needs the task's vector.
    let bare = Memory::new(
        Arc::new(Shard::in_memory(&Memory::profile(4, None)).unwrap()),
        None,
    )
    .unwrap();
    assert!(matches!(
        bare.find_patterns(&FindParams::new("x")),
        Err(MemoryError::InvalidArgument(_))
    ));
}
