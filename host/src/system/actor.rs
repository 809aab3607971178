//! An actor as the host keeps it: a mailbox, a state handle, the behaviour version that
//! owns that state, and two flags the scheduler and the swap coordinate through.
//!
//! Invariants (the scheduler, the swap and the FFI glue rely on them):
//! 1. At most one thread runs callbacks on an actor at a time: callbacks run only while
//!    holding `core`, and only a thread that won `queued` (IDLE -> QUEUED) runs the actor.
//! 2. `core.state` was made by `core.version` and is freed by it, exactly once.
//! 3. A runner checks `suspended` under `core` before every message; the swap sets
//!    `suspended` *before* taking `core`. So once the swap holds `core`, no further message
//!    is handled until it releases its hold — the actor stops at a message boundary.
//!    Holds count: an operator's suspend and a swap's are independent.
//! 4. Whoever makes `queued` go IDLE re-checks the mailbox afterwards (see
//!    [`Actor::release`]), so a message pushed concurrently is never stranded.
//! 5. An actor killed while a callback holds `core` is *abandoned* (see
//!    [`Actor::abandon`]): whoever wins the flag makes it dead to the world at once
//!    (unregistered, mailbox and callers failed, links and monitors told) without `core`;
//!    the thread in the callback, when it returns, touches nothing of the world and frees
//!    the state through `core.version` (invariant 2) — or, if it raced past its last look,
//!    the actor's drop does.
//! 6. Nothing that answers an operator or serves another actor waits on `core` without a
//!    deadline: a callback may run for ever while holding it. What an operator sees
//!    (the version, whether a callback runs and since when) is published outside it.
//! 7. An actor is registered before its `init` runs, maybe on another thread (a remote
//!    spawn is answered with the pid first, as BEAM does). Until `init` ran it is
//!    *starting*: it holds its run claim (invariant 4), so no worker runs it, and
//!    `core.starting` is set, so whoever takes `core` knows there is no state to call the
//!    behaviour on — the swap waits for it to clear, an operator is answered busy, a kill
//!    abandons it (invariant 5) and `init` then never runs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use plugin_api::abi::StatePtr;

use rustc_hash::FxHashSet;

use super::behaviour::BehaviourVersion;
use super::delayed::TimerIds;
use super::mailbox::Mailbox;
use crate::util::ids::{ActorId, MonitorRef};
use crate::util::isolated::Isolated;

/// The part of an actor only the thread running it (or the swap) touches.
pub(crate) struct Core {
    /// The version running this actor; keeps its library loaded.
    pub(crate) version: Arc<BehaviourVersion>,
    /// The state, owned by `version`.
    pub(crate) state: StatePtr,
    /// False once the actor stopped; its state has been freed.
    pub(crate) alive: bool,
    /// Registered, but `init` has not run: `state` is null (invariant 7).
    pub(crate) starting: bool,
}

/// A system message: handled before any user message, also by an actor that is busy
/// with a long mailbox (OTP's signals).
#[derive(Debug)]
pub(crate) enum Signal {
    /// The host ends the actor with this reason; it cannot be trapped (OTP's
    /// `max_heap_size` kill). Used when the mailbox passes `max_mailbox`.
    Kill {
        /// The reason, as ETF.
        reason: Vec<u8>,
    },
    /// An exit signal from a linked actor that died, or from `Ctx::exit`.
    Exit {
        /// Who sent it.
        from: ActorId,
        /// The reason, as ETF.
        reason: Vec<u8>,
    },
}

