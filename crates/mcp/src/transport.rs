//! The stdio transport: newline-delimited JSON-RPC 2.0, checked before rmcp sees it.
//!
//! rmcp's own stdio transport drops a line that is not JSON without a reply and answers some
//! malformed messages with `-32600` but without their id. This layer reads the lines itself and
//! answers every malformed one with the JSON-RPC 2.0 error code:
//!
//! | line | reply |
//! |---|---|
//! | not JSON (or not UTF-8) | `-32700` Parse error, id `null` |
//! | JSON, but not a JSON-RPC 2.0 message: not an object, a batch (MCP 2025-06-18 dropped them), `jsonrpc` not `"2.0"`, an `id` that is not a string or an integer, a `method` that is not a string, `params` that are not an object or array, neither `method` nor exactly one of `result`/`error` | `-32600` Invalid Request, with the message's id when it is a string or an integer, else `null` |
//! | longer than [`ServerLimits::max_message_bytes`](crate::ServerLimits) | `-32600`, id `null`; the line is skipped, never buffered whole |
//! | a request for an MCP method with params that do not fit it (`tools/call` without `name`) | `-32602` Invalid params, with its id |
//! | a request for a method the server does not have | `-32601` Method not found, with its id (rmcp's answer) |
//! | a notification rmcp cannot read | nothing: notifications get no reply |
//!
//! Everything else goes to rmcp already parsed, through `LineTransport` (an rmcp
//! [`Transport`]). One writer task owns the output: rmcp's messages and the error replies
//! reach it as whole lines over one channel, so they never interleave. At end of input rmcp
//! drains its in-flight responses (for up to 5 s) and the writer flushes them before
//! [`serve_io`] returns.

use std::future::Future;
use std::io;

use rmcp::model::{self as m, ClientJsonRpcMessage, ClientRequest, ConstString, ErrorCode};
use rmcp::service::TxJsonRpcMessage;
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc;

use crate::{Error, SqliteVectorServer};

/// Lines queued for the output (the reader and rmcp wait when it is full).
const OUTPUT_QUEUE: usize = 64;
/// Parsed messages queued for rmcp.
const INPUT_QUEUE: usize = 16;
/// The line buffer is shrunk back to this after a longer message.
const KEPT_LINE_CAPACITY: usize = 64 * 1024;

/// Serves MCP as newline-delimited JSON-RPC on any byte streams (stdio, a socket, in-memory
/// pipes in tests) until `reader` ends, then returns once the responses in flight are written.
/// Malformed messages are answered as the [module docs](self) describe.
///
/// # Errors
/// [`Error::Transport`] when the session fails (a notification before `initialize`, an
/// unwritable output).
pub async fn serve_io<R, W>(server: SqliteVectorServer, reader: R, writer: W) -> Result<(), Error>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    use rmcp::ServiceExt;
    let max_line = server.limits().max_message_bytes;
    let (to_output, output) = mpsc::channel(OUTPUT_QUEUE);
    let (to_rmcp, from_client) = mpsc::channel(INPUT_QUEUE);
    let writer = tokio::spawn(write_lines(writer, output));
    let reader = tokio::spawn(read_lines(
        BufReader::new(reader),
        max_line,
        to_rmcp,
        to_output.clone(),
    ));
    let transport = LineTransport {
        incoming: from_client,
        outgoing: Some(to_output),
    };
    let served = match server.serve(transport).await {
        Ok(running) => running
            .waiting()
            .await
            .map(drop)
            .map_err(|e| Error::Transport(e.to_string())),
        Err(e) => Err(Error::Transport(e.to_string())),
    };
    // rmcp has stopped and dropped its end of the output; at end of input the reader has
    // finished too. Otherwise (a failed handshake) nobody will read what it passes on.
    reader.abort();
    let written = writer
        .await
        .map_err(|e| Error::Transport(format!("output task: {e}")))?;
    served?;
    written.map_err(|e| Error::Transport(format!("writing the output: {e}")))
}

/// rmcp's side of the transport: parsed messages in, serialized lines out.
struct LineTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    /// `None` once rmcp closed the transport.
    outgoing: Option<mpsc::Sender<Vec<u8>>>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the output is closed")
}

impl Transport<RoleServer> for LineTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let outgoing = self.outgoing.clone();
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            outgoing
                .ok_or_else(closed)?
                .send(line)
                .await
                .map_err(|_| closed())
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.outgoing = None;
        self.incoming.close();
        Ok(())
    }
}

