//! One home for the debug and system operations on actors, as `sys.erl` is for OTP:
//! suspend and resume (what a swap does to every actor of a behaviour), reading an actor's
//! state, tracing its messages, and describing it to an operator.

use std::sync::Arc;
use std::time::SystemTime;

use crossbeam::channel::Receiver;
use plugin_api::abi::OutcomeCode;
use plugin_api::etf;

use super::{Actor, CallError, System, Target};
use crate::observe::model::{ActorInfo, TraceEvent};
use crate::util::ids::{pid_text, ActorId};

impl System {
    /// Holds `actors` at their next message boundary (invariant 3 of `actor`); their
    /// mailboxes keep filling, in order. The caller then takes each core to wait for the
    /// batch in progress to end.
    pub(crate) fn suspend(&self, actors: &[Arc<Actor>]) {
        for a in actors {
            a.suspend();
        }
    }

    /// Lets suspended actors run again, queuing whoever has mail (invariant 4).
    pub(crate) fn resume(&self, actors: &[Arc<Actor>]) {
        for a in actors {
            if a.resume() {
                self.requeue(a.clone());
            }
        }
    }

    /// An actor's state, exported through the version running it, as ETF.
    ///
    /// Takes the actor's lock, so it waits for a running batch to end, like a swap does;
    /// the actor handles nothing while its state is being exported.
    pub(crate) fn export_state(&self, to: Target<'_>) -> Result<Vec<u8>, CallError> {
        let actor = self
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        let core = actor.core.lock();
        if !core.alive {
            return Err(CallError::NoProc(to.to_string()));
        }
        let out = (core.version.desc.export_state)(core.state);
        let bytes = out.detail.to_vec();
        let ok = out.code == OutcomeCode::Ok;
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
    pub(crate) fn follow(&self, to: Target<'_>) -> Result<Receiver<TraceEvent>, CallError> {
        let actor = self
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        let rx = self.observer.follow(actor.id);
        actor.set_traced(true);
        Ok(rx)
    }

    /// Reports a message to or from a traced actor; `peer` is the other side (0: the host
    /// itself or unknown), `peer_name` its name when it was addressed by one.
    pub(crate) fn trace(
        &self,
        actor: ActorId,
        direction: &str,
        kind: &str,
        peer: ActorId,
        msg: &[u8],
    ) {
        self.trace_named(actor, direction, kind, pid_text(peer), msg)
    }

    /// [`System::trace`] with the peer already written.
    pub(crate) fn trace_named(
        &self,
        actor: ActorId,
        direction: &str,
        kind: &str,
        peer: String,
        msg: &[u8],
    ) {
        let ev = TraceEvent {
            at_us: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            actor,
            direction: direction.into(),
            kind: kind.into(),
            peer,
            message: etf::display(msg),
            dropped: 0,
        };
        if !self.observer.trace(ev) {
            if let Some(a) = self.registry.get(actor) {
                a.set_traced(false);
            }
        }
    }

    /// Every live actor as an operator sees it, ordered by id; `restarts` says how often
    /// a supervisor restarted the child an actor is (0 if none).
    pub(crate) fn describe_actors(&self, restarts: impl Fn(ActorId) -> u64) -> Vec<ActorInfo> {
        let mut out: Vec<ActorInfo> = self
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
                    handled: a.handled(),
                    restarts: restarts(a.id),
                }
            })
            .collect();
        out.sort_by_key(|a| a.id);
        out
    }

    /// Messages handled by live actors, and how many actors there are.
    pub(crate) fn handled_by_live(&self) -> (u64, usize) {
        let actors = self.registry.select(|_| true);
        (actors.iter().map(|a| a.handled()).sum(), actors.len())
    }
}
