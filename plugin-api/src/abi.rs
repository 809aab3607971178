//! The stable ABI between the host and a plugin.
//!
//! Everything in this module crosses the `cdylib` boundary, so every type is `#[repr(C)]`
//! (or `repr(u8)` / `repr(transparent)`) and derives [`StableAbi`]: when the host loads a
//! library, `abi_stable` compares the layout the plugin was compiled with against the
//! host's, field by field, and refuses a mismatch before any plugin code runs.
//!
//! Plugin authors never touch these types: [`export_behaviours!`](crate::export_behaviours)
//! generates them, and the host wraps them. They are public because both sides of the
//! boundary must name them.
//!
//! Ownership rules (the host relies on these, see DESIGN.md "Loading a version"):
//! - A [`StatePtr`] is made and freed only by the version that made it
//!   ([`BehaviourDesc::drop_state`] / [`BehaviourDesc::terminate`]).
//! - An [`Outcome`] returned by the plugin carries an `RVec` whose vtable points into the
//!   plugin; the host copies the bytes out and drops it while the version is loaded.
//! - Strings in [`BehaviourDesc`] point into the plugin's read-only data; the host copies
//!   them at load time and never keeps the `RStr`.

use core::ffi::c_void;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RSlice, RStr, RVec};
use abi_stable::{package_version_strings, StableAbi};

/// Version of the calling convention below (callback signatures and their meaning).
///
/// `abi_stable` already checks type layouts and the `plugin-api` crate version; this
/// number is bumped when the *meaning* of a field changes without its layout changing,
/// which no layout check can see — and with every change to the callbacks, so the
/// refusal names the calling convention even where the layout check would also catch it.
///
/// History: 4 added [`BehaviourDesc::downgrade`] (OTP's `code_change({down, Vsn}, ...)`
/// run by the newer version on a rollback); 5 added [`Dest::node`] (`To::remote`, a
/// registered name on another node of the cluster); 6 made a `Pid` in a message an
/// Erlang pid (`NEW_PID_EXT`, see [`Pid`](crate::Pid)), let `request`, `link`, `monitor`
/// and `exit` reach processes on other nodes, and added [`HostApi::monitor_node`] and
/// [`HostApi::spawn_remote`].
pub const ABI_VERSION: u32 = 6;

/// An actor's state, as an opaque pointer owned by the behaviour version that created it.
///
/// The host stores it and hands it back to the same version; only that version knows the
/// concrete type behind it.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatePtr(pub *mut c_void);

impl StatePtr {
    /// A null state, used before `init` has written one.
    pub const NULL: StatePtr = StatePtr(core::ptr::null_mut());
}

// SAFETY: a `StatePtr` is only dereferenced by the plugin version that made it, and the
// host guarantees at most one callback runs on a given actor's state at a time (the
// actor's core lock). Moving the pointer between scheduler threads is therefore sound as
// long as the state type itself is `Send`, which `Behaviour::State` requires.
unsafe impl Send for StatePtr {}

/// Who is waiting for the answer to a call: the caller's id and a tag unique to this call.
///
/// `caller == 0` means a caller outside the actor system (the host API, a test, the CLI).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FromRaw {
    /// Actor id of the caller, or 0 for an external caller.
    pub caller: u64,
    /// Unique request tag; the host uses it to route (or drop) the reply.
    pub tag: u64,
}

/// Which callback a message is for, like `gen_server`'s call / cast / plain message.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    /// A request that expects a reply (`handle_call`).
    Call = 0,
    /// A one-way request (`handle_cast`).
    Cast = 1,
    /// Any other message: timers, replies to async requests (`handle_info`).
    Info = 2,
}

/// What a callback reports back to the host.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeCode {
    /// Carry on. `detail` is empty, or the exported state for `export_state` and
    /// `downgrade`.
    Ok = 0,
    /// The callback asked to stop; `detail` is the reason as ETF.
    Stop = 1,
    /// The callback panicked; `detail` is the panic message (UTF-8).
    Panic = 2,
    /// The message (or init args, or old state) did not decode; `detail` says why (UTF-8).
    BadMessage = 3,
    /// The callback returned an error (`init`, `code_change`, `export_state`,
    /// `downgrade`); UTF-8 text.
    Error = 4,
}

/// A callback's result: a code plus bytes whose meaning depends on the code.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Outcome {
    /// What happened.
    pub code: OutcomeCode,
    /// Reason, message or payload (see [`OutcomeCode`]).
    pub detail: RVec<u8>,
}

impl Outcome {
    /// A successful outcome with no payload (no allocation).
    pub fn ok() -> Self {
        Outcome {
            code: OutcomeCode::Ok,
            detail: RVec::new(),
        }
    }

