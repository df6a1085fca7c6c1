"""ConnectWise Manage with connectpyse (PyPI), unmodified: companies and contacts CRUD and
paging through the library's own API classes, conditions, page sizes, references, contact
communication items; members, schedule entries and sales activities through the library's
own controller (`CWController`) and models base (`CWModel`): connectpyse 0.8.1's `Member`,
`ScheduleEntry` and `Activity` modules import `cw_model` as a top-level module and cannot be
imported, so the script declares the same three controllers the library's `*_api` modules
declare (module paths `system/members`, `schedule/entries`, `sales/activities`).

Run through scripts/compat.sh (it starts the simulator with connectpyse.seed.json).
"""

import base64
import os
import sys

# This script's name is the package's: import the package first, without this folder on the path.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
from connectpyse.company.companies_api import CompaniesAPI  # noqa: E402
from connectpyse.company.company import Company  # noqa: E402
from connectpyse.company.contact import Contact  # noqa: E402
from connectpyse.company.contact_communication import ContactCommunication  # noqa: E402
from connectpyse.company.contact_communications_api import ContactCommunicationsAPI  # noqa: E402
from connectpyse.company.contacts_api import ContactsAPI  # noqa: E402
from connectpyse.cw_controller import CWController  # noqa: E402
from connectpyse.cw_model import CWModel  # noqa: E402
from connectpyse.restapi import ApiError  # noqa: E402

sys.path.insert(0, HERE)
from _report import Report, check  # noqa: E402

URL = os.environ["SIM_BASE"] + "/v4_6_release/apis/3.0"
AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"msp+pub:priv").decode(),
    "clientId": "7b5f0f3e-1111-4111-8111-000000000001",
}
SEEDED_COMPANIES = 30
SEEDED_CONTACTS = 12

r = Report("connectpyse")
state = {}


def companies(**params):
    api = CompaniesAPI(url=URL, auth=AUTH)
    for k, v in params.items():
        setattr(api, k, v)
    return api


def contacts(**params):
    api = ContactsAPI(url=URL, auth=AUTH)
    for k, v in params.items():
        setattr(api, k, v)
    return api


def refused(fn, status):
    try:
        fn()
    except ApiError as e:
        check(f"Return code: {status}" in str(e), f"expected {status}, got {e}")
        return str(e)
    raise AssertionError(f"accepted; expected {status}")


def companies_count():
    n = companies().get_companies_count()
    check(n == SEEDED_COMPANIES, f"count {n}")


def companies_paging():
    seen = []
    for page in range(1, 5):
        items = list(companies(pageSize=8, page=page, orderBy="id asc").get_companies())
        check(len(items) == (8 if page < 4 else 6), f"page {page}: {len(items)} items")
        seen += [c.id for c in items]
    check(len(set(seen)) == SEEDED_COMPANIES and seen == sorted(seen), f"ids {seen}")


def companies_conditions():
    items = list(companies(conditions='identifier like "Seed1*"', pageSize=100).get_companies())
    check(sorted(c.identifier for c in items) == [f"Seed1{i}" for i in range(10)],
          f"{[c.identifier for c in items]}")
    n = companies(conditions='name contains "Company 2"').get_companies_count()
    check(n == 10, f"count with conditions: {n}")


def company_create():
    c = Company({"identifier": "NewCo", "name": "New Company", "status": {"id": 1},
                 "site": {"name": "Main"}})
    made = companies().create_company(c)
    check(isinstance(made.id, int) and made.id > 0, f"id {made.id}")
    check(made.status and made.status.get("name") == "Active", f"status {made.status}")
    state["company"] = made.id


def company_create_duplicate_refused():
    c = Company({"identifier": "NewCo", "name": "Again", "site": {"name": "Main"}})
    refused(lambda: companies().create_company(c), 400)


def company_get():
    c = companies().get_company_by_id(state["company"])
    check(c.identifier == "NewCo" and c.name == "New Company", f"{c.identifier} {c.name}")


def company_update():
    c = companies().update_company(state["company"], "name", "Renamed Company")
    check(c.name == "Renamed Company", f"answer {c.name}")
    c = companies().update_company_multiple_keys(
        state["company"], {"phoneNumber": "555-0100", "website": "https://newco.example"})
    check(c.phoneNumber == "555-0100" and c.website == "https://newco.example", f"{c.phoneNumber}")
    check(companies().get_company_by_id(state["company"]).name == "Renamed Company", "not stored")


