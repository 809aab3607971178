//! The soak (run by `scripts/soak.sh`): reload cycles under load — with the default
//! configuration and one build in ten broken (its `code_change` errors), then with
//! retired versions kept mapped, then with unload mode and no broken build — each in its
//! own process so their memory figures do not mix. Prints one markdown table row per mode.
//!
//! `soak [CYCLES] [--default|--keep|--unload]`; without a mode it runs all three by
//! re-executing itself.

use e2e::soak::{run, SoakConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let mode = args
        .iter()
        .find(|a| *a == "--unload" || *a == "--keep" || *a == "--default");
    let Some(mode) = mode else {
        println!("| mode | reloads ok | rolled back (broken builds) | failed | sent | received | lost, dup or reordered | RSS start / 100th / end | copies on disk start / 100th / end | retained | swap pause median | p99 | wall |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let me = std::env::current_exe().expect("own path");
        let mut ok = true;
        for m in ["--default", "--keep", "--unload"] {
            let st = std::process::Command::new(&me)
                .arg(cycles.to_string())
                .arg(m)
                .status()
                .expect("run a soak");
            ok &= st.success();
        }
        std::process::exit(if ok { 0 } else { 1 });
    };
    let unload = mode == "--unload";
    let default_policy = mode == "--default";
    let r = run(&SoakConfig {
        cycles,
        actors: 100,
        senders: 10,
        unload,
        release: true,
        default_policy,
        broken_every: if default_policy { 10 } else { 0 },
    });
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} / {:.1} MiB | {:.1} / {:.1} / {:.1} MiB | {} | {} µs | {} µs | {:.0} s |",
        match mode.as_str() {
            "--default" => "default, 1 in 10 broken",
            "--unload" => "unload = true",
            _ => "unload = false",
        },
        r.reloads,
        r.rolled_back,
        r.failed_reloads.len(),
        r.sent,
        r.received,
        r.disorder,
        mib(r.at_start.rss),
        mib(r.at_100.rss),
        mib(r.at_end.rss),
        mib(r.at_start.copies),
        mib(r.at_100.copies),
        mib(r.at_end.copies),
        r.retained,
        r.pause_quantile(0.5),
        r.pause_quantile(0.99),
        r.elapsed.as_secs_f64()
    );
    for f in &r.failed_reloads {
        eprintln!("failed reload: {f}");
    }
    let bounded = !default_policy || (r.at_end.rss as f64) <= 1.5 * r.at_100.rss as f64;
    if !bounded {
        eprintln!("RSS at the end is more than 1.5x the RSS after 100 cycles");
    }
    let good = r.failed_reloads.is_empty() && r.sent == r.received && r.disorder == 0 && bounded;
    std::process::exit(if good { 0 } else { 1 });
}
