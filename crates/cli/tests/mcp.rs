//! `sqlite-vector mcp` over stdio, driven with raw JSON-RPC lines (responses matched by id):
//! tools, error results, limits, JSON-RPC error codes for malformed input and internal
//! failures, durability under `kill -9`, two servers on one root, and the real Python MCP
//! client (`mcp_client.py`).

mod common;
use common::skip;

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
        let mut s = Server::spawn(root, extra);
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

    /// A server process that has not been initialized.
    fn spawn(root: &Path, extra: &[&str]) -> Server {
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
        Server {
            child,
            stdin,
            lines: rx,
            pending: HashMap::new(),
            next_id: 1,
        }
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

    /// The next stdout line as sent (use only with nothing else in flight).
    fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a message within 60 s")
    }

    /// The next stdout line, which must be JSON (use only with nothing else in flight).
    fn next_message(&mut self) -> Value {
        let line = self.next_line();
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

    /// Closes stdin, collects every remaining stdout line as JSON and checks the exit status.
    fn finish(mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let mut rest: Vec<Value> = self.pending.drain().map(|(_, v)| v).collect();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            rest.push(serde_json::from_str(&line).expect("only JSON-RPC on stdout"));
        }
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "server exit status {status}; output {rest:?}"
        );
        rest
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
            "sync",
            "insert",
            "insert_batch",
            "search",
            "get",
            "update",
            "delete",
            "memory_store",
            "memory_find",
            "memory_feedback",
            "memory_consolidate",
            "memory_context",
            "session_save",
            "session_restore"
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
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 18);
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
/// `SQLITE_VECTOR_MCP_PYTHON`; skipped visibly without it, and required under `CI=true`.
#[test]
fn mcp_python_client() {
    let Some(python) = std::env::var_os("SQLITE_VECTOR_MCP_PYTHON") else {
        skip(
            "mcp_python_client",
            "SQLITE_VECTOR_MCP_PYTHON is not set (a python with the `mcp` package; .ci/run sets it)",
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
        assert_eq!(by_id(2)["result"]["tools"].as_array().unwrap().len(), 18);
    }
}

/// Issue 11 item 2: notifications and responses before `initialize` (a stray
/// `notifications/cancelled`, an early `notifications/initialized`, a response to nothing) are
/// ignored: the server neither exits nor drops the requests queued behind them.
#[test]
fn mcp_messages_before_initialize_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::spawn(dir.path(), &[]);
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 1, "reason": "changed my mind"}}),
    );
    s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    s.send(&json!({"jsonrpc": "2.0", "id": 77, "result": {}}));
    s.send(&json!({"jsonrpc": "2.0", "id": 78, "error": {"code": -1, "message": "no"}}));
    let ping = s.send_request("ping", json!({}));
    let init = s.send_request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "early-bird", "version": "0"}}),
    );
    s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let create = s.send_request(
        "tools/call",
        json!({"name": "shard_create", "arguments": {"name": "early"}}),
    );
    let list = s.send_request("tools/list", json!({}));
    let replies = s.finish();
    let by_id = |id: i64| {
        replies
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no reply to {id}: {replies:?}"))
    };
    assert!(by_id(ping)["result"].is_object());
    assert_eq!(by_id(init)["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(by_id(create)["result"]["isError"], false);
    assert_eq!(by_id(list)["result"]["tools"].as_array().unwrap().len(), 18);
    assert_eq!(
        replies.len(),
        4,
        "nothing answers a notification or response: {replies:?}"
    );
}

/// Issue 11 item 2, stateless clients (MCP 2026-07-28): no `initialize`, each request carries
/// its protocol version and capabilities in `_meta`. A notification before the first request
/// does not end the session.
#[test]
fn mcp_stateless_client_without_initialize() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::spawn(dir.path(), &[]);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {},
                      "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "0"}});
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": "x"}}),
    );
    let create = s.send_request(
        "tools/call",
        json!({"name": "shard_create", "arguments": {"name": "s"}, "_meta": meta}),
    );
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": "not-in-flight"}}),
    );
    let list = s.send_request(
        "tools/call",
        json!({"name": "shard_list", "arguments": {}, "_meta": meta}),
    );
    let replies = s.finish();
    let by_id = |id: i64| replies.iter().find(|r| r["id"] == id).cloned();
    let created = by_id(create).unwrap_or_else(|| panic!("no reply: {replies:?}"));
    assert_eq!(created["result"]["isError"], false, "{created}");
    let listed = by_id(list).unwrap_or_else(|| panic!("no reply: {replies:?}"));
    assert_eq!(
        listed["result"]["structuredContent"]["shards"][0]["name"], "s",
        "{listed}"
    );
}

