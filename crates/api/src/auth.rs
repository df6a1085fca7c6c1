//! Bearer tokens, roles and company scoping.
//!
//! Every handler but `/openapi.json` takes a [`Caller`]: extracting it checks
//! the `Authorization: Bearer sbt_...` header against the token store (401
//! otherwise). Handlers then ask for the role they need ([`Caller::require`],
//! 403) and filter by company ([`Caller::sees`]): a token scoped to a company
//! sees only that company's objects, and objects of other companies answer
//! 404 as if they did not exist.

use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::sync::Arc;
use syncbridge_service::control::tokens::{self, Principal, Role};
use syncbridge_service::control::Actor;
use syncbridge_service::hub::Hub;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<Hub>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "send an API token as `Authorization: Bearer sbt_...`; an administrator creates one with `syncbridge token create`",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the Authorization header must be `Bearer sbt_...` (the token `syncbridge token create` printed)",
                )
            })?;
        match tokens::authenticate(hub.store(), presented).await? {
            Some(principal) => Ok(Caller(principal)),
            None => Err(ApiError::unauthorized(
                "the token is unknown, malformed or revoked; ask an administrator for a new one (`syncbridge token create`)",
            )),
        }
    }
}

impl Caller {
    /// The company the token is scoped to; `None` = every company.
    pub fn company(&self) -> Option<&str> {
        self.0.company_id.as_deref()
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// 403 unless the token's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role; the token has {}. Use a token with that role",
                role.as_str(),
                self.0.role.as_str()
            )))
        }
    }

    /// 403 unless the token is an admin for every company (plugins are shared).
    pub fn require_global_admin(&self) -> Result<(), ApiError> {
        self.require(Role::Admin)?;
        if self.0.company_id.is_some() {
            return Err(ApiError::forbidden(
                "plugins are shared by every company: installing or removing one needs an admin token not scoped to a company",
            ));
        }
        Ok(())
    }

    /// Whether an object of `company` is visible to the caller.
    pub fn sees(&self, company: Option<&str>) -> bool {
        self.actor().sees(company)
    }

    /// The caller as the services see it: the whole installation or one company.
    pub fn actor(&self) -> Actor<'_> {
        match self.company() {
            None => Actor::Msp,
            Some(company) => Actor::Company(company),
        }
    }

    /// The company a new object gets: the token's, or (unscoped tokens) the
    /// requested one. A scoped token cannot name another company.
    pub fn company_for_new(&self, requested: Option<String>) -> Result<Option<String>, ApiError> {
        match (self.company(), requested) {
            (None, requested) => Ok(requested),
            (Some(mine), None) => Ok(Some(mine.to_owned())),
            (Some(mine), Some(r)) if r == mine => Ok(Some(r)),
            (Some(mine), Some(_)) => Err(ApiError::invalid(format!(
                "this token is scoped to company {mine:?}: leave company_id out or set it to {mine:?}"
            ))),
        }
    }
}
