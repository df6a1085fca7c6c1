//! Names of companies, connections and profiles, and the company namespaces.
//!
//! Object ids are global, so an id taken by another company's object would
//! tell a company-scoped caller that the object exists. Each company
//! therefore has its own namespace, `<company>.<name>`: an id with a dot
//! belongs to the company before the dot and to no other, and a
//! company-scoped caller creates ids only in its own namespace. Every id it
//! can collide with is then one of its own company's objects.

/// Longest id of any kind.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused; the message says what to use instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} id {id:?} is not valid: use 1 to {MAX_ID_LEN} letters, digits, '-' and '_'")]
    Company { kind: &'static str, id: String },
    #[error("{kind} id {id:?} is not valid: use 1 to {MAX_ID_LEN} letters, digits, '-' and '_', optionally after a company namespace (`<company>.<name>`)")]
    Object { kind: &'static str, id: String },
    #[error("{kind} id {id:?} is in the namespace of company {namespace:?}, but the {kind} belongs to {}; ids `<company>.<name>` belong to that company only", owner.as_deref().map(|o| format!("company {o:?}")).unwrap_or_else(|| "no company".into()))]
    ForeignNamespace {
        kind: &'static str,
        id: String,
        namespace: String,
        owner: Option<String>,
    },
    #[error("this token is scoped to company {company:?}: name new {kind}s in its namespace, `{company}.<name>` (e.g. `{company}.{id}`)")]
    OutsideNamespace {
        kind: &'static str,
        id: String,
        company: String,
    },
}

fn plain_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks a company id: letters, digits, '-' and '_' (no dot: dots separate namespaces).
pub fn check_company_id(id: &str) -> Result<(), IdError> {
    if id.len() <= MAX_ID_LEN && plain_name(id) {
        Ok(())
    } else {
        Err(IdError::Company {
            kind: "company",
            id: id.to_owned(),
        })
    }
}

/// The company namespace of an object id, if it has one.
pub fn namespace(id: &str) -> Option<&str> {
    id.split_once('.').map(|(ns, _)| ns)
}

/// Checks the id of a `kind` object (connection, profile) owned by `owner`:
/// its form, and that a namespaced id names its owner.
pub fn check_object_id(kind: &'static str, id: &str, owner: Option<&str>) -> Result<(), IdError> {
    let well_formed = id.len() <= MAX_ID_LEN
        && match id.split_once('.') {
            Some((ns, name)) => plain_name(ns) && plain_name(name),
            None => plain_name(id),
        };
    if !well_formed {
        return Err(IdError::Object {
            kind,
            id: id.to_owned(),
        });
    }
    match namespace(id) {
        Some(ns) if Some(ns) != owner => Err(IdError::ForeignNamespace {
            kind,
            id: id.to_owned(),
            namespace: ns.to_owned(),
            owner: owner.map(str::to_owned),
        }),
        _ => Ok(()),
    }
}

/// Checks the id of a new `kind` object created by a caller scoped to
/// `scope` (`None`: every company): scoped callers create only in their namespace.
pub fn check_new_object_id(
    kind: &'static str,
    id: &str,
    owner: Option<&str>,
    scope: Option<&str>,
) -> Result<(), IdError> {
    check_object_id(kind, id, owner)?;
    match scope {
        Some(company) if namespace(id) != Some(company) => Err(IdError::OutsideNamespace {
            kind,
            id: id.to_owned(),
            company: company.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_ids_have_no_dots() {
        assert!(check_company_id("acme-eu_2").is_ok());
        assert!(check_company_id("acme.eu").is_err());
        assert!(check_company_id("").is_err());
        assert!(check_company_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn namespaced_ids_belong_to_their_company_only() {
        assert!(check_object_id("connection", "m365", None).is_ok());
        assert!(check_object_id("connection", "m365", Some("acme")).is_ok());
        assert!(check_object_id("connection", "acme.m365", Some("acme")).is_ok());
        assert!(matches!(
            check_object_id("connection", "acme.m365", Some("globex")),
            Err(IdError::ForeignNamespace { .. })
        ));
        assert!(matches!(
            check_object_id("connection", "acme.m365", None),
            Err(IdError::ForeignNamespace { .. })
        ));
        for bad in ["acme.", ".m365", "a.b.c", "a b", "a/b", ""] {
            assert!(
                matches!(
                    check_object_id("profile", bad, Some("a")),
                    Err(IdError::Object { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn scoped_callers_create_only_in_their_namespace() {
        assert!(check_new_object_id("profile", "acme.p", Some("acme"), Some("acme")).is_ok());
        let err = check_new_object_id("profile", "p", Some("acme"), Some("acme")).unwrap_err();
        assert!(err.to_string().contains("`acme.p`"), "{err}");
        assert!(check_new_object_id("profile", "p", Some("acme"), None).is_ok());
    }
}
