//! The distribution handshake, version 6 (OTP 23 and later; OTP 25 refuses older), in
//! both roles, with the cookie digest `MD5(cookie ++ decimal(challenge))`.
//!
//! ```text
//! connecting side (A)                 accepting side (B)
//!   N  flags:64 creation:32 name  ->
//!                                 <-  s  ok | nok | alive | not_allowed
//!                                 <-  N  flags:64 challenge:32 creation:32 name
//!   r  challenge:32 digest:16     ->
//!                                 <-  a  digest:16
//! ```
//! Handshake messages carry a 2-byte length; the connection's frames after it a 4-byte
//! one. The caller sets the socket's deadlines: a peer that stalls mid-handshake times
//! out and is refused, never half-admitted.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use md5::{Digest, Md5};

/// Distribution capability flags (OTP's `dist.hrl`).
pub(crate) mod flags {
    pub const PUBLISHED: u64 = 0x1;
    pub const EXTENDED_REFERENCES: u64 = 0x4;
    pub const DIST_MONITOR: u64 = 0x8;
    pub const FUN_TAGS: u64 = 0x10;
    pub const DIST_MONITOR_NAME: u64 = 0x20;
    pub const NEW_FUN_TAGS: u64 = 0x80;
    pub const EXTENDED_PIDS_PORTS: u64 = 0x100;
    pub const EXPORT_PTR_TAG: u64 = 0x200;
    pub const BIT_BINARIES: u64 = 0x400;
    pub const NEW_FLOATS: u64 = 0x800;
    pub const UTF8_ATOMS: u64 = 0x10000;
    pub const MAP_TAG: u64 = 0x20000;
    pub const BIG_CREATION: u64 = 0x40000;
    pub const SEND_SENDER: u64 = 0x80000;
    pub const HANDSHAKE_23: u64 = 0x100_0000;
    pub const UNLINK_ID: u64 = 0x200_0000;
    /// `1 << 26` in OTP (the `erl_dist` crate has `1 << 36`, which OTP does not know).
    pub const MANDATORY_25_DIGEST: u64 = 0x400_0000;
    pub const SPAWN: u64 = 1 << 32;
    pub const V4_NC: u64 = 1 << 34;
    pub const ALIAS: u64 = 1 << 35;

    /// What OTP 25 and 26 require of a peer (and we of ours).
    pub const MANDATORY: u64 = EXTENDED_REFERENCES
        | FUN_TAGS
        | NEW_FUN_TAGS
        | EXTENDED_PIDS_PORTS
        | EXPORT_PTR_TAG
        | BIT_BINARIES
        | NEW_FLOATS
        | UTF8_ATOMS
        | MAP_TAG
        | BIG_CREATION
        | HANDSHAKE_23;

    /// What we advertise. No atom cache and no fragments: BEAM then sends plain frames,
    /// a big message in one frame.
    pub const OURS: u64 = MANDATORY
        | UNLINK_ID
        | V4_NC
        | MANDATORY_25_DIGEST
        | DIST_MONITOR
        | DIST_MONITOR_NAME
        | SEND_SENDER
        | SPAWN
        | ALIAS;
}

/// This node, as the handshake presents it.
pub(crate) struct Me<'a> {
    pub name: &'a str,
    pub cookie: &'a str,
    pub creation: u32,
    pub hidden: bool,
}

impl Me<'_> {
    fn flags(&self) -> u64 {
        if self.hidden {
            flags::OURS
        } else {
            flags::OURS | flags::PUBLISHED
        }
    }
}

/// The peer a handshake admitted.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub name: String,
    /// What the peer supports.
    pub flags: u64,
    /// The peer's incarnation.
    #[allow(dead_code)]
    pub creation: u32,
}

/// Why a handshake did not admit the peer (one log line).
#[derive(Debug)]
pub(crate) enum Refused {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The peer broke the protocol.
    Protocol(String),
    /// The peer lacks flags OTP 25 makes mandatory.
    Flags(u64),
    /// The digest did not match: another cookie.
    BadCookie,
    /// The other side said no (`nok`, `not_allowed`, ...).
    Status(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Io(e) => write!(f, "i/o: {e}"),
            Refused::Protocol(e) => write!(f, "protocol: {e}"),
            Refused::Flags(missing) => write!(f, "missing mandatory flags {missing:#x}"),
            Refused::BadCookie => f.write_str("bad cookie"),
            Refused::Status(s) => write!(f, "refused by peer: {s}"),
        }
    }
}

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Self {
        Refused::Io(e)
    }
}

/// `MD5(cookie ++ decimal(challenge))`.
pub(crate) fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(cookie.as_bytes());
    h.update(challenge.to_string().as_bytes());
    h.finalize().into()
}

/// A fresh challenge (any unpredictable 32 bits do).
fn challenge() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

fn send(s: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(body.len() + 2);
    buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf)
}

fn recv(s: &mut TcpStream) -> Result<Vec<u8>, Refused> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    if body.is_empty() {
        return Err(Refused::Protocol("empty handshake message".into()));
    }
    Ok(body)
}

