//! Plugin logs and panic messages reach the host's `tracing` subscriber through the ABI
//! callback, tagged with behaviour, version and actor, and keep working across reloads —
//! also after the version that logged first was unloaded (a callsite pointing into it
//! would crash the subscriber here).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use e2e::{next_reload, wait_for, PluginDir, Variant};
use host::{HostEvent, ReloadOutcome, VersionPolicy};

/// A writer into a shared buffer, for the JSON log lines.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The plugin log line with this message, once it is there.
    fn line(&self, message: &str) -> serde_json::Value {
        for _ in 0..200 {
            if let Some(l) = self
                .lines()
                .into_iter()
                .find(|l| l["fields"]["message"] == message)
            {
                return l;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no log line {message:?} in {:?}", self.lines());
    }
}

#[test]
fn plugin_logs_carry_actor_behaviour_and_version_across_reloads_and_unloads() {
    let sink = Sink::default();
    let writer = sink.clone();
    tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .init();

    let dir = PluginDir::new();
    dir.install(&e2e::build(&Variant::of("v1")));
    let (host, rx) = start_with(
        &dir,
        VersionPolicy {
            unload: true,
            retain: 0,
            ..VersionPolicy::default()
        },
    );
    let a = host.spawn_with("tp", Some("a"), &()).unwrap().0;
    let first = sink.line("tp 1 started");
    assert_eq!(first["target"], "plugin");
    assert_eq!(first["fields"]["actor"], a);
    assert_eq!(first["fields"]["behaviour"], "tp");
    assert_eq!(first["fields"]["version"], "1");

    dir.install(&e2e::build(&Variant::of("v2")));
    let r = next_reload(&rx, RELOAD_WAIT).expect("a reload");
    assert_eq!(r.outcome, ReloadOutcome::Ok);
    wait_for(
        &rx,
        RELOAD_WAIT,
        |e| matches!(e, HostEvent::Version(v) if v.fate.event_name() == "version_unloaded"),
    )
    .expect("version 1 unloaded");

    // A new actor on version 2 logs through the same subscriber, tagged with its version.
    let b = host.spawn_with("tp", Some("b"), &()).unwrap().0;
    let second = sink.line("tp 2 started");
    assert_eq!(second["fields"]["actor"], b);
    assert_eq!(second["fields"]["version"], "2");

    // A panic's message and location arrive in the crash event and its log line.
    crash(&host, "a");
    let crash_line = (0..200)
        .find_map(|_| {
            let found = sink
                .lines()
                .into_iter()
                .find(|l| l["fields"]["event"] == "crash");
            if found.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            found
        })
        .expect("a crash line");
    assert_eq!(crash_line["fields"]["actor"], a);
    assert_eq!(crash_line["fields"]["version"], "2");
    let panic = crash_line["fields"]["panic"].as_str().unwrap();
    assert!(panic.contains("tp.rs"), "the location is kept: {panic}");
}
