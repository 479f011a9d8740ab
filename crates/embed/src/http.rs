//! The OpenAI-compatible HTTP embedder.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{EmbedError, Embedder, Limits, Result};

/// Environment variable: the server's base URL, e.g. `http://localhost:11434/v1`.
const ENV_URL: &str = "SQLITE_VECTOR_EMBED_URL";
/// Environment variable: the model name sent with every request.
const ENV_MODEL: &str = "SQLITE_VECTOR_EMBED_MODEL";
/// Environment variable: the API key (sent as `Authorization: Bearer ...`).
const ENV_API_KEY: &str = "SQLITE_VECTOR_EMBED_API_KEY";
/// Environment variable read for the API key when [`ENV_API_KEY`] is unset.
const ENV_OPENAI_API_KEY: &str = "OPENAI_API_KEY";
/// Environment variable: the expected dimension (optional).
const ENV_DIM: &str = "SQLITE_VECTOR_EMBED_DIM";
/// Environment variable: the request timeout in seconds (optional, fractions allowed).
const ENV_TIMEOUT: &str = "SQLITE_VECTOR_EMBED_TIMEOUT_SECS";

/// Configuration of an [`HttpEmbedder`]. Build it with [`HttpConfig::new`] and the `with_*`
/// methods (or set the public fields), or read it from the environment with
/// [`HttpConfig::from_env`].
///
/// The `Debug` output never shows the API key.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Base URL of the OpenAI-compatible API, `http://` or `https://`; requests go to
    /// `{base_url}/embeddings`. OpenAI: `https://api.openai.com/v1`; Ollama:
    /// `http://localhost:11434/v1`; vLLM: `http://HOST:8000/v1`.
    pub base_url: String,
    /// The model name sent in each request (`text-embedding-3-small`, `nomic-embed-text`, ...).
    /// It is also the embedder's [`model_id`](Embedder::model_id).
    pub model: String,
    /// API key, sent as `Authorization: Bearer {key}` when set. Ollama and a local vLLM need
    /// none.
    pub api_key: Option<String>,
    /// The dimension of the model's vectors. When `None` it is learned from the first response
    /// and enforced from then on.
    pub dimension: Option<usize>,
    /// Timeout of one request, from connecting to reading the whole response. Default 30 s.
    pub timeout: Duration,
    /// Most texts sent in one request; a larger batch is split into several requests, sent one
    /// after the other. Default 256.
    pub max_request_batch: usize,
    /// Largest response body accepted, in bytes. Default 64 MiB.
    pub max_response_bytes: u64,
    /// Limits of one [`Embedder::embed_batch`] call (default [`Limits::DEFAULT`]).
    pub limits: Limits,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimension", &self.dimension)
            .field("timeout", &self.timeout)
            .field("max_request_batch", &self.max_request_batch)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("limits", &self.limits)
            .finish()
    }
}

impl HttpConfig {
    /// Default request timeout: 30 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default number of texts per request: 256.
    pub const DEFAULT_MAX_REQUEST_BATCH: usize = 256;
    /// Default largest response body: 64 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

