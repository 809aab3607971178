//! Timers an actor arms: `send_after`, `send_interval`, and what happens when one fires.
//! (The wheel and its thread are in `timer`.)
//!
//! - A timer addressed to an actor id dies with that actor (the actor keeps the ids of
//!   timers aimed at it, and its exit cancels them); one addressed to a name is resolved
//!   when it fires, as Erlang's `send_after` does.
//! - An interval timer keeps one ref across ticks; each tick arms the next one-shot.
//! - An actor can cancel only the timers it armed.

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
            TimerTarget::Id(id) => Some(id),
            TimerTarget::Name(_) => None,
        };
        let id = self
            .timers()
            .schedule(delay, TimerAction::Send { owner, to, bytes });
        // A timer addressed to an actor dies with it (a name outlives any one actor).
        if let Some(t) = aimed_at {
            let alive = self.registry.with_id(t, |a| {
                let mut list = a.timers.lock();
                if list.len() >= 16 {
                    list.retain(|&x| self.timers().is_pending(x));
                }
                list.push(id);
            });
            if alive.is_none() {
                self.timers().cancel(id);
            }
        }
        id
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
