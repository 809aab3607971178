//! `counter`: the smallest useful behaviour, and the one the demo hot-swaps.
//!
//! Try it: with the host running (`scripts/run-demo.sh`), change what `Tick` does or add a
//! field to `State` (give it `#[serde(default)]`), bump `VERSION`, and run
//! `cargo build -p counter`. The host logs one `reload` event and the count carries on.

use plugin_api::{export_behaviours, Behaviour, BoxError, CallResult, Ctx, Next, ReplyTo};
use serde::{Deserialize, Serialize};

/// The behaviour. A unit struct: all state lives in `State`, which the host keeps.
pub struct Counter;

/// What `init` receives: `#{start => N}` (from the config's `args = { start = N }`).
#[derive(Deserialize)]
pub struct Args {
    #[serde(default)]
    start: i64,
}

/// The state. It migrates on reload as the Erlang map `#{count => N}`: a new version can
/// add fields with `#[serde(default)]` and the default `code_change` fills them in.
#[derive(Serialize, Deserialize)]
pub struct State {
    count: i64,
}

/// Calls: `get` answers the current count.
#[derive(Deserialize)]
pub enum Call {
    Get,
}

/// Casts: `{incr, N}` adds N, `reset` sets the count to zero.
#[derive(Deserialize)]
pub enum Cast {
    Incr(i64),
    Reset,
}

/// Plain messages: `tick`, sent by the `ticker` actor.
#[derive(Deserialize)]
pub enum Info {
    Tick,
}

impl Behaviour for Counter {
    const NAME: &'static str = "counter";
    const VERSION: &'static str = "1.0.0";

    type Args = Args;
    type State = State;
    type Call = Call;
    type Reply = i64;
    type Cast = Cast;
    type Info = Info;

    fn init(args: Args, _ctx: &mut Ctx<'_>) -> Result<State, BoxError> {
        Ok(State { count: args.start })
    }

    fn handle_call(
        msg: Call,
        _from: ReplyTo,
        state: &mut State,
        _ctx: &mut Ctx<'_>,
    ) -> CallResult<i64> {
        match msg {
            Call::Get => CallResult::Reply(state.count),
        }
    }

    fn handle_cast(msg: Cast, state: &mut State, _ctx: &mut Ctx<'_>) -> Next {
        match msg {
            Cast::Incr(n) => state.count += n,
            Cast::Reset => state.count = 0,
        }
        Next::Continue
    }

    fn handle_info(msg: Info, state: &mut State, ctx: &mut Ctx<'_>) -> Next {
        match msg {
            Info::Tick => {
                state.count += 1;
                ctx.info(format_args!("tick: count = {}", state.count));
            }
        }
        Next::Continue
    }
}

export_behaviours!(Counter);
