//! # host
//!
//! A long-running host for Erlang-style actors whose behaviours live in `cdylib` plugins
//! and are replaced while they run. The `host` binary is a thin shell over this library;
//! tests and tools drive the same API.
//!
//! One concern per module:
//! - [`runtime`]: the [`Host`] — spawning, sending, calls with timeouts, reload entry point;
//! - [`actor`], [`mailbox`], [`registry`], [`scheduler`], [`timer`]: the actor system;
//! - [`loader`], [`watcher`], [`swap`], [`versions`]: loading versions, hot-swapping them,
//!   and retiring or unloading the old ones;
//! - [`events`], [`logging`], [`config`]: what the host reports and how it is set up;
//! - `ffi`: the functions plugins call back into.

#![warn(missing_docs)]

pub mod actor;
pub mod config;
pub mod control;
pub mod events;
mod ffi;
pub mod loader;
pub mod logging;
pub mod mailbox;
pub mod object;
pub mod observe;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod supervisor;
pub mod swap;
mod term;
pub mod timer;
pub mod versions;
pub mod watcher;

pub use events::{HostEvent, ReloadOutcome, ReloadReport};
pub use runtime::{
    CallError, Host, HostError, HostOptions, SpawnError, Target, DEFAULT_CALL_TIMEOUT,
};
pub use versions::{VersionFate, VersionInfo, VersionPolicy, VersionReport};
