//! `sqlite-vector memory …` end to end through the binary: store, find (with the leave-one-out
//! guard and the outcome prior), feedback (also from two processes at once), consolidate,
//! sessions, context, the exit codes and messages of bad input, and `memory eval` on the
//! shared WebArena tasks.

mod common;
use common::{skip, tree};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

/// The binary under test: this build's, or the one `SQLITE_VECTOR_CLI_BIN` names.
fn bin_path() -> std::ffi::OsString {
    std::env::var_os("SQLITE_VECTOR_CLI_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_sqlite-vector").into())
}

fn sv<S: AsRef<str>>(args: &[S]) -> Output {
    Command::new(bin_path())
        .args(args.iter().map(AsRef::as_ref))
        .output()
        .expect("runs")
}

fn shown<S: AsRef<str>>(args: &[S]) -> Vec<&str> {
    args.iter().map(AsRef::as_ref).collect()
}

fn ok<S: AsRef<str>>(args: &[S]) -> String {
    let out = sv(args);
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        shown(args),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with `code` and a one-line message containing `needle`.
fn fails<S: AsRef<str>>(args: &[S], code: i32, needle: &str) {
    let out = sv(args);
    let (args, err) = (shown(args), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err:?}");
}

/// The JSON objects of a command's output, one a line.
fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A memory root in a temporary directory (not created until a `store`).
struct Root {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        Root { dir, root }
    }

    fn r(&self) -> &str {
        p(&self.root)
    }

    /// `memory VERB --root ROOT --shard SHARD REST…` (VERB may be two words).
    fn cmd(&self, verb: &str, shard: &str, rest: &[&str]) -> Vec<String> {
        let mut v = vec!["memory".to_string()];
        v.extend(verb.split(' ').map(String::from));
        v.extend(["--root", self.r(), "--shard", shard].map(String::from));
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }

    fn ok(&self, verb: &str, shard: &str, rest: &[&str]) -> String {
        ok(&self.cmd(verb, shard, rest))
    }

    /// The JSON lines of `memory VERB … --json`.
    fn json(&self, verb: &str, shard: &str, rest: &[&str]) -> Vec<Value> {
        let mut args = self.cmd(verb, shard, rest);
        args.push("--json".into());
        lines(&ok(&args))
    }

    fn fails(&self, verb: &str, shard: &str, rest: &[&str], needle: &str) {
        fails(&self.cmd(verb, shard, rest), 2, needle);
    }

    /// Writes `json` to a file in the temporary directory.
    fn file(&self, name: &str, json: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, json).unwrap();
        path
    }

    /// `memory store` of one experience; the stored ids.
    fn store(&self, shard: &str, task: &str, id: &str, outcome: &str, items: &str) -> Vec<String> {
        let file = self.file(&format!("{id}.json"), items);
        let rest = [
            "--task",
            task,
            "--task-id",
            id,
            "--outcome",
            outcome,
            "--items",
            p(&file),
        ];
        self.json("store", shard, &rest)
            .into_iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `memory find --json` on one shard.
    fn find(&self, shard: &str, task: &str, extra: &[&str]) -> Vec<Value> {
        let mut rest = vec!["--task", task];
        rest.extend_from_slice(extra);
        self.json("find", shard, &rest)
    }

    /// `memory feedback` of `items` (comma-separated) with `result` (`--success`/`--failure`).
    fn feedback(&self, shard: &str, task_id: &str, items: &str, result: &str) -> String {
        self.ok(
            "feedback",
            shard,
            &["--task-id", task_id, "--items", items, result],
        )
    }

    /// A memory item's metadata, read with `get`.
    fn item(&self, shard: &str, id: &str) -> Value {
        let out = ok(&["get", "--root", self.r(), "--shard", shard, id]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["metadata"].clone()
    }

    /// The shard's items as `export` writes them.
    fn export(&self, shard: &str) -> String {
        ok(&["export", "--root", self.r(), "--shard", shard])
    }
}

const ROLLOUT: &str = r#"[{"title": "Check the rollout status",
  "description": "When deploying a service to Kubernetes",
  "content": "Run kubectl rollout status after kubectl apply and wait until every replica is ready.",
  "tags": ["k8s"]}]"#;
const LIMITS: &str = r#"[{"title": "Forgot the resource limits",
  "description": "When a Kubernetes deployment gets evicted",
  "content": "Pods without memory limits were evicted under load; set requests and limits first."}]"#;
