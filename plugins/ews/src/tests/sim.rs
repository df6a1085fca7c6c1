//! The connector against the EWS simulator (`tests/sim`), over real HTTP on loopback: the
//! native stand-in for the host sends each request with a small HTTP/1.1 client and adds Basic
//! credentials for the slot it names, as the host would.

use super::*;
use base64::Engine;
use std::collections::HashMap;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Response as WitResponse;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{send_loopback, with_http};
use syncbridge_sdk::types::mailbox::*;
use syncbridge_sdk::types::{Outcome, WriteAction};
use syncbridge_sim::{FaultRule, Scenarios, Seed, Services, SimConfig, Simulator};

/// A running simulator with its runtime.
pub struct Sim {
    pub sim: Simulator,
    _rt: tokio::runtime::Runtime,
}

const SEED: &str = r#"{"ews": {
  "accounts": [{"email": "svc@contoso.com", "password": "svc-pw", "canImpersonate": true, "hasMailbox": false},
               {"email": "alice@contoso.com", "password": "alice-pw", "displayName": "Alice Wong"},
               {"email": "bob@contoso.com", "password": "bob-pw"}],
  "items": {"alice@contoso.com": [{"folder": "contacts",
    "xml": "<t:Contact xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><t:GivenName>Ann</t:GivenName><t:CompanyName>Fabrikam</t:CompanyName><t:EmailAddresses><t:Entry Key=\"EmailAddress1\">ann@fabrikam.com</t:Entry></t:EmailAddresses><t:Surname>Lee</t:Surname></t:Contact>"}]}
}}"#;

pub fn start() -> Sim {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(Simulator::start(SimConfig {
            services: Services {
                ews: true,
                ..Services::NONE
            },
            seed: Some(Seed::from_json(SEED).unwrap()),
            ..SimConfig::all()
        }))
        .unwrap();
    Sim { sim, _rt: rt }
}

/// The host stand-in: credential slots → Basic user:password.
pub fn host(
    slots: &[(&str, &str, &str)],
) -> impl FnMut(&WitRequest) -> Result<WitResponse, PluginError> + 'static {
    let slots: HashMap<String, String> = slots
        .iter()
        .map(|(slot, user, pw)| {
            (
                slot.to_string(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
                ),
            )
        })
        .collect();
    move |r| {
        Ok(send_loopback(
            r,
            r.credential
                .as_ref()
                .and_then(|c| slots.get(c))
                .map(String::as_str),
        ))
    }
}

pub fn cfg(sim: &Sim, extra: &str) -> String {
    format!(
        r#"{{"ews_url":"{}","impersonate":true,"mailbox":"alice@contoso.com"{extra}}}"#,
        sim.sim.ews_url()
    )
}

pub const SVC: (&str, &str, &str) = ("default", "svc@contoso.com", "svc-pw");

fn pull_all(
    cfg: &str,
    scope: &str,
    cursor: Option<String>,
) -> (Vec<MailboxItem>, Option<String>, bool) {
    let mut items = Vec::new();
    let mut cursor = cursor;
    let mut full = false;
    loop {
        let page = exports::pull_mailbox::<Ews>(
            cfg,
            PullRequest {
                scope: scope.into(),
                cursor: cursor.clone(),
                max_items: 2,
            },
        )
        .unwrap();
        items.extend(page.items);
        cursor = page.cursor;
        full |= page.full;
        if !page.more {
            return (items, cursor, full);
        }
    }
}

fn new_contact(anchor: &str) -> MailboxContact {
    MailboxContact {
        given_name: Some("Pavel".into()),
        middle_name: None,
        surname: Some("Bansky".into()),
        display_name: Some("Pavel Bansky".into()),
        company_name: Some("Contoso".into()),
        job_title: Some("Buyer".into()),
        department: None,
        emails: vec![syncbridge_sdk::types::EmailAddress {
            address: "pavel@contoso.com".into(),
            name: None,
        }],
        phones: vec![Phone {
            kind: PhoneKind::Business,
            number: "+47 1234".into(),
        }],
        addresses: vec![],
        business_home_page: None,
        birthday: None,
        notes: Some("from the PSA".into()),
        categories: vec!["PSA".into()],
        anchor: Some(anchor.into()),
    }
}

