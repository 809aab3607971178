//! The host side of the FFI: the functions a plugin's [`Ctx`](plugin_api::Ctx) calls.
//!
//! Every callback receives a `RawCtx` whose `data` points at a [`RunCtx`] on the stack of
//! the host thread that made the call; these functions turn it back into a reference.
//! Nothing here may unwind into the plugin: each body runs inside `catch_unwind`.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use abi_stable::std_types::{RSlice, RStr};
use plugin_api::abi::{Dest, FromRaw, HostApi, MsgKind, RawCtx, SendCode};

use super::mailbox::{Envelope, MsgBytes};
use super::remote::RemoteDest;
use super::timer::TimerTarget;
use super::{BehaviourVersion, CallError, System, Target};
use crate::util::ids::{is_remote, ActorId, MonitorRef};

/// What the host knows about the callback in progress.
pub(crate) struct RunCtx<'a> {
    pub(crate) system: &'a System,
    pub(crate) actor: ActorId,
    pub(crate) version: &'a BehaviourVersion,
    /// Whether this actor's outgoing messages are traced (read once per callback).
    pub(crate) traced: bool,
}

impl<'a> RunCtx<'a> {
    pub(crate) fn new(
        system: &'a System,
        actor: ActorId,
        version: &'a BehaviourVersion,
        traced: bool,
    ) -> Self {
        RunCtx {
            system,
            actor,
            version,
            traced,
        }
    }

    /// Reports an outgoing message of a traced actor.
    fn trace_out(&self, what: &str, to: &Dest<'_>, msg: &[u8]) {
        if self.traced {
            let peer = if !to.node.is_empty() {
                format!("{{{}, {}}}", to.name.as_str(), to.node.as_str())
            } else if to.name.is_empty() {
                ActorId(to.id).to_string()
            } else {
                to.name.as_str().to_string()
            };
            self.system.trace_named(self.actor, "out", what, peer, msg);
        }
    }

    /// The context handed to the plugin; valid while `self` is.
    pub(crate) fn raw(&self) -> RawCtx<'static> {
        RawCtx {
            api: &HOST_API,
            data: (self as *const RunCtx<'_>).cast(),
        }
    }
}

/// The host's function table (one for the whole process).
pub(crate) static HOST_API: HostApi = HostApi {
    self_id,
    send,
    reply,
    request,
    send_after,
    cancel_timer,
    whereis,
    log,
    link,
    unlink,
    monitor,
    demonitor,
    trap_exit,
    exit,
    start_child,
    spawn_link,
    send_interval,
    monitor_node,
    spawn_remote,
};

/// Runs `f` with the context behind `data`, never unwinding.
fn with_ctx<R>(data: *const c_void, fallback: R, f: impl FnOnce(&RunCtx<'_>) -> R) -> R {
    // SAFETY: `data` is the pointer `RunCtx::raw` made from a `RunCtx` that lives on the
    // stack frame calling into the plugin; the plugin only calls back during that call
    // (callbacks are synchronous and the ctx is not `Send`/storable across calls), so
    // the `RunCtx` is alive and not mutated for the duration of this function.
    let ctx = unsafe { &*data.cast::<RunCtx<'_>>() };
    catch_unwind(AssertUnwindSafe(|| f(ctx))).unwrap_or(fallback)
}

fn target<'a>(to: &Dest<'a>) -> Target<'a> {
    if !to.node.is_empty() {
        // A name on another node: only `send` handles it; elsewhere it is nobody here.
        Target::Name("")
    } else if to.name.is_empty() {
        Target::Id(ActorId(to.id))
    } else {
        Target::Name(to.name.as_str())
    }
}

