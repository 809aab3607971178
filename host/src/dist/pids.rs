//! Pids crossing the wire. Inside the host every pid names [`etf::LOCAL_NODE`] (what
//! `plugin_api::Pid` encodes to): a local actor by its id, a remote process by its proxy
//! id. On the wire a pid names its real node. [`rewrite`] finds the pids in a message and
//! replaces each, so the distribution layer translates a message as it leaves
//! (`Shared::export`) and as it arrives (`Shared::import`).
//!
//! Most messages hold no pid: the walk then copies nothing and allocates nothing. Only
//! the containers are entered (tuples, lists, maps); every other term is skipped by its
//! length, so a large binary costs one step. Containers count elements, not bytes, so a
//! pid that grows or shrinks in the rewrite needs no length fixed up around it. A pid
//! inside a fun's environment is left as it is (a fun cannot run in the host).

use plugin_api::etf::{self, ExternalPid, Term};

const VERSION: u8 = 131;
const NEW_PID: u8 = 88;
const PID: u8 = 103;
const SMALL_TUPLE: u8 = 104;
const LARGE_TUPLE: u8 = 105;
const LIST: u8 = 108;
const MAP: u8 = 116;

/// Byte ranges of the pids in `msg` (a complete ETF message), in order; `None` if it does
/// not parse (the receiver's decoder will say why).
fn find(msg: &[u8]) -> Option<Vec<(usize, usize)>> {
    if msg.first() != Some(&VERSION) {
        return None;
    }
    let mut found = Vec::new();
    let mut pos = 1;
    // Terms still to read: containers add their elements (they are read in order, so a
    // count is all the stack a walk of any depth needs).
    let mut todo: u64 = 1;
    while todo > 0 {
        todo -= 1;
        let rest = msg.get(pos..)?;
        let count = |at: usize, n: usize| -> Option<u64> {
            let b = rest.get(at..at + n)?;
            Some(b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
        };
        match *rest.first()? {
            SMALL_TUPLE => {
                todo += count(1, 1)?;
                pos += 2;
            }
            LARGE_TUPLE => {
                todo += count(1, 4)?;
                pos += 5;
            }
            // The elements and the tail.
            LIST => {
                todo += count(1, 4)? + 1;
                pos += 5;
            }
            MAP => {
                todo += 2 * count(1, 4)?;
                pos += 5;
            }
            tag => {
                let len = etf::term_len(rest).ok()?;
                if tag == NEW_PID || tag == PID {
                    found.push((pos, len));
                }
                pos += len;
            }
        }
        // A forged count cannot make the walk longer than the message.
        if todo > (msg.len() - pos) as u64 {
            return None;
        }
    }
    Some(found)
}

/// `msg` with every pid replaced by `f(pid)`; `None` when it holds no pid (or does not
/// parse), so the caller passes the original on untouched.
pub(crate) fn rewrite(
    msg: &[u8],
    mut f: impl FnMut(ExternalPid) -> ExternalPid,
) -> Option<Vec<u8>> {
    let spans = find(msg)?;
    if spans.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(msg.len() + 32 * spans.len());
    let mut copied = 0;
    let mut one = vec![VERSION];
    for (at, len) in spans {
        out.extend_from_slice(&msg[copied..at]);
        one.truncate(1);
        one.extend_from_slice(&msg[at..at + len]);
        match Term::decode(&one) {
            Ok(Term::Pid(p)) => out.extend_from_slice(&Term::Pid(f(p)).encode()[1..]),
            _ => out.extend_from_slice(&msg[at..at + len]),
        }
        copied = at + len;
    }
    out.extend_from_slice(&msg[copied..]);
    Some(out)
}

/// The id a pid of [`etf::LOCAL_NODE`] carries (ID the low half, serial the high half).
pub(crate) fn local_id(p: &ExternalPid) -> Option<u64> {
    (p.node == etf::LOCAL_NODE && p.creation == 0)
        .then(|| u64::from(p.serial) << 32 | u64::from(p.id))
}

/// The pid of [`etf::LOCAL_NODE`] that stands for `id` inside the host.
pub(crate) fn local_pid(id: u64) -> ExternalPid {
    ExternalPid {
        node: etf::LOCAL_NODE.to_string(),
        id: id as u32,
        serial: (id >> 32) as u32,
        creation: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(node: &str, id: u32) -> Term {
        Term::Pid(ExternalPid {
            node: node.into(),
            id,
            serial: 0,
            creation: 3,
        })
    }

    #[test]
    fn messages_without_pids_are_not_copied() {
        for t in [
            Term::atom("tick"),
            Term::Tuple(vec![Term::atom("incr"), Term::Integer(5)]),
            Term::Binary(vec![88; 1000]),
            Term::List(vec![Term::Integer(1), Term::Map(vec![])]),
        ] {
            assert!(rewrite(&t.encode(), |p| p).is_none(), "{t}");
        }
    }

    #[test]
    fn every_pid_at_any_depth_is_replaced_and_the_rest_kept() {
        let t = Term::Tuple(vec![
            Term::atom("get"),
            pid("e@127.0.0.1", 90),
            Term::List(vec![pid("e@127.0.0.1", 91), Term::Binary(vec![1, 88, 103])]),
            Term::Map(vec![(
                pid("f@127.0.0.1", 1),
                Term::ImproperList {
                    elements: vec![Term::Integer(1)],
                    tail: Box::new(pid("e@127.0.0.1", 92)),
                },
            )]),
        ]);
        let out = rewrite(&t.encode(), |mut p| {
            p.node = etf::LOCAL_NODE.into();
            p.creation = 0;
            p.id += 1000;
            p
        })
        .unwrap();
        let back = Term::decode(&out).unwrap().to_string();
        assert_eq!(
            back,
            "{get,#Pid<nonode@nohost.1090.0>,[#Pid<nonode@nohost.1091.0>,<<1,88,103>>],\
             #{#Pid<nonode@nohost.1001.0> => [1|#Pid<nonode@nohost.1092.0>]}}"
        );
    }

    #[test]
    fn local_ids_round_trip_through_pids() {
        for id in [0u64, 5, 1 << 40, (1 << 63) | 7] {
            assert_eq!(local_id(&local_pid(id)), Some(id));
            let enc = etf::to_vec(&plugin_api::Pid(id)).unwrap();
            assert_eq!(Term::decode(&enc).unwrap(), Term::Pid(local_pid(id)));
        }
    }

    proptest::proptest! {
        /// Random bytes never panic the walk.
        #[test]
        fn random_messages_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut m = vec![VERSION];
            m.extend_from_slice(&bytes);
            let _ = rewrite(&m, |p| p);
        }
    }
}
