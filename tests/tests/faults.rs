//! "A reload can never take the host down": every way a rebuild (or a callback) can go
//! wrong ends with a clear event, the old code still serving, and nothing lost.
//!
//! Covered elsewhere, so not repeated here: an incompatible plugin-api version, a
//! `panic = "abort"` build, a truncated file, a file that is not a library, and a new
//! version that drops or renames a behaviour (`refusals.rs`); a panic in `handle_call` and
//! `handle_info` (`crash.rs`); a panic or an error in `code_change` (`swap.rs`).

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::Receiver;
use e2e::{build, next_reload, wait_for, PluginDir, Variant};
use host::observe::events::{LoadOutcome, SupervisorEvent};
use host::supervisor::{ChildSpec, Restart, Shutdown, Strategy, SupervisorSpec, WorkerSpec};
use host::{Host, HostEvent, ReloadOutcome, ReloadReport, Target};
use serde::Serialize;

/// The test plugin's calls that `common::Call` does not have.
#[derive(Serialize)]
enum FaultCall {
    PanicInTerminate,
    /// To, per tick, pause after each send (µs), total.
    Stream(String, u64, u64, u64),
    StreamPos,
    MarkSwap(String),
    Stop,
}

#[derive(Serialize)]
enum FaultCast {
    Panic,
}

/// `init`'s arguments in the test plugin (`Ok` is the atom `ok`, what `()` encodes to).
#[derive(Serialize)]
enum InitArgs {
    Ok,
    Panic,
    Fail,
}

/// How long "nothing more happens" is watched for. Well past the watcher's debounce,
/// settle and retry delays (30 + 10 ms, backoff capped at 250 ms).
const QUIET: Duration = Duration::from_millis(1500);

fn call(host: &Host, who: &str, msg: &FaultCall) -> Reply {
    host.call_as(Target::Name(who), msg, T)
        .unwrap_or_else(|e| panic!("{who} answers: {e}"))
}

fn stats(host: &Host, who: &str) -> (String, u64, u64) {
    match host.call_as(Target::Name(who), &Call::Stats, T) {
        Ok(Reply::Stats {
            version,
            count,
            disorder,
        }) => (version, count, disorder),
        other => panic!("stats of {who}: {other:?}"),
    }
}

fn is_load_event(e: &HostEvent) -> bool {
    matches!(e, HostEvent::Reload(_) | HostEvent::Load { .. })
}

/// The next load or reload event (other events are skipped).
fn next_load_event(rx: &Receiver<HostEvent>, timeout: Duration) -> Option<HostEvent> {
    wait_for(rx, timeout, is_load_event)
}

/// Every load and reload event until none arrived for [`QUIET`].
fn until_quiet(rx: &Receiver<HostEvent>) -> Vec<HostEvent> {
    let mut out = Vec::new();
    while let Some(e) = next_load_event(rx, QUIET) {
        out.push(e);
    }
    out
}

/// Asserts that no load or reload happens for [`QUIET`].
fn assert_quiet(rx: &Receiver<HostEvent>, after: &str) {
    let evs = until_quiet(rx);
    assert!(evs.is_empty(), "nothing loads after {after}: {evs:?}");
}

/// Waits for the refusal of what was just installed and returns its reason, prefixed with
/// the path the event names. The first load event must be the refusal: anything else
/// (a reload that went through) means a bad file was loaded.
fn refusal(rx: &Receiver<HostEvent>) -> String {
    match next_load_event(rx, RELOAD_WAIT).expect("a refusal event") {
        HostEvent::Reload(r) => {
            assert_eq!(r.outcome, ReloadOutcome::Rejected, "refused: {r:?}");
            format!("{}: {}", r.library.display(), r.reason.expect("a reason"))
        }
        HostEvent::Load {
            outcome: LoadOutcome::Rejected,
            path,
            reason,
            ..
        } => format!("{}: {}", path.display(), reason.expect("a reason")),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The next event is a successful reload `from` → `to`.
fn swapped(rx: &Receiver<HostEvent>, from: &str, to: &str) -> ReloadReport {
    match next_load_event(rx, RELOAD_WAIT).expect("a reload event") {
        HostEvent::Reload(r) => {
            assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
            for b in &r.behaviours {
                assert_eq!((b.from.as_str(), b.to.as_str()), (from, to), "{r:?}");
            }
            r
        }
        other => panic!("expected a reload {from} -> {to}, got {other:?}"),
    }
}

/// A host watching a fresh directory with v1 installed and actor `a` at count 5.
fn v1_with_a() -> (PluginDir, Host, Receiver<HostEvent>) {
    let (dir, host, rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(5));
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 5));
    (dir, host, rx)
}

