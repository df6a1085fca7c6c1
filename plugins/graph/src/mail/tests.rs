use super::*;
use crate::Graph;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method, Request as WitRequest,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};
use syncbridge_sdk::types::ItemKind;
use syncbridge_sdk::Connector;

const CFG: &str = r#"{"graph_url":"http://graph.test/v1.0/"}"#;
const INBOX: &str = "inbox:mailbox=ann@contoso.com";
const OUTBOX: &str = "outbox:mailbox=ann@contoso.com";
const CHECK: &str = "outbox:mailbox=ann@contoso.com,check=true";
const USER: &str = "http://graph.test/v1.0/users/ann%40contoso.com";

fn header<'a>(r: &'a WitRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn pull(scope: &str, cursor: Option<&str>) -> PullRequest {
    PullRequest {
        scope: scope.into(),
        cursor: cursor.map(str::to_owned),
        max_items: 25,
    }
}

fn addr(a: &str) -> EmailAddress {
    EmailAddress {
        address: a.into(),
        name: None,
    }
}

/// Addresses as comparable pairs (the WIT records have no `PartialEq`).
fn pairs(list: &[EmailAddress]) -> Vec<(&str, Option<&str>)> {
    list.iter()
        .map(|a| (a.address.as_str(), a.name.as_deref()))
        .collect()
}

fn message() -> EmailMessage {
    EmailMessage {
        subject: Some("Quote 42".into()),
        from: None,
        to: vec![EmailAddress {
            address: "bob@fabrikam.com".into(),
            name: Some("Bob".into()),
        }],
        cc: vec![addr("cy@fabrikam.com")],
        body: Some("<p>Hello</p>".into()),
        body_is_html: true,
        sent: None,
        received: None,
        internet_message_id: None,
    }
}

fn op(id: &str, action: WriteAction, body: Option<ItemBody>) -> WriteOp {
    WriteOp {
        op_id: id.into(),
        action,
        target_id: (action != WriteAction::Create).then(|| "sent:x".into()),
        body,
        fields: Vec::new(),
    }
}

/// A received message as Graph returns it with [`MESSAGE_SELECT`].
fn graph_message(id: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.message",
        "@odata.etag": "W/\"CQAAABYAAAARn2vd\"",
        "id": id,
        "subject": "Re: Quote 42",
        "from": {"emailAddress": {"name": "Bob", "address": "bob@fabrikam.com"}},
        "toRecipients": [
            {"emailAddress": {"name": "Ann", "address": "ann@contoso.com"}},
            {"emailAddress": {"address": "sales@contoso.com"}}
        ],
        "ccRecipients": [{"emailAddress": {"name": "", "address": "cy@fabrikam.com"}}],
        "body": {"contentType": "html", "content": "<p>Thanks</p>"},
        "sentDateTime": "2026-03-02T09:59:58Z",
        "receivedDateTime": "2026-03-02T10:00:01Z",
        "internetMessageId": "<abc@fabrikam.com>"
    })
}

#[test]
fn scopes_parse_with_a_required_mailbox_and_refuse_unknown_keys() {
    assert_eq!(
        MailScope::of(INBOX).unwrap().unwrap(),
        MailScope::Inbox {
            mailbox: "ann@contoso.com".into()
        }
    );
    assert_eq!(
        MailScope::of(" Outbox:mailbox=ann@contoso.com")
            .unwrap()
            .unwrap(),
        MailScope::Outbox {
            mailbox: "ann@contoso.com".into(),
            check: false,
        }
    );
    // `check=true`: a pull checks the outgoing app instead of reading nothing.
    assert_eq!(
        MailScope::of(CHECK).unwrap().unwrap(),
        MailScope::Outbox {
            mailbox: "ann@contoso.com".into(),
            check: true,
        }
    );
    for (bad, words) in [
        (
            "inbox:mailbox=a@b.c,check=true",
            "check= is an option of outbox",
        ),
        (
            "outbox:mailbox=a@b.c,check=1",
            "check=\"1\" is neither true nor false",
        ),
    ] {
        let e = MailScope::of(bad).unwrap().unwrap_err();
        assert!(
            e.class() == "invalid" && e.describe().contains(words),
            "{bad}: {e:?}"
        );
    }
    for other in ["users", "mailboxes", "calendar:mailbox=a@b.c", "contacts"] {
        assert!(MailScope::of(other).is_none(), "{other}");
    }
    for bad in [
        "inbox",
        "inbox:mailbox=",
        "outbox:mailbox=ann",
        "inbox:mailbox=a@b.c/x",
    ] {
        let e = MailScope::of(bad).unwrap().unwrap_err();
        assert_eq!(e.class(), "invalid", "{bad}");
        assert!(e.describe().contains("names no mailbox"), "{bad}: {e:?}");
        assert!(e.describe().contains("inbox:mailbox=<address>"), "{bad}");
    }
    let e = MailScope::of("inbox:mailbox=a@b.c,folder=sent")
        .unwrap()
        .unwrap_err();
    assert!(
        e.describe()
            .contains("unknown scope option \"folder=sent\""),
        "{e:?}"
    );
    assert!(e.describe().contains("outbox:mailbox=<address>"));
    // Served through the core api, not mailbox-api.
    assert_eq!(Graph::mailbox_scopes(), ["calendar", "contacts", "tasks"]);
    let d = exports::describe::<Graph>();
    assert!(d.reads.iter().any(|k| matches!(k, ItemKind::EmailMessage)));
    assert!(matches!(d.writes[..], [ItemKind::EmailMessage]));
}

