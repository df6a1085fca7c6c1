//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /api/v1/openapi.json` without a token.

use super::{
    alerts, companies, conflicts, connections, dynamics, exchange, exchange_diagnose, mailboxes,
    plans, plugins, profiles, quarantine, runs,
};
use axum::Json;
use std::sync::OnceLock;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::openapi::{OpenApi as Document, Paths};
use utoipa::{Modify, OpenApi};

/// Where the API is mounted; the document's paths include it.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "syncbridge API",
        description = "Manage plugins, companies, connections and profiles; queue runs and dry runs; review plans, quarantine and alerts. Every endpoint but /openapi.json needs `Authorization: Bearer sbt_...`. Errors are `{\"error\": {\"code\", \"message\"}}`.",
    ),
    paths(
        serve,
        plugins::list, plugins::install, plugins::remove,
        companies::list, companies::create, companies::show, companies::update, companies::remove,
        connections::list, connections::create, connections::show, connections::update,
        connections::remove, connections::test,
        mailboxes::list, mailboxes::discover, mailboxes::enable, mailboxes::disable,
        mailboxes::approve, mailboxes::put_settings, mailboxes::apply_to_many,
        exchange::list, exchange::create, exchange::show, exchange::update, exchange::remove,
        exchange::list_resources, exchange::discover, exchange::enable, exchange::disable,
        exchange::put_resource_settings, exchange::put_resource_credential,
        exchange_diagnose::diagnose,
        dynamics::list_profiles, dynamics::create_profile, dynamics::show_profile,
        dynamics::update_profile, dynamics::remove_profile, dynamics::put_mailbox_credential,
        dynamics::test_profile, dynamics::show_defaults, dynamics::put_defaults, dynamics::refresh,
        dynamics::list_mailboxes, dynamics::show_mailbox, dynamics::apply_defaults, dynamics::edit,
        dynamics::approve, dynamics::test_and_enable, dynamics::diagnose, dynamics::processing,
        profiles::list, profiles::create, profiles::show, profiles::update, profiles::remove,
        profiles::run, profiles::dry_run, profiles::preview, profiles::enable, profiles::disable, profiles::explain,
        plans::list, plans::show, plans::preview, plans::apply, plans::discard,
        runs::list, runs::show,
        quarantine::list, quarantine::retry, quarantine::skip, quarantine::relink,
        conflicts::list, conflicts::resolve,
        alerts::list, alerts::resolve,
    ),
    security(("bearer" = [])),
    modifiers(&Finish),
    tags(
        (name = "plugins", description = "Installed connector and mapper plugins"),
        (name = "companies", description = "Customer companies; tokens may be scoped to one"),
        (name = "connections", description = "Configured connector instances with write-only credentials"),
        (name = "mailboxes", description = "Mailboxes of connections: discover, approve, enable, per-mailbox settings"),
        (name = "exchange", description = "Flow 1's Exchange server profiles: server, synchronization account, synchronization settings, resources"),
        (name = "dynamics", description = "Flow 3: email server profiles, a Dynamics organization's email settings, its mailboxes and their Test & Enable"),
        (name = "profiles", description = "Source → mapper → target, with schedule; run, dry run, explain"),
        (name = "plans", description = "Stored plans of dry runs and held runs"),
        (name = "runs", description = "Queued, running and finished runs"),
        (name = "quarantine", description = "Items that failed, with retry, skip and relink"),
        (name = "conflicts", description = "Two-way fields both sides changed, held for review, and their resolution"),
        (name = "alerts", description = "Conditions an operator must act on"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// Adds the bearer scheme, mounts the paths under [`PREFIX`] and makes
/// operation ids unique (`<tag>_<handler>`).
struct Finish;

impl Modify for Finish {
    fn modify(&self, doc: &mut Document) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("sbt_<id>_<secret>")
                        .description(Some(
                            "An API token from `syncbridge token create`; its role (viewer, operator, admin) and optional company decide what it may see and do.",
                        ))
                        .build(),
                ),
            );
        let old = std::mem::replace(&mut doc.paths, Paths::new());
        for (path, mut item) in old.paths {
            if let Some(op) = &mut item.get {
                unique_id(op);
                common_responses(op, false);
            }
            for op in [
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                unique_id(op);
                common_responses(op, true);
            }
            doc.paths.paths.insert(format!("{PREFIX}{path}"), item);
        }
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    }
}

/// The answers every operation can give besides its own: 401 without a
/// valid token, 400 for a malformed query or body, 415 for a body that is
/// not JSON, 403 (`changes`) for a role or scope that may not change things.
fn common_responses(op: &mut Operation, changes: bool) {
    if op.operation_id.as_deref() == Some("openapi") {
        return;
    }
    let takes_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    });
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    add(
        "401",
        "`unauthorized`: no token, or a malformed, unknown or revoked one",
    );
    if takes_query || op.request_body.is_some() {
        add(
            "400",
            "`invalid_request`: a malformed query or body; the message names the field",
        );
    }
    if changes {
        add(
            "403",
            "`forbidden`: the token's role or company scope does not allow this",
        );
    }
    if json_body {
        add(
            "415",
            "`invalid_request`: the body was not sent as `Content-Type: application/json`",
        );
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn unique_id(op: &mut Operation) {
    let tag = op
        .tags
        .as_ref()
        .and_then(|t| t.first())
        .cloned()
        .unwrap_or_default();
    if let Some(id) = &op.operation_id {
        if !tag.is_empty() && !id.starts_with(&tag) {
            op.operation_id = Some(format!("{tag}_{id}"));
        }
    }
}

/// The document as JSON.
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).expect("OpenAPI serialises"))
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi",
    security(()),
    responses((status = 200, description = "This OpenAPI 3 document", body = Object)))]
pub async fn serve() -> Json<serde_json::Value> {
    Json(document().clone())
}
