//! Loading one version of a plugin library, with every check that can refuse it.
//!
//! Steps, each with its own error (see [`LoadError`]):
//! 1. Open the file once, check it is a regular, non-empty shared object (ELF header) no
//!    bigger than [`LoadLimits::max_bytes`]; stream it into a fresh file in the host's
//!    private copy directory, hashing as it goes (and, from the watcher, refusing bytes
//!    other than the ones it checked). Then `dlopen` the copy. `dlopen` dedups by path, so loading a rebuilt file at its old path
//!    would return the old handle; and overwriting a mapped file crashes the process. A
//!    unique copy per version avoids both, and what was hashed is what gets loaded.
//! 3. Find `abi_stable`'s library header and let it check the `plugin-api` version and
//!    the layout of every type in the root module against the host's.
//! 4. Check our own [`ABI_VERSION`], that the plugin unwinds on panic, and run its
//!    self-test, which panics inside the plugin and must come back caught.
//! 5. Copy the behaviour descriptors into host-owned values.
//!
//! A refusal after `dlopen` closes the library again when that is known to be safe (see
//! `Mapped::release`); otherwise it is [`Stranded`] and the caller lists it. A loaded
//! version stays mapped until [`unload`] closes it (see `versions`). `dlclose` is often a no-op and is
//! unsafe while anything still points into the library (thread-locals, threads the plugin
//! started, abi_stable's global layout map), so [`unload`] takes the last reference to
//! the library, refuses libraries abi_stable may still point into, and verifies with
//! `dlopen(RTLD_NOLOAD)` that the mapping really went; if not, the version is pinned.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary};
use plugin_api::abi::{PluginModRef, ABI_VERSION};

pub use crate::system::BehaviourVersion;

pub use crate::util::hash::ContentHash;

