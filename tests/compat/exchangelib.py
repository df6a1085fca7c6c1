"""exchangelib (PyPI, unmodified) against the EWS simulator.

Runs the library's normal operations: account set-up, distinguished folders and the folder
tree, contacts/calendar/tasks CRUD, a weekly series across the DST change with a modified and
a deleted occurrence, sync state, impersonation and SOAP autodiscover. Every EWS answer the
library receives is captured from exchangelib's own debug log (the standard `logging` API) and
validated against ../shared/oracles/ews/schema/ews-all.xsd with xmllint when it is installed.
"""

import datetime
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from decimal import Decimal

# This script is named after the library: drop its own folder from the import path so that
# `import exchangelib` finds the installed package, and load _report.py by its path.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
_spec = importlib.util.spec_from_file_location("_report", os.path.join(HERE, "_report.py"))
_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_report)
Report, check = _report.Report, _report.check

from exchangelib import (  # noqa: E402
    BASIC,
    DELEGATE,
    IMPERSONATION,
    Account,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    Version,
)
from exchangelib.autodiscover import AutodiscoverProtocol, autodiscover_cache  # noqa: E402
from exchangelib.errors import (  # noqa: E402
    ErrorCannotCreateContactInNonContactFolder,
    ErrorImpersonateUserDenied,
    ErrorItemNotFound,
)
from exchangelib.folders import Calendar, Contacts, Inbox, Root, Tasks  # noqa: E402
from exchangelib.indexed_properties import EmailAddress, PhysicalAddress  # noqa: E402
from exchangelib.items import Contact, Task  # noqa: E402
from exchangelib.recurrence import Recurrence, WeeklyPattern  # noqa: E402
from exchangelib.version import EXCHANGE_2016  # noqa: E402

BASE = os.environ["SIM_BASE"]
EWS_URL = f"{BASE}/EWS/Exchange.asmx"
ALICE = "alice@contoso.com"
SCHEMA = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "oracles", "ews", "schema", "ews-all.xsd"
)

# --- capture every EWS answer through exchangelib's debug log -------------------------------
answers = []
last_url = [""]


class Capture(logging.Handler):
    # exchangelib logs each POST twice: the URL on "exchangelib.util", then the request and
    # response bodies on its child "exchangelib.util.xml".
    def emit(self, record):
        args = record.args
        if not isinstance(args, dict):
            return
        if args.get("url"):
            last_url[0] = str(args["url"])
        if args.get("xml_response") not in (None, "[STREAMING]"):
            answers.append((last_url[0], args["xml_response"]))


capture = Capture(level=logging.DEBUG)
util_log = logging.getLogger("exchangelib.util")
util_log.setLevel(logging.DEBUG)
util_log.addHandler(capture)
util_log.propagate = False

r = Report("exchangelib")
BERLIN = EWSTimeZone("Europe/Berlin")
alice_creds = Credentials("alice@contoso.com", "alice-pw")


def config(creds, version=None):
    kw = {"service_endpoint": EWS_URL, "credentials": creds, "auth_type": BASIC}
    if version:
        kw["version"] = version
    return Configuration(**kw)


state = {}


# --- 1. account and folders -----------------------------------------------------------------
def account_auto_version():
    a = Account(ALICE, credentials=alice_creds, config=config(alice_creds), autodiscover=False, access_type=DELEGATE)
    check(a.version.build.major_version == 15, f"version {a.version}")
    state["acct"] = a
    return a


def account_fixed_version():
    a = Account(
        ALICE,
        credentials=alice_creds,
        config=config(alice_creds, Version(build=EXCHANGE_2016)),
        autodiscover=False,
        access_type=DELEGATE,
    )
    check(isinstance(a.root, Root), "root")
    return a


r.op("Account (version guessed)", account_auto_version)
acct = state.get("acct") or r.op("Account (fixed version)", account_fixed_version)
if acct is None:
    r.finish()


def distinguished():
    check(isinstance(acct.root, Root), f"root is {type(acct.root)}")
    check(isinstance(acct.calendar, Calendar), f"calendar is {type(acct.calendar)}")
    check(isinstance(acct.contacts, Contacts), f"contacts is {type(acct.contacts)}")
    check(isinstance(acct.tasks, Tasks), f"tasks is {type(acct.tasks)}")
    check(isinstance(acct.inbox, Inbox), f"inbox is {type(acct.inbox)}")
    check(acct.msg_folder_root.name, "msgfolderroot has a name")
    check(acct.trash.name == "Deleted Items", f"trash {acct.trash.name}")
    check(acct.sent.name == "Sent Items", f"sent {acct.sent.name}")


