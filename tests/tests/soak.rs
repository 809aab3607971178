//! The soak, shortened: a few reload cycles under load, in both version modes. The full
//! run is `scripts/soak.sh` (figures in the README).

use e2e::soak::{run, SoakConfig};

fn soak(unload: bool) {
    let r = run(&SoakConfig {
        cycles: 12,
        actors: 20,
        senders: 4,
        unload,
        release: false,
        default_policy: false,
        broken_every: 0,
    });
    assert!(r.failed_reloads.is_empty(), "{:?}", r.failed_reloads);
    assert_eq!(r.reloads, 12);
    assert!(r.sent > 0);
    assert_eq!(r.received, r.sent, "every message received once");
    assert_eq!(r.disorder, 0, "no duplicate, gap or reordering");
    if unload {
        assert!(
            r.retained <= 1,
            "unload mode keeps only `retain` versions: {}",
            r.retained
        );
    } else {
        assert_eq!(
            r.retained, 12,
            "every retired version stays mapped by default"
        );
    }
}

#[test]
fn reloads_under_load_lose_nothing_with_versions_kept() {
    soak(false);
}

#[test]
fn reloads_under_load_lose_nothing_with_unload_mode() {
    soak(true);
}

/// Issue 10: the default configuration, with one build in four broken (its `code_change`
/// errors): every good reload swaps, every broken one rolls back, nothing is lost, and
/// what the host keeps stays flat (it used to keep every version, failed ones included).
#[test]
fn reloads_under_load_with_broken_builds_and_the_default_policy_stay_bounded() {
    let r = run(&SoakConfig {
        cycles: 16,
        actors: 20,
        senders: 4,
        unload: true,
        release: false,
        default_policy: true,
        broken_every: 4,
    });
    assert!(r.failed_reloads.is_empty(), "{:?}", r.failed_reloads);
    assert_eq!((r.reloads, r.rolled_back), (12, 4));
    assert_eq!(r.received, r.sent, "every message received once");
    assert_eq!(r.disorder, 0);
    assert!(r.retained <= 1, "retain = 1: {}", r.retained);
    assert!(
        r.at_end.copies <= 3 * r.at_start.copies,
        "copies on disk: {} at start, {} at the end",
        r.at_start.copies,
        r.at_end.copies
    );
}
