//! Rollback-journal file shards (`Journal::Rollback`, the wasm32 default) and shard images
//! (`Shard::to_image` / `Shard::from_image`): what a browser build stores and exports must open
//! natively with the same items and the same results, and the other way round.

use serde_json::json;
use sqlite_vector::{
    Durability, ErrorKind, HnswParams, Journal, Metric, NewItem, OpenOptions, Profile,
    SearchParams, Shard, Update,
};

use crate::{fill, random_vectors};

fn top(shard: &Shard, q: &[f32], k: usize) -> Vec<(String, f32)> {
    shard
        .search(q, &SearchParams::k(k))
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h.score))
        .collect()
}

/// The journal mode a shard file is in, from its header: bytes 18 and 19 are 2 in WAL mode
/// and 1 with a rollback journal.
fn journal_mode(path: &std::path::Path) -> &'static str {
    let head = std::fs::read(path).unwrap();
    match (head[18], head[19]) {
        (1, 1) => "rollback",
        (2, 2) => "wal",
        other => panic!("header bytes 18, 19: {other:?}"),
    }
}

fn sidecar(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

#[test]
fn rollback_shard_round_trips_through_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let rollback = OpenOptions::default().with_journal(Journal::Rollback);
    let vectors = random_vectors(300, 16, 3);
    let queries = random_vectors(5, 16, 4);
    let shard = Shard::create_with(&path, &Profile::new(16, Metric::Cosine), &rollback).unwrap();
    assert_eq!(journal_mode(&path), "rollback");
    fill(&shard, &vectors);
    shard
        .insert(
            NewItem::new(vec![1.0; 16])
                .with_id("t")
                .with_text("a rollback journal"),
        )
        .unwrap();
    // One connection and no write-ahead log beside the file.
    assert!(!sidecar(&path, "-wal").exists());
    let before: Vec<_> = queries.iter().map(|q| top(&shard, q, 10)).collect();
    drop(shard);

    // The default (WAL) opens it and converts it; the items and results are the same.
    let shard = Shard::open(&path).unwrap();
    assert_eq!(journal_mode(&path), "wal");
    assert_eq!(shard.stats().unwrap().count, 301);
    for (q, b) in queries.iter().zip(&before) {
        assert_eq!(&top(&shard, q, 10), b);
    }
    shard.delete("0").unwrap();
    drop(shard);
    assert!(sqlite_vector::wait_for_closes(
        std::time::Duration::from_secs(10)
    ));

    // And back to a rollback journal, with the WAL's write in it.
    let shard = Shard::open_with_options(&path, &rollback).unwrap();
    assert_eq!(journal_mode(&path), "rollback");
    assert_eq!(shard.stats().unwrap().count, 300);
    assert_eq!(shard.get("0").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        shard.search_text("rollback", &SearchParams::k(1)).unwrap()[0].id,
        "t"
    );
}

#[test]
fn two_rollback_handles_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    let rollback = OpenOptions::default().with_journal(Journal::Rollback);
    let a = Shard::create_with(&path, &Profile::new(4, Metric::L2), &rollback).unwrap();
    let b = Shard::open_with_options(&path, &rollback).unwrap();
    a.insert(NewItem::new(vec![1.0, 0.0, 0.0, 0.0]).with_id("a"))
        .unwrap();
    b.insert(NewItem::new(vec![0.0, 1.0, 0.0, 0.0]).with_id("b"))
        .unwrap();
    assert_eq!(
        a.search(&[0.0, 1.0, 0.0, 0.0], &SearchParams::k(1))
            .unwrap()[0]
            .id,
        "b"
    );
    assert_eq!(
        b.search(&[1.0, 0.0, 0.0, 0.0], &SearchParams::k(1))
            .unwrap()[0]
            .id,
        "a"
    );
    assert_eq!(a.stats().unwrap().count, 2);
}

#[test]
fn memory_shard_image_opens_as_a_file_with_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let vectors = random_vectors(800, 24, 11);
    let queries = random_vectors(8, 24, 12);
    let shard = Shard::in_memory(&Profile::new(24, Metric::Cosine)).unwrap();
    fill(&shard, &vectors);
    shard
        .insert(
            NewItem::new(vec![0.5; 24])
                .with_id("doc")
                .with_metadata(json!({"lang": "en"}))
                .with_text("browser memory survives"),
        )
        .unwrap();
    shard.create_index(HnswParams::default()).unwrap();
    let approx = |s: &Shard, q: &[f32]| -> Vec<String> {
        s.search(q, &SearchParams::k(10).with_exact(false))
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    let exact: Vec<_> = queries.iter().map(|q| top(&shard, q, 10)).collect();
    let graph: Vec<_> = queries.iter().map(|q| approx(&shard, q)).collect();
    let image = shard.to_image().unwrap();
    assert_eq!(&image[..16], b"SQLite format 3\0");
    assert_eq!((image[18], image[19]), (1, 1));

    let path = dir.path().join("from-memory.db");
    std::fs::write(&path, &image).unwrap();
    let file = Shard::open(&path).unwrap();
    assert_eq!(file.profile().durability, Durability::Normal);
    assert_eq!(file.site_id(), shard.site_id());
    let stats = file.stats().unwrap();
    assert_eq!(stats.count, 801);
    // The graph came along: the same approximate results, no rebuild.
    let index = stats.index.expect("the index is in the image");
    assert!(!index.rebuilt_on_open);
    assert_eq!(index.nodes, 801);
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(top(&file, q, 10), exact[i]);
        assert_eq!(approx(&file, q), graph[i]);
    }
    let doc = file.get("doc").unwrap();
    assert_eq!(doc.metadata, json!({"lang": "en"}));
    assert_eq!(
        file.search_text("survives", &SearchParams::k(1)).unwrap()[0].id,
        "doc"
    );
    file.check_integrity().unwrap();
    // The in-memory shard itself is unchanged by its export.
    assert_eq!(shard.profile().durability, Durability::Memory);
    shard
        .insert(NewItem::new(vec![0.1; 24]).with_id("after"))
        .unwrap();
    assert_eq!(shard.stats().unwrap().count, 802);
}

