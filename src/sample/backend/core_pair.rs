//! [`CorePair`]: the second core for one take's word. [`CorePair::join`] runs one closure on the
//! calling thread and another on a helper thread at the same time, like `rayon::join`, but the
//! helper spins between calls instead of sleeping: a word is about sixteen such halves a few
//! tens of microseconds each, and waking a sleeping thread for each would cost more than the
//! half it takes off (rayon's pool made the decoder slower). After a while with no work the
//! helper sleeps, so an idle program keeps no core busy.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the helper spins for its next half before it sleeps: longer than the sampler's
/// work between two words, far shorter than a pause a person would notice.
const SPIN: Duration = Duration::from_millis(2);

/// The helper's half of a join, its lifetime erased (see [`CorePair::join`]).
type Job = *mut (dyn FnMut() + Send + 'static);

struct Shared {
    /// Halves posted and halves finished, counted: the helper has work while they differ.
    posted: AtomicU64,
    finished: AtomicU64,
    /// The posted half, written by the caller before `posted` moves, taken by the helper after.
    job: UnsafeCell<Option<Job>>,
    panicked: AtomicBool,
    /// The helper is (about to be) parked: the caller unparks it after posting.
    sleeping: AtomicBool,
    quit: AtomicBool,
}

// SAFETY: `job` is written only by the caller while the helper has no work (`posted ==
// finished`) and read only by the helper between a post and its finish; the counters order the two.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A helper thread on the other core (see the module doc); it stops when this is dropped.
pub(crate) struct CorePair {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
}

impl CorePair {
    /// A pair with its helper started; `None` where no thread can be started (the caller then
    /// works alone).
    pub(crate) fn start() -> Option<CorePair> {
        let shared = Arc::new(Shared {
            posted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            panicked: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            quit: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&shared);
        let helper = thread::Builder::new()
            .name("nanotune-decoder-pair".into())
            .spawn(move || serve(&theirs))
            .ok()?;
        Some(CorePair {
            shared,
            helper: Some(helper),
        })
    }

    /// Runs `mine` here and `theirs` on the helper, and returns when both are done. A panic in
    /// `theirs` is raised here once both are done.
    pub(crate) fn join<A: FnOnce(), B: FnOnce() + Send>(&self, mine: A, theirs: B) {
        let mut theirs = Some(theirs);
        let mut call = move || {
            if let Some(f) = theirs.take() {
                f()
            }
        };
        let job: &mut (dyn FnMut() + Send + '_) = &mut call;
        // SAFETY: the helper calls the job only between the post below and `finished` reaching
        // it, and this function neither returns nor unwinds before then (`Finish` waits for it
        // on both ways out), so everything the job borrows outlives its use.
        let job: Job = unsafe { std::mem::transmute(job) };
        let shared = &*self.shared;
        // SAFETY: the helper has no work (every earlier join waited for its finish), so it does
        // not read `job` now.
        unsafe { *shared.job.get() = Some(job) };
        let number = shared.posted.fetch_add(1, SeqCst) + 1;
        if shared.sleeping.swap(false, SeqCst) {
            if let Some(helper) = &self.helper {
                helper.thread().unpark();
            }
        }
        let finish = Finish { shared, number };
        mine();
        drop(finish);
        if shared.panicked.swap(false, SeqCst) {
            panic!("the decoder's second thread panicked");
        }
    }
}

/// Waits, when dropped, until the helper has finished half `number`.
struct Finish<'a> {
    shared: &'a Shared,
    number: u64,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        while self.shared.finished.load(SeqCst) < self.number {
            std::hint::spin_loop();
        }
    }
}

impl Drop for CorePair {
    fn drop(&mut self) {
        self.shared.quit.store(true, SeqCst);
        if let Some(helper) = self.helper.take() {
            helper.thread().unpark();
            let _ = helper.join();
        }
    }
}

/// The helper: waits for each half (spinning, then asleep), runs it, marks it finished.
fn serve(shared: &Shared) {
    let mut done = 0u64;
    loop {
        let mut since = Instant::now();
        let mut spins = 0u32;
        while shared.posted.load(SeqCst) == done {
            if shared.quit.load(SeqCst) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && since.elapsed() > SPIN {
                shared.sleeping.store(true, SeqCst);
                // A post after the store above sees `sleeping` and unparks; one before it is
                // seen here. Either way no post waits on a parked helper.
                if shared.posted.load(SeqCst) == done && !shared.quit.load(SeqCst) {
                    thread::park();
                }
                shared.sleeping.store(false, SeqCst);
                since = Instant::now();
            }
            std::hint::spin_loop();
        }
        done += 1;
        // SAFETY: half `done` is posted and not finished: the caller leaves `job` alone.
        if let Some(job) = unsafe { (*shared.job.get()).take() } {
            // SAFETY: the caller keeps what the job borrows alive until `finished` reaches
            // `done` (see `CorePair::join`).
            let run = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
            if run.is_err() {
                shared.panicked.store(true, SeqCst);
            }
        }
        shared.finished.store(done, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_and_write_their_own_parts() {
        let pair = CorePair::start().unwrap();
        let mut data = vec![0u64; 1000];
        for round in 1..=500u64 {
            let (a, b) = data.split_at_mut(400);
            pair.join(
                || a.iter_mut().for_each(|v| *v += round),
                || b.iter_mut().for_each(|v| *v += 2 * round),
            );
        }
        let total: u64 = (1..=500).sum();
        assert!(data[..400].iter().all(|&v| v == total));
        assert!(data[400..].iter().all(|&v| v == 2 * total));
    }

    #[test]
    fn a_sleeping_helper_wakes_for_the_next_half() {
        let pair = CorePair::start().unwrap();
        let mut n = 0;
        pair.join(|| {}, || n += 1);
        // Long enough for the helper to give up spinning and park.
        thread::sleep(SPIN * 5);
        assert!(pair.shared.sleeping.load(SeqCst), "the idle helper sleeps");
        pair.join(|| {}, || n += 1);
        assert_eq!(n, 2);
    }

    #[test]
    fn a_panic_on_the_helper_reaches_the_caller_and_the_pair_goes_on() {
        let pair = CorePair::start().unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| pair.join(|| {}, || panic!("boom"))));
        assert!(caught.is_err());
        let mut n = 0;
        pair.join(|| {}, || n = 7);
        assert_eq!(n, 7);
    }
}
