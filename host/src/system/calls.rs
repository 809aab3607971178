//! Calls: who waits for which reply. A blocking caller outside the actor system
//! ([`System::call`]) and an actor's asynchronous request ([`System::request`], OTP's
//! `gen_server:send_request`) both leave a waiter under a fresh tag; the reply, the
//! callee's death or the deadline removes it — whoever removes it decides, so a reply is
//! delivered at most once and never after a timeout.

use std::time::Duration;

use crossbeam::channel::{self, Sender};
use parking_lot::Mutex;
use plugin_api::abi::{FromRaw, MsgKind};
use rustc_hash::FxHashMap;

use super::mailbox::{Envelope, MsgBytes};
use super::timer::TimerAction;
use super::{Actor, CallError, System, Target};
use crate::util::ids::ActorId;
use crate::util::terms;

/// Who waits for a reply.
///
/// Each records the callee, so when an actor dies every caller still waiting on it is
/// answered at once with its exit reason (OTP's monitor on the callee), and the requester,
/// so a dead requester's entries and timers are dropped instead of lingering.
enum Waiter {
    /// A blocking caller outside the actor system.
    External {
        tx: Sender<Result<Vec<u8>, CallError>>,
        callee: ActorId,
    },
    /// An actor that sent a request; its timeout timer is cancelled on reply.
    Actor {
        id: ActorId,
        timer: u64,
        callee: ActorId,
    },
    /// A caller the layer above routes the reply to (a process on another node): the
    /// route runs once, with the reply or the callee's exit.
    Routed { route: ReplyRoute, callee: ActorId },
}

/// Where the reply of a [`System::call_routed`] goes: called once with the callee's id
/// and the reply's bytes (ETF), or the error that ended the call.
pub type ReplyRoute = Box<dyn FnOnce(ActorId, Result<&[u8], CallError>) + Send>;

impl Waiter {
    fn involves(&self, actor: ActorId) -> bool {
        match self {
            Waiter::External { callee, .. } | Waiter::Routed { callee, .. } => *callee == actor,
            Waiter::Actor { id, callee, .. } => *id == actor || *callee == actor,
        }
    }
}

/// The pending calls, by tag.
#[derive(Default)]
pub(super) struct Calls {
    pending: Mutex<FxHashMap<u64, Waiter>>,
}

impl System {
    /// A blocking call from outside the actor system: waits at most `timeout`.
    pub(crate) fn call(
        &self,
        to: Target<'_>,
        bytes: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let tag = self.next_tag();
        let (tx, rx) = channel::bounded(1);
        // Register and deliver under the registry's read lock: an actor that is still
        // registered has not drained its mailbox yet, so if it dies now, `stop_actor`
        // (which unregisters first) will find this call and answer it.
        self.with_target(to, |actor| {
            let waiter = Waiter::External {
                tx,
                callee: actor.id,
            };
            self.calls.pending.lock().insert(tag, waiter);
            self.deliver(actor, Envelope::call(FromRaw { caller: 0, tag }, bytes));
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                // Whoever removes the waiter decides: if we do, a later reply finds nothing
                // and is dropped; if a replier did, it sends right after removing it.
                if self.calls.pending.lock().remove(&tag).is_some() {
                    Err(CallError::Timeout)
                } else {
                    rx.recv().unwrap_or(Err(CallError::Timeout))
                }
            }
        }
    }

    /// A call whose caller is outside this system and not waiting on a thread (a process
    /// on another node): the callee's reply — now, or later through a kept `ReplyTo` —
    /// goes to `route`. Costs nothing on the local paths.
    pub(crate) fn call_routed(
        &self,
        to: Target<'_>,
        bytes: MsgBytes,
        route: ReplyRoute,
    ) -> Result<(), CallError> {
        let tag = self.next_tag();
        self.with_target(to, |actor| {
            let waiter = Waiter::Routed {
                route,
                callee: actor.id,
            };
            self.calls.pending.lock().insert(tag, waiter);
            self.deliver(actor, Envelope::call(FromRaw { caller: 0, tag }, bytes));
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))
    }

    /// An actor's asynchronous request (`Ctx::request`); `None` if the callee is unknown.
    pub(crate) fn request(
        &self,
        from: ActorId,
        to: Target<'_>,
        bytes: MsgBytes,
        timeout: Duration,
    ) -> Option<u64> {
        let tag = self.next_tag();
        self.with_target(to, |actor| {
            self.add_request_waiter(tag, from, actor.id, timeout);
            self.deliver(
                actor,
                Envelope::call(
                    FromRaw {
                        caller: from.0,
                        tag,
                    },
                    bytes,
                ),
            );
        })?;
        Some(tag)
    }

    /// Leaves a waiter for a request from `from` to a remote process whose proxy is
    /// `callee`, with its timeout timer; returns the tag. The request is sent after this,
    /// so a reply cannot arrive before its waiter.
    pub(super) fn request_waiter(&self, from: ActorId, callee: ActorId, timeout: Duration) -> u64 {
        let tag = self.next_tag();
        self.add_request_waiter(tag, from, callee, timeout);
        tag
    }