def walk():
    names = {f.name for f in acct.root.walk()}
    for n in ("Top of Information Store", "Inbox", "Calendar", "Contacts", "Tasks"):
        check(n in names, f"{n} not in the tree {sorted(names)}")
    tree = acct.root.tree()
    check("Calendar" in tree, "tree() shows Calendar")


def create_subfolder():
    from exchangelib.folders import Folder

    f = Folder(parent=acct.inbox, name="Projects")
    f.save()
    acct.root.refresh()
    check((acct.inbox / "Projects").id == f.id, "subfolder found by path")


r.op("distinguished folders root/calendar/contacts/tasks/inbox", distinguished)
r.op("folder tree walk", walk)
r.op("create and find a subfolder", create_subfolder)


# --- 2. contacts ----------------------------------------------------------------------------
class LuckyNumber(ExtendedProperty):
    distinguished_property_set_id = "PublicStrings"
    property_name = "LuckyNumber"
    property_type = "Integer"


Contact.register("lucky_number", LuckyNumber)


def contact_create():
    c = Contact(
        folder=acct.contacts,
        given_name="Ann",
        surname="Zeller",
        display_name="Ann Zeller",
        email_addresses=[EmailAddress(label="EmailAddress1", email="ann@fabrikam.com")],
        physical_addresses=[
            PhysicalAddress(label="Business", street="1 Main St", city="Springfield", state="IL", zipcode="62701")
        ],
        lucky_number=7,
    )
    c.save()
    Contact(folder=acct.contacts, given_name="Bea", surname="Adams", display_name="Bea Adams", lucky_number=3).save()
    got = acct.contacts.get(id=c.id)
    check(got.display_name == "Ann Zeller", f"display_name {got.display_name!r}")
    check(got.email_addresses and got.email_addresses[0].email == "ann@fabrikam.com", f"{got.email_addresses}")
    check(got.physical_addresses and got.physical_addresses[0].city == "Springfield", f"{got.physical_addresses}")
    check(got.lucky_number == 7, f"extended property {got.lucky_number!r}")
    state["contact"] = got


def contact_sort():
    asc = [c.surname for c in acct.contacts.all().order_by("surname").only("surname")]
    desc = [c.surname for c in acct.contacts.all().order_by("-surname").only("surname")]
    check(asc == sorted(asc) and len(asc) >= 2, f"ascending {asc}")
    check(desc == sorted(desc, reverse=True), f"descending {desc}")


def contact_ext_restriction():
    hits = list(acct.contacts.filter(lucky_number=7))
    check([c.surname for c in hits] == ["Zeller"], f"filter on extended property: {[c.surname for c in hits]}")


def contact_update():
    c = state["contact"]
    c.job_title = "Engineer"
    c.physical_addresses[0].state = None
    c.save(update_fields=["job_title", "physical_addresses"])
    got = acct.contacts.get(id=c.id)
    check(got.job_title == "Engineer", f"job_title {got.job_title!r}")
    addr = got.physical_addresses[0] if got.physical_addresses else None
    check(addr is not None and addr.state is None, f"state deleted: {addr}")
    check(addr is not None and addr.city == "Springfield" and addr.street == "1 Main St", f"rest kept: {addr}")


def contact_wrong_folder():
    try:
        Contact(folder=acct.calendar, given_name="Wrong", display_name="Wrong").save()
    except ErrorCannotCreateContactInNonContactFolder:
        return
    raise AssertionError("a contact was created in the calendar folder")


def contact_delete():
    c = state["contact"]
    cid = c.id
    c.delete()
    try:
        acct.contacts.get(id=cid)
    except Exception as e:  # noqa: BLE001
        check("ErrorItemNotFound" in type(e).__name__ or "DoesNotExist" in type(e).__name__, f"{type(e).__name__}")
        return
    raise AssertionError("deleted contact still found")


r.op("contact create + get (indexed, extended properties)", contact_create)
r.op("contact FindItem SortOrder", contact_sort)
r.op("contact restriction on an extended property", contact_ext_restriction)
r.op("contact update + delete one indexed part", contact_update)
r.op("contact in a calendar folder is refused", contact_wrong_folder)
r.op("contact delete", contact_delete)