#[test]
fn contacts_round_trip_through_the_simulator() {
    let sim = start();
    let cfg = cfg(&sim, "");
    let scope = "contacts:mailbox=alice@contoso.com";
    with_http(host(&[SVC]), || {
        let (items, cursor, full) = pull_all(&cfg, scope, None);
        assert!(full);
        assert_eq!(items.len(), 1);
        let Some(MailboxBody::Contact(c)) = &items[0].body else {
            panic!()
        };
        assert_eq!(
            (
                c.given_name.as_deref(),
                c.company_name.as_deref(),
                c.emails[0].address.as_str()
            ),
            (Some("Ann"), Some("Fabrikam"), "ann@fabrikam.com")
        );

        // Create with the anchor, find it by the anchor, change two fields, delete.
        let op =
            |action, target: Option<&str>, body: MailboxContact, fields: &[&str]| MailboxWriteOp {
                op_id: "op".into(),
                action,
                target_id: target.map(str::to_owned),
                body: Some(MailboxBody::Contact(body)),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            };
        let r = exports::push_mailbox::<Ews>(
            &cfg,
            scope,
            vec![op(WriteAction::Create, None, new_contact("link-42"), &[])],
        )
        .unwrap();
        let id = r[0].outcome.as_ref().unwrap().target_id.clone();
        let found = exports::lookup_mailbox::<Ews>(
            &cfg,
            scope,
            vec!["anchor:link-42".into(), "anchor:nobody".into()],
        )
        .unwrap();
        assert_eq!(
            found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            [id.as_str()]
        );
        let Some(MailboxBody::Contact(c)) = &found[0].body else {
            panic!()
        };
        assert_eq!(
            (c.notes.as_deref(), c.phones.len(), c.anchor.as_deref()),
            (Some("from the PSA"), 1, Some("link-42"))
        );

        let (changed, cursor, full) = pull_all(&cfg, scope, cursor);
        assert!(!full);
        assert_eq!(
            changed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            [id.as_str()]
        );

        let mut edit = new_contact("link-42");
        edit.job_title = Some("Head of buying".into());
        edit.company_name = None;
        edit.given_name = Some("NOT WRITTEN".into());
        let r = exports::push_mailbox::<Ews>(
            &cfg,
            scope,
            vec![op(
                WriteAction::Update,
                Some(&id),
                edit,
                &["job_title", "company_name"],
            )],
        )
        .unwrap();
        assert!(r[0].outcome.is_ok(), "{:?}", r[0].outcome);
        let Some(MailboxBody::Contact(c)) =
            exports::lookup_mailbox::<Ews>(&cfg, scope, vec![format!("id:{id}")])
                .unwrap()
                .remove(0)
                .body
        else {
            panic!()
        };
        assert_eq!(
            (
                c.job_title.as_deref(),
                c.company_name.as_deref(),
                c.given_name.as_deref()
            ),
            (Some("Head of buying"), None, Some("Pavel"))
        );

        let r = exports::push_mailbox::<Ews>(
            &cfg,
            scope,
            vec![op(WriteAction::Delete, Some(&id), new_contact("x"), &[])],
        )
        .unwrap();
        assert!(r[0].outcome.is_ok());
        let (changed, _, _) = pull_all(&cfg, scope, cursor);
        assert!(
            changed
                .iter()
                .any(|i| i.id == id && i.removed == Some(syncbridge_sdk::types::Removal::Deleted)),
            "{changed:?}"
        );
    });
}

