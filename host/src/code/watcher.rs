//! Watches the plugin directories and reports each settled, changed plugin artifact once.
//!
//! The host hot-swaps a behaviour when its `cdylib` changes on disk. This module turns
//! the noisy stream of file-system events into one [`WatchEvent`] per real change:
//! [`WatchEvent::Changed`] carries the artifact's path, length and content hash, ready to
//! be copied and loaded by the loader.
//!
//! # What cargo does to the file, and why each step below exists
//!
//! cargo links into `target/<profile>/deps/libX-<hash>.so`, then *removes*
//! `target/<profile>/libX.so` and *hard-links* the new file in its place. inotify therefore
//! sees `DELETE` then `CREATE` on the directory and never a `MODIFY` on the file; other
//! writers (`cp`, a linker writing in place, an editor) produce `CREATE`/`MODIFY`
//! sequences of any length instead. Hence:
//!
//! * **Watch directories, not files.** A watch on the file itself dies with the old inode
//!   at the `DELETE`; a directory watch (non-recursive) sees every name come and go.
//! * **Debounce per path** ([`WatchConfig::debounce`]). Every event for a path only marks
//!   it "touched" and pushes its check back; the check runs once the path has been quiet
//!   for the debounce period. The `DELETE`/`CREATE` pair of one cargo re-link (microseconds
//!   apart) and the many `MODIFY`s of one copy thus become a single check.
//! * **Settle check** ([`WatchConfig::settle`]). Quiet is not the same as finished (a slow
//!   writer can pause), so the check stats the file twice, `settle` apart, and requires
//!   the same (device, inode, length, mtime). It then requires a regular file (symlinks
//!   are followed; a dangling link or a directory is not an artifact), non-empty, starting
//!   with the platform's object-file magic (`\x7fELF`; Mach-O on macOS). On ELF it also
//!   requires the program and section header tables that the header declares to lie inside
//!   the file: linkers write those tables last, so this catches a file that a writer
//!   paused in the middle of. Finally the file is hashed and stat'ed again; if anything
//!   moved while it was being read the check starts over.
//! * **Retry with backoff** ([`WatchConfig::give_up_after`]). A check that fails (still
//!   changing, empty, not an object file, incomplete) is retried with exponential backoff,
//!   because a file caught between two writes fails in exactly these ways; a new event
//!   for the path restarts the wait. Only when the path has not settled into a valid
//!   artifact within `give_up_after` of its first event is it reported as
//!   [`WatchEvent::Rejected`]. A half-written file is therefore never reported as
//!   `Changed`, and a genuinely bad file is reported once, late, rather than never.
//! * **Hash, and compare with the last reported hash.** cargo re-links identical bytes
//!   when nothing changed (and `touch` or a re-link changes mtime but not content), and
//!   an identical rebuild must not cause a reload. So a settled artifact is reported only
//!   when its blake3 hash differs from the last one reported, seeded by `known` in
//!   [`Watcher::start`], or given by [`Watcher::mark_known`] for that path.
//!
//! # Threads
//!
//! One worker thread owns all per-path state, the timers and the `notify` watcher (which
//! runs its own single event-loop thread); there is no thread per file. File-system
//! events, [`Watcher::mark_known`] calls and the stop request reach the worker through one
//! channel, so no state is shared and nothing is locked. Dropping the [`Watcher`] stops
//! the worker and joins it.
//!
//! # Why not `notify-debouncer-full`
//!
//! The settle check and the retries already need a per-path timer machine; the debouncer
//! would be a second timer layer in front of it, adding its own tick granularity to the
//! latency budget (100 ms from settled file to all actors swapped), another thread, and a
//! file-id cache that walks the directory, none of which we use: this module treats an
//! event only as "look at this path again soon", and decides everything from `stat` and
//! the file's bytes. So it uses `notify`'s raw watcher and debounces itself.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crate::observe::Event;
use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

pub use crate::util::hash::ContentHash;

