//! One shard's sync session with one peer: a deterministic state machine (frames in, frames
//! out; no sockets, no clock), driven over any ordered, reliable byte stream.
//!
//! The initiator sends its [`Hello`] first; the responder answers with its own once it has
//! checked the initiator's (protocol version, grants, profile). Each side then knows what the
//! other has of its changes: the other's sync cursor for its site id. A side that sends
//! ([`Hello::send`] here and [`Hello::receive`] there) streams its change feed from that cursor
//! in [`Chunk`]s, at most `window` unacknowledged; the receiver applies each chunk in one
//! transaction that also moves its cursor, and only then acknowledges it, so a cursor never
//! runs ahead of the data and a dropped connection costs at most the unacknowledged chunks.
//! Changes the receiving shard made itself (same site id) are left out of the chunks: it holds
//! them or newer versions. When both directions are done each side sends a [`Frame::Fin`] with
//! its digest: equal digests after a two-way session mean the shards hold the same items.
//!
//! Tombstones. Each side records how far the peer holds its changes (the peer's cursor from its
//! hello, then what it acknowledged) and, at the end of a session, collects the tombstones every
//! peer of the shard holds ([`sqlite_vector::Shard::collect_tombstones`]). A receiver whose
//! cursor is below the sender's collection bound ([`Hello::horizon`]) could miss a delete: it
//! gets a *snapshot* instead of a delta, every item the sender holds (its own included), and
//! then deletes the items the sender no longer holds though it had seen them
//! ([`sqlite_vector::WriteTx::delete_unheld`]). A snapshot's cursor moves only with that last
//! step, so a dropped snapshot starts over.

use std::collections::{HashSet, VecDeque};

use sqlite_vector::{Applied, Change, PeerAck, SiteId, SyncState};

use super::frame::{
    build_chunk, open_chunk, Chunk, Frame, Hello, RejectCode, WireProfile, PROTOCOL_VERSION,
};
use super::ProtoError;

/// The shard a session reads and writes: a [`sqlite_vector::Shard`], or anything that keeps
/// the same promises.
pub trait Store {
    /// The shard's profile.
    fn profile(&self) -> WireProfile;
    /// Its sync state (head, cursors, digest), in one snapshot.
    ///
    /// # Errors
    /// The shard's error.
    fn sync_state(&self) -> Result<SyncState, sqlite_vector::Error>;
    /// The changes the peer shard with site id `peer` lacks among the next `limit` of the
    /// feed after local version `since`, oldest first, and the highest version read (`since`
    /// when none): [`sqlite_vector::Shard::changes_for`]. With `peer` `None`, every change
    /// (a snapshot: [`sqlite_vector::Shard::changes_since`]).
    ///
    /// # Errors
    /// The shard's error.
    fn changes_for(
        &self,
        peer: Option<SiteId>,
        since: i64,
        limit: usize,
    ) -> Result<(Vec<Change>, i64), sqlite_vector::Error>;
    /// Applies `changes` delivered by the shard with site id `site` and sets its cursor to
    /// `to` (leaves it when `None`: a snapshot's chunks), all in one transaction; nothing is
    /// stored on error.
    ///
    /// # Errors
    /// The shard's error (a change it refuses: wrong dimension, NaN, a clock too far ahead...).
    fn apply(
        &self,
        site: SiteId,
        to: Option<i64>,
        changes: &[Change],
    ) -> Result<ApplyCounts, sqlite_vector::Error>;
    /// Ends a snapshot from the shard with site id `site`, in one transaction: deletes the
    /// live items it no longer holds (not in `held`) though it had seen them
    /// ([`sqlite_vector::WriteTx::delete_unheld`], `peer_has_through` its cursor for this
    /// shard) and sets its cursor to `to`. Returns how many items were deleted.
    ///
    /// # Errors
    /// The shard's error.
    fn reconcile(
        &self,
        site: SiteId,
        peer_has_through: i64,
        held: &HashSet<String>,
        to: i64,
    ) -> Result<u64, sqlite_vector::Error>;
    /// Records that the peer shard with site id `site` holds this shard's changes up to
    /// `acked` ([`sqlite_vector::WriteTx::set_peer_ack`]), then, when `collect` is
    /// `Some(expiry)`, collects the tombstones every member holds
    /// ([`sqlite_vector::Shard::collect_tombstones`]). Returns the tombstones removed.
    ///
    /// # Errors
    /// The shard's error.
    fn acknowledge(
        &self,
        site: SiteId,
        acked: i64,
        collect: Option<Option<i64>>,
    ) -> Result<u64, sqlite_vector::Error>;
}

