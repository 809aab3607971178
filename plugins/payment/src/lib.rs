//! `payment`: the essay's example, as two behaviours in one library (they reload together).
//!
//! - `payment` processes `{process, Amount}` calls. Small amounts are answered at once;
//!   large ones go to a (simulated) fraud review and are answered later through the stored
//!   `from` — `{noreply, State}` plus `gen_server:reply/2` — because a callback never blocks.
//! - `payment_api` asks `payment` for a payment every few seconds with an explicit timeout
//!   and handles the reply *or* the timeout as a message. No try/catch maze: the reply is
//!   one of three messages, and the host guarantees a late reply never arrives. Given a
//!   `node`, it asks the `payment` of that node of the cluster instead (Erlang's
//!   `{payment, Node}`), watches the node once it has answered, and crashes when the node
//!   goes down — its supervisor restarts it, and it waits for the node to come back.

use std::time::Duration;

use plugin_api::etf::Atom;
use plugin_api::{
    export_behaviours, Behaviour, BoxError, CallResult, Ctx, Next, NoMessage, Reason, ReplyTo,
    ReqId, To,
};
use serde::{Deserialize, Serialize};

/// The payment service.
pub struct Payment;

/// Requests to the service: `{process, Amount}`.
#[derive(Serialize, Deserialize)]
pub enum Request {
    Process(u64),
}

/// Its answers: `{ok, ReceiptNo}` or `{error, Why}`.
#[derive(Serialize, Deserialize, Debug)]
pub enum PaymentReply {
    Ok(u64),
    Error(String),
}

/// A payment held for review: who to answer, and for how much.
#[derive(Serialize, Deserialize)]
pub struct Held {
    from: ReplyTo,
    amount: u64,
}

/// The service's state. `held` holds callers waiting for a review; being plain data, it
/// migrates across a reload like the rest of the state.
#[derive(Serialize, Deserialize, Default)]
pub struct PaymentState {
    next_receipt: u64,
    held: Vec<Held>,
}

/// The review finishing: `{reviewed, Amount}`.
#[derive(Serialize, Deserialize)]
pub enum Review {
    Reviewed(u64),
}

/// Amounts above this go to review.
const REVIEW_ABOVE: u64 = 1000;

impl Behaviour for Payment {
    const NAME: &'static str = "payment";
    const VERSION: &'static str = "1.0.0";

    type Args = ();
    type State = PaymentState;
    type Call = Request;
    type Reply = PaymentReply;
    type Cast = NoMessage;
    type Info = Review;

    fn init(_args: (), _ctx: &mut Ctx<'_>) -> Result<PaymentState, BoxError> {
        Ok(PaymentState {
            next_receipt: 1,
            held: Vec::new(),
        })
    }

    fn handle_call(
        msg: Request,
        from: ReplyTo,
        state: &mut PaymentState,
        ctx: &mut Ctx<'_>,
    ) -> CallResult<PaymentReply> {
        let Request::Process(amount) = msg;
        if amount == 0 {
            return CallResult::Reply(PaymentReply::Error("amount must be positive".into()));
        }
        if amount > REVIEW_ABOVE {
            // Answer later: keep `from`, finish the review in 800 ms.
            state.held.push(Held { from, amount });
            let me = ctx.id();
            let _ = ctx.send_after(Duration::from_millis(800), me, &Review::Reviewed(amount));
            return CallResult::NoReply;
        }
        CallResult::Reply(PaymentReply::Ok(receipt(state)))
    }

    fn handle_info(msg: Review, state: &mut PaymentState, ctx: &mut Ctx<'_>) -> Next {
        let Review::Reviewed(amount) = msg;
        if let Some(i) = state.held.iter().position(|h| h.amount == amount) {
            let held = state.held.remove(i);
            let r = receipt(state);
            // The caller may have given up already; the host then drops the reply.
            if ctx.reply(held.from, &PaymentReply::Ok(r)).is_err() {
                ctx.warn(format_args!(
                    "payment of {amount} reviewed, but the caller stopped waiting"
                ));
            }
        }
        Next::Continue
    }
}

