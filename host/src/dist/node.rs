//! The node tables and what holds them together: this node's identity, the live
//! connections by peer name, and the per-connection records of remote links and monitors
//! — the *proxy ids* standing for remote pids, which local actors are linked to each, and
//! which monitors remote processes hold on local actors — so that a lost connection fires
//! every `noconnection` exactly once. [`Shared`] is also the system's
//! [`RemoteSignals`]: a local actor's death reaches remote watchers through it.

use std::borrow::Cow;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use plugin_api::etf::{ExternalPid, ExternalRef, Term};
use rustc_hash::{FxHashMap, FxHashSet};

use super::conn::{self, Conn};
use super::control::{self, Proc};
use super::handshake::{self, Me};
use super::pids;
use super::spawn::Services;
use crate::observe::{Event, Observer};
use crate::system::remote::{Callee, RemoteDest, RemoteSend, RemoteSignals, SpawnSpec};
use crate::system::{System, Target};
use crate::util::ids::{ActorId, MonitorRef, REMOTE};
use crate::util::terms;

/// How long a handshake may take (OTP's `net_setuptime` is 7 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(7);

/// A monitor a remote process holds on a local actor.
struct RemoteMonitor {
    watcher: ExternalPid,
    target: Proc,
    eref: ExternalRef,
}

/// What a reference this node hands out is for, in its third word (the first two hold
/// the monitor reference or the call's tag).
pub(crate) const REF_MONITOR: u32 = 1;
pub(crate) const REF_CALL: u32 = 2;
/// A blocking rpc this node makes (`Shared::rpc`), e.g. to push code to a peer.
pub(crate) const REF_RPC: u32 = 3;

/// A monitor a local actor holds on a remote process.
struct OutMonitor {
    watcher: ActorId,
    node: String,
    target: Proc,
    /// The pid's proxy, for the `DOWN`; `None` when monitored by name.
    proxy: Option<ActorId>,
}

impl OutMonitor {
    fn who(&self) -> RemoteDest<'_> {
        match (&self.target, self.proxy) {
            (_, Some(p)) => RemoteDest::Pid(p),
            (Proc::Name(name), None) => RemoteDest::Name {
                name,
                node: &self.node,
            },
            (Proc::Pid(_), None) => RemoteDest::Pid(ActorId(0)),
        }
    }
}

#[derive(Default)]
struct Remote {
    next: u64,
    proxy_of: FxHashMap<ExternalPid, ActorId>,
    pid_of: FxHashMap<ActorId, ExternalPid>,
    /// Proxy -> the local actors linked to it.
    links: FxHashMap<ActorId, FxHashSet<ActorId>>,
    monitors: FxHashMap<MonitorRef, RemoteMonitor>,
    by_ref: FxHashMap<ExternalRef, MonitorRef>,
    /// Monitors local actors hold on remote processes.
    out_monitors: FxHashMap<MonitorRef, OutMonitor>,
    /// `monitor_node` watchers, by node (one entry per call, as in Erlang).
    node_watchers: FxHashMap<String, Vec<ActorId>>,
    /// `UNLINK_ID` ids.
    next_unlink: u64,
    /// Spawn requests local actors made, waiting for `SPAWN_REPLY`, by tag.
    spawns: FxHashMap<u64, PendingSpawn>,
    /// Blocking rpcs waiting for their answer, by tag: the node and the waiter.
    rpcs: FxHashMap<u64, RpcWaiter>,
}

type RpcWaiter = (String, crossbeam::channel::Sender<Result<Term, String>>);

/// A `ctx.spawn_remote` waiting for its answer.
struct PendingSpawn {
    requester: ActorId,
    node: String,
    link: bool,
    monitor: bool,
}

/// What every connection thread shares.
pub(crate) struct Shared {
    pub name: String,
    pub cookie: String,
    pub creation: u32,
    pub hidden: bool,
    pub ticktime: Duration,
    conns: RwLock<FxHashMap<String, Arc<Conn>>>,
    remote: Mutex<Remote>,
    pub observer: Arc<Observer>,
    stopping: AtomicBool,
    /// Itself, to hand to the threads it starts from `&self` (a background dial).
    this: Weak<Shared>,
    /// The system, once started (for connections dialled from a send).
    system: OnceLock<Weak<System>>,
    /// EPMD's port, where peers are looked up.
    epmd_port: u16,
    /// Frames for nodes being dialled, in order, flushed once connected.
    pending: Mutex<FxHashMap<String, Vec<Vec<u8>>>>,
    /// Remote spawns and rpc, once the host above has started.
    services: OnceLock<Arc<dyn Services>>,
    /// The threads that run remote spawns' `init`.
    spawn_pool: Arc<super::spawn::Pool>,
    /// The threads that answer rpc: apart from the spawns', so rpc calls that wait (a
    /// `host:call` to a busy actor) never hold up a spawn's `init`, nor the reverse.
    rpc_pool: Arc<super::spawn::Pool>,
}