    /// A configuration for `model` served at `base_url`, with no API key, the dimension learned
    /// from the first response, and the default timeout, request batch and limits.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> HttpConfig {
        HttpConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            dimension: None,
            timeout: Self::DEFAULT_TIMEOUT,
            max_request_batch: Self::DEFAULT_MAX_REQUEST_BATCH,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            limits: Limits::DEFAULT,
        }
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> HttpConfig {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the expected dimension.
    pub fn with_dimension(mut self, dimension: usize) -> HttpConfig {
        self.dimension = Some(dimension);
        self
    }

    /// Sets the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the most texts per request.
    pub fn with_max_request_batch(mut self, n: usize) -> HttpConfig {
        self.max_request_batch = n;
        self
    }

    /// Sets the limits of one `embed_batch` call.
    pub fn with_limits(mut self, limits: Limits) -> HttpConfig {
        self.limits = limits;
        self
    }

    /// Reads the configuration from the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `SQLITE_VECTOR_EMBED_URL` | base URL, e.g. `http://localhost:11434/v1` (required) |
    /// | `SQLITE_VECTOR_EMBED_MODEL` | model name, e.g. `nomic-embed-text` (required) |
    /// | `SQLITE_VECTOR_EMBED_API_KEY` | API key (optional) |
    /// | `OPENAI_API_KEY` | API key, used only when `SQLITE_VECTOR_EMBED_API_KEY` is unset |
    /// | `SQLITE_VECTOR_EMBED_DIM` | expected dimension (optional; else learned) |
    /// | `SQLITE_VECTOR_EMBED_TIMEOUT_SECS` | request timeout in seconds (optional; default 30) |
    ///
    /// Returns `Ok(None)` when neither the URL nor the model is set (no HTTP embedder is
    /// configured), and [`EmbedError::InvalidConfig`] when only one of them is set or a value is
    /// invalid. Empty values count as unset. Note that `OPENAI_API_KEY` is sent to whatever URL
    /// is configured: set `SQLITE_VECTOR_EMBED_API_KEY` (to any value, for a server that needs
    /// none) to keep it from a local server.
    pub fn from_env() -> Result<Option<HttpConfig>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](HttpConfig::from_env), with the variables looked up by `lookup` (for
    /// tests, or to layer command-line flags over the environment).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<HttpConfig>> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (url, model) = match (get(ENV_URL), get(ENV_MODEL)) {
            (None, None) => return Ok(None),
            (Some(url), Some(model)) => (url, model),
            (Some(_), None) => {
                return Err(EmbedError::InvalidConfig(format!(
                    "{ENV_URL} is set but {ENV_MODEL} is not"
                )))
            }
            (None, Some(_)) => {
                return Err(EmbedError::InvalidConfig(format!(
                    "{ENV_MODEL} is set but {ENV_URL} is not"
                )))
            }
        };
        let mut config = HttpConfig::new(url.trim(), model.trim());
        config.api_key = get(ENV_API_KEY).or_else(|| get(ENV_OPENAI_API_KEY));
        if let Some(dim) = get(ENV_DIM) {
            config.dimension = Some(dim.trim().parse().map_err(|_| {
                EmbedError::InvalidConfig(format!(
                    "{ENV_DIM} is {dim:?}, expected a positive integer"
                ))
            })?);
        }
        if let Some(secs) = get(ENV_TIMEOUT) {
            config.timeout = secs
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    EmbedError::InvalidConfig(format!(
                        "{ENV_TIMEOUT} is {secs:?}, expected a number of seconds"
                    ))
                })?;
        }
        config.validate()?;
        Ok(Some(config))
    }

    /// Checks the values (URL scheme, non-empty model, positive dimension, timeout and request
    /// batch, API key without control characters).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EmbedError::InvalidConfig(m));
        let url = &self.base_url;
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => {}
            _ => {
                return bad(format!(
                    "base url {url:?} must start with http:// or https:// and name a host"
                ))
            }
        }
        if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
            return bad(format!(
                "base url {url:?} must not contain a query, a fragment or spaces"
            ));
        }
        if self.model.trim().is_empty() {
            return bad("model name is empty".into());
        }
        if self.dimension == Some(0) {
            return bad("dimension is 0".into());
        }
        if self.timeout.is_zero() {
            return bad("timeout is 0".into());
        }
        if self.max_request_batch == 0 {
            return bad("max_request_batch is 0".into());
        }
        if self.limits.max_batch == 0 || self.limits.max_text_bytes == 0 {
            return bad(format!("limits must be positive: {:?}", self.limits));
        }
        if let Some(key) = &self.api_key {
            if key.chars().any(char::is_control) {
                return bad("api key contains control characters".into());
            }
        }
        Ok(())
    }
}