/// One artifact as found on disk: a settled, non-empty object file and the hash of exactly
/// the bytes that were on disk when it settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The path as seen through the watched directory (`dir.join(file_name)`, with `dir`
    /// spelled as the caller gave it). Paths are the key for "already known" hashes, so
    /// give [`scan`] and [`Watcher::start`] the same directory spelling.
    pub path: PathBuf,
    /// blake3 of the whole file. The loader may compare it with its private copy.
    pub hash: ContentHash,
    /// Length in bytes at the time of hashing.
    pub len: u64,
}

/// What the watcher tells the host.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The artifact settled and its hash differs from the last one reported or seeded for
    /// this path: load it and swap.
    Changed(Artifact),
    /// A previously reported (or seeded) artifact is gone and stayed gone after the
    /// debounce and settle periods. Running code is unaffected; the last reported hash
    /// is kept, so the same bytes coming back are not reported again.
    Removed {
        /// The path that disappeared.
        path: PathBuf,
    },
    /// A file matching the filter could not be accepted: it could not be read, is not an
    /// object file, is empty or incomplete, is not a regular file, or never settled within
    /// [`WatchConfig::give_up_after`]. Reported once per burst of changes; the host should
    /// log it and keep the running version.
    Rejected {
        /// The offending path.
        path: PathBuf,
        /// Why, in words (e.g. "not an ELF file", "empty file", "file keeps changing").
        reason: String,
    },
}

/// Timing of the watcher. The defaults keep the watcher's share of the 100 ms
/// settle-to-swapped budget at about 40 ms plus hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// How long a path must be free of events before it is checked (default 30 ms).
    /// Merges cargo's DELETE+CREATE and a writer's many MODIFYs into one check.
    pub debounce: Duration,
    /// Interval between the two stats that must agree for a file to count as settled
    /// (default 10 ms); also the base of the retry backoff.
    pub settle: Duration,
    /// How long after a path's first event the watcher keeps retrying before it reports
    /// [`WatchEvent::Rejected`] (default 2 s).
    pub give_up_after: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            debounce: Duration::from_millis(30),
            settle: Duration::from_millis(10),
            give_up_after: Duration::from_secs(2),
        }
    }
}

/// Decides which file names in a watched directory are plugin artifacts. A plain `fn` so
/// it is `Copy`, `Send` and trivially shareable with the worker thread.
pub type ArtifactFilter = fn(&Path) -> bool;

/// Default filter: file name `lib*.so` (`lib*.dylib` on macOS), which is what cargo names a
/// `cdylib` in `target/<profile>/`. Editor backups and `*.so.tmp` files do not match.
pub fn is_plugin_artifact(path: &Path) -> bool {
    #[cfg(target_os = "macos")]
    const SUFFIX: &str = ".dylib";
    #[cfg(not(target_os = "macos"))]
    const SUFFIX: &str = ".so";
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("lib") && n.ends_with(SUFFIX))
}

/// Why the watcher could not start, or a scan could not run. Every message names the path.
#[derive(Debug)]
pub enum WatchError {
    /// A configured plugin directory does not exist. The host treats this as a config
    /// error rather than silently watching nothing.
    MissingDir(PathBuf),
    /// A directory could not be read, is not a directory, or the worker could not start.
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The OS watch could not be set up (e.g. the inotify watch limit is reached).
    Notify(notify::Error),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::MissingDir(path) => {
                write!(f, "plugin directory {} does not exist", path.display())
            }
            WatchError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            WatchError::Notify(e) => write!(f, "cannot watch plugin directory: {e}"),
        }
    }
}

impl std::error::Error for WatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WatchError::MissingDir(_) => None,
            WatchError::Io { source, .. } => Some(source),
            WatchError::Notify(e) => Some(e),
        }
    }
}

