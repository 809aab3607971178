//! Links, monitors and exit signals, with OTP's rules.
//!
//! - A link is two-way: both actors hold it. When one dies, the other gets an exit
//!   signal; a supervisor's links are the exception, since a supervisor is not an actor:
//!   its children's exits go up as [`Upcall::ChildExit`].
//! - A monitor is one-way: the target holds `(ref, watcher)`, and this table maps the ref
//!   back to the target so `demonitor` finds it. Whoever removes the ref from this table
//!   decides between `DOWN` and demonitor, so exactly one happens.
//! - Exit signals are system messages, handled ahead of the mailbox: `kill` cannot be
//!   trapped and ends the actor with `killed`; a trapping actor receives
//!   `{'EXIT', From, Reason}`; otherwise `normal` is ignored and any other reason ends it.

use std::sync::Arc;

use crossbeam::channel::Sender;
use parking_lot::{Mutex, RwLock};
use plugin_api::abi::MsgKind;
use plugin_api::Reason;
use rustc_hash::FxHashMap;

use super::actor::{Core, Signal};
use super::mailbox::Envelope;
use super::{Actor, CallError, System, Target, Upcall};
use crate::util::ids::{is_remote, ActorId, MonitorRef};
use crate::util::terms;

/// Monitors by reference, and which ids are supervisors.
#[derive(Default)]
pub(super) struct Links {
    /// Active monitors, and who holds which.
    monitors: Mutex<Monitors>,
    /// Live supervisors (children are linked to these), each with the channel of the
    /// thread that runs it: a child's exit goes straight there.
    supervisors: RwLock<FxHashMap<ActorId, Sender<Upcall>>>,
}

/// The monitors on local actors.
#[derive(Default)]
struct Monitors {
    /// Active monitors: reference -> monitored actor.
    active: FxHashMap<MonitorRef, ActorId>,
    /// The references each local watcher took, so its exit takes its monitors down (as
    /// BEAM does; a long-lived target would otherwise keep every dead watcher's). A list
    /// may also hold references demonitored or fired since: it is pruned when it doubles,
    /// so one that monitors and demonitors for ever stays bounded, at O(1) amortized.
    held: FxHashMap<ActorId, Held>,
}

#[derive(Default)]
struct Held {
    refs: Vec<MonitorRef>,
    /// Length after the last pruning.
    pruned_at: usize,
}

impl Monitors {
    fn add(&mut self, mref: MonitorRef, target: ActorId, watcher: ActorId) {
        self.active.insert(mref, target);
        if is_remote(watcher) {
            return; // the distribution layer keeps a remote watcher's
        }
        let held = self.held.entry(watcher).or_default();
        held.refs.push(mref);
        if held.refs.len() > 2 * held.pruned_at.max(8) {
            let active = &self.active;
            held.refs.retain(|r| active.contains_key(r));
            held.pruned_at = held.refs.len();
        }
    }
}

impl System {
    /// Marks `id` as a supervisor: exits of actors linked to it go up as upcalls on `to`
    /// (the channel of the thread that runs that supervisor).
    pub(crate) fn register_supervisor(&self, id: ActorId, to: Sender<Upcall>) {
        self.links.supervisors.write().insert(id, to);
    }

    /// Whether `id` is a live supervisor (not an actor: it has no registry entry).
    pub(crate) fn is_supervisor(&self, id: ActorId) -> bool {
        self.links.supervisors.read().contains_key(&id)
    }

    pub(crate) fn unregister_supervisor(&self, id: ActorId) {
        self.links.supervisors.write().remove(&id);
    }

    /// Puts a system message on an actor and makes sure it runs.
    pub(super) fn deliver_signal(&self, actor: &Arc<Actor>, sig: Signal) {
        actor.push_signal(sig);
        if actor.try_claim() {
            self.requeue(actor.clone());
        }
    }

    /// Links `a` to `b` on `a`'s side only (the other side was set at `b`'s birth).
    pub(crate) fn add_link(&self, a: ActorId, b: ActorId) {
        self.registry.with_id(a, |actor| {
            actor.links.lock().insert(b);
        });
    }

