//! Flow 1 end to end, on both transports behind the same Exchange profile and the same
//! mapping rules: an Exchange profile and its enabled resources become engine profiles
//! (`control::exchange_flow`) that run through the real `autotask` and `psa-exchange`
//! plugins and, for the mailbox, `ews` (on premises) or `graph` (Exchange Online, "use MS
//! Graph" with the app's client credentials), against the Autotask, EWS and Graph simulators
//! over TLS on localhost:2610. Every scenario runs once per [`Transport`] (`…::ews`,
//! `…::graph`). One scenario per rule of `../shared/seeds/autotask-exchange-onprem-config.txt`
//! (as read in `../shared/design/PRODUCT.md`, flow 1), each failing without its rule:
//! PSA appointments, to-dos, service calls and the resource's contacts reach the mailbox
//! once, PSA-only fields as text in the body; only date/time changes of PSA-originated
//! appointments and to-dos flow back (subject and deletes do not); Exchange appointments are
//! imported once, with or without detail, free time skipped on request, private ones without
//! detail, never sent back as new Exchange items; an Outlook series is imported as one
//! appointment per occurrence within the recurring days (moved ones where they went, deleted
//! ones removed, the series' deletion removing the rest); the past days bound both sides, and items
//! that age out of them are kept; turning a kind off stops it; a resource whose mailbox
//! access is refused is disabled alone; a server that is down opens one incident, mailed
//! once. EWS only: the public folder of all contacts. Transport-free: one resource's runs
//! take turns; the import and the turns on PostgreSQL.

use crate::common;
use crate::exchange_profiles::{
    graph_settings, settings, world, world_with, World, GRAPH_CLIENT, GRAPH_TENANT, GRAPH_TESS,
    PASSWORD,
};

use serde_json::json;
use std::sync::Arc;
use syncbridge::control::alerts;
use syncbridge::control::exchange_flow::{self, FlowKind};
use syncbridge::control::exchange_profiles::{
    self as exchange, ExchangeSettings, ImportAppointments,
};
use syncbridge::control::exchange_resources::{self as resources, ResourceSettings, Selection};
use syncbridge::control::runs::RunMode;
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::model::{Item, ItemBody, WriteAction};
use syncbridge::secrets::SecretString;

const XP: &str = "contoso";
const MAILBOX: &str = "tess@msp.example";
const RESOURCE: &str = "30";

/// An instant `days` from now at `hour`:00 UTC, as Autotask and EWS write it.
fn at(days: i64, hour: i8) -> String {
    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(days))
        .unwrap();
    day.at(hour, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// How the profile reaches the mailbox, and what a person in Outlook does on that side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// Exchange on premises: the `ews` connector, Basic with impersonation.
    Ews,
    /// Exchange Online: the `graph` connector, OAuth client credentials of an app
    /// registration (application permissions), token from `account.token_url`.
    Graph,
}

/// A mailbox folder the tests look into.
#[derive(Clone, Copy, Debug)]
enum Folder {
    Calendar,
    Tasks,
    Contacts,
}

/// How an event added in Outlook is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marked {
    Plain,
    Private,
    Free,
}

impl Transport {
    /// The valid profile form for this transport.
    fn form(self) -> ExchangeSettings {
        match self {
            Transport::Ews => settings(),
            Transport::Graph => graph_settings(),
        }
    }

    /// The mailbox's live items of a folder as the server holds them: (id, subject).
    fn items(self, w: &World, folder: Folder) -> Vec<(String, String)> {
        match self {
            Transport::Ews => {
                let folder = match folder {
                    Folder::Calendar => "calendar",
                    Folder::Tasks => "tasks",
                    Folder::Contacts => "contacts",
                };
                w.sim
                    .ews()
                    .items(MAILBOX, folder)
                    .into_iter()
                    .map(|(id, _, subject)| (id, subject))
                    .collect()
            }
            Transport::Graph => {
                let graph = w.sim.graph();
                let (values, title) = match folder {
                    Folder::Calendar => (graph.events(GRAPH_TENANT, GRAPH_TESS), "subject"),
                    Folder::Tasks => (graph.tasks(GRAPH_TENANT, GRAPH_TESS), "title"),
                    Folder::Contacts => (graph.contacts(GRAPH_TENANT, GRAPH_TESS), "displayName"),
                };
                values
                    .into_iter()
                    .map(|v| {
                        let label = match v[title].as_str() {
                            Some(t) if !t.is_empty() => t.to_owned(),
                            _ => format!(
                                "{} {}",
                                v["givenName"].as_str().unwrap_or_default(),
                                v["surname"].as_str().unwrap_or_default()
                            ),
                        };
                        (v["id"].as_str().unwrap_or_default().to_owned(), label)
                    })
                    .collect()
            }
        }
    }

    /// An event as Outlook would add it to Tess's calendar; its id.
    async fn outlook_event(
        self,
        w: &World,
        subject: &str,
        start: &str,
        end: &str,
        marked: Marked,
    ) -> String {
        match self {
            Transport::Ews => {
                let extra = match marked {
                    Marked::Plain => "",
                    Marked::Private => "<t:Sensitivity>Private</t:Sensitivity>",
                    Marked::Free => "<t:LegacyFreeBusyStatus>Free</t:LegacyFreeBusyStatus>",
                };
                w.sim
                    .ews()
                    .add_item(
                        MAILBOX,
                        "calendar",
                        &format!(
                            "<t:CalendarItem xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><t:Subject>{subject}</t:Subject><t:Body BodyType=\"Text\">Agenda for {subject}</t:Body>{extra}<t:Start>{start}</t:Start><t:End>{end}</t:End><t:Location>Room 4</t:Location></t:CalendarItem>"
                        ),
                        None,
                    )
                    .expect("the calendar exists")
            }
            Transport::Graph => {
                // Graph's dateTimeTimeZone: a local date-time without offset, and its zone.
                let at = |t: &str| json!({"dateTime": t.trim_end_matches('Z'), "timeZone": "UTC"});
                let mut event = json!({
                    "subject": subject,
                    "body": {"contentType": "text", "content": format!("Agenda for {subject}")},
                    "start": at(start), "end": at(end),
                    "location": {"displayName": "Room 4"},
                });
                match marked {
                    Marked::Plain => {}
                    Marked::Private => event["sensitivity"] = json!("private"),
                    Marked::Free => event["showAs"] = json!("free"),
                }
                let (status, created) =
                    graph_call(w, reqwest::Method::POST, "events", Some(event)).await;
                assert_eq!(status, 201, "{created}");
                created["id"].as_str().expect("an id").to_owned()
            }
        }
    }

