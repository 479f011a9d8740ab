//! Real quinn endpoints on 127.0.0.1, real TLS with each root's own identity, real shard files:
//! two roots converge (with and without an HNSW index), strangers and ungranted peers get no
//! shard data and store nothing.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sqlite_vector::{
    Change, HnswParams, ManagerOptions, Metric, NewItem, Profile, SearchParams, ShardManager,
    Update,
};
use sqlite_vector_sync::{
    sync_once, Config, Direction, Identity, PeerConnection, Selection, Server, ServerStats,
    SyncError, TrustList, TrustedPeer,
};

struct Root {
    _dir: tempfile::TempDir,
    manager: Arc<ShardManager>,
    identity: Identity,
}

fn root() -> Root {
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(ShardManager::open(dir.path(), ManagerOptions::default()).unwrap());
    let identity = Identity::load_or_create(dir.path()).unwrap();
    Root {
        _dir: dir,
        manager,
        identity,
    }
}

fn trust(r: &Root, peer: &Identity, prefixes: &[&str], read_only: bool) {
    TrustList::trust(
        r.manager.root(),
        TrustedPeer {
            id: peer.id().to_string(),
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            read_only,
        },
    )
    .unwrap();
}

fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..dim)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn fill(m: &ShardManager, name: &str, n: u64, base: u64) {
    let s = m
        .get_or_create(name, &Profile::new(16, Metric::Cosine))
        .unwrap();
    let items = (0..n)
        .map(|i| {
            NewItem::new(vector(base + i, 16))
                .with_id(format!("{name}-{}", base + i))
                .with_text(format!("note {i} of {name}"))
        })
        .collect();
    s.insert_batch(items).unwrap();
}

/// Every row of a shard (live and tombstones) by id, without local versions.
fn dump(m: &ShardManager, name: &str) -> BTreeMap<String, Change> {
    m.open_shard(name)
        .unwrap()
        .changes_since(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|mut c| {
            c.seq = 0;
            (c.id.clone(), c)
        })
        .collect()
}

/// A one-shot sync of every shard from `from` to the server at `addr` (node `id`).
async fn sync(
    from: &Root,
    addr: std::net::SocketAddr,
    id: &str,
    direction: Direction,
) -> Result<sqlite_vector_sync::Report, SyncError> {
    let all = Selection::Prefix(String::new());
    sync_once(
        from.manager.clone(),
        &from.identity,
        addr,
        id,
        direction,
        &all,
        Config::default(),
    )
    .await
}

