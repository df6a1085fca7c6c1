//! The e-mail scopes (`inbox:`, `outbox:`) through the core exports: the requests they build,
//! documented and crafted answers, and a round trip through the simulator.

use super::sim::{cfg, host, start, SVC};
use super::*;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::with_http;
use syncbridge_sdk::types::{
    EmailAddress, EmailMessage, Item, ItemBody, Removal, WriteAction, WriteOp,
};

const INBOX: &str = "inbox:mailbox=alice@contoso.com";
const OUTBOX: &str = "outbox:mailbox=alice@contoso.com";
/// Without impersonation: folders name their mailbox.
const DELEGATE_CFG: &str =
    r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx","version":"Exchange2013_SP1"}"#;

/// The `Id`s of `<t:ItemId …/>` elements in a request.
fn ids_in(body: &str) -> Vec<String> {
    body.split(r#"<t:ItemId Id=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|id| id.replace("&amp;", "&"))
        .collect()
}

fn message_xml(id: &str) -> String {
    format!(
        r#"<t:Message><t:ItemId Id="{id}" ChangeKey="ck-{id}"/><t:Subject>Order {id}</t:Subject><t:Body BodyType="HTML">&lt;p&gt;Hello&lt;/p&gt;</t:Body><t:DateTimeReceived>2026-03-02T10:00:05Z</t:DateTimeReceived><t:DateTimeSent>2026-03-02T11:00:00+01:00</t:DateTimeSent><t:ToRecipients><t:Mailbox><t:Name>Alice Wong</t:Name><t:EmailAddress>alice@contoso.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox><t:Mailbox><t:EmailAddress>sales@contoso.com</t:EmailAddress></t:Mailbox></t:ToRecipients><t:CcRecipients><t:Mailbox><t:Name>Bob</t:Name><t:EmailAddress>bob@fabrikam.com</t:EmailAddress></t:Mailbox></t:CcRecipients><t:From><t:Mailbox><t:Name>Dan Park</t:Name><t:EmailAddress>dan@fabrikam.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:From><t:InternetMessageId>&lt;{id}@fabrikam.com&gt;</t:InternetMessageId></t:Message>"#
    )
}

const GONE: &str = r#"<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:GetItemResponseMessage>"#;

/// A GetItem answer: a message for each id, `ErrorItemNotFound` for ids starting with `gone`.
fn get_messages_answer(body: &str) -> String {
    let msgs: String = ids_in(body)
        .iter()
        .map(|id| {
            if id.starts_with("gone") {
                GONE.to_string()
            } else {
                format!(
                    r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{}</m:Items></m:GetItemResponseMessage>"#,
                    message_xml(id)
                )
            }
        })
        .collect();
    envelope(&format!(
        "<m:GetItemResponse><m:ResponseMessages>{msgs}</m:ResponseMessages></m:GetItemResponse>"
    ))
}

fn message_of(item: &Item) -> &EmailMessage {
    match &item.body {
        Some(ItemBody::EmailMessage(m)) => m,
        other => panic!("an email-message, not {other:?}"),
    }
}

fn pull(cfg: &str, scope: &str, cursor: Option<&str>, max_items: u32) -> Result<Page, PluginError> {
    exports::pull::<Ews>(
        cfg,
        PullRequest {
            scope: scope.into(),
            cursor: cursor.map(str::to_owned),
            max_items,
        },
    )
}

#[test]
fn a_documented_message_maps_to_an_email_message() {
    let doc = xml::parse(&sample(
        "samples/how-to-synchronize-items-by-using-ews-in-exchange__4.xml",
    ))
    .unwrap();
    let update = doc.find("Update").and_then(|u| u.child("Message")).unwrap();
    let m = map::message::read(update);
    assert_eq!(m.subject.as_deref(), Some("RE: Company Soccer Team"));
    assert_eq!(
        m.from
            .as_ref()
            .map(|f| (f.address.as_str(), f.name.as_deref())),
        Some(("Alfred.Welker@contoso.com", Some("Alfred  Welker")))
    );
    assert_eq!(
        (m.sent.as_deref(), m.received.as_deref()),
        (Some("2013-08-29T15:22:10Z"), Some("2013-08-29T15:22:10Z"))
    );
    assert!(m
        .internet_message_id
        .as_deref()
        .is_some_and(|i| i.contains("e5919a09c8fc4d64b6ffd3542e194fc3@BY2SR01MB609.contoso.com")));
    // The sync answer carries no recipients and no body: none are made up.
    assert!(m.to.is_empty() && m.cc.is_empty() && m.body.is_none() && !m.body_is_html);
}

#[test]
fn the_inbox_is_read_with_sync_folder_items_and_get_item_of_its_messages() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let page = with_http(
        stub(seen.clone(), |op, body| match op {
            "SyncFolderItems" => (
                200,
                sample("samples/how-to-synchronize-items-by-using-ews-in-exchange__4.xml"),
            ),
            "GetItem" => (200, get_messages_answer(body)),
            other => panic!("unexpected {other}"),
        }),
        || pull(CFG, INBOX, None, 5000),
    )
    .unwrap();
    let seen = seen.borrow();
    let sync = &seen[0].1;
    assert!(
        sync.contains(r#"<t:DistinguishedFolderId Id="inbox"/>"#)
            && sync.contains("<t:BaseShape>IdOnly</t:BaseShape>")
            && sync.contains("<m:MaxChangesReturned>512</m:MaxChangesReturned>")
            && !sync.contains("<m:SyncState>"),
        "{sync}"
    );
    let get = &seen[1].1;
    for field in [
        "item:Subject",
        "item:Body",
        "item:DateTimeSent",
        "item:DateTimeReceived",
        "message:From",
        "message:ToRecipients",
        "message:CcRecipients",
        "message:InternetMessageId",
    ] {
        assert!(
            get.contains(&format!(r#"FieldURI="{field}""#)),
            "{field}: {get}"
        );
    }
    assert!(get.contains("<t:BodyType>Best</t:BodyType>"), "{get}");
    assert_eq!(ids_in(get), ["q04QAAAA==", "AQMkAD+", "Q04AAAAA=="]);
    assert_eq!(seen.len(), 2);

    // A first pass is full; the deletion comes first, then the three messages.
    assert!(page.full && !page.more);
    assert_eq!(page.cursor.as_deref(), Some("H4sIAAAAAAAEAO29B2AcSZY=="));
    assert_eq!(page.items.len(), 4);
    assert_eq!(
        (
            page.items[0].id.as_str(),
            page.items[0].removed,
            page.items[0].body.is_none()
        ),
        (" q1AwAAAA==", Some(Removal::Deleted), true)
    );
    let first = &page.items[1];
    assert_eq!(
        (first.id.as_str(), first.version.as_deref(), first.removed),
        ("q04QAAAA==", Some("ck-q04QAAAA=="), None)
    );
    let m = message_of(first);
    assert_eq!(m.subject.as_deref(), Some("Order q04QAAAA=="));
    assert_eq!(
        (m.body.as_deref(), m.body_is_html),
        (Some("<p>Hello</p>"), true)
    );
    assert_eq!(
        m.from
            .as_ref()
            .map(|f| (f.address.as_str(), f.name.as_deref())),
        Some(("dan@fabrikam.com", Some("Dan Park")))
    );
    assert_eq!(
        m.to.iter()
            .map(|a| (a.address.as_str(), a.name.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("alice@contoso.com", Some("Alice Wong")),
            ("sales@contoso.com", None)
        ]
    );
    assert_eq!(m.cc.len(), 1);
    assert_eq!(m.cc[0].address, "bob@fabrikam.com");
    // Dates come as UTC instants whatever offset Exchange writes.
    assert_eq!(
        (m.sent.as_deref(), m.received.as_deref()),
        (Some("2026-03-02T10:00:00Z"), Some("2026-03-02T10:00:05Z"))
    );
    assert_eq!(
        m.internet_message_id.as_deref(),
        Some("<q04QAAAA==@fabrikam.com>")
    );
}

#[test]
fn only_messages_are_read_and_one_gone_meanwhile_is_removed() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let changes = r#"<t:Create><t:MeetingRequest><t:ItemId Id="mr1" ChangeKey="a"/></t:MeetingRequest></t:Create><t:Create><t:Message><t:ItemId Id="m1" ChangeKey="b"/></t:Message></t:Create><t:Create><t:MeetingCancellation><t:ItemId Id="mc1" ChangeKey="c"/></t:MeetingCancellation></t:Create><t:Update><t:Message><t:ItemId Id="gone1" ChangeKey="d"/></t:Message></t:Update><t:Create><t:Message><t:ItemId Id="m2" ChangeKey="e"/></t:Message></t:Create><t:Delete><t:ItemId Id="m2" ChangeKey="f"/></t:Delete>"#;
    let page = with_http(
        stub(seen.clone(), move |op, body| match op {
            "SyncFolderItems" => (200, sync_response("S2", false, changes)),
            "GetItem" => (200, get_messages_answer(body)),
            other => panic!("unexpected {other}"),
        }),
        || pull(CFG, INBOX, Some("S1"), 7),
    )
    .unwrap();
    let seen = seen.borrow();
    assert!(seen[0].1.contains("<m:SyncState>S1</m:SyncState>"));
    assert!(seen[0]
        .1
        .contains("<m:MaxChangesReturned>7</m:MaxChangesReturned>"));
    // Meeting traffic is not read; m2 was created and deleted in the same page.
    assert_eq!(ids_in(&seen[1].1), ["m1", "gone1"]);
    assert!(!page.full && page.more);
    assert_eq!(page.cursor.as_deref(), Some("S2"));
    let got: Vec<(&str, Option<Removal>)> = page
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.removed))
        .collect();
    assert_eq!(
        got,
        [
            ("m2", Some(Removal::Deleted)),
            ("m1", None),
            ("gone1", Some(Removal::Deleted))
        ]
    );
}

#[test]
fn an_inbox_sync_state_exchange_refuses_starts_a_full_pass() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let page = with_http(
        stub(seen.clone(), |_, body| {
            if body.contains("<m:SyncState>") {
                (200, envelope(r#"<m:SyncFolderItemsResponse><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Error"><m:MessageText>Synchronization state data is corrupt or otherwise invalid.</m:MessageText><m:ResponseCode>ErrorInvalidSyncStateData</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#))
            } else {
                (200, sync_response("FRESH", true, ""))
            }
        }),
        || pull(CFG, INBOX, Some("stale"), 5),
    )
    .unwrap();
    assert!(page.full && page.items.is_empty());
    assert_eq!(page.cursor.as_deref(), Some("FRESH"));
    assert_eq!(seen.borrow().len(), 2);
}

#[test]
fn a_busy_server_throttles_the_inbox_with_its_back_off() {
    let e = with_http(
        stub(Rc::new(RefCell::new(Vec::new())), |_, _| {
            (500, envelope(r#"<s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode><faultstring>busy</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">busy</e:Message><t:MessageXml><t:Value Name="BackOffMilliseconds">750</t:Value></t:MessageXml></detail></s:Fault>"#))
        }),
        || pull(CFG, INBOX, None, 5),
    )
    .unwrap_err();
    match e {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(750)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lookups_answer_found_messages_and_leave_out_missing_ones() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let items = with_http(
        stub(seen.clone(), |op, body| {
            assert_eq!(op, "GetItem");
            (200, get_messages_answer(body))
        }),
        || {
            exports::lookup::<Ews>(
                CFG,
                INBOX,
                vec!["id:m1".into(), "gone7".into(), "m1".into(), " ".into()],
            )
        },
    )
    .unwrap();
    assert_eq!(ids_in(&seen.borrow()[0].1), ["m1", "gone7"]);
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].id.as_str(), items[0].version.as_deref()),
        ("m1", Some("ck-m1"))
    );
    assert_eq!(message_of(&items[0]).cc[0].address, "bob@fabrikam.com");
    // The outbox reads nothing back, without asking Exchange.
    let none = with_http(
        |_| panic!("no request for the outbox"),
        || exports::lookup::<Ews>(CFG, OUTBOX, vec!["sent:op1".into()]),
    )
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn the_outbox_pull_is_empty_and_never_full() {
    let page = with_http(
        |_| panic!("no request for the outbox"),
        || pull(CFG, OUTBOX, Some("x"), 50),
    )
    .unwrap();
    assert!(page.items.is_empty() && page.cursor.is_none() && !page.more && !page.full);
}

#[test]
fn unknown_e_mail_scopes_and_options_are_refused_with_the_grammar() {
    for bad in [
        "calendar:mailbox=alice@contoso.com",
        "inbox:mailbox=alice",
        "outbox:mailbox=alice@contoso.com,past=3",
    ] {
        let e = with_http(|_| panic!("no request"), || pull(CFG, bad, None, 5)).unwrap_err();
        assert!(
            e.class() == "invalid" && e.describe().contains("inbox:mailbox=<address>"),
            "{bad}: {}",
            e.describe()
        );
    }
}

fn email() -> EmailMessage {
    EmailMessage {
        subject: Some("Your quote Q-7 & terms".into()),
        from: None,
        to: vec![EmailAddress {
            address: "dan@fabrikam.com".into(),
            name: Some("Dan Park".into()),
        }],
        cc: vec![EmailAddress {
            address: "bob@fabrikam.com".into(),
            name: None,
        }],
        body: Some("<p>Please find the quote.</p>".into()),
        body_is_html: true,
        sent: None,
        received: None,
        internet_message_id: Some("<q7.crm@contoso.com>".into()),
    }
}

fn op(id: &str, action: WriteAction, target: Option<&str>, body: Option<ItemBody>) -> WriteOp {
    WriteOp {
        op_id: id.into(),
        action,
        target_id: target.map(str::to_owned),
        body,
        fields: vec![],
    }
}

const SENT: &str = r#"<m:CreateItemResponse><m:ResponseMessages><m:CreateItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items/></m:CreateItemResponseMessage></m:ResponseMessages></m:CreateItemResponse>"#;

#[test]
fn the_outbox_sends_with_send_and_save_copy_and_answers_a_sent_id() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut plain = email();
    plain.body_is_html = false;
    plain.body = Some("a < b".into());
    plain.to.clear();
    plain.internet_message_id = None;
    plain.from = Some(EmailAddress {
        address: "Alice@Contoso.com".into(),
        name: Some("Alice Wong".into()),
    });
    let mut nobody = email();
    nobody.to.clear();
    nobody.cc.clear();
    let mut other_sender = email();
    other_sender.from = Some(EmailAddress {
        address: "ceo@contoso.com".into(),
        name: None,
    });
    let mut bad_address = email();
    bad_address.cc[0].address = "bob".into();
    let results = with_http(
        stub(seen.clone(), |op, _| {
            assert_eq!(op, "CreateItem");
            (200, envelope(SENT))
        }),
        || {
            exports::push::<Ews>(
                CFG,
                OUTBOX,
                vec![
                    op(
                        "op1",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(email())),
                    ),
                    op(
                        "op2",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(plain)),
                    ),
                    op(
                        "op3",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(nobody)),
                    ),
                    op(
                        "op4",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(other_sender)),
                    ),
                    op(
                        "op5",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(bad_address)),
                    ),
                    op("op6", WriteAction::Create, None, None),
                    op(
                        "op7",
                        WriteAction::Update,
                        Some("sent:op1"),
                        Some(ItemBody::EmailMessage(email())),
                    ),
                    op("op8", WriteAction::Delete, Some("sent:op1"), None),
                ],
            )
        },
    )
    .unwrap();
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        ("sent:op1", None)
    );
    assert_eq!(results[1].outcome.as_ref().unwrap().target_id, "sent:op2");
    // Another from address is not used: sent as the mailbox.
    assert_eq!(results[3].outcome.as_ref().unwrap().target_id, "sent:op4");
    // Refusals name the field (invalid) or say why (unsupported).
    let refused: Vec<String> = [
        &results[2],
        &results[4],
        &results[5],
        &results[6],
        &results[7],
    ]
    .into_iter()
    .map(|r| match r.outcome.as_ref().unwrap_err() {
        PluginError::Invalid(i) => {
            let fields: Vec<&str> = i.fields.iter().map(|f| f.field.as_str()).collect();
            format!("invalid {}", fields.join(","))
        }
        PluginError::Unsupported(why) if why.contains("cannot be changed") => "unsupported".into(),
        other => panic!("{other:?}"),
    })
    .collect();
    assert_eq!(
        refused,
        [
            "invalid to",
            "invalid cc",
            "invalid body",
            "unsupported",
            "unsupported"
        ]
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 3, "only the valid messages are sent");
    let first = &seen[0].1;
    for part in [
        r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId>"#,
        "<t:Subject>Your quote Q-7 &amp; terms</t:Subject>",
        r#"<t:Body BodyType="HTML">&lt;p&gt;Please find the quote.&lt;/p&gt;</t:Body>"#,
        "<t:ToRecipients><t:Mailbox><t:Name>Dan Park</t:Name><t:EmailAddress>dan@fabrikam.com</t:EmailAddress></t:Mailbox></t:ToRecipients>",
        "<t:CcRecipients><t:Mailbox><t:EmailAddress>bob@fabrikam.com</t:EmailAddress></t:Mailbox></t:CcRecipients>",
        "<t:From><t:Mailbox><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox></t:From>",
        "<t:InternetMessageId>&lt;q7.crm@contoso.com&gt;</t:InternetMessageId>",
        "<t:PrimarySmtpAddress>alice@contoso.com</t:PrimarySmtpAddress>",
    ] {
        assert!(first.contains(part), "{part}\n{first}");
    }
    let second = &seen[1].1;
    assert!(
        second.contains(r#"<t:Body BodyType="Text">a &lt; b</t:Body>"#)
            && !second.contains("ToRecipients")
            && !second.contains("InternetMessageId")
            && second.contains("<t:From><t:Mailbox><t:Name>Alice Wong</t:Name><t:EmailAddress>alice@contoso.com</t:EmailAddress>"),
        "{second}"
    );
    assert!(
        seen[2]
            .1
            .contains("<t:From><t:Mailbox><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox></t:From>"),
        "{}",
        seen[2].1
    );
}

