//! The view, driven with a `TestBackend`: no terminal.

use super::format::*;
use super::*;
use crate::observe::model::Stats;
use crate::observe::model::{ActorInfo, RecentEvent, Snapshot, TreeNode, VersionRow};
use crate::util::ids::ActorId;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

fn actor(id: u64, name: &str, behaviour: &str, mailbox: usize, handled: u64) -> ActorInfo {
    ActorInfo {
        id: ActorId(id),
        name: Some(name.to_string()),
        behaviour: behaviour.to_string(),
        version: "1.0.0".to_string(),
        status: "running".to_string(),
        mailbox,
        handled,
        restarts: 0,
    }
}

fn node(name: &str, kind: &str, detail: &str, restarts: u64, children: Vec<TreeNode>) -> TreeNode {
    TreeNode {
        name: name.to_string(),
        kind: kind.to_string(),
        detail: detail.to_string(),
        actor: ActorId(1),
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
        nodes: vec![],
    }
}

#[test]
fn the_header_shows_the_cluster_when_distributed() {
    let mut app = App::new();
    let mut s = snapshot(10.0, [1, 2, 3]);
    s.nodes = vec![crate::observe::model::NodeRow {
        node: "e@127.0.0.1".into(),
        direction: "in".into(),
        hidden: false,
        up_secs: 125,
        msgs_in: 40,
        msgs_out: 38,
        bytes_in: 0,
        bytes_out: 0,
        queue: 0,
    }];
    app.update(s);
    let screen = render(&app, 160, 30).join("\n");
    assert!(
        screen.contains("nodes e@127.0.0.1 in 00:02:05 40/38 msgs"),
        "{screen}"
    );
    // Not distributed: no nodes line.
    let mut plain = App::new();
    plain.update(snapshot(10.0, [1, 2, 3]));
    assert!(!render(&plain, 160, 30).join("\n").contains("nodes "));
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
    assert_eq!(app.rate(ActorId(1)), Some(50.0));
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
    assert_eq!(app.selected_actor(), Some(ActorId(3)));

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
    assert_eq!(app.selected_actor(), Some(ActorId(3)));

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
    assert_eq!(app.selected_actor(), Some(ActorId(2)));
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
