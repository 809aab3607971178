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
//! keeps its connection until the client hangs up. Connection threads hold only a weak
//! reference to the host, so an open `trace` never keeps a stopping host alive.

use std::io::{BufRead, BufReader, Read, Write};
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

use super::protocol::{Request, Response, SwapOutcome};
use crate::observe::model::{Snapshot, Stats};
use crate::observe::Event;
use crate::StatsSampler;
use crate::{CallError, Host, Target};

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
            "control socket directory {} belongs to uid {}, not to this user ({me})",
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
        let (host, sampler) = (host.clone(), sampler.clone());
        let _ = std::thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || serve(conn, host, sampler));
    }
}

fn reply(conn: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).unwrap_or_else(|e| {
        format!("{{\"error\":\"cannot encode the response: {e}\"}}").into_bytes()
    });
    line.push(b'\n');
    conn.write_all(&line)
}

/// Reads one request, answers it.
fn serve(mut conn: UnixStream, host: Weak<Host>, sampler: Rates) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    // A line longer than this is not a request we sent.
    let mut limited = (&mut reader).take(16 << 20);
    if limited.read_line(&mut line).is_err() {
        return;
    }
    let req: Request = match serde_json::from_str(&line) {
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
        let rx = match h.trace(target(to)) {
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
    let resp = match answer(&h, req, &sampler) {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e),
    };
    drop(h);
    let _ = reply(&mut conn, &resp);
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

/// `counter`, `<0.12.0>` or `12`.
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

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot encode the answer: {e}"))
}

fn answer(host: &Host, req: Request, sampler: &Rates) -> Result<serde_json::Value, String> {
    let check_term = |bytes: &[u8]| {
        etf::Term::decode(bytes)
            .map(|_| ())
            .map_err(|e| format!("the term does not decode: {e}"))
    };
    match req {
        Request::List => json(&host.actors()),
        Request::Send { to, etf } => {
            check_term(&etf)?;
            host.send(target(&to), etf).map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Null)
        }
        Request::Cast { to, etf } => {
            check_term(&etf)?;
            host.cast(target(&to), etf).map_err(|e| e.to_string())?;
            Ok(serde_json::Value::Null)
        }
        Request::Call {
            to,
            etf,
            timeout_ms,
        } => {
            check_term(&etf)?;
            let r = host
                .call(target(&to), etf, Duration::from_millis(timeout_ms))
                .map_err(|e| match e {
                    CallError::Timeout => {
                        format!("timeout: {to} did not reply within {timeout_ms} ms")
                    }
                    other => other.to_string(),
                })?;
            Ok(serde_json::Value::String(etf::display(&r)))
        }
        Request::State { to } => {
            let bytes = host.state(target(&to)).map_err(|e| e.to_string())?;
            Ok(serde_json::Value::String(etf::display(&bytes)))
        }
        Request::Versions => json(&host.versions()),
        Request::Nodes => json(&host.nodes()),
        Request::Reload { behaviour, path } => {
            let ev = host
                .reload_behaviour(&behaviour, path.as_deref().map(Path::new))
                .map_err(|e| e.to_string())?;
            json(&SwapOutcome::from_event(&ev))
        }
        Request::Rollback { behaviour } => {
            let ev = host.rollback(&behaviour).map_err(|e| e.to_string())?;
            json(&SwapOutcome::from_event(&ev))
        }
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
            })
        }
        Request::Trace { .. } => Err("trace is answered as a stream".into()),
    }
}