/// v1 still answers with its state, and is still what new actors start on.
fn v1_still_serves(host: &Host) {
    assert_eq!(get(host, "a"), Reply::Count("1".into(), 5));
    assert_eq!(host.version_of("tp").as_deref(), Some("1"));
}

/// A good build installed after the fault swaps in, with the state.
fn a_good_build_still_swaps_in(dir: &PluginDir, host: &Host, rx: &Receiver<HostEvent>) {
    dir.install(&build(&Variant::of("v2")));
    swapped(rx, "1", "2");
    assert_eq!(get(host, "a"), Reply::Count("2".into(), 5));
    assert_quiet(rx, "the good build");
}

fn worker(name: &str, args: &InitArgs) -> ChildSpec {
    ChildSpec::Worker(WorkerSpec {
        behaviour: "tp".into(),
        name: Some(name.into()),
        args: plugin_api::etf::to_vec(args).unwrap(),
        restart: Restart::Permanent,
        shutdown: Shutdown::Timeout(Duration::from_millis(500)),
        start_timeout: host::supervisor::DEFAULT_START_TIMEOUT,
    })
}

fn one_for_one(name: &str, children: Vec<ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        name: name.into(),
        strategy: Strategy::OneForOne,
        intensity: 5,
        period: Duration::from_secs(5),
        children,
        restart: Restart::Permanent,
    }
}

// ---------------------------------------------------------------------------------------
// 1. Exported types whose layout changed.
// ---------------------------------------------------------------------------------------

/// The type a layout refusal reports as differing: "the layout of `T` differs".
fn mismatched_types(reason: &str) -> Vec<String> {
    reason
        .split("the layout of `")
        .skip(1)
        .filter_map(|part| Some(part.split_once('`')?.0.to_string()))
        .collect()
}

#[test]
fn a_library_whose_abi_types_changed_layout_is_refused_naming_the_type() {
    let (dir, host, rx) = v1_with_a();
    // Same plugin-api crate version as the host: only abi_stable's layout check can tell.
    for (patch, type_name) in [
        ("outcome_reordered", "Outcome"),
        ("hostapi_field_added", "HostApi"),
    ] {
        let bad = build(&Variant {
            api_patch: Some(patch),
            ..Variant::of("v2")
        });
        dir.install(&bad);
        let reason = refusal(&rx);
        assert!(
            reason.contains("incompatible plugin-api") && reason.contains("layout"),
            "{patch}: says the layouts differ: {reason}"
        );
        let mismatched = mismatched_types(&reason);
        assert!(
            mismatched.iter().any(|t| t.contains(type_name)),
            "{patch}: names {type_name} as the type whose layout differs: {mismatched:?}"
        );
        assert!(reason.contains("libtp.so"), "names the file: {reason}");
        v1_still_serves(&host);
    }
    a_good_build_still_swaps_in(&dir, &host, &rx);
}

#[test]
fn a_layout_refusal_names_the_type_in_a_readable_reason() {
    let (dir, host, rx) = v1_with_a();
    dir.install(&build(&Variant {
        api_patch: Some("outcome_reordered"),
        ..Variant::of("v2")
    }));
    let reason = refusal(&rx);
    let first = reason.lines().next().unwrap_or_default();
    assert!(
        first.contains("Outcome"),
        "the first line names the type: {first}"
    );
    assert!(
        reason.len() < 2000,
        "a reason a log reader can take in: {} bytes, {} lines",
        reason.len(),
        reason.lines().count()
    );
    v1_still_serves(&host);
}