/// An embedder that calls an OpenAI-compatible embeddings endpoint: `POST {base_url}/embeddings`
/// with the JSON body `{"model": ..., "input": [texts]}` and, when a key is set,
/// `Authorization: Bearer {key}`. It reads `{"data": [{"embedding": [...], "index": i}, ...]}`,
/// in the order of `index`. Works with OpenAI, Ollama (`http://localhost:11434/v1`) and vLLM.
///
/// Every failure is an error, never a fallback: transport errors ([`EmbedError::Http`]),
/// timeouts ([`EmbedError::Timeout`]), HTTP error statuses ([`EmbedError::Status`]), malformed
/// or inconsistent responses ([`EmbedError::BadResponse`]) and vectors of the wrong length
/// ([`EmbedError::DimensionMismatch`]). Blank texts are refused ([`EmbedError::NoTokens`])
/// before any request is sent. Vectors are returned as the server sends them (not
/// re-normalised); zero and non-finite vectors are refused.
///
/// Requests are blocking and sent one after the other; the embedder is `Send + Sync`, so
/// threads may share it. The HTTP client is `ureq` with rustls and the compiled-in Mozilla root
/// certificates (nothing is downloaded); it honours the usual proxy variables (`HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`). Nothing is retried: a failed request fails the call.
pub struct HttpEmbedder {
    config: HttpConfig,
    endpoint: String,
    agent: ureq::Agent,
    /// The configured or learned dimension (0: not known yet).
    dimension: AtomicUsize,
}

impl fmt::Debug for HttpEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEmbedder")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .field("dimension", &self.dimension.load(Ordering::Relaxed))
            .finish()
    }
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [&'a str],
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl HttpEmbedder {
    /// An embedder for `config` (checked with [`HttpConfig::validate`]). Nothing is sent until
    /// the first embedding call.
    pub fn new(config: HttpConfig) -> Result<HttpEmbedder> {
        config.validate()?;
        let endpoint = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("sqlite-vector-embed/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(HttpEmbedder {
            dimension: AtomicUsize::new(config.dimension.unwrap_or(0)),
            config,
            endpoint,
            agent,
        })
    }

    /// An embedder configured from the environment ([`HttpConfig::from_env`]); `Ok(None)` when
    /// no HTTP embedder is configured there.
    pub fn from_env() -> Result<Option<HttpEmbedder>> {
        HttpConfig::from_env()?.map(HttpEmbedder::new).transpose()
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The URL requests are sent to: `{base_url}/embeddings`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The dimension: the configured or already learned one, else learned now by embedding one
    /// short probe text (one request). Call it before creating a shard for this embedder.
    pub fn detect_dimension(&self) -> Result<usize> {
        match self.dimension.load(Ordering::Acquire) {
            0 => Ok(self.embed("dimension probe")?.len()),
            d => Ok(d),
        }
    }

    fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let url = || self.endpoint.clone();
        let body = serde_json::to_vec(&EmbeddingsRequest {
            model: &self.config.model,
            input: texts,
        })
        .map_err(|e| EmbedError::Http {
            url: url(),
            message: format!("cannot encode the request: {e}"),
        })?;
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let response = request
            .send(&body[..])
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .into_with_config()
            .limit(self.config.max_response_bytes)
            .read_to_vec()
            .map_err(|e| self.transport_error(e))?;
        if !(200..300).contains(&status) {
            return Err(EmbedError::Status {
                url: url(),
                status,
                message: error_message(&bytes),
            });
        }
        let bad = |reason: String| EmbedError::BadResponse { url: url(), reason };
        let parsed: EmbeddingsResponse = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not an embeddings response: {e}")))?;
        if parsed.data.len() != texts.len() {
            return Err(bad(format!(
                "expected {} embeddings, got {}",
                texts.len(),
                parsed.data.len()
            )));
        }

        // Order by `index` (all items carry one), or keep the array order (none does).
        let n = texts.len();
        let mut slots: Vec<Option<Vec<f32>>> = (0..n).map(|_| None).collect();
        let with_index = parsed.data.iter().filter(|d| d.index.is_some()).count();
        if with_index != 0 && with_index != n {
            return Err(bad(format!(
                "{with_index} of {n} embeddings carry an index"
            )));
        }
        for (pos, item) in parsed.data.into_iter().enumerate() {
            let i = item.index.unwrap_or(pos);
            match slots.get_mut(i) {
                None => return Err(bad(format!("index {i} out of range for {n} inputs"))),
                Some(Some(_)) => return Err(bad(format!("index {i} appears twice"))),
                Some(slot) => *slot = Some(item.embedding),
            }
        }
        let vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();

        for (i, v) in vectors.iter().enumerate() {
            if v.is_empty() {
                return Err(bad(format!("embedding {i} is empty")));
            }
            if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                return Err(bad(format!("embedding {i} has a non-finite component {x}")));
            }
            if v.iter().all(|&x| x == 0.0) {
                return Err(bad(format!("embedding {i} is a zero vector")));
            }
            self.check_dimension(v.len())?;
        }
        Ok(vectors)
    }

    /// Enforces the configured or learned dimension; the first vector ever seen sets it.
    fn check_dimension(&self, got: usize) -> Result<()> {
        let expected =
            match self
                .dimension
                .compare_exchange(0, got, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(current) => current,
            };
        if expected == got {
            Ok(())
        } else {
            Err(EmbedError::DimensionMismatch {
                model: self.config.model.clone(),
                expected,
                got,
            })
        }
    }

    fn transport_error(&self, e: ureq::Error) -> EmbedError {
        let timed_out = match &e {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
            _ => false,
        };
        if timed_out {
            EmbedError::Timeout {
                url: self.endpoint.clone(),
                timeout: self.config.timeout,
            }
        } else {
            EmbedError::Http {
                url: self.endpoint.clone(),
                message: e.to_string(),
            }
        }
    }
}

