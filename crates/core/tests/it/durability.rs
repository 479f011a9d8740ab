//! Durability modes and crash safety: an acknowledged write survives `kill -9`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use sqlite_vector::rusqlite::types::Value as SqlValue;
use sqlite_vector::{Durability, Metric, NewItem, Profile, SearchParams, Shard};

use crate::random_vectors;

fn pragma(shard: &Shard, name: &str) -> SqlValue {
    shard
        .query_sql(&format!("SELECT * FROM pragma_{name}()"), &[])
        .unwrap()[0][0]
        .clone()
}

#[test]
fn modes_set_the_documented_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, sync) in [(Durability::Full, 2), (Durability::Normal, 1)] {
        let path = dir.path().join(format!("{mode}.db"));
        let shard =
            Shard::create(&path, &Profile::new(4, Metric::L2).with_durability(mode)).unwrap();
        assert_eq!(pragma(&shard, "journal_mode"), SqlValue::Text("wal".into()));
        assert_eq!(pragma(&shard, "synchronous"), SqlValue::Integer(sync));
        assert_eq!(shard.stats().unwrap().durability, mode);
        drop(shard);
        // Reopening keeps the recorded mode; open_with overrides it for the handle.
        let shard = Shard::open(&path).unwrap();
        assert_eq!(pragma(&shard, "synchronous"), SqlValue::Integer(sync));
        let other = if mode == Durability::Full {
            Durability::Normal
        } else {
            Durability::Full
        };
        let shard = Shard::open_with(&path, Some(other)).unwrap();
        assert_eq!(shard.stats().unwrap().durability, other);
    }
    let mem = Shard::in_memory(&Profile::new(4, Metric::L2)).unwrap();
    assert_eq!(
        pragma(&mem, "journal_mode"),
        SqlValue::Text("memory".into())
    );
    assert_eq!(mem.path(), None);
    assert_eq!(mem.stats().unwrap().durability, Durability::Memory);
    mem.insert(NewItem::new(vec![1.0; 4]).with_id("x")).unwrap();
    assert_eq!(
        mem.search(&[1.0; 4], &SearchParams::k(1)).unwrap()[0].id,
        "x"
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.starts_with("full.db") || name.starts_with("normal.db"),
            "stray file {name}"
        );
    }
}

/// Child side of the crash tests: inserts forever (single items, or batches of 100), printing
/// `ack N` after each acknowledged write, until the parent kills it.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var("SV_CRASH_PATH") else {
        return;
    };
    let batch: usize = std::env::var("SV_CRASH_BATCH").unwrap().parse().unwrap();
    let shard = Shard::open(&path).unwrap();
    let mut out = std::io::stdout().lock();
    let vectors = random_vectors(1000, 32, 1);
    for i in 0.. {
        if batch == 1 {
            shard
                .insert(NewItem::new(vectors[i % 1000].clone()).with_id(i.to_string()))
                .unwrap();
        } else {
            let items = (0..batch)
                .map(|j| {
                    NewItem::new(vectors[(i * batch + j) % 1000].clone())
                        .with_id((i * batch + j).to_string())
                })
                .collect();
            shard.insert_batch(items).unwrap();
        }
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

fn crash_run(mode: Durability, batch: usize, acks_before_kill: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    drop(
        Shard::create(
            &path,
            &Profile::new(32, Metric::Cosine).with_durability(mode),
        )
        .unwrap(),
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SV_CRASH_PATH", &path)
        .env("SV_CRASH_BATCH", batch.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut last_ack = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("ack ") {
            last_ack = Some(n.parse::<usize>().unwrap());
            if last_ack == Some(acks_before_kill) {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no checkpoint.
    child.wait().unwrap();
    let acked = (last_ack.expect("child acknowledged writes") + 1) * batch;
    let shard = Shard::open(&path).unwrap();
    shard.check_integrity().unwrap();
    let n = shard.len();
    assert!(
        n >= acked,
        "{mode}: {acked} writes acknowledged, {n} survived"
    );
    assert_eq!(n % batch, 0, "a batch is all or nothing");
    let vectors = random_vectors(1000, 32, 1);
    for i in (0..acked).step_by(37) {
        assert_eq!(shard.get(&i.to_string()).unwrap().vector, vectors[i % 1000]);
    }
    let hits = shard.search(&vectors[5], &SearchParams::k(1)).unwrap();
    assert!(
        (hits[0].score - 1.0).abs() < 1e-5,
        "the copy of query 5 is found"
    );
    // The reopened shard takes new writes.
    shard
        .insert(NewItem::new(vectors[0].clone()).with_id("after-crash"))
        .unwrap();
}

#[test]
fn acknowledged_single_inserts_survive_kill_9_normal() {
    crash_run(Durability::Normal, 1, 300);
}

#[test]
fn acknowledged_single_inserts_survive_kill_9_full() {
    crash_run(Durability::Full, 1, 100);
}

#[test]
fn batches_are_atomic_under_kill_9() {
    crash_run(Durability::Normal, 100, 40);
}
