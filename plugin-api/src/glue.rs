//! The FFI glue the export macro instantiates for each behaviour: `extern "C"` functions
//! that decode the host's bytes, call the author's typed callbacks inside `catch_unwind`,
//! and turn every result — including a panic — into an [`Outcome`].
//!
//! A panic must never unwind across `extern "C"` (the process would abort), so every
//! function here catches it and reports it as [`OutcomeCode::Panic`] with the message and
//! the location captured by this plugin's panic hook.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use abi_stable::std_types::{RSlice, RStr};

use crate::abi::{FromRaw, MsgKind, Outcome, OutcomeCode, RawCtx, StatePtr};
use crate::behaviour::{Behaviour, CallResult, EtfRef, Next, OldVsn, Reason};
use crate::ctx::{Ctx, ReplyTo};
use crate::etf;

thread_local! {
    /// Message and location of the last panic on this thread, written by our panic hook
    /// and taken by `guard` (a leaked `Box<String>`, or null).
    ///
    /// A raw pointer in a `Cell` has no destructor, so this thread-local registers none:
    /// one that did would make glibc keep this library mapped for the life of every thread
    /// that ever panicked in it, and the version could never be unloaded.
    static LAST_PANIC: Cell<*mut String> = const { Cell::new(std::ptr::null_mut()) };
}

/// Takes the text the hook recorded on this thread, if any.
fn take_last_panic() -> Option<String> {
    let p = LAST_PANIC.with(|c| c.replace(std::ptr::null_mut()));
    // SAFETY: a non-null pointer in LAST_PANIC always comes from `Box::into_raw` in the
    // hook on this same thread, and is swapped out (replaced by null) before it is used,
    // so it is owned here exactly once.
    (!p.is_null()).then(|| *unsafe { Box::from_raw(p) })
}

static HOOK: Once = Once::new();

/// Installs this plugin copy's panic hook (each `cdylib` has its own std and its own hook).
///
/// The hook records "message at file:line:col" for the crash report instead of printing
/// to stderr: the host logs the crash as one structured event.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let msg = payload_text(info.payload());
            let text = match info.location() {
                Some(l) => format!("{msg} at {}:{}:{}", l.file(), l.line(), l.column()),
                None => msg,
            };
            drop(take_last_panic());
            LAST_PANIC.with(|c| c.set(Box::into_raw(Box::new(text))));
        }));
    });
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs `f`, turning a panic into [`OutcomeCode::Panic`].
fn guard(f: impl FnOnce() -> Outcome) -> Outcome {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let text = take_last_panic().unwrap_or_else(|| payload_text(&*payload));
            // Dropping the payload could itself panic (a payload with a panicking Drop);
            // forget it instead: a few bytes leaked beats an abort.
            std::mem::forget(payload);
            Outcome::with(OutcomeCode::Panic, text)
        }
    }
}

fn stop(reason: &Reason) -> Outcome {
    match etf::to_vec(reason) {
        Ok(bytes) => Outcome::with(OutcomeCode::Stop, bytes),
        Err(e) => Outcome::with(
            OutcomeCode::Error,
            format!("cannot encode stop reason: {e}"),
        ),
    }
}

fn bad(what: &str, e: etf::Error) -> Outcome {
    Outcome::with(OutcomeCode::BadMessage, format!("{what}: {e}"))
}

fn boxed<S>(state: S) -> StatePtr {
    StatePtr(Box::into_raw(Box::new(state)).cast())
}

/// `init` for behaviour `B`.
pub extern "C" fn init<B: Behaviour>(
    args: RSlice<'_, u8>,
    ctx: &RawCtx<'_>,
    out: &mut StatePtr,
) -> Outcome {
    guard(|| {
        let args: B::Args = match etf::from_slice(args.as_slice()) {
            Ok(a) => a,
            Err(e) => return bad("init args do not decode", e),
        };
        match B::init(args, &mut Ctx::from_raw(ctx)) {
            Ok(state) => {
                *out = boxed(state);
                Outcome::ok()
            }
            Err(e) => Outcome::with(OutcomeCode::Error, e.to_string()),
        }
    })
}

