//! Why an operation on the actor system failed: typed, each with a message that names
//! what was wrong, and the cause as `source()` where there is one.

use std::fmt;

use super::registry::RegisterError;

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
    /// The actor stayed inside a callback past the timeout (an operator's `state`).
    Busy(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("timeout: no reply in time"),
            CallError::NoProc(who) => write!(f, "noproc: no actor {who}"),
            CallError::Exit(r) => write!(f, "the callee exited: {r}"),
            CallError::BadMessage(e) => write!(f, "bad message: {e}"),
            CallError::Codec(e) => write!(f, "codec error: {e}"),
            CallError::Busy(who) => write!(f, "busy: {who}"),
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
    /// `init` did not return within the start deadline; the actor was killed.
    InitTimeout { behaviour: String, ms: u64 },
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
            SpawnError::InitTimeout { behaviour, ms } => write!(
                f,
                "`{behaviour}` init did not return within its {ms} ms start deadline \
                 (start_timeout_ms); the actor was killed"
            ),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Name(e) => Some(e),
            _ => None,
        }
    }
}