    /// An outcome with a code and a UTF-8 or ETF payload.
    pub fn with(code: OutcomeCode, detail: impl Into<Vec<u8>>) -> Self {
        Outcome {
            code,
            detail: RVec::from(detail.into()),
        }
    }
}

/// Result of sending through the host.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendCode {
    /// Queued (delivery is asynchronous; the receiver may still die before handling it).
    Ok = 0,
    /// No actor has that id or name.
    NoProc = 1,
    /// The request was malformed (for example a reply to an unknown or expired tag).
    BadArg = 2,
}

/// Where a message goes: a registered name if `name` is not empty, else the actor id.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Dest<'a> {
    /// Actor id (used when `name` is empty).
    pub id: u64,
    /// Registered name, or empty.
    pub name: RStr<'a>,
    /// The node of a registered name on another node (`To::remote`), or empty.
    pub node: RStr<'a>,
}

/// The functions the host offers to a running callback.
///
/// `data` is the host's per-callback context (which actor is running); plugins pass it
/// back unchanged and never look inside.
#[repr(C)]
#[derive(StableAbi)]
pub struct HostApi {
    /// The running actor's id.
    pub self_id: extern "C" fn(data: *const c_void) -> u64,
    /// Send a message of the given kind (`Cast` or `Info`) to `to`.
    pub send: extern "C" fn(
        data: *const c_void,
        to: Dest<'_>,
        kind: MsgKind,
        msg: RSlice<'_, u8>,
    ) -> SendCode,
    /// Answer a call identified by `from`.
    pub reply: extern "C" fn(data: *const c_void, from: FromRaw, msg: RSlice<'_, u8>) -> SendCode,
    /// Send a call to `to`; the answer (or a timeout) arrives later as an info message.
    /// Writes the request id to `req` on success.
    pub request: extern "C" fn(
        data: *const c_void,
        to: Dest<'_>,
        msg: RSlice<'_, u8>,
        timeout_ms: u64,
        req: &mut u64,
    ) -> SendCode,
    /// Deliver `msg` as an info message to `to` after `delay_ms`; writes the timer ref.
    pub send_after: extern "C" fn(
        data: *const c_void,
        to: Dest<'_>,
        msg: RSlice<'_, u8>,
        delay_ms: u64,
        timer: &mut u64,
    ) -> SendCode,
    /// Cancel a timer; true if it had not fired yet.
    pub cancel_timer: extern "C" fn(data: *const c_void, timer: u64) -> bool,
    /// The id registered under `name`, or 0.
    pub whereis: extern "C" fn(data: *const c_void, name: RStr<'_>) -> u64,
    /// Emit a log line through the host's subscriber (level: 1 error .. 5 trace).
    pub log: extern "C" fn(data: *const c_void, level: u8, msg: RStr<'_>),
    /// Link the running actor and `to`, both ways (`link/1`).
    pub link: extern "C" fn(data: *const c_void, to: Dest<'_>) -> SendCode,
    /// Remove a link, both ways (`unlink/1`).
    pub unlink: extern "C" fn(data: *const c_void, to: Dest<'_>) -> SendCode,
    /// Monitor `to` (`monitor(process, To)`); writes the reference. A dead target gets a
    /// `DOWN` with `noproc` at once.
    pub monitor: extern "C" fn(data: *const c_void, to: Dest<'_>, mref: &mut u64) -> SendCode,
    /// Remove a monitor; true if it was active.
    pub demonitor: extern "C" fn(data: *const c_void, mref: u64) -> bool,
    /// Set whether exit signals arrive as `{'EXIT', From, Reason}` messages; returns the
    /// previous setting (`process_flag(trap_exit, On)`).
    pub trap_exit: extern "C" fn(data: *const c_void, on: bool) -> bool,
    /// Send an exit signal with an ETF reason to `to` (`exit/2`).
    pub exit: extern "C" fn(data: *const c_void, to: Dest<'_>, reason: RSlice<'_, u8>) -> SendCode,
    /// Ask the supervisor named `sup` (a `simple_one_for_one`) to start a child with ETF
    /// `args`; the answer arrives as `{reply, Req, {ok, Pid} | {error, Text}}`.
    pub start_child: extern "C" fn(
        data: *const c_void,
        sup: RStr<'_>,
        args: RSlice<'_, u8>,
        req: &mut u64,
    ) -> SendCode,
    /// Start an actor of `behaviour` (registered as `name` unless empty) linked to the
    /// caller; the answer arrives as `{reply, Req, {ok, Pid} | {error, Text}}`.
    pub spawn_link: extern "C" fn(
        data: *const c_void,
        behaviour: RStr<'_>,
        name: RStr<'_>,
        args: RSlice<'_, u8>,
        req: &mut u64,
    ) -> SendCode,
    /// Deliver `msg` to `to` every `every_ms` until cancelled (`timer:send_interval/3`);
    /// writes the timer ref, which `cancel_timer` accepts.
    pub send_interval: extern "C" fn(
        data: *const c_void,
        to: Dest<'_>,
        msg: RSlice<'_, u8>,
        every_ms: u64,
        timer: &mut u64,
    ) -> SendCode,
    /// `monitor_node(Node, Flag)`: with `on`, deliver `{nodedown, Node}` once when the
    /// connection to `node` is lost or cannot be made; without, remove one such monitor.
    pub monitor_node: extern "C" fn(data: *const c_void, node: RStr<'_>, on: bool) -> SendCode,
    /// `erlang:spawn_request(Node, Module, Function, Args, Opts)`: `args` is the argument
    /// list (ETF); `flags` bit 0 links, bit 1 monitors. Writes the request id; the outcome
    /// arrives as `{reply, ReqId, {ok, Pid}}` or `{reply, ReqId, {error, Reason}}`.
    pub spawn_remote: extern "C" fn(
        data: *const c_void,
        node: RStr<'_>,
        module: RStr<'_>,
        function: RStr<'_>,
        args: RSlice<'_, u8>,
        flags: u8,
        req: &mut u64,
    ) -> SendCode,
}

/// What a callback receives: the host's function table and its context pointer.
#[repr(C)]
#[derive(StableAbi)]
pub struct RawCtx<'a> {
    /// The host's functions.
    pub api: &'a HostApi,
    /// Opaque host context, passed back to every `api` function.
    pub data: *const c_void,
}

/// One behaviour exported by a plugin: its identity and its callbacks.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct BehaviourDesc {
    /// Behaviour name, unique in the host (actors are started by this name).
    pub name: RStr<'static>,
    /// Version string, shown in reload events and passed to `code_change` as `old_vsn`.
    pub version: RStr<'static>,
    /// `init(args, ctx, out_state)`: builds the state from ETF args.
    pub init: extern "C" fn(args: RSlice<'_, u8>, ctx: &RawCtx<'_>, out: &mut StatePtr) -> Outcome,
    /// `handle(state, kind, from, msg, ctx)`: one entry point for call, cast and info.
    pub handle: extern "C" fn(
        state: StatePtr,
        kind: MsgKind,
        from: FromRaw,
        msg: RSlice<'_, u8>,
        ctx: &RawCtx<'_>,
    ) -> Outcome,
    /// `export_state(state)`: the state as ETF in `detail`.
    pub export_state: extern "C" fn(state: StatePtr) -> Outcome,
    /// `code_change(old_vsn, down, old_state, extra, out_state)`: `down` is true on a
    /// rollback to this (older) version, OTP's `{down, Vsn}`; `old_state` is then what
    /// the newer version's `downgrade` wrote.
    pub code_change: extern "C" fn(
        old_vsn: RStr<'_>,
        down: bool,
        old_state: RSlice<'_, u8>,
        extra: RSlice<'_, u8>,
        out: &mut StatePtr,
    ) -> Outcome,
    /// `terminate(state, reason, ctx)`: consumes and frees the state.
    pub terminate:
        extern "C" fn(state: StatePtr, reason: RSlice<'_, u8>, ctx: &RawCtx<'_>) -> Outcome,
    /// `drop_state(state)`: frees the state without calling `terminate`.
    pub drop_state: extern "C" fn(state: StatePtr),
    /// `downgrade(state, to_vsn, extra)`: on a rollback from this version to the older
    /// `to_vsn`, the state written for the older version, as ETF in `detail` (the
    /// newer half of OTP's `code_change({down, Vsn}, ...)`; the older version's
    /// `code_change` with `down = true` reads it). Borrows the state: it neither changes
    /// nor frees it. `Ok`, or `Error` / `Panic` with UTF-8 text.
    pub downgrade:
        extern "C" fn(state: StatePtr, to_vsn: RStr<'_>, extra: RSlice<'_, u8>) -> Outcome,
}

/// The root module every plugin exports; the host finds it through `abi_stable`'s header.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// [`ABI_VERSION`] as the plugin was compiled.
    pub abi_version: u32,
    /// `false` if the plugin was built with `panic = "abort"`: such a plugin cannot keep a
    /// panic from killing the host, so the host refuses it.
    pub panic_unwinds: bool,
    /// Panics inside the plugin and reports whether the panic was caught.
    pub self_test: extern "C" fn() -> bool,
    /// The behaviours this library exports (they swap together).
    #[sabi(last_prefix_field)]
    pub behaviours: extern "C" fn() -> RVec<BehaviourDesc>,
}

impl RootModule for PluginModRef {
    abi_stable::declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "actor_plugin";
    const NAME: &'static str = "actor_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Name of the symbol `abi_stable` looks up; the export macro writes it literally, and a
/// unit test keeps the two in step.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
