//! An actor's life: it is born ([`spawn`]: `init` through the plugin, registered), runs
//! ([`run`]: the loop a scheduler thread calls, one batch of messages at a time), and ends
//! ([`exit`]: `terminate`, its state freed, its name released, its callers, links and
//! monitors told). The numbered invariants of `system::actor` are cited where they hold.

mod exit;
mod run;
mod spawn;

pub(crate) use spawn::Birth;
