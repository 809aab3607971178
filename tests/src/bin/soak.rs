//! The soak (run by `scripts/soak.sh`): reload cycles under load, once with retired
//! versions kept mapped and once with unload mode, each in its own process so their
//! memory figures do not mix. Prints one markdown table row per mode.
//!
//! `soak [CYCLES] [--unload]`; without `--unload`/`--keep` it runs both modes by
//! re-executing itself.

use e2e::soak::{run, SoakConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let mode = args.iter().find(|a| *a == "--unload" || *a == "--keep");
    let Some(mode) = mode else {
        println!("| mode | reloads | failed | sent | received | disorder | RSS start | RSS end | retained | swap pause median | p99 | wall |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        let me = std::env::current_exe().expect("own path");
        let mut ok = true;
        for m in ["--keep", "--unload"] {
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
    let r = run(&SoakConfig {
        cycles,
        actors: 100,
        senders: 10,
        unload,
        release: true,
    });
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| {} | {} | {} | {} | {} | {} | {:.1} MiB | {:.1} MiB | {} | {} µs | {} µs | {:.0} s |",
        if unload { "unload" } else { "keep (default)" },
        r.reloads,
        r.failed_reloads.len(),
        r.sent,
        r.received,
        r.disorder,
        mib(r.rss_start),
        mib(r.rss_end),
        r.retained,
        r.pause_quantile(0.5),
        r.pause_quantile(0.99),
        r.elapsed.as_secs_f64()
    );
    for f in &r.failed_reloads {
        eprintln!("failed reload: {f}");
    }
    let good = r.failed_reloads.is_empty() && r.sent == r.received && r.disorder == 0;
    std::process::exit(if good { 0 } else { 1 });
}
