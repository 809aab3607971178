//! Every stable log event, typed, and the one place its line is written.
//!
//! Two kinds: a [`HostEvent`] is also data (tests and tools receive it through
//! `Host::subscribe`, and the observer counts it); an [`Event`] is a log line only. Both
//! are written here and nowhere else, so an event's name and fields cannot drift between
//! the places that report it; [`EVENT_NAMES`] lists them all, and the README's table is
//! tested against it.
//!
//! | event | level | fields |
//! |---|---|---|
//! | `load` | info / warn | `path`, `outcome` (`loaded` / `unchanged` / `rejected`), `behaviours`, `hash`, `load_us`, `reason` |
//! | `reload` | info / warn | `behaviour`, `from`, `to`, `actors`, `pause_us`, `outcome` (`ok` / `rolled_back` / `rejected`), `reason`, `library` |
//! | `crash` | error | `actor`, `name`, `behaviour`, `version`, `reason`, `panic`, `message` |
//! | `actor_stopped` | info | `actor`, `name`, `behaviour`, `version`, `reason` |
//! | `version_retired` / `version_unloaded` | info | `library`, `behaviours`, `hash` |
//! | `version_pinned` | warn | `library`, `behaviours`, `hash`, `reason` |
//! | `version_cap_reached` | warn | `library`, `behaviours`, `hash`, `retained`, `max` |

use std::path::PathBuf;

use crate::util::ids::ActorId;

/// What a sweep did to one version, for the log and the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionFate {
    /// No actor runs it any more; it stays mapped.
    Retired,
    /// Closed and gone from the process; its copy deleted.
    Unloaded,
    /// Closed or retired but still mapped; the reason says why.
    Pinned(String),
    /// The library keeps as many old versions mapped as `max_retained` says.
    CapReached {
        /// Versions kept mapped besides the current one.
        retained: usize,
        /// The configured cap.
        max: usize,
        /// The next version will be refused (`unload = false`); in unload mode this is a
        /// warning only: what stays mapped is pinned, and reloading goes on.
        refuses: bool,
    },
}

impl VersionFate {
    /// The stable event name used in logs.
    pub fn event_name(&self) -> &'static str {
        match self {
            VersionFate::Retired => "version_retired",
            VersionFate::Unloaded => "version_unloaded",
            VersionFate::Pinned(_) => "version_pinned",
            VersionFate::CapReached { .. } => "version_cap_reached",
        }
    }
}

/// A version's fate, with enough to name it.
#[derive(Debug, Clone)]
pub struct VersionReport {
    /// The library file.
    pub library: PathBuf,
    /// `name@version` of each behaviour.
    pub behaviours: Vec<String>,
    /// Short content hash.
    pub hash: String,
    /// What happened.
    pub fate: VersionFate,
}

/// Outcome of a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Every actor runs the new version with its migrated state.
    Ok,
    /// A `code_change` failed or panicked: every actor kept the old version and state.
    RolledBack,
    /// The new library was refused before any actor was touched.
    Rejected,
}

impl ReloadOutcome {
    /// The stable name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Ok => "ok",
            ReloadOutcome::RolledBack => "rolled_back",
            ReloadOutcome::Rejected => "rejected",
        }
    }
}

/// One behaviour's part in a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChange {
    /// Behaviour name.
    pub behaviour: String,
    /// Version before.
    pub from: String,
    /// Version offered (`?` if the library was refused before its version was known).
    pub to: String,
    /// Actors of this behaviour that were (or would have been) migrated.
    pub actors: usize,
}

/// A reload of one library: all its behaviours swap together.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// The library file.
    pub library: PathBuf,
    /// Each behaviour's versions and actor count.
    pub behaviours: Vec<VersionChange>,
    /// How long the actors were suspended, in microseconds.
    pub pause_us: u64,
    /// What happened.
    pub outcome: ReloadOutcome,
    /// Why it did not succeed.
    pub reason: Option<String>,
}

