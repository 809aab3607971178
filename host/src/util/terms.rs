//! The few Erlang terms the host builds itself, written straight as ETF bytes.
//!
//! Replies to asynchronous requests reach the requester as `{reply, ReqId, Reply}` and
//! timeouts as `{timeout, ReqId}`; the reply bytes are spliced in without re-encoding.

use plugin_api::{etf, Reason};
use smallvec::SmallVec;

/// A message's ETF bytes. Most messages are a few atoms and integers: up to 40 bytes are
/// stored inline, so sending them allocates nothing (and freeing them on another core
/// costs nothing either).
pub type MsgBytes = SmallVec<[u8; 40]>;

const VERSION: u8 = 131;
const SMALL_TUPLE: u8 = 104;
const SMALL_ATOM_UTF8: u8 = 119;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const SMALL_BIG: u8 = 110;
const NEW_PID: u8 = 88;

/// An atom; a name over 255 bytes (an atom's limit) is cut at a character boundary.
fn atom(buf: &mut MsgBytes, name: &str) {
    let mut n = name.len().min(255);
    while !name.is_char_boundary(n) {
        n -= 1;
    }
    let name = &name[..n];
    buf.push(SMALL_ATOM_UTF8);
    buf.push(name.len() as u8);
    buf.extend_from_slice(name.as_bytes());
}

fn unsigned(buf: &mut MsgBytes, n: u64) {
    if n < 256 {
        buf.extend_from_slice(&[SMALL_INTEGER, n as u8]);
    } else if n <= i32::MAX as u64 {
        buf.push(INTEGER);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        let bytes = n.to_le_bytes();
        let len = 8 - (n.leading_zeros() / 8) as usize;
        buf.extend_from_slice(&[SMALL_BIG, len as u8, 0]);
        buf.extend_from_slice(&bytes[..len]);
    }
}

/// A pid as plugins see it: `NEW_PID_EXT` of [`etf::LOCAL_NODE`], the id split into ID
/// (low half) and serial (high half) — what `plugin_api::Pid` encodes to.
fn pid(buf: &mut MsgBytes, id: u64) {
    buf.push(NEW_PID);
    atom(buf, etf::LOCAL_NODE);
    buf.extend_from_slice(&(id as u32).to_be_bytes());
    buf.extend_from_slice(&((id >> 32) as u32).to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes());
}

/// `{Tag, Id, Payload}` where `payload` is a complete ETF term (version byte included),
/// or `{Tag, Id}` without one.
pub fn tagged(tag: &str, id: u64, payload: Option<&[u8]>) -> MsgBytes {
    let body = payload.map(|p| p.get(1..).unwrap_or(&[])).unwrap_or(&[]);
    let mut buf = MsgBytes::with_capacity(16 + tag.len() + body.len());
    buf.push(VERSION);
    buf.extend_from_slice(&[SMALL_TUPLE, if payload.is_some() { 3 } else { 2 }]);
    atom(&mut buf, tag);
    unsigned(&mut buf, id);
    buf.extend_from_slice(body);
    buf
}

/// An exit reason as ETF. Every `Reason` encodes (they are atoms and tuples of strings).
pub fn reason(r: &Reason) -> Vec<u8> {
    etf::to_vec(r).expect("a Reason always encodes")
}

/// `{'DOWN', Ref, process, Pid, Reason}` where `reason` is a complete ETF term.
pub fn down(mref: u64, pid: u64, reason: &[u8]) -> MsgBytes {
    let body = reason.get(1..).unwrap_or(&[]);
    let mut buf = MsgBytes::with_capacity(40 + body.len());
    buf.push(VERSION);
    buf.extend_from_slice(&[SMALL_TUPLE, 5]);
    atom(&mut buf, "DOWN");
    unsigned(&mut buf, mref);
    atom(&mut buf, "process");
    self::pid(&mut buf, pid);
    buf.extend_from_slice(body);
    buf
}

