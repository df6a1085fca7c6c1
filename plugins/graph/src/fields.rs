//! Directory properties read on request (`field-selection`): the `users` scope
//! with extra fields is written `users?select=companyName,extensionAttribute1`.
//!
//! Readable are the `user` properties Graph returns in list and delta queries
//! whose values are text, numbers, booleans, dates or lists of text, and the
//! fifteen `onPremisesExtensionAttributes` (named `extensionAttribute1`..`15`).
//! Properties Graph returns only for a single user (`aboutMe`, `skills`, ...)
//! and complex ones (`passwordProfile`, ...) cannot be read in a delta pass.
//! Each extra field arrives as an item attribute named as Graph spells it;
//! a list gives one attribute per entry, an empty or null value none.

use crate::USER_SELECT;
use serde_json::Value;
use syncbridge_sdk::prelude::*;

/// `user` properties readable as attributes (Graph's spelling), beyond the
/// canonical ones in [`USER_SELECT`].
const READABLE: &[&str] = &[
    "ageGroup",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeType",
    "externalUserState",
    "faxNumber",
    "imAddresses",
    "legalAgeGroupClassification",
    "mailNickname",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "postalCode",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "showInAddressList",
    "state",
    "streetAddress",
    "usageLocation",
    "userType",
];

/// The complex property holding `extensionAttribute1`..`15`.
const EXTENSION_ATTRIBUTES: &str = "onPremisesExtensionAttributes";

/// The canonical user fields are read anyway; a filter naming one needs nothing extra.
fn is_canonical(name: &str) -> bool {
    USER_SELECT.split(',').any(|p| p.eq_ignore_ascii_case(name))
}

fn extension_number(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    let n: u8 = lower.strip_prefix("extensionattribute")?.parse().ok()?;
    (1..=15).contains(&n).then_some(n)
}

/// One extra field, in Graph's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Extra {
    Property(&'static str),
    Extension(u8),
}

impl Extra {
    fn parse(name: &str) -> Option<Self> {
        if let Some(n) = extension_number(name.trim()) {
            return Some(Extra::Extension(n));
        }
        READABLE
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name.trim()))
            .map(|p| Extra::Property(p))
    }

    fn name(&self) -> String {
        match self {
            Extra::Property(p) => (*p).to_owned(),
            Extra::Extension(n) => format!("extensionAttribute{n}"),
        }
    }

    fn select(&self) -> &'static str {
        match self {
            Extra::Property(p) => p,
            Extra::Extension(_) => EXTENSION_ATTRIBUTES,
        }
    }
}

/// The `users` scope and the extra fields it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFields {
    extras: Vec<Extra>,
}

fn unreadable(field: &str) -> PluginError {
    PluginError::invalid_field(
        field,
        format!(
            "Microsoft Graph cannot read user property {field:?} in a delta query; readable are {}, {} and extensionAttribute1..extensionAttribute15",
            USER_SELECT.replace(',', ", "),
            READABLE.join(", ")
        ),
    )
}

impl UserFields {
    /// The fields of a `users` scope: `users` or `users?select=a,b`; `None`
    /// for another scope.
    pub fn of_scope(scope: &str) -> Option<Result<Self, PluginError>> {
        let rest = scope.strip_prefix("users")?;
        if rest.is_empty() {
            return Some(Ok(Self::default()));
        }
        let list = rest.strip_prefix("?select=")?;
        Some(Self::parse(
            list.split(',').filter(|f| !f.trim().is_empty()),
        ))
    }

    /// The extra fields among `names`, refusing any Graph cannot read.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, PluginError> {
        let mut extras: Vec<Extra> = Vec::new();
        for name in names {
            if is_canonical(name.trim()) {
                continue;
            }
            let extra = Extra::parse(name).ok_or_else(|| unreadable(name.trim()))?;
            if !extras.contains(&extra) {
                extras.push(extra);
            }
        }
        extras.sort_by_key(Extra::name);
        Ok(Self { extras })
    }

    /// These fields and `more`, refusing any Graph cannot read.
    pub fn with(&self, more: &[String]) -> Result<Self, PluginError> {
        let names: Vec<String> = self.extras.iter().map(Extra::name).collect();
        Self::parse(names.iter().chain(more).map(String::as_str))
    }

    /// The scope string that reads these fields.
    pub fn scope(&self) -> String {
        if self.extras.is_empty() {
            return "users".into();
        }
        let names: Vec<String> = self.extras.iter().map(Extra::name).collect();
        format!("users?select={}", names.join(","))
    }

    /// The `$select` of a user read: the canonical properties and the extras.
    pub fn select(&self) -> String {
        let mut select = USER_SELECT.to_owned();
        let mut added: Vec<&str> = Vec::new();
        for extra in &self.extras {
            let p = extra.select();
            if !added.contains(&p) {
                added.push(p);
                select.push(',');
                select.push_str(p);
            }
        }
        select
    }

    /// The extra fields of one user as attributes.
    pub fn attributes(&self, user: &Value) -> Vec<Attribute> {
        let mut out = Vec::new();
        for extra in &self.extras {
            let value = match extra {
                Extra::Property(p) => &user[*p],
                Extra::Extension(n) => {
                    &user[EXTENSION_ATTRIBUTES][format!("extensionAttribute{n}")]
                }
            };
            let values: Vec<String> = match value {
                Value::Array(list) => list.iter().filter_map(text).collect(),
                other => text(other).into_iter().collect(),
            };
            out.extend(values.into_iter().map(|value| Attribute {
                name: extra.name(),
                value,
            }));
        }
        out
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
