//! The shard manager against a hostile environment: shards dropped and re-created behind an
//! open handle, symbolic links inside the root, a low file-descriptor limit.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlite_vector::{
    Error, ErrorKind, ManagerOptions, Metric, NewItem, Profile, SearchParams, ShardManager,
};

fn manager(dir: &Path) -> ShardManager {
    ShardManager::open(dir, ManagerOptions::default()).unwrap()
}

fn item(id: &str) -> NewItem {
    NewItem::new(vec![1.0, 0.5, 0.25, 0.125]).with_id(id)
}

fn profile() -> Profile {
    Profile::new(4, Metric::Cosine)
}

// -------------------------------------------------------------- drop + re-create elsewhere

/// Manager `a` has `s` open (in its LRU); manager `b` on the same root drops and re-creates
/// it. `a`'s next operation must reach the new shard, not the removed file.
#[test]
fn cached_handle_follows_a_drop_and_re_create_by_another_manager() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (manager(dir.path()), manager(dir.path()));
    a.create("s", &profile())
        .unwrap()
        .insert(item("old"))
        .unwrap();
    assert_eq!(a.open_count(), 1);
    b.drop_shard("s").unwrap();
    assert_eq!(
        a.open_shard("s").map(drop).unwrap_err().kind(),
        ErrorKind::UnknownShard
    );
    b.create("s", &profile()).unwrap();
    let fresh = a.open_shard("s").unwrap();
    assert!(fresh.is_empty(), "a still reads the dropped shard");
    fresh.insert(item("new")).unwrap();
    drop(fresh);
    // The write is in the live file: `b` (which has the new shard open) and a third manager
    // see it.
    let seen = b.open_shard("s").unwrap();
    seen.refresh().unwrap();
    assert_eq!(seen.get("new").unwrap().id, "new");
    assert!(seen.get("old").is_err());
    drop(seen);
    drop((a, b));
    assert_eq!(manager(dir.path()).open_shard("s").unwrap().len(), 1);
}

/// A caller holds `s`'s handle while another manager drops and re-creates `s`: its writes are
/// refused (`ShardDropped`), never acknowledged into the removed file.
#[test]
fn held_handle_cannot_write_after_a_drop_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (manager(dir.path()), manager(dir.path()));
    let held = a.create("s", &profile()).unwrap();
    held.insert(item("before")).unwrap();
    b.drop_shard("s").unwrap();
    match held.insert(item("after-drop")) {
        Err(Error::ShardDropped) => {}
        other => panic!("write into the dropped file gave {other:?}"),
    }
    b.create("s", &profile()).unwrap();
    let err = held.insert(item("after-create")).unwrap_err();
    assert!(matches!(err, Error::ShardDropped), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::UnknownShard);
    assert!(err.to_string().contains("nothing was written"), "{err}");
    drop(held);
    assert!(a.open_shard("s").unwrap().is_empty());
}

/// Two threads insert through `a` while `b` drops and re-creates `s` 20 times. Every
/// acknowledged insert that began after the last re-create must be in the live shard (the
/// drops racing the writes exercise the commit check: a write that passed `open_shard`'s check
/// before a drop must not be acknowledged into the removed file either, or the manager would
/// keep serving it).
#[test]
fn concurrent_drops_never_swallow_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(manager(dir.path()));
    let b = manager(dir.path());
    b.create("s", &profile()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // (id, began after this many completed re-creates, acknowledged)
    let log = Arc::new(Mutex::new(Vec::<(String, usize, bool)>::new()));
    let generation = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (a, stop, log, generation) =
                (a.clone(), stop.clone(), log.clone(), generation.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("w{w}-{i}");
                    i += 1;
                    let began = generation.load(Ordering::SeqCst);
                    let ok = a.open_shard("s").and_then(|s| s.insert(item(&id))).is_ok();
                    log.lock().unwrap().push((id, began, ok));
                }
            })
        })
        .collect();
    let rounds = 20;
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_millis(5));
        // `b` holds no handle; busy only if a writer held the lock past 5 s.
        b.drop_shard("s").unwrap();
        b.create("s", &profile()).unwrap();
        generation.fetch_add(1, Ordering::SeqCst);
    }
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let last = b.open_shard("s").unwrap();
    last.refresh().unwrap();
    let log = log.lock().unwrap();
    let after: Vec<_> = log.iter().filter(|(_, g, _)| *g == rounds).collect();
    assert!(!after.is_empty(), "no write began after the last re-create");
    let acked_after = after.iter().filter(|(_, _, ok)| *ok).count();
    assert!(acked_after > 0);
    for (id, _, ok) in &after {
        if *ok {
            assert!(
                last.get(id).is_ok(),
                "acknowledged {id} is not in the live shard"
            );
        }
    }
    assert!(
        log.iter().filter(|e| e.2).count() > rounds,
        "too few writes got through"
    );
}

