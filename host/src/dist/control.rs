//! Control messages: the tuple at the head of every distribution frame, decoded into
//! [`Op`], and the frames we send, encoded. The trace-token variants are read as their
//! plain forms (the token dropped), and the `PAYLOAD_*` forms take their reason from the
//! frame's payload.

use plugin_api::etf::{ExternalPid, ExternalRef, Term};

pub(crate) const LINK: i64 = 1;
pub(crate) const SEND: i64 = 2;
pub(crate) const EXIT: i64 = 3;
pub(crate) const REG_SEND: i64 = 6;
pub(crate) const GROUP_LEADER: i64 = 7;
pub(crate) const EXIT2: i64 = 8;
pub(crate) const SEND_TT: i64 = 12;
pub(crate) const EXIT_TT: i64 = 13;
pub(crate) const REG_SEND_TT: i64 = 16;
pub(crate) const EXIT2_TT: i64 = 18;
pub(crate) const MONITOR_P: i64 = 19;
pub(crate) const DEMONITOR_P: i64 = 20;
pub(crate) const MONITOR_P_EXIT: i64 = 21;
pub(crate) const SEND_SENDER: i64 = 22;
pub(crate) const SEND_SENDER_TT: i64 = 23;
pub(crate) const PAYLOAD_EXIT: i64 = 24;
pub(crate) const PAYLOAD_EXIT_TT: i64 = 25;
pub(crate) const PAYLOAD_EXIT2: i64 = 26;
pub(crate) const PAYLOAD_EXIT2_TT: i64 = 27;
pub(crate) const PAYLOAD_MONITOR_P_EXIT: i64 = 28;
pub(crate) const SPAWN_REQUEST: i64 = 29;
pub(crate) const SPAWN_REQUEST_TT: i64 = 30;
pub(crate) const SPAWN_REPLY: i64 = 31;
pub(crate) const SPAWN_REPLY_TT: i64 = 32;
pub(crate) const ALIAS_SEND: i64 = 33;
pub(crate) const ALIAS_SEND_TT: i64 = 34;
pub(crate) const UNLINK_ID: i64 = 35;
pub(crate) const UNLINK_ID_ACK: i64 = 36;

/// Where a monitor points: a pid, or a registered name on the monitored node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Proc {
    Pid(ExternalPid),
    Name(String),
}

impl Proc {
    fn term(&self) -> Term {
        match self {
            Proc::Pid(p) => Term::Pid(p.clone()),
            Proc::Name(n) => Term::Atom(n.clone()),
        }
    }
}

/// One control message, as received. A `reason: None` means "in the payload".
#[derive(Debug)]
pub(crate) enum Op {
    /// `Pid ! Msg` (payload follows).
    Send {
        to: ExternalPid,
    },
    /// `{Name, Node} ! Msg` (payload follows).
    RegSend {
        to: String,
    },
    /// A message to an alias (payload follows): a reply to one of our requests.
    AliasSend {
        alias: ExternalRef,
    },
    Link {
        from: ExternalPid,
        to: ExternalPid,
    },
    UnlinkId {
        id: Term,
        from: ExternalPid,
        to: ExternalPid,
    },
    UnlinkIdAck,
    /// A linked process exited.
    Exit {
        from: ExternalPid,
        to: ExternalPid,
        reason: Option<Term>,
    },
    /// `exit(Pid, Reason)`.
    Exit2 {
        from: ExternalPid,
        to: ExternalPid,
        reason: Option<Term>,
    },
    Monitor {
        from: ExternalPid,
        to: Proc,
        eref: ExternalRef,
    },
    Demonitor {
        eref: ExternalRef,
    },
    /// A monitored remote process went down (`reason: None`: in the payload).
    MonitorExit {
        eref: ExternalRef,
        reason: Option<Term>,
    },
    /// `spawn_request` (and so `spawn/4`, `spawn_link/4`, `rpc:call`): the argument list
    /// is the payload.
    SpawnRequest {
        req: Term,
        from: ExternalPid,
        /// `{Module, Function, Arity}`.
        mfa: Term,
        /// The option list (`link`, `monitor`, `{reply, ...}`, ...).
        opts: Term,
    },
    /// The answer to one of our spawn requests: the new pid or an error atom.
    SpawnReply {
        req: ExternalRef,
        flags: i64,
        result: Term,
    },
    /// Acknowledged and ignored (GROUP_LEADER).
    Ignored,
    /// An operation this node does not know (a newer OTP's): logged and skipped.
    Unknown(i64),
}

fn pid(t: Option<&Term>) -> Result<ExternalPid, String> {
    match t {
        Some(Term::Pid(p)) => Ok(p.clone()),
        other => Err(format!("expected a pid, found {other:?}")),
    }
}

