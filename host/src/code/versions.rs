//! Version lifetime: which loaded versions of a library are current, retired, unloaded or
//! pinned, and the policy that decides.
//!
//! A version is *current* while new actors start on it. A successful swap makes the old
//! one *retired*: no actor runs it any more (the swap moved them all), but it stays mapped
//! — for `rollback`, and because closing a library is only safe when nothing made by it
//! is alive.
//!
//! By default ([`VersionPolicy::unload`] on) every retired version beyond the newest
//! [`VersionPolicy::retain`] is closed through [`loader::unload`], which refuses while
//! anything still holds the version and verifies with `dlopen(RTLD_NOLOAD)` that the
//! mapping went. What stays mapped anyway is *pinned*: recorded with the reason, checked
//! again at every later sweep; when it finally goes, its copy is deleted and it is reported
//! as unloaded. A pinned version never blocks a new one: it costs memory, is listed by
//! `ctl versions` and warned about (`version_pinned`), and that is all.
//!
//! A version that was loaded but never became current — its swap rolled back, or it was
//! refused after `dlopen` — is *failed*: it is closed the same way at once (or at a later
//! sweep if a swap still held it), pinned if it will not go, and listed until it does.
//!
//! [`VersionPolicy::max_retained`] bounds how many non-current versions of one library may
//! stay mapped. Reaching it logs `version_cap_reached`. In unload mode that is a warning
//! only (what is mapped then is pinned, and reloading goes on); with `unload = false` — the
//! operator asked for nothing ever to be closed — a new version of that library is refused
//! past the cap (the old one keeps serving), since every further one would stay mapped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::loader::{self, LoadedLibrary, Unloaded};
pub use crate::observe::events::{VersionFate, VersionReport};
pub use crate::observe::model::VersionInfo;

/// What to do with versions no actor runs any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionPolicy {
    /// Close retired versions (beyond `retain`) once nothing made by them is alive, as
    /// verified by [`loader::unload`]. On by default: without it a host that reloads for
    /// months maps every version it ever loaded and finally refuses new ones.
    pub unload: bool,
    /// Retired versions kept mapped per library, newest first, for `rollback`.
    pub retain: usize,
    /// Most non-current versions (retired plus pinned) one library may keep mapped.
    pub max_retained: usize,
    /// Largest library file the loader accepts, in bytes.
    pub max_library_bytes: u64,
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy {
            unload: true,
            retain: 1,
            max_retained: 64,
            max_library_bytes: loader::DEFAULT_MAX_LIBRARY_BYTES,
        }
    }
}

impl VersionPolicy {
    /// `Err(why)` if the policy cannot work: `max_retained = 0` would refuse (keep mode) or
    /// warn about (unload mode) every reload, and `retain` past `max_retained` asks to keep
    /// more versions for rollback than may be mapped.
    pub fn check(&self) -> Result<(), String> {
        if self.max_retained == 0 {
            return Err(
                "[versions] max_retained = 0 would leave no room for the version a \
                        reload retires, so every reload would be refused; it must be at least 1 \
                        (the default is 64)"
                    .into(),
            );
        }
        if self.retain > self.max_retained {
            return Err(format!(
                "[versions] retain = {} is more than max_retained = {}: rollback cannot keep \
                 more versions than may stay mapped; lower retain or raise max_retained",
                self.retain, self.max_retained
            ));
        }
        Ok(())
    }
}

/// A version that was closed but stays mapped.
#[derive(Debug, Clone)]
pub struct PinnedVersion {
    /// `name@version` of each behaviour it exported.
    pub behaviours: Vec<String>,
    /// Short content hash.
    pub hash: String,
    /// Its private copy, deleted once the mapping goes.
    pub copy: PathBuf,
    /// Why it could not be unloaded.
    pub reason: String,
}

/// A version that was mapped but never became current: its swap did not succeed, or the
/// loader refused it after `dlopen` and could not close it ([`loader::Stranded`]).
pub(crate) struct FailedVersion {
    /// The library it was to be a version of.
    pub(crate) library: PathBuf,
    pub(crate) behaviours: Vec<String>,
    pub(crate) hash: String,
    pub(crate) copy: PathBuf,
    pub(crate) loaded_at: SystemTime,
    /// Why it failed, then why it is still mapped.
    pub(crate) reason: String,
    /// Still open: a swap held it at the last try, or `unload = false`.
    pub(crate) lib: Option<Arc<LoadedLibrary>>,
}

