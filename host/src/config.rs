//! The host's TOML configuration: where plugins live, which actors to start, how to log.
//!
//! ```toml
//! plugin_dirs = ["target/debug"]   # relative paths are relative to this file
//! libraries = ["counter", "echo"]  # only these from plugin_dirs (default: every lib*.so)
//! threads = 0                      # scheduler threads; 0 = one per core
//! log_format = "text"              # or "json": one JSON object per event
//!
//! [watch]
//! enabled = true
//! debounce_ms = 30
//! settle_ms = 10
//!
//! [versions]
//! unload = true                    # close versions no actor runs (verified; false keeps all)
//! retain = 1                       # old versions kept mapped for rollback
//! max_retained = 64                # warn past this many old versions mapped per library
//! max_library_mb = 512             # larger library files are refused
//!
//! [control]
//! enabled = true                   # listen for `host ctl` / `host top`
//! socket = "host.sock"             # default: $XDG_RUNTIME_DIR/actor-host/host.sock
//!
//! [reload]
//! suspend_timeout_ms = 5000        # every actor at a message boundary by then, or roll back
//! code_change_timeout_ms = 5000    # one actor's code_change, or roll back
//!
//! [watchdog]
//! enabled = true
//! warn_after_ms = 1000             # long_callback logged once past this
//! kill_after_ms = 60000            # the actor killed past this (0: never)
//!
//! [shutdown]
//! timeout_ms = 10000               # orderly stop on SIGTERM / SIGINT, then abandon
//!
//! [[actors]]
//! behaviour = "counter"
//! name = "counter"
//! args = { start = 0 }             # any TOML value, passed to init as an Erlang term
//! ```
//!
//! The demo configuration ships in the repository (`host/demo.toml`) and is built into
//! the binary, so `host` with no `--config` runs the demo.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::code::watcher::WatchConfig;
use crate::supervisor::{ChildSpec, Restart, Shutdown, Strategy, SupervisorSpec, WorkerSpec};

/// The built-in demo configuration (paths relative to the working directory).
pub const DEMO_CONFIG: &str = include_str!("../demo.toml");

pub use crate::observe::logging::LogFormat;

/// Watcher settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSettings {
    /// Watch the plugin directories and hot-swap rebuilt libraries.
    pub enabled: bool,
    /// Quiet period after the last file event before a library is checked.
    pub debounce_ms: u64,
    /// Interval between the two stats of the settle check.
    pub settle_ms: u64,
}

impl Default for WatchSettings {
    fn default() -> Self {
        let d = WatchConfig::default();
        WatchSettings {
            enabled: true,
            debounce_ms: d.debounce.as_millis() as u64,
            settle_ms: d.settle.as_millis() as u64,
        }
    }
}

/// What happens to versions no actor runs any more (`[versions]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionSettings {
    /// Close retired versions once nothing made by them is alive (on by default).
    pub unload: bool,
    /// Retired versions kept mapped per library for rollback.
    pub retain: usize,
    /// Old versions one library may keep mapped before a warning (with `unload = false`,
    /// before reloads are refused).
    pub max_retained: usize,
    /// Largest library file loaded, in MiB.
    pub max_library_mb: u64,
}

impl Default for VersionSettings {
    fn default() -> Self {
        let d = crate::code::versions::VersionPolicy::default();
        VersionSettings {
            unload: d.unload,
            retain: d.retain,
            max_retained: d.max_retained,
            max_library_mb: d.max_library_bytes >> 20,
        }
    }
}

impl VersionSettings {
    /// The policy as the host takes it.
    pub fn policy(&self) -> crate::code::versions::VersionPolicy {
        crate::code::versions::VersionPolicy {
            unload: self.unload,
            retain: self.retain,
            max_retained: self.max_retained,
            max_library_bytes: self.max_library_mb.saturating_mul(1 << 20),
        }
    }
}

/// The control socket (`[control]`), used by `host ctl` and `host top`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSettings {
    /// Listen on the control socket.
    pub enabled: bool,
    /// Where (relative paths are relative to the config file); the default is
    /// `$XDG_RUNTIME_DIR/actor-host/host.sock`, or `/tmp/actor-host-UID/host.sock`.
    pub socket: Option<PathBuf>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            enabled: true,
            socket: None,
        }
    }
}

impl ControlSettings {
    /// The socket path, the default if none is configured.
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(crate::control::server::default_socket_path)
    }
}

