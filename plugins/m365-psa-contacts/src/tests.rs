//! One test per rule of the seed; each fails if its rule is missing.

use super::*;
use serde_json::json;
use syncbridge_sdk::exports;

fn user(upn: &str) -> DirectoryUser {
    DirectoryUser {
        user_principal_name: upn.into(),
        mail: Some(upn.to_uppercase()),
        given_name: Some("Ada".into()),
        surname: Some("Lovelace".into()),
        display_name: Some("Ada Lovelace".into()),
        job_title: Some("Engineer".into()),
        business_phone: Some("+1 555 0100".into()),
        mobile_phone: Some("+1 555 0199".into()),
        department: Some("IT".into()),
        account_enabled: true,
        licenses: vec![License {
            sku_id: "05e9a617-0261-4cee-bb44-138d3ef5d965".into(),
            sku_part_number: Some("SPE_E3".into()),
        }],
        groups: Vec::new(),
        attributes: Vec::new(),
    }
}

fn item(id: &str, u: DirectoryUser) -> Item {
    Item {
        id: id.into(),
        version: None,
        removed: None,
        body: Some(ItemBody::DirectoryUser(u)),
    }
}

fn map(items: Vec<Item>, options: serde_json::Value) -> Vec<Intent> {
    exports::map::<M365PsaContacts>(items, &options.to_string()).expect("maps")
}

fn decide(items: Vec<Item>, options: serde_json::Value) -> Vec<Decision> {
    exports::decide::<M365PsaContacts>(items, &options.to_string()).expect("decides")
}

fn one(u: DirectoryUser, options: serde_json::Value) -> Intent {
    map(vec![item("u1", u)], options).remove(0)
}

fn route<'a>(i: &'a Intent, name: &str) -> &'a str {
    i.route
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
        .unwrap_or_else(|| panic!("route has no {name}: {:?}", i.route))
}

fn contact(i: &Intent) -> &Contact {
    match &i.body {
        Some(ItemBody::Contact(c)) => c,
        other => panic!("not a contact: {other:?}"),
    }
}

fn invalid_field(options: serde_json::Value) -> (String, String) {
    match exports::map::<M365PsaContacts>(vec![], &options.to_string()) {
        Err(PluginError::Invalid(i)) => (
            i.fields
                .first()
                .map(|f| f.field.clone())
                .unwrap_or_default(),
            i.message,
        ),
        other => panic!("expected invalid for {options}, got {other:?}"),
    }
}

fn group(id: &str, name: &str) -> GroupMembership {
    GroupMembership {
        id: id.into(),
        display_name: Some(name.into()),
        transitive: true,
    }
}

/// The seed's example: Management group → New Site, department IT → New Site,
/// Exchange Online → Site 2, Business Premium → Main site, all licensed → Site 3.
fn seed_filters(target: &str) -> serde_json::Value {
    json!({
        "target": target,
        "filters": [
            {"priority": 5, "kind": "all-licensed", "site": {"id": "3", "name": "Site 3"}},
            {"priority": 1, "kind": "group", "group_id": "g-mgmt", "group_name": "Management",
             "site": {"id": "1", "name": "New Site"}},
            {"priority": 2, "kind": "field", "field": "department", "value": "IT",
             "site": {"id": "1", "name": "New Site"}},
            {"priority": 3, "kind": "license", "sku": "EXCHANGESTANDARD", "site": {"id": "2", "name": "Site 2"}},
            {"priority": 4, "kind": "license", "sku": "SPB", "site": {"id": "0", "name": "Main site"}}
        ]
    })
}

// ---- only enabled (licensed and sign-in enabled) users -------------------------------------

#[test]
fn enabled_licensed_user_is_upserted_with_match_key_by_upn() {
    let i = one(user("Ada@Contoso.com"), json!({"target": "autotask"}));
    assert_eq!(i.action, IntentAction::Upsert);
    assert_eq!(i.match_keys, vec!["email:ada@contoso.com"]);
    assert_eq!(route(&i, "match_by"), "upn");
    assert_eq!(contact(&i).email.as_deref(), Some("Ada@Contoso.com"));
    assert!(contact(&i).active);
}

