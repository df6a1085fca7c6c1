//! The profile's options: what the operator sets in "Contact Sync" of one company.
//!
//! Parsing is strict (`deny_unknown_fields`); every error is a
//! [`PluginError::Invalid`] naming the offending field, e.g. `filters[1].group_id`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use syncbridge_sdk::types::PluginError;

/// The PSA the contacts go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Autotask,
    Connectwise,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Autotask => "autotask",
            Target::Connectwise => "connectwise",
        }
    }
}

/// An id, written as a string or a number (ConnectWise ids are integers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Number(u64),
}

/// A reference to a PSA site/location or contact type: `{"id": "..", "name": ".."}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ref {
    /// The PSA's id, a string or a number.
    #[serde(deserialize_with = "id_string")]
    #[schemars(with = "IdValue")]
    pub id: String,
    /// Its name, for explanations only.
    #[serde(default)]
    pub name: Option<String>,
}

fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match IdValue::deserialize(d)? {
        IdValue::Text(s) => s.trim().to_owned(),
        IdValue::Number(n) => n.to_string(),
    })
}

impl Ref {
    /// `12 (New Site)` or `12`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) if !n.trim().is_empty() => format!("{} ({})", self.id, n.trim()),
            _ => self.id.clone(),
        }
    }
}

/// How a filter selects users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FilterKind {
    /// Every enabled, licensed user (the catch-all, usually last).
    AllLicensed,
    /// Members (direct or transitive) of an Entra ID group, by group id.
    Group,
    /// A directory field equal to a value, e.g. `department` = `IT`.
    Field,
    /// The domain of the user principal name.
    UpnDomain,
    /// A licence assigned to the user, by SKU part number (e.g. `SPB`) or SKU id.
    License,
}

impl FilterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKind::AllLicensed => "all-licensed",
            FilterKind::Group => "group",
            FilterKind::Field => "field",
            FilterKind::UpnDomain => "upn-domain",
            FilterKind::License => "license",
        }
    }
}

/// One "contact mapping filter".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// 1 is the highest priority; the first matching filter wins.
    pub priority: u32,
    pub kind: FilterKind,
    /// `group`: the Entra ID group's object id.
    #[serde(default)]
    pub group_id: Option<String>,
    /// `group`: the group's name, for explanations only.
    #[serde(default)]
    pub group_name: Option<String>,
    /// `field`: the directory field (`department`, `jobTitle`, `companyName`, ...).
    #[serde(default)]
    pub field: Option<String>,
    /// `field`: the value it must equal (case-insensitive, trimmed).
    #[serde(default)]
    pub value: Option<String>,
    /// `upn-domain`: the domain after `@` in the UPN.
    #[serde(default)]
    pub domain: Option<String>,
    /// `license`: SKU part number (e.g. `EXCHANGESTANDARD`, `SPB`) or SKU id.
    #[serde(default)]
    pub sku: Option<String>,
    /// The PSA site/location the users of this filter go to.
    #[serde(default)]
    pub site: Option<Ref>,
    /// ConnectWise: the contact type of this filter, overriding the default.
    #[serde(default)]
    pub contact_type: Option<Ref>,
}

impl Filter {
    /// What the filter selects, e.g. `group=Management`, `department=IT`.
    pub fn describe(&self) -> String {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        match self.kind {
            FilterKind::AllLicensed => "all-licensed".into(),
            FilterKind::Group => match &self.group_name {
                Some(n) if !n.trim().is_empty() => format!("group={}", n.trim()),
                _ => format!("group={}", s(&self.group_id)),
            },
            FilterKind::Field => format!("{}={}", s(&self.field), s(&self.value)),
            FilterKind::UpnDomain => format!("upn-domain={}", s(&self.domain)),
            FilterKind::License => format!("license={}", s(&self.sku)),
        }
    }

    /// The rule name carried by intents: `filter#2 department=IT`.
    pub fn rule(&self) -> String {
        format!("filter#{} {}", self.priority, self.describe())
    }
}

/// The options of a profile of this mapper.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `autotask` or `connectwise`.
    pub target: Target,
    /// Match and write the assigned e-mail (`mail`) instead of the UPN.
    #[serde(default)]
    pub use_email: bool,
    /// "Update existing contacts". Off: existing contacts are matched but never updated,
    /// reactivated or deactivated; only new contacts are created.
    #[serde(default = "yes")]
    pub update_existing: bool,
    /// ConnectWise: the integration-level default contact type.
    #[serde(default)]
    pub default_contact_type: Option<Ref>,
    /// The default site/location: used when there are no filters (every enabled, licensed
    /// user is synced there) and by filters without a `site`. Absent: the target's default.
    #[serde(default)]
    pub default_site: Option<Ref>,
    /// Contact mapping filters; evaluated by ascending `priority`.
    #[serde(default)]
    pub filters: Vec<Filter>,
}

fn yes() -> bool {
    true
}

