//! ConnectWise calendar entities: members (`system/members`), schedule entries
//! (`schedule/entries`) and sales activities (`sales/activities`), with the setup tables their
//! references point to (time zones, schedule types and statuses, activity types and statuses).
//!
//! Field names follow the ConnectWise Manage models `Member`, `ScheduleEntry` and `Activity`
//! (as the connectpyse 0.8.1 models list them, plus `primaryEmail` of current Manage versions).

use serde_json::{json, Value};

/// Members (`Member`).
pub const MEMBERS: &str = "system/members";
/// Sales activities (`Activity`).
pub const ACTIVITIES: &str = "sales/activities";
/// Time zone setups (`TimeZoneSetupReference` of a member).
pub const TIME_ZONES: &str = "system/timezonesetups";
/// Schedule types (`ScheduleTypeReference {id, identifier, name}` of an entry).
pub const SCHEDULE_TYPES: &str = "schedule/types";
/// Schedule statuses (`ScheduleStatusReference` of an entry).
pub const SCHEDULE_STATUSES: &str = "schedule/statuses";
/// Activity types (`ActivityTypeReference`).
pub const ACTIVITY_TYPES: &str = "sales/activities/types";
/// Activity statuses (`ActivityStatusReference`; `closedFlag` marks the closed ones).
pub const ACTIVITY_STATUSES: &str = "sales/activities/statuses";

/// The setup tables a fresh ConnectWise has: `(table, rows)`.
pub fn setup_tables() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            TIME_ZONES,
            [
                "Eastern Standard Time",
                "Central Standard Time",
                "Mountain Standard Time",
                "Pacific Standard Time",
                "GMT Standard Time",
                "W. Europe Standard Time",
                "AUS Eastern Standard Time",
            ]
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"id": i + 1, "name": n}))
            .collect(),
        ),
        (
            SCHEDULE_TYPES,
            [
                ("S", "Service"),
                ("C", "Activity"),
                ("P", "Project"),
                ("M", "Meeting"),
                ("H", "Holiday"),
            ]
            .iter()
            .enumerate()
            .map(|(i, (ident, n))| json!({"id": i + 1, "identifier": ident, "name": n}))
            .collect(),
        ),
        (
            SCHEDULE_STATUSES,
            vec![
                json!({"id": 1, "name": "Firm", "defaultFlag": true}),
                json!({"id": 2, "name": "Tentative", "defaultFlag": false}),
            ],
        ),
        (
            ACTIVITY_TYPES,
            ["Call", "Appointment", "Email", "Task"]
                .iter()
                .enumerate()
                .map(|(i, n)| json!({"id": i + 1, "name": n, "defaultFlag": i == 0}))
                .collect(),
        ),
        (
            ACTIVITY_STATUSES,
            vec![
                json!({"id": 1, "name": "Open", "defaultFlag": true, "closedFlag": false, "inactiveFlag": false}),
                json!({"id": 2, "name": "Closed", "defaultFlag": false, "closedFlag": true, "inactiveFlag": false}),
            ],
        ),
    ]
}

/// The model properties of `Member` (a JSON-Patch path must start with one of them).
pub const MEMBER_FIELDS: &[&str] = &[
    "id",
    "identifier",
    "password",
    "firstName",
    "middleInitial",
    "lastName",
    "title",
    "licenseClass",
    "disableOnlineFlag",
    "enableMobileFlag",
    "type",
    "employeeIdentifer",
    "vendorNumber",
    "notes",
    "timeZone",
    "country",
    "inactiveDate",
    "inactiveFlag",
    "lastLogin",
    "primaryEmail",
    "officeEmail",
    "officePhone",
    "officeExtension",
    "mobileEmail",
    "mobilePhone",
    "mobileExtension",
    "homeEmail",
    "homePhone",
    "homeExtension",
    "defaultEmail",
    "defaultPhone",
    "securityRole",
    "adminFlag",
    "defaultLocation",
    "defaultDepartment",
    "reportsTo",
    "workRole",
    "workType",
    "timeApprover",
    "expenseApprover",
    "hireDate",
    "calendar",
    "calendarSyncIntegrationFlag",
    "_info",
    "customFields",
];

/// The model properties of `Activity`.
pub const ACTIVITY_FIELDS: &[&str] = &[
    "id",
    "name",
    "type",
    "company",
    "contact",
    "phoneNumber",
    "email",
    "status",
    "opportunity",
    "ticket",
    "agreement",
    "campaign",
    "notes",
    "dateStart",
    "dateEnd",
    "assignedBy",
    "assignTo",
    "scheduleStatus",
    "reminder",
    "where",
    "notifyFlag",
    "mobileGuid",
    "_info",
    "customFields",
];

/// The required fields of a `POST` to `table` (as ConnectWise's error names them).
pub fn required(table: &str) -> &'static [&'static str] {
    match table {
        MEMBERS => &["identifier", "firstName", "lastName"],
        ACTIVITIES => &["name", "assignTo"],
        super::ENTRIES => &["member", "type"],
        _ => &[],
    }
}

/// Server-set defaults of a new row of `table`.
pub fn defaults(table: &str, o: &mut serde_json::Map<String, Value>) {
    match table {
        MEMBERS => {
            o.entry("inactiveFlag").or_insert(json!(false));
            o.entry("licenseClass").or_insert(json!("F"));
        }
        ACTIVITIES => {
            o.entry("status")
                .or_insert(json!({"id": 1, "name": "Open"}));
            o.entry("type").or_insert(json!({"id": 1, "name": "Call"}));
            o.entry("notifyFlag").or_insert(json!(false));
        }
        super::ENTRIES => {
            o.entry("doneFlag").or_insert(json!(false));
            o.entry("acknowledgedFlag").or_insert(json!(false));
            o.entry("ownerFlag").or_insert(json!(false));
            o.entry("status")
                .or_insert(json!({"id": 1, "name": "Firm"}));
        }
        _ => {}
    }
}

/// Whether schedule type `identifier` points to another record through `objectId` (a service
/// ticket for `S`, an activity for `C`, a project ticket for `P`).
pub fn needs_object(identifier: &str) -> bool {
    matches!(identifier, "S" | "C" | "P")
}
