//! EWS operations: FindItem, GetItem, CreateItem, UpdateItem, DeleteItem, MoveItem,
//! SyncFolderItems, ResolveNames, CreateFolder, FindFolder, GetFolder, UpdateFolder.

use axum::response::Response;
use base64::Engine;

use super::xml::{escape, Elem, M, T};
use super::{
    new_change_key, new_id, order, recur, soap_fault, EwsAccount, EwsItem, EwsState, Folder,
};
use crate::store::Store;
use crate::util::lock;

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Adds the properties Exchange sets itself.
pub fn with_server_props(
    kind: &str,
    mut props: Vec<Elem>,
    owner: Option<&EwsAccount>,
) -> Vec<Elem> {
    let has = |p: &Vec<Elem>, n: &str| p.iter().any(|e| e.name == n);
    let class = match kind {
        "CalendarItem" => "IPM.Appointment",
        "Contact" => "IPM.Contact",
        "Task" => "IPM.Task",
        _ => "IPM.Note",
    };
    if !has(&props, "ItemClass") {
        props.push(Elem::t("ItemClass", class));
    }
    normalise(kind, &mut props);
    props.retain(|p| p.name != "DateTimeCreated" && p.name != "LastModifiedTime");
    props.push(Elem::t("DateTimeCreated", &now()));
    props.push(Elem::t("LastModifiedTime", &now()));
    if !has(&props, "HasAttachments") {
        props.push(Elem::t("HasAttachments", "false"));
    }
    let mailbox = |a: &EwsAccount| {
        Elem::t_with(
            "Mailbox",
            vec![
                Elem::t(
                    "Name",
                    if a.display_name.is_empty() {
                        &a.email
                    } else {
                        &a.display_name
                    },
                ),
                Elem::t("EmailAddress", &a.email),
                Elem::t("RoutingType", "SMTP"),
            ],
        )
    };
    match kind {
        "CalendarItem" => {
            let recurring = has(&props, "Recurrence");
            if !has(&props, "IsRecurring") {
                props.push(Elem::t(
                    "IsRecurring",
                    if recurring { "true" } else { "false" },
                ));
            }
            if !has(&props, "CalendarItemType") {
                props.push(Elem::t(
                    "CalendarItemType",
                    if recurring {
                        "RecurringMaster"
                    } else {
                        "Single"
                    },
                ));
            }
            if !has(&props, "LegacyFreeBusyStatus") {
                props.push(Elem::t("LegacyFreeBusyStatus", "Busy"));
            }
            if !has(&props, "IsMeeting") {
                let meeting = has(&props, "RequiredAttendees") || has(&props, "OptionalAttendees");
                props.push(Elem::t("IsMeeting", if meeting { "true" } else { "false" }));
            }
            if let (false, Some(a)) = (has(&props, "Organizer"), owner) {
                props.push(Elem::t_with("Organizer", vec![mailbox(a)]));
            }
        }
        "Contact" if !has(&props, "DisplayName") => {
            let g = props
                .iter()
                .find(|p| p.name == "GivenName")
                .map(|p| p.text().to_string())
                .unwrap_or_default();
            let s = props
                .iter()
                .find(|p| p.name == "Surname")
                .map(|p| p.text().to_string())
                .unwrap_or_default();
            props.push(Elem::t("DisplayName", format!("{g} {s}").trim()));
        }
        "Task" => {
            if !has(&props, "Status") {
                props.push(Elem::t("Status", "NotStarted"));
            }
            if !has(&props, "PercentComplete") {
                props.push(Elem::t("PercentComplete", "0"));
            }
        }
        "Message" => {
            if !has(&props, "IsRead") {
                props.push(Elem::t("IsRead", "true"));
            }
            // Every message in a store has its delivery (or save) time.
            if !has(&props, "DateTimeReceived") {
                props.push(Elem::t("DateTimeReceived", &now()));
            }
            if let (false, Some(a)) = (has(&props, "From"), owner) {
                props.push(Elem::t_with("From", vec![mailbox(a)]));
            }
        }
        _ => {}
    }
    props
}

/// Stamps a message as transport does when it is sent: `DateTimeSent` now and an
/// `InternetMessageId` (`<random@domain of the sender>`) unless the client set one.
pub fn as_sent(message: &mut Elem, sender: &str) {
    let has = |m: &Elem, n: &str| m.children.iter().any(|e| e.name == n);
    message.children.retain(|c| c.name != "DateTimeSent");
    message.children.push(Elem::t("DateTimeSent", &now()));
    if !has(message, "InternetMessageId") {
        let domain = sender.split_once('@').map_or("localhost", |(_, d)| d);
        let id = format!("<{}@{domain}>", uuid::Uuid::new_v4().simple());
        message.children.push(Elem::t("InternetMessageId", &id));
    }
}

/// A message put straight into a mailbox (seeded) as if it had been received: sent when it
/// was received (`DateTimeReceived`, or now) with a message id, unless it says otherwise.
pub fn as_received(message: &mut Elem, mailbox: &str) {
    if message.name != "Message" {
        return;
    }
    let stamp = |name: &str| {
        message
            .children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text().to_string())
    };
    let sent = stamp("DateTimeSent").or_else(|| stamp("DateTimeReceived"));
    let sender = message
        .path(&["From", "Mailbox", "EmailAddress"])
        .map(|e| e.text().to_string())
        .unwrap_or_else(|| mailbox.to_string());
    as_sent(message, &sender);
    if let (Some(at), Some(e)) = (
        sent,
        message
            .children
            .iter_mut()
            .find(|c| c.name == "DateTimeSent"),
    ) {
        e.text = at;
    }
}

fn kind_order(kind: &str) -> &'static [&'static str] {
    match kind {
        "Message" => order::MESSAGE,
        "CalendarItem" => order::CALENDAR,
        "Contact" => order::CONTACT,
        "Task" => order::TASK,
        _ => &[],
    }
}

fn position(kind: &str, name: &str) -> Option<usize> {
    order::ITEM.iter().position(|n| *n == name).or_else(|| {
        kind_order(kind)
            .iter()
            .position(|n| *n == name)
            .map(|p| p + 1000)
    })
}

/// Requested shape of returned items.
struct Shape {
    id_only: bool,
    additional: Vec<String>,
    extended: Vec<Elem>,
    mime: bool,
}

fn field_name(uri: &str) -> String {
    let local = uri.split(':').nth(1).unwrap_or(uri);
    match local {
        "EmailAddress" => "EmailAddresses".into(),
        "PhoneNumber" => "PhoneNumbers".into(),
        "PhysicalAddress" => "PhysicalAddresses".into(),
        "ImAddress" => "ImAddresses".into(),
        other => other.to_string(),
    }
}

fn parse_shape(op: &Elem, name: &str) -> Shape {
    let s = op.child(name);
    let base = s
        .and_then(|s| s.child("BaseShape"))
        .map(|b| b.text().to_string())
        .unwrap_or_else(|| "Default".into());
    let additional: Vec<String> = s
        .and_then(|s| s.child("AdditionalProperties"))
        .map(|a| {
            a.children
                .iter()
                .filter_map(|f| f.attr("FieldURI").map(field_name))
                .collect()
        })
        .unwrap_or_default();
    let extended = s
        .and_then(|s| s.child("AdditionalProperties"))
        .map(|a| a.children_named("ExtendedFieldURI").cloned().collect())
        .unwrap_or_default();
    let mime = s
        .and_then(|s| s.child("IncludeMimeContent"))
        .is_some_and(|m| m.text() == "true")
        || additional.iter().any(|a: &String| a == "MimeContent");
    Shape {
        id_only: base == "IdOnly",
        additional,
        extended,
        mime,
    }
}

fn item_id(i: &EwsItem) -> String {
    format!(
        r#"<t:ItemId Id="{}" ChangeKey="{}" />"#,
        escape(&i.id),
        escape(&i.change_key)
    )
}

/// Serialises an item according to a shape (properties in schema order).
fn item_xml(i: &EwsItem, shape: &Shape, find: bool) -> String {
    let mut out = format!("<t:{}>", i.kind);
    // MimeContent comes first in ItemType, before ItemId.
    if shape.mime && !find {
        mime_content(i).write(&mut out);
    }
    out.push_str(&item_id(i));
    out.push_str(&format!(
        r#"<t:ParentFolderId Id="{}" ChangeKey="AQAAAA==" />"#,
        escape(&i.folder)
    ));
    let mut props: Vec<&Elem> = i
        .props
        .iter()
        .filter(|p| position(&i.kind, &p.name).is_some())
        .filter(|p| p.name != "MimeContent")
        .filter(|p| {
            if p.name == "ExtendedProperty" {
                shape.extended.iter().any(|u| ext_prop_matches(p, u))
            } else {
                !shape.id_only || shape.additional.contains(&p.name)
            }
        })
        .filter(|p| !(find && matches!(p.name.as_str(), "Body" | "Attachments")))
        .collect();
    props.sort_by_key(|p| position(&i.kind, &p.name));
    for p in props {
        p.write(&mut out);
    }
    out.push_str(&format!("</t:{}>", i.kind));
    out
}