impl Shared {
    pub(crate) fn new(
        name: String,
        cookie: String,
        creation: u32,
        hidden: bool,
        ticktime: Duration,
        epmd_port: u16,
        observer: Arc<Observer>,
    ) -> Arc<Shared> {
        Arc::new_cyclic(|this| Shared {
            name,
            cookie,
            creation,
            hidden,
            ticktime,
            conns: RwLock::default(),
            remote: Mutex::default(),
            observer,
            stopping: AtomicBool::new(false),
            this: this.clone(),
            system: OnceLock::new(),
            epmd_port,
            pending: Mutex::default(),
            services: OnceLock::new(),
            spawn_pool: Arc::default(),
            rpc_pool: Arc::default(),
        })
    }

    /// The host above answers remote spawns and rpc from now on.
    pub(crate) fn set_services(&self, services: Arc<dyn Services>) {
        let _ = self.services.set(services);
    }

    pub(crate) fn spawn_pool(&self) -> &Arc<super::spawn::Pool> {
        &self.spawn_pool
    }

    pub(crate) fn rpc_pool(&self) -> &Arc<super::spawn::Pool> {
        &self.rpc_pool
    }

    pub(crate) fn services(&self) -> Option<Arc<dyn Services>> {
        self.services.get().cloned()
    }

    /// The system is running: connections may now be dialled for sends.
    pub(crate) fn set_system(&self, system: &Arc<System>) {
        let _ = self.system.set(Arc::downgrade(system));
    }

    /// Dials `node` in the background; the frames queued for it meanwhile are sent in
    /// order once connected, or dropped (as Erlang drops sends to an unreachable node).
    fn dial(&self, node: String) {
        let (Some(me), Some(system)) = (
            self.this.upgrade(),
            self.system.get().and_then(Weak::upgrade),
        ) else {
            self.pending.lock().remove(&node);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("dist-dial".into())
            .spawn(move || {
                me.connect(&node, me.epmd_port, &system);
                let mut pending = me.pending.lock();
                let frames = pending.remove(&node).unwrap_or_default();
                if let Some(c) = me.conn(&node) {
                    for f in frames {
                        c.send(f);
                    }
                } else {
                    drop(pending);
                    // Calls, monitors and node monitors waiting on it fail now.
                    me.node_gone(&node, &system);
                }
            });
        if spawned.is_err() {
            self.pending.lock().clear();
        }
    }

    fn me(&self) -> Me<'_> {
        Me {
            name: &self.name,
            cookie: &self.cookie,
            creation: self.creation,
            hidden: self.hidden,
        }
    }

    /// A local actor as an Erlang pid of this node (ID = low half, serial = high half).
    pub(crate) fn pid(&self, id: ActorId) -> ExternalPid {
        ExternalPid {
            node: self.name.clone(),
            id: id.0 as u32,
            serial: (id.0 >> 32) as u32,
            creation: self.creation,
        }
    }

    /// A reference of this node for `kind`, carrying `n`.
    fn our_ref(&self, kind: u32, n: u64) -> ExternalRef {
        ExternalRef {
            node: self.name.clone(),
            creation: self.creation,
            id: vec![n as u32, (n >> 32) as u32, kind],
        }
    }

    /// What a reference of this incarnation of this node handed out for `kind` carries.
    pub(crate) fn ref_of(&self, r: &ExternalRef, kind: u32) -> Option<u64> {
        (r.node == self.name && r.creation == self.creation && r.id.len() == 3 && r.id[2] == kind)
            .then(|| u64::from(r.id[1]) << 32 | u64::from(r.id[0]))
    }

    fn pid_of(&self, proxy: ActorId) -> Option<ExternalPid> {
        self.remote.lock().pid_of.get(&proxy).cloned()
    }

    /// The proxy standing for `node` itself: what calls to `{Name, Node}` wait on, so
    /// that losing the node fails them.
    fn node_proxy(&self, node: &str) -> ActorId {
        self.proxy(&ExternalPid {
            node: node.to_string(),
            id: 0,
            serial: 0,
            creation: 0,
        })
    }

