//! Default shapes of Graph objects (property names as in the v1.0 metadata).

use serde_json::{json, Map, Value};

/// Properties Graph returns for a user when no `$select` is given.
pub const DEFAULT_USER_PROPERTIES: [&str; 11] = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

fn merge(defaults: Value, given: &Value) -> Value {
    let mut out = defaults.as_object().cloned().unwrap_or_default();
    if let Some(g) = given.as_object() {
        for (k, v) in g {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn id_or_new(given: &Value) -> String {
    given
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Outlook-style opaque id.
pub fn outlook_id() -> String {
    use base64::Engine;
    let raw = uuid::Uuid::new_v4();
    format!(
        "AAMkA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_bytes())
    )
}

fn change_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..12])
}

/// A full user object: `given` plus defaults for the properties it lacks.
pub fn default_user(given: &Value, domain: &str) -> Value {
    let id = id_or_new(given);
    let gn = given
        .get("givenName")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let sn = given.get("surname").and_then(|v| v.as_str()).unwrap_or("");
    let upn = given
        .get("userPrincipalName")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}@{domain}", &id[..8]));
    let display = if gn.is_empty() && sn.is_empty() {
        upn.split('@').next().unwrap_or("").to_string()
    } else {
        format!("{gn} {sn}").trim().to_string()
    };
    let now = crate::util::now_iso();
    let defaults = json!({
        "id": id,
        "userPrincipalName": upn,
        "mail": upn,
        "displayName": display,
        "givenName": if gn.is_empty() { Value::Null } else { json!(gn) },
        "surname": if sn.is_empty() { Value::Null } else { json!(sn) },
        "jobTitle": null,
        "mobilePhone": null,
        "businessPhones": [],
        "officeLocation": null,
        "preferredLanguage": null,
        "department": null,
        "companyName": null,
        "accountEnabled": true,
        "assignedLicenses": [],
        "assignedPlans": [],
        "otherMails": [],
        "proxyAddresses": [format!("SMTP:{upn}")],
        "mailNickname": upn.split('@').next().unwrap_or(""),
        "userType": "Member",
        "usageLocation": "US",
        "city": null,
        "country": null,
        "state": null,
        "streetAddress": null,
        "postalCode": null,
        "faxNumber": null,
        "employeeId": null,
        "createdDateTime": now,
        "onPremisesSyncEnabled": null,
        "onPremisesImmutableId": null,
    });
    merge(defaults, given)
}

/// A full group object.
pub fn default_group(given: &Value) -> Value {
    let now = crate::util::now_iso();
    let id = id_or_new(given);
    // The properties Graph returns for a group without `$select`.
    let defaults = json!({
        "id": id,
        "deletedDateTime": null,
        "classification": null,
        "createdDateTime": now,
        "creationOptions": [],
        "description": null,
        "displayName": "",
        "expirationDateTime": null,
        "groupTypes": [],
        "isAssignableToRole": null,
        "mail": null,
        "mailEnabled": false,
        "mailNickname": "",
        "membershipRule": null,
        "membershipRuleProcessingState": null,
        "onPremisesDomainName": null,
        "onPremisesLastSyncDateTime": null,
        "onPremisesNetBiosName": null,
        "onPremisesSamAccountName": null,
        "onPremisesSecurityIdentifier": null,
        "onPremisesSyncEnabled": null,
        "preferredDataLocation": null,
        "preferredLanguage": null,
        "proxyAddresses": [],
        "renewedDateTime": now,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": true,
        "securityIdentifier": format!("S-1-12-1-{}", uuid::Uuid::new_v4().as_u128() as u32),
        "theme": null,
        "visibility": null,
        "onPremisesProvisioningErrors": [],
        "serviceProvisioningErrors": [],
    });
    merge(defaults, given)
}