/// Issue 11 item 5: calls pipelined without waiting apply in arrival order per shard, so a
/// client gets what it would get waiting for each reply; `shard_drop` behind searches of the
/// same shard is not refused as "in use".
#[test]
fn mcp_pipelined_calls_apply_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    const ROUNDS: usize = 12;
    let mut sent: Vec<(usize, &str, i64)> = Vec::new();
    for round in 0..ROUNDS {
        let shard = format!("p{round}");
        let v = json!([1.0, round as f32]);
        let calls = [
            (
                "create",
                "shard_create",
                json!({"name": shard, "dim": 2, "metric": "l2"}),
            ),
            (
                "insert",
                "insert",
                json!({"shard": shard, "id": "a", "vector": v, "text": "first"}),
            ),
            (
                "search",
                "search",
                json!({"shard": shard, "vector": v, "k": 1}),
            ),
            (
                "update",
                "update",
                json!({"shard": shard, "id": "a", "text": "second"}),
            ),
            ("get", "get", json!({"shard": shard, "id": "a"})),
            (
                "search2",
                "search",
                json!({"shard": shard, "text": "second"}),
            ),
            ("stats", "shard_stats", json!({"name": shard})),
            ("delete", "delete", json!({"shard": shard, "id": "a"})),
            ("get-gone", "get", json!({"shard": shard, "id": "a"})),
            ("search3", "search", json!({"shard": shard, "vector": v})),
            ("search4", "search", json!({"shards": [shard], "vector": v})),
            ("drop", "shard_drop", json!({"name": shard})),
            ("list", "shard_list", json!({"prefix": shard})),
            ("recreate", "shard_create", json!({"name": shard, "dim": 2})),
        ];
        for (what, tool, args) in calls {
            let id = s.send_request("tools/call", json!({"name": tool, "arguments": args}));
            sent.push((round, what, id));
        }
    }
    for (round, what, id) in sent {
        let r = s.wait(id);
        let result = &r["result"];
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        let out = &result["structuredContent"];
        let ok = result["isError"] == false;
        let context = format!("round {round} {what}: {r}");
        match what {
            "get-gone" => assert!(!ok && text.contains("\"a\""), "{context}"),
            _ => assert!(ok, "{context}"),
        }
        match what {
            "search" => assert_eq!(out["hits"][0]["id"], "a", "{context}"),
            "get" => assert_eq!(out["text"], "second", "{context}"),
            "search2" => assert_eq!(out["hits"][0]["text"], "second", "{context}"),
            "stats" => assert_eq!(out["count"], 1, "{context}"),
            "search3" | "search4" => assert_eq!(out["hits"], json!([]), "{context}"),
            "list" => assert_eq!(out["shards"], json!([]), "{context}"),
            _ => {}
        }
    }
    s.close();
}

/// Issue 11 item 5: a request whose id is still in flight is refused with a JSON-RPC error
/// carrying that id, and not run; the first request with the id gets its own reply, and the id
/// can be used again once answered.
#[test]
fn mcp_duplicate_in_flight_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    s.ok("shard_create", json!({"name": "d"}));
    // A slow batch keeps the next call on the shard (id "dup") waiting in flight.
    let items: Vec<Value> = (0..3000)
        .map(|i| json!({"text": format!("filler text number {i} about nothing much")}))
        .collect();
    let batch = s.send_request(
        "tools/call",
        json!({"name": "insert_batch", "arguments": {"shard": "d", "items": items}}),
    );
    let call = |tool: &str, args: Value| {
        json!({"jsonrpc": "2.0", "id": "dup", "method": "tools/call",
               "params": {"name": tool, "arguments": args}})
    };
    s.send(&call("shard_stats", json!({"name": "d"})));
    s.send(&call("shard_create", json!({"name": "must-not-exist"})));
    let (mut dup, mut batch_done) = (Vec::new(), false);
    while dup.len() < 2 || !batch_done {
        let r = s.next_message();
        if r["id"] == "dup" {
            dup.push(r);
        } else {
            assert_eq!(r["id"], batch, "{r}");
            assert_eq!(r["result"]["isError"], false, "{r}");
            batch_done = true;
        }
    }
    let refused = dup.iter().find(|r| r.get("error").is_some());
    let refused = refused.unwrap_or_else(|| panic!("no refusal: {dup:?}"));
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in flight"),
        "{refused}"
    );
    let stats = dup.iter().find(|r| r.get("result").is_some()).unwrap();
    assert_eq!(
        stats["result"]["structuredContent"]["count"], 3000,
        "{stats}"
    );
    // The refused call did not run; the id is free again.
    s.send(&call("shard_list", json!({})));
    let r = s.next_message();
    assert_eq!(r["id"], "dup", "{r}");
    let names = &r["result"]["structuredContent"]["shards"];
    assert_eq!(names.as_array().unwrap().len(), 1, "{r}");
    s.close();
}