/// Writes each line whole, flushing whenever the queue is empty. A client that closed its end
/// is not an error: there is no one left to answer.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut lines: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    let result = async {
        while let Some(line) = lines.recv().await {
            writer.write_all(&line).await?;
            if lines.is_empty() {
                writer.flush().await?;
            }
        }
        writer.flush().await
    }
    .await;
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Reads lines until the end of input, passing valid messages to rmcp and error replies to the
/// output.
async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    max_line: usize,
    to_rmcp: mpsc::Sender<ClientJsonRpcMessage>,
    to_output: mpsc::Sender<Vec<u8>>,
) {
    let mut line = Vec::new();
    loop {
        let inbound = match read_line(&mut reader, max_line, &mut line).await {
            Ok(Line::Complete) => classify(&line),
            Ok(Line::TooLong) => Inbound::Reply(error_reply(
                Value::Null,
                ErrorCode::INVALID_REQUEST,
                format!("Invalid Request: message longer than the limit of {max_line} bytes; it was skipped"),
            )),
            Ok(Line::End) => return,
            Err(e) => {
                eprintln!("sqlite-vector mcp: cannot read the input: {e}");
                return;
            }
        };
        line.shrink_to(KEPT_LINE_CAPACITY);
        let delivered = match inbound {
            Inbound::Message(message) => to_rmcp.send(*message).await.is_ok(),
            Inbound::Reply(reply) => {
                let mut bytes = reply.to_string().into_bytes();
                bytes.push(b'\n');
                to_output.send(bytes).await.is_ok()
            }
            Inbound::Skip => true,
        };
        if !delivered {
            return; // rmcp or the writer stopped
        }
    }
}

/// The outcome of reading one line.
#[derive(Debug, PartialEq)]
enum Line {
    /// A line (without its limit exceeded) is in the buffer, with its `\n` unless it was the
    /// last one.
    Complete,
    /// The line was longer than the limit and has been skipped.
    TooLong,
    /// The input ended.
    End,
}

/// Reads one line of at most `max` bytes (not counting its `\n`) into `line`. A longer line is
/// read past in buffer-sized steps, so memory stays bounded by `max`.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    line: &mut Vec<u8>,
) -> io::Result<Line> {
    line.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    if (&mut *reader).take(limit).read_until(b'\n', line).await? == 0 {
        return Ok(Line::End);
    }
    if line.last() == Some(&b'\n') || line.len() <= max {
        return Ok(Line::Complete);
    }
    line.clear();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                break;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
    Ok(Line::TooLong)
}

/// What to do with one line.
#[derive(Debug)]
enum Inbound {
    /// A valid message, for rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// A JSON-RPC error response to send back.
    Reply(Value),
    /// Nothing: a blank line, or a notification that cannot be read.
    Skip,
}

/// A JSON-RPC 2.0 error response.
fn error_reply(id: Value, code: ErrorCode, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code.0, "message": message}})
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Checks one line and parses it into rmcp's message type, or says which error to answer.
fn classify(line: &[u8]) -> Inbound {
    // RFC 8259 §8.1 lets a parser ignore a leading byte order mark; rmcp does too.
    let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Inbound::Skip;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            let message = format!("Parse error: {e}");
            return Inbound::Reply(error_reply(Value::Null, ErrorCode::PARSE_ERROR, message));
        }
    };
    match envelope(&value) {
        Err((id, why)) => {
            let message = format!("Invalid Request: {why}");
            Inbound::Reply(error_reply(id, ErrorCode::INVALID_REQUEST, message))
        }
        Ok(Kind::Request { id, method }) => request(value, id, &method),
        Ok(kind) => match serde_json::from_value::<ClientJsonRpcMessage>(value) {
            Ok(message) => Inbound::Message(Box::new(message)),
            Err(e) => match kind {
                Kind::Response { id } => Inbound::Reply(error_reply(
                    id,
                    ErrorCode::INVALID_REQUEST,
                    format!("Invalid Request: unreadable response: {e}"),
                )),
                _ => {
                    eprintln!("sqlite-vector mcp: ignoring an unreadable notification: {e}");
                    Inbound::Skip
                }
            },
        },
    }
}

/// The kind of a well-formed JSON-RPC 2.0 message.
#[derive(Debug, PartialEq)]
enum Kind {
    /// A request, with its id (a string or an integer) and method.
    Request { id: Value, method: String },
    /// A notification (a method, no id).
    Notification,
    /// A response or error response, with its id (`null` when the peer had none).
    Response { id: Value },
}

