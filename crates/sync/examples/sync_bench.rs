//! Sync over loopback QUIC, measured: one-shot pushes of N new 384-d items to a server in the
//! same process (each a fresh connection, TLS handshake included, then on one established
//! connection), an idle sync, a pull of many small shards over one connection, live mode, and
//! the apply rate of a receiving shard (chunks through the session's store, no network).
//!
//! `cargo run --release -p sqlite-vector-sync --example sync_bench [rounds]`

use std::sync::Arc;
use std::time::Instant;

use sqlite_vector::{ManagerOptions, Metric, NewItem, Profile, Shard, ShardManager, SiteId};
use sqlite_vector_sync::{
    sync_once, Config, Direction, Identity, PeerConnection, Selection, Server, ShardStore, Store,
    TrustList, TrustedPeer,
};

fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

/// `n` new items with ids `i{next}` onwards.
fn new_items(n: usize, dim: usize, seed: u64, next: &mut usize) -> Vec<NewItem> {
    vectors(n, dim, seed)
        .into_iter()
        .map(|v| {
            *next += 1;
            NewItem::new(v).with_id(format!("i{next}"))
        })
        .collect()
}

/// One one-shot sync from root A to the server.
async fn run(
    m: &Arc<ShardManager>,
    me: &Identity,
    addr: std::net::SocketAddr,
    peer: &Identity,
    direction: Direction,
    selection: &Selection,
) -> sqlite_vector_sync::Report {
    sync_once(
        m.clone(),
        me,
        addr,
        peer.id(),
        direction,
        selection,
        Config::default(),
    )
    .await
    .unwrap()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ma = Arc::new(ShardManager::open(da.path(), ManagerOptions::default()).unwrap());
    let mb = Arc::new(ShardManager::open(db.path(), ManagerOptions::default()).unwrap());
    let (ia, ib) = (
        Identity::load_or_create(da.path()).unwrap(),
        Identity::load_or_create(db.path()).unwrap(),
    );
    for (root, peer) in [(da.path(), &ib), (db.path(), &ia)] {
        TrustList::trust(
            root,
            TrustedPeer {
                id: peer.id().into(),
                prefixes: vec![],
                read_only: false,
            },
        )
        .unwrap();
    }
    let server = Server::bind(mb.clone(), &ib, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    let dim = 384;
    let shard = ma
        .get_or_create("bench", &Profile::new(dim, Metric::Cosine))
        .unwrap();
    let names = Selection::Names(vec!["bench".into()]);
    let mut next = 0usize;
    for n in [100usize, 1000] {
        let (mut ms, mut bytes) = (Vec::new(), Vec::new());
        for r in 0..rounds + 1 {
            let seed = (n * 1000 + r) as u64;
            shard
                .insert_batch(new_items(n, dim, seed, &mut next))
                .unwrap();
            let t = Instant::now();
            let rep = run(&ma, &ia, addr, &ib, Direction::Push, &names).await;
            let took = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(rep.sent as usize, n);
            if r > 0 {
                ms.push(took);
                bytes.push(rep.bytes_sent as f64);
            }
        }
        let raw = (n * dim * 4) as f64;
        let b = pct(&mut bytes, 50.0);
        println!(
            "push {n} new {dim}-d items, fresh connection: p50 {:.1} ms, p99 {:.1} ms; {:.0} B on \
             the wire = {:.3} x raw vector bytes ({:.0} B per item above raw)",
            pct(&mut ms.clone(), 50.0),
            pct(&mut ms, 99.0),
            b,
            b / raw,
            (b - raw) / n as f64
        );
    }
    // The same pushes on one established connection.
    let peer = PeerConnection::connect(&ia, addr, ib.id()).await.unwrap();
    for n in [100usize, 1000] {
        let mut ms = Vec::new();
        for r in 0..rounds + 1 {
            let seed = (n * 7000 + r) as u64;
            shard
                .insert_batch(new_items(n, dim, seed, &mut next))
                .unwrap();
            let t = Instant::now();
            let rep = peer
                .sync(ma.clone(), Direction::Push, &names, Config::default())
                .await
                .unwrap();
            let took = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(rep.sent as usize, n);
            if r > 0 {
                ms.push(took);
            }
        }
        println!(
            "push {n} new {dim}-d items, established connection: p50 {:.1} ms, p99 {:.1} ms",
            pct(&mut ms.clone(), 50.0),
            pct(&mut ms, 99.0)
        );
    }
    peer.close().await;
    let mut ms = Vec::new();
    let mut bytes = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let rep = run(&ma, &ia, addr, &ib, Direction::Both, &names).await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        bytes.push(rep.bytes_sent as f64 + rep.bytes_received as f64);
        assert_eq!((rep.sent, rep.received, rep.converged), (0, 0, 1));
    }
    println!(
        "idle two-way sync of an up-to-date shard ({} items), fresh connection: p50 {:.1} ms, {:.0} B both ways",
        shard.len(),
        pct(&mut ms, 50.0),
        pct(&mut bytes, 50.0)
    );
    // 1,000 shards of 100 items each, pulled over one connection.
    let shards = 1000;
    let small = Profile::new(dim, Metric::Cosine);
    for s in 0..shards {
        let sh = mb.get_or_create(&format!("many/s{s:04}"), &small).unwrap();
        let items = vectors(100, dim, 7 + s as u64)
            .into_iter()
            .enumerate()
            .map(|(i, v)| NewItem::new(v).with_id(format!("m{i}")))
            .collect();
        sh.insert_batch(items).unwrap();
    }
    let t = Instant::now();
    let rep = run(
        &ma,
        &ia,
        addr,
        &ib,
        Direction::Pull,
        &Selection::Prefix("many/".into()),
    )
    .await;
    println!(
        "pull {} shards x 100 {dim}-d items over one connection: {:.2} s ({} changes, {} failures)",
        rep.shards,
        t.elapsed().as_secs_f64(),
        rep.received,
        rep.failures.len()
    );
    // Live mode: a commit on A until it can be read on B.
    let live_shard = ma
        .get_or_create("live", &Profile::new(dim, Metric::Cosine))
        .unwrap();
    live_shard
        .insert(NewItem::new(vectors(1, dim, 5).remove(0)).with_id("seed"))
        .unwrap();
    let (live_stop, live_rx) = tokio::sync::oneshot::channel::<()>();
    let (ma2, ib_id) = (ma.clone(), ib.id().to_string());
    let live = tokio::spawn(async move {
        let identity = Identity::load_or_create(ma2.root()).unwrap();
        sqlite_vector_sync::sync_live(
            ma2,
            &identity,
            addr,
            &ib_id,
            &Selection::Names(vec!["live".into()]),
            std::time::Duration::from_millis(5),
            std::time::Duration::from_millis(500),
            async {
                let _ = live_rx.await;
            },
            |_| {},
        )
        .await
        .unwrap();
    });
    while !(mb.exists("live").unwrap() && mb.open_shard("live").unwrap().get("seed").is_ok()) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let on_b = mb.open_shard("live").unwrap();
    let mut lat = Vec::new();
    for (i, v) in vectors(rounds.max(20) * 3, dim, 77).into_iter().enumerate() {
        let id = format!("l{i}");
        let t = Instant::now();
        live_shard
            .insert(NewItem::new(v).with_id(id.clone()))
            .unwrap();
        while on_b.get(&id).is_err() {
            tokio::time::sleep(std::time::Duration::from_micros(500)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(std::time::Duration::from_millis(13)).await;
    }
    println!(
        "live: a commit on A readable on B after p50 {:.1} ms, p99 {:.1} ms ({} commits)",
        pct(&mut lat.clone(), 50.0),
        pct(&mut lat, 99.0),
        lat.len()
    );
    let _ = live_stop.send(());
    live.await.unwrap();
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    apply_rate(dim);
}

/// Applies a feed into a file shard in the session's chunks (512 changes, one transaction
/// each, as `Config::default()` cuts 384-d changes), timing each: changes/s and the longest
/// transaction (how long a local writer may wait).
fn apply_rate(dim: usize) {
    let n = 20_480;
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new(dim, Metric::Cosine);
    let source = Shard::in_memory(&profile).unwrap();
    let items = vectors(n, dim, 99)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            NewItem::new(v)
                .with_id(format!("a{i}"))
                .with_metadata(serde_json::json!({"i": i, "tag": "new"}))
        })
        .collect();
    source.insert_batch(items).unwrap();
    let inserts = source.changes_since(0, usize::MAX).unwrap();
    let head = source.head().unwrap();
    source
        .transaction(|tx| {
            for i in 0..n {
                tx.update(
                    &format!("a{i}"),
                    sqlite_vector::Update {
                        metadata: Some(serde_json::json!({"i": i, "tag": "seen"})),
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })
        .unwrap();
    let updates = source.changes_since(head, usize::MAX).unwrap();
    let target = Shard::create(dir.path().join("t.db"), &profile).unwrap();
    let store = ShardStore::bare(&target);
    let from = SiteId([0xab; 16]);
    for (what, feed) in [
        ("new 384-d items", &inserts),
        ("metadata-only updates", &updates),
    ] {
        let t = Instant::now();
        let mut longest = 0f64;
        for chunk in feed.chunks(512) {
            let c0 = Instant::now();
            store
                .apply(from, Some(chunk.last().unwrap().seq), chunk)
                .unwrap();
            longest = longest.max(c0.elapsed().as_secs_f64() * 1e3);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "apply {} {what} in chunks of 512: {:.0} changes/s, longest transaction {:.1} ms",
            feed.len(),
            feed.len() as f64 / secs,
            longest
        );
    }
    assert_eq!(target.len(), n);
}
