//! Deterministic simulation: N ∈ {2, 3, 5} peers, each with an in-memory shard and its own
//! manual clock, write concurrently (insert, update, delete, re-insert of a few shared ids)
//! while sync sessions between random pairs run through the sans-IO core over simulated
//! connections that lose the connection, duplicate, reorder and split frames, under random
//! partitions. Then the network heals, a sync pass runs along a random line of the peers and
//! back, and every shard must hold exactly what an oracle fed the same operations holds (per
//! id, the greatest version ever made, with its register), with equal digests. Most sessions
//! collect the tombstones every peer holds, so peers that meet late get snapshots; a collected
//! tombstone may be missing, a live item never.
//!
//! `SIM_SEEDS=n` runs n seeds (default 256); `SIM_SEED=s` replays one. A failure names its
//! seed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;
use sqlite_vector::change::{merge, Merge, Version};
use sqlite_vector::{
    Change, ManualClock, Metric, NewItem, OpenOptions, Profile, Shard, SiteId, Update,
};
use sqlite_vector_sync::proto::frame::Frame;
use sqlite_vector_sync::proto::{Config, Decoder, Grant, Session, ShardStore};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `p` / 1000.
    fn chance(&mut self, p: u64) -> bool {
        self.next() % 1000 < p
    }
}

const DIM: usize = 4;
const IDS: usize = 8;

struct Peer {
    shard: Shard,
    clock: Arc<ManualClock>,
    /// Every other peer's node name: the membership tombstone collection waits for.
    members: Vec<String>,
}

/// Peer `i`'s node name.
fn node(i: usize) -> String {
    format!("p{i}")
}

/// Peer `i` as a sync store, talking with peer `j`.
fn store<'a>(peers: &'a [Peer], i: usize, j: usize, names: &'a [String]) -> ShardStore<'a> {
    ShardStore {
        shard: &peers[i].shard,
        peer_node: Some(&names[j]),
        members: &peers[i].members,
    }
}

/// The node names of `n` peers.
fn names(n: usize) -> Vec<String> {
    (0..n).map(node).collect()
}

/// An item's register and version, as a change feed shows it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    version: (i64, i64, SiteId),
    vector: Option<Vec<u32>>,
    metadata: Option<String>,
    text: Option<String>,
}

fn row(c: &Change) -> Row {
    Row {
        version: (c.causal_length, c.hlc, c.site_id),
        vector: c
            .vector
            .as_ref()
            .map(|v| v.iter().map(|x| x.to_bits()).collect()),
        metadata: c.metadata.clone(),
        text: c.text.clone(),
    }
}

fn version(r: &Row) -> Version {
    Version {
        causal_length: r.version.0,
        hlc: r.version.1,
        site_id: r.version.2,
    }
}

fn dump(shard: &Shard) -> BTreeMap<String, Row> {
    shard
        .changes_since(0, usize::MAX)
        .expect("change feed")
        .iter()
        .map(|c| (c.id.clone(), row(c)))
        .collect()
}

/// The oracle: every version ever made, reduced by the merge rule.
#[derive(Default)]
struct Oracle(BTreeMap<String, Row>);

impl Oracle {
    fn record(&mut self, shard: &Shard) {
        for (id, r) in dump(shard) {
            match self.0.get(&id) {
                Some(old) if merge(Some(&version(old)), &version(&r)) != Merge::Apply => {
                    // The same version must carry the same register everywhere.
                    if version(old) == version(&r) {
                        assert_eq!(old, &r, "item {id}: one version, two registers");
                    }
                }
                _ => {
                    self.0.insert(id, r);
                }
            }
        }
    }
}

/// A connection between two peers carrying one session each way of the pair.
struct Link {
    a: usize,
    b: usize,
    init: Session,
    resp: Option<Session>,
    /// Packets (encoded frames, possibly split) in flight towards `b` and towards `a`.
    to_b: VecDeque<Vec<u8>>,
    to_a: VecDeque<Vec<u8>>,
    dec_a: Decoder,
    dec_b: Decoder,
}

fn packets(session: &mut Session, queue: &mut VecDeque<Vec<u8>>, rng: &mut Rng) {
    while let Some(f) = session.poll_transmit() {
        let mut bytes = Vec::new();
        f.encode(&mut bytes).expect("encode");
        if bytes.len() > 2 && rng.chance(200) {
            let cut = 1 + rng.below(bytes.len() - 1);
            let tail = bytes.split_off(cut);
            queue.push_back(bytes);
            queue.push_back(tail);
        } else {
            queue.push_back(bytes);
        }
    }
}