#[test]
fn a_series_with_a_modified_and_a_deleted_occurrence_reads_back_whole() {
    let sim = start();
    let cfg = cfg(&sim, "");
    let scope = "calendar:mailbox=alice@contoso.com,past=30,future=60";
    syncbridge_sdk::testing::set_now_ms(1_767_225_600_000); // 2026-01-01
    with_http(host(&[SVC]), || {
        let zone = Zone {
            iana: "Europe/Berlin".into(),
            windows: None,
        };
        let ev = Event {
            kind: EventKind::SeriesMaster,
            series_id: None,
            original_start: None,
            subject: Some("Weekly".into()),
            start: EventTime {
                utc: "2025-12-02T08:00:00Z".into(),
                zone: Some(zone.clone()),
            },
            end: EventTime {
                utc: "2025-12-02T09:00:00Z".into(),
                zone: Some(zone.clone()),
            },
            all_day: false,
            show_as: syncbridge_sdk::types::ShowAs::Busy,
            sensitivity: syncbridge_sdk::types::Sensitivity::Private,
            series: Some(Series {
                rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=20".into(),
                zone,
                modified: vec![],
                deleted: vec![],
            }),
            organizer: None,
            attendees: vec![],
            location: None,
            categories: vec![],
            body: None,
            reminder_minutes: None,
            anchor: Some("appt-1".into()),
        };
        let r = exports::push_mailbox::<Ews>(
            &cfg,
            scope,
            vec![MailboxWriteOp {
                op_id: "c".into(),
                action: WriteAction::Create,
                target_id: None,
                body: Some(MailboxBody::Event(ev)),
                fields: vec![],
            }],
        )
        .unwrap();
        let id = r[0].outcome.as_ref().unwrap().target_id.clone();
        // Someone moves the 2nd occurrence and deletes the 3rd (Outlook would, through EWS).
        let target = Config::target(
            &serde_json::from_str::<Config>(&cfg).unwrap(),
            "alice@contoso.com",
        )
        .unwrap();
        let occ = |i: u32| {
            format!(r#"<t:OccurrenceItemId RecurringMasterId="{id}" InstanceIndex="{i}"/>"#)
        };
        let upd = format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>{}<t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:CalendarItem><t:Subject>Moved</t:Subject></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>2025-12-10T13:00:00Z</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>2025-12-10T14:00:00Z</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#,
            occ(2)
        );
        assert!(soap::single(&soap::call(&target, &upd).unwrap()).is_ok());
        let del = format!(
            r#"<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>{}</m:ItemIds></m:DeleteItem>"#,
            occ(3)
        );
        assert!(soap::single(&soap::call(&target, &del).unwrap()).is_ok());

        let (items, _, _) = pull_all(&cfg, scope, None);
        assert_eq!(items.len(), 1, "only the master: {items:?}");
        let Some(MailboxBody::Event(ev)) = &items[0].body else {
            panic!()
        };
        assert_eq!(
            (ev.kind, ev.sensitivity, ev.anchor.as_deref()),
            (
                EventKind::SeriesMaster,
                syncbridge_sdk::types::Sensitivity::Private,
                Some("appt-1")
            )
        );
        let s = ev.series.as_ref().unwrap();
        assert_eq!(s.zone.iana, "Europe/Berlin");
        assert!(
            s.rrule.starts_with("FREQ=WEEKLY;INTERVAL=1;BYDAY=TU") && s.rrule.ends_with("COUNT=20"),
            "{}",
            s.rrule
        );
        assert_eq!(s.modified.len(), 1);
        assert_eq!(
            (
                s.modified[0].original_start.as_str(),
                s.modified[0].start.utc.as_str(),
                s.modified[0].subject.as_deref()
            ),
            (
                "2025-12-09T08:00:00Z",
                "2025-12-10T13:00:00Z",
                Some("Moved")
            )
        );
        assert_eq!(s.deleted, ["2025-12-16T08:00:00Z"]);
    });
}

/// A weekly Berlin series of 8 from Tuesday 2025-12-02 08:00Z, its third occurrence deleted.
fn weekly_series(modified: Vec<OccurrenceChange>) -> Event {
    let zone = berlin();
    Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Weekly".into()),
        start: in_berlin("2025-12-02T08:00:00Z"),
        end: in_berlin("2025-12-02T09:00:00Z"),
        all_day: false,
        show_as: syncbridge_sdk::types::ShowAs::Busy,
        sensitivity: syncbridge_sdk::types::Sensitivity::Normal,
        series: Some(Series {
            rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=8".into(),
            zone,
            modified,
            deleted: vec!["2025-12-16T08:00:00Z".into()],
        }),
        organizer: None,
        attendees: vec![],
        location: None,
        categories: vec![],
        body: None,
        reminder_minutes: None,
        anchor: None,
    }
}

fn berlin() -> Zone {
    Zone {
        iana: "Europe/Berlin".into(),
        windows: None,
    }
}

fn in_berlin(utc: &str) -> EventTime {
    EventTime {
        utc: utc.into(),
        zone: Some(berlin()),
    }
}