    pub(crate) fn system(&self) -> Option<Arc<System>> {
        self.system.get().and_then(Weak::upgrade)
    }

    /// A message leaving this node: a local actor's pid becomes a pid of this node, a
    /// proxy the remote pid it stands for. Copies only a message that holds a pid.
    pub(crate) fn export<'a>(&self, msg: &'a [u8]) -> Cow<'a, [u8]> {
        let out = pids::rewrite(msg, |p| match pids::local_id(&p) {
            Some(id) if id & REMOTE != 0 => self.pid_of(ActorId(id)).unwrap_or(p),
            Some(id) => self.pid(ActorId(id)),
            None => p,
        });
        out.map_or(Cow::Borrowed(msg), Cow::Owned)
    }

    /// A message arriving: a pid of this incarnation of this node becomes the local
    /// actor's, any other a proxy (so a plugin can answer it, link or monitor it).
    pub(crate) fn import<'a>(&self, msg: &'a [u8]) -> Cow<'a, [u8]> {
        let out = pids::rewrite(msg, |p| {
            let id = match self.local(&p) {
                Some(id) => id,
                None => self.proxy(&p),
            };
            pids::local_pid(id.0)
        });
        out.map_or(Cow::Borrowed(msg), Cow::Owned)
    }

    /// Queues `frame` for `node`: sent now if connected, kept in order while a connection
    /// is dialled (started here if none is). False if refused.
    fn enqueue(&self, node: &str, frame: Vec<u8>) -> bool {
        let mut pending = self.pending.lock();
        if let Some(q) = pending.get_mut(node) {
            if q.len() >= conn::QUEUE_BOUND {
                return false;
            }
            q.push(frame);
            return true;
        }
        if let Some(c) = self.conn(node) {
            return c.send(frame);
        }
        if self.is_stopping() || !node.contains('@') || node == self.name {
            return false;
        }
        pending.insert(node.to_string(), vec![frame]);
        drop(pending);
        self.dial(node.to_string());
        true
    }

    /// A reply to one of our calls arrived through its alias: `{Tag, Reply}`.
    pub(crate) fn call_replied(&self, alias: &ExternalRef, payload: &[u8], system: &System) {
        let Some(tag) = self.ref_of(alias, REF_CALL) else {
            return;
        };
        if let Ok(Term::Tuple(mut e)) = Term::decode(payload) {
            if e.len() == 2 {
                let reply = e.pop().map(|t| t.encode()).unwrap_or_default();
                system.reply_remote(tag, &self.import(&reply));
            }
        }
    }

    /// The answer to a local actor's spawn request: on success, the link and monitor it
    /// asked for are recorded, and it gets `{reply, Tag, {ok, Pid}}`.
    pub(crate) fn spawn_replied(
        &self,
        req: &ExternalRef,
        flags: i64,
        result: Term,
        system: &System,
    ) {
        if let Some(tag) = self.ref_of(req, REF_RPC) {
            // An rpc's process: its exit carries the answer; a refusal ends it now.
            if !matches!(result, Term::Pid(_)) {
                self.rpc_done(tag, Err(format!("spawn refused: {result}")));
            }
            return;
        }
        let Some(tag) = self.ref_of(req, REF_MONITOR) else {
            return;
        };
        let Some(p) = self.remote.lock().spawns.remove(&tag) else {
            return;
        };
        let Term::Pid(pid) = result else {
            let why = match result {
                Term::Atom(a) => a,
                other => other.to_string(),
            };
            system.deliver_spawn_failure(p.requester, tag, &why);
            return;
        };
        let proxy = self.proxy(&pid);
        if p.link && flags & 1 != 0 {
            self.add_link(proxy, p.requester);
            system.add_link(p.requester, proxy);
        }
        if p.monitor && flags & 2 != 0 {
            let m = OutMonitor {
                watcher: p.requester,
                node: p.node,
                target: Proc::Pid(pid),
                proxy: Some(proxy),
            };
            self.remote.lock().out_monitors.insert(MonitorRef(tag), m);
        }
        let ok =
            plugin_api::etf::to_vec(&(plugin_api::etf::Atom::new("ok"), plugin_api::Pid(proxy.0)))
                .unwrap_or_default();
        system.deliver_reply(p.requester, tag, &ok);
    }

    /// A process a local actor monitors went down (`reason` complete ETF).
    pub(crate) fn monitor_fired(&self, eref: &ExternalRef, reason: &[u8], system: &System) {
        if let Some(tag) = self.ref_of(eref, REF_RPC) {
            // `{Ref, return, Value}`, or how the call failed there.
            let answer = match Term::decode(reason) {
                Ok(Term::Tuple(mut e)) if e.len() == 3 && e[1] == Term::atom("return") => {
                    Ok(e.pop().unwrap_or(Term::atom("undefined")))
                }
                Ok(Term::Tuple(e)) if e.len() >= 3 => Err(format!("{}:{}", e[1], e[2])),
                Ok(other) => Err(other.to_string()),
                Err(e) => Err(e.to_string()),
            };
            self.rpc_done(tag, answer);
            return;
        }
        let Some(n) = self.ref_of(eref, REF_MONITOR) else {
            return;
        };
        let Some(m) = self.remote.lock().out_monitors.remove(&MonitorRef(n)) else {
            return;
        };
        system.deliver_down(m.watcher, MonitorRef(n), m.who(), &self.import(reason));
    }

    fn rpc_done(&self, tag: u64, answer: Result<Term, String>) {
        if let Some((_, tx)) = self.remote.lock().rpcs.remove(&tag) {
            let _ = tx.send(answer);
        }
    }

    /// `erpc:call(Node, Module, Function, Args)` from the host itself (not an actor):
    /// blocks the calling thread at most `timeout`. A lost connection answers
    /// `noconnection` at once.
    pub(crate) fn rpc(
        &self,
        node: &str,
        call: (&str, &str, Vec<Term>),
        tag: u64,
        timeout: Duration,
    ) -> Result<Term, String> {
        let (module, function, args) = call;
        let (tx, rx) = crossbeam::channel::bounded(1);
        let req = self.our_ref(REF_RPC, tag);
        let arglist = Term::List(vec![
            Term::Reference(req.clone()),
            Term::atom(module),
            Term::atom(function),
            Term::List(args),
        ]);
        let frame = control::spawn_request(
            &req,
            &self.pid(ActorId(0)),
            ("erpc", "execute_call", 4),
            vec![Term::atom("monitor")],
            &arglist.encode(),
        );
        self.remote.lock().rpcs.insert(tag, (node.to_string(), tx));
        if !self.enqueue(node, frame) {
            self.remote.lock().rpcs.remove(&tag);
            return Err("noconnection".into());
        }
        match rx.recv_timeout(timeout) {
            Ok(answer) => answer,
            Err(_) => {
                self.remote.lock().rpcs.remove(&tag);
                Err(format!("no answer within {} ms", timeout.as_millis()))
            }
        }
    }

    /// The local actor an Erlang pid names; `None` for another node's pid or one of an
    /// earlier incarnation of this node (which is `noproc`, never delivered).
    pub(crate) fn local(&self, p: &ExternalPid) -> Option<ActorId> {
        (p.node == self.name && p.creation == self.creation)
            .then_some(ActorId(((p.serial as u64) << 32) | p.id as u64))
            .filter(|id| id.0 & REMOTE == 0)
    }

    /// The proxy id standing for a remote pid (made on first use).
    pub(crate) fn proxy(&self, p: &ExternalPid) -> ActorId {
        let mut r = self.remote.lock();
        if let Some(&id) = r.proxy_of.get(p) {
            return id;
        }
        r.next += 1;
        let id = ActorId(REMOTE | r.next);
        r.proxy_of.insert(p.clone(), id);
        r.pid_of.insert(id, p.clone());
        id
    }

    pub(crate) fn conn(&self, node: &str) -> Option<Arc<Conn>> {
        self.conns.read().get(node).cloned()
    }

    /// Sends a frame to `node` if connected.
    pub(crate) fn send_to(&self, node: &str, frame: Vec<u8>) -> bool {
        self.conn(node).is_some_and(|c| c.send(frame))
    }

    pub(crate) fn add_link(&self, proxy: ActorId, local: ActorId) {
        self.remote
            .lock()
            .links
            .entry(proxy)
            .or_default()
            .insert(local);
    }

    pub(crate) fn remove_link(&self, proxy: ActorId, local: ActorId) {
        if let Some(set) = self.remote.lock().links.get_mut(&proxy) {
            set.remove(&local);
        }
    }

    /// Records a remote monitor before it is placed (so a `DOWN` racing it finds it).
    pub(crate) fn add_monitor(
        &self,
        mref: MonitorRef,
        watcher: ExternalPid,
        target: Proc,
        eref: ExternalRef,
    ) {
        let mut r = self.remote.lock();
        r.by_ref.insert(eref.clone(), mref);
        r.monitors.insert(
            mref,
            RemoteMonitor {
                watcher,
                target,
                eref,
            },
        );
    }

    /// Forgets a remote monitor by the remote side's reference.
    pub(crate) fn take_monitor(&self, eref: &ExternalRef) -> Option<MonitorRef> {
        let mut r = self.remote.lock();
        let mref = r.by_ref.remove(eref)?;
        r.monitors.remove(&mref);
        Some(mref)
    }

    /// The connection to `peer.name` is admitted: replace any older one (the peer
    /// restarted) and start its threads.
    fn admit(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: handshake::Peer,
        outgoing: bool,
        system: &Arc<System>,
    ) {
        let name = peer.name.clone();
        let register = |c: &Arc<Conn>| {
            if let Some(old) = self.conns.write().insert(name.clone(), c.clone()) {
                old.close();
            }
        };
        match conn::start(
            stream,
            peer,
            outgoing,
            self.clone(),
            system.clone(),
            register,
        ) {
            Ok(_) => self.observer.emit(Event::NodeUp {
                node: &name,
                direction: direction(outgoing),
            }),
            Err(e) => {
                self.conns.write().remove(&name);
                self.observer.emit(Event::NodeRefused {
                    peer: &name,
                    direction: direction(outgoing),
                    reason: &e.to_string(),
                })
            }
        }
    }

    /// A connection ended: forget it and fire everything that depended on it, once —
    /// local actors linked to its processes get an exit signal `noconnection`, monitors
    /// its processes held are dropped.
    pub(crate) fn connection_lost(&self, conn: &Arc<Conn>, reason: &str, system: &System) {
        let node = &conn.peer.name;
        {
            let mut conns = self.conns.write();
            match conns.get(node) {
                Some(c) if Arc::ptr_eq(c, conn) => {
                    conns.remove(node);
                }
                // Replaced by a newer connection: the tables belong to that one now.
                _ => {
                    self.emit_down(conn, reason);
                    return;
                }
            }
        }
        self.node_gone(node, system);
        self.emit_down(conn, reason);
    }

    /// `node` is gone (its connection lost, or a dial failed): fire everything that
    /// depended on it, once — local actors linked to its processes get an exit signal
    /// `noconnection`, monitors its processes held are dropped, local monitors of its
    /// processes get `DOWN` `noconnection`, `monitor_node` watchers `{nodedown, Node}`,
    /// and calls waiting on it fail now.
    fn node_gone(&self, node: &str, system: &System) {
        let (links, monitors, downs, watchers, proxies, spawns) = {
            let mut r = self.remote.lock();
            let proxies: FxHashSet<ActorId> = r
                .pid_of
                .iter()
                .filter(|(_, p)| p.node == *node)
                .map(|(&id, _)| id)
                .collect();
            let mut links = Vec::new();
            for &proxy in &proxies {
                if let Some(p) = r.pid_of.remove(&proxy) {
                    r.proxy_of.remove(&p);
                }
                for local in r.links.remove(&proxy).unwrap_or_default() {
                    links.push((proxy, local));
                }
            }
            let mrefs: Vec<MonitorRef> = r
                .monitors
                .iter()
                .filter(|(_, m)| m.watcher.node == *node)
                .map(|(&k, _)| k)
                .collect();
            for m in &mrefs {
                if let Some(rm) = r.monitors.remove(m) {
                    r.by_ref.remove(&rm.eref);
                }
            }
            let downs: Vec<(MonitorRef, OutMonitor)> =
                r.out_monitors.extract_if(|_, m| m.node == *node).collect();
            let watchers = r.node_watchers.remove(node).unwrap_or_default();
            let spawns: Vec<(u64, PendingSpawn)> =
                r.spawns.extract_if(|_, s| s.node == *node).collect();
            for (_, (_, tx)) in r.rpcs.extract_if(|_, (n, _)| n == node) {
                let _ = tx.send(Err("noconnection".into()));
            }
            (links, mrefs, downs, watchers, proxies, spawns)
        };
        for (tag, s) in spawns {
            system.deliver_spawn_failure(s.requester, tag, "noconnection");
        }
        let noconnection = terms::noconnection();
        for (proxy, local) in links {
            let _ = system.unlink(proxy, Target::Id(local));
            let _ = system.exit_signal(proxy, Target::Id(local), noconnection.clone());
        }
        for m in monitors {
            system.demonitor(m);
        }
        for (mref, m) in &downs {
            system.deliver_down(m.watcher, *mref, m.who(), &noconnection);
        }
        for w in watchers {
            system.deliver_nodedown(w, node);
        }
        system.fail_calls_to(&proxies);
    }

    fn emit_down(&self, conn: &Conn, reason: &str) {
        let reason = if self.stopping.load(Ordering::Acquire) {
            "host stopping"
        } else {
            reason
        };
        self.observer.emit(Event::NodeDown {
            node: &conn.peer.name,
            direction: direction(conn.outgoing),
            reason,
        });
    }

    /// The connected nodes, by name.
    pub(crate) fn nodes(&self) -> Vec<crate::observe::model::NodeRow> {
        let mut v: Vec<_> = self.conns.read().values().map(|c| c.row()).collect();
        v.sort_by(|a, b| a.node.cmp(&b.node));
        v
    }

    /// Closes every connection (the host is stopping).
    pub(crate) fn close_all(&self) {
        self.stopping.store(true, Ordering::Release);
        for c in self.conns.read().values() {
            c.close();
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Accepts connections until the host stops; each handshake on its own thread with a
    /// deadline, so a slow peer holds up nobody.
    pub(crate) fn accept_loop(self: Arc<Self>, listener: TcpListener, system: Arc<System>) {
        for stream in listener.incoming() {
            if self.is_stopping() {
                return;
            }
            let Ok(stream) = stream else { continue };
            let me = self.clone();
            let system = system.clone();
            let _ = std::thread::Builder::new()
                .name("dist-accept".into())
                .spawn(move || me.handshake_in(stream, &system));
        }
    }

    fn handshake_in(self: &Arc<Self>, mut stream: TcpStream, system: &Arc<System>) {
        let peer_addr = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        match handshake::accept(&mut stream, &self.me(), |n| {
            self.conns.read().contains_key(n)
        }) {
            Ok(peer) => self.admit(stream, peer, false, system),
            Err(e) => self.observer.emit(Event::NodeRefused {
                peer: &peer_addr,
                direction: "in",
                reason: &e.to_string(),
            }),
        }
    }

    /// Dials `node` (looked up through EPMD) unless connected; true once connected.
    pub(crate) fn connect(
        self: &Arc<Self>,
        node: &str,
        epmd_port: u16,
        system: &Arc<System>,
    ) -> bool {
        if self.conns.read().contains_key(node) {
            return true;
        }
        let Some((alive, host)) = node.split_once('@') else {
            return false;
        };
        let refuse = |reason: String| {
            self.observer.emit(Event::NodeRefused {
                peer: node,
                direction: "out",
                reason: &reason,
            });
            false
        };
        // An IP (`-name a@IP`), or a host name (`-sname a@host`) resolved here.
        let ip = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match std::net::ToSocketAddrs::to_socket_addrs(&(host, 0u16))
                .ok()
                .and_then(|mut a| a.find(|a| a.is_ipv4()))
            {
                Some(a) => a.ip(),
                None => return refuse(format!("cannot resolve the host `{host}`")),
            },
        };
        let port = match super::epmd::port_please(
            SocketAddr::new(ip, epmd_port),
            alive,
            HANDSHAKE_TIMEOUT,
        ) {
            Ok(Some(p)) => p,
            Ok(None) => return refuse("not registered with EPMD".into()),
            Err(e) => return refuse(format!("EPMD: {e}")),
        };
        let mut s = match TcpStream::connect_timeout(&SocketAddr::new(ip, port), HANDSHAKE_TIMEOUT)
        {
            Ok(s) => s,
            Err(e) => return refuse(e.to_string()),
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
        let _ = s.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        match handshake::connect(&mut s, &self.me(), node) {
            Ok(peer) => {
                self.admit(s, peer, true, system);
                self.conns.read().contains_key(node)
            }
            Err(e) => refuse(e.to_string()),
        }
    }
}

fn direction(outgoing: bool) -> &'static str {
    if outgoing {
        "out"
    } else {
        "in"
    }
}

