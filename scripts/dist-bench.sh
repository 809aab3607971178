#!/usr/bin/env bash
# The host over the Erlang distribution, with BEAM <-> BEAM as the anchor, in one run:
# 100,000 sequential gen_server:call round trips, and a one-way burst of 100,000
# gen_server:cast followed by one call (messages/s until that call's reply), for
# BEAM -> host, host -> BEAM and host <-> host. The host rows are driven by a host actor
# (the test plugin's `remote_ping_pong` / `remote_burst`: `ctx.request` and `ctx.cast` to
# `{counter, Node}`), timed from erl around one call to it. Then remote spawn latency
# (2,000 sequential spawns, each waiting for its pid): BEAM -> BEAM `spawn_request` (the
# anchor), BEAM -> host and host -> host (`ctx.spawn_remote`); and the time for
# `host ctl reload counter --all-nodes` to swap two hosts (one counter actor each).
# Loopback, a private EPMD on a free port, release builds. Skips with a note when erl is
# missing.
#
# scripts/dist-bench.sh [RUNS]     (default 3 runs; prints each, then the medians)
# HOST_BIN=path/to/host scripts/dist-bench.sh   compares another build of the host (A/B).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
if ! command -v erl >/dev/null 2>&1; then
  echo "dist-bench: skipped: erl is not installed (apt-get install erlang-base)"
  exit 0
fi
cargo build --release -q -p counter
cargo build --release -q -p host --bin host -p e2e --bin bench
export ERL_CRASH_DUMP_SECONDS=0   # a failing erl writes no erl_crash.dump here

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cookie="bench$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
host_bin="${HOST_BIN:-target/release/host}"
mkdir -p "$work/drv"
cp "$(target/release/bench --tp-path 2>/dev/null)" "$work/drv/libtp.so"

ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$port" -address 127.0.0.1 >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
cat > "$work/host.toml" <<TOML
plugin_dirs = ["$PWD/target/release"]
threads = 2
[watch]
enabled = false
[control]
enabled = false
[[actors]]
behaviour = "counter"
name = "counter"
args = { start = 0 }
TOML
"$host_bin" --config "$work/host.toml" --name "hostb$$@127.0.0.1" --cookie "$cookie" \
  --epmd-port "$port" 2>"$work/host.log" &
pids+=($!)
# Host A: the driver actor `drv` (the test plugin) for the host -> BEAM and host <-> host
# rows, and a counter for the --all-nodes row.
cat > "$work/hosta.toml" <<TOML
plugin_dirs = ["$work/drv", "$PWD/target/release"]
libraries = ["tp", "counter"]
threads = 2
[watch]
enabled = false
[control]
socket = "$work/a.sock"
[[actors]]
behaviour = "tp"
name = "drv"
[[actors]]
behaviour = "counter"
name = "counter"
args = { start = 0 }
TOML
"$host_bin" --config "$work/hosta.toml" --name "hosta$$@127.0.0.1" --cookie "$cookie" \
  --epmd-port "$port" 2>"$work/hosta.log" &
pids+=($!)

# The anchor: a plain Erlang gen_server-shaped loop registered as `counter` on node B.
ERL_EPMD_PORT=$port erl -noshell -name "beamb$$@127.0.0.1" -setcookie "$cookie" \
  -kernel inet_dist_use_interface '{127,0,0,1}' -eval '
    Loop = fun L(N) ->
        receive
            {'"'"'$gen_call'"'"', From, get} -> gen_server:reply(From, N), L(N);
            {'"'"'$gen_cast'"'"', {incr, I}} -> L(N + I);
            _ -> L(N)
        end
    end,
    register(counter, spawn(fun() -> Loop(0) end)),
    receive stop -> ok end.' &
pids+=($!)
sleep 1.5
if ! kill -0 "${pids[1]}" 2>/dev/null; then cat "$work/host.log" >&2; exit 1; fi
if ! kill -0 "${pids[2]}" 2>/dev/null; then cat "$work/hosta.log" >&2; exit 1; fi

