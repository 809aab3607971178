//! A fixed pool of scheduler threads running actors from a shared run queue.
//!
//! There is no thread per actor: an actor with messages is put on the run queue once (see
//! `Actor::try_claim`), a worker takes it, handles up to [`BATCH`] messages, and puts it
//! back if more are waiting — BEAM's reductions, in spirit, so one busy actor cannot starve
//! the others. Idle workers spin briefly (a message usually arrives within microseconds
//! under load, and a futex wake costs several) and then park until woken.
//!
//! An actor woken by a message sent *from* a worker goes to that worker's next-run slot
//! instead of the shared queue (tokio's LIFO slot): a request and its reply then run
//! back to back on one core with warm caches and no wake-up, which is what makes
//! actor-to-actor messaging cheap. At most [`SLOT_STREAK`] slot runs happen in a row
//! before the worker looks at the shared queue again, so a ping-pong pair cannot starve
//! other actors.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::deque::{Injector, Steal};
use crossbeam::sync::{Parker, Unparker};
use parking_lot::Mutex;

use super::actor::Actor;

/// Messages an actor may handle before it yields its worker to others.
pub const BATCH: usize = 64;

/// Consecutive next-run-slot runs before a worker serves the shared queue again.
pub const SLOT_STREAK: u32 = 32;

thread_local! {
    /// This worker's next-run slot; `None` on threads that are not workers.
    static SLOT: std::cell::RefCell<Option<Option<Arc<Actor>>>> = const { std::cell::RefCell::new(None) };
}

/// Spin rounds before a worker parks.
const SPIN_ROUNDS: u32 = 200;

/// What a worker calls to run one actor; returns whether the actor must be queued again.
pub type RunFn = dyn Fn(&Arc<Actor>) -> bool + Send + Sync;

struct Shared {
    queue: Injector<Arc<Actor>>,
    unparkers: Vec<Unparker>,
    /// Indices of parked (or about to park) workers.
    idle: Mutex<Vec<usize>>,
    idle_count: AtomicUsize,
    /// Workers looking for work without being parked. While one is, a push needs no
    /// wake-up: a futex wake costs the pusher microseconds, more than the message itself.
    spinning: AtomicUsize,
    shutdown: AtomicBool,
    /// Per worker: time spent parked, for utilisation. Only parking reads the clock (a
    /// futex sleep costs far more anyway): a worker that keeps finding work, or finds it
    /// while spinning, pays nothing. Reading it around the spin as well cost about 40 ns
    /// per message when a consumer keeps catching up with its producer.
    clocks: Vec<IdleClock>,
    started: Instant,
}

/// One worker's idle time: completed idle periods, and when the current one began.
#[derive(Default)]
struct IdleClock {
    /// Nanoseconds idle in completed periods.
    total_ns: AtomicU64,
    /// Start of the current idle period in nanoseconds since `Shared::started`, plus one
    /// (0: busy).
    since: AtomicU64,
}

/// Handle to push work onto the pool; cheap to clone.
#[derive(Clone)]
pub struct RunQueue {
    shared: Arc<Shared>,
}

impl RunQueue {
    /// Queues an actor the caller has claimed (`Actor::try_claim` returned true).
    pub fn push(&self, actor: Arc<Actor>) {
        // On a worker: take the next-run slot; whatever was in it goes to the shared queue.
        let mut actor = Some(actor);
        let _ = SLOT.try_with(|s| {
            if let Ok(mut slot) = s.try_borrow_mut() {
                if let Some(next) = slot.as_mut() {
                    actor = actor.take().and_then(|a| next.replace(a));
                }
            }
        });
        let Some(actor) = actor else { return };
        self.push_shared(actor);
    }

    /// Pushes to the shared queue and wakes a worker if none is looking for work.
    fn push_shared(&self, actor: Arc<Actor>) {
        self.shared.queue.push(actor);
        // Pairs with the fence in `worker` between leaving the spinning state / joining
        // `idle` and its last look at the queue: either that look sees this push, or we see
        // the worker idle (and no spinner left) and wake it.
        fence(Ordering::SeqCst);
        if self.shared.spinning.load(Ordering::SeqCst) == 0 {
            unpark_one(&self.shared);
        }
    }

    /// Number of actors waiting for a worker.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Per worker, nanoseconds spent parked (no work) since the pool started, and the
    /// nanoseconds since it started; utilisation over an interval is one minus the
    /// difference of the first over the difference of the second.
    pub fn idle_ns(&self) -> (Vec<u64>, u64) {
        let now = self.shared.started.elapsed().as_nanos() as u64;
        let idle = self
            .shared
            .clocks
            .iter()
            .map(|c| {
                let since = c.since.load(Ordering::Relaxed);
                let open = if since == 0 {
                    0
                } else {
                    now.saturating_sub(since - 1)
                };
                c.total_ns.load(Ordering::Relaxed) + open
            })
            .collect();
        (idle, now)
    }
}

impl IdleClock {
    fn enter(&self, started: Instant) {
        let now = started.elapsed().as_nanos() as u64;
        self.since.store(now + 1, Ordering::Relaxed);
    }

    fn leave(&self, started: Instant) {
        let since = self.since.swap(0, Ordering::Relaxed);
        if since != 0 {
            let now = started.elapsed().as_nanos() as u64;
            self.total_ns
                .fetch_add(now.saturating_sub(since - 1), Ordering::Relaxed);
        }
    }
}

