//! The run loop: what a scheduler thread does with one actor it took from the run queue.
//!
//! 1. Lock the actor's core (invariant 1); a dead actor is dropped from the queue.
//! 2. System messages first (exit signals), unless the actor is suspended.
//! 3. Take up to `BATCH` messages and hand each to the behaviour's `handle`, checking
//!    `suspended` before every one (invariant 3) and signals between them.
//! 4. A callback that fails decides the actor's fate: a message that does not decode is
//!    dropped (a call among them answered with `bad_message`); a stop ends the actor with
//!    its reason; a panic is a crash.
//! 5. Put back what was not handled, release the claim, and tell the scheduler whether to
//!    queue the actor again (invariant 4).
//!
//! With the watchdog on, the worker publishes the actor and, per message, the callback
//! and when it started (the coarse clock: no system call). After every callback the
//! runner looks whether the actor was killed meanwhile (invariant 5 of `actor`): if so it
//! frees the state through its version and touches nothing else.

use std::collections::VecDeque;
use std::sync::Arc;

use abi_stable::std_types::RSlice;
use plugin_api::abi::{MsgKind, OutcomeCode};
use plugin_api::{etf, Reason};

use super::exit::Crash;
use crate::observe::{kind_name, Event};
use crate::system::ffi::RunCtx;
use crate::system::mailbox::Envelope;
use crate::system::scheduler::{Running, BATCH};
use crate::system::{Actor, CallError, System};
use crate::util::ids::ActorId;
use crate::util::terms;

impl System {
    /// Runs up to `BATCH` messages of one actor (the scheduler's callback) on the worker
    /// that publishes through `running`. Returns whether the actor must be queued again.
    pub(crate) fn run_actor(&self, actor: &Arc<Actor>, running: &Running) -> bool {
        if self.watchdog_on() {
            let again = self.run_batch(actor, Some(running));
            running.leave();
            again
        } else {
            self.run_batch(actor, None)
        }
    }