/// Why a library was refused. Every message names the file and what was wrong with it.
#[derive(Debug)]
// Every variant carries the refused file's `path`; `detail`/`source` say what was wrong.
#[allow(missing_docs)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is empty.
    Empty { path: PathBuf },
    /// The file is not a (complete) shared object.
    NotALibrary { path: PathBuf, detail: String },
    /// `dlopen` refused it (truncated, wrong architecture, missing symbols...).
    Open { path: PathBuf, detail: String },
    /// It is a library, but not a plugin (no abi_stable header).
    NotAPlugin { path: PathBuf, detail: String },
    /// Built against an incompatible `plugin-api` (version or type layout).
    Incompatible { path: PathBuf, detail: String },
    /// The plugin's module constructor failed or panicked.
    Constructor { path: PathBuf, detail: String },
    /// The plugin's calling-convention version differs from the host's.
    AbiVersion {
        path: PathBuf,
        plugin: u32,
        host: u32,
    },
    /// Built with `panic = "abort"`, or its self-test did not catch a panic.
    PanicUnsafe { path: PathBuf, detail: String },
    /// The descriptors are unusable (no behaviour, duplicate or empty names).
    BadDescriptor { path: PathBuf, detail: String },
    /// Larger than the configured cap (`[versions] max_library_mb`).
    TooBig { path: PathBuf, len: u64, max: u64 },
    /// Its bytes are not the ones the watcher checked: it changed in between.
    Changed { path: PathBuf },
    /// Another user could have written it (owner, mode, or its directory's).
    Unsafe { path: PathBuf, detail: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            LoadError::Empty { path } => write!(f, "{} is empty", path.display()),
            LoadError::NotALibrary { path, detail } => {
                write!(f, "{} is not a shared library: {detail}", path.display())
            }
            LoadError::Open { path, detail } => {
                write!(f, "cannot load {}: {detail}", path.display())
            }
            LoadError::NotAPlugin { path, detail } => {
                write!(
                    f,
                    "{} is not an actor plugin (no plugin-api export): {detail}",
                    path.display()
                )
            }
            LoadError::Incompatible { path, detail } => {
                write!(
                    f,
                    "{} was built against an incompatible plugin-api: {detail}",
                    path.display()
                )
            }
            LoadError::Constructor { path, detail } => {
                write!(
                    f,
                    "{}: the plugin's module constructor failed: {detail}",
                    path.display()
                )
            }
            LoadError::AbiVersion { path, plugin, host } => write!(
                f,
                "{} uses plugin ABI version {plugin}, the host expects {host}",
                path.display()
            ),
            LoadError::PanicUnsafe { path, detail } => write!(f, "{}: {detail}", path.display()),
            LoadError::BadDescriptor { path, detail } => write!(f, "{}: {detail}", path.display()),
            LoadError::TooBig { path, len, max } => write!(
                f,
                "{} is {len} bytes, more than the {max} allowed for a library; raise \
                 [versions] max_library_mb if it is really a plugin",
                path.display()
            ),
            LoadError::Unsafe { path, detail } => {
                write!(f, "refusing to load {}: {detail}", path.display())
            }
            LoadError::Changed { path } => write!(
                f,
                "{} changed between the watcher's check and the load; the next settled \
                 version will be loaded",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One loaded copy of a library. Mapped until [`unload`] succeeds (see the module docs).
pub struct LoadedLibrary {
    /// The artifact path it was loaded from (the watched file, not the private copy).
    pub source: PathBuf,
    /// The private copy actually mapped.
    pub copy: PathBuf,
    /// Hash of the bytes loaded.
    pub hash: ContentHash,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Its behaviours.
    pub behaviours: Vec<Arc<BehaviourVersion>>,
    /// `Err(why)` if closing this library could leave abi_stable pointing into it.
    pub closable: Result<(), String>,
    /// The mapping. Dropping it is `dlclose`; only [`unload`] may do that, and a library
    /// refused after mapping is leaked (`mem::forget`), since its constructor may have run.
    raw: Option<RawLibrary>,
}

impl Drop for LoadedLibrary {
    fn drop(&mut self) {
        // Dropping a version is never an unload: anything the host might still hold from
        // it (a function pointer being called, a thread-local) would dangle. [`unload`]
        // takes `raw` out first when it is safe to close.
        if let Some(raw) = self.raw.take() {
            std::mem::forget(raw);
        }
    }
}

impl LoadedLibrary {
    /// Short hex form of the content hash, for logs.
    pub fn short_hash(&self) -> String {
        short_hash(&self.hash)
    }

    /// The behaviour with this name, if this library exports it.
    pub fn behaviour(&self, name: &str) -> Option<&Arc<BehaviourVersion>> {
        self.behaviours.iter().find(|b| &*b.name == name)
    }
}

/// First 12 hex digits of a hash.
pub fn short_hash(hash: &ContentHash) -> String {
    crate::util::hash::short(hash)
}

static COPY_SEQ: AtomicU64 = AtomicU64::new(0);

/// The default for [`LoadLimits::max_bytes`]: a debug build of a big plugin is tens of
/// megabytes, one with full debug info a few hundred.
pub const DEFAULT_MAX_LIBRARY_BYTES: u64 = 512 << 20;

/// What [`load_checked`] accepts.
#[derive(Debug, Clone, Copy)]
pub struct LoadLimits {
    /// Largest library file loaded (bytes); a bigger one is refused before it is copied.
    pub max_bytes: u64,
    /// The hash the file had when the watcher checked it: if the loader reads other
    /// bytes (the file changed in between), it refuses them rather than load what nobody
    /// checked; the watcher reports the next settled change.
    pub expect: Option<ContentHash>,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_bytes: DEFAULT_MAX_LIBRARY_BYTES,
            expect: None,
        }
    }
}

/// A refused library that stays mapped: refused after `dlopen`, when closing it was not
/// known to be safe (its constructor ran, or abi_stable may point into it), or closed
/// and still kept by the dynamic loader.
#[derive(Debug, Clone)]
pub struct Stranded {
    /// Its private copy, kept while it is mapped.
    pub copy: PathBuf,
    /// Its content hash.
    pub hash: ContentHash,
    /// Why it is still mapped.
    pub reason: String,
}

/// Loads `path` through a private copy placed in `copy_dir`, with the default limits.
pub fn load(path: &Path, copy_dir: &Path) -> Result<LoadedLibrary, LoadError> {
    load_checked(path, copy_dir, &LoadLimits::default()).map_err(|b| b.0)
}

/// Loads `path` through a private copy placed in `copy_dir`. A refusal after `dlopen`
/// closes the library again when that is safe (its copy deleted); otherwise it comes back
/// as [`Stranded`], for the caller to count and show.
pub fn load_checked(
    path: &Path,
    copy_dir: &Path,
    limits: &LoadLimits,
) -> Result<LoadedLibrary, Box<(LoadError, Option<Stranded>)>> {
    let mut mapped = Mapped {
        raw: None,
        copy: None,
        hash: [0; 32],
        closable: false,
    };
    match load_mapped(path, copy_dir, limits, &mut mapped) {
        Ok(lib) => Ok(lib),
        Err(e) => Err(Box::new((e, mapped.release()))),
    }
}

