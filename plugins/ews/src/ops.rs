//! The `m:` operation elements this connector sends, in the schema's element order.

use crate::map::anchor_uri;
use crate::xml::{escape, t};

/// The item kinds of the mailbox scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Calendar,
    Contacts,
    Tasks,
}

impl Kind {
    /// The distinguished folder (`DistinguishedFolderIdNameType`).
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Calendar => "calendar",
            Kind::Contacts => "contacts",
            Kind::Tasks => "tasks",
        }
    }

    /// The item element.
    pub fn element(self) -> &'static str {
        match self {
            Kind::Calendar => "CalendarItem",
            Kind::Contacts => "Contact",
            Kind::Tasks => "Task",
        }
    }

    fn additional(self) -> &'static [&'static str] {
        match self {
            Kind::Calendar => &[
                "item:Body",
                "calendar:StartTimeZone",
                "calendar:EndTimeZone",
                "calendar:Recurrence",
                "calendar:ModifiedOccurrences",
                "calendar:DeletedOccurrences",
                "calendar:OriginalStart",
            ],
            Kind::Contacts | Kind::Tasks => &["item:Body"],
        }
    }
}

/// A folder: distinguished (of a mailbox, named when not impersonating) or by id.
#[derive(Debug, Clone, PartialEq)]
pub enum Folder {
    Distinguished {
        id: &'static str,
        mailbox: Option<String>,
    },
    Id(String),
}

