//! The soak: reload cycles of a plugin alternating between two versions with different
//! state types, while sender threads keep a steady load on the actors of that behaviour.
//! Run long by `scripts/soak.sh` (the `soak` binary), short by the test suite.
//!
//! What it proves: every message sent is received exactly once and in order (each actor
//! checks the sequence it sees), every reload completes, and the host's memory stays
//! bounded when unload mode is on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host::code::watcher::WatchConfig;
use host::{Host, HostEvent, HostOptions, ReloadOutcome, Target, VersionPolicy};
use serde::{Deserialize, Serialize};

use crate::{build, PluginDir, Variant};

/// How to run a soak.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Reload cycles (each installs the other version and waits for its swap).
    pub cycles: usize,
    /// Actors of the reloaded behaviour.
    pub actors: usize,
    /// Sender threads; each owns `actors / senders` actors.
    pub senders: usize,
    /// Unload retired versions.
    pub unload: bool,
    /// Release builds of the plugin (the benchmark) or debug (the test suite).
    pub release: bool,
    /// The host's default version policy (`unload` is then ignored).
    pub default_policy: bool,
    /// Every this many cycles, install a broken build (its `code_change` errors) instead
    /// of the other version: it must roll back and leave nothing behind. 0: never.
    pub broken_every: usize,
}

/// Memory and disk at one point of a soak.
#[derive(Debug, Clone, Copy, Default)]
pub struct Footprint {
    /// Resident set size of the process, bytes.
    pub rss: u64,
    /// Bytes in the host's private copy directory.
    pub copies: u64,
}

/// What a soak measured.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Reloads that swapped.
    pub reloads: usize,
    /// Reloads that did not swap (rolled back or rejected), with their reasons.
    pub failed_reloads: Vec<String>,
    /// Messages the senders sent.
    pub sent: u64,
    /// Messages the actors counted.
    pub received: u64,
    /// Messages seen out of sequence (a duplicate, a gap or a reordering each counts).
    pub disorder: u64,
    /// Resident memory after start-up, and at the end.
    pub rss_start: u64,
    /// Resident memory at the end.
    pub rss_end: u64,
    /// Versions still mapped at the end besides the current one.
    pub retained: usize,
    /// Reloads of a broken build that rolled back (as they must).
    pub rolled_back: usize,
    /// Footprint after start-up, after the 100th cycle, and at the end.
    pub at_start: Footprint,
    /// After the 100th cycle (or the last, if fewer).
    pub at_100: Footprint,
    /// At the end.
    pub at_end: Footprint,
    /// Swap pauses, microseconds, sorted.
    pub pauses_us: Vec<u64>,
    /// Wall time.
    pub elapsed: Duration,
}

impl SoakReport {
    /// The pause at quantile `q` (0.5 = median).
    pub fn pause_quantile(&self, q: f64) -> u64 {
        if self.pauses_us.is_empty() {
            return 0;
        }
        let i = ((self.pauses_us.len() - 1) as f64 * q).round() as usize;
        self.pauses_us[i]
    }
}

#[derive(Serialize, Deserialize)]
enum Call {
    Stats,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Stats {
        version: String,
        count: u64,
        disorder: u64,
    },
}

