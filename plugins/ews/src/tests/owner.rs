//! The sync owner of a mailbox (WIT 0.1.5 `mailbox-owner-api`): the envelopes against the EWS
//! schema, and reading and writing the mark through the SDK's exports against the EWS
//! simulator (over loopback, as `sim` does), including the mailbox another organization marked.

use super::schema::validate;
use super::sim::{cfg, host, start, SVC};
use super::*;
use crate::owner::{get_owner, set_owner};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::with_http;
use syncbridge_sim::{FaultRule, Scenarios};

const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@contoso.com";

#[test]
fn owner_envelopes_are_valid_against_the_schema() {
    let impersonating = soap::Target {
        url: "https://mail.contoso.com/EWS/Exchange.asmx".into(),
        version: "Exchange2013_SP1".into(),
        impersonate: Some(ALICE.into()),
        credential: "default".into(),
    };
    let delegate = soap::Target {
        impersonate: None,
        ..impersonating.clone()
    };
    for (name, target) in [("imp", &impersonating), ("delegate", &delegate)] {
        validate(
            &format!("get-owner-{name}"),
            &soap::envelope(target, &get_owner(ALICE)),
        )
        .unwrap();
        validate(
            &format!("set-owner-{name}"),
            &soap::envelope(target, &set_owner(ALICE, "Contoso <prod> & \"test\"")),
        )
        .unwrap();
    }
    // The root folder is named with its mailbox; the value is escaped.
    let body = set_owner(ALICE, "a<b");
    assert!(body.contains(r#"<t:DistinguishedFolderId Id="msgfolderroot"><t:Mailbox><t:EmailAddress>alice@contoso.com</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"#), "{body}");
    assert!(body.contains("<t:Value>a&lt;b</t:Value>"), "{body}");
    assert!(body.contains(r#"PropertySetId="b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11" PropertyName="syncbridgeSyncOwner" PropertyType="String""#));
}

#[test]
fn the_sync_owner_is_read_written_and_replaced_in_the_mailbox() {
    let sim = start();
    let cfg = cfg(&sim, "");
    let ews = sim.sim.ews();
    with_http(host(&[SVC]), || {
        assert_eq!(exports::read_sync_owner::<Ews>(&cfg, ALICE).unwrap(), None);
        exports::write_sync_owner::<Ews>(&cfg, ALICE, "org-a <prod>").unwrap();
        assert_eq!(
            exports::read_sync_owner::<Ews>(&cfg, ALICE)
                .unwrap()
                .as_deref(),
            Some("org-a <prod>")
        );
        exports::write_sync_owner::<Ews>(&cfg, ALICE, "org-b").unwrap();
        assert_eq!(
            exports::read_sync_owner::<Ews>(&cfg, ALICE)
                .unwrap()
                .as_deref(),
            Some("org-b")
        );
        // Only alice's mailbox carries it.
        assert_eq!(exports::read_sync_owner::<Ews>(&cfg, BOB).unwrap(), None);
    });
    assert_eq!(ews.sync_owner(ALICE).as_deref(), Some("org-b"));

    // Another organization marks bob's mailbox: this connection sees its mark.
    assert!(ews.set_sync_owner(BOB, Some("other-org")));
    with_http(host(&[SVC]), || {
        assert_eq!(
            exports::read_sync_owner::<Ews>(&cfg, BOB)
                .unwrap()
                .as_deref(),
            Some("other-org")
        );
        // An empty owner is refused before anything is sent.
        let e = exports::write_sync_owner::<Ews>(&cfg, BOB, " ").unwrap_err();
        assert_eq!(e.class(), "invalid", "{e:?}");
        let e = exports::read_sync_owner::<Ews>(&cfg, "not-an-address").unwrap_err();
        assert_eq!(e.class(), "invalid", "{e:?}");
    });
    assert_eq!(ews.sync_owner(BOB).as_deref(), Some("other-org"));
}

#[test]
fn a_mailbox_with_its_own_credential_is_marked_as_itself() {
    let sim = start();
    let cfg = cfg(&sim, r#","mailbox_credentials":{"bob@contoso.com":"bob"}"#);
    with_http(host(&[SVC, ("bob", BOB, "bob-pw")]), || {
        exports::write_sync_owner::<Ews>(&cfg, BOB, "org-a").unwrap();
        assert_eq!(
            exports::read_sync_owner::<Ews>(&cfg, BOB)
                .unwrap()
                .as_deref(),
            Some("org-a")
        );
    });
    assert_eq!(sim.sim.ews().sync_owner(BOB).as_deref(), Some("org-a"));
}

#[test]
fn refusals_come_back_as_typed_errors() {
    let sim = start();
    let cfg = cfg(&sim, "");
    // No such mailbox (impersonated): not found, naming it.
    let e = with_http(host(&[SVC]), || {
        exports::read_sync_owner::<Ews>(&cfg, "nobody@contoso.com")
    })
    .unwrap_err();
    assert_eq!(e.class(), "not-found", "{e:?}");
    assert!(
        e.describe().contains("ErrorNonExistentMailbox"),
        "{}",
        e.describe()
    );
    let e = with_http(host(&[SVC]), || {
        exports::write_sync_owner::<Ews>(&cfg, "nobody@contoso.com", "org-a")
    })
    .unwrap_err();
    assert_eq!(e.class(), "not-found", "{e:?}");

    // Without delegate rights (no impersonation, alice opening bob's root folder).
    let delegate = format!(
        r#"{{"ews_url":"{}","impersonate":false}}"#,
        sim.sim.ews_url()
    );
    let e = with_http(host(&[("default", ALICE, "alice-pw")]), || {
        exports::write_sync_owner::<Ews>(&delegate, BOB, "org-a")
    })
    .unwrap_err();
    assert_eq!(e.class(), "forbidden", "{e:?}");
    assert!(
        e.describe().contains("ErrorAccessDenied"),
        "{}",
        e.describe()
    );
    // A mailbox the delegate's own: the mark is written.
    with_http(host(&[("default", ALICE, "alice-pw")]), || {
        exports::write_sync_owner::<Ews>(&delegate, ALICE, "org-a").unwrap();
    });
    assert_eq!(sim.sim.ews().sync_owner(BOB), None);
    assert_eq!(sim.sim.ews().sync_owner(ALICE).as_deref(), Some("org-a"));

    // The service account without the ApplicationImpersonation role.
    sim.sim.set_scenarios(Scenarios {
        impersonation_not_granted: true,
        ..Default::default()
    });
    for e in [
        with_http(host(&[SVC]), || {
            exports::read_sync_owner::<Ews>(&cfg, ALICE)
        })
        .unwrap_err(),
        with_http(host(&[SVC]), || {
            exports::write_sync_owner::<Ews>(&cfg, ALICE, "org-b")
        })
        .unwrap_err(),
    ] {
        assert_eq!(e.class(), "forbidden", "{e:?}");
        assert!(
            e.describe().contains("ApplicationImpersonation"),
            "{}",
            e.describe()
        );
    }
    sim.sim.set_scenarios(Scenarios::default());

    // A wrong password: auth.
    let e = with_http(host(&[("default", "svc@contoso.com", "nope")]), || {
        exports::read_sync_owner::<Ews>(&cfg, ALICE)
    })
    .unwrap_err();
    assert_eq!(e.class(), "auth", "{e:?}");

    // Exchange is busy: throttled with its back-off.
    sim.sim
        .add_fault(FaultRule::sequence("/EWS/*", &[503]).with_retry_after("2"))
        .unwrap();
    let e = with_http(host(&[SVC]), || {
        exports::write_sync_owner::<Ews>(&cfg, ALICE, "org-c")
    })
    .unwrap_err();
    match e {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(2000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.sim.ews().sync_owner(ALICE).as_deref(), Some("org-a"));
}
