//! The npm package's WebAssembly fallback of the MCP server (`npm/sqlite-vector/src/mcp.js`)
//! serves the tool list in `npm/sqlite-vector/src/mcp-tools.json`: exactly what this server
//! answers to `tools/list`. This test keeps the two from drifting.
//!
//! Regenerate the file after changing a tool (name, description, schemas, annotations):
//!
//! ```text
//! UPDATE_MCP_TOOLS_JSON=1 cargo test -p sqlite-vector-mcp --test tools_json
//! ```

use std::path::PathBuf;

use serde_json::Value;
use sqlite_vector_mcp::{build_server, ServerConfig};

/// The checked-in file, relative to this crate.
fn json_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../npm/sqlite-vector/src/mcp-tools.json")
}

/// The tool list as the server sends it in `tools/list` (`result.tools`).
fn live_tools() -> Value {
    let dir = tempfile::tempdir().expect("a temporary root");
    let server = build_server(ServerConfig::new(dir.path())).expect("the server builds");
    serde_json::to_value(server.tools()).expect("tools serialize")
}

#[test]
fn mcp_tools_json_matches_the_server() {
    let path = json_path();
    let live = live_tools();
    if std::env::var_os("UPDATE_MCP_TOOLS_JSON").is_some_and(|v| !v.is_empty()) {
        // The file is always the full list (with `sync`), whatever features this build has.
        if !cfg!(feature = "sync") {
            panic!("regenerate with the default features (the `sync` tool must be in the list)");
        }
        let mut text = serde_json::to_string_pretty(&live).expect("tools serialize");
        text.push('\n');
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it with UPDATE_MCP_TOOLS_JSON=1 cargo test -p \
             sqlite-vector-mcp --test tools_json",
            path.display()
        )
    });
    let mut checked_in: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    if !cfg!(feature = "sync") {
        // Without the feature the server lists no `sync` tool; the file always has it.
        if let Value::Array(tools) = &mut checked_in {
            tools.retain(|t| t["name"] != "sync");
        }
    }
    if checked_in != live {
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(|t| t["name"].to_string()).collect())
                .unwrap_or_default()
        };
        let differing: Vec<String> = live
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                checked_in
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["name"] == t["name"]))
                    != Some(*t)
            })
            .map(|t| t["name"].to_string())
            .collect();
        panic!(
            "{} differs from the server's tools/list (live: {:?}; file: {:?}; differing: {:?}).\n\
             The npm WebAssembly fallback serves that file: regenerate it with\n  \
             UPDATE_MCP_TOOLS_JSON=1 cargo test -p sqlite-vector-mcp --test tools_json\n\
             and copy it to npm/sqlite-vector/dist/ (or run npm/scripts/build-wasm.sh).",
            path.display(),
            names(&live),
            names(&checked_in),
            differing,
        );
    }
}
