//! Switches that make the simulators fail the way real deployments fail.

use serde::{Deserialize, Serialize};

/// Failure scenarios. All off by default; set them with
/// [`crate::Simulator::set_scenarios`] or `POST /_admin/scenarios`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scenarios {
    /// Every password/secret is rejected: Entra `AADSTS7000215`, EWS/Autotask/ConnectWise 401.
    pub wrong_password: bool,
    /// The account needs MFA: Entra `AADSTS50076`; EWS Basic logons fail with 401.
    pub mfa_required: bool,
    /// Basic authentication is disabled on EWS: 401 without a `WWW-Authenticate: Basic` challenge.
    pub basic_disabled: bool,
    /// The EWS service account lacks the ApplicationImpersonation role (`ErrorImpersonateUserDenied`).
    pub impersonation_not_granted: bool,
    /// The mailbox address does not exist: EWS `ErrorNonExistentMailbox`, Graph `ErrorInvalidUser`.
    pub mailbox_address_mismatch: bool,
    /// The user has no Exchange Online licence: Graph mailbox calls answer
    /// `MailboxNotEnabledForRESTAPI`.
    pub no_exchange_online_license: bool,
    /// The app registration lives in another tenant: Entra `AADSTS700016`.
    pub other_tenant: bool,
}
