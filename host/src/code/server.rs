//! The code server's operations: load a library (first load or reload), roll back,
//! describe and sweep versions. Each takes its library's serial lock, so loads and swaps
//! of one library happen one at a time; a slow swap of one library delays the next reload
//! of that library only (never another library's, a spawn or a restart).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use super::loader::{self, LoadedLibrary};
use super::swap::{self, Direction};
use super::versions::{
    self, FailedVersion, LibraryRecord, VersionFate, VersionInfo, VersionReport,
};
use super::watcher::WatchEvent;
use super::{Code, ReloadError};
use crate::observe::events::{self, Event, HostEvent, ReloadOutcome, ReloadReport};

impl Code {
    /// Loads the library at `path`: a first load registers its behaviours, a later one
    /// swaps every actor of them to the new version. Logs and publishes the outcome.
    pub(crate) fn load_path(&self, path: &Path) -> HostEvent {
        self.load_into(path, path, &swap::EXTRA_NIL)
    }

    /// Loads `file` as the next version of the library known by `path` (the watched file;
    /// `file` is the same path, or another build given by an operator).
    /// `extra` (ETF) reaches every `code_change`.
    pub(crate) fn load_into(&self, path: &Path, file: &Path, extra: &[u8]) -> HostEvent {
        self.load_expecting(path, file, None, extra)
    }

    /// As [`Code::load_into`]; with `expect`, only the bytes with that hash (what the
    /// watcher checked) are loaded.
    pub(crate) fn load_expecting(
        &self,
        path: &Path,
        file: &Path,
        expect: Option<loader::ContentHash>,
        extra: &[u8],
    ) -> HostEvent {
        let key = library_key(path);
        let file = if file == path { key.as_path() } else { file };
        let path = key.as_path();
        let serial = self.serial(path);
        let _serial = serial.lock();
        let previous = match self.libraries.lock().get(path) {
            None => None,
            Some(rec) => match rec.check_room(&self.policy) {
                Ok(()) => Some(rec.current.clone()),
                Err(reason) => {
                    let ev = rejected(&rec.current, reason);
                    drop(_serial);
                    self.observer.publish(ev.clone());
                    return ev;
                }
            },
        };
        let started = Instant::now();
        let limits = loader::LoadLimits {
            max_bytes: self.policy.max_library_bytes,
            expect,
        };
        let lib = match loader::load_checked(file, self.copy_dir.path(), &limits) {
            Ok(lib) => Arc::new(lib),
            Err(failure) => {
                let (e, stranded) = *failure;
                let reason = e.to_string();
                let stranded =
                    stranded.map(|s| FailedVersion::stranded(path, s, "refused by the loader"));
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
                self.observer.publish(ev.clone());
                if let Some(f) = stranded {
                    let pinned = VersionFate::Pinned(f.reason.clone());
                    self.observer.publish(HostEvent::Version(VersionReport {
                        library: f.library.clone(),
                        behaviours: f.behaviours.clone(),
                        hash: f.hash.clone(),
                        fate: pinned,
                    }));
                    self.failed.lock().push(f);
                }
                return ev;
            }
        };
        let load_time = started.elapsed();
        match previous {
            None => self.install_first(path, lib, load_time),
            Some(old) if old.hash == lib.hash => {
                // Same bytes as what runs: nothing to do (the watcher normally filters this).
                let ev = HostEvent::Load {
                    path: path.to_path_buf(),
                    outcome: events::LoadOutcome::Unchanged,
                    behaviours: names(&lib),
                    hash: lib.short_hash(),
                    reason: None,
                };
                self.fail(lib, "the same bytes as the running version".into());
                ev
            }
            Some(old) => {
                let ev = swap::swap(self, &old, &lib, Direction::Up, extra);
                drop(old);
                if let HostEvent::Reload(r) = &ev {
                    if r.outcome != ReloadOutcome::Ok {
                        let why = r.reason.clone().unwrap_or_else(|| "failed".into());
                        let ev = self.settle_swap(path, ev, |_| None);
                        self.fail(lib, format!("its reload failed: {why}"));
                        return ev;
                    }
                }
                self.settle_swap(path, ev, |rec| Some(rec.advance(lib)))
            }
        }
    }

