#!/usr/bin/env bash
# Client-compatibility suite: real client libraries of each service, installed
# from PyPI into target/compat-venv, run their normal operations against the
# simulators, unmodified (no shim, no monkey-patch).
#
# For each tests/compat/<client>.py it starts a fresh `syncbridge-sim` on a
# free loopback port over HTTPS (a generated CA; its PEM is trusted through
# REQUESTS_CA_BUNDLE / SSL_CERT_FILE), seeded with tests/compat/<client>.seed.json
# when that file exists, and runs the script with (its libraries pinned in
# tests/compat/<client>.requirements.txt):
#   SIM_BASE   https://127.0.0.1:PORT (the certificate also names localhost)
#   SIM_CA     the PEM to trust
# Each script prints one line per operation ("PASS op" / "FAIL op: why") and a
# last line "TOTAL <client>: <run> run, <passed> passed, <failed> failed", and
# exits non-zero when an operation failed. This script prints every total and
# fails when any client failed.
#
# Environment:
#   COMPAT_ONLY   run only these clients (space-separated script names without .py)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/compat-venv
OUT=target/compat
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    echo "python3 -m venv failed; installing python3-venv"
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
fi
# Each client pins its libraries in tests/compat/<client>.requirements.txt.
reqs=()
for r in tests/compat/*.requirements.txt; do [ -f "$r" ] && reqs+=(-r "$r"); done
[ "${#reqs[@]}" = 0 ] || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${reqs[@]}"

cargo build -q -p syncbridge-sim --bin syncbridge-sim
SIM="${CARGO_TARGET_DIR:-target}/debug/syncbridge-sim"

clients=()
if [ -n "${COMPAT_ONLY:-}" ]; then
  for c in $COMPAT_ONLY; do clients+=("tests/compat/$c.py"); done
else
  for f in tests/compat/*.py; do
    case "$(basename "$f")" in _*) continue ;; esac
    clients+=("$f")
  done
fi

failed=0
totals=()
for script in "${clients[@]}"; do
  name="$(basename "$script" .py)"
  seed_args=()
  [ -f "tests/compat/$name.seed.json" ] && seed_args=(--seed "tests/compat/$name.seed.json")
  log="$OUT/$name.sim.log"
  "$SIM" --tls ca --ca-out "$OUT/$name-ca.pem" --port 0 "${seed_args[@]}" >"$log" 2>&1 &
  sim_pid=$!
  base=""
  for _ in $(seq 1 100); do
    base="$(awk '$1 == "base" {print $2}' "$log" 2>/dev/null || true)"
    [ -n "$base" ] && break
    kill -0 "$sim_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$base" ]; then
    echo "FAIL $name: the simulator did not start; its output:"; cat "$log"
    kill "$sim_pid" 2>/dev/null || true
    failed=1; totals+=("TOTAL $name: simulator did not start"); continue
  fi
  echo "== $name against $base"
  set +e
  SIM_BASE="$base" SIM_CA="$OUT/$name-ca.pem" \
    REQUESTS_CA_BUNDLE="$OUT/$name-ca.pem" SSL_CERT_FILE="$OUT/$name-ca.pem" \
    "$VENV/bin/python" "$script" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  kill "$sim_pid" 2>/dev/null || true
  wait "$sim_pid" 2>/dev/null || true
  total="$(grep '^TOTAL ' "$OUT/$name.log" | tail -n1)"
  [ -n "$total" ] || total="TOTAL $name: no total printed (exit $rc)"
  totals+=("$total")
  [ "$rc" = 0 ] || failed=1
done

echo "== client compatibility"
printf '%s\n' "${totals[@]}"
exit "$failed"
