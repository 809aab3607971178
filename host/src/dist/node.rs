//! The node tables and what holds them together: this node's identity, the live
//! connections by peer name, and the per-connection records of remote links and monitors
//! — the *proxy ids* standing for remote pids, which local actors are linked to each, and
//! which monitors remote processes hold on local actors — so that a lost connection fires
//! every `noconnection` exactly once. [`Shared`] is also the system's
//! [`RemoteSignals`]: a local actor's death reaches remote watchers through it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use plugin_api::etf::{self, Atom, ExternalPid, ExternalRef, Term};
use rustc_hash::{FxHashMap, FxHashSet};

use super::conn::{self, Conn};
use super::control::{self, Proc};
use super::handshake::{self, Me};
use crate::observe::{Event, Observer};
use crate::system::remote::{RemoteSend, RemoteSignals};
use crate::system::{System, Target};
use crate::util::ids::{ActorId, MonitorRef, REMOTE};

/// How long a handshake may take (OTP's `net_setuptime` is 7 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(7);

/// A monitor a remote process holds on a local actor.
struct RemoteMonitor {
    watcher: ExternalPid,
    target: Proc,
    eref: ExternalRef,
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
}

fn atom(a: &str) -> Vec<u8> {
    etf::to_vec(&Atom::new(a)).unwrap_or_default()
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
        })
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
        let (links, monitors) = {
            let mut r = self.remote.lock();
            let proxies: Vec<ActorId> = r
                .pid_of
                .iter()
                .filter(|(_, p)| p.node == *node)
                .map(|(&id, _)| id)
                .collect();
            let mut links = Vec::new();
            for proxy in proxies {
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
            (links, mrefs)
        };
        let noconnection = atom("noconnection");
        for (proxy, local) in links {
            let _ = system.unlink(proxy, Target::Id(local));
            let _ = system.exit_signal(proxy, Target::Id(local), noconnection.clone());
        }
        for m in monitors {
            system.demonitor(m);
        }
        self.emit_down(conn, reason);
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
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return refuse(format!(
                "`{host}` is not an IP address (only -name a@IP is supported)"
            ));
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
        let frame = if cast {
            control::reg_send(&self.pid(from), name, &control::gen_cast(msg))
        } else {
            control::reg_send(&self.pid(from), name, msg)
        };
        let mut pending = self.pending.lock();
        if let Some(q) = pending.get_mut(node) {
            if q.len() >= conn::QUEUE_BOUND {
                return RemoteSend::NoNode;
            }
            q.push(frame);
            return RemoteSend::Sent;
        }
        if let Some(c) = self.conn(node) {
            return if c.send(frame) {
                RemoteSend::Sent
            } else {
                RemoteSend::NoNode
            };
        }
        if self.is_stopping() || !node.contains('@') {
            return RemoteSend::NoNode;
        }
        pending.insert(node.to_string(), vec![frame]);
        drop(pending);
        self.dial(node.to_string());
        RemoteSend::Sent
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
            let reason = Term::decode(reason).unwrap_or_else(|_| Term::atom("unknown"));
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
            let reason = Term::decode(reason).unwrap_or_else(|_| Term::atom("unknown"));
            self.send_to(
                &m.watcher.node,
                control::monitor_exit(&m.target, &m.watcher, &m.eref, reason),
            );
        }
    }
}
