//! The wire format: frames, their binary encoding, and a decoder that takes bytes as they come.
//!
//! A frame is `kind: u8`, `len: u32` (little-endian) and `len` bytes of payload, at most
//! [`MAX_FRAME_BYTES`]. Every integer is little-endian; a string is a `u16` (identifiers) or
//! `u32` (payloads) byte length and UTF-8 bytes. Changes travel in [`Frame::Chunk`]s whose body
//! is a sequence of change records (see [`encode_changes`]), vectors as raw little-endian `f32`
//! bytes, compressed with zstd when that makes the body smaller.
//!
//! Every length read from the wire is checked against what is left of the frame before anything
//! is allocated, and a chunk's declared decompressed size is bounded by [`MAX_CHUNK_RAW_BYTES`]:
//! a hostile peer can make a decode fail, never allocate more than the bytes it sent allow.

use sqlite_vector::{Change, Metric, SiteId};

use super::ProtoError;

/// The protocol version this build speaks ([`Hello::version`]).
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest frame payload accepted (bytes).
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Largest decompressed chunk body accepted (bytes).
pub const MAX_CHUNK_RAW_BYTES: usize = 64 << 20;
/// Most sync cursors a [`Hello`] may carry.
pub const MAX_CURSORS: usize = 4096;
/// Most changes one chunk may carry.
pub const MAX_CHUNK_CHANGES: usize = 65_536;
/// Most searchable fields a [`Hello`] may carry (the core's own limit is 16).
const MAX_FIELDS: usize = 64;
/// Frame header bytes: kind and length.
pub const HEADER_BYTES: usize = 5;

/// Why a peer refuses a session ([`Frame::Reject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectCode {
    /// Another protocol version.
    Version,
    /// The shards' profiles differ (dimension, metric or embedding model).
    Profile,
    /// The peer may not do what it asked (push or pull this shard).
    Forbidden,
    /// The peer sent something malformed or out of order.
    Protocol,
    /// The peer's shard failed (I/O, corruption, a change it could not store).
    Storage,
    /// The peer is too far behind: its needed tombstones were collected; it must take a
    /// snapshot.
    SnapshotRequired,
    /// The peer has no such shard and will not create it.
    NoShard,
}

impl RejectCode {
    fn to_u8(self) -> u8 {
        match self {
            RejectCode::Version => 1,
            RejectCode::Profile => 2,
            RejectCode::Forbidden => 3,
            RejectCode::Protocol => 4,
            RejectCode::Storage => 5,
            RejectCode::SnapshotRequired => 6,
            RejectCode::NoShard => 7,
        }
    }
    fn from_u8(b: u8) -> Option<RejectCode> {
        Some(match b {
            1 => RejectCode::Version,
            2 => RejectCode::Profile,
            3 => RejectCode::Forbidden,
            4 => RejectCode::Protocol,
            5 => RejectCode::Storage,
            6 => RejectCode::SnapshotRequired,
            7 => RejectCode::NoShard,
            _ => return None,
        })
    }
    /// A lower-case name (`profile`, `forbidden`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Version => "version",
            RejectCode::Profile => "profile",
            RejectCode::Forbidden => "forbidden",
            RejectCode::Protocol => "protocol",
            RejectCode::Storage => "storage",
            RejectCode::SnapshotRequired => "snapshot_required",
            RejectCode::NoShard => "no_shard",
        }
    }
}

/// What a shard's sync must agree on: vectors of one dimension, metric and embedding model. The
/// searchable fields travel along so a peer that lacks the shard creates it alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireProfile {
    /// Components per vector.
    pub dimension: u32,
    /// The metric.
    pub metric: Metric,
    /// The embedding model id (`None`: unknown).
    pub embedding_model: Option<String>,
    /// Metadata fields indexed for full-text search.
    pub searchable_fields: Vec<String>,
}

impl WireProfile {
    /// The profile of `p`.
    pub fn of(p: &sqlite_vector::Profile) -> WireProfile {
        WireProfile {
            dimension: p.dimension as u32,
            metric: p.metric,
            embedding_model: p.embedding_model.clone(),
            searchable_fields: p.searchable_fields.clone(),
        }
    }

