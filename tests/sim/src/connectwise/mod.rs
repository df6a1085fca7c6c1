//! ConnectWise Manage REST API (`/v4_6_release/apis/3.0`) simulator.
//!
//! Basic auth `base64("{companyId}+{publicKey}:{privateKey}")` plus the mandatory `clientId`
//! header; `conditions`/`childConditions`/`orderBy`/`fields`, `page`/`pageSize` (≤ 1000) with a
//! `Link` header; JSON-Patch `PATCH`; CW error objects `{"code","message","errors"}`.

pub mod calendar;
pub mod conditions;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use self::calendar::{
    ACTIVITIES, ACTIVITY_STATUSES, ACTIVITY_TYPES, MEMBERS, SCHEDULE_STATUSES, SCHEDULE_TYPES,
    TIME_ZONES,
};
use crate::store::Store;
use crate::util::{header, json_response, lock, parse_query, percent_encode, query_get};

/// API member credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCredential {
    /// Company id used at login (e.g. `contoso`).
    pub company_id: String,
    /// Public key.
    pub public_key: String,
    /// Private key.
    pub private_key: String,
}

/// ConnectWise section of a seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CwSeed {
    /// Accepted credentials.
    pub credentials: Vec<CwCredential>,
    /// Accepted `clientId` values (any non-empty value when the list is empty).
    pub client_ids: Vec<String>,
    /// Companies; each may carry a `sites` array.
    pub companies: Vec<Value>,
    /// Contacts.
    pub contacts: Vec<Value>,
    /// Contact types (`{"id","description","defaultFlag"}`).
    pub contact_types: Vec<Value>,
    /// Schedule entries (`member {id}` or `{identifier}`, `type {id}` or `{identifier}`).
    pub schedule_entries: Vec<Value>,
    /// Members (`identifier`, `firstName`, `lastName`, `primaryEmail`, `timeZone {id}`...).
    pub members: Vec<Value>,
    /// Sales activities (`name`, `assignTo {identifier}`, `status {id}`...).
    pub activities: Vec<Value>,
}

/// Collections: `company/companies`, `company/sites`, `company/contacts`,
/// `company/contacts/types`, `company/communicationtypes`, `schedule/entries`,
/// `system/members`, `sales/activities` and the setup tables of [`calendar`].
#[derive(Debug)]
pub struct CwState {
    /// Accepted credentials.
    pub credentials: Vec<CwCredential>,
    /// Accepted client ids.
    pub client_ids: Vec<String>,
    /// Rows per collection keyed by id.
    pub tables: BTreeMap<String, BTreeMap<i64, Value>>,
    /// Next id.
    pub next_id: i64,
}

const COMPANIES: &str = "company/companies";
const SITES: &str = "company/sites";
const CONTACTS: &str = "company/contacts";
const CONTACT_TYPES: &str = "company/contacts/types";
const COMM_TYPES: &str = "company/communicationtypes";
const ENTRIES: &str = "schedule/entries";
const STATUSES: &str = "company/companies/statuses";

/// The properties of each collection's model in the ConnectWise API (`Company`, `Contact`,
/// `Site`, `ScheduleEntry`, `ContactCommunication`, `ContactType`): a JSON-Patch path must start
/// with one of them (case-insensitive), as in ConnectWise.
fn model_fields(table: &str) -> Option<&'static [&'static str]> {
    Some(match table {
        COMPANIES => &[
            "id",
            "identifier",
            "name",
            "status",
            "type",
            "types",
            "addressLine1",
            "addressLine2",
            "city",
            "state",
            "zip",
            "country",
            "phoneNumber",
            "faxNumber",
            "website",
            "territory",
            "territoryId",
            "market",
            "marketId",
            "accountNumber",
            "defaultContact",
            "dateAcquired",
            "sicCode",
            "parentCompany",
            "annualRevenue",
            "numberOfEmployees",
            "yearEstablished",
            "revenueYear",
            "ownershipType",
            "timeZoneSetup",
            "timeZone",
            "leadSource",
            "leadFlag",
            "unsubscribeFlag",
            "calendar",
            "calendarId",
            "userDefinedField1",
            "userDefinedField2",
            "userDefinedField3",
            "userDefinedField4",
            "userDefinedField5",
            "userDefinedField6",
            "userDefinedField7",
            "userDefinedField8",
            "userDefinedField9",
            "userDefinedField10",
            "vendorIdentifier",
            "taxIdentifier",
            "taxCode",
            "billingTerms",
            "invoiceTemplate",
            "pricingSchedule",
            "companyEntityType",
            "billToCompany",
            "billingSite",
            "billingContact",
            "invoiceDeliveryMethod",
            "invoiceToEmailAddress",
            "invoiceCCEmailAddress",
            "deletedFlag",
            "dateDeleted",
            "deletedBy",
            "mobileGuid",
            "facebookUrl",
            "twitterUrl",
            "linkedInUrl",
            "currency",
            "territoryManager",
            "resellerIdentifier",
            "isVendorFlag",
            "site",
            "integratorTags",
            "_info",
            "customFields",
        ],
        CONTACTS => &[
            "id",
            "firstName",
            "lastName",
            "type",
            "types",
            "company",
            "site",
            "addressLine1",
            "addressLine2",
            "city",
            "state",
            "zip",
            "country",
            "relationship",
            "relationshipOverride",
            "department",
            "inactiveFlag",
            "defaultMergeContactId",
            "securityIdentifier",
            "managerContactId",
            "assistantContactId",
            "title",
            "school",
            "nickName",
            "marriedFlag",
            "childrenFlag",
            "children",
            "significantOther",
            "portalPassword",
            "portalSecurityLevel",
            "disablePortalLoginFlag",
            "unsubscribeFlag",
            "gender",
            "birthDay",
            "anniversary",
            "presence",
            "mobileGuid",
            "facebookUrl",
            "twitterUrl",
            "linkedInUrl",
            "defaultPhoneType",
            "defaultPhoneNbr",
            "defaultPhoneExtension",
            "defaultBillingFlag",
            "defaultFlag",
            "companyLocation",
            "communicationItems",
            "integratorTags",
            "ignoreDuplicates",
            "_info",
            "customFields",
        ],
        SITES => &[
            "id",
            "name",
            "addressLine1",
            "addressLine2",
            "city",
            "stateReference",
            "zip",
            "country",
            "addressFormat",
            "phoneNumber",
            "phoneNumberExt",
            "faxNumber",
            "taxCode",
            "entityType",
            "expenseReimbursement",
            "primaryAddressFlag",
            "defaultShippingFlag",
            "defaultBillingFlag",
            "defaultMailingFlag",
            "inactiveFlag",
            "billSeparateFlag",
            "mobileGuid",
            "calendar",
            "timeZone",
            "company",
            "_info",
            "customFields",
        ],
        ENTRIES => &[
            "id",
            "objectId",
            "name",
            "member",
            "where",
            "dateStart",
            "dateEnd",
            "reminder",
            "status",
            "type",
            "span",
            "doneFlag",
            "acknowledgedFlag",
            "ownerFlag",
            "meetingFlag",
            "allowScheduleConflictsFlag",
            "addMemberToProjectFlag",
            "projectRoleId",
            "mobileGuid",
            "acknowledgedDate",
            "closeDate",
            "hours",
            "_info",
        ],
        MEMBERS => calendar::MEMBER_FIELDS,
        ACTIVITIES => calendar::ACTIVITY_FIELDS,
        COMM_ITEMS => &[
            "id",
            "contactId",
            "type",
            "value",
            "extension",
            "defaultFlag",
            "mobileGuid",
            "communicationType",
            "domain",
            "_info",
        ],
        CONTACT_TYPES => &["id", "description", "defaultFlag", "_info"],
        _ => return None,
    })
}