#[test]
fn disabled_user_is_removed_with_a_reason() {
    let mut u = user("ada@contoso.com");
    u.account_enabled = false;
    let i = one(u, json!({"target": "autotask"}));
    assert_eq!(i.action, IntentAction::Remove);
    assert_eq!(i.rule, "disabled");
    assert!(i.reason.contains("sign-in is blocked"), "{}", i.reason);
    assert!(i.body.is_none());
    assert_eq!(route(&i, "remove_only"), "matched-by-email");
}

#[test]
fn unlicensed_user_is_removed_even_by_the_all_licensed_filter() {
    let mut u = user("ada@contoso.com");
    u.licenses.clear();
    let i = one(
        u,
        json!({"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed"}]}),
    );
    assert_eq!(i.action, IntentAction::Remove);
    assert_eq!(i.rule, "unlicensed");
    assert!(i.reason.contains("no licence"), "{}", i.reason);
}

#[test]
fn deleted_user_is_removed_only_for_contacts_matched_by_email() {
    let gone = Item {
        id: "u9".into(),
        version: None,
        removed: Some(Removal::Deleted),
        body: None,
    };
    let i = map(vec![gone], json!({"target": "connectwise"})).remove(0);
    assert_eq!(i.action, IntentAction::Remove);
    assert_eq!(i.source_id, "u9");
    assert_eq!(i.rule, "deleted");
    assert!(i.reason.contains("deleted"), "{}", i.reason);
    assert!(i.reason.contains("matched by e-mail"), "{}", i.reason);
    assert_eq!(route(&i, "remove_only"), "matched-by-email");
}

#[test]
fn with_update_existing_off_nothing_is_deactivated() {
    let mut u = user("ada@contoso.com");
    u.account_enabled = false;
    let gone = Item {
        id: "u9".into(),
        version: None,
        removed: Some(Removal::Deleted),
        body: None,
    };
    let out = decide(
        vec![item("u1", u), gone],
        json!({"target": "autotask", "update_existing": false}),
    );
    for d in &out {
        let i = &d.intent;
        assert_eq!(i.action, IntentAction::Skip, "{i:?}");
        assert!(
            i.reason.contains("update existing contacts"),
            "{}",
            i.reason
        );
        assert!(!d.policy.update_existing);
    }
    // Active users are still upserted (created if new; the profile keeps matched ones as they are).
    let d = decide(
        vec![item("u1", user("bob@contoso.com"))],
        json!({"target": "autotask", "update_existing": false}),
    )
    .remove(0);
    assert_eq!(d.intent.action, IntentAction::Upsert);
    assert!(!d.policy.update_existing);
    assert!(
        d.intent.route.iter().all(|a| a.name != "update_existing"),
        "the policy is typed, not a route attribute: {:?}",
        d.intent.route
    );
}

// ---- filters ---------------------------------------------------------------------------------

#[test]
fn filters_are_checked_in_priority_order_not_list_order() {
    // Listed first but priority 5: the department filter (priority 2) must win.
    let i = one(user("ada@contoso.com"), seed_filters("autotask"));
    assert_eq!(i.rule, "filter#2 department=IT");
    assert_eq!(route(&i, "filter"), "2");
    assert_eq!(route(&i, "site_id"), "1");
    assert_eq!(contact(&i).site.as_ref().unwrap().id, "1");
}

#[test]
fn a_user_in_two_filters_lands_once_in_the_highest() {
    let mut u = user("ada@contoso.com");
    u.groups = vec![group("G-MGMT", "Management")];
    let out = map(vec![item("u1", u)], seed_filters("autotask"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule, "filter#1 group=Management");
    assert_eq!(route(&out[0], "site_id"), "1");
}

#[test]
fn leftover_licensed_users_fall_to_the_catch_all() {
    let mut u = user("bob@contoso.com");
    u.department = Some("Sales".into());
    let i = one(u, seed_filters("autotask"));
    assert_eq!(i.rule, "filter#5 all-licensed");
    assert_eq!(route(&i, "site_id"), "3");
    assert_eq!(route(&i, "site_name"), "Site 3");
}

#[test]
fn license_filter_matches_part_number_or_sku_id() {
    let mut u = user("eve@contoso.com");
    u.department = None;
    u.licenses = vec![License {
        sku_id: "4b9405b0-7788-4568-add1-99614e613b69".into(),
        sku_part_number: Some("exchangestandard".into()),
    }];
    assert_eq!(
        one(u.clone(), seed_filters("autotask")).rule,
        "filter#3 license=EXCHANGESTANDARD"
    );
    let by_id = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "license", "sku": "4B9405B0-7788-4568-ADD1-99614E613B69", "site": {"id": "9"}}]});
    u.licenses[0].sku_part_number = None;
    assert_eq!(route(&one(u, by_id), "site_id"), "9");
}