impl RemoteSignals for Shared {
    fn send(&self, from: ActorId, name: &str, node: &str, cast: bool, msg: &[u8]) -> RemoteSend {
        if node == self.name {
            return RemoteSend::Local;
        }
        let msg = self.export(msg);
        let frame = if cast {
            control::reg_send(&self.pid(from), name, &control::gen_cast(&msg))
        } else {
            control::reg_send(&self.pid(from), name, &msg)
        };
        if self.enqueue(node, frame) {
            RemoteSend::Sent
        } else {
            RemoteSend::NoNode
        }
    }

    fn exit(&self, proxy: ActorId, from: ActorId, reason: &[u8]) {
        let to = {
            let mut r = self.remote.lock();
            if let Some(set) = r.links.get_mut(&proxy) {
                set.remove(&from);
            }
            r.pid_of.get(&proxy).cloned()
        };
        if let Some(to) = to {
            let reason =
                Term::decode(&self.export(reason)).unwrap_or_else(|_| Term::atom("unknown"));
            self.send_to(&to.node, control::exit(&self.pid(from), &to, reason));
        }
    }

    fn down(&self, _proxy: ActorId, mref: MonitorRef, _from: ActorId, reason: &[u8]) {
        let m = {
            let mut r = self.remote.lock();
            let m = r.monitors.remove(&mref);
            if let Some(m) = &m {
                r.by_ref.remove(&m.eref);
            }
            m
        };
        if let Some(m) = m {
            let reason =
                Term::decode(&self.export(reason)).unwrap_or_else(|_| Term::atom("unknown"));
            self.send_to(
                &m.watcher.node,
                control::monitor_exit(&m.target, &m.watcher, &m.eref, reason),
            );
        }
    }