/// Pseudo-table name for contact communication items (stored inside their contact).
const COMM_ITEMS: &str = "company/contacts/communications";

impl Default for CwState {
    fn default() -> Self {
        let mut s = CwState {
            credentials: vec![],
            client_ids: vec![],
            tables: BTreeMap::new(),
            next_id: 1000,
        };
        for (id, d, phone, fax, email) in [
            (1, "Email", false, false, true),
            (2, "Direct", true, false, false),
            (3, "Fax", false, true, false),
            (4, "Cell", true, false, false),
        ] {
            s.tables.entry(COMM_TYPES.into()).or_default().insert(
                id,
                json!({"id": id, "description": d, "phoneFlag": phone, "faxFlag": fax, "emailFlag": email, "defaultFlag": id == 1, "_info": info()}),
            );
        }
        s.tables.entry(STATUSES.into()).or_default().insert(
            1,
            json!({"id": 1, "name": "Active", "defaultFlag": true, "inactiveFlag": false, "_info": info()}),
        );
        for (table, rows) in calendar::setup_tables() {
            let t = s.tables.entry(table.into()).or_default();
            for mut row in rows {
                let id = row["id"].as_i64().unwrap_or_default();
                row["_info"] = info();
                t.insert(id, row);
            }
        }
        s
    }
}

fn info() -> Value {
    json!({"lastUpdated": crate::util::now_iso(), "updatedBy": "syncbridge-sim"})
}

impl CwState {
    fn alloc(&mut self, given: Option<i64>) -> i64 {
        match given.filter(|i| *i > 0) {
            Some(i) => {
                self.next_id = self.next_id.max(i);
                i
            }
            None => {
                self.next_id += 1;
                self.next_id
            }
        }
    }

    /// Fills server-set fields and normalises a row of `table`.
    fn normalize(&mut self, table: &str, mut v: Value) -> Value {
        let id = self.alloc(v.get("id").and_then(|x| x.as_i64()));
        let o = v.as_object_mut().expect("object");
        o.insert("id".into(), json!(id));
        o.insert("_info".into(), info());
        match table {
            CONTACTS => {
                o.entry("inactiveFlag").or_insert(json!(false));
                o.entry("types").or_insert(json!([]));
                let mut items = o
                    .get("communicationItems")
                    .and_then(|c| c.as_array())
                    .cloned()
                    .unwrap_or_default();
                for it in items.iter_mut() {
                    if it.get("id").and_then(Value::as_i64).is_none() {
                        self.next_id += 1;
                        it["id"] = json!(self.next_id);
                    }
                    self.normalize_comm_item(it, id);
                }
                o.insert("communicationItems".into(), Value::Array(items));
            }
            COMPANIES => {
                o.entry("status")
                    .or_insert(json!({"id": 1, "name": "Active"}));
                o.entry("deletedFlag").or_insert(json!(false));
            }
            SITES => {
                o.entry("primaryAddressFlag").or_insert(json!(false));
                o.entry("inactiveFlag").or_insert(json!(false));
            }
            MEMBERS | ACTIVITIES | ENTRIES => calendar::defaults(table, o),
            _ => {}
        }
        self.resolve_refs(table, &mut v);
        derive(table, &mut v);
        v
    }

