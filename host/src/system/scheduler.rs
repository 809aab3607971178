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
//!
//! Each worker publishes which actor it runs, which callback and since when (a coarse
//! clock, [`coarse_ms`], read per message: a relaxed load and two stores on the worker's own
//! cache line), so operators and the watchdog see a long callback without waiting on the
//! actor. A worker whose actor was killed while inside a callback is *retired*: a fresh
//! thread takes its place in the pool at once (capacity is kept), and the retired thread
//! exits when the abandoned callback returns, if ever.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::deque::{Injector, Steal};
use crossbeam::sync::{Parker, Unparker};
use parking_lot::Mutex;

use super::actor::Actor;
use crate::util::isolated::Isolated;

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
pub type RunFn = dyn Fn(&Arc<Actor>, &Running) -> bool + Send + Sync;

/// Default stack of a scheduler thread: 8 MiB, as a Linux main thread, four times Rust's
/// default for spawned threads (plugin code may recurse deeply; see the README).
pub const DEFAULT_STACK_SIZE: usize = 8 << 20;

/// Milliseconds since the host started, advanced by whoever calls [`tick_coarse_clock`]
/// (the watchdog, every few milliseconds). Cheap enough to read per message.
static COARSE_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The coarse clock now (see [`COARSE_MS`]).
pub(crate) fn coarse_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}

/// Advances the coarse clock; returns it.
pub(crate) fn tick_coarse_clock() -> u64 {
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    COARSE_MS.store(now, Ordering::Relaxed);
    now
}

/// What one worker is running, published for operators and the watchdog.
#[derive(Default)]
pub struct Running {
    /// The actor's id (0: none).
    actor: AtomicU64,
    /// When the current callback started, on the coarse clock, shifted left 8 bits, and
    /// which callback it is in the low byte (a [`plugin_api::abi::MsgKind`] as `u8`, or
    /// [`Running::SIGNALS`]): one store per message.
    since_callback: AtomicU64,
    /// Set when this worker's actor was killed inside a callback: the worker leaves the
    /// pool when the callback returns.
    retired: AtomicBool,
}

impl Running {
    /// The callback code for system messages (and the `terminate` they may run).
    pub(crate) const SIGNALS: u8 = 3;

    /// Starts publishing: this worker runs `actor`, its system messages first (exit
    /// signals, and `terminate` if one stops it) — [`Running::SIGNALS`] from now.
    #[inline]
    pub(crate) fn enter(&self, actor: u64) {
        self.callback(Running::SIGNALS);
        self.actor.store(actor, Ordering::Relaxed);
    }

    /// A callback starts now.
    #[inline]
    pub(crate) fn callback(&self, callback: u8) {
        self.since_callback
            .store(coarse_ms() << 8 | callback as u64, Ordering::Relaxed);
    }

    /// Milliseconds the current callback has run, on the coarse clock.
    #[inline]
    pub(crate) fn callback_ms(&self) -> u64 {
        coarse_ms().saturating_sub(self.since_callback.load(Ordering::Relaxed) >> 8)
    }

    /// This worker runs no actor any more.
    #[inline]
    pub(crate) fn leave(&self) {
        self.actor.store(0, Ordering::Relaxed);
    }

    /// (actor, callback, since) if it runs one; racy by nature, checked twice.
    pub(crate) fn read(&self) -> Option<(u64, u8, u64)> {
        let a = self.actor.load(Ordering::Relaxed);
        let sc = self.since_callback.load(Ordering::Relaxed);
        (a != 0 && self.actor.load(Ordering::Relaxed) == a).then_some((a, sc as u8, sc >> 8))
    }

    /// Whether this worker was retired (see the module docs).
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

/// One place in the pool: the thread's parker, idle clock and what it runs. A retired
/// worker keeps its own `Slot` (so its late writes land nowhere), and its replacement gets
/// a fresh one at the same index.
struct Slot {
    unparker: Unparker,
    clock: IdleClock,
    /// Written once per message with the watchdog on: on lines of its own, or workers
    /// running the two sides of a request and reply would bounce one line between them
    /// (slots are small allocations made together, so often neighbours).
    running: Isolated<Running>,
}

struct Shared {
    queue: Injector<Arc<Actor>>,
    /// The current worker of each place in the pool.
    slots: parking_lot::RwLock<Vec<Arc<Slot>>>,
    /// Indices of parked (or about to park) workers.
    idle: Mutex<Vec<usize>>,
    idle_count: AtomicUsize,
    /// Workers looking for work without being parked. While one is, a push needs no
    /// wake-up: a futex wake costs the pusher microseconds, more than the message itself.
    spinning: AtomicUsize,
    shutdown: AtomicBool,
    started: Instant,
    /// What workers run (set by `start`, used again for each replacement).
    run: OnceLock<Arc<RunFn>>,
    /// Stack size of each worker thread.
    stack_size: usize,
    /// Threads started (the first ones and every replacement), for joining on drop.
    threads: Mutex<Vec<(Arc<Slot>, JoinHandle<()>)>>,
    /// Workers retired so far.
    retired: AtomicUsize,
}

/// One worker's idle time: completed idle periods, and when the current one began.
///
/// Only parking reads the clock (a futex sleep costs far more anyway): a worker that keeps
/// finding work, or finds it while spinning, pays nothing. Reading it around the spin as
/// well cost about 40 ns per message when a consumer keeps catching up with its producer.
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
            .slots
            .read()
            .iter()
            .map(|s| &s.clock)
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

