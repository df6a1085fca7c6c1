//! Mail behaviour the `ews` connector's e-mail scopes rely on, through [`ops::dispatch`], with
//! every response checked against `../shared/oracles/ews/schema/ews-all.xsd` (xmllint): sent
//! and delivered messages and their properties, SyncFolderItems of the inbox, FindFolder by
//! display name, CreateFolder of a mail folder, MoveItem's new ids.

use super::*;

const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@contoso.com";

fn store() -> Store {
    let s = Store::new(crate::config::Services::ALL, 1);
    let h = EwsHandle(&s);
    h.add_account(ALICE, "alice-pw", false);
    h.add_account(BOB, "bob-pw", false);
    s
}

/// Runs one operation (the `m:` element, prefixes `m:`/`t:` declared here) as `mailbox`;
/// answers the whole envelope, validated against the schema.
fn call(s: &Store, mailbox: &str, op: &str) -> (String, Elem) {
    let wrapped = format!(r#"<w xmlns:m="{M}" xmlns:t="{T}">{op}</w>"#);
    let el = xml::parse(&wrapped)
        .unwrap_or_else(|e| panic!("{e}: {op}"))
        .children
        .remove(0);
    let body = match ops::dispatch(s, mailbox, &el, "Exchange2013_SP1") {
        Ok(b) => b,
        Err(r) => panic!("a fault for {op}: {}", r.status()),
    };
    let doc = envelope(&body);
    validate(&doc);
    let parsed = xml::parse(&doc).unwrap();
    let response = parsed
        .path(&["Body"])
        .and_then(|b| b.children.first())
        .cloned()
        .unwrap();
    (doc, response)
}

fn validate(doc: &str) {
    let xsd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/oracles/ews/schema/ews-all.xsd"
    );
    let dir = std::env::temp_dir().join(format!("sbsim-ews-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.xml", uuid::Uuid::new_v4()));
    std::fs::write(&file, doc).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", xsd])
        .arg(&file)
        .output()
        .expect("xmllint runs (apt-get install libxml2-utils)");
    assert!(
        out.status.success(),
        "{}\n{doc}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The response messages of an operation's answer.
fn messages(response: &Elem) -> Vec<&Elem> {
    response
        .child("ResponseMessages")
        .map(|m| m.children.iter().collect())
        .unwrap_or_default()
}

fn code(msg: &Elem) -> &str {
    msg.child("ResponseCode")
        .map(Elem::text)
        .unwrap_or_default()
}

const GET_MESSAGE_SHAPE: &str = r#"<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:BodyType>Best</t:BodyType><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/><t:FieldURI FieldURI="item:Body"/><t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURI FieldURI="item:DateTimeSent"/><t:FieldURI FieldURI="message:From"/><t:FieldURI FieldURI="message:ToRecipients"/><t:FieldURI FieldURI="message:CcRecipients"/><t:FieldURI FieldURI="message:InternetMessageId"/></t:AdditionalProperties></m:ItemShape>"#;

fn get_message(s: &Store, mailbox: &str, id: &str) -> Elem {
    let (_, r) = call(
        s,
        mailbox,
        &format!(
            r#"<m:GetItem>{GET_MESSAGE_SHAPE}<m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
        ),
    );
    let msg = messages(&r)[0].clone();
    assert_eq!(code(&msg), "NoError", "{msg:?}");
    msg.path(&["Items", "Message"]).cloned().unwrap()
}

fn sync(s: &Store, mailbox: &str, state: Option<&str>) -> (String, Vec<(String, String, String)>) {
    let state = state
        .map(|s| format!("<m:SyncState>{s}</m:SyncState>"))
        .unwrap_or_default();
    let (_, r) = call(
        s,
        mailbox,
        &format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>{state}<m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>"#
        ),
    );
    let msg = messages(&r)[0].clone();
    assert_eq!(code(&msg), "NoError", "{msg:?}");
    let changes = msg
        .child("Changes")
        .map(|c| {
            c.children
                .iter()
                .map(|ch| {
                    let el = if ch.name == "Delete" {
                        ch
                    } else {
                        &ch.children[0]
                    };
                    let id = id_of(el).unwrap_or_else(|| panic!("an ItemId in {ch:?}"));
                    (ch.name.clone(), el.name.clone(), id)
                })
                .collect()
        })
        .unwrap_or_default();
    (msg.child("SyncState").unwrap().text().to_string(), changes)
}

fn id_of(el: &Elem) -> Option<String> {
    el.child("ItemId")
        .and_then(|i| i.attr("Id"))
        .map(str::to_string)
}

fn mailbox_addresses(message: &Elem, field: &str) -> Vec<String> {
    message
        .child(field)
        .map(|f| {
            f.children_named("Mailbox")
                .filter_map(|m| m.child("EmailAddress").map(|e| e.text().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sent_and_seeded_messages_carry_their_message_properties() {
    let s = store();
    let (_, r) = call(
        &s,
        BOB,
        &format!(
            r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>Quote</t:Subject><t:Body BodyType="HTML">&lt;p&gt;Hi&lt;/p&gt;</t:Body><t:ToRecipients><t:Mailbox><t:Name>Alice</t:Name><t:EmailAddress>{ALICE}</t:EmailAddress></t:Mailbox></t:ToRecipients><t:CcRecipients><t:Mailbox><t:EmailAddress>carol@fabrikam.com</t:EmailAddress></t:Mailbox></t:CcRecipients><t:InternetMessageId>&lt;q-1@contoso.com&gt;</t:InternetMessageId></t:Message></m:Items></m:CreateItem>"#
        ),
    );
    // SendAndSaveCopy answers no item.
    let msg = messages(&r)[0];
    assert_eq!(code(msg), "NoError");
    assert!(msg.child("Items").is_some_and(|i| i.children.is_empty()));

    let h = EwsHandle(&s);
    h.add_item(
        ALICE,
        "inbox",
        &format!(
            r#"<t:Message xmlns:t="{T}"><t:Subject>Seeded</t:Subject><t:Body BodyType="Text">plain</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>{ALICE}</t:EmailAddress></t:Mailbox></t:ToRecipients><t:From><t:Mailbox><t:Name>Dan</t:Name><t:EmailAddress>dan@fabrikam.com</t:EmailAddress></t:Mailbox></t:From><t:DateTimeReceived>2026-03-01T09:00:00Z</t:DateTimeReceived></t:Message>"#
        ),
        None,
    )
    .unwrap();

    let (state, changes) = sync(&s, ALICE, None);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes
        .iter()
        .all(|(c, el, _)| c == "Create" && el == "Message"));

    let delivered = get_message(&s, ALICE, &changes[0].2);
    let sent_copy_id = h.items(BOB, "sentitems")[0].0.clone();
    let sent_copy = get_message(&s, BOB, &sent_copy_id);
    for m in [&delivered, &sent_copy] {
        assert_eq!(m.child("Subject").unwrap().text(), "Quote");
        assert_eq!(m.child("Body").unwrap().attr("BodyType"), Some("HTML"));
        assert_eq!(
            m.path(&["From", "Mailbox", "EmailAddress"]).unwrap().text(),
            BOB
        );
        assert_eq!(mailbox_addresses(m, "ToRecipients"), [ALICE]);
        assert_eq!(mailbox_addresses(m, "CcRecipients"), ["carol@fabrikam.com"]);
        assert_eq!(
            m.child("InternetMessageId").unwrap().text(),
            "<q-1@contoso.com>"
        );
        assert!(m.child("DateTimeReceived").is_some());
    }
    // One send: the copies share the sent time.
    assert_eq!(
        delivered.child("DateTimeSent").unwrap().text(),
        sent_copy.child("DateTimeSent").unwrap().text()
    );

    let seeded = get_message(&s, ALICE, &changes[1].2);
    assert_eq!(
        (
            seeded.child("DateTimeSent").unwrap().text(),
            seeded.child("DateTimeReceived").unwrap().text(),
            seeded.path(&["From", "Mailbox", "Name"]).unwrap().text(),
        ),
        ("2026-03-01T09:00:00Z", "2026-03-01T09:00:00Z", "Dan")
    );
    let id = seeded.child("InternetMessageId").unwrap().text();
    assert!(
        id.starts_with('<') && id.ends_with("@fabrikam.com>"),
        "{id}"
    );

    // Nothing changed since: an empty page.
    let (_, none) = sync(&s, ALICE, Some(&state));
    assert!(none.is_empty(), "{none:?}");
}

const FIND_UNDELIVERABLE: &str = r#"<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/></t:AdditionalProperties></m:FolderShape><m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURIOrConstant><t:Constant Value="undeliverable"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindFolder>"#;

fn create_under_inbox(s: &Store, name: &str) -> Elem {
    let (_, r) = call(
        s,
        ALICE,
        &format!(
            r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderId><m:Folders><t:Folder><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>{name}</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#
        ),
    );
    messages(&r)[0].clone()
}

fn found_folders(s: &Store) -> Vec<(String, String)> {
    let (_, r) = call(s, ALICE, FIND_UNDELIVERABLE);
    let msg = messages(&r)[0];
    assert_eq!(code(msg), "NoError");
    msg.path(&["RootFolder", "Folders"])
        .map(|f| {
            f.children
                .iter()
                .map(|f| {
                    (
                        f.child("FolderId")
                            .and_then(|i| i.attr("Id"))
                            .unwrap()
                            .to_string(),
                        f.child("DisplayName").unwrap().text().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn find_folder_keeps_what_its_restriction_names_and_create_folder_makes_mail_folders() {
    let s = store();
    assert!(found_folders(&s).is_empty());
    let other = create_under_inbox(&s, "Projects");
    assert_eq!(code(&other), "NoError");
    assert!(
        found_folders(&s).is_empty(),
        "another child folder does not match"
    );
    let created = create_under_inbox(&s, "Undeliverable");
    assert_eq!(code(&created), "NoError");
    // A mail folder answers as t:Folder.
    let id = created
        .path(&["Folders", "Folder", "FolderId"])
        .and_then(|f| f.attr("Id"))
        .unwrap()
        .to_string();
    // Display names compare without case, as Exchange compares them.
    assert_eq!(found_folders(&s), [(id.clone(), "Undeliverable".into())]);
    let again = create_under_inbox(&s, "Undeliverable");
    assert_eq!(code(&again), "ErrorFolderExists");
    let (_, r) = call(
        &s,
        ALICE,
        &format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds><t:FolderId Id="{id}"/></m:FolderIds></m:GetFolder>"#
        ),
    );
    assert_eq!(
        messages(&r)[0]
            .path(&["Folders", "Folder", "FolderClass"])
            .map(Elem::text),
        Some("IPF.Note")
    );
}

fn move_to(s: &Store, folder: &str, id: &str, new_ids: Option<bool>) -> Elem {
    let flag = new_ids
        .map(|b| format!("<m:ReturnNewItemIds>{b}</m:ReturnNewItemIds>"))
        .unwrap_or_default();
    let (_, r) = call(
        s,
        ALICE,
        &format!(
            r#"<m:MoveItem><m:ToFolderId><t:FolderId Id="{folder}"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds>{flag}</m:MoveItem>"#
        ),
    );
    messages(&r)[0].clone()
}

#[test]
fn moving_a_message_out_of_the_inbox_answers_its_new_id_and_syncs_as_a_delete() {
    let s = store();
    let h = EwsHandle(&s);
    let message = format!(
        r#"<t:Message xmlns:t="{T}"><t:Subject>Bounce</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>{ALICE}</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message>"#
    );
    let first = h.add_item(ALICE, "inbox", &message, None).unwrap();
    let second = h.add_item(ALICE, "inbox", &message, None).unwrap();
    let (state, _) = sync(&s, ALICE, None);
    let folder = create_under_inbox(&s, "Undeliverable")
        .path(&["Folders", "Folder", "FolderId"])
        .and_then(|f| f.attr("Id"))
        .unwrap()
        .to_string();

    let moved = move_to(&s, &folder, &first, Some(true));
    assert_eq!(code(&moved), "NoError");
    let new_id = moved
        .path(&["Items", "Message", "ItemId"])
        .and_then(|i| i.attr("Id"))
        .unwrap()
        .to_string();
    assert_ne!(new_id, first);
    assert_eq!(h.items(ALICE, &folder).len(), 1);
    assert_eq!(h.items(ALICE, &folder)[0].0, new_id);
    // Tests may name the folder by its display name.
    assert_eq!(h.items(ALICE, "undeliverable"), h.items(ALICE, &folder));
    assert!(h.items(BOB, "Undeliverable").is_empty());

    // ReturnNewItemIds false: moved, no ids answered.
    let quiet = move_to(&s, &folder, &second, Some(false));
    assert_eq!(code(&quiet), "NoError");
    assert!(quiet.child("Items").is_some_and(|i| i.children.is_empty()));

    // The inbox reports both as deleted.
    let (_, changes) = sync(&s, ALICE, Some(&state));
    let mut deleted: Vec<&str> = changes
        .iter()
        .filter(|(c, _, _)| c == "Delete")
        .map(|(_, _, id)| id.as_str())
        .collect();
    deleted.sort();
    let mut expected = [first.as_str(), second.as_str()];
    expected.sort();
    assert_eq!(deleted, expected, "{changes:?}");

    // A folder that is gone fails each item; an item that is gone says so.
    let stale = move_to(&s, "AAMkAgone=", &new_id, Some(true));
    assert_eq!(code(&stale), "ErrorFolderNotFound");
    let gone = move_to(&s, &folder, &first, Some(true));
    assert_eq!(code(&gone), "ErrorItemNotFound");
}

const OWNER_URI: &str = r#"<t:ExtendedFieldURI PropertySetId="b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11" PropertyName="syncbridgeSyncOwner" PropertyType="String"/>"#;

fn root_of(mailbox: &str) -> String {
    format!(
        r#"<t:DistinguishedFolderId Id="msgfolderroot"><t:Mailbox><t:EmailAddress>{mailbox}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#
    )
}

/// GetFolder of `mailbox`'s root folder as `as_mailbox` asking for the sync owner: the response
/// message, and the owner's value when the folder carries it.
fn get_owner(s: &Store, as_mailbox: &str, mailbox: &str) -> (Elem, Option<String>) {
    let (_, r) = call(
        s,
        as_mailbox,
        &format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{OWNER_URI}</t:AdditionalProperties></m:FolderShape><m:FolderIds>{}</m:FolderIds></m:GetFolder>"#,
            root_of(mailbox)
        ),
    );
    let msg = messages(&r)[0].clone();
    let value = msg
        .path(&["Folders", "Folder"])
        .map(|f| f.children_named("ExtendedProperty").collect::<Vec<_>>())
        .map(|props| {
            assert!(props.len() <= 1, "one value a property: {props:?}");
            props
                .first()
                .and_then(|p| p.child("Value"))
                .map(|v| v.text().to_string())
        })
        .unwrap_or_default();
    (msg, value)
}

fn set_owner(s: &Store, as_mailbox: &str, mailbox: &str, folder_property: &str) -> Elem {
    let (_, r) = call(
        s,
        as_mailbox,
        &format!(
            r#"<m:UpdateFolder><m:FolderChanges><t:FolderChange>{}<t:Updates><t:SetFolderField>{OWNER_URI}<t:Folder>{folder_property}</t:Folder></t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>"#,
            root_of(mailbox)
        ),
    );
    messages(&r)[0].clone()
}

fn owner_property(value: &str) -> String {
    format!("<t:ExtendedProperty>{OWNER_URI}<t:Value>{value}</t:Value></t:ExtendedProperty>")
}

#[test]
fn the_root_folder_keeps_the_sync_owner_property_update_folder_writes() {
    let s = store();
    let h = EwsHandle(&s);
    // Unmarked: the folder answers without the property.
    let (msg, owner) = get_owner(&s, ALICE, ALICE);
    assert_eq!(code(&msg), "NoError");
    assert!(msg.path(&["Folders", "Folder", "FolderId"]).is_some());
    assert_eq!(owner, None);
    assert_eq!(h.sync_owner(ALICE), None);

    let set = set_owner(&s, ALICE, ALICE, &owner_property("org-a &lt;prod&gt;"));
    assert_eq!(code(&set), "NoError", "{set:?}");
    assert!(set.path(&["Folders", "Folder", "FolderId"]).is_some());
    assert_eq!(
        get_owner(&s, ALICE, ALICE).1.as_deref(),
        Some("org-a <prod>")
    );
    assert_eq!(h.sync_owner(ALICE).as_deref(), Some("org-a <prod>"));
    // Another value replaces it (one property, not two); bob's mailbox is untouched.
    assert_eq!(
        code(&set_owner(&s, ALICE, ALICE, &owner_property("org-b"))),
        "NoError"
    );
    assert_eq!(get_owner(&s, ALICE, ALICE).1.as_deref(), Some("org-b"));
    assert_eq!(get_owner(&s, BOB, BOB).1, None);
    // The property is answered only when the shape names it.
    let (_, r) = call(
        &s,
        ALICE,
        &format!(
            r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{}</m:FolderIds></m:GetFolder>"#,
            root_of(ALICE)
        ),
    );
    assert!(messages(&r)[0]
        .path(&["Folders", "Folder", "ExtendedProperty"])
        .is_none());

    // Tests mark a mailbox as another organization would, and unmark it.
    assert!(h.set_sync_owner(BOB, Some("org-c")));
    assert_eq!(get_owner(&s, BOB, BOB).1.as_deref(), Some("org-c"));
    assert!(h.set_sync_owner(BOB, None));
    assert_eq!(get_owner(&s, BOB, BOB).1, None);
    assert!(!h.set_sync_owner("nobody@contoso.com", Some("x")));

    // DeleteFolderField removes it.
    let (_, r) = call(
        &s,
        ALICE,
        &format!(
            r#"<m:UpdateFolder><m:FolderChanges><t:FolderChange>{}<t:Updates><t:DeleteFolderField>{OWNER_URI}</t:DeleteFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>"#,
            root_of(ALICE)
        ),
    );
    assert_eq!(code(messages(&r)[0]), "NoError");
    assert_eq!(h.sync_owner(ALICE), None);
}

#[test]
fn update_folder_errors_are_exchanges() {
    let s = store();
    // A mailbox that does not exist, another mailbox without rights to it.
    let (msg, _) = get_owner(&s, ALICE, "nobody@contoso.com");
    assert_eq!(code(&msg), "ErrorNonExistentMailbox");
    let msg = set_owner(&s, ALICE, "nobody@contoso.com", &owner_property("x"));
    assert_eq!(code(&msg), "ErrorNonExistentMailbox");
    let (msg, _) = get_owner(&s, ALICE, BOB);
    assert_eq!(code(&msg), "ErrorAccessDenied");
    let msg = set_owner(&s, ALICE, BOB, &owner_property("x"));
    assert_eq!(code(&msg), "ErrorAccessDenied");
    assert_eq!(EwsHandle(&s).sync_owner(BOB), None);
    // The folder's property must be the one the path names.
    let other = r#"<t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11" PropertyName="syncbridgeAnchor" PropertyType="String"/><t:Value>x</t:Value></t:ExtendedProperty>"#;
    let msg = set_owner(&s, ALICE, ALICE, other);
    assert_eq!(code(&msg), "ErrorUpdatePropertyMismatch");
    let msg = set_owner(&s, ALICE, ALICE, "<t:DisplayName>x</t:DisplayName>");
    assert_eq!(code(&msg), "ErrorIncorrectUpdatePropertyCount");
    assert_eq!(EwsHandle(&s).sync_owner(ALICE), None);
}
