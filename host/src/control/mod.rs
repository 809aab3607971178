//! Operating a running host: the control socket (`host ctl`), and the live view
//! (`host top`) built on it.
//!
//! - [`model`]: what the host reports (actors, tree, versions, stats), as plain data;
//! - [`protocol`]: requests and responses, one JSON object per line on a Unix socket;
//! - [`server`]: the listener inside the host, its permission checks and its sampler;
//! - [`client`]: what `host ctl` and `host top` use to talk to it;
//! - [`syntax`]: Erlang term syntax on the command line, ETF on the wire;
//! - [`top`]: the terminal view.

pub mod client;
pub mod ctl;
pub mod model;
pub mod protocol;
pub mod server;
pub mod top;
