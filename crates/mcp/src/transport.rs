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
//! | valid JSON this server cannot hold: a number beyond `f64` (`1e400`), nesting deeper than 128 | `-32602` Invalid params when that is in `params`, else `-32600`, with the message's id; a notification gets no reply |
//! | a request whose id is already in flight on this connection | `-32600`, with the id; the request is not run |
//! | longer than [`ServerLimits::max_message_bytes`](crate::ServerLimits) | `-32600`, id `null`; the line is skipped, never buffered whole |
//! | a request for an MCP method with params that do not fit it (`tools/call` without `name`) | `-32602` Invalid params, with its id |
//! | a request for a method the server does not have | `-32601` Method not found, with its id (rmcp's answer) |
//! | a notification rmcp cannot read | nothing: notifications get no reply |
//! | a notification or response before the session starts | nothing (logged on stderr) |
//!
//! **Ids.** A request id is a string or an integer of any size: the reply carries it exactly as
//! sent (`18446744073709551615` and `100000000000000000000` included). rmcp sees an id of the
//! transport's own for each request, so an id it cannot hold (beyond `i64`) or a client reusing
//! an id still in flight cannot mix replies up; the transport puts the client's id back on the
//! way out, and maps the `requestId` of `notifications/cancelled` the same way.
//!
//! **Lifecycle.** rmcp ends the session when the first message it reads is not a request. The
//! session starts with `initialize`, or (MCP 2026-07-28, no handshake) with a request carrying
//! the protocol version and client capabilities in `_meta`; until then this layer drops
//! notifications and responses (MCP: a peer must not send them before initialization, and
//! there is nothing yet for them to refer to) and passes requests (`ping` is answered; other
//! requests get rmcp's error). A message never ends the session: only the end of input does.
//!
//! **Order.** Each `tools/call` takes a ticket as its line is read, naming the shards it
//! touches and whether it writes; the handler waits until every earlier call that touches one
//! of those shards, where either call writes, has finished. So calls on one shard apply in
//! arrival order, reads of it run side by side, and other shards are not held up.
//!
//! Everything else goes to rmcp already parsed, through `LineTransport` (an rmcp
//! [`Transport`]). One writer task owns the output: rmcp's messages and the error replies
//! reach it as whole lines over one channel, so they never interleave. At end of input rmcp
//! drains its in-flight responses (for up to 5 s) and the writer flushes them before
//! [`serve_io`] returns.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::model::{
    self as m, ClientJsonRpcMessage, ClientRequest, ConstString, ErrorCode, GetMeta,
    ProtocolVersion, ServerJsonRpcMessage,
};
use rmcp::service::{ServerInitializeError, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc;

use crate::order::Sequencer;
use crate::{tools, Error, SqliteVectorServer};

/// Lines queued for the output (the reader and rmcp wait when it is full).
const OUTPUT_QUEUE: usize = 64;
/// Parsed messages queued for rmcp.
const INPUT_QUEUE: usize = 16;
/// The line buffer is shrunk back to this after a longer message.
const KEPT_LINE_CAPACITY: usize = 64 * 1024;

/// Serves MCP as newline-delimited JSON-RPC on any byte streams (stdio, a socket, in-memory
/// pipes in tests) until `reader` ends, then returns once the responses in flight are written.
/// Malformed messages are answered as the [module docs](self) describe; no message ends the
/// session.
///
/// # Errors
/// [`Error::Transport`] when the session fails (an unwritable output, a failed `initialize`).
pub async fn serve_io<R, W>(server: SqliteVectorServer, reader: R, writer: W) -> Result<(), Error>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    use rmcp::ServiceExt;
    let max_line = server.limits().max_message_bytes;
    let (to_output, output) = mpsc::channel(OUTPUT_QUEUE);
    let (to_rmcp, from_client) = mpsc::channel(INPUT_QUEUE);
    let ids = Arc::new(Ids::default());
    let inbound = Inbound::new(&server, ids.clone());
    let writer = tokio::spawn(write_lines(writer, output));
    let reader = tokio::spawn(read_lines(
        BufReader::new(reader),
        max_line,
        inbound,
        to_rmcp,
        to_output.clone(),
    ));
    let transport = LineTransport {
        incoming: from_client,
        outgoing: Some(to_output),
        ids,
    };
    let served = match server.serve(transport).await {
        Ok(running) => running
            .waiting()
            .await
            .map(drop)
            .map_err(|e| Error::Transport(e.to_string())),
        // The input ended before a session started: nothing was left unanswered.
        Err(ServerInitializeError::ConnectionClosed(_)) => Ok(()),
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

/// A client's request id as canonical JSON text: a string (re-encoded) or an integer (its
/// digits, exact at any size).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientId(String);

impl ClientId {
    /// The id in `value` when it is a string or an integer; `raw` gives the id's JSON text for
    /// numbers `Value` holds only as `f64` (integers beyond `u64`).
    fn from_value(value: &Value, raw: impl FnOnce() -> Option<String>) -> Option<ClientId> {
        match value {
            Value::String(_) => Some(ClientId(value.to_string())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(ClientId(n.to_string())),
            Value::Number(_) => raw().as_deref().and_then(ClientId::from_raw),
            _ => None,
        }
    }

    /// The id written as `raw` JSON text, when it is a string or an integer.
    fn from_raw(raw: &str) -> Option<ClientId> {
        let raw = raw.trim();
        if raw.starts_with('"') {
            let s: String = serde_json::from_str(raw).ok()?;
            return Some(ClientId(Value::String(s).to_string()));
        }
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        integer.then(|| ClientId(raw.to_owned()))
    }

    fn raw(&self) -> Box<RawValue> {
        RawValue::from_string(self.0.clone()).expect("a client id is valid JSON")
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The JSON text of member `key` of the object on `line`, read without building values (so
/// any number and any depth are fine).
fn raw_member(line: &str, key: &str) -> Option<String> {
    let members: HashMap<String, &RawValue> = serde_json::from_str(line).ok()?;
    members.get(key).map(|raw| raw.get().to_owned())
}

/// The client requests in flight, by the id rmcp sees (the transport's own) and by the
/// client's id.
#[derive(Default)]
struct Ids {
    state: Mutex<IdState>,
}

#[derive(Default)]
struct IdState {
    next: i64,
    by_client: HashMap<ClientId, i64>,
    by_ours: HashMap<i64, ClientId>,
}

impl Ids {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a request; `None` when its id is already in flight.
    fn begin(&self, client: &ClientId) -> Option<i64> {
        let mut s = self.lock();
        if s.by_client.contains_key(client) {
            return None;
        }
        s.next += 1;
        let ours = s.next;
        s.by_client.insert(client.clone(), ours);
        s.by_ours.insert(ours, client.clone());
        Some(ours)
    }

    /// Ends the request rmcp knows as `ours`, giving back the client's id.
    fn finish(&self, ours: i64) -> Option<ClientId> {
        let mut s = self.lock();
        let client = s.by_ours.remove(&ours)?;
        s.by_client.remove(&client);
        Some(client)
    }

    /// Ends a request the client cancelled (rmcp sends no reply to it), giving rmcp's id.
    fn cancel(&self, client: &ClientId) -> Option<i64> {
        let mut s = self.lock();
        let ours = s.by_client.remove(client)?;
        s.by_ours.remove(&ours);
        Some(ours)
    }

    /// Serializes a message of rmcp's as one line, with the client's id put back on replies.
    /// `None` for a reply to a request the client cancelled (it expects none).
    fn encode(&self, item: &ServerJsonRpcMessage) -> io::Result<Option<Vec<u8>>> {
        let ours = match item {
            m::JsonRpcMessage::Response(r) => Some(&r.id),
            m::JsonRpcMessage::Error(e) => e.id.as_ref(),
            _ => None,
        };
        let client = match ours {
            None => None,
            Some(m::RequestId::Number(n)) => match self.finish(*n) {
                Some(client) => Some(client),
                None => return Ok(None),
            },
            Some(other) => {
                eprintln!("sqlite-vector mcp: dropping a reply to unknown request {other}");
                return Ok(None);
            }
        };
        let mut line = match client {
            None => serde_json::to_vec(item)?,
            Some(client) => {
                let Value::Object(mut rest) = serde_json::to_value(item)? else {
                    return Err(io::Error::other("a JSON-RPC reply is not an object"));
                };
                rest.remove("id");
                rest.remove("jsonrpc");
                serde_json::to_vec(&WithId {
                    jsonrpc: "2.0",
                    id: Some(&client.raw()),
                    rest: &rest,
                })?
            }
        };
        line.push(b'\n');
        Ok(Some(line))
    }
}

/// A JSON-RPC message with an id written as raw JSON text.
#[derive(Serialize)]
struct WithId<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RawValue>,
    #[serde(flatten)]
    rest: &'a Map<String, Value>,
}

/// rmcp's side of the transport: parsed messages in, serialized lines out.
struct LineTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    /// `None` once rmcp closed the transport.
    outgoing: Option<mpsc::Sender<Vec<u8>>>,
    ids: Arc<Ids>,
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
        let line = self.ids.encode(&item);
        async move {
            let Some(line) = line? else { return Ok(()) };
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
    mut inbound: Inbound,
    to_rmcp: mpsc::Sender<ClientJsonRpcMessage>,
    to_output: mpsc::Sender<Vec<u8>>,
) {
    let mut line = Vec::new();
    loop {
        let action = match read_line(&mut reader, max_line, &mut line).await {
            Ok(Line::Complete) => inbound.classify(&line),
            Ok(Line::TooLong) => Action::Reply(error_line(
                None,
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
        let delivered = match action {
            Action::Message(message) => to_rmcp.send(*message).await.is_ok(),
            Action::Reply(mut bytes) => {
                bytes.push(b'\n');
                to_output.send(bytes).await.is_ok()
            }
            Action::Skip => true,
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
enum Action {
    /// A valid message, for rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// A JSON-RPC error response to send back (one line, without its newline).
    Reply(Vec<u8>),
    /// Nothing: a blank line, a notification that cannot be read, or a message that comes
    /// before the session starts and needs no answer.
    Skip,
}

/// A JSON-RPC 2.0 error response, as one line without its newline.
fn error_line(id: Option<&ClientId>, code: ErrorCode, message: String) -> Vec<u8> {
    let raw = id.map(ClientId::raw);
    let error = json!({"code": code.0, "message": message});
    let rest = Map::from_iter([("error".to_owned(), error)]);
    serde_json::to_vec(&WithId {
        jsonrpc: "2.0",
        id: raw.as_deref(),
        rest: &rest,
    })
    .expect("an error reply serializes")
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The reader's view of the session: what it has passed to rmcp, and the order of tool calls.
struct Inbound {
    ids: Arc<Ids>,
    sequencer: Sequencer,
    /// The protocol versions the server serves (rmcp starts a session without `initialize`
    /// only for one of these).
    versions: Vec<ProtocolVersion>,
    /// Whether rmcp has started the session (its first `initialize`, or a first stateless
    /// request it accepts).
    started: bool,
}

impl Inbound {
    fn new(server: &SqliteVectorServer, ids: Arc<Ids>) -> Inbound {
        Inbound {
            versions: ServerHandler::supported_protocol_versions(server).into_owned(),
            ids,
            sequencer: Sequencer::default(),
            started: false,
        }
    }

    /// Checks one line and parses it into rmcp's message type, or says which error to answer.
    fn classify(&mut self, line: &[u8]) -> Action {
        // RFC 8259 §8.1 lets a parser ignore a leading byte order mark; rmcp does too.
        let line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Action::Skip;
        }
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                let message = format!("Parse error: the line is not UTF-8: {e}");
                return Action::Reply(error_line(None, ErrorCode::PARSE_ERROR, message));
            }
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return unreadable(text, &e),
        };
        let id = match value.get("id") {
            None => Id::Absent,
            Some(Value::Null) => Id::Null,
            Some(id) => match ClientId::from_value(id, || raw_member(text, "id")) {
                Some(id) => Id::Usable(id),
                None => Id::Unusable,
            },
        };
        match envelope(&value, id) {
            Err((id, why)) => {
                let message = format!("Invalid Request: {why}");
                Action::Reply(error_line(id.as_ref(), ErrorCode::INVALID_REQUEST, message))
            }
            Ok(Kind::Request { id, method }) => self.request(value, id, &method),
            Ok(Kind::Notification { method }) => self.notification(value, &method),
            Ok(Kind::Response { id }) => self.response(value, id),
        }
    }

    /// A request: registered under an id of the transport's own (refused when its id is in
    /// flight), given its ticket when it is a tool call, and parsed with rmcp's type for its
    /// method. A known method whose params do not fit is answered `-32602` here: rmcp would
    /// take it for an unknown method (`-32601`).
    fn request(&mut self, mut value: Value, id: ClientId, method: &str) -> Action {
        let Some(ours) = self.ids.begin(&id) else {
            return Action::Reply(error_line(
                Some(&id),
                ErrorCode::INVALID_REQUEST,
                format!("Invalid Request: request id {id} is already in flight; give each request its own id"),
            ));
        };
        value["id"] = json!(ours);
        let request_id = m::RequestId::Number(ours);
        let parsed = match KNOWN_REQUESTS.iter().find(|(name, _)| *name == method) {
            Some((_, parse)) => parse(value).map_err(|e| {
                (
                    ErrorCode::INVALID_PARAMS,
                    format!("Invalid params for {method}: {e}"),
                )
            }),
            // rmcp reads any other method as a custom request and answers -32601 with the id.
            None => match serde_json::from_value::<ClientJsonRpcMessage>(value) {
                Ok(ClientJsonRpcMessage::Request(r)) => Ok(r.request),
                _ => Err((
                    ErrorCode::METHOD_NOT_FOUND,
                    format!("Method not found: {method}"),
                )),
            },
        };
        let mut request = match parsed {
            Ok(request) => request,
            Err((code, message)) => {
                self.ids.finish(ours);
                return Action::Reply(error_line(Some(&id), code, message));
            }
        };
        if let ClientRequest::CallToolRequest(call) = &mut request {
            let access = tools::access(&call.params.name, call.params.arguments.as_ref());
            call.extensions.insert(self.sequencer.arrive(access));
        }
        if !self.started {
            self.started = self.starts_session(&request);
        }
        Action::Message(Box::new(ClientJsonRpcMessage::request(request, request_id)))
    }

    /// Whether rmcp starts the session on `request` (rmcp 3.9's rule, `serve_server`):
    /// `initialize`, or a request other than `ping` and `discover` that carries a protocol
    /// version the server serves and every `_meta` key MCP 2026-07-28 requires.
    fn starts_session(&self, request: &ClientRequest) -> bool {
        match request {
            ClientRequest::InitializeRequest(_) => true,
            ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
            other => {
                let meta = other.get_meta();
                meta.missing_required_keys(&ProtocolVersion::V_2026_07_28)
                    .is_empty()
                    && meta
                        .protocol_version()
                        .is_some_and(|v| self.versions.contains(&v))
            }
        }
    }

    /// A notification: dropped before the session starts; a cancellation is mapped to rmcp's
    /// id of the request (and dropped when that request is not in flight).
    fn notification(&mut self, mut value: Value, method: &str) -> Action {
        if !self.started {
            eprintln!("sqlite-vector mcp: ignoring {method}: it came before the session started");
            return Action::Skip;
        }
        if method == m::CancelledNotificationMethod::VALUE {
            let request_id = &mut value["params"]["requestId"];
            let client = ClientId::from_value(request_id, || None);
            match client.and_then(|c| self.ids.cancel(&c)) {
                Some(ours) => *request_id = json!(ours),
                None => return Action::Skip, // nothing in flight to cancel
            }
        }
        match serde_json::from_value::<ClientJsonRpcMessage>(value) {
            Ok(message) => Action::Message(Box::new(message)),
            Err(e) => {
                eprintln!("sqlite-vector mcp: ignoring an unreadable notification: {e}");
                Action::Skip
            }
        }
    }

    /// A response to a request of the server's: dropped before the session starts (the server
    /// has asked nothing yet).
    fn response(&mut self, value: Value, id: Option<ClientId>) -> Action {
        if !self.started {
            eprintln!("sqlite-vector mcp: ignoring a response: it came before the session started");
            return Action::Skip;
        }
        match serde_json::from_value::<ClientJsonRpcMessage>(value) {
            Ok(message) => Action::Message(Box::new(message)),
            Err(e) => Action::Reply(error_line(
                id.as_ref(),
                ErrorCode::INVALID_REQUEST,
                format!("Invalid Request: unreadable response: {e}"),
            )),
        }
    }
}

/// A line that is not a value serde_json can build (`error`): a parse error, unless it is a
/// JSON object this server cannot hold (a number beyond `f64`, nesting deeper than 128). Then
/// a request gets an error with its id (`-32602` when `params` is what cannot be held), and a
/// notification gets nothing.
fn unreadable(text: &str, error: &serde_json::Error) -> Action {
    // Reading each member as raw text builds no values: any number and any depth parse.
    let Ok(members) = serde_json::from_str::<HashMap<String, &RawValue>>(text) else {
        let message = format!("Parse error: {error}");
        return Action::Reply(error_line(None, ErrorCode::PARSE_ERROR, message));
    };
    let id = members
        .get("id")
        .and_then(|raw| ClientId::from_raw(raw.get()));
    let is_call = members.contains_key("method");
    if is_call && !members.contains_key("id") {
        eprintln!("sqlite-vector mcp: ignoring an unreadable notification: {error}");
        return Action::Skip;
    }
    let params_too_big = members
        .get("params")
        .is_some_and(|raw| serde_json::from_str::<Value>(raw.get()).is_err());
    let (code, kind) = if is_call && id.is_some() && params_too_big {
        (ErrorCode::INVALID_PARAMS, "Invalid params")
    } else {
        (ErrorCode::INVALID_REQUEST, "Invalid Request")
    };
    let message = format!("{kind}: {error} (numbers must fit an f64, nesting 128 levels deep)");
    Action::Reply(error_line(id.as_ref(), code, message))
}

/// The `id` member of a message.
#[derive(Debug)]
enum Id {
    Absent,
    Null,
    /// A string or an integer.
    Usable(ClientId),
    /// Anything else.
    Unusable,
}

/// The kind of a well-formed JSON-RPC 2.0 message.
#[derive(Debug, PartialEq)]
enum Kind {
    /// A request, with its id and method.
    Request { id: ClientId, method: String },
    /// A notification (a method, no id).
    Notification { method: String },
    /// A response or error response, with its id (`None` when the peer had none).
    Response { id: Option<ClientId> },
}

/// Checks the JSON-RPC 2.0 envelope (JSON-RPC 2.0 §4-5; MCP: no batches, no null request
/// ids). The error carries the id to answer with and why the message is invalid.
fn envelope(value: &Value, id: Id) -> Result<Kind, (Option<ClientId>, String)> {
    let object = match value {
        Value::Object(o) => o,
        Value::Array(a) if a.is_empty() => {
            return Err((None, "an empty array is not a message".into()))
        }
        Value::Array(_) => {
            return Err((
                None,
                "batches (JSON arrays) are not supported since MCP 2025-06-18; send one message per line".into(),
            ))
        }
        _ => return Err((None, "a message must be a JSON object".into())),
    };
    let reply_id = match &id {
        Id::Usable(id) => Some(id.clone()),
        _ => None,
    };
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
            match id {
                Id::Absent => Ok(Kind::Notification {
                    method: method.clone(),
                }),
                Id::Usable(id) => Ok(Kind::Request {
                    id,
                    method: method.clone(),
                }),
                Id::Null | Id::Unusable => invalid(BAD_ID),
            }
        }
        Some(_) => invalid(r#""method" must be a string"#),
        None => match (result, error) {
            (Some(_), Some(_)) => invalid(r#"a response has "result" or "error", not both"#),
            (Some(_), None) if reply_id.is_some() => Ok(Kind::Response { id: reply_id }),
            (Some(_), None) => invalid(BAD_ID),
            (None, Some(e)) => {
                let well_formed = e.get("code").and_then(Value::as_i64).is_some()
                    && e.get("message").is_some_and(Value::is_string);
                if !well_formed {
                    invalid(
                        r#""error" must be an object with an integer "code" and a string "message""#,
                    )
                } else if matches!(id, Id::Usable(_) | Id::Absent | Id::Null) {
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

    fn server(dir: &std::path::Path) -> SqliteVectorServer {
        use sqlite_vector::{ManagerOptions, ShardManager};
        use sqlite_vector_embed::StaticEmbedder;
        let manager = ShardManager::open(dir, ManagerOptions::default()).unwrap();
        let embedder = std::sync::Arc::new(StaticEmbedder::builtin().unwrap());
        SqliteVectorServer::new(manager, embedder, crate::ServerLimits::default())
    }

    /// Classifies `line` in a session that has started.
    fn classify(line: &[u8]) -> Action {
        let dir = tempfile::tempdir().unwrap();
        let mut inbound = Inbound::new(&server(dir.path()), Arc::default());
        inbound.started = true;
        inbound.classify(line)
    }

    /// The code and id of the reply to `line`, or `None` when it goes to rmcp or is skipped.
    fn reply(line: &str) -> Option<(i32, Value)> {
        match classify(line.as_bytes()) {
            Action::Reply(v) => {
                let v: Value = serde_json::from_slice(&v).unwrap();
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
                Action::Message(m) => assert!(matches!(*m, ClientJsonRpcMessage::Request(_))),
                other => panic!("{line}: {other:?}"),
            }
        }
        let called = classify(requests[1].as_bytes());
        let Action::Message(m) = called else { panic!() };
        let ClientJsonRpcMessage::Request(r) = *m else {
            panic!()
        };
        // rmcp sees the transport's own id; the reply gets the client's back.
        assert_eq!(r.id, m::RequestId::Number(1));
        assert!(matches!(r.request, ClientRequest::CallToolRequest(_)));
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"no"}}"#,
        ] {
            assert!(
                matches!(classify(line.as_bytes()), Action::Message(_)),
                "{line}"
            );
        }
        for line in ["", "  \t\r\n"] {
            assert!(
                matches!(classify(line.as_bytes()), Action::Skip),
                "{line:?}"
            );
        }
    }

    #[test]
    fn before_the_session_notifications_and_responses_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbound = Inbound::new(&server(dir.path()), Arc::default());
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
        ] {
            assert!(
                matches!(inbound.classify(line.as_bytes()), Action::Skip),
                "{line}"
            );
        }
        let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        assert!(matches!(inbound.classify(ping), Action::Message(_)));
        assert!(!inbound.started, "ping does not start the session");
        let stateless_without_meta =
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
        assert!(matches!(
            inbound.classify(stateless_without_meta),
            Action::Message(_)
        ));
        assert!(!inbound.started, "rmcp refuses it and keeps waiting");
        let stateless = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}}}});
        assert!(matches!(
            inbound.classify(stateless.to_string().as_bytes()),
            Action::Message(_)
        ));
        assert!(inbound.started);
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(matches!(inbound.classify(note), Action::Message(_)));
    }

    #[test]
    fn ids_are_mapped_both_ways_and_duplicates_refused() {
        let ids = Ids::default();
        let big = ClientId::from_raw("100000000000000000000").unwrap();
        let ours = ids.begin(&big).unwrap();
        assert_eq!(ids.begin(&big), None, "in flight");
        let reply =
            ServerJsonRpcMessage::response(m::ServerResult::empty(()), m::RequestId::Number(ours));
        let line = ids.encode(&reply).unwrap().unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(
            line,
            "{\"jsonrpc\":\"2.0\",\"id\":100000000000000000000,\"result\":{}}\n"
        );
        assert!(ids.begin(&big).is_some(), "free again once answered");
        // A cancelled request gets no reply.
        let s = ClientId::from_raw(r#""s""#).unwrap();
        let ours = ids.begin(&s).unwrap();
        assert_eq!(ids.cancel(&s), Some(ours));
        let reply =
            ServerJsonRpcMessage::response(m::ServerResult::empty(()), m::RequestId::Number(ours));
        assert!(ids.encode(&reply).unwrap().is_none());
        for (raw, canonical) in [(r#""\u0041""#, r#""A""#), ("-12", "-12"), (" 7 ", "7")] {
            assert_eq!(ClientId::from_raw(raw).unwrap().0, canonical);
        }
        for raw in ["1.5", "1e3", "null", "{}", "-", ""] {
            assert!(ClientId::from_raw(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn unholdable_json_is_answered_with_its_id() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let (params, invalid) = (-32602, -32600);
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":"n","method":"ping","params":{"x":1e400}}"#.to_owned(),
                params,
                json!("n"),
            ),
            (
                format!(r#"{{"jsonrpc":"2.0","id":5,"method":"ping","params":{deep}}}"#),
                params,
                json!(5),
            ),
            (
                r#"{"jsonrpc":"2.0","id":6,"result":{"x":-1e999}}"#.to_owned(),
                invalid,
                json!(6),
            ),
            (
                format!(r#"{{"jsonrpc":"2.0","id":1.5,"method":"ping","params":{deep}}}"#),
                invalid,
                Value::Null,
            ),
        ];
        for (line, code, id) in cases {
            assert_eq!(reply(&line), Some((code, id)), "{}", &line[..60]);
        }
        let note = format!(r#"{{"jsonrpc":"2.0","method":"x","params":{deep}}}"#);
        assert!(matches!(classify(note.as_bytes()), Action::Skip));
        assert_eq!(reply(&deep), Some((-32700, Value::Null)));
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
        let dir = tempfile::tempdir().unwrap();
        let server = server(dir.path());
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