    /// `link/1` from actor `from`.
    pub(crate) fn link(&self, from: ActorId, to: Target<'_>) -> Result<(), CallError> {
        if let Target::Id(proxy) = to {
            if is_remote(proxy) && !is_remote(from) {
                self.link_proxy(from, proxy);
                return Ok(());
            }
        }
        // Under the registry lock: a target found here has not run `stop_actor`'s
        // unregister yet, so it will see this link when it dies.
        self.with_target(to, |t| {
            if t.id == from {
                return;
            }
            t.links.lock().insert(from);
            self.add_link(from, t.id);
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))
    }

    /// `unlink/1` from actor `from`.
    pub(crate) fn unlink(&self, from: ActorId, to: Target<'_>) -> Result<(), CallError> {
        if let Target::Id(proxy) = to {
            if is_remote(proxy) && !is_remote(from) {
                self.unlink_proxy(from, proxy);
                return Ok(());
            }
        }
        let other = self
            .with_target(to, |t| {
                t.links.lock().remove(&from);
                t.id
            })
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        self.registry
            .with_id(from, |me| me.links.lock().remove(&other));
        Ok(())
    }

    /// `monitor(process, To)` from actor `watcher`; a missing target is reported at once
    /// with `noproc`.
    pub(crate) fn monitor(&self, watcher: ActorId, to: Target<'_>) -> MonitorRef {
        if let Target::Id(proxy) = to {
            if is_remote(proxy) {
                return self.monitor_remote(watcher, super::remote::RemoteDest::Pid(proxy));
            }
        }
        let mref = MonitorRef(self.next_tag());
        self.monitor_as(mref, watcher, to);
        mref
    }

    /// `monitor/2` under a reference the caller chose (the distribution layer records it
    /// first, so a `DOWN` racing this call finds it); false if the target was not alive,
    /// in which case the `DOWN` with `noproc` has been sent.
    pub(crate) fn monitor_as(&self, mref: MonitorRef, watcher: ActorId, to: Target<'_>) -> bool {
        let found = self.with_target(to, |t| {
            t.monitored_by.lock().push((mref, watcher));
            self.links.monitors.lock().add(mref, t.id, watcher);
            t.id
        });
        match found {
            Some(_) => true,
            None => {
                let who = match to {
                    Target::Id(id) => id,
                    Target::Name(_) => ActorId(0),
                };
                self.send_down(watcher, mref, who, &terms::reason(&Reason::NoProc));
                false
            }
        }
    }

    /// Delivers `{'DOWN', Ref, process, Who, Reason}` to a local watcher, or hands it to
    /// the distribution layer for a remote one.
    fn send_down(&self, watcher: ActorId, mref: MonitorRef, who: ActorId, reason: &[u8]) {
        if is_remote(watcher) {
            self.remote.down(watcher, mref, who, reason);
        } else {
            let msg = terms::down(mref.0, who.0, reason);
            let _ = self.send(Target::Id(watcher), Envelope::message(MsgKind::Info, msg));
        }
    }

    /// `demonitor/1`: true if the monitor was active (no `DOWN` will be sent).
    pub(crate) fn demonitor(&self, mref: MonitorRef) -> bool {
        let Some(target) = self.links.monitors.lock().active.remove(&mref) else {
            // Not on a local actor: perhaps on a process of another node.
            return self.remote.demonitor(mref);
        };
        self.registry.with_id(target, |t| {
            t.monitored_by.lock().retain(|&(r, _)| r != mref)
        });
        true
    }

    /// `process_flag(trap_exit, On)`; returns the previous value.
    pub(crate) fn set_trap_exit(&self, actor: ActorId, on: bool) -> bool {
        self.registry
            .with_id(actor, |a| a.set_trap_exit(on))
            .unwrap_or(false)
    }