/// A process on another node, if `to` names one: `{Name, Node}`, or a pid that stands
/// for a remote process (a proxy id). One comparison on the local paths.
fn remote_dest<'a>(to: &Dest<'a>) -> Option<RemoteDest<'a>> {
    if !to.node.is_empty() {
        Some(RemoteDest::Name {
            name: to.name.as_str(),
            node: to.node.as_str(),
        })
    } else if to.name.is_empty() && is_remote(ActorId(to.id)) {
        Some(RemoteDest::Pid(ActorId(to.id)))
    } else {
        None
    }
}

/// A timer's destination: a name is looked up when the timer fires, as in Erlang.
fn timer_target(to: &Dest<'_>) -> TimerTarget {
    match target(to) {
        Target::Id(id) => TimerTarget::Id(id),
        Target::Name(n) => TimerTarget::Name(n.to_string()),
    }
}

extern "C" fn self_id(data: *const c_void) -> u64 {
    with_ctx(data, 0, |c| c.actor.0)
}

extern "C" fn send(
    data: *const c_void,
    to: Dest<'_>,
    kind: MsgKind,
    msg: RSlice<'_, u8>,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        let kind = if kind == MsgKind::Call {
            MsgKind::Info
        } else {
            kind
        };
        c.trace_out(crate::observe::kind_name(kind), &to, &msg);
        let env = Envelope::message(kind, MsgBytes::from_slice(&msg));
        let sent = match remote_dest(&to) {
            None => c.system.send(target(&to), env),
            Some(RemoteDest::Pid(proxy)) => c.system.send_proxy(c.actor, proxy, env),
            Some(RemoteDest::Name { name, node }) => c.system.send_remote(c.actor, name, node, env),
        };
        match sent {
            Ok(()) => SendCode::Ok,
            Err(_) => SendCode::NoProc,
        }
    })
}

extern "C" fn reply(data: *const c_void, from: FromRaw, msg: RSlice<'_, u8>) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        if c.traced {
            let peer = if from.caller == 0 {
                "host".to_string()
            } else {
                ActorId(from.caller).to_string()
            };
            c.system.trace_named(c.actor, "out", "reply", peer, &msg);
        }
        if c.system.reply(from.tag, Ok(msg.as_slice())) {
            SendCode::Ok
        } else {
            SendCode::BadArg
        }
    })
}

extern "C" fn request(
    data: *const c_void,
    to: Dest<'_>,
    msg: RSlice<'_, u8>,
    timeout_ms: u64,
    req: &mut u64,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        c.trace_out("call", &to, &msg);
        let (bytes, timeout) = (
            MsgBytes::from_slice(&msg),
            Duration::from_millis(timeout_ms),
        );
        let sent = match remote_dest(&to) {
            None => c.system.request(c.actor, target(&to), bytes, timeout),
            Some(dest) => c.system.request_remote(c.actor, dest, bytes, timeout),
        };
        match sent {
            Some(tag) => {
                *req = tag;
                SendCode::Ok
            }
            None => SendCode::NoProc,
        }
    })
}

extern "C" fn send_after(
    data: *const c_void,
    to: Dest<'_>,
    msg: RSlice<'_, u8>,
    delay_ms: u64,
    timer: &mut u64,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        c.trace_out("send_after", &to, &msg);
        let to = timer_target(&to);
        *timer = c
            .system
            .send_after(c.actor, to, msg.to_vec(), Duration::from_millis(delay_ms));
        SendCode::Ok
    })
}

extern "C" fn cancel_timer(data: *const c_void, timer: u64) -> bool {
    with_ctx(data, false, |c| c.system.cancel_timer(c.actor, timer))
}

extern "C" fn whereis(data: *const c_void, name: RStr<'_>) -> u64 {
    with_ctx(data, 0, |c| {
        c.system
            .registry
            .whereis(name.as_str())
            .map_or(0, |id| id.0)
    })
}