// ---------------------------------------------------------------------------------------
// 2. Panics in the plugin's code: init, handlers, terminate, the module constructor.
// ---------------------------------------------------------------------------------------

#[test]
fn a_panic_or_an_error_in_init_fails_the_spawn_with_a_clear_error() {
    let (_dir, host, _rx) = v1_with_a();
    let e = host
        .spawn_with("tp", Some("x"), &InitArgs::Panic)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`tp` init panicked")
            && e.contains("asked to panic in init")
            && e.contains("tp.rs"),
        "says what panicked, and where: {e}"
    );
    assert!(host.whereis("x").is_none(), "not registered");
    let e = host
        .spawn_with("tp", Some("x"), &InitArgs::Fail)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`tp` init failed: asked to fail in init"), "{e}");
    assert!(host.whereis("x").is_none(), "not registered");

    // A supervisor whose child's init panics: the tree start fails naming the child.
    let e = host
        .start_supervisor(one_for_one(
            "s",
            vec![
                worker("good", &InitArgs::Ok),
                worker("bad", &InitArgs::Panic),
            ],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad") && e.contains("asked to panic in init"),
        "{e}"
    );

    // The host is fine: the name is free, other actors answer, spawns work.
    host.spawn_with("tp", Some("x"), &InitArgs::Ok).unwrap();
    assert_eq!(get(&host, "x"), Reply::Count("1".into(), 0));
    v1_still_serves(&host);
}

#[test]
fn a_panic_in_handle_cast_crashes_only_its_actor_and_the_supervisor_restarts_it() {
    let (_dir, host, rx) = v1_with_a();
    host.start_supervisor(one_for_one("s", vec![worker("w", &InitArgs::Ok)]))
        .unwrap();
    let w = restarted(&host, "w", host::ActorId(0));
    cast(&host, "w", &Cast::Incr(3));
    host.cast(
        Target::Name("w"),
        plugin_api::etf::to_vec(&FaultCast::Panic).unwrap(),
    )
    .unwrap();
    let ev = wait_for(&rx, T, |e| matches!(e, HostEvent::Crash { .. })).expect("a crash event");
    let HostEvent::Crash {
        name,
        panic,
        message,
        version,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(
        (name.as_deref(), version.as_str()),
        (Some("w"), "1"),
        "names the actor and the version"
    );
    assert!(
        panic.contains("asked to panic in handle_cast") && panic.contains("tp.rs"),
        "{panic}"
    );
    assert_eq!(message, "panic", "the message being handled");
    restarted(&host, "w", w);
    assert_eq!(get(&host, "w"), Reply::Count("1".into(), 0), "a fresh w");
    v1_still_serves(&host);
}

#[test]
fn a_panic_in_terminate_still_stops_the_actor_and_the_supervisor_restarts_it() {
    let (_dir, host, rx) = v1_with_a();
    host.start_supervisor(one_for_one("s", vec![worker("w", &InitArgs::Ok)]))
        .unwrap();
    let w = restarted(&host, "w", host::ActorId(0));

    // A crash whose terminate panics too: the crash is reported, the child restarted.
    assert_eq!(call(&host, "w", &FaultCall::PanicInTerminate), Reply::Done);
    crash(&host, "w");
    let ev = wait_for(&rx, T, |e| matches!(e, HostEvent::Crash { .. })).expect("a crash event");
    assert!(
        matches!(&ev, HostEvent::Crash { name: Some(n), panic, .. }
            if n == "w" && panic.contains("asked to panic in handle_info")),
        "{ev:?}"
    );
    let w2 = restarted(&host, "w", w);
    assert_eq!(get(&host, "w"), Reply::Count("1".into(), 0), "a fresh w");

    // A normal stop whose terminate panics: the caller gets its answer, the actor is gone,
    // the supervisor restarts it (permanent).
    assert_eq!(call(&host, "w", &FaultCall::PanicInTerminate), Reply::Done);
    assert_eq!(call(&host, "w", &FaultCall::Stop), Reply::Stopping);
    let ev = wait_for(
        &rx,
        T,
        |e| matches!(e, HostEvent::Stopped { name: Some(n), .. } if n == "w"),
    )
    .expect("a stopped event");
    assert!(
        matches!(&ev, HostEvent::Stopped { reason, .. } if reason == "normal"),
        "{ev:?}"
    );
    let ev = wait_for(
        &rx,
        T,
        |e| matches!(e, HostEvent::Supervisor { kind: SupervisorEvent::ChildStarted, child, .. } if child == "w"),
    );
    assert!(ev.is_some(), "w restarted after its stop");
    restarted(&host, "w", w2);

    // An unsupervised actor too.
    host.spawn_with("tp", Some("u"), &()).unwrap();
    assert_eq!(call(&host, "u", &FaultCall::PanicInTerminate), Reply::Done);
    assert_eq!(call(&host, "u", &FaultCall::Stop), Reply::Stopping);
    let deadline = Instant::now() + T;
    while host.whereis("u").is_some() {
        assert!(Instant::now() < deadline, "u is gone");
        std::thread::sleep(Duration::from_millis(5));
    }
    v1_still_serves(&host);

    // And at shutdown (terminate runs for every child of the tree): the host still stops.
    assert_eq!(call(&host, "w", &FaultCall::PanicInTerminate), Reply::Done);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        drop(host);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "the host stops although a terminate panics"
    );
}

