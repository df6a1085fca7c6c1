//! Canonical item bodies as flat field maps, for diffs, provenance and hashes.

use std::collections::BTreeMap;
use syncbridge_model::{BodyType, EventTime, ItemBody, RichText};

/// Field name → value; a missing or empty value is "blank".
pub type FieldMap = BTreeMap<String, String>;

fn put(map: &mut FieldMap, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(name.to_owned(), v.clone());
    }
}

/// Flattens a body into named fields. Kinds without a mapping here yield a
/// single `body` field holding their debug form, so they still diff correctly.
pub fn flatten(body: &ItemBody) -> FieldMap {
    let mut m = FieldMap::new();
    match body {
        ItemBody::Contact(c) => {
            put(&mut m, "first_name", &c.first_name);
            put(&mut m, "last_name", &c.last_name);
            put(&mut m, "display_name", &c.display_name);
            put(&mut m, "title", &c.title);
            put(&mut m, "email", &c.email);
            put(&mut m, "phone", &c.phone);
            put(&mut m, "mobile", &c.mobile);
            put(&mut m, "company", &c.company.as_ref().map(|r| r.id.clone()));
            put(&mut m, "site", &c.site.as_ref().map(|r| r.id.clone()));
            if !c.contact_types.is_empty() {
                let ids: Vec<&str> = c.contact_types.iter().map(|t| t.id.as_str()).collect();
                m.insert("contact_types".into(), ids.join(","));
            }
            for a in &c.extra {
                m.insert(format!("extra.{}", a.name), a.value.clone());
            }
        }
        ItemBody::Event(e) => {
            put(&mut m, "subject", &e.subject);
            m.insert("start".into(), event_time(&e.start));
            m.insert("end".into(), event_time(&e.end));
            m.insert("all_day".into(), e.all_day.to_string());
            m.insert("show_as".into(), format!("{:?}", e.show_as));
            m.insert("sensitivity".into(), format!("{:?}", e.sensitivity));
            put_json(&mut m, "series", &e.series);
            put(
                &mut m,
                "organizer",
                &e.organizer.as_ref().map(|o| o.address.clone()),
            );
            put_list(&mut m, "attendees", &e.attendees);
            put(&mut m, "location", &e.location);
            put_joined(&mut m, "categories", &e.categories);
            put(&mut m, "body", &e.body.as_ref().map(rich_text));
            put(
                &mut m,
                "reminder_minutes",
                &e.reminder_minutes.map(|r| r.to_string()),
            );
            put(&mut m, "anchor", &e.anchor);
        }
        ItemBody::MailboxContact(c) => {
            put(&mut m, "given_name", &c.given_name);
            put(&mut m, "middle_name", &c.middle_name);
            put(&mut m, "surname", &c.surname);
            put(&mut m, "display_name", &c.display_name);
            put(&mut m, "company_name", &c.company_name);
            put(&mut m, "job_title", &c.job_title);
            put(&mut m, "department", &c.department);
            let emails: Vec<&str> = c.emails.iter().map(|e| e.address.as_str()).collect();
            if !emails.is_empty() {
                m.insert("emails".into(), emails.join(","));
            }
            put_list(&mut m, "phones", &c.phones);
            put_list(&mut m, "addresses", &c.addresses);
            put(&mut m, "business_home_page", &c.business_home_page);
            put(&mut m, "birthday", &c.birthday);
            put(&mut m, "notes", &c.notes);
            put_joined(&mut m, "categories", &c.categories);
            put(&mut m, "anchor", &c.anchor);
        }
        ItemBody::Todo(t) => {
            m.insert("subject".into(), t.subject.clone());
            put(&mut m, "body", &t.body.as_ref().map(rich_text));
            put(&mut m, "start", &t.start.as_ref().map(event_time));
            put(&mut m, "due", &t.due.as_ref().map(event_time));
            m.insert("status".into(), format!("{:?}", t.status));
            m.insert("percent_complete".into(), t.percent_complete.to_string());
            put(&mut m, "completed", &t.completed);
            put_joined(&mut m, "categories", &t.categories);
            put(&mut m, "anchor", &t.anchor);
        }
        ItemBody::EmailMessage(e) => {
            put(&mut m, "subject", &e.subject);
            put(&mut m, "from", &e.from.as_ref().map(|a| a.address.clone()));
            let addresses = |list: &[syncbridge_model::EmailAddress]| -> Vec<String> {
                list.iter().map(|a| a.address.clone()).collect()
            };
            put_joined(&mut m, "to", &addresses(&e.to));
            put_joined(&mut m, "cc", &addresses(&e.cc));
            let body = e.body.as_ref().map(|b| {
                if e.body_is_html {
                    format!("html:{b}")
                } else {
                    b.clone()
                }
            });
            put(&mut m, "body", &body);
            put(&mut m, "sent", &e.sent);
            put(&mut m, "received", &e.received);
            // Named as the match key that finds a message already tracked (`messageid:<id>`).
            put(&mut m, "messageid", &e.internet_message_id);
        }
        other => {
            m.insert("body".into(), format!("{other:?}"));
        }
    }
    m
}

