//! The e-mail scopes, served through the core `connector-api` (server-side synchronization of
//! e-mail):
//!
//! - `inbox:mailbox=…` reads the Inbox with SyncFolderItems (ids only; the `SyncState` is the
//!   cursor) and GetItem of the messages in batches. Only `t:Message` items are read: meeting
//!   requests, responses and cancellations are calendar traffic and other item types (posts,
//!   reports of other classes) no e-mail a CRM tracks, so they are left out. Deletions and moves
//!   out of the Inbox come as `removed: deleted`. `deactivate` moves a message to the folder
//!   `Undeliverable` under the Inbox (created when missing; its id is kept in state per mailbox).
//! - `outbox:mailbox=…` sends `create`s with CreateItem `SendAndSaveCopy` (the copy in the
//!   mailbox's Sent Items), always from the scope's mailbox (another `from` address is logged
//!   and not used). Exchange answers no id for a sent message, so the target id is
//!   `sent:<op_id>`; nothing can be read back: pulls are empty and not full (and make no
//!   request: processing reads the scope every run), lookups find nothing.
//! - `outbox:mailbox=…,check=true` is Test & Enable's check of the outgoing account: its pull
//!   makes one `GetFolder` (`IdOnly`) of the mailbox's Sent Items through the outgoing endpoint
//!   as the sending account ([`check_outgoing`]) and answers the same empty page; a refusal
//!   fails the pull like any other (401 `auth`, `ErrorImpersonateUserDenied` `forbidden`, no
//!   such mailbox `not-found`, busy `throttled`). Nothing is sent. A scope option rather than
//!   `test-connection`, whose findings carry no error class and which opens the configured
//!   mailboxes with the incoming account.

use crate::error::EwsError;
use crate::map;
use crate::ops::{self, Folder};
use crate::pull::{self, item_id, GET_BATCH};
use crate::scope::MailScope;
use crate::soap::{self, Target};
use crate::Config;
use syncbridge_sdk::batch::push_each;
use syncbridge_sdk::types::{
    Item, ItemBody, Page, PluginError, Removal, WriteAction, WriteOk, WriteOp, WriteResult,
};
use syncbridge_sdk::{log, state};

/// The display name of the folder under the Inbox that failed messages are moved to.
pub const UNDELIVERABLE: &str = "Undeliverable";

fn undeliverable_key(mailbox: &str) -> String {
    format!("ews:undeliverable:{mailbox}")
}

