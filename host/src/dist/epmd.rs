//! The EPMD client: register this node's name and port (ALIVE2) and keep the socket open
//! for the node's life — closing it unregisters — and look up a peer's port
//! (PORT_PLEASE2). Every exchange has a deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const ALIVE2_RESP: u8 = 121;
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
/// Node types in ALIVE2: hidden and normal.
const HIDDEN: u8 = 72;
const NORMAL: u8 = 77;
/// The distribution protocol version we speak (v6, OTP 23 and later), lowest = highest.
const VERSION: u16 = 6;

/// A registration: holding it keeps the name registered.
pub(crate) struct Registration {
    _socket: TcpStream,
    /// This incarnation's creation, as EPMD handed it out.
    pub(crate) creation: u32,
}

fn request(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let len = u16::try_from(body.len()).map_err(|_| io::Error::other("EPMD request too long"))?;
    let mut buf = Vec::with_capacity(body.len() + 2);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    stream.write_all(&buf)
}

fn connect(epmd: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&epmd, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Registers `alive` (the part of the node name before `@`) listening on `port`.
pub(crate) fn register(
    epmd: SocketAddr,
    alive: &str,
    port: u16,
    hidden: bool,
    timeout: Duration,
) -> io::Result<Registration> {
    let mut s = connect(epmd, timeout)?;
    let mut body = vec![ALIVE2_REQ];
    body.extend_from_slice(&port.to_be_bytes());
    body.push(if hidden { HIDDEN } else { NORMAL });
    body.push(0); // protocol: TCP/IPv4
    body.extend_from_slice(&VERSION.to_be_bytes());
    body.extend_from_slice(&VERSION.to_be_bytes());
    body.extend_from_slice(&(alive.len() as u16).to_be_bytes());
    body.extend_from_slice(alive.as_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // no extra
    request(&mut s, &body)?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let creation = match head {
        [ALIVE2_X_RESP, 0] => {
            let mut c = [0u8; 4];
            s.read_exact(&mut c)?;
            u32::from_be_bytes(c)
        }
        [ALIVE2_RESP, 0] => {
            let mut c = [0u8; 2];
            s.read_exact(&mut c)?;
            u16::from_be_bytes(c) as u32
        }
        [ALIVE2_X_RESP | ALIVE2_RESP, code] => {
            return Err(io::Error::other(format!(
                "EPMD refused the name `{alive}` (result {code}: is it registered already?)"
            )))
        }
        [op, _] => return Err(io::Error::other(format!("unexpected EPMD answer {op}"))),
    };
    // From now on the socket only has to stay open.
    s.set_read_timeout(None)?;
    Ok(Registration {
        _socket: s,
        creation,
    })
}

/// The distribution port of `alive` on the host EPMD runs on; `None` if not registered.
pub(crate) fn port_please(
    epmd: SocketAddr,
    alive: &str,
    timeout: Duration,
) -> io::Result<Option<u16>> {
    let mut s = connect(epmd, timeout)?;
    let mut body = vec![PORT_PLEASE2_REQ];
    body.extend_from_slice(alive.as_bytes());
    request(&mut s, &body)?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    match head {
        [PORT2_RESP, 0] => {
            let mut p = [0u8; 2];
            s.read_exact(&mut p)?;
            Ok(Some(u16::from_be_bytes(p)))
        }
        [PORT2_RESP, _] => Ok(None),
        [op, _] => Err(io::Error::other(format!("unexpected EPMD answer {op}"))),
    }
}

/// Where EPMD listens: `port` (the config's, or `ERL_EPMD_PORT`, or 4369) on loopback
/// or the given address.
pub(crate) fn address(host: std::net::IpAddr, port: Option<u16>) -> SocketAddr {
    let port = port
        .or_else(|| std::env::var("ERL_EPMD_PORT").ok()?.parse().ok())
        .unwrap_or(4369);
    SocketAddr::new(host, port)
}
