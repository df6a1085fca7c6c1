//! EWS items ↔ the canonical mailbox model (`syncbridge_sdk::types::mailbox`).
//!
//! Reading takes an item element of a GetItem/FindItem/SyncFolderItems answer; writing gives
//! the properties of a CreateItem (in schema order) or the `SetItemField`/`DeleteItemField`
//! changes of an UpdateItem for the canonical fields an update names.
//!
//! The mappings of contacts, calendar items and tasks read the item element they are given as
//! `&mut`: the texts they keep are moved out of it (`take_*`, left empty in the element) instead
//! of copied. Their `&Elem` forms map a copy.

pub mod contact;
pub mod event;
pub mod message;
pub mod todo;

use crate::xml::{escape, t, Elem};
use syncbridge_sdk::types::mailbox::{BodyType, RichText};
use syncbridge_sdk::types::{EmailAddress, PluginError};

/// The property set of the anchor extended property (shared with the Graph connector).
pub const ANCHOR_SET: &str = "b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11";
/// The anchor property's name.
pub const ANCHOR_NAME: &str = "syncbridgeAnchor";

/// The `ExtendedFieldURI` of the anchor.
pub fn anchor_uri() -> String {
    format!(
        r#"<t:ExtendedFieldURI PropertySetId="{ANCHOR_SET}" PropertyName="{ANCHOR_NAME}" PropertyType="String"/>"#
    )
}

/// A property of an item being written: where it goes (`uri`, for UpdateItem) and its element.
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    /// The path element: `<t:FieldURI …/>`, `<t:IndexedFieldURI …/>` or `<t:ExtendedFieldURI …/>`.
    pub uri: String,
    /// The element name in the item (orders CreateItem properties).
    pub element: &'static str,
    /// The property element with its value, or `None` to clear it.
    pub xml: Option<String>,
}

