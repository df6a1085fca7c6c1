use super::*;

fn todo_body(d: &AnyDecision) -> &Todo {
    match &d.intent.body {
        Some(AnyBody::Mailbox(MailboxBody::Todo(t))) => t,
        other => panic!("expected a todo, got {other:?}"),
    }
}

fn contact_body(d: &AnyDecision) -> &MailboxContact {
    match &d.intent.body {
        Some(AnyBody::Mailbox(MailboxBody::Contact(c))) => c,
        other => panic!("expected a mailbox contact, got {other:?}"),
    }
}

fn text_of(body: &Option<RichText>) -> &str {
    let b = body.as_ref().expect("a body");
    assert_eq!(b.body_type, BodyType::Text);
    &b.content
}

fn assert_upsert(d: &AnyDecision, rule: &str, source: &str) {
    assert_eq!(d.intent.action, IntentAction::Upsert, "{d:?}");
    assert_eq!(d.intent.rule, rule);
    assert_eq!(d.intent.source_id, source);
    assert_eq!(d.intent.match_keys, vec![format!("anchor:sb:{source}")]);
    assert!(!d.intent.reason.is_empty());
    assert_default_policy(d);
}

#[test]
fn an_appointment_becomes_an_anchored_series_master_field_by_field() {
    let d = decide(
        item("4711", ItemBody::Appointment(appointment())),
        TO_EXCHANGE,
    );
    assert_upsert(&d, "appointment-to-event", "4711");
    let e = event_body(&d);
    assert_eq!(e.kind, EventKind::SeriesMaster);
    assert!(e.series_id.is_none() && e.original_start.is_none());
    assert_eq!(e.subject.as_deref(), Some("Quarterly review"));
    let berlin = Some(Zone {
        iana: "Europe/Berlin".into(),
        windows: Some("W. Europe Standard Time".into()),
    });
    assert_eq!(e.start.utc, "2026-12-01T09:00:00Z");
    assert_eq!(format!("{:?}", e.start.zone), format!("{berlin:?}"));
    assert_eq!(e.end.utc, "2026-12-01T10:00:00Z");
    assert_eq!(format!("{:?}", e.end.zone), format!("{berlin:?}"));
    assert!(!e.all_day);
    assert_eq!(e.show_as, ShowAs::Tentative);
    assert_eq!(e.sensitivity, Sensitivity::Personal);
    let s = e.series.as_ref().expect("series");
    assert_eq!(s.rrule, "FREQ=WEEKLY;BYDAY=TU;COUNT=5");
    assert_eq!(format!("{:?}", Some(s.zone.clone())), format!("{berlin:?}"));
    assert!(s.modified.is_empty());
    assert_eq!(s.deleted, ["2026-12-08T09:00:00Z"]);
    let o = e.organizer.as_ref().expect("organizer");
    assert_eq!(
        (o.address.as_str(), o.name.as_deref()),
        ("boss@msp.example", None)
    );
    assert_eq!(e.attendees.len(), 2);
    let (a, r) = (&e.attendees[0], &e.attendees[1]);
    assert_eq!(a.address.address, "ann@contoso.example");
    assert_eq!(a.address.name.as_deref(), Some("Ann"));
    assert_eq!(
        (a.role, a.response),
        (AttendeeRole::Required, Response::Accepted)
    );
    assert_eq!(r.address.address, "room1@msp.example");
    assert_eq!(
        (r.role, r.response),
        (AttendeeRole::Resource, Response::Tentative)
    );
    assert_eq!(e.location.as_deref(), Some("Room 1"));
    assert_eq!(e.categories, ["Customer", "Review"]);
    assert_eq!(text_of(&e.body), "Agenda:\n1. numbers");
    assert_eq!(e.reminder_minutes, None);
    assert_eq!(e.anchor.as_deref(), Some("sb:4711"));
}

