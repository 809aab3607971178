//! Supervision trees with OTP's rules: which children restart, in what order, and when a
//! supervisor gives up.

mod common;

use std::time::{Duration, Instant};

use common::*;
use e2e::{build, next_reload, wait_for, Variant};
use host::observe::events::SupervisorEvent;
use host::supervisor::{ChildSpec, Restart, Shutdown, Strategy, SupervisorSpec, WorkerSpec};
use host::{Host, HostEvent, ReloadOutcome, Target};

/// The next supervisor report of this kind (`what` names it in the failure).
fn sup_event(
    rx: &crossbeam_channel::Receiver<HostEvent>,
    kind: SupervisorEvent,
    what: &str,
) -> HostEvent {
    wait_for(
        rx,
        T,
        |e| matches!(e, HostEvent::Supervisor { kind: k, .. } if *k == kind),
    )
    .unwrap_or_else(|| panic!("no {what} report"))
}

fn worker(name: &str, restart: Restart) -> ChildSpec {
    ChildSpec::Worker(WorkerSpec {
        behaviour: "tp".into(),
        name: Some(name.into()),
        args: plugin_api::etf::to_vec(&()).unwrap(),
        restart,
        shutdown: Shutdown::Timeout(Duration::from_millis(500)),
        start_timeout: host::supervisor::DEFAULT_START_TIMEOUT,
    })
}

/// Three permanent workers `a`, `b`, `c`, in that order.
fn abc() -> Vec<ChildSpec> {
    ["a", "b", "c"]
        .iter()
        .map(|n| worker(n, Restart::Permanent))
        .collect()
}

fn sup(name: &str, strategy: Strategy, intensity: u32, children: Vec<ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        name: name.into(),
        strategy,
        intensity,
        period: Duration::from_secs(5),
        children,
        restart: Restart::Permanent,
    }
}

/// Collects supervisor events of `kind` until `n` arrived; returns the child names.
fn children(
    rx: &crossbeam_channel::Receiver<HostEvent>,
    kind: SupervisorEvent,
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match wait_for(
            rx,
            T,
            |e| matches!(e, HostEvent::Supervisor { kind: k, .. } if *k == kind),
        ) {
            Some(HostEvent::Supervisor { child, .. }) => out.push(child),
            _ => panic!("waited for {n} {kind:?}, got {out:?}"),
        }
    }
    out
}

fn id(host: &Host, name: &str) -> host::ActorId {
    let deadline = Instant::now() + T;
    loop {
        if let Some(id) = host.whereis(name) {
            return id;
        }
        assert!(Instant::now() < deadline, "{name} is running");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn children_start_in_order() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup("s", Strategy::OneForOne, 1, abc()))
        .unwrap();
    assert_eq!(
        children(&rx, SupervisorEvent::ChildStarted, 3),
        ["a", "b", "c"]
    );
}

#[test]
fn one_for_one_restarts_only_the_crashed_child_fresh_under_its_name() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup(
        "s",
        Strategy::OneForOne,
        3,
        vec![
            worker("a", Restart::Permanent),
            worker("b", Restart::Permanent),
        ],
    ))
    .unwrap();
    let (a, b) = (id(&host, "a"), id(&host, "b"));
    cast(&host, "a", &Cast::Incr(5));
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 5));
    let _ = children(&rx, SupervisorEvent::ChildStarted, 2);
    crash(&host, "a");
    let a2 = restarted(&host, "a", a);
    assert_ne!(a2, a);
    assert_eq!(host.whereis("b"), Some(b), "b untouched");
    assert_eq!(
        get(&host, "a"),
        Reply::Count("1".into(), 0),
        "fresh init, old state gone"
    );
}

#[test]
fn one_for_all_restarts_every_child_stopping_in_reverse_and_starting_in_order() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup("s", Strategy::OneForAll, 3, abc()))
        .unwrap();
    let _ = children(&rx, SupervisorEvent::ChildStarted, 3);
    let (a, c) = (id(&host, "a"), id(&host, "c"));
    crash(&host, "b");
    assert_eq!(
        children(&rx, SupervisorEvent::ChildTerminated, 2),
        ["c", "a"],
        "others stop in reverse"
    );
    assert_eq!(
        children(&rx, SupervisorEvent::ChildStarted, 3),
        ["a", "b", "c"],
        "all start in order"
    );
    assert_ne!(id(&host, "a"), a);
    assert_ne!(id(&host, "c"), c);
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_those_after_it() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup("s", Strategy::RestForOne, 3, abc()))
        .unwrap();
    let _ = children(&rx, SupervisorEvent::ChildStarted, 3);
    let a = id(&host, "a");
    crash(&host, "b");
    assert_eq!(children(&rx, SupervisorEvent::ChildTerminated, 1), ["c"]);
    assert_eq!(children(&rx, SupervisorEvent::ChildStarted, 2), ["b", "c"]);
    assert_eq!(host.whereis("a"), Some(a), "a untouched");
}