/// `utc` with the zone in brackets, e.g. `2026-11-23T08:00:00Z [Europe/Berlin]`.
fn event_time(t: &EventTime) -> String {
    match &t.zone {
        Some(zone) => format!("{} [{}]", t.utc, zone.iana),
        None => t.utc.clone(),
    }
}

/// HTML bodies are marked, so a change of body type is a change.
fn rich_text(t: &RichText) -> String {
    match t.body_type {
        BodyType::Text => t.content.clone(),
        BodyType::Html => format!("html:{}", t.content),
    }
}

fn put_joined(map: &mut FieldMap, name: &str, values: &[String]) {
    if !values.is_empty() {
        map.insert(name.to_owned(), values.join(","));
    }
}

/// Compound values as compact JSON (stable: serde keeps field order).
fn put_json<T: serde::Serialize>(map: &mut FieldMap, name: &str, value: &Option<T>) {
    if let Some(v) = value {
        map.insert(name.to_owned(), to_json(v));
    }
}

fn put_list<T: serde::Serialize>(map: &mut FieldMap, name: &str, values: &[T]) {
    if !values.is_empty() {
        map.insert(name.to_owned(), to_json(&values));
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Model records are plain data (string keys, no maps of other keys): serialising them cannot fail.
    serde_json::to_string(value).expect("model records serialise to JSON")
}

/// Whether a value counts as blank (absent or only whitespace).
pub fn is_blank(value: Option<&String>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncbridge_model::{Event, EventKind, Sensitivity, ShowAs, Zone};

    fn event() -> Event {
        let zone = Some(Zone {
            iana: "Europe/Berlin".into(),
            windows: Some("W. Europe Standard Time".into()),
        });
        Event {
            kind: EventKind::Single,
            series_id: None,
            original_start: None,
            subject: Some("Review".into()),
            start: EventTime {
                utc: "2026-11-23T08:00:00Z".into(),
                zone: zone.clone(),
            },
            end: EventTime {
                utc: "2026-11-23T09:00:00Z".into(),
                zone,
            },
            all_day: false,
            show_as: ShowAs::Busy,
            sensitivity: Sensitivity::Normal,
            series: None,
            organizer: None,
            attendees: Vec::new(),
            location: None,
            categories: vec!["PSA".into()],
            body: Some(RichText {
                content: "<p>x</p>".into(),
                body_type: BodyType::Html,
            }),
            reminder_minutes: Some(15),
            anchor: Some("link-1".into()),
        }
    }

    #[test]
    fn events_flatten_to_the_documented_field_names() {
        let m = flatten(&ItemBody::Event(event()));
        assert_eq!(m["start"], "2026-11-23T08:00:00Z [Europe/Berlin]");
        assert_eq!(m["body"], "html:<p>x</p>");
        assert_eq!(m["reminder_minutes"], "15");
        assert_eq!(m["anchor"], "link-1");
        assert_eq!(m["categories"], "PSA");
        assert!(
            !m.contains_key("location"),
            "absent values are blank, not empty strings"
        );
    }

    #[test]
    fn a_moved_zone_or_body_type_is_a_change() {
        let a = flatten(&ItemBody::Event(event()));
        let mut e = event();
        e.start.zone = Some(Zone {
            iana: "Europe/London".into(),
            windows: None,
        });
        e.body.as_mut().unwrap().body_type = BodyType::Text;
        let b = flatten(&ItemBody::Event(e));
        assert_ne!(a["start"], b["start"]);
        assert_ne!(a["body"], b["body"]);
    }

    #[test]
    fn an_email_message_flattens_to_its_fields_with_the_message_id_as_matched() {
        use syncbridge_model::{EmailAddress, EmailMessage};
        let a = |s: &str| EmailAddress {
            address: s.into(),
            name: Some("N".into()),
        };
        let m = flatten(&ItemBody::EmailMessage(EmailMessage {
            subject: Some("Hi".into()),
            from: Some(a("x@f.com")),
            to: vec![a("ann@c.com"), a("bob@c.com")],
            cc: Vec::new(),
            body: Some("<p>b</p>".into()),
            body_is_html: true,
            sent: None,
            received: Some("2026-11-20T09:00:00Z".into()),
            internet_message_id: Some("<m@f.com>".into()),
        }));
        assert_eq!(m["to"], "ann@c.com,bob@c.com");
        assert_eq!(m["from"], "x@f.com");
        assert_eq!(m["body"], "html:<p>b</p>");
        assert_eq!(m["messageid"], "<m@f.com>");
        assert!(!m.contains_key("cc") && !m.contains_key("sent"));
    }
}
