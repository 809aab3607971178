//! One home for the debug and system operations on actors, as `sys.erl` is for OTP:
//! suspend and resume (what a swap does to every actor of a behaviour), reading an actor's
//! state, tracing its messages, and describing it to an operator.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam::channel::Receiver;
use plugin_api::abi::OutcomeCode;
use plugin_api::etf;

use super::{Actor, CallError, System, Target};
use crate::observe::model::{ActorInfo, ActorStatus, TraceEvent};
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

    /// `sys:suspend/1`: holds the actor at its next message boundary until
    /// [`System::sys_resume`]; its mailbox keeps filling. Returns once it is held (it
    /// waits for a running batch to end).
    pub(crate) fn sys_suspend(&self, to: Target<'_>) -> Result<(), SysError> {
        let actor = self
            .resolve(to)
            .ok_or_else(|| SysError::NoProc(to.to_string()))?;
        if !actor.sys_suspend() {
            return Err(SysError::AlreadySuspended(to.to_string()));
        }
        // Invariant 3: once we have held `core`, no further message is handled.
        drop(actor.core.lock());
        Ok(())
    }

    /// `sys:resume/1`: lets an actor suspended by [`System::sys_suspend`] run again.
    pub(crate) fn sys_resume(&self, to: Target<'_>) -> Result<(), SysError> {
        let actor = self
            .resolve(to)
            .ok_or_else(|| SysError::NoProc(to.to_string()))?;
        match actor.sys_resume() {
            None => Err(SysError::NotSuspended(to.to_string())),
            Some(queue) => {
                if queue {
                    self.requeue(actor);
                }
                Ok(())
            }
        }
    }

    /// `sys:get_status/1`, for an operator: what the actor runs, its state of play, its
    /// mailbox, links, monitors and flags. `restarts` as in [`System::describe_actors`].
    pub(crate) fn status(&self, to: Target<'_>, restarts: u64) -> Result<ActorStatus, CallError> {
        let a = self
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        // Published, never the core (invariant 5): a callback may hold it.
        let version = a.running_version().version.to_string();
        let running = self.running_for(a.id);
        let mut links: Vec<_> = a.links.lock().iter().copied().collect();
        links.sort();
        let mut monitored_by: Vec<_> = a.monitored_by.lock().iter().map(|&(_, w)| w).collect();
        monitored_by.sort();
        Ok(ActorStatus {
            id: a.id,
            name: a.name.clone(),
            behaviour: a.behaviour.to_string(),
            version,
            status: if a.is_suspended() {
                "suspended"
            } else if running.is_some() || a.is_queued() {
                "running"
            } else {
                "waiting"
            }
            .into(),
            callback: running.as_ref().map(|(c, _)| c.to_string()),
            running_ms: running.as_ref().map(|(_, d)| d.as_millis() as u64),
            suspended_by_operator: a.is_sys_suspended(),
            mailbox: a.mailbox.len(),
            handled: a.handled(),
            links,
            monitored_by,
            trap_exit: a.traps_exits(),
            restarts,
        })
    }

    /// An actor's state, exported through the version running it, as ETF.
    ///
    /// Takes the actor's lock, so it waits for a running batch to end, like a swap does —
    /// at most `timeout` (invariant 5): an actor still inside a callback then answers
    /// `busy`. The actor handles nothing while its state is being exported.
    pub(crate) fn export_state(
        &self,
        to: Target<'_>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let actor = self
            .resolve(to)
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        let Some(core) = actor.core.try_lock_for(timeout) else {
            let running = self.running_for(actor.id).map_or(String::new(), |(cb, d)| {
                format!(" ({cb} running for {} ms)", d.as_millis())
            });
            return Err(CallError::Busy(format!(
                "{to} stayed inside a callback{running} for the {} ms this request waits",
                timeout.as_millis()
            )));
        };
        if !core.alive {
            return Err(CallError::NoProc(to.to_string()));
        }
        if core.starting {
            // Invariant 7: no state yet.
            return Err(CallError::Busy(format!(
                "{to} is starting: its init has not run"
            )));
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
                // Published, never the core (invariant 5): a callback may hold it.
                let version = a.running_version().version.to_string();
                let running = self.running_for(a.id);
                let status = if a.is_suspended() {
                    "suspended".to_string()
                } else if let Some((callback, d)) = running {
                    format!("running {callback} {}", short_duration(d))
                } else if a.is_queued() {
                    "running".to_string()
                } else {
                    "waiting".to_string()
                };
                ActorInfo {
                    id: a.id,
                    name: a.name.clone(),
                    behaviour: a.behaviour.to_string(),
                    version,
                    status,
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

/// Why a `sys` operation on an actor was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysError {
    /// No such actor.
    NoProc(String),
    /// An operator already suspended it.
    AlreadySuspended(String),
    /// No operator suspended it.
    NotSuspended(String),
}

impl std::fmt::Display for SysError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SysError::NoProc(who) => write!(f, "noproc: no actor {who}"),
            SysError::AlreadySuspended(who) => write!(f, "{who} is already suspended"),
            SysError::NotSuspended(who) => {
                write!(
                    f,
                    "{who} is not suspended (only `suspend` can be undone by `resume`)"
                )
            }
        }
    }
}

impl std::error::Error for SysError {}

/// `850ms`, `12.3s`, `4m05s`: how long a callback has run, for a status column.
fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
