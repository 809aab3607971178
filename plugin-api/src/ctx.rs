//! What a callback can do besides changing its state: send, reply, request, set timers and
//! log. Everything goes through the host's function table ([`HostApi`](crate::abi::HostApi)):
//! a plugin never sees the scheduler, the mailboxes or another actor's state.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::time::Duration;

use abi_stable::std_types::{RSlice, RStr};
use serde::{Deserialize, Serialize};

use crate::abi::{Dest, FromRaw, MsgKind, RawCtx, SendCode};
use crate::etf;

/// A process identifier: an actor of this host, or a process on another node of the
/// cluster (a BEAM process or another host's actor) that reached this host in a message,
/// an `'EXIT'` or a `'DOWN'`.
///
/// Ids are never reused while the host runs. In a message a `Pid` is an Erlang pid
/// (`NEW_PID_EXT`), so a pid a BEAM process sends — `{counter, Node} ! {get, self()}` —
/// decodes as a `Pid`, and sending to it, linking or monitoring it reaches that process;
/// a pid this actor sends away arrives as a real pid of this node. Inside the host every
/// pid names the node [`etf::LOCAL_NODE`]; the distribution layer translates at the wire.
/// A state saved before pids were Erlang pids (a bare integer) still decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(pub u64);

impl Pid {
    /// Whether this pid stands for a process on another node (the host hands those out
    /// with the top bit set).
    pub fn is_remote(self) -> bool {
        self.0 & (1 << 63) != 0
    }
}

impl Serialize for Pid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // ETF writes it as a pid; other formats see the id.
        s.serialize_newtype_struct(etf::PID_MARKER, &self.0)
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pid, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Pid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pid")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Pid, E> {
                Ok(Pid(v))
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Pid, D::Error> {
                u64::deserialize(d).map(Pid)
            }
        }
        d.deserialize_newtype_struct(etf::PID_MARKER, V)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<0.{}.0>", self.0)
    }
}

/// The caller of a `handle_call`, kept to answer later with [`Ctx::reply`] (OTP's `From`).
///
/// It is plain data: store it in the state and it migrates across a reload with the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplyTo {
    /// Caller's actor id (0 for a caller outside the actor system).
    pub caller: u64,
    /// The call's unique tag.
    pub tag: u64,
}

impl From<FromRaw> for ReplyTo {
    fn from(raw: FromRaw) -> Self {
        ReplyTo {
            caller: raw.caller,
            tag: raw.tag,
        }
    }
}

/// Identifies a request made with [`Ctx::request`]; its reply arrives as the info message
/// `{reply, ReqId, Reply}` and a timeout as `{timeout, ReqId}`, so an `Info` enum with
/// variants `Reply(ReqId, T)` and `Timeout(ReqId)` receives both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReqId(pub u64);

/// A timer set with [`Ctx::send_after`], for [`Ctx::cancel_timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimerRef(pub u64);

/// Identifies a monitor made with [`Ctx::monitor`], as in `{'DOWN', Ref, ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MonitorRef(pub u64);

/// The outcome of [`Ctx::start_child`]: `{ok, Pid}` or `{error, Text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartChildReply {
    /// The child runs.
    Ok(Pid),
    /// Why it did not start.
    Error(String),
}

/// Options of [`Ctx::spawn_remote`], as `spawn_request`'s `link` and `monitor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpawnOpts {
    /// Link the new process to the caller.
    pub link: bool,
    /// Monitor the new process.
    pub monitor: bool,
}

/// Where to send: an actor id, a registered name, or a registered name on another node.
#[derive(Debug, Clone, Copy)]
pub enum To<'n> {
    /// An actor id.
    Pid(Pid),
    /// A registered name.
    Name(&'n str),
    /// A registered name on another node of the cluster, Erlang's `{Name, Node}`: a BEAM
    /// process or another host's actor. [`Ctx::send`], [`Ctx::cast`] (arriving as
    /// gen_server's `{'$gen_cast', Msg}`), [`Ctx::request`] (a `gen_server:call` there)
    /// and [`Ctx::monitor`] reach it; timers and `link` need a pid, as in Erlang.
    Remote {
        /// The registered name there.
        name: &'n str,
        /// The node, `name@host`.
        node: &'n str,
    },
}