    /// Server-set fields of one communication item of contact `contact_id`: `contactId`,
    /// `defaultFlag`, the type reference's `name` and the `communicationType` its type's flags
    /// give (`Email`, `Fax`, else `Phone`).
    fn normalize_comm_item(&self, it: &mut Value, contact_id: i64) {
        let Some(io) = it.as_object_mut() else {
            return;
        };
        io.insert("contactId".into(), json!(contact_id));
        io.entry("defaultFlag").or_insert(json!(false));
        let ty = io.get("type").cloned().unwrap_or(Value::Null);
        let known =
            self.tables
                .get(COMM_TYPES)
                .and_then(|t| match ty.get("id").and_then(Value::as_i64) {
                    Some(tid) => t.get(&tid),
                    None => ty.get("name").and_then(Value::as_str).and_then(|n| {
                        t.values().find(|r| {
                            r["description"]
                                .as_str()
                                .is_some_and(|d| d.eq_ignore_ascii_case(n))
                        })
                    }),
                });
        let kind = match known {
            Some(t) => {
                io.insert(
                    "type".into(),
                    json!({"id": t["id"], "name": t["description"]}),
                );
                if t["emailFlag"] == json!(true) {
                    "Email"
                } else if t["faxFlag"] == json!(true) {
                    "Fax"
                } else {
                    "Phone"
                }
            }
            // an unknown type (seeds only; requests are checked first): judge by its name
            None => match ty["name"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
                .as_str()
            {
                "email" => "Email",
                "fax" => "Fax",
                _ => "Phone",
            },
        };
        io.insert("communicationType".into(), json!(kind));
    }

    /// The stored row a reference `{id}` (or `{identifier}` for companies) points to.
    fn lookup(&self, table: &str, r: &Value) -> Option<&Value> {
        let t = self.tables.get(table)?;
        match r.get("id").and_then(Value::as_i64) {
            Some(id) => t.get(&id),
            None if matches!(table, COMPANIES | MEMBERS | SCHEDULE_TYPES) => {
                r["identifier"].as_str().and_then(|ident| {
                    t.values().find(|c| {
                        c["identifier"]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(ident))
                    })
                })
            }
            // setup tables: by name
            None if matches!(
                table,
                TIME_ZONES | SCHEDULE_STATUSES | ACTIVITY_TYPES | ACTIVITY_STATUSES
            ) =>
            {
                r["name"].as_str().and_then(|n| {
                    t.values().find(|c| {
                        c["name"]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(n))
                    })
                })
            }
            None => None,
        }
    }

    /// The references a row of `table` holds: (field, table pointed to, is an array).
    fn references(table: &str) -> &'static [(&'static str, &'static str, bool)] {
        match table {
            CONTACTS => &[
                ("company", COMPANIES, false),
                ("site", SITES, false),
                ("types", CONTACT_TYPES, true),
            ],
            COMPANIES => &[
                ("status", STATUSES, false),
                ("defaultContact", CONTACTS, false),
            ],
            SITES => &[("company", COMPANIES, false)],
            MEMBERS => &[
                ("timeZone", TIME_ZONES, false),
                ("reportsTo", MEMBERS, false),
            ],
            ENTRIES => &[
                ("member", MEMBERS, false),
                ("type", SCHEDULE_TYPES, false),
                ("status", SCHEDULE_STATUSES, false),
            ],
            ACTIVITIES => &[
                ("assignTo", MEMBERS, false),
                ("assignedBy", MEMBERS, false),
                ("type", ACTIVITY_TYPES, false),
                ("status", ACTIVITY_STATUSES, false),
                ("company", COMPANIES, false),
                ("contact", CONTACTS, false),
            ],
            _ => &[],
        }
    }

    /// Fills the `identifier`/`name` of the references a row holds, as ConnectWise answers
    /// them; references to unknown rows are left as given (see [`CwState::check_refs`]).
    fn resolve_refs(&self, table: &str, v: &mut Value) {
        for (field, target, many) in Self::references(table) {
            let refs: Vec<&mut Value> = match v.get_mut(*field) {
                Some(Value::Array(a)) if *many => a.iter_mut().collect(),
                Some(r @ Value::Object(_)) if !*many => vec![r],
                _ => continue,
            };
            for r in refs {
                let Some(row) = self.lookup(target, r) else {
                    continue;
                };
                *r = match *target {
                    COMPANIES => {
                        json!({"id": row["id"], "identifier": row["identifier"], "name": row["name"]})
                    }
                    CONTACT_TYPES => json!({"id": row["id"], "name": row["description"]}),
                    CONTACTS => json!({"id": row["id"], "name": format!("{} {}",
                        row["firstName"].as_str().unwrap_or(""), row["lastName"].as_str().unwrap_or("")).trim()}),
                    MEMBERS => {
                        json!({"id": row["id"], "identifier": row["identifier"], "name": format!("{} {}",
                        row["firstName"].as_str().unwrap_or(""), row["lastName"].as_str().unwrap_or("")).trim()})
                    }
                    SCHEDULE_TYPES => {
                        json!({"id": row["id"], "identifier": row["identifier"], "name": row["name"]})
                    }
                    _ => json!({"id": row["id"], "name": row["name"]}),
                };
            }
        }
    }

    /// Refuses, in ConnectWise's error format, a row whose references point nowhere or whose
    /// communication items have an unknown type.
    fn check_refs(&self, table: &str, v: &Value) -> Result<(), Response> {
        let resource = match table {
            CONTACTS => "contact",
            COMPANIES => "company",
            SITES => "site",
            COMM_ITEMS => "contactCommunication",
            MEMBERS => "member",
            ENTRIES => "scheduleEntry",
            ACTIVITIES => "activity",
            _ => "record",
        };
        let bad = |field: &str, what: &str| {
            cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                &format!("{resource} object is invalid"),
                json!([{"code": "InvalidField", "message": format!("{what} not found."), "resource": resource, "field": field}]),
            )
        };
        for (field, target, many) in Self::references(table) {
            let refs: Vec<&Value> = match v.get(*field) {
                Some(Value::Array(a)) if *many => a.iter().collect(),
                Some(r @ Value::Object(_)) if !*many => vec![r],
                _ => continue,
            };
            for r in refs {
                if self.lookup(target, r).is_none() {
                    let what = match *target {
                        COMPANIES => "Company",
                        SITES => "Site",
                        CONTACT_TYPES => "Contact type",
                        STATUSES => "Company status",
                        MEMBERS => "Member",
                        TIME_ZONES => "Time zone",
                        SCHEDULE_TYPES => "Schedule type",
                        SCHEDULE_STATUSES => "Schedule status",
                        ACTIVITY_TYPES => "Activity type",
                        ACTIVITY_STATUSES => "Activity status",
                        _ => "Contact",
                    };
                    return Err(bad(field, what));
                }
            }
        }
        let items: Vec<&Value> = match table {
            CONTACTS => v["communicationItems"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            COMM_ITEMS => vec![v],
            _ => vec![],
        };
        for it in items {
            let ty = &it["type"];
            let known = self.tables.get(COMM_TYPES).is_some_and(|t| {
                match ty.get("id").and_then(Value::as_i64) {
                    Some(id) => t.contains_key(&id),
                    None => ty["name"].as_str().is_some_and(|n| {
                        t.values().any(|r| {
                            r["description"]
                                .as_str()
                                .is_some_and(|d| d.eq_ignore_ascii_case(n))
                        })
                    }),
                }
            });
            if !known {
                return Err(bad("communicationItems/type", "Communication type"));
            }
        }
        Ok(())
    }

    /// Refuses a schedule entry whose type points to another record (`S`, `C`, `P`) without an
    /// `objectId` (for `C`, an activity that exists), or that ends before it starts.
    fn check_entry_object(&self, table: &str, v: &Value) -> Result<(), Response> {
        if table != ENTRIES {
            return Ok(());
        }
        let bad = |field: &str, message: &str| {
            Err(cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "scheduleEntry object is invalid",
                json!([{"code": "InvalidField", "message": message, "resource": "scheduleEntry", "field": field}]),
            ))
        };
        let ident = self
            .lookup(SCHEDULE_TYPES, &v["type"])
            .and_then(|t| t["identifier"].as_str())
            .unwrap_or("");
        if calendar::needs_object(ident) {
            let Some(object) = v["objectId"].as_i64() else {
                return bad("objectId", "objectId is required for this schedule type.");
            };
            if ident == "C"
                && !self
                    .tables
                    .get(ACTIVITIES)
                    .is_some_and(|t| t.contains_key(&object))
            {
                return bad("objectId", "Activity not found.");
            }
        }
        let date = |f: &str| {
            v[f].as_str()
                .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        };
        if let (Some(start), Some(end)) = (date("dateStart"), date("dateEnd")) {
            if end < start {
                return bad("dateEnd", "dateEnd must be after dateStart.");
            }
        }
        Ok(())
    }

    /// Inserts a row into a collection; returns the stored row.
    pub fn insert(&mut self, table: &str, v: Value) -> Value {
        let row = self.normalize(table, v);
        let id = row["id"].as_i64().unwrap_or_default();
        self.tables
            .entry(table.to_string())
            .or_default()
            .insert(id, row.clone());
        row
    }

    /// Adds seed data.
    pub fn apply_seed(&mut self, seed: &CwSeed) {
        self.credentials.extend(seed.credentials.iter().cloned());
        self.client_ids.extend(seed.client_ids.iter().cloned());
        for t in &seed.contact_types {
            self.insert(CONTACT_TYPES, t.clone());
        }
        for c in &seed.companies {
            let mut c = c.clone();
            let sites = c
                .as_object_mut()
                .and_then(|o| o.remove("sites"))
                .and_then(|s| s.as_array().cloned())
                .unwrap_or_default();
            let row = self.insert(COMPANIES, c);
            for s in sites {
                let mut s = s;
                s["company"] =
                    json!({"id": row["id"], "identifier": row["identifier"], "name": row["name"]});
                self.insert(SITES, s);
            }
        }
        for c in &seed.contacts {
            self.insert(CONTACTS, c.clone());
        }
        for m in &seed.members {
            self.insert(MEMBERS, m.clone());
        }
        for a in &seed.activities {
            self.insert(ACTIVITIES, a.clone());
        }
        for e in &seed.schedule_entries {
            self.insert(ENTRIES, e.clone());
        }
    }

    /// JSON dump.
    pub fn dump(&self) -> Value {
        Value::Object(
            self.tables
                .iter()
                .map(|(k, v)| (k.clone(), Value::Array(v.values().cloned().collect())))
                .collect(),
        )
    }
}

