//! What every peer binary shares: the workloads' sizes (the same as the host's own
//! benchmark, `tests/src/bin/bench.rs`), the command line, the row selection, the
//! measurements of memory, and the machine-readable output.
//!
//! Each binary implements [`Peer`] for one actor crate and calls [`main`]. It prints one
//! line per figure, `row<TAB>key<TAB>value<TAB>unit`, which `scripts/bench.sh --peers`
//! combines with the host's own (`bench --machine`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Casts from outside to one actor, and from one actor to another (per run).
pub const CASTS: u64 = 200_000;
/// Sequential request/reply round trips between two actors (per run).
pub const ROUNDS: u64 = 50_000;
/// Sequential blocking calls from a thread outside the runtime (per run).
pub const CALLS: u64 = 20_000;
/// Actors spawned per spawn round (three rounds; memory from the first).
pub const SPAWN: u64 = 100_000;
/// Spawn rounds, each on a fresh runtime.
pub const SPAWN_ROUNDS: usize = 3;
/// Actors in the million row.
pub const MILLION: u64 = 1_000_000;
/// Worker threads of every runtime (the host's benchmark runs with `BENCH_THREADS=2`).
pub const THREADS: usize = 2;

/// The rows, by the key the driver combines them with. `spawn` and `memory` are measured
/// together (memory in the first spawn round); `million` should run in a process of its
/// own, since its peak RSS is the process's.
pub const ROWS: &[&str] = &[
    "host_to_actor",
    "actor_to_actor",
    "request_reply",
    "blocking_call",
    "spawn",
    "memory",
    "million",
];

/// One actor crate's implementation of the workloads.
pub trait Peer {
    /// A running runtime with the actors the message rows use: two sinks, a blaster and a
    /// pinger/ponger pair.
    type System;
    /// Starts the runtime ([`THREADS`] workers) and the message rows' actors.
    fn start() -> Self::System;
    /// Casts `n` increments from this (non-runtime) thread to the first sink, then one
    /// blocking call to it (it queues behind them); the time it all took.
    fn host_to_actor(sys: &Self::System, n: u64) -> Duration;
    /// One blocking call to the blaster, which casts `n` increments to the second sink
    /// from inside its handler, then one blocking call to the second sink.
    fn actor_to_actor(sys: &Self::System, n: u64) -> Duration;
    /// One blocking call to the pinger, which makes `rounds` sequential requests to the
    /// ponger, each waiting for its reply, then answers.
    fn request_reply(sys: &Self::System, rounds: u64) -> Duration;
    /// `calls` sequential blocking calls from this thread to the first sink.
    fn blocking_calls(sys: &Self::System, calls: u64) -> Duration;
    /// Stops the runtime.
    fn stop(sys: Self::System);
    /// On a fresh runtime: spawns `n` actors from this thread and waits until every one has
    /// run its start-up hook (the host's `spawn` returns after `init`); the time that took
    /// and the RSS growth with all of them alive. Stops the runtime before returning.
    fn spawn(n: u64) -> (Duration, u64);
    /// On a fresh runtime: spawns `n` actors, sends each one message, and waits until all
    /// `n` are handled; the wall time from the first spawn.
    fn million(n: u64) -> Duration;
}

/// A count to wait for: the arrival that reaches the target wakes the waiter.
pub struct Latch {
    count: AtomicU64,
    target: u64,
    done: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    /// A latch that opens after `target` arrivals.
    pub fn new(target: u64) -> Self {
        Latch {
            count: AtomicU64::new(0),
            target,
            done: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    /// Counts one arrival.
    pub fn arrive(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            *self.done.lock().unwrap() = true;
            self.cv.notify_all();
        }
    }

    /// Waits until `target` arrivals, at most `timeout`; panics past it.
    pub fn wait(&self, timeout: Duration) {
        let done = self.done.lock().unwrap();
        let (done, r) = self.cv.wait_timeout_while(done, timeout, |d| !*d).unwrap();
        assert!(
            *done && !r.timed_out(),
            "latch: {} of {} after {timeout:?}",
            self.count.load(Ordering::Relaxed),
            self.target
        );
    }
}

/// How long any wait in a workload may take before the binary gives up.
pub const WAIT: Duration = Duration::from_secs(120);

/// The process's resident set size in bytes (as `e2e::soak::rss_bytes`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The process's peak resident set size in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The median (upper middle for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Prints one machine-readable figure.
pub fn row(key: &str, value: f64, unit: &str) {
    println!("row\t{key}\t{value:.3}\t{unit}");
}

/// Parses `--rows a,b,c` (default: all but `million`) and `--runs N` (default 7, as the
/// host's benchmark), runs the selected rows of `P` and prints them.
pub fn main<P: Peer>(name: &str) {
    let mut rows: Vec<String> = ROWS
        .iter()
        .filter(|r| **r != "million")
        .map(|r| r.to_string())
        .collect();
    let mut runs = 7usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => {
                rows = args
                    .next()
                    .expect("--rows needs a list")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--runs needs a number")
            }
            // The peers only ever print the machine-readable lines.
            "--machine" => {}
            other => panic!("unknown argument {other}; usage: {name} [--rows a,b] [--runs N]"),
        }
    }
    for r in &rows {
        assert!(
            ROWS.contains(&r.as_str()),
            "unknown row {r}; rows: {ROWS:?}"
        );
    }
    let want = |r: &str| rows.iter().any(|x| x == r);
    let runs = runs.max(1);

    if [
        "host_to_actor",
        "actor_to_actor",
        "request_reply",
        "blocking_call",
    ]
    .iter()
    .any(|r| want(r))
    {
        let sys = P::start();
        if want("host_to_actor") {
            let v = (0..runs)
                .map(|_| per(P::host_to_actor(&sys, CASTS), CASTS))
                .collect();
            row("host_to_actor", median(v), "ns");
        }
        if want("actor_to_actor") {
            let v = (0..runs)
                .map(|_| per(P::actor_to_actor(&sys, CASTS), CASTS))
                .collect();
            row("actor_to_actor", median(v), "ns");
        }
        if want("request_reply") {
            let v = (0..runs)
                .map(|_| per(P::request_reply(&sys, ROUNDS), ROUNDS))
                .collect();
            row("request_reply", median(v), "ns");
        }
        if want("blocking_call") {
            let v = (0..runs)
                .map(|_| per(P::blocking_calls(&sys, CALLS), CALLS))
                .collect();
            row("blocking_call", median(v), "ns");
        }
        P::stop(sys);
    }
    if want("spawn") || want("memory") {
        let mut times = Vec::new();
        let mut mem = Vec::new();
        for round in 0..SPAWN_ROUNDS {
            let (t, grown) = P::spawn(SPAWN);
            times.push(per(t, SPAWN));
            // Only the first round: later ones reuse memory the allocator kept.
            if round == 0 {
                mem.push(grown as f64 / SPAWN as f64);
            }
        }
        if want("spawn") {
            row("spawn", median(times), "ns");
        }
        if want("memory") {
            row("memory", median(mem), "B");
        }
    }
    if want("million") {
        let t = P::million(MILLION);
        row("million_wall", t.as_secs_f64() * 1000.0, "ms");
        row(
            "million_peak_rss",
            peak_rss_bytes() as f64 / (1024.0 * 1024.0),
            "MiB",
        );
    }
}

/// Nanoseconds per operation.
pub fn per(t: Duration, n: u64) -> f64 {
    t.as_nanos() as f64 / n as f64
}

/// Times `f`.
pub fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}
