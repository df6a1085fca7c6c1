//! `t:Message` ↔ [`EmailMessage`].

use super::*;
use syncbridge_sdk::types::EmailMessage;

/// `t:MessageType` children this connector writes, in schema order (after the item's).
const ORDER: &[&str] = &["ToRecipients", "CcRecipients", "From", "InternetMessageId"];

fn recipients(item: &Elem, name: &str) -> Vec<EmailAddress> {
    item.child(name)
        .map(|r| r.all("Mailbox").filter_map(address_of).collect())
        .unwrap_or_default()
}

/// Reads a message. The body is as Exchange stores it (`BodyType` `Best`): HTML when the
/// message has an HTML body, text otherwise.
pub fn read(item: &Elem) -> EmailMessage {
    let body = body_of(item);
    EmailMessage {
        subject: item.text_of("Subject").map(str::to_owned),
        from: item.path(&["From", "Mailbox"]).and_then(address_of),
        to: recipients(item, "ToRecipients"),
        cc: recipients(item, "CcRecipients"),
        body_is_html: body.as_ref().is_some_and(|b| b.body_type == BodyType::Html),
        body: body.map(|b| b.content),
        sent: item.text_of("DateTimeSent").and_then(utc),
        received: item.text_of("DateTimeReceived").and_then(utc),
        internet_message_id: item.text_of("InternetMessageId").map(str::to_owned),
    }
}

fn recipients_xml(
    field: &str,
    element: &'static str,
    list: &[EmailAddress],
) -> Result<Prop, PluginError> {
    if let Some(bad) = list.iter().find(|a| !a.address.contains('@')) {
        return Err(PluginError::invalid_field(
            field,
            format!("{:?} is not an e-mail address", bad.address),
        ));
    }
    let xml = (!list.is_empty()).then(|| {
        let inner: String = list.iter().map(mailbox_xml).collect();
        format!("<t:{element}>{inner}</t:{element}>")
    });
    Ok(Prop::field(&format!("message:{element}"), element, xml))
}

/// The `t:Message` of a CreateItem that sends `msg` from `mailbox`.
///
/// `From` is always the scope's mailbox (with the message's sender name when `from` names that
/// mailbox): sending as another address would need Send As on it, and that address has an
/// outbox scope of its own. `InternetMessageId` is sent when given: the EWS schema has it on
/// `MessageType` and the EWS reference documents `MessageType.InternetMessageId` as read/write.
/// Without recipients in `to` or `cc`, or with one that is no address, it is refused naming the
/// field.
pub fn create_xml(msg: &EmailMessage, mailbox: &str) -> Result<String, PluginError> {
    if msg.to.is_empty() && msg.cc.is_empty() {
        return Err(PluginError::invalid_field(
            "to",
            "a message needs at least one recipient in to or cc",
        ));
    }
    let from = EmailAddress {
        address: mailbox.to_owned(),
        name: msg
            .from
            .as_ref()
            .filter(|f| f.address.eq_ignore_ascii_case(mailbox))
            .and_then(|f| f.name.clone()),
    };
    let body = msg
        .body
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(|content| RichText {
            content: content.to_owned(),
            body_type: if msg.body_is_html {
                BodyType::Html
            } else {
                BodyType::Text
            },
        });
    let props = vec![
        Prop::text("item:Subject", "Subject", msg.subject.as_deref()),
        body_prop(body.as_ref()),
        recipients_xml("to", "ToRecipients", &msg.to)?,
        recipients_xml("cc", "CcRecipients", &msg.cc)?,
        Prop::field(
            "message:From",
            "From",
            Some(format!("<t:From>{}</t:From>", mailbox_xml(&from))),
        ),
        Prop::text(
            "message:InternetMessageId",
            "InternetMessageId",
            msg.internet_message_id.as_deref(),
        ),
    ];
    let order: Vec<&str> = ITEM_ORDER.iter().chain(ORDER).copied().collect();
    Ok(format!(
        "<t:Message>{}</t:Message>",
        in_schema_order(props, &order)
    ))
}
