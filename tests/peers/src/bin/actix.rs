//! actix: one actor type handling every message (as the host's test plugin does), on two
//! arbiters (two threads, each a single-threaded tokio runtime; the system's own thread
//! only supervises them and runs no actor).
//!
//! Choices: an actix actor lives on the arbiter it was started on, so placement is the
//! user's: the sink of `host_to_actor` on arbiter A; `actor_to_actor`'s blaster and sink
//! both on A (measured faster here than producer and consumer on different arbiters, which
//! `ACTIX_A2A_SPLIT=1` selects: 190-310 vs 270-860 ns per message); the pinger and ponger
//! of `request_reply` on one arbiter (a round trip then never crosses threads, which is how
//! an actix user would place a chatty pair); spawned actors
//! round-robin over both arbiters with `start_in_arbiter` from the outside thread. Casts use
//! `do_send` (ignores the mailbox's capacity of 16, like an unbounded mailbox); the
//! request in `request_reply` is `Addr::send(..).await` inside a `ResponseFuture`; calls
//! from outside block on `Addr::send` with `futures::executor::block_on`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actor_host_peers::{rss_bytes, timed, Latch, Peer, WAIT};
use futures::executor::block_on;

struct Node {
    count: u64,
    started: Option<Arc<Latch>>,
    handled: Option<Arc<Latch>>,
}

impl Node {
    fn new(started: Option<Arc<Latch>>, handled: Option<Arc<Latch>>) -> Self {
        Node {
            count: 0,
            started,
            handled,
        }
    }
}

impl Actor for Node {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        if let Some(s) = self.started.take() {
            s.arrive();
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Incr(u64);

#[derive(Message)]
#[rtype(result = "u64")]
struct Get;

/// Cast `n` increments to the given actor, then answer.
#[derive(Message)]
#[rtype(result = "u64")]
struct Blast(Addr<Node>, u64);

/// Make `n` sequential requests to the given actor, then answer.
#[derive(Message)]
#[rtype(result = "u64")]
struct PingPong(Addr<Node>, u64);

impl Handler<Incr> for Node {
    type Result = ();
    fn handle(&mut self, Incr(n): Incr, _: &mut Context<Self>) {
        self.count += n;
        if let Some(h) = &self.handled {
            h.arrive();
        }
    }
}

impl Handler<Get> for Node {
    type Result = MessageResult<Get>;
    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> MessageResult<Get> {
        MessageResult(self.count)
    }
}

impl Handler<Blast> for Node {
    type Result = MessageResult<Blast>;
    fn handle(&mut self, Blast(to, n): Blast, _: &mut Context<Self>) -> MessageResult<Blast> {
        for _ in 0..n {
            to.do_send(Incr(1));
        }
        MessageResult(n)
    }
}

impl Handler<PingPong> for Node {
    type Result = ResponseFuture<u64>;
    fn handle(&mut self, PingPong(peer, n): PingPong, _: &mut Context<Self>) -> Self::Result {
        Box::pin(async move {
            for _ in 0..n {
                let _ = peer.send(Get).await;
            }
            n
        })
    }
}

/// A running actix system with two arbiters, on threads of its own.
struct ActixRt {
    system: System,
    arbiters: [ArbiterHandle; 2],
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActixRt {
    fn start() -> ActixRt {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runner = System::new();
            let (a, b) = (Arbiter::new(), Arbiter::new());
            tx.send((System::current(), [a.handle(), b.handle()]))
                .unwrap();
            runner.run().expect("actix system");
            for arb in [a, b] {
                arb.stop();
                let _ = arb.join();
            }
        });
        let (system, arbiters) = rx.recv().expect("actix system starts");
        ActixRt {
            system,
            arbiters,
            thread: Some(thread),
        }
    }

    fn start_on(
        &self,
        arbiter: usize,
        started: Option<Arc<Latch>>,
        handled: Option<Arc<Latch>>,
    ) -> Addr<Node> {
        Node::start_in_arbiter(&self.arbiters[arbiter], move |_| {
            Node::new(started, handled)
        })
    }
}

impl Drop for ActixRt {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn get(to: &Addr<Node>) -> u64 {
    block_on(to.send(Get)).expect("reply")
}

struct Actix;

struct Sys {
    sink: Addr<Node>,
    sink2: Addr<Node>,
    blaster: Addr<Node>,
    pinger: Addr<Node>,
    ponger: Addr<Node>,
    // Last: dropped after the addresses.
    _rt: ActixRt,
}

impl Peer for Actix {
    type System = Sys;

    fn start() -> Sys {
        let rt = ActixRt::start();
        let split = std::env::var("ACTIX_A2A_SPLIT").is_ok_and(|v| v == "1");
        Sys {
            sink: rt.start_on(0, None, None),
            sink2: rt.start_on(usize::from(split), None, None),
            blaster: rt.start_on(0, None, None),
            pinger: rt.start_on(0, None, None),
            ponger: rt.start_on(0, None, None),
            _rt: rt,
        }
    }

    fn host_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            for _ in 0..n {
                sys.sink.do_send(Incr(1));
            }
            get(&sys.sink);
        })
    }

    fn actor_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            block_on(sys.blaster.send(Blast(sys.sink2.clone(), n))).unwrap();
            get(&sys.sink2);
        })
    }

    fn request_reply(sys: &Sys, rounds: u64) -> Duration {
        timed(|| {
            block_on(sys.pinger.send(PingPong(sys.ponger.clone(), rounds))).unwrap();
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
        drop(sys);
    }

    fn spawn(n: u64) -> (Duration, u64) {
        let rt = ActixRt::start();
        let started = Arc::new(Latch::new(n));
        let before = rss_bytes();
        let t = Instant::now();
        let actors: Vec<Addr<Node>> = (0..n)
            .map(|i| rt.start_on(i as usize % 2, Some(started.clone()), None))
            .collect();
        started.wait(WAIT);
        let took = t.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        drop(actors);
        drop(rt);
        (took, grown)
    }

    fn million(n: u64) -> Duration {
        let rt = ActixRt::start();
        let handled = Arc::new(Latch::new(n));
        let t = Instant::now();
        let actors: Vec<Addr<Node>> = (0..n)
            .map(|i| rt.start_on(i as usize % 2, None, Some(handled.clone())))
            .collect();
        for a in &actors {
            a.do_send(Incr(1));
        }
        handled.wait(WAIT);
        let took = t.elapsed();
        drop(actors);
        drop(rt);
        took
    }
}

fn main() {
    actor_host_peers::main::<Actix>("peer-actix");
}
