#!/usr/bin/env bash
# The offline demo of flow 2 (Microsoft 365 users -> Autotask contacts):
#  1. installs the wasm32-wasip2 target, builds the bundled plugins, the host
#     and the simulators;
#  2. starts the simulators seeded with a sample tenant (demo/seed.json):
#     Microsoft Graph with its token endpoint, and Autotask;
#  3. sets up syncbridge on embedded SQLite (.syncbridge-demo/): plugins,
#     a company, the two connections, a profile with four filters;
#  4. previews the filters, runs the sync, runs it again (nothing to do),
#     renames a user in M365 and runs once more (one update, by delta);
#  5. runs flow 1 (Autotask <-> Exchange calendar over EWS, scripts/demo-flow1.sh:
#     simulators over HTTPS on localhost:2610; DEMO_FLOW1=0 skips it), then flow 3
#     (Dynamics 365 mailboxes tested and enabled against Exchange, scripts/demo-flow3.sh:
#     localhost:2611; DEMO_FLOW3=0 skips it);
#  6. serves the REST API with an admin token and tells you where to look
#     (set DEMO_SERVE=0 to stop after step 5).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
./scripts/build-plugins.sh
cargo build --quiet -p syncbridge -p syncbridge-sim

DATA=.syncbridge-demo
PORT=${DEMO_SIM_PORT:-18090}
API=${DEMO_LISTEN:-127.0.0.1:8080}
SB=(./target/debug/syncbridge --data-dir "$DATA" --log warn)
rm -rf "$DATA"
mkdir -m 700 -p "$DATA"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the simulators on 127.0.0.1:$PORT (seed: demo/seed.json)"
./target/debug/syncbridge-sim --graph --autotask --port "$PORT" --seed demo/seed.json >"$DATA/sim.log" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/_admin/state" >/dev/null 2>&1 && break
  sleep 0.1
done
SIM=http://127.0.0.1:$PORT
TENANT=contoso.onmicrosoft.com

step "installing the bundled plugins"
for p in graph autotask m365-psa-contacts; do "${SB[@]}" plugin install "target/plugins/$p"; done

step "a customer company and its connections (credentials go in through stdin, sealed in the store)"
"${SB[@]}" company add contoso --name "Contoso Ltd" --notify "ops@msp.example; noc@msp.example"
"${SB[@]}" connection add m365 --plugin graph \
  --config "{\"graph_url\":\"$SIM/v1.0\",\"tenant\":\"$TENANT\",\"with_groups\":true}" \
  --allow-host 127.0.0.1 --allow-private-network --credentials-stdin <<JSON
{"default":{"kind":"oauth2-client-credentials","client_id":"22222222-2222-4222-8222-222222222222",
 "client_secret":"demo-secret","token_url":"$SIM/$TENANT/oauth2/v2.0/token",
 "scope":"https://graph.microsoft.com/.default"}}
JSON
"${SB[@]}" connection add psa --plugin autotask \
  --config "{\"api_user\":\"api@msp.example\",\"zone_lookup_url\":\"$SIM/atservicesrest\"}" \
  --allow-host 127.0.0.1 --allow-private-network --credentials-stdin <<'JSON'
{"default":{"kind":"headers","headers":{"ApiIntegrationCode":"DEMO","UserName":"api@msp.example","Secret":"at-secret"}}}
JSON
"${SB[@]}" connection test m365
"${SB[@]}" connection test psa

step "the profile: M365 users -> Autotask contacts of company 1, four filters, daily at 02:00"
"${SB[@]}" profile add contoso-contacts --company contoso --daily 02:00 \
  --source m365 --source-scope users --mapper m365-psa-contacts \
  --mapper-options "$(cat demo/mapper-options.json)" --rules "$(cat demo/rules.json)" \
  --target psa --target-scope contacts:company=1

step "filter preview: which filter takes each user, where they land, what will happen (nothing written)"
"${SB[@]}" preview contoso-contacts

step "the sync"
"${SB[@]}" run contoso-contacts --quiet

step "again: nothing changed, nothing written"
"${SB[@]}" run contoso-contacts --quiet

step "Adele is renamed in M365; the next run brings it by users/delta"
GRAPH_TOKEN=$(curl -fsS -X POST "$SIM/$TENANT/oauth2/v2.0/token" -d grant_type=client_credentials \
  -d client_id=22222222-2222-4222-8222-222222222222 -d client_secret=demo-secret \
  -d scope=https://graph.microsoft.com/.default | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fsS -X PATCH "$SIM/v1.0/users/u-01" -H "Authorization: Bearer $GRAPH_TOKEN" \
  -H 'content-type: application/json' -d '{"surname":"Vance-Smith"}' >/dev/null
"${SB[@]}" run contoso-contacts --quiet

step "what the PSA holds now"
curl -fsS "$SIM/_admin/state" >"$DATA/state.json"
python3 - "$DATA/state.json" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))["autotask"]["entities"]
for c in sorted(state.get("contacts", []), key=lambda c: c["id"]):
    print("  #%-5s %-10s %-14s %-40s site %-4s active %s" % (c["id"], c.get("firstName", ""), c.get("lastName", ""),
          c.get("emailAddress", ""), c.get("companyLocationID"), c.get("isActive")))
PY

step "why does Alex (matched by e-mail) have this last name?"
"${SB[@]}" explain contoso-contacts u-02 --field last_name
"${SB[@]}" runs --profile contoso-contacts

if [ "${DEMO_FLOW1:-1}" != "0" ]; then
  step "flow 1: Autotask <-> Exchange calendar (the MS Exchange Extension), over EWS"
  ./scripts/demo-flow1.sh
fi

if [ "${DEMO_FLOW3:-1}" != "0" ]; then
  step "flow 3: Dynamics 365 server-side synchronization (email server profile, mailboxes, Test & Enable)"
  ./scripts/demo-flow3.sh
fi

if [ "${DEMO_SERVE:-1}" = "0" ]; then exit 0; fi
TOKEN=$("${SB[@]}" token create --name demo --role admin | grep -o 'sbt_[A-Za-z0-9_]*' | head -n1)
step "serving the API on http://$API (Ctrl-C stops)"
cat <<EOF2
  export TOKEN=$TOKEN
  curl -s -H "Authorization: Bearer \$TOKEN" http://$API/api/v1/runs | python3 -m json.tool
  curl -s -H "Authorization: Bearer \$TOKEN" http://$API/api/v1/profiles/contoso-contacts
  curl -s -H "Authorization: Bearer \$TOKEN" "http://$API/api/v1/profiles/contoso-contacts/explain?record=u-02"
  curl -s -X POST -H "Authorization: Bearer \$TOKEN" http://$API/api/v1/profiles/contoso-contacts/run
  curl -s http://$API/api/v1/openapi.json | python3 -m json.tool | head
EOF2
"${SB[@]}" --log info serve --listen "$API"