#[test]
fn upn_domain_and_field_filters_compare_without_case() {
    let o = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "upn-domain", "domain": "@Fabrikam.com", "site": {"id": "f"}},
        {"priority": 2, "kind": "field", "field": "jobTitle", "value": "engineer", "site": {"id": "e"}}]});
    assert_eq!(
        route(&one(user("x@FABRIKAM.COM"), o.clone()), "site_id"),
        "f"
    );
    assert_eq!(
        route(&one(user("x@contoso.com"), o.clone()), "site_id"),
        "e"
    );
    let mut u = user("x@contoso.com");
    u.job_title = Some("Manager".into());
    assert_eq!(one(u, o).action, IntentAction::Remove);
}

#[test]
fn field_filter_reads_free_attributes() {
    let mut u = user("x@contoso.com");
    u.attributes = vec![Attribute {
        name: "companyName".into(),
        value: "Contoso Ltd".into(),
    }];
    let o = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "field", "field": "company_name", "value": "contoso ltd", "site": {"id": "c"}}]});
    assert_eq!(route(&one(u, o), "site_id"), "c");
}

#[test]
fn field_filters_name_the_source_fields_beyond_the_canonical_ones_once_each() {
    let o = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "field", "field": "companyName", "value": "a", "site": {"id": "1"}},
        {"priority": 2, "kind": "field", "field": "job_title", "value": "b", "site": {"id": "2"}},
        {"priority": 3, "kind": "field", "field": "company_name", "value": "c", "site": {"id": "3"}},
        {"priority": 4, "kind": "field", "field": "proxyAddresses", "value": "smtp:x@y", "site": {"id": "4"}},
        {"priority": 5, "kind": "group", "group_id": "g", "site": {"id": "5"}}]});
    let fields = syncbridge_sdk::exports::source_fields::<M365PsaContacts>(&o.to_string()).unwrap();
    assert_eq!(fields, vec!["companyName", "proxyAddresses"]);
    let none = json!({"target": "autotask"});
    assert!(
        syncbridge_sdk::exports::source_fields::<M365PsaContacts>(&none.to_string())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_field_filter_matches_any_value_of_a_list_property() {
    let mut u = user("x@contoso.com");
    u.attributes = ["SMTP:x@contoso.com", "smtp:alias@contoso.com"]
        .map(|v| Attribute {
            name: "proxyAddresses".into(),
            value: v.into(),
        })
        .to_vec();
    let o = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "field", "field": "proxyAddresses", "value": "smtp:alias@contoso.com", "site": {"id": "p"}}]});
    assert_eq!(route(&one(u.clone(), o), "site_id"), "p");
    let miss = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "field", "field": "proxyAddresses", "value": "smtp:other@contoso.com", "site": {"id": "p"}}]});
    let i = one(u, miss);
    assert_eq!(i.action, IntentAction::Remove);
    assert!(i.reason.contains("none of the 1"), "{}", i.reason);
}

#[test]
fn a_user_matching_no_filter_is_removed() {
    let mut u = user("bob@contoso.com");
    u.department = Some("Sales".into());
    let o = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "field", "field": "department", "value": "IT", "site": {"id": "1"}}]});
    let i = one(u, o);
    assert_eq!(i.action, IntentAction::Remove);
    assert_eq!(i.rule, "no-filter");
    assert_eq!(route(&i, "filter"), "none");
    assert!(i.reason.contains("none of the 1"), "{}", i.reason);
}

#[test]
fn without_filters_every_enabled_licensed_user_goes_to_the_default_site() {
    let i = one(
        user("ada@contoso.com"),
        json!({"target": "autotask", "default_site": {"id": 10, "name": "Main"}}),
    );
    assert_eq!(i.action, IntentAction::Upsert);
    assert_eq!(i.rule, "default all-licensed");
    assert_eq!(route(&i, "filter"), "default");
    assert_eq!(route(&i, "site_id"), "10");
    let i = one(user("ada@contoso.com"), json!({"target": "autotask"}));
    assert_eq!(route(&i, "site_id"), "");
    assert!(contact(&i).site.is_none());
}

