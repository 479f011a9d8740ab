//! The crash-and-concurrency soak: two processes write the same root (shared shards, and shards
//! each one drops and re-creates), build and drop indexes, and are killed with `SIGKILL` at
//! random moments, again and again. After every kill this process reopens the root and checks
//! every shard: `integrity_check`, no damage, and every acknowledged write exactly as
//! acknowledged (a write in flight at the kill may or may not have landed, all or nothing).
//!
//! `SV_SOAK_ITERS` sets the number of kill rounds (default 12, a few seconds);
//! `SV_SOAK_SEED` the seed. The README's reliability section quotes a long run.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlite_vector::{
    Error, HnswParams, ManagerOptions, Metric, NewItem, Profile, SearchParams, ShardManager, Update,
};
use sqlite_vector_dataset::SeededRng;

const DIM: usize = 16;
/// Shards both children write.
const SHARED: [&str; 2] = ["shared/a", "shared/b"];

/// One operation, as the child announces it before running it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// Upserts `ids` (one transaction), each with version `ver`.
    Put {
        shard: String,
        ids: Vec<String>,
        ver: u64,
    },
    /// Replaces the metadata of `id` with `{"ver": ver, "touch": touch}`.
    Touch {
        shard: String,
        id: String,
        touch: u64,
    },
    /// Deletes `id`.
    Delete { shard: String, id: String },
    /// Builds the shard's index.
    Index { shard: String },
    /// Drops the shard's index.
    DropIndex { shard: String },
    /// Drops the shard and creates it again, empty.
    Recreate { shard: String },
}

