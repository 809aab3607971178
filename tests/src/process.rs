//! The real `host` binary as a process, with its control socket, for the tests that drive
//! it with `host ctl` and `host top`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{build, host_bin, PluginDir, Variant};

/// A running `host` process; killed when dropped.
pub struct HostProcess {
    /// The process.
    pub child: Child,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its plugin directory (also where the config and the socket live).
    pub dir: PluginDir,
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config: version 1 of the test plugin, no watcher (reloads are driven by hand), the
/// socket next to it, and a supervisor with two `tp` workers, `a` and `s`.
pub const TWO_WORKERS: &str = r#"plugin_dirs = ["."]
threads = 2

[watch]
enabled = false

[control]
socket = "host.sock"

[supervisor]
name = "root"
strategy = "one_for_one"
intensity = 5

[[supervisor.children]]
behaviour = "tp"
name = "a"

[[supervisor.children]]
behaviour = "tp"
name = "s"
"#;

impl HostProcess {
    /// Starts the host with `config` (written as `host.toml` into a fresh plugin directory
    /// holding version 1 of the test plugin) and waits until its socket answers.
    pub fn start(config: &str) -> HostProcess {
        let dir = PluginDir::new();
        dir.install(&build(&Variant::of("v1")));
        std::fs::write(dir.path().join("host.toml"), config).unwrap();
        let child = Command::new(host_bin())
            .current_dir(dir.path())
            .args(["--config", "host.toml", "--run-for", "300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("host starts");
        let socket = dir.path().join("host.sock");
        let h = HostProcess { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctl(&h.socket, &["list"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "the host never answered on its socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }
}

/// Runs `host ctl --socket SOCKET ARGS...`.
pub fn ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(host_bin())
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run host ctl")
}
