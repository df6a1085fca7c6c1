//! The wire layer: documented responses, faults, envelopes, and the requests we build.

use super::*;
use crate::error::EwsError;
use crate::ops::Kind;
use crate::soap::ReadError;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::with_http;
use syncbridge_sdk::types::mailbox::*;

fn read(name: &str) -> Elem {
    let body = sample(name);
    let status = if body.contains("Fault>") { 500 } else { 200 };
    match soap::read_response(status, &body, false, None) {
        Ok(e) => e,
        Err(ReadError::Ews(e)) => panic!("{name}: {e}"),
        Err(ReadError::Http(e)) => panic!("{name}: {}", e.describe()),
    }
}
use crate::xml::Elem;

#[test]
fn every_documented_response_reads_into_its_messages() {
    let names = [
        "samples/createitem-operation-calendar-item__2.xml",
        "samples/createitem-operation-contact__2.xml",
        "samples/createitem-operation-task__2.xml",
        "samples/getitem-operation-calendar-item__3.xml",
        "samples/getitem-operation-calendar-item__4.xml",
        "samples/getitem-operation-contact__2.xml",
        "samples/getitem-operation-task__2.xml",
        "samples/how-to-add-appointments-by-using-exchange-impersonation__2.xml",
        "samples/how-to-synchronize-items-by-using-ews-in-exchange__2.xml",
        "samples/how-to-synchronize-items-by-using-ews-in-exchange__4.xml",
        "samples/syncfolderitems-operation__2.xml",
        "samples/updateitem-operation__4.xml",
    ];
    for name in names {
        let resp = read(name);
        assert!(resp.name.ends_with("Response"), "{name}: {}", resp.name);
        let msgs = soap::messages(&resp);
        assert!(!msgs.is_empty(), "{name}");
        assert!(msgs.iter().all(Result::is_ok), "{name}: {msgs:?}");
    }
    // A documented error message is typed, not success.
    let resp = read("samples/getitem-operation-contact__4.xml");
    assert!(
        matches!(soap::single(&resp), Err(EwsError::Other { code, .. }) if code == "ErrorUnsupportedMimeConversion")
    );
    let resp = read("samples/finditem-operation__3.xml");
    let e: PluginError = soap::single(&resp).unwrap_err().into();
    assert!(
        e.class() == "invalid" && e.describe().contains("ErrorInvalidIdMalformed"),
        "{}",
        e.describe()
    );
}

#[test]
fn documented_items_map_to_the_canonical_model() {
    let resp = read("samples/getitem-operation-calendar-item__3.xml");
    let el = soap::single(&resp)
        .unwrap()
        .child("Items")
        .unwrap()
        .children[0]
        .clone();
    let (item, _) = pull::read_item(Kind::Calendar, &el, Vec::new()).unwrap();
    let Some(MailboxBody::Event(ev)) = item.body else {
        panic!("an event")
    };
    assert_eq!(
        (item.id.as_str(), item.version.as_deref()),
        ("ASUAdTB", Some("otlIqBwrt=="))
    );
    assert_eq!(
        (ev.kind, ev.start.utc.as_str(), ev.end.utc.as_str()),
        (
            EventKind::Single,
            "2006-06-16T00:30:00Z",
            "2006-06-16T01:00:00Z"
        )
    );
    assert_eq!(ev.show_as, syncbridge_sdk::types::ShowAs::Busy);
    assert_eq!(
        ev.organizer.map(|o| (o.address, o.name)),
        Some(("someone@example.com".into(), Some("Bob".into())))
    );

    let resp = read("samples/getitem-operation-contact__2.xml");
    let el = soap::single(&resp)
        .unwrap()
        .child("Items")
        .unwrap()
        .children[0]
        .clone();
    let Some(MailboxBody::Contact(c)) = pull::read_item(Kind::Contacts, &el, Vec::new())
        .unwrap()
        .0
        .body
    else {
        panic!("a contact")
    };
    assert_eq!(
        (
            c.given_name.as_deref(),
            c.surname.as_deref(),
            c.display_name.as_deref()
        ),
        (Some("Tanja"), Some("Plate"), Some("Tanja Plate"))
    );
    assert_eq!(
        (c.company_name.as_deref(), c.job_title.as_deref()),
        (Some("Northwind Traders"), Some("Project Manager"))
    );
    assert_eq!(
        c.emails
            .iter()
            .map(|e| e.address.as_str())
            .collect::<Vec<_>>(),
        ["tplate@example.com", "tplate@example.com"]
    );
    assert_eq!(
        c.phones
            .iter()
            .map(|p| (p.kind, p.number.as_str()))
            .collect::<Vec<_>>(),
        [(PhoneKind::Business, "5625550199")]
    );
    assert_eq!(c.addresses[0].city.as_deref(), Some("Whittier"));
    // An empty body is no notes.
    assert_eq!(c.notes, None);

    let resp = read("samples/getitem-operation-task__2.xml");
    let el = soap::single(&resp)
        .unwrap()
        .child("Items")
        .unwrap()
        .children[0]
        .clone();
    let Some(MailboxBody::Todo(t)) = pull::read_item(Kind::Tasks, &el, Vec::new())
        .unwrap()
        .0
        .body
    else {
        panic!("a todo")
    };
    assert_eq!(
        (t.subject.as_str(), t.status, t.percent_complete),
        (
            "Buy new shoes",
            syncbridge_sdk::types::TaskStatus::NotStarted,
            0
        )
    );
}

