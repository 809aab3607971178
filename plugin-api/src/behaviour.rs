//! The `Behaviour` trait: the specific part of an actor, like an OTP `gen_server` callback
//! module. The host is the generic part: it owns the mailbox, the state and the scheduler;
//! a behaviour only says what one message does to one state.
//!
//! Callbacks are synchronous and must not block: code is swapped between two callbacks,
//! when no stack frame of the old version is alive. To wait for another actor, send a
//! request with [`Ctx::request`] and handle its reply (or timeout) as a later message.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ctx::{Ctx, ReplyTo};
use crate::etf;

/// Error type callbacks return: anything that is an error, or a plain string.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the host should do after `handle_cast` / `handle_info`.
#[derive(Debug)]
pub enum Next {
    /// Keep running (`{noreply, State}`).
    Continue,
    /// Stop the actor with this reason (`{stop, Reason, State}`); `terminate` runs next.
    Stop(Reason),
}

/// What the host should do after `handle_call`.
#[derive(Debug)]
pub enum CallResult<R> {
    /// Answer the caller now (`{reply, Reply, State}`).
    Reply(R),
    /// Answer later through [`Ctx::reply`] with the stored [`ReplyTo`] (`{noreply, State}`).
    NoReply,
    /// Stop, optionally answering first (`{stop, Reason, Reply, State}`).
    Stop(Reason, Option<R>),
}

/// Why an actor stopped, or the reason carried by an exit signal. Encoded as the Erlang
/// term OTP uses: `normal`, `shutdown`, `{shutdown, Detail}`, `kill`, `killed`, `noproc`,
/// `{error, <<"Text">>}`; any other term decodes as [`Reason::Other`] with its printout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The actor finished its work; not an error (does not kill linked actors).
    Normal,
    /// Asked to shut down by its owner; not an error.
    Shutdown,
    /// A shutdown with a detail, OTP's `{shutdown, Term}`; not an error.
    ShutdownWith(String),
    /// The untrappable `kill` sent with `Ctx::exit`; the victim dies with `killed`.
    Kill,
    /// What an actor killed by `kill` exits with.
    Killed,
    /// The target did not exist (a monitor on a dead actor, a call to nobody).
    NoProc,
    /// An error; the text says what went wrong (a panic arrives as `panic: ...`).
    Error(String),
    /// Any other term, as Erlang would print it.
    Other(String),
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let atom = |s: S, a: &str| etf::Atom(a.to_string()).serialize(s);
        let pair = |s: S, tag: &str, text: &str| {
            let mut t = s.serialize_tuple(2)?;
            t.serialize_element(&etf::Atom(tag.to_string()))?;
            t.serialize_element(text)?;
            t.end()
        };
        match self {
            Reason::Normal => atom(s, "normal"),
            Reason::Shutdown => atom(s, "shutdown"),
            Reason::ShutdownWith(d) => pair(s, "shutdown", d),
            Reason::Kill => atom(s, "kill"),
            Reason::Killed => atom(s, "killed"),
            Reason::NoProc => atom(s, "noproc"),
            Reason::Error(t) => pair(s, "error", t),
            Reason::Other(t) => pair(s, "other", t),
        }
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Reason::from_term(&etf::Term::deserialize(d)?))
    }
}

impl Reason {
    /// An error reason from anything printable.
    pub fn error(text: impl fmt::Display) -> Self {
        Reason::Error(text.to_string())
    }

    /// Decodes a reason sent by the host; a term of another shape becomes [`Reason::Other`].
    pub fn from_etf(bytes: &[u8]) -> Reason {
        etf::from_slice(bytes).unwrap_or_else(|_| Reason::Other(etf::display(bytes)))
    }

    /// Reads a reason from any term (never fails: unknown shapes become `Other`).
    pub fn from_term(t: &etf::Term) -> Reason {
        use etf::Term;
        let text = |t: &Term| match t {
            Term::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            other => other.to_string(),
        };
        match t {
            Term::Atom(a) => match a.as_str() {
                "normal" => Reason::Normal,
                "shutdown" => Reason::Shutdown,
                "kill" => Reason::Kill,
                "killed" => Reason::Killed,
                "noproc" => Reason::NoProc,
                _ => Reason::Other(t.to_string()),
            },
            Term::Tuple(items) if items.len() == 2 => match &items[0] {
                Term::Atom(tag) if tag == "shutdown" => Reason::ShutdownWith(text(&items[1])),
                Term::Atom(tag) if tag == "error" => Reason::Error(text(&items[1])),
                Term::Atom(tag) if tag == "other" => Reason::Other(text(&items[1])),
                _ => Reason::Other(t.to_string()),
            },
            _ => Reason::Other(t.to_string()),
        }
    }

