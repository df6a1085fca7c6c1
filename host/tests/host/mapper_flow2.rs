//! Flow 2 end to end through the real runtime: the built `m365-psa-contacts`
//! component is installed as a package and fed canonical `directory-user` items.

use crate::common;

use syncbridge::model::{
    Contact, DirectoryUser, GroupMembership, Item, ItemBody, License, PluginError, Removal,
};
use syncbridge::model::{ContactTypesMode, Intent, IntentAction};

fn user(id: &str, upn: &str) -> Item {
    Item {
        id: id.into(),
        version: None,
        removed: None,
        body: Some(ItemBody::DirectoryUser(DirectoryUser {
            user_principal_name: upn.into(),
            mail: None,
            given_name: Some("Ada".into()),
            surname: Some("Lovelace".into()),
            display_name: Some("Ada Lovelace".into()),
            job_title: None,
            business_phone: Some("+1 555 0100".into()),
            mobile_phone: None,
            department: None,
            account_enabled: true,
            licenses: vec![License {
                sku_id: "05e9a617-0261-4cee-bb44-138d3ef5d965".into(),
                sku_part_number: Some("SPE_E3".into()),
            }],
            groups: Vec::new(),
            attributes: Vec::new(),
        })),
    }
}

fn with(mut item: Item, f: impl FnOnce(&mut DirectoryUser)) -> Item {
    if let Some(ItemBody::DirectoryUser(u)) = item.body.as_mut() {
        f(u);
    }
    item
}

fn route<'a>(i: &'a Intent, name: &str) -> &'a str {
    i.route
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
        .unwrap_or_else(|| panic!("no route attribute {name}: {:?}", i.route))
}

fn contact(i: &Intent) -> &Contact {
    match &i.body {
        Some(ItemBody::Contact(c)) => c,
        other => panic!("expected a contact body, got {other:?}"),
    }
}

const OPTIONS: &str = r#"{
  "target": "connectwise",
  "default_contact_type": {"id": 1, "name": "End User"},
  "filters": [
    {"priority": 3, "kind": "all-licensed", "site": {"id": "3", "name": "Site 3"}},
    {"priority": 1, "kind": "group", "group_id": "g-mgmt", "group_name": "Management",
     "site": {"id": "1", "name": "New Site"}, "contact_type": {"id": "9", "name": "Management"}},
    {"priority": 2, "kind": "field", "field": "department", "value": "IT",
     "site": {"id": "1", "name": "New Site"}}
  ]
}"#;

