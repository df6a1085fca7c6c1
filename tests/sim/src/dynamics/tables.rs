//! Dataverse tables served by the simulator: columns, defaults, option sets (mailbox and email
//! server profile values from `../shared/oracles/dynamics/mailbox-emailserverprofile-optionsets.json`,
//! e-mail, appointment, recurring appointment, task and contact states and status reasons, the
//! recurring appointment pattern's option sets and ranges and activity party roles from
//! Dataverse's `email`, `appointment`, `recurringappointmentmaster`, `task`, `contact` and
//! `activityparty` table references)
//! and collection-valued navigation properties (an e-mail's activity parties).

use serde_json::{json, Map, Value};

/// A table.
pub struct Table {
    /// Entity set name.
    pub set: &'static str,
    /// Logical name.
    pub logical: &'static str,
    /// Primary key column.
    pub key: &'static str,
    /// Columns (lookups as `_x_value`).
    pub columns: &'static [&'static str],
}

impl Table {
    /// A row with every column at its default.
    pub fn defaults(&self) -> Value {
        let mut o = Map::new();
        for c in self.columns {
            o.insert(c.to_string(), default_of(self.set, c));
        }
        Value::Object(o)
    }
}

const COMMON: [&str; 6] = [
    "statecode",
    "statuscode",
    "createdon",
    "modifiedon",
    "versionnumber",
    "_ownerid_value",
];

macro_rules! cols {
    ($($c:literal),* $(,)?) => { &[$($c,)* "statecode", "statuscode", "createdon", "modifiedon", "versionnumber", "_ownerid_value"] };
}

/// All simulated tables.
pub const TABLES: &[Table] = &[
    Table {
        set: "emailserverprofiles",
        logical: "emailserverprofile",
        key: "emailserverprofileid",
        columns: cols![
            "emailserverprofileid",
            "name",
            "description",
            "servertype",
            "useautodiscover",
            "incomingserverlocation",
            "outgoingserverlocation",
            "incomingauthenticationprotocol",
            "outgoingauthenticationprotocol",
            "incomingcredentialretrieval",
            "outgoingcredentialretrieval",
            "incomingusername",
            "incomingpassword",
            "outgoingusername",
            "outgoingpassword",
            "incominguseimpersonation",
            "outgoinguseimpersonation",
            "incomingusessl",
            "outgoingusessl",
            "incomingportnumber",
            "outgoingportnumber",
            "exchangeversion",
            "exchangeonlinetenantid",
            "serverauthority",
            "sendemailalert",
            "maxconcurrentconnections",
            "minpollingintervalinminutes",
            "processemailsreceivedafter",
            "moveundeliveredemails",
            "ownerisnotifiedofalerts",
            "timeoutmailboxconnection"
        ],
    },
    Table {
        set: "mailboxes",
        logical: "mailbox",
        key: "mailboxid",
        columns: cols![
            "mailboxid",
            "name",
            "emailaddress",
            "_emailserverprofile_value",
            "_regardingobjectid_value",
            "incomingemaildeliverymethod",
            "outgoingemaildeliverymethod",
            "actdeliverymethod",
            "incomingemailstatus",
            "outgoingemailstatus",
            "actstatus",
            "acsoutgoingemailstatus",
            "emailrouteraccessapproval",
            "enabledforincomingemail",
            "enabledforoutgoingemail",
            "enabledforact",
            "testemailconfigurationscheduled",
            "testemailconfigurationretrycount",
            "testmailboxaccesscompletedon",
            "postponetestemailconfigurationuntil",
            "isemailaddressapprovedbyo365admin",
            "allowemailconnectortousecredentials",
            "isforwardmailbox",
            "lastsyncerror",
            "lastsyncerrorcode",
            "lastsyncerroroccurredon",
            "ewsurl",
            "orgmarkedasprimaryforexchangesync",
            "exchangecontactsimportstatus",
            "username",
            "password",
            "credentialuserid",
            "isserviceaccount"
        ],
    },
    Table {
        set: "contacts",
        logical: "contact",
        key: "contactid",
        columns: cols![
            "contactid",
            "firstname",
            "lastname",
            "fullname",
            "emailaddress1",
            "emailaddress2",
            "telephone1",
            "mobilephone",
            "jobtitle",
            "department",
            "_parentcustomerid_value",
            "address1_city"
        ],
    },
    Table {
        set: "appointments",
        logical: "appointment",
        key: "activityid",
        columns: cols![
            "activityid",
            "subject",
            "description",
            "scheduledstart",
            "scheduledend",
            "location",
            "isalldayevent",
            "_regardingobjectid_value",
            "prioritycode",
            "showasstatus",
            "instancetypecode",
            "utcconversiontimezonecode",
            // An instance or exception of a recurring series: the series (the master's
            // `activityid`) and the start the occurrence had in it.
            "seriesid",
            "originalstartdate"
        ],
    },
    // The master of a recurring appointment series: its pattern's columns from Dataverse's
    // recurringappointmentmaster table reference (the occurrences are not simulated).
    Table {
        set: "recurringappointmentmasters",
        logical: "recurringappointmentmaster",
        key: "activityid",
        columns: cols![
            "activityid",
            "subject",
            "description",
            "location",
            "starttime",
            "endtime",
            "isalldayevent",
            "patternstartdate",
            "patternenddate",
            "patternendtype",
            "occurrences",
            "recurrencepatterntype",
            "interval",
            "daysofweekmask",
            "dayofmonth",
            "monthofyear",
            "instance",
            "isweekdaypattern",
            "isnthmonthly",
            "isnthyearly",
            "firstdayofweek",
            "deletedexceptionslist",
            "utcconversiontimezonecode",
            "_regardingobjectid_value",
            "prioritycode",
            "instancetypecode"
        ],
    },
    // Dataverse's time zone definitions (read-only reference rows, seeded from [`TIME_ZONES`]).
    Table {
        set: "timezonedefinitions",
        logical: "timezonedefinition",
        key: "timezonedefinitionid",
        columns: cols![
            "timezonedefinitionid",
            "timezonecode",
            "standardname",
            "userinterfacename",
            "bias"
        ],
    },
    Table {
        set: "tasks",
        logical: "task",
        key: "activityid",
        columns: cols![
            "activityid",
            "subject",
            "description",
            "scheduledstart",
            "scheduledend",
            "prioritycode",
            "percentcomplete",
            "actualend",
            "_regardingobjectid_value"
        ],
    },
    Table {
        set: "emails",
        logical: "email",
        key: "activityid",
        columns: cols![
            "activityid",
            "subject",
            "description",
            "directioncode",
            "sender",
            "torecipients",
            "_regardingobjectid_value",
            "messageid",
            "senton",
            "actualend"
        ],
    },
    Table {
        set: "systemusers",
        logical: "systemuser",
        key: "systemuserid",
        columns: cols![
            "systemuserid",
            "fullname",
            "firstname",
            "lastname",
            "internalemailaddress",
            "domainname",
            "isdisabled",
            "_defaultmailbox_value"
        ],
    },
];