/// A full subscribedSku object.
pub fn default_sku(given: &Value) -> Value {
    let sku = given
        .get("skuId")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let defaults = json!({
        "id": format!("{}_{}", uuid::Uuid::new_v4(), sku),
        "accountId": uuid::Uuid::new_v4().to_string(),
        "accountName": "contoso",
        "appliesTo": "User",
        "capabilityStatus": "Enabled",
        "consumedUnits": 0,
        "skuId": sku,
        "skuPartNumber": "ENTERPRISEPACK",
        "subscriptionIds": [],
        "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": [
            {"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "servicePlanName": "EXCHANGE_S_ENTERPRISE", "provisioningStatus": "Success", "appliesTo": "User"}
        ],
    });
    merge(defaults, given)
}

fn date_time_tz(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Object(o)) => {
            let mut o = o.clone();
            o.entry("timeZone").or_insert(json!("UTC"));
            Value::Object(o)
        }
        _ => Value::Null,
    }
}

fn parse_local(s: &str) -> Option<chrono::NaiveDateTime> {
    let s = s.trim_end_matches('Z');
    let s = s.split('.').next().unwrap_or(s);
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
}

/// A `dateTimeTimeZone` converted to UTC (Graph stores and by default returns UTC).
pub fn to_utc_dttz(v: &Value) -> Value {
    let zone = v.get("timeZone").and_then(|z| z.as_str()).unwrap_or("UTC");
    match v
        .get("dateTime")
        .and_then(|d| d.as_str())
        .and_then(parse_local)
    {
        Some(local) => json!({
            "dateTime": format!("{}.0000000", super::tz::to_utc(local, zone).format("%Y-%m-%dT%H:%M:%S")),
            "timeZone": "UTC"
        }),
        None => v.clone(),
    }
}

/// How an event keeps a `dateTimeTimeZone`: in UTC, except all-day values, which are floating
/// dates (midnight, whatever the zone) and keep the zone they were written in.
pub fn stored_dttz(v: &Value, all_day: bool) -> Value {
    if !all_day {
        return to_utc_dttz(v);
    }
    match v
        .get("dateTime")
        .and_then(|d| d.as_str())
        .and_then(parse_local)
    {
        Some(local) => json!({
            "dateTime": format!("{}.0000000", local.format("%Y-%m-%dT%H:%M:%S")),
            "timeZone": v.get("timeZone").cloned().unwrap_or(json!("UTC")),
        }),
        None => v.clone(),
    }
}

/// A UTC `dateTimeTimeZone` presented in `zone` (for `Prefer: outlook.timezone`).
pub fn present_dttz(v: &Value, zone: &str) -> Value {
    match v
        .get("dateTime")
        .and_then(|d| d.as_str())
        .and_then(parse_local)
    {
        Some(utc) => json!({
            "dateTime": format!("{}.0000000", super::tz::from_utc(utc.and_utc(), zone).format("%Y-%m-%dT%H:%M:%S")),
            "timeZone": zone
        }),
        None => v.clone(),
    }
}