#[test]
fn a_library_whose_module_constructor_panics_or_fails_is_refused() {
    let (dir, host, rx) = v1_with_a();
    dir.install(&build(&Variant::of("v2_ctor_panic")));
    let reason = refusal(&rx);
    assert!(
        reason.contains("libtp.so")
            && reason.contains("module constructor")
            && reason.contains("panicked"),
        "{reason}"
    );
    v1_still_serves(&host);

    dir.install(&build(&Variant::of("v2_ctor_err")));
    let reason = refusal(&rx);
    assert!(
        reason.contains("module constructor") && reason.contains("refused: no config"),
        "carries the constructor's error: {reason}"
    );
    v1_still_serves(&host);
    a_good_build_still_swaps_in(&dir, &host, &rx);
}

// ---------------------------------------------------------------------------------------
// 3. Bad files through the real watcher.
// ---------------------------------------------------------------------------------------

#[test]
fn an_empty_library_file_is_refused_by_the_watcher() {
    let (dir, host, rx) = v1_with_a();
    dir.write_raw(b"");
    let reason = refusal(&rx);
    assert!(
        reason.contains("libtp.so") && reason.contains("empty"),
        "{reason}"
    );
    v1_still_serves(&host);
    a_good_build_still_swaps_in(&dir, &host, &rx);
}

#[test]
fn a_directory_named_like_the_library_is_refused() {
    let (dir, host, rx) = v1_with_a();
    fs::remove_file(dir.lib()).unwrap();
    fs::create_dir(dir.lib()).unwrap();
    let reason = refusal(&rx);
    assert!(
        reason.contains("libtp.so") && reason.contains("is a directory"),
        "{reason}"
    );
    v1_still_serves(&host);
    fs::remove_dir(dir.lib()).unwrap();
    a_good_build_still_swaps_in(&dir, &host, &rx);
}

#[test]
fn a_dangling_symlink_is_refused_after_the_retries() {
    let (dir, host, rx) = v1_with_a();
    fs::remove_file(dir.lib()).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere.so"), dir.lib()).unwrap();
    let started = Instant::now();
    let reason = refusal(&rx);
    assert!(
        reason.contains("libtp.so") && reason.contains("dangling symlink"),
        "{reason}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "retried before giving up (after {:?})",
        started.elapsed()
    );
    v1_still_serves(&host);
    fs::remove_file(dir.lib()).unwrap();
    a_good_build_still_swaps_in(&dir, &host, &rx);
}

#[test]
fn a_symlink_whose_target_appears_while_the_watcher_retries_swaps_in() {
    let v2 = build(&Variant::of("v2"));
    let (dir, host, rx) = v1_with_a();
    let target = dir.path().join("build-v2.so");
    fs::remove_file(dir.lib()).unwrap();
    std::os::unix::fs::symlink(&target, dir.lib()).unwrap();
    // Well inside the watcher's 2 s of retries.
    std::thread::sleep(Duration::from_millis(300));
    fs::copy(&v2, &target).unwrap();
    swapped(&rx, "1", "2");
    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 5));
    assert_quiet(&rx, "the swap");
}

