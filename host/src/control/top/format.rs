//! How numbers and times are written in the view.

/// `02:03:04`, or `1d 02:03:04` past a day.
pub(super) fn fmt_uptime(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    let clock = format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60);
    match s / 86_400 {
        0 => clock,
        days => format!("{days}d {clock}"),
    }
}

/// The UTC time of day of a Unix timestamp, `HH:MM:SS`.
pub(super) fn fmt_clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A message rate in at most six characters: `0.5`, `42`, `12345`, `123k`, `1.5M`.
pub(super) fn fmt_rate(rate: f64) -> String {
    let rate = rate.max(0.0);
    if rate < 10.0 {
        format!("{rate:.1}")
    } else if rate < 100_000.0 {
        format!("{rate:.0}")
    } else if rate < 10_000_000.0 {
        format!("{:.0}k", rate / 1e3)
    } else {
        format!("{:.1}M", rate / 1e6)
    }
}

/// A count in at most seven characters: exact below ten million, then `12.3M`, `4.5G`.
pub(super) fn fmt_count(n: u64) -> String {
    if n < 10_000_000 {
        n.to_string()
    } else if n < 1_000_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else {
        format!("{:.1}G", n as f64 / 1e9)
    }
}
