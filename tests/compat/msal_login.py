"""msal (Microsoft's authentication library) against the simulated Entra ID.

The app is a confidential client with a client secret (client-credentials grant),
the way daemons and connectors sign in. The authority is the simulator's
`{SIM_BASE}/{tenant}`; msal validates an authority whose host is not one of
Microsoft's by asking https://login.microsoftonline.com/common/discovery/instance,
and its documented switch for an authority the application already knows is
`instance_discovery=False` (then it reads `{authority}/v2.0/.well-known/openid-configuration`
itself). The simulator also serves `/common/discovery/instance`; that answer is
checked directly.

The token msal acquires then reads Graph's change feeds the way a daemon does:
`users/delta` and `groups/delta`, paged by `@odata.nextLink`, ending in a
`@odata.deltaLink` whose next round brings only what changed.
"""

import os
import sys

import msal
import requests

sys.path.insert(0, os.path.dirname(__file__))
from _report import Report, check  # noqa: E402

BASE = os.environ["SIM_BASE"].rstrip("/")
TENANT = "5f1c2b7e-3a44-4d1e-9b6a-0c2f7d8e9a10"
DOMAIN = "fabrikam.onmicrosoft.com"
CLIENT_ID = "7a3e9c11-2b4d-4f60-8e21-5d9c0b1a2f34"
SECRET = "msal-compat-secret~value"
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]

r = Report("msal_login")


def app(secret=SECRET, tenant=TENANT):
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=secret,
        authority=f"{BASE}/{tenant}",
        instance_discovery=False,
    )


def openid_configuration():
    resp = requests.get(f"{BASE}/{TENANT}/v2.0/.well-known/openid-configuration")
    check(resp.status_code == 200, f"status {resp.status_code}")
    c = resp.json()
    check(c["token_endpoint"] == f"{BASE}/{TENANT}/oauth2/v2.0/token", c["token_endpoint"])
    check(c["issuer"] == f"{BASE}/{TENANT}/v2.0", c["issuer"])
    check(c["authorization_endpoint"].endswith(f"/{TENANT}/oauth2/v2.0/authorize"), c["authorization_endpoint"])
    check("client_secret_post" in c["token_endpoint_auth_methods_supported"], "no client_secret_post")
    check(c["msgraph_host"] == "graph.microsoft.com", "msgraph_host")
    # the domain resolves to the tenant id, as Entra does
    by_domain = requests.get(f"{BASE}/{DOMAIN}/v2.0/.well-known/openid-configuration").json()
    check(by_domain["token_endpoint"] == c["token_endpoint"], by_domain.get("token_endpoint"))


def openid_configuration_v1():
    resp = requests.get(f"{BASE}/{TENANT}/.well-known/openid-configuration")
    check(resp.status_code == 200, f"status {resp.status_code}")
    c = resp.json()
    check(c["token_endpoint"] == f"{BASE}/{TENANT}/oauth2/token", c["token_endpoint"])
    check(c["issuer"] == f"https://sts.windows.net/{TENANT}/", c["issuer"])


