//! `ticker`: sends `tick` to a named actor at a fixed interval, using a timer it re-arms
//! each time (`erlang:send_after/3`): callbacks never sleep or block.

use std::time::Duration;

use plugin_api::{export_behaviours, Behaviour, BoxError, Ctx, Next, NoMessage};
use serde::{Deserialize, Serialize};

/// The behaviour.
pub struct Ticker;

/// `#{target => <<"counter">>, every_ms => 1000}`.
#[derive(Deserialize)]
pub struct Args {
    target: String,
    #[serde(default = "default_every")]
    every_ms: u64,
}

fn default_every() -> u64 {
    1000
}

/// The state: where to send and how often; `sent` counts ticks delivered.
#[derive(Serialize, Deserialize)]
pub struct State {
    target: String,
    every_ms: u64,
    sent: u64,
}

/// The timer message the ticker sends itself, and the one it sends the target.
#[derive(Serialize, Deserialize)]
pub enum Tick {
    Tick,
}

impl Behaviour for Ticker {
    const NAME: &'static str = "ticker";
    const VERSION: &'static str = "1.0.0";

    type Args = Args;
    type State = State;
    type Call = NoMessage;
    type Reply = ();
    type Cast = NoMessage;
    type Info = Tick;

    fn init(args: Args, ctx: &mut Ctx<'_>) -> Result<State, BoxError> {
        let me = ctx.id();
        ctx.send_after(Duration::from_millis(args.every_ms), me, &Tick::Tick)?;
        Ok(State {
            target: args.target,
            every_ms: args.every_ms,
            sent: 0,
        })
    }

    fn handle_info(_tick: Tick, state: &mut State, ctx: &mut Ctx<'_>) -> Next {
        // The target may be restarting or not started yet: skip this tick, keep ticking.
        if ctx.send(state.target.as_str(), &Tick::Tick).is_ok() {
            state.sent += 1;
        }
        let me = ctx.id();
        let _ = ctx.send_after(Duration::from_millis(state.every_ms), me, &Tick::Tick);
        Next::Continue
    }
}

export_behaviours!(Ticker);
