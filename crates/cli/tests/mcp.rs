//! `sqlite-vector mcp` over stdio, driven with raw JSON-RPC lines (responses matched by id):
//! tools, error results, limits, JSON-RPC error codes for malformed input and internal
//! failures, durability under `kill -9`, two servers on one root, and the real Python MCP
//! client (`mcp_client.py`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};
use sqlite_vector::{ManagerOptions, Metric, NewItem, Profile, ShardManager};

const BIN: &str = env!("CARGO_BIN_EXE_sqlite-vector");

/// One server process and a reader thread that hands over its stdout lines.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pending: HashMap<i64, Value>,
    next_id: i64,
}

impl Server {
    fn start(root: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("mcp")
            .arg("--root")
            .arg(root)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sqlite-vector mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut s = Server {
            child,
            stdin,
            lines: rx,
            pending: HashMap::new(),
            next_id: 1,
        };
        let init = s.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "rust-test", "version": "0"}}),
        );
        assert_eq!(
            init["result"]["serverInfo"]["name"], "sqlite-vector",
            "{init}"
        );
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, msg: &Value) {
        self.send_raw(&msg.to_string());
    }

    /// Writes one line as is.
    fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next stdout line, which must be JSON (use only with nothing else in flight).
    fn next_message(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a message within 60 s");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// Sends a request without waiting; returns its id.
    fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Waits for the response with this id (responses may come out of order).
    fn wait(&mut self, id: i64) -> Value {
        loop {
            if let Some(v) = self.pending.remove(&id) {
                return v;
            }
            let v = self.next_message();
            if let Some(rid) = v["id"].as_i64() {
                self.pending.insert(rid, v);
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.wait(id)
    }

    /// Calls a tool; returns (isError, structuredContent or the error text).
    fn call(&mut self, tool: &str, args: Value) -> (bool, Value) {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let result = &r["result"];
        assert!(result.is_object(), "{tool}: no result: {r}");
        let is_error = result["isError"].as_bool().unwrap_or(false);
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        if is_error {
            (true, Value::String(text.to_owned()))
        } else {
            let structured = result["structuredContent"].clone();
            let from_text: Value = serde_json::from_str(text).expect("text content is JSON");
            assert_eq!(structured, from_text, "structured and text content differ");
            (false, structured)
        }
    }

    fn ok(&mut self, tool: &str, args: Value) -> Value {
        let (err, v) = self.call(tool, args.clone());
        assert!(!err, "{tool} {args} failed: {v}");
        v
    }

    fn err(&mut self, tool: &str, args: Value) -> String {
        let (err, v) = self.call(tool, args.clone());
        assert!(err, "{tool} {args} should fail, got {v}");
        v.as_str().unwrap().to_owned()
    }

    /// Closes stdin and waits for the process to exit.
    fn close(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exit status {status}");
    }
}

#[test]
fn mcp_tools_schemas_and_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    let tools = s.request("tools/list", json!({}));
    let tools = tools["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "shard_create",
            "shard_list",
            "shard_stats",
            "shard_drop",
            "insert",
            "insert_batch",
            "search",
            "get",
            "update",
            "delete"
        ]
    );
    for t in &tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert_eq!(t["outputSchema"]["type"], "object", "{t}");
        let a = &t["annotations"];
        for hint in ["readOnlyHint", "destructiveHint", "idempotentHint"] {
            assert!(a[hint].is_boolean(), "{} lacks {hint}", t["name"]);
        }
        let d = t["description"].as_str().unwrap();
        assert!(
            d.contains("Example"),
            "{} description lacks an example",
            t["name"]
        );
    }
    s.close();
}

