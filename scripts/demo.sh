#!/usr/bin/env bash
# Runs syncbridge on a fresh machine: installs the wasm32-wasip2 target, builds
# the bundled plugins and the host, and serves on 127.0.0.1:8080 with an
# embedded SQLite database under .syncbridge/, installing the bundled plugins.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
./scripts/build-plugins.sh
cargo build --release -p syncbridge
exec ./target/release/syncbridge --data-dir .syncbridge serve --install-from target/plugins "$@"
