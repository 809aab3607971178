//! Loading one version of a plugin library, with every check that can refuse it.
//!
//! Steps, each with its own error (see [`LoadError`]):
//! 1. Read the file and check it is a non-empty shared object (ELF magic); hash it.
//! 2. Write those exact bytes to a fresh file in the host's private copy directory and
//!    `dlopen` the copy. `dlopen` dedups by path, so loading a rebuilt file at its old path
//!    would return the old handle; and overwriting a mapped file crashes the process. A
//!    unique copy per version avoids both, and what was hashed is what gets loaded.
//! 3. Find `abi_stable`'s library header and let it check the `plugin-api` version and
//!    the layout of every type in the root module against the host's.
//! 4. Check our own [`ABI_VERSION`], that the plugin unwinds on panic, and run its
//!    self-test, which panics inside the plugin and must come back caught.
//! 5. Copy the behaviour descriptors into host-owned values.
//!
//! A version stays mapped until [`unload`] closes it, which only the host's opt-in
//! unload mode does (see `runtime`'s version lifetime). `dlclose` is often a no-op and is
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

/// Loads `path` through a private copy placed in `copy_dir`.
pub fn load(path: &Path, copy_dir: &Path) -> Result<LoadedLibrary, LoadError> {
    let p = || path.to_path_buf();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: p(), source })?;
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: p() });
    }
    if let Err(detail) = crate::util::elf::check_object(&bytes, bytes.len() as u64) {
        return Err(LoadError::NotALibrary { path: p(), detail });
    }
    let hash: ContentHash = crate::util::hash::of_bytes(&bytes);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let seq = COPY_SEQ.fetch_add(1, Ordering::Relaxed);
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("so");
    let copy = copy_dir.join(format!("{stem}-{seq}-{}.{ext}", short_hash(&hash)));
    std::fs::write(&copy, &bytes).map_err(|source| LoadError::Io {
        path: copy.clone(),
        source,
    })?;

    let raw = RawLibrary::load_at(&copy).map_err(|e| LoadError::Open {
        path: p(),
        detail: open_detail(&e),
    })?;
    // From here on the library is mapped. A library refused below stays mapped for the
    // life of the process: its constructor may have run and left anything behind.
    let mut raw = Leaked(Some(raw));
    let raw_ref = raw.0.as_ref().expect("just set");

    // SAFETY: the library stays mapped while the `&'static LibHeader` abi_stable returns
    // is used: either for ever (a refused library is leaked by `Leaked`) or until
    // `unload`, which only runs once no behaviour of this library is held by anyone and
    // never reads the header again. The header's own checks (magic, abi_stable version)
    // run inside this call before anything else is read.
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

    Ok(LoadedLibrary {
        source: p(),
        copy,
        hash,
        loaded_at: SystemTime::now(),
        behaviours,
        closable,
        raw: raw.0.take(),
    })
}

/// A mapped library that is leaked unless taken out: every early return of [`load`] after
/// `dlopen` leaves the refused library mapped, as the module docs say.
struct Leaked(Option<RawLibrary>);

impl Drop for Leaked {
    fn drop(&mut self) {
        if let Some(raw) = self.0.take() {
            std::mem::forget(raw);
        }
    }
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
