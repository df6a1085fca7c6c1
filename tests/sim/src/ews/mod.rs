//! Exchange Web Services (SOAP 1.1, `/EWS/Exchange.asmx`) and POX Autodiscover simulator.
//!
//! Requests are parsed by namespace URI (any prefix). Responses use `s:`/`m:`/`t:` prefixes and
//! follow the element order of `types.xsd`/`messages.xsd` so that they validate against
//! `../shared/oracles/ews/schema/ews-all.xsd`.

mod autodiscover;
mod ops;
pub mod order;
pub mod recur;
pub mod xml;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::Store;
use crate::util::lock;
use xml::{escape, Elem, M, SOAP, T};

/// An account that can log on with Basic authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EwsAccount {
    /// Primary SMTP address (also the logon name; `DOMAIN\alias` logons match the alias).
    pub email: String,
    /// Password.
    pub password: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Holds the ApplicationImpersonation role.
    #[serde(default)]
    pub can_impersonate: bool,
    /// Has a mailbox (service accounts may not).
    #[serde(default = "yes")]
    pub has_mailbox: bool,
    /// Multi-factor authentication is on: a Basic logon with the password is refused (HTTP 401,
    /// like a wrong password); only `app_password` signs in.
    #[serde(default)]
    pub mfa_required: bool,
    /// The app password of an account with multi-factor authentication.
    #[serde(default)]
    pub app_password: Option<String>,
    /// The mailbox was moved to Exchange Online; on premises only a remote mailbox remains:
    /// opening it on premises answers HTTP 401 (what a hybrid profile meets for a cloud
    /// mailbox, KB 3212785 cause 2), and Autodiscover redirects to its target address
    /// `<alias>@<domain's first label>.mail.onmicrosoft.com`.
    #[serde(default)]
    pub in_exchange_online: bool,
}

impl EwsAccount {
    /// The Exchange Online address a remote mailbox's Autodiscover redirects to.
    pub fn target_address(&self) -> String {
        let (alias, domain) = self.email.split_once('@').unwrap_or((&self.email, ""));
        let tenant = domain.split('.').next().unwrap_or(domain);
        format!("{alias}@{tenant}.mail.onmicrosoft.com")
    }
}

fn yes() -> bool {
    true
}

/// One item of a seeded mailbox folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EwsItemSeed {
    /// Distinguished folder (`calendar`, `contacts`, `tasks`, `inbox`, …) or a folder id.
    pub folder: String,
    /// The item as EWS XML in the types namespace, e.g.
    /// `<t:Contact xmlns:t="…/types"><t:GivenName>Ann</t:GivenName></t:Contact>`; a
    /// `t:Message` is stored as received (see [`EwsHandle::add_item`]).
    pub xml: String,
    /// Fixed item id (generated when absent).
    #[serde(default)]
    pub id: Option<String>,
}

/// EWS section of a seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EwsSeed {
    /// Accounts (a mailbox is created for each unless `hasMailbox` is false).
    pub accounts: Vec<EwsAccount>,
    /// Items keyed by mailbox SMTP address.
    pub items: BTreeMap<String, Vec<EwsItemSeed>>,
}

/// A folder.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Folder id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `IPF.Appointment`, `IPF.Contact`, `IPF.Task`, `IPF.Note`.
    pub class: String,
    /// Distinguished id (`calendar`…).
    pub distinguished: Option<String>,
    /// Parent folder id.
    pub parent: Option<String>,
    /// Owning mailbox (lowercase SMTP), `None` for public folders.
    pub mailbox: Option<String>,
    /// Extended properties set on the folder (`t:ExtendedProperty` elements: the
    /// `t:ExtendedFieldURI` as written and the `t:Value`), written with UpdateFolder and
    /// answered by GetFolder/FindFolder when their shape names them.
    pub extended: Vec<Elem>,
}

impl Folder {
    /// Element name of the folder kind.
    pub fn element(&self) -> &'static str {
        let c = self.class.as_str();
        let is = |p: &str| c == p || c.starts_with(&format!("{p}."));
        if is("IPF.Appointment") {
            "CalendarFolder"
        } else if is("IPF.Contact") {
            "ContactsFolder"
        } else if is("IPF.Task") {
            "TasksFolder"
        } else {
            "Folder"
        }
    }
}

