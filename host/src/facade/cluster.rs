//! Code loaded on every node (OTP's `c:nl/1`): `reload --all-nodes` swaps here, then sends
//! the library's bytes to every connected node through `rpc` (`host:load/2`), and each
//! host loads and swaps them through its own all-or-nothing path; `rollback --all-nodes`
//! likewise. Only nodes that passed the cookie handshake are connected, so only they can
//! push code, and a pushed library goes through every load check a local file does.

use std::path::Path;
use std::time::Duration;

use plugin_api::etf::Term;

use super::Host;
use crate::code::ReloadError;
use crate::observe::model::NodeSwap;
use crate::observe::HostEvent;

/// How long one node may take to load and swap a pushed library.
const PUSH_TIMEOUT: Duration = Duration::from_secs(120);

fn local_row(node: &str, ev: &HostEvent) -> NodeSwap {
    let (outcome, reason) = match ev {
        HostEvent::Reload(r) => (r.outcome.as_str().to_string(), r.reason.clone()),
        HostEvent::Load {
            outcome, reason, ..
        } => (
            match outcome {
                crate::observe::events::LoadOutcome::Loaded { .. } => "loaded",
                crate::observe::events::LoadOutcome::Unchanged => "unchanged",
                crate::observe::events::LoadOutcome::Rejected => "rejected",
            }
            .to_string(),
            reason.clone(),
        ),
        other => ("rejected".to_string(), Some(format!("{other:?}"))),
    };
    NodeSwap {
        node: node.to_string(),
        outcome,
        reason,
    }
}

/// A peer's answer to `host:load/2` or `host:rollback/1`.
fn remote_row(node: &str, answer: Result<Term, String>) -> NodeSwap {
    let text = |t: &Term| match t {
        Term::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    };
    let (outcome, reason) = match answer {
        Ok(Term::Atom(a)) if a == "ok" => ("ok".to_string(), None),
        Ok(Term::Tuple(e)) if e.len() == 2 => match &e[0] {
            Term::Atom(a) if a == "rolled_back" => ("rolled_back".to_string(), Some(text(&e[1]))),
            _ => ("rejected".to_string(), Some(text(&e[1]))),
        },
        Ok(other) => ("rejected".to_string(), Some(other.to_string())),
        // A BEAM node has no module `host`: it cannot take our libraries.
        Err(e) if e.starts_with("error:undef") => {
            ("skipped".to_string(), Some("not a host".to_string()))
        }
        Err(e) => ("failed".to_string(), Some(e)),
    };
    NodeSwap {
        node: node.to_string(),
        outcome,
        reason,
    }
}

impl Host {
    /// Installs how control requests from other hosts are answered (the control server
    /// does, when it starts).
    pub fn set_ctl_handler(&self, handler: super::services::CtlHandler) {
        let _ = self.ctl_handler.set(handler);
    }

    /// A control request (JSON) answered by `node`'s control server, over the
    /// distribution connection; its answer (JSON).
    pub fn forward_ctl(&self, node: &str, json: &[u8]) -> Result<Vec<u8>, String> {
        let Some(n) = self.node.as_ref() else {
            return Err("this host is not a distributed node (start it with --name)".into());
        };
        let call = ("host", "ctl", vec![Term::Binary(json.to_vec())]);
        match n.rpc(node, call, PUSH_TIMEOUT) {
            Ok(Term::Binary(out)) => Ok(out),
            Ok(Term::Tuple(e)) if e.len() == 2 => Err(match &e[1] {
                Term::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                other => other.to_string(),
            }),
            Ok(other) => Err(format!("{node} answered {other}")),
            Err(e) => Err(format!("{node}: {e}")),
        }
    }

    /// Reloads `behaviour` here (from `file`, or its own file), then on every connected
    /// node with the same bytes; one row per node, this host first. A node that goes down
    /// meanwhile reports `failed` (`noconnection`); the others still report.
    pub fn reload_all_nodes(
        &self,
        behaviour: &str,
        file: Option<&Path>,
    ) -> Result<Vec<NodeSwap>, ReloadError> {
        let source = match file {
            Some(f) => f.to_path_buf(),
            None => self.code.library_of(behaviour)?,
        };
        let ev = self.reload_behaviour(behaviour, file)?;
        let me = self.node_name().unwrap_or("local").to_string();
        let mut rows = vec![local_row(&me, &ev)];
        let Ok(bytes) = std::fs::read(&source) else {
            return Ok(rows);
        };
        rows.extend(self.on_every_node(|| {
            (
                "host",
                "load",
                vec![Term::atom(behaviour), Term::Binary(bytes.clone())],
            )
        }));
        Ok(rows)
    }

    /// [`Host::rollback`] here, then on every connected node.
    pub fn rollback_all_nodes(&self, behaviour: &str) -> Result<Vec<NodeSwap>, ReloadError> {
        let ev = self.rollback(behaviour)?;
        let me = self.node_name().unwrap_or("local").to_string();
        let mut rows = vec![local_row(&me, &ev)];
        rows.extend(self.on_every_node(|| ("host", "rollback", vec![Term::atom(behaviour)])));
        Ok(rows)
    }

    /// Runs one rpc per connected node, all at once, and collects the rows by node name.
    fn on_every_node<'a>(&self, call: impl Fn() -> Call<'a> + Sync) -> Vec<NodeSwap> {
        let Some(node) = self.node.as_ref() else {
            return Vec::new();
        };
        let peers = node.nodes();
        std::thread::scope(|s| {
            let handles: Vec<_> = peers
                .iter()
                .map(|p| {
                    let call = &call;
                    s.spawn(move || remote_row(&p.node, node.rpc(&p.node, call(), PUSH_TIMEOUT)))
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    }
}

/// One rpc: module, function, arguments.
type Call<'a> = (&'a str, &'a str, Vec<Term>);
