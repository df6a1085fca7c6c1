//! Autodiscover: POX (`POST /autodiscover/autodiscover.xml`) and SOAP
//! (`POST /autodiscover/autodiscover.svc`, `GetUserSettings`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::xml::{escape, parse};
use super::EwsAccount;
use crate::store::Store;
use crate::util::lock;

const RESP: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
const OUTLOOK: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

fn xml(body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

fn error(code: u32, message: &str) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    xml(format!(
        r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{RESP}"><Response><Error Time="{}" Id="{id}"><ErrorCode>{code}</ErrorCode><Message>{}</Message><DebugData /></Error></Response></Autodiscover>"#,
        chrono::Utc::now().format("%H:%M:%S%.3f"),
        escape(message)
    ))
}

/// SOAP Autodiscover namespace (`http://`, as the real service; the docs' `https://` is a typo).
const AD_NS: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";

/// The user setting names of the SOAP Autodiscover protocol (`UserSettingName`).
const SETTINGS: &[&str] = &[
    "UserDisplayName",
    "UserDN",
    "UserDeploymentId",
    "InternalMailboxServer",
    "InternalRpcClientServer",
    "InternalMailboxServerDN",
    "InternalEcpUrl",
    "InternalEcpVoicemailUrl",
    "InternalEcpEmailSubscriptionsUrl",
    "InternalEcpTextMessagingUrl",
    "InternalEcpDeliveryReportUrl",
    "InternalEcpRetentionPolicyTagsUrl",
    "InternalEcpPublishingUrl",
    "InternalEwsUrl",
    "InternalOABUrl",
    "InternalUMUrl",
    "InternalWebClientUrls",
    "MailboxDN",
    "PublicFolderServer",
    "ActiveDirectoryServer",
    "ExternalMailboxServer",
    "ExternalMailboxServerRequiresSSL",
    "ExternalMailboxServerAuthenticationMethods",
    "EcpVoicemailUrlFragment",
    "EcpEmailSubscriptionsUrlFragment",
    "EcpTextMessagingUrlFragment",
    "EcpDeliveryReportUrlFragment",
    "EcpRetentionPolicyTagsUrlFragment",
    "EcpPublishingUrlFragment",
    "ExternalEcpUrl",
    "ExternalEcpVoicemailUrl",
    "ExternalEcpEmailSubscriptionsUrl",
    "ExternalEcpTextMessagingUrl",
    "ExternalEcpDeliveryReportUrl",
    "ExternalEcpRetentionPolicyTagsUrl",
    "ExternalEcpPublishingUrl",
    "ExternalEwsUrl",
    "ExternalOABUrl",
    "ExternalUMUrl",
    "ExternalWebClientUrls",
    "CrossOrganizationSharingEnabled",
    "AlternateMailboxes",
    "CasVersion",
    "EwsSupportedSchemas",
    "InternalPop3Connections",
    "ExternalPop3Connections",
    "InternalImap4Connections",
    "ExternalImap4Connections",
    "InternalSmtpConnections",
    "ExternalSmtpConnections",
    "InternalServerExclusiveConnect",
    "ExternalEwsVersion",
    "MobileMailboxPolicy",
    "DocumentSharingLocations",
    "UserMSOnline",
    "InternalMailboxServerAuthenticationMethods",
    "MailboxVersion",
    "SPMySiteHostURL",
    "SiteMailboxCreationURL",
    "InternalRpcHttpServer",
    "InternalRpcHttpConnectivityRequiresSsl",
    "InternalRpcHttpAuthenticationMethod",
    "ExternalServerExclusiveConnect",
    "ExchangeRpcUrl",
    "ShowGalAsDefaultView",
    "AutoDiscoverSMTPAddress",
    "InteropExternalEwsUrl",
    "InteropExternalEwsVersion",
    "PublicFolderInformation",
    "RedirectUrl",
    "EwsPartnerUrl",
    "CertPrincipalName",
    "GroupingInformation",
    "MapiHttpEnabled",
    "MapiHttpVersion",
    "ExternalDocumentSharingLocations",
    "InternalMapiHttpUrl",
    "ExternalMapiHttpUrl",
];

