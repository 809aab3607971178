//! Spawn requests from other nodes, and `rpc` into the host.
//!
//! Erlang starts a process on another node with a `SPAWN_REQUEST` carrying
//! `{Module, Function, Arity}`, the argument list and options (`link`, `monitor`); the node
//! answers `SPAWN_REPLY` with the new pid, and the process's exit reaches the requester
//! through the link or monitor it asked for. Here:
//!
//! 1. `Behaviour:init(Args)` — `spawn(N, counter, init, [#{start => 5}])`, `spawn_link/4`,
//!    `erlang:spawn_request/5` — starts an actor of that behaviour with `Args` as its init
//!    argument, linked from birth to the requester if asked (so an exit right after `init`
//!    is not missed), monitored if asked (the monitor's reference is the request's, as in
//!    Erlang).
//! 2. `rpc:call(N, host, F, A)` and `erpc:call` arrive as a spawn of
//!    `erpc:execute_call(Ref, host, F, A)`: the built-in module `host` ([`Services::rpc`])
//!    answers, and the answer travels as the exit reason `{Ref, return, Value}` of a
//!    process that never ran, exactly what `erpc` waits for.
//! 3. Anything else — an unknown behaviour, a function other than `init/1`, a module other
//!    than `host` for rpc — is answered as BEAM answers a spawn of a missing module: with a
//!    pid that exits `undef` at once, so an Erlang supervisor or `rpc:call` copes
//!    (`{badrpc, {'EXIT', {undef, _}}}`).
//!
//! The connection's reader answers a spawn itself — the actor registered, its pid sent
//! back — and hands only `init` to a small pool of threads ([`Pool`]); rpc has a pool of
//! its own, so a slow rpc (`reload`, a `call` to a busy actor) never holds up an `init`.
//! Plugin code and those rpc functions take time, and nothing on the reader may wait on
//! them. A pool grows when every thread is busy (one slow `init` delays nobody else), an
//! `init` has a start deadline ([`INIT_DEADLINE`]), and threads stay for the next request:
//! starting a thread per request cost more than the spawn itself. (An idle thread that
//! looked for the next request a while before sleeping was faster on a quiet machine and
//! far slower on a loaded one: a yield can cost a whole time slice.)

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use plugin_api::etf::{ExternalPid, Term};

use super::control::{self, Proc};
use super::node::Shared;
use crate::system::scheduler::coarse_ms;
use crate::system::{Birth, SpawnError, System, Target};
use crate::util::ids::{ActorId, MonitorRef};

/// What the distribution layer asks of the host above it (the facade implements it: a
/// spawn needs the code server, rpc the operator's view).
pub(crate) trait Services: Send + Sync {
    /// Step 1 of a spawn: an actor of `behaviour`, linked from birth to `link` if given,
    /// registered but starting (its `init` runs with [`System::run_init`]).
    fn register(&self, behaviour: &str, link: Option<ActorId>) -> Result<Birth, SpawnError>;
    /// `host:F(Args...)` called from another node.
    fn rpc(&self, function: &str, args: &[Term]) -> Result<Term, RpcError>;
}

/// How an rpc into the host fails, as Erlang would raise it.
#[derive(Debug)]
pub(crate) enum RpcError {
    /// No such function in module `host` (or wrong arity): `error:undef`.
    Undef,
    /// Arguments of the wrong type: `error:badarg`.
    Badarg,
    /// The operation failed: `exit:Reason` (say `{noproc, Name}`).
    Exit(Term),
}

/// What a spawn request asks for.
enum Job {
    Spawn {
        behaviour: String,
        args: Vec<u8>,
    },
    Rpc {
        tag: Term,
        function: String,
        args: Vec<Term>,
    },
    Undef,
}

fn has_opt(opts: &Term, name: &str) -> bool {
    matches!(opts, Term::List(v) if v.iter().any(|o| matches!(o, Term::Atom(a) if a == name)))
}

fn list(t: Term) -> Option<Vec<Term>> {
    match t {
        Term::List(v) => Some(v),
        _ => None,
    }
}

fn job(mfa: &Term, args: Vec<Term>) -> Job {
    let Term::Tuple(mfa) = mfa else {
        return Job::Undef;
    };
    let (Some(Term::Atom(m)), Some(Term::Atom(f))) = (mfa.first(), mfa.get(1)) else {
        return Job::Undef;
    };
    match (m.as_str(), f.as_str(), <[Term; 4]>::try_from(args)) {
        ("erpc", "execute_call", Ok([tag, Term::Atom(module), Term::Atom(function), a])) => {
            match (module.as_str(), list(a)) {
                ("host", Some(args)) => Job::Rpc {
                    tag,
                    function,
                    args,
                },
                // Another module: nothing of it runs here.
                _ => Job::Rpc {
                    tag,
                    function: String::new(),
                    args: Vec::new(),
                },
            }
        }
        (_, "init", Err(args)) if args.len() == 1 => Job::Spawn {
            behaviour: m.clone(),
            args: args[0].encode(),
        },
        _ => Job::Undef,
    }
}

