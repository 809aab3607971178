#!/usr/bin/env bash
# Builds the host and the example plugins, then runs the host on its built-in demo.
# Extra arguments go to the host, e.g. `scripts/run-demo.sh --log-format json`.
# In another terminal: edit plugins/counter/src/lib.rs, run `cargo build -p counter`,
# and watch the `reload` event.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p host -p counter -p echo -p ticker -p payment -p flaky
exec target/debug/host "$@"
