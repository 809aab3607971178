//! The actor system: actors, their mailboxes, the registry, the scheduler, timers, calls,
//! links and monitors, and the run loop — everything that makes a message reach a callback.
//! It knows nothing of libraries, files, supervisors' strategies or the operator: an actor
//! runs a [`BehaviourVersion`] someone else loaded, and what the system needs from the
//! layers above (a supervised child's exit, `ctx.start_child`, `ctx.spawn_link`) it sends
//! up as an `Upcall`.
//!
//! Where things go:
//! - a message: `System::send` → `mailbox` → the `scheduler` → `process::run` (the run
//!   loop) → the plugin's callback through `ffi`;
//! - a call: `calls` (waiters, request/reply, timeouts);
//! - a crash or stop: `process::exit` → `links` (exit signals, `DOWN`) and an `Upcall`
//!   for a supervisor;
//! - a timer: `timer` (the wheel and its thread) and `delayed` (`send_after`, intervals);
//! - suspend / resume / state / trace / what an operator sees of an actor: `sys`;
//! - a callback that runs too long, and killing an actor inside one: `watchdog`.

mod actor;
mod behaviour;
mod calls;
mod delayed;
mod errors;
pub(crate) mod ffi;
mod links;
pub(crate) mod mailbox;
mod process;
mod registry;
pub mod remote;
pub(crate) mod scheduler;
pub(crate) mod sys;
pub mod timer;
mod upcall;
pub(crate) mod watchdog;

use std::sync::Arc;

pub(crate) use actor::Actor;
pub use behaviour::BehaviourVersion;
pub use calls::ReplyRoute;
pub use errors::{CallError, SpawnError};
pub(crate) use process::Birth;
pub use registry::RegisterError;
pub use sys::SysError;
pub(crate) use upcall::Upcall;
pub use watchdog::WatchdogConfig;

use crate::observe::Observer;
use crate::util::ids::{ActorId, IdSource};
use crate::util::terms;
use calls::Calls;
use delayed::Intervals;
use links::Links;
use mailbox::Envelope;
use registry::Registry;
use remote::RemoteSignals;
use scheduler::RunQueue;
use timer::Timers;

/// Where a message goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An actor id.
    Id(ActorId),
    /// A registered name.
    Name(&'a str),
}

impl From<ActorId> for Target<'_> {
    fn from(id: ActorId) -> Self {
        Target::Id(id)
    }
}

impl<'a> From<&'a str> for Target<'a> {
    fn from(n: &'a str) -> Self {
        Target::Name(n)
    }
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "actor {id}"),
            Target::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// The actor system. Each part owns its own state; this type only holds them together so
/// the run loop and the FFI glue reach them through one reference.
pub(crate) struct System {
    /// Live actors by id and by name.
    pub(crate) registry: Registry,
    /// Where runnable actors wait for a scheduler thread.
    run_queue: RunQueue,
    /// The timer wheel (its thread belongs to whoever assembled the system).
    timers: Timers,
    /// Who waits for which reply.
    calls: Calls,
    /// Monitors, and which ids are supervisors.
    links: Links,
    /// Interval timers.
    intervals: Intervals,
    /// Actor ids and tags.
    ids: IdSource,
    /// What the system asks of the layer above.
    upcalls: crossbeam::channel::Sender<Upcall>,
    /// Where events, counters and traces go.
    pub(crate) observer: Arc<Observer>,
    /// Whether workers publish what they run, and the watchdog's limits.
    watchdog: WatchdogConfig,
    /// Mailbox length that logs `mailbox_high_water` (0: never).
    mailbox_warn_at: std::sync::atomic::AtomicUsize,
    /// Links and monitors held by processes on other nodes.
    remote: Arc<dyn RemoteSignals>,
    /// `watchdog.enabled`, switchable while running (read once per batch).
    watchdog_on: std::sync::atomic::AtomicBool,
}

/// The default mailbox high-water mark: far above what a healthy actor queues, low
/// enough to be noticed long before memory runs out.
pub const MAILBOX_WARN_AT: usize = 10_000;

impl System {
    /// An actor system that queues runnable actors on `run_queue`, arms timers on
    /// `timers`, and sends what it needs from above to `upcalls`.
    pub(crate) fn new(
        run_queue: RunQueue,
        timers: Timers,
        upcalls: crossbeam::channel::Sender<Upcall>,
        observer: Arc<Observer>,
        watchdog: WatchdogConfig,
        remote: Arc<dyn RemoteSignals>,
    ) -> System {
        System {
            registry: Registry::default(),
            run_queue,
            timers,
            calls: Calls::default(),
            links: Links::default(),
            intervals: Intervals::default(),
            ids: IdSource::default(),
            upcalls,
            observer,
            watchdog,
            mailbox_warn_at: std::sync::atomic::AtomicUsize::new(MAILBOX_WARN_AT),
            remote,
            watchdog_on: std::sync::atomic::AtomicBool::new(watchdog.enabled),
        }
    }

    /// The scheduler's queue (for its length and idle clocks).
    pub(crate) fn run_queue(&self) -> &RunQueue {
        &self.run_queue
    }

    /// The timer wheel.
    pub(crate) fn timers(&self) -> &Timers {
        &self.timers
    }

    /// A fresh actor (or supervisor) id.
    pub(crate) fn next_actor_id(&self) -> ActorId {
        self.ids.actor()
    }

    pub(crate) fn next_tag(&self) -> u64 {
        self.ids.tag()
    }

