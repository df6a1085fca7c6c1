//! Reading: SyncFolderItems + GetItem for mailbox folders, FindItem paging for public folders,
//! lookups by id and by anchor, and the calendar window.

use crate::error::EwsError;
use crate::map::{self, utc};
use crate::ops::{self, Folder, Kind};
use crate::scope::MailboxScope;
use crate::soap::{self, Target};
use crate::xml::Elem;
use crate::Config;
use chrono::{DateTime, Duration, Utc};
use syncbridge_sdk::types::mailbox::{EventKind, MailboxBody, MailboxItem, MailboxPage};
use syncbridge_sdk::types::{PluginError, Removal};
use syncbridge_sdk::{log, state};

/// Items per GetItem request.
pub const GET_BATCH: usize = 50;
/// Marks a cursor taken in the middle of a full pass.
const FULL_PREFIX: &str = "F|";

/// The calendar window of a pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// `now - past` days: older items are left out.
    pub start: DateTime<Utc>,
    /// `now + future` days: series whose occurrences all start later are left out.
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window `past` days back and `future` days ahead of `now`.
    pub fn around(now: DateTime<Utc>, past: i64, future: i64) -> Self {
        Window {
            start: now - Duration::days(past),
            end: now + Duration::days(future),
        }
    }

    /// Whether a calendar item belongs to the window (see the crate docs):
    /// - singles that end on or after the window's start (future singles are kept);
    /// - series masters whose series touches the window: first occurrence before its end and
    ///   no end, or a last occurrence ending after its start, or a modified occurrence inside;
    /// - occurrences and exceptions listed on their own never: their master carries them.
    pub fn keeps(
        &self,
        ev: &syncbridge_sdk::types::mailbox::Event,
        last_end: Option<&str>,
    ) -> bool {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .ok()
        };
        match ev.kind {
            EventKind::Occurrence | EventKind::Exception => false,
            EventKind::Single => at(&ev.end.utc).is_none_or(|e| e >= self.start),
            EventKind::SeriesMaster => {
                let starts_in_time = at(&ev.start.utc).is_none_or(|s| s <= self.end);
                let not_over = last_end.and_then(at).is_none_or(|e| e >= self.start);
                let moved_in = ev.series.iter().flat_map(|s| &s.modified).any(|m| {
                    at(&m.start.utc).is_some_and(|s| s <= self.end)
                        && at(&m.end.utc).is_some_and(|e| e >= self.start)
                });
                (starts_in_time && not_over) || moved_in
            }
        }
    }
}

impl From<Window> for syncbridge_sdk::series::Window {
    fn from(w: Window) -> Self {
        Self {
            start: w.start,
            end: w.end,
        }
    }
}

/// An item element's `ItemId`: (id, change key).
pub fn item_id(el: &Elem) -> Option<(String, Option<String>)> {
    let id = el.child("ItemId")?;
    Some((
        id.attr("Id")?.to_owned(),
        id.attr("ChangeKey").map(str::to_owned),
    ))
}

/// Reads items by id (GetItem in batches): found items mapped, missing ones as deletions.
pub fn get_items(
    target: &Target,
    kind: Kind,
    ids: &[String],
) -> Result<Vec<(MailboxItem, Option<String>)>, PluginError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(GET_BATCH) {
        let resp = soap::call(target, &ops::get_item(kind, chunk))?;
        let msgs = soap::into_messages(resp);
        if msgs.len() != chunk.len() {
            return Err(EwsError::Malformed {
                status: 200,
                detail: format!(
                    "GetItem answered {} messages for {} ids",
                    msgs.len(),
                    chunk.len()
                ),
            }
            .into());
        }
        let mut masters: Vec<(usize, Elem)> = Vec::new();
        for (id, msg) in chunk.iter().zip(msgs) {
            match msg {
                Ok(mut m) => {
                    let Some(el) = m.child_mut("Items").and_then(|i| i.children.first_mut()) else {
                        continue;
                    };
                    if kind == Kind::Calendar && el.child("ModifiedOccurrences").is_some() {
                        masters.push((out.len(), el.clone()));
                    }
                    out.push(take_item(kind, el, Vec::new())?);
                }
                Err(EwsError::NotFound { .. }) => out.push((removed(id, Removal::Deleted), None)),
                Err(e) => return Err(e.into()),
            }
        }
        for (pos, mut master) in masters {
            let changes = modified_occurrences(target, &master)?;
            out[pos] = take_item(kind, &mut master, changes)?;
        }
    }
    Ok(out)
}

