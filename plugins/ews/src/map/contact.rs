//! `t:Contact` ↔ [`MailboxContact`].

use super::*;
use syncbridge_sdk::types::mailbox::{
    AddressKind, MailboxContact, Phone, PhoneKind, PostalAddress,
};
use syncbridge_sdk::types::EmailAddress;

/// Canonical contact fields an update may name.
pub const FIELDS: &[&str] = &[
    "given_name",
    "middle_name",
    "surname",
    "display_name",
    "company_name",
    "job_title",
    "department",
    "emails",
    "phones",
    "addresses",
    "business_home_page",
    "birthday",
    "notes",
    "categories",
    "anchor",
];

/// `t:ContactItemType` children this connector writes, in schema order.
const ORDER: &[&str] = &[
    "DisplayName",
    "GivenName",
    "MiddleName",
    "CompanyName",
    "EmailAddresses",
    "PhysicalAddresses",
    "PhoneNumbers",
    "Birthday",
    "BusinessHomePage",
    "Department",
    "JobTitle",
    "Surname",
];

const EMAIL_KEYS: [&str; 3] = ["EmailAddress1", "EmailAddress2", "EmailAddress3"];

/// Phone keys per kind, in the order entries of that kind fill them.
const PHONE_KEYS: [(PhoneKind, &[&str]); 5] = [
    (PhoneKind::Business, &["BusinessPhone", "BusinessPhone2"]),
    (PhoneKind::Home, &["HomePhone", "HomePhone2"]),
    (PhoneKind::Mobile, &["MobilePhone"]),
    (PhoneKind::BusinessFax, &["BusinessFax"]),
    (PhoneKind::Other, &["OtherTelephone"]),
];

const ADDRESS_KEYS: [(AddressKind, &str); 3] = [
    (AddressKind::Business, "Business"),
    (AddressKind::Home, "Home"),
    (AddressKind::Other, "Other"),
];

/// Address parts: schema element and field-URI part.
const PARTS: [&str; 5] = ["Street", "City", "State", "CountryOrRegion", "PostalCode"];

fn entries<'a>(item: &'a mut Elem, dict: &str) -> impl Iterator<Item = &'a mut Elem> + 'a {
    item.child_mut(dict)
        .into_iter()
        .flat_map(|d| d.all_mut("Entry"))
}

fn phone_kind(key: &str) -> PhoneKind {
    PHONE_KEYS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(k, _)| *k)
        .unwrap_or(PhoneKind::Other)
}

/// Reads a contact (of a copy: see [`take`]).
pub fn read(item: &Elem) -> MailboxContact {
    take(&mut item.clone())
}

/// Reads a contact, moving the texts it keeps out of the element.
pub fn take(item: &mut Elem) -> MailboxContact {
    let mut emails: Vec<(usize, EmailAddress)> = entries(item, "EmailAddresses")
        .filter(|e| !e.text.is_empty())
        .filter_map(|e| {
            let pos = EMAIL_KEYS.iter().position(|k| Some(*k) == e.attr("Key"))?;
            Some((
                pos,
                EmailAddress {
                    name: e.attr("Name").map(str::to_owned),
                    address: std::mem::take(&mut e.text),
                },
            ))
        })
        .collect();
    emails.sort_by_key(|(p, _)| *p);
    let phones = entries(item, "PhoneNumbers")
        .filter(|e| !e.text.is_empty())
        .map(|e| Phone {
            kind: phone_kind(e.attr("Key").unwrap_or_default()),
            number: std::mem::take(&mut e.text),
        })
        .collect();
    let addresses = entries(item, "PhysicalAddresses")
        .filter_map(|e| {
            let kind = ADDRESS_KEYS
                .iter()
                .find(|(_, k)| Some(*k) == e.attr("Key"))?
                .0;
            Some(PostalAddress {
                kind,
                street: e.take_text_of("Street"),
                city: e.take_text_of("City"),
                state: e.take_text_of("State"),
                postal_code: e.take_text_of("PostalCode"),
                country: e.take_text_of("CountryOrRegion"),
            })
        })
        .collect();
    MailboxContact {
        given_name: item.take_text_of("GivenName"),
        middle_name: item.take_text_of("MiddleName"),
        surname: item.take_text_of("Surname"),
        display_name: item.take_text_of("DisplayName"),
        company_name: item.take_text_of("CompanyName"),
        job_title: item.take_text_of("JobTitle"),
        department: item.take_text_of("Department"),
        emails: emails.into_iter().map(|(_, e)| e).collect(),
        phones,
        addresses,
        business_home_page: item.take_text_of("BusinessHomePage"),
        birthday: item
            .text_of("Birthday")
            .and_then(|b| b.get(..10))
            .map(str::to_owned),
        notes: take_body(item).map(|b| b.content),
        categories: take_categories(item),
        anchor: take_anchor(item),
    }
}