/// One actor.
pub(crate) struct Actor {
    /// Unique id (never reused while the host runs).
    pub(crate) id: ActorId,
    /// Registered name, if any.
    pub(crate) name: Option<String>,
    /// Behaviour name (stable across versions).
    pub(crate) behaviour: Arc<str>,
    /// Pending messages.
    ///
    /// On cache lines of its own: senders write it on every message, and sharing a line
    /// with the flags the runner reads per message (`suspended`, the signal count) doubled
    /// the cost of a message (measured: 343 ns -> 158 ns per host -> actor message).
    pub(crate) mailbox: Isolated<Mailbox>,
    /// True while the actor is in a run queue or running (invariant 4).
    queued: AtomicBool,
    /// How many holders keep the actor at a message boundary (invariant 3): a swap, and
    /// an operator's `suspend`, independently — a swap's resume does not undo an
    /// operator's suspend.
    suspended: AtomicU32,
    /// Whether an operator suspended the actor (`host ctl suspend`); their one hold.
    sys_suspended: AtomicBool,
    /// Killed while inside a callback (invariant 5).
    abandoned: AtomicBool,
    /// Someone follows this actor's messages (`host ctl trace`). Read once per message
    /// and once per callback, next to the flags the runner reads anyway.
    traced: AtomicBool,
    /// It monitored a process or node on another node: its exit removes those monitors.
    remote_watcher: AtomicBool,
    /// State and version (invariant 1).
    pub(crate) core: Mutex<Core>,
    /// Messages handled so far.
    handled: AtomicU64,
    /// Pending system messages, and how many (checked without the lock on every message).
    signals: parking_lot::Mutex<VecDeque<Signal>>,
    signal_count: AtomicUsize,
    /// Linked actors (both sides hold the link). A set: a parent of N linked children
    /// links and unlinks each in O(1), not O(N).
    pub(crate) links: parking_lot::Mutex<FxHashSet<ActorId>>,
    /// Whether exit signals arrive as `{'EXIT', From, Reason}` messages.
    trap_exit: AtomicBool,
    /// Monitors on this actor: (reference, watcher).
    pub(crate) monitored_by: parking_lot::Mutex<Vec<(MonitorRef, ActorId)>>,
    /// Most messages its mailbox may hold before the actor is killed; 0 = no limit.
    pub(crate) max_mailbox: AtomicUsize,
    /// Timers this actor armed (whatever they are addressed to) and timers addressed to
    /// it by id: all cancelled when it dies (see `delayed`).
    pub(crate) timers: parking_lot::Mutex<TimerIds>,
    /// The version running it, published for operators (invariant 5); changed only with
    /// `core.version`.
    published: parking_lot::Mutex<Arc<BehaviourVersion>>,
}

impl Actor {
    /// A new idle actor, starting (invariant 7): no state until its `init` ran.
    pub(crate) fn new(id: ActorId, name: Option<String>, version: Arc<BehaviourVersion>) -> Self {
        Actor {
            id,
            name,
            behaviour: version.name.clone(),
            published: parking_lot::Mutex::new(version.clone()),
            mailbox: Isolated::new(Mailbox::default()),
            queued: AtomicBool::new(false),
            suspended: AtomicU32::new(0),
            sys_suspended: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            traced: AtomicBool::new(false),
            remote_watcher: AtomicBool::new(false),
            core: Mutex::new(Core {
                version,
                state: StatePtr::NULL,
                alive: true,
                starting: true,
            }),
            handled: AtomicU64::new(0),
            signals: parking_lot::Mutex::new(VecDeque::new()),
            signal_count: AtomicUsize::new(0),
            links: parking_lot::Mutex::new(FxHashSet::default()),
            trap_exit: AtomicBool::new(false),
            monitored_by: parking_lot::Mutex::new(Vec::new()),
            max_mailbox: AtomicUsize::new(0),
            timers: parking_lot::Mutex::new(TimerIds::default()),
        }
    }

    /// Claims the right to enqueue this actor; true if the caller must put it on a run
    /// queue (it was idle), false if it is already queued or running.
    pub(crate) fn try_claim(&self) -> bool {
        // A load first: under load the actor is usually queued already, and a load of a
        // shared line is much cheaper than a read-modify-write of it. Seeing `true` here is
        // as good as the swap seeing it: the runner stores `false` *before* it re-checks
        // the mailbox (invariant 4), so if our load precedes that store, the runner's
        // re-check sees the message we pushed before loading.
        !self.queued.load(Ordering::SeqCst) && !self.queued.swap(true, Ordering::SeqCst)
    }

    /// Called by the runner when it stops running the actor. Returns true if the actor
    /// must be queued again (messages arrived and it is not suspended), in which case the
    /// caller now owns the claim (invariant 4).
    pub(crate) fn release(&self) -> bool {
        self.queued.store(false, Ordering::SeqCst);
        if self.is_suspended() || (self.mailbox.is_empty() && !self.has_signals()) {
            return false;
        }
        self.try_claim()
    }

    /// Queues a system message (the caller then makes sure the actor runs).
    pub(crate) fn push_signal(&self, sig: Signal) {
        let mut q = self.signals.lock();
        q.push_back(sig);
        self.signal_count.store(q.len(), Ordering::SeqCst);
    }

    /// Whether a system message waits.
    pub(crate) fn has_signals(&self) -> bool {
        self.signal_count.load(Ordering::SeqCst) > 0
    }