/// Outcome of loading a library that had no version loaded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Loaded and its behaviours registered.
    Loaded {
        /// Time to copy, map and check it.
        load_us: u64,
    },
    /// Same content as the running version.
    Unchanged,
    /// Refused; see the reason.
    Rejected,
}

/// What a supervisor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// A child started (first start or restart).
    ChildStarted,
    /// A child exited on its own (crash, stop); `reason` says why.
    ChildExited,
    /// A child is about to be (re)started by the strategy.
    Restarting,
    /// The supervisor stopped a child (strategy or shutdown).
    ChildTerminated,
    /// Past the restart intensity: the supervisor stopped its children and exited.
    GaveUp,
}

impl SupervisorEvent {
    /// The stable event name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SupervisorEvent::ChildStarted => "child_started",
            SupervisorEvent::ChildExited => "child_exited",
            SupervisorEvent::Restarting => "child_restarting",
            SupervisorEvent::ChildTerminated => "child_terminated",
            SupervisorEvent::GaveUp => "supervisor_gave_up",
        }
    }
}

/// Everything the host reports.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// A library loaded for the first time, or refused.
    Load {
        /// The library file.
        path: PathBuf,
        /// What happened.
        outcome: LoadOutcome,
        /// Behaviours it exports (`name@version` when loaded).
        behaviours: Vec<String>,
        /// Short content hash.
        hash: String,
        /// Why it was refused.
        reason: Option<String>,
    },
    /// A new version of a loaded library.
    Reload(ReloadReport),
    /// An actor's callback panicked.
    Crash {
        /// Actor id.
        actor: ActorId,
        /// Registered name.
        name: Option<String>,
        /// Behaviour.
        behaviour: String,
        /// Version that crashed.
        version: String,
        /// Exit reason as an Erlang term.
        reason: String,
        /// Panic message and location.
        panic: String,
        /// The message being handled, as an Erlang term.
        message: String,
    },
    /// A supervisor report.
    Supervisor {
        /// The supervisor's name.
        supervisor: String,
        /// What happened.
        kind: SupervisorEvent,
        /// The child's name.
        child: String,
        /// The child's actor (or supervisor) id; 0 when not yet started.
        actor: ActorId,
        /// Exit reason, as a term, where there is one.
        reason: String,
    },
    /// An actor stopped by returning a stop.
    Stopped {
        /// Actor id.
        actor: ActorId,
        /// Registered name.
        name: Option<String>,
        /// Behaviour.
        behaviour: String,
        /// Version.
        version: String,
        /// Exit reason as an Erlang term.
        reason: String,
    },
    /// A version was retired, unloaded or pinned, or a library reached its version cap.
    Version(VersionReport),
}

