//! `validate-config` and `test-connection` findings, each failure with its cause and remedy.
//! The causes are the ones Exchange integrations fail on in practice
//! (`../shared/seeds/autotask-exchange-troubleshooting.txt`): a wrong password, multi-factor
//! authentication without an app password, Basic authentication disabled on the server, a
//! service account without the impersonation right, and a mailbox address that names no mailbox.

use crate::endpoint;
use crate::error::EwsError;
use crate::ops;
use crate::soap::{self, ReadError, Target};
use crate::{Config, CREDENTIAL, VERSIONS};
use syncbridge_sdk::http::Request;
use syncbridge_sdk::types::{Finding, Outcome, PluginError};

/// Offline checks: server addresses, version, addresses and credential slots.
pub fn config(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    for (field, url) in [
        ("ews_url", &cfg.ews_url),
        ("autodiscover_url", &cfg.autodiscover_url),
    ] {
        if let Some(u) = url {
            if let Err(e) = endpoint::check_server_url(u) {
                out.push(Finding::failed(
                    "server-address",
                    format!("{field}: {e}"),
                    "use https://<the server's host name>[:443|:80|:2610]/EWS/Exchange.asmx",
                ));
            }
        }
    }
    if cfg.ews_url.is_none() && cfg.mailbox.is_none() {
        out.push(Finding::failed(
            "endpoint",
            "neither ews_url nor mailbox is set, so the EWS endpoint cannot be found",
            "set \"ews_url\", or \"mailbox\" so that Autodiscover can find the endpoint",
        ));
    }
    if !VERSIONS.contains(&cfg.version.as_str()) {
        out.push(Finding::failed(
            "version",
            format!("{:?} is not an EWS RequestServerVersion", cfg.version),
            format!("use one of {}", VERSIONS.join(", ")),
        ));
    }
    let addresses = cfg.mailbox.iter().chain(cfg.mailbox_credentials.keys());
    for a in addresses {
        if endpoint::domain_of(a).is_none() {
            out.push(Finding::failed(
                "mailbox",
                format!("{a:?} is not an e-mail address"),
                "write the mailbox's primary SMTP address",
            ));
        }
    }
    for (m, slot) in &cfg.mailbox_credentials {
        if slot.trim().is_empty() {
            out.push(Finding::failed(
                "mailbox_credentials",
                format!("{m}: the credential slot name is empty"),
                "name the credential slot entered for this mailbox",
            ));
        }
    }
    if out.is_empty() {
        out.push(Finding::ok("config"));
    }
    out
}

/// The finding for a failed call, with the cause in words and the remedy.
pub fn explain(check: &str, who: &str, e: &PluginError, basic_offered: Option<bool>) -> Finding {
    let (cause, remedy) = match (e, basic_offered) {
        (PluginError::Auth(_), Some(false)) => (
            format!("Exchange refused {who} and offers no Basic authentication (only Negotiate/NTLM): Basic authentication is disabled on the EWS virtual directory"),
            "enable Basic authentication on the EWS virtual directory (Set-WebServicesVirtualDirectory -BasicAuthentication $true), or use an OAuth credential for a hybrid deployment".to_string(),
        ),
        (PluginError::Auth(_), _) => (
            format!("Exchange refused the user name or password of {who} (HTTP 401): the password is wrong or changed, or the account uses multi-factor authentication"),
            "enter the credential again (DOMAIN\\user or the UPN, and the current password); an account with multi-factor authentication needs an app password in the credential; check it with the Microsoft Remote Connectivity Analyzer".to_string(),
        ),
        (PluginError::Forbidden(m), _) if m.contains("impersonate") => (
            format!("the service account may not impersonate {who} (ErrorImpersonateUserDenied)"),
            "grant the service account the ApplicationImpersonation role (New-ManagementRoleAssignment -Role ApplicationImpersonation -User <account>), or turn \"impersonate\" off and give it delegate access to the mailboxes".to_string(),
        ),
        (PluginError::Forbidden(m), _) => (
            format!("access to {who} is denied: {m}"),
            "give the service account full access to the mailbox, or turn \"impersonate\" on with the ApplicationImpersonation role".to_string(),
        ),
        (PluginError::NotFound(m), _) if m.contains("mailbox") => (
            format!("{who} names no mailbox on this server (ErrorNonExistentMailbox): the address does not match a mailbox's primary SMTP address, or the account has no mailbox"),
            "use the mailbox's primary SMTP address (the one Exchange shows), and a service account that is a licensed user with a mailbox".to_string(),
        ),
        (PluginError::Throttled(_), _) => (
            format!("Exchange is busy ({})", e.describe()),
            "try again later; if it persists, raise the service account's EWS throttling policy".to_string(),
        ),
        _ => (format!("{who}: {}", e.describe()), "check the server address and that the server is reachable from syncbridge".to_string()),
    };
    Finding {
        check: check.into(),
        outcome: Outcome::Failed,
        cause: Some(cause),
        remedy: Some(remedy),
    }
}

