//! `contacts:mailbox=UPN`: the mailbox's default contact folder.
//!
//! Reads `GET /users/{upn}/contacts/delta` (the delta link is the cursor); each changed contact
//! is read again with `$expand=singleValueExtendedProperties(…)` for its anchor (delta queries
//! take no `$expand`). Phones: `businessPhones`, `homePhones`, `mobilePhone`; Graph contacts
//! have no fax or other number, so those are not written (a warning is logged).

use serde_json::{json, Map, Value};
use syncbridge_sdk::http::Method;
use syncbridge_sdk::types::mailbox::*;
use syncbridge_sdk::types::{PluginError, WriteAction, WriteOk};
use syncbridge_sdk::{log, url};

use super::*;

/// Canonical contact fields an update may name.
pub const FIELDS: &[&str] = &[
    "given_name",
    "middle_name",
    "surname",
    "display_name",
    "company_name",
    "job_title",
    "department",
    "emails",
    "phones",
    "addresses",
    "business_home_page",
    "birthday",
    "notes",
    "categories",
    "anchor",
];

/// One page of the contacts scope.
pub fn pull(
    cfg: &Config,
    mailbox: &str,
    mut cursor: DeltaCursor,
    max_items: u32,
) -> Result<MailboxPage, PluginError> {
    let root = user_root(cfg, mailbox);
    if cursor.link.is_none() {
        cursor = DeltaCursor {
            link: Some(format!("{root}/contacts/delta")),
            full: true,
            ..DeltaCursor::default()
        };
    }
    let link = cursor.link.clone().unwrap_or_default();
    let (values, next, more) = match read_delta(cfg, &link, max_items, true)? {
        DeltaRead::Gone => return Ok(restart_page()),
        DeltaRead::Page { values, link, more } => (values, link, more),
    };
    let mut items = Vec::new();
    for v in &values {
        let Some(id) = v["id"].as_str() else { continue };
        items.extend(if v.get("@removed").is_some() {
            vec![removed(id)]
        } else {
            by_id(cfg, mailbox, id)?
        });
    }
    Ok(delta_page(items, cursor, next, more))
}

fn item(v: &Value) -> MailboxItem {
    MailboxItem {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        version: version_of(v),
        removed: None,
        body: Some(MailboxBody::Contact(map_contact(v))),
    }
}

/// A contact by id (a removal when Graph no longer has it).
pub fn by_id(cfg: &Config, mailbox: &str, id: &str) -> Result<Vec<MailboxItem>, PluginError> {
    let url = format!(
        "{}/contacts/{}?$expand={}",
        user_root(cfg, mailbox),
        url::encode_path_segment(id),
        url::encode_query_value(&anchor_expand())
    );
    Ok(vec![match get_optional(&url)? {
        Some(v) => item(&v),
        None => removed(id),
    }])
}

/// Contacts whose anchor is `value`.
pub fn by_anchor(
    cfg: &Config,
    mailbox: &str,
    value: &str,
) -> Result<Vec<MailboxItem>, PluginError> {
    let url = format!(
        "{}/contacts?$filter={}&$expand={}",
        user_root(cfg, mailbox),
        anchor_filter(value),
        url::encode_query_value(&anchor_expand())
    );
    Ok(get_all(cfg, &url)?.iter().map(item).collect())
}

fn address(kind: AddressKind, v: &Value) -> Option<PostalAddress> {
    let a = PostalAddress {
        kind,
        street: text(v, "street"),
        city: text(v, "city"),
        state: text(v, "state"),
        postal_code: text(v, "postalCode"),
        country: text(v, "countryOrRegion"),
    };
    let empty = a.street.is_none()
        && a.city.is_none()
        && a.state.is_none()
        && a.postal_code.is_none()
        && a.country.is_none();
    (!empty).then_some(a)
}

fn address_json(a: Option<&PostalAddress>) -> Value {
    match a {
        Some(a) => json!({
            "street": a.street.clone().unwrap_or_default(),
            "city": a.city.clone().unwrap_or_default(),
            "state": a.state.clone().unwrap_or_default(),
            "postalCode": a.postal_code.clone().unwrap_or_default(),
            "countryOrRegion": a.country.clone().unwrap_or_default(),
        }),
        None => json!({}),
    }
}

