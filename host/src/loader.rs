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
//! Versions are retired, never unloaded: the `RawLibrary` is kept in a `ManuallyDrop`.
//! `dlclose` is often a no-op and is unsafe while anything still points into the library
//! (thread-locals, abi_stable's global layout map); a few MB per reload is the price.

use std::fmt;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary};
use plugin_api::abi::{BehaviourDesc, PluginModRef, ABI_VERSION};

/// A content hash of a library file (blake3).
pub type ContentHash = [u8; 32];

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

impl std::error::Error for LoadError {}

/// One loaded copy of a library. Never unloaded (see the module docs).
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
    _raw: ManuallyDrop<RawLibrary>,
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
    hash[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// One behaviour of one loaded library: its identity and its callbacks.
///
/// The function pointers point into the library; they stay valid because libraries are
/// never unloaded, and every actor holds an `Arc` to the version running it.
pub struct BehaviourVersion {
    /// Behaviour name.
    pub name: Arc<str>,
    /// Version string the plugin declared.
    pub version: Arc<str>,
    /// Content hash of the library it came from.
    pub hash: ContentHash,
    /// The callbacks.
    pub desc: BehaviourDesc,
}

impl fmt::Debug for BehaviourVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

static COPY_SEQ: AtomicU64 = AtomicU64::new(0);

/// Loads `path` through a private copy placed in `copy_dir`.
pub fn load(path: &Path, copy_dir: &Path) -> Result<LoadedLibrary, LoadError> {
    let p = || path.to_path_buf();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: p(), source })?;
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: p() });
    }
    if let Err(detail) = crate::object::check_object(&bytes, bytes.len() as u64) {
        return Err(LoadError::NotALibrary { path: p(), detail });
    }
    let hash: ContentHash = *blake3::hash(&bytes).as_bytes();
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
    // From here on the library is mapped; it stays mapped for the life of the process
    // (ManuallyDrop below), also when a later check refuses it.
    let raw = ManuallyDrop::new(raw);

    // SAFETY: `raw` stays loaded for the rest of the process (never dropped), so the
    // `&'static LibHeader` abi_stable returns never dangles. The header's own checks
    // (magic, abi_stable version) run inside this call before anything else is read.
    let header =
        unsafe { lib_header_from_raw_library(&raw) }.map_err(|e| LoadError::NotAPlugin {
            path: p(),
            detail: e.to_string(),
        })?;
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| classify(path, e))?;

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
        _raw: raw,
    })
}

fn open_detail(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => err.to_string(),
        other => other.to_string(),
    }
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
        LibraryError::AbiInstability(err) => LoadError::Incompatible {
            path,
            detail: format!("type layouts differ:\n{err}"),
        },
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