/// Rust API for tests.
pub struct CwHandle<'a>(pub &'a Store);

impl CwHandle<'_> {
    /// Adds credentials.
    pub fn add_credential(&self, company_id: &str, public_key: &str, private_key: &str) {
        lock(&self.0.connectwise).credentials.push(CwCredential {
            company_id: company_id.into(),
            public_key: public_key.into(),
            private_key: private_key.into(),
        });
    }
    /// Inserts a row into a collection (`company/contacts`, …); returns its id.
    pub fn insert(&self, collection: &str, row: Value) -> i64 {
        lock(&self.0.connectwise).insert(&collection.to_ascii_lowercase(), row)["id"]
            .as_i64()
            .unwrap_or_default()
    }
    /// Edits a row as a person in ConnectWise would: the given fields change
    /// and `_info.lastUpdated` moves to now. False when there is no such row.
    pub fn edit(&self, collection: &str, id: i64, patch: Value) -> bool {
        let mut s = lock(&self.0.connectwise);
        let Some(row) = s
            .tables
            .get_mut(&collection.to_ascii_lowercase())
            .and_then(|rows| rows.get_mut(&id))
        else {
            return false;
        };
        for (k, v) in patch.as_object().into_iter().flatten() {
            row[k] = v.clone();
        }
        row["_info"] = info();
        true
    }
    /// Deletes a row, as a person in ConnectWise would. False when there is none.
    pub fn delete(&self, collection: &str, id: i64) -> bool {
        lock(&self.0.connectwise)
            .tables
            .get_mut(&collection.to_ascii_lowercase())
            .and_then(|rows| rows.remove(&id))
            .is_some()
    }
    /// Rows of a collection.
    pub fn rows(&self, collection: &str) -> Vec<Value> {
        lock(&self.0.connectwise)
            .tables
            .get(&collection.to_ascii_lowercase())
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }
    /// One row.
    pub fn get(&self, collection: &str, id: i64) -> Option<Value> {
        lock(&self.0.connectwise)
            .tables
            .get(&collection.to_ascii_lowercase())?
            .get(&id)
            .cloned()
    }
}

