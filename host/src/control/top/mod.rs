//! `host top`: a live terminal view of a running host, in the manner of Erlang's
//! `observer_cli`.
//!
//! [`run`] owns the terminal: it fetches a [`Snapshot`] every refresh interval, feeds it
//! to an [`App`] and redraws. [`App`] holds all the view state (focus, selection, sort,
//! filter, last snapshot, last error) and draws into any ratatui `Frame`, so tests
//! drive it with a `TestBackend` and no terminal.
//!
//! The screen, top to bottom: a header (uptime, actors, messages per second, run queue,
//! scheduler utilisation, reload and crash counters), a status line (errors, the filter
//! being typed), the actor table, the supervision tree, the loaded versions, the last
//! reloads and crashes, and a footer with the keys. It fits 80x24 and uses more room when
//! there is more. It needs no mouse, no true colour (basic named colours only, and
//! never colour alone: every state is also written out) and no Unicode beyond the
//! box-drawing characters, so it works over SSH and in plain terminals.
//!
//! Keys: `q`, Esc or Ctrl-C quit (Esc clears the filter while typing one); Up/Down or
//! `k`/`j` move the selection in the focused pane, PageUp/PageDown by a page, Home/End
//! (or `g`/`G`) to the ends; Tab and Shift-Tab cycle the focus; `/` types a filter on
//! actor names and behaviours (Enter keeps it, Esc clears it, Backspace edits, Ctrl-U
//! empties it); `s` sorts the actors by mailbox length or by message rate.

mod app;
mod draw;
mod format;
#[cfg(test)]
mod tests;

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;

use crate::observe::model::Snapshot;

pub use app::{App, Pane, SortKey};

/// Shortest refresh interval [`run`] accepts; shorter ones are raised to it.
const MIN_REFRESH: Duration = Duration::from_millis(100);

/// Rows a page key moves before the first draw has measured the panes.
const DEFAULT_PAGE: usize = 10;

/// Terminals at least this wide put the actors and the tree side by side.
const WIDE: u16 = 140;

/// Runs the live view until the user quits.
///
/// Puts the terminal in raw mode on the alternate screen, calls `fetch` at once and then
/// every `refresh` (at least 100 ms), and redraws after every fetch, key and resize. A
/// failing `fetch` does not end the view: its message is shown in the status line, the
/// last snapshot stays on screen and the next refresh tries again. The terminal is
/// restored when the view ends, on error, and on panic (a panic hook restores it before
/// the panic message is printed).
///
/// Fails if stdout is not a terminal or the terminal cannot be set up or written.
pub fn run(
    mut fetch: impl FnMut() -> Result<Snapshot, String>,
    refresh: Duration,
) -> io::Result<()> {
    if !io::stdout().is_terminal() {
        return Err(io::Error::other(
            "host top needs a terminal: stdout is not a tty",
        ));
    }
    let refresh = refresh.max(MIN_REFRESH);
    install_panic_hook();
    let guard = TerminalGuard::enter()?;
    // No `terminal.clear()`: it asks the terminal for the cursor position, which not
    // every terminal answers; the screen is cleared on entering instead.
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;

    let mut app = App::new();
    let mut next_fetch = Instant::now();
    let mut dirty = true;
    loop {
        if Instant::now() >= next_fetch {
            match fetch() {
                Ok(snapshot) => app.update(snapshot),
                Err(e) => app.error(e),
            }
            // Counted from the end of the fetch, so a slow host does not make them pile up.
            next_fetch = Instant::now() + refresh;
            dirty = true;
        }
        if dirty {
            terminal.draw(|frame| app.draw(frame))?;
            dirty = false;
        }
        let wait = next_fetch.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) => {
                    if !app.on_key(key) {
                        break;
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
    drop(terminal);
    guard.leave()
}

/// Whether the terminal is in raw mode on the alternate screen because of [`run`].
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was, once, whoever asks first (the view on its way out,
/// the panic hook, or the guard's drop while unwinding).
fn restore_terminal() -> io::Result<()> {
    if !TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let raw = terminal::disable_raw_mode();
    let screen = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    raw.and(screen)
}

/// Chains a hook before the current panic hook that restores the terminal, so the panic
/// message lands on the normal screen of a usable terminal. Installed once per process.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore_terminal();
            previous(info);
        }));
    });
}

/// Raw mode and the alternate screen for as long as it lives.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
        let guard = TerminalGuard;
        execute!(
            io::stdout(),
            terminal::EnterAlternateScreen,
            terminal::Clear(terminal::ClearType::All),
            cursor::Hide
        )?;
        Ok(guard)
    }

    fn leave(self) -> io::Result<()> {
        std::mem::forget(self);
        restore_terminal()
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore_terminal();
    }
}
