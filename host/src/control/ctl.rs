//! `host ctl`: the operator's commands, printed as readable tables or, with `--json`, as
//! the protocol's JSON for scripts.
//!
//! Exit status: 0 done; 1 the host said no (unknown name, timeout, refused reload...) or
//! is not running; 2 bad input (a malformed term), reported before contacting the host.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use plugin_api::etf;

use super::client;

/// `println!` that ends the process quietly (status 0) when stdout is closed, as with
/// `host ctl versions | head`: `println!` panics on the broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        write_out(format_args!($($arg)*))
    };
}

fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{args}").is_err() {
        std::process::exit(0);
    }
}
use super::protocol::{JsonStr, Request, SwapOutcome};
use crate::observe::model::{ActorInfo, ActorStatus, NodeRow, Stats, TreeNode, VersionRow};

/// A `host ctl` command.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CtlCommand {
    /// Actors: id, name, behaviour, version, status, mailbox, handled, restarts.
    List,
    /// Cast a message (Erlang term syntax), like `gen_server:cast`: `handle_cast` gets it.
    Cast {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
        /// The message, e.g. '{incr, 5}'.
        term: String,
    },
    /// Send a message (Erlang term syntax), like `!`: `handle_info` gets it.
    Send {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
        /// The message, e.g. '{incr, 5}'.
        term: String,
    },
    /// Call and print the reply.
    Call {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
        /// The request, e.g. 'get' or '#{amount => 10}'.
        term: String,
        /// How long to wait for the reply.
        #[arg(long, default_value_t = 5000, value_name = "MS")]
        timeout: u64,
    },
    /// An actor's state, exported through its version.
    State {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
    },
    /// Loaded versions per behaviour: hash, load time, status, actors.
    Versions,
    /// Load a behaviour's library now (from its watched file, or PATH) and swap.
    Reload {
        /// A behaviour of the library.
        behaviour: String,
        /// Another build of the library to load instead.
        path: Option<PathBuf>,
        /// `Extra` for every `code_change` (Erlang term syntax; default `[]`).
        #[arg(long, value_name = "TERM")]
        extra: Option<String>,
        /// Then load the same bytes on every connected node (OTP's `nl/1`); one line per
        /// node.
        #[arg(long)]
        all_nodes: bool,
    },
    /// Swap a behaviour's library back to its previous retained version: the running
    /// version's `downgrade` writes each state down, the older one's `code_change` reads it.
    Rollback {
        /// A behaviour of the library.
        behaviour: String,
        /// `Extra` for `downgrade` and `code_change` (Erlang term syntax; default `[]`).
        #[arg(long, value_name = "TERM")]
        extra: Option<String>,
        /// Then roll back on every connected node too; one line per node.
        #[arg(long)]
        all_nodes: bool,
    },
    /// Hold an actor at its next message boundary, like `sys:suspend` (its mailbox keeps
    /// filling; calls to it wait or time out) until `resume`.
    Suspend {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
    },
    /// Let an actor held by `suspend` run again, like `sys:resume`.
    Resume {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
    },
    /// One actor in detail, like `sys:get_status`: behaviour, version, status, mailbox,
    /// links, monitors, trap_exit, restarts.
    Status {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
    },
    /// The supervision tree with each child's status and restarts.
    Tree,
    /// Follow an actor's incoming and outgoing messages until interrupted.
    Trace {
        /// Registered name, `<0.ID.0>` or id.
        name: String,
    },
    /// Messages per second, scheduler utilisation, run queue, reloads.
    Stats,
    /// Connected nodes: direction, hidden, uptime, messages and bytes each way, queue.
    Nodes,
}

/// Where `--node` sends every request: set once, before the command runs.
static FORWARD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// [`run`] against another host of the cluster (`node`), through this one's distribution
/// connection.
pub fn run_on(socket: &Path, json: bool, node: Option<String>, cmd: CtlCommand) -> ExitCode {
    if let Some(n) = node {
        if matches!(cmd, CtlCommand::Trace { .. }) {
            eprintln!(
                "host ctl: trace cannot be forwarded with --node (connect to that host's socket)"
            );
            return ExitCode::from(2);
        }
        let _ = FORWARD.set(n);
    }
    run(socket, json, cmd)
}