impl<'n> To<'n> {
    /// `{Name, Node}`: a registered process on another node.
    pub fn remote(name: &'n str, node: &'n str) -> To<'n> {
        To::Remote { name, node }
    }
}

impl From<Pid> for To<'_> {
    fn from(p: Pid) -> Self {
        To::Pid(p)
    }
}

impl<'n> From<&'n str> for To<'n> {
    fn from(n: &'n str) -> Self {
        To::Name(n)
    }
}

impl<'n> To<'n> {
    fn raw(self) -> Dest<'n> {
        match self {
            To::Pid(p) => Dest {
                id: p.0,
                name: RStr::from_str(""),
                node: RStr::from_str(""),
            },
            To::Name(n) => Dest {
                id: 0,
                name: RStr::from_str(n),
                node: RStr::from_str(""),
            },
            To::Remote { name, node } => Dest {
                id: 0,
                name: RStr::from_str(name),
                node: RStr::from_str(node),
            },
        }
    }
}

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No actor with that id or name.
    NoProc,
    /// The host refused the request (for example a reply to an expired call).
    BadArg,
    /// The message could not be encoded.
    Encode(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoProc => f.write_str("noproc: no such actor"),
            SendError::BadArg => f.write_str("badarg: refused by the host"),
            SendError::Encode(e) => write!(f, "cannot encode message: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

fn check(code: SendCode) -> Result<(), SendError> {
    match code {
        SendCode::Ok => Ok(()),
        SendCode::NoProc => Err(SendError::NoProc),
        SendCode::BadArg => Err(SendError::BadArg),
    }
}

/// Log levels for [`Ctx::log`], in the host's `tracing` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal operation worth a line.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
    /// Very detailed detail.
    Trace = 5,
}

/// A log line being formatted: on the stack up to 256 bytes, on the heap beyond.
struct StackLine {
    buf: [u8; 256],
    len: usize,
    spill: Option<String>,
}

impl StackLine {
    fn as_str(&self) -> &str {
        match &self.spill {
            Some(s) => s,
            // Only whole `&str`s are copied in, so the prefix is valid UTF-8.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""),
        }
    }
}

impl fmt::Write for StackLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(spill) = &mut self.spill {
            spill.push_str(s);
        } else if self.len + s.len() <= self.buf.len() {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut spill = String::with_capacity(self.len + s.len() + 64);
            spill.push_str(std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""));
            spill.push_str(s);
            self.spill = Some(spill);
        }
        Ok(())
    }
}

/// The context a callback gets: its own id, and the host's services.
pub struct Ctx<'a> {
    raw: &'a RawCtx<'a>,
    /// Encode buffer, reused by every send of one callback (one allocation per callback
    /// that sends, none per message). Deliberately not a thread-local: a thread-local with
    /// a destructor makes glibc keep the plugin library mapped for the life of the thread,
    /// so no version run on a scheduler thread could ever be unloaded.
    buf: Cell<Vec<u8>>,
}

impl<'a> Ctx<'a> {
    /// Wraps the host's context (used by the generated glue, not by behaviours).
    #[doc(hidden)]
    pub fn from_raw(raw: &'a RawCtx<'a>) -> Self {
        Ctx {
            raw,
            buf: Cell::new(Vec::new()),
        }
    }

