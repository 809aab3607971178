//! One timer thread for the whole host: `send_after` timers and request timeouts.
//!
//! Timers live in a binary heap ordered by deadline; cancelling removes the timer's
//! action from a map and leaves a tombstone in the heap that is skipped when it comes up.
//! No thread per timer, and a cancelled timer costs nothing when its deadline passes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// What happens when a timer fires.
#[derive(Debug)]
pub enum TimerAction {
    /// Deliver an info message to an actor.
    Send { to: u64, bytes: Vec<u8> },
    /// A request's deadline: if it is still pending, the requester gets `{timeout, Ref}`.
    RequestTimeout { tag: u64 },
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    actions: HashMap<u64, TimerAction>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
    next: AtomicU64,
}

/// Handle to the timer thread. Dropping the [`TimerService`] stops it.
#[derive(Clone)]
pub struct Timers {
    shared: Arc<Shared>,
}

impl Timers {
    /// Schedules `action` after `delay`; returns the timer's reference (never 0).
    pub fn schedule(&self, delay: Duration, action: TimerAction) -> u64 {
        let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + delay.min(Duration::from_secs(100 * 365 * 86_400));
        let mut st = self.shared.state.lock();
        let earliest = st.heap.peek().map(|Reverse((d, _))| *d);
        st.heap.push(Reverse((deadline, id)));
        st.actions.insert(id, action);
        drop(st);
        if earliest.is_none_or(|e| deadline < e) {
            self.shared.wake.notify_one();
        }
        id
    }

    /// Cancels a timer; true if it had not fired yet.
    pub fn cancel(&self, id: u64) -> bool {
        self.shared.state.lock().actions.remove(&id).is_some()
    }

    /// Number of pending timers.
    pub fn pending(&self) -> usize {
        self.shared.state.lock().actions.len()
    }
}

/// The timer thread.
pub struct TimerService {
    timers: Timers,
    thread: Option<JoinHandle<()>>,
}

impl TimerService {
    /// Starts the thread; `fire` runs each due action (on the timer thread, so it must be
    /// quick: it only queues messages).
    pub fn start(fire: impl Fn(TimerAction) + Send + 'static) -> TimerService {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            next: AtomicU64::new(1),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || run(&s, fire))
            .expect("spawn timer thread");
        TimerService {
            timers: Timers { shared },
            thread: Some(thread),
        }
    }

    /// A handle for scheduling.
    pub fn handle(&self) -> Timers {
        self.timers.clone()
    }
}

impl Drop for TimerService {
    fn drop(&mut self) {
        self.timers.shared.stop.store(true, Ordering::SeqCst);
        self.timers.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, fire: impl Fn(TimerAction)) {
    let mut due = Vec::new();
    loop {
        {
            let mut st = shared.state.lock();
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let now = Instant::now();
                while let Some(Reverse((deadline, id))) = st.heap.peek().copied() {
                    if deadline > now {
                        break;
                    }
                    st.heap.pop();
                    if let Some(action) = st.actions.remove(&id) {
                        due.push(action);
                    }
                }
                if !due.is_empty() {
                    break;
                }
                match st.heap.peek() {
                    Some(Reverse((deadline, _))) => {
                        let d = *deadline;
                        shared.wake.wait_until(&mut st, d);
                    }
                    None => shared.wake.wait(&mut st),
                }
            }
        }
        for action in due.drain(..) {
            fire(action);
        }
    }
}
