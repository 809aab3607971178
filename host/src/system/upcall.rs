//! What the actor system asks of the layer above it. The system never calls upward: it
//! sends one of these on a channel a supervision thread reads (a child's exit on the one
//! of its supervisor's thread), so no lock or callback of the system is held
//! while a supervisor decides or a spawn runs.

use crate::util::ids::ActorId;

/// A request from the actor system to the supervision layer.
pub(crate) enum Upcall {
    /// An actor linked to a supervisor died (`reason` is ETF); sent on the channel that
    /// supervisor was registered with, which is its thread's alone (so it names no
    /// supervisor). A nested supervisor that gives up sends one of these, its own id as
    /// `child`, on its parent's channel.
    ChildExit {
        child: ActorId,
        reason: Vec<u8>,
        /// `reason` as text (made once, for the actor's own event).
        text: String,
    },
    /// `ctx.start_child`: start a child of the `simple_one_for_one` supervisor named `sup`;
    /// answer `requester` with `{reply, Tag, StartChildReply}`.
    StartChild {
        sup: String,
        args: Vec<u8>,
        requester: ActorId,
        tag: u64,
    },
    /// `ctx.spawn_link`: start an actor linked to `requester`; answer as above.
    SpawnLink {
        behaviour: String,
        name: Option<String>,
        args: Vec<u8>,
        requester: ActorId,
        tag: u64,
    },
}
