//! The control socket inside the host: a Unix domain socket only its own user can use.
//!
//! Safety of the socket, in layers:
//! 1. Its directory must not be writable by anyone else (checked at start; the host
//!    refuses to start otherwise), and is created `0700` if missing — nobody else can
//!    replace the socket or plant one.
//! 2. The socket file is `0600`: connecting needs write permission on it.
//! 3. Every connection's peer credentials (`SO_PEERCRED`) must carry the host's own uid;
//!    anyone else gets one error line and is disconnected.
//!
//! Each connection gets a thread (operators are few) that answers one request; a `trace`
//! keeps its connection until the client hangs up. Every buffer is bounded: at most
//! [`MAX_CONNECTIONS`] at once (more are told so and closed), a request line of at most
//! [`MAX_REQUEST_LINE`] bytes that must arrive within [`REQUEST_DEADLINE`], and a trace
//! subscription of a bounded queue whose overflow is dropped and counted (the client
//! prints the count). Connection threads hold only a weak
//! reference to the host, so an open `trace` never keeps a stopping host alive.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use plugin_api::etf;

use super::protocol::{
    JsonStr, Request, Response, SwapOutcome, TEXT_ANSWER_END, TEXT_ANSWER_START,
};
use crate::observe::model::{Snapshot, Stats};
use crate::observe::Event;
use crate::StatsSampler;
use crate::{CallError, Host, Target};

/// Connections served at once; more are answered with an error and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest request line accepted (a `call` payload included).
pub const MAX_REQUEST_LINE: usize = 1 << 20;
/// How long a client may take to send its request line, whole.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Counts a served connection while it lives.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The socket path used when the configuration names none:
/// `$XDG_RUNTIME_DIR/actor-host/host.sock`, else `/tmp/actor-host-UID/host.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("actor-host").join("host.sock"),
        None => {
            PathBuf::from(format!("/tmp/actor-host-{}", nix::unistd::getuid())).join("host.sock")
        }
    }
}

/// The running listener. Dropping it stops accepting and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Checks (or creates, `0700`) the socket's directory: it must be ours and writable by
/// nobody else.
fn check_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                format!(
                    "cannot create the control socket directory {}: {e}",
                    dir.display()
                )
            })?;
    }
    check_existing_dir(dir)
}

/// Checks the socket's directory before anyone uses it — the host before listening,
/// `host ctl` and `host top` before connecting (as tmux and ssh-agent do): it must be a
/// directory of this user (after symlinks), writable by nobody else.
/// Otherwise another user who created `/tmp/actor-host-UID` first could plant a socket
/// and receive our requests.
pub(crate) fn check_existing_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("control socket directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "control socket directory {} is not a directory",
            dir.display()
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "control socket directory {} is writable by others (mode {mode:04o}); \
             anyone could replace the socket. Use a private directory (chmod go-w) \
             or set control_socket in the config",
            dir.display()
        ));
    }
    let me = nix::unistd::getuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "control socket directory {} belongs to uid {}, not to this user ({me}); \
             someone else created it: remove it or set [control] socket / --socket \
             to a directory of yours",
            dir.display(),
            meta.uid()
        ));
    }
    Ok(())
}