/// Reads every modified occurrence of a master with GetItem (their changed fields).
fn modified_occurrences(
    target: &Target,
    master: &Elem,
) -> Result<Vec<syncbridge_sdk::types::mailbox::OccurrenceChange>, PluginError> {
    let occs: Vec<&Elem> = master
        .child("ModifiedOccurrences")
        .into_iter()
        .flat_map(|m| m.all("Occurrence"))
        .collect();
    let ids: Vec<String> = occs
        .iter()
        .filter_map(|o| item_id(o).map(|(i, _)| i))
        .collect();
    let mut details: Vec<Option<Elem>> = Vec::new();
    for chunk in ids.chunks(GET_BATCH) {
        let resp = soap::call(target, &ops::get_item(Kind::Calendar, chunk))?;
        for msg in soap::messages(&resp) {
            details.push(
                msg.ok()
                    .and_then(|m| m.child("Items").and_then(|i| i.children.first()).cloned()),
            );
        }
    }
    occs.iter()
        .map(|o| {
            let id = item_id(o).map(|(i, _)| i);
            let detail = ids
                .iter()
                .position(|i| Some(i) == id.as_ref())
                .and_then(|p| details.get(p))
                .and_then(Option::as_ref);
            map::event::occurrence_change(o, detail)
        })
        .collect()
}

fn removed(id: &str, why: Removal) -> MailboxItem {
    MailboxItem {
        id: id.to_owned(),
        version: None,
        removed: Some(why),
        body: None,
    }
}

/// Maps one item element; answers the item and, for a bounded series, its last occurrence's end.
/// Maps a copy: see [`take_item`].
pub fn read_item(
    kind: Kind,
    el: &Elem,
    modified: Vec<syncbridge_sdk::types::mailbox::OccurrenceChange>,
) -> Result<(MailboxItem, Option<String>), PluginError> {
    take_item(kind, &mut el.clone(), modified)
}

/// [`read_item`], the texts the item keeps moved out of the element (left empty there).
pub fn take_item(
    kind: Kind,
    el: &mut Elem,
    modified: Vec<syncbridge_sdk::types::mailbox::OccurrenceChange>,
) -> Result<(MailboxItem, Option<String>), PluginError> {
    let (id, version) =
        item_id(el).ok_or_else(|| PluginError::invalid(format!("a {} without ItemId", el.name)))?;
    let (body, last_end) = match kind {
        Kind::Calendar => {
            let last = el
                .path(&["LastOccurrence", "End"])
                .and_then(|e| utc(&e.text));
            (MailboxBody::Event(map::event::take(el, modified)?), last)
        }
        Kind::Contacts => (MailboxBody::Contact(map::contact::take(el)), None),
        Kind::Tasks => (MailboxBody::Todo(map::todo::take(el)), None),
    };
    Ok((
        MailboxItem {
            id,
            version,
            removed: None,
            body: Some(body),
        },
        last_end,
    ))
}

fn parse_cursor(cursor: Option<&str>) -> (bool, Option<&str>) {
    match cursor {
        None => (true, None),
        Some(c) => match c.strip_prefix(FULL_PREFIX) {
            Some(state) => (true, Some(state).filter(|s| !s.is_empty())),
            None => (false, Some(c).filter(|s| !s.is_empty())),
        },
    }
}

/// What one SyncFolderItems call reported, from a page's cursor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// A full pass: no cursor, a full pass's cursor, or a sync state Exchange no longer knew.
    pub full: bool,
    /// Created or updated items (element name, id), each once, in the order reported.
    pub changed: Vec<(String, String)>,
    /// Deleted (or moved out) items.
    pub deleted: Vec<String>,
    /// The page's cursor: the new sync state, marked while a full pass goes on.
    pub cursor: String,
    /// More changes follow (`IncludesLastItemInRange` false).
    pub more: bool,
}