/// What applying changes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Changes that won and were stored.
    pub applied: u64,
    /// Changes that lost to a stored version (recorded as seen).
    pub stale: u64,
    /// Changes already stored.
    pub duplicate: u64,
}

/// A shard as a sync [`Store`], with what tombstone collection needs to know: the peer's node
/// (its identity in the trust list, recorded with its acknowledgements) and the members, every
/// node that may sync this shard with this one (see
/// [`sqlite_vector::Shard::collect_tombstones`]). [`ShardStore::bare`] has neither: it records
/// acknowledgements and collects by the peers that synced only.
#[derive(Clone, Copy)]
pub struct ShardStore<'a> {
    /// The shard.
    pub shard: &'a sqlite_vector::Shard,
    /// The peer's node id, if known.
    pub peer_node: Option<&'a str>,
    /// The nodes whose acknowledgement tombstone collection waits for.
    pub members: &'a [String],
}

impl Store for ShardStore<'_> {
    fn profile(&self) -> WireProfile {
        WireProfile::of(self.shard.profile())
    }
    fn sync_state(&self) -> Result<SyncState, sqlite_vector::Error> {
        self.shard.sync_state()
    }
    fn changes_for(
        &self,
        peer: Option<SiteId>,
        since: i64,
        limit: usize,
    ) -> Result<(Vec<Change>, i64), sqlite_vector::Error> {
        match peer {
            Some(peer) => self.shard.changes_for(peer, since, limit),
            None => {
                let changes = self.shard.changes_since(since, limit)?;
                let to = changes.last().map_or(since, |c| c.seq);
                Ok((changes, to))
            }
        }
    }
    fn apply(
        &self,
        site: SiteId,
        to: Option<i64>,
        changes: &[Change],
    ) -> Result<ApplyCounts, sqlite_vector::Error> {
        self.shard.transaction(|tx| {
            let mut n = ApplyCounts::default();
            for c in changes {
                match tx.apply_remote_via(c, Some(site))? {
                    Applied::Applied => n.applied += 1,
                    Applied::Stale => n.stale += 1,
                    Applied::Duplicate => n.duplicate += 1,
                }
            }
            if let Some(to) = to {
                tx.set_cursor(site, to)?;
            }
            Ok(n)
        })
    }
    fn reconcile(
        &self,
        site: SiteId,
        peer_has_through: i64,
        held: &HashSet<String>,
        to: i64,
    ) -> Result<u64, sqlite_vector::Error> {
        self.shard.transaction(|tx| {
            let gone = tx.delete_unheld(site, peer_has_through, |id| held.contains(id))?;
            tx.set_cursor(site, to)?;
            Ok(gone.len() as u64)
        })
    }
    fn acknowledge(
        &self,
        site: SiteId,
        acked: i64,
        collect: Option<Option<i64>>,
    ) -> Result<u64, sqlite_vector::Error> {
        self.shard
            .transaction(|tx| tx.set_peer_ack(site, acked, self.peer_node))?;
        match collect {
            Some(expiry) => Ok(self.shard.collect_tombstones(self.members, expiry)?.removed),
            None => Ok(0),
        }
    }
}

impl<'a> ShardStore<'a> {
    /// `shard` with no peer node and no members (collects nothing).
    pub fn bare(shard: &'a sqlite_vector::Shard) -> ShardStore<'a> {
        ShardStore {
            shard,
            peer_node: None,
            members: &[],
        }
    }
}

/// Session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most changes per chunk.
    pub chunk_changes: usize,
    /// Target bytes of vectors per chunk (before compression): the chunk size for wide vectors.
    pub chunk_bytes: usize,
    /// Most unacknowledged chunks in flight (what a dropped connection may cost).
    pub window: usize,
    /// Collect, at the end of a session, the tombstones every member holds (see
    /// [`ShardStore`]).
    pub collect_tombstones: bool,
    /// A peer not heard from for this long (ms) no longer holds back tombstone collection
    /// (see [`sqlite_vector::Shard::collect_tombstones`]); `None`: every peer, forever. With
    /// an expiry each session writes the peer's visit; without, only a moved acknowledgement.
    pub peer_expiry_ms: Option<i64>,
}

