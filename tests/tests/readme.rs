//! README.md, checked block by block, so it cannot drift from the code.
//!
//! Every fenced block with one of these languages is checked; other blocks (log output,
//! the layout, blocks without a language) are prose and are not.
//!
//! - ```` ```toml ````: a host configuration. It is written to a file and read with the
//!   host's own loader (`host::config::Config::load`), then each actor's `args` and the
//!   supervision tree are checked as the host checks them at start (`args_etf`,
//!   `to_spec`). Nothing is started, so plugin directories and behaviours need not exist.
//! - ```` ```rust ````: a plugin. Each block is built with cargo as the `src/lib.rs` of a
//!   `cdylib` crate depending on `plugin-api` by path, and must compile without warnings.
//!   The crates live in `target/readme/` and build in the e2e tests' target directory
//!   (`target/e2e/target`, see `tests/src/lib.rs`), so plugin-api and its dependencies are
//!   compiled once and shared; the wait for cargo is bounded.
//! - ```` ```sh ````: commands. In a block with `$ ` prompts only the prompted lines are
//!   commands (the others are output); otherwise every line is one. Each `host` invocation
//!   (`host`, `target/debug/host`, `cargo run -p host -- ...`) is parsed by the real
//!   binary: `host ctl ...` runs against a socket where no host listens, so it must get
//!   past the argument parser and the term parser and fail only with "no host is
//!   listening" (clap and a malformed term exit 2); anything else runs with `--help`
//!   appended, which clap answers only after accepting every flag and subcommand before
//!   it. `cargo ... -p NAME` must name a workspace package, `cargo install --path DIR` a
//!   package directory, and `scripts/...` an executable file. A command this file does
//!   not know how to check is a failure: teach it rather than leave a line unchecked.
//!
//! **Markers.** An HTML comment on the line just above a fence (blank lines between are
//! allowed) changes how the block is checked. Keep them rare: a reader copies blocks as
//! they are, and most blocks should be complete.
//!
//! - `<!-- fragment -->` above a `toml` block: part of a configuration on purpose (say, a
//!   lone `[versions]` table). It is parsed after a minimal valid configuration,
//!   `plugin_dirs = []`.
//! - `<!-- plugin Cargo.toml -->` above a `toml` block: not a host configuration but the
//!   `[lib]` and `[dependencies]` of a plugin's manifest, as it would read in
//!   `plugins/NAME/Cargo.toml`. Its relative paths must lead from there to real
//!   directories, and it is the manifest every `rust` block is built with (without one, a
//!   manifest naming `plugin-api` and `serde` as the README's example does).
//!
//! A failure names the README line and what was wrong; all failures of a kind are
//! reported together.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{e2e_dir, host_bin, workspace_root};

/// How long a build of one `rust` block may take (plugin-api's dependencies from scratch
/// on a loaded 2-core machine included).
const BUILD_WAIT: Duration = Duration::from_secs(900);
/// How long one `host` invocation may take (it only parses its arguments).
const HOST_WAIT: Duration = Duration::from_secs(20);

const FRAGMENT: &str = "<!-- fragment -->";
const PLUGIN_MANIFEST: &str = "<!-- plugin Cargo.toml -->";
/// What a configuration fragment is parsed after.
const MINIMAL_CONFIG: &str = "plugin_dirs = []\n";

/// A fenced block of the README.
#[derive(Debug, Clone)]
struct Block {
    /// The language: the info string's first word (`toml` of ```` ```toml ````).
    lang: String,
    /// The 1-based line of the opening fence; the block's first line is `fence + 1`.
    fence: usize,
    /// The text between the fences.
    text: String,
    /// The HTML comment just above the fence, if any.
    marker: Option<String>,
}

impl Block {
    /// The README line of the block's `n`-th line (1-based).
    fn line(&self, n: usize) -> usize {
        self.fence + n
    }
}

fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let fence = i + 1;
        let marker = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .filter(|l| l.starts_with("<!--") && l.ends_with("-->"))
            .map(str::to_owned);
        let lang = info
            .split(|c: char| c == ',' || c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_owned();
        let mut text = String::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            text.push_str(lines[i]);
            text.push('\n');
            i += 1;
        }
        out.push(Block {
            lang,
            fence,
            text,
            marker,
        });
        i += 1;
    }
    out
}