/// A stored item.
#[derive(Debug, Clone)]
pub struct EwsItem {
    /// Item id.
    pub id: String,
    /// Change key (changes on every update).
    pub change_key: String,
    /// Folder id.
    pub folder: String,
    /// `Message`, `CalendarItem`, `Contact`, `Task` or `Item`.
    pub kind: String,
    /// Properties (children of the item element, types namespace).
    pub props: Vec<Elem>,
    /// Sequence number of the creation.
    pub created_seq: u64,
    /// Sequence number of the last change.
    pub seq: u64,
    /// Deleted (tombstone kept for SyncFolderItems).
    pub deleted: bool,
    /// Recurring master: modified occurrences (1-based instance index, full properties).
    pub exceptions: Vec<(u32, Vec<Elem>)>,
    /// Recurring master: deleted occurrences (1-based instance indexes).
    pub deleted_occurrences: Vec<u32>,
}

impl EwsItem {
    /// A property by name.
    pub fn prop(&self, name: &str) -> Option<&Elem> {
        self.props.iter().find(|p| p.name == name)
    }
}

/// EWS state.
#[derive(Debug, Default)]
pub struct EwsState {
    /// Accounts.
    pub accounts: Vec<EwsAccount>,
    /// All folders (mailbox and public).
    pub folders: Vec<Folder>,
    /// All items.
    pub items: Vec<EwsItem>,
    /// Change counter.
    pub seq: u64,
}

/// Creates an opaque EWS-style id.
pub fn new_id() -> String {
    let raw = uuid::Uuid::new_v4();
    format!(
        "AAMkA{}=",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw.as_bytes())
    )
}