#[tokio::test]
async fn the_component_maps_directory_users_to_routed_contact_intents() {
    let t = common::hub().await;
    common::install(&t.hub, "m365-psa-contacts").await;
    let mapper = t.hub.plugin("m365-psa-contacts").await.unwrap();

    let manager = with(user("u1", "Boss@Contoso.com"), |u| {
        u.department = Some("IT".into());
        u.groups = vec![GroupMembership {
            id: "g-mgmt".into(),
            display_name: Some("Management".into()),
            transitive: false,
        }];
    });
    let it = with(user("u2", "it@contoso.com"), |u| {
        u.department = Some("it".into())
    });
    let other = user("u3", "sales@contoso.com");
    let disabled = with(user("u4", "left@contoso.com"), |u| {
        u.account_enabled = false
    });
    let unlicensed = with(user("u5", "free@contoso.com"), |u| u.licenses.clear());
    let deleted = Item {
        id: "u6".into(),
        version: None,
        removed: Some(Removal::Deleted),
        body: None,
    };
    let items = vec![manager, it, other, disabled, unlicensed, deleted];

    let intents = t
        .hub
        .runtime()
        .decide(&mapper, items, OPTIONS)
        .await
        .expect("the call runs")
        .expect("the mapper answers");
    assert_eq!(intents.len(), 6, "one intent per user, no duplicates");

    // In two filters (group and department): lands once, in the highest.
    let i = &intents[0];
    assert_eq!(i.source_id, "u1");
    assert_eq!(i.action, IntentAction::Upsert);
    assert_eq!(i.rule, "filter#1 group=Management");
    assert_eq!(i.match_keys, vec!["email:boss@contoso.com".to_string()]);
    assert_eq!(route(i, "site_id"), "1");
    assert_eq!(route(i, "contact_type_ids"), "9", "per-filter override");
    assert_eq!(route(i, "match_by"), "upn");
    let c = contact(i);
    assert_eq!(c.email.as_deref(), Some("Boss@Contoso.com"));
    assert_eq!(c.first_name.as_deref(), Some("Ada"));
    assert_eq!(c.phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(c.title, None, "blank title stays None");
    assert_eq!(c.mobile, None);
    assert!(c.company.is_none());
    assert_eq!(c.site.as_ref().map(|s| s.id.as_str()), Some("1"));

    assert!(i.policy.update_existing);
    assert_eq!(
        i.policy.contact_types,
        ContactTypesMode::AddOnly,
        "ConnectWise contact types are only added"
    );

    let i = &intents[1];
    assert_eq!(i.rule, "filter#2 department=IT");
    assert_eq!(route(i, "contact_type_ids"), "1", "integration default");

    let i = &intents[2];
    assert_eq!(i.rule, "filter#3 all-licensed");
    assert_eq!(route(i, "site_id"), "3");

    for (n, rule) in [(3, "disabled"), (4, "unlicensed"), (5, "deleted")] {
        let i = &intents[n];
        assert_eq!(i.action, IntentAction::Remove, "{i:?}");
        assert_eq!(i.rule, rule);
        assert!(i.body.is_none());
        assert_eq!(route(i, "remove_only"), "matched-by-email");
        assert!(!i.reason.is_empty());
    }
}

#[tokio::test]
async fn use_email_update_existing_off_and_explain_through_the_component() {
    let t = common::hub().await;
    common::install(&t.hub, "m365-psa-contacts").await;
    let mapper = t.hub.plugin("m365-psa-contacts").await.unwrap();
    let options = r#"{"target": "autotask", "use_email": true, "update_existing": false}"#;

    let with_mail = with(user("u1", "ada@contoso.onmicrosoft.com"), |u| {
        u.mail = Some("Ada@Contoso.com".into())
    });
    let without_mail = user("u2", "bob@contoso.onmicrosoft.com");
    let disabled = with(user("u3", "eve@contoso.onmicrosoft.com"), |u| {
        u.mail = Some("eve@contoso.com".into());
        u.account_enabled = false;
    });
    let intents = t
        .hub
        .runtime()
        .decide(&mapper, vec![with_mail, without_mail, disabled], options)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(intents[0].action, IntentAction::Upsert);
    assert_eq!(
        intents[0].match_keys,
        vec!["email:ada@contoso.com".to_string()]
    );
    assert_eq!(route(&intents[0], "match_by"), "email");
    assert!(contact(&intents[0]).contact_types.is_empty());
    assert_eq!(intents[1].action, IntentAction::Skip);
    assert_eq!(intents[1].rule, "no-email");
    // "Update existing contacts" off: never deactivated.
    assert_eq!(intents[2].action, IntentAction::Skip);
    assert_eq!(intents[2].rule, "disabled");
    // The policy arrives typed through `decide` (WIT 0.1.1), not as route attributes.
    for i in &intents {
        assert!(!i.policy.update_existing, "{i:?}");
        assert_eq!(i.policy.contact_types, ContactTypesMode::Replace);
        assert!(i.route.iter().all(|a| a.name != "update_existing"), "{i:?}");
    }

    let explained = t
        .hub
        .runtime()
        .explain(&mapper, user("u9", "ada@contoso.com"), OPTIONS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(explained.source_id, "u9");
    let text = explained.steps.join("\n");
    for want in [
        "filter#1 group=Management: no",
        "filter#2 department=IT: no — department is blank",
        "filter#3 all-licensed: matches",
        "site/location: 3 (Site 3)",
        "contact type: 1 (End User) (integration default)",
        "planned: upsert (filter#3 all-licensed)",
        "preview: filter=filter#3 all-licensed | site=3 (Site 3) | contact type=1 (End User)",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // Bad options come back as `invalid`, naming the field.
    let bad = t
        .hub
        .runtime()
        .decide(
            &mapper,
            vec![],
            r#"{"target": "autotask", "filters": [{"priority": 1, "kind": "group"}]}"#,
        )
        .await
        .unwrap();
    match bad {
        Err(PluginError::Invalid(i)) => {
            assert_eq!(i.fields[0].field, "filters[0].group_id", "{}", i.message)
        }
        other => panic!("expected invalid, got {other:?}"),
    }
}
