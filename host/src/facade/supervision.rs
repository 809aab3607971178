//! The supervision threads' view of the host: how they spawn, signal, answer and
//! report, through the actor system and the code server.
//!
//! A child's `init` runs on a starter thread its supervisor's thread waits for with the
//! child's start deadline (each supervisor's thread has a starter of its own, made on its
//! first start). Past it the half-started actor is killed (its name freed at once,
//! invariant 5 of `actor`), the start fails, and the starter is abandoned: a fresh one
//! serves the next start, and the old one ends when the stuck `init` returns.
//!
//! `ctx.spawn_link` is not waited for, and its work is split over two threads: the
//! dispatcher registers the child (step 1 of a spawn, no plugin code: the actor made,
//! registered and linked, starting) and queues it for a linker thread, which runs each
//! `init` and answers the requester itself. So a burst of spawns costs no hand-off per
//! spawn, and the two halves run on two cores (one thread doing both was the whole cost of
//! 100,000 `spawn_link`s). The dispatcher looks at the linker's current start every few
//! milliseconds while any is queued; one past its deadline is failed the same way (the
//! requester answered with the error), and a fresh linker takes the queue over.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;
use plugin_api::Reason;

use crate::code::Code;
use crate::observe::{HostEvent, Observer};
use crate::supervisor::ChildHost;
use crate::system::scheduler::coarse_ms;
use crate::system::{Birth, SpawnError, System, Target, Upcall};
use crate::util::ids::ActorId;
use crate::util::terms;

/// The real [`ChildHost`].
pub(super) struct Children {
    pub(super) system: Arc<System>,
    pub(super) code: Arc<Code>,
    pub(super) observer: Arc<Observer>,
    /// The thread that runs `init` (started on first use, replaced when abandoned).
    pub(super) starter: Mutex<Option<Sender<StartJob>>>,
    /// The thread that runs `ctx.spawn_link` starts (started on first use, replaced
    /// when abandoned).
    pub(super) linker: Mutex<Option<Linker>>,
    /// Stack size of a starter thread (the scheduler's).
    pub(super) stack_size: usize,
}

/// One `ctx.spawn_link` start.
pub(super) struct LinkJob {
    /// The child, registered and starting.
    birth: Birth,
    args: Vec<u8>,
    requester: ActorId,
    tag: u64,
    timeout: Duration,
}

/// The start a linker thread is running.
struct LinkRun {
    /// [`RUNNING`], then [`ANSWERED`] by the linker or [`TIMED_OUT`] by the check: who
    /// moves it first answers the requester.
    state: AtomicU8,
    /// The actor's id (registered before the linker takes the start).
    id: ActorId,
    /// On the coarse clock (ms): a start deadline needs no finer, and reading the
    /// precise clock per start was a tenth of the linker's time.
    deadline_ms: u64,
    job_behaviour: Arc<str>,
    ms: u64,
    requester: ActorId,
    tag: u64,
}

const RUNNING: u8 = 0;
const ANSWERED: u8 = 1;
const TIMED_OUT: u8 = 2;

/// A linker's queue and its count of starts not answered yet.
type LinkQueue = (Sender<LinkJob>, Receiver<LinkJob>, Arc<AtomicUsize>);

/// The current linker thread and its queue (which outlives an abandoned thread).
pub(super) struct Linker {
    tx: Sender<LinkJob>,
    rx: Receiver<LinkJob>,
    /// Starts queued and not answered yet (kept across threads, as the queue).
    pending: Arc<AtomicUsize>,
    /// What the thread is running now.
    current: Arc<Mutex<Option<Arc<LinkRun>>>>,
    /// Set when the thread is abandoned: it stops once its stuck `init` returns.
    retired: Arc<AtomicBool>,
    /// Answers not delivered yet (see [`flush`]); an abandoning check delivers them.
    held: Held,
}

