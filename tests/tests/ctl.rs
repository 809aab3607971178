//! `host ctl` against a real `host` process over its real socket: every subcommand, the
//! error paths, the socket's permission rules, and a reload and a rollback driven by
//! `ctl` that migrate state both ways while a sender keeps sending.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::process::{ctl, HostProcess, TWO_WORKERS};
use e2e::{build, host_bin, Variant};

fn start() -> HostProcess {
    HostProcess::start(TWO_WORKERS)
}

/// Runs `host ctl`, expects success, returns stdout.
fn ok(r: &HostProcess, args: &[&str]) -> String {
    let out = ctl(&r.socket, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "host ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `host ctl`, expects failure with `code`, returns its one-line error.
fn fails(r: &HostProcess, args: &[&str], code: i32) -> String {
    let out = ctl(&r.socket, args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "host ctl {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn every_subcommand_answers_and_errors_are_one_line_with_a_status() {
    let r = start();
    // list, as a table and as JSON.
    let table = ok(&r, &["list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.lines().any(|l| l.contains(" a ") && l.contains("tp")),
        "{table}"
    );
    let list: serde_json::Value = serde_json::from_str(&ok(&r, &["list", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "s"]);

    // send, cast and call, terms in Erlang syntax.
    assert_eq!(ok(&r, &["send", "a", "bump"]).trim(), "ok");
    let reply = ok(&r, &["call", "a", "get"]);
    assert_eq!(
        reply.trim(),
        "{count,<<\"1\">>,1}",
        "the message arrived first"
    );
    assert_eq!(ok(&r, &["cast", "a", "{incr, 4}"]).trim(), "ok");
    let reply = ok(&r, &["call", "a", "get"]);
    assert_eq!(reply.trim(), "{count,<<\"1\">>,5}", "handle_cast got it");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&r, &["--json", "call", "a", "get"])).unwrap();
    assert!(json["reply"].as_str().unwrap().contains("count"));

    // state, exported through the version.
    let state = ok(&r, &["state", "a"]);
    assert!(state.contains("count => 5"), "{state}");

    // versions, tree, stats.
    let versions = ok(&r, &["versions"]);
    assert!(
        versions.contains("tp@1") && versions.contains("current"),
        "{versions}"
    );
    let tree = ok(&r, &["tree"]);
    assert!(tree.starts_with("root (supervisor one_for_one)"), "{tree}");
    assert!(
        tree.contains("├─ a (worker tp)") && tree.contains("└─ s (worker tp)"),
        "{tree}"
    );
    let stats: serde_json::Value = serde_json::from_str(&ok(&r, &["stats", "--json"])).unwrap();
    assert_eq!(stats["actors"], 2);
    assert!(stats["messages"].as_u64().unwrap() >= 2);
    assert_eq!(stats["utilisation"].as_array().unwrap().len(), 2);

    // Errors: a malformed term names its position (status 2, host not contacted); an
    // unknown name, a timeout, an unknown behaviour: status 1.
    let e = fails(&r, &["call", "a", "{get"], 2);
    assert!(e.contains("malformed term") && e.contains("1:5"), "{e}");
    let e = fails(&r, &["send", "nobody", "hello"], 1);
    assert!(e.contains("nobody"), "{e}");
    let e = fails(&r, &["call", "a", "{later, 2000}", "--timeout", "100"], 1);
    assert!(e.contains("timeout"), "{e}");
    let e = fails(&r, &["state", "ghost"], 1);
    assert!(e.contains("ghost"), "{e}");
    let e = fails(&r, &["reload", "nope"], 1);
    assert!(e.contains("nope"), "{e}");
    let e = fails(&r, &["rollback", "tp"], 1);
    assert!(e.contains("no earlier version"), "{e}");
    let e = fails(&r, &["reload", "tp", "/nonexistent/libtp.so"], 2);
    assert!(e.contains("/nonexistent/libtp.so"), "{e}");

    // The host is unaffected by all that.
    assert!(ok(&r, &["call", "a", "get"]).contains("count"));

    // A host that is not running: one line, status 1.
    let gone = r.dir.path().join("nobody-here.sock");
    let out = ctl(&gone, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no host is listening"), "{err}");
}

/// `ctl state` of a large state (issue 10: 30 MB peaked at 1.8 GB in the host): the host
/// streams the printed term and the client prints it as it arrives. Whatever the pieces,
/// the output is the whole term, exactly — as text, as `--json`, and as the protocol's one
/// JSON line that any client reads whole.
#[test]
fn a_large_state_streams_whole_and_exact_as_text_and_json() {
    let r = start();
    let n = 300_000;
    assert_eq!(
        ok(&r, &["call", "a", &format!("{{ballast, {n}}}")]).trim(),
        "done"
    );
    let mut ballast = String::from("[");
    for i in 0..n {
        if i > 0 {
            ballast.push(',');
        }
        ballast.push_str(&format!("{{{i},<<\"item \\\"{i}\\\"\\n\">>}}"));
    }
    ballast.push(']');
    assert!(ballast.len() > 7_000_000, "{} bytes", ballast.len());

    // Text: the state's map, its last field `faults` ending in the ballast.
    let text = ok(&r, &["state", "a"]);
    assert!(text.starts_with("#{count => "), "{}", &text[..80]);
    let at = text.find("ballast => ").expect("the ballast field");
    assert!(
        text[at + "ballast => ".len()..] == format!("{ballast}}}}}\n"),
        "the ballast, whole and exact ({} bytes printed from it, {} expected)",
        text.len() - at - "ballast => ".len(),
        ballast.len() + 3
    );

    // `--json`: exactly what serde_json's pretty printer writes for {"state": TEXT}.
    let json = ok(&r, &["--json", "state", "a"]);
    let state = text.strip_suffix('\n').unwrap();
    let want = serde_json::to_string_pretty(&serde_json::json!({ "state": state })).unwrap();
    assert!(json == want + "\n", "--json output differs");

    // The protocol's line, read whole by the library's client.
    let v = host::control::client::request(
        &r.socket,
        &host::control::protocol::Request::State { to: "a".into() },
        Duration::from_secs(60),
    )
    .expect("state over the protocol");
    assert!(v.as_str() == Some(state), "the protocol's line differs");

    // And the actor carries on.
    assert!(ok(&r, &["call", "a", "get"]).contains("count"));
}

#[test]
fn trace_follows_messages_in_and_out_until_interrupted() {
    let r = start();
    let mut tracer = Command::new(host_bin())
        .args(["ctl", "--socket"])
        .arg(&r.socket)
        .args(["trace", "a"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tracer.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // The trace starts asynchronously: keep poking until lines arrive.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    while Instant::now() < deadline && lines.len() < 2 {
        ok(&r, &["call", "a", "get"]);
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("<- call") && l.contains("get")),
        "incoming call traced: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("-> reply") && l.contains("count")),
        "outgoing reply traced: {lines:?}"
    );
    tracer.kill().unwrap();
    tracer.wait().unwrap();
    // The host is fine after the tracer went away, and stops tracing.
    for _ in 0..3 {
        ok(&r, &["call", "a", "get"]);
    }
}

#[test]
fn reload_and_rollback_through_ctl_migrate_state_both_ways_while_a_sender_sends() {
    let r = start();
    let v2 = build(&Variant::of("v2"));
    // `s` streams {seq, 0..N} casts to `a`, from inside the host, across both swaps.
    const N: u64 = 4000;
    let total = N.to_string();
    ok(
        &r,
        &[
            "call",
            "s",
            &format!("{{stream, <<\"a\">>, 4, 200, {total}}}"),
        ],
    );

    let up = ok(&r, &["reload", "tp", v2.to_str().unwrap()]);
    assert!(up.contains("tp 1 -> 2: ok"), "{up}");
    assert!(up.contains("(2 actors"), "{up}");
    let mid = ok(&r, &["call", "a", "get"]);
    assert!(
        mid.contains("<<\"2\">>") || mid.contains("\"2\""),
        "version 2 answers: {mid}"
    );
    let versions = ok(&r, &["versions"]);
    assert!(
        versions.contains("tp@2") && versions.contains("retired"),
        "{versions}"
    );

    let down = ok(&r, &["rollback", "tp"]);
    assert!(down.contains("tp 2 -> 1: ok"), "{down}");
    let state = ok(&r, &["state", "a"]);
    assert!(
        state.contains("count =>"),
        "version 1's state shape again: {state}"
    );

    // Wait for the stream to finish, then check every message arrived once, in order.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pos = ok(&r, &["call", "s", "stream_pos"]);
        if pos.contains(&total) {
            break;
        }
        assert!(Instant::now() < deadline, "stream stuck at {pos}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = ok(&r, &["call", "a", "stats"]);
        if stats.contains(&format!("count => {total}")) {
            assert!(stats.contains("disorder => 0"), "{stats}");
            assert!(stats.contains("<<\"1\">>"), "version 1 again: {stats}");
            break;
        }
        assert!(Instant::now() < deadline, "not all arrived: {stats}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_socket_is_private_and_a_world_writable_directory_is_refused() {
    let r = start();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&r.socket).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    // A second host on the same socket is refused, and the first keeps answering.
    let out = Command::new(host_bin())
        .current_dir(r.dir.path())
        .args(["--config", "host.toml", "--run-for", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already listening"));
    ok(&r, &["list"]);

    // Another user is refused (needs root to become someone else).
    if nix_uid() == 0 {
        let dir_mode: std::fs::Permissions = std::os::unix::fs::PermissionsExt::from_mode(0o711);
        std::fs::set_permissions(r.dir.path(), dir_mode).unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(host_bin())
            .arg("ctl")
            .arg("--socket")
            .arg(&r.socket)
            .arg("list")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refused"), "{err}");
    }

    // A host whose socket directory others can write to refuses to start.
    let open = r.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = Command::new(host_bin())
        .current_dir(r.dir.path())
        .args([
            "--config",
            "host.toml",
            "--run-for",
            "5",
            "--socket",
            "open/h.sock",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by others"), "{err}");
}

fn nix_uid() -> u32 {
    // /proc/self/status "Uid:" line, to avoid a dependency for one number.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
