//! Shared by the e2e test files: the test plugin's messages as a client sees them, and
//! host setup.
#![allow(dead_code)]

use std::time::Duration;

use e2e::PluginDir;
use host::code::watcher::WatchConfig;
use host::{Host, HostEvent, HostOptions, Target};
use serde::{Deserialize, Serialize};

pub const T: Duration = Duration::from_secs(5);
/// Long enough for a build + settle + reload on a loaded 2-core machine.
pub const RELOAD_WAIT: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Call {
    Get,
    Seq(u64),
    Stats,
    Panic,
    Stop,
    StopSilently,
    Later(u64),
    Blast(String, u64),
    PingPong(String, u64),
    TimerTo(String, u64),
    Cancel(u64),
    Interval(String, u64),
    Link(String),
    Unlink(String),
    TrapExit(bool),
    Monitor(String),
    Demonitor(u64),
    ExitTo(String, plugin_api::Reason),
    Inbox,
    Monitors(String, u64),
    Links(String, u64),
    StartChild(String),
    SpawnLink(String),
    Thread(u64),
    SpawnLinks(String, u64),
    SpawnLinksAndPanic(String, u64),
    TimersToSelf(u64, u64),
    Stream(String, u64, u64, u64),
    StartChildWith(String, InitArgs),
    SpawnLinkWith(String, InitArgs),
}

/// The test plugin's init args.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum InitArgs {
    Ok,
    Panic,
    Fail,
    /// `init` sleeps this many milliseconds.
    Sleep(u64),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Reply {
    Count(String, u64),
    Seq(u64),
    Stats {
        version: String,
        count: u64,
        disorder: u64,
    },
    Stopping,
    Timer(u64),
    Cancelled(bool),
    Inbox(Vec<String>),
    Done,
    Ok(u64),
    Error(String),
}

#[derive(Serialize, Deserialize, Debug)]
pub enum Cast {
    Incr(u64),
    Seq(u64),
}

#[derive(Serialize, Deserialize, Debug)]
pub enum Info {
    Panic,
    Bump,
}

/// A host watching `dir`, and its event stream.
pub fn start(dir: &PluginDir) -> (Host, crossbeam_channel::Receiver<HostEvent>) {
    start_with(dir, host::VersionPolicy::default())
}

/// A host watching `dir` with this version policy, and its event stream.
pub fn start_with(
    dir: &PluginDir,
    versions: host::VersionPolicy,
) -> (Host, crossbeam_channel::Receiver<HostEvent>) {
    let host = Host::start(HostOptions {
        threads: 2,
        plugin_dirs: vec![dir.path()],
        libraries: None,
        watch: Some(WatchConfig::default()),
        versions,
        ..Default::default()
    })
    .expect("host starts");
    let rx = host.subscribe();
    (host, rx)
}

pub fn get(host: &Host, who: &str) -> Reply {
    host.call_as(Target::Name(who), &Call::Get, T)
        .expect("get answers")
}

pub fn cast(host: &Host, who: &str, msg: &Cast) {
    host.cast(Target::Name(who), plugin_api::etf::to_vec(msg).unwrap())
        .expect("cast")
}

/// A host watching a fresh plugin directory with version 1 of the test plugin installed.
pub fn start_v1() -> (PluginDir, Host, crossbeam_channel::Receiver<HostEvent>) {
    let dir = PluginDir::new();
    dir.install(&e2e::build(&e2e::Variant::of("v1")));
    let (host, rx) = start(&dir);
    (dir, host, rx)
}

/// Makes an actor panic in `handle_info`.
pub fn crash(host: &Host, who: &str) {
    host.send(
        Target::Name(who),
        plugin_api::etf::to_vec(&Info::Panic).unwrap(),
    )
    .unwrap();
}

/// Waits until `name` is registered under an id other than `old` (a restart), and
/// returns the new id.
pub fn restarted(host: &Host, name: &str, old: host::ActorId) -> host::ActorId {
    let deadline = std::time::Instant::now() + T;
    loop {
        match host.whereis(name) {
            Some(id) if id != old => return id,
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "{name} restarted");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A host running versions 1 of the `pair` library (behaviours `tp` and `tp2`, one
/// library), with `one` on `tp` and `two` on `tp2`; also returns version 2's artifact.
pub fn start_pair() -> (
    PluginDir,
    Host,
    crossbeam_channel::Receiver<HostEvent>,
    std::path::PathBuf,
) {
    let pair = |feature| e2e::Variant {
        pair: true,
        ..e2e::Variant::of(feature)
    };
    let (v1, v2) = (e2e::build(&pair("v1")), e2e::build(&pair("v2")));
    let dir = PluginDir::new();
    dir.install(&v1);
    let (host, rx) = start(&dir);
    host.spawn_with("tp", Some("one"), &()).unwrap();
    host.spawn_with("tp2", Some("two"), &()).unwrap();
    (dir, host, rx, v2)
}
