//! What a peer's control messages do to local actors: messages are delivered through the
//! same path as a local send, with gen_server's dispatch (`'$gen_call'` → `handle_call`
//! with a reply routed back to the caller, `'$gen_cast'` → `handle_cast`, anything else
//! → `handle_info`); links, monitors and exit signals go through the system's own
//! tables under proxy ids. A name or pid with no actor behind it is dropped, as Erlang
//! does; a monitor or link on it is answered `noproc`.

use std::sync::Arc;

use plugin_api::abi::MsgKind;
use plugin_api::etf::{self, ExternalPid, Term};

use super::conn::Conn;
use super::control::{self, Op, Proc};
use super::node::Shared;
use crate::system::mailbox::{Envelope, MsgBytes};
use crate::system::{System, Target};
use crate::util::ids::{ActorId, MonitorRef};

const VERSION: u8 = 131;
const SMALL_TUPLE: u8 = 104;

/// The elements of a small tuple's encoding (`body` without the version byte).
fn tuple_elements(body: &[u8], arity: u8) -> Option<Vec<&[u8]>> {
    if body.len() < 2 || body[0] != SMALL_TUPLE || body[1] != arity {
        return None;
    }
    let mut rest = &body[2..];
    let mut out = Vec::with_capacity(arity as usize);
    for _ in 0..arity {
        let n = etf::term_len(rest).ok()?;
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    rest.is_empty().then_some(out)
}

/// Whether `el` is the atom `name`, in any of the atom encodings.
fn atom_is(el: &[u8], name: &str) -> bool {
    let n = name.as_bytes();
    match el {
        [119 | 115, len, text @ ..] => *len as usize == n.len() && text == n,
        [118 | 100, hi, lo, text @ ..] => {
            u16::from_be_bytes([*hi, *lo]) as usize == n.len() && text == n
        }
        _ => false,
    }
}

fn versioned(body: &[u8]) -> MsgBytes {
    let mut m = MsgBytes::with_capacity(body.len() + 1);
    m.push(VERSION);
    m.extend_from_slice(body);
    m
}

/// How a message addressed to a local actor is dispatched.
enum Dispatch<'a> {
    Call {
        from: ExternalPid,
        tag: Term,
        req: &'a [u8],
    },
    Cast(&'a [u8]),
    Info,
}

fn classify(payload: &[u8]) -> Dispatch<'_> {
    let Some(body) = payload.strip_prefix(&[VERSION]) else {
        return Dispatch::Info;
    };
    if let Some(el) = tuple_elements(body, 3) {
        if atom_is(el[0], "$gen_call") {
            if let Some([pid, tag]) = tuple_elements(el[1], 2).as_deref() {
                if let (Ok(Term::Pid(from)), Ok(tag)) =
                    (Term::decode(&versioned(pid)), Term::decode(&versioned(tag)))
                {
                    return Dispatch::Call {
                        from,
                        tag,
                        req: el[2],
                    };
                }
            }
        }
    } else if let Some(el) = tuple_elements(body, 2) {
        if atom_is(el[0], "$gen_cast") {
            return Dispatch::Cast(el[1]);
        }
    }
    Dispatch::Info
}

/// `{Tag, Reply}` sent back to a gen_server caller: through its alias when the tag is
/// `[alias | Ref]` (so a reply after the caller's timeout goes nowhere), else to its pid.
fn reply_frame(
    shared: &Shared,
    callee: ActorId,
    caller: &ExternalPid,
    tag: &Term,
    reply: &[u8],
) -> Vec<u8> {
    let tag_bytes = tag.encode();
    let mut msg = Vec::with_capacity(tag_bytes.len() + reply.len() + 3);
    msg.extend_from_slice(&[VERSION, SMALL_TUPLE, 2]);
    msg.extend_from_slice(&tag_bytes[1..]);
    msg.extend_from_slice(shared.export(reply).get(1..).unwrap_or_default());
    let me = shared.pid(callee);
    match tag {
        Term::ImproperList { elements, tail } if matches!(elements.as_slice(), [Term::Atom(a)] if a == "alias") => {
            match tail.as_ref() {
                Term::Reference(r) => control::alias_send(&me, r, &msg),
                _ => control::send_sender(&me, caller, &msg),
            }
        }
        _ => control::send_sender(&me, caller, &msg),
    }
}