#[test]
fn messages_map_with_recipients_dates_and_removals() {
    let item = to_item(&graph_message("m1")).unwrap();
    assert_eq!(item.id, "m1");
    assert_eq!(item.version.as_deref(), Some("W/\"CQAAABYAAAARn2vd\""));
    assert!(item.removed.is_none());
    let Some(ItemBody::EmailMessage(m)) = item.body else {
        panic!("not a message: {item:?}")
    };
    assert_eq!(m.subject.as_deref(), Some("Re: Quote 42"));
    assert_eq!(
        pairs(m.from.as_slice()),
        [("bob@fabrikam.com", Some("Bob"))]
    );
    assert_eq!(
        pairs(&m.to),
        [
            ("ann@contoso.com", Some("Ann")),
            ("sales@contoso.com", None)
        ]
    );
    assert_eq!(
        pairs(&m.cc),
        [("cy@fabrikam.com", None)],
        "a blank name is none"
    );
    assert_eq!(m.body.as_deref(), Some("<p>Thanks</p>"));
    assert!(m.body_is_html);
    assert_eq!(m.sent.as_deref(), Some("2026-03-02T09:59:58Z"));
    assert_eq!(m.received.as_deref(), Some("2026-03-02T10:00:01Z"));
    assert_eq!(m.internet_message_id.as_deref(), Some("<abc@fabrikam.com>"));

    // Without an etag the changeKey is the version; a text body is not HTML.
    let mut v = graph_message("m2");
    v.as_object_mut().unwrap().remove("@odata.etag");
    v["changeKey"] = json!("CQAAABYAAAARn2ve");
    v["body"] = json!({"contentType": "text", "content": ""});
    let item = to_item(&v).unwrap();
    assert_eq!(item.version.as_deref(), Some("CQAAABYAAAARn2ve"));
    let Some(ItemBody::EmailMessage(m)) = item.body else {
        panic!()
    };
    assert!(!m.body_is_html && m.body.is_none());

    let gone = to_item(&json!({"@odata.type": "#microsoft.graph.message", "id": "m3", "@removed": {"reason": "deleted"}})).unwrap();
    assert!(matches!(gone.removed, Some(Removal::Deleted)));
    assert!(gone.body.is_none() && gone.version.is_none());
    assert!(to_item(&json!({"subject": "no id"})).is_none());
}

