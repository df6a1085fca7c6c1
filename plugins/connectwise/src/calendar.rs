//! The calendar scopes: `members` (`/system/members` → `directory-user`),
//! `schedule-entries:member=<identifier>` (`/schedule/entries` → `appointment`) and
//! `activities:member=<identifier>` (`/sales/activities` → `task`): scope parsing, reading
//! with the overlapping change cursor, lookups and the mapping of rows to canonical items.

use serde_json::Value;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{paging, scope};

use crate::overlap::{self, ChangeCursor};
use crate::{and, get_page, id_of, list_url, quote, text, version_of, Config, MAX_PAGE};

/// The calendar entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarEntity {
    Members,
    ScheduleEntries,
    Activities,
}

/// The schedule type new entries get unless the scope names one (`type=<identifier>`).
pub const DEFAULT_ENTRY_TYPE: &str = "M";

const USAGE: &str =
    "members, schedule-entries:member=<identifier>[,type=<schedule type identifier>] or activities:member=<identifier>";

/// A parsed calendar scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarScope {
    pub entity: CalendarEntity,
    /// The member whose entries or activities these are (`member=<identifier>`).
    pub member: Option<String>,
    /// The schedule type identifier new entries get (`type=`, default `M`).
    pub entry_type: String,
    /// The caller's own conditions (`conditions=`, the last option).
    pub conditions: Option<String>,
}

impl CalendarScope {
    /// The calendar scope `scope` names, if it names one.
    pub fn parse(scope: &str) -> Option<Result<Self, PluginError>> {
        let name = scope
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "");
        let entity = match name.as_str() {
            "members" => CalendarEntity::Members,
            "scheduleentries" => CalendarEntity::ScheduleEntries,
            "activities" => CalendarEntity::Activities,
            _ => return None,
        };
        Some(Self::parse_as(entity, scope))
    }

    fn parse_as(entity: CalendarEntity, scope: &str) -> Result<Self, PluginError> {
        let parsed = scope::Scope::parse(scope, &["member", "type"], Some("conditions"), USAGE)?;
        let member = parsed.option("member").map(|m| m.trim().to_owned());
        let entry_type = parsed.option("type").map(|t| t.trim().to_owned());
        match entity {
            CalendarEntity::Members if member.is_some() || entry_type.is_some() => {
                return Err(PluginError::invalid_field(
                    "scope",
                    "members takes no member or type option; use conditions=<conditions>",
                ))
            }
            CalendarEntity::ScheduleEntries | CalendarEntity::Activities if member.is_none() => {
                return Err(PluginError::invalid_field(
                    "scope",
                    format!("name the member: {USAGE}"),
                ))
            }
            CalendarEntity::Activities if entry_type.is_some() => {
                return Err(PluginError::invalid_field(
                    "scope",
                    "activities takes no type option",
                ))
            }
            _ => {}
        }
        Ok(Self {
            entity,
            member,
            entry_type: entry_type.unwrap_or_else(|| DEFAULT_ENTRY_TYPE.to_owned()),
            conditions: parsed.option("conditions").map(str::to_owned),
        })
    }

    /// The collection's path under the REST root.
    pub fn path(&self) -> &'static str {
        match self.entity {
            CalendarEntity::Members => "system/members",
            CalendarEntity::ScheduleEntries => "schedule/entries",
            CalendarEntity::Activities => "sales/activities",
        }
    }

    /// The scope's conditions: the member (`member/identifier`, `assignTo/identifier`) and the
    /// caller's own.
    pub fn conditions(&self) -> Option<String> {
        let member = self.member.as_deref().map(|m| match self.entity {
            CalendarEntity::Activities => format!("assignTo/identifier = {}", quote(m)),
            _ => format!("member/identifier = {}", quote(m)),
        });
        and(member, self.conditions.clone())
    }
}

