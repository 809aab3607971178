//! The distribution node: the host as a node of a real Erlang cluster, speaking Erlang's
//! own distribution protocol on the project's ETF codec.
//!
//! - `epmd`: register the name (the registration socket stays open), look peers up;
//! - `epmd_server`: our own EPMD (`host epmd`), started when none answers;
//! - `handshake`: the v6 handshake in both roles, flags, the cookie digest;
//! - `conn`: one connection on plain threads (a batching writer with ticks, a reader
//!   that splits frames), bounded queue, frame cap;
//! - `control`: control messages decoded and encoded;
//! - `incoming`: what a peer's messages, calls, links, monitors and exits do here;
//! - `node`: the node tables (connections, proxy ids for remote pids, remote links and
//!   monitors, local monitors of remote processes, `monitor_node`) and the system's
//!   `RemoteSignals`;
//! - `spawn`: spawn requests (`spawn/4`, `spawn_request`) start actors, and `rpc:call`
//!   into the built-in module `host`;
//! - `pids`: pids in messages translated at the wire (inside the host every pid names
//!   `nonode@nohost`).
//!
//! Why our own and not the `erl_dist` crate: see the README's dependency section.

mod conn;
mod control;
mod epmd;
mod epmd_server;
mod handshake;
mod incoming;
mod node;
mod pids;
mod spawn;

pub use epmd_server::EpmdServer;
pub(crate) use spawn::{RpcError, Services};

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::observe::{Event, Observer};
use crate::system::remote::RemoteSignals;
use crate::system::System;

/// How the host joins a cluster (`[distribution]` in the config, `--name`, `--cookie`).
#[derive(Debug, Clone)]
pub struct DistOptions {
    /// The full node name, `name@host` (the host part an IP address, as with `-name`).
    pub name: String,
    /// The magic cookie peers must share.
    pub cookie: String,
    /// Register as a hidden node (the default: the host does not speak `global`).
    pub hidden: bool,
    /// The address to listen on.
    pub listen: IpAddr,
    /// The port to listen on (0: any free port).
    pub port: u16,
    /// EPMD's port (`None`: `ERL_EPMD_PORT`, else 4369).
    pub epmd_port: Option<u16>,
    /// OTP's `net_ticktime`: a peer silent this long is dropped.
    pub net_ticktime: Duration,
}

impl Default for DistOptions {
    fn default() -> Self {
        DistOptions {
            name: String::new(),
            cookie: String::new(),
            hidden: true,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            epmd_port: None,
            net_ticktime: Duration::from_secs(60),
        }
    }
}

/// Why the node could not start.
#[derive(Debug)]
pub struct DistError(pub String);

impl std::fmt::Display for DistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DistError {}

/// A node bound and registered, not yet accepting (the system does not exist yet: the
/// node's tables are what the system is built with).
pub(crate) struct Bound {
    shared: Arc<node::Shared>,
    listener: TcpListener,
    registration: epmd::Registration,
    epmd: SocketAddr,
}

impl Bound {
    /// Listens, and registers with EPMD.
    pub(crate) fn bind(opts: &DistOptions, observer: Arc<Observer>) -> Result<Bound, DistError> {
        let alive = opts
            .name
            .split_once('@')
            .map(|(a, _)| a)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| DistError(format!("node name `{}` is not name@host", opts.name)))?;
        if opts.cookie.is_empty() {
            return Err(DistError(
                "no cookie: set --cookie or [distribution] cookie".into(),
            ));
        }
        let listener = TcpListener::bind(SocketAddr::new(opts.listen, opts.port)).map_err(|e| {
            DistError(format!(
                "cannot listen on {}:{}: {e}",
                opts.listen, opts.port
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| DistError(e.to_string()))?
            .port();
        let epmd = epmd::address(IpAddr::V4(Ipv4Addr::LOCALHOST), opts.epmd_port);
        if !epmd_server::answers(epmd) {
            // As `erl` does: no EPMD, so start one (it outlives this host).
            let which = epmd_server::start(epmd).map_err(|e| {
                DistError(format!("no EPMD at {epmd}, and starting one failed: {e}"))
            })?;
            observer.emit(Event::EpmdStarted {
                port: epmd.port(),
                which,
            });
        }
        let registration =
            epmd::register(epmd, alive, port, opts.hidden, Duration::from_secs(5))
                .map_err(|e| DistError(format!("cannot register with EPMD at {epmd}: {e}")))?;
        observer.emit(Event::DistListening {
            node: &opts.name,
            port,
            creation: registration.creation,
        });
        let shared = node::Shared::new(
            opts.name.clone(),
            opts.cookie.clone(),
            registration.creation,
            opts.hidden,
            opts.net_ticktime,
            epmd.port(),
            observer,
        );
        Ok(Bound {
            shared,
            listener,
            registration,
            epmd,
        })
    }

    /// What the system calls when a remote link or monitor fires.
    pub(crate) fn signals(&self) -> Arc<dyn RemoteSignals> {
        self.shared.clone()
    }

    /// Starts accepting peers; `services` answers their spawns and rpc.
    pub(crate) fn start(
        self,
        system: Arc<System>,
        services: Arc<dyn Services>,
    ) -> Result<Node, DistError> {
        self.shared.set_services(services);
        let listener = self
            .listener
            .try_clone()
            .map_err(|e| DistError(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DistError(e.to_string()))?;
        self.shared.set_system(&system);
        let shared = self.shared.clone();
        let sys = system.clone();
        let acceptor = std::thread::Builder::new()
            .name("dist-listen".into())
            .spawn(move || shared.accept_loop(listener, sys))
            .map_err(|e| DistError(e.to_string()))?;
        Ok(Node {
            shared: self.shared,
            system,
            addr,
            epmd: self.epmd,
            acceptor: Some(acceptor),
            _registration: self.registration,
        })
    }
}

/// A running node. Dropping it closes every connection (peers see the node go down)
/// and unregisters the name.
pub(crate) struct Node {
    shared: Arc<node::Shared>,
    system: Arc<System>,
    addr: SocketAddr,
    epmd: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    _registration: epmd::Registration,
}

impl Node {
    /// This node's name.
    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    /// The connected nodes.
    pub(crate) fn nodes(&self) -> Vec<crate::observe::model::NodeRow> {
        self.shared.nodes()
    }

    /// `erpc:call(Node, Module, Function, Args)` from the host (not an actor), waiting at
    /// most `timeout`: the value, or why it failed (`noconnection`, `error:undef` on a
    /// node that is no host, ...).
    pub(crate) fn rpc(
        &self,
        node: &str,
        call: (&str, &str, Vec<plugin_api::etf::Term>),
        timeout: Duration,
    ) -> Result<plugin_api::etf::Term, String> {
        let tag = self.system.next_tag();
        self.shared.rpc(node, call, tag, timeout)
    }

    /// Connects to `node` (through its EPMD on the same port as ours); true once up.
    pub(crate) fn connect(&self, node: &str) -> bool {
        self.shared.connect(node, self.epmd.port(), &self.system)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.close_all();
        // Wake the acceptor: it sees `stopping` and returns.
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}