/// Answers `GetUserSettings` on `/autodiscover/autodiscover.svc`.
pub fn handle_soap(store: &Store, body: &[u8]) -> Response {
    let doc = match parse(&String::from_utf8_lossy(body)) {
        Ok(d) => d,
        Err(e) => {
            return super::soap_fault(
                "ErrorSchemaValidation",
                &format!("The request failed schema validation: {e}"),
                None,
            )
        }
    };
    let Some(req) = doc
        .path(&["Body", "GetUserSettingsRequestMessage"])
        .filter(|r| r.ns == AD_NS)
    else {
        return super::soap_fault("ErrorInvalidRequest", "Only GetUserSettings in namespace http://schemas.microsoft.com/exchange/2010/Autodiscover is supported.", None);
    };
    let Some(request) = req.child("Request") else {
        return super::soap_fault("ErrorInvalidRequest", "Request is missing.", None);
    };
    let wanted: Vec<String> = request
        .child("RequestedSettings")
        .map(|r| r.children.iter().map(|c| c.text().to_string()).collect())
        .unwrap_or_default();
    let s = lock(&store.ews);
    let base = store.base_url();
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split(':')
        .next()
        .unwrap_or("localhost")
        .to_string();
    let ews = format!("{base}/EWS/Exchange.asmx");
    let mut users = String::new();
    for u in request
        .child("Users")
        .map(|u| u.children.clone())
        .unwrap_or_default()
    {
        let mb = u
            .child("Mailbox")
            .map(|m| m.text().to_string())
            .unwrap_or_default();
        let Some(acct) = s
            .accounts
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(&mb) && a.has_mailbox)
        else {
            users.push_str(&format!(
                r#"<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: '{}'</ErrorMessage><RedirectTarget i:nil="true" /><UserSettingErrors /><UserSettings /></UserResponse>"#,
                escape(&mb)
            ));
            continue;
        };
        if acct.in_exchange_online {
            users.push_str(&format!(
                r#"<UserResponse><ErrorCode>RedirectAddress</ErrorCode><ErrorMessage>Redirection address.</ErrorMessage><RedirectTarget>{}</RedirectTarget><UserSettingErrors /><UserSettings /></UserResponse>"#,
                escape(&acct.target_address())
            ));
            continue;
        }
        let alias = acct.email.split('@').next().unwrap_or("");
        let name = if acct.display_name.is_empty() {
            acct.email.clone()
        } else {
            acct.display_name.clone()
        };
        let value = |setting: &str| -> Option<String> {
            Some(match setting {
                "UserDisplayName" => name.clone(),
                "UserDN" => format!("/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={alias}"),
                "UserDeploymentId" => "a40e2742-21c6-4050-8ed2-d41f100c22b8".into(),
                "CasVersion" => "15.01.2507.006".into(),
                "EwsSupportedSchemas" => "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016".into(),
                "InternalMailboxServer" | "ActiveDirectoryServer" => host.clone(),
                "MailboxDN" => "/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=sim/cn=Mailbox Database".into(),
                "InternalEwsUrl" | "ExternalEwsUrl" => ews.clone(),
                "ExternalEwsVersion" | "MailboxVersion" => "15.01.2507.006".into(),
                "AutoDiscoverSMTPAddress" => acct.email.clone(),
                "ExternalMailboxServer" | "InternalRpcClientServer" | "PublicFolderServer" => host.clone(),
                "ExternalMailboxServerRequiresSSL" => "True".into(),
                "ExternalMailboxServerAuthenticationMethods" | "InternalMailboxServerAuthenticationMethods" => "Basic".into(),
                "CrossOrganizationSharingEnabled" | "UserMSOnline" => "False".into(),
                "ShowGalAsDefaultView" => "True".into(),
                "GroupingInformation" => "Default-First-Site-Name".into(),
                _ => return None,
            })
        };
        let mut settings = String::new();
        let mut errors = String::new();
        for w in &wanted {
            match value(w) {
                Some(v) => settings.push_str(&format!(r#"<UserSetting i:type="StringSetting"><Name>{}</Name><Value>{}</Value></UserSetting>"#, escape(w), escape(&v))),
                // A setting of the protocol that this server has no value for.
                None if SETTINGS.contains(&w.as_str()) => errors.push_str(&format!(
                    "<UserSettingError><ErrorCode>SettingIsNotAvailable</ErrorCode><ErrorMessage>User setting '{0}' is not available. </ErrorMessage><SettingName>{0}</SettingName></UserSettingError>",
                    escape(w)
                )),
                None => errors.push_str(&format!(
                    "<UserSettingError><ErrorCode>InvalidSetting</ErrorCode><ErrorMessage>The requested setting is invalid.</ErrorMessage><SettingName>{}</SettingName></UserSettingError>",
                    escape(w)
                )),
            }
        }
        users.push_str(&format!(
            r#"<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil="true" /><UserSettingErrors>{errors}</UserSettingErrors><UserSettings>{settings}</UserSettings></UserResponse>"#
        ));
    }
    xml(format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action></s:Header><s:Body><GetUserSettingsResponseMessage xmlns="{AD_NS}"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><ErrorCode>NoError</ErrorCode><ErrorMessage /><UserResponses>{users}</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#
    ))
}

