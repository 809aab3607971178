//! The errors of the host's public API that are not one subsystem's own.

use std::fmt;
use std::path::PathBuf;

use crate::code::watcher::WatchError;

/// Why the host did not start.
#[derive(Debug)]
pub enum HostError {
    /// A configured plugin directory does not exist or cannot be read.
    PluginDir {
        /// The directory as configured.
        dir: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The private directory for library copies could not be made.
    CopyDir(std::io::Error),
    /// The watcher could not start.
    Watch(WatchError),
    /// A thread of the host could not be started.
    Thread(std::io::Error),
    /// A library named in `libraries` is in none of the plugin directories.
    NoSuchLibrary {
        /// As configured.
        name: String,
        /// The file looked for.
        file: String,
        /// Where.
        dirs: Vec<PathBuf>,
    },
    /// The version policy cannot work (see `VersionPolicy::check`).
    Policy(String),
    /// The distribution node could not start (listen, EPMD, name, cookie).
    Dist(crate::dist::DistError),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::PluginDir { dir, source } => {
                write!(f, "plugin directory: {}: {source}", dir.display())
            }
            HostError::CopyDir(e) => write!(f, "cannot create the private copy directory: {e}"),
            HostError::Watch(e) => write!(f, "watcher: {e}"),
            HostError::Thread(e) => write!(f, "cannot start a host thread: {e}"),
            HostError::NoSuchLibrary { name, file, dirs } => write!(
                f,
                "library `{name}` ({file}) is in none of the plugin directories ({}); build it \
                 first (cargo build -p {name}) or fix `libraries`",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            HostError::Policy(e) => f.write_str(e),
            HostError::Dist(e) => write!(f, "distribution: {e}"),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::PluginDir { source, .. } => Some(source),
            HostError::CopyDir(e) | HostError::Thread(e) => Some(e),
            HostError::Dist(e) => Some(e),
            HostError::Watch(e) => Some(e),
            HostError::NoSuchLibrary { .. } => None,
            HostError::Policy(_) => None,
        }
    }
}