impl ControlServer {
    /// Binds the socket at `path` and serves `host` on it.
    pub fn start(host: &Arc<Host>, path: &Path) -> Result<ControlServer, String> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        check_dir(dir)?;
        if path.exists() {
            // A live host answers; a stale file from a crashed one does not.
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "another host is already listening on {}",
                    path.display()
                ));
            }
            // Only a stale socket of ours is removed: never a regular file (a typo in
            // `[control] socket` must not delete data), nor another user's socket.
            let meta = std::fs::symlink_metadata(path)
                .map_err(|e| format!("control socket {}: {e}", path.display()))?;
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "{} exists and is not a socket; refusing to replace it (remove it, or set \
                     [control] socket to another path)",
                    path.display()
                ));
            }
            if meta.uid() != nix::unistd::getuid().as_raw() {
                return Err(format!(
                    "{} is a socket of uid {}, not ours; refusing to replace it",
                    path.display(),
                    meta.uid()
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, flag) = (Arc::downgrade(host), stop.clone());
        let rates = Arc::new(Mutex::new(None));
        let (weak2, flag2, rates2) = (weak.clone(), stop.clone(), rates.clone());
        std::thread::Builder::new()
            .name("control-sampler".into())
            .spawn(move || sample_loop(weak2, flag2, rates2))
            .map_err(|e| format!("cannot start the stats sampler: {e}"))?;
        // Other hosts' `host ctl --node` requests arrive over the distribution and are
        // answered here as if they came through the socket.
        let (weak3, rates3) = (weak.clone(), rates.clone());
        host.set_ctl_handler(Arc::new(move |json: &[u8]| {
            let req: Request =
                serde_json::from_slice(json).map_err(|e| format!("malformed request: {e}"))?;
            if matches!(req, Request::Trace { .. }) {
                return Err("trace cannot be forwarded".into());
            }
            let h = weak3.upgrade().ok_or("the host is stopping")?;
            // Forwarded answers travel whole (a term printed into one string).
            let v = match answer(&h, req, &rates3)? {
                Answer::Value(v) => v,
                Answer::Term(bytes) => serde_json::Value::String(etf::display(&bytes)),
            };
            serde_json::to_vec(&v).map_err(|e| e.to_string())
        }));
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_loop(listener, weak, flag, rates))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
        Event::ControlListening { socket: path }.log();
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The latest rates (messages per second, utilisation), sampled once a second so that a
/// one-shot `host ctl stats` reports the last second, not the time since someone last
/// asked.
type Rates = Arc<Mutex<Option<Stats>>>;

fn sample_loop(host: Weak<Host>, stop: Arc<AtomicBool>, rates: Rates) {
    let mut sampler = StatsSampler::new();
    while !stop.load(Ordering::SeqCst) {
        match host.upgrade() {
            Some(h) => *rates.lock() = Some(sampler.sample(&h)),
            None => return,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Counters now, with the latest sampled rates.
fn stats(host: &Host, rates: &Rates) -> Stats {
    let mut s = host.stats();
    if let Some(r) = &*rates.lock() {
        s.messages_per_s = r.messages_per_s;
        s.utilisation = r.utilisation.clone();
    }
    s
}

fn accept_loop(listener: UnixListener, host: Weak<Host>, stop: Arc<AtomicBool>, sampler: Rates) {
    let me = nix::unistd::getuid().as_raw();
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let peer = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials);
        match peer {
            Ok(c) if c.uid() == me => {}
            Ok(c) => {
                Event::ControlRefused { uid: c.uid() }.log();
                let _ = reply(
                    &mut conn,
                    &Response::Error(format!(
                        "refused: this host belongs to uid {me}, you are uid {}",
                        c.uid()
                    )),
                );
                continue;
            }
            Err(e) => {
                let _ = reply(
                    &mut conn,
                    &Response::Error(format!("refused: no peer credentials: {e}")),
                );
                continue;
            }
        }
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = reply(
                &mut conn,
                &Response::Error(format!(
                    "busy: {MAX_CONNECTIONS} control connections are open; try again"
                )),
            );
            continue;
        }
        let slot = Slot(active.clone());
        let (host, sampler) = (host.clone(), sampler.clone());
        let _ = std::thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve(conn, host, sampler)
            });
    }
}

fn reply(conn: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).unwrap_or_else(|e| {
        format!("{{\"error\":\"cannot encode the response: {e}\"}}").into_bytes()
    });
    line.push(b'\n');
    conn.write_all(&line)
}

/// Reads the request line: at most [`MAX_REQUEST_LINE`] bytes, all within
/// [`REQUEST_DEADLINE`] (a client trickling bytes cannot hold a thread for longer).
fn read_request(conn: &mut UnixStream) -> Result<Vec<u8>, String> {
    let deadline = std::time::Instant::now() + REQUEST_DEADLINE;
    let mut line = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no complete request within {} s",
                REQUEST_DEADLINE.as_secs()
            ));
        }
        let _ = conn.set_read_timeout(Some(left));
        let n = match conn.read(&mut buf) {
            Ok(0) => return Err("closed before a request".into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the request: {e}")),
        };
        if let Some(end) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..end]);
            if line.len() <= MAX_REQUEST_LINE {
                return Ok(line);
            }
        } else {
            line.extend_from_slice(&buf[..n]);
        }
        if line.len() > MAX_REQUEST_LINE {
            return Err(format!("request line longer than {MAX_REQUEST_LINE} bytes"));
        }
    }
}

