//! The built-in offline embedder: a static (model2vec) model, a token → vector lookup table.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use tokenizers::models::ModelWrapper;
use tokenizers::utils::truncation::TruncationDirection;
use tokenizers::Tokenizer;

use crate::{EmbedError, Embedder, Limits, Result};

/// Model id of the built-in model ([`StaticEmbedder::builtin`]): `minilm-static-256`, the 256-d
/// static model distilled from all-MiniLM-L6-v2. A shard filled with it records this id.
pub const BUILTIN_MODEL_ID: &str = "minilm-static-256";

static BUILTIN_WEIGHTS: &[u8] = include_bytes!("../model/model.safetensors");
static BUILTIN_TOKENIZER: &[u8] = include_bytes!("../model/tokenizer.json");
static BUILTIN_CONFIG: &[u8] = include_bytes!("../model/config.json");

/// A static embedding model in the model2vec format: WordPiece-tokenise, look up one int8 row
/// (times a per-row f32 scale) per token, average, L2-normalise. No neural network runs, so it
/// is fast and needs no network; it is much less accurate than the transformer it was distilled
/// from.
///
/// [`StaticEmbedder::builtin`] is the model compiled into the binary ([`BUILTIN_MODEL_ID`],
/// 256-d, English, lower-cased, accents stripped, word order ignored). The computation follows
/// `model2vec.StaticModel.encode` 0.10.0 exactly (see `model/README.md`):
///
/// 1. keep the first `max_length × median token length` = 512 × 6 = 3,072 characters;
/// 2. tokenise with `tokenizer.json`, no special tokens added, keep the first 512 ids;
/// 3. drop every `[UNK]` id;
/// 4. average `embeddings[id] as f32 * weights[id]` over the remaining ids, in f32;
/// 5. divide by `‖v‖₂ + 1e-32`.
///
/// Step 2 uses the `tokenizers` crate itself (`encode_fast`, no padding, the truncation of
/// `tokenizer.json`). One thread embeds tens of thousands of short texts (10 tokens) or several
/// thousand package descriptions (90 tokens) per second.
///
/// A text left with no ids after step 3 (empty, blank, only emoji or unknown scripts) is refused
/// with [`EmbedError::NoTokens`]; model2vec would return a zero vector, which carries no meaning.
///
/// Texts longer than [`Limits::max_text_bytes`] (default 1 MiB) are refused with
/// [`EmbedError::TextTooLong`] before any work; below that the 3,072-character cut of step 1
/// applies, as in model2vec.
pub struct StaticEmbedder {
    model_id: String,
    /// The tokenizer of `tokenizer.json`, with its truncation and without padding.
    tokenizer: Tokenizer,
    /// `rows × dim` int8 values, row-major (stored as bytes; read as `i8`).
    embeddings: Cow<'static, [u8]>,
    /// Per-row scale.
    weights: Vec<f32>,
    dim: usize,
    unk_id: Option<u32>,
    /// Character pre-cut (`max_length × median token length`), if `max_length` is set.
    max_chars: Option<usize>,
    /// Token cut (the truncation of `tokenizer.json`, applied by the tokenizer), and whether it
    /// keeps the end. For `Debug` and tests.
    max_tokens: Option<(usize, bool)>,
    normalize: bool,
    limits: Limits,
}

impl fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("model_id", &self.model_id)
            .field("dimension", &self.dim)
            .field("vocabulary", &self.weights.len())
            .field("max_chars", &self.max_chars)
            .field("max_tokens", &self.max_tokens.map(|(n, _)| n))
            .field("normalize", &self.normalize)
            .field("limits", &self.limits)
            .finish()
    }
}

impl StaticEmbedder {
    /// The built-in model, `minilm-static-256` (256-d), compiled into the binary: works offline
    /// with no files. Loading parses the embedded tokenizer and builds its tables (about 0.1 s
    /// and 20 MB); load once and share the embedder (it is `Send + Sync`).
    pub fn builtin() -> Result<StaticEmbedder> {
        Self::load(
            "built-in",
            BUILTIN_MODEL_ID.to_owned(),
            Cow::Borrowed(BUILTIN_WEIGHTS),
            BUILTIN_TOKENIZER,
            BUILTIN_CONFIG,
        )
    }

