//! The host's benchmarks, printed as one markdown table (run by `scripts/bench.sh`).
//!
//! Everything runs through the real parts: a release build of the test plugin loaded by
//! the real loader, the real scheduler, and the real watcher for the reload latency. Each
//! figure is the median of several runs in one process, so a noisy shared machine skews
//! all of them alike.
//!
//! `bench [--rows a,b,..] [--runs N] [--machine]` (or `BENCH_ROWS`, `BENCH_RUNS`,
//! `BENCH_MACHINE=1`) runs only the named rows (keys in [`ROWS`]; `all` for every one),
//! with `N` runs instead of 7, and prints `row<TAB>key<TAB>value<TAB>unit` lines instead of
//! the table: what `scripts/bench.sh --peers` combines with the peer actor crates' figures
//! (`tests/peers`). The `million` row (1,000,000 actors, one message each) runs only when
//! asked for, best alone: its peak RSS is the process's. `BENCH_RESTARTS=N` sets how
//! many restarts the `restart` row times (200 by default; more for a profile).

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::soak::rss_bytes;
use e2e::{build, next_reload, PluginDir, Variant};
use host::code::watcher::WatchConfig;
use host::supervisor::{ChildSpec, Restart, Shutdown, Strategy, SupervisorSpec, WorkerSpec};
use host::{Host, HostOptions, ReloadOutcome, Target};
use plugin_api::etf;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
enum Call {
    Get,
    Blast(String, u64),
    PingPong(String, u64),
    Monitors(String, u64),
    Links(String, u64),
    SpawnLinks(String, u64),
    InboxLen,
    TimersToSelf(u64, u64),
    StopSilently,
    Ballast(u64),
}

#[derive(Serialize, Deserialize, Debug)]
enum Reply {
    Count(String, u64),
    Seq(u64),
    Done,
}

#[derive(Serialize)]
enum Info {
    Panic,
}

#[derive(Serialize)]
enum Cast {
    Incr(u64),
}

const T: Duration = Duration::from_secs(60);

fn rel(feature: &'static str) -> Variant {
    Variant {
        release: true,
        ..Variant::of(feature)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Casts `n` `{incr, 1}` from this thread to `to`, each encoded, then waits for the last
/// to be handled (a call queues behind them); the time it all took.
fn blast(host: &Host, to: &str, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        host.cast(Target::Name(to), etf::to_vec(&Cast::Incr(1)).unwrap())
            .unwrap();
    }
    get(host, to);
    t.elapsed()
}

fn start(dir: &Path, watch: bool) -> Host {
    Host::start(HostOptions {
        threads: std::env::var("BENCH_THREADS")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(2),
        plugin_dirs: vec![dir.to_path_buf()],
        watch: watch.then(WatchConfig::default),
        ..Default::default()
    })
    .expect("host starts")
}

fn get(host: &Host, who: &str) -> Reply {
    host.call_as(Target::Name(who), &Call::Get, T).expect("get")
}

struct Row {
    what: &'static str,
    budget: &'static str,
    value: String,
    ok: bool,
    /// For `--machine`: the figure's key, value and unit, and a second figure if any.
    key: &'static str,
    num: f64,
    unit: &'static str,
    more: Option<(&'static str, f64, &'static str)>,
}

/// The rows `--rows` selects from, in the order they run. Without `--rows`, every one but
/// `million`.
const ROWS: &[&str] = &[
    "timers",
    "host_to_actor",
    "actor_to_actor",
    "request_reply",
    "blocking_call",
    "monitor",
    "link",
    "restart",
    "spawn",
    "memory",
    "timers_to_pids",
    "spawn_links",
    "swap",
    "reload",
    "ctl",
    "ctl_state",
    "top",
    "watchdog",
    "sigterm",
    "million",
];

/// The command line (or environment): which rows, how many runs, which output.
struct Opts {
    rows: Vec<String>,
    runs: usize,
    machine: bool,
}

impl Opts {
    fn parse() -> Opts {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut rows = env("BENCH_ROWS");
        let mut runs = env("BENCH_RUNS");
        let mut machine = env("BENCH_MACHINE").is_some_and(|v| v != "0");
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--rows" => rows = Some(args.next().expect("--rows needs a list")),
                "--runs" => runs = Some(args.next().expect("--runs needs a number")),
                "--machine" => machine = true,
                // For scripts/dist-bench.sh: build the release test plugin, print its path.
                "--tp-path" => {
                    println!("{}", build(&rel("v1")).display());
                    std::process::exit(0);
                }
                other => panic!(
                    "unknown argument {other}; usage: bench [--rows a,b] [--runs N] [--machine]"
                ),
            }
        }
        let rows: Vec<String> = match rows.as_deref() {
            None => ROWS
                .iter()
                .filter(|r| **r != "million")
                .map(|r| r.to_string())
                .collect(),
            Some("all") => ROWS.iter().map(|r| r.to_string()).collect(),
            Some(list) => list.split(',').map(|r| r.trim().to_string()).collect(),
        };
        for r in &rows {
            assert!(
                ROWS.contains(&r.as_str()),
                "unknown row {r}; rows: {ROWS:?}"
            );
        }
        let runs = runs
            .map_or(7, |r| r.parse().expect("runs: a number"))
            .max(1);
        Opts {
            rows,
            runs,
            machine,
        }
    }

    fn want(&self, row: &str) -> bool {
        self.rows.iter().any(|r| r == row)
    }

    fn any(&self, rows: &[&str]) -> bool {
        rows.iter().any(|r| self.want(r))
    }
}

