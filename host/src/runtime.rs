//! The host: ties the registry, scheduler, timers, loader, watcher and swap together, and
//! is the library API tests and the `host` binary drive.
//!
//! `Host` is the generic part of every actor (OTP's `gen_server` module): it owns the
//! mailboxes and states, routes messages, calls, replies and timeouts, and runs callbacks
//! on the scheduler. Behaviours (the plugins) only ever see [`plugin_api::Ctx`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use abi_stable::std_types::RSlice;
use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use plugin_api::abi::{FromRaw, MsgKind, OutcomeCode, StatePtr};
use plugin_api::{etf, Reason};
use rustc_hash::FxHashMap;

use crate::actor::{Actor, Core, Signal};
use crate::events::{self, HostEvent, ReloadOutcome, ReloadReport};
use crate::ffi::RunCtx;
use crate::loader::{self, BehaviourVersion, LoadedLibrary};
use crate::mailbox::{Envelope, MsgBytes};
use crate::registry::{RegisterError, Registry};
use crate::scheduler::{RunQueue, Scheduler, BATCH};
use crate::supervisor::{SupEvent, Supervision, SupervisorSpec};
use crate::term;
use crate::timer::{TimerAction, TimerService, TimerTarget, Timers};
use crate::versions::{LibraryRecord, VersionInfo, VersionPolicy, VersionReport};
use crate::watcher::{self, WatchConfig, WatchEvent, Watcher};

/// Default timeout of a call, as in OTP.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(5000);

/// Where a message goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An actor id.
    Id(u64),
    /// A registered name.
    Name(&'a str),
}

impl From<u64> for Target<'_> {
    fn from(id: u64) -> Self {
        Target::Id(id)
    }
}

impl<'a> From<&'a str> for Target<'a> {
    fn from(n: &'a str) -> Self {
        Target::Name(n)
    }
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "actor {id}"),
            Target::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// Why a call did not return a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No reply within the timeout; a later reply is dropped.
    Timeout,
    /// No actor with that id or name.
    NoProc(String),
    /// The callee stopped or crashed before replying; the reason as text.
    Exit(String),
    /// The callee could not decode the request.
    BadMessage(String),
    /// The request or reply could not be encoded or decoded on the host side.
    Codec(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("timeout: no reply in time"),
            CallError::NoProc(who) => write!(f, "noproc: no actor {who}"),
            CallError::Exit(r) => write!(f, "the callee exited: {r}"),
            CallError::BadMessage(e) => write!(f, "bad message: {e}"),
            CallError::Codec(e) => write!(f, "codec error: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq)]
// Variant fields are named for what they hold (behaviour, detail, known names).
#[allow(missing_docs)]
pub enum SpawnError {
    /// No loaded library exports that behaviour.
    UnknownBehaviour { name: String, known: Vec<String> },
    /// The name is taken.
    Name(RegisterError),
    /// `init` could not decode its arguments.
    BadArgs { behaviour: String, detail: String },
    /// `init` returned an error.
    InitFailed { behaviour: String, detail: String },
    /// `init` panicked.
    InitPanicked { behaviour: String, detail: String },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::UnknownBehaviour { name, known } => {
                write!(
                    f,
                    "unknown behaviour `{name}` (loaded: {})",
                    known.join(", ")
                )
            }
            SpawnError::Name(e) => e.fmt(f),
            SpawnError::BadArgs { behaviour, detail } => {
                write!(f, "init args for `{behaviour}` do not decode: {detail}")
            }
            SpawnError::InitFailed { behaviour, detail } => {
                write!(f, "`{behaviour}` init failed: {detail}")
            }
            SpawnError::InitPanicked { behaviour, detail } => {
                write!(f, "`{behaviour}` init panicked: {detail}")
            }
        }
    }
}

impl std::error::Error for SpawnError {}

/// Errors that stop the host from starting.
#[derive(Debug)]
pub enum HostError {
    /// A configured plugin directory does not exist or cannot be read.
    PluginDir(String),
    /// The watcher could not start.
    Watch(String),
    /// Anything else, with a message.
    Other(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::PluginDir(e) => write!(f, "plugin directory: {e}"),
            HostError::Watch(e) => write!(f, "watcher: {e}"),
            HostError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for HostError {}

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Scheduler threads (0: one per core).
    pub threads: usize,
    /// Directories holding plugin libraries, loaded at start and watched.
    pub plugin_dirs: Vec<PathBuf>,
    /// Watch the directories for rebuilt libraries (`None`: load once, never reload).
    pub watch: Option<WatchConfig>,
    /// What happens to versions no actor runs any more.
    pub versions: VersionPolicy,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            threads: 0,
            plugin_dirs: Vec::new(),
            watch: Some(WatchConfig::default()),
            versions: VersionPolicy::default(),
        }
    }
}

/// Marks an interval timer's ref, so it never collides with a one-shot timer's id.
const INTERVAL_BIT: u64 = 1 << 63;

/// An interval timer: what to send, to whom, how often, and its current one-shot timer.
struct Interval {
    owner: u64,
    to: TimerTarget,
    bytes: Vec<u8>,
    every: Duration,
    current: u64,
}

/// Who waits for a reply.
///
/// Each records the callee, so when an actor dies every caller still waiting on it is
/// answered at once with its exit reason (OTP's monitor on the callee), and the requester,
/// so a dead requester's entries and timers are dropped instead of lingering.
enum Waiter {
    /// A blocking caller outside the actor system.
    External {
        tx: Sender<Result<Vec<u8>, CallError>>,
        callee: u64,
    },
    /// An actor that sent a request; its timeout timer is cancelled on reply.
    Actor { id: u64, timer: u64, callee: u64 },
}

impl Waiter {
    fn involves(&self, actor: u64) -> bool {
        match self {
            Waiter::External { callee, .. } => *callee == actor,
            Waiter::Actor { id, callee, .. } => *id == actor || *callee == actor,
        }
    }
}

