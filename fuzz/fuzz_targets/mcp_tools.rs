//! The MCP tools' argument parsing and behaviour (`SqliteVectorServer::call`, what
//! `tools/call` runs). Input: lines `<tool name> <arguments as JSON>`, run in order against a
//! fresh server and root. A call may fail with a user error; it must not panic, fail with an
//! internal error, or return a non-numeric score.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common_mcp.rs"]
mod common_mcp;

fuzz_target!(|text: &str| {
    let calls: Vec<(&str, serde_json::Value)> = text
        .lines()
        .take(16)
        .filter_map(|line| {
            let (name, args) = line.split_once(' ').unwrap_or((line, "{}"));
            Some((name, serde_json::from_str(args).ok()?))
        })
        .collect();
    if calls.is_empty() {
        return;
    }
    let (server, _root) = common_mcp::server();
    for (name, args) in calls {
        match server.call(name, args.clone()) {
            Ok(out) => common_mcp::check_scores(&out),
            Err(Ok(_user_error)) => {}
            Err(Err(internal)) => panic!("{name} {args}: internal error: {internal}"),
        }
    }
});