/// The process's peak resident set size in bytes (`VmHWM`).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let opts = Opts::parse();
    let runs = opts.runs;
    // BENCH_ONLY=messages stops after the messaging rows (for profiling).
    let only_messages = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "messages");
    eprintln!("building the release test plugin...");
    // Only the versions the selected rows load (every row but the timers' loads v1; the
    // swap and the watcher rows alternate v2 and v3).
    let v1 = opts
        .rows
        .iter()
        .any(|r| r != "timers")
        .then(|| build(&rel("v1")));
    let (v2, v3) = if opts.any(&["swap", "reload"]) {
        (Some(build(&rel("v2"))), Some(build(&rel("v3"))))
    } else {
        (None, None)
    };
    let mut rows = Vec::new();

    // --- 100,000 pending timers (first: RSS growth is only meaningful in a fresh process) ---
    if opts.want("timers") {
        use host::system::timer::{TimerAction, TimerService};
        use std::sync::{Arc, Mutex};
        let n = 100_000u64;
        let origin = Instant::now();
        let deadlines: Arc<Vec<Mutex<Option<Instant>>>> =
            Arc::new((0..n).map(|_| Mutex::new(None)).collect());
        let lateness: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
        let (d2, l2) = (deadlines.clone(), lateness.clone());
        let service = TimerService::start(move |action| {
            if let TimerAction::RequestTimeout { tag } = action {
                let now = Instant::now();
                if let Some(due) = d2[tag as usize].lock().unwrap().take() {
                    l2.lock()
                        .unwrap()
                        .push(now.saturating_duration_since(due).as_secs_f64() * 1000.0);
                }
            }
        });
        let timers = service.handle();
        let before = rss_bytes();
        for i in 0..n {
            // Spread over 1-2 s, so all are pending at once.
            let delay = Duration::from_millis(1000 + (i * 7919) % 1000);
            *deadlines[i as usize].lock().unwrap() = Some(Instant::now() + delay);
            timers.schedule(delay, TimerAction::RequestTimeout { tag: i });
        }
        let per_timer = rss_bytes().saturating_sub(before) as f64 / n as f64;
        while lateness.lock().unwrap().len() < n as usize
            && origin.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(service);
        let late = std::mem::take(&mut *lateness.lock().unwrap());
        let fired = late.len();
        let m = median(late);
        rows.push(Row {
            what: "100,000 pending timers: host memory per timer (RSS growth)",
            budget: "≤ 100 B",
            value: format!("{per_timer:.0} B"),
            ok: per_timer <= 100.0,
            key: "timers_memory",
            num: per_timer,
            unit: "B",
            more: None,
        });
        rows.push(Row {
            what: "100,000 timers: lateness past the deadline (all fired)",
            budget: "≤ 2 ms",
            value: format!("{m:.2} ms ({fired} fired)"),
            ok: m <= 2.0 && fired == n as usize,
            key: "timers_lateness",
            num: m,
            unit: "ms",
            more: None,
        });
    }
    let Some(v1) = v1 else {
        print_rows(&opts, rows);
        return;
    };

    // --- messaging, on one host -------------------------------------------------------
    let dir = PluginDir::new();
    dir.install(&v1);
    let unit = etf::to_vec(&()).unwrap();
    if opts.any(&[
        "host_to_actor",
        "actor_to_actor",
        "request_reply",
        "blocking_call",
        "monitor",
        "link",
        "restart",
    ]) {
        messaging_rows(&opts, &dir, &mut rows);
    }
    if only_messages {
        print_rows(&opts, rows);
        return;
    }

    if opts.any(&["timers_to_pids", "spawn_links"]) {
        arming_rows(&opts, &dir, runs, &mut rows);
    }

    // --- spawning and memory ------------------------------------------------------------
    if opts.any(&["spawn", "memory"]) {
        let spawn_n = 100_000u64;
        let mut spawn_ns = Vec::new();
        let mut mem = Vec::new();
        for round in 0..3 {
            let host = start(&dir.path(), false);
            let before = rss_bytes();
            let t = Instant::now();
            for _ in 0..spawn_n {
                host.spawn("tp", None, &unit).unwrap();
            }
            spawn_ns.push(t.elapsed().as_nanos() as f64 / spawn_n as f64);
            // Only the first round: later ones reuse memory the allocator kept from the first.
            if round == 0 {
                mem.push((rss_bytes().saturating_sub(before)) as f64 / spawn_n as f64);
            }
        }
        let m = median(spawn_ns);
        if opts.want("spawn") {
            rows.push(Row {
                what: "spawn an actor (init through the plugin, register)",
                budget: "≤ 2 µs",
                value: format!("{:.2} µs", m / 1000.0),
                ok: m <= 2000.0,
                key: "spawn",
                num: m,
                unit: "ns",
                more: None,
            });
        }
        let m = median(mem);
        if opts.want("memory") {
            rows.push(Row {
                what: "host memory per idle actor (RSS growth / actors)",
                budget: "≤ 1 KiB",
                value: format!("{m:.0} B"),
                ok: m <= 1024.0,
                key: "memory",
                num: m,
                unit: "B",
                more: None,
            });
        }
    }

    // --- swap pause: 10,000 actors of one behaviour ---------------------------------------
    if let (true, Some(v2), Some(v3)) = (opts.want("swap"), &v2, &v3) {
        let swap_dir = PluginDir::new();
        swap_dir.install(v2);
        let host = start(&swap_dir.path(), false);
        for _ in 0..10_000 {
            host.spawn("tp", None, &unit).unwrap();
        }
        let mut pauses = Vec::new();
        for i in 0..runs {
            let next = if i % 2 == 0 { v3 } else { v2 };
            swap_dir.install(next);
            match host.reload(&swap_dir.lib()) {
                host::HostEvent::Reload(r) if r.outcome == ReloadOutcome::Ok => {
                    pauses.push(r.pause_us as f64)
                }
                other => panic!("swap failed: {other:?}"),
            }
        }
        let m = median(pauses);
        rows.push(Row {
            what: "swap pause, 10,000 actors (suspend → code_change → resume)",
            budget: "≤ 20 ms",
            value: format!("{:.2} ms", m / 1000.0),
            ok: m <= 20_000.0,
            key: "swap",
            num: m / 1000.0,
            unit: "ms",
            more: None,
        });
        drop(host);
    }

    // --- rebuilt file settled → every actor on the new version, through the watcher -----
    if let (true, Some(v2), Some(v3)) = (opts.want("reload"), &v2, &v3) {
        let w_dir = PluginDir::new();
        w_dir.install(v2);
        let host = start(&w_dir.path(), true);
        let rx = host.subscribe();
        for i in 0..1000 {
            host.spawn("tp", Some(&format!("a{i}")), &unit).unwrap();
        }
        let mut lat = Vec::new();
        for i in 0..runs {
            std::thread::sleep(Duration::from_millis(300));
            let (next, vsn) = if i % 2 == 0 { (v3, "3") } else { (v2, "2") };
            let t = Instant::now();
            // The link is atomic: the file is settled the moment it appears.
            w_dir.install(next);
            let r = next_reload(&rx, T).expect("reload");
            assert_eq!(r.outcome, ReloadOutcome::Ok);
            let serving = t.elapsed();
            match get(&host, "a999") {
                Reply::Count(v, _) => assert_eq!(v, vsn),
                other => panic!("{other:?}"),
            }
            lat.push(serving.as_secs_f64() * 1000.0);
        }
        let m = median(lat);
        rows.push(Row {
            what: "file settled → 1,000 actors serving the new version (watcher included)",
            budget: "≤ 100 ms",
            value: format!("{m:.1} ms"),
            ok: m <= 100.0,
            key: "reload",
            num: m,
            unit: "ms",
            more: None,
        });
        drop(host);
    }

    if opts.any(&["ctl", "top"]) {
        control_rows(&opts, &v1, runs, &mut rows);
    }
    if opts.want("ctl_state") {
        ctl_state_row(&v1, runs, &mut rows);
    }
    if opts.want("watchdog") {
        watchdog_rows(&opts, &v1, &mut rows);
    }
    if opts.want("sigterm") {
        sigterm_row(&opts, &v1, &mut rows);
    }
    // Last: its peak RSS is the process's (run it alone for a figure of its own).
    if opts.want("million") {
        million_row(&dir, &mut rows);
    }
    print_rows(&opts, rows);
}

