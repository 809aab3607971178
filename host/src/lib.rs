//! # host
//!
//! A long-running host for Erlang-style actors whose behaviours live in `cdylib` plugins
//! and are replaced while they run. The `host` binary is a thin shell over this library;
//! tests and tools drive the same API.
//!
//! The layers, bottom up — each uses only those below it (the README's "How the code is
//! laid out" has the rules and the grep that checks them):
//! - [`util`]: ids, the few terms the host builds, the ELF check, the content hash;
//! - [`observe`]: typed events and the log, counters, traces, the operator's model types;
//! - [`system`]: the actor system — actors, mailboxes, registry, scheduler, timers, calls,
//!   links, the run loop, the FFI glue, and `sys` (suspend, state, trace);
//! - [`dist`]: the distribution node (EPMD, handshake, connections, remote links and
//!   monitors), on `system`;
//! - [`code`]: the code server — loader, versions, swap, watcher;
//! - [`supervisor`]: specs, pure strategy decisions, the supervision threads;
//! - the facade, [`Host`]: assembles the layers;
//! - [`config`]: TOML to specs and options; [`control`]: the operator's socket, `ctl`
//!   and `top`; [`boot`]: a config to a running host — the leaves, which nothing in the
//!   layers above imports.

#![warn(missing_docs)]

pub mod boot;
pub mod code;
pub mod config;
pub mod control;
pub mod dist;
mod facade;
pub mod observe;
pub mod supervisor;
pub mod system;
pub mod util;

pub use code::versions::{VersionFate, VersionInfo, VersionPolicy, VersionReport};
pub use code::ReloadError;
pub use facade::{Host, HostError, HostOptions, StatsSampler, DEFAULT_CALL_TIMEOUT};
pub use observe::events::{HostEvent, ReloadOutcome, ReloadReport};
pub use supervisor::StartError;
pub use system::{CallError, SpawnError, SysError, Target};
pub use util::ids::ActorId;