/// Everything the scheduler threads, the FFI glue and the API share.
pub(crate) struct HostInner {
    pub(crate) registry: Registry,
    run_queue: OnceLock<RunQueue>,
    timers: OnceLock<Timers>,
    pending: Mutex<FxHashMap<u64, Waiter>>,
    /// Active monitors: reference -> monitored actor.
    monitors: Mutex<FxHashMap<u64, u64>>,
    /// Ids of live supervisors (children are linked to these).
    supervisor_ids: RwLock<rustc_hash::FxHashSet<u64>>,
    /// Where child exits go.
    supervision_tx: OnceLock<Sender<SupEvent>>,
    /// Set when a root supervisor gave up (the binary then exits non-zero).
    root_failed: Mutex<Option<String>>,
    /// Interval timers by their ref (which has [`INTERVAL_BIT`] set).
    intervals: Mutex<FxHashMap<u64, Interval>>,
    next_id: AtomicU64,
    next_tag: AtomicU64,
    /// Current version of each behaviour. Held for reading across a spawn and for writing
    /// across a swap, so no actor can start on a version that is being replaced.
    pub(crate) behaviours: RwLock<HashMap<Arc<str>, Arc<BehaviourVersion>>>,
    libraries: Mutex<HashMap<PathBuf, LibraryRecord>>,
    /// What happens to retired versions.
    versions: VersionPolicy,
    /// Serialises loads and swaps.
    reload_lock: Mutex<()>,
    copy_dir: tempfile::TempDir,
    subscribers: Mutex<Vec<Sender<HostEvent>>>,
    /// Counters, recent events and traces for operators.
    pub(crate) observer: crate::observe::Observer,
    /// When the host started.
    pub(crate) started: Instant,
}

/// A running host. Dropping it stops the watcher, the scheduler and the timers.
pub struct Host {
    inner: Arc<HostInner>,
    // Field order is drop order: stop the watcher and reloader first, then the scheduler.
    watcher: Option<Watcher>,
    reloader: Option<JoinHandle<()>>,
    supervision: Option<Supervision>,
    scheduler: Option<Scheduler>,
    _timers: TimerService,
}

impl Host {
    /// Starts a host: checks the plugin directories, loads every library in them, starts
    /// the scheduler and timers, and (unless disabled) the watcher that hot-swaps rebuilt
    /// libraries.
    pub fn start(mut opts: HostOptions) -> Result<Host, HostError> {
        for dir in &mut opts.plugin_dirs {
            if !dir.is_dir() {
                return Err(HostError::PluginDir(format!(
                    "{} does not exist or is not a directory",
                    dir.display()
                )));
            }
            // Absolute, canonical paths: file events arrive with absolute paths, and a
            // library is known by one path however the config spelled it.
            *dir = std::fs::canonicalize(&*dir)
                .map_err(|e| HostError::PluginDir(format!("{}: {e}", dir.display())))?;
        }
        let copy_dir = tempfile::Builder::new()
            .prefix("actor-host-")
            .tempdir()
            .map_err(|e| {
                HostError::Other(format!("cannot create the private copy directory: {e}"))
            })?;
        let inner = Arc::new(HostInner {
            registry: Registry::default(),
            run_queue: OnceLock::new(),
            timers: OnceLock::new(),
            pending: Mutex::new(FxHashMap::default()),
            monitors: Mutex::new(FxHashMap::default()),
            intervals: Mutex::new(FxHashMap::default()),
            supervisor_ids: RwLock::new(Default::default()),
            supervision_tx: OnceLock::new(),
            root_failed: Mutex::new(None),
            next_id: AtomicU64::new(1),
            next_tag: AtomicU64::new(1),
            behaviours: RwLock::new(HashMap::new()),
            libraries: Mutex::new(HashMap::new()),
            versions: opts.versions,
            reload_lock: Mutex::new(()),
            copy_dir,
            subscribers: Mutex::new(Vec::new()),
            observer: Default::default(),
            started: Instant::now(),
        });

        let weak = Arc::downgrade(&inner);
        let timers = TimerService::start(move |action| {
            if let Some(inner) = weak.upgrade() {
                inner.fire_timer(action);
            }
        });
        let _ = inner.timers.set(timers.handle());

        let threads = if opts.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            opts.threads
        };
        let run_inner = inner.clone();
        let scheduler = Scheduler::start(
            threads,
            Arc::new(move |actor: &Arc<Actor>| run_inner.run_actor(actor)),
        );
        let _ = inner.run_queue.set(scheduler.run_queue());
        let (supervision, sup_tx) = Supervision::start(Arc::downgrade(&inner));
        let _ = inner.supervision_tx.set(sup_tx);

        let found = watcher::scan(&opts.plugin_dirs, watcher::is_plugin_artifact)
            .map_err(|e| HostError::PluginDir(e.to_string()))?;
        for artifact in &found {
            inner.load_path(&artifact.path);
        }

