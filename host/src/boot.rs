//! Boot: a [`Config`] becomes a running host — its actors started, its supervision tree
//! started, its control socket listening — and runs until the time is up, a root
//! supervisor gives up, or a signal says stop. What the `host` binary does after parsing
//! its command line.
//!
//! Signals (handled on a thread of `signal-hook`'s, never inside the handler):
//! - SIGTERM, SIGINT: the orderly stop ([`Host::shutdown`]) within `[shutdown]
//!   timeout_ms`, then the socket and the private copy directory removed, exit 0; past
//!   the deadline the stuck actors are named in `host_stopped`, abandoned, the files
//!   removed all the same, exit 1. A second SIGINT (or SIGTERM) during the stop exits at
//!   once (status 130 / 143).
//! - SIGHUP: rescan the plugin directories and load whatever changed, as `host ctl
//!   reload` would (a daemon's "reload your configuration"); the host keeps running.
//! - SIGQUIT: stop at once without `terminate` — the socket and copies removed, then the
//!   default action (a core dump where enabled, status 131), for when the orderly stop
//!   itself is stuck.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

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
    /// Short node name (`--sname`).
    pub sname: Option<String>,
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
        libraries: cfg.libraries.clone(),
        reload: crate::code::Limits {
            suspend_timeout: Duration::from_millis(cfg.reload.suspend_timeout_ms),
            code_change_timeout: Duration::from_millis(cfg.reload.code_change_timeout_ms),
            ..Default::default()
        },
        watchdog: cfg.watchdog.config(),
        stack_size: cfg.stack_size_kib << 10,
    };
    let mut dist = cfg.distribution.clone();
    // A name given on the command line replaces the config's, whichever kind it is.
    if cli.name.is_some() || cli.sname.is_some() {
        dist.name = cli.name.clone();
        dist.sname = cli.sname.clone();
    }
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
    host.set_mailbox_warn_at(cfg.mailbox_warn_at);
    for spec in &cfg.actors {
        let args = match spec.args_etf() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("host: {e}");
                return ExitCode::from(2);
            }
        };
        match host.spawn(&spec.behaviour, spec.name.as_deref(), &args) {
            Ok(id) => {
                if let Some(max) = spec.max_mailbox {
                    host.set_max_mailbox(crate::Target::Id(id), max);
                }
                Event::ActorStarted {
                    actor: id,
                    name: spec.name.as_deref(),
                    behaviour: &spec.behaviour,
                    version: &host.version_of(&spec.behaviour).unwrap_or_default(),
                }
                .log()
            }
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
    // Run until the time is up, a signal says stop, or a root supervisor gives up (like
    // the node going down in OTP): then exit non-zero.
    let signals = listen_for_signals();
    let deadline = cli.run_for.map(|d| Instant::now() + d);
    let socket = control.as_ref().map(|c| c.path().to_path_buf());
    let copies = host.copy_dir();
    let why = loop {
        if let Some(name) = host.root_failure().filter(|_| cfg.exit_on_root_failure) {
            eprintln!("host: root supervisor `{name}` reached its restart intensity");
            break (format!("root supervisor `{name}` gave up"), 3);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break ("--run-for elapsed".to_string(), 0);
        }
        match signals.recv_timeout(Duration::from_millis(50)) {
            Ok(SIGHUP) => rescan(&host, cfg),
            Ok(SIGQUIT) => {
                Event::HostStopping {
                    reason: "SIGQUIT: stopping at once, no terminate",
                }
                .log();
                remove_files(socket.as_deref(), &copies);
                crate::observe::logging::flush(Duration::from_millis(200));
                signal_hook::low_level::emulate_default_handler(SIGQUIT).ok();
                std::process::exit(131);
            }
            Ok(sig) => break (signal_name(sig).to_string(), 0),
            Err(_) => {}
        }
    };
    let (why, status) = why;
    stop(
        host,
        control,
        &why,
        status,
        cfg,
        &signals,
        socket.as_deref(),
        &copies,
    )
}