#[derive(Serialize)]
enum Cast {
    Seq(u64),
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Bytes of the files in `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs one soak.
pub fn run(cfg: &SoakConfig) -> SoakReport {
    let variant = |feature| Variant {
        release: cfg.release,
        ..Variant::of(feature)
    };
    let (v1, v2) = (build(&variant("v1")), build(&variant("v2")));
    let broken = (cfg.broken_every > 0).then(|| build(&variant("v2_err")));
    let dir = PluginDir::new();
    dir.install(&v1);
    let host = Host::start(HostOptions {
        threads: 2,
        plugin_dirs: vec![dir.path()],
        libraries: None,
        watch: Some(WatchConfig::default()),
        versions: if cfg.default_policy {
            VersionPolicy::default()
        } else {
            VersionPolicy {
                unload: cfg.unload,
                retain: 1,
                max_retained: cfg.cycles + 8,
                ..VersionPolicy::default()
            }
        },
        ..Default::default()
    })
    .expect("host starts");
    let events = host.subscribe();
    let names: Vec<String> = (0..cfg.actors).map(|i| format!("soak{i}")).collect();
    for n in &names {
        host.spawn_with("tp", Some(n), &()).expect("spawn");
    }
    let host = Arc::new(host);
    let rss_start = rss_bytes();
    let copy_dir = host.versions()[0]
        .copy
        .parent()
        .expect("a copy directory")
        .to_path_buf();
    let footprint = || Footprint {
        rss: rss_bytes(),
        copies: dir_bytes(&copy_dir),
    };
    let at_start = footprint();
    let mut at_100 = at_start;
    let started = Instant::now();

    // Senders: each owns a slice of the actors and sends each its own sequence, in
    // rounds with a short pause, a steady load rather than a flood.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let per = cfg.actors.div_ceil(cfg.senders.max(1));
    let threads: Vec<_> = names
        .chunks(per)
        .map(|mine| {
            let (host, stop, sent) = (host.clone(), stop.clone(), sent.clone());
            let mine = mine.to_vec();
            std::thread::spawn(move || {
                let mut next = vec![0u64; mine.len()];
                while !stop.load(Ordering::Relaxed) {
                    for (i, n) in mine.iter().enumerate() {
                        let bytes = plugin_api::etf::to_vec(&Cast::Seq(next[i])).unwrap();
                        host.cast(Target::Name(n), bytes)
                            .expect("the actor is alive");
                        next[i] += 1;
                    }
                    sent.fetch_add(mine.len() as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(500));
                }
            })
        })
        .collect();

    let mut pauses_us = Vec::with_capacity(cfg.cycles);
    let mut failed_reloads = Vec::new();
    let mut rolled_back = 0;
    let mut on_v1 = true;
    for cycle in 0..cfg.cycles {
        let breaks = cfg.broken_every > 0 && cycle % cfg.broken_every == cfg.broken_every - 1;
        match (&broken, breaks) {
            (Some(b), true) => dir.install(b),
            _ => dir.install(if on_v1 { &v2 } else { &v1 }),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("a reload within 60 s");
            match events.recv_timeout(left) {
                Ok(HostEvent::Reload(r)) => {
                    if breaks && r.outcome == ReloadOutcome::RolledBack {
                        rolled_back += 1;
                    } else if r.outcome == ReloadOutcome::Ok && !breaks {
                        pauses_us.push(r.pause_us);
                        on_v1 = !on_v1;
                    } else {
                        failed_reloads.push(format!(
                            "cycle {cycle}: {:?}: {}",
                            r.outcome,
                            r.reason.unwrap_or_default()
                        ));
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("no reload event in cycle {cycle}: {e}"),
            }
        }
        if cycle + 1 == cfg.cycles.min(100) {
            at_100 = footprint();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("sender");
    }
    let sent = sent.load(Ordering::Relaxed);

    // Every actor drains its mailbox; then count.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (received, disorder) = loop {
        let mut received = 0;
        let mut disorder = 0;
        for n in &names {
            let Reply::Stats {
                count, disorder: d, ..
            } = host
                .call_as(Target::Name(n), &Call::Stats, Duration::from_secs(30))
                .expect("stats");
            received += count;
            disorder += d;
        }
        if received >= sent || Instant::now() > deadline {
            break (received, disorder);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    pauses_us.sort_unstable();
    let retained = host
        .versions()
        .iter()
        .filter(|v| v.status != "current")
        .count();
    SoakReport {
        reloads: pauses_us.len(),
        failed_reloads,
        sent,
        received,
        disorder,
        rss_start,
        rss_end: rss_bytes(),
        retained,
        rolled_back,
        at_start,
        at_100,
        at_end: footprint(),
        pauses_us,
        elapsed: started.elapsed(),
    }
}
