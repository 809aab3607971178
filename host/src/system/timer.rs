//! One timer thread for the whole host: `send_after` timers and request timeouts.
//!
//! # What it must do
//!
//! Every actor-to-actor request (`Ctx::request`) schedules a timeout and its reply cancels
//! it, so `schedule` + `cancel` sit on the request/reply hot path (budget: about 1 µs for
//! the whole round trip) and are called from every scheduler thread. Almost all of these
//! timers are cancelled long before their deadline. At the same time `send_after` timers
//! may be pending for hours, and 100,000 pending timers must be cheap and fire on time.
//!
//! # Structure: a hierarchical timing wheel over a slab
//!
//! - **Slab.** Each pending timer is one `Entry` (80 bytes, action included) in a slab
//!   that grows in fixed chunks of 512 entries (chunks never move, so growing never
//!   copies the pending timers, and unused capacity is at most one chunk). Freed entries
//!   go on a LIFO free list, so a schedule right after a cancel reuses a cache-hot entry.
//! - **Ids.** A timer's id is `generation << 32 | (index + 1)`: never 0, unique among
//!   pending timers (the index is occupied while the timer is pending), and a stale id
//!   (the timer fired or was cancelled, and the entry was reused) fails the generation
//!   check, so it cannot cancel someone else's timer. The generation is 32 bits per entry;
//!   a stale id could only match again after exactly a multiple of 2³² reuses of its entry.
//! - **Wheel.** Time is counted in 1 ms ticks since the service started. Seven levels
//!   of 64 slots: level 0 slots are 1 ms wide, level 1 slots 64 ms, level 2 slots 4.1 s,
//!   level 3 4.4 min, level 4 4.7 h, level 5 12.4 days, level 6 2.2 years: together
//!   2⁴² ms ≈ 139 years. A timer goes to
//!   the level of the highest 6-bit digit in which its deadline tick differs from the
//!   wheel's current tick, and there into the slot named by that digit. Each slot is an
//!   intrusive doubly-linked list threaded through the slab entries, and each level keeps
//!   a 64-bit occupancy mask. So `schedule` is: pop a free entry, a few bit operations,
//!   append to a list; `cancel` is: check the generation, unlink, push on the free list.
//!   Both are O(1), and a cancelled timer leaves nothing behind (no tombstones).
//! - **Advancing.** The timer thread finds the next occupied slot with one
//!   `rotate_right` + `trailing_zeros` per level (the lowest non-empty level always holds
//!   the earliest timers). When the wheel's time reaches a level-0 slot its timers fire;
//!   when it reaches a slot of a higher level, the slot's timers are re-filed into lower
//!   levels ("cascading"), each timer at most once per level. Empty slots cost nothing:
//!   the thread jumps straight from one occupied slot to the next.
//!
//! # Timing rules
//!
//! - A deadline is rounded *up* to the next whole tick, and a tick is processed only once
//!   the clock has passed it, so a timer never fires early. It fires up to about one tick
//!   (plus the OS wake-up latency) late: about 0.6 ms late at the median.
//! - The timers that come due in one pass are handed to `fire` in deadline order (exact
//!   deadline, not just tick; equal deadlines, to the nanosecond, in no set order).
//! - Delays are clamped to 100 years (`MAX_DELAY`); `Duration::MAX` means "never, in
//!   practice", and such a timer just sits in the top level until it is cancelled.
//!
//! # Sleeping and waking
//!
//! The thread sleeps until the start of the next occupied slot, or indefinitely when there
//! are no timers; it never polls an idle wheel. `schedule` wakes it (a futex syscall) only
//! when the new timer is due before the time the thread plans to wake. That alone would
//! make request traffic expensive: with nothing else pending (or only a long timer), every
//! request's timeout would be earlier than the planned wake-up, and every `schedule` would
//! pay a syscall and a context switch. So while schedules keep arriving the thread caps
//! its sleep at `BUSY_WAKE` (10 ms): then only timers shorter than that can need a wake-up
//! call, and the thread wakes at most 100 times a second. After one quiet interval with no
//! `schedule` it goes back to sleeping until the next occupied slot.
//!
//! # Locking
//!
//! One `parking_lot` mutex guards the wheel. Its critical sections in `schedule` and
//! `cancel` are a few dozen instructions (no allocation: a new slab chunk is allocated
//! before taking the lock, and a cancelled action is dropped after releasing it). The timer
//! thread holds it only while moving due actions out of the wheel, never while calling
//! `fire`, so `fire` may itself schedule or cancel timers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::util::ids::ActorId;