fn eref(t: Option<&Term>) -> Result<ExternalRef, String> {
    match t {
        Some(Term::Reference(r)) => Ok(r.clone()),
        other => Err(format!("expected a reference, found {other:?}")),
    }
}

fn proc_(t: Option<&Term>) -> Result<Proc, String> {
    match t {
        Some(Term::Pid(p)) => Ok(Proc::Pid(p.clone())),
        Some(Term::Atom(a)) => Ok(Proc::Name(a.clone())),
        other => Err(format!("expected a pid or a name, found {other:?}")),
    }
}

impl Op {
    /// Reads a control tuple; an error means a malformed frame.
    pub(crate) fn decode(t: Term) -> Result<Op, String> {
        let Term::Tuple(e) = t else {
            return Err(format!("control message is not a tuple: {t}"));
        };
        let op = match e.first() {
            Some(Term::Integer(n)) => *n,
            _ => return Err("control message without an operation".into()),
        };
        let at = |i: usize| e.get(i);
        Ok(match op {
            SEND | SEND_TT => Op::Send { to: pid(at(2))? },
            SEND_SENDER | SEND_SENDER_TT => Op::Send { to: pid(at(2))? },
            REG_SEND | REG_SEND_TT => Op::RegSend {
                to: match at(3) {
                    Some(Term::Atom(a)) => a.clone(),
                    other => return Err(format!("REG_SEND to {other:?}")),
                },
            },
            ALIAS_SEND | ALIAS_SEND_TT => Op::AliasSend {
                alias: eref(at(2))?,
            },
            LINK => Op::Link {
                from: pid(at(1))?,
                to: pid(at(2))?,
            },
            UNLINK_ID => Op::UnlinkId {
                id: at(1).cloned().ok_or("UNLINK_ID without id")?,
                from: pid(at(2))?,
                to: pid(at(3))?,
            },
            UNLINK_ID_ACK => Op::UnlinkIdAck,
            EXIT => Op::Exit {
                from: pid(at(1))?,
                to: pid(at(2))?,
                reason: at(3).cloned(),
            },
            EXIT_TT => Op::Exit {
                from: pid(at(1))?,
                to: pid(at(2))?,
                reason: at(4).cloned(),
            },
            PAYLOAD_EXIT | PAYLOAD_EXIT_TT => Op::Exit {
                from: pid(at(1))?,
                to: pid(at(2))?,
                reason: None,
            },
            EXIT2 => Op::Exit2 {
                from: pid(at(1))?,
                to: pid(at(2))?,
                reason: at(3).cloned(),
            },
            EXIT2_TT => Op::Exit2 {
                from: pid(at(1))?,
                to: pid(at(2))?,
                reason: at(4).cloned(),
            },
            PAYLOAD_EXIT2 | PAYLOAD_EXIT2_TT => Op::Exit2 {
                from: pid(at(1))?,
                to: pid(at(2))?,
                reason: None,
            },
            MONITOR_P => Op::Monitor {
                from: pid(at(1))?,
                to: proc_(at(2))?,
                eref: eref(at(3))?,
            },
            DEMONITOR_P => Op::Demonitor { eref: eref(at(3))? },
            MONITOR_P_EXIT => Op::MonitorExit {
                eref: eref(at(3))?,
                reason: at(4).cloned(),
            },
            PAYLOAD_MONITOR_P_EXIT => Op::MonitorExit {
                eref: eref(at(3))?,
                reason: None,
            },
            SPAWN_REQUEST | SPAWN_REQUEST_TT => Op::SpawnRequest {
                req: at(1).cloned().ok_or("SPAWN_REQUEST without id")?,
                from: pid(at(2))?,
                mfa: at(4).cloned().ok_or("SPAWN_REQUEST without {M, F, A}")?,
                opts: at(5).cloned().unwrap_or(Term::List(Vec::new())),
            },
            SPAWN_REPLY | SPAWN_REPLY_TT => Op::SpawnReply {
                req: eref(at(1))?,
                flags: match at(3) {
                    Some(Term::Integer(f)) => *f,
                    _ => 0,
                },
                result: at(4).cloned().ok_or("SPAWN_REPLY without a result")?,
            },
            GROUP_LEADER => Op::Ignored,
            other => Op::Unknown(other),
        })
    }
}

/// A frame: 4-byte length, `p`, the control term, the payload (if any, complete ETF).
pub(crate) fn frame(control: &Term, payload: Option<&[u8]>) -> Vec<u8> {
    let ctl = control.encode();
    let len = 1 + ctl.len() + payload.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(b'p');
    out.extend_from_slice(&ctl);
    if let Some(p) = payload {
        out.extend_from_slice(p);
    }
    out
}

