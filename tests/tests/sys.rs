//! `sys`-style control of one actor (suspend, resume, status), `Extra` for a swap, a
//! downgrade done the OTP way, and a request that always hears back.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use e2e::{build, build_example, PluginDir, Variant};
use host::{Host, HostOptions, ReloadOutcome, Target};
use plugin_api::etf;

/// A tp call that is not in `common::Call` (the fixture has more than most tests use).
#[derive(serde::Serialize)]
enum More {
    RequestTo(String, u64, bool),
}

/// A term in Erlang syntax, as ETF.
fn term(text: &str) -> Vec<u8> {
    etf::to_vec(&etf::parse(text).unwrap()).unwrap()
}

fn inbox_until(host: &Host, who: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + T;
    loop {
        let Reply::Inbox(v) = host.call_as(Target::Name(who), &Call::Inbox, T).unwrap() else {
            panic!("inbox")
        };
        if want(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{who}'s inbox: {v:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_suspended_actor_holds_its_mail_and_a_request_to_it_times_out() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let (host, _rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    host.spawn_with("tp", Some("b"), &()).unwrap();

    host.suspend(Target::Name("b")).unwrap();
    assert!(
        host.suspend(Target::Name("b"))
            .unwrap_err()
            .to_string()
            .contains("already suspended"),
        "a second suspend is refused"
    );
    let st = host.status(Target::Name("b")).unwrap();
    assert_eq!(st.status, "suspended");
    assert!(st.suspended_by_operator);

    // a asks b with a 100 ms deadline; b is held, so a hears `{timeout, ReqId}`.
    let r: Reply = host
        .call_as(
            Target::Name("a"),
            &More::RequestTo("b".into(), 100, false),
            T,
        )
        .unwrap();
    assert_eq!(r, Reply::Done);
    let got = inbox_until(&host, "a", |v| !v.is_empty());
    assert!(got[0].starts_with("timeout "), "{got:?}");
    // b's mailbox still holds the request, and casts queue behind it, in order.
    for _ in 0..3 {
        host.cast(Target::Name("b"), etf::to_vec(&Cast::Incr(1)).unwrap())
            .unwrap();
    }
    assert_eq!(host.status(Target::Name("b")).unwrap().mailbox, 4);

    host.resume(Target::Name("b")).unwrap();
    assert_eq!(get(&host, "b"), Reply::Count("1".into(), 3));
    let st = host.status(Target::Name("b")).unwrap();
    assert_eq!(
        (st.status.as_str(), st.suspended_by_operator),
        ("waiting", false)
    );
    // The late reply to a's timed-out request never reaches a.
    std::thread::sleep(Duration::from_millis(100));
    let got = inbox_until(&host, "a", |_| true);
    assert_eq!(got.len(), 1, "no late reply: {got:?}");
    assert!(host
        .resume(Target::Name("b"))
        .unwrap_err()
        .to_string()
        .contains("not suspended"));
    assert!(host.suspend(Target::Name("nobody")).is_err());
}

#[test]
fn a_swap_migrates_a_suspended_actor_and_it_stays_suspended() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let (host, _rx) = start(&dir);
    host.spawn_with("tp", Some("b"), &()).unwrap();
    host.suspend(Target::Name("b")).unwrap();
    host.cast(Target::Name("b"), etf::to_vec(&Cast::Incr(5)).unwrap())
        .unwrap();
    let ev = host
        .reload_behaviour("tp", Some(&build(&Variant::of("v2"))))
        .unwrap();
    let host::HostEvent::Reload(r) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    assert_eq!(host.actor_version(Target::Name("b")).as_deref(), Some("2"));
    let st = host.status(Target::Name("b")).unwrap();
    assert_eq!((st.status.as_str(), st.mailbox), ("suspended", 1));
    host.resume(Target::Name("b")).unwrap();
    assert_eq!(get(&host, "b"), Reply::Count("2".into(), 5));
}

#[test]
fn a_reply_the_requester_cannot_decode_arrives_as_a_timeout_at_once() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let (host, _rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    host.spawn_with("tp", Some("b"), &()).unwrap();
    // A 60 s deadline: the answer must come from the undecodable reply, not the timer.
    let t = Instant::now();
    let r: Reply = host
        .call_as(
            Target::Name("a"),
            &More::RequestTo("b".into(), 60_000, true),
            T,
        )
        .unwrap();
    assert_eq!(r, Reply::Done);
    let got = inbox_until(&host, "a", |v| !v.is_empty());
    assert!(got[0].starts_with("timeout "), "{got:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(host.pending_timers(), 0, "the request's deadline is gone");
}

#[test]
fn extra_reaches_code_change() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let (host, _rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    let extra = term("{note, 42}");
    let ev = host
        .reload_with("tp", Some(&build(&Variant::of("v2"))), &extra)
        .unwrap();
    assert!(
        matches!(&ev, host::HostEvent::Reload(r) if r.outcome == ReloadOutcome::Ok),
        "{ev:?}"
    );
    let state = etf::display(&host.state(Target::Name("a")).unwrap());
    assert!(state.contains("migrated from 1 with {note,42}"), "{state}");
}

/// The example `account` plugin renames `balance` to `cents` in 2.0.0. Up and back down
/// (the newer version's `downgrade` writes the old shape) while deposits keep arriving:
/// every deposit is answered, none lost, and the balances are exact both ways.
#[test]
fn a_renamed_field_goes_up_and_back_down_under_load() {
    let v1 = build_example("account", &[]);
    let v2 = build_example("account", &["v2"]);
    let dir = PluginDir::new();
    std::fs::copy(&v1, dir.path().join("libaccount.so")).unwrap();
    let host = Arc::new(
        Host::start(HostOptions {
            threads: 2,
            plugin_dirs: vec![dir.path()],
            watch: None,
            ..Default::default()
        })
        .unwrap(),
    );
    for who in ["ann", "bob"] {
        let args = term(&format!("#{{owner => <<\"{who}\">>}}"));
        host.spawn("account", Some(who), &args).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let depositor = {
        let (host, stop, done) = (host.clone(), stop.clone(), done.clone());
        std::thread::spawn(move || {
            let deposit = term("{deposit, 1}");
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) || n < 200 {
                let who = if n.is_multiple_of(2) { "ann" } else { "bob" };
                let reply = host
                    .call(Target::Name(who), deposit.clone(), T)
                    .expect("every deposit is answered");
                assert!(
                    etf::display(&reply).starts_with("{ok,"),
                    "{}",
                    etf::display(&reply)
                );
                n += 1;
                done.store(n, Ordering::SeqCst);
            }
            n
        })
    };
    let wait_for = |n: u64| {
        let deadline = Instant::now() + T;
        while done.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "deposits stalled");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_for(100);
    let up = host.reload_behaviour("account", Some(&v2)).unwrap();
    assert!(
        matches!(&up, host::HostEvent::Reload(r) if r.outcome == ReloadOutcome::Ok),
        "{up:?}"
    );
    let state = etf::display(&host.state(Target::Name("ann")).unwrap());
    assert!(state.contains("cents =>"), "2.0.0's shape: {state}");
    wait_for(done.load(Ordering::SeqCst) + 100);
    let down = host.rollback("account").unwrap();
    let host::HostEvent::Reload(r) = &down else {
        panic!("{down:?}")
    };
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    assert_eq!(
        (r.behaviours[0].from.as_str(), r.behaviours[0].to.as_str()),
        ("2.0.0", "1.0.0")
    );
    assert_eq!(r.behaviours[0].actors, 2);
    let state = etf::display(&host.state(Target::Name("ann")).unwrap());
    assert!(state.contains("balance =>"), "1.0.0's shape again: {state}");
    wait_for(done.load(Ordering::SeqCst) + 100);
    stop.store(true, Ordering::SeqCst);
    let total = depositor.join().unwrap();
    let balance =
        |who: &str| etf::display(&host.call(Target::Name(who), term("balance"), T).unwrap());
    assert_eq!(balance("ann"), format!("{{ok,{}}}", total.div_ceil(2)));
    assert_eq!(balance("bob"), format!("{{ok,{}}}", total / 2));
}