#[test]
fn the_send_mail_body_carries_subject_body_and_recipients() {
    let body = send_mail_body(&message()).unwrap();
    assert_eq!(
        body,
        json!({
            "message": {
                "subject": "Quote 42",
                "body": {"contentType": "html", "content": "<p>Hello</p>"},
                "toRecipients": [{"emailAddress": {"address": "bob@fabrikam.com", "name": "Bob"}}],
                "ccRecipients": [{"emailAddress": {"address": "cy@fabrikam.com"}}]
            },
            "saveToSentItems": true
        })
    );
    let plain = EmailMessage {
        body_is_html: false,
        subject: None,
        cc: Vec::new(),
        ..message()
    };
    let body = send_mail_body(&plain).unwrap();
    assert_eq!(body["message"]["body"]["contentType"], "text");
    assert!(body["message"].get("subject").is_none());
    assert_eq!(body["message"]["ccRecipients"], json!([]));

    let none = EmailMessage {
        to: Vec::new(),
        cc: Vec::new(),
        ..message()
    };
    match send_mail_body(&none).unwrap_err() {
        PluginError::Invalid(i) => {
            assert_eq!(i.fields[0].field, "to");
            assert!(i.message.contains("no recipients"));
        }
        other => panic!("{other:?}"),
    }
    let bad = EmailMessage {
        cc: vec![addr("not-an-address")],
        ..message()
    };
    match send_mail_body(&bad).unwrap_err() {
        PluginError::Invalid(i) => assert_eq!(i.fields[0].field, "cc"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_outbox_sends_creates_and_refuses_everything_else() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let results = with_http(
        move |r| {
            let body: Value =
                serde_json::from_slice(r.body.as_deref().unwrap_or_default()).unwrap();
            s.borrow_mut().push((r.method, r.url.clone(), body));
            assert_eq!(r.credential.as_deref(), Some("default"));
            Ok(response(202, ""))
        },
        || {
            exports::push::<Graph>(
                CFG,
                OUTBOX,
                vec![
                    op(
                        "op-1",
                        WriteAction::Create,
                        Some(ItemBody::EmailMessage(message())),
                    ),
                    op(
                        "op-2",
                        WriteAction::Update,
                        Some(ItemBody::EmailMessage(message())),
                    ),
                    op("op-3", WriteAction::Delete, None),
                    op("op-4", WriteAction::Create, None),
                    op(
                        "op-5",
                        WriteAction::Create,
                        Some(ItemBody::EmailMessage(EmailMessage {
                            to: Vec::new(),
                            cc: Vec::new(),
                            ..message()
                        })),
                    ),
                ],
            )
        },
    )
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "only the valid create is sent: {seen:?}");
    assert_eq!(seen[0].0, Method::Post);
    assert_eq!(seen[0].1, format!("{USER}/sendMail"));
    assert_eq!(seen[0].2, send_mail_body(&message()).unwrap());
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(results[0].op_id, "op-1");
    assert_eq!(ok.target_id, "sent:op-1");
    assert_eq!(ok.version, None);
    for r in &results[1..3] {
        match &r.outcome {
            Err(PluginError::Unsupported(m)) => assert_eq!(m, SENT_IS_FINAL),
            other => panic!("{}: {other:?}", r.op_id),
        }
    }
    assert_eq!(results[3].outcome.as_ref().unwrap_err().class(), "invalid");
    match &results[4].outcome {
        Err(PluginError::Invalid(i)) => assert_eq!(i.fields[0].field, "to"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn send_errors_are_classified_and_a_403_names_mail_send() {
    let send = |status: u16, body: &'static str| {
        with_http(
            move |_| Ok(response(status, body)),
            || {
                exports::push::<Graph>(
                    CFG,
                    OUTBOX,
                    vec![op(
                        "op-1",
                        WriteAction::Create,
                        Some(ItemBody::EmailMessage(message())),
                    )],
                )
            },
        )
        .unwrap()
        .remove(0)
        .outcome
        .unwrap_err()
    };
    let e = send(
        403,
        r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#,
    );
    assert_eq!(e.class(), "forbidden");
    assert!(e.describe().contains("Mail.Send") && e.describe().contains("ErrorAccessDenied"));
    let e = send(
        404,
        r#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"x"}}"#,
    );
    assert_eq!(e.class(), "forbidden");
    assert!(e.describe().contains("Exchange Online licence"));
    assert_eq!(send(401, "{}").class(), "auth");
    assert_eq!(
        send(400, r#"{"error":{"code":"ErrorInvalidRecipients"}}"#).class(),
        "invalid"
    );
    assert_eq!(send(503, "").class(), "transient");
    // The host answers 429 as throttled; the rest of the batch is not sent.
    let sent = Rc::new(RefCell::new(0));
    let n = sent.clone();
    let results = with_http(
        move |_| {
            *n.borrow_mut() += 1;
            Err(PluginError::Throttled(syncbridge_sdk::types::Throttle {
                retry_after_ms: Some(3000),
                message: "429".into(),
            }))
        },
        || {
            exports::push::<Graph>(
                CFG,
                OUTBOX,
                (1..=3)
                    .map(|n| {
                        op(
                            &n.to_string(),
                            WriteAction::Create,
                            Some(ItemBody::EmailMessage(message())),
                        )
                    })
                    .collect(),
            )
        },
    )
    .unwrap();
    assert_eq!(*sent.borrow(), 1);
    assert!(results.iter().all(|r| matches!(&r.outcome,
        Err(PluginError::Throttled(t)) if t.retry_after_ms == Some(3000))));
}

#[test]
fn the_inbox_takes_no_writes_and_the_outbox_reads_nothing() {
    let results = exports::push::<Graph>(
        CFG,
        INBOX,
        vec![
            op("op-1", WriteAction::Update, None),
            op("op-2", WriteAction::Create, None),
        ],
    )
    .unwrap();
    for r in results {
        match r.outcome {
            Err(PluginError::Unsupported(m)) => assert!(m.contains("EWS only"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // No request at all (no HTTP handler is registered).
    let page = exports::pull::<Graph>(CFG, pull(OUTBOX, None)).unwrap();
    assert!(page.items.is_empty() && page.cursor.is_none() && !page.more && !page.full);
    assert!(exports::lookup::<Graph>(CFG, OUTBOX, vec!["id:x".into()])
        .unwrap()
        .is_empty());
    assert_eq!(
        exports::push::<Graph>(CFG, "users", vec![])
            .unwrap_err()
            .class(),
        "unsupported"
    );
    assert_eq!(
        exports::push::<Graph>(CFG, "drafts:mailbox=a@b.c", vec![])
            .unwrap_err()
            .class(),
        "invalid"
    );
}

#[test]
fn the_inbox_pages_through_a_full_pass_then_reads_changes_from_the_delta_link() {
    let next = format!("{USER}/mailFolders('inbox')/messages/delta?$skiptoken=s1");
    let delta = format!("{USER}/mailFolders('inbox')/messages/delta?$deltatoken=d1");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let (n, d) = (next.clone(), delta.clone());
    let handler = move |r: &WitRequest| {
        s.borrow_mut().push(r.url.clone());
        assert_eq!(r.method, Method::Get);
        assert_eq!(header(r, "Prefer"), Some("odata.maxpagesize=25"));
        Ok(response(
            200,
            &if r.url.contains("$skiptoken") {
                json!({"@odata.deltaLink": d, "value": [
                    graph_message("m2"),
                    {"@odata.type": "#microsoft.graph.message", "id": "m0", "@removed": {"reason": "deleted"}}
                ]})
            } else if r.url.contains("$deltatoken") {
                json!({"@odata.deltaLink": d, "value": [graph_message("m3")]})
            } else {
                json!({"@odata.nextLink": n, "value": [graph_message("m1")]})
            }
            .to_string(),
        ))
    };
    with_http(handler, || {
        let first = exports::pull::<Graph>(CFG, pull(INBOX, None)).unwrap();
        assert!(first.full && first.more);
        assert_eq!(first.items.len(), 1);
        let cursor: DeltaCursor = serde_json::from_str(first.cursor.as_deref().unwrap()).unwrap();
        assert_eq!(cursor.link.as_deref(), Some(next.as_str()));
        assert!(cursor.full);

        let last = exports::pull::<Graph>(CFG, pull(INBOX, first.cursor.as_deref())).unwrap();
        assert!(last.full && !last.more, "the pass stays full to its end");
        assert_eq!(
            last.cursor.as_deref(),
            Some(delta.as_str()),
            "the bare delta link"
        );
        assert_eq!(last.items[0].id, "m2");
        assert!(matches!(last.items[1].removed, Some(Removal::Deleted)));

        let round = exports::pull::<Graph>(CFG, pull(INBOX, last.cursor.as_deref())).unwrap();
        assert!(!round.full && !round.more);
        assert_eq!(round.items[0].id, "m3");
        assert_eq!(round.cursor.as_deref(), Some(delta.as_str()));
    });
    let seen = seen.borrow();
    assert_eq!(
        seen[0],
        format!("{USER}/mailFolders/inbox/messages/delta?$select=subject,from,toRecipients,ccRecipients,body,sentDateTime,receivedDateTime,internetMessageId")
    );
    assert_eq!(seen[1], next);
    assert_eq!(seen[2], delta);
}

#[test]
fn an_unknown_delta_token_restarts_a_full_pass() {
    let page = with_http(
        |_| {
            Ok(response(
                410,
                r#"{"error":{"code":"SyncStateNotFound","message":"The sync state generation is not found or has expired."}}"#,
            ))
        },
        || {
            exports::pull::<Graph>(
                CFG,
                pull(INBOX, Some(&format!("{USER}/mailFolders('inbox')/messages/delta?$deltatoken=old"))),
            )
        },
    )
    .unwrap();
    assert!(page.items.is_empty() && page.cursor.is_none());
    assert!(page.more && page.full);
}

#[test]
fn links_must_stay_under_the_graph_root() {
    let root = "https://graph.microsoft.com/v1.0";
    assert!(under_root(
        root,
        "https://graph.microsoft.com/v1.0/users('a')/messages/delta?$deltatoken=x"
    ));
    assert!(under_root(
        root,
        "https://GRAPH.microsoft.com:443/V1.0/users/a"
    ));
    assert!(under_root(
        "http://127.0.0.1:8080/v1.0/",
        "http://127.0.0.1:8080/v1.0/x?y=/z"
    ));
    for bad in [
        "https://graph.microsoft.com/beta/users/a",
        "https://graph.microsoft.com/v1.00/users/a",
        "https://graph.microsoft.com/v1.0/../beta/users",
        "https://graph.microsoft.com/v1.0/%2E%2E/beta/users",
        "https://evil.example/v1.0/users/a",
        "http://graph.microsoft.com/v1.0/users/a",
        "https://graph.microsoft.com@evil.example/v1.0/users/a",
        "/v1.0/users/a",
    ] {
        assert!(!under_root(root, bad), "{bad}");
    }

    // A next link Graph answers elsewhere is not followed; a foreign cursor is refused unsent.
    let e = with_http(
        |_| Ok(response(200, r#"{"@odata.nextLink":"http://graph.test/beta/users/x/messages/delta?$skiptoken=1","value":[]}"#)),
        || exports::pull::<Graph>(CFG, pull(INBOX, None)),
    )
    .unwrap_err();
    assert_eq!(e.class(), "remote");
    assert!(e.describe().contains("refusing to follow"), "{e:?}");
    let e = with_http(
        |_| {
            Ok(response(
                200,
                r#"{"@odata.deltaLink":"http://evil.test/v1.0/d?$deltatoken=1","value":[]}"#,
            ))
        },
        || exports::pull::<Graph>(CFG, pull(INBOX, None)),
    )
    .unwrap_err();
    assert_eq!(e.class(), "remote");
    for cursor in [
        "http://evil.test/v1.0/users/x/messages/delta?$deltatoken=1".to_owned(),
        json!({"link": "http://graph.test/beta/x?$skiptoken=1", "full": true}).to_string(),
        "{not json".to_owned(),
    ] {
        let e = exports::pull::<Graph>(CFG, pull(INBOX, Some(&cursor))).unwrap_err();
        match e {
            PluginError::Invalid(i) => assert_eq!(i.fields[0].field, "cursor", "{cursor}"),
            other => panic!("{cursor}: {other:?}"),
        }
    }
}

#[test]
fn a_refused_inbox_names_mail_read() {
    let e = with_http(
        |_| {
            Ok(response(
                403,
                r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#,
            ))
        },
        || exports::pull::<Graph>(CFG, pull(INBOX, None)),
    )
    .unwrap_err();
    assert_eq!(e.class(), "forbidden");
    assert!(e.describe().contains("Mail.Read"), "{e:?}");
    let e = with_http(
        |_| Ok(response(404, r#"{"error":{"code":"ErrorInvalidUser","message":"The requested user 'x' is invalid."}}"#)),
        || exports::pull::<Graph>(CFG, pull(INBOX, None)),
    )
    .unwrap_err();
    match e {
        PluginError::Invalid(i) => assert_eq!(i.fields[0].field, "mailbox"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lookup_reads_messages_by_id_and_leaves_missing_ones_out() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let items = with_http(
        move |r| {
            s.borrow_mut().push(r.url.clone());
            Ok(if r.url.contains("/messages/m1?") {
                response(200, &graph_message("m1").to_string())
            } else {
                response(
                    404,
                    r#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}"#,
                )
            })
        },
        || {
            exports::lookup::<Graph>(
                CFG,
                INBOX,
                vec!["id:m1".into(), "gone/1".into(), "id:".into()],
            )
        },
    )
    .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id, "m1");
    assert!(matches!(items[0].body, Some(ItemBody::EmailMessage(_))));
    let seen = seen.borrow();
    assert_eq!(
        seen[0],
        format!("{USER}/messages/m1?$select={MESSAGE_SELECT}")
    );
    assert_eq!(
        seen[1],
        format!("{USER}/messages/gone%2F1?$select={MESSAGE_SELECT}")
    );
    assert_eq!(seen.len(), 2, "an empty id is not looked up");
    let e = exports::lookup::<Graph>(CFG, INBOX, vec!["anchor:x".into()]).unwrap_err();
    assert_eq!(e.class(), "invalid");
    let e = with_http(
        |_| {
            Ok(response(
                404,
                r#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"x"}}"#,
            ))
        },
        || exports::lookup::<Graph>(CFG, INBOX, vec!["id:m1".into()]),
    )
    .unwrap_err();
    assert_eq!(
        e.class(),
        "forbidden",
        "a refused mailbox is not a missing message"
    );
}

#[test]
fn the_outbox_sends_through_the_outgoing_root_with_the_outgoing_app() {
    let cfg = r#"{"graph_url":"http://graph.test/v1.0/","outgoing_url":"http://out.test/v1.0/","outgoing_credential":"outgoing"}"#;
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let log = seen.clone();
    let results = with_http(
        move |r| {
            log.borrow_mut()
                .push(format!("{} as {:?}", r.url, r.credential));
            Ok(response(202, ""))
        },
        || {
            exports::push::<Graph>(
                cfg,
                OUTBOX,
                vec![op(
                    "op-1",
                    WriteAction::Create,
                    Some(ItemBody::EmailMessage(message())),
                )],
            )
        },
    )
    .unwrap();
    assert!(results[0].outcome.is_ok(), "{:?}", results[0].outcome);
    assert_eq!(
        *seen.borrow(),
        [r#"http://out.test/v1.0/users/ann%40contoso.com/sendMail as Some("outgoing")"#]
    );
    // A bad outgoing root is refused before anything is sent.
    let findings = Graph::check_config(
        &serde_json::from_str(r#"{"outgoing_url":"mail.contoso.com"}"#).unwrap(),
    );
    assert!(findings[0]
        .cause
        .as_deref()
        .unwrap_or_default()
        .contains("outgoing_url"));
}

#[test]
fn the_outbox_check_opens_sent_items_with_the_outgoing_app_and_sends_nothing() {
    let cfg = r#"{"graph_url":"http://graph.test/v1.0/","outgoing_url":"http://out.test/v1.0/","outgoing_credential":"outgoing"}"#;
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let log = seen.clone();
    let page = with_http(
        move |r| {
            log.borrow_mut()
                .push(format!("{:?} {} as {:?}", r.method, r.url, r.credential));
            Ok(response(
                200,
                r#"{"id":"AAMkSent=","displayName":"Sent Items"}"#,
            ))
        },
        || exports::pull::<Graph>(cfg, pull(CHECK, None)),
    )
    .unwrap();
    assert!(page.items.is_empty() && page.cursor.is_none() && !page.more && !page.full);
    assert_eq!(
        *seen.borrow(),
        [
            r#"Method::Get http://out.test/v1.0/users/ann%40contoso.com/mailFolders/sentitems?$select=id as Some("outgoing")"#
        ]
    );
}

#[test]
fn a_refused_outgoing_app_fails_the_check_like_any_pull() {
    let check = |status: u16, body: &'static str| {
        with_http(
            move |_| Ok(response(status, body)),
            || exports::pull::<Graph>(CFG, pull(CHECK, None)),
        )
        .unwrap_err()
    };
    assert_eq!(check(401, "{}").class(), "auth");
    let e = check(
        403,
        r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#,
    );
    assert!(
        e.class() == "forbidden" && e.describe().contains("Mail.Send"),
        "{e:?}"
    );
    let e = check(
        404,
        r#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"x"}}"#,
    );
    assert!(
        e.class() == "forbidden" && e.describe().contains("Exchange Online licence"),
        "{e:?}"
    );
    assert_eq!(check(503, "").class(), "transient");
    // The token the host could not get (a wrong client secret) comes back as auth, too.
    let e = with_http(
        |_| {
            Err(PluginError::Auth(
                "credential slot \"outgoing\": the token endpoint refused the client (invalid_client)".into(),
            ))
        },
        || exports::pull::<Graph>(CFG, pull(CHECK, None)),
    )
    .unwrap_err();
    assert_eq!(e.class(), "auth");
}
