//! An EPMD of our own (`host epmd`), for machines without Erlang: two hosts form a cluster
//! with no `epmd` installed, and a real `erl` registers with it as with its own.
//!
//! The protocol is EPMD's (the subset nodes use): `ALIVE2_REQ` registers a name for as
//! long as its connection stays open and is answered `ALIVE2_X_RESP` with a fresh 32-bit
//! creation; `PORT_PLEASE2_REQ` answers `PORT2_RESP` with the node's port and versions;
//! `NAMES_REQ` answers the `name N at port P` lines `epmd -names` and `net_adm:names/0`
//! read; `KILL_REQ` (`epmd -kill`) answers `OK` and stops it. Every request is one
//! connection, every read has a deadline, and a malformed request closes only its own
//! connection.
//!
//! A host that finds no EPMD on its port starts one, as `erl` does: `epmd` from `PATH` if
//! there is one, else this, as a detached `host epmd` process that outlives the host
//! (other nodes may be registered with it).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
const NAMES_REQ: u8 = 110;
const KILL_REQ: u8 = 107;

/// How long a client may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// A registered node, as ALIVE2 described it.
#[derive(Clone)]
struct Entry {
    port: u16,
    node_type: u8,
    protocol: u8,
    highest: u16,
    lowest: u16,
    extra: Vec<u8>,
    /// Which registration holds the name (a newer one may replace a dead one's).
    token: u64,
}

#[derive(Default)]
struct Names {
    by_name: HashMap<Vec<u8>, Entry>,
    next_token: u64,
}

/// A running EPMD.
pub struct EpmdServer {
    names: Mutex<Names>,
    creation: AtomicU32,
    stop: AtomicBool,
    port: u16,
}

fn read_request(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

fn u16_at(b: &[u8], at: usize) -> io::Result<u16> {
    b.get(at..at + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]))
        .ok_or_else(|| io::Error::other("short request"))
}

impl EpmdServer {
    /// Serves on `listener` until killed (`KILL_REQ`); one thread per connection.
    pub fn serve(listener: TcpListener) -> io::Result<()> {
        let port = listener.local_addr()?.port();
        // Creations start somewhere new each run, so a node restarted under another EPMD
        // run still gets a creation its peers have not seen.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
            .unwrap_or(1);
        let me = Arc::new(EpmdServer {
            names: Mutex::default(),
            creation: AtomicU32::new(seed | 1),
            stop: AtomicBool::new(false),
            port,
        });
        for stream in listener.incoming() {
            if me.stop.load(Ordering::Acquire) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let me = me.clone();
            let _ = std::thread::Builder::new()
                .name("epmd-conn".into())
                .spawn(move || {
                    let _ = me.connection(stream);
                });
        }
        Ok(())
    }

    fn connection(&self, mut s: TcpStream) -> io::Result<()> {
        s.set_read_timeout(Some(READ_DEADLINE))?;
        s.set_write_timeout(Some(READ_DEADLINE))?;
        let req = read_request(&mut s)?;
        match req.first() {
            Some(&ALIVE2_REQ) => self.alive(s, &req[1..]),
            Some(&PORT_PLEASE2_REQ) => {
                let entry = self.names.lock().unwrap().by_name.get(&req[1..]).cloned();
                let mut out = vec![PORT2_RESP];
                match entry {
                    Some(e) => {
                        out.push(0);
                        out.extend_from_slice(&e.port.to_be_bytes());
                        out.extend_from_slice(&[e.node_type, e.protocol]);
                        out.extend_from_slice(&e.highest.to_be_bytes());
                        out.extend_from_slice(&e.lowest.to_be_bytes());
                        out.extend_from_slice(&(req.len() as u16 - 1).to_be_bytes());
                        out.extend_from_slice(&req[1..]);
                        out.extend_from_slice(&(e.extra.len() as u16).to_be_bytes());
                        out.extend_from_slice(&e.extra);
                    }
                    None => out.push(1),
                }
                s.write_all(&out)
            }
            Some(&NAMES_REQ) => {
                let mut out = u32::from(self.port).to_be_bytes().to_vec();
                let names = self.names.lock().unwrap();
                let mut list: Vec<_> = names.by_name.iter().collect();
                list.sort_by(|a, b| a.0.cmp(b.0));
                for (name, e) in list {
                    out.extend_from_slice(b"name ");
                    out.extend_from_slice(name);
                    out.extend_from_slice(format!(" at port {}\n", e.port).as_bytes());
                }
                drop(names);
                s.write_all(&out)
            }
            Some(&KILL_REQ) => {
                s.write_all(b"OK")?;
                self.stop.store(true, Ordering::Release);
                // Wake the accept loop so it sees `stop`.
                let _ = TcpStream::connect(("127.0.0.1", self.port));
                Ok(())
            }
            _ => Err(io::Error::other("unknown EPMD request")),
        }
    }

