//! What the system asks of the distribution layer above it, when a link or monitor held
//! by a process on another node fires.
//!
//! A process on another node is known to the system only as a *proxy id*: an [`ActorId`]
//! with [`REMOTE`](crate::util::ids::REMOTE) set, handed out by the distribution layer.
//! It sits in an actor's links and monitors like a local id; when the actor dies, the
//! system calls this hook instead of looking the id up in the registry. Nothing here runs
//! per message: only links, monitors and exits of actors that a remote process watches,
//! and what a local actor addresses to a remote process (sends, calls, links, monitors).

use plugin_api::abi::MsgKind;

use super::mailbox::Envelope;
use super::{CallError, System, Target};
use crate::util::ids::{ActorId, MonitorRef};
use crate::util::terms;

/// A process on another node, as a local actor names it.
#[derive(Debug, Clone, Copy)]
pub enum RemoteDest<'a> {
    /// A remote pid, by its proxy id.
    Pid(ActorId),
    /// `{Name, Node}`.
    Name {
        /// The registered name there.
        name: &'a str,
        /// The node, `name@host`.
        node: &'a str,
    },
}

/// A `spawn_request` to another node (`ctx.spawn_remote`).
#[derive(Debug, Clone, Copy)]
pub struct SpawnSpec<'a> {
    /// The node, `name@host`.
    pub node: &'a str,
    /// The module (a behaviour, on a host).
    pub module: &'a str,
    /// The function (`init` for a host's behaviour).
    pub function: &'a str,
    /// The argument list (ETF).
    pub args: &'a [u8],
    /// Link the new process to the requester.
    pub link: bool,
    /// Monitor it (the monitor's reference is the request's tag).
    pub monitor: bool,
}

/// Who answers for a remote destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee {
    /// The node is this one: the name is local.
    Local,
    /// The id a pending call waits on: the proxy of the pid, or of the node for a name.
    /// When the connection is lost, every call waiting on one fails at once.
    Proxy(ActorId),
    /// Not distributed, or a proxy of a connection that is gone.
    NoNode,
}