#[test]
fn a_delegate_saves_in_the_mailbox_sent_items_and_send_as_denied_says_what_to_grant() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let results = with_http(
        stub(seen.clone(), |_, _| {
            (
                200,
                sample("samples/createitem-operation-email-message__3.xml"),
            )
        }),
        || {
            exports::push::<Ews>(
                DELEGATE_CFG,
                OUTBOX,
                vec![op(
                    "op1",
                    WriteAction::Create,
                    None,
                    Some(ItemBody::EmailMessage(email())),
                )],
            )
        },
    )
    .unwrap();
    let body = &seen.borrow()[0].1;
    assert!(
        body.contains(r#"<m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"><t:Mailbox><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:SavedItemFolderId>"#)
            && !body.contains("ExchangeImpersonation"),
        "{body}"
    );
    let e = results[0].outcome.as_ref().unwrap_err();
    assert!(
        e.class() == "forbidden" && e.describe().contains("Send As"),
        "{}",
        e.describe()
    );
}

const FOLDER_NONE: &str = r#"<m:FindFolderResponse><m:ResponseMessages><m:FindFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="0" IncludesLastItemInRange="true"><t:Folders/></m:RootFolder></m:FindFolderResponseMessage></m:ResponseMessages></m:FindFolderResponse>"#;

