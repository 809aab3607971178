//! Log output: `tracing-subscriber` writing text or one JSON object per event.
//!
//! `RUST_LOG` filters as usual (default `info`). In JSON the event's fields sit at the top
//! level (`{"level":"INFO","event":"reload","behaviour":"counter",...}`), so a script can
//! follow the log with `jq` or a line-oriented parser. Event names and fields are listed in
//! [`crate::observe::events`] and the README; they are an interface and stay stable.

use tracing_subscriber::EnvFilter;

use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event, fields at the top level.
    Json,
}

/// Whether text lines get ANSI colours: only when stderr is a terminal and `NO_COLOR`
/// (<https://no-color.org>) is unset or empty — so a log piped to a file or a pager reads
/// as plain `key=value` text that `grep 'event="reload"'` finds.
pub fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
