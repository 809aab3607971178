//! What an operator can see of a running host: counters, the last notable events, message
//! traces, and the snapshots `host ctl` and `host top` print.
//!
//! Nothing here is on the message path except two relaxed flag loads per message (is the
//! actor traced?); counting and snapshotting happen when events are published (reloads,
//! crashes — rare) or when a tool asks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;
use plugin_api::abi::MsgKind;
use plugin_api::etf;

use crate::control::model::{ActorInfo, RecentEvent, Stats, TraceEvent, TreeNode};
use crate::events::{HostEvent, LoadOutcome, ReloadOutcome};
use crate::runtime::{CallError, Host, HostInner, Target};
use crate::supervisor::Supervision;

/// How many notable events `host top` can show.
const RECENT: usize = 64;

/// Counters and trace subscriptions, part of the host.
#[derive(Default)]
pub(crate) struct Observer {
    reloads_ok: AtomicU64,
    reloads_rolled_back: AtomicU64,
    reloads_rejected: AtomicU64,
    crashes: AtomicU64,
    /// Messages handled by actors that have stopped (live ones count their own).
    handled_by_dead: AtomicU64,
    recent: Mutex<VecDeque<RecentEvent>>,
    tracers: Mutex<Vec<(u64, Sender<TraceEvent>)>>,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The stable name of a message kind in traces.
pub(crate) fn kind_name(kind: MsgKind) -> &'static str {
    match kind {
        MsgKind::Call => "call",
        MsgKind::Cast => "cast",
        _ => "info",
    }
}

impl Observer {
    /// Counts a published event and keeps it if it is a reload, a crash or a version
    /// change.
    pub(crate) fn record(&self, ev: &HostEvent) {
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
                let who = name.clone().unwrap_or_else(|| format!("<0.{actor}.0>"));
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
        tracers.retain(|(id, tx)| *id != ev.actor || tx.send(ev.clone()).is_ok());
        tracers.iter().any(|(id, _)| *id == ev.actor)
    }
}

impl HostInner {
    /// Reports a message to or from a traced actor.
    pub(crate) fn trace(&self, actor: u64, direction: &str, kind: &str, peer: String, msg: &[u8]) {
        let ev = TraceEvent {
            at_us: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            actor,
            direction: direction.into(),
            kind: kind.into(),
            peer,
            message: etf::display(msg),
        };
        if !self.observer.trace(ev) {
            if let Some(a) = self.registry.get(actor) {
                a.traced.store(false, Ordering::Relaxed);
            }
        }
    }
}