def company_update_unknown_path_refused():
    refused(lambda: companies().update_company(state["company"], "noSuchField", "x"), 400)


def contact_create_resolves_references():
    ct = Contact({
        "firstName": "Nina", "lastName": "Olsen", "company": {"id": state["company"]},
        "types": [{"id": 2}],
        "communicationItems": [
            {"type": {"id": 1}, "value": "nina@newco.example", "defaultFlag": True},
            {"type": {"id": 2}, "value": "555-0101"},
        ],
    })
    made = contacts().create_contact(ct)
    state["contact"] = made.id
    check(made.company.get("identifier") == "NewCo" and made.company.get("name") == "Renamed Company",
          f"company {made.company}")
    check([t.get("name") for t in made.types] == ["Owner"], f"types {made.types}")
    email, direct = made.communicationItems
    check(email["type"].get("name") == "Email" and email["communicationType"] == "Email",
          f"e-mail item {email}")
    check(direct["type"].get("name") == "Direct" and direct["communicationType"] == "Phone",
          f"phone item {direct}")
    check(all(i.get("contactId") == made.id for i in made.communicationItems),
          f"contactId {made.communicationItems}")


def contact_unknown_company_refused():
    ct = Contact({"firstName": "Ghost", "company": {"id": 999999}})
    refused(lambda: contacts().create_contact(ct), 400)


def contact_email_lookup():
    found = list(contacts(
        childconditions='communicationItems/value = "nina@newco.example" '
                        'and communicationItems/communicationType = "Email"').get_contacts())
    check([c.id for c in found] == [state["contact"]], f"found {[c.id for c in found]}")


def contact_seeded_email_lookup():
    found = list(contacts(
        childconditions='communicationItems/value = "f3@contoso.com" '
                        'and communicationItems/communicationType = "Email"').get_contacts())
    check([c.firstName for c in found] == ["F03"], f"found {[c.firstName for c in found]}")


def contacts_paging():
    total = contacts().get_contacts_count()
    check(total == SEEDED_CONTACTS + 1, f"count {total}")
    seen, page = [], 1
    while True:
        items = list(contacts(pageSize=5, page=page).get_contacts())
        if not items:
            break
        check(len(items) <= 5, f"page {page} has {len(items)}")
        seen += [c.id for c in items]
        page += 1
    check(len(seen) == total and len(set(seen)) == total, f"{len(seen)} of {total}")


def contacts_conditions():
    n = contacts(conditions="company/id = 10").get_contacts_count()
    check(n == SEEDED_CONTACTS, f"company/id = 10: {n}")
    items = list(contacts(conditions=f'company/identifier = "NewCo"').get_contacts())
    check([c.id for c in items] == [state["contact"]], f"{[c.id for c in items]}")


def contact_update():
    c = contacts().update_contact(state["contact"], "title", "CFO")
    check(c.title == "CFO", f"title {c.title}")
    c = contacts().update_contact(state["contact"], "company", {"id": 10})
    check(c.company.get("identifier") == "Seed00", f"company {c.company}")


def contact_update_unknown_path_refused():
    refused(lambda: contacts().update_contact(state["contact"], "favouriteColour", "blue"), 400)


def contact_communications():
    api = ContactCommunicationsAPI(state["contact"], url=URL, auth=AUTH)
    items = list(api.get_contact_communications())
    check(len(items) == 2 and all(i.contactId == state["contact"] for i in items),
          f"{[(i.id, i.contactId) for i in items]}")
    made = api.create_contact_communication(
        ContactCommunication({"type": {"id": 4}, "value": "555-0199"}))
    check(made.communicationType == "Phone" and made.type.get("name") == "Cell"
          and made.contactId == state["contact"], f"{made}")
    check(api.get_contact_communications_count() == 3, "count after create")
    got = contacts().get_contact_by_id(state["contact"])
    check(any(i["value"] == "555-0199" for i in got.communicationItems), "not on the contact")
    api.delete_contact_communication_by_id(made.id)
    check(api.get_contact_communications_count() == 2, "count after delete")


def contact_delete():
    contacts().delete_contact_by_id(state["contact"])
    refused(lambda: contacts().get_contact_by_id(state["contact"]), 404)


def company_delete():
    companies().delete_company_by_id(state["company"])
    refused(lambda: companies().get_company_by_id(state["company"]), 404)


class Row(CWModel):
    """Any ConnectWise record: connectpyse's models only name the fields they expect."""


