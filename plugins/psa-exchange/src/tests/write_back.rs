//! A `to-exchange` mapper turns Exchange items back into the PSA's model, whatever the
//! direction option says: the engine writes date/time changes of PSA-originated items back
//! with it.

use super::*;

fn task_body(d: &AnyDecision) -> &Task {
    match &d.intent.body {
        Some(AnyBody::Core(ItemBody::Task(t))) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}

#[test]
fn an_exchange_event_maps_back_to_an_appointment_with_all_detail() {
    // A private, PSA-originated, free event: none of the to-psa rules apply to-exchange.
    let e = Event {
        sensitivity: Sensitivity::Private,
        show_as: ShowAs::Free,
        anchor: Some("sb:4711".into()),
        ..event()
    };
    let d = decide(item("AAMkEv1", MailboxBody::Event(e)), TO_EXCHANGE);
    assert_eq!(d.intent.action, IntentAction::Upsert);
    assert_eq!(d.intent.rule, "event-to-appointment-write-back");
    assert_eq!(d.intent.match_keys, ["id:4711"]);
    assert_default_policy(&d);
    let a = appointment_body(&d);
    assert_eq!(a.subject.as_deref(), Some("Dentist"));
    assert_eq!(a.start.utc, "2026-12-02T14:00:00Z");
    assert_eq!(a.end.utc, "2026-12-02T15:00:00Z");
    assert_eq!(a.start.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(a.sensitivity, Sensitivity::Private);
    assert_eq!(a.show_as, ShowAs::Free);
    assert_eq!(a.body.as_deref(), Some("Bring the card"));
    assert_eq!(a.location.as_deref(), Some("Main street 1"));
    assert_eq!(a.organizer.as_deref(), Some("alice@contoso.example"));
    assert_eq!(a.attendees.len(), 1);
    assert_eq!(a.categories, ["Private stuff"]);
    assert_eq!(route(&d, "anchor").as_deref(), Some("sb:4711"));
}

#[test]
fn appointment_to_event_and_back_gives_the_appointment_again() {
    let original = appointment();
    let out = decide(
        item("4711", ItemBody::Appointment(original.clone())),
        TO_EXCHANGE,
    );
    let mut moved = event_body(&out).clone();
    // Someone moves it by an hour in Outlook.
    moved.start.utc = "2026-12-01T10:00:00Z".into();
    moved.end.utc = "2026-12-01T11:00:00Z".into();
    let back = decide(item("AAMk9", MailboxBody::Event(moved)), TO_EXCHANGE);
    let a = appointment_body(&back);
    // `start` and `end`, the fields the engine writes back, carry the move.
    assert_eq!(a.start.utc, "2026-12-01T10:00:00Z");
    assert_eq!(a.end.utc, "2026-12-01T11:00:00Z");
    let expected = Appointment {
        start: ZonedTime {
            utc: "2026-12-01T10:00:00Z".into(),
            time_zone: Some("Europe/Berlin".into()),
        },
        end: ZonedTime {
            utc: "2026-12-01T11:00:00Z".into(),
            time_zone: Some("Europe/Berlin".into()),
        },
        attendees: original
            .attendees
            .iter()
            .map(|at| Attendee {
                response: at.response.as_deref().map(str::to_lowercase),
                ..at.clone()
            })
            .collect(),
        ..original
    };
    assert_eq!(format!("{a:?}"), format!("{expected:?}"));
    assert_eq!(back.intent.match_keys, ["id:4711"]);
}

#[test]
fn the_psa_fields_text_is_taken_off_the_body_on_the_way_back() {
    let call = ServiceCall {
        description: Some("Replace the firewall\nbring the spare unit".into()),
        start: zoned("2026-12-05T07:00:00Z", None),
        end: zoned("2026-12-05T09:30:00Z", None),
        company: Some(CompanyRef {
            id: "174".into(),
            name: None,
        }),
        ticket_ids: vec!["9001".into()],
        resource_ids: Vec::new(),
        status: None,
        canceled: false,
    };
    let out = decide(item("501", ItemBody::ServiceCall(call)), TO_EXCHANGE);
    let back = decide(
        item("AAMk5", MailboxBody::Event(event_body(&out).clone())),
        TO_EXCHANGE,
    );
    assert_eq!(
        appointment_body(&back).body.as_deref(),
        Some("bring the spare unit")
    );

    // Also when Exchange answers the body as HTML.
    let mut html = event_body(&out).clone();
    html.body = Some(RichText {
        content: "<html><body><div>bring the spare unit</div><div><br></div>\
                  <div>-- PSA fields --</div><div>Company: 174</div></body></html>"
            .into(),
        body_type: BodyType::Html,
    });
    let back = decide(item("AAMk5", MailboxBody::Event(html)), TO_EXCHANGE);
    assert_eq!(
        appointment_body(&back).body.as_deref(),
        Some("bring the spare unit")
    );
}

#[test]
fn an_exchange_todo_maps_back_to_a_task() {
    let t = Task {
        title: "Call back Contoso".into(),
        body: Some("about the renewal".into()),
        start: Some(zoned("2026-12-01T08:00:00Z", Some("Europe/Berlin"))),
        due: Some(zoned("2026-12-04T17:00:00Z", None)),
        completed: None,
        status: TaskStatus::NotStarted,
        categories: vec!["Sales".into()],
    };
    let out = decide(item("88", ItemBody::Task(t)), TO_EXCHANGE);
    let mut todo = match out.intent.body.clone() {
        Some(AnyBody::Mailbox(MailboxBody::Todo(todo))) => todo,
        other => panic!("expected a todo, got {other:?}"),
    };
    // Moved and completed in Outlook.
    todo.due = Some(at("2026-12-05T17:00:00Z", None, None));
    todo.status = TaskStatus::Completed;
    todo.percent_complete = 100;
    todo.completed = Some("2026-12-05T16:00:00Z".into());
    let back = decide(item("AAMkT1", MailboxBody::Todo(todo)), TO_EXCHANGE);
    assert_eq!(back.intent.action, IntentAction::Upsert);
    assert_eq!(back.intent.rule, "todo-to-task-write-back");
    assert_eq!(back.intent.match_keys, ["id:88"]);
    assert_default_policy(&back);
    let task = task_body(&back);
    assert_eq!(task.title, "Call back Contoso");
    assert_eq!(task.body.as_deref(), Some("about the renewal"));
    let start = task.start.as_ref().expect("start");
    assert_eq!(start.utc, "2026-12-01T08:00:00Z");
    assert_eq!(start.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(
        task.due.as_ref().map(|d| d.utc.as_str()),
        Some("2026-12-05T17:00:00Z")
    );
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(
        task.completed.as_ref().map(|c| c.utc.as_str()),
        Some("2026-12-05T16:00:00Z")
    );
    assert_eq!(task.categories, ["Sales"]);
    assert_eq!(route(&back, "anchor").as_deref(), Some("sb:88"));
}

#[test]
fn exchange_items_without_a_psa_anchor_map_back_without_match_keys() {
    let d = decide(item("AAMkEv1", MailboxBody::Event(event())), TO_EXCHANGE);
    assert_eq!(d.intent.rule, "event-to-appointment-write-back");
    assert!(d.intent.match_keys.is_empty());
    let steps = explain(item("AAMkEv1", MailboxBody::Event(event())), TO_EXCHANGE);
    assert_eq!(steps[0], "direction: to-exchange");
    assert_eq!(steps[1], "event body");
    assert!(
        steps[2].starts_with("rule event-to-appointment-write-back: "),
        "{steps:?}"
    );
}
