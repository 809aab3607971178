//! `Behaviour::downgrade` through the function table `export_behaviours!` exports
//! (`glue::desc`), called the way the host calls it: the default writes the state as it
//! is, a custom one gets the target version and `extra`, and an error, a panic or bytes
//! that are not a term come back as an `Outcome`, never as an unwind.

use plugin_api::__private::abi_stable::std_types::{RSlice, RStr};
use plugin_api::abi::{BehaviourDesc, Outcome, OutcomeCode, StatePtr};
use plugin_api::etf::{self, Atom, Term};
use plugin_api::{Behaviour, BoxError, Ctx, EtfRef, NoMessage};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct State {
    count: i64,
    name: String,
    tags: Vec<Atom>,
}

/// Declares a behaviour over `State` whose `downgrade` is `$body` (or the default).
macro_rules! behaviour {
    ($ty:ident $(, |$s:ident, $to:ident, $extra:ident| $body:expr)?) => {
        struct $ty;
        impl Behaviour for $ty {
            const NAME: &'static str = stringify!($ty);
            const VERSION: &'static str = "2";
            type Args = ();
            type State = State;
            type Call = NoMessage;
            type Reply = ();
            type Cast = NoMessage;
            type Info = NoMessage;
            fn init(_: (), _: &mut Ctx<'_>) -> Result<State, BoxError> {
                unreachable!("not called here")
            }
            $(
                fn downgrade(
                    $s: &State,
                    $to: &str,
                    $extra: EtfRef<'_>,
                ) -> Result<Vec<u8>, BoxError> {
                    $body
                }
            )?
        }
    };
}

behaviour!(Plain);
behaviour!(Custom, |s, to, extra| {
    let extra: Term = extra.decode()?;
    Ok(etf::to_vec(&(Atom::new("down_to"), to, s.count, extra))?)
});
behaviour!(Fails, |_s, to, _extra| Err(format!(
    "cannot go down to {to}"
)
.into()));
behaviour!(Panics, |_s, _to, _extra| panic!("downgrade exploded"));
behaviour!(Garbage, |_s, _to, _extra| Ok(vec![131, 104, 2, 97]));

fn sample() -> State {
    State {
        count: 42,
        name: "ann".into(),
        tags: vec![Atom::new("a"), Atom::new("b")],
    }
}

/// A state made by `desc`'s own `code_change`, as after a reload.
fn made_by(desc: &BehaviourDesc) -> StatePtr {
    let bytes = etf::to_vec(&sample()).unwrap();
    let nil = etf::to_vec(&Term::List(vec![])).unwrap();
    let mut out = StatePtr::NULL;
    let o = (desc.code_change)(
        RStr::from_str("1"),
        false,
        RSlice::from_slice(&bytes),
        RSlice::from_slice(&nil),
        &mut out,
    );
    assert_eq!(o.code, OutcomeCode::Ok);
    out
}

/// Calls `downgrade` through the table, as the host will, and frees the state after.
fn downgrade(desc: BehaviourDesc, to: &str, extra: &Term) -> Outcome {
    let state = made_by(&desc);
    let extra = extra.encode();
    let out = (desc.downgrade)(state, RStr::from_str(to), RSlice::from_slice(&extra));
    // The state was only borrowed: still this version's, still exportable.
    let again = (desc.export_state)(state);
    assert_eq!(again.code, OutcomeCode::Ok);
    assert_eq!(etf::from_slice::<State>(&again.detail).unwrap(), sample());
    (desc.drop_state)(state);
    out
}

fn text(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.detail).into_owned()
}

#[test]
fn the_default_downgrade_writes_the_state_as_it_is() {
    let desc = plugin_api::glue::desc::<Plain>();
    let out = downgrade(desc, "1", &Term::List(vec![]));
    assert_eq!(out.code, OutcomeCode::Ok, "{}", text(&out));
    // Byte for byte what export_state (and etf::to_vec) writes.
    assert_eq!(out.detail.as_slice(), etf::to_vec(&sample()).unwrap());
    assert_eq!(
        etf::display(&out.detail),
        "#{count => 42,name => <<\"ann\">>,tags => [a,b]}"
    );
}

#[test]
fn a_custom_downgrade_gets_the_target_version_and_extra() {
    let desc = plugin_api::glue::desc::<Custom>();
    let extra = Term::Tuple(vec![Term::atom("reason"), Term::Integer(7)]);
    let out = downgrade(desc, "1.4.0", &extra);
    assert_eq!(out.code, OutcomeCode::Ok, "{}", text(&out));
    assert_eq!(
        etf::display(&out.detail),
        "{down_to,<<\"1.4.0\">>,42,{reason,7}}"
    );
}

#[test]
fn errors_panics_and_garbage_are_reported_not_unwound() {
    let out = downgrade(plugin_api::glue::desc::<Fails>(), "1", &Term::List(vec![]));
    assert_eq!(out.code, OutcomeCode::Error);
    assert_eq!(text(&out), "cannot go down to 1");

    let out = downgrade(plugin_api::glue::desc::<Panics>(), "1", &Term::List(vec![]));
    assert_eq!(out.code, OutcomeCode::Panic);
    assert!(text(&out).contains("downgrade exploded"), "{}", text(&out));

    let out = downgrade(
        plugin_api::glue::desc::<Garbage>(),
        "1",
        &Term::List(vec![]),
    );
    assert_eq!(out.code, OutcomeCode::Error);
    assert!(
        text(&out).starts_with("downgrade to 1 returned bytes that are not one ETF term: "),
        "{}",
        text(&out)
    );
}
