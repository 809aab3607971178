#!/usr/bin/env bash
# Two hosts on loopback as one cluster, unattended: the `payment` service runs on one
# (pay), its `payment_api` client on the other (api), calling across with a 300 ms
# timeout. A real `erl` shell node (if installed) calls the counter on pay and monitors
# it. Then pay is killed: api's log shows `node_down`, its pending request fails at once,
# and its supervisor restarts it; pay comes back under the same name and the calls
# resume. Finally a rebuilt payment plugin is loaded on both hosts with one command
# (`host ctl reload payment --all-nodes`). EPMD: whatever runs on the port, else the
# host starts one (`epmd` if installed, else its own `host epmd`). Exits non-zero if a
# step is not seen.
set -euo pipefail
cd "$(dirname "$0")/.."

src=plugins/payment/src/lib.rs
work=$(mktemp -d)
backup="$work/payment.rs"
cp "$src" "$backup"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ERL_EPMD_PORT=$port
export ERL_CRASH_DUMP_SECONDS=0
cookie="demo$$"
pay="pay$$@127.0.0.1"
api="api$$@127.0.0.1"
pids=()
cleanup() {
  cp "$backup" "$src"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  # The EPMD a host started outlives it (as erl's does): stop it like `epmd -kill`.
  (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf '\x00\x01\x6b' >&3) 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_for() { # file, pattern, seconds
  local deadline=$((SECONDS + $3))
  until grep -q -- "$2" "$1"; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for: $2 in $1" >&2; cat "$1" >&2; exit 1; fi
    sleep 0.2
  done
}
count() { grep -c -- "$2" "$1" || true; }

say "building the host and the plugins"
cargo build -q -p payment -p counter
cargo build -q -p host

cat >"$work/pay.toml" <<TOML
plugin_dirs = ["$PWD/target/debug"]
libraries = ["payment", "counter"]
threads = 2
log_format = "text"
[watch]
enabled = false       # reloads come from the one command below
[[actors]]
behaviour = "payment"
name = "payment"
[[actors]]
behaviour = "counter"
name = "counter"
args = { start = 0 }
TOML
cat >"$work/api.toml" <<TOML
plugin_dirs = ["$PWD/target/debug"]
libraries = ["payment", "counter"]
threads = 2
log_format = "text"
[watch]
enabled = false
[supervisor]
name = "root"
strategy = "one_for_one"
intensity = 5
period_ms = 10000
[[supervisor.children]]
behaviour = "payment_api"
name = "api"
args = { every_ms = 500, timeout_ms = 300, node = "$pay" }
TOML

start_pay() {
  NO_COLOR=1 target/debug/host --config "$work/pay.toml" --name "$pay" --cookie "$cookie" \
    --socket "$work/pay.sock" >>"$work/pay.log" 2>&1 &
  pay_pid=$!
  pids+=("$pay_pid")
}

say "starting pay ($pay: payment, counter) and api ($api: payment_api -> {payment, pay})"
start_pay
wait_for "$work/pay.log" 'event="dist_listening"' 30
grep -E 'epmd_started|dist_listening' "$work/pay.log"
NO_COLOR=1 target/debug/host --config "$work/api.toml" --name "$api" --cookie "$cookie" \
  --socket "$work/api.sock" >"$work/api.log" 2>&1 &
pids+=($!)
wait_for "$work/api.log" 'request [0-9]*: Ok(' 30
grep -E 'node_up|request' "$work/api.log" | head -n 6

if command -v erl >/dev/null 2>&1; then
  say "a real Erlang node calls the counter on pay and monitors it"
  erl -noshell -name "shell$$@127.0.0.1" -setcookie "$cookie" \
    -kernel inet_dist_use_interface '{127,0,0,1}' -eval "
      P = '$pay',
      io:format(\"gen_server:call({counter, P}, get) -> ~p~n\", [gen_server:call({counter, P}, get)]),
      R = erlang:monitor(process, {counter, P}),
      io:format(\"monitor(process, {counter, P}) -> ~p~n\", [R]),
      io:format(\"rpc:call(P, host, whereis, [counter]) -> ~p~n\", [rpc:call(P, host, whereis, [counter])]),
      halt()." 2>&1 | tee "$work/erl.log"
  grep -q 'get) -> ' "$work/erl.log"
else
  say "(erl is not installed: skipping the Erlang shell node; apt-get install erlang-base)"
fi

say "killing pay (kill -9): api sees node_down, its request fails at once, its supervisor restarts it"
before=$(count "$work/api.log" 'event="child_started"')
kill -9 "$pay_pid"
wait_for "$work/api.log" 'event="node_down"' 20
wait_for "$work/api.log" 'payment node .* is down' 20
deadline=$((SECONDS + 20))
until [ "$(count "$work/api.log" 'event="child_started"')" -gt "$before" ]; do
  if [ $SECONDS -ge $deadline ]; then echo "api was not restarted" >&2; cat "$work/api.log" >&2; exit 1; fi
  sleep 0.2
done
grep -E 'node_down|is down|timed out|unavailable|child_exited|child_started' "$work/api.log" | tail -n 8

say "pay comes back under the same name; the calls resume"
oks=$(count "$work/api.log" 'Ok(')
start_pay
deadline=$((SECONDS + 30))
until [ "$(count "$work/api.log" 'Ok(')" -gt "$oks" ]; do
  if [ $SECONDS -ge $deadline ]; then echo "the calls did not resume" >&2; cat "$work/api.log" >&2; exit 1; fi
  sleep 0.2
done
grep -E 'request [0-9]*: Ok' "$work/api.log" | tail -n 2

say "a rebuilt payment (1.0.0 -> 1.1.0), loaded on both hosts with one command"
sed -i 's/const VERSION: &'"'"'static str = "1.0.0";/const VERSION: \&'"'"'static str = "1.1.0";/' "$src"
cargo build -q -p payment
echo "\$ host ctl reload payment --all-nodes"
target/debug/host ctl --socket "$work/pay.sock" reload payment --all-nodes | tee "$work/nl.txt"
grep -q "^$pay: ok" "$work/nl.txt"
grep -q "^$api: ok" "$work/nl.txt"
echo "\$ host ctl --node $api list     # through pay's distribution connection"
target/debug/host ctl --socket "$work/pay.sock" --node "$api" list | tee "$work/list.txt"
grep -q "payment_api.*1.1.0" "$work/list.txt"

say "done: the cluster survived a node's death and took new code on every node"
