//! Timers an actor arms: `send_after`, `send_interval`, and what happens when one fires.
//! (The wheel and its thread are in `timer`.)
//!
//! - Every timer dies with the actor that armed it, whatever it is addressed to (a
//!   `send_interval` to a name used to outlive its owner and pile up across restarts:
//!   OTP's `timer` module links its timers to the caller). A timer addressed to an actor
//!   id also dies with that actor. Both actors keep the timer's id ([`TimerIds`]) and
//!   either one's exit cancels it; a name is resolved when the timer fires, as Erlang's
//!   `send_after` does.
//! - An interval timer keeps one ref across ticks; each tick arms the next one-shot.
//! - An actor can cancel only the timers it armed.
//! - Arming N timers is O(N) amortised: an actor's list of ids is pruned of fired ones
//!   only when it has doubled since the last pruning.

use std::time::Duration;

use parking_lot::Mutex;
use plugin_api::abi::MsgKind;
use rustc_hash::FxHashMap;

use super::mailbox::Envelope;
use super::timer::{TimerAction, TimerTarget};
use super::{System, Target};
use crate::util::ids::ActorId;

/// Marks an interval timer's ref, so it never collides with a one-shot timer's id (the
/// wheel's ids are small; tags never reach 2^63).
const INTERVAL_BIT: u64 = 1 << 63;

/// An interval timer: what to send, to whom, how often, and its current one-shot timer.
struct Interval {
    owner: ActorId,
    to: TimerTarget,
    bytes: Vec<u8>,
    every: Duration,
    current: u64,
}

/// The ids of the timers an actor armed or is the target of, cancelled when it dies.
#[derive(Default)]
pub(crate) struct TimerIds {
    ids: Vec<u64>,
    /// Prune fired timers when `ids` reaches this length (doubles with what survives).
    prune_at: usize,
}

impl TimerIds {
    /// Takes every id, leaving the list empty.
    fn take(&mut self) -> Vec<u64> {
        self.prune_at = 0;
        std::mem::take(&mut self.ids)
    }
}

/// Interval timers by their ref (which has [`INTERVAL_BIT`] set).
#[derive(Default)]
pub(super) struct Intervals {
    by_ref: Mutex<FxHashMap<u64, Interval>>,
}

fn target(to: &TimerTarget) -> Target<'_> {
    match to {
        TimerTarget::Id(id) => Target::Id(*id),
        TimerTarget::Name(n) => Target::Name(n),
    }
}

impl System {
    /// `erlang:send_after/3` from `owner`.
    pub(crate) fn send_after(
        &self,
        owner: ActorId,
        to: TimerTarget,
        bytes: Vec<u8>,
        delay: Duration,
    ) -> u64 {
        let aimed_at = match to {
            TimerTarget::Id(id) if id != owner => Some(id),
            _ => None,
        };
        let id = self
            .timers()
            .schedule(delay, TimerAction::Send { owner, to, bytes });
        // The timer dies with its owner, and with the actor it is addressed to by id.
        for holder in std::iter::once(owner).chain(aimed_at) {
            if !self.hold_timer(holder, id) {
                self.timers().cancel(id);
            }
        }
        id
    }

    /// Records timer `id` with actor `holder`, whose exit will cancel it; false if the
    /// actor is gone (its exit already ran: the caller cancels the timer).
    fn hold_timer(&self, holder: ActorId, id: u64) -> bool {
        // Pushed under the registry lock (so an exit, which unregisters first, sees it);
        // pruned outside it, since pruning takes the interval table's lock, which
        // `tick_interval` holds while it sends (through the registry).
        let Some(prune) = self.registry.with_id(holder, |a| {
            let mut list = a.timers.lock();
            list.ids.push(id);
            (list.ids.len() > list.prune_at.max(16)).then(|| a.clone())
        }) else {
            return false;
        };
        if let Some(a) = prune {
            let mut list = a.timers.lock();
            // Fired one-shots go; interval refs stay while their interval lives.
            let intervals = self.intervals.by_ref.lock();
            list.ids.retain(|&x| {
                if x & INTERVAL_BIT != 0 {
                    intervals.contains_key(&x)
                } else {
                    self.timers().is_pending(x)
                }
            });
            list.prune_at = list.ids.len() * 2;
        }
        true
    }

    /// Cancels the timers a dead actor held (armed, or addressed to it).
    pub(super) fn cancel_timers_of_dead(&self, mut ids: TimerIds) {
        for t in ids.take() {
            if t & INTERVAL_BIT != 0 {
                if let Some(iv) = self.intervals.by_ref.lock().remove(&t) {
                    self.timers().cancel(iv.current);
                }
            } else {
                self.timers().cancel(t);
            }
        }
    }

    /// `timer:send_interval/3`: the ref stays the same across ticks.
    pub(crate) fn send_interval(
        &self,
        owner: ActorId,
        to: TimerTarget,
        bytes: Vec<u8>,
        every: Duration,
    ) -> u64 {
        let iref = self.next_tag() | INTERVAL_BIT;
        let mut intervals = self.intervals.by_ref.lock();
        let current = self
            .timers()
            .schedule(every, TimerAction::Interval { iref });
        intervals.insert(
            iref,
            Interval {
                owner,
                to,
                bytes,
                every,
                current,
            },
        );
        drop(intervals);
        // It dies with its owner, whatever it is addressed to.
        if !self.hold_timer(owner, iref) {
            self.cancel_timer(owner, iref);
        }
        iref
    }

    /// One tick of an interval timer: deliver, and schedule the next unless its target
    /// (by id) is gone.
    fn tick_interval(&self, iref: u64) {
        let mut intervals = self.intervals.by_ref.lock();
        let Some(iv) = intervals.get_mut(&iref) else {
            return;
        };
        let sent = self.send(
            target(&iv.to),
            Envelope::message(MsgKind::Info, iv.bytes.clone()),
        );
        if sent.is_err() && matches!(iv.to, TimerTarget::Id(_)) {
            intervals.remove(&iref);
            return;
        }
        iv.current = self
            .timers()
            .schedule(iv.every, TimerAction::Interval { iref });
    }

    /// Cancels one of `owner`'s `send_after` or interval timers (never anything else).
    pub(crate) fn cancel_timer(&self, owner: ActorId, id: u64) -> bool {
        if id & INTERVAL_BIT != 0 {
            let mut intervals = self.intervals.by_ref.lock();
            return match intervals.get(&id) {
                Some(iv) if iv.owner == owner => {
                    self.timers().cancel(iv.current);
                    intervals.remove(&id);
                    true
                }
                _ => false,
            };
        }
        self.timers().cancel_if(
            id,
            |a| matches!(a, TimerAction::Send { owner: o, .. } if *o == owner),
        )
    }

    /// What the timer thread does with a due timer.
    pub(crate) fn fire_timer(&self, action: TimerAction) {
        match action {
            TimerAction::Send { to, bytes, .. } => {
                // A timer to a dead actor (or a name nobody holds) is dropped, as in Erlang.
                let _ = self.send(target(&to), Envelope::message(MsgKind::Info, bytes));
            }
            TimerAction::Interval { iref } => self.tick_interval(iref),
            TimerAction::RequestTimeout { tag } => self.request_timed_out(tag),
        }
    }
}
