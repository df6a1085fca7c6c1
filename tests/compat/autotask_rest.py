"""Autotask REST with py-autotask (PyPI), unmodified: entity and field information, Companies
and Contacts create / read / query / count / paging / update / delete through the library's
client, on the routes the Autotask REST API documents.

py-autotask has no call for the API's paging (follow `pageDetails.nextPageUrl`) nor for the
documented update (`PATCH /Companies` with the id in the body): those two use the library's own
authenticated session (`client.session`) and its response model; nothing is patched.

Run through scripts/compat.sh (it starts the simulator with autotask_rest.seed.json).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import Report, check  # noqa: E402

from py_autotask import AutotaskClient  # noqa: E402
from py_autotask.exceptions import AutotaskError  # noqa: E402
from py_autotask.types import QueryResponse  # noqa: E402

API = os.environ["SIM_BASE"] + "/ATServicesRest"
client = AutotaskClient.create(
    username="api@msp.example", integration_code="TRACKINGCODE123", secret="at-secret",
    api_url=API)
SEEDED_CONTACTS_OF_1 = 23

r = Report("autotask_rest")
state = {}


def refused(fn):
    try:
        fn()
    except AutotaskError as e:
        return str(e)
    raise AssertionError("accepted; the API refuses it")


def field(fields, name):
    for f in fields["fields"]:
        if f["name"].lower() == name.lower():
            return f
    raise AssertionError(f"no field {name}")


def companies_entity_information():
    info = client.companies.get_entity_info()["info"]
    check(info["canCreate"] and info["canQuery"] and info["canUpdate"], f"{info}")
    check(info["canDelete"] is False, "Companies cannot be deleted through the API")


def companies_field_information():
    fields = client.companies.get_field_info()
    ct = field(fields, "companyType")
    check(ct["isPickList"] is True and ct["dataType"] == "integer", f"companyType {ct}")
    labels = {v["value"]: v["label"] for v in ct["picklistValues"]}
    check(labels.get("1") == "Customer" and labels.get("3") == "Prospect", f"values {labels}")
    check(ct["isRequired"] is True, "companyType is required")
    name = field(fields, "companyName")
    check(name["isRequired"] and name["dataType"] == "string" and name["length"] == 100,
          f"companyName {name}")
    owner = field(fields, "ownerResourceID")
    check(owner["isReference"] and owner["referenceEntityType"] == "Resource", f"owner {owner}")
    check(field(fields, "id")["isReadOnly"] is True, "id read-only")


def contacts_field_information():
    fields = client.contacts.get_field_info()
    comp = field(fields, "companyID")
    check(comp["isReference"] and comp["referenceEntityType"] == "Company" and comp["isRequired"],
          f"companyID {comp}")
    active = field(fields, "isActive")
    check(active["dataType"] == "integer", f"Contacts.isActive is an integer: {active}")


def company_create():
    made = client.companies.create({
        "companyName": "Northwind", "companyType": 1, "ownerResourceID": 30,
        "phone": "555-0300", "isActive": True, "companyCategoryID": 1,
        "classification": None, "webAddress": "https://northwind.example",
    })
    check(made.item_id > 0, f"itemId {made.item_id}")
    state["company"] = made.item_id


def company_create_bad_picklist_refused():
    refused(lambda: client.companies.create({
        "companyName": "Bad", "companyType": 5, "ownerResourceID": 30, "phone": "1"}))


def company_get():
    c = client.companies.get(state["company"])
    check(c["companyName"] == "Northwind" and c["companyType"] == 1, f"{c}")


def companies_query_and_count():
    res = client.companies.query(filters=[{"op": "beginsWith", "field": "companyName", "value": "North"}])
    check([c["id"] for c in res.items] == [state["company"]], f"{res.items}")
    n = client.companies.count(filters=[{"op": "eq", "field": "companyType", "value": 1}])
    check(n == 2, f"count {n}")


def company_update_by_url_refused():
    # py-autotask PATCHes /Companies/{id}, a route the API does not have
    refused(lambda: client.companies.update_by_id(state["company"], {"phone": "555-0301"}))


def company_update():
    resp = client.session.patch(f"{API}/v1.0/Companies",
                                json={"id": state["company"], "phone": "555-0302"})
    check(resp.status_code == 200 and resp.json()["itemId"] == state["company"], resp.text)
    check(client.companies.get(state["company"])["phone"] == "555-0302", "not stored")


def contact_create_top_level_refused():
    refused(lambda: client.contacts.create({
        "companyID": state["company"], "firstName": "Top", "lastName": "Level", "isActive": 1}))


def contact_create():
    made = client.entities.get_entity("CompanyContacts").create({
        "companyID": state["company"], "firstName": "Nina", "lastName": "Olsen",
        "emailAddress": "nina@northwind.example", "isActive": 1})
    state["contact"] = made.item_id
    c = client.contacts.get(made.item_id)
    check(c["companyID"] == state["company"] and c["firstName"] == "Nina", f"{c}")


def contact_update():
    resp = client.session.patch(f"{API}/v1.0/Companies/{state['company']}/Contacts",
                                json={"id": state["contact"], "title": "CFO"})
    check(resp.status_code == 200 and resp.json()["itemId"] == state["contact"], resp.text)
    check(client.contacts.get(state["contact"])["title"] == "CFO", "not stored")


def contact_update_by_url_refused():
    # py-autotask PATCHes /Companies/{id}/Contacts/{id}, a route the API does not have
    refused(lambda: client.entities.get_entity("CompanyContacts").update(
        {"id": state["contact"], "companyID": state["company"], "title": "CEO"}))
    check(client.contacts.get(state["contact"])["title"] == "CFO", "changed anyway")


def contacts_query_paging():
    first = client.contacts.query(
        filters=[{"op": "eq", "field": "companyID", "value": 1}], max_records=10)
    check(len(first.items) == 10 and first.page_details.next_page_url, f"{first.page_details}")
    ids = [c["id"] for c in first.items]
    page = first
    while page.page_details.next_page_url:
        resp = client.session.get(page.page_details.next_page_url)
        check(resp.status_code == 200, resp.text)
        page = QueryResponse(**resp.json())
        ids += [c["id"] for c in page.items]
    check(len(ids) == SEEDED_CONTACTS_OF_1 and len(set(ids)) == len(ids), f"{len(ids)} ids")


def contacts_query_include_fields():
    res = client.contacts.query(
        filters=[{"op": "contains", "field": "emailAddress", "value": "northwind"}],
        include_fields=["id", "emailAddress"])
    check([sorted(c.keys()) for c in res.items] == [["emailAddress", "id"]], f"{res.items}")


def contacts_count():
    n = client.contacts.count(filters=[{"op": "eq", "field": "companyID", "value": 1}])
    check(n == SEEDED_CONTACTS_OF_1, f"count {n}")


def contact_delete():
    ok = client.entities.get_entity("CompanyContacts").delete(
        state["contact"], parent_id=state["company"])
    check(ok is True, f"{ok}")
    check(client.contacts.get(state["contact"]) is None, "still there")


for name, fn in [
    ("companies.entityInformation", companies_entity_information),
    ("companies.entityInformation/fields", companies_field_information),
    ("contacts.entityInformation/fields", contacts_field_information),
    ("companies.create (current payload)", company_create),
    ("companies.create unknown picklist value refused", company_create_bad_picklist_refused),
    ("companies.get", company_get),
    ("companies.query + count", companies_query_and_count),
    ("companies.update by URL id refused (not in the API)", company_update_by_url_refused),
    ("companies.update (PATCH /Companies)", company_update),
    ("contacts.create top-level refused", contact_create_top_level_refused),
    ("contacts.create (Companies/{id}/Contacts)", contact_create),
    ("contacts.update (PATCH /Companies/{id}/Contacts)", contact_update),
    ("contacts.update by URL id refused (not in the API)", contact_update_by_url_refused),
    ("contacts.query paging (nextPageUrl)", contacts_query_paging),
    ("contacts.query IncludeFields", contacts_query_include_fields),
    ("contacts.count", contacts_count),
    ("contacts.delete (Companies/{id}/Contacts/{id})", contact_delete),
]:
    r.op(name, fn)
r.finish()