/// Reads one request, answers it.
fn serve(mut conn: UnixStream, host: Weak<Host>, sampler: Rates) {
    let line = match read_request(&mut conn) {
        Ok(l) => l,
        Err(e) => {
            let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = reply(&mut conn, &Response::Error(format!("refused: {e}")));
            return;
        }
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    // A client that stops reading does not hold the thread (and the answer) for ever.
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let req: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            let _ = reply(
                &mut conn,
                &Response::Error(format!("malformed request: {e}")),
            );
            return;
        }
    };
    let Some(h) = host.upgrade() else {
        let _ = reply(&mut conn, &Response::Error("the host is stopping".into()));
        return;
    };
    if let Request::Trace { to } = &req {
        let rx = match h.trace(resolve(&h, to)) {
            Ok(rx) => rx,
            Err(e) => {
                let _ = reply(&mut conn, &Response::Error(e.to_string()));
                return;
            }
        };
        drop(h);
        let _ = reply(&mut conn, &Response::Ok(serde_json::Value::Null));
        // Until the client hangs up (a write fails) or the host goes (the sender drops).
        // Idle periods probe the connection so a vanished client is noticed.
        let _ = conn.set_read_timeout(None);
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(ev) => {
                    if reply(&mut conn, &Response::Trace(ev)).is_err() {
                        return;
                    }
                }
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => {
                    if host.strong_count() == 0 || peer_gone(&conn) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
    let resp = answer(&h, req, &sampler);
    drop(h);
    let _ = match resp {
        Ok(Answer::Value(v)) => reply(&mut conn, &Response::Ok(v)),
        Ok(Answer::Term(bytes)) => reply_term(&mut conn, &bytes),
        Err(e) => reply(&mut conn, &Response::Error(e)),
    };
}

/// What a request is answered with.
enum Answer {
    /// `{"ok":VALUE}`.
    Value(serde_json::Value),
    /// `{"ok":"TEXT"}`, TEXT the term printed in Erlang syntax (`state`, `call`).
    Term(Vec<u8>),
}

/// Answers with a term printed in Erlang syntax: the line `{"ok":"TEXT"}` that
/// `reply(Response::Ok(Value::String(etf::display(bytes))))` would write, streamed to the
/// socket as it is printed — no term tree, no whole text, no escaped copy of it; the memory
/// it takes is the buffer, beside the term's bytes. A 30 MB state peaked at 1.8 GB when
/// built in memory. The term is printed twice, first to nowhere: only a term that prints
/// is streamed (an undecodable one is one short line saying why), so a line once begun is
/// always completed the same way.
fn reply_term(conn: &mut UnixStream, bytes: &[u8]) -> std::io::Result<()> {
    if etf::write_display(bytes, &mut std::io::sink()).is_err() {
        let text = serde_json::Value::String(etf::display(bytes));
        return reply(conn, &Response::Ok(text));
    }
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, conn);
    out.write_all(TEXT_ANSWER_START)?;
    etf::write_display(bytes, &mut JsonStr(&mut out))?;
    out.write_all(TEXT_ANSWER_END)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Whether the client closed its end (a non-blocking peek reads end-of-file).
fn peer_gone(conn: &UnixStream) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    let mut buf = [0u8; 1];
    matches!(
        recv(
            conn.as_raw_fd(),
            &mut buf,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Ok(0)
    )
}

/// `counter`, `<0.12.0>` or `12`, without a host to ask: a bare number is an id.
pub fn target(to: &str) -> Target<'_> {
    let id = to
        .strip_prefix("<0.")
        .and_then(|r| r.strip_suffix(".0>"))
        .unwrap_or(to);
    match id.parse::<u64>() {
        Ok(n) => Target::Id(crate::ActorId(n)),
        Err(_) => Target::Name(to),
    }
}

/// How long `state` waits for an actor inside a callback before answering `busy`.
const STATE_TIMEOUT: Duration = Duration::from_secs(2);

/// As [`target`], asking `host`: `<0.12.0>` is always an id, but a bare number that is a
/// registered name (an actor named `"42"`) is that name; otherwise it is an id.
pub fn resolve<'a>(host: &Host, to: &'a str) -> Target<'a> {
    match target(to) {
        Target::Id(_) if !to.starts_with('<') && host.whereis(to).is_some() => Target::Name(to),
        t => t,
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot encode the answer: {e}"))
}