/// Time zone definitions every organization has: `timezonecode` (Microsoft's time zone index),
/// `standardname` (the Windows id), `userinterfacename`, `bias` (minutes, UTC − standard time).
pub const TIME_ZONES: &[(i64, &str, &str, i64)] = &[
    (2, "Hawaiian Standard Time", "(GMT-10:00) Hawaii", 600),
    (3, "Alaskan Standard Time", "(GMT-09:00) Alaska", 540),
    (
        4,
        "Pacific Standard Time",
        "(GMT-08:00) Pacific Time (US & Canada)",
        480,
    ),
    (
        10,
        "Mountain Standard Time",
        "(GMT-07:00) Mountain Time (US & Canada)",
        420,
    ),
    (
        20,
        "Central Standard Time",
        "(GMT-06:00) Central Time (US & Canada)",
        360,
    ),
    (
        35,
        "Eastern Standard Time",
        "(GMT-05:00) Eastern Time (US & Canada)",
        300,
    ),
    (
        85,
        "GMT Standard Time",
        "(GMT) Dublin, Edinburgh, Lisbon, London",
        0,
    ),
    (92, "UTC", "(GMT) Coordinated Universal Time", 0),
    (
        95,
        "Central Europe Standard Time",
        "(GMT+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague",
        -60,
    ),
    (
        105,
        "Romance Standard Time",
        "(GMT+01:00) Brussels, Copenhagen, Madrid, Paris",
        -60,
    ),
    (
        110,
        "W. Europe Standard Time",
        "(GMT+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        -60,
    ),
    (
        190,
        "India Standard Time",
        "(GMT+05:30) Chennai, Kolkata, Mumbai, New Delhi",
        -330,
    ),
    (
        235,
        "Tokyo Standard Time",
        "(GMT+09:00) Osaka, Sapporo, Tokyo",
        -540,
    ),
    (
        255,
        "AUS Eastern Standard Time",
        "(GMT+10:00) Canberra, Melbourne, Sydney",
        -600,
    ),
    (
        290,
        "New Zealand Standard Time",
        "(GMT+12:00) Auckland, Wellington",
        -720,
    ),
];