/// Runs one command against the host at `socket`.
pub fn run(socket: &Path, json: bool, cmd: CtlCommand) -> ExitCode {
    match execute(socket, json, cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("host ctl: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Host(e)) => {
            eprintln!("host ctl: {e}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// Bad input; the host was not contacted.
    Input(String),
    /// The host refused, or could not be reached.
    Host(String),
}

const WAIT: Duration = Duration::from_secs(30);

fn parse_term(text: &str) -> Result<Vec<u8>, Failure> {
    let term = etf::parse(text).map_err(|e| Failure::Input(format!("malformed term: {e}")))?;
    etf::to_vec(&term).map_err(|e| Failure::Input(format!("cannot encode the term: {e}")))
}

/// `req`, or with `--node` the request that has the host forward it there.
fn routed(req: &Request) -> std::borrow::Cow<'_, Request> {
    match FORWARD.get() {
        Some(node) => std::borrow::Cow::Owned(Request::Forward {
            node: node.clone(),
            request: Box::new(req.clone()),
        }),
        None => std::borrow::Cow::Borrowed(req),
    }
}

fn ask(socket: &Path, req: &Request, wait: Duration) -> Result<serde_json::Value, Failure> {
    client::request(socket, &routed(req), wait).map_err(Failure::Host)
}

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::Host(format!("unexpected answer: {e}")))
}

fn print_json(v: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Standard output, buffered; like `outln!`, a closed stdout ends the process quietly.
struct Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>);

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Ok(n) => Ok(n),
            Err(_) => std::process::exit(0),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Ok(()) => Ok(()),
            Err(_) => std::process::exit(0),
        }
    }
}

/// Prints the term a request is answered with (`call`, `state`) as the host streams it,
/// never holding the text: the text and a newline, or with `--json` the object
/// `{"KEY": "TEXT"}` exactly as `serde_json`'s pretty printer writes it.
fn print_term(
    socket: &Path,
    req: &Request,
    wait: Duration,
    json_key: Option<&str>,
) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = Stdout(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stdout().lock(),
    ));
    let (prefix, suffix) = match json_key {
        Some(key) => (
            format!("{{\n  {}: \"", serde_json::Value::from(key)),
            "\"\n}\n",
        ),
        None => (String::new(), "\n"),
    };
    // Nothing is printed before the host has said yes (its first byte of text).
    let mut body = Prefixed {
        out: &mut out,
        prefix: prefix.as_bytes(),
        started: false,
    };
    let req = &*routed(req);
    let r = match json_key {
        Some(_) => client::request_text(socket, req, wait, &mut JsonStr(&mut body)),
        None => client::request_text(socket, req, wait, &mut body),
    };
    let started = match r {
        Ok(()) => {
            let _ = body.start();
            true
        }
        Err(_) => body.started,
    };
    if r.is_ok() {
        let _ = out.write_all(suffix.as_bytes());
    } else if started {
        // A text cut short: end its line before the error.
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
    r.map_err(Failure::Host)
}

/// Writes `prefix` before the first byte written through it (or at [`Prefixed::start`]).
struct Prefixed<'a, W: std::io::Write> {
    out: &'a mut W,
    prefix: &'a [u8],
    started: bool,
}

impl<W: std::io::Write> Prefixed<'_, W> {
    fn start(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.started = true;
            self.out.write_all(self.prefix)?;
        }
        Ok(())
    }
}

impl<W: std::io::Write> std::io::Write for Prefixed<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.start()?;
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A one-way message (`send` or `cast`): sent, nothing to wait for.
fn one_way(socket: &Path, json: bool, req: &Request) -> Result<(), Failure> {
    ask(socket, req, WAIT)?;
    if json {
        print_json(&serde_json::json!({"sent": true}));
    } else {
        outln!("ok");
    }
    Ok(())
}