    /// Whether this reason is abnormal: anything but `normal`, `shutdown` and
    /// `{shutdown, _}` (OTP's rule for crash reports and for restarting transient children).
    pub fn is_abnormal(&self) -> bool {
        !matches!(
            self,
            Reason::Normal | Reason::Shutdown | Reason::ShutdownWith(_)
        )
    }
}

/// Where a state given to `code_change` comes from, as OTP passes `OldVsn`.
///
/// An upgrade (a new build replaced the running one) gives `Up(Vsn)` — OTP's plain `Vsn`;
/// a rollback (`host ctl rollback` swapping back to this older version) gives `Down(Vsn)`
/// — OTP's `{down, Vsn}` — with the version being left, after that version's
/// [`Behaviour::downgrade`] wrote the state for this one. Compare with a string to match an
/// upgrade: `old_vsn == "1"` is true only for `Up("1")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldVsn<'a> {
    /// Upgrading from this version.
    Up(&'a str),
    /// Downgrading from this (newer) version.
    Down(&'a str),
}

impl<'a> OldVsn<'a> {
    /// The version the state comes from, whichever the direction.
    pub fn vsn(&self) -> &'a str {
        match self {
            OldVsn::Up(v) | OldVsn::Down(v) => v,
        }
    }

    /// Whether this is a rollback to an older version.
    pub fn is_down(&self) -> bool {
        matches!(self, OldVsn::Down(_))
    }
}

impl PartialEq<&str> for OldVsn<'_> {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, OldVsn::Up(v) if v == other)
    }
}

impl fmt::Display for OldVsn<'_> {
    /// `1` for an upgrade, `{down, 2}` for a downgrade, as Erlang prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OldVsn::Up(v) => f.write_str(v),
            OldVsn::Down(v) => write!(f, "{{down, {v}}}"),
        }
    }
}

/// An encoded Erlang term borrowed from the host: an old state in `code_change`, or its
/// `extra` argument. Decode it into whatever type describes it.
#[derive(Clone, Copy)]
pub struct EtfRef<'a>(pub &'a [u8]);

impl<'a> EtfRef<'a> {
    /// Decodes into `T` (for example the previous version's state type kept as `StateV1`).
    pub fn decode<T: Deserialize<'a>>(&self) -> Result<T, etf::Error> {
        etf::from_slice(self.0)
    }

    /// The raw ETF bytes (version byte 131 first).
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Display for EtfRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&etf::display(self.0))
    }
}

impl fmt::Debug for EtfRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A message type for a callback a behaviour does not use: nothing decodes into it, so a
/// stray message is reported as a bad message instead of reaching the behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoMessage {}