/// Refuses bytes that are not one well-formed term.
fn check_term(bytes: &[u8]) -> Result<(), String> {
    etf::Term::decode(bytes)
        .map(|_| ())
        .map_err(|e| format!("the term does not decode: {e}"))
}

fn answer(host: &Host, req: Request, sampler: &Rates) -> Result<Answer, String> {
    let value = match req {
        Request::Call {
            to,
            etf,
            timeout_ms,
        } => {
            check_term(&etf)?;
            let r = host
                .call(resolve(host, &to), etf, Duration::from_millis(timeout_ms))
                .map_err(|e| match e {
                    CallError::Timeout => {
                        format!("timeout: {to} did not reply within {timeout_ms} ms")
                    }
                    other => other.to_string(),
                })?;
            return Ok(Answer::Term(r));
        }
        Request::State { to } => {
            let bytes = host
                .state_within(resolve(host, &to), STATE_TIMEOUT)
                .map_err(|e| e.to_string())?;
            return Ok(Answer::Term(bytes));
        }
        other => answer_value(host, other, sampler)?,
    };
    Ok(Answer::Value(value))
}

/// The requests answered with a JSON value.
fn answer_value(host: &Host, req: Request, sampler: &Rates) -> Result<serde_json::Value, String> {
    match req {
        Request::List => json(&host.actors()),
        Request::Send { to, etf } => {
            check_term(&etf)?;
            host.send(resolve(host, &to), etf)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Null)
        }
        Request::Cast { to, etf } => {
            check_term(&etf)?;
            host.cast(resolve(host, &to), etf)
                .map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Null)
        }
        Request::Versions => json(&host.versions()),
        Request::Nodes => json(&host.nodes()),
        Request::Reload {
            behaviour,
            path,
            all_nodes: true,
            ..
        } => json(
            &host
                .reload_all_nodes(&behaviour, path.as_deref().map(Path::new))
                .map_err(|e| e.to_string())?,
        ),
        Request::Rollback {
            behaviour,
            all_nodes: true,
            ..
        } => json(
            &host
                .rollback_all_nodes(&behaviour)
                .map_err(|e| e.to_string())?,
        ),
        Request::Reload {
            behaviour,
            path,
            extra,
            ..
        } => {
            let extra = extra_term(extra)?;
            let ev = host
                .reload_with(&behaviour, path.as_deref().map(Path::new), &extra)
                .map_err(|e| e.to_string())?;
            json(&SwapOutcome::from_event(&ev))
        }
        Request::Rollback {
            behaviour, extra, ..
        } => {
            let extra = extra_term(extra)?;
            let ev = host
                .rollback_with(&behaviour, &extra)
                .map_err(|e| e.to_string())?;
            json(&SwapOutcome::from_event(&ev))
        }
        Request::Suspend { to } => {
            host.suspend(target(&to)).map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Null)
        }
        Request::Resume { to } => {
            host.resume(target(&to)).map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Null)
        }
        Request::Status { to } => json(&host.status(target(&to)).map_err(|e| e.to_string())?),
        Request::Tree => json(&host.tree().map_err(|e| e.to_string())?),
        Request::Stats => json(&stats(host, sampler)),
        Request::Snapshot => {
            let tree = host.tree().unwrap_or_default();
            json(&Snapshot {
                stats: stats(host, sampler),
                actors: host.actors_in(&tree),
                tree,
                versions: host.versions(),
                recent: host.recent_events(),
                nodes: host.nodes(),
            })
        }
        Request::Trace { .. } => Err("trace is answered as a stream".into()),
        Request::Forward { node, request } => {
            if matches!(*request, Request::Trace { .. }) {
                return Err("trace cannot be forwarded to another node".into());
            }
            let json = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
            let out = host.forward_ctl(&node, &json)?;
            serde_json::from_slice(&out).map_err(|e| format!("{node} answered: {e}"))
        }
        Request::Call { .. } | Request::State { .. } => Err("answered as a term".into()),
    }
}

/// `Extra` for a swap: the operator's term, checked, or `[]`.
fn extra_term(extra: Option<Vec<u8>>) -> Result<Vec<u8>, String> {
    match extra {
        Some(etf) => {
            check_term(&etf)?;
            Ok(etf)
        }
        None => Ok(vec![131, 106]),
    }
}
