//! Canonical item bodies as flat field maps, for diffs, provenance and hashes.

use std::collections::BTreeMap;
use syncbridge_model::ItemBody;

/// Field name → value; a missing or empty value is "blank".
pub type FieldMap = BTreeMap<String, String>;

fn put(map: &mut FieldMap, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(name.to_owned(), v.clone());
    }
}

/// Flattens a body into named fields. Kinds without a mapping here yield a
/// single `body` field holding their debug form, so they still diff correctly.
pub fn flatten(body: &ItemBody) -> FieldMap {
    let mut m = FieldMap::new();
    match body {
        ItemBody::Contact(c) => {
            put(&mut m, "first_name", &c.first_name);
            put(&mut m, "last_name", &c.last_name);
            put(&mut m, "display_name", &c.display_name);
            put(&mut m, "title", &c.title);
            put(&mut m, "email", &c.email);
            put(&mut m, "phone", &c.phone);
            put(&mut m, "mobile", &c.mobile);
            put(&mut m, "company", &c.company.as_ref().map(|r| r.id.clone()));
            put(&mut m, "site", &c.site.as_ref().map(|r| r.id.clone()));
            if !c.contact_types.is_empty() {
                let ids: Vec<&str> = c.contact_types.iter().map(|t| t.id.as_str()).collect();
                m.insert("contact_types".into(), ids.join(","));
            }
            for a in &c.extra {
                m.insert(format!("extra.{}", a.name), a.value.clone());
            }
        }
        other => {
            m.insert("body".into(), format!("{other:?}"));
        }
    }
    m
}

/// Whether a value counts as blank (absent or only whitespace).
pub fn is_blank(value: Option<&String>) -> bool {
    value.is_none_or(|v| v.trim().is_empty())
}