/// The message `body` (no version byte) as the host's actors see it: complete ETF, its
/// pids the host's own (a proxy for each remote one).
fn imported(shared: &Shared, body: &[u8]) -> MsgBytes {
    let msg = versioned(body);
    match shared.import(&msg) {
        std::borrow::Cow::Borrowed(_) => msg,
        std::borrow::Cow::Owned(v) => MsgBytes::from_vec(v),
    }
}

fn deliver(shared: &Arc<Shared>, system: &System, to: Target<'_>, payload: &[u8]) {
    // gen_server's envelope is read as sent (the caller's pid is where the reply goes);
    // what the callback receives is translated.
    match classify(payload) {
        Dispatch::Call { from, tag, req } => {
            let sh = shared.clone();
            let route = Box::new(move |callee: ActorId, result: Result<&[u8], _>| {
                // An error means the callee died: the caller's monitor reports it.
                if let Ok(reply) = result {
                    let frame = reply_frame(&sh, callee, &from, &tag, reply);
                    sh.send_to(&from.node, frame);
                }
            });
            let _ = system.call_routed(to, imported(shared, req), route);
        }
        Dispatch::Cast(msg) => {
            let _ = system.send(to, Envelope::message(MsgKind::Cast, imported(shared, msg)));
        }
        Dispatch::Info => {
            let msg = match payload.strip_prefix(&[VERSION]) {
                Some(body) => imported(shared, body),
                // Not ETF: the receiver's decoder says why.
                None => MsgBytes::from_slice(payload),
            };
            let _ = system.send(to, Envelope::message(MsgKind::Info, msg));
        }
    }
}

/// `net_adm:ping/1` is a call to `net_kernel`: `{is_auth, Node}` is answered `yes`.
fn net_kernel(shared: &Shared, payload: &[u8]) {
    if let Dispatch::Call { from, tag, .. } = classify(payload) {
        let yes = etf::to_vec(&etf::Atom::new("yes")).unwrap_or_default();
        let frame = reply_frame(shared, ActorId(0), &from, &tag, &yes);
        shared.send_to(&from.node, frame);
    }
}

/// An exit reason from the control tuple, or else from the payload (complete ETF). Its
/// pids are translated where it is delivered.
fn reason_bytes(reason: Option<Term>, payload: &[u8]) -> Vec<u8> {
    match reason {
        Some(t) => t.encode(),
        None => payload.to_vec(),
    }
}

fn imported_reason(shared: &Shared, reason: Option<Term>, payload: &[u8]) -> Vec<u8> {
    let bytes = reason_bytes(reason, payload);
    shared.import(&bytes).into_owned()
}

