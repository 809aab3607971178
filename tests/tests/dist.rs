//! The host as a node of a real Erlang cluster: a real `erl` (Debian's `erlang-base`)
//! against the real `host` binary on loopback. Each test starts its own EPMD on a free
//! port, with unique node names and cookie; every wait is bounded and every process is
//! stopped by pid. Skipped, with the reason printed, when `erl` is not installed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use e2e::{build, host_bin, PluginDir, Variant};

fn have_erl() -> bool {
    let ok = Command::new("erl")
        .args(["-noshell", "-eval", "halt()."])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: `erl` is not installed (apt-get install erlang-base)");
    }
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A child process killed (by pid) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One test's cluster: its own EPMD, a host node with two `tp` actors (`a` = actor 1,
/// `b` = actor 2), and a cookie.
struct Cluster {
    epmd_port: u16,
    cookie: String,
    host_name: String,
    host: Option<Proc>,
    creation: u64,
    log: PathBuf,
    /// `net_ticktime` of the erl nodes (they must tick as often as the host expects).
    erl_ticktime: u32,
    _epmd: Proc,
    _dir: PluginDir,
}

const CONFIG: &str = r#"plugin_dirs = ["."]
threads = 2
log_format = "json"

[watch]
enabled = false

[control]
socket = "host.sock"

[[actors]]
behaviour = "tp"
name = "a"

[[actors]]
behaviour = "tp"
name = "b"
"#;