/// Every distinguished folder of `DistinguishedFolderIdNameType` except `publicfoldersroot`
/// (shared by all mailboxes): (id, display name, folder class, parent's distinguished id).
/// `root` is the mailbox root; the archive folders hang under `archiveroot`, a second root.
const DISTINGUISHED: &[(&str, &str, &str, &str)] = &[
    ("root", "", "", ""),
    (
        "msgfolderroot",
        "Top of Information Store",
        "IPF.Note",
        "root",
    ),
    ("inbox", "Inbox", "IPF.Note", "msgfolderroot"),
    ("sentitems", "Sent Items", "IPF.Note", "msgfolderroot"),
    ("drafts", "Drafts", "IPF.Note", "msgfolderroot"),
    ("deleteditems", "Deleted Items", "IPF.Note", "msgfolderroot"),
    ("outbox", "Outbox", "IPF.Note", "msgfolderroot"),
    ("junkemail", "Junk Email", "IPF.Note", "msgfolderroot"),
    ("calendar", "Calendar", "IPF.Appointment", "msgfolderroot"),
    ("contacts", "Contacts", "IPF.Contact", "msgfolderroot"),
    ("tasks", "Tasks", "IPF.Task", "msgfolderroot"),
    ("notes", "Notes", "IPF.StickyNote", "msgfolderroot"),
    ("journal", "Journal", "IPF.Journal", "msgfolderroot"),
    (
        "conversationhistory",
        "Conversation History",
        "IPF.Note",
        "msgfolderroot",
    ),
    ("scheduled", "Scheduled", "IPF.Note", "msgfolderroot"),
    ("syncissues", "Sync Issues", "IPF.Note", "msgfolderroot"),
    ("conflicts", "Conflicts", "IPF.Note", "syncissues"),
    ("localfailures", "Local Failures", "IPF.Note", "syncissues"),
    (
        "serverfailures",
        "Server Failures",
        "IPF.Note",
        "syncissues",
    ),
    (
        "recipientcache",
        "Recipient Cache",
        "IPF.Contact.RecipientCache",
        "contacts",
    ),
    (
        "quickcontacts",
        "{06967759-274D-40B2-A3EB-D7F9E73727D7}",
        "IPF.Contact.MOC.QuickContacts",
        "contacts",
    ),
    (
        "imcontactlist",
        "{A9E2BC46-B3A0-4243-B315-60D991004455}",
        "IPF.Contact.MOC.ImContactList",
        "contacts",
    ),
    ("peopleconnect", "PeopleConnect", "IPF.Note", "contacts"),
    (
        "externalcontacts",
        "ExternalContacts",
        "IPF.Contact",
        "contacts",
    ),
    ("orionnotes", "Orion Notes", "IPF.Note", "msgfolderroot"),
    ("teamchat", "TeamChat", "IPF.Note", "msgfolderroot"),
    ("searchfolders", "Finder", "", "root"),
    ("todosearch", "To-Do Search", "IPF.Task", "searchfolders"),
    (
        "mycontacts",
        "My Contacts",
        "IPF.Contact.MOC.MyContacts",
        "searchfolders",
    ),
    ("favorites", "Favorites", "IPF.Note", "searchfolders"),
    (
        "voicemail",
        "Voice Mail",
        "IPF.Note.Microsoft.Voicemail",
        "searchfolders",
    ),
    (
        "alltaggeditems",
        "AllTaggedItems",
        "IPF.Note",
        "searchfolders",
    ),
    ("recoverableitemsroot", "Recoverable Items", "", "root"),
    (
        "recoverableitemsdeletions",
        "Deletions",
        "",
        "recoverableitemsroot",
    ),
    (
        "recoverableitemsversions",
        "Versions",
        "",
        "recoverableitemsroot",
    ),
    (
        "recoverableitemspurges",
        "Purges",
        "",
        "recoverableitemsroot",
    ),
    (
        "recoverableitemsdiscoveryholds",
        "DiscoveryHolds",
        "",
        "recoverableitemsroot",
    ),
    ("adminauditlogs", "AdminAuditLogs", "", "root"),
    ("directory", "Directory", "", "root"),
    ("mecontact", "MeContact", "IPF.Contact", "root"),
    ("personmetadata", "PersonMetadata", "", "root"),
    ("tagitems", "TagItems", "", "root"),
    ("teamspaceactivity", "TeamspaceActivity", "", "root"),
    ("teamspacemessaging", "TeamspaceMessaging", "", "root"),
    ("teamspaceworkitems", "TeamspaceWorkItems", "", "root"),
    ("yammerroot", "Yammer Root", "IPF.Note", "root"),
    ("yammerinbound", "Inbound", "IPF.Note", "yammerroot"),
    ("yammeroutbound", "Outbound", "IPF.Note", "yammerroot"),
    ("yammerfeeds", "Feeds", "IPF.Note", "yammerroot"),
    ("onedriveroot", "OneDriveRoot", "", "root"),
    (
        "onedriverecylebin",
        "OneDriveRecycleBin",
        "",
        "onedriveroot",
    ),
    ("onedrivesystem", "OneDriveSystem", "", "onedriveroot"),
    ("onedrivevolume", "OneDriveVolume", "", "onedriveroot"),
    ("archiveroot", "", "", ""),
    (
        "archivemsgfolderroot",
        "Top of Information Store",
        "IPF.Note",
        "archiveroot",
    ),
    ("archiveinbox", "Inbox", "IPF.Note", "archivemsgfolderroot"),
    (
        "archivedeleteditems",
        "Deleted Items",
        "IPF.Note",
        "archivemsgfolderroot",
    ),
    (
        "archiverecoverableitemsroot",
        "Recoverable Items",
        "",
        "archiveroot",
    ),
    (
        "archiverecoverableitemsdeletions",
        "Deletions",
        "",
        "archiverecoverableitemsroot",
    ),
    (
        "archiverecoverableitemsversions",
        "Versions",
        "",
        "archiverecoverableitemsroot",
    ),
    (
        "archiverecoverableitemspurges",
        "Purges",
        "",
        "archiverecoverableitemsroot",
    ),
    (
        "archiverecoverableitemsdiscoveryholds",
        "DiscoveryHolds",
        "",
        "archiverecoverableitemsroot",
    ),
];

