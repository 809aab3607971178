//! Operating a running host: the control socket (`host ctl`), and the live view
//! (`host top`) built on it. The leaf of the crate: it uses the [`Host`](crate::Host)
//! facade and the operator model ([`crate::observe::model`]); nothing imports it.
//!
//! - [`protocol`]: requests and responses, one JSON object per line on a Unix socket;
//! - [`server`]: the listener inside the host, its permission checks and its sampler;
//! - [`client`]: what `host ctl` and `host top` use to talk to it;
//! - [`ctl`]: the `host ctl` subcommands and how they print;
//! - [`top`]: the terminal view.

pub mod client;
pub mod ctl;
pub mod protocol;
pub mod server;
pub mod top;

/// The operator's model types, where they used to live.
pub use crate::observe::model;