    fn run_batch(&self, actor: &Arc<Actor>, running: Option<&Running>) -> bool {
        thread_local! {
            /// This worker's batch buffer, reused so taking a batch allocates nothing.
            static BATCH_BUF: std::cell::RefCell<VecDeque<Envelope>> = const { std::cell::RefCell::new(VecDeque::new()) };
        }
        let mut core = actor.core.lock();
        if !core.alive || actor.is_abandoned() {
            Actor::reap(&mut core);
            return false;
        }
        if let Some(r) = running {
            r.enter(actor.id.0);
        }
        let version = core.version.clone();
        let ctx = RunCtx::new(self, actor.id, &version, actor.is_traced());
        let raw = ctx.raw();
        if actor.has_signals() && !actor.is_suspended() && self.handle_signals(actor, &mut core) {
            return false;
        }
        let mut batch = BATCH_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        actor.mailbox.take_batch(BATCH, &mut batch);
        let mut handled = 0u64;
        let mut stopped = false;
        // Once per batch, not per message (a `u128` division each time showed up as 3 %
        // of a host -> actor message with the watchdog on).
        let warn_ms = self.watchdog.warn_after.as_millis() as u64;
        while let Some(env) = batch.pop_front() {
            // Invariant 3: a suspended actor handles nothing more.
            if actor.is_suspended() {
                batch.push_front(env);
                break;
            }
            // System messages go ahead of the next user message.
            if actor.has_signals() {
                batch.push_front(env);
                actor.mailbox.put_back(&mut batch);
                if self.handle_signals(actor, &mut core) {
                    stopped = true;
                    break;
                }
                actor.mailbox.take_batch(BATCH, &mut batch);
                continue;
            }
            if actor.is_traced() {
                self.trace(
                    actor.id,
                    "in",
                    kind_name(env.kind),
                    ActorId(env.from.caller),
                    &env.bytes,
                );
            }
            if let Some(r) = running {
                r.callback(env.kind as u8);
            }
            let out = (version.desc.handle)(
                core.state,
                env.kind,
                env.from,
                RSlice::from_slice(&env.bytes),
                &raw,
            );
            handled += 1;
            if let Some(r) = running {
                // Past the watchdog's threshold: say which message it was, now that the
                // callback is back (the watchdog, which cannot read the message, said
                // `long_callback` while it ran). A subtraction per message otherwise.
                let ms = r.callback_ms();
                if ms >= warn_ms {
                    self.observer.emit(Event::LongCallbackDone {
                        actor: actor.id,
                        name: actor.name.as_deref(),
                        behaviour: &version.name,
                        version: &version.version,
                        callback: crate::system::watchdog::callback_name(env.kind as u8),
                        message: &etf::display(&env.bytes),
                        elapsed_ms: ms,
                    });
                }
            }
            if actor.is_abandoned() {
                // Killed meanwhile (invariant 5): the world has been told; the result is
                // dropped, the calls left in the batch are failed, the state freed.
                drop(out);
                actor.mailbox.put_back(&mut batch);
                self.fail_mailbox(actor, "killed");
                Actor::reap(&mut core);
                stopped = true;
                break;
            }
            if out.code == OutcomeCode::Ok {
                continue;
            }
            let code = out.code;
            let detail: Vec<u8> = out.detail.to_vec();
            drop(out);
            match code {
                OutcomeCode::BadMessage => {
                    let error = String::from_utf8_lossy(&detail).into_owned();
                    let reply_to = env.reply_to();
                    self.observer.emit(Event::BadMessage {
                        actor: actor.id,
                        name: actor.name.as_deref(),
                        behaviour: &version.name,
                        version: &version.version,
                        kind: if reply_to.is_some() {
                            "reply"
                        } else {
                            kind_name(env.kind)
                        },
                        message: &etf::display(&env.bytes),
                        error: &error,
                    });
                    if env.kind == MsgKind::Call {
                        self.reply(env.from.tag, Err(CallError::BadMessage(error)));
                    } else if let Some(tag) = reply_to {
                        // A reply the requester cannot decode: it still hears back, as
                        // `{timeout, ReqId}` (its deadline was cancelled by the reply), so
                        // a pending request never hangs. Queued behind what is waiting.
                        let msg = terms::tagged("timeout", tag, None);
                        actor.mailbox.push(Envelope::message(MsgKind::Info, msg));
                    }
                }
                OutcomeCode::Stop => {
                    if env.kind == MsgKind::Call {
                        // Stopped without replying: the caller gets the exit reason now
                        // (a no-op if the callee did reply).
                        let reason = etf::display(&detail);
                        self.reply(env.from.tag, Err(CallError::Exit(reason)));
                    }
                    actor.mailbox.put_back(&mut batch);
                    self.stop_actor(actor, &mut core, &detail, None);
                    stopped = true;
                    break;
                }
                _ => {
                    let text = String::from_utf8_lossy(&detail).into_owned();
                    let message = etf::display(&env.bytes);
                    if env.kind == MsgKind::Call {
                        self.reply(
                            env.from.tag,
                            Err(CallError::Exit(format!("crashed: {text}"))),
                        );
                    }
                    let reason = terms::reason(&Reason::error(format!("panic: {text}")));
                    actor.mailbox.put_back(&mut batch);
                    let crash = Crash {
                        panic: text,
                        message,
                    };
                    self.stop_actor(actor, &mut core, &reason, Some(crash));
                    stopped = true;
                    break;
                }
            }
        }
        actor.mailbox.put_back(&mut batch);
        BATCH_BUF.with(|b| *b.borrow_mut() = batch);
        actor.count_handled(handled);
        if stopped {
            return false;
        }
        if actor.is_abandoned() {
            Actor::reap(&mut core);
            return false;
        }
        drop(core);
        actor.release()
    }
}