/// The reason a pid that never ran exits with: `erpc`'s result shapes, or `undef`.
fn rpc_reason(tag: Term, result: Result<Term, RpcError>) -> Term {
    let t = Term::Tuple;
    match result {
        Ok(v) => t(vec![tag, Term::atom("return"), v]),
        Err(RpcError::Undef) => t(vec![
            tag,
            Term::atom("error"),
            Term::atom("undef"),
            Term::List(vec![]),
        ]),
        Err(RpcError::Badarg) => t(vec![
            tag,
            Term::atom("error"),
            Term::atom("badarg"),
            Term::List(vec![]),
        ]),
        Err(RpcError::Exit(r)) => t(vec![tag, Term::atom("exit"), r]),
    }
}

/// Threads that answer spawn requests and rpc: idle ones wait for work; when none is
/// idle a new one starts (up to [`Pool::MAX`]; past it, work waits for a free thread).
///
/// An `init` has a deadline ([`INIT_DEADLINE`]), as everything that waits on plugin code
/// does: past it the actor is killed (its pid, answered already, exits with a reason that
/// says so, firing the requester's link or monitor), and the thread stuck in it no longer
/// counts, so another may start; it leaves the pool when the `init` returns.
#[derive(Default)]
pub(crate) struct Pool {
    tx: std::sync::OnceLock<crossbeam::channel::Sender<Work>>,
    rx: std::sync::OnceLock<crossbeam::channel::Receiver<Work>>,
    idle: std::sync::atomic::AtomicUsize,
    threads: std::sync::atomic::AtomicUsize,
    /// The `init`s running on the pool, with their deadlines on the coarse clock (ms).
    starting: parking_lot::Mutex<FxHashMap<ActorId, u64>>,
    /// The thread that looks at those deadlines (started with the first `init`).
    checker: std::sync::OnceLock<()>,
}

/// One request for the pool; returns whether its thread stays in the pool.
type Work = Box<dyn FnOnce() -> bool + Send>;

/// How long a remote spawn's `init` may run: a supervisor child's default start deadline,
/// and what OTP's `start_link` callers wait.
pub(crate) const INIT_DEADLINE: Duration = Duration::from_secs(5);

impl Pool {
    /// The most threads it keeps.
    const MAX: usize = 16;
    /// Requests that may wait for a thread; past it a spawn is refused `system_limit`
    /// (what BEAM answers at its process limit).
    const QUEUE: usize = 1024;