    /// Takes every waiting system message, oldest first.
    pub(crate) fn take_signals(&self) -> VecDeque<Signal> {
        let mut q = self.signals.lock();
        self.signal_count.store(0, Ordering::SeqCst);
        std::mem::take(&mut *q)
    }

    /// Marks the actor killed inside a callback; true for the one caller that wins, who
    /// then makes it dead to the world (invariant 5).
    pub(crate) fn abandon(&self) -> bool {
        !self.abandoned.swap(true, Ordering::SeqCst)
    }

    /// Whether the actor was abandoned (invariant 5): its runner must touch nothing more.
    #[inline]
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Frees an abandoned actor's state through the version that made it (invariant 2),
    /// once; the caller holds `core`.
    pub(crate) fn reap(core: &mut Core) {
        if core.alive {
            core.alive = false;
            let state = std::mem::replace(&mut core.state, StatePtr::NULL);
            (core.version.desc.drop_state)(state);
        }
    }

    /// Notes that the actor monitors something on another node.
    pub(crate) fn mark_remote_watcher(&self) {
        self.remote_watcher.store(true, Ordering::Relaxed);
    }

    /// Whether it ever monitored something on another node.
    pub(crate) fn is_remote_watcher(&self) -> bool {
        self.remote_watcher.load(Ordering::Relaxed)
    }

    /// Whether the actor is on a run queue or running (for operators; racy by nature).
    pub(crate) fn is_queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether a runner should stop before the next message.
    pub(crate) fn is_suspended(&self) -> bool {
        self.suspended.load(Ordering::SeqCst) > 0
    }

    /// Holds the actor at its next message boundary (invariant 3): set *before* taking
    /// `core`, so once the caller holds `core` no further message is handled.
    pub(crate) fn suspend(&self) {
        self.suspended.fetch_add(1, Ordering::SeqCst);
    }

    /// Releases one hold taken by [`Actor::suspend`]. Returns true if that was the last
    /// hold, the actor has mail (or signals), and the caller won the claim and must queue
    /// it (invariant 4).
    pub(crate) fn resume(&self) -> bool {
        let before = self.suspended.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "resume without suspend");
        before == 1 && (!self.mailbox.is_empty() || self.has_signals()) && self.try_claim()
    }

    /// An operator's suspend (`sys:suspend`): false if they already hold the actor.
    pub(crate) fn sys_suspend(&self) -> bool {
        if self.sys_suspended.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.suspend();
        true
    }

    /// An operator's resume (`sys:resume`): `None` if they did not hold the actor, else
    /// whether the caller must queue it (as [`Actor::resume`]).
    pub(crate) fn sys_resume(&self) -> Option<bool> {
        if !self.sys_suspended.swap(false, Ordering::SeqCst) {
            return None;
        }
        Some(self.resume())
    }

    /// Whether an operator holds the actor suspended.
    pub(crate) fn is_sys_suspended(&self) -> bool {
        self.sys_suspended.load(Ordering::SeqCst)
    }

    /// Whether someone follows this actor's messages.
    pub(crate) fn is_traced(&self) -> bool {
        self.traced.load(Ordering::Relaxed)
    }

    /// Starts or stops following this actor's messages.
    pub(crate) fn set_traced(&self, on: bool) {
        self.traced.store(on, Ordering::Relaxed);
    }

    /// Whether exit signals arrive as messages; `process_flag(trap_exit, _)` sets it.
    pub(crate) fn traps_exits(&self) -> bool {
        self.trap_exit.load(Ordering::SeqCst)
    }

    /// Sets `trap_exit`; returns the previous value.
    pub(crate) fn set_trap_exit(&self, on: bool) -> bool {
        self.trap_exit.swap(on, Ordering::SeqCst)
    }

    /// The version it runs, as published (invariant 6): never waits on a callback.
    pub(crate) fn running_version(&self) -> Arc<BehaviourVersion> {
        self.published.lock().clone()
    }

    /// Publishes the version it now runs (after a swap changed `core.version`).
    pub(crate) fn publish_version(&self, version: &Arc<BehaviourVersion>) {
        *self.published.lock() = version.clone();
    }

    /// Messages handled so far.
    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Counts `n` more handled messages (once per batch).
    pub(crate) fn count_handled(&self, n: u64) {
        self.handled.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        // Invariant 5: an abandoned actor whose runner raced past its last look.
        if *self.abandoned.get_mut() {
            Actor::reap(self.core.get_mut());
        }
    }
}

#[cfg(test)]
mod tests;
