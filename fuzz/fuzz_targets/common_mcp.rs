// Shared by the MCP targets (included with `#[path]`): one built-in embedder per process and
// a fresh server over a fresh root per input, so that every input replays alone.

use std::sync::{Arc, OnceLock};

use sqlite_vector::{ManagerOptions, ShardManager};
use sqlite_vector_embed::{Embedder, StaticEmbedder};
use sqlite_vector_mcp::{ServerLimits, SqliteVectorServer};

/// Small limits keep each input fast; the checks are the same at any size.
pub const LIMITS: ServerLimits = ServerLimits {
    max_batch: 32,
    max_text_bytes: 4096,
    max_dim: 64,
    max_k: 100,
    max_message_bytes: 64 * 1024,
};

fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| Arc::new(StaticEmbedder::builtin().expect("built-in embedder")))
        .clone()
}

/// A server over a new temporary root (removed when the returned directory is dropped).
pub fn server() -> (SqliteVectorServer, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("temporary root");
    let manager = ShardManager::open(root.path(), ManagerOptions::default()).expect("manager");
    (SqliteVectorServer::new(manager, embedder(), LIMITS), root)
}

/// Scores in a tool result are numbers: a non-finite score would be serialized as `null`,
/// which breaks the tools' output schemas and the ranking. (`vector_score` and `text_score`
/// are `null` by design outside hybrid search and for a hybrid hit none of whose words matched.)
pub fn check_scores(v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                if k == "score" {
                    assert!(x.is_number(), "{k} is {x} in {v}");
                }
                if k == "vector_score" || k == "text_score" {
                    assert!(x.is_number() || x.is_null(), "{k} is {x} in {v}");
                }
                check_scores(x);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(check_scores),
        _ => {}
    }
}