const WEB_TASK: &str = "Deploy the web service to the Kubernetes cluster";
const API_TASK: &str = "Deploy the API service to the Kubernetes cluster";
const NEW_TASK: &str = "Deploy the billing service to Kubernetes";

/// Shard `mem` with a success (task t1) and a failure (task t2) about Kubernetes deployments.
/// Returns the two item ids.
fn two_experiences(root: &Root) -> (String, String) {
    let a = root.store("mem", WEB_TASK, "t1", "success", ROLLOUT);
    let b = root.store("mem", API_TASK, "t2", "failure", LIMITS);
    assert_eq!((a.len(), b.len()), (1, 1));
    (a[0].clone(), b[0].clone())
}

fn hit(id: &str, hits: &[Value]) -> Value {
    hits.iter()
        .find(|h| h["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {hits:?}"))
}

#[test]
fn store_find_feedback_and_the_leave_one_out_guard() {
    let root = Root::new();
    let (a, b) = two_experiences(&root);
    let hits = root.find("mem", NEW_TASK, &[]);
    assert_eq!(hits.len(), 2, "{hits:?}");
    let (ha, hb) = (hit(&a, &hits), hit(&b, &hits));
    assert_eq!(ha["advice"], "Do: Check the rollout status");
    assert_eq!(ha["polarity"], "success");
    assert_eq!(ha["task_id"], "t1");
    assert_eq!(ha["tags"], json!(["k8s"]));
    assert_eq!(hb["advice"], "Avoid: Forgot the resource limits");
    assert_eq!(hb["polarity"], "failure");
    assert_eq!(
        hb["description"],
        "When a Kubernetes deployment gets evicted"
    );
    for h in &hits {
        assert_eq!(h["shard"], "mem");
        for field in [
            "title",
            "content",
            "relevance",
            "vector_score",
            "prior",
            "score",
        ] {
            assert!(!h[field].is_null(), "{field} in {h}");
        }
        assert!(h.get("text_score").is_some(), "{h}");
        assert_eq!(f(&h["prior"]), 0.5);
        assert!((f(&h["score"]) - f(&h["relevance"])).abs() < 1e-6, "{h}");
    }
    // Text mode shows the lessons.
    let text = root.ok("find", "mem", &["--task", NEW_TASK]);
    assert!(text.contains("Avoid: Forgot the resource limits"), "{text}");
    assert!(text.contains("Do: Check the rollout status"), "{text}");

    // Leave one out: the task's own items never come back.
    let hits = root.find("mem", WEB_TASK, &["--task-id", "t1"]);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["id"], b.as_str());

    // Feedback moves the prior, and the score is relevance + 2·(prior − ½).
    let out = root.json(
        "feedback",
        "mem",
        &["--task-id", "t3", "--items", &a, "--success"],
    );
    assert_eq!((&out[0]["uses"], &out[0]["wins"]), (&json!(1), &json!(1)));
    root.feedback("mem", "t4", &format!("{a},{b}"), "--failure");
    let hits = root.find("mem", NEW_TASK, &[]);
    // a: 1 win, 1 loss: prior 2/4; b: 1 loss: prior 1/3.
    assert!((f(&hit(&a, &hits)["prior"]) - 0.5).abs() < 1e-6, "{hits:?}");
    assert!(
        (f(&hit(&b, &hits)["prior"]) - 1.0 / 3.0).abs() < 1e-6,
        "{hits:?}"
    );
    root.feedback("mem", "t5", &a, "--success");
    let hits = root.find("mem", NEW_TASK, &[]);
    assert!((f(&hit(&a, &hits)["prior"]) - 0.6).abs() < 1e-6, "{hits:?}");
    for h in &hits {
        let want = f(&h["relevance"]) + 2.0 * (f(&h["prior"]) - 0.5);
        assert!((f(&h["score"]) - want).abs() < 1e-5, "{h}");
    }
    let meta = root.item("mem", &a);
    let counts = (&meta["uses"], &meta["wins"], &meta["losses"]);
    assert_eq!(counts, (&json!(3), &json!(2), &json!(1)), "{meta}");

    // --min-score keeps the hits at or above it; -k caps them.
    let best = f(&hits[0]["score"]);
    let kept = root.find(
        "mem",
        NEW_TASK,
        &["--min-score", &format!("{}", best - 1e-4)],
    );
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(root.find("mem", NEW_TASK, &["-k", "1"]).len(), 1);
}