impl Host {
    /// Every live actor, ordered by id, with its mailbox length and counters. `restarts`
    /// comes from the supervision tree (by child), 0 for unsupervised actors.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.actors_in(&self.tree().unwrap_or_default())
    }

    /// [`Host::actors`], with `restarts` taken from a tree the caller already fetched (a
    /// snapshot needs both, and asking the supervision thread twice is work done twice).
    pub fn actors_in(&self, tree: &[TreeNode]) -> Vec<ActorInfo> {
        let inner = self.inner();
        let mut restarts = std::collections::HashMap::new();
        fn walk(n: &TreeNode, out: &mut std::collections::HashMap<u64, u64>) {
            if n.actor != 0 {
                out.insert(n.actor, n.restarts);
            }
            n.children.iter().for_each(|c| walk(c, out));
        }
        tree.iter().for_each(|n| walk(n, &mut restarts));
        let mut out: Vec<ActorInfo> = inner
            .registry
            .select(|_| true)
            .into_iter()
            .map(|a| {
                let version = a.core.lock().version.version.to_string();
                let status = if a.is_suspended() {
                    "suspended"
                } else if a.is_queued() {
                    "running"
                } else {
                    "waiting"
                };
                ActorInfo {
                    id: a.id,
                    name: a.name.clone(),
                    behaviour: a.behaviour.to_string(),
                    version,
                    status: status.into(),
                    mailbox: a.mailbox.len(),
                    handled: a.handled.load(Ordering::Relaxed),
                    restarts: restarts.get(&a.id).copied().unwrap_or(0),
                }
            })
            .collect();
        out.sort_by_key(|a| a.id);
        out
    }

    /// The supervision trees, as the supervision thread sees them now.
    pub fn tree(&self) -> Result<Vec<TreeNode>, String> {
        let tx = self.inner().supervision_sender().ok_or("no supervision")?;
        Supervision::snapshot(tx, Duration::from_secs(2))
    }

    /// An actor's state, exported through the version running it, as ETF.
    ///
    /// Takes the actor's lock, so it waits for a running batch to end, like a swap does;
    /// the actor handles nothing while its state is being exported.
    pub fn state(&self, to: Target<'_>) -> Result<Vec<u8>, CallError> {
        let actor = self
            .inner()
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        let core = actor.core.lock();
        if !core.alive {
            return Err(CallError::NoProc(to.to_string()));
        }
        let out = (core.version.desc.export_state)(core.state);
        let bytes = out.detail.to_vec();
        let ok = out.code == plugin_api::abi::OutcomeCode::Ok;
        drop(out);
        drop(core);
        if ok {
            Ok(bytes)
        } else {
            Err(CallError::Exit(format!(
                "exporting the state failed: {}",
                String::from_utf8_lossy(&bytes)
            )))
        }
    }

    /// Follows an actor's incoming and outgoing messages until the receiver is dropped
    /// (then the next message of that actor turns tracing off).
    pub fn trace(&self, to: Target<'_>) -> Result<Receiver<TraceEvent>, CallError> {
        let inner = self.inner();
        let actor = inner
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        let (tx, rx) = channel::unbounded();
        inner.observer.tracers.lock().push((actor.id, tx));
        actor.traced.store(true, Ordering::Relaxed);
        Ok(rx)
    }

    /// Host-wide counters. The rates (`messages_per_s`, `utilisation`) are filled in by
    /// whoever samples twice ([`StatsSampler`]); here they are zero.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let o = &inner.observer;
        let actors = inner.registry.select(|_| true);
        let live: u64 = actors
            .iter()
            .map(|a| a.handled.load(Ordering::Relaxed))
            .sum();
        let (idle, _) = inner.run_queue_handle().idle_ns();
        Stats {
            uptime_s: inner.started.elapsed().as_secs_f64(),
            actors: actors.len(),
            messages: live + o.handled_by_dead.load(Ordering::Relaxed),
            messages_per_s: 0.0,
            utilisation: vec![0.0; idle.len()],
            run_queue: inner.run_queue_handle().len(),
            reloads_ok: o.reloads_ok.load(Ordering::Relaxed),
            reloads_rolled_back: o.reloads_rolled_back.load(Ordering::Relaxed),
            reloads_rejected: o.reloads_rejected.load(Ordering::Relaxed),
            crashes: o.crashes.load(Ordering::Relaxed),
        }
    }

    /// The last reloads, crashes and version changes, oldest first.
    pub fn recent_events(&self) -> Vec<RecentEvent> {
        self.inner()
            .observer
            .recent
            .lock()
            .iter()
            .cloned()
            .collect()
    }
}

/// Turns two samples of the counters into rates: messages per second and, per scheduler
/// thread, the fraction of time it was running actors.
pub struct StatsSampler {
    last: Option<(Instant, u64, Vec<u64>, u64)>,
}

impl Default for StatsSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl StatsSampler {
    /// A sampler with no sample yet (the first `sample` reports zero rates).
    pub fn new() -> Self {
        StatsSampler { last: None }
    }

    /// Counters now, with rates over the time since the previous call.
    pub fn sample(&mut self, host: &Host) -> Stats {
        let mut stats = host.stats();
        let (idle, wall) = host.inner().run_queue_handle().idle_ns();
        let now = Instant::now();
        if let Some((then, messages, idle0, wall0)) = &self.last {
            let secs = now.duration_since(*then).as_secs_f64();
            if secs > 0.0 {
                stats.messages_per_s = stats.messages.saturating_sub(*messages) as f64 / secs;
            }
            let dw = wall.saturating_sub(*wall0) as f64;
            if dw > 0.0 {
                stats.utilisation = idle
                    .iter()
                    .zip(idle0)
                    .map(|(i, i0)| (1.0 - i.saturating_sub(*i0) as f64 / dw).clamp(0.0, 1.0))
                    .collect();
            }
        }
        self.last = Some((now, stats.messages, idle, wall));
        stats
    }
}
