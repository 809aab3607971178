//! `host top`: a live terminal view of a running host, in the manner of Erlang's
//! `observer_cli`.
//!
//! [`run`] owns the terminal: it fetches a [`Snapshot`] every refresh interval, feeds it
//! to an [`App`] and redraws. [`App`] holds all the view state (focus, selection, sort,
//! filter, last snapshot, last error) and draws into any ratatui [`Frame`], so tests
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

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::{Frame, Terminal};

use super::model::{ActorInfo, RecentEvent, Snapshot, TreeNode, VersionRow};

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

/// The panes of the view, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The actor table.
    Actors,
    /// The supervision tree.
    Tree,
    /// The loaded behaviour versions.
    Versions,
    /// The last reloads and crashes.
    Recent,
}

impl Pane {
    const ALL: [Pane; 4] = [Pane::Actors, Pane::Tree, Pane::Versions, Pane::Recent];

    fn index(self) -> usize {
        self as usize
    }

    fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % Pane::ALL.len()]
    }

    fn prev(self) -> Pane {
        Pane::ALL[(self.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
    }
}

/// How the actor table is ordered; both descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Messages waiting in the mailbox, longest first (the default).
    Mailbox,
    /// Messages handled per second between the last two snapshots, busiest first.
    Rate,
}

impl SortKey {
    fn name(self) -> &'static str {
        match self {
            SortKey::Mailbox => "mailbox",
            SortKey::Rate => "rate",
        }
    }

    fn other(self) -> SortKey {
        match self {
            SortKey::Mailbox => SortKey::Rate,
            SortKey::Rate => SortKey::Mailbox,
        }
    }
}

/// One line of the flattened supervision tree.
#[derive(Debug, Clone)]
struct TreeRow {
    /// Box-drawing indentation, e.g. `│  ├─ `.
    prefix: String,
    name: String,
    kind: String,
    detail: String,
    status: String,
    restarts: u64,
}

/// The state of the view: what it shows and where the user is in it.
///
/// Feed it with [`App::update`] and [`App::error`], steer it with [`App::on_key`], and
/// draw it with [`App::draw`].
#[derive(Debug)]
pub struct App {
    /// The last snapshot received, kept while fetches fail.
    snapshot: Option<Snapshot>,
    /// The last fetch error, cleared by the next snapshot.
    error: Option<String>,
    /// When the last snapshot arrived.
    updated: Option<Instant>,
    focus: Pane,
    sort: SortKey,
    /// Filter on actor names and behaviours, lower case matching.
    filter: String,
    /// Whether keys are being typed into the filter.
    filtering: bool,
    /// Selected row per pane, indexed by [`Pane::index`].
    selected: [usize; 4],
    /// The selected actor, followed across refreshes, sorts and filters.
    selected_actor: Option<u64>,
    /// Messages per second per actor id, from the last two snapshots.
    rates: HashMap<u64, f64>,
    /// Uptime and `handled` per actor of the previous snapshot, to compute rates.
    baseline: Option<(f64, HashMap<u64, u64>)>,
    /// Indices into the snapshot's actors: filtered, then sorted.
    view: Vec<usize>,
    /// The supervision tree, flattened.
    tree: Vec<TreeRow>,
    /// First row shown per pane; updated by [`App::draw`] to keep the selection visible.
    offsets: Cell<[usize; 4]>,
    /// Rows shown per pane at the last draw, for PageUp/PageDown.
    pages: Cell<[usize; 4]>,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// An empty view: no snapshot yet, focus on the actors, sorted by mailbox, no filter.
    pub fn new() -> App {
        App {
            snapshot: None,
            error: None,
            updated: None,
            focus: Pane::Actors,
            sort: SortKey::Mailbox,
            filter: String::new(),
            filtering: false,
            selected: [0; 4],
            selected_actor: None,
            rates: HashMap::new(),
            baseline: None,
            view: Vec::new(),
            tree: Vec::new(),
            offsets: Cell::new([0; 4]),
            pages: Cell::new([DEFAULT_PAGE; 4]),
        }
    }

    /// Takes a new snapshot: computes each actor's message rate from the previous one
    /// (difference of `handled` over the difference of `stats.uptime_s`), clears the last
    /// error, and keeps the selected actor selected if it is still there.
    pub fn update(&mut self, snapshot: Snapshot) {
        let now = snapshot.stats.uptime_s;
        let handled: HashMap<u64, u64> =
            snapshot.actors.iter().map(|a| (a.id, a.handled)).collect();
        match &self.baseline {
            Some((then, before)) if now > *then => {
                let dt = now - then;
                self.rates = snapshot
                    .actors
                    .iter()
                    .filter_map(|a| {
                        let old = *before.get(&a.id)?;
                        (a.handled >= old).then(|| (a.id, (a.handled - old) as f64 / dt))
                    })
                    .collect();
                self.baseline = Some((now, handled));
            }
            // The same sample again: keep the rates measured so far.
            Some((then, _)) if now == *then => {}
            // The first sample, or the host restarted: nothing to compare with.
            _ => {
                self.rates.clear();
                self.baseline = Some((now, handled));
            }
        }
        self.tree.clear();
        flatten_tree(&snapshot.tree, "", true, &mut self.tree);
        self.snapshot = Some(snapshot);
        self.error = None;
        self.updated = Some(Instant::now());
        self.refresh_view();
    }

    /// Records a failed fetch; it is shown in the status line, prefixed with "host not
    /// reachable: ", until the next [`App::update`]. The last snapshot stays on screen.
    pub fn error(&mut self, e: String) {
        self.error = Some(e);
    }

