//! Issue 10, "run for months": every buffer has a bound and a policy, files are safe, and
//! the smaller sharp edges (a closed pipe, absurd watcher settings, an actor named "42").
//! Each test failed on the code before the fix; most drive the real binary.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use e2e::process::{ctl, HostProcess, TWO_WORKERS};
use e2e::{host_bin, wait_for, PluginDir, Variant};
use host::{Host, HostEvent, HostOptions, Target, VersionPolicy};

#[test]
fn ctl_into_a_closed_pipe_exits_quietly() {
    let r = HostProcess::start(TWO_WORKERS);
    for _ in 0..5 {
        let mut child = Command::new(host_bin())
            .args(["ctl", "--socket"])
            .arg(&r.socket)
            .arg("versions")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -0`: the reader is gone before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
}

#[test]
fn an_actor_named_42_is_addressable_by_name_and_pids_stay_pids() {
    let config = TWO_WORKERS.replace("name = \"s\"", "name = \"42\"");
    let r = HostProcess::start(&config);
    let out = ctl(&r.socket, &["call", "42", "get"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("count"), "{text}");
    // `<0.N.0>` is always a pid.
    let list: serde_json::Value =
        serde_json::from_slice(&ctl(&r.socket, &["list", "--json"]).stdout).unwrap();
    let id = list.as_array().unwrap()[0]["id"].as_u64().unwrap();
    let out = ctl(&r.socket, &["call", &format!("<0.{id}.0>"), "get"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn only_a_stale_socket_is_ever_removed() {
    let dir = PluginDir::new();
    dir.install(&e2e::build(&Variant::of("v1")));
    std::fs::write(dir.path().join("host.toml"), TWO_WORKERS).unwrap();
    let precious = dir.path().join("host.sock");
    std::fs::write(&precious, "not a socket: data").unwrap();
    let out = Command::new(host_bin())
        .current_dir(dir.path())
        .args(["--config", "host.toml", "--run-for", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "not a socket: data"
    );
}

#[test]
fn absurd_watcher_settings_are_refused_with_the_key_named() {
    for key in ["debounce_ms", "settle_ms"] {
        let e = host::config::Config::parse(
            &format!("plugin_dirs = []\n[watch]\n{key} = 9223372036854775807\n"),
            "t.toml",
            std::path::Path::new("."),
        )
        .expect_err("refused");
        assert!(e.to_string().contains(key), "{e}");
        assert!(e.to_string().contains("enabled = false"), "{e}");
    }
}

#[test]
fn control_connections_are_capped_and_a_request_line_is_bounded() {
    let r = HostProcess::start(TWO_WORKERS);
    // A line longer than the limit, without a newline: refused, not buffered for ever.
    let mut long = UnixStream::connect(&r.socket).unwrap();
    long.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0usize;
    while sent <= (2 << 20) {
        if long.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut answer = String::new();
    let _ = long.read_to_string(&mut answer);
    assert!(answer.contains("longer than"), "{answer:?}");

    // More idle connections than the cap: the extra ones are told and closed (all made
    // first: the idle ones would otherwise reach their deadline while we look).
    let held: Vec<UnixStream> = (0..80)
        .map(|_| UnixStream::connect(&r.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut busy = 0;
    for c in &held {
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        if let Ok(n) = (&*c).read(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).contains("busy") {
                busy += 1;
            }
        }
    }
    assert_eq!(busy, 80 - 64, "connections past the cap are refused");
    drop(held);
    // Once they go, the host answers again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ctl(&r.socket, &["list"]).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "the host answers again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn host_in(dir: &PluginDir, versions: VersionPolicy) -> Result<Host, host::HostError> {
    Host::start(HostOptions {
        threads: 2,
        plugin_dirs: vec![dir.path()],
        watch: None,
        versions,
        ..Default::default()
    })
}

#[test]
fn a_plugin_directory_writable_by_others_is_refused_naming_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = PluginDir::new();
    dir.install(&e2e::build(&Variant::of("v1")));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = host_in(&dir, VersionPolicy::default())
        .err()
        .expect("refused");
    let e = e.to_string();
    assert!(e.contains("chmod go-w"), "{e}");
    assert!(e.contains(dir.path().to_str().unwrap()), "{e}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(host_in(&dir, VersionPolicy::default()).is_ok());
}

#[test]
fn a_library_owned_by_another_user_or_too_big_is_refused_before_loading() {
    let dir = PluginDir::new();
    dir.install(&e2e::build(&Variant::of("v1")));
    let host = host_in(&dir, VersionPolicy::default()).unwrap();
    let v2 = e2e::build(&Variant::of("v2"));
    let scratch = tempfile::tempdir().unwrap();
    let theirs = scratch.path().join("libtp.so");
    std::fs::copy(&v2, &theirs).unwrap();
    if nix_uid() == 0 {
        // Needs root to give a file away.
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let HostEvent::Reload(r) = host.reload_behaviour("tp", Some(&theirs)).unwrap() else {
            panic!()
        };
        let reason = r.reason.unwrap_or_default();
        assert!(reason.contains("belongs to uid 65534"), "{reason}");
        assert_eq!(host.versions().len(), 1, "nothing was mapped");
    }
    drop(host);
    let small = host_in(
        &dir,
        VersionPolicy {
            max_library_bytes: 1000,
            ..VersionPolicy::default()
        },
    )
    .unwrap();
    // The first load of libtp.so was refused too (too big): nothing provides `tp`.
    assert!(small.behaviour_names().is_empty());
    let ev = small.reload(&dir.lib());
    let HostEvent::Load { reason, .. } = ev else {
        panic!("{ev:?}")
    };
    let reason = reason.unwrap_or_default();
    assert!(reason.contains("more than the 1000 allowed"), "{reason}");
}

#[test]
fn a_mailbox_past_its_limit_kills_the_actor_with_a_clear_reason_after_a_warning() {
    let (_d, host, rx) = start_v1();
    host.spawn_with("tp", Some("sink"), &()).unwrap();
    host.spawn_with("tp", Some("slow"), &()).unwrap();
    host.set_mailbox_warn_at(50);
    assert!(host.set_max_mailbox(Target::Name("slow"), 100));
    // Busy for 700 ms inside one callback, while 300 messages arrive.
    let r: Reply = host
        .call_as(
            Target::Name("slow"),
            &Call::Stream("sink".into(), 1, 700_000, 1),
            T,
        )
        .unwrap();
    assert_eq!(r, Reply::Done);
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..300 {
        cast(&host, "slow", &Cast::Seq(i));
    }
    let stopped = wait_for(&rx, T, |e| {
        matches!(e, HostEvent::Stopped { name: Some(n), .. } | HostEvent::Crash { name: Some(n), .. } if n == "slow")
    })
    .expect("slow is killed");
    let reason = match stopped {
        HostEvent::Stopped { reason, .. } | HostEvent::Crash { reason, .. } => reason,
        _ => unreachable!(),
    };
    assert!(
        reason.contains("mailbox limit") && reason.contains("max_mailbox = 100"),
        "{reason}"
    );
    assert!(host.whereis("slow").is_none());
    assert!(host.whereis("sink").is_some(), "others carry on");
}

fn nix_uid() -> u32 {
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

/// Issue 10: without `XDG_RUNTIME_DIR`, another user could create `/tmp/actor-host-UID`
/// first and `host ctl` would talk to whatever socket they put there. `ctl` now checks the
/// directory before connecting (and the peer's uid after), as tmux and ssh-agent do.
#[test]
fn ctl_refuses_a_socket_directory_that_another_user_owns_or_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::tempdir().unwrap();
    let open = scratch.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ctl(&open.join("host.sock"), &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused to connect") && err.contains("writable by others"),
        "{err}"
    );
    if nix_uid() == 0 {
        let theirs = scratch.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let out = ctl(&theirs.join("host.sock"), &["list"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }
}