extern "C" fn log(data: *const c_void, level: u8, msg: RStr<'_>) {
    with_ctx(data, (), |c| {
        let (actor, behaviour, version, msg) = (
            c.actor.0,
            &*c.version.name,
            &*c.version.version,
            msg.as_str(),
        );
        match level {
            1 => tracing::error!(target: "plugin", actor, behaviour, version, "{msg}"),
            2 => tracing::warn!(target: "plugin", actor, behaviour, version, "{msg}"),
            3 => tracing::info!(target: "plugin", actor, behaviour, version, "{msg}"),
            4 => tracing::debug!(target: "plugin", actor, behaviour, version, "{msg}"),
            _ => tracing::trace!(target: "plugin", actor, behaviour, version, "{msg}"),
        }
    })
}

fn code(r: Result<(), CallError>) -> SendCode {
    match r {
        Ok(()) => SendCode::Ok,
        Err(_) => SendCode::NoProc,
    }
}

extern "C" fn link(data: *const c_void, to: Dest<'_>) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        code(c.system.link(c.actor, target(&to)))
    })
}

extern "C" fn unlink(data: *const c_void, to: Dest<'_>) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        code(c.system.unlink(c.actor, target(&to)))
    })
}

extern "C" fn monitor(data: *const c_void, to: Dest<'_>, mref: &mut u64) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        *mref = match remote_dest(&to) {
            None => c.system.monitor(c.actor, target(&to)),
            Some(dest) => c.system.monitor_remote(c.actor, dest),
        }
        .0;
        SendCode::Ok
    })
}

extern "C" fn demonitor(data: *const c_void, mref: u64) -> bool {
    with_ctx(data, false, |c| c.system.demonitor(MonitorRef(mref)))
}

extern "C" fn trap_exit(data: *const c_void, on: bool) -> bool {
    with_ctx(data, false, |c| c.system.set_trap_exit(c.actor, on))
}

extern "C" fn exit(data: *const c_void, to: Dest<'_>, reason: RSlice<'_, u8>) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        code(c.system.exit_signal(c.actor, target(&to), reason.to_vec()))
    })
}

extern "C" fn send_interval(
    data: *const c_void,
    to: Dest<'_>,
    msg: RSlice<'_, u8>,
    every_ms: u64,
    timer: &mut u64,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        let to = timer_target(&to);
        *timer = c.system.send_interval(
            c.actor,
            to,
            msg.to_vec(),
            Duration::from_millis(every_ms.max(1)),
        );
        SendCode::Ok
    })
}

extern "C" fn start_child(
    data: *const c_void,
    sup: RStr<'_>,
    args: RSlice<'_, u8>,
    req: &mut u64,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        *req = c.system.start_child(c.actor, sup.as_str(), args.to_vec());
        SendCode::Ok
    })
}

extern "C" fn spawn_link(
    data: *const c_void,
    behaviour: RStr<'_>,
    name: RStr<'_>,
    args: RSlice<'_, u8>,
    req: &mut u64,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        let name = (!name.is_empty()).then(|| name.as_str().to_string());
        *req = c
            .system
            .spawn_link_async(c.actor, behaviour.as_str(), name, args.to_vec());
        SendCode::Ok
    })
}

extern "C" fn spawn_remote(
    data: *const c_void,
    node: RStr<'_>,
    module: RStr<'_>,
    function: RStr<'_>,
    args: RSlice<'_, u8>,
    flags: u8,
    req: &mut u64,
) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        let spec = super::remote::SpawnSpec {
            node: node.as_str(),
            module: module.as_str(),
            function: function.as_str(),
            args: args.as_slice(),
            link: flags & 1 != 0,
            monitor: flags & 2 != 0,
        };
        *req = c.system.spawn_remote(c.actor, spec);
        SendCode::Ok
    })
}

extern "C" fn monitor_node(data: *const c_void, node: RStr<'_>, on: bool) -> SendCode {
    with_ctx(data, SendCode::BadArg, |c| {
        if c.system.monitor_node(c.actor, node.as_str(), on) {
            SendCode::Ok
        } else {
            SendCode::NoProc
        }
    })
}