/// The table of an entity set.
pub fn table(set: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.set == set)
}

/// A collection-valued navigation property: its related rows live in the row under the
/// property's name, written by deep insert and returned only through `$expand`.
pub struct Collection {
    /// Entity set owning the property.
    pub set: &'static str,
    /// Navigation property name.
    pub nav: &'static str,
    /// Entity set of the related rows (option sets are looked up under it).
    pub related_set: &'static str,
    /// Logical name of the related rows.
    pub logical: &'static str,
    /// Primary key of the related rows (generated when not given).
    pub key: &'static str,
    /// Columns of the related rows.
    pub columns: &'static [&'static str],
}

/// All simulated collection-valued navigation properties: an e-mail's activity parties
/// (sender, To, Cc, Bcc...; Dataverse has no Cc column, only these).
pub const COLLECTIONS: &[Collection] = &[Collection {
    set: "emails",
    nav: "email_activity_parties",
    related_set: "activityparties",
    logical: "activityparty",
    key: "activitypartyid",
    columns: &["activitypartyid", "addressused", "participationtypemask"],
}];

/// The collection-valued navigation property `nav` of an entity set.
pub fn collection(set: &str, nav: &str) -> Option<&'static Collection> {
    COLLECTIONS.iter().find(|c| c.set == set && c.nav == nav)
}