fn folder_found(id: &str) -> String {
    format!(
        r#"<m:FindFolderResponse><m:ResponseMessages><m:FindFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder TotalItemsInView="1" IncludesLastItemInRange="true"><t:Folders><t:Folder><t:FolderId Id="{id}" ChangeKey="AQAAAA=="/><t:DisplayName>Undeliverable</t:DisplayName></t:Folder></t:Folders></m:RootFolder></m:FindFolderResponseMessage></m:ResponseMessages></m:FindFolderResponse>"#
    )
}

fn folder_created(id: &str) -> String {
    format!(
        r#"<m:CreateFolderResponse><m:ResponseMessages><m:CreateFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="{id}" ChangeKey="AQAAAA=="/></t:Folder></m:Folders></m:CreateFolderResponseMessage></m:ResponseMessages></m:CreateFolderResponse>"#
    )
}

fn moved(new_id: &str) -> String {
    format!(
        r#"<m:MoveItemResponse><m:ResponseMessages><m:MoveItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="{new_id}" ChangeKey="ck-{new_id}"/></t:Message></m:Items></m:MoveItemResponseMessage></m:ResponseMessages></m:MoveItemResponse>"#
    )
}

fn move_failed(code: &str) -> String {
    format!(
        r#"<m:MoveItemResponse><m:ResponseMessages><m:MoveItemResponseMessage ResponseClass="Error"><m:MessageText>not found</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:MoveItemResponseMessage></m:ResponseMessages></m:MoveItemResponse>"#
    )
}