#[test]
fn an_autotask_appointment_without_zone_or_recurrence_is_a_single_event() {
    // What the Autotask connector sends: title, description, start and end in UTC.
    let a = Appointment {
        subject: Some("Onsite".into()),
        start: zoned("2026-12-03T08:00:00Z", None),
        end: zoned("2026-12-03T12:00:00Z", None),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: None,
        attendees: Vec::new(),
        location: None,
        body: None,
        categories: Vec::new(),
    };
    let d = decide(item("12", ItemBody::Appointment(a.clone())), TO_EXCHANGE);
    let e = event_body(&d);
    assert_eq!(e.kind, EventKind::Single);
    assert!(e.series.is_none());
    assert!(e.start.zone.is_none() && e.end.zone.is_none());
    assert_eq!(e.show_as, ShowAs::Busy);
    assert!(e.body.is_none() && e.organizer.is_none() && e.attendees.is_empty());
    assert_eq!(e.anchor.as_deref(), Some("sb:12"));

    // A recurring one without a zone is expanded in UTC.
    let a = Appointment {
        recurrence: Some(Recurrence {
            rrule: "FREQ=DAILY;COUNT=2".into(),
            exdates: Vec::new(),
        }),
        ..a
    };
    let d = decide(item("13", ItemBody::Appointment(a)), TO_EXCHANGE);
    let s = event_body(&d).series.clone().expect("series");
    assert_eq!(
        (s.zone.iana.as_str(), s.zone.windows.as_deref()),
        ("Etc/UTC", Some("UTC"))
    );
}

#[test]
fn zones_are_completed_to_iana_and_windows_ids() {
    use crate::zones::zone_of;
    let pair = |name: &str| {
        let z = zone_of(name);
        (z.iana, z.windows)
    };
    let some = |i: &str, w: &str| (i.to_owned(), Some(w.to_owned()));
    assert_eq!(
        pair("W. Europe Standard Time"),
        some("Europe/Berlin", "W. Europe Standard Time")
    );
    assert_eq!(
        pair("Europe/Berlin"),
        some("Europe/Berlin", "W. Europe Standard Time")
    );
    assert_eq!(
        pair("America/New_York"),
        some("America/New_York", "Eastern Standard Time")
    );
    assert_eq!(
        pair("Eastern Standard Time"),
        some("America/New_York", "Eastern Standard Time")
    );
    assert_eq!(
        pair("Tokyo Standard Time"),
        some("Asia/Tokyo", "Tokyo Standard Time")
    );
    assert_eq!(
        pair("GMT Standard Time"),
        some("Europe/London", "GMT Standard Time")
    );
    assert_eq!(
        pair("Europe/London"),
        some("Europe/London", "GMT Standard Time")
    );
    assert_eq!(
        pair("AUS Eastern Standard Time"),
        some("Australia/Sydney", "AUS Eastern Standard Time")
    );
    assert_eq!(
        pair("india standard time"),
        some("Asia/Calcutta", "India Standard Time")
    );
    // CLDR still spells some zones by their old names; the current ones are known too.
    assert_eq!(
        pair("Asia/Kolkata"),
        some("Asia/Kolkata", "India Standard Time")
    );
    assert_eq!(pair("UTC"), some("Etc/UTC", "UTC"));
    assert_eq!(pair("Etc/UTC"), some("Etc/UTC", "UTC"));
    // An IANA zone that is no Windows id's default keeps its name, without a Windows id.
    assert_eq!(pair("Europe/Zurich"), ("Europe/Zurich".to_owned(), None));
    assert_eq!(pair("Mars/Olympus"), ("Mars/Olympus".to_owned(), None));
}