/// A little cursor over a handshake message.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Refused> {
        if self.0.len() < n {
            return Err(Refused::Protocol("handshake message too short".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, Refused> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, Refused> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64, Refused> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn name(&mut self) -> Result<String, Refused> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Refused::Protocol("node name is not UTF-8".into()))
    }
}

fn check_flags(f: u64) -> Result<(), Refused> {
    let missing = flags::MANDATORY & !f;
    if missing != 0 {
        return Err(Refused::Flags(missing));
    }
    Ok(())
}

/// The accepting side. `known(name)` says whether a connection to that node is up; if
/// so the peer is told `alive` and continues only if it answers `true` (it restarted,
/// and the caller replaces the old connection).
pub(crate) fn accept(
    s: &mut TcpStream,
    me: &Me<'_>,
    known: impl Fn(&str) -> bool,
) -> Result<Peer, Refused> {
    let msg = recv(s)?;
    let mut c = Cur(&msg);
    match c.take(1)?[0] {
        b'N' => {}
        b'n' => {
            send(s, b"snot_allowed")?;
            return Err(Refused::Protocol(
                "peer speaks distribution version 5 (before OTP 23)".into(),
            ));
        }
        t => return Err(Refused::Protocol(format!("expected send_name, got {t}"))),
    }
    let peer_flags = c.u64()?;
    let creation = c.u32()?;
    let name = c.name()?;
    if let Err(e) = check_flags(peer_flags) {
        send(s, b"snot_allowed")?;
        return Err(e);
    }
    if known(&name) {
        send(s, b"salive")?;
        let answer = recv(s)?;
        if answer != b"strue" {
            return Err(Refused::Status(format!(
                "{name} is connected already and did not restart"
            )));
        }
    } else {
        send(s, b"sok")?;
    }
    let ours = challenge();
    let mut n = vec![b'N'];
    n.extend_from_slice(&me.flags().to_be_bytes());
    n.extend_from_slice(&ours.to_be_bytes());
    n.extend_from_slice(&me.creation.to_be_bytes());
    n.extend_from_slice(&(me.name.len() as u16).to_be_bytes());
    n.extend_from_slice(me.name.as_bytes());
    send(s, &n)?;
    let reply = recv(s)?;
    let mut c = Cur(&reply);
    if c.take(1)?[0] != b'r' {
        return Err(Refused::Protocol("expected challenge_reply".into()));
    }
    let theirs = c.u32()?;
    if c.take(16)? != digest(me.cookie, ours) {
        return Err(Refused::BadCookie);
    }
    let mut a = vec![b'a'];
    a.extend_from_slice(&digest(me.cookie, theirs));
    send(s, &a)?;
    Ok(Peer {
        name,
        flags: peer_flags,
        creation,
    })
}

/// The connecting side, to a peer whose name is `peer_name`.
pub(crate) fn connect(s: &mut TcpStream, me: &Me<'_>, peer_name: &str) -> Result<Peer, Refused> {
    let mut n = vec![b'N'];
    n.extend_from_slice(&me.flags().to_be_bytes());
    n.extend_from_slice(&me.creation.to_be_bytes());
    n.extend_from_slice(&(me.name.len() as u16).to_be_bytes());
    n.extend_from_slice(me.name.as_bytes());
    send(s, &n)?;
    let status = recv(s)?;
    match &status[..] {
        b"sok" | b"sok_simultaneous" => {}
        b"salive" => send(s, b"strue")?,
        other => {
            return Err(Refused::Status(
                String::from_utf8_lossy(other.get(1..).unwrap_or_default()).into_owned(),
            ))
        }
    }
    let msg = recv(s)?;
    let mut c = Cur(&msg);
    if c.take(1)?[0] != b'N' {
        return Err(Refused::Protocol("expected a v6 challenge".into()));
    }
    let peer_flags = c.u64()?;
    let theirs = c.u32()?;
    let creation = c.u32()?;
    let name = c.name()?;
    check_flags(peer_flags)?;
    if name != peer_name {
        return Err(Refused::Protocol(format!(
            "expected {peer_name}, reached {name}"
        )));
    }
    let ours = challenge();
    let mut r = vec![b'r'];
    r.extend_from_slice(&ours.to_be_bytes());
    r.extend_from_slice(&digest(me.cookie, theirs));
    send(s, &r)?;
    let ack = recv(s).map_err(|e| match e {
        // BEAM closes the socket on a wrong digest.
        Refused::Io(_) => Refused::BadCookie,
        e => e,
    })?;
    let mut c = Cur(&ack);
    if c.take(1)?[0] != b'a' || c.take(16)? != digest(me.cookie, ours) {
        return Err(Refused::BadCookie);
    }
    Ok(Peer {
        name,
        flags: peer_flags,
        creation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_md5_of_cookie_and_decimal_challenge() {
        // md5sum of "secret1234", computed outside.
        let hex: String = digest("secret", 1234)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "bdfc2db0aa599f5919e565c328216a51");
    }

    #[test]
    fn mandatory_25_digest_is_bit_26() {
        assert_eq!(flags::MANDATORY_25_DIGEST, 1 << 26);
        assert_eq!(flags::OURS & flags::MANDATORY, flags::MANDATORY);
    }
}
