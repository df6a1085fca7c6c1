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
        ("outgoing_url", &cfg.outgoing_url),
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
    let addresses = cfg
        .mailbox
        .iter()
        .chain(cfg.mailbox_credentials.keys())
        .chain(&cfg.test_mailboxes);
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

/// A failure below EWS (name resolution, TCP, TLS, the network policy) or an endpoint that is
/// not EWS (HTTP 404: a wrong virtual directory), as the check of the layer that failed, the
/// way a remote connectivity analyzer reports it; `None` when the server answered as EWS.
pub fn transport(url: &str, e: &PluginError) -> Option<Finding> {
    let host = endpoint_host(url);
    let port = host
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .unwrap_or_else(|| {
            (if url.starts_with("http://") {
                "80"
            } else {
                "443"
            })
            .to_owned()
        });
    let name = host
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&host)
        .to_owned();
    let (message, lower) = match e {
        PluginError::Transient(m) | PluginError::Forbidden(m) | PluginError::NotFound(m) => {
            (m.as_str(), m.to_ascii_lowercase())
        }
        _ => return None,
    };
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let finding = if has(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "nodename nor servname",
    ]) {
        Finding::failed(
            "dns",
            format!("the server's host name {name} does not resolve ({message})"),
            "check the server address for typos, and that the DNS syncbridge uses resolves it (an internal host name needs an internal DNS server or a public record)",
        )
    } else if has(&["certificate"]) {
        Finding::failed(
            "tls",
            format!("the TLS certificate of {name} is not trusted: it does not chain to a trusted certificate authority (self-signed, or signed by a private CA) ({message})"),
            "install a certificate signed by a public certificate authority on the Exchange server, or add the CA that signed it to syncbridge explicitly (--ca-cert)",
        )
    } else if has(&["resolves only to loopback, private"]) {
        Finding::failed(
            "network",
            format!("{name} is a private or loopback address, which this connection may not reach ({message})"),
            "allow private networks on the profile (allow_private_network) when the server is on the LAN, or use the server's public host name",
        )
    } else if has(&[
        "connection closed",
        "closed connection",
        "incomplete message",
        "connection reset",
        "unexpected eof",
        "broken pipe",
    ]) {
        Finding::failed(
            "endpoint",
            format!("{name} accepted the connection but closed it without an HTTP answer ({message})"),
            "check the Exchange server's IIS and its EWS application pool (MSExchangeServicesAppPool), and any proxy or load balancer in front of it",
        )
    } else if has(&[
        "connection refused",
        "tcp connect error",
        "did not answer within",
        "cannot connect to",
        "network is unreachable",
    ]) {
        Finding::failed(
            "port",
            format!("nothing answers on {name} port {port}: the server is down, or a firewall blocks the port ({message})"),
            format!("check that the Exchange server runs and that port {port} is open from syncbridge to it (Exchange is reached on 443, 80 or 2610)"),
        )
    } else if matches!(e, PluginError::NotFound(_)) && lower.starts_with("http 404") {
        Finding::failed(
            "endpoint",
            format!("{url} answers HTTP 404: no EWS at this path, the virtual directory or URL is wrong"),
            "leave the virtual directory empty (the default, EWS) or enter the one the Exchange server publishes EWS under (Get-WebServicesVirtualDirectory shows its URL)",
        )
    } else {
        return None;
    };
    Some(finding)
}

/// `host[:port]` of a URL.
fn endpoint_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?'])
        .next()
        .unwrap_or(rest)
        .to_ascii_lowercase()
}

/// The path of a URL (`/EWS/Exchange.asmx`).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
}

/// The checks a call that reached the server passed: name, port and (HTTPS) TLS.
fn reached(url: &str) -> Vec<Finding> {
    let mut out = vec![Finding::ok("dns"), Finding::ok("port")];
    if url.starts_with("https://") {
        out.push(Finding::ok("tls"));
    }
    out
}

/// Autodiscover for `address` at the configured service, compared with the EWS URL in use: a
/// warning when it does not answer or names another URL (the sync uses the configured one).
fn autodiscover(cfg: &Config, address: &str, url: &str) -> Finding {
    let check = format!("autodiscover:{address}");
    let warn = |cause: String, remedy: &str| Finding {
        check: check.clone(),
        outcome: Outcome::Warning,
        cause: Some(cause),
        remedy: Some(remedy.to_owned()),
    };
    match endpoint::discover(
        address,
        cfg.autodiscover_url.as_deref(),
        cfg.credential_for(address),
    ) {
        // Host names may differ (internal and external names, load balancers); the path is
        // the virtual directory.
        Ok(found) if url_path(&found).eq_ignore_ascii_case(url_path(url)) => {
            Finding::ok(check.clone())
        }
        Ok(found) => warn(
            format!("Autodiscover for {address} names the EWS URL {found}, in another virtual directory than the connection's {url}"),
            "check the server address and virtual directory against the URL Autodiscover names (Get-WebServicesVirtualDirectory | fl ExternalUrl,InternalUrl)",
        ),
        Err(e) => warn(
            format!("Autodiscover does not answer for {address}: {}", e.describe()),
            "the sync uses the configured EWS URL; to let clients find the server, publish Autodiscover (autodiscover.<domain> in DNS and a certificate naming it)",
        ),
    }
}