/// SyncFolderItems (ids only) of `folder` from `cursor`; a sync state Exchange refuses
/// (`ErrorInvalidSyncStateData`) starts a full pass.
pub fn sync_changes(
    target: &Target,
    folder: &Folder,
    what: &str,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<Changes, PluginError> {
    let (mut full, mut sync_state) = parse_cursor(cursor);
    let max = max_items.clamp(1, 512);
    let resp = loop {
        let resp = soap::call(target, &ops::sync_folder_items(folder, sync_state, max))?;
        match soap::single(&resp) {
            Ok(_) => break resp,
            Err(EwsError::InvalidSyncState) if sync_state.is_some() => {
                log::warn!("the sync state of {what} is no longer valid; starting a full pass");
                full = true;
                sync_state = None;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let msg = soap::single(&resp)?;
    let new_state = msg.text_of("SyncState").unwrap_or_default().to_owned();
    let last = msg.text_of("IncludesLastItemInRange") != Some("false");
    let mut out = Changes {
        full,
        more: !last,
        cursor: if full && !last {
            format!("{FULL_PREFIX}{new_state}")
        } else {
            new_state
        },
        ..Changes::default()
    };
    for change in msg
        .child("Changes")
        .map(|c| c.children.as_slice())
        .unwrap_or_default()
    {
        match &*change.name {
            "Create" | "Update" => {
                let Some(el) = change.children.first() else {
                    continue;
                };
                if let Some((id, _)) = item_id(el) {
                    out.changed.retain(|(_, c)| *c != id);
                    out.changed.push((el.name.to_string(), id));
                }
            }
            "Delete" => {
                if let Some((id, _)) = item_id(change) {
                    out.changed.retain(|(_, c)| *c != id);
                    out.deleted.push(id);
                }
            }
            // Read flags are no field of the canonical model.
            _ => {}
        }
    }
    Ok(out)
}

/// One page of a mailbox folder: SyncFolderItems from the cursor, then GetItem of what changed.
pub fn mailbox_page(
    cfg: &Config,
    kind: Kind,
    mailbox: &str,
    window: Window,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<MailboxPage, PluginError> {
    let target = cfg.target(mailbox)?;
    let folder = cfg.folder(&target, kind.folder(), mailbox);
    let what = format!("{} in {mailbox}", kind.folder());
    let changes = sync_changes(&target, &folder, &what, cursor, max_items)?;
    let mut items: Vec<MailboxItem> = changes
        .deleted
        .iter()
        .map(|id| removed(id, Removal::Deleted))
        .collect();
    let changed: Vec<String> = changes.changed.into_iter().map(|(_, id)| id).collect();
    for (item, last_end) in get_items(&target, kind, &changed)? {
        match &item.body {
            Some(MailboxBody::Event(ev)) if !window.keeps(ev, last_end.as_deref()) => {
                // Occurrences are carried by their master; out-of-window items leave the scope.
                if !changes.full && !matches!(ev.kind, EventKind::Occurrence | EventKind::Exception)
                {
                    items.push(removed(&item.id, Removal::OutOfScope));
                }
            }
            _ => items.push(item),
        }
    }
    Ok(MailboxPage {
        items,
        cursor: Some(changes.cursor),
        more: changes.more,
        full: changes.full,
    })
}

/// The id of a public folder by path, found (or created) once and kept in state.
pub fn public_folder(
    cfg: &Config,
    target: &Target,
    path: &[String],
) -> Result<String, PluginError> {
    let key = format!("ews:public:{}", path.join("/"));
    if let Some(id) = state::get(&key) {
        return Ok(id);
    }
    let mut parent = Folder::Distinguished {
        id: "publicfoldersroot",
        mailbox: None,
    };
    for (depth, name) in path.iter().enumerate() {
        let resp = soap::call(target, &ops::find_folder(&parent, name))?;
        let found = soap::single(&resp)?
            .path(&["RootFolder", "Folders"])
            .and_then(|f| f.children.first())
            .and_then(|f| f.child("FolderId"))
            .and_then(|f| f.attr("Id"))
            .map(str::to_owned);
        let id = match found {
            Some(id) => id,
            None if cfg.create_public_folders => {
                let resp = soap::call(target, &ops::create_contacts_folder(&parent, name))?;
                soap::single(&resp)?
                    .child("Folders")
                    .and_then(|f| f.children.first())
                    .and_then(|f| f.child("FolderId"))
                    .and_then(|f| f.attr("Id"))
                    .map(str::to_owned)
                    .ok_or_else(|| PluginError::invalid("CreateFolder answered no FolderId"))?
            }
            None => {
                return Err(PluginError::NotFound(format!(
                    "the public folder {:?} does not exist; create it, or set \"create_public_folders\": true",
                    path[..=depth].join("/")
                )))
            }
        };
        parent = Folder::Id(id);
    }
    let Folder::Id(id) = parent else {
        unreachable!("a path has at least one folder")
    };
    state::set(&key, &id);
    Ok(id)
}

/// One page of a public contacts folder: FindItem from the offset in the cursor, then GetItem.
pub fn public_page(
    cfg: &Config,
    path: &[String],
    cursor: Option<&str>,
    max_items: u32,
) -> Result<MailboxPage, PluginError> {
    let target = cfg.public_target()?;
    let folder = Folder::Id(public_folder(cfg, &target, path)?);
    let offset: u32 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
    let resp = soap::call(
        &target,
        &ops::find_page(&folder, offset, max_items.clamp(1, 1000)),
    )?;
    let msg = soap::single(&resp)?;
    let root = msg
        .child("RootFolder")
        .ok_or_else(|| PluginError::invalid("FindItem answered no RootFolder"))?;
    let ids: Vec<String> = root
        .child("Items")
        .map(|i| {
            i.children
                .iter()
                .filter_map(|c| item_id(c).map(|(i, _)| i))
                .collect()
        })
        .unwrap_or_default();
    let last = root.attr("IncludesLastItemInRange") != Some("false");
    let next = root
        .attr("IndexedPagingOffset")
        .and_then(|o| o.parse::<u32>().ok())
        .unwrap_or(offset + ids.len() as u32);
    let items = get_items(&target, Kind::Contacts, &ids)?
        .into_iter()
        .map(|(i, _)| i)
        .filter(|i| i.removed.is_none())
        .collect();
    Ok(MailboxPage {
        items,
        cursor: (!last).then(|| next.to_string()),
        more: !last,
        full: true,
    })
}

/// Items by `id:<id>` (or a bare id) and by `anchor:<value>`; ids that are gone come back as
/// deletions, anchors nobody carries as nothing.
pub fn lookup(
    cfg: &Config,
    scope: &MailboxScope,
    keys: &[String],
) -> Result<Vec<MailboxItem>, PluginError> {
    let (target, folder, kind) = match scope {
        MailboxScope::Mailbox { kind, mailbox, .. } => {
            let target = cfg.target(mailbox)?;
            let folder = cfg.folder(&target, kind.folder(), mailbox);
            (target, folder, *kind)
        }
        MailboxScope::PublicContacts { path } => {
            let target = cfg.public_target()?;
            let folder = Folder::Id(public_folder(cfg, &target, path)?);
            (target, folder, Kind::Contacts)
        }
    };
    let mut ids: Vec<String> = Vec::new();
    for key in keys {
        if let Some(anchor) = key.strip_prefix("anchor:") {
            let resp = soap::call(&target, &ops::find_by_anchor(&folder, anchor))?;
            let msg = soap::single(&resp)?;
            for el in msg
                .path(&["RootFolder", "Items"])
                .map(|i| i.children.as_slice())
                .unwrap_or_default()
            {
                if let Some((id, _)) = item_id(el) {
                    ids.push(id);
                }
            }
        } else {
            let id = key.strip_prefix("id:").unwrap_or(key);
            if !id.is_empty() {
                ids.push(id.to_owned());
            }
        }
    }
    ids.dedup();
    Ok(get_items(&target, kind, &ids)?
        .into_iter()
        .map(|(i, _)| i)
        .collect())
}
