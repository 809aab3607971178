//! The supervision threads: OTP's `supervisor` processes. Every supervisor, a root or one
//! nested in another, runs on a thread of its own that owns its state: it starts its
//! children in order, carries out `strategy`'s decision when one exits, gives up past the
//! restart intensity, and stops its children in reverse. A child whose `init` hangs holds
//! its own supervisor's thread until its start deadline, and no other: as in OTP, where
//! each supervisor is a process, a sibling subtree or an unrelated tree keeps restarting
//! its children meanwhile.
//!
//! Supervisors are not actors and not plugins. Each is registered with the channel of its
//! own thread; children are linked to its id from birth, and a child's death reaches that
//! thread as an [`Upcall::ChildExit`] sent by the actor system. Restarting there — never
//! on the dying child's scheduler thread — keeps spawns (which take the behaviour table
//! lock) out of any actor's core lock, so a restart cannot deadlock with a hot swap.
//!
//! A supervisor child is its own thread, and its parent talks to it as OTP's parent does
//! to a child supervisor process:
//! - starting it, the parent starts the thread and waits for its start result (OTP's
//!   `start_link` is synchronous: the nested supervisor starts its children meanwhile);
//! - a nested supervisor that gives up stops its children in reverse, ends its thread and
//!   sends its exit (`shutdown`) to its parent's channel as an [`Upcall::ChildExit`], so
//!   the parent's strategy decides, as for a worker;
//! - stopping it, the parent sends it [`SupCommand::Stop`] and waits (shutdown `infinity`)
//!   for its children to stop, nested supervisors depth-first;
//! - `host ctl tree` asks each root, which asks its nested supervisors at once, all with
//!   one deadline; a supervisor whose thread does not answer in time (it waits on a
//!   child's `init` or stop) shows as itself with status `busy`.
//!
//! A dispatcher thread serves what is not one supervisor's, and never waits on an `init`:
//! it starts root trees (each on its new thread), routes `ctx.start_child` to the named
//! supervisor's thread (through [`Shared::route`]), queues `ctx.spawn_link` starts for the
//! host's linker thread and looks at their deadlines, and stops the trees, last started
//! first, when the host goes down.
//!
//! Everything a supervisor's thread does to the world goes through [`ChildHost`], so the
//! tests below drive it with a fake host and no plugin at all.
//!
//! Implemented: `one_for_one`, `one_for_all`, `rest_for_one`; restart `permanent`,
//! `transient`, `temporary`; intensity / period; nested supervisors (a supervisor that
//! gives up exits with `shutdown` and its parent decides); shutdown `brutal_kill` or a
//! timeout, then `kill`; `simple_one_for_one` with children added by `ctx.start_child`;
//! a start deadline per child: an `init` past it fails the start, so a hanging `init`
//! holds its supervisor's thread for at most that long, never for ever.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use plugin_api::{etf, Reason};

use super::strategy::{self, Decision};
use super::{ChildSpec, Shutdown, StartError, Strategy, SupervisorSpec, WorkerSpec};
use crate::observe::events::{Event, HostEvent, SupervisorEvent};
use crate::observe::model::TreeNode;
use crate::system::{SpawnError, Upcall};
use crate::util::ids::ActorId;

/// What a supervisor's thread needs from the rest of the host. Each thread has a clone of
/// its own (`Supervision::start` asks for `Clone`): a clone shares the host, not what
/// waits on a start.
pub(crate) trait ChildHost {
    /// A fresh id for a supervisor, marked so its children's exits go to `upcalls` (the
    /// channel of the thread that runs it).
    fn new_supervisor(&self, upcalls: &Sender<Upcall>) -> ActorId;
    /// The supervisor `id` is gone.
    fn forget_supervisor(&self, id: ActorId);
    /// Starts an actor of `behaviour`, linked from birth to `link`; an `init` still
    /// running after `start_timeout` fails the start (and its actor is killed).
    fn spawn(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
        link: ActorId,
        start_timeout: Duration,
    ) -> Result<ActorId, SpawnError>;
    /// `ctx.spawn_link`: queues the start of an actor linked both ways to `requester`,
    /// who is answered `{reply, Tag, StartChildReply}` when it is done; returns at once.
    /// An `init` past `start_timeout` fails (see [`ChildHost::check_links`]).
    fn spawn_link(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: Vec<u8>,
        requester: ActorId,
        tag: u64,
        start_timeout: Duration,
    );
    /// Fails the `spawn_link` start whose `init` ran past its deadline, if there is one;
    /// true while starts are queued or running (then call it again soon).
    fn check_links(&self) -> bool;
    /// Sends an exit signal; false if `to` is not alive.
    fn exit(&self, from: ActorId, to: ActorId, reason: &Reason) -> bool;
    /// Delivers `{reply, Tag, Payload}` to an actor.
    fn reply(&self, to: ActorId, tag: u64, payload: &[u8]);
    /// Reports a supervisor event.
    fn report(&self, ev: HostEvent);
}

/// What the host asks of the dispatcher.
enum SupervisorCommand {
    /// Start a root supervisor tree on a thread of its own.
    Start {
        spec: SupervisorSpec,
        reply: Sender<Result<ActorId, StartError>>,
    },
    /// Stop every tree, last started first, and the thread (the host is going down).
    Stop,
}

/// What one supervisor's thread is asked besides its upcalls, by whoever started it (the
/// dispatcher for a root, the parent's thread for a nested one).
enum SupCommand {
    /// Describe this supervisor and its subtree (`host ctl tree`), answering by `by`.
    Snapshot {
        by: Instant,
        reply: Sender<TreeNode>,
    },
    /// Stop the children (in reverse order), then the thread.
    Stop,
}

/// How much sooner than its own deadline a supervisor needs its nested supervisors'
/// snapshots, to describe itself and answer in time.
const SNAPSHOT_MARGIN: Duration = Duration::from_millis(50);

