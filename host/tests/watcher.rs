//! Watcher tests against real files in temp dirs and the real `notify` watcher.
//!
//! Counts are exact: after the expected events arrive, `quiet` drains the channel until it
//! has been silent for a while and the test asserts nothing else came.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, RecvTimeoutError};
use host::code::watcher::{
    hash_file, is_plugin_artifact, scan, Artifact, ContentHash, WatchConfig, WatchError,
    WatchEvent, Watcher,
};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// A minimal but well-formed ELF64 image: header, payload, and one section header at the
/// end that the header points to (as a linker lays it out).
fn fake_elf(payload: &[u8]) -> Vec<u8> {
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 2; // ELFCLASS64
    header[5] = 1; // little endian
    header[6] = 1; // EV_CURRENT
    let shoff = (64 + payload.len()) as u64;
    header[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    header[0x34..0x36].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    header[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    header[0x3C..0x3E].copy_from_slice(&1u16.to_le_bytes()); // e_shnum
    let mut bytes = header;
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

fn hash(bytes: &[u8]) -> ContentHash {
    *blake3::hash(bytes).as_bytes()
}

struct Fixture {
    _tmp: TempDir,
    dir: PathBuf,
    rx: Receiver<WatchEvent>,
    watcher: Watcher,
}

fn start_with(cfg: WatchConfig) -> Fixture {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("plugins");
    fs::create_dir(&dir).unwrap();
    let (tx, rx) = unbounded();
    let watcher =
        Watcher::start(std::slice::from_ref(&dir), is_plugin_artifact, &[], cfg, tx).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        rx,
        watcher,
    }
}

fn start() -> Fixture {
    start_with(WatchConfig::default())
}

/// A config that gives up quickly, for tests that wait for a rejection.
fn quick_reject() -> WatchConfig {
    WatchConfig {
        give_up_after: Duration::from_millis(400),
        ..WatchConfig::default()
    }
}

fn recv(rx: &Receiver<WatchEvent>) -> WatchEvent {
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|e| panic!("no watch event within {WAIT:?}: {e}"))
}

fn expect_changed(rx: &Receiver<WatchEvent>, path: &Path, bytes: &[u8]) -> Artifact {
    match recv(rx) {
        WatchEvent::Changed(a) => {
            assert_eq!(a.path, path);
            assert_eq!(a.hash, hash(bytes), "hash of {}", path.display());
            assert_eq!(a.len, bytes.len() as u64);
            a
        }
        other => panic!("expected Changed({}), got {other:?}", path.display()),
    }
}

/// Everything that arrives until the channel has been silent for `QUIET`.
fn quiet(rx: &Receiver<WatchEvent>) -> Vec<WatchEvent> {
    let mut events = Vec::new();
    loop {
        match rx.recv_timeout(QUIET) {
            Ok(e) => events.push(e),
            Err(RecvTimeoutError::Timeout) => return events,
            Err(RecvTimeoutError::Disconnected) => panic!("watcher stopped"),
        }
    }
}

fn assert_quiet(rx: &Receiver<WatchEvent>) {
    let events = quiet(rx);
    assert!(events.is_empty(), "unexpected events: {events:?}");
}

/// What cargo does: link elsewhere, remove the target, hard-link the new file in.
fn cargo_style(dir: &Path, name: &str, bytes: &[u8]) {
    let deps = dir.join("deps");
    fs::create_dir_all(&deps).unwrap();
    let staged = deps.join(format!("{name}-{:x}", rand_suffix()));
    fs::write(&staged, bytes).unwrap();
    let target = dir.join(name);
    let _ = fs::remove_file(&target);
    fs::hard_link(&staged, &target).unwrap();
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn new_artifact_is_reported_once_with_its_hash() {
    let f = start();
    let path = f.dir.join("libcounter.so");
    let bytes = fake_elf(b"counter v1");
    fs::write(&path, &bytes).unwrap();
    let a = expect_changed(&f.rx, &path, &bytes);
    assert_eq!(a.hash, hash_file(&path).unwrap());
    assert_quiet(&f.rx);
}

#[test]
fn hand_made_elf_without_a_real_header_is_accepted() {
    // Bytes after the magic that do not form an ELF header are the loader's problem.
    let f = start();
    let path = f.dir.join("libplain.so");
    let bytes = b"\x7fELF plain payload".to_vec();
    fs::write(&path, &bytes).unwrap();
    expect_changed(&f.rx, &path, &bytes);
    assert_quiet(&f.rx);
}

#[test]
fn identical_rewrites_and_relinks_are_silent() {
    let f = start();
    let path = f.dir.join("libecho.so");
    let bytes = fake_elf(b"echo v1");
    fs::write(&path, &bytes).unwrap();
    expect_changed(&f.rx, &path, &bytes);

    fs::write(&path, &bytes).unwrap();
    assert_quiet(&f.rx);

    cargo_style(&f.dir, "libecho.so", &bytes);
    assert_quiet(&f.rx);
}

#[test]
fn delete_then_recreate_reports_removed_then_changed() {
    let f = start();
    let path = f.dir.join("libpay.so");
    let v1 = fake_elf(b"pay v1");
    fs::write(&path, &v1).unwrap();
    expect_changed(&f.rx, &path, &v1);

    fs::remove_file(&path).unwrap();
    match recv(&f.rx) {
        WatchEvent::Removed { path: p } => assert_eq!(p, path),
        other => panic!("expected Removed, got {other:?}"),
    }

    let v2 = fake_elf(b"pay v2");
    fs::write(&path, &v2).unwrap();
    expect_changed(&f.rx, &path, &v2);
    assert_quiet(&f.rx);

    // cargo's remove + hard link of new content: exactly one Changed, no Removed.
    let v3 = fake_elf(b"pay v3");
    cargo_style(&f.dir, "libpay.so", &v3);
    expect_changed(&f.rx, &path, &v3);
    assert_quiet(&f.rx);
}

#[test]
fn removing_an_unreported_file_reports_nothing() {
    let f = start_with(quick_reject());
    let path = f.dir.join("libtmp.so");
    fs::write(&path, b"\x7fELF").unwrap();
    fs::remove_file(&path).unwrap();
    assert_quiet(&f.rx);
}

/// Writes `bytes` to `path` in `chunks` pieces with `gap` between them, flushing each.
fn write_slowly(path: &Path, bytes: &[u8], chunks: usize, gap: Duration) {
    let mut file = fs::File::create(path).unwrap();
    for piece in bytes.chunks(bytes.len().div_ceil(chunks)) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        sleep(gap);
    }
}

#[test]
fn slow_chunked_write_is_reported_once_with_the_final_hash() {
    // Gaps longer than debounce + settle: the partial file does look settled, and only
    // the ELF completeness check keeps it from being reported.
    let f = start();
    let path = f.dir.join("libslow.so");
    let bytes = fake_elf(&vec![0xabu8; 256 * 1024]);
    write_slowly(&path, &bytes, 5, Duration::from_millis(50));
    expect_changed(&f.rx, &path, &bytes);
    assert_quiet(&f.rx);
}

#[test]
fn slow_copy_of_a_real_elf_is_reported_once_with_the_final_hash() {
    // The test binary itself is a real ELF laid out by a real linker.
    let exe = fs::read(std::env::current_exe().unwrap()).unwrap();
    let f = start();
    let path = f.dir.join("libreal.so");
    write_slowly(&path, &exe, 4, Duration::from_millis(60));
    expect_changed(&f.rx, &path, &exe);
    assert_quiet(&f.rx);
}

fn expect_rejected(rx: &Receiver<WatchEvent>, path: &Path, needle: &str) {
    match recv(rx) {
        WatchEvent::Rejected { path: p, reason } => {
            assert_eq!(p, path);
            assert!(
                reason.contains(needle),
                "reason {reason:?} lacks {needle:?}"
            );
        }
        other => panic!("expected Rejected({}), got {other:?}", path.display()),
    }
}

#[test]
fn non_elf_and_empty_files_are_rejected() {
    let f = start_with(quick_reject());
    let text = f.dir.join("libtext.so");
    fs::write(&text, b"hello, not a library").unwrap();
    expect_rejected(&f.rx, &text, "not an ELF file");
    assert_quiet(&f.rx);

    let empty = f.dir.join("libempty.so");
    fs::write(&empty, b"").unwrap();
    expect_rejected(&f.rx, &empty, "empty file");
    assert_quiet(&f.rx);
}

#[test]
fn default_config_rejects_after_retrying() {
    let f = start();
    let path = f.dir.join("libbad.so");
    let t0 = Instant::now();
    fs::write(&path, b"MZ definitely not ELF").unwrap();
    expect_rejected(&f.rx, &path, "not an ELF file");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "gave up after {took:?}"
    );
    assert_quiet(&f.rx);
}