        let mut host = Host {
            inner,
            watcher: None,
            reloader: None,
            supervision: Some(supervision),
            scheduler: Some(scheduler),
            _timers: timers,
        };
        if let Some(cfg) = opts.watch {
            let (tx, rx) = channel::unbounded();
            let w = Watcher::start(
                &opts.plugin_dirs,
                watcher::is_plugin_artifact,
                &found,
                cfg,
                tx,
            )
            .map_err(|e| HostError::Watch(e.to_string()))?;
            let inner = Arc::downgrade(&host.inner);
            host.reloader = Some(
                std::thread::Builder::new()
                    .name("reloader".into())
                    .spawn(move || reload_loop(rx, inner))
                    .map_err(|e| HostError::Other(format!("cannot start the reloader: {e}")))?,
            );
            host.watcher = Some(w);
        }
        tracing::info!(
            event = "host_started",
            threads,
            libraries = found.len(),
            behaviours = %host.behaviour_names().join(","),
            "host started"
        );
        Ok(host)
    }

    /// The shared core (for the other modules' `impl Host` blocks).
    pub(crate) fn inner(&self) -> &HostInner {
        &self.inner
    }

    /// Receives every host event from now on (reloads, loads, crashes, stops): what tests
    /// and tools wait on instead of parsing logs.
    pub fn subscribe(&self) -> Receiver<HostEvent> {
        let (tx, rx) = channel::unbounded();
        self.inner.subscribers.lock().push(tx);
        rx
    }

    /// Starts an actor of `behaviour` with ETF-encoded `args`, optionally under `name`.
    pub fn spawn(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
    ) -> Result<u64, SpawnError> {
        self.inner.spawn(behaviour, name, args)
    }

    /// Like [`Host::spawn`], encoding `args` with serde.
    pub fn spawn_with<A: serde::Serialize>(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &A,
    ) -> Result<u64, SpawnError> {
        let bytes = etf::to_vec(args).map_err(|e| SpawnError::BadArgs {
            behaviour: behaviour.into(),
            detail: e.to_string(),
        })?;
        self.spawn(behaviour, name, &bytes)
    }

    /// Sends a cast (`handle_cast`).
    pub fn cast(&self, to: Target<'_>, bytes: Vec<u8>) -> Result<(), CallError> {
        self.inner.send(to, Envelope::message(MsgKind::Cast, bytes))
    }

    /// Sends a plain message (`handle_info`).
    pub fn send(&self, to: Target<'_>, bytes: Vec<u8>) -> Result<(), CallError> {
        self.inner.send(to, Envelope::message(MsgKind::Info, bytes))
    }

    /// Calls an actor and waits for the reply, at most `timeout`.
    pub fn call(
        &self,
        to: Target<'_>,
        bytes: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.inner.call(to, bytes, timeout)
    }

    /// Typed call: encodes `msg`, decodes the reply into `R`.
    pub fn call_as<M: serde::Serialize + ?Sized, R: serde::de::DeserializeOwned>(
        &self,
        to: Target<'_>,
        msg: &M,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let bytes = etf::to_vec(msg).map_err(|e| CallError::Codec(e.to_string()))?;
        let reply = self.call(to, bytes, timeout)?;
        etf::from_slice(&reply)
            .map_err(|e| CallError::Codec(format!("{e} in reply {}", etf::display(&reply))))
    }

    /// The id registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<u64> {
        self.inner.registry.whereis(name)
    }

    /// The current version of a behaviour.
    pub fn version_of(&self, behaviour: &str) -> Option<String> {
        self.inner
            .behaviours
            .read()
            .get(behaviour)
            .map(|v| v.version.to_string())
    }

    /// The version an actor runs right now.
    pub fn actor_version(&self, to: Target<'_>) -> Option<String> {
        let actor = self.inner.resolve(to)?;
        let core = actor.core.lock();
        Some(core.version.version.to_string())
    }

    /// Names of the loaded behaviours, sorted.
    pub fn behaviour_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .behaviours
            .read()
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Number of live actors.
    pub fn actor_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// Starts a supervision tree: its children start in order; an error names the child
    /// that did not start (and the ones already started are stopped again).
    pub fn start_supervisor(&self, spec: SupervisorSpec) -> Result<u64, String> {
        self.supervision.as_ref().expect("running").start_tree(spec)
    }

    /// The name of a root supervisor that gave up, if one did.
    pub fn root_failure(&self) -> Option<String> {
        self.inner.root_failed.lock().clone()
    }

    /// Number of pending timers (`send_after` timers and request timeouts).
    pub fn pending_timers(&self) -> usize {
        self.inner.timers().pending()
    }

    /// Loads (or reloads) the library at `path` now, as the watcher would, and reports
    /// what happened.
    pub fn reload(&self, path: &Path) -> HostEvent {
        self.inner.load_path(path)
    }

    /// Number of retired (still mapped, unpinned) versions of the library at `path`.
    pub fn retired_versions(&self, path: &Path) -> usize {
        let path = library_key(path);
        self.inner
            .libraries
            .lock()
            .get(&path)
            .map_or(0, |r| r.retired.len())
    }

    /// Loads a new version of the library that provides `behaviour` now, from `file` or
    /// from its own (watched) file, and swaps to it; reports what happened.
    pub fn reload_behaviour(
        &self,
        behaviour: &str,
        file: Option<&Path>,
    ) -> Result<HostEvent, String> {
        let path = self.inner.library_of(behaviour)?;
        if let Some(f) = file {
            if !f.is_file() {
                return Err(format!("{} is not a file", f.display()));
            }
        }
        Ok(self.inner.load_into(&path, file.unwrap_or(&path)))
    }

    /// Swaps the library that provides `behaviour` back to its previous retained version:
    /// every actor's state goes through that version's `code_change` with `{down, Vsn}`.
    /// All or nothing, like any swap.
    pub fn rollback(&self, behaviour: &str) -> Result<HostEvent, String> {
        self.inner.rollback(behaviour)
    }

    /// Every loaded version of every library: current, retired and pinned, with how many
    /// actors run each.
    pub fn versions(&self) -> Vec<VersionInfo> {
        self.inner.versions()
    }

    /// Applies the version policy now (normally done after every reload): in unload mode,
    /// closes the retired versions nothing holds any more. Returns what happened.
    pub fn sweep_versions(&self) -> Vec<VersionReport> {
        self.inner.sweep_versions()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.watcher.take();
        if let Some(r) = self.reloader.take() {
            let _ = r.join();
        }
        self.supervision.take();
        self.scheduler.take();
    }
}

fn reload_loop(rx: Receiver<WatchEvent>, inner: std::sync::Weak<HostInner>) {
    // Ends when the watcher is dropped (its sender goes away).
    for ev in rx.iter() {
        let Some(inner) = inner.upgrade() else { return };
        match ev {
            WatchEvent::Changed(a) => {
                inner.load_path(&a.path);
            }
            WatchEvent::Removed { path } => {
                tracing::info!(event = "artifact_removed", path = %path.display(), "library file removed; the loaded version keeps running");
            }
            WatchEvent::Rejected { path, reason } => {
                let ev = HostEvent::Load {
                    path: path.clone(),
                    outcome: events::LoadOutcome::Rejected,
                    behaviours: Vec::new(),
                    hash: String::new(),
                    reason: Some(reason),
                };
                inner.publish(ev);
            }
        }
    }
}

impl HostInner {
    /// The scheduler's queue (for its length and idle clocks).
    pub(crate) fn run_queue_handle(&self) -> &RunQueue {
        self.run_queue()
    }

    /// Where supervision requests go, once the supervision thread runs.
    pub(crate) fn supervision_sender(&self) -> Option<&Sender<SupEvent>> {
        self.supervision_tx.get()
    }

    fn run_queue(&self) -> &RunQueue {
        self.run_queue
            .get()
            .expect("scheduler started before any actor exists")
    }

    fn timers(&self) -> &Timers {
        self.timers.get().expect("timers started first")
    }

    pub(crate) fn publish(&self, ev: HostEvent) {
        events::log(&ev);
        self.observer.record(&ev);
        self.subscribers
            .lock()
            .retain(|s| s.send(ev.clone()).is_ok());
    }