/// The signals the host handles, forwarded to a channel from `signal-hook`'s thread.
fn listen_for_signals() -> Receiver<i32> {
    let (tx, rx) = channel::unbounded();
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT]) {
        Ok(mut signals) => {
            let _ = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        if tx.send(sig).is_err() {
                            return;
                        }
                    }
                });
        }
        Err(e) => {
            Event::HostFailed {
                error: &format!("cannot handle signals: {e}"),
            }
            .log();
        }
    }
    rx
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        SIGQUIT => "SIGQUIT",
        _ => "signal",
    }
}

/// SIGHUP: load whatever changed in the plugin directories.
fn rescan(host: &Host, cfg: &Config) {
    let Ok(found) =
        crate::code::watcher::scan(&cfg.plugin_dirs, crate::code::watcher::is_plugin_artifact)
    else {
        return;
    };
    for a in found {
        host.reload(&a.path);
    }
}

fn remove_files(socket: Option<&std::path::Path>, copies: &std::path::Path) {
    if let Some(s) = socket {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_dir_all(copies);
}

/// The orderly stop, on a thread this one can abandon past `[shutdown] timeout_ms`;
/// exits with `status` if it completes in time, else 1.
#[allow(clippy::too_many_arguments)]
fn stop(
    host: Arc<Host>,
    control: Option<ControlServer>,
    why: &str,
    status: u8,
    cfg: &Config,
    signals: &Receiver<i32>,
    socket: Option<&std::path::Path>,
    copies: &std::path::Path,
) -> ExitCode {
    let started = Instant::now();
    let timeout = Duration::from_millis(cfg.shutdown.timeout_ms);
    let deadline = started + timeout;
    Event::HostStopping { reason: why }.log();
    let (done_tx, done) = channel::bounded(1);
    let stopper = std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || {
            drop(control);
            // The control server held only weak references: this is the last one, but a
            // request in flight may hold one for a moment.
            let mut host = host;
            let mut host = loop {
                match Arc::try_unwrap(host) {
                    Ok(h) => break h,
                    Err(h) => host = h,
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let abandoned = host.shutdown(deadline);
            let _ = done_tx.send(abandoned.clone());
            drop(host);
            let _ = done_tx.send(Vec::new());
        });
    let finish = |abandoned: &[String], status: u8| {
        Event::HostStopped {
            reason: why,
            abandoned: &abandoned.join(", "),
            status,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
        .log();
        remove_files(socket, copies);
        if !abandoned.is_empty() {
            eprintln!(
                "host: stopped past its {} ms shutdown deadline; abandoned {}",
                timeout.as_millis(),
                abandoned.join(", ")
            );
        }
        ExitCode::from(status)
    };
    if stopper.is_err() {
        return finish(&["the shutdown thread (not started)".to_string()], 1);
    }
    // Past the deadline, a moment's grace for the host's drop (threads joining).
    let hard = deadline + Duration::from_millis(200);
    let mut abandoned: Option<Vec<String>> = None;
    loop {
        channel::select! {
            recv(done) -> r => match (r, &abandoned) {
                (Ok(list), None) => abandoned = Some(list),
                // The host is dropped: every thread joined.
                (Ok(_), Some(list)) | (Err(_), Some(list)) => {
                    return finish(list, if list.is_empty() { status } else { 1 });
                }
                (Err(_), None) => return finish(&["the shutdown thread (panicked)".to_string()], 1),
            },
            recv(signals) -> sig => {
                if let Ok(s @ (SIGINT | SIGTERM | SIGQUIT)) = sig {
                    Event::HostStopped {
                        reason: &format!("second {}: exiting at once", signal_name(s)),
                        abandoned: "everything still running",
                        status: 128 + s as u8,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                    }
                    .log();
                    remove_files(socket, copies);
                    crate::observe::logging::flush(Duration::from_millis(200));
                    std::process::exit(128 + s);
                }
            },
            recv(channel::at(hard)) -> _ => {
                let list = abandoned.unwrap_or_else(|| {
                    vec!["the supervision trees (a child's shutdown time is past the deadline)".to_string()]
                });
                let list = if list.is_empty() {
                    vec!["scheduler threads inside callbacks".to_string()]
                } else {
                    list
                };
                return finish(&list, 1);
            },
        }
    }
}
