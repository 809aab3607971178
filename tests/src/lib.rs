//! Helpers for the end-to-end tests: build real plugin versions with cargo, install them
//! the way cargo does, and wait for host events.
//!
//! Plugins are built in a target directory of their own (`target/e2e`): the outer
//! `cargo test` holds the lock on the main one while tests run. Each version of the test
//! plugin (`fixtures/tp.rs`, selected by a feature) is its own little crate there, so
//! builds are cached across runs and tests running in parallel never overwrite each
//! other's artifacts.

pub mod process;
pub mod soak;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use host::HostEvent;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where the e2e builds and scratch files go.
pub fn e2e_dir() -> PathBuf {
    let d = workspace_root().join("target").join("e2e");
    std::fs::create_dir_all(&d).expect("create target/e2e");
    d
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// How to build a variant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Feature of `fixtures/tp.rs` to enable (`v1`, `v2`, ...).
    pub feature: &'static str,
    /// Build against a copy of plugin-api with this crate version instead of the real one.
    pub api_version: Option<&'static str>,
    /// Build with `--release` (benchmarks).
    pub release: bool,
    /// Build with `panic = "abort"` (the host must refuse it).
    pub panic_abort: bool,
    /// Export two behaviours (`tp` and `tp2`) from one library.
    pub pair: bool,
    /// Build against a copy of plugin-api (same crate version) with this change to the
    /// layout of a type in `abi.rs`, one of [`API_PATCHES`] (abi_stable must refuse it).
    pub api_patch: Option<&'static str>,
}

/// Layout changes for [`Variant::api_patch`]: name, the text in plugin-api's `abi.rs`, and
/// what replaces it. Each keeps plugin-api compiling.
pub const API_PATCHES: &[(&str, &str, &str)] = &[
    (
        // Two fields of a `#[repr(C)]` type swapped: same fields, another layout.
        "outcome_reordered",
        "    pub code: OutcomeCode,\n    /// Reason, message or payload (see [`OutcomeCode`]).\n    pub detail: RVec<u8>,\n",
        "    pub detail: RVec<u8>,\n    /// What happened.\n    pub code: OutcomeCode,\n",
    ),
    (
        // A field added to the host's function table.
        "hostapi_field_added",
        "pub struct HostApi {\n",
        "pub struct HostApi {\n    /// Added by the test: the layout differs from the host's.\n    pub added: u64,\n",
    ),
];

impl Variant {
    /// The plain variant with this feature.
    pub fn of(feature: &'static str) -> Variant {
        Variant {
            feature,
            api_version: None,
            release: false,
            panic_abort: false,
            pair: false,
            api_patch: None,
        }
    }
}

static BUILT: OnceLock<Mutex<HashMap<Variant, PathBuf>>> = OnceLock::new();

/// Builds a version of the test plugin (once per test process) and returns the path of a
/// private copy of the artifact, which nothing ever modifies.
pub fn build(variant: &Variant) -> PathBuf {
    let map = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    // Held across the build: parallel tests in one process build one variant at a time.
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(variant) {
        return p.clone();
    }
    let root = workspace_root();
    let e2e = e2e_dir();
    let mut suffix = match variant.api_version {
        Some(v) => format!("{}_api{}", variant.feature, v.replace('.', "_")),
        None => variant.feature.to_string(),
    };
    if variant.panic_abort {
        suffix.push_str("_abort");
    }
    if variant.pair {
        suffix.push_str("_pair");
    }
    if let Some(patch) = variant.api_patch {
        suffix.push_str(&format!("_{patch}"));
    }
    let krate = format!("tp_{suffix}");
    let dir = e2e.join("crates").join(&krate);
    std::fs::create_dir_all(&dir).unwrap();
    let api_path = match (variant.api_version, variant.api_patch) {
        (None, None) => root.join("plugin-api"),
        (version, patch) => fake_api(version, patch),
    };
    let manifest = format!(
        r#"[package]
name = "{krate}"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "{src}"
crate-type = ["cdylib"]

[features]
default = ["{feature}"{pair}]
{feature} = []
pair = []

[dependencies]
plugin-api = {{ path = "{api}" }}
serde = {{ version = "1", features = ["derive"] }}

[workspace]
{profile}"#,
        profile = if variant.panic_abort {
            "\n[profile.dev]\npanic = \"abort\"\n[profile.release]\npanic = \"abort\"\n"
        } else {
            ""
        },
        src = root.join("tests/fixtures/tp.rs").display(),
        feature = variant.feature,
        pair = if variant.pair { ", \"pair\"" } else { "" },
        api = api_path.display(),
    );
    let copy = compile(&dir, &krate, &manifest, variant.release);
    map.insert(variant.clone(), copy.clone());
    copy
}