/// What happens when a timer fires.
#[derive(Debug)]
#[allow(missing_docs)] // fields are described on each variant
pub enum TimerAction {
    /// Deliver an info message to an actor, resolving a name at delivery (as Erlang's
    /// `send_after` does). `owner` is the actor that set the timer: only it may cancel it.
    Send {
        owner: ActorId,
        to: TimerTarget,
        bytes: Vec<u8>,
    },
    /// A request's deadline: if it is still pending, the requester gets `{timeout, Ref}`.
    RequestTimeout { tag: u64 },
    /// The next tick of an interval timer (its message and period live in the runtime).
    Interval { iref: u64 },
}

/// Who a timer's message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerTarget {
    /// An actor id (dies with the actor).
    Id(ActorId),
    /// A registered name, looked up when the timer fires.
    Name(String),
}

/// Nanoseconds per tick: the wheel's resolution is 1 ms.
const TICK_NS: u64 = 1_000_000;
/// Bits of a tick consumed per level: 64 slots per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Levels; together they span 2^(6·7) = 2⁴² ticks ≈ 139 years.
const LEVELS: usize = 7;
/// The wheel's span in ticks: a timer is never filed further ahead than this.
const SPAN: u64 = 1 << (SLOT_BITS * LEVELS as u32);
/// The longest delay honoured; longer ones (up to `Duration::MAX`) are clamped to it.
const MAX_DELAY: Duration = Duration::from_secs(100 * 365 * 86_400);
/// The longest the thread sleeps while `schedule` calls keep arriving (see module docs).
const BUSY_WAKE: u64 = 10;
/// Slab entries per chunk (a power of two).
const CHUNK: usize = 512;
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();
/// "No entry" in list links and slot heads.
const NIL: u32 = u32::MAX;
/// `Entry::bucket` of an entry that is not in the wheel (on the free list).
const FREE: u16 = u16::MAX;

/// One timer, in the slab. 80 bytes on 64-bit targets, action included.
#[derive(Default)]
struct Entry {
    /// `Some` while pending.
    action: Option<TimerAction>,
    /// The exact deadline, in nanoseconds since the service's origin.
    deadline: u64,
    /// Next entry in its slot's list, or in the free list.
    next: u32,
    /// Previous entry in its slot's list.
    prev: u32,
    /// Bumped each time the entry is freed, so stale ids do not match.
    gen: u32,
    /// `level * SLOTS + slot` while in the wheel, `FREE` otherwise.
    bucket: u16,
}

fn new_chunk() -> Box<[Entry]> {
    (0..CHUNK)
        .map(|_| Entry {
            next: NIL,
            prev: NIL,
            bucket: FREE,
            ..Entry::default()
        })
        .collect()
}

/// The tick at or after `deadline` (ns): a timer may fire once this tick has been reached.
fn tick_of(deadline: u64) -> u64 {
    deadline.div_ceil(TICK_NS)
}

/// The timing wheel and its slab; all state behind the mutex.
struct Wheel {
    chunks: Vec<Box<[Entry]>>,
    /// Entries ever handed out; indices below this are pending or on the free list.
    used: u32,
    /// Head of the free list.
    free: u32,
    /// Pending timers.
    len: usize,
    /// The wheel's current tick: every timer due at or before it has been taken out.
    elapsed: u64,
    heads: [u32; LEVELS * SLOTS],
    tails: [u32; LEVELS * SLOTS],
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The tick the thread will wake at by itself; 0 while it is awake.
    sleeping_until: u64,
    /// A timer was scheduled since the thread last went to sleep.
    busy: bool,
}

impl Wheel {
    fn new() -> Wheel {
        Wheel {
            chunks: Vec::new(),
            used: 0,
            free: NIL,
            len: 0,
            elapsed: 0,
            heads: [NIL; LEVELS * SLOTS],
            tails: [NIL; LEVELS * SLOTS],
            occupied: [0; LEVELS],
            sleeping_until: 0,
            busy: false,
        }
    }