#[test]
fn a_task_becomes_an_anchored_todo_field_by_field() {
    let t = Task {
        title: "Call back Contoso".into(),
        body: Some("about the renewal".into()),
        start: Some(zoned("2026-12-01T08:00:00Z", Some("Europe/Berlin"))),
        due: Some(zoned("2026-12-04T17:00:00Z", None)),
        completed: None,
        status: TaskStatus::InProgress,
        categories: vec!["Sales".into()],
    };
    let d = decide(item("88", ItemBody::Task(t.clone())), TO_EXCHANGE);
    assert_upsert(&d, "task-to-todo", "88");
    let todo = todo_body(&d);
    assert_eq!(todo.subject, "Call back Contoso");
    assert_eq!(text_of(&todo.body), "about the renewal");
    let start = todo.start.as_ref().expect("start");
    assert_eq!(start.utc, "2026-12-01T08:00:00Z");
    assert_eq!(
        start
            .zone
            .as_ref()
            .map(|z| (z.iana.as_str(), z.windows.as_deref())),
        Some(("Europe/Berlin", Some("W. Europe Standard Time")))
    );
    let due = todo.due.as_ref().expect("due");
    assert_eq!(
        (due.utc.as_str(), due.zone.is_none()),
        ("2026-12-04T17:00:00Z", true)
    );
    assert_eq!(todo.status, TaskStatus::InProgress);
    assert_eq!(todo.percent_complete, 0);
    assert_eq!(todo.completed, None);
    assert_eq!(todo.categories, ["Sales"]);
    assert_eq!(todo.anchor.as_deref(), Some("sb:88"));

    let done = Task {
        completed: Some(zoned("2026-12-02T10:30:00Z", None)),
        status: TaskStatus::Completed,
        body: None,
        ..t
    };
    let d = decide(item("89", ItemBody::Task(done)), TO_EXCHANGE);
    let todo = todo_body(&d);
    assert_eq!(todo.status, TaskStatus::Completed);
    assert_eq!(todo.percent_complete, 100);
    assert_eq!(todo.completed.as_deref(), Some("2026-12-02T10:30:00Z"));
    assert!(todo.body.is_none());
}

fn service_call() -> ServiceCall {
    ServiceCall {
        description: Some("Replace the firewall\nbring the spare unit".into()),
        start: zoned("2026-12-05T07:00:00Z", None),
        end: zoned("2026-12-05T09:30:00Z", Some("Eastern Standard Time")),
        company: Some(CompanyRef {
            id: "174".into(),
            name: Some("Contoso".into()),
        }),
        ticket_ids: vec!["9001".into(), "task:77".into()],
        resource_ids: vec!["29682885".into(), "29682886".into()],
        status: Some("2".into()),
        canceled: false,
    }
}

#[test]
fn a_service_call_becomes_a_busy_one_way_event_with_its_psa_fields_in_the_body() {
    let d = decide(
        item("501", ItemBody::ServiceCall(service_call())),
        TO_EXCHANGE,
    );
    assert_upsert(&d, "service-call-to-event", "501");
    let e = event_body(&d);
    assert_eq!(e.kind, EventKind::Single);
    assert_eq!(
        e.subject.as_deref(),
        Some("Service call: Replace the firewall")
    );
    assert_eq!(e.start.utc, "2026-12-05T07:00:00Z");
    assert!(e.start.zone.is_none());
    assert_eq!(e.end.utc, "2026-12-05T09:30:00Z");
    assert_eq!(
        e.end.zone.as_ref().map(|z| z.iana.as_str()),
        Some("America/New_York")
    );
    assert!(!e.all_day);
    assert_eq!(e.show_as, ShowAs::Busy);
    assert_eq!(e.sensitivity, Sensitivity::Normal);
    assert!(e.series.is_none() && e.organizer.is_none() && e.attendees.is_empty());
    assert!(e.location.is_none());
    assert_eq!(e.categories, ["Service call"]);
    assert_eq!(
        text_of(&e.body),
        "bring the spare unit\n\n\
         -- PSA fields --\n\
         Company: Contoso (174)\n\
         Tickets: 9001, task:77\n\
         Resources: 29682885, 29682886\n\
         Status: 2"
    );
    assert_eq!(e.anchor.as_deref(), Some("sb:501"));
}

#[test]
fn a_service_call_without_description_is_named_by_its_tickets_and_says_canceled() {
    let call = ServiceCall {
        description: None,
        company: Some(CompanyRef {
            id: "174".into(),
            name: None,
        }),
        ticket_ids: vec!["9001".into()],
        resource_ids: Vec::new(),
        status: None,
        canceled: true,
        ..service_call()
    };
    let d = decide(
        item("502", ItemBody::ServiceCall(call.clone())),
        TO_EXCHANGE,
    );
    let e = event_body(&d);
    assert_eq!(e.subject.as_deref(), Some("Service call: ticket 9001"));
    assert_eq!(
        text_of(&e.body),
        "-- PSA fields --\nCompany: 174\nTickets: 9001\nCanceled: yes"
    );
    let two = ServiceCall {
        ticket_ids: vec!["9001".into(), "task:3".into()],
        ..call.clone()
    };
    let d = decide(item("503", ItemBody::ServiceCall(two)), TO_EXCHANGE);
    assert_eq!(
        event_body(&d).subject.as_deref(),
        Some("Service call: tickets 9001, task:3")
    );
    let bare = ServiceCall {
        ticket_ids: Vec::new(),
        company: None,
        canceled: false,
        ..call
    };
    let d = decide(item("504", ItemBody::ServiceCall(bare)), TO_EXCHANGE);
    let e = event_body(&d);
    assert_eq!(e.subject.as_deref(), Some("Service call 504"));
    assert!(e.body.is_none(), "{:?}", e.body);
}