/// Option-set values of a column.
pub fn choices(set: &str, column: &str) -> Option<&'static [(i64, &'static str)]> {
    const STATUS: &[(i64, &str)] = &[(0, "Not Run"), (1, "Success"), (2, "Failure")];
    const AUTH: &[(i64, &str)] = &[
        (0, "Auto Detect"),
        (1, "Negotiate"),
        (2, "NTLM"),
        (3, "Basic"),
        (4, "OAuth"),
    ];
    const CRED: &[(i64, &str)] = &[
        (0, "Credentials Specified by a User or Queue"),
        (1, "Credentials Specified in Email Server Profile"),
        (2, "Server to Server Authentication"),
        (3, "Windows Integrated Authentication"),
        (4, "Without Credentials (Anonymous)"),
        (5, "Gmail OAuth"),
        (6, "Exchange Hybrid Modern Auth (HMA)"),
        (7, "OAuth with Microsoft Entra ID"),
    ];
    Some(match (set, column) {
        (
            "mailboxes",
            "incomingemailstatus" | "outgoingemailstatus" | "actstatus" | "acsoutgoingemailstatus",
        ) => STATUS,
        ("mailboxes", "incomingemaildeliverymethod") => &[
            (0, "None"),
            (1, "Microsoft Dynamics 365 for Outlook"),
            (2, "Server-Side Synchronization"),
            (3, "Forward Mailbox"),
        ],
        ("mailboxes", "outgoingemaildeliverymethod") => &[
            (0, "None"),
            (1, "Microsoft Dynamics 365 for Outlook"),
            (2, "Server-Side Synchronization"),
        ],
        ("mailboxes", "actdeliverymethod") => &[
            (0, "Microsoft Dynamics 365 for Outlook"),
            (1, "Server-Side Synchronization"),
            (2, "None"),
        ],
        ("mailboxes", "emailrouteraccessapproval") => &[
            (0, "Empty"),
            (1, "Approved"),
            (2, "Pending Approval"),
            (3, "Rejected"),
        ],
        ("mailboxes", "exchangecontactsimportstatus") => {
            &[(0, "NotImported"), (1, "Imported"), (2, "ImportFailed")]
        }
        ("emailserverprofiles", "servertype") => &[
            (0, "Exchange Server"),
            (1, "Other (POP3/SMTP)"),
            (2, "Exchange Server (Hybrid)"),
            (3, "Exchange Online (Hybrid)"),
            (4, "IMAP/SMTP"),
        ],
        (
            "emailserverprofiles",
            "incomingauthenticationprotocol" | "outgoingauthenticationprotocol",
        ) => AUTH,
        ("emailserverprofiles", "incomingcredentialretrieval" | "outgoingcredentialretrieval") => {
            CRED
        }
        ("emailserverprofiles", "exchangeversion") => &[
            (0, "Exchange 2007"),
            (1, "Exchange 2007 SP1"),
            (2, "Exchange 2010"),
            (3, "Exchange 2010 SP1"),
            (4, "Exchange 2010 SP2"),
            (5, "Exchange 2013"),
        ],
        ("emailserverprofiles", "serverauthority") => &[
            (0, "Public (+GCC) login.microsoftonline.com"),
            (
                1,
                "US Government (GCC High and DoD) login.microsoftonline.us",
            ),
            (2, "China (21Vianet) login.chinacloudapi.cn"),
            (3, "Automatic"),
        ],
        // Dataverse's email_statecode and email_statuscode.
        ("emails", "statecode") => &[(0, "Open"), (1, "Completed"), (2, "Canceled")],
        ("emails", "statuscode") => &[
            (1, "Draft"),
            (2, "Completed"),
            (3, "Sent"),
            (4, "Received"),
            (5, "Canceled"),
            (6, "Pending Send"),
            (7, "Sending"),
            (8, "Failed"),
        ],
        // Dataverse's appointment and recurringappointmentmaster StateCode/StatusCode (the
        // status reason is the busy status).
        ("appointments" | "recurringappointmentmasters", "statecode") => &[
            (0, "Open"),
            (1, "Completed"),
            (2, "Canceled"),
            (3, "Scheduled"),
        ],
        ("appointments" | "recurringappointmentmasters", "statuscode") => &[
            (1, "Free"),
            (2, "Tentative"),
            (3, "Completed"),
            (4, "Canceled"),
            (5, "Busy"),
            (6, "Out of Office"),
        ],
        // The pattern's option sets of the recurringappointmentmaster table.
        ("recurringappointmentmasters", "recurrencepatterntype") => {
            &[(0, "Daily"), (1, "Weekly"), (2, "Monthly"), (3, "Yearly")]
        }
        ("recurringappointmentmasters", "patternendtype") => &[
            (1, "No End Date"),
            (2, "Occurrences"),
            (3, "Pattern End Date"),
        ],
        ("recurringappointmentmasters", "instance") => &[
            (1, "First"),
            (2, "Second"),
            (3, "Third"),
            (4, "Fourth"),
            (5, "Last"),
        ],
        ("recurringappointmentmasters", "monthofyear") => &[
            (0, "Invalid Month Of Year"),
            (1, "January"),
            (2, "February"),
            (3, "March"),
            (4, "April"),
            (5, "May"),
            (6, "June"),
            (7, "July"),
            (8, "August"),
            (9, "September"),
            (10, "October"),
            (11, "November"),
            (12, "December"),
        ],
        ("appointments" | "recurringappointmentmasters", "instancetypecode") => &[
            (0, "Not Recurring"),
            (1, "Recurring Master"),
            (2, "Recurring Instance"),
            (3, "Recurring Exception"),
            (4, "Recurring Future Exception"),
        ],
        // Dataverse's task_statecode and task_statuscode.
        ("tasks", "statecode") => &[(0, "Open"), (1, "Completed"), (2, "Canceled")],
        ("tasks", "statuscode") => &[
            (2, "Not Started"),
            (3, "In Progress"),
            (4, "Waiting on someone else"),
            (5, "Completed"),
            (6, "Canceled"),
            (7, "Deferred"),
        ],
        ("contacts", "statuscode") => &[(1, "Active"), (2, "Inactive")],
        ("activityparties", "participationtypemask") => &[
            (1, "Sender"),
            (2, "To Recipient"),
            (3, "CC Recipient"),
            (4, "BCC Recipient"),
            (5, "Required attendee"),
            (6, "Optional attendee"),
            (7, "Organizer"),
            (8, "Regarding"),
            (9, "Owner"),
            (10, "Resource"),
            (11, "Customer"),
            (12, "Chat Participant"),
            (13, "Related"),
        ],
        (_, "statecode") => &[(0, "Active"), (1, "Inactive")],
        _ => return None,
    })
}

