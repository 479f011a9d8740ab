//! `sqlite-vector sync` end to end: two roots with their own identities, trusted both ways, a
//! server process on 127.0.0.1, one-shot syncs through the CLI, a stranger refused, and the
//! server stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sqlite-vector");

fn sv(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = sv(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn node_id(root: &Path) -> String {
    ok(&["sync", "id", "--root", root.to_str().unwrap()])
        .trim()
        .to_string()
}

/// Writes `n` items into shard `name` of `root` through the library.
fn fill(root: &Path, name: &str, n: usize, tag: &str) {
    let m =
        sqlite_vector::ShardManager::open(root, sqlite_vector::ManagerOptions::default()).unwrap();
    let s = m
        .get_or_create(
            name,
            &sqlite_vector::Profile::new(8, sqlite_vector::Metric::L2),
        )
        .unwrap();
    let items = (0..n)
        .map(|i| {
            sqlite_vector::NewItem::new((0..8).map(|j| (i * 8 + j) as f32).collect())
                .with_id(format!("{tag}-{i}"))
        })
        .collect();
    s.insert_batch(items).unwrap();
}

fn count(root: &Path, name: &str) -> usize {
    let m =
        sqlite_vector::ShardManager::open(root, sqlite_vector::ManagerOptions::default()).unwrap();
    m.open_shard(name).unwrap().len()
}

#[test]
fn two_roots_sync_through_the_cli() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ra, rb) = (a.path().join("root"), b.path().join("root"));
    let (id_a, id_b) = (node_id(&ra), node_id(&rb));
    assert_eq!(id_a.len(), 64);
    assert_eq!(node_id(&ra), id_a, "the identity is kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ra.join("sync/node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    ok(&["sync", "trust", "--root", ra.to_str().unwrap(), &id_b]);
    ok(&["sync", "trust", "--root", rb.to_str().unwrap(), &id_a]);
    // A malformed id is the user's mistake.
    let bad = sv(&["sync", "trust", "--root", ra.to_str().unwrap(), "xyz"]);
    assert_eq!(bad.status.code(), Some(2));
    fill(&ra, "team/notes", 120, "a");
    fill(&rb, "team/notes", 30, "b");
    fill(&rb, "team/log", 10, "b");

    let mut server = Command::new(BIN)
        .args([
            "sync",
            "serve",
            "--root",
            rb.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)
        .expect("serve prints its address")
        .to_string();
    assert!(line.contains(&id_b), "{line}");

    let out = ok(&[
        "sync",
        "both",
        "--root",
        ra.to_str().unwrap(),
        "--peer",
        &addr,
        "--peer-id",
        &id_b,
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["shards"], 2, "{r}");
    assert_eq!(r["sent"], 120, "{r}");
    assert_eq!(r["received"], 40, "{r}");
    assert_eq!(r["converged"], 2, "{r}");
    assert!(r["bytes_sent"].as_u64().unwrap() > 120 * 32, "{r}");
    assert_eq!(count(&ra, "team/notes"), 150);
    assert_eq!(count(&ra, "team/log"), 10);
    assert_eq!(count(&rb, "team/notes"), 150);

    // A stranger is refused: exit 1, nothing received.
    let c = tempfile::tempdir().unwrap();
    let rc = c.path().join("root");
    let out = sv(&[
        "sync",
        "pull",
        "--root",
        rc.to_str().unwrap(),
        "--peer",
        &addr,
        "--peer-id",
        &id_b,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trust list"), "{err}");
    let m =
        sqlite_vector::ShardManager::open(&rc, sqlite_vector::ManagerOptions::default()).unwrap();
    assert!(m.list(None).unwrap().is_empty());

    // SIGTERM: the server exits cleanly.
    #[cfg(unix)]
    {
        let pid = server.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = server.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
    #[cfg(not(unix))]
    {
        server.kill().unwrap();
    }
}