fn contact() -> Contact {
    Contact {
        first_name: Some("Ann".into()),
        last_name: Some("Smith".into()),
        display_name: Some("Ann Smith".into()),
        title: Some("CFO".into()),
        email: Some("ann@contoso.example".into()),
        phone: Some("+49 30 1234".into()),
        mobile: Some("+49 170 9999".into()),
        company: Some(CompanyRef {
            id: "174".into(),
            name: Some("Contoso".into()),
        }),
        site: Some(SiteRef {
            id: "10".into(),
            name: Some("Berlin".into()),
        }),
        contact_types: Vec::new(),
        active: true,
        // As the Autotask connector sends them (its order).
        extra: vec![
            Attribute {
                name: "emailAddress2".into(),
                value: "ann.smith@home.example".into(),
            },
            Attribute {
                name: "emailAddress3".into(),
                value: "ANN@contoso.example".into(),
            },
            Attribute {
                name: "extension".into(),
                value: "204".into(),
            },
            Attribute {
                name: "externalID".into(),
                value: "ERP-5".into(),
            },
        ],
    }
}

#[test]
fn a_contact_becomes_a_mailbox_contact_field_by_field_with_psa_fields_in_the_notes() {
    let d = decide(item("30", ItemBody::Contact(contact())), TO_EXCHANGE);
    assert_upsert(&d, "contact-to-mailbox-contact", "30");
    let c = contact_body(&d);
    assert_eq!(c.given_name.as_deref(), Some("Ann"));
    assert_eq!(c.middle_name, None);
    assert_eq!(c.surname.as_deref(), Some("Smith"));
    assert_eq!(c.display_name.as_deref(), Some("Ann Smith"));
    assert_eq!(c.company_name.as_deref(), Some("Contoso"));
    assert_eq!(c.job_title.as_deref(), Some("CFO"));
    assert_eq!(c.department, None);
    // The third address repeats the first (case aside): it is not written twice.
    let emails: Vec<&str> = c.emails.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(emails, ["ann@contoso.example", "ann.smith@home.example"]);
    let phones: Vec<(PhoneKind, &str)> = c
        .phones
        .iter()
        .map(|p| (p.kind, p.number.as_str()))
        .collect();
    assert_eq!(
        phones,
        [
            (PhoneKind::Business, "+49 30 1234"),
            (PhoneKind::Mobile, "+49 170 9999")
        ]
    );
    assert!(c.addresses.is_empty() && c.business_home_page.is_none() && c.birthday.is_none());
    assert!(c.categories.is_empty());
    assert_eq!(
        c.notes.as_deref(),
        Some("-- PSA fields --\nCompany ID: 174\nSite: Berlin (10)\nExtension: 204\nExternal ID: ERP-5")
    );
    assert_eq!(c.anchor.as_deref(), Some("sb:30"));
}

#[test]
fn an_inactive_contact_without_names_says_so_and_gets_a_display_name() {
    let c = Contact {
        display_name: None,
        company: None,
        site: None,
        contact_types: vec![
            ContactTypeRef {
                id: "7".into(),
                name: Some("IT".into()),
            },
            ContactTypeRef {
                id: "2".into(),
                name: None,
            },
        ],
        active: false,
        extra: vec![Attribute {
            name: "favouriteColour".into(),
            value: "blue\nand green".into(),
        }],
        ..contact()
    };
    let d = decide(item("31", ItemBody::Contact(c)), TO_EXCHANGE);
    let m = contact_body(&d);
    assert_eq!(m.display_name.as_deref(), Some("Ann Smith"));
    assert_eq!(m.company_name, None);
    assert_eq!(m.emails.len(), 1);
    assert_eq!(
        m.notes.as_deref(),
        Some("-- PSA fields --\nContact types: IT (7), 2\nActive: no\nfavouriteColour: blue and green")
    );
}

