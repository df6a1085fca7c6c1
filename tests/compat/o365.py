"""O365 (python-o365) against the simulated Microsoft Graph and Entra ID.

O365 has no setting for the login or Graph host: it always signs in at
https://login.microsoftonline.com/{tenant} (through msal) and calls
https://graph.microsoft.com/v1.0. Its documented way to reach those hosts through
something else is its HTTP proxy option (`proxy_server`, `proxy_port`,
`proxy_http_only`), which it hands to msal as well. This script therefore runs a
small HTTPS-intercepting proxy (the way one tests any unmodified client against a
fake service): a CONNECT to either Microsoft host is answered with a certificate
for that host from a CA made here (added to the trusted bundle) and the decrypted
requests are passed unchanged to the simulator; any other CONNECT (the simulator's
own address, which its answers name) is tunnelled as is. The library itself runs
unmodified, with its default protocol and its documented options only.
"""

import datetime as dt
import os
from zoneinfo import ZoneInfo
import select
import socket
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(__file__))
from _report import Report, check  # noqa: E402

BASE = os.environ["SIM_BASE"].rstrip("/")
SIM = urlparse(BASE)
TENANT = "8c2d4e6f-1a3b-4c5d-9e7f-0a1b2c3d4e5f"
CLIENT_ID = "3f9b1d27-6c4e-4a8f-b2d1-7e5c9a0b3d62"
SECRET = "o365-compat-secret~value"
UTC = ZoneInfo("UTC")
MEGAN = "megan@northwind.onmicrosoft.com"
MEGAN_ID = "a1d3f5b7-2c4e-4f60-8a1b-3c5d7e9f1a2b"
MARKETING = "d4a6c8e0-5f7b-4c93-9d4e-6f8a0b2c4d5e"
INTERCEPTED = ("login.microsoftonline.com", "graph.microsoft.com")
SEEN = {"hosts": set()}


# ---------- the intercepting proxy ----------

def _make_ca_and_leaf():
    now = dt.datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365 compat proxy CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, INTERCEPTED[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in INTERCEPTED]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem(ca), pem(leaf), key_pem