    pub(crate) fn resolve(&self, to: Target<'_>) -> Option<Arc<Actor>> {
        match to {
            Target::Id(id) => self.registry.get(id),
            Target::Name(n) => self.registry.by_name(n),
        }
    }

    /// Puts a message in an actor's mailbox and makes sure the actor will run.
    pub(crate) fn deliver(&self, actor: &Arc<Actor>, env: Envelope) {
        actor.mailbox.push(env);
        if actor.try_claim() {
            self.run_queue().push(actor.clone());
        }
    }

    /// Queues an actor whose claim the caller holds (`Actor::try_claim` returned true).
    pub(crate) fn requeue(&self, actor: Arc<Actor>) {
        self.run_queue().push(actor);
    }

    pub(crate) fn send(&self, to: Target<'_>, env: Envelope) -> Result<(), CallError> {
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

    /// `ctx.start_child`: handed to the supervision thread (a callback never waits for
    /// it); the outcome comes back to `requester` as `{reply, Tag, ...}`.
    pub(crate) fn start_child(&self, requester: u64, sup: &str, args: Vec<u8>) -> u64 {
        let tag = self.next_tag();
        if let Some(tx) = self.supervision_tx.get() {
            let _ = tx.send(SupEvent::StartChild {
                sup: sup.to_string(),
                args,
                requester,
                tag,
            });
        }
        tag
    }

    /// `ctx.spawn_link`: the spawn runs on the supervision thread (a spawn inside a
    /// callback could wait on the behaviour table while a swap waits on this very actor).
    pub(crate) fn spawn_link_async(
        &self,
        requester: u64,
        behaviour: &str,
        name: Option<String>,
        args: Vec<u8>,
    ) -> u64 {
        let tag = self.next_tag();
        if let Some(tx) = self.supervision_tx.get() {
            let _ = tx.send(SupEvent::SpawnLink {
                behaviour: behaviour.to_string(),
                name,
                args,
                requester,
                tag,
            });
        }
        tag
    }

    /// Links `a` to `b` on `a`'s side only (the other side was set at `b`'s birth).
    pub(crate) fn add_link(&self, a: u64, b: u64) {
        self.registry.with_id(a, |actor| {
            let mut links = actor.links.lock();
            if !links.contains(&b) {
                links.push(b);
            }
        });
    }

    /// Delivers `{reply, Tag, Payload}` to an actor (answers the host makes itself).
    pub(crate) fn deliver_reply(&self, to: u64, tag: u64, payload: &[u8]) {
        let msg = term::tagged("reply", tag, Some(payload));
        let _ = self.send(Target::Id(to), Envelope::message(MsgKind::Info, msg));
    }

    /// A fresh actor (or supervisor) id.
    pub(crate) fn next_actor_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register_supervisor(&self, id: u64) {
        self.supervisor_ids.write().insert(id);
    }

    pub(crate) fn unregister_supervisor(&self, id: u64) {
        self.supervisor_ids.write().remove(&id);
    }

    pub(crate) fn root_supervisor_failed(&self, name: &str) {
        *self.root_failed.lock() = Some(name.to_string());
    }

    /// Puts a system message on an actor and makes sure it runs.
    fn deliver_signal(&self, actor: &Arc<Actor>, sig: Signal) {
        actor.push_signal(sig);
        if actor.try_claim() {
            self.run_queue().push(actor.clone());
        }
    }

    /// `link/1` from actor `from`.
    pub(crate) fn link(&self, from: u64, to: Target<'_>) -> Result<(), CallError> {
        // Under the registry lock: a target found here has not run `stop_actor`'s
        // unregister yet, so it will see this link when it dies.
        self.with_target(to, |t| {
            if t.id == from {
                return;
            }
            let mut theirs = t.links.lock();
            if !theirs.contains(&from) {
                theirs.push(from);
            }
            drop(theirs);
            self.registry.with_id(from, |me| {
                let mut mine = me.links.lock();
                if !mine.contains(&t.id) {
                    mine.push(t.id);
                }
            });
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))
    }

    /// `unlink/1` from actor `from`.
    pub(crate) fn unlink(&self, from: u64, to: Target<'_>) -> Result<(), CallError> {
        let other = self
            .with_target(to, |t| {
                t.links.lock().retain(|&l| l != from);
                t.id
            })
            .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        self.registry
            .with_id(from, |me| me.links.lock().retain(|&l| l != other));
        Ok(())
    }

    /// `monitor(process, To)` from actor `watcher`; a missing target is reported at once
    /// with `noproc`.
    pub(crate) fn monitor(&self, watcher: u64, to: Target<'_>) -> u64 {
        let mref = self.next_tag();
        let found = self.with_target(to, |t| {
            t.monitored_by.lock().push((mref, watcher));
            self.monitors.lock().insert(mref, t.id);
        });
        if found.is_none() {
            let noproc = etf::to_vec(&Reason::NoProc).unwrap_or_default();
            let who = match to {
                Target::Id(id) => id,
                Target::Name(_) => 0,
            };
            let _ = self.send(
                Target::Id(watcher),
                Envelope::message(MsgKind::Info, term::down(mref, who, &noproc)),
            );
        }
        mref
    }

    /// `demonitor/1`: true if the monitor was active (no `DOWN` will be sent).
    pub(crate) fn demonitor(&self, mref: u64) -> bool {
        let Some(target) = self.monitors.lock().remove(&mref) else {
            return false;
        };
        self.registry.with_id(target, |t| {
            t.monitored_by.lock().retain(|&(r, _)| r != mref)
        });
        true
    }

    /// `process_flag(trap_exit, On)`; returns the previous value.
    pub(crate) fn set_trap_exit(&self, actor: u64, on: bool) -> bool {
        self.registry
            .with_id(actor, |a| a.trap_exit.swap(on, Ordering::SeqCst))
            .unwrap_or(false)
    }

    /// `exit/2`: an exit signal from `from` to `to`.
    pub(crate) fn exit_signal(
        &self,
        from: u64,
        to: Target<'_>,
        reason: Vec<u8>,
    ) -> Result<(), CallError> {
        self.with_target(to, |t| {
            self.deliver_signal(t, Signal::Exit { from, reason })
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))
    }

    /// Handles an actor's system messages (its core is locked). Returns true if one of
    /// them stopped it. OTP's rules: `kill` cannot be trapped and ends the actor with
    /// `killed`; a trapping actor receives `{'EXIT', From, Reason}` as a message; otherwise
    /// `normal` is ignored and any other reason ends the actor with that reason.
    fn handle_signals(&self, actor: &Arc<Actor>, core: &mut Core) -> bool {
        for sig in actor.take_signals() {
            let Signal::Exit { from, reason } = sig;
            let r = Reason::from_etf(&reason);
            if r == Reason::Kill {
                let killed = etf::to_vec(&Reason::Killed).unwrap_or_default();
                self.stop_actor(actor, core, &killed, None);
                return true;
            }
            if actor.trap_exit.load(Ordering::SeqCst) {
                let msg = term::tagged("EXIT", from, Some(&reason));
                actor.mailbox.push(Envelope::message(MsgKind::Info, msg));
            } else if r != Reason::Normal {
                self.stop_actor(actor, core, &reason, None);
                return true;
            }
        }
        false
    }

    fn next_tag(&self) -> u64 {
        self.next_tag.fetch_add(1, Ordering::Relaxed)
    }

    fn call(
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
            self.pending.lock().insert(tag, waiter);
            self.deliver(actor, Envelope::call(FromRaw { caller: 0, tag }, bytes));
        })
        .ok_or_else(|| CallError::NoProc(to.to_string()))?;
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => {
                // Whoever removes the waiter decides: if we do, a later reply finds nothing
                // and is dropped; if a replier did, it sends right after removing it.
                if self.pending.lock().remove(&tag).is_some() {
                    Err(CallError::Timeout)
                } else {
                    rx.recv().unwrap_or(Err(CallError::Timeout))
                }
            }
        }
    }

    /// An actor's asynchronous request (`Ctx::request`).
    pub(crate) fn request(
        &self,
        from: u64,
        to: Target<'_>,
        bytes: MsgBytes,
        timeout: Duration,
    ) -> Option<u64> {
        let tag = self.next_tag();
        self.with_target(to, |actor| {
            // The waiter is in place before the timer can fire (firing takes `pending`).
            let mut pending = self.pending.lock();
            let timer = self
                .timers()
                .schedule(timeout, TimerAction::RequestTimeout { tag });
            pending.insert(
                tag,
                Waiter::Actor {
                    id: from,
                    timer,
                    callee: actor.id,
                },
            );
            drop(pending);
            self.deliver(actor, Envelope::call(FromRaw { caller: from, tag }, bytes));
        })?;
        Some(tag)
    }

    /// Routes a reply to whoever waits for `tag`; false if nobody does any more.
    pub(crate) fn reply(&self, tag: u64, result: Result<&[u8], CallError>) -> bool {
        let Some(waiter) = self.pending.lock().remove(&tag) else {
            return false;
        };
        match waiter {
            Waiter::External { tx, .. } => tx.send(result.map(<[u8]>::to_vec)).is_ok(),
            Waiter::Actor { id, timer, .. } => {
                self.timers().cancel(timer);
                let msg = match &result {
                    Ok(bytes) => term::tagged("reply", tag, Some(bytes)),
                    // The callee died or refused: the requester sees a timeout-shaped
                    // message now rather than waiting for the deadline.
                    Err(_) => term::tagged("timeout", tag, None),
                };
                self.send(Target::Id(id), Envelope::message(MsgKind::Info, msg))
                    .is_ok()
            }
        }
    }

    pub(crate) fn send_after(
        &self,
        owner: u64,
        to: TimerTarget,
        bytes: Vec<u8>,
        delay: Duration,
    ) -> u64 {
        let target = match to {
            TimerTarget::Id(id) => Some(id),
            TimerTarget::Name(_) => None,
        };
        let id = self
            .timers()
            .schedule(delay, TimerAction::Send { owner, to, bytes });
        // A timer addressed to an actor dies with it (a name outlives any one actor).
        if let Some(t) = target {
            let alive = self.registry.with_id(t, |a| {
                let mut list = a.timers.lock();
                if list.len() >= 16 {
                    list.retain(|&x| self.timers().is_pending(x));
                }
                list.push(id);
            });
            if alive.is_none() {
                self.timers().cancel(id);
            }
        }
        id
    }

    /// `timer:send_interval/3`: the ref stays the same across ticks.
    pub(crate) fn send_interval(
        &self,
        owner: u64,
        to: TimerTarget,
        bytes: Vec<u8>,
        every: Duration,
    ) -> u64 {
        let iref = self.next_tag() | INTERVAL_BIT;
        let mut intervals = self.intervals.lock();
        let current = self
            .timers()
            .schedule(every, TimerAction::Interval { iref });
        intervals.insert(
            iref,
            Interval {
                owner,
                to,
                bytes,
                every,
                current,
            },
        );
        iref
    }

    /// One tick of an interval timer: deliver, and schedule the next unless its target
    /// (by id) is gone.
    fn tick_interval(&self, iref: u64) {
        let mut intervals = self.intervals.lock();
        let Some(iv) = intervals.get_mut(&iref) else {
            return;
        };
        let to = match &iv.to {
            TimerTarget::Id(id) => Target::Id(*id),
            TimerTarget::Name(n) => Target::Name(n),
        };
        let sent = self.send(to, Envelope::message(MsgKind::Info, iv.bytes.clone()));
        if sent.is_err() && matches!(iv.to, TimerTarget::Id(_)) {
            intervals.remove(&iref);
            return;
        }
        iv.current = self
            .timers()
            .schedule(iv.every, TimerAction::Interval { iref });
    }

    /// Cancels one of `owner`'s `send_after` or interval timers (never anything else).
    pub(crate) fn cancel_timer(&self, owner: u64, id: u64) -> bool {
        if id & INTERVAL_BIT != 0 {
            let mut intervals = self.intervals.lock();
            return match intervals.get(&id) {
                Some(iv) if iv.owner == owner => {
                    self.timers().cancel(iv.current);
                    intervals.remove(&id);
                    true
                }
                _ => false,
            };
        }
        self.timers().cancel_if(
            id,
            |a| matches!(a, TimerAction::Send { owner: o, .. } if *o == owner),
        )
    }

    fn fire_timer(&self, action: TimerAction) {
        match action {
            TimerAction::Send { to, bytes, .. } => {
                // A timer to a dead actor (or a name nobody holds) is dropped, as in Erlang.
                let to = match &to {
                    TimerTarget::Id(id) => Target::Id(*id),
                    TimerTarget::Name(n) => Target::Name(n),
                };
                let _ = self.send(to, Envelope::message(MsgKind::Info, bytes));
            }
            TimerAction::Interval { iref } => self.tick_interval(iref),
            TimerAction::RequestTimeout { tag } => {
                let waiter = self.pending.lock().remove(&tag);
                if let Some(Waiter::Actor { id, .. }) = waiter {
                    if let Some(actor) = self.registry.get(id) {
                        self.deliver(
                            &actor,
                            Envelope::message(MsgKind::Info, term::tagged("timeout", tag, None)),
                        );
                    }
                }
            }
        }
    }

    fn spawn(&self, behaviour: &str, name: Option<&str>, args: &[u8]) -> Result<u64, SpawnError> {
        self.spawn_linked(behaviour, name, args, None)
    }

    /// Spawns, linked from birth to `supervisor` (so no exit can slip by unseen).
    pub(crate) fn spawn_linked(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
        supervisor: Option<u64>,
    ) -> Result<u64, SpawnError> {
        // Held until the actor is registered: a swap (write lock) either sees this actor
        // or happens before it and we start on the new version.
        let table = self.behaviours.read();
        let version = table.get(behaviour).cloned().ok_or_else(|| {
            let mut known: Vec<String> = table.keys().map(|k| k.to_string()).collect();
            known.sort();
            SpawnError::UnknownBehaviour {
                name: behaviour.to_string(),
                known,
            }
        })?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let actor = Arc::new(Actor::new(
            id,
            name.map(str::to_string),
            version.clone(),
            StatePtr::NULL,
        ));
        // Hold the run claim while `init` runs: messages sent to the actor meanwhile
        // (even by itself) only queue, and no worker blocks on its core; they run after
        // `init`, when the claim is released below.
        let claimed = actor.try_claim();
        debug_assert!(claimed, "a new actor is idle");
        if let Some(s) = supervisor {
            actor.links.lock().push(s);
        }
        let mut core = actor.core.lock();
        self.registry
            .insert(actor.clone())
            .map_err(SpawnError::Name)?;
        let mut state = StatePtr::NULL;
        let ctx = RunCtx::new(self, id, &version, false);
        let out = (version.desc.init)(RSlice::from_slice(args), &ctx.raw(), &mut state);
        let code = out.code;
        let detail = String::from_utf8_lossy(&out.detail).into_owned();
        drop(out);
        let err = |detail: String| {
            let behaviour = behaviour.to_string();
            match code {
                OutcomeCode::BadMessage => SpawnError::BadArgs { behaviour, detail },
                OutcomeCode::Panic => SpawnError::InitPanicked { behaviour, detail },
                _ => SpawnError::InitFailed { behaviour, detail },
            }
        };
        if code != OutcomeCode::Ok {
            core.alive = false;
            drop(core);
            self.registry.remove(id);
            self.fail_mailbox(&actor, "init failed");
            let e = err(detail);
            tracing::warn!(event = "spawn_failed", behaviour, name = name.unwrap_or(""), error = %e, "actor did not start");
            return Err(e);
        }
        core.state = state;
        drop(core);
        drop(table);
        if actor.release() {
            self.run_queue().push(actor);
        }
        Ok(id)
    }

    /// Runs up to `BATCH` messages of one actor (scheduler callback). Returns whether the
    /// actor must be queued again.
    fn run_actor(&self, actor: &Arc<Actor>) -> bool {
        thread_local! {
            /// This worker's batch buffer, reused so taking a batch allocates nothing.
            static BATCH_BUF: std::cell::RefCell<VecDeque<Envelope>> = const { std::cell::RefCell::new(VecDeque::new()) };
        }
        let mut core = actor.core.lock();
        if !core.alive {
            return false;
        }
        let version = core.version.clone();
        let ctx = RunCtx::new(
            self,
            actor.id,
            &version,
            actor.traced.load(Ordering::Relaxed),
        );
        let raw = ctx.raw();
        if actor.has_signals() && !actor.is_suspended() && self.handle_signals(actor, &mut core) {
            return false;
        }
        let mut batch = BATCH_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        actor.mailbox.take_batch(BATCH, &mut batch);
        let mut handled = 0u64;
        let mut stopped = false;
        while let Some(env) = batch.pop_front() {
            // Invariant 3 in `actor`: a suspended actor handles nothing more.
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
            if actor.traced.load(Ordering::Relaxed) {
                let peer = match env.from.caller {
                    0 => String::new(),
                    c => format!("<0.{c}.0>"),
                };
                self.trace(
                    actor.id,
                    "in",
                    crate::observe::kind_name(env.kind),
                    peer,
                    &env.bytes,
                );
            }
            let out = (version.desc.handle)(
                core.state,
                env.kind,
                env.from,
                RSlice::from_slice(&env.bytes),
                &raw,
            );
            handled += 1;
            if out.code == OutcomeCode::Ok {
                continue;
            }
            let code = out.code;
            let detail: Vec<u8> = out.detail.to_vec();
            drop(out);
            match code {
                OutcomeCode::BadMessage => {
                    let error = String::from_utf8_lossy(&detail).into_owned();
                    tracing::warn!(
                        event = "bad_message",
                        actor = actor.id,
                        name = actor.name.as_deref().unwrap_or(""),
                        behaviour = %version.name,
                        version = %version.version,
                        kind = ?env.kind,
                        message = %etf::display(&env.bytes),
                        error = %error,
                        "message dropped: it does not decode"
                    );
                    if env.kind == MsgKind::Call {
                        self.reply(env.from.tag, Err(CallError::BadMessage(error)));
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
                    let reason =
                        etf::to_vec(&Reason::error(format!("panic: {text}"))).unwrap_or_default();
                    actor.mailbox.put_back(&mut batch);
                    self.stop_actor(actor, &mut core, &reason, Some((text, message)));
                    stopped = true;
                    break;
                }
            }
        }
        actor.mailbox.put_back(&mut batch);
        BATCH_BUF.with(|b| *b.borrow_mut() = batch);
        actor.handled.fetch_add(handled, Ordering::Relaxed);
        if stopped {
            return false;
        }
        drop(core);
        actor.release()
    }

    /// Stops an actor whose core is locked: `terminate`, free the state, unregister, fail
    /// the calls still queued. `crash` carries the panic text and the message being handled.
    fn stop_actor(
        &self,
        actor: &Arc<Actor>,
        core: &mut Core,
        reason: &[u8],
        crash: Option<(String, String)>,
    ) {
        let version = core.version.clone();
        let ctx = RunCtx::new(
            self,
            actor.id,
            &version,
            actor.traced.load(Ordering::Relaxed),
        );
        let state = std::mem::replace(&mut core.state, StatePtr::NULL);
        core.alive = false;
        let out = (version.desc.terminate)(state, RSlice::from_slice(reason), &ctx.raw());
        let terminate_failed = (out.code != OutcomeCode::Ok)
            .then(|| String::from_utf8_lossy(&out.detail).into_owned());
        drop(out);
        self.registry.remove(actor.id);
        self.observer
            .actor_stopped(actor.handled.load(Ordering::Relaxed));
        let reason_text = etf::display(reason);
        self.fail_mailbox(actor, &reason_text);
        self.fail_waiters(actor.id, &reason_text);
        self.notify_links_and_monitors(actor, reason);
        let ev = match crash {
            Some((panic, message)) => HostEvent::Crash {
                actor: actor.id,
                name: actor.name.clone(),
                behaviour: version.name.to_string(),
                version: version.version.to_string(),
                reason: reason_text,
                panic,
                message,
            },
            None => HostEvent::Stopped {
                actor: actor.id,
                name: actor.name.clone(),
                behaviour: version.name.to_string(),
                version: version.version.to_string(),
                reason: reason_text,
            },
        };
        self.publish(ev);
        if let Some(t) = terminate_failed {
            tracing::warn!(event = "terminate_failed", actor = actor.id, behaviour = %version.name, error = %t, "terminate did not complete");
        }
    }

    /// Settles every pending call that involves a dead actor: callers waiting on it get its
    /// exit reason now (requesting actors get `{timeout, Ref}`), and its own outstanding
    /// requests are dropped with their timers. Runs after the actor is unregistered, so no
    /// new waiter on it can appear (calls register under the registry lock).
    fn fail_waiters(&self, dead: u64, reason: &str) {
        let settled: Vec<(u64, Waiter)> = self
            .pending
            .lock()
            .extract_if(|_, w| w.involves(dead))
            .collect();
        for (tag, waiter) in settled {
            match waiter {
                Waiter::External { tx, .. } => {
                    let _ = tx.send(Err(CallError::Exit(reason.to_string())));
                }
                Waiter::Actor { id, timer, .. } => {
                    self.timers().cancel(timer);
                    if id != dead {
                        let msg = term::tagged("timeout", tag, None);
                        let _ = self.send(Target::Id(id), Envelope::message(MsgKind::Info, msg));
                    }
                }
            }
        }
    }

    /// Sends the dead actor's exit signal to every linked actor and a `DOWN` message to
    /// every monitor (after it was unregistered, so nobody can add more).
    fn notify_links_and_monitors(&self, actor: &Actor, reason: &[u8]) {
        let links = std::mem::take(&mut *actor.links.lock());
        for l in links {
            if self.supervisor_ids.read().contains(&l) {
                if let Some(tx) = self.supervision_tx.get() {
                    let _ = tx.send(SupEvent::Exit {
                        sup: l,
                        child: actor.id,
                        reason: reason.to_vec(),
                    });
                }
                continue;
            }
            self.registry.with_id(l, |la| {
                la.links.lock().retain(|&x| x != actor.id);
                self.deliver_signal(
                    la,
                    Signal::Exit {
                        from: actor.id,
                        reason: reason.to_vec(),
                    },
                );
            });
        }
        for t in std::mem::take(&mut *actor.timers.lock()) {
            self.timers().cancel(t);
        }
        let monitors = std::mem::take(&mut *actor.monitored_by.lock());
        for (mref, watcher) in monitors {
            // A concurrent demonitor that won the race means no DOWN.
            if self.monitors.lock().remove(&mref).is_some() {
                let msg = term::down(mref, actor.id, reason);
                let _ = self.send(Target::Id(watcher), Envelope::message(MsgKind::Info, msg));
            }
        }
    }

    /// Answers every call still queued for a dead actor with its exit reason.
    fn fail_mailbox(&self, actor: &Actor, reason: &str) {
        for env in actor.mailbox.drain() {
            if env.kind == MsgKind::Call {
                self.reply(env.from.tag, Err(CallError::Exit(reason.to_string())));
            }
        }
    }

    /// Loads the library at `path`: a first load registers its behaviours, a later one
    /// swaps every actor of them to the new version. Logs and publishes the outcome.
    pub(crate) fn load_path(&self, path: &Path) -> HostEvent {
        self.load_into(path, path)
    }

    /// Loads `file` as the next version of the library known by `path` (the watched file;
    /// `file` is the same path, or another build given by an operator).
    pub(crate) fn load_into(&self, path: &Path, file: &Path) -> HostEvent {
        let key = library_key(path);
        let file = if file == path { key.as_path() } else { file };
        let path = key.as_path();
        let _serial = self.reload_lock.lock();
        let previous = match self.libraries.lock().get(path) {
            None => None,
            Some(rec) => match rec.check_room(&self.versions) {
                Ok(()) => Some(rec.current.clone()),
                Err(reason) => {
                    let ev = rejected(&rec.current, reason);
                    drop(_serial);
                    self.publish(ev.clone());
                    return ev;
                }
            },
        };
        let started = Instant::now();
        let lib = match loader::load(file, self.copy_dir.path()) {
            Ok(lib) => Arc::new(lib),
            Err(e) => {
                let reason = e.to_string();
                let ev = match &previous {
                    Some(old) => rejected(old, reason),
                    None => HostEvent::Load {
                        path: path.to_path_buf(),
                        outcome: events::LoadOutcome::Rejected,
                        behaviours: Vec::new(),
                        hash: String::new(),
                        reason: Some(reason),
                    },
                };
                self.publish(ev.clone());
                return ev;
            }
        };
        let load_time = started.elapsed();
        match previous {
            None => self.install_first(path, lib, load_time),
            Some(old) if old.hash == lib.hash => {
                // Same bytes as what runs: nothing to do (the watcher normally filters this).
                HostEvent::Load {
                    path: path.to_path_buf(),
                    outcome: events::LoadOutcome::Unchanged,
                    behaviours: names(&lib),
                    hash: lib.short_hash(),
                    reason: None,
                }
            }
            Some(old) => {
                let ev = crate::swap::swap(self, &old, &lib, crate::swap::Direction::Up);
                drop(old);
                self.settle_swap(path, ev, |rec| Some(rec.advance(lib)))
            }
        }
    }

    fn install_first(
        &self,
        path: &Path,
        lib: Arc<LoadedLibrary>,
        load_time: Duration,
    ) -> HostEvent {
        let mut table = self.behaviours.write();
        let clash = lib.behaviours.iter().find_map(|b| {
            let other = table.get(&b.name)?;
            let libs = self.libraries.lock();
            let owner = libs.iter().find(|(_, r)| {
                r.current
                    .behaviour(&b.name)
                    .is_some_and(|v| v.hash == other.hash)
            });
            Some(format!(
                "behaviour `{}` is already provided by {}",
                b.name,
                owner.map_or("another library".to_string(), |(p, _)| p
                    .display()
                    .to_string())
            ))
        });
        let ev = if let Some(reason) = clash {
            HostEvent::Load {
                path: path.to_path_buf(),
                outcome: events::LoadOutcome::Rejected,
                behaviours: names(&lib),
                hash: lib.short_hash(),
                reason: Some(reason),
            }
        } else {
            for b in &lib.behaviours {
                table.insert(b.name.clone(), b.clone());
            }
            let ev = HostEvent::Load {
                path: path.to_path_buf(),
                outcome: events::LoadOutcome::Loaded {
                    load_us: load_time.as_micros() as u64,
                },
                behaviours: lib
                    .behaviours
                    .iter()
                    .map(|b| format!("{}@{}", b.name, b.version))
                    .collect(),
                hash: lib.short_hash(),
                reason: None,
            };
            self.libraries
                .lock()
                .insert(path.to_path_buf(), LibraryRecord::new(path, lib));
            ev
        };
        drop(table);
        self.publish(ev.clone());
        ev
    }
}

