//! The Graph v1.0 types the simulator serves, from Microsoft's published metadata
//! (`schema.json`: the integration subset of `../shared/oracles/graph`, reduced to kinds,
//! base types, property types, navigation names and enum members). Used to refuse what Graph
//! refuses: unknown properties in `$select`, `$filter` and request bodies, read-only
//! properties in updates and values of the wrong type.

use std::sync::OnceLock;

use serde_json::{Map, Value};

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(include_str!("schema.json")).unwrap_or_default())
}

fn ty(name: &str) -> Option<&'static Value> {
    let name = name.strip_prefix("microsoft.graph.").unwrap_or(name);
    schema().get(name)
}

/// The declared type of property `name` (case-insensitive) of structured type `t` or one
/// of its bases, with the property's own spelling.
pub fn property(t: &str, name: &str) -> Option<(&'static str, &'static str)> {
    let mut cur = ty(t);
    while let Some(v) = cur {
        if let Some(p) = v.get("properties").and_then(|p| p.as_object()) {
            if let Some((k, t)) = p.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                return Some((k.as_str(), t.as_str().unwrap_or("")));
            }
        }
        cur = v.get("base").and_then(|b| b.as_str()).and_then(ty);
    }
    None
}

/// Whether `name` is a navigation property of entity type `t` (or a base).
pub fn navigation(t: &str, name: &str) -> bool {
    let mut cur = ty(t);
    while let Some(v) = cur {
        if v.get("navigation")
            .and_then(|n| n.as_array())
            .is_some_and(|n| {
                n.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(name)))
            })
        {
            return true;
        }
        cur = v.get("base").and_then(|b| b.as_str()).and_then(ty);
    }
    false
}

/// Whether `t` is known to the schema.
pub fn known(t: &str) -> bool {
    ty(t).is_some()
}

/// The first name of a `$select` list that is neither a property nor a navigation property
/// of `t`.
pub fn unknown_in_select<'a>(t: &str, select: &'a [String]) -> Option<&'a str> {
    if !known(t) {
        return None;
    }
    select
        .iter()
        .map(|s| s.as_str())
        .find(|s| !s.is_empty() && property(t, s).is_none() && !navigation(t, s))
}

/// Why a request body was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// A property the type does not declare.
    Unknown(String),
    /// A property the client cannot set.
    ReadOnly(String),
    /// A value that is not of the property's type: (property, value as sent, expected type).
    Type(String, String, String),
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks `v` against type `t`; answers the value as stored (primitive literals sent as
/// strings converted the way the OData reader converts them, enum members in their declared
/// spelling) or the path of the offending value and the expected type.
pub fn conform(t: &str, v: &Value) -> Result<Value, (String, String)> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if let Some(inner) = t
        .strip_prefix("Collection(")
        .and_then(|x| x.strip_suffix(')'))
    {
        let Some(a) = v.as_array() else {
            return Err((String::new(), t.to_string()));
        };
        return a
            .iter()
            .map(|x| conform(inner, x))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    let bad = || Err((String::new(), t.to_string()));
    match t {
        "Edm.String" => match v {
            Value::String(_) => Ok(v.clone()),
            _ => bad(),
        },
        "Edm.Boolean" => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => bad(),
        },
        "Edm.Int16" | "Edm.Int32" | "Edm.Int64" | "Edm.Byte" => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            Value::String(s) => s.trim().parse::<i64>().map(Value::from).or_else(|_| bad()),
            _ => bad(),
        },
        "Edm.Double" | "Edm.Single" | "Edm.Decimal" => match v {
            Value::Number(_) => Ok(v.clone()),
            _ => bad(),
        },
        "Edm.DateTimeOffset" => match v {
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(v.clone()),
            _ => bad(),
        },
        "Edm.Date" => match v {
            Value::String(s) if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
                Ok(v.clone())
            }
            _ => bad(),
        },
        "Edm.TimeOfDay" | "Edm.Guid" | "Edm.Binary" | "Edm.Duration" => match v {
            Value::String(_) => Ok(v.clone()),
            _ => bad(),
        },
        _ => {
            let Some(def) = ty(t) else {
                return Ok(v.clone()); // a type outside the subset: not checked
            };
            match def.get("kind").and_then(|k| k.as_str()) {
                Some("EnumType") => {
                    let members: Vec<&str> = def["members"]
                        .as_array()
                        .map(|m| m.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    let Some(s) = v.as_str() else { return bad() };
                    let mut out = Vec::new();
                    for part in s.split(',').map(str::trim) {
                        match members.iter().find(|m| m.eq_ignore_ascii_case(part)) {
                            Some(m) => out.push(*m),
                            None => return bad(),
                        }
                    }
                    Ok(Value::String(out.join(",")))
                }
                _ => {
                    let Some(o) = v.as_object() else { return bad() };
                    let open = def.get("open").and_then(|x| x.as_bool()) == Some(true);
                    let mut out = Map::new();
                    for (k, x) in o {
                        if k.starts_with('@') || k.contains('@') {
                            out.insert(k.clone(), x.clone());
                            continue;
                        }
                        match property(t, k) {
                            Some((name, pt)) => {
                                let c = conform(pt, x).map_err(|(p, et)| (join(k, &p), et))?;
                                out.insert(name.to_string(), c);
                            }
                            None if open => {
                                out.insert(k.clone(), x.clone());
                            }
                            None => return Err((k.clone(), String::new())),
                        }
                    }
                    Ok(Value::Object(out))
                }
            }
        }
    }
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// Checks a create/update body for entity type `t`: every property declared (directory
/// extension properties `extension_…` allowed on open directory types; navigation properties
/// of mailbox items accepted and dropped), none in
/// `read_only`, every value of its type. Instance annotations and `…@odata.bind` are kept as
/// they are. Answers the body as stored.
pub fn check_body(
    t: &str,
    body: &Map<String, Value>,
    read_only: &[&str],
) -> Result<Map<String, Value>, Refusal> {
    let directory = matches!(t, "user" | "group");
    let mut out = Map::new();
    for (k, v) in body {
        if k.starts_with('@') || k.contains('@') {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let Some((name, pt)) = property(t, k) else {
            // A mailbox item's contained navigation properties may be created with the item
            // (deep insert); extended properties and linked resources are kept (read back
            // with `$expand`), the others (attachments…) are not.
            if !directory && navigation(t, k) {
                if matches!(
                    k.as_str(),
                    "singleValueExtendedProperties" | "linkedResources"
                ) {
                    out.insert(k.clone(), v.clone());
                }
                continue;
            }
            if k.starts_with("extension_") {
                out.insert(k.clone(), v.clone());
                continue;
            }
            return Err(Refusal::Unknown(k.clone()));
        };
        if read_only.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(Refusal::ReadOnly(name.to_string()));
        }
        match conform(pt, v) {
            Ok(c) => {
                out.insert(name.to_string(), c);
            }
            Err((path, expected)) if expected.is_empty() => {
                return Err(Refusal::Unknown(join(name, &path)))
            }
            Err((path, expected)) => {
                return Err(Refusal::Type(join(name, &path), literal(v), expected))
            }
        }
    }
    Ok(out)
}

