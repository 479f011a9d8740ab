//! Time, injected: the core never reads the system clock itself (quinn-proto keeps time out of
//! its core the same way). A [`Clock`] is given when a shard or a manager is opened
//! ([`crate::OpenOptions::with_clock`], [`crate::ManagerOptions::with_clock`]); the default is
//! [`SystemClock`] where the target has one. Tests and simulations use [`ManualClock`].
//!
//! The clock feeds the hybrid logical clock (HLC) that stamps every change
//! (`physical_ms << 16 | counter`, see [`hlc_after`]) and the creation times recorded in a
//! shard's `meta` and in a manager's catalog. On `wasm32-unknown-unknown` there is no system
//! clock (`std::time::SystemTime::now` panics there): the embedder passes one (e.g.
//! `Date.now()`), and opening without one is an [`Error::InvalidArgument`].

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::error::Result;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch (1970-01-01T00:00:00Z). Need not be monotonic: the
    /// HLC built on it never goes backwards (see [`hlc_after`]).
    fn now_ms(&self) -> i64;
}

/// The operating system's clock (`std::time::SystemTime`). Not available on
/// `wasm32-unknown-unknown`, which has none.
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that moves only when told to: for tests and deterministic simulations.
///
/// ```
/// use sqlite_vector::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(250);
/// assert_eq!(clock.now_ms(), 1_250);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `ms` (Unix milliseconds).
    pub fn new(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }
    /// Sets the time to `ms` (it may go backwards: the HLC does not).
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Moves the time forward by `ms` (backwards for a negative value).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clock to use when none was given: [`SystemClock`], or an error on targets without one.
///
/// # Errors
/// [`Error::InvalidArgument`] on `wasm32-unknown-unknown`.
pub(crate) fn default_clock() -> Result<Arc<dyn Clock>> {
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    {
        Ok(Arc::new(SystemClock))
    }
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    {
        Err(crate::Error::InvalidArgument(
            "this target has no system clock: pass one with OpenOptions::with_clock".into(),
        ))
    }
}

/// Bits of an HLC below the physical milliseconds: the logical counter.
pub const HLC_COUNTER_BITS: u32 = 16;

/// The HLC of a new local change: the physical time `now_ms` with a zero counter, or one past
/// `last` (the highest HLC this shard has produced or received) when that is not below it
/// (Kulkarni et al., "Logical Physical Clocks", OPODIS 2014). Strictly increasing, whatever the
/// wall clock does.
pub fn hlc_after(last: i64, now_ms: i64) -> i64 {
    (now_ms.max(0) << HLC_COUNTER_BITS).max(last + 1)
}

/// The physical milliseconds of an HLC.
pub fn hlc_millis(hlc: i64) -> i64 {
    hlc >> HLC_COUNTER_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_never_goes_backwards() {
        let a = hlc_after(0, 1_000);
        assert_eq!(hlc_millis(a), 1_000);
        // The wall clock steps back: the counter carries on.
        let b = hlc_after(a, 900);
        assert_eq!(b, a + 1);
        // A received stamp far ahead: the next local one is past it.
        let remote = (5_000 << HLC_COUNTER_BITS) + 7;
        assert_eq!(hlc_after(remote, 1_000), remote + 1);
        assert_eq!(hlc_after(b, 2_000), 2_000 << HLC_COUNTER_BITS);
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let c = ManualClock::new(10);
        c.advance(5);
        assert_eq!(c.now_ms(), 15);
        c.set(3);
        assert_eq!(c.now_ms(), 3);
    }
}