/// Deadlines of a swap (`[reload]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadSettings {
    /// How long every actor of the behaviour has to reach a message boundary.
    pub suspend_timeout_ms: u64,
    /// How long one actor's `code_change` may run.
    pub code_change_timeout_ms: u64,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        let d = crate::code::Limits::default();
        ReloadSettings {
            suspend_timeout_ms: d.suspend_timeout.as_millis() as u64,
            code_change_timeout_ms: d.code_change_timeout.as_millis() as u64,
        }
    }
}

/// The distribution node (`[distribution]`): without a name the host is not distributed
/// and nothing listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistSettings {
    /// The node name, `name@IP` (`--name`).
    pub name: Option<String>,
    /// A short node name: `sname@HOSTNAME` with the host's short hostname (`--sname`, as
    /// `erl -sname`). Peers are then found by resolving their host part.
    pub sname: Option<String>,
    /// The cookie (`--cookie`); else `~/.erlang.cookie` by Erlang's rules.
    pub cookie: Option<String>,
    /// Register as a hidden node (default: the host does not answer `global`).
    pub hidden: bool,
    /// The address to listen on.
    pub listen: std::net::IpAddr,
    /// The port to listen on (0: any free port).
    pub port: u16,
    /// OTP's `net_ticktime`, in seconds.
    pub net_ticktime: u64,
    /// EPMD's port (`--epmd-port`; default `ERL_EPMD_PORT`, else 4369).
    pub epmd_port: Option<u16>,
}

impl Default for DistSettings {
    fn default() -> Self {
        let d = crate::dist::DistOptions::default();
        DistSettings {
            name: None,
            sname: None,
            cookie: None,
            hidden: d.hidden,
            listen: d.listen,
            port: d.port,
            net_ticktime: d.net_ticktime.as_secs(),
            epmd_port: None,
        }
    }
}

/// The watchdog (`[watchdog]`), OTP's `long_schedule` monitor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogSettings {
    /// Watch callbacks (and publish what each scheduler thread runs).
    pub enabled: bool,
    /// Log `long_callback` once for a callback running this long.
    pub warn_after_ms: u64,
    /// Kill the actor of a callback running this long (0: never).
    pub kill_after_ms: u64,
}

impl Default for WatchdogSettings {
    fn default() -> Self {
        let d = crate::system::WatchdogConfig::default();
        WatchdogSettings {
            enabled: d.enabled,
            warn_after_ms: d.warn_after.as_millis() as u64,
            kill_after_ms: d.kill_after.map_or(0, |k| k.as_millis() as u64),
        }
    }
}

impl DistSettings {
    /// The node's options, or `None` when no name is set (not distributed).
    pub fn options(&self) -> Result<Option<crate::dist::DistOptions>, ConfigError> {
        let name = match (&self.name, &self.sname) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "[distribution] has both name and sname: give one".into(),
                ))
            }
            (Some(n), None) => n.clone(),
            (None, Some(s)) => format!("{s}@{}", short_hostname()?),
            (None, None) => return Ok(None),
        };
        let cookie = match &self.cookie {
            Some(c) => c.clone(),
            None => erlang_cookie()?,
        };
        if self.net_ticktime == 0 {
            return Err(ConfigError(
                "[distribution] net_ticktime must be at least 1".into(),
            ));
        }
        Ok(Some(crate::dist::DistOptions {
            name,
            cookie,
            hidden: self.hidden,
            listen: self.listen,
            port: self.port,
            epmd_port: self.epmd_port,
            net_ticktime: Duration::from_secs(self.net_ticktime),
        }))
    }
}

/// This machine's hostname up to its first dot, as `erl -sname` uses it.
fn short_hostname() -> Result<String, ConfigError> {
    let full = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map_err(|e| ConfigError(format!("sname: cannot read this machine's hostname: {e}")))?;
    let short = full.trim().split('.').next().unwrap_or("").to_string();
    if short.is_empty() {
        return Err(ConfigError("sname: this machine has no hostname".into()));
    }
    Ok(short)
}

