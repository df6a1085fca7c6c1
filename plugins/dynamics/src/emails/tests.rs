//! Tests of the `emails` scope: pure functions first, then the exported calls over a recorded
//! HTTP exchange.

use super::cursor::{Mark, Seen, MAX_SEEN};
use super::query::{first_page_url, lookup_url, pass_filter, row_url, EXPAND, SELECT};
use super::row::{addressed_to, email_item, recipients};
use super::time::{is_rfc3339, utc_key};
use super::write::{create_body, entity_id, html_of, joined, update_body};
use super::*;
use crate::tests::{invalid_fields, recorder, with_header, Log, API, CFG};
use crate::Dynamics;
use serde_json::json;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method as WitMethod, Request as WitRequest, Response as WitResponse,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};
use syncbridge_sdk::url::percent_encoding::percent_decode_str;

const MBX: &str = "ann@contoso.com";
const E1: &str = "7a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a61";
const E2: &str = "7a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a62";
const E3: &str = "7a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a63";
const INCOMING: &str = "emails:mailbox=ann@contoso.com,direction=incoming";
const OUTGOING: &str = "emails:mailbox=ann@contoso.com,direction=outgoing";

fn scope(direction: Direction) -> EmailScope {
    EmailScope {
        mailbox: MBX.into(),
        direction,
    }
}