    fn entry(&self, i: u32) -> &Entry {
        &self.chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)]
    }

    fn entry_mut(&mut self, i: u32) -> &mut Entry {
        &mut self.chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)]
    }

    /// Whether `insert` can run without a new chunk.
    fn has_free(&self) -> bool {
        self.free != NIL || (self.used as usize) < self.chunks.len() * CHUNK
    }

    fn add_chunk(&mut self, chunk: Box<[Entry]>) {
        assert!(
            (self.chunks.len() + 2) * CHUNK < NIL as usize,
            "too many pending timers"
        );
        self.chunks.push(chunk);
    }

    /// Files a new timer; the caller has made sure `has_free()`. Returns its id and the tick
    /// it was filed under.
    fn insert(&mut self, deadline: u64, action: TimerAction) -> (u64, u64) {
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.entry(i).next;
            i
        } else {
            self.used += 1;
            self.used - 1
        };
        let e = self.entry_mut(i);
        e.action = Some(action);
        e.deadline = deadline;
        let gen = e.gen;
        self.len += 1;
        let tick = self.place(i);
        ((u64::from(gen) << 32) | (u64::from(i) + 1), tick)
    }

    /// Whether `id` names a pending timer.
    fn is_pending(&self, id: u64) -> bool {
        let i = (id as u32).wrapping_sub(1);
        i < self.used && {
            let e = self.entry(i);
            e.gen == (id >> 32) as u32 && e.bucket != FREE
        }
    }

    /// Removes a pending timer by id if `allow` accepts its action; the action if removed.
    fn cancel(&mut self, id: u64, allow: impl FnOnce(&TimerAction) -> bool) -> Option<TimerAction> {
        let i = (id as u32).wrapping_sub(1);
        if i >= self.used {
            return None;
        }
        let e = self.entry(i);
        if e.gen != (id >> 32) as u32 || e.bucket == FREE {
            return None;
        }
        if !e.action.as_ref().is_some_and(allow) {
            return None;
        }
        self.unlink(i);
        Some(self.release(i))
    }

    /// Files entry `i` in the slot for its deadline, relative to the current tick; returns
    /// the tick it was filed under.
    fn place(&mut self, i: u32) -> u64 {
        let now = self.elapsed;
        // Due already (or now): the next tick. Beyond the wheel's span: its last tick; the
        // timer is re-filed (not fired) when that comes, as its real deadline is later.
        let tick = tick_of(self.entry(i).deadline).clamp(now + 1, now + SPAN - 1);
        let masked = (now ^ tick) | (SLOTS as u64 - 1);
        let level = (((63 - masked.leading_zeros()) / SLOT_BITS) as usize).min(LEVELS - 1);
        let slot = (tick >> (level as u32 * SLOT_BITS)) as usize & (SLOTS - 1);
        self.link(i, level * SLOTS + slot);
        tick
    }

    /// Appends entry `i` to bucket `b`'s list.
    fn link(&mut self, i: u32, b: usize) {
        let tail = self.tails[b];
        let e = self.entry_mut(i);
        e.prev = tail;
        e.next = NIL;
        e.bucket = b as u16;
        if tail == NIL {
            self.heads[b] = i;
            self.occupied[b / SLOTS] |= 1 << (b % SLOTS);
        } else {
            self.entry_mut(tail).next = i;
        }
        self.tails[b] = i;
    }

    /// Takes entry `i` out of its slot's list.
    fn unlink(&mut self, i: u32) {
        let e = self.entry(i);
        let (prev, next, b) = (e.prev, e.next, e.bucket as usize);
        if prev == NIL {
            self.heads[b] = next;
        } else {
            self.entry_mut(prev).next = next;
        }
        if next == NIL {
            self.tails[b] = prev;
        } else {
            self.entry_mut(next).prev = prev;
        }
        if self.heads[b] == NIL {
            self.occupied[b / SLOTS] &= !(1 << (b % SLOTS));
        }
    }

    /// Frees entry `i` (already out of any list) and returns its action.
    fn release(&mut self, i: u32) -> TimerAction {
        let free = self.free;
        let e = self.entry_mut(i);
        let action = e.action.take().expect("pending entry has an action");
        e.gen = e.gen.wrapping_add(1);
        e.bucket = FREE;
        e.next = free;
        self.free = i;
        self.len -= 1;
        action
    }

    /// The next occupied slot: `(level, slot, tick at which it must be processed)`.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        let now = self.elapsed;
        // Timers in level l differ from `now` in digit l but agree above it, so every
        // timer in a lower level is due before every timer in a higher one.
        let level = self.occupied.iter().position(|&o| o != 0)?;
        let shift = level as u32 * SLOT_BITS;
        // Search circularly from the slot after the current one. Below the top level the
        // current slot and those before it are always empty (a timer goes to the level of
        // the highest digit in which it differs from `now`, where its digit is larger); in
        // the top level they hold timers one rotation ahead.
        let from = ((now >> shift) + 1) & (SLOTS as u64 - 1);
        let occupied = self.occupied[level];
        let slot = (u64::from(occupied.rotate_right(from as u32).trailing_zeros()) + from)
            & (SLOTS as u64 - 1);
        let slot_ticks = 1u64 << shift;
        let level_ticks = slot_ticks << SLOT_BITS;
        let mut start = (now & !(level_ticks - 1)) + slot * slot_ticks;
        if start <= now {
            start += level_ticks;
        }
        Some((level, slot as usize, start))
    }

    /// Moves the wheel's time to `now` (a tick): takes every timer due by then out of the
    /// wheel into `due` (with its exact deadline), re-filing the rest of the slots passed.
    fn advance(&mut self, now: u64, due: &mut Vec<(u64, TimerAction)>) {
        while let Some((level, slot, start)) = self.next_expiration() {
            if start > now {
                break;
            }
            self.elapsed = start;
            let b = level * SLOTS + slot;
            let mut i = self.heads[b];
            self.heads[b] = NIL;
            self.tails[b] = NIL;
            self.occupied[level] &= !(1 << slot);
            while i != NIL {
                let e = self.entry(i);
                let (next, deadline) = (e.next, e.deadline);
                if tick_of(deadline) <= start {
                    due.push((deadline, self.release(i)));
                } else {
                    self.place(i);
                }
                i = next;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }
}

struct Shared {
    wheel: Mutex<Wheel>,
    wake: Condvar,
    stop: AtomicBool,
    /// Tick 0; deadlines are nanoseconds since this instant.
    origin: Instant,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// A handle for scheduling and cancelling timers; cheap to clone and shared by all
/// scheduler threads. It stays usable after the [`TimerService`] is dropped, but then
/// nothing fires.
#[derive(Clone)]
pub struct Timers {
    shared: Arc<Shared>,
}

impl Timers {
    /// A set of timers with no thread firing them yet (see [`TimerService::start_on`]).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Timers {
        Timers {
            shared: Arc::new(Shared {
                wheel: Mutex::new(Wheel::new()),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
                origin: Instant::now(),
            }),
        }
    }

    /// Schedules `action` to be handed to the service's `fire` callback once `delay` has
    /// passed (never before; typically within a millisecond after), and returns the
    /// timer's id for [`Timers::cancel`]. The id is never 0 (so callers can use 0 as "no
    /// timer") and never equal to another pending timer's. Delays above 100 years are
    /// clamped. O(1); called on the request hot path.
    pub fn schedule(&self, delay: Duration, action: TimerAction) -> u64 {
        let shared = &*self.shared;
        let deadline = shared
            .now_ns()
            .saturating_add(delay.min(MAX_DELAY).as_nanos() as u64);
        let mut wheel = shared.wheel.lock();
        if !wheel.has_free() {
            // Allocate outside the lock; a chunk that turns out not to be needed (another
            // thread added one meanwhile) just becomes spare capacity.
            drop(wheel);
            let chunk = new_chunk();
            wheel = shared.wheel.lock();
            wheel.add_chunk(chunk);
        }
        let (id, tick) = wheel.insert(deadline, action);
        wheel.busy = true;
        let wake = tick < wheel.sleeping_until;
        drop(wheel);
        if wake {
            shared.wake.notify_one();
        }
        id
    }

    /// Cancels a timer and drops its action; true if it had not fired yet (false if it
    /// fired, is being fired, was already cancelled, or `id` was never a timer). A reply
    /// cancels its request's timeout this way, so it is O(1) and frees the entry at once.
    pub fn cancel(&self, id: u64) -> bool {
        self.cancel_if(id, |_| true)
    }

    /// Cancels a timer only if `allow` accepts its action: a plugin may cancel its own
    /// `send_after` timers, never another actor's nor the host's request timeouts, whose
    /// ids it could otherwise guess.
    pub fn cancel_if(&self, id: u64, allow: impl FnOnce(&TimerAction) -> bool) -> bool {
        let action = self.shared.wheel.lock().cancel(id, allow);
        // Dropped here, after the lock is released.
        action.is_some()
    }

    /// Whether `id` is still pending (not fired, not cancelled).
    pub fn is_pending(&self, id: u64) -> bool {
        self.shared.wheel.lock().is_pending(id)
    }

    /// Number of pending timers (scheduled, not yet fired or cancelled): for stats and
    /// tests.
    pub fn pending(&self) -> usize {
        self.shared.wheel.lock().len
    }
}

/// The timer thread. Owned by the runtime; dropping it stops and joins the thread (pending
/// timers then never fire).
pub struct TimerService {
    timers: Timers,
    thread: Option<JoinHandle<()>>,
}

impl TimerService {
    /// Starts the thread with a fresh set of timers. `fire` runs each due action on the
    /// timer thread, outside any lock, in deadline order; it must be quick (it only queues
    /// messages), since timers due meanwhile wait for it. A panic in `fire` is logged and
    /// the thread carries on.
    pub fn start(fire: impl Fn(TimerAction) + Send + 'static) -> TimerService {
        Self::start_on(Timers::new(), fire)
    }

    /// Like [`TimerService::start`], for timers made earlier with [`Timers::new`] (so their
    /// owner can hold them before the thread, which calls back into it, exists).
    pub fn start_on(timers: Timers, fire: impl Fn(TimerAction) + Send + 'static) -> TimerService {
        let s = timers.shared.clone();
        let thread = std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || run(&s, fire))
            .expect("spawn timer thread");
        TimerService {
            timers,
            thread: Some(thread),
        }
    }

    /// A handle for scheduling and cancelling, to give to whoever needs one.
    pub fn handle(&self) -> Timers {
        self.timers.clone()
    }
}