    /// What each worker runs now: (actor id, callback, since on the coarse clock).
    pub(crate) fn running(&self) -> Vec<(u64, u8, u64)> {
        self.shared
            .slots
            .read()
            .iter()
            .filter_map(|s| s.running.read())
            .collect()
    }

    /// Retires the worker running `actor` (killed inside a callback) and starts a fresh
    /// one in its place. False if no worker runs it now.
    pub(crate) fn retire_worker_of(&self, actor: u64) -> bool {
        let shared = &self.shared;
        let mut slots = shared.slots.write();
        let Some(i) = slots.iter().position(|s| {
            s.running.actor.load(Ordering::SeqCst) == actor && !s.running.is_retired()
        }) else {
            return false;
        };
        slots[i].running.retired.store(true, Ordering::SeqCst);
        let parker = Parker::new();
        let slot = Arc::new(Slot {
            unparker: parker.unparker().clone(),
            clock: IdleClock::default(),
            running: Isolated::new(Running::default()),
        });
        slots[i] = slot.clone();
        drop(slots);
        shared.retired.fetch_add(1, Ordering::Relaxed);
        if let Some(run) = shared.run.get() {
            spawn_worker(shared_arc(self), i, slot, parker, run.clone());
        }
        true
    }
}

fn shared_arc(q: &RunQueue) -> Arc<Shared> {
    q.shared.clone()
}

/// Starts worker `i` on `slot`.
fn spawn_worker(shared: Arc<Shared>, i: usize, slot: Arc<Slot>, parker: Parker, run: Arc<RunFn>) {
    let q = RunQueue {
        shared: shared.clone(),
    };
    let me = slot.clone();
    let handle = std::thread::Builder::new()
        .name(format!("sched-{i}"))
        .stack_size(shared.stack_size)
        .spawn(move || worker(i, &q.shared, &me, &parker, &*run, &q))
        .expect("spawn scheduler thread");
    shared.threads.lock().push((slot, handle));
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
}

impl Scheduler {
    /// A pool of `threads` workers (at least one), not running yet; its queue can be used
    /// at once (actors queued before `start` wait for it).
    pub fn new(threads: usize, stack_size: usize) -> Scheduler {
        let threads = threads.max(1);
        let parkers: Vec<Parker> = (0..threads).map(|_| Parker::new()).collect();
        let shared = Arc::new(Shared {
            queue: Injector::new(),
            slots: parking_lot::RwLock::new(
                parkers
                    .iter()
                    .map(|p| {
                        Arc::new(Slot {
                            unparker: p.unparker().clone(),
                            clock: IdleClock::default(),
                            running: Isolated::new(Running::default()),
                        })
                    })
                    .collect(),
            ),
            idle: Mutex::new(Vec::with_capacity(threads)),
            idle_count: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            started: Instant::now(),
            run: OnceLock::new(),
            stack_size: stack_size.max(64 << 10),
            threads: Mutex::new(Vec::new()),
            retired: AtomicUsize::new(0),
        });
        Scheduler {
            queue: RunQueue { shared },
            parkers: Mutex::new(parkers),
        }
    }

    /// Starts the workers, which run actors with `run`.
    pub fn start(&mut self, run: Arc<RunFn>) {
        let shared = self.queue.shared.clone();
        let _ = shared.run.set(run.clone());
        let slots: Vec<Arc<Slot>> = shared.slots.read().clone();
        for (i, (parker, slot)) in std::mem::take(&mut *self.parkers.lock())
            .into_iter()
            .zip(slots)
            .enumerate()
        {
            spawn_worker(shared.clone(), i, slot, parker, run.clone());
        }
    }

    /// A handle for queuing actors.
    pub fn run_queue(&self) -> RunQueue {
        self.queue.clone()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let shared = &self.queue.shared;
        shared.shutdown.store(true, Ordering::SeqCst);
        for s in shared.slots.read().iter() {
            s.unparker.unpark();
        }
        // A retired worker may be inside a callback that never returns: not joined.
        let threads = std::mem::take(&mut *shared.threads.lock());
        for (slot, t) in threads {
            if !slot.running.is_retired() {
                let _ = t.join();
            }
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

fn worker(i: usize, shared: &Shared, me: &Slot, parker: &Parker, run: &RunFn, q: &RunQueue) {
    SLOT.with(|s| *s.borrow_mut() = Some(None));
    let take_slot = || SLOT.with(|s| s.borrow_mut().as_mut().and_then(Option::take));
    let mut streak = 0u32;
    let running = &me.running;
    let run_one = |actor: Arc<Actor>| {
        if run(&actor, running) {
            // More mail: keep it on this core (next-run slot) rather than bouncing it to
            // the other worker each batch; the streak limit keeps this fair.
            q.push(actor);
        }
    };
    while !shared.shutdown.load(Ordering::Relaxed) {
        if running.is_retired() {
            // Killed inside a callback and replaced: hand the next-run slot's actor to
            // the pool and leave it.
            if let Some(actor) = take_slot() {
                q.push_shared(actor);
            }
            return;
        }
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
        let clock = &me.clock;
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
        if let Some(s) = shared.slots.read().get(w) {
            s.unparker.unpark();
        }
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