/// `handle_call` / `handle_cast` / `handle_info` for behaviour `B`.
pub extern "C" fn handle<B: Behaviour>(
    state: StatePtr,
    kind: MsgKind,
    from: FromRaw,
    msg: RSlice<'_, u8>,
    ctx: &RawCtx<'_>,
) -> Outcome {
    guard(|| {
        // SAFETY: `state` was made by `boxed::<B::State>` in this version (init or
        // code_change), and the host runs at most one callback per actor at a time, so
        // this is the only reference to it for the duration of the call.
        let state = unsafe { &mut *state.0.cast::<B::State>() };
        let mut c = Ctx::from_raw(ctx);
        let next = match kind {
            MsgKind::Call => {
                let m: B::Call = match etf::from_slice(msg.as_slice()) {
                    Ok(m) => m,
                    Err(e) => return bad("call does not decode", e),
                };
                let reply_to = ReplyTo::from(from);
                match B::handle_call(m, reply_to, state, &mut c) {
                    CallResult::Reply(r) => {
                        let _ = c.reply(reply_to, &r);
                        Next::Continue
                    }
                    CallResult::NoReply => Next::Continue,
                    CallResult::Stop(reason, reply) => {
                        if let Some(r) = reply {
                            let _ = c.reply(reply_to, &r);
                        }
                        Next::Stop(reason)
                    }
                }
            }
            MsgKind::Cast => match etf::from_slice(msg.as_slice()) {
                Ok(m) => B::handle_cast(m, state, &mut c),
                Err(e) => return bad("cast does not decode", e),
            },
            MsgKind::Info => match etf::from_slice(msg.as_slice()) {
                Ok(m) => B::handle_info(m, state, &mut c),
                Err(e) => return bad("message does not decode", e),
            },
        };
        match next {
            Next::Continue => Outcome::ok(),
            Next::Stop(reason) => stop(&reason),
        }
    })
}

/// Exports `B`'s state as ETF (the first half of a code change).
pub extern "C" fn export_state<B: Behaviour>(state: StatePtr) -> Outcome {
    guard(|| {
        // SAFETY: as in `handle`: made by this version, and the actor is suspended.
        let state = unsafe { &*state.0.cast::<B::State>() };
        match etf::to_vec(state) {
            Ok(bytes) => Outcome::with(OutcomeCode::Ok, bytes),
            Err(e) => Outcome::with(OutcomeCode::Error, format!("cannot export state: {e}")),
        }
    })
}

/// Builds `B`'s state from an older version's exported state.
pub extern "C" fn code_change<B: Behaviour>(
    old_vsn: RStr<'_>,
    down: bool,
    old_state: RSlice<'_, u8>,
    extra: RSlice<'_, u8>,
    out: &mut StatePtr,
) -> Outcome {
    guard(|| {
        let old_vsn = if down {
            OldVsn::Down(old_vsn.as_str())
        } else {
            OldVsn::Up(old_vsn.as_str())
        };
        match B::code_change(
            old_vsn,
            EtfRef(old_state.as_slice()),
            EtfRef(extra.as_slice()),
        ) {
            Ok(state) => {
                *out = boxed(state);
                Outcome::ok()
            }
            Err(e) => Outcome::with(OutcomeCode::Error, e.to_string()),
        }
    })
}

/// The newer half of a rollback: `B` (the version being left) writes its state for the
/// older version `to_vsn`. The state is only borrowed; it stays this version's until the
/// host commits the rollback.
pub extern "C" fn downgrade<B: Behaviour>(
    state: StatePtr,
    to_vsn: RStr<'_>,
    extra: RSlice<'_, u8>,
) -> Outcome {
    guard(|| {
        // SAFETY: as in `export_state`: made by `boxed::<B::State>` in this version, and
        // the actor is suspended, so nothing else touches it during the call.
        let state = unsafe { &*state.0.cast::<B::State>() };
        match B::downgrade(state, to_vsn.as_str(), EtfRef(extra.as_slice())) {
            // Checked here, where the fault is: the older version would only see a state
            // that does not decode.
            Ok(bytes) => match etf::from_slice::<serde::de::IgnoredAny>(&bytes) {
                Ok(_) => Outcome::with(OutcomeCode::Ok, bytes),
                Err(e) => Outcome::with(
                    OutcomeCode::Error,
                    format!(
                        "downgrade to {} returned bytes that are not one ETF term: {e}",
                        to_vsn.as_str()
                    ),
                ),
            },
            Err(e) => Outcome::with(OutcomeCode::Error, e.to_string()),
        }
    })
}