impl EwsState {
    /// Next change number.
    pub fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Adds an account (and its mailbox folders).
    pub fn add_account(&mut self, a: EwsAccount) {
        let key = a.email.to_ascii_lowercase();
        if a.has_mailbox
            && !self
                .folders
                .iter()
                .any(|f| f.mailbox.as_deref() == Some(key.as_str()))
        {
            let mut ids: BTreeMap<&str, String> = BTreeMap::new();
            for (d, name, class, parent) in DISTINGUISHED {
                let id = new_id();
                ids.insert(d, id.clone());
                self.folders.push(Folder {
                    id,
                    name: name.to_string(),
                    class: class.to_string(),
                    distinguished: Some(d.to_string()),
                    parent: ids.get(parent).cloned(),
                    mailbox: Some(key.clone()),
                    extended: vec![],
                });
            }
        }
        self.accounts
            .retain(|x| !x.email.eq_ignore_ascii_case(&a.email));
        self.accounts.push(a);
        if !self
            .folders
            .iter()
            .any(|f| f.distinguished.as_deref() == Some("publicfoldersroot"))
        {
            self.folders.push(Folder {
                id: new_id(),
                name: "IPM_SUBTREE".into(),
                class: "IPF.Note".into(),
                distinguished: Some("publicfoldersroot".into()),
                parent: None,
                mailbox: None,
                extended: vec![],
            });
        }
    }

    /// Finds a folder by distinguished id (within `mailbox`) or folder id.
    pub fn folder(&self, mailbox: &str, id_or_distinguished: &str) -> Option<&Folder> {
        let mb = mailbox.to_ascii_lowercase();
        self.folders.iter().find(|f| {
            f.id == id_or_distinguished
                || (f.distinguished.as_deref() == Some(id_or_distinguished)
                    && (f.mailbox.as_deref() == Some(mb.as_str()) || f.mailbox.is_none()))
        })
    }

    /// Stores a new item built from an item element (`t:Contact`…); returns its id.
    pub fn create_item(
        &mut self,
        mailbox: &str,
        folder_id: &str,
        item: &Elem,
        fixed_id: Option<String>,
    ) -> String {
        let seq = self.bump();
        let owner = self
            .accounts
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(mailbox))
            .cloned();
        let id = fixed_id.unwrap_or_else(new_id);
        let props = ops::with_server_props(&item.name, item.children.clone(), owner.as_ref());
        self.items.push(EwsItem {
            id: id.clone(),
            change_key: new_change_key(),
            folder: folder_id.to_string(),
            kind: item.name.clone(),
            props,
            created_seq: seq,
            seq,
            deleted: false,
            exceptions: vec![],
            deleted_occurrences: vec![],
        });
        id
    }

    /// Adds seed data.
    pub fn apply_seed(&mut self, seed: &EwsSeed) {
        for a in &seed.accounts {
            self.add_account(a.clone());
        }
        for (mb, items) in &seed.items {
            for it in items {
                let Some(folder) = self.folder(mb, &it.folder).map(|f| f.id.clone()) else {
                    continue;
                };
                if let Ok(mut el) = xml::parse(&it.xml) {
                    ops::as_received(&mut el, mb);
                    self.create_item(mb, &folder, &el, it.id.clone());
                }
            }
        }
    }

    /// JSON dump.
    pub fn dump(&self) -> Value {
        json!({
            "accounts": self.accounts,
            "folders": self.folders.iter().map(|f| {
                let mut v = json!({"id": f.id, "name": f.name, "class": f.class, "distinguished": f.distinguished, "mailbox": f.mailbox, "parent": f.parent});
                if !f.extended.is_empty() {
                    v["extendedProperties"] = json!(f.extended.iter().map(Elem::to_xml).collect::<Vec<_>>());
                }
                v
            }).collect::<Vec<_>>(),
            "items": self.items.iter().filter(|i| !i.deleted).map(|i| json!({"id": i.id, "folder": i.folder, "kind": i.kind,
                "props": i.props.iter().map(|p| (p.name.clone(), Value::String(if p.children.is_empty() { p.text.clone() } else { p.to_xml() }))).collect::<serde_json::Map<_, _>>()})).collect::<Vec<_>>(),
        })
    }
}