#[test]
fn store_reads_stdin_links_near_duplicates_and_searches_several_shards() {
    let root = Root::new();
    let args = root.cmd(
        "store",
        "team/a",
        &[
            "--task",
            WEB_TASK,
            "--task-id",
            "t1",
            "--outcome",
            "success",
            "--items",
            "-",
        ],
    );
    let mut child = Command::new(bin_path())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ROLLOUT.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("stored "), "{text}");
    // The same lesson from another task is linked to the item, not stored twice.
    let file = root.file("again.json", ROLLOUT);
    let rest = [
        "--task",
        API_TASK,
        "--task-id",
        "t9",
        "--outcome",
        "success",
        "--items",
        p(&file),
    ];
    let out = root.json("store", "team/a", &rest);
    assert_eq!(out[0]["linked"], true, "{out:?}");
    let id = out[0]["id"].as_str().unwrap();
    assert_eq!(root.item("team/a", id)["linked_tasks"], json!(["t1", "t9"]));
    // Linked to both tasks: left out for either.
    assert!(root
        .find("team/a", WEB_TASK, &["--task-id", "t9"])
        .is_empty());

    root.store("team/b", API_TASK, "t2", "failure", LIMITS);
    // A shard that is not a memory shard is skipped under a prefix, refused by name.
    ok(&[
        "shards",
        "create",
        "team/raw",
        "--root",
        root.r(),
        "--dim",
        "2",
    ]);
    let out = ok(&[
        "memory",
        "find",
        "--root",
        root.r(),
        "--prefix",
        "team/",
        "--task",
        NEW_TASK,
        "--json",
    ]);
    let hits = lines(&out);
    let mut shards: Vec<&str> = hits.iter().map(|h| h["shard"].as_str().unwrap()).collect();
    shards.sort();
    assert_eq!(shards, ["team/a", "team/b"], "{hits:?}");
    let scores: Vec<f64> = hits.iter().map(|h| f(&h["score"])).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "by score: {scores:?}"
    );
    let out = ok(&[
        "memory",
        "find",
        "--root",
        root.r(),
        "--shard",
        "team/a",
        "--shard",
        "team/b",
        "--task",
        NEW_TASK,
        "--json",
        "-k",
        "1",
    ]);
    assert_eq!(lines(&out).len(), 1);
    root.fails(
        "find",
        "team/raw",
        &["--task", "x"],
        "shard team/raw: not a memory shard",
    );
    fails(
        &[
            "memory",
            "find",
            "--root",
            root.r(),
            "--prefix",
            "nobody/",
            "--task",
            "x",
        ],
        2,
        "no memory shard",
    );
    fails(
        &["memory", "find", "--root", root.r(), "--task", "x"],
        2,
        "<--shard <NAME>|--prefix <PREFIX>>",
    );
}

const RETRY_A: &str = r#"[{"title": "Retry flaky calls with backoff",
  "description": "When an HTTP call to a flaky API fails",
  "content": "Retry the request three times with exponential backoff before giving up."}]"#;
const RETRY_B: &str = r#"[{"title": "Back off and retry",
  "description": "When a flaky HTTP API call times out",
  "content": "Retry the call with exponential backoff, at most three times, then report the error."}]"#;