# --- 2. calendar items ----------------------------------------------------------------------
def event_create():
    start = EWSDateTime(2026, 6, 3, 14, 30, tzinfo=BERLIN)
    e = CalendarItem(
        folder=acct.calendar,
        subject="Planning",
        start=start,
        end=start + datetime.timedelta(hours=1),
        location="Room 2",
        body="Agenda",
    )
    e.save()
    got = acct.calendar.get(id=e.id)
    check(got.subject == "Planning", got.subject)
    check(got.start == start, f"start {got.start} != {start}")
    check(got.is_all_day is False, f"is_all_day {got.is_all_day!r}")
    state["event"] = got


def event_utc_and_booleans():
    raw = [x for _, x in answers if b"Planning" in x and b"GetItemResponse" in x]
    check(raw, "no GetItem answer captured")
    text = raw[-1].decode()
    check("<t:Start>2026-06-03T12:30:00Z</t:Start>" in text, "Start not normalised to UTC Z")
    check("<t:IsAllDayEvent>false</t:IsAllDayEvent>" in text, "IsAllDayEvent not false")


def all_day_private():
    e = CalendarItem(
        folder=acct.calendar,
        subject="Holiday",
        start=EWSDate(2026, 7, 1),
        end=EWSDate(2026, 7, 2),
        is_all_day=True,
        sensitivity="Private",
    )
    e.save()
    got = acct.calendar.get(id=e.id)
    check(got.is_all_day is True, f"is_all_day {got.is_all_day!r}")
    check(got.sensitivity == "Private", f"sensitivity {got.sensitivity!r}")
    check(got.start == EWSDate(2026, 7, 1), f"start {got.start!r}")


def event_update():
    e = state["event"]
    e.subject = "Planning (moved)"
    e.start = e.start + datetime.timedelta(hours=1)
    e.end = e.end + datetime.timedelta(hours=1)
    e.save(update_fields=["subject", "start", "end"])
    got = acct.calendar.get(id=e.id)
    check(got.subject == "Planning (moved)", got.subject)
    check(got.start == EWSDateTime(2026, 6, 3, 15, 30, tzinfo=BERLIN), f"start {got.start}")


def event_mime():
    e = acct.calendar.all().only("mime_content", "subject").get(id=state["event"].id)
    check(e.mime_content and b"BEGIN:VCALENDAR" in e.mime_content, f"mime {e.mime_content!r}"[:200])


def event_delete():
    e = state["event"]
    e.delete()
    check(not list(acct.calendar.filter(subject="Planning (moved)")), "still there")


r.op("calendar item create + get", event_create)
r.op("calendar answers are normalised (UTC Z, true/false)", event_utc_and_booleans)
r.op("all-day private calendar item", all_day_private)
r.op("calendar item update", event_update)
r.op("GetItem MimeContent", event_mime)
r.op("calendar item delete", event_delete)


# --- 3. recurring series across the DST change (2026-03-29 in Europe/Berlin) -------------------
def series_create():
    start = EWSDateTime(2026, 3, 17, 9, 0, tzinfo=BERLIN)  # a Tuesday
    m = CalendarItem(
        folder=acct.calendar,
        subject="Weekly sync",
        start=start,
        end=start + datetime.timedelta(hours=1),
        recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[2]), start=start.date(), number=4),
    )
    m.save()
    state["master"] = m


def series_view():
    occ = list(
        acct.calendar.view(
            start=EWSDateTime(2026, 3, 16, tzinfo=BERLIN), end=EWSDateTime(2026, 4, 12, tzinfo=BERLIN)
        ).filter(subject="Weekly sync")
    )
    local = [o.start.astimezone(BERLIN) for o in occ]
    check(len(occ) == 4, f"{len(occ)} occurrences")
    check(all(x.hour == 9 and x.minute == 0 for x in local), f"local starts {local}")
    check([x.day for x in local] == [17, 24, 31, 7], f"days {[x.day for x in local]}")
    check(all(o.type == "Occurrence" for o in occ), f"types {[o.type for o in occ]}")
    state["occ"] = occ


def occurrence_by_index():
    o = state["master"].occurrence(index=2)
    o.refresh()
    check(o.start.astimezone(BERLIN) == EWSDateTime(2026, 3, 24, 9, 0, tzinfo=BERLIN), f"start {o.start}")
    check(o.type == "Occurrence", f"type {o.type}")


def occurrence_modify():
    o = state["occ"][1]
    o.subject = "Weekly sync (moved)"
    o.start = o.start + datetime.timedelta(hours=2)
    o.end = o.end + datetime.timedelta(hours=2)
    o.save(update_fields=["subject", "start", "end"])
    got = acct.calendar.get(id=o.id)
    check(got.subject == "Weekly sync (moved)", got.subject)
    check(got.type == "Exception", f"type {got.type}")