    fn send_pid(&self, from: ActorId, proxy: ActorId, cast: bool, msg: &[u8]) -> bool {
        // A pid of an earlier incarnation of this node names nobody.
        let Some(to) = self.pid_of(proxy).filter(|p| p.node != self.name) else {
            return false;
        };
        let msg = self.export(msg);
        let frame = if cast {
            control::send_sender(&self.pid(from), &to, &control::gen_cast(&msg))
        } else {
            control::send_sender(&self.pid(from), &to, &msg)
        };
        self.send_to(&to.node, frame)
    }

    fn callee(&self, to: RemoteDest<'_>) -> Callee {
        match to {
            RemoteDest::Pid(p) => match self.pid_of(p) {
                Some(pid) if pid.node != self.name => Callee::Proxy(p),
                _ => Callee::NoNode,
            },
            RemoteDest::Name { node, .. } if node == self.name => Callee::Local,
            RemoteDest::Name { node, .. } if self.is_stopping() || !node.contains('@') => {
                Callee::NoNode
            }
            RemoteDest::Name { node, .. } => Callee::Proxy(self.node_proxy(node)),
        }
    }

    fn call(&self, from: ActorId, to: RemoteDest<'_>, tag: u64, msg: &[u8]) -> bool {
        let me = self.pid(from);
        let payload = control::gen_call(&me, &self.our_ref(REF_CALL, tag), &self.export(msg));
        match to {
            RemoteDest::Pid(p) => match self.pid_of(p) {
                Some(pid) => self.send_to(&pid.node, control::send_sender(&me, &pid, &payload)),
                None => false,
            },
            RemoteDest::Name { name, node } => {
                self.enqueue(node, control::reg_send(&me, name, &payload))
            }
        }
    }

