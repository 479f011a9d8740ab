//! Two parts of one search on two cores: the halves of a large exact scan, the two rankings of
//! a hybrid search.
//!
//! With the feature `threads`, the process keeps one persistent helper thread per core (at most
//! 8; started on first use, named `sqlite-vector-par-N`); [`join`] hands one part to an idle
//! helper and runs the other on the calling thread. A helper runs only the parts it is handed;
//! it waits only inside a nested [`join`], and then for another helper that is running a part
//! (a helper stays marked busy until its part has ended, so none is handed work by a part it
//! runs). Waits therefore form chains that end in a running part, and a caller waiting while it
//! holds a shard's state lock cannot deadlock (unlike with a work-stealing pool, whose waiting
//! threads may pick up unrelated work that blocks on that lock). A busy helper is not waited
//! for: the caller then runs both parts itself, so concurrent searches never queue behind each
//! other here. Starting a thread per search instead cost 0.1–0.3 ms, as much as the half it
//! saved.
//!
//! The hybrid search's BM25 ranking (about 0.1 ms) takes one helper while its vector ranking
//! splits its scan with another: one helper per core, not per extra core, keeps that split.

/// Runs `a` on the calling thread and `b` on an idle helper thread when there is one (else
/// after `a`, on the calling thread); returns both results. A panic in either is resumed here
/// once both have finished.
pub(crate) fn join<A, B>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B)
where
    B: Send,
{
    #[cfg(feature = "threads")]
    {
        imp::join(a, b)
    }
    #[cfg(not(feature = "threads"))]
    {
        (a(), b())
    }
}

#[cfg(feature = "threads")]
mod imp {
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{channel, sync_channel, Sender};
    use std::sync::{Mutex, OnceLock, PoisonError};

    /// Work for a helper: type-erased, its lifetime extended by [`join`] (see there).
    type Job = Box<dyn FnOnce() + Send + 'static>;

    /// One helper thread.
    struct Helper {
        /// Set by the caller whose part it runs, until that part has ended.
        busy: AtomicBool,
        jobs: Mutex<Sender<Job>>,
    }

    /// The helpers: one per core (at most 8); fewer when threads cannot start.
    fn helpers() -> &'static [Helper] {
        static HELPERS: OnceLock<Vec<Helper>> = OnceLock::new();
        HELPERS.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..cores.min(8))
                .filter_map(|i| {
                    let (tx, rx) = channel::<Job>();
                    std::thread::Builder::new()
                        .name(format!("sqlite-vector-par-{i}"))
                        .spawn(move || {
                            for job in rx {
                                job();
                            }
                        })
                        .ok()?;
                    Some(Helper {
                        busy: AtomicBool::new(false),
                        jobs: Mutex::new(tx),
                    })
                })
                .collect()
        })
    }

    pub(super) fn join<A, B>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B)
    where
        B: Send,
    {
        let Some(helper) = helpers().iter().find(|h| {
            h.busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }) else {
            return (a(), b());
        };
        let (done_tx, done) = sync_channel::<std::thread::Result<B>>(1);
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
            // `b` and everything it borrows is consumed here, before the result is sent;
            // after the send the job touches only what it owns.
            let r = catch_unwind(AssertUnwindSafe(b));
            let _ = done_tx.send(r);
        });
        // SAFETY: the job may borrow from the caller's frame; it is erased to `'static` only to
        // cross the channel. This function returns or unwinds only after `done.recv()` below
        // has returned, i.e. after the job has sent its result (having dropped `b` and all its
        // borrows) or has been dropped unrun (the helper gone: `recv` fails once the job, and
        // with it `done_tx`, is dropped). `a`'s panic is caught so that the wait always runs.
        let job: Job = unsafe {
            std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Box<dyn FnOnce() + Send + 'static>>(
                job,
            )
        };
        let unsent = helper
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .err();
        if let Some(e) = unsent {
            // The helper thread is gone (it never exits; defensive): run the part here.
            (e.0)();
        }
        let ra = catch_unwind(AssertUnwindSafe(a));
        let rb = done.recv();
        helper.busy.store(false, Ordering::Release);
        let ra = ra.unwrap_or_else(|p| resume_unwind(p));
        match rb {
            Ok(Ok(b)) => (ra, b),
            Ok(Err(p)) => resume_unwind(p),
            Err(_) => panic!("a helper thread dropped its part unrun"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn both_halves_run_and_borrow_the_callers_data() {
        let data: Vec<u64> = (0..100_000).collect();
        for _ in 0..200 {
            let (lo, hi) = data.split_at(data.len() / 2);
            let (a, b) = join(|| lo.iter().sum::<u64>(), || hi.iter().sum::<u64>());
            assert_eq!(a + b, data.iter().sum::<u64>());
        }
    }

    #[test]
    fn concurrent_callers_and_panics() {
        std::thread::scope(|s| {
            for t in 0..4u64 {
                s.spawn(move || {
                    for i in 0..500u64 {
                        let (a, b) = join(|| i * t, || i + t);
                        assert_eq!((a, b), (i * t, i + t));
                    }
                });
            }
        });
        let r = std::panic::catch_unwind(|| join(|| 1, || -> u32 { panic!("half b") }));
        assert!(r.is_err());
        let r = std::panic::catch_unwind(|| join(|| -> u32 { panic!("half a") }, || 2));
        assert!(r.is_err());
        // The helpers still work after the panics.
        assert_eq!(join(|| 3, || 4), (3, 4));
    }
}
