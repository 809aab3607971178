#!/usr/bin/env bash
# The reliability soak: 1,000 reload cycles (or $1) of a plugin alternating between two
# versions with different state types, while 10 senders keep a steady load on 100 actors
# of it; once with retired versions kept mapped (the default) and once with unload mode.
# Prints a markdown table; exits non-zero if a message was lost, duplicated or reordered,
# or a reload failed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p e2e --bin soak
exec target/release/soak "${1:-1000}"
