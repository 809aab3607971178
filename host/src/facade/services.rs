//! What another node of the cluster may ask of this host: spawning an actor of a
//! behaviour (`spawn(Node, counter, init, [Args])`), and the built-in module `host` that
//! `rpc:call(Node, host, F, A)` reaches — the operations of `host ctl`, answered as Erlang
//! terms, so an Erlang operator drives the host from a shell they already know:
//!
//! | call | answer |
//! |---|---|
//! | `actors()` | `[#{pid, name, behaviour, version, status, mailbox, handled}]` |
//! | `whereis(Name)` | the pid, or `undefined` |
//! | `versions()` | `[#{library, behaviours, hash, status, actors}]` |
//! | `reload(Behaviour)` / `rollback(Behaviour)` | `ok`, or `{error, Why}` (`{rolled_back, Why}` when the swap was undone) |
//! | `call(Name, Msg, TimeoutMs)` | the reply; exits `{noproc, Name}` / `timeout` as `gen_server:call` does |
//! | `send(Name, Msg)` | `ok`; exits `{badarg, Name}` for an unknown name, as `!` raises |
//! | `stats()` | `#{uptime_s, actors, messages, run_queue, reloads_ok, ...}` |
//! | `ctl(Json)` | a `host ctl` request answered as the control socket would (`host ctl --node`) |
//! | `load(Behaviour, Binary)` | the library's bytes from another host (`reload --all-nodes`, OTP's `nl/1`): loaded and swapped through every check a local file goes through; answers as `reload` |
//!
//! Anything else is `undef`, as BEAM says for a missing function.

use std::sync::Arc;
use std::time::Duration;

use plugin_api::abi::MsgKind;
use plugin_api::etf::Term;

use crate::code::Code;
use crate::dist::{RpcError, Services};
use crate::observe::events::{HostEvent, ReloadOutcome};
use crate::observe::Observer;
use crate::system::mailbox::{Envelope, MsgBytes};
use crate::system::{Birth, CallError, SpawnError, System, Target};
use crate::util::ids::ActorId;

/// The host's side of [`Services`]: handles to the subsystems, nothing more.
pub(crate) struct NodeServices {
    pub(crate) system: Arc<System>,
    pub(crate) code: Arc<Code>,
    pub(crate) observer: Arc<Observer>,
    /// The control server's handler, once it runs (`host:ctl/1`).
    pub(crate) ctl: Arc<std::sync::OnceLock<CtlHandler>>,
}

/// Answers one control request (JSON) as the control socket would (JSON).
pub type CtlHandler = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// A pid as the host's actors see it (the distribution layer makes it a pid of this node).
fn pid(id: ActorId) -> Term {
    Term::decode(&plugin_api::etf::to_vec(&id).unwrap_or_default())
        .unwrap_or(Term::atom("undefined"))
}

fn bin(s: &str) -> Term {
    Term::Binary(s.as_bytes().to_vec())
}

fn map(pairs: Vec<(&str, Term)>) -> Term {
    Term::Map(pairs.into_iter().map(|(k, v)| (Term::atom(k), v)).collect())
}

fn int(n: impl TryInto<i64>) -> Term {
    Term::Integer(n.try_into().unwrap_or(i64::MAX))
}

/// A name given as an atom or a binary.
fn name(t: &Term) -> Result<&str, RpcError> {
    match t {
        Term::Atom(a) => Ok(a),
        Term::Binary(b) => std::str::from_utf8(b).map_err(|_| RpcError::Badarg),
        _ => Err(RpcError::Badarg),
    }
}

fn reload_answer(r: Result<HostEvent, crate::code::ReloadError>) -> Term {
    let error = |tag: &str, why: String| Term::Tuple(vec![Term::atom(tag), bin(&why)]);
    match r {
        Ok(HostEvent::Reload(report)) => match report.outcome {
            ReloadOutcome::Ok => Term::atom("ok"),
            ReloadOutcome::RolledBack => error("rolled_back", report.reason.unwrap_or_default()),
            ReloadOutcome::Rejected => error("error", report.reason.unwrap_or_default()),
        },
        Ok(HostEvent::Load { reason, .. }) => error("error", reason.unwrap_or_default()),
        Ok(other) => error("error", format!("{other:?}")),
        Err(e) => error("error", e.to_string()),
    }
}

impl Services for NodeServices {
    fn register(&self, behaviour: &str, link: Option<ActorId>) -> Result<Birth, SpawnError> {
        self.code.register_new(behaviour, None, link, |_| {})
    }