/// The property set of syncbridge's extended properties (the connectors' anchor and the
/// mailbox's sync owner).
pub const SYNCBRIDGE_PROPERTY_SET: &str = "b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11";
/// The String property of a mailbox's root folder (`msgfolderroot`) naming the organization
/// that synchronizes the mailbox (WIT 0.1.5 `mailbox-owner-api`).
pub const SYNC_OWNER_PROPERTY: &str = "syncbridgeSyncOwner";

/// The `t:ExtendedFieldURI` of a String named property.
pub fn named_string_uri(set: &str, name: &str) -> Elem {
    Elem::t("ExtendedFieldURI", "")
        .with_attr("PropertySetId", set)
        .with_attr("PropertyName", name)
        .with_attr("PropertyType", "String")
}

impl Folder {
    /// The value of an extended property stored on the folder (matched as GetFolder matches
    /// an `ExtendedFieldURI`).
    pub fn extended_value(&self, uri: &Elem) -> Option<&str> {
        self.extended
            .iter()
            .find(|p| ops::ext_prop_matches(p, uri))
            .and_then(|p| p.child("Value"))
            .map(|v| v.text.as_str())
    }

    /// Sets (`Some`) or removes (`None`) an extended property, replacing an earlier value.
    pub fn set_extended(&mut self, uri: &Elem, value: Option<&str>) {
        self.extended.retain(|p| !ops::ext_prop_matches(p, uri));
        if let Some(v) = value {
            self.extended.push(Elem::t_with(
                "ExtendedProperty",
                vec![uri.clone(), Elem::t("Value", v)],
            ));
        }
    }
}

/// A fresh change key.
pub fn new_change_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..9])
}

/// Rust API for tests.
pub struct EwsHandle<'a>(pub &'a Store);

