//! The `host` binary: loads the plugins named by a config, starts its actors, and
//! hot-swaps rebuilt plugins until interrupted. `host ctl ...` and `host top` talk to a
//! running host over its control socket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use host::config::{Config, LogFormat};
use host::control::ctl::CtlCommand;
use host::control::protocol::Request;

/// Runs actor behaviours from cdylib plugins and hot-swaps them when they are rebuilt.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, the built-in demo configuration runs.
    /// `ctl` and `top` read the control socket's path from it.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Control socket (overrides the config).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Log format (overrides the config): text or json.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Scheduler threads (overrides the config; 0 = one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Make the host a node of an Erlang cluster under this name (`name@IP`, like
    /// `erl -name`); overrides `[distribution] name`.
    #[arg(long, value_name = "NAME@IP", conflicts_with = "sname")]
    name: Option<String>,
    /// A short node name (`name@HOSTNAME`, the host's short hostname, like `erl -sname`);
    /// overrides `[distribution] sname`.
    #[arg(long, value_name = "NAME")]
    sname: Option<String>,
    /// The distribution cookie (like `erl -setcookie`); default `~/.erlang.cookie`.
    #[arg(long)]
    cookie: Option<String>,
    /// EPMD's port (default `ERL_EPMD_PORT`, else 4369).
    #[arg(long, value_name = "PORT")]
    epmd_port: Option<u16>,
    /// Exit after this many seconds (for scripted runs); runs until interrupted otherwise.
    #[arg(long, value_name = "SECS")]
    run_for: Option<f64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Talk to a running host: list, send, cast, call, state, versions, reload, rollback,
    /// tree, trace, stats, nodes.
    Ctl {
        /// Print JSON (for scripts) instead of tables.
        #[arg(long, global = true)]
        json: bool,
        /// Ask another host of the cluster (`name@host`), through this host's
        /// distribution connection: no second socket.
        #[arg(long, global = true, value_name = "NODE")]
        node: Option<String>,
        #[command(subcommand)]
        command: CtlCommand,
    },
    /// A live view of a running host: actors, supervision tree, versions, last reloads
    /// and crashes. q quits, arrows move, / filters, s changes the sort, Tab the pane.
    Top {
        /// Watch another host of the cluster (`name@host`), through this host's
        /// distribution connection.
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
    },
    /// Run an EPMD (Erlang's port mapper), for machines without Erlang: a distributed
    /// host starts one itself when none answers. `epmd -kill` stops it.
    Epmd {
        /// The port (default: ERL_EPMD_PORT, else 4369).
        #[arg(long)]
        port: Option<u16>,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        address: std::net::IpAddr,
    },
}

/// The control socket: `--socket`, else the config's, else the default.
fn socket_path(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(s) = &cli.socket {
        return Ok(s.clone());
    }
    match &cli.config {
        Some(p) => Config::load(p)
            .map(|c| c.control.socket_path())
            .map_err(|e| e.to_string()),
        None => Ok(host::control::server::default_socket_path()),
    }
}

fn client(cli: &Cli) -> ExitCode {
    let socket = match socket_path(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("host: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Some(Command::Ctl {
            json,
            node,
            command,
        }) => host::control::ctl::run_on(&socket, *json, node.clone(), command.clone()),
        Some(Command::Top { node }) => top(&socket, node.clone()),
        Some(Command::Epmd { .. }) | None => unreachable!("only called for ctl and top"),
    }
}

fn epmd(port: Option<u16>, address: std::net::IpAddr) -> ExitCode {
    let port = port
        .or_else(|| std::env::var("ERL_EPMD_PORT").ok()?.parse().ok())
        .unwrap_or(4369);
    match std::net::TcpListener::bind((address, port)) {
        Ok(l) => match host::dist::EpmdServer::serve(l) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("host epmd: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("host epmd: cannot listen on {address}:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn top(socket: &Path, node: Option<String>) -> ExitCode {
    let req = match node {
        Some(node) => Request::Forward {
            node,
            request: Box::new(Request::Snapshot),
        },
        None => Request::Snapshot,
    };
    let fetch = || {
        host::control::client::request(socket, &req, Duration::from_secs(5))
            .and_then(|v| serde_json::from_value(v).map_err(|e| format!("unexpected answer: {e}")))
    };
    match host::control::top::run(fetch, Duration::from_secs(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("host top: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Epmd { port, address }) = &cli.command {
        return epmd(*port, *address);
    }
    if cli.command.is_some() {
        return client(&cli);
    }
    let cfg = match &cli.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("host: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::demo(),
    };
    host::observe::logging::init(cli.log_format.unwrap_or(cfg.log_format));
    if let Some(t) = cli.threads.filter(|t| *t > host::config::MAX_THREADS) {
        eprintln!(
            "host: --threads {t} is more than the {} scheduler threads allowed (0 means one per core)",
            host::config::MAX_THREADS
        );
        return ExitCode::from(2);
    }

    let opts = host::boot::Overrides {
        threads: cli.threads,
        socket: cli.socket.clone(),
        run_for: cli.run_for.map(|s| Duration::from_secs_f64(s.max(0.0))),
        demo: cli.config.is_none(),
        name: cli.name.clone(),
        sname: cli.sname.clone(),
        cookie: cli.cookie.clone(),
        epmd_port: cli.epmd_port,
    };
    let status = host::boot::run(&cfg, opts);
    host::observe::logging::flush(Duration::from_secs(1));
    status
}
