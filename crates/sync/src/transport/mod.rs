//! The QUIC transport: quinn over rustls (TLS 1.3, ring), mutual authentication by pinned raw
//! public keys ([`identity`]), one bidirectional stream per shard session on one connection.
//!
//! A connection from a peer outside the server's trust list fails in the TLS handshake: it
//! receives the server's public key and nothing else. A trusted peer asking for a shard outside
//! its grant gets a [`Frame::Reject`] (`forbidden`) and no change. Each stream starts with a
//! [`Frame::Hello`] (a shard session, [`crate::proto::Session`]) or a [`Frame::List`] (which
//! shards may this peer pull, with their profiles).

pub mod identity;
mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{Connection, Endpoint, RecvStream, SendStream};
use serde::Serialize;
use sqlite_vector::{Profile, Shard, ShardManager};

use crate::proto::frame::{Frame, RejectCode, WireProfile};
use crate::proto::{Config, Decoder, Grant, Outcome, ProtoError, Session, ShardStore};
pub use identity::{node_id_of, parse_node_id, Identity, TrustList, TrustedPeer};

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A bad argument (node id, address, prefix, trust list file).
    #[error("{0}")]
    InvalidArgument(String),
    /// The node's key cannot be read or made.
    #[error("identity: {0}")]
    Identity(String),
    /// TLS configuration failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The connection could not be made or was lost: unreachable, refused (the peer does not
    /// trust this node, or is not the node id given), timed out.
    #[error("connection: {0}")]
    Connection(String),
    /// The protocol failed (a reject from the peer, a malformed frame, a refused change).
    #[error(transparent)]
    Proto(#[from] ProtoError),
    /// A local shard failed.
    #[error(transparent)]
    Shard(#[from] sqlite_vector::Error),
    /// File I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn conn_error(e: impl std::fmt::Display) -> SyncError {
    SyncError::Connection(e.to_string())
}

/// Reads the next frame from `recv` (`None` at the end of the stream).
async fn read_frame(recv: &mut RecvStream, dec: &mut Decoder) -> Result<Option<Frame>, SyncError> {
    loop {
        if let Some(f) = dec.next_frame()? {
            return Ok(Some(f));
        }
        match recv.read_chunk(1 << 16, true).await.map_err(conn_error)? {
            Some(chunk) => dec.push(&chunk.bytes),
            None if dec.buffered() > 0 => {
                return Err(ProtoError::Malformed(format!(
                    "the stream ended inside a frame ({} bytes)",
                    dec.buffered()
                ))
                .into())
            }
            None => return Ok(None),
        }
    }
}

/// Writes every frame the session has queued.
/// Sends the session's queued frames; adds the bytes of its chunks to `shard_bytes` (the
/// server's count of shard data sent).
async fn write_out(
    session: &mut Session,
    send: &mut SendStream,
    shard_bytes: Option<&AtomicU64>,
) -> Result<(), SyncError> {
    let mut buf = Vec::new();
    while let Some(f) = session.poll_transmit() {
        let start = buf.len();
        f.encode(&mut buf)?;
        if let (Some(n), Frame::Chunk(_)) = (shard_bytes, &f) {
            n.fetch_add((buf.len() - start) as u64, Ordering::Relaxed);
        }
    }
    if !buf.is_empty() {
        send.write_all(&buf).await.map_err(conn_error)?;
    }
    Ok(())
}

async fn write_frame(send: &mut SendStream, frame: &Frame) -> Result<(), SyncError> {
    let mut buf = Vec::new();
    frame.encode(&mut buf)?;
    send.write_all(&buf).await.map_err(conn_error)
}

/// Runs a session to its end over one stream.
async fn drive(
    session: &mut Session,
    store: &ShardStore<'_>,
    send: &mut SendStream,
    recv: &mut RecvStream,
    dec: &mut Decoder,
    shard_bytes: Option<&AtomicU64>,
) -> Result<Outcome, SyncError> {
    loop {
        write_out(session, send, shard_bytes).await?;
        if session.is_finished() {
            let _ = send.finish();
            return Ok(session.outcome().clone());
        }
        let Some(frame) = read_frame(recv, dec).await? else {
            return Err(conn_error("the peer ended the stream mid-session"));
        };
        let r = tokio::task::block_in_place(|| session.handle(frame, store));
        if let Err(e) = r {
            let _ = write_out(session, send, shard_bytes).await;
            let _ = send.finish();
            return Err(e.into());
        }
    }
}

fn profile_of(w: &WireProfile) -> Profile {
    let mut p = Profile::new(w.dimension as usize, w.metric)
        .with_searchable_fields(w.searchable_fields.iter().cloned());
    if let Some(m) = &w.embedding_model {
        p = p.with_embedding_model(m.clone());
    }
    p
}

/// The node id of a connection's peer (its raw public key).
fn peer_id(conn: &Connection) -> Option<String> {
    let any = conn.peer_identity()?;
    let certs = any
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    certs.first().map(|c| node_id_of(c.as_ref()))
}

/// A sync server for the shards of one root.
pub struct Server {
    endpoint: Endpoint,
    manager: Arc<ShardManager>,
    root: PathBuf,
    cfg: Config,
    stats: Arc<ServerStats>,
}

/// What a [`Server`] has done, counted as it runs ([`Server::stats`]).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections whose TLS handshake failed (an untrusted key, a client that refused this
    /// server's key, or garbage).
    pub handshakes_failed: AtomicU64,
    /// Shard sessions started (a trusted peer's hello for a shard it may sync).
    pub sessions: AtomicU64,
    /// Bytes of shard data sent: change chunks, and shard listings that name at least one
    /// shard. What a stranger or an ungranted peer must never receive.
    pub shard_bytes_sent: AtomicU64,
}