    /// `exit/2`: an exit signal from `from` to `to`.
    ///
    /// `kill` to an actor inside a callback (its core held by another thread) does not
    /// wait for the callback: the actor is made dead to the world at once (invariant 5 of
    /// `actor`); an actor between callbacks takes the signal ahead of its mailbox.
    pub(crate) fn exit_signal(
        &self,
        from: ActorId,
        to: Target<'_>,
        reason: Vec<u8>,
    ) -> Result<(), CallError> {
        if let Target::Id(proxy) = to {
            if is_remote(proxy) {
                return self.exit_proxy(from, proxy, &reason);
            }
        }
        if Reason::from_etf(&reason) == Reason::Kill {
            let t = self
                .resolve(to)
                .ok_or_else(|| CallError::NoProc(to.to_string()))?;
            // Inside a callback, or starting (invariant 7): dead to the world at once.
            if t.id != from && t.core.try_lock().is_none_or(|c| c.starting) {
                self.kill_running(&t, &terms::reason(&Reason::Killed));
                return Ok(());
            }
        }
        self.with_target(to, |t| {
            self.deliver_signal(t, Signal::Exit { from, reason })
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))
    }

    /// Handles an actor's system messages (its core is locked). Returns true if one of
    /// them stopped it (OTP's rules, in the module docs).
    pub(super) fn handle_signals(&self, actor: &Arc<Actor>, core: &mut Core) -> bool {
        for sig in actor.take_signals() {
            let (from, reason) = match sig {
                Signal::Kill { reason } => {
                    self.stop_actor(actor, core, &reason, None);
                    return true;
                }
                Signal::Exit { from, reason } => (from, reason),
            };
            let r = Reason::from_etf(&reason);
            if r == Reason::Kill {
                self.stop_actor(actor, core, &terms::reason(&Reason::Killed), None);
                return true;
            }
            if actor.traps_exits() {
                let msg = terms::exit(from.0, &reason);
                actor.mailbox.push(Envelope::message(MsgKind::Info, msg));
            } else if r != Reason::Normal {
                self.stop_actor(actor, core, &reason, None);
                return true;
            }
        }
        false
    }

    /// Cancels the timers a dead actor armed or that are addressed to it. Runs after it
    /// was unregistered, so nobody can add more, and before its `crash` / `actor_stopped`
    /// event, so whoever sees the event sees them gone.
    pub(super) fn cancel_timers_of(&self, actor: &Actor) {
        let timers = std::mem::take(&mut *actor.timers.lock());
        self.cancel_timers_of_dead(timers);
    }

    /// Sends the dead actor's exit signal to every linked actor (or, for a supervisor, up
    /// as an upcall) and a `DOWN` message to every monitor. Runs after it was
    /// unregistered, so nobody can add more. `text` is `reason` displayed (for a
    /// supervisor).
    pub(super) fn notify_links_and_monitors(&self, actor: &Actor, reason: &[u8], text: &str) {
        let links = std::mem::take(&mut *actor.links.lock());
        for l in links {
            let sup = self.links.supervisors.read().get(&l).cloned();
            if let Some(to) = sup {
                // Dropped if that supervisor's thread is gone (the host is stopping).
                let _ = to.send(Upcall::ChildExit {
                    child: actor.id,
                    reason: reason.to_vec(),
                    text: text.to_string(),
                });
                continue;
            }
            if is_remote(l) {
                self.remote.exit(l, actor.id, reason);
                continue;
            }
            self.registry.with_id(l, |la| {
                la.links.lock().remove(&actor.id);
                self.deliver_signal(
                    la,
                    Signal::Exit {
                        from: actor.id,
                        reason: reason.to_vec(),
                    },
                );
            });
        }
        let monitors = std::mem::take(&mut *actor.monitored_by.lock());
        for (mref, watcher) in monitors {
            // A concurrent demonitor that won the race means no DOWN.
            if self.links.monitors.lock().active.remove(&mref).is_some() {
                self.send_down(watcher, mref, actor.id, reason);
            }
        }
        // The monitors it held: no `DOWN` for a dead watcher to keep waiting on a target
        // that may live for ever.
        let held = self.links.monitors.lock().held.remove(&actor.id);
        for mref in held.map(|h| h.refs).unwrap_or_default() {
            let Some(target) = self.links.monitors.lock().active.remove(&mref) else {
                continue; // demonitored or fired already
            };
            self.registry.with_id(target, |t| {
                t.monitored_by.lock().retain(|&(r, _)| r != mref)
            });
        }
        if actor.is_remote_watcher() {
            self.remote.watcher_gone(actor.id);
        }
    }
}
