//! A panicking handler is a crashing actor: one crash event, the other actors and the host
//! carry on, and callers get an exit instead of waiting forever.

mod common;

use std::time::Duration;

use common::*;
use e2e::wait_for;
use host::{CallError, HostEvent, Target};

#[test]
fn a_panicking_handler_crashes_only_its_actor() {
    let (_dir, host, rx) = start_v1();
    host.spawn_with("tp", Some("victim"), &()).unwrap();
    host.spawn_with("tp", Some("bystander"), &()).unwrap();
    cast(&host, "bystander", &Cast::Incr(1));

    let e = host
        .call_as::<_, Reply>(Target::Name("victim"), &Call::Panic, T)
        .unwrap_err();
    assert!(
        matches!(&e, CallError::Exit(r) if r.contains("asked to panic in handle_call")),
        "{e:?}"
    );
    let ev = wait_for(&rx, T, |e| matches!(e, HostEvent::Crash { .. })).expect("crash event");
    let HostEvent::Crash {
        name,
        behaviour,
        version,
        panic,
        message,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(name.as_deref(), Some("victim"));
    assert_eq!((behaviour.as_str(), version.as_str()), ("tp", "1"));
    assert!(
        panic.contains("asked to panic in handle_call") && panic.contains("tp.rs"),
        "{panic}"
    );
    assert_eq!(message, "panic", "the message being handled");

    // The name is free, the bystander fine, the host up.
    assert!(host.whereis("victim").is_none());
    assert_eq!(get(&host, "bystander"), Reply::Count("1".into(), 1));
    host.spawn_with("tp", Some("victim"), &()).unwrap();

    // A panic in handle_info too.
    host.send(
        Target::Name("victim"),
        plugin_api::etf::to_vec(&Info::Panic).unwrap(),
    )
    .unwrap();
    let ev = wait_for(&rx, T, |e| matches!(e, HostEvent::Crash { .. })).expect("second crash");
    assert!(matches!(ev, HostEvent::Crash { ref panic, .. } if panic.contains("handle_info")));
    assert_eq!(get(&host, "bystander"), Reply::Count("1".into(), 1));
}

#[test]
fn a_stopping_actor_answers_then_terminates() {
    let (_dir, host, rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    let r: Reply = host.call_as(Target::Name("a"), &Call::Stop, T).unwrap();
    assert_eq!(r, Reply::Stopping);
    let ev = wait_for(&rx, T, |e| matches!(e, HostEvent::Stopped { .. })).expect("stopped event");
    assert!(
        matches!(ev, HostEvent::Stopped { ref reason, .. } if reason == "normal"),
        "{ev:?}"
    );
    assert!(host.whereis("a").is_none());
}

#[test]
fn a_call_times_out_and_the_late_reply_is_dropped() {
    let (_dir, host, _rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    let e = host
        .call_as::<_, Reply>(
            Target::Name("a"),
            &Call::Later(300),
            Duration::from_millis(50),
        )
        .unwrap_err();
    assert_eq!(e, CallError::Timeout);
    std::thread::sleep(Duration::from_millis(400));
    // The next call gets its own reply, not the late one.
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 0));
}

#[test]
fn a_callee_stopping_without_a_reply_answers_the_caller_with_its_reason() {
    let (_dir, host, _rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    let t = std::time::Instant::now();
    let e = host
        .call_as::<_, Reply>(Target::Name("a"), &Call::StopSilently, T)
        .unwrap_err();
    assert!(
        matches!(&e, CallError::Exit(r) if r.contains("stopped silently")),
        "{e:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "answered at once, not at the timeout"
    );
}

#[test]
fn a_deferred_call_gets_the_exit_reason_when_the_callee_crashes() {
    let (_dir, host, _rx) = start_v1();
    let host = std::sync::Arc::new(host);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    let waiting = {
        let host = host.clone();
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let r = host.call_as::<_, Reply>(Target::Name("a"), &Call::Later(4000), T);
            (r, t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    host.send(
        Target::Name("a"),
        plugin_api::etf::to_vec(&Info::Panic).unwrap(),
    )
    .unwrap();
    let (r, took) = waiting.join().unwrap();
    assert!(
        matches!(&r, Err(CallError::Exit(reason)) if reason.contains("handle_info")),
        "{r:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "answered when the callee died, not at the timeout: {took:?}"
    );
}

#[test]
fn a_timer_to_a_name_finds_whoever_holds_it_when_it_fires() {
    let (_dir, host, _rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    // Nobody is called `late` yet: the name is looked up when the timer fires.
    let r: Reply = host
        .call_as(Target::Name("a"), &Call::TimerTo("late".into(), 1000), T)
        .unwrap();
    assert!(matches!(r, Reply::Timer(_)), "{r:?}");
    host.spawn_with("tp", Some("late"), &()).unwrap();
    assert_eq!(get(&host, "late"), Reply::Count("1".into(), 0), "not yet");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(&host, "late") != Reply::Count("1".into(), 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the timer reached `late`"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_actor_cancels_only_its_own_timers() {
    let (_dir, host, _rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    host.spawn_with("tp", Some("b"), &()).unwrap();
    let Reply::Timer(t) = host
        .call_as(Target::Name("a"), &Call::TimerTo("b".into(), 60_000), T)
        .unwrap()
    else {
        panic!("timer ref")
    };
    let by_b: Reply = host
        .call_as(Target::Name("b"), &Call::Cancel(t), T)
        .unwrap();
    assert_eq!(by_b, Reply::Cancelled(false), "b cannot cancel a's timer");
    // Nor anything else by guessing refs around it (request timeouts live there too).
    for guess in t.saturating_sub(3)..t + 3 {
        if guess != t {
            let r: Reply = host
                .call_as(Target::Name("b"), &Call::Cancel(guess), T)
                .unwrap();
            assert_eq!(r, Reply::Cancelled(false));
        }
    }
    let by_a: Reply = host
        .call_as(Target::Name("a"), &Call::Cancel(t), T)
        .unwrap();
    assert_eq!(by_a, Reply::Cancelled(true));
    let again: Reply = host
        .call_as(Target::Name("a"), &Call::Cancel(t), T)
        .unwrap();
    assert_eq!(again, Reply::Cancelled(false));
}

#[test]
fn a_timer_addressed_to_an_actor_dies_with_it() {
    let (_dir, host, rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    let before = host.pending_timers();
    // `Later` sets a timer to itself and answers when it fires: give up waiting at once.
    let e = host
        .call_as::<_, Reply>(
            Target::Name("a"),
            &Call::Later(60_000),
            Duration::from_millis(50),
        )
        .unwrap_err();
    assert_eq!(e, CallError::Timeout);
    assert_eq!(host.pending_timers(), before + 1);
    host.send(
        Target::Name("a"),
        plugin_api::etf::to_vec(&Info::Panic).unwrap(),
    )
    .unwrap();
    wait_for(&rx, T, |e| matches!(e, HostEvent::Crash { .. })).expect("crash");
    assert_eq!(
        host.pending_timers(),
        before,
        "the timer went with its actor"
    );
}

#[test]
fn an_interval_timer_repeats_until_its_owner_cancels_it() {
    let (_dir, host, _rx) = start_v1();
    host.spawn_with("tp", Some("a"), &()).unwrap();
    host.spawn_with("tp", Some("b"), &()).unwrap();
    let Reply::Timer(t) = host
        .call_as(Target::Name("a"), &Call::Interval("b".into(), 20), T)
        .unwrap()
    else {
        panic!("timer ref")
    };
    let count = |host: &host::Host| match get(host, "b") {
        Reply::Count(_, n) => n,
        other => panic!("{other:?}"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&host) < 3 {
        assert!(std::time::Instant::now() < deadline, "ticks arrive");
        std::thread::sleep(Duration::from_millis(10));
    }
    let by_b: Reply = host
        .call_as(Target::Name("b"), &Call::Cancel(t), T)
        .unwrap();
    assert_eq!(by_b, Reply::Cancelled(false), "only the owner cancels");
    let by_a: Reply = host
        .call_as(Target::Name("a"), &Call::Cancel(t), T)
        .unwrap();
    assert_eq!(by_a, Reply::Cancelled(true));
    std::thread::sleep(Duration::from_millis(50));
    let stopped_at = count(&host);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(&host), stopped_at, "no tick after the cancel");
}