/// `{'EXIT', From, Reason}` where `reason` is a complete ETF term.
pub fn exit(from: u64, reason: &[u8]) -> MsgBytes {
    let body = reason.get(1..).unwrap_or(&[]);
    let mut buf = MsgBytes::with_capacity(40 + body.len());
    buf.push(VERSION);
    buf.extend_from_slice(&[SMALL_TUPLE, 3]);
    atom(&mut buf, "EXIT");
    pid(&mut buf, from);
    buf.extend_from_slice(body);
    buf
}

/// The atom `noconnection`: why links and monitors across a lost connection fire.
pub fn noconnection() -> Vec<u8> {
    let mut buf = MsgBytes::new();
    buf.push(VERSION);
    atom(&mut buf, "noconnection");
    buf.to_vec()
}

/// `{'DOWN', Ref, process, {Name, Node}, Reason}`: a monitor made by name on another
/// node fired (Erlang names the process as it was monitored).
pub fn down_named(mref: u64, name: &str, node: &str, reason: &[u8]) -> MsgBytes {
    let body = reason.get(1..).unwrap_or(&[]);
    let mut buf = MsgBytes::with_capacity(40 + name.len() + node.len() + body.len());
    buf.push(VERSION);
    buf.extend_from_slice(&[SMALL_TUPLE, 5]);
    atom(&mut buf, "DOWN");
    unsigned(&mut buf, mref);
    atom(&mut buf, "process");
    buf.extend_from_slice(&[SMALL_TUPLE, 2]);
    atom(&mut buf, name);
    atom(&mut buf, node);
    buf.extend_from_slice(body);
    buf
}

/// `{nodedown, Node}`, what `monitor_node` delivers.
pub fn nodedown(node: &str) -> MsgBytes {
    let mut buf = MsgBytes::with_capacity(16 + node.len());
    buf.push(VERSION);
    buf.extend_from_slice(&[SMALL_TUPLE, 2]);
    atom(&mut buf, "nodedown");
    atom(&mut buf, node);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_and_down_carry_pids_that_decode_as_pid() {
        use plugin_api::{MonitorRef, Pid, Reason};
        #[derive(serde::Deserialize, Debug, PartialEq)]
        enum Info {
            #[serde(rename = "EXIT")]
            Exit(Pid, Reason),
            #[serde(rename = "DOWN")]
            Down(MonitorRef, plugin_api::etf::Atom, Pid, Reason),
        }
        let r = reason(&Reason::Killed);
        for id in [7u64, 1 << 40, (1 << 63) | 3] {
            assert_eq!(
                etf::from_slice::<Info>(&exit(id, &r)).unwrap(),
                Info::Exit(Pid(id), Reason::Killed)
            );
            assert_eq!(
                etf::from_slice::<Info>(&down(9, id, &r)).unwrap(),
                Info::Down(
                    MonitorRef(9),
                    plugin_api::etf::Atom::new("process"),
                    Pid(id),
                    Reason::Killed
                )
            );
            // What a plugin encodes is what the host writes.
            assert_eq!(&etf::to_vec(&Pid(id)).unwrap()[1..], &exit(id, &r)[9..37]);
        }
    }

    #[test]
    fn reply_and_timeout_terms_decode() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        enum Info {
            Reply(u64, String),
            Timeout(u64),
        }
        let reply = plugin_api::etf::to_vec("ok").unwrap();
        for id in [1u64, 300, 1 << 40] {
            let t = tagged("reply", id, Some(&reply));
            assert_eq!(
                plugin_api::etf::from_slice::<Info>(&t).unwrap(),
                Info::Reply(id, "ok".into())
            );
            let t = tagged("timeout", id, None);
            assert_eq!(
                plugin_api::etf::from_slice::<Info>(&t).unwrap(),
                Info::Timeout(id)
            );
        }
    }
}
