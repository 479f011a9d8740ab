//! The `sqlite-vector` binary end to end: every subcommand on real files, and the exit codes and
//! messages of bad input.

mod common;
use common::tree;

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test: this build's, or the one `SQLITE_VECTOR_CLI_BIN` names (to run these
/// tests against another build, e.g. to see a regression test fail before its fix).
fn bin_path() -> std::ffi::OsString {
    std::env::var_os("SQLITE_VECTOR_CLI_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_sqlite-vector").into())
}

fn bin() -> Command {
    Command::new(bin_path())
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

/// Runs a command that must fail with `code` and a one-line message containing `needle`.
fn fails(args: &[&str], code: i32, needle: &str) {
    fails_with(run(args), args, code, needle);
}

/// Checks a finished command's exit code and its one-line message.
fn fails_with(out: Output, what: impl std::fmt::Debug, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{what:?}: {err}");
    assert!(
        err.contains(needle),
        "{what:?}: expected {needle:?} in {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "{what:?}: not one line: {err:?}");
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
    // Fill the shards by name.
    for (name, v) in [
        ("team-a/coder", "[1, 0, 0]"),
        ("team-a/reviewer", "[0.9, 0.1, 0]"),
        ("team-b/coder", "[1, 0, 0]"),
    ] {
        let stats: serde_json::Value =
            serde_json::from_str(&ok(&["shards", "stats", name, "--root", r])).unwrap();
        assert_eq!(stats["dimension"], 3);
        let jsonl = dir.path().join("one.jsonl");
        std::fs::write(&jsonl, format!("{{\"id\": \"x\", \"vector\": {v}}}\n")).unwrap();
        let out = ok(&["import", "--root", r, "--shard", name, "--jsonl", p(&jsonl)]);
        assert!(out.contains(&format!("into shard {name} ")), "{out}");
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
        ok(&[
            "import",
            "--root",
            p(&root),
            "--shard",
            name,
            "--jsonl",
            p(&jsonl),
        ]);
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

/// A new empty shard `s.db` of dimension 2 in `dir`.
fn shard2(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("s.db");
    ok(&["create", p(&db), "--dim", "2"]);
    db
}

/// A shard of items `a`, `b` and `c`.
fn abc_shard(dir: &Path) -> std::path::PathBuf {
    let db = shard2(dir);
    let jsonl = dir.join("abc.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"vector\": [1, 0]}\n{\"id\": \"b\", \"vector\": [0, 1]}\n\
         {\"id\": \"c\", \"vector\": [1, 1]}\n",
    )
    .unwrap();
    ok(&["import", p(&db), "--jsonl", p(&jsonl)]);
    db
}

fn count(db: &Path) -> (u64, u64) {
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", p(db), "--json"])).unwrap();
    (
        stats["count"].as_u64().unwrap(),
        stats["tombstones"].as_u64().unwrap(),
    )
}

#[test]
fn delete_of_several_ids_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = abc_shard(dir.path());
    fails(
        &["delete", p(&db), "b", "a", "nope"],
        2,
        "nothing was deleted: unknown id: \"nope\"",
    );
    assert_eq!(count(&db), (3, 0), "a and b survive the failed delete");
    ok(&["get", p(&db), "a"]);
    ok(&["get", p(&db), "b"]);
    // The same id twice: the second is unknown by then, so nothing is deleted either.
    fails(&["delete", p(&db), "a", "a"], 2, "unknown id: \"a\"");
    assert_eq!(count(&db), (3, 0));
    let out = ok(&["delete", p(&db), "b", "a"]);
    assert!(out.contains("deleted 2 item(s)"), "{out}");
    assert_eq!(count(&db), (1, 2));
}

#[test]
fn wrong_paths_are_user_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = abc_shard(dir.path());
    let missing = dir.path().join("missing.db");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not a directory").unwrap();

    for cmd in [
        vec!["stats", p(&missing)],
        vec!["get", p(&missing), "a"],
        vec!["delete", p(&missing), "a"],
        vec!["index", p(&missing)],
        vec!["search", p(&missing), "--vector", "[1, 0]"],
        vec!["import", p(&missing), "--jsonl", p(&file)],
        vec!["import", p(&db), "--jsonl", p(&missing)],
        vec!["import", p(&db), "--npy", p(&missing)],
    ] {
        fails(&cmd, 2, &format!("no such file: {}", p(&missing)));
    }
    for cmd in [
        vec!["stats", p(&sub)],
        vec!["search", p(&sub), "--vector", "[1, 0]"],
        vec!["import", p(&db), "--jsonl", p(&sub)],
        vec!["import", p(&db), "--npy", p(&sub)],
        vec!["create", p(&sub), "--dim", "2"],
    ] {
        fails(&cmd, 2, &format!("{} is a directory", p(&sub)));
    }
    let orphan = dir.path().join("no-such-dir").join("s.db");
    fails(
        &["create", p(&orphan), "--dim", "2"],
        2,
        "no-such-dir does not exist",
    );
    assert!(!dir.path().join("no-such-dir").exists());
    let under_file = file.join("s.db");
    fails(
        &["create", p(&under_file), "--dim", "2"],
        2,
        "notes.txt is not a directory",
    );
    for cmd in [
        vec!["shards", "list", "--root", p(&file)],
        vec!["shards", "create", "x", "--root", p(&file), "--dim", "2"],
        vec!["shards", "stats", "x", "--root", p(&file)],
        vec![
            "search",
            "--root",
            p(&file),
            "--shard",
            "x",
            "--vector",
            "[1, 0]",
        ],
    ] {
        fails(&cmd, 2, &format!("--root {} is not a directory", p(&file)));
    }
}

#[test]
fn argument_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    // Clap's own messages span several lines (usage, tips); each is one line, exit code 2.
    fails(&["create", p(&db)], 2, "--dim <DIM>");
    fails(
        &["create", p(&db), "--dim", "two"],
        2,
        "invalid value 'two'",
    );
    fails(&["nonsense"], 2, "unrecognized subcommand 'nonsense'");
    fails(
        &["search", p(&db), "--vector", "[1]", "--fusion", "max"],
        2,
        "unknown fusion",
    );
    // --help still prints the full help, and succeeds.
    let help = ok(&["import", "--help"]);
    assert!(help.contains("Usage:"), "{help}");
}

#[test]
fn read_commands_never_create_a_root() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("roto");
    let vector = ["--vector", "[1, 0]"];
    let mut search = vec!["search", "--root", p(&typo), "--shard", "a"];
    search.extend(vector);
    for cmd in [
        vec!["shards", "list", "--root", p(&typo)],
        vec!["shards", "stats", "a", "--root", p(&typo)],
        vec!["shards", "drop", "a", "--root", p(&typo)],
        search,
    ] {
        fails(&cmd, 2, &format!("no shard root at {}", p(&typo)));
        assert!(!typo.exists(), "{cmd:?} created the root");
    }
    // A directory that is not a root stays untouched too.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(
        &["shards", "list", "--root", p(&empty)],
        2,
        "is not a shard root",
    );
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn search_of_an_unknown_shard_fails_as_in_the_mcp_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let r = p(&root);
    ok(&["shards", "create", "a", "--root", r, "--dim", "2"]);
    for shards in [&["nope"][..], &["a", "nope"][..]] {
        let mut cmd = vec!["search", "--root", r, "--vector", "[1, 0]"];
        for s in shards {
            cmd.extend(["--shard", s]);
        }
        fails(&cmd, 2, "unknown shard: \"nope\"");
    }
    // Shards are "unknown shard", never "unknown id" or "not found".
    for cmd in ["stats", "drop"] {
        fails(
            &["shards", cmd, "nope", "--root", r],
            2,
            "unknown shard: \"nope\"",
        );
    }
}