/// Checks the JSON-RPC 2.0 envelope (JSON-RPC 2.0 §4-5; MCP: no batches, no null request
/// ids). The error carries the id to answer with and why the message is invalid.
fn envelope(value: &Value) -> Result<Kind, (Value, String)> {
    let object = match value {
        Value::Object(o) => o,
        Value::Array(a) if a.is_empty() => {
            return Err((Value::Null, "an empty array is not a message".into()))
        }
        Value::Array(_) => {
            return Err((
                Value::Null,
                "batches (JSON arrays) are not supported since MCP 2025-06-18; send one message per line".into(),
            ))
        }
        _ => return Err((Value::Null, "a message must be a JSON object".into())),
    };
    let id = object.get("id");
    let usable_id = id.filter(|v| v.is_string() || v.as_i64().is_some());
    let reply_id = usable_id.cloned().unwrap_or(Value::Null);
    let invalid = |why: &str| Err((reply_id.clone(), why.to_owned()));
    const BAD_ID: &str = r#""id" must be a string or an integer"#;
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(r#""jsonrpc" must be "2.0""#);
    }
    let (result, error) = (object.get("result"), object.get("error"));
    match object.get("method") {
        Some(Value::String(method)) => {
            if result.is_some() || error.is_some() {
                return invalid(r#"a request or notification has no "result" or "error""#);
            }
            if !matches!(
                object.get("params"),
                None | Some(Value::Object(_) | Value::Array(_))
            ) {
                return invalid(r#""params" must be an object or an array"#);
            }
            match (id, usable_id) {
                (None, _) => Ok(Kind::Notification),
                (Some(_), Some(id)) => Ok(Kind::Request {
                    id: id.clone(),
                    method: method.clone(),
                }),
                (Some(_), None) => invalid(BAD_ID),
            }
        }
        Some(_) => invalid(r#""method" must be a string"#),
        None => match (result, error) {
            (Some(_), Some(_)) => invalid(r#"a response has "result" or "error", not both"#),
            (Some(_), None) if usable_id.is_some() => Ok(Kind::Response { id: reply_id }),
            (Some(_), None) => invalid(BAD_ID),
            (None, Some(e)) => {
                let well_formed = e.get("code").and_then(Value::as_i64).is_some()
                    && e.get("message").is_some_and(Value::is_string);
                if !well_formed {
                    invalid(
                        r#""error" must be an object with an integer "code" and a string "message""#,
                    )
                } else if usable_id.is_some() || matches!(id, None | Some(Value::Null)) {
                    Ok(Kind::Response { id: reply_id })
                } else {
                    invalid(BAD_ID)
                }
            }
            (None, None) => invalid(
                r#"no "method" (a request or notification) and no "result" or "error" (a response)"#,
            ),
        },
    }
}

/// Parses the request `value` with rmcp's type for its method. A known method whose params do
/// not fit is answered `-32602` here: rmcp would take it for an unknown method (`-32601`).
fn request(value: Value, id: Value, method: &str) -> Inbound {
    let request_id = match &id {
        Value::String(s) => m::RequestId::String(s.as_str().into()),
        other => m::RequestId::Number(other.as_i64().unwrap_or_default()),
    };
    match KNOWN_REQUESTS.iter().find(|(name, _)| *name == method) {
        Some((_, parse)) => match parse(value) {
            Ok(request) => {
                Inbound::Message(Box::new(ClientJsonRpcMessage::request(request, request_id)))
            }
            Err(e) => Inbound::Reply(error_reply(
                id,
                ErrorCode::INVALID_PARAMS,
                format!("Invalid params for {method}: {e}"),
            )),
        },
        // rmcp reads any other method as a custom request and answers -32601 with the id.
        None => match serde_json::from_value::<ClientJsonRpcMessage>(value) {
            Ok(message) => Inbound::Message(Box::new(message)),
            Err(_) => Inbound::Reply(error_reply(
                id,
                ErrorCode::METHOD_NOT_FOUND,
                format!("Method not found: {method}"),
            )),
        },
    }
}

/// Parses a whole request object (method and params) as rmcp's type `T`.
type ParseRequest = fn(Value) -> Result<ClientRequest, serde_json::Error>;

fn typed<T: DeserializeOwned + Into<ClientRequest>>(
    value: Value,
) -> Result<ClientRequest, serde_json::Error> {
    serde_json::from_value::<T>(value).map(Into::into)
}

/// `(method, parser)` pairs, the method name taken from rmcp's constant for it.
macro_rules! known_requests {
    ($($method:ident => $request:ident),* $(,)?) => {
        &[$((m::$method::VALUE, typed::<m::$request> as ParseRequest)),*]
    };
}

/// Every request method of rmcp's [`ClientRequest`], with its parser. (rmcp deprecates some of
/// them but still serves them to clients of the older protocol versions.)
#[allow(deprecated)]
const KNOWN_REQUESTS: &[(&str, ParseRequest)] = known_requests![
    PingRequestMethod => PingRequest,
    InitializeResultMethod => InitializeRequest,
    DiscoverRequestMethod => DiscoverRequest,
    CompleteRequestMethod => CompleteRequest,
    SetLevelRequestMethod => SetLevelRequest,
    GetPromptRequestMethod => GetPromptRequest,
    ListPromptsRequestMethod => ListPromptsRequest,
    ListResourcesRequestMethod => ListResourcesRequest,
    ListResourceTemplatesRequestMethod => ListResourceTemplatesRequest,
    ReadResourceRequestMethod => ReadResourceRequest,
    SubscriptionsListenRequestMethod => SubscriptionsListenRequest,
    SubscribeRequestMethod => SubscribeRequest,
    UnsubscribeRequestMethod => UnsubscribeRequest,
    CallToolRequestMethod => CallToolRequest,
    ListToolsRequestMethod => ListToolsRequest,
    GetTaskMethod => GetTaskRequest,
    UpdateTaskMethod => UpdateTaskRequest,
    CancelTaskMethod => CancelTaskRequest,
    ListSkillsRequestMethod => ListSkillsRequest,
    GetSkillRequestMethod => GetSkillRequest,
    ReadResourceDirectoryRequestMethod => ReadResourceDirectoryRequest,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The code and id of the reply to `line`, or `None` when it goes to rmcp or is skipped.
    fn reply(line: &str) -> Option<(i32, Value)> {
        match classify(line.as_bytes()) {
            Inbound::Reply(v) => {
                assert_eq!(v["jsonrpc"], "2.0", "{v}");
                assert!(v.as_object().unwrap().contains_key("id"), "{v}");
                assert!(v["error"]["message"].is_string(), "{v}");
                Some((v["error"]["code"].as_i64().unwrap() as i32, v["id"].clone()))
            }
            _ => None,
        }
    }

    #[test]
    fn malformed_lines_get_their_codes_and_ids() {
        let (parse, invalid, unknown, params) = (-32700, -32600, -32601, -32602);
        // (line, code, id of the reply as JSON)
        #[rustfmt::skip]
        let cases: &[(&str, i32, &str)] = &[
            ("garbage", parse, "null"),
            ("{", parse, "null"),
            ("\u{FEFF}{\"jsonrpc\":", parse, "null"),
            ("[]", invalid, "null"),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, invalid, "null"),
            ("7", invalid, "null"),
            (r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#, invalid, "3"),
            (r#"{"id":"a","method":"ping"}"#, invalid, r#""a""#),
            (r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#, invalid, "null"),
            (r#"{"jsonrpc":"2.0","id":false,"method":"ping"}"#, invalid, "null"),
            (r#"{"jsonrpc":"2.0","id":2.5,"method":"ping"}"#, invalid, "null"),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, invalid, "null"),
            (r#"{"jsonrpc":"2.0","id":-4}"#, invalid, "-4"),
            (r#"{"jsonrpc":"2.0","id":5,"method":["ping"]}"#, invalid, "5"),
            (r#"{"jsonrpc":"2.0","method":5}"#, invalid, "null"),
            (r#"{"jsonrpc":"2.0","id":6,"method":"ping","params":1}"#, invalid, "6"),
            (r#"{"jsonrpc":"2.0","id":7,"method":"ping","result":{}}"#, invalid, "7"),
            (r#"{"jsonrpc":"2.0","id":8,"result":{},"error":{"code":1,"message":"x"}}"#, invalid, "8"),
            (r#"{"jsonrpc":"2.0","id":9,"error":{"code":"x","message":"y"}}"#, invalid, "9"),
            (r#"{"jsonrpc":"2.0","result":{}}"#, invalid, "null"),
            (r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{}}"#, params, r#""c""#),
            (r#"{"jsonrpc":"2.0","id":"d","method":"tools/call"}"#, params, r#""d""#),
            (r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":5}}"#, params, "10"),
            (r#"{"jsonrpc":"2.0","id":11,"method":"initialize","params":{}}"#, params, "11"),
            // rmcp cannot read params that are not an object, even for a custom request.
            (r#"{"jsonrpc":"2.0","id":12,"method":"no/such","params":[1]}"#, unknown, "12"),
        ];
        for (line, code, id) in cases {
            let id: Value = serde_json::from_str(id).unwrap();
            assert_eq!(reply(line), Some((*code, id)), "{line}");
        }
    }

    #[test]
    fn valid_lines_go_to_rmcp_unanswered() {
        let requests = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"shard_list","arguments":{}}}"#,
            "\u{FEFF}{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\r\n",
            // Unknown methods are rmcp's to answer (-32601 with the id).
            r#"{"jsonrpc":"2.0","id":3,"method":"no/such/method","params":{"a":1}}"#,
        ];
        for line in requests {
            match classify(line.as_bytes()) {
                Inbound::Message(m) => assert!(matches!(*m, ClientJsonRpcMessage::Request(_))),
                other => panic!("{line}: {other:?}"),
            }
        }
        let called = classify(requests[1].as_bytes());
        let Inbound::Message(m) = called else {
            panic!()
        };
        let ClientJsonRpcMessage::Request(r) = *m else {
            panic!()
        };
        assert_eq!(r.id, m::RequestId::String("s".into()));
        assert!(matches!(r.request, ClientRequest::CallToolRequest(_)));
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"no"}}"#,
        ] {
            assert!(
                matches!(classify(line.as_bytes()), Inbound::Message(_)),
                "{line}"
            );
        }
        for line in ["", "  \t\r\n"] {
            assert!(
                matches!(classify(line.as_bytes()), Inbound::Skip),
                "{line:?}"
            );
        }
    }

    #[test]
    fn known_request_table_matches_rmcp_types() {
        for (name, parse) in KNOWN_REQUESTS {
            // With the right method the type may still want params, never another method.
            if let Err(e) = parse(json!({"method": name})) {
                assert!(!e.to_string().contains("const string"), "{name}: {e}");
            }
            let e = parse(json!({"method": "other/method"})).unwrap_err();
            assert!(e.to_string().contains("const string"), "{name}: {e}");
        }
    }

    #[tokio::test]
    async fn long_lines_are_skipped_with_bounded_memory() {
        let input = format!("{}\nshort\n{}", "x".repeat(100), "y".repeat(11));
        let mut reader = BufReader::with_capacity(8, input.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, 10, &mut line).await.unwrap(),
            Line::TooLong
        );
        assert!(line.capacity() <= 64, "{}", line.capacity());
        assert_eq!(
            read_line(&mut reader, 10, &mut line).await.unwrap(),
            Line::Complete
        );
        assert_eq!(line, b"short\n");
        assert_eq!(
            read_line(&mut reader, 10, &mut line).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line(&mut reader, 10, &mut line).await.unwrap(),
            Line::End
        );
        // Exactly the limit, with and without the final newline.
        let mut reader = BufReader::new("0123456789\n0123456789".as_bytes());
        for _ in 0..2 {
            assert_eq!(
                read_line(&mut reader, 10, &mut line).await.unwrap(),
                Line::Complete
            );
            assert_eq!(&line[..10], b"0123456789");
        }
    }

    /// A whole session over in-memory pipes: errors and rmcp's replies arrive as whole lines,
    /// and the end of input flushes the in-flight responses before `serve` returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn session_over_pipes_answers_everything_then_ends() {
        use sqlite_vector::{ManagerOptions, ShardManager};
        use sqlite_vector_embed::StaticEmbedder;
        let dir = tempfile::tempdir().unwrap();
        let manager = ShardManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let embedder = std::sync::Arc::new(StaticEmbedder::builtin().unwrap());
        let server = SqliteVectorServer::new(manager, embedder, crate::ServerLimits::default());
        let (client_out, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, client_in) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(serve_io(server, server_in, server_out));
        let mut input = String::new();
        input.push_str(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}})
            .to_string(),
        );
        input.push_str("\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
        for i in 2..40 {
            input.push_str(&format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"shard_list\",\"arguments\":{{}}}}}}\nnot json {i}\n"
            ));
        }
        let mut client_out = client_out;
        client_out.write_all(input.as_bytes()).await.unwrap();
        drop(client_out); // end of input, with requests still in flight
        let mut output = String::new();
        BufReader::new(client_in)
            .read_to_string(&mut output)
            .await
            .unwrap();
        serving.await.unwrap().unwrap();
        let replies: Vec<Value> = output
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let parse_errors = replies
            .iter()
            .filter(|r| r["error"]["code"] == -32700 && r["id"].is_null())
            .count();
        assert_eq!(parse_errors, 38);
        for i in 1..40 {
            let r = replies
                .iter()
                .find(|r| r["id"] == i)
                .unwrap_or_else(|| panic!("no reply {i}"));
            assert!(r["result"].is_object(), "{r}");
        }
        assert_eq!(replies.len(), 39 + 38);
    }
}