fn execute(socket: &Path, json: bool, cmd: CtlCommand) -> Result<(), Failure> {
    match cmd {
        CtlCommand::List => {
            let v = ask(socket, &Request::List, WAIT)?;
            if json {
                print_json(&v);
            } else {
                print_actors(&decode::<Vec<ActorInfo>>(v)?);
            }
        }
        CtlCommand::Send { name, term } => {
            let etf = parse_term(&term)?;
            one_way(socket, json, &Request::Send { to: name, etf })?;
        }
        CtlCommand::Cast { name, term } => {
            let etf = parse_term(&term)?;
            one_way(socket, json, &Request::Cast { to: name, etf })?;
        }
        CtlCommand::Call {
            name,
            term,
            timeout,
        } => {
            let etf = parse_term(&term)?;
            let req = Request::Call {
                to: name,
                etf,
                timeout_ms: timeout,
            };
            let wait = Duration::from_millis(timeout) + WAIT;
            print_term(socket, &req, wait, json.then_some("reply"))?;
        }
        CtlCommand::State { name } => {
            print_term(
                socket,
                &Request::State { to: name },
                WAIT,
                json.then_some("state"),
            )?;
        }
        CtlCommand::Nodes => {
            let v = ask(socket, &Request::Nodes, WAIT)?;
            if json {
                print_json(&v);
            } else {
                print_nodes(&decode::<Vec<NodeRow>>(v)?);
            }
        }
        CtlCommand::Versions => {
            let v = ask(socket, &Request::Versions, WAIT)?;
            if json {
                print_json(&v);
            } else {
                print_versions(&decode::<Vec<VersionRow>>(v)?);
            }
        }
        CtlCommand::Reload {
            behaviour,
            path,
            extra,
            all_nodes,
        } => {
            let extra = extra.as_deref().map(parse_term).transpose()?;
            let path = match path {
                Some(p) => Some(
                    std::fs::canonicalize(&p)
                        .map_err(|e| Failure::Input(format!("{}: {e}", p.display())))?
                        .display()
                        .to_string(),
                ),
                None => None,
            };
            let req = Request::Reload {
                behaviour,
                path,
                extra,
                all_nodes,
            };
            swap_here_or_everywhere(socket, json, &req, all_nodes)?;
        }
        CtlCommand::Rollback {
            behaviour,
            extra,
            all_nodes,
        } => {
            let extra = extra.as_deref().map(parse_term).transpose()?;
            let req = Request::Rollback {
                behaviour,
                extra,
                all_nodes,
            };
            swap_here_or_everywhere(socket, json, &req, all_nodes)?;
        }
        CtlCommand::Suspend { name } => {
            one_way(socket, json, &Request::Suspend { to: name })?;
        }
        CtlCommand::Resume { name } => {
            one_way(socket, json, &Request::Resume { to: name })?;
        }
        CtlCommand::Status { name } => {
            let v = ask(socket, &Request::Status { to: name }, WAIT)?;
            if json {
                print_json(&v);
            } else {
                print_status(&decode::<ActorStatus>(v)?);
            }
        }
        CtlCommand::Tree => {
            let v = ask(socket, &Request::Tree, WAIT)?;
            if json {
                print_json(&v);
            } else {
                let roots = decode::<Vec<TreeNode>>(v)?;
                if roots.is_empty() {
                    outln!("(no supervision tree)");
                }
                for r in &roots {
                    print_tree(r, "", true, true);
                }
            }
        }
        CtlCommand::Trace { name } => {
            use std::io::Write;
            let stdout = std::io::stdout();
            client::trace(socket, &name, |ev| {
                let mut out = stdout.lock();
                let line = if json {
                    serde_json::to_string(&ev).unwrap_or_default()
                } else {
                    let arrow = if ev.direction == "in" { "<-" } else { "->" };
                    let peer = if ev.peer.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", ev.peer)
                    };
                    format!(
                        "{} {} {arrow} {}{peer}: {}",
                        clock(ev.at_us / 1_000_000, (ev.at_us / 1000) % 1000),
                        ev.actor,
                        ev.kind,
                        ev.message
                    )
                };
                // A closed stdout (`| head`) ends the trace.
                let lost = if ev.dropped > 0 && !json {
                    format!(
                        "... {} trace events dropped: this client fell behind\n",
                        ev.dropped
                    )
                } else {
                    String::new()
                };
                writeln!(out, "{lost}{line}")
                    .and_then(|()| out.flush())
                    .is_ok()
            })
            .map_err(Failure::Host)?;
        }
        CtlCommand::Stats => {
            let v = ask(socket, &Request::Stats, WAIT)?;
            if json {
                print_json(&v);
            } else {
                print_stats(&decode::<Stats>(v)?);
            }
        }
    }
    Ok(())
}