/// Issue 11 item 12: valid JSON-RPC with ids beyond `i64` (kept exact in the reply), numbers
/// beyond `f64` or nesting deeper than the parser holds gets a reply with the request's id;
/// such a notification gets none, and the server keeps serving.
#[test]
fn mcp_replies_carry_any_readable_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    for id in [
        "18446744073709551615",
        "9223372036854775808",
        "100000000000000000000",
        "-9223372036854775809",
        r#""a \"quoted\" id""#,
    ] {
        s.send_raw(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#));
        let line = s.next_line();
        assert!(line.contains(&format!(r#""id":{id}"#)), "{id}: {line}");
        let r: Value = serde_json::from_str(&line).unwrap();
        assert!(r["result"].is_object(), "{id}: {line}");
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    #[rustfmt::skip]
    let cases = [
        (r#"{"jsonrpc":"2.0","id":"huge","method":"tools/call","params":{"name":"search","arguments":{"shard":"x","vector":[1e400]}}}"#.to_owned(), "\"huge\"", -32602),
        (format!(r#"{{"jsonrpc":"2.0","id":18446744073709551614,"method":"tools/call","params":{{"name":"get","arguments":{{"shard":{deep}}}}}}}"#), "18446744073709551614", -32602),
        (format!(r#"{{"jsonrpc":"2.0","id":7,"method":"ping","extra":{deep}}}"#), "7", -32600),
    ];
    for (line, id, code) in &cases {
        s.send_raw(line);
        let reply = s.next_line();
        assert!(reply.contains(&format!(r#""id":{id}"#)), "{reply}");
        let r: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(r["error"]["code"], *code, "{reply}");
    }
    // Notifications get no reply, whatever they hold: the next reply answers the ping.
    s.send_raw(
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1e400}}"#,
    );
    s.send_raw(&format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{deep}}}"#
    ));
    let pong = s.request("ping", json!({}));
    assert!(pong["result"].is_object(), "{pong}");
    s.ok("shard_create", json!({"name": "still-serving"}));
    s.close();
}

/// Issue 11 item 6: `search` takes `max_distance` on l2 shards (the error for `min_score` on
/// l2 points to it), and refuses values that are not a distance.
#[test]
fn mcp_search_max_distance() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    s.ok(
        "shard_create",
        json!({"name": "l2", "dim": 2, "metric": "l2"}),
    );
    s.ok(
        "insert_batch",
        json!({"shard": "l2", "items": [
            {"id": "near", "vector": [0.0, 1.0]},
            {"id": "mid", "vector": [0.0, 2.0]},
            {"id": "far", "vector": [0.0, 10.0]}
        ]}),
    );
    let e = s.err(
        "search",
        json!({"shard": "l2", "vector": [0.0, 0.0], "min_score": 0.5}),
    );
    assert!(e.contains("max_distance"), "{e}");
    let r = s.ok(
        "search",
        json!({"shard": "l2", "vector": [0.0, 0.0], "max_distance": 2.5}),
    );
    let ids: Vec<&str> = r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["near", "mid"], "{r}");
    for bad in [json!(-1.0), json!(1e39)] {
        let e = s.err(
            "search",
            json!({"shard": "l2", "vector": [0.0, 0.0], "max_distance": bad}),
        );
        assert!(e.contains("max_distance"), "{bad}: {e}");
    }
    s.ok("shard_create", json!({"name": "cos"}));
    let e = s.err(
        "search",
        json!({"shard": "cos", "text": "x", "max_distance": 1.0}),
    );
    assert!(e.contains("max_distance"), "{e}");
    s.close();
}

/// Issue 11 item 6: limits above the embedder's own are refused at start-up with one line and
/// exit code 2, before any message is read.
#[test]
fn mcp_limits_above_the_embedders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for flags in [["--max-text-bytes", "2000000"], ["--max-batch", "5000"]] {
        let out = Command::new(BIN)
            .args(["mcp", "--root"])
            .arg(dir.path())
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        let name = flags[0].trim_start_matches("--").replace('-', "_");
        assert!(
            stderr.contains(&name) && stderr.contains("limit"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}