/// A new event object (server-set properties filled in).
pub fn new_event(given: &Value, owner: &str, domain: &str) -> Value {
    let now = crate::util::now_iso();
    let body_content = given
        .pointer("/body/content")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let start = date_time_tz(given.get("start"));
    let end = date_time_tz(given.get("end"));
    let tz = start
        .get("timeZone")
        .cloned()
        .unwrap_or_else(|| json!("UTC"));
    let is_recurring = given.get("recurrence").is_some_and(|r| !r.is_null());
    let defaults = json!({
        "@odata.etag": format!("W/\"{}\"", change_key()),
        "id": outlook_id(),
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": change_key(),
        "categories": [],
        "transactionId": null,
        "originalStartTimeZone": tz,
        "originalEndTimeZone": tz,
        "iCalUId": format!("040000008200E00074C5B7101A82E008{}", uuid::Uuid::new_v4().simple()),
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": true,
        "hasAttachments": false,
        "subject": "",
        "bodyPreview": body_content.chars().take(255).collect::<String>(),
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": false,
        "isCancelled": false,
        "isOrganizer": true,
        "responseRequested": true,
        "seriesMasterId": null,
        "showAs": "busy",
        "type": if is_recurring { "seriesMaster" } else { "singleInstance" },
        "webLink": format!("https://outlook.office365.com/owa/?itemid=x&exvsurl=1&path=/calendar/item"),
        "onlineMeetingUrl": null,
        "isOnlineMeeting": false,
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": true,
        "isDraft": false,
        "hideAttendees": false,
        "recurrence": null,
        "onlineMeeting": null,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "html", "content": body_content},
        "location": {"displayName": "", "locationType": "default", "uniqueId": "", "uniqueIdType": "unknown", "address": {}, "coordinates": {}},
        "locations": [],
        "attendees": [],
        "organizer": {"emailAddress": {"name": owner, "address": format!("{owner}@{domain}")}},
    });
    let mut e = merge(defaults, given);
    if let Some(loc) = e.get_mut("location").and_then(|l| l.as_object_mut()) {
        let name = loc.get("displayName").cloned().unwrap_or(json!(""));
        loc.entry("locationType").or_insert(json!("default"));
        loc.entry("uniqueId").or_insert(name);
        loc.entry("uniqueIdType").or_insert(json!("private"));
    }
    let all_day = e["isAllDay"].as_bool() == Some(true);
    e["start"] = stored_dttz(&start, all_day);
    e["end"] = stored_dttz(&end, all_day);
    normalize_event(&mut e);
    e
}

/// What Exchange fills in on every save of an event: each attendee's `type` (default
/// `required`) and response `status` (`none` until the attendee answers), and for an online
/// meeting the provider (`teamsForBusiness`, the calendar's default) and the `onlineMeeting`
/// details with the Teams `joinUrl`; an event that is no online meeting has
/// `onlineMeeting: null`.
pub fn normalize_event(e: &mut Value) {
    if let Some(atts) = e.get_mut("attendees").and_then(|a| a.as_array_mut()) {
        for a in atts.iter_mut().filter(|a| a.is_object()) {
            if a.get("type").is_none_or(|t| t.is_null()) {
                a["type"] = json!("required");
            }
            if a.get("status").is_none_or(|t| t.is_null()) {
                a["status"] = json!({"response": "none", "time": "0001-01-01T00:00:00Z"});
            }
        }
    }
    let online = e.get("isOnlineMeeting").and_then(|v| v.as_bool()) == Some(true);
    if !online {
        e["onlineMeeting"] = Value::Null;
        return;
    }
    if e.get("onlineMeetingProvider")
        .and_then(|p| p.as_str())
        .is_none_or(|p| p == "unknown")
    {
        e["onlineMeetingProvider"] = json!("teamsForBusiness");
    }
    if e.get("onlineMeeting")
        .is_none_or(|m| m.get("joinUrl").is_none())
    {
        let thread = uuid::Uuid::new_v4().simple().to_string();
        let conf: u64 = u64::from(uuid::Uuid::new_v4().as_u128() as u32) % 1_000_000_000;
        e["onlineMeeting"] = json!({
            "joinUrl": format!("https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0?context=%7b%22Tid%22%3a%22sim%22%7d"),
            "conferenceId": conf.to_string(),
            "tollNumber": "+1 425-555-0100",
            "tollFreeNumbers": [],
            "phones": [],
            "quickDial": null,
        });
    }
}