fn swap(socket: &Path, json: bool, req: &Request) -> Result<(), Failure> {
    let v = ask(socket, req, WAIT)?;
    let out: SwapOutcome = decode(v.clone())?;
    if json {
        print_json(&v);
    } else {
        for b in &out.behaviours {
            if b.from.is_empty() {
                outln!("{} {}", b.behaviour, out.outcome);
            } else {
                outln!(
                    "{} {} -> {}: {} ({} actors, paused {} us)",
                    b.behaviour,
                    b.from,
                    b.to,
                    out.outcome,
                    b.actors,
                    out.pause_us
                );
            }
        }
        if let Some(r) = &out.reason {
            outln!("reason: {r}");
        }
    }
    if out.succeeded() {
        Ok(())
    } else {
        Err(Failure::Host(format!(
            "{}: {}",
            out.outcome,
            out.reason.unwrap_or_default()
        )))
    }
}

/// `reload` / `rollback`: one swap's report, or with `--all-nodes` a line per node.
fn swap_here_or_everywhere(
    socket: &Path,
    json: bool,
    req: &Request,
    all_nodes: bool,
) -> Result<(), Failure> {
    if all_nodes {
        every_node(socket, json, req)
    } else {
        swap(socket, json, req)
    }
}

/// `reload` / `rollback` with `--all-nodes`: one line per node, `node: outcome (why)`;
/// fails if any node did not take it.
fn every_node(socket: &Path, json: bool, req: &Request) -> Result<(), Failure> {
    // Each node has two minutes to swap; they run at once.
    let v = ask(socket, req, Duration::from_secs(150))?;
    let rows: Vec<crate::observe::model::NodeSwap> = decode(v.clone())?;
    if json {
        print_json(&v);
    } else {
        for r in &rows {
            match &r.reason {
                Some(why) => outln!("{}: {} ({why})", r.node, r.outcome),
                None => outln!("{}: {}", r.node, r.outcome),
            }
        }
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| {
            !matches!(
                r.outcome.as_str(),
                "ok" | "loaded" | "unchanged" | "skipped"
            )
        })
        .map(|r| r.node.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Host(format!(
            "not swapped on {}",
            failed.join(", ")
        )))
    }
}

