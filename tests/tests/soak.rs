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