#[test]
fn consolidate_dry_run_then_merge_and_give_back() {
    let root = Root::new();
    // Word-set Jaccard of the two retry lessons: 0.43 (below the 0.8 that links at store).
    let a = &root.store(
        "mem",
        "Fetch the rates from the flaky API",
        "t1",
        "success",
        RETRY_A,
    )[0];
    let b = &root.store(
        "mem",
        "Call the payment API that times out",
        "t2",
        "success",
        RETRY_B,
    )[0];
    let (_, limits) = two_experiences(&root);
    root.feedback("mem", "t7", b, "--success");
    // Nothing is that close at the default threshold.
    assert!(root.json("consolidate", "mem", &[]).is_empty());

    let before = root.export("mem");
    let out = root.json("consolidate", "mem", &["--threshold", "0.4", "--dry-run"]);
    assert_eq!(out.len(), 1, "{out:?}");
    // The most used item stays.
    assert_eq!(out[0]["canonical"], b.as_str());
    assert_eq!(out[0]["absorbed"], json!([a]));
    assert_eq!(out[0]["dry_run"], true);
    assert_eq!(root.export("mem"), before, "a dry run changed the shard");

    let text = root.ok("consolidate", "mem", &["--threshold", "0.4"]);
    assert_eq!(text.trim(), format!("merged {a} into {b}"));
    let absorbed = root.item("mem", a);
    assert_eq!(absorbed["superseded_by"], b.as_str());
    assert!(absorbed["valid_to"].is_i64(), "{absorbed}");
    let canon = root.item("mem", b);
    assert_eq!(canon["absorbed"][0]["id"], a.as_str());
    assert_eq!(canon["linked_tasks"], json!(["t2", "t1"]));
    let task = "Retry a flaky HTTP API call";
    let ids = |hits: Vec<Value>| -> Vec<String> {
        hits.iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    let found = ids(root.find("mem", task, &["-k", "10"]));
    assert!(found.contains(b) && !found.contains(a), "{found:?}");
    assert!(found.contains(&limits), "{found:?}");

    let out = root.json("unconsolidate", "mem", &[b.as_str()]);
    assert_eq!(out[0]["restored"], json!([a]));
    let back = root.item("mem", a);
    assert!(back.get("valid_to").is_none(), "{back}");
    assert!(back.get("superseded_by").is_none(), "{back}");
    let canon = root.item("mem", b);
    assert!(canon.get("absorbed").is_none(), "{canon}");
    assert_eq!(canon["linked_tasks"], json!(["t2"]));
    assert_eq!(canon["uses"], 1);
    assert!(ids(root.find("mem", task, &["-k", "10"])).contains(a));
    // Again: nothing left to give back.
    let text = root.ok("unconsolidate", "mem", &[b.as_str()]);
    assert!(text.contains("nothing was merged"), "{text}");
    root.fails("unconsolidate", "mem", &["nope"], "not found: nope");
    root.fails(
        "consolidate",
        "mem",
        &["--threshold", "1.5"],
        "threshold must be in (0, 1]",
    );
}

#[test]
fn sessions_save_and_restore() {
    let root = Root::new();
    let (a, b) = two_experiences(&root);
    let items = format!("{b},{a}");
    let rest = [
        "--session",
        "s1",
        "--items",
        &items,
        "--note",
        "rolling out billing",
    ];
    let out = root.json("session save", "mem", &rest);
    assert_eq!(out[0]["item_ids"], json!([b, a]));
    let restored = root.json("session restore", "mem", &["--session", "s1"]);
    let r = &restored[0];
    assert_eq!(r["session"]["note"], "rolling out billing");
    assert_eq!(r["items"][0]["id"], b.as_str());
    assert_eq!(r["items"][1]["title"], "Check the rollout status");
    assert_eq!(r["missing"], json!([]));
    let text = root.ok("session restore", "mem", &["--session", "s1"]);
    assert!(text.contains("rolling out billing"), "{text}");
    assert!(text.contains("Forgot the resource limits"), "{text}");
    // A deleted item is reported missing; a session is never a pattern.
    ok(&["delete", "--root", root.r(), "--shard", "mem", &a]);
    let restored = root.json("session restore", "mem", &["--session", "s1"]);
    assert_eq!(restored[0]["missing"], json!([a]));
    let hits = root.find("mem", "rolling out billing", &["-k", "10"]);
    assert!(hits.iter().all(|h| h["id"] != "session:s1"), "{hits:?}");
    // Saved again without items: replaced.
    root.ok("session save", "mem", &["--session", "s1"]);
    let restored = root.json("session restore", "mem", &["--session", "s1"]);
    assert_eq!(restored[0]["session"]["item_ids"], json!([]));
    root.fails(
        "session restore",
        "mem",
        &["--session", "nope"],
        "not found: session \"nope\"",
    );
    let rest = ["--session", "s2", "--items", "nope"];
    root.fails("session save", "mem", &rest, "not found: nope");
    // A note (and an id) of emoji only: the vector still has a word to embed.
    let rest = ["--session", "\u{1f642}", "--note", "\u{1f642}"];
    root.ok("session save", "mem", &rest);
    let restored = root.json("session restore", "mem", &["--session", "\u{1f642}"]);
    assert_eq!(restored[0]["session"]["note"], json!("\u{1f642}"));
}

#[test]
fn context_within_a_budget() {
    let root = Root::new();
    two_experiences(&root);
    root.store(
        "other",
        "Fetch the rates from the flaky API",
        "t8",
        "success",
        RETRY_A,
    );
    let both = |rest: &[&str]| -> Vec<String> {
        let mut v = root.cmd("context", "mem", &["--shard", "other", "--task", NEW_TASK]);
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let out = ok(&both(&[]));
    assert!(out.starts_with("Lessons from past tasks"), "{out}");
    for title in [
        "Check the rollout status",
        "[failure] Forgot the resource limits",
        "Retry flaky calls with backoff",
    ] {
        assert!(out.contains(title), "{title} in {out}");
    }
    let out = lines(&ok(&both(&["--budget", "200", "--json"])));
    let c = &out[0];
    let text = c["text"].as_str().unwrap();
    assert!(text.chars().count() <= 200, "{text}");
    let entries = c["entries"].as_array().unwrap();
    assert!(entries.len() < 3, "{c}");
    let left_out = c["over_budget"].as_u64().unwrap() + c["duplicates"].as_u64().unwrap();
    assert_eq!(entries.len() as u64 + left_out, 3, "{c}");
    for e in entries {
        assert!(text.contains(e["title"].as_str().unwrap()), "{c}");
    }
    // The leave-one-out guard holds here too (every memory shard of the root: prefix "").
    let out = ok(&[
        "memory",
        "context",
        "--root",
        root.r(),
        "--prefix",
        "",
        "--task",
        NEW_TASK,
        "--task-id",
        "t1",
        "--json",
    ]);
    let entries = lines(&out)[0]["entries"].clone();
    let titles: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(!titles.contains(&"Check the rollout status"), "{titles:?}");
    fails(
        &both(&["--budget", "100"]),
        2,
        "budget_chars must be 200 to 100,000",
    );
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let root = Root::new();
    let store = |shard: &str, task: &str, items: &Path| -> Vec<String> {
        let rest = [
            "--task",
            task,
            "--task-id",
            "t1",
            "--outcome",
            "success",
            "--items",
            p(items),
        ];
        root.cmd("store", shard, &rest)
    };
    let file = |name: &str, json: &str| root.file(name, json);
    let malformed = file("bad.json", r#"[{"title": "x", "description": "y""#);
    let not_array = file(
        "obj.json",
        r#"{"title": "x", "description": "y", "content": "z"}"#,
    );
    let typo = file(
        "typo.json",
        r#"[{"titel": "x", "description": "y", "content": "z"}]"#,
    );
    let blank = file(
        "blank.json",
        r#"[{"title": " ", "description": "y", "content": "z"}]"#,
    );
    let none = file("none.json", "[]");
    let good = file(
        "good.json",
        r#"[{"title": "x", "description": "y", "content": "z"}]"#,
    );
    let long = format!(
        r#"[{{"title": "{}", "description": "y", "content": "z"}}]"#,
        "x".repeat(201)
    );
    let long = file("long.json", &long);
    let missing = root.dir.path().join("missing.json");
    let before = tree(root.dir.path());
    // Before the root exists: a refused store creates nothing.
    for (items, needle) in [
        (&malformed, "--items "),
        (&malformed, "not a JSON array of"),
        (&not_array, "not a JSON array of"),
        (&typo, "unknown field `titel`"),
        (&blank, "items[0].title is empty"),
        (&none, "an experience carries 1 to 3 items, got 0"),
        (&missing, "no such file"),
    ] {
        fails(&store("mem", "Deploy it", items), 2, needle);
    }
    // A task the built-in model cannot embed (no known word) is named.
    fails(
        &store("mem", "\u{1f642}", &good),
        2,
        "cannot embed --task: ",
    );
    fails(
        &store("../x", "Deploy it", &good),
        2,
        "invalid shard name \"../x\"",
    );
    assert_eq!(
        tree(root.dir.path()),
        before,
        "a refused store changed files"
    );
    root.fails("find", "mem", &["--task", "x"], "no shard root at");

    // With the root and a shard: still nothing created or changed.
    let (a, _) = two_experiences(&root);
    let before = tree(root.dir.path());
    let export = root.export("mem");
    fails(
        &store("mem", "Deploy it", &blank),
        2,
        "items[0].title is empty",
    );
    fails(
        &store("new", "Deploy it", &blank),
        2,
        "items[0].title is empty",
    );
    let too_long = "items[0].title has 201 characters; at most 200";
    fails(&store("new", "Deploy it", &long), 2, too_long);
    for shard in ["../x", "/etc/passwd", "a/../b"] {
        fails(&store(shard, "Deploy it", &good), 2, "invalid shard name");
        root.fails("find", shard, &["--task", "x"], "invalid shard name");
        let rest = ["--task-id", "t", "--items", &a, "--success"];
        root.fails("feedback", shard, &rest, "invalid shard name");
    }
    // An unknown item id among known ones: nothing changed.
    let items = format!("{a},nope");
    let rest = ["--task-id", "t9", "--items", &items, "--success"];
    root.fails(
        "feedback",
        "mem",
        &rest,
        "nothing was changed: not found: nope",
    );
    let items = format!("{a},{a}");
    let rest = ["--task-id", "t9", "--items", &items, "--failure"];
    root.fails("feedback", "mem", &rest, "listed twice");
    root.fails(
        "feedback",
        "mem",
        &["--task-id", "t9", "--items", &a],
        "--success",
    );
    let rest = ["--task-id", "t9", "--items", &a, "--success", "--failure"];
    root.fails("feedback", "mem", &rest, "cannot be used with");
    // Unknown shards, for each verb.
    let unknown = "unknown shard: \"nope\"";
    root.fails("find", "nope", &["--task", "x"], unknown);
    let rest = ["--task-id", "t", "--items", "a", "--success"];
    root.fails("feedback", "nope", &rest, unknown);
    root.fails("consolidate", "nope", &[], unknown);
    root.fails("unconsolidate", "nope", &["a"], unknown);
    root.fails(
        "context",
        "mem",
        &["--shard", "nope", "--task", "x"],
        unknown,
    );
    root.fails("session restore", "nope", &["--session", "s"], unknown);
    root.fails("find", "mem", &["--task", "  "], "task is empty");
    root.fails(
        "find",
        "mem",
        &["--task", "x", "-k", "0"],
        "k must be 1 to 100",
    );
    assert_eq!(
        root.export("mem"),
        export,
        "a refused command changed the shard"
    );
    assert_eq!(
        tree(root.dir.path()),
        before,
        "a refused command changed files"
    );
    assert!(!root.dir.path().join("x").exists());
}

#[test]
fn concurrent_feedback_from_two_processes_counts_every_use() {
    let root = Root::new();
    let (a, _) = two_experiences(&root);
    let loops: Vec<_> = ["p", "q"]
        .into_iter()
        .map(|tag| {
            let calls: Vec<Vec<String>> = (0..20)
                .map(|i| {
                    let task = format!("{tag}-{i}");
                    let result = if i % 2 == 0 { "--success" } else { "--failure" };
                    root.cmd(
                        "feedback",
                        "mem",
                        &["--task-id", &task, "--items", &a, result],
                    )
                })
                .collect();
            // Each call a process, the two loops at once.
            std::thread::spawn(move || {
                for args in calls {
                    ok(&args);
                }
            })
        })
        .collect();
    for l in loops {
        l.join().unwrap();
    }
    let meta = root.item("mem", &a);
    assert_eq!(meta["uses"], 40, "{meta}");
    assert_eq!(meta["wins"], 20, "{meta}");
    assert_eq!(meta["losses"], 20, "{meta}");
    assert!((f(&meta["confidence"]) - 0.5).abs() < 1e-9, "{meta}");
}

/// `../shared/data/<name>` from the workspace root (or `$SQLITE_VECTOR_DATA/<name>`).
fn shared_data(name: &str) -> PathBuf {
    match std::env::var_os("SQLITE_VECTOR_DATA") {
        Some(d) => PathBuf::from(d).join(name),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data")
            .join(name),
    }
}

#[test]
fn eval_on_webarena_tasks() {
    let data = shared_data("webarena-tasks");
    if !data.join("tasks.jsonl").is_file() {
        let why = format!("{} is missing", data.display());
        skip("eval_on_webarena_tasks", &why);
        return;
    }
    let out = lines(&ok(&["memory", "eval", "--data", p(&data), "--json"]));
    let rankings: Vec<&str> = out.iter().map(|r| r["ranking"].as_str().unwrap()).collect();
    assert_eq!(rankings, ["vector", "bm25", "hybrid", "memory"]);
    for r in &out {
        assert_eq!(r["queries"], 788, "{r}");
        assert_eq!(r["embedder"], "builtin", "{r}");
        for m in ["mrr_at_10", "recall_at_5", "recall_at_10", "ndcg_at_10"] {
            let x = f(&r[m]);
            assert!((0.0..=1.0).contains(&x), "{m} {x} in {r}");
        }
    }
    // The reference, FTS5 over the intents alone, is 0.9631 (BM25 does not depend on the
    // embedder).
    let bm25 = f(&out[1]["mrr_at_10"]);
    assert!((bm25 - 0.963).abs() <= 0.03, "bm25 MRR@10 {bm25}");

    let missing = std::env::temp_dir().join("sqlite-vector-no-such-dataset");
    let needle = format!("no such directory: {}", p(&missing));
    fails(&["memory", "eval", "--data", p(&missing)], 2, &needle);
    let empty = tempfile::tempdir().unwrap();
    let needle = format!("no such file: {}", p(&empty.path().join("tasks.jsonl")));
    fails(&["memory", "eval", "--data", p(empty.path())], 2, &needle);
}

/// `memory eval` on another dataset of the same shape (held-out data): task ids in any order,
/// string template ids, no `sites`; and the bad files it refuses.
#[test]
fn eval_on_a_dataset_of_the_same_shape() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = [
        (40, "a", "Find the cheapest flight from Paris to Rome"),
        (7, "a", "Find the cheapest flight from Oslo to Lima"),
        (9, "a", "Find the cheapest flight from Kyiv to Bern"),
        (12, "b", "Write a review of the blue kettle"),
        (3, "b", "Write a review of the red toaster"),
        (5, "c", "Cancel my order of garden chairs"),
    ];
    let jsonl: String = tasks
        .iter()
        .map(|(id, t, text)| {
            format!(
                "{}\n",
                json!({"task_id": id, "template_id": t, "intent": text})
            )
        })
        .collect();
    std::fs::write(dir.path().join("tasks.jsonl"), &jsonl).unwrap();
    let out = lines(&ok(&["memory", "eval", "--data", p(dir.path()), "--json"]));
    assert_eq!(out.len(), 4);
    for r in &out {
        // Templates a and b have siblings: 5 queries.
        assert_eq!(r["queries"], 5, "{r}");
    }
    // BM25 finds a sibling first for every query here.
    assert_eq!(f(&out[1]["mrr_at_10"]), 1.0, "{}", out[1]);

    // Reworded queries: one per line, naming a task id of the bank.
    let q = "{\"query_id\": 0, \"task_id\": 7, \"text\": \"Cheapest flight Oslo to Lima\"}\n";
    std::fs::write(dir.path().join("queries.jsonl"), q).unwrap();
    let out = lines(&ok(&["memory", "eval", "--data", p(dir.path()), "--json"]));
    assert!(out.iter().all(|r| r["queries"] == 1), "{out:?}");
    let bad = "{\"query_id\": 0, \"task_id\": 8, \"text\": \"x\"}\n";
    std::fs::write(dir.path().join("queries.jsonl"), bad).unwrap();
    fails(
        &["memory", "eval", "--data", p(dir.path())],
        2,
        "line 1: task_id 8 is not in tasks.jsonl",
    );
    std::fs::remove_file(dir.path().join("queries.jsonl")).unwrap();
    // Vectors asked for, none there.
    let needle = format!("no such file: {}", p(&dir.path().join("tasks.npy")));
    fails(
        &[
            "memory",
            "eval",
            "--data",
            p(dir.path()),
            "--embedder",
            "vectors",
        ],
        2,
        &needle,
    );
    // A repeated task id; a malformed line.
    let twice = format!(
        "{jsonl}{}\n",
        json!({"task_id": 7, "template_id": "z", "intent": "x"})
    );
    std::fs::write(dir.path().join("tasks.jsonl"), twice).unwrap();
    fails(
        &["memory", "eval", "--data", p(dir.path())],
        2,
        "line 7 repeats task_id 7",
    );
    std::fs::write(
        dir.path().join("tasks.jsonl"),
        format!("{jsonl}{{\"task_id\": \n"),
    )
    .unwrap();
    fails(
        &["memory", "eval", "--data", p(dir.path())],
        2,
        "tasks.jsonl line 7:",
    );
}
