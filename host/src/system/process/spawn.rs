//! Spawning an actor.

use std::sync::Arc;

use abi_stable::std_types::RSlice;
use plugin_api::abi::{OutcomeCode, StatePtr};

use crate::observe::Event;
use crate::system::actor::Signal;
use crate::system::ffi::RunCtx;
use crate::system::{Actor, BehaviourVersion, SpawnError, System};
use crate::util::ids::ActorId;
use crate::util::terms;

impl System {
    /// Starts an actor running `version`, optionally registered as `name` and linked from
    /// birth to `link` (a supervisor, or the parent of a `spawn_link`, so no exit can slip
    /// by unseen). `init` runs on this thread.
    ///
    /// `registered` runs with the new id once the actor is registered (or refused),
    /// before `init`: the caller holds the behaviour table until then, so a swap either
    /// lists this actor or commits before it — and no lock of the caller's is held while
    /// `init` runs.
    ///
    /// Both sides of a parent's link are made before `init` runs, the parent's side under
    /// the registry lock: a parent found there has not yet taken its links to die, so its
    /// exit signal will reach the child. A parent already gone (it died while its
    /// `spawn_link` waited for the supervision thread) sends the child an exit signal
    /// `noproc` at once, as OTP's `link/1` to a dead process does: the child dies with it
    /// (or, trapping exits, is told) instead of living on as an orphan.
    pub(crate) fn spawn(
        &self,
        version: Arc<BehaviourVersion>,
        name: Option<&str>,
        args: &[u8],
        link: Option<ActorId>,
        registered: impl FnOnce(ActorId),
    ) -> Result<ActorId, SpawnError> {
        let id = self.next_actor_id();
        let actor = Arc::new(Actor::new(
            id,
            name.map(str::to_string),
            version.clone(),
            StatePtr::NULL,
        ));
        // Hold the run claim while `init` runs: messages sent to the actor meanwhile
        // (even by itself) only queue, and no worker blocks on its core; they run after
        // `init`, when the claim is released below (invariant 1).
        let claimed = actor.try_claim();
        debug_assert!(claimed, "a new actor is idle");
        if let Some(s) = link {
            actor.links.lock().insert(s);
        }
        let mut core = actor.core.lock();
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
        let mut state = StatePtr::NULL;
        let ctx = RunCtx::new(self, id, &version, false);
        let out = (version.desc.init)(RSlice::from_slice(args), &ctx.raw(), &mut state);
        let code = out.code;
        let detail = String::from_utf8_lossy(&out.detail).into_owned();
        drop(out);
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
                name,
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
