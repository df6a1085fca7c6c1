#!/usr/bin/env bash
# Fuzzes the REST API (/api/v1) with schemathesis, driven by the OpenAPI
# document the service serves at /api/v1/openapi.json.
#
#  1. creates a Python venv at target/fuzz-venv and installs a pinned
#     schemathesis into it (installs python3-venv with apt when needed);
#  2. for each pass, sets up a fresh syncbridge data dir in a temporary
#     directory: the bundled plugins of target/plugins/*, two companies
#     (acme, globex), API tokens, and per company a Graph connection, an
#     Autotask connection and a (disabled) profile, so that reads by id hit
#     real objects;
#  3. serves the API on a free loopback port (--no-scheduler: runs are queued,
#     never executed) and waits for /healthz;
#  4. runs schemathesis with every check (`--checks all`) but
#     positive_data_acceptance (see fuzz_pass) and every phase
#     (examples, coverage, fuzzing, stateful):
#       admin   - an unscoped admin token, sent as `Authorization: Bearer`;
#       scoped  - an admin token scoped to company `acme`, sent the same way
#                 (through a Web Fuzzing Commons auth file) with a second token
#                 scoped to `globex` as its peer, so that the
#                 object_level_authorization check replays acme's reads as
#                 globex and fails when globex sees acme's objects;
#     each pass writes JUnit, JSON, HAR and the console log to target/fuzz-report/;
#  5. prints a summary (test cases, requests, failures by check) and exits
#     non-zero when schemathesis reported a failure or an error in any pass.
#
# Nothing but loopback is contacted: schemathesis talks to 127.0.0.1 only, and
# the service's own outbound HTTP (connection tests, mailbox discovery) is sent
# to a dead proxy on loopback, so a fuzzed connection cannot reach the internet.
#
# Environment:
#   SYNCBRIDGE_BIN        the binary to test (default target/debug/syncbridge)
#   FUZZ_MAX_EXAMPLES     test cases per operation and phase (default 100;
#                         both passes then take about 1-2 minutes)
#   FUZZ_WORKERS          concurrent schemathesis workers (default 2; 1 makes a
#                         seeded run repeatable)
#   FUZZ_SEED             seed for a reproducible run (default: random, printed)
#   FUZZ_PASSES           passes to run (default "admin scoped")
#   FUZZ_EXTRA_ARGS       extra arguments for `schemathesis run`, e.g.
#                         "--include-tag profiles" or "--max-failures 20"
#   SCHEMATHESIS_VERSION  the version pinned into the venv (default 4.32.5)
set -euo pipefail
cd "$(dirname "$0")/.."

SB_BIN=${SYNCBRIDGE_BIN:-target/debug/syncbridge}
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-100}
WORKERS=${FUZZ_WORKERS:-2}
SEED=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
read -r -a PASSES <<<"${FUZZ_PASSES:-admin scoped}"
read -r -a EXTRA_ARGS <<<"${FUZZ_EXTRA_ARGS:-}"
ST_VERSION=${SCHEMATHESIS_VERSION:-4.32.5}
VENV=target/fuzz-venv
REPORTS=$PWD/target/fuzz-report

[ -x "$SB_BIN" ] || { echo "fuzz-api: $SB_BIN is missing; build it (cargo build -p syncbridge) or set SYNCBRIDGE_BIN" >&2; exit 2; }

# Settings of the caller's own syncbridge (database URL, key, listen address)
# must not leak into the throw-away instance.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^SYNCBRIDGE_' || true)

log() { if [ -t 1 ]; then printf '\033[1m== %s\033[0m\n' "$*"; else printf '== %s\n' "$*"; fi; }

# --- 1. schemathesis in a venv -------------------------------------------------
if ! command -v curl >/dev/null 2>&1; then
  log "installing curl (seeding and health checks)"
  SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian/Ubuntu ship venv (ensurepip) separately.
    rm -rf "$VENV"
    log "python3 -m venv failed; installing python3-venv"
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv "$VENV"
  fi