#[test]
fn repointing_a_symlinked_library_swaps_like_a_rebuild() {
    let (dir, host, rx) = start_v1_symlinked();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(5));
    let v2 = dir.path().join("build-v2.so");
    fs::copy(build(&Variant::of("v2")), &v2).unwrap();
    // An atomic `ln -sfn`: a new link renamed over the old one.
    let tmp = dir.path().join("libtp.so.tmp");
    std::os::unix::fs::symlink(&v2, &tmp).unwrap();
    fs::rename(&tmp, dir.lib()).unwrap();
    swapped(&rx, "1", "2");
    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 5));
}

/// A host whose `libtp.so` is a symlink to `build-v1.so` in the same directory.
fn start_v1_symlinked() -> (PluginDir, Host, Receiver<HostEvent>) {
    let dir = PluginDir::new();
    let v1 = dir.path().join("build-v1.so");
    fs::copy(build(&Variant::of("v1")), &v1).unwrap();
    std::os::unix::fs::symlink(&v1, dir.lib()).unwrap();
    let (host, rx) = start(&dir);
    (dir, host, rx)
}

/// Whether this process can read files whose mode says nobody may (root, CAP_DAC_*).
fn reads_unreadable_files(scratch: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = scratch.join("mode-000-probe");
    fs::write(&probe, b"x").unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o000)).unwrap();
    let readable = fs::File::open(&probe).is_ok();
    let _ = fs::remove_file(&probe);
    readable
}

#[test]
fn an_unreadable_library_is_refused_then_loads_once_readable() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, host, rx) = v1_with_a();
    if reads_unreadable_files(&dir.path()) {
        // Root reads a mode-000 file: nothing to refuse. The FIFO test covers a file the
        // host cannot read as a library whoever it runs as.
        eprintln!("skipped: this process reads mode-000 files (root?)");
        return;
    }
    // A copy, not a hard link: the mode belongs to the inode the build cache shares.
    let _ = fs::remove_file(dir.lib());
    let mut f = fs::File::create(dir.lib()).unwrap();
    f.write_all(&fs::read(build(&Variant::of("v2"))).unwrap())
        .unwrap();
    f.set_permissions(fs::Permissions::from_mode(0o000))
        .unwrap();
    drop(f);
    let reason = refusal(&rx);
    assert!(
        reason.contains("libtp.so") && reason.contains("ermission denied"),
        "{reason}"
    );
    v1_still_serves(&host);
    // Made readable (an attribute change, no new content): the watcher picks it up.
    fs::set_permissions(dir.lib(), fs::Permissions::from_mode(0o644)).unwrap();
    swapped(&rx, "1", "2");
    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 5));
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_named_like_the_library_never_blocks_the_watcher_or_the_host() {
    let (dir, host, rx) = v1_with_a();
    fs::remove_file(dir.lib()).unwrap();
    mkfifo(&dir.lib());
    let reason = refusal(&rx);
    assert!(
        reason.contains("libtp.so") && reason.contains("not a regular file"),
        "{reason}"
    );
    v1_still_serves(&host);
    // The watcher is not stuck on it: a second artifact in the directory still loads.
    fs::copy(build(&Variant::of("v1")), dir.path().join("libtp_other.so")).unwrap();
    match next_load_event(&rx, RELOAD_WAIT).expect("the other library's load event") {
        HostEvent::Load { path, outcome, .. } => {
            assert!(path.ends_with("libtp_other.so"), "{path:?}");
            // It exports `tp` too, which is taken: refused, not loaded over v1.
            assert_eq!(outcome, LoadOutcome::Rejected);
        }
        other => panic!("expected the other library's load event, got {other:?}"),
    }
    fs::remove_file(dir.path().join("libtp_other.so")).unwrap();
    v1_still_serves(&host);
    fs::remove_file(dir.lib()).unwrap();
    a_good_build_still_swaps_in(&dir, &host, &rx);

    // A host starting with a FIFO in its plugin directory starts (and skips it).
    let other = PluginDir::new();
    other.install(&build(&Variant::of("v1")));
    mkfifo(&other.path().join("libfifo.so"));
    let (tx, started) = crossbeam_channel::bounded(1);
    let path = other.path();
    std::thread::spawn(move || {
        let host = Host::start(host::HostOptions {
            threads: 2,
            plugin_dirs: vec![path],
            ..Default::default()
        });
        let _ = tx.send(host.map(|h| h.behaviour_names()));
    });
    let names = started
        .recv_timeout(Duration::from_secs(20))
        .expect("the host starts despite the FIFO")
        .expect("start succeeds");
    assert_eq!(names, vec!["tp".to_string()]);
}