impl HostInner {
    /// The library file that provides `behaviour` now.
    fn library_of(&self, behaviour: &str) -> Result<PathBuf, String> {
        self.libraries
            .lock()
            .iter()
            .find(|(_, r)| r.current.behaviour(behaviour).is_some())
            .map(|(p, _)| p.clone())
            .ok_or_else(|| format!("no loaded library provides behaviour `{behaviour}`"))
    }

    /// Swaps `behaviour`'s library back to its most recent retired version.
    fn rollback(&self, behaviour: &str) -> Result<HostEvent, String> {
        let path = self.library_of(behaviour)?;
        let _serial = self.reload_lock.lock();
        let (current, target) = {
            let libs = self.libraries.lock();
            let rec = libs.get(&path).ok_or("the library went away")?;
            let target = rec.retired.last().cloned().ok_or_else(|| {
                format!(
                    "no earlier version of {} is retained to roll back to \
                     (pinned and unloaded versions cannot be swapped in; see [versions] retain)",
                    path.display()
                )
            })?;
            (rec.current.clone(), target)
        };
        let ev = crate::swap::swap(self, &current, &target, crate::swap::Direction::Down);
        drop(current);
        Ok(self.settle_swap(&path, ev, |rec| rec.restore(&target.hash)))
    }

    /// After a swap of the library at `path`: if it succeeded, `commit` makes the new
    /// version current (retiring the old one) and the version policy is applied; then the
    /// reload event and every version's fate are published, in that order.
    fn settle_swap(
        &self,
        path: &Path,
        ev: HostEvent,
        commit: impl FnOnce(&mut LibraryRecord) -> Option<VersionReport>,
    ) -> HostEvent {
        let mut fates = Vec::new();
        if matches!(&ev, HostEvent::Reload(r) if r.outcome == ReloadOutcome::Ok) {
            let mut libs = self.libraries.lock();
            if let Some(rec) = libs.get_mut(path) {
                fates.extend(commit(rec));
                fates.extend(rec.sweep(&self.versions));
            }
        }
        self.publish(ev.clone());
        for f in fates {
            self.publish(HostEvent::Version(f));
        }
        ev
    }