impl FailedVersion {
    /// A failed version still open.
    pub(crate) fn open(lib: Arc<LoadedLibrary>, reason: String) -> FailedVersion {
        FailedVersion {
            library: lib.source.clone(),
            behaviours: describe(&lib),
            hash: lib.short_hash(),
            copy: lib.copy.clone(),
            loaded_at: lib.loaded_at,
            reason,
            lib: Some(lib),
        }
    }

    /// A library the loader refused and left mapped.
    pub(crate) fn stranded(library: &Path, s: loader::Stranded, why: &str) -> FailedVersion {
        FailedVersion {
            library: library.to_path_buf(),
            behaviours: Vec::new(),
            hash: loader::short_hash(&s.hash),
            copy: s.copy,
            loaded_at: SystemTime::now(),
            reason: format!("{why}; {}", s.reason),
            lib: None,
        }
    }

    fn report(&self, fate: VersionFate) -> VersionReport {
        VersionReport {
            library: self.library.clone(),
            behaviours: self.behaviours.clone(),
            hash: self.hash.clone(),
            fate,
        }
    }
}

/// Releases what failed loads left, as far as `policy` allows: closes the open ones
/// (in unload mode), and forgets those whose mapping went. What stays is listed by
/// `ctl versions` as `failed`.
pub(crate) fn release_failed(
    failed: &mut Vec<FailedVersion>,
    policy: &VersionPolicy,
) -> Vec<VersionReport> {
    let mut out = Vec::new();
    let mut keep = Vec::with_capacity(failed.len());
    for mut f in std::mem::take(failed) {
        match f.lib.take() {
            Some(lib) if policy.unload => match loader::unload(lib) {
                Err(lib) => {
                    f.lib = Some(lib);
                    keep.push(f);
                }
                Ok(Unloaded::Closed) => out.push(f.report(VersionFate::Unloaded)),
                Ok(Unloaded::Pinned(reason)) => {
                    f.reason = format!("{}; {reason}", f.reason);
                    out.push(f.report(VersionFate::Pinned(reason)));
                    keep.push(f);
                }
            },
            Some(lib) => {
                f.lib = Some(lib);
                keep.push(f);
            }
            None if !loader::still_mapped(&f.copy) => {
                let _ = std::fs::remove_file(&f.copy);
                out.push(f.report(VersionFate::Unloaded));
            }
            None => keep.push(f),
        }
    }
    *failed = keep;
    out
}

/// How [`FailedVersion`]s are listed.
pub(crate) fn describe_failed(f: &FailedVersion) -> VersionInfo {
    VersionInfo {
        library: f.library.clone(),
        behaviours: f.behaviours.clone(),
        hash: f.hash.clone(),
        loaded_at: f
            .loaded_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        status: "failed".into(),
        actors: 0,
        reason: Some(f.reason.clone()),
        copy: f.copy.clone(),
    }
}

fn describe(lib: &LoadedLibrary) -> Vec<String> {
    lib.behaviours
        .iter()
        .map(|b| format!("{}@{}", b.name, b.version))
        .collect()
}

/// The loaded versions of one library file.
pub(crate) struct LibraryRecord {
    /// The library file.
    pub(crate) path: PathBuf,
    /// The version new actors start on.
    pub(crate) current: Arc<LoadedLibrary>,
    /// Versions no actor runs, still mapped, oldest first.
    pub(crate) retired: Vec<Arc<LoadedLibrary>>,
    /// Versions closed but still mapped.
    pub(crate) pinned: Vec<PinnedVersion>,
    /// How many versions of this library were unloaded.
    pub(crate) unloaded: u64,
}

impl LibraryRecord {
    pub(crate) fn new(path: &Path, current: Arc<LoadedLibrary>) -> Self {
        LibraryRecord {
            path: path.to_path_buf(),
            current,
            retired: Vec::new(),
            pinned: Vec::new(),
            unloaded: 0,
        }
    }

    /// Non-current versions still mapped.
    pub(crate) fn retained(&self) -> usize {
        self.retired.len() + self.pinned.len()
    }

    /// `Err(reason)` if a new version may not be loaded: only with `unload = false`, when
    /// retiring the current one would pass the cap. In unload mode nothing blocks a
    /// reload: what a sweep cannot free is pinned, listed and warned about.
    pub(crate) fn check_room(&self, policy: &VersionPolicy) -> Result<(), String> {
        if policy.unload {
            return Ok(());
        }
        if self.retained() >= policy.max_retained {
            return Err(format!(
                "{} versions of {} are still mapped besides the current one, the cap \
                 (max_retained = {}); set [versions] unload = true or raise the cap",
                self.retained(),
                self.path.display(),
                policy.max_retained
            ));
        }
        Ok(())
    }

