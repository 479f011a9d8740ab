//! The `sqlite-vector` binary end to end: every subcommand on real files, and the exit codes and
//! messages of bad input.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sqlite-vector"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with `code` and a message containing `needle`.
fn fails(args: &[&str], code: i32, needle: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn create_import_search_get_delete_stats() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let jsonl = dir.path().join("items.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"id": "a", "vector": [1, 0, 0], "metadata": {"lang": "rust"}, "text": "fearless concurrency"}"#,
            "\n",
            r#"{"id": "b", "vector": [0, 1, 0], "metadata": {"lang": "go"}, "text": "goroutines and channels"}"#,
            "\n",
            r#"{"id": 7, "vector": [0.7, 0.7, 0], "lang": "rust", "text": "ownership"}"#,
            "\n"
        ),
    )
    .unwrap();
    ok(&["create", p(&db), "--dim", "3", "--metric", "cosine"]);
    let out = ok(&["import", p(&db), "--jsonl", p(&jsonl)]);
    assert!(out.contains("imported 3 items"), "{out}");

    let out = ok(&[
        "search",
        p(&db),
        "--vector",
        "[1, 0.1, 0]",
        "--k",
        "2",
        "--json",
    ]);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits[0]["id"], "a");
    assert_eq!(hits[1]["id"], "7");
    assert_eq!(
        hits[1]["metadata"]["lang"], "rust",
        "top-level fields became metadata"
    );

    let out = ok(&[
        "search",
        p(&db),
        "--vector",
        "[1, 0.1, 0]",
        "--filter",
        r#"{"lang": "go"}"#,
        "--json",
    ]);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 1);
    assert_eq!(hits[0]["id"], "b");

    let out = ok(&["search", p(&db), "--text", "goroutines", "--json"]);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits[0]["id"], "b");
    let hybrid = |extra: &[&str]| {
        let mut args = vec![
            "search",
            p(&db),
            "--vector",
            "[1, 0, 0]",
            "--text",
            "ownership",
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };
    let hits: serde_json::Value = serde_json::from_str(&hybrid(&["--hybrid", "--json"])).unwrap();
    assert_eq!(
        hits[0]["id"], "7",
        "first in text, second in vector: fused first"
    );
    // Hybrid hits carry their parts (BM25 null where no word matches); the table shows them.
    let all = hits.as_array().unwrap();
    assert!(all.iter().all(|h| h["vector_score"].is_number()), "{hits}");
    assert!(all.iter().any(|h| h["text_score"].is_null()), "{hits}");
    assert!(hits[0]["text_score"].as_f64().unwrap() > 0.0);
    let table = hybrid(&["--k", "3"]);
    assert!(table.contains("fused") && table.contains("bm25"), "{table}");
    let rrf = hybrid(&["--fusion", "rrf", "--json"]);
    let rrf: serde_json::Value = serde_json::from_str(&rrf).unwrap();
    assert!(
        rrf[0]["score"].as_f64().unwrap() < 0.04,
        "RRF scores: {rrf}"
    );
    fails(
        &[
            "search",
            p(&db),
            "--vector",
            "[1, 0, 0]",
            "--text",
            "x",
            "--fusion",
            "max",
        ],
        2,
        "unknown fusion",
    );

    let item: serde_json::Value = serde_json::from_str(&ok(&["get", p(&db), "a"])).unwrap();
    assert_eq!(item["vector"], serde_json::json!([1.0, 0.0, 0.0]));
    assert_eq!(item["text"], "fearless concurrency");

    ok(&["delete", p(&db), "a"]);
    fails(&["get", p(&db), "a"], 2, "unknown id: \"a\"");
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&["stats", p(&db), "--json", "--check"])).unwrap();
    assert_eq!(stats["count"], 2);
    assert_eq!(stats["tombstones"], 1);
    assert_eq!(stats["dimension"], 3);
}

#[test]
fn import_npy_with_jsonl_and_search_by_npy_row() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    ok(&["create", p(&db), "--dim", "384"]);
    let out = ok(&[
        "import",
        p(&db),
        "--npy",
        p(&sample.join("base.npy")),
        "--jsonl",
        p(&sample.join("items.jsonl")),
        "--batch",
        "700",
    ]);
    assert!(out.contains("imported 2000 items"), "{out}");
    let out = ok(&[
        "search",
        p(&db),
        "--npy",
        p(&sample.join("queries.npy")),
        "--row",
        "2",
        "--k",
        "1",
        "--json",
    ]);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(hits[0]["id"], "libdbusada0.6.0");
    fails(
        &[
            "search",
            p(&db),
            "--npy",
            p(&sample.join("queries.npy")),
            "--row",
            "50",
        ],
        2,
        "out of range",
    );
}