#[test]
fn truncated_real_elf_is_rejected_as_incomplete() {
    let exe = fs::read(std::env::current_exe().unwrap()).unwrap();
    let f = start_with(quick_reject());
    let path = f.dir.join("libcut.so");
    fs::write(&path, &exe[..exe.len() / 2]).unwrap();
    expect_rejected(&f.rx, &path, "incomplete ELF");
    assert_quiet(&f.rx);
}

#[test]
fn directories_and_dangling_symlinks_are_rejected_symlinks_followed() {
    let f = start_with(quick_reject());
    let d = f.dir.join("libdir.so");
    fs::create_dir(&d).unwrap();
    expect_rejected(&f.rx, &d, "directory");

    let dangling = f.dir.join("libdangling.so");
    std::os::unix::fs::symlink(f.dir.join("nowhere"), &dangling).unwrap();
    expect_rejected(&f.rx, &dangling, "dangling symlink");
    assert_quiet(&f.rx);

    // A symlink to a real artifact outside the dir is followed.
    let real = f.dir.parent().unwrap().join("real.so");
    let bytes = fake_elf(b"linked");
    fs::write(&real, &bytes).unwrap();
    let link = f.dir.join("liblinked.so");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    expect_changed(&f.rx, &link, &bytes);
    assert_quiet(&f.rx);
}

