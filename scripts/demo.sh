#!/usr/bin/env bash
# The user story, unattended: start the host on the demo, change the counter (new
# behaviour + a new state field), rebuild it with cargo, show the reload event and the
# migrated state in the log, then restore the file (a second reload, back to 1.0.0).
# Exits non-zero if a reload is not seen.
set -euo pipefail
cd "$(dirname "$0")/.."

src=plugins/counter/src/lib.rs
backup=$(mktemp)
log=$(mktemp)
cp "$src" "$backup"
host_pid=""
cleanup() {
  cp "$backup" "$src"
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
  rm -f "$backup"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_for() { # pattern, seconds
  local deadline=$((SECONDS + $2))
  until grep -q -- "$1" "$log"; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for: $1" >&2; cat "$log" >&2; exit 1; fi
    sleep 0.2
  done
}

say "building the host and the example plugins"
# Plugins apart from the host, so the `cargo build -p counter` below compiles only the
# counter (see run-demo.sh).
cargo build -q -p counter -p echo -p ticker -p payment -p flaky
cargo build -q -p host

say "starting the host on the built-in demo (log: $log)"
NO_COLOR=1 target/debug/host >"$log" 2>&1 &
host_pid=$!
wait_for 'tick: count = 3' 30
grep -E 'event="(load|actor_started)"|tick:' "$log" | tail -n 12

say "changing the counter: a tick now adds 10, and the state gets a 'ticks' field"
cp scripts/demo/counter_v2.rs "$src"
diff -u "$backup" "$src" | sed -n '1,60p' || true

say "cargo build -p counter"
cargo build -q -p counter
wait_for 'event="reload"' 60
grep 'event="reload"' "$log"
wait_for 'ticks since the upgrade: 2' 30
say "the counter carries on from its migrated count, with the new code"
grep 'tick:' "$log" | tail -n 5

say "restoring the original counter and rebuilding (a second reload, back to 1.0.0)"
cp "$backup" "$src"
cargo build -q -p counter
wait_for 'to="1.0.0"' 60
grep 'event="reload"' "$log" | tail -n 1
sleep 1.5
grep 'tick:' "$log" | tail -n 2

if grep -q 'outcome="rolled_back"\|outcome="rejected"' "$log"; then
  echo "a reload failed" >&2
  exit 1
fi
say "done: two reloads, state migrated both ways, no restart"