fn tuple(op: i64, rest: Vec<Term>) -> Term {
    let mut e = Vec::with_capacity(rest.len() + 1);
    e.push(Term::Integer(op));
    e.extend(rest);
    Term::Tuple(e)
}

/// `SEND_SENDER {22, From, To}` + message.
pub(crate) fn send_sender(from: &ExternalPid, to: &ExternalPid, msg: &[u8]) -> Vec<u8> {
    let c = tuple(
        SEND_SENDER,
        vec![Term::Pid(from.clone()), Term::Pid(to.clone())],
    );
    frame(&c, Some(msg))
}

/// `ALIAS_SEND {33, From, Alias}` + message.
pub(crate) fn alias_send(from: &ExternalPid, alias: &ExternalRef, msg: &[u8]) -> Vec<u8> {
    let c = tuple(
        ALIAS_SEND,
        vec![Term::Pid(from.clone()), Term::Reference(alias.clone())],
    );
    frame(&c, Some(msg))
}

/// `REG_SEND {6, From, '', Name}` + message.
pub(crate) fn reg_send(from: &ExternalPid, name: &str, msg: &[u8]) -> Vec<u8> {
    let c = tuple(
        REG_SEND,
        vec![Term::Pid(from.clone()), Term::atom(""), Term::atom(name)],
    );
    frame(&c, Some(msg))
}

/// `{'$gen_cast', Msg}` around a complete ETF message.
pub(crate) fn gen_cast(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 14);
    out.extend_from_slice(&[131, 104, 2, 119, 9]);
    out.extend_from_slice(b"$gen_cast");
    out.extend_from_slice(msg.get(1..).unwrap_or_default());
    out
}

/// `EXIT {3, From, To, Reason}`: a process linked to `to` exited.
pub(crate) fn exit(from: &ExternalPid, to: &ExternalPid, reason: Term) -> Vec<u8> {
    let c = tuple(
        EXIT,
        vec![Term::Pid(from.clone()), Term::Pid(to.clone()), reason],
    );
    frame(&c, None)
}

/// `LINK {1, From, To}`.
pub(crate) fn link(from: &ExternalPid, to: &ExternalPid) -> Vec<u8> {
    let c = tuple(LINK, vec![Term::Pid(from.clone()), Term::Pid(to.clone())]);
    frame(&c, None)
}

/// `UNLINK_ID {35, Id, From, To}`.
pub(crate) fn unlink_id(id: u64, from: &ExternalPid, to: &ExternalPid) -> Vec<u8> {
    let c = tuple(
        UNLINK_ID,
        vec![
            Term::Integer(id as i64 & i64::MAX),
            Term::Pid(from.clone()),
            Term::Pid(to.clone()),
        ],
    );
    frame(&c, None)
}

/// `EXIT2 {8, From, To, Reason}`: `exit(To, Reason)`.
pub(crate) fn exit2(from: &ExternalPid, to: &ExternalPid, reason: Term) -> Vec<u8> {
    let c = tuple(
        EXIT2,
        vec![Term::Pid(from.clone()), Term::Pid(to.clone()), reason],
    );
    frame(&c, None)
}

/// `MONITOR_P {19, Watcher, Target, Ref}`.
pub(crate) fn monitor(watcher: &ExternalPid, target: &Proc, eref: &ExternalRef) -> Vec<u8> {
    let c = tuple(
        MONITOR_P,
        vec![
            Term::Pid(watcher.clone()),
            target.term(),
            Term::Reference(eref.clone()),
        ],
    );
    frame(&c, None)
}

/// `DEMONITOR_P {20, Watcher, Target, Ref}`.
pub(crate) fn demonitor(watcher: &ExternalPid, target: &Proc, eref: &ExternalRef) -> Vec<u8> {
    let c = tuple(
        DEMONITOR_P,
        vec![
            Term::Pid(watcher.clone()),
            target.term(),
            Term::Reference(eref.clone()),
        ],
    );
    frame(&c, None)
}

/// `{'$gen_call', {From, [alias | Ref]}, Msg}` around a complete ETF message: a
/// `gen_server:call` whose reply comes back through the alias `Ref` (so one after the
/// caller's timeout finds nobody), as OTP 24+ callers send it.
pub(crate) fn gen_call(from: &ExternalPid, alias: &ExternalRef, msg: &[u8]) -> Vec<u8> {
    let head = Term::Tuple(vec![
        Term::atom("$gen_call"),
        Term::Tuple(vec![
            Term::Pid(from.clone()),
            Term::ImproperList {
                elements: vec![Term::atom("alias")],
                tail: Box::new(Term::Reference(alias.clone())),
            },
        ]),
        // Placeholder element, replaced by the message's bytes below.
        Term::List(Vec::new()),
    ])
    .encode();
    let mut out = Vec::with_capacity(head.len() + msg.len());
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(msg.get(1..).unwrap_or_default());
    out
}