impl EwsHandle<'_> {
    /// Adds an account with a mailbox.
    pub fn add_account(&self, email: &str, password: &str, can_impersonate: bool) {
        lock(&self.0.ews).add_account(EwsAccount {
            email: email.into(),
            password: password.into(),
            display_name: email.split('@').next().unwrap_or("").into(),
            can_impersonate,
            has_mailbox: true,
            mfa_required: false,
            app_password: None,
            in_exchange_online: false,
        });
    }
    /// Stores an item (EWS XML of `t:Contact`, `t:CalendarItem`, `t:Task`, `t:Message`) in a
    /// folder (`calendar`, `contacts`, `inbox`… or a folder id); returns the item id. A message
    /// is stored as received: with `DateTimeReceived`, `DateTimeSent` and `InternetMessageId`
    /// unless the XML sets them.
    pub fn add_item(
        &self,
        mailbox: &str,
        folder: &str,
        item_xml: &str,
        id: Option<&str>,
    ) -> Option<String> {
        let mut el = xml::parse(item_xml).ok()?;
        ops::as_received(&mut el, mailbox);
        let mut s = lock(&self.0.ews);
        let fid = s.folder(mailbox, folder)?.id.clone();
        Some(s.create_item(mailbox, &fid, &el, id.map(str::to_string)))
    }
    /// Live items of a folder as `(id, kind, subject-or-display-name)`. The folder is named by
    /// distinguished id, folder id, or the display name of one of the mailbox's folders
    /// (`Undeliverable`).
    pub fn items(&self, mailbox: &str, folder: &str) -> Vec<(String, String, String)> {
        let s = lock(&self.0.ews);
        let owner = mailbox.to_ascii_lowercase();
        let by_name = || {
            s.folders.iter().find(|f| {
                f.mailbox.as_deref() == Some(owner.as_str()) && f.name.eq_ignore_ascii_case(folder)
            })
        };
        let Some(fid) = s
            .folder(mailbox, folder)
            .or_else(by_name)
            .map(|f| f.id.clone())
        else {
            return vec![];
        };
        s.items
            .iter()
            .filter(|i| !i.deleted && i.folder == fid)
            .map(|i| {
                let label = i
                    .prop("Subject")
                    .or(i.prop("DisplayName"))
                    .map(|p| p.text().to_string())
                    .unwrap_or_default();
                (i.id.clone(), i.kind.clone(), label)
            })
            .collect()
    }
    /// The value of a String named extended property (`set`, `name`) of a mailbox folder
    /// (distinguished id or folder id); `None` when unset or there is no such folder.
    pub fn folder_property(
        &self,
        mailbox: &str,
        folder: &str,
        set: &str,
        name: &str,
    ) -> Option<String> {
        let s = lock(&self.0.ews);
        s.folder(mailbox, folder)?
            .extended_value(&named_string_uri(set, name))
            .map(str::to_string)
    }
    /// Sets (`Some`) or removes (`None`) a String named extended property of a mailbox
    /// folder, as an UpdateFolder by someone else would; `false` without such a folder.
    pub fn set_folder_property(
        &self,
        mailbox: &str,
        folder: &str,
        set: &str,
        name: &str,
        value: Option<&str>,
    ) -> bool {
        let mut s = lock(&self.0.ews);
        let Some(id) = s.folder(mailbox, folder).map(|f| f.id.clone()) else {
            return false;
        };
        let uri = named_string_uri(set, name);
        match s.folders.iter_mut().find(|f| f.id == id) {
            Some(f) => {
                f.set_extended(&uri, value);
                true
            }
            None => false,
        }
    }
    /// The organization marked as the sync owner of `mailbox` (the String property
    /// [`SYNC_OWNER_PROPERTY`] of its root folder), `None` when unmarked.
    pub fn sync_owner(&self, mailbox: &str) -> Option<String> {
        self.folder_property(
            mailbox,
            "msgfolderroot",
            SYNCBRIDGE_PROPERTY_SET,
            SYNC_OWNER_PROPERTY,
        )
    }
    /// Marks (`Some`) or unmarks (`None`) the sync owner of `mailbox`, e.g. "another
    /// organization marked this mailbox"; `false` when the mailbox does not exist.
    pub fn set_sync_owner(&self, mailbox: &str, owner: Option<&str>) -> bool {
        self.set_folder_property(
            mailbox,
            "msgfolderroot",
            SYNCBRIDGE_PROPERTY_SET,
            SYNC_OWNER_PROPERTY,
            owner,
        )
    }
    /// The starts (RFC 3339 UTC) of a recurring master's occurrences that are not deleted, as
    /// Exchange expands the series in its own zone; empty for other items.
    pub fn occurrence_starts(&self, id: &str) -> Vec<String> {
        let s = lock(&self.0.ews);
        let Some(item) = s.items.iter().find(|i| i.id == id && !i.deleted) else {
            return vec![];
        };
        recur::expand(item, None)
            .into_iter()
            .filter(|o| !item.deleted_occurrences.contains(&o.index))
            .map(|o| o.start.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect()
    }
    /// The modified occurrences of a series, in original-start order: the original start, the
    /// start and the subject of each (RFC 3339 UTC).
    pub fn modified_occurrences(&self, id: &str) -> Vec<(String, String, Option<String>)> {
        let utc = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| {
                    d.with_timezone(&chrono::Utc)
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                })
                .unwrap_or_else(|_| t.to_string())
        };
        let s = lock(&self.0.ews);
        let Some(item) = s.items.iter().find(|i| i.id == id && !i.deleted) else {
            return vec![];
        };
        let occurrences = recur::expand(item, None);
        let mut out: Vec<(String, String, Option<String>)> = item
            .exceptions
            .iter()
            .filter_map(|(index, props)| {
                let original = occurrences.iter().find(|o| o.index == *index)?;
                let prop = |n: &str| {
                    props
                        .iter()
                        .find(|e| e.name == n)
                        .map(|e| e.text().to_string())
                };
                Some((
                    original.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    utc(&prop("Start")?),
                    prop("Subject"),
                ))
            })
            .collect();
        out.sort();
        out
    }
    /// An attribute of a property of an item, e.g. `StartTimeZone`'s `Id`.
    pub fn item_attr(&self, id: &str, name: &str, attr: &str) -> Option<String> {
        let s = lock(&self.0.ews);
        s.items
            .iter()
            .find(|i| i.id == id && !i.deleted)?
            .prop(name)?
            .attr(attr)
            .map(str::to_string)
    }
    /// Value of a simple property of an item.
    pub fn item_prop(&self, id: &str, name: &str) -> Option<String> {
        let s = lock(&self.0.ews);
        s.items
            .iter()
            .find(|i| i.id == id && !i.deleted)?
            .prop(name)
            .map(|p| p.text().to_string())
    }
}