/// One authenticated call; on failure also whether the 401 offered Basic.
fn probe(target: &Target, body: &str) -> Result<(), (PluginError, Option<bool>)> {
    let resp = Request::post(&target.url)
        .credential(&target.credential)
        .xml(soap::envelope(target, body))
        .send()
        .map_err(|e| (e, None))?;
    let basic = resp.0.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("www-authenticate")
            && h.value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("basic")
    });
    let retry = resp.header("Retry-After").map(str::to_owned);
    match soap::read_response(resp.status(), &resp.text(), basic, retry.as_deref()) {
        Ok(r) => {
            match soap::single(&r) {
                Ok(_) => Ok(()),
                // ConvertId of a made-up id fails as an id, which still proves the credentials.
                Err(
                    EwsError::Invalid { .. } | EwsError::NotFound { .. } | EwsError::Other { .. },
                ) if body.contains("ConvertId") => Ok(()),
                Err(e) => Err((e.into(), None)),
            }
        }
        Err(ReadError::Ews(e @ EwsError::Unauthorized { basic_offered })) => {
            Err((e.into(), Some(basic_offered)))
        }
        Err(e) => Err((e.into(), None)),
    }
}

/// Reaches the endpoint, signs in, and opens each configured mailbox.
pub fn connection(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let url = match cfg.ews_url(cfg.mailbox.as_deref()) {
        Ok(u) => {
            out.push(Finding::ok("endpoint"));
            u
        }
        Err(e) => {
            out.push(explain("endpoint", "Autodiscover", &e, None));
            return out;
        }
    };
    let service = Target {
        url: url.clone(),
        version: cfg.version.clone(),
        impersonate: None,
        credential: CREDENTIAL.into(),
    };
    match probe(&service, &ops::probe()) {
        Ok(()) => out.push(Finding::ok("credentials")),
        Err((e, basic)) => {
            out.push(explain("credentials", "the service account", &e, basic));
            return out;
        }
    }
    let mailboxes: Vec<&String> = cfg
        .mailbox
        .iter()
        .chain(cfg.mailbox_credentials.keys())
        .collect();
    for m in mailboxes {
        let check = if cfg.impersonate && cfg.credential_for(m) == CREDENTIAL {
            "impersonation"
        } else {
            "mailbox"
        };
        let result = cfg.target(m).map_err(|e| (e, None)).and_then(|t| {
            let folder = cfg.folder(&t, "calendar", m);
            let body = format!("<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{}</m:FolderIds></m:GetFolder>", folder.xml());
            probe(&t, &body)
        });
        match result {
            Ok(()) => out.push(Finding::ok(format!("{check}:{m}"))),
            Err((e, basic)) => {
                let check = match &e {
                    PluginError::NotFound(_) => "mailbox",
                    PluginError::Auth(_) => "credentials",
                    _ => check,
                };
                out.push(explain(&format!("{check}:{m}"), m, &e, basic));
            }
        }
    }
    out
}