/// The rows on one host with five named actors: messages from outside and between actors,
/// request/reply, blocking calls, monitor/link set-up, and the restart latency.
fn messaging_rows(opts: &Opts, dir: &PluginDir, rows: &mut Vec<Row>) {
    let runs = opts.runs;
    let host = start(&dir.path(), false);
    let unit = etf::to_vec(&()).unwrap();
    for name in ["sink", "sink2", "blaster", "pinger", "ponger"] {
        host.spawn("tp", Some(name), &unit).unwrap();
    }

    // A message from outside: encode, send, decode, handle (pipelined, per message).
    let n = 200_000u64;
    if opts.want("host_to_actor") {
        let ext: Vec<f64> = (0..runs)
            .map(|_| blast(&host, "sink", n).as_nanos() as f64 / n as f64)
            .collect();
        let m = median(ext);
        rows.push(Row {
            what: "message host → actor (encode, send, decode, handle)",
            budget: "≤ 200 ns",
            value: format!("{m:.0} ns"),
            ok: m <= 200.0,
            key: "host_to_actor",
            num: m,
            unit: "ns",
            more: None,
        });
    }

    // A message from one actor to another through the plugin boundary.
    if opts.want("actor_to_actor") {
        let a2a: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let _: Reply = host
                    .call_as(Target::Name("blaster"), &Call::Blast("sink2".into(), n), T)
                    .unwrap();
                get(&host, "sink2");
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        let m = median(a2a);
        rows.push(Row {
            what: "message actor → actor (encode, send, decode, handle)",
            budget: "≤ 200 ns",
            value: format!("{m:.0} ns"),
            ok: m <= 200.0,
            key: "actor_to_actor",
            num: m,
            unit: "ns",
            more: None,
        });
    }

    // Request and reply between two actors (ctx.request, reply arrives as a message).
    if opts.want("request_reply") {
        let rounds = 50_000u64;
        let rr: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let _: Reply = host
                    .call_as(
                        Target::Name("pinger"),
                        &Call::PingPong("ponger".into(), rounds),
                        T,
                    )
                    .unwrap();
                t.elapsed().as_nanos() as f64 / rounds as f64
            })
            .collect();
        let m = median(rr);
        rows.push(Row {
            what: "request + reply between two actors",
            budget: "≤ 1 µs",
            value: format!("{:.2} µs", m / 1000.0),
            ok: m <= 1000.0,
            key: "request_reply",
            num: m,
            unit: "ns",
            more: None,
        });
    }

    // A blocking call from outside the actor system (for reference; no budget).
    if opts.want("blocking_call") {
        let calls = 20_000u64;
        let ec: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..calls {
                    get(&host, "sink");
                }
                t.elapsed().as_nanos() as f64 / calls as f64
            })
            .collect();
        let m = median(ec);
        rows.push(Row {
            what: "blocking call from a host thread (reference)",
            budget: "—",
            value: format!("{:.2} µs", m / 1000.0),
            ok: true,
            key: "blocking_call",
            num: m,
            unit: "ns",
            more: None,
        });
    }
    // Link / monitor setup from inside a callback (each op is set up and torn down).
    let ops = 100_000u64;
    for (key, what, call) in [
        (
            "monitor",
            "monitor + demonitor from a callback",
            Call::Monitors("sink".into(), ops),
        ),
        (
            "link",
            "link + unlink from a callback",
            Call::Links("sink".into(), ops),
        ),
    ] {
        if !opts.want(key) {
            continue;
        }
        let samples: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let _: Reply = host.call_as(Target::Name("pinger"), &call, T).unwrap();
                t.elapsed().as_nanos() as f64 / ops as f64
            })
            .collect();
        let m = median(samples);
        rows.push(Row {
            what,
            budget: "≤ 200 ns",
            value: format!("{m:.0} ns"),
            ok: m <= 200.0,
            key,
            num: m,
            unit: "ns",
            more: None,
        });
    }

    // Restart latency: a supervised child panics; how long until its fresh incarnation is
    // registered and answers.
    if opts.want("restart") {
        let tree = SupervisorSpec {
            name: "bench".into(),
            strategy: Strategy::OneForOne,
            intensity: 1_000_000,
            period: Duration::from_secs(1),
            restart: Restart::Permanent,
            children: vec![ChildSpec::Worker(WorkerSpec {
                behaviour: "tp".into(),
                name: Some("crashy".into()),
                args: unit.clone(),
                restart: Restart::Permanent,
                shutdown: Shutdown::BrutalKill,
                start_timeout: host::supervisor::DEFAULT_START_TIMEOUT,
            })],
        };
        host.start_supervisor(tree).unwrap();
        let panic = etf::to_vec(&Info::Panic).unwrap();
        let mut restart = Vec::new();
        let n: usize = std::env::var("BENCH_RESTARTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        for _ in 0..n {
            let old = host.whereis("crashy").unwrap();
            let t = Instant::now();
            host.send(Target::Name("crashy"), panic.clone()).unwrap();
            let new = loop {
                match host.whereis("crashy") {
                    Some(id) if id != old => break id,
                    _ => std::hint::spin_loop(),
                }
            };
            restart.push(t.elapsed().as_nanos() as f64 / 1000.0);
            let _ = new;
        }
        let m = median(restart);
        rows.push(Row {
            what: "restart: panic → fresh child registered (supervisor thread)",
            budget: "≤ 20 µs",
            value: format!("{m:.1} µs"),
            ok: m <= 20.0,
            key: "restart",
            num: m,
            unit: "us",
            more: None,
        });
    }
    drop(host);
}

