//! Supervision trees, OTP's `supervisor` in the host: start children in order, restart
//! them by strategy when they exit, give up past the restart intensity, stop in reverse.
//!
//! Supervisors are not actors and not plugins. All of them live on one supervision thread
//! that owns their state; children are linked to their supervisor's id from birth (see
//! `HostInner::spawn_linked`), and a child's death reaches this thread as an
//! [`SupEvent::Exit`] sent by `HostInner::notify_links_and_monitors`. Restarting on this
//! thread — never on the dying child's scheduler thread — keeps spawns (which take the
//! behaviour table lock) out of any actor's core lock, so a restart cannot deadlock with
//! a hot swap.
//!
//! Implemented: `one_for_one`, `one_for_all`, `rest_for_one`; restart `permanent`,
//! `transient`, `temporary`; intensity / period; nested supervisors (a supervisor that
//! gives up exits with `shutdown` and its parent decides); shutdown `brutal_kill` or a
//! timeout, then `kill`; `simple_one_for_one` with children added by `ctx.start_child`.

use std::collections::{HashMap, VecDeque};
use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use plugin_api::{etf, Reason};
use serde::Deserialize;

use crate::control::model::TreeNode;
use crate::events::{HostEvent, SupervisorEvent};
use crate::runtime::{HostInner, Target};

/// How a supervisor reacts to a child's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Restart only the child that exited.
    OneForOne,
    /// Stop all other children (in reverse order), then restart all (in order).
    OneForAll,
    /// Stop the children started after it (in reverse), then restart it and them.
    RestForOne,
    /// One child spec used as a template: no child at start, children added at run time
    /// with `ctx.start_child(sup, args)`, each restarted on its own.
    SimpleOneForOne,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always.
    #[default]
    Permanent,
    /// Only after an abnormal exit (not `normal`, `shutdown`, `{shutdown, _}`).
    Transient,
    /// Never.
    Temporary,
}

/// How a child is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Killed at once (`kill`).
    BrutalKill,
    /// Asked with `shutdown`, killed if still alive after this long.
    Timeout(Duration),
    /// Asked with `shutdown`, waited for (the default for supervisors).
    Infinity,
}

/// A worker child: an actor of a behaviour.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Behaviour name.
    pub behaviour: String,
    /// Registered name (kept across restarts).
    pub name: Option<String>,
    /// `init` arguments as ETF (used again on every restart).
    pub args: Vec<u8>,
    /// Restart type.
    pub restart: Restart,
    /// Shutdown (default 5000 ms).
    pub shutdown: Shutdown,
}

/// A supervisor and its children.
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Name, used in events.
    pub name: String,
    /// Restart strategy.
    pub strategy: Strategy,
    /// Restarts allowed within `period` before giving up (default 1).
    pub intensity: u32,
    /// The intensity window (default 5 s).
    pub period: Duration,
    /// Children, started in this order.
    pub children: Vec<ChildSpec>,
    /// Restart type as a child of its parent.
    pub restart: Restart,
}

/// A child of a supervisor.
#[derive(Debug, Clone)]
pub enum ChildSpec {
    /// An actor.
    Worker(WorkerSpec),
    /// A nested supervisor.
    Supervisor(SupervisorSpec),
}

impl ChildSpec {
    fn name(&self) -> String {
        match self {
            ChildSpec::Worker(w) => w.name.clone().unwrap_or_else(|| w.behaviour.clone()),
            ChildSpec::Supervisor(s) => s.name.clone(),
        }
    }

    fn restart(&self) -> Restart {
        match self {
            ChildSpec::Worker(w) => w.restart,
            ChildSpec::Supervisor(s) => s.restart,
        }
    }

    fn shutdown(&self) -> Shutdown {
        match self {
            ChildSpec::Worker(w) => w.shutdown,
            ChildSpec::Supervisor(_) => Shutdown::Infinity,
        }
    }
}

