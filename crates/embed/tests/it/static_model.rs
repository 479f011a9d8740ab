//! The built-in static model against the reference vectors, limits, loading from a directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sqlite_vector_embed::{EmbedError, Embedder, Limits, StaticEmbedder, BUILTIN_MODEL_ID};

use crate::builtin;

#[derive(Deserialize)]
struct TestVector {
    text: String,
    embedding: Vec<f32>,
    token_ids: Vec<u32>,
}

fn test_vectors() -> Vec<TestVector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/test_vectors.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("model")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The cases of test_vectors.jsonl whose text yields no token ids (empty, blank, emoji only).
const NO_TOKENS: [usize; 3] = [0, 1, 13];

#[test]
fn reproduces_the_reference_vectors() {
    let e = builtin();
    let cases = test_vectors();
    assert_eq!(cases.len(), 20);
    let mut worst = 0f32;
    for (i, case) in cases.iter().enumerate() {
        let ids = e.token_ids(&case.text).unwrap();
        assert_eq!(ids, case.token_ids, "token ids of test vector {i}");
        if NO_TOKENS.contains(&i) {
            assert!(ids.is_empty());
            assert!(
                case.embedding.iter().all(|&x| x == 0.0),
                "model2vec gives zeros"
            );
            let err = e.embed(&case.text).unwrap_err();
            assert!(
                matches!(err, EmbedError::NoTokens { index: 0 }),
                "test vector {i}: {err}"
            );
            assert!(err.is_user_error());
            continue;
        }
        let v = e.embed(&case.text).unwrap();
        assert_eq!(v.len(), 256);
        let d = max_abs_diff(&v, &case.embedding);
        assert!(d <= 1e-5, "test vector {i}: max |Δ| = {d:e}");
        worst = worst.max(d);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "test vector {i}: norm {norm}");
    }
    eprintln!("test vectors: max |Δ| = {worst:e}");
    // Vector 4 is cut by the 3,072-character pre-cut, vector 19 by the 512-token cut.
    assert_eq!(cases[19].token_ids.len(), 512);
}

#[test]
fn a_batch_equals_single_texts_and_fails_whole() {
    let e = builtin();
    let cases = test_vectors();
    let texts: Vec<&str> = cases
        .iter()
        .enumerate()
        .filter(|(i, _)| !NO_TOKENS.contains(i))
        .map(|(_, c)| c.text.as_str())
        .collect();
    let batch = e.embed_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (t, v) in texts.iter().zip(&batch) {
        assert_eq!(&e.embed(t).unwrap(), v);
    }
    assert!(e.embed_batch(&[]).unwrap().is_empty());
    // One text without tokens fails the batch and is named by its position.
    let err = e
        .embed_batch(&["hello", "world", "😀🚀", "again"])
        .unwrap_err();
    assert!(matches!(err, EmbedError::NoTokens { index: 2 }), "{err}");
    assert!(
        err.to_string().starts_with("text 2 yields no tokens"),
        "{err}"
    );
}

#[test]
fn nearest_texts_make_sense() {
    let e = builtin();
    let docs = e
        .embed_batch(&[
            "command-line tool to convert HTML to PDF",
            "Haskell library: efficient parsers for floating-point literals",
            "plugin-based Nintendo 64 emulator, audio plugins",
        ])
        .unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for (query, want) in [
        ("html to pdf converter", 0),
        ("parse floating point numbers in haskell", 1),
        ("n64 emulator sound", 2),
    ] {
        let q = e.embed(query).unwrap();
        let best = (0..docs.len())
            .max_by(|&a, &b| dot(&q, &docs[a]).total_cmp(&dot(&q, &docs[b])))
            .unwrap();
        assert_eq!(best, want, "{query}");
    }
}

#[test]
fn limits_are_enforced_not_cut() {
    let e = builtin();
    assert_eq!(e.limits(), Limits::DEFAULT);
    let max = Limits::DEFAULT.max_text_bytes;
    let at_limit = "ab ".repeat(max / 3 + 1)[..max].to_owned();
    assert_eq!(at_limit.len(), max);
    assert!(e.embed(&at_limit).is_ok());
    let over = format!("{at_limit}x");
    let err = e.embed(&over).unwrap_err();
    assert!(
        matches!(err, EmbedError::TextTooLong { index: 0, bytes, max: m } if bytes == max + 1 && m == max),
        "{err}"
    );
    assert!(err.is_user_error());
    assert!(e.token_ids(&over).is_err());

    let texts = vec!["hello"; Limits::DEFAULT.max_batch + 1];
    let err = e.embed_batch(&texts).unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::BatchTooLarge {
                len: 4097,
                max: 4096
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "batch too large: 4097 texts, the limit is 4096"
    );
    assert_eq!(e.embed_batch(&texts[1..]).unwrap().len(), 4096);

    let small = StaticEmbedder::builtin().unwrap().with_limits(Limits {
        max_text_bytes: 10,
        max_batch: 2,
    });
    assert!(matches!(
        small.embed_batch(&["short", "far too long a text"]),
        Err(EmbedError::TextTooLong {
            index: 1,
            bytes: 19,
            max: 10
        })
    ));
    assert!(matches!(
        small.embed_batch(&["a", "b", "c"]),
        Err(EmbedError::BatchTooLarge { len: 3, max: 2 })
    ));
}