#[test]
fn a_library_written_slowly_is_never_loaded_half_written() {
    let (dir, host, rx) = v1_with_a();
    let bytes = fs::read(build(&Variant::of("v2"))).unwrap();
    let _ = fs::remove_file(dir.lib());
    let mut f = fs::File::create(dir.lib()).unwrap();
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).unwrap();
    f.flush().unwrap();
    // The writer pauses far longer than the debounce and settle periods: the watcher sees
    // a quiet, stable, half-written file and must not hand it over.
    let pause = Instant::now() + Duration::from_millis(400);
    while Instant::now() < pause {
        v1_still_serves(&host);
        std::thread::sleep(Duration::from_millis(20));
    }
    f.write_all(&bytes[half..]).unwrap();
    drop(f);
    // The first thing that loads is the complete file; nothing was refused or loaded
    // before it.
    swapped(&rx, "1", "2");
    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 5));
    assert_quiet(&rx, "the complete file");
}

// ---------------------------------------------------------------------------------------
// 4. Bursts, a rebuild during a swap, deleted artifacts and directories.
// ---------------------------------------------------------------------------------------

/// Checks a series of reloads: all succeeded, each starts where the previous ended (from
/// `first`), none is a no-op; returns the version they end on.
fn chain(reloads: &[HostEvent], first: &str) -> String {
    let mut at = first.to_string();
    for e in reloads {
        let HostEvent::Reload(r) = e else {
            panic!("only reloads expected: {e:?}")
        };
        assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
        let b = &r.behaviours[0];
        assert_eq!(
            b.from, at,
            "each reload starts where the last ended: {reloads:?}"
        );
        assert_ne!(
            b.from, b.to,
            "no reload of the running version: {reloads:?}"
        );
        at = b.to.clone();
    }
    at
}