def openid_configuration_unknown_tenant():
    resp = requests.get(f"{BASE}/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    check(resp.status_code == 400, f"status {resp.status_code}")
    e = resp.json()
    check(e["error"] == "invalid_tenant", e.get("error"))
    check(e["error_codes"] == [90002], e.get("error_codes"))


def instance_discovery_answer():
    auth = f"{BASE}/{TENANT}/oauth2/v2.0/authorize"
    resp = requests.get(f"{BASE}/common/discovery/instance",
                        params={"authorization_endpoint": auth, "api-version": "1.1"})
    check(resp.status_code == 200, f"status {resp.status_code}")
    d = resp.json()
    check(d["tenant_discovery_endpoint"] == f"{BASE}/{TENANT}/v2.0/.well-known/openid-configuration",
          d.get("tenant_discovery_endpoint"))
    check(d["api-version"] == "1.1", d.get("api-version"))
    check(any("login.microsoftonline.com" in m["aliases"] for m in d["metadata"]), "metadata")
    bad = requests.get(f"{BASE}/common/discovery/instance",
                       params={"authorization_endpoint": "https://evil.example/x/oauth2/v2.0/authorize",
                               "api-version": "1.1"})
    check(bad.status_code == 400 and bad.json()["error"] == "invalid_instance",
          f"unknown instance: {bad.status_code} {bad.text[:200]}")


TOKEN = {}


def acquire_token_for_client():
    result = app().acquire_token_for_client(scopes=GRAPH_SCOPE)
    check("access_token" in result, f"no token: {result}")
    check(result["token_type"] == "Bearer", result.get("token_type"))
    check(result["expires_in"] > 0, result.get("expires_in"))
    check(result["token_source"] == "identity_provider", result.get("token_source"))
    TOKEN["t"] = result["access_token"]


def second_call_from_cache():
    a = app()
    first = a.acquire_token_for_client(scopes=GRAPH_SCOPE)
    check("access_token" in first, f"no token: {first}")
    again = a.acquire_token_for_client(scopes=GRAPH_SCOPE)
    check(again.get("token_source") == "cache", again.get("token_source"))
    check(again["access_token"] == first["access_token"], "a different token")


def authority_by_domain():
    result = app(tenant=DOMAIN).acquire_token_for_client(scopes=GRAPH_SCOPE)
    check("access_token" in result, f"no token: {result}")


def token_calls_graph():
    resp = requests.get(f"{BASE}/v1.0/organization",
                        headers={"Authorization": f"Bearer {TOKEN['t']}"})
    check(resp.status_code == 200, f"status {resp.status_code}: {resp.text[:200]}")
    check(resp.json()["value"][0]["id"] == TENANT, "organization id")


def graph(method, url, **kw):
    headers = {"Authorization": f"Bearer {TOKEN['t']}", **kw.pop("headers", {})}
    return requests.request(method, url if url.startswith("http") else f"{BASE}/v1.0/{url}",
                            headers=headers, **kw)


def delta_round(link, page_size=2):
    """Follows next links to the delta link; answers (entries, delta link, pages)."""
    entries, pages = [], 0
    while True:
        resp = graph("GET", link, headers={"Prefer": f"odata.maxpagesize={page_size}"})
        check(resp.status_code == 200, f"status {resp.status_code}: {resp.text[:200]}")
        body = resp.json()
        entries += body["value"]
        pages += 1
        if "@odata.nextLink" in body:
            check("@odata.deltaLink" not in body, "a page with both links")
            link = body["@odata.nextLink"]
            continue
        check("@odata.deltaLink" in body, "the last page has no deltaLink")
        return entries, body["@odata.deltaLink"], pages


DELTA = {}


def users_delta_full_pass():
    entries, link, pages = delta_round("users/delta?$select=id,displayName,department")
    check(len(entries) == 3, f"{len(entries)} users")
    check(pages == 2, f"{pages} pages of at most 2")
    check(all(set(e) >= {"id", "displayName"} for e in entries), entries)
    DELTA["users"] = link


def users_delta_round_brings_changes():
    megan = "2da08b4c-3e5a-4c7d-9f1b-4a6e8c0d2f3b"
    resp = graph("PATCH", f"users/{megan}", json={"department": "Finance"})
    check(resp.status_code == 204, f"PATCH status {resp.status_code}: {resp.text[:200]}")
    entries, link, _ = delta_round(DELTA["users"])
    check([e["id"] for e in entries] == [megan], entries)
    check(entries[0].get("department") == "Finance", entries[0])
    quiet, _, _ = delta_round(link)
    check(quiet == [], f"a round without changes brought {quiet}")


def groups_delta_reports_membership():
    entries, link, _ = delta_round("groups/delta?$select=id,displayName,members")
    sales = [e for e in entries if e["displayName"] == "Sales"]
    check(len(sales) == 1, entries)
    megan = "2da08b4c-3e5a-4c7d-9f1b-4a6e8c0d2f3b"
    resp = graph("POST", f"groups/{sales[0]['id']}/members/$ref",
                 json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{megan}"})
    check(resp.status_code == 204, f"add member status {resp.status_code}: {resp.text[:200]}")
    entries, _, _ = delta_round(link)
    check(len(entries) == 1 and entries[0]["id"] == sales[0]["id"], entries)
    added = [m["id"] for m in entries[0].get("members@delta", [])]
    check(added == [megan], entries[0])


def wrong_secret():
    result = app(secret="not-the-secret").acquire_token_for_client(scopes=GRAPH_SCOPE)
    check("access_token" not in result, "a token for a wrong secret")
    check(result.get("error") == "invalid_client", result.get("error"))
    check(7000215 in result.get("error_codes", []), result.get("error_codes"))
    check(result.get("error_description", "").startswith("AADSTS7000215:"), result.get("error_description"))
    check(result.get("correlation_id"), "no correlation_id")
    check(f"app '{CLIENT_ID}'" in result["error_description"], result["error_description"])


def scope_without_default():
    result = app().acquire_token_for_client(scopes=["https://graph.microsoft.com/User.Read.All"])
    check(result.get("error") == "invalid_scope", result)
    check(1002012 in result.get("error_codes", []), result.get("error_codes"))


def unknown_tenant_refused():
    try:
        app(tenant="nosuch.onmicrosoft.com")
    except ValueError as e:
        # msal raises its own ValueError from the one carrying Entra's answer
        text = f"{e} {e.__context__}"
        check("AADSTS90002" in text, text[:300])
        return
    check(False, "msal accepted an unknown tenant")


r.op("openid-configuration (v2.0)", openid_configuration)
r.op("openid-configuration (v1)", openid_configuration_v1)
r.op("openid-configuration of an unknown tenant", openid_configuration_unknown_tenant)
r.op("instance discovery answer", instance_discovery_answer)
r.op("acquire_token_for_client", acquire_token_for_client)
r.op("second acquire_token_for_client served from msal's cache", second_call_from_cache)
r.op("authority by tenant domain", authority_by_domain)
r.op("token accepted by Graph", token_calls_graph)
r.op("users/delta full pass, paged", users_delta_full_pass)
r.op("users/delta round brings only the change", users_delta_round_brings_changes)
r.op("groups/delta reports a member added", groups_delta_reports_membership)
r.op("wrong secret gives AADSTS7000215", wrong_secret)
r.op("scope without /.default gives AADSTS1002012", scope_without_default)
r.op("unknown tenant refused at discovery", unknown_tenant_refused)
r.finish()