    /// `None` when two shards with these profiles may sync, else what differs, naming both
    /// values.
    pub fn mismatch(&self, other: &WireProfile) -> Option<String> {
        if self.dimension != other.dimension {
            return Some(format!(
                "dimension {} here, {} at the peer",
                self.dimension, other.dimension
            ));
        }
        if self.metric != other.metric {
            return Some(format!(
                "metric {} here, {} at the peer",
                self.metric.as_str(),
                other.metric.as_str()
            ));
        }
        if self.embedding_model != other.embedding_model {
            let show = |m: &Option<String>| m.clone().unwrap_or_else(|| "(none)".into());
            return Some(format!(
                "embedding model {} here, {} at the peer",
                show(&self.embedding_model),
                show(&other.embedding_model)
            ));
        }
        None
    }
}

/// The first frame of a session, from each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u16,
    /// The sender will send its changes.
    pub send: bool,
    /// The sender will take the peer's changes.
    pub receive: bool,
    /// The shard's name.
    pub shard: String,
    /// The sender's shard profile.
    pub profile: WireProfile,
    /// The sender's shard site id.
    pub site: SiteId,
    /// The sender's head: its highest local version (`seq`).
    pub head: i64,
    /// The digest of the sender's live items ([`sqlite_vector::change::digest_item`]).
    pub digest: u64,
    /// The sender's live items.
    pub live: u64,
    /// The sender's tombstone collection bound ([`sqlite_vector::SyncState::horizon`]): a
    /// receiver whose cursor for the sender is below it gets a snapshot.
    pub horizon: i64,
    /// How far the sender has applied each other shard's changes (site id, version).
    pub cursors: Vec<(SiteId, i64)>,
}

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The session's first frame from each side.
    Hello(Hello),
    /// Changes with sender versions in `(from, to]`, oldest first.
    Chunk(Chunk),
    /// The receiver committed everything up to sender version `to`.
    Ack {
        /// Sender version up to which changes are committed.
        to: i64,
    },
    /// The sender has sent all of its changes up to `head`; its last chunk reached `last` (the
    /// version it started from when it sent none). Between `last` and `head` its feed held
    /// only versions the receiver has.
    Done {
        /// Where the sender's chunks ended.
        last: i64,
        /// The version up to which the sender has sent everything the receiver lacks.
        head: i64,
    },
    /// The sender has finished both directions; its state now.
    Fin {
        /// Digest of its live items.
        digest: u64,
        /// Its head.
        head: i64,
        /// Its live items.
        live: u64,
    },
    /// The first frame of a listing stream: which shards may the asker pull (names starting
    /// with `prefix`, or exactly `names` when given)?
    List {
        /// Name prefix (empty: all).
        prefix: String,
        /// Exact names (empty: all with the prefix).
        names: Vec<String>,
    },
    /// The answer to [`Frame::List`]: each shard's name and profile.
    Shards {
        /// Names and profiles.
        shards: Vec<(String, WireProfile)>,
    },
    /// The sender refuses the session.
    Reject {
        /// Why.
        code: RejectCode,
        /// Text for a person.
        message: String,
    },
}

/// Changes with sender versions in `(from, to]`: an encoded body ([`encode_changes`]), possibly
/// zstd-compressed.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The sender version after which this chunk starts (exclusive).
    pub from: i64,
    /// The sender version this chunk reaches (inclusive).
    pub to: i64,
    /// Change records in the body.
    pub count: u32,
    /// Bytes of the body once decompressed.
    pub raw_len: u32,
    /// Whether the body is zstd-compressed.
    pub compressed: bool,
    /// The body.
    pub body: Vec<u8>,
}

const KIND_HELLO: u8 = 1;
const KIND_CHUNK: u8 = 2;
const KIND_ACK: u8 = 3;
const KIND_DONE: u8 = 4;
const KIND_FIN: u8 = 5;
const KIND_REJECT: u8 = 6;
const KIND_LIST: u8 = 7;
const KIND_SHARDS: u8 = 8;
/// Most names a [`Frame::List`] or [`Frame::Shards`] may carry.
pub const MAX_NAMES: usize = 1 << 20;