#[test]
fn invalid_utf8_in_jsonl_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = shard2(dir.path());
    let jsonl = dir.path().join("bad.jsonl");
    let mut bytes = b"{\"id\": \"a\", \"vector\": [1, 0]}\n".to_vec();
    bytes.extend(b"{\"id\": \"b\xff\", \"vector\": [0, 1]}\n");
    std::fs::write(&jsonl, bytes).unwrap();
    fails(
        &["import", p(&db), "--jsonl", p(&jsonl)],
        2,
        "line 2: invalid UTF-8",
    );
    assert_eq!(count(&db), (0, 0));
}

#[test]
fn jsonl_ids_stay_exact_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = shard2(dir.path());
    let jsonl = dir.path().join("ids.jsonl");
    let import = |ids: &[&str], upsert: bool| {
        let lines: String = ids
            .iter()
            .map(|id| format!("{{\"id\": {id}, \"vector\": [1, 0]}}\n"))
            .collect();
        std::fs::write(&jsonl, lines).unwrap();
        let mut cmd = vec!["import", p(&db), "--jsonl", p(&jsonl)];
        if upsert {
            cmd.push("--upsert");
        }
        run(&cmd)
    };
    // 2^64 and 2^64 + 1 are one f64: refused, not merged (nor one replacing the other).
    for upsert in [false, true] {
        let out = import(
            &["1", "18446744073709551616", "18446744073709551617"],
            upsert,
        );
        fails_with(out, ("2^64", upsert), 2, "line 2: id ");
        assert_eq!(count(&db), (0, 0));
    }
    for float in ["1.5", "1e3", "1.0", "-0.5"] {
        let out = import(&["7", float], false);
        fails_with(out, float, 2, "is not an integer of at most 64 bits");
    }
    assert_eq!(count(&db), (0, 0));
    // 64-bit integers at both ends stay exact.
    let out = import(&["18446744073709551615", "-9223372036854775808"], false);
    assert!(out.status.success(), "{out:?}");
    ok(&["get", p(&db), "18446744073709551615"]);
    ok(&["get", p(&db), "-9223372036854775808"]);
    ok(&["delete", p(&db), "-9223372036854775808"]);
}