#[test]
fn transient_restarts_only_after_an_abnormal_exit_and_temporary_never() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup(
        "s",
        Strategy::OneForOne,
        5,
        vec![
            worker("t", Restart::Transient),
            worker("tmp", Restart::Temporary),
        ],
    ))
    .unwrap();
    let _ = children(&rx, SupervisorEvent::ChildStarted, 2);
    let t = id(&host, "t");
    crash(&host, "t");
    restarted(&host, "t", t);
    let _ = children(&rx, SupervisorEvent::ChildStarted, 1);
    // A normal stop: not restarted.
    let r: Reply = host.call_as(Target::Name("t"), &Call::Stop, T).unwrap();
    assert_eq!(r, Reply::Stopping);
    crash(&host, "tmp");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        host.whereis("t").is_none(),
        "transient after a normal exit stays down"
    );
    assert!(host.whereis("tmp").is_none(), "temporary stays down");
}

#[test]
fn past_the_intensity_a_supervisor_gives_up_and_its_parent_decides_once() {
    let (_d, host, rx) = start_v1();
    let inner = sup(
        "inner",
        Strategy::OneForOne,
        1,
        vec![worker("w", Restart::Permanent)],
    );
    host.start_supervisor(sup(
        "outer",
        Strategy::OneForOne,
        5,
        vec![
            worker("sibling", Restart::Permanent),
            ChildSpec::Supervisor(inner),
        ],
    ))
    .unwrap();
    let sibling = id(&host, "sibling");
    let w = id(&host, "w");
    crash(&host, "w");
    let w2 = restarted(&host, "w", w);
    crash(&host, "w"); // second restart within the period: past intensity 1
    let ev = sup_event(&rx, SupervisorEvent::GaveUp, "gave up");
    assert!(
        matches!(ev, HostEvent::Supervisor { ref supervisor, .. } if supervisor == "inner"),
        "{ev:?}"
    );
    // The outer supervisor restarts the inner one (and so `w`); the sibling is untouched.
    restarted(&host, "w", w2);
    assert_eq!(host.whereis("sibling"), Some(sibling));
    assert!(host.root_failure().is_none(), "escalated one level only");
}

#[test]
fn a_root_supervisor_giving_up_is_reported() {
    let (_d, host, _rx) = start_v1();
    host.start_supervisor(sup(
        "root",
        Strategy::OneForOne,
        0,
        vec![worker("w", Restart::Permanent)],
    ))
    .unwrap();
    crash(&host, "w");
    let deadline = Instant::now() + T;
    while host.root_failure().is_none() {
        assert!(Instant::now() < deadline, "root failure reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(host.root_failure().as_deref(), Some("root"));
}

#[test]
fn a_child_that_traps_the_shutdown_is_killed_after_its_timeout() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup(
        "s",
        Strategy::OneForAll,
        3,
        vec![
            worker("stubborn", Restart::Permanent),
            worker("b", Restart::Permanent),
        ],
    ))
    .unwrap();
    let _ = children(&rx, SupervisorEvent::ChildStarted, 2);
    let _: Reply = host
        .call_as(Target::Name("stubborn"), &Call::TrapExit(true), T)
        .unwrap();
    let t = Instant::now();
    crash(&host, "b");
    let ev = sup_event(&rx, SupervisorEvent::ChildTerminated, "terminated");
    assert!(
        matches!(ev, HostEvent::Supervisor { ref reason, .. } if reason == "killed"),
        "{ev:?}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "waited its shutdown time first"
    );
    let _ = children(&rx, SupervisorEvent::ChildStarted, 2);
}