/// What every supervisor's thread shares with the others and with the handle.
#[derive(Default)]
struct Shared {
    /// Live supervisors in start order, each with its thread's channel: where
    /// `ctx.start_child` finds one by name (the first of that name, if two share one).
    named: Mutex<Vec<(String, ActorId, Sender<Upcall>)>>,
    /// Set when a root supervisor gave up (the binary then exits non-zero).
    root_failed: Mutex<Option<String>>,
}

impl Shared {
    fn name(&self, name: &str, id: ActorId, upcalls: &Sender<Upcall>) {
        self.named
            .lock()
            .push((name.to_string(), id, upcalls.clone()));
    }

    fn unname(&self, id: ActorId) {
        self.named.lock().retain(|(_, i, _)| *i != id);
    }

    /// Sends `up` to the thread of the supervisor named `name`; gives it back if there is
    /// none. The send happens under the `named` lock, and [`Sup::end`] unnames its
    /// supervisor under that lock before draining its channel: so a start routed here
    /// lands before that drain (which answers it) or finds no supervisor, and is never
    /// left in a channel nobody reads.
    fn route(&self, name: &str, up: Upcall) -> Result<(), Upcall> {
        let named = self.named.lock();
        match named.iter().find(|(n, _, _)| n == name) {
            Some((_, _, to)) => to.send(up).map_err(|e| e.into_inner()),
            None => Err(up),
        }
    }
}

/// A supervisor's thread, as whoever started it sees it.
struct SupHandle {
    id: ActorId,
    name: String,
    strategy: Strategy,
    commands: Sender<SupCommand>,
    thread: JoinHandle<()>,
}

impl SupHandle {
    /// Starts the supervisor `spec` on a thread of its own, which answers `reply` once its
    /// children started (or one failed) and then serves them. `parent` is where its exit
    /// goes when it gives up: the parent's thread's channel (`None` for a root).
    /// `None` if there is no thread; `reply` then heard the error, or is dropped unanswered
    /// (its caller hears `Stopped`).
    fn launch<H: ChildHost + Clone + Send + 'static>(
        host: H,
        spec: SupervisorSpec,
        parent: Option<Sender<Upcall>>,
        shared: Arc<Shared>,
        reply: Sender<Result<ActorId, StartError>>,
    ) -> Option<SupHandle> {
        if spec.strategy == Strategy::SimpleOneForOne
            && !(spec.children.len() == 1 && matches!(spec.children[0], ChildSpec::Worker(_)))
        {
            let _ = reply.send(Err(StartError::NoTemplate(spec.name)));
            return None;
        }
        let (name, strategy) = (spec.name.clone(), spec.strategy);
        let (commands, commands_rx) = channel::unbounded();
        let undo = host.clone();
        let mut sup = Sup::new(host, spec, parent, commands_rx, shared.clone());
        let id = sup.id;
        let spawned = std::thread::Builder::new()
            .name(format!("sup {name}"))
            .spawn(move || match sup.start() {
                Ok(()) => {
                    let _ = reply.send(Ok(id));
                    sup.run();
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            });
        match spawned {
            Ok(thread) => Some(SupHandle {
                id,
                name,
                strategy,
                commands,
                thread,
            }),
            Err(_) => {
                undo.forget_supervisor(id);
                None
            }
        }
    }

    /// Asks for a snapshot to be answered by `by`; `None` if the thread is gone.
    fn ask(&self, by: Instant) -> Option<Receiver<TreeNode>> {
        let (reply, rx) = channel::bounded(1);
        self.commands
            .send(SupCommand::Snapshot { by, reply })
            .ok()
            .map(|()| rx)
    }

    /// What `host ctl tree` shows for a supervisor whose thread did not answer in time
    /// (it is waiting on a child's `init` or stop): itself, its children unknown.
    fn busy(&self, restarts: u64) -> TreeNode {
        TreeNode {
            name: self.name.clone(),
            kind: "supervisor".into(),
            detail: strategy_name(self.strategy).into(),
            actor: self.id,
            status: "busy".into(),
            restarts,
            children: Vec::new(),
        }
    }

    /// Stops the supervisor (its children in reverse order, nested supervisors
    /// depth-first) and waits for its thread to end, however long that takes (a
    /// supervisor's shutdown is `infinity`). A thread that ended already (it gave up) is
    /// just joined.
    fn stop(self) {
        let _ = self.commands.send(SupCommand::Stop);
        let _ = self.thread.join();
    }
}

/// The stable name of a strategy, as written in the config.
fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
        Strategy::SimpleOneForOne => "simple_one_for_one",
    }
}