/// `~/.erlang.cookie` with Erlang's rules: created with a random cookie, mode 0400, if
/// absent; refused if anyone else can read it.
fn erlang_cookie() -> Result<String, ConfigError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let home = std::env::var_os("HOME")
        .ok_or_else(|| ConfigError("no cookie given and no HOME for ~/.erlang.cookie".into()))?;
    let path = Path::new(&home).join(".erlang.cookie");
    match std::fs::metadata(&path) {
        Ok(m) => {
            if m.permissions().mode() & 0o077 != 0 {
                return Err(ConfigError(format!(
                    "{} must be accessible by owner only",
                    path.display()
                )));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            Ok(text.trim().to_string())
        }
        Err(_) => {
            use std::hash::{BuildHasher, Hasher};
            let mut cookie = String::new();
            while cookie.len() < 20 {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(cookie.len());
                let n = h.finish();
                cookie.push((b'A' + (n % 26) as u8) as char);
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            std::io::Write::write_all(&mut f, cookie.as_bytes())
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            Ok(cookie)
        }
    }
}

impl WatchdogSettings {
    /// The watchdog as the host takes it.
    pub fn config(&self) -> crate::system::WatchdogConfig {
        crate::system::WatchdogConfig {
            enabled: self.enabled,
            warn_after: Duration::from_millis(self.warn_after_ms),
            kill_after: (self.kill_after_ms > 0).then(|| Duration::from_millis(self.kill_after_ms)),
        }
    }
}

/// The orderly stop (`[shutdown]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// How long an orderly stop may take before stuck actors are abandoned.
    pub timeout_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings { timeout_ms: 10_000 }
    }
}