#[test]
fn a_filter_without_site_uses_the_default_site() {
    let o = json!({"target": "autotask", "default_site": {"id": "10"},
        "filters": [{"priority": 1, "kind": "all-licensed"}]});
    assert_eq!(route(&one(user("a@contoso.com"), o), "site_id"), "10");
}

// ---- ConnectWise contact types ----------------------------------------------------------------

#[test]
fn connectwise_contact_type_default_and_per_filter_override() {
    let o = json!({"target": "connectwise",
        "default_contact_type": {"id": 1, "name": "End User"},
        "filters": [
            {"priority": 1, "kind": "field", "field": "department", "value": "IT",
             "site": {"id": "1"}, "contact_type": {"id": "7", "name": "IT"}},
            {"priority": 2, "kind": "all-licensed", "site": {"id": "3"}}]});
    let it = one(user("ada@contoso.com"), o.clone());
    assert_eq!(route(&it, "contact_type_ids"), "7");
    assert_eq!(contact(&it).contact_types.len(), 1);
    assert_eq!(contact(&it).contact_types[0].id, "7");
    let d = decide(vec![item("u1", user("ada@contoso.com"))], o.clone()).remove(0);
    assert_eq!(d.policy.contact_types, ContactTypesMode::AddOnly);
    assert!(d.policy.update_existing);
    let autotask = decide(
        vec![item("u1", user("ada@contoso.com"))],
        json!({"target": "autotask"}),
    )
    .remove(0);
    assert_eq!(autotask.policy.contact_types, ContactTypesMode::Replace);
    let mut u = user("bob@contoso.com");
    u.department = None;
    let other = one(u, o);
    assert_eq!(route(&other, "contact_type_ids"), "1");
    assert_eq!(
        contact(&other).contact_types[0].name.as_deref(),
        Some("End User")
    );
}

#[test]
fn autotask_contacts_carry_no_contact_type_and_refuse_one() {
    let i = one(user("ada@contoso.com"), json!({"target": "autotask"}));
    assert!(contact(&i).contact_types.is_empty());
    assert_eq!(route(&i, "contact_type_ids"), "");
    let (field, _) =
        invalid_field(json!({"target": "autotask", "default_contact_type": {"id": "1"}}));
    assert_eq!(field, "default_contact_type");
    let (field, _) = invalid_field(json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "all-licensed", "contact_type": {"id": "1"}}]}));
    assert_eq!(field, "filters[0].contact_type");
}

// ---- match key: UPN or assigned e-mail ----------------------------------------------------------

#[test]
fn use_email_matches_and_writes_the_assigned_mail() {
    let mut u = user("ada@contoso.onmicrosoft.com");
    u.mail = Some("Ada.Lovelace@Contoso.com".into());
    let i = one(u, json!({"target": "autotask", "use_email": true}));
    assert_eq!(i.match_keys, vec!["email:ada.lovelace@contoso.com"]);
    assert_eq!(
        contact(&i).email.as_deref(),
        Some("Ada.Lovelace@Contoso.com")
    );
    assert_eq!(route(&i, "match_by"), "email");
}

#[test]
fn use_email_without_mail_skips_with_a_reason() {
    let mut u = user("ada@contoso.com");
    u.mail = Some("  ".into());
    let i = one(u, json!({"target": "autotask", "use_email": true}));
    assert_eq!(i.action, IntentAction::Skip);
    assert_eq!(i.rule, "no-email");
    assert!(i.match_keys.is_empty());
    assert!(i.reason.contains("no assigned e-mail"), "{}", i.reason);
}

#[test]
fn two_users_with_the_same_address_do_not_duplicate_a_contact() {
    let mut a = user("a@contoso.onmicrosoft.com");
    a.mail = Some("info@contoso.com".into());
    let mut b = user("b@contoso.onmicrosoft.com");
    b.mail = Some("INFO@contoso.com".into());
    let out = map(
        vec![item("a", a), item("b", b)],
        json!({"target": "autotask", "use_email": true}),
    );
    assert_eq!(out[0].action, IntentAction::Upsert);
    assert_eq!(out[1].action, IntentAction::Skip);
    assert_eq!(out[1].rule, "duplicate-email");
}

// ---- fields -----------------------------------------------------------------------------------