const BUSY: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode><faultstring>The server cannot service this request right now. Try again later.</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">busy</e:Message><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">29632</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#;

#[test]
fn faults_and_statuses_become_typed_errors() {
    // The documented schema-validation fault (a negative sample).
    let body = sample("samples-negative/updateitem-operation-contact__4.xml");
    let e: PluginError = soap::read_response(500, &body, false, None)
        .unwrap_err()
        .into();
    assert_eq!(e.class(), "invalid", "{}", e.describe());
    // ErrorServerBusy with BackOffMilliseconds: throttled for exactly that long.
    let busy = BUSY;
    match soap::read_response(500, busy, false, None)
        .unwrap_err()
        .into()
    {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(29632)),
        other => panic!("{other:?}"),
    }
    match soap::read_response(503, "", false, Some("7"))
        .unwrap_err()
        .into()
    {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(7000)),
        other => panic!("{other:?}"),
    }
    let e: PluginError = soap::read_response(401, "", true, None).unwrap_err().into();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("app password")),
        "{e:?}"
    );
    let e: PluginError = soap::read_response(401, "", false, None)
        .unwrap_err()
        .into();
    assert!(
        matches!(&e, PluginError::Auth(m) if m.contains("no Basic")),
        "{e:?}"
    );
    let fault = |code: &str| {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:{code}</faultcode><faultstring>x</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{code}</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">x</e:Message><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="SmtpAddress">bob@contoso.com</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#
        )
    };
    let class = |code: &str| {
        PluginError::from(soap::read_response(500, &fault(code), false, None).unwrap_err()).class()
    };
    assert_eq!(class("ErrorImpersonateUserDenied"), "forbidden");
    assert_eq!(class("ErrorNonExistentMailbox"), "not-found");
    assert_eq!(class("ErrorAccessDenied"), "forbidden");
    let e = PluginError::from(
        soap::read_response(500, &fault("ErrorNonExistentMailbox"), false, None).unwrap_err(),
    );
    assert!(e.describe().contains("bob@contoso.com"), "{}", e.describe());
    // Not SOAP at all.
    let e: PluginError = soap::read_response(200, "<html/>", false, None)
        .unwrap_err()
        .into();
    assert_eq!(e.class(), "remote");
}