fn id_only_item(i: &EwsItem) -> String {
    format!("<t:{}>{}</t:{}>", i.kind, item_id(i), i.kind)
}

fn ok_msg(op: &str, inner: &str) -> String {
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{op}ResponseMessage>"#
    )
}

fn err_msg(op: &str, code: &str, text: &str, inner: &str) -> String {
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{inner}</m:{op}ResponseMessage>"#,
        escape(text)
    )
}

fn warn_msg(op: &str, code: &str, text: &str, inner: &str) -> String {
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Warning"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{inner}</m:{op}ResponseMessage>"#,
        escape(text)
    )
}

fn wrap(op: &str, msgs: &[String]) -> String {
    format!(
        r#"<m:{op}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>{}</m:ResponseMessages></m:{op}Response>"#,
        msgs.concat()
    )
}

const NOT_FOUND: &str = "The specified object was not found in the store.";

/// Resolves a `FolderId`/`DistinguishedFolderId` element; Err((code, text)).
fn resolve_folder(
    s: &EwsState,
    mailbox: &str,
    el: &Elem,
) -> Result<Folder, (&'static str, String)> {
    let id = el.attr("Id").unwrap_or("");
    let mb = el
        .path(&["Mailbox", "EmailAddress"])
        .map(|e| e.text().to_ascii_lowercase())
        .unwrap_or_else(|| mailbox.to_string());
    if el.name == "DistinguishedFolderId"
        && id != "publicfoldersroot"
        && !s
            .accounts
            .iter()
            .any(|a| a.email.eq_ignore_ascii_case(&mb) && a.has_mailbox)
    {
        return Err((
            "ErrorNonExistentMailbox",
            "The SMTP address has no mailbox associated with it.".into(),
        ));
    }
    let f = s.folder(&mb, id).cloned().ok_or((
        "ErrorFolderNotFound",
        "The specified folder could not be found in the store.".to_string(),
    ))?;
    match &f.mailbox {
        Some(owner) if owner != mailbox => Err((
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.".into(),
        )),
        _ => Ok(f),
    }
}

fn folder_ids(op: &Elem, container: &str) -> Vec<Elem> {
    op.child(container)
        .map(|c| c.children.clone())
        .unwrap_or_default()
}

fn find_item<'a>(s: &'a EwsState, mailbox: &str, id: &str) -> Option<&'a EwsItem> {
    s.items
        .iter()
        .find(|i| i.id == id && !i.deleted)
        .filter(|i| {
            s.folders
                .iter()
                .find(|f| f.id == i.folder)
                .is_some_and(|f| f.mailbox.is_none() || f.mailbox.as_deref() == Some(mailbox))
        })
}

/// Runs one operation; Ok(body fragment) or a complete fault response.
/// `version` is the requested server version (`Exchange2007`… `Exchange2016`).
pub fn dispatch(
    store: &Store,
    mailbox: &str,
    op: &Elem,
    version: &str,
) -> Result<String, Response> {
    let mut s = lock(&store.ews);
    match op.name.as_str() {
        "GetItem" => Ok(get_item(&s, mailbox, op, version)),
        "FindItem" => Ok(find_items(&s, mailbox, op)),
        "CreateItem" => Ok(create_item(&mut s, mailbox, op)),
        "UpdateItem" => Ok(update_item(&mut s, mailbox, op)),
        "DeleteItem" => Ok(delete_item(&mut s, mailbox, op)),
        "MoveItem" => Ok(move_item(&mut s, mailbox, op)),
        "SyncFolderItems" => sync_folder_items(&s, mailbox, op),
        "ResolveNames" => Ok(resolve_names(&s, op)),
        "CreateFolder" => Ok(create_folder(&mut s, mailbox, op)),
        "FindFolder" => Ok(find_folder(&s, mailbox, op)),
        "GetFolder" => Ok(get_folder(&s, mailbox, op)),
        "UpdateFolder" => Ok(update_folder(&mut s, mailbox, op)),
        "ConvertId" => Ok(convert_id(&s, mailbox, op)),
        other => Err(soap_fault(
            "ErrorInvalidRequest",
            &format!(
                "The request is invalid: operation '{other}' is not supported by this server."
            ),
            None,
        )),
    }
}

fn get_item(s: &EwsState, mailbox: &str, op: &Elem, version: &str) -> String {
    let shape = parse_shape(op, "ItemShape");
    // Exchange 2007 has no MIME conversion of contacts and tasks; later versions do.
    let no_mime = version.starts_with("Exchange2007");
    let msgs: Vec<String> = folder_ids(op, "ItemIds")
        .iter()
        .map(|idel| {
            let found = resolve_ref(s, mailbox, idel).and_then(|r| materialize(s, mailbox, &r));
            match found {
                Some(i)
                    if shape.mime && no_mime && matches!(i.kind.as_str(), "Contact" | "Task") =>
                {
                    err_msg(
                        "GetItem",
                        "ErrorUnsupportedMimeConversion",
                        "Mime conversion is not supported for this item type.",
                        "<m:Items />",
                    )
                }
                Some(i) => ok_msg(
                    "GetItem",
                    &format!("<m:Items>{}</m:Items>", item_xml(&i, &shape, false)),
                ),
                None => err_msg("GetItem", "ErrorItemNotFound", NOT_FOUND, "<m:Items />"),
            }
        })
        .collect();
    wrap("GetItem", &msgs)
}

/// An addressed item: a stored item, or one occurrence (1-based index) of a recurring master.
#[derive(Debug, Clone, PartialEq)]
enum Ref {
    Item(String),
    Occ(String, u32),
}

/// Resolves `ItemId` (stored items and occurrence ids `{master}_OCC{yyyymmdd}`),
/// `OccurrenceItemId` and `RecurringMasterItemId`.
fn resolve_ref(s: &EwsState, mailbox: &str, el: &Elem) -> Option<Ref> {
    match el.name.as_str() {
        "OccurrenceItemId" => {
            let master = find_item(s, mailbox, el.attr("RecurringMasterId")?)?;
            let index: u32 = el.attr("InstanceIndex")?.trim().parse().ok()?;
            let live = recur::expand(master, None)
                .iter()
                .any(|o| o.index == index && !master.deleted_occurrences.contains(&index));
            live.then(|| Ref::Occ(master.id.clone(), index))
        }
        "RecurringMasterItemId" => {
            let occ = Elem::t("ItemId", "").with_attr("Id", el.attr("OccurrenceId")?);
            match resolve_ref(s, mailbox, &occ)? {
                Ref::Occ(m, _) => Some(Ref::Item(m)),
                Ref::Item(id) => Some(Ref::Item(id)),
            }
        }
        _ => {
            let id = el.attr("Id")?;
            if find_item(s, mailbox, id).is_some() {
                return Some(Ref::Item(id.to_string()));
            }
            let (master, date) = id.rsplit_once("_OCC")?;
            let m = find_item(s, mailbox, master)?;
            let date = chrono::NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
            let until = date.and_hms_opt(0, 0, 0)?.and_utc() + chrono::Duration::days(2);
            recur::expand(m, Some(until))
                .into_iter()
                .find(|o| o.local_date == date && !m.deleted_occurrences.contains(&o.index))
                .map(|o| Ref::Occ(m.id.clone(), o.index))
        }
    }
}

/// The item as GetItem shows it: a master with its occurrence information, or an occurrence.
fn materialize(s: &EwsState, mailbox: &str, r: &Ref) -> Option<EwsItem> {
    match r {
        Ref::Item(id) => find_item(s, mailbox, id).map(decorate),
        Ref::Occ(master, index) => {
            let m = find_item(s, mailbox, master)?;
            recur::expand(m, None)
                .into_iter()
                .find(|o| o.index == *index)
                .map(|o| occurrence(m, &o))
        }
    }
}

fn occurrence_info(name: &str, o: &EwsItem, original: chrono::DateTime<chrono::Utc>) -> Elem {
    let mut children = vec![Elem::t("ItemId", "")
        .with_attr("Id", &o.id)
        .with_attr("ChangeKey", &o.change_key)];
    for p in ["Start", "End"] {
        if let Some(e) = o.prop(p) {
            children.push(e.clone());
        }
    }
    children.push(Elem::t("OriginalStart", &utc(original)));
    Elem::t_with(name, children)
}

