//! `sqlite-vector sync`: node identity, trust list, server and one-shot sync of a root's shards
//! with a peer over QUIC (crate `sqlite-vector-sync`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;
use sqlite_vector_sync::{
    sync_once, Config, Direction, Identity, Selection, Server, SyncError, TrustList, TrustedPeer,
};

use crate::{new_root, user, CliResult, Failure};

/// `sync` subcommands.
#[derive(Subcommand)]
pub(crate) enum SyncCommand {
    /// Print this root's node id (creating its key pair on first use, <root>/sync/node.key,
    /// mode 0600).
    Id {
        /// Root directory of the shards.
        #[arg(long)]
        root: PathBuf,
    },
    /// Trust a peer (by node id): it may connect, pull and (unless --read-only) push the
    /// shards under its prefixes (all shards without --prefix).
    Trust {
        /// Root directory of the shards.
        #[arg(long)]
        root: PathBuf,
        /// The peer's node id (64 hex digits; `sync id` on the peer prints it).
        peer_id: String,
        /// Shard-name prefix the peer may sync (repeatable; none: every shard).
        #[arg(long = "prefix")]
        prefixes: Vec<String>,
        /// The peer may pull only.
        #[arg(long)]
        read_only: bool,
    },
    /// Serve the root's shards to trusted peers until SIGINT or SIGTERM. Prints the address
    /// it listens on and the node id.
    Serve {
        /// Root directory of the shards.
        #[arg(long)]
        root: PathBuf,
        /// UDP address to listen on, e.g. 0.0.0.0:7878 (port 0: any free port).
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Take the peer's changes (creating shards this root lacks).
    Pull(OneShot),
    /// Send this root's changes to the peer.
    Push(OneShot),
    /// Both ways.
    Both(OneShot),
    /// Both ways, continuously, until SIGINT or SIGTERM: a commit here (by any process) is
    /// sent within 5 ms of being noticed, and the peer's commits are taken every 500 ms (run
    /// `live` on both sides for real time both ways). Prints a line per round that moved
    /// changes (a JSON object with --json).
    Live(OneShot),
}

/// Flags of a one-shot sync.
#[derive(clap::Args)]
pub(crate) struct OneShot {
    /// Root directory of the shards.
    #[arg(long)]
    root: PathBuf,
    /// The peer's address (host:port, UDP).
    #[arg(long)]
    peer: SocketAddr,
    /// The peer's node id: the connection is refused unless the peer holds its key.
    #[arg(long)]
    peer_id: String,
    /// Only shards whose name starts with this.
    #[arg(long, conflicts_with = "shards")]
    prefix: Option<String>,
    /// Only this shard (repeatable).
    #[arg(long = "shard")]
    shards: Vec<String>,
    /// Print one JSON object (shards, changes sent/received, bytes on the wire, ms).
    #[arg(long)]
    json: bool,
}

impl From<SyncError> for Failure {
    /// Bad arguments and refusals of this node's request are the user's; connections, TLS and
    /// storage are the system's.
    fn from(e: SyncError) -> Self {
        let is_user = matches!(e, SyncError::InvalidArgument(_))
            || matches!(&e, SyncError::Shard(s) if s.is_user_error());
        if is_user {
            user(e.to_string())
        } else {
            Failure::internal(e.to_string())
        }
    }
}

fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("tokio runtime: {e}")))
}

/// Completes at SIGINT or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) fn run(command: SyncCommand) -> CliResult {
    match command {
        SyncCommand::Id { root } => {
            new_root(&root)?;
            let identity = Identity::load_or_create(&root)?;
            println!("{}", identity.id());
        }
        SyncCommand::Trust {
            root,
            peer_id,
            prefixes,
            read_only,
        } => {
            new_root(&root)?;
            let list = TrustList::trust(
                &root,
                TrustedPeer {
                    id: peer_id,
                    prefixes,
                    read_only,
                },
            )?;
            println!("{} trusted peer(s)", list.peers.len());
        }
        SyncCommand::Serve { root, listen } => {
            let manager = Arc::new(new_root(&root)?);
            let identity = Identity::load_or_create(&root)?;
            let rt = runtime()?;
            rt.block_on(async {
                let server = Server::bind(manager, &identity, listen)?;
                println!(
                    "serving {} on {} as node {}",
                    root.display(),
                    server.local_addr()?,
                    identity.id()
                );
                use std::io::Write;
                let _ = std::io::stdout().flush();
                server.run(interrupted()).await?;
                Ok::<(), Failure>(())
            })?;
        }
        SyncCommand::Pull(a) => one_shot(a, Direction::Pull)?,
        SyncCommand::Push(a) => one_shot(a, Direction::Push)?,
        SyncCommand::Both(a) => one_shot(a, Direction::Both)?,
        SyncCommand::Live(a) => live(a)?,
    }
    Ok(())
}

fn selection_of(prefix: Option<String>, shards: Vec<String>) -> Selection {
    if shards.is_empty() {
        Selection::Prefix(prefix.unwrap_or_default())
    } else {
        Selection::Names(shards)
    }
}

fn live(a: OneShot) -> CliResult {
    let manager = Arc::new(new_root(&a.root)?);
    let identity = Identity::load_or_create(&a.root)?;
    let selection = selection_of(a.prefix, a.shards);
    let rt = runtime()?;
    let json = a.json;
    rt.block_on(sqlite_vector_sync::sync_live(
        manager,
        &identity,
        a.peer,
        &a.peer_id,
        &selection,
        std::time::Duration::from_millis(5),
        std::time::Duration::from_millis(500),
        interrupted(),
        |r| {
            if r.sent + r.received == 0 && r.failures.is_empty() {
                return;
            }
            if json {
                println!("{}", serde_json::to_string(r).expect("a report serialises"));
            } else {
                println!(
                    "{} shard(s): {} sent, {} received, {:.1} ms",
                    r.shards, r.sent, r.received, r.ms
                );
                for (shard, why) in &r.failures {
                    eprintln!("{shard}: {why}");
                }
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
        },
    ))?;
    Ok(())
}

fn one_shot(a: OneShot, direction: Direction) -> CliResult {
    let manager = Arc::new(new_root(&a.root)?);
    let identity = Identity::load_or_create(&a.root)?;
    let selection = selection_of(a.prefix, a.shards);
    let rt = runtime()?;
    let report = rt.block_on(sync_once(
        manager,
        &identity,
        a.peer,
        &a.peer_id,
        direction,
        &selection,
        Config::default(),
    ))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serialises")
        );
    } else {
        println!(
            "{} shard(s): {} change(s) sent, {} received ({} applied), {} converged; {} B sent, \
             {} B received, {:.1} ms; {} snapshot(s) received, {} sent; {} tombstone(s) \
             collected",
            report.shards,
            report.sent,
            report.received,
            report.applied,
            report.converged,
            report.bytes_sent,
            report.bytes_received,
            report.ms,
            report.snapshots.0,
            report.snapshots.1,
            report.collected
        );
        if report.held_back > 0 {
            eprintln!(
                "{} shard(s) sent nothing: this root is behind the peer's tombstone collection \
                 and must take a snapshot first (pull, or sync both)",
                report.held_back
            );
        }
        for (shard, why) in &report.failures {
            eprintln!("{shard}: {why}");
        }
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::internal(format!(
            "{} shard(s) failed to sync",
            report.failures.len()
        )))
    }
}