/// 1,000,000 actors spawned from this thread, one cast `{incr, 1}` each (encoded), until
/// all are handled: the wall time from the first spawn, and the process's peak RSS.
/// "All handled" is the host's count of handled messages (`Host::stats`), polled once the
/// last actor has answered a call queued behind its cast.
fn million_row(dir: &PluginDir, rows: &mut Vec<Row>) {
    let n = 1_000_000u64;
    let host = start(&dir.path(), false);
    let unit = etf::to_vec(&()).unwrap();
    let t = Instant::now();
    let ids: Vec<host::ActorId> = (0..n)
        .map(|_| host.spawn("tp", None, &unit).unwrap())
        .collect();
    let spawned = t.elapsed();
    for &id in &ids {
        host.cast(Target::Id(id), etf::to_vec(&Cast::Incr(1)).unwrap())
            .unwrap();
    }
    let sent = t.elapsed();
    let last = *ids.last().expect("actors");
    let _: Reply = host.call_as(Target::Id(last), &Call::Get, T).expect("get");
    // The casts and that call.
    let deadline = Instant::now() + T;
    while host.stats().messages < n + 1 {
        assert!(
            Instant::now() < deadline,
            "not all messages handled in {T:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    let peak = peak_rss_bytes() as f64 / (1024.0 * 1024.0);
    // Where the time went (stderr: the table and the machine lines stay as they are), and
    // what one look at the handled count costs (the figure includes at least one).
    let look = Instant::now();
    let _ = host.stats();
    eprintln!(
        "million: spawned at {:.0} ms, all cast at {:.0} ms, all handled at {wall:.0} ms; one stats() {:.0} ms",
        spawned.as_secs_f64() * 1000.0,
        sent.as_secs_f64() * 1000.0,
        look.elapsed().as_secs_f64() * 1000.0
    );
    drop(host);
    rows.push(Row {
        what: "1,000,000 actors: spawn, one message each, all handled (wall time; peak RSS of the process)",
        budget: "—",
        value: format!("{wall:.0} ms (peak RSS {peak:.0} MiB)"),
        ok: true,
        key: "million_wall",
        num: wall,
        unit: "ms",
        more: Some(("million_peak_rss", peak, "MiB")),
    });
}

/// `host ctl call` end to end, and what `host top` attached costs the actors.
fn control_rows(opts: &Opts, v1: &Path, runs: usize, rows: &mut Vec<Row>) {
    use host::control::protocol::Request;
    use host::control::server::ControlServer;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = PluginDir::new();
    dir.install(v1);
    let host = Arc::new(start(&dir.path(), false));
    let unit = etf::to_vec(&()).unwrap();
    host.spawn("tp", Some("a"), &unit).unwrap();
    host.spawn("tp", Some("sink"), &unit).unwrap();
    let socket = dir.path().join("bench.sock");
    let bin = host_binary();

    // `host ctl call a get`: process start, connect, request, reply, print.
    if opts.want("ctl") {
        let server = ControlServer::start(&host, &socket).expect("control socket");
        let lat: Vec<f64> = (0..(runs * 5))
            .map(|_| {
                let t = Instant::now();
                let out = std::process::Command::new(&bin)
                    .args(["ctl", "--socket"])
                    .arg(&socket)
                    .args(["call", "a", "get"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        drop(server);
        let m = median(lat);
        rows.push(Row {
            what: "`host ctl call` round trip on an idle host (process start included)",
            budget: "≤ 2 ms",
            value: format!("{m:.2} ms"),
            ok: m <= 2.0,
            key: "ctl",
            num: m,
            unit: "ms",
            more: None,
        });
    }
    if !opts.want("top") {
        return;
    }

    // Host → actor throughput without a control listener, and with the listener and a
    // client fetching what `host top` shows every second, windows interleaved.
    let n = 10_000_000u64;
    let window = |host: &Host| blast(host, "sink", n).as_secs_f64();
    // Pairs of windows, the order alternating so drift cancels; the figure is the median
    // of the per-pair ratios (the machine's noise between pairs is much larger than 2 %).
    let with_top = |host: &Arc<Host>| {
        let server = ControlServer::start(host, &socket).expect("control socket");
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, sock2) = (stop.clone(), socket.clone());
        let top = std::thread::spawn(move || {
            let mut polls = 0u32;
            while !s2.load(Ordering::Relaxed) {
                host::control::client::request(&sock2, &Request::Snapshot, Duration::from_secs(5))
                    .expect("snapshot");
                polls += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            polls
        });
        let t = window(host);
        stop.store(true, Ordering::Relaxed);
        assert!(top.join().unwrap() >= 1);
        drop(server);
        t
    };
    let pairs = 2 * runs - 1;
    let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (a, b) = if i % 2 == 0 {
            let a = window(&host);
            (a, with_top(&host))
        } else {
            let b = with_top(&host);
            (window(&host), b)
        };
        ratios.push(b / a);
        off.push(a);
        on.push(b);
    }
    let (off, on) = (median(off), median(on));
    let change = (median(ratios) - 1.0) * 100.0;
    // (A `&'static str` like every row's; 13 pairs at the default 7 runs.)
    let what = format!("host → actor slow-down with the control listener and `host top` attached (median of {pairs} paired 10M-message windows)");
    rows.push(Row {
        what: Box::leak(what.into_boxed_str()),
        budget: "≤ 2 %",
        value: format!(
            "{change:+.1} % ({:.2} vs {:.2} M msg/s)",
            n as f64 / off / 1e6,
            n as f64 / on / 1e6
        ),
        ok: change <= 2.0,
        key: "top",
        num: change,
        unit: "%",
        more: None,
    });
}

/// Forgets the process's peak RSS: `VmHWM` starts again from the current RSS (Linux 4.0+).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A process's peak RSS in bytes while it lives (`VmHWM` of `/proc/PID/status`).
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// `host ctl state` of an actor with a ~30 MB state (issue 10: it peaked at 1.8 GB): the
/// growth of the host's peak RSS while it answers, as a multiple of the state's size (its
/// ETF bytes), the worst of `runs` (at most 5); the client's own peak RSS beside it. The host runs in
/// this process (its peak reset before each run); the client is the real binary, its
/// output to a file, which is checked to hold the whole text.
fn ctl_state_row(v1: &Path, runs: usize, rows: &mut Vec<Row>) {
    use host::control::server::ControlServer;
    use std::sync::Arc;

    let dir = PluginDir::new();
    dir.install(v1);
    let host = Arc::new(start(&dir.path(), false));
    host.spawn("tp", Some("big"), &etf::to_vec(&()).unwrap())
        .unwrap();
    let entries = 1_150_000;
    let _: Reply = host
        .call_as(Target::Name("big"), &Call::Ballast(entries), T)
        .expect("ballast");
    let socket = dir.path().join("bench.sock");
    let server = ControlServer::start(&host, &socket).expect("control socket");
    let bin = host_binary();
    let out_path = dir.path().join("state.txt");
    let (mut ratios, mut client_peaks, mut ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs.min(5) {
        let out = std::fs::File::create(&out_path).unwrap();
        assert!(
            reset_peak_rss(),
            "cannot reset VmHWM (/proc/self/clear_refs)"
        );
        let before = rss_bytes();
        let t = Instant::now();
        let mut child = std::process::Command::new(&bin)
            .args(["ctl", "--socket"])
            .arg(&socket)
            .args(["state", "big"])
            .stdout(out)
            .spawn()
            .unwrap();
        // The client's peak, sampled while it lives (its last sample before it exits).
        let mut client_peak = 0;
        let status = loop {
            if let Some(p) = peak_rss_of(child.id()) {
                client_peak = client_peak.max(p);
            }
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(status.success(), "host ctl state: {status}");
        ratios.push(peak_rss_bytes().saturating_sub(before) as f64);
        client_peaks.push(client_peak as f64 / (1 << 20) as f64);
    }
    drop(server);
    // Measured last, so that the first run found no memory freed by an earlier export.
    let size = host.state(Target::Name("big")).expect("state").len() as u64;
    let printed = std::fs::metadata(&out_path).unwrap().len();
    assert!(
        printed > size,
        "{printed} bytes printed for a {size}-byte state"
    );
    // The worst run (the first, usually: later ones reuse what the allocator kept).
    let ratio = ratios.iter().fold(0.0f64, |m, g| m.max(g / size as f64));
    let (client, ms) = (median(client_peaks), median(ms));
    rows.push(Row {
        what: "`host ctl state` of a ~30 MB state: host peak RSS growth / state size (ETF bytes)",
        budget: "≤ 3×",
        value: format!(
            "{ratio:.2}× of {:.1} MB ({:.0} ms; client peak RSS {client:.1} MiB)",
            size as f64 / 1e6,
            ms
        ),
        ok: ratio <= 3.0,
        key: "ctl_state",
        num: ratio,
        unit: "x",
        more: Some(("ctl_state_client_peak", client, "MiB")),
    });
}

/// The release `host` binary next to this one (`scripts/bench.sh` builds both).
fn host_binary() -> std::path::PathBuf {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("host");
    assert!(bin.is_file(), "scripts/bench.sh builds {}", bin.display());
    bin
}

/// Host → actor and request + reply with the watchdog on and off, switched between windows
/// of one host in interleaved pairs (the order alternating), the median of the per-pair
/// ratios — on several hosts in turn, and the median over hosts. Two hosts differ by more
/// than 2 % from where their plugin copies land, so on and off share one; and one host's
/// own figure leans by up to ±4 % one way or the other for the whole run (where its data
/// landed), so a single host cannot resolve 2 %.
fn watchdog_rows(opts: &Opts, v1: &Path, rows: &mut Vec<Row>) {
    const HOSTS: usize = 5;
    // Many short windows rather than a few long ones: the machine's noise moves single
    // windows by ±10 %, far more than what is measured, and the median of the paired
    // ratios narrows with the number of pairs.
    let n = 250_000u64;
    let rounds = 12_500u64;
    let pairs = 2 * opts.runs + 1;
    let unit = etf::to_vec(&()).unwrap();
    let h2a = |h: &Host| blast(h, "sink", n).as_secs_f64();
    let rr = |h: &Host| {
        let t = Instant::now();
        let _: Reply = h
            .call_as(
                Target::Name("pinger"),
                &Call::PingPong("ponger".into(), rounds),
                T,
            )
            .unwrap();
        t.elapsed().as_secs_f64()
    };
    // (off, on, slow-down in %) of each workload, one per host.
    let (mut per_h2a, mut per_rr) = (Vec::new(), Vec::new());
    for _ in 0..HOSTS {
        let dir = PluginDir::new();
        dir.install(v1);
        let host = start(&dir.path(), false);
        for name in ["sink", "pinger", "ponger"] {
            host.spawn("tp", Some(name), &unit).unwrap();
        }
        let paired = |f: &dyn Fn(&Host) -> f64| {
            let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..pairs {
                let window = |on: bool| {
                    host.set_watchdog(on);
                    f(&host)
                };
                let (x_off, x_on) = if i % 2 == 0 {
                    let x = window(false);
                    (x, window(true))
                } else {
                    let y = window(true);
                    (window(false), y)
                };
                ratios.push(x_on / x_off);
                a.push(x_off);
                b.push(x_on);
            }
            host.set_watchdog(true);
            (median(a), median(b), (median(ratios) - 1.0) * 100.0)
        };
        per_h2a.push(paired(&h2a));
        per_rr.push(paired(&rr));
    }
    let over_hosts = |v: &[(f64, f64, f64)]| {
        let med = |k: fn(&(f64, f64, f64)) -> f64| median(v.iter().map(k).collect());
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(x.2), h.max(x.2)));
        (med(|x| x.0), med(|x| x.1), med(|x| x.2), lo, hi)
    };
    let (t_off, t_on, change, lo, hi) = over_hosts(&per_h2a);
    let what = format!("host → actor slow-down with the watchdog on vs off (median over {HOSTS} hosts of the median of {pairs} paired 250k-message windows)");
    rows.push(Row {
        what: Box::leak(what.into_boxed_str()),
        budget: "≤ 2 %",
        value: format!(
            "{change:+.1} % ({:.0} vs {:.0} ns; hosts {lo:+.1}…{hi:+.1} %)",
            t_on * 1e9 / n as f64,
            t_off * 1e9 / n as f64
        ),
        ok: change <= 2.0,
        key: "watchdog_host_to_actor",
        num: change,
        unit: "%",
        more: None,
    });
    let (t_off, t_on, change, lo, hi) = over_hosts(&per_rr);
    let what = format!("request + reply slow-down with the watchdog on vs off (median over {HOSTS} hosts of the median of {pairs} paired 12.5k-round windows)");
    rows.push(Row {
        what: Box::leak(what.into_boxed_str()),
        budget: "≤ 2 %",
        value: format!(
            "{change:+.1} % ({:.2} vs {:.2} µs; hosts {lo:+.1}…{hi:+.1} %)",
            t_on * 1e6 / rounds as f64,
            t_off * 1e6 / rounds as f64
        ),
        ok: change <= 2.0,
        key: "watchdog_request_reply",
        num: change,
        unit: "%",
        more: None,
    });
}

/// The release `host` binary with 100,000 idle actors from its config: SIGTERM to exit
/// (the orderly stop, every `terminate` run, files removed).
fn sigterm_row(opts: &Opts, v1: &Path, rows: &mut Vec<Row>) {
    use std::process::{Command, Stdio};
    let bin = host_binary();
    let n = 100_000;
    let mut times = Vec::new();
    for _ in 0..opts.runs.min(3) {
        let dir = PluginDir::new();
        dir.install(v1);
        let mut cfg = String::from(
            "plugin_dirs = [\".\"]\nthreads = 2\n\n[watch]\nenabled = false\n\n[control]\nsocket = \"host.sock\"\n",
        );
        for _ in 0..n {
            cfg.push_str("\n[[actors]]\nbehaviour = \"tp\"\n");
        }
        std::fs::write(dir.path().join("host.toml"), cfg).unwrap();
        let mut child = Command::new(&bin)
            .current_dir(dir.path())
            .args(["--config", "host.toml", "--log-format", "json"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("host starts");
        let socket = dir.path().join("host.sock");
        let up = Instant::now();
        while !socket.exists() {
            assert!(up.elapsed() < Duration::from_secs(120), "host up");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the host did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(status.code(), Some(0));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let m = median(times);
    rows.push(Row {
        what: "SIGTERM to exit, 100,000 idle actors (orderly: every `terminate`, files removed)",
        budget: "≤ 1 s",
        value: format!("{m:.0} ms"),
        ok: m <= 1000.0,
        key: "sigterm",
        num: m,
        unit: "ms",
        more: None,
    });
}

fn print_rows(opts: &Opts, rows: Vec<Row>) {
    if opts.machine {
        for r in rows {
            println!("row\t{}\t{:.3}\t{}", r.key, r.num, r.unit);
            if let Some((key, num, unit)) = r.more {
                println!("row\t{key}\t{num:.3}\t{unit}");
            }
        }
        return;
    }
    let runs = opts.runs;
    println!("| measure | budget | median ({runs} runs) | within |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.what,
            r.budget,
            r.value,
            if r.ok { "yes" } else { "**no**" }
        );
    }
}

/// Arming many timers or links from one callback (issue 10: both were O(N²)).
fn arming_rows(opts: &Opts, dir: &PluginDir, runs: usize, rows: &mut Vec<Row>) {
    let host = start(&dir.path(), false);
    let unit = etf::to_vec(&()).unwrap();
    let n = 100_000u64;
    let wait_count = |want: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while host.actor_count() != want {
            assert!(
                Instant::now() < deadline,
                "{} actors, want {want}",
                host.actor_count()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    if opts.want("timers_to_pids") {
        let samples: Vec<f64> = (0..runs)
            .map(|i| {
                let name = format!("arm{i}");
                host.spawn("tp", Some(&name), &unit).unwrap();
                let t = Instant::now();
                // An hour out: none fires during the measure.
                let _: Reply = host
                    .call_as(
                        Target::Name(&name),
                        &Call::TimersToSelf(n, 3_600_000),
                        T * 10,
                    )
                    .unwrap();
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                // Its exit cancels them all.
                let _ = host.call_as::<_, Reply>(Target::Name(&name), &Call::StopSilently, T);
                ms
            })
            .collect();
        let m = median(samples);
        rows.push(Row {
            what: "arm 100,000 send_after to a pid from one callback",
            budget: "≤ 100 ms",
            value: format!("{m:.1} ms"),
            ok: m <= 100.0,
            key: "timers_to_pids",
            num: m,
            unit: "ms",
            more: None,
        });
    }
    if opts.want("spawn_links") {
        let samples: Vec<f64> = (0..runs)
            .map(|i| {
                let name = format!("parent{i}");
                host.spawn("tp", Some(&name), &unit).unwrap();
                let base = host.actor_count();
                let t = Instant::now();
                let _: Reply = host
                    .call_as(
                        Target::Name(&name),
                        &Call::SpawnLinks("tp".into(), n),
                        T * 10,
                    )
                    .unwrap();
                // Registered is not enough: every child ran its `init`, and the parent
                // holds every `{reply, Tag, {ok, Pid}}`.
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let r: Reply = host
                        .call_as(Target::Name(&name), &Call::InboxLen, T)
                        .unwrap();
                    if matches!(r, Reply::Count(_, k) if k >= n) {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{r:?} of {n} children started");
                    std::thread::sleep(Duration::from_micros(500));
                }
                let ns = t.elapsed().as_nanos() as f64 / n as f64;
                wait_count(base + n as usize);
                // An abnormal exit takes every linked child with it.
                let _ = host.call_as::<_, Reply>(Target::Name(&name), &Call::StopSilently, T);
                wait_count(base - 1);
                ns
            })
            .collect();
        let m = median(samples);
        rows.push(Row {
            what: "spawn 100,000 linked children from one parent (until every init ran and the parent has every reply), per child",
            budget: "≤ 2 µs",
            value: format!("{:.2} µs", m / 1000.0),
            ok: m <= 2000.0,
            key: "spawn_links",
            num: m,
            unit: "ns",
            more: None,
        });
    }
}
