//! ractor: one actor type handling every message (as the host's test plugin does), on the
//! tokio runtime with 2 worker threads.
//!
//! Choices: the crate's default `message_span_propogation` feature is off (it carries a
//! tracing span with every message); `Actor::spawn(..).await` is ractor's only spawn and
//! returns once `pre_start` has run (like the host's `spawn` after `init`); calls from
//! outside the runtime block on `ActorRef::call` with `futures::executor::block_on` (ractor
//! has no blocking call of its own); casts use `ActorRef::cast` (unbounded mailbox, the
//! only kind ractor has).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_host_peers::{rss_bytes, timed, Latch, Peer, THREADS, WAIT};
use futures::executor::block_on;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::runtime::Runtime;

enum Msg {
    Incr(u64),
    Get(RpcReplyPort<u64>),
    /// Cast `n` increments to the given actor, then answer.
    Blast(ActorRef<Msg>, u64, RpcReplyPort<u64>),
    /// Make `n` sequential requests to the given actor, then answer.
    PingPong(ActorRef<Msg>, u64, RpcReplyPort<u64>),
}

struct Node;

struct State {
    count: u64,
    handled: Option<Arc<Latch>>,
}

/// Start-up arguments: counted once started, counted once per increment.
struct Args {
    started: Option<Arc<Latch>>,
    handled: Option<Arc<Latch>>,
}

impl Actor for Node {
    type Msg = Msg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(&self, _me: ActorRef<Msg>, args: Args) -> Result<State, ActorProcessingErr> {
        if let Some(s) = args.started {
            s.arrive();
        }
        Ok(State {
            count: 0,
            handled: args.handled,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<Msg>,
        msg: Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Incr(n) => {
                state.count += n;
                if let Some(h) = &state.handled {
                    h.arrive();
                }
            }
            Msg::Get(reply) => {
                let _ = reply.send(state.count);
            }
            Msg::Blast(to, n, reply) => {
                for _ in 0..n {
                    let _ = to.cast(Msg::Incr(1));
                }
                let _ = reply.send(n);
            }
            Msg::PingPong(peer, n, reply) => {
                for _ in 0..n {
                    let _ = ractor::call!(peer, Msg::Get);
                }
                let _ = reply.send(n);
            }
        }
        Ok(())
    }
}

async fn spawn(started: Option<Arc<Latch>>, handled: Option<Arc<Latch>>) -> ActorRef<Msg> {
    let (actor, _join) = Actor::spawn(None, Node, Args { started, handled })
        .await
        .expect("spawn");
    actor
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .expect("runtime")
}

fn get(to: &ActorRef<Msg>) -> u64 {
    block_on(async { ractor::call!(to, Msg::Get) }).expect("reply")
}

struct Ractor;

struct Sys {
    rt: Runtime,
    sink: ActorRef<Msg>,
    sink2: ActorRef<Msg>,
    blaster: ActorRef<Msg>,
    pinger: ActorRef<Msg>,
    ponger: ActorRef<Msg>,
}

impl Peer for Ractor {
    type System = Sys;

    fn start() -> Sys {
        let rt = runtime();
        let (sink, sink2, blaster, pinger, ponger) = rt.block_on(async {
            (
                spawn(None, None).await,
                spawn(None, None).await,
                spawn(None, None).await,
                spawn(None, None).await,
                spawn(None, None).await,
            )
        });
        Sys {
            rt,
            sink,
            sink2,
            blaster,
            pinger,
            ponger,
        }
    }

    fn host_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            for _ in 0..n {
                sys.sink.cast(Msg::Incr(1)).unwrap();
            }
            get(&sys.sink);
        })
    }

    fn actor_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            let to = sys.sink2.clone();
            block_on(async { ractor::call!(sys.blaster, Msg::Blast, to, n) }).unwrap();
            get(&sys.sink2);
        })
    }

    fn request_reply(sys: &Sys, rounds: u64) -> Duration {
        timed(|| {
            let peer = sys.ponger.clone();
            block_on(async { ractor::call!(sys.pinger, Msg::PingPong, peer, rounds) }).unwrap();
        })
    }

    fn blocking_calls(sys: &Sys, calls: u64) -> Duration {
        timed(|| {
            for _ in 0..calls {
                get(&sys.sink);
            }
        })
    }

    fn stop(sys: Sys) {
        let Sys { rt, .. } = sys;
        rt.shutdown_timeout(Duration::from_secs(5));
    }

    fn spawn(n: u64) -> (Duration, u64) {
        let rt = runtime();
        let started = Arc::new(Latch::new(n));
        let before = rss_bytes();
        let t = Instant::now();
        let actors: Vec<ActorRef<Msg>> = rt.block_on(async {
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(spawn(Some(started.clone()), None).await);
            }
            v
        });
        started.wait(WAIT);
        let took = t.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        drop(actors);
        rt.shutdown_timeout(Duration::from_secs(5));
        (took, grown)
    }

    fn million(n: u64) -> Duration {
        let rt = runtime();
        let handled = Arc::new(Latch::new(n));
        let t = Instant::now();
        let actors: Vec<ActorRef<Msg>> = rt.block_on(async {
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(spawn(None, Some(handled.clone())).await);
            }
            v
        });
        for a in &actors {
            a.cast(Msg::Incr(1)).unwrap();
        }
        handled.wait(WAIT);
        let took = t.elapsed();
        drop(actors);
        rt.shutdown_timeout(Duration::from_secs(5));
        took
    }
}

fn main() {
    actor_host_peers::main::<Ractor>("peer-ractor");
}
