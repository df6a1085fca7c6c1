//! Native tests of the wire layer against Microsoft's documented samples
//! (`../shared/oracles/ews/samples`, `samples-negative`) and of the connector's rules through
//! the SDK's exports with a stubbed host.

mod calendar;
mod mail;
mod owner;
mod schema;
mod sim;
mod wire;

use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Request as WitRequest;
use syncbridge_sdk::testing::response;

pub const CFG: &str = r#"{"ews_url":"https://mail.contoso.com/EWS/Exchange.asmx","impersonate":true,"version":"Exchange2013_SP1"}"#;

/// A documented sample by file name.
pub fn sample(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/oracles/ews");
    std::fs::read_to_string(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The operation element name of a request envelope (`GetItem`, `SyncFolderItems`, …).
pub fn operation(r: &WitRequest) -> String {
    let body = String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned();
    let doc = xml::parse(&body).expect("requests are well-formed XML");
    doc.child("Body")
        .and_then(|b| b.children.first())
        .map(|o| o.name.to_string())
        .unwrap_or_default()
}

pub fn body_of(r: &WitRequest) -> String {
    String::from_utf8_lossy(r.body.as_deref().unwrap_or_default()).into_owned()
}

/// Wraps a response body element in an envelope as Exchange sends it.
pub fn envelope(inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">{inner}</s:Body></s:Envelope>"#
    )
}

/// A GetItem response with one message per item element.
pub fn get_item_response(items: &[&str]) -> String {
    let msgs: String = items
        .iter()
        .map(|i| format!(r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{i}</m:Items></m:GetItemResponseMessage>"#))
        .collect();
    envelope(&format!(
        "<m:GetItemResponse><m:ResponseMessages>{msgs}</m:ResponseMessages></m:GetItemResponse>"
    ))
}

/// A SyncFolderItems response.
pub fn sync_response(state: &str, last: bool, changes: &str) -> String {
    envelope(&format!(
        r#"<m:SyncFolderItemsResponse><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>{state}</m:SyncState><m:IncludesLastItemInRange>{last}</m:IncludesLastItemInRange><m:Changes>{changes}</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#
    ))
}

/// Records every request and answers with `answer(op, body)`.
pub fn stub(
    seen: Rc<RefCell<Vec<(String, String)>>>,
    mut answer: impl FnMut(&str, &str) -> (u16, String) + 'static,
) -> impl FnMut(
    &WitRequest,
) -> Result<
    syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Response,
    PluginError,
> {
    move |r| {
        let (op, body) = (operation(r), body_of(r));
        seen.borrow_mut().push((op.clone(), body.clone()));
        let (status, text) = answer(&op, &body);
        Ok(response(status, &text))
    }
}