#[test]
fn wal_file_image_opens_in_memory_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let vectors = random_vectors(500, 12, 21);
    let queries = random_vectors(5, 12, 22);
    let shard = Shard::create(&path, &Profile::new(12, Metric::Dot)).unwrap();
    fill(&shard, &vectors);
    shard.delete("3").unwrap();
    // Written while the shard is open: the image is the committed state, WAL included.
    let image = shard.to_image().unwrap();
    assert_eq!((image[18], image[19]), (1, 1));
    let expect: Vec<_> = queries.iter().map(|q| top(&shard, q, 10)).collect();

    let copy = Shard::from_image(&image, &OpenOptions::default()).unwrap();
    assert_eq!(copy.profile().durability, Durability::Memory);
    assert_eq!(copy.path(), None);
    assert_eq!(copy.site_id(), shard.site_id());
    assert_eq!(copy.stats().unwrap().count, 499);
    for (q, e) in queries.iter().zip(&expect) {
        assert_eq!(&top(&copy, q, 10), e);
    }
    // The copy is writable and independent of the file.
    copy.update(
        "1",
        Update {
            metadata: Some(json!({"k": 1})),
            ..Update::default()
        },
    )
    .unwrap();
    copy.insert(NewItem::new(vec![1.0; 12]).with_id("new"))
        .unwrap();
    assert_eq!(shard.get("new").unwrap_err().kind(), ErrorKind::NotFound);
    // Its image in turn opens as a file.
    let again = dir.path().join("again.db");
    std::fs::write(&again, copy.to_image().unwrap()).unwrap();
    let reopened = Shard::open(&again).unwrap();
    assert_eq!(reopened.stats().unwrap().count, 500);
    assert_eq!(reopened.get("1").unwrap().metadata, json!({"k": 1}));

    // A WAL-mode file copied as it lies (closed, checkpointed) is an image too.
    drop(shard);
    assert!(sqlite_vector::wait_for_closes(
        std::time::Duration::from_secs(10)
    ));
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(
        (raw[18], raw[19]),
        (2, 2),
        "a closed WAL shard keeps its WAL header"
    );
    let copy = Shard::from_image(&raw, &OpenOptions::default()).unwrap();
    assert_eq!(copy.stats().unwrap().count, 499);
}

#[test]
fn bad_images_are_refused() {
    let opts = OpenOptions::default();
    let kind = |bytes: &[u8]| Shard::from_image(bytes, &opts).err().map(|e| e.kind());
    assert_eq!(kind(b""), Some(ErrorKind::NotAShard));
    assert_eq!(kind(&[0u8; 4096]), Some(ErrorKind::NotAShard));
    assert_eq!(kind(b"SQLite format 3\0"), Some(ErrorKind::NotAShard));
    // A SQLite database that is not a shard.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let db = sqlite_vector::rusqlite::Connection::open(&other).unwrap();
    db.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(db);
    assert_eq!(
        kind(&std::fs::read(&other).unwrap()),
        Some(ErrorKind::NotAShard)
    );

    // A shard image cut short or overwritten in the middle: an error, never a panic or a
    // shard that silently lost items.
    let shard = Shard::in_memory(&Profile::new(8, Metric::L2)).unwrap();
    fill(&shard, &random_vectors(2000, 8, 5));
    let image = shard.to_image().unwrap();
    let half = &image[..image.len() / 2];
    match Shard::from_image(half, &opts) {
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotAShard),
            "{e}"
        ),
        Ok(s) => panic!(
            "a truncated image opened with {} items",
            s.stats().unwrap().count
        ),
    }
    let mut damaged = image.clone();
    let mid = damaged.len() / 2;
    damaged[mid..mid + 4096].fill(0xA5);
    match Shard::from_image(&damaged, &opts) {
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotAShard),
            "{e}"
        ),
        Ok(s) => assert!(s.check_integrity().is_err(), "damage went unnoticed"),
    }
    // The intact image still opens.
    assert_eq!(
        Shard::from_image(&image, &opts)
            .unwrap()
            .stats()
            .unwrap()
            .count,
        2000
    );
}