fn metric_to_u8(m: Metric) -> u8 {
    match m {
        Metric::Cosine => 1,
        Metric::L2 => 2,
        Metric::Dot => 3,
    }
}

fn metric_from_u8(b: u8) -> Option<Metric> {
    match b {
        1 => Some(Metric::Cosine),
        2 => Some(Metric::L2),
        3 => Some(Metric::Dot),
        _ => None,
    }
}

/// Appends little-endian values to a buffer.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A string of at most 65,535 bytes (longer ones are cut at a character boundary: only
    /// messages and names the encoder itself bounds go through here).
    fn str16(&mut self, s: &str) {
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
    }
    fn str32(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads little-endian values from a slice, every read bounded by what is left.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Malformed(format!(
                "{}: needs {n} more bytes, {} left",
                self.what,
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, ProtoError> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn site(&mut self) -> Result<SiteId, ProtoError> {
        Ok(SiteId(self.take(16)?.try_into().expect("16 bytes")))
    }
    fn utf8(&self, b: &[u8]) -> Result<String, ProtoError> {
        String::from_utf8(b.to_vec())
            .map_err(|_| ProtoError::Malformed(format!("{}: a string is not UTF-8", self.what)))
    }
    fn str16(&mut self) -> Result<String, ProtoError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        self.utf8(b)
    }
    fn str32(&mut self) -> Result<String, ProtoError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        self.utf8(b)
    }
    fn end(&self) -> Result<(), ProtoError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtoError::Malformed(format!(
                "{}: {} bytes past the end",
                self.what,
                self.buf.len()
            )))
        }
    }
}

fn put_profile(w: &mut Writer<'_>, p: &WireProfile) {
    w.u32(p.dimension);
    w.u8(metric_to_u8(p.metric));
    match &p.embedding_model {
        Some(m) => {
            w.u8(1);
            w.str16(m);
        }
        None => w.u8(0),
    }
    w.u8(p.searchable_fields.len().min(MAX_FIELDS) as u8);
    for f in p.searchable_fields.iter().take(MAX_FIELDS) {
        w.str16(f);
    }
}

fn get_profile(r: &mut Reader<'_>) -> Result<WireProfile, ProtoError> {
    let what = r.what;
    let dimension = r.u32()?;
    let metric = metric_from_u8(r.u8()?)
        .ok_or_else(|| ProtoError::Malformed(format!("{what}: unknown metric")))?;
    let embedding_model = match r.u8()? {
        0 => None,
        1 => Some(r.str16()?),
        _ => return Err(ProtoError::Malformed(format!("{what}: bad model flag"))),
    };
    let n_fields = r.u8()? as usize;
    if n_fields > MAX_FIELDS {
        return Err(ProtoError::Malformed(format!(
            "{what}: {n_fields} searchable fields, at most {MAX_FIELDS}"
        )));
    }
    let mut searchable_fields = Vec::with_capacity(n_fields);
    for _ in 0..n_fields {
        searchable_fields.push(r.str16()?);
    }
    Ok(WireProfile {
        dimension,
        metric,
        embedding_model,
        searchable_fields,
    })
}