/// What a delivery did to a link.
#[derive(PartialEq)]
enum Step {
    Going,
    /// Both sessions finished.
    Finished,
    /// The connection is closed (an error on either side, or a reject delivered): why.
    Closed(String),
}

const ALL: Grant = Grant {
    pull: true,
    push: true,
};

fn cfg(rng: &mut Rng) -> Config {
    Config {
        chunk_changes: 1 + rng.below(4),
        chunk_bytes: 1 << 20,
        window: 1 + rng.below(3),
        collect_tombstones: rng.chance(800),
        peer_expiry_ms: None,
    }
}

/// Over all seeds of a run: snapshots received, items they deleted, tombstones collected.
static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);
static SNAPSHOT_DELETES: AtomicU64 = AtomicU64::new(0);
static COLLECTED: AtomicU64 = AtomicU64::new(0);

fn count(o: &sqlite_vector_sync::Outcome) {
    SNAPSHOTS.fetch_add(u64::from(o.snapshot_received), Ordering::Relaxed);
    SNAPSHOT_DELETES.fetch_add(o.snapshot_deleted, Ordering::Relaxed);
    COLLECTED.fetch_add(o.collected, Ordering::Relaxed);
}

/// The live items of a dump.
fn live(rows: &BTreeMap<String, Row>) -> BTreeMap<String, Row> {
    rows.iter()
        .filter(|(_, r)| r.version.0 % 2 == 1)
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect()
}

impl Link {
    fn open(a: usize, b: usize, peers: &[Peer], send: bool, receive: bool, rng: &mut Rng) -> Link {
        let names = names(peers.len());
        let mut init =
            Session::initiate("s", &store(peers, a, b, &names), send, receive, cfg(rng)).unwrap();
        let mut to_b = VecDeque::new();
        packets(&mut init, &mut to_b, rng);
        Link {
            a,
            b,
            init,
            resp: None,
            to_b,
            to_a: VecDeque::new(),
            dec_a: Decoder::new(),
            dec_b: Decoder::new(),
        }
    }

    fn finished(&self) -> bool {
        self.init.is_finished() && self.resp.as_ref().is_some_and(|r| r.is_finished())
    }

    /// Delivers one packet, towards `b` when `forward` (if any is waiting that way).
    fn deliver(&mut self, forward: bool, peers: &[Peer], rng: &mut Rng) -> Step {
        let packet = if forward {
            self.to_b.pop_front()
        } else {
            self.to_a.pop_front()
        };
        let Some(packet) = packet else {
            return Step::Going;
        };
        if forward {
            self.dec_b.push(&packet);
            loop {
                let frame = match self.dec_b.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Step::Closed(format!("b decode: {e}")),
                };
                let names = names(peers.len());
                let store = &store(peers, self.b, self.a, &names);
                match &mut self.resp {
                    None => {
                        let Frame::Hello(h) = frame else {
                            return Step::Closed("b: first frame not a hello".into());
                        };
                        let (s, r) = Session::respond(h, store, ALL, cfg(rng));
                        if let Err(e) = r {
                            return Step::Closed(format!("b respond: {e}"));
                        }
                        self.resp = Some(s);
                    }
                    Some(s) => {
                        if let Err(e) = s.handle(frame, store) {
                            return Step::Closed(format!("b: {e}"));
                        }
                    }
                }
                let s = self.resp.as_mut().expect("responder");
                packets(s, &mut self.to_a, rng);
            }
        } else {
            self.dec_a.push(&packet);
            loop {
                let frame = match self.dec_a.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Step::Closed(format!("a decode: {e}")),
                };
                let names = names(peers.len());
                if let Err(e) = self
                    .init
                    .handle(frame, &store(peers, self.a, self.b, &names))
                {
                    return Step::Closed(format!("a: {e}"));
                }
                packets(&mut self.init, &mut self.to_b, rng);
            }
        }
        if self.finished() {
            count(self.init.outcome());
            count(self.resp.as_ref().expect("responder").outcome());
            Step::Finished
        } else {
            Step::Going
        }
    }
}