    /// Sends `up` to the layer above (dropped if it is gone: the host is stopping).
    pub(crate) fn upcall(&self, up: Upcall) {
        let _ = self.upcalls.send(up);
    }

    pub(crate) fn resolve(&self, to: Target<'_>) -> Option<Arc<Actor>> {
        match to {
            Target::Id(id) => self.registry.get(id),
            Target::Name(n) => self.registry.by_name(n),
        }
    }

    /// Puts a message in an actor's mailbox and makes sure the actor will run.
    pub(crate) fn deliver(&self, actor: &Arc<Actor>, env: Envelope) {
        let len = actor.mailbox.push(env);
        // Exact lengths under the mailbox lock: each threshold is crossed by one push.
        if len
            == self
                .mailbox_warn_at
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.observer.emit(crate::observe::Event::MailboxHighWater {
                actor: actor.id,
                name: actor.name.as_deref().unwrap_or(""),
                len,
            });
        }
        let max = actor.max_mailbox.load(std::sync::atomic::Ordering::Relaxed);
        if max != 0 && len == max + 1 {
            self.mailbox_overflow(actor, len, max);
        }
        if actor.try_claim() {
            self.run_queue.push(actor.clone());
        }
    }

    /// An actor's mailbox passed its `max_mailbox`: it is killed with a reason that says
    /// so, ahead of its messages and whether or not it traps exits.
    #[cold]
    fn mailbox_overflow(&self, actor: &Arc<Actor>, len: usize, max: usize) {
        self.observer.emit(crate::observe::Event::MailboxLimit {
            actor: actor.id,
            name: actor.name.as_deref().unwrap_or(""),
            len,
            max,
        });
        let reason = crate::util::terms::reason(&plugin_api::Reason::error(format!(
            "mailbox limit: more than max_mailbox = {max} messages waiting"
        )));
        actor.push_signal(actor::Signal::Kill { reason });
    }

    /// Sets the mailbox length that logs `mailbox_high_water` (0: never).
    pub(crate) fn set_mailbox_warn_at(&self, len: usize) {
        self.mailbox_warn_at
            .store(len, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets an actor's `max_mailbox` (0: no limit); false if it is not alive.
    pub(crate) fn set_max_mailbox(&self, to: Target<'_>, max: usize) -> bool {
        self.with_target(to, |a| {
            a.max_mailbox
                .store(max, std::sync::atomic::Ordering::Relaxed)
        })
        .is_some()
    }

    /// Queues an actor whose claim the caller holds (`Actor::try_claim` returned true).
    pub(crate) fn requeue(&self, actor: Arc<Actor>) {
        self.run_queue.push(actor);
    }

    /// `{name, node} ! msg` (or a cast) from a local actor: handed to the distribution
    /// layer, or delivered here if `node` is this node.
    pub(crate) fn send_remote(
        &self,
        from: ActorId,
        name: &str,
        node: &str,
        env: Envelope,
    ) -> Result<(), CallError> {
        let cast = env.kind == plugin_api::abi::MsgKind::Cast;
        match self.remote.send(from, name, node, cast, &env.bytes) {
            remote::RemoteSend::Sent => Ok(()),
            remote::RemoteSend::Local => self.send(Target::Name(name), env),
            remote::RemoteSend::NoNode => Err(CallError::NoProc(format!("{{{name}, {node}}}"))),
        }
    }

    pub(crate) fn send(&self, to: Target<'_>, env: Envelope) -> Result<(), CallError> {
        if let Target::Id(id) = to {
            if crate::util::ids::is_remote(id) {
                return self.send_proxy(ActorId(0), id, env);
            }
        }
        self.with_target(to, |a| self.deliver(a, env))
            .ok_or_else(|| CallError::NoProc(to.to_string()))
    }

    /// Runs `f` on the target actor under the registry's read lock.
    fn with_target<R>(&self, to: Target<'_>, f: impl FnOnce(&Arc<Actor>) -> R) -> Option<R> {
        match to {
            Target::Id(id) => self.registry.with_id(id, f),
            Target::Name(n) => self.registry.with_name(n, f),
        }
    }

    /// Delivers `{reply, Tag, Payload}` to an actor (answers the host makes itself).
    pub(crate) fn deliver_reply(&self, to: ActorId, tag: u64, payload: &[u8]) {
        let msg = terms::tagged("reply", tag, Some(payload));
        let _ = self.send(Target::Id(to), Envelope::reply(tag, msg));
    }

    /// `ctx.start_child`: handed up (a callback never waits for it); the outcome comes back
    /// to `requester` as `{reply, Tag, ...}`.
    pub(crate) fn start_child(&self, requester: ActorId, sup: &str, args: Vec<u8>) -> u64 {
        let tag = self.next_tag();
        self.upcall(Upcall::StartChild {
            sup: sup.to_string(),
            args,
            requester,
            tag,
        });
        tag
    }

    /// `ctx.spawn_link`: handed up (a spawn inside a callback could wait on the behaviour
    /// table while a swap waits on this very actor).
    pub(crate) fn spawn_link_async(
        &self,
        requester: ActorId,
        behaviour: &str,
        name: Option<String>,
        args: Vec<u8>,
    ) -> u64 {
        let tag = self.next_tag();
        self.upcall(Upcall::SpawnLink {
            behaviour: behaviour.to_string(),
            name,
            args,
            requester,
            tag,
        });
        tag
    }
}