    fn versions(&self) -> Vec<VersionInfo> {
        // Actors per behaviour version, counted once (a version is one content hash).
        let mut per_hash: HashMap<loader::ContentHash, usize> = HashMap::new();
        for a in self.registry.select(|_| true) {
            let v = a.core.lock().version.hash;
            *per_hash.entry(v).or_default() += 1;
        }
        let libs = self.libraries.lock();
        let mut paths: Vec<&PathBuf> = libs.keys().collect();
        paths.sort();
        paths
            .into_iter()
            .flat_map(|p| libs[p].describe(|l| per_hash.get(&l.hash).copied().unwrap_or(0)))
            .collect()
    }

    fn sweep_versions(&self) -> Vec<VersionReport> {
        let _serial = self.reload_lock.lock();
        let fates: Vec<VersionReport> = self
            .libraries
            .lock()
            .values_mut()
            .flat_map(|r| r.sweep(&self.versions))
            .filter(|f| !matches!(f.fate, crate::versions::VersionFate::CapReached { .. }))
            .collect();
        for f in &fates {
            self.publish(HostEvent::Version(f.clone()));
        }
        fates
    }
}

/// The name a library is known by: its directory made canonical, and its file name.
///
/// `lib.so`, `./lib.so` and `dir/../dir/lib.so` are one library. The file name itself is
/// not resolved: a watched `libx.so` that is a symlink stays `libx.so` when the link is
/// repointed (`ln -sfn` deploys), instead of becoming whatever file it points to now.
fn library_key(path: &Path) -> PathBuf {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return path.to_path_buf();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir)
        .map(|d| d.join(name))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn names(lib: &LoadedLibrary) -> Vec<String> {
    lib.behaviours.iter().map(|b| b.name.to_string()).collect()
}

/// A reload refused before any actor was touched.
fn rejected(old: &LoadedLibrary, reason: String) -> HostEvent {
    HostEvent::Reload(ReloadReport {
        library: old.source.clone(),
        behaviours: old
            .behaviours
            .iter()
            .map(|b| events::VersionChange {
                behaviour: b.name.to_string(),
                from: b.version.to_string(),
                to: "?".into(),
                actors: 0,
            })
            .collect(),
        pause_us: 0,
        outcome: ReloadOutcome::Rejected,
        reason: Some(reason),
    })
}
