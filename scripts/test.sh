#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests
# need (the wasm32-wasip2 target, xmllint), makes sure the local PostgreSQL is
# up when it is installed, checks formatting and the host's one-way module
# layers, builds the plugin components, builds every target with clippy's
# lints (-D warnings), runs cargo test, runs the client-compatibility suite
# (scripts/compat.sh), then fuzzes the REST API with schemathesis
# (scripts/fuzz-api.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2

if ! command -v xmllint >/dev/null 2>&1; then
  echo "installing libxml2-utils (xmllint validates EWS envelopes against the XSD)"
  (apt-get update -qq && apt-get install -y -qq libxml2-utils) >/dev/null
fi

# aiosmtpd: the SMTP server the e-mail notification tests send to. The Debian
# package installs into the system Python (/usr/bin/python3).
if ! python3 -c 'import aiosmtpd.smtp' >/dev/null 2>&1 && ! /usr/bin/python3 -c 'import aiosmtpd.smtp' >/dev/null 2>&1; then
  echo "installing python3-aiosmtpd (the SMTP server of the notification tests)"
  (apt-get update -qq && apt-get install -y -qq python3-aiosmtpd) >/dev/null
fi

# PostgreSQL: the store tests run on it too. Start the local cluster if it is installed but down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi

# One build from scratch gains nothing from incremental caches, and writing them costs time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
python3 scripts/check-layers.py
./scripts/build-plugins.sh
# Clippy lints the workspace's crates while they compile for the tests, as `cargo clippy`
# does (clippy-driver as the workspace's rustc wrapper, the lint levels in CLIPPY_ARGS):
# every target of every crate is linted with -D warnings, and the dependencies are compiled
# once instead of once checked for clippy and once more built for the tests.
if ! RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null)"; then
  rustup component add clippy >/dev/null
  RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
fi
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --workspace --all-targets --no-run
cargo test --workspace --no-fail-fast "$@"
# (The wrapper stays set: the builds below then reuse these artifacts.)

# Real client libraries of each service (exchangelib, msal, O365, connectpyse,
# py-autotask from PyPI, unmodified) against the simulators: scripts/compat.sh.
./scripts/compat.sh

# The REST API against its own OpenAPI document: schemathesis (installed into
# target/fuzz-venv) fuzzes a served instance with an admin token and a
# company-scoped one; any server error, undocumented status code or schema
# violation fails the run. FUZZ_MAX_EXAMPLES bounds it (under a minute each
# pass). A fixed seed and one worker make the run repeatable; run
# ./scripts/fuzz-api.sh alone (random seed) to explore further.
FUZZ_MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-60} FUZZ_SEED=${FUZZ_SEED:-380689031} FUZZ_WORKERS=${FUZZ_WORKERS:-1} \
  ./scripts/fuzz-api.sh
