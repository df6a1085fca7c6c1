//! The per-user decision of flow 2, with the steps that explain it.

use crate::options::{Filter, FilterKind, Options, Ref, Target};
use syncbridge_sdk::types::*;

/// One user's intent and how it was reached.
pub struct Ruling {
    pub decision: Decision,
    pub steps: Vec<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn attr(name: &str, value: impl Into<String>) -> Attribute {
    Attribute {
        name: name.into(),
        value: value.into(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Field names compared without case, `_`, `-` or spaces.
fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Graph's name of a canonical directory field named in a filter (aliases
/// such as `title` or `upn` included); `None` for any other field, which
/// arrives as attributes.
fn canonical_name(field: &str) -> Option<&'static str> {
    Some(match norm(field).as_str() {
        "department" => "department",
        "jobtitle" | "title" => "jobTitle",
        "mail" | "email" => "mail",
        "userprincipalname" | "upn" => "userPrincipalName",
        "displayname" => "displayName",
        "givenname" | "firstname" => "givenName",
        "surname" | "lastname" => "surname",
        "businessphone" | "businessphones" | "phone" => "businessPhone",
        "mobilephone" | "mobile" => "mobilePhone",
        _ => return None,
    })
}

/// The value of a canonical directory field, and its name in Graph's spelling.
fn canonical_value(u: &DirectoryUser, field: &str) -> Option<(Option<String>, &'static str)> {
    let name = canonical_name(field)?;
    let value = match name {
        "department" => blank(&u.department),
        "jobTitle" => blank(&u.job_title),
        "mail" => blank(&u.mail),
        "userPrincipalName" => blank(&Some(u.user_principal_name.clone())),
        "displayName" => blank(&u.display_name),
        "givenName" => blank(&u.given_name),
        "surname" => blank(&u.surname),
        "businessPhone" => blank(&u.business_phone),
        _ => blank(&u.mobile_phone),
    };
    Some((value, name))
}

/// The values of a directory field named in a `field` filter (a list property
/// such as `proxyAddresses` has several), and its name as the user shows it.
fn field_values(u: &DirectoryUser, field: &str) -> (Vec<String>, String) {
    if let Some((value, name)) = canonical_value(u, field) {
        return (value.into_iter().collect(), name.to_owned());
    }
    let n = norm(field);
    let found: Vec<&syncbridge_sdk::types::Attribute> =
        u.attributes.iter().filter(|a| norm(&a.name) == n).collect();
    let name = found
        .first()
        .map_or_else(|| field.trim().to_owned(), |a| a.name.clone());
    let values = found
        .iter()
        .filter_map(|a| blank(&Some(a.value.clone())))
        .collect();
    (values, name)
}

/// The directory properties the field filters name beyond the canonical
/// ones, once each: the source connector reads them as attributes.
pub fn source_fields(filters: &[Filter]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in filters.iter().filter(|f| f.kind == FilterKind::Field) {
        let Some(field) = f.field.as_deref().map(str::trim) else {
            continue;
        };
        let known = out.iter().any(|o| norm(o) == norm(field));
        if !field.is_empty() && !known && canonical_name(field).is_none() {
            out.push(field.to_owned());
        }
    }
    out
}

/// Whether a filter selects the user, and why (or why not).
pub fn evaluate(f: &Filter, u: &DirectoryUser) -> (bool, String) {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    match f.kind {
        FilterKind::AllLicensed => (true, "the user is enabled and has a licence".into()),
        FilterKind::Group => {
            let id = s(&f.group_id);
            let name = f.group_name.clone().unwrap_or_else(|| id.clone());
            if let Some(g) = u.groups.iter().find(|g| g.id.eq_ignore_ascii_case(&id)) {
                let how = if g.transitive {
                    "directly or through a nested group"
                } else {
                    "directly"
                };
                (true, format!("member of group {name} ({how})"))
            } else if u.groups.is_empty() {
                (
                    false,
                    format!(
                        "not a member of group {name}: the user has no group memberships \
                         (group filters need the Graph connection's with_groups on)"
                    ),
                )
            } else {
                let names: Vec<String> = u
                    .groups
                    .iter()
                    .map(|g| g.display_name.clone().unwrap_or_else(|| g.id.clone()))
                    .collect();
                (
                    false,
                    format!(
                        "not a member of group {name} (member of: {})",
                        names.join(", ")
                    ),
                )
            }
        }
        FilterKind::Field => {
            let want = s(&f.value);
            let (values, name) = field_values(u, &s(&f.field));
            let wanted = want.trim().to_lowercase();
            match values.iter().find(|v| v.to_lowercase() == wanted) {
                Some(have) => (true, format!("{name} is {have:?}")),
                None if values.is_empty() => (false, format!("{name} is blank, not {want:?}")),
                None => (
                    false,
                    format!("{name} is {:?}, not {want:?}", values.join(", ")),
                ),
            }
        }
        FilterKind::UpnDomain => {
            let want = s(&f.domain);
            let have = u
                .user_principal_name
                .rsplit_once('@')
                .map(|(_, d)| d.trim().to_ascii_lowercase())
                .unwrap_or_default();
            if have == want {
                (true, format!("the UPN's domain is {have}"))
            } else {
                (false, format!("the UPN's domain is {have:?}, not {want}"))
            }
        }
        FilterKind::License => {
            let want = s(&f.sku);
            let hit = u.licenses.iter().find(|l| {
                l.sku_id.eq_ignore_ascii_case(&want)
                    || l.sku_part_number
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(&want))
            });
            match hit {
                Some(_) => (true, format!("licence {want} is assigned")),
                None => {
                    let unresolved = u.licenses.iter().any(|l| l.sku_part_number.is_none());
                    let mut why = format!(
                        "licence {want} is not assigned (assigned: {})",
                        license_names(u)
                    );
                    if unresolved {
                        why.push_str(
                            "; some licence names are unresolved, so only SKU ids compare \
                             (grant Organization.Read.All to the Graph app)",
                        );
                    }
                    (false, why)
                }
            }
        }
    }
}

fn license_names(u: &DirectoryUser) -> String {
    let names: Vec<String> = u
        .licenses
        .iter()
        .map(|l| {
            l.sku_part_number
                .clone()
                .unwrap_or_else(|| l.sku_id.clone())
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

struct Ctx<'a> {
    o: &'a Options,
    id: String,
    steps: Vec<String>,
    route: Vec<Attribute>,
    /// What the engine may do to an existing contact.
    policy: WritePolicy,
    /// Filter, site and contact type for the one-line preview.
    preview: [String; 3],
}

impl Ctx<'_> {
    fn finish(
        mut self,
        action: IntentAction,
        body: Option<ItemBody>,
        match_keys: Vec<String>,
        rule: String,
        reason: String,
    ) -> Ruling {
        let verb = match action {
            IntentAction::Upsert => "upsert",
            IntentAction::Remove => "remove",
            IntentAction::Skip => "skip",
        };
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        let preview = format!(
            "preview: filter={} | site={} | contact type={} | match={} | action={verb}",
            or_dash(&self.preview[0]),
            or_dash(&self.preview[1]),
            or_dash(&self.preview[2]),
            or_dash(match_keys.first().map(String::as_str).unwrap_or_default()),
        );
        self.steps
            .push(format!("planned: {verb} ({rule}): {reason}"));
        self.steps.push(preview);
        Ruling {
            decision: Decision {
                intent: Intent {
                    source_id: self.id,
                    action,
                    body,
                    match_keys,
                    route: self.route,
                    rule,
                    reason,
                },
                policy: self.policy,
            },
            steps: self.steps,
        }
    }

    /// A user out of scope: deactivate the matched contact, if the options allow it.
    fn removal(mut self, rule: &str, why: String, match_keys: Vec<String>) -> Ruling {
        if self.o.update_existing {
            self.route.push(attr("remove_only", "matched-by-email"));
            self.steps.push(
                "\"update existing contacts\" is on: the PSA contact linked to this user is set \
                 inactive, only if it was matched by e-mail (unmatched contacts are never deactivated)"
                    .into(),
            );
            let reason = format!(
                "{why}: set the PSA contact inactive (only a contact previously matched by e-mail; \
                 unmatched contacts are never deactivated)"
            );
            self.finish(IntentAction::Remove, None, match_keys, rule.into(), reason)
        } else {
            self.steps.push(
                "\"update existing contacts\" is off: matched contacts are never deactivated"
                    .into(),
            );
            let reason = format!(
                "{why}, but \"update existing contacts\" is off: matched contacts are left as they are"
            );
            self.finish(IntentAction::Skip, None, match_keys, rule.into(), reason)
        }
    }
}

/// The address a user is matched and written by.
fn address(o: &Options, u: &DirectoryUser) -> Option<String> {
    if o.use_email {
        blank(&u.mail)
    } else {
        blank(&Some(u.user_principal_name.clone())).filter(|a| a.contains('@'))
    }
}

fn match_by(o: &Options) -> &'static str {
    if o.use_email {
        "email"
    } else {
        "upn"
    }
}

/// Decides what happens to one source item.
pub fn decide(item: &Item, o: &Options) -> Ruling {
    let mut cx = Ctx {
        o,
        id: item.id.clone(),
        steps: Vec::new(),
        route: vec![
            attr("target", o.target.as_str()),
            attr("match_by", match_by(o)),
        ],
        policy: WritePolicy {
            update_existing: o.update_existing,
            contact_types: ContactTypesMode::Replace,
        },
        preview: Default::default(),
    };
    if let Some(removal) = item.removed {
        let how = match removal {
            Removal::Deleted => "deleted",
            Removal::OutOfScope => "out-of-scope",
        };
        cx.steps
            .push(format!("source item {}: {how} in Microsoft 365", item.id));
        push_no_route(&mut cx);
        let why = match removal {
            Removal::Deleted => "the user was deleted from Microsoft 365".to_owned(),
            Removal::OutOfScope => {
                "the user left the scope of the Microsoft 365 connection".to_owned()
            }
        };
        let keys = match &item.body {
            Some(ItemBody::DirectoryUser(u)) => address(o, u)
                .map(|a| vec![format!("email:{}", a.to_lowercase())])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        return cx.removal(how, why, keys);
    }
    let u = match &item.body {
        Some(ItemBody::DirectoryUser(u)) => u,
        other => {
            let what = if other.is_none() {
                "no body"
            } else {
                "not a directory-user"
            };
            cx.steps.push(format!("source item {}: {what}", item.id));
            push_no_route(&mut cx);
            return cx.finish(
                IntentAction::Skip,
                None,
                Vec::new(),
                "not-a-user".into(),
                format!("the item has {what}; this mapper maps Microsoft 365 directory users"),
            );
        }
    };
    cx.steps.push(format!(
        "user {} (source id {})",
        u.user_principal_name, item.id
    ));
    let licensed = !u.licenses.is_empty();
    cx.steps
        .push(format!("sign-in enabled: {}", yes_no(u.account_enabled)));
    cx.steps.push(format!(
        "licensed: {} (licences: {})",
        yes_no(licensed),
        license_names(u)
    ));
    let key = address(o, u).map(|a| format!("email:{}", a.to_lowercase()));
    let keys: Vec<String> = key.iter().cloned().collect();
    if !u.account_enabled || !licensed {
        cx.steps.push(
            "filters not checked: only enabled (licensed and sign-in enabled) users are synced"
                .into(),
        );
        push_no_route(&mut cx);
        let (rule, why) = match (u.account_enabled, licensed) {
            (false, false) => (
                "disabled",
                "the user's sign-in is blocked and no licence is assigned in Microsoft 365",
            ),
            (false, true) => ("disabled", "the user's sign-in is blocked in Microsoft 365"),
            _ => ("unlicensed", "the user has no licence in Microsoft 365"),
        };
        return cx.removal(rule, why.into(), keys);
    }

    // Filters, highest priority (lowest number) first; the first match wins.
    let mut chosen: Option<&Filter> = None;
    if o.filters.is_empty() {
        cx.steps.push(
            "no filters configured: every enabled, licensed user is synced to the default site"
                .into(),
        );
    }
    for f in &o.filters {
        let (hit, why) = evaluate(f, u);
        let line = match (hit, chosen) {
            (true, None) => {
                chosen = Some(f);
                format!("{}: matches — {why}", f.rule())
            }
            (true, Some(c)) => format!(
                "{}: matches too ({why}), but {} has the higher priority: a user lands in one filter only",
                f.rule(),
                c.rule()
            ),
            (false, _) => format!("{}: no — {why}", f.rule()),
        };
        cx.steps.push(line);
    }
    if chosen.is_none() && !o.filters.is_empty() {
        push_no_route(&mut cx);
        cx.steps
            .push(format!("no filter matches (of {})", o.filters.len()));
        cx.preview[0] = "none".into();
        return cx.removal(
            "no-filter",
            format!(
                "the user matches none of the {} contact mapping filters",
                o.filters.len()
            ),
            keys,
        );
    }
    let (filter_id, rule) = match chosen {
        Some(f) => (f.priority.to_string(), f.rule()),
        None => ("default".to_owned(), "default all-licensed".to_owned()),
    };
    let (site, ct, ct_from) = o.route_of(chosen);
    let ct = if o.target == Target::Connectwise {
        ct
    } else {
        None
    };
    let site_label = site.as_ref().map(Ref::label).unwrap_or_default();
    cx.steps.push(match &site {
        Some(s) => format!("site/location: {}", s.label()),
        None => "site/location: none set, the PSA company's default site".into(),
    });
    let ct_label = ct.as_ref().map(Ref::label).unwrap_or_default();
    match (o.target, &ct) {
        (Target::Autotask, _) => cx.steps.push("contact type: not used by Autotask".into()),
        (Target::Connectwise, Some(t)) => cx.steps.push(format!(
            "contact type: {} ({ct_from}); contact types are only added, never removed",
            t.label()
        )),
        (Target::Connectwise, None) => cx
            .steps
            .push("contact type: none (no default contact type and no filter override)".into()),
    }
    cx.route.extend([
        attr("filter", filter_id),
        attr(
            "site_id",
            site.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
        ),
        attr(
            "site_name",
            site.as_ref()
                .and_then(|s| s.name.clone())
                .unwrap_or_default(),
        ),
        attr(
            "contact_type_ids",
            ct.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
        ),
    ]);
    cx.preview = [rule.clone(), site_label.clone(), ct_label];
    if o.target == Target::Connectwise {
        cx.policy.contact_types = ContactTypesMode::AddOnly;
    }

    let Some(address) = address(o, u) else {
        let (rule, reason) = if o.use_email {
            (
                "no-email",
                "\"Use Email\" is on but the user has no assigned e-mail (mail): nothing to match or create by",
            )
        } else {
            (
                "no-upn",
                "the user has no user principal name: nothing to match or create by",
            )
        };
        cx.steps.push(format!("match: none — {reason}"));
        return cx.finish(
            IntentAction::Skip,
            None,
            Vec::new(),
            rule.into(),
            reason.into(),
        );
    };
    let key = format!("email:{}", address.to_lowercase());
    cx.steps.push(format!(
        "match: {key} (by {})",
        if o.use_email {
            "assigned e-mail"
        } else {
            "UPN"
        }
    ));

    let contact = Contact {
        first_name: blank(&u.given_name),
        last_name: blank(&u.surname),
        display_name: None,
        title: blank(&u.job_title),
        email: Some(address),
        phone: blank(&u.business_phone),
        mobile: blank(&u.mobile_phone),
        company: None,
        site: site.as_ref().map(|s| SiteRef {
            id: s.id.clone(),
            name: s.name.clone(),
        }),
        contact_types: ct
            .iter()
            .map(|t| ContactTypeRef {
                id: t.id.clone(),
                name: t.name.clone(),
            })
            .collect(),
        active: true,
        extra: Vec::new(),
    };
    let show = |name: &str, v: &Option<String>| match v {
        Some(v) => format!("{name}={v:?}"),
        None => format!("{name}=blank (the PSA value is kept)"),
    };
    cx.steps.push(format!(
        "fields: {}, {}, {}, {}, {}, {}",
        show("first name", &contact.first_name),
        show("last name", &contact.last_name),
        show("title", &contact.title),
        show("phone", &contact.phone),
        show("mobile", &contact.mobile),
        show("email", &contact.email),
    ));
    cx.steps.push(if o.update_existing {
        "\"update existing contacts\" is on: a matched contact is updated (and reactivated if inactive)".into()
    } else {
        "\"update existing contacts\" is off: a matched contact is linked but not updated or reactivated; only new contacts are created".into()
    });
    let site_text = if site_label.is_empty() {
        "the default site".to_owned()
    } else {
        format!("site {site_label}")
    };
    let reason = format!("enabled and licensed, in {rule} → {site_text}; match {key}");
    cx.finish(
        IntentAction::Upsert,
        Some(ItemBody::Contact(contact)),
        vec![key],
        rule,
        reason,
    )
}

fn push_no_route(cx: &mut Ctx<'_>) {
    cx.route.extend([
        attr("filter", "none"),
        attr("site_id", ""),
        attr("contact_type_ids", ""),
    ]);
}