fn receipt(state: &mut PaymentState) -> u64 {
    let r = state.next_receipt;
    state.next_receipt += 1;
    r
}

/// The client: an API actor that requests payments with a timeout.
pub struct PaymentApi;

/// `#{every_ms => 3000, timeout_ms => 500}`, and optionally `node => <<"pay@127.0.0.1">>`.
#[derive(Deserialize)]
pub struct ApiArgs {
    every_ms: u64,
    timeout_ms: u64,
    #[serde(default)]
    node: Option<String>,
}

/// The client's state.
#[derive(Serialize, Deserialize)]
pub struct ApiState {
    every_ms: u64,
    timeout_ms: u64,
    round: u64,
    ok: u64,
    timed_out: u64,
    /// The node whose `payment` it asks (none: this host's).
    #[serde(default)]
    node: Option<String>,
    /// Whether it watches that node (from its first answer on).
    #[serde(default)]
    watching: bool,
}

/// What the client receives: its own timer, and the outcome of each request.
#[derive(Serialize, Deserialize)]
pub enum ApiInfo {
    /// Time to ask for the next payment.
    Next,
    /// `{reply, ReqId, Reply}`: the service answered in time.
    Reply(ReqId, PaymentReply),
    /// `{timeout, ReqId}`: it did not (or its node went down: at once).
    Timeout(ReqId),
    /// `{nodedown, Node}`: the payment node is gone.
    Nodedown(Atom),
}

impl Behaviour for PaymentApi {
    const NAME: &'static str = "payment_api";
    const VERSION: &'static str = "1.0.0";

    type Args = ApiArgs;
    type State = ApiState;
    type Call = NoMessage;
    type Reply = ();
    type Cast = NoMessage;
    type Info = ApiInfo;

    fn init(args: ApiArgs, ctx: &mut Ctx<'_>) -> Result<ApiState, BoxError> {
        let me = ctx.id();
        ctx.send_after(Duration::from_millis(args.every_ms), me, &ApiInfo::Next)?;
        Ok(ApiState {
            every_ms: args.every_ms,
            timeout_ms: args.timeout_ms,
            round: 0,
            ok: 0,
            timed_out: 0,
            node: args.node,
            watching: false,
        })
    }

    fn handle_info(msg: ApiInfo, state: &mut ApiState, ctx: &mut Ctx<'_>) -> Next {
        match msg {
            ApiInfo::Next => {
                state.round += 1;
                // Every third payment is large enough to be reviewed, and times out.
                let amount = if state.round.is_multiple_of(3) {
                    5000
                } else {
                    10 * state.round
                };
                let timeout = Duration::from_millis(state.timeout_ms);
                let to = match &state.node {
                    Some(node) => To::remote("payment", node),
                    None => To::Name("payment"),
                };
                match ctx.request(to, &Request::Process(amount), timeout) {
                    Ok(req) => ctx.info(format_args!("request {}: pay {amount}", req.0)),
                    Err(e) => ctx.warn(format_args!("payment service unavailable: {e}")),
                }
                let me = ctx.id();
                let _ = ctx.send_after(Duration::from_millis(state.every_ms), me, &ApiInfo::Next);
            }
            ApiInfo::Reply(req, reply) => {
                state.ok += 1;
                ctx.info(format_args!("request {}: {reply:?}", req.0));
                if let (Some(node), false) = (&state.node, state.watching) {
                    // The node answers: from now on, its loss is ours to react to.
                    state.watching = ctx.monitor_node(node, true).is_ok();
                }
            }
            ApiInfo::Timeout(req) => {
                state.timed_out += 1;
                ctx.warn(format_args!(
                    "request {}: timed out after {} ms",
                    req.0, state.timeout_ms
                ));
            }
            ApiInfo::Nodedown(node) => {
                // Let it crash: the supervisor restarts the client, which waits for the
                // node to answer again before it watches it.
                ctx.warn(format_args!("payment node {} is down", node.as_str()));
                return Next::Stop(Reason::error(format!("nodedown {}", node.as_str())));
            }
        }
        Next::Continue
    }
}

export_behaviours!(Payment, PaymentApi);