#[test]
fn envelopes_carry_the_version_and_impersonation() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    with_http(stub(s, |_, _| (200, sync_response("S1", true, ""))), || {
        exports::pull_mailbox::<Ews>(
            CFG,
            PullRequest {
                scope: "contacts:mailbox=alice@contoso.com".into(),
                cursor: None,
                max_items: 77,
            },
        )
    })
    .unwrap();
    let (op, body) = seen.borrow()[0].clone();
    assert_eq!(op, "SyncFolderItems");
    assert!(
        body.contains(r#"<t:RequestServerVersion Version="Exchange2013_SP1"/>"#),
        "{body}"
    );
    assert!(body.contains("<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>alice@contoso.com</t:PrimarySmtpAddress>"), "{body}");
    assert!(
        body.contains("<m:MaxChangesReturned>77</m:MaxChangesReturned>"),
        "{body}"
    );
    // Impersonated: the folder is the caller's own.
    assert!(
        body.contains(r#"<t:DistinguishedFolderId Id="contacts"/>"#),
        "{body}"
    );

    // Without impersonation the mailbox is named in the folder id and no header is sent;
    // a per-mailbox credential slot is used for its mailbox.
    let cfg = r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx","version":"Exchange2010_SP2","mailbox_credentials":{"Alice@contoso.com":"alice"}}"#;
    let seen = Rc::new(RefCell::new(Vec::new()));
    let slots = Rc::new(RefCell::new(Vec::new()));
    let (s, sl) = (seen.clone(), slots.clone());
    let mut inner = stub(s, |_, _| (200, sync_response("S1", true, "")));
    with_http(
        move |r| {
            sl.borrow_mut().push(r.credential.clone());
            inner(r)
        },
        || {
            exports::pull_mailbox::<Ews>(
                cfg,
                PullRequest {
                    scope: "tasks:mailbox=alice@contoso.com".into(),
                    cursor: None,
                    max_items: 10,
                },
            )
        },
    )
    .unwrap();
    let body = seen.borrow()[0].1.clone();
    assert!(!body.contains("ExchangeImpersonation"), "{body}");
    assert!(body.contains(r#"Version="Exchange2010_SP2""#), "{body}");
    assert!(body.contains(r#"<t:DistinguishedFolderId Id="tasks"><t:Mailbox><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#), "{body}");
    assert_eq!(slots.borrow()[0].as_deref(), Some("alice"));
}

const CONTACT: &str = r#"<t:Contact><t:ItemId Id="c1" ChangeKey="k1"/><t:Subject>Ann</t:Subject><t:GivenName>Ann</t:GivenName><t:Surname>Lee</t:Surname><t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11" PropertyName="syncbridgeAnchor" PropertyType="String"/><t:Value>link-7</t:Value></t:ExtendedProperty></t:Contact>"#;

#[test]
fn a_sync_page_reads_changed_items_with_get_item_and_reports_deletions() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let page = with_http(
        stub(seen.clone(), |op, _| match op {
            "SyncFolderItems" => (200, sync_response("S2", false, r#"<t:Create><t:Contact><t:ItemId Id="c1" ChangeKey="k0"/></t:Contact></t:Create><t:Delete><t:ItemId Id="c9" ChangeKey="k"/></t:Delete><t:ReadFlagChange><t:ItemId Id="c1"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>"#)),
            "GetItem" => (200, get_item_response(&[CONTACT])),
            other => panic!("unexpected {other}"),
        }),
        || exports::pull_mailbox::<Ews>(CFG, PullRequest { scope: "contacts:mailbox=alice@contoso.com".into(), cursor: None, max_items: 2 }),
    )
    .unwrap();
    assert!(page.more && page.full);
    // The page of a full pass says so in its cursor, so the next page is full too.
    assert_eq!(page.cursor.as_deref(), Some("F|S2"));
    assert_eq!(page.items.len(), 2);
    assert_eq!(
        (page.items[0].id.as_str(), page.items[0].removed),
        ("c9", Some(syncbridge_sdk::types::Removal::Deleted))
    );
    let Some(MailboxBody::Contact(c)) = &page.items[1].body else {
        panic!()
    };
    assert_eq!(
        (c.given_name.as_deref(), c.anchor.as_deref()),
        (Some("Ann"), Some("link-7"))
    );
    let get = seen.borrow()[1].1.clone();
    assert!(
        get.contains(r#"PropertyName="syncbridgeAnchor""#)
            && get.contains(r#"<t:ItemId Id="c1"/>"#),
        "{get}"
    );

    // The next page continues the full pass; its last page ends it with a plain sync state.
    let page = with_http(
        stub(Rc::default(), |_, body| {
            assert!(body.contains("<m:SyncState>S2</m:SyncState>"), "{body}");
            (200, sync_response("S3", true, ""))
        }),
        || {
            exports::pull_mailbox::<Ews>(
                CFG,
                PullRequest {
                    scope: "contacts:mailbox=alice@contoso.com".into(),
                    cursor: Some("F|S2".into()),
                    max_items: 2,
                },
            )
        },
    )
    .unwrap();
    assert!(!page.more && page.full);
    assert_eq!(page.cursor.as_deref(), Some("S3"));
    let page = with_http(
        stub(Rc::default(), |_, _| (200, sync_response("S4", true, ""))),
        || {
            exports::pull_mailbox::<Ews>(
                CFG,
                PullRequest {
                    scope: "contacts:mailbox=alice@contoso.com".into(),
                    cursor: Some("S3".into()),
                    max_items: 2,
                },
            )
        },
    )
    .unwrap();
    assert!(!page.full, "an incremental pass");
}

#[test]
fn an_invalid_sync_state_restarts_a_full_pass() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let page = with_http(
        stub(seen.clone(), |_, body| {
            if body.contains("<m:SyncState>") {
                (200, envelope(r#"<m:SyncFolderItemsResponse><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>Synchronization state data is corrupt or otherwise invalid.</m:MessageText><m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#))
            } else {
                (200, sync_response("FRESH", true, ""))
            }
        }),
        || exports::pull_mailbox::<Ews>(CFG, PullRequest { scope: "tasks:mailbox=alice@contoso.com".into(), cursor: Some("stale".into()), max_items: 5 }),
    )
    .unwrap();
    assert!(page.full, "restarted as a full pass");
    assert_eq!(page.cursor.as_deref(), Some("FRESH"));
    assert_eq!(seen.borrow().len(), 2);
}

#[test]
fn lookups_by_id_and_by_anchor() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let items = with_http(
        stub(seen.clone(), |op, body| match op {
            "FindItem" => {
                assert!(body.contains(r#"<t:Constant Value="link-7"/>"#) && body.contains(r#"PropertyName="syncbridgeAnchor""#), "{body}");
                (200, envelope(r#"<m:FindItemResponse><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder IndexedPagingOffset="1" TotalItemsInView="1" IncludesLastItemInRange="true"><t:Items><t:Contact><t:ItemId Id="c1" ChangeKey="k1"/></t:Contact></t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#))
            }
            "GetItem" => {
                let gone = r#"<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>gone</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:GetItemResponseMessage>"#;
                let ok = format!(r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{CONTACT}</m:Items></m:GetItemResponseMessage>"#);
                (200, envelope(&format!("<m:GetItemResponse><m:ResponseMessages>{gone}{ok}</m:ResponseMessages></m:GetItemResponse>")))
            }
            other => panic!("unexpected {other}"),
        }),
        || exports::lookup_mailbox::<Ews>(CFG, "contacts:mailbox=alice@contoso.com", vec!["id:gone1".into(), "anchor:link-7".into()]),
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0].id.as_str(), items[0].removed),
        ("gone1", Some(syncbridge_sdk::types::Removal::Deleted))
    );
    assert_eq!(items[1].id, "c1");
}

fn contact_body() -> MailboxContact {
    MailboxContact {
        given_name: Some("Ann".into()),
        middle_name: None,
        surname: Some("Lee".into()),
        display_name: Some("Ann Lee".into()),
        company_name: None,
        job_title: Some("CTO".into()),
        department: None,
        emails: vec![syncbridge_sdk::types::EmailAddress {
            address: "ann@fabrikam.com".into(),
            name: None,
        }],
        phones: vec![Phone {
            kind: PhoneKind::Mobile,
            number: "+1 555 0100".into(),
        }],
        addresses: vec![PostalAddress {
            kind: AddressKind::Business,
            street: None,
            city: Some("Oslo".into()),
            state: None,
            postal_code: None,
            country: Some("Norway".into()),
        }],
        business_home_page: None,
        birthday: Some("1980-05-01".into()),
        notes: Some("met at <conf>".into()),
        categories: vec!["Customer".into()],
        anchor: Some("link-9".into()),
    }
}

#[test]
fn writes_batch_creates_updates_and_deletes_without_meeting_mail() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let ok = |op: &str, id: &str| {
        format!(
            r#"<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Contact><t:ItemId Id="{id}" ChangeKey="n"/></t:Contact></m:Items></m:{op}ResponseMessage>"#
        )
    };
    let results = with_http(
        stub(seen.clone(), move |op, _| {
            let msgs = match op {
                "CreateItem" => ok("CreateItem", "new1"),
                "UpdateItem" => ok("UpdateItem", "c1") + &ok("UpdateItem", "c2"),
                "DeleteItem" => r#"<m:DeleteItemResponseMessage ResponseClass="Error"><m:MessageText>gone</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:DeleteItemResponseMessage>"#.to_string(),
                other => panic!("unexpected {other}"),
            };
            (200, envelope(&format!("<m:{op}Response><m:ResponseMessages>{msgs}</m:ResponseMessages></m:{op}Response>")))
        }),
        || {
            let op = |id: &str, action, target: Option<&str>, fields: &[&str]| MailboxWriteOp {
                op_id: id.into(),
                action,
                target_id: target.map(str::to_owned),
                body: Some(MailboxBody::Contact(contact_body())),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            };
            exports::push_mailbox::<Ews>(CFG, "contacts:mailbox=alice@contoso.com", vec![
                op("1", WriteAction::Update, Some("c1"), &["job_title", "department"]),
                op("2", WriteAction::Create, None, &[]),
                op("3", WriteAction::Delete, Some("c9"), &[]),
                op("4", WriteAction::Update, Some("c2"), &["emails"]),
                op("5", WriteAction::Update, Some("c3"), &["colour"]),
            ])
        },
    )
    .unwrap();
    let outcome: Vec<_> = results
        .iter()
        .map(|r| {
            (
                r.op_id.as_str(),
                r.outcome
                    .as_ref()
                    .map(|o| o.target_id.as_str())
                    .map_err(|e| e.class()),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            ("1", Ok("c1")),
            ("2", Ok("new1")),
            ("3", Ok("c9")),
            ("4", Ok("c2")),
            ("5", Err("invalid"))
        ]
    );
    let calls = seen.borrow();
    assert_eq!(
        calls.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(),
        ["CreateItem", "UpdateItem", "DeleteItem"]
    );
    let create = &calls[0].1;
    assert!(
        create.contains(r#"SendMeetingInvitations="SendToNone""#),
        "{create}"
    );
    // Schema order: Body, Categories, ExtendedProperty (item) before DisplayName … Surname.
    let pos = |s: &str| create.find(s).unwrap_or_else(|| panic!("{s} in {create}"));
    assert!(
        pos("<t:Body") < pos("<t:Categories>")
            && pos("<t:Categories>") < pos("<t:ExtendedProperty>")
            && pos("<t:ExtendedProperty>") < pos("<t:DisplayName>")
            && pos("<t:JobTitle>") < pos("<t:Surname>")
    );
    assert!(
        create.contains("met at &lt;conf&gt;")
            && create.contains("<t:Birthday>1980-05-01T00:00:00Z</t:Birthday>"),
        "{create}"
    );
    assert!(create.contains(r#"<t:Entry Key="MobilePhone">+1 555 0100</t:Entry>"#) && create.contains(r#"<t:Entry Key="Business"><t:City>Oslo</t:City><t:CountryOrRegion>Norway</t:CountryOrRegion></t:Entry>"#), "{create}");
    let update = &calls[1].1;
    assert!(
        update.contains(r#"SendMeetingInvitationsOrCancellations="SendToNone""#),
        "{update}"
    );
    // Only the named fields: job title set, department (empty) deleted, emails 1 set and 2, 3 deleted.
    assert_eq!(update.matches("<t:SetItemField>").count(), 2, "{update}");
    assert_eq!(update.matches("<t:DeleteItemField>").count(), 3, "{update}");
    assert!(
        update.contains(
            r#"<t:DeleteItemField><t:FieldURI FieldURI="contacts:Department"/></t:DeleteItemField>"#
        ),
        "{update}"
    );
    assert!(update.contains(r#"<t:IndexedFieldURI FieldURI="contacts:EmailAddress" FieldIndex="EmailAddress1"/><t:Contact><t:EmailAddresses><t:Entry Key="EmailAddress1">ann@fabrikam.com</t:Entry></t:EmailAddresses></t:Contact>"#), "{update}");
    assert!(!update.contains("GivenName"), "{update}");
    assert!(calls[2]
        .1
        .contains(r#"SendMeetingCancellations="SendToNone""#));
}

#[test]
fn a_throttled_write_stops_the_rest_of_the_batch() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let results = with_http(stub(seen.clone(), |_, _| (500, BUSY.to_string())), || {
        let mut ops = Vec::new();
        for (i, action) in [WriteAction::Create, WriteAction::Delete]
            .into_iter()
            .enumerate()
        {
            ops.push(MailboxWriteOp {
                op_id: i.to_string(),
                action,
                target_id: Some("x".into()),
                body: Some(MailboxBody::Contact(contact_body())),
                fields: vec![],
            });
        }
        exports::push_mailbox::<Ews>(CFG, "contacts:mailbox=alice@contoso.com", ops)
    })
    .unwrap();
    assert_eq!(
        seen.borrow().len(),
        1,
        "the delete is not sent after the throttled create"
    );
    for r in &results {
        match &r.outcome {
            Err(PluginError::Throttled(t)) => assert_eq!(t.retry_after_ms, Some(29632)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn validate_config_refuses_ip_literals_plain_http_and_odd_ports() {
    let findings = |c: &str| exports::validate_config::<Ews>(c);
    let f = findings(r#"{"ews_url":"https://10.1.2.3/EWS/Exchange.asmx"}"#);
    assert!(
        f.iter().any(|f| f.outcome == Outcome::Failed
            && f.cause.as_deref().is_some_and(|c| c.contains("IP address"))),
        "{f:?}"
    );
    let f = findings(r#"{"ews_url":"https://mail.contoso.com:8443/EWS/Exchange.asmx"}"#);
    assert!(
        f.iter()
            .any(|f| f.cause.as_deref().is_some_and(|c| c.contains("port 8443"))),
        "{f:?}"
    );
    let f = findings(r#"{"ews_url":"http://mail.contoso.com/EWS/Exchange.asmx"}"#);
    assert!(
        f.iter()
            .any(|f| f.cause.as_deref().is_some_and(|c| c.contains("HTTPS"))),
        "{f:?}"
    );
    let f = findings(
        r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx","version":"Exchange2099"}"#,
    );
    assert!(f.iter().any(|f| f.check == "version"), "{f:?}");
    let f = findings(r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx"}"#);
    assert_eq!(
        f.iter().map(|f| f.outcome).collect::<Vec<_>>(),
        [Outcome::Ok]
    );
}

#[test]
fn autodiscover_finds_the_endpoint_and_falls_back_to_pox() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let page = with_http(
        move |r| {
            s.borrow_mut().push(r.url.clone());
            if r.url.ends_with("autodiscover.svc") {
                return Ok(response(404, ""));
            }
            if r.url.ends_with("autodiscover.xml") {
                return Ok(response(
                    200,
                    r#"<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><Protocol><Type>EXCH</Type><EwsUrl>https://ex1.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol></Account></Response></Autodiscover>"#,
                ));
            }
            assert_eq!(r.url, "https://ex1.contoso.com/EWS/Exchange.asmx");
            Ok(response(200, &sync_response("S", true, "")))
        },
        || {
            exports::pull_mailbox::<Ews>(
                r#"{"mailbox":"svc@contoso.com"}"#,
                PullRequest {
                    scope: "calendar:mailbox=alice@contoso.com".into(),
                    cursor: None,
                    max_items: 5,
                },
            )
        },
    );
    assert!(page.is_ok(), "{page:?}");
    assert_eq!(
        seen.borrow()[..2],
        [
            "https://autodiscover.contoso.com/autodiscover/autodiscover.svc",
            "https://autodiscover.contoso.com/autodiscover/autodiscover.xml"
        ]
    );
    // Found once, then kept.
    assert_eq!(
        syncbridge_sdk::testing::state::get("ews:url").as_deref(),
        Some("https://ex1.contoso.com/EWS/Exchange.asmx")
    );
}
