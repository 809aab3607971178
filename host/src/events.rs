//! Host events: what happened, as data (for tests and tools, via `Host::subscribe`) and
//! as log lines with stable names and fields (for people and scripts).
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

use crate::versions::{VersionFate, VersionReport};

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
        actor: u64,
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
        actor: u64,
        /// Exit reason, as a term, where there is one.
        reason: String,
    },
    /// An actor stopped by returning a stop.
    Stopped {
        /// Actor id.
        actor: u64,
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

/// Writes the event's log line(s).
pub fn log(ev: &HostEvent) {
    match ev {
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
                    reason = reason.as_deref().unwrap_or(""),
                    "library refused"
                ),
            }
        }
        HostEvent::Reload(r) => {
            let library = r.library.display().to_string();
            let reason = r.reason.as_deref().unwrap_or("");
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
                        reason
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
            actor = *actor,
            name = name.as_deref().unwrap_or(""),
            behaviour = behaviour.as_str(),
            version = version.as_str(),
            reason = reason.as_str(),
            panic = panic.as_str(),
            message = message.as_str(),
            "actor crashed"
        ),
        HostEvent::Supervisor {
            supervisor,
            kind,
            child,
            actor,
            reason,
        } => {
            let (supervisor, child, reason) =
                (supervisor.as_str(), child.as_str(), reason.as_str());
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
                    actor = *actor,
                    reason,
                    "child {child} of {supervisor} exited: {reason}"
                ),
                _ => tracing::info!(
                    event = kind.as_str(),
                    supervisor,
                    child,
                    actor = *actor,
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
            actor = *actor,
            name = name.as_deref().unwrap_or(""),
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
                VersionFate::CapReached { retained, max } => tracing::warn!(
                    event,
                    library,
                    behaviours,
                    hash,
                    retained = *retained,
                    max = *max,
                    "{library} keeps {retained} old versions mapped, its cap; the next \
                     version will be refused unless [versions] unload = true"
                ),
            }
        }
    }
}