#[test]
fn a_refused_item_is_named_by_its_line_or_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = shard2(dir.path());
    let jsonl = dir.path().join("items.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"vector\": [1, 0]}\n\n{\"id\": \"b\", \"vector\": [0, 1]}\n\
         {\"id\": \"a\", \"vector\": [1, 1]}\n",
    )
    .unwrap();
    fails(
        &["import", p(&db), "--jsonl", p(&jsonl), "--batch", "10"],
        2,
        "line 4: duplicate id: \"a\"",
    );
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"vector\": [1, 0]}\n{\"id\": \"b\", \"vector\": [0, 1, 0]}\n",
    )
    .unwrap();
    fails(
        &["import", p(&db), "--jsonl", p(&jsonl)],
        2,
        "line 2: dimension mismatch: shard has 2, got 3",
    );
    // .npy rows: the sample's 384-d rows against a 2-d shard fail at row 0.
    let npy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/queries.npy");
    fails(
        &["import", p(&db), "--npy", p(&npy)],
        2,
        "row 0: dimension mismatch",
    );
    assert_eq!(count(&db), (0, 0));
}

/// Runs the binary under a file-size limit of `blocks` KiB with SIGXFSZ ignored, so writes past
/// it fail as on a full disk.
#[cfg(unix)]
fn run_with_file_limit(blocks: u32, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f {blocks} && trap '' XFSZ && exec \"$0\" \"$@\""
        ))
        .arg(bin_path())
        .args(args)
        .output()
        .expect("runs")
}

#[cfg(unix)]
#[test]
fn create_on_a_full_disk_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = run_with_file_limit(0, &["create", p(&db), "--dim", "2"]);
    fails_with(out, "create under ulimit -f 0", 1, "");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the failed create left {left:?}");
    ok(&["create", p(&db), "--dim", "2"]);
}

#[cfg(unix)]
#[test]
fn system_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    ok(&["create", p(&db), "--dim", "384"]);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample");
    let npy = sample.join("base.npy");
    // A full disk: the import's writes fail past 64 KiB.
    let out = run_with_file_limit(64, &["import", p(&db), "--npy", p(&npy)]);
    fails_with(out, "import on a full disk", 1, "items 1..");

    // A shard locked by another writer past the busy timeout.
    let shard = sqlite_vector::Shard::open(&db).unwrap();
    let jsonl = dir.path().join("one.jsonl");
    let v = vec!["0.5"; 384].join(", ");
    std::fs::write(&jsonl, format!("{{\"id\": \"x\", \"vector\": [{v}]}}\n")).unwrap();
    let r: sqlite_vector::Result<()> = shard.transaction(|tx| {
        let vector: Vec<f32> = vec![0.25; 384];
        tx.insert(sqlite_vector::NewItem::new(vector).with_id("held"))?;
        fails(
            &["import", p(&db), "--jsonl", p(&jsonl)],
            1,
            "database busy",
        );
        Ok(())
    });
    r.unwrap();
}

