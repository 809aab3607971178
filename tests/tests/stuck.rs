//! A stuck or slow callback never freezes anything but its own actor (issue 15), with the
//! real `host` binary and the test plugin's stuck callbacks: `{sleep, Ms}` and `spin` in
//! `handle_info`, `v2_hang`'s `code_change`, `{sleep, Ms}` init args. Every wait is
//! bounded, and every host is stopped by its pid.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::{build, host_bin, PluginDir, Variant};

const BASE: &str = r#"plugin_dirs = ["."]
threads = 2
log_format = "json"

[watch]
enabled = false

[control]
socket = "host.sock"
"#;

/// A `host` process with its JSON log collected (or its stderr left unread).
struct Proc {
    child: Child,
    dir: PluginDir,
    socket: PathBuf,
    /// Where the host's private copies go (its `TMPDIR`).
    tmp: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Option<std::process::ChildStderr>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the host with `BASE` + `config` and `args`; reads its log unless `read_log` is
/// false. Waits (bounded) until its socket answers.
fn start(config: &str, args: &[&str], read_log: bool) -> Proc {
    start_with(config, args, read_log, &[])
}

/// [`start`], with more libraries in the plugin directory: (file name, artifact).
fn start_with(config: &str, args: &[&str], read_log: bool, libs: &[(&str, PathBuf)]) -> Proc {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    for (name, artifact) in libs {
        std::fs::copy(artifact, dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join("host.toml"), format!("{BASE}{config}")).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = Command::new(host_bin())
        .current_dir(dir.path())
        .args(["--config", "host.toml"])
        .args(args)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("host starts");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = child.stderr.take();
    if read_log {
        let (out, err) = (lines.clone(), stderr.take().unwrap());
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                out.lock().unwrap().push(l);
            }
        });
    }
    let socket = dir.path().join("host.sock");
    let p = Proc {
        child,
        dir,
        socket,
        tmp,
        lines,
        stderr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctl(&p, &["list"], Duration::from_secs(10)).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "the host never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

/// Runs `host ctl` against `p`, killed (and the test failed) past `limit`.
fn ctl(p: &Proc, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(host_bin())
        .arg("ctl")
        .arg("--socket")
        .arg(&p.socket)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run host ctl");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("host ctl {args:?} did not answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits for a log line satisfying `pred`.
fn wait_line(p: &Proc, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = p.lines.lock().unwrap().iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the process to exit; its status code.
fn wait_exit(p: &mut Proc, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            return Some(s.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(p.child.id().to_string())
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig}");
}

fn actors(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\n[[actors]]\nbehaviour = \"tp\"\nname = \"{n}\"\n"))
        .collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_stuck_callback_fails_only_its_own_swap_and_the_operator_always_gets_an_answer() {
    let config = format!(
        "[reload]\nsuspend_timeout_ms = 1500\n\n[watchdog]\nwarn_after_ms = 300\nkill_after_ms = 0\n{}\n\
         [supervisor]\nname = \"root\"\nstrategy = \"one_for_one\"\nintensity = 5\n\n\
         [[supervisor.children]]\nbehaviour = \"tq\"\nname = \"w\"\n",
        actors(&["a", "b", "c"])
    );
    // `w` runs `tq`, from another library (`v2_renamed` exports the behaviour as `tq`).
    let tq = build(&Variant::of("v2_renamed"));
    // Two scheduler threads stay stuck (in `a` and `c`); two more serve everyone else.
    let p = start_with(
        &config,
        &["--run-for", "120", "--threads", "4"],
        true,
        &[("libtq.so", tq)],
    );
    let v2 = build(&Variant::of("v2"));
    let quick = Duration::from_secs(5);
    // `a` sleeps, `c` loops for ever.
    assert!(ctl(&p, &["send", "a", "{sleep, 60000}"], quick)
        .status
        .success());
    assert!(ctl(&p, &["send", "c", "spin"], quick).status.success());
    std::thread::sleep(Duration::from_millis(500));

    // The operator's views answer, and show what runs.
    let started = Instant::now();
    let list = ctl(&p, &["list"], quick);
    assert!(list.status.success(), "{}", text(&list));
    let list = text(&list);
    assert!(
        list.lines()
            .any(|l| l.contains(" a ") && l.contains("running handle_info")),
        "{list}"
    );
    for args in [
        &["versions"][..],
        &["tree"],
        &["stats"],
        &["--json", "list"],
    ] {
        let o = ctl(&p, args, quick);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    let state = ctl(&p, &["state", "a"], quick);
    assert_eq!(state.status.code(), Some(1), "{}", text(&state));
    assert!(text(&state).contains("busy"), "{}", text(&state));
    let state_b = ctl(&p, &["state", "b"], quick);
    assert!(state_b.status.success(), "{}", text(&state_b));
    assert!(started.elapsed() < Duration::from_secs(15));
    let long = wait_line(&p, quick, |l| {
        l.contains(r#""event":"long_callback""#) && l.contains(r#""name":"a""#)
    })
    .expect("long_callback logged for a");
    assert!(long.contains(r#""callback":"handle_info""#), "{long}");

    // A reload waits for `a` at most its suspend deadline and rolls back, naming it;
    // meanwhile a restart of a crashed child is not held up.
    let socket = p.socket.clone();
    let v2s = path_str(&v2);
    let reload = std::thread::spawn(move || {
        Command::new(host_bin())
            .args(["ctl", "--socket"])
            .arg(&socket)
            .args(["reload", "tp", &v2s])
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    let crashed_at = Instant::now();
    assert!(ctl(&p, &["cast", "w", "panic"], quick).status.success());
    let restarts = || {
        p.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(r#""event":"child_started""#) && l.contains(r#""child":"w""#))
            .count()
    };
    let deadline = Instant::now() + quick;
    while restarts() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(restarts(), 2, "w restarted while the swap waited");
    assert!(
        crashed_at.elapsed() < Duration::from_millis(1200),
        "the restart waited for the swap: {:?}",
        crashed_at.elapsed()
    );
    let out = reload.join().unwrap();
    let out = text(&out);
    assert!(
        out.contains("rolled_back") || out.contains("rolled back"),
        "{out}"
    );
    assert!(
        out.contains("did not reach a message boundary") && out.contains("(a, tp)"),
        "{out}"
    );
    // Everything else of the behaviour resumed, on the old version.
    let get = ctl(&p, &["call", "b", "get"], quick);
    assert!(text(&get).contains("<<\"1\">>"), "{}", text(&get));
    let get = ctl(&p, &["call", "w", "get"], quick);
    assert!(get.status.success(), "{}", text(&get));
}

#[test]
fn a_code_change_that_never_returns_rolls_back_and_the_next_reload_goes_through() {
    let config = format!(
        "[reload]\ncode_change_timeout_ms = 1000\n{}",
        actors(&["a", "b"])
    );
    let p = start(&config, &["--run-for", "120"], true);
    let quick = Duration::from_secs(5);
    let hang = build(&Variant::of("v2_hang"));
    let v2 = build(&Variant::of("v2"));
    let started = Instant::now();
    let out = ctl(
        &p,
        &["reload", "tp", &path_str(&hang)],
        Duration::from_secs(10),
    );
    let out = text(&out);
    assert!(out.contains("did not return within 1000 ms"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(8));
    for who in ["a", "b"] {
        let get = ctl(&p, &["call", who, "get"], quick);
        assert!(text(&get).contains("<<\"1\">>"), "{}", text(&get));
    }
    // The abandoned code_change holds nothing: the next reload of the library is served.
    let out = ctl(
        &p,
        &["reload", "tp", &path_str(&v2)],
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", text(&out));
    let get = ctl(&p, &["call", "a", "get"], quick);
    assert!(text(&get).contains("<<\"2\">>"), "{}", text(&get));
}

#[test]
fn a_kill_kills_a_busy_child_and_one_for_all_restarts_both_under_their_names() {
    let config = "[supervisor]\nname = \"root\"\nstrategy = \"one_for_all\"\nintensity = 5\n\n\
         [[supervisor.children]]\nbehaviour = \"tp\"\nname = \"sleeper\"\nshutdown = 300\n\n\
         [[supervisor.children]]\nbehaviour = \"tp\"\nname = \"crasher\"\n";
    let mut p = start(config, &["--run-for", "120"], true);
    let quick = Duration::from_secs(5);
    assert!(ctl(&p, &["send", "sleeper", "{sleep, 20000}"], quick)
        .status
        .success());
    std::thread::sleep(Duration::from_millis(200));
    assert!(ctl(&p, &["cast", "crasher", "panic"], quick)
        .status
        .success());
    let terminated = wait_line(&p, quick, |l| {
        l.contains(r#""event":"child_terminated""#) && l.contains(r#""child":"sleeper""#)
    })
    .expect("sleeper terminated");
    assert!(terminated.contains("killed"), "{terminated}");
    wait_line(&p, quick, |l| l.contains(r#""event":"worker_replaced""#))
        .expect("the sleeper's scheduler thread was replaced");
    // Both restarted under their names: the sleeper's name was free at once.
    for who in ["sleeper", "crasher"] {
        let get = ctl(&p, &["call", who, "get"], quick);
        assert!(get.status.success(), "{who}: {}", text(&get));
    }
    let log = p.lines.lock().unwrap().join("\n");
    assert!(!log.contains("supervisor_gave_up"), "{log}");
    assert!(!log.contains("already_started"), "{log}");
    assert_eq!(
        wait_exit(&mut p, Duration::from_millis(100)),
        None,
        "host alive"
    );
    // Capacity kept: both scheduler threads serve while the abandoned one sleeps.
    let list = ctl(&p, &["list"], quick);
    assert!(list.status.success());
}

#[test]
fn the_watchdog_logs_a_long_callback_and_kills_past_its_limit() {
    let config = "[watchdog]\nwarn_after_ms = 200\nkill_after_ms = 1500\n\n\
         [supervisor]\nname = \"root\"\nstrategy = \"one_for_one\"\nintensity = 5\n\n\
         [[supervisor.children]]\nbehaviour = \"tp\"\nname = \"spinner\"\n";
    let p = start(config, &["--run-for", "120"], true);
    let quick = Duration::from_secs(5);
    assert!(ctl(&p, &["send", "spinner", "spin"], quick)
        .status
        .success());
    wait_line(&p, quick, |l| {
        l.contains(r#""event":"long_callback""#) && l.contains(r#""name":"spinner""#)
    })
    .expect("long_callback");
    let exited = wait_line(&p, quick, |l| {
        l.contains(r#""event":"child_exited""#) && l.contains(r#""child":"spinner""#)
    })
    .expect("spinner killed");
    assert!(exited.contains("watchdog"), "{exited}");
    let get = ctl(&p, &["call", "spinner", "get"], quick);
    assert!(get.status.success(), "restarted: {}", text(&get));
    // A slow callback that does return: the watchdog warns while it runs, and when it
    // returns the log names the message it was handling.
    assert!(ctl(&p, &["send", "spinner", "{sleep, 600}"], quick)
        .status
        .success());
    let done = wait_line(&p, quick, |l| l.contains(r#""event":"long_callback_done""#))
        .expect("long_callback_done");
    assert!(done.contains(r#""message":"{sleep,600}""#), "{done}");
    assert!(done.contains(r#""callback":"handle_info""#), "{done}");
}

#[test]
fn an_init_that_hangs_fails_its_start_at_the_deadline_and_restarts_go_on() {
    let config = format!(
        "{}\n[supervisor]\nname = \"root\"\nstrategy = \"one_for_one\"\nintensity = 5\n\n\
         [[supervisor.children]]\nbehaviour = \"tp\"\nname = \"w\"\n\n\
         [[supervisor.children]]\nname = \"pool\"\nstrategy = \"simple_one_for_one\"\n\
         children = [{{ behaviour = \"tp\", start_timeout_ms = 500 }}]\n",
        actors(&["a"])
    );
    let p = start(&config, &["--run-for", "120", "--threads", "3"], true);
    let quick = Duration::from_secs(5);
    // A pool child whose init sleeps a minute, then a crash in the other subtree.
    let o = ctl(
        &p,
        &[
            "call",
            "a",
            "{start_child_with, <<\"pool\">>, {sleep, 60000}}",
        ],
        quick,
    );
    assert!(o.status.success(), "{}", text(&o));
    std::thread::sleep(Duration::from_millis(100));
    let crashed = Instant::now();
    assert!(ctl(&p, &["cast", "w", "panic"], quick).status.success());
    let deadline = Instant::now() + quick;
    let restarted = || {
        p.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(r#""event":"child_started""#) && l.contains(r#""child":"w""#))
            .count()
            >= 2
    };
    while !restarted() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(restarted(), "w restarted");
    assert!(
        crashed.elapsed() < Duration::from_millis(2500),
        "the restart waited {:?} for the hanging init",
        crashed.elapsed()
    );
    // The requester hears why the start failed, at the pool's deadline (the restart of
    // `w`, on its own supervisor's thread, may well come before it).
    let deadline = Instant::now() + quick;
    let inbox = loop {
        let inbox = text(&ctl(&p, &["call", "a", "inbox"], quick));
        if inbox.contains("start deadline") || Instant::now() >= deadline {
            break inbox;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(inbox.contains("start deadline"), "{inbox}");
    let get = ctl(&p, &["call", "w", "get"], quick);
    assert!(get.status.success(), "{}", text(&get));
}

#[test]
fn sigterm_and_sigint_stop_the_host_in_order() {
    for sig in ["TERM", "INT"] {
        let config = format!(
            "{}\n[supervisor]\nname = \"root\"\nstrategy = \"one_for_one\"\n\n\
             [[supervisor.children]]\nbehaviour = \"tp\"\nname = \"w\"\n",
            actors(&["u"])
        );
        let mut p = start(&config, &[], true);
        let quick = Duration::from_secs(5);
        let marks: Vec<PathBuf> = ["u", "w"]
            .iter()
            .map(|who| {
                let mark = p.dir.path().join(format!("{who}.terminated"));
                let term = format!("{{mark_terminate, <<\"{}\">>}}", mark.display());
                let o = ctl(&p, &["call", who, &term], quick);
                assert!(o.status.success(), "{}", text(&o));
                mark
            })
            .collect();
        assert!(
            std::fs::read_dir(&p.tmp).unwrap().next().is_some(),
            "the private copies live in TMPDIR"
        );
        signal(&p, sig);
        let status = wait_exit(&mut p, Duration::from_secs(15));
        assert_eq!(status, Some(0), "SIG{sig}: exit status");
        for m in &marks {
            let reason = std::fs::read_to_string(m).unwrap_or_else(|_| panic!("{m:?}"));
            assert!(reason.contains("Shutdown"), "{reason}");
        }
        assert!(!p.socket.exists(), "SIG{sig}: socket removed");
        assert!(
            std::fs::read_dir(&p.tmp).unwrap().next().is_none(),
            "SIG{sig}: private copies removed"
        );
        let stopped = wait_line(&p, quick, |l| l.contains(r#""event":"host_stopped""#))
            .expect("host_stopped");
        assert!(stopped.contains(&format!("SIG{sig}")), "{stopped}");
    }
}

#[test]
fn run_for_never_hangs_on_a_stuck_actor() {
    let config = format!("[shutdown]\ntimeout_ms = 1000\n{}", actors(&["a"]));
    let mut p = start(&config, &["--run-for", "2"], true);
    assert!(ctl(&p, &["send", "a", "spin"], Duration::from_secs(5))
        .status
        .success());
    let status = wait_exit(&mut p, Duration::from_secs(10));
    assert_eq!(status, Some(1), "exits, non-zero, past its deadline");
    let stopped = wait_line(&p, Duration::from_secs(5), |l| {
        l.contains(r#""event":"host_stopped""#)
    })
    .expect("host_stopped");
    assert!(
        stopped.contains("(a, tp)"),
        "names the stuck actor: {stopped}"
    );
    assert!(!p.socket.exists());
}

#[test]
fn a_stalled_log_pipe_never_blocks_an_actor() {
    let mut p = start(&actors(&["a", "b"]), &["--run-for", "120"], false);
    // Nobody reads the host's stderr: the pipe fills after ~64 KiB.
    let o = ctl(
        &p,
        &["call", "a", "{log, 100000}", "--timeout", "20000"],
        Duration::from_secs(25),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = ctl(&p, &["call", "b", "get"], Duration::from_secs(5));
    assert!(o.status.success(), "{}", text(&o));
    // Reading again: the writer catches up and says how many lines it dropped.
    let mut err = p.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut seen = Vec::new();
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("log_lines_dropped") {
                let _ = tx.send(());
                return;
            }
            if seen.len() > 1 << 24 {
                seen.drain(..seen.len() - 4096);
            }
        }
    });
    // One more line makes the writer look at its queue again.
    let _ = ctl(&p, &["call", "b", "{log, 1}"], Duration::from_secs(5));
    assert!(
        rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "log_lines_dropped reported"
    );
    assert_eq!(wait_exit(&mut p, Duration::from_millis(10)), None);
}