def _pipe(a, b):
    socks = [a, b]
    try:
        while True:
            # an SSL socket may hold decrypted bytes select() does not see
            ready = [s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select(socks, [], [], 30)
                if not ready:
                    return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return


class _Proxy(BaseHTTPRequestHandler):
    server_ctx = None
    sim_ctx = None

    def log_message(self, *args):
        pass

    def do_CONNECT(self):
        host, _, port = self.path.rpartition(":")
        SEEN["hosts"].add(host)
        if host in INTERCEPTED:
            self.send_response(200, "Connection established")
            self.end_headers()
            client = self.server_ctx.wrap_socket(self.connection, server_side=True)
            upstream = self.sim_ctx.wrap_socket(
                socket.create_connection((SIM.hostname, SIM.port)), server_hostname=SIM.hostname)
        elif host in (SIM.hostname, "localhost") and int(port) == SIM.port:
            self.send_response(200, "Connection established")
            self.end_headers()
            client = self.connection
            upstream = socket.create_connection((SIM.hostname, SIM.port))
        else:
            self.send_error(403, "only the Microsoft hosts and the simulator are reachable")
            return
        try:
            _pipe(client, upstream)
        finally:
            upstream.close()
        self.close_connection = True


def start_proxy():
    ca_pem, leaf_pem, key_pem = _make_ca_and_leaf()
    d = tempfile.mkdtemp(prefix="o365-compat-")
    leaf_file, key_file, bundle = (os.path.join(d, n) for n in ("leaf.pem", "key.pem", "bundle.pem"))
    open(leaf_file, "wb").write(leaf_pem)
    open(key_file, "wb").write(key_pem)
    sim_ca = open(os.environ["SIM_CA"], "rb").read()
    open(bundle, "wb").write(sim_ca + b"\n" + ca_pem)
    # requests (used by O365 and msal) trusts this bundle: the simulator's CA and the proxy's
    os.environ["REQUESTS_CA_BUNDLE"] = bundle
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(leaf_file, key_file)
    _Proxy.server_ctx = sctx
    _Proxy.sim_ctx = ssl.create_default_context(cafile=os.environ["SIM_CA"])
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


PROXY_PORT = start_proxy()

# ---------- the client ----------

from O365 import Account  # noqa: E402
from O365.utils.token import MemoryTokenBackend  # noqa: E402

r = Report("o365")
S = {}


def account(secret=SECRET):
    return Account(
        (CLIENT_ID, secret),
        auth_flow_type="credentials",
        tenant_id=TENANT,
        proxy_server="127.0.0.1",
        proxy_port=PROXY_PORT,
        proxy_http_only=True,
        token_backend=MemoryTokenBackend(),
    )


def authenticate():
    acc = account()
    check(acc.authenticate() is True, "authenticate() did not return True")
    check(acc.is_authenticated, "not authenticated afterwards")
    check("login.microsoftonline.com" in SEEN["hosts"], f"login host not used: {SEEN['hosts']}")
    S["acc"] = acc


def authenticate_wrong_secret():
    acc = account(secret="not-the-secret")
    try:
        ok = acc.authenticate()
    except Exception as e:  # O365 raises msal's error for a refused secret
        check("AADSTS7000215" in str(e) or "invalid_client" in str(e), str(e)[:300])
        return
    check(ok is False, f"authenticate() returned {ok!r} for a wrong secret")


def list_users():
    d = S["acc"].directory(resource="users")
    users = list(d.get_users())
    upns = {u.user_principal_name for u in users}
    check(MEGAN in upns and len(users) == 3, f"users: {upns}")
    check("graph.microsoft.com" in SEEN["hosts"], f"graph host not used: {SEEN['hosts']}")
    S["users"] = users


def get_user():
    d = S["acc"].directory(resource="users")
    u = d.get_user(MEGAN)
    check(u.object_id == MEGAN_ID, u.object_id)
    check(u.display_name == "Megan Bowen", u.display_name)
    check(u.job_title == "Marketing Manager", u.job_title)


def users_paged():
    # batches of 2: O365 follows the @odata.nextLink pages
    d = S["acc"].directory(resource="users")
    users = [u.user_principal_name for u in d.get_users(batch=2)]
    check(len(users) == 3 and len(set(users)) == 3, users)


def users_search_needs_consistency_level():
    # O365 sends $search on users without ConsistencyLevel: eventual, which Graph refuses
    d = S["acc"].directory(resource="users")
    q = d.new_query().search("megan", attribute="displayName")
    try:
        list(d.get_users(query=q))
    except Exception as e:  # requests.HTTPError from O365's raise_http_errors
        check("ConsistencyLevel" in str(e), str(e)[:300])
        return
    check(False, "a $search without ConsistencyLevel was answered")


def filter_users():
    d = S["acc"].directory(resource="users")
    q = d.new_query().equals("department", "Sales")
    users = list(d.get_users(query=q))
    check([u.user_principal_name for u in users] == ["lee@northwind.onmicrosoft.com"],
          [u.user_principal_name for u in users])


def list_groups():
    groups = S["acc"].groups().list_groups()
    names = {g.display_name for g in groups}
    check(names == {"Marketing", "Operations"}, names)
    m = next(g for g in groups if g.display_name == "Marketing")
    check(m.mail == "marketing@northwind.onmicrosoft.com", m.mail)
    check(m.visibility == "Public", m.visibility)
    S["marketing"] = m


def group_members():
    members = S["marketing"].get_group_members()
    check({m.user_principal_name for m in members} ==
          {MEGAN, "lee@northwind.onmicrosoft.com"}, [m.object_id for m in members])


def group_by_id():
    g = S["acc"].groups().get_group_by_id(MARKETING)
    check(g.display_name == "Marketing", g.display_name)


def group_by_mail():
    # O365 asks with $search="mail:…" and ConsistencyLevel: eventual
    g = S["acc"].groups().get_group_by_mail("marketing@northwind.onmicrosoft.com")
    check(g is not None and g.object_id == MARKETING, g and g.object_id)


def user_groups():
    gs = S["acc"].groups().get_user_groups(user_id=MEGAN_ID)
    check([g.display_name for g in gs] == ["Marketing"], [g.display_name for g in gs])


def list_calendars():
    sched = S["acc"].schedule(resource=MEGAN)
    cals = sched.list_calendars()
    check(len(cals) >= 1 and cals[0].name == "Calendar", [c.name for c in cals])
    S["cal"] = cals[0]
    default = sched.get_default_calendar()
    check(default.calendar_id == cals[0].calendar_id, "default calendar differs")


def create_event():
    cal = S["cal"]
    ev = cal.new_event()
    ev.subject = "Planning with Lee"
    ev.start = dt.datetime(2026, 3, 11, 14, 0, tzinfo=UTC)
    ev.end = dt.datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
    ev.location = "Room 12"
    ev.attendees.add(["lee@northwind.onmicrosoft.com"])
    check(ev.save() is True, "save() failed")
    check(ev.object_id, "no id after save")
    S["event_id"] = ev.object_id


def list_events():
    evs = list(S["cal"].get_events(limit=25, include_recurring=False))
    subjects = {e.subject for e in evs}
    check({"Quarterly review", "Planning with Lee"} <= subjects, subjects)


def calendar_view():
    cal = S["cal"]
    evs = list(cal.get_events(include_recurring=True,
                              start_recurring=dt.datetime(2026, 3, 11, tzinfo=UTC),
                              end_recurring=dt.datetime(2026, 3, 12, tzinfo=UTC)))
    check([e.subject for e in evs] == ["Planning with Lee"], [e.subject for e in evs])


def attendee_status():
    ev = S["cal"].get_event(S["event_id"])
    atts = list(ev.attendees)
    check(len(atts) == 1 and atts[0].address == "lee@northwind.onmicrosoft.com", [a.address for a in atts])
    check(atts[0].response_status is not None and str(atts[0].response_status.status) in ("none", "None", "ResponseStatus.None"),
          f"status: {atts[0].response_status}")
    check(atts[0].attendee_type.value == "required", atts[0].attendee_type)


def online_meeting_event():
    cal = S["cal"]
    ev = cal.new_event()
    ev.subject = "Teams sync"
    ev.start = dt.datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
    ev.end = dt.datetime(2026, 3, 12, 8, 30, tzinfo=UTC)
    ev.is_online_meeting = True
    ev.online_meeting_provider = "teamsForBusiness"
    check(ev.save() is True, "save() failed")
    again = cal.get_event(ev.object_id)
    check(again.is_online_meeting is True, "isOnlineMeeting")
    check(again.online_meeting and again.online_meeting.get("joinUrl", "").startswith("https://teams.microsoft.com/"),
          f"onlineMeeting: {again.online_meeting}")


def update_and_delete_event():
    ev = S["cal"].get_event(S["event_id"])
    ev.subject = "Planning with Lee (moved)"
    check(ev.save() is True, "update failed")
    check(S["cal"].get_event(S["event_id"]).subject == "Planning with Lee (moved)", "not updated")
    check(ev.delete() is True, "delete failed")


r.op("authenticate (client credentials through msal)", authenticate)
r.op("authenticate with a wrong secret fails", authenticate_wrong_secret)
if "acc" in S:
    r.op("directory: list users", list_users)
    r.op("directory: get user", get_user)
    r.op("directory: users by $filter", filter_users)
    r.op("directory: users in pages of 2", users_paged)
    r.op("directory: $search without ConsistencyLevel refused as Graph does", users_search_needs_consistency_level)
    r.op("groups: list", list_groups)
    if "marketing" in S:
        r.op("groups: members", group_members)
    r.op("groups: by id", group_by_id)
    r.op("groups: by mail ($search)", group_by_mail)
    r.op("groups: a user's groups", user_groups)
    r.op("calendar: list calendars and default", list_calendars)
    if "cal" in S:
        r.op("calendar: create event with an attendee", create_event)
        r.op("calendar: list events", list_events)
        r.op("calendar: calendarView for a range", calendar_view)
        if "event_id" in S:
            r.op("calendar: attendee has a response status", attendee_status)
            r.op("calendar: update and delete event", update_and_delete_event)
        r.op("calendar: online meeting event gets a join URL", online_meeting_event)
r.finish()