const OPTION_FIELDS: &[&str] = &[
    "target",
    "use_email",
    "update_existing",
    "default_contact_type",
    "default_site",
    "filters",
];
const FILTER_FIELDS: &[&str] = &[
    "priority",
    "kind",
    "group_id",
    "group_name",
    "field",
    "value",
    "domain",
    "sku",
    "site",
    "contact_type",
];
const REF_FIELDS: &[&str] = &["id", "name"];

/// Which filter fields each kind needs (the rest of the kind-specific ones are refused).
fn needs(kind: FilterKind) -> &'static [&'static str] {
    match kind {
        FilterKind::AllLicensed => &[],
        FilterKind::Group => &["group_id"],
        FilterKind::Field => &["field", "value"],
        FilterKind::UpnDomain => &["domain"],
        FilterKind::License => &["sku"],
    }
}
const KIND_SPECIFIC: &[&str] = &["group_id", "group_name", "field", "value", "domain", "sku"];

impl Options {
    /// Parses and validates the options JSON.
    pub fn parse(json: &str) -> Result<Options, PluginError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| PluginError::invalid(format!("the options are not valid JSON: {e}")))?;
        diagnose(&value)?;
        let mut options: Options = serde_json::from_value(value).map_err(|e| {
            PluginError::invalid(format!(
                "the options do not match this mapper's schema: {e}"
            ))
        })?;
        options.normalize_and_check()?;
        options.filters.sort_by_key(|f| f.priority);
        Ok(options)
    }

    fn normalize_and_check(&mut self) -> Result<(), PluginError> {
        if self.target != Target::Connectwise && self.default_contact_type.is_some() {
            return Err(PluginError::invalid_field(
                "default_contact_type",
                "contact types exist only in ConnectWise; remove it for target autotask",
            ));
        }
        check_ref("default_contact_type", self.default_contact_type.as_ref())?;
        check_ref("default_site", self.default_site.as_ref())?;
        let target = self.target;
        let mut seen: Vec<(u32, usize)> = Vec::new();
        for (n, f) in self.filters.iter_mut().enumerate() {
            let at = |field: &str| format!("filters[{n}].{field}");
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == f.priority) {
                return Err(PluginError::invalid_field(
                    at("priority"),
                    format!(
                        "priority {} is already used by filters[{first}]; priorities must be unique (1 is the highest)",
                        f.priority
                    ),
                ));
            }
            seen.push((f.priority, n));
            for name in KIND_SPECIFIC {
                let present = match *name {
                    "group_id" => f.group_id.is_some(),
                    "group_name" => f.group_name.is_some(),
                    "field" => f.field.is_some(),
                    "value" => f.value.is_some(),
                    "domain" => f.domain.is_some(),
                    _ => f.sku.is_some(),
                };
                let needed = needs(f.kind).contains(name)
                    || (*name == "group_name" && f.kind == FilterKind::Group);
                if present && !needed {
                    return Err(PluginError::invalid_field(
                        at(name),
                        format!("not used by a filter of kind {}", f.kind.as_str()),
                    ));
                }
            }
            for name in needs(f.kind) {
                let v = match *name {
                    "group_id" => &mut f.group_id,
                    "field" => &mut f.field,
                    "value" => &mut f.value,
                    "domain" => &mut f.domain,
                    _ => &mut f.sku,
                };
                let trimmed = v.as_deref().map(str::trim).unwrap_or_default().to_owned();
                if trimmed.is_empty() {
                    return Err(PluginError::invalid_field(
                        at(name),
                        format!(
                            "required (non-blank) for a filter of kind {}",
                            f.kind.as_str()
                        ),
                    ));
                }
                *v = Some(trimmed);
            }
            if let Some(d) = f.domain.as_mut() {
                let clean = d.trim_start_matches('@').to_ascii_lowercase();
                if clean.is_empty() || clean.contains('@') || clean.contains(char::is_whitespace) {
                    return Err(PluginError::invalid_field(
                        at("domain"),
                        format!("{d:?} is not a domain name such as contoso.com"),
                    ));
                }
                *d = clean;
            }
            if target != Target::Connectwise && f.contact_type.is_some() {
                return Err(PluginError::invalid_field(
                    at("contact_type"),
                    "contact types exist only in ConnectWise; remove it for target autotask",
                ));
            }
            check_ref(&at("site"), f.site.as_ref())?;
            check_ref(&at("contact_type"), f.contact_type.as_ref())?;
        }
        Ok(())
    }

    /// The site and contact types of a filter (`None`: the implicit default of no filters).
    pub fn route_of(&self, filter: Option<&Filter>) -> (Option<Ref>, Option<Ref>, &'static str) {
        let site = filter
            .and_then(|f| f.site.clone())
            .or_else(|| self.default_site.clone());
        let (ct, from) = match filter.and_then(|f| f.contact_type.clone()) {
            Some(ct) => (Some(ct), "filter override"),
            None => (self.default_contact_type.clone(), "integration default"),
        };
        (site, ct, from)
    }
}