    /// Encodes `msg` into this callback's buffer and passes the bytes to `f`.
    fn encoded<M: Serialize + ?Sized, R>(
        &self,
        msg: &M,
        f: impl FnOnce(RSlice<'_, u8>) -> R,
    ) -> Result<R, SendError> {
        let mut buf = self.buf.take();
        buf.clear();
        // One allocation per callback that sends, big enough for most messages: growing
        // from empty would reallocate four or five times per message.
        buf.reserve(256);
        let out = etf::append_to_vec(&mut buf, msg)
            .map_err(|e| SendError::Encode(e.to_string()))
            .map(|()| f(RSlice::from_slice(&buf)));
        self.buf.set(buf);
        out
    }

    /// This actor's id.
    pub fn id(&self) -> Pid {
        Pid((self.raw.api.self_id)(self.raw.data))
    }

    /// The id registered under `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        match (self.raw.api.whereis)(self.raw.data, RStr::from_str(name)) {
            0 => None,
            id => Some(Pid(id)),
        }
    }

    /// Sends a plain message (`Pid ! Msg`): it arrives in the receiver's `handle_info`.
    pub fn send<'n, M: Serialize + ?Sized>(
        &mut self,
        to: impl Into<To<'n>>,
        msg: &M,
    ) -> Result<(), SendError> {
        self.send_kind(to.into(), MsgKind::Info, msg)
    }

    /// Sends a one-way request: it arrives in the receiver's `handle_cast`.
    pub fn cast<'n, M: Serialize + ?Sized>(
        &mut self,
        to: impl Into<To<'n>>,
        msg: &M,
    ) -> Result<(), SendError> {
        self.send_kind(to.into(), MsgKind::Cast, msg)
    }

    fn send_kind<M: Serialize + ?Sized>(
        &mut self,
        to: To<'_>,
        kind: MsgKind,
        msg: &M,
    ) -> Result<(), SendError> {
        let raw = self.raw;
        check(self.encoded(msg, |bytes| (raw.api.send)(raw.data, to.raw(), kind, bytes))?)
    }

    /// Answers a call whose `from` was kept (`gen_server:reply/2`). A reply to a caller
    /// that already timed out is dropped by the host and reported as `BadArg`.
    pub fn reply<R: Serialize + ?Sized>(
        &mut self,
        from: ReplyTo,
        reply: &R,
    ) -> Result<(), SendError> {
        let raw = self.raw;
        let from = FromRaw {
            caller: from.caller,
            tag: from.tag,
        };
        check(self.encoded(reply, |bytes| (raw.api.reply)(raw.data, from, bytes))?)
    }

    /// Calls another actor without blocking (`gen_server:send_request/2`). The reply comes
    /// back as the info message `{reply, ReqId, Reply}`, or `{timeout, ReqId}` if none came
    /// within `timeout`; a reply after the timeout is dropped.
    pub fn request<'n, M: Serialize + ?Sized>(
        &mut self,
        to: impl Into<To<'n>>,
        msg: &M,
        timeout: Duration,
    ) -> Result<ReqId, SendError> {
        let raw = self.raw;
        let to = to.into().raw();
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut id = 0u64;
        check(self.encoded(msg, |bytes| {
            (raw.api.request)(raw.data, to, bytes, ms, &mut id)
        })?)?;
        Ok(ReqId(id))
    }

    /// Delivers `msg` to `to`'s `handle_info` after `delay` (`erlang:send_after/3`).
    pub fn send_after<'n, M: Serialize + ?Sized>(
        &mut self,
        delay: Duration,
        to: impl Into<To<'n>>,
        msg: &M,
    ) -> Result<TimerRef, SendError> {
        let raw = self.raw;
        let to = to.into().raw();
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let mut t = 0u64;
        check(self.encoded(msg, |bytes| {
            (raw.api.send_after)(raw.data, to, bytes, ms, &mut t)
        })?)?;
        Ok(TimerRef(t))
    }

    /// Delivers `msg` to `to`'s `handle_info` every `every` until cancelled with
    /// [`Ctx::cancel_timer`] (`timer:send_interval/3`). It stops by itself when an actor it
    /// was addressed to by id dies.
    pub fn send_interval<'n, M: Serialize + ?Sized>(
        &mut self,
        every: Duration,
        to: impl Into<To<'n>>,
        msg: &M,
    ) -> Result<TimerRef, SendError> {
        let raw = self.raw;
        let to = to.into().raw();
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut t = 0u64;
        check(self.encoded(msg, |bytes| {
            (raw.api.send_interval)(raw.data, to, bytes, ms, &mut t)
        })?)?;
        Ok(TimerRef(t))
    }

    /// Cancels a timer (one-shot or interval); `true` if it was still active.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> bool {
        (self.raw.api.cancel_timer)(self.raw.data, timer.0)
    }

    /// Links this actor with `to`, both ways (`link/1`): when either dies abnormally, the
    /// other dies with the same reason — unless it traps exits, in which case it receives
    /// `{'EXIT', From, Reason}`. `NoProc` if `to` is not alive.
    pub fn link<'n>(&mut self, to: impl Into<To<'n>>) -> Result<(), SendError> {
        check((self.raw.api.link)(self.raw.data, to.into().raw()))
    }

    /// Removes a link, both ways (`unlink/1`).
    pub fn unlink<'n>(&mut self, to: impl Into<To<'n>>) -> Result<(), SendError> {
        check((self.raw.api.unlink)(self.raw.data, to.into().raw()))
    }

    /// Monitors `to` (`monitor(process, To)`): when it dies this actor receives
    /// `{'DOWN', Ref, process, Pid, Reason}` — at once, with `noproc`, if it is not alive.
    pub fn monitor<'n>(&mut self, to: impl Into<To<'n>>) -> MonitorRef {
        let mut mref = 0u64;
        let _ = (self.raw.api.monitor)(self.raw.data, to.into().raw(), &mut mref);
        MonitorRef(mref)
    }

    /// Removes a monitor; `true` if it was still active (no `DOWN` will come).
    pub fn demonitor(&mut self, mref: MonitorRef) -> bool {
        (self.raw.api.demonitor)(self.raw.data, mref.0)
    }

    /// Monitors the connection to another node (`erlang:monitor_node(Node, true)`): when
    /// it is lost — or cannot be made now — this actor receives `{nodedown, Node}` once
    /// (decode it as, say, `Info::Nodedown(Atom)`). Each call adds one monitor; `on =
    /// false` removes one. `NoProc` when this host is not a distributed node.
    pub fn monitor_node(&mut self, node: &str, on: bool) -> Result<(), SendError> {
        check((self.raw.api.monitor_node)(
            self.raw.data,
            RStr::from_str(node),
            on,
        ))
    }

    /// Sets whether exit signals from linked actors arrive as `{'EXIT', From, Reason}`
    /// messages instead of killing this actor; returns the previous setting. `kill` cannot
    /// be trapped.
    pub fn trap_exit(&mut self, on: bool) -> bool {
        (self.raw.api.trap_exit)(self.raw.data, on)
    }

    /// Sends an exit signal to `to` (`exit/2`): `Reason::Kill` kills it unconditionally
    /// (it exits with `killed`), `Reason::Normal` is ignored unless it traps exits, any
    /// other reason kills it unless it traps exits.
    pub fn exit<'n>(
        &mut self,
        to: impl Into<To<'n>>,
        reason: &crate::Reason,
    ) -> Result<(), SendError> {
        let raw = self.raw;
        let to = to.into().raw();
        check(self.encoded(reason, |bytes| (raw.api.exit)(raw.data, to, bytes))?)
    }

    /// Asks the `simple_one_for_one` supervisor named `sup` to start a child with `args`
    /// (`supervisor:start_child/2`, without blocking): the outcome arrives as the info
    /// message `{reply, ReqId, {ok, Pid}}` or `{reply, ReqId, {error, Text}}` — decode it
    /// as [`StartChildReply`].
    pub fn start_child<A: Serialize + ?Sized>(
        &mut self,
        sup: &str,
        args: &A,
    ) -> Result<ReqId, SendError> {
        let raw = self.raw;
        let mut req = 0u64;
        check(self.encoded(args, |bytes| {
            (raw.api.start_child)(raw.data, RStr::from_str(sup), bytes, &mut req)
        })?)?;
        Ok(ReqId(req))
    }

    /// Starts an actor of `behaviour`, linked to this one (`spawn_link`), without
    /// blocking: the outcome arrives as `{reply, ReqId, {ok, Pid}}` or
    /// `{reply, ReqId, {error, Text}}` — decode it as [`StartChildReply`].
    pub fn spawn_link<A: Serialize + ?Sized>(
        &mut self,
        behaviour: &str,
        name: Option<&str>,
        args: &A,
    ) -> Result<ReqId, SendError> {
        let raw = self.raw;
        let mut req = 0u64;
        let name = RStr::from_str(name.unwrap_or(""));
        check(self.encoded(args, |bytes| {
            (raw.api.spawn_link)(raw.data, RStr::from_str(behaviour), name, bytes, &mut req)
        })?)?;
        Ok(ReqId(req))
    }

    /// Starts a process on another node without blocking (`erlang:spawn_request/5`): on
    /// another host, an actor of behaviour `module` (with `function` `"init"` and `args`
    /// a one-element list, its init argument); on a BEAM node, `module:function(Args...)`.
    /// `args` must encode as a list (a `Vec`, a slice, or [`etf::Term::List`]). The outcome
    /// arrives as `{reply, ReqId, {ok, Pid}}` or `{reply, ReqId, {error, Reason}}` (decode
    /// it as [`StartChildReply`]); a node that cannot be reached answers `{error,
    /// noconnection}`. With `link`, the new process is linked to this actor; with
    /// `monitor`, its exit arrives as `{'DOWN', Ref, process, Pid, Reason}` where `Ref`
    /// has the request id's number. An unknown module or behaviour gives a pid that exits
    /// `undef` at once, as in Erlang.
    pub fn spawn_remote<A: Serialize + ?Sized>(
        &mut self,
        node: &str,
        module: &str,
        function: &str,
        args: &A,
        opts: SpawnOpts,
    ) -> Result<ReqId, SendError> {
        let raw = self.raw;
        let mut req = 0u64;
        let flags = u8::from(opts.link) | u8::from(opts.monitor) << 1;
        check(self.encoded(args, |bytes| {
            (raw.api.spawn_remote)(
                raw.data,
                RStr::from_str(node),
                RStr::from_str(module),
                RStr::from_str(function),
                bytes,
                flags,
                &mut req,
            )
        })?)?;
        Ok(ReqId(req))
    }

    /// Logs through the host's subscriber, with this actor, behaviour and version attached.
    pub fn log(&self, level: Level, msg: impl fmt::Display) {
        // Formatted on the stack when it fits (most lines do), else into a fresh String;
        // not into a thread-local buffer: see `buf`.
        let mut line = StackLine {
            buf: [0; 256],
            len: 0,
            spill: None,
        };
        let _ = write!(line, "{msg}");
        (self.raw.api.log)(self.raw.data, level as u8, RStr::from_str(line.as_str()));
    }

    /// Logs at info level.
    pub fn info(&self, msg: impl fmt::Display) {
        self.log(Level::Info, msg)
    }

    /// Logs at warn level.
    pub fn warn(&self, msg: impl fmt::Display) {
        self.log(Level::Warn, msg)
    }

    /// Logs at debug level.
    pub fn debug(&self, msg: impl fmt::Display) {
        self.log(Level::Debug, msg)
    }

    /// Logs at error level.
    pub fn error(&self, msg: impl fmt::Display) {
        self.log(Level::Error, msg)
    }
}