#[cfg(test)]
mod tests;

fn server_version() -> String {
    format!(
        r#"<h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="8606" MinorBuildNumber="23" Version="V2018_01_08" xmlns:h="{T}" xmlns="{T}" />"#
    )
}

/// Wraps a body fragment in a SOAP envelope with `ServerVersionInfo`.
pub fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Header>{}</s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</s:Body></s:Envelope>"#,
        server_version()
    )
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// A SOAP fault as Exchange sends it (HTTP 500), optionally with `MessageXml` values.
pub fn soap_fault(code: &str, message: &str, message_xml: Option<(&str, &str)>) -> Response {
    let mx = message_xml
        .map(|(n, v)| {
            format!(
                r#"<t:MessageXml xmlns:t="{T}"><t:Value Name="{n}">{v}</t:Value></t:MessageXml>"#
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode xmlns:a="{T}">a:{code}</faultcode><faultstring>{}</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{code}</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{}</e:Message>{mx}</detail></s:Fault></s:Body></s:Envelope>"#,
        escape(message),
        escape(message)
    );
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, body)
}

/// The answer for an injected fault status: `ErrorServerBusy` (HTTP 500 fault or 503) with
/// `BackOffMilliseconds`, a plain 401 challenge, or an empty error.
pub fn fault_response(status: StatusCode, retry_after: Option<&str>) -> Response {
    let backoff = retry_after
        .and_then(|r| syncbridge_retry_after::parse_ms(r, std::time::SystemTime::now()))
        .unwrap_or(5000)
        .to_string();
    match status.as_u16() {
        500 | 503 | 429 => {
            let mut r = soap_fault(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                Some(("BackOffMilliseconds", &backoff)),
            );
            *r.status_mut() = if status.as_u16() == 500 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                status
            };
            r
        }
        401 => unauthorized(true),
        _ => status.into_response(),
    }
}

fn unauthorized(basic: bool) -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    let h = r.headers_mut();
    if basic {
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"127.0.0.1\""),
        );
    }
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Negotiate"),
    );
    h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
    r
}

