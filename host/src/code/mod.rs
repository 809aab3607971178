//! The code server: which version of each behaviour is current, loading new versions
//! (from the watcher, or when an operator asks), swapping every actor to them, rolling
//! back, and retiring or unloading the old ones. OTP's `code` module and release handler,
//! for cdylib plugins.
//!
//! - `loader`: one version of a library, mapped from a private copy, with every check;
//! - `swap`: suspend / code_change / commit or roll back / resume, all or nothing;
//! - `versions`: which versions stay mapped, and the policy that decides;
//! - `watcher`: plugin directories watched for settled, changed files;
//! - `server` (this module's `impl Code`): the operations, serialised by one lock.

pub mod loader;
mod server;
mod swap;
pub mod versions;
pub mod watcher;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::observe::Observer;
use crate::system::{BehaviourVersion, SpawnError, System};
use crate::util::ids::ActorId;
use versions::{FailedVersion, LibraryRecord, VersionPolicy};

pub(crate) use server::reload_loop;

/// The code server's state. It owns the behaviour table; the actor system only ever sees
/// the [`BehaviourVersion`] an actor runs.
pub(crate) struct Code {
    system: Arc<System>,
    observer: Arc<Observer>,
    /// Current version of each behaviour. Held for reading across a spawn and for writing
    /// across a swap, so no actor can start on a version that is being replaced.
    behaviours: RwLock<HashMap<Arc<str>, Arc<BehaviourVersion>>>,
    /// Every library by its key (see `server::library_key`).
    libraries: Mutex<HashMap<PathBuf, LibraryRecord>>,
    /// Versions mapped that never became current, until they are gone (see `versions`).
    failed: Mutex<Vec<FailedVersion>>,
    /// What happens to retired versions.
    policy: VersionPolicy,
    /// Serialises loads and swaps.
    reload_lock: Mutex<()>,
    /// Where each version's private copy lives.
    copy_dir: tempfile::TempDir,
}

impl Code {
    /// A code server with nothing loaded, copying libraries into `copy_dir`.
    pub(crate) fn new(
        system: Arc<System>,
        observer: Arc<Observer>,
        policy: VersionPolicy,
        copy_dir: tempfile::TempDir,
    ) -> Code {
        Code {
            system,
            observer,
            behaviours: RwLock::new(HashMap::new()),
            libraries: Mutex::new(HashMap::new()),
            failed: Mutex::new(Vec::new()),
            policy,
            reload_lock: Mutex::new(()),
            copy_dir,
        }
    }

    /// Starts an actor of the current version of `behaviour`.
    pub(crate) fn spawn(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
        link: Option<ActorId>,
    ) -> Result<ActorId, SpawnError> {
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
        self.system.spawn(version, name, args, link)
    }

    /// The current version of a behaviour.
    pub(crate) fn version_of(&self, behaviour: &str) -> Option<String> {
        self.behaviours
            .read()
            .get(behaviour)
            .map(|v| v.version.to_string())
    }

    /// Names of the loaded behaviours, sorted.
    pub(crate) fn behaviour_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .behaviours
            .read()
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Number of retired (still mapped, unpinned) versions of the library at `path`.
    pub(crate) fn retired_versions(&self, path: &Path) -> usize {
        let path = server::library_key(path);
        self.libraries
            .lock()
            .get(&path)
            .map_or(0, |r| r.retired.len())
    }
}

/// Why an operator's reload or rollback was not attempted. (A reload that was attempted
/// and failed is not an error: its [`HostEvent`](crate::HostEvent) says how it ended.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// No loaded library provides this behaviour.
    UnknownBehaviour(String),
    /// The file given for a reload is not a file.
    NotAFile(PathBuf),
    /// No earlier version of this library is retained.
    NothingToRollBackTo(PathBuf),
    /// The library went away while the request waited.
    LibraryGone(PathBuf),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::UnknownBehaviour(b) => {
                write!(f, "no loaded library provides behaviour `{b}`")
            }
            ReloadError::NotAFile(p) => write!(f, "{} is not a file", p.display()),
            ReloadError::NothingToRollBackTo(p) => write!(
                f,
                "no earlier version of {} is retained to roll back to \
                 (pinned and unloaded versions cannot be swapped in; see [versions] retain)",
                p.display()
            ),
            ReloadError::LibraryGone(p) => write!(f, "the library {} went away", p.display()),
        }
    }
}

impl std::error::Error for ReloadError {}