impl Server {
    /// Binds a server for `manager`'s root with `identity` on `addr` (port 0: any free port,
    /// see [`Server::local_addr`]). Clients must be in the root's trust list, read at each
    /// handshake.
    ///
    /// # Errors
    /// [`SyncError::Io`] when the address cannot be bound; [`SyncError::Tls`].
    pub fn bind(
        manager: Arc<ShardManager>,
        identity: &Identity,
        addr: SocketAddr,
    ) -> Result<Server, SyncError> {
        let root = manager.root().to_path_buf();
        let config = tls::server_config(identity, root.clone())?;
        let endpoint = Endpoint::server(config, addr)?;
        Ok(Server {
            endpoint,
            manager,
            root,
            cfg: Config::default(),
            stats: Arc::default(),
        })
    }

    /// The server's counters (shared: read them while it runs).
    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// [`SyncError::Io`].
    pub fn local_addr(&self) -> Result<SocketAddr, SyncError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Serves until `shutdown` completes, then closes every connection and returns once the
    /// endpoint is idle (at most 2 s).
    ///
    /// # Errors
    /// None today beyond what a failed accept reports in the log.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), SyncError> {
        tokio::pin!(shutdown);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let (manager, root, cfg) = (self.manager.clone(), self.root.clone(), self.cfg);
                    let stats = self.stats.clone();
                    tasks.spawn(async move {
                        match incoming.await {
                            Ok(conn) => serve_connection(conn, manager, root, cfg, stats).await,
                            Err(e) => {
                                stats.handshakes_failed.fetch_add(1, Ordering::Relaxed);
                                tracing::info!("handshake failed: {e}");
                            }
                        }
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        self.endpoint.close(0u32.into(), b"server shutting down");
        tasks.abort_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        Ok(())
    }
}

async fn serve_connection(
    conn: Connection,
    manager: Arc<ShardManager>,
    root: PathBuf,
    cfg: Config,
    stats: Arc<ServerStats>,
) {
    let Some(peer) = peer_id(&conn) else {
        conn.close(1u32.into(), b"no peer identity");
        return;
    };
    let mut streams = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            s = conn.accept_bi() => match s {
                Ok((send, recv)) => {
                    let (manager, root, peer) = (manager.clone(), root.clone(), peer.clone());
                    let stats = stats.clone();
                    streams.spawn(async move {
                        let served = serve_stream(send, recv, &manager, &root, &peer, cfg, &stats);
                        if let Err(e) = served.await {
                            tracing::info!(peer = %peer, "sync stream ended: {e}");
                        }
                    });
                }
                Err(_) => break,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    while streams.join_next().await.is_some() {}
}

async fn reject(send: &mut SendStream, code: RejectCode, message: String) -> Result<(), SyncError> {
    write_frame(send, &Frame::Reject { code, message }).await?;
    let _ = send.finish();
    Ok(())
}

async fn serve_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    manager: &ShardManager,
    root: &std::path::Path,
    peer: &str,
    cfg: Config,
    stats: &ServerStats,
) -> Result<(), SyncError> {
    let mut dec = Decoder::new();
    let Some(first) = read_frame(&mut recv, &mut dec).await? else {
        return Ok(());
    };
    let trust = TrustList::load(root)?;
    match first {
        Frame::List { prefix, names } => {
            let infos = tokio::task::block_in_place(|| manager.list(Some(&prefix)))?;
            let shards = infos
                .into_iter()
                .filter(|i| names.is_empty() || names.contains(&i.name))
                .filter(|i| trust.grant(peer, &i.name).is_some_and(|g| g.pull))
                .map(|i| {
                    let p = WireProfile::of(&i.profile);
                    (i.name, p)
                })
                .collect::<Vec<_>>();
            let frame = Frame::Shards { shards };
            if let Frame::Shards { shards } = &frame {
                if !shards.is_empty() {
                    let mut buf = Vec::new();
                    frame.encode(&mut buf)?;
                    stats
                        .shard_bytes_sent
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                }
            }
            write_frame(&mut send, &frame).await?;
            let _ = send.finish();
            Ok(())
        }
        Frame::Hello(hello) => {
            let Some(grant) = trust.grant(peer, &hello.shard) else {
                let msg = format!("this peer may not sync shard {:?}", hello.shard);
                return reject(&mut send, RejectCode::Forbidden, msg).await;
            };
            let opened = tokio::task::block_in_place(|| open_for(manager, &hello, grant));
            let shard = match opened {
                Ok(Some(s)) => s,
                Ok(None) => {
                    let msg = format!("no shard {:?} here", hello.shard);
                    return reject(&mut send, RejectCode::NoShard, msg).await;
                }
                Err(e) => {
                    let code = if e.is_user_error() {
                        RejectCode::Protocol
                    } else {
                        RejectCode::Storage
                    };
                    return reject(&mut send, code, e.to_string()).await;
                }
            };
            let members = trust.members(&hello.shard);
            let store = ShardStore {
                shard: &shard,
                peer_node: Some(peer),
                members: &members,
            };
            let (mut session, r) =
                tokio::task::block_in_place(|| Session::respond(hello, &store, grant, cfg));
            if let Err(e) = r {
                write_out(&mut session, &mut send, None).await?;
                let _ = send.finish();
                return Err(e.into());
            }
            stats.sessions.fetch_add(1, Ordering::Relaxed);
            let bytes = Some(&stats.shard_bytes_sent);
            drive(&mut session, &store, &mut send, &mut recv, &mut dec, bytes).await?;
            Ok(())
        }
        other => {
            let msg = format!("a stream starts with a hello or a list, not {other:?}");
            reject(&mut send, RejectCode::Protocol, msg).await
        }
    }
}

/// The shard a peer's hello names: opened, or created with the peer's profile when the peer
/// pushes and may; `None` when it does not exist and will not be created.
fn open_for(
    manager: &ShardManager,
    hello: &crate::proto::Hello,
    grant: Grant,
) -> Result<Option<Arc<Shard>>, sqlite_vector::Error> {
    if manager.exists(&hello.shard)? {
        return manager.open_shard(&hello.shard).map(Some);
    }
    if hello.send && grant.push {
        return manager
            .get_or_create(&hello.shard, &profile_of(&hello.profile))
            .map(Some);
    }
    Ok(None)
}

/// What a one-shot sync does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Send local changes to the peer.
    Push,
    /// Take the peer's changes.
    Pull,
    /// Both.
    Both,
}