/// Runs a two-way session between `a` and `b` with no faults until both finish.
fn sync_clean(a: usize, b: usize, peers: &[Peer], rng: &mut Rng) -> sqlite_vector_sync::Outcome {
    let mut link = Link::open(a, b, peers, true, true, rng);
    for _ in 0..100_000 {
        let forward = if link.to_b.is_empty() {
            false
        } else if link.to_a.is_empty() {
            true
        } else {
            rng.chance(500)
        };
        match link.deliver(forward, peers, rng) {
            Step::Finished => return link.init.outcome().clone(),
            Step::Closed(why) => panic!("a clean sync {a} <-> {b} failed: {why}"),
            Step::Going => {}
        }
        assert!(
            !(link.to_a.is_empty() && link.to_b.is_empty()),
            "a clean sync {a} <-> {b} stalled"
        );
    }
    panic!("a clean sync {a} <-> {b} did not finish");
}

/// [`sync_clean`], again after a snapshot (its session sends one way only): what a user's
/// `sync both` does.
fn sync_full(a: usize, b: usize, peers: &[Peer], rng: &mut Rng) -> sqlite_vector_sync::Outcome {
    let mut out = sync_clean(a, b, peers, rng);
    for _ in 0..2 {
        if !(out.snapshot_received || out.snapshot_sent) {
            break;
        }
        out = sync_clean(a, b, peers, rng);
    }
    assert!(
        !(out.snapshot_received || out.snapshot_sent),
        "{a} <-> {b}: a snapshot after a snapshot: {out:?}"
    );
    out
}

fn local_op(p: &Peer, rng: &mut Rng, n: &mut u64) {
    let id = format!("i{}", rng.below(IDS));
    *n += 1;
    let vector: Vec<f32> = (0..DIM)
        .map(|_| (rng.below(19) as f32) - 9.0 + 0.5)
        .collect();
    let alive = p.shard.get(&id).is_ok();
    if !alive {
        let mut item = NewItem::new(vector).with_id(id);
        if rng.chance(500) {
            item = item.with_metadata(json!({"n": *n, "tag": format!("t{}", rng.below(3))}));
        }
        if rng.chance(500) {
            item = item.with_text(format!("note {n} about {}", rng.below(5)));
        }
        p.shard.insert(item).expect("insert");
    } else if rng.chance(300) {
        p.shard.delete(&id).expect("delete");
    } else {
        let update = Update {
            vector: rng.chance(600).then_some(vector.clone()),
            metadata: rng.chance(500).then(|| json!({"n": *n})),
            text: rng.chance(300).then(|| format!("edited {n}")),
        };
        let update = if update == Update::default() {
            Update {
                vector: Some(vector),
                ..Update::default()
            }
        } else {
            update
        };
        p.shard.update(&id, update).expect("update");
    }
}

