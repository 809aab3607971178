//! What an operator can see of a running host, and the few things they can do to one
//! actor: the snapshots `host ctl` and `host top` print, reading an actor's state and
//! following its messages. The mechanisms live in `system::sys`; this is the public face.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use super::Host;
use crate::observe::model::{ActorInfo, ActorStatus, RecentEvent, Stats, TraceEvent, TreeNode};
use crate::supervisor::StartError;
use crate::system::{CallError, SysError, Target};
use crate::util::ids::ActorId;

impl Host {
    /// Every live actor, ordered by id, with its mailbox length and counters. `restarts`
    /// comes from the supervision tree (by child), 0 for unsupervised actors.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.actors_in(&self.tree().unwrap_or_default())
    }

    /// [`Host::actors`], with `restarts` taken from a tree the caller already fetched (a
    /// snapshot needs both, and asking the supervision thread twice is work done twice).
    pub fn actors_in(&self, tree: &[TreeNode]) -> Vec<ActorInfo> {
        let mut restarts = HashMap::new();
        fn walk(n: &TreeNode, out: &mut HashMap<ActorId, u64>) {
            if n.actor.0 != 0 {
                out.insert(n.actor, n.restarts);
            }
            n.children.iter().for_each(|c| walk(c, out));
        }
        tree.iter().for_each(|n| walk(n, &mut restarts));
        self.system
            .describe_actors(|id| restarts.get(&id).copied().unwrap_or(0))
    }

    /// The supervision trees, as the supervision thread sees them now.
    pub fn tree(&self) -> Result<Vec<TreeNode>, StartError> {
        self.supervision().snapshot(Duration::from_secs(2))
    }

    /// Holds an actor at its next message boundary until [`Host::resume`] (OTP's
    /// `sys:suspend`); its mailbox keeps filling, calls to it wait or time out. A hot swap
    /// still migrates it, and it stays suspended.
    pub fn suspend(&self, to: Target<'_>) -> Result<(), SysError> {
        self.system.sys_suspend(to)
    }

    /// Lets an actor suspended with [`Host::suspend`] run again (OTP's `sys:resume`).
    pub fn resume(&self, to: Target<'_>) -> Result<(), SysError> {
        self.system.sys_resume(to)
    }

    /// One actor in detail (OTP's `sys:get_status`).
    pub fn status(&self, to: Target<'_>) -> Result<ActorStatus, CallError> {
        let actor = self
            .system
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        let mut restarts = 0;
        fn find(n: &TreeNode, id: ActorId, out: &mut u64) {
            if n.actor == id && n.kind == "worker" {
                *out = n.restarts;
            }
            n.children.iter().for_each(|c| find(c, id, out));
        }
        for n in &self.tree().unwrap_or_default() {
            find(n, actor.id, &mut restarts);
        }
        self.system.status(Target::Id(actor.id), restarts)
    }

    /// An actor's state, exported through the version running it, as ETF.
    ///
    /// Waits for a running batch to end, like a swap does, at most
    /// [`DEFAULT_CALL_TIMEOUT`](crate::DEFAULT_CALL_TIMEOUT): an actor still inside a
    /// callback then answers [`CallError::Busy`]. The actor handles nothing while its
    /// state is being exported.
    pub fn state(&self, to: Target<'_>) -> Result<Vec<u8>, CallError> {
        self.state_within(to, crate::DEFAULT_CALL_TIMEOUT)
    }

    /// [`Host::state`], waiting at most `timeout` for a callback to end.
    pub fn state_within(&self, to: Target<'_>, timeout: Duration) -> Result<Vec<u8>, CallError> {
        self.system.export_state(to, timeout)
    }

    /// Follows an actor's incoming and outgoing messages until the receiver is dropped
    /// (then the next message of that actor turns tracing off).
    pub fn trace(&self, to: Target<'_>) -> Result<Receiver<TraceEvent>, CallError> {
        self.system.follow(to)
    }

    /// Host-wide counters. The rates (`messages_per_s`, `utilisation`) are filled in by
    /// whoever samples twice ([`StatsSampler`]); here they are zero.
    pub fn stats(&self) -> Stats {
        let c = self.observer.counters();
        let (live, actors) = self.system.handled_by_live();
        let (idle, _) = self.system.run_queue().idle_ns();
        Stats {
            uptime_s: c.uptime.as_secs_f64(),
            actors,
            messages: live + c.handled_by_dead,
            messages_per_s: 0.0,
            utilisation: vec![0.0; idle.len()],
            run_queue: self.system.run_queue().len(),
            reloads_ok: c.reloads_ok,
            reloads_rolled_back: c.reloads_rolled_back,
            reloads_rejected: c.reloads_rejected,
            crashes: c.crashes,
        }
    }

    /// The last reloads, crashes and version changes, oldest first.
    pub fn recent_events(&self) -> Vec<RecentEvent> {
        self.observer.recent()
    }

    /// Per scheduler thread, nanoseconds parked since start, and nanoseconds since start.
    fn idle_ns(&self) -> (Vec<u64>, u64) {
        self.system.run_queue().idle_ns()
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
        let (idle, wall) = host.idle_ns();
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