impl HostEvent {
    /// Writes the event's log line(s).
    pub(crate) fn log(&self) {
        match self {
            HostEvent::Load {
                path,
                outcome,
                behaviours,
                hash,
                reason,
            } => {
                let path = path.display().to_string();
                let behaviours = behaviours.join(",");
                match outcome {
                    LoadOutcome::Loaded { load_us } => tracing::info!(
                        event = "load",
                        path,
                        outcome = "loaded",
                        behaviours,
                        hash = hash.as_str(),
                        load_us = *load_us,
                        "library loaded"
                    ),
                    LoadOutcome::Unchanged => tracing::info!(
                        event = "load",
                        path,
                        outcome = "unchanged",
                        behaviours,
                        hash = hash.as_str(),
                        "library unchanged"
                    ),
                    LoadOutcome::Rejected => tracing::warn!(
                        event = "load",
                        path,
                        outcome = "rejected",
                        behaviours,
                        reason = reason.as_deref(),
                        "library refused"
                    ),
                }
            }
            HostEvent::Reload(r) => {
                let library = r.library.display().to_string();
                // Left out when there is none (a reload that went through).
                let reason = r.reason.as_deref();
                // One field list for both levels (tracing needs the level at compile time).
                macro_rules! reload_event {
                ($level:ident, $b:expr, $($msg:tt)+) => {
                    tracing::$level!(
                        event = "reload",
                        behaviour = $b.behaviour.as_str(),
                        from = $b.from.as_str(),
                        to = $b.to.as_str(),
                        actors = $b.actors,
                        pause_us = r.pause_us,
                        outcome = r.outcome.as_str(),
                        reason,
                        library = library.as_str(),
                        $($msg)+
                    )
                };
            }
                for b in &r.behaviours {
                    if r.outcome == ReloadOutcome::Ok {
                        reload_event!(info, b, "reloaded {} {} -> {}", b.behaviour, b.from, b.to);
                    } else {
                        reload_event!(
                            warn,
                            b,
                            "reload of {} {}: {}",
                            b.behaviour,
                            r.outcome.as_str(),
                            reason.unwrap_or("")
                        );
                    }
                }
            }
            HostEvent::Crash {
                actor,
                name,
                behaviour,
                version,
                reason,
                panic,
                message,
            } => tracing::error!(
                event = "crash",
                actor = actor.0,
                name = name.as_deref(),
                behaviour = behaviour.as_str(),
                version = version.as_str(),
                reason = reason.as_str(),
                panic = panic.as_str(),
                // Not `message`: that is the log line's own field (in JSON two `message`
                // keys, and parsers keep only the last).
                last_message = message.as_str(),
                "actor crashed"
            ),
            HostEvent::Supervisor {
                supervisor,
                kind,
                child,
                actor,
                reason,
            } => {
                // Fields without a value are left out (no `reason=""`, no `actor=0`).
                let (supervisor, child) = (supervisor.as_str(), child.as_str());
                let reason = (!reason.is_empty()).then_some(reason.as_str());
                let actor = (actor.0 != 0).then_some(actor.0);
                match kind {
                    SupervisorEvent::GaveUp => tracing::error!(
                        event = kind.as_str(),
                        supervisor,
                        reason,
                        "supervisor {supervisor} reached its restart intensity and gave up"
                    ),
                    SupervisorEvent::ChildExited => tracing::warn!(
                        event = kind.as_str(),
                        supervisor,
                        child,
                        actor,
                        reason,
                        "child {child} of {supervisor} exited: {}",
                        reason.unwrap_or("")
                    ),
                    _ => tracing::info!(
                        event = kind.as_str(),
                        supervisor,
                        child,
                        actor,
                        reason,
                        "{} {child} ({supervisor})",
                        kind.as_str()
                    ),
                }
            }
            HostEvent::Stopped {
                actor,
                name,
                behaviour,
                version,
                reason,
            } => tracing::info!(
                event = "actor_stopped",
                actor = actor.0,
                name = name.as_deref(),
                behaviour = behaviour.as_str(),
                version = version.as_str(),
                reason = reason.as_str(),
                "actor stopped"
            ),
            HostEvent::Version(v) => {
                let library = v.library.display().to_string();
                let (library, behaviours, hash) =
                    (library.as_str(), v.behaviours.join(","), v.hash.as_str());
                let event = v.fate.event_name();
                match &v.fate {
                    VersionFate::Retired => tracing::info!(
                        event,
                        library,
                        behaviours,
                        hash,
                        "version {behaviours} ({hash}) retired: no actor runs it"
                    ),
                    VersionFate::Unloaded => tracing::info!(
                        event,
                        library,
                        behaviours,
                        hash,
                        "version {behaviours} ({hash}) unloaded"
                    ),
                    VersionFate::Pinned(reason) => tracing::warn!(
                        event,
                        library,
                        behaviours,
                        hash,
                        reason = reason.as_str(),
                        "version {behaviours} ({hash}) stays mapped: {reason}"
                    ),
                    VersionFate::CapReached {
                        retained,
                        max,
                        refuses: true,
                    } => tracing::warn!(
                        event,
                        library,
                        behaviours,
                        hash,
                        retained = *retained,
                        max = *max,
                        "{library} keeps {retained} old versions mapped, its cap; the next \
                     version will be refused unless [versions] unload = true"
                    ),
                    VersionFate::CapReached {
                        retained,
                        max,
                        refuses: false,
                    } => tracing::warn!(
                        event,
                        library,
                        behaviours,
                        hash,
                        retained = *retained,
                        max = *max,
                        "{library} keeps {retained} old versions mapped (max_retained = {max}) \
                     that could not be unloaded (see `host ctl versions`); reloading goes on"
                    ),
                }
            }
        }
    }
}

