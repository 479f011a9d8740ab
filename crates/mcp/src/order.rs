//! Arrival order for tool calls on one connection.
//!
//! rmcp runs every request as its own task, so two pipelined calls may run in either order.
//! The transport takes a [`Ticket`] for each `tools/call` as it reads the line, in arrival
//! order, naming what the call touches ([`Access`]); the handler waits on it before running.
//! A call waits until every earlier call it conflicts with has finished. Two calls conflict
//! when they touch a common shard (a shard name, or a shard under a prefix that a
//! `shard_list` or prefix `search` reads) and at least one of them writes. So calls on one
//! shard apply in arrival order, reads of it run side by side, and calls on other shards are
//! not held up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// What one call touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One shard, by name (also a name being created or dropped).
    Shard(String),
    /// Every shard whose name starts with this prefix (`""`: all of them).
    Prefix(String),
}

impl Target {
    fn overlaps(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Shard(a), Target::Shard(b)) => a == b,
            (Target::Shard(s), Target::Prefix(p)) | (Target::Prefix(p), Target::Shard(s)) => {
                s.starts_with(p.as_str())
            }
            (Target::Prefix(a), Target::Prefix(b)) => {
                a.starts_with(b.as_str()) || b.starts_with(a.as_str())
            }
        }
    }
}

/// What one call touches, and whether it writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Access {
    /// `true` for calls that change shards or items.
    pub(crate) write: bool,
    /// The shards (or prefixes) it touches; empty for calls that touch none.
    pub(crate) targets: Vec<Target>,
}

impl Access {
    fn conflicts(&self, other: &Access) -> bool {
        (self.write || other.write)
            && self
                .targets
                .iter()
                .any(|a| other.targets.iter().any(|b| a.overlaps(b)))
    }
}

/// A call that has arrived and not finished.
struct Pending {
    access: Access,
    /// Calls waiting for this one: dropping the senders (when this call finishes) wakes them.
    waiters: Vec<oneshot::Sender<()>>,
}

#[derive(Default)]
struct State {
    next: u64,
    pending: BTreeMap<u64, Pending>,
}

/// The arrival order of the calls of one connection.
#[derive(Clone, Default)]
pub(crate) struct Sequencer {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state stays consistent at every await and drop point, so a panic elsewhere leaves
    // nothing half-done.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sequencer {
    /// Registers a call that has just arrived. It conflicts with nothing that arrives later
    /// than it until it finishes (the last clone of its ticket is dropped).
    pub(crate) fn arrive(&self, access: Access) -> Ticket {
        let mut state = lock(&self.state);
        let seq = state.next;
        state.next += 1;
        state.pending.insert(
            seq,
            Pending {
                access,
                waiters: Vec::new(),
            },
        );
        Ticket(Arc::new(TicketInner {
            seq,
            state: self.state.clone(),
        }))
    }
}

/// A call's place in the order. Cloning shares it; the call counts as finished when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct Ticket(Arc<TicketInner>);

struct TicketInner {
    seq: u64,
    state: Arc<Mutex<State>>,
}

impl Drop for TicketInner {
    fn drop(&mut self) {
        // Removing the entry drops its waiters' senders, which wakes them.
        lock(&self.state).pending.remove(&self.seq);
    }
}

impl Ticket {
    /// Waits until every earlier call this one conflicts with has finished.
    pub(crate) async fn ready(&self) {
        let seq = self.0.seq;
        // Calls before `from` were already found not to conflict; the set of calls before
        // this one only shrinks, so the scan resumes where it stopped.
        let mut from = 0;
        loop {
            let woken = {
                let mut state = lock(&self.0.state);
                let Some(access) = state.pending.get(&seq).map(|p| p.access.clone()) else {
                    return;
                };
                let blocker = state
                    .pending
                    .range(from..seq)
                    .find(|(_, p)| p.access.conflicts(&access))
                    .map(|(s, _)| *s);
                let Some(blocker) = blocker else { return };
                from = blocker;
                let (tx, rx) = oneshot::channel();
                if let Some(p) = state.pending.get_mut(&blocker) {
                    p.waiters.push(tx);
                }
                rx
            };
            // Err: the blocker finished and dropped the sender; that is the wake-up.
            let _ = woken.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(name: &str) -> Access {
        Access {
            write: true,
            targets: vec![Target::Shard(name.into())],
        }
    }

    fn read(target: Target) -> Access {
        Access {
            write: false,
            targets: vec![target],
        }
    }

    /// `true` when `ticket` becomes ready within a short wait.
    async fn is_ready(ticket: &Ticket) -> bool {
        tokio::time::timeout(Duration::from_millis(50), ticket.ready())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn conflicting_calls_wait_for_earlier_ones_only() {
        let seq = Sequencer::default();
        let w1 = seq.arrive(write("a"));
        let r1 = seq.arrive(read(Target::Shard("a".into())));
        let r2 = seq.arrive(read(Target::Shard("a".into())));
        let other = seq.arrive(write("b"));
        let list = seq.arrive(read(Target::Prefix(String::new())));
        let w2 = seq.arrive(write("a"));
        assert!(is_ready(&w1).await);
        assert!(is_ready(&other).await, "another shard is not held up");
        assert!(!is_ready(&r1).await, "a read waits for the earlier write");
        assert!(!is_ready(&list).await, "a listing waits for earlier writes");
        drop(w1);
        assert!(
            is_ready(&r1).await && is_ready(&r2).await,
            "reads run side by side"
        );
        drop(other);
        assert!(is_ready(&list).await);
        drop((r1, r2));
        assert!(!is_ready(&w2).await, "a write waits for earlier reads");
        drop(list);
        assert!(is_ready(&w2).await);
        // Calls that touch nothing never wait.
        let w3 = seq.arrive(write("a"));
        let free = seq.arrive(Access::default());
        assert!(is_ready(&free).await);
        drop(w2);
        assert!(is_ready(&w3).await);
    }

    #[test]
    fn prefixes_overlap_the_shards_under_them() {
        let s = |n: &str| Target::Shard(n.into());
        let p = |n: &str| Target::Prefix(n.into());
        assert!(s("team-a/x").overlaps(&p("team-a/")));
        assert!(!s("team-b/x").overlaps(&p("team-a/")));
        assert!(p("").overlaps(&s("any")));
        assert!(p("team-").overlaps(&p("team-a/")));
        assert!(!s("a").overlaps(&s("ab")));
    }
}