    /// A series Outlook adds to Tess's calendar, `count` times from `start` (UTC), weekly on
    /// that weekday or daily; its id.
    async fn outlook_series(
        self,
        w: &World,
        subject: &str,
        (start, end): (&str, &str),
        count: u32,
        daily: bool,
    ) -> String {
        let date = &start[..10];
        let day = weekday(date);
        let ews_pattern = if daily {
            "<t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence>".to_owned()
        } else {
            format!("<t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>{day}</t:DaysOfWeek></t:WeeklyRecurrence>")
        };
        let graph_pattern = if daily {
            json!({"type": "daily", "interval": 1})
        } else {
            json!({"type": "weekly", "interval": 1, "daysOfWeek": [day.to_lowercase()]})
        };
        match self {
            Transport::Ews => w
                .sim
                .ews()
                .add_item(
                    MAILBOX,
                    "calendar",
                    &format!(
                        "<t:CalendarItem xmlns:t=\"{EWS_TYPES}\"><t:Subject>{subject}</t:Subject><t:Start>{start}</t:Start><t:End>{end}</t:End><t:Recurrence>{ews_pattern}<t:NumberedRecurrence><t:StartDate>{date}</t:StartDate><t:NumberOfOccurrences>{count}</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence></t:CalendarItem>"
                    ),
                    None,
                )
                .expect("the calendar exists"),
            Transport::Graph => {
                let at = |t: &str| json!({"dateTime": t.trim_end_matches('Z'), "timeZone": "UTC"});
                let event = json!({
                    "subject": subject, "start": at(start), "end": at(end),
                    "recurrence": {
                        "pattern": graph_pattern,
                        "range": {"type": "numbered", "startDate": date, "numberOfOccurrences": count,
                                  "recurrenceTimeZone": "UTC"}
                    }
                });
                let (status, created) =
                    graph_call(w, reqwest::Method::POST, "events", Some(event)).await;
                assert_eq!(status, 201, "{created}");
                created["id"].as_str().expect("an id").to_owned()
            }
        }
    }