#[test]
fn exactly_the_six_seed_fields_are_synced() {
    let c = contact(&one(user("ada@contoso.com"), json!({"target": "autotask"}))).clone();
    assert_eq!(c.first_name.as_deref(), Some("Ada"));
    assert_eq!(c.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(c.title.as_deref(), Some("Engineer"));
    assert_eq!(c.phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(c.mobile.as_deref(), Some("+1 555 0199"));
    assert_eq!(c.email.as_deref(), Some("ada@contoso.com"));
    // Not synced: display name, department, company (set by the profile), extras.
    assert!(c.display_name.is_none());
    assert!(c.company.is_none());
    assert!(c.extra.is_empty());
}

#[test]
fn blank_m365_fields_are_left_none_so_they_never_overwrite() {
    let mut u = user("ada@contoso.com");
    u.job_title = Some("   ".into());
    u.business_phone = None;
    u.mobile_phone = Some(String::new());
    u.given_name = Some(" Ada ".into());
    let c = contact(&one(u, json!({"target": "autotask"}))).clone();
    assert_eq!(c.title, None);
    assert_eq!(c.phone, None);
    assert_eq!(c.mobile, None);
    assert_eq!(c.first_name.as_deref(), Some("Ada"));
}

#[test]
fn every_intent_has_rule_reason_and_route() {
    let mut off = user("off@contoso.com");
    off.account_enabled = false;
    let out = map(
        vec![item("a", user("a@contoso.com")), item("b", off)],
        seed_filters("connectwise"),
    );
    for i in out {
        assert!(!i.rule.is_empty() && !i.reason.is_empty(), "{i:?}");
        for n in [
            "filter",
            "site_id",
            "contact_type_ids",
            "match_by",
            "target",
        ] {
            route(&i, n);
        }
    }
}

#[test]
fn items_that_are_not_users_are_skipped() {
    let it = Item {
        id: "c1".into(),
        version: None,
        removed: None,
        body: Some(ItemBody::Company(CompanyRef {
            id: "1".into(),
            name: None,
        })),
    };
    let i = map(vec![it], json!({"target": "autotask"})).remove(0);
    assert_eq!(i.action, IntentAction::Skip);
    assert_eq!(i.rule, "not-a-user");
}

// ---- options ----------------------------------------------------------------------------------

#[test]
fn invalid_options_name_the_bad_field() {
    let cases = [
        (json!({}), "target"),
        (json!({"target": "halo"}), "target"),
        (json!({"target": "autotask", "use_mail": true}), "use_mail"),
        (
            json!({"target": "autotask", "use_email": "yes"}),
            "use_email",
        ),
        (json!({"target": "autotask", "filters": {}}), "filters"),
        (
            json!({"target": "autotask", "filters": [{"kind": "all-licensed"}]}),
            "filters[0].priority",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "dept"}]}),
            "filters[0].kind",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "group"}]}),
            "filters[0].group_id",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "field", "field": "department"}]}),
            "filters[0].value",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed", "sku": "SPB"}]}),
            "filters[0].sku",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "upn-domain", "domain": "a@b"}]}),
            "filters[0].domain",
        ),
        (
            json!({"target": "autotask", "filters": [
                {"priority": 1, "kind": "all-licensed"}, {"priority": 1, "kind": "license", "sku": "SPB"}]}),
            "filters[1].priority",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed", "site": {"name": "x"}}]}),
            "filters[0].site.id",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed", "site": {"id": "1", "code": "x"}}]}),
            "filters[0].site.code",
        ),
        (
            json!({"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed", "colour": "red"}]}),
            "filters[0].colour",
        ),
        (
            json!({"target": "autotask", "default_site": {"id": " "}}),
            "default_site.id",
        ),
    ];
    for (options, field) in cases {
        let (got, message) = invalid_field(options.clone());
        assert_eq!(got, field, "{options}: {message}");
        assert!(message.starts_with(field), "{message}");
    }
    assert!(matches!(
        exports::map::<M365PsaContacts>(vec![], "not json"),
        Err(PluginError::Invalid(_))
    ));
    assert!(matches!(
        exports::explain::<M365PsaContacts>(item("u", user("a@b.c")), "[]"),
        Err(PluginError::Invalid(_))
    ));
}