/// A Graph contact as the canonical contact.
pub fn map_contact(v: &Value) -> MailboxContact {
    let mut phones: Vec<Phone> = Vec::new();
    let mut add = |kind: PhoneKind, n: String| phones.push(Phone { kind, number: n });
    for n in strings(v, "businessPhones") {
        add(PhoneKind::Business, n);
    }
    for n in strings(v, "homePhones") {
        add(PhoneKind::Home, n);
    }
    if let Some(n) = text(v, "mobilePhone") {
        add(PhoneKind::Mobile, n);
    }
    let addresses = [
        (AddressKind::Business, "businessAddress"),
        (AddressKind::Home, "homeAddress"),
        (AddressKind::Other, "otherAddress"),
    ]
    .into_iter()
    .filter_map(|(k, f)| address(k, &v[f]))
    .collect();
    MailboxContact {
        given_name: text(v, "givenName"),
        middle_name: text(v, "middleName"),
        surname: text(v, "surname"),
        display_name: text(v, "displayName"),
        company_name: text(v, "companyName"),
        job_title: text(v, "jobTitle"),
        department: text(v, "department"),
        emails: v["emailAddresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(email)
            .collect(),
        phones,
        addresses,
        business_home_page: text(v, "businessHomePage"),
        birthday: v["birthday"]
            .as_str()
            .and_then(|b| b.get(..10))
            .map(str::to_owned),
        notes: text(v, "personalNotes"),
        categories: strings(v, "categories"),
        anchor: anchor_of(v),
    }
}

/// The Graph JSON writing the fields of `op` (all for a create, the named ones for an update).
pub fn contact_json(c: &MailboxContact, op: &MailboxWriteOp) -> Result<Value, PluginError> {
    check_fields(op, FIELDS)?;
    let mut o = Map::new();
    let w = |f: &str| named(op, f);
    let s = |v: &Option<String>| json!(v.clone().unwrap_or_default());
    for (field, graph, value) in [
        ("given_name", "givenName", &c.given_name),
        ("middle_name", "middleName", &c.middle_name),
        ("surname", "surname", &c.surname),
        ("display_name", "displayName", &c.display_name),
        ("company_name", "companyName", &c.company_name),
        ("job_title", "jobTitle", &c.job_title),
        ("department", "department", &c.department),
        (
            "business_home_page",
            "businessHomePage",
            &c.business_home_page,
        ),
        ("notes", "personalNotes", &c.notes),
    ] {
        if w(field) {
            o.insert(graph.into(), s(value));
        }
    }
    if w("emails") {
        let e: Vec<Value> = c.emails.iter().take(3).map(email_json).collect();
        o.insert("emailAddresses".into(), json!(e));
    }
    if w("phones") {
        let of = |k: PhoneKind| -> Vec<String> {
            c.phones
                .iter()
                .filter(|p| p.kind == k)
                .map(|p| p.number.clone())
                .collect()
        };
        if let Some(p) = c
            .phones
            .iter()
            .find(|p| matches!(p.kind, PhoneKind::BusinessFax | PhoneKind::Other))
        {
            log::warn!(
                "Graph contacts have no {:?} number; {} is not written",
                p.kind,
                p.number
            );
        }
        o.insert("businessPhones".into(), json!(of(PhoneKind::Business)));
        o.insert("homePhones".into(), json!(of(PhoneKind::Home)));
        o.insert(
            "mobilePhone".into(),
            json!(of(PhoneKind::Mobile).into_iter().next().unwrap_or_default()),
        );
    }
    if w("addresses") {
        for (k, f) in [
            (AddressKind::Business, "businessAddress"),
            (AddressKind::Home, "homeAddress"),
            (AddressKind::Other, "otherAddress"),
        ] {
            o.insert(
                f.into(),
                address_json(c.addresses.iter().find(|a| a.kind == k)),
            );
        }
    }
    if w("birthday") {
        let b = match c.birthday.as_deref().filter(|b| !b.is_empty()) {
            Some(d) if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() => {
                json!(format!("{d}T00:00:00Z"))
            }
            Some(d) => {
                return Err(PluginError::invalid_field(
                    "birthday",
                    format!("{d:?} is not a YYYY-MM-DD date"),
                ))
            }
            None => Value::Null,
        };
        o.insert("birthday".into(), b);
    }
    if w("categories") {
        o.insert("categories".into(), json!(c.categories));
    }
    if w("anchor") && (op.action != WriteAction::Create || c.anchor.is_some()) {
        o.insert(
            "singleValueExtendedProperties".into(),
            anchor_property(c.anchor.as_deref()),
        );
    }
    Ok(Value::Object(o))
}

/// Applies one write to the mailbox's contacts.
pub fn write(cfg: &Config, mailbox: &str, op: &MailboxWriteOp) -> Result<WriteOk, PluginError> {
    let root = format!("{}/contacts", user_root(cfg, mailbox));
    let contact = || match &op.body {
        Some(MailboxBody::Contact(c)) => Ok(c),
        _ => Err(wrong_body("contact")),
    };
    match op.action {
        WriteAction::Create => {
            let body = contact_json(contact()?, op)?;
            Ok(write_ok(&send_write(Method::Post, &root, Some(&body))?, ""))
        }
        WriteAction::Update => {
            let id = target(op)?;
            let body = contact_json(contact()?, op)?;
            let url = format!("{root}/{}", url::encode_path_segment(id));
            Ok(write_ok(&send_write(Method::Patch, &url, Some(&body))?, id))
        }
        WriteAction::Delete => {
            let id = target(op)?;
            let url = format!("{root}/{}", url::encode_path_segment(id));
            match send_write(Method::Delete, &url, None) {
                Ok(_) | Err(PluginError::NotFound(_)) => Ok(WriteOk {
                    target_id: id.to_owned(),
                    version: None,
                }),
                Err(e) => Err(e),
            }
        }
        other => Err(unsupported_action(other)),
    }
}