#[test]
fn a_burst_of_ten_builds_in_a_second_ends_on_the_newest_and_loses_nothing() {
    let (v2, v3) = (build(&Variant::of("v2")), build(&Variant::of("v3")));
    let (dir, host, rx) = v1_with_a();
    let host = Arc::new(host);
    // A client keeps calling throughout: every call answered, the state intact.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (host, stop) = (host.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut calls = 0u64;
            while !stop.load(Ordering::SeqCst) {
                match get(&host, "a") {
                    Reply::Count(_, 5) => calls += 1,
                    other => panic!("state lost: {other:?}"),
                }
            }
            calls
        })
    };
    let started = Instant::now();
    for i in 0..10u32 {
        dir.install(if i % 2 == 0 { &v2 } else { &v3 });
        let next = started + Duration::from_millis(100) * (i + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let first = next_load_event(&rx, RELOAD_WAIT).expect("at least one reload");
    let mut reloads = vec![first];
    reloads.extend(until_quiet(&rx));
    stop.store(true, Ordering::SeqCst);
    let calls = client.join().expect("every call answered with the state");
    assert!(calls > 0);

    // The watcher debounces, so a burst may merge: between one and ten swaps, never more
    // than the builds installed, in order, ending on the last build.
    assert!(
        (1..=10).contains(&reloads.len()),
        "{} reloads: {reloads:?}",
        reloads.len()
    );
    assert_eq!(chain(&reloads, "1"), "3", "ends on the newest build");
    assert_eq!(get(&host, "a"), Reply::Count("3".into(), 5));
    host.spawn_with("tp", Some("fresh"), &()).unwrap();
    assert_eq!(get(&host, "fresh"), Reply::Count("3".into(), 0));
    // Installing the running build once more changes nothing.
    dir.install(&v3);
    assert_quiet(&rx, "a re-link of the running build");
}

#[test]
fn a_rebuild_during_a_slow_swap_is_applied_after_it() {
    let (slow, v3) = (build(&Variant::of("v2_slow")), build(&Variant::of("v3")));
    let (dir, host, rx) = start_v1();
    let marker_dir = PluginDir::new();
    let marker = marker_dir.path().join("swapping");
    const N: u64 = 10;
    for i in 0..N {
        let name = format!("w{i}");
        host.spawn_with("tp", Some(&name), &()).unwrap();
        cast(&host, &name, &Cast::Incr(i));
    }
    // The first actor migrated creates the marker: the swap is then in progress, with
    // about (N - 1) × 50 ms to go.
    for i in 0..N {
        let mark = FaultCall::MarkSwap(marker.display().to_string());
        assert_eq!(call(&host, &format!("w{i}"), &mark), Reply::Done);
    }

    dir.install(&slow);
    let deadline = Instant::now() + RELOAD_WAIT;
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the slow swap started");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Mid-swap: the actors are suspended, their mailboxes still take messages.
    for i in 0..N {
        cast(&host, &format!("w{i}"), &Cast::Incr(100));
    }
    let mid_swap = !rx.try_iter().any(|e| matches!(e, HostEvent::Reload(_)));
    dir.install(&v3);
    assert!(
        mid_swap,
        "v3 was installed while the slow swap ran (it takes {} ms)",
        N * 50
    );

    let r = swapped(&rx, "1", "2");
    assert!(
        r.pause_us >= (N - 1) * 50_000,
        "the swap was slow: {} us",
        r.pause_us
    );
    assert_eq!(r.behaviours[0].actors, N as usize);
    swapped(&rx, "2", "3");
    assert_quiet(&rx, "the rebuild");
    for i in 0..N {
        assert_eq!(
            get(&host, &format!("w{i}")),
            Reply::Count("3".into(), i + 100),
            "w{i}: state migrated twice, the cast sent mid-swap handled"
        );
    }
}

#[test]
fn deleting_and_recreating_the_library_keeps_the_old_version_until_new_bytes_arrive() {
    let (dir, host, rx) = v1_with_a();
    fs::remove_file(dir.lib()).unwrap();
    assert_quiet(&rx, "the delete");
    v1_still_serves(&host);
    host.spawn_with("tp", Some("b"), &()).unwrap();
    assert_eq!(get(&host, "b"), Reply::Count("1".into(), 0));

    // The same bytes back: not a new version.
    dir.install(&build(&Variant::of("v1")));
    assert_quiet(&rx, "the same build coming back");
    v1_still_serves(&host);

    // Deleted again and re-created with a new build: one swap.
    fs::remove_file(dir.lib()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    a_good_build_still_swaps_in(&dir, &host, &rx);
}

#[test]
fn the_plugin_directory_removed_and_restored_keeps_serving_and_takes_the_next_build() {
    let (dir, host, rx) = v1_with_a();
    // Moved away and back, same content: nothing to reload.
    let aside = dir.path().with_extension("aside");
    fs::rename(dir.path(), &aside).unwrap();
    // Long enough for the watcher's directory check (every 250 ms) to notice.
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        v1_still_serves(&host);
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::rename(&aside, dir.path()).unwrap();
    assert_quiet(&rx, "the directory came back unchanged");
    v1_still_serves(&host);

    // Removed for good, then re-created with a new build: one swap.
    fs::remove_dir_all(dir.path()).unwrap();
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        v1_still_serves(&host);
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::create_dir(dir.path()).unwrap();
    a_good_build_still_swaps_in(&dir, &host, &rx);
    // And the watch works again afterwards.
    dir.install(&build(&Variant::of("v3")));
    swapped(&rx, "2", "3");
    assert_eq!(get(&host, "a"), Reply::Count("3".into(), 5));
}

/// The real binary's log for the faults whose only trace is a log line (a removed
/// artifact, a lost directory), plus a refused file and the swaps after them.
#[test]
fn the_binary_logs_removed_artifacts_lost_directories_and_refusals() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let conf_dir = PluginDir::new();
    let cfg = conf_dir.path().join("host.toml");
    fs::write(
        &cfg,
        format!(
            "plugin_dirs = [{:?}]\nthreads = 2\nlog_format = \"json\"\n\n[[actors]]\nbehaviour = \"tp\"\nname = \"a\"\n",
            dir.path().display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(e2e::host_bin())
        .arg("--config")
        .arg(&cfg)
        .args(["--run-for", "90"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("host starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut line = |what: &str, pred: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + RELOAD_WAIT;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no {what} line in:\n{}", log.join("\n")));
            let l: String = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} line in:\n{}", log.join("\n")));
            log.push(l.clone());
            if pred(&l) {
                return l;
            }
        }
    };
    let has = |l: &str, parts: &[&str]| parts.iter().all(|p| l.contains(p));

    line("actor_started", &|l| {
        has(l, &[r#""event":"actor_started""#])
    });
    fs::remove_file(dir.lib()).unwrap();
    let l = line("artifact_removed", &|l| {
        has(l, &[r#""event":"artifact_removed""#])
    });
    assert!(l.contains("libtp.so"), "{l}");

    mkfifo(&dir.lib());
    let l = line("refusal", &|l| {
        has(l, &[r#""event":"load""#, r#""outcome":"rejected""#])
    });
    assert!(
        has(&l, &["libtp.so", "not a regular file", r#""level":"WARN""#]),
        "{l}"
    );
    fs::remove_file(dir.lib()).unwrap();

    fs::remove_dir_all(dir.path()).unwrap();
    line("watch_dir_lost", &|l| {
        has(l, &[r#""event":"watch_dir_lost""#])
    });
    fs::create_dir(dir.path()).unwrap();
    line("watch_dir_back", &|l| {
        has(l, &[r#""event":"watch_dir_back""#])
    });
    dir.install(&build(&Variant::of("v2")));
    let l = line("reload", &|l| has(l, &[r#""event":"reload""#]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        has(&l, &[r#""outcome":"ok""#, r#""from":"1""#, r#""to":"2""#]),
        "{l}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. Messages between actors that are swapped together.
// ---------------------------------------------------------------------------------------

#[test]
fn a_stream_between_two_actors_swapped_together_arrives_once_and_in_order() {
    let (dir, host, rx, v2) = start_pair();
    // Each streams `seq` casts to the other, 20 per callback with 200 µs after each send,
    // 8,000 in all (two seconds or more). Both are inside a callback nearly all the time,
    // so when the swap flags them suspended each finishes its callback, still sending to
    // the other, which is already suspended: those messages must wait in its mailbox.
    const TOTAL: u64 = 8_000;
    for (from, to) in [("one", "two"), ("two", "one")] {
        assert_eq!(
            call(&host, from, &FaultCall::Stream(to.into(), 20, 200, TOTAL)),
            Reply::Done
        );
    }
    let deadline = Instant::now() + T;
    while stats(&host, "two").1 == 0 || stats(&host, "one").1 == 0 {
        assert!(Instant::now() < deadline, "the streams started");
        std::thread::sleep(Duration::from_millis(2));
    }

    dir.install(&v2);
    let r = next_reload(&rx, RELOAD_WAIT).expect("a reload");
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    assert_eq!(r.behaviours.len(), 2, "both behaviours swapped together");
    for who in ["one", "two"] {
        let Reply::Seq(pos) = call(&host, who, &FaultCall::StreamPos) else {
            panic!("stream position")
        };
        assert!(
            pos < TOTAL,
            "{who}'s stream was still running after the swap ({pos} sent)"
        );
    }

    let deadline = Instant::now() + RELOAD_WAIT;
    for who in ["one", "two"] {
        loop {
            let (_, count, _) = stats(&host, who);
            if count >= TOTAL {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{who} got every message ({count} of {TOTAL})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for who in ["one", "two"] {
        assert_eq!(
            stats(&host, who),
            ("2".to_string(), TOTAL, 0),
            "{who}: each of 0..{TOTAL} exactly once, in order, by the new version"
        );
    }
}