#[test]
fn bad_input_exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    ok(&["create", p(&db), "--dim", "3"]);
    fails(&["create", p(&db), "--dim", "3"], 2, "already exists");
    fails(
        &["search", p(&db), "--vector", "[1, 2]"],
        2,
        "dimension mismatch: shard has 3, got 2",
    );
    fails(
        &["search", p(&db), "--vector", "[1, 2"],
        2,
        "JSON array of numbers",
    );
    fails(
        &["search", p(&db), "--vector", "[1, 0, 0]", "--k", "0"],
        2,
        "k must be",
    );
    fails(
        &[
            "search",
            p(&db),
            "--vector",
            "[1, 0, 0]",
            "--filter",
            "{bad",
        ],
        2,
        "invalid filter",
    );
    fails(&["search", p(&db), "--text", "?!"], 2, "no words");
    fails(&["delete", p(&db), "nope"], 2, "unknown id");

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"x\", \"vector\": [1, 0, 0]}\n{\"id\": \"y\", \"vector\": [1, 0]}\n",
    )
    .unwrap();
    fails(
        &["import", p(&db), "--jsonl", p(&bad)],
        2,
        "dimension mismatch",
    );
    std::fs::write(&bad, "{\"id\": \"x\", \"vector\": [1, 0, 0]}\nnot json\n").unwrap();
    fails(
        &["import", p(&db), "--jsonl", p(&bad)],
        2,
        "line 2: malformed JSON",
    );
    std::fs::write(
        &bad,
        "{\"id\": \"x\", \"vector\": [1, 0, 0], \"metadata\": [1]}\n",
    )
    .unwrap();
    fails(
        &["import", p(&db), "--jsonl", p(&bad)],
        2,
        "must be a JSON object",
    );
    // Nothing of the failed imports was written.
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", p(&db), "--json"])).unwrap();
    assert_eq!(stats["count"], 0);

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "just some text, long enough to not be a database header at all",
    )
    .unwrap();
    fails(&["stats", p(&text)], 2, "not a SQLite database");
    fails(
        &["stats", p(&dir.path().join("missing.db"))],
        1,
        "no shard file",
    );
}

#[test]
fn shards_subcommands_and_search_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let r = p(&root);
    ok(&[
        "shards",
        "create",
        "team-a/coder",
        "--root",
        r,
        "--dim",
        "3",
    ]);
    ok(&[
        "shards",
        "create",
        "team-a/reviewer",
        "--root",
        r,
        "--dim",
        "3",
    ]);
    ok(&[
        "shards",
        "create",
        "team-b/coder",
        "--root",
        r,
        "--dim",
        "3",
    ]);
    fails(
        &["shards", "create", "../escape", "--root", r, "--dim", "3"],
        2,
        "",
    );
    fails(
        &["shards", "create", "/etc/x", "--root", r, "--dim", "3"],
        2,
        "",
    );
    let list: serde_json::Value = serde_json::from_str(&ok(&[
        "shards", "list", "--root", r, "--prefix", "team-a/", "--json",
    ]))
    .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-a/coder", "team-a/reviewer"]);
    // Fill the shards through their files, found by `shards stats`.
    for (name, v) in [
        ("team-a/coder", "[1, 0, 0]"),
        ("team-a/reviewer", "[0.9, 0.1, 0]"),
        ("team-b/coder", "[1, 0, 0]"),
    ] {
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&["shards", "stats", name, "--root", r])).unwrap();
        assert_eq!(stats["dimension"], 3);
        let listed: serde_json::Value =
            serde_json::from_str(&ok(&["shards", "list", "--root", r, "--json"])).unwrap();
        let path = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["path"]
            .as_str()
            .unwrap()
            .to_string();
        let jsonl = dir.path().join("one.jsonl");
        std::fs::write(&jsonl, format!("{{\"id\": \"x\", \"vector\": {v}}}\n")).unwrap();
        ok(&["import", &path, "--jsonl", p(&jsonl)]);
    }
    let out = ok(&[
        "search",
        "--root",
        r,
        "--prefix",
        "team-a/",
        "--vector",
        "[1, 0, 0]",
        "--json",
    ]);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["shard"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["team-a/coder", "team-a/reviewer"]);
    ok(&["shards", "drop", "team-b/coder", "--root", r]);
    fails(&["shards", "stats", "team-b/coder", "--root", r], 2, "");
}

#[test]
fn demo_runs_offline() {
    let out = ok(&["demo"]);
    assert!(out.contains("recall@10 = 1.000"), "{out}");
    assert!(out.contains("Packages like"), "{out}");
}

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
}