struct Serving {
    addr: std::net::SocketAddr,
    stats: Arc<ServerStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn serve(r: &Root) -> Serving {
    let server = Server::bind(
        r.manager.clone(),
        &r.identity,
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let stats = server.stats();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Serving {
        addr,
        stats,
        stop: Some(stop),
        task,
    }
}

impl Serving {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_roots_converge_and_strangers_get_nothing() {
    let (a, b) = (root(), root());
    trust(&a, &b.identity, &[], false);
    trust(&b, &a.identity, &[], false);
    fill(&a.manager, "notes/a", 300, 0);
    fill(&b.manager, "notes/b", 200, 1000);
    fill(&a.manager, "shared", 50, 5000);
    fill(&b.manager, "shared", 50, 6000);
    a.manager
        .open_shard("shared")
        .unwrap()
        .create_index(HnswParams::default())
        .unwrap();
    let server = serve(&b);
    let id_b = b.identity.id().to_string();
    let r = sync(&a, server.addr, &id_b, Direction::Both).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!((r.shards, r.converged), (3, 3), "{r:?}");
    assert_eq!((r.sent, r.received), (350, 250), "{r:?}");
    for name in ["notes/a", "notes/b", "shared"] {
        assert_eq!(dump(&a.manager, name), dump(&b.manager, name), "{name}");
    }
    // Exact search gives the same top k on both sides (a has an index on "shared", b not).
    let q = vector(42, 16);
    let p = SearchParams::k(10).with_exact(true);
    let ha = a
        .manager
        .open_shard("shared")
        .unwrap()
        .search(&q, &p)
        .unwrap();
    let hb = b
        .manager
        .open_shard("shared")
        .unwrap()
        .search(&q, &p)
        .unwrap();
    assert_eq!(
        ha.iter().map(|h| &h.id).collect::<Vec<_>>(),
        hb.iter().map(|h| &h.id).collect::<Vec<_>>()
    );
    // Concurrent edits on both sides, then a second sync: only the changes travel.
    let sa = a.manager.open_shard("shared").unwrap();
    let sb = b.manager.open_shard("shared").unwrap();
    sa.delete("shared-5000").unwrap();
    sb.update(
        "shared-6001",
        Update {
            text: Some("edited on b".into()),
            ..Update::default()
        },
    )
    .unwrap();
    sb.delete("shared-5000").unwrap();
    let r = sync(&a, server.addr, &id_b, Direction::Both).await.unwrap();
    assert_eq!((r.sent, r.received, r.converged), (1, 2, 3), "{r:?}");
    assert_eq!(dump(&a.manager, "shared"), dump(&b.manager, "shared"));
    // An idle sync sends no change.
    let r = sync(&a, server.addr, &id_b, Direction::Both).await.unwrap();
    assert_eq!((r.sent, r.received, r.converged), (0, 0, 3), "{r:?}");
    // Each side holds the delete's tombstone until the other (its only member) has it,
    // then collects it once a later write leaves it below the head.
    assert_eq!(sa.stats().unwrap().tombstones, 1);
    sa.insert(NewItem::new(vector(7001, 16)).with_id("later-a"))
        .unwrap();
    sb.insert(NewItem::new(vector(7002, 16)).with_id("later-b"))
        .unwrap();
    let r = sync(&a, server.addr, &id_b, Direction::Both).await.unwrap();
    assert_eq!((r.sent, r.received, r.converged), (1, 1, 3), "{r:?}");
    let r = sync(&a, server.addr, &id_b, Direction::Both).await.unwrap();
    assert_eq!((r.sent, r.received, r.converged), (0, 0, 3), "{r:?}");
    assert_eq!((r.snapshots, r.held_back), ((0, 0), 0), "{r:?}");
    for s in [&sa, &sb] {
        let st = s.stats().unwrap();
        assert_eq!(st.tombstones, 0, "{st:?}");
        assert!(s.sync_state().unwrap().horizon > 0);
        assert!(s.get("shared-5000").is_err());
    }
    assert_eq!(dump(&a.manager, "shared"), dump(&b.manager, "shared"));

    // A stranger: refused in the handshake, nothing stored or read; the server sent it no
    // shard byte.
    let shard_bytes = || server.stats.shard_bytes_sent.load(Ordering::Relaxed);
    let sent_before = shard_bytes();
    assert!(sent_before > 0);
    let c = root();
    fill(&c.manager, "notes/c", 5, 9000);
    let before = b.manager.list(None).unwrap().len();
    let e = sync(&c, server.addr, &id_b, Direction::Both)
        .await
        .unwrap_err();
    assert!(matches!(e, SyncError::Connection(_)), "{e}");
    assert_eq!(b.manager.list(None).unwrap().len(), before);
    assert!(c.manager.list(None).unwrap().len() == 1);
    assert_eq!(shard_bytes(), sent_before);
    assert!(server.stats.handshakes_failed.load(Ordering::Relaxed) >= 1);
    // The right key under a wrong expected id: the client refuses the server.
    let wrong = "0".repeat(64);
    let e = sync(&a, server.addr, &wrong, Direction::Pull)
        .await
        .unwrap_err();
    assert!(matches!(e, SyncError::Connection(_)), "{e}");

    // Trusted for "public/" only, and read-only: its pushes are refused, its pulls see only
    // what it may see.
    let d = root();
    trust(&b, &d.identity, &["public/"], true);
    fill(&b.manager, "public/faq", 4, 7000);
    fill(&d.manager, "notes/a", 3, 8000);
    fill(&d.manager, "public/faq", 2, 8500);
    let r = sync(&d, server.addr, &id_b, Direction::Push).await.unwrap();
    assert_eq!(r.shards, 0, "{r:?}");
    assert!(
        r.failures["notes/a"].contains("forbidden"),
        "{:?}",
        r.failures
    );
    assert!(
        r.failures["public/faq"].contains("forbidden"),
        "{:?}",
        r.failures
    );
    assert_eq!(b.manager.open_shard("public/faq").unwrap().len(), 4);
    assert_eq!(dump(&b.manager, "notes/a"), dump(&a.manager, "notes/a"));
    // Its pull of what it was not granted: no shard byte on the wire.
    let before = shard_bytes();
    let r = sync_once(
        d.manager.clone(),
        &d.identity,
        server.addr,
        &id_b,
        Direction::Pull,
        &Selection::Prefix("notes/".into()),
        Config::default(),
    )
    .await
    .unwrap();
    assert_eq!((r.shards, r.received), (0, 0), "{r:?}");
    assert_eq!(shard_bytes(), before, "an ungranted pull got shard data");
    let r = sync(&d, server.addr, &id_b, Direction::Pull).await.unwrap();
    assert_eq!((r.shards, r.received), (1, 4), "{r:?}");
    assert_eq!(d.manager.open_shard("public/faq").unwrap().len(), 6);
    assert_eq!(
        d.manager.open_shard("notes/a").unwrap().len(),
        3,
        "nothing of notes/a leaked"
    );

    // A trusted peer on one connection: a standalone shard pushed under a new name is created
    // with its profile; hostile names are refused by the server's manager, nothing created.
    let peer = PeerConnection::connect(&a.identity, server.addr, &id_b)
        .await
        .unwrap();
    let loose = sqlite_vector::Shard::in_memory(&Profile::new(16, Metric::Cosine)).unwrap();
    loose
        .insert(NewItem::new(vector(42, 16)).with_id("loose-1"))
        .unwrap();
    let out = peer
        .sync_shard("loose/one", &loose, &[], true, true, Config::default())
        .await
        .unwrap();
    assert_eq!((out.sent, out.converged), (1, true), "{out:?}");
    assert_eq!(b.manager.open_shard("loose/one").unwrap().len(), 1);
    let listed = b.manager.list(None).unwrap().len();
    let outside = b.manager.root().parent().unwrap().join("x");
    let outside_before = outside.exists();
    for name in ["../x", "/etc/passwd", "a/../../x", "", "loose\\two"] {
        let e = peer
            .sync_shard(name, &loose, &[], true, false, Config::default())
            .await
            .unwrap_err();
        assert!(matches!(e, SyncError::Proto(_)), "{name:?}: {e}");
    }
    assert_eq!(b.manager.list(None).unwrap().len(), listed);
    assert_eq!(
        outside.exists(),
        outside_before,
        "nothing made outside the root"
    );
    // The same connection serves a root-wide sync afterwards.
    let r = peer
        .sync(
            a.manager.clone(),
            Direction::Pull,
            &Selection::Prefix("loose/".into()),
            Config::default(),
        )
        .await
        .unwrap();
    assert_eq!((r.shards, r.received), (1, 1), "{r:?}");
    peer.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sync_carries_each_commit_and_the_peers() {
    let (a, b) = (root(), root());
    trust(&a, &b.identity, &[], false);
    trust(&b, &a.identity, &[], false);
    fill(&a.manager, "live", 3, 0);
    let server = serve(&b);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let (ma, id_b, addr) = (a.manager.clone(), b.identity.id().to_string(), server.addr);
    let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = rounds.clone();
    let live = tokio::spawn(async move {
        let identity = Identity::load_or_create(ma.root()).unwrap();
        sqlite_vector_sync::sync_live(
            ma,
            &identity,
            addr,
            &id_b,
            &Selection::Prefix(String::new()),
            std::time::Duration::from_millis(5),
            std::time::Duration::from_millis(200),
            async {
                let _ = rx.await;
            },
            move |_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .await
        .unwrap();
    });
    let arrives = |m: Arc<ShardManager>, id: String| async move {
        for _ in 0..2000 {
            if m.exists("live").unwrap() && m.open_shard("live").unwrap().get(&id).is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("{id} never arrived");
    };
    arrives(b.manager.clone(), "live-0".into()).await;
    // Each commit on a arrives on b; b's commits arrive on a.
    let sa = a.manager.open_shard("live").unwrap();
    for i in 10..15u64 {
        sa.insert(NewItem::new(vector(i, 16)).with_id(format!("n{i}")))
            .unwrap();
        arrives(b.manager.clone(), format!("n{i}")).await;
    }
    let sb = b.manager.open_shard("live").unwrap();
    sb.insert(NewItem::new(vector(99, 16)).with_id("from-b"))
        .unwrap();
    arrives(a.manager.clone(), "from-b".into()).await;
    // Idle: the rounds stop moving changes, and stopping ends it cleanly.
    let _ = stop.send(());
    live.await.unwrap();
    assert!(rounds.load(std::sync::atomic::Ordering::Relaxed) >= 6);
    assert_eq!(dump(&a.manager, "live"), dump(&b.manager, "live"));
    server.stop().await;
}