/// Scans `dirs` once for existing artifacts, for the host's initial load.
///
/// Each matching file gets the same settle check as in the watcher (all files settle in
/// parallel, so this takes about [`WatchConfig::settle`] plus hashing). A file that is
/// still changing is retried for up to the default `give_up_after`; a file that is settled
/// but invalid (not an object file, empty, incomplete, a directory) is skipped with a
/// warning at once, since nothing more is going to happen to it during a scan. Pass the
/// result as `known` to [`Watcher::start`]; anything skipped here is then looked at again
/// by the watcher.
///
/// Errors name a missing or unreadable directory. The result is sorted by path.
pub fn scan(dirs: &[PathBuf], filter: ArtifactFilter) -> Result<Vec<Artifact>, WatchError> {
    let cfg = WatchConfig {
        debounce: Duration::ZERO,
        ..WatchConfig::default()
    };
    let mut tracker = Tracker::new(cfg, false);
    let start = Instant::now();
    let mut out = Vec::new();
    for dir in dedup(dirs) {
        check_dir(&dir)?;
        for path in list_artifacts(&dir, filter).map_err(|source| WatchError::Io {
            path: dir.clone(),
            source,
        })? {
            tracker.touch(path, start, &mut out);
        }
    }
    while let Some(due) = tracker.next_due() {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        tracker.run_due(Instant::now(), &mut out);
    }
    let mut found = Vec::new();
    for event in out {
        match event {
            WatchEvent::Changed(artifact) => found.push(artifact),
            WatchEvent::Rejected { path, reason } => {
                Event::WatchScanSkip {
                    path: &path,
                    reason: &reason,
                }
                .log();
            }
            // Nothing was known before the scan, so nothing can be reported removed.
            WatchEvent::Removed { .. } => {}
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// blake3 hash of the whole file at `path`, streamed (no whole-file buffer). Exposed so
/// the loader and tests hash exactly the way the watcher does.
pub fn hash_file(path: &Path) -> io::Result<ContentHash> {
    let mut file = File::open(path)?;
    Ok(hash_stream(&mut file)?.hash)
}

/// A running watcher. Events go to the `Sender` given to [`Watcher::start`]; dropping the
/// `Watcher` stops the worker thread and joins it.
pub struct Watcher {
    msgs: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Watcher {
    /// Starts watching `dirs` (non-recursively) for files accepted by `filter`.
    ///
    /// `known` holds the artifacts the host has already loaded (normally from [`scan`]);
    /// their hashes seed the "last reported" state, so they are not reported again. Every
    /// matching file already on disk is checked once right after start, which closes the
    /// window between the scan and the watch: anything that changed (or appeared, or
    /// disappeared) in between is reported; unchanged files are not.
    ///
    /// Fails with [`WatchError::MissingDir`] naming the first directory that does not
    /// exist, and with [`WatchError::Io`] if a path is not a directory. If the receiving
    /// end of `tx` is dropped, the worker stops on its next report.
    pub fn start(
        dirs: &[PathBuf],
        filter: ArtifactFilter,
        known: &[Artifact],
        cfg: WatchConfig,
        tx: Sender<WatchEvent>,
    ) -> Result<Watcher, WatchError> {
        let (msgs, inbox) = channel::unbounded();
        let handler_msgs = msgs.clone();
        // Runs on notify's event-loop thread; the worker may be gone at shutdown, hence
        // the ignored send error.
        let mut fs_watcher = notify::recommended_watcher(move |res| {
            let _ = handler_msgs.send(Msg::Fs(res));
        })
        .map_err(WatchError::Notify)?;

        let mut watched = Vec::new();
        for dir in dedup(dirs) {
            check_dir(&dir)?;
            fs_watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| match e.kind {
                    notify::ErrorKind::PathNotFound => WatchError::MissingDir(dir.clone()),
                    _ => WatchError::Notify(e),
                })?;
            // Identity taken after the watch is in place, so it describes the inode the
            // watch is on (see `Worker::check_dirs`).
            let id = dir_id(&dir);
            watched.push(WatchedDir {
                path: dir,
                id,
                watch_dead: false,
            });
        }

        let now = Instant::now();
        let mut worker = Worker {
            tracker: Tracker::new(cfg, true),
            filter,
            dirs: watched,
            fs_watcher,
            tx,
            next_dir_check: now + DIR_CHECK_EVERY,
            out: Vec::new(),
            stop: false,
        };
        for artifact in known {
            worker.tracker.seed(&artifact.path, artifact.hash);
        }
        worker.rescan_all(now);

        let thread = thread::Builder::new()
            .name("plugin-watcher".into())
            .spawn(move || worker.run(inbox))
            .map_err(|source| WatchError::Io {
                path: PathBuf::from("<plugin-watcher thread>"),
                source,
            })?;
        Ok(Watcher {
            msgs,
            thread: Some(thread),
        })
    }

    /// Records `artifact.hash` as the current content of `artifact.path` (e.g. after the
    /// host loaded it by hand), so the watcher does not report it again. Applies to every
    /// check that finishes after the worker receives this; a report already sent stays
    /// sent.
    pub fn mark_known(&self, artifact: &Artifact) {
        let _ = self.msgs.send(Msg::MarkKnown(artifact.clone()));
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.msgs.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                Event::WatchStop { panicked: true }.log();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Worker thread: owns the notify watcher, the directories and the per-path tracker.
// ---------------------------------------------------------------------------------------

/// How often the watched directories are stat'ed to notice one being removed, replaced or
/// renamed away (the inotify watch follows the old inode, so it goes quiet).
const DIR_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How often a lost directory is polled for its return.
const LOST_DIR_POLL: Duration = Duration::from_millis(50);
/// Upper bound of the retry backoff, so a file that becomes valid is picked up promptly.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

enum Msg {
    Fs(notify::Result<notify::Event>),
    MarkKnown(Artifact),
    Stop,
}

struct WatchedDir {
    path: PathBuf,
    /// (device, inode) of the directory the OS watch is on; `None` while the directory is
    /// missing and unwatched.
    id: Option<(u64, u64)>,
    /// The OS said the watched directory was deleted or moved; drop the watch at the next
    /// `check_dirs` whatever the current identity says.
    watch_dead: bool,
}

struct Worker {
    tracker: Tracker,
    filter: ArtifactFilter,
    dirs: Vec<WatchedDir>,
    fs_watcher: RecommendedWatcher,
    tx: Sender<WatchEvent>,
    next_dir_check: Instant,
    /// Reports produced by the tracker, sent after each step.
    out: Vec<WatchEvent>,
    /// Set when the host's receiver is gone: nobody is listening, so stop.
    stop: bool,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Msg>) {
        Event::WatchStart {
            dirs: self.dirs.len(),
        }
        .log();
        loop {
            let now = Instant::now();
            if now >= self.next_dir_check {
                self.check_dirs(now);
            }
            self.tracker.run_due(now, &mut self.out);
            self.flush();
            if self.stop {
                break;
            }
            let deadline = match self.tracker.next_due() {
                Some(due) => due.min(self.next_dir_check),
                None => self.next_dir_check,
            };
            match inbox.recv_deadline(deadline) {
                Ok(Msg::Fs(Ok(event))) => self.on_fs_event(event),
                Ok(Msg::Fs(Err(e))) => {
                    // Events may have been lost (e.g. watch limit); look at everything.
                    Event::WatchError {
                        error: &e.to_string(),
                    }
                    .log();
                    self.rescan_all(Instant::now());
                }
                Ok(Msg::MarkKnown(artifact)) => {
                    self.tracker.seed(&artifact.path, artifact.hash);
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        Event::WatchStop { panicked: false }.log();
        // `self.fs_watcher` drops here, which stops notify's event-loop thread.
    }

    fn flush(&mut self) {
        for event in self.out.drain(..) {
            Event::WatchReport {
                report: &format!("{event:?}"),
            }
            .log();
            if self.tx.send(event).is_err() {
                Event::WatchStop { panicked: false }.log();
                self.stop = true;
                break;
            }
        }
    }

    fn on_fs_event(&mut self, event: notify::Event) {
        if event.need_rescan() {
            // The kernel queue overflowed: events were dropped, so trust nothing.
            Event::WatchOverflow.log();
            self.rescan_all(Instant::now());
            return;
        }
        match event.kind {
            // Opens and read-only closes carry no change, and our own hashing produces
            // them: treating them as touches would make every check trigger another.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return,
            _ => {}
        }
        let now = Instant::now();
        for path in event.paths {
            if let Some(dir) = self.dirs.iter_mut().find(|d| d.path == path) {
                // The directory itself was removed or moved away: its watch is dead even
                // if a new directory already stands at the path (possibly with the same
                // recycled inode number, so `check_dirs` could not tell). Re-watch now.
                if matches!(
                    event.kind,
                    EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                ) {
                    Event::WatchDirEvent { dir: &dir.path }.log();
                    dir.watch_dead = true;
                    self.next_dir_check = now;
                }
                continue;
            }
            let in_watched_dir = path
                .parent()
                .is_some_and(|parent| self.dirs.iter().any(|d| d.path == parent));
            if in_watched_dir && (self.filter)(&path) {
                self.tracker.touch(path, now, &mut self.out);
            }
        }
    }

    /// Stats every watched directory. A directory that disappeared, was replaced by a new
    /// one (different inode), or was reported deleted/moved by the OS has lost its watch:
    /// drop the watch and poll until the directory exists again, then watch it again and
    /// look at everything in it (events between the loss and the new watch are lost).
    fn check_dirs(&mut self, now: Instant) {
        let mut any_lost = false;
        for i in 0..self.dirs.len() {
            let path = self.dirs[i].path.clone();
            let current = dir_id(&path);
            let dir = &mut self.dirs[i];
            let lost = dir.id.is_some() && (dir.id != current || dir.watch_dead);
            dir.watch_dead = false;
            if lost {
                Event::WatchDirLost { dir: &path }.log();
                dir.id = None;
                // notify may already have dropped it (DELETE_SELF); the error is moot.
                let _ = self.fs_watcher.unwatch(&path);
                // A rename gives no per-file events: look at what we reported there, so
                // artifacts that went with the old directory are reported `Removed`.
                self.rescan_dir(&path, now);
            }
            if self.dirs[i].id.is_none() && current.is_some() {
                match self.fs_watcher.watch(&path, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        // Taken after the watch exists, so it names the watched inode.
                        self.dirs[i].id = dir_id(&path);
                        Event::WatchDirBack { dir: &path }.log();
                        // Whatever was written before the watch existed.
                        self.rescan_dir(&path, now);
                    }
                    Err(e) => {
                        Event::WatchDirRetry {
                            dir: &path,
                            error: &e.to_string(),
                        }
                        .log();
                    }
                }
            }
            any_lost |= self.dirs[i].id.is_none();
        }
        let every = if any_lost {
            LOST_DIR_POLL
        } else {
            DIR_CHECK_EVERY
        };
        self.next_dir_check = now + every;
    }

    fn rescan_all(&mut self, now: Instant) {
        let dirs: Vec<PathBuf> = self.dirs.iter().map(|d| d.path.clone()).collect();
        for dir in dirs {
            self.rescan_dir(&dir, now);
        }
    }

    /// Touches every matching file in `dir` and every tracked path in it (the latter so a
    /// known artifact that vanished without an event is reported `Removed`).
    fn rescan_dir(&mut self, dir: &Path, now: Instant) {
        let mut paths = list_artifacts(dir, self.filter).unwrap_or_default();
        paths.extend(self.tracker.paths_in(dir));
        paths.sort();
        paths.dedup();
        for path in paths {
            self.tracker.touch(path, now, &mut self.out);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tracker: per-path debounce / settle / retry state machine, shared by `scan` and the
// worker. It never blocks; it says when it next wants to run (`next_due`).
// ---------------------------------------------------------------------------------------

struct Tracker {
    cfg: WatchConfig,
    /// Retry settled-but-invalid files until `give_up_after` (watcher) or reject them at
    /// once (scan). Still-changing files are retried either way.
    retry_invalid: bool,
    entries: HashMap<PathBuf, Entry>,
}

#[derive(Default)]
struct Entry {
    /// Last hash reported as `Changed`, seeded or marked known. Never cleared (not even by
    /// `Removed`): the invariant is "report Changed iff the settled hash differs from this".
    reported: Option<ContentHash>,
    /// Whether the host currently believes the artifact exists (reported/seeded and not
    /// reported `Removed` since). `Removed` is reported only when this is true, so a
    /// temporary file that came and went produces nothing.
    present: bool,
    /// An unfinished check; `None` when the path is idle.
    pending: Option<Pending>,
}

struct Pending {
    /// First event of this burst; the give-up deadline counts from here.
    burst_start: Instant,
    /// When the next step runs.
    due: Instant,
    phase: Phase,
    /// Failed attempts since the last event (drives the backoff).
    attempt: u32,
    /// Why the last attempt failed, reported if we give up.
    last_reason: Option<String>,
}

enum Phase {
    /// First stat after the debounce.
    Probe,
    /// The file had this signature `settle` ago; it must still have it.
    Confirm(Sig),
    /// The file was missing `settle` ago; it must still be missing to report `Removed`.
    ConfirmMissing,
}

/// What a stat says about a file's identity and content version. Equal signatures across
/// the settle interval mean nobody wrote, truncated or replaced the file in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

enum Probe {
    Missing,
    Present(Sig),
    Bad(Failure),
}

struct Failure {
    reason: String,
    kind: FailureKind,
}

#[derive(PartialEq, Eq)]
enum FailureKind {
    /// Might resolve by itself (mid-write, link target not there yet): retry.
    Transient,
    /// The file is still changing; the next attempt compares against this signature.
    Unstable(Option<Sig>),
    /// Cannot become an artifact without a new event (a directory, a device): reject now.
    Permanent,
}

impl Failure {
    fn transient(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            kind: FailureKind::Transient,
        }
    }
    fn unstable(sig: Option<Sig>) -> Self {
        Failure {
            reason: "file keeps changing".into(),
            kind: FailureKind::Unstable(sig),
        }
    }
    fn permanent(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            kind: FailureKind::Permanent,
        }
    }
}

enum Next {
    Wait(Phase, Duration),
    Found(Artifact),
    Gone,
    Fail(Failure),
}

impl Tracker {
    fn new(cfg: WatchConfig, retry_invalid: bool) -> Self {
        Tracker {
            cfg,
            retry_invalid,
            entries: HashMap::new(),
        }
    }

    fn seed(&mut self, path: &Path, hash: ContentHash) {
        let entry = self.entries.entry(path.to_path_buf()).or_default();
        entry.reported = Some(hash);
        entry.present = true;
    }

    fn paths_in(&self, dir: &Path) -> Vec<PathBuf> {
        self.entries
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect()
    }

    fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| e.pending.as_ref().map(|p| p.due))
            .min()
    }

    /// Something happened to `path`: (re)start its debounce.
    fn touch(&mut self, path: PathBuf, now: Instant, out: &mut Vec<WatchEvent>) {
        let give_up = self.cfg.give_up_after;
        let entry = self.entries.entry(path.clone()).or_default();
        // A path that keeps receiving events never gets quiet enough to be checked, so
        // the give-up deadline is enforced here too. The event that arrives after it
        // starts a fresh burst, so the file is still reported once it finally settles.
        if let Some(p) = &entry.pending {
            if now >= p.burst_start + give_up {
                let reason = p
                    .last_reason
                    .clone()
                    .unwrap_or_else(|| format!("file keeps changing (not settled in {give_up:?})"));
                out.push(WatchEvent::Rejected {
                    path: path.clone(),
                    reason,
                });
                entry.pending = None;
            }
        }
        let due = now + self.cfg.debounce;
        match &mut entry.pending {
            Some(p) => {
                p.phase = Phase::Probe;
                p.due = due;
                p.attempt = 0;
            }
            None => {
                entry.pending = Some(Pending {
                    burst_start: now,
                    due,
                    phase: Phase::Probe,
                    attempt: 0,
                    last_reason: None,
                })
            }
        }
    }

    /// Runs every step that is due, earliest first, so reports keep the order in which
    /// paths settled.
    fn run_due(&mut self, now: Instant, out: &mut Vec<WatchEvent>) {
        let mut due: Vec<(Instant, PathBuf)> = self
            .entries
            .iter()
            .filter_map(|(path, e)| match &e.pending {
                Some(p) if p.due <= now => Some((p.due, path.clone())),
                _ => None,
            })
            .collect();
        due.sort();
        for (_, path) in due {
            self.step(&path, now, out);
        }
    }

    fn step(&mut self, path: &Path, now: Instant, out: &mut Vec<WatchEvent>) {
        let settle = self.cfg.settle;
        let Some(phase) = self
            .entries
            .get(path)
            .and_then(|e| e.pending.as_ref())
            .map(|p| &p.phase)
        else {
            return;
        };
        let next = match (phase, probe(path)) {
            (_, Probe::Bad(failure)) => Next::Fail(failure),
            (Phase::ConfirmMissing, Probe::Missing) => Next::Gone,
            (_, Probe::Missing) => Next::Wait(Phase::ConfirmMissing, settle),
            (Phase::Confirm(before), Probe::Present(now_sig)) => {
                if *before == now_sig {
                    match read_settled(path, now_sig) {
                        Ok(artifact) => Next::Found(artifact),
                        Err(failure) => Next::Fail(failure),
                    }
                } else {
                    Next::Fail(Failure::unstable(Some(now_sig)))
                }
            }
            (_, Probe::Present(sig)) => Next::Wait(Phase::Confirm(sig), settle),
        };

        let give_up_after = self.cfg.give_up_after;
        let retry_invalid = self.retry_invalid;
        let Some(entry) = self.entries.get_mut(path) else {
            return;
        };
        match next {
            Next::Wait(phase, after) => {
                if let Some(p) = entry.pending.as_mut() {
                    p.phase = phase;
                    p.due = now + after;
                }
            }
            Next::Found(artifact) => {
                entry.pending = None;
                entry.present = true;
                if entry.reported == Some(artifact.hash) {
                    Event::WatchUnchanged { path }.log();
                } else {
                    entry.reported = Some(artifact.hash);
                    out.push(WatchEvent::Changed(artifact));
                }
            }
            Next::Gone => {
                entry.pending = None;
                if entry.present {
                    entry.present = false;
                    out.push(WatchEvent::Removed {
                        path: path.to_path_buf(),
                    });
                }
            }
            Next::Fail(failure) => {
                let Some(p) = entry.pending.as_mut() else {
                    return;
                };
                let retry = match failure.kind {
                    FailureKind::Permanent => false,
                    FailureKind::Unstable(_) => true,
                    FailureKind::Transient => retry_invalid,
                };
                if retry && now < p.burst_start + give_up_after {
                    p.attempt = p.attempt.saturating_add(1);
                    p.due = now + backoff(settle, p.attempt);
                    p.phase = match failure.kind {
                        FailureKind::Unstable(Some(sig)) => Phase::Confirm(sig),
                        _ => Phase::Probe,
                    };
                    Event::WatchRetry {
                        path,
                        attempt: p.attempt,
                        reason: &failure.reason,
                    }
                    .log();
                    p.last_reason = Some(failure.reason);
                } else {
                    entry.pending = None;
                    out.push(WatchEvent::Rejected {
                        path: path.to_path_buf(),
                        reason: failure.reason,
                    });
                }
            }
        }
        // Forget idle paths that were never reported: rejected files, temporaries.
        if entry.pending.is_none() && entry.reported.is_none() {
            self.entries.remove(path);
        }
    }
}

/// Delay before retry number `attempt` (1-based): settle × 2^attempt, capped.
fn backoff(settle: Duration, attempt: u32) -> Duration {
    let base = settle.max(Duration::from_millis(1));
    base.saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF)
}

// ---------------------------------------------------------------------------------------
// File checks.
// ---------------------------------------------------------------------------------------

fn sig_of(meta: &Metadata) -> Sig {
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    Sig {
        dev,
        ino,
        len: meta.len(),
        mtime: meta.modified().ok(),
    }
}

/// (device, inode) of a directory, or `None` if `path` is not (or no longer) a directory.
fn dir_id(path: &Path) -> Option<(u64, u64)> {
    let meta = fs::metadata(path).ok().filter(|m| m.is_dir())?;
    let sig = sig_of(&meta);
    Some((sig.dev, sig.ino))
}

/// One stat, following symlinks (a symlinked artifact is fine; its target is what loads).
fn probe(path: &Path) -> Probe {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => Probe::Present(sig_of(&meta)),
        Ok(meta) if meta.is_dir() => Probe::Bad(Failure::permanent("is a directory, not a file")),
        Ok(_) => Probe::Bad(Failure::permanent("not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                // The link target may be about to appear (it is being built): transient.
                Probe::Bad(Failure::transient("dangling symlink"))
            } else {
                Probe::Missing
            }
        }
        Err(e) => Probe::Bad(Failure::transient(format!("cannot stat: {e}"))),
    }
}

/// Reads and hashes a file whose signature was `settled` across the settle interval, and
/// verifies it is a complete object file that did not change while being read.
fn read_settled(path: &Path, settled: Sig) -> Result<Artifact, Failure> {
    let mut file = File::open(path).map_err(|e| Failure::transient(format!("cannot open: {e}")))?;
    let opened = file
        .metadata()
        .map_err(|e| Failure::transient(format!("cannot stat: {e}")))?;
    if sig_of(&opened) != settled {
        return Err(Failure::unstable(None));
    }
    let read =
        hash_stream(&mut file).map_err(|e| Failure::transient(format!("cannot read: {e}")))?;
    // Invariant for the checks below: the bytes hashed are exactly the settled version.
    // Same inode and length and mtime before and after reading, through both the open
    // handle and the path (a rename over the path during the read would change the latter).
    let after = file
        .metadata()
        .map_err(|e| Failure::transient(format!("cannot stat: {e}")))?;
    let still_there = matches!(probe(path), Probe::Present(sig) if sig == settled);
    if read.len != settled.len || sig_of(&after) != settled || !still_there {
        return Err(Failure::unstable(None));
    }
    if read.len == 0 {
        return Err(Failure::transient("empty file"));
    }
    crate::util::elf::check_object(&read.head, read.len).map_err(Failure::transient)?;
    Ok(Artifact {
        path: path.to_path_buf(),
        hash: read.hash,
        len: read.len,
    })
}

/// Bytes of the file's head kept while hashing: enough for an ELF64 header.
const HEAD_LEN: usize = 64;

struct StreamHash {
    hash: ContentHash,
    len: u64,
    head: Vec<u8>,
}

fn hash_stream(reader: &mut impl Read) -> io::Result<StreamHash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::with_capacity(HEAD_LEN);
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let take = (HEAD_LEN - head.len()).min(n);
        head.extend_from_slice(&buf[..take]);
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok(StreamHash {
        hash: *hasher.finalize().as_bytes(),
        len,
        head,
    })
}

// ---------------------------------------------------------------------------------------
// Directories.
// ---------------------------------------------------------------------------------------

fn dedup(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        if !out.contains(dir) {
            out.push(dir.clone());
        }
    }
    out
}

fn check_dir(dir: &Path) -> Result<(), WatchError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(WatchError::Io {
            path: dir.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(WatchError::MissingDir(dir.to_path_buf()))
        }
        Err(source) => Err(WatchError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Paths in `dir` (not recursive) that `filter` accepts, as `dir.join(name)`.
fn list_artifacts(dir: &Path, filter: ArtifactFilter) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = dir.join(entry?.file_name());
        if filter(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}
