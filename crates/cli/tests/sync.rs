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

    let (mut server, addr) = serve(&rb);

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
    // The exports are equal, and so are the digests `stats` shows.
    let export = |root: &Path, name: &str| {
        ok(&[
            "export",
            "--root",
            root.to_str().unwrap(),
            "--shard",
            name,
            "--include-deleted",
        ])
    };
    for name in ["team/notes", "team/log"] {
        let (ea, eb) = (export(&ra, name), export(&rb, name));
        assert_eq!(ea, eb, "{name}");
        assert_eq!(ea.lines().count(), count(&ra, name));
        let first: serde_json::Value = serde_json::from_str(ea.lines().next().unwrap()).unwrap();
        assert_eq!(first["vector"].as_array().unwrap().len(), 8, "{first}");
    }
    let stats = |root: &Path| {
        let root = root.to_str().unwrap();
        let out = ok(&["stats", "--root", root, "--shard", "team/notes", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let (sa, sb) = (stats(&ra), stats(&rb));
    assert_eq!(sa["sync_digest"], sb["sync_digest"]);
    assert_eq!(sa["sync_cursors"][0]["site_id"], sb["site_id"], "{sa}");
    // Each side knows how far the other holds its changes, and which node it is.
    assert_eq!(sa["sync_peers"][0]["site_id"], sb["site_id"], "{sa}");
    assert_eq!(
        sa["sync_peers"][0]["acked"], sb["sync_cursors"][0]["seq"],
        "{sa} {sb}"
    );
    assert_eq!(sa["sync_peers"][0]["node"], id_b.as_str(), "{sa}");
    assert_eq!(sb["sync_peers"][0]["node"], id_a.as_str(), "{sb}");

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

/// Starts `sync serve` on `root`; returns the child and its address.
fn serve(root: &Path) -> (std::process::Child, String) {
    let mut server = Command::new(BIN)
        .args([
            "sync",
            "serve",
            "--root",
            root.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    (server, addr)
}

fn check(root: &Path, name: &str) {
    let m =
        sqlite_vector::ShardManager::open(root, sqlite_vector::ManagerOptions::default()).unwrap();
    let path = m.list(Some(name)).unwrap()[0].path.clone();
    ok(&["stats", path.to_str().unwrap(), "--check"]);
}

#[test]
fn kill_9_of_either_side_mid_transfer_loses_nothing_and_converges() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ra, rb) = (a.path().join("root"), b.path().join("root"));
    let (id_a, id_b) = (node_id(&ra), node_id(&rb));
    ok(&["sync", "trust", "--root", ra.to_str().unwrap(), &id_b]);
    ok(&["sync", "trust", "--root", rb.to_str().unwrap(), &id_a]);
    fill(&rb, "big", 30_000, "b");
    fill(&ra, "big", 20_000, "a");
    let ra_s = ra.to_str().unwrap();
    for (round, delay_ms) in [(0u32, 150u64), (1, 400), (2, 60)] {
        let (mut server, addr) = serve(&rb);
        let mut client = Command::new(BIN)
            .args([
                "sync",
                "both",
                "--root",
                ra_s,
                "--peer",
                &addr,
                "--peer-id",
                &id_b,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // Odd rounds kill the server, even ones the client, mid-transfer.
        if round % 2 == 0 {
            client.kill().unwrap();
            client.wait().unwrap();
            server.kill().unwrap();
        } else {
            server.kill().unwrap();
            let _ = client.wait();
        }
        server.wait().unwrap();
        check(&ra, "big");
        check(&rb, "big");
        eprintln!(
            "round {round}: a holds {}, b holds {} of 50000",
            count(&ra, "big"),
            count(&rb, "big")
        );
    }
    // Sync again: everything arrives, nothing written before was lost.
    let (mut server, addr) = serve(&rb);
    let out = ok(&[
        "sync",
        "both",
        "--root",
        ra_s,
        "--peer",
        &addr,
        "--peer-id",
        &id_b,
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["converged"], 1, "{r}");
    assert_eq!(count(&ra, "big"), 50_000);
    assert_eq!(count(&rb, "big"), 50_000);
    check(&ra, "big");
    server.kill().unwrap();
    server.wait().unwrap();
}