/// `HH:MM:SS.mmm` UTC.
fn clock(secs: u64, millis: u64) -> String {
    let s = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{millis:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Prints rows with columns padded to their widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        outln!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn print_actors(actors: &[ActorInfo]) {
    table(
        &[
            "ID",
            "NAME",
            "BEHAVIOUR",
            "VERSION",
            "STATUS",
            "MAILBOX",
            "HANDLED",
            "RESTARTS",
        ],
        actors
            .iter()
            .map(|a| {
                vec![
                    a.id.to_string(),
                    a.name.clone().unwrap_or_else(|| "-".into()),
                    a.behaviour.clone(),
                    a.version.clone(),
                    a.status.clone(),
                    a.mailbox.to_string(),
                    a.handled.to_string(),
                    a.restarts.to_string(),
                ]
            })
            .collect(),
    );
}

fn print_nodes(rows: &[NodeRow]) {
    table(
        &[
            "NODE",
            "DIR",
            "HIDDEN",
            "UP",
            "MSGS_IN",
            "BYTES_IN",
            "MSGS_OUT",
            "BYTES_OUT",
            "QUEUE",
        ],
        rows.iter()
            .map(|n| {
                vec![
                    n.node.clone(),
                    n.direction.clone(),
                    n.hidden.to_string(),
                    format!("{}s", n.up_secs),
                    n.msgs_in.to_string(),
                    n.bytes_in.to_string(),
                    n.msgs_out.to_string(),
                    n.bytes_out.to_string(),
                    n.queue.to_string(),
                ]
            })
            .collect(),
    );
}

fn print_versions(rows: &[VersionRow]) {
    table(
        &[
            "BEHAVIOURS",
            "HASH",
            "STATUS",
            "ACTORS",
            "LOADED",
            "LIBRARY",
        ],
        rows.iter()
            .map(|v| {
                let status = match &v.reason {
                    Some(r) => format!("{} ({r})", v.status),
                    None => v.status.clone(),
                };
                vec![
                    v.behaviours.join(","),
                    v.hash.clone(),
                    status,
                    v.actors.to_string(),
                    if v.loaded_at == 0 {
                        "-".into()
                    } else {
                        format!("{}Z", clock(v.loaded_at, 0).trim_end_matches(".000"))
                    },
                    v.library.display().to_string(),
                ]
            })
            .collect(),
    );
}

fn print_tree(n: &TreeNode, prefix: &str, last: bool, root: bool) {
    let branch = if root {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let actor = if n.actor.0 == 0 {
        String::new()
    } else {
        format!(" {}", n.actor)
    };
    outln!(
        "{prefix}{branch}{} ({} {}){actor} {} restarts {}",
        n.name,
        n.kind,
        n.detail,
        n.status,
        n.restarts
    );
    let child_prefix = if root {
        String::new()
    } else if last {
        format!("{prefix}   ")
    } else {
        format!("{prefix}│  ")
    };
    for (i, c) in n.children.iter().enumerate() {
        print_tree(c, &child_prefix, i + 1 == n.children.len(), false);
    }
}

fn print_stats(s: &Stats) {
    let util: Vec<String> = s
        .utilisation
        .iter()
        .map(|u| format!("{:.0}%", u * 100.0))
        .collect();
    table(
        &["STAT", "VALUE"],
        vec![
            vec!["uptime".into(), format!("{:.0} s", s.uptime_s)],
            vec!["actors".into(), s.actors.to_string()],
            vec!["messages".into(), s.messages.to_string()],
            vec!["messages/s".into(), format!("{:.0}", s.messages_per_s)],
            vec!["scheduler utilisation".into(), util.join(" ")],
            vec!["run queue".into(), s.run_queue.to_string()],
            vec!["reloads ok".into(), s.reloads_ok.to_string()],
            vec![
                "reloads rolled back".into(),
                s.reloads_rolled_back.to_string(),
            ],
            vec!["reloads rejected".into(), s.reloads_rejected.to_string()],
            vec!["crashes".into(), s.crashes.to_string()],
        ],
    );
}

fn print_status(s: &ActorStatus) {
    let list = |ids: &[crate::ActorId]| {
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let status = if s.suspended_by_operator {
        format!(
            "{} (by an operator: `host ctl resume` releases it)",
            s.status
        )
    } else {
        s.status.clone()
    };
    println!("actor        {}", s.id);
    println!("name         {}", s.name.as_deref().unwrap_or("-"));
    println!("behaviour    {} {}", s.behaviour, s.version);
    println!("status       {status}");
    println!("mailbox      {}", s.mailbox);
    println!("handled      {}", s.handled);
    println!("links        {}", list(&s.links));
    println!("monitored by {}", list(&s.monitored_by));
    println!("trap_exit    {}", s.trap_exit);
    println!("restarts     {}", s.restarts);
}
