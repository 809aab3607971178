//! Supervision: OTP's `supervisor`, in the host.
//!
//! - this module: the specs a user writes (in the config or through the API);
//! - `strategy`: the pure decisions — after a child's exit, restart what, or give up —
//!   over plain child records, unit-tested without a host;
//! - `tree`: the supervision threads, one a supervisor (as OTP's are processes), each
//!   owning its supervisor's state and carrying the decisions out through a small trait
//!   (`ChildHost`), so they can be tested with a fake host too.

mod strategy;
pub(crate) mod tree;

use std::time::Duration;

use serde::Deserialize;

use crate::system::SpawnError;

pub(crate) use tree::{ChildHost, Supervision};

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
    /// How long `init` may run before the start fails and the half-started actor is
    /// killed (default [`DEFAULT_START_TIMEOUT`]).
    pub start_timeout: Duration,
}

/// A child's default start deadline: `init` is meant to take microseconds, and OTP's
/// callers of `start_link` wait 5 s by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_millis(5000);

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
    pub(crate) fn name(&self) -> String {
        match self {
            ChildSpec::Worker(w) => w.name.clone().unwrap_or_else(|| w.behaviour.clone()),
            ChildSpec::Supervisor(s) => s.name.clone(),
        }
    }

    pub(crate) fn restart(&self) -> Restart {
        match self {
            ChildSpec::Worker(w) => w.restart,
            ChildSpec::Supervisor(s) => s.restart,
        }
    }

    pub(crate) fn shutdown(&self) -> Shutdown {
        match self {
            ChildSpec::Worker(w) => w.shutdown,
            ChildSpec::Supervisor(_) => Shutdown::Infinity,
        }
    }
}

/// Why a supervisor or one of its children did not start (or, for `Busy` and
/// `Stopped`, why the supervision thread did not answer). The message names the
/// supervisor and the child.
#[derive(Debug)]
#[allow(missing_docs)] // fields are named for what they hold
pub enum StartError {
    /// A child did not start; the tree's start was undone.
    Child {
        supervisor: String,
        child: String,
        source: SpawnError,
    },
    /// A `simple_one_for_one` supervisor needs exactly one worker child, its template.
    NoTemplate(String),
    /// `ctx.start_child` named a supervisor that does not exist.
    NoSupervisor(String),
    /// `ctx.start_child` named a supervisor that is not `simple_one_for_one`.
    NotSimple(String),
    /// The supervision thread is gone (the host is stopping).
    Stopped,
    /// The supervision thread did not answer in time (it may be stopping a slow child).
    Busy,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Child {
                supervisor,
                child,
                source,
            } => write!(
                f,
                "child `{child}` of supervisor `{supervisor}` did not start: {source}"
            ),
            StartError::NoTemplate(s) => write!(
                f,
                "simple_one_for_one supervisor `{s}` needs exactly one worker child (the template)"
            ),
            StartError::NoSupervisor(s) => write!(f, "no supervisor named `{s}`"),
            StartError::NotSimple(s) => {
                write!(f, "`{s}` is not a simple_one_for_one supervisor")
            }
            StartError::Stopped => f.write_str("the supervision thread is gone"),
            StartError::Busy => {
                f.write_str("the supervision thread is busy (stopping a child?); try again")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Child { source, .. } => Some(source),
            _ => None,
        }
    }
}