    /// Loads a static model from a directory holding `model.safetensors` (`embeddings` I8
    /// `[vocab, dim]` and `weights` F32 `[vocab]`), `tokenizer.json` and `config.json`
    /// (model2vec's format, as in this crate's `model/` directory).
    ///
    /// The model id is [`BUILTIN_MODEL_ID`] when the three files are identical to the built-in
    /// model's; otherwise it is `static-` followed by 16 hex digits of a hash (FNV-1a, 64 bit)
    /// of the three files, so that the same model gets the same id wherever it is loaded from,
    /// and another model another id. [`with_model_id`](StaticEmbedder::with_model_id) sets
    /// another.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<StaticEmbedder> {
        let dir = dir.as_ref();
        let source = dir.display().to_string();
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| EmbedError::ModelLoad {
                source_name: source.clone(),
                reason: format!("cannot read {name}: {e}"),
            })
        };
        let weights = read("model.safetensors")?;
        let tokenizer = read("tokenizer.json")?;
        let config = read("config.json")?;
        let model_id = if weights == BUILTIN_WEIGHTS
            && tokenizer == BUILTIN_TOKENIZER
            && config == BUILTIN_CONFIG
        {
            BUILTIN_MODEL_ID.to_owned()
        } else {
            let mut h = Fnv64::new();
            for part in [&weights, &tokenizer, &config] {
                h.write(&(part.len() as u64).to_le_bytes());
                h.write(part);
            }
            format!("static-{:016x}", h.0)
        };
        Self::load(&source, model_id, Cow::Owned(weights), &tokenizer, &config)
    }

    /// Replaces the model id (for a model loaded with [`from_dir`](StaticEmbedder::from_dir)
    /// that has a name of its own). Use with care: shards compare model ids to decide whether
    /// vectors are comparable.
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> StaticEmbedder {
        self.model_id = model_id.into();
        self
    }

    /// Replaces the limits (default [`Limits::DEFAULT`]: 1 MiB per text, 4,096 texts per batch).
    pub fn with_limits(mut self, limits: Limits) -> StaticEmbedder {
        self.limits = limits;
        self
    }

    /// The token ids a text is embedded from (steps 1-3 of the recipe: pre-cut, tokenise,
    /// truncate, drop `[UNK]`), for inspection and tests. Empty when the text yields no tokens.
    /// Refuses texts over [`Limits::max_text_bytes`].
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.limits.check(&[text])?;
        let mut ids = Vec::new();
        self.ids(0, text, &mut ids)?;
        Ok(ids)
    }

    fn load(
        source: &str,
        model_id: String,
        weights_file: Cow<'static, [u8]>,
        tokenizer_json: &[u8],
        config_json: &[u8],
    ) -> Result<StaticEmbedder> {
        let fail = |reason: String| EmbedError::ModelLoad {
            source_name: source.to_owned(),
            reason,
        };

        // config.json: the model2vec settings the recipe depends on.
        let config: serde_json::Value = serde_json::from_slice(config_json)
            .map_err(|e| fail(format!("config.json is not valid JSON: {e}")))?;
        let normalize = match config.get("normalize") {
            Some(serde_json::Value::Bool(b)) => *b,
            other => {
                return Err(fail(format!(
                    "config.json: normalize is {other:?}, expected true or false"
                )))
            }
        };
        let max_length = match config.get("max_length") {
            Some(serde_json::Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n as usize),
                _ => {
                    return Err(fail(format!(
                        "config.json: max_length is {v}, expected a positive integer or null"
                    )))
                }
            },
            None => return Err(fail("config.json: max_length is missing".into())),
        };
        if let Some(pooling) = config.get("pooling") {
            if pooling != "mean" {
                return Err(fail(format!(
                    "config.json: pooling is {pooling}, only \"mean\" is supported"
                )));
            }
        }

        // tokenizer.json: its truncation is kept (model2vec keeps it too); padding is off.
        let mut tokenizer = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        let max_tokens = tokenizer
            .get_truncation()
            .map(|t| (t.max_length, t.direction == TruncationDirection::Left));
        let unk_token = match tokenizer.get_model() {
            ModelWrapper::WordPiece(m) => Some(m.unk_token.clone()),
            ModelWrapper::WordLevel(m) => Some(m.unk_token.clone()),
            ModelWrapper::BPE(m) => m.unk_token.clone(),
            ModelWrapper::Unigram(_) => None,
        };
        let unk_id = unk_token.and_then(|t| tokenizer.token_to_id(&t));
        let vocab = tokenizer.get_vocab(true);
        // model2vec: int(np.median([len(token) for token in vocab])), lengths in code points.
        let mut lengths: Vec<usize> = vocab.keys().map(|t| t.chars().count()).collect();
        lengths.sort_unstable();
        let median = match lengths.len() {
            0 => return Err(fail("tokenizer.json: empty vocabulary".into())),
            n if n % 2 == 1 => lengths[n / 2],
            n => (lengths[n / 2 - 1] + lengths[n / 2]) / 2,
        };
        let max_chars = max_length.map(|m| m * median);
        let max_id = vocab.values().copied().max().unwrap_or(0) as usize;

        // model.safetensors: embeddings I8 [rows, dim], weights F32 [rows].
        let (rows, dim, emb_range, weights) = {
            let st = SafeTensors::deserialize(&weights_file)
                .map_err(|e| fail(format!("model.safetensors: {e}")))?;
            let emb = st
                .tensor("embeddings")
                .map_err(|e| fail(format!("model.safetensors: embeddings: {e}")))?;
            if emb.dtype() != Dtype::I8 || emb.shape().len() != 2 {
                return Err(fail(format!(
                    "model.safetensors: embeddings is {:?} {:?}, expected I8 [vocab, dim]",
                    emb.dtype(),
                    emb.shape()
                )));
            }
            let (rows, dim) = (emb.shape()[0], emb.shape()[1]);
            let w = st
                .tensor("weights")
                .map_err(|e| fail(format!("model.safetensors: weights: {e}")))?;
            if w.dtype() != Dtype::F32 || w.shape() != [rows] {
                return Err(fail(format!(
                    "model.safetensors: weights is {:?} {:?}, expected F32 [{rows}]",
                    w.dtype(),
                    w.shape()
                )));
            }
            let weights: Vec<f32> = w
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            // The embeddings stay where they are (in the static image for the built-in model):
            // record their byte range in the file.
            let start = emb.data().as_ptr() as usize - weights_file.as_ptr() as usize;
            (rows, dim, start..start + emb.data().len(), weights)
        };
        if dim == 0 || rows == 0 {
            return Err(fail(format!(
                "model.safetensors: embeddings shape [{rows}, {dim}]"
            )));
        }
        if max_id >= rows {
            return Err(fail(format!(
                "the tokenizer has token id {max_id}, the embeddings only {rows} rows"
            )));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            return Err(fail(format!(
                "model.safetensors: weights[{i}] is {}",
                weights[i]
            )));
        }
        let embeddings = match weights_file {
            Cow::Borrowed(b) => Cow::Borrowed(&b[emb_range]),
            Cow::Owned(mut v) => {
                v.truncate(emb_range.end);
                v.drain(..emb_range.start);
                Cow::Owned(v)
            }
        };
        Ok(StaticEmbedder {
            model_id,
            tokenizer,
            embeddings,
            weights,
            dim,
            unk_id,
            max_chars,
            max_tokens,
            normalize,
            limits: Limits::DEFAULT,
        })
    }

    /// Steps 1-3: pre-cut, tokenise (with the tokenizer's truncation), drop unknown ids.
    /// `ids` is cleared first, then receives the ids.
    fn ids(&self, index: usize, text: &str, ids: &mut Vec<u32>) -> Result<()> {
        let text = match self.max_chars {
            Some(max) => match text.char_indices().nth(max) {
                Some((byte, _)) => &text[..byte],
                None => text,
            },
            None => text,
        };
        let encoding =
            self.tokenizer
                .encode_fast(text, false)
                .map_err(|e| EmbedError::Tokenizer {
                    index,
                    message: e.to_string(),
                })?;
        ids.clear();
        match self.unk_id {
            Some(unk) => ids.extend(encoding.get_ids().iter().filter(|&&id| id != unk)),
            None => ids.extend_from_slice(encoding.get_ids()),
        }
        Ok(())
    }

    /// Steps 4-5: mean of the scaled rows, then L2 normalisation.
    fn pool(&self, ids: &[u32]) -> Vec<f32> {
        let dim = self.dim;
        let mut v = vec![0f32; dim];
        for &id in ids {
            let id = id as usize;
            let scale = self.weights[id];
            let row = &self.embeddings[id * dim..(id + 1) * dim];
            for (acc, &q) in v.iter_mut().zip(row) {
                *acc += (q as i8) as f32 * scale;
            }
        }
        let n = ids.len() as f32;
        for x in &mut v {
            *x /= n;
        }
        if self.normalize {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt() + 1e-32;
            for x in &mut v {
                *x /= norm;
            }
        }
        v
    }
}

impl Embedder for StaticEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dim
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.limits.check(texts)?;
        // One text at a time on the calling thread (`encode_batch_fast` would start a thread
        // pool), with one id buffer for the whole batch.
        let mut ids = Vec::with_capacity(128);
        let mut out = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            self.ids(index, text, &mut ids)?;
            if ids.is_empty() {
                return Err(EmbedError::NoTokens { index });
            }
            out.push(self.pool(&ids));
        }
        Ok(out)
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

/// FNV-1a, 64 bit: a stable, dependency-free fingerprint for model ids.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_settings_match_the_recipe() {
        let e = StaticEmbedder::builtin().unwrap();
        assert_eq!(e.model_id(), BUILTIN_MODEL_ID);
        assert_eq!(e.dimension(), 256);
        assert_eq!(e.weights.len(), 29525);
        assert_eq!(e.embeddings.len(), 29525 * 256);
        assert_eq!(e.max_chars, Some(3072), "512 × median token length 6");
        assert_eq!(e.max_tokens, Some((512, false)));
        assert_eq!(e.unk_id, Some(1));
        assert!(e.normalize);
        assert!(e.tokenizer.get_padding().is_none());
    }

    #[test]
    fn fnv_is_stable() {
        let mut h = Fnv64::new();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }
}
