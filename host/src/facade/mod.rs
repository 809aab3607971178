//! The [`Host`]: the one type a user of the library holds. It assembles the layers — the
//! actor system, the code server, supervision, the observer — each of which owns its own
//! state, and offers their operations with typed errors. It holds no state of its own
//! beyond the handles.

mod cluster;
mod errors;
mod operator;
mod services;
mod supervision;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, Receiver};
use plugin_api::abi::MsgKind;
use plugin_api::etf;

pub use errors::HostError;
pub use operator::StatsSampler;

use crate::code::versions::{VersionInfo, VersionPolicy, VersionReport};
use crate::code::watcher::{self, WatchConfig, Watcher};
use crate::code::{self, Code, ReloadError};
use crate::dist::{self, DistOptions};
use crate::observe::{Event, HostEvent, Observer};
use crate::supervisor::{StartError, Supervision, SupervisorSpec};
use crate::system::mailbox::Envelope;
use crate::system::scheduler::Running;
use crate::system::scheduler::Scheduler;
use crate::system::timer::{TimerService, Timers};
use crate::system::watchdog::Watchdog;
use crate::system::{Actor, CallError, SpawnError, System, Target, WatchdogConfig};
use crate::util::ids::ActorId;

/// Default timeout of a call, as in OTP.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(5000);

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Scheduler threads (0: one per core).
    pub threads: usize,
    /// Directories holding plugin libraries, loaded at start and watched.
    pub plugin_dirs: Vec<PathBuf>,
    /// Load only these libraries from the directories: crate names (`counter`) or file
    /// names (`libcounter.so`). `None`: every `lib*.so` there.
    pub libraries: Option<Vec<String>>,
    /// Watch the directories for rebuilt libraries (`None`: load once, never reload).
    pub watch: Option<WatchConfig>,
    /// What happens to versions no actor runs any more.
    pub versions: VersionPolicy,
    /// Deadlines of a swap (`[reload]`).
    pub reload: code::Limits,
    /// The watchdog (`[watchdog]`).
    pub watchdog: WatchdogConfig,
    /// Stack size of each scheduler thread, in bytes.
    pub stack_size: usize,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            threads: 0,
            plugin_dirs: Vec::new(),
            libraries: None,
            watch: Some(WatchConfig::default()),
            versions: VersionPolicy::default(),
            reload: code::Limits::default(),
            watchdog: WatchdogConfig::default(),
            stack_size: crate::system::scheduler::DEFAULT_STACK_SIZE,
        }
    }
}

/// A running host. Dropping it stops the watcher, the supervision trees (children in
/// reverse order, with `terminate`), the scheduler and the timers.
pub struct Host {
    system: Arc<System>,
    code: Arc<Code>,
    observer: Arc<Observer>,
    // Field order is drop order: stop the watcher and reloader first, then supervision,
    // then the scheduler.
    watcher: Option<Watcher>,
    reloader: Option<JoinHandle<()>>,
    supervision: Option<Supervision>,
    _watchdog: Option<Watchdog>,
    // The node goes down before the actors stop: peers see `noconnection`, not each exit.
    node: Option<dist::Node>,
    /// How other hosts' `host ctl --node` requests are answered (set by the control server).
    ctl_handler: Arc<std::sync::OnceLock<services::CtlHandler>>,
    scheduler: Option<Scheduler>,
    _timers: TimerService,
}

impl Host {
    /// Starts a host: checks the plugin directories, loads every library in them, starts
    /// the scheduler and timers, and (unless disabled) the watcher that hot-swaps rebuilt
    /// libraries.
    pub fn start(opts: HostOptions) -> Result<Host, HostError> {
        Host::start_node(opts, None)
    }