#[test]
fn defaults_are_upn_and_update_existing_on() {
    let o = Options::parse(r#"{"target":"connectwise"}"#).unwrap();
    assert!(!o.use_email);
    assert!(o.update_existing);
    assert!(o.filters.is_empty());
}

// ---- explain / preview ------------------------------------------------------------------------

#[test]
fn explain_walks_every_filter_and_names_the_choice() {
    let mut u = user("ada@contoso.com");
    u.groups = vec![group("g-other", "Sales")];
    u.licenses.push(License {
        sku_id: "x".into(),
        sku_part_number: Some("SPB".into()),
    });
    let e = exports::explain::<M365PsaContacts>(
        item("u1", u),
        &seed_filters("connectwise").to_string(),
    )
    .unwrap();
    assert_eq!(e.source_id, "u1");
    let text = e.steps.join("\n");
    let expect = [
        "user ada@contoso.com (source id u1)",
        "sign-in enabled: yes",
        "licensed: yes (licences: SPE_E3, SPB)",
        "filter#1 group=Management: no — not a member of group Management (member of: Sales)",
        "filter#2 department=IT: matches — department is \"IT\"",
        "filter#3 license=EXCHANGESTANDARD: no — licence EXCHANGESTANDARD is not assigned",
        "filter#4 license=SPB: matches too (licence SPB is assigned), but filter#2 department=IT has the higher priority",
        "filter#5 all-licensed: matches too",
        "site/location: 1 (New Site)",
        "contact type: none (no default contact type and no filter override)",
        "match: email:ada@contoso.com (by UPN)",
        "title=\"Engineer\"",
        "planned: upsert (filter#2 department=IT)",
        "preview: filter=filter#2 department=IT | site=1 (New Site) | contact type=- | match=email:ada@contoso.com | action=upsert",
    ];
    let mut at = 0;
    for e in expect {
        let found = text[at..]
            .find(e)
            .unwrap_or_else(|| panic!("{e:?} missing (in order) from:\n{text}"));
        at += found;
    }
}

#[test]
fn explain_says_why_no_filter_matched_and_what_happens() {
    let mut u = user("bob@fabrikam.com");
    u.department = Some("Sales".into());
    let o = json!({"target": "autotask", "filters": [
        {"priority": 1, "kind": "group", "group_id": "g1", "site": {"id": "1"}},
        {"priority": 2, "kind": "upn-domain", "domain": "contoso.com", "site": {"id": "2"}}]});
    let e = exports::explain::<M365PsaContacts>(item("u2", u), &o.to_string()).unwrap();
    let text = e.steps.join("\n");
    assert!(text.contains("the user has no group memberships"), "{text}");
    assert!(
        text.contains("upn-domain=contoso.com: no — the UPN's domain is \"fabrikam.com\""),
        "{text}"
    );
    assert!(text.contains("no filter matches (of 2)"), "{text}");
    assert!(text.contains("planned: remove (no-filter)"), "{text}");
    assert!(text.contains("preview: filter=none |"), "{text}");
}

#[test]
fn explain_of_a_disabled_user_says_filters_were_not_checked() {
    let mut u = user("ada@contoso.com");
    u.account_enabled = false;
    let e = exports::explain::<M365PsaContacts>(item("u1", u), r#"{"target":"autotask"}"#).unwrap();
    let text = e.steps.join("\n");
    assert!(text.contains("sign-in enabled: no"), "{text}");
    assert!(text.contains("filters not checked"), "{text}");
    assert!(text.contains("planned: remove (disabled)"), "{text}");
}

#[test]
fn explain_and_map_agree() {
    let o = seed_filters("connectwise");
    let mut users = vec![
        user("a@contoso.com"),
        user("b@contoso.com"),
        user("c@contoso.com"),
    ];
    users[1].account_enabled = false;
    users[2].department = Some("Sales".into());
    for (n, u) in users.into_iter().enumerate() {
        let it = item(&format!("u{n}"), u);
        let intent = map(vec![it.clone()], o.clone()).remove(0);
        let e = exports::explain::<M365PsaContacts>(it, &o.to_string()).unwrap();
        let last = e
            .steps
            .iter()
            .rev()
            .find(|s| s.starts_with("planned:"))
            .unwrap();
        assert!(last.contains(&intent.rule), "{last} vs {}", intent.rule);
        assert!(last.contains(&intent.reason), "{last} vs {}", intent.reason);
    }
}

#[test]
fn the_options_schema_is_derived() {
    let schema: serde_json::Value =
        serde_json::from_str(&M365PsaContacts::options_schema()).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["target"]));
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["update_existing"]["description"]
        .as_str()
        .unwrap()
        .contains("Update existing contacts"));
}