/// Applies one control message from `conn`'s peer.
pub(crate) fn handle(shared: &Arc<Shared>, conn: &Conn, system: &System, op: Op, payload: &[u8]) {
    match op {
        Op::RegSend { to, .. } if to == "net_kernel" => net_kernel(shared, payload),
        Op::RegSend { to, .. } => deliver(shared, system, Target::Name(&to), payload),
        Op::Send { to } => {
            if let Some(id) = shared.local(&to) {
                deliver(shared, system, Target::Id(id), payload);
            }
        }
        // A reply to a call one of our actors made (`ctx.request`).
        Op::AliasSend { alias } => shared.call_replied(&alias, payload, system),
        Op::Link { from, to } => {
            let proxy = shared.proxy(&from);
            let linked = shared.local(&to).is_some_and(|id| {
                shared.add_link(proxy, id);
                let ok = system.link(proxy, Target::Id(id)).is_ok();
                if !ok {
                    shared.remove_link(proxy, id);
                }
                ok
            });
            if !linked {
                conn.send(control::exit(&to, &from, Term::atom("noproc")));
            }
        }
        Op::UnlinkId { id, from, to } => {
            let proxy = shared.proxy(&from);
            if let Some(local) = shared.local(&to) {
                shared.remove_link(proxy, local);
                let _ = system.unlink(proxy, Target::Id(local));
            }
            conn.send(control::unlink_ack(id, &to, &from));
        }
        Op::MonitorExit { eref, reason } => {
            shared.monitor_fired(&eref, &reason_bytes(reason, payload), system);
        }
        Op::SpawnReply { req, flags, result } => shared.spawn_replied(&req, flags, result, system),
        Op::UnlinkIdAck | Op::Ignored => {}
        Op::Exit { from, to, reason } => {
            let proxy = shared.proxy(&from);
            if let Some(local) = shared.local(&to) {
                shared.remove_link(proxy, local);
                if system.unlink(proxy, Target::Id(local)).is_ok() {
                    let _ = system.exit_signal(
                        proxy,
                        Target::Id(local),
                        imported_reason(shared, reason, payload),
                    );
                }
            }
        }
        Op::Exit2 { from, to, reason } => {
            let proxy = shared.proxy(&from);
            if let Some(local) = shared.local(&to) {
                let _ = system.exit_signal(
                    proxy,
                    Target::Id(local),
                    imported_reason(shared, reason, payload),
                );
            }
        }
        Op::Monitor { from, to, eref } => {
            if matches!(&to, Proc::Name(n) if n == "net_kernel") {
                return; // ping's call monitors it; it never goes down
            }
            let proxy = shared.proxy(&from);
            let mref = MonitorRef(system.next_tag());
            shared.add_monitor(mref, from, to.clone(), eref);
            let target = match &to {
                Proc::Name(n) => Target::Name(n),
                // Another node's pid or an old incarnation's: nobody here.
                Proc::Pid(p) => Target::Id(shared.local(p).unwrap_or(ActorId(0))),
            };
            // Not alive: the system has sent the DOWN (noproc) through `Shared::down`.
            system.monitor_as(mref, proxy, target);
        }
        Op::Demonitor { eref } => {
            if let Some(mref) = shared.take_monitor(&eref) {
                system.demonitor(mref);
            }
        }
        Op::Unknown(op) => shared.observer.emit(crate::observe::Event::NodeUnknownOp {
            node: &conn.peer.name,
            op,
        }),
        Op::SpawnRequest {
            req,
            from,
            mfa,
            opts,
        } => super::spawn::request(shared, shared.services(), req, from, mfa, opts, payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_call_and_cast_are_recognised_without_decoding_the_request() {
        let from = Term::Pid(ExternalPid {
            node: "e@127.0.0.1".into(),
            id: 90,
            serial: 0,
            creation: 3,
        });
        let call = Term::Tuple(vec![
            Term::atom("$gen_call"),
            Term::Tuple(vec![from, Term::atom("tag")]),
            Term::Tuple(vec![Term::atom("incr"), Term::Integer(5)]),
        ])
        .encode();
        match classify(&call) {
            Dispatch::Call { tag, req, .. } => {
                assert_eq!(tag, Term::atom("tag"));
                assert_eq!(etf::display(&versioned(req)), "{incr,5}");
            }
            _ => panic!("not a call"),
        }
        let cast = Term::Tuple(vec![Term::atom("$gen_cast"), Term::atom("reset")]).encode();
        assert!(matches!(classify(&cast), Dispatch::Cast(m) if atom_is(m, "reset")));
        assert!(matches!(
            classify(&Term::atom("tick").encode()),
            Dispatch::Info
        ));
        assert!(matches!(classify(&[131, 104, 3, 119]), Dispatch::Info));
    }
}