/// The distribution layer's side of remote links and monitors.
pub trait RemoteSignals: Send + Sync {
    /// Local actor `from`, linked to the remote process `proxy`, exited with `reason`
    /// (ETF): send it an exit signal.
    fn exit(&self, proxy: ActorId, from: ActorId, reason: &[u8]);
    /// Monitor `mref` of the remote process `proxy` on local actor `from` fired with
    /// `reason` (ETF; `noproc` when the target did not exist): send it a `DOWN`.
    fn down(&self, proxy: ActorId, mref: MonitorRef, from: ActorId, reason: &[u8]);
    /// Local actor `from` sends `msg` (ETF) to `{name, node}`; `cast` wraps it as
    /// gen_server's `{'$gen_cast', Msg}`. Never waits (a connection is dialled in the
    /// background, messages kept in order meanwhile). `Local` if `node` is this node;
    /// `NoNode` if this host is not distributed or the send was refused.
    fn send(&self, from: ActorId, name: &str, node: &str, cast: bool, msg: &[u8]) -> RemoteSend;
    /// `Pid ! Msg` (or a cast) to the remote process `proxy`; false if its connection is
    /// gone.
    fn send_pid(&self, from: ActorId, proxy: ActorId, cast: bool, msg: &[u8]) -> bool;
    /// Which id a call to `to` waits on.
    fn callee(&self, to: RemoteDest<'_>) -> Callee;
    /// Sends `gen_server:call`'s request for the pending call `tag` of `from`; its reply
    /// comes back through [`System::reply_remote`](super::System::reply_remote). False if
    /// it could not be queued.
    fn call(&self, from: ActorId, to: RemoteDest<'_>, tag: u64, msg: &[u8]) -> bool;
    /// `link/1` from local `from` to remote `proxy` (already in `from`'s links); false if
    /// its connection is gone.
    fn link(&self, from: ActorId, proxy: ActorId) -> bool;
    /// `unlink/1` from local `from` to remote `proxy`.
    fn unlink(&self, from: ActorId, proxy: ActorId);
    /// `exit(Pid, Reason)` to remote `proxy`; false if its connection is gone.
    fn exit2(&self, from: ActorId, proxy: ActorId, reason: &[u8]) -> bool;
    /// `monitor(process, To)` from local `watcher` under `mref`. The `DOWN` — the
    /// target's exit, or `noconnection` (now, if the node cannot be reached) — is
    /// delivered by the distribution layer.
    fn monitor(&self, watcher: ActorId, mref: MonitorRef, to: RemoteDest<'_>);
    /// Removes a monitor made by [`RemoteSignals::monitor`]; false if it was not active.
    fn demonitor(&self, mref: MonitorRef) -> bool;
    /// `monitor_node(Node, On)` from local `watcher`; false if not distributed.
    fn monitor_node(&self, watcher: ActorId, node: &str, on: bool) -> bool;
    /// Local actor `watcher`, which monitored remote processes or nodes, is gone: its
    /// monitors are removed here and on their nodes (`DEMONITOR_P`), as BEAM removes a
    /// dead process's monitors, instead of waiting for targets that may never exit.
    fn watcher_gone(&self, watcher: ActorId);
    /// `spawn_request` from local `from` under `tag`: the outcome comes back to it as
    /// `{reply, Tag, {ok, Pid} | {error, Reason}}`; false if it could not be sent.
    fn spawn(&self, from: ActorId, tag: u64, spec: SpawnSpec<'_>) -> bool;
}

/// What became of a remote send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteSend {
    /// Queued for the node (delivery is not confirmed, as with Erlang's `!`).
    Sent,
    /// The node is this one: deliver locally.
    Local,
    /// Not distributed, or the message could not be queued.
    NoNode,
}

/// A host that is not a distributed node: no remote process can hold a link or monitor.
pub struct NoRemote;

impl RemoteSignals for NoRemote {
    fn exit(&self, _: ActorId, _: ActorId, _: &[u8]) {}
    fn down(&self, _: ActorId, _: MonitorRef, _: ActorId, _: &[u8]) {}
    fn send(&self, _: ActorId, _: &str, _: &str, _: bool, _: &[u8]) -> RemoteSend {
        RemoteSend::NoNode
    }
    fn send_pid(&self, _: ActorId, _: ActorId, _: bool, _: &[u8]) -> bool {
        false
    }
    fn callee(&self, _: RemoteDest<'_>) -> Callee {
        Callee::NoNode
    }
    fn call(&self, _: ActorId, _: RemoteDest<'_>, _: u64, _: &[u8]) -> bool {
        false
    }
    fn link(&self, _: ActorId, _: ActorId) -> bool {
        false
    }
    fn unlink(&self, _: ActorId, _: ActorId) {}
    fn exit2(&self, _: ActorId, _: ActorId, _: &[u8]) -> bool {
        false
    }
    fn monitor(&self, _: ActorId, _: MonitorRef, _: RemoteDest<'_>) {}
    fn demonitor(&self, _: MonitorRef) -> bool {
        false
    }
    fn watcher_gone(&self, _: ActorId) {}
    fn monitor_node(&self, _: ActorId, _: &str, _: bool) -> bool {
        false
    }
    fn spawn(&self, _: ActorId, _: u64, _: SpawnSpec<'_>) -> bool {
        false
    }
}

/// What a local actor addresses to a process on another node: each operation checks one
/// bit of the id (or whether a node was named) and hands over to the distribution layer.
impl System {
    /// `Pid ! Msg` to a remote pid, from local actor `from` (`ActorId(0)`: the host).
    pub(crate) fn send_proxy(
        &self,
        from: ActorId,
        proxy: ActorId,
        env: Envelope,
    ) -> Result<(), CallError> {
        let cast = env.kind == MsgKind::Cast;
        if self.remote.send_pid(from, proxy, cast, &env.bytes) {
            Ok(())
        } else {
            Err(CallError::NoProc(proxy.to_string()))
        }
    }

    /// `ctx.request` to a remote process: the waiter is in place (with its timer) before
    /// the request leaves, as for a local one; `None` if the node cannot be reached.
    pub(crate) fn request_remote(
        &self,
        from: ActorId,
        to: RemoteDest<'_>,
        bytes: super::mailbox::MsgBytes,
        timeout: std::time::Duration,
    ) -> Option<u64> {
        let callee = match self.remote.callee(to) {
            Callee::Local => {
                let RemoteDest::Name { name, .. } = to else {
                    return None;
                };
                return self.request(from, Target::Name(name), bytes, timeout);
            }
            Callee::NoNode => return None,
            Callee::Proxy(p) => p,
        };
        let tag = self.request_waiter(from, callee, timeout);
        if self.remote.call(from, to, tag, &bytes) {
            Some(tag)
        } else {
            self.drop_waiter(tag);
            None
        }
    }

    /// `link/1` to a remote pid. An unreachable node answers, as in Erlang, with an exit
    /// signal `noconnection` from that pid.
    pub(crate) fn link_proxy(&self, from: ActorId, proxy: ActorId) {
        self.add_link(from, proxy);
        if !self.remote.link(from, proxy) {
            self.registry
                .with_id(from, |a| a.links.lock().remove(&proxy));
            let _ = self.exit_signal(proxy, Target::Id(from), terms::noconnection());
        }
    }

    /// `unlink/1` from a remote pid.
    pub(crate) fn unlink_proxy(&self, from: ActorId, proxy: ActorId) {
        self.registry
            .with_id(from, |a| a.links.lock().remove(&proxy));
        self.remote.unlink(from, proxy);
    }

    /// `exit(Pid, Reason)` to a remote pid.
    pub(crate) fn exit_proxy(
        &self,
        from: ActorId,
        proxy: ActorId,
        reason: &[u8],
    ) -> Result<(), CallError> {
        if self.remote.exit2(from, proxy, reason) {
            Ok(())
        } else {
            Err(CallError::NoProc(proxy.to_string()))
        }
    }

    /// `monitor(process, To)` of a remote process. A node that cannot be reached answers
    /// with `DOWN` `noconnection` at once, as in Erlang.
    pub(crate) fn monitor_remote(&self, watcher: ActorId, to: RemoteDest<'_>) -> MonitorRef {
        let mref = MonitorRef(self.next_tag());
        match (self.remote.callee(to), to) {
            (Callee::Local, RemoteDest::Name { name, .. }) => {
                self.monitor_as(mref, watcher, Target::Name(name));
            }
            (Callee::Proxy(_), _) => {
                // Its exit will take the monitor down (`notify_links_and_monitors`).
                self.registry.with_id(watcher, |a| a.mark_remote_watcher());
                self.remote.monitor(watcher, mref, to)
            }
            _ => {
                self.deliver_down(watcher, mref, to, &terms::noconnection());
            }
        }
        mref
    }

    /// Delivers `{'DOWN', Ref, process, Who, Reason}` for a monitor of a remote process:
    /// `Who` is its pid, or `{Name, Node}` when it was monitored by name (as in Erlang).
    pub(crate) fn deliver_down(
        &self,
        watcher: ActorId,
        mref: MonitorRef,
        who: RemoteDest<'_>,
        reason: &[u8],
    ) {
        let msg = match who {
            RemoteDest::Pid(p) => terms::down(mref.0, p.0, reason),
            RemoteDest::Name { name, node } => terms::down_named(mref.0, name, node, reason),
        };
        let _ = self.send(Target::Id(watcher), Envelope::message(MsgKind::Info, msg));
    }

    /// `monitor_node(Node, On)`; false if this host is not distributed.
    pub(crate) fn monitor_node(&self, watcher: ActorId, node: &str, on: bool) -> bool {
        if on {
            self.registry.with_id(watcher, |a| a.mark_remote_watcher());
        }
        self.remote.monitor_node(watcher, node, on)
    }

    /// `ctx.spawn_remote`: the outcome comes back as `{reply, ReqId, ...}`; a node that
    /// cannot be reached answers `{error, noconnection}` (now, or when the dial fails).
    pub(crate) fn spawn_remote(&self, from: ActorId, spec: SpawnSpec<'_>) -> u64 {
        let tag = self.next_tag();
        if !self.remote.spawn(from, tag, spec) {
            self.deliver_spawn_failure(from, tag, "noconnection");
        }
        tag
    }

    /// `{reply, Tag, {error, Why}}` for a remote spawn that failed.
    pub(crate) fn deliver_spawn_failure(&self, to: ActorId, tag: u64, why: &str) {
        let reply = plugin_api::etf::to_vec(&(
            plugin_api::etf::Atom::new("error"),
            plugin_api::etf::Atom::new(why),
        ))
        .unwrap_or_default();
        self.deliver_reply(to, tag, &reply);
    }

    /// Delivers `{nodedown, Node}` to a `monitor_node` watcher.
    pub(crate) fn deliver_nodedown(&self, watcher: ActorId, node: &str) {
        let msg = terms::nodedown(node);
        let _ = self.send(Target::Id(watcher), Envelope::message(MsgKind::Info, msg));
    }
}
