//! The code server: which version of each behaviour is current, loading new versions
//! (from the watcher, or when an operator asks), swapping every actor to them, rolling
//! back, and retiring or unloading the old ones. OTP's `code` module and release handler,
//! for cdylib plugins.
//!
//! - `loader`: one version of a library, mapped from a private copy, with every check;
//! - `swap`: suspend / code_change / commit or roll back / resume, all or nothing;
//! - `versions`: which versions stay mapped, and the policy that decides;
//! - `watcher`: plugin directories watched for settled, changed files;
//! - `server` (this module's `impl Code`): the operations, serialised per library.

pub mod loader;
mod server;
mod swap;
pub mod versions;
pub mod watcher;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::observe::Observer;
use crate::system::{BehaviourVersion, Birth, SpawnError, System};
use crate::util::ids::ActorId;
use versions::{FailedVersion, LibraryRecord, VersionPolicy};

pub(crate) use server::reload_loop;
pub(crate) use swap::EXTRA_NIL;

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
    /// Per library: serialises its loads and swaps (see `server`).
    reload_locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    /// Where each version's private copy lives.
    copy_dir: tempfile::TempDir,
    /// Deadlines on the plugin code a swap waits for.
    limits: Limits,
}

/// Deadlines on the plugin code a swap waits for (`[reload]` in the config), and the
/// stack of the thread that runs `code_change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long every actor of a behaviour has to reach a message boundary (OTP's
    /// `sys:suspend` default: 5 s).
    pub suspend_timeout: Duration,
    /// How long one actor's `code_change` (with the export of its old state) may run.
    pub code_change_timeout: Duration,
    /// Stack size of the thread running `code_change`.
    pub stack_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            suspend_timeout: Duration::from_millis(5000),
            code_change_timeout: Duration::from_millis(5000),
            stack_size: crate::system::scheduler::DEFAULT_STACK_SIZE,
        }
    }
}

impl Code {
    /// A code server with nothing loaded, copying libraries into `copy_dir`.
    pub(crate) fn new(
        system: Arc<System>,
        observer: Arc<Observer>,
        policy: VersionPolicy,
        copy_dir: tempfile::TempDir,
        limits: Limits,
    ) -> Code {
        Code {
            system,
            observer,
            behaviours: RwLock::new(HashMap::new()),
            libraries: Mutex::new(HashMap::new()),
            failed: Mutex::new(Vec::new()),
            policy,
            reload_locks: Mutex::new(HashMap::new()),
            copy_dir,
            limits,
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
        self.spawn_noting(behaviour, name, args, link, |_| {})
    }

    /// [`Code::spawn`], telling `registered` the new actor's id before its `init` runs
    /// (so whoever waits for `init` with a deadline knows whom to kill).
    pub(crate) fn spawn_noting(
        &self,
        behaviour: &str,
        name: Option<&str>,
        args: &[u8],
        link: Option<ActorId>,
        registered: impl FnOnce(ActorId),
    ) -> Result<ActorId, SpawnError> {
        let birth = self.register_new(behaviour, name, link, registered)?;
        self.system.run_init(birth, args)
    }

    /// Step 1 of a spawn (see `system::process::spawn`): the actor of the current version
    /// of `behaviour`, registered and starting; its `init` runs with
    /// [`System::run_init`](crate::system::System::run_init).
    pub(crate) fn register_new(
        &self,
        behaviour: &str,
        name: Option<&str>,
        link: Option<ActorId>,
        registered: impl FnOnce(ActorId),
    ) -> Result<Birth, SpawnError> {
        // Held until the actor is registered, not across its `init`: a swap either sees
        // this actor (and waits, with its deadline, for `init` to end: invariant 7 of
        // `actor`) or commits before it and we start on the new version (step 5 of
        // `swap`).
        let table = self.behaviours.read();
        let version = table.get(behaviour).cloned().ok_or_else(|| {
            let mut known: Vec<String> = table.keys().map(|k| k.to_string()).collect();
            known.sort();
            SpawnError::UnknownBehaviour {
                name: behaviour.to_string(),
                known,
            }
        })?;
        self.system.register_new(version, name, link, move |id| {
            drop(table);
            registered(id);
        })
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

    /// Where each version's private copy lives.
    pub(crate) fn copy_dir(&self) -> &Path {
        self.copy_dir.path()
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

/// Which libraries of the plugin directories the host loads: all `lib*.so` (`None`), or
/// only those named (`counter` or `libcounter.so`), so a directory such as `target/debug`
/// that also holds other crates' libraries can be watched safely.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection(pub(crate) Option<Vec<String>>);

impl Selection {
    /// Whether the library at `path` is one the host loads.
    pub(crate) fn wants(&self, path: &Path) -> bool {
        let Some(names) = &self.0 else { return true };
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        names
            .iter()
            .any(|n| n == file || Self::file_name(n) == file)
    }

    /// `counter` -> `libcounter.so` (on macOS `.dylib`); a file name stays as it is.
    pub(crate) fn file_name(name: &str) -> String {
        if name.starts_with("lib") && (name.ends_with(".so") || name.ends_with(".dylib")) {
            return name.to_string();
        }
        let ext = if cfg!(target_os = "macos") {
            "dylib"
        } else {
            "so"
        };
        format!("lib{}.{ext}", name.replace('-', "_"))
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