/// The `MinValue`..`MaxValue` of an integer column (Dataverse refuses a value outside it), where
/// the simulator knows it: the recurring appointment pattern's counts and days.
pub fn bounds(set: &str, column: &str) -> Option<(i64, i64)> {
    Some(match (set, column) {
        ("recurringappointmentmasters", "interval") => (1, 1000),
        ("recurringappointmentmasters", "daysofweekmask") => (1, 127),
        ("recurringappointmentmasters", "dayofmonth") => (1, 31),
        ("recurringappointmentmasters", "occurrences") => (1, 999),
        ("recurringappointmentmasters", "firstdayofweek") => (0, 6),
        _ => return None,
    })
}

/// The status reason Dataverse gives a row put in state `state` without one (the state's
/// `DefaultStatus` in the table reference), where the simulator knows it.
pub fn default_status(set: &str, state: i64) -> Option<i64> {
    Some(match (set, state) {
        ("appointments" | "recurringappointmentmasters", 0) => 1,
        ("appointments" | "recurringappointmentmasters", 1) => 3,
        ("appointments" | "recurringappointmentmasters", 2) => 4,
        ("appointments" | "recurringappointmentmasters", 3) => 5,
        ("tasks", 0) => 2,
        ("tasks", 1) => 5,
        ("tasks", 2) => 6,
        ("contacts", 0) => 1,
        ("contacts", 1) => 2,
        _ => return None,
    })
}

fn default_of(set: &str, column: &str) -> Value {
    match (set, column) {
        ("mailboxes", "enabledforincomingemail" | "enabledforoutgoingemail" | "enabledforact") => {
            json!(true)
        }
        (
            "mailboxes",
            "testemailconfigurationscheduled"
            | "isemailaddressapprovedbyo365admin"
            | "allowemailconnectortousecredentials"
            | "orgmarkedasprimaryforexchangesync"
            | "isserviceaccount",
        ) => json!(false),
        (
            "mailboxes",
            "incomingemailstatus"
            | "outgoingemailstatus"
            | "actstatus"
            | "acsoutgoingemailstatus"
            | "emailrouteraccessapproval"
            | "testemailconfigurationretrycount"
            | "exchangecontactsimportstatus",
        ) => json!(0),
        ("mailboxes", "incomingemaildeliverymethod" | "outgoingemaildeliverymethod") => json!(2),
        ("mailboxes", "actdeliverymethod") => json!(1),
        (
            "emailserverprofiles",
            "useautodiscover"
            | "incomingusessl"
            | "outgoingusessl"
            | "sendemailalert"
            | "moveundeliveredemails",
        ) => json!(true),
        ("emailserverprofiles", "incominguseimpersonation" | "outgoinguseimpersonation") => {
            json!(false)
        }
        (
            "emailserverprofiles",
            "servertype" | "incomingauthenticationprotocol" | "outgoingauthenticationprotocol",
        ) => json!(0),
        ("emailserverprofiles", "incomingcredentialretrieval" | "outgoingcredentialretrieval") => {
            json!(1)
        }
        // An e-mail is outgoing unless said otherwise (DefaultValue True).
        ("emails", "directioncode") => json!(true),
        ("appointments", "isalldayevent") => json!(false),
        ("appointments", "instancetypecode") => json!(0),
        // A series' flags default to No (DefaultValue 0); its row is the Recurring Master.
        (
            "recurringappointmentmasters",
            "isalldayevent" | "isweekdaypattern" | "isnthmonthly" | "isnthyearly",
        ) => json!(false),
        ("recurringappointmentmasters", "instancetypecode") => json!(1),
        // A task starts Open, Not Started (the state's DefaultStatus).
        ("tasks", "statuscode") => json!(2),
        ("emailserverprofiles", "maxconcurrentconnections") => json!(10),
        ("emailserverprofiles", "minpollingintervalinminutes") => json!(0),
        (_, "statecode") => json!(0),
        (_, "statuscode") => json!(1),
        _ => Value::Null,
    }
}

/// Columns Dataverse accepts on write but never returns (`IsValidForRead` false): they are left
/// out of every answer.
pub fn is_secret(column: &str) -> bool {
    matches!(column, "password" | "incomingpassword" | "outgoingpassword")
}