fi
if [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$ST_VERSION" ]; then
  log "installing schemathesis $ST_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
ST=$(realpath "$VENV/bin/schemathesis")
PY=$(realpath "$VENV/bin/python")

# --- helpers -------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/syncbridge-fuzz.XXXXXX")
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
# shellcheck disable=SC2317  # called by the trap
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy of the binary: a cargo build running meanwhile may replace
# target/debug/syncbridge, and every pass must test the same build.
cp "$SB_BIN" "$WORK/syncbridge"
log "testing $SB_BIN: $("$WORK/syncbridge" --version), built $(date -u -r "$SB_BIN" '+%F %T UTC'), sha256 $(sha256sum "$WORK/syncbridge" | cut -c1-12)"
SB_BIN="$WORK/syncbridge"

# POST /plugins takes the package as an `application/gzip` body, for which
# schemathesis has no serializer: send the generated bytes as they are.
cat >"$WORK/hooks.py" <<'EOF'
import schemathesis

schemathesis.serializer.alias("application/gzip", "application/octet-stream")
EOF

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A port nothing listens on: the upstream of the seeded connections and the
# proxy for every outbound request of the service, so both fail at once.
DEAD_PORT=$(free_port)

# `api METHOD PATH [JSON]` with the unscoped admin token; warns on failure
# (seeding is best effort, the fuzzer will report a broken endpoint anyway).
api() {
  local out
  if ! out=$(curl -sS -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" \
      -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
      -w '\n%{http_code}' "$BASE/api/v1$2"); then
    echo "fuzz-api: warning: $1 $2 failed" >&2; return 0
  fi
  case "${out##*$'\n'}" in
    2??) ;;
    *) echo "fuzz-api: warning: seeding $1 $2 answered ${out##*$'\n'}: ${out%$'\n'*}" >&2 ;;
  esac
}

