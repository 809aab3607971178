//! # plugin-api
//!
//! The one crate an actor plugin depends on. A plugin is a `cdylib` that implements
//! [`Behaviour`] for one or more types and exports them with one line:
//!
//! ```ignore
//! plugin_api::export_behaviours!(Counter);
//! ```
//!
//! The host loads it, starts actors of its behaviours, and when the library file changes
//! loads the new version beside the old one and migrates every actor's state through
//! [`Behaviour::code_change`] — the Erlang/OTP `gen_server` model, across a stable ABI.
//!
//! - [`behaviour`]: the callbacks an author writes (`init`, `handle_call`, `handle_cast`,
//!   `handle_info`, `code_change`, `downgrade`, `terminate`).
//! - [`ctx`]: what a callback can do (send, reply, request with timeout, timers, logging).
//! - [`etf`]: the Erlang External Term Format codec all messages and states travel in.
//! - [`abi`]: the `#[repr(C)]` types both sides of the boundary share (authors never use
//!   them directly).

#![warn(missing_docs)]

pub mod abi;
pub mod behaviour;
pub mod ctx;
pub mod etf;
#[doc(hidden)]
pub mod glue;

pub use behaviour::{Behaviour, BoxError, CallResult, EtfRef, Next, NoMessage, OldVsn, Reason};
pub use ctx::{
    Ctx, Level, MonitorRef, Pid, ReplyTo, ReqId, SendError, SpawnOpts, StartChildReply, TimerRef,
    To,
};
pub use serde::{Deserialize, Serialize};

/// Re-exports the export macro needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}