/// The vector of version `ver` of item `id` (the same in every process).
fn vector(id: &str, ver: u64) -> Vec<f32> {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    SeededRng((h ^ ver.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1).vec(DIM)
}

fn profile() -> Profile {
    Profile::new(DIM, Metric::Cosine)
}

/// Child side: random operations forever on `SV_SOAK_ROOT`, announcing each (`begin <json>`)
/// and reporting its outcome (`ack` or `fail <message>`), until the parent kills it.
#[test]
#[ignore = "child process of another test"]
fn soak_child() {
    let root = std::env::var("SV_SOAK_ROOT").expect("SV_SOAK_ROOT (set by the parent test)");
    let child: u64 = std::env::var("SV_SOAK_CHILD").unwrap().parse().unwrap();
    let seed: u64 = std::env::var("SV_SOAK_SEED").unwrap().parse().unwrap();
    let manager = ShardManager::open(&root, ManagerOptions::default()).unwrap();
    let own = format!("c{child}/own");
    let mut rng = SeededRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut pick = |n: u64| (rng.next_u64() % n) as usize;
    let mut out = std::io::stdout().lock();
    for step in 0u64.. {
        let shard = if pick(3) == 0 {
            own.clone()
        } else {
            SHARED[pick(2)].to_owned()
        };
        // Ids are this child's own (`c0-17`): the other child never writes them.
        let id = |k: usize| format!("c{child}-{k}");
        let op = match pick(100) {
            0..=44 => Op::Put {
                ids: vec![id(pick(60))],
                shard,
                ver: step,
            },
            45..=59 => {
                let first = pick(60);
                Op::Put {
                    ids: (first..first + 1 + pick(40)).map(id).collect(),
                    shard,
                    ver: step,
                }
            }
            60..=74 => Op::Touch {
                shard,
                id: id(pick(60)),
                touch: step,
            },
            75..=89 => Op::Delete {
                shard,
                id: id(pick(60)),
            },
            90..=93 => Op::Index { shard },
            94..=96 => Op::DropIndex { shard },
            _ => Op::Recreate { shard: own.clone() },
        };
        writeln!(out, "begin {}", serde_json::to_string(&op).unwrap()).unwrap();
        out.flush().unwrap();
        let r = run(&manager, &op);
        match r {
            Ok(()) => writeln!(out, "ack").unwrap(),
            Err(e) => writeln!(out, "fail {e}").unwrap(),
        }
        out.flush().unwrap();
    }
}

fn run(manager: &ShardManager, op: &Op) -> sqlite_vector::Result<()> {
    let open = |name: &str| match manager.open_shard(name) {
        Err(Error::UnknownShard(_)) => manager.create(name, &profile()),
        r => r,
    };
    match op {
        Op::Put { shard, ids, ver } => {
            let items = ids
                .iter()
                .map(|id| {
                    NewItem::new(vector(id, *ver))
                        .with_id(id.clone())
                        .with_metadata(json!({"ver": ver}))
                })
                .collect();
            open(shard)?.upsert_batch(items).map(drop)
        }
        Op::Touch { shard, id, touch } => {
            let s = open(shard)?;
            let ver = s.get(id)?.metadata["ver"].clone();
            s.update(
                id,
                Update {
                    metadata: Some(json!({"ver": ver, "touch": touch})),
                    ..Default::default()
                },
            )
        }
        Op::Delete { shard, id } => open(shard)?.delete(id),
        Op::Index { shard } => open(shard)?.create_index(HnswParams::default()),
        Op::DropIndex { shard } => open(shard)?.drop_index().map(drop),
        Op::Recreate { shard } => {
            match manager.drop_shard(shard) {
                Ok(()) | Err(Error::UnknownShard(_)) => {}
                Err(e) => return Err(e),
            }
            manager.create(shard, &profile()).map(drop)
        }
    }
}

/// An item as acknowledged: its version and metadata.
type Items = BTreeMap<String, (u64, Value)>;

/// What the parent knows: per shard, the acknowledged items (`None`: the shard may not exist).
#[derive(Default, Clone)]
struct Model {
    shards: HashMap<String, Items>,
}

impl Model {
    /// The model after `op` succeeded.
    fn apply(&self, op: &Op) -> Model {
        let mut m = self.clone();
        match op {
            Op::Put { shard, ids, ver } => {
                let items = m.shards.entry(shard.clone()).or_default();
                for id in ids {
                    items.insert(id.clone(), (*ver, json!({"ver": ver})));
                }
            }
            Op::Touch { shard, id, touch } => {
                if let Some((ver, meta)) = m.shards.get_mut(shard).and_then(|s| s.get_mut(id)) {
                    *meta = json!({"ver": ver, "touch": touch});
                }
            }
            Op::Delete { shard, id } => {
                if let Some(s) = m.shards.get_mut(shard) {
                    s.remove(id);
                }
            }
            Op::Index { .. } | Op::DropIndex { .. } => {}
            Op::Recreate { shard } => {
                m.shards.insert(shard.clone(), Items::new());
            }
        }
        m
    }
}

/// The items of shard `name` as stored (`None` when it does not exist).
fn stored(manager: &ShardManager, name: &str) -> Option<Items> {
    let shard = match manager.open_shard(name) {
        Err(Error::UnknownShard(_)) => return None,
        r => r.unwrap_or_else(|e| panic!("{name}: cannot open after a kill: {e}")),
    };
    shard
        .check_integrity()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let stats = shard.stats().unwrap();
    assert!(stats.damage.is_empty(), "{name}: {:?}", stats.damage);
    let rows = shard
        .query_sql("SELECT id FROM items WHERE cl % 2 = 1", &[])
        .unwrap();
    let mut items = Items::new();
    for row in rows {
        let sqlite_vector::rusqlite::types::Value::Text(id) = &row[0] else {
            panic!("id {row:?}");
        };
        let item = shard.get(id).unwrap();
        let ver = item.metadata["ver"].as_u64().unwrap();
        assert_eq!(
            item.vector,
            vector(id, ver),
            "{name}/{id}: vector of version {ver}"
        );
        items.insert(id.clone(), (ver, item.metadata));
    }
    // Searches work (exactly, or through the index) and return stored items only.
    if let Some((id, (ver, _))) = items.iter().next() {
        let hits = shard
            .search(&vector(id, *ver), &SearchParams::k(5).with_exact(true))
            .unwrap();
        assert_eq!(&hits[0].id, id, "{name}: exact search finds {id}");
    }
    Some(items)
}

/// The ids whose stored and acknowledged states differ, with both.
fn diff(got: Option<&Items>, want: Option<&Items>) -> Vec<String> {
    let empty = Items::new();
    let (got, want) = (got.unwrap_or(&empty), want.unwrap_or(&empty));
    let mut ids: Vec<&String> = got.keys().chain(want.keys()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .filter(|id| got.get(*id) != want.get(*id))
        .map(|id| {
            format!(
                "{id}: stored {:?}, acknowledged {:?}",
                got.get(id),
                want.get(id)
            )
        })
        .collect()
}

/// One child's announced operations: the acknowledged ones applied to `model`, the last one
/// (if it was in flight at the kill) returned.
fn replay(lines: &Receiver<String>, model: &mut Model, acked: &mut usize) -> Option<Op> {
    let mut pending: Option<Op> = None;
    while let Ok(line) = lines.recv() {
        // The first line follows the test harness's own `test soak::soak_child ... `.
        if let Some(at) = line.find("begin {") {
            pending = Some(serde_json::from_str(&line[at + 6..]).unwrap());
        } else if line == "ack" {
            let op = pending.take().expect("ack without begin");
            if matches!(op, Op::Put { .. } | Op::Touch { .. } | Op::Delete { .. }) {
                *acked += 1;
            }
            *model = model.apply(&op);
        } else if line.starts_with("fail ") {
            pending = None;
        }
    }
    pending
}

fn spawn(root: &Path, child: u64, seed: u64) -> (std::process::Child, Receiver<String>) {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "soak::soak_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SV_SOAK_ROOT", root)
        .env("SV_SOAK_CHILD", child.to_string())
        .env("SV_SOAK_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = channel();
    let stdout = c.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (c, rx)
}

#[test]
fn kill_9_during_writes_index_builds_and_shard_drops_loses_nothing_acknowledged() {
    let iters: usize = std::env::var("SV_SOAK_ITERS").map_or(12, |v| v.parse().unwrap());
    let seed: u64 = std::env::var("SV_SOAK_SEED").map_or(1, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mut rng = SeededRng(seed | 1);
    let mut model = Model::default();
    let (mut acked, mut in_flight) = (0usize, 0usize);
    let started = std::time::Instant::now();
    for round in 0..iters {
        let children: Vec<_> = (0..2)
            .map(|c| spawn(&root, c, seed * 1000 + round as u64 * 2 + c))
            .collect();
        // Let them run 30–330 ms, then kill each at its own moment.
        std::thread::sleep(Duration::from_millis(30 + rng.next_u64() % 300));
        let mut pendings = Vec::new();
        for (mut child, lines) in children {
            std::thread::sleep(Duration::from_millis(rng.next_u64() % 20));
            child.kill().unwrap();
            child.wait().unwrap();
            pendings.push(replay(&lines, &mut model, &mut acked));
        }
        // Check every shard against the model, where an operation in flight may have landed.
        let manager = ShardManager::open(&root, ManagerOptions::default()).unwrap();
        let mut names: Vec<String> = model.shards.keys().cloned().collect();
        for op in pendings.iter().flatten() {
            let (Op::Put { shard, .. }
            | Op::Touch { shard, .. }
            | Op::Delete { shard, .. }
            | Op::Index { shard }
            | Op::DropIndex { shard }
            | Op::Recreate { shard }) = op;
            names.push(shard.clone());
        }
        names.sort();
        names.dedup();
        for name in &names {
            let got = stored(&manager, name);
            // Each child's ids are its own, so the two in-flight operations are independent:
            // every combination of landed / not landed is a valid outcome.
            let mut candidates = vec![model.clone()];
            for op in pendings.iter().flatten() {
                let more: Vec<Model> = candidates.iter().map(|m| m.apply(op)).collect();
                candidates.extend(more);
            }
            let ok = candidates.iter().any(|m| match (m.shards.get(name), &got) {
                (Some(want), Some(got)) => want == got,
                // Never written, or dropped and not yet re-created by the op in flight.
                (None, None) => true,
                (Some(want), None) => {
                    want.is_empty()
                        && pendings
                            .iter()
                            .flatten()
                            .any(|op| matches!(op, Op::Recreate { shard } if shard == name))
                }
                (None, Some(got)) => got.is_empty(),
            });
            assert!(
                ok,
                "round {round}, shard {name}: stored vs acknowledged differ at {:?}; in flight \
                 {pendings:?}",
                diff(got.as_ref(), model.shards.get(name))
            );
            // Continue from what is stored.
            match got {
                Some(items) => {
                    model.shards.insert(name.clone(), items);
                }
                None => {
                    model.shards.remove(name);
                }
            }
        }
        in_flight += pendings.iter().flatten().count();
        drop(manager);
        sqlite_vector::wait_for_closes(Duration::from_secs(30));
    }
    let items: usize = model.shards.values().map(BTreeMap::len).sum();
    println!(
        "soak: {iters} rounds, {} kills, {acked} acknowledged writes verified, {in_flight} \
         operations in flight at a kill, {items} items at the end, {:.1} s",
        iters * 2,
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked > iters,
        "the children wrote: {acked} acknowledged writes"
    );
}