/// The same with another process: the CLI binary, when it has been built, drops and
/// re-creates the shard that this process holds open.
#[test]
fn drop_and_re_create_by_the_cli_is_noticed() {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/sqlite-vector
    let cli = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("sqlite-vector");
    if !cli.is_file() {
        eprintln!(
            "SKIPPED: {} not built (cargo build -p sqlite-vector-cli)",
            cli.display()
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "the CLI binary is required under CI"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = manager(dir.path());
    a.create("s", &profile())
        .unwrap()
        .insert(item("old"))
        .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&cli)
            .args(args)
            .arg("--root")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["shards", "drop", "s"]);
    run(&["shards", "create", "s", "--dim", "4", "--metric", "cosine"]);
    let s = a.open_shard("s").unwrap();
    assert!(s.is_empty(), "still the dropped shard");
    s.insert(item("new")).unwrap();
    drop((s, a));
    let again = manager(dir.path());
    assert_eq!(again.open_shard("s").unwrap().get("new").unwrap().id, "new");
}

// ---------------------------------------------------------------------------- symlinks

#[cfg(unix)]
mod links {
    use super::*;
    use std::os::unix::fs::symlink;

    /// The path of the only shard file under `root`.
    fn only_shard_file(root: &Path) -> std::path::PathBuf {
        let s = manager(root);
        let path = s.list(None).unwrap().remove(0).path;
        drop(s);
        path
    }

    #[test]
    fn drop_refuses_a_linked_directory_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        manager(&root).create("s", &profile()).unwrap();
        let file = only_shard_file(&root);
        let fan_out = file.parent().unwrap().to_path_buf();
        // Move the fan-out directory outside and link it back in.
        let moved = outside.path().join("moved");
        std::fs::rename(&fan_out, &moved).unwrap();
        symlink(&moved, &fan_out).unwrap();
        let victim = moved.join(file.file_name().unwrap());
        assert!(victim.is_file());

        let m = manager(&root);
        let err = m.drop_shard("s").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(victim.is_file(), "drop deleted a file outside the root");
        let err = m.open_shard("s").map(drop).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            m.exists("s").unwrap(),
            "the refused drop must leave the shard listed"
        );
        drop(m);
        // Recovery (a fresh manager alone on the root) does not follow it either.
        drop(manager(&root));
        assert!(victim.is_file());
    }

    #[test]
    fn drop_refuses_a_linked_shard_file() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        manager(dir.path()).create("s", &profile()).unwrap();
        let file = only_shard_file(dir.path());
        let victim = outside.path().join("precious.db");
        std::fs::rename(&file, &victim).unwrap();
        symlink(&victim, &file).unwrap();

        let m = manager(dir.path());
        let err = m.drop_shard("s").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(victim.is_file(), "drop deleted the link's target");
        assert!(m.open_shard("s").is_err());
    }

    #[test]
    fn create_refuses_a_linked_fan_out_directory() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        // Ids start at 1: the first shard's directory is shards/01.
        symlink(outside.path(), dir.path().join("shards").join("01")).unwrap();
        let err = m.create("s", &profile()).map(drop).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(!m.exists("s").unwrap());
    }
}

// ------------------------------------------------------------------------ file descriptors

/// Runs `test` (an `#[ignore]`d test of this module) in a child with `ulimit -n 128`, and
/// fails unless it ran and passed.
#[cfg(unix)]
fn run_with_fd_limit(test: &str, root: &Path) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 128 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SV_FD_ROOT", root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
    stdout
}

#[cfg(unix)]
#[test]
fn three_hundred_shards_under_a_limit_of_128_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_fd_limit("manager_reliability::fd_limit_child", dir.path());
    let line = out.lines().find(|l| l.contains("fd-child: 300 shards ok"));
    println!("{}", line.unwrap_or_else(|| panic!("{out}")));
}

