#!/usr/bin/env bash
# Runs the host's benchmarks (release build) and prints one markdown table.
# The machine is shared and noisy: figures are medians of several runs in one process.
#
# scripts/bench.sh --peers [--rounds N] [--runs N]
#   Compares the host with the Rust actor crates in tests/peers (actix, ractor, kameo, and
#   a floor of tokio tasks with mpsc channels) on the same workloads: builds everything in
#   release, then runs ours and each peer interleaved over N rounds (default 5; the order
#   rotates every round), each row group in a process of its own (the 1,000,000-actor row
#   alone, for its peak RSS), each process taking the median of --runs runs (default 3).
#   Prints one markdown table of the medians over the rounds, with ours / best peer.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--peers" ]]; then
  cargo build --release -q -p host --bin host
  cargo build --release -q -p e2e --bin bench
  exec target/release/bench "$@"
fi
shift

rounds=5
runs=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: scripts/bench.sh --peers [--rounds N] [--runs N]" >&2; exit 2 ;;
  esac
done

cargo build --release -q -p e2e --bin bench
(cd tests/peers && cargo build --release -q)

impls=(ours actix ractor kameo tokio)
declare -A bin=(
  [ours]=target/release/bench
  [actix]=tests/peers/target/release/peer-actix
  [ractor]=tests/peers/target/release/peer-ractor
  [kameo]=tests/peers/target/release/peer-kameo
  [tokio]=tests/peers/target/release/peer-tokio
)
groups=(
  host_to_actor,actor_to_actor,request_reply,blocking_call
  spawn,memory
  million
)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=${#impls[@]}
for ((r = 0; r < rounds; r++)); do
  echo "round $((r + 1)) of $rounds..." >&2
  for g in "${groups[@]}"; do
    for ((i = 0; i < n; i++)); do
      impl=${impls[$(((i + r) % n))]}
      # Each process prints `row<TAB>key<TAB>value<TAB>unit`; everything else goes to the log.
      if ! "${bin[$impl]}" --rows "$g" --runs "$runs" --machine \
        > "$out/last" 2>> "$out/$impl.log"; then
        echo "$impl failed on $g (round $((r + 1))):" >&2
        tail -20 "$out/$impl.log" >&2
        exit 1
      fi
      awk -F'\t' '$1 == "row"' "$out/last" >> "$out/$impl.tsv"
    done
  done
done

# The median of one implementation's values for one key ("" if none).
med() {
  awk -F'\t' -v k="$2" '$1 == "row" && $2 == k { print $3 }' "$out/$1.tsv" 2>/dev/null | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) printf "%s", v[int(NR / 2) + 1] }'
}

# The lowest and highest of one implementation's values for one key ("—" if none).
spread() {
  awk -F'\t' -v k="$2" '$1 == "row" && $2 == k { print $3 }' "$out/$1.tsv" 2>/dev/null | sort -g |
    awk 'function f(v) { return v >= 100 ? sprintf("%.0f", v) : sprintf("%.2f", v) }
      { v[NR] = $1 } END { if (NR) printf "%s–%s", f(v[1]), f(v[NR]); else printf "—" }'
}

rows=(
  "host_to_actor|message host → actor, 200k pipelined casts (ns/msg)"
  "actor_to_actor|message actor → actor, 200k casts (ns/msg)"
  "request_reply|request + reply between two actors, 50k sequential (ns/round trip)"
  "blocking_call|blocking call from a non-runtime thread, 20k sequential (ns/call)"
  "spawn|spawn an actor until its init has run, 100k (ns/actor)"
  "memory|memory per idle actor, RSS growth / 100k actors (B)"
  "million_wall|1,000,000 actors: spawn, one message each, all handled (ms)"
  "million_peak_rss|1,000,000 actors: peak RSS of the process (MiB)"
)
echo "| row (lower is better) | ours | actix | ractor | kameo | tokio floor | ours / best crate | ours / floor |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  key=${row%%|*}
  what=${row#*|}
  line="| $what"
  vals=()
  for impl in "${impls[@]}"; do
    v=$(med "$impl" "$key")
    vals+=("$v")
    line+=" | $(awk -v v="$v" 'BEGIN { if (v == "") print "—"; else if (v >= 100) printf "%.0f", v; else printf "%.2f", v }')"
  done
  # ours / the best (lowest) of actix, ractor and kameo; and ours / the tokio floor.
  ratios=$(printf '%s\n' "${vals[@]}" | awk '
    function r(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "—" : sprintf("%.2f", a / b) }
    NR == 1 { ours = $1 }
    NR >= 2 && NR <= 4 && $1 != "" && (best == "" || $1 + 0 < best + 0) { best = $1 }
    NR == 5 { floor = $1 }
    END { printf "%s | %s", r(ours, best), r(ours, floor) }')
  echo "$line | $ratios |"
done
echo
echo "Spread over the rounds (lowest–highest):"
echo
echo "| row | ours | actix | ractor | kameo | tokio floor |"
echo "|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  line="| ${row#*|}"
  for impl in "${impls[@]}"; do
    line+=" | $(spread "$impl" "${row%%|*}")"
  done
  echo "$line |"
done
echo
echo "Medians of $rounds rounds (each process the median of $runs runs; spawn and memory from 3 rounds of 100k in one process);" \
  "$(date -u +%Y-%m-%d), $(nproc) cores, 2 worker threads everywhere."