impl Default for Config {
    /// 512 changes or 1 MiB of vectors per chunk, one chunk in flight; tombstones collected
    /// once every peer holds them, no peer ever written off.
    fn default() -> Config {
        Config {
            chunk_changes: 512,
            chunk_bytes: 1 << 20,
            window: 1,
            collect_tombstones: true,
            peer_expiry_ms: None,
        }
    }
}

/// What a side may do for its peer, from the trust list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The peer may pull this shard's changes.
    pub pull: bool,
    /// The peer may push changes into this shard.
    pub push: bool,
}

/// What a finished session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Changes sent to the peer.
    pub sent: u64,
    /// Changes received from the peer.
    pub received: u64,
    /// What applying the received changes did.
    pub counts: ApplyCounts,
    /// Chunks sent and received.
    pub chunks: (u64, u64),
    /// This shard's state at the end: digest, head, live items.
    pub local: (u64, i64, u64),
    /// The peer's, from its [`Frame::Fin`].
    pub peer: (u64, i64, u64),
    /// Both directions ran and the digests are equal: the shards hold the same live items.
    pub converged: bool,
    /// This side sent a snapshot (the peer was behind this shard's tombstone collection).
    pub snapshot_sent: bool,
    /// This side received a snapshot (it was behind the peer's tombstone collection).
    pub snapshot_received: bool,
    /// Items a received snapshot deleted here (deletes whose tombstones the peer collected).
    pub snapshot_deleted: u64,
    /// Tombstones collected here at the end of the session.
    pub collected: u64,
    /// This side was to send but did not: it is behind the peer's tombstone collection and
    /// must take a snapshot first (a pull, or a two-way sync, does).
    pub held_back: bool,
    /// This side was to receive but did not: the peer is behind this side's tombstone
    /// collection and must take a snapshot first.
    pub refused: bool,
}

impl Outcome {
    /// `self` followed by the session `next` on the same shard and connection: counts, chunks,
    /// deletions and collections summed, snapshot flags of either, and the rest (end states,
    /// `converged`, `held_back`, `refused`) as `next` left them.
    pub fn then(self, next: Outcome) -> Outcome {
        Outcome {
            sent: self.sent + next.sent,
            received: self.received + next.received,
            counts: ApplyCounts {
                applied: self.counts.applied + next.counts.applied,
                stale: self.counts.stale + next.counts.stale,
                duplicate: self.counts.duplicate + next.counts.duplicate,
            },
            chunks: (self.chunks.0 + next.chunks.0, self.chunks.1 + next.chunks.1),
            snapshot_sent: self.snapshot_sent || next.snapshot_sent,
            snapshot_received: self.snapshot_received || next.snapshot_received,
            snapshot_deleted: self.snapshot_deleted + next.snapshot_deleted,
            collected: self.collected + next.collected,
            ..next
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's hello.
    Hello,
    /// Exchanging changes.
    Running,
    /// Both sides sent their fin.
    Finished,
    /// Failed (an error was reported; a reject may be queued).
    Failed,
}

/// One shard's sync session with one peer (see the [module docs](self)).
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    phase: Phase,
    local: Hello,
    peer: Option<Hello>,
    /// This side sends its changes (both sides agreed).
    sending: bool,
    /// This side takes the peer's changes.
    receiving: bool,
    /// The version after which the next chunk starts.
    next_from: i64,
    /// `to` of each unacknowledged chunk, oldest first.
    in_flight: VecDeque<i64>,
    sent_done: bool,
    /// The version after which the next received chunk must start.
    expect_from: i64,
    peer_done: bool,
    sent_fin: bool,
    peer_fin: Option<(u64, i64, u64)>,
    outcome: Outcome,
    out: VecDeque<Frame>,
    /// What the shard had recorded of the peer's acknowledgement when the session began.
    peers: Vec<PeerAck>,
    /// The peer's cursor for this shard, from its hello (0 when it is past this head).
    theirs: i64,
    /// This side sends a snapshot.
    snap_out: bool,
    /// This side receives a snapshot: the ids received so far.
    snap_in: Option<HashSet<String>>,
    /// This side opened the session.
    initiator: bool,
}

fn cursor_for(cursors: &[(SiteId, i64)], site: SiteId) -> i64 {
    cursors
        .iter()
        .find(|(s, _)| *s == site)
        .map_or(0, |(_, v)| *v)
}

fn hello_of(
    shard: &str,
    store: &impl Store,
    send: bool,
    receive: bool,
) -> Result<(Hello, Vec<PeerAck>), ProtoError> {
    let st = store.sync_state()?;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        send,
        receive,
        shard: shard.to_string(),
        profile: store.profile(),
        site: st.site_id,
        head: st.head,
        digest: st.digest,
        live: st.live,
        horizon: st.horizon,
        cursors: st.cursors.iter().map(|c| (c.site_id, c.seq)).collect(),
    };
    Ok((hello, st.peers))
}