/// The ids of the sample's items, in row order.
fn sample_ids() -> Vec<String> {
    std::fs::read_to_string(sample().join("items.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn index_build_search_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let npy = sample().join("base.npy");
    ok(&["create", p(&db), "--dim", "384"]);
    let jsonl = sample().join("items.jsonl");
    ok(&["import", p(&db), "--npy", p(&npy), "--jsonl", p(&jsonl)]);
    let out = ok(&["index", p(&db), "--m", "8", "--ef-construction", "64"]);
    assert!(
        out.contains("built the hnsw index over 2000 items"),
        "{out}"
    );
    fails(&["index", p(&db)], 2, "already");
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", p(&db), "--json"])).unwrap();
    assert_eq!(stats["index"]["nodes"], 2000, "{stats}");
    assert_eq!(stats["index"]["m"], 8, "{stats}");
    // 2,000 items: below the planner's threshold, the exact path serves; --exact and
    // --ef-search are accepted, and a bad ef_search is a user error.
    let a = ok(&[
        "search",
        p(&db),
        "--npy",
        p(&npy),
        "--row",
        "5",
        "-k",
        "3",
        "--json",
    ]);
    let b = ok(&[
        "search",
        p(&db),
        "--npy",
        p(&npy),
        "--row",
        "5",
        "-k",
        "3",
        "--json",
        "--exact",
    ]);
    assert_eq!(a, b);
    assert!(a.contains(&sample_ids()[5]), "{a}");
    fails(
        &[
            "search",
            p(&db),
            "--npy",
            p(&npy),
            "--row",
            "5",
            "--ef-search",
            "0",
        ],
        2,
        "ef_search",
    );
    let out = ok(&["index", p(&db), "--drop"]);
    assert!(out.contains("dropped"), "{out}");
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", p(&db), "--json"])).unwrap();
    assert!(stats["index"].is_null(), "{stats}");
}

/// A process killed (SIGKILL) in the middle of a large import into an indexed shard: every
/// committed batch is there, the stored graph matches the items without a rebuild, and search
/// finds what was committed.
#[cfg(unix)]
#[test]
fn kill_during_indexed_import_reopens_consistent() {
    use sqlite_vector::{SearchParams, Shard};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let npy = sample().join("base.npy");
    ok(&["create", p(&db), "--dim", "384"]);
    ok(&["index", p(&db)]);
    let mut child = bin()
        .args([
            "import",
            p(&db),
            "--npy",
            p(&npy),
            "--batch",
            "50",
            "--jsonl",
        ])
        .arg(sample().join("items.jsonl"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let seen = Shard::open(&db).map(|s| s.len()).unwrap_or(0);
        if seen >= 300 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed ({seen} items)"
        );
        assert!(start.elapsed().as_secs() < 120, "import too slow");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let shard = Shard::open(&db).unwrap();
    let n = shard.len();
    assert!((300..2000).contains(&n), "{n} items");
    assert_eq!(n % 50, 0, "only whole batches commit: {n}");
    let ix = shard.stats().unwrap().index.unwrap();
    assert_eq!(ix.nodes, n);
    assert!(!ix.rebuilt_on_open, "the graph rows commit with the items");
    let base = sqlite_vector_dataset::read_f32(&npy).unwrap();
    shard.set_planner(sqlite_vector::PlannerParams {
        exact_max_items: 0,
        ..Default::default()
    });
    let ids = sample_ids();
    for row in (0..n).step_by(37) {
        let hits = shard.search(base.row(row), &SearchParams::k(1)).unwrap();
        assert_eq!(hits[0].id, ids[row]);
    }
}

#[test]
fn text_queries_take_the_mode_rule_of_the_mcp_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let jsonl = dir.path().join("items.jsonl");
    let vec256 = |x: f32| {
        let v: Vec<String> = (0..256)
            .map(|i| (if i == 0 { x } else { 0.01 }).to_string())
            .collect();
        format!("[{}]", v.join(","))
    };
    std::fs::write(
        &jsonl,
        format!(
            "{{\"id\": \"a\", \"vector\": {}, \"text\": \"secure remote login\"}}\n\
             {{\"id\": \"b\", \"vector\": {}, \"text\": \"image editor\"}}\n",
            vec256(1.0),
            vec256(-1.0)
        ),
    )
    .unwrap();
    let stderr_of = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };
    for (name, model) in [
        ("text", Some("minilm-static-256")),
        ("raw", None),
        ("other", Some("other-model-v1")),
    ] {
        let mut args = vec!["shards", "create", name, "--root", p(&root), "--dim", "256"];
        if let Some(m) = model {
            args.extend(["--model", m]);
        }
        ok(&args);
        // `import` takes a shard file: the catalog's path of the shard.
        let listed = ok(&["shards", "list", "--root", p(&root), "--json"]);
        let list: serde_json::Value = serde_json::from_str(&listed).unwrap();
        let path = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["path"]
            .as_str()
            .unwrap()
            .to_string();
        ok(&["import", &path, "--jsonl", p(&jsonl)]);
    }
    let search = |shard: &str, extra: &[&str]| {
        let mut args = vec![
            "search",
            "--root",
            p(&root),
            "--shard",
            shard,
            "--text",
            "secure login",
        ];
        args.extend_from_slice(extra);
        stderr_of(&args)
    };
    // A text shard of the built-in model: text alone is hybrid (the text is embedded).
    assert!(search("text", &[]).contains("hybrid mode"));
    assert!(search("text", &["--mode", "text"]).contains("text mode"));
    assert!(search("text", &["--mode", "vector"]).contains("vector mode"));
    // Raw vectors: nothing can embed the text, so it ranks by BM25.
    assert!(search("raw", &[]).contains("text mode"));
    // Another model's shard: the text is not embedded with the wrong model.
    fails(
        &[
            "search",
            "--root",
            p(&root),
            "--shard",
            "other",
            "--text",
            "secure",
        ],
        2,
        "other-model-v1",
    );
    assert!(search("other", &["--mode", "text"]).contains("text mode"));
}
