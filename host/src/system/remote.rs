//! What the system asks of the distribution layer above it, when a link or monitor held
//! by a process on another node fires.
//!
//! A process on another node is known to the system only as a *proxy id*: an [`ActorId`]
//! with [`REMOTE`](crate::util::ids::REMOTE) set, handed out by the distribution layer.
//! It sits in an actor's links and monitors like a local id; when the actor dies, the
//! system calls this hook instead of looking the id up in the registry. Nothing here runs
//! per message: only links, monitors and exits of actors that a remote process watches.

use crate::util::ids::{ActorId, MonitorRef};

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
}