fn run(seed: u64) {
    let mut rng = Rng(seed);
    let n_peers = [2, 3, 5][(seed % 3) as usize];
    let peers: Vec<Peer> = (0..n_peers)
        .map(|i| {
            let clock = Arc::new(ManualClock::new(1_700_000_000_000 + rng.below(50) as i64));
            let mut site = [0u8; 16];
            site[0] = i as u8 + 1;
            site[1..9].copy_from_slice(&seed.to_le_bytes());
            let options = OpenOptions::default()
                .with_clock(clock.clone())
                .with_site_id(SiteId(site));
            let shard =
                Shard::in_memory_with(&Profile::new(DIM, Metric::Cosine), &options).expect("shard");
            let members = (0..n_peers).filter(|&j| j != i).map(node).collect();
            Peer {
                shard,
                clock,
                members,
            }
        })
        .collect();
    let mut oracle = Oracle::default();
    let mut links: Vec<Link> = Vec::new();
    let mut cut = vec![vec![false; n_peers]; n_peers];
    let mut n = 0u64;
    let steps = 120 + rng.below(120);
    for _ in 0..steps {
        let p = rng.below(n_peers);
        peers[p].clock.advance(rng.below(40) as i64);
        match rng.below(100) {
            0..=29 => {
                local_op(&peers[p], &mut rng, &mut n);
                oracle.record(&peers[p].shard);
            }
            30..=39 => {
                let q = (p + 1 + rng.below(n_peers - 1)) % n_peers;
                if !cut[p][q] {
                    let (send, receive) = match rng.below(3) {
                        0 => (true, false),
                        1 => (false, true),
                        _ => (true, true),
                    };
                    links.push(Link::open(p, q, &peers, send, receive, &mut rng));
                }
            }
            40..=42 => {
                // A partition starts or heals between two peers; links across it break.
                let q = (p + 1 + rng.below(n_peers - 1)) % n_peers;
                cut[p][q] = !cut[p][q];
                cut[q][p] = cut[p][q];
                links.retain(|l| !cut[l.a][l.b]);
            }
            43..=45 if !links.is_empty() => {
                // The connection is lost.
                let i = rng.below(links.len());
                links.swap_remove(i);
            }
            46..=47 if !links.is_empty() => {
                // A packet is duplicated or two are swapped: the session must notice or
                // stay correct.
                let i = rng.below(links.len());
                let q = if rng.chance(500) {
                    &mut links[i].to_b
                } else {
                    &mut links[i].to_a
                };
                if let Some(p0) = q.front().cloned() {
                    if rng.chance(500) {
                        q.push_front(p0);
                    } else if q.len() > 1 {
                        q.swap(0, 1);
                    }
                }
            }
            _ if !links.is_empty() => {
                let i = rng.below(links.len());
                let forward = rng.chance(500);
                match links[i].deliver(forward, &peers, &mut rng) {
                    Step::Going => {}
                    Step::Finished | Step::Closed(_) => {
                        links.swap_remove(i);
                    }
                }
            }
            _ => {}
        }
    }
    drop(links);
    // Heal, then sync along a random line of the peers and back.
    let mut order: Vec<usize> = (0..n_peers).collect();
    for i in (1..n_peers).rev() {
        order.swap(i, rng.below(i + 1));
    }
    for w in order.windows(2) {
        sync_full(w[0], w[1], &peers, &mut rng);
    }
    for w in order.windows(2).rev() {
        let out = sync_full(w[1], w[0], &peers, &mut rng);
        if !out.converged {
            let (x, y) = (dump(&peers[w[1]].shard), dump(&peers[w[0]].shard));
            for (id, r) in &x {
                if y.get(id) != Some(r) {
                    eprintln!("{id}: {:?}\n  vs {:?}", r, y.get(id));
                }
            }
            for (id, r) in &y {
                if !x.contains_key(id) {
                    eprintln!("{id}: missing\n  vs {:?}", r);
                }
            }
            eprintln!("{:?}", out);
            for i in [w[1], w[0]] {
                let st = peers[i].shard.sync_state().unwrap();
                eprintln!(
                    "peer {i}: site {:?} head {} horizon {} cursors {:?} peers {:?}",
                    st.site_id, st.head, st.horizon, st.cursors, st.peers
                );
            }
        }
        assert!(
            out.converged,
            "seed {seed}: a two-way sync ended with different digests"
        );
    }
    for (i, p) in peers.iter().enumerate() {
        assert_eq!(
            live(&dump(&p.shard)),
            live(&oracle.0),
            "seed {seed}: peer {i} differs from the oracle"
        );
        // A tombstone still held is the oracle's (collection only removes).
        for (id, r) in dump(&p.shard) {
            assert_eq!(
                oracle.0.get(&id),
                Some(&r),
                "seed {seed}: peer {i}, item {id}"
            );
        }
        p.shard.check_integrity().expect("integrity");
    }
    let digests: Vec<u64> = peers
        .iter()
        .map(|p| p.shard.sync_state().unwrap().digest)
        .collect();
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "seed {seed}: digests {digests:?}"
    );
    // An idle sync of up-to-date shards sends no change (the pair that synced last).
    let out = sync_clean(order[0], order[1], &peers, &mut rng);
    assert_eq!(
        (out.sent, out.received, out.chunks),
        (0, 0, (0, 0)),
        "seed {seed}"
    );
    assert!(out.converged);
}

