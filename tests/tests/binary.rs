//! The real `host` binary: config file, JSON log events, a hot swap seen in the log, and
//! clear errors for bad configs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::{build, host_bin, PluginDir, Variant};

fn write_config(dir: &PluginDir, extra: &str) -> std::path::PathBuf {
    let cfg = dir.path().join("host.toml");
    std::fs::write(
        &cfg,
        format!(
            "plugin_dirs = [\".\"]\nthreads = 2\nlog_format = \"json\"\n\n[control]\nsocket = \"host.sock\"\n\n[[actors]]\nbehaviour = \"tp\"\nname = \"a\"\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

/// Reads JSON log lines until one satisfies `pred`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) if pred(&l) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn the_binary_logs_a_reload_event_when_a_plugin_is_rebuilt() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let cfg = write_config(&dir, "");
    // Relative paths on purpose: the config path is relative to the working directory and
    // the plugin directory relative to the config (file events carry absolute paths).
    assert!(cfg.ends_with("host.toml"));
    let mut child = Command::new(host_bin())
        .current_dir(dir.path())
        .args(["--config", "host.toml", "--run-for", "60"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("host starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The plugin's own log line (from `init`, so before `actor_started`) reaches the host's
    // subscriber, tagged with who wrote it.
    let plugin_line = wait_line(&rx, Duration::from_secs(20), |l| l.contains("tp 1 started"))
        .expect("plugin log line");
    for field in [
        r#""behaviour":"tp""#,
        r#""version":"1""#,
        r#""actor":"#,
        r#""target":"plugin""#,
    ] {
        assert!(plugin_line.contains(field), "{field} in {plugin_line}");
    }
    let started = wait_line(&rx, Duration::from_secs(20), |l| {
        l.contains(r#""event":"actor_started""#)
    });
    assert!(started.is_some(), "actor_started logged");

    dir.install(&build(&Variant::of("v2")));
    let reload = wait_line(&rx, Duration::from_secs(30), |l| {
        l.contains(r#""event":"reload""#)
    })
    .expect("reload logged");

    // A broken build: rolled back, and the log line says why.
    dir.install(&build(&Variant::of("v2_panic")));
    let rolled = wait_line(&rx, Duration::from_secs(30), |l| {
        l.contains(r#""event":"reload""#)
    })
    .expect("second reload logged");
    let _ = child.kill();
    let _ = child.wait();
    for field in [
        r#""outcome":"rolled_back""#,
        r#""from":"2""#,
        "code_change exploded",
        r#""level":"WARN""#,
    ] {
        assert!(rolled.contains(field), "{field} in {rolled}");
    }
    for field in [
        r#""behaviour":"tp""#,
        r#""from":"1""#,
        r#""to":"2""#,
        r#""actors":1"#,
        r#""outcome":"ok""#,
        r#""pause_us":"#,
    ] {
        assert!(reload.contains(field), "{field} in {reload}");
    }
}

fn run_expecting_failure(args: &[&str]) -> (i32, String) {
    let out = Command::new(host_bin())
        .args(args)
        .output()
        .expect("run host");
    assert!(!out.status.success());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configs_are_refused_with_a_clear_error() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));

    let missing = dir.path().join("missing.toml");
    let (_, err) = run_expecting_failure(&["--config", missing.to_str().unwrap()]);
    assert!(err.contains("missing.toml"), "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "plugin_dirs = [\".\"]\nthreadz = 3\n").unwrap();
    let (_, err) = run_expecting_failure(&["--config", typo.to_str().unwrap()]);
    assert!(err.contains("threadz"), "{err}");

    let nodir = dir.path().join("nodir.toml");
    std::fs::write(&nodir, "plugin_dirs = [\"does-not-exist\"]\n").unwrap();
    let (_, err) = run_expecting_failure(&["--config", nodir.to_str().unwrap()]);
    assert!(err.contains("does-not-exist"), "{err}");

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "plugin_dirs = [\".\"]\n[[actors]]\nbehaviour = \"nope\"\n",
    )
    .unwrap();
    let (_, err) =
        run_expecting_failure(&["--config", unknown.to_str().unwrap(), "--run-for", "5"]);
    assert!(err.contains("unknown behaviour `nope`"), "{err}");

    let badargs = dir.path().join("badargs.toml");
    std::fs::write(
        &badargs,
        "plugin_dirs = [\".\"]\n[[actors]]\nbehaviour = \"tp\"\nargs = { x = 1 }\n",
    )
    .unwrap();
    let (_, err) =
        run_expecting_failure(&["--config", badargs.to_str().unwrap(), "--run-for", "5"]);
    assert!(err.contains("init args"), "{err}");

    let (code, err) =
        run_expecting_failure(&["--config", nodir.to_str().unwrap(), "--threads", "1000000"]);
    assert!(code == 2 && err.contains("--threads 1000000"), "{err}");
}

/// Runs the binary with `format` logs on a pipe, crashes actor `a` through `host ctl`,
/// and returns everything it logged.
fn crash_log(format: &str) -> String {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    std::fs::write(
        dir.path().join("host.toml"),
        format!(
            "plugin_dirs = [\".\"]\nthreads = 2\nlog_format = \"{format}\"\n\n[control]\nsocket = \"host.sock\"\n\n[[actors]]\nbehaviour = \"tp\"\nname = \"a\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(host_bin())
        .current_dir(dir.path())
        .args(["--config", "host.toml", "--run-for", "30"])
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("host starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut until = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return;
                }
            }
        }
        panic!("no {want} in {seen:#?}");
    };
    until("control_listening");
    let sent = Command::new(host_bin())
        .current_dir(dir.path())
        .args(["--socket", "host.sock", "ctl", "send", "a", "panic"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    until("crash");
    let _ = child.kill();
    let _ = child.wait();
    seen.join("\n")
}

#[test]
fn logs_on_a_pipe_have_no_colour_codes_and_json_keys_are_unique() {
    let text = crash_log("text");
    assert!(
        !text.contains('\x1b'),
        "escape codes in a piped log:\n{text}"
    );
    let crash = text.lines().find(|l| l.contains("crash")).unwrap();
    assert!(crash.contains("event=\"crash\""), "{crash}");
    assert!(crash.contains("last_message=\"panic\""), "{crash}");

    let json = crash_log("json");
    let crash = json
        .lines()
        .find(|l| l.contains(r#""event":"crash""#))
        .unwrap();
    assert_eq!(crash.matches(r#""message":"#).count(), 1, "{crash}");
    assert!(crash.contains(r#""last_message":"panic""#), "{crash}");
    // Unnamed fields are left out rather than written empty.
    let started = json
        .lines()
        .find(|l| l.contains(r#""event":"actor_started""#))
        .unwrap();
    assert!(!started.contains(r#":"""#), "an empty field: {started}");
}