/// Properties a new user must have, in the order Graph reports them missing.
pub const USER_REQUIRED: &[&str] = &[
    "accountEnabled",
    "displayName",
    "mailNickname",
    "passwordProfile",
    "userPrincipalName",
];

/// Properties a new group must have, in the order Graph reports them missing.
pub const GROUP_REQUIRED: &[&str] = &[
    "displayName",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
];

/// Properties of a user that an update cannot set (the user resource's read-only ones).
pub const USER_READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "deletedDateTime",
    "assignedPlans",
    "provisionedPlans",
    "proxyAddresses",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "onPremisesSecurityIdentifier",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesUserPrincipalName",
    "onPremisesProvisioningErrors",
    "securityIdentifier",
    "signInActivity",
    "licenseAssignmentStates",
];

/// Properties of a group that a create or update cannot set.
pub const GROUP_READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "deletedDateTime",
    "mail",
    "proxyAddresses",
    "renewedDateTime",
    "expirationDateTime",
    "securityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesLastSyncDateTime",
    "onPremisesSecurityIdentifier",
    "onPremisesDomainName",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesProvisioningErrors",
    "hasMembersWithLicenseErrors",
    "licenseProcessingState",
    "assignedLicenses",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_come_from_the_type_and_its_bases() {
        assert_eq!(
            property("user", "DISPLAYNAME"),
            Some(("displayName", "Edm.String"))
        );
        assert_eq!(property("user", "id"), Some(("id", "Edm.String")));
        assert_eq!(property("user", "nope"), None);
        assert!(navigation("group", "members"));
        assert!(!navigation("group", "nope"));
    }

    #[test]
    fn values_are_checked_against_their_types() {
        assert_eq!(conform("Edm.Boolean", &json!("true")), Ok(json!(true)));
        assert!(conform("Edm.Boolean", &json!("yes")).is_err());
        assert!(conform("Collection(Edm.String)", &json!("x")).is_err());
        assert_eq!(
            conform("attendeeType", &json!("Required")),
            Ok(json!("required"))
        );
        assert!(conform("attendeeType", &json!("vip")).is_err());
        assert_eq!(
            conform("emailAddress", &json!({"address": 3})),
            Err(("address".to_string(), "Edm.String".to_string()))
        );
        let r = check_body(
            "user",
            json!({"createdDateTime": "2020-01-01T00:00:00Z"})
                .as_object()
                .unwrap(),
            USER_READ_ONLY,
        );
        assert_eq!(r, Err(Refusal::ReadOnly("createdDateTime".into())));
        let r = check_body(
            "user",
            json!({"accountEnabled": 1}).as_object().unwrap(),
            USER_READ_ONLY,
        );
        assert!(matches!(r, Err(Refusal::Type(p, _, _)) if p == "accountEnabled"));
        let r = check_body(
            "event",
            json!({"isOnlineMeeting": "true", "foo": 1})
                .as_object()
                .unwrap(),
            &[],
        );
        assert_eq!(r, Err(Refusal::Unknown("foo".into())));
    }
}
