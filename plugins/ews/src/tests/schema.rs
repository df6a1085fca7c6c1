//! Every request the wire layer builds is valid against the EWS schema
//! (`../shared/oracles/ews/schema/ews-all.xsd`, checked with `xmllint`, as the simulator's
//! tests do; `apt-get install libxml2-utils`).

use super::*;
use crate::ops::{self, Change, Folder, Kind};
use crate::soap::Target;

/// Checks `envelope` against the EWS schema with xmllint; the error names it and what failed.
pub(super) fn validate(name: &str, envelope: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ews-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, envelope).unwrap();
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/oracles/ews/schema/ews-all.xsd"
    );
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&file)
        .output()
        .expect("xmllint runs (apt-get install libxml2-utils)");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{name}: {}\n{envelope}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn contact() -> syncbridge_sdk::types::mailbox::MailboxContact {
    use syncbridge_sdk::types::mailbox::*;
    MailboxContact {
        given_name: Some("Ann".into()),
        middle_name: Some("B".into()),
        surname: Some("Lee".into()),
        display_name: Some("Ann Lee".into()),
        company_name: Some("Fabrikam".into()),
        job_title: Some("CTO".into()),
        department: Some("IT".into()),
        emails: vec![syncbridge_sdk::types::EmailAddress {
            address: "ann@fabrikam.com".into(),
            name: None,
        }],
        phones: vec![
            Phone {
                kind: PhoneKind::Business,
                number: "1".into(),
            },
            Phone {
                kind: PhoneKind::Mobile,
                number: "2".into(),
            },
        ],
        addresses: vec![PostalAddress {
            kind: AddressKind::Home,
            street: Some("Main St 1".into()),
            city: Some("Oslo".into()),
            state: None,
            postal_code: Some("0150".into()),
            country: Some("Norway".into()),
        }],
        business_home_page: Some("https://fabrikam.com".into()),
        birthday: Some("1980-05-01".into()),
        notes: Some("n".into()),
        categories: vec!["A".into()],
        anchor: Some("x".into()),
    }
}

fn event() -> syncbridge_sdk::types::mailbox::Event {
    use syncbridge_sdk::types::mailbox::*;
    let zone = Zone {
        iana: "Europe/Berlin".into(),
        windows: Some("W. Europe Standard Time".into()),
    };
    Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Review".into()),
        start: EventTime {
            utc: "2026-03-03T08:00:00Z".into(),
            zone: Some(zone.clone()),
        },
        end: EventTime {
            utc: "2026-03-03T09:00:00Z".into(),
            zone: Some(zone.clone()),
        },
        all_day: false,
        show_as: ShowAs::Tentative,
        sensitivity: Sensitivity::Private,
        series: Some(Series {
            rrule: "FREQ=MONTHLY;INTERVAL=1;BYDAY=TU;BYSETPOS=1;COUNT=5".into(),
            zone,
            modified: vec![],
            deleted: vec![],
        }),
        organizer: None,
        attendees: vec![
            Participant {
                address: EmailAddress {
                    address: "bob@contoso.com".into(),
                    name: Some("Bob".into()),
                },
                role: AttendeeRole::Required,
                response: Response::None,
            },
            Participant {
                address: EmailAddress {
                    address: "room@contoso.com".into(),
                    name: None,
                },
                role: AttendeeRole::Resource,
                response: Response::None,
            },
        ],
        location: Some("Room 1".into()),
        categories: vec!["PSA".into()],
        body: Some(RichText {
            content: "<p>x</p>".into(),
            body_type: BodyType::Html,
        }),
        reminder_minutes: Some(15),
        anchor: Some("link".into()),
    }
}

fn todo() -> syncbridge_sdk::types::mailbox::Todo {
    use syncbridge_sdk::types::mailbox::*;
    Todo {
        subject: "Call".into(),
        body: None,
        start: Some(EventTime {
            utc: "2026-03-03T00:00:00Z".into(),
            zone: None,
        }),
        due: Some(EventTime {
            utc: "2026-03-05T00:00:00Z".into(),
            zone: None,
        }),
        status: syncbridge_sdk::types::TaskStatus::Completed,
        percent_complete: 100,
        completed: Some("2026-03-04T10:00:00Z".into()),
        categories: vec![],
        anchor: Some("t".into()),
    }
}

fn message() -> syncbridge_sdk::types::EmailMessage {
    use syncbridge_sdk::types::{EmailAddress, EmailMessage};
    let to = |a: &str, n: Option<&str>| EmailAddress {
        address: a.into(),
        name: n.map(str::to_owned),
    };
    EmailMessage {
        subject: Some("Quote".into()),
        from: Some(to("alice@contoso.com", Some("Alice"))),
        to: vec![
            to("dan@fabrikam.com", Some("Dan")),
            to("eve@fabrikam.com", None),
        ],
        cc: vec![to("bob@fabrikam.com", None)],
        body: Some("<p>x</p>".into()),
        body_is_html: true,
        sent: None,
        received: None,
        internet_message_id: Some("<q@contoso.com>".into()),
    }
}