/// An actor behaviour: the callbacks of one kind of actor.
///
/// Implement it on a unit struct and export it with
/// [`export_behaviours!`](crate::export_behaviours). Every message and the state travel as
/// Erlang terms through serde (see [`etf`]), which is what lets a message queued before a
/// reload be read after it, and a state grow fields.
pub trait Behaviour: 'static {
    /// Name actors are started by (unique in the host). Keep it across versions.
    const NAME: &'static str;
    /// This version, shown in reload events and passed to the next version's `code_change`.
    const VERSION: &'static str;

    /// Arguments to `init`, from the config or from whoever spawns the actor.
    type Args: DeserializeOwned;
    /// The actor's state. `Serialize` + `Deserialize` is what lets it migrate on reload.
    type State: Serialize + DeserializeOwned + Send + 'static;
    /// Requests that expect a reply.
    type Call: DeserializeOwned;
    /// The reply to a call.
    type Reply: Serialize;
    /// One-way requests.
    type Cast: DeserializeOwned;
    /// Other messages: timers you set, replies to your requests, plain sends.
    type Info: DeserializeOwned;

    /// Builds the initial state. An error stops the start with that reason.
    fn init(args: Self::Args, ctx: &mut Ctx<'_>) -> Result<Self::State, BoxError>;

    /// Handles a call. The default crashes the actor, as a missing clause does in Erlang.
    fn handle_call(
        msg: Self::Call,
        from: ReplyTo,
        state: &mut Self::State,
        ctx: &mut Ctx<'_>,
    ) -> CallResult<Self::Reply> {
        let _ = (msg, from, state, ctx);
        panic!("{} does not handle calls", Self::NAME)
    }

    /// Handles a cast. The default ignores it.
    fn handle_cast(msg: Self::Cast, state: &mut Self::State, ctx: &mut Ctx<'_>) -> Next {
        let _ = (msg, state, ctx);
        Next::Continue
    }

    /// Handles any other message. The default ignores it.
    fn handle_info(msg: Self::Info, state: &mut Self::State, ctx: &mut Ctx<'_>) -> Next {
        let _ = (msg, state, ctx);
        Next::Continue
    }

    /// Builds this version's state from the previous version's exported state.
    ///
    /// The default decodes the old state straight into the new type, so a field added with
    /// `#[serde(default)]` just works. Keep the old type (say `StateV1`) and decode
    /// `old_state` into it when the shape changes more than that. An error (or a panic)
    /// rolls the whole reload back: every actor keeps the old version and its old state.
    ///
    /// On a rollback to this (older) version, `old_vsn` is `OldVsn::Down(newer)` and
    /// `old_state` is what the newer version's [`downgrade`](Behaviour::downgrade) wrote
    /// for this version: by default its state as it is, or the older shape if that
    /// version translated it back.
    fn code_change(
        old_vsn: OldVsn<'_>,
        old_state: EtfRef<'_>,
        extra: EtfRef<'_>,
    ) -> Result<Self::State, BoxError> {
        let _ = (old_vsn, extra);
        Ok(old_state.decode()?)
    }

    /// The newer half of a rollback, OTP's `code_change({down, Vsn}, State, Extra)`: this
    /// version, which is being left, writes its state in the shape the older version
    /// `to_vsn` reads, as an encoded term ([`etf::to_vec`]). Only this version knows both
    /// shapes, so only it can translate a renamed or restructured field back.
    ///
    /// The default writes the state as it is, which is all an additive change needs (the
    /// older version ignores unknown map keys). When the shape changed, keep the older
    /// type (say `StateV1`) and write that:
    ///
    /// ```ignore
    /// fn downgrade(s: &State, to_vsn: &str, _extra: EtfRef<'_>) -> Result<Vec<u8>, BoxError> {
    ///     Ok(etf::to_vec(&StateV1 { balance: s.cents })?)
    /// }
    /// ```
    ///
    /// The contract, on `host ctl rollback` from version N (this one) to version M:
    ///
    /// - M is the version loaded before N — the previous one in *load* order — whatever
    ///   the two version strings say (M's may well compare "higher").
    /// 1. The host suspends every actor of the behaviours in N's library at a message
    ///    boundary, as for an upgrade.
    /// 2. For each actor it calls N's `downgrade(&state, to_vsn = M's VERSION, extra)`.
    ///    The state is borrowed, not consumed: it stays N's until the end.
    /// 3. It calls M's [`code_change`](Behaviour::code_change) with
    ///    `OldVsn::Down(N's VERSION)`, the bytes returned here as `old_state`, and the same
    ///    `extra` (an encoded term; today the empty list `[]`).
    /// 4. All or nothing: only if steps 2 and 3 succeeded for every actor are M's new
    ///    states installed and N's dropped. An error, a panic or bytes that are not one
    ///    ETF term, in either step for any actor, leaves every actor on N with its state
    ///    untouched, and the rollback is reported as failed. Then the actors resume.
    fn downgrade(
        state: &Self::State,
        to_vsn: &str,
        extra: EtfRef<'_>,
    ) -> Result<Vec<u8>, BoxError> {
        let _ = (to_vsn, extra);
        Ok(etf::to_vec(state)?)
    }

    /// Runs when the actor stops, with the reason. The state is dropped afterwards.
    fn terminate(reason: &Reason, state: Self::State, ctx: &mut Ctx<'_>) {
        let _ = (reason, state, ctx);
    }
}