ERL_EPMD_PORT=$port erl -noshell -name "beama$$@127.0.0.1" -setcookie "$cookie" \
  -kernel inet_dist_use_interface '{127,0,0,1}' -eval '
    Runs = '"$runs"',
    BeamB = '"'"'beamb'"$$"'@127.0.0.1'"'"', HostB = '"'"'hostb'"$$"'@127.0.0.1'"'"',
    HostA = '"'"'hosta'"$$"'@127.0.0.1'"'"',
    %% {Row, Node the calls go to, Driver}: erl drives, or host A actor `drv` does.
    Targets = [{"BEAM <-> BEAM (anchor)", BeamB, erl},
               {"BEAM -> host", HostB, erl},
               {"host -> BEAM", BeamB, drv},
               {"host <-> host", HostB, drv}],
    N = 100000,
    Median = fun(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)) end,
    Rt = fun(Node, erl) ->
               T0 = erlang:monotonic_time(microsecond),
               [gen_server:call({counter, Node}, get) || _ <- lists:seq(1, N)],
               N * 1000000 div max(1, erlang:monotonic_time(microsecond) - T0);
            (Node, drv) ->
               T0 = erlang:monotonic_time(microsecond),
               {seq, 0} = gen_server:call({drv, HostA}, {remote_ping_pong, <<"counter">>, atom_to_binary(Node), N}, infinity),
               N * 1000000 div max(1, erlang:monotonic_time(microsecond) - T0)
    end,
    Burst = fun(Node, erl) ->
               T0 = erlang:monotonic_time(microsecond),
               [gen_server:cast({counter, Node}, {incr, 1}) || _ <- lists:seq(1, N)],
               gen_server:call({counter, Node}, get, 60000),
               (N + 1) * 1000000 div max(1, erlang:monotonic_time(microsecond) - T0);
            (Node, drv) ->
               T0 = erlang:monotonic_time(microsecond),
               {seq, 0} = gen_server:call({drv, HostA}, {remote_burst, <<"counter">>, atom_to_binary(Node), N}, infinity),
               (N + 1) * 1000000 div max(1, erlang:monotonic_time(microsecond) - T0)
    end,
    Rows = [begin
        pong = net_adm:ping(Node),
        pong = net_adm:ping(HostA),
        gen_server:call({counter, Node}, get),
        Rs = [{Rt(Node, Drv), Burst(Node, Drv)} || _ <- lists:seq(1, Runs)],
        [io:format("~s run ~p: ~p round trips/s, ~p msgs/s~n", [Name, I, R, B])
         || {I, {R, B}} <- lists:zip(lists:seq(1, Runs), Rs)],
        {Name, Median([R || {R, _} <- Rs]), Median([B || {_, B} <- Rs])}
    end || {Name, Node, Drv} <- Targets],
    io:format("~n| path | 100k sequential round trips/s | one-way burst (100k casts + 1 call), msgs/s |~n|---|---|---|~n"),
    [io:format("| ~s | ~p | ~p |~n", [Name, R, B]) || {Name, R, B} <- Rows],
    S = 2000,
    Per = fun(F) -> T0 = erlang:monotonic_time(microsecond), F(), (erlang:monotonic_time(microsecond) - T0) / S end,
    Spawns = fun(Node, M, F, A) ->
        fun() -> [begin R = erlang:spawn_request(Node, M, F, A, []),
                        receive {spawn_reply, R, ok, _} -> ok end end || _ <- lists:seq(1, S)] end
    end,
    Drv = fun() -> {seq, 0} = gen_server:call({drv, HostA}, {remote_spawns, atom_to_binary(HostB), <<"counter">>, [#{start => 0}], S}, infinity) end,
    SRows = [{"BEAM -> BEAM spawn_request (anchor)", Spawns(BeamB, erlang, self, [])},
             {"BEAM -> host (spawn_request of counter:init/1)", Spawns(HostB, counter, init, [#{start => 0}])},
             {"host -> host (ctx.spawn_remote of counter)", Drv}],
    SR = [{N2, Median([Per(F) || _ <- lists:seq(1, Runs)])} || {N2, F} <- SRows],
    io:format("~n| remote spawn, 2,000 sequential, each until its pid is back | us per spawn |~n|---|---|~n"),
    [io:format("| ~s | ~.1f |~n", [N2, V]) || {N2, V} <- SR],
    halt().'

# reload --all-nodes: host A swaps, then host B, the same bytes (two builds that differ by
# a trailing byte, alternated, so every reload is a real swap with state migration).
cp target/release/libcounter.so "$work/c1.so"; printf 'x' >> "$work/c1.so"
cp target/release/libcounter.so "$work/c2.so"; printf 'xy' >> "$work/c2.so"
times=()
for i in $(seq 1 "$runs"); do
  f="$work/c$(( i % 2 + 1 )).so"
  t0=$(date +%s%N)
  target/release/host ctl --socket "$work/a.sock" reload counter "$f" --all-nodes >"$work/nl.txt"
  t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000000 )))
done
cat "$work/nl.txt"
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo
echo "| reload --all-nodes, two hosts (counter, one actor each) | ms |"
echo "|---|---|"
echo "| command to last node swapped (median of $runs: ${times[*]}) | $median |"