/// Builds one of the example plugins under `plugins/` (`package`, with `features` on) the
/// way [`build`] builds the test plugin — its own crate in the e2e target directory, so
/// versions of one example built with different features do not overwrite each other —
/// and returns a private copy of the artifact.
pub fn build_example(package: &str, features: &[&str]) -> PathBuf {
    static EXAMPLES: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let map = EXAMPLES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let krate = format!("{package}_{}", features.join("_"));
    if let Some(p) = map.get(&krate) {
        return p.clone();
    }
    let root = workspace_root();
    let e2e = e2e_dir();
    let dir = e2e.join("crates").join(&krate);
    std::fs::create_dir_all(&dir).unwrap();
    // Every feature the example declares (`name = []` lines), so its `cfg`s all resolve.
    let own = std::fs::read_to_string(root.join("plugins").join(package).join("Cargo.toml"))
        .expect("the example's Cargo.toml");
    let declared: Vec<String> = own
        .lines()
        .skip_while(|l| l.trim() != "[features]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| l.trim_end().ends_with("= []"))
        .map(|l| l.trim().to_string())
        .collect();
    let on: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
    let manifest = format!(
        r#"[package]
name = "{krate}"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "{src}"
crate-type = ["cdylib"]

[features]
default = [{on}]
{declared}

[dependencies]
plugin-api = {{ path = "{api}" }}
serde = {{ version = "1", features = ["derive"] }}

[workspace]
"#,
        src = root
            .join("plugins")
            .join(package)
            .join("src/lib.rs")
            .display(),
        on = on.join(", "),
        declared = declared.join("\n"),
        api = root.join("plugin-api").display(),
    );
    let copy = compile(&dir, &krate, &manifest, false);
    map.insert(krate, copy.clone());
    copy
}

/// Builds the crate `krate` whose manifest is `manifest` in `dir`, into the shared e2e
/// target directory, with the workspace's dependency versions (no registry lookup), and
/// returns a private copy of the library that nothing else writes to.
fn compile(dir: &Path, krate: &str, manifest: &str, release: bool) -> PathBuf {
    let root = workspace_root();
    let e2e = e2e_dir();
    write_if_changed(&dir.join("Cargo.toml"), manifest);
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("workspace Cargo.lock");
    if !dir.join("Cargo.lock").exists() {
        std::fs::write(dir.join("Cargo.lock"), lock).unwrap();
    }
    let target = e2e.join("target");
    let mut cmd = Command::new(cargo());
    cmd.args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    let out = cmd
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building {krate} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profile = if release { "release" } else { "debug" };
    let built = target.join(profile).join(format!("lib{krate}.so"));
    let keep = e2e.join("artifacts");
    std::fs::create_dir_all(&keep).unwrap();
    let copy = keep.join(format!("{krate}-{profile}-{}.so", std::process::id()));
    std::fs::copy(&built, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    copy
}

/// A copy of plugin-api whose crate version is `version` (abi_stable then refuses it), or
/// the same version with one of [`API_PATCHES`] applied to `abi.rs`.
fn fake_api(version: Option<&str>, patch: Option<&str>) -> PathBuf {
    let root = workspace_root();
    let dst = e2e_dir().join(match (version, patch) {
        (Some(v), None) => format!("plugin-api-{v}"),
        (v, Some(p)) => format!("plugin-api-{}-{p}", v.unwrap_or("same")),
        (None, None) => unreachable!("the real plugin-api is not copied"),
    });
    let mut patched_abi = None;
    if let Some(name) = patch {
        let (_, from, to) = API_PATCHES
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown api_patch {name}"));
        let abi = root.join("plugin-api/src/abi.rs");
        let text = std::fs::read_to_string(&abi).unwrap();
        assert_eq!(
            text.matches(from).count(),
            1,
            "api_patch {name}: {from:?} must occur once in {}",
            abi.display()
        );
        patched_abi = Some(text.replacen(from, to, 1));
    }
    copy_tree(
        &root.join("plugin-api/src"),
        &dst.join("src"),
        &|path, data| match (&patched_abi, path.file_name()) {
            (Some(text), Some(n)) if n == "abi.rs" && path.parent() == Some(&dst.join("src")) => {
                text.clone().into_bytes()
            }
            _ => data,
        },
    );
    let manifest = std::fs::read_to_string(root.join("plugin-api/Cargo.toml")).unwrap();
    let ws = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let dep = |name: &str| -> String {
        ws.lines()
            .find(|l| l.starts_with(&format!("{name} =")))
            .unwrap_or_else(|| panic!("workspace dependency {name}"))
            .to_string()
    };
    let mut out = String::new();
    for line in manifest.lines() {
        let l = if let (true, Some(version)) = (line.starts_with("version ="), version) {
            format!("version = \"{version}\"")
        } else if line.contains(".workspace = true") {
            let name = line.split('.').next().unwrap().trim();
            dep(name)
        } else {
            line.to_string()
        };
        out.push_str(&l);
        out.push('\n');
    }
    out = out
        .replace("edition = ", "edition = \"2021\"\n#")
        .replace("license = ", "#license = ");
    out.push_str("\n[workspace]\n");
    write_if_changed(&dst.join("Cargo.toml"), &out);
    dst
}

/// Copies `src` to `dst`, writing only files whose content differs; `edit` may change a
/// file's bytes on the way (given its destination path).
fn copy_tree(src: &Path, dst: &Path, edit: &dyn Fn(&Path, Vec<u8>) -> Vec<u8>) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to, edit);
        } else {
            let data = edit(&to, std::fs::read(e.path()).unwrap());
            if std::fs::read(&to).ok().as_deref() != Some(&data[..]) {
                std::fs::write(&to, data).unwrap();
            }
        }
    }
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// A watched plugin directory for one test.
pub struct PluginDir {
    dir: tempfile::TempDir,
}