    fn rpc(&self, function: &str, args: &[Term]) -> Result<Term, RpcError> {
        match (function, args) {
            ("actors", []) => Ok(Term::List(
                self.system
                    .describe_actors(|_| 0)
                    .into_iter()
                    .map(|a| {
                        map(vec![
                            ("pid", pid(a.id)),
                            (
                                "name",
                                a.name
                                    .as_deref()
                                    .map_or(Term::atom("undefined"), Term::atom),
                            ),
                            ("behaviour", bin(&a.behaviour)),
                            ("version", bin(&a.version)),
                            ("status", Term::atom(a.status)),
                            ("mailbox", int(a.mailbox)),
                            ("handled", int(a.handled)),
                        ])
                    })
                    .collect(),
            )),
            ("whereis", [n]) => Ok(self
                .system
                .registry
                .whereis(name(n)?)
                .map_or(Term::atom("undefined"), pid)),
            ("versions", []) => Ok(Term::List(
                self.code
                    .versions()
                    .into_iter()
                    .map(|v| {
                        map(vec![
                            ("library", bin(&v.library.display().to_string())),
                            (
                                "behaviours",
                                Term::List(v.behaviours.iter().map(|b| bin(b)).collect()),
                            ),
                            ("hash", bin(&v.hash)),
                            ("status", Term::atom(v.status)),
                            ("actors", int(v.actors)),
                        ])
                    })
                    .collect(),
            )),
            ("reload", [b]) => {
                let b = name(b)?;
                Ok(reload_answer(self.code.library_of(b).map(|path| {
                    self.code.load_into(&path, &path, &crate::code::EXTRA_NIL)
                })))
            }
            ("rollback", [b]) => Ok(reload_answer(
                self.code.rollback(name(b)?, &crate::code::EXTRA_NIL),
            )),
            ("call", [n, msg, timeout]) => {
                let n = name(n)?;
                let Term::Integer(ms) = timeout else {
                    return Err(RpcError::Badarg);
                };
                let ms = u64::try_from(*ms).map_err(|_| RpcError::Badarg)?;
                match self
                    .system
                    .call(Target::Name(n), msg.encode(), Duration::from_millis(ms))
                {
                    Ok(reply) => Term::decode(&reply).map_err(|_| RpcError::Badarg),
                    Err(CallError::NoProc(_)) => Err(RpcError::Exit(Term::Tuple(vec![
                        Term::atom("noproc"),
                        Term::atom(n),
                    ]))),
                    Err(CallError::Timeout) => Err(RpcError::Exit(Term::atom("timeout"))),
                    Err(e) => Err(RpcError::Exit(bin(&e.to_string()))),
                }
            }
            ("send", [n, msg]) => {
                let n = name(n)?;
                let env = Envelope::message(MsgKind::Info, MsgBytes::from_vec(msg.encode()));
                match self.system.send(Target::Name(n), env) {
                    Ok(()) => Ok(Term::atom("ok")),
                    Err(_) => Err(RpcError::Exit(Term::Tuple(vec![
                        Term::atom("badarg"),
                        Term::atom(n),
                    ]))),
                }
            }
            ("load", [b, Term::Binary(bytes)]) => {
                let path = match self.code.library_of(name(b)?) {
                    Ok(p) => p,
                    Err(e) => return Ok(reload_answer(Err(e))),
                };
                // Written into the host's private copy directory (only this user can
                // write there), then loaded like any rebuilt file.
                let file = tempfile::Builder::new()
                    .prefix("pushed-")
                    .suffix(".so")
                    .tempfile_in(self.code.copy_dir())
                    .and_then(|mut f| {
                        std::io::Write::write_all(&mut f, bytes)?;
                        Ok(f)
                    });
                match file {
                    Ok(f) => Ok(reload_answer(Ok(self.code.load_into(
                        &path,
                        f.path(),
                        &crate::code::EXTRA_NIL,
                    )))),
                    Err(e) => Ok(Term::Tuple(vec![Term::atom("error"), bin(&e.to_string())])),
                }
            }
            ("ctl", [Term::Binary(json)]) => match self.ctl.get() {
                Some(handler) => Ok(match handler(json) {
                    Ok(out) => Term::Binary(out),
                    Err(e) => Term::Tuple(vec![Term::atom("error"), bin(&e)]),
                }),
                None => Ok(Term::Tuple(vec![
                    Term::atom("error"),
                    bin("this host has no control server"),
                ])),
            },
            ("stats", []) => {
                let c = self.observer.counters();
                let (live, actors) = self.system.handled_by_live();
                Ok(map(vec![
                    ("uptime_s", int(c.uptime.as_secs())),
                    ("actors", int(actors)),
                    ("messages", int(live + c.handled_by_dead)),
                    ("run_queue", int(self.system.run_queue().len())),
                    ("reloads_ok", int(c.reloads_ok)),
                    ("reloads_rolled_back", int(c.reloads_rolled_back)),
                    ("reloads_rejected", int(c.reloads_rejected)),
                    ("crashes", int(c.crashes)),
                ]))
            }
            _ => Err(RpcError::Undef),
        }
    }
}
