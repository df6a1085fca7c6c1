#!/usr/bin/env bash
# The offline demo of flow 1 (Autotask <-> Exchange calendar, the MS Exchange
# Extension), run by scripts/demo.sh after flow 2, or alone:
#  1. starts the EWS and Autotask simulators over HTTPS on localhost:2610 (one
#     of the three ports Exchange may use) with a generated CA that syncbridge
#     is told to trust (--ca-cert); PSA appointments, a to-do and a service
#     call for Tess are dated from today;
#  2. saves an Exchange profile (the save tests the connection with the
#     synchronization account), lists the Autotask resources and enables two;
#  3. runs the engine profiles the profile derived per resource: Tess's PSA
#     items appear in her Exchange mailbox;
#  4. in "Outlook" (EWS SOAP over curl) Tess moves the review by two hours,
#     renames it and adds a dentist appointment; the next runs write the new
#     time back to Autotask (not the name), import the dentist, and nothing
#     comes back twice.
# Expects the host, the simulators and the plugins built (scripts/demo.sh does that).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=.syncbridge-demo-flow1
PORT=2610
rm -rf "$DATA"
mkdir -m 700 -p "$DATA"
step() { printf '\n\033[1m== flow 1: %s\033[0m\n' "$*"; }

# The seed, with the PSA's items dated from today.
python3 - demo/exchange-seed.json "$DATA/seed.json" <<'PY'
import datetime, json, sys
seed = json.load(open(sys.argv[1]))
day = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
at = lambda d, h: (day + datetime.timedelta(days=d, hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
e = seed["autotask"]["entities"]
e["Appointments"] = [{"id": 500, "resourceID": 30, "title": "Quarterly review", "description": "Bring the numbers",
                      "startDateTime": at(1, 9), "endDateTime": at(1, 10)}]
e["ToDos"] = [{"id": 600, "companyID": 1, "assignedToResourceID": 30, "actionType": 1,
               "activityDescription": "Call Ann about the quote", "startDateTime": at(2, 9), "endDateTime": at(2, 10)}]
e["ServiceCalls"] = [{"id": 800, "companyID": 1, "description": "Server swap", "status": 1,
                      "startDateTime": at(3, 10), "endDateTime": at(3, 12)}]
e["ServiceCallTickets"] = [{"id": 810, "serviceCallID": 800, "ticketID": 77}]
e["ServiceCallTicketResources"] = [{"id": 811, "serviceCallTicketID": 810, "resourceID": 30}]
json.dump(seed, open(sys.argv[2], "w"))
PY

step "the EWS and Autotask simulators on https://localhost:$PORT (a generated CA)"
./target/debug/syncbridge-sim --ews --autotask --port "$PORT" --tls ca --ca-out "$DATA/ca.pem" \
  --seed "$DATA/seed.json" >"$DATA/sim.log" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$DATA/ca.pem" ] && curl -fsS --cacert "$DATA/ca.pem" "https://localhost:$PORT/_admin/state" >/dev/null 2>&1 && break
  sleep 0.1
done
SIM=https://localhost:$PORT
CURL=(curl -fsS --cacert "$DATA/ca.pem")
SB=(./target/debug/syncbridge --data-dir "$DATA" --log warn --ca-cert "$DATA/ca.pem")

step "plugins and the Autotask connection"
for p in ews autotask psa-exchange; do "${SB[@]}" plugin install "target/plugins/$p" >/dev/null; done
"${SB[@]}" connection add psa-at --plugin autotask \
  --config "{\"api_user\":\"api@msp.example\",\"zone_lookup_url\":\"$SIM/atservicesrest\"}" \
  --allow-host localhost --allow-host 127.0.0.1 --allow-private-network --credentials-stdin <<'JSON'
{"default":{"kind":"headers","headers":{"ApiIntegrationCode":"DEMO","UserName":"api@msp.example","Secret":"at-secret"}}}
JSON

step "the Exchange profile (demo/exchange-profile.json); saving tests the connection"
(umask 077 && printf 'svc-demo-pw' >"$DATA/svc.secret")
"${SB[@]}" exchange add contoso --settings-file demo/exchange-profile.json --secret-file "$DATA/svc.secret"
rm -f "$DATA/svc.secret"

step "the Resources tab: every Autotask resource; Tess and Sam enabled (No Mail has no address)"
"${SB[@]}" exchange discover contoso
"${SB[@]}" exchange enable contoso 30 31
"${SB[@]}" exchange resources contoso

runs() {
  for p in $("${SB[@]}" profile list | grep -o 'contoso-[a-z-]*-3[01]' | sort -u); do
    # One line per run: the profile, its status and what it did.
    "${SB[@]}" run "$p" --quiet | awk -v p="$p" '
      /^run / { status = $NF; gsub(/[()]/, "", status) }
      /^ [a-z]/ && $NF ~ /^[0-9]+$/ && $NF > 0 && $1 != "ACTION" && $1 != "unchanged" { did = did sprintf(" %s %s", $(NF-1) == "write" ? "write back" : $1, $NF) }
      END { printf "  %-28s %-10s%s\n", p, status, (did == "" ? " nothing to do" : did) }'
  done
}
calendar() {
  "${CURL[@]}" "$SIM/_admin/state" >"$DATA/state.json"
  python3 - "$DATA/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
folders = {f["id"]: (f["mailbox"], f["name"]) for f in s["ews"]["folders"]}
print("  Exchange (Tess):")
for i in s["ews"]["items"]:
    mailbox, folder = folders.get(i["folder"], ("?", "?"))
    if mailbox == "tess@msp.example" and folder in ("Calendar", "Tasks"):
        p = i["props"]
        print("    %-9s %-34s %s .. %s" % (folder, p.get("Subject", ""), p.get("Start", p.get("StartDate", "")), p.get("End", p.get("DueDate", ""))))
print("  Autotask appointments of Tess:")
for a in s["autotask"]["entities"].get("appointments", []):
    if a.get("resourceID") == 30:
        print("    #%-5s %-34s %s .. %s" % (a["id"], a.get("title", ""), a.get("startDateTime"), a.get("endDateTime")))
PY
}

step "the engine profiles derived per resource and kind, and a first run of each"
"${SB[@]}" profile list | grep contoso- || true
runs
calendar

step "in Outlook, Tess moves the review two hours later, renames it, and adds a dentist appointment"
REVIEW=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(next(i["id"] for i in s["ews"]["items"] if i["props"].get("Subject")=="Quarterly review"))' "$DATA/state.json")
START=$(python3 -c 'import datetime as d; t=d.datetime.now(d.timezone.utc).replace(hour=0,minute=0,second=0,microsecond=0)+d.timedelta(days=1,hours=11); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))')
END=$(python3 -c 'import datetime as d; t=d.datetime.now(d.timezone.utc).replace(hour=0,minute=0,second=0,microsecond=0)+d.timedelta(days=1,hours=12); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))')
DENTIST=$(python3 -c 'import datetime as d; t=d.datetime.now(d.timezone.utc).replace(hour=0,minute=0,second=0,microsecond=0)+d.timedelta(days=4,hours=14); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))')
DENTIST_END=$(python3 -c 'import datetime as d; t=d.datetime.now(d.timezone.utc).replace(hour=0,minute=0,second=0,microsecond=0)+d.timedelta(days=4,hours=15); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))')
soap() {
  "${CURL[@]}" -u 'tess@msp.example:tess-demo-pw' -H 'content-type: text/xml; charset=utf-8' \
    --data-binary @- "$SIM/EWS/Exchange.asmx" >/dev/null
}
soap <<XML
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header>
<soap:Body><m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange><t:ItemId Id="$REVIEW"/><t:Updates>
<t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:CalendarItem><t:Subject>Review (moved)</t:Subject></t:CalendarItem></t:SetItemField>
<t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>$START</t:Start></t:CalendarItem></t:SetItemField>
<t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>$END</t:End></t:CalendarItem></t:SetItemField>
</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem></soap:Body></soap:Envelope>
XML
soap <<XML
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
<soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header>
<soap:Body><m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items>
<t:CalendarItem><t:Subject>Dentist</t:Subject><t:Start>$DENTIST</t:Start><t:End>$DENTIST_END</t:End></t:CalendarItem>
</m:Items></m:CreateItem></soap:Body></soap:Envelope>
XML
calendar

step "the next runs: the new time goes back to Autotask, the name is put right in Exchange, the dentist is imported"
runs
calendar

step "once more: nothing to write either way"
runs