/// The second occurrence (2025-12-09) moved to Thursday and renamed.
fn moved_second() -> OccurrenceChange {
    OccurrenceChange {
        original_start: "2025-12-09T08:00:00Z".into(),
        id: None,
        start: in_berlin("2025-12-11T10:00:00Z"),
        end: in_berlin("2025-12-11T11:00:00Z"),
        subject: Some("Moved by the PSA".into()),
        location: None,
        body: None,
        show_as: syncbridge_sdk::types::ShowAs::Tentative,
    }
}

fn push_event(
    cfg: &str,
    scope: &str,
    action: WriteAction,
    id: Option<String>,
    ev: Event,
) -> String {
    let r = exports::push_mailbox::<Ews>(
        cfg,
        scope,
        vec![MailboxWriteOp {
            op_id: "op".into(),
            action,
            target_id: id,
            fields: if action == WriteAction::Update {
                vec!["series".into()]
            } else {
                vec![]
            },
            body: Some(MailboxBody::Event(ev)),
        }],
    )
    .unwrap();
    match &r[0].outcome {
        Ok(w) => w.target_id.clone(),
        Err(e) => panic!("{e:?}"),
    }
}

fn read_series(cfg: &str, scope: &str) -> Series {
    let (items, _, _) = pull_all(cfg, scope, None);
    let Some(MailboxBody::Event(back)) = &items[0].body else {
        panic!("{items:?}")
    };
    back.series.clone().unwrap()
}

#[test]
fn a_series_is_written_with_its_exceptions() {
    let sim = start();
    let cfg = cfg(&sim, "");
    let scope = "calendar:mailbox=alice@contoso.com,past=30,future=60";
    syncbridge_sdk::testing::set_now_ms(1_767_225_600_000); // 2026-01-01
    with_http(host(&[SVC]), || {
        push_event(
            &cfg,
            scope,
            WriteAction::Create,
            None,
            weekly_series(vec![moved_second()]),
        );
        let s = read_series(&cfg, scope);
        assert_eq!(s.deleted, ["2025-12-16T08:00:00Z"]);
        assert_eq!(s.modified.len(), 1);
        let m = &s.modified[0];
        assert_eq!(
            (
                m.original_start.as_str(),
                m.start.utc.as_str(),
                m.subject.as_deref(),
                m.show_as
            ),
            (
                "2025-12-09T08:00:00Z",
                "2025-12-11T10:00:00Z",
                Some("Moved by the PSA"),
                syncbridge_sdk::types::ShowAs::Tentative
            )
        );
    });
}

#[test]
fn a_moved_occurrence_the_series_no_longer_lists_is_put_back() {
    let sim = start();
    let cfg = cfg(&sim, "");
    let scope = "calendar:mailbox=alice@contoso.com,past=30,future=60";
    syncbridge_sdk::testing::set_now_ms(1_767_225_600_000); // 2026-01-01
    with_http(host(&[SVC]), || {
        let id = push_event(
            &cfg,
            scope,
            WriteAction::Create,
            None,
            weekly_series(vec![moved_second()]),
        );
        // The source takes the move back: the series lists no modified occurrence any more.
        push_event(
            &cfg,
            scope,
            WriteAction::Update,
            Some(id.clone()),
            weekly_series(vec![]),
        );
        let s = read_series(&cfg, scope);
        assert!(
            s.modified.is_empty(),
            "an occurrence back in place is no exception: {:?}",
            s.modified
        );
        assert_eq!(s.deleted, ["2025-12-16T08:00:00Z"]);
        // It is where the series puts it, named as the series, busy.
        let (items, _, _) = pull_all(&cfg, &format!("{scope},series=occurrences"), None);
        let second = items
            .iter()
            .find(|i| i.id == format!("{id}#2025-12-09"))
            .unwrap_or_else(|| panic!("no occurrence of 2025-12-09 in {items:?}"));
        let Some(MailboxBody::Event(ev)) = &second.body else {
            panic!("{second:?}")
        };
        assert_eq!(
            (
                ev.start.utc.as_str(),
                ev.end.utc.as_str(),
                ev.subject.as_deref(),
                ev.show_as
            ),
            (
                "2025-12-09T08:00:00Z",
                "2025-12-09T09:00:00Z",
                Some("Weekly"),
                syncbridge_sdk::types::ShowAs::Busy
            )
        );
        // A series that still lists it leaves it moved (and an update writes it again).
        push_event(
            &cfg,
            scope,
            WriteAction::Update,
            Some(id),
            weekly_series(vec![moved_second()]),
        );
        assert_eq!(read_series(&cfg, scope).modified.len(), 1);
    });
}