    fn link(&self, from: ActorId, proxy: ActorId) -> bool {
        let Some(to) = self.pid_of(proxy).filter(|p| p.node != self.name) else {
            return false;
        };
        self.add_link(proxy, from);
        if self.send_to(&to.node, control::link(&self.pid(from), &to)) {
            true
        } else {
            self.remove_link(proxy, from);
            false
        }
    }

    fn unlink(&self, from: ActorId, proxy: ActorId) {
        let (to, id) = {
            let mut r = self.remote.lock();
            if let Some(set) = r.links.get_mut(&proxy) {
                set.remove(&from);
            }
            r.next_unlink += 1;
            (r.pid_of.get(&proxy).cloned(), r.next_unlink)
        };
        if let Some(to) = to {
            self.send_to(&to.node, control::unlink_id(id, &self.pid(from), &to));
        }
    }

    fn exit2(&self, from: ActorId, proxy: ActorId, reason: &[u8]) -> bool {
        let Some(to) = self.pid_of(proxy).filter(|p| p.node != self.name) else {
            return false;
        };
        let reason = Term::decode(&self.export(reason)).unwrap_or_else(|_| Term::atom("unknown"));
        self.send_to(&to.node, control::exit2(&self.pid(from), &to, reason))
    }

    fn monitor(&self, watcher: ActorId, mref: MonitorRef, to: RemoteDest<'_>) {
        let (node, target, proxy) = match to {
            RemoteDest::Pid(p) => match self.pid_of(p) {
                Some(pid) => (pid.node.clone(), Proc::Pid(pid), Some(p)),
                None => (String::new(), Proc::Name(String::new()), Some(p)),
            },
            RemoteDest::Name { name, node } => (node.to_string(), Proc::Name(name.into()), None),
        };
        let frame = control::monitor(
            &self.pid(watcher),
            &target,
            &self.our_ref(REF_MONITOR, mref.0),
        );
        let m = OutMonitor {
            watcher,
            node: node.clone(),
            target,
            proxy,
        };
        // Recorded first: a DOWN racing the request finds it.
        self.remote.lock().out_monitors.insert(mref, m);
        if node.is_empty() || !self.enqueue(&node, frame) {
            let m = self.remote.lock().out_monitors.remove(&mref);
            if let (Some(m), Some(system)) = (m, self.system()) {
                system.deliver_down(watcher, mref, m.who(), &terms::noconnection());
            }
        }
    }

