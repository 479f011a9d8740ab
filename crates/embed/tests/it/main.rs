//! Integration tests of the embedders: one binary, a module per area.

mod http;
mod known_item;
mod static_model;

use std::sync::OnceLock;

use sqlite_vector_embed::StaticEmbedder;

/// The built-in model, loaded once for the whole test binary.
pub fn builtin() -> &'static StaticEmbedder {
    static MODEL: OnceLock<StaticEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| StaticEmbedder::builtin().expect("the built-in model loads"))
}
