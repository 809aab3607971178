//! The client side of the control socket: one request, one answer (or a stream of trace
//! lines), with errors an operator can act on.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{JsonUnescape, Request, Response, TEXT_ANSWER_END, TEXT_ANSWER_START};
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

/// Sends one request answered with a printed term (`state`, `call`) and writes the text
/// to `out` as it arrives, without holding the answer: the host streams the line
/// `{"ok":"TEXT"}`, and TEXT, unescaped piece by piece, goes straight to `out`. Any other
/// answer (the host's error) is read whole, as [`request`] does. If the connection breaks
/// in the middle, `out` has received part of the text and the error says so.
pub fn request_text(
    socket: &Path,
    req: &Request,
    wait: Duration,
    out: &mut impl Write,
) -> Result<(), String> {
    let mut conn = connect(socket)?;
    let _ = conn.set_read_timeout(Some(wait));
    send(&mut conn, req)?;
    let mut reader = BufReader::with_capacity(64 * 1024, conn);
    let lost = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "the host did not answer in time".to_string()
        }
        _ => format!("cannot read the answer: {e}"),
    };
    // The start of the line decides: a streamed text, or an answer to read whole.
    let mut head = Vec::new();
    while head.len() < TEXT_ANSWER_START.len() && TEXT_ANSWER_START.starts_with(&head) {
        let mut b = [0u8];
        match reader.read(&mut b) {
            Ok(0) => break,
            Ok(_) => head.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(lost(e)),
        }
    }
    if head != TEXT_ANSWER_START {
        if head.is_empty() {
            return Err("the host closed the connection without answering".into());
        }
        if !head.ends_with(b"\n") {
            reader.read_until(b'\n', &mut head).map_err(lost)?;
        }
        return match serde_json::from_slice(&head) {
            Ok(Response::Ok(serde_json::Value::String(text))) => out
                .write_all(text.as_bytes())
                .map_err(|e| format!("cannot write the answer: {e}")),
            Ok(Response::Ok(other)) => Err(format!("unexpected answer from the host: {other}")),
            Ok(Response::Error(e)) => Err(e),
            Ok(Response::Trace(_)) => Err("unexpected trace line from the host".into()),
            Err(e) => Err(format!("unreadable answer from the host: {e}")),
        };
    }
    let mut text = JsonUnescape::default();
    loop {
        let buf = reader.fill_buf().map_err(lost)?;
        if buf.is_empty() {
            return Err("the host closed the connection in the middle of its answer".into());
        }
        let fed = text.feed(buf, out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                format!("unreadable answer from the host: {e}")
            } else {
                format!("cannot write the answer: {e}")
            }
        })?;
        match fed {
            Some(n) => {
                reader.consume(n);
                break;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
    let mut rest = Vec::new();
    reader.read_until(b'\n', &mut rest).map_err(lost)?;
    // The closing quote was the string's; the rest of the line is `}`.
    if rest.strip_suffix(b"\n").unwrap_or(&rest) != &TEXT_ANSWER_END[1..] {
        return Err("unreadable answer from the host: the text is not closed".into());
    }
    Ok(())
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
