//! A connector that misbehaves on purpose, to prove the sandbox holds.
//!
//! `pull` chooses its behaviour from the scope:
//! - `loop`: spins forever;
//! - `hog`: allocates without bound;
//! - `forbidden:<url>`: calls a URL the host must refuse;
//! - `fetch:<url>`: calls a URL and reports the status as the cursor;
//! - `panic`: panics;
//! - `host-calls:<n>`: calls the host clock `n` times (benchmarks);
//! - `state:<n>`: writes and reads state `n` times;
//! - `sleep-http:<url>`: a slow request, for timeouts of host calls;
//! - `fetch-scan:<url>|<reversed needle>`: fetches `url` with the `default`
//!   credential, then searches its own linear memory for the needle (given
//!   reversed, so the forward bytes never exist unless something put them
//!   there) and answers `found` or `absent` as the cursor;
//! - `appointments`: one core weekly appointment (`ap-1`, "Standup") in
//!   the Windows zone `W. Europe Standard Time`, with an excluded date and
//!   two attendees (WIT 0.1.4 mappers turn it into a mailbox event);
//! - anything else: returns an empty page.
//!
//! `calendar:` scopes are served through `mailbox-api` (WIT 0.1.3): `pull`
//! answers one all-day private event in Europe/Berlin, `lookup` one event per
//! key, and `push` answers each op with `<action>:<subject>` as the target id,
//! so the host's routing and conversions can be checked without a service.
//! A `fetch=<url>` option (last in the scope) makes `pull` call that URL first.

use syncbridge_sdk::http::Request;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{clock, state};

/// The connector.
pub struct Misbehave;

fn page(cursor: Option<String>) -> Page {
    Page {
        items: Vec::new(),
        cursor,
        more: false,
        full: true,
    }
}

fn event(subject: &str) -> mailbox::MailboxBody {
    use mailbox::*;
    let zone = Some(Zone {
        iana: "Europe/Berlin".into(),
        windows: Some("W. Europe Standard Time".into()),
    });
    MailboxBody::Event(Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some(subject.into()),
        start: EventTime {
            utc: "2026-03-23T23:00:00Z".into(),
            zone: zone.clone(),
        },
        end: EventTime {
            utc: "2026-03-24T23:00:00Z".into(),
            zone,
        },
        all_day: true,
        show_as: ShowAs::Free,
        sensitivity: Sensitivity::Private,
        series: Some(Series {
            rrule: "FREQ=WEEKLY;BYDAY=TU;COUNT=3".into(),
            zone: Zone {
                iana: "Europe/Berlin".into(),
                windows: Some("W. Europe Standard Time".into()),
            },
            modified: Vec::new(),
            deleted: vec!["2026-03-30T22:00:00Z".into()],
        }),
        organizer: None,
        attendees: vec![Participant {
            address: EmailAddress {
                address: "bob@contoso.test".into(),
                name: None,
            },
            role: AttendeeRole::Optional,
            response: Response::Tentative,
        }],
        location: None,
        categories: Vec::new(),
        body: None,
        reminder_minutes: Some(15),
        anchor: Some("anchor-1".into()),
    })
}

/// The one item of the `appointments` scope.
fn appointment() -> Item {
    let at = |utc: &str| ZonedTime {
        utc: utc.into(),
        time_zone: Some("W. Europe Standard Time".into()),
    };
    let attendee = |email: &str, role, response: Option<&str>| Attendee {
        email: email.into(),
        name: Some(email.split('@').next().unwrap_or_default().into()),
        role,
        response: response.map(str::to_owned),
    };
    Item {
        id: "ap-1".into(),
        version: Some("v1".into()),
        removed: None,
        body: Some(ItemBody::Appointment(Appointment {
            subject: Some("Standup".into()),
            start: at("2026-11-24T08:00:00Z"),
            end: at("2026-11-24T08:15:00Z"),
            all_day: false,
            show_as: ShowAs::Busy,
            sensitivity: Sensitivity::Normal,
            recurrence: Some(Recurrence {
                rrule: "FREQ=WEEKLY;BYDAY=TU;UNTIL=20271231T235959Z".into(),
                exdates: vec!["2026-12-29T08:00:00Z".into()],
            }),
            organizer: Some("ada@contoso.test".into()),
            attendees: vec![
                attendee("bob@contoso.test", AttendeeRole::Required, Some("accepted")),
                attendee("room1@contoso.test", AttendeeRole::Resource, None),
            ],
            location: Some("Room 1".into()),
            body: Some("Daily, but weekly".into()),
            categories: vec!["Team".into()],
        })),
    }
}