impl Frame {
    /// Appends the frame's encoding (header and payload) to `out`.
    ///
    /// # Errors
    /// [`ProtoError::Oversize`] when the payload would exceed [`MAX_FRAME_BYTES`] (nothing is
    /// appended).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtoError> {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_BYTES]);
        let mut w = Writer(out);
        let kind = match self {
            Frame::Hello(h) => {
                w.u16(h.version);
                w.u8(u8::from(h.send) | (u8::from(h.receive) << 1));
                w.str16(&h.shard);
                put_profile(&mut w, &h.profile);
                w.0.extend_from_slice(&h.site.0);
                w.i64(h.head);
                w.u64(h.digest);
                w.u64(h.live);
                w.i64(h.horizon);
                let n = h.cursors.len().min(MAX_CURSORS);
                w.u32(n as u32);
                for (site, seq) in &h.cursors[..n] {
                    w.0.extend_from_slice(&site.0);
                    w.i64(*seq);
                }
                KIND_HELLO
            }
            Frame::Chunk(c) => {
                w.i64(c.from);
                w.i64(c.to);
                w.u32(c.count);
                w.u8(u8::from(c.compressed));
                w.u32(c.raw_len);
                w.0.extend_from_slice(&c.body);
                KIND_CHUNK
            }
            Frame::Ack { to } => {
                w.i64(*to);
                KIND_ACK
            }
            Frame::Done { last, head } => {
                w.i64(*last);
                w.i64(*head);
                KIND_DONE
            }
            Frame::Fin { digest, head, live } => {
                w.u64(*digest);
                w.i64(*head);
                w.u64(*live);
                KIND_FIN
            }
            Frame::Reject { code, message } => {
                w.u8(code.to_u8());
                w.str16(message);
                KIND_REJECT
            }
            Frame::List { prefix, names } => {
                w.str16(prefix);
                let n = names.len().min(MAX_NAMES);
                w.u32(n as u32);
                for name in &names[..n] {
                    w.str16(name);
                }
                KIND_LIST
            }
            Frame::Shards { shards } => {
                let n = shards.len().min(MAX_NAMES);
                w.u32(n as u32);
                for (name, p) in &shards[..n] {
                    w.str16(name);
                    put_profile(&mut w, p);
                }
                KIND_SHARDS
            }
        };
        let len = out.len() - start - HEADER_BYTES;
        if len > MAX_FRAME_BYTES {
            out.truncate(start);
            return Err(ProtoError::Oversize(len));
        }
        out[start] = kind;
        out[start + 1..start + HEADER_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(())
    }

    /// The frame of kind `kind` with payload `payload` (the header already read).
    ///
    /// # Errors
    /// [`ProtoError::Malformed`] for an unknown kind, a truncated or overlong payload, bad
    /// UTF-8, an unknown metric or reject code, or counts beyond the limits.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Frame, ProtoError> {
        match kind {
            KIND_HELLO => {
                let mut r = Reader::new(payload, "hello");
                let version = r.u16()?;
                let flags = r.u8()?;
                let shard = r.str16()?;
                let profile = get_profile(&mut r)?;
                let site = r.site()?;
                let head = r.i64()?;
                let digest = r.u64()?;
                let live = r.u64()?;
                let horizon = r.i64()?;
                let n = r.u32()? as usize;
                if n > MAX_CURSORS || n * 24 > r.buf.len() {
                    return Err(ProtoError::Malformed(format!(
                        "hello: {n} cursors in {} bytes",
                        r.buf.len()
                    )));
                }
                let mut cursors = Vec::with_capacity(n);
                for _ in 0..n {
                    cursors.push((r.site()?, r.i64()?));
                }
                r.end()?;
                Ok(Frame::Hello(Hello {
                    version,
                    send: flags & 1 != 0,
                    receive: flags & 2 != 0,
                    shard,
                    profile,
                    site,
                    head,
                    digest,
                    live,
                    horizon,
                    cursors,
                }))
            }
            KIND_CHUNK => {
                let mut r = Reader::new(payload, "chunk");
                let from = r.i64()?;
                let to = r.i64()?;
                let count = r.u32()?;
                let compressed = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(ProtoError::Malformed("chunk: bad codec".into())),
                };
                let raw_len = r.u32()?;
                if raw_len as usize > MAX_CHUNK_RAW_BYTES || count as usize > MAX_CHUNK_CHANGES {
                    return Err(ProtoError::Malformed(format!(
                        "chunk: {count} changes in {raw_len} bytes exceed the limits"
                    )));
                }
                if from < 0 || to < from {
                    return Err(ProtoError::Malformed(format!(
                        "chunk: versions ({from}, {to}] are not a range"
                    )));
                }
                if !compressed && raw_len as usize != r.buf.len() {
                    return Err(ProtoError::Malformed(format!(
                        "chunk: declares {raw_len} bytes, carries {}",
                        r.buf.len()
                    )));
                }
                Ok(Frame::Chunk(Chunk {
                    from,
                    to,
                    count,
                    raw_len,
                    compressed,
                    body: r.buf.to_vec(),
                }))
            }
            KIND_ACK => {
                let mut r = Reader::new(payload, "ack");
                let to = r.i64()?;
                r.end()?;
                Ok(Frame::Ack { to })
            }
            KIND_DONE => {
                let mut r = Reader::new(payload, "done");
                let last = r.i64()?;
                let head = r.i64()?;
                r.end()?;
                Ok(Frame::Done { last, head })
            }
            KIND_FIN => {
                let mut r = Reader::new(payload, "fin");
                let digest = r.u64()?;
                let head = r.i64()?;
                let live = r.u64()?;
                r.end()?;
                Ok(Frame::Fin { digest, head, live })
            }
            KIND_REJECT => {
                let mut r = Reader::new(payload, "reject");
                let b = r.u8()?;
                let code = RejectCode::from_u8(b)
                    .ok_or_else(|| ProtoError::Malformed(format!("reject: unknown code {b}")))?;
                let message = r.str16()?;
                r.end()?;
                Ok(Frame::Reject { code, message })
            }
            KIND_LIST => {
                let mut r = Reader::new(payload, "list");
                let prefix = r.str16()?;
                let n = r.u32()? as usize;
                // Each name takes at least its 2-byte length.
                if n > MAX_NAMES || n * 2 > r.buf.len() {
                    return Err(ProtoError::Malformed(format!(
                        "list: {n} names in {} bytes",
                        r.buf.len()
                    )));
                }
                let mut names = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(r.str16()?);
                }
                r.end()?;
                Ok(Frame::List { prefix, names })
            }
            KIND_SHARDS => {
                let mut r = Reader::new(payload, "shards");
                let n = r.u32()? as usize;
                // Each entry takes at least 9 bytes.
                if n > MAX_NAMES || n * 9 > r.buf.len() {
                    return Err(ProtoError::Malformed(format!(
                        "shards: {n} entries in {} bytes",
                        r.buf.len()
                    )));
                }
                let mut shards = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.str16()?;
                    shards.push((name, get_profile(&mut r)?));
                }
                r.end()?;
                Ok(Frame::Shards { shards })
            }
            k => Err(ProtoError::Malformed(format!("unknown frame kind {k}"))),
        }
    }
}