/// What the supervision thread receives.
pub(crate) enum SupEvent {
    /// A child linked to `sup` died.
    Exit {
        sup: u64,
        child: u64,
        reason: Vec<u8>,
    },
    /// Start a root supervisor tree.
    Start {
        spec: SupervisorSpec,
        reply: Sender<Result<u64, String>>,
    },
    /// `ctx.start_child`: start a child of the `simple_one_for_one` supervisor named `sup`.
    StartChild {
        sup: String,
        args: Vec<u8>,
        requester: u64,
        tag: u64,
    },
    /// `ctx.spawn_link`: start an actor linked to `requester`.
    SpawnLink {
        behaviour: String,
        name: Option<String>,
        args: Vec<u8>,
        requester: u64,
        tag: u64,
    },
    /// Describe every tree as it is now (`host ctl tree`).
    Snapshot { reply: Sender<Vec<TreeNode>> },
    /// Stop the thread (the host is going down). Needed because the host keeps a sender
    /// itself, so the channel never disconnects on its own.
    Stop,
}

struct Child {
    spec: ChildSpec,
    /// The running actor's id, or the nested supervisor's id.
    pid: Option<u64>,
    /// Times the strategy restarted this child.
    restarts: u64,
}

struct Sup {
    spec: SupervisorSpec,
    parent: Option<u64>,
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

/// Handle to the supervision thread; dropping it stops the thread.
pub(crate) struct Supervision {
    tx: Option<Sender<SupEvent>>,
    thread: Option<JoinHandle<()>>,
}

impl Supervision {
    pub(crate) fn start(host: Weak<HostInner>) -> (Supervision, Sender<SupEvent>) {
        let (tx, rx) = channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("supervision".into())
            .spawn(move || Tree::new(host, rx).run())
            .expect("spawn the supervision thread");
        (
            Supervision {
                tx: Some(tx.clone()),
                thread: Some(thread),
            },
            tx,
        )
    }

    /// Every supervision tree as it is now. Waits at most `timeout` for the supervision
    /// thread, which may be busy stopping a slow child.
    pub(crate) fn snapshot(
        tx: &Sender<SupEvent>,
        timeout: Duration,
    ) -> Result<Vec<TreeNode>, String> {
        let (reply, rx) = channel::bounded(1);
        tx.send(SupEvent::Snapshot { reply })
            .map_err(|_| "the supervision thread is gone".to_string())?;
        rx.recv_timeout(timeout).map_err(|_| {
            "the supervision thread is busy (stopping a child?); try again".to_string()
        })
    }

