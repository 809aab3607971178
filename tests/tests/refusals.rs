//! Libraries the host must refuse — each with a clear reason — while the old version
//! keeps serving.

mod common;

use std::time::Duration;

use common::*;
use e2e::{build, next_reload, wait_for, PluginDir, Variant};
use host::observe::events::LoadOutcome;
use host::{HostEvent, ReloadOutcome};

/// Installs `bad` over a running v1 and returns the rejection reason, prefixed with the
/// path the event names.
fn refused_while_v1_runs(install_bad: impl FnOnce(&PluginDir)) -> String {
    let v1 = build(&Variant::of("v1"));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    host.spawn_with("tp", Some("a"), &()).unwrap();
    cast(&host, "a", &Cast::Incr(4));

    install_bad(&dir);
    // Either the loader refused it (a `reload` event, outcome rejected) or the watcher
    // refused to hand it over (a `load` event, rejected).
    let ev = wait_for(&rx, RELOAD_WAIT, |e| {
        matches!(e, HostEvent::Reload(_))
            || matches!(
                e,
                HostEvent::Load {
                    outcome: LoadOutcome::Rejected,
                    ..
                }
            )
    })
    .expect("a refusal event");
    let reason = match ev {
        HostEvent::Reload(r) => {
            assert_eq!(r.outcome, ReloadOutcome::Rejected, "{r:?}");
            format!("{}: {}", r.library.display(), r.reason.unwrap())
        }
        HostEvent::Load { reason, path, .. } => format!("{}: {}", path.display(), reason.unwrap()),
        _ => unreachable!(),
    };
    assert_eq!(
        get(&host, "a"),
        Reply::Count("1".into(), 4),
        "old version still serving"
    );
    assert_eq!(host.version_of("tp").as_deref(), Some("1"));

    // And a good build after the bad one is picked up.
    dir.install(&build(&Variant::of("v2")));
    let r = next_reload(&rx, RELOAD_WAIT).expect("reload after the bad build");
    assert_eq!(r.outcome, ReloadOutcome::Ok, "{r:?}");
    assert_eq!(get(&host, "a"), Reply::Count("2".into(), 4));
    reason
}

#[test]
fn a_library_built_against_an_incompatible_plugin_api_is_refused() {
    let bad = build(&Variant {
        api_version: Some("0.2.0"),
        ..Variant::of("v2")
    });
    let reason = refused_while_v1_runs(|d| d.install(&bad));
    assert!(reason.contains("incompatible plugin-api"), "{reason}");
    assert!(
        reason.contains("0.2.0") && reason.contains("0.1.0"),
        "names both versions: {reason}"
    );
}

#[test]
fn a_library_built_with_panic_abort_is_refused() {
    let bad = build(&Variant {
        panic_abort: true,
        ..Variant::of("v2")
    });
    let reason = refused_while_v1_runs(|d| d.install(&bad));
    assert!(reason.contains("panic = \"abort\""), "{reason}");
}

#[test]
fn a_truncated_library_is_refused() {
    let v2 = std::fs::read(build(&Variant::of("v2"))).unwrap();
    let reason = refused_while_v1_runs(|d| d.write_raw(&v2[..v2.len() / 3]));
    assert!(reason.contains("libtp.so"), "names the file: {reason}");
    assert!(
        reason.contains("ELF") || reason.contains("cannot load"),
        "says what is wrong: {reason}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let reason = refused_while_v1_runs(|d| d.write_raw(b"this is not a shared library\n"));
    assert!(reason.to_lowercase().contains("elf"), "{reason}");
}

#[test]
fn a_new_version_that_drops_a_behaviour_is_refused() {
    let renamed = build(&Variant::of("v2_renamed"));
    let reason = refused_while_v1_runs(|d| d.install(&renamed));
    assert!(
        reason.contains("no longer exports behaviour `tp`"),
        "{reason}"
    );
}

#[test]
fn bad_input_through_the_api_gets_clear_errors() {
    let v1 = build(&Variant::of("v1"));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, _rx) = start(&dir);

    let e = host.spawn_with("nope", None, &()).unwrap_err().to_string();
    assert!(
        e.contains("unknown behaviour `nope`") && e.contains("tp"),
        "{e}"
    );

    let e = host
        .spawn_with("tp", None, &("not", "unit"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("init args"), "{e}");

    host.spawn_with("tp", Some("a"), &()).unwrap();
    let e = host
        .spawn_with("tp", Some("a"), &())
        .unwrap_err()
        .to_string();
    assert!(e.contains("already_started"), "{e}");

    let e = host
        .call_as::<_, Reply>(host::Target::Name("ghost"), &Call::Get, T)
        .unwrap_err()
        .to_string();
    assert!(e.contains("noproc") && e.contains("ghost"), "{e}");

    // A message the behaviour cannot decode is refused; the actor carries on.
    let e = host
        .call(
            host::Target::Name("a"),
            plugin_api::etf::to_vec(&"garbage").unwrap(),
            T,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad message"), "{e}");
    assert_eq!(get(&host, "a"), Reply::Count("1".into(), 0));

    // A missing plugin directory stops the start with its name.
    let e = host::Host::start(host::HostOptions {
        plugin_dirs: vec!["/nonexistent/plugins".into()],
        ..Default::default()
    })
    .err()
    .expect("refused")
    .to_string();
    assert!(e.contains("/nonexistent/plugins"), "{e}");
    let _ = Duration::ZERO;
}

#[test]
fn the_loader_itself_refuses_bad_files_with_their_reason() {
    // The watcher filters most of these before the loader sees them; a manual reload (and
    // later `host ctl reload PATH`) goes straight to the loader, so it must refuse them too.
    let scratch = PluginDir::new();
    let copies = PluginDir::new();
    let v1 = std::fs::read(build(&Variant::of("v1"))).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("empty", Vec::new(), "is empty"),
        ("text", b"hello".to_vec(), "not a shared library"),
        (
            "truncated",
            v1[..v1.len() / 3].to_vec(),
            "incomplete ELF file",
        ),
    ];
    for (what, bytes, expect) in cases {
        let p = scratch.path().join(format!("lib{what}.so"));
        std::fs::write(&p, bytes).unwrap();
        let e = host::code::loader::load(&p, &copies.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains(expect) && e.contains(&format!("lib{what}.so")),
            "{what}: {e}"
        );
    }
    let e = host::code::loader::load(&scratch.path().join("libmissing.so"), &copies.path())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("cannot read") && e.contains("libmissing.so"),
        "{e}"
    );
}

/// `libraries` picks what to load from a directory shared with other crates' libraries
/// (`target/debug`): the others are neither loaded nor refused, and a named library that
/// is not there stops the start with its name.
#[test]
fn only_the_named_libraries_are_loaded_from_a_shared_directory() {
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    // Another crate's library beside it (here a copy, which would clash if loaded).
    std::fs::copy(dir.lib(), dir.path().join("libother.so")).unwrap();
    let start = |libraries: Vec<&str>| {
        host::Host::start(host::HostOptions {
            threads: 2,
            plugin_dirs: vec![dir.path()],
            libraries: Some(libraries.into_iter().map(String::from).collect()),
            watch: None,
            ..Default::default()
        })
    };
    let host = start(vec!["tp"]).expect("starts");
    assert_eq!(host.behaviour_names(), vec!["tp".to_string()]);
    assert_eq!(host.versions().len(), 1, "libother.so was not loaded");
    assert_eq!(host.stats().reloads_rejected, 0, "nor refused");
    drop(host);
    let e = start(vec!["tp", "nope"])
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("`nope` (libnope.so)"), "{e}");
}