#[test]
fn a_damaged_index_is_reported_and_dropped_by_the_command_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = abc_shard(dir.path());
    ok(&["index", p(&db)]);
    sqlite_vector::rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM hnsw_state", [])
        .unwrap();
    // Every command still opens the shard: stats names the damage and its repair.
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", p(&db), "--json"])).unwrap();
    let damage = stats["damage"][0].as_str().unwrap_or_default();
    assert!(
        damage.starts_with("index damaged") && damage.contains("index --drop"),
        "{stats}"
    );
    let hits = ok(&["search", p(&db), "--vector", "[1, 0]", "-k", "1", "--json"]);
    assert!(hits.contains("\"a\""), "{hits}");
    fails(&["stats", p(&db), "--check"], 1, "index damaged");
    ok(&["index", p(&db), "--drop"]);
    ok(&["stats", p(&db), "--check"]);
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", p(&db), "--json"])).unwrap();
    assert_eq!(stats["damage"], serde_json::json!([]), "{stats}");
    assert_eq!(stats["index"], serde_json::Value::Null, "{stats}");
}

#[test]
fn backup_writes_one_consistent_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = abc_shard(dir.path());
    let copy = dir.path().join("copy.db");
    ok(&["backup", p(&db), p(&copy)]);
    assert_eq!(count(&copy), (3, 0));
    assert!(!dir.path().join("copy.db-wal").exists());
    fails(&["backup", p(&db), p(&copy)], 2, "exists");
    fails(
        &["backup", p(&db), p(&dir.path().join("no/such/dir/c.db"))],
        2,
        "does not exist",
    );
}

/// The path of shard `name` of `root`, as `shards list` reports it.
fn shard_file(root: &Path, name: &str) -> String {
    let listed = ok(&["shards", "list", "--root", p(root), "--json"]);
    let list: serde_json::Value = serde_json::from_str(&listed).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A root `root` in `dir` with one shard `team/s` of dimension 2; the root's path, and the
/// shard's file (to compare the two ways of naming it).
fn root_with_shard(dir: &Path) -> (std::path::PathBuf, String) {
    let root = dir.join("root");
    ok(&[
        "shards",
        "create",
        "team/s",
        "--root",
        p(&root),
        "--dim",
        "2",
    ]);
    let file = shard_file(&root, "team/s");
    (root, file)
}

/// `cmd` with `--root ROOT --shard NAME` first, then `rest`.
fn named<'a>(cmd: &'a str, root: &'a str, name: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd, "--root", root, "--shard", name];
    v.extend_from_slice(rest);
    v
}