/// Handle to the supervision threads; dropping it stops every tree (last started first,
/// children in reverse order, so `terminate` runs) and joins the threads.
pub(crate) struct Supervision {
    tx: Sender<SupervisorCommand>,
    /// The root supervisors' threads, in start order (the dispatcher adds and stops them).
    roots: Arc<Mutex<Vec<SupHandle>>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Supervision {
    /// Starts the dispatcher: it serves the `upcalls` from the actor system that are not
    /// one supervisor's (`ctx.start_child`, `ctx.spawn_link`) and the commands sent
    /// through this handle, acting on the world through `host` (each supervisor's thread
    /// through a clone of its own).
    pub(crate) fn start<H: ChildHost + Clone + Send + 'static>(
        host: H,
        upcalls: Receiver<Upcall>,
    ) -> Supervision {
        let (tx, commands) = channel::unbounded();
        let roots = Arc::default();
        let shared = Arc::new(Shared::default());
        let dispatcher = Dispatcher {
            host,
            upcalls,
            commands,
            roots: Arc::clone(&roots),
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("supervision".into())
            .spawn(move || dispatcher.run())
            .expect("spawn the supervision thread");
        Supervision {
            tx,
            roots,
            shared,
            thread: Some(thread),
        }
    }

    /// Every supervision tree as it is now, in start order. Waits at most `timeout` for
    /// the supervisors' threads; one whose thread is busy (waiting on a child's `init` or
    /// stop) shows as itself with status `busy`, a root as a nested one.
    pub(crate) fn snapshot(&self, timeout: Duration) -> Result<Vec<TreeNode>, StartError> {
        let deadline = Instant::now() + timeout;
        let asked: Vec<(Receiver<TreeNode>, TreeNode)> = self
            .roots
            .lock()
            .iter()
            .filter_map(|r| r.ask(deadline).map(|rx| (rx, r.busy(0))))
            .collect();
        let mut out = Vec::new();
        for (rx, busy) in asked {
            match rx.recv_deadline(deadline) {
                Ok(node) => out.push(node),
                Err(RecvTimeoutError::Timeout) => out.push(busy),
                // The tree ended meanwhile (its root gave up).
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
        Ok(out)
    }

    /// Starts a root supervisor and its children; an error names the child that failed.
    pub(crate) fn start_tree(&self, spec: SupervisorSpec) -> Result<ActorId, StartError> {
        let (reply, rx) = channel::bounded(1);
        self.tx
            .send(SupervisorCommand::Start { spec, reply })
            .map_err(|_| StartError::Stopped)?;
        rx.recv().map_err(|_| StartError::Stopped)?
    }

    /// The name of a root supervisor that gave up, if one did.
    pub(crate) fn root_failure(&self) -> Option<String> {
        self.shared.root_failed.lock().clone()
    }
}

impl Drop for Supervision {
    fn drop(&mut self) {
        let _ = self.tx.send(SupervisorCommand::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread that starts trees and serves the upcalls that are not one supervisor's.
struct Dispatcher<H> {
    host: H,
    upcalls: Receiver<Upcall>,
    commands: Receiver<SupervisorCommand>,
    roots: Arc<Mutex<Vec<SupHandle>>>,
    shared: Arc<Shared>,
}

impl<H: ChildHost + Clone + Send + 'static> Dispatcher<H> {
    fn run(self) {
        // While `spawn_link` starts are queued or running, their deadlines are looked at
        // this often.
        const TICK: Duration = Duration::from_millis(10);
        let mut check_at: Option<Instant> = None;
        loop {
            let tick = check_at.map_or_else(channel::never, channel::at);
            channel::select! {
                recv(self.commands) -> c => match c {
                    Ok(SupervisorCommand::Start { spec, reply }) => self.start_tree(spec, reply),
                    Ok(SupervisorCommand::Stop) | Err(_) => return self.stop_all(),
                },
                recv(self.upcalls) -> up => match up {
                    Ok(up) => {
                        // A burst (100,000 `spawn_link`s from one callback) is served
                        // in runs, not one `select` (and tick channel) per upcall; a
                        // bounded run, so commands and the tick wait little.
                        let mut queued = self.upcall(up);
                        for up in self.upcalls.try_iter().take(256) {
                            queued |= self.upcall(up);
                        }
                        if queued && check_at.is_none() {
                            check_at = Some(Instant::now() + TICK);
                        }
                    }
                    Err(_) => return self.stop_all(),
                },
                recv(tick) -> _ => {
                    check_at = self.host.check_links().then(|| Instant::now() + TICK);
                }
            }
        }
    }

    /// Starts a root on a thread of its own, which answers `reply` once its children
    /// started (or one failed) and then serves them; this thread does not wait for it.
    fn start_tree(&self, spec: SupervisorSpec, reply: Sender<Result<ActorId, StartError>>) {
        let mut roots = self.roots.lock();
        // Trees whose root gave up (or did not start) are gone.
        roots.retain(|r| !r.thread.is_finished());
        let root = SupHandle::launch(self.host.clone(), spec, None, self.shared.clone(), reply);
        roots.extend(root);
    }

    /// Serves one upcall; true if it queued a `spawn_link` start.
    fn upcall(&self, up: Upcall) -> bool {
        match up {
            Upcall::StartChild { ref sup, .. } => {
                let name = sup.clone();
                if let Err(Upcall::StartChild { requester, tag, .. }) = self.shared.route(&name, up)
                {
                    let e = StartError::NoSupervisor(name);
                    let reply = plugin_api::StartChildReply::Error(e.to_string());
                    answer(&self.host, requester, tag, &reply);
                }
            }
            Upcall::SpawnLink {
                behaviour,
                name,
                args,
                requester,
                tag,
            } => {
                self.host.spawn_link(
                    &behaviour,
                    name.as_deref(),
                    args,
                    requester,
                    tag,
                    super::DEFAULT_START_TIMEOUT,
                );
                return true;
            }
            // Every supervisor is registered with its own thread's channel.
            Upcall::ChildExit { .. } => {}
        }
        false
    }

    /// The host is stopping: every tree stops, last started first, each child in reverse
    /// order within its shutdown time (so `terminate` runs, as in OTP).
    fn stop_all(&self) {
        let roots = std::mem::take(&mut *self.roots.lock());
        for r in roots.into_iter().rev() {
            r.stop();
        }
    }
}

/// Answers a `ctx.start_child`.
fn answer(
    host: &impl ChildHost,
    requester: ActorId,
    tag: u64,
    reply: &plugin_api::StartChildReply,
) {
    let bytes = etf::to_vec(reply).expect("a StartChildReply always encodes");
    host.reply(requester, tag, &bytes);
}

/// One child, as its supervisor's thread keeps it.
struct Child {
    spec: ChildSpec,
    /// The running actor's id, or the nested supervisor's id.
    pid: Option<ActorId>,
    /// The id it had before it last stopped (reported with its restart).
    last_pid: Option<ActorId>,
    /// Times the strategy restarted this child.
    restarts: u64,
    /// A nested supervisor's thread: set exactly while a supervisor child has a `pid`
    /// (taken, and the thread joined or stopped, whenever `pid` is).
    thread: Option<SupHandle>,
}

impl Child {
    fn new(spec: ChildSpec) -> Child {
        Child {
            spec,
            pid: None,
            last_pid: None,
            restarts: 0,
            thread: None,
        }
    }

    /// What `host ctl tree` shows for this child without asking its thread (a worker, a
    /// supervisor child that is not running).
    fn node(&self, status: &str) -> TreeNode {
        TreeNode {
            name: self.spec.name(),
            kind: match &self.spec {
                ChildSpec::Worker(_) => "worker".into(),
                ChildSpec::Supervisor(_) => "supervisor".into(),
            },
            detail: match &self.spec {
                ChildSpec::Worker(w) => w.behaviour.clone(),
                ChildSpec::Supervisor(n) => strategy_name(n.strategy).into(),
            },
            actor: self.pid.unwrap_or(ActorId(0)),
            status: status.into(),
            restarts: self.restarts,
            children: Vec::new(),
        }
    }
}

/// One supervisor's state, owned by its thread.
struct Sup<H> {
    host: H,
    id: ActorId,
    spec: SupervisorSpec,
    /// Where this supervisor's exit goes when it gives up: its parent's thread's channel
    /// (`None` for a root, whose giving up is reported to the host).
    parent: Option<Sender<Upcall>>,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
    /// Its children's exits and the `ctx.start_child` starts routed to it.
    upcalls: Receiver<Upcall>,
    /// The sending end of `upcalls`, which this supervisor is registered with.
    own: Sender<Upcall>,
    commands: Receiver<SupCommand>,
    /// Upcalls that arrived while waiting for a specific child to stop.
    backlog: VecDeque<Upcall>,
    shared: Arc<Shared>,
    /// Set once it gave up, stopped or failed to start: nothing reaches it any more, and
    /// its thread ends.
    ended: bool,
}

/// One thing for the thread to do next.
enum Work {
    Up(Upcall),
    Command(SupCommand),
}

impl<H: ChildHost + Clone + Send + 'static> Sup<H> {
    /// A supervisor registered with the host under a fresh id (its children's exits go to
    /// its own channel), none of its children started yet.
    fn new(
        host: H,
        spec: SupervisorSpec,
        parent: Option<Sender<Upcall>>,
        commands: Receiver<SupCommand>,
        shared: Arc<Shared>,
    ) -> Self {
        let (own, upcalls) = channel::unbounded();
        let id = host.new_supervisor(&own);
        // A simple_one_for_one starts empty: its one child spec is a template.
        let children = if spec.strategy == Strategy::SimpleOneForOne {
            Vec::new()
        } else {
            spec.children.iter().cloned().map(Child::new).collect()
        };
        Sup {
            host,
            id,
            spec,
            parent,
            children,
            restarts: VecDeque::new(),
            upcalls,
            own,
            commands,
            backlog: VecDeque::new(),
            shared,
            ended: false,
        }
    }

    /// Makes the supervisor findable by name and starts its children in order. On a
    /// child's failure the ones already started are stopped (in reverse), the supervisor
    /// ends, and the error names the child.
    fn start(&mut self) -> Result<(), StartError> {
        self.shared.name(&self.spec.name, self.id, &self.own);
        let n = self.children.len();
        for i in 0..n {
            if let Err(e) = self.start_child(i) {
                self.stop_children(0..n);
                self.end();
                return Err(e);
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Option<Work> {
        if let Some(up) = self.backlog.pop_front() {
            return Some(Work::Up(up));
        }
        channel::select! {
            recv(self.upcalls) -> up => up.ok().map(Work::Up),
            recv(self.commands) -> c => c.ok().map(Work::Command),
        }
    }

    /// Serves the supervisor until it is stopped or gives up. Whoever started it going
    /// away without a word (its handle dropped) stops it too, as a supervisor dies with
    /// its parent.
    fn run(mut self) {
        while !self.ended {
            match self.next() {
                Some(work) => self.serve(work),
                None => self.stop(),
            }
        }
    }

    fn serve(&mut self, work: Work) {
        match work {
            Work::Command(SupCommand::Snapshot { by, reply }) => {
                let _ = reply.send(self.describe(by, "running", 0));
            }
            Work::Command(SupCommand::Stop) => self.stop(),
            Work::Up(Upcall::ChildExit {
                child,
                reason,
                text,
            }) => self.child_exited(child, &reason, &text),
            Work::Up(Upcall::StartChild {
                args,
                requester,
                tag,
                ..
            }) => {
                let reply = match self.start_dynamic(args) {
                    Ok(pid) => plugin_api::StartChildReply::Ok(pid),
                    Err(e) => plugin_api::StartChildReply::Error(e.to_string()),
                };
                answer(&self.host, requester, tag, &reply);
            }
            // Only the dispatcher's channel carries these (see `System::spawn_link_async`).
            Work::Up(Upcall::SpawnLink { .. }) => {}
        }
    }

    fn event(&self, kind: SupervisorEvent, child: &str, actor: ActorId, reason: &str) {
        self.host.report(HostEvent::Supervisor {
            supervisor: self.spec.name.clone(),
            kind,
            child: child.to_string(),
            actor,
            reason: reason.to_string(),
        });
    }

    /// Stops every child, last first (so `terminate` runs, as in OTP), and ends.
    fn stop(&mut self) {
        self.stop_children(0..self.children.len());
        self.end();
    }

    /// The supervisor is gone: its children's exits no longer reach it, `ctx.start_child`
    /// no longer finds it, and a start routed to it before that is answered (see
    /// [`Shared::route`]).
    fn end(&mut self) {
        self.ended = true;
        self.host.forget_supervisor(self.id);
        self.shared.unname(self.id);
        let queued: Vec<Upcall> = self
            .backlog
            .drain(..)
            .chain(self.upcalls.try_iter())
            .collect();
        for up in queued {
            if let Upcall::StartChild { requester, tag, .. } = up {
                let e = StartError::NoSupervisor(self.spec.name.clone());
                let reply = plugin_api::StartChildReply::Error(e.to_string());
                answer(&self.host, requester, tag, &reply);
            }
        }
    }

    /// Adds a child to a `simple_one_for_one` supervisor: its template with these args.
    fn start_dynamic(&mut self, args: Vec<u8>) -> Result<ActorId, StartError> {
        let template = match (self.spec.strategy, self.spec.children.first()) {
            (Strategy::SimpleOneForOne, Some(ChildSpec::Worker(t))) => t,
            _ => return Err(StartError::NotSimple(self.spec.name.clone())),
        };
        let spec = ChildSpec::Worker(WorkerSpec {
            args,
            ..template.clone()
        });
        self.children.push(Child::new(spec));
        let i = self.children.len() - 1;
        self.start_child(i).inspect_err(|_| {
            self.children.pop();
        })
    }

    fn start_child(&mut self, i: usize) -> Result<ActorId, StartError> {
        let spec = self.children[i].spec.clone();
        let (pid, thread) = match &spec {
            ChildSpec::Worker(w) => {
                let pid = self
                    .host
                    .spawn(
                        &w.behaviour,
                        w.name.as_deref(),
                        &w.args,
                        self.id,
                        w.start_timeout,
                    )
                    .map_err(|source| StartError::Child {
                        supervisor: self.spec.name.clone(),
                        child: spec.name(),
                        source,
                    })?;
                (pid, None)
            }
            ChildSpec::Supervisor(s) => {
                let (pid, thread) = self.start_nested(s.clone())?;
                (pid, Some(thread))
            }
        };
        let c = &mut self.children[i];
        c.pid = Some(pid);
        c.thread = thread;
        self.event(SupervisorEvent::ChildStarted, &spec.name(), pid, "");
        Ok(pid)
    }

    /// OTP's `start_link` of a supervisor child: starts it on a thread of its own and
    /// waits while it starts its children there.
    fn start_nested(&self, spec: SupervisorSpec) -> Result<(ActorId, SupHandle), StartError> {
        let (reply, started) = channel::bounded(1);
        let parent = Some(self.own.clone());
        let thread = SupHandle::launch(self.host.clone(), spec, parent, self.shared.clone(), reply);
        match (started.recv(), thread) {
            (Ok(Ok(pid)), Some(t)) => Ok((pid, t)),
            (r, t) => {
                // Its thread ended, having undone its start (or it never ran).
                if let Some(t) = t {
                    let _ = t.thread.join();
                }
                Err(match r {
                    Ok(Err(e)) => e,
                    _ => StartError::Stopped,
                })
            }
        }
    }

    /// Stops the children in `range`, last first, each within its shutdown time.
    fn stop_children(&mut self, range: std::ops::Range<usize>) {
        for i in range.rev() {
            let Some(child) = self.children.get_mut(i) else {
                continue;
            };
            let Some(pid) = child.pid else { continue };
            let (spec, name, thread) = (child.spec.clone(), child.spec.name(), child.thread.take());
            let reason = match thread {
                Some(t) => {
                    t.stop();
                    "shutdown".to_string()
                }
                None => self.stop_worker(pid, spec.shutdown()),
            };
            let c = &mut self.children[i];
            c.last_pid = c.pid.take();
            self.event(SupervisorEvent::ChildTerminated, &name, pid, &reason);
        }
    }

    /// Asks a worker to stop (or kills it) and waits for its exit; returns the reason.
    fn stop_worker(&mut self, pid: ActorId, shutdown: Shutdown) -> String {
        let first = match shutdown {
            Shutdown::BrutalKill => Reason::Kill,
            _ => Reason::Shutdown,
        };
        if !self.host.exit(self.id, pid, &first) {
            return "noproc".into();
        }
        let wait = match shutdown {
            Shutdown::Timeout(d) => Some(d),
            Shutdown::BrutalKill => Some(Duration::from_secs(5)),
            Shutdown::Infinity => None,
        };
        if let Some(r) = self.wait_exit(pid, wait) {
            return r;
        }
        // It ignored the shutdown (trapping exits, busy): kill it. A kill makes even an
        // actor inside a callback dead at once, so its exit (`killed`) arrives; the
        // reason reported is always the one that arrived.
        self.host.exit(self.id, pid, &Reason::Kill);
        self.wait_exit(pid, Some(Duration::from_secs(5)))
            .unwrap_or_else(|| "kill not confirmed within 5 s".into())
    }

    /// Waits for `pid`'s exit event, keeping every other event for later.
    fn wait_exit(&mut self, pid: ActorId, timeout: Option<Duration>) -> Option<String> {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|e| matches!(e, Upcall::ChildExit { child, .. } if *child == pid))
        {
            if let Some(Upcall::ChildExit { text, .. }) = self.backlog.remove(pos) {
                return Some(text);
            }
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ev = match deadline {
                Some(d) => match self.upcalls.recv_deadline(d) {
                    Ok(ev) => ev,
                    Err(RecvTimeoutError::Timeout) => return None,
                    Err(RecvTimeoutError::Disconnected) => return None,
                },
                None => self.upcalls.recv().ok()?,
            };
            match ev {
                Upcall::ChildExit { child, text, .. } if child == pid => return Some(text),
                other => self.backlog.push_back(other),
            }
        }
    }

    fn child_exited(&mut self, pid: ActorId, reason: &[u8], text: &str) {
        let Some(i) = self.children.iter().position(|c| c.pid == Some(pid)) else {
            return; // already replaced or stopped by us
        };
        let c = &mut self.children[i];
        c.last_pid = c.pid.take();
        // A nested supervisor sends its exit as the last thing its thread does.
        if let Some(t) = c.thread.take() {
            let _ = t.thread.join();
        }
        let name = c.spec.name();
        self.event(SupervisorEvent::ChildExited, &name, pid, text);
        self.decide(i, Reason::from_etf(reason).is_abnormal());
    }

    /// Applies the restart type, intensity and strategy after child `i` exited.
    fn decide(&mut self, i: usize, abnormal: bool) {
        let decision = strategy::after_exit(
            self.spec.strategy,
            self.children[i].spec.restart(),
            abnormal,
            i,
            self.children.len(),
            &mut self.restarts,
            self.spec.intensity,
            self.spec.period,
            Instant::now(),
        );
        let range = match decision {
            Decision::LeaveStopped => return,
            Decision::Forget => {
                self.children.remove(i);
                return;
            }
            Decision::GiveUp => return self.give_up(),
            Decision::Restart(range) => range,
        };
        // Stop the others in the range (reverse), then start the range in order.
        let others: Vec<usize> = range.clone().filter(|&j| j != i).collect();
        for j in others.into_iter().rev() {
            self.stop_children(j..j + 1);
        }
        for j in range {
            let c = &mut self.children[j];
            c.restarts += 1;
            let (name, last) = (c.spec.name(), c.last_pid.unwrap_or(ActorId(0)));
            self.event(SupervisorEvent::Restarting, &name, last, "");
            if let Err(e) = self.start_child(j) {
                Event::SupervisorRestartFailed {
                    error: &e.to_string(),
                }
                .log();
                return self.give_up();
            }
        }
    }

    /// This supervisor and its subtree, as `host ctl tree` shows it, answered by `by`:
    /// its nested supervisors are asked at once and waited for until a little before,
    /// and one that did not answer by then shows as `busy`.
    fn describe(&self, by: Instant, status: &str, restarts: u64) -> TreeNode {
        let theirs = by.checked_sub(SNAPSHOT_MARGIN).unwrap_or(by);
        let asked: Vec<Option<Receiver<TreeNode>>> = self
            .children
            .iter()
            .map(|c| c.thread.as_ref().and_then(|t| t.ask(theirs)))
            .collect();
        let children = self
            .children
            .iter()
            .zip(asked)
            .map(|(c, asked)| {
                let status = if c.pid.is_some() {
                    "running"
                } else {
                    "stopped"
                };
                match (&c.thread, asked.map(|rx| rx.recv_deadline(theirs))) {
                    (_, Some(Ok(node))) => TreeNode {
                        status: status.into(),
                        restarts: c.restarts,
                        ..node
                    },
                    (Some(t), Some(Err(RecvTimeoutError::Timeout))) => t.busy(c.restarts),
                    // A worker, or a supervisor that is not running or just gave up (its
                    // exit on the way here).
                    _ => c.node(status),
                }
            })
            .collect();
        TreeNode {
            name: self.spec.name.clone(),
            kind: "supervisor".into(),
            detail: strategy_name(self.spec.strategy).into(),
            actor: self.id,
            status: status.into(),
            restarts,
            children,
        }
    }

    /// Past the intensity: stop every child (reverse order) and exit with `shutdown`; the
    /// parent decides what happens next, and a root giving up is reported to the host.
    fn give_up(&mut self) {
        let name = self.spec.name.clone();
        self.event(SupervisorEvent::GaveUp, &name, self.id, "shutdown");
        self.stop();
        match &self.parent {
            Some(to) => {
                // Dropped if the parent is gone too (it is stopping this one, or the host
                // is going down).
                let _ = to.send(Upcall::ChildExit {
                    child: self.id,
                    reason: crate::util::terms::reason(&Reason::Shutdown),
                    text: "shutdown".into(),
                });
            }
            None => *self.shared.root_failed.lock() = Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    //! One supervisor's plumbing, driven directly on the test's thread with a fake host:
    //! no actors, no plugins. A "child" is an id; stopping it answers at once with its
    //! exit, as a real child's death reaches its supervisor's thread. A nested supervisor
    //! runs on a thread of its own, as in the host; every wait on one is bounded.

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::supervisor::Restart;

    /// Longest a test waits for a nested supervisor's thread.
    const WAIT: Duration = Duration::from_secs(5);

    /// What the fake saw, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Did {
        Spawn(String),
        Exit(ActorId, &'static str),
        Event(SupervisorEvent, String),
        Reply(u64),
    }

    /// The fake host, shared by the supervisors' threads.
    #[derive(Clone)]
    struct Fake(Arc<FakeState>);

    struct FakeState {
        next: AtomicU64,
        log: Mutex<Vec<Did>>,
        /// Each live supervisor's channel, as the actor system keeps them.
        sups: Mutex<HashMap<ActorId, Sender<Upcall>>>,
        /// Each child's supervisor (what it is linked to) and the latest id of each name.
        links: Mutex<HashMap<ActorId, ActorId>>,
        pids: Mutex<HashMap<String, ActorId>>,
        /// Behaviours whose spawn fails.
        broken: Vec<&'static str>,
    }

    impl Fake {
        fn new(broken: Vec<&'static str>) -> Fake {
            Fake(Arc::new(FakeState {
                next: AtomicU64::new(100),
                log: Mutex::new(Vec::new()),
                sups: Mutex::default(),
                links: Mutex::default(),
                pids: Mutex::default(),
                broken,
            }))
        }

        fn did(&self, d: Did) {
            self.0.log.lock().push(d);
        }

        fn log(&self) -> Vec<Did> {
            self.0.log.lock().clone()
        }

        fn pid(&self, name: &str) -> ActorId {
            self.0.pids.lock()[name]
        }

        /// The child `pid` dies with `reason`: its supervisor hears of it.
        fn die(&self, pid: ActorId, reason: &Reason, text: &str) {
            let sup = self.0.links.lock()[&pid];
            if let Some(to) = self.0.sups.lock().get(&sup) {
                let _ = to.send(Upcall::ChildExit {
                    child: pid,
                    reason: crate::util::terms::reason(reason),
                    text: text.into(),
                });
            }
        }

        /// Waits (boundedly) until the log holds `d`.
        fn wait_for(&self, d: &Did) {
            let deadline = Instant::now() + WAIT;
            while !self.log().contains(d) {
                assert!(Instant::now() < deadline, "{d:?} in {:?}", self.log());
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    impl ChildHost for Fake {
        fn new_supervisor(&self, upcalls: &Sender<Upcall>) -> ActorId {
            let id = ActorId(self.0.next.fetch_add(1, Ordering::SeqCst) + 1);
            self.0.sups.lock().insert(id, upcalls.clone());
            id
        }
        fn forget_supervisor(&self, id: ActorId) {
            self.0.sups.lock().remove(&id);
        }
        fn spawn(
            &self,
            behaviour: &str,
            name: Option<&str>,
            _: &[u8],
            link: ActorId,
            _: Duration,
        ) -> Result<ActorId, SpawnError> {
            if self.0.broken.contains(&behaviour) {
                return Err(SpawnError::InitFailed {
                    behaviour: behaviour.into(),
                    detail: "broken".into(),
                });
            }
            let name = name.unwrap_or(behaviour);
            self.did(Did::Spawn(name.into()));
            let id = ActorId(self.0.next.fetch_add(1, Ordering::SeqCst) + 1);
            self.0.links.lock().insert(id, link);
            self.0.pids.lock().insert(name.into(), id);
            Ok(id)
        }
        fn spawn_link(
            &self,
            b: &str,
            n: Option<&str>,
            _: Vec<u8>,
            _: ActorId,
            _: u64,
            _: Duration,
        ) {
            self.did(Did::Spawn(n.unwrap_or(b).into()));
        }
        fn check_links(&self) -> bool {
            false
        }
        fn exit(&self, _: ActorId, to: ActorId, reason: &Reason) -> bool {
            let why = match reason {
                Reason::Kill => "kill",
                _ => "shutdown",
            };
            self.did(Did::Exit(to, why));
            self.die(to, &Reason::Shutdown, "shutdown");
            true
        }
        fn reply(&self, _: ActorId, tag: u64, _: &[u8]) {
            self.did(Did::Reply(tag));
        }
        fn report(&self, ev: HostEvent) {
            if let HostEvent::Supervisor { kind, child, .. } = ev {
                self.did(Did::Event(kind, child));
            }
        }
    }

    fn worker(name: &str) -> ChildSpec {
        ChildSpec::Worker(WorkerSpec {
            behaviour: "w".into(),
            name: Some(name.into()),
            args: Vec::new(),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(1)),
            start_timeout: crate::supervisor::DEFAULT_START_TIMEOUT,
        })
    }

    fn named(
        name: &str,
        strategy: Strategy,
        intensity: u32,
        children: Vec<ChildSpec>,
    ) -> SupervisorSpec {
        SupervisorSpec {
            name: name.into(),
            strategy,
            intensity,
            period: Duration::from_secs(5),
            children,
            restart: Restart::Permanent,
        }
    }

    fn spec(strategy: Strategy, intensity: u32, names: &[&str]) -> SupervisorSpec {
        named(
            "s",
            strategy,
            intensity,
            names.iter().map(|n| worker(n)).collect(),
        )
    }

    /// A root supervisor driven on the test's thread (its children not started yet).
    fn root(fake: &Fake, spec: SupervisorSpec) -> Sup<Fake> {
        let (_commands, rx) = channel::unbounded();
        Sup::new(fake.clone(), spec, None, rx, Arc::default())
    }

    fn pid_of(sup: &Sup<Fake>, i: usize) -> ActorId {
        sup.children[i].pid.expect("running")
    }

    fn crash() -> Vec<u8> {
        crate::util::terms::reason(&Reason::error("boom"))
    }

    #[test]
    fn one_for_all_stops_the_others_last_first_then_starts_all_in_order() {
        let fake = Fake::new(vec![]);
        let mut sup = root(&fake, spec(Strategy::OneForAll, 3, &["a", "b", "c"]));
        sup.start().unwrap();
        let (a, b, c) = (pid_of(&sup, 0), pid_of(&sup, 1), pid_of(&sup, 2));
        fake.0.log.lock().clear();
        sup.child_exited(b, &crash(), "boom");
        use SupervisorEvent::*;
        assert_eq!(
            fake.log(),
            vec![
                Did::Event(ChildExited, "b".into()),
                Did::Exit(c, "shutdown"),
                Did::Event(ChildTerminated, "c".into()),
                Did::Exit(a, "shutdown"),
                Did::Event(ChildTerminated, "a".into()),
                Did::Event(Restarting, "a".into()),
                Did::Spawn("a".into()),
                Did::Event(ChildStarted, "a".into()),
                Did::Event(Restarting, "b".into()),
                Did::Spawn("b".into()),
                Did::Event(ChildStarted, "b".into()),
                Did::Event(Restarting, "c".into()),
                Did::Spawn("c".into()),
                Did::Event(ChildStarted, "c".into()),
            ]
        );
    }

    #[test]
    fn rest_for_one_leaves_the_earlier_children_alone() {
        let fake = Fake::new(vec![]);
        let mut sup = root(&fake, spec(Strategy::RestForOne, 3, &["a", "b", "c"]));
        sup.start().unwrap();
        let (a, b) = (pid_of(&sup, 0), pid_of(&sup, 1));
        fake.0.log.lock().clear();
        let killed = crate::util::terms::reason(&Reason::Killed);
        sup.child_exited(b, &killed, "killed");
        let spawned: Vec<Did> = fake
            .log()
            .into_iter()
            .filter(|d| matches!(d, Did::Spawn(_)))
            .collect();
        assert_eq!(
            spawned,
            vec![Did::Spawn("b".into()), Did::Spawn("c".into())]
        );
        assert_eq!(pid_of(&sup, 0), a, "a untouched");
    }

    #[test]
    fn past_the_intensity_the_root_gives_up_and_stops_its_children_in_reverse() {
        let fake = Fake::new(vec![]);
        let mut sup = root(&fake, spec(Strategy::OneForOne, 0, &["a", "b"]));
        sup.start().unwrap();
        let (a, b) = (pid_of(&sup, 0), pid_of(&sup, 1));
        fake.0.log.lock().clear();
        sup.child_exited(a, &crash(), "x");
        let log = fake.log();
        assert!(log.contains(&Did::Event(SupervisorEvent::GaveUp, "s".into())));
        assert!(log.contains(&Did::Exit(b, "shutdown")));
        assert!(!log.iter().any(|d| matches!(d, Did::Spawn(_))), "{log:?}");
        assert_eq!(sup.shared.root_failed.lock().as_deref(), Some("s"));
        assert!(sup.ended);
        assert!(fake.0.sups.lock().is_empty(), "forgotten");
        assert!(
            sup.shared.named.lock().is_empty(),
            "no longer found by name"
        );
    }

    #[test]
    fn a_child_that_does_not_start_undoes_the_supervisor_and_is_named() {
        let fake = Fake::new(vec!["w"]);
        let mut sup = root(&fake, spec(Strategy::OneForOne, 1, &["a"]));
        let e = sup.start().unwrap_err();
        assert!(
            matches!(&e, StartError::Child { child, .. } if child == "a"),
            "{e}"
        );
        assert!(sup.ended);
        assert!(fake.0.sups.lock().is_empty(), "forgotten");
    }

    /// `outer` holds a worker and `inner`, on a thread of its own.
    fn nested(fake: &Fake, inner: SupervisorSpec) -> Sup<Fake> {
        let children = vec![worker("sibling"), ChildSpec::Supervisor(inner)];
        let mut outer = root(fake, named("outer", Strategy::OneForOne, 5, children));
        outer.start().unwrap();
        outer
    }

    /// The next upcall on `sup`'s channel, served.
    fn serve_next(sup: &mut Sup<Fake>) {
        let up = sup.upcalls.recv_timeout(WAIT).expect("an upcall");
        sup.serve(Work::Up(up));
    }

    #[test]
    fn a_nested_supervisor_gives_up_on_its_thread_and_its_parent_restarts_it() {
        let fake = Fake::new(vec![]);
        let inner = named("inner", Strategy::OneForOne, 0, vec![worker("w")]);
        let mut outer = nested(&fake, inner);
        let (sibling, old) = (pid_of(&outer, 0), pid_of(&outer, 1));
        fake.0.log.lock().clear();
        fake.die(fake.pid("w"), &Reason::error("boom"), "boom");
        // `inner` gives up on its thread, and its exit reaches `outer`'s channel.
        serve_next(&mut outer);
        use SupervisorEvent::*;
        assert_eq!(
            fake.log(),
            vec![
                Did::Event(ChildExited, "w".into()),
                Did::Event(GaveUp, "inner".into()),
                Did::Event(ChildExited, "inner".into()),
                Did::Event(Restarting, "inner".into()),
                Did::Spawn("w".into()),
                Did::Event(ChildStarted, "w".into()),
                Did::Event(ChildStarted, "inner".into()),
            ]
        );
        assert_ne!(pid_of(&outer, 1), old, "a fresh supervisor");
        assert_eq!(pid_of(&outer, 0), sibling, "the sibling untouched");
        assert!(outer.shared.root_failed.lock().is_none(), "one level only");
        // Stopping the parent stops the nested supervisor first (last started), and its
        // children before it.
        fake.0.log.lock().clear();
        outer.stop();
        let w = fake.pid("w");
        assert_eq!(
            fake.log(),
            vec![
                Did::Exit(w, "shutdown"),
                Did::Event(ChildTerminated, "w".into()),
                Did::Event(ChildTerminated, "inner".into()),
                Did::Exit(sibling, "shutdown"),
                Did::Event(ChildTerminated, "sibling".into()),
            ]
        );
        assert!(fake.0.sups.lock().is_empty(), "both forgotten");
    }

    #[test]
    fn start_child_reaches_a_nested_pool_and_the_snapshot_shows_it_in_place() {
        let fake = Fake::new(vec![]);
        let mut template = worker("ignored");
        if let ChildSpec::Worker(w) = &mut template {
            w.name = None;
        }
        let pool = named("pool", Strategy::SimpleOneForOne, 5, vec![template]);
        let mut outer = nested(&fake, pool);
        let start = |tag| Upcall::StartChild {
            sup: "pool".into(),
            args: Vec::new(),
            requester: ActorId(1),
            tag,
        };
        assert!(
            outer.shared.route("pool", start(7)).is_ok(),
            "found by name"
        );
        fake.wait_for(&Did::Reply(7));
        let tree = outer.describe(Instant::now() + WAIT, "running", 0);
        let shape: Vec<(&str, &str, usize)> = tree
            .children
            .iter()
            .map(|c| (c.name.as_str(), c.status.as_str(), c.children.len()))
            .collect();
        assert_eq!(shape, [("sibling", "running", 0), ("pool", "running", 1)]);
        assert_eq!(tree.children[1].children[0].detail, "w");
        outer.stop();
        assert!(
            outer.shared.route("pool", start(8)).is_err(),
            "gone with it"
        );
    }
}