/// One page of a calendar scope: a full read without a cursor, else what changed since it.
pub fn pull(
    cfg: &Config,
    root: &str,
    scope: &CalendarScope,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let mut cursor = ChangeCursor::parse(cursor, overlap::OVERLAP)?;
    let url = match &cursor.next {
        Some(next) => paging::same_origin(root, next)?,
        None => list_url(
            &format!("{root}/{}", scope.path()),
            and(scope.conditions(), overlap::condition(&cursor)?).as_deref(),
            None,
            max_items.clamp(1, MAX_PAGE),
        ),
    };
    let (rows, next) = get_page(cfg, &url)?;
    let closed = match scope.entity {
        CalendarEntity::Activities => closed_statuses(cfg, root)?,
        _ => Vec::new(),
    };
    let mut items = Vec::new();
    for row in &rows {
        if cursor.observe(&id_of(row), row["_info"]["lastUpdated"].as_str()) {
            items.push(to_item(scope.entity, row, &closed));
        }
    }
    Ok(cursor.page(items, next))
}

/// Looks rows of a calendar scope up by `id:<n>` (members also by `email:<address>`, their
/// `primaryEmail`), within the scope's member.
pub fn lookup(
    cfg: &Config,
    root: &str,
    scope: &CalendarScope,
    keys: &[String],
) -> Result<Vec<Item>, PluginError> {
    let mut ids = Vec::new();
    let mut emails = Vec::new();
    for key in keys {
        if let Some(id) = key.strip_prefix("id:") {
            ids.push(id.trim().parse::<i64>().map_err(|_| {
                PluginError::invalid_field("keys", format!("{key:?} is not a numeric id"))
            })?);
        } else if let (Some(a), CalendarEntity::Members) =
            (key.strip_prefix("email:"), scope.entity)
        {
            emails.push(a.trim().to_owned());
        } else {
            let usage = match scope.entity {
                CalendarEntity::Members => "id:<number> or email:<address>",
                _ => "id:<number>",
            };
            return Err(PluginError::invalid_field(
                "keys",
                format!("unknown key {key:?}; use {usage}"),
            ));
        }
    }
    let mut queries = Vec::new();
    for chunk in ids.chunks(100) {
        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>();
        queries.push(format!("id in ({})", list.join(",")));
    }
    for chunk in emails.chunks(25) {
        let any = chunk
            .iter()
            .map(|a| format!("primaryEmail = {}", quote(a)))
            .collect::<Vec<_>>();
        queries.push(any.join(" or "));
    }
    let closed = match scope.entity {
        CalendarEntity::Activities if !queries.is_empty() => closed_statuses(cfg, root)?,
        _ => Vec::new(),
    };
    let mut out: Vec<Item> = Vec::new();
    for q in queries {
        let mut url = list_url(
            &format!("{root}/{}", scope.path()),
            and(scope.conditions(), Some(q)).as_deref(),
            None,
            MAX_PAGE,
        );
        loop {
            let (rows, next) = get_page(cfg, &url)?;
            for row in &rows {
                let item = to_item(scope.entity, row, &closed);
                if !out.iter().any(|i| i.id == item.id) {
                    out.push(item);
                }
            }
            match next {
                Some(n) => url = paging::same_origin(root, &n)?,
                None => break,
            }
        }
    }
    Ok(out)
}

/// The activity statuses (`{id, name, closedFlag, defaultFlag}`).
pub fn activity_statuses(cfg: &Config, root: &str) -> Result<Vec<Value>, PluginError> {
    let (rows, _) = get_page(
        cfg,
        &format!("{root}/sales/activities/statuses?pageSize={MAX_PAGE}"),
    )?;
    Ok(rows)
}

fn closed_statuses(cfg: &Config, root: &str) -> Result<Vec<i64>, PluginError> {
    Ok(activity_statuses(cfg, root)?
        .iter()
        .filter(|s| s["closedFlag"].as_bool() == Some(true))
        .filter_map(|s| s["id"].as_i64())
        .collect())
}

/// A row of `entity` as a canonical item; `closed` are the ids of closed activity statuses.
pub fn to_item(entity: CalendarEntity, row: &Value, closed: &[i64]) -> Item {
    let body = match entity {
        CalendarEntity::Members => ItemBody::DirectoryUser(member(row)),
        CalendarEntity::ScheduleEntries => ItemBody::Appointment(entry(row)),
        CalendarEntity::Activities => ItemBody::Task(activity(row, closed)),
    };
    Item {
        id: id_of(row),
        version: version_of(row),
        removed: None,
        body: Some(body),
    }
}

