//! Timer service benchmarks.
//!
//! Two parts, both run by `cargo bench -p host --bench timers`:
//!
//! 1. A one-shot report printed first (not a criterion measurement, because it measures
//!    wall-clock behaviour of the timer thread, not a loop body):
//!    - heap bytes per pending timer, measured with a counting global allocator while
//!      100,000 `RequestTimeout` timers are pending (the action has no heap payload, so
//!      everything counted is the timer structure's own cost);
//!    - firing lateness of 100,000 timers with deadlines spread over one second: how long
//!      after its deadline each one reached the `fire` callback (median, p90, p99, max),
//!      and whether any fired early (must be none).
//! 2. Criterion measurements of a `schedule` + `cancel` pair — what every actor-to-actor
//!    request pays when its reply arrives before the timeout — on an empty wheel, with
//!    100,000 other timers pending, and from two threads at once.
//!
//! `cargo bench -p host --bench timers -- --report-only` prints part 1 and skips part 2.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use host::system::timer::{TimerAction, TimerService};

/// Counts live heap bytes so the report can say what a pending timer costs.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds bookkeeping on an atomic counter, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 100_000;

fn memory_report() {
    let svc = TimerService::start(|_| {});
    let timers = svc.handle();
    let before = LIVE.load(Ordering::SeqCst);
    let ids: Vec<u64> = Vec::with_capacity(N);
    let ids_bytes = LIVE.load(Ordering::SeqCst) - before;
    let mut ids = ids;
    for tag in 0..N as u64 {
        ids.push(timers.schedule(
            Duration::from_secs(3600),
            TimerAction::RequestTimeout { tag },
        ));
    }
    let after = LIVE.load(Ordering::SeqCst);
    let per = (after - before - ids_bytes) as f64 / N as f64;
    println!("memory: {per:.1} heap bytes per pending timer ({N} pending RequestTimeout timers)");
    for id in ids {
        timers.cancel(id);
    }
    assert_eq!(timers.pending(), 0);
}

fn lateness_report() {
    let base = Instant::now();
    // Fire time of each timer, as nanoseconds since `base` (0 = not fired yet).
    let fired: Arc<Vec<AtomicU64>> = Arc::new((0..N).map(|_| AtomicU64::new(0)).collect());
    let count = Arc::new(AtomicUsize::new(0));
    let (f, c) = (fired.clone(), count.clone());
    let svc = TimerService::start(move |action| {
        let now = base.elapsed().as_nanos() as u64;
        if let TimerAction::RequestTimeout { tag } = action {
            f[tag as usize].store(now.max(1), Ordering::Relaxed);
            c.fetch_add(1, Ordering::Relaxed);
        }
    });
    let timers = svc.handle();
    // Deadlines spread evenly (pseudo-randomly) over 50 ms .. 1050 ms from now.
    let mut deadlines = vec![0u64; N];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (tag, d) in deadlines.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_micros(50_000 + x % 1_000_000);
        let at = Instant::now();
        timers.schedule(delay, TimerAction::RequestTimeout { tag: tag as u64 });
        *d = (at + delay - base).as_nanos() as u64;
    }
    let limit = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::Relaxed) < N && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(svc);
    let mut late: Vec<i64> = Vec::with_capacity(N);
    let mut missing = 0;
    for (d, f) in deadlines.iter().zip(fired.iter()) {
        match f.load(Ordering::Relaxed) {
            0 => missing += 1,
            f => late.push(f as i64 - *d as i64),
        }
    }
    late.sort_unstable();
    let pct = |p: f64| late[((late.len() - 1) as f64 * p) as usize] as f64 / 1e6;
    let early = late.iter().filter(|&&l| l < 0).count();
    println!(
        "lateness of {N} timers (ms): min {:.3} median {:.3} p90 {:.3} p99 {:.3} max {:.3}; \
         fired early: {early}; not fired: {missing}; fired total: {}",
        pct(0.0),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        count.load(Ordering::Relaxed),
    );
}

fn schedule_cancel(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers");

    let svc = TimerService::start(|_| {});
    let timers = svc.handle();
    g.bench_function("schedule+cancel (empty)", |b| {
        b.iter(|| {
            let id = timers.schedule(
                Duration::from_secs(5),
                TimerAction::RequestTimeout { tag: 1 },
            );
            black_box(timers.cancel(id))
        })
    });

    let background: Vec<u64> = (0..N as u64)
        .map(|tag| {
            timers.schedule(
                Duration::from_secs(3600),
                TimerAction::RequestTimeout { tag },
            )
        })
        .collect();
    g.bench_function("schedule+cancel (100k pending)", |b| {
        b.iter(|| {
            let id = timers.schedule(
                Duration::from_secs(5),
                TimerAction::RequestTimeout { tag: 1 },
            );
            black_box(timers.cancel(id))
        })
    });
    for id in background {
        timers.cancel(id);
    }

    g.bench_function("schedule+cancel (2 threads, per pair per thread)", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let t = timers.clone();
                    s.spawn(move || {
                        for _ in 0..iters {
                            let id = t.schedule(
                                Duration::from_secs(5),
                                TimerAction::RequestTimeout { tag: 1 },
                            );
                            black_box(t.cancel(id));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
    drop(svc);
}

criterion_group!(benches, schedule_cancel);

fn main() {
    memory_report();
    lateness_report();
    if std::env::args().any(|a| a == "--report-only") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
