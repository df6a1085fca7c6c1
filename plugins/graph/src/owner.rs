//! The sync owner of a mailbox (WIT 0.1.5 `mailbox-owner-api`): which organization synchronizes
//! the mailbox's calendar, contacts and tasks, kept in the mailbox itself as a single-value
//! extended property of its root folder (`msgfolderroot`), [`OWNER_PROPERTY`] — a String
//! named property in the property set of the anchor ([`mailbox::ANCHOR_PROPERTY`]), the same
//! mark the EWS connector reads and writes, so one mailbox syncs with one organization
//! whichever API reaches it.
//!
//! - Read: `GET users/{mailbox}/mailFolders/msgfolderroot?$select=id&$expand=
//!   singleValueExtendedProperties($filter=id eq '…')`; an answer without the property (no
//!   `singleValueExtendedProperties`, or an empty list) is `None`.
//! - Write: `PATCH users/{mailbox}/mailFolders/msgfolderroot` with
//!   `{"singleValueExtendedProperties": [{"id": …, "value": owner}]}` (replacing any mark).
//!
//! A mailbox Graph cannot serve is refused as the mailbox scopes refuse it
//! ([`mailbox::mailbox_refused`]); a 404 for another reason names the mailbox (the root
//! folder of an existing mailbox is always there). Other statuses are classified as
//! everywhere else (401 `auth`, 403 `forbidden`, 429/503 `throttled` with the delay).

use serde_json::{json, Value};
use syncbridge_sdk::http::{Request, Response};
use syncbridge_sdk::types::{PluginError, RemoteFailure};
use syncbridge_sdk::url;

use crate::mailbox::{self, user_root};
use crate::{Config, CREDENTIAL};

/// The sync-owner extended property (a String named property in syncbridge's property set).
pub const OWNER_PROPERTY: &str =
    "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeSyncOwner";

/// `{root}/users/{mailbox}/mailFolders/msgfolderroot`.
pub fn root_folder_url(cfg: &Config, mailbox: &str) -> String {
    format!("{}/mailFolders/msgfolderroot", user_root(cfg, mailbox))
}

/// The read: the root folder's id and the sync-owner property.
pub fn read_url(cfg: &Config, mailbox: &str) -> String {
    format!(
        "{}?$select=id&$expand={}",
        root_folder_url(cfg, mailbox),
        url::encode_query_value(&format!(
            "singleValueExtendedProperties($filter=id eq '{OWNER_PROPERTY}')"
        ))
    )
}

/// The write's body.
pub fn write_body(owner: &str) -> Value {
    json!({ "singleValueExtendedProperties": [{ "id": OWNER_PROPERTY, "value": owner }] })
}

/// The sync owner in a root folder read with [`read_url`]; empty is none.
pub fn owner_of(folder: &Value) -> Option<String> {
    folder["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| {
            p["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(OWNER_PROPERTY))
        })
        .and_then(|p| p["value"].as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The mailbox argument: a UPN or SMTP address (`@`, no `/`, `?`, `#` or whitespace).
fn checked_mailbox(mailbox: &str) -> Result<&str, PluginError> {
    let m = mailbox.trim();
    if m.contains('@') && !m.contains(['/', '?', '#']) && !m.contains(char::is_whitespace) {
        Ok(m)
    } else {
        Err(PluginError::invalid_field(
            "mailbox",
            format!("{mailbox:?} is not a mailbox address; enter the user's principal name or primary SMTP address"),
        ))
    }
}

/// A 2xx answer, or the error of the mailbox or of the status.
fn checked(response: Response, mailbox: &str) -> Result<Response, PluginError> {
    let response = mailbox::mailbox_checked(response)?;
    if response.status() == 404 {
        let code = serde_json::from_slice::<Value>(response.bytes())
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "no error code".into());
        return Err(PluginError::invalid_field(
            "mailbox",
            format!(
                "Microsoft Graph found no mailbox {mailbox:?} (HTTP 404 {code}); enter the user's principal name or primary SMTP address"
            ),
        ));
    }
    response.error_for_status()
}

/// The organization marked in `mailbox`, `None` when unmarked.
pub fn read(cfg: &Config, mailbox: &str) -> Result<Option<String>, PluginError> {
    let mailbox = checked_mailbox(mailbox)?;
    let response = Request::get(read_url(cfg, mailbox))
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .send()?;
    let response = checked(response, mailbox)?;
    let folder: Value = serde_json::from_slice(response.bytes()).map_err(|e| {
        PluginError::Remote(RemoteFailure {
            status: response.status(),
            message: format!("the root folder came back as JSON we cannot read: {e}"),
        })
    })?;
    Ok(owner_of(&folder))
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
    let response = Request::patch(root_folder_url(cfg, mailbox))
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .json(&write_body(owner))?
        .send()?;
    checked(response, mailbox)?;
    Ok(())
}

#[cfg(test)]
mod tests;