fn spawn_host(dir: &PluginDir, name: &str, cookie: &str, epmd_port: u16, log: &PathBuf) -> Proc {
    let host = Command::new(host_bin())
        .current_dir(dir.path())
        .args(["--config", "host.toml", "--run-for", "120"])
        .args(["--name", name, "--cookie", cookie])
        .args(["--epmd-port", &epmd_port.to_string()])
        .arg("--socket")
        .arg(log.with_extension("sock"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("host starts");
    Proc(host)
}

/// Waits for the first event named `event` in a host's JSON log.
fn wait_log_in(log: &PathBuf, event: &str, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                let fields = v.get("fields").cloned().unwrap_or(v.clone());
                if fields.get("event").and_then(|e| e.as_str()) == Some(event) {
                    return fields;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no `{event}` in the host's log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    fn start() -> Cluster {
        Cluster::start_with("")
    }

    /// A cluster whose host config has `extra` appended (a `[distribution]` table).
    fn start_with(extra: &str) -> Cluster {
        Cluster::start_full(extra, false)
    }

    /// `ours`: the EPMD is `host epmd` instead of Erlang's.
    fn start_full(extra: &str, ours: bool) -> Cluster {
        let epmd_port = free_port();
        let epmd = if ours {
            Command::new(host_bin())
                .args(["epmd", "--port", &epmd_port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("host epmd starts")
        } else {
            Command::new("epmd")
                .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
                .env("ERL_EPMD_ADDRESS", "127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("epmd starts")
        };
        let epmd = Proc(epmd);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", epmd_port)).is_err() {
            assert!(Instant::now() < deadline, "epmd never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = PluginDir::new();
        dir.install(&build(&Variant::of("v1")));
        std::fs::write(dir.path().join("host.toml"), format!("{CONFIG}{extra}")).unwrap();
        let u = unique();
        let host_name = format!("host_{u}@127.0.0.1");
        let cookie = format!("cookie_{u}");
        let log = dir.path().join("host.log");
        let host = spawn_host(&dir, &host_name, &cookie, epmd_port, &log);
        let mut c = Cluster {
            epmd_port,
            cookie,
            host_name,
            host: Some(host),
            creation: 0,
            log,
            erl_ticktime: 60,
            _epmd: epmd,
            _dir: dir,
        };
        c.creation = c.wait_log("dist_listening", Duration::from_secs(30))["creation"]
            .as_u64()
            .unwrap();
        c.wait_log("actor_started", Duration::from_secs(30));
        c
    }

    /// A second host node in the same cluster (same plugins, actors `a` and `b`): its
    /// process, name and log.
    fn second_host(&self) -> (Proc, String, PathBuf) {
        self.another_host("host2")
    }

    /// Another host node (`label` names it and its log).
    fn another_host(&self, label: &str) -> (Proc, String, PathBuf) {
        let name = format!("{label}_{}@127.0.0.1", unique());
        let log = self._dir.path().join(format!("{label}.log"));
        let p = spawn_host(&self._dir, &name, &self.cookie, self.epmd_port, &log);
        wait_log_in(&log, "actor_started", Duration::from_secs(30));
        (p, name, log)
    }

    /// Kills the host (SIGKILL, by pid) and starts it again under the same name: a new
    /// incarnation. `creation` keeps the old one (the pids `prelude` builds are old).
    fn restart_host(&mut self) -> u64 {
        drop(self.host.take());
        let log = self._dir.path().join("host.restarted.log");
        // EPMD frees the name when the old registration's socket closes.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = spawn_host(
                &self._dir,
                &self.host_name,
                &self.cookie,
                self.epmd_port,
                &log,
            );
            std::thread::sleep(Duration::from_millis(300));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("dist_listening") {
                self.host = Some(p);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the host never re-registered:\n{text}"
            );
            drop(p);
        }
        self.log = log;
        let creation = self.wait_log("dist_listening", Duration::from_secs(10))["creation"]
            .as_u64()
            .unwrap();
        self.wait_log("actor_started", Duration::from_secs(30));
        creation
    }

    /// Waits for the first log event named `event`.
    fn wait_log(&self, event: &str, timeout: Duration) -> serde_json::Value {
        wait_log_in(&self.log, event, timeout)
    }

    /// Erlang code binding `H` (the host's node) and `Pa`, `Pb` (its actors' pids).
    fn prelude(&self) -> String {
        let pid = |id: u32| {
            format!(
                "binary_to_term(<<131,88,119,(byte_size(HN)),HN/binary,{id}:32,0:32,{}:32>>)",
                self.creation
            )
        };
        format!(
            "H = '{}', HN = atom_to_binary(H), Pa = {}, Pb = {}, ",
            self.host_name,
            pid(1),
            pid(2)
        )
    }

    fn erl_cmd(&self, cookie: &str, script: &str) -> Command {
        let mut cmd = Command::new("erl");
        cmd.args(["-noshell", "-name", &format!("e_{}@127.0.0.1", unique())])
            .args(["-setcookie", cookie])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .args(["-kernel", "net_ticktime", &self.erl_ticktime.to_string()])
            .args(["-eval", &format!("{}{} halt().", self.prelude(), script)])
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            // An erl that fails writes no erl_crash.dump into the source tree.
            .env("ERL_CRASH_DUMP_SECONDS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `script` in a fresh `erl` (bounded) and returns what it printed.
    fn erl(&self, script: &str) -> String {
        self.erl_with(&self.cookie, script)
    }

    fn erl_with(&self, cookie: &str, script: &str) -> String {
        let child = self.erl_cmd(cookie, script).spawn().expect("erl starts");
        let mut p = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "erl did not finish in time");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        std::io::Read::read_to_string(p.0.stdout.as_mut().unwrap(), &mut out).unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(p.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        println!("erl printed:\n{out}{err}");
        out
    }
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no `{key}=` in:\n{out}"))
}

#[test]
fn ping_messages_casts_and_calls_from_erl() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl(
        r#"
        io:format("ping=~p~n", [net_adm:ping(H)]),
        io:format("hidden=~p~n", [lists:member(H, nodes(hidden))]),
        io:format("visible=~p~n", [lists:member(H, nodes())]),
        gen_server:cast({a, H}, {incr, 5}),
        {a, H} ! bump,
        Pa ! bump,
        io:format("get=~p~n", [gen_server:call({a, H}, get)]),
        io:format("bypid=~p~n", [gen_server:call(Pa, get)]),
        io:format("later=~p~n", [gen_server:call({a, H}, {later, 100})]),
        io:format("timeout=~p~n", [catch gen_server:call({a, H}, {later, 500}, 100)]),
        timer:sleep(800),
        io:format("late=~p~n", [process_info(self(), message_queue_len)]),
        io:format("noproc=~p~n", [catch gen_server:call({nobody, H}, get, 2000)]),
        io:format("b=~p~n", [gen_server:call({b, H}, get)]),
    "#,
    );
    assert_eq!(line(&out, "ping"), "pong");
    assert_eq!(line(&out, "hidden"), "true");
    assert_eq!(line(&out, "visible"), "false");
    assert_eq!(line(&out, "get"), r#"{count,<<"1">>,7}"#);
    assert_eq!(line(&out, "bypid"), r#"{count,<<"1">>,7}"#);
    assert_eq!(line(&out, "later"), r#"{count,<<"1">>,7}"#);
    assert!(
        line(&out, "timeout").starts_with("{'EXIT',{timeout,"),
        "{out}"
    );
    assert_eq!(line(&out, "late"), "{message_queue_len,0}");
    assert!(
        line(&out, "noproc").starts_with("{'EXIT',{noproc,"),
        "{out}"
    );
    assert_eq!(line(&out, "b"), r#"{count,<<"1">>,0}"#);
    let up = c.wait_log("node_up", Duration::from_secs(5));
    assert_eq!(up["direction"], "in");
    c.wait_log("node_down", Duration::from_secs(10));
}

#[test]
fn monitors_links_and_exit_signals_from_erl() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl(
        r#"
        process_flag(trap_exit, true),
        R1 = erlang:monitor(process, {a, H}),
        R2 = erlang:monitor(process, Pa),
        R3 = erlang:monitor(process, {nobody, H}),
        receive {'DOWN', R3, process, O3, Why3} -> io:format("down3=~p ~p~n", [O3 =:= {nobody, H}, Why3]) after 5000 -> io:format("down3=none~n") end,
        R4 = erlang:monitor(process, Pb), erlang:demonitor(R4),
        catch gen_server:call({a, H}, panic, 2000),
        receive {'DOWN', R1, process, O1, Why1} -> io:format("down1=~p ~p~n", [O1 =:= {a, H}, element(1, Why1)]) after 5000 -> io:format("down1=none~n") end,
        receive {'DOWN', R2, process, O2, _} -> io:format("down2=~p~n", [O2 =:= Pa]) after 5000 -> io:format("down2=none~n") end,
        link(Pb),
        exit(Pb, normal),
        io:format("alive=~p~n", [gen_server:call({b, H}, get)]),
        unlink(Pb), link(Pb),
        exit(Pb, kill),
        receive {'EXIT', Pb, Why5} -> io:format("exit=~p~n", [Why5]) after 5000 -> io:format("exit=none~n") end,
        receive {'DOWN', R4, _, _, _} -> io:format("demonitored=no~n") after 300 -> io:format("demonitored=yes~n") end,
        link(Pa),
        receive {'EXIT', Pa, Why6} -> io:format("deadlink=~p~n", [Why6]) after 5000 -> io:format("deadlink=none~n") end,
    "#,
    );
    assert_eq!(line(&out, "down3"), "true noproc");
    assert_eq!(line(&out, "down1"), "true error");
    assert_eq!(line(&out, "down2"), "true");
    assert_eq!(line(&out, "alive"), r#"{count,<<"1">>,0}"#);
    assert_eq!(line(&out, "exit"), "killed");
    assert_eq!(line(&out, "demonitored"), "yes");
    assert_eq!(line(&out, "deadlink"), "noproc");
}

#[test]
fn killing_the_host_is_noconnection_in_erl() {
    if !have_erl() {
        return;
    }
    let mut c = Cluster::start();
    let child = c
        .erl_cmd(
            &c.cookie.clone(),
            r#"
            process_flag(trap_exit, true),
            R = erlang:monitor(process, {a, H}),
            link(Pb),
            io:format("ready=~p~n", [gen_server:call({a, H}, get)]),
            receive {'DOWN', R, process, _, Why1} -> io:format("down=~p~n", [Why1]) after 20000 -> io:format("down=none~n") end,
            receive {'EXIT', Pb, Why2} -> io:format("exit=~p~n", [Why2]) after 5000 -> io:format("exit=none~n") end,
        "#,
        )
        .spawn()
        .expect("erl starts");
    let mut erl = Proc(child);
    let mut lines = BufReader::new(erl.0.stdout.take().unwrap()).lines();
    // Anything erl prints before (a warning under load) is skipped; the lines end when
    // erl exits, which its own receive timeouts bound.
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("ready="));
    if ready.is_none() {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(erl.0.stderr.as_mut().unwrap(), &mut err);
        let log = std::fs::read_to_string(&c.log).unwrap_or_default();
        panic!("erl never got ready:\n{err}\nhost log:\n{log}");
    }
    drop(c.host.take()); // SIGKILL, by pid
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = rest.join("\n");
    assert_eq!(line(&out, "down"), "noconnection");
    assert_eq!(line(&out, "exit"), "noconnection");
}

#[test]
fn a_wrong_cookie_is_refused() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl_with(
        "not_the_cookie",
        r#"io:format("ping=~p~n", [net_adm:ping(H)]),
           io:format("push=~p~n", [rpc:call(H, host, load, [tp, <<"not a library">>])]),"#,
    );
    assert_eq!(line(&out, "ping"), "pang");
    // No connection, so no code can be pushed (nor anything else asked).
    assert_eq!(line(&out, "push"), "{badrpc,nodedown}");
    let refused = c.wait_log("node_refused", Duration::from_secs(10));
    assert_eq!(refused["reason"], "bad cookie");
    // The other way: the host dials an erl node whose cookie differs, and is refused.
    let child = c
        .erl_cmd(
            "another_cookie",
            r#"register(sink, self()), io:format("ready=~s~n", [node()]), timer:sleep(20000),"#,
        )
        .spawn()
        .expect("erl starts");
    let mut erl = Proc(child);
    let mut lines = BufReader::new(erl.0.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("ready="))
        .expect("erl got ready");
    let node = ready.trim_start_matches("ready=");
    let send = format!(r#"{{remote_send, <<"sink">>, <<"{node}">>, hello}}"#);
    let o = Command::new(host_bin())
        .args(["ctl", "--socket"])
        .arg(c.log.with_extension("sock"))
        .args(["call", "a", &send])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&c.log).unwrap_or_default();
        let out_refused = text.lines().any(|l| {
            l.contains("\"node_refused\"")
                && l.contains("\"direction\":\"out\"")
                && l.contains(node)
        });
        if out_refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no outgoing refusal logged:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(erl);
}

#[test]
fn host_actors_send_and_cast_to_a_registered_erl_process() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl(
        r#"
        register(sink, self()),
        Me = atom_to_binary(node()),
        io:format("send=~p~n", [gen_server:call({a, H}, {remote_send, <<"sink">>, Me, {hello, 1}})]),
        receive M1 -> io:format("got1=~p~n", [M1]) after 5000 -> io:format("got1=none~n") end,
        io:format("cast=~p~n", [gen_server:call({a, H}, {remote_cast, <<"sink">>, Me, {hello, 2}})]),
        receive M2 -> io:format("got2=~p~n", [M2]) after 5000 -> io:format("got2=none~n") end,
        io:format("self=~p~n", [gen_server:call({a, H}, {remote_cast, <<"b">>, atom_to_binary(H), {incr, 3}})]),
        timer:sleep(100),
        io:format("b=~p~n", [gen_server:call({b, H}, get)]),
    "#,
    );
    assert_eq!(line(&out, "send"), "done");
    assert_eq!(line(&out, "got1"), "{hello,1}");
    assert_eq!(line(&out, "cast"), "done");
    assert_eq!(line(&out, "got2"), "{'$gen_cast',{hello,2}}");
    assert_eq!(line(&out, "self"), "done");
    assert_eq!(line(&out, "b"), r#"{count,<<"1">>,3}"#);
}

#[test]
fn two_hosts_talk_over_the_distribution() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let (_h2, h2, log2) = c.second_host();
    let out = c.erl(&format!(
        r#"
        H2 = '{h2}',
        io:format("cast=~p~n", [gen_server:call({{a, H}}, {{remote_cast, <<"b">>, atom_to_binary(H2), {{incr, 5}}}})]),
        Wait = fun W(0) -> timeout; W(K) -> case gen_server:call({{b, H2}}, get) of {{count, _, 5}} = R -> R; _ -> timer:sleep(50), W(K - 1) end end,
        io:format("b2=~p~n", [Wait(100)]),
        io:format("req=~p~n", [gen_server:call({{a, H}}, {{remote_request, <<"b">>, atom_to_binary(H2), get, 5000}})]),
        InboxA = fun IA(0) -> timeout; IA(K) -> case gen_server:call({{a, H}}, inbox) of {{inbox, [_ | _]}} = I -> I; _ -> timer:sleep(50), IA(K - 1) end end,
        io:format("inbox=~p~n", [InboxA(100)]),
    "#
    ));
    assert_eq!(line(&out, "cast"), "done");
    assert_eq!(line(&out, "b2"), r#"{count,<<"1">>,5}"#);
    // A request from a host actor to another host's actor is answered.
    assert_eq!(line(&out, "req"), "done");
    assert!(line(&out, "inbox").contains("<<\"reply "), "{out}");
    let up2 = wait_log_in(&log2, "node_up", Duration::from_secs(5));
    assert_eq!(up2["node"], c.host_name.as_str());
    assert_eq!(up2["direction"], "in");
    // The operator's view on the first host: the second host, dialled out, hidden.
    let ctl = Command::new(host_bin())
        .args(["ctl", "--socket"])
        .arg(c.log.with_extension("sock"))
        .args(["nodes", "--json"])
        .output()
        .unwrap();
    assert!(ctl.status.success(), "{ctl:?}");
    let rows: serde_json::Value = serde_json::from_slice(&ctl.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == h2.as_str())
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(row["direction"], "out");
    assert_eq!(row["hidden"], true);
    assert!(row["msgs_out"].as_u64().unwrap() >= 1, "{row}");
}

#[test]
fn an_8_mb_message_arrives_in_one_frame() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl(
        r#"
        gen_server:cast({a, H}, {incr, 1}),
        {a, H} ! {big, binary:copy(<<7>>, 8000000), lists:seq(1, 300000)},
        io:format("after=~p~n", [gen_server:call({a, H}, get, 20000)]),
    "#,
    );
    assert_eq!(line(&out, "after"), r#"{count,<<"1">>,1}"#);
    // `tp` has no such message: it arrived whole, did not decode, and was dropped there.
    let bad = c.wait_log("bad_message", Duration::from_secs(10));
    assert_eq!(bad["name"], "a");
    let text = std::fs::read_to_string(&c.log).unwrap();
    assert!(!text.contains("bad frame"), "{text}");
}

#[test]
fn a_restarted_host_is_a_new_incarnation() {
    if !have_erl() {
        return;
    }
    let mut c = Cluster::start();
    let old = c.creation;
    let new = c.restart_host();
    assert_ne!(old, new, "EPMD hands out a new creation");
    let out = c.erl(
        r#"
        R = erlang:monitor(process, Pa),
        receive {'DOWN', R, process, _, Why} -> io:format("old=~p~n", [Why]) after 5000 -> io:format("old=none~n") end,
        Pa ! bump,
        io:format("new=~p~n", [gen_server:call({a, H}, get)]),
    "#,
    );
    assert_eq!(line(&out, "old"), "noproc");
    assert_eq!(line(&out, "new"), r#"{count,<<"1">>,0}"#);
}

#[test]
fn ticks_keep_an_idle_link_up_and_a_stalled_peer_is_dropped() {
    if !have_erl() {
        return;
    }
    let mut c = Cluster::start_with("\n[distribution]\nnet_ticktime = 4\n");
    c.erl_ticktime = 4;
    let child = c
        .erl_cmd(
            &c.cookie.clone(),
            r#"
            pong = net_adm:ping(H),
            timer:sleep(13000),
            io:format("idle=~p~n", [lists:member(H, nodes(hidden))]),
            io:format("ready=1~n"),
            timer:sleep(30000),
        "#,
        )
        .spawn()
        .expect("erl starts");
    let mut erl = Proc(child);
    let mut lines = BufReader::new(erl.0.stdout.take().unwrap()).lines();
    let idle = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("idle="));
    assert_eq!(idle.as_deref(), Some("idle=true"));
    assert!(
        !std::fs::read_to_string(&c.log)
            .unwrap()
            .contains("\"node_down\""),
        "the idle link went down"
    );
    let stalled = Instant::now();
    let pid = erl.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let down = c.wait_log("node_down", Duration::from_secs(15));
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    assert_eq!(down["reason"], "net_tick_timeout");
    assert!(
        stalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        stalled.elapsed()
    );
}

/// A peer that passes the handshake (as a hidden node) and then sends `junk`.
fn misbehave(c: &Cluster, port: u16, junk: &[u8]) {
    use md5::{Digest, Md5};
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let send = |s: &mut std::net::TcpStream, body: &[u8]| {
        let mut m = (body.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        s.write_all(&m).unwrap();
    };
    let recv = |s: &mut std::net::TcpStream| {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        body
    };
    // OTP 25's mandatory flags.
    let flags: u64 = 0x4
        | 0x10
        | 0x80
        | 0x100
        | 0x200
        | 0x400
        | 0x800
        | 0x10000
        | 0x20000
        | 0x40000
        | 0x100_0000;
    let name = format!("rogue_{}@127.0.0.1", unique());
    let mut n = vec![b'N'];
    n.extend_from_slice(&flags.to_be_bytes());
    n.extend_from_slice(&1u32.to_be_bytes());
    n.extend_from_slice(&(name.len() as u16).to_be_bytes());
    n.extend_from_slice(name.as_bytes());
    send(&mut s, &n);
    assert_eq!(recv(&mut s), b"sok");
    let ch = recv(&mut s);
    assert_eq!(ch[0], b'N');
    let theirs = u32::from_be_bytes(ch[9..13].try_into().unwrap());
    let digest = |challenge: u32| -> [u8; 16] {
        let mut h = Md5::new();
        h.update(c.cookie.as_bytes());
        h.update(challenge.to_string().as_bytes());
        h.finalize().into()
    };
    let mut r = vec![b'r'];
    r.extend_from_slice(&42u32.to_be_bytes());
    r.extend_from_slice(&digest(theirs));
    send(&mut s, &r);
    let ack = recv(&mut s);
    assert_eq!(ack[0], b'a');
    assert_eq!(ack[1..], digest(42));
    s.write_all(junk).unwrap();
    // The host hangs up.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

#[test]
fn a_bad_frame_drops_that_connection_never_the_host() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let port = c.wait_log("dist_listening", Duration::from_secs(5))["port"]
        .as_u64()
        .unwrap() as u16;
    // A control message that is not ETF, a frame that is not a distribution message,
    // a length over the cap; an unknown operation is only skipped (a bad frame follows).
    let unknown_op = {
        let ctl = [131u8, 104, 1, 97, 99];
        let mut f = ((ctl.len() + 1) as u32).to_be_bytes().to_vec();
        f.push(b'p');
        f.extend_from_slice(&ctl);
        f.extend_from_slice(&[0, 0, 0, 1, b'y']);
        f
    };
    let junk: [&[u8]; 4] = [
        &[0, 0, 0, 5, b'p', 131, 255, 0, 0],
        &[0, 0, 0, 1, b'x'],
        &[0xff, 0xff, 0xff, 0xff],
        &unknown_op,
    ];
    for j in junk {
        misbehave(&c, port, j);
    }
    let expected = [
        "bad frame: control message",
        "bad frame: type 120",
        "bad frame: 4294967295 bytes",
        "unknown operation 99; skipped",
        "bad frame: type 121",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&c.log).unwrap();
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|why| !text.contains(why))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reported: {missing:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The host serves on.
    let out = c.erl(r#"io:format("get=~p~n", [gen_server:call({a, H}, get)]),"#);
    assert_eq!(line(&out, "get"), r#"{count,<<"1">>,0}"#);
}

/// Runs an erl `script` on the cluster; once it prints its `go=` line, reloads `tp` to
/// v2 with `host ctl reload` (which must succeed). Returns that line and what the script
/// printed after it.
fn reload_while_erl_runs(c: &Cluster, script: &str) -> (Option<String>, String) {
    let v2 = build(&Variant::of("v2"));
    let child = c
        .erl_cmd(&c.cookie.clone(), script)
        .spawn()
        .expect("erl starts");
    let mut erl = Proc(child);
    let mut lines = BufReader::new(erl.0.stdout.take().unwrap()).lines();
    let go = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("go="));
    let reload = Command::new(host_bin())
        .args(["ctl", "--socket"])
        .arg(c.log.with_extension("sock"))
        .args(["reload", "tp"])
        .arg(&v2)
        .output()
        .unwrap();
    assert!(reload.status.success(), "{reload:?}");
    let out: String = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    (go, out)
}

#[test]
fn a_hot_swap_under_remote_calls_and_casts_loses_nothing() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let (go, out) = reload_while_erl_runs(
        &c,
        r#"
            pong = net_adm:ping(H),
            io:format("go=1~n"),
            Bad = lists:foldl(fun(N, Acc) ->
                    N rem 20 =:= 0 andalso timer:sleep(1),
                    case N rem 2 of
                        0 -> gen_server:cast({a, H}, {seq, N}), Acc;
                        1 -> case gen_server:call({a, H}, {seq, N}) of {seq, N} -> Acc; _ -> Acc + 1 end
                    end
                end, 0, lists:seq(0, 4999)),
            io:format("bad=~p~n", [Bad]),
            io:format("stats=~p~n", [gen_server:call({a, H}, stats)]),
        "#,
    );
    assert!(go.is_some(), "erl never started");
    assert_eq!(line(&out, "bad"), "0", "{out}");
    let stats = line(&out, "stats");
    assert!(stats.contains("count => 5000"), "{stats}");
    assert!(stats.contains("disorder => 0"), "{stats}");
    assert!(stats.contains(r#"version => <<"2">>"#), "{stats}");
}

/// Invariant 7 of `actor`: a reload while remote spawns are registered but their `init`
/// has not run waits for those `init`s, then moves the actors to the new version, instead
/// of migrating a state that does not exist yet. Sixteen spawns whose `init` sleeps 2 s
/// fill the spawn pool and are then killed (out of the swap's way; their threads stay
/// busy until the sleep ends), so the four spawns after them are registered (and
/// answered) but their `init` waits for a pool thread while the reload runs.
#[test]
fn a_reload_waits_for_remote_spawns_whose_init_has_not_run() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let (go, out) = reload_while_erl_runs(
        &c,
        r#"
            Spawn = fun(Args) ->
                R = erlang:spawn_request(H, tp, init, [Args], []),
                receive {spawn_reply, R, ok, P} -> P after 5000 -> none end
            end,
            Sleepers = [Spawn({sleep, 2000}) || _ <- lists:seq(1, 16)],
            timer:sleep(100),
            Ps = [Spawn(ok) || _ <- lists:seq(1, 4)],
            [exit(S, kill) || S <- Sleepers],
            io:format("go=~p~n", [length([P || P <- Ps, is_pid(P)])]),
            V2 = fun W(0) -> false; W(K) -> case gen_server:call({a, H}, get) of {count, <<"2">>, _} -> true; _ -> timer:sleep(50), W(K - 1) end end,
            io:format("reloaded=~p~n", [V2(200)]),
            io:format("versions=~p~n", [lists:usort([element(2, gen_server:call(P, get, 10000)) || P <- Ps])]),
        "#,
    );
    assert_eq!(go.as_deref(), Some("go=4"), "erl never spawned its 4");
    assert_eq!(line(&out, "reloaded"), "true", "{out}");
    assert_eq!(line(&out, "versions"), r#"[<<"2">>]"#, "{out}");
}

/// `host ctl call NAME inbox` on the cluster's host, until `pred` holds for its output
/// (bounded); returns the last output.
fn host_inbox(c: &Cluster, who: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = ctl_at(&c.log, &["call", who, "inbox"]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        if pred(&text) || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn host_actors_call_monitor_link_and_answer_erl_pids() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl(
        r#"
        Me = atom_to_binary(node()),
        Srv = spawn(fun L() -> receive {'$gen_call', From, get} -> gen_server:reply(From, {count, <<"erl">>, 7}), L(); stop -> exit(bye) end end),
        register(srv, Srv),
        Inbox = fun(Who, N) -> W = fun W(0) -> timeout; W(K) -> {inbox, L} = gen_server:call({Who, H}, inbox), case length(L) >= N of true -> L; false -> timer:sleep(50), W(K - 1) end end, W(200) end,
        io:format("req=~p~n", [gen_server:call({a, H}, {remote_request, <<"srv">>, Me, get, 5000})]),
        io:format("noreply=~p~n", [gen_server:call({a, H}, {remote_request, <<"nobody">>, Me, get, 300})]),
        io:format("inbox1=~ts~n", [lists:join(" | ", Inbox(a, 2))]),
        io:format("sendpid=~p~n", [gen_server:call({a, H}, {send_pid, self(), {hello, self()}})]),
        receive {hello, P0} -> io:format("echo=~p~n", [P0 =:= self()]) after 5000 -> io:format("echo=none~n") end,
        {timer, R1} = gen_server:call({a, H}, {monitor_pid, Srv}),
        {timer, R2} = gen_server:call({a, H}, {monitor_remote, <<"srv">>, Me}),
        io:format("refs=~p ~p~n", [R1, R2]),
        Srv ! stop,
        io:format("inbox2=~ts~n", [lists:join(" | ", Inbox(a, 4))]),
        process_flag(trap_exit, true),
        gen_server:call({b, H}, {trap_exit, true}),
        Victim = spawn(fun() -> receive _ -> ok end end),
        io:format("link=~p~n", [gen_server:call({b, H}, {link_pid, Victim})]),
        exit(Victim, boom),
        io:format("inboxb=~ts~n", [lists:join(" | ", Inbox(b, 1))]),
        io:format("exitpid=~p~n", [gen_server:call({a, H}, {exit_pid, self(), shutdown})]),
        receive {'EXIT', From, Why} -> io:format("exit=~p ~p ~p~n", [node(From) =:= H, From =:= Pa, Why]) after 5000 -> io:format("exit=none~n") end,
        %% A host actor that monitors an erl process and dies takes its monitor with it.
        Srv2 = spawn(fun() -> receive stop -> ok end end),
        P9 = spawn(H, tp, init, [ok]),
        {timer, _} = gen_server:call(P9, {monitor_pid, Srv2}),
        {monitored_by, M1} = process_info(Srv2, monitored_by),
        exit(P9, kill),
        Gone = fun G(0) -> false; G(K) -> case process_info(Srv2, monitored_by) of {monitored_by, []} -> true; _ -> timer:sleep(20), G(K - 1) end end,
        io:format("watchergone=~p ~p~n", [length(M1), Gone(250)]),
    "#,
    );
    // A request to a BEAM process is answered; one to nobody times out.
    assert_eq!(line(&out, "req"), "done");
    assert_eq!(line(&out, "noreply"), "done");
    let inbox1 = line(&out, "inbox1");
    assert!(inbox1.starts_with("reply "), "{inbox1}");
    assert!(inbox1.contains(" | timeout "), "{inbox1}");
    // A pid received in a message is answered directly, and a pid sent out arrives as
    // the real pid.
    assert_eq!(line(&out, "sendpid"), "done");
    assert_eq!(line(&out, "echo"), "true");
    // Monitors by pid and by name both see the real exit reason.
    let refs: Vec<&str> = line(&out, "refs").split(' ').collect();
    let inbox2 = line(&out, "inbox2");
    assert!(
        inbox2.contains(&format!("DOWN {} ", refs[0])) && inbox2.contains(r#"Other("bye")"#),
        "{inbox2}"
    );
    assert!(
        inbox2.contains(&format!("DOWN {} {{srv,'e_", refs[1])),
        "{inbox2}"
    );
    // A link to a BEAM pid carries its exit back; `exit/2` from the host reaches erl from
    // the actor's real pid.
    assert_eq!(line(&out, "link"), "done");
    let inboxb = line(&out, "inboxb");
    assert!(
        inboxb.starts_with("EXIT ") && inboxb.contains(r#"Other("boom")"#),
        "{inboxb}"
    );
    assert_eq!(line(&out, "exitpid"), "done");
    assert_eq!(line(&out, "exit"), "true true shutdown");
    // The monitor was on the erl process, and left with the host actor that held it.
    assert_eq!(line(&out, "watchergone"), "1 true");
}

#[test]
fn losing_the_erl_node_fails_what_host_actors_hold_on_it() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let child = c
        .erl_cmd(
            &c.cookie.clone(),
            r#"
            Me = atom_to_binary(node()),
            register(srv, spawn(fun() -> receive never -> ok end end)),
            {timer, _} = gen_server:call({a, H}, {monitor_pid, self()}),
            gen_server:call({b, H}, {trap_exit, true}),
            done = gen_server:call({b, H}, {link_pid, self()}),
            done = gen_server:call({a, H}, {remote_request, <<"srv">>, Me, get, 600000}),
            done = gen_server:call({a, H}, {monitor_node, Me, true}),
            io:format("ready=~s~n", [Me]),
            timer:sleep(60000),
        "#,
        )
        .spawn()
        .expect("erl starts");
    let mut erl = Proc(child);
    let mut lines = BufReader::new(erl.0.stdout.take().unwrap()).lines();
    let Some(ready) = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("ready="))
    else {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(erl.0.stderr.as_mut().unwrap(), &mut err);
        panic!("erl never got ready:\n{err}");
    };
    let node = ready.trim_start_matches("ready=").to_string();
    drop(erl); // SIGKILL, by pid
               // The monitor gets noconnection, the 600 s request fails now, monitor_node fires.
    let a = host_inbox(&c, "a", |t| {
        t.contains("noconnection") && t.contains("timeout ") && t.contains("nodedown")
    });
    // (`ctl` prints the inbox's strings escaped.)
    assert!(a.contains("DOWN "), "{a}");
    assert!(a.contains(r#"Other(\"noconnection\")"#), "{a}");
    assert!(a.contains("timeout "), "{a}");
    assert!(a.contains(&format!("nodedown {node}")), "{a}");
    let b = host_inbox(&c, "b", |t| t.contains("noconnection"));
    assert!(
        b.contains("EXIT ") && b.contains(r#"Other(\"noconnection\")"#),
        "{b}"
    );
    let down = c.wait_log("node_down", Duration::from_secs(5));
    assert_eq!(down["node"], node.as_str());
}

#[test]
fn erl_spawns_actors_on_the_host_and_drives_it_over_rpc() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let out = c.erl(
        r#"
        P = spawn(H, tp, init, [ok]),
        io:format("spawned=~p~n", [node(P) =:= H]),
        io:format("get=~p~n", [gen_server:call(P, get)]),
        process_flag(trap_exit, true),
        P2 = spawn_link(H, tp, init, [ok]),
        gen_server:cast(P2, panic),
        receive {'EXIT', P2, R2} -> io:format("linkexit=~p~n", [element(1, R2)]) after 5000 -> io:format("linkexit=none~n") end,
        Req = erlang:spawn_request(H, tp, init, [ok], [monitor]),
        receive
            {spawn_reply, Req, ok, P3} ->
                exit(P3, kill),
                receive {'DOWN', Req, process, P3, R3} -> io:format("srdown=~p~n", [R3]) after 5000 -> io:format("srdown=none~n") end
        after 5000 -> io:format("srdown=noreply~n")
        end,
        Req2 = erlang:spawn_request(H, nosuch, init, [ok], [monitor]),
        receive
            {spawn_reply, Req2, ok, _} ->
                receive {'DOWN', Req2, process, _, R4} -> io:format("undef=~p~n", [R4]) after 5000 -> io:format("undef=none~n") end
        after 5000 -> io:format("undef=noreply~n")
        end,
        Req3 = erlang:spawn_request(H, tp, init, [fail], [monitor]),
        receive
            {spawn_reply, Req3, ok, _} ->
                receive {'DOWN', Req3, process, _, R5} -> io:format("initfail=~p~n", [element(1, R5)]) after 5000 -> io:format("initfail=none~n") end
        after 5000 -> io:format("initfail=noreply~n")
        end,
        %% Answered as soon as the actor exists, before a slow init returns; a call made
        %% meanwhile waits in its mailbox and is answered once init is done.
        T0 = erlang:monotonic_time(millisecond),
        Req6 = erlang:spawn_request(H, tp, init, [{sleep, 1500}], [monitor]),
        receive
            {spawn_reply, Req6, ok, P6} ->
                io:format("early=~p~n", [erlang:monotonic_time(millisecond) - T0 < 1000]),
                io:format("afterinit=~p~n", [gen_server:call(P6, get, 10000)]),
                io:format("initwait=~p~n", [erlang:monotonic_time(millisecond) - T0 >= 1500])
        after 5000 -> io:format("early=noreply~n")
        end,
        %% An init past its start deadline (5 s): the pid exits with a reason that says so.
        Req7 = erlang:spawn_request(H, tp, init, [{sleep, 8000}], [monitor]),
        receive
            {spawn_reply, Req7, ok, P7} ->
                receive
                    {'DOWN', Req7, process, P7, R7} ->
                        io:format("deadline=~p~n", [string:find(io_lib:format("~p", [R7]), "start deadline") =/= nomatch])
                after 7000 -> io:format("deadline=none~n")
                end
        after 5000 -> io:format("deadline=noreply~n")
        end,
        io:format("whereis=~p~n", [rpc:call(H, host, whereis, [a]) =:= Pa]),
        io:format("call=~p~n", [rpc:call(H, host, call, [a, get, 5000])]),
        io:format("send=~p~n", [rpc:call(H, host, send, [a, bump])]),
        io:format("actors=~p~n", [lists:member(Pa, [maps:get(pid, A) || A <- rpc:call(H, host, actors, [])])]),
        io:format("stats=~p~n", [maps:get(actors, rpc:call(H, host, stats, [])) >= 2]),
        io:format("rpcundef=~p~n", [rpc:call(H, host, nosuch, [])]),
        io:format("otherundef=~p~n", [rpc:call(H, lists, reverse, [[1, 2]])]),
        io:format("erpc=~p~n", [erpc:call(H, host, whereis, [nobody])]),
    "#,
    );
    // A spawned actor is a real pid of the host, answering calls.
    assert_eq!(line(&out, "spawned"), "true");
    assert_eq!(line(&out, "get"), r#"{count,<<"1">>,0}"#);
    // spawn_link: the child's crash reaches the linker; spawn_request's monitor holds.
    assert_eq!(line(&out, "linkexit"), "error");
    assert_eq!(line(&out, "srdown"), "killed");
    // An unknown behaviour: a pid that exits undef at once.
    assert_eq!(line(&out, "undef"), "undef");
    // An `init` that fails: the pid (answered as soon as it existed) exits with why.
    assert_eq!(line(&out, "initfail"), "error");
    // The pid comes back before a 1.5 s init returns; a call waits for the init.
    assert_eq!(line(&out, "early"), "true");
    assert_eq!(line(&out, "afterinit"), r#"{count,<<"1">>,0}"#);
    assert_eq!(line(&out, "initwait"), "true");
    // An init that does not return within the start deadline: the pid exits, saying so.
    assert_eq!(line(&out, "deadline"), "true");
    // rpc into the built-in `host` module.
    assert_eq!(line(&out, "whereis"), "true");
    assert_eq!(line(&out, "call"), r#"{count,<<"1">>,0}"#);
    assert_eq!(line(&out, "send"), "ok");
    assert_eq!(line(&out, "actors"), "true");
    assert_eq!(line(&out, "stats"), "true");
    assert_eq!(line(&out, "rpcundef"), "{badrpc,{'EXIT',{undef,[]}}}");
    assert_eq!(line(&out, "otherundef"), "{badrpc,{'EXIT',{undef,[]}}}");
    assert_eq!(line(&out, "erpc"), "undefined");
}

/// Asks the EPMD on `port` to stop (`epmd -kill`'s request); true if it said OK.
fn kill_epmd(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut ok = [0u8; 2];
    s.write_all(&[0, 1, 107]).is_ok() && s.read_exact(&mut ok).is_ok() && &ok == b"OK"
}

#[test]
fn two_hosts_form_a_cluster_without_erlang_installed() {
    // No `erl` needed: the first host finds no EPMD and no `epmd` on PATH, and starts
    // `host epmd`; the second registers with it.
    let epmd_port = free_port();
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    std::fs::write(dir.path().join("host.toml"), CONFIG).unwrap();
    let u = unique();
    let cookie = format!("cookie_{u}");
    let start = |name: &str, log: &PathBuf| {
        let p = Command::new(host_bin())
            .current_dir(dir.path())
            .args(["--config", "host.toml", "--run-for", "120"])
            .args(["--name", name, "--cookie", &cookie])
            .args(["--epmd-port", &epmd_port.to_string()])
            .arg("--socket")
            .arg(log.with_extension("sock"))
            .env("PATH", "/nonexistent")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("host starts");
        Proc(p)
    };
    let (a_name, b_name) = (format!("ha_{u}@127.0.0.1"), format!("hb_{u}@127.0.0.1"));
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let _a = start(&a_name, &a_log);
    let started = wait_log_in(&a_log, "epmd_started", Duration::from_secs(30));
    assert_eq!(started["which"], "host epmd");
    wait_log_in(&a_log, "actor_started", Duration::from_secs(30));
    let _b = start(&b_name, &b_log);
    wait_log_in(&b_log, "actor_started", Duration::from_secs(30));
    assert!(
        !std::fs::read_to_string(&b_log)
            .unwrap()
            .contains("epmd_started"),
        "the second host found the first one's EPMD"
    );
    let ctl = |log: &PathBuf, args: &[&str]| {
        let o = Command::new(host_bin())
            .args(["ctl", "--socket"])
            .arg(log.with_extension("sock"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let cast = format!(r#"{{remote_cast, <<"b">>, <<"{b_name}">>, {{incr, 5}}}}"#);
    assert!(ctl(&a_log, &["call", "a", &cast]).contains("done"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = ctl(&b_log, &["call", "b", "get"]);
        if got.contains("5") {
            break;
        }
        assert!(Instant::now() < deadline, "the cast never arrived: {got}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It outlives the hosts (other nodes may use it); stop it as `epmd -kill` would.
    assert!(kill_epmd(epmd_port));
}

#[test]
fn a_real_erl_registers_with_host_epmd() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start_full("", true);
    let out = c.erl(
        r#"
        io:format("ping=~p~n", [net_adm:ping(H)]),
        {ok, Names} = net_adm:names(),
        io:format("names=~p~n", [lists:sort([N || {N, _} <- Names])]),
        io:format("call=~p~n", [gen_server:call({a, H}, get)]),
    "#,
    );
    assert_eq!(line(&out, "ping"), "pong");
    let names = line(&out, "names");
    assert!(
        names.contains("\"host_") && names.contains("\"e_"),
        "{names}"
    );
    assert_eq!(line(&out, "call"), r#"{count,<<"1">>,0}"#);
}

#[test]
fn a_host_starts_the_real_epmd_when_none_runs() {
    if !have_erl() {
        return;
    }
    let epmd_port = free_port();
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    std::fs::write(dir.path().join("host.toml"), CONFIG).unwrap();
    let u = unique();
    let log = dir.path().join("host.log");
    let h = spawn_host(&dir, &format!("hr_{u}@127.0.0.1"), "c", epmd_port, &log);
    let started = wait_log_in(&log, "epmd_started", Duration::from_secs(30));
    assert_eq!(started["which"], "epmd");
    wait_log_in(&log, "dist_listening", Duration::from_secs(30));
    let names = Command::new("epmd")
        .args(["-port", &epmd_port.to_string(), "-names"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&names.stdout);
    assert!(text.contains(&format!("name hr_{u} at port")), "{text}");
    // Epmd refuses `-kill` while a node is registered: stop the host first.
    drop(h);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kill = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-kill"])
            .output()
            .unwrap();
        if kill.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{kill:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn host_actors_spawn_on_other_hosts_and_on_beam() {
    if !have_erl() {
        return;
    }
    let c = Cluster::start();
    let (_h2, h2, _log2) = c.second_host();
    let out = c.erl(&format!(
        r#"
        H2 = <<"{h2}">>, Me = atom_to_binary(node()),
        Inbox = fun(N) -> W = fun W(0) -> timeout; W(K) -> {{inbox, L}} = gen_server:call({{a, H}}, inbox), case length(L) >= N of true -> L; false -> timer:sleep(50), W(K - 1) end end, W(200) end,
        gen_server:call({{a, H}}, {{trap_exit, true}}),
        io:format("s1=~p~n", [gen_server:call({{a, H}}, {{spawn_remote, H2, <<"tp">>, <<"init">>, [ok], true, true}})]),
        [Started] = Inbox(1),
        io:format("inbox1=~ts~n", [Started]),
        [P] = [maps:get(pid, A) || A <- rpc:call(binary_to_atom(H2), host, actors, []), maps:get(name, A) =:= undefined],
        exit(P, kill),
        io:format("inbox2=~ts~n", [lists:join(" | ", Inbox(3))]),
        io:format("s2=~p~n", [gen_server:call({{a, H}}, {{spawn_remote, Me, <<"timer">>, <<"sleep">>, [100], false, true}})]),
        io:format("inbox3=~ts~n", [lists:join(" | ", Inbox(5))]),
        io:format("s3=~p~n", [gen_server:call({{a, H}}, {{spawn_remote, H2, <<"nosuch">>, <<"init">>, [ok], false, true}})]),
        io:format("inbox4=~ts~n", [lists:join(" | ", Inbox(7))]),
        io:format("s4=~p~n", [gen_server:call({{a, H}}, {{spawn_remote, <<"nobody@127.0.0.1">>, <<"tp">>, <<"init">>, [ok], false, false}})]),
        io:format("inbox5=~ts~n", [lists:join(" | ", Inbox(8))]),
    "#
    ));
    // host -> host: started, linked and monitored; its kill arrives as EXIT and DOWN.
    assert_eq!(line(&out, "s1"), "done");
    assert!(line(&out, "inbox1").starts_with("started "), "{out}");
    let inbox2 = line(&out, "inbox2");
    assert!(
        inbox2.contains("EXIT ") && inbox2.contains("Killed"),
        "{inbox2}"
    );
    assert!(
        inbox2.contains("DOWN ") && inbox2.matches("Killed").count() == 2,
        "{inbox2}"
    );
    // host -> BEAM: timer:sleep(100) runs there and exits normal.
    assert_eq!(line(&out, "s2"), "done");
    let inbox3 = line(&out, "inbox3");
    assert!(
        inbox3.ends_with("Normal") || inbox3.contains("Normal"),
        "{inbox3}"
    );
    // An unknown behaviour exits undef; an unreachable node answers noconnection.
    let inbox4 = line(&out, "inbox4");
    assert!(inbox4.contains(r#"Other("undef")"#), "{inbox4}");
    assert!(
        line(&out, "inbox5").contains("start failed: noconnection"),
        "{out}"
    );
}

/// `host ctl` against the host whose log is `log` (its socket sits beside it).
fn ctl_at(log: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(host_bin())
        .args(["ctl", "--socket"])
        .arg(log.with_extension("sock"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn reload_all_nodes_swaps_every_host_and_reports_one_that_dies() {
    // `host epmd`: no Erlang needed.
    let c = Cluster::start_full("", true);
    let (_hb, hb, logb) = c.another_host("hb");
    let (hc, hcn, logc) = c.another_host("hc");
    // The first host talks to both (a cast dials them).
    for n in [&hb, &hcn] {
        let cast = format!(r#"{{remote_cast, <<"b">>, <<"{n}">>, {{incr, 0}}}}"#);
        assert!(ctl_at(&c.log, &["call", "a", &cast]).status.success());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while ctl_at(&c.log, &["nodes", "--json"])
        .stdout
        .iter()
        .filter(|&&b| b == b'{')
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the hosts never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The third host marks when its swap has begun (v2_slow: 50 ms per actor).
    let mark = c._dir.path().join("hc.swapping");
    let mark_call = format!(r#"{{mark_swap, <<"{}">>}}"#, mark.display());
    assert!(ctl_at(&logc, &["call", "a", &mark_call]).status.success());
    let v2 = build(&Variant::of("v2_slow"));
    let reload = Command::new(host_bin())
        .args(["ctl", "--socket"])
        .arg(c.log.with_extension("sock"))
        .args(["reload", "tp"])
        .arg(&v2)
        .arg("--all-nodes")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mark.exists() {
        assert!(
            Instant::now() < deadline,
            "the third host never began its swap"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(hc); // SIGKILL in the middle of its swap
    let out = reload.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("{}: ok", c.host_name)), "{text}");
    assert!(text.contains(&format!("{hb}: ok")), "{text}");
    assert!(
        text.contains(&format!("{hcn}: failed (noconnection)")),
        "{text}"
    );
    assert!(
        !out.status.success(),
        "a node that did not swap fails the command"
    );
    // The second host runs the pushed version.
    let got = String::from_utf8_lossy(&ctl_at(&logb, &["call", "b", "get"]).stdout).into_owned();
    assert!(got.contains("\"2\""), "{got}");
    // And both go back with one command (v2's downgrade, v1's code_change).
    let back = ctl_at(&c.log, &["rollback", "tp", "--all-nodes"]);
    let text = String::from_utf8_lossy(&back.stdout);
    assert!(
        back.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert!(text.contains(&format!("{}: ok", c.host_name)), "{text}");
    assert!(text.contains(&format!("{hb}: ok")), "{text}");
    let got = String::from_utf8_lossy(&ctl_at(&logb, &["call", "b", "get"]).stdout).into_owned();
    assert!(got.contains("\"1\""), "{got}");
}

#[test]
fn host_ctl_node_asks_another_host_through_the_distribution() {
    // `host epmd`: no Erlang needed.
    let c = Cluster::start_full("", true);
    let (_hb, hb, _logb) = c.another_host("hb");
    let cast = format!(r#"{{remote_cast, <<"b">>, <<"{hb}">>, {{incr, 7}}}}"#);
    assert!(ctl_at(&c.log, &["call", "a", &cast]).status.success());
    // Through the first host's socket, answered by the second.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = ctl_at(&c.log, &["--node", &hb, "call", "b", "get"]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        if text.contains("7") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = ctl_at(&c.log, &["--node", &hb, "list", "--json"]);
    assert!(list.status.success(), "{list:?}");
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    // What `host top --node` fetches every second: the other host's snapshot.
    let snap = host::control::client::request(
        &c.log.with_extension("sock"),
        &host::control::protocol::Request::Forward {
            node: hb.clone(),
            request: Box::new(host::control::protocol::Request::Snapshot),
        },
        Duration::from_secs(10),
    )
    .unwrap();
    let snap: host::observe::model::Snapshot = serde_json::from_value(snap).unwrap();
    assert_eq!(snap.actors.len(), 2);
    assert!(
        snap.nodes.iter().any(|n| n.node == c.host_name),
        "{:?}",
        snap.nodes
    );
    // A node that is not connected: a clear error, not a hang.
    let nobody = ctl_at(&c.log, &["--node", "nobody@127.0.0.1", "list"]);
    assert!(!nobody.status.success());
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("nobody@127.0.0.1"),
        "{nobody:?}"
    );
}

#[test]
fn short_names_work_as_with_erl_sname() {
    if !have_erl() {
        return;
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let short = hostname.trim().split('.').next().unwrap_or("").to_string();
    // The test listens on loopback only: it needs the hostname to resolve there.
    let loopback = std::net::ToSocketAddrs::to_socket_addrs(&(short.as_str(), 0u16))
        .is_ok_and(|mut a| a.any(|a| a.ip().is_loopback()));
    if short.is_empty() || !loopback {
        println!("skipped: the hostname `{short}` does not resolve to a loopback address");
        return;
    }
    let c = Cluster::start();
    let u = unique();
    let log = c._dir.path().join("sname.log");
    let host = Command::new(host_bin())
        .current_dir(c._dir.path())
        .args(["--config", "host.toml", "--run-for", "120"])
        .args(["--sname", &format!("hs_{u}"), "--cookie", &c.cookie])
        .args(["--epmd-port", &c.epmd_port.to_string()])
        .arg("--socket")
        .arg(log.with_extension("sock"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("host starts");
    let _host = Proc(host);
    let listening = wait_log_in(&log, "dist_listening", Duration::from_secs(30));
    assert_eq!(listening["node"], format!("hs_{u}@{short}").as_str());
    wait_log_in(&log, "actor_started", Duration::from_secs(30));
    // Bounded by coreutils' `timeout`, which kills erl if it hangs.
    let out = Command::new("timeout")
        .args(["60", "erl", "-noshell", "-sname", &format!("es_{u}")])
        .args(["-setcookie", &c.cookie])
        .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
        .args([
            "-eval",
            &format!(
                "H = list_to_atom(\"hs_{u}@{short}\"), io:format(\"ping=~p~n\", [net_adm:ping(H)]), \
                 io:format(\"get=~p~n\", [gen_server:call({{a, H}}, get)]), halt()."
            ),
        ])
        .env("ERL_EPMD_PORT", c.epmd_port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(line(&text, "ping"), "pong");
    assert_eq!(line(&text, "get"), r#"{count,<<"1">>,0}"#);
}

#[test]
fn two_hosts_in_one_process_talk_over_loopback() {
    // No erl: `host epmd`'s server in this process, and two `Host`s beside it.
    use serde::{Deserialize, Serialize};
    #[derive(Serialize)]
    enum Ask {
        RemoteCast(String, String, plugin_api::etf::Term),
        RemoteRequest(String, String, plugin_api::etf::Term, u64),
        Get,
        Inbox,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    enum Answer {
        Count(String, u64),
        Done,
        Inbox(Vec<String>),
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let epmd_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || host::dist::EpmdServer::serve(listener));
    let dir = PluginDir::new();
    dir.install(&build(&Variant::of("v1")));
    let u = unique();
    let start = |name: &str| {
        let opts = host::HostOptions {
            plugin_dirs: vec![dir.path().to_path_buf()],
            watch: None,
            threads: 2,
            ..Default::default()
        };
        let dist = host::dist::DistOptions {
            name: name.to_string(),
            cookie: format!("c{u}"),
            epmd_port: Some(epmd_port),
            ..Default::default()
        };
        host::Host::start_node(opts, Some(dist)).expect("host starts")
    };
    let (na, nb) = (format!("ia_{u}@127.0.0.1"), format!("ib_{u}@127.0.0.1"));
    let a = start(&na);
    let b = start(&nb);
    a.spawn_with("tp", Some("a"), &()).unwrap();
    b.spawn_with("tp", Some("b"), &()).unwrap();
    let t = Duration::from_secs(10);
    let incr = plugin_api::etf::Term::Tuple(vec![
        plugin_api::etf::Term::atom("incr"),
        plugin_api::etf::Term::Integer(5),
    ]);
    let r: Answer = a
        .call_as(
            host::Target::Name("a"),
            &Ask::RemoteCast("b".into(), nb.clone(), incr),
            t,
        )
        .unwrap();
    assert_eq!(r, Answer::Done);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: Answer = b.call_as(host::Target::Name("b"), &Ask::Get, t).unwrap();
        if got == Answer::Count("1".into(), 5) {
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // And a call back the other way.
    let get = plugin_api::etf::Term::atom("get");
    let r: Answer = b
        .call_as(
            host::Target::Name("b"),
            &Ask::RemoteRequest("a".into(), na.clone(), get, 5000),
            t,
        )
        .unwrap();
    assert_eq!(r, Answer::Done);
    loop {
        let Answer::Inbox(v) = b.call_as(host::Target::Name("b"), &Ask::Inbox, t).unwrap() else {
            panic!("inbox")
        };
        if v.iter().any(|l| l.starts_with("reply ")) {
            break;
        }
        assert!(Instant::now() < deadline, "{v:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(a.nodes().iter().any(|n| n.node == nb));
}