impl Session {
    /// The initiator's session for `shard`: it will send its changes (`send`) and/or take the
    /// peer's (`receive`). Its hello is queued ([`Session::poll_transmit`]).
    ///
    /// # Errors
    /// [`ProtoError::Store`] reading the shard's state.
    pub fn initiate(
        shard: &str,
        store: &impl Store,
        send: bool,
        receive: bool,
        cfg: Config,
    ) -> Result<Session, ProtoError> {
        let (local, peers) = hello_of(shard, store, send, receive)?;
        let mut s = Session::new(cfg, local);
        s.peers = peers;
        s.initiator = true;
        s.out.push_back(Frame::Hello(s.local.clone()));
        Ok(s)
    }

    /// The responder's session, from the initiator's `hello` (its first frame), for the shard
    /// `store` it names and what the trust list `grant`s that peer. Checks the protocol
    /// version, the grant and the profile: on a refusal the session has failed with a
    /// [`Frame::Reject`] queued for the peer (send it, then close), and the error comes with
    /// it. Otherwise its hello, and its first chunks if it sends, are queued.
    ///
    /// # Errors
    /// (beside the session) [`ProtoError::Refused`] (version, grant, profile);
    /// [`ProtoError::Store`].
    pub fn respond(
        hello: Hello,
        store: &impl Store,
        grant: Grant,
        cfg: Config,
    ) -> (Session, Result<(), ProtoError>) {
        let local = match hello_of(&hello.shard, store, hello.receive, hello.send) {
            Ok((h, peers)) => (h, peers),
            Err(e) => {
                let blank = Hello {
                    version: PROTOCOL_VERSION,
                    send: false,
                    receive: false,
                    shard: hello.shard.clone(),
                    profile: hello.profile.clone(),
                    site: SiteId::default(),
                    head: 0,
                    digest: 0,
                    live: 0,
                    horizon: 0,
                    cursors: Vec::new(),
                };
                let mut s = Session::new(cfg, blank);
                let e = s.fail(RejectCode::Storage, e);
                return (s, Err(e));
            }
        };
        let (local, peers) = local;
        let mut s = Session::new(cfg, local);
        s.peers = peers;
        if (hello.receive && !grant.pull) || (hello.send && !grant.push) {
            let what = match (hello.receive && !grant.pull, hello.send && !grant.push) {
                (true, true) => "pull from or push to",
                (true, false) => "pull from",
                _ => "push to",
            };
            let e = ProtoError::Refused {
                code: RejectCode::Forbidden,
                message: format!("this peer may not {what} shard {:?}", hello.shard),
            };
            let e = s.fail(RejectCode::Forbidden, e);
            return (s, Err(e));
        }
        if let Err(e) = s.check_peer(&hello) {
            return (s, Err(e));
        }
        s.out.push_back(Frame::Hello(s.local.clone()));
        let r = s.start(hello, store);
        (s, r)
    }

    fn new(cfg: Config, local: Hello) -> Session {
        Session {
            cfg: Config {
                chunk_changes: cfg.chunk_changes.clamp(1, super::frame::MAX_CHUNK_CHANGES),
                chunk_bytes: cfg.chunk_bytes.max(1),
                window: cfg.window.max(1),
                ..cfg
            },
            phase: Phase::Hello,
            local,
            peer: None,
            sending: false,
            receiving: false,
            next_from: 0,
            in_flight: VecDeque::new(),
            sent_done: false,
            expect_from: 0,
            peer_done: false,
            sent_fin: false,
            peer_fin: None,
            outcome: Outcome::default(),
            out: VecDeque::new(),
            peers: Vec::new(),
            theirs: 0,
            snap_out: false,
            snap_in: None,
            initiator: false,
        }
    }

