//! The client side of the control socket: one request, one answer (or a stream of trace
//! lines), with errors an operator can act on.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Request, Response};
use crate::observe::model::TraceEvent;

/// Connects to the host listening on `socket`, after checking, as tmux and ssh-agent do,
/// that the socket's directory is ours and private (see
/// [`check_existing_dir`](super::server::check_existing_dir)) and, once connected, that
/// the process on the other end runs as this user: a socket planted by someone else never
/// receives a request (call payloads included) nor gets its answers printed.
fn connect(socket: &Path) -> Result<UnixStream, String> {
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.exists() {
        super::server::check_existing_dir(dir).map_err(|e| format!("refused to connect: {e}"))?;
    }
    let conn = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "no host is listening on {} (is it running? a host started with --config FILE: `host ctl -c FILE ...`; or give --socket PATH)",
            socket.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "refused: no permission to use {} (it belongs to another user)",
            socket.display()
        ),
        _ => format!("cannot connect to {}: {e}", socket.display()),
    })?;
    let me = nix::unistd::getuid().as_raw();
    match nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) if c.uid() == me => Ok(conn),
        Ok(c) => Err(format!(
            "not talking to {}: it is served by uid {}, not by this user ({me})",
            socket.display(),
            c.uid()
        )),
        Err(e) => Err(format!(
            "not talking to {}: no peer credentials: {e}",
            socket.display()
        )),
    }
}

fn send(conn: &mut UnixStream, req: &Request) -> Result<(), String> {
    let mut line =
        serde_json::to_vec(req).map_err(|e| format!("cannot encode the request: {e}"))?;
    line.push(b'\n');
    conn.write_all(&line)
        .map_err(|e| format!("the host closed the connection: {e}"))
}

fn read(reader: &mut impl BufRead) -> Result<Response, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err("the host closed the connection without answering".into()),
        Ok(_) => {
            serde_json::from_str(&line).map_err(|e| format!("unreadable answer from the host: {e}"))
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            Err("the host did not answer in time".into())
        }
        Err(e) => Err(format!("cannot read the answer: {e}")),
    }
}

/// Sends one request and returns the answer's value, or the host's error.
///
/// `wait` bounds how long the host may take (a `call` passes its own timeout plus a
/// margin).
pub fn request(socket: &Path, req: &Request, wait: Duration) -> Result<serde_json::Value, String> {
    let mut conn = connect(socket)?;
    let _ = conn.set_read_timeout(Some(wait));
    send(&mut conn, req)?;
    match read(&mut BufReader::new(conn))? {
        Response::Ok(v) => Ok(v),
        Response::Error(e) => Err(e),
        Response::Trace(_) => Err("unexpected trace line from the host".into()),
    }
}

/// Follows an actor's messages, calling `each` per message until it returns false or the
/// host goes away.
pub fn trace(
    socket: &Path,
    to: &str,
    mut each: impl FnMut(TraceEvent) -> bool,
) -> Result<(), String> {
    let mut conn = connect(socket)?;
    send(&mut conn, &Request::Trace { to: to.into() })?;
    let mut reader = BufReader::new(conn);
    match read(&mut reader)? {
        Response::Ok(_) => {}
        Response::Error(e) => return Err(e),
        Response::Trace(_) => return Err("unexpected trace line before the answer".into()),
    }
    loop {
        match read(&mut reader) {
            Ok(Response::Trace(ev)) => {
                if !each(ev) {
                    return Ok(());
                }
            }
            Ok(Response::Error(e)) => return Err(e),
            Ok(Response::Ok(_)) => {}
            Err(_) => return Err("the host went away".into()),
        }
    }
}