/// A log-only event: written once, where it happened, through `Event::log`.
#[derive(Debug)]
#[allow(missing_docs)] // fields are the log fields, documented in the README's table
pub enum Event<'a> {
    /// The host is up.
    HostStarted {
        threads: usize,
        libraries: usize,
        behaviours: &'a str,
        /// Private copy directories left by killed hosts and removed at start.
        stale_copies_removed: Option<usize>,
    },
    /// The host could not start, or lost its control socket.
    HostFailed { error: &'a str },
    /// The host begins an orderly stop (a signal, `--run-for`, a root supervisor that
    /// gave up).
    HostStopping { reason: &'a str },
    /// The host stopped: how (`orderly`, or past its shutdown deadline with what was
    /// abandoned) and the exit status.
    HostStopped {
        reason: &'a str,
        abandoned: &'a str,
        status: u8,
        elapsed_ms: u64,
    },
    /// A callback ran past the watchdog's `warn_after_ms` (logged once per callback).
    LongCallback {
        actor: ActorId,
        name: Option<&'a str>,
        behaviour: &'a str,
        version: &'a str,
        callback: &'static str,
        elapsed_ms: u64,
    },
    /// A callback that ran past the watchdog's threshold returned: which message it was
    /// handling and how long it took in all.
    LongCallbackDone {
        actor: ActorId,
        name: Option<&'a str>,
        behaviour: &'a str,
        version: &'a str,
        callback: &'static str,
        message: &'a str,
        elapsed_ms: u64,
    },
    /// An actor was killed inside a callback: its scheduler thread left the pool and a
    /// fresh one took its place.
    WorkerReplaced { actor: ActorId, behaviour: &'a str },
    /// The log sink stalled and lines were dropped (logged when it drains).
    LogLinesDropped { dropped: u64 },
    /// An actor from the configuration started.
    ActorStarted {
        actor: ActorId,
        name: Option<&'a str>,
        behaviour: &'a str,
        version: &'a str,
    },
    /// An actor or a supervision tree from the configuration did not start.
    StartFailed {
        behaviour: Option<&'a str>,
        supervisor: Option<&'a str>,
        error: &'a str,
    },
    /// A spawn failed (`init` refused, panicked, or the name was taken).
    SpawnFailed {
        behaviour: &'a str,
        name: Option<&'a str>,
        error: &'a str,
    },
    /// A message did not decode; dropped, the actor carries on.
    BadMessage {
        actor: ActorId,
        name: Option<&'a str>,
        behaviour: &'a str,
        version: &'a str,
        kind: &'static str,
        message: &'a str,
        error: &'a str,
    },
    /// `terminate` panicked or failed; the actor is gone all the same.
    TerminateFailed {
        actor: ActorId,
        behaviour: &'a str,
        error: &'a str,
    },
    /// A supervisor could not restart a child (it then gives up).
    SupervisorRestartFailed { error: &'a str },
    /// A watched library file went away; the loaded version keeps running.
    ArtifactRemoved { path: &'a std::path::Path },
    /// abi_stable's full report behind a layout refusal.
    LayoutMismatch {
        path: &'a std::path::Path,
        dump: &'a str,
    },
    /// The control socket listens.
    ControlListening { socket: &'a std::path::Path },
    /// A control connection from another user was refused.
    ControlRefused { uid: u32 },
    /// An actor's mailbox reached the high-water mark (once per crossing).
    MailboxHighWater {
        actor: ActorId,
        name: &'a str,
        len: usize,
    },
    /// An actor's mailbox passed its `max_mailbox`: the actor is killed.
    MailboxLimit {
        actor: ActorId,
        name: &'a str,
        len: usize,
        max: usize,
    },
    /// The host is a distributed node: listening, registered with EPMD.
    DistListening {
        node: &'a str,
        port: u16,
        creation: u32,
    },
    /// No EPMD answered on its port, so the host started one (`which`: `epmd` from
    /// `PATH`, or `host epmd`), as `erl` does.
    EpmdStarted { port: u16, which: &'a str },
    /// A connection to another node is up (`direction`: `in` or `out`).
    NodeUp { node: &'a str, direction: &'a str },
    /// A connection to another node ended; `reason` says why (`connection_closed`,
    /// `net_tick_timeout`, `bad frame: ...`, `overloaded: ...`).
    NodeDown {
        node: &'a str,
        direction: &'a str,
        reason: &'a str,
    },
    /// A peer sent a control message with an operation this node does not know: skipped.
    NodeUnknownOp { node: &'a str, op: i64 },
    /// A peer was refused at the handshake (bad cookie, missing flags, protocol error,
    /// timeout) and never admitted.
    NodeRefused {
        peer: &'a str,
        direction: &'a str,
        reason: &'a str,
    },
    /// The plugin watcher runs.
    WatchStart { dirs: usize },
    /// The plugin watcher stopped (or its thread panicked).
    WatchStop { panicked: bool },
    /// A file found by the start-up scan was skipped.
    WatchScanSkip {
        path: &'a std::path::Path,
        reason: &'a str,
    },
    /// The file notification backend failed; everything is rescanned.
    WatchError { error: &'a str },
    /// The file event queue overflowed; everything is rescanned.
    WatchOverflow,
    /// A plugin directory was removed or replaced.
    WatchDirLost { dir: &'a std::path::Path },
    /// A lost plugin directory is watched again.
    WatchDirBack { dir: &'a std::path::Path },
    /// (debug) A lost directory cannot be watched yet.
    WatchDirRetry {
        dir: &'a std::path::Path,
        error: &'a str,
    },
    /// (debug) An event on a watched directory itself.
    WatchDirEvent { dir: &'a std::path::Path },
    /// (debug) What the watcher reports to the host.
    WatchReport { report: &'a str },
    /// (debug) A file settled with the hash already known.
    WatchUnchanged { path: &'a std::path::Path },
    /// (debug) A file has not settled yet.
    WatchRetry {
        path: &'a std::path::Path,
        attempt: u32,
        reason: &'a str,
    },
}

impl Event<'_> {
    /// Writes the event's log line.
    pub(crate) fn log(&self) {
        match *self {
            Event::HostStarted {
                threads,
                libraries,
                behaviours,
                stale_copies_removed,
            } => tracing::info!(
                event = "host_started",
                threads,
                libraries,
                behaviours,
                stale_copies_removed,
                "host started"
            ),
            Event::HostFailed { error } => {
                tracing::error!(event = "host_failed", error, "host could not start")
            }
            Event::HostStopping { reason } => {
                tracing::warn!(event = "host_stopping", reason, "host stopping: {reason}")
            }
            Event::HostStopped {
                reason,
                abandoned,
                status,
                elapsed_ms,
            } => {
                if abandoned.is_empty() {
                    tracing::info!(
                        event = "host_stopped",
                        reason,
                        abandoned,
                        status,
                        elapsed_ms,
                        "host stopped ({reason}) in {elapsed_ms} ms"
                    )
                } else {
                    tracing::error!(
                        event = "host_stopped",
                        reason,
                        abandoned,
                        status,
                        elapsed_ms,
                        "host stopped ({reason}) past its shutdown deadline; abandoned: {abandoned}"
                    )
                }
            }
            Event::LongCallbackDone {
                actor,
                name,
                behaviour,
                version,
                callback,
                message,
                elapsed_ms,
            } => tracing::warn!(
                event = "long_callback_done",
                actor = actor.0,
                name,
                behaviour,
                version,
                callback,
                message,
                elapsed_ms,
                "actor {actor} {callback} returned after {elapsed_ms} ms, handling {message}"
            ),
            Event::LongCallback {
                actor,
                name,
                behaviour,
                version,
                callback,
                elapsed_ms,
            } => tracing::warn!(
                event = "long_callback",
                actor = actor.0,
                name,
                behaviour,
                version,
                callback,
                elapsed_ms,
                "{callback} of actor {actor} has run {elapsed_ms} ms"
            ),
            Event::WorkerReplaced { actor, behaviour } => tracing::warn!(
                event = "worker_replaced",
                actor = actor.0,
                behaviour,
                "actor {actor} was killed inside a callback; its scheduler thread left the pool and a fresh one took its place"
            ),
            Event::LogLinesDropped { dropped } => tracing::warn!(
                event = "log_lines_dropped",
                dropped,
                "the log output stalled: {dropped} lines were dropped"
            ),
            Event::ActorStarted {
                actor,
                name,
                behaviour,
                version,
            } => tracing::info!(
                event = "actor_started",
                actor = actor.0,
                name,
                behaviour,
                version,
                "actor started"
            ),
            Event::StartFailed {
                behaviour: Some(behaviour),
                error,
                ..
            } => tracing::error!(
                event = "start_failed",
                behaviour,
                error,
                "actor could not start"
            ),
            Event::StartFailed {
                supervisor, error, ..
            } => tracing::error!(
                event = "start_failed",
                supervisor,
                error,
                "supervision tree did not start"
            ),
            Event::SpawnFailed {
                behaviour,
                name,
                error,
            } => tracing::warn!(
                event = "spawn_failed",
                behaviour,
                name,
                error,
                "actor did not start"
            ),
            Event::BadMessage {
                actor,
                name,
                behaviour,
                version,
                kind,
                message,
                error,
            } => tracing::warn!(
                event = "bad_message",
                actor = actor.0,
                name,
                behaviour,
                version,
                kind,
                // The dropped message; not `message`, the log line's own field.
                term = message,
                error,
                "message dropped: it does not decode"
            ),
            Event::TerminateFailed {
                actor,
                behaviour,
                error,
            } => tracing::warn!(
                event = "terminate_failed",
                actor = actor.0,
                behaviour,
                error,
                "terminate did not complete"
            ),
            Event::SupervisorRestartFailed { error } => {
                tracing::error!(event = "supervisor_restart_failed", error, "restart failed")
            }
            Event::ArtifactRemoved { path } => tracing::info!(
                event = "artifact_removed",
                path = %path.display(),
                "library file removed; the loaded version keeps running"
            ),
            Event::LayoutMismatch { path, dump } => {
                tracing::debug!(event = "layout_mismatch", path = %path.display(), dump)
            }
            Event::ControlListening { socket } => tracing::info!(
                event = "control_listening",
                socket = %socket.display(),
                "control socket ready"
            ),
            Event::ControlRefused { uid } => tracing::warn!(
                event = "control_refused",
                uid,
                "control connection from another user refused"
            ),
            Event::MailboxHighWater { actor, name, len } => tracing::warn!(
                event = "mailbox_high_water",
                actor = actor.0,
                name,
                len,
                "actor {actor} {name}: {len} messages waiting in its mailbox"
            ),
            Event::MailboxLimit {
                actor,
                name,
                len,
                max,
            } => tracing::error!(
                event = "mailbox_limit",
                actor = actor.0,
                name,
                len,
                max,
                "actor {actor} {name} killed: {len} messages waiting, past its max_mailbox = {max}"
            ),
            Event::DistListening {
                node,
                port,
                creation,
            } => tracing::info!(
                event = "dist_listening",
                node,
                port,
                creation,
                "distributed node {node} listening on port {port}"
            ),
            Event::EpmdStarted { port, which } => tracing::info!(
                event = "epmd_started",
                port,
                which,
                "no EPMD on port {port}: started {which}"
            ),
            Event::NodeUp { node, direction } => tracing::info!(
                event = "node_up",
                node,
                direction,
                "node_up {node} ({direction})"
            ),
            Event::NodeDown {
                node,
                direction,
                reason,
            } => tracing::warn!(
                event = "node_down",
                node,
                direction,
                reason,
                "node_down {node} ({direction}): {reason}"
            ),
            Event::NodeUnknownOp { node, op } => tracing::warn!(
                event = "node_unknown_op",
                node,
                op,
                "node {node} sent unknown operation {op}; skipped"
            ),
            Event::NodeRefused {
                peer,
                direction,
                reason,
            } => tracing::warn!(
                event = "node_refused",
                peer,
                direction,
                reason,
                "node_refused {peer} ({direction}): {reason}"
            ),
            Event::WatchStart { dirs } => {
                tracing::debug!(event = "watch_start", dirs, "plugin watcher running")
            }
            Event::WatchStop { panicked: true } => {
                tracing::warn!(event = "watch_stop", "plugin watcher thread panicked")
            }
            Event::WatchStop { panicked: false } => {
                tracing::debug!(event = "watch_stop", "plugin watcher stopped")
            }
            Event::WatchScanSkip { path, reason } => tracing::warn!(
                event = "watch_scan_skip",
                path = %path.display(),
                reason,
                "skipping plugin artifact"
            ),
            Event::WatchError { error } => tracing::warn!(
                event = "watch_error",
                error,
                "file watcher error; rescanning"
            ),
            Event::WatchOverflow => tracing::warn!(
                event = "watch_overflow",
                "file event queue overflowed; rescanning"
            ),
            Event::WatchDirLost { dir } => tracing::warn!(
                event = "watch_dir_lost",
                dir = %dir.display(),
                "plugin directory removed or replaced; will re-establish the watch"
            ),
            Event::WatchDirBack { dir } => tracing::info!(
                event = "watch_dir_back",
                dir = %dir.display(),
                "plugin directory watch re-established"
            ),
            Event::WatchDirRetry { dir, error } => tracing::debug!(
                event = "watch_dir_retry",
                dir = %dir.display(),
                error,
                "cannot watch plugin directory yet"
            ),
            Event::WatchDirEvent { dir } => {
                tracing::debug!(event = "watch_dir_event", dir = %dir.display(), "directory event")
            }
            Event::WatchReport { report } => {
                tracing::debug!(event = "watch_report", report, "plugin artifact event")
            }
            // Info, not debug: "the watcher missed my build" and "the build made the same
            // bytes" must be told apart without turning debug logs on.
            Event::WatchUnchanged { path } => tracing::info!(
                event = "watch_unchanged",
                path = %path.display(),
                "library rebuilt with identical content; nothing to reload"
            ),
            Event::WatchRetry {
                path,
                attempt,
                reason,
            } => tracing::debug!(
                event = "watch_retry",
                path = %path.display(),
                attempt,
                reason,
                "artifact not settled; retrying"
            ),
        }
    }
}

/// Every stable event name, as the log writes it (the README's table lists the same).
pub const EVENT_NAMES: &[&str] = &[
    "host_started",
    "host_failed",
    "host_stopping",
    "host_stopped",
    "long_callback",
    "worker_replaced",
    "log_lines_dropped",
    "load",
    "reload",
    "actor_started",
    "start_failed",
    "spawn_failed",
    "crash",
    "actor_stopped",
    "bad_message",
    "terminate_failed",
    "artifact_removed",
    "layout_mismatch",
    "child_started",
    "child_exited",
    "child_restarting",
    "child_terminated",
    "supervisor_gave_up",
    "supervisor_restart_failed",
    "version_retired",
    "version_unloaded",
    "version_pinned",
    "version_cap_reached",
    "control_listening",
    "control_refused",
    "mailbox_high_water",
    "mailbox_limit",
    "long_callback_done",
    "dist_listening",
    "epmd_started",
    "node_up",
    "node_down",
    "node_refused",
    "node_unknown_op",
    "watch_start",
    "watch_stop",
    "watch_scan_skip",
    "watch_error",
    "watch_overflow",
    "watch_dir_lost",
    "watch_dir_back",
    "watch_dir_retry",
    "watch_dir_event",
    "watch_report",
    "watch_unchanged",
    "watch_retry",
];