/// A recurring master with `FirstOccurrence`, `LastOccurrence`, `ModifiedOccurrences` and
/// `DeletedOccurrences` as Exchange reports them.
fn decorate(i: &EwsItem) -> EwsItem {
    let mut out = i.clone();
    if i.kind != "CalendarItem" || i.prop("Recurrence").is_none() {
        return out;
    }
    let bounded = i
        .prop("Recurrence")
        .and_then(|r| r.children.get(1))
        .is_some_and(|r| r.name != "NoEndRecurrence");
    let all = recur::expand(i, None);
    let live: Vec<&recur::Occurrence> = all
        .iter()
        .filter(|o| !i.deleted_occurrences.contains(&o.index))
        .collect();
    out.props.retain(|p| {
        !matches!(
            p.name.as_str(),
            "FirstOccurrence" | "LastOccurrence" | "ModifiedOccurrences" | "DeletedOccurrences"
        )
    });
    if let Some(first) = live.first() {
        out.props.push(occurrence_info(
            "FirstOccurrence",
            &occurrence(i, first),
            first.start,
        ));
    }
    if let (true, Some(last)) = (bounded, live.last()) {
        out.props.push(occurrence_info(
            "LastOccurrence",
            &occurrence(i, last),
            last.start,
        ));
    }
    let modified: Vec<Elem> = all
        .iter()
        .filter(|o| i.exceptions.iter().any(|(n, _)| *n == o.index))
        .map(|o| occurrence_info("Occurrence", &occurrence(i, o), o.start))
        .collect();
    if !modified.is_empty() {
        out.props
            .push(Elem::t_with("ModifiedOccurrences", modified));
    }
    let deleted: Vec<Elem> = all
        .iter()
        .filter(|o| i.deleted_occurrences.contains(&o.index))
        .map(|o| Elem::t_with("DeletedOccurrence", vec![Elem::t("Start", &utc(o.start))]))
        .collect();
    if !deleted.is_empty() {
        out.props.push(Elem::t_with("DeletedOccurrences", deleted));
    }
    out
}