    /// ALIVE2: the name is held while this connection stays open.
    fn alive(&self, mut s: TcpStream, b: &[u8]) -> io::Result<()> {
        let port = u16_at(b, 0)?;
        let (node_type, protocol) = (*b.get(2).unwrap_or(&0), *b.get(3).unwrap_or(&0));
        let (highest, lowest) = (u16_at(b, 4)?, u16_at(b, 6)?);
        let nlen = u16_at(b, 8)? as usize;
        let name = b
            .get(10..10 + nlen)
            .ok_or_else(|| io::Error::other("short name"))?
            .to_vec();
        let elen = u16_at(b, 10 + nlen).unwrap_or(0) as usize;
        let extra = b.get(12 + nlen..12 + nlen + elen).unwrap_or(&[]).to_vec();
        let token = {
            let mut names = self.names.lock().unwrap();
            if names.by_name.contains_key(&name) {
                drop(names);
                return s.write_all(&[ALIVE2_X_RESP, 1, 0, 0, 0, 0]);
            }
            names.next_token += 1;
            let token = names.next_token;
            names.by_name.insert(
                name.clone(),
                Entry {
                    port,
                    node_type,
                    protocol,
                    highest,
                    lowest,
                    extra,
                    token,
                },
            );
            token
        };
        let creation = self.creation.fetch_add(1, Ordering::Relaxed).max(1);
        let mut out = vec![ALIVE2_X_RESP, 0];
        out.extend_from_slice(&creation.to_be_bytes());
        let answered = s.write_all(&out);
        if answered.is_ok() {
            // Held until the node closes the connection (or dies).
            let _ = s.set_read_timeout(None);
            let mut sink = [0u8; 64];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        }
        let mut names = self.names.lock().unwrap();
        if names.by_name.get(&name).is_some_and(|e| e.token == token) {
            names.by_name.remove(&name);
        }
        answered
    }
}

/// Whether an EPMD answers at `addr`.
pub(crate) fn answers(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Starts an EPMD on `addr`'s port, as `erl` does when none runs: `epmd -daemon` from
/// `PATH` if installed, else a detached `host epmd`. Waits (bounded) until it answers;
/// says which one it started.
pub(crate) fn start(addr: SocketAddr) -> Result<&'static str, String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let port = addr.port().to_string();
    let address = addr.ip().to_string();
    let system = Command::new("epmd")
        .args(["-daemon", "-port", &port, "-address", &address])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let which = match system {
        Ok(s) if s.success() => "epmd",
        _ => {
            let exe =
                std::env::current_exe().map_err(|e| format!("no path to this binary: {e}"))?;
            Command::new(exe)
                .args(["epmd", "--port", &port, "--address", &address])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group: a Ctrl-C aimed at the host leaves it running
                // for the other nodes registered with it.
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start `host epmd`: {e}"))?;
            "host epmd"
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !answers(addr) {
        if std::time::Instant::now() >= deadline {
            return Err(format!("{which} started but does not answer on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(which)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::epmd;

    #[test]
    fn nodes_register_are_found_and_leave_when_their_connection_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || EpmdServer::serve(listener));
        let t = Duration::from_secs(5);
        let a = epmd::register(addr, "alpha", 4711, true, t).unwrap();
        let b = epmd::register(addr, "beta", 4712, false, t).unwrap();
        assert_ne!(a.creation, b.creation);
        assert_eq!(epmd::port_please(addr, "alpha", t).unwrap(), Some(4711));
        assert_eq!(epmd::port_please(addr, "gamma", t).unwrap(), None);
        // A name is held by one node at a time.
        assert!(epmd::register(addr, "alpha", 4713, true, t).is_err());
        drop(a);
        let deadline = std::time::Instant::now() + t;
        while epmd::port_please(addr, "alpha", t).unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "alpha never left");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(epmd::port_please(addr, "beta", t).unwrap(), Some(4712));
        // Garbage closes only its own connection.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&[0, 3, 99, 1, 2]).unwrap();
        assert_eq!(epmd::port_please(addr, "beta", t).unwrap(), Some(4712));
        drop(b);
    }
}