def controller(module_url, module, **params):
    class Api(CWController):
        def __init__(self, **kwargs):
            self.module_url = module_url
            self.module = module
            self._class = Row
            super().__init__(**kwargs)

    api = Api(url=URL, auth=AUTH)
    for k, v in params.items():
        setattr(api, k, v)
    return api


def members(**params):
    return controller("system", "members", **params)


def entries(**params):
    return controller("schedule", "entries", **params)


def activities(**params):
    return controller("sales", "activities", **params)


def members_conditions():
    got = list(members(conditions='identifier = "jdoe"')._get())
    check(len(got) == 1 and got[0].primaryEmail == "jdoe@msp.example", f"{got}")
    check(got[0].timeZone.get("name") == "Eastern Standard Time", f"{got[0].timeZone}")
    check(members(conditions="inactiveFlag = true")._get_count() == 1, "inactive count")


def activity_create():
    made = activities()._create(Row({"name": "Call Contoso", "assignTo": {"identifier": "jdoe"},
                                     "dateStart": "2026-03-02T09:00:00Z"}))
    check(made.id > 0 and made.status.get("name") == "Open", f"{made.id} {made.status}")
    check(made.assignTo.get("id") == 5, f"{made.assignTo}")
    state["activity"] = made.id


def entry_create():
    made = entries()._create(Row({
        "objectId": state["activity"], "member": {"identifier": "jdoe"}, "type": {"identifier": "C"},
        "name": "Call Contoso", "dateStart": "2026-03-02T09:00:00Z", "dateEnd": "2026-03-02T10:30:00Z"}))
    check(made.hours == 1.5 and made.doneFlag is False, f"{made.hours} {made.doneFlag}")
    check(made.member.get("identifier") == "jdoe", f"{made.member}")
    state["entry"] = made.id


def entry_without_object_refused():
    refused(lambda: entries()._create(Row({"member": {"identifier": "jdoe"}, "type": {"identifier": "S"}})), 400)


def entry_conditions_and_changes():
    mine = list(entries(conditions='member/identifier = "jdoe"')._get())
    check([e.id for e in mine] == [state["entry"]], f"{[e.id for e in mine]}")
    stamp = mine[0]._info["lastUpdated"]
    later = list(entries(conditions=f"lastUpdated > [{stamp}]")._get())
    check(later == [], f"{later}")


def entry_update():
    e = entries()._update_multiple_keys(state["entry"], {"doneFlag": True, "name": "Called"})
    check(e.doneFlag is True and e.closeDate and e.name == "Called", f"{e.doneFlag} {e.closeDate}")


def activity_close():
    a = activities()._update(state["activity"], "status", {"id": 2})
    check(a.status.get("name") == "Closed", f"{a.status}")


def entry_and_activity_delete():
    entries()._delete_by_id(state["entry"])
    refused(lambda: entries()._get_by_id(state["entry"]), 404)
    activities()._delete_by_id(state["activity"])
    check(activities()._get_count() == 0, "activities left")


for name, fn in [
    ("companies.count", companies_count),
    ("companies.paging", companies_paging),
    ("companies.conditions", companies_conditions),
    ("companies.create", company_create),
    ("companies.create duplicate identifier refused", company_create_duplicate_refused),
    ("companies.get", company_get),
    ("companies.update", company_update),
    ("companies.update unknown path refused", company_update_unknown_path_refused),
    ("contacts.create resolves references", contact_create_resolves_references),
    ("contacts.create unknown company refused", contact_unknown_company_refused),
    ("contacts.email lookup (created)", contact_email_lookup),
    ("contacts.email lookup (seeded, type by id)", contact_seeded_email_lookup),
    ("contacts.paging", contacts_paging),
    ("contacts.conditions", contacts_conditions),
    ("contacts.update", contact_update),
    ("contacts.update unknown path refused", contact_update_unknown_path_refused),
    ("contacts.communications", contact_communications),
    ("contacts.delete", contact_delete),
    ("companies.delete", company_delete),
    ("members.conditions", members_conditions),
    ("activities.create", activity_create),
    ("schedule entries.create", entry_create),
    ("schedule entries.create without objectId refused", entry_without_object_refused),
    ("schedule entries.conditions and lastUpdated", entry_conditions_and_changes),
    ("schedule entries.update", entry_update),
    ("activities.close", activity_close),
    ("schedule entries and activities.delete", entry_and_activity_delete),
]:
    r.op(name, fn)
r.finish()