# --- 2. + 3. a fresh instance --------------------------------------------------
# Sets up a data dir for pass $1, serves it and seeds it; sets BASE and the tokens.
start_instance() {
  local pass=$1 data="$WORK/$1/data" p
  mkdir -p "$data"
  local sb=("$SB_BIN" --data-dir "$data" --log warn)

  local installed=()
  for p in target/plugins/*/; do
    [ -f "$p/plugin.toml" ] || continue
    "${sb[@]}" plugin install "$p" >/dev/null
    installed+=("$(basename "$p")")
  done
  log "[$pass] plugins: ${installed[*]:-none (run scripts/build-plugins.sh for richer coverage)}"

  "${sb[@]}" company add acme --name "Acme Corp" --notify "it@acme.example; noc@msp.example" >/dev/null
  "${sb[@]}" company add globex --name "Globex" --notify "it@globex.example" >/dev/null
  # `token create` prints the token on stdout and a reminder on stderr.
  token() { "${sb[@]}" token create "$@" 2>>"$WORK/$pass/token.err" | grep -o 'sbt_[A-Za-z0-9_]*' | head -n1; }
  ADMIN_TOKEN=$(token --name fuzz-admin --role admin)
  ACME_TOKEN=$(token --name fuzz-acme --role admin --company acme)
  GLOBEX_TOKEN=$(token --name fuzz-globex --role admin --company globex)
  if [ -z "$ADMIN_TOKEN" ] || [ -z "$ACME_TOKEN" ] || [ -z "$GLOBEX_TOKEN" ]; then
    echo "fuzz-api: could not read the tokens from \`token create\`:" >&2
    cat "$WORK/$pass/token.err" >&2; exit 1
  fi

  local port; port=$(free_port)
  BASE="http://127.0.0.1:$port"
  # The service's outbound HTTP goes through a proxy that is not there,
  # except to loopback (the seeded connections' dead upstream).
  NO_COLOR=1 HTTP_PROXY="http://127.0.0.1:$DEAD_PORT" HTTPS_PROXY="http://127.0.0.1:$DEAD_PORT" \
  ALL_PROXY="http://127.0.0.1:$DEAD_PORT" NO_PROXY=127.0.0.1,localhost \
    "$SB_BIN" --data-dir "$data" --log info serve --listen "127.0.0.1:$port" --no-scheduler \
    >"$REPORTS/$pass-server.log" 2>&1 &
  SERVER_PID=$!
  local _
  for _ in $(seq 1 300); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null \
      || { echo "fuzz-api: the server exited; see $REPORTS/$pass-server.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS "$BASE/healthz" >/dev/null || { echo "fuzz-api: $BASE/healthz never answered" >&2; exit 1; }
  log "[$pass] serving $BASE (pid $SERVER_PID, data $data)"
  # The document under test, kept with the reports.
  curl -fsS "$BASE/api/v1/openapi.json" >"$REPORTS/openapi.json"

  # Objects to read by id: per company two connections to a dead loopback
  # upstream and a disabled profile between them (disabled: saving queues no
  # run, so the profile can still be deleted); one queued dry run gives
  # /runs/{id} a real run.
  local have=" ${installed[*]:-} "
  if [[ $have == *" graph "* && $have == *" autotask "* && $have == *" m365-psa-contacts "* ]]; then
    local c dead="http://127.0.0.1:$DEAD_PORT" options
    options=$(cat demo/mapper-options.json 2>/dev/null || echo '{"target":"autotask"}')
    for c in acme globex; do
      api POST /connections "{\"id\":\"m365-$c\",\"plugin_id\":\"graph\",\"company_id\":\"$c\",
        \"config\":{\"graph_url\":\"$dead/v1.0\",\"tenant\":\"$c.onmicrosoft.com\"},
        \"allowed_hosts\":[\"127.0.0.1\"],\"allow_private_network\":true,
        \"credentials\":{\"default\":{\"kind\":\"bearer\",\"token\":\"fuzz\"}}}"
      api POST /connections "{\"id\":\"psa-$c\",\"plugin_id\":\"autotask\",\"company_id\":\"$c\",
        \"config\":{\"api_user\":\"api@$c.example\",\"zone_lookup_url\":\"$dead/atservicesrest\"},
        \"allowed_hosts\":[\"127.0.0.1\"],\"allow_private_network\":true,
        \"credentials\":{\"default\":{\"kind\":\"headers\",\"headers\":{\"ApiIntegrationCode\":\"X\",\"UserName\":\"api@$c.example\",\"Secret\":\"s\"}}}}"
      api POST /profiles "{\"id\":\"contacts-$c\",\"company_id\":\"$c\",
        \"source_connection\":\"m365-$c\",\"source_scope\":\"users\",
        \"mapper_plugin\":\"m365-psa-contacts\",\"mapper_options\":$options,
        \"target_connection\":\"psa-$c\",\"target_scope\":\"contacts:company=1\",\"enabled\":false}"
    done
    api POST /profiles/contacts-acme/dry-run
  fi
}

# --- 4. schemathesis -----------------------------------------------------------
# Runs schemathesis for pass $1 against the running instance; returns its exit code.
fuzz_pass() {
  local pass=$1 auth=()
  local cfg="$WORK/$pass/schemathesis.toml"
  cat >"$cfg" <<'EOF'
# 502 `upstream` is the documented answer of mailbox discovery when the outside
# system fails; here every outside system is unreachable on purpose.
[[operations]]
include-name = "POST /api/v1/connections/{id}/discover-mailboxes"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]
EOF
  case "$pass" in
    admin)
      auth=(--header "Authorization: Bearer $ADMIN_TOKEN") ;;
    scoped)
      # fixedHeaders is the same `Authorization: Bearer` header; `user` pins
      # every request to acme, `peers` loads globex for the ownership probes.
      cat >"$WORK/$pass/auth.json" <<EOF
{"auth": [
  {"name": "acme",   "fixedHeaders": [{"name": "Authorization", "value": "Bearer $ACME_TOKEN"}]},
  {"name": "globex", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $GLOBEX_TOKEN"}]}
]}
EOF
      cat >>"$cfg" <<EOF

[auth.wfc]
path = "$WORK/$pass/auth.json"
user = "acme"
peers = ["acme", "globex"]
EOF
      ;;
    *) echo "fuzz-api: unknown pass $pass (admin, scoped)" >&2; return 2 ;;
  esac

  log "[$pass] schemathesis $ST_VERSION: --checks all, --max-examples $MAX_EXAMPLES, --seed $SEED"
  local rc=0
  # schemathesis and hypothesis keep their state (.schemathesis/ with crash
  # files, .hypothesis/) in the working directory: run them in
  # target/fuzz-report/<pass>-state/, not in the work tree.
  mkdir -p "$REPORTS/$pass-state"
  # --continue-on-failure: keep generating for an operation after its first
  #   failure (every operation fails early on an undocumented 401, which would
  #   otherwise end its fuzzing after one example).
  # --exclude-checks positive_data_acceptance: every other check is on. This
  #   one expects every schema-valid request to succeed, which no schema can
  #   promise here: rules that depend on stored state (company namespaces,
  #   credentials entered again when a connection is re-pointed, a plugin
  #   package being a real gzip, a connection's allowed hosts), e-mail
  #   addresses, and JSON Schema's `integer` admitting 7.0 where the API
  #   takes 7. Those answers are documented 4xx (400/422) and asserted by the
  #   API tests; the negative twin, negative_data_rejection, stays on.
  # --no-color: the console log is kept as a report.
  # --generation-database none: no example database; --seed replays a run.
  # --max-redirects 0: never leave the loopback base URL.
  (cd "$REPORTS/$pass-state" &&
  NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost SCHEMATHESIS_HOOKS="$WORK/hooks.py" \
  "$ST" --config-file "$cfg" --no-color run "$BASE/api/v1/openapi.json" \
    "${auth[@]}" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --continue-on-failure \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --workers "$WORKERS" \
    --seed "$SEED" \
    --generation-database none \
    --max-redirects 0 \
    --request-timeout 30 \
    --report junit,json,har \
    --report-junit-path "$REPORTS/$pass-junit.xml" \
    --report-json-path "$REPORTS/$pass-report.json" \
    --report-har-path "$REPORTS/$pass-requests.har" \
    ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}) \
    2>&1 | tee "$REPORTS/$pass-console.log" || rc=$?
  # With pipefail the pipeline's status is schemathesis' unless tee failed.
  return "$rc"
}

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
STATUS=0
START=$SECONDS
for pass in "${PASSES[@]}"; do
  start_instance "$pass"
  fuzz_pass "$pass" || STATUS=1
  stop_server
done

# --- 5. summary ----------------------------------------------------------------
log "summary (reports in ${REPORTS#"$PWD"/}/, seed $SEED, $((SECONDS - START)) s in all)"
"$PY" - "$REPORTS" "${PASSES[@]}" <<'PY'
import json, pathlib, sys
reports, passes = pathlib.Path(sys.argv[1]), sys.argv[2:]
total_requests = total_failures = 0
for name in passes:
    try:
        doc = json.loads((reports / f"{name}-report.json").read_text())
    except (OSError, ValueError):
        print(f"{name}: no report (schemathesis did not finish)")
        continue
    try:
        requests = len(json.loads((reports / f"{name}-requests.har").read_text())["log"]["entries"])
    except (OSError, ValueError, KeyError):
        requests = None
    cases = doc["test_cases"]
    ops = doc.get("operations") or {}
    # Requests as recorded in the HAR: one per test case; the extra probes some
    # checks send (ignored_auth, object_level_authorization) are not in it.
    print(f"{name}: {requests if requests is not None else '?'} requests, {cases['generated']} test cases, "
          f"{ops.get('tested', '?')}/{ops.get('selected', '?')} operations, {doc['running_time']:.0f} s, "
          f"{len(doc['failures'])} distinct failure kinds, {cases['unique_failures']} unique failures, exit {doc['exit_code']}")
    for f in sorted(doc["failures"], key=lambda f: -f["count"]):
        ops_ = f["operations"]
        where = ", ".join(ops_) if len(ops_) <= 6 else f"{len(ops_)} operations (see {name}-console.log)"
        print(f"  {f['count']:4d} x {f['title']} [{f['code']}]: {where}")
    for e in doc["errors"]:
        print(f"  {e['count']:4d} x error: {e['title']}")
    total_requests += requests or 0
    total_failures += cases["unique_failures"]
print(f"total: {total_requests} requests, {total_failures} unique failures")
PY
exit "$STATUS"