    /// Outlook moves (to `moved`, UTC start and end) or deletes the `n`th occurrence (from 1,
    /// in the order the calendar shows them) of series `master`.
    async fn outlook_occurrence(
        self,
        w: &World,
        master: &str,
        n: u32,
        moved: Option<(String, String)>,
    ) {
        match self {
            Transport::Ews => {
                let occurrence = format!(
                    r#"<t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="{n}"/>"#
                );
                let body = match moved {
                    Some((start, end)) => format!(
                        r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>{occurrence}<t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>{start}</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>{end}</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
                    ),
                    None => format!(
                        r#"<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>{occurrence}</m:ItemIds></m:DeleteItem>"#
                    ),
                };
                let answer = ews_call(w, &body).await;
                assert!(answer.contains(r#"ResponseClass="Success""#), "{answer}");
            }
            Transport::Graph => {
                let window = format!(
                    "events/{master}/instances?startDateTime={}&endDateTime={}",
                    at(-1, 0),
                    at(90, 0)
                );
                let (status, list) = graph_call(w, reqwest::Method::GET, &window, None).await;
                assert_eq!(status, 200, "{list}");
                let mut instances: Vec<(String, String)> = list["value"]
                    .as_array()
                    .expect("instances")
                    .iter()
                    .map(|i| {
                        let start = i["start"]["dateTime"].as_str().unwrap_or_default();
                        (
                            start.to_owned(),
                            i["id"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                instances.sort();
                let id = &instances[n as usize - 1].1;
                let path = format!("events/{id}");
                let (status, answer) = match moved {
                    Some((start, end)) => {
                        let at = |t: &str| json!({"dateTime": t.trim_end_matches('Z'), "timeZone": "UTC"});
                        let patch = json!({"start": at(&start), "end": at(&end)});
                        graph_call(w, reqwest::Method::PATCH, &path, Some(patch)).await
                    }
                    None => graph_call(w, reqwest::Method::DELETE, &path, None).await,
                };
                assert!(status == 200 || status == 204, "{status}: {answer}");
            }
        }
    }

    /// The server's request paths, for faults.
    fn server_paths(self) -> &'static str {
        match self {
            Transport::Ews => "/EWS/*",
            Transport::Graph => "/v1.0/*",
        }
    }
}

const EWS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

/// The English day name of a `YYYY-MM-DD` date, as EWS's `DaysOfWeek` spells it.
fn weekday(date: &str) -> &'static str {
    let d: jiff::civil::Date = date.parse().unwrap();
    match d.weekday() {
        jiff::civil::Weekday::Monday => "Monday",
        jiff::civil::Weekday::Tuesday => "Tuesday",
        jiff::civil::Weekday::Wednesday => "Wednesday",
        jiff::civil::Weekday::Thursday => "Thursday",
        jiff::civil::Weekday::Friday => "Friday",
        jiff::civil::Weekday::Saturday => "Saturday",
        jiff::civil::Weekday::Sunday => "Sunday",
    }
}

/// A client that trusts the simulators' CA.
fn sim_client(w: &World) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(w.sim.ca_pem().unwrap().as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

/// A Graph request on Tess's mailbox (`/v1.0/users/{MAILBOX}/{path}`) with the app's token,
/// as Outlook on the web would make it; the status and the JSON answer (null when empty).
async fn graph_call(
    w: &World,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let token = w
        .sim
        .graph()
        .issue_token(GRAPH_TENANT, GRAPH_CLIENT)
        .expect("the app gets a token");
    let url = format!(
        "https://localhost:{}/v1.0/users/{MAILBOX}/{path}",
        w.sim.addr().port()
    );
    let mut request = sim_client(w).request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let answer = request.send().await.expect("the simulator answers");
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// An EWS call as Tess (Basic), as Outlook would make it; the response envelope.
async fn ews_call(w: &World, body: &str) -> String {
    let envelope = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="{EWS_TYPES}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    );
    sim_client(w)
        .post(format!(
            "https://localhost:{}/EWS/Exchange.asmx",
            w.sim.addr().port()
        ))
        .basic_auth(MAILBOX, Some("tess-pw"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(envelope)
        .send()
        .await
        .expect("the simulator answers")
        .text()
        .await
        .unwrap()
}

/// Each scenario once per transport: `<scenario>::ews` and `<scenario>::graph`.
macro_rules! on_both_transports {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ews() {
                super::$scenario(super::Transport::Ews).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn graph() {
                super::$scenario(super::Transport::Graph).await
            }
        }
    )*};
}

on_both_transports!(
    psa_appointments_todos_service_calls_and_contacts_reach_the_mailbox_once,
    only_date_and_time_changes_of_psa_appointments_flow_back,
    exchange_appointments_are_imported_once_with_the_chosen_detail,
    a_kind_turned_off_stops_and_the_org_allow_limits_the_resource,
    a_refused_user_disables_only_that_resource,
    a_server_that_is_down_opens_one_incident_until_it_works_again,
    a_to_do_moved_in_exchange_moves_in_the_psa,
    an_imported_appointment_that_leaves_the_window_stays_until_deleted,
    the_psa_appointments_are_read_once_per_cycle,
    psa_items_older_than_the_past_days_are_not_sent_and_aged_ones_stay,
    a_cycle_with_nothing_changed_writes_nothing,
    an_outlook_series_is_imported_as_its_occurrences_within_the_recurring_days,
    a_series_deleted_in_outlook_is_one_change_for_the_brakes,
);

/// Saves the Exchange profile (with `change` applied to the form), lists the resources
/// and enables Tess (resource 30) with `toggles` (the organisation's allows when `None`).
async fn setup(
    w: &World,
    t: Transport,
    change: fn(&mut ExchangeSettings),
    toggles: Option<ResourceSettings>,
) {
    let hub = &w.t.hub;
    let mut s = t.form();
    change(&mut s);
    exchange::create(
        hub,
        Actor::Msp,
        XP,
        None,
        s,
        Some(SecretString::new(PASSWORD)),
    )
    .await
    .unwrap();
    resources::discover(hub, Actor::Msp, XP).await.unwrap();
    resources::enable(hub, Actor::Msp, XP, &Selection::Ids(vec![RESOURCE.into()]))
        .await
        .unwrap();
    if let Some(t) = toggles {
        resources::set_settings(hub, Actor::Msp, XP, RESOURCE, t)
            .await
            .unwrap();
    }
}

fn id(kind: FlowKind) -> String {
    exchange_flow::profile_id(XP, kind, Some(RESOURCE))
}

/// Runs a flow profile now; its counts (applied, failed).
async fn run(hub: &Arc<Hub>, kind: FlowKind) -> (u64, u64) {
    let r = common::outcome(common::run_now(hub, &id(kind), RunMode::Run).await)
        .unwrap_or_else(|e| panic!("{}: {e}", id(kind)));
    (r.applied, r.failed)
}

/// Runs every flow profile of the resource that is enabled, in the order the scheduler
/// queues them: the import, which reads the calendar and relays its changes to the
/// appointments and service-calls profiles, first.
async fn cycle(hub: &Arc<Hub>) {
    for kind in [
        FlowKind::Import,
        FlowKind::Appointments,
        FlowKind::Todos,
        FlowKind::ServiceCalls,
    ] {
        let settings = syncbridge::engine::profiles::settings(hub.store(), &id(kind)).await;
        if settings.is_ok_and(|s| s.enabled) {
            run(hub, kind).await;
        }
    }
}

fn appointments(w: &World) -> Vec<serde_json::Value> {
    w.sim
        .autotask()
        .rows("Appointments")
        .into_iter()
        .filter(|r| r["resourceID"] == json!(30))
        .collect()
}

/// Reads an Exchange item through the profile's connector (`ews` or `graph`), as the engine does.
async fn exchange_item(hub: &Hub, scope: &str, item: &str) -> Item {
    common::by_hand::item(hub, "contoso-exchange", scope, item).await
}

/// Changes named fields of an Exchange item over the wire, as a person in Outlook would.
async fn edit_in_exchange(
    hub: &Hub,
    scope: &str,
    item: &str,
    fields: &[&str],
    edit: fn(&mut ItemBody),
) {
    common::by_hand::edit(hub, "contoso-exchange", scope, item, fields, edit).await;
}

/// Deletes an Exchange item over the wire, as a person in Outlook would.
async fn delete_in_exchange(hub: &Hub, scope: &str, item: &str) {
    common::by_hand::write(
        hub,
        "contoso-exchange",
        scope,
        WriteAction::Delete,
        item,
        None,
        &[],
    )
    .await;
}

fn calendar_scope() -> String {
    format!("calendar:mailbox={MAILBOX},past=30,future=30")
}

fn seed_psa(w: &World) -> i64 {
    let at_ = w.sim.autotask();
    let appointment = at_.insert(
        "Appointments",
        json!({"resourceID": 30, "title": "Quarterly review", "description": "Bring the numbers",
               "startDateTime": at(1, 9), "endDateTime": at(1, 10)}),
    );
    at_.insert(
        "Companies",
        json!({"id": 1, "companyName": "Contoso", "ownerResourceID": 30}),
    );
    at_.insert(
        "Contacts",
        json!({"companyID": 1, "firstName": "Ann", "lastName": "Lee",
               "emailAddress": "ann@contoso.com", "isActive": 1}),
    );
    at_.insert(
        "ToDos",
        json!({"companyID": 1, "assignedToResourceID": 30, "actionType": 1,
               "activityDescription": "Call Ann about the quote",
               "startDateTime": at(2, 9), "endDateTime": at(2, 10)}),
    );
    let call = at_.insert(
        "ServiceCalls",
        json!({"companyID": 1, "description": "Server swap", "status": 1,
               "startDateTime": at(3, 10), "endDateTime": at(3, 12)}),
    );
    let ticket = at_.insert(
        "ServiceCallTickets",
        json!({"serviceCallID": call, "ticketID": 77}),
    );
    at_.insert(
        "ServiceCallTicketResources",
        json!({"serviceCallTicketID": ticket, "resourceID": 30}),
    );
    appointment
}

async fn psa_appointments_todos_service_calls_and_contacts_reach_the_mailbox_once(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    setup(&w, t, |s| s.sync.allow_contacts = true, None).await;

    cycle(hub).await;
    let calendar = t.items(&w, Folder::Calendar);
    let subjects: Vec<&str> = calendar.iter().map(|(_, s)| s.as_str()).collect();
    assert!(subjects.contains(&"Quarterly review"), "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains("Server swap")),
        "the service call is an event too: {subjects:?}"
    );
    let tasks = t.items(&w, Folder::Tasks);
    assert!(
        tasks.iter().any(|(_, s)| s.contains("Call Ann")),
        "the to-do is a task: {tasks:?}"
    );
    // Contacts of the companies Tess is account manager of.
    run(hub, FlowKind::Contacts).await;
    let contacts = t.items(&w, Folder::Contacts);
    assert!(
        contacts
            .iter()
            .any(|(_, s)| s.contains("Ann") && s.contains("Lee")),
        "{contacts:?}"
    );
    // What Exchange has no field for is written as text into the body.
    let (call_id, _) = calendar
        .iter()
        .find(|(_, s)| s.contains("Server swap"))
        .unwrap();
    let call = exchange_item(hub, &calendar_scope(), call_id).await;
    let Some(ItemBody::Event(c)) = &call.body else {
        panic!("{call:?}")
    };
    let text = c
        .body
        .as_ref()
        .map(|b| b.content.clone())
        .unwrap_or_default();
    assert!(text.contains("Tickets: 77"), "{text}");
    // The event carries the PSA's text and is marked as PSA-originated.
    let (event_id, _) = calendar
        .iter()
        .find(|(_, s)| s == "Quarterly review")
        .unwrap();
    let event = exchange_item(hub, &calendar_scope(), event_id).await;
    let Some(ItemBody::Event(e)) = &event.body else {
        panic!("{event:?}")
    };
    assert!(
        e.anchor.as_deref().is_some_and(|a| a.starts_with("sb:")),
        "{e:?}"
    );
    assert!(
        e.body
            .as_ref()
            .is_some_and(|b| b.content.contains("Bring the numbers")),
        "{e:?}"
    );

    // Nothing more is written however often it runs, and nothing comes back as a PSA item.
    let before = appointments(&w).len();
    cycle(hub).await;
    cycle(hub).await;
    assert_eq!(
        t.items(&w, Folder::Calendar).len(),
        calendar.len(),
        "no duplicate events"
    );
    assert_eq!(
        t.items(&w, Folder::Tasks).len(),
        tasks.len(),
        "no duplicate tasks"
    );
    run(hub, FlowKind::Contacts).await;
    assert_eq!(
        t.items(&w, Folder::Contacts).len(),
        contacts.len(),
        "no duplicate contacts"
    );
    assert_eq!(
        appointments(&w).len(),
        before,
        "nothing imported back: {:?}",
        appointments(&w)
    );
    assert_eq!(run(hub, FlowKind::Appointments).await, (0, 0));
}

async fn only_date_and_time_changes_of_psa_appointments_flow_back(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    let appointment = seed_psa(&w);
    setup(&w, t, |_| {}, None).await;
    cycle(hub).await;
    let (event_id, _) = t
        .items(&w, Folder::Calendar)
        .into_iter()
        .find(|(_, s)| s == "Quarterly review")
        .unwrap();

    // In Outlook: moved by two hours and renamed.
    edit_in_exchange(
        hub,
        &calendar_scope(),
        &event_id,
        &["start", "end", "subject"],
        |b| {
            let ItemBody::Event(e) = b else {
                unreachable!()
            };
            e.start.utc = at(1, 11);
            e.end.utc = at(1, 12);
            e.subject = Some("Renamed in Outlook".into());
        },
    )
    .await;
    // The import reads the calendar and relays the moved event to the appointments profile.
    run(hub, FlowKind::Import).await;
    run(hub, FlowKind::Appointments).await;
    let row = w.sim.autotask().get("Appointments", appointment).unwrap();
    assert_eq!(
        row["startDateTime"],
        json!(at(1, 11)),
        "the new time flowed back: {row}"
    );
    assert_eq!(row["endDateTime"], json!(at(1, 12)), "{row}");
    assert_eq!(
        row["title"],
        json!("Quarterly review"),
        "the subject did not flow back: {row}"
    );
    // The PSA's subject is put back in Exchange; the moved time stays.
    run(hub, FlowKind::Appointments).await;
    let event = exchange_item(hub, &calendar_scope(), &event_id).await;
    let Some(ItemBody::Event(e)) = &event.body else {
        panic!()
    };
    assert_eq!(e.subject.as_deref(), Some("Quarterly review"));
    assert_eq!(e.start.utc, at(1, 11));
    // Settled: nothing more to write either way.
    assert_eq!(run(hub, FlowKind::Appointments).await, (0, 0));

    // Deleted in Outlook: the PSA appointment stays.
    delete_in_exchange(hub, &calendar_scope(), &event_id).await;
    cycle(hub).await;
    assert!(
        w.sim.autotask().get("Appointments", appointment).is_some(),
        "a delete in Exchange does not flow back"
    );
}

async fn exchange_appointments_are_imported_once_with_the_chosen_detail(t: Transport) {
    imported_once(&world().await, t).await;
}

async fn imported_once(w: &World, t: Transport) {
    let hub = &w.t.hub;
    setup(
        w,
        t,
        |s| {
            s.sync.import_appointments = ImportAppointments::All;
            s.sync.import_free_time = false;
        },
        None,
    )
    .await;
    t.outlook_event(w, "Dentist", &at(1, 14), &at(1, 15), Marked::Plain)
        .await;
    t.outlook_event(w, "Focus time", &at(2, 8), &at(2, 9), Marked::Plain)
        .await;
    t.outlook_event(w, "Doctor", &at(3, 8), &at(3, 9), Marked::Private)
        .await;
    t.outlook_event(w, "Maybe lunch", &at(4, 12), &at(4, 13), Marked::Free)
        .await;

    cycle(hub).await;
    let rows = appointments(w);
    let titles: Vec<&str> = rows.iter().filter_map(|r| r["title"].as_str()).collect();
    assert!(titles.contains(&"Dentist"), "{titles:?}");
    assert!(titles.contains(&"Focus time"), "{titles:?}");
    assert!(
        !titles.contains(&"Maybe lunch"),
        "free time is skipped: {titles:?}"
    );
    assert!(
        !titles.contains(&"Doctor"),
        "a private appointment has no detail: {titles:?}"
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    let dentist = rows
        .iter()
        .find(|r| r["title"] == json!("Dentist"))
        .unwrap();
    assert_eq!(dentist["startDateTime"], json!(at(1, 14)));

    // Imported once, and never written back to Exchange as a PSA appointment.
    let calendar = t.items(w, Folder::Calendar).len();
    cycle(hub).await;
    cycle(hub).await;
    assert_eq!(appointments(w).len(), 3, "{:?}", appointments(w));
    assert_eq!(
        t.items(w, Folder::Calendar).len(),
        calendar,
        "no ping-pong: {:?}",
        t.items(w, Folder::Calendar)
    );

    // "No detail": the next import of an Exchange appointment keeps start and end only.
    let mut s = exchange::get(hub, Actor::Msp, XP).await.unwrap().settings;
    s.sync.import_appointments = ImportAppointments::NoDetail;
    exchange::update(hub, Actor::Msp, XP, s, None)
        .await
        .unwrap();
    t.outlook_event(w, "Board meeting", &at(5, 9), &at(5, 10), Marked::Plain)
        .await;
    run(hub, FlowKind::Import).await;
    let rows = appointments(w);
    assert!(
        !rows.iter().any(|r| r["title"] == json!("Board meeting")),
        "no detail: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r["startDateTime"] == json!(at(5, 9))),
        "but the time is there: {rows:?}"
    );
}

async fn a_kind_turned_off_stops_and_the_org_allow_limits_the_resource(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    let off = ResourceSettings {
        psa_appointments_to_exchange: true,
        exchange_appointments_to_psa: true,
        contacts: false,
        service_calls: false,
        todos: false,
    };
    setup(&w, t, |s| s.sync.allow_service_calls = true, Some(off)).await;
    cycle(hub).await;
    assert!(
        !t.items(&w, Folder::Calendar)
            .iter()
            .any(|(_, s)| s.contains("Server swap")),
        "service calls are off for this resource"
    );
    assert!(t.items(&w, Folder::Tasks).is_empty(), "to-dos are off");
    let settings = syncbridge::engine::profiles::settings(hub.store(), &id(FlowKind::Todos)).await;
    assert!(settings.is_err() || !settings.unwrap().enabled);

    // The organisation takes appointments away: the resource's toggle no longer counts.
    let mut s = exchange::get(hub, Actor::Msp, XP).await.unwrap().settings;
    s.sync.allow_appointments = false;
    exchange::update(hub, Actor::Msp, XP, s, None)
        .await
        .unwrap();
    let appointments_on =
        syncbridge::engine::profiles::settings(hub.store(), &id(FlowKind::Appointments))
            .await
            .unwrap()
            .enabled;
    assert!(
        !appointments_on,
        "allow_appointments off disables the resource's appointments"
    );
    // Saving with the whole profile disabled stops every flow profile, links kept.
    let mut s = exchange::get(hub, Actor::Msp, XP).await.unwrap().settings;
    s.enabled = false;
    let saved = exchange::update(hub, Actor::Msp, XP, s, None)
        .await
        .unwrap();
    assert!(saved.queued_runs.is_empty());
    for row in exchange_flow::rows(hub, XP).await.unwrap() {
        let s = syncbridge::engine::profiles::settings(hub.store(), &row.profile_id)
            .await
            .unwrap();
        assert!(!s.enabled, "{} still scheduled", row.profile_id);
    }
}

/// A user whose mailbox access is refused is disabled alone. On EWS: each user signs in with
/// their own credentials and Tess's is wrong (401). On Graph the app signs in with
/// application permissions, so there is no per-user password: the analogue is the app being
/// refused one mailbox. Exchange Online does that with an application access policy
/// (`New-ApplicationAccessPolicy -AccessRight DenyAccess` for the user, or a RestrictAccess
/// policy whose group lacks her): Graph answers her mailbox's calls 403 `ErrorAccessDenied`
/// ("Blocked by tenant configured AppOnly AccessPolicy settings") while the app's token and
/// every other mailbox keep working. The simulator's `deny_mailbox_access` plays that policy.
async fn a_refused_user_disables_only_that_resource(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    match t {
        Transport::Ews => {
            // Each user's own credentials; Tess's is wrong.
            setup(&w, t, |s| s.account.use_for_users = false, None).await;
            resources::set_own_credential(
                hub,
                Actor::Msp,
                XP,
                RESOURCE,
                syncbridge::secrets::Credential::Basic {
                    username: MAILBOX.into(),
                    password: SecretString::new("wrong"),
                },
            )
            .await
            .unwrap();
        }
        Transport::Graph => {
            setup(&w, t, |_| {}, None).await;
            assert!(w.sim.graph().deny_mailbox_access(GRAPH_TENANT, MAILBOX));
        }
    }
    // The import reads her calendar (the other calendar profiles take its relays).
    let record = common::run_now(hub, &id(FlowKind::Import), RunMode::Run).await;
    assert!(common::outcome(record).is_err(), "the run fails");
    let r = assert_disabled_alone(hub).await;
    assert!(r.last_attempted_at.is_some(), "the attempt is recorded");
    let settings = syncbridge::engine::profiles::settings(hub.store(), &id(FlowKind::Appointments))
        .await
        .unwrap();
    assert!(!settings.enabled, "its engine profiles stop");
}

async fn a_server_that_is_down_opens_one_incident_until_it_works_again(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    setup(&w, t, |_| {}, None).await;
    w.sim
        .add_fault(syncbridge_sim::FaultRule::drop_connection(t.server_paths()))
        .unwrap();
    let outbox = syncbridge::notify::RecordingNotifier::new();
    let runner = syncbridge::runner::Runner::new(hub.clone(), "test", common::LEASE).with_notifier(
        Arc::new(outbox.clone()),
        Some(syncbridge::notify::Recipients::parse("fallback@msp.example").unwrap()),
    );
    for _ in 0..2 {
        let record = runner
            .run_now(
                syncbridge::runner::RunNow {
                    profile: &id(FlowKind::Import),
                    mode: RunMode::Run,
                    plan: None,
                    trigger: "manual",
                },
                &syncbridge::runner::NoProgress,
            )
            .await
            .unwrap();
        let error = common::outcome(record).expect_err("the run fails");
        assert!(
            error.contains("source"),
            "the calendar, its source: {error}"
        );
    }
    // One mail for the incident, to the profile's list, with the cause; not one per run.
    let sent = outbox.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (to, mail) = &sent[0];
    assert!(format!("{to:?}").contains("ops@msp.example"), "{to:?}");
    assert!(
        format!("{mail:?}").contains("could not be used"),
        "{mail:?}"
    );
    let incidents = |all: Vec<alerts::Alert>| {
        all.into_iter()
            .filter(|a| a.code == "exchange_profile_failed" && a.resolved_at.is_none())
            .count()
    };
    let open = alerts::list(hub.store(), None, None, true).await.unwrap();
    assert_eq!(incidents(open), 1, "one incident for two failed runs");
    w.sim.clear_faults();
    run(hub, FlowKind::Import).await;
    let open = alerts::list(hub.store(), None, None, true).await.unwrap();
    assert_eq!(incidents(open), 0, "a run that works ends the incident");
}

/// Graph only: a user whose mailbox Exchange Online cannot serve (here: her licence was taken
/// away, so Graph answers her mailbox's calls 404 `MailboxNotEnabledForRESTAPI`) is disabled
/// alone, as a refused user is. EWS has no such answer (a mailbox is on the server or not).
/// The `graph` connector tells that 404 from a missing item's (which would read as her
/// linked events deleted by hand, and a delete as done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_an_exchange_online_mailbox_is_disabled_alone_on_graph() {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    setup(&w, Transport::Graph, |_| {}, None).await;
    cycle(hub).await;
    assert!(!Transport::Graph.items(&w, Folder::Calendar).is_empty());
    assert!(w
        .sim
        .graph()
        .update_user(GRAPH_TENANT, GRAPH_TESS, json!({"assignedLicenses": []})));
    let record = common::run_now(hub, &id(FlowKind::Import), RunMode::Run).await;
    let error = common::outcome(record).expect_err("the run fails");
    assert!(error.contains("MailboxNotEnabledForRESTAPI"), "{error}");
    assert_disabled_alone(hub).await;
}

async fn a_to_do_moved_in_exchange_moves_in_the_psa(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    setup(&w, t, |_| {}, None).await;
    run(hub, FlowKind::Todos).await;
    let (task_id, _) = t
        .items(&w, Folder::Tasks)
        .into_iter()
        .find(|(_, s)| s.contains("Call Ann"))
        .unwrap();
    let scope = format!("tasks:mailbox={MAILBOX}");
    edit_in_exchange(hub, &scope, &task_id, &["due", "subject"], |b| {
        let ItemBody::Todo(t) = b else { unreachable!() };
        t.due.as_mut().unwrap().utc = at(6, 10);
        t.subject = "Renamed in Outlook".into();
    })
    .await;
    run(hub, FlowKind::Todos).await;
    let todo = w
        .sim
        .autotask()
        .rows("ToDos")
        .into_iter()
        .find(|r| r["assignedToResourceID"] == json!(30))
        .unwrap();
    assert_eq!(
        todo["endDateTime"].as_str().map(|s| &s[..10]),
        Some(&at(6, 10)[..10]),
        "the due date flowed back: {todo}"
    );
    assert_eq!(
        todo["activityDescription"],
        json!("Call Ann about the quote"),
        "the subject did not: {todo}"
    );
}

async fn an_imported_appointment_that_leaves_the_window_stays_until_deleted(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    setup(&w, t, |s| s.sync.past_days = 5, None).await;
    let scope = format!("calendar:mailbox={MAILBOX},past=5,future=30");
    let dentist = t
        .outlook_event(&w, "Dentist", &at(1, 14), &at(1, 15), Marked::Plain)
        .await;
    run(hub, FlowKind::Import).await;
    let imported = |w: &World| {
        appointments(w)
            .into_iter()
            .filter(|r| r["title"] == json!("Dentist"))
            .count()
    };
    assert_eq!(imported(&w), 1);

    // Moved in Outlook to three weeks ago: outside the five past days.
    edit_in_exchange(hub, &scope, &dentist, &["start", "end"], |b| {
        let ItemBody::Event(e) = b else {
            unreachable!()
        };
        e.start.utc = at(-20, 14);
        e.end.utc = at(-20, 15);
    })
    .await;
    run(hub, FlowKind::Import).await;
    assert_eq!(imported(&w), 1, "left the window: kept");
    // A full reconcile reads the window again and does not find it: still kept.
    syncbridge::engine::profiles::request_profile_resync(hub.store(), &id(FlowKind::Import))
        .await
        .unwrap();
    run(hub, FlowKind::Import).await;
    assert_eq!(
        imported(&w),
        1,
        "not seen in a full pass, but not deleted: kept"
    );

    // Deleted in Outlook: removed from the PSA.
    delete_in_exchange(hub, &scope, &dentist).await;
    run(hub, FlowKind::Import).await;
    assert_eq!(
        imported(&w),
        0,
        "a deletion in Exchange removes the imported appointment"
    );
}

/// The PSA's appointments are read once per cycle: the appointments profile reads them and
/// relays to the import the ones it wrote (taken at the import's next run), instead of the
/// import reading them again. One the import wrote, edited by hand in Autotask, reaches the
/// import that way and is not sent to Exchange as a PSA appointment of its own.
async fn the_psa_appointments_are_read_once_per_cycle(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    setup(&w, t, |_| {}, None).await;
    t.outlook_event(&w, "Dentist", &at(1, 14), &at(1, 15), Marked::Plain)
        .await;
    cycle(hub).await;
    cycle(hub).await;
    let psa_queries = |w: &World| {
        w.sim
            .requests()
            .routes
            .get("POST /ATServicesRest/V1.0/Appointments/query")
            .copied()
    };
    w.sim.reset_requests();
    cycle(hub).await;
    assert_eq!(psa_queries(&w), Some(1), "read once in a cycle");

    let dentist = appointments(&w)
        .into_iter()
        .find(|r| r["title"] == json!("Dentist"))
        .expect("imported");
    let calendar = t.items(&w, Folder::Calendar).len();
    w.sim.autotask().edit(
        "Appointments",
        dentist["id"].as_i64().unwrap(),
        json!({"title": "Dentist (edited)"}),
    );
    cycle(hub).await;
    let waiting: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM relayed_changes WHERE profile_id = $1")
            .bind(id(FlowKind::Import))
            .fetch_one(hub.store().pool())
            .await
            .unwrap();
    assert_eq!(waiting, 1, "the edit is relayed to the import");
    cycle(hub).await;
    assert_eq!(appointments(&w).len(), 1, "{:?}", appointments(&w));
    assert_eq!(
        t.items(&w, Folder::Calendar).len(),
        calendar,
        "no ping-pong: {:?}",
        t.items(&w, Folder::Calendar)
    );
}

async fn an_outlook_series_is_imported_as_its_occurrences_within_the_recurring_days(t: Transport) {
    series_imported(&world().await, t).await;
}

async fn series_imported(w: &World, t: Transport) {
    let hub = &w.t.hub;
    setup(w, t, |s| s.sync.recurring_days = 20, None).await;
    // Weekly from tomorrow at 09:00 UTC, six times: days 1, 8, 15, 22, 29 and 36.
    let master = t
        .outlook_series(w, "Standup", (&at(1, 9), &at(1, 10)), 6, false)
        .await;
    // In Outlook the second is moved to day 9 at 14:00, the third deleted.
    t.outlook_occurrence(w, &master, 2, Some((at(9, 14), at(9, 15))))
        .await;
    t.outlook_occurrence(w, &master, 3, None).await;
    let standups = |w: &World| -> Vec<String> {
        let mut starts: Vec<String> = appointments(w)
            .into_iter()
            .filter(|r| r["title"] == json!("Standup"))
            .map(|r| r["startDateTime"].as_str().unwrap_or_default().to_owned())
            .collect();
        starts.sort();
        starts
    };

    run(hub, FlowKind::Import).await;
    assert_eq!(
        standups(w),
        [at(1, 9), at(9, 14)],
        "one appointment per occurrence within the 20 recurring days, the moved one where it \
         went, none for the deleted one or for those further ahead"
    );
    // Nothing twice: the whole cycle, and a full reconcile, find nothing to write.
    cycle(hub).await;
    syncbridge::engine::profiles::request_profile_resync(hub.store(), &id(FlowKind::Import))
        .await
        .unwrap();
    assert_eq!(run(hub, FlowKind::Import).await, (0, 0));
    assert_eq!(standups(w), [at(1, 9), at(9, 14)]);

    // An occurrence deleted in Outlook later: its appointment goes at the next run.
    t.outlook_occurrence(w, &master, 1, None).await;
    run(hub, FlowKind::Import).await;
    assert_eq!(
        standups(w),
        [at(9, 14)],
        "the deleted occurrence is removed"
    );

    // The series deleted: all that is left of it goes.
    delete_in_exchange(hub, &calendar_scope(), &master).await;
    run(hub, FlowKind::Import).await;
    assert!(standups(w).is_empty(), "{:?}", standups(w));
}

async fn a_series_deleted_in_outlook_is_one_change_for_the_brakes(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    setup(&w, t, |s| s.sync.recurring_days = 20, None).await;
    // Daily from tomorrow, fifteen times, beside one single appointment: the series' fifteen
    // occurrences are almost all the import's links.
    let daily = t
        .outlook_series(&w, "Daily check", (&at(1, 8), &at(1, 9)), 15, true)
        .await;
    t.outlook_event(&w, "Dentist", &at(2, 14), &at(2, 15), Marked::Plain)
        .await;
    run(hub, FlowKind::Import).await;
    let checks = |w: &World| {
        appointments(w)
            .iter()
            .filter(|r| r["title"] == json!("Daily check"))
            .count()
    };
    assert_eq!(checks(&w), 15);
    // Deleted in Outlook: fifteen removals (94 % of the links), yet one change, not a mass
    // deletion the brakes hold for approval.
    delete_in_exchange(hub, &calendar_scope(), &daily).await;
    let (applied, failed) = run(hub, FlowKind::Import).await;
    assert_eq!((applied, failed), (15, 0));
    assert_eq!(checks(&w), 0, "the series' appointments are gone");
}

async fn psa_items_older_than_the_past_days_are_not_sent_and_aged_ones_stay(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    let current = seed_psa(&w);
    w.sim.autotask().insert(
        "Appointments",
        json!({"resourceID": 30, "title": "Old offsite", "startDateTime": at(-40, 9), "endDateTime": at(-40, 17)}),
    );
    setup(&w, t, |s| s.sync.past_days = 30, None).await;
    run(hub, FlowKind::Appointments).await;
    let subjects = |w: &World| {
        t.items(w, Folder::Calendar)
            .into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
    };
    assert!(subjects(&w).contains(&"Quarterly review".to_owned()));
    assert!(
        !subjects(&w).contains(&"Old offsite".to_owned()),
        "ended 40 days ago, past_days 30: not sent"
    );
    // The review is moved in Autotask to six weeks ago: it ages out of the window, and the
    // event it was written as stays in Exchange, also after a full reconcile.
    w.sim.autotask().edit(
        "Appointments",
        current,
        json!({"startDateTime": at(-42, 9), "endDateTime": at(-42, 10)}),
    );
    run(hub, FlowKind::Appointments).await;
    syncbridge::engine::profiles::request_profile_resync(hub.store(), &id(FlowKind::Appointments))
        .await
        .unwrap();
    run(hub, FlowKind::Appointments).await;
    assert!(
        subjects(&w).contains(&"Quarterly review".to_owned()),
        "aged out of the window: kept, {:?}",
        subjects(&w)
    );
}

/// EWS only: Graph has no public folders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_folder_holds_all_psa_contacts_on_ews() {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    w.sim.autotask().insert(
        "Contacts",
        json!({"companyID": 1, "firstName": "Bo", "lastName": "Other", "isActive": 1}),
    );
    setup(
        &w,
        Transport::Ews,
        |s| s.sync.public_folder_all_contacts = true,
        None,
    )
    .await;
    let public = exchange_flow::profile_id(XP, FlowKind::PublicContacts, None);
    let r = common::outcome(common::run_now(hub, &public, RunMode::Run).await).unwrap();
    assert_eq!((r.applied, r.failed), (2, 0), "{r:?}");
    let r = common::outcome(common::run_now(hub, &public, RunMode::Run).await).unwrap();
    assert_eq!(r.applied, 0, "nothing twice: {r:?}");
}

/// A resource's import (which reads the calendar and relays its changes) is queued before
/// the profiles it relays to, so a time moved in Outlook flows back in the same cycle: when
/// the resource is enabled, and by the scheduler at each interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relaying_import_is_queued_first() {
    let w = world().await;
    let hub = &w.t.hub;
    setup(&w, Transport::Ews, |_| {}, None).await;
    let runs = syncbridge::control::runs::Runs::new(hub.store().clone());
    let queued_order = |mut queued: Vec<syncbridge::control::runs::RunRecord>| {
        queued.sort_by_key(|r| r.requested_at);
        queued
            .into_iter()
            .map(|r| r.profile_id)
            .collect::<Vec<String>>()
    };
    let on_enable = queued_order(runs.list(Default::default()).await.unwrap());
    assert_eq!(on_enable.len(), 4, "four kinds are on: {on_enable:?}");
    assert_eq!(on_enable[0], id(FlowKind::Import), "{on_enable:?}");

    // Claimed in that order; those runs done, the next pass of the scheduler an interval later.
    let runner = syncbridge::runner::Runner::new(hub.clone(), "test", common::LEASE);
    let mut claimed = Vec::new();
    while let Some(run) = runs.claim_next("test", common::LEASE).await.unwrap() {
        claimed.push(run.profile_id.clone());
        runner
            .execute(run, &syncbridge::runner::NoProgress)
            .await
            .unwrap();
    }
    assert_eq!(claimed, on_enable, "claimed in the order queued");
    let later = syncbridge::store::now_ms() + 16 * 60 * 1000;
    let pass = syncbridge::scheduler::enqueue_due(hub.store(), later)
        .await
        .unwrap();
    let by_scheduler: Vec<String> = pass.runs.into_iter().map(|r| r.profile_id).collect();
    assert_eq!(by_scheduler.len(), 4, "{by_scheduler:?}");
    assert_eq!(by_scheduler[0], id(FlowKind::Import), "{by_scheduler:?}");
}

/// The transport plays no part in taking turns: EWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_resource_take_turns() {
    take_turns(&world().await).await;
}

/// The import and its no-duplicate rule, and the turns of one resource's runs, on
/// PostgreSQL (the flow's own queries: derived profiles, links of the other direction,
/// a series' occurrences by id prefix, running siblings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_series_and_turns_hold_on_postgres() {
    let Some(url) = common::postgres_url("flow1_import").await else {
        return;
    };
    imported_once(&world_with(true, Some(&url)).await, Transport::Ews).await;
    // A series' occurrences are found among the links by id prefix.
    let Some(url) = common::postgres_url("flow1_series").await else {
        return;
    };
    series_imported(&world_with(true, Some(&url)).await, Transport::Ews).await;
    let Some(url) = common::postgres_url("flow1_turns").await else {
        return;
    };
    take_turns(&world_with(true, Some(&url)).await).await;
}

async fn take_turns(w: &World) {
    use syncbridge::control::runs::{NewRun, RunStatus, Runs};
    let hub = &w.t.hub;
    seed_psa(w);
    setup(w, Transport::Ews, |_| {}, None).await;
    // Another worker holds an earlier run of the resource's import.
    let runs = Runs::new(hub.store().clone());
    runs.cancel_queued(&id(FlowKind::Import), "test")
        .await
        .unwrap();
    let held = runs
        .start_now(
            NewRun {
                profile_id: &id(FlowKind::Import),
                company_id: None,
                trigger: "schedule",
                mode: RunMode::Run,
                plan_id: None,
            },
            "other-worker",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let later = {
        let hub = hub.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            common::run_now(&hub, &id(FlowKind::Appointments), RunMode::Run).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        !later.is_finished(),
        "the later run waits for the earlier one of its resource"
    );
    let calendar = |w: &World| Transport::Ews.items(w, Folder::Calendar);
    assert!(
        !calendar(w).iter().any(|(_, s)| s == "Quarterly review"),
        "and writes nothing meanwhile"
    );
    runs.finish(
        &held.id,
        "other-worker",
        RunStatus::Succeeded,
        None,
        None,
        None,
    )
    .await
    .unwrap();
    let record = later.await.unwrap();
    common::outcome(record).unwrap();
    assert!(calendar(w).iter().any(|(_, s)| s == "Quarterly review"));
}

/// A cycle over a resource whose items did not change writes nothing to either side and reads
/// each side in one round per profile (the numbers are printed for the record).
async fn a_cycle_with_nothing_changed_writes_nothing(t: Transport) {
    let w = world().await;
    let hub = &w.t.hub;
    seed_psa(&w);
    setup(&w, t, |s| s.sync.allow_contacts = true, None).await;
    t.outlook_event(&w, "Dentist", &at(1, 14), &at(1, 15), Marked::Plain)
        .await;
    cycle(hub).await;
    run(hub, FlowKind::Contacts).await;
    cycle(hub).await;
    run(hub, FlowKind::Contacts).await;

    w.sim.reset_requests();
    cycle(hub).await;
    run(hub, FlowKind::Contacts).await;
    let stats = w.sim.requests();
    eprintln!("no-change cycle over 5 profiles ({t:?}): {stats:?}");
    let writes: Vec<_> = stats
        .routes
        .iter()
        .filter(|(route, _)| {
            route.starts_with("PATCH")
                || route.starts_with("PUT")
                || route.starts_with("DELETE")
                || (route.starts_with("POST")
                    && !route.ends_with("/query")
                    && !route.contains("oauth2")
                    && !route.contains("$batch")
                    && !route.contains("Exchange.asmx"))
        })
        .collect();
    assert!(writes.is_empty(), "nothing written: {writes:?}");
    // One round per folder: the import reads the calendar and relays what the appointments
    // and service-calls profiles wrote to them; to-dos and contacts read their folders.
    match t {
        Transport::Ews => {
            assert_eq!(
                stats.operations.get("EWS SyncFolderItems"),
                Some(&3),
                "one SyncFolderItems per folder (calendar, tasks, contacts): {stats:?}"
            );
            assert_eq!(stats.count_matching("Exchange.asmx"), 3, "{stats:?}");
        }
        Transport::Graph => {
            assert_eq!(
                stats.count_matching("calendarView"),
                1,
                "one calendar delta round: {stats:?}"
            );
        }
    }
    // Five profiles, each one round on each side: at most two requests per profile and
    // side-read, plus the PSA's zone lookup and the token.
    assert!(stats.total <= 24, "{stats:?}");
}

/// Tess's resource is disabled with its alert, while the profile's connection goes on and no
/// profile-level incident opens; the resource as stored.
async fn assert_disabled_alone(hub: &Arc<Hub>) -> resources::Resource {
    let r = resources::get(hub, Actor::Msp, XP, RESOURCE).await.unwrap();
    assert!(!r.enabled, "the resource is disabled: {r:?}");
    assert!(
        hub.store()
            .connection_stopped("contoso-exchange")
            .await
            .unwrap()
            .is_none(),
        "the profile's connection goes on for the other resources"
    );
    let open = alerts::list(hub.store(), None, None, true).await.unwrap();
    assert!(
        open.iter()
            .any(|a| a.code == "exchange_resource_auth_failed"),
        "{open:?}"
    );
    assert!(
        !open.iter().any(|a| a.code == "exchange_profile_failed"),
        "not a profile-level incident: {open:?}"
    );
    r
}