    /// Fails the session: queues a reject for the peer (unless the error is the peer's own
    /// reject) and returns the error.
    fn fail(&mut self, code: RejectCode, e: ProtoError) -> ProtoError {
        self.phase = Phase::Failed;
        if !matches!(e, ProtoError::Rejected { .. } | ProtoError::Closed) {
            let message = match &e {
                ProtoError::Refused { message, .. } => message.clone(),
                other => other.to_string(),
            };
            self.out.clear();
            self.out.push_back(Frame::Reject { code, message });
        }
        e
    }

    /// Checks the peer's hello: protocol version and profile.
    fn check_peer(&mut self, hello: &Hello) -> Result<(), ProtoError> {
        if hello.version != PROTOCOL_VERSION {
            let e = ProtoError::Refused {
                code: RejectCode::Version,
                message: format!(
                    "protocol version {} here, {} at the peer",
                    PROTOCOL_VERSION, hello.version
                ),
            };
            return Err(self.fail(RejectCode::Version, e));
        }
        if let Some(why) = self.local.profile.mismatch(&hello.profile) {
            let e = ProtoError::Refused {
                code: RejectCode::Profile,
                message: format!("shard {:?}: profiles differ: {why}", self.local.shard),
            };
            return Err(self.fail(RejectCode::Profile, e));
        }
        if hello.site == self.local.site {
            let e = ProtoError::Refused {
                code: RejectCode::Protocol,
                message: format!(
                    "shard {:?} has the same site id on both sides (a copied file): sync \
                     between copies would skip changes; give one of them a new identity",
                    self.local.shard
                ),
            };
            return Err(self.fail(RejectCode::Protocol, e));
        }
        Ok(())
    }

    /// Both hellos are known: decide the directions and start sending.
    fn start(&mut self, peer: Hello, store: &impl Store) -> Result<(), ProtoError> {
        // The peer's cursor for this shard, unless it is past this shard's head: then this
        // shard's versions restarted (a restored file) and everything is sent again.
        let theirs = cursor_for(&peer.cursors, self.local.site);
        self.theirs = if theirs > self.local.head { 0 } else { theirs };
        let mine = cursor_for(&self.local.cursors, peer.site);
        let mine = if mine > peer.head { 0 } else { mine };
        // A side whose cursor is below the other's tombstone collection could miss deletes:
        // it gets a snapshot, and its changes are not taken in that session (it may hold
        // versions older than a collected delete, which only the snapshot's reconciliation can
        // tell). When both are behind, the initiator takes its snapshot first. Both sides
        // decide the same from the two hellos.
        let peer_behind = self.theirs < self.local.horizon;
        let self_behind = mine < peer.horizon;
        let (self_behind, peer_behind) = match (self_behind, peer_behind) {
            (true, true) => (self.initiator, !self.initiator),
            other => other,
        };
        self.outcome.held_back = self_behind && self.local.send && peer.receive;
        self.sending = self.local.send && peer.receive && !self_behind;
        self.receiving = self.local.receive && peer.send && !peer_behind;
        self.snap_out = self.sending && peer_behind;
        self.outcome.refused = peer_behind && self.local.receive && peer.send;
        self.outcome.snapshot_sent = self.snap_out;
        self.next_from = if self.snap_out { 0 } else { self.theirs };
        if self.receiving && self_behind {
            self.snap_in = Some(HashSet::new());
            self.outcome.snapshot_received = true;
            self.expect_from = 0;
        } else {
            self.expect_from = mine;
        }
        self.peer = Some(peer);
        self.phase = Phase::Running;
        self.pump(store)
    }

    /// Takes one frame from the peer.
    ///
    /// # Errors
    /// [`ProtoError::Rejected`] when the peer refused the session; [`ProtoError::Refused`],
    /// [`ProtoError::Unexpected`] or [`ProtoError::Malformed`] when this side refuses what it
    /// sent (a reject is queued); [`ProtoError::Store`] when applying or reading changes
    /// failed. After an error the session is over.
    pub fn handle(&mut self, frame: Frame, store: &impl Store) -> Result<(), ProtoError> {
        if self.phase == Phase::Failed {
            return Err(ProtoError::Closed);
        }
        let r = self.handle_inner(frame, store);
        if let Err(e) = &r {
            if self.phase != Phase::Failed {
                let code = match e {
                    ProtoError::Store(_) => RejectCode::Storage,
                    ProtoError::Refused { code, .. } => *code,
                    _ => RejectCode::Protocol,
                };
                let e = r.unwrap_err();
                return Err(self.fail(code, e));
            }
        }
        r
    }