    /// A version that was loaded and will never be current: released at once where the
    /// policy allows (see [`versions::release_failed`]), otherwise kept and listed.
    fn fail(&self, lib: Arc<LoadedLibrary>, reason: String) {
        let fates = {
            let mut failed = self.failed.lock();
            failed.push(FailedVersion::open(lib, reason));
            versions::release_failed(&mut failed, &self.policy)
        };
        for f in fates {
            self.observer.publish(HostEvent::Version(f));
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
        self.observer.publish(ev.clone());
        ev
    }

    /// The lock that serialises loads and swaps of the library at `path`.
    fn serial(&self, path: &Path) -> Arc<parking_lot::Mutex<()>> {
        self.reload_locks
            .lock()
            .entry(path.to_path_buf())
            .or_default()
            .clone()
    }

    /// The library file that provides `behaviour` now.
    pub(crate) fn library_of(&self, behaviour: &str) -> Result<PathBuf, ReloadError> {
        self.libraries
            .lock()
            .iter()
            .find(|(_, r)| r.current.behaviour(behaviour).is_some())
            .map(|(p, _)| p.clone())
            .ok_or_else(|| ReloadError::UnknownBehaviour(behaviour.to_string()))
    }

    /// Swaps `behaviour`'s library back to its most recent retired version.
    /// `extra` (ETF) reaches the newer version's `downgrade` and the older one's
    /// `code_change`.
    pub(crate) fn rollback(&self, behaviour: &str, extra: &[u8]) -> Result<HostEvent, ReloadError> {
        let path = self.library_of(behaviour)?;
        let serial = self.serial(&path);
        let _serial = serial.lock();
        let (current, target) = {
            let libs = self.libraries.lock();
            let rec = libs
                .get(&path)
                .ok_or_else(|| ReloadError::LibraryGone(path.clone()))?;
            let target = rec
                .retired
                .last()
                .cloned()
                .ok_or_else(|| ReloadError::NothingToRollBackTo(path.clone()))?;
            (rec.current.clone(), target)
        };
        let ev = swap::swap(self, &current, &target, Direction::Down, extra);
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
                fates.extend(rec.sweep(&self.policy));
            }
            drop(libs);
            fates.extend(versions::release_failed(
                &mut self.failed.lock(),
                &self.policy,
            ));
        }
        self.observer.publish(ev.clone());
        for f in fates {
            self.observer.publish(HostEvent::Version(f));
        }
        ev
    }

    pub(crate) fn versions(&self) -> Vec<VersionInfo> {
        // Actors per behaviour version, counted once (a version is one content hash).
        let mut per_hash: HashMap<crate::util::hash::ContentHash, usize> = HashMap::new();
        for a in self.system.registry.select(|_| true) {
            // Published, never the core: an actor in a long callback must not hold this
            // up (invariant 5 of `actor`).
            let v = a.running_version().hash;
            *per_hash.entry(v).or_default() += 1;
        }
        let libs = self.libraries.lock();
        let mut paths: Vec<&PathBuf> = libs.keys().collect();
        paths.sort();
        let mut out: Vec<VersionInfo> = paths
            .into_iter()
            .flat_map(|p| libs[p].describe(|l| per_hash.get(&l.hash).copied().unwrap_or(0)))
            .collect();
        out.extend(self.failed.lock().iter().map(versions::describe_failed));
        out
    }

    pub(crate) fn sweep_versions(&self) -> Vec<VersionReport> {
        let paths: Vec<PathBuf> = self.libraries.lock().keys().cloned().collect();
        let mut fates: Vec<VersionReport> = Vec::new();
        for path in paths {
            let serial = self.serial(&path);
            let _serial = serial.lock();
            if let Some(r) = self.libraries.lock().get_mut(&path) {
                fates.extend(
                    r.sweep(&self.policy)
                        .into_iter()
                        .filter(|f| !matches!(f.fate, VersionFate::CapReached { .. })),
                );
            }
        }
        fates.extend(versions::release_failed(
            &mut self.failed.lock(),
            &self.policy,
        ));
        for f in &fates {
            self.observer.publish(HostEvent::Version(f.clone()));
        }
        fates
    }
}

/// The name a library is known by: its directory made canonical, and its file name.
///
/// `lib.so`, `./lib.so` and `dir/../dir/lib.so` are one library. The file name itself is
/// not resolved: a watched `libx.so` that is a symlink stays `libx.so` when the link is
/// repointed (`ln -sfn` deploys), instead of becoming whatever file it points to now.
pub(super) fn library_key(path: &Path) -> PathBuf {
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

/// The reloader thread: applies what the watcher reports until the watcher goes.
pub(crate) fn reload_loop(
    rx: Receiver<WatchEvent>,
    code: std::sync::Weak<Code>,
    selection: super::Selection,
) {
    // Ends when the watcher is dropped (its sender goes away).
    for ev in rx.iter() {
        let Some(code) = code.upgrade() else { return };
        let path = match &ev {
            WatchEvent::Changed(a) => &a.path,
            WatchEvent::Removed { path } | WatchEvent::Rejected { path, .. } => path,
        };
        if !selection.wants(path) {
            continue; // another crate's library in a shared directory
        }
        match ev {
            WatchEvent::Changed(a) => {
                code.load_expecting(&a.path, &a.path, Some(a.hash), &swap::EXTRA_NIL);
            }
            WatchEvent::Removed { path } => {
                code.observer.emit(Event::ArtifactRemoved { path: &path });
            }
            WatchEvent::Rejected { path, reason } => {
                let ev = HostEvent::Load {
                    path: path.clone(),
                    outcome: events::LoadOutcome::Rejected,
                    behaviours: Vec::new(),
                    hash: String::new(),
                    reason: Some(reason),
                };
                code.observer.publish(ev);
            }
        }
    }
}