/// Which shards a one-shot sync covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every shard whose name starts with this (empty: all).
    Prefix(String),
    /// These shards.
    Names(Vec<String>),
}

/// What a one-shot sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Shards synced without error.
    pub shards: usize,
    /// Changes sent.
    pub sent: u64,
    /// Changes received.
    pub received: u64,
    /// Received changes that won and were stored.
    pub applied: u64,
    /// Two-way sessions that ended with equal digests.
    pub converged: usize,
    /// Snapshots received (this side was behind the peer's tombstone collection) and sent.
    pub snapshots: (usize, usize),
    /// Tombstones collected here after the sessions (every member holds them).
    pub collected: u64,
    /// Shards whose changes were not sent: this root is behind the peer's tombstone
    /// collection and must take a snapshot first (a pull or a two-way sync does).
    pub held_back: usize,
    /// UDP payload bytes sent and received on the connection.
    pub bytes_sent: u64,
    /// See `bytes_sent`.
    pub bytes_received: u64,
    /// Wall time, ms: connection, TLS handshake and every session (not the connection's close).
    pub ms: f64,
    /// Shards that failed, with why.
    pub failures: BTreeMap<String, String>,
}

/// Syncs the shards `selection` names between `manager`'s root and the node `peer_id` at
/// `addr`, once, in `direction`: one connection, a stream per shard (at most 8 at a time).
/// Shards the peer has and this root lacks are created here with the peer's profile (pull,
/// both); the peer creates the ones it lacks (push, both) if this node may push them.
///
/// # Errors
/// [`SyncError::Connection`] when the peer is unreachable or the handshake fails (the peer
/// does not trust this node, or its key is not `peer_id`); [`SyncError::Proto`] when the
/// peer refuses the listing. A failure of one shard is reported in [`Report::failures`].
pub async fn sync_once(
    manager: Arc<ShardManager>,
    identity: &Identity,
    addr: SocketAddr,
    peer_id: &str,
    direction: Direction,
    selection: &Selection,
    cfg: Config,
) -> Result<Report, SyncError> {
    let t0 = Instant::now();
    let peer = PeerConnection::connect(identity, addr, peer_id).await?;
    let result = peer.sync(manager, direction, selection, cfg).await;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let stats = peer.conn.stats();
    peer.close().await;
    let mut report = result?;
    report.bytes_sent = stats.udp_tx.bytes;
    report.bytes_received = stats.udp_rx.bytes;
    report.ms = ms;
    Ok(report)
}