#[test]
fn files_not_matching_the_filter_are_ignored() {
    let f = start();
    let bytes = fake_elf(b"ignored");
    fs::write(f.dir.join("notes.txt"), &bytes).unwrap();
    fs::write(f.dir.join("libx.so.tmp"), &bytes).unwrap();
    fs::write(f.dir.join("counter.so"), &bytes).unwrap();
    fs::create_dir(f.dir.join("sub")).unwrap();
    fs::write(f.dir.join("sub").join("libnested.so"), &bytes).unwrap();
    assert_quiet(&f.rx);
}

#[test]
fn burst_of_rebuilds_ends_with_the_newest_content() {
    let f = start();
    let path = f.dir.join("libburst.so");
    let versions: Vec<Vec<u8>> = (0..10)
        .map(|i| fake_elf(format!("burst v{i} {}", "x".repeat(i * 1000)).as_bytes()))
        .collect();
    for (i, v) in versions.iter().enumerate() {
        if i % 2 == 0 {
            fs::write(&path, v).unwrap();
        } else {
            cargo_style(&f.dir, "libburst.so", v);
        }
        sleep(Duration::from_millis(100));
    }
    let last = versions.last().unwrap();
    let mut events = vec![recv(&f.rx)];
    events.extend(quiet(&f.rx));
    let written: Vec<ContentHash> = versions.iter().map(|v| hash(v)).collect();
    for e in &events {
        match e {
            // Every report is one of the versions written, never a partial file.
            WatchEvent::Changed(a) => assert!(written.contains(&a.hash), "partial: {e:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    match events.last().unwrap() {
        WatchEvent::Changed(a) => assert_eq!(a.hash, hash(last)),
        other => panic!("last event {other:?}"),
    }
}

#[test]
fn two_quick_rebuilds_report_the_newest_last() {
    let f = start();
    let path = f.dir.join("libquick.so");
    let v1 = fake_elf(b"quick v1");
    let v2 = fake_elf(b"quick v2");
    cargo_style(&f.dir, "libquick.so", &v1);
    sleep(Duration::from_millis(5));
    cargo_style(&f.dir, "libquick.so", &v2);
    let mut events = vec![recv(&f.rx)];
    events.extend(quiet(&f.rx));
    match events.last().unwrap() {
        WatchEvent::Changed(a) => {
            assert_eq!(a.path, path);
            assert_eq!(a.hash, hash(&v2));
        }
        other => panic!("last event {other:?}"),
    }
}

#[test]
fn missing_dir_is_an_error_naming_it() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("no-such-plugins");
    let (tx, _rx) = unbounded();
    let err = Watcher::start(
        &[tmp.path().to_path_buf(), missing.clone()],
        is_plugin_artifact,
        &[],
        WatchConfig::default(),
        tx,
    )
    .unwrap_err();
    assert!(
        matches!(&err, WatchError::MissingDir(p) if *p == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("no-such-plugins"), "{err}");

    let err = scan(std::slice::from_ref(&missing), is_plugin_artifact).unwrap_err();
    assert!(
        matches!(&err, WatchError::MissingDir(p) if *p == missing),
        "{err:?}"
    );
}

#[test]
fn removed_and_recreated_dir_is_watched_again() {
    let f = start();
    let path = f.dir.join("libphoenix.so");
    let v1 = fake_elf(b"phoenix v1");
    fs::write(&path, &v1).unwrap();
    expect_changed(&f.rx, &path, &v1);

    fs::remove_dir_all(&f.dir).unwrap();
    match recv(&f.rx) {
        WatchEvent::Removed { path: p } => assert_eq!(p, path),
        other => panic!("expected Removed, got {other:?}"),
    }
    fs::create_dir(&f.dir).unwrap();
    let v2 = fake_elf(b"phoenix v2");
    fs::write(&path, &v2).unwrap();
    expect_changed(&f.rx, &path, &v2);
    assert_quiet(&f.rx);

    // And the new watch keeps working for later changes.
    let v3 = fake_elf(b"phoenix v3");
    cargo_style(&f.dir, "libphoenix.so", &v3);
    expect_changed(&f.rx, &path, &v3);
    assert_quiet(&f.rx);
}

#[test]
fn dir_replaced_instantly_is_watched_again() {
    // Remove and recreate within microseconds: the watch is on a dead inode, and only
    // the directory identity check notices.
    let f = start();
    fs::remove_dir_all(&f.dir).unwrap();
    fs::create_dir(&f.dir).unwrap();
    sleep(Duration::from_millis(50));
    let path = f.dir.join("libswift.so");
    let bytes = fake_elf(b"swift");
    fs::write(&path, &bytes).unwrap();
    expect_changed(&f.rx, &path, &bytes);
    assert_quiet(&f.rx);
}

#[test]
fn dir_renamed_away_and_replaced_is_watched_again() {
    let f = start();
    let path = f.dir.join("libmoved.so");
    let v1 = fake_elf(b"moved v1");
    fs::write(&path, &v1).unwrap();
    expect_changed(&f.rx, &path, &v1);

    // The old watch follows the renamed directory; writes there must not be reported
    // under the old path, and the artifact is gone from the watched path.
    let old = f.dir.with_extension("old");
    fs::rename(&f.dir, &old).unwrap();
    match recv(&f.rx) {
        WatchEvent::Removed { path: p } => assert_eq!(p, path),
        other => panic!("expected Removed, got {other:?}"),
    }
    fs::write(old.join("libmoved.so"), fake_elf(b"in the old dir")).unwrap();
    assert_quiet(&f.rx);

    fs::create_dir(&f.dir).unwrap();
    let v2 = fake_elf(b"moved v2");
    fs::write(&path, &v2).unwrap();
    expect_changed(&f.rx, &path, &v2);
    assert_quiet(&f.rx);
}

#[test]
fn relink_is_reported_well_within_the_latency_budget() {
    let f = start();
    let path = f.dir.join("libfast.so");
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let bytes = fake_elf(format!("fast v{i}").as_bytes());
        let t0 = Instant::now();
        cargo_style(&f.dir, "libfast.so", &bytes);
        expect_changed(&f.rx, &path, &bytes);
        worst = worst.max(t0.elapsed());
        sleep(Duration::from_millis(20));
    }
    eprintln!("worst relink-to-report latency: {worst:?}");
    // debounce 30 ms + settle 10 ms + hashing; generous bound for loaded CI machines.
    assert!(worst < Duration::from_millis(500), "{worst:?}");
}

#[test]
fn scan_then_start_with_known_reports_only_real_changes() {
    let tmp = TempDir::new().unwrap();
    let a_dir = tmp.path().join("a");
    let b_dir = tmp.path().join("b");
    fs::create_dir(&a_dir).unwrap();
    fs::create_dir(&b_dir).unwrap();
    let one = fake_elf(b"one");
    let two = fake_elf(b"two");
    fs::write(a_dir.join("libone.so"), &one).unwrap();
    fs::write(b_dir.join("libtwo.so"), &two).unwrap();
    fs::write(b_dir.join("libjunk.so"), b"junk").unwrap();
    fs::write(b_dir.join("readme.md"), &one).unwrap();

    let dirs = vec![a_dir.clone(), b_dir.clone()];
    let t0 = Instant::now();
    let found = scan(&dirs, is_plugin_artifact).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "scan took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        found,
        vec![
            Artifact {
                path: a_dir.join("libone.so"),
                hash: hash(&one),
                len: one.len() as u64
            },
            Artifact {
                path: b_dir.join("libtwo.so"),
                hash: hash(&two),
                len: two.len() as u64
            },
        ]
    );

    let (tx, rx) = unbounded();
    let cfg = quick_reject();
    let _w = Watcher::start(&dirs, is_plugin_artifact, &found, cfg, tx).unwrap();
    // The known artifacts are not reported again; the junk that scan skipped is looked
    // at once more and rejected.
    expect_rejected(&rx, &b_dir.join("libjunk.so"), "not an ELF file");
    assert_quiet(&rx);

    let one_v2 = fake_elf(b"one v2");
    cargo_style(&a_dir, "libone.so", &one_v2);
    expect_changed(&rx, &a_dir.join("libone.so"), &one_v2);
    assert_quiet(&rx);
}

