#!/usr/bin/env bash
# Builds the host and the example plugins, then runs the host on its built-in demo.
# Extra arguments go to the host, e.g. `scripts/run-demo.sh --log-format json`.
# In another terminal: edit plugins/counter/src/lib.rs, run `cargo build -p counter`,
# and watch the `reload` event.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two builds, plugins first: cargo turns on a dependency's features across every package
# of one build, and the host's dependencies want more of them than a plugin's (libc's
# extra_traits, memchr's std, smallvec's union, syn's full). Built with the host, the
# plugins' dependencies would get the host's features, and the first `cargo build -p
# counter` (a plugin alone) would compile a dozen of them again, plugin-api included.
cargo build -p counter -p echo -p ticker -p payment -p flaky
cargo build -p host
exec target/debug/host "$@"
