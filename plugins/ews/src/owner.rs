//! The sync owner of a mailbox (WIT 0.1.5 `mailbox-owner-api`): which organization synchronizes
//! the mailbox's appointments, contacts and tasks, kept in the mailbox itself as a String
//! extended property of its root folder (`msgfolderroot`) in syncbridge's property set
//! ([`crate::map::ANCHOR_SET`]), named [`OWNER_NAME`] — the same mark the Graph connector reads
//! and writes, so one mailbox syncs with one organization whichever API reaches it.
//!
//! - Read: `GetFolder` of the root folder, `IdOnly` plus the property; a folder without it
//!   answers `None`.
//! - Write: `UpdateFolder` with one `SetFolderField` of the property (replacing any earlier mark).
//!
//! Requests go where the connector's other calls for the mailbox go ([`Config::target`]:
//! the endpoint, the credential slot, `ExchangeImpersonation` when the service account
//! impersonates), and their failures are classified as theirs ([`soap::call`],
//! [`soap::single`]).

use crate::error::EwsError;
use crate::map::ANCHOR_SET;
use crate::ops::Folder;
use crate::soap;
use crate::xml::{escape, Elem};
use crate::Config;
use syncbridge_sdk::types::PluginError;

/// The name of the sync-owner property (a String named property in [`ANCHOR_SET`]).
pub const OWNER_NAME: &str = "syncbridgeSyncOwner";

/// The distinguished folder that carries the mark.
pub const ROOT: &str = "msgfolderroot";

/// The `ExtendedFieldURI` of the sync-owner property.
pub fn owner_uri() -> String {
    format!(
        r#"<t:ExtendedFieldURI PropertySetId="{ANCHOR_SET}" PropertyName="{OWNER_NAME}" PropertyType="String"/>"#
    )
}

/// The mailbox's root folder, always named by its address (valid impersonated or not).
pub fn root_folder(mailbox: &str) -> Folder {
    Folder::Distinguished {
        id: ROOT,
        mailbox: Some(mailbox.to_owned()),
    }
}

/// `GetFolder` of the root folder: its id and the sync-owner property.
pub fn get_owner(mailbox: &str) -> String {
    format!(
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>{}</t:AdditionalProperties></m:FolderShape><m:FolderIds>{}</m:FolderIds></m:GetFolder>",
        owner_uri(),
        root_folder(mailbox).xml()
    )
}

/// `UpdateFolder` of the root folder setting the sync-owner property to `owner`.
pub fn set_owner(mailbox: &str, owner: &str) -> String {
    let uri = owner_uri();
    format!(
        "<m:UpdateFolder><m:FolderChanges><t:FolderChange>{}<t:Updates><t:SetFolderField>{uri}<t:Folder><t:ExtendedProperty>{uri}<t:Value>{}</t:Value></t:ExtendedProperty></t:Folder></t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>",
        root_folder(mailbox).xml(),
        escape(owner)
    )
}

/// Whether an `ExtendedFieldURI` names the sync-owner property (the set id in any case).
fn is_owner_uri(u: &Elem) -> bool {
    u.attr("PropertyName") == Some(OWNER_NAME)
        && u.attr("PropertySetId")
            .is_some_and(|s| s.eq_ignore_ascii_case(ANCHOR_SET))
}

/// The sync owner in a folder element of a GetFolder answer; an empty value is none.
pub fn owner_of(folder: &Elem) -> Option<String> {
    folder
        .all("ExtendedProperty")
        .find(|p| p.child("ExtendedFieldURI").is_some_and(is_owner_uri))
        .and_then(|p| p.text_of("Value"))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The mailbox argument: an SMTP address.
fn checked_mailbox(mailbox: &str) -> Result<&str, PluginError> {
    let m = mailbox.trim();
    if m.contains('@')
        && !m.starts_with('@')
        && !m.ends_with('@')
        && !m.contains(char::is_whitespace)
    {
        Ok(m)
    } else {
        Err(PluginError::invalid_field(
            "mailbox",
            format!("{mailbox:?} is not a mailbox address; name the mailbox by its primary SMTP address"),
        ))
    }
}

/// The organization marked in `mailbox`, `None` when unmarked.
pub fn read(cfg: &Config, mailbox: &str) -> Result<Option<String>, PluginError> {
    let mailbox = checked_mailbox(mailbox)?;
    let target = cfg.target(mailbox)?;
    let resp = soap::call(&target, &get_owner(mailbox))?;
    let msg = soap::single(&resp).map_err(|e| e.of_mailbox(mailbox))?;
    let folder = msg
        .child("Folders")
        .and_then(|f| f.children.first())
        .ok_or_else(|| EwsError::Malformed {
            status: 200,
            detail: "GetFolder answered no folder for the mailbox's root folder".into(),
        })?;
    Ok(owner_of(folder))
}

/// Marks `owner` in `mailbox`, replacing any earlier mark.
pub fn write(cfg: &Config, mailbox: &str, owner: &str) -> Result<(), PluginError> {
    let mailbox = checked_mailbox(mailbox)?;
    if owner.trim().is_empty() {
        return Err(PluginError::invalid_field(
            "owner",
            "the sync owner is empty; name the organization that synchronizes this mailbox",
        ));
    }
    let target = cfg.target(mailbox)?;
    let resp = soap::call(&target, &set_owner(mailbox, owner))?;
    soap::single(&resp).map_err(|e| e.of_mailbox(mailbox))?;
    Ok(())
}