/// The folder id a MoveItem request moves to.
fn to_folder(body: &str) -> String {
    body.split(r#"<m:ToFolderId><t:FolderId Id=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn deactivate_moves_to_undeliverable_creating_the_folder_once() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let results = with_http(
        stub(seen.clone(), |op, body| match op {
            "FindFolder" => (200, envelope(FOLDER_NONE)),
            "CreateFolder" => (200, envelope(&folder_created("F1"))),
            "MoveItem" => {
                assert_eq!(to_folder(body), "F1");
                let id = ids_in(body).remove(0);
                (200, envelope(&moved(&format!("{id}-moved"))))
            }
            other => panic!("unexpected {other}"),
        }),
        || {
            exports::push::<Ews>(
                CFG,
                INBOX,
                vec![
                    op("a", WriteAction::Deactivate, Some("m1"), None),
                    op("b", WriteAction::Deactivate, Some("m2"), None),
                    op("c", WriteAction::Deactivate, None, None),
                    op("d", WriteAction::Delete, Some("m3"), None),
                    op(
                        "e",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(email())),
                    ),
                ],
            )
        },
    )
    .unwrap();
    let ok: Vec<(&str, Option<&str>)> = results[..2]
        .iter()
        .map(|r| {
            let w = r.outcome.as_ref().unwrap();
            (w.target_id.as_str(), w.version.as_deref())
        })
        .collect();
    assert_eq!(
        ok,
        [
            ("m1-moved", Some("ck-m1-moved")),
            ("m2-moved", Some("ck-m2-moved"))
        ]
    );
    let e = results[2].outcome.as_ref().unwrap_err();
    assert!(
        e.class() == "invalid" && e.describe().contains("target-id"),
        "{}",
        e.describe()
    );
    for r in &results[3..] {
        let e = r.outcome.as_ref().unwrap_err();
        assert!(
            e.class() == "unsupported"
                && e.describe()
                    .contains("only moves failed messages to Undeliverable"),
            "{}",
            e.describe()
        );
    }
    let seen = seen.borrow();
    let ops: Vec<&str> = seen.iter().map(|(o, _)| o.as_str()).collect();
    // Found or created once, then kept.
    assert_eq!(ops, ["FindFolder", "CreateFolder", "MoveItem", "MoveItem"]);
    let find = &seen[0].1;
    assert!(
        find.contains(r#"<m:FindFolder Traversal="Shallow">"#)
            && find.contains(r#"<t:Constant Value="Undeliverable"/>"#)
            && find.contains(
                r#"<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds>"#
            ),
        "{find}"
    );
    let create = &seen[1].1;
    assert!(
        create.contains("<t:Folder><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Undeliverable</t:DisplayName></t:Folder>")
            && create.contains(r#"<m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderId>"#),
        "{create}"
    );
    assert!(
        seen[2]
            .1
            .contains("<m:ReturnNewItemIds>true</m:ReturnNewItemIds>"),
        "{}",
        seen[2].1
    );
    assert_eq!(
        syncbridge_sdk::testing::state::get("ews:undeliverable:alice@contoso.com").as_deref(),
        Some("F1")
    );
}

#[test]
fn a_stale_undeliverable_folder_is_found_again_and_a_gone_message_is_not_found() {
    syncbridge_sdk::testing::state::set("ews:undeliverable:alice@contoso.com", "F0");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let results = with_http(
        stub(seen.clone(), |op, body| match op {
            "FindFolder" => (200, envelope(&folder_found("F1"))),
            "MoveItem" => match (to_folder(body).as_str(), ids_in(body)[0].as_str()) {
                ("F0", _) => (200, envelope(&move_failed("ErrorFolderNotFound"))),
                (_, "gone1") => (200, envelope(&move_failed("ErrorItemNotFound"))),
                (_, id) => (200, envelope(&moved(&format!("{id}-moved")))),
            },
            other => panic!("unexpected {other}"),
        }),
        || {
            exports::push::<Ews>(
                CFG,
                INBOX,
                vec![
                    op("a", WriteAction::Deactivate, Some("m1"), None),
                    op("b", WriteAction::Deactivate, Some("gone1"), None),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(results[0].outcome.as_ref().unwrap().target_id, "m1-moved");
    let e = results[1].outcome.as_ref().unwrap_err();
    assert!(
        e.class() == "not-found" && e.describe().contains("gone1"),
        "{}",
        e.describe()
    );
    let ops: Vec<String> = seen
        .borrow()
        .iter()
        .map(|(o, b)| match o.as_str() {
            "MoveItem" => format!("MoveItem→{}", to_folder(b)),
            _ => o.clone(),
        })
        .collect();
    // The stale id fails, the folder is found again and kept; a message that is gone is not
    // moved twice (the folder found again is the one that was used).
    assert_eq!(
        ops,
        [
            "MoveItem→F0",
            "FindFolder",
            "MoveItem→F1",
            "MoveItem→F1",
            "FindFolder"
        ]
    );
    assert_eq!(
        syncbridge_sdk::testing::state::get("ews:undeliverable:alice@contoso.com").as_deref(),
        Some("F1")
    );
}

#[test]
fn mail_goes_out_and_failed_mail_moves_aside_in_the_simulator() {
    let sim = start();
    let cfg = cfg(&sim, "");
    // A meeting request in Bob's inbox is not e-mail to track.
    sim.sim
        .ews()
        .add_item(
            "bob@contoso.com",
            "inbox",
            r#"<t:MeetingRequest xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Subject>Budget</t:Subject></t:MeetingRequest>"#,
            None,
        )
        .unwrap();
    let bob_inbox = "inbox:mailbox=bob@contoso.com";
    with_http(host(&[SVC]), || {
        let first = pull(&cfg, bob_inbox, None, 10).unwrap();
        assert!(first.full && first.items.is_empty(), "{:?}", first.items);

        let mut mail = email();
        mail.to = vec![EmailAddress {
            address: "bob@contoso.com".into(),
            name: Some("Bob".into()),
        }];
        let sent = exports::push::<Ews>(
            &cfg,
            OUTBOX,
            vec![op(
                "op1",
                WriteAction::Create,
                None,
                Some(ItemBody::EmailMessage(mail)),
            )],
        )
        .unwrap();
        assert_eq!(sent[0].outcome.as_ref().unwrap().target_id, "sent:op1");

        let page = pull(&cfg, bob_inbox, first.cursor.as_deref(), 10).unwrap();
        assert!(!page.full);
        assert_eq!(page.items.len(), 1, "{:?}", page.items);
        let item = &page.items[0];
        let m = message_of(item);
        assert_eq!(
            (
                m.subject.as_deref(),
                m.from.as_ref().map(|f| f.address.as_str()),
                m.to[0].address.as_str(),
                m.cc[0].address.as_str(),
                m.body.as_deref(),
                m.body_is_html,
                m.internet_message_id.as_deref(),
            ),
            (
                Some("Your quote Q-7 & terms"),
                Some("alice@contoso.com"),
                "bob@contoso.com",
                "bob@fabrikam.com",
                Some("<p>Please find the quote.</p>"),
                true,
                Some("<q7.crm@contoso.com>")
            )
        );
        assert!(m.sent.is_some() && m.received.is_some());
        assert!(item.version.is_some());
        // Alice keeps a copy in her Sent Items.
        assert_eq!(
            sim.sim.ews().items("alice@contoso.com", "sentitems").len(),
            1
        );

        // Dynamics gives up on it: it moves to Inbox/Undeliverable, created now.
        let r = exports::push::<Ews>(
            &cfg,
            bob_inbox,
            vec![op("d1", WriteAction::Deactivate, Some(&item.id), None)],
        )
        .unwrap();
        let new_id = r[0].outcome.as_ref().unwrap().target_id.clone();
        assert_ne!(new_id, item.id);
        let folder = syncbridge_sdk::testing::state::get("ews:undeliverable:bob@contoso.com")
            .expect("the folder id is kept");
        assert_eq!(
            sim.sim
                .ews()
                .items("bob@contoso.com", &folder)
                .iter()
                .map(|i| i.0.as_str())
                .collect::<Vec<_>>(),
            [new_id.as_str()]
        );
        let after = pull(&cfg, bob_inbox, page.cursor.as_deref(), 10).unwrap();
        assert_eq!(
            after
                .items
                .iter()
                .map(|i| (i.id.as_str(), i.removed))
                .collect::<Vec<_>>(),
            [(item.id.as_str(), Some(Removal::Deleted))]
        );
        // Looked up by its new id, the message reads back; the old id is gone.
        let found = exports::lookup::<Ews>(
            &cfg,
            bob_inbox,
            vec![format!("id:{new_id}"), item.id.clone()],
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, new_id);

        // A stale cached folder id recovers: the folder is found again (not created twice).
        syncbridge_sdk::testing::state::set("ews:undeliverable:bob@contoso.com", "AAMkAstale=");
        let mut again = email();
        again.to[0].address = "bob@contoso.com".into();
        exports::push::<Ews>(
            &cfg,
            OUTBOX,
            vec![op(
                "op2",
                WriteAction::Create,
                None,
                Some(ItemBody::EmailMessage(again)),
            )],
        )
        .unwrap();
        let next = pull(&cfg, bob_inbox, after.cursor.as_deref(), 10).unwrap();
        let r = exports::push::<Ews>(
            &cfg,
            bob_inbox,
            vec![op(
                "d2",
                WriteAction::Deactivate,
                Some(&next.items[0].id),
                None,
            )],
        )
        .unwrap();
        assert!(r[0].outcome.is_ok(), "{:?}", r[0].outcome);
        assert_eq!(
            syncbridge_sdk::testing::state::get("ews:undeliverable:bob@contoso.com"),
            Some(folder.clone())
        );
        assert_eq!(sim.sim.ews().items("bob@contoso.com", &folder).len(), 2);
    });
}

/// A send as the server saw it: URL, credential slot, impersonated mailbox.
type Sent = (String, Option<String>, String);

#[test]
fn the_outbox_sends_through_the_outgoing_endpoint_as_the_outgoing_account() {
    let cfg = r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx","impersonate":true,
        "outgoing_url":"https://out.contoso.com/EWS/Exchange.asmx","outgoing_credential":"outgoing",
        "mailbox_credentials":{"bob@contoso.com":"mailbox:bob@contoso.com"}}"#;
    let sent = |scope: &str| {
        let seen: Rc<RefCell<Vec<Sent>>> = Rc::default();
        let log = seen.clone();
        let results = with_http(
            move |r| {
                let body = body_of(r);
                let who = body
                    .split("<t:PrimarySmtpAddress>")
                    .nth(1)
                    .and_then(|rest| rest.split('<').next())
                    .unwrap_or("nobody")
                    .to_owned();
                log.borrow_mut()
                    .push((r.url.clone(), r.credential.clone(), who));
                Ok(syncbridge_sdk::testing::response(200, &envelope(SENT)))
            },
            || {
                exports::push::<Ews>(
                    cfg,
                    scope,
                    vec![op(
                        "op1",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::EmailMessage(email())),
                    )],
                )
            },
        )
        .unwrap();
        assert!(results[0].outcome.is_ok(), "{:?}", results[0].outcome);
        seen.take()
    };
    // The profile's mailboxes: the outgoing account at the outgoing endpoint, impersonating.
    assert_eq!(
        sent(OUTBOX),
        [(
            "https://out.contoso.com/EWS/Exchange.asmx".to_owned(),
            Some("outgoing".to_owned()),
            "alice@contoso.com".to_owned()
        )]
    );
    // A mailbox with its own credential sends with it, as itself.
    assert_eq!(
        sent("outbox:mailbox=bob@contoso.com"),
        [(
            "https://out.contoso.com/EWS/Exchange.asmx".to_owned(),
            Some("mailbox:bob@contoso.com".to_owned()),
            "nobody".to_owned()
        )]
    );
}

/// The check of the outgoing account: the outbox scope with `check=true`.
const CHECK: &str = "outbox:mailbox=alice@contoso.com,check=true";
/// A profile whose mail goes out through another endpoint as another account.
const OUTGOING_CFG: &str = r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx","impersonate":true,
    "outgoing_url":"https://out.contoso.com/EWS/Exchange.asmx","outgoing_credential":"outgoing"}"#;

/// A request as the server saw it: URL, credential slot, body.
type Request = (String, Option<String>, String);

fn get_folder_answer(message: &str) -> String {
    envelope(&format!(
        "<m:GetFolderResponse><m:ResponseMessages>{message}</m:ResponseMessages></m:GetFolderResponse>"
    ))
}

const SENT_ITEMS_FOUND: &str = r#"<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="AAMkSent=" ChangeKey="AQAAAA=="/></t:Folder></m:Folders></m:GetFolderResponseMessage>"#;

#[test]
fn the_outbox_check_opens_sent_items_as_the_outgoing_account_and_sends_nothing() {
    let seen: Rc<RefCell<Vec<Request>>> = Rc::default();
    let log = seen.clone();
    let page = with_http(
        move |r| {
            log.borrow_mut()
                .push((r.url.clone(), r.credential.clone(), body_of(r)));
            Ok(syncbridge_sdk::testing::response(
                200,
                &get_folder_answer(SENT_ITEMS_FOUND),
            ))
        },
        || pull(OUTGOING_CFG, CHECK, None, 1),
    )
    .unwrap();
    // Nothing to read back: an empty page that is not full, as the plain outbox answers.
    assert!(page.items.is_empty() && page.cursor.is_none() && !page.more && !page.full);
    let seen = seen.take();
    assert_eq!(seen.len(), 1, "one request: {seen:?}");
    let (url, credential, body) = &seen[0];
    assert_eq!(url, "https://out.contoso.com/EWS/Exchange.asmx");
    assert_eq!(credential.as_deref(), Some("outgoing"));
    assert!(
        body.contains("<m:GetFolder>")
            && body.contains(r#"<t:DistinguishedFolderId Id="sentitems"/>"#)
            && body.contains("<t:PrimarySmtpAddress>alice@contoso.com</t:PrimarySmtpAddress>")
            && body.contains("<t:BaseShape>IdOnly</t:BaseShape>"),
        "{body}"
    );
    // Without impersonation the folder names its mailbox (delegate access).
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let log = seen.clone();
    with_http(
        move |r| {
            log.borrow_mut().push(body_of(r));
            Ok(syncbridge_sdk::testing::response(
                200,
                &get_folder_answer(SENT_ITEMS_FOUND),
            ))
        },
        || pull(DELEGATE_CFG, CHECK, None, 1),
    )
    .unwrap();
    assert!(
        seen.borrow()[0]
            .contains("<t:Mailbox><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox>"),
        "{}",
        seen.borrow()[0]
    );
}

#[test]
fn a_refused_outgoing_account_fails_the_check_like_any_pull() {
    let check = |status: u16, answer: String| {
        with_http(
            move |_| Ok(syncbridge_sdk::testing::response(status, &answer)),
            || pull(OUTGOING_CFG, CHECK, None, 1),
        )
        .unwrap_err()
    };
    assert_eq!(check(401, String::new()).class(), "auth");
    let refused = |code: &str| {
        get_folder_answer(&format!(
            r#"<m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>refused</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetFolderResponseMessage>"#
        ))
    };
    let e = check(200, refused("ErrorNonExistentMailbox"));
    assert!(
        e.class() == "not-found" && e.describe().contains("alice@contoso.com"),
        "{}",
        e.describe()
    );
    assert_eq!(
        check(200, refused("ErrorImpersonateUserDenied")).class(),
        "forbidden"
    );
    assert_eq!(check(200, refused("ErrorServerBusy")).class(), "throttled");
    assert_eq!(check(503, String::new()).class(), "transient");
}

#[test]
fn the_outbox_check_signs_in_at_the_simulator_as_the_outgoing_account() {
    let sim = start();
    let cfg = cfg(&sim, r#","outgoing_credential":"outgoing""#);
    let sent_before = sim.sim.ews().items("alice@contoso.com", "sentitems").len();
    let right = with_http(
        host(&[SVC, ("outgoing", "svc@contoso.com", "svc-pw")]),
        || pull(&cfg, CHECK, None, 1),
    );
    assert!(right.is_ok(), "{right:?}");
    let wrong = with_http(
        host(&[SVC, ("outgoing", "svc@contoso.com", "not-the-password")]),
        || pull(&cfg, CHECK, None, 1),
    )
    .unwrap_err();
    assert_eq!(wrong.class(), "auth", "{}", wrong.describe());
    assert_eq!(
        sim.sim.ews().items("alice@contoso.com", "sentitems").len(),
        sent_before,
        "nothing is sent"
    );
}