impl Folder {
    /// The `t:DistinguishedFolderId` / `t:FolderId` element.
    pub fn xml(&self) -> String {
        match self {
            Folder::Distinguished {
                id,
                mailbox: Some(m),
            } => format!(
                r#"<t:DistinguishedFolderId Id="{id}"><t:Mailbox>{}</t:Mailbox></t:DistinguishedFolderId>"#,
                t("EmailAddress", m)
            ),
            Folder::Distinguished { id, mailbox: None } => {
                format!(r#"<t:DistinguishedFolderId Id="{id}"/>"#)
            }
            Folder::Id(id) => format!(r#"<t:FolderId Id="{}"/>"#, escape(id)),
        }
    }
}

/// The item shape that reads what the mapping needs (the anchor included).
pub fn item_shape(kind: Kind) -> String {
    let fields: String = kind
        .additional()
        .iter()
        .map(|f| format!(r#"<t:FieldURI FieldURI="{f}"/>"#))
        .collect();
    format!(
        "<m:ItemShape><t:BaseShape>AllProperties</t:BaseShape><t:BodyType>Best</t:BodyType><t:AdditionalProperties>{fields}{}</t:AdditionalProperties></m:ItemShape>",
        anchor_uri()
    )
}

const ID_ONLY: &str = "<m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>";

/// `SyncFolderItems` with ids only (the items are read with GetItem).
pub fn sync_folder_items(folder: &Folder, state: Option<&str>, max: u32) -> String {
    let state = state
        .map(|s| format!("<m:SyncState>{}</m:SyncState>", escape(s)))
        .unwrap_or_default();
    format!(
        "<m:SyncFolderItems>{ID_ONLY}<m:SyncFolderId>{}</m:SyncFolderId>{state}<m:MaxChangesReturned>{}</m:MaxChangesReturned></m:SyncFolderItems>",
        folder.xml(),
        max.clamp(1, 512)
    )
}

fn item_ids(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!(r#"<t:ItemId Id="{}"/>"#, escape(id)))
        .collect()
}

/// `GetItem` of several items.
pub fn get_item(kind: Kind, ids: &[String]) -> String {
    format!(
        "<m:GetItem>{}<m:ItemIds>{}</m:ItemIds></m:GetItem>",
        item_shape(kind),
        item_ids(ids)
    )
}

/// `FindItem` of the items whose anchor is `anchor`.
pub fn find_by_anchor(folder: &Folder, anchor: &str) -> String {
    format!(
        r#"<m:FindItem Traversal="Shallow">{ID_ONLY}<m:IndexedPageItemView MaxEntriesReturned="10" Offset="0" BasePoint="Beginning"/><m:Restriction><t:IsEqualTo>{}<t:FieldURIOrConstant><t:Constant Value="{}"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindItem>"#,
        anchor_uri(),
        escape(anchor),
        folder.xml()
    )
}

/// One page of `FindItem` (ids only), oldest first.
pub fn find_page(folder: &Folder, offset: u32, max: u32) -> String {
    format!(
        r#"<m:FindItem Traversal="Shallow">{ID_ONLY}<m:IndexedPageItemView MaxEntriesReturned="{max}" Offset="{offset}" BasePoint="Beginning"/><m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:DateTimeCreated"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindItem>"#,
        folder.xml()
    )
}

/// `CreateItem` of items into a folder; meetings are saved without sending invitations.
pub fn create_item(folder: &Folder, items: &[String]) -> String {
    format!(
        r#"<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items>{}</m:Items></m:CreateItem>"#,
        folder.xml(),
        items.concat()
    )
}

/// One item's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub change_key: Option<String>,
    /// `t:SetItemField` / `t:DeleteItemField` elements.
    pub updates: String,
}

/// `UpdateItem` of several items; no meeting updates are sent.
pub fn update_item(changes: &[Change]) -> String {
    let inner: String = changes
        .iter()
        .map(|c| {
            let ck = c
                .change_key
                .as_deref()
                .map(|k| format!(r#" ChangeKey="{}""#, escape(k)))
                .unwrap_or_default();
            format!(
                r#"<t:ItemChange><t:ItemId Id="{}"{ck}/><t:Updates>{}</t:Updates></t:ItemChange>"#,
                escape(&c.id),
                c.updates
            )
        })
        .collect();
    format!(
        r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges>{inner}</m:ItemChanges></m:UpdateItem>"#
    )
}

/// `DeleteItem` to Deleted Items, without cancellations.
pub fn delete_item(ids: &[String]) -> String {
    format!(
        r#"<m:DeleteItem DeleteType="MoveToDeletedItems" SendMeetingCancellations="SendToNone" AffectedTaskOccurrences="AllOccurrences"><m:ItemIds>{}</m:ItemIds></m:DeleteItem>"#,
        item_ids(ids)
    )
}

/// `GetFolder` of one folder, its id only: the cheapest call that opens a mailbox's folder.
pub fn get_folder_ids(folder: &Folder) -> String {
    format!(
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{}</m:FolderIds></m:GetFolder>",
        folder.xml()
    )
}

/// `FindFolder` of a child folder by display name.
pub fn find_folder(parent: &Folder, name: &str) -> String {
    format!(
        r#"<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/></t:AdditionalProperties></m:FolderShape><m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURIOrConstant><t:Constant Value="{}"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:ParentFolderIds>{}</m:ParentFolderIds></m:FindFolder>"#,
        escape(name),
        parent.xml()
    )
}

/// `CreateFolder` of a contacts folder.
pub fn create_contacts_folder(parent: &Folder, name: &str) -> String {
    format!(
        "<m:CreateFolder><m:ParentFolderId>{}</m:ParentFolderId><m:Folders><t:ContactsFolder>{}</t:ContactsFolder></m:Folders></m:CreateFolder>",
        parent.xml(),
        t("DisplayName", name)
    )
}

/// The message properties the e-mail scopes read; the body as stored (`Best`: HTML when the
/// message has an HTML body), so `body_is_html` says what the sender wrote.
const MESSAGE_FIELDS: &[&str] = &[
    "item:Subject",
    "item:Body",
    "item:DateTimeReceived",
    "item:DateTimeSent",
    "message:From",
    "message:ToRecipients",
    "message:CcRecipients",
    "message:InternetMessageId",
];

/// `GetItem` of messages: ids, change keys and [`MESSAGE_FIELDS`].
pub fn get_messages(ids: &[String]) -> String {
    let fields: String = MESSAGE_FIELDS
        .iter()
        .map(|f| format!(r#"<t:FieldURI FieldURI="{f}"/>"#))
        .collect();
    format!(
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:BodyType>Best</t:BodyType><t:AdditionalProperties>{fields}</t:AdditionalProperties></m:ItemShape><m:ItemIds>{}</m:ItemIds></m:GetItem>",
        item_ids(ids)
    )
}

/// `CreateItem` that sends a `t:Message` and saves a copy in `saved` (the mailbox's Sent Items).
pub fn send_message(saved: &Folder, message: &str) -> String {
    format!(
        r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId>{}</m:SavedItemFolderId><m:Items>{message}</m:Items></m:CreateItem>"#,
        saved.xml()
    )
}

/// Whether `RequestServerVersion` knows `ReturnNewItemIds` (Exchange 2010 SP1 and later).
pub fn returns_new_item_ids(version: &str) -> bool {
    !matches!(
        version,
        "Exchange2007" | "Exchange2007_SP1" | "Exchange2010"
    )
}

/// `MoveItem` of items into a folder, asking for their new ids when the version knows how.
pub fn move_item(to: &Folder, ids: &[String], version: &str) -> String {
    let new_ids = if returns_new_item_ids(version) {
        "<m:ReturnNewItemIds>true</m:ReturnNewItemIds>"
    } else {
        ""
    };
    format!(
        "<m:MoveItem><m:ToFolderId>{}</m:ToFolderId><m:ItemIds>{}</m:ItemIds>{new_ids}</m:MoveItem>",
        to.xml(),
        item_ids(ids)
    )
}

/// `CreateFolder` of a mail folder (`IPF.Note`).
pub fn create_mail_folder(parent: &Folder, name: &str) -> String {
    format!(
        "<m:CreateFolder><m:ParentFolderId>{}</m:ParentFolderId><m:Folders><t:Folder>{}{}</t:Folder></m:Folders></m:CreateFolder>",
        parent.xml(),
        t("FolderClass", "IPF.Note"),
        t("DisplayName", name)
    )
}

/// `ConvertId` of nothing much: a cheap authenticated call (the server's version, credentials).
pub fn probe() -> String {
    r#"<m:ConvertId DestinationFormat="EwsId"><m:SourceIds><t:AlternateId Format="EwsId" Id="AAAA" Mailbox="probe@example.invalid"/></m:SourceIds></m:ConvertId>"#.into()
}
