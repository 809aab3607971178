//! Boot: a [`Config`] becomes a running host — its actors started, its supervision tree
//! started, its control socket listening — and runs until the time is up or a root
//! supervisor gives up. What the `host` binary does after parsing its command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::control::server::ControlServer;
use crate::observe::Event;
use crate::{Host, HostOptions};

/// What the command line overrides in the config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Scheduler threads (`--threads`).
    pub threads: Option<usize>,
    /// Control socket (`--socket`).
    pub socket: Option<PathBuf>,
    /// Stop after this long (`--run-for`).
    pub run_for: Option<Duration>,
    /// Running the built-in demo (changes the hint when plugins are missing).
    pub demo: bool,
    /// Node name (`--name`), cookie (`--cookie`), EPMD port (`--epmd-port`).
    pub name: Option<String>,
    /// The distribution cookie.
    pub cookie: Option<String>,
    /// EPMD's port.
    pub epmd_port: Option<u16>,
}

/// Runs the host described by `cfg` until `run_for` passes (or forever); the process's
/// exit status: 0 after a clean run, 1 if something did not start, 2 for bad arguments,
/// 3 if a root supervisor gave up.
pub fn run(cfg: &Config, cli: Overrides) -> ExitCode {
    let opts = HostOptions {
        threads: cli.threads.unwrap_or(cfg.threads),
        plugin_dirs: cfg.plugin_dirs.clone(),
        watch: cfg.watch_config(),
        versions: cfg.versions.policy(),
    };
    let mut dist = cfg.distribution.clone();
    dist.name = cli.name.clone().or(dist.name);
    dist.cookie = cli.cookie.clone().or(dist.cookie);
    dist.epmd_port = cli.epmd_port.or(dist.epmd_port);
    let dist = match dist.options() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("host: {e}");
            return ExitCode::from(2);
        }
    };
    let host = match Host::start_node(opts, dist) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            Event::HostFailed {
                error: &e.to_string(),
            }
            .log();
            eprintln!("host: {e}");
            if cli.demo {
                eprintln!("host: the demo needs its plugins built first: run scripts/run-demo.sh (or cargo build --workspace)");
            }
            return ExitCode::from(1);
        }
    };
    for spec in &cfg.actors {
        let args = match spec.args_etf() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("host: {e}");
                return ExitCode::from(2);
            }
        };
        match host.spawn(&spec.behaviour, spec.name.as_deref(), &args) {
            Ok(id) => Event::ActorStarted {
                actor: id,
                name: spec.name.as_deref().unwrap_or(""),
                behaviour: &spec.behaviour,
                version: &host.version_of(&spec.behaviour).unwrap_or_default(),
            }
            .log(),
            Err(e) => {
                Event::StartFailed {
                    behaviour: Some(&spec.behaviour),
                    supervisor: None,
                    error: &e.to_string(),
                }
                .log();
                eprintln!(
                    "host: cannot start actor `{}`: {e}",
                    spec.name.as_deref().unwrap_or(&spec.behaviour)
                );
                return ExitCode::from(1);
            }
        }
    }
    if let Some(tree) = &cfg.supervisor {
        let started = tree
            .to_spec()
            .and_then(|spec| host.start_supervisor(spec).map_err(|e| e.to_string()));
        if let Err(e) = started {
            Event::StartFailed {
                behaviour: None,
                supervisor: Some(&tree.name),
                error: &e,
            }
            .log();
            eprintln!("host: {e}");
            return ExitCode::from(1);
        }
    }
    let control = if cfg.control.enabled {
        let path = cli
            .socket
            .clone()
            .unwrap_or_else(|| cfg.control.socket_path());
        match ControlServer::start(&host, &path) {
            Ok(s) => Some(s),
            Err(e) => {
                Event::HostFailed {
                    error: &e.to_string(),
                }
                .log();
                eprintln!("host: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    // Run until the time is up, or until a root supervisor gives up (like the node going
    // down in OTP): then exit non-zero.
    let deadline = cli.run_for.map(|d| Instant::now() + d);
    loop {
        if let Some(name) = host.root_failure().filter(|_| cfg.exit_on_root_failure) {
            Event::HostStopping { supervisor: &name }.log();
            eprintln!("host: root supervisor `{name}` reached its restart intensity");
            return ExitCode::from(3);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(control);
    drop(host);
    ExitCode::SUCCESS
}
