#!/usr/bin/env bash
# The reliability soak: 1,000 reload cycles (or $1) of a plugin alternating between two
# versions with different state types, while 10 senders keep a steady load on 100 actors
# of it: with the default configuration and one build in ten broken (its code_change
# errors, so it must roll back), then with unload = false, then unload = true. Prints a
# markdown table; exits non-zero if a message was lost, duplicated or reordered, a reload
# failed, or (default configuration) RSS at the end is over 1.5x RSS after 100 cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p e2e --bin soak
exec target/release/soak "${1:-1000}"