/// The CSDL type of a column (`Edm.Guid`, `Edm.Int32`, …).
pub fn edm_type(table: &Table, column: &str) -> &'static str {
    if column == table.key
        || column == "seriesid"
        || (column.starts_with('_') && column.ends_with("_value"))
    {
        return "Edm.Guid";
    }
    match column {
        "versionnumber" => return "Edm.Int64",
        "createdon"
        | "modifiedon"
        | "testmailboxaccesscompletedon"
        | "lastsyncerroroccurredon"
        | "postponetestemailconfigurationuntil"
        | "processemailsreceivedafter"
        | "scheduledstart"
        | "scheduledend"
        | "senton"
        | "actualend"
        // UserLocal date-times, the Date Only ones too (only DateOnly behavior is an Edm.Date).
        | "starttime"
        | "endtime"
        | "patternstartdate"
        | "patternenddate"
        | "originalstartdate" => return "Edm.DateTimeOffset",
        "statecode"
        | "statuscode"
        | "testemailconfigurationretrycount"
        | "incomingportnumber"
        | "outgoingportnumber"
        | "maxconcurrentconnections"
        | "minpollingintervalinminutes"
        | "prioritycode"
        | "showasstatus"
        | "percentcomplete"
        | "lastsyncerrorcode"
        | "interval"
        | "daysofweekmask"
        | "dayofmonth"
        | "occurrences"
        | "firstdayofweek"
        | "utcconversiontimezonecode"
        | "timezonecode"
        | "bias" => return "Edm.Int32",
        "isalldayevent"
        | "isdisabled"
        | "directioncode"
        | "isforwardmailbox"
        | "ownerisnotifiedofalerts"
        | "timeoutmailboxconnection" => return "Edm.Boolean",
        _ => {}
    }
    if choices(table.set, column).is_some() {
        return "Edm.Int32";
    }
    match default_of(table.set, column) {
        Value::Bool(_) => "Edm.Boolean",
        Value::Number(_) => "Edm.Int32",
        _ => "Edm.String",
    }
}

/// The `$metadata` CSDL document (OData 4.0 EDMX) of the served tables and `WhoAmI`.
pub fn csdl() -> String {
    let mut x = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices><Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm"><EntityType Name="crmbaseentity" Abstract="true"/>"#,
    );
    for t in TABLES {
        x.push_str(&format!(
            r#"<EntityType Name="{}" BaseType="mscrm.crmbaseentity"><Key><PropertyRef Name="{}"/></Key>"#,
            t.logical, t.key
        ));
        for c in t.columns {
            x.push_str(&format!(
                r#"<Property Name="{c}" Type="{}"/>"#,
                edm_type(t, c)
            ));
        }
        for n in COLLECTIONS.iter().filter(|n| n.set == t.set) {
            x.push_str(&format!(
                r#"<NavigationProperty Name="{}" Type="Collection(mscrm.{})"/>"#,
                n.nav, n.logical
            ));
        }
        x.push_str("</EntityType>");
    }
    for n in COLLECTIONS {
        x.push_str(&format!(
            r#"<EntityType Name="{}"><Key><PropertyRef Name="{}"/></Key>"#,
            n.logical, n.key
        ));
        for c in n.columns {
            let ty = if *c == n.key {
                "Edm.Guid"
            } else if choices(n.related_set, c).is_some() {
                "Edm.Int32"
            } else {
                "Edm.String"
            };
            x.push_str(&format!(r#"<Property Name="{c}" Type="{ty}"/>"#));
        }
        x.push_str("</EntityType>");
    }
    x.push_str(r#"<ComplexType Name="WhoAmIResponse"><Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false"/><Property Name="UserId" Type="Edm.Guid" Nullable="false"/><Property Name="OrganizationId" Type="Edm.Guid" Nullable="false"/></ComplexType>"#);
    x.push_str(r#"<Function Name="WhoAmI"><ReturnType Type="mscrm.WhoAmIResponse" Nullable="false"/></Function>"#);
    x.push_str(r#"<EntityContainer Name="System">"#);
    for t in TABLES {
        x.push_str(&format!(
            r#"<EntitySet Name="{}" EntityType="Microsoft.Dynamics.CRM.{}"/>"#,
            t.set, t.logical
        ));
    }
    x.push_str(r#"<FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI"/></EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"#);
    x
}

/// Computed columns (`fullname`), and password columns never read back.
pub fn derive(table: &Table, o: &mut Map<String, Value>) {
    if table.set == "contacts" || table.set == "systemusers" {
        let f = o
            .get("firstname")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let l = o
            .get("lastname")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        o.insert("fullname".into(), json!(format!("{f} {l}").trim()));
    }
    let _ = COMMON;
}