/// One page of an e-mail scope.
pub fn page(
    cfg: &Config,
    scope: &MailScope,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<Page, PluginError> {
    match scope {
        MailScope::Inbox { mailbox } => inbox_page(cfg, mailbox, cursor, max_items),
        MailScope::Outbox { mailbox, check } => {
            if *check {
                check_outgoing(cfg, mailbox)?;
            }
            // Sent mail is not read back; not full, so nothing is taken as removed.
            Ok(syncbridge_sdk::paging::page(Vec::new(), None, None, false))
        }
    }
}

/// Test & Enable's check of the outgoing account (`outbox:…,check=true`): one `GetFolder`
/// (`IdOnly`) of the mailbox's Sent Items, where a send saves its copy, through
/// [`Config::send_target`] (the outgoing endpoint and account, impersonating as a send would).
/// Nothing is sent; a refusal is the error a send would meet.
pub fn check_outgoing(cfg: &Config, mailbox: &str) -> Result<(), PluginError> {
    let target = cfg.send_target(mailbox)?;
    let sent = cfg.folder(&target, "sentitems", mailbox);
    let resp = soap::call(&target, &ops::get_folder_ids(&sent))?;
    soap::single(&resp).map_err(|e| e.of_mailbox(mailbox))?;
    Ok(())
}

fn removed(id: &str) -> Item {
    Item {
        id: id.to_owned(),
        version: None,
        removed: Some(Removal::Deleted),
        body: None,
    }
}

fn inbox_page(
    cfg: &Config,
    mailbox: &str,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let target = cfg.target(mailbox)?;
    let inbox = cfg.folder(&target, "inbox", mailbox);
    let what = format!("the inbox of {mailbox}");
    let changes = pull::sync_changes(&target, &inbox, &what, cursor, max_items)?;
    let mut items: Vec<Item> = changes.deleted.iter().map(|id| removed(id)).collect();
    let (messages, others): (Vec<_>, Vec<_>) = changes
        .changed
        .into_iter()
        .partition(|(element, _)| element == "Message");
    if !others.is_empty() {
        log::debug!(
            "left out {} inbox items of {mailbox} that are no messages",
            others.len()
        );
    }
    let ids: Vec<String> = messages.into_iter().map(|(_, id)| id).collect();
    for (id, found) in get_messages(&target, &ids)? {
        // Gone between SyncFolderItems and GetItem: deleted.
        items.push(found.unwrap_or_else(|| removed(&id)));
    }
    Ok(Page {
        items,
        cursor: Some(changes.cursor),
        more: changes.more,
        full: changes.full,
    })
}

/// Reads messages by id with GetItem in batches: (id, the message or `None` when it is gone).
/// Items that are no `t:Message` are left out.
pub fn get_messages(
    target: &Target,
    ids: &[String],
) -> Result<Vec<(String, Option<Item>)>, PluginError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(GET_BATCH) {
        let resp = soap::call(target, &ops::get_messages(chunk))?;
        let msgs = soap::messages(&resp);
        if msgs.len() != chunk.len() {
            return Err(EwsError::Malformed {
                status: 200,
                detail: format!(
                    "GetItem answered {} messages for {} ids",
                    msgs.len(),
                    chunk.len()
                ),
            }
            .into());
        }
        for (id, msg) in chunk.iter().zip(msgs) {
            match msg {
                Ok(m) => {
                    let Some(el) = m.child("Items").and_then(|i| i.children.first()) else {
                        continue;
                    };
                    if el.name != "Message" {
                        continue;
                    }
                    let (id, version) = item_id(el).ok_or_else(|| {
                        PluginError::invalid("GetItem answered a Message without ItemId")
                    })?;
                    let item = Item {
                        id: id.clone(),
                        version,
                        removed: None,
                        body: Some(ItemBody::EmailMessage(map::message::read(el))),
                    };
                    out.push((id, Some(item)));
                }
                Err(EwsError::NotFound { .. }) => out.push((id.clone(), None)),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Messages by `id:<ItemId>` (or a bare ItemId); ids that are gone are left out. The outbox
/// finds nothing.
pub fn lookup(cfg: &Config, scope: &MailScope, keys: &[String]) -> Result<Vec<Item>, PluginError> {
    let MailScope::Inbox { mailbox } = scope else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<String> = Vec::new();
    for key in keys {
        let id = key.strip_prefix("id:").unwrap_or(key).trim();
        if !id.is_empty() && !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let target = cfg.target(mailbox)?;
    Ok(get_messages(&target, &ids)?
        .into_iter()
        .filter_map(|(_, found)| found)
        .collect())
}

/// Applies a batch, one operation at a time; after a throttled or refused call the rest
/// carry the same error ([`push_each`]). Operations are checked before anything is sent.
pub fn push(cfg: &Config, scope: &MailScope, batch: Vec<WriteOp>) -> Vec<WriteResult> {
    let mailbox = scope.mailbox();
    let mut target: Option<Result<Target, PluginError>> = None;
    push_each(batch, |op| {
        let action = match (scope, op.action) {
            (MailScope::Inbox { .. }, WriteAction::Deactivate) => {
                let id = op
                    .target_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        PluginError::invalid_field(
                            "target-id",
                            "deactivate needs the ItemId of the inbox message to move",
                        )
                    })?;
                Action::MoveToUndeliverable(id)
            }
            (MailScope::Inbox { .. }, _) => {
                return Err(PluginError::Unsupported(
                    "the inbox scope only moves failed messages to Undeliverable (deactivate); messages are not created, changed or deleted through it".into(),
                ))
            }
            (MailScope::Outbox { .. }, WriteAction::Create) => {
                Action::Send(message_to_send(mailbox, op)?)
            }
            (MailScope::Outbox { .. }, _) => {
                return Err(PluginError::Unsupported(
                    "a sent message cannot be changed: the outbox scope only sends (create)"
                        .into(),
                ))
            }
        };
        let target = target
            .get_or_insert_with(|| match scope {
                MailScope::Outbox { .. } => cfg.send_target(mailbox),
                MailScope::Inbox { .. } => cfg.target(mailbox),
            })
            .as_ref()
            .map_err(Clone::clone)?;
        match action {
            Action::MoveToUndeliverable(id) => move_to_undeliverable(cfg, target, mailbox, id),
            Action::Send(message) => send(cfg, target, mailbox, &op.op_id, &message),
        }
    })
}

/// What one operation does, checked.
enum Action<'a> {
    /// Move the inbox message with this ItemId.
    MoveToUndeliverable(&'a str),
    /// Send this `t:Message`.
    Send(String),
}

/// The `t:Message` a `create` sends; refused (naming the field) when it cannot be sent.
fn message_to_send(mailbox: &str, op: &WriteOp) -> Result<String, PluginError> {
    let Some(ItemBody::EmailMessage(msg)) = &op.body else {
        return Err(PluginError::invalid_field(
            "body",
            "the outbox scope sends an email-message",
        ));
    };
    if let Some(from) = msg
        .from
        .as_ref()
        .filter(|f| !f.address.eq_ignore_ascii_case(mailbox))
    {
        log::warn!(
            "op {}: the outbox of {mailbox} sends as {mailbox}; the message's from address {} is not used",
            op.op_id,
            from.address
        );
    }
    map::message::create_xml(msg, mailbox)
}

/// Sends a message with SendAndSaveCopy, the copy saved in the mailbox's Sent Items.
fn send(
    cfg: &Config,
    target: &Target,
    mailbox: &str,
    op_id: &str,
    message: &str,
) -> Result<WriteOk, PluginError> {
    let sent = cfg.folder(target, "sentitems", mailbox);
    let resp = soap::call(target, &ops::send_message(&sent, message))?;
    match soap::single(&resp) {
        // SendAndSaveCopy answers no item id.
        Ok(_) => Ok(WriteOk {
            target_id: format!("sent:{op_id}"),
            version: None,
        }),
        Err(EwsError::AccessDenied { code, .. }) if code == "ErrorSendAsDenied" => {
            Err(PluginError::Forbidden(format!(
                "Exchange refused to send as {mailbox} (ErrorSendAsDenied): grant the service account Send As on the mailbox, set \"impersonate\": true, or enter the mailbox's own credential in \"mailbox_credentials\""
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The id of `Inbox/Undeliverable`: found by display name (FindFolder, shallow), created
/// (CreateFolder, `IPF.Note`) when missing, and kept in state.
pub fn undeliverable_folder(
    cfg: &Config,
    target: &Target,
    mailbox: &str,
) -> Result<String, PluginError> {
    let inbox = cfg.folder(target, "inbox", mailbox);
    let find = || -> Result<Option<String>, PluginError> {
        let resp = soap::call(target, &ops::find_folder(&inbox, UNDELIVERABLE))?;
        Ok(soap::single(&resp)?
            .path(&["RootFolder", "Folders"])
            .into_iter()
            .flat_map(|f| f.children.iter())
            .find(|f| {
                f.text_of("DisplayName")
                    .is_some_and(|n| n.eq_ignore_ascii_case(UNDELIVERABLE))
            })
            .and_then(|f| f.child("FolderId"))
            .and_then(|f| f.attr("Id"))
            .map(str::to_owned))
    };
    let id = match find()? {
        Some(id) => id,
        None => {
            let resp = soap::call(target, &ops::create_mail_folder(&inbox, UNDELIVERABLE))?;
            match soap::single(&resp) {
                Ok(m) => m
                    .child("Folders")
                    .and_then(|f| f.children.first())
                    .and_then(|f| f.child("FolderId"))
                    .and_then(|f| f.attr("Id"))
                    .map(str::to_owned)
                    .ok_or_else(|| PluginError::invalid("CreateFolder answered no FolderId"))?,
                // Created meanwhile by someone else: find it again.
                Err(EwsError::Other { code, .. }) if code == "ErrorFolderExists" => {
                    find()?.ok_or_else(|| {
                        PluginError::Transient(format!(
                            "the folder {UNDELIVERABLE} under the inbox of {mailbox} exists but FindFolder does not list it; retry later"
                        ))
                    })?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    state::set(&undeliverable_key(mailbox), &id);
    Ok(id)
}

/// MoveItem of one message into a folder: the answer's message (its new id, if any).
fn move_once(
    target: &Target,
    folder: &str,
    id: &str,
) -> Result<Result<Option<WriteOk>, EwsError>, PluginError> {
    let resp = soap::call(
        target,
        &ops::move_item(
            &Folder::Id(folder.to_owned()),
            &[id.to_owned()],
            &target.version,
        ),
    )?;
    Ok(soap::single(&resp).map(|m| {
        m.child("Items")
            .and_then(|i| i.children.first())
            .and_then(item_id)
            .map(|(id, ck)| WriteOk {
                target_id: id,
                version: ck,
            })
    }))
}

/// Moves an inbox message to `Inbox/Undeliverable`; answers its new id. A cached folder id
/// that no longer resolves is found (or created) again once.
pub fn move_to_undeliverable(
    cfg: &Config,
    target: &Target,
    mailbox: &str,
    id: &str,
) -> Result<WriteOk, PluginError> {
    let key = undeliverable_key(mailbox);
    let cached = state::get(&key);
    let folder = match &cached {
        Some(f) => f.clone(),
        None => undeliverable_folder(cfg, target, mailbox)?,
    };
    let mut outcome = move_once(target, &folder, id)?;
    if let (Err(EwsError::NotFound { .. }), Some(_)) = (&outcome, &cached) {
        // ErrorFolderNotFound, or ErrorItemNotFound naming the folder: the cached id may be stale.
        state::delete(&key);
        let fresh = undeliverable_folder(cfg, target, mailbox)?;
        if fresh != folder {
            log::info!("the {UNDELIVERABLE} folder of {mailbox} has a new id; moving again");
            outcome = move_once(target, &fresh, id)?;
        }
    }
    match outcome {
        Ok(Some(done)) => Ok(done),
        Ok(None) => {
            log::warn!(
                "MoveItem answered no new id for {id} in {mailbox} (RequestServerVersion {} has no ReturnNewItemIds; use Exchange2010_SP1 or later); answering the old id",
                target.version
            );
            Ok(WriteOk {
                target_id: id.to_owned(),
                version: None,
            })
        }
        Err(EwsError::NotFound { code, .. }) => Err(PluginError::NotFound(format!(
            "the message {id} is not in the mailbox {mailbox} ({code}): it was deleted or moved already, so there is nothing to move"
        ))),
        Err(e) => Err(e.into()),
    }
}
