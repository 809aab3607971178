//! The view's state: what it shows (the last snapshot, rates, the filtered and sorted
//! actors, the flattened tree) and where the user is in it (focus, selection, sort,
//! filter). Keys change it here; `draw` renders it.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::DEFAULT_PAGE;
use crate::observe::model::{ActorInfo, Snapshot, TreeNode};
use crate::util::ids::ActorId;

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

    pub(super) fn index(self) -> usize {
        self as usize
    }

    pub(super) fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % Pane::ALL.len()]
    }

    pub(super) fn prev(self) -> Pane {
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
    pub(super) fn name(self) -> &'static str {
        match self {
            SortKey::Mailbox => "mailbox",
            SortKey::Rate => "rate",
        }
    }

    pub(super) fn other(self) -> SortKey {
        match self {
            SortKey::Mailbox => SortKey::Rate,
            SortKey::Rate => SortKey::Mailbox,
        }
    }
}

/// One line of the flattened supervision tree.
#[derive(Debug, Clone)]
pub(super) struct TreeRow {
    /// Box-drawing indentation, e.g. `│  ├─ `.
    pub(super) prefix: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) detail: String,
    pub(super) status: String,
    pub(super) restarts: u64,
}

/// The state of the view: what it shows and where the user is in it.
///
/// Feed it with [`App::update`] and [`App::error`], steer it with [`App::on_key`], and
/// draw it with [`App::draw`].
#[derive(Debug)]
pub struct App {
    /// The last snapshot received, kept while fetches fail.
    pub(super) snapshot: Option<Snapshot>,
    /// The last fetch error, cleared by the next snapshot.
    pub(super) error: Option<String>,
    /// When the last snapshot arrived.
    pub(super) updated: Option<Instant>,
    pub(super) focus: Pane,
    pub(super) sort: SortKey,
    /// Filter on actor names and behaviours, lower case matching.
    pub(super) filter: String,
    /// Whether keys are being typed into the filter.
    pub(super) filtering: bool,
    /// Selected row per pane, indexed by [`Pane::index`].
    pub(super) selected: [usize; 4],
    /// The selected actor, followed across refreshes, sorts and filters.
    pub(super) selected_actor: Option<ActorId>,
    /// Messages per second per actor id, from the last two snapshots.
    pub(super) rates: HashMap<ActorId, f64>,
    /// Uptime and `handled` per actor of the previous snapshot, to compute rates.
    pub(super) baseline: Option<(f64, HashMap<ActorId, u64>)>,
    /// Indices into the snapshot's actors: filtered, then sorted.
    pub(super) view: Vec<usize>,
    /// The supervision tree, flattened.
    pub(super) tree: Vec<TreeRow>,
    /// First row shown per pane; updated by [`App::draw`] to keep the selection visible.
    pub(super) offsets: Cell<[usize; 4]>,
    /// Rows shown per pane at the last draw, for PageUp/PageDown.
    pub(super) pages: Cell<[usize; 4]>,
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
        let handled: HashMap<ActorId, u64> =
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
    pub fn selected_actor(&self) -> Option<ActorId> {
        self.selected_actor
    }

    /// Messages per second of an actor between the last two snapshots, if it was in
    /// both.
    pub fn rate(&self, actor: ActorId) -> Option<f64> {
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

    pub(super) fn pane_len(&self, pane: Pane) -> usize {
        let snapshot = self.snapshot.as_ref();
        match pane {
            Pane::Actors => self.view.len(),
            Pane::Tree => self.tree.len(),
            Pane::Versions => snapshot.map_or(0, |s| s.versions.len()),
            Pane::Recent => snapshot.map_or(0, |s| s.recent.len()),
        }
    }

    /// The actor on row `row` of the table.
    pub(super) fn actor_at(&self, row: usize) -> Option<&ActorInfo> {
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