    /// Starts a root supervisor and its children; an error names the child that failed.
    pub(crate) fn start_tree(&self, spec: SupervisorSpec) -> Result<u64, String> {
        let (reply, rx) = channel::bounded(1);
        let tx = self.tx.as_ref().expect("running");
        tx.send(SupEvent::Start { spec, reply })
            .map_err(|_| "the supervision thread is gone".to_string())?;
        rx.recv()
            .map_err(|_| "the supervision thread is gone".to_string())?
    }
}

impl Drop for Supervision {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(SupEvent::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Tree {
    host: Weak<HostInner>,
    rx: Receiver<SupEvent>,
    sups: HashMap<u64, Sup>,
    /// Events that arrived while waiting for a specific child to stop.
    backlog: VecDeque<SupEvent>,
}

impl Tree {
    fn new(host: Weak<HostInner>, rx: Receiver<SupEvent>) -> Tree {
        Tree {
            host,
            rx,
            sups: HashMap::new(),
            backlog: VecDeque::new(),
        }
    }

    fn run(mut self) {
        loop {
            let ev = match self.backlog.pop_front() {
                Some(ev) => ev,
                None => match self.rx.recv() {
                    Ok(ev) => ev,
                    Err(_) => return,
                },
            };
            let Some(host) = self.host.upgrade() else {
                return;
            };
            match ev {
                SupEvent::Start { spec, reply } => {
                    let r = self.start_sup(&host, spec, None);
                    let _ = reply.send(r);
                }
                SupEvent::Exit { sup, child, reason } => {
                    self.child_exited(&host, sup, child, &reason)
                }
                SupEvent::StartChild {
                    sup,
                    args,
                    requester,
                    tag,
                } => {
                    let reply = match self.start_dynamic(&host, &sup, args) {
                        Ok(pid) => {
                            etf::to_vec(&plugin_api::StartChildReply::Ok(plugin_api::Pid(pid)))
                        }
                        Err(e) => etf::to_vec(&plugin_api::StartChildReply::Error(e)),
                    };
                    host.deliver_reply(requester, tag, &reply.unwrap_or_default());
                }
                SupEvent::SpawnLink {
                    behaviour,
                    name,
                    args,
                    requester,
                    tag,
                } => {
                    let reply = match host.spawn_linked(
                        &behaviour,
                        name.as_deref(),
                        &args,
                        Some(requester),
                    ) {
                        Ok(pid) => {
                            host.add_link(requester, pid);
                            etf::to_vec(&plugin_api::StartChildReply::Ok(plugin_api::Pid(pid)))
                        }
                        Err(e) => etf::to_vec(&plugin_api::StartChildReply::Error(e.to_string())),
                    };
                    host.deliver_reply(requester, tag, &reply.unwrap_or_default());
                }
                SupEvent::Snapshot { reply } => {
                    let _ = reply.send(self.snapshot());
                }
                SupEvent::Stop => {
                    self.shutdown_all(&host);
                    return;
                }
            }
        }
    }

    fn event(
        &self,
        host: &HostInner,
        sup: u64,
        kind: SupervisorEvent,
        child: &str,
        actor: u64,
        reason: &str,
    ) {
        let name = self
            .sups
            .get(&sup)
            .map_or_else(String::new, |s| s.spec.name.clone());
        host.publish(HostEvent::Supervisor {
            supervisor: name,
            kind,
            child: child.to_string(),
            actor,
            reason: reason.to_string(),
        });
    }

    /// The host is stopping: every root tree stops, last started first, each child in
    /// reverse order within its shutdown time (so `terminate` runs, as in OTP).
    fn shutdown_all(&mut self, host: &HostInner) {
        let mut roots: Vec<u64> = self
            .sups
            .iter()
            .filter(|(_, s)| s.parent.is_none())
            .map(|(&id, _)| id)
            .collect();
        roots.sort_unstable();
        for id in roots.into_iter().rev() {
            self.stop_sup(host, id);
        }
    }

    /// Adds a child to a `simple_one_for_one` supervisor: its template with these args.
    fn start_dynamic(
        &mut self,
        host: &HostInner,
        name: &str,
        args: Vec<u8>,
    ) -> Result<u64, String> {
        let (&sup, s) = self
            .sups
            .iter()
            .find(|(_, s)| s.spec.name == name)
            .ok_or_else(|| format!("no supervisor named `{name}`"))?;
        if s.spec.strategy != Strategy::SimpleOneForOne {
            return Err(format!("`{name}` is not a simple_one_for_one supervisor"));
        }
        let Some(ChildSpec::Worker(template)) = s.spec.children.first() else {
            return Err(format!("`{name}` has no worker template"));
        };
        let spec = ChildSpec::Worker(WorkerSpec {
            args,
            ..template.clone()
        });
        let s = self.sups.get_mut(&sup).expect("found above");
        s.children.push(Child {
            spec,
            pid: None,
            restarts: 0,
        });
        let i = s.children.len() - 1;
        self.start_child(host, sup, i).inspect_err(|_| {
            if let Some(s) = self.sups.get_mut(&sup) {
                s.children.pop();
            }
        })
    }

    /// Starts a supervisor and its children in order. On a child's failure the ones
    /// already started are stopped (in reverse) and the error names the child.
    fn start_sup(
        &mut self,
        host: &HostInner,
        spec: SupervisorSpec,
        parent: Option<u64>,
    ) -> Result<u64, String> {
        if spec.strategy == Strategy::SimpleOneForOne
            && !(spec.children.len() == 1 && matches!(spec.children[0], ChildSpec::Worker(_)))
        {
            return Err(format!(
                "simple_one_for_one supervisor `{}` needs exactly one worker child (the template)",
                spec.name
            ));
        }
        let id = host.next_actor_id();
        host.register_supervisor(id);
        // A simple_one_for_one starts empty: its one child spec is a template.
        let children: Vec<Child> = if spec.strategy == Strategy::SimpleOneForOne {
            Vec::new()
        } else {
            spec.children
                .iter()
                .map(|c| Child {
                    spec: c.clone(),
                    pid: None,
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
        let n = self.sups[&id].children.len();
        for i in 0..n {
            if let Err(e) = self.start_child(host, id, i) {
                self.stop_children(host, id, 0..n);
                self.sups.remove(&id);
                host.unregister_supervisor(id);
                return Err(e);
            }
        }
        Ok(id)
    }

    fn start_child(&mut self, host: &HostInner, sup: u64, i: usize) -> Result<u64, String> {
        let spec = self.sups[&sup].children[i].spec.clone();
        let name = spec.name();
        let pid = match &spec {
            ChildSpec::Worker(w) => host
                .spawn_linked(&w.behaviour, w.name.as_deref(), &w.args, Some(sup))
                .map_err(|e| {
                    format!(
                        "child `{name}` of supervisor `{}` did not start: {e}",
                        self.sups[&sup].spec.name
                    )
                })?,
            ChildSpec::Supervisor(s) => self.start_sup(host, s.clone(), Some(sup))?,
        };
        if let Some(s) = self.sups.get_mut(&sup) {
            s.children[i].pid = Some(pid);
        }
        self.event(host, sup, SupervisorEvent::ChildStarted, &name, pid, "");
        Ok(pid)
    }

    /// Stops the children in `range`, last first, each within its shutdown time.
    fn stop_children(&mut self, host: &HostInner, sup: u64, range: std::ops::Range<usize>) {
        for i in range.rev() {
            let Some(child) = self.sups.get(&sup).and_then(|s| s.children.get(i)) else {
                continue;
            };
            let Some(pid) = child.pid else { continue };
            let (spec, name) = (child.spec.clone(), child.spec.name());
            let reason = match &spec {
                ChildSpec::Supervisor(_) => {
                    self.stop_sup(host, pid);
                    "shutdown".to_string()
                }
                ChildSpec::Worker(_) => self.stop_worker(host, sup, pid, spec.shutdown()),
            };
            if let Some(s) = self.sups.get_mut(&sup) {
                s.children[i].pid = None;
            }
            self.event(
                host,
                sup,
                SupervisorEvent::ChildTerminated,
                &name,
                pid,
                &reason,
            );
        }
    }

    /// Stops a nested supervisor: its children in reverse order, then itself.
    fn stop_sup(&mut self, host: &HostInner, id: u64) {
        let n = self.sups.get(&id).map_or(0, |s| s.children.len());
        self.stop_children(host, id, 0..n);
        self.sups.remove(&id);
        host.unregister_supervisor(id);
    }

    /// Asks a worker to stop (or kills it) and waits for its exit; returns the reason.
    fn stop_worker(&mut self, host: &HostInner, sup: u64, pid: u64, shutdown: Shutdown) -> String {
        let first = match shutdown {
            Shutdown::BrutalKill => Reason::Kill,
            _ => Reason::Shutdown,
        };
        let bytes = etf::to_vec(&first).unwrap_or_default();
        if host.exit_signal(sup, Target::Id(pid), bytes).is_err() {
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
        // It ignored the shutdown (trapping exits, busy): kill it.
        let kill = etf::to_vec(&Reason::Kill).unwrap_or_default();
        let _ = host.exit_signal(sup, Target::Id(pid), kill);
        self.wait_exit(pid, Some(Duration::from_secs(5)))
            .unwrap_or_else(|| "killed".into())
    }

    /// Waits for `pid`'s exit event, keeping every other event for later.
    fn wait_exit(&mut self, pid: u64, timeout: Option<Duration>) -> Option<String> {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|e| matches!(e, SupEvent::Exit { child, .. } if *child == pid))
        {
            if let Some(SupEvent::Exit { reason, .. }) = self.backlog.remove(pos) {
                return Some(etf::display(&reason));
            }
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ev = match deadline {
                Some(d) => match self.rx.recv_deadline(d) {
                    Ok(ev) => ev,
                    Err(RecvTimeoutError::Timeout) => return None,
                    Err(RecvTimeoutError::Disconnected) => return None,
                },
                None => self.rx.recv().ok()?,
            };
            match ev {
                SupEvent::Exit { child, reason, .. } if child == pid => {
                    return Some(etf::display(&reason))
                }
                other => self.backlog.push_back(other),
            }
        }
    }

    fn child_exited(&mut self, host: &HostInner, sup: u64, pid: u64, reason: &[u8]) {
        let Some(s) = self.sups.get_mut(&sup) else {
            return;
        };
        let Some(i) = s.children.iter().position(|c| c.pid == Some(pid)) else {
            return; // already replaced or stopped by us
        };
        s.children[i].pid = None;
        let name = s.children[i].spec.name();
        let text = etf::display(reason);
        self.event(host, sup, SupervisorEvent::ChildExited, &name, pid, &text);
        self.decide(host, sup, i, Reason::from_etf(reason).is_abnormal());
    }

    /// Applies the restart type, intensity and strategy after child `i` exited.
    fn decide(&mut self, host: &HostInner, sup: u64, i: usize, abnormal: bool) {
        let Some(s) = self.sups.get_mut(&sup) else {
            return;
        };
        let restart = match s.children[i].spec.restart() {
            Restart::Permanent => true,
            Restart::Transient => abnormal,
            Restart::Temporary => false,
        };
        if !restart {
            if s.spec.strategy == Strategy::SimpleOneForOne {
                s.children.remove(i); // dynamic children are forgotten once gone
            }
            return;
        }
        let now = Instant::now();
        s.restarts.push_back(now);
        let period = s.spec.period;
        while s
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > period)
        {
            s.restarts.pop_front();
        }
        if s.restarts.len() > s.spec.intensity as usize {
            self.give_up(host, sup);
            return;
        }
        let n = s.children.len();
        let range = match s.spec.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => i..i + 1,
            Strategy::OneForAll => 0..n,
            Strategy::RestForOne => i..n,
        };
        // Stop the others in the range (reverse), then start the range in order.
        let others: Vec<usize> = range.clone().filter(|&j| j != i).collect();
        for j in others.into_iter().rev() {
            self.stop_children(host, sup, j..j + 1);
        }
        for j in range {
            let name = self
                .sups
                .get(&sup)
                .map(|s| s.children[j].spec.name())
                .unwrap_or_default();
            self.event(host, sup, SupervisorEvent::Restarting, &name, 0, "");
            if let Some(c) = self.sups.get_mut(&sup).and_then(|s| s.children.get_mut(j)) {
                c.restarts += 1;
            }
            if let Err(e) = self.start_child(host, sup, j) {
                tracing::error!(event = "supervisor_restart_failed", error = %e, "restart failed");
                self.give_up(host, sup);
                return;
            }
        }
    }

    /// Every root tree, children in start order.
    fn snapshot(&self) -> Vec<TreeNode> {
        let mut roots: Vec<(&u64, &Sup)> = self
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

    fn describe(&self, id: u64, s: &Sup, status: &str, restarts: u64) -> TreeNode {
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
                        actor: c.pid.unwrap_or(0),
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
    fn give_up(&mut self, host: &HostInner, sup: u64) {
        let Some(s) = self.sups.get(&sup) else { return };
        let (parent, name, n) = (s.parent, s.spec.name.clone(), s.children.len());
        self.event(host, sup, SupervisorEvent::GaveUp, &name, sup, "shutdown");
        self.stop_children(host, sup, 0..n);
        self.sups.remove(&sup);
        host.unregister_supervisor(sup);
        match parent {
            Some(p) => {
                let reason = etf::to_vec(&Reason::Shutdown).unwrap_or_default();
                self.child_exited(host, p, sup, &reason);
            }
            None => host.root_supervisor_failed(&name),
        }
    }
}

/// The supervision tree as written in the config (`[supervisor]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Name used in events.
    #[serde(default = "root_name")]
    pub name: String,
    /// `one_for_one`, `one_for_all` or `rest_for_one`.
    #[serde(default = "one_for_one")]
    pub strategy: Strategy,
    /// Restarts allowed within `period_ms` (default 1).
    #[serde(default = "one")]
    pub intensity: u32,
    /// Intensity window in milliseconds (default 5000).
    #[serde(default = "five_s")]
    pub period_ms: u64,
    /// Restart type as a child of its parent.
    #[serde(default)]
    pub restart: Restart,
    /// Children in start order.
    #[serde(default)]
    pub children: Vec<ChildConfig>,
}

/// A child in the config: a worker (`behaviour = ...`) or a nested supervisor
/// (`strategy = ...` with `children`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildConfig {
    /// Worker: behaviour name.
    pub behaviour: Option<String>,
    /// Worker: registered name; supervisor: its name.
    pub name: Option<String>,
    /// Worker: `init` arguments (a TOML value).
    pub args: Option<toml::Value>,
    /// `permanent` (default), `transient` or `temporary`.
    #[serde(default)]
    pub restart: Restart,
    /// Worker: `"brutal_kill"`, `"infinity"` or a timeout in ms (default 5000).
    pub shutdown: Option<toml::Value>,
    /// Nested supervisor: strategy.
    pub strategy: Option<Strategy>,
    /// Nested supervisor: intensity.
    pub intensity: Option<u32>,
    /// Nested supervisor: period in ms.
    pub period_ms: Option<u64>,
    /// Nested supervisor: children.
    pub children: Option<Vec<ChildConfig>>,
}

fn root_name() -> String {
    "root".into()
}
fn one_for_one() -> Strategy {
    Strategy::OneForOne
}
fn one() -> u32 {
    1
}
fn five_s() -> u64 {
    5000
}

impl SupervisorConfig {
    /// The runtime spec; errors name the offending child.
    pub fn to_spec(&self) -> Result<SupervisorSpec, String> {
        let children = self
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| c.to_spec(&format!("{}.children[{i}]", self.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SupervisorSpec {
            name: self.name.clone(),
            strategy: self.strategy,
            intensity: self.intensity,
            period: Duration::from_millis(self.period_ms),
            children,
            restart: self.restart,
        })
    }
}

impl ChildConfig {
    fn to_spec(&self, at: &str) -> Result<ChildSpec, String> {
        match (&self.behaviour, &self.children) {
            (Some(b), None) => {
                let args = crate::config::encode_args(self.args.as_ref())
                    .map_err(|e| format!("{at}: args {e}"))?;
                let shutdown = match &self.shutdown {
                    None => Shutdown::Timeout(Duration::from_millis(5000)),
                    Some(toml::Value::String(s)) if s == "brutal_kill" => Shutdown::BrutalKill,
                    Some(toml::Value::String(s)) if s == "infinity" => Shutdown::Infinity,
                    Some(toml::Value::Integer(ms)) if *ms >= 0 => Shutdown::Timeout(Duration::from_millis(*ms as u64)),
                    Some(other) => {
                        return Err(format!(
                            "{at}: shutdown must be \"brutal_kill\", \"infinity\" or milliseconds, not {other}"
                        ))
                    }
                };
                Ok(ChildSpec::Worker(WorkerSpec {
                    behaviour: b.clone(),
                    name: self.name.clone(),
                    args,
                    restart: self.restart,
                    shutdown,
                }))
            }
            (None, Some(children)) => {
                let name = self.name.clone().unwrap_or_else(|| at.to_string());
                let nested = SupervisorConfig {
                    name,
                    strategy: self.strategy.unwrap_or(Strategy::OneForOne),
                    intensity: self.intensity.unwrap_or(1),
                    period_ms: self.period_ms.unwrap_or(5000),
                    restart: self.restart,
                    children: children.clone(),
                };
                Ok(ChildSpec::Supervisor(nested.to_spec()?))
            }
            (Some(_), Some(_)) => Err(format!(
                "{at}: a child is a worker (behaviour) or a supervisor (children), not both"
            )),
            (None, None) => Err(format!(
                "{at}: a child needs a behaviour (worker) or children (supervisor)"
            )),
        }
    }
}