/// Runs `terminate` and frees the state.
pub extern "C" fn terminate<B: Behaviour>(
    state: StatePtr,
    reason: RSlice<'_, u8>,
    ctx: &RawCtx<'_>,
) -> Outcome {
    guard(|| {
        // SAFETY: made by `boxed::<B::State>` in this version; the host calls terminate or
        // drop_state exactly once per state and never uses the pointer afterwards.
        let state = unsafe { Box::from_raw(state.0.cast::<B::State>()) };
        let reason = Reason::from_etf(reason.as_slice());
        B::terminate(&reason, *state, &mut Ctx::from_raw(ctx));
        Outcome::ok()
    })
}

/// Frees a state without `terminate` (a state replaced by a code change, or discarded by a
/// rollback).
pub extern "C" fn drop_state<B: Behaviour>(state: StatePtr) {
    let _ = guard(|| {
        if !state.0.is_null() {
            // SAFETY: as in `terminate`: made by this version, freed exactly once.
            drop(unsafe { Box::from_raw(state.0.cast::<B::State>()) });
        }
        Outcome::ok()
    });
}

/// Proves panics are caught in this build: panics inside `catch_unwind` and reports
/// whether it came back. Only called when the plugin says it was built with unwinding.
pub extern "C" fn self_test() -> bool {
    install_panic_hook();
    let caught = panic::catch_unwind(|| panic!("plugin-api self-test")).is_err();
    drop(take_last_panic());
    caught
}

/// Exports behaviours from a plugin crate (a `cdylib`). One line per plugin:
///
/// ```ignore
/// plugin_api::export_behaviours!(Counter, Ticker);
/// ```
///
/// It generates the library header `abi_stable` looks for, the root module with the ABI
/// version, the panic strategy and the self-test, and one [`BehaviourDesc`](crate::abi::BehaviourDesc)
/// per behaviour whose callbacks are the panic-safe glue above. Behaviours exported
/// together are swapped together.
#[macro_export]
macro_rules! export_behaviours {
    ($($behaviour:ty),+ $(,)?) => {
        const _: () = {
            use $crate::__private::abi_stable as __abi;

            extern "C" fn __behaviours() -> __abi::std_types::RVec<$crate::abi::BehaviourDesc> {
                $crate::glue::install_panic_hook();
                let mut v = __abi::std_types::RVec::new();
                $( v.push($crate::glue::desc::<$behaviour>()); )+
                v
            }

            fn __root_module() -> $crate::abi::PluginModRef {
                use __abi::prefix_type::PrefixTypeTrait;
                $crate::abi::PluginMod {
                    abi_version: $crate::abi::ABI_VERSION,
                    panic_unwinds: cfg!(panic = "unwind"),
                    self_test: $crate::glue::self_test,
                    behaviours: __behaviours,
                }
                .leak_into_prefix()
            }

            extern "C" fn __erased_root_module() -> __abi::library::RootModuleResult {
                __abi::library::__call_root_module_loader(__root_module)
            }

            // The symbol abi_stable's loader looks up (see abi::ROOT_MODULE_SYMBOL; a unit
            // test keeps the literal in step with abi_stable).
            #[no_mangle]
            pub static _1as_0lib_1header_0root_bmodule_bloader: __abi::library::LibHeader = {
                // SAFETY: `__erased_root_module` returns the module built by
                // `__root_module`, a `PluginModRef`, erased by abi_stable's own helper,
                // which is what `from_constructor::<PluginModRef>` requires.
                unsafe {
                    __abi::library::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                        __erased_root_module,
                        __abi::library::CheckTypeLayout::Yes,
                    )
                }
            };
        };
    };
}

/// The descriptor of behaviour `B`: its identity and its glue functions.
pub fn desc<B: Behaviour>() -> crate::abi::BehaviourDesc {
    crate::abi::BehaviourDesc {
        name: RStr::from_str(B::NAME),
        version: RStr::from_str(B::VERSION),
        init: init::<B>,
        handle: handle::<B>,
        export_state: export_state::<B>,
        code_change: code_change::<B>,
        terminate: terminate::<B>,
        drop_state: drop_state::<B>,
        downgrade: downgrade::<B>,
    }
}
