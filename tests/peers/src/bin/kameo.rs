//! kameo: one actor type handling every message (as the host's test plugin does), each
//! actor on the tokio runtime with 2 worker threads.
//!
//! Choices: every actor gets an unbounded mailbox (`spawn_with_mailbox(.., unbounded())`;
//! kameo's default is bounded at 64, which would make the pipelined rows wait on
//! back-pressure, and the host's mailboxes are unbounded); the crate's default `tracing`
//! feature is off (it captures the current span with every message); sends from inside
//! a handler use `try_send` (never blocks on an unbounded mailbox); calls from outside the
//! runtime use `ask(..).blocking_send()`, kameo's own blocking call.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_host_peers::{rss_bytes, timed, Latch, Peer, THREADS, WAIT};
use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;
use tokio::runtime::Runtime;

struct Node {
    count: u64,
    handled: Option<Arc<Latch>>,
}

/// Start-up arguments: counted once started, counted once per increment.
struct Args {
    started: Option<Arc<Latch>>,
    handled: Option<Arc<Latch>>,
}

impl Actor for Node {
    type Args = Args;
    type Error = Infallible;

    async fn on_start(args: Args, _me: ActorRef<Self>) -> Result<Self, Infallible> {
        if let Some(s) = args.started {
            s.arrive();
        }
        Ok(Node {
            count: 0,
            handled: args.handled,
        })
    }
}

struct Incr(u64);
struct Get;
/// Cast `n` increments to the given actor, then answer.
struct Blast(ActorRef<Node>, u64);
/// Make `n` sequential requests to the given actor, then answer.
struct PingPong(ActorRef<Node>, u64);

impl Message<Incr> for Node {
    type Reply = ();
    async fn handle(&mut self, Incr(n): Incr, _: &mut Context<Self, ()>) {
        self.count += n;
        if let Some(h) = &self.handled {
            h.arrive();
        }
    }
}

impl Message<Get> for Node {
    type Reply = u64;
    async fn handle(&mut self, _: Get, _: &mut Context<Self, u64>) -> u64 {
        self.count
    }
}

impl Message<Blast> for Node {
    type Reply = u64;
    async fn handle(&mut self, Blast(to, n): Blast, _: &mut Context<Self, u64>) -> u64 {
        for _ in 0..n {
            let _ = to.tell(Incr(1)).try_send();
        }
        n
    }
}

impl Message<PingPong> for Node {
    type Reply = u64;
    async fn handle(&mut self, PingPong(peer, n): PingPong, _: &mut Context<Self, u64>) -> u64 {
        for _ in 0..n {
            let _ = peer.ask(Get).await;
        }
        n
    }
}

/// Spawns an actor on the runtime the caller is in.
fn spawn(started: Option<Arc<Latch>>, handled: Option<Arc<Latch>>) -> ActorRef<Node> {
    Node::spawn_with_mailbox(Args { started, handled }, mailbox::unbounded())
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .expect("runtime")
}

fn get(to: &ActorRef<Node>) -> u64 {
    to.ask(Get).blocking_send().expect("reply")
}

struct Kameo;

struct Sys {
    rt: Runtime,
    sink: ActorRef<Node>,
    sink2: ActorRef<Node>,
    blaster: ActorRef<Node>,
    pinger: ActorRef<Node>,
    ponger: ActorRef<Node>,
}

impl Peer for Kameo {
    type System = Sys;

    fn start() -> Sys {
        let rt = runtime();
        let _g = rt.enter();
        Sys {
            sink: spawn(None, None),
            sink2: spawn(None, None),
            blaster: spawn(None, None),
            pinger: spawn(None, None),
            ponger: spawn(None, None),
            rt,
        }
    }

    fn host_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            for _ in 0..n {
                sys.sink.tell(Incr(1)).try_send().unwrap();
            }
            get(&sys.sink);
        })
    }

    fn actor_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            sys.blaster
                .ask(Blast(sys.sink2.clone(), n))
                .blocking_send()
                .unwrap();
            get(&sys.sink2);
        })
    }

    fn request_reply(sys: &Sys, rounds: u64) -> Duration {
        timed(|| {
            sys.pinger
                .ask(PingPong(sys.ponger.clone(), rounds))
                .blocking_send()
                .unwrap();
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
        let actors: Vec<ActorRef<Node>> = {
            let _g = rt.enter();
            (0..n).map(|_| spawn(Some(started.clone()), None)).collect()
        };
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
        let actors: Vec<ActorRef<Node>> = {
            let _g = rt.enter();
            (0..n).map(|_| spawn(None, Some(handled.clone()))).collect()
        };
        for a in &actors {
            a.tell(Incr(1)).try_send().unwrap();
        }
        handled.wait(WAIT);
        let took = t.elapsed();
        drop(actors);
        rt.shutdown_timeout(Duration::from_secs(5));
        took
    }
}

fn main() {
    actor_host_peers::main::<Kameo>("peer-kameo");
}
