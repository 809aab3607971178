//! `account`: a bank account, and the example to copy when a state changes shape.
//!
//! One crate builds two versions of the behaviour (a cargo feature picks one), so the
//! upgrade and the rollback can be tried for real:
//!
//! | build                                    | VERSION | state                              |
//! |------------------------------------------|---------|------------------------------------|
//! | `cargo build -p account`                 | `1.0.0` | `#{owner => <<"ann">>, balance => 1250}` |
//! | `cargo build -p account --features v2`   | `2.0.0` | `#{owner => <<"ann">>, cents => 1250}`   |
//!
//! Going up, 2.0.0's `code_change` reads 1.0.0's `balance` into `cents`. Going back down
//! (`host ctl rollback account`), OTP's order: 2.0.0 — the version that knows both
//! shapes — writes the state as 1.0.0 stores it in `downgrade`, then 1.0.0's
//! `code_change` reads it with `OldVsn::Down("2.0.0")`. So 1.0.0 needs no migration code
//! at all: it never sees a shape it does not know.
//!
//! Try it: add `[[actors]]` with `behaviour = "account"`, `name = "account"` and
//! `args = { owner = "ann" }` to a config, run the host with it, then
//!
//! ```sh
//! host ctl call account '{deposit, 1250}'     # {ok,1250}
//! cargo build -p account --features v2        # reload 1.0.0 -> 2.0.0
//! host ctl state account                      # #{owner => <<"ann">>,cents => 1250}
//! host ctl rollback account                   # 2.0.0 -> 1.0.0, state migrated down
//! host ctl state account                      # #{owner => <<"ann">>,balance => 1250}
//! ```

use plugin_api::{export_behaviours, Behaviour, BoxError, CallResult, Ctx, Reason, ReplyTo};
// Only version 2 migrates anything.
#[cfg(feature = "v2")]
use plugin_api::{etf, EtfRef, OldVsn};
use serde::{Deserialize, Serialize};

/// The behaviour.
pub struct Account;

#[cfg(not(feature = "v2"))]
const VERSION: &str = "1.0.0";
#[cfg(feature = "v2")]
const VERSION: &str = "2.0.0";

/// The state as 1.0.0 keeps it. Amounts are whole cents, never floats.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StateV1 {
    owner: String,
    balance: u64,
}

/// The state as 2.0.0 keeps it: the same amount under a clearer name.
///
/// (`#[serde(alias = "balance")]` on `cents` would read the old name too; the explicit
/// `code_change` below is the pattern that works for any change of shape.)
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct StateV2 {
    owner: String,
    cents: u64,
}

#[cfg(not(feature = "v2"))]
type State = StateV1;
#[cfg(feature = "v2")]
type State = StateV2;

/// The handlers below do not care what the field is called.
#[cfg(not(feature = "v2"))]
fn cents(s: &mut State) -> &mut u64 {
    &mut s.balance
}
#[cfg(feature = "v2")]
fn cents(s: &mut State) -> &mut u64 {
    &mut s.cents
}

/// What `init` receives: `#{owner => <<"ann">>}`.
#[derive(Deserialize)]
pub struct Args {
    owner: String,
}

/// Calls: `{deposit, Cents}`, `{withdraw, Cents}`, `balance`.
#[derive(Deserialize)]
pub enum Call {
    Deposit(u64),
    Withdraw(u64),
    Balance,
}

/// Every call answers `{ok, Balance}` or `{error, Why}`.
#[derive(Serialize)]
pub enum Reply {
    Ok(u64),
    Error(Refusal),
}

/// Why a call changed nothing: `insufficient_funds` or `overflow`.
#[derive(Serialize)]
pub enum Refusal {
    InsufficientFunds,
    Overflow,
}

impl Behaviour for Account {
    const NAME: &'static str = "account";
    const VERSION: &'static str = VERSION;

    type Args = Args;
    type State = State;
    type Call = Call;
    type Reply = Reply;
    type Cast = plugin_api::NoMessage;
    type Info = plugin_api::NoMessage;

    #[cfg(not(feature = "v2"))]
    fn init(args: Args, _ctx: &mut Ctx<'_>) -> Result<State, BoxError> {
        Ok(StateV1 {
            owner: args.owner,
            balance: 0,
        })
    }

    #[cfg(feature = "v2")]
    fn init(args: Args, _ctx: &mut Ctx<'_>) -> Result<State, BoxError> {
        Ok(StateV2 {
            owner: args.owner,
            cents: 0,
        })
    }

    fn handle_call(
        msg: Call,
        _from: ReplyTo,
        state: &mut State,
        _ctx: &mut Ctx<'_>,
    ) -> CallResult<Reply> {
        let cents = cents(state);
        let reply = match msg {
            Call::Deposit(n) => match cents.checked_add(n) {
                Some(total) => {
                    *cents = total;
                    Reply::Ok(total)
                }
                None => Reply::Error(Refusal::Overflow),
            },
            Call::Withdraw(n) if n > *cents => Reply::Error(Refusal::InsufficientFunds),
            Call::Withdraw(n) => {
                *cents -= n;
                Reply::Ok(*cents)
            }
            Call::Balance => Reply::Ok(*cents),
        };
        CallResult::Reply(reply)
    }