fn email_row(id: &str, modified: &str, extra: Value) -> Value {
    let mut r = json!({
        "@odata.etag": "W/\"2001\"",
        "activityid": id,
        "subject": "Quote",
        "description": "<p>Hi</p>",
        "directioncode": false,
        "sender": "bob@fabrikam.com",
        "torecipients": "ann@contoso.com; carl@contoso.com;",
        "senton": "2026-01-02T03:00:00Z",
        "actualend": "2026-01-02T03:00:05Z",
        "messageid": "<m1@fabrikam.com>",
        "statecode": 1,
        "statuscode": 4,
        "modifiedon": modified,
        "email_activity_parties": [
            {"addressused": "bob@fabrikam.com", "participationtypemask": 1},
            {"addressused": "ANN@contoso.com", "participationtypemask": 2},
            {"addressused": "erin@contoso.com", "participationtypemask": 2},
            {"addressused": "dee@contoso.com", "participationtypemask": 3},
            {"addressused": null, "participationtypemask": 3}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn message(item: &Item) -> &EmailMessage {
    match &item.body {
        Some(ItemBody::EmailMessage(m)) => m,
        other => panic!("expected an e-mail message, got {other:?}"),
    }
}

fn addresses(list: &[EmailAddress]) -> Vec<&str> {
    list.iter().map(|a| a.address.as_str()).collect()
}

/// The decoded value of the query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| percent_decode_str(v).decode_utf8().unwrap().into_owned())
    })
}

fn msg() -> EmailMessage {
    EmailMessage {
        subject: Some("Quote".into()),
        from: Some(EmailAddress {
            address: " bob@fabrikam.com ".into(),
            name: Some("Bob".into()),
        }),
        to: vec![
            EmailAddress {
                address: "ann@contoso.com".into(),
                name: None,
            },
            EmailAddress {
                address: " ".into(),
                name: None,
            },
        ],
        cc: vec![EmailAddress {
            address: "dee@contoso.com".into(),
            name: None,
        }],
        body: Some("<p>Hi</p>".into()),
        body_is_html: true,
        sent: Some("2026-01-02T03:00:00Z".into()),
        received: Some("2026-01-02T03:00:05+01:00".into()),
        internet_message_id: Some("<m1@fabrikam.com>".into()),
    }
}

fn strings(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// scope

#[test]
fn scopes_parse_and_print() {
    let s = EmailScope::parse(" Emails: mailbox= Ann@Contoso.com ; direction=Incoming ").unwrap();
    assert_eq!(s, scope(Direction::Incoming));
    assert_eq!(s.to_string(), INCOMING);
    let s = EmailScope::parse("emails:direction=outgoing,mailbox=o'brien@contoso.com").unwrap();
    assert_eq!(
        (s.mailbox.as_str(), s.direction),
        ("o'brien@contoso.com", Direction::Outgoing)
    );
    assert!(EmailScope::names("emails:mailbox=x"));
    assert!(EmailScope::names(" E-Mails "));
    assert!(!EmailScope::names("mailboxes"));
    assert!(!EmailScope::names("emailserverprofiles:mailbox=x"));
}

#[test]
fn bad_scopes_name_the_grammar() {
    for bad in [
        "emails",
        "emails:direction=incoming",
        "emails:mailbox=,direction=incoming",
        "emails:mailbox=ann,direction=incoming",
        "emails:mailbox=ann@,direction=incoming",
        "emails:mailbox=@contoso.com,direction=incoming",
        "emails:mailbox=ann smith@contoso.com,direction=incoming",
        "emails:mailbox=<ann@contoso.com>,direction=incoming",
        "emails:mailbox=ann@contoso.com",
        "emails:mailbox=ann@contoso.com,direction=both",
        "emails:mailbox=ann@contoso.com,direction=incoming,folder=inbox",
        "emails:mailbox=ann@contoso.com,direction",
    ] {
        let e = EmailScope::parse(bad).unwrap_err();
        assert_eq!(invalid_fields(&e), ["scope"], "{bad}");
        assert!(e.describe().contains(GRAMMAR), "{bad}: {e:?}");
    }
    // Through the exports, before anything is sent.
    let never = |_: &WitRequest| -> Result<WitResponse, PluginError> { panic!("nothing is sent") };
    let e = with_http(never, || {
        exports::pull::<Dynamics>(
            CFG,
            PullRequest {
                scope: "emails:mailbox=ann@contoso.com,direction=sideways".into(),
                cursor: None,
                max_items: 10,
            },
        )
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    let e = with_http(never, || {
        exports::lookup::<Dynamics>(CFG, "emails:mailbox=x", vec![E1.into()])
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    let e = exports::push::<Dynamics>(CFG, "emails:colour=red", vec![]).unwrap_err();
    assert!(e.describe().contains(GRAMMAR), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// date-times

#[test]
fn date_times_are_checked() {
    assert_eq!(
        utc_key("2026-01-02T03:04:05Z"),
        Some(("2026-01-02T03:04:05", 0))
    );
    assert_eq!(
        utc_key("2026-01-02T03:04:05.25Z"),
        Some(("2026-01-02T03:04:05", 250_000_000))
    );
    assert!(utc_key("2026-01-02T03:04:05Z") < utc_key("2026-01-02T03:04:05.001Z"));
    assert!(utc_key("2026-01-02T03:04:05.999Z") < utc_key("2026-01-02T03:04:06Z"));
    assert_eq!(utc_key("2026-01-02T03:04:05+01:00"), None);
    assert!(is_rfc3339("2026-01-02T03:04:05+01:00"));
    assert!(is_rfc3339("2026-01-02T03:04:05.1234567Z"));
    for bad in [
        "",
        "2026-01-02",
        "2026-01-02 03:04:05Z",
        "2026-13-02T03:04:05Z",
        "2026-01-02T24:04:05Z",
        "2026-01-02T03:04:05",
        "2026-01-02T03:04:05.Z",
        "2026-01-02T03:04:05Z or 1 eq 1",
        "2026-01-02T03:04:05+0100",
        "２026-01-02T03:04:05Z",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
        assert_eq!(utc_key(bad), None, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// queries

#[test]
fn filters_select_the_scope_and_escape_the_address() {
    let o = EmailScope {
        mailbox: "o'brien@contoso.com".into(),
        direction: Direction::Incoming,
    };
    assert_eq!(
        pass_filter(&o, None),
        "directioncode eq false and (contains(torecipients,'o''brien@contoso.com') or email_activity_parties/any(p:p/addressused eq 'o''brien@contoso.com' and (p/participationtypemask eq 2 or p/participationtypemask eq 3)))"
    );
    assert!(pass_filter(&o, Some("2026-01-02T03:04:05Z"))
        .ends_with("participationtypemask eq 3))) and modifiedon ge 2026-01-02T03:04:05Z"));
    assert_eq!(
        pass_filter(&scope(Direction::Outgoing), None),
        "directioncode eq true and statuscode eq 6 and sender eq 'ann@contoso.com'"
    );

    let url = first_page_url(
        API,
        &scope(Direction::Incoming),
        Some("2026-01-02T03:04:05Z"),
    );
    assert!(url.starts_with(&format!("{API}/emails?$select={SELECT}&$expand=")));
    assert_eq!(param(&url, "$expand").as_deref(), Some(EXPAND));
    assert_eq!(
        param(&url, "$filter"),
        Some(pass_filter(
            &scope(Direction::Incoming),
            Some("2026-01-02T03:04:05Z")
        ))
    );
    assert_eq!(param(&url, "$orderby").as_deref(), Some("modifiedon asc"));
    assert!(
        !url.contains(' ') && !url.contains('\''),
        "the query is percent-encoded: {url}"
    );

    let url = lookup_url(API, &strings(&["<a'1@x>", "<b@x>"]));
    assert_eq!(
        param(&url, "$filter").as_deref(),
        Some("messageid eq '<a''1@x>' or messageid eq '<b@x>'")
    );
    assert_eq!(param(&url, "$orderby"), None);
    assert_eq!(
        row_url(API, E1),
        format!(
            "{API}/emails({E1})?$select={SELECT}&$expand=email_activity_parties%28%24select%3Daddressused%2Cparticipationtypemask%29"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// mapping

#[test]
fn rows_map_to_email_messages() {
    let item = email_item(&email_row(
        &E1.to_uppercase(),
        "2026-01-02T03:04:05Z",
        json!({}),
    ))
    .unwrap();
    assert_eq!(item.id, E1);
    assert_eq!(item.version.as_deref(), Some("W/\"2001\""));
    let m = message(&item);
    assert_eq!(m.subject.as_deref(), Some("Quote"));
    assert_eq!(m.from.as_ref().unwrap().address, "bob@fabrikam.com");
    assert_eq!(
        addresses(&m.to),
        ["ann@contoso.com", "carl@contoso.com", "erin@contoso.com"],
        "torecipients, then the To parties not in it"
    );
    assert_eq!(addresses(&m.cc), ["dee@contoso.com"]);
    assert_eq!(m.body.as_deref(), Some("<p>Hi</p>"));
    assert!(m.body_is_html);
    assert_eq!(m.sent.as_deref(), Some("2026-01-02T03:00:00Z"));
    assert_eq!(m.received.as_deref(), Some("2026-01-02T03:00:05Z"));
    assert_eq!(m.internet_message_id.as_deref(), Some("<m1@fabrikam.com>"));
    assert!(addressed_to(&item, "ann@contoso.com"));
    assert!(addressed_to(&item, "DEE@contoso.com"));
    assert!(!addressed_to(&item, "nn@contoso.com"));

    // Without the string columns, the parties; without parties, nothing.
    let item = email_item(&email_row(
        E1,
        "2026-01-02T03:04:05Z",
        json!({"sender": null, "torecipients": null, "description": null, "subject": " "}),
    ))
    .unwrap();
    let m = message(&item);
    assert_eq!(m.from.as_ref().unwrap().address, "bob@fabrikam.com");
    assert_eq!(addresses(&m.to), ["ANN@contoso.com", "erin@contoso.com"]);
    assert_eq!((m.subject.as_deref(), m.body.as_deref()), (None, None));
    let item = email_item(&json!({"activityid": E2})).unwrap();
    let m = message(&item);
    assert!(m.from.is_none() && m.to.is_empty() && m.cc.is_empty());
    assert!(!addressed_to(&item, MBX));
    assert!(email_item(&json!({"subject": "x"})).is_none());

    assert_eq!(
        addresses(&recipients(Some(" a@x.com ;;b@x.com; "))),
        ["a@x.com", "b@x.com"]
    );
    assert!(recipients(None).is_empty());
}

// ---------------------------------------------------------------------------------------------
// cursor

#[test]
fn cursors_round_trip() {
    let s = scope(Direction::Incoming);
    let c = Cursor {
        since: Some(Mark {
            at: "2026-01-02T03:04:05Z".into(),
            seen: vec![Seen {
                id: E1.into(),
                version: Some("W/\"2001\"".into()),
            }],
        }),
        next: Some(format!("{API}/emails?$skiptoken=x")),
        newest: None,
        ..Cursor::new(&s)
    };
    let raw = c.encode();
    assert!(raw.starts_with(r#"{"v":1,"mailbox":"ann@contoso.com","direction":"incoming","since":{"at":"2026-01-02T03:04:05Z","seen":[{"#), "{raw}");
    assert!(!raw.contains("newest"), "absent marks are left out: {raw}");
    assert_eq!(Cursor::decode(&raw, API, &s).unwrap(), c);
    assert_eq!(
        Cursor::decode(&Cursor::new(&s).encode(), API, &s).unwrap(),
        Cursor::new(&s)
    );
}

#[test]
fn foreign_or_broken_cursors_are_refused() {
    let s = scope(Direction::Incoming);
    let good = serde_json::to_value(Cursor::new(&s)).unwrap();
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c.to_string()
    };
    let mark = |at: &str, id: &str| json!({"at": at, "seen": [{"id": id, "version": null}]});
    for bad in [
        "not json".to_owned(),
        format!("{API}/emails?$skiptoken=1"),
        with("v", json!(2)),
        with("mailbox", json!("bob@contoso.com")),
        with("direction", json!("outgoing")),
        with("direction", json!("sideways")),
        with("colour", json!("red")),
        with("since", mark("2026-01-02T03:04:05Z) or (1 eq 1", E1)),
        with("since", mark("2026-01-02T03:04:05+01:00", E1)),
        with("newest", mark("2026-01-02T03:04:05Z", "x")),
        with(
            "next",
            json!("https://evil.example/api/data/v9.2/emails?x=1"),
        ),
        with("next", json!(format!("{API}/mailboxes?$skiptoken=1"))),
    ] {
        let e = Cursor::decode(&bad, API, &s).unwrap_err();
        assert_eq!(invalid_fields(&e), ["cursor"], "{bad}");
        assert!(e.describe().contains("full read"), "{bad}: {e:?}");
    }
    // Outgoing passes are full: a delta mark does not belong in their cursor.
    let o = scope(Direction::Outgoing);
    let mut c = Cursor::new(&o);
    c.since = Some(Mark {
        at: "2026-01-02T03:04:05Z".into(),
        seen: vec![],
    });
    assert!(Cursor::decode(&c.encode(), API, &o).is_err());
}

#[test]
fn marks_keep_the_newest_instant_and_its_rows() {
    let row = |id: &str, at: &str, etag: &str| json!({"activityid": id, "modifiedon": at, "@odata.etag": etag});
    let mut m = None;
    Mark::observe(&mut m, &row(E1, "2026-01-02T03:04:05Z", "W/\"1\""));
    Mark::observe(&mut m, &row(E2, "2026-01-02T03:04:04.900Z", "W/\"2\""));
    Mark::observe(&mut m, &row(E3, "2026-01-02T03:04:05Z", "W/\"3\""));
    Mark::observe(&mut m, &row(E3, "not a date", "W/\"4\""));
    let mark = m.clone().unwrap();
    assert_eq!(mark.at, "2026-01-02T03:04:05Z");
    assert_eq!(
        mark.seen.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [E1, E3]
    );
    assert!(mark.has_seen(&row(&E1.to_uppercase(), "2026-01-02T03:04:05Z", "W/\"1\"")));
    assert!(
        !mark.has_seen(&row(E1, "2026-01-02T03:04:05Z", "W/\"9\"")),
        "a changed row is given again"
    );
    assert!(!mark.has_seen(&row(E2, "2026-01-02T03:04:05Z", "W/\"2\"")));
    Mark::observe(&mut m, &row(E2, "2026-01-02T03:04:05.5Z", "W/\"5\""));
    let mark = m.clone().unwrap();
    assert_eq!(
        (mark.at.as_str(), mark.seen.len()),
        ("2026-01-02T03:04:05.5Z", 1)
    );
    // At most MAX_SEEN rows per instant.
    let mut m = None;
    for n in 0..MAX_SEEN + 5 {
        let id = format!("7a1c6a52-6a3f-4d1e-9a0b-{n:012}");
        Mark::observe(&mut m, &row(&id, "2026-01-02T03:04:05Z", "W/\"1\""));
    }
    assert_eq!(m.unwrap().seen.len(), MAX_SEEN);
}

// ---------------------------------------------------------------------------------------------
// write bodies

#[test]
fn created_emails_are_received_and_carry_their_parties() {
    let b = Value::Object(create_body(&msg()).unwrap());
    assert_eq!(
        b,
        json!({
            "subject": "Quote",
            "description": "<p>Hi</p>",
            "directioncode": false,
            "sender": "bob@fabrikam.com",
            "torecipients": "ann@contoso.com",
            "messageid": "<m1@fabrikam.com>",
            "actualend": "2026-01-02T03:00:05+01:00",
            "statecode": 1,
            "statuscode": 4,
            "email_activity_parties": [
                {"addressused": "bob@fabrikam.com", "participationtypemask": 1},
                {"addressused": "ann@contoso.com", "participationtypemask": 2},
                {"addressused": "dee@contoso.com", "participationtypemask": 3}
            ]
        })
    );
    assert!(
        b.get("senton").is_none(),
        "senton is read-only in Dataverse"
    );

    let bare = EmailMessage {
        subject: Some("x".repeat(900)),
        from: None,
        to: vec![],
        cc: vec![],
        body: None,
        body_is_html: false,
        sent: None,
        received: None,
        internet_message_id: None,
    };
    let b = create_body(&bare).unwrap();
    assert_eq!(b["subject"].as_str().unwrap().len(), 800);
    for k in [
        "description",
        "sender",
        "torecipients",
        "messageid",
        "actualend",
        "email_activity_parties",
    ] {
        assert!(!b.contains_key(k), "{k}");
    }

    let e = create_body(&EmailMessage {
        received: Some("yesterday".into()),
        ..msg()
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["received"]);
    let e = create_body(&EmailMessage {
        internet_message_id: Some(format!("<{}@x>", "a".repeat(320))),
        ..msg()
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["internet_message_id"]);
}

#[test]
fn bodies_are_html_and_recipients_fit_their_column() {
    let plain = EmailMessage {
        body: Some("a < b & \"c\"\r\nnext".into()),
        body_is_html: false,
        ..msg()
    };
    assert_eq!(
        html_of(&plain).as_deref(),
        Some("a &lt; b &amp; &quot;c&quot;<br>next")
    );
    assert_eq!(html_of(&msg()).as_deref(), Some("<p>Hi</p>"));
    assert_eq!(joined(&["a@x.com", "b@x.com"], 100), "a@x.com;b@x.com");
    assert_eq!(joined(&["a@x.com", "b@x.com"], 14), "a@x.com");
    assert_eq!(joined(&["a@x.com", "b@x.com"], 15), "a@x.com;b@x.com");
    assert_eq!(joined(&["long@x.com"], 5), "");
}

#[test]
fn updates_write_only_their_direction_s_fields() {
    let m = msg();
    let b = update_body(Direction::Incoming, &m, &strings(&["Subject", "body"])).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"subject": "Quote", "description": "<p>Hi</p>"})
    );
    let cleared = EmailMessage {
        body: None,
        ..msg()
    };
    let b = update_body(Direction::Incoming, &cleared, &strings(&["body"])).unwrap();
    assert_eq!(Value::Object(b), json!({"description": null}));
    let e = update_body(Direction::Incoming, &m, &strings(&["subject", "sent"])).unwrap_err();
    assert_eq!(invalid_fields(&e), ["sent"]);
    assert!(e.describe().contains("subject, body"), "{e:?}");

    let b = update_body(Direction::Outgoing, &m, &strings(&["sent"])).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"statecode": 1, "statuscode": 3, "actualend": "2026-01-02T03:00:00Z",
               "messageid": "<m1@fabrikam.com>"})
    );
    let no_id = EmailMessage {
        internet_message_id: None,
        ..msg()
    };
    let b = update_body(Direction::Outgoing, &no_id, &strings(&["sent"])).unwrap();
    assert!(!b.contains_key("messageid"));
    let unsent = EmailMessage {
        sent: None,
        ..msg()
    };
    let e = update_body(Direction::Outgoing, &unsent, &strings(&["sent"])).unwrap_err();
    assert_eq!(invalid_fields(&e), ["sent"]);
    let e = update_body(Direction::Outgoing, &m, &strings(&["subject"])).unwrap_err();
    assert_eq!(invalid_fields(&e), ["subject"]);
    assert!(e.describe().contains("writes sent"), "{e:?}");
    assert!(update_body(Direction::Outgoing, &m, &[])
        .unwrap()
        .is_empty());
}

#[test]
fn entity_ids_and_keys() {
    assert_eq!(
        entity_id(&format!("{API}/emails({})", E1.to_uppercase())).as_deref(),
        Some(E1)
    );
    assert_eq!(entity_id(&format!("{API}/emails(42)")), None);
    assert_eq!(entity_id("nonsense"), None);

    let keys = parse_keys(&strings(&[
        "messageid:<m1@x>",
        "MessageId: <m1@x> ",
        "messageid:<m2@x>",
        E1,
        &format!("id:{}", E2.to_uppercase()),
        E1,
    ]))
    .unwrap();
    assert_eq!(keys.message_ids, ["<m1@x>", "<m2@x>"]);
    assert_eq!(keys.ids, [E1, E2]);
    for bad in ["messageid:", "email:ann@contoso.com", "42", "id:"] {
        let e = parse_keys(&strings(&[bad])).unwrap_err();
        assert_eq!(invalid_fields(&e), ["keys"], "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// pull

fn pull(scope: &str, cursor: Option<&str>, answer: Value, log: &Log) -> Result<Page, PluginError> {
    let body = answer.to_string();
    with_http(recorder(log, move |_| Ok(response(200, &body))), || {
        exports::pull::<Dynamics>(
            CFG,
            PullRequest {
                scope: scope.into(),
                cursor: cursor.map(str::to_owned),
                max_items: 100,
            },
        )
    })
}

#[test]
fn incoming_pulls_are_full_then_deltas_from_the_newest_change() {
    let next = format!("{API}/emails?$select={SELECT}&$skiptoken=%3Ccookie%20page%3D%222%22/%3E");
    // First page of a full pass.
    let log = Log::default();
    let page = pull(
        INCOMING,
        None,
        json!({"value": [
            email_row(E1, "2026-01-02T03:04:05Z", json!({})),
            email_row(E2, "2026-01-02T03:04:06Z", json!({"torecipients": "joann@contoso.com",
                "email_activity_parties": []})),
        ], "@odata.nextLink": next}),
        &log,
    )
    .unwrap();
    {
        let log = log.borrow();
        assert_eq!(log[0].method, WitMethod::Get);
        assert_eq!(
            log[0].url,
            first_page_url(API, &scope(Direction::Incoming), None)
        );
        assert_eq!(log[0].header("Prefer"), Some("odata.maxpagesize=100"));
        assert_eq!(log[0].credential.as_deref(), Some("default"));
    }
    assert!(page.full && page.more);
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [E1],
        "joann@ matched contains() but is not the mailbox"
    );
    let c1 = page.cursor.unwrap();
    let parsed: Value = serde_json::from_str(&c1).unwrap();
    assert_eq!(parsed["next"], next.as_str());
    assert_eq!(parsed["newest"]["at"], "2026-01-02T03:04:06Z");
    assert!(parsed.get("since").is_none());

    // Last page: the cursor becomes a delta mark.
    let log = Log::default();
    let page = pull(
        INCOMING,
        Some(&c1),
        json!({"value": [email_row(E3, "2026-01-02T03:04:06Z", json!({"@odata.etag": "W/\"3003\""}))]}),
        &log,
    )
    .unwrap();
    assert_eq!(log.borrow()[0].url, next, "the next link is followed as is");
    assert!(page.full && !page.more);
    let c2 = page.cursor.unwrap();
    let parsed: Value = serde_json::from_str(&c2).unwrap();
    assert_eq!(
        parsed,
        json!({"v": 1, "mailbox": MBX, "direction": "incoming", "since": {
            "at": "2026-01-02T03:04:06Z",
            "seen": [{"id": E2, "version": "W/\"2001\""}, {"id": E3, "version": "W/\"3003\""}]}})
    );

    // A delta pass: modifiedon ge the mark, unchanged rows at the mark left out.
    let log = Log::default();
    let page = pull(
        INCOMING,
        Some(&c2),
        json!({"value": [
            email_row(E3, "2026-01-02T03:04:06Z", json!({"@odata.etag": "W/\"3003\""})),
            email_row(E1, "2026-01-02T03:05:00Z", json!({"@odata.etag": "W/\"4004\""})),
        ]}),
        &log,
    )
    .unwrap();
    assert_eq!(
        log.borrow()[0].url,
        first_page_url(
            API,
            &scope(Direction::Incoming),
            Some("2026-01-02T03:04:06Z")
        )
    );
    assert!(!page.full && !page.more);
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [E1]
    );
    let parsed: Value = serde_json::from_str(page.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(parsed["since"]["at"], "2026-01-02T03:05:00Z");

    // A delta pass that reads nothing keeps its mark.
    let log = Log::default();
    let page = pull(INCOMING, Some(&c2), json!({"value": []}), &log).unwrap();
    assert!(!page.full);
    assert_eq!(page.cursor.as_deref(), Some(c2.as_str()));
}

#[test]
fn outgoing_pulls_are_always_full() {
    let next = format!("{API}/emails?$skiptoken=2");
    let log = Log::default();
    let row = email_row(
        E1,
        "2026-01-02T03:04:05Z",
        json!({"directioncode": true, "statuscode": 6, "sender": MBX,
               "torecipients": "bob@fabrikam.com", "email_activity_parties": []}),
    );
    let page = pull(
        OUTGOING,
        None,
        json!({"value": [row.clone()], "@odata.nextLink": next}),
        &log,
    )
    .unwrap();
    assert_eq!(
        param(&log.borrow()[0].url, "$filter").as_deref(),
        Some("directioncode eq true and statuscode eq 6 and sender eq 'ann@contoso.com'")
    );
    assert!(page.full && page.more);
    assert_eq!(
        page.items.len(),
        1,
        "outgoing e-mail is not addressed to the mailbox"
    );
    let c = page.cursor.unwrap();
    let parsed: Value = serde_json::from_str(&c).unwrap();
    assert_eq!(
        parsed,
        json!({"v": 1, "mailbox": MBX, "direction": "outgoing", "next": next})
    );
    let page = pull(OUTGOING, Some(&c), json!({"value": [row]}), &log).unwrap();
    assert!(page.full && !page.more && page.cursor.is_none());
}

#[test]
fn pulls_refuse_foreign_links_and_cursors() {
    let log = Log::default();
    let e = pull(
        INCOMING,
        None,
        json!({"value": [], "@odata.nextLink": format!("{API}/contacts?$skiptoken=1")}),
        &log,
    )
    .unwrap_err();
    assert_eq!(e.class(), "remote", "{e:?}");
    let never = |_: &WitRequest| -> Result<WitResponse, PluginError> { panic!("nothing is sent") };
    let other = Cursor::new(&scope(Direction::Outgoing)).encode();
    for cursor in ["{", other.as_str()] {
        let e = with_http(never, || {
            exports::pull::<Dynamics>(
                CFG,
                PullRequest {
                    scope: INCOMING.into(),
                    cursor: Some(cursor.into()),
                    max_items: 10,
                },
            )
        })
        .unwrap_err();
        assert_eq!(invalid_fields(&e), ["cursor"], "{cursor}");
    }
}

// ---------------------------------------------------------------------------------------------
// lookup

#[test]
fn lookups_query_message_ids_and_get_ids() {
    let log = Log::default();
    let items = with_http(
        recorder(&log, |r| {
            Ok(if r.url.contains("$filter") {
                response(
                    200,
                    &json!({"value": [email_row(E1, "2026-01-02T03:04:05Z", json!({}))]})
                        .to_string(),
                )
            } else if r.url.contains(E1) {
                response(200, &email_row(E1, "2026-01-02T03:04:05Z", json!({})).to_string())
            } else {
                response(
                    404,
                    r#"{"error":{"code":"0x80040217","message":"email With Id = x Does Not Exist"}}"#,
                )
            })
        }),
        || {
            exports::lookup::<Dynamics>(
                CFG,
                OUTGOING,
                strings(&["messageid:<m1@fabrikam.com>", E1, E2]),
            )
        },
    )
    .unwrap();
    assert_eq!(items.len(), 1, "found once, the unknown id absent");
    assert_eq!(
        message(&items[0]).internet_message_id.as_deref(),
        Some("<m1@fabrikam.com>")
    );
    let log = log.borrow();
    assert_eq!(log.len(), 3);
    assert_eq!(
        param(&log[0].url, "$filter").as_deref(),
        Some("messageid eq '<m1@fabrikam.com>'")
    );
    assert_eq!(log[1].url, row_url(API, E1));
    assert_eq!(log[2].url, row_url(API, E2));
}

// ---------------------------------------------------------------------------------------------
// push

fn op(op_id: &str, action: WriteAction, target: Option<&str>, fields: &[&str]) -> WriteOp {
    WriteOp {
        op_id: op_id.into(),
        action,
        target_id: target.map(str::to_owned),
        body: Some(ItemBody::EmailMessage(msg())),
        fields: strings(fields),
    }
}

#[test]
fn incoming_push_creates_updates_and_deletes() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |r| {
            Ok(match r.method {
                WitMethod::Post => with_header(
                    response(
                        201,
                        &json!({"@odata.etag": "W/\"5005\"", "activityid": E3.to_uppercase()})
                            .to_string(),
                    ),
                    "OData-EntityId",
                    &format!("{API}/emails({E3})"),
                ),
                WitMethod::Patch => response(
                    200,
                    &json!({"@odata.etag": "W/\"6006\"", "activityid": E1}).to_string(),
                ),
                WitMethod::Delete if r.url.contains(E2) => response(404, ""),
                _ => response(204, ""),
            })
        }),
        || {
            exports::push::<Dynamics>(
                CFG,
                INCOMING,
                vec![
                    op("c", WriteAction::Create, None, &[]),
                    op("u", WriteAction::Update, Some(E1), &["subject"]),
                    op("d", WriteAction::Delete, Some(E1), &[]),
                    op("gone", WriteAction::Delete, Some(E2), &[]),
                    op("x", WriteAction::Deactivate, Some(E1), &[]),
                    op("r", WriteAction::Reactivate, Some(E1), &[]),
                    op("bad", WriteAction::Update, Some("42"), &["subject"]),
                    op("sent", WriteAction::Update, Some(E1), &["sent"]),
                ],
            )
        },
    )
    .unwrap();
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        (E3, Some("W/\"5005\""))
    );
    let ok = results[1].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        (E1, Some("W/\"6006\""))
    );
    assert_eq!(results[2].outcome.as_ref().unwrap().target_id, E1);
    assert_eq!(
        results[3].outcome.as_ref().unwrap().target_id,
        E2,
        "already gone"
    );
    for r in &results[4..6] {
        let e = r.outcome.as_ref().unwrap_err();
        assert_eq!(e.class(), "unsupported", "{r:?}");
        assert!(e.describe().contains("deletes incoming e-mail"), "{e:?}");
    }
    assert_eq!(
        invalid_fields(results[6].outcome.as_ref().unwrap_err()),
        ["target-id"]
    );
    assert_eq!(
        invalid_fields(results[7].outcome.as_ref().unwrap_err()),
        ["sent"]
    );

    let log = log.borrow();
    assert_eq!(log.len(), 4, "only valid writes are sent");
    let post = &log[0];
    assert_eq!(post.method, WitMethod::Post);
    assert_eq!(post.url, format!("{API}/emails?$select=activityid"));
    assert_eq!(post.header("Prefer"), Some("return=representation"));
    assert_eq!(post.body, Some(Value::Object(create_body(&msg()).unwrap())));
    let patch = &log[1];
    assert_eq!(patch.method, WitMethod::Patch);
    assert_eq!(patch.url, format!("{API}/emails({E1})?$select=activityid"));
    assert_eq!(patch.header("If-Match"), Some("*"));
    assert_eq!(patch.body, Some(json!({"subject": "Quote"})));
    assert_eq!(log[2].method, WitMethod::Delete);
    assert_eq!(log[2].url, format!("{API}/emails({E1})"));
    assert!(log
        .iter()
        .all(|s| s.credential.as_deref() == Some("default")));
}

#[test]
fn a_create_answered_with_204_takes_the_entity_id_header() {
    let results = with_http(
        |_| {
            Ok(with_header(
                with_header(
                    response(204, ""),
                    "OData-EntityId",
                    &format!("{API}/emails({E2})"),
                ),
                "ETag",
                "W/\"7007\"",
            ))
        },
        || exports::push::<Dynamics>(CFG, INCOMING, vec![op("c", WriteAction::Create, None, &[])]),
    )
    .unwrap();
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        (E2, Some("W/\"7007\""))
    );
    // Neither: the e-mail exists, but its id is unknown.
    let results = with_http(
        |_| Ok(response(204, "")),
        || exports::push::<Dynamics>(CFG, INCOMING, vec![op("c", WriteAction::Create, None, &[])]),
    )
    .unwrap();
    let e = results[0].outcome.as_ref().unwrap_err();
    assert_eq!(e.class(), "remote");
    assert!(e.describe().contains("message id"), "{e:?}");
    // Dataverse's refusal is classified.
    let results = with_http(
        |_| {
            Ok(response(
                400,
                r#"{"error":{"code":"0x80044331","message":"A validation error occurred."}}"#,
            ))
        },
        || exports::push::<Dynamics>(CFG, INCOMING, vec![op("c", WriteAction::Create, None, &[])]),
    )
    .unwrap();
    assert_eq!(results[0].outcome.as_ref().unwrap_err().class(), "invalid");
}

#[test]
fn outgoing_push_only_marks_sent() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            Ok(with_header(response(204, ""), "ETag", "W/\"8008\""))
        }),
        || {
            exports::push::<Dynamics>(
                CFG,
                OUTGOING,
                vec![
                    op("s", WriteAction::Update, Some(E1), &["sent"]),
                    op("subj", WriteAction::Update, Some(E1), &["subject"]),
                    op("c", WriteAction::Create, None, &[]),
                    op("d", WriteAction::Delete, Some(E1), &[]),
                    op("x", WriteAction::Deactivate, Some(E1), &[]),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(
        results[0].outcome.as_ref().unwrap().version.as_deref(),
        Some("W/\"8008\"")
    );
    assert_eq!(
        invalid_fields(results[1].outcome.as_ref().unwrap_err()),
        ["subject"]
    );
    for r in &results[2..] {
        let e = r.outcome.as_ref().unwrap_err();
        assert_eq!(e.class(), "unsupported", "{r:?}");
        assert!(e.describe().contains("`sent`"), "{e:?}");
    }
    let log = log.borrow();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, WitMethod::Patch);
    assert_eq!(log[0].url, format!("{API}/emails({E1})?$select=activityid"));
    assert_eq!(log[0].header("If-Match"), Some("*"));
    assert_eq!(
        log[0].body,
        Some(
            json!({"statecode": 1, "statuscode": 3, "actualend": "2026-01-02T03:00:00Z",
                    "messageid": "<m1@fabrikam.com>"})
        )
    );
}