impl Drop for TimerService {
    fn drop(&mut self) {
        let shared = &self.timers.shared;
        {
            // Set under the lock: the thread checks `stop` and starts waiting in one
            // critical section, so it cannot miss this.
            let _wheel = shared.wheel.lock();
            shared.stop.store(true, Ordering::SeqCst);
        }
        shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, fire: impl Fn(TimerAction)) {
    let mut due: Vec<(u64, TimerAction)> = Vec::new();
    let mut wheel = shared.wheel.lock();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = shared.now_ns() / TICK_NS;
        wheel.advance(now, &mut due);
        if !due.is_empty() {
            MutexGuard::unlocked(&mut wheel, || {
                // Stable: equal deadlines keep their order.
                due.sort_by_key(|&(deadline, _)| deadline);
                for (_, action) in due.drain(..) {
                    if catch_unwind(AssertUnwindSafe(|| fire(action))).is_err() {
                        tracing::error!("a timer action panicked; the timer thread carries on");
                    }
                }
                if due.capacity() > 4 * CHUNK {
                    due.shrink_to(4 * CHUNK);
                }
            });
            continue;
        }
        let next = wheel.next_expiration().map(|(_, _, tick)| tick);
        let until = match (next, std::mem::take(&mut wheel.busy)) {
            (next, true) => next.unwrap_or(u64::MAX).min(now + BUSY_WAKE),
            (Some(next), false) => next,
            (None, false) => u64::MAX,
        };
        wheel.sleeping_until = until;
        match shared.origin.checked_add(Duration::from_millis(until)) {
            Some(at) if until != u64::MAX => {
                shared.wake.wait_until(&mut wheel, at);
            }
            _ => shared.wake.wait(&mut wheel),
        }
        wheel.sleeping_until = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
    use std::path::Path;
    use std::sync::atomic::{AtomicU8, AtomicUsize};
    use std::sync::mpsc;

    fn tag_of(a: &TimerAction) -> u64 {
        match a {
            TimerAction::RequestTimeout { tag } => *tag,
            TimerAction::Send { owner, .. } => owner.0,
            TimerAction::Interval { iref } => *iref,
        }
    }

    fn timeout(tag: u64) -> TimerAction {
        TimerAction::RequestTimeout { tag }
    }

    /// A service that reports `(tag, fired at)` on a channel.
    fn service() -> (TimerService, mpsc::Receiver<(u64, Instant)>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let svc = TimerService::start(move |a| {
            let _ = tx.lock().send((tag_of(&a), Instant::now()));
        });
        (svc, rx)
    }

    #[test]
    fn entry_is_small() {
        // The budget is 100 bytes per pending timer; the slab entry is all of it.
        assert!(
            std::mem::size_of::<Entry>() <= 96,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn fires_in_deadline_order_and_never_early() {
        let (svc, rx) = service();
        let t = svc.handle();
        // Scheduled out of order, some within the same millisecond.
        let delays_us = [
            30_000u64, 10_000, 20_500, 20_100, 20_900, 5_000, 40_000, 10_001,
        ];
        let mut deadlines = BTreeMap::new();
        for (tag, us) in delays_us.iter().enumerate() {
            let d = Duration::from_micros(*us);
            deadlines.insert(tag as u64, Instant::now() + d);
            t.schedule(d, timeout(tag as u64));
        }
        let fired: Vec<(u64, Instant)> = (0..delays_us.len())
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        for (tag, at) in &fired {
            assert!(*at >= deadlines[tag], "timer {tag} fired early");
        }
        let order: Vec<u64> = fired.iter().map(|f| f.0).collect();
        let mut expected: Vec<u64> = deadlines.keys().copied().collect();
        expected.sort_by_key(|tag| deadlines[tag]);
        assert_eq!(order, expected);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn cancel_before_and_after_fire() {
        let (svc, rx) = service();
        let t = svc.handle();
        let a = t.schedule(Duration::from_millis(30), timeout(1));
        let b = t.schedule(Duration::from_millis(10), timeout(2));
        assert_eq!(t.pending(), 2);
        assert!(t.cancel(a), "pending timer cancels");
        assert!(!t.cancel(a), "second cancel is false");
        assert_eq!(t.pending(), 1);
        let (tag, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(tag, 2);
        assert!(!t.cancel(b), "fired timer does not cancel");
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "cancelled fired"
        );
        assert_eq!(t.pending(), 0);
        assert!(!t.cancel(0));
        assert!(!t.cancel(u64::MAX));
        assert!(!t.cancel(12345));
    }

    #[test]
    fn ids_are_nonzero_unique_and_stale_ids_do_not_match() {
        let (svc, _rx) = service();
        let t = svc.handle();
        let mut live = HashSet::new();
        let mut stale = Vec::new();
        for round in 0..20u64 {
            for k in 0..1000 {
                let id = t.schedule(Duration::from_secs(60), timeout(round * 1000 + k));
                assert_ne!(id, 0);
                assert!(live.insert(id), "id {id:#x} reused while pending");
            }
            // Cancel every other one; their entries get reused next round.
            let mut ids: Vec<u64> = live.iter().copied().collect();
            ids.sort_unstable();
            for id in ids.into_iter().step_by(2) {
                assert!(t.cancel(id));
                live.remove(&id);
                stale.push(id);
            }
        }
        assert_eq!(t.pending(), live.len());
        for id in stale {
            assert!(
                !live.contains(&id),
                "stale id {id:#x} came back as a live id"
            );
            assert!(!t.cancel(id), "stale id cancelled a reused entry");
        }
        assert_eq!(t.pending(), live.len());
    }

    #[test]
    fn many_timers_fire_exactly_once() {
        const N: usize = 100_000;
        let counts: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
        let early = Arc::new(AtomicUsize::new(0));
        let deadlines: Arc<Vec<Mutex<Option<Instant>>>> =
            Arc::new((0..N).map(|_| Mutex::new(None)).collect());
        let (c, e, d) = (counts.clone(), early.clone(), deadlines.clone());
        let svc = TimerService::start(move |a| {
            let now = Instant::now();
            let tag = tag_of(&a) as usize;
            c[tag].fetch_add(1, Ordering::Relaxed);
            if d[tag].lock().is_some_and(|deadline| now < deadline) {
                e.fetch_add(1, Ordering::Relaxed);
            }
        });
        let t = svc.handle();
        let mut x = 88172645463325252u64;
        for (tag, slot) in deadlines.iter().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let delay = Duration::from_micros(x % 300_000);
            // Stored before scheduling: the deadline recorded is never later than the real one.
            *slot.lock() = Some(Instant::now() + delay);
            t.schedule(delay, timeout(tag as u64));
        }
        let limit = Instant::now() + Duration::from_secs(20);
        while t.pending() > 0 && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        drop(svc);
        assert_eq!(t.pending(), 0);
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert_eq!(early.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn long_delays_are_clamped_and_stay_pending() {
        let (svc, rx) = service();
        let t = svc.handle();
        let ids = [
            t.schedule(Duration::MAX, timeout(1)),
            t.schedule(Duration::from_secs(200 * 365 * 86_400), timeout(2)),
            t.schedule(Duration::from_secs(3 * 3600), timeout(3)),
            t.schedule(Duration::from_secs(40 * 86_400), timeout(4)),
        ];
        let short = t.schedule(Duration::from_millis(5), timeout(5));
        assert_ne!(short, 0);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().0, 5);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(t.pending(), 4);
        for id in ids {
            assert!(t.cancel(id));
        }
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn an_earlier_timer_wakes_the_thread() {
        let (svc, rx) = service();
        let t = svc.handle();
        t.schedule(Duration::from_secs(3600), timeout(1));
        // Let the thread go to sleep until the long timer's slot (past the busy interval).
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        t.schedule(Duration::from_millis(20), timeout(2));
        let (tag, at) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(tag, 2);
        let took = at - start;
        assert!(
            took >= Duration::from_millis(20) && took < Duration::from_millis(500),
            "{took:?}"
        );
    }

    #[test]
    fn fire_may_schedule_and_a_panic_does_not_stop_the_thread() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let handle: Arc<Mutex<Option<Timers>>> = Arc::new(Mutex::new(None));
        let h = handle.clone();
        let svc = TimerService::start(move |a| match tag_of(&a) {
            0 => panic!("boom (expected in this test)"),
            n if n < 5 => {
                let timers = h.lock().clone().unwrap();
                timers.schedule(Duration::from_millis(1), timeout(n + 1));
            }
            n => tx.lock().send(n).unwrap(),
        });
        *handle.lock() = Some(svc.handle());
        let t = svc.handle();
        t.schedule(Duration::from_millis(1), timeout(0));
        t.schedule(Duration::from_millis(5), timeout(1));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 5);
        drop(svc);
    }

    #[test]
    fn drop_joins_the_thread_promptly() {
        for _ in 0..200 {
            let marker = Arc::new(());
            let m = marker.clone();
            let svc = TimerService::start(move |_| {
                let _ = &m;
            });
            let t = svc.handle();
            t.schedule(Duration::from_secs(3600), timeout(1));
            let start = Instant::now();
            drop(svc);
            assert!(start.elapsed() < Duration::from_secs(1));
            // The closure lived on the thread; it is gone once the thread was joined.
            assert_eq!(Arc::strong_count(&marker), 1);
            // The handle outlives the service: scheduling still works, nothing fires.
            assert_ne!(t.schedule(Duration::ZERO, timeout(2)), 0);
        }
    }

    /// The thread sleeps while nothing is due: neither an empty wheel nor a wheel holding
    /// only a far-off timer makes it wake up every tick.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_thread_sleeps() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let svc = TimerService::start(move |_| {
            // Runs on the timer thread: report which thread that is.
            let _ = tx
                .lock()
                .send(std::fs::read_link("/proc/thread-self").unwrap());
        });
        let t = svc.handle();
        t.schedule(Duration::ZERO, timeout(0));
        let task = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let switches = || {
            let status = std::fs::read_to_string(Path::new("/proc").join(&task).join("status"));
            let status = status.unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with("voluntary_ctxt_switches"))
                .unwrap();
            line.split_whitespace()
                .last()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        for long in [None, Some(Duration::from_secs(3600))] {
            if let Some(delay) = long {
                t.schedule(delay, timeout(1));
            }
            // Past the busy interval that follows a schedule.
            std::thread::sleep(Duration::from_millis(100));
            let before = switches();
            std::thread::sleep(Duration::from_millis(500));
            let woke = switches() - before;
            // At most a cascade or two if a slot boundary of the long timer falls in here.
            assert!(
                woke <= 3,
                "timer thread woke {woke} times in 500 ms ({long:?})"
            );
        }
    }