/// What [`load_mapped`] has made so far, for [`Mapped::release`] to undo on a refusal.
struct Mapped {
    raw: Option<RawLibrary>,
    copy: Option<PathBuf>,
    hash: ContentHash,
    /// Closing it is known to be safe: built against exactly the host's plugin-api (see
    /// `closable` in [`load_mapped`]), and refused after its constructor had returned.
    closable: bool,
}

impl Mapped {
    /// Undoes a refused load: deletes the copy if nothing was mapped; closes the library
    /// if that is safe and verifies it went; otherwise leaves it mapped (its constructor
    /// may have run and left anything behind) and says so.
    fn release(mut self) -> Option<Stranded> {
        let copy = self.copy.take()?;
        let Some(raw) = self.raw.take() else {
            let _ = std::fs::remove_file(&copy);
            return None;
        };
        let reason = if self.closable {
            // `dlclose`: nothing of the library is held (no behaviour was handed out).
            drop(raw);
            if !still_mapped(&copy) {
                let _ = std::fs::remove_file(&copy);
                return None;
            }
            "refused, closed, and still kept mapped by the dynamic loader (a thread-local \
             destructor or a thread started by its constructor holds it)"
                .to_string()
        } else {
            std::mem::forget(raw);
            "refused after it was mapped, before it was known to be safe to close (its \
             constructor may have run, or abi_stable may point into it): kept mapped"
                .to_string()
        };
        Some(Stranded {
            copy,
            hash: self.hash,
            reason,
        })
    }
}