/// Checks Basic credentials; returns the account.
fn authenticate(store: &Store, auth: Option<&str>) -> Result<EwsAccount, Response> {
    let sc = store.scenarios();
    if sc.basic_disabled {
        return Err(unauthorized(false));
    }
    let creds = auth
        .and_then(|a| {
            a.strip_prefix("Basic ")
                .or_else(|| a.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let Some((user, pass)) = creds.as_deref().and_then(|c| c.split_once(':')) else {
        return Err(unauthorized(true));
    };
    let alias = user
        .rsplit('\\')
        .next()
        .unwrap_or(user)
        .to_ascii_lowercase();
    let s = lock(&store.ews);
    let acct = s.accounts.iter().find(|a| {
        let e = a.email.to_ascii_lowercase();
        e == alias || e.split('@').next() == Some(alias.as_str())
    });
    match acct {
        Some(a)
            if !sc.wrong_password
                && !sc.mfa_required
                && ((a.password == pass && !a.mfa_required)
                    || a.app_password.as_deref() == Some(pass)) =>
        {
            Ok(a.clone())
        }
        _ => Err(unauthorized(true)),
    }
}

/// Entry point for `/EWS/Exchange.asmx` and `/autodiscover/autodiscover.xml`.
pub async fn handle(store: Arc<Store>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_ascii_lowercase();
    let account = match authenticate(&store, crate::util::header(&parts.headers, "authorization")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if path == "/autodiscover/autodiscover.svc" {
        return autodiscover::handle_soap(&store, &bytes);
    }
    if path.starts_with("/autodiscover/") {
        return autodiscover::handle(&store, &account, &bytes);
    }
    if path != "/ews/exchange.asmx" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if parts.method != axum::http::Method::POST {
        return xml_response(
            StatusCode::OK,
            "<html><body>You have created a service.</body></html>".into(),
        );
    }
    let doc = match xml::parse(&String::from_utf8_lossy(&bytes)) {
        Ok(d) if d.ns == SOAP && d.name == "Envelope" => d,
        Ok(_) => return soap_fault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the root element must be a SOAP 1.1 Envelope.",
            None,
        ),
        Err(e) => {
            return soap_fault(
                "ErrorSchemaValidation",
                &format!("The request failed schema validation: {e}"),
                None,
            )
        }
    };
    let header = doc
        .children
        .iter()
        .find(|c| c.ns == SOAP && c.name == "Header");
    let Some(op) = doc
        .children
        .iter()
        .find(|c| c.ns == SOAP && c.name == "Body")
        .and_then(|b| b.children.first())
    else {
        return soap_fault("ErrorInvalidRequest", "The request is invalid.", None);
    };
    store.counters.record_operation(&format!("EWS {}", op.name));
    if op.ns != M {
        return soap_fault("ErrorSchemaValidation", &format!("The request failed schema validation: The element '{}' in namespace '{}' is not expected.", op.name, op.ns), None);
    }
    // Impersonation: t:ExchangeImpersonation/t:ConnectingSID/(PrimarySmtpAddress|SmtpAddress|PrincipalName)
    let sc = store.scenarios();
    let imp = header
        .and_then(|h| {
            h.children
                .iter()
                .find(|c| c.ns == T && c.name == "ExchangeImpersonation")
        })
        .and_then(|i| i.child("ConnectingSID"))
        .and_then(|c| {
            c.child("PrimarySmtpAddress")
                .or(c.child("SmtpAddress"))
                .or(c.child("PrincipalName"))
        })
        .map(|e| e.text().to_string());
    let mailbox = match imp {
        Some(target) => {
            if !account.can_impersonate || sc.impersonation_not_granted {
                return soap_fault(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                    None,
                );
            }
            let s = lock(&store.ews);
            let remote = s
                .accounts
                .iter()
                .any(|a| a.email.eq_ignore_ascii_case(&target) && a.in_exchange_online);
            if remote {
                return unauthorized(true);
            }
            let exists = s
                .accounts
                .iter()
                .any(|a| a.email.eq_ignore_ascii_case(&target) && a.has_mailbox);
            if !exists || sc.mailbox_address_mismatch {
                return soap_fault(
                    "ErrorNonExistentMailbox",
                    "The SMTP address has no mailbox associated with it.",
                    Some(("SmtpAddress", &target)),
                );
            }
            target.to_ascii_lowercase()
        }
        // ConvertId and ResolveNames work without a mailbox of one's own.
        None if matches!(op.name.as_str(), "ConvertId" | "ResolveNames") => {
            account.email.to_ascii_lowercase()
        }
        None => {
            if account.in_exchange_online {
                return unauthorized(true);
            }
            if !account.has_mailbox || sc.mailbox_address_mismatch {
                return soap_fault(
                    "ErrorNonExistentMailbox",
                    "The SMTP address has no mailbox associated with it.",
                    Some(("SmtpAddress", &account.email)),
                );
            }
            account.email.to_ascii_lowercase()
        }
    };
    // Without RequestServerVersion a request is answered as Exchange 2007 would.
    let version = header
        .and_then(|h| h.children.iter().find(|c| c.name == "RequestServerVersion"))
        .and_then(|v| v.attr("Version"))
        .unwrap_or("Exchange2007");
    let body = ops::dispatch(&store, &mailbox, op, version);
    match body {
        Ok(b) => xml_response(StatusCode::OK, envelope(&b)),
        Err(r) => r,
    }
}