/// A new contact object.
pub fn new_contact(given: &Value) -> Value {
    let now = crate::util::now_iso();
    let gn = given
        .get("givenName")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let sn = given.get("surname").and_then(|v| v.as_str()).unwrap_or("");
    let display = format!("{gn} {sn}").trim().to_string();
    let defaults = json!({
        "@odata.etag": format!("W/\"{}\"", change_key()),
        "id": outlook_id(),
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": change_key(),
        "categories": [],
        "parentFolderId": "AAMkAGI2AAEOAAA=",
        "birthday": null,
        "fileAs": if sn.is_empty() { display.clone() } else { format!("{sn}, {gn}") },
        "displayName": display,
        "givenName": gn,
        "initials": null,
        "middleName": null,
        "nickName": null,
        "surname": sn,
        "title": null,
        "yomiGivenName": null,
        "yomiSurname": null,
        "yomiCompanyName": null,
        "generation": null,
        "imAddresses": [],
        "jobTitle": null,
        "companyName": null,
        "department": null,
        "officeLocation": null,
        "profession": null,
        "businessHomePage": null,
        "assistantName": null,
        "manager": null,
        "homePhones": [],
        "mobilePhone": null,
        "businessPhones": [],
        "spouseName": null,
        "personalNotes": "",
        "children": [],
        "emailAddresses": [],
        "homeAddress": {},
        "businessAddress": {},
        "otherAddress": {},
    });
    merge(defaults, given)
}

/// A new To Do list.
pub fn new_todo_list(given: &Value) -> Value {
    let defaults = json!({
        "@odata.etag": format!("W/\"{}\"", change_key()),
        "id": outlook_id(),
        "displayName": "Tasks",
        "isOwner": true,
        "isShared": false,
        "wellknownListName": "none",
    });
    merge(defaults, given)
}

/// A new To Do task; linked resources created with it get their ids.
pub fn new_todo_task(given: &Value) -> Value {
    let mut given = given.clone();
    for l in given
        .get_mut("linkedResources")
        .and_then(|l| l.as_array_mut())
        .into_iter()
        .flatten()
    {
        l["id"] = json!(uuid::Uuid::new_v4().to_string());
    }
    let given = &given;
    let now = crate::util::now_iso();
    let defaults = json!({
        "@odata.etag": format!("W/\"{}\"", change_key()),
        "id": outlook_id(),
        "importance": "normal",
        "isReminderOn": false,
        "status": "notStarted",
        "title": "",
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "bodyLastModifiedDateTime": now,
        "hasAttachments": false,
        "categories": [],
        "body": {"content": "", "contentType": "text"},
    });
    merge(defaults, given)
}

