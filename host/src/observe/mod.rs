//! What the host tells the world: typed events (every stable log event is one, emitted
//! from [`events`]), the log output, the counters and traces an operator reads, and the
//! operator's model types. This layer sits just above `util`: every layer above reports
//! through an [`Observer`] handle, and nothing here reaches back into them.

pub mod events;
pub mod logging;
pub mod model;
mod observer;

pub use events::{Event, HostEvent, LoadOutcome, ReloadOutcome, ReloadReport, SupervisorEvent};
pub use observer::Observer;

use plugin_api::abi::MsgKind;

/// The stable name of a message kind in traces and logs.
pub(crate) fn kind_name(kind: MsgKind) -> &'static str {
    match kind {
        MsgKind::Call => "call",
        MsgKind::Cast => "cast",
        _ => "info",
    }
}
