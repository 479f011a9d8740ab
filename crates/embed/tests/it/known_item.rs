//! Known-item retrieval with the built-in model on debian-minilm: each package's synopsis line
//! must find that package among 25,000 descriptions. The model README's reference (model2vec's
//! Python `encode`, exact cosine): MRR@10 0.806, hit@10 0.924.
//!
//! Needs `../shared/data/debian-minilm` beside the checkout (or `$SQLITE_VECTOR_DATA`): without
//! it the test says SKIPPED, except under `CI=true`, where it fails.

use std::path::Path;

use serde::Deserialize;
use sqlite_vector_dataset::{shared_dataset, KnownItemScore};
use sqlite_vector_embed::{Embedder, StaticEmbedder};

use crate::builtin;

#[derive(Deserialize)]
struct TextLine {
    set: String,
    text: String,
}

#[derive(Deserialize)]
struct KnownItem {
    target_row: usize,
    query: String,
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Embeds `texts` with the built-in model on all cores, into one row-major matrix.
fn embed_all(e: &StaticEmbedder, texts: &[&str]) -> Vec<f32> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = texts.len().div_ceil(threads).max(1);
    let parts: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut out = Vec::with_capacity(part.len() * e.dimension());
                    for batch in part.chunks(1024) {
                        for v in e.embed_batch(batch).expect("every base text embeds") {
                            out.extend(v);
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    parts.concat()
}

/// 1-based rank of `target` among the rows of `base` by dot product with `q` (ties: lower row
/// first), or `None` when it is beyond 10.
fn rank(base: &[f32], dim: usize, q: &[f32], target: usize) -> Option<usize> {
    let dot = |row: usize| {
        let r = &base[row * dim..(row + 1) * dim];
        r.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()
    };
    let t = dot(target);
    let mut better = 0;
    for row in 0..base.len() / dim {
        let s = dot(row);
        if s > t || (s == t && row < target) {
            better += 1;
            if better >= 10 {
                return None;
            }
        }
    }
    Some(better + 1)
}

#[test]
fn debian_minilm_known_item_quality() {
    let Some(dir) = shared_dataset("debian-minilm") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI must provide ../shared/data/debian-minilm beside the checkout");
        }
        eprintln!(
            "SKIPPED debian_minilm_known_item_quality: ../shared/data/debian-minilm not found \
             (set SQLITE_VECTOR_DATA to its parent directory)"
        );
        return;
    };
    let e = builtin();
    let dim = e.dimension();
    let lines: Vec<TextLine> = read_jsonl(&dir.join("texts.jsonl"));
    let base_texts: Vec<&str> = lines
        .iter()
        .filter(|l| l.set == "base")
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(base_texts.len(), 25_000);
    let items: Vec<KnownItem> = read_jsonl(&dir.join("known_item.jsonl"));
    assert_eq!(items.len(), 500);
    let queries: Vec<&str> = items.iter().map(|k| k.query.as_str()).collect();

    let start = std::time::Instant::now();
    let base = embed_all(e, &base_texts);
    let query_vectors = embed_all(e, &queries);
    let embed_time = start.elapsed();
    assert_eq!(base.len(), 25_000 * dim);

    let ranks: Vec<Option<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(250)
            .enumerate()
            .map(|(c, part)| {
                let (base, query_vectors) = (&base, &query_vectors);
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, k)| {
                            let qi = c * 250 + i;
                            let q = &query_vectors[qi * dim..(qi + 1) * dim];
                            rank(base, dim, q, k.target_row)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let score = KnownItemScore::from_ranks(&ranks);
    eprintln!(
        "known-item, built-in static model: MRR@10 {:.4}, hit@1 {:.4}, hit@10 {:.4} \
         (reference 0.806 / 0.744 / 0.924); embedded 25,500 texts in {:.2?}",
        score.mrr_at_10, score.hit_at_1, score.hit_at_10, embed_time
    );
    assert!(
        (score.mrr_at_10 - 0.806).abs() <= 0.01,
        "MRR@10 {}",
        score.mrr_at_10
    );
    assert!(
        (score.hit_at_10 - 0.924).abs() <= 0.01,
        "hit@10 {}",
        score.hit_at_10
    );
}