    /// Queues `work`; false if the queue is full (every thread busy and [`Pool::QUEUE`]
    /// requests waiting), and the caller refuses the request.
    pub(crate) fn run(self: &Arc<Self>, work: Work) -> bool {
        use std::sync::atomic::Ordering;
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = crossbeam::channel::bounded(Self::QUEUE);
            let _ = self.rx.set(rx);
            tx
        });
        let grow = self.idle.load(Ordering::Acquire) == 0
            && self.threads.load(Ordering::Acquire) < Self::MAX;
        if tx.try_send(work).is_err() {
            return false;
        }
        if grow {
            self.threads.fetch_add(1, Ordering::AcqRel);
            let me = self.clone();
            let started = std::thread::Builder::new()
                .name("dist-spawn".into())
                .spawn(move || me.serve());
            if started.is_err() {
                self.threads.fetch_sub(1, Ordering::AcqRel);
            }
        }
        true
    }

    fn serve(&self) {
        use std::sync::atomic::Ordering;
        let Some(rx) = self.rx.get() else { return };
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let work = rx.recv();
            self.idle.fetch_sub(1, Ordering::AcqRel);
            match work {
                Ok(w) => {
                    if !w() {
                        return; // abandoned past a deadline, and no longer counted
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Runs `init` for `birth` on this (pool) thread under [`INIT_DEADLINE`]: `None` if
    /// the deadline passed first (the actor was killed; this thread must leave the pool).
    fn init(
        self: &Arc<Self>,
        system: &Arc<System>,
        birth: Birth,
        args: &[u8],
    ) -> Option<Result<ActorId, SpawnError>> {
        let id = birth.id();
        self.checker.get_or_init(|| {
            let (pool, system) = (Arc::downgrade(self), Arc::downgrade(system));
            let _ = std::thread::Builder::new()
                .name("dist-spawn-deadlines".into())
                .spawn(move || check_deadlines(pool, system));
        });
        let deadline = coarse_ms() + INIT_DEADLINE.as_millis() as u64;
        self.starting.lock().insert(id, deadline);
        let r = system.run_init(birth, args);
        // Still there: on time. Gone: the checker killed it and stopped counting us.
        self.starting.lock().remove(&id).map(|_| r)
    }
}

/// The pool's deadline thread: every 50 ms, kills the actors whose `init` ran past its
/// deadline; ends with the pool or the system.
fn check_deadlines(pool: std::sync::Weak<Pool>, system: std::sync::Weak<System>) {
    use std::sync::atomic::Ordering;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let (Some(pool), Some(system)) = (pool.upgrade(), system.upgrade()) else {
            return;
        };
        let now = coarse_ms();
        let late: Vec<ActorId> = {
            let mut starting = pool.starting.lock();
            let late: Vec<ActorId> = starting
                .iter()
                .filter(|(_, &d)| d <= now)
                .map(|(&id, _)| id)
                .collect();
            for id in &late {
                starting.remove(id);
            }
            late
        };
        for id in late {
            pool.threads.fetch_sub(1, Ordering::AcqRel);
            system.kill_late_init(id, INIT_DEADLINE);
        }
    }
}

/// A `SPAWN_REQUEST` from `from`, on the connection's reader.
///
/// A spawn is answered here, at once: the actor is registered and the pid sent back before
/// its `init` runs (as BEAM answers before the process ran; messages sent meanwhile wait
/// in its mailbox), and only `init` goes to the pool. Handing the whole spawn to a pool
/// thread cost a thread wake-up per spawn, which on a loaded machine waited for a core:
/// BEAM -> host spawns took 3-4x BEAM -> BEAM then, and 0.84x answered here.
pub(crate) fn request(
    shared: &Arc<Shared>,
    services: Option<Arc<dyn Services>>,
    req: Term,
    from: ExternalPid,
    mfa: Term,
    opts: Term,
    payload: &[u8],
) {
    // Pids in the arguments become the host's own, as in any message.
    let args = Term::decode(&shared.import(payload))
        .ok()
        .and_then(list)
        .unwrap_or_default();
    let Some(system) = shared.system() else {
        return;
    };
    let r = Request {
        proxy: shared.proxy(&from),
        link: has_opt(&opts, "link"),
        monitor: has_opt(&opts, "monitor"),
        req,
        from,
    };
    let exits = match (job(&mfa, args), services) {
        (Job::Spawn { behaviour, args }, Some(s)) => {
            match s.register(&behaviour, r.link.then_some(r.proxy)) {
                Ok(birth) => {
                    let id = birth.id();
                    r.started(shared, &system, id);
                    let pool = shared.spawn_pool().clone();
                    let (shared, system2, pool2) = (shared.clone(), system.clone(), pool.clone());
                    let work = move || {
                        match pool2.init(&system2, birth, &args) {
                            // The pid's `init` failed: it exits, as BEAM's would.
                            Some(Err(e)) => r.init_failed(&shared, &system2, id, error(&e)),
                            Some(Ok(_)) => {}
                            // Past its deadline: killed, its link and monitor fired.
                            None => return false,
                        }
                        true
                    };
                    if !pool.run(Box::new(work)) {
                        // Every pool thread busy and the queue full: the pid answered
                        // above exits `system_limit` (its link and monitor fire).
                        if let Some(actor) = system.registry.get(id) {
                            let reason = Term::atom("system_limit").encode();
                            system.kill_running(&actor, &reason);
                        }
                    }
                    return;
                }
                Err(SpawnError::UnknownBehaviour { .. }) => Term::atom("undef"),
                Err(e) => error(&e),
            }
        }
        (
            Job::Rpc {
                tag,
                function,
                args,
            },
            Some(s),
        ) => {
            // `reload` and `call` take time: on the rpc pool, answered from there.
            let pool = shared.rpc_pool().clone();
            let refused = (r.req.clone(), r.from.clone());
            let shared2 = shared.clone();
            let work = move || {
                let result = if function.is_empty() {
                    Err(RpcError::Undef)
                } else {
                    s.rpc(&function, &args)
                };
                r.exits(&shared2, &system, rpc_reason(tag, result));
                true
            };
            if !pool.run(Box::new(work)) {
                let (req, from) = refused;
                let reply = control::spawn_reply(req, &from, 0, Term::atom("system_limit"));
                shared.send_to(&from.node, reply);
            }
            return;
        }
        _ => Term::atom("undef"),
    };
    r.exits(shared, &system, exits);
}

/// The exit reason of a spawn that failed: `{error, Why}`.
fn error(e: &SpawnError) -> Term {
    Term::Tuple(vec![
        Term::atom("error"),
        Term::Binary(e.to_string().into_bytes()),
    ])
}

/// One spawn request: its reference, who asked (and the proxy that stands for them
/// here), and whether they asked for a link and a monitor.
struct Request {
    req: Term,
    from: ExternalPid,
    proxy: ActorId,
    link: bool,
    monitor: bool,
}

impl Request {
    /// `SPAWN_REPLY` with `pid`, and the flags of what was set up.
    fn reply(&self, shared: &Shared, pid: &ExternalPid) {
        let flags = i64::from(self.link) | i64::from(self.monitor) << 1;
        let reply =
            control::spawn_reply(self.req.clone(), &self.from, flags, Term::Pid(pid.clone()));
        shared.send_to(&self.from.node, reply);
    }

    /// The spawned actor is registered (its `init` not run yet): answer with its pid, and
    /// set up the link and monitor the request asked for.
    fn started(&self, shared: &Shared, system: &System, id: ActorId) {
        let pid = shared.pid(id);
        if self.link {
            // Linked at birth on our side; the table lets a lost connection fire it.
            shared.add_link(self.proxy, id);
        }
        self.reply(shared, &pid);
        if let (true, Term::Reference(eref)) = (self.monitor, &self.req) {
            let mref = MonitorRef(system.next_tag());
            shared.add_monitor(mref, self.from.clone(), Proc::Pid(pid), eref.clone());
            system.monitor_as(mref, self.proxy, Target::Id(id));
        }
    }

    /// The requester's link and monitor fire: `pid` exited with `reason`.
    fn fire(&self, shared: &Shared, pid: ExternalPid, reason: Term) {
        if self.link {
            shared.send_to(
                &self.from.node,
                control::exit(&pid, &self.from, reason.clone()),
            );
        }
        if let (true, Term::Reference(eref)) = (self.monitor, &self.req) {
            let down = control::monitor_exit(&Proc::Pid(pid), &self.from, eref, reason);
            shared.send_to(&self.from.node, down);
        }
    }

    /// An actor answered for in [`Request::started`] failed its `init`: it is gone
    /// without an exit of its own, so its link and monitor are fired here, as BEAM's
    /// spawned process would exit.
    fn init_failed(&self, shared: &Shared, system: &System, id: ActorId, reason: Term) {
        if self.link {
            shared.remove_link(self.proxy, id);
        }
        if let (true, Term::Reference(eref)) = (self.monitor, &self.req) {
            if let Some(mref) = shared.take_monitor(eref) {
                system.demonitor(mref);
            }
        }
        self.fire(shared, shared.pid(id), reason);
    }

    /// Answers a request that started nothing with a pid that never ran, then fires the
    /// link and monitor it asked for with `reason`.
    fn exits(&self, shared: &Shared, system: &System, reason: Term) {
        // Its id is never reused, so nothing can reach it.
        let pid = shared.pid(system.next_actor_id());
        self.reply(shared, &pid);
        let reason = Term::decode(&shared.export(&reason.encode())).unwrap_or(reason);
        self.fire(shared, pid, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_erlang_sends_them() {
        let mfa = |m: &str, f: &str, a: i64| {
            Term::Tuple(vec![Term::atom(m), Term::atom(f), Term::Integer(a)])
        };
        match job(&mfa("counter", "init", 1), vec![Term::Integer(5)]) {
            Job::Spawn { behaviour, args } => {
                assert_eq!(behaviour, "counter");
                assert_eq!(Term::decode(&args).unwrap(), Term::Integer(5));
            }
            _ => panic!("not a spawn"),
        }
        let rpc = vec![
            Term::atom("ref"),
            Term::atom("host"),
            Term::atom("whereis"),
            Term::List(vec![Term::atom("counter")]),
        ];
        match job(&mfa("erpc", "execute_call", 4), rpc) {
            Job::Rpc { function, args, .. } => {
                assert_eq!(function, "whereis");
                assert_eq!(args, vec![Term::atom("counter")]);
            }
            _ => panic!("not an rpc"),
        }
        // Not init/1, or no module at all: undef.
        assert!(matches!(
            job(&mfa("counter", "start", 1), vec![Term::Integer(1)]),
            Job::Undef
        ));
        assert!(matches!(
            job(&mfa("counter", "init", 2), vec![]),
            Job::Undef
        ));
        assert!(matches!(job(&Term::atom("x"), vec![]), Job::Undef));
        let r = rpc_reason(Term::atom("r"), Err(RpcError::Undef)).to_string();
        assert_eq!(r, "{r,error,undef,[]}");
    }
}