def occurrence_delete():
    o = state["occ"][2]
    occ_id = o.id
    o.delete()
    try:
        acct.calendar.get(id=occ_id)
    except ErrorItemNotFound:
        return
    except Exception as e:  # noqa: BLE001
        check("DoesNotExist" in type(e).__name__, f"{type(e).__name__}: {e}")
        return
    raise AssertionError("deleted occurrence still found")


def master_reread():
    m = acct.calendar.get(id=state["master"].id)
    check(m.type == "RecurringMaster", f"type {m.type}")
    check(m.first_occurrence and m.first_occurrence.start == EWSDateTime(2026, 3, 17, 8, 0, tzinfo=EWSTimeZone("UTC")),
          f"first {m.first_occurrence}")
    check(m.last_occurrence and m.last_occurrence.start == EWSDateTime(2026, 4, 7, 7, 0, tzinfo=EWSTimeZone("UTC")),
          f"last {m.last_occurrence}")
    check(m.modified_occurrences and len(m.modified_occurrences) == 1, f"modified {m.modified_occurrences}")
    check(m.deleted_occurrences and len(m.deleted_occurrences) == 1, f"deleted {m.deleted_occurrences}")
    occ = list(
        acct.calendar.view(
            start=EWSDateTime(2026, 3, 16, tzinfo=BERLIN), end=EWSDateTime(2026, 4, 12, tzinfo=BERLIN)
        )
    )
    subjects = sorted(o.subject for o in occ if o.subject.startswith("Weekly sync"))
    check(subjects == ["Weekly sync", "Weekly sync", "Weekly sync (moved)"], f"view now {subjects}")


r.op("weekly series across DST: create", series_create)
r.op("weekly series across DST: view stays 09:00 local", series_view)
r.op("occurrence by OccurrenceItemId", occurrence_by_index)
r.op("modify one occurrence (becomes an exception)", occurrence_modify)
r.op("delete one occurrence", occurrence_delete)
r.op("master: First/LastOccurrence, Modified/DeletedOccurrences", master_reread)


# --- 2. tasks -------------------------------------------------------------------------------
def task_crud():
    t = Task(folder=acct.tasks, subject="File report", due_date=EWSDate(2026, 5, 1))
    t.save()
    got = acct.tasks.get(id=t.id)
    check(got.status == "NotStarted", f"status {got.status}")
    check(got.percent_complete == Decimal(0), f"percent {got.percent_complete}")
    check(got.is_complete is False, f"is_complete {got.is_complete!r}")
    got.status = "Completed"
    got.save(update_fields=["status"])
    done = acct.tasks.get(id=t.id)
    check(done.percent_complete == Decimal(100), f"percent {done.percent_complete}")
    check(done.is_complete is True, f"is_complete {done.is_complete!r}")
    check(done.complete_date is not None, "complete_date")
    done.delete()


r.op("task create, complete (server sets PercentComplete/IsComplete/CompleteDate), delete", task_crud)


# --- 4. sync state --------------------------------------------------------------------------
def sync():
    f = acct.contacts
    first = list(f.sync_items())
    check(f.item_sync_state, "sync state set")
    c = Contact(folder=f, given_name="Syn", surname="Cee", display_name="Syn Cee")
    c.save()
    changes = list(f.sync_items())
    kinds = [k for k, _ in changes]
    check(kinds == ["create"], f"after create {kinds} (first pass had {len(first)})")
    c.surname = "Cee2"
    c.save(update_fields=["surname"])
    kinds = [k for k, _ in f.sync_items()]
    check(kinds == ["update"], f"after update {kinds}")
    c.delete()
    kinds = [k for k, _ in f.sync_items()]
    check(kinds == ["delete"], f"after delete {kinds}")
    check(list(f.sync_items()) == [], "no more changes")


r.op("SyncFolderItems through sync_items()", sync)


def bulk_paging_move():
    created = acct.bulk_create(
        folder=acct.contacts,
        items=[Contact(given_name=f"P{n}", surname=f"Page{n:02}", display_name=f"P{n} Page{n:02}") for n in range(12)],
    )
    check(len(created) == 12 and all(getattr(c, "id", None) for c in created), f"bulk_create {created[:2]}")
    fetched = list(acct.fetch(ids=created))
    check([c.surname for c in fetched] == [f"Page{n:02}" for n in range(12)], "fetch keeps the order")
    qs = acct.contacts.filter(surname__startswith="Page")
    check(qs.count() == 12, f"count {qs.count()}")
    page = [c.surname for c in qs.order_by("surname")[5:8]]
    check(page == ["Page05", "Page06", "Page07"], f"slice {page}")
    moved = fetched[0].move(acct.trash)
    check(acct.contacts.filter(surname="Page00").count() == 0, "moved out of contacts")
    check(acct.trash.filter(surname="Page00").count() == 1, "moved into Deleted Items")
    acct.bulk_delete(ids=fetched[1:])
    check(qs.count() == 0, "bulk_delete")
    return moved


