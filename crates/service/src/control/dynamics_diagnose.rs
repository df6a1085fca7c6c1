//! The diagnosis of a mailbox that Exchange refuses (KB 3212785, "401
//! Unauthorized exception occurs when using Server-Side Synchronization"):
//! which of the article's five causes applies, from evidence the product
//! gathers through the profile's connector — its test connection opening
//! that mailbox as the sync does, the sign-in to Entra ID (tenant), the
//! mailbox's licence as Exchange Online reports it, and Autodiscover for the
//! address — with the article's resolution for it.

use super::email_server_profiles::{EmailServerProfile, ServerType};
use crate::hub::Hub;
use serde::{Deserialize, Serialize};
use syncbridge_model::Outcome;

/// The article's causes, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// 1. The mailbox's e-mail address in Dynamics is not the Exchange mailbox's.
    AddressMismatch,
    /// 2. An Exchange Server (Hybrid) profile for a mailbox that is in Exchange Online.
    HybridProfileForOnlineMailbox,
    /// 3. The user has no Exchange Online licence.
    NoExchangeOnlineLicense,
    /// 4. Dynamics and Exchange Online are in different tenants.
    DifferentTenant,
    /// 5. Basic authentication is off for EWS on premises.
    BasicAuthOff,
}

impl Cause {
    /// The cause's number in the article.
    pub fn number(self) -> u8 {
        match self {
            Cause::AddressMismatch => 1,
            Cause::HybridProfileForOnlineMailbox => 2,
            Cause::NoExchangeOnlineLicense => 3,
            Cause::DifferentTenant => 4,
            Cause::BasicAuthOff => 5,
        }
    }

    /// The cause, as the article states it.
    pub fn summary(self) -> &'static str {
        match self {
            Cause::AddressMismatch => "the e-mail address of the mailbox record in Dynamics 365 doesn't match the e-mail address of the mailbox in Exchange",
            Cause::HybridProfileForOnlineMailbox => "an Exchange Server (Hybrid) or on-premises profile is used even though the user's mailbox is located in Exchange Online",
            Cause::NoExchangeOnlineLicense => "the user doesn't have an Exchange Online license",
            Cause::DifferentTenant => "Dynamics 365 and Exchange Online are not in the same Office 365 tenant",
            Cause::BasicAuthOff => "Basic authentication isn't enabled for EWS (Exchange Web Services) on premises",
        }
    }

    /// The article's resolution.
    pub fn resolution(self) -> &'static str {
        match self {
            Cause::AddressMismatch => "Verify the e-mail address of the mailbox record in Dynamics 365 matches the e-mail address in Exchange (the mailbox's primary SMTP address), then refresh the mailboxes and test again.",
            Cause::HybridProfileForOnlineMailbox => "Use an Exchange Online email server profile for this mailbox; only use an Exchange Server (Hybrid) profile for users that have mailboxes in Exchange on-premises.",
            Cause::NoExchangeOnlineLicense => "Assign the user a license that includes Exchange Online (Microsoft 365 admin center > Users > Licenses and apps), then test again.",
            Cause::DifferentTenant => "Make sure Dynamics 365 and Exchange Online are in the same Office 365 tenant: the profile's tenant and application must be the organization's.",
            Cause::BasicAuthOff => "Enable Basic authentication for EWS on the Exchange server (Set-WebServicesVirtualDirectory -BasicAuthentication $true), then test again.",
        }
    }
}

/// One piece of evidence: a check of the connector's test connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub check: String,
    /// ok | warning | failed | skipped
    pub outcome: String,
    pub detail: Option<String>,
}

/// What the diagnosis found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diagnosis {
    pub mailbox_id: String,
    pub address: String,
    pub profile: Option<String>,
    /// The cause that applies; none when the evidence names none of the five.
    pub cause: Option<Cause>,
    /// Its number in KB 3212785 (1 to 5).
    pub cause_number: Option<u8>,
    pub summary: String,
    pub resolution: Option<String>,
    pub evidence: Vec<Evidence>,
}