    /// Starts a host that is also a node of an Erlang cluster (`dist`: its name, cookie,
    /// EPMD): registered with EPMD and accepting peers before this returns.
    pub fn start_node(mut opts: HostOptions, dist: Option<DistOptions>) -> Result<Host, HostError> {
        opts.versions.check().map_err(HostError::Policy)?;
        for dir in &mut opts.plugin_dirs {
            if !dir.is_dir() {
                return Err(HostError::PluginDir {
                    dir: dir.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "does not exist or is not a directory",
                    ),
                });
            }
            // Absolute, canonical paths: file events arrive with absolute paths, and a
            // library is known by one path however the config spelled it.
            *dir = std::fs::canonicalize(&*dir).map_err(|source| HostError::PluginDir {
                dir: dir.clone(),
                source,
            })?;
            crate::code::loader::check_owner(dir, true).map_err(|why| HostError::PluginDir {
                dir: dir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
            })?;
        }
        // Copies a killed host could not delete go first; ours is named with our pid.
        let swept = crate::code::loader::sweep_stale_copies(&std::env::temp_dir());
        let copy_dir = tempfile::Builder::new()
            .prefix(&crate::code::loader::copy_dir_prefix())
            .tempdir()
            .map_err(HostError::CopyDir)?;
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            opts.threads
        };

        // Bottom up: each layer gets the handles of those below it, nothing is filled in
        // after construction.
        let observer = Arc::new(Observer::default());
        let mut scheduler = Scheduler::new(threads, opts.stack_size);
        let timers = Timers::new();
        let (upcalls_tx, upcalls_rx) = channel::unbounded();
        let bound = dist
            .map(|d| dist::Bound::bind(&d, observer.clone()))
            .transpose()
            .map_err(HostError::Dist)?;
        let remote = match &bound {
            Some(b) => b.signals(),
            None => Arc::new(crate::system::remote::NoRemote),
        };
        let system = Arc::new(System::new(
            scheduler.run_queue(),
            timers.clone(),
            upcalls_tx,
            observer.clone(),
            opts.watchdog,
            remote,
        ));
        let weak = Arc::downgrade(&system);
        let timer_service = TimerService::start_on(timers, move |action| {
            if let Some(system) = weak.upgrade() {
                system.fire_timer(action);
            }
        });
        let run = system.clone();
        scheduler.start(Arc::new(move |actor: &Arc<Actor>, r: &Running| {
            run.run_actor(actor, r)
        }));
        let watchdog = Watchdog::start(Arc::downgrade(&system)).map_err(HostError::Thread)?;
        let mut reload = opts.reload;
        reload.stack_size = opts.stack_size;
        let code = Arc::new(Code::new(
            system.clone(),
            observer.clone(),
            opts.versions,
            copy_dir,
            reload,
        ));
        let supervision = Supervision::start(
            supervision::Children {
                system: system.clone(),
                code: code.clone(),
                observer: observer.clone(),
                starter: parking_lot::Mutex::new(None),
                linker: parking_lot::Mutex::new(None),
                stack_size: opts.stack_size,
            },
            upcalls_rx,
        );

        let found = watcher::scan(&opts.plugin_dirs, watcher::is_plugin_artifact).map_err(|e| {
            HostError::PluginDir {
                dir: opts.plugin_dirs.first().cloned().unwrap_or_default(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        let selection = code::Selection(opts.libraries.clone());
        let found: Vec<_> = found
            .into_iter()
            .filter(|a| selection.wants(&a.path))
            .collect();
        if let Some(names) = &opts.libraries {
            for name in names {
                let file = code::Selection::file_name(name);
                if !found
                    .iter()
                    .any(|a| a.path.file_name().and_then(|f| f.to_str()) == Some(&file))
                {
                    return Err(HostError::NoSuchLibrary {
                        name: name.clone(),
                        file,
                        dirs: opts.plugin_dirs.clone(),
                    });
                }
            }
        }
        for artifact in &found {
            code.load_path(&artifact.path);
        }

        let ctl_handler = Arc::new(std::sync::OnceLock::new());
        let node = bound
            .map(|b| {
                let services = Arc::new(services::NodeServices {
                    system: system.clone(),
                    code: code.clone(),
                    observer: observer.clone(),
                    ctl: ctl_handler.clone(),
                });
                b.start(system.clone(), services)
            })
            .transpose()
            .map_err(HostError::Dist)?;
        let mut host = Host {
            system,
            code,
            observer,
            watcher: None,
            reloader: None,
            supervision: Some(supervision),
            _watchdog: Some(watchdog),
            node,
            ctl_handler,
            scheduler: Some(scheduler),
            _timers: timer_service,
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
            .map_err(HostError::Watch)?;
            let code = Arc::downgrade(&host.code);
            host.reloader = Some(
                std::thread::Builder::new()
                    .name("reloader".into())
                    .spawn(move || code::reload_loop(rx, code, selection))
                    .map_err(HostError::Thread)?,
            );
            host.watcher = Some(w);
        }
        host.observer.emit(Event::HostStarted {
            threads,
            libraries: found.len(),
            behaviours: &host.behaviour_names().join(","),
            stale_copies_removed: (swept > 0).then_some(swept),
        });
        Ok(host)
    }

    /// This host's node name, if it is a distributed node.
    pub fn node_name(&self) -> Option<&str> {
        self.node.as_ref().map(|n| n.name())
    }

    /// The connected nodes (`host ctl nodes`).
    pub fn nodes(&self) -> Vec<crate::observe::model::NodeRow> {
        self.node.as_ref().map(|n| n.nodes()).unwrap_or_default()
    }

    /// Connects to another node (`name@IP`, found through EPMD); true once connected.
    pub fn connect_node(&self, node: &str) -> bool {
        self.node.as_ref().is_some_and(|n| n.connect(node))
    }

    /// Receives every host event from now on (reloads, loads, crashes, stops): what tests
    /// and tools wait on instead of parsing logs.
    pub fn subscribe(&self) -> Receiver<HostEvent> {
        self.observer.subscribe()
    }

    /// Starts an actor of `behaviour` with ETF-encoded `args`, optionally under `name`.
    pub fn spawn(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
    ) -> Result<ActorId, SpawnError> {
        self.code.spawn(behaviour, name, args, None)
    }

    /// Like [`Host::spawn`], encoding `args` with serde.
    pub fn spawn_with<A: serde::Serialize>(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &A,
    ) -> Result<ActorId, SpawnError> {
        let bytes = etf::to_vec(args).map_err(|e| SpawnError::BadArgs {
            behaviour: behaviour.into(),
            detail: e.to_string(),
        })?;
        self.spawn(behaviour, name, &bytes)
    }

    /// Sends a cast (`handle_cast`).
    pub fn cast(&self, to: Target<'_>, bytes: Vec<u8>) -> Result<(), CallError> {
        self.system
            .send(to, Envelope::message(MsgKind::Cast, bytes))
    }

    /// Sends a plain message (`handle_info`).
    pub fn send(&self, to: Target<'_>, bytes: Vec<u8>) -> Result<(), CallError> {
        self.system
            .send(to, Envelope::message(MsgKind::Info, bytes))
    }

    /// Calls an actor and waits for the reply, at most `timeout`.
    pub fn call(
        &self,
        to: Target<'_>,
        bytes: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.system.call(to, bytes, timeout)
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
    pub fn whereis(&self, name: &str) -> Option<ActorId> {
        self.system.registry.whereis(name)
    }

    /// The current version of a behaviour.
    pub fn version_of(&self, behaviour: &str) -> Option<String> {
        self.code.version_of(behaviour)
    }

    /// The version an actor runs right now.
    pub fn actor_version(&self, to: Target<'_>) -> Option<String> {
        let actor = self.system.resolve(to)?;
        Some(actor.running_version().version.to_string())
    }

    /// Names of the loaded behaviours, sorted.
    pub fn behaviour_names(&self) -> Vec<String> {
        self.code.behaviour_names()
    }

    /// Number of live actors.
    pub fn actor_count(&self) -> usize {
        self.system.registry.len()
    }

    /// Starts a supervision tree: its children start in order; an error names the child
    /// that did not start (and the ones already started are stopped again).
    pub fn start_supervisor(&self, spec: SupervisorSpec) -> Result<ActorId, StartError> {
        self.supervision().start_tree(spec)
    }

    /// The name of a root supervisor that gave up, if one did.
    pub fn root_failure(&self) -> Option<String> {
        self.supervision.as_ref().and_then(|s| s.root_failure())
    }

    /// Number of pending timers (`send_after` timers and request timeouts).
    pub fn pending_timers(&self) -> usize {
        self.system.timers().pending()
    }

    /// Kills the actor once more than `max` messages wait in its mailbox (0: no limit),
    /// with a reason that says so (OTP's `max_heap_size`); false if it is not alive.
    pub fn set_max_mailbox(&self, to: Target<'_>, max: usize) -> bool {
        self.system.set_max_mailbox(to, max)
    }

    /// The mailbox length that logs `mailbox_high_water` for any actor (0: never).
    pub fn set_mailbox_warn_at(&self, len: usize) {
        self.system.set_mailbox_warn_at(len);
    }

    /// Loads (or reloads) the library at `path` now, as the watcher would, and reports
    /// what happened.
    pub fn reload(&self, path: &Path) -> HostEvent {
        self.code.load_path(path)
    }

    /// Number of retired (still mapped, unpinned) versions of the library at `path`.
    pub fn retired_versions(&self, path: &Path) -> usize {
        self.code.retired_versions(path)
    }

    /// Loads a new version of the library that provides `behaviour` now, from `file` or
    /// from its own (watched) file, and swaps to it; reports what happened.
    pub fn reload_behaviour(
        &self,
        behaviour: &str,
        file: Option<&Path>,
    ) -> Result<HostEvent, ReloadError> {
        self.reload_with(behaviour, file, &crate::code::EXTRA_NIL)
    }

    /// [`Host::reload_behaviour`] with `extra` (ETF) handed to every `code_change`, as
    /// OTP's release handler passes `Extra`.
    pub fn reload_with(
        &self,
        behaviour: &str,
        file: Option<&Path>,
        extra: &[u8],
    ) -> Result<HostEvent, ReloadError> {
        let path = self.code.library_of(behaviour)?;
        if let Some(f) = file {
            if !f.is_file() {
                return Err(ReloadError::NotAFile(f.to_path_buf()));
            }
        }
        Ok(self.code.load_into(&path, file.unwrap_or(&path), extra))
    }

    /// Swaps the library that provides `behaviour` back to its previous retained version
    /// (the previous one in load order): each actor's state is written down by the running
    /// (newer) version's `downgrade`, then read by the older version's `code_change` with
    /// `{down, Vsn}`. All or nothing, like any swap.
    pub fn rollback(&self, behaviour: &str) -> Result<HostEvent, ReloadError> {
        self.rollback_with(behaviour, &crate::code::EXTRA_NIL)
    }

    /// [`Host::rollback`] with `extra` (ETF) handed to `downgrade` and `code_change`.
    pub fn rollback_with(&self, behaviour: &str, extra: &[u8]) -> Result<HostEvent, ReloadError> {
        self.code.rollback(behaviour, extra)
    }

    /// Every loaded version of every library: current, retired and pinned, with how many
    /// actors run each.
    pub fn versions(&self) -> Vec<VersionInfo> {
        self.code.versions()
    }

    /// Applies the version policy now (normally done after every reload): in unload mode,
    /// closes the retired versions nothing holds any more. Returns what happened.
    pub fn sweep_versions(&self) -> Vec<VersionReport> {
        self.code.sweep_versions()
    }

    fn supervision(&self) -> &Supervision {
        self.supervision
            .as_ref()
            .expect("supervision runs until the host is dropped")
    }
}

impl Host {
    /// The orderly stop: the watcher, then every supervision tree in reverse order (each
    /// child asked with `shutdown`, so `terminate` runs, and killed after its shutdown
    /// time), then the unsupervised actors, newest first, asked the same way. Those still
    /// there when three quarters of the time to `deadline` have passed are killed
    /// (no `terminate`). Actors stopped with `shutdown` are not logged one by one.
    /// Returns the actors that did not stop by themselves in time —
    /// killed, or abandoned inside a callback — as `<0.N.0> (name, behaviour)`.
    ///
    /// Runs on the caller's thread and may outlive `deadline` if a supervision tree's own
    /// shutdown times are longer: the binary calls it on a thread it can abandon. The
    /// scheduler and timers stop when the host is dropped afterwards.
    pub fn shutdown(&mut self, deadline: std::time::Instant) -> Vec<String> {
        use std::time::Instant;
        let started = Instant::now();
        self.observer.set_stopping();
        self.watcher.take();
        if let Some(r) = self.reloader.take() {
            let _ = r.join();
        }
        self.supervision.take();
        let describe = |a: &Actor| match &a.name {
            Some(n) => format!("{} ({n}, {})", a.id, a.behaviour),
            None => format!("{} ({})", a.id, a.behaviour),
        };
        let shutdown = crate::util::terms::reason(&plugin_api::Reason::Shutdown);
        let kill = crate::util::terms::reason(&plugin_api::Reason::Kill);
        for a in self.system.registry.select(|_| true).iter().rev() {
            let _ = self
                .system
                .exit_signal(ActorId(0), Target::Id(a.id), shutdown.clone());
        }
        let kill_at = started + deadline.saturating_duration_since(started) * 3 / 4;
        let mut killed: Vec<String> = Vec::new();
        while self.system.registry.len() > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if killed.is_empty() && now >= kill_at {
                for a in self.system.registry.select(|_| true) {
                    killed.push(describe(&a));
                    let _ = self
                        .system
                        .exit_signal(ActorId(0), Target::Id(a.id), kill.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for a in self.system.registry.select(|_| true) {
            let d = describe(&a);
            if !killed.contains(&d) {
                killed.push(d);
            }
        }
        killed
    }

    /// Turns the watchdog on or off while running (`[watchdog] enabled` at start); off,
    /// workers publish nothing per message and no callback is watched.
    pub fn set_watchdog(&self, on: bool) {
        self.system.set_watchdog(on);
    }

    /// The private directory holding each loaded version's copy (removed when the host
    /// is dropped; the binary removes it itself when it abandons a stuck stop).
    pub fn copy_dir(&self) -> PathBuf {
        self.code.copy_dir().to_path_buf()
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