#[test]
fn every_shard_command_takes_root_and_shard_as_it_takes_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let (root, file) = root_with_shard(dir.path());
    let (r, f) = (p(&root), file.as_str());
    let jsonl = dir.path().join("ab.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"vector\": [1, 0], \"text\": \"apple\"}\n\
         {\"id\": -5, \"vector\": [0, 1]}\n{\"id\": \"b\", \"vector\": [0.5, 0.5]}\n",
    )
    .unwrap();
    let jsonl2 = dir.path().join("c.jsonl");
    std::fs::write(&jsonl2, "{\"id\": \"c\", \"vector\": [1, 1]}\n").unwrap();

    // import: by name, then by file, into the same shard.
    let out = ok(&named("import", r, "team/s", &["--jsonl", p(&jsonl)]));
    assert!(out.contains("imported 3 items into shard team/s "), "{out}");
    let out = ok(&["import", f, "--jsonl", p(&jsonl2)]);
    assert!(
        out.contains(&format!("imported 1 items into {f} ")),
        "{out}"
    );

    // export: the same lines both ways.
    let exported = ok(&named("export", r, "team/s", &[]));
    assert_eq!(exported, ok(&["export", f]));
    assert_eq!(exported.lines().count(), 4, "{exported}");

    // get: the same item both ways, options before or after the id, negative ids as ids.
    for id in ["a", "-5"] {
        let by_file = ok(&["get", f, id]);
        assert!(by_file.contains("\"vector\""), "{by_file}");
        assert_eq!(ok(&named("get", r, "team/s", &[id])), by_file);
        assert_eq!(ok(&["get", id, "--root", r, "--shard", "team/s"]), by_file);
    }

    // stats: the same report both ways.
    let stats = ok(&named("stats", r, "team/s", &["--json", "--check"]));
    assert_eq!(stats, ok(&["stats", f, "--json", "--check"]));
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["count"], 4, "{v}");

    // index: built by name, seen by file; dropped by file, built again by name.
    let out = ok(&named("index", r, "team/s", &["--m", "8"]));
    assert!(out.contains("built the hnsw index over 4 items"), "{out}");
    fails(&named("index", r, "team/s", &[]), 2, "already");
    let v: serde_json::Value = serde_json::from_str(&ok(&["stats", f, "--json"])).unwrap();
    assert_eq!(v["index"]["m"], 8, "{v}");
    assert!(ok(&["index", f, "--drop"]).contains("dropped"));
    assert!(ok(&named("index", r, "team/s", &["--drop"])).contains("had no index"));
    ok(&named("index", r, "team/s", &[]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&named("stats", r, "team/s", &["--json"]))).unwrap();
    assert_eq!(v["index"]["m"], 16, "{v}");

    // delete: with --root every positional is an id (two of them, and a negative one).
    let out = ok(&named("delete", r, "team/s", &["a", "-5"]));
    assert!(out.contains("deleted 2 item(s)"), "{out}");
    fails(&["get", f, "a"], 2, "unknown id: \"a\"");
    fails(&named("get", r, "team/s", &["-5"]), 2, "unknown id: \"-5\"");
    fails(
        &named("delete", r, "team/s", &["b", "nope"]),
        2,
        "nothing was deleted: unknown id: \"nope\"",
    );
    assert_eq!(count(Path::new(f)), (2, 2));
    ok(&["delete", "b", "--root", r, "--shard", "team/s"]);
    assert_eq!(count(Path::new(f)), (1, 3));
    let with_tombstones = ok(&named("export", r, "team/s", &["--include-deleted"]));
    assert_eq!(with_tombstones, ok(&["export", f, "--include-deleted"]));
    assert_eq!(with_tombstones.matches("\"deleted\":true").count(), 3);

    // backup: a copy by name equals a copy by file.
    let (by_name, by_file) = (dir.path().join("by-name.db"), dir.path().join("by-file.db"));
    let out = ok(&named("backup", r, "team/s", &[p(&by_name)]));
    assert!(
        out.contains(&format!("backed up shard team/s to {}", p(&by_name))),
        "{out}"
    );
    ok(&["backup", f, p(&by_file)]);
    let all = ok(&["export", f, "--include-deleted"]);
    assert_eq!(ok(&["export", p(&by_name), "--include-deleted"]), all);
    assert_eq!(ok(&["export", p(&by_file), "--include-deleted"]), all);
    fails(
        &named("backup", r, "team/s", &[p(&by_file)]),
        2,
        "already exists",
    );
}

