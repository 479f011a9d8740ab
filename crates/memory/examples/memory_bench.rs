//! The memory layer's latency on real text (Debian package descriptions as tasks and lessons),
//! file shards, the built-in embedder, release build:
//! `find_patterns` on a 10,000-item memory shard (embedding the task included),
//! `store_experience` of 3 items into it, and `synthesize_context` over 10 shards of 1,000.
//!
//! `cargo run --release -p sqlite-vector-memory --example memory_bench [texts.jsonl]`
//! (default `../shared/data/debian-minilm/texts.jsonl`).

use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use sqlite_vector::Shard;
use sqlite_vector_embed::{Embedder, StaticEmbedder};
use sqlite_vector_memory::{
    synthesize_context, ContextParams, Distilled, Experience, FindParams, Memory, Polarity,
    StoreOptions,
};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A lesson made from one package description: the package as title, the text's start as
/// the task and the description.
fn experience(i: usize, package: &str, text: &str) -> Experience {
    Experience {
        task: format!("Set up {}", cut(text, 160)),
        task_id: format!("task-{i}"),
        outcome: if i.is_multiple_of(4) {
            Polarity::Failure
        } else {
            Polarity::Success
        },
        items: vec![Distilled {
            title: format!("Use {package}"),
            description: cut(text, 120),
            content: cut(text, 400),
            tags: vec![],
        }],
        task_vector: None,
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/debian-minilm/texts.jsonl".into());
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows: Vec<(String, String)> = std::io::BufReader::new(file)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
        .filter(|v| v["set"] == "base")
        .map(|v| {
            (
                v["package"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .take(20_000)
        .collect();
    assert!(rows.len() >= 20_000, "need 20,000 base texts in {path}");
    let embedder: Arc<dyn Embedder> = Arc::new(StaticEmbedder::builtin().unwrap());
    let profile = Memory::profile(embedder.dimension(), Some(embedder.model_id()));
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        let shard = Shard::create(dir.path().join(name), &profile).unwrap();
        Memory::new(Arc::new(shard), Some(embedder.clone())).unwrap()
    };
    let no_link = StoreOptions {
        link_duplicates: false,
        ..StoreOptions::default()
    };

    // 10,000 items.
    let big = open("big.db");
    let t = Instant::now();
    for (i, (p, text)) in rows[..10_000].iter().enumerate() {
        big.store_experience(&experience(i, p, text), no_link)
            .unwrap();
    }
    println!(
        "filled 10,000 items one experience at a time in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut find = Vec::new();
    for (i, (p, text)) in rows[10_000..10_300].iter().enumerate() {
        let mut q = FindParams::new(format!("Install {p}: {}", cut(text, 100)));
        q.task_id = Some(format!("q-{i}"));
        let t = Instant::now();
        let hits = big.find_patterns(&q).unwrap();
        find.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!hits.is_empty());
    }
    println!(
        "find_patterns, 10,000-item shard, k = 5, embedding included: p50 {:.2} ms, p99 {:.2} ms ({} queries)",
        pct(&mut find.clone(), 50.0),
        pct(&mut find, 99.0),
        300
    );
    let mut store = Vec::new();
    for (i, chunk) in rows[10_300..10_900].chunks(3).enumerate() {
        let mut e = experience(100_000 + i, &chunk[0].0, &chunk[0].1);
        e.items = chunk
            .iter()
            .map(|(p, text)| experience(0, p, text).items.remove(0))
            .collect();
        let t = Instant::now();
        let got = big.store_experience(&e, StoreOptions::default()).unwrap();
        store.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(got.len(), 3);
    }
    println!(
        "store_experience of 3 items (duplicate check included) into it: p50 {:.2} ms, p99 {:.2} ms ({} stores)",
        pct(&mut store.clone(), 50.0),
        pct(&mut store, 99.0),
        200
    );

    // 10 shards of 1,000.
    let shards: Vec<(String, Memory)> = (0..10)
        .map(|s| {
            let m = open(&format!("team-{s}.db"));
            for (i, (p, text)) in rows[10_900 + s * 900..][..900].iter().enumerate() {
                m.store_experience(&experience(i, p, text), no_link)
                    .unwrap();
            }
            (format!("team-{s}"), m)
        })
        .collect();
    let pairs: Vec<(String, &Memory)> = shards.iter().map(|(n, m)| (n.clone(), m)).collect();
    let mut ctx = Vec::new();
    for (p, text) in &rows[..200] {
        let params = ContextParams::new(format!("Install {p}: {}", cut(text, 100)));
        let t = Instant::now();
        let c = synthesize_context(&pairs, &params).unwrap();
        ctx.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!c.entries.is_empty());
    }
    println!(
        "synthesize_context over 10 shards of 900 items, 4,000 characters: p50 {:.2} ms, p99 {:.2} ms (200 tasks)",
        pct(&mut ctx.clone(), 50.0),
        pct(&mut ctx, 99.0)
    );
}