    /// The wheel alone, on simulated time, against a reference model: random schedules
    /// (from nothing to twice the wheel's span), cancels of live and stale ids, and jumps of
    /// the clock from none to years, starting at the boundaries where levels and the top
    /// level wrap.
    #[test]
    fn wheel_matches_a_reference_model() {
        for start in [0u64, (1 << 36) - 700, SPAN - 5_000, 3 * SPAN - 123] {
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ start;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut w = Wheel::new();
            w.elapsed = start;
            let mut now = start;
            // Pending: id -> (tick it is due at, deadline ns, tag), and (tick, id) in order.
            let mut model: HashMap<u64, (u64, u64, u64)> = HashMap::new();
            let mut by_tick: BTreeSet<(u64, u64)> = BTreeSet::new();
            let mut ids = Vec::new();
            let mut due = Vec::new();
            let (mut fired, mut cancelled, mut most) = (0, 0, 0);
            for step in 0..60_000u64 {
                match rnd() % 10 {
                    0..=5 => {
                        let delay_ms = match rnd() % 8 {
                            0 => 0,
                            1..=3 => rnd() % 100,
                            4 => rnd() % 10_000,
                            5 => rnd() % 1_000_000,
                            6 => rnd() % (1 << 36),
                            _ => rnd() % (2 * SPAN),
                        };
                        let deadline = (now * TICK_NS + rnd() % TICK_NS)
                            .saturating_add(delay_ms.saturating_mul(TICK_NS));
                        if !w.has_free() {
                            w.add_chunk(new_chunk());
                        }
                        let (id, _) = w.insert(deadline, timeout(step));
                        assert_ne!(id, 0);
                        // Due now or earlier: it fires at the next tick.
                        let tick = tick_of(deadline).max(now + 1);
                        assert!(
                            model.insert(id, (tick, deadline, step)).is_none(),
                            "id reused"
                        );
                        by_tick.insert((tick, id));
                        ids.push(id);
                    }
                    6 => {
                        let id = ids[rnd() as usize % ids.len().max(1)..].first().copied();
                        if let Some(id) = id {
                            let expected = model.remove(&id).map(|(tick, _, tag)| {
                                by_tick.remove(&(tick, id));
                                tag
                            });
                            assert_eq!(w.cancel(id, |_| true).map(|a| tag_of(&a)), expected);
                            assert!(w.cancel(id, |_| true).is_none());
                            cancelled += usize::from(expected.is_some());
                        }
                    }
                    _ => {
                        now += match rnd() % 1000 {
                            0..=199 => 0,
                            200..=799 => rnd() % 5,
                            800..=989 => rnd() % 5_000,
                            990..=997 => rnd() % (1 << 24),
                            _ => rnd() % (1 << 36),
                        };
                        w.advance(now, &mut due);
                        let mut expected = Vec::new();
                        while let Some(&(tick, id)) = by_tick.first() {
                            if tick > now {
                                break;
                            }
                            by_tick.pop_first();
                            let (_, d, tag) = model.remove(&id).unwrap();
                            expected.push((d, tag));
                        }
                        expected.sort_unstable();
                        let mut got: Vec<(u64, u64)> =
                            due.drain(..).map(|(d, a)| (d, tag_of(&a))).collect();
                        got.sort_unstable();
                        fired += got.len();
                        assert_eq!(got, expected, "start {start} step {step} now {now}");
                    }
                }
                assert_eq!(w.len, model.len());
                most = most.max(model.len());
                // The thread's wake-up tick is after now, and never after a deadline.
                match (by_tick.first(), w.next_expiration()) {
                    (Some(&(min, _)), Some((_, _, next))) => {
                        assert!(next > now, "next expiration {next} not after now {now}");
                        assert!(next <= min, "next expiration {next} after a deadline {min}");
                    }
                    (None, None) => {}
                    (min, next) => panic!("pending {min:?} but next expiration {next:?}"),
                }
            }
            assert!(fired > 10_000 && cancelled > 300 && most > 2_000);
        }
    }
}