    /// Puts `from`'s waiter for the request `tag` to `callee` in place, with its timeout
    /// timer: the waiter is there before the timer can fire (firing takes `pending`).
    fn add_request_waiter(&self, tag: u64, from: ActorId, callee: ActorId, timeout: Duration) {
        let mut pending = self.calls.pending.lock();
        let timer = self
            .timers()
            .schedule(timeout, TimerAction::RequestTimeout { tag });
        pending.insert(
            tag,
            Waiter::Actor {
                id: from,
                timer,
                callee,
            },
        );
    }

    /// Removes a waiter whose request could not be sent.
    pub(super) fn drop_waiter(&self, tag: u64) {
        if let Some(Waiter::Actor { timer, .. }) = self.calls.pending.lock().remove(&tag) {
            self.timers().cancel(timer);
        }
    }

    /// A reply from another node to the request `tag`: delivered only if that request
    /// went to a remote process and still waits (a peer cannot answer a local call).
    pub(crate) fn reply_remote(&self, tag: u64, reply: &[u8]) -> bool {
        match self.calls.pending.lock().get(&tag) {
            Some(Waiter::Actor { callee, .. }) if crate::util::ids::is_remote(*callee) => {}
            _ => return false,
        }
        self.reply(tag, Ok(reply))
    }

    /// The connection behind `proxies` is lost: every request waiting on one of them fails
    /// now (the requester gets `{timeout, ReqId}` at once, not at its deadline).
    pub(crate) fn fail_calls_to(&self, proxies: &rustc_hash::FxHashSet<ActorId>) {
        if proxies.is_empty() {
            return;
        }
        let settled: Vec<(u64, Waiter)> = self
            .calls
            .pending
            .lock()
            .extract_if(
                |_, w| matches!(w, Waiter::Actor { callee, .. } if proxies.contains(callee)),
            )
            .collect();
        for (tag, waiter) in settled {
            if let Waiter::Actor { id, timer, .. } = waiter {
                self.timers().cancel(timer);
                let msg = terms::tagged("timeout", tag, None);
                let _ = self.send(Target::Id(id), Envelope::message(MsgKind::Info, msg));
            }
        }
    }

    /// Routes a reply to whoever waits for `tag`; false if nobody does any more.
    pub(crate) fn reply(&self, tag: u64, result: Result<&[u8], CallError>) -> bool {
        let Some(waiter) = self.calls.pending.lock().remove(&tag) else {
            return false;
        };
        match waiter {
            Waiter::External { tx, .. } => tx.send(result.map(<[u8]>::to_vec)).is_ok(),
            Waiter::Routed { route, callee } => {
                route(callee, result);
                true
            }
            Waiter::Actor { id, timer, .. } => {
                self.timers().cancel(timer);
                let msg = match &result {
                    Ok(bytes) => terms::tagged("reply", tag, Some(bytes)),
                    // The callee died or refused: the requester sees a timeout-shaped
                    // message now rather than waiting for the deadline.
                    Err(_) => terms::tagged("timeout", tag, None),
                };
                let env = match &result {
                    Ok(_) => Envelope::reply(tag, msg),
                    Err(_) => Envelope::message(MsgKind::Info, msg),
                };
                self.send(Target::Id(id), env).is_ok()
            }
        }
    }

    /// A request's deadline passed: if it still waits, the requester gets `{timeout, Tag}`.
    pub(super) fn request_timed_out(&self, tag: u64) {
        let waiter = self.calls.pending.lock().remove(&tag);
        if let Some(Waiter::Actor { id, .. }) = waiter {
            if let Some(actor) = self.registry.get(id) {
                self.deliver(
                    &actor,
                    Envelope::message(MsgKind::Info, terms::tagged("timeout", tag, None)),
                );
            }
        }
    }

    /// Settles every pending call that involves a dead actor: callers waiting on it get its
    /// exit reason now (requesting actors get `{timeout, Ref}`), and its own outstanding
    /// requests are dropped with their timers. Runs after the actor is unregistered, so no
    /// new waiter on it can appear (calls register under the registry lock).
    pub(super) fn fail_waiters(&self, dead: ActorId, reason: &str) {
        let settled: Vec<(u64, Waiter)> = self
            .calls
            .pending
            .lock()
            .extract_if(|_, w| w.involves(dead))
            .collect();
        for (tag, waiter) in settled {
            match waiter {
                Waiter::External { tx, .. } => {
                    let _ = tx.send(Err(CallError::Exit(reason.to_string())));
                }
                Waiter::Routed { route, callee } => {
                    route(callee, Err(CallError::Exit(reason.to_string())));
                }
                Waiter::Actor { id, timer, .. } => {
                    self.timers().cancel(timer);
                    if id != dead {
                        let msg = terms::tagged("timeout", tag, None);
                        let _ = self.send(Target::Id(id), Envelope::message(MsgKind::Info, msg));
                    }
                }
            }
        }
    }

    /// Answers every call still queued for a dead actor with its exit reason.
    pub(super) fn fail_mailbox(&self, actor: &Actor, reason: &str) {
        for env in actor.mailbox.drain() {
            if env.kind == MsgKind::Call {
                self.reply(env.from.tag, Err(CallError::Exit(reason.to_string())));
            }
        }
    }
}
