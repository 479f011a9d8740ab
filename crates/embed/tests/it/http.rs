//! The OpenAI-compatible HTTP embedder against a real HTTP/1.1 server on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlite_vector_embed::{EmbedError, Embedder, HttpConfig, HttpEmbedder, Limits};

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
    fn inputs(&self) -> Vec<String> {
        self.json()["input"]
            .as_array()
            .expect("input is an array")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }
}

/// What the server does with a request.
enum Reply {
    /// Answer with this status and body.
    Send(u16, String),
    /// Never answer (until the server stops).
    Hang,
}

/// A minimal HTTP/1.1 server on 127.0.0.1: one connection at a time, `Connection: close`. It
/// stops when dropped, and by itself after 60 s at the latest.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(handler: impl Fn(&Request) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                requests2.lock().unwrap().push(request.clone());
                match handler(&request) {
                    Reply::Send(status, body) => write_response(stream, status, &body),
                    Reply::Hang => {
                        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        drop(stream);
                    }
                }
            }
        });
        Server {
            addr,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    assert_eq!(parts.next(), Some("HTTP/1.1"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').expect("a header line");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn write_response(mut stream: TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        500 => "Internal Server Error",
        _ => "Whatever",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// A deterministic fake embedding of `text` with `dim` components.
fn fake_vector(text: &str, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|j| (text.len() + j) as f32 / 10.0 + 0.5)
        .collect()
}

/// An OpenAI-style answer for the request's inputs, items in reverse order (with `index`).
fn openai_answer(request: &Request, dim: usize) -> String {
    let inputs = request.inputs();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": fake_vector(t, dim)}))
        .collect();
    json!({"object": "list", "data": data, "model": request.json()["model"],
           "usage": {"prompt_tokens": 1, "total_tokens": 1}})
    .to_string()
}

fn embedder(server: &Server) -> HttpEmbedder {
    HttpEmbedder::new(HttpConfig::new(server.base_url(), "test-model")).unwrap()
}

#[test]
fn posts_openai_requests_and_orders_by_index() {
    let server = Server::start(|r| Reply::Send(200, openai_answer(r, 3)));
    let e = HttpEmbedder::new(
        HttpConfig::new(format!("{}/", server.base_url()), "text-embedding-3-small")
            .with_api_key("sk-test-123"),
    )
    .unwrap();
    assert_eq!(e.model_id(), "text-embedding-3-small");
    assert_eq!(e.dimension(), 0, "not known before the first response");
    let texts = ["first text", "second", "a third, longer text"];
    let vectors = e.embed_batch(&texts).unwrap();
    assert_eq!(vectors.len(), 3);
    for (t, v) in texts.iter().zip(&vectors) {
        assert_eq!(v, &fake_vector(t, 3));
    }
    assert_eq!(e.dimension(), 3, "learned from the response");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/embeddings");
    assert_eq!(r.header("authorization"), Some("Bearer sk-test-123"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"model": "text-embedding-3-small", "input": texts})
    );
}

#[test]
fn sends_no_authorization_without_a_key_and_accepts_missing_indexes() {
    // Some servers leave out `index`: then the array order is the input order.
    let server = Server::start(|r| {
        let data: Vec<Value> = r
            .inputs()
            .iter()
            .map(|t| json!({"embedding": fake_vector(t, 4)}))
            .collect();
        Reply::Send(200, json!({"data": data}).to_string())
    });
    let e = embedder(&server);
    let v = e.embed("hello").unwrap();
    assert_eq!(v, fake_vector("hello", 4));
    assert_eq!(server.requests()[0].header("authorization"), None);
    assert_eq!(e.detect_dimension().unwrap(), 4);
    assert_eq!(
        server.requests().len(),
        1,
        "the dimension was already known"
    );
}

#[test]
fn detect_dimension_sends_one_probe() {
    let server = Server::start(|r| Reply::Send(200, openai_answer(r, 7)));
    let e = embedder(&server);
    assert_eq!(e.detect_dimension().unwrap(), 7);
    assert_eq!(e.dimension(), 7);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn splits_large_batches() {
    let server = Server::start(|r| Reply::Send(200, openai_answer(r, 2)));
    let e = HttpEmbedder::new(HttpConfig::new(server.base_url(), "m").with_max_request_batch(256))
        .unwrap();
    let owned: Vec<String> = (0..600).map(|i| format!("text number {i}")).collect();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let vectors = e.embed_batch(&texts).unwrap();
    assert_eq!(vectors.len(), 600);
    for (t, v) in texts.iter().zip(&vectors) {
        assert_eq!(v, &fake_vector(t, 2));
    }
    let sizes: Vec<usize> = server.requests().iter().map(|r| r.inputs().len()).collect();
    assert_eq!(sizes, [256, 256, 88]);
    let sent: Vec<String> = server.requests().iter().flat_map(|r| r.inputs()).collect();
    assert_eq!(sent, owned);
}

#[test]
fn http_error_statuses_are_errors() {
    let server = Server::start(|r| {
        if r.header("authorization").is_some() {
            Reply::Send(
                401,
                json!({"error": {"message": "Incorrect API key provided: sk-bad", "type": "invalid_request_error"}}).to_string(),
            )
        } else {
            Reply::Send(500, "upstream model crashed".into())
        }
    });
    let err = embedder(&server).embed("hello").unwrap_err();
    match &err {
        EmbedError::Status {
            status: 500,
            message,
            url,
        } => {
            assert_eq!(message, "upstream model crashed");
            assert!(url.ends_with("/v1/embeddings"));
        }
        other => panic!("expected a 500 status error, got {other}"),
    }
    assert!(!err.is_user_error());
    assert!(err.to_string().contains("http 500"), "{err}");

    let keyed =
        HttpEmbedder::new(HttpConfig::new(server.base_url(), "m").with_api_key("sk-bad")).unwrap();
    let err = keyed.embed("hello").unwrap_err();
    assert!(
        matches!(&err, EmbedError::Status { status: 401, message, .. } if message.starts_with("Incorrect API key")),
        "{err}"
    );
}

#[test]
fn malformed_responses_are_errors() {
    type Answer = fn(&Request) -> String;
    let cases: [(Answer, &str); 8] = [
        (|_| "{\"data\": [".into(), "not an embeddings response"),
        (
            |_| "<html>hello</html>".into(),
            "not an embeddings response",
        ),
        (
            |_| json!({"result": []}).to_string(),
            "not an embeddings response",
        ),
        (
            |_| json!({"data": [{"embedding": "AAAA", "index": 0}]}).to_string(),
            "not an embeddings response",
        ),
        (
            |_| {
                json!({"data": [{"embedding": [1.0], "index": 0}, {"embedding": [1.0], "index": 1}]}).to_string()
            },
            "expected 1 embeddings, got 2",
        ),
        (
            |_| json!({"data": [{"embedding": [1.0], "index": 3}]}).to_string(),
            "index 3 out of range",
        ),
        (
            |_| json!({"data": [{"embedding": [0.0, 0.0], "index": 0}]}).to_string(),
            "zero vector",
        ),
        (
            |_| json!({"data": [{"embedding": [], "index": 0}]}).to_string(),
            "is empty",
        ),
    ];
    for (answer, needle) in cases {
        let server = Server::start(move |r| Reply::Send(200, answer(r)));
        let err = embedder(&server).embed("hello").unwrap_err();
        assert!(
            matches!(&err, EmbedError::BadResponse { reason, .. } if reason.contains(needle)),
            "expected {needle:?}, got {err}"
        );
        assert!(!err.is_user_error());
    }
}

#[test]
fn wrong_number_of_embeddings_is_an_error() {
    // Two texts in, one embedding out.
    let server = Server::start(|r| {
        let data = json!([{"embedding": fake_vector(&r.inputs()[0], 3), "index": 0}]);
        Reply::Send(200, json!({"data": data}).to_string())
    });
    let err = embedder(&server).embed_batch(&["a", "b"]).unwrap_err();
    assert!(
        matches!(&err, EmbedError::BadResponse { reason, .. } if reason == "expected 2 embeddings, got 1"),
        "{err}"
    );
    // Duplicate indexes.
    let server = Server::start(|_| {
        Reply::Send(
            200,
            json!({"data": [{"embedding": [1.0], "index": 0}, {"embedding": [1.0], "index": 0}]})
                .to_string(),
        )
    });
    let err = embedder(&server).embed_batch(&["a", "b"]).unwrap_err();
    assert!(err.to_string().contains("index 0 appears twice"), "{err}");
}

#[test]
fn wrong_dimensions_are_errors() {
    // Configured 4, the server gives 3.
    let server = Server::start(|r| Reply::Send(200, openai_answer(r, 3)));
    let e = HttpEmbedder::new(HttpConfig::new(server.base_url(), "m").with_dimension(4)).unwrap();
    assert_eq!(e.dimension(), 4);
    let err = e.embed("hello").unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::DimensionMismatch {
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("should give 4-d vectors, the server returned 3-d"),
        "{err}"
    );

    // Learned 3 from the first response, then the server changes to 5.
    let calls = Arc::new(Mutex::new(0));
    let calls2 = calls.clone();
    let server = Server::start(move |r| {
        let mut n = calls2.lock().unwrap();
        *n += 1;
        Reply::Send(200, openai_answer(r, if *n == 1 { 3 } else { 5 }))
    });
    let e = embedder(&server);
    assert_eq!(e.embed("first").unwrap().len(), 3);
    let err = e.embed("second").unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::DimensionMismatch {
                expected: 3,
                got: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(e.dimension(), 3);

    // Vectors of different lengths in one response.
    let server = Server::start(|_| {
        Reply::Send(
            200,
            json!({"data": [{"embedding": [1.0, 2.0], "index": 0}, {"embedding": [1.0], "index": 1}]})
                .to_string(),
        )
    });
    let err = embedder(&server).embed_batch(&["a", "b"]).unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::DimensionMismatch {
                expected: 2,
                got: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn connection_refused_is_an_http_error() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: nothing listens there now
    let e = HttpEmbedder::new(
        HttpConfig::new(format!("http://{addr}/v1"), "m").with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let start = Instant::now();
    let err = e.embed("hello").unwrap_err();
    assert!(matches!(err, EmbedError::Http { .. }), "{err}");
    assert!(!err.is_user_error());
    assert!(start.elapsed() < Duration::from_secs(5));
    eprintln!("connection refused: {err}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = Server::start(|_| Reply::Hang);
    let timeout = Duration::from_millis(300);
    let e =
        HttpEmbedder::new(HttpConfig::new(server.base_url(), "m").with_timeout(timeout)).unwrap();
    let start = Instant::now();
    let err = e.embed("hello").unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&err, EmbedError::Timeout { timeout: t, .. } if *t == timeout),
        "{err}"
    );
    assert!(took >= timeout && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "embedding request to {}/embeddings timed out after 300ms",
            server.base_url()
        )
    );
}

#[test]
fn user_errors_send_nothing() {
    let server = Server::start(|r| Reply::Send(200, openai_answer(r, 3)));
    let e = HttpEmbedder::new(HttpConfig::new(server.base_url(), "m").with_limits(Limits {
        max_text_bytes: 20,
        max_batch: 3,
    }))
    .unwrap();
    assert!(matches!(
        e.embed_batch(&["ok", "  \n\t"]),
        Err(EmbedError::NoTokens { index: 1 })
    ));
    assert!(matches!(
        e.embed(""),
        Err(EmbedError::NoTokens { index: 0 })
    ));
    assert!(matches!(
        e.embed("a text longer than twenty bytes"),
        Err(EmbedError::TextTooLong {
            index: 0,
            bytes: 31,
            max: 20
        })
    ));
    assert!(matches!(
        e.embed_batch(&["a", "b", "c", "d"]),
        Err(EmbedError::BatchTooLarge { len: 4, max: 3 })
    ));
    assert!(e.embed_batch(&[]).unwrap().is_empty());
    assert!(server.requests().is_empty());
}

#[test]
fn config_from_environment_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    // Nothing set: no HTTP embedder configured.
    assert!(HttpConfig::from_vars(vars(&[])).unwrap().is_none());
    assert!(
        HttpConfig::from_vars(vars(&[("SQLITE_VECTOR_EMBED_URL", " ")]))
            .unwrap()
            .is_none()
    );

    let c = HttpConfig::from_vars(vars(&[
        ("SQLITE_VECTOR_EMBED_URL", "http://localhost:11434/v1"),
        ("SQLITE_VECTOR_EMBED_MODEL", "nomic-embed-text"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(c.base_url, "http://localhost:11434/v1");
    assert_eq!(c.model, "nomic-embed-text");
    assert_eq!(c.api_key, None);
    assert_eq!(c.dimension, None);
    assert_eq!(c.timeout, HttpConfig::DEFAULT_TIMEOUT);
    assert_eq!(c.max_request_batch, 256);

    // OPENAI_API_KEY is used when the specific key is unset ...
    let c = HttpConfig::from_vars(vars(&[
        ("SQLITE_VECTOR_EMBED_URL", "https://api.openai.com/v1"),
        ("SQLITE_VECTOR_EMBED_MODEL", "text-embedding-3-small"),
        ("OPENAI_API_KEY", "sk-openai"),
        ("SQLITE_VECTOR_EMBED_DIM", "1536"),
        ("SQLITE_VECTOR_EMBED_TIMEOUT_SECS", "2.5"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(c.api_key.as_deref(), Some("sk-openai"));
    assert_eq!(c.dimension, Some(1536));
    assert_eq!(c.timeout, Duration::from_millis(2500));
    // ... and the specific one wins.
    let c = HttpConfig::from_vars(vars(&[
        ("SQLITE_VECTOR_EMBED_URL", "http://vllm:8000/v1"),
        ("SQLITE_VECTOR_EMBED_MODEL", "BAAI/bge-small-en-v1.5"),
        ("OPENAI_API_KEY", "sk-openai"),
        ("SQLITE_VECTOR_EMBED_API_KEY", "sk-specific"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(c.api_key.as_deref(), Some("sk-specific"));

    for (pairs, needle) in [
        (
            &[("SQLITE_VECTOR_EMBED_URL", "http://h/v1")][..],
            "SQLITE_VECTOR_EMBED_MODEL is not",
        ),
        (
            &[("SQLITE_VECTOR_EMBED_MODEL", "m")][..],
            "SQLITE_VECTOR_EMBED_URL is not",
        ),
        (
            &[
                ("SQLITE_VECTOR_EMBED_URL", "localhost:11434"),
                ("SQLITE_VECTOR_EMBED_MODEL", "m"),
            ][..],
            "http://",
        ),
        (
            &[
                ("SQLITE_VECTOR_EMBED_URL", "http://h/v1"),
                ("SQLITE_VECTOR_EMBED_MODEL", "m"),
                ("SQLITE_VECTOR_EMBED_DIM", "many"),
            ][..],
            "SQLITE_VECTOR_EMBED_DIM",
        ),
        (
            &[
                ("SQLITE_VECTOR_EMBED_URL", "http://h/v1"),
                ("SQLITE_VECTOR_EMBED_MODEL", "m"),
                ("SQLITE_VECTOR_EMBED_TIMEOUT_SECS", "-1"),
            ][..],
            "SQLITE_VECTOR_EMBED_TIMEOUT_SECS",
        ),
    ] {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let err =
            HttpConfig::from_vars(|n| owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
                .unwrap_err();
        assert!(matches!(err, EmbedError::InvalidConfig(_)), "{err}");
        assert!(err.is_user_error());
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

#[test]
fn is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HttpEmbedder>();
}
