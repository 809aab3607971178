//! Hot swap through the real watcher: state migrates, the new code answers, nothing sent
//! during the swap is lost, duplicated or reordered; failed migrations roll back.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use e2e::{build, next_reload, PluginDir, Variant};
use host::{ReloadOutcome, Target};

#[test]
fn swap_migrates_state_and_the_new_version_answers() {
    let (v1, v2) = (build(&Variant::of("v1")), build(&Variant::of("v2")));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    host.spawn_with("tp", Some("b"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(5));
    cast(&host, "b", &Cast::Incr(7));
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 5));

    dir.install(&v2);
    let r = next_reload(&rx, RELOAD_WAIT).expect("a reload event");
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    assert_eq!(r.behaviours.len(), 1);
    let b = &r.behaviours[0];
    assert_eq!(
        (
            b.behaviour.as_str(),
            b.from.as_str(),
            b.to.as_str(),
            b.actors
        ),
        ("tp", "1", "2", 2)
    );

    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 5));
    assert_eq!(get(&host, "b"), Reply::Count("2".into(), 7));
    assert_eq!(host.version_of("tp").as_deref(), Some("2"));
    // A new actor starts on the new version.
    host.spawn_with("tp", Some("c"), &()).unwrap();
    assert_eq!(get(&host, "c"), Reply::Count("2".into(), 0));
}

#[test]
fn messages_sent_through_a_swap_are_not_lost_duplicated_or_reordered() {
    let (v1, v2) = (build(&Variant::of("v1")), build(&Variant::of("v2")));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    let host = Arc::new(host);
    for i in 0..100 {
        host.spawn_with("tp", Some(&format!("w{i}")), &()).unwrap();
    }
    host.spawn_with("tp", Some("seq"), &()).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    // A caller: each call must come back with its own number, in order.
    let caller = {
        let (host, stop) = (host.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) || n < 200 {
                let r: Reply = host
                    .call_as(Target::Name("seq"), &Call::Seq(n), T)
                    .expect("no call lost");
                assert_eq!(r, Reply::Seq(n), "replies in order");
                n += 1;
            }
            n
        })
    };
    // A caster: fire-and-forget numbers to 100 actors; each actor checks the order.
    let caster = {
        let (host, stop) = (host.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) || n < 200 {
                for i in 0..100 {
                    let bytes = plugin_api::etf::to_vec(&Cast::Seq(n)).unwrap();
                    host.cast(Target::Name(&format!("w{i}")), bytes).unwrap();
                }
                n += 1;
                if n.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    dir.install(&v2);
    let r = next_reload(&rx, RELOAD_WAIT).expect("a reload event");
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    assert_eq!(r.behaviours[0].actors, 101);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let calls = caller.join().expect("caller saw every reply in order");
    let casts = caster.join().unwrap();

    let stats: Reply = host.call_as(Target::Name("seq"), &Call::Stats, T).unwrap();
    assert_eq!(
        stats,
        Reply::Stats {
            version: "2".into(),
            count: calls,
            disorder: 0
        }
    );
    for i in 0..100 {
        let s: Reply = host
            .call_as(Target::Name(&format!("w{i}")), &Call::Stats, T)
            .unwrap();
        assert_eq!(
            s,
            Reply::Stats {
                version: "2".into(),
                count: casts,
                disorder: 0
            },
            "actor w{i}: every cast handled once, in order"
        );
    }
}

fn rolled_back(feature: &'static str, reason_has: &str) {
    let (v1, bad) = (build(&Variant::of("v1")), build(&Variant::of(feature)));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    host.spawn_with("tp", Some("b"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(3));

    dir.install(&bad);
    let r = next_reload(&rx, RELOAD_WAIT).expect("a reload event");
    assert_eq!(r.outcome, ReloadOutcome::RolledBack, "{r:?}");
    let reason = r.reason.unwrap();
    assert!(
        reason.contains(reason_has),
        "reason names the failure: {reason}"
    );
    assert!(reason.contains("code_change"), "{reason}");

    // The old version answers, with its old state; the host is fine.
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 3));
    assert_eq!(get(&host, "b"), Reply::Count("1".into(), 0));
    assert_eq!(host.version_of("tp").as_deref(), Some("1"));
    cast(&host, "a", &Cast::Incr(1));
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 4));
    host.spawn_with("tp", Some("c"), &()).unwrap();
    assert_eq!(get(&host, "c"), Reply::Count("1".into(), 0));
}