/// Reaches the endpoint, signs in, and opens each configured mailbox.
pub fn connection(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let url = match cfg.ews_url(cfg.mailbox.as_deref()) {
        Ok(u) => u,
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
        Ok(()) => {
            out.extend(reached(&url));
            out.push(Finding::ok("endpoint"));
            out.push(Finding::ok("credentials"));
        }
        Err((e, basic)) => {
            if let Some(f) = transport(&url, &e) {
                // The layers below the one that failed passed.
                let below = match f.check.as_str() {
                    "port" => 1,
                    "tls" => 2,
                    "endpoint" => 3,
                    _ => 0,
                };
                out.extend(reached(&url).into_iter().take(below));
                out.push(f);
                return out;
            }
            out.extend(reached(&url));
            out.push(Finding::ok("endpoint"));
            out.push(explain("credentials", "the service account", &e, basic));
            return out;
        }
    }
    if let (Some(_), Some(_), Some(m)) = (&cfg.ews_url, &cfg.autodiscover_url, &cfg.mailbox) {
        out.push(autodiscover(cfg, m, &url));
    }
    let mut mailboxes: Vec<&String> = Vec::new();
    for m in cfg
        .mailbox
        .iter()
        .chain(cfg.mailbox_credentials.keys())
        .chain(&cfg.test_mailboxes)
    {
        if !mailboxes.iter().any(|k| k.eq_ignore_ascii_case(m)) {
            mailboxes.push(m);
        }
    }
    for m in mailboxes {
        let check = if cfg.impersonate && cfg.credential_for(m) == CREDENTIAL {
            "impersonation"
        } else {
            "mailbox"
        };
        let result = cfg
            .target(m)
            .map_err(|e| (e, None))
            .and_then(|t| probe(&t, &ops::get_folder_ids(&cfg.folder(&t, "calendar", m))));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(m: &str) -> PluginError {
        PluginError::Transient(m.into())
    }

    #[test]
    fn transport_failures_name_the_layer_that_failed() {
        let url = "https://mail.contoso.com:2610/EWS/Exchange.asmx";
        let cases = [
            (t("cannot connect to mail.contoso.com: client error (Connect): dns error: failed to lookup address information: Name or service not known"), "dns", "does not resolve"),
            (t("cannot connect to mail.contoso.com: client error (Connect): tcp connect error: Connection refused (os error 111)"), "port", "2610"),
            (t("mail.contoso.com did not answer within 30000 ms"), "port", "did not answer"),
            (PluginError::Forbidden("TLS to mail.contoso.com failed: the certificate is not trusted (invalid peer certificate: UnknownIssuer); add its CA with --ca-cert".into()), "tls", "trusted"),
            (PluginError::Forbidden("mail.contoso.com resolves only to loopback, private or other non-public addresses, which this connection may not reach; allow private networks on the connection if this is intended".into()), "network", "private"),
            (PluginError::NotFound("HTTP 404: ".into()), "endpoint", "virtual directory"),
            (t("request to mail.contoso.com failed: client error (SendRequest): connection closed before message completed"), "endpoint", "closed it"),
            (t("request to mail.contoso.com failed: client error (SendRequest): connection error: peer closed connection without sending TLS close_notify"), "endpoint", "closed it"),
        ];
        for (e, check, words) in cases {
            let f = transport(url, &e).unwrap_or_else(|| panic!("{e:?}"));
            assert_eq!(f.check, check, "{e:?}");
            assert_eq!(f.outcome, Outcome::Failed);
            let text = format!("{} {}", f.cause.unwrap(), f.remedy.unwrap());
            assert!(text.contains(words), "{check}: {text}");
        }
        for e in [
            PluginError::Auth("HTTP 401".into()),
            PluginError::Forbidden("ErrorImpersonateUserDenied: may not impersonate".into()),
            PluginError::NotFound("ErrorNonExistentMailbox: no mailbox".into()),
        ] {
            assert!(transport(url, &e).is_none(), "{e:?}");
        }
    }
}