/// Splits a byte stream into frames: feed it bytes as they arrive ([`Decoder::push`]) and take
/// the complete frames ([`Decoder::next_frame`]). A header announcing more than
/// [`MAX_FRAME_BYTES`] fails at once, before its payload is buffered.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet taken as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `None` until one has fully arrived.
    ///
    /// # Errors
    /// [`ProtoError::Oversize`] for a header announcing more than [`MAX_FRAME_BYTES`];
    /// [`ProtoError::Malformed`] for a payload [`Frame::decode`] refuses.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtoError> {
        if self.buf.len() < HEADER_BYTES {
            return Ok(None);
        }
        let len =
            u32::from_le_bytes(self.buf[1..HEADER_BYTES].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(ProtoError::Oversize(len));
        }
        if self.buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let frame = Frame::decode(self.buf[0], &self.buf[HEADER_BYTES..HEADER_BYTES + len]);
        self.buf.drain(..HEADER_BYTES + len);
        frame.map(Some)
    }
}

const HAS_VECTOR: u8 = 1;
const HAS_METADATA: u8 = 2;
const HAS_TEXT: u8 = 4;

/// Encodes changes as a chunk body: per change, the id (`u16` length + UTF-8), HLC (`i64`),
/// site id (16 bytes), causal length (`i64`), a flag byte, then the vector (`dimension` ×
/// little-endian `f32`, no length: the profile gives it), metadata and text (`u32` length +
/// UTF-8) when flagged. Ids are at most 65,535 bytes (the core's limit is far lower).
pub fn encode_changes(changes: &[Change], out: &mut Vec<u8>) {
    let mut w = Writer(out);
    for c in changes {
        w.str16(&c.id);
        w.i64(c.hlc);
        w.0.extend_from_slice(&c.site_id.0);
        w.i64(c.causal_length);
        let flags = if c.vector.is_some() { HAS_VECTOR } else { 0 }
            | if c.metadata.is_some() {
                HAS_METADATA
            } else {
                0
            }
            | if c.text.is_some() { HAS_TEXT } else { 0 };
        w.u8(flags);
        if let Some(v) = &c.vector {
            for x in v {
                w.0.extend_from_slice(&x.to_le_bytes());
            }
        }
        if let Some(m) = &c.metadata {
            w.str32(m);
        }
        if let Some(t) = &c.text {
            w.str32(t);
        }
    }
}