/// An actor started at boot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    /// Behaviour name.
    pub behaviour: String,
    /// Registered name.
    pub name: Option<String>,
    /// Arguments for `init`, encoded as an Erlang term (a table becomes a map; no args
    /// is the atom `ok`, which is what `()` decodes from).
    pub args: Option<toml::Value>,
    /// Kill the actor when more messages than this wait in its mailbox (opt-in, like
    /// OTP's `max_heap_size`).
    #[serde(default)]
    pub max_mailbox: Option<usize>,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directories holding plugin libraries (`lib*.so`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Load only these libraries from `plugin_dirs` (crate names such as `counter`, or
    /// file names); every `lib*.so` there when absent.
    #[serde(default)]
    pub libraries: Option<Vec<String>>,
    /// Scheduler threads; 0 means one per core.
    #[serde(default)]
    pub threads: usize,
    /// Log format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Watcher settings.
    #[serde(default)]
    pub watch: WatchSettings,
    /// Version lifetime settings.
    #[serde(default)]
    pub versions: VersionSettings,
    /// Control socket settings.
    #[serde(default)]
    pub control: ControlSettings,
    /// Stack size of each scheduler thread, in KiB (default 8192).
    #[serde(default = "default_stack_kib")]
    pub stack_size_kib: usize,
    /// Swap deadlines.
    #[serde(default)]
    pub reload: ReloadSettings,
    /// The watchdog.
    #[serde(default)]
    pub watchdog: WatchdogSettings,
    /// The orderly stop.
    #[serde(default)]
    pub shutdown: ShutdownSettings,
    /// The distribution node (off without a name).
    #[serde(default)]
    pub distribution: DistSettings,
    /// Actors to start, in order, unsupervised.
    #[serde(default)]
    pub actors: Vec<ActorSpec>,
    /// Mailbox length that logs `mailbox_high_water` (0: never).
    #[serde(default = "mailbox_warn_at")]
    pub mailbox_warn_at: usize,
    /// A supervision tree to start after them.
    pub supervisor: Option<SupervisorConfig>,
    /// Stop the host (exit status 3) when a root supervisor gives up, like an Erlang node
    /// going down. Set to false to keep the host and its other actors running.
    #[serde(default = "yes")]
    pub exit_on_root_failure: bool,
}

fn yes() -> bool {
    true
}

fn default_stack_kib() -> usize {
    crate::system::scheduler::DEFAULT_STACK_SIZE >> 10
}

/// The most a scheduler thread's stack may be, in KiB (1 GiB).
pub const MAX_STACK_KIB: usize = 1 << 20;

/// A configuration that could not be used.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The most scheduler threads a configuration may ask for (0 still means one per core).
///
/// The scheduler allocates its per-thread state up front, so a value such as
/// `threads = 9223372036854775807` — which TOML and `usize` both accept — crashed the host
/// at start ("capacity overflow", or out of memory for merely huge values) instead of
/// being refused here with the field named.
pub const MAX_THREADS: usize = 1024;

fn mailbox_warn_at() -> usize {
    crate::system::MAILBOX_WARN_AT
}

/// The longest `[watch] debounce_ms` or `settle_ms` accepted (a minute).
pub const MAX_WATCH_MS: u64 = 60_000;

/// Encodes `init` arguments (none: the atom `ok`, which `()` decodes from) and checks
/// that an actor can decode them. The error completes a sentence starting "args ...".
///
/// TOML nests deeper than the ETF decoder accepts ([`plugin_api::etf::MAX_DEPTH`]):
/// dotted table headers and inline arrays each allow about 80 levels, together about
/// 155. Such args used to be accepted here and fail only inside the actor's `init`.
pub(crate) fn encode_args(args: Option<&toml::Value>) -> Result<Vec<u8>, String> {
    let bytes = match args {
        Some(v) => plugin_api::etf::to_vec(v),
        None => plugin_api::etf::to_vec(&()),
    }
    .map_err(|e| format!("cannot be encoded: {e}"))?;
    plugin_api::etf::Term::decode(&bytes)
        .map_err(|e| format!("cannot be decoded by an actor: {e}"))?;
    Ok(bytes)
}

impl Config {
    /// Parses a configuration; relative plugin directories are resolved against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config =
            toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        for d in &mut cfg.plugin_dirs {
            if d.is_relative() {
                *d = base.join(&*d);
            }
        }
        if let Some(s) = &mut cfg.control.socket {
            if s.is_relative() {
                *s = base.join(&*s);
            }
        }
        if cfg.threads > MAX_THREADS {
            return Err(ConfigError(format!(
                "{origin}: threads = {} is more than the {MAX_THREADS} scheduler threads \
                 allowed (0 means one per core)",
                cfg.threads
            )));
        }
        if !(64..=MAX_STACK_KIB).contains(&cfg.stack_size_kib) {
            return Err(ConfigError(format!(
                "{origin}: stack_size_kib = {} is outside 64..={MAX_STACK_KIB}",
                cfg.stack_size_kib
            )));
        }
        for (key, ms) in [
            ("debounce_ms", cfg.watch.debounce_ms),
            ("settle_ms", cfg.watch.settle_ms),
        ] {
            if ms > MAX_WATCH_MS {
                return Err(ConfigError(format!(
                    "{origin}: [watch] {key} = {ms} is more than {MAX_WATCH_MS} ms: the watcher \
                     would wait that long after every change, which silently disables \
                     reloading; use [watch] enabled = false to turn it off"
                )));
            }
        }
        cfg.versions
            .policy()
            .check()
            .map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        if cfg.versions.max_library_mb == 0 {
            return Err(ConfigError(format!(
                "{origin}: [versions] max_library_mb = 0 would refuse every library"
            )));
        }
        for (i, a) in cfg.actors.iter().enumerate() {
            if a.behaviour.is_empty() {
                return Err(ConfigError(format!(
                    "{origin}: actors[{i}] has an empty behaviour"
                )));
            }
        }
        Ok(cfg)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base)
    }

    /// The built-in demo configuration, relative to the working directory.
    pub fn demo() -> Config {
        Config::parse(DEMO_CONFIG, "built-in demo config", Path::new("."))
            .expect("the demo config is valid")
    }

    /// The watcher settings as the watcher takes them, or `None` if disabled.
    pub fn watch_config(&self) -> Option<WatchConfig> {
        self.watch.enabled.then(|| WatchConfig {
            debounce: Duration::from_millis(self.watch.debounce_ms),
            settle: Duration::from_millis(self.watch.settle_ms),
            ..WatchConfig::default()
        })
    }
}

impl ActorSpec {
    /// The init arguments as ETF.
    pub fn args_etf(&self) -> Result<Vec<u8>, ConfigError> {
        encode_args(self.args.as_ref())
            .map_err(|e| ConfigError(format!("args of actor `{}` {e}", self.behaviour)))
    }
}

/// The supervision tree as written in the config (`[supervisor]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    /// Name used in events.
    #[serde(default = "root_name")]
    pub name: String,
    /// `one_for_one`, `one_for_all` or `rest_for_one`.
    #[serde(default = "one_for_one")]
    pub strategy: Strategy,
    /// Restarts allowed within `period_ms` (default 1).
    #[serde(default = "one")]
    pub intensity: u32,
    /// Intensity window in milliseconds (default 5000).
    #[serde(default = "five_s")]
    pub period_ms: u64,
    /// Restart type as a child of its parent.
    #[serde(default)]
    pub restart: Restart,
    /// Children in start order.
    #[serde(default)]
    pub children: Vec<ChildConfig>,
}

