//! The supervision thread's view of the host: how it spawns, signals, answers and
//! reports, through the actor system and the code server.
//!
//! A child's `init` runs on a starter thread the supervision thread waits for with the
//! child's start deadline (each supervision thread has a starter of its own). Past it the half-started actor is killed (its name freed at
//! once, invariant 5 of `actor`), the start fails, and the starter is abandoned: a fresh
//! one serves the next start, and the old one ends when the stuck `init` returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{self, Sender};
use parking_lot::Mutex;
use plugin_api::Reason;

use crate::code::Code;
use crate::observe::{HostEvent, Observer};
use crate::supervisor::ChildHost;
use crate::system::{SpawnError, System, Target, Upcall};
use crate::util::ids::ActorId;
use crate::util::terms;

/// The real [`ChildHost`].
pub(super) struct Children {
    pub(super) system: Arc<System>,
    pub(super) code: Arc<Code>,
    pub(super) observer: Arc<Observer>,
    /// The thread that runs `init` (started on first use, replaced when abandoned).
    pub(super) starter: Mutex<Option<Sender<StartJob>>>,
    /// Stack size of a starter thread (the scheduler's).
    pub(super) stack_size: usize,
}

/// One start for the starter thread.
pub(super) struct StartJob {
    behaviour: String,
    name: Option<String>,
    args: Vec<u8>,
    link: ActorId,
    /// The id, once registered (0 before).
    id: Arc<AtomicU64>,
    reply: Sender<Result<ActorId, SpawnError>>,
}

/// A host for another supervision thread: the same system, code and observer, and a
/// starter of its own (a hanging `init` holds only the thread that waits for it).
impl Clone for Children {
    fn clone(&self) -> Self {
        Children {
            system: self.system.clone(),
            code: self.code.clone(),
            observer: self.observer.clone(),
            starter: Mutex::new(None),
            stack_size: self.stack_size,
        }
    }
}

impl Children {
    fn starter(&self) -> Option<Sender<StartJob>> {
        let mut slot = self.starter.lock();
        if slot.is_none() {
            let (tx, rx) = channel::unbounded::<StartJob>();
            let code = self.code.clone();
            std::thread::Builder::new()
                .name("starter".into())
                .stack_size(self.stack_size)
                .spawn(move || {
                    for job in rx {
                        let id = job.id.clone();
                        let r = code.spawn_noting(
                            &job.behaviour,
                            job.name.as_deref(),
                            &job.args,
                            Some(job.link),
                            move |new| id.store(new.0, Ordering::SeqCst),
                        );
                        let _ = job.reply.send(r);
                    }
                })
                .ok()?;
            *slot = Some(tx);
        }
        slot.clone()
    }
}

impl ChildHost for Children {
    fn new_supervisor(&self, upcalls: &Sender<Upcall>) -> ActorId {
        let id = self.system.next_actor_id();
        self.system.register_supervisor(id, upcalls.clone());
        id
    }

    fn forget_supervisor(&self, id: ActorId) {
        self.system.unregister_supervisor(id);
    }

    fn spawn(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
        link: ActorId,
        start_timeout: Duration,
    ) -> Result<ActorId, SpawnError> {
        let Some(starter) = self.starter() else {
            // No thread to be had: start here, without a deadline.
            return self.code.spawn(behaviour, name, args, Some(link));
        };
        let id = Arc::new(AtomicU64::new(0));
        let (reply, answer) = channel::bounded(1);
        let job = StartJob {
            behaviour: behaviour.to_string(),
            name: name.map(str::to_string),
            args: args.to_vec(),
            link,
            id: id.clone(),
            reply,
        };
        if starter.send(job).is_err() {
            return self.code.spawn(behaviour, name, args, Some(link));
        }
        match answer.recv_timeout(start_timeout) {
            Ok(r) => r,
            Err(_) => {
                // Abandon this starter; kill the actor whose `init` hangs.
                *self.starter.lock() = None;
                let ms = start_timeout.as_millis() as u64;
                let id = ActorId(id.load(Ordering::SeqCst));
                if let Some(actor) = self.system.registry.get(id) {
                    let why = format!("init did not return within its {ms} ms start deadline");
                    self.system
                        .kill_running(&actor, &terms::reason(&Reason::error(why)));
                }
                Err(SpawnError::InitTimeout {
                    behaviour: behaviour.to_string(),
                    ms,
                })
            }
        }
    }

    fn exit(&self, from: ActorId, to: ActorId, reason: &Reason) -> bool {
        self.system
            .exit_signal(from, Target::Id(to), terms::reason(reason))
            .is_ok()
    }

    fn reply(&self, to: ActorId, tag: u64, payload: &[u8]) {
        self.system.deliver_reply(to, tag, payload);
    }

    fn report(&self, ev: HostEvent) {
        self.observer.publish(ev);
    }
}