/// Decodes `count` changes of `dimension`-d vectors from a chunk body (see
/// [`encode_changes`]); their `seq` is 0 (the receiver assigns its own).
///
/// # Errors
/// [`ProtoError::Malformed`] for a truncated body, bytes past the last change, bad UTF-8 or an
/// unknown flag.
pub fn decode_changes(body: &[u8], count: u32, dimension: u32) -> Result<Vec<Change>, ProtoError> {
    let mut r = Reader::new(body, "chunk body");
    // Each change takes at least 35 bytes: bound the allocation by the body's length.
    let mut out = Vec::with_capacity((count as usize).min(body.len() / 35));
    let vbytes = dimension as usize * 4;
    for _ in 0..count {
        let id = r.str16()?;
        let hlc = r.i64()?;
        let site_id = r.site()?;
        let causal_length = r.i64()?;
        let flags = r.u8()?;
        if flags & !(HAS_VECTOR | HAS_METADATA | HAS_TEXT) != 0 {
            return Err(ProtoError::Malformed(format!(
                "chunk body: change {id:?} has unknown flags {flags:#x}"
            )));
        }
        let vector = if flags & HAS_VECTOR != 0 {
            let b = r.take(vbytes)?;
            Some(
                b.chunks_exact(4)
                    .map(|x| f32::from_le_bytes(x.try_into().expect("4 bytes")))
                    .collect(),
            )
        } else {
            None
        };
        let metadata = if flags & HAS_METADATA != 0 {
            Some(r.str32()?)
        } else {
            None
        };
        let text = if flags & HAS_TEXT != 0 {
            Some(r.str32()?)
        } else {
            None
        };
        out.push(Change {
            id,
            seq: 0,
            hlc,
            site_id,
            causal_length,
            vector,
            metadata,
            text,
        });
    }
    r.end()?;
    Ok(out)
}

/// Builds a chunk of `changes` covering sender versions `(from, to]`: the encoded body,
/// zstd-compressed (level 1) when that saves at least 1/16 of it.
///
/// # Errors
/// [`ProtoError::Oversize`] when the body exceeds [`MAX_CHUNK_RAW_BYTES`] or the frame limit.
pub fn build_chunk(changes: &[Change], from: i64, to: i64) -> Result<Chunk, ProtoError> {
    let mut raw = Vec::new();
    encode_changes(changes, &mut raw);
    if raw.len() > MAX_CHUNK_RAW_BYTES {
        return Err(ProtoError::Oversize(raw.len()));
    }
    let raw_len = raw.len() as u32;
    let packed = zstd::bulk::compress(&raw, 1).map_err(|e| ProtoError::Codec(e.to_string()))?;
    let (compressed, body) = if packed.len() + packed.len() / 16 < raw.len() {
        (true, packed)
    } else {
        (false, raw)
    };
    if body.len() + 29 > MAX_FRAME_BYTES {
        return Err(ProtoError::Oversize(body.len()));
    }
    Ok(Chunk {
        from,
        to,
        count: changes.len() as u32,
        raw_len,
        compressed,
        body,
    })
}

/// The changes of a chunk (decompressed and decoded).
///
/// # Errors
/// [`ProtoError::Malformed`] for a body that does not decompress to exactly its declared size,
/// or that [`decode_changes`] refuses.
pub fn open_chunk(chunk: &Chunk, dimension: u32) -> Result<Vec<Change>, ProtoError> {
    if chunk.compressed {
        let raw = zstd::bulk::decompress(&chunk.body, chunk.raw_len as usize)
            .map_err(|e| ProtoError::Malformed(format!("chunk: zstd: {e}")))?;
        if raw.len() != chunk.raw_len as usize {
            return Err(ProtoError::Malformed(format!(
                "chunk: declares {} bytes, decompresses to {}",
                chunk.raw_len,
                raw.len()
            )));
        }
        decode_changes(&raw, chunk.count, dimension)
    } else {
        decode_changes(&chunk.body, chunk.count, dimension)
    }
}