/// An open connection to a peer node (QUIC, mutual TLS on pinned keys): sync over it as often
/// as needed without a new handshake ([`PeerConnection::sync`]), then
/// [`PeerConnection::close`] it. [`sync_once`] is connect, sync, close.
pub struct PeerConnection {
    endpoint: Endpoint,
    conn: Connection,
    addr: SocketAddr,
}

impl PeerConnection {
    /// Connects to the node `peer_id` at `addr` as `identity`.
    ///
    /// # Errors
    /// [`SyncError::Connection`] when the peer is unreachable or the handshake fails (the
    /// peer does not trust this node, or its key is not `peer_id`);
    /// [`SyncError::InvalidArgument`] for a malformed `peer_id`; [`SyncError::Tls`].
    pub async fn connect(
        identity: &Identity,
        addr: SocketAddr,
        peer_id: &str,
    ) -> Result<PeerConnection, SyncError> {
        let peer_id = parse_node_id(peer_id)?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("address")
        } else {
            "0.0.0.0:0".parse().expect("address")
        };
        let mut endpoint = Endpoint::client(bind)?;
        endpoint.set_default_client_config(tls::client_config(identity, &peer_id)?);
        let conn = endpoint
            .connect(addr, "sqlite-vector-peer")
            .map_err(conn_error)?
            .await
            .map_err(|e| {
                SyncError::Connection(format!(
                    "{addr}: {e} (is this node in the peer's trust list, and is {peer_id} its id?)"
                ))
            })?;
        Ok(PeerConnection {
            endpoint,
            conn,
            addr,
        })
    }

    /// Syncs the shards `selection` names between `manager`'s root and the peer, once, in
    /// `direction` (as [`sync_once`], on this connection). The report's bytes and ms are this
    /// call's.
    ///
    /// # Errors
    /// As [`sync_once`] after the handshake.
    pub async fn sync(
        &self,
        manager: Arc<ShardManager>,
        direction: Direction,
        selection: &Selection,
        cfg: Config,
    ) -> Result<Report, SyncError> {
        let t0 = Instant::now();
        let before = self.conn.stats();
        // In TLS 1.3 the client's handshake completes before the server has checked the
        // client's key: a server that does not trust this node closes the connection right
        // after.
        let mut report = sync_on(&self.conn, manager, direction, selection, cfg)
            .await
            .map_err(|e| match e {
                SyncError::Connection(m) => SyncError::Connection(format!(
                    "{}: {m} (is this node in the peer's trust list?)",
                    self.addr
                )),
                e => e,
            })?;
        let after = self.conn.stats();
        report.bytes_sent = after.udp_tx.bytes - before.udp_tx.bytes;
        report.bytes_received = after.udp_rx.bytes - before.udp_rx.bytes;
        report.ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(report)
    }

    /// Syncs one shard that need not live in a root (a shard file, an in-memory shard) with
    /// the peer's shard `name`, once: `send` this shard's changes, `receive` the peer's
    /// (the peer creates `name` with this shard's profile when it lacks it and this node may
    /// push). `members` are the nodes tombstone collection waits for
    /// ([`sqlite_vector::Shard::collect_tombstones`]).
    ///
    /// # Errors
    /// [`SyncError::Connection`]; [`SyncError::Proto`] when either side refuses the session
    /// (grant, profile, name).
    pub async fn sync_shard(
        &self,
        name: &str,
        shard: &Shard,
        members: &[String],
        send: bool,
        receive: bool,
        cfg: Config,
    ) -> Result<Outcome, SyncError> {
        let peer = peer_id(&self.conn);
        let store = ShardStore {
            shard,
            peer_node: peer.as_deref(),
            members,
        };
        run_sessions(&self.conn, name, &store, send, receive, cfg).await
    }

    /// Closes the connection: the close frame goes out at once; the endpoint is not waited for
    /// past 5 ms (its draining period, three probe timeouts, ≈ 80 ms on loopback, is the
    /// peer's business).
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_millis(5), self.endpoint.wait_idle()).await;
    }
}