    fn handle_inner(&mut self, frame: Frame, store: &impl Store) -> Result<(), ProtoError> {
        match (frame, &self.phase) {
            (Frame::Reject { code, message }, _) => {
                self.phase = Phase::Failed;
                Err(ProtoError::Rejected { code, message })
            }
            (Frame::Hello(h), Phase::Hello) => {
                self.check_peer(&h)?;
                if h.shard != self.local.shard {
                    return Err(ProtoError::Unexpected(format!(
                        "asked for shard {:?}, the peer answered for {:?}",
                        self.local.shard, h.shard
                    )));
                }
                self.start(h, store)
            }
            (Frame::Chunk(c), Phase::Running) if self.receiving && !self.peer_done => {
                self.take_chunk(c, store)
            }
            (Frame::Ack { to }, Phase::Running) if self.sending => {
                match self.in_flight.front() {
                    Some(&t) if t == to => {
                        self.in_flight.pop_front();
                    }
                    _ => {
                        return Err(ProtoError::Unexpected(format!(
                            "an ack for version {to}, expected {:?}",
                            self.in_flight.front()
                        )))
                    }
                }
                self.pump(store)
            }
            (Frame::Done { last, head }, Phase::Running) if self.receiving && !self.peer_done => {
                if last != self.expect_from || head < last {
                    return Err(ProtoError::Unexpected(format!(
                        "the peer finished at version {head} after its chunks reached {last}, \
                         but they reached {} here",
                        self.expect_from
                    )));
                }
                let site = self.peer.as_ref().expect("running has a peer").site;
                if let Some(held) = self.snap_in.take() {
                    // The snapshot is whole: drop what the peer deleted, then the cursor.
                    let n = store.reconcile(site, self.theirs, &held, head)?;
                    self.outcome.snapshot_deleted = n;
                    self.expect_from = head;
                } else if head > self.expect_from {
                    // Past the last chunk, the peer's feed held only versions this shard
                    // has: the cursor moves there without data.
                    store.apply(site, Some(head), &[])?;
                    self.expect_from = head;
                }
                self.peer_done = true;
                self.maybe_fin(store)
            }
            (Frame::Fin { digest, head, live }, Phase::Running) if self.peer_fin.is_none() => {
                self.peer_fin = Some((digest, head, live));
                self.maybe_fin(store)
            }
            (f, phase) => Err(ProtoError::Unexpected(format!(
                "{} while {}",
                frame_name(&f),
                match phase {
                    Phase::Hello => "waiting for the hello",
                    Phase::Running => "exchanging changes",
                    Phase::Finished => "finished",
                    Phase::Failed => "failed",
                }
            ))),
        }
    }

    fn take_chunk(&mut self, c: Chunk, store: &impl Store) -> Result<(), ProtoError> {
        if c.from != self.expect_from {
            return Err(ProtoError::Unexpected(format!(
                "a chunk from version {}, expected {}",
                c.from, self.expect_from
            )));
        }
        // (`to` may pass the head the peer's hello gave: in a two-way session the peer's feed
        // grows by what it applies from this side, which it leaves out of its chunks.)
        let peer = self.peer.as_ref().expect("running has a peer");
        let changes = open_chunk(&c, self.local.profile.dimension)?;
        let n = match &mut self.snap_in {
            Some(held) => {
                held.extend(changes.iter().map(|c| c.id.clone()));
                store.apply(peer.site, None, &changes)?
            }
            None => store.apply(peer.site, Some(c.to), &changes)?,
        };
        self.expect_from = c.to;
        self.outcome.received += changes.len() as u64;
        self.outcome.chunks.1 += 1;
        self.outcome.counts.applied += n.applied;
        self.outcome.counts.stale += n.stale;
        self.outcome.counts.duplicate += n.duplicate;
        self.out.push_back(Frame::Ack { to: c.to });
        Ok(())
    }