/// The worker pool. Made in two steps so the actor system can hold the run queue before
/// the workers (which run the actor system's callbacks) exist: [`Scheduler::new`], then
/// [`Scheduler::start`]. Dropping it stops and joins the workers.
pub struct Scheduler {
    queue: RunQueue,
    /// Until `start`: one parker per worker to be. (A `Parker` may move between
    /// threads but not be shared; the mutex makes the pool shareable before `start`.)
    parkers: Mutex<Vec<Parker>>,
    threads: Vec<JoinHandle<()>>,
}

impl Scheduler {
    /// A pool of `threads` workers (at least one), not running yet; its queue can be used
    /// at once (actors queued before `start` wait for it).
    pub fn new(threads: usize) -> Scheduler {
        let threads = threads.max(1);
        let parkers: Vec<Parker> = (0..threads).map(|_| Parker::new()).collect();
        let shared = Arc::new(Shared {
            queue: Injector::new(),
            unparkers: parkers.iter().map(|p| p.unparker().clone()).collect(),
            idle: Mutex::new(Vec::with_capacity(threads)),
            idle_count: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            clocks: (0..threads).map(|_| IdleClock::default()).collect(),
            started: Instant::now(),
        });
        Scheduler {
            queue: RunQueue { shared },
            parkers: Mutex::new(parkers),
            threads: Vec::new(),
        }
    }

    /// Starts the workers, which run actors with `run`.
    pub fn start(&mut self, run: Arc<RunFn>) {
        let queue = self.queue.clone();
        self.threads = std::mem::take(&mut *self.parkers.lock())
            .into_iter()
            .enumerate()
            .map(|(i, parker)| {
                let shared = queue.shared.clone();
                let run = run.clone();
                let q = queue.clone();
                std::thread::Builder::new()
                    .name(format!("sched-{i}"))
                    .spawn(move || worker(i, &shared, &parker, &*run, &q))
                    .expect("spawn scheduler thread")
            })
            .collect();
    }

    /// A handle for queuing actors.
    pub fn run_queue(&self) -> RunQueue {
        self.queue.clone()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.queue.shared.shutdown.store(true, Ordering::SeqCst);
        for u in &self.queue.shared.unparkers {
            u.unpark();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn take(shared: &Shared) -> Option<Arc<Actor>> {
    loop {
        match shared.queue.steal() {
            Steal::Success(a) => return Some(a),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

fn worker(i: usize, shared: &Shared, parker: &Parker, run: &RunFn, q: &RunQueue) {
    SLOT.with(|s| *s.borrow_mut() = Some(None));
    let take_slot = || SLOT.with(|s| s.borrow_mut().as_mut().and_then(Option::take));
    let mut streak = 0u32;
    let run_one = |actor: Arc<Actor>| {
        if run(&actor) {
            // More mail: keep it on this core (next-run slot) rather than bouncing it to
            // the other worker each batch; the streak limit keeps this fair.
            q.push(actor);
        }
    };
    while !shared.shutdown.load(Ordering::Relaxed) {
        if streak < SLOT_STREAK {
            if let Some(actor) = take_slot() {
                streak += 1;
                run_one(actor);
                continue;
            }
        } else if let Some(actor) = take_slot() {
            // Streak over: the slot's actor queues behind the others.
            q.push_shared(actor);
        }
        streak = 0;
        if let Some(actor) = take(shared) {
            run_one(actor);
            continue;
        }
        // Spin a while: under load the next actor usually arrives within microseconds.
        let clock = &shared.clocks[i];
        shared.spinning.fetch_add(1, Ordering::SeqCst);
        let mut found = None;
        for round in 0..SPIN_ROUNDS {
            if let Some(a) = take(shared) {
                found = Some(a);
                break;
            }
            if round % 16 == 15 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        if found.is_none() {
            // Join `idle` before we stop counting as a spinner, so a pusher that sees no
            // spinner also sees us idle.
            shared.idle.lock().push(i);
            shared.idle_count.fetch_add(1, Ordering::SeqCst);
        }
        shared.spinning.fetch_sub(1, Ordering::SeqCst);
        if let Some(actor) = found {
            // Pushers skipped waking anyone while we spun; if more work is waiting, pass
            // the wake-up on (tokio's "notify a peer when you stop searching").
            wake_peer(shared);
            run_one(actor);
            continue;
        }
        fence(Ordering::SeqCst);
        // Last look before sleeping (see RunQueue::push).
        if let Some(actor) = take(shared) {
            unregister(i, shared);
            wake_peer(shared);
            run_one(actor);
            continue;
        }
        clock.enter(shared.started);
        parker.park_timeout(Duration::from_millis(100));
        clock.leave(shared.started);
        unregister(i, shared);
    }
}

/// Wakes one parked worker if work is waiting in the shared queue.
fn wake_peer(shared: &Shared) {
    if !shared.queue.is_empty() {
        unpark_one(shared);
    }
}

/// Wakes one idle worker, if there is one.
fn unpark_one(shared: &Shared) {
    if shared.idle_count.load(Ordering::SeqCst) == 0 {
        return;
    }
    let who = shared.idle.lock().pop();
    if let Some(w) = who {
        shared.idle_count.fetch_sub(1, Ordering::SeqCst);
        shared.unparkers[w].unpark();
    }
}

/// Removes worker `i` from the idle list if a pusher did not already.
fn unregister(i: usize, shared: &Shared) {
    let mut idle = shared.idle.lock();
    if let Some(pos) = idle.iter().position(|&w| w == i) {
        idle.swap_remove(pos);
        shared.idle_count.fetch_sub(1, Ordering::SeqCst);
    }
}