#[test]
fn a_child_that_fails_to_start_stops_the_tree_start_with_its_name() {
    let (_d, host, _rx) = start_v1();
    let bad = ChildSpec::Worker(WorkerSpec {
        behaviour: "nope".into(),
        name: Some("ghost".into()),
        args: plugin_api::etf::to_vec(&()).unwrap(),
        restart: Restart::Permanent,
        shutdown: Shutdown::BrutalKill,
        start_timeout: host::supervisor::DEFAULT_START_TIMEOUT,
    });
    let e = host
        .start_supervisor(sup(
            "s",
            Strategy::OneForOne,
            1,
            vec![worker("a", Restart::Permanent), bad],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ghost") && e.contains("unknown behaviour `nope`"),
        "{e}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        host.whereis("a").is_none(),
        "the children already started were stopped"
    );
}

#[test]
fn a_supervised_actor_stays_supervised_across_a_hot_swap() {
    let (dir, host, rx) = start_v1();
    host.start_supervisor(sup(
        "s",
        Strategy::OneForOne,
        3,
        vec![worker("a", Restart::Permanent)],
    ))
    .unwrap();
    let a = id(&host, "a");
    cast(&host, "a", &Cast::Incr(4));
    dir.install(&build(&Variant::of("v2")));
    let r = next_reload(&rx, RELOAD_WAIT).expect("reload");
    assert_eq!(r.outcome, ReloadOutcome::Ok);
    assert_eq!(
        get(&host, "a"),
        Reply::Count("2".into(), 4),
        "migrated, same actor"
    );
    assert_eq!(host.whereis("a"), Some(a));
    crash(&host, "a");
    restarted(&host, "a", a);
    assert_eq!(
        get(&host, "a"),
        Reply::Count("2".into(), 0),
        "restarted on the current version"
    );
}

#[test]
fn a_crash_in_the_middle_of_a_swap_leaves_the_tree_consistent() {
    let (dir, host, rx) = start_v1();
    host.start_supervisor(sup(
        "s",
        Strategy::OneForOne,
        5,
        vec![
            worker("a", Restart::Permanent),
            worker("b", Restart::Permanent),
        ],
    ))
    .unwrap();
    let _ = children(&rx, SupervisorEvent::ChildStarted, 2);
    cast(&host, "a", &Cast::Incr(2));
    // code_change panics half-way through the swap: rolled back.
    dir.install(&build(&Variant::of("v2_panic")));
    let r = next_reload(&rx, RELOAD_WAIT).expect("reload");
    assert_eq!(r.outcome, ReloadOutcome::RolledBack);
    assert_eq!(
        get(&host, "a"),
        Reply::Count("1".into(), 2),
        "old version, old state"
    );
    // The tree still supervises both children, on the old version.
    let b = id(&host, "b");
    crash(&host, "b");
    restarted(&host, "b", b);
    assert_eq!(get(&host, "b"), Reply::Count("1".into(), 0));
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 2));
}

