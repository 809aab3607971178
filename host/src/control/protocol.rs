//! The control protocol: one JSON request per line from the client, then one JSON
//! response line (or, for `trace`, one line per traced message until the client hangs up).
//!
//! ```text
//! -> {"op":"call","to":"counter","etf":[131,104,2,...],"timeout_ms":5000}
//! <- {"ok":{"reply":"{count,3}"}}
//! <- {"error":"noproc: no actor counter"}
//! ```
//!
//! Terms travel as ETF bytes (the client parses Erlang syntax, so a malformed term is
//! refused before the host is contacted) and come back already printed in Erlang syntax.

use serde::{Deserialize, Serialize};

/// A request from `host ctl` or `host top`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Every actor.
    List,
    /// Send a message (an info message, like Erlang's `!`).
    Send {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
        /// The message, ETF.
        etf: Vec<u8>,
    },
    /// Cast a message (`gen_server:cast`: handled by `handle_cast`).
    Cast {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
        /// The message, ETF.
        etf: Vec<u8>,
    },
    /// Call and wait for the reply.
    Call {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
        /// The request, ETF.
        etf: Vec<u8>,
        /// How long to wait for the reply.
        timeout_ms: u64,
    },
    /// An actor's state, exported through its version.
    State {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// Every loaded version.
    Versions,
    /// The connected nodes (distribution).
    Nodes,
    /// Load a behaviour's library now, from its watched file or another one.
    Reload {
        /// A behaviour of the library.
        behaviour: String,
        /// The file to load instead of the watched one.
        path: Option<String>,
        /// `Extra` for every `code_change`, ETF (default `[]`).
        #[serde(default)]
        extra: Option<Vec<u8>>,
        /// Then push the same bytes to every connected node (OTP's `nl/1`); answers one
        /// `NodeSwap` per node.
        #[serde(default)]
        all_nodes: bool,
    },
    /// Swap a behaviour's library back to its previous retained version.
    Rollback {
        /// A behaviour of the library.
        behaviour: String,
        /// `Extra` for `downgrade` and `code_change`, ETF (default `[]`).
        #[serde(default)]
        extra: Option<Vec<u8>>,
        /// Then roll back on every connected node too.
        #[serde(default)]
        all_nodes: bool,
    },
    /// Hold an actor at its next message boundary (`sys:suspend`).
    Suspend {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// Let a suspended actor run again (`sys:resume`).
    Resume {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// One actor in detail (`sys:get_status`).
    Status {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// The supervision trees.
    Tree,
    /// Follow an actor's messages.
    Trace {
        /// Registered name, `<0.ID.0>` or a bare id.
        to: String,
    },
    /// Host-wide counters and rates.
    Stats,
    /// Everything `host top` shows.
    Snapshot,
    /// `request`, answered by another host of the cluster (`host ctl --node N ...`):
    /// carried over the distribution connection, so no second socket is needed.
    Forward {
        /// The node, `name@host`.
        node: String,
        /// What to ask it (anything but `Trace`).
        request: Box<Request>,
    },
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// It worked; the value depends on the request.
    Ok(serde_json::Value),
    /// It did not; one line saying why.
    Error(String),
    /// One traced message (a `trace` request gets these until the client hangs up).
    Trace(crate::observe::model::TraceEvent),
}

/// What a reload or rollback did, as `host ctl` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapOutcome {
    /// `ok`, `rolled_back`, `rejected`, `loaded` or `unchanged`.
    pub outcome: String,
    /// Behaviour, versions and actors migrated, one per behaviour of the library.
    pub behaviours: Vec<SwapRow>,
    /// How long the actors were suspended.
    pub pause_us: u64,
    /// Why it did not succeed.
    pub reason: Option<String>,
}

/// One behaviour's part in a swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwapRow {
    /// Behaviour name.
    pub behaviour: String,
    /// Version before.
    pub from: String,
    /// Version after (or offered).
    pub to: String,
    /// Actors migrated.
    pub actors: usize,
}

impl SwapOutcome {
    /// The report of a host event from a reload or load.
    pub fn from_event(ev: &crate::HostEvent) -> SwapOutcome {
        use crate::observe::events::LoadOutcome;
        match ev {
            crate::HostEvent::Reload(r) => SwapOutcome {
                outcome: r.outcome.as_str().into(),
                behaviours: r
                    .behaviours
                    .iter()
                    .map(|b| SwapRow {
                        behaviour: b.behaviour.clone(),
                        from: b.from.clone(),
                        to: b.to.clone(),
                        actors: b.actors,
                    })
                    .collect(),
                pause_us: r.pause_us,
                reason: r.reason.clone(),
            },
            crate::HostEvent::Load {
                outcome,
                behaviours,
                reason,
                ..
            } => SwapOutcome {
                outcome: match outcome {
                    LoadOutcome::Loaded { .. } => "loaded",
                    LoadOutcome::Unchanged => "unchanged",
                    LoadOutcome::Rejected => "rejected",
                }
                .into(),
                behaviours: behaviours
                    .iter()
                    .map(|b| SwapRow {
                        behaviour: b.clone(),
                        from: String::new(),
                        to: String::new(),
                        actors: 0,
                    })
                    .collect(),
                pause_us: 0,
                reason: reason.clone(),
            },
            other => SwapOutcome {
                outcome: "rejected".into(),
                behaviours: Vec::new(),
                pause_us: 0,
                reason: Some(format!("unexpected event {other:?}")),
            },
        }
    }

    /// Whether the swap (or first load) happened.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome.as_str(), "ok" | "loaded" | "unchanged")
    }
}
