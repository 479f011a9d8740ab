//! A whole MCP session over the newline-delimited JSON-RPC transport (`serve_io`): the line
//! checks, rmcp's message parsing and the tools behind it. Input: the bytes the client sends.
//! Every line the server writes must be a JSON-RPC 2.0 message.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokio::io::AsyncWrite;

#[path = "common_mcp.rs"]
mod common_mcp;

/// The server's output, kept for the checks.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.lock().expect("sink").extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (server, _root) = common_mcp::server();
    let sink = Sink::default();
    let input = io::Cursor::new(data.to_vec());
    // The session may end with an error (e.g. a message before `initialize`); it must not
    // panic, and what it wrote must be well-formed.
    let _ = runtime.block_on(sqlite_vector_mcp::serve_io(server, input, sink.clone()));
    drop(runtime);
    let out = sink.0.lock().expect("sink").clone();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "output line is not JSON ({e}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(v["jsonrpc"], "2.0", "{v}");
        let o = v.as_object().expect("a message is an object");
        assert!(
            o.contains_key("result") ^ o.contains_key("error") || o.contains_key("method"),
            "{v}"
        );
        if let Some(e) = o.get("error") {
            assert!(e["code"].is_i64() && e["message"].is_string(), "{v}");
            assert!(
                o.contains_key("id"),
                "an error reply without an id member: {v}"
            );
        }
        // Tool results only (`tools/list` holds schemas with a "score" property).
        if let Some(content) = v.pointer("/result/structuredContent") {
            common_mcp::check_scores(content);
        }
    }
});