    /// 2.0.0 from 1.0.0: the same amount under its new name. Anything else (a rebuild of
    /// 2.x, or a rollback to here from a later version, whose `downgrade` wrote our
    /// shape) is already a `StateV2`.
    #[cfg(feature = "v2")]
    fn code_change(
        old_vsn: OldVsn<'_>,
        old_state: EtfRef<'_>,
        _extra: EtfRef<'_>,
    ) -> Result<State, BoxError> {
        match old_vsn {
            OldVsn::Up(v) if v.starts_with("1.") => {
                let old: StateV1 = old_state.decode()?;
                Ok(StateV2 {
                    owner: old.owner,
                    cents: old.balance,
                })
            }
            _ => Ok(old_state.decode()?),
        }
    }

    /// 2.0.0 to 1.0.0: write the state back under its old name. 1.0.0's default
    /// `code_change` then decodes it as it is.
    #[cfg(feature = "v2")]
    fn downgrade(state: &State, to_vsn: &str, _extra: EtfRef<'_>) -> Result<Vec<u8>, BoxError> {
        if to_vsn.starts_with("1.") {
            let old = StateV1 {
                owner: state.owner.clone(),
                balance: state.cents,
            };
            return Ok(etf::to_vec(&old)?);
        }
        Ok(etf::to_vec(state)?)
    }

    // 1.0.0 keeps the default `code_change` and `downgrade`: on a rollback to it, 2.0.0
    // has already written the state in 1.0.0's shape (`OldVsn::Down("2.0.0")`), and it
    // has no older shape to write back to.

    fn terminate(reason: &Reason, mut state: State, ctx: &mut Ctx<'_>) {
        let owner = state.owner.clone();
        ctx.info(format_args!(
            "account of {owner} closed ({reason:?}) with a balance of {} cents",
            cents(&mut state)
        ));
    }
}

export_behaviours!(Account);

/// Through the function table the host calls (what `export_behaviours!` exports), without
/// a host: the migrations in both directions.
#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::__private::abi_stable::std_types::{RSlice, RStr};
    use plugin_api::abi::{BehaviourDesc, OutcomeCode, StatePtr};
    use plugin_api::etf;

    fn desc() -> BehaviourDesc {
        plugin_api::glue::desc::<Account>()
    }

    /// A state of this version, built by `code_change` from `bytes`.
    fn migrate(from: &str, down: bool, bytes: &[u8]) -> StatePtr {
        let mut state = StatePtr::NULL;
        let nil = etf::to_vec(&Vec::<u8>::new()).unwrap();
        let out = (desc().code_change)(
            RStr::from_str(from),
            down,
            RSlice::from_slice(bytes),
            RSlice::from_slice(&nil),
            &mut state,
        );
        assert_eq!(
            out.code,
            OutcomeCode::Ok,
            "{}",
            String::from_utf8_lossy(&out.detail)
        );
        state
    }

    fn export(state: StatePtr) -> String {
        etf::display(&(desc().export_state)(state).detail)
    }

    fn downgrade(state: StatePtr, to: &str) -> Vec<u8> {
        let nil = etf::to_vec(&Vec::<u8>::new()).unwrap();
        let out = (desc().downgrade)(state, RStr::from_str(to), RSlice::from_slice(&nil));
        assert_eq!(out.code, OutcomeCode::Ok);
        out.detail.to_vec()
    }

    fn v1(balance: u64) -> Vec<u8> {
        etf::to_vec(&StateV1 {
            owner: "ann".into(),
            balance,
        })
        .unwrap()
    }

    #[cfg(not(feature = "v2"))]
    #[test]
    fn version_1_takes_the_state_2_wrote_for_it_and_hands_down_as_is() {
        assert_eq!(desc().version.as_str(), "1.0.0");
        // What 2.0.0's downgrade writes, with OldVsn::Down("2.0.0").
        let state = migrate("2.0.0", true, &v1(1250));
        assert_eq!(export(state), "#{owner => <<\"ann\">>,balance => 1250}");
        // The default downgrade: the state as it is.
        let down = downgrade(state, "0.9.0");
        assert_eq!(
            etf::from_slice::<StateV1>(&down).unwrap(),
            StateV1 {
                owner: "ann".into(),
                balance: 1250
            }
        );
        (desc().drop_state)(state);
    }

    #[cfg(feature = "v2")]
    #[test]
    fn version_2_renames_balance_going_up_and_back_down() {
        assert_eq!(desc().version.as_str(), "2.0.0");
        let state = migrate("1.0.0", false, &v1(1250));
        assert_eq!(export(state), "#{owner => <<\"ann\">>,cents => 1250}");
        // Down to 1.x: the old name again, exactly what 1.0.0 stores.
        assert_eq!(downgrade(state, "1.0.0"), v1(1250));
        // Down to another 2.x: the state as it is.
        let same = downgrade(state, "2.0.0-rc1");
        assert_eq!(etf::display(&same), "#{owner => <<\"ann\">>,cents => 1250}");
        (desc().drop_state)(state);
        // A rollback to 2.0.0 from a later version gets our own shape.
        let state = migrate("3.0.0", true, &same);
        assert_eq!(export(state), "#{owner => <<\"ann\">>,cents => 1250}");
        (desc().drop_state)(state);
    }
}