#[test]
fn every_request_we_build_is_valid_against_the_ews_schema() {
    let imp = Target {
        url: "https://x".into(),
        version: "Exchange2013_SP1".into(),
        impersonate: Some("alice@contoso.com".into()),
        credential: "default".into(),
    };
    let own = Folder::Distinguished {
        id: "calendar",
        mailbox: Some("alice@contoso.com".into()),
    };
    let id = Folder::Id("AAMkAD".into());
    let strings = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ev_fields = strings(map::event::FIELDS);
    let c_fields = strings(map::contact::FIELDS);
    let t_fields = strings(map::todo::FIELDS);
    let mut cleared = contact();
    cleared.emails.clear();
    cleared.addresses.clear();
    cleared.job_title = None;
    let requests = [
        ("sync", ops::sync_folder_items(&own, Some("H4sI"), 512)),
        (
            "get-calendar",
            ops::get_item(Kind::Calendar, &["a".into(), "b".into()]),
        ),
        ("get-contacts", ops::get_item(Kind::Contacts, &["a".into()])),
        ("find-anchor", ops::find_by_anchor(&own, "link-1")),
        (
            "check-sent-items",
            ops::get_folder_ids(&Folder::Distinguished {
                id: "sentitems",
                mailbox: None,
            }),
        ),
        ("check-delegate", ops::get_folder_ids(&own)),
        ("find-page", ops::find_page(&id, 100, 50)),
        (
            "create-event",
            ops::create_item(&own, &[map::event::create_xml(&event()).unwrap()]),
        ),
        (
            "create-contact",
            ops::create_item(&id, &[map::contact::create_xml(&contact()).unwrap()]),
        ),
        (
            "create-todo",
            ops::create_item(&own, &[map::todo::create_xml(&todo()).unwrap()]),
        ),
        (
            "update-event",
            ops::update_item(&[Change {
                id: "a".into(),
                change_key: Some("k".into()),
                updates: map::event::update_xml(&event(), &ev_fields).unwrap(),
            }]),
        ),
        (
            "update-contact",
            ops::update_item(&[Change {
                id: "a".into(),
                change_key: None,
                updates: map::contact::update_xml(&contact(), &c_fields).unwrap(),
            }]),
        ),
        (
            "update-contact-cleared",
            ops::update_item(&[Change {
                id: "a".into(),
                change_key: None,
                updates: map::contact::update_xml(&cleared, &c_fields).unwrap(),
            }]),
        ),
        (
            "update-todo",
            ops::update_item(&[Change {
                id: "a".into(),
                change_key: None,
                updates: map::todo::update_xml(&todo(), &t_fields).unwrap(),
            }]),
        ),
        ("delete", ops::delete_item(&["a".into(), "b".into()])),
        (
            "find-folder",
            ops::find_folder(
                &Folder::Distinguished {
                    id: "publicfoldersroot",
                    mailbox: None,
                },
                "Customers",
            ),
        ),
        (
            "create-folder",
            ops::create_contacts_folder(&id, "Customers"),
        ),
        ("probe", ops::probe()),
        ("get-messages", ops::get_messages(&["a".into(), "b".into()])),
        (
            "send-message",
            ops::send_message(
                &Folder::Distinguished {
                    id: "sentitems",
                    mailbox: Some("alice@contoso.com".into()),
                },
                &map::message::create_xml(&message(), "alice@contoso.com").unwrap(),
            ),
        ),
        (
            "move-item",
            ops::move_item(&id, &["a".into()], "Exchange2013_SP1"),
        ),
        (
            "move-item-2007",
            ops::move_item(&id, &["a".into()], "Exchange2007_SP1"),
        ),
        (
            "find-undeliverable",
            ops::find_folder(
                &Folder::Distinguished {
                    id: "inbox",
                    mailbox: None,
                },
                crate::mail::UNDELIVERABLE,
            ),
        ),
        (
            "create-mail-folder",
            ops::create_mail_folder(
                &Folder::Distinguished {
                    id: "inbox",
                    mailbox: Some("alice@contoso.com".into()),
                },
                crate::mail::UNDELIVERABLE,
            ),
        ),
        (
            "get-occurrences",
            crate::series::get_occurrences("AAMkAD", 1, 51),
        ),
    ];
    let failures: Vec<String> = requests
        .iter()
        .filter_map(|(n, body)| validate(n, &soap::envelope(&imp, body)).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