/// Adds or replaces extended properties by `id`, as a PATCH of them does.
fn merge_properties(o: &mut Map<String, Value>, given: &Value) {
    let mut props = o
        .get("singleValueExtendedProperties")
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    for p in given.as_array().into_iter().flatten() {
        let id = p["id"].as_str().unwrap_or_default();
        props.retain(|x| !x["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)));
        props.push(p.clone());
    }
    o.insert("singleValueExtendedProperties".into(), Value::Array(props));
}

/// Applies a PATCH body and refreshes change tracking properties.
pub fn patch(obj: &mut Value, changes: &Map<String, Value>) {
    if let Some(o) = obj.as_object_mut() {
        for (k, v) in changes {
            if k == "id" {
                continue;
            }
            if k == "singleValueExtendedProperties" {
                merge_properties(o, v);
                continue;
            }
            let v = if (k == "start" || k == "end") && o.contains_key("originalStartTimeZone") {
                let all_day = changes
                    .get("isAllDay")
                    .or(o.get("isAllDay"))
                    .and_then(|a| a.as_bool())
                    == Some(true);
                stored_dttz(v, all_day)
            } else {
                v.clone()
            };
            o.insert(k.clone(), v);
        }
        let is_event = o.contains_key("originalStartTimeZone");
        let now = crate::util::now_iso();
        if o.contains_key("lastModifiedDateTime") {
            o.insert("lastModifiedDateTime".into(), json!(now));
        }
        // Outlook's etag is the weak form of the change key.
        let ck = change_key();
        if o.contains_key("changeKey") {
            o.insert("changeKey".into(), json!(ck));
        }
        if o.contains_key("@odata.etag") {
            o.insert("@odata.etag".into(), json!(format!("W/\"{ck}\"")));
        }
        if is_event {
            normalize_event(obj);
        }
    }
}

/// Well-known mail folder names the simulator keeps messages in (`parentFolderId`).
pub const MAIL_FOLDERS: [&str; 7] = [
    "archive",
    "deleteditems",
    "drafts",
    "inbox",
    "junkemail",
    "outbox",
    "sentitems",
];

/// The well-known folder `name` names (any case).
pub fn mail_folder(name: &str) -> Option<&'static str> {
    MAIL_FOLDERS
        .iter()
        .find(|f| f.eq_ignore_ascii_case(name))
        .copied()
}

/// The `message` of a `sendMail` request as it leaves: sent now, with one
/// `internetMessageId` that the sent copy and every delivered copy share.
pub fn outgoing(msg: &Value) -> Value {
    let mut m = msg.clone();
    m["sentDateTime"] = json!(crate::util::now_iso());
    if m.get("internetMessageId")
        .and_then(|v| v.as_str())
        .is_none()
    {
        m["internetMessageId"] = json!(format!("<{}@sim.local>", uuid::Uuid::new_v4().simple()));
    }
    m
}

/// A seeded message: `parentFolderId` a well-known folder name (default `inbox`), unread
/// unless `isRead` says otherwise; everything missing gets defaults.
pub fn seed_message(given: &Value) -> Value {
    let folder = given["parentFolderId"]
        .as_str()
        .and_then(mail_folder)
        .unwrap_or("inbox");
    let is_read = given["isRead"].as_bool().unwrap_or(false);
    new_message(given, &given["from"], folder, is_read)
}

/// The copy a `move` makes of `msg` in `folder`: a new id and change key.
pub fn moved_message(msg: &Value, folder: &str) -> Value {
    let mut m = msg.clone();
    let ck = change_key();
    m["id"] = json!(outlook_id());
    m["parentFolderId"] = json!(folder);
    m["changeKey"] = json!(ck);
    m["@odata.etag"] = json!(format!("W/\"{ck}\""));
    m["lastModifiedDateTime"] = json!(crate::util::now_iso());
    m
}

/// A mail message as stored after `sendMail` (`folder` = `inbox` or `sentitems`).
pub fn new_message(msg: &Value, from: &Value, folder: &str, is_read: bool) -> Value {
    let now = crate::util::now_iso();
    let content = msg
        .pointer("/body/content")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let ck = change_key();
    let defaults = json!({
        "@odata.etag": format!("W/\"{ck}\""),
        "id": outlook_id(),
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": ck,
        "categories": [],
        "receivedDateTime": now,
        "sentDateTime": now,
        "hasAttachments": false,
        "internetMessageId": format!("<{}@sim.local>", uuid::Uuid::new_v4().simple()),
        "subject": "",
        "bodyPreview": content.chars().take(255).collect::<String>(),
        "importance": "normal",
        "parentFolderId": folder,
        "conversationId": outlook_id(),
        "isDeliveryReceiptRequested": false,
        "isReadReceiptRequested": false,
        "isRead": is_read,
        "isDraft": false,
        "webLink": "https://outlook.office365.com/owa/?ItemID=x",
        "inferenceClassification": "focused",
        "body": {"contentType": "text", "content": content},
        "sender": from,
        "from": from,
        "toRecipients": [],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": {"flagStatus": "notFlagged"},
    });
    let mut m = merge(defaults, msg);
    m["parentFolderId"] = json!(folder);
    m["isRead"] = json!(is_read);
    // Graph answers the body type in lower case whatever the client sent.
    if let Some(t) = m.pointer("/body/contentType").and_then(|t| t.as_str()) {
        m["body"]["contentType"] = json!(t.to_ascii_lowercase());
    }
    m
}

/// Id of the (only) calendar of every simulated mailbox.
pub const DEFAULT_CALENDAR_ID: &str = "AAMkAGI2AAEGAAA=";