fn check_ref(field: &str, r: Option<&Ref>) -> Result<(), PluginError> {
    match r {
        Some(r) if r.id.is_empty() => Err(PluginError::invalid_field(
            format!("{field}.id"),
            "required (non-blank)",
        )),
        _ => Ok(()),
    }
}

fn type_error(field: &str, expected: &str, got: &Value) -> PluginError {
    PluginError::invalid_field(field, format!("expected {expected}, got {got}"))
}

fn unknown(field: &str, known: &[&str]) -> PluginError {
    PluginError::invalid_field(
        field,
        format!("unknown option; expected one of: {}", known.join(", ")),
    )
}

/// Finds the first bad field so the error can name it (serde's messages carry no path).
fn diagnose(v: &Value) -> Result<(), PluginError> {
    let Some(top) = v.as_object() else {
        return Err(PluginError::invalid(format!(
            "the options must be a JSON object such as {{\"target\": \"autotask\"}}, got {v}"
        )));
    };
    for key in top.keys() {
        if !OPTION_FIELDS.contains(&key.as_str()) {
            return Err(unknown(key, OPTION_FIELDS));
        }
    }
    match top.get("target") {
        None => {
            return Err(PluginError::invalid_field(
                "target",
                "required: \"autotask\" or \"connectwise\"",
            ))
        }
        Some(Value::String(s)) if s == "autotask" || s == "connectwise" => {}
        Some(t) => return Err(type_error("target", "\"autotask\" or \"connectwise\"", t)),
    }
    for flag in ["use_email", "update_existing"] {
        if let Some(b) = top.get(flag) {
            if !b.is_boolean() {
                return Err(type_error(flag, "true or false", b));
            }
        }
    }
    for r in ["default_contact_type", "default_site"] {
        if let Some(x) = top.get(r) {
            diagnose_ref(r, x)?;
        }
    }
    let Some(filters) = top.get("filters") else {
        return Ok(());
    };
    let Some(filters) = filters.as_array() else {
        return Err(type_error("filters", "a list of filters", filters));
    };
    for (n, f) in filters.iter().enumerate() {
        let at = |field: &str| format!("filters[{n}].{field}");
        let Some(obj) = f.as_object() else {
            return Err(type_error(&format!("filters[{n}]"), "a filter object", f));
        };
        for key in obj.keys() {
            if !FILTER_FIELDS.contains(&key.as_str()) {
                return Err(unknown(&at(key), FILTER_FIELDS));
            }
        }
        match obj.get("priority") {
            None => {
                return Err(PluginError::invalid_field(
                    at("priority"),
                    "required: a whole number, 1 is the highest priority",
                ))
            }
            Some(p) if p.as_u64().is_some_and(|p| p <= u32::MAX as u64) => {}
            Some(p) => return Err(type_error(&at("priority"), "a whole number ≥ 0", p)),
        }
        const KINDS: &[&str] = &["all-licensed", "group", "field", "upn-domain", "license"];
        match obj.get("kind") {
            None => {
                return Err(PluginError::invalid_field(
                    at("kind"),
                    format!("required: one of {}", KINDS.join(", ")),
                ))
            }
            Some(Value::String(k)) if KINDS.contains(&k.as_str()) => {}
            Some(k) => {
                return Err(type_error(
                    &at("kind"),
                    &format!("one of {}", KINDS.join(", ")),
                    k,
                ))
            }
        }
        for s in KIND_SPECIFIC {
            if let Some(x) = obj.get(*s) {
                if !x.is_string() {
                    return Err(type_error(&at(s), "a string", x));
                }
            }
        }
        for r in ["site", "contact_type"] {
            if let Some(x) = obj.get(r) {
                diagnose_ref(&at(r), x)?;
            }
        }
    }
    Ok(())
}

fn diagnose_ref(field: &str, v: &Value) -> Result<(), PluginError> {
    let Some(obj) = v.as_object() else {
        return Err(type_error(
            field,
            "an object {\"id\": \"..\", \"name\": \"..\"}",
            v,
        ));
    };
    for key in obj.keys() {
        if !REF_FIELDS.contains(&key.as_str()) {
            return Err(unknown(&format!("{field}.{key}"), REF_FIELDS));
        }
    }
    match obj.get("id") {
        None => Err(PluginError::invalid_field(
            format!("{field}.id"),
            "required: the PSA id",
        )),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Number(n)) if n.is_u64() => Ok(()),
        Some(x) => Err(type_error(
            &format!("{field}.id"),
            "a string or whole number",
            x,
        )),
    }?;
    match obj.get("name") {
        None | Some(Value::String(_)) | Some(Value::Null) => Ok(()),
        Some(x) => Err(type_error(&format!("{field}.name"), "a string", x)),
    }
}