/// Answers a linker holds back while more starts are queued: up to [`HELD_MAX`], then
/// delivered together, so a parent whose `spawn_link` burst is being served is queued to
/// run once per run of answers, not woken for each (a wake-up per answer made 100,000
/// `spawn_link`s take 2.1 instead of 1.45 µs each about half the time).
type Held = Arc<Mutex<Vec<(ActorId, u64, plugin_api::StartChildReply)>>>;

/// The most answers a linker holds back.
const HELD_MAX: usize = 64;

/// Delivers every held answer, in order.
fn flush(system: &System, held: &Held) {
    let answers = std::mem::take(&mut *held.lock());
    for (to, tag, reply) in &answers {
        answer(system, *to, *tag, reply);
    }
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

/// A host for another supervisor's thread: the same system, code and observer, and a
/// starter of its own (a hanging `init` holds only the thread that waits for it).
impl Clone for Children {
    fn clone(&self) -> Self {
        Children {
            system: self.system.clone(),
            code: self.code.clone(),
            observer: self.observer.clone(),
            starter: Mutex::new(None),
            linker: Mutex::new(None),
            stack_size: self.stack_size,
        }
    }
}

impl Children {
    /// A linker thread serving `queue` (a fresh one if `None`).
    fn new_linker(&self, queue: Option<LinkQueue>) -> Option<Linker> {
        let (tx, rx, pending) = queue.unwrap_or_else(|| {
            let (tx, rx) = channel::unbounded();
            (tx, rx, Arc::default())
        });
        let left = pending.clone();
        let current: Arc<Mutex<Option<Arc<LinkRun>>>> = Arc::default();
        let retired = Arc::new(AtomicBool::new(false));
        let system = self.system.clone();
        let (jobs, cur, gone) = (rx.clone(), current.clone(), retired.clone());
        let held: Held = Arc::default();
        let kept = held.clone();
        std::thread::Builder::new()
            .name("linker".into())
            .stack_size(self.stack_size)
            .spawn(move || {
                // Retirement happens only inside a job: checked after each one.
                while !gone.load(Ordering::SeqCst) {
                    let job = match jobs.try_recv() {
                        Ok(job) => job,
                        Err(_) => {
                            // Nothing queued: every held answer goes out before waiting.
                            flush(&system, &kept);
                            let Ok(job) = jobs.recv() else { return };
                            job
                        }
                    };
                    let run = Arc::new(LinkRun {
                        state: AtomicU8::new(RUNNING),
                        id: job.birth.id(),
                        deadline_ms: coarse_ms() + job.timeout.as_millis() as u64,
                        job_behaviour: job.birth.behaviour(),
                        ms: job.timeout.as_millis() as u64,
                        requester: job.requester,
                        tag: job.tag,
                    });
                    *cur.lock() = Some(run.clone());
                    let r = system.run_init(job.birth, &job.args);
                    *cur.lock() = None;
                    let mine = run
                        .state
                        .compare_exchange(RUNNING, ANSWERED, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                    // Else the deadline passed: the actor was killed and the requester
                    // answered already.
                    if mine {
                        let reply = match r {
                            // Linked both ways from birth (see `System::register_new`).
                            Ok(pid) => plugin_api::StartChildReply::Ok(pid),
                            Err(e) => plugin_api::StartChildReply::Error(e.to_string()),
                        };
                        let full = {
                            let mut h = kept.lock();
                            h.push((job.requester, job.tag, reply));
                            h.len() >= HELD_MAX
                        };
                        if full {
                            flush(&system, &kept);
                        }
                        left.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                flush(&system, &kept);
            })
            .ok()?;
        Some(Linker {
            tx,
            rx,
            pending,
            current,
            retired,
            held,
        })
    }

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
                self.system.kill_late_init(id, start_timeout);
                Err(SpawnError::InitTimeout {
                    behaviour: behaviour.to_string(),
                    ms,
                })
            }
        }
    }

    fn spawn_link(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: Vec<u8>,
        requester: ActorId,
        tag: u64,
        start_timeout: Duration,
    ) {
        // Step 1 of the spawn, here on the dispatcher (no plugin code); a name taken is
        // answered at once.
        let birth = match self
            .code
            .register_new(behaviour, name, Some(requester), |_| {})
        {
            Ok(birth) => birth,
            Err(e) => {
                let reply = plugin_api::StartChildReply::Error(e.to_string());
                return answer(&self.system, requester, tag, &reply);
            }
        };
        let job = LinkJob {
            birth,
            args,
            requester,
            tag,
            timeout: start_timeout,
        };
        let mut slot = self.linker.lock();
        if slot.is_none() {
            *slot = self.new_linker(None);
        }
        match slot.as_ref() {
            Some(l) => {
                l.pending.fetch_add(1, Ordering::SeqCst);
                let _ = l.tx.send(job);
            }
            None => {
                // No thread to be had: start here, without a deadline.
                let reply = match self.system.run_init(job.birth, &job.args) {
                    Ok(pid) => plugin_api::StartChildReply::Ok(pid),
                    Err(e) => plugin_api::StartChildReply::Error(e.to_string()),
                };
                answer(&self.system, requester, tag, &reply);
            }
        }
    }

    fn check_links(&self) -> bool {
        let mut slot = self.linker.lock();
        let Some(l) = slot.as_ref() else {
            return false;
        };
        let run = l.current.lock().clone();
        if let Some(run) = run {
            let late = coarse_ms() >= run.deadline_ms
                && run
                    .state
                    .compare_exchange(RUNNING, TIMED_OUT, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            if late {
                // Abandon the thread (it ends when its `init` returns); kill the actor
                // whose `init` hangs, answer its requester, and let a fresh thread take
                // the queue over.
                l.retired.store(true, Ordering::SeqCst);
                // What it held for earlier starts must not wait for the stuck `init`.
                flush(&self.system, &l.held);
                let id = run.id;
                let ms = run.ms;
                // As OTP's `proc_lib` on a start timeout: unlink, then kill, so the
                // requester hears the error instead of dying with the child.
                let _ = self.system.unlink(run.requester, Target::Id(id));
                self.system
                    .kill_late_init(id, std::time::Duration::from_millis(ms));
                let e = SpawnError::InitTimeout {
                    behaviour: run.job_behaviour.to_string(),
                    ms,
                };
                let reply = plugin_api::StartChildReply::Error(e.to_string());
                answer(&self.system, run.requester, run.tag, &reply);
                l.pending.fetch_sub(1, Ordering::SeqCst);
                let queue = (l.tx.clone(), l.rx.clone(), l.pending.clone());
                *slot = self.new_linker(Some(queue.clone()));
                if slot.is_none() {
                    // No thread to be had: the queued starts fail, answered.
                    while let Ok(job) = queue.1.try_recv() {
                        // Registered already: killed before its `init`, which never runs.
                        let e = "no thread to run the start on".to_string();
                        if let Some(actor) = self.system.registry.get(job.birth.id()) {
                            let why = terms::reason(&Reason::error(e.clone()));
                            self.system.kill_running(&actor, &why);
                        }
                        let _ = self.system.run_init(job.birth, &[]);
                        let reply = plugin_api::StartChildReply::Error(e);
                        answer(&self.system, job.requester, job.tag, &reply);
                    }
                    return false;
                }
            }
        }
        // Between taking a start off the queue and noting it as current, a linker holds
        // one that is neither: the count covers it.
        slot.as_ref()
            .is_some_and(|l| l.pending.load(Ordering::SeqCst) > 0)
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

/// Delivers `{reply, Tag, StartChildReply}` to a `ctx.spawn_link` requester.
fn answer(system: &System, to: ActorId, tag: u64, reply: &plugin_api::StartChildReply) {
    let bytes = plugin_api::etf::to_vec(reply).expect("a StartChildReply always encodes");
    system.deliver_reply(to, tag, &bytes);
}