    /// Sends chunks while the window allows, then `Done`.
    fn pump(&mut self, store: &impl Store) -> Result<(), ProtoError> {
        if self.sending {
            let peer_site = self.peer.as_ref().expect("running has a peer").site;
            let per_change = self.local.profile.dimension as usize * 4 + 64;
            let limit = (self.cfg.chunk_bytes / per_change).clamp(1, self.cfg.chunk_changes);
            while !self.sent_done && self.in_flight.len() < self.cfg.window {
                // Versions the peer made, or delivered here, are left out: it holds them or
                // newer ones. A stretch of nothing else moves on without a chunk.
                // A one-shot session sends what was committed when it began: later commits
                // are the next session's (a busy writer cannot keep it from finishing).
                let until = self.local.head;
                let mut from = self.next_from;
                let feed_for = (!self.snap_out).then_some(peer_site);
                let (changes, to) = loop {
                    let (mut changes, mut to) = store.changes_for(feed_for, from, limit)?;
                    if to > until {
                        changes.retain(|c| c.seq <= until);
                        to = until.max(from);
                    }
                    if !changes.is_empty() || to == from {
                        break (changes, to);
                    }
                    from = to;
                };
                if changes.is_empty() {
                    let last = self.next_from;
                    self.next_from = to;
                    self.out.push_back(Frame::Done { last, head: to });
                    self.sent_done = true;
                    break;
                }
                let from = self.next_from;
                let chunk = build_chunk(&changes, from, to)?;
                self.outcome.sent += changes.len() as u64;
                self.outcome.chunks.0 += 1;
                self.out.push_back(Frame::Chunk(chunk));
                self.in_flight.push_back(to);
                self.next_from = to;
            }
        }
        self.maybe_fin(store)
    }

    /// Sends this side's fin once both directions are done; finishes when both fins are in.
    fn maybe_fin(&mut self, store: &impl Store) -> Result<(), ProtoError> {
        let sent_all = !self.sending || (self.sent_done && self.in_flight.is_empty());
        let got_all = !self.receiving || self.peer_done;
        if sent_all && got_all && !self.sent_fin {
            self.acknowledge(store)?;
            let st = store.sync_state()?;
            self.outcome.local = (st.digest, st.head, st.live);
            self.out.push_back(Frame::Fin {
                digest: st.digest,
                head: st.head,
                live: st.live,
            });
            self.sent_fin = true;
        }
        if self.sent_fin {
            if let Some(peer) = self.peer_fin {
                self.outcome.peer = peer;
                let two_way =
                    self.local.send && self.local.receive && self.sending && self.receiving;
                self.outcome.converged = two_way && peer.0 == self.outcome.local.0;
                self.phase = Phase::Finished;
            }
        }
        Ok(())
    }

    /// Records how far the peer holds this shard's changes (all it was sent, when this side
    /// sent; else its hello's cursor) when that moved, and collects tombstones.
    fn acknowledge(&mut self, store: &impl Store) -> Result<(), ProtoError> {
        let site = self.peer.as_ref().expect("running has a peer").site;
        let acked = if self.sending && self.sent_done {
            self.next_from
        } else {
            self.theirs
        };
        // With an expiry, every session records the visit (its time is what expires).
        let stale = self.cfg.peer_expiry_ms.is_some()
            || self
                .peers
                .iter()
                .find(|p| p.site_id == site)
                .is_none_or(|p| p.acked != acked);
        if stale {
            let collect = self
                .cfg
                .collect_tombstones
                .then_some(self.cfg.peer_expiry_ms);
            self.outcome.collected = store.acknowledge(site, acked, collect)?;
        }
        Ok(())
    }

    /// The next frame to send to the peer, if any.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.out.pop_front()
    }

    /// Whether the session has finished (both fins exchanged); its outcome is final.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether the session has failed.
    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// What the session did so far.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// The peer's hello, once received.
    pub fn peer(&self) -> Option<&Hello> {
        self.peer.as_ref()
    }

    /// This side's hello.
    pub fn local(&self) -> &Hello {
        &self.local
    }
}

fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Hello(_) => "a hello",
        Frame::Chunk(_) => "a chunk",
        Frame::Ack { .. } => "an ack",
        Frame::Done { .. } => "a done",
        Frame::Fin { .. } => "a fin",
        Frame::Reject { .. } => "a reject",
        Frame::List { .. } => "a list request",
        Frame::Shards { .. } => "a shard list",
    }
}