/// A CW error object.
pub fn cw_error(status: StatusCode, code: &str, message: &str, errors: Value) -> Response {
    json_response(
        status,
        &json!({"code": code, "message": message, "errors": errors}),
    )
}

/// The answer for an injected fault status.
pub fn fault_response(status: StatusCode) -> Response {
    let (code, msg) = match status.as_u16() {
        429 => ("TooManyRequests", "Too many requests, please retry later."),
        401 => ("Unauthorized", "Unauthorized"),
        404 => ("NotFound", "Not found"),
        _ => (
            "UnexpectedServerError",
            "An unexpected server error has occurred.",
        ),
    };
    cw_error(status, code, msg, Value::Null)
}

fn authenticate(store: &Store, h: &HeaderMap) -> Result<(), Response> {
    let s = lock(&store.connectwise);
    let client_id = header(h, "clientId").unwrap_or("").trim().to_string();
    if client_id.is_empty()
        || (!s.client_ids.is_empty()
            && !s
                .client_ids
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&client_id)))
    {
        return Err(cw_error(
            StatusCode::BAD_REQUEST,
            "InvalidClientId",
            "A valid clientId header is required. Register your integration at https://developer.connectwise.com/ClientID to obtain one.",
            Value::Null,
        ));
    }
    let unauthorized = || {
        cw_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication failed.",
            Value::Null,
        )
    };
    let Some(auth) = header(h, "authorization") else {
        return Err(unauthorized());
    };
    let Some(b64) = auth
        .strip_prefix("Basic ")
        .or_else(|| auth.strip_prefix("basic "))
    else {
        return Err(unauthorized());
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return Err(unauthorized());
    };
    let raw = String::from_utf8_lossy(&raw).to_string();
    let ok = raw.split_once(':').and_then(|(user, private)| {
        let (company, public) = user.split_once('+')?;
        Some(s.credentials.iter().any(|c| {
            c.company_id.eq_ignore_ascii_case(company)
                && c.public_key == public
                && c.private_key == private
        }))
    });
    if ok != Some(true) || store.scenarios().wrong_password {
        return Err(unauthorized());
    }
    Ok(())
}

