//! The observer: where every event goes (the log, the subscribers, the counters), the last
//! notable events, and the trace subscriptions.
//!
//! Nothing here is on the message path except two relaxed flag loads per message (is the
//! actor traced?, in the run loop); counting happens when events are published (reloads,
//! crashes — rare).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;

use super::events::{Event, HostEvent, LoadOutcome, ReloadOutcome};
use super::model::{RecentEvent, TraceEvent};

/// How many notable events `host top` can show.
const RECENT: usize = 64;

/// Trace events waiting for one slow subscriber before further ones are dropped.
pub(crate) const TRACE_QUEUE: usize = 4096;

/// One trace subscription.
struct Tracer {
    actor: crate::util::ids::ActorId,
    tx: Sender<TraceEvent>,
    /// Events dropped since the last one delivered.
    dropped: u64,
}

/// Where events go; counters and trace subscriptions. One per host, shared by handle.
pub struct Observer {
    /// Who receives every [`HostEvent`] (`Host::subscribe`).
    subscribers: Mutex<Vec<Sender<HostEvent>>>,
    /// When the host started.
    started: Instant,
    reloads_ok: AtomicU64,
    reloads_rolled_back: AtomicU64,
    reloads_rejected: AtomicU64,
    crashes: AtomicU64,
    /// Messages handled by actors that have stopped (live ones count their own).
    handled_by_dead: AtomicU64,
    recent: Mutex<VecDeque<RecentEvent>>,
    tracers: Mutex<Vec<Tracer>>,
    /// The host is stopping in order: an actor stopped with `shutdown` is published but
    /// not logged (100,000 actors would be 100,000 lines; `host_stopped` sums them up).
    stopping: std::sync::atomic::AtomicBool,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            subscribers: Mutex::new(Vec::new()),
            started: Instant::now(),
            reloads_ok: AtomicU64::new(0),
            reloads_rolled_back: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
            handled_by_dead: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
            tracers: Mutex::new(Vec::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// The counters, read at one moment.
pub(crate) struct Counters {
    pub(crate) uptime: Duration,
    pub(crate) handled_by_dead: u64,
    pub(crate) reloads_ok: u64,
    pub(crate) reloads_rolled_back: u64,
    pub(crate) reloads_rejected: u64,
    pub(crate) crashes: u64,
}

impl Observer {
    /// Logs, counts and hands `ev` to every subscriber.
    pub(crate) fn publish(&self, ev: HostEvent) {
        let quiet = matches!(&ev, HostEvent::Stopped { reason, .. } if reason == "shutdown")
            && self.stopping.load(Ordering::Relaxed);
        if !quiet {
            ev.log();
        }
        self.record(&ev);
        self.subscribers
            .lock()
            .retain(|s| s.send(ev.clone()).is_ok());
    }

    /// The orderly stop has begun (see `stopping`).
    pub(crate) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Writes a log-only event.
    pub(crate) fn emit(&self, ev: Event<'_>) {
        ev.log();
    }

    /// Receives every published event from now on.
    pub(crate) fn subscribe(&self) -> Receiver<HostEvent> {
        let (tx, rx) = channel::unbounded();
        self.subscribers.lock().push(tx);
        rx
    }

    /// The counters now.
    pub(crate) fn counters(&self) -> Counters {
        Counters {
            uptime: self.started.elapsed(),
            handled_by_dead: self.handled_by_dead.load(Ordering::Relaxed),
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_rolled_back: self.reloads_rolled_back.load(Ordering::Relaxed),
            reloads_rejected: self.reloads_rejected.load(Ordering::Relaxed),
            crashes: self.crashes.load(Ordering::Relaxed),
        }
    }

    /// The last reloads, crashes and version changes, oldest first.
    pub(crate) fn recent(&self) -> Vec<RecentEvent> {
        self.recent.lock().iter().cloned().collect()
    }

    /// Starts following `actor`'s messages: trace events for it go to the receiver, at
    /// most [`TRACE_QUEUE`] waiting; past that they are dropped and counted, and the next
    /// event delivered carries the count (`TraceEvent::dropped`).
    pub(crate) fn follow(&self, actor: crate::util::ids::ActorId) -> Receiver<TraceEvent> {
        let (tx, rx) = channel::bounded(TRACE_QUEUE);
        self.tracers.lock().push(Tracer {
            actor,
            tx,
            dropped: 0,
        });
        rx
    }

    /// Counts a published event and keeps it if it is a reload, a crash or a version
    /// change.
    fn record(&self, ev: &HostEvent) {
        let (event, subject, outcome) = match ev {
            HostEvent::Reload(r) => {
                let counter = match r.outcome {
                    ReloadOutcome::Ok => &self.reloads_ok,
                    ReloadOutcome::RolledBack => &self.reloads_rolled_back,
                    ReloadOutcome::Rejected => &self.reloads_rejected,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let subject = r
                    .behaviours
                    .iter()
                    .map(|b| format!("{} {} -> {}", b.behaviour, b.from, b.to))
                    .collect::<Vec<_>>()
                    .join(", ");
                let outcome = match &r.reason {
                    Some(why) => format!("{}: {why}", r.outcome.as_str()),
                    None => format!("{} ({} us)", r.outcome.as_str(), r.pause_us),
                };
                ("reload", subject, outcome)
            }
            HostEvent::Load {
                path,
                outcome: LoadOutcome::Rejected,
                reason,
                ..
            } => {
                self.reloads_rejected.fetch_add(1, Ordering::Relaxed);
                (
                    "load",
                    path.display().to_string(),
                    format!("rejected: {}", reason.as_deref().unwrap_or("")),
                )
            }
            HostEvent::Crash {
                actor,
                name,
                behaviour,
                reason,
                ..
            } => {
                self.crashes.fetch_add(1, Ordering::Relaxed);
                let who = name.clone().unwrap_or_else(|| actor.to_string());
                ("crash", format!("{who} ({behaviour})"), reason.clone())
            }
            HostEvent::Version(v) => (v.fate.event_name(), v.behaviours.join(","), v.hash.clone()),
            _ => return,
        };
        let mut recent = self.recent.lock();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(RecentEvent {
            at: now_s(),
            event: event.into(),
            subject,
            outcome,
        });
    }

    /// Adds what a stopped actor handled to the host-wide count.
    pub(crate) fn actor_stopped(&self, handled: u64) {
        self.handled_by_dead.fetch_add(handled, Ordering::Relaxed);
    }

    /// Sends a trace event to whoever follows `actor`; returns false when nobody does any
    /// more (the caller then clears the actor's flag).
    pub(crate) fn trace(&self, ev: TraceEvent) -> bool {
        let mut tracers = self.tracers.lock();
        tracers.retain_mut(|t| {
            if t.actor != ev.actor {
                return true;
            }
            let mut e = ev.clone();
            e.dropped = t.dropped;
            match t.tx.try_send(e) {
                Ok(()) => {
                    t.dropped = 0;
                    true
                }
                Err(channel::TrySendError::Full(_)) => {
                    t.dropped += 1;
                    true
                }
                Err(channel::TrySendError::Disconnected(_)) => false,
            }
        });
        tracers.iter().any(|t| t.actor == ev.actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::ids::ActorId;

    fn ev(actor: ActorId, n: usize) -> TraceEvent {
        TraceEvent {
            at_us: 0,
            actor,
            direction: "in".into(),
            kind: "info".into(),
            peer: String::new(),
            message: n.to_string(),
            dropped: 0,
        }
    }

    /// Issue 10: a trace client that does not read grew the host without limit. The
    /// queue is bounded; the overflow is dropped and counted on the next event delivered.
    #[test]
    fn a_trace_subscriber_that_does_not_read_is_bounded_and_told_what_it_lost() {
        let obs = Observer::default();
        let a = ActorId(7);
        let rx = obs.follow(a);
        for n in 0..TRACE_QUEUE + 100 {
            assert!(obs.trace(ev(a, n)));
        }
        assert_eq!(rx.len(), TRACE_QUEUE, "bounded");
        let first: Vec<TraceEvent> = rx.try_iter().collect();
        assert!(first.iter().all(|e| e.dropped == 0));
        obs.trace(ev(a, 0));
        let next = rx.try_recv().expect("delivered again once there is room");
        assert_eq!(next.dropped, 100, "the count of what was lost");
        drop(rx);
        assert!(!obs.trace(ev(a, 1)), "a gone subscriber is forgotten");
    }
}