impl PluginDir {
    /// A fresh empty directory (under `target/e2e`, on the same filesystem as the builds).
    pub fn new() -> PluginDir {
        let base = e2e_dir().join("dirs");
        std::fs::create_dir_all(&base).unwrap();
        PluginDir {
            dir: tempfile::Builder::new()
                .prefix("plugins-")
                .tempdir_in(base)
                .unwrap(),
        }
    }

    /// The directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Where the test plugin lives in it.
    pub fn lib(&self) -> PathBuf {
        self.dir.path().join("libtp.so")
    }

    /// Installs `artifact` as `libtp.so` the way cargo does: remove, then hard-link.
    pub fn install(&self, artifact: &Path) {
        let dst = self.lib();
        let _ = std::fs::remove_file(&dst);
        if std::fs::hard_link(artifact, &dst).is_err() {
            std::fs::copy(artifact, &dst).unwrap();
        }
    }

    /// Writes arbitrary bytes as `libtp.so` (for refused-load tests).
    pub fn write_raw(&self, bytes: &[u8]) {
        let dst = self.lib();
        let _ = std::fs::remove_file(&dst);
        std::fs::write(dst, bytes).unwrap();
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        PluginDir::new()
    }
}

/// Waits for the first event matching `pred`, or `None` after `timeout`.
pub fn wait_for(
    rx: &Receiver<HostEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&HostEvent) -> bool,
) -> Option<HostEvent> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(ev) if pred(&ev) => return Some(ev),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Waits for the next `Reload` event.
pub fn next_reload(rx: &Receiver<HostEvent>, timeout: Duration) -> Option<host::ReloadReport> {
    match wait_for(rx, timeout, |e| matches!(e, HostEvent::Reload(_)))? {
        HostEvent::Reload(r) => Some(r),
        _ => None,
    }
}

/// The `host` binary: the one `cargo test` built next to this test (it builds binaries of
/// packages with integration tests), else built into `target/e2e`.
pub fn host_bin() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            let candidate = profile_dir.join("host");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let target = e2e_dir().join("target");
    let status = Command::new(cargo())
        .args(["build", "--quiet", "-p", "host", "--bin", "host"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the host binary failed");
    target.join("debug").join("host")
}
