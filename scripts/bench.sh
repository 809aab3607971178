#!/usr/bin/env bash
# Runs the host's benchmarks (release build) and prints one markdown table.
# The machine is shared and noisy: figures are medians of several runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p host --bin host
cargo build --release -q -p e2e --bin bench
exec target/release/bench "$@"