/// Child of `three_hundred_shards_under_a_limit_of_128_descriptors` (needs `SV_FD_ROOT`).
#[cfg(unix)]
#[test]
#[ignore = "run in a child process with a low descriptor limit"]
fn fd_limit_child() {
    let root = std::env::var("SV_FD_ROOT").expect("SV_FD_ROOT");
    let m = manager(Path::new(&root));
    assert!(
        m.capacity() < 256,
        "capacity {} ignores the limit",
        m.capacity()
    );
    let q = [1.0, 0.0, 0.0, 0.0];
    for i in 0..300 {
        let s = m.create(&format!("s{i:03}"), &profile()).unwrap();
        s.insert(item(&format!("x{i}"))).unwrap();
        assert_eq!(s.search(&q, &SearchParams::k(1)).unwrap().len(), 1);
    }
    for i in 0..300 {
        let s = m.open_shard(&format!("s{i:03}")).unwrap();
        s.insert(item("y")).unwrap();
        assert_eq!(s.search(&q, &SearchParams::k(5)).unwrap().len(), 2);
    }
    let all = m.search_prefix("s", &q, &SearchParams::k(10)).unwrap();
    assert!(
        all.failures.is_empty(),
        "{:?}",
        &all.failures[..3.min(all.failures.len())]
    );
    assert_eq!(all.hits.len(), 10);
    // Handles held by the caller cannot be closed: past the limit the error says why.
    let mut held = Vec::new();
    let err = (0..300)
        .find_map(|i| match m.open_shard(&format!("s{i:03}")) {
            Ok(s) => {
                held.push(s);
                None
            }
            Err(e) => Some(e),
        })
        .expect("300 held shards fit in 128 descriptors");
    assert!(err.to_string().contains("too many open files"), "{err}");
    drop(held);
    m.open_shard("s000").unwrap().insert(item("z")).unwrap();
    println!("fd-child: 300 shards ok (capacity {})", m.capacity());
}

/// Counts the descriptors one open shard costs (Linux: `/proc/self/fd`), in a child so that
/// no other test opens files meanwhile.
#[cfg(target_os = "linux")]
#[test]
fn fd_cost_of_an_open_shard() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_fd_limit("manager_reliability::fd_cost_child", dir.path());
    let line = out.lines().find(|l| l.contains("fd-cost:"));
    println!("{}", line.unwrap_or_else(|| panic!("{out}")));
}

/// Child of `fd_cost_of_an_open_shard`.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "run in a child process"]
fn fd_cost_child() {
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let root = std::env::var("SV_FD_ROOT").expect("SV_FD_ROOT");
    let m = manager(Path::new(&root));
    m.create("warm", &profile()).unwrap(); // the catalog's own files
    drop(m.drop_shard("warm"));
    // The dropped shard's connections close on the background thread: let them, so that
    // they are not counted in `base` and gone from the counts below.
    assert!(sqlite_vector::wait_for_closes(Duration::from_secs(10)));
    let base = fds();
    let s = m.create("s", &profile()).unwrap();
    s.insert(item("a")).unwrap();
    let written = fds() - base;
    // Two searches at once need two readers; both stay open, idle.
    let q = [1.0, 0.0, 0.0, 0.0];
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|t| {
        for _ in 0..2 {
            t.spawn(|| {
                barrier.wait();
                let until = Instant::now() + Duration::from_millis(50);
                while Instant::now() < until {
                    s.search(&q, &SearchParams::k(1)).unwrap();
                }
            });
        }
    });
    let searched = fds() - base;
    drop(s);
    drop(m);
    println!("fd-cost: {written} after create+insert, {searched} after concurrent searches");
    assert!(written <= 3, "{written}");
    assert!(searched <= 7, "{searched}");
}

/// Prints the cost of the identity check: an `lstat` of a shard file, a cached `open_shard`
/// (which makes one) and an insert (whose commit makes one). Run with
/// `cargo test --release -p sqlite-vector --test it identity_check_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn identity_check_cost() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let s = m.create("s", &profile()).unwrap();
    let path = m.list(None).unwrap().remove(0).path;
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(std::fs::symlink_metadata(&path).unwrap());
    }
    let lstat = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(m.open_shard("s").unwrap());
    }
    let cached = t.elapsed().as_nanos() as f64 / n as f64;
    let inserts = 2_000;
    let t = Instant::now();
    for i in 0..inserts {
        s.insert(item(&format!("i{i}"))).unwrap();
    }
    let insert = t.elapsed().as_nanos() as f64 / inserts as f64;
    println!(
        "identity check: lstat {lstat:.0} ns, cached open_shard {cached:.0} ns, \
         insert (durability normal) {insert:.0} ns"
    );
}
