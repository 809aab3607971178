//! `host top` once through a real terminal: tmux runs it against a real host, the pane
//! shows the actors, the supervision tree and the versions, keys work, and `q` quits.
//! (The view's behaviour in detail is tested with ratatui's test backend in the host
//! crate.)

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::process::{ctl, HostProcess, TWO_WORKERS};
use e2e::{build, host_bin, Variant};

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux").args(args).output().expect("tmux runs")
}

fn pane(session: &str) -> String {
    String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", session]).stdout).into_owned()
}

/// Waits until the pane shows everything in `needles`.
fn wait_pane(session: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = pane(session);
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the pane never showed {needles:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn top_runs_in_a_real_terminal_and_quits_on_q() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is needed for this test (.ci/run installs it)");
    }
    let h = HostProcess::start(TWO_WORKERS);
    // Something to show in the "last reloads and crashes" pane.
    let v2 = build(&Variant::of("v2"));
    let out = ctl(&h.socket, &["reload", "tp", v2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let session = format!("top{}", std::process::id());
    let cmd = format!(
        "{} top --socket {}",
        host_bin().display(),
        h.socket.display()
    );
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    assert!(started.status.success(), "{started:?}");
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = tmux(&["kill-session", "-t", &self.0]);
        }
    }
    let _kill = Kill(session.clone());

    // Actors, the tree, the new version, the reload with its outcome.
    wait_pane(&session, &["tp", "root", "tp@2", "tp 1 -> 2", "ok"]);

    // Keys: sort, move, filter; the view keeps running and refreshing.
    for keys in [&["s"][..], &["Down"], &["/", "s", "Enter"], &["Tab"]] {
        let mut args = vec!["send-keys", "-t", session.as_str()];
        args.extend_from_slice(keys);
        tmux(&args);
    }
    wait_pane(&session, &["root"]);

    tmux(&["send-keys", "-t", &session, "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux(&["has-session", "-t", &session]).status.success() {
        assert!(
            Instant::now() < deadline,
            "top did not quit on q:\n{}",
            pane(&session)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