#[test]
fn mcp_text_round_trip_and_error_results() {
    let dir = tempfile::tempdir().unwrap();
    // A shard filled with another model, made through the Rust API on the same root.
    {
        let m = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
        m.create(
            "other",
            &Profile::new(256, Metric::Cosine).with_embedding_model("other-model-v1"),
        )
        .unwrap();
        // A shard of raw vectors (no embedding model), with text for keyword search.
        m.create("raw", &Profile::new(2, Metric::Cosine))
            .unwrap()
            .insert(
                NewItem::new(vec![1.0, 0.0])
                    .with_id("r1")
                    .with_text("raw keyword doc"),
            )
            .unwrap();
    }
    let mut s = Server::start(
        dir.path(),
        &[
            "--max-batch",
            "3",
            "--max-text-bytes",
            "200",
            "--max-dim",
            "512",
        ],
    );
    let created = s.ok("shard_create", json!({"name": "notes"}));
    assert_eq!(created["shard"]["embedding_model"], "minilm-static-256");
    assert_eq!(created["shard"]["dim"], 256);
    let batch = s.ok(
        "insert_batch",
        json!({"shard": "notes", "items": [
            {"id": "pdf", "text": "command-line tool to convert HTML to PDF", "metadata": {"kind": "tool"}},
            {"id": "n64", "text": "Nintendo 64 emulator audio plugins", "metadata": {"kind": "game"}},
            {"text": "a library for parsing TOML configuration files"}
        ]}),
    );
    assert_eq!(batch["count"], 3);
    let one = s.ok(
        "insert",
        json!({"shard": "notes", "id": "key", "text": "the deploy key lives in vault path ops/deploy"}),
    );
    assert_eq!(one["id"], "key");
    for mode in ["vector", "hybrid", "text"] {
        let r = s.ok(
            "search",
            json!({"shard": "notes", "text": "html to pdf converter", "k": 2, "mode": mode}),
        );
        assert_eq!(r["hits"][0]["id"], "pdf", "mode {mode}: {r}");
        assert!(r["hits"][0]["text"].is_string());
    }
    let filtered = s.ok(
        "search",
        json!({"shard": "notes", "text": "html to pdf", "filter": {"kind": "game"}}),
    );
    assert_eq!(filtered["hits"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["hits"][0]["id"], "n64");
    let across = s.ok(
        "search",
        json!({"shards": ["notes"], "text": "deploy key vault"}),
    );
    assert_eq!(across["hits"][0]["shard"], "notes");
    assert_eq!(across["hits"][0]["id"], "key");
    // A text query on raw vectors ranks by keywords (nothing could embed it for them), the
    // same rule as the CLI's `search --text`.
    let raw = s.ok("search", json!({"shard": "raw", "text": "keyword"}));
    assert_eq!(raw["mode"], "text");
    assert_eq!(raw["hits"][0]["id"], "r1");
    let defaulted = s.ok("search", json!({"shard": "notes", "text": "html to pdf"}));
    assert_eq!(defaulted["mode"], "hybrid");
    let got = s.ok("get", json!({"shard": "notes", "id": "n64"}));
    assert_eq!(got["metadata"]["kind"], "game");
    s.ok(
        "update",
        json!({"shard": "notes", "id": "n64", "text": "deploy key rotation schedule"}),
    );
    s.ok("delete", json!({"shard": "notes", "id": "key"}));
    let r = s.ok(
        "search",
        json!({"shard": "notes", "text": "deploy key", "mode": "vector", "k": 1}),
    );
    assert_eq!(r["hits"][0]["id"], "n64");
    let stats = s.ok("shard_stats", json!({"name": "notes"}));
    assert_eq!(stats["count"], 3);
    let list = s.ok("shard_list", json!({}));
    assert_eq!(list["shards"].as_array().unwrap().len(), 3); // notes, other, raw

    // Input errors are tool results with isError and a message naming the problem.
    let e = s.err("insert", json!({"shard": "../x", "text": "hi"}));
    assert!(e.contains("invalid shard name"), "{e}");
    let e = s.err("shard_create", json!({"name": "/etc/passwd"}));
    assert!(e.contains("invalid shard name"), "{e}");
    let e = s.err("search", json!({"shard": "missing", "text": "hi"}));
    assert!(e.contains("unknown shard"), "{e}");
    let e = s.err("insert", json!({"shard": "notes", "vector": [0.1, 0.2]}));
    assert!(e.contains("dimension mismatch"), "{e}");
    let e = s.err("insert", json!({"shard": "other", "text": "hello world"}));
    assert!(
        e.contains("other-model-v1") && e.contains("minilm-static-256"),
        "{e}"
    );
    let e = s.err("search", json!({"shard": "other", "text": "hello world"}));
    assert!(e.contains("other-model-v1"), "{e}");
    let e = s.err(
        "insert",
        json!({"shard": "notes", "vector": vec![1e39; 256]}),
    );
    assert!(
        e.contains("finite") || e.contains("NaN") || e.contains("inf"),
        "{e}"
    );
    // Finite but overflowing: refused, never stored to be scored NaN ("score": null) later.
    let e = s.err(
        "insert",
        json!({"shard": "notes", "vector": vec![1e19; 256]}),
    );
    assert!(e.contains("vector norm") && e.contains("too large"), "{e}");
    let e = s.err(
        "search",
        json!({"shard": "notes", "vector": vec![-1e19; 256]}),
    );
    assert!(e.contains("too large"), "{e}");
    let e = s.err("insert", json!({"shard": "notes", "text": "x".repeat(201)}));
    assert!(e.contains("too long"), "{e}");
    let e = s.err(
        "insert_batch",
        json!({"shard": "notes", "items": [{"text": "a"}, {"text": "b"}, {"text": "c"}, {"text": "d"}]}),
    );
    assert!(e.contains("batch too large"), "{e}");
    let e = s.err("shard_create", json!({"name": "big", "dim": 100000}));
    assert!(e.contains("limit"), "{e}");
    let e = s.err("insert", json!({"shard": "notes", "text": "😀🚀"}));
    assert!(e.contains("token"), "{e}");
    let e = s.err(
        "insert",
        json!({"shard": "notes", "id": "pdf", "text": "again"}),
    );
    assert!(e.contains("pdf"), "{e}");
    let e = s.err("get", json!({"shard": "notes", "id": "nope"}));
    assert!(e.contains("nope"), "{e}");
    let e = s.err(
        "search",
        json!({"shard": "notes", "text": "x", "mode": "fuzzy"}),
    );
    assert!(e.contains("mode"), "{e}");
    let e = s.err(
        "search",
        json!({"shard": "notes", "text": "x", "filter": {"a": {"$bogus": 1}}}),
    );
    assert!(!e.is_empty());
    let e = s.err("insert", json!({"shard": "notes", "txt": "typo"}));
    assert!(e.contains("invalid arguments"), "{e}");

    // Protocol errors keep their JSON-RPC codes; the server survives them.
    let r = s.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.request("no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    s.ok("shard_stats", json!({"name": "notes"}));
    s.close();
}

/// Malformed JSON-RPC, one line at a time: each line gets exactly one error reply with the
/// JSON-RPC 2.0 code and the message's id (`null` when it has no string or integer id);
/// notifications get none. The server keeps serving, and at end of input it answers what is in
/// flight and exits.
#[test]
fn mcp_malformed_json_rpc_gets_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &["--max-message-bytes", "65536"]);
    let oversize = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list",
                          "params": {"pad": "x".repeat(70_000)}})
    .to_string();
    // (what, line, code, id of the reply as JSON)
    #[rustfmt::skip]
    let cases: &[(&str, &str, i64, &str)] = &[
        ("garbage", "this is not json", -32700, "null"),
        ("open brace", "{", -32700, "null"),
        ("empty array", "[]", -32600, "null"),
        ("batch", r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#, -32600, "null"),
        ("not an object", "42", -32600, "null"),
        ("jsonrpc 1.0", r#"{"jsonrpc":"1.0","id":"v1","method":"tools/list"}"#, -32600, r#""v1""#),
        ("no jsonrpc", r#"{"id":21,"method":"tools/list"}"#, -32600, "21"),
        ("id object", r#"{"jsonrpc":"2.0","id":{"n":1},"method":"tools/list"}"#, -32600, "null"),
        ("id bool", r#"{"jsonrpc":"2.0","id":true,"method":"tools/list"}"#, -32600, "null"),
        ("id float", r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#, -32600, "null"),
        ("id null", r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#, -32600, "null"),
        ("missing method", r#"{"jsonrpc":"2.0","id":"m1","params":{}}"#, -32600, r#""m1""#),
        ("method not a string", r#"{"jsonrpc":"2.0","id":22,"method":["tools/list"]}"#, -32600, "22"),
        ("params not structured", r#"{"jsonrpc":"2.0","id":23,"method":"tools/list","params":"all"}"#, -32600, "23"),
        ("result and error", r#"{"jsonrpc":"2.0","id":24,"result":{},"error":{"code":1,"message":"x"}}"#, -32600, "24"),
        ("oversize line", &oversize, -32600, "null"),
        ("unknown method", r#"{"jsonrpc":"2.0","id":"u1","method":"no/such/method","params":{}}"#, -32601, r#""u1""#),
        ("tools/call without name", r#"{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"arguments":{}}}"#, -32602, "25"),
        ("tools/call without params", r#"{"jsonrpc":"2.0","id":"c2","method":"tools/call"}"#, -32602, r#""c2""#),
    ];
    for (label, line, code, id) in cases {
        let id: Value = serde_json::from_str(id).unwrap();
        s.send_raw(line);
        let r = s.next_message();
        assert_eq!(r["jsonrpc"], "2.0", "{label}: {r}");
        assert_eq!(r["error"]["code"], *code, "{label}: {r}");
        assert!(r.as_object().unwrap().contains_key("id"), "{label}: {r}");
        assert_eq!(r["id"], id, "{label}: {r}");
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{label}: {r}");
        assert!(r.get("result").is_none(), "{label}: {r}");
    }

    // Notifications get no reply, readable or not: the next line answers the ping.
    s.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/no_such_thing"}"#);
    s.send_raw(r#"{"jsonrpc":"2.0","method":"no/such/notification","params":[1]}"#);
    s.send_raw(r#"{"jsonrpc":"2.0","id":"after","method":"ping"}"#);
    let pong = s.next_message();
    assert_eq!(pong["id"], "after", "{pong}");
    assert!(pong["result"].is_object(), "{pong}");

    // Still serving.
    let tools = s.request("tools/list", json!({}));
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 10);
    s.ok("shard_create", json!({"name": "still-works"}));

    // End of input with requests in flight: each is answered, then the process exits.
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            let args = json!({"shard": "still-works", "text": format!("note number {i}")});
            s.send_request("tools/call", json!({"name": "insert", "arguments": args}))
        })
        .collect();
    s.send_raw("trailing garbage");
    drop(s.stdin.take());
    let mut rest = Vec::new();
    while let Ok(line) = s.lines.recv_timeout(Duration::from_secs(60)) {
        rest.push(serde_json::from_str::<Value>(&line).expect("only JSON-RPC on stdout"));
    }
    for id in &ids {
        let r = rest.iter().find(|r| r["id"] == *id);
        let r = r.unwrap_or_else(|| panic!("no response to {id} before exit: {rest:?}"));
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    let parse_errors = rest.iter().filter(|r| r["error"]["code"] == -32700);
    assert_eq!(parse_errors.count(), 1, "{rest:?}");
    assert_eq!(rest.len(), ids.len() + 1, "{rest:?}");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "server exit status {status}");
}

/// Failures that are not the caller's fault reach the client as JSON-RPC errors -32603 with the
/// request's id, not as tool results: shard files damaged while the server runs (one replaced by
/// a directory: an I/O error; one overwritten with bytes that are not SQLite).
#[test]
fn mcp_internal_failures_are_json_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let paths: HashMap<String, std::path::PathBuf> = {
        let m = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let profile = Profile::new(256, Metric::Cosine).with_embedding_model("minilm-static-256");
        for name in ["gone", "garbage"] {
            m.create(name, &profile).unwrap();
        }
        let list = m.list(None).unwrap();
        list.into_iter().map(|i| (i.name, i.path)).collect()
    };
    let mut s = Server::start(dir.path(), &[]);
    // The server has not opened these shards yet; damage them under it.
    for path in paths.values() {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
    std::fs::create_dir(&paths["gone"]).unwrap();
    std::fs::write(&paths["garbage"], vec![b'x'; 8192]).unwrap();
    let calls = [
        ("shard_stats", json!({"name": "gone"}), "no shard file"),
        (
            "insert",
            json!({"shard": "gone", "text": "hello"}),
            "no shard file",
        ),
        ("shard_stats", json!({"name": "garbage"}), "not a SQLite"),
        (
            "search",
            json!({"shard": "garbage", "text": "hello"}),
            "not a SQLite",
        ),
    ];
    for (tool, args, cause) in calls {
        let id = s.send_request("tools/call", json!({"name": tool, "arguments": args}));
        let r = s.wait(id);
        assert_eq!(r["id"], id, "{r}");
        assert_eq!(r["error"]["code"], -32603, "{tool} {args}: {r}");
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(cause), "{tool} {args}: {r}");
        assert!(r.get("result").is_none(), "{r}");
    }
    // Input errors stay tool results, and the server goes on serving.
    let e = s.err("shard_stats", json!({"name": "missing"}));
    assert!(e.contains("unknown shard"), "{e}");
    s.ok("shard_create", json!({"name": "fresh"}));
    s.ok("insert", json!({"shard": "fresh", "text": "works"}));
    s.close();
}

#[test]
fn mcp_insert_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    s.ok("shard_create", json!({"name": "mem"}));
    let r = s.ok(
        "insert",
        json!({"shard": "mem", "id": "acked", "text": "this write was acknowledged"}),
    );
    assert_eq!(r["id"], "acked");
    // SIGKILL right after the response.
    s.child.kill().unwrap();
    s.child.wait().unwrap();

    let m = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
    let item = m.open_shard("mem").unwrap().get("acked").unwrap();
    assert_eq!(item.text.as_deref(), Some("this write was acknowledged"));
    drop(m);
    // A new server finds it too.
    let mut s = Server::start(dir.path(), &[]);
    let r = s.ok(
        "search",
        json!({"shard": "mem", "text": "acknowledged write"}),
    );
    assert_eq!(r["hits"][0]["id"], "acked");
    s.close();
}

#[test]
fn mcp_two_servers_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Server::start(dir.path(), &[]);
    a.ok("shard_create", json!({"name": "shared"}));
    let mut b = Server::start(dir.path(), &[]);
    const N: usize = 100;
    // Pipeline every request on both servers, then collect the responses.
    let mut ids = Vec::new();
    for i in 0..N {
        for (tag, s) in [("a", &mut a), ("b", &mut b)] {
            let args = json!({"shard": "shared", "id": format!("{tag}-{i}"),
                              "text": format!("memory number {i} from server {tag}")});
            let id = s.send_request("tools/call", json!({"name": "insert", "arguments": args}));
            ids.push((tag, id));
        }
    }
    for (tag, id) in ids {
        let s = if tag == "a" { &mut a } else { &mut b };
        let r = s.wait(id);
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    // Each server sees the other's writes.
    assert_eq!(
        a.ok("shard_stats", json!({"name": "shared"}))["count"],
        2 * N
    );
    assert_eq!(
        b.ok("shard_stats", json!({"name": "shared"}))["count"],
        2 * N
    );
    let got = a.ok("get", json!({"shard": "shared", "id": "b-7"}));
    assert_eq!(got["text"], "memory number 7 from server b");
    a.close();
    b.close();
    let m = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
    let shard = m.open_shard("shared").unwrap();
    assert_eq!(shard.len(), 2 * N);
    shard.check_integrity().unwrap();
}

#[test]
fn mcp_exits_when_stdin_closes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    s.close();
}

/// The real Python MCP client (`mcp` from PyPI), installed by `.ci/run` into a venv named by
/// `SQLITE_VECTOR_MCP_PYTHON`.
#[test]
fn mcp_python_client() {
    let Some(python) = std::env::var_os("SQLITE_VECTOR_MCP_PYTHON") else {
        if std::env::var_os("CI").is_some() {
            panic!("SQLITE_VECTOR_MCP_PYTHON is not set under CI (.ci/run installs the mcp SDK)");
        }
        eprintln!(
            "SKIPPED mcp_python_client: SQLITE_VECTOR_MCP_PYTHON is not set \
             (a python with the `mcp` package; .ci/run sets it)"
        );
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(BIN)
        .arg(dir.path())
        .output()
        .expect("run the python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "mcp_client.py failed");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "last line: {last}");
}

/// Both handshake revisions are served (the initialize reply echoes the client's version), and
/// a non-JSON line does not kill the server.
#[test]
fn mcp_protocol_versions() {
    for version in ["2025-06-18", "2025-11-25"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["mcp", "--root"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}});
        writeln!(stdin, "{init}").unwrap();
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        writeln!(stdin, "this is not json").unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}"#).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("only JSON-RPC on stdout"))
            .collect();
        let by_id = |id: i64| lines.iter().find(|v| v["id"] == id).cloned().unwrap();
        assert_eq!(by_id(1)["result"]["protocolVersion"], version);
        assert_eq!(
            by_id(1)["result"]["serverInfo"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(by_id(2)["result"]["tools"].as_array().unwrap().len(), 10);
    }
}
