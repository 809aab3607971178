//! `flaky`: a worker that crashes now and then, to watch "let it crash" at work. It counts
//! its own ticks and panics on every `crash_every`-th one; its supervisor restarts it with
//! a fresh state (the count starts again), and nothing else notices.

use std::time::Duration;

use plugin_api::{export_behaviours, Behaviour, BoxError, Ctx, Next, NoMessage};
use serde::{Deserialize, Serialize};

/// The behaviour.
pub struct Flaky;

/// `#{every_ms => 1000, crash_every => 7}`.
#[derive(Deserialize)]
pub struct Args {
    #[serde(default = "second")]
    every_ms: u64,
    #[serde(default = "seven")]
    crash_every: u64,
}

fn second() -> u64 {
    1000
}

fn seven() -> u64 {
    7
}

/// The state: ticks since this incarnation started.
#[derive(Serialize, Deserialize)]
pub struct State {
    ticks: u64,
    crash_every: u64,
}

/// Its own timer message.
#[derive(Serialize, Deserialize)]
pub enum Tick {
    Tick,
}

impl Behaviour for Flaky {
    const NAME: &'static str = "flaky";
    const VERSION: &'static str = "1.0.0";

    type Args = Args;
    type State = State;
    type Call = NoMessage;
    type Reply = ();
    type Cast = NoMessage;
    type Info = Tick;

    fn init(args: Args, ctx: &mut Ctx<'_>) -> Result<State, BoxError> {
        // An interval timer addressed to ourselves: it dies with this incarnation.
        let me = ctx.id();
        ctx.send_interval(Duration::from_millis(args.every_ms), me, &Tick::Tick)?;
        Ok(State {
            ticks: 0,
            crash_every: args.crash_every.max(1),
        })
    }

    fn handle_info(_tick: Tick, state: &mut State, _ctx: &mut Ctx<'_>) -> Next {
        state.ticks += 1;
        // No error handling here: if it goes wrong, crash, and let the supervisor restart us.
        assert!(
            !state.ticks.is_multiple_of(state.crash_every),
            "flaky crashed on tick {}, as it does",
            state.ticks
        );
        Next::Continue
    }
}

export_behaviours!(Flaky);