/// `MONITOR_P_EXIT {21, Target, Watcher, Ref, Reason}`.
pub(crate) fn monitor_exit(
    target: &Proc,
    watcher: &ExternalPid,
    eref: &ExternalRef,
    reason: Term,
) -> Vec<u8> {
    let c = tuple(
        MONITOR_P_EXIT,
        vec![
            target.term(),
            Term::Pid(watcher.clone()),
            Term::Reference(eref.clone()),
            reason,
        ],
    );
    frame(&c, None)
}

/// `UNLINK_ID_ACK {36, Id, From, To}`.
pub(crate) fn unlink_ack(id: Term, from: &ExternalPid, to: &ExternalPid) -> Vec<u8> {
    let c = tuple(
        UNLINK_ID_ACK,
        vec![id, Term::Pid(from.clone()), Term::Pid(to.clone())],
    );
    frame(&c, None)
}

/// `SPAWN_REQUEST {29, ReqId, From, GroupLeader, {M, F, Arity}, Opts}` + the argument
/// list (complete ETF).
pub(crate) fn spawn_request(
    req: &ExternalRef,
    from: &ExternalPid,
    mfa: (&str, &str, usize),
    opts: Vec<Term>,
    args: &[u8],
) -> Vec<u8> {
    let c = tuple(
        SPAWN_REQUEST,
        vec![
            Term::Reference(req.clone()),
            Term::Pid(from.clone()),
            // No group leader of our own: output of the new process goes to ours.
            Term::Pid(from.clone()),
            Term::Tuple(vec![
                Term::atom(mfa.0),
                Term::atom(mfa.1),
                Term::Integer(mfa.2 as i64),
            ]),
            Term::List(opts),
        ],
    );
    frame(&c, Some(args))
}

/// `SPAWN_REPLY {31, ReqId, To, Flags, Result}`: `result` the new pid (or an error
/// atom); `flags` 1 if a link was set up, 2 if a monitor was.
pub(crate) fn spawn_reply(req: Term, to: &ExternalPid, flags: i64, result: Term) -> Vec<u8> {
    let c = tuple(
        SPAWN_REPLY,
        vec![req, Term::Pid(to.clone()), Term::Integer(flags), result],
    );
    frame(&c, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::etf;

    fn pid(n: u32) -> ExternalPid {
        ExternalPid {
            node: "e@127.0.0.1".into(),
            id: n,
            serial: 0,
            creation: 7,
        }
    }

    #[test]
    fn frames_split_back_into_control_and_payload() {
        let msg = etf::to_vec(&("hello", 5)).unwrap();
        let f = send_sender(&pid(1), &pid(2), &msg);
        assert_eq!(
            u32::from_be_bytes(f[..4].try_into().unwrap()) as usize,
            f.len() - 4
        );
        assert_eq!(f[4], b'p');
        let (ctl, used) = etf::decode_prefix(&f[5..]).unwrap();
        assert_eq!(&f[5 + used..], &msg[..]);
        match Op::decode(ctl).unwrap() {
            Op::Send { to } => assert_eq!(to, pid(2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_control_is_an_error_not_a_panic() {
        for t in [
            Term::atom("x"),
            Term::Tuple(vec![]),
            Term::Tuple(vec![Term::Integer(REG_SEND), Term::Integer(1)]),
            Term::Tuple(vec![Term::Integer(MONITOR_P)]),
        ] {
            assert!(Op::decode(t).is_err());
        }
    }

    proptest::proptest! {
        /// Random bytes after `p`, and valid control tuples with random elements, never
        /// panic the frame reader's decoding: they decode or are an error.
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut framed = vec![131];
            framed.extend_from_slice(&bytes);
            if let Ok((t, used)) = etf::decode_prefix(&framed) {
                proptest::prop_assert!(used <= framed.len());
                let _ = Op::decode(t);
            }
        }

        #[test]
        fn random_control_tuples_never_panic(op in 0i64..40, n in 0usize..6, atom in "[a-z]{0,5}") {
            let mut e = vec![Term::Integer(op)];
            for i in 0..n {
                e.push(match i % 3 {
                    0 => Term::Pid(pid(i as u32)),
                    1 => Term::atom(atom.clone()),
                    _ => Term::Integer(i as i64),
                });
            }
            let _ = Op::decode(Term::Tuple(e));
        }
    }
}
