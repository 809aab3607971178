//! How an actor ends.

use std::sync::Arc;

use abi_stable::std_types::RSlice;
use plugin_api::abi::{OutcomeCode, StatePtr};
use plugin_api::etf;

use crate::observe::{Event, HostEvent};
use crate::system::actor::Core;
use crate::system::ffi::RunCtx;
use crate::system::{Actor, System};

/// A crash's details: the panic text and the message being handled.
pub(crate) struct Crash {
    pub(crate) panic: String,
    pub(crate) message: String,
}

impl System {
    /// Stops an actor whose core is locked: `terminate`, free the state (invariant 2: by
    /// the version that made it), unregister, publish its `crash` / `actor_stopped`
    /// event, fail the calls still queued, then tell its callers, links and monitors, in
    /// that order — after unregistering, nobody can add a waiter, link or monitor that
    /// would be missed, and the event precedes every reaction to it.
    pub(crate) fn stop_actor(
        &self,
        actor: &Arc<Actor>,
        core: &mut Core,
        reason: &[u8],
        crash: Option<Crash>,
    ) {
        let version = core.version.clone();
        let ctx = RunCtx::new(self, actor.id, &version, actor.is_traced());
        let state = std::mem::replace(&mut core.state, StatePtr::NULL);
        core.alive = false;
        let out = (version.desc.terminate)(state, RSlice::from_slice(reason), &ctx.raw());
        let terminate_failed = (out.code != OutcomeCode::Ok)
            .then(|| String::from_utf8_lossy(&out.detail).into_owned());
        drop(out);
        // Invariant 5 of `actor`: if a kill made it dead to the world while `terminate`
        // ran, the world has been told already.
        if !actor.abandon() {
            if let Some(t) = terminate_failed {
                self.observer.emit(Event::TerminateFailed {
                    actor: actor.id,
                    behaviour: &version.name,
                    error: &t,
                });
            }
            return;
        }
        self.registry.remove(actor.id);
        self.cancel_timers_of(actor);
        self.observer.actor_stopped(actor.handled());
        let reason_text = etf::display(reason);
        // The event goes out before anyone is told: a supervisor's reaction (its
        // `child_exited`, the restart's `child_started`) always follows this actor's
        // `crash` / `actor_stopped`, in the log and for every subscriber.
        let ev = match crash {
            Some(Crash { panic, message }) => HostEvent::Crash {
                actor: actor.id,
                name: actor.name.clone(),
                behaviour: version.name.to_string(),
                version: version.version.to_string(),
                reason: reason_text.clone(),
                panic,
                message,
            },
            None => HostEvent::Stopped {
                actor: actor.id,
                name: actor.name.clone(),
                behaviour: version.name.to_string(),
                version: version.version.to_string(),
                reason: reason_text.clone(),
            },
        };
        self.observer.publish(ev);
        if let Some(t) = terminate_failed {
            self.observer.emit(Event::TerminateFailed {
                actor: actor.id,
                behaviour: &version.name,
                error: &t,
            });
        }
        self.fail_mailbox(actor, &reason_text);
        self.fail_waiters(actor.id, &reason_text);
        self.notify_links_and_monitors(actor, reason, &reason_text);
    }
}