fn zoned(row: &Value, field: &str) -> Option<ZonedTime> {
    text(row, field).map(|utc| ZonedTime {
        utc,
        time_zone: None,
    })
}

/// The IANA zone of a Windows time-zone name (CLDR), e.g. `Eastern Standard Time` →
/// `America/New_York`.
pub fn iana_of(windows: &str) -> Option<&'static str> {
    windows
        .trim()
        .parse::<windows_timezones::WindowsTimezone>()
        .ok()
        .map(|w| w.tzdb_id())
}

/// A member as a directory user: the login is `primaryEmail` (else `identifier`); the rest of
/// what matters for a calendar (identifier, time zone, licence class...) as attributes.
pub fn member(row: &Value) -> DirectoryUser {
    let mail = text(row, "primaryEmail").or_else(|| text(row, "officeEmail"));
    let identifier = text(row, "identifier");
    let first = text(row, "firstName");
    let last = text(row, "lastName");
    let display = Some(
        [first.as_deref(), last.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    )
    .filter(|d| !d.is_empty());
    let mut attributes = Vec::new();
    let mut attr = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            attributes.push(Attribute {
                name: name.into(),
                value,
            });
        }
    };
    attr("identifier", identifier.clone());
    let zone = text(&row["timeZone"], "name");
    attr(
        "timeZone.iana",
        zone.as_deref().and_then(iana_of).map(str::to_owned),
    );
    attr("timeZone", zone);
    attr("licenseClass", text(row, "licenseClass"));
    attr("type", text(&row["type"], "name"));
    attr("defaultLocation", text(&row["defaultLocation"], "name"));
    attr("inactiveDate", text(row, "inactiveDate"));
    attr("hireDate", text(row, "hireDate"));
    attr("calendar", text(&row["calendar"], "name"));
    DirectoryUser {
        user_principal_name: mail.clone().or(identifier).unwrap_or_default(),
        mail,
        given_name: first,
        surname: last,
        display_name: display,
        job_title: text(row, "title"),
        business_phone: text(row, "officePhone"),
        mobile_phone: text(row, "mobilePhone"),
        department: text(&row["defaultDepartment"], "name"),
        account_enabled: row["inactiveFlag"].as_bool() != Some(true),
        licenses: Vec::new(),
        groups: Vec::new(),
        attributes,
    }
}

/// A schedule entry as an appointment: `name`, `dateStart`/`dateEnd` (UTC), `where.name` as the
/// location, status `Tentative` as tentative (else busy); the type's name is its category.
pub fn entry(row: &Value) -> Appointment {
    let tentative =
        text(&row["status"], "name").is_some_and(|s| s.eq_ignore_ascii_case("Tentative"));
    let start = zoned(row, "dateStart").unwrap_or(ZonedTime {
        utc: String::new(),
        time_zone: None,
    });
    Appointment {
        subject: text(row, "name"),
        end: zoned(row, "dateEnd").unwrap_or_else(|| start.clone()),
        start,
        all_day: false,
        show_as: if tentative {
            ShowAs::Tentative
        } else {
            ShowAs::Busy
        },
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: None,
        attendees: Vec::new(),
        location: text(&row["where"], "name"),
        body: None,
        categories: text(&row["type"], "name").into_iter().collect(),
    }
}

/// An activity as a task: `name`, `notes`, `dateStart` as start, `dateEnd` as due; a closed
/// status (`closedFlag`) is completed.
pub fn activity(row: &Value, closed: &[i64]) -> Task {
    let done = row["status"]["id"]
        .as_i64()
        .is_some_and(|id| closed.contains(&id));
    Task {
        title: text(row, "name").unwrap_or_default(),
        body: text(row, "notes"),
        start: zoned(row, "dateStart"),
        due: zoned(row, "dateEnd"),
        completed: None,
        status: if done {
            TaskStatus::Completed
        } else {
            TaskStatus::NotStarted
        },
        categories: text(&row["type"], "name").into_iter().collect(),
    }
}
