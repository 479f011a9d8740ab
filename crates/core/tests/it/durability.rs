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
/// Not a test of its own: ignored in a plain run (listed as such), run by its parent with
/// `--ignored --exact`; it fails, never passes vacuously, without its parent's environment.
#[test]
#[ignore = "child process of another test"]
fn crash_child() {
    let path = std::env::var("SV_CRASH_PATH").expect("SV_CRASH_PATH (set by the parent test)");
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
            "--ignored",
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

fn sidecar(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

#[cfg(feature = "fs-metadata")]
fn ids_of(shard: &Shard) -> Vec<String> {
    shard
        .query_sql("SELECT id FROM items WHERE cl % 2 = 1 ORDER BY id", &[])
        .unwrap()
        .into_iter()
        .map(|r| match &r[0] {
            SqlValue::Text(t) => t.clone(),
            v => panic!("id {v:?}"),
        })
        .collect()
}

#[test]
fn a_closed_shard_is_one_self_contained_file() {
    for (mode, explicit) in [
        (Durability::Normal, true),
        (Durability::Normal, false),
        (Durability::Full, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let shard = Shard::create(
            &path,
            &Profile::new(64, Metric::Cosine).with_durability(mode),
        )
        .unwrap();
        for (i, v) in random_vectors(10, 64, 3).into_iter().enumerate() {
            shard
                .insert(NewItem::new(v).with_id(i.to_string()))
                .unwrap();
        }
        // A reader connection is open too (the search); the last connection to close
        // checkpoints.
        shard.search(&[0.5; 64], &SearchParams::k(3)).unwrap();
        assert!(
            sidecar(&path, "-wal").exists(),
            "{mode}: the WAL while open"
        );
        if explicit {
            shard.close();
        } else {
            // Dropped: the checkpoint runs off this thread.
            drop(shard);
            assert!(sqlite_vector::wait_for_closes(
                std::time::Duration::from_secs(30)
            ));
        }
        assert!(
            !sidecar(&path, "-wal").exists(),
            "{mode}: no -wal after close"
        );
        assert!(
            !sidecar(&path, "-shm").exists(),
            "{mode}: no -shm after close"
        );
        // Ten 64-d items without text: the main file only, at most 24 KiB (issue 11's target).
        let bytes = std::fs::metadata(&path).unwrap().len();
        assert!(
            bytes <= 24 * 1024,
            "{mode}: a closed tiny shard takes {bytes} bytes"
        );
        // Copying the file alone copies every item.
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        assert_eq!(Shard::open(&copy).unwrap().len(), 10, "{mode}");
    }
}

// The WAL's owner is checked with file metadata (feature `fs-metadata`).
#[cfg(feature = "fs-metadata")]
#[test]
fn a_wal_of_another_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new(8, Metric::L2);
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let vectors = random_vectors(20, 8, 4);
    for (path, prefix) in [(&a, "a"), (&b, "b")] {
        let shard = Shard::create(path, &profile).unwrap();
        for (i, v) in vectors.iter().enumerate() {
            shard
                .insert(NewItem::new(v.clone()).with_id(format!("{prefix}{i}")))
                .unwrap();
        }
    }
    // Both closed: their files hold everything (a main file never checkpointed has no identity
    // to compare a WAL with).
    assert!(sqlite_vector::wait_for_closes(
        std::time::Duration::from_secs(30)
    ));
    // 1. Another shard's -wal copied beside `a` (taken while `b` is open: its WAL holds its
    //    pages, its profile and site id among them).
    let b_open = Shard::open(&b).unwrap();
    b_open
        .insert(NewItem::new(vectors[0].clone()).with_id("b-extra"))
        .unwrap();
    std::fs::copy(sidecar(&b, "-wal"), sidecar(&a, "-wal")).unwrap();
    drop(b_open);
    let e = Shard::open(&a)
        .err()
        .expect("a foreign WAL must be refused");
    assert!(matches!(e, sqlite_vector::Error::Corrupt(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("a.db-wal belongs to another shard") && msg.contains("move the -wal"),
        "{msg}"
    );
    // Refusing changed nothing: without the foreign log, `a` is intact.
    for s in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sidecar(&a, s));
    }
    let shard = Shard::open(&a).unwrap();
    assert_eq!(ids_of(&shard).len(), 20);
    assert!(ids_of(&shard).iter().all(|id| id.starts_with('a')));
    shard.check_integrity().unwrap();
    drop(shard);

    // 2. A `.db` copied over a shard that still has its old -wal (here: `b`'s file over `a`,
    //    whose WAL is left from a handle that was killed before it could close).
    // (The background close of the handle above must not checkpoint the new handle's WAL
    // before it is copied.)
    assert!(sqlite_vector::wait_for_closes(
        std::time::Duration::from_secs(30)
    ));
    let a_open = Shard::open(&a).unwrap();
    a_open
        .insert(NewItem::new(vectors[1].clone()).with_id("a-extra"))
        .unwrap();
    let a_wal = std::fs::read(sidecar(&a, "-wal")).unwrap();
    assert!(!a_wal.is_empty());
    a_open.close();
    std::fs::copy(&b, &a).unwrap();
    std::fs::write(sidecar(&a, "-wal"), a_wal).unwrap();
    let e = Shard::open(&a)
        .err()
        .expect("a stale WAL of the replaced file must be refused");
    assert!(e.to_string().contains("belongs to another shard"), "{e}");
    std::fs::remove_file(sidecar(&a, "-wal")).unwrap();
    let _ = std::fs::remove_file(sidecar(&a, "-shm"));
    let shard = Shard::open(&a).unwrap();
    assert!(ids_of(&shard).iter().all(|id| id.starts_with('b')));
    assert_eq!(shard.len(), 21);
}

#[test]
fn a_shard_opened_read_only_is_searched_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let vectors = random_vectors(30, 8, 8);
    let shard = Shard::create(&path, &Profile::new(8, Metric::L2)).unwrap();
    crate::fill(&shard, &vectors);
    shard.close();
    let before = std::fs::read(&path).unwrap();
    let ro = Shard::open_with_options(
        &path,
        &sqlite_vector::OpenOptions::default().with_read_only(true),
    )
    .unwrap();
    assert_eq!(ro.len(), 30);
    assert_eq!(
        ro.search(&vectors[4], &SearchParams::k(1)).unwrap()[0].id,
        "4"
    );
    assert_eq!(ro.get("7").unwrap().vector, vectors[7]);
    ro.check_integrity().unwrap();
    for e in [
        ro.insert(NewItem::new(vectors[0].clone()).with_id("new"))
            .unwrap_err(),
        ro.delete("3").unwrap_err(),
        ro.create_index(sqlite_vector::HnswParams::default())
            .unwrap_err(),
    ] {
        assert!(matches!(e, sqlite_vector::Error::ReadOnly(_)), "{e}");
        assert_eq!(e.kind(), sqlite_vector::ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("read-only shard: "), "{e}");
    }
    // Nothing was created beside the file (immutable mode, chosen when file metadata shows no
    // `-wal`: feature `fs-metadata`; else `mode=ro`, whose `-shm` SQLite creates) and nothing
    // in it changed.
    let immutable = cfg!(feature = "fs-metadata");
    if immutable {
        assert!(!sidecar(&path, "-wal").exists() && !sidecar(&path, "-shm").exists());
    }
    drop(ro);
    assert!(sqlite_vector::wait_for_closes(
        std::time::Duration::from_secs(30)
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    if immutable {
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

/// Child side of `a_shard_in_a_read_only_directory_is_searched`: opens and searches the shard
/// at `SV_RO_PATH` (run as a user who cannot write its directory).
#[cfg(feature = "fs-metadata")]
#[test]
#[ignore = "child process of another test"]
fn read_only_child() {
    let path = std::env::var("SV_RO_PATH").expect("SV_RO_PATH (set by the parent test)");
    let shard = Shard::open(&path).unwrap();
    let hits = shard.search(&[1.0; 8], &SearchParams::k(3)).unwrap();
    assert_eq!(hits.len(), 3);
    let e = shard
        .insert(NewItem::new(vec![1.0; 8]).with_id("x"))
        .unwrap_err();
    assert!(matches!(e, sqlite_vector::Error::ReadOnly(_)), "{e}");
    println!("read-only ok");
}

// Needs SQLite's immutable mode, chosen when file metadata shows no `-wal` (feature
// `fs-metadata`): `mode=ro` would create a `-shm` in the directory.
#[cfg(feature = "fs-metadata")]
#[test]
fn a_shard_in_a_read_only_directory_is_searched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ro_dir = dir.path().join("ro");
    std::fs::create_dir(&ro_dir).unwrap();
    let path = ro_dir.join("s.db");
    let shard = Shard::create(&path, &Profile::new(8, Metric::Cosine)).unwrap();
    crate::fill(&shard, &random_vectors(10, 8, 2));
    shard.close();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes anywhere: run the child as `nobody` then (a copy of this binary it can run).
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if runs_as_root() {
        let copy = dir.path().join("it-test");
        std::fs::copy(&exe, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(copy);
        c
    } else {
        Command::new(exe)
    };
    let out = cmd
        .args([
            "durability::read_only_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("SV_RO_PATH", &path)
        .output()
        .expect("run the read-only child (setpriv is needed when the tests run as root)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        out.status.success() && stdout.contains("read-only ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was left beside the file.
    assert_eq!(std::fs::read_dir(&ro_dir).unwrap().count(), 1);
}

/// Whether this process runs as root (which writes to read-only directories).
#[cfg(feature = "fs-metadata")]
fn runs_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    })
}

#[test]
fn a_full_shard_is_one_file_when_its_drop_returns() {
    // A `full` shard checkpoints its WAL into the file as its last connection closes. Right
    // after a big commit the background checkpointer has the shard's reader pool in hand (it
    // waits for the shard to go idle); the drop must still close every connection itself.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        let shard = Shard::create(
            &path,
            &Profile::new(64, Metric::L2).with_durability(Durability::Full),
        )
        .unwrap();
        let vectors = random_vectors(2000, 64, round);
        // A search first: a reader connection sits in the pool.
        crate::fill(&shard, &vectors[..10]);
        shard.search(&vectors[0], &SearchParams::k(1)).unwrap();
        let rest = (10..vectors.len())
            .map(|i| NewItem::new(vectors[i].clone()).with_id(i.to_string()))
            .collect();
        shard.insert_batch(rest).unwrap();
        drop(shard);
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > 100_000, "round {round}: the file holds {len} bytes");
        assert!(
            !sidecar(&path, "-wal").exists(),
            "round {round}: a -wal is left"
        );
    }
}

#[test]
fn a_backup_is_one_consistent_file_taken_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let shard = std::sync::Arc::new(Shard::create(&path, &Profile::new(8, Metric::L2)).unwrap());
    let vectors = random_vectors(200, 8, 12);
    crate::fill(&shard, &vectors[..100]);
    // A writer carries on while the backup is taken.
    let writer = {
        let shard = std::sync::Arc::clone(&shard);
        let vectors = vectors.clone();
        std::thread::spawn(move || {
            for (i, v) in vectors.iter().enumerate().skip(100) {
                shard
                    .insert(NewItem::new(v.clone()).with_id(i.to_string()))
                    .unwrap();
            }
        })
    };
    let copy = dir.path().join("copy.db");
    shard.backup_to(&copy).unwrap();
    writer.join().unwrap();
    let e = shard.backup_to(&copy).unwrap_err();
    assert!(matches!(e, sqlite_vector::Error::AlreadyExists(_)), "{e}");
    assert!(!sidecar(&copy, "-wal").exists());
    let restored = Shard::open(&copy).unwrap();
    restored.check_integrity().unwrap();
    let n = restored.len();
    assert!((100..=200).contains(&n), "a snapshot: {n} items");
    // A snapshot: the first n items of the writer's order, exactly.
    for (i, v) in vectors.iter().enumerate() {
        match restored.get(&i.to_string()) {
            Ok(item) => assert!(i < n && item.vector == *v, "item {i}"),
            Err(_) => assert!(i >= n, "item {i} missing from a snapshot of {n}"),
        }
    }
    assert_eq!(
        restored.stats().unwrap().site_id,
        shard.stats().unwrap().site_id
    );
}

#[test]
fn an_in_memory_shard_backs_up_to_a_file_and_keeps_writing() {
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard::in_memory(&Profile::new(4, Metric::Cosine)).unwrap();
    shard
        .insert(NewItem::new(vec![1.0, 0.0, 0.0, 0.0]).with_id("a"))
        .unwrap();
    let copy = dir.path().join("mem.db");
    shard.backup_to(&copy).unwrap();
    shard
        .insert(NewItem::new(vec![0.0, 1.0, 0.0, 0.0]).with_id("b"))
        .unwrap();
    assert_eq!(Shard::open(&copy).unwrap().len(), 1);
}