#[test]
fn root_and_shard_are_both_needed_and_exclude_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let (root, file) = root_with_shard(dir.path());
    let (r, f) = (p(&root), file.as_str());
    let jsonl = dir.path().join("a.jsonl");
    std::fs::write(&jsonl, "{\"id\": \"a\", \"vector\": [1, 0]}\n").unwrap();
    ok(&["import", f, "--jsonl", p(&jsonl)]);
    let copy = dir.path().join("copy.db");
    let before = tree(dir.path());
    // Each command with its arguments other than the shard.
    let commands: [(&str, Vec<&str>); 7] = [
        ("import", vec!["--jsonl", p(&jsonl), "--upsert"]),
        ("get", vec!["a"]),
        ("delete", vec!["a"]),
        ("stats", vec![]),
        ("index", vec![]),
        ("export", vec![]),
        ("backup", vec![p(&copy)]),
    ];
    for (cmd, rest) in &commands {
        let with = |shard: &[&str]| -> Vec<String> {
            let all = [&[*cmd], shard, &rest[..]].concat();
            all.into_iter().map(String::from).collect()
        };
        let refused = |shard: &[&str], needle: &str| {
            let args = with(shard);
            let out = bin().args(&args).output().unwrap();
            fails_with(out, &args, 2, needle);
        };
        // --root without --shard, --shard without --root.
        refused(&["--root", r], "--shard <NAME>");
        refused(&["--shard", "team/s"], "--root <ROOT>");
        if *cmd != "delete" {
            // Neither a shard file nor --root.
            refused(&[], "required");
            // A shard file and --root (for delete the file is an id, below). Before the
            // options, the file of get and backup is taken for their ID or DEST, and what
            // follows is an unexpected argument.
            refused(
                &["--root", r, "--shard", "team/s", f],
                "cannot be used with",
            );
            refused(&[f, "--root", r, "--shard", "team/s"], "");
            // A shard file and --shard.
            refused(&["--shard", "team/s", f], "cannot be used with");
        }
    }
    // A lone positional is the id (or the copy), never taken for the shard file.
    fails(&["get", "a"], 2, "required");
    fails(&["backup", p(&copy)], 2, "required");
    fails(&["delete", "a"], 2, "give the shard file and the ids");
    fails(&["delete", f], 2, "give the shard file and the ids");
    fails(&["delete", "--root", r, "--shard", "team/s"], 2, "required");
    // With --root every positional of delete is an id: a shard file given too is an unknown
    // id, and the delete is all or nothing.
    fails(
        &named("delete", r, "team/s", &[f, "a"]),
        2,
        "nothing was deleted: unknown id",
    );
    assert_eq!(count(Path::new(f)), (1, 0));
    assert_eq!(tree(dir.path()), before, "a refused command changed files");
}

#[test]
fn unknown_and_hostile_shard_names_are_refused_by_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = root_with_shard(dir.path());
    let r = p(&root);
    let jsonl = dir.path().join("a.jsonl");
    std::fs::write(&jsonl, "{\"id\": \"a\", \"vector\": [1, 0]}\n").unwrap();
    let copy = dir.path().join("copy.db");
    let before = tree(dir.path());
    let commands: [(&str, Vec<&str>); 7] = [
        ("import", vec!["--jsonl", p(&jsonl)]),
        ("get", vec!["a"]),
        ("delete", vec!["a"]),
        ("stats", vec![]),
        ("index", vec![]),
        ("export", vec![]),
        ("backup", vec![p(&copy)]),
    ];
    for (cmd, rest) in &commands {
        fails(&named(cmd, r, "nope", rest), 2, "unknown shard: \"nope\"");
        // The shard's name without its namespace is another name.
        fails(&named(cmd, r, "s", rest), 2, "unknown shard: \"s\"");
        for (name, why) in [
            ("../x", "'..' segment"),
            ("team/../team/s", "'..' segment"),
            ("/etc/passwd", "starts with '/'"),
            (p(&root), "starts with '/'"),
            ("team\\s", "not allowed"),
            ("", "empty"),
        ] {
            fails(
                &named(cmd, r, name, rest),
                2,
                &format!("invalid shard name {name:?}: "),
            );
            let out = run(&named(cmd, r, name, rest));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(why),
                "{cmd} {name}: {out:?}"
            );
        }
        // A root that is not there is not created (nor is a directory made one).
        let typo = dir.path().join("roto");
        fails(
            &named(cmd, p(&typo), "team/s", rest),
            2,
            &format!("no shard root at {}", p(&typo)),
        );
        fails(
            &named(cmd, p(dir.path()), "team/s", rest),
            2,
            "is not a shard root",
        );
    }
    assert_eq!(tree(dir.path()), before, "a refused command changed files");
    assert!(!dir.path().join("x").exists());
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["shards", "list", "--root", r, "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}
