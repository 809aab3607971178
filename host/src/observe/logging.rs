//! Log output: `tracing-subscriber` writing text or one JSON object per event, through a
//! writer that never blocks an actor.
//!
//! `RUST_LOG` filters as usual (default `info`). In JSON the event's fields sit at the top
//! level (`{"level":"INFO","event":"reload","behaviour":"counter",...}`), so a script can
//! follow the log with `jq` or a line-oriented parser. Event names and fields are listed in
//! [`crate::observe::events`] and the README; they are an interface and stay stable.
//!
//! Whoever logs — a scheduler thread inside a callback among them — only formats the line
//! and puts it on a bounded queue ([`QUEUE_LINES`]); one writer thread writes the queue to
//! stderr. When stderr stalls (a paused pager, a full pipe, Ctrl-S on a terminal) the
//! queue fills and further lines are dropped and counted, never waited for; when the
//! writer catches up it logs `log_lines_dropped` with the count. `tracing-appender`'s
//! lossy `non_blocking` does the same but only exposes the count; this is its shape in
//! about fifty lines, with the report.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use serde::Deserialize;

use super::Event;

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

/// Lines the queue holds before dropping (a few MB of typical lines).
pub const QUEUE_LINES: usize = 16 * 1024;

/// The queue to the writer thread and the count of lines dropped since the last report.
struct Queue {
    tx: Sender<Vec<u8>>,
    dropped: AtomicU64,
    /// Lines queued and not yet written.
    pending: AtomicU64,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

/// What `tracing-subscriber` writes each line through: a buffer, queued when dropped.
pub struct LineWriter {
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let Some(q) = QUEUE.get() else { return };
        q.pending.fetch_add(1, Ordering::SeqCst);
        match q.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                q.pending.fetch_sub(1, Ordering::SeqCst);
                q.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Makes a [`LineWriter`] per event.
#[derive(Clone, Copy)]
pub struct NonBlocking;

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter { buf: Vec::new() }
    }
}

/// The writer thread: stderr, blocking only itself. (Not holding stderr's lock between
/// lines: the binary's own `eprintln!` must get through.)
fn write_loop(rx: Receiver<Vec<u8>>) {
    let mut err = std::io::stderr();
    while let Ok(line) = rx.recv() {
        let _ = err.write_all(&line);
        if let Some(q) = QUEUE.get() {
            q.pending.fetch_sub(1, Ordering::SeqCst);
        }
        if rx.is_empty() {
            let _ = err.flush();
            let dropped = QUEUE
                .get()
                .map_or(0, |q| q.dropped.swap(0, Ordering::Relaxed));
            if dropped > 0 {
                Event::LogLinesDropped { dropped }.log();
            }
        }
    }
}

/// Installs the global subscriber. Safe to call twice (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if QUEUE.get().is_none() {
        let (tx, rx) = channel::bounded(QUEUE_LINES);
        if QUEUE
            .set(Queue {
                tx,
                dropped: AtomicU64::new(0),
                pending: AtomicU64::new(0),
            })
            .is_ok()
        {
            let _ = std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || write_loop(rx));
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(NonBlocking);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Waits (at most `timeout`) until the writer thread has written what is queued: the
/// binary calls it before exiting so the last lines are not lost.
pub fn flush(timeout: std::time::Duration) {
    let Some(q) = QUEUE.get() else { return };
    let deadline = std::time::Instant::now() + timeout;
    while q.pending.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