/// Entry point.
pub async fn handle(store: Arc<Store>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if let Err(r) = authenticate(&store, &parts.headers) {
        return r;
    }
    let path = parts.uri.path().to_ascii_lowercase();
    let rest = path
        .trim_start_matches("/v4_6_release/apis/3.0")
        .trim_matches('/')
        .to_string();
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let q = parse_query(parts.uri.query());
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return cw_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    &format!("Request body is not valid JSON: {e}"),
                    Value::Null,
                )
            }
        }
    };
    let link_base = format!(
        "{}/v4_6_release/apis/3.0/{}",
        store.base_url(),
        parts
            .uri
            .path()
            .trim_start_matches("/v4_6_release/apis/3.0/")
    );
    let m = parts.method.clone();
    let mut s = lock(&store.connectwise);
    match (m.as_str(), segs.as_slice()) {
        ("GET", ["system", "info"]) => json_response(
            StatusCode::OK,
            &json!({"version": "v2025.1.00000", "isCloud": true, "serverTimeZone": "Eastern Standard Time", "licenseBits": [], "cloudRegion": "NA"}),
        ),
        ("GET", ["company", "companies", cid, "sites"]) => {
            let cid: i64 = cid.parse().unwrap_or(-1);
            if !s
                .tables
                .get(COMPANIES)
                .is_some_and(|t| t.contains_key(&cid))
            {
                return not_found("Company", cid);
            }
            let rows: Vec<Value> = s
                .tables
                .get(SITES)
                .map(|t| {
                    t.values()
                        .filter(|r| r["company"]["id"] == json!(cid))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            list(rows, &q, &link_base)
        }
        ("POST", ["company", "companies", cid, "sites"]) => {
            let cid: i64 = cid.parse().unwrap_or(-1);
            let Some(comp) = s.tables.get(COMPANIES).and_then(|t| t.get(&cid)).cloned() else {
                return not_found("Company", cid);
            };
            if body
                .get("name")
                .and_then(|n| n.as_str())
                .is_none_or(str::is_empty)
            {
                return invalid("site", "name");
            }
            let mut b = body;
            b["company"] =
                json!({"id": cid, "identifier": comp["identifier"], "name": comp["name"]});
            let row = s.insert(SITES, b);
            json_response(StatusCode::CREATED, &row)
        }
        (_, ["company", "companies", cid, "sites", sid]) => {
            let cid: i64 = cid.parse().unwrap_or(-1);
            let sid: i64 = sid.parse().unwrap_or(-1);
            let exists = s
                .tables
                .get(SITES)
                .and_then(|t| t.get(&sid))
                .is_some_and(|r| r["company"]["id"] == json!(cid));
            if !exists {
                return not_found("Site", sid);
            }
            item(&mut s, &m, SITES, sid, body, "Site")
        }
        ("GET", [a, b, "count"]) | ("GET", [a, b, "types", "count"]) => {
            let table = table_of(a, b, segs.len() == 4);
            let rows: Vec<Value> = s
                .tables
                .get(&table)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default();
            match filter(rows, &q) {
                Ok(r) => json_response(StatusCode::OK, &json!({"count": r.len()})),
                Err(e) => e,
            }
        }
        ("GET", ["company", "contacts", "types"])
        | ("GET", ["company", "communicationtypes"])
        | ("GET", ["company", "companies"])
        | ("GET", ["company", "contacts"])
        | ("GET", ["schedule", "entries"])
        | ("GET", ["schedule", "types"])
        | ("GET", ["schedule", "statuses"])
        | ("GET", ["system", "members"])
        | ("GET", ["system", "timezonesetups"])
        | ("GET", ["sales", "activities"])
        | ("GET", ["sales", "activities", "types"])
        | ("GET", ["sales", "activities", "statuses"]) => {
            let table = segs.join("/");
            let rows: Vec<Value> = s
                .tables
                .get(&table)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default();
            list(rows, &q, &link_base)
        }
        ("POST", ["company", "contacts", "types"])
        | ("POST", ["company", "companies"])
        | ("POST", ["company", "contacts"])
        | ("POST", ["schedule", "entries"])
        | ("POST", ["system", "members"])
        | ("POST", ["sales", "activities"]) => {
            let table = segs.join("/");
            let required: &[&str] = match table.as_str() {
                COMPANIES => &["identifier", "name"],
                CONTACTS => &["firstName"],
                CONTACT_TYPES => &["description"],
                t => calendar::required(t),
            };
            if !body.is_object() {
                return cw_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    "The request body must be an object.",
                    Value::Null,
                );
            }
            for f in required {
                if body.get(*f).is_none_or(|v| v.is_null() || v == "") {
                    return invalid(table.rsplit('/').next().unwrap_or(""), f);
                }
            }
            if matches!(table.as_str(), COMPANIES | MEMBERS)
                && s.tables.get(&table).is_some_and(|t| {
                    t.values().any(|c| {
                        c["identifier"].as_str().map(str::to_lowercase)
                            == body["identifier"].as_str().map(str::to_lowercase)
                    })
                })
            {
                let resource = if table == MEMBERS {
                    "member"
                } else {
                    "company"
                };
                return cw_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    &format!("{resource} object is invalid"),
                    json!([{"code": "DuplicateValue", "message": "The identifier is already in use.", "resource": resource, "field": "identifier"}]),
                );
            }
            if let Err(e) = s.check_refs(&table, &body) {
                return e;
            }
            if let Err(e) = s.check_entry_object(&table, &body) {
                return e;
            }
            let row = s.insert(&table, body);
            json_response(StatusCode::CREATED, &row)
        }
        ("GET", ["company", "contacts", cid, "communications", "count"]) => {
            let cid: i64 = cid.parse().unwrap_or(-1);
            match s.tables.get(CONTACTS).and_then(|t| t.get(&cid)) {
                None => not_found("Contact", cid),
                Some(c) => {
                    let rows = c["communicationItems"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    match filter(rows, &q) {
                        Ok(r) => json_response(StatusCode::OK, &json!({"count": r.len()})),
                        Err(e) => e,
                    }
                }
            }
        }
        (_, ["company", "contacts", cid, "communications", rest @ ..]) if rest.len() <= 1 => {
            let cid: i64 = cid.parse().unwrap_or(-1);
            let item_id = rest.first().map(|i| i.parse::<i64>().unwrap_or(-1));
            communications(&mut s, &m, cid, item_id, body, &q, &link_base)
        }
        (_, [a, b, id]) if id.parse::<i64>().is_ok() => {
            let table = format!("{a}/{b}");
            let name = match table.as_str() {
                COMPANIES => "Company",
                CONTACTS => "Contact",
                ENTRIES => "ScheduleEntry",
                MEMBERS => "Member",
                ACTIVITIES => "Activity",
                _ => "Record",
            };
            item(&mut s, &m, &table, id.parse().unwrap_or(-1), body, name)
        }
        (_, ["company", "contacts", "types", id]) => item(
            &mut s,
            &m,
            CONTACT_TYPES,
            id.parse().unwrap_or(-1),
            body,
            "ContactType",
        ),
        _ => cw_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The requested resource /{rest} was not found."),
            Value::Null,
        ),
    }
}

