//! Drawing: the App into any ratatui `Frame` — the header, the status line, the four
//! panes and the footer — laid out for the terminal's size.

use std::ops::Range;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::app::{App, Pane, SortKey};
use super::format::{fmt_clock, fmt_count, fmt_rate, fmt_uptime};
use super::WIDE;
use crate::observe::model::{ActorInfo, RecentEvent, VersionRow};

impl App {
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
        // The cluster, when distributed: each peer with its direction and traffic.
        let mut cluster = Vec::new();
        if !snapshot.nodes.is_empty() {
            cluster.push(Span::raw("nodes"));
            for n in &snapshot.nodes {
                cluster.push(Span::raw(" "));
                cluster.push(value(n.node.clone()));
                cluster.push(Span::raw(format!(
                    " {} {} {}/{} msgs",
                    n.direction,
                    fmt_uptime(n.up_secs as f64),
                    n.msgs_in,
                    n.msgs_out
                )));
            }
        }
        let width = width as usize;
        let mut lines: Vec<Vec<Span<'static>>> = Vec::new();
        for group in [load, util, reloads, cluster] {
            if group.is_empty() {
                continue;
            }
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
                    a.id.0.to_string(),
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