def calendar_sync():
    f = acct.calendar
    first = list(f.sync_items())
    check(f.item_sync_state and first, f"initial calendar sync {len(first)}")
    check(all(k == "create" for k, _ in first), f"{[k for k, _ in first]}")
    check(list(f.sync_items()) == [], "no more changes")


r.op("bulk create, fetch, count, paging slice, move, bulk delete", bulk_paging_move)
r.op("calendar sync_items()", calendar_sync)


# --- 4. impersonation -----------------------------------------------------------------------
def impersonation_ok():
    creds = Credentials("svc@contoso.com", "svc-pw")
    a = Account(ALICE, credentials=creds, config=config(creds), autodiscover=False, access_type=IMPERSONATION)
    subjects = {i.subject for i in a.calendar.all()}
    check("Holiday" in subjects, f"impersonated calendar {subjects}")


def impersonation_denied():
    creds = Credentials("bob@contoso.com", "bob-pw")
    a = Account(ALICE, credentials=creds, config=config(creds), autodiscover=False, access_type=IMPERSONATION)
    try:
        list(a.calendar.all())
    except ErrorImpersonateUserDenied:
        return
    raise AssertionError("bob impersonated alice")


r.op("impersonation with the right", impersonation_ok)
r.op("impersonation without the right is refused", impersonation_denied)


# --- 4. autodiscover ------------------------------------------------------------------------
def autodiscover():
    # exchangelib resolves the autodiscover host with its own DNS resolver (dnspython, not
    # /etc/hosts), so a loopback simulator cannot be found from the e-mail domain. Its
    # documented autodiscover cache maps (domain, credentials) to an autodiscover endpoint; a
    # cached entry is what exchangelib asks first, with a real GetUserSettings request.
    creds = Credentials("alice@contoso.com", "alice-pw")
    autodiscover_cache[("contoso.com", creds)] = AutodiscoverProtocol(
        config=Configuration(service_endpoint=f"{BASE}/autodiscover/autodiscover.svc", credentials=creds, auth_type=BASIC)
    )
    a = Account(ALICE, credentials=creds, autodiscover=True, access_type=DELEGATE)
    check(a.ad_response.autodiscover_smtp_address == ALICE, f"smtp {a.ad_response.autodiscover_smtp_address}")
    check(a.protocol.service_endpoint.lower() == EWS_URL.lower(), f"endpoint {a.protocol.service_endpoint}")
    check(isinstance(a.calendar, Calendar), "calendar through the discovered endpoint")


r.op("SOAP autodiscover (GetUserSettings)", autodiscover)


# --- 5. every answer validates against the schema ---------------------------------------------
def validate():
    ews = [(u, x) for u, x in answers if "exchange.asmx" in u.lower()]
    check(ews, "no answers captured")
    try:
        subprocess.run(["xmllint", "--version"], capture_output=True, check=False)
    except FileNotFoundError:
        raise AssertionError(f"xmllint is not installed (apt-get install libxml2-utils): {len(ews)} answers NOT validated")
    check(os.path.exists(SCHEMA), f"{SCHEMA} is missing")
    bad = []
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for n, (_, x) in enumerate(ews):
            p = os.path.join(d, f"{n:04}.xml")
            with open(p, "wb") as f:
                f.write(x)
            paths.append(p)
        for i in range(0, len(paths), 50):
            out = subprocess.run(
                ["xmllint", "--noout", "--schema", SCHEMA, *paths[i : i + 50]], capture_output=True, text=True
            )
            bad += [line for line in out.stderr.splitlines() if not line.endswith(" validates")]
    failing = {line.split(" ")[0] for line in bad if line.endswith("fails to validate")}
    print(f"NOTE {len(ews)} EWS answers captured, {len(ews) - len(failing)} validate against ews-all.xsd")
    messages = sorted({line.split(":", 1)[1] if ":" in line else line for line in bad if "fails to validate" not in line})
    check(not failing, f"{len(failing)} answers fail:\n" + "\n".join(messages[:20]))


r.op("every EWS answer validates against ews-all.xsd", validate)
r.finish()