/// The message of an error response: OpenAI's `{"error": {"message": ...}}`, Ollama's and
/// vLLM's `{"error": "..."}` / `{"message": ...}`, else the start of the body.
fn error_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            v.get("error")
                .and_then(|e| e.get("message").and_then(text).or_else(|| text(e)))
                .or_else(|| v.get("message").and_then(text))
                .or_else(|| v.get("detail").and_then(text))
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = text.trim();
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

impl Embedder for HttpEmbedder {
    /// The configured model name.
    fn model_id(&self) -> &str {
        &self.config.model
    }

    /// The configured or learned dimension; 0 until known (see
    /// [`HttpEmbedder::detect_dimension`]).
    fn dimension(&self) -> usize {
        self.dimension.load(Ordering::Acquire)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.config.limits.check(texts)?;
        if let Some(index) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(EmbedError::NoTokens { index });
        }
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.config.max_request_batch) {
            out.extend(self.request(chunk)?);
        }
        Ok(out)
    }

    fn limits(&self) -> Limits {
        self.config.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_extracted() {
        assert_eq!(
            error_message(br#"{"error": {"message": "Incorrect API key provided", "type": "x"}}"#),
            "Incorrect API key provided"
        );
        assert_eq!(
            error_message(br#"{"error": "model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(b"  oops \n"), "oops");
        assert_eq!(error_message(b""), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(error_message(long.as_bytes()).len(), 303);
    }

    #[test]
    fn validation() {
        let ok = HttpConfig::new("http://localhost:11434/v1", "nomic-embed-text");
        assert!(ok.validate().is_ok());
        for url in [
            "localhost:11434",
            "ftp://x",
            "http://",
            "http:///v1",
            "http://a b",
        ] {
            let c = HttpConfig::new(url, "m");
            assert!(
                matches!(c.validate(), Err(EmbedError::InvalidConfig(_))),
                "{url}"
            );
        }
        assert!(HttpConfig::new("http://h", " ").validate().is_err());
        assert!(ok.clone().with_dimension(0).validate().is_err());
        assert!(ok.clone().with_timeout(Duration::ZERO).validate().is_err());
        assert!(ok.clone().with_max_request_batch(0).validate().is_err());
        assert!(ok.clone().with_api_key("a\nb").validate().is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let c = HttpConfig::new("http://h", "m").with_api_key("sk-secret");
        let e = HttpEmbedder::new(c.clone()).unwrap();
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert!(!format!("{e:?}").contains("sk-secret"));
        assert_eq!(e.endpoint(), "http://h/embeddings");
    }
}
