//! Spawning an actor, in two steps that may run on two threads:
//!
//! 1. [`System::register_new`] makes the actor and registers it — no plugin code runs, so
//!    a connection's reader answers a remote spawn with the pid at once — and returns a
//!    [`Birth`].
//! 2. [`System::run_init`] runs the behaviour's `init` under the actor's `core` and lets
//!    the actor run.
//!
//! Between the two the actor is *starting* (invariant 7 of `actor`): it holds its run
//! claim (messages, its own included, only queue), and `core.starting` tells whoever
//! takes `core` that there is no state yet.

use std::sync::Arc;

use abi_stable::std_types::RSlice;
use plugin_api::abi::{OutcomeCode, StatePtr};

use crate::observe::Event;
use crate::system::actor::Signal;
use crate::system::ffi::RunCtx;
use crate::system::{Actor, BehaviourVersion, SpawnError, System};
use crate::util::ids::ActorId;
use crate::util::terms;

/// An actor registered and linked, whose `init` has not run (see the module docs). Hand
/// it to [`System::run_init`]; dropped instead, the actor stays starting until killed.
pub(crate) struct Birth {
    actor: Arc<Actor>,
    version: Arc<BehaviourVersion>,
    /// A local parent that is not a supervisor, linked both ways.
    parent: Option<ActorId>,
    /// The parent was gone when the link was made.
    orphan: bool,
}

impl Birth {
    /// The new actor's id.
    pub(crate) fn id(&self) -> ActorId {
        self.actor.id
    }

    /// Its behaviour's name.
    pub(crate) fn behaviour(&self) -> Arc<str> {
        self.version.name.clone()
    }
}

impl System {
    /// Step 1: makes the actor, starting (invariant 7), and registers it; `registered`
    /// runs with its id once it is registered (or refused).
    ///
    /// Both sides of a parent's link are made here, the parent's side under the registry
    /// lock: a parent found there has not yet taken its links to die, so its exit signal
    /// will reach the child. A parent already gone (it died while its `spawn_link`
    /// waited) sends the child an exit signal `noproc` once `init` ran, as OTP's `link/1`
    /// to a dead process does: the child dies with it (or, trapping exits, is told)
    /// instead of living on as an orphan.
    pub(crate) fn register_new(
        &self,
        version: Arc<BehaviourVersion>,
        name: Option<&str>,
        link: Option<ActorId>,
        registered: impl FnOnce(ActorId),
    ) -> Result<Birth, SpawnError> {
        let id = self.next_actor_id();
        let actor = Arc::new(Actor::new(id, name.map(str::to_string), version.clone()));
        // Invariant 7: the run claim is held until `init` ran, so messages sent to the
        // actor meanwhile (even by itself) only queue and no worker runs it.
        let claimed = actor.try_claim();
        debug_assert!(claimed, "a new actor is idle");
        if let Some(s) = link {
            actor.links.lock().insert(s);
        }
        let inserted = self.registry.insert(actor.clone());
        registered(id);
        inserted.map_err(SpawnError::Name)?;
        let parent = link.filter(|&p| !self.is_supervisor(p));
        // A remote parent (a proxy: `spawn_link` from another node) holds its side of the
        // link in the distribution layer's tables, not in the registry.
        let orphan = parent.is_some_and(|p| {
            !crate::util::ids::is_remote(p)
                && self
                    .registry
                    .with_id(p, |pa| pa.links.lock().insert(id))
                    .is_none()
        });
        Ok(Birth {
            actor,
            version,
            parent,
            orphan,
        })
    }

    /// Kills actor `id` because its `init` did not return within `deadline` (a
    /// supervisor child's start, a `spawn_link`, a remote spawn): dead to the world at
    /// once (invariant 5), its exit reason saying why.
    pub(crate) fn kill_late_init(&self, id: ActorId, deadline: std::time::Duration) {
        if let Some(actor) = self.registry.get(id) {
            let why = format!(
                "init did not return within its {} ms start deadline",
                deadline.as_millis()
            );
            self.kill_running(&actor, &terms::reason(&plugin_api::Reason::error(why)));
        }
    }

    /// Step 2: runs `init(args)` under `core`, then lets the actor run. An actor killed
    /// while starting (the world told already, invariant 5) never runs `init`: `Ok` with
    /// its id, as for an actor killed right after.
    pub(crate) fn run_init(&self, birth: Birth, args: &[u8]) -> Result<ActorId, SpawnError> {
        let Birth {
            actor,
            version,
            parent,
            orphan,
        } = birth;
        let id = actor.id;
        let mut core = actor.core.lock();
        if actor.is_abandoned() {
            core.starting = false;
            Actor::reap(&mut core);
            return Ok(id);
        }
        let mut state = StatePtr::NULL;
        let ctx = RunCtx::new(self, id, &version, false);
        let out = (version.desc.init)(RSlice::from_slice(args), &ctx.raw(), &mut state);
        let code = out.code;
        let detail = String::from_utf8_lossy(&out.detail).into_owned();
        drop(out);
        core.starting = false;
        if code != OutcomeCode::Ok {
            core.alive = false;
            drop(core);
            self.registry.remove(id);
            if let Some(p) = parent {
                self.registry.with_id(p, |pa| pa.links.lock().remove(&id));
            }
            self.fail_mailbox(&actor, "init failed");
            let behaviour = version.name.to_string();
            let e = match code {
                OutcomeCode::BadMessage => SpawnError::BadArgs { behaviour, detail },
                OutcomeCode::Panic => SpawnError::InitPanicked { behaviour, detail },
                _ => SpawnError::InitFailed { behaviour, detail },
            };
            self.observer.emit(Event::SpawnFailed {
                behaviour: &version.name,
                name: actor.name.as_deref(),
                error: &e.to_string(),
            });
            return Err(e);
        }
        core.state = state;
        drop(core);
        if let Some(p) = parent.filter(|_| orphan) {
            // Handled ahead of any message once the claim is released below.
            actor.push_signal(Signal::Exit {
                from: p,
                reason: terms::reason(&plugin_api::Reason::NoProc),
            });
        }
        // Invariant 4: releasing re-checks the mailbox for what arrived during `init`.
        if actor.release() {
            self.requeue(actor);
        }
        Ok(id)
    }
}