    /// Handles one key; returns `false` when the user asked to quit.
    ///
    /// Key releases are ignored (only some terminals report them).
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return true;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
            return false;
        }
        if self.filtering {
            match key.code {
                KeyCode::Enter => self.filtering = false,
                KeyCode::Esc => {
                    self.filtering = false;
                    self.filter.clear();
                    self.refresh_view();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                    self.refresh_view();
                }
                KeyCode::Char('u') if ctrl => {
                    self.filter.clear();
                    self.refresh_view();
                }
                KeyCode::Char(c) if !ctrl && !c.is_control() => {
                    self.filter.push(c);
                    self.refresh_view();
                }
                code => {
                    self.navigate(code);
                }
            }
            return true;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Char('j') => self.move_by(1),
            KeyCode::Char('g') => self.move_to(0),
            KeyCode::Char('G') => self.move_to(usize::MAX),
            KeyCode::Tab => self.focus = self.focus.next(),
            KeyCode::BackTab => self.focus = self.focus.prev(),
            KeyCode::Char('/') => {
                self.filtering = true;
                self.focus = Pane::Actors;
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.other();
                self.refresh_view();
            }
            code => {
                self.navigate(code);
            }
        }
        true
    }

    /// The pane with the focus.
    pub fn focus(&self) -> Pane {
        self.focus
    }

    /// The order of the actor table.
    pub fn sort(&self) -> SortKey {
        self.sort
    }

    /// The actor filter, and whether it is being typed.
    pub fn filter(&self) -> (&str, bool) {
        (&self.filter, self.filtering)
    }

    /// The id of the selected actor, if the table shows any.
    pub fn selected_actor(&self) -> Option<u64> {
        self.selected_actor
    }

    /// Messages per second of an actor between the last two snapshots, if it was in
    /// both.
    pub fn rate(&self, actor: u64) -> Option<f64> {
        self.rates.get(&actor).copied()
    }

    /// Arrow and page keys, in any mode; `false` if `code` is none of them.
    fn navigate(&mut self, code: KeyCode) -> bool {
        let page = self.pages.get()[self.focus.index()].max(1) as isize;
        match code {
            KeyCode::Up => self.move_by(-1),
            KeyCode::Down => self.move_by(1),
            KeyCode::PageUp => self.move_by(-page),
            KeyCode::PageDown => self.move_by(page),
            KeyCode::Home => self.move_to(0),
            KeyCode::End => self.move_to(usize::MAX),
            _ => return false,
        }
        true
    }

    fn move_by(&mut self, delta: isize) {
        let current = self.selected[self.focus.index()];
        self.move_to(current.saturating_add_signed(delta));
    }

    /// Selects row `row` of the focused pane, clamped to its rows.
    fn move_to(&mut self, row: usize) {
        let len = self.pane_len(self.focus);
        let row = row.min(len.saturating_sub(1));
        self.selected[self.focus.index()] = row;
        if self.focus == Pane::Actors {
            self.selected_actor = self.actor_at(row).map(|a| a.id);
        }
    }

    fn pane_len(&self, pane: Pane) -> usize {
        let snapshot = self.snapshot.as_ref();
        match pane {
            Pane::Actors => self.view.len(),
            Pane::Tree => self.tree.len(),
            Pane::Versions => snapshot.map_or(0, |s| s.versions.len()),
            Pane::Recent => snapshot.map_or(0, |s| s.recent.len()),
        }
    }

    /// The actor on row `row` of the table.
    fn actor_at(&self, row: usize) -> Option<&ActorInfo> {
        let snapshot = self.snapshot.as_ref()?;
        self.view.get(row).map(|&i| &snapshot.actors[i])
    }

    /// Recomputes the filtered, sorted actor rows and puts the selection back on the
    /// selected actor (or on the same row if it is gone), and clamps the other panes'
    /// selections.
    fn refresh_view(&mut self) {
        let actors = self.snapshot.as_ref().map_or(&[][..], |s| &s.actors[..]);
        let needle = self.filter.to_lowercase();
        let mut view: Vec<usize> = (0..actors.len())
            .filter(|&i| needle.is_empty() || matches_filter(&actors[i], &needle))
            .collect();
        let rate = |a: &ActorInfo| self.rates.get(&a.id).copied().unwrap_or(-1.0);
        match self.sort {
            SortKey::Mailbox => view.sort_by(|&x, &y| {
                let (a, b) = (&actors[x], &actors[y]);
                b.mailbox
                    .cmp(&a.mailbox)
                    .then(rate(b).total_cmp(&rate(a)))
                    .then(a.id.cmp(&b.id))
            }),
            SortKey::Rate => view.sort_by(|&x, &y| {
                let (a, b) = (&actors[x], &actors[y]);
                rate(b)
                    .total_cmp(&rate(a))
                    .then(b.mailbox.cmp(&a.mailbox))
                    .then(a.id.cmp(&b.id))
            }),
        }
        let found = self
            .selected_actor
            .and_then(|id| view.iter().position(|&i| actors[i].id == id));
        let row = found
            .unwrap_or(self.selected[Pane::Actors.index()])
            .min(view.len().saturating_sub(1));
        self.selected_actor = view.get(row).map(|&i| actors[i].id);
        self.selected[Pane::Actors.index()] = row;
        self.view = view;
        for pane in [Pane::Tree, Pane::Versions, Pane::Recent] {
            let last = self.pane_len(pane).saturating_sub(1);
            let selected = &mut self.selected[pane.index()];
            *selected = (*selected).min(last);
        }
    }

    /// Draws the whole view into `frame`.
    pub fn draw(&self, frame: &mut Frame) {
        let area = frame.area();
        let header = self.header_lines(area.width);
        let [header_area, status_area, body, footer_area] = Layout::vertical([
            Constraint::Length(header.len() as u16),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(header), header_area);
        self.draw_status(frame, status_area);
        self.draw_footer(frame, footer_area);

        // Each band gets its share of the height, but a band that needs fewer rows
        // gives the rest to the others.
        let need = |pane: Pane, header: usize| {
            let rows = self.pane_len(pane).max(1);
            (1 + header + rows).min(u16::MAX as usize) as u16
        };
        let (actors, tree, versions, recent);
        if body.width >= WIDE {
            let heights = split_heights(
                body.height,
                &[
                    (3, need(Pane::Actors, 1).max(need(Pane::Tree, 0))),
                    (2, need(Pane::Versions, 1).max(need(Pane::Recent, 1))),
                ],
            );
            let [top, bottom] = Layout::vertical(heights.map(Constraint::Length)).areas(body);
            // The tree and the versions get what they need, within limits; the actors and
            // the events the rest.
            let tree_width = self
                .tree_width(true)
                .clamp(part(body.width, 30), part(body.width, 40));
            [actors, tree] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Length(tree_width)])
                    .spacing(1)
                    .areas(top);
            let versions_width = self
                .versions_width(true)
                .clamp(part(body.width, 30), part(body.width, 45));
            [versions, recent] =
                Layout::horizontal([Constraint::Length(versions_width), Constraint::Fill(1)])
                    .spacing(1)
                    .areas(bottom);
        } else {
            let heights = split_heights(
                body.height,
                &[
                    (2, need(Pane::Actors, 1)),
                    (1, need(Pane::Tree, 0).max(need(Pane::Versions, 1))),
                    (1, need(Pane::Recent, 1)),
                ],
            );
            let [top, middle, bottom] =
                Layout::vertical(heights.map(Constraint::Length)).areas(body);
            actors = top;
            // Side by side: the tree gets what it needs if the versions still get theirs
            // (at worst without the gap between the panes), or else at least half.
            let versions_need = self.versions_width(false);
            let mut tree_need = self.tree_width(true);
            if tree_need.saturating_add(versions_need) >= middle.width {
                tree_need = self.tree_width(false);
            }
            let gap = u16::from(tree_need.saturating_add(versions_need) < middle.width);
            let room = middle.width.saturating_sub(gap);
            let tree_width = tree_need.min(room.saturating_sub(versions_need.min(room / 2)));
            [tree, versions] =
                Layout::horizontal([Constraint::Length(tree_width), Constraint::Fill(1)])
                    .spacing(gap)
                    .areas(middle);
            recent = bottom;
        }
        self.draw_actors(frame, actors);
        self.draw_tree(frame, tree);
        self.draw_versions(frame, versions);
        self.draw_recent(frame, recent);
    }

    /// Columns the tree needs, selection mark included, with or without the behaviours
    /// and strategies (which are dropped first when narrow).
    fn tree_width(&self, details: bool) -> u16 {
        let widest = self.tree.iter().map(|node| {
            let text = format!(
                "{}{}  {} {}  restarts {}",
                node.prefix, node.name, node.kind, node.status, node.restarts
            );
            let detail = if details { 2 + node.detail.len() } else { 0 };
            Span::raw(text).width() + detail
        });
        (1 + widest.max().unwrap_or(0).max(20)).min(u16::MAX as usize) as u16
    }

    /// Columns the versions table needs, selection mark included, with or without the
    /// reasons versions are pinned.
    fn versions_width(&self, reasons: bool) -> u16 {
        let versions: &[VersionRow] = self.snapshot.as_ref().map_or(&[], |s| &s.versions);
        let widest = |f: &dyn Fn(&VersionRow) -> usize, min: usize| {
            versions.iter().map(f).max().unwrap_or(0).max(min)
        };
        let width =
            1 + widest(
                &|v| match reasons {
                    true => Span::raw(version_behaviours(v)).width(),
                    false => Span::raw(v.behaviours.join(", ")).width(),
                },
                "BEHAVIOURS".len(),
            ) + 1
                + widest(&|v| v.hash.len(), 4)
                + 1
                + widest(&|v| v.status.len(), 6)
                + 1
                + widest(&|v| v.actors.to_string().len(), 6);
        width.min(u16::MAX as usize) as u16
    }

    /// The header: groups of counters, packed greedily into as few lines as the width
    /// allows.
    fn header_lines(&self, width: u16) -> Vec<Line<'static>> {
        let Some(snapshot) = &self.snapshot else {
            return vec![Line::from(vec![
                Span::styled("host top", bold()),
                Span::raw("  no data yet"),
            ])];
        };
        let stats = &snapshot.stats;
        let value = |s: String| Span::styled(s, bold());
        let counter = |n: u64, colour: Color| {
            let style = if n > 0 { bold().fg(colour) } else { bold() };
            Span::styled(n.to_string(), style)
        };
        let load = vec![
            Span::raw("up "),
            value(fmt_uptime(stats.uptime_s)),
            Span::raw("  actors "),
            value(stats.actors.to_string()),
            Span::raw("  msgs/s "),
            value(fmt_rate(stats.messages_per_s)),
            Span::raw("  run queue "),
            value(stats.run_queue.to_string()),
        ];
        let mut util = vec![Span::raw("util")];
        for u in &stats.utilisation {
            let percent = (u * 100.0).clamp(0.0, 100.0).round();
            let style = if percent >= 90.0 {
                bold().fg(Color::Yellow)
            } else {
                bold()
            };
            util.push(Span::raw(" "));
            util.push(Span::styled(format!("{percent:.0}%"), style));
        }
        if stats.utilisation.is_empty() {
            util.push(Span::raw(" -"));
        }
        let reloads = vec![
            Span::raw("reloads ok "),
            counter(stats.reloads_ok, Color::Green),
            Span::raw(" rolled_back "),
            counter(stats.reloads_rolled_back, Color::Yellow),
            Span::raw(" rejected "),
            counter(stats.reloads_rejected, Color::Yellow),
            Span::raw("  crashes "),
            counter(stats.crashes, Color::Red),
        ];
        let width = width as usize;
        let mut lines: Vec<Vec<Span<'static>>> = Vec::new();
        for group in [load, util, reloads] {
            let group_width: usize = group.iter().map(Span::width).sum();
            match lines.last_mut() {
                Some(line)
                    if line.iter().map(Span::width).sum::<usize>() + 2 + group_width <= width =>
                {
                    line.push(Span::raw("  "));
                    line.extend(group);
                }
                _ => lines.push(group),
            }
        }
        lines.into_iter().map(Line::from).collect()
    }

    /// The status line: the filter being typed, the last error, or what is filtered.
    fn draw_status(&self, frame: &mut Frame, area: Rect) {
        let mut spans = Vec::new();
        if self.filtering {
            spans.push(Span::styled("/", bold()));
            spans.push(Span::raw(self.filter.clone()));
            let x = usize::from(area.x) + 1 + Span::raw(self.filter.as_str()).width();
            if x < usize::from(area.right()) {
                frame.set_cursor_position((x as u16, area.y));
            }
            spans.push(Span::raw("   "));
        }
        if let Some(e) = &self.error {
            let age = match self.updated {
                Some(t) => format!(" (retrying; data {}s old)", t.elapsed().as_secs()),
                None => " (retrying)".to_string(),
            };
            spans.push(Span::styled(
                format!("host not reachable: {e}{age}"),
                bold().fg(Color::Red),
            ));
        } else if self.snapshot.is_none() {
            spans.push(Span::raw("waiting for the host..."));
        } else if !self.filtering && !self.filter.is_empty() {
            spans.push(Span::raw(format!("filter: {}  (/ to edit)", self.filter)));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_footer(&self, frame: &mut Frame, area: Rect) {
        let keys: &[(&str, &str)] = if self.filtering {
            &[
                ("type", "to filter"),
                ("Enter", "keep"),
                ("Esc", "clear"),
                ("Backspace", "edit"),
                ("Up/Down", "move"),
                ("Ctrl-C", "quit"),
            ]
        } else {
            &[
                ("q", "quit"),
                ("Tab/S-Tab", "pane"),
                ("j/k", "move"),
                ("PgUp/PgDn/Home/End", ""),
                ("/", "filter"),
                (
                    "s",
                    match self.sort {
                        SortKey::Mailbox => "sort by rate",
                        SortKey::Rate => "sort by mailbox",
                    },
                ),
            ]
        };
        let mut spans = Vec::new();
        for (i, (key, what)) in keys.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(
                *key,
                Style::new().add_modifier(Modifier::REVERSED),
            ));
            if !what.is_empty() {
                spans.push(Span::raw(format!(" {what}")));
            }
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    /// Draws a pane's frame (a titled top rule) and returns the area inside it.
    fn pane_frame(&self, frame: &mut Frame, pane: Pane, area: Rect, title: String) -> Rect {
        let focused = self.focus == pane;
        let (rule, title_style) = if focused {
            (
                Style::new().fg(Color::Cyan),
                bold().add_modifier(Modifier::REVERSED),
            )
        } else {
            (Style::new(), bold())
        };
        let block = Block::new()
            .borders(Borders::TOP)
            .border_style(rule)
            .title(Span::styled(format!(" {title} "), title_style));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        inner
    }

    /// The rows of `pane` that fit in `height` lines, scrolled so that the selection is
    /// visible and moving as little as possible since the last draw.
    fn viewport(&self, pane: Pane, height: usize, len: usize) -> Range<usize> {
        let i = pane.index();
        let mut pages = self.pages.get();
        pages[i] = height.max(1);
        self.pages.set(pages);
        let selected = self.selected[i];
        let mut offsets = self.offsets.get();
        let mut offset = offsets[i].min(len.saturating_sub(height));
        if selected < offset {
            offset = selected;
        } else if height > 0 && selected >= offset + height {
            offset = selected + 1 - height;
        }
        offsets[i] = offset;
        self.offsets.set(offsets);
        offset..(offset + height).min(len)
    }

    /// Renders the visible `rows` of `pane` as a table, or `empty` when there are none.
    /// In the focused pane the selected row is marked by `>` and shown reversed.
    #[allow(clippy::too_many_arguments)]
    fn render_table(
        &self,
        frame: &mut Frame,
        pane: Pane,
        area: Rect,
        header: Option<Row<'static>>,
        widths: Vec<Constraint>,
        rows: Vec<Row<'static>>,
        range: Range<usize>,
        empty: &str,
    ) {
        if rows.is_empty() {
            let y = if header.is_some() { 1 } else { 0 };
            if area.height > y {
                let line = Rect {
                    y: area.y + y,
                    height: 1,
                    ..area
                };
                frame.render_widget(
                    Paragraph::new(format!("  {empty}"))
                        .style(Style::new().add_modifier(Modifier::DIM)),
                    line,
                );
            }
        }
        let selected = self.selected[pane.index()];
        let mut state = TableState::new();
        if self.focus == pane && range.contains(&selected) {
            state.select(Some(selected - range.start));
        }
        let mut table = Table::new(rows, widths)
            .column_spacing(1)
            .highlight_symbol(">")
            .highlight_spacing(HighlightSpacing::Always)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        if let Some(header) = header {
            table = table.header(header.style(bold()));
        }
        frame.render_stateful_widget(table, area, &mut state);
    }

    fn draw_actors(&self, frame: &mut Frame, area: Rect) {
        let total = self.snapshot.as_ref().map_or(0, |s| s.actors.len());
        let mut title = format!(
            "Actors {}/{}  sorted by {}",
            self.view.len(),
            total,
            self.sort.name()
        );
        if !self.filter.is_empty() {
            title.push_str(&format!("  filter \"{}\"", self.filter));
        }
        let inner = self.pane_frame(frame, Pane::Actors, area, title);
        let range = self.viewport(
            Pane::Actors,
            inner.height.saturating_sub(1) as usize,
            self.view.len(),
        );

        let marker = |label: &str, key: SortKey| {
            if self.sort == key {
                format!("{label} v")
            } else {
                label.to_string()
            }
        };
        let labels = [
            "ID".to_string(),
            "NAME".to_string(),
            "BEHAVIOUR".to_string(),
            "VERSION".to_string(),
            "STATUS".to_string(),
            marker("MAILBOX", SortKey::Mailbox),
            marker("MSG/S", SortKey::Rate),
            "HANDLED".to_string(),
            "RESTARTS".to_string(),
        ];
        const NAME: usize = 1;
        const BEHAVIOUR: usize = 2;
        const STATUS: usize = 4;
        const MAILBOX: usize = 5;
        let right = |column: usize| matches!(column, 0 | 5..=8);

        let actors: Vec<&ActorInfo> = range.clone().filter_map(|row| self.actor_at(row)).collect();
        let cells: Vec<[String; 9]> = actors
            .iter()
            .map(|a| {
                [
                    a.id.to_string(),
                    a.name.clone().unwrap_or_else(|| "-".to_string()),
                    a.behaviour.clone(),
                    a.version.clone(),
                    a.status.clone(),
                    a.mailbox.to_string(),
                    self.rate(a.id).map_or_else(|| "-".to_string(), fmt_rate),
                    fmt_count(a.handled),
                    a.restarts.to_string(),
                ]
            })
            .collect();
        let mut natural: [usize; 9] = std::array::from_fn(|c| labels[c].len());
        for row in &cells {
            for (c, cell) in row.iter().enumerate() {
                natural[c] = natural[c].max(Span::raw(cell.as_str()).width());
            }
        }
        let widths: Vec<Constraint> = (0..9)
            .map(|c| match c {
                NAME | BEHAVIOUR => Constraint::Fill(natural[c] as u16),
                _ => Constraint::Length(natural[c] as u16),
            })
            .collect();
        let align = |c: usize, text: &str| {
            if right(c) {
                format!("{text:>w$}", w = natural[c])
            } else {
                text.to_string()
            }
        };
        let header = Row::new(
            labels
                .iter()
                .enumerate()
                .map(|(c, label)| {
                    let style = if label.ends_with(" v") {
                        Style::new().add_modifier(Modifier::UNDERLINED)
                    } else {
                        Style::new()
                    };
                    Span::styled(align(c, label), style)
                })
                .collect::<Vec<_>>(),
        );
        let rows = cells
            .iter()
            .zip(&actors)
            .map(|(row, actor)| {
                Row::new(
                    row.iter()
                        .enumerate()
                        .map(|(c, text)| {
                            let style = match c {
                                STATUS => status_style(&actor.status),
                                MAILBOX if actor.mailbox >= 1000 => bold().fg(Color::Red),
                                MAILBOX if actor.mailbox >= 100 => Style::new().fg(Color::Yellow),
                                8 if actor.restarts > 0 => Style::new().fg(Color::Yellow),
                                _ => Style::new(),
                            };
                            Span::styled(align(c, text), style)
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let empty = if self.snapshot.is_none() {
            "no data yet".to_string()
        } else if self.filter.is_empty() {
            "no actors".to_string()
        } else {
            format!("no actor matches \"{}\"", self.filter)
        };
        self.render_table(
            frame,
            Pane::Actors,
            inner,
            Some(header),
            widths,
            rows,
            range,
            &empty,
        );
    }

    fn draw_tree(&self, frame: &mut Frame, area: Rect) {
        let inner = self.pane_frame(frame, Pane::Tree, area, "Supervision tree".to_string());
        let range = self.viewport(Pane::Tree, inner.height as usize, self.tree.len());
        // The behaviour or strategy goes last, and only where the whole line fits.
        let room = (inner.width as usize).saturating_sub(1);
        let rows = self.tree[range.clone()]
            .iter()
            .map(|node| {
                let restarts = if node.restarts > 0 {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                let mut spans = vec![
                    Span::raw(node.prefix.clone()),
                    Span::styled(node.name.clone(), bold()),
                    Span::raw(format!("  {} ", node.kind)),
                    Span::styled(node.status.clone(), status_style(&node.status)),
                    Span::styled(format!("  restarts {}", node.restarts), restarts),
                ];
                let detail = format!("  {}", node.detail);
                if spans.iter().map(Span::width).sum::<usize>() + detail.len() <= room {
                    spans.push(Span::styled(
                        detail,
                        Style::new().add_modifier(Modifier::DIM),
                    ));
                }
                Row::new([Line::from(spans)])
            })
            .collect();
        self.render_table(
            frame,
            Pane::Tree,
            inner,
            None,
            vec![Constraint::Fill(1)],
            rows,
            range,
            "no supervisors",
        );
    }

    fn draw_versions(&self, frame: &mut Frame, area: Rect) {
        let inner = self.pane_frame(frame, Pane::Versions, area, "Versions".to_string());
        let versions: &[VersionRow] = self.snapshot.as_ref().map_or(&[], |s| &s.versions);
        let range = self.viewport(
            Pane::Versions,
            inner.height.saturating_sub(1) as usize,
            versions.len(),
        );
        let shown = &versions[range.clone()];
        let hash_width = shown.iter().map(|v| v.hash.len()).max().unwrap_or(0).max(4);
        let status_width = shown
            .iter()
            .map(|v| v.status.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let actors_width = shown
            .iter()
            .map(|v| v.actors.to_string().len())
            .max()
            .unwrap_or(0)
            .max(6);
        let header = Row::new([
            "BEHAVIOURS".to_string(),
            "HASH".to_string(),
            "STATUS".to_string(),
            format!("{:>actors_width$}", "ACTORS"),
        ]);
        let rows = shown
            .iter()
            .map(|v| {
                Row::new([
                    Span::raw(version_behaviours(v)),
                    Span::raw(v.hash.clone()),
                    Span::styled(v.status.clone(), version_style(&v.status)),
                    Span::raw(format!("{:>actors_width$}", v.actors)),
                ])
            })
            .collect();
        let widths = vec![
            Constraint::Fill(1),
            Constraint::Length(hash_width as u16),
            Constraint::Length(status_width as u16),
            Constraint::Length(actors_width as u16),
        ];
        self.render_table(
            frame,
            Pane::Versions,
            inner,
            Some(header),
            widths,
            rows,
            range,
            "no versions loaded",
        );
    }

    fn draw_recent(&self, frame: &mut Frame, area: Rect) {
        let inner = self.pane_frame(
            frame,
            Pane::Recent,
            area,
            "Last reloads and crashes (UTC)".to_string(),
        );
        let recent: &[RecentEvent] = self.snapshot.as_ref().map_or(&[], |s| &s.recent);
        let range = self.viewport(
            Pane::Recent,
            inner.height.saturating_sub(1) as usize,
            recent.len(),
        );
        // Newest first: row `i` is the `i`-th event from the end.
        let shown: Vec<&RecentEvent> = range
            .clone()
            .map(|i| &recent[recent.len() - 1 - i])
            .collect();
        let event_width = shown
            .iter()
            .map(|e| e.event.len())
            .max()
            .unwrap_or(0)
            .clamp(5, 20);
        let header = Row::new(["TIME", "EVENT", "SUBJECT", "OUTCOME"]);
        let rows = shown
            .iter()
            .map(|e| {
                let style = recent_style(e);
                Row::new([
                    Span::raw(fmt_clock(e.at)),
                    Span::styled(
                        e.event.clone(),
                        if e.event == "crash" {
                            style
                        } else {
                            Style::new()
                        },
                    ),
                    Span::raw(e.subject.clone()),
                    Span::styled(e.outcome.clone(), style),
                ])
            })
            .collect();
        let widths = vec![
            Constraint::Length(8),
            Constraint::Length(event_width as u16),
            Constraint::Fill(3),
            Constraint::Fill(2),
        ];
        self.render_table(
            frame,
            Pane::Recent,
            inner,
            Some(header),
            widths,
            rows,
            range,
            "nothing yet",
        );
    }
}

/// `percent` per cent of `width`, rounded down.
fn part(width: u16, percent: u32) -> u16 {
    (u32::from(width) * percent / 100) as u16
}

/// Splits `total` rows between bands given as `(weight, rows needed)`: each gets its
/// weighted share, a band needing less gives the surplus to the others (first bands
/// first), and whatever nobody needs goes to the first band, so the screen stays full.
fn split_heights<const N: usize>(total: u16, bands: &[(u16, u16); N]) -> [u16; N] {
    let weights: u32 = bands.iter().map(|&(w, _)| u32::from(w)).sum::<u32>().max(1);
    let mut heights = [0u16; N];
    let mut given = 0u16;
    for (i, &(weight, _)) in bands.iter().enumerate() {
        heights[i] = if i + 1 == N {
            total - given
        } else {
            (u32::from(total) * u32::from(weight) / weights) as u16
        };
        given += heights[i];
    }
    let mut spare = 0;
    for (height, &(_, need)) in heights.iter_mut().zip(bands) {
        if *height > need {
            spare += *height - need;
            *height = need;
        }
    }
    for (height, &(_, need)) in heights.iter_mut().zip(bands) {
        let more = need.saturating_sub(*height).min(spare);
        *height += more;
        spare -= more;
    }
    heights[0] += spare;
    heights
}

/// A version's behaviours, with the reason it is pinned if it is.
fn version_behaviours(v: &VersionRow) -> String {
    let behaviours = v.behaviours.join(", ");
    match &v.reason {
        Some(reason) => format!("{behaviours} ({reason})"),
        None => behaviours,
    }
}

/// Whether the actor's name or behaviour contains `needle` (already lower case).
fn matches_filter(actor: &ActorInfo, needle: &str) -> bool {
    actor.behaviour.to_lowercase().contains(needle)
        || actor
            .name
            .as_deref()
            .is_some_and(|name| name.to_lowercase().contains(needle))
}

/// Appends `nodes` and their descendants to `out`, drawing the branches with
/// box-drawing characters; roots get no branch.
fn flatten_tree(nodes: &[TreeNode], prefix: &str, roots: bool, out: &mut Vec<TreeRow>) {
    for (i, node) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let (branch, below) = match (roots, last) {
            (true, _) => ("", ""),
            (false, false) => ("├─ ", "│  "),
            (false, true) => ("└─ ", "   "),
        };
        out.push(TreeRow {
            prefix: format!("{prefix}{branch}"),
            name: node.name.clone(),
            kind: node.kind.clone(),
            detail: node.detail.clone(),
            status: node.status.clone(),
            restarts: node.restarts,
        });
        flatten_tree(&node.children, &format!("{prefix}{below}"), false, out);
    }
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// Actor and child statuses.
fn status_style(status: &str) -> Style {
    match status {
        "running" => Style::new().fg(Color::Green),
        "suspended" | "restarting" => Style::new().fg(Color::Yellow),
        "stopped" => Style::new().fg(Color::Red),
        _ => Style::new(),
    }
}

fn version_style(status: &str) -> Style {
    match status {
        "current" => Style::new().fg(Color::Green),
        "pinned" => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    }
}

/// Green for a reload that went through, yellow for one refused or rolled back, red for
/// a crash; the outcome is always written out too.
fn recent_style(event: &RecentEvent) -> Style {
    if event.event == "crash" {
        return bold().fg(Color::Red);
    }
    match event.outcome.as_str() {
        "ok" => Style::new().fg(Color::Green),
        "rolled_back" | "rejected" => bold().fg(Color::Yellow),
        _ => Style::new(),
    }
}

/// `02:03:04`, or `1d 02:03:04` past a day.
fn fmt_uptime(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    let clock = format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60);
    match s / 86_400 {
        0 => clock,
        days => format!("{days}d {clock}"),
    }
}

/// The UTC time of day of a Unix timestamp, `HH:MM:SS`.
fn fmt_clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A message rate in at most six characters: `0.5`, `42`, `12345`, `123k`, `1.5M`.
fn fmt_rate(rate: f64) -> String {
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
fn fmt_count(n: u64) -> String {
    if n < 10_000_000 {
        n.to_string()
    } else if n < 1_000_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else {
        format!("{:.1}G", n as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::model::Stats;
    use ratatui::backend::TestBackend;
    use std::path::PathBuf;

    fn actor(id: u64, name: &str, behaviour: &str, mailbox: usize, handled: u64) -> ActorInfo {
        ActorInfo {
            id,
            name: Some(name.to_string()),
            behaviour: behaviour.to_string(),
            version: "1.0.0".to_string(),
            status: "running".to_string(),
            mailbox,
            handled,
            restarts: 0,
        }
    }

    fn node(
        name: &str,
        kind: &str,
        detail: &str,
        restarts: u64,
        children: Vec<TreeNode>,
    ) -> TreeNode {
        TreeNode {
            name: name.to_string(),
            kind: kind.to_string(),
            detail: detail.to_string(),
            actor: 1,
            status: "running".to_string(),
            restarts,
            children,
        }
    }

    fn version(behaviours: &str, hash: &str, status: &str, actors: usize) -> VersionRow {
        VersionRow {
            library: PathBuf::from("/x/libcounter.so"),
            behaviours: vec![behaviours.to_string()],
            hash: hash.to_string(),
            loaded_at: 0,
            status: status.to_string(),
            actors,
            reason: None,
            copy: PathBuf::from("/tmp/copy.so"),
        }
    }

    fn event(at: u64, event: &str, subject: &str, outcome: &str) -> RecentEvent {
        RecentEvent {
            at,
            event: event.to_string(),
            subject: subject.to_string(),
            outcome: outcome.to_string(),
        }
    }

    /// Three actors: mailbox order beta (9), gamma (5), alpha (1).
    fn snapshot(uptime_s: f64, handled: [u64; 3]) -> Snapshot {
        Snapshot {
            stats: Stats {
                uptime_s,
                actors: 3,
                messages: 100,
                messages_per_s: 12.5,
                utilisation: vec![0.25, 0.5],
                run_queue: 2,
                reloads_ok: 3,
                reloads_rolled_back: 1,
                reloads_rejected: 4,
                crashes: 7,
            },
            actors: vec![
                actor(1, "alpha", "counter", 1, handled[0]),
                actor(2, "beta", "echo", 9, handled[1]),
                actor(3, "gamma", "payment", 5, handled[2]),
            ],
            tree: vec![node(
                "root",
                "supervisor",
                "one_for_one",
                0,
                vec![
                    node("counter", "worker", "counter", 2, vec![]),
                    node(
                        "pay_sup",
                        "supervisor",
                        "one_for_all",
                        0,
                        vec![node("payment", "worker", "payment", 0, vec![])],
                    ),
                    node("flaky", "worker", "flaky", 5, vec![]),
                ],
            )],
            versions: vec![
                version("counter@1.1.0", "ab12cd34", "current", 1),
                version("counter@1.0.0", "ef56ab78", "retired", 0),
            ],
            recent: vec![
                event(3_600 + 2 * 60 + 3, "reload", "counter 1.0.0 -> 1.1.0", "ok"),
                event(7_200, "reload", "echo 1.0.0 -> 2.0.0", "rolled_back"),
                event(86_400 + 10, "crash", "flaky <0.7.0>", "panic: boom"),
            ],
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn press(app: &mut App, code: KeyCode) -> bool {
        app.on_key(key(code))
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            assert!(press(app, KeyCode::Char(c)));
        }
    }

    /// Draws `app` on a `width` x `height` test terminal; returns the screen's lines.
    fn render(app: &App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| app.draw(frame)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    fn screen(app: &App) -> Vec<String> {
        render(app, 80, 24)
    }

    /// The line containing `needle`, and its row; panics if there is none.
    fn line_with<'a>(lines: &'a [String], needle: &str) -> (usize, &'a str) {
        lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .map(|(i, l)| (i, l.as_str()))
            .unwrap_or_else(|| panic!("no line contains {needle:?}:\n{}", lines.join("\n")))
    }

    /// Names of the actor rows, top to bottom, as they appear on screen.
    fn actor_order(lines: &[String], names: &[&str]) -> Vec<String> {
        let mut found: Vec<(usize, String)> = names
            .iter()
            .filter_map(|n| {
                lines
                    .iter()
                    .position(|l| l.contains(&format!(" {n} ")))
                    .map(|row| (row, n.to_string()))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    }

    /// The line starting with the selection mark `>` (the leftmost pane's selection).
    fn marked(lines: &[String]) -> &str {
        lines
            .iter()
            .find(|l| l.starts_with('>'))
            .unwrap_or_else(|| panic!("no line marked:\n{}", lines.join("\n")))
    }

    /// The name on the row marked `>` in the actor table.
    fn selected_name(lines: &[String]) -> String {
        let line = marked(lines);
        ["alpha", "beta", "gamma"]
            .into_iter()
            .find(|n| line.contains(n))
            .unwrap_or_else(|| panic!("no actor on the selected line {line:?}"))
            .to_string()
    }

    #[test]
    fn actors_sorted_by_mailbox_by_default() {
        let mut app = App::new();
        app.update(snapshot(10.0, [10, 20, 30]));
        let lines = screen(&app);
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["beta", "gamma", "alpha"]
        );
        let (_, header) = line_with(&lines, "BEHAVIOUR");
        assert!(header.contains("MAILBOX v"), "{header}");
        assert!(!header.contains("MSG/S v"), "{header}");
        let (_, beta) = line_with(&lines, " beta ");
        for cell in ["echo", "1.0.0", "running", " 9 ", " 20 "] {
            assert!(beta.contains(cell), "{cell:?} missing in {beta:?}");
        }
        // No rate before a second snapshot.
        assert!(beta.contains(" - "), "{beta}");
        line_with(&lines, "Actors 3/3  sorted by mailbox");
    }

    #[test]
    fn s_sorts_by_rate_from_two_snapshots() {
        let mut app = App::new();
        app.update(snapshot(10.0, [0, 0, 0]));
        // Over 2 s: alpha 100 msgs (50/s), beta 2 (1/s), gamma 40 (20/s).
        app.update(snapshot(12.0, [100, 2, 40]));
        assert_eq!(app.rate(1), Some(50.0));
        let lines = screen(&app);
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["beta", "gamma", "alpha"]
        );

        assert!(press(&mut app, KeyCode::Char('s')));
        assert_eq!(app.sort(), SortKey::Rate);
        let lines = screen(&app);
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["alpha", "gamma", "beta"]
        );
        let (_, header) = line_with(&lines, "BEHAVIOUR");
        assert!(header.contains("MSG/S v"), "{header}");
        assert!(!header.contains("MAILBOX v"), "{header}");
        assert!(line_with(&lines, " alpha ").1.contains(" 50 "));
        assert!(line_with(&lines, " beta ").1.contains(" 1.0 "));
        line_with(&lines, "sorted by rate");

        assert!(press(&mut app, KeyCode::Char('s')));
        let lines = screen(&app);
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["beta", "gamma", "alpha"]
        );
    }

    #[test]
    fn filter_hides_actors_and_esc_restores_them() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        assert!(press(&mut app, KeyCode::Char('/')));
        // Case-insensitive, on the behaviour ("payment") as well as the name.
        type_text(&mut app, "PAY");
        assert_eq!(app.filter(), ("PAY", true));
        let lines = screen(&app);
        assert_eq!(actor_order(&lines, &["alpha", "beta", "gamma"]), ["gamma"]);
        line_with(&lines, "/PAY");
        line_with(&lines, "Actors 1/3");

        // Esc clears the filter and does not quit.
        assert!(press(&mut app, KeyCode::Esc));
        assert_eq!(app.filter(), ("", false));
        let lines = screen(&app);
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["beta", "gamma", "alpha"]
        );
    }

    #[test]
    fn filter_enter_keeps_it_and_backspace_edits() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        press(&mut app, KeyCode::Char('/'));
        // `q`, `s` and `j` are text while filtering.
        type_text(&mut app, "alq");
        assert_eq!(
            actor_order(&screen(&app), &["alpha", "beta", "gamma"]),
            Vec::<String>::new()
        );
        line_with(&screen(&app), "no actor matches \"alq\"");
        assert!(press(&mut app, KeyCode::Backspace));
        assert!(press(&mut app, KeyCode::Enter));
        assert_eq!(app.filter(), ("al", false));
        let lines = screen(&app);
        assert_eq!(actor_order(&lines, &["alpha", "beta", "gamma"]), ["alpha"]);
        line_with(&lines, "filter: al");
        // The filter survives a refresh.
        app.update(snapshot(11.0, [1, 2, 3]));
        assert_eq!(
            actor_order(&screen(&app), &["alpha", "beta", "gamma"]),
            ["alpha"]
        );
    }

    #[test]
    fn tree_pane_shows_indented_children() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        let lines = render(&app, 200, 40);
        line_with(&lines, "Supervision tree");
        line_with(&lines, "root  supervisor running  restarts 0  one_for_one");
        line_with(&lines, "├─ counter  worker running  restarts 2");
        line_with(&lines, "├─ pay_sup  supervisor running");
        line_with(&lines, "│  └─ payment  worker running  restarts 0");
        line_with(&lines, "└─ flaky  worker running  restarts 5");
        // And in 80x24 the first rows fit.
        line_with(&screen(&app), "├─ counter  worker running  restarts 2");
    }

    #[test]
    fn versions_pane_shows_versions() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        for lines in [screen(&app), render(&app, 160, 50)] {
            let (_, current) = line_with(&lines, "counter@1.1.0");
            assert!(
                current.contains("ab12cd34") && current.contains("current"),
                "{current}"
            );
            let (_, retired) = line_with(&lines, "counter@1.0.0");
            assert!(
                retired.contains("ef56ab78") && retired.contains("retired"),
                "{retired}"
            );
        }
    }

    #[test]
    fn recent_pane_newest_first_with_outcomes() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        let lines = screen(&app);
        line_with(&lines, "Last reloads and crashes");
        let (crash, crash_line) = line_with(&lines, "flaky <0.7.0>");
        let (rolled, rolled_line) = line_with(&lines, "echo 1.0.0 -> 2.0.0");
        let (ok, ok_line) = line_with(&lines, "counter 1.0.0 -> 1.1.0");
        assert!(
            crash < rolled && rolled < ok,
            "not newest first:\n{}",
            lines.join("\n")
        );
        assert!(crash_line.contains("00:00:10") && crash_line.contains("crash"));
        assert!(crash_line.contains("panic: boom"), "{crash_line}");
        assert!(rolled_line.contains("02:00:00") && rolled_line.contains("rolled_back"));
        assert!(
            ok_line.contains("01:02:03") && ok_line.contains(" ok"),
            "{ok_line}"
        );
    }

    #[test]
    fn header_shows_counters() {
        let mut app = App::new();
        let mut snap = snapshot(90_061.0, [1, 2, 3]);
        snap.stats.utilisation = vec![0.25, 0.5, 1.0, 0.0];
        app.update(snap);
        let lines = screen(&app);
        line_with(&lines, "up 1d 01:01:01  actors 3  msgs/s 12  run queue 2");
        line_with(&lines, "util 25% 50% 100% 0%");
        line_with(&lines, "reloads ok 3 rolled_back 1 rejected 4  crashes 7");
        // Wide enough, it all goes on one line.
        let wide = render(&app, 200, 40);
        let (_, first) = line_with(&wide, "up 1d");
        assert!(
            first.contains("util 25%") && first.contains("crashes 7"),
            "{first}"
        );
    }

    #[test]
    fn error_shows_in_status_line_and_data_stays() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        app.error("connection refused".to_string());
        let lines = screen(&app);
        line_with(&lines, "host not reachable: connection refused");
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["beta", "gamma", "alpha"]
        );
        line_with(&lines, "counter@1.1.0");
        // The next snapshot clears it.
        app.update(snapshot(11.0, [1, 2, 3]));
        assert!(!screen(&app).iter().any(|l| l.contains("not reachable")));
    }

    #[test]
    fn error_before_any_data() {
        let mut app = App::new();
        app.error("no such file".to_string());
        let lines = screen(&app);
        line_with(&lines, "host not reachable: no such file (retrying)");
        line_with(&lines, "no data yet");
    }

    #[test]
    fn quit_keys() {
        let mut app = App::new();
        assert!(!press(&mut app, KeyCode::Char('q')));
        assert!(!press(&mut app, KeyCode::Esc));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(!app.on_key(ctrl_c));
        // While filtering, q is text, Esc clears, Ctrl-C still quits.
        press(&mut app, KeyCode::Char('/'));
        assert!(press(&mut app, KeyCode::Char('q')));
        assert!(!app.on_key(ctrl_c));
        assert!(press(&mut app, KeyCode::Esc));
        assert!(!press(&mut app, KeyCode::Char('q')));
        // Other keys do not quit.
        for code in [
            KeyCode::Char('x'),
            KeyCode::Tab,
            KeyCode::Down,
            KeyCode::Enter,
        ] {
            assert!(press(&mut app, code));
        }
    }

    #[test]
    fn renders_empty_snapshots_and_tiny_terminals() {
        let fresh = App::new();
        let lines = screen(&fresh);
        line_with(&lines, "waiting for the host");
        line_with(&lines, "q quit");
        let mut empty = App::new();
        empty.update(Snapshot::default());
        let lines = screen(&empty);
        line_with(&lines, "Actors 0/0");
        line_with(&lines, "no actors");
        line_with(&lines, "no supervisors");
        line_with(&lines, "no versions loaded");
        line_with(&lines, "nothing yet");
        let mut full = App::new();
        full.update(snapshot(10.0, [1, 2, 3]));
        for app in [&fresh, &empty, &full] {
            for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 24), (79, 23), (300, 100)] {
                render(app, w, h);
            }
        }
    }

    #[test]
    fn fits_80x24() {
        let mut app = App::new();
        let mut snap = snapshot(10.0, [1, 2, 3]);
        snap.actors[0].name = Some("payment_api".to_string());
        snap.actors[0].behaviour = "payment_api".to_string();
        snap.actors[0].handled = 1_234_567;
        snap.actors[0].restarts = 12;
        app.update(snap);
        let lines = screen(&app);
        for pane in [
            "Actors",
            "Supervision tree",
            "Versions",
            "Last reloads and crashes",
        ] {
            line_with(&lines, pane);
        }
        let (_, row) = line_with(&lines, "payment_api");
        assert_eq!(row.matches("payment_api").count(), 2, "{row}");
        for cell in ["1.0.0", "running", "1234567", " 12"] {
            assert!(row.contains(cell), "{cell:?} missing in {row:?}");
        }
        let (_, footer) = line_with(&lines, "q quit");
        assert!(footer.contains("s sort by rate"), "footer cut: {footer:?}");
        assert_eq!(lines[23], footer);
    }

    #[test]
    fn ten_thousand_actors() {
        let mut app = App::new();
        let mut snap = snapshot(10.0, [1, 2, 3]);
        snap.actors = (0..10_000)
            .map(|i| {
                actor(
                    i,
                    &format!("w{i}"),
                    "worker",
                    (i * 7919 % 10_000) as usize,
                    i,
                )
            })
            .collect();
        snap.stats.actors = 10_000;
        app.update(snap.clone());
        let lines = screen(&app);
        line_with(&lines, "Actors 10000/10000");
        // The longest mailbox (9999) comes first.
        let (first, _) = line_with(&lines, " 9999 ");
        let (second, _) = line_with(&lines, " 9998 ");
        assert!(first < second);
        press(&mut app, KeyCode::End);
        let lines = screen(&app);
        let last = marked(&lines);
        assert!(last.contains(" w0 "), "{last}");
        press(&mut app, KeyCode::PageUp);
        press(&mut app, KeyCode::Home);
        let lines = screen(&app);
        assert!(marked(&lines).contains(" 9999 "));
        // PageDown moves by the rows the table shows.
        press(&mut app, KeyCode::PageDown);
        let page = app.pages.get()[0];
        assert!(page > 1);
        assert_eq!(app.selected[0], page);
        render(&app, 300, 100);
        app.update(snap);
        render(&app, 80, 24);
    }

    #[test]
    fn selection_moves_and_follows_the_actor() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        assert_eq!(selected_name(&screen(&app)), "beta");
        assert!(press(&mut app, KeyCode::Down));
        assert_eq!(selected_name(&screen(&app)), "gamma");
        assert!(press(&mut app, KeyCode::Char('j')));
        assert_eq!(selected_name(&screen(&app)), "alpha");
        // Clamped at the end.
        assert!(press(&mut app, KeyCode::Char('j')));
        assert_eq!(selected_name(&screen(&app)), "alpha");
        assert!(press(&mut app, KeyCode::Char('k')));
        assert!(press(&mut app, KeyCode::Up));
        assert_eq!(selected_name(&screen(&app)), "beta");
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected_actor(), Some(3));

        // gamma's mailbox grows: it moves to the top, and stays selected.
        let mut snap = snapshot(11.0, [1, 2, 3]);
        snap.actors[2].mailbox = 50;
        app.update(snap);
        let lines = screen(&app);
        assert_eq!(
            actor_order(&lines, &["alpha", "beta", "gamma"]),
            ["gamma", "beta", "alpha"]
        );
        assert_eq!(selected_name(&lines), "gamma");
        assert_eq!(app.selected_actor(), Some(3));

        // gamma is gone: the selection stays on its row.
        let mut snap = snapshot(12.0, [1, 2, 3]);
        snap.actors.remove(2);
        app.update(snap);
        assert_eq!(selected_name(&screen(&app)), "beta");
    }

    #[test]
    fn tab_cycles_focus_and_moves_in_the_focused_pane() {
        let mut app = App::new();
        app.update(snapshot(10.0, [1, 2, 3]));
        assert_eq!(app.focus(), Pane::Actors);
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus(), Pane::Tree);
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        let lines = screen(&app);
        assert!(marked(&lines).contains("├─ pay_sup"));
        // Only the focused pane marks its selection; the actor selection did not move.
        for name in [" alpha ", " beta ", " gamma "] {
            assert!(!line_with(&lines, name).1.contains('>'));
        }
        assert_eq!(app.selected_actor(), Some(2));
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus(), Pane::Versions);
        press(&mut app, KeyCode::End);
        assert!(line_with(&screen(&app), "counter@1.0.0").1.contains('>'));
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus(), Pane::Recent);
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus(), Pane::Actors);
        press(&mut app, KeyCode::BackTab);
        assert_eq!(app.focus(), Pane::Recent);
        // `/` brings the focus back to the actors.
        press(&mut app, KeyCode::Char('/'));
        assert_eq!(app.focus(), Pane::Actors);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_clock(86_400 + 3_600 + 61), "01:01:01");
        assert_eq!(fmt_uptime(59.9), "00:00:59");
        assert_eq!(fmt_rate(0.25), "0.2");
        assert_eq!(fmt_rate(123_456.0), "123k");
        assert_eq!(fmt_count(12_345_678), "12.3M");
        assert_eq!(fmt_count(4_500_000_000), "4.5G");
    }
}