fn indexed(uri: &str, index: &str) -> String {
    format!(r#"<t:IndexedFieldURI FieldURI="{uri}" FieldIndex="{index}"/>"#)
}

/// The phone entries by key: entries of a kind fill its keys in order; extra ones are dropped.
fn phone_slots(c: &MailboxContact) -> Vec<(&'static str, Option<&str>)> {
    let mut out = Vec::new();
    for (kind, keys) in PHONE_KEYS {
        let mut numbers = c
            .phones
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.number.as_str());
        for key in keys {
            out.push((*key, numbers.next()));
        }
    }
    out
}

fn address_part<'a>(a: &'a PostalAddress, part: &str) -> Option<&'a str> {
    match part {
        "Street" => a.street.as_deref(),
        "City" => a.city.as_deref(),
        "State" => a.state.as_deref(),
        "CountryOrRegion" => a.country.as_deref(),
        _ => a.postal_code.as_deref(),
    }
    .filter(|v| !v.is_empty())
}

/// The `UpdateItem` properties of one canonical field (indexed fields: one per entry or part).
pub fn props(c: &MailboxContact, field: &str) -> Result<Vec<Prop>, PluginError> {
    let wrap =
        |dict: &str, entry: String| format!("<t:Contact><t:{dict}>{entry}</t:{dict}></t:Contact>");
    Ok(match field {
        "given_name" => vec![Prop::text(
            "contacts:GivenName",
            "GivenName",
            c.given_name.as_deref(),
        )],
        "middle_name" => vec![Prop::text(
            "contacts:MiddleName",
            "MiddleName",
            c.middle_name.as_deref(),
        )],
        "surname" => vec![Prop::text(
            "contacts:Surname",
            "Surname",
            c.surname.as_deref(),
        )],
        "display_name" => vec![Prop::text(
            "contacts:DisplayName",
            "DisplayName",
            c.display_name.as_deref(),
        )],
        "company_name" => vec![Prop::text(
            "contacts:CompanyName",
            "CompanyName",
            c.company_name.as_deref(),
        )],
        "job_title" => vec![Prop::text(
            "contacts:JobTitle",
            "JobTitle",
            c.job_title.as_deref(),
        )],
        "department" => vec![Prop::text(
            "contacts:Department",
            "Department",
            c.department.as_deref(),
        )],
        "business_home_page" => vec![Prop::text(
            "contacts:BusinessHomePage",
            "BusinessHomePage",
            c.business_home_page.as_deref(),
        )],
        "birthday" => vec![Prop::text(
            "contacts:Birthday",
            "Birthday",
            c.birthday
                .as_deref()
                .map(|b| format!("{b}T00:00:00Z"))
                .as_deref(),
        )],
        "notes" => vec![Prop::field(
            "item:Body",
            "Body",
            c.notes
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(|n| format!(r#"<t:Body BodyType="Text">{}</t:Body>"#, escape(n))),
        )],
        "categories" => vec![categories_prop(&c.categories)],
        "anchor" => vec![anchor_prop(c.anchor.as_deref())],
        "emails" => EMAIL_KEYS
            .iter()
            .enumerate()
            .map(|(i, key)| Prop {
                uri: indexed("contacts:EmailAddress", key),
                element: "EmailAddresses",
                xml: c.emails.get(i).filter(|e| !e.address.is_empty()).map(|e| {
                    wrap(
                        "EmailAddresses",
                        format!(r#"<t:Entry Key="{key}">{}</t:Entry>"#, escape(&e.address)),
                    )
                }),
            })
            .collect(),
        "phones" => phone_slots(c)
            .into_iter()
            .map(|(key, number)| Prop {
                uri: indexed("contacts:PhoneNumber", key),
                element: "PhoneNumbers",
                xml: number.map(|n| {
                    wrap(
                        "PhoneNumbers",
                        format!(r#"<t:Entry Key="{key}">{}</t:Entry>"#, escape(n)),
                    )
                }),
            })
            .collect(),
        "addresses" => {
            let mut out = Vec::new();
            for (kind, key) in ADDRESS_KEYS {
                let a = c.addresses.iter().find(|a| a.kind == kind);
                for part in PARTS {
                    out.push(Prop {
                        uri: indexed(&format!("contacts:PhysicalAddress:{part}"), key),
                        element: "PhysicalAddresses",
                        xml: a.and_then(|a| address_part(a, part)).map(|v| {
                            wrap(
                                "PhysicalAddresses",
                                format!(r#"<t:Entry Key="{key}">{}</t:Entry>"#, t(part, v)),
                            )
                        }),
                    });
                }
            }
            out
        }
        other => return Err(unknown_field(other, FIELDS)),
    })
}

/// The `t:Contact` of a CreateItem.
pub fn create_xml(c: &MailboxContact) -> Result<String, PluginError> {
    let mut simple = Vec::new();
    for f in FIELDS
        .iter()
        .filter(|f| !matches!(**f, "emails" | "phones" | "addresses"))
    {
        simple.extend(props(c, f)?);
    }
    let dict = |name: &'static str, entries: String| {
        Prop::field(
            "",
            name,
            (!entries.is_empty()).then(|| format!("<t:{name}>{entries}</t:{name}>")),
        )
    };
    let emails: String = c
        .emails
        .iter()
        .zip(EMAIL_KEYS)
        .filter(|(e, _)| !e.address.is_empty())
        .map(|(e, key)| format!(r#"<t:Entry Key="{key}">{}</t:Entry>"#, escape(&e.address)))
        .collect();
    let phones: String = phone_slots(c)
        .into_iter()
        .filter_map(|(key, n)| {
            n.map(|n| format!(r#"<t:Entry Key="{key}">{}</t:Entry>"#, escape(n)))
        })
        .collect();
    let addresses: String = ADDRESS_KEYS
        .iter()
        .filter_map(|(kind, key)| {
            let a = c.addresses.iter().find(|a| a.kind == *kind)?;
            let parts: String = PARTS
                .iter()
                .filter_map(|p| address_part(a, p).map(|v| t(p, v)))
                .collect();
            (!parts.is_empty()).then(|| format!(r#"<t:Entry Key="{key}">{parts}</t:Entry>"#))
        })
        .collect();
    simple.push(dict("EmailAddresses", emails));
    simple.push(dict("PhoneNumbers", phones));
    simple.push(dict("PhysicalAddresses", addresses));
    let order: Vec<&str> = ITEM_ORDER.iter().chain(ORDER).copied().collect();
    Ok(format!(
        "<t:Contact>{}</t:Contact>",
        in_schema_order(simple, &order)
    ))
}

/// The `UpdateItem` changes of the named fields.
pub fn update_xml(c: &MailboxContact, fields: &[String]) -> Result<String, PluginError> {
    let mut all = Vec::new();
    for f in fields {
        all.extend(props(c, f)?);
    }
    Ok(all
        .iter()
        .map(|p| match &p.xml {
            // Indexed entries carry their own `t:Contact` wrapper.
            Some(x) if x.starts_with("<t:Contact>") => {
                format!("<t:SetItemField>{}{x}</t:SetItemField>", p.uri)
            }
            Some(x) => format!(
                "<t:SetItemField>{}<t:Contact>{x}</t:Contact></t:SetItemField>",
                p.uri
            ),
            None => format!("<t:DeleteItemField>{}</t:DeleteItemField>", p.uri),
        })
        .collect())
}