fn readme() -> Vec<Block> {
    let path = workspace_root().join("README.md");
    blocks(&fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn report(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{what}:\n{}",
        failures
            .iter()
            .map(|f| format!("  README.md:{f}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cmd` with its output in files, killing it after `wait`.
fn run_bounded(cmd: &mut Command, wait: Duration, scratch: &Path) -> Result<Output, String> {
    fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let (out_path, err_path) = (scratch.join("stdout"), scratch.join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).map_err(|e| e.to_string())?)
        .stderr(fs::File::create(&err_path).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let deadline = Instant::now() + wait;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} still running after {wait:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| {
        let mut s = String::new();
        let _ = fs::File::open(p).and_then(|mut f| f.read_to_string(&mut s));
        s
    };
    Ok(Output {
        code: status.code(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    })
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

// --- toml ----------------------------------------------------------------------------------

/// Loads a configuration as the host does; the error names the README line when the
/// loader names a line of the file.
fn check_config(block: &Block, dir: &Path) -> Result<(), String> {
    let fragment = block.marker.as_deref() == Some(FRAGMENT);
    let (prefix, text) = if fragment {
        (MINIMAL_CONFIG, format!("{MINIMAL_CONFIG}{}", block.text))
    } else {
        ("", block.text.clone())
    };
    let path = dir.join("host.toml");
    fs::write(&path, &text).unwrap();
    let located = |e: String| {
        // toml's messages say "at line N, column M" of the file.
        let file_line = e
            .split("line ")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok());
        match file_line {
            Some(n) if n > prefix.lines().count() => format!(
                "{}: the host refuses this config: {e}",
                block.line(n - prefix.lines().count())
            ),
            _ => format!("{}: the host refuses this config: {e}", block.fence),
        }
    };
    let cfg =
        host::config::Config::load(&path).map_err(|e| located(tidy(&e.to_string(), &path)))?;
    for a in &cfg.actors {
        a.args_etf()
            .map_err(|e| format!("{}: the host refuses this config: {e}", block.fence))?;
    }
    if let Some(tree) = &cfg.supervisor {
        tree.to_spec().map_err(|e| {
            format!(
                "{}: the host refuses this config's supervision tree: {e}",
                block.fence
            )
        })?;
    }
    Ok(())
}

/// The loader's message on one line: without the file's name and toml's source excerpt
/// (the README line is named instead), but with the line of the file it points at.
fn tidy(e: &str, path: &Path) -> String {
    let e = e.replace(&format!("{}: ", path.display()), "");
    let mut parts = Vec::new();
    let mut at = None;
    for l in e.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('|') {
            continue;
        }
        if let Some((n, text)) = l.split_once(" | ") {
            if n.chars().all(|c| c.is_ascii_digit()) {
                at = Some(text.trim().to_owned());
                continue;
            }
        }
        parts.push(l.to_owned());
    }
    match at {
        Some(text) => format!("{} (at `{text}`)", parts.join(": ")),
        None => parts.join(": "),
    }
}

#[test]
fn toml_blocks_are_configs_the_host_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for b in readme().iter().filter(|b| b.lang == "toml") {
        if b.marker.as_deref() == Some(PLUGIN_MANIFEST) {
            if let Err(e) = plugin_manifest(b) {
                failures.push(e);
            }
            continue;
        }
        checked += 1;
        if let Err(e) = check_config(b, dir.path()) {
            failures.push(e);
        }
    }
    report("a ```toml block of the README is wrong", failures);
    assert!(checked > 0, "the README has no configuration example");
}

// --- rust ----------------------------------------------------------------------------------

/// The manifest the `rust` blocks are built with, from the README's plugin manifest block:
/// `[package]` prepended and its relative paths made absolute (resolved from
/// `plugins/NAME/`, where the README puts a plugin).
fn plugin_manifest(block: &Block) -> Result<String, String> {
    let root = workspace_root();
    // Any existing plugin directory stands for `plugins/NAME`.
    let here = root.join("plugins").join("counter");
    let mut out = String::new();
    for (n, line) in block.text.lines().enumerate() {
        let mut line = line.to_owned();
        if let Some(start) = line.find("path = \"") {
            let rest = &line[start + 8..];
            let end = rest.find('"').ok_or_else(|| {
                format!("{}: unterminated path in the manifest", block.line(n + 1))
            })?;
            let rel = &rest[..end];
            let abs = here.join(rel).canonicalize().map_err(|e| {
                format!(
                    "{}: `path = \"{rel}\"` leads nowhere from plugins/NAME/: {e}",
                    block.line(n + 1)
                )
            })?;
            if !abs.join("Cargo.toml").is_file() {
                return Err(format!(
                    "{}: `path = \"{rel}\"` from plugins/NAME/ is {}, which is not a crate",
                    block.line(n + 1),
                    abs.display()
                ));
            }
            line = line.replace(&format!("\"{rel}\""), &format!("{:?}", abs.display()));
        }
        out.push_str(&line);
        out.push('\n');
    }
    if !out.contains("cdylib") || !out.contains("plugin-api") {
        return Err(format!(
            "{}: a plugin's manifest makes a `cdylib` and depends on `plugin-api`",
            block.fence
        ));
    }
    Ok(out)
}

fn default_manifest() -> String {
    format!(
        "[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nplugin-api = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n",
        workspace_root().join("plugin-api").display()
    )
}

fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Builds one block as a plugin; errors and warnings point at README lines.
fn build_plugin(block: &Block, index: usize, manifest: &str) -> Result<(), String> {
    let root = workspace_root();
    let krate = format!("readme_block_{index}");
    let dir = root.join("target").join("readme").join(&krate);
    fs::create_dir_all(dir.join("src")).unwrap();
    write_if_changed(
        &dir.join("Cargo.toml"),
        &format!(
            "# README.md line {}, built by tests/tests/readme.rs\n[package]\nname = \"{krate}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n{manifest}\n[workspace]\n",
            block.fence
        ),
    );
    write_if_changed(&dir.join("src").join("lib.rs"), &block.text);
    // The workspace's dependency versions: no registry lookup, same artifacts as the e2e
    // builds. Cargo prunes what this crate does not use.
    let lock = fs::read_to_string(root.join("Cargo.lock")).expect("workspace Cargo.lock");
    write_if_changed(&dir.join("Cargo.lock"), &lock);
    let target = e2e_dir().join("target");
    let out = run_bounded(
        Command::new(cargo())
            .args([
                "build",
                "--quiet",
                "--message-format=short",
                "--manifest-path",
            ])
            .arg(dir.join("Cargo.toml"))
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS"),
        BUILD_WAIT,
        &dir.join("out"),
    )
    .map_err(|e| format!("{}: {e}", block.fence))?;
    // Short messages read `src/lib.rs:LINE:COL: error: ...` for this crate (a path
    // dependency's own warnings name its absolute path and are not the README's).
    let ours: Vec<String> = out
        .stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("src/lib.rs:")?;
            let (n, msg) = rest.split_once(':')?;
            let n: usize = n.parse().ok()?;
            let msg = msg.split_once(": ").map_or(msg, |(_, m)| m);
            Some(format!("{}: {}", block.line(n), msg.trim()))
        })
        .collect();
    if out.code != Some(0) {
        return Err(if ours.is_empty() {
            format!(
                "{}: this plugin does not build:\n{}",
                block.fence, out.stderr
            )
        } else {
            ours.join("\n  README.md:")
        });
    }
    if !ours.is_empty() {
        return Err(format!("{} (warnings)", ours.join("\n  README.md:")));
    }
    let artifact = target.join("debug").join(format!("lib{krate}.so"));
    if !artifact.is_file() {
        return Err(format!(
            "{}: built, but no {} (a plugin is a cdylib)",
            block.fence,
            artifact.display()
        ));
    }
    Ok(())
}

#[test]
fn rust_blocks_build_as_plugins() {
    let all = readme();
    let manifests: Vec<&Block> = all
        .iter()
        .filter(|b| b.lang == "toml" && b.marker.as_deref() == Some(PLUGIN_MANIFEST))
        .collect();
    assert!(
        manifests.len() <= 1,
        "README.md:{}: one plugin manifest block is enough",
        manifests[1].fence
    );
    let manifest = match manifests.first() {
        Some(b) => plugin_manifest(b).unwrap_or_else(|e| panic!("README.md:{e}")),
        None => default_manifest(),
    };
    let rust: Vec<&Block> = all.iter().filter(|b| b.lang == "rust").collect();
    assert!(!rust.is_empty(), "the README has no plugin example");
    let failures = rust
        .iter()
        .enumerate()
        .filter_map(|(i, b)| build_plugin(b, i, &manifest).err())
        .collect();
    report("a ```rust block of the README does not build", failures);
}

// --- sh ------------------------------------------------------------------------------------

/// One simple command of a block: its README line and its words.
#[derive(Debug)]
struct Cmd {
    line: usize,
    words: Vec<String>,
}

/// Splits a shell line into simple commands (at `&&`, `||`, `|`, `;`), drops a `#`
/// comment, and removes quotes. Enough for a README; `$VAR` stays as written.
fn split_shell(line: &str) -> Result<Vec<Vec<String>>, String> {
    let mut cmds = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let push = |cmds: &mut Vec<Vec<String>>, word: &mut Option<String>| {
        if let Some(w) = word.take() {
            cmds.last_mut().unwrap().push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => w.extend(chars.next()),
                        Some(c) => w.push(c),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '#' if word.is_none() => break,
            '&' | '|' | ';' => {
                push(&mut cmds, &mut word);
                if c != ';' && chars.peek() == Some(&c) {
                    chars.next();
                } else if c == '&' {
                    return Err("a background `&`".into());
                }
                cmds.push(Vec::new());
            }
            c if c.is_whitespace() => push(&mut cmds, &mut word),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    push(&mut cmds, &mut word);
    cmds.retain(|c| !c.is_empty());
    Ok(cmds)
}

fn commands(block: &Block) -> Result<Vec<Cmd>, String> {
    let prompted = block.text.lines().any(|l| l.starts_with("$ "));
    let mut out = Vec::new();
    for (n, l) in block.text.lines().enumerate() {
        let line = block.line(n + 1);
        let text = if prompted {
            match l.strip_prefix("$ ") {
                Some(t) => t,
                None => continue,
            }
        } else {
            l
        };
        for mut words in split_shell(text).map_err(|e| format!("{line}: {e} in `{l}`"))? {
            // `VAR=value cmd ...`: the assignments are the environment.
            while words.len() > 1 && is_assignment(&words[0]) {
                words.remove(0);
            }
            out.push(Cmd { line, words });
        }
    }
    Ok(out)
}

fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The workspace's packages: name and directory.
fn packages() -> Vec<(String, PathBuf)> {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
            (
                p["name"].as_str().expect("name").to_owned(),
                manifest
                    .parent()
                    .and_then(|d| d.canonicalize().ok())
                    .expect("a package directory"),
            )
        })
        .collect()
}

struct ShellChecker {
    host: PathBuf,
    packages: Vec<(String, PathBuf)>,
    scratch: tempfile::TempDir,
}

impl ShellChecker {
    fn new() -> ShellChecker {
        ShellChecker {
            host: host_bin(),
            packages: packages(),
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn check(&self, cmd: &Cmd) -> Result<(), String> {
        // Leading `VAR=value` words set the command's environment.
        let skip = cmd
            .words
            .iter()
            .take_while(|x| x.contains('=') && !x.starts_with('-'))
            .count();
        let w = &cmd.words[skip..];
        let Some(program) = w.first().map(String::as_str) else {
            return Ok(());
        };
        let rest = &w[1..];
        match program {
            "host"
            | "target/debug/host"
            | "./target/debug/host"
            | "target/release/host"
            | "./target/release/host" => self.host_args(rest),
            "cargo" => self.cargo(rest),
            "export" => Ok(()),
            // Erlang's own tools (erlang-base), for the distribution section.
            "epmd" | "erl" => Ok(()),
            p if p.starts_with("scripts/") || p.starts_with("./scripts/") => {
                self.script(p.trim_start_matches("./"))
            }
            p => Err(format!(
                "`{p}`: tests/tests/readme.rs does not know how to check this command; \
                 teach it (or write the line as prose)"
            )),
        }
    }

    fn script(&self, path: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let p = workspace_root().join(path);
        let meta = fs::metadata(&p).map_err(|e| format!("{path}: {e}"))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("{path} is not an executable file"));
        }
        Ok(())
    }

    fn package(&self, name: &str) -> Result<(), String> {
        if self.packages.iter().any(|(n, _)| n == name) {
            return Ok(());
        }
        let mut names: Vec<&str> = self.packages.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        Err(format!(
            "`-p {name}`: no such workspace package (there are {})",
            names.join(", ")
        ))
    }

    fn cargo(&self, args: &[String]) -> Result<(), String> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        // `cargo run -p host -- ARGS` runs the host with ARGS.
        let (own, after) = match args.iter().position(|a| a == "--") {
            Some(i) => (&args[..i], Some(&args[i + 1..])),
            None => (args, None),
        };
        let mut runs_host = false;
        let mut it = own.iter().map(String::as_str);
        while let Some(a) = it.next() {
            let package = match a {
                "-p" | "--package" => Some(it.next().ok_or("`-p` without a package")?),
                _ => a.strip_prefix("--package="),
            };
            if let Some(name) = package {
                self.package(name)?;
                runs_host |= name == "host";
            }
            if a == "--path" {
                let dir = it.next().ok_or("`--path` without a directory")?;
                let abs = workspace_root()
                    .join(dir)
                    .canonicalize()
                    .map_err(|e| format!("`--path {dir}`: {e}"))?;
                if !self.packages.iter().any(|(_, d)| *d == abs) {
                    return Err(format!("`--path {dir}` is not a workspace package"));
                }
            }
        }
        match (sub, after) {
            ("run", Some(host_args)) if runs_host => self.host_args(host_args),
            _ => Ok(()),
        }
    }

    /// The host's arguments (after the program name), parsed by the real binary.
    fn host_args(&self, args: &[String]) -> Result<(), String> {
        let shown = format!("host {}", args.join(" "));
        if args.iter().any(|a| a == "ctl") {
            // Against a socket nobody listens on: past clap and the term parser, the only
            // failure left is that no host is running (status 1).
            let absent = self.scratch.path().join("absent.sock");
            let mut argv: Vec<String> = Vec::new();
            let mut it = args.iter();
            while let Some(a) = it.next() {
                if a == "--socket" {
                    it.next();
                } else if !a.starts_with("--socket=") {
                    argv.push(a.clone());
                }
            }
            let out = run_bounded(
                Command::new(&self.host)
                    .arg("--socket")
                    .arg(&absent)
                    .args(&argv),
                HOST_WAIT,
                &self.scratch.path().join("out"),
            )?;
            return match out.code {
                Some(1) if out.stderr.contains("no host is listening") => Ok(()),
                Some(0) => Ok(()),
                _ => Err(format!(
                    "`{shown}` is refused by the host binary (status {:?}): {}",
                    out.code,
                    first_line(&out.stderr)
                )),
            };
        }
        // clap answers `--help` only once every flag and subcommand before it was
        // accepted; an unknown one exits 2 first.
        let out = run_bounded(
            Command::new(&self.host).args(args).arg("--help"),
            HOST_WAIT,
            &self.scratch.path().join("out"),
        )?;
        if out.code == Some(0) && out.stdout.contains("Usage:") {
            Ok(())
        } else {
            Err(format!(
                "`{shown}` is refused by the host binary (status {:?}): {}",
                out.code,
                first_line(&out.stderr)
            ))
        }
    }
}

fn check_sh_blocks(blocks: &[Block], checker: &ShellChecker) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for b in blocks.iter().filter(|b| b.lang == "sh") {
        match commands(b) {
            Ok(cmds) => {
                for c in cmds {
                    checked += 1;
                    if let Err(e) = checker.check(&c) {
                        failures.push(format!("{}: {e}", c.line));
                    }
                }
            }
            Err(e) => failures.push(e),
        }
    }
    (checked, failures)
}

