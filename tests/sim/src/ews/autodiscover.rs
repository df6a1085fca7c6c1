//! POX Autodiscover (`POST /autodiscover/autodiscover.xml`).

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
