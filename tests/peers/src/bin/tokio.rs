//! The floor: no actor crate at all, one tokio task and one unbounded mpsc channel per
//! "actor", a oneshot channel per call. No supervision, no names, no links, no panic
//! isolation beyond tokio's own: what any actor crate on tokio adds its costs to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_host_peers::{rss_bytes, timed, Latch, Peer, THREADS, WAIT};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

type Addr = mpsc::UnboundedSender<Msg>;

enum Msg {
    Incr(u64),
    Get(oneshot::Sender<u64>),
    /// Cast `n` increments to the given actor, then answer.
    Blast(Addr, u64, oneshot::Sender<u64>),
    /// Make `n` sequential requests to the given actor, then answer.
    PingPong(Addr, u64, oneshot::Sender<u64>),
}

/// Spawns an actor on the runtime the caller is in; `started` is counted once its task
/// runs, `handled` once per increment.
fn spawn(started: Option<Arc<Latch>>, handled: Option<Arc<Latch>>) -> Addr {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    tokio::spawn(async move {
        if let Some(s) = started {
            s.arrive();
        }
        let mut count = 0u64;
        while let Some(m) = rx.recv().await {
            match m {
                Msg::Incr(n) => {
                    count += n;
                    if let Some(h) = &handled {
                        h.arrive();
                    }
                }
                Msg::Get(reply) => {
                    let _ = reply.send(count);
                }
                Msg::Blast(to, n, reply) => {
                    for _ in 0..n {
                        let _ = to.send(Msg::Incr(1));
                    }
                    let _ = reply.send(n);
                }
                Msg::PingPong(peer, n, reply) => {
                    // The actor waits for each reply (as ractor's and kameo's do).
                    for _ in 0..n {
                        let (tx, rx) = oneshot::channel();
                        let _ = peer.send(Msg::Get(tx));
                        let _ = rx.await;
                    }
                    let _ = reply.send(n);
                }
            }
        }
    });
    tx
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .build()
        .expect("runtime")
}

/// A blocking call from outside the runtime.
fn get(to: &Addr) -> u64 {
    let (tx, rx) = oneshot::channel();
    to.send(Msg::Get(tx)).expect("alive");
    rx.blocking_recv().expect("reply")
}

fn call(to: &Addr, msg: impl FnOnce(oneshot::Sender<u64>) -> Msg) -> u64 {
    let (tx, rx) = oneshot::channel();
    to.send(msg(tx)).expect("alive");
    rx.blocking_recv().expect("reply")
}

struct Tokio;

struct Sys {
    rt: Runtime,
    sink: Addr,
    sink2: Addr,
    blaster: Addr,
    pinger: Addr,
    ponger: Addr,
}

impl Peer for Tokio {
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
                sys.sink.send(Msg::Incr(1)).unwrap();
            }
            get(&sys.sink);
        })
    }

    fn actor_to_actor(sys: &Sys, n: u64) -> Duration {
        timed(|| {
            call(&sys.blaster, |r| Msg::Blast(sys.sink2.clone(), n, r));
            get(&sys.sink2);
        })
    }

    fn request_reply(sys: &Sys, rounds: u64) -> Duration {
        timed(|| {
            call(&sys.pinger, |r| {
                Msg::PingPong(sys.ponger.clone(), rounds, r)
            });
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
        sys.rt.shutdown_timeout(Duration::from_secs(5));
    }

    fn spawn(n: u64) -> (Duration, u64) {
        let rt = runtime();
        let started = Arc::new(Latch::new(n));
        let before = rss_bytes();
        let t = Instant::now();
        let actors: Vec<Addr> = {
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
        let actors: Vec<Addr> = {
            let _g = rt.enter();
            (0..n).map(|_| spawn(None, Some(handled.clone()))).collect()
        };
        for a in &actors {
            a.send(Msg::Incr(1)).unwrap();
        }
        handled.wait(WAIT);
        let took = t.elapsed();
        drop(actors);
        rt.shutdown_timeout(Duration::from_secs(5));
        took
    }
}

fn main() {
    actor_host_peers::main::<Tokio>("peer-tokio");
}