/// Answers an Outlook POX Autodiscover request.
pub fn handle(store: &Store, _caller: &EwsAccount, body: &[u8]) -> Response {
    let Ok(doc) = parse(&String::from_utf8_lossy(body)) else {
        return error(600, "Invalid Request");
    };
    let Some(email) = doc
        .path(&["Request", "EMailAddress"])
        .map(|e| e.text().to_string())
    else {
        return error(600, "Invalid Request");
    };
    let s = lock(&store.ews);
    let Some(acct) = s
        .accounts
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(&email) && a.has_mailbox)
    else {
        return error(500, "The email address can't be found.");
    };
    if acct.in_exchange_online {
        return xml(format!(
            r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{RESP}"><Response xmlns="{OUTLOOK}"><Account><Action>redirectAddr</Action><RedirectAddr>{}</RedirectAddr></Account></Response></Autodiscover>"#,
            escape(&acct.target_address())
        ));
    }
    let base = store.base_url();
    let host = base.split("://").nth(1).unwrap_or(base);
    let name = if acct.display_name.is_empty() {
        &acct.email
    } else {
        &acct.display_name
    };
    xml(format!(
        r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{RESP}"><Response xmlns="{OUTLOOK}"><User><DisplayName>{}</DisplayName><LegacyDN>/o=First Organization/ou=Exchange Administrative Group/cn=Recipients/cn={}</LegacyDN><AutoDiscoverSMTPAddress>{}</AutoDiscoverSMTPAddress><DeploymentId>{}</DeploymentId></User><Account><AccountType>email</AccountType><Action>settings</Action><MicrosoftOnline>False</MicrosoftOnline><Protocol><Type>EXCH</Type><Server>{host}</Server><ASUrl>{base}/EWS/Exchange.asmx</ASUrl><EwsUrl>{base}/EWS/Exchange.asmx</EwsUrl><EmwsUrl>{base}/EWS/Exchange.asmx</EmwsUrl><OOFUrl>{base}/EWS/Exchange.asmx</OOFUrl></Protocol><Protocol><Type>EXPR</Type><Server>{host}</Server><EwsUrl>{base}/EWS/Exchange.asmx</EwsUrl></Protocol></Account></Response></Autodiscover>"#,
        escape(name),
        escape(acct.email.split('@').next().unwrap_or("")),
        escape(&acct.email),
        uuid::Uuid::new_v4()
    ))
}
