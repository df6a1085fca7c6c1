//! SOAP envelopes out, response messages in: `RequestServerVersion`, `ExchangeImpersonation`,
//! faults and per-item `ResponseClass`/`ResponseCode`.

use crate::error::EwsError;
use crate::xml::{self, escape, Elem};
use syncbridge_sdk::http::{classify_status, Request};
use syncbridge_sdk::types::PluginError;

/// Where and as whom requests go.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The EWS endpoint, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`.
    pub url: String,
    /// `RequestServerVersion/@Version`, e.g. `Exchange2013_SP1`.
    pub version: String,
    /// The mailbox to impersonate (`PrimarySmtpAddress`), when the account impersonates.
    pub impersonate: Option<String>,
    /// The credential slot the host authenticates with.
    pub credential: String,
}

/// The SOAP envelope of one operation (`body` is the `m:` operation element).
pub fn envelope(target: &Target, body: &str) -> String {
    let imp = target
        .impersonate
        .as_deref()
        .map(|m| {
            format!(
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>",
                escape(m)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{}" xmlns:m="{}" xmlns:t="{}"><s:Header><t:RequestServerVersion Version="{}"/>{imp}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
        xml::SOAP,
        xml::M,
        xml::T,
        escape(&target.version)
    )
}

/// Sends one operation; answers the operation's response element (`m:GetItemResponse`, …).
pub fn call(target: &Target, body: &str) -> Result<Elem, PluginError> {
    let resp = Request::post(&target.url)
        .credential(&target.credential)
        .header("Accept", "text/xml")
        .xml(envelope(target, body))
        .send()?;
    let basic_offered = resp.0.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("www-authenticate")
            && h.value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("basic")
    });
    let retry_after = resp.header("Retry-After").map(str::to_owned);
    Ok(read_response(
        resp.status(),
        &resp.text(),
        basic_offered,
        retry_after.as_deref(),
    )?)
}

/// Reads an HTTP answer: 401 → [`EwsError::Unauthorized`], faults → their error, otherwise the
/// operation's response element.
pub fn read_response(
    status: u16,
    body: &str,
    basic_offered: bool,
    retry_after: Option<&str>,
) -> Result<Elem, ReadError> {
    if status == 401 {
        return Err(EwsError::Unauthorized { basic_offered }.into());
    }
    let doc = match xml::parse(body) {
        Ok(d) if d.ns == xml::SOAP && d.name == "Envelope" => d,
        _ if status == 200 => {
            return Err(EwsError::Malformed {
                status,
                detail: excerpt(body),
            }
            .into())
        }
        _ => {
            // A 503 (or other) without SOAP: classify by status, with the Retry-After.
            if status == 503 && retry_after.is_some() {
                let backoff_ms = retry_after.and_then(syncbridge_sdk::http::parse_retry_after);
                return Err(EwsError::ServerBusy { backoff_ms }.into());
            }
            return Err(ReadError::Http(classify_status(
                status,
                retry_after,
                &excerpt(body),
            )));
        }
    };
    // The response element is moved out of the document, not copied.
    let body_el = doc
        .children
        .into_iter()
        .find(|c| c.name == "Body")
        .ok_or_else(|| EwsError::Malformed {
            status,
            detail: "no SOAP Body".into(),
        })?;
    let first = body_el
        .children
        .into_iter()
        .next()
        .ok_or_else(|| EwsError::Malformed {
            status,
            detail: "an empty SOAP Body".into(),
        })?;
    if first.name == "Fault" {
        return Err(fault(&first).into());
    }
    if !(200..300).contains(&status) {
        return Err(ReadError::Http(classify_status(
            status,
            retry_after,
            &excerpt(body),
        )));
    }
    Ok(first)
}

/// The error a SOAP fault stands for (`detail/ResponseCode`, else the `faultcode`).
pub fn fault(f: &Elem) -> EwsError {
    let detail = f.child("detail");
    let code = detail
        .and_then(|d| d.text_of("ResponseCode"))
        .map(str::to_owned)
        .or_else(|| {
            f.text_of("faultcode")
                .map(|c| c.rsplit(':').next().unwrap_or(c).to_owned())
        })
        .unwrap_or_else(|| "ErrorInternalServerError".into());
    let message = detail
        .and_then(|d| d.text_of("Message"))
        .or_else(|| f.text_of("faultstring"))
        .unwrap_or_default();
    let mut e = EwsError::from_code(&code, message, backoff(detail));
    if let (EwsError::NoMailbox { address, .. }, Some(d)) = (&mut e, detail) {
        *address = message_value(d, "SmtpAddress");
    }
    e
}

fn message_value(container: &Elem, name: &str) -> Option<String> {
    container
        .child("MessageXml")?
        .all("Value")
        .find(|v| v.attr("Name") == Some(name))
        .map(|v| v.text.clone())
}

fn backoff(container: Option<&Elem>) -> Option<u64> {
    container
        .and_then(|c| message_value(c, "BackOffMilliseconds"))
        .and_then(|v| v.parse().ok())
}

fn excerpt(body: &str) -> String {
    body.chars().take(200).collect()
}

/// A failure reading an answer: a typed EWS error or a classified HTTP status.
#[derive(Debug, Clone)]
pub enum ReadError {
    Ews(EwsError),
    Http(PluginError),
}

impl From<EwsError> for ReadError {
    fn from(e: EwsError) -> Self {
        ReadError::Ews(e)
    }
}

impl From<ReadError> for PluginError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Ews(e) => e.into(),
            ReadError::Http(p) => p,
        }
    }
}

/// One `…ResponseMessage`: its content on success (warnings included), its error otherwise.
pub fn messages(response: &Elem) -> Vec<Result<&Elem, EwsError>> {
    let Some(list) = response.child("ResponseMessages") else {
        return Vec::new();
    };
    list.children
        .iter()
        .map(|m| match message_error(m) {
            Some(e) => Err(e),
            None => Ok(m),
        })
        .collect()
}

/// [`messages`], each moved out of the response (to move its texts on into the model).
pub fn into_messages(response: Elem) -> Vec<Result<Elem, EwsError>> {
    let Some(list) = response
        .children
        .into_iter()
        .find(|c| c.name == "ResponseMessages")
    else {
        return Vec::new();
    };
    list.children
        .into_iter()
        .map(|m| match message_error(&m) {
            Some(e) => Err(e),
            None => Ok(m),
        })
        .collect()
}

/// The error a response message reports (`ResponseClass="Error"`).
fn message_error(m: &Elem) -> Option<EwsError> {
    if m.attr("ResponseClass") != Some("Error") {
        return None;
    }
    let code = m
        .text_of("ResponseCode")
        .unwrap_or("ErrorInternalServerError");
    let text = m.text_of("MessageText").unwrap_or_default();
    Some(EwsError::from_code(code, text, backoff(Some(m))))
}

/// The single response message of an operation on one thing (a folder, one item).
pub fn single(response: &Elem) -> Result<&Elem, EwsError> {
    messages(response).into_iter().next().unwrap_or_else(|| {
        Err(EwsError::Malformed {
            status: 200,
            detail: format!("{} has no response message", response.name),
        })
    })
}