fn table_of(a: &str, b: &str, types: bool) -> String {
    if types {
        format!("{a}/{b}/types")
    } else {
        format!("{a}/{b}")
    }
}

fn not_found(name: &str, id: i64) -> Response {
    cw_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{name} recordId {id} not found."),
        Value::Null,
    )
}

fn invalid(resource: &str, field: &str) -> Response {
    let resource = resource.trim_end_matches('s');
    cw_error(
        StatusCode::BAD_REQUEST,
        "InvalidObject",
        &format!("{resource} object is invalid"),
        json!([{"code": "NullValue", "message": format!("The {field} field is required."), "resource": resource, "field": field}]),
    )
}

fn filter(mut rows: Vec<Value>, q: &[(String, String)]) -> Result<Vec<Value>, Response> {
    if let Some(c) = query_get(q, "conditions").filter(|c| !c.trim().is_empty()) {
        let cond = conditions::parse(c).map_err(|e| {
            cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                &format!("conditions: {e}"),
                Value::Null,
            )
        })?;
        rows.retain(|r| conditions::eval(&cond, r));
    }
    if let Some(c) = query_get(q, "childConditions").filter(|c| !c.trim().is_empty()) {
        let cond = conditions::parse(c).map_err(|e| {
            cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                &format!("childConditions: {e}"),
                Value::Null,
            )
        })?;
        rows.retain(|r| conditions::eval_child(&cond, r));
    }
    Ok(rows)
}

fn list(rows: Vec<Value>, q: &[(String, String)], link_base: &str) -> Response {
    let mut rows = match filter(rows, q) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if let Some(ob) = query_get(q, "orderBy") {
        let mut p = ob.split_whitespace();
        let field: Vec<String> = p
            .next()
            .unwrap_or("id")
            .split('/')
            .map(str::to_string)
            .collect();
        let desc = p.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        let get = |r: &Value| {
            field
                .iter()
                .try_fold(r.clone(), |acc, f| crate::odata::get_ci(&acc, f).cloned())
                .unwrap_or(Value::Null)
        };
        rows.sort_by(|a, b| {
            let o = crate::odata::compare(&get(a), &get(b)).unwrap_or(std::cmp::Ordering::Equal);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let page_size: usize = match query_get(q, "pageSize").map(|p| p.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "pageSize must be between 1 and 1000.",
                Value::Null,
            )
        }
    };
    let page: usize = match query_get(q, "page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return cw_error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "page must be 1 or greater.",
                Value::Null,
            )
        }
    };
    let total = rows.len();
    let last = total.div_ceil(page_size).max(1);
    let fields: Option<Vec<String>> =
        query_get(q, "fields").map(|f| f.split(',').map(|x| x.trim().to_string()).collect());
    let items: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|r| match &fields {
            None => r,
            Some(fs) => {
                let mut o = Map::new();
                for f in fs {
                    let top = f.split('/').next().unwrap_or("");
                    if let Some(v) = crate::odata::get_ci(&r, top) {
                        o.insert(top.to_string(), v.clone());
                    }
                }
                Value::Object(o)
            }
        })
        .collect();
    let mut resp = json_response(StatusCode::OK, &Value::Array(items));
    let other: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("page") && !k.eq_ignore_ascii_case("pageSize"))
        .cloned()
        .collect();
    let url = |p: usize| {
        let mut s = format!("{link_base}?pageSize={page_size}&page={p}");
        for (k, v) in &other {
            s.push_str(&format!("&{}={}", percent_encode(k), percent_encode(v)));
        }
        s
    };
    let mut links = vec![];
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url(1)));
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if !links.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            resp.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    resp
}

fn apply_patch(row: &mut Value, ops: &Value, fields: Option<&[&str]>) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("PATCH body must be a JSON-Patch array of operations.")?;
    for op in ops {
        let kind = op
            .get("op")
            .and_then(|o| o.as_str())
            .ok_or("Each operation needs an 'op'.")?
            .to_ascii_lowercase();
        let path = op
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or("Each operation needs a 'path'.")?;
        let segs: Vec<&str> = path
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if segs.is_empty() || segs[0].eq_ignore_ascii_case("id") || segs[0] == "_info" {
            return Err(format!("The path '{path}' cannot be modified."));
        }
        if let Some(fields) = fields {
            let Some(known) = fields.iter().find(|f| f.eq_ignore_ascii_case(segs[0])) else {
                return Err(format!(
                    "Cannot apply patch: the path '{path}' is not valid."
                ));
            };
            // the model's spelling
            if row.get(segs[0]).is_none() && row.get(*known).is_none() {
                if let Some(o) = row.as_object_mut() {
                    o.insert((*known).to_string(), Value::Null);
                }
            }
        }
        let mut cur = &mut *row;
        for s in &segs[..segs.len() - 1] {
            if !cur.get(*s).is_some_and(|v| v.is_object()) {
                cur[*s] = json!({});
            }
            cur = cur.get_mut(*s).ok_or("bad path")?;
        }
        let last = segs[segs.len() - 1];
        let key = cur
            .as_object()
            .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(last)).cloned())
            .unwrap_or_else(|| last.to_string());
        match kind.as_str() {
            "replace" | "add" => {
                let v = op
                    .get("value")
                    .cloned()
                    .ok_or("replace/add needs a 'value'.")?;
                cur[key.as_str()] = v;
            }
            "remove" => {
                if let Some(o) = cur.as_object_mut() {
                    o.remove(&key);
                }
            }
            other => return Err(format!("Unsupported operation '{other}'.")),
        }
    }
    Ok(())
}