/// A child in the config: a worker (`behaviour = ...`) or a nested supervisor
/// (`strategy = ...` with `children`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildConfig {
    /// Worker: behaviour name.
    pub behaviour: Option<String>,
    /// Worker: registered name; supervisor: its name.
    pub name: Option<String>,
    /// Worker: `init` arguments (a TOML value).
    pub args: Option<toml::Value>,
    /// `permanent` (default), `transient` or `temporary`.
    #[serde(default)]
    pub restart: Restart,
    /// Worker: `"brutal_kill"`, `"infinity"` or a timeout in ms (default 5000).
    pub shutdown: Option<toml::Value>,
    /// Worker: how long `init` may run before the start fails (default 5000 ms).
    pub start_timeout_ms: Option<u64>,
    /// Nested supervisor: strategy.
    pub strategy: Option<Strategy>,
    /// Nested supervisor: intensity.
    pub intensity: Option<u32>,
    /// Nested supervisor: period in ms.
    pub period_ms: Option<u64>,
    /// Nested supervisor: children.
    pub children: Option<Vec<ChildConfig>>,
}

fn root_name() -> String {
    "root".into()
}
fn one_for_one() -> Strategy {
    Strategy::OneForOne
}
fn one() -> u32 {
    1
}
fn five_s() -> u64 {
    5000
}

impl SupervisorConfig {
    /// The runtime spec; errors name the offending child.
    pub fn to_spec(&self) -> Result<SupervisorSpec, String> {
        let children = self
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| c.to_spec(&format!("{}.children[{i}]", self.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SupervisorSpec {
            name: self.name.clone(),
            strategy: self.strategy,
            intensity: self.intensity,
            period: Duration::from_millis(self.period_ms),
            children,
            restart: self.restart,
        })
    }
}

impl ChildConfig {
    fn to_spec(&self, at: &str) -> Result<ChildSpec, String> {
        match (&self.behaviour, &self.children) {
            (Some(b), None) => {
                let args =
                    encode_args(self.args.as_ref()).map_err(|e| format!("{at}: args {e}"))?;
                let shutdown = match &self.shutdown {
                    None => Shutdown::Timeout(Duration::from_millis(5000)),
                    Some(toml::Value::String(s)) if s == "brutal_kill" => Shutdown::BrutalKill,
                    Some(toml::Value::String(s)) if s == "infinity" => Shutdown::Infinity,
                    Some(toml::Value::Integer(ms)) if *ms >= 0 => Shutdown::Timeout(Duration::from_millis(*ms as u64)),
                    Some(other) => {
                        return Err(format!(
                            "{at}: shutdown must be \"brutal_kill\", \"infinity\" or milliseconds, not {other}"
                        ))
                    }
                };
                Ok(ChildSpec::Worker(WorkerSpec {
                    behaviour: b.clone(),
                    name: self.name.clone(),
                    args,
                    restart: self.restart,
                    shutdown,
                    start_timeout: self.start_timeout_ms.map_or(
                        crate::supervisor::DEFAULT_START_TIMEOUT,
                        Duration::from_millis,
                    ),
                }))
            }
            (None, Some(children)) => {
                let name = self.name.clone().unwrap_or_else(|| at.to_string());
                let nested = SupervisorConfig {
                    name,
                    strategy: self.strategy.unwrap_or(Strategy::OneForOne),
                    intensity: self.intensity.unwrap_or(1),
                    period_ms: self.period_ms.unwrap_or(5000),
                    restart: self.restart,
                    children: children.clone(),
                };
                Ok(ChildSpec::Supervisor(nested.to_spec()?))
            }
            (Some(_), Some(_)) => Err(format!(
                "{at}: a child is a worker (behaviour) or a supervisor (children), not both"
            )),
            (None, None) => Err(format!(
                "{at}: a child needs a behaviour (worker) or children (supervisor)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_parses() {
        let c = Config::demo();
        let tree = c.supervisor.expect("the demo runs under a supervisor");
        let spec = tree.to_spec().expect("a valid tree");
        assert!(spec.children.len() >= 5);
    }

    #[test]
    fn unknown_field_is_named() {
        let e =
            Config::parse("plugin_dirs = []\nthreadz = 2\n", "x.toml", Path::new(".")).unwrap_err();
        assert!(e.0.contains("threadz"), "{e}");
    }
}
