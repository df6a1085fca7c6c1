#!/usr/bin/env bash
# The offline demo of flow 3 (Dynamics 365 server-side synchronization with
# Exchange on premises), run by scripts/demo.sh after flow 1, or alone:
#  1. starts the EWS and Dynamics (Dataverse) simulators over HTTPS on
#     localhost:2611 with a generated CA syncbridge is told to trust;
#  2. adds the Dynamics organization (the dynamics plugin), saves an email
#     server profile (EWS, the profile's credentials with impersonation) and
#     makes it the organization's default;
#  3. reads the organization's mailboxes, approves Bob's email, applies the
#     default email settings to Ann, Bob and Dee and runs Test & Enable: Ann and
#     Bob pass; Dee's mailbox was moved to Exchange Online, so Exchange on
#     premises refuses it (401) and the mailbox is disabled;
#  4. shows the statuses as Dynamics now holds them, the alerts, and the 401
#     diagnosis for Dee (cause 2 of KB 3212785);
#  5. processes Ann's mailbox: her Inbox tracked as e-mail activities (the
#     message received before Process Email From is not), Dynamics e-mail she
#     wrote sent through Exchange to Bob and marked sent, her Dynamics
#     appointment put into her calendar.
# Expects the host, the simulators and the plugins built (scripts/demo.sh does that).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=.syncbridge-demo-flow3
PORT=2611
TOKEN=demo-dataverse-token
rm -rf "$DATA"
mkdir -m 700 -p "$DATA"
step() { printf '\n\033[1m== flow 3: %s\033[0m\n' "$*"; }

step "the EWS and Dynamics simulators on https://localhost:$PORT (a generated CA)"
./target/debug/syncbridge-sim --ews --dynamics --port "$PORT" --tls ca --ca-out "$DATA/ca.pem" \
  --seed demo/dynamics-seed.json >"$DATA/sim.log" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$DATA/ca.pem" ] && curl -fsS --cacert "$DATA/ca.pem" "https://localhost:$PORT/_admin/state" >/dev/null 2>&1 && break
  sleep 0.1
done
SIM=https://localhost:$PORT
SB=(./target/debug/syncbridge --data-dir "$DATA" --log warn --ca-cert "$DATA/ca.pem")

step "plugins and the Dynamics organization (its Web API, a bearer token sealed in the connection)"
for p in dynamics ews dynamics-exchange; do "${SB[@]}" plugin install "target/plugins/$p" >/dev/null; done
"${SB[@]}" connection add crm --plugin dynamics --config "{\"url\":\"$SIM\"}" \
  --allow-host localhost --allow-private-network --credentials-stdin <<JSON
{"default":{"kind":"bearer","token":"$TOKEN"}}
JSON

step "an email server profile: Exchange on premises, the profile's credentials with impersonation"
cat >"$DATA/profile.json" <<JSON
{"name": "Contoso Exchange", "description": "Exchange 2016 on premises",
 "server_type": "exchange",
 "incoming_location": "$SIM/EWS/Exchange.asmx", "outgoing_location": "$SIM/EWS/Exchange.asmx",
 "incoming": {"credentials": "profile", "username": "crmsync@contoso.com", "protocol": "basic"},
 "process_email_from": "2026-11-01T00:00:00Z", "allow_private_network": true}
JSON
(umask 077 && printf 'crmsync-demo-pw' >"$DATA/svc.secret")
"${SB[@]}" email-profile add exch --settings-file "$DATA/profile.json" --secret-file "$DATA/svc.secret"
rm -f "$DATA/svc.secret"

step "Email Configuration Settings: the default profile, everything by server-side synchronization"
"${SB[@]}" dynamics defaults crm --server-profile exch --incoming server-side-sync \
  --outgoing server-side-sync --act server-side-sync

step "the organization's mailboxes (Bob's approval is pending in Dynamics)"
"${SB[@]}" dynamics refresh crm
"${SB[@]}" dynamics approve crm:bob@contoso.com

step "Apply Default Email Settings to Ann, Bob and Dee, then Test & Enable"
"${SB[@]}" dynamics apply-defaults crm:ann@contoso.com crm:bob@contoso.com crm:dee@contoso.com --no-test
"${SB[@]}" dynamics test-enable crm:ann@contoso.com crm:bob@contoso.com crm:dee@contoso.com --wait

step "the statuses as Dynamics holds them now (0 Not Run, 1 Success, 2 Failure)"
curl -fsS --cacert "$DATA/ca.pem" -H "Authorization: Bearer $TOKEN" \
  "$SIM/api/data/v9.2/mailboxes?\$select=name,incomingemailstatus,outgoingemailstatus,actstatus,enabledforincomingemail" |
  python3 -c 'import json,sys
for r in json.load(sys.stdin)["value"]:
    print("  %-14s incoming %s  outgoing %s  ACT %s  enabled %s" % (r["name"], r["incomingemailstatus"], r["outgoingemailstatus"], r["actstatus"], r["enabledforincomingemail"]))'

step "alerts for the mailboxes' owners"
"${SB[@]}" alerts --all | cut -c1-200

step "why is Dee's mailbox refused? (KB 3212785's 401 diagnosis)"
"${SB[@]}" dynamics diagnose crm:dee@contoso.com || true

step "Ann's e-mail processing, one cycle (what serve's scheduler runs every polling interval)"
for kind in incoming-email outgoing-email appointments; do
  "${SB[@]}" run "d365-$kind-crm-ann-contoso-com" | tail -n 1
done
"${SB[@]}" dynamics processing crm:ann@contoso.com

step "e-mail activities in Dynamics now (the October newsletter predates Process Email From)"
curl -fsS --cacert "$DATA/ca.pem" -H "Authorization: Bearer $TOKEN" \
  "$SIM/api/data/v9.2/emails?\$select=subject,directioncode,statuscode,sender,messageid" |
  python3 -c 'import json,sys
status = {3: "Sent", 4: "Received", 6: "Pending Send"}
for r in json.load(sys.stdin)["value"]:
    print("  %-8s %-14s %-30s from %s" % ("out" if r["directioncode"] else "in", status.get(r["statuscode"], r["statuscode"]), r["subject"], r["sender"]))'

step "Bob's Inbox and Ann's calendar in Exchange"
curl -fsS --cacert "$DATA/ca.pem" "$SIM/_admin/state" | python3 -c 'import json,sys
s = json.load(sys.stdin)["ews"]
folders = {f["id"]: (f["mailbox"], f["distinguished"]) for f in s["folders"]}
for i in s["items"]:
    where = folders.get(i["folder"])
    if where in (("bob@contoso.com", "inbox"), ("ann@contoso.com", "calendar")):
        print("  %-16s %-9s %s" % (where[0], where[1], i["props"].get("Subject")))'