#[test]
fn sh_blocks_name_real_commands_flags_and_packages() {
    let (checked, failures) = check_sh_blocks(&readme(), &ShellChecker::new());
    report("a ```sh block of the README is wrong", failures);
    assert!(checked > 0, "the README shows no commands");
}

// --- the checks themselves -------------------------------------------------------------------

/// What each check must catch, on a made-up README: the mistakes a README makes.
#[test]
fn the_checks_catch_what_they_claim_to() {
    let fake = r#"# A README

```toml
plugin_dirs = ["target/debug"]

[[actors]]
behaviour = "echo"

exit_on_root_failure = true
```

<!-- fragment -->
```toml
[versions]
unload = true
```

```toml
[versions]
unload = true
```

```sh
$ host ctl list --json
$ host ctl lsit
$ host ctl call counter '{incr, 5'
$ host top --sort rate
$ RUST_LOG=debug host --log-format json --run-for 3 && cargo build -p counter -p nosuch
$ target/debug/host --no-such-flag        # a comment
$ scripts/run-demo.sh; scripts/missing.sh
$ cargo install --path host
$ cargo run -p host -- ctl --json stats
$ make demo
```
"#;
    let blocks = blocks(fake);
    let dir = tempfile::tempdir().unwrap();
    let toml: Vec<Result<(), String>> = blocks
        .iter()
        .filter(|b| b.lang == "toml")
        .map(|b| check_config(b, dir.path()))
        .collect();
    // The bug this test was written for: a top-level key after `[[actors]]` is the
    // actor's, and the host refuses it. The README line of the key is named.
    let e = toml[0].as_ref().unwrap_err();
    assert!(
        e.starts_with("9: ") && e.contains("exit_on_root_failure"),
        "{e}"
    );
    assert!(toml[1].is_ok(), "a marked fragment is completed: {toml:?}");
    assert!(
        toml[2].as_ref().unwrap_err().contains("plugin_dirs"),
        "an unmarked fragment is refused: {toml:?}"
    );

    let (checked, failures) = check_sh_blocks(&blocks, &ShellChecker::new());
    assert_eq!(checked, 12, "{failures:#?}");
    let lines: Vec<&str> = failures
        .iter()
        .map(|f| f.split(':').next().unwrap())
        .collect();
    assert_eq!(
        lines,
        ["25", "26", "27", "28", "29", "30", "33"],
        "{failures:#?}"
    );
    for (f, what) in failures.iter().zip([
        "lsit",
        "malformed term",
        "--sort",
        "nosuch",
        "--no-such-flag",
        "scripts/missing.sh",
        "make",
    ]) {
        assert!(f.contains(what), "{f} should mention {what}");
    }
}

