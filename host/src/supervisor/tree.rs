//! The supervision threads: OTP's `supervisor` processes. Each root tree runs on a thread
//! of its own that owns its supervisors' state (the root and those nested in it): it
//! starts children in order, carries out `strategy`'s decision when one exits, gives up
//! past the restart intensity, and stops children in reverse. A child whose `init` hangs
//! holds its own tree's thread until its start deadline, and no other tree's: as in OTP,
//! where each supervisor is a process, an unrelated tree keeps restarting its children.
//!
//! Supervisors are not actors and not plugins. Children are linked to their supervisor's
//! id from birth, and a child's death reaches its tree's thread as an
//! [`Upcall::ChildExit`] sent by the actor system on the channel the supervisor was
//! registered with. Restarting there — never on the dying child's scheduler thread —
//! keeps spawns (which take the behaviour table lock) out of any actor's core lock, so a
//! restart cannot deadlock with a hot swap.
//!
//! A dispatcher thread serves what is not one tree's, and never waits on an `init`: it
//! starts trees (each on its new thread), routes `ctx.start_child` to the tree that holds
//! the named supervisor, queues `ctx.spawn_link` starts for the host's linker thread and
//! looks at their deadlines, and stops the trees, last started first, when the host goes
//! down.
//!
//! Everything a tree's thread does to the world goes through [`ChildHost`], so the tests
//! below drive it with a fake host and no plugin at all.
//!
//! Implemented: `one_for_one`, `one_for_all`, `rest_for_one`; restart `permanent`,
//! `transient`, `temporary`; intensity / period; nested supervisors (a supervisor that
//! gives up exits with `shutdown` and its parent decides); shutdown `brutal_kill` or a
//! timeout, then `kill`; `simple_one_for_one` with children added by `ctx.start_child`;
//! a start deadline per child: an `init` past it fails the start, so a hanging `init`
//! holds its tree's thread for at most that long, never for ever.

use std::collections::{HashMap, VecDeque};
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

/// What a supervision thread needs from the rest of the host. Each thread has a clone of
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
        args: &[u8],
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

/// What one tree's thread is asked besides its children's exits.
enum TreeCommand {
    /// Describe the tree as it is now (`host ctl tree`).
    Snapshot { reply: Sender<Vec<TreeNode>> },
    /// Stop the tree (children in reverse order) and the thread.
    Stop,
}

/// What a tree's thread publishes for the others: its root, and the names of its
/// supervisors (so `ctx.start_child` finds the tree that holds one).
#[derive(Default)]
struct Published {
    root: Option<ActorId>,
    sups: Vec<String>,
}

/// A root tree's thread, as the dispatcher and the handle see it.
struct TreeHandle {
    name: String,
    strategy: Strategy,
    published: Arc<Mutex<Published>>,
    upcalls: Sender<Upcall>,
    commands: Sender<TreeCommand>,
    thread: Option<JoinHandle<()>>,
}

impl TreeHandle {
    /// What `host ctl tree` shows for a tree whose thread did not answer in time (it is
    /// waiting on a child's `init` or stop).
    fn busy(&self) -> TreeNode {
        TreeNode {
            name: self.name.clone(),
            kind: "supervisor".into(),
            detail: strategy_name(self.strategy).into(),
            actor: self.published.lock().root.unwrap_or(ActorId(0)),
            status: "busy".into(),
            restarts: 0,
            children: Vec::new(),
        }
    }

    fn holds(&self, sup: &str) -> bool {
        self.published.lock().sups.iter().any(|s| s == sup)
    }
}

struct Child {
    spec: ChildSpec,
    /// The running actor's id, or the nested supervisor's id.
    pid: Option<ActorId>,
    /// The id it had before it last stopped (reported with its restart).
    last_pid: Option<ActorId>,
    /// Times the strategy restarted this child.
    restarts: u64,
}