#[test]
fn peers_converge_to_the_oracle_under_faults() {
    if let Ok(s) = std::env::var("SIM_SEED") {
        run(s.parse().expect("SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    for seed in 0..seeds {
        let r = std::panic::catch_unwind(|| run(seed));
        if r.is_err() {
            panic!("simulation failed for seed {seed}: replay with SIM_SEED={seed}");
        }
    }
    let (snapshots, deletes, collected) = (
        SNAPSHOTS.load(Ordering::Relaxed),
        SNAPSHOT_DELETES.load(Ordering::Relaxed),
        COLLECTED.load(Ordering::Relaxed),
    );
    eprintln!(
        "{seeds} seeds: {collected} tombstones collected, {snapshots} snapshots, \
         {deletes} items deleted by them"
    );
    // (With every peer a member and no expiry, nobody falls behind a collection: snapshots
    // are `a_peer_behind_the_collected_tombstones_gets_a_snapshot`'s.)
    if seeds >= 64 {
        assert!(collected > 0, "the seeds exercised no tombstone collection");
    }
}

/// A peer written off by tombstone collection gets a snapshot: it drops the item deleted
/// while it was away (whose tombstone is gone), keeps what it made meanwhile and what came
/// from a third peer the sender never saw, and the shards converge; a new peer gets a snapshot
/// too, which removes the item it had from the written-off peer.
#[test]
fn a_peer_behind_the_collected_tombstones_gets_a_snapshot() {
    let mut rng = Rng(7);
    let peers: Vec<Peer> = (0..3u8)
        .map(|i| {
            let clock = Arc::new(ManualClock::new(1_700_000_000_000));
            let options = OpenOptions::default()
                .with_clock(clock.clone())
                .with_site_id(SiteId([i + 1; 16]));
            let shard =
                Shard::in_memory_with(&Profile::new(DIM, Metric::Cosine), &options).expect("shard");
            // A trusts C only (T is a stranger to its trust list, and syncs anyway).
            let members = if i == 0 { vec![node(1)] } else { Vec::new() };
            Peer {
                shard,
                clock,
                members,
            }
        })
        .collect();
    let (a, c, t) = (0, 1, 2);
    let v = |x: f32| vec![x, 1.0, 0.5, -0.25];
    peers[a]
        .shard
        .insert(NewItem::new(v(1.0)).with_id("x"))
        .unwrap();
    peers[a]
        .shard
        .insert(NewItem::new(v(2.0)).with_id("keep"))
        .unwrap();
    sync_clean(a, c, &peers, &mut rng);
    assert!(peers[c].shard.get("x").is_ok());
    // C goes away. A deletes x and, C silent past the expiry, collects the tombstone.
    peers[a].clock.advance(10);
    peers[a].shard.delete("x").unwrap();
    peers[a]
        .shard
        .insert(NewItem::new(v(3.0)).with_id("after"))
        .unwrap();
    let none = peers[a].shard.collect_tombstones(&[node(c)], None).unwrap();
    assert_eq!(none.removed, 0, "C holds it back");
    peers[a].clock.advance(1_000);
    let got = peers[a]
        .shard
        .collect_tombstones(&[node(c)], Some(500))
        .unwrap();
    assert_eq!(got.removed, 1, "x's tombstone is collected");
    assert_eq!(peers[a].shard.stats().unwrap().tombstones, 0);
    // Meanwhile C made an item, and T (which never met A) another, which C takes.
    peers[c]
        .shard
        .insert(NewItem::new(v(4.0)).with_id("mine"))
        .unwrap();
    peers[t]
        .shard
        .insert(NewItem::new(v(5.0)).with_id("third"))
        .unwrap();
    let out = sync_clean(c, t, &peers, &mut rng);
    assert!(!out.snapshot_received && !out.snapshot_sent, "{out:?}");
    assert!(peers[t].shard.get("x").is_ok(), "T has x from C");
    let out = sync_clean(c, a, &peers, &mut rng);
    assert!(
        out.snapshot_received,
        "C was behind A's collection: {out:?}"
    );
    assert_eq!(out.snapshot_deleted, 1, "{out:?}");
    assert_eq!(
        out.sent, 0,
        "a side taking a snapshot sends nothing yet: {out:?}"
    );
    let out = sync_clean(c, a, &peers, &mut rng);
    assert!(!out.snapshot_received && out.converged, "{out:?}");
    // T never met A: a snapshot too, and x (made at A, gone there) goes.
    let out = sync_full(t, a, &peers, &mut rng);
    assert!(out.converged, "{out:?}");
    sync_full(c, t, &peers, &mut rng);
    sync_full(c, a, &peers, &mut rng);
    for (p, peer) in peers.iter().enumerate() {
        let s = &peer.shard;
        assert!(s.get("x").is_err(), "peer {p}: x stays deleted");
        for id in ["keep", "after", "mine", "third"] {
            assert!(s.get(id).is_ok(), "peer {p}: {id} is kept");
        }
    }
    let digests: Vec<u64> = peers
        .iter()
        .map(|p| p.shard.sync_state().unwrap().digest)
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    // The next sessions are deltas again (the first carries C's tombstone of x), then idle.
    let again = sync_clean(c, a, &peers, &mut rng);
    assert!(
        !again.snapshot_received && !again.snapshot_sent,
        "{again:?}"
    );
    let again = sync_clean(c, a, &peers, &mut rng);
    assert_eq!((again.sent, again.received), (0, 0), "{again:?}");
}