    fn demonitor(&self, mref: MonitorRef) -> bool {
        let Some(m) = self.remote.lock().out_monitors.remove(&mref) else {
            return false;
        };
        let frame = control::demonitor(
            &self.pid(m.watcher),
            &m.target,
            &self.our_ref(REF_MONITOR, mref.0),
        );
        self.send_to(&m.node, frame);
        true
    }

    fn watcher_gone(&self, watcher: ActorId) {
        let mut r = self.remote.lock();
        let gone: Vec<MonitorRef> = r
            .out_monitors
            .iter()
            .filter(|(_, m)| m.watcher == watcher)
            .map(|(&mref, _)| mref)
            .collect();
        let frames: Vec<(String, Vec<u8>)> = gone
            .iter()
            .filter_map(|mref| r.out_monitors.remove(mref).map(|m| (mref, m)))
            .map(|(mref, m)| {
                let frame = control::demonitor(
                    &self.pid(m.watcher),
                    &m.target,
                    &self.our_ref(REF_MONITOR, mref.0),
                );
                (m.node, frame)
            })
            .collect();
        for watchers in r.node_watchers.values_mut() {
            watchers.retain(|&w| w != watcher);
        }
        r.node_watchers.retain(|_, w| !w.is_empty());
        drop(r);
        for (node, frame) in frames {
            self.send_to(&node, frame);
        }
    }

