//! A fixed pool of scheduler threads running actors from a shared run queue.
//!
//! There is no thread per actor: an actor with messages is put on the run queue once (see
//! `Actor::try_claim`), a worker takes it, handles up to [`BATCH`] messages, and puts it
//! back if more are waiting — BEAM's reductions, in spirit, so one busy actor cannot starve
//! the others. Idle workers spin briefly (a message usually arrives within microseconds
//! under load, and a futex wake costs several) and then park until woken.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::deque::{Injector, Steal};
use crossbeam::sync::{Parker, Unparker};
use parking_lot::Mutex;

use crate::actor::Actor;

/// Messages an actor may handle before it yields its worker to others.
pub const BATCH: usize = 64;

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
    shutdown: AtomicBool,
}

/// Handle to push work onto the pool; cheap to clone.
#[derive(Clone)]
pub struct RunQueue {
    shared: Arc<Shared>,
}

impl RunQueue {
    /// Queues an actor the caller has claimed (`Actor::try_claim` returned true).
    pub fn push(&self, actor: Arc<Actor>) {
        self.shared.queue.push(actor);
        // SeqCst pairs with the worker's registration in `idle` followed by a re-check of
        // the queue: either the worker sees this push, or we see it idle and wake it.
        if self.shared.idle_count.load(Ordering::SeqCst) > 0 {
            let who = self.shared.idle.lock().pop();
            if let Some(i) = who {
                self.shared.idle_count.fetch_sub(1, Ordering::SeqCst);
                self.shared.unparkers[i].unpark();
            }
        }
    }

    /// Number of actors waiting for a worker.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether no actor waits for a worker.
    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }
}

/// The worker pool. Dropping it stops and joins the workers.
pub struct Scheduler {
    queue: RunQueue,
    threads: Vec<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts `threads` workers (at least one) that run actors with `run`.
    pub fn start(threads: usize, run: Arc<RunFn>) -> Scheduler {
        let threads = threads.max(1);
        let parkers: Vec<Parker> = (0..threads).map(|_| Parker::new()).collect();
        let shared = Arc::new(Shared {
            queue: Injector::new(),
            unparkers: parkers.iter().map(|p| p.unparker().clone()).collect(),
            idle: Mutex::new(Vec::with_capacity(threads)),
            idle_count: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
        });
        let queue = RunQueue { shared: shared.clone() };
        let handles = parkers
            .into_iter()
            .enumerate()
            .map(|(i, parker)| {
                let shared = shared.clone();
                let run = run.clone();
                let q = queue.clone();
                std::thread::Builder::new()
                    .name(format!("sched-{i}"))
                    .spawn(move || worker(i, &shared, &parker, &*run, &q))
                    .expect("spawn scheduler thread")
            })
            .collect();
        Scheduler { queue, threads: handles }
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
    let mut spins = 0u32;
    while !shared.shutdown.load(Ordering::Relaxed) {
        if let Some(actor) = take(shared) {
            spins = 0;
            if run(&actor) {
                q.push(actor);
            }
            continue;
        }
        if spins < SPIN_ROUNDS {
            spins += 1;
            if spins % 16 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        // Register as idle, then look once more before sleeping (see RunQueue::push).
        shared.idle.lock().push(i);
        shared.idle_count.fetch_add(1, Ordering::SeqCst);
        if let Some(actor) = take(shared) {
            unregister(i, shared);
            spins = 0;
            if run(&actor) {
                q.push(actor);
            }
            continue;
        }
        parker.park_timeout(Duration::from_millis(100));
        unregister(i, shared);
        spins = 0;
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