    /// Makes `new` current and retires the old current version.
    pub(crate) fn advance(&mut self, new: Arc<LoadedLibrary>) -> VersionReport {
        let old = std::mem::replace(&mut self.current, new);
        let report = self.report(&old, VersionFate::Retired);
        self.retired.push(old);
        report
    }

    /// Makes the retired version with `hash` current again (a rollback), retiring the
    /// current one. Returns `None` if no such retired version exists.
    pub(crate) fn restore(&mut self, hash: &loader::ContentHash) -> Option<VersionReport> {
        let i = self.retired.iter().position(|l| &l.hash == hash)?;
        let back = self.retired.remove(i);
        Some(self.advance(back))
    }

    fn report(&self, lib: &LoadedLibrary, fate: VersionFate) -> VersionReport {
        VersionReport {
            library: self.path.clone(),
            behaviours: describe(lib),
            hash: lib.short_hash(),
            fate,
        }
    }

    /// Applies the policy: in unload mode, closes retired versions beyond `retain`, oldest
    /// first, and re-checks pinned ones; then reports the cap if it is reached.
    pub(crate) fn sweep(&mut self, policy: &VersionPolicy) -> Vec<VersionReport> {
        let mut out = Vec::new();
        // A pinned version whose last holder went (its thread ended) is gone now.
        let (gone, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pinned)
            .into_iter()
            .partition(|p| !loader::still_mapped(&p.copy));
        self.pinned = still;
        for p in gone {
            let _ = std::fs::remove_file(&p.copy);
            self.unloaded += 1;
            out.push(VersionReport {
                library: self.path.clone(),
                behaviours: p.behaviours,
                hash: p.hash,
                fate: VersionFate::Unloaded,
            });
        }
        if policy.unload {
            let mut keep = Vec::with_capacity(self.retired.len());
            let excess = self.retired.len().saturating_sub(policy.retain);
            for (i, lib) in std::mem::take(&mut self.retired).into_iter().enumerate() {
                if i >= excess {
                    keep.push(lib);
                    continue;
                }
                let (behaviours, hash, copy) = (describe(&lib), lib.short_hash(), lib.copy.clone());
                match loader::unload(lib) {
                    // Still held (an actor or a swap uses it): try again next sweep.
                    Err(lib) => keep.push(lib),
                    Ok(Unloaded::Closed) => {
                        self.unloaded += 1;
                        out.push(VersionReport {
                            library: self.path.clone(),
                            behaviours,
                            hash,
                            fate: VersionFate::Unloaded,
                        });
                    }
                    Ok(Unloaded::Pinned(reason)) => {
                        self.pinned.push(PinnedVersion {
                            behaviours: behaviours.clone(),
                            hash: hash.clone(),
                            copy,
                            reason: reason.clone(),
                        });
                        out.push(VersionReport {
                            library: self.path.clone(),
                            behaviours,
                            hash,
                            fate: VersionFate::Pinned(reason),
                        });
                    }
                }
            }
            self.retired = keep;
        }
        if self.retained() >= policy.max_retained {
            out.push(VersionReport {
                library: self.path.clone(),
                behaviours: describe(&self.current),
                hash: self.current.short_hash(),
                fate: VersionFate::CapReached {
                    retained: self.retained(),
                    max: policy.max_retained,
                    refuses: !policy.unload,
                },
            });
        }
        out
    }
}

impl LibraryRecord {
    /// Every version of this library, current first; `actors` counts actors per behaviour
    /// version hash.
    pub(crate) fn describe(&self, actors: impl Fn(&LoadedLibrary) -> usize) -> Vec<VersionInfo> {
        let since = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        let mut out = vec![VersionInfo {
            library: self.path.clone(),
            behaviours: describe(&self.current),
            hash: self.current.short_hash(),
            loaded_at: since(self.current.loaded_at),
            status: "current".into(),
            actors: actors(&self.current),
            reason: None,
            copy: self.current.copy.clone(),
        }];
        for lib in self.retired.iter().rev() {
            out.push(VersionInfo {
                library: self.path.clone(),
                behaviours: describe(lib),
                hash: lib.short_hash(),
                loaded_at: since(lib.loaded_at),
                status: "retired".into(),
                actors: actors(lib),
                reason: None,
                copy: lib.copy.clone(),
            });
        }
        for p in &self.pinned {
            out.push(VersionInfo {
                library: self.path.clone(),
                behaviours: p.behaviours.clone(),
                hash: p.hash.clone(),
                loaded_at: 0,
                status: "pinned".into(),
                actors: 0,
                reason: Some(p.reason.clone()),
                copy: p.copy.clone(),
            });
        }
        out
    }
}
