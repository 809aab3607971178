//! Ids, shared with `plugin-api` so the host and a plugin mean the same thing by them.
//!
//! An actor's id is `plugin_api::Pid` everywhere in the host (printed `<0.N.0>`, by its
//! `Display`, here and only here); a call's tag is a [`ReqId`]; a monitor a [`MonitorRef`];
//! a timer an actor armed a [`TimerRef`]. Ids are never reused while the host runs.

use std::sync::atomic::{AtomicU64, Ordering};

pub use plugin_api::{MonitorRef, Pid as ActorId, ReqId, TimerRef};

/// The bit that marks an id as a *proxy* for a process on another node (handed out by the
/// distribution layer); local ids count up from 1 and never reach it.
pub const REMOTE: u64 = 1 << 63;

/// Whether `id` stands for a process on another node.
pub fn is_remote(id: ActorId) -> bool {
    id.0 & REMOTE != 0
}

/// Where fresh ids come from: one counter for actors (and supervisors, which share their
/// id space so a link can point at either), one for tags and references.
pub(crate) struct IdSource {
    actors: AtomicU64,
    tags: AtomicU64,
}

impl Default for IdSource {
    fn default() -> Self {
        IdSource {
            actors: AtomicU64::new(1),
            tags: AtomicU64::new(1),
        }
    }
}

impl IdSource {
    /// A fresh actor (or supervisor) id.
    pub(crate) fn actor(&self) -> ActorId {
        ActorId(self.actors.fetch_add(1, Ordering::Relaxed))
    }

    /// A fresh tag for a call, a request, a monitor or an interval timer.
    pub(crate) fn tag(&self) -> u64 {
        self.tags.fetch_add(1, Ordering::Relaxed)
    }
}

/// An actor's id as operators print it, `<0.N.0>`; the empty string for "nobody" (0).
pub fn pid_text(id: ActorId) -> String {
    if id.0 == 0 {
        String::new()
    } else {
        id.to_string()
    }
}