impl Prop {
    /// A plain field (`item:Subject`) with an optional value.
    pub fn field(uri: &str, element: &'static str, xml: Option<String>) -> Self {
        Prop {
            uri: format!(r#"<t:FieldURI FieldURI="{uri}"/>"#),
            element,
            xml,
        }
    }

    /// A text field: `<t:{element}>value</t:{element}>`, cleared when `None` or empty.
    pub fn text(uri: &str, element: &'static str, value: Option<&str>) -> Self {
        Self::field(
            uri,
            element,
            value.filter(|v| !v.is_empty()).map(|v| t(element, v)),
        )
    }
}

/// The anchor property.
pub fn anchor_prop(anchor: Option<&str>) -> Prop {
    Prop {
        uri: anchor_uri(),
        element: "ExtendedProperty",
        xml: anchor.filter(|a| !a.is_empty()).map(|a| {
            format!(
                "<t:ExtendedProperty>{}<t:Value>{}</t:Value></t:ExtendedProperty>",
                anchor_uri(),
                escape(a)
            )
        }),
    }
}

/// `item:Categories`.
pub fn categories_prop(categories: &[String]) -> Prop {
    let xml = (!categories.is_empty()).then(|| {
        let inner: String = categories.iter().map(|c| t("String", c)).collect();
        format!("<t:Categories>{inner}</t:Categories>")
    });
    Prop::field("item:Categories", "Categories", xml)
}

/// `item:Body`.
pub fn body_prop(body: Option<&RichText>) -> Prop {
    let xml = body.filter(|b| !b.content.is_empty()).map(|b| {
        let kind = match b.body_type {
            BodyType::Html => "HTML",
            BodyType::Text => "Text",
        };
        format!(
            r#"<t:Body BodyType="{kind}">{}</t:Body>"#,
            escape(&b.content)
        )
    });
    Prop::field("item:Body", "Body", xml)
}

/// Whether an `ExtendedProperty` is the anchor.
fn is_anchor(p: &Elem) -> bool {
    p.child("ExtendedFieldURI").is_some_and(|u| {
        u.attr("PropertyName") == Some(ANCHOR_NAME)
            && u.attr("PropertySetId")
                .is_some_and(|s| s.eq_ignore_ascii_case(ANCHOR_SET))
    })
}

/// The anchor value of an item element.
pub fn anchor_of(item: &Elem) -> Option<String> {
    item.all("ExtendedProperty")
        .find(|p| is_anchor(p))
        .and_then(|p| p.text_of("Value"))
        .map(str::to_owned)
}

/// [`anchor_of`], the value moved out of the item.
pub fn take_anchor(item: &mut Elem) -> Option<String> {
    item.all_mut("ExtendedProperty")
        .find(|p| is_anchor(p))
        .and_then(|p| p.take_text_of("Value"))
}

/// `Categories/String` values.
pub fn categories_of(item: &Elem) -> Vec<String> {
    item.child("Categories")
        .map(|c| {
            c.all("String")
                .map(|s| s.text.clone())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// [`categories_of`], the values moved out of the item.
pub fn take_categories(item: &mut Elem) -> Vec<String> {
    item.child_mut("Categories")
        .map(|c| {
            c.all_mut("String")
                .map(|s| std::mem::take(&mut s.text))
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A `t:Mailbox` (`EmailAddressType`): its `EmailAddress` and `Name`; `None` without an address.
pub fn address_of(mailbox: &Elem) -> Option<EmailAddress> {
    let address = mailbox.text_of("EmailAddress")?.to_owned();
    Some(EmailAddress {
        address,
        name: mailbox.text_of("Name").map(str::to_owned),
    })
}

/// [`address_of`], the texts moved out of the mailbox (none without an address).
pub fn take_address(mailbox: &mut Elem) -> Option<EmailAddress> {
    let address = mailbox.take_text_of("EmailAddress")?;
    Some(EmailAddress {
        address,
        name: mailbox.take_text_of("Name"),
    })
}

/// A `t:Mailbox` element (`Name` only when there is one).
pub fn mailbox_xml(a: &EmailAddress) -> String {
    let name = a
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(|n| t("Name", n))
        .unwrap_or_default();
    format!(
        "<t:Mailbox>{name}{}</t:Mailbox>",
        t("EmailAddress", &a.address)
    )
}

fn body_type_of(body: &Elem) -> BodyType {
    match body.attr("BodyType") {
        Some(t) if t.eq_ignore_ascii_case("HTML") => BodyType::Html,
        _ => BodyType::Text,
    }
}

/// `Body` with its `BodyType`.
pub fn body_of(item: &Elem) -> Option<RichText> {
    let b = item.child("Body")?;
    if b.text.is_empty() {
        return None;
    }
    Some(RichText {
        content: b.text.clone(),
        body_type: body_type_of(b),
    })
}

/// [`body_of`], the text moved out of the item.
pub fn take_body(item: &mut Elem) -> Option<RichText> {
    let b = item.child_mut("Body")?;
    if b.text.is_empty() {
        return None;
    }
    Some(RichText {
        body_type: body_type_of(b),
        content: std::mem::take(&mut b.text),
    })
}

/// An `xs:dateTime` as RFC 3339 UTC (`2026-11-23T08:00:00Z`); `None` when it is not one.
pub fn utc(value: &str) -> Option<String> {
    let value = value.trim();
    if is_utc_second(value) {
        return Some(value.to_owned());
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|n| n.and_utc())
        })
        .ok()?;
    Some(parsed.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// [`utc`] of a text that is given up: answered as it is when already in the canonical form
/// (no copy), else converted; `Err` gives the text back when it is no `xs:dateTime`.
pub fn utc_owned(value: String) -> Result<String, String> {
    if is_utc_second(&value) {
        return Ok(value);
    }
    utc(&value).ok_or(value)
}

/// Whether `value` is already `YYYY-MM-DDTHH:MM:SSZ` naming a valid instant (what Exchange
/// sends), which [`utc`] answers unchanged without parsing and formatting it.
fn is_utc_second(value: &str) -> bool {
    let b = value.as_bytes();
    let shape = b.len() == 20
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ]
        .iter()
        .all(|(i, c)| b[*i] == *c);
    let num = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let valid = || -> Option<()> {
        chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
        chrono::NaiveTime::from_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)?;
        Some(())
    };
    shape && valid().is_some()
}

/// Parses an RFC 3339 instant from the canonical model.
pub fn instant(field: &str, value: &str) -> Result<chrono::DateTime<chrono::Utc>, PluginError> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|_| {
            PluginError::invalid_field(field, format!("{value:?} is not an RFC 3339 instant"))
        })
}

/// Sorts CreateItem properties by their position in `order` (EWS checks `xs:sequence`).
pub fn in_schema_order(mut props: Vec<Prop>, order: &[&str]) -> String {
    props.retain(|p| p.xml.is_some());
    props.sort_by_key(|p| {
        order
            .iter()
            .position(|n| *n == p.element)
            .unwrap_or(usize::MAX)
    });
    props.into_iter().filter_map(|p| p.xml).collect()
}

/// The `UpdateItem` changes for properties: set what has a value, delete what has none.
pub fn changes(kind: &str, props: &[Prop]) -> String {
    props
        .iter()
        .map(|p| match &p.xml {
            Some(x) => format!(
                "<t:SetItemField>{}<t:{kind}>{x}</t:{kind}></t:SetItemField>",
                p.uri
            ),
            None => format!("<t:DeleteItemField>{}</t:DeleteItemField>", p.uri),
        })
        .collect()
}

/// The item-level elements every kind shares, in `t:ItemType` order.
pub const ITEM_ORDER: &[&str] = &[
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Categories",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderMinutesBeforeStart",
    "ExtendedProperty",
];

/// The refusal of a canonical field an update named but this kind does not have.
pub fn unknown_field(field: &str, known: &[&str]) -> PluginError {
    PluginError::invalid_field(
        field,
        format!("not a field of this item; fields are {}", known.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    /// What `utc` answered before its fast path: parse, convert, format.
    fn parsed(value: &str) -> Option<String> {
        let value = value.trim();
        chrono::DateTime::parse_from_rfc3339(value)
            .map(|d| d.with_timezone(&chrono::Utc))
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|n| n.and_utc())
            })
            .ok()
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }

    #[test]
    fn utc_answers_what_parsing_and_formatting_answers() {
        for v in [
            "2026-02-01T08:00:00Z",
            " 2026-02-01T08:00:00Z ",
            "2024-02-29T23:59:59Z",
            "2026-02-29T08:00:00Z",
            "2026-13-01T08:00:00Z",
            "2026-02-01T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-02-01t08:00:00z",
            "2026-02-01 08:00:00Z",
            "2026-02-01T08:00:00.123Z",
            "2026-02-01T08:00:00+02:00",
            "2026-02-01T08:00:00",
            "+026-02-01T08:00:00Z",
            "2026-0a-01T08:00:00Z",
            "",
        ] {
            assert_eq!(utc(v), parsed(v), "{v:?}");
        }
        assert_eq!(
            utc("2026-02-01T08:00:00Z").as_deref(),
            Some("2026-02-01T08:00:00Z")
        );
        assert_eq!(utc("2026-02-29T08:00:00Z"), None);
    }

    #[test]
    fn utc_owned_answers_what_utc_answers() {
        for v in [
            "2026-02-01T08:00:00Z",
            " 2026-02-01T08:00:00Z ",
            "2026-02-29T08:00:00Z",
            "2026-02-01T08:00:00.123Z",
            "2026-02-01T08:00:00+02:00",
            "2026-02-01T08:00:00",
            "",
        ] {
            assert_eq!(
                super::utc_owned(v.to_owned()),
                utc(v).ok_or_else(|| v.to_owned()),
                "{v:?}"
            );
        }
    }
}