impl Connector for Misbehave {
    type Config = syncbridge_sdk::config::AnyObject;

    fn mailbox_scopes() -> Vec<String> {
        vec!["calendar".into()]
    }

    fn pull_mailbox(
        _config: &Self::Config,
        request: PullRequest,
    ) -> Result<mailbox::MailboxPage, PluginError> {
        if let Some((_, url)) = request.scope.split_once("fetch=") {
            Request::get(url).send()?;
        }
        Ok(mailbox::MailboxPage {
            items: vec![mailbox::MailboxItem {
                id: "ev-1".into(),
                version: Some("ck-1".into()),
                removed: None,
                body: Some(event("Offsite")),
            }],
            cursor: Some("sync-state-1".into()),
            more: false,
            full: true,
        })
    }

    fn lookup_mailbox(
        _config: &Self::Config,
        _scope: &str,
        keys: Vec<String>,
    ) -> Result<Vec<mailbox::MailboxItem>, PluginError> {
        Ok(keys
            .into_iter()
            .map(|key| mailbox::MailboxItem {
                body: Some(event(&key)),
                id: key,
                version: None,
                removed: None,
            })
            .collect())
    }

    fn push_mailbox(
        _config: &Self::Config,
        _scope: &str,
        batch: Vec<mailbox::MailboxWriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        Ok(syncbridge_sdk::batch::push_each(batch, |op| {
            let subject = match &op.body {
                Some(mailbox::MailboxBody::Event(e)) => e.subject.clone().unwrap_or_default(),
                _ => return Err(PluginError::invalid("only events")),
            };
            let action = match op.action {
                WriteAction::Create => "create",
                WriteAction::Update => "update",
                WriteAction::Deactivate => "deactivate",
                WriteAction::Reactivate => "reactivate",
                WriteAction::Delete => "delete",
            };
            Ok(WriteOk {
                target_id: format!("{action}:{subject}"),
                version: None,
            })
        }))
    }

    fn describe() -> Description {
        Description::named("misbehave")
    }

    fn pull(_config: &Self::Config, request: PullRequest) -> Result<Page, PluginError> {
        let scope = request.scope.as_str();
        let (verb, arg) = scope.split_once(':').unwrap_or((scope, ""));
        match verb {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("misbehave was asked to panic"),
            "appointments" => Ok(Page {
                items: vec![appointment()],
                ..page(None)
            }),
            "forbidden" | "fetch" | "sleep-http" => {
                let response = Request::get(arg).send()?;
                Ok(page(Some(response.status().to_string())))
            }
            "fetch-scan" => {
                let (url, reversed) = arg.split_once('|').unwrap_or((arg, ""));
                let response = Request::get(url).credential("default").send()?;
                std::hint::black_box(response.bytes());
                let found = memory_contains_reversed(reversed.as_bytes());
                Ok(page(Some(if found { "found" } else { "absent" }.into())))
            }
            "host-calls" => {
                let n: u64 = arg.parse().unwrap_or(0);
                let mut acc = 0u64;
                for _ in 0..n {
                    acc = acc.wrapping_add(clock::now_ms());
                }
                Ok(page(Some(acc.to_string())))
            }
            "state" => {
                let n: u64 = arg.parse().unwrap_or(0);
                for i in 0..n {
                    state::set("counter", &i.to_string());
                }
                Ok(page(state::get("counter")))
            }
            _ => Ok(page(None)),
        }
    }
}

/// Searches all of linear memory for the reverse of `reversed`, comparing
/// byte by byte so the forward pattern is never built.
#[cfg(target_arch = "wasm32")]
fn memory_contains_reversed(reversed: &[u8]) -> bool {
    let n = reversed.len();
    if n == 0 {
        return false;
    }
    let size = core::arch::wasm32::memory_size(0) * 65536;
    let base = core::ptr::null::<u8>();
    (1..size.saturating_sub(n)).any(|start| {
        (0..n).all(|i| {
            // SAFETY: every address below memory_size is readable in wasm.
            let byte = unsafe { core::ptr::read_volatile(base.wrapping_add(start + i)) };
            byte == reversed[n - 1 - i]
        })
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn memory_contains_reversed(_reversed: &[u8]) -> bool {
    false
}

syncbridge_sdk::export_connector!(Misbehave);