#[test]
fn throttling_waits_as_long_as_exchange_asks() {
    let sim = start();
    sim.sim
        .add_fault(FaultRule::sequence("/EWS/*", &[503]).with_retry_after("2.5"))
        .unwrap();
    let cfg = cfg(&sim, "");
    let e = with_http(host(&[SVC]), || {
        exports::pull_mailbox::<Ews>(
            &cfg,
            PullRequest {
                scope: "tasks:mailbox=alice@contoso.com".into(),
                cursor: None,
                max_items: 5,
            },
        )
    })
    .unwrap_err();
    match e {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(2500)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn autodiscover_against_the_simulator() {
    let sim = start();
    let cfg = format!(
        r#"{{"autodiscover_url":"{}/autodiscover/autodiscover.svc","mailbox":"alice@contoso.com","impersonate":true}}"#,
        sim.sim.base_url()
    );
    let page = with_http(host(&[SVC]), || {
        exports::pull_mailbox::<Ews>(
            &cfg,
            PullRequest {
                scope: "contacts:mailbox=alice@contoso.com".into(),
                cursor: None,
                max_items: 5,
            },
        )
    })
    .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        syncbridge_sdk::testing::state::get("ews:url"),
        Some(sim.sim.ews_url())
    );
}

fn failed(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .filter(|f| f.outcome == Outcome::Failed)
        .map(|f| {
            (
                f.check.clone(),
                format!(
                    "{} | {}",
                    f.cause.clone().unwrap_or_default(),
                    f.remedy.clone().unwrap_or_default()
                ),
            )
        })
        .collect()
}

#[test]
fn test_connection_names_each_cause_and_its_remedy() {
    let sim = start();
    let cfg = cfg(&sim, "");
    let run = |slots: &[(&str, &str, &str)], scenarios: Scenarios| {
        sim.sim.set_scenarios(scenarios);
        with_http(host(slots), || {
            exports::test_connection::<Ews>(&cfg).unwrap()
        })
    };
    let ok = run(&[SVC], Scenarios::default());
    assert!(failed(&ok).is_empty(), "{:?}", failed(&ok));
    assert!(ok
        .iter()
        .any(|f| f.check == "impersonation:alice@contoso.com" && f.outcome == Outcome::Ok));

    let cases: [(&str, Scenarios, &str, &str); 5] = [
        (
            "wrong password",
            Scenarios {
                wrong_password: true,
                ..Default::default()
            },
            "credentials",
            "password is wrong",
        ),
        (
            "mfa",
            Scenarios {
                mfa_required: true,
                ..Default::default()
            },
            "credentials",
            "app password",
        ),
        (
            "basic disabled",
            Scenarios {
                basic_disabled: true,
                ..Default::default()
            },
            "credentials",
            "Basic authentication is disabled",
        ),
        (
            "no impersonation right",
            Scenarios {
                impersonation_not_granted: true,
                ..Default::default()
            },
            "impersonation:alice@contoso.com",
            "ApplicationImpersonation",
        ),
        (
            "mailbox mismatch",
            Scenarios {
                mailbox_address_mismatch: true,
                ..Default::default()
            },
            "mailbox:alice@contoso.com",
            "primary SMTP address",
        ),
    ];
    for (name, scenario, check, words) in cases {
        let f = failed(&run(&[SVC], scenario));
        assert!(
            f.iter().any(|(c, text)| c == check && text.contains(words)),
            "{name}: {f:?}"
        );
    }
    // A wrong password entered for the service account, without any scenario.
    let f = failed(&run(
        &[("default", "svc@contoso.com", "nope")],
        Scenarios::default(),
    ));
    assert!(
        f.iter()
            .any(|(c, t)| c == "credentials" && t.contains("password")),
        "{f:?}"
    );
}

#[test]
fn a_mailbox_with_its_own_credential_is_opened_as_itself() {
    let sim = start();
    let cfg = cfg(&sim, r#","mailbox_credentials":{"bob@contoso.com":"bob"}"#);
    let page = with_http(host(&[SVC, ("bob", "bob@contoso.com", "bob-pw")]), || {
        exports::pull_mailbox::<Ews>(
            &cfg,
            PullRequest {
                scope: "contacts:mailbox=bob@contoso.com".into(),
                cursor: None,
                max_items: 5,
            },
        )
    });
    assert!(page.is_ok(), "{page:?}");
    // Without the slot, bob's own credential is missing: refused as auth.
    let e = with_http(host(&[SVC]), || {
        exports::pull_mailbox::<Ews>(
            &cfg,
            PullRequest {
                scope: "contacts:mailbox=bob@contoso.com".into(),
                cursor: None,
                max_items: 5,
            },
        )
    })
    .unwrap_err();
    assert_eq!(e.class(), "auth", "{e:?}");
}

#[test]
fn public_contacts_are_read_with_find_item_every_pass() {
    let sim = start();
    let scope = "public-contacts:folder=Customers/Contoso";
    let cfg_no = cfg(&sim, "");
    let e = with_http(host(&[SVC]), || {
        exports::pull_mailbox::<Ews>(
            &cfg_no,
            PullRequest {
                scope: scope.into(),
                cursor: None,
                max_items: 5,
            },
        )
    })
    .unwrap_err();
    assert!(
        e.describe().contains("create_public_folders"),
        "{}",
        e.describe()
    );
    let cfg = cfg(&sim, r#","create_public_folders":true"#);
    with_http(host(&[SVC]), || {
        let writes: Vec<MailboxWriteOp> = (0..3)
            .map(|i| MailboxWriteOp {
                op_id: i.to_string(),
                action: WriteAction::Create,
                target_id: None,
                body: Some(MailboxBody::Contact(new_contact(&format!("p{i}")))),
                fields: vec![],
            })
            .collect();
        let r = exports::push_mailbox::<Ews>(&cfg, scope, writes).unwrap();
        assert!(r.iter().all(|r| r.outcome.is_ok()), "{r:?}");
        let (items, cursor, full) = pull_all(&cfg, scope, None);
        assert!(full && cursor.is_none());
        assert_eq!(items.len(), 3);
        let Some(MailboxBody::Contact(c)) = &items[0].body else {
            panic!()
        };
        assert_eq!(c.notes.as_deref(), Some("from the PSA"));
    });
    let requests = sim.sim.requests();
    assert!(requests.total > 0);
}

#[test]
fn test_connection_opens_the_test_mailboxes_and_asks_autodiscover() {
    let sim = start();
    let autodiscover = sim
        .sim
        .ews_url()
        .replace("/EWS/Exchange.asmx", "/autodiscover/autodiscover.svc");
    let cfg = cfg(
        &sim,
        &format!(r#","test_mailboxes":["bob@contoso.com"],"autodiscover_url":"{autodiscover}""#),
    );
    let run = |scenarios: Scenarios| {
        sim.sim.set_scenarios(scenarios);
        with_http(host(&[SVC]), || {
            exports::test_connection::<Ews>(&cfg).unwrap()
        })
    };
    let ok = run(Scenarios::default());
    assert!(failed(&ok).is_empty(), "{:?}", failed(&ok));
    for check in [
        "impersonation:bob@contoso.com",
        "autodiscover:alice@contoso.com",
        "endpoint",
        "credentials",
    ] {
        assert!(
            ok.iter()
                .any(|f| f.check == check && f.outcome == Outcome::Ok),
            "{check}: {ok:?}"
        );
    }
    let denied = failed(&run(Scenarios {
        impersonation_not_granted: true,
        ..Default::default()
    }));
    assert!(
        denied
            .iter()
            .any(|(c, t)| c == "impersonation:bob@contoso.com"
                && t.contains("ApplicationImpersonation")),
        "{denied:?}"
    );
}

#[test]
fn a_wrong_virtual_directory_is_named() {
    let sim = start();
    let url = sim.sim.ews_url().replace("/EWS/", "/Exch/");
    let cfg = format!(r#"{{"ews_url":"{url}","impersonate":true,"mailbox":"alice@contoso.com"}}"#);
    let f = failed(&with_http(host(&[SVC]), || {
        exports::test_connection::<Ews>(&cfg).unwrap()
    }));
    assert!(
        f.iter()
            .any(|(c, t)| c == "endpoint" && t.contains("virtual directory")),
        "{f:?}"
    );
}