    fn monitor_node(&self, watcher: ActorId, node: &str, on: bool) -> bool {
        if node == self.name {
            return true;
        }
        let mut r = self.remote.lock();
        if !on {
            if let Some(v) = r.node_watchers.get_mut(node) {
                if let Some(i) = v.iter().position(|&w| w == watcher) {
                    v.swap_remove(i);
                }
            }
            return true;
        }
        r.node_watchers
            .entry(node.to_string())
            .or_default()
            .push(watcher);
        drop(r);
        if self.conn(node).is_none() {
            let mut pending = self.pending.lock();
            if pending.contains_key(node) {
                return true;
            }
            if self.is_stopping() || !node.contains('@') {
                drop(pending);
                if let Some(system) = self.system() {
                    self.node_gone(node, &system);
                }
                return true;
            }
            // Dial it, as Erlang's monitor_node does; a failure delivers the nodedown.
            pending.insert(node.to_string(), Vec::new());
            drop(pending);
            self.dial(node.to_string());
        }
        true
    }

    fn spawn(&self, from: ActorId, tag: u64, spec: SpawnSpec<'_>) -> bool {
        let args = self.export(spec.args);
        let arity = match Term::decode(&args) {
            Ok(Term::List(v)) => v.len(),
            _ => return false,
        };
        let mut opts = Vec::new();
        if spec.link {
            opts.push(Term::atom("link"));
        }
        if spec.monitor {
            opts.push(Term::atom("monitor"));
        }
        let frame = control::spawn_request(
            &self.our_ref(REF_MONITOR, tag),
            &self.pid(from),
            (spec.module, spec.function, arity),
            opts,
            &args,
        );
        let pending = PendingSpawn {
            requester: from,
            node: spec.node.to_string(),
            link: spec.link,
            monitor: spec.monitor,
        };
        // Recorded first: the reply may come before `enqueue` returns.
        self.remote.lock().spawns.insert(tag, pending);
        if self.enqueue(spec.node, frame) {
            true
        } else {
            self.remote.lock().spawns.remove(&tag);
            false
        }
    }
}
