//! An e-mail row as a canonical `email-message`.

use crate::text;
use serde_json::Value;
use syncbridge_sdk::prelude::*;

/// `participationtypemask` of the sender, To and Cc parties.
pub const SENDER: i64 = 1;
/// To recipient.
pub const TO: i64 = 2;
/// Cc recipient.
pub const CC: i64 = 3;

/// The addresses of a `;`-separated recipient column (trimmed, blanks skipped).
pub fn recipients(column: Option<&str>) -> Vec<EmailAddress> {
    column
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| EmailAddress {
            address: a.to_owned(),
            name: None,
        })
        .collect()
}

/// The addresses of the row's expanded `email_activity_parties` in the role `mask`.
pub fn parties(row: &Value, mask: i64) -> Vec<EmailAddress> {
    row.get("email_activity_parties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("participationtypemask").and_then(Value::as_i64) == Some(mask))
        .filter_map(|p| text(p, "addressused"))
        .map(|address| EmailAddress {
            address,
            name: None,
        })
        .collect()
}

/// An e-mail row as an `email-message`; none without an `activityid`.
///
/// From is `sender` (else the Sender party), To is `torecipients` and the To parties not in it
/// (the column holds at most 500 characters), Cc the Cc parties; the body is `description` (HTML), sent `senton`, received `actualend`.
pub fn email_item(row: &Value) -> Option<Item> {
    let id = text(row, "activityid")?.to_ascii_lowercase();
    let from = text(row, "sender")
        .map(|address| EmailAddress {
            address,
            name: None,
        })
        .or_else(|| parties(row, SENDER).into_iter().next());
    let mut to = recipients(row.get("torecipients").and_then(Value::as_str));
    for party in parties(row, TO) {
        if !to
            .iter()
            .any(|a| a.address.eq_ignore_ascii_case(&party.address))
        {
            to.push(party);
        }
    }
    Some(Item {
        id,
        version: text(row, "@odata.etag"),
        removed: None,
        body: Some(ItemBody::EmailMessage(EmailMessage {
            subject: text(row, "subject"),
            from,
            to,
            cc: parties(row, CC),
            body: row
                .get("description")
                .and_then(Value::as_str)
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
            body_is_html: true,
            sent: text(row, "senton"),
            received: text(row, "actualend"),
            internet_message_id: text(row, "messageid"),
        })),
    })
}

/// Whether `address` is among the message's To or Cc recipients (case-insensitive): the
/// `contains` of an incoming pass also matches longer addresses (`joann@…` for `ann@…`).
pub fn addressed_to(item: &Item, address: &str) -> bool {
    match &item.body {
        Some(ItemBody::EmailMessage(m)) => {
            m.to.iter()
                .chain(&m.cc)
                .any(|a| a.address.eq_ignore_ascii_case(address))
        }
        _ => false,
    }
}