struct Sup {
    spec: SupervisorSpec,
    parent: Option<ActorId>,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
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

/// The trees, shared by the dispatcher (which adds and stops them) and the handle
/// (which asks them for snapshots).
#[derive(Default)]
struct Trees {
    list: Mutex<Vec<TreeHandle>>,
}

/// Handle to the supervision threads; dropping it stops every tree (last started first,
/// children in reverse order, so `terminate` runs) and joins the threads.
pub(crate) struct Supervision {
    tx: Sender<SupervisorCommand>,
    trees: Arc<Trees>,
    /// Set when a root supervisor gave up (the binary then exits non-zero).
    root_failed: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Supervision {
    /// Starts the dispatcher: it serves the `upcalls` from the actor system that are not
    /// one supervisor's (`ctx.start_child`, `ctx.spawn_link`) and the commands sent
    /// through this handle, acting on the world through `host` (each tree through a
    /// clone of its own).
    pub(crate) fn start<H: ChildHost + Clone + Send + 'static>(
        host: H,
        upcalls: Receiver<Upcall>,
    ) -> Supervision {
        let (tx, commands) = channel::unbounded();
        let root_failed = Arc::new(Mutex::new(None));
        let trees = Arc::new(Trees::default());
        let dispatcher = Dispatcher {
            host,
            upcalls,
            commands,
            trees: trees.clone(),
            root_failed: root_failed.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("supervision".into())
            .spawn(move || dispatcher.run())
            .expect("spawn the supervision thread");
        Supervision {
            tx,
            trees,
            root_failed,
            thread: Some(thread),
        }
    }

    /// Every supervision tree as it is now, in start order. Waits at most `timeout` for
    /// the trees' threads; a tree whose thread is busy (waiting on a child's `init` or
    /// stop) shows as its root with status `busy`.
    pub(crate) fn snapshot(&self, timeout: Duration) -> Result<Vec<TreeNode>, StartError> {
        let deadline = Instant::now() + timeout;
        let asked: Vec<(Receiver<Vec<TreeNode>>, TreeNode)> = self
            .trees
            .list
            .lock()
            .iter()
            .filter_map(|t| {
                let (reply, rx) = channel::bounded(1);
                let busy = t.busy();
                t.commands
                    .send(TreeCommand::Snapshot { reply })
                    .ok()
                    .map(|()| (rx, busy))
            })
            .collect();
        let mut out = Vec::new();
        for (rx, busy) in asked {
            match rx.recv_deadline(deadline) {
                Ok(nodes) => out.extend(nodes),
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
        self.root_failed.lock().clone()
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

/// The thread that starts trees and serves the upcalls that are not one tree's.
struct Dispatcher<H> {
    host: H,
    upcalls: Receiver<Upcall>,
    commands: Receiver<SupervisorCommand>,
    trees: Arc<Trees>,
    root_failed: Arc<Mutex<Option<String>>>,
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
                        if self.upcall(up) && check_at.is_none() {
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

    /// Starts a tree on a thread of its own, which answers `reply` once its children
    /// started (or one failed) and then serves the tree.
    fn start_tree(&self, spec: SupervisorSpec, reply: Sender<Result<ActorId, StartError>>) {
        let mut list = self.trees.list.lock();
        // Trees whose root gave up (or did not start) are gone.
        list.retain(|t| !t.thread.as_ref().is_some_and(|h| h.is_finished()));
        let (up_tx, up_rx) = channel::unbounded();
        let (cmd_tx, cmd_rx) = channel::unbounded();
        let published = Arc::new(Mutex::new(Published::default()));
        let (name, strategy) = (spec.name.clone(), spec.strategy);
        let mut tree = Tree::new(
            self.host.clone(),
            (up_tx.clone(), up_rx),
            cmd_rx,
            self.root_failed.clone(),
            published.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("sup {name}"))
            .spawn(move || {
                let started = tree.start_sup(spec, None);
                let ok = started.is_ok();
                let _ = reply.send(started);
                if ok {
                    tree.run();
                }
            });
        if let Ok(thread) = spawned {
            list.push(TreeHandle {
                name,
                strategy,
                published,
                upcalls: up_tx,
                commands: cmd_tx,
                thread: Some(thread),
            });
        }
        // Else `reply` was dropped with the closure: the caller hears `Stopped`.
    }

    /// Serves one upcall; true if it queued a `spawn_link` start.
    fn upcall(&self, up: Upcall) -> bool {
        match up {
            Upcall::StartChild {
                sup,
                args,
                requester,
                tag,
            } => {
                let list = self.trees.list.lock();
                let to = list.iter().find(|t| t.holds(&sup));
                let forwarded = to.is_some_and(|t| {
                    t.upcalls
                        .send(Upcall::StartChild {
                            sup: sup.clone(),
                            args,
                            requester,
                            tag,
                        })
                        .is_ok()
                });
                if !forwarded {
                    let e = StartError::NoSupervisor(sup);
                    answer(
                        &self.host,
                        requester,
                        tag,
                        &plugin_api::StartChildReply::Error(e.to_string()),
                    );
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
                    &args,
                    requester,
                    tag,
                    super::DEFAULT_START_TIMEOUT,
                );
                return true;
            }
            // Every supervisor is registered with its tree's channel.
            Upcall::ChildExit { .. } => {}
        }
        false
    }

    /// The host is stopping: every tree stops, last started first, each child in reverse
    /// order within its shutdown time (so `terminate` runs, as in OTP).
    fn stop_all(&self) {
        let trees = std::mem::take(&mut *self.trees.list.lock());
        for mut t in trees.into_iter().rev() {
            let _ = t.commands.send(TreeCommand::Stop);
            if let Some(h) = t.thread.take() {
                let _ = h.join();
            }
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

/// One root tree's state, owned by its thread.
struct Tree<H> {
    host: H,
    upcalls: Receiver<Upcall>,
    /// The sending end of `upcalls`, which this tree's supervisors are registered with.
    own: Sender<Upcall>,
    commands: Receiver<TreeCommand>,
    sups: HashMap<ActorId, Sup>,
    /// Upcalls that arrived while waiting for a specific child to stop.
    backlog: VecDeque<Upcall>,
    root_failed: Arc<Mutex<Option<String>>>,
    published: Arc<Mutex<Published>>,
}

/// One thing for the thread to do next.
enum Work {
    Up(Upcall),
    Command(TreeCommand),
}

impl<H: ChildHost> Tree<H> {
    fn new(
        host: H,
        (own, upcalls): (Sender<Upcall>, Receiver<Upcall>),
        commands: Receiver<TreeCommand>,
        root_failed: Arc<Mutex<Option<String>>>,
        published: Arc<Mutex<Published>>,
    ) -> Self {
        Tree {
            host,
            upcalls,
            own,
            commands,
            sups: HashMap::new(),
            backlog: VecDeque::new(),
            root_failed,
            published,
        }
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

    /// Serves the tree until it is stopped or its root gives up.
    fn run(mut self) {
        while let Some(work) = self.next() {
            match work {
                Work::Command(TreeCommand::Snapshot { reply }) => {
                    let _ = reply.send(self.snapshot());
                }
                Work::Command(TreeCommand::Stop) => {
                    self.shutdown_all();
                    return;
                }
                Work::Up(Upcall::ChildExit {
                    sup,
                    child,
                    reason,
                    text,
                }) => self.child_exited(sup, child, &reason, &text),
                Work::Up(Upcall::StartChild {
                    sup,
                    args,
                    requester,
                    tag,
                }) => {
                    let reply = match self.start_dynamic(&sup, args) {
                        Ok(pid) => plugin_api::StartChildReply::Ok(pid),
                        Err(e) => plugin_api::StartChildReply::Error(e.to_string()),
                    };
                    answer(&self.host, requester, tag, &reply);
                }
                Work::Up(Upcall::SpawnLink {
                    behaviour,
                    name,
                    args,
                    requester,
                    tag,
                }) => self.host.spawn_link(
                    &behaviour,
                    name.as_deref(),
                    &args,
                    requester,
                    tag,
                    super::DEFAULT_START_TIMEOUT,
                ),
            }
            if self.sups.is_empty() {
                return; // the root gave up
            }
        }
    }

    /// Tells the others which supervisors this tree holds (after one came or went).
    fn publish(&self) {
        let mut p = self.published.lock();
        p.sups = self.sups.values().map(|s| s.spec.name.clone()).collect();
        p.root = self
            .sups
            .iter()
            .find(|(_, s)| s.parent.is_none())
            .map(|(&id, _)| id);
    }

    fn event(
        &self,
        sup: ActorId,
        kind: SupervisorEvent,
        child: &str,
        actor: ActorId,
        reason: &str,
    ) {
        let name = self
            .sups
            .get(&sup)
            .map_or_else(String::new, |s| s.spec.name.clone());
        self.host.report(HostEvent::Supervisor {
            supervisor: name,
            kind,
            child: child.to_string(),
            actor,
            reason: reason.to_string(),
        });
    }

    /// The host is stopping: this thread's root stops, each child in reverse order within
    /// its shutdown time (so `terminate` runs, as in OTP).
    fn shutdown_all(&mut self) {
        let mut roots: Vec<ActorId> = self
            .sups
            .iter()
            .filter(|(_, s)| s.parent.is_none())
            .map(|(&id, _)| id)
            .collect();
        roots.sort_unstable();
        for id in roots.into_iter().rev() {
            self.stop_sup(id);
        }
    }

    /// Adds a child to a `simple_one_for_one` supervisor: its template with these args.
    fn start_dynamic(&mut self, name: &str, args: Vec<u8>) -> Result<ActorId, StartError> {
        let (&sup, s) = self
            .sups
            .iter()
            .find(|(_, s)| s.spec.name == name)
            .ok_or_else(|| StartError::NoSupervisor(name.to_string()))?;
        let template = match (s.spec.strategy, s.spec.children.first()) {
            (Strategy::SimpleOneForOne, Some(ChildSpec::Worker(t))) => t,
            _ => return Err(StartError::NotSimple(name.to_string())),
        };
        let spec = ChildSpec::Worker(WorkerSpec {
            args,
            ..template.clone()
        });
        let s = self.sups.get_mut(&sup).expect("found above");
        s.children.push(Child {
            spec,
            pid: None,
            last_pid: None,
            restarts: 0,
        });
        let i = s.children.len() - 1;
        self.start_child(sup, i).inspect_err(|_| {
            if let Some(s) = self.sups.get_mut(&sup) {
                s.children.pop();
            }
        })
    }

    /// Starts a supervisor and its children in order. On a child's failure the ones
    /// already started are stopped (in reverse) and the error names the child.
    fn start_sup(
        &mut self,
        spec: SupervisorSpec,
        parent: Option<ActorId>,
    ) -> Result<ActorId, StartError> {
        if spec.strategy == Strategy::SimpleOneForOne
            && !(spec.children.len() == 1 && matches!(spec.children[0], ChildSpec::Worker(_)))
        {
            return Err(StartError::NoTemplate(spec.name));
        }
        let id = self.host.new_supervisor(&self.own);
        // A simple_one_for_one starts empty: its one child spec is a template.
        let children: Vec<Child> = if spec.strategy == Strategy::SimpleOneForOne {
            Vec::new()
        } else {
            spec.children
                .iter()
                .map(|c| Child {
                    spec: c.clone(),
                    pid: None,
                    last_pid: None,
                    restarts: 0,
                })
                .collect()
        };
        self.sups.insert(
            id,
            Sup {
                spec,
                parent,
                children,
                restarts: VecDeque::new(),
            },
        );
        self.publish();
        let n = self.sups[&id].children.len();
        for i in 0..n {
            if let Err(e) = self.start_child(id, i) {
                self.stop_children(id, 0..n);
                self.sups.remove(&id);
                self.publish();
                self.host.forget_supervisor(id);
                return Err(e);
            }
        }
        Ok(id)
    }

    fn start_child(&mut self, sup: ActorId, i: usize) -> Result<ActorId, StartError> {
        let spec = self.sups[&sup].children[i].spec.clone();
        let name = spec.name();
        let pid = match &spec {
            ChildSpec::Worker(w) => self
                .host
                .spawn(
                    &w.behaviour,
                    w.name.as_deref(),
                    &w.args,
                    sup,
                    w.start_timeout,
                )
                .map_err(|source| StartError::Child {
                    supervisor: self.sups[&sup].spec.name.clone(),
                    child: name.clone(),
                    source,
                })?,
            ChildSpec::Supervisor(s) => self.start_sup(s.clone(), Some(sup))?,
        };
        if let Some(s) = self.sups.get_mut(&sup) {
            s.children[i].pid = Some(pid);
        }
        self.event(sup, SupervisorEvent::ChildStarted, &name, pid, "");
        Ok(pid)
    }

    /// Stops the children in `range`, last first, each within its shutdown time.
    fn stop_children(&mut self, sup: ActorId, range: std::ops::Range<usize>) {
        for i in range.rev() {
            let Some(child) = self.sups.get(&sup).and_then(|s| s.children.get(i)) else {
                continue;
            };
            let Some(pid) = child.pid else { continue };
            let (spec, name) = (child.spec.clone(), child.spec.name());
            let reason = match &spec {
                ChildSpec::Supervisor(_) => {
                    self.stop_sup(pid);
                    "shutdown".to_string()
                }
                ChildSpec::Worker(_) => self.stop_worker(sup, pid, spec.shutdown()),
            };
            if let Some(s) = self.sups.get_mut(&sup) {
                s.children[i].last_pid = s.children[i].pid.take();
            }
            self.event(sup, SupervisorEvent::ChildTerminated, &name, pid, &reason);
        }
    }

    /// Stops a nested supervisor: its children in reverse order, then itself.
    fn stop_sup(&mut self, id: ActorId) {
        let n = self.sups.get(&id).map_or(0, |s| s.children.len());
        self.stop_children(id, 0..n);
        self.sups.remove(&id);
        self.publish();
        self.host.forget_supervisor(id);
    }

    /// Asks a worker to stop (or kills it) and waits for its exit; returns the reason.
    fn stop_worker(&mut self, sup: ActorId, pid: ActorId, shutdown: Shutdown) -> String {
        let first = match shutdown {
            Shutdown::BrutalKill => Reason::Kill,
            _ => Reason::Shutdown,
        };
        if !self.host.exit(sup, pid, &first) {
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
        self.host.exit(sup, pid, &Reason::Kill);
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

    fn child_exited(&mut self, sup: ActorId, pid: ActorId, reason: &[u8], text: &str) {
        let Some(s) = self.sups.get_mut(&sup) else {
            return;
        };
        let Some(i) = s.children.iter().position(|c| c.pid == Some(pid)) else {
            return; // already replaced or stopped by us
        };
        s.children[i].last_pid = s.children[i].pid.take();
        let name = s.children[i].spec.name();
        self.event(sup, SupervisorEvent::ChildExited, &name, pid, text);
        self.decide(sup, i, Reason::from_etf(reason).is_abnormal());
    }

    /// Applies the restart type, intensity and strategy after child `i` exited.
    fn decide(&mut self, sup: ActorId, i: usize, abnormal: bool) {
        let Some(s) = self.sups.get_mut(&sup) else {
            return;
        };
        let decision = strategy::after_exit(
            s.spec.strategy,
            s.children[i].spec.restart(),
            abnormal,
            i,
            s.children.len(),
            &mut s.restarts,
            s.spec.intensity,
            s.spec.period,
            Instant::now(),
        );
        let range = match decision {
            Decision::LeaveStopped => return,
            Decision::Forget => {
                s.children.remove(i);
                return;
            }
            Decision::GiveUp => {
                self.give_up(sup);
                return;
            }
            Decision::Restart(range) => range,
        };
        // Stop the others in the range (reverse), then start the range in order.
        let others: Vec<usize> = range.clone().filter(|&j| j != i).collect();
        for j in others.into_iter().rev() {
            self.stop_children(sup, j..j + 1);
        }
        for j in range {
            let (name, last) = self
                .sups
                .get(&sup)
                .map(|s| (s.children[j].spec.name(), s.children[j].last_pid))
                .unwrap_or_default();
            let last = last.unwrap_or(ActorId(0));
            self.event(sup, SupervisorEvent::Restarting, &name, last, "");
            if let Some(c) = self.sups.get_mut(&sup).and_then(|s| s.children.get_mut(j)) {
                c.restarts += 1;
            }
            if let Err(e) = self.start_child(sup, j) {
                Event::SupervisorRestartFailed {
                    error: &e.to_string(),
                }
                .log();
                self.give_up(sup);
                return;
            }
        }
    }

    /// Every root tree, children in start order.
    fn snapshot(&self) -> Vec<TreeNode> {
        let mut roots: Vec<(&ActorId, &Sup)> = self
            .sups
            .iter()
            .filter(|(_, s)| s.parent.is_none())
            .collect();
        roots.sort_by_key(|(id, _)| **id);
        roots
            .into_iter()
            .map(|(id, s)| self.describe(*id, s, "running", 0))
            .collect()
    }

    fn describe(&self, id: ActorId, s: &Sup, status: &str, restarts: u64) -> TreeNode {
        let children = s
            .children
            .iter()
            .map(|c| {
                let status = if c.pid.is_some() {
                    "running"
                } else {
                    "stopped"
                };
                match (
                    &c.spec,
                    c.pid.and_then(|p| self.sups.get(&p).map(|n| (p, n))),
                ) {
                    (ChildSpec::Supervisor(_), Some((pid, nested))) => {
                        self.describe(pid, nested, status, c.restarts)
                    }
                    (spec, _) => TreeNode {
                        name: spec.name(),
                        kind: match spec {
                            ChildSpec::Worker(_) => "worker".into(),
                            ChildSpec::Supervisor(_) => "supervisor".into(),
                        },
                        detail: match spec {
                            ChildSpec::Worker(w) => w.behaviour.clone(),
                            ChildSpec::Supervisor(n) => strategy_name(n.strategy).into(),
                        },
                        actor: c.pid.unwrap_or(ActorId(0)),
                        status: status.into(),
                        restarts: c.restarts,
                        children: Vec::new(),
                    },
                }
            })
            .collect();
        TreeNode {
            name: s.spec.name.clone(),
            kind: "supervisor".into(),
            detail: strategy_name(s.spec.strategy).into(),
            actor: id,
            status: status.into(),
            restarts,
            children,
        }
    }

    /// Past the intensity: stop every child (reverse order) and exit with `shutdown`; the
    /// parent decides what happens next, and a root giving up is reported to the host.
    fn give_up(&mut self, sup: ActorId) {
        let Some(s) = self.sups.get(&sup) else { return };
        let (parent, name, n) = (s.parent, s.spec.name.clone(), s.children.len());
        self.event(sup, SupervisorEvent::GaveUp, &name, sup, "shutdown");
        self.stop_children(sup, 0..n);
        self.sups.remove(&sup);
        self.publish();
        self.host.forget_supervisor(sup);
        match parent {
            Some(p) => {
                let reason = crate::util::terms::reason(&Reason::Shutdown);
                self.child_exited(p, sup, &reason, "shutdown");
            }
            None => *self.root_failed.lock() = Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The supervision thread's plumbing, driven directly with a fake host: no threads,
    //! no actors, no plugins. A "child" is an id; stopping it answers at once with its
    //! exit, as a real child's death reaches the thread.

    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    use super::*;
    use crate::supervisor::Restart;

    /// What the fake saw, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Did {
        Spawn(String),
        Exit(ActorId, &'static str),
        Event(SupervisorEvent, String),
    }

    struct Fake {
        next: Cell<u64>,
        log: RefCell<Vec<Did>>,
        /// Where a stopped child's exit goes (the tree's own upcall channel).
        exits: Sender<Upcall>,
        /// Behaviours whose spawn fails.
        broken: Vec<&'static str>,
    }

    impl ChildHost for &Fake {
        fn new_supervisor(&self, _: &Sender<Upcall>) -> ActorId {
            self.next.set(self.next.get() + 1);
            ActorId(self.next.get())
        }
        fn forget_supervisor(&self, _: ActorId) {}
        fn spawn(
            &self,
            behaviour: &str,
            name: Option<&str>,
            _: &[u8],
            _: ActorId,
            _: Duration,
        ) -> Result<ActorId, SpawnError> {
            if self.broken.contains(&behaviour) {
                return Err(SpawnError::InitFailed {
                    behaviour: behaviour.into(),
                    detail: "broken".into(),
                });
            }
            self.log
                .borrow_mut()
                .push(Did::Spawn(name.unwrap_or(behaviour).into()));
            self.next.set(self.next.get() + 1);
            Ok(ActorId(self.next.get()))
        }
        fn spawn_link(&self, b: &str, n: Option<&str>, _: &[u8], _: ActorId, _: u64, _: Duration) {
            self.log
                .borrow_mut()
                .push(Did::Spawn(n.unwrap_or(b).into()));
        }
        fn check_links(&self) -> bool {
            false
        }
        fn exit(&self, from: ActorId, to: ActorId, reason: &Reason) -> bool {
            let why = match reason {
                Reason::Kill => "kill",
                _ => "shutdown",
            };
            self.log.borrow_mut().push(Did::Exit(to, why));
            let reason = crate::util::terms::reason(&Reason::Shutdown);
            let _ = self.exits.send(Upcall::ChildExit {
                sup: from,
                child: to,
                reason,
                text: "shutdown".into(),
            });
            true
        }
        fn reply(&self, _: ActorId, _: u64, _: &[u8]) {}
        fn report(&self, ev: HostEvent) {
            if let HostEvent::Supervisor { kind, child, .. } = ev {
                self.log.borrow_mut().push(Did::Event(kind, child));
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

    fn spec(strategy: Strategy, intensity: u32, names: &[&str]) -> SupervisorSpec {
        SupervisorSpec {
            name: "s".into(),
            strategy,
            intensity,
            period: Duration::from_secs(5),
            children: names.iter().map(|n| worker(n)).collect(),
            restart: Restart::Permanent,
        }
    }

    fn with_tree(broken: Vec<&'static str>, f: impl FnOnce(&mut Tree<&Fake>, &Fake)) {
        let (tx, rx) = channel::unbounded();
        let (_ctx, crx) = channel::unbounded();
        let fake = Fake {
            next: Cell::new(100),
            log: RefCell::new(Vec::new()),
            exits: tx,
            broken,
        };
        let mut tree = Tree::new(
            &fake,
            (fake.exits.clone(), rx),
            crx,
            Arc::new(Mutex::new(None)),
            Arc::default(),
        );
        f(&mut tree, &fake);
    }

    fn pid_of(tree: &Tree<&Fake>, sup: ActorId, i: usize) -> ActorId {
        tree.sups[&sup].children[i].pid.expect("running")
    }

    #[test]
    fn one_for_all_stops_the_others_last_first_then_starts_all_in_order() {
        with_tree(vec![], |tree, fake| {
            let sup = tree
                .start_sup(spec(Strategy::OneForAll, 3, &["a", "b", "c"]), None)
                .unwrap();
            let (a, c) = (pid_of(tree, sup, 0), pid_of(tree, sup, 2));
            let b = pid_of(tree, sup, 1);
            fake.log.borrow_mut().clear();
            let crash = crate::util::terms::reason(&Reason::error("boom"));
            tree.child_exited(sup, b, &crash, "boom");
            use SupervisorEvent::*;
            assert_eq!(
                *fake.log.borrow(),
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
        });
    }

    #[test]
    fn rest_for_one_leaves_the_earlier_children_alone() {
        with_tree(vec![], |tree, fake| {
            let sup = tree
                .start_sup(spec(Strategy::RestForOne, 3, &["a", "b", "c"]), None)
                .unwrap();
            let a = pid_of(tree, sup, 0);
            let b = pid_of(tree, sup, 1);
            fake.log.borrow_mut().clear();
            tree.child_exited(
                sup,
                b,
                &crate::util::terms::reason(&Reason::Killed),
                "killed",
            );
            let spawned: Vec<Did> = fake
                .log
                .borrow()
                .iter()
                .filter(|d| matches!(d, Did::Spawn(_)))
                .cloned()
                .collect();
            assert_eq!(
                spawned,
                vec![Did::Spawn("b".into()), Did::Spawn("c".into())]
            );
            assert_eq!(pid_of(tree, sup, 0), a, "a untouched");
        });
    }

    #[test]
    fn past_the_intensity_the_root_gives_up_and_stops_its_children_in_reverse() {
        with_tree(vec![], |tree, fake| {
            let sup = tree
                .start_sup(spec(Strategy::OneForOne, 0, &["a", "b"]), None)
                .unwrap();
            let (a, b) = (pid_of(tree, sup, 0), pid_of(tree, sup, 1));
            fake.log.borrow_mut().clear();
            tree.child_exited(
                sup,
                a,
                &crate::util::terms::reason(&Reason::error("x")),
                "x",
            );
            let log = fake.log.borrow().clone();
            assert!(log.contains(&Did::Event(SupervisorEvent::GaveUp, "s".into())));
            assert!(log.contains(&Did::Exit(b, "shutdown")));
            assert!(!log.iter().any(|d| matches!(d, Did::Spawn(_))), "{log:?}");
            assert_eq!(tree.root_failed.lock().as_deref(), Some("s"));
            assert!(tree.sups.is_empty());
        });
    }

    #[test]
    fn a_child_that_does_not_start_undoes_the_tree_and_is_named() {
        with_tree(vec!["w"], |tree, _| {
            let e = tree
                .start_sup(spec(Strategy::OneForOne, 1, &["a"]), None)
                .unwrap_err();
            assert!(
                matches!(&e, StartError::Child { child, .. } if child == "a"),
                "{e}"
            );
            assert!(tree.sups.is_empty());
        });
    }
}
