//! `echo`: answers every call with the term it was sent, whatever its shape. It shows the
//! dynamic [`Term`] type: a behaviour that does not know its messages' types in advance.

use plugin_api::etf::Term;
use plugin_api::{export_behaviours, Behaviour, BoxError, CallResult, Ctx, Next, ReplyTo};
use serde::{Deserialize, Serialize};

/// The behaviour.
pub struct Echo;

/// The state: how many calls it answered.
#[derive(Serialize, Deserialize, Default)]
pub struct State {
    echoed: u64,
}

impl Behaviour for Echo {
    const NAME: &'static str = "echo";
    const VERSION: &'static str = "1.0.0";

    type Args = ();
    type State = State;
    type Call = Term;
    type Reply = Term;
    type Cast = Term;
    type Info = Term;

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> Result<State, BoxError> {
        Ok(State::default())
    }

    fn handle_call(
        msg: Term,
        _from: ReplyTo,
        state: &mut State,
        _ctx: &mut Ctx<'_>,
    ) -> CallResult<Term> {
        state.echoed += 1;
        CallResult::Reply(msg)
    }

    fn handle_cast(msg: Term, _state: &mut State, ctx: &mut Ctx<'_>) -> Next {
        ctx.info(format_args!("cast: {msg}"));
        Next::Continue
    }

    fn handle_info(msg: Term, _state: &mut State, ctx: &mut Ctx<'_>) -> Next {
        ctx.info(format_args!("message: {msg}"));
        Next::Continue
    }
}

export_behaviours!(Echo);