/// Keeps syncing the shards `selection` names with the node `peer_id` at `addr` until `stop`
/// completes: one connection (re-made after a loss, every second); a shard whose head moves
/// (a commit here, by any process) is synced both ways within `poll` (checked every `poll`);
/// every shard is synced both ways every `pull_every` to take the peer's commits (run `live`
/// on both sides for real-time both ways). `on_round` sees each round's report.
///
/// # Errors
/// [`SyncError::InvalidArgument`] for a bad node id. Connection losses are retried.
#[allow(clippy::too_many_arguments)]
pub async fn sync_live(
    manager: Arc<ShardManager>,
    identity: &Identity,
    addr: SocketAddr,
    peer_id: &str,
    selection: &Selection,
    poll: Duration,
    pull_every: Duration,
    stop: impl Future<Output = ()>,
    mut on_round: impl FnMut(&Report),
) -> Result<(), SyncError> {
    parse_node_id(peer_id)?;
    tokio::pin!(stop);
    let mut heads: BTreeMap<String, i64> = BTreeMap::new();
    'connect: loop {
        let peer = tokio::select! {
            () = &mut stop => break,
            c = PeerConnection::connect(identity, addr, peer_id) => c,
        };
        let peer = match peer {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("live sync: {e}; retrying in 1 s");
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut last_full = None::<Instant>;
        loop {
            let full = last_full.is_none_or(|t: Instant| t.elapsed() >= pull_every);
            // The heads before the round: a commit made while it runs moves the head past
            // them and gets a round of its own (as do the changes the round applies here,
            // once: that round sends nothing).
            let head = |name: &str| manager.open_shard(name).and_then(|s| s.head());
            let (selected, before) = tokio::task::block_in_place(|| {
                if full {
                    let prefix = match selection {
                        Selection::Prefix(p) => Some(p.as_str()),
                        Selection::Names(_) => None,
                    };
                    let before: BTreeMap<String, i64> = manager
                        .list(prefix)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|i| match selection {
                            Selection::Names(n) => n.contains(&i.name),
                            Selection::Prefix(_) => true,
                        })
                        .filter_map(|i| head(&i.name).ok().map(|h| (i.name, h)))
                        .collect();
                    (selection.clone(), before)
                } else {
                    // Only the shards whose head moved since their last round.
                    let before: BTreeMap<String, i64> = heads
                        .iter()
                        .filter_map(|(name, seen)| {
                            head(name)
                                .ok()
                                .filter(|h| h != seen)
                                .map(|h| (name.clone(), h))
                        })
                        .collect();
                    (Selection::Names(before.keys().cloned().collect()), before)
                }
            });
            if !matches!(&selected, Selection::Names(n) if n.is_empty()) {
                match peer
                    .sync(
                        manager.clone(),
                        Direction::Both,
                        &selected,
                        Config::default(),
                    )
                    .await
                {
                    Ok(report) => {
                        heads.extend(before);
                        on_round(&report);
                    }
                    Err(e) => {
                        tracing::warn!("live sync: {e}; reconnecting");
                        continue 'connect;
                    }
                }
                if full {
                    last_full = Some(Instant::now());
                }
            }
            tokio::select! {
                () = &mut stop => {
                    peer.close().await;
                    break 'connect;
                }
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
    Ok(())
}

async fn list_remote(
    conn: &Connection,
    selection: &Selection,
) -> Result<Vec<(String, WireProfile)>, SyncError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(conn_error)?;
    let (prefix, names) = match selection {
        Selection::Prefix(p) => (p.clone(), Vec::new()),
        Selection::Names(n) => (String::new(), n.clone()),
    };
    write_frame(&mut send, &Frame::List { prefix, names }).await?;
    let _ = send.finish();
    let mut dec = Decoder::new();
    match read_frame(&mut recv, &mut dec).await? {
        Some(Frame::Shards { shards }) => Ok(shards),
        Some(Frame::Reject { code, message }) => Err(ProtoError::Rejected { code, message }.into()),
        other => Err(ProtoError::Unexpected(format!("a listing answered with {other:?}")).into()),
    }
}

async fn sync_on(
    conn: &Connection,
    manager: Arc<ShardManager>,
    direction: Direction,
    selection: &Selection,
    cfg: Config,
) -> Result<Report, SyncError> {
    let (send, receive) = match direction {
        Direction::Push => (true, false),
        Direction::Pull => (false, true),
        Direction::Both => (true, true),
    };
    // The shards: the peer's (pull, both), this root's (push, both).
    let mut wanted: BTreeMap<String, Option<WireProfile>> = BTreeMap::new();
    if receive {
        for (name, p) in list_remote(conn, selection).await? {
            wanted.insert(name, Some(p));
        }
    }
    if send {
        let local = tokio::task::block_in_place(|| match selection {
            Selection::Prefix(p) => manager.list(Some(p)),
            Selection::Names(_) => manager.list(None),
        })?;
        for info in local {
            if let Selection::Names(n) = selection {
                if !n.contains(&info.name) {
                    continue;
                }
            }
            wanted.entry(info.name).or_insert(None);
        }
    }
    let mut report = Report::default();
    if let Selection::Names(n) = selection {
        for name in n {
            if !wanted.contains_key(name) {
                report
                    .failures
                    .insert(name.clone(), "no such shard on either side".into());
            }
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, remote_profile) in wanted {
        let (conn, manager, limit) = (conn.clone(), manager.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let r = sync_shard(&conn, &manager, &name, remote_profile, send, receive, cfg).await;
            (name, r)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (name, r) = done.map_err(conn_error)?;
        match r {
            Ok(out) => {
                report.shards += 1;
                report.sent += out.sent;
                report.received += out.received;
                report.applied += out.counts.applied;
                report.converged += usize::from(out.converged);
                report.snapshots.0 += usize::from(out.snapshot_received);
                report.snapshots.1 += usize::from(out.snapshot_sent);
                report.collected += out.collected;
                report.held_back += usize::from(out.held_back && !out.snapshot_received);
            }
            Err(e) => {
                report.failures.insert(name, e.to_string());
            }
        }
    }
    Ok(report)
}

async fn sync_shard(
    conn: &Connection,
    manager: &ShardManager,
    name: &str,
    remote_profile: Option<WireProfile>,
    send: bool,
    receive: bool,
    cfg: Config,
) -> Result<Outcome, SyncError> {
    let shard = tokio::task::block_in_place(|| match &remote_profile {
        Some(p) if !manager.exists(name)? => manager.get_or_create(name, &profile_of(p)),
        _ => manager.open_shard(name),
    })?;
    let members = TrustList::load(manager.root())?.members(name);
    let peer = peer_id(conn);
    let store = ShardStore {
        shard: &shard,
        peer_node: peer.as_deref(),
        members: &members,
    };
    run_sessions(conn, name, &store, send, receive, cfg).await
}

/// Runs one shard's session on `conn` (again after a snapshot in a two-way sync), returning
/// the outcomes summed.
async fn run_sessions(
    conn: &Connection,
    name: &str,
    store: &ShardStore<'_>,
    send: bool,
    receive: bool,
    cfg: Config,
) -> Result<Outcome, SyncError> {
    let mut total = Outcome::default();
    // A session with a snapshot runs one way (the side taking it sends nothing yet): a
    // two-way sync runs again, as a delta.
    for round in 0..3 {
        let (mut tx, mut rx) = conn.open_bi().await.map_err(conn_error)?;
        let mut session =
            tokio::task::block_in_place(|| Session::initiate(name, store, send, receive, cfg))?;
        let mut dec = Decoder::new();
        let out = drive(&mut session, store, &mut tx, &mut rx, &mut dec, None).await?;
        // Wait (briefly) for the peer to read this side's last frames before the connection
        // closes.
        let _ = tokio::time::timeout(Duration::from_secs(2), tx.stopped()).await;
        let again = send && receive && (out.snapshot_received || out.snapshot_sent) && round < 2;
        total = total.then(out);
        if !again {
            break;
        }
    }
    Ok(total)
}