fn item(s: &mut CwState, m: &Method, table: &str, id: i64, body: Value, name: &str) -> Response {
    if !s.tables.get(table).is_some_and(|t| t.contains_key(&id)) {
        return not_found(name, id);
    }
    match m.as_str() {
        "GET" => json_response(StatusCode::OK, &s.tables[table][&id]),
        "DELETE" => {
            s.tables.get_mut(table).map(|t| t.remove(&id));
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(axum::body::Body::empty())
                .unwrap_or_default()
        }
        "PATCH" => {
            let mut row = s.tables[table][&id].clone();
            if let Err(e) = apply_patch(&mut row, &body, model_fields(table)) {
                return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", &e, Value::Null);
            }
            if let Err(e) = s.check_refs(table, &row) {
                return e;
            }
            if let Err(e) = s.check_entry_object(table, &row) {
                return e;
            }
            row["_info"] = info();
            let row = if table == CONTACTS {
                renormalize_contact(s, row)
            } else {
                s.resolve_refs(table, &mut row);
                derive(table, &mut row);
                row
            };
            s.tables.get_mut(table).map(|t| t.insert(id, row.clone()));
            json_response(StatusCode::OK, &row)
        }
        "PUT" => {
            if !body.is_object() {
                return cw_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    "The request body must be an object.",
                    Value::Null,
                );
            }
            if let Err(e) = s.check_refs(table, &body) {
                return e;
            }
            let mut b = body;
            b["id"] = json!(id);
            let row = s.normalize(table, b);
            s.tables.get_mut(table).map(|t| t.insert(id, row.clone()));
            json_response(StatusCode::OK, &row)
        }
        _ => cw_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested method is not allowed.",
            Value::Null,
        ),
    }
}

/// `company/contacts/{id}/communications[/{itemId}]`: the contact's communication items.
fn communications(
    s: &mut CwState,
    m: &Method,
    cid: i64,
    item_id: Option<i64>,
    body: Value,
    q: &[(String, String)],
    link_base: &str,
) -> Response {
    let Some(contact) = s.tables.get(CONTACTS).and_then(|t| t.get(&cid)).cloned() else {
        return not_found("Contact", cid);
    };
    let mut items = contact["communicationItems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let store = |s: &mut CwState, items: Vec<Value>| {
        if let Some(c) = s.tables.get_mut(CONTACTS).and_then(|t| t.get_mut(&cid)) {
            c["communicationItems"] = Value::Array(items);
            c["_info"] = info();
        }
    };
    let pos = item_id.map(|iid| items.iter().position(|i| i["id"] == json!(iid)));
    match (m.as_str(), pos) {
        ("GET", None) => list(items, q, link_base),
        ("POST", None) => {
            if !body.is_object() {
                return cw_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    "The request body must be an object.",
                    Value::Null,
                );
            }
            if body.get("value").is_none_or(|v| v.is_null() || v == "") {
                return invalid("contactCommunication", "value");
            }
            if body.get("type").is_none_or(|v| v.is_null()) {
                return invalid("contactCommunication", "type");
            }
            if let Err(e) = s.check_refs(COMM_ITEMS, &body) {
                return e;
            }
            let mut it = body;
            s.next_id += 1;
            it["id"] = json!(s.next_id);
            s.normalize_comm_item(&mut it, cid);
            items.push(it.clone());
            store(s, items);
            json_response(StatusCode::CREATED, &it)
        }
        (_, Some(None)) => not_found("ContactCommunication", item_id.unwrap_or(-1)),
        ("GET", Some(Some(i))) => json_response(StatusCode::OK, &items[i]),
        ("DELETE", Some(Some(i))) => {
            items.remove(i);
            store(s, items);
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(axum::body::Body::empty())
                .unwrap_or_default()
        }
        ("PATCH", Some(Some(i))) | ("PUT", Some(Some(i))) => {
            let mut it = if m == Method::PATCH {
                let mut it = items[i].clone();
                if let Err(e) = apply_patch(&mut it, &body, model_fields(COMM_ITEMS)) {
                    return cw_error(StatusCode::BAD_REQUEST, "InvalidObject", &e, Value::Null);
                }
                it
            } else {
                let mut b = body;
                b["id"] = items[i]["id"].clone();
                b
            };
            if let Err(e) = s.check_refs(COMM_ITEMS, &it) {
                return e;
            }
            s.normalize_comm_item(&mut it, cid);
            items[i] = it.clone();
            store(s, items);
            json_response(StatusCode::OK, &it)
        }
        _ => cw_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested method is not allowed.",
            Value::Null,
        ),
    }
}

/// Server-computed fields: a schedule entry's `hours` (from its dates) and `closeDate` (set
/// when it is marked done, cleared when it is reopened).
fn derive(table: &str, v: &mut Value) {
    if table != ENTRIES {
        return;
    }
    let date = |f: &str| {
        v[f].as_str()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
    };
    if let (Some(start), Some(end)) = (date("dateStart"), date("dateEnd")) {
        let hours = (end - start).num_seconds() as f64 / 3600.0;
        v["hours"] = json!((hours * 100.0).round() / 100.0);
    }
    match v["doneFlag"].as_bool() {
        Some(true) if v["closeDate"].as_str().is_none() => {
            v["closeDate"] = json!(crate::util::now_iso())
        }
        Some(false) => v["closeDate"] = Value::Null,
        _ => {}
    }
}

fn renormalize_contact(s: &mut CwState, row: Value) -> Value {
    let id = row["id"].clone();
    let mut r = s.normalize(CONTACTS, row);
    r["id"] = id;
    r
}