#[test]
fn simple_one_for_one_starts_children_on_request_and_restarts_each_alone() {
    let (_d, host, rx) = start_v1();
    let mut pool = sup(
        "pool",
        Strategy::SimpleOneForOne,
        5,
        vec![worker("ignored", Restart::Permanent)],
    );
    // Template children are unnamed (many of them run at once).
    if let ChildSpec::Worker(w) = &mut pool.children[0] {
        w.name = None;
    }
    host.start_supervisor(pool).unwrap();
    host.spawn_with("tp", Some("boss"), &()).unwrap();
    assert_eq!(
        host.call_as::<_, Reply>(Target::Name("boss"), &Call::StartChild("pool".into()), T)
            .unwrap(),
        Reply::Done
    );
    assert_eq!(
        host.call_as::<_, Reply>(Target::Name("boss"), &Call::StartChild("pool".into()), T)
            .unwrap(),
        Reply::Done
    );
    let _: Reply = host
        .call_as(Target::Name("boss"), &Call::StartChild("nope".into()), T)
        .unwrap();
    let deadline = Instant::now() + T;
    let inbox = loop {
        let Reply::Inbox(v) = host.call_as(Target::Name("boss"), &Call::Inbox, T).unwrap() else {
            panic!()
        };
        if v.len() >= 3 {
            break v;
        }
        assert!(Instant::now() < deadline, "{v:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let started: Vec<host::ActorId> = inbox
        .iter()
        .filter_map(|l| l.strip_prefix("started ")?.parse().ok())
        .map(host::ActorId)
        .collect();
    assert_eq!(started.len(), 2, "{inbox:?}");
    assert!(
        inbox
            .iter()
            .any(|l| l.contains("no supervisor named `nope`")),
        "{inbox:?}"
    );
    let _ = children(&rx, SupervisorEvent::ChildStarted, 2);
    // Crash the first child: only it is restarted.
    host.send(
        Target::Id(started[0]),
        plugin_api::etf::to_vec(&Info::Panic).unwrap(),
    )
    .unwrap();
    let again = children(&rx, SupervisorEvent::ChildStarted, 1);
    assert_eq!(again.len(), 1);
    let r: Reply = host.call_as(Target::Id(started[1]), &Call::Get, T).unwrap();
    assert_eq!(
        r,
        Reply::Count("1".into(), 0),
        "the other child is untouched"
    );
}

/// A pool `hangs` whose children's start deadline is twice the wait for a restart (see
/// [`b_restarts_at_once`]): with one thread for both, the restart would come only at
/// this deadline.
fn hanging_pool() -> SupervisorSpec {
    let mut pool = sup(
        "hangs",
        Strategy::SimpleOneForOne,
        5,
        vec![worker("ignored", Restart::Permanent)],
    );
    if let ChildSpec::Worker(w) = &mut pool.children[0] {
        w.name = None;
        w.start_timeout = T * 2;
    }
    pool
}

/// Has `boss` start a child of `hangs` that sleeps in `init` far past its deadline, and
/// waits until that child is registered: `hangs`'s thread now waits on its `init`.
fn hang_a_start(host: &Host) {
    host.spawn_with("tp", Some("boss"), &()).unwrap();
    let before = host.actor_count();
    let r: Reply = host
        .call_as(
            Target::Name("boss"),
            &Call::StartChildWith("hangs".into(), InitArgs::Sleep(60_000)),
            T,
        )
        .unwrap();
    assert_eq!(r, Reply::Done);
    let deadline = Instant::now() + T;
    while host.actor_count() <= before {
        assert!(Instant::now() < deadline, "the pool child never started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Crashes `b` and checks it is restarted, fresh, within T (half the hanging start's
/// deadline).
fn b_restarts_at_once(host: &Host) {
    let old = id(host, "b");
    crash(host, "b");
    let new = restarted(host, "b", old);
    let r: Reply = host.call_as(Target::Id(new), &Call::Get, T).unwrap();
    assert_eq!(r, Reply::Count("1".into(), 0));
}

/// What `host ctl tree` shows of `nodes`: each one's name and status, in order.
fn statuses(nodes: &[host::observe::model::TreeNode]) -> Vec<(&str, &str)> {
    nodes
        .iter()
        .map(|t| (t.name.as_str(), t.status.as_str()))
        .collect()
}

/// Issue 15: a child whose `init` hangs holds its own supervisor only (in OTP each
/// supervisor is a process). Tree `hangs` is a pool whose new child sleeps in `init` far
/// past its start deadline; meanwhile a child of tree `other` crashes and is restarted at
/// once, not when the deadline fails the hanging start. The operator's `tree` answers
/// too, with `hangs` as `busy`.
#[test]
fn a_hanging_init_in_one_tree_never_delays_restarts_in_another() {
    let (_d, host, _rx) = start_v1();
    host.start_supervisor(hanging_pool()).unwrap();
    host.start_supervisor(sup("other", Strategy::OneForOne, 5, abc()))
        .unwrap();
    hang_a_start(&host);
    b_restarts_at_once(&host);
    let trees = host.tree().expect("the trees answer");
    let both = [("hangs", "busy"), ("other", "running")];
    assert_eq!(statuses(&trees), both, "{trees:?}");
}

/// Issue 15, within one tree: nested supervisors are processes too. Root `root` holds
/// the pool `hangs` and `other`; while `hangs` waits on a hanging `init`, `other`'s child
/// `b` crashes and is restarted at once. The operator's `tree` answers with `root`
/// running, its nested `hangs` as `busy` and `other` as `running`.
#[test]
fn a_hanging_init_in_one_nested_supervisor_never_delays_restarts_in_its_sibling() {
    let (_d, host, _rx) = start_v1();
    let other = sup("other", Strategy::OneForOne, 5, abc());
    host.start_supervisor(sup(
        "root",
        Strategy::OneForOne,
        5,
        vec![
            ChildSpec::Supervisor(hanging_pool()),
            ChildSpec::Supervisor(other),
        ],
    ))
    .unwrap();
    hang_a_start(&host);
    b_restarts_at_once(&host);
    let trees = host.tree().expect("the trees answer");
    assert_eq!(statuses(&trees), [("root", "running")], "{trees:?}");
    let nested = [("hangs", "busy"), ("other", "running")];
    assert_eq!(statuses(&trees[0].children), nested, "{trees:?}");
}

#[test]
fn stopping_the_host_stops_the_tree_in_reverse_order() {
    let (_d, host, rx) = start_v1();
    host.start_supervisor(sup("s", Strategy::OneForOne, 1, abc()))
        .unwrap();
    let _ = children(&rx, SupervisorEvent::ChildStarted, 3);
    drop(host);
    let stopped: Vec<String> = rx
        .try_iter()
        .filter_map(|e| match e {
            HostEvent::Supervisor {
                kind: SupervisorEvent::ChildTerminated,
                child,
                reason,
                ..
            } => {
                assert_eq!(reason, "shutdown", "asked politely, and it went");
                Some(child)
            }
            _ => None,
        })
        .collect();
    assert_eq!(stopped, ["c", "b", "a"]);
}