#[test]
fn change_between_scan_and_start_is_reported() {
    let f = start();
    let path = f.dir.join("librace.so");
    drop(f.watcher);
    let v1 = fake_elf(b"race v1");
    fs::write(&path, &v1).unwrap();
    let found = scan(std::slice::from_ref(&f.dir), is_plugin_artifact).unwrap();
    let v2 = fake_elf(b"race v2");
    fs::write(&path, &v2).unwrap();

    let (tx, rx) = unbounded();
    let _w = Watcher::start(
        std::slice::from_ref(&f.dir),
        is_plugin_artifact,
        &found,
        WatchConfig::default(),
        tx,
    )
    .unwrap();
    expect_changed(&rx, &path, &v2);
    assert_quiet(&rx);
}

#[test]
fn mark_known_suppresses_the_report() {
    let f = start();
    let path = f.dir.join("libmanual.so");
    let bytes = fake_elf(b"manual");
    f.watcher.mark_known(&Artifact {
        path: path.clone(),
        hash: hash(&bytes),
        len: bytes.len() as u64,
    });
    fs::write(&path, &bytes).unwrap();
    assert_quiet(&f.rx);

    let v2 = fake_elf(b"manual v2");
    fs::write(&path, &v2).unwrap();
    expect_changed(&f.rx, &path, &v2);
}

#[test]
fn dropping_the_watcher_joins_it_and_closes_the_channel() {
    let Fixture {
        _tmp,
        dir,
        rx,
        watcher,
        ..
    } = start();
    let t0 = Instant::now();
    drop(watcher);
    assert!(t0.elapsed() < Duration::from_secs(1));
    fs::write(dir.join("libafter.so"), fake_elf(b"after")).unwrap();
    // The worker held the only sender: once it is joined, the channel is disconnected.
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(200)).unwrap_err(),
        RecvTimeoutError::Disconnected
    );
}
