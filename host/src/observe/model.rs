//! What the control socket reports: plain data, serialised as JSON on the wire, shared
//! by the server (which fills it from the running host), `host ctl` (which prints it) and
//! `host top` (which draws it).
//!
//! Field names are part of the `--json` interface: add fields, never rename them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::util::ids::ActorId;

/// One actor (`host ctl list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorInfo {
    /// Actor id (`<0.ID.0>` in Erlang terms).
    pub id: ActorId,
    /// Registered name, if any.
    pub name: Option<String>,
    /// Behaviour name.
    pub behaviour: String,
    /// Version of the behaviour it runs.
    pub version: String,
    /// `running` (a scheduler thread is in it or it is queued to run), `waiting` (idle,
    /// empty mailbox), `suspended` (held for a hot swap).
    pub status: String,
    /// Messages waiting in its mailbox.
    pub mailbox: usize,
    /// Messages it has handled since it started.
    pub handled: u64,
    /// How many times its supervisor restarted the child with this name (0 if it has no
    /// supervisor).
    pub restarts: u64,
}

/// One child in the supervision tree (`host ctl tree`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    /// Child name (for the root: the supervisor's name).
    pub name: String,
    /// `supervisor` or `worker`.
    pub kind: String,
    /// For a worker: its behaviour. For a supervisor: its strategy (`one_for_one`...).
    pub detail: String,
    /// Actor id of the running child, 0 if not running.
    pub actor: ActorId,
    /// `running`, `restarting`, `stopped`; for a supervisor: `busy` when its thread did
    /// not answer in time (it waits on a child's `init` or stop), its children unknown.
    pub status: String,
    /// Restarts of this child so far.
    pub restarts: u64,
    /// A supervisor's children, in start order.
    pub children: Vec<TreeNode>,
}

/// One actor in detail (`host ctl status`, OTP's `sys:get_status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorStatus {
    /// Actor id.
    pub id: ActorId,
    /// Registered name.
    pub name: Option<String>,
    /// Behaviour.
    pub behaviour: String,
    /// Version it runs.
    pub version: String,
    /// `waiting`, `running` or `suspended`.
    pub status: String,
    /// The callback running now (`handle_info`, ...), if one is.
    pub callback: Option<String>,
    /// For how long it has run, in milliseconds.
    pub running_ms: Option<u64>,
    /// Whether an operator suspended it (`host ctl suspend`).
    pub suspended_by_operator: bool,
    /// Messages waiting.
    pub mailbox: usize,
    /// Messages handled.
    pub handled: u64,
    /// Linked actors (and supervisors).
    pub links: Vec<ActorId>,
    /// Actors monitoring it.
    pub monitored_by: Vec<ActorId>,
    /// Whether exit signals arrive as messages.
    pub trap_exit: bool,
    /// Times its supervisor restarted it (0 if unsupervised).
    pub restarts: u64,
}

/// One behaviour version (`host ctl versions`); see [`VersionInfo`].
pub type VersionRow = VersionInfo;

/// One loaded version as tools see it (`host ctl versions`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VersionInfo {
    /// The library file.
    pub library: PathBuf,
    /// `name@version` of each behaviour it exports.
    pub behaviours: Vec<String>,
    /// Short content hash.
    pub hash: String,
    /// When it was loaded (seconds since the Unix epoch); 0 for pinned versions.
    pub loaded_at: u64,
    /// `current`, `retired` or `pinned`.
    pub status: String,
    /// Actors running it.
    pub actors: usize,
    /// Why it is pinned.
    pub reason: Option<String>,
    /// The private copy that is (or was) mapped.
    pub copy: PathBuf,
}

/// Host-wide counters (`host ctl stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds since the host started.
    pub uptime_s: f64,
    /// Live actors.
    pub actors: usize,
    /// Messages handled by all actors since the host started.
    pub messages: u64,
    /// Messages handled per second over the last sampling interval (about one second).
    pub messages_per_s: f64,
    /// Fraction of time each scheduler thread was not parked over the last interval, 0.0
    /// to 1.0: running actors, or spinning briefly for the next one (which costs a core
    /// all the same).
    pub utilisation: Vec<f64>,
    /// Actors queued to run right now.
    pub run_queue: usize,
    /// Reloads that swapped.
    pub reloads_ok: u64,
    /// Reloads rolled back by a failing `code_change`.
    pub reloads_rolled_back: u64,
    /// New versions refused before any actor was touched.
    pub reloads_rejected: u64,
    /// Actor crashes.
    pub crashes: u64,
}

/// A notable event kept for `host top`'s "last reloads and crashes" pane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentEvent {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The stable event name (`reload`, `crash`, `version_unloaded`...).
    pub event: String,
    /// What it was about (behaviour and versions, or actor).
    pub subject: String,
    /// The outcome (`ok`, `rolled_back`, `rejected`, a crash reason).
    pub outcome: String,
}

/// Everything `host top` shows, fetched in one request per refresh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Host-wide counters.
    pub stats: Stats,
    /// Every actor.
    pub actors: Vec<ActorInfo>,
    /// Root supervisors and their trees.
    pub tree: Vec<TreeNode>,
    /// Every loaded version.
    pub versions: Vec<VersionRow>,
    /// The most recent reloads, crashes and version changes, newest last.
    pub recent: Vec<RecentEvent>,
    /// The connected nodes of the cluster (empty when not distributed).
    #[serde(default)]
    pub nodes: Vec<NodeRow>,
}

/// What one node of the cluster did with `reload --all-nodes` / `rollback --all-nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSwap {
    /// The node (this host first).
    pub node: String,
    /// `ok`, `loaded`, `unchanged`, `rolled_back`, `rejected`, `skipped` (a BEAM node: no
    /// module `host`), or `failed` (no answer: the node went down or timed out).
    pub outcome: String,
    /// Why it did not succeed.
    pub reason: Option<String>,
}

/// One message to or from a traced actor (`host ctl trace`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Microseconds since the Unix epoch.
    pub at_us: u64,
    /// The traced actor.
    pub actor: ActorId,
    /// `in` (handled by the actor) or `out` (sent by it).
    pub direction: String,
    /// `call`, `cast`, `info`, `reply` or `send_after`.
    pub kind: String,
    /// The other side: the caller for an incoming call, the destination of an outgoing
    /// message (a name or `<0.ID.0>`), empty when unknown.
    pub peer: String,
    /// The message in Erlang syntax.
    pub message: String,
    /// Events dropped just before this one because the subscriber fell behind (its
    /// queue is bounded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A connected node, as `host ctl nodes` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// The peer's node name.
    pub node: String,
    /// `in` (it connected to us) or `out` (we dialled it).
    pub direction: String,
    /// Whether the peer is a hidden node.
    pub hidden: bool,
    /// Seconds since the connection came up.
    pub up_secs: u64,
    /// Frames received (ticks excluded) and their bytes.
    pub msgs_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames queued for the peer and their bytes.
    pub msgs_out: u64,
    /// Bytes queued for the peer.
    pub bytes_out: u64,
    /// Frames waiting in the outbound queue now.
    pub queue: usize,
}