#[test]
fn code_change_returning_an_error_rolls_back() {
    rolled_back("v2_err", "refusing to migrate from 1");
}

#[test]
fn code_change_panicking_rolls_back() {
    rolled_back("v2_panic", "code_change exploded");
}

#[test]
fn an_identical_rebuild_does_not_reload() {
    let v1 = build(&Variant::of("v1"));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    // Cargo relinks the same bytes: delete + hard link of an identical file.
    dir.install(&v1);
    let copy = dir.path().join("tmp-copy");
    std::fs::copy(&v1, &copy).unwrap();
    std::fs::rename(&copy, dir.lib()).unwrap();
    assert!(
        next_reload(&rx, Duration::from_secs(2)).is_none(),
        "no reload for identical bytes"
    );
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 0));
}

#[test]
fn two_quick_rebuilds_end_on_the_newest() {
    let (v1, v2, v3) = (
        build(&Variant::of("v1")),
        build(&Variant::of("v2")),
        build(&Variant::of("v3")),
    );
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(9));
    dir.install(&v2);
    std::thread::sleep(Duration::from_millis(5));
    dir.install(&v3);
    // One or two reloads, depending on whether the watcher saw v2 settle; the last is 3.
    let mut last = None;
    while let Some(r) = next_reload(&rx, Duration::from_secs(3)) {
        assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
        last = Some(r.behaviours[0].to.clone());
    }
    assert_eq!(last.as_deref(), Some("3"));
    assert_eq!(get(&host, "a"), Reply::Count("3".into(), 9));
}

#[test]
fn a_deferred_reply_survives_a_swap() {
    let (v1, v2) = (build(&Variant::of("v1")), build(&Variant::of("v2")));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    let host = Arc::new(host);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(2));
    // The call is answered 3 s later by a timer, from whatever version runs then.
    let waiting = {
        let host = host.clone();
        std::thread::spawn(move || {
            host.call_as::<_, Reply>(Target::Name("a"), &Call::Later(3000), T)
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    dir.install(&v2);
    let r = next_reload(&rx, RELOAD_WAIT).expect("a reload event");
    assert_eq!(r.outcome, ReloadOutcome::Ok);
    assert_eq!(
        waiting.join().unwrap().unwrap(),
        Reply::Count("2".into(), 2)
    );
}

#[test]
fn a_manual_reload_through_another_spelling_of_the_path_swaps() {
    let (v1, v2) = (build(&Variant::of("v1")), build(&Variant::of("v2")));
    let dir = PluginDir::new();
    dir.install(&v1);
    let host = host::Host::start(host::HostOptions {
        threads: 2,
        plugin_dirs: vec![dir.path()],
        watch: None,
        ..Default::default()
    })
    .unwrap();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    dir.install(&v2);
    let odd = dir.path().join(".").join("libtp.so");
    match host.reload(&odd) {
        host::HostEvent::Reload(r) => assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}"),
        other => panic!("expected a reload, got {other:?}"),
    }
    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 0));
}

#[test]
fn behaviours_of_one_library_swap_together() {
    let (dir, host, rx, v2) = start_pair();
    host.spawn_with("tp2", Some("three"), &()).unwrap();
    cast(&host, "two", &Cast::Incr(2));

    dir.install(&v2);
    let r = next_reload(&rx, RELOAD_WAIT).expect("one reload event for the library");
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    let mut seen: Vec<(String, usize)> = r
        .behaviours
        .iter()
        .map(|b| (b.behaviour.clone(), b.actors))
        .collect();
    seen.sort();
    assert_eq!(seen, vec![("tp".into(), 1), ("tp2".into(), 2)]);
    assert_eq!(get(&host, "one"), Reply::Count("2".into(), 0));
    assert_eq!(get(&host, "two"), Reply::Count("2".into(), 2));
    assert_eq!(host.version_of("tp2").as_deref(), Some("2"));
}