/// Which cause the evidence names, for a profile of `server`.
pub fn classify(server: ServerType, evidence: &[Evidence]) -> Option<Cause> {
    let failed: Vec<&Evidence> = evidence
        .iter()
        .filter(|e| e.outcome != "ok" && e.outcome != "skipped")
        .collect();
    let says = |needle: &str| {
        failed
            .iter()
            .any(|e| e.detail.as_deref().is_some_and(|d| d.contains(needle)))
    };
    if says("AADSTS700016") || says("AADSTS90002") {
        return Some(Cause::DifferentTenant);
    }
    if says("MailboxNotEnabledForRESTAPI") {
        return Some(Cause::NoExchangeOnlineLicense);
    }
    let on_premises = matches!(server, ServerType::Exchange | ServerType::ExchangeHybrid);
    if on_premises
        && (says(".mail.onmicrosoft.com") || says("RedirectAddress") || says("redirectAddr"))
    {
        return Some(Cause::HybridProfileForOnlineMailbox);
    }
    if on_premises && says("offers no Basic authentication") {
        return Some(Cause::BasicAuthOff);
    }
    if says("ErrorNonExistentMailbox") || says("names no mailbox") {
        return Some(Cause::AddressMismatch);
    }
    None
}

/// Gathers the evidence for mailbox `address` of profile `p`: the connector's
/// test connection with the mailbox to open and, for EWS, Autodiscover for
/// it at the server's own Autodiscover service.
pub async fn evidence(hub: &Hub, p: &EmailServerProfile, address: &str) -> Vec<Evidence> {
    let failed = |detail: String| {
        vec![Evidence {
            check: "test-connection".into(),
            outcome: "failed".into(),
            detail: Some(detail),
        }]
    };
    let record = match hub.store().get_connection(&p.connection_id).await {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let mut config: serde_json::Value = match serde_json::from_str(&record.config) {
        Ok(c) => c,
        Err(e) => {
            return failed(format!(
                "the connection's stored configuration does not read ({e})"
            ))
        }
    };
    config["test_mailboxes"] = serde_json::json!([address]);
    if p.settings.server_type != ServerType::ExchangeOnline {
        if let Some(ews) = config.get("ews_url").and_then(|u| u.as_str()) {
            if let Ok(mut u) = url::Url::parse(ews) {
                u.set_path("/autodiscover/autodiscover.svc");
                u.set_query(None);
                config["autodiscover_url"] = serde_json::json!(u.as_str());
                config["mailbox"] = serde_json::json!(address);
            }
        }
    }
    let report = match hub
        .test_connection_as(&p.connection_id, &config.to_string())
        .await
    {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    // The connection's checks only: the offline configuration checks are the profile's
    // rules' business (a location over HTTP the operator allowed, for one).
    let mut out: Vec<Evidence> = report
        .connection
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|f| Evidence {
            check: f.check.clone(),
            outcome: f.outcome.as_str().to_owned(),
            detail: match (&f.cause, f.outcome) {
                (Some(c), _) => Some(c.clone()),
                (None, Outcome::Ok) => None,
                (None, _) => f.remedy.clone(),
            },
        })
        .collect();
    if let Err(e) = report.connection {
        out.extend(failed(e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(check: &str, detail: &str) -> Evidence {
        Evidence {
            check: check.into(),
            outcome: "failed".into(),
            detail: Some(detail.into()),
        }
    }

    #[test]
    fn each_cause_is_named_by_its_evidence() {
        let ews = ServerType::ExchangeHybrid;
        let online = ServerType::ExchangeOnline;
        assert_eq!(
            classify(
                ews,
                &[failed(
                    "mailbox:a",
                    "a names no mailbox on this server (ErrorNonExistentMailbox)"
                )]
            ),
            Some(Cause::AddressMismatch)
        );
        assert_eq!(classify(ews, &[failed("autodiscover:a", "Autodiscover redirects the mailbox to a@contoso.mail.onmicrosoft.com (RedirectAddress)")]), Some(Cause::HybridProfileForOnlineMailbox));
        assert_eq!(
            classify(
                online,
                &[failed(
                    "mailbox:a",
                    "a has no Exchange Online mailbox (MailboxNotEnabledForRESTAPI)"
                )]
            ),
            Some(Cause::NoExchangeOnlineLicense)
        );
        assert_eq!(
            classify(
                online,
                &[failed(
                    "credentials",
                    "the application (client id) is not known in this tenant (AADSTS700016)"
                )]
            ),
            Some(Cause::DifferentTenant)
        );
        assert_eq!(
            classify(
                ews,
                &[failed(
                    "credentials",
                    "Exchange refused x and offers no Basic authentication (only Negotiate/NTLM)"
                )]
            ),
            Some(Cause::BasicAuthOff)
        );
        assert_eq!(
            classify(ews, &[failed("credentials", "the password is wrong")]),
            None
        );
        let ok = Evidence {
            check: "mailbox:a".into(),
            outcome: "ok".into(),
            detail: Some("names no mailbox".into()),
        };
        assert_eq!(classify(ews, &[ok]), None, "passed checks are no evidence");
    }
}