#[test]
fn from_dir_loads_the_same_model() {
    let from_dir = StaticEmbedder::from_dir(model_dir()).unwrap();
    assert_eq!(from_dir.model_id(), BUILTIN_MODEL_ID);
    assert_eq!(from_dir.dimension(), 256);
    let text = "python library for parsing JSON files";
    assert_eq!(
        from_dir.embed(text).unwrap(),
        builtin().embed(text).unwrap()
    );
}

/// Copies the model directory into a temporary one, with `edit` applied to one file.
fn edited_copy(file: &str, edit: impl Fn(Vec<u8>) -> Vec<u8>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["model.safetensors", "tokenizer.json", "config.json"] {
        let bytes = std::fs::read(model_dir().join(name)).unwrap();
        let bytes = if name == file { edit(bytes) } else { bytes };
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn another_model_gets_another_id() {
    // Same weights and tokenizer, another config (no normalisation): another model.
    let dir = edited_copy("config.json", |b| {
        String::from_utf8(b)
            .unwrap()
            .replace("\"normalize\": true", "\"normalize\": false")
            .into_bytes()
    });
    let e = StaticEmbedder::from_dir(dir.path()).unwrap();
    assert!(e.model_id().starts_with("static-"), "{}", e.model_id());
    assert_eq!(e.model_id().len(), "static-".len() + 16);
    let v = e.embed("hello world").unwrap();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "not normalised: {norm}");
    // The id is a function of the files: loading again gives the same one.
    assert_eq!(
        StaticEmbedder::from_dir(dir.path()).unwrap().model_id(),
        e.model_id()
    );
    let named = e.with_model_id("my-model");
    assert_eq!(named.model_id(), "my-model");
}

#[test]
fn broken_models_are_load_errors() {
    let missing = StaticEmbedder::from_dir("/nonexistent/model/dir").unwrap_err();
    assert!(matches!(missing, EmbedError::ModelLoad { .. }), "{missing}");
    assert!(!missing.is_user_error());
    assert!(
        missing.to_string().contains("model.safetensors"),
        "{missing}"
    );

    type Edit = fn(Vec<u8>) -> Vec<u8>;
    let cases: [(&str, Edit, &str); 4] = [
        (
            "model.safetensors",
            |b| b[..1000].to_vec(),
            "model.safetensors",
        ),
        (
            "tokenizer.json",
            |b| b[..b.len() / 2].to_vec(),
            "tokenizer.json",
        ),
        (
            "config.json",
            |_| b"{\"max_length\": 512}".to_vec(),
            "normalize",
        ),
        (
            "model.safetensors",
            // Rename the embeddings tensor in the header (same length: the file stays valid).
            |b| {
                let s = replace_bytes(&b, b"\"embeddings\"", b"\"embeddingz\"");
                assert_ne!(s, b);
                s
            },
            "embeddings",
        ),
    ];
    for (file, edit, needle) in cases {
        let dir = edited_copy(file, edit);
        let err = StaticEmbedder::from_dir(dir.path()).unwrap_err();
        assert!(matches!(err, EmbedError::ModelLoad { .. }), "{file}: {err}");
        assert!(err.to_string().contains(needle), "{file}: {err}");
    }
}

/// Replaces the first occurrence of `from` (same length as `to`) in `bytes`.
fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    if let Some(pos) = bytes.windows(from.len()).position(|w| w == from) {
        out[pos..pos + to.len()].copy_from_slice(to);
    }
    out
}

#[test]
fn is_send_and_sync_and_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StaticEmbedder>();
    let shared: std::sync::Arc<dyn Embedder> =
        std::sync::Arc::new(StaticEmbedder::builtin().unwrap());
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let e = shared.clone();
            std::thread::spawn(move || e.embed(&format!("thread {t} text")).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().len(), 256);
    }
}