#[test]
fn the_psa_fields_text_is_byte_identical_for_the_same_input_in_any_attribute_order() {
    let first = decide(item("30", ItemBody::Contact(contact())), TO_EXCHANGE);
    let again = decide(item("30", ItemBody::Contact(contact())), TO_EXCHANGE);
    let mut shuffled = contact();
    shuffled.extra.reverse();
    let shuffled = decide(item("30", ItemBody::Contact(shuffled)), TO_EXCHANGE);
    let notes = |d: &AnyDecision| contact_body(d).notes.clone().unwrap();
    assert_eq!(notes(&first).as_bytes(), notes(&again).as_bytes());
    assert_eq!(notes(&first).as_bytes(), notes(&shuffled).as_bytes());
    // The whole body, too (the engine diffs every field).
    assert_eq!(format!("{:?}", first.intent), format!("{:?}", again.intent));

    let call = || {
        decide(
            item("501", ItemBody::ServiceCall(service_call())),
            TO_EXCHANGE,
        )
    };
    assert_eq!(
        format!("{:?}", event_body(&call()).body),
        format!("{:?}", event_body(&call()).body)
    );
}

#[test]
fn a_removed_psa_item_is_removed_from_the_mailbox() {
    let mut gone = item("4711", ItemBody::Appointment(appointment()));
    gone.removed = Some(Removal::Deleted);
    gone.body = None;
    let d = decide(gone, TO_EXCHANGE);
    assert_eq!(d.intent.action, IntentAction::Remove);
    assert_eq!(d.intent.rule, "removed");
    assert_eq!(d.intent.source_id, "4711");
    assert!(d.intent.body.is_none());
    assert_default_policy(&d);
}

#[test]
fn other_kinds_are_skipped_naming_the_kind() {
    let user = ItemBody::DirectoryUser(DirectoryUser {
        user_principal_name: "tech@msp.example".into(),
        mail: None,
        given_name: None,
        surname: None,
        display_name: None,
        job_title: None,
        business_phone: None,
        mobile_phone: None,
        department: None,
        account_enabled: true,
        licenses: Vec::new(),
        groups: Vec::new(),
        attributes: Vec::new(),
    });
    let d = decide(item("29682885", user), TO_EXCHANGE);
    assert_skip(&d, "skip-kind");
    assert!(
        d.intent.reason.contains("directory-user"),
        "{}",
        d.intent.reason
    );

    let company = ItemBody::Company(CompanyRef {
        id: "1".into(),
        name: None,
    });
    let d = decide(item("1", company), TO_EXCHANGE);
    assert_skip(&d, "skip-kind");
    assert!(d.intent.reason.contains("company"), "{}", d.intent.reason);

    let mailbox_contact = MailboxBody::Contact(
        contact_body(&decide(
            item("30", ItemBody::Contact(contact())),
            TO_EXCHANGE,
        ))
        .clone(),
    );
    let d = decide(item("AAMk1", mailbox_contact), TO_EXCHANGE);
    assert_skip(&d, "skip-kind");
    assert!(
        d.intent.reason.contains("mailbox-contact"),
        "{}",
        d.intent.reason
    );

    let mut empty = item(
        "7",
        ItemBody::Site(SiteRef {
            id: "7".into(),
            name: None,
        }),
    );
    empty.body = None;
    assert_skip(&decide(empty, TO_EXCHANGE), "skip-kind");
}

#[test]
fn explain_names_direction_kind_rule_and_reason() {
    let steps = explain(
        item("501", ItemBody::ServiceCall(service_call())),
        TO_EXCHANGE,
    );
    let all = steps.join("\n");
    assert_eq!(steps[0], "direction: to-exchange");
    assert_eq!(steps[1], "service-call body");
    assert!(
        steps[2].starts_with("rule service-call-to-event: "),
        "{all}"
    );
    assert!(all.contains("action: upsert"), "{all}");
    assert!(all.contains("event"), "{all}");
}
