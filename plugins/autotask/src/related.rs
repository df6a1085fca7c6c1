//! Queries across related entities: the contacts a resource owns (through Companies and
//! Opportunities `ownerResourceID`), the service calls a resource is on (through the tickets'
//! and tasks' resources), and a page of service calls' tickets, tasks and resources.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use syncbridge_sdk::prelude::*;

use super::{next_page, number, query, Config, MAX_RECORDS};
use crate::calendar::CallLinks;

/// Every row of a query, following `nextPageUrl`.
pub fn query_all(
    cfg: &Config,
    entity: &str,
    filter: Vec<Value>,
) -> Result<Vec<Value>, PluginError> {
    let mut body = query(cfg, entity, filter, MAX_RECORDS)?;
    let mut rows = Vec::new();
    loop {
        rows.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["pageDetails"]["nextPageUrl"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            Some(next) => body = next_page(cfg, next)?,
            None => return Ok(rows),
        }
    }
}

/// `field in ids` (an `or` of `in` conditions of at most 500 values each); none when `ids` is
/// empty.
pub fn in_filter(field: &str, ids: &BTreeSet<i64>) -> Option<Value> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    let mut parts: Vec<Value> = ids
        .chunks(MAX_RECORDS as usize)
        .map(|chunk| json!({"op": "in", "field": field, "value": chunk}))
        .collect();
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(json!({"op": "or", "items": parts})),
    }
}

fn ids_of(rows: &[Value], field: &str) -> BTreeSet<i64> {
    rows.iter().filter_map(|r| number(r, field)).collect()
}

fn eq(field: &str, value: i64) -> Vec<Value> {
    vec![json!({"op": "eq", "field": field, "value": value})]
}

/// The Contacts filter of the contacts `owner` is account manager of (the contacts of the
/// companies they own) or opportunity owner of (the opportunities' contacts); none when there
/// are no such contacts.
pub fn owned_contacts_filter(cfg: &Config, owner: i64) -> Result<Option<Vec<Value>>, PluginError> {
    let companies = ids_of(
        &query_all(cfg, "Companies", eq("ownerResourceID", owner))?,
        "id",
    );
    let contacts = ids_of(
        &query_all(cfg, "Opportunities", eq("ownerResourceID", owner))?,
        "contactID",
    );
    let parts: Vec<Value> = [
        in_filter("companyID", &companies),
        in_filter("id", &contacts),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(match parts.len() {
        0 => None,
        1 => Some(parts),
        _ => Some(vec![json!({"op": "or", "items": parts})]),
    })
}

/// The ids of the service calls `resource` is on, through their tickets' and tasks' resources.
pub fn service_call_ids(cfg: &Config, resource: i64) -> Result<BTreeSet<i64>, PluginError> {
    let mut calls = BTreeSet::new();
    for (resources, parent_field, parents) in [
        (
            "ServiceCallTicketResources",
            "serviceCallTicketID",
            "ServiceCallTickets",
        ),
        (
            "ServiceCallTaskResources",
            "serviceCallTaskID",
            "ServiceCallTasks",
        ),
    ] {
        let parent_ids = ids_of(
            &query_all(cfg, resources, eq("resourceID", resource))?,
            parent_field,
        );
        if let Some(f) = in_filter("id", &parent_ids) {
            calls.extend(ids_of(&query_all(cfg, parents, vec![f])?, "serviceCallID"));
        }
    }
    Ok(calls)
}

/// The tickets, project tasks and resources of the service calls `calls`, by service call id.
pub fn call_links(
    cfg: &Config,
    calls: &BTreeSet<i64>,
) -> Result<BTreeMap<i64, CallLinks>, PluginError> {
    let mut out: BTreeMap<i64, CallLinks> = BTreeMap::new();
    let Some(by_call) = in_filter("serviceCallID", calls) else {
        return Ok(out);
    };
    for (children, link_field, prefix, resources, parent_field) in [
        (
            "ServiceCallTickets",
            "ticketID",
            "",
            "ServiceCallTicketResources",
            "serviceCallTicketID",
        ),
        (
            "ServiceCallTasks",
            "taskID",
            "task:",
            "ServiceCallTaskResources",
            "serviceCallTaskID",
        ),
    ] {
        let rows = query_all(cfg, children, vec![by_call.clone()])?;
        let mut call_of = BTreeMap::new();
        for row in &rows {
            let (Some(id), Some(call)) = (number(row, "id"), number(row, "serviceCallID")) else {
                continue;
            };
            call_of.insert(id, call);
            if let Some(linked) = number(row, link_field) {
                out.entry(call)
                    .or_default()
                    .ticket_ids
                    .push(format!("{prefix}{linked}"));
            }
        }
        let child_ids: BTreeSet<i64> = call_of.keys().copied().collect();
        if let Some(f) = in_filter(parent_field, &child_ids) {
            for row in query_all(cfg, resources, vec![f])? {
                let call = number(&row, parent_field).and_then(|p| call_of.get(&p));
                if let (Some(call), Some(resource)) = (call, number(&row, "resourceID")) {
                    let ids = &mut out.entry(*call).or_default().resource_ids;
                    if !ids.contains(&resource.to_string()) {
                        ids.push(resource.to_string());
                    }
                }
            }
        }
    }
    for links in out.values_mut() {
        links.resource_ids.sort();
    }
    Ok(out)
}