/// Refuses a plugin directory (`dir = true`) or library file that another user could
/// have written: owned by someone other than this user or root, or writable by group or
/// others. Anyone who can write there runs code as the host's user (a library's
/// constructor runs at `dlopen`, before any other check), so this runs before loading.
pub fn check_owner(path: &Path, dir: bool) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let me = nix::unistd::getuid().as_raw();
    let what = if dir { "plugin directory" } else { "library" };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "{what} {} belongs to uid {}, not to this user ({me}) or root: anyone who owns \
             it can run code in this host; chown it to this user or use a directory of yours",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if others_can_write(&meta) {
        return Err(format!(
            "{what} {} is writable by other users (mode {mode:04o}): anyone who can write \
             there can run code in this host; fix it with `chmod go-w {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// Writable by anyone but this user: by all, or by a group other than this user's own
/// (with a umask of 002, as on many systems with a private group per user, cargo's
/// outputs are group-writable, and that group is only the user).
fn others_can_write(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != nix::unistd::getgid().as_raw())
}

/// Reads `path` once, streaming: checks size and ELF header from the open file, then
/// hashes and writes the private copy in the same pass, so what is hashed is what is
/// copied and loaded, and memory stays flat whatever the file's size.
fn copy_hashed(
    path: &Path,
    copy_dir: &Path,
    limits: &LoadLimits,
    mapped: &mut Mapped,
) -> Result<PathBuf, LoadError> {
    use std::io::{Read, Write};
    let p = || path.to_path_buf();
    let io = |source| LoadError::Io { path: p(), source };
    // Refuse anything but a regular file before opening it (a FIFO would block).
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(LoadError::NotALibrary {
            path: p(),
            detail: "not a regular file".into(),
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_owner(dir, true).map_err(|detail| LoadError::Unsafe { path: p(), detail })?;
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    {
        // The open file itself (not the path, which could be swapped since).
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(io)?;
        let me = nix::unistd::getuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(LoadError::Unsafe {
                path: p(),
                detail: format!(
                    "it belongs to uid {}, not to this user ({me}) or root: its code would \
                     run as this user; chown it or remove it",
                    meta.uid()
                ),
            });
        }
        if others_can_write(&meta) {
            return Err(LoadError::Unsafe {
                path: p(),
                detail: format!(
                    "it is writable by other users (mode {:04o}); fix it with `chmod go-w {}`",
                    meta.mode() & 0o7777,
                    path.display()
                ),
            });
        }
    }
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Err(LoadError::Empty { path: p() });
    }
    if len > limits.max_bytes {
        return Err(LoadError::TooBig {
            path: p(),
            len,
            max: limits.max_bytes,
        });
    }
    let mut head = Vec::with_capacity(64);
    (&mut file).take(64).read_to_end(&mut head).map_err(io)?;
    if let Err(detail) = crate::util::elf::check_object(&head, len) {
        return Err(LoadError::NotALibrary { path: p(), detail });
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let seq = COPY_SEQ.fetch_add(1, Ordering::Relaxed);
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("so");
    // Written under a temporary name, renamed once the hash is known.
    let copy = copy_dir.join(format!("{stem}-{seq}.partial"));
    let copy_err = |source| LoadError::Io {
        path: copy.clone(),
        source,
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&copy)
        .map_err(copy_err)?;
    mapped.copy = Some(copy.clone());
    let mut hasher = blake3::Hasher::new();
    hasher.update(&head);
    out.write_all(&head).map_err(copy_err)?;
    let mut total = head.len() as u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limits.max_bytes {
            return Err(LoadError::TooBig {
                path: p(),
                len: total,
                max: limits.max_bytes,
            });
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(copy_err)?;
    }
    if total != len {
        return Err(LoadError::NotALibrary {
            path: p(),
            detail: format!("it changed while it was read ({len} bytes, then {total})"),
        });
    }
    out.flush().map_err(copy_err)?;
    drop(out);
    mapped.hash = *hasher.finalize().as_bytes();
    if let Some(expect) = limits.expect {
        if expect != mapped.hash {
            return Err(LoadError::Changed { path: p() });
        }
    }
    let named = copy_dir.join(format!("{stem}-{seq}-{}.{ext}", short_hash(&mapped.hash)));
    std::fs::rename(&copy, &named).map_err(copy_err)?;
    mapped.copy = Some(named.clone());
    Ok(named)
}

fn load_mapped(
    path: &Path,
    copy_dir: &Path,
    limits: &LoadLimits,
    mapped: &mut Mapped,
) -> Result<LoadedLibrary, LoadError> {
    let p = || path.to_path_buf();
    let copy = copy_hashed(path, copy_dir, limits, mapped)?;
    let hash = mapped.hash;

    let raw = RawLibrary::load_at(&copy).map_err(|e| LoadError::Open {
        path: p(),
        detail: open_detail(&e),
    })?;
    // From here on the library is mapped. A library refused below stays mapped unless
    // `Mapped::release` knows closing it is safe: its constructor may have run.
    let raw_ref = &*mapped.raw.insert(raw);

    // SAFETY: the library stays mapped while the `&'static LibHeader` abi_stable returns
    // is used: either for ever (a refused library that is not closable is leaked by
    // `Mapped::release`), until `Mapped::release` closes one refused after the checks
    // below (nothing read from the header is used after that), or until `unload`, which
    // only runs once no behaviour of this library is held by anyone and never reads the
    // header again. The header's own checks (magic, abi_stable version) run inside this
    // call before anything else is read.
    let header =
        unsafe { lib_header_from_raw_library(raw_ref) }.map_err(|e| LoadError::NotAPlugin {
            path: p(),
            detail: e.to_string(),
        })?;
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| classify(path, e))?;
    // abi_stable keeps, in a process-wide map, the layout of every prefix type it checked
    // — the longer of the host's and the plugin's. Built against exactly the host's
    // plugin-api, the plugin's layouts are the host's, and the map points only into the
    // host; otherwise the map may point into this library, and it must never be closed.
    let closable = {
        let theirs = header.version_strings();
        let ours = <PluginModRef as abi_stable::library::RootModule>::VERSION_STRINGS;
        if theirs.version == ours.version {
            Ok(())
        } else {
            Err(format!(
                "built against plugin-api {} (the host has {}): abi_stable may keep pointers into it",
                theirs.version, ours.version
            ))
        }
    };
    mapped.closable = closable.is_ok();

    let abi = module.abi_version();
    if abi != ABI_VERSION {
        return Err(LoadError::AbiVersion {
            path: p(),
            plugin: abi,
            host: ABI_VERSION,
        });
    }
    if !module.panic_unwinds() {
        return Err(LoadError::PanicUnsafe {
            path: p(),
            detail: "built with panic = \"abort\": a panic in a callback would kill the host; \
                     build it with panic = \"unwind\" (the default)"
                .into(),
        });
    }
    if !(module.self_test())() {
        return Err(LoadError::PanicUnsafe {
            path: p(),
            detail: "the plugin's self-test did not catch a panic".into(),
        });
    }

    let descs = (module.behaviours())();
    if descs.is_empty() {
        return Err(LoadError::BadDescriptor {
            path: p(),
            detail: "exports no behaviour".into(),
        });
    }
    let mut behaviours: Vec<Arc<BehaviourVersion>> = Vec::with_capacity(descs.len());
    for d in descs.iter() {
        let name = d.name.as_str();
        if name.is_empty() {
            return Err(LoadError::BadDescriptor {
                path: p(),
                detail: "a behaviour has an empty name".into(),
            });
        }
        if behaviours.iter().any(|b| &*b.name == name) {
            return Err(LoadError::BadDescriptor {
                path: p(),
                detail: format!("behaviour `{name}` is exported twice"),
            });
        }
        // Copy the strings: the RStr points into the plugin's data.
        behaviours.push(Arc::new(BehaviourVersion {
            name: Arc::from(name),
            version: Arc::from(d.version.as_str()),
            hash,
            desc: *d,
        }));
    }
    drop(descs);

    mapped.copy = None;
    Ok(LoadedLibrary {
        source: p(),
        copy,
        hash,
        loaded_at: SystemTime::now(),
        behaviours,
        closable,
        raw: mapped.raw.take(),
    })
}

/// What [`unload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unloaded {
    /// Closed, gone from the process (checked with `dlopen(RTLD_NOLOAD)`), and its private
    /// copy deleted.
    Closed,
    /// Closed, but the dynamic loader keeps it mapped (a thread-local destructor or a
    /// thread the plugin started holds it), or it was never closable; the reason says which.
    /// Its copy stays until [`still_mapped`] says it went.
    Pinned(String),
}

/// Closes a retired version, if nothing made by it can be alive.
///
/// Takes the last reference: if anyone else holds the library or one of its behaviours
/// (an actor runs it, a swap is using it), nothing happens and the library is handed back.
/// State, messages and timers need no separate check: a state lives only in an actor,
/// which holds its behaviour; messages and timers are host-owned bytes. Threads and
/// thread-locals of the plugin are what `dlopen(RTLD_NOLOAD)` catches afterwards.
pub fn unload(lib: Arc<LoadedLibrary>) -> Result<Unloaded, Arc<LoadedLibrary>> {
    let mut lib = Arc::try_unwrap(lib)?;
    // We own the only `LoadedLibrary`, so no new reference to a behaviour can appear;
    // counts can only fall. Anyone else holding one means its code may still run.
    if lib
        .behaviours
        .iter()
        .any(|b| Arc::strong_count(b) != 1 || Arc::weak_count(b) != 0)
    {
        return Err(Arc::new(lib));
    }
    if let Err(why) = &lib.closable {
        return Ok(Unloaded::Pinned(why.clone()));
    }
    lib.behaviours.clear();
    let Some(raw) = lib.raw.take() else {
        return Ok(Unloaded::Pinned("it was never closable".into()));
    };
    // `dlclose`: from here no pointer into the library may be used (none is: see above).
    drop(raw);
    if still_mapped(&lib.copy) {
        return Ok(Unloaded::Pinned(
            "the dynamic loader keeps it mapped after dlclose (a thread-local destructor \
             or a thread started by the plugin still holds it)"
                .into(),
        ));
    }
    let _ = std::fs::remove_file(&lib.copy);
    Ok(Unloaded::Closed)
}

/// The name prefix of this process's private copy directory: `actor-host-PID-`, so a
/// later host can tell whose it was (tempfile adds a random suffix).
pub fn copy_dir_prefix() -> String {
    format!("actor-host-{}-", std::process::id())
}

/// Removes the private copy directories (`actor-host-PID-*` in `tmp`) that hosts killed
/// without a chance to clean up (`kill -9`, a crash) left behind: only directories of our
/// own user whose PID names a process that no longer exists. Anything else — another
/// user's, a live host's, one of another shape (such as the control socket's
/// `actor-host-UID`) — is left alone. Returns how many were removed.
pub fn sweep_stale_copies(tmp: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::getuid().as_raw();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((pid, suffix)) = name
            .strip_prefix("actor-host-")
            .and_then(|rest| rest.split_once('-'))
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let ours = !suffix.is_empty()
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if !ours {
            continue;
        }
        // A pid reused by another process keeps the directory: the safe mistake.
        if pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether the library at `copy` (a private copy, so the path names one version) is
/// still mapped in this process. `RTLD_NOLOAD` never loads: it returns a handle only if
/// the library is already resident, and that handle's reference is released at once.
pub fn still_mapped(copy: &Path) -> bool {
    // SAFETY: with RTLD_NOLOAD, dlopen runs no initialiser and maps nothing; it only
    // looks the path up among loaded objects. The handle it may return is dropped (one
    // dlclose) right away, balancing the reference dlopen added.
    let handle = unsafe {
        libloading::os::unix::Library::open(Some(copy), libc::RTLD_NOLOAD | libc::RTLD_LAZY)
    };
    handle.is_ok()
}

fn open_detail(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => err.to_string(),
        other => other.to_string(),
    }
}

/// Boils abi_stable's layout report (a dump of every type on the way to the mismatch)
/// down to one readable line: the innermost type that differs, where it sits, and what
/// differs in it. Falls back to the report's first lines if its shape is unexpected.
pub fn summarize_layout_error(full: &str) -> String {
    let lines: Vec<&str> = full.lines().collect();
    // The last "N error(s)inside:" block with N > 0 leads to the mismatching type.
    let start = lines.iter().rposition(|l| {
        l.split_once(" error(s)inside:")
            .and_then(|(n, _)| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n > 0)
    });
    let value = |l: &str, key: &str| l.trim().strip_prefix(key).map(|v| v.trim().to_string());
    let summary = start.and_then(|start| {
        let mut path = Vec::new();
        let mut ty = None;
        let mut i = start + 1;
        while i < lines.len() {
            let l = lines[i];
            if l.starts_with("Layout of expected type:") {
                ty = lines[i + 1..].iter().find_map(|l| value(l, "type:"));
                break;
            }
            if l.starts_with("    field_name:") {
                path.extend(value(l, "field_name:"));
            }
            i += 1;
        }
        let ty = ty?;
        let mut errors = Vec::new();
        let mut j = i;
        while j < lines.len() && errors.len() < 3 {
            if let Some(what) = lines[j].strip_prefix("Error:") {
                let field = |from: usize, label: &str| -> String {
                    let at = lines[from..].iter().position(|l| l.starts_with(label));
                    at.map(|k| {
                        let body = &lines[from + k + 1..];
                        let name = body.iter().take(4).find_map(|l| value(l, "field_name:"));
                        let t = body.iter().take(4).find_map(|l| value(l, "type:"));
                        match (name, t) {
                            (Some(n), Some(t)) => format!("`{n}: {t}`"),
                            (None, Some(t)) => format!("`{t}`"),
                            _ => body.first().map_or(String::new(), |l| l.trim().to_string()),
                        }
                    })
                    .unwrap_or_default()
                };
                errors.push(format!(
                    "{what}: expected {}, found {}",
                    field(j, "Expected:"),
                    field(j, "Found:")
                ));
            }
            j += 1;
        }
        let path: Vec<String> = path
            .into_iter()
            .filter(|p| p != "0" && !p.starts_with("__"))
            .collect();
        Some(format!(
            "the layout of `{ty}` differs{}: {}",
            if path.is_empty() {
                String::new()
            } else {
                format!(" (reached through {})", path.join("."))
            },
            if errors.is_empty() {
                "see the debug log for abi_stable's report".to_string()
            } else {
                errors.join("; ")
            }
        ))
    });
    summary.unwrap_or_else(|| {
        let head: Vec<&str> = lines.iter().take(12).copied().collect();
        format!("type layouts differ:\n{}", head.join("\n"))
    })
}

fn classify(path: &Path, e: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::Incompatible {
            path,
            detail: format!(
                "plugin-api {actual_version} in the plugin, {expected_version} in the host"
            ),
        },
        LibraryError::AbiInstability(err) => {
            let full = err.to_string();
            // The full dump runs to hundreds of lines; it goes to the debug log, the
            // reason says which type and which fields.
            crate::observe::Event::LayoutMismatch {
                path: &path,
                dump: &full,
            }
            .log();
            LoadError::Incompatible {
                path,
                detail: summarize_layout_error(&full),
            }
        }
        LibraryError::RootModule { err, .. } => LoadError::Constructor {
            path,
            detail: err.to_string(),
        },
        other => LoadError::Incompatible {
            path,
            detail: other.to_string(),
        },
    }
}