/// The rust check names the README line of an error, and of a warning in an example that
/// otherwise builds.
#[test]
fn the_rust_check_names_the_readme_line() {
    let fake = "# A README\n\n```rust\npub fn f() -> u32 {\n    \"four\"\n}\n```\n\n```rust\npub fn g() {\n    let unused = 4;\n}\n```\n";
    let blocks = blocks(fake);
    // Indices of their own: these crates never share a directory with the README's.
    let error = build_plugin(&blocks[0], 1000, &default_manifest()).unwrap_err();
    assert!(
        error.starts_with("5: ") && error.contains("mismatched types"),
        "{error}"
    );
    let warning = build_plugin(&blocks[1], 1001, &default_manifest()).unwrap_err();
    assert!(
        warning.starts_with("11: ") && warning.contains("unused"),
        "{warning}"
    );
}

/// The README's "Log events" table names exactly the events the host writes
/// (`host::observe::events::EVENT_NAMES`, the one module that writes them), so the table
/// and the code cannot drift apart.
#[test]
fn the_log_event_table_lists_exactly_the_events_the_host_writes() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("## Log events")
        .nth(1)
        .expect("a Log events section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap_or("");
        for name in first_cell.split('`').skip(1).step_by(2) {
            documented.insert(name.to_string());
        }
    }
    let written: std::collections::BTreeSet<String> = host::observe::events::EVENT_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let missing: Vec<_> = written.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&written).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README's event table is out of date: not documented {missing:?}; documented but never written {extra:?}"
    );
}
