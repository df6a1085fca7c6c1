//! EWS operations: FindItem, GetItem, CreateItem, UpdateItem, DeleteItem, MoveItem,
//! SyncFolderItems, ResolveNames, CreateFolder, FindFolder, GetFolder.

use axum::response::Response;
use base64::Engine;

use super::xml::{escape, Elem, M, T};
use super::{new_change_key, new_id, order, soap_fault, EwsAccount, EwsItem, EwsState, Folder};
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
            if let (false, Some(a)) = (has(&props, "From"), owner) {
                props.push(Elem::t_with("From", vec![mailbox(a)]));
            }
        }
        _ => {}
    }
    props
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
    let additional = s
        .and_then(|s| s.child("AdditionalProperties"))
        .map(|a| {
            a.children
                .iter()
                .filter_map(|f| f.attr("FieldURI").map(field_name))
                .collect()
        })
        .unwrap_or_default();
    let mime = s
        .and_then(|s| s.child("IncludeMimeContent"))
        .is_some_and(|m| m.text() == "true");
    Shape {
        id_only: base == "IdOnly",
        additional,
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
    out.push_str(&item_id(i));
    out.push_str(&format!(
        r#"<t:ParentFolderId Id="{}" ChangeKey="AQAAAA==" />"#,
        escape(&i.folder)
    ));
    let mut props: Vec<&Elem> = i
        .props
        .iter()
        .filter(|p| position(&i.kind, &p.name).is_some())
        .filter(|p| !shape.id_only || shape.additional.contains(&p.name))
        .filter(|p| !(find && matches!(p.name.as_str(), "Body" | "Attachments" | "MimeContent")))
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
pub fn dispatch(store: &Store, mailbox: &str, op: &Elem) -> Result<String, Response> {
    let mut s = lock(&store.ews);
    match op.name.as_str() {
        "GetItem" => Ok(get_item(&s, mailbox, op)),
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
        other => Err(soap_fault(
            "ErrorInvalidRequest",
            &format!(
                "The request is invalid: operation '{other}' is not supported by this server."
            ),
            None,
        )),
    }
}

fn get_item(s: &EwsState, mailbox: &str, op: &Elem) -> String {
    let shape = parse_shape(op, "ItemShape");
    let msgs: Vec<String> = folder_ids(op, "ItemIds")
        .iter()
        .map(|idel| {
            let id = idel.attr("Id").unwrap_or("");
            let occ = find_occurrence(s, mailbox, id);
            match find_item(s, mailbox, id).or(occ.as_ref()) {
                Some(i) if shape.mime && matches!(i.kind.as_str(), "Contact" | "Task") => err_msg(
                    "GetItem",
                    "ErrorUnsupportedMimeConversion",
                    "Mime conversion is not supported for this item type.",
                    "<m:Items />",
                ),
                Some(i) => ok_msg(
                    "GetItem",
                    &format!("<m:Items>{}</m:Items>", item_xml(i, &shape, false)),
                ),
                None => err_msg("GetItem", "ErrorItemNotFound", NOT_FOUND, "<m:Items />"),
            }
        })
        .collect();
    wrap("GetItem", &msgs)
}

fn prop_text(i: &EwsItem, field: &Elem) -> Option<String> {
    let uri = field.attr("FieldURI")?;
    let name = field_name(uri);
    let p = i.prop(&name)?;
    if field.name == "IndexedFieldURI" {
        let key = field.attr("FieldIndex")?;
        return p
            .children
            .iter()
            .find(|e| e.attr("Key") == Some(key))
            .map(|e| e.text().to_string());
    }
    Some(p.text().to_string())
}

fn restriction_matches(i: &EwsItem, r: &Elem) -> bool {
    let field = r.children.iter().find(|c| c.name.ends_with("FieldURI"));
    let constant = r
        .child("FieldURIOrConstant")
        .and_then(|c| c.child("Constant"))
        .or(r.child("Constant"))
        .and_then(|c| c.attr("Value"))
        .unwrap_or("")
        .to_lowercase();
    let actual = field
        .and_then(|f| prop_text(i, f))
        .map(|t| t.to_lowercase());
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
        "Restriction" => r.children.first().is_none_or(|c| restriction_matches(i, c)),
        "And" => r.children.iter().all(|c| restriction_matches(i, c)),
        "Or" => r.children.iter().any(|c| restriction_matches(i, c)),
        "Not" => !r
            .children
            .first()
            .is_some_and(|c| restriction_matches(i, c)),
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
/// are, daily/weekly series into `Occurrence` items (ids `{master}_OCC{yyyymmdd}`).
fn instances(
    i: &EwsItem,
    ws: chrono::DateTime<chrono::Utc>,
    we: chrono::DateTime<chrono::Utc>,
) -> Vec<EwsItem> {
    let (Some(start), Some(end)) = (
        i.prop("Start").and_then(|p| parse_time(p.text())),
        i.prop("End").and_then(|p| parse_time(p.text())),
    ) else {
        return vec![];
    };
    let Some(rec) = i.prop("Recurrence") else {
        return if start < we && end > ws {
            vec![i.clone()]
        } else {
            vec![]
        };
    };
    let pattern = rec.children.first();
    let interval: i64 = pattern
        .and_then(|p| p.child("Interval"))
        .and_then(|x| x.text().parse().ok())
        .unwrap_or(1)
        .max(1);
    let days: Vec<String> = pattern
        .and_then(|p| p.child("DaysOfWeek"))
        .map(|d| {
            d.text()
                .split_whitespace()
                .map(|x| x.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let range = rec.children.get(1);
    let count: Option<i64> = range
        .and_then(|r| r.child("NumberOfOccurrences"))
        .and_then(|n| n.text().parse().ok());
    let until = range
        .and_then(|r| r.child("EndDate"))
        .and_then(|d| {
            chrono::NaiveDate::parse_from_str(d.text().get(..10).unwrap_or(""), "%Y-%m-%d").ok()
        })
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|d| d.and_utc());
    let kind = pattern.map(|p| p.name.as_str()).unwrap_or("");
    let dur = end - start;
    let mut out = vec![];
    let mut n = 0;
    let mut day = start;
    for _ in 0..3660 {
        if day >= we || until.is_some_and(|u| day > u) || count.is_some_and(|c| n >= c) {
            break;
        }
        let offset = (day - start).num_days();
        let hit = match kind {
            "DailyRecurrence" => offset % interval == 0,
            "WeeklyRecurrence" => {
                (offset / 7) % interval == 0
                    && (days.is_empty()
                        || days.contains(&day.format("%A").to_string().to_ascii_lowercase()))
            }
            _ => offset == 0,
        };
        if hit {
            n += 1;
            if day + dur > ws {
                out.push(occurrence(i, day, day + dur));
            }
        }
        day += chrono::Duration::days(1);
    }
    out
}

fn occurrence(
    master: &EwsItem,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> EwsItem {
    let mut o = master.clone();
    o.id = format!("{}_OCC{}", master.id, start.format("%Y%m%d"));
    o.props.retain(|p| {
        !matches!(
            p.name.as_str(),
            "Recurrence" | "Start" | "End" | "CalendarItemType"
        )
    });
    o.props.push(Elem::t(
        "Start",
        &start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    ));
    o.props.push(Elem::t(
        "End",
        &end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    ));
    o.props.push(Elem::t("CalendarItemType", "Occurrence"));
    o
}

/// Resolves an occurrence id (`{master}_OCC{yyyymmdd}`) to a synthesized occurrence.
fn find_occurrence(s: &EwsState, mailbox: &str, id: &str) -> Option<EwsItem> {
    let (master, date) = id.rsplit_once("_OCC")?;
    let m = find_item(s, mailbox, master)?;
    let d = chrono::NaiveDate::parse_from_str(date, "%Y%m%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?
        .and_utc();
    instances(m, d, d + chrono::Duration::days(1))
        .into_iter()
        .find(|o| o.id == id)
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
    for item in items {
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
        let Some(idel) = ch.child("ItemId") else {
            msgs.push(err_msg(
                "UpdateItem",
                "ErrorInvalidIdEmpty",
                "Id is empty.",
                "<m:Items />",
            ));
            continue;
        };
        let id = idel.attr("Id").unwrap_or("").to_string();
        if find_item(s, mailbox, &id).is_none() {
            msgs.push(err_msg(
                "UpdateItem",
                "ErrorItemNotFound",
                NOT_FOUND,
                "<m:Items />",
            ));
            continue;
        }
        let seq = s.bump();
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
        let mut bad = None;
        for u in ch
            .child("Updates")
            .map(|u| u.children.clone())
            .unwrap_or_default()
        {
            let Some(field) = u.children.iter().find(|c| c.name.ends_with("FieldURI")) else {
                continue;
            };
            let name = field.attr("FieldURI").map(field_name).unwrap_or_default();
            match u.name.as_str() {
                "SetItemField" | "AppendToItemField" => {
                    let Some(src) = u.children.iter().find(|c| !c.name.ends_with("FieldURI"))
                    else {
                        continue;
                    };
                    if src.name != item.kind && src.name != "Item" {
                        bad = Some(format!(
                            "The item type {} does not match the item being updated ({}).",
                            src.name, item.kind
                        ));
                        break;
                    }
                    for p in &src.children {
                        if position(&item.kind, &p.name).is_none() {
                            bad = Some(format!(
                                "Property {} is not valid for this object type.",
                                p.name
                            ));
                            break;
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
                        if let Some(e) = item.props.iter_mut().find(|e| e.name == name) {
                            e.children.retain(|c| c.attr("Key") != key);
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
        if let Some(msg) = bad {
            msgs.push(err_msg(
                "UpdateItem",
                "ErrorInvalidPropertySet",
                &msg,
                "<m:Items />",
            ));
            continue;
        }
        item.props.retain(|p| p.name != "LastModifiedTime");
        item.props.push(Elem::t("LastModifiedTime", &now()));
        if item.kind == "CalendarItem" {
            let recurring = item.prop("Recurrence").is_some();
            for p in item.props.iter_mut() {
                if p.name == "IsRecurring" {
                    p.text = recurring.to_string();
                }
                if p.name == "CalendarItemType" {
                    p.text = if recurring {
                        "RecurringMaster"
                    } else {
                        "Single"
                    }
                    .into();
                }
            }
        }
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
            let id = idel.attr("Id").unwrap_or("");
            if find_item(s, mailbox, id).is_none() {
                return err_msg("DeleteItem", "ErrorItemNotFound", NOT_FOUND, "");
            }
            match (&kind[..], &deleted_folder) {
                ("MoveToDeletedItems", Some(df)) => {
                    let df = df.clone();
                    move_one(s, mailbox, id, &df);
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
    let target = match target.map(|t| resolve_folder(s, mailbox, &t)) {
        Some(Ok(f)) => f,
        Some(Err((code, text))) => {
            return wrap(
                "MoveItem",
                &[err_msg("MoveItem", code, &text, "<m:Items />")],
            )
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
    let msgs: Vec<String> = folder_ids(op, "ItemIds")
        .iter()
        .map(
            |idel| match move_one(s, mailbox, idel.attr("Id").unwrap_or(""), &target.id) {
                Some(i) => ok_msg(
                    "MoveItem",
                    &format!("<m:Items>{}</m:Items>", id_only_item(&i)),
                ),
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

fn folder_xml(s: &EwsState, f: &Folder) -> String {
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
    format!(
        r#"<t:{el}><t:FolderId Id="{}" ChangeKey="AQAAAA==" />{parent}<t:FolderClass>{}</t:FolderClass><t:DisplayName>{}</t:DisplayName><t:TotalCount>{total}</t:TotalCount><t:ChildFolderCount>{children}</t:ChildFolderCount>{unread}</t:{el}>"#,
        escape(&f.id),
        escape(&f.class),
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
        let body: String = found.iter().map(|f| folder_xml(s, f)).collect();
        msgs.push(ok_msg(
            "FindFolder",
            &format!(r#"<m:RootFolder TotalItemsInView="{}" IncludesLastItemInRange="true"><t:Folders>{body}</t:Folders></m:RootFolder>"#, found.len()),
        ));
    }
    wrap("FindFolder", &msgs)
}

fn get_folder(s: &EwsState, mailbox: &str, op: &Elem) -> String {
    let msgs: Vec<String> = folder_ids(op, "FolderIds")
        .iter()
        .map(|fel| match resolve_folder(s, mailbox, fel) {
            Ok(f) => ok_msg(
                "GetFolder",
                &format!("<m:Folders>{}</m:Folders>", folder_xml(s, &f)),
            ),
            Err((code, text)) => err_msg("GetFolder", code, &text, ""),
        })
        .collect();
    wrap("GetFolder", &msgs)
}
