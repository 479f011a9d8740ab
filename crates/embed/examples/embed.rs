//! Embeds each line of standard input with the built-in model and prints one JSON array of
//! 256 numbers per line. A line that cannot be embedded (no known tokens) prints the error to
//! stderr and the program exits with code 2.
//!
//! ```sh
//! printf 'vector database for AI agents\nhtml to pdf\n' | cargo run --release -p sqlite-vector-embed --example embed
//! ```

use std::io::{BufRead, Write};

use sqlite_vector_embed::{Embedder, StaticEmbedder};

fn main() {
    let embedder = StaticEmbedder::builtin().expect("the built-in model loads");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.expect("standard input is UTF-8 text");
        match embedder.embed(&line) {
            Ok(v) => {
                serde_json::to_writer(&mut out, &v).expect("write to stdout");
                writeln!(out).expect("write to stdout");
            }
            Err(e) => {
                out.flush().expect("write to stdout");
                eprintln!("error: line {}: {e}", n + 1);
                std::process::exit(2);
            }
        }
    }
}
