//! The mailbox's owner: the Dynamics user (`systemusers` row) whose primary e-mail
//! (`internalemailaddress`) is the mailbox's address. Its id is cached in the connection's state
//! per address, and dropped when Dataverse answers a request naming it with 400 or 404 about the
//! user (the user was deleted, or the address moved to another user).

use crate::{classify, dataverse_error, get_json, is_guid, odata_string};
use serde_json::Value;
use syncbridge_sdk::http::Response;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{state, url};

/// The state key of the cached owner of `address` (lower case).
pub fn cache_key(address: &str) -> String {
    format!("dynamics:owner:{}", address.to_lowercase())
}

/// The query for the users whose primary e-mail is `address`.
pub fn lookup_url(api: &str, address: &str) -> String {
    format!(
        "{api}/systemusers?$select=systemuserid&$filter={}",
        url::encode_query_value(&format!(
            "internalemailaddress eq {}",
            odata_string(address)
        ))
    )
}

/// The owner's `systemuserid` among the rows of the users query for `address`.
pub fn owner_of(address: &str, body: &Value) -> Result<String, PluginError> {
    let rows = body.get("value").and_then(Value::as_array).ok_or_else(|| {
        PluginError::Remote(RemoteFailure {
            status: 200,
            message: "Dataverse answered the user query without a `value` array of rows".into(),
        })
    })?;
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("systemuserid").and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .collect();
    match ids.as_slice() {
        [] => Err(PluginError::NotFound(format!(
            "{address} is no Dynamics user's primary e-mail (no systemuser has it as internalemailaddress), so it owns no appointments, tasks or contacts; use the address of the mailbox's Dynamics user, or set that user's Primary Email to {address} (Power Platform admin center > Environments > the environment > Settings > Users + permissions > Users) and try again"
        ))),
        [id] if is_guid(id) => Ok(id.clone()),
        [id] => Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: format!("Dataverse answered the user query with the systemuserid {id:?}, which is not a GUID"),
        })),
        many => Err(PluginError::invalid_field(
            "mailbox",
            format!(
                "{address} is the primary e-mail of {} Dynamics users ({}); give each user a primary e-mail of their own so the mailbox has one owner",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

/// The `systemuserid` of the mailbox's owner: cached, else looked up (and cached).
pub fn resolve(api: &str, address: &str) -> Result<String, PluginError> {
    let key = cache_key(address);
    if let Some(id) = state::get(&key).filter(|id| is_guid(id)) {
        return Ok(id);
    }
    let body = get_json(&lookup_url(api, address), None)?;
    let id = owner_of(address, &body)?;
    state::set(&key, &id);
    Ok(id)
}

/// Whether a 400 or 404 answer is about the owner `owner`: its message names the user's id or
/// the `systemuser` table.
pub fn is_about_owner(r: &Response, owner: &str) -> bool {
    if !matches!(r.status(), 400 | 404) {
        return false;
    }
    let message = dataverse_error(r)
        .unwrap_or_else(|| r.text())
        .to_ascii_lowercase();
    message.contains(&owner.to_ascii_lowercase()) || message.contains("systemuser")
}

/// The error of a failed request that named `owner` as the owner of `address`'s rows; when the
/// answer is about the owner, its cached id is dropped and the error says so.
pub fn failure(r: &Response, address: &str, owner: &str) -> PluginError {
    let e = classify(r);
    if !is_about_owner(r, owner) {
        return e;
    }
    state::delete(&cache_key(address));
    let note = format!(
        "; the cached Dynamics user {owner} of {address} was dropped, the next attempt looks the user up again"
    );
    match e {
        PluginError::NotFound(m) => PluginError::NotFound(m + &note),
        PluginError::Invalid(mut i) => {
            i.message.push_str(&note);
            PluginError::Invalid(i)
        }
        other => other,
    }
}