fn utc(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Matches a stored `ExtendedProperty` against an `ExtendedFieldURI`.
pub fn ext_prop_matches(prop: &Elem, uri: &Elem) -> bool {
    let Some(stored) = prop.child("ExtendedFieldURI") else {
        return false;
    };
    let keys = [
        "DistinguishedPropertySetId",
        "PropertySetId",
        "PropertyTag",
        "PropertyName",
        "PropertyId",
    ];
    let norm = |e: &Elem, k: &str| e.attr(k).map(|v| v.trim().to_ascii_lowercase());
    keys.iter().all(|k| {
        let (a, b) = (norm(stored, k), norm(uri, k));
        match *k {
            // Tags may be written in decimal or hex.
            "PropertyTag" => a.map(|v| tag_number(&v)) == b.map(|v| tag_number(&v)),
            _ => a == b,
        }
    })
}

fn tag_number(v: &str) -> Option<u32> {
    match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Properties of type `xs:dateTime` that Exchange answers in UTC.
const DATE_TIMES: &[&str] = &[
    "Start",
    "End",
    "OriginalStart",
    "RecurrenceId",
    "DateTimeStamp",
    "DateTimeSent",
    "DateTimeReceived",
    "DateTimeCreated",
    "LastModifiedTime",
    "ReminderDueBy",
    "AppointmentReplyTime",
    "DueDate",
    "StartDate",
    "CompleteDate",
    "AssignedTime",
    "Birthday",
    "WeddingAnniversary",
];

/// Normalises stored values as Exchange does: booleans as `true`/`false`, date-times in UTC
/// with `Z`, task completion fields consistent with the status.
pub fn normalise(kind: &str, props: &mut Vec<Elem>) {
    fn walk(e: &mut Elem) {
        if e.children.is_empty() {
            let boolean = e.name.starts_with("Is")
                || e.name.starts_with("Has")
                || matches!(
                    e.name.as_str(),
                    "ReminderIsSet" | "AllowNewTimeProposal" | "MeetingRequestWasSent"
                );
            let t = e.text().to_string();
            if boolean {
                match t.to_ascii_lowercase().as_str() {
                    "1" | "true" => e.text = "true".into(),
                    "0" | "false" => e.text = "false".into(),
                    _ => {}
                }
            } else if DATE_TIMES.contains(&e.name.as_str()) {
                if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&t) {
                    e.text = utc(d.with_timezone(&chrono::Utc));
                }
            }
        }
        for c in &mut e.children {
            walk(c);
        }
    }
    for p in props.iter_mut() {
        walk(p);
    }
    let has = |p: &Vec<Elem>, n: &str| p.iter().any(|e| e.name == n);
    let set = |p: &mut Vec<Elem>, n: &str, v: &str| {
        p.retain(|e| e.name != n);
        p.push(Elem::t(n, v));
    };
    match kind {
        "CalendarItem" => {
            if !has(props, "IsAllDayEvent") {
                props.push(Elem::t("IsAllDayEvent", "false"));
            }
            if !has(props, "IsCancelled") {
                props.push(Elem::t("IsCancelled", "false"));
            }
        }
        "Task" => {
            let text = |p: &Vec<Elem>, n: &str| {
                p.iter().find(|e| e.name == n).map(|e| e.text().to_string())
            };
            let percent: f64 = text(props, "PercentComplete")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            let status = text(props, "Status").unwrap_or_else(|| "NotStarted".into());
            if status == "Completed" || percent >= 100.0 {
                set(props, "Status", "Completed");
                set(props, "PercentComplete", "100");
                set(props, "IsComplete", "true");
                if !has(props, "CompleteDate") {
                    props.push(Elem::t("CompleteDate", &now()));
                }
            } else {
                set(props, "IsComplete", "false");
                props.retain(|e| e.name != "CompleteDate");
                if status == "NotStarted" && percent > 0.0 {
                    set(props, "Status", "InProgress");
                }
            }
        }
        _ => {}
    }
}

fn prop_text(i: &EwsItem, field: &Elem) -> Option<String> {
    if field.name == "ExtendedFieldURI" {
        return i
            .props
            .iter()
            .find(|p| p.name == "ExtendedProperty" && ext_prop_matches(p, field))
            .and_then(|p| p.child("Value"))
            .map(|v| v.text().to_string());
    }
    let uri = field.attr("FieldURI")?;
    let name = field_name(uri);
    let p = i.prop(&name)?;
    if field.name == "IndexedFieldURI" {
        let key = field.attr("FieldIndex")?;
        let entry = p.children.iter().find(|e| e.attr("Key") == Some(key))?;
        return match uri.split(':').nth(2) {
            Some(part) => entry.child(part).map(|e| e.text().to_string()),
            None => Some(entry.text().to_string()),
        };
    }
    Some(p.text().to_string())
}

fn restriction_matches(i: &EwsItem, r: &Elem) -> bool {
    matches_with(r, &|field| prop_text(i, field))
}

/// The value of a folder property a restriction names (`folder:DisplayName`,
/// `folder:FolderClass`); other folder properties are not kept.
fn folder_prop(f: &Folder, field: &Elem) -> Option<String> {
    match field.attr("FieldURI")? {
        "folder:DisplayName" => Some(f.name.clone()),
        "folder:FolderClass" => Some(f.class.clone()).filter(|c| !c.is_empty()),
        _ => None,
    }
}

/// Whether restriction `r` holds, reading properties with `value` (strings compared without
/// case, as Exchange does).
fn matches_with(r: &Elem, value: &dyn Fn(&Elem) -> Option<String>) -> bool {
    let field = r.children.iter().find(|c| c.name.ends_with("FieldURI"));
    let constant = r
        .child("FieldURIOrConstant")
        .and_then(|c| c.child("Constant"))
        .or(r.child("Constant"))
        .and_then(|c| c.attr("Value"))
        .unwrap_or("")
        .to_lowercase();
    let actual = field.and_then(value).map(|t| t.to_lowercase());
    let cmp = || {
        let a = actual.clone()?;
        let pa = chrono::DateTime::parse_from_rfc3339(&a).ok();
        let pc = chrono::DateTime::parse_from_rfc3339(&constant).ok();
        Some(match (pa, pc, a.parse::<f64>(), constant.parse::<f64>()) {
            (Some(x), Some(y), _, _) => x.cmp(&y),
            (_, _, Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => a.cmp(&constant),
        })
    };
    use std::cmp::Ordering::*;
    match r.name.as_str() {
        "Restriction" => r.children.first().is_none_or(|c| matches_with(c, value)),
        "And" => r.children.iter().all(|c| matches_with(c, value)),
        "Or" => r.children.iter().any(|c| matches_with(c, value)),
        "Not" => !r.children.first().is_some_and(|c| matches_with(c, value)),
        "Exists" => actual.is_some(),
        "IsEqualTo" => cmp() == Some(Equal),
        "IsNotEqualTo" => cmp() != Some(Equal),
        "IsGreaterThan" => cmp() == Some(Greater),
        "IsGreaterThanOrEqualTo" => matches!(cmp(), Some(Greater | Equal)),
        "IsLessThan" => cmp() == Some(Less),
        "IsLessThanOrEqualTo" => matches!(cmp(), Some(Less | Equal)),
        "Contains" => {
            let mode = r.attr("ContainmentMode").unwrap_or("Substring");
            actual.is_some_and(|a| match mode {
                "FullString" => a == constant,
                "Prefixed" | "PrefixOnWords" => a.starts_with(&constant),
                _ => a.contains(&constant),
            })
        }
        _ => true,
    }
}

/// Expands a calendar item into the instances overlapping `[ws, we)`: single items as they
/// are, series into `Occurrence`/`Exception` items (ids `{master}_OCC{yyyymmdd}`, the original
/// local date), deleted occurrences left out.
fn instances(
    i: &EwsItem,
    ws: chrono::DateTime<chrono::Utc>,
    we: chrono::DateTime<chrono::Utc>,
) -> Vec<EwsItem> {
    let time = |e: &EwsItem, n: &str| e.prop(n).and_then(|p| parse_time(p.text()));
    if i.prop("Recurrence").is_none() {
        return match (time(i, "Start"), time(i, "End")) {
            (Some(start), Some(end)) if start < we && end > ws => vec![i.clone()],
            _ => vec![],
        };
    }
    // Exceptions may have moved later than their original start: look a little further.
    recur::expand(i, Some(we + chrono::Duration::days(31)))
        .iter()
        .filter(|o| !i.deleted_occurrences.contains(&o.index))
        .map(|o| occurrence(i, o))
        .filter(|o| match (time(o, "Start"), time(o, "End")) {
            (Some(start), Some(end)) => start < we && end > ws,
            _ => false,
        })
        .collect()
}

/// One instance of a series: the master's properties at the occurrence's time, or the stored
/// exception.
fn occurrence(master: &EwsItem, occ: &recur::Occurrence) -> EwsItem {
    let mut o = master.clone();
    o.id = format!("{}_OCC{}", master.id, occ.local_date.format("%Y%m%d"));
    o.exceptions.clear();
    o.deleted_occurrences.clear();
    if let Some((_, props)) = master.exceptions.iter().find(|(n, _)| *n == occ.index) {
        o.props = props.clone();
        o.change_key = master.change_key.clone();
        return o;
    }
    o.props.retain(|p| {
        !matches!(
            p.name.as_str(),
            "Recurrence"
                | "Start"
                | "End"
                | "CalendarItemType"
                | "OriginalStart"
                | "FirstOccurrence"
                | "LastOccurrence"
                | "ModifiedOccurrences"
                | "DeletedOccurrences"
        )
    });
    o.props.push(Elem::t("Start", &utc(occ.start)));
    o.props.push(Elem::t("End", &utc(occ.end)));
    o.props.push(Elem::t("OriginalStart", &utc(occ.start)));
    o.props.push(Elem::t("CalendarItemType", "Occurrence"));
    o
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn find_items(s: &EwsState, mailbox: &str, op: &Elem) -> String {
    let shape = parse_shape(op, "ItemShape");
    let restriction = op.child("Restriction");
    let mut msgs = vec![];
    for fel in folder_ids(op, "ParentFolderIds") {
        let folder = match resolve_folder(s, mailbox, &fel) {
            Ok(f) => f,
            Err((code, text)) => {
                msgs.push(err_msg("FindItem", code, &text, ""));
                continue;
            }
        };
        let mut items: Vec<EwsItem> = s
            .items
            .iter()
            .filter(|i| !i.deleted && i.folder == folder.id)
            .filter(|i| restriction.is_none_or(|r| restriction_matches(i, r)))
            .cloned()
            .collect();
        if let Some(order) = op.child("SortOrder") {
            // Stable sorts from the last key to the first give the first key precedence.
            for fo in order.children.iter().rev() {
                let Some(field) = fo.children.first() else {
                    continue;
                };
                let desc = fo.attr("Order") == Some("Descending");
                items.sort_by(|a, b| {
                    let (x, y) = (prop_text(a, field), prop_text(b, field));
                    let ord = match (
                        x.as_deref().and_then(parse_time),
                        y.as_deref().and_then(parse_time),
                        x.as_deref().and_then(|v| v.parse::<f64>().ok()),
                        y.as_deref().and_then(|v| v.parse::<f64>().ok()),
                    ) {
                        (Some(p), Some(q), _, _) => p.cmp(&q),
                        (_, _, Some(p), Some(q)) => {
                            p.partial_cmp(&q).unwrap_or(std::cmp::Ordering::Equal)
                        }
                        _ => x
                            .map(|v| v.to_lowercase())
                            .cmp(&y.map(|v| v.to_lowercase())),
                    };
                    if desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                });
            }
        }
        let (offset, max, attrs) = if let Some(cv) = op.child("CalendarView") {
            let (Some(ws), Some(we)) = (
                cv.attr("StartDate").and_then(parse_time),
                cv.attr("EndDate").and_then(parse_time),
            ) else {
                msgs.push(err_msg(
                    "FindItem",
                    "ErrorInvalidRequest",
                    "CalendarView needs a valid StartDate and EndDate.",
                    "",
                ));
                continue;
            };
            items = items.iter().flat_map(|i| instances(i, ws, we)).collect();
            items.sort_by_key(|i| i.prop("Start").and_then(|p| parse_time(p.text())));
            let max = cv
                .attr("MaxEntriesReturned")
                .and_then(|m| m.parse().ok())
                .unwrap_or(usize::MAX);
            (0usize, max, false)
        } else if let Some(v) = op.child("IndexedPageItemView") {
            let offset: usize = v.attr("Offset").and_then(|o| o.parse().ok()).unwrap_or(0);
            let max = v
                .attr("MaxEntriesReturned")
                .and_then(|m| m.parse().ok())
                .unwrap_or(usize::MAX);
            if v.attr("BasePoint") == Some("End") {
                items.reverse();
            }
            (offset, max, true)
        } else {
            (0, usize::MAX, false)
        };
        let total = items.len();
        let page: Vec<&EwsItem> = items.iter().skip(offset).take(max).collect();
        let last = offset + page.len() >= total;
        let body: String = page.iter().map(|i| item_xml(i, &shape, true)).collect();
        let paging = if attrs {
            format!(r#" IndexedPagingOffset="{}""#, offset + page.len())
        } else {
            String::new()
        };
        msgs.push(ok_msg(
            "FindItem",
            &format!(r#"<m:RootFolder{paging} TotalItemsInView="{total}" IncludesLastItemInRange="{last}"><t:Items>{body}</t:Items></m:RootFolder>"#),
        ));
    }
    wrap("FindItem", &msgs)
}

fn recipients(item: &Elem) -> Vec<String> {
    ["ToRecipients", "CcRecipients", "BccRecipients"]
        .iter()
        .filter_map(|n| item.child(n))
        .flat_map(|r| {
            r.children_named("Mailbox")
                .filter_map(|m| {
                    m.child("EmailAddress")
                        .map(|e| e.text().to_ascii_lowercase())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn create_item(s: &mut EwsState, mailbox: &str, op: &Elem) -> String {
    let disposition = op.attr("MessageDisposition");
    let saved = op
        .child("SavedItemFolderId")
        .and_then(|f| f.children.first())
        .cloned();
    let mut msgs = vec![];
    let items = op
        .child("Items")
        .map(|i| i.children.clone())
        .unwrap_or_default();
    for mut item in items {
        let kind = item.name.clone();
        if let Some(response) = match kind.as_str() {
            "AcceptItem" => Some("Accept"),
            "TentativelyAcceptItem" => Some("Tentative"),
            "DeclineItem" => Some("Decline"),
            _ => None,
        } {
            let rid = item
                .child("ReferenceItemId")
                .and_then(|r| r.attr("Id"))
                .unwrap_or("")
                .to_string();
            if find_item(s, mailbox, &rid).is_none() {
                msgs.push(err_msg(
                    "CreateItem",
                    "ErrorItemNotFound",
                    NOT_FOUND,
                    "<m:Items />",
                ));
                continue;
            }
            let seq = s.bump();
            if let Some(i) = s.items.iter_mut().find(|i| i.id == rid && !i.deleted) {
                i.props.retain(|p| p.name != "MyResponseType");
                i.props.push(Elem::t("MyResponseType", response));
                i.change_key = new_change_key();
                i.seq = seq;
            }
            msgs.push(ok_msg("CreateItem", "<m:Items />"));
            continue;
        }
        if !matches!(
            kind.as_str(),
            "Message" | "CalendarItem" | "Contact" | "Task" | "Item"
        ) {
            msgs.push(err_msg(
                "CreateItem",
                "ErrorInvalidRequest",
                &format!("Creating items of type {kind} is not supported."),
                "<m:Items />",
            ));
            continue;
        }
        if kind == "Message" {
            let Some(d) = disposition else {
                msgs.push(err_msg(
                    "CreateItem",
                    "ErrorMessageDispositionRequired",
                    "MessageDisposition attribute is required.",
                    "<m:Items />",
                ));
                continue;
            };
            if let Some(from) = item
                .path(&["From", "Mailbox", "EmailAddress"])
                .map(|e| e.text().to_ascii_lowercase())
            {
                if from != mailbox {
                    msgs.push(err_msg("CreateItem", "ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.", "<m:Items />"));
                    continue;
                }
            }
            if d != "SaveOnly" {
                // One send: the copies and the saved copy share the sent time and message id.
                as_sent(&mut item, mailbox);
                for rcpt in recipients(&item) {
                    let inbox = s
                        .folder(&rcpt, "inbox")
                        .filter(|f| f.mailbox.as_deref() == Some(rcpt.as_str()))
                        .map(|f| f.id.clone());
                    if let Some(inbox) = inbox {
                        let mut copy = item.clone();
                        copy.children.retain(|c| c.name != "IsRead");
                        copy.children.push(Elem::t("IsRead", "false"));
                        copy.children.push(Elem::t("DateTimeReceived", &now()));
                        s.create_item(mailbox, &inbox, &copy, None);
                    }
                }
                if d == "SendOnly" {
                    msgs.push(ok_msg("CreateItem", "<m:Items />"));
                    continue;
                }
            }
        }
        let default_folder = match (kind.as_str(), disposition) {
            ("CalendarItem", _) => "calendar",
            ("Contact", _) => "contacts",
            ("Task", _) => "tasks",
            ("Message", Some("SendAndSaveCopy")) => "sentitems",
            _ => "drafts",
        };
        let folder = match &saved {
            Some(f) => resolve_folder(s, mailbox, f),
            None => s.folder(mailbox, default_folder).cloned().ok_or((
                "ErrorFolderNotFound",
                "The specified folder could not be found in the store.".into(),
            )),
        };
        let folder = folder.and_then(|f| {
            let class = f.class.as_str();
            let (needed, code, what) = match kind.as_str() {
                "Contact" => (
                    "IPF.Contact",
                    "ErrorCannotCreateContactInNonContactFolder",
                    "contact",
                ),
                "CalendarItem" => (
                    "IPF.Appointment",
                    "ErrorCannotCreateCalendarItemInNonCalendarFolder",
                    "calendar item",
                ),
                "Task" => ("IPF.Task", "ErrorCannotCreateTaskInNonTaskFolder", "task"),
                _ => return Ok(f),
            };
            if class == needed || class.starts_with(&format!("{needed}.")) {
                Ok(f)
            } else {
                Err((
                    code,
                    format!("A {what} can only be created in a folder of class {needed}."),
                ))
            }
        });
        match folder {
            Ok(f) => {
                let id = s.create_item(mailbox, &f.id, &item, None);
                let stored = s.items.iter().find(|i| i.id == id).cloned();
                if disposition == Some("SendAndSaveCopy") && kind == "Message" {
                    msgs.push(ok_msg("CreateItem", "<m:Items />"));
                } else if let Some(i) = stored {
                    msgs.push(ok_msg(
                        "CreateItem",
                        &format!("<m:Items>{}</m:Items>", id_only_item(&i)),
                    ));
                }
            }
            Err((code, text)) => msgs.push(err_msg("CreateItem", code, &text, "<m:Items />")),
        }
    }
    wrap("CreateItem", &msgs)
}

fn merge_indexed(existing: &mut Elem, update: &Elem) {
    for entry in &update.children {
        let key = entry.attr("Key");
        match existing.children.iter_mut().find(|e| e.attr("Key") == key) {
            Some(e) if !entry.children.is_empty() => {
                for c in &entry.children {
                    e.children.retain(|x| x.name != c.name);
                    e.children.push(c.clone());
                }
            }
            Some(e) => *e = entry.clone(),
            None => existing.children.push(entry.clone()),
        }
    }
}

/// Applies the `Updates` of one `ItemChange` to an item; Err(message) when a property is
/// invalid for the item.
fn apply_updates(item: &mut EwsItem, ch: &Elem) -> Result<(), String> {
    for u in ch
        .child("Updates")
        .map(|u| u.children.clone())
        .unwrap_or_default()
    {
        let Some(field) = u.children.iter().find(|c| c.name.ends_with("FieldURI")) else {
            continue;
        };
        if field.name == "ExtendedFieldURI" {
            item.props
                .retain(|p| !(p.name == "ExtendedProperty" && ext_prop_matches(p, field)));
            if u.name != "DeleteItemField" {
                if let Some(src) = u.children.iter().find(|c| !c.name.ends_with("FieldURI")) {
                    item.props.extend(
                        src.children_named("ExtendedProperty")
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                }
            }
            continue;
        }
        let uri = field.attr("FieldURI").unwrap_or_default();
        let name = field_name(uri);
        match u.name.as_str() {
            "SetItemField" | "AppendToItemField" => {
                let Some(src) = u.children.iter().find(|c| !c.name.ends_with("FieldURI")) else {
                    continue;
                };
                if src.name != item.kind && src.name != "Item" {
                    return Err(format!(
                        "The item type {} does not match the item being updated ({}).",
                        src.name, item.kind
                    ));
                }
                for p in &src.children {
                    if position(&item.kind, &p.name).is_none() {
                        return Err(format!(
                            "Property {} is not valid for this object type.",
                            p.name
                        ));
                    }
                    match item.props.iter_mut().find(|e| e.name == p.name) {
                        Some(e) if field.name == "IndexedFieldURI" => merge_indexed(e, p),
                        Some(e) if u.name == "AppendToItemField" => e.text.push_str(&p.text),
                        Some(e) => *e = p.clone(),
                        None => item.props.push(p.clone()),
                    }
                }
            }
            "DeleteItemField" => {
                if field.name == "IndexedFieldURI" {
                    let key = field.attr("FieldIndex");
                    // `contacts:PhysicalAddress:State` names one part of an entry.
                    let part = uri.split(':').nth(2);
                    if let Some(e) = item.props.iter_mut().find(|e| e.name == name) {
                        match part {
                            Some(part) => {
                                for entry in e.children.iter_mut().filter(|c| c.attr("Key") == key)
                                {
                                    entry.children.retain(|c| c.name != part);
                                }
                                e.children.retain(|c| {
                                    !(c.attr("Key") == key
                                        && c.children.is_empty()
                                        && c.text().is_empty())
                                });
                            }
                            None => e.children.retain(|c| c.attr("Key") != key),
                        }
                    }
                    item.props
                        .retain(|e| !(e.name == name && e.children.is_empty()));
                } else {
                    item.props.retain(|e| e.name != name);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Properties Exchange derives after every change.
fn after_change(item: &mut EwsItem) {
    item.props.retain(|p| p.name != "LastModifiedTime");
    item.props.push(Elem::t("LastModifiedTime", &now()));
    normalise(&item.kind.clone(), &mut item.props);
    if item.kind == "CalendarItem" {
        let recurring = item.prop("Recurrence").is_some();
        let exception = item
            .prop("CalendarItemType")
            .is_some_and(|p| matches!(p.text(), "Exception" | "Occurrence"));
        for p in item.props.iter_mut() {
            if p.name == "IsRecurring" && !exception {
                p.text = recurring.to_string();
            }
            if p.name == "CalendarItemType" {
                p.text = if exception {
                    "Exception"
                } else if recurring {
                    "RecurringMaster"
                } else {
                    "Single"
                }
                .into();
            }
        }
    }
}

fn update_item(s: &mut EwsState, mailbox: &str, op: &Elem) -> String {
    let resolution = op
        .attr("ConflictResolution")
        .unwrap_or("AutoResolve")
        .to_string();
    let mut msgs = vec![];
    let changes = op
        .child("ItemChanges")
        .map(|c| c.children.clone())
        .unwrap_or_default();
    for ch in changes {
        let Some(idel) = ch.children.iter().find(|c| c.name.ends_with("ItemId")) else {
            msgs.push(err_msg(
                "UpdateItem",
                "ErrorInvalidIdEmpty",
                "Id is empty.",
                "<m:Items />",
            ));
            continue;
        };
        let Some(target) = resolve_ref(s, mailbox, idel) else {
            msgs.push(err_msg(
                "UpdateItem",
                "ErrorItemNotFound",
                NOT_FOUND,
                "<m:Items />",
            ));
            continue;
        };
        let seq = s.bump();
        if let Ref::Occ(master_id, index) = &target {
            let Some(mut inst) = materialize(s, mailbox, &target) else {
                continue;
            };
            if let Err(msg) = apply_updates(&mut inst, &ch) {
                msgs.push(err_msg(
                    "UpdateItem",
                    "ErrorInvalidPropertySet",
                    &msg,
                    "<m:Items />",
                ));
                continue;
            }
            inst.props.retain(|p| p.name != "CalendarItemType");
            inst.props.push(Elem::t("CalendarItemType", "Exception"));
            after_change(&mut inst);
            inst.change_key = new_change_key();
            let Some(m) = s
                .items
                .iter_mut()
                .find(|i| &i.id == master_id && !i.deleted)
            else {
                continue;
            };
            m.exceptions.retain(|(n, _)| n != index);
            m.exceptions.push((*index, inst.props.clone()));
            m.change_key = new_change_key();
            m.seq = seq;
            msgs.push(ok_msg(
                "UpdateItem",
                &format!(
                    "<m:Items>{}</m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>",
                    id_only_item(&inst)
                ),
            ));
            continue;
        }
        let Ref::Item(id) = target else { continue };
        let Some(item) = s.items.iter_mut().find(|i| i.id == id && !i.deleted) else {
            continue;
        };
        if let Some(ck) = idel.attr("ChangeKey") {
            if ck != item.change_key && resolution == "NeverOverwrite" {
                msgs.push(err_msg(
                    "UpdateItem",
                    "ErrorIrresolvableConflict",
                    "An update operation failed because of a conflict.",
                    "<m:Items />",
                ));
                continue;
            }
        }
        let mut updated = item.clone();
        if let Err(msg) = apply_updates(&mut updated, &ch) {
            msgs.push(err_msg(
                "UpdateItem",
                "ErrorInvalidPropertySet",
                &msg,
                "<m:Items />",
            ));
            continue;
        }
        after_change(&mut updated);
        if updated.prop("Recurrence") != item.prop("Recurrence") {
            // A new pattern starts the series afresh.
            updated.exceptions.clear();
            updated.deleted_occurrences.clear();
        }
        *item = updated;
        item.change_key = new_change_key();
        item.seq = seq;
        msgs.push(ok_msg(
            "UpdateItem",
            &format!(
                "<m:Items>{}</m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>",
                id_only_item(item)
            ),
        ));
    }
    wrap("UpdateItem", &msgs)
}

fn move_one(s: &mut EwsState, mailbox: &str, id: &str, target: &str) -> Option<EwsItem> {
    find_item(s, mailbox, id)?;
    let seq = s.bump();
    let pos = s.items.iter().position(|i| i.id == id && !i.deleted)?;
    let mut moved = s.items[pos].clone();
    s.items[pos].deleted = true;
    s.items[pos].seq = seq;
    let seq2 = s.bump();
    moved.id = new_id();
    moved.change_key = new_change_key();
    moved.folder = target.to_string();
    moved.created_seq = seq2;
    moved.seq = seq2;
    s.items.push(moved.clone());
    Some(moved)
}

fn delete_item(s: &mut EwsState, mailbox: &str, op: &Elem) -> String {
    let kind = op
        .attr("DeleteType")
        .unwrap_or("MoveToDeletedItems")
        .to_string();
    let deleted_folder = s.folder(mailbox, "deleteditems").map(|f| f.id.clone());
    let msgs: Vec<String> = folder_ids(op, "ItemIds")
        .iter()
        .map(|idel| {
            let id = match resolve_ref(s, mailbox, idel) {
                None => return err_msg("DeleteItem", "ErrorItemNotFound", NOT_FOUND, ""),
                Some(Ref::Occ(master, index)) => {
                    let seq = s.bump();
                    if let Some(m) = s.items.iter_mut().find(|i| i.id == master && !i.deleted) {
                        m.exceptions.retain(|(n, _)| *n != index);
                        m.deleted_occurrences.push(index);
                        m.change_key = new_change_key();
                        m.seq = seq;
                    }
                    return ok_msg("DeleteItem", "");
                }
                Some(Ref::Item(id)) => id,
            };
            match (&kind[..], &deleted_folder) {
                ("MoveToDeletedItems", Some(df)) => {
                    let df = df.clone();
                    move_one(s, mailbox, &id, &df);
                }
                _ => {
                    let seq = s.bump();
                    if let Some(i) = s.items.iter_mut().find(|i| i.id == id && !i.deleted) {
                        i.deleted = true;
                        i.seq = seq;
                    }
                }
            }
            ok_msg("DeleteItem", "")
        })
        .collect();
    wrap("DeleteItem", &msgs)
}

fn move_item(s: &mut EwsState, mailbox: &str, op: &Elem) -> String {
    let target = op
        .child("ToFolderId")
        .and_then(|t| t.children.first())
        .cloned();
    let ids = folder_ids(op, "ItemIds");
    let target = match target.map(|t| resolve_folder(s, mailbox, &t)) {
        Some(Ok(f)) => f,
        Some(Err((code, text))) => {
            let msgs: Vec<String> = ids
                .iter()
                .map(|_| err_msg("MoveItem", code, &text, "<m:Items />"))
                .collect();
            return wrap("MoveItem", &msgs);
        }
        None => {
            return wrap(
                "MoveItem",
                &[err_msg(
                    "MoveItem",
                    "ErrorInvalidRequest",
                    "ToFolderId is required.",
                    "<m:Items />",
                )],
            )
        }
    };
    // `ReturnNewItemIds` false asks for no ids; without it the simulator answers them.
    let new_ids = op
        .child("ReturnNewItemIds")
        .is_none_or(|r| r.text().trim() != "false");
    let msgs: Vec<String> = ids
        .iter()
        .map(
            |idel| match move_one(s, mailbox, idel.attr("Id").unwrap_or(""), &target.id) {
                Some(i) if new_ids => ok_msg(
                    "MoveItem",
                    &format!("<m:Items>{}</m:Items>", id_only_item(&i)),
                ),
                Some(_) => ok_msg("MoveItem", "<m:Items />"),
                None => err_msg("MoveItem", "ErrorItemNotFound", NOT_FOUND, "<m:Items />"),
            },
        )
        .collect();
    wrap("MoveItem", &msgs)
}

fn encode_state(folder: &str, seq: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("sim1|{folder}|{seq}"))
}

fn decode_state(s: &str) -> Option<(String, u64)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('|');
    (parts.next()? == "sim1").then_some(())?;
    let folder = parts.next()?.to_string();
    let seq = parts.next()?.parse().ok()?;
    Some((folder, seq))
}

fn sync_folder_items(s: &EwsState, mailbox: &str, op: &Elem) -> Result<String, Response> {
    let max: i64 = op
        .child("MaxChangesReturned")
        .and_then(|m| m.text().parse().ok())
        .unwrap_or(0);
    if !(1..=512).contains(&max) {
        return Err(soap_fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: The 'MaxChangesReturned' element is invalid - The value is invalid according to its datatype 'MaxSyncChangesReturnedType' (1..512).",
            None,
        ));
    }
    let shape = parse_shape(op, "ItemShape");
    let Some(fel) = op.child("SyncFolderId").and_then(|f| f.children.first()) else {
        return Ok(wrap(
            "SyncFolderItems",
            &[err_msg(
                "SyncFolderItems",
                "ErrorInvalidRequest",
                "SyncFolderId is required.",
                "",
            )],
        ));
    };
    let folder = match resolve_folder(s, mailbox, fel) {
        Ok(f) => f,
        Err((code, text)) => {
            return Ok(wrap(
                "SyncFolderItems",
                &[err_msg("SyncFolderItems", code, &text, "")],
            ))
        }
    };
    if folder.mailbox.is_none() {
        return Ok(wrap(
            "SyncFolderItems",
            &[err_msg(
                "SyncFolderItems",
                "ErrorInvalidOperation",
                "SyncFolderItems isn't supported on public folders.",
                "",
            )],
        ));
    }
    let since = match op
        .child("SyncState")
        .map(|e| e.text())
        .filter(|t| !t.is_empty())
    {
        None => 0,
        Some(t) => match decode_state(t) {
            Some((f, seq)) if f == folder.id => seq,
            _ => {
                return Ok(wrap(
                    "SyncFolderItems",
                    &[err_msg(
                        "SyncFolderItems",
                        "ErrorInvalidSyncStateData",
                        "Synchronization state data is corrupt or otherwise invalid.",
                        "",
                    )],
                ))
            }
        },
    };
    let ignore: Vec<String> = op
        .child("Ignore")
        .map(|i| {
            i.children
                .iter()
                .filter_map(|c| c.attr("Id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut cands: Vec<&EwsItem> = s
        .items
        .iter()
        .filter(|i| i.folder == folder.id && i.seq > since && !ignore.contains(&i.id))
        .filter(|i| !(i.deleted && i.created_seq > since))
        .collect();
    cands.sort_by_key(|i| i.seq);
    let take = cands.len().min(max as usize);
    let last = take == cands.len();
    let new_seq = if last { s.seq } else { cands[take - 1].seq };
    let mut changes = String::new();
    for i in &cands[..take] {
        if i.deleted {
            changes.push_str(&format!("<t:Delete>{}</t:Delete>", item_id(i)));
        } else {
            let tag = if i.created_seq > since {
                "Create"
            } else {
                "Update"
            };
            changes.push_str(&format!(
                "<t:{tag}>{}</t:{tag}>",
                item_xml(i, &shape, false)
            ));
        }
    }
    Ok(wrap(
        "SyncFolderItems",
        &[ok_msg(
            "SyncFolderItems",
            &format!(
                "<m:SyncState>{}</m:SyncState><m:IncludesLastItemInRange>{last}</m:IncludesLastItemInRange><m:Changes>{changes}</m:Changes>",
                encode_state(&folder.id, new_seq)
            ),
        )],
    ))
}

fn resolve_names(s: &EwsState, op: &Elem) -> String {
    let raw = op
        .child("UnresolvedEntry")
        .map(|e| e.text().to_string())
        .unwrap_or_default();
    let q = raw
        .trim_start_matches("SMTP:")
        .trim_start_matches("smtp:")
        .to_lowercase();
    let full = op.attr("ReturnFullContactData") == Some("true");
    let hits: Vec<&EwsAccount> = s
        .accounts
        .iter()
        .filter(|a| {
            let e = a.email.to_lowercase();
            !q.is_empty()
                && (e == q || e.starts_with(&q) || a.display_name.to_lowercase().starts_with(&q))
        })
        .collect();
    if hits.is_empty() {
        return wrap(
            "ResolveNames",
            &[err_msg(
                "ResolveNames",
                "ErrorNameResolutionNoResults",
                "No results were found.",
                "",
            )],
        );
    }
    let res: String = hits
        .iter()
        .map(|a| {
            let name = if a.display_name.is_empty() { a.email.clone() } else { a.display_name.clone() };
            let contact = if full {
                format!(
                    r#"<t:Contact><t:DisplayName>{}</t:DisplayName><t:EmailAddresses><t:Entry Key="EmailAddress1">SMTP:{}</t:Entry></t:EmailAddresses><t:ContactSource>ActiveDirectory</t:ContactSource></t:Contact>"#,
                    escape(&name),
                    escape(&a.email)
                )
            } else {
                String::new()
            };
            format!(
                "<t:Resolution><t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType></t:Mailbox>{contact}</t:Resolution>",
                escape(&name),
                escape(&a.email)
            )
        })
        .collect();
    let set = format!(
        r#"<m:ResolutionSet TotalItemsInView="{}" IncludesLastItemInRange="true">{res}</m:ResolutionSet>"#,
        hits.len()
    );
    let msg = if hits.len() > 1 {
        warn_msg(
            "ResolveNames",
            "ErrorNameResolutionMultipleResults",
            "Multiple results were found.",
            &set,
        )
    } else {
        ok_msg("ResolveNames", &set)
    };
    wrap("ResolveNames", &[msg])
}

/// A folder in the default shape, with the stored extended properties `extended` (the
/// `ExtendedFieldURI`s of the request's `FolderShape`) names.
fn folder_xml(s: &EwsState, f: &Folder, extended: &[Elem]) -> String {
    let total = s
        .items
        .iter()
        .filter(|i| !i.deleted && i.folder == f.id)
        .count();
    let children = s
        .folders
        .iter()
        .filter(|c| c.parent.as_deref() == Some(f.id.as_str()))
        .count();
    let el = f.element();
    let unread = if el == "Folder" || el == "TasksFolder" {
        "<t:UnreadCount>0</t:UnreadCount>"
    } else {
        ""
    };
    let parent = f
        .parent
        .as_ref()
        .map(|p| {
            format!(
                r#"<t:ParentFolderId Id="{}" ChangeKey="AQAAAA==" />"#,
                escape(p)
            )
        })
        .unwrap_or_default();
    let props: String = f
        .extended
        .iter()
        .filter(|p| extended.iter().any(|u| ext_prop_matches(p, u)))
        .map(Elem::to_xml)
        .collect();
    format!(
        r#"<t:{el}><t:FolderId Id="{}" ChangeKey="AQAAAA==" />{parent}{}<t:DisplayName>{}</t:DisplayName><t:TotalCount>{total}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>{props}{unread}</t:{el}>"#,
        escape(&f.id),
        if f.class.is_empty() {
            String::new()
        } else {
            format!("<t:FolderClass>{}</t:FolderClass>", escape(&f.class))
        },
        escape(&f.name)
    )
}

fn create_folder(s: &mut EwsState, mailbox: &str, op: &Elem) -> String {
    let parent = match op
        .child("ParentFolderId")
        .and_then(|p| p.children.first())
        .map(|p| resolve_folder(s, mailbox, p))
    {
        Some(Ok(f)) => f,
        Some(Err((code, text))) => {
            return wrap("CreateFolder", &[err_msg("CreateFolder", code, &text, "")])
        }
        None => {
            return wrap(
                "CreateFolder",
                &[err_msg(
                    "CreateFolder",
                    "ErrorInvalidRequest",
                    "ParentFolderId is required.",
                    "",
                )],
            )
        }
    };
    let mut msgs = vec![];
    for f in op
        .child("Folders")
        .map(|f| f.children.clone())
        .unwrap_or_default()
    {
        let name = f
            .child("DisplayName")
            .map(|d| d.text().to_string())
            .unwrap_or_default();
        if s.folders.iter().any(|x| {
            x.parent.as_deref() == Some(parent.id.as_str()) && x.name.eq_ignore_ascii_case(&name)
        }) {
            msgs.push(err_msg(
                "CreateFolder",
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
                "",
            ));
            continue;
        }
        let class = f
            .child("FolderClass")
            .map(|c| c.text().to_string())
            .unwrap_or_else(|| {
                match f.name.as_str() {
                    "ContactsFolder" => "IPF.Contact",
                    "CalendarFolder" => "IPF.Appointment",
                    "TasksFolder" => "IPF.Task",
                    _ => "IPF.Note",
                }
                .into()
            });
        let folder = Folder {
            id: new_id(),
            name,
            class,
            distinguished: None,
            parent: Some(parent.id.clone()),
            mailbox: parent.mailbox.clone(),
            extended: vec![],
        };
        msgs.push(ok_msg(
            "CreateFolder",
            &format!(r#"<m:Folders><t:{0}><t:FolderId Id="{1}" ChangeKey="AQAAAA==" /></t:{0}></m:Folders>"#, folder.element(), escape(&folder.id)),
        ));
        s.folders.push(folder);
    }
    wrap("CreateFolder", &msgs)
}

fn find_folder(s: &EwsState, mailbox: &str, op: &Elem) -> String {
    let deep = op.attr("Traversal") == Some("Deep");
    let restriction = op.child("Restriction");
    let mut msgs = vec![];
    for fel in folder_ids(op, "ParentFolderIds") {
        let parent = match resolve_folder(s, mailbox, &fel) {
            Ok(f) => f,
            Err((code, text)) => {
                msgs.push(err_msg("FindFolder", code, &text, ""));
                continue;
            }
        };
        let mut found: Vec<&Folder> = vec![];
        let mut frontier = vec![parent.id.clone()];
        while let Some(p) = frontier.pop() {
            for f in s
                .folders
                .iter()
                .filter(|f| f.parent.as_deref() == Some(p.as_str()))
            {
                found.push(f);
                if deep {
                    frontier.push(f.id.clone());
                }
            }
        }
        found.retain(|f| {
            restriction.is_none_or(|r| matches_with(r, &|field| folder_prop(f, field)))
        });
        let extended = parse_shape(op, "FolderShape").extended;
        let body: String = found.iter().map(|f| folder_xml(s, f, &extended)).collect();
        msgs.push(ok_msg(
            "FindFolder",
            &format!(r#"<m:RootFolder TotalItemsInView="{}" IncludesLastItemInRange="true"><t:Folders>{body}</t:Folders></m:RootFolder>"#, found.len()),
        ));
    }
    wrap("FindFolder", &msgs)
}

fn get_folder(s: &EwsState, mailbox: &str, op: &Elem) -> String {
    let extended = parse_shape(op, "FolderShape").extended;
    let msgs: Vec<String> = folder_ids(op, "FolderIds")
        .iter()
        .map(|fel| match resolve_folder(s, mailbox, fel) {
            Ok(f) => ok_msg(
                "GetFolder",
                &format!("<m:Folders>{}</m:Folders>", folder_xml(s, &f, &extended)),
            ),
            Err((code, text)) => err_msg("GetFolder", code, &text, ""),
        })
        .collect();
    wrap("GetFolder", &msgs)
}

/// Applies one folder change description (`SetFolderField` / `DeleteFolderField`): extended
/// properties and the display name; Err((code, text)) as Exchange answers.
fn apply_folder_update(f: &mut Folder, u: &Elem) -> Result<(), (&'static str, String)> {
    let path = u
        .children
        .iter()
        .find(|c| {
            matches!(
                c.name.as_str(),
                "FieldURI" | "IndexedFieldURI" | "ExtendedFieldURI"
            )
        })
        .ok_or((
            "ErrorInvalidPropertyRequest",
            "The property path is missing.".to_string(),
        ))?;
    let set_as = |what: &str| {
        (
            "ErrorInvalidPropertySet",
            format!("Set action is invalid for property: {what}."),
        )
    };
    match (u.name.as_str(), path.name.as_str()) {
        ("SetFolderField", "ExtendedFieldURI") => {
            let given = u
                .children
                .iter()
                .find(|c| c.name.ends_with("Folder"))
                .and_then(|folder| folder.child("ExtendedProperty"))
                .ok_or((
                    "ErrorIncorrectUpdatePropertyCount",
                    "An object within a change description must contain one and only one property to modify.".to_string(),
                ))?;
            let matches = given.child("ExtendedFieldURI").is_some_and(|g| {
                ext_prop_matches(&Elem::t_with("ExtendedProperty", vec![g.clone()]), path)
            });
            if !matches {
                return Err((
                    "ErrorUpdatePropertyMismatch",
                    "An object within a change description must contain one and only one property to modify, and that property must match the property path.".into(),
                ));
            }
            let value = given.child("Value").ok_or((
                "ErrorInvalidExtendedPropertyValue",
                "The extended property value is missing.".to_string(),
            ))?;
            f.set_extended(path, Some(&value.text));
            Ok(())
        }
        ("DeleteFolderField", "ExtendedFieldURI") => {
            f.set_extended(path, None);
            Ok(())
        }
        ("SetFolderField", "FieldURI") if path.attr("FieldURI") == Some("folder:DisplayName") => {
            let name = u
                .children
                .iter()
                .find(|c| c.name.ends_with("Folder"))
                .and_then(|folder| folder.child("DisplayName"))
                .map(|d| d.text().to_string())
                .filter(|d| !d.is_empty())
                .ok_or((
                    "ErrorUpdatePropertyMismatch",
                    "The folder in the change description has no DisplayName.".to_string(),
                ))?;
            f.name = name;
            Ok(())
        }
        (_, _) => Err(set_as(
            path.attr("FieldURI")
                .or(path.attr("PropertyName"))
                .unwrap_or(path.name.as_str()),
        )),
    }
}

/// UpdateFolder: one response message per `FolderChange`; a change is applied whole or not
/// at all. Folders are resolved as GetFolder resolves them (another mailbox's folder without
/// impersonation is `ErrorAccessDenied`, an unknown mailbox `ErrorNonExistentMailbox`).
fn update_folder(s: &mut EwsState, mailbox: &str, op: &Elem) -> String {
    let changes = op
        .child("FolderChanges")
        .map(|c| c.children.clone())
        .unwrap_or_default();
    let mut msgs = vec![];
    for ch in changes {
        let Some(fel) = ch
            .children
            .iter()
            .find(|c| matches!(c.name.as_str(), "FolderId" | "DistinguishedFolderId"))
        else {
            msgs.push(err_msg(
                "UpdateFolder",
                "ErrorInvalidIdEmpty",
                "Id is empty.",
                "",
            ));
            continue;
        };
        let folder = match resolve_folder(s, mailbox, fel) {
            Ok(f) => f,
            Err((code, text)) => {
                msgs.push(err_msg("UpdateFolder", code, &text, ""));
                continue;
            }
        };
        let mut changed = folder.clone();
        let updates = ch
            .child("Updates")
            .map(|u| u.children.as_slice())
            .unwrap_or_default();
        let result = updates
            .iter()
            .try_for_each(|u| apply_folder_update(&mut changed, u));
        match result {
            Ok(()) => {
                let el = changed.element();
                let id = changed.id.clone();
                if let Some(stored) = s.folders.iter_mut().find(|x| x.id == id) {
                    *stored = changed;
                }
                msgs.push(ok_msg(
                    "UpdateFolder",
                    &format!(
                        r#"<m:Folders><t:{el}><t:FolderId Id="{}" ChangeKey="AQAAAA==" /></t:{el}></m:Folders>"#,
                        escape(&id)
                    ),
                ));
            }
            Err((code, text)) => msgs.push(err_msg("UpdateFolder", code, &text, "")),
        }
    }
    wrap("UpdateFolder", &msgs)
}

/// ConvertId: ids of this server convert to themselves in every format (the simulator has one
/// id form); anything else is malformed.
fn convert_id(s: &EwsState, mailbox: &str, op: &Elem) -> String {
    let dest = op.attr("DestinationFormat").unwrap_or("EwsId").to_string();
    let msgs: Vec<String> = op
        .child("SourceIds")
        .map(|c| c.children.clone())
        .unwrap_or_default()
        .iter()
        .map(|src| {
            let id = src.attr("Id").unwrap_or("");
            let known = find_item(s, mailbox, id).is_some()
                || s.folders.iter().any(|f| f.id == id)
                || resolve_ref(s, mailbox, &Elem::t("ItemId", "").with_attr("Id", id)).is_some();
            if !known {
                return err_msg(
                    "ConvertId",
                    "ErrorInvalidIdMalformed",
                    "Id is malformed.",
                    "",
                );
            }
            let mb = src.attr("Mailbox").unwrap_or(mailbox);
            ok_msg(
                "ConvertId",
                &format!(
                    r#"<m:AlternateId xsi:type="t:AlternateIdType" Format="{}" Id="{}" Mailbox="{}" />"#,
                    escape(&dest),
                    escape(id),
                    escape(mb)
                ),
            )
        })
        .collect();
    wrap("ConvertId", &msgs)
}

/// The item as MIME: iCalendar for calendar items, vCard for contacts, RFC 5322 otherwise.
fn mime_content(i: &EwsItem) -> Elem {
    let text = |n: &str| i.prop(n).map(|p| p.text().to_string()).unwrap_or_default();
    let ics_time = |n: &str| {
        i.prop(n)
            .and_then(|p| parse_time(p.text()))
            .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default()
    };
    let body = match i.kind.as_str() {
        "CalendarItem" => format!(
            "Content-Type: text/calendar; charset=\"utf-8\"; method=PUBLISH\r\n\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncbridge//EWS simulator//EN\r\nMETHOD:PUBLISH\r\nBEGIN:VEVENT\r\nUID:{}\r\nSUMMARY:{}\r\nDTSTART:{}\r\nDTEND:{}\r\nLOCATION:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            i.id,
            text("Subject"),
            ics_time("Start"),
            ics_time("End"),
            text("Location")
        ),
        "Contact" => format!(
            "Content-Type: text/directory; profile=\"vCard\"; charset=\"utf-8\"\r\n\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:{}\r\nN:{};{};;;\r\nEND:VCARD\r\n",
            text("DisplayName"),
            text("Surname"),
            text("GivenName")
        ),
        _ => format!(
            "Subject: {}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\n{}\r\n",
            text("Subject"),
            text("Body")
        ),
    };
    Elem::t(
        "MimeContent",
        &base64::engine::general_purpose::STANDARD.encode(format!("MIME-Version: 1.0\r\n{body}")),
    )
    .with_attr("CharacterSet", "UTF-8")
}
