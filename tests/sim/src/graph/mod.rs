//! Microsoft Graph v1.0 simulator with the Entra ID (v2.0) token endpoint.
//!
//! Covers users (with `$select/$filter/$top/$count`, paging, `users/delta`), groups and
//! (transitive) membership (with `groups/delta` reporting membership changes in `members@delta`), `subscribedSkus`, events (recurring series with exceptions and cancelled occurrences, `instances`, `$expand`
//! of `exceptionOccurrences` and `singleValueExtendedProperties`), `calendarView` (+ delta),
//! contacts (+ delta), To Do lists/tasks (+ `tasks/delta`, `linkedResources`), mail (`sendMail`
//! delivering to simulated recipients, messages per well-known folder, `messages/delta` of a
//! folder, `move`) and `$batch`, with Graph's error format and throttling behaviour.

mod api;
mod auth;
mod delta;
mod model;
mod recur;
mod schema;
pub mod tz;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::Store;
use crate::util::lock;

pub use model::{default_user, DEFAULT_USER_PROPERTIES};

/// A stored object with its change sequence number (for delta queries).
#[derive(Debug, Clone)]
pub struct Rec {
    /// Sequence number of the last change.
    pub seq: u64,
    /// `Some("changed" | "deleted")` once removed (kept as a tombstone for delta).
    pub removed: Option<String>,
    /// The Graph JSON representation.
    pub data: Value,
}

impl Rec {
    /// The object's `id`.
    pub fn id(&self) -> &str {
        self.data.get("id").and_then(|v| v.as_str()).unwrap_or("")
    }
    /// Whether the object is live (not a tombstone).
    pub fn live(&self) -> bool {
        self.removed.is_none()
    }
}

/// A group and its direct members (ids of users or groups).
#[derive(Debug, Clone)]
pub struct GroupRec {
    /// The group object.
    pub rec: Rec,
    /// Direct member ids.
    pub members: Vec<String>,
    /// Membership changes since the group was created, oldest first (for `groups/delta`).
    pub member_log: Vec<MemberChange>,
}

/// One change of a group's direct membership.
#[derive(Debug, Clone)]
pub struct MemberChange {
    /// Change sequence number.
    pub seq: u64,
    /// The member (user or group id).
    pub id: String,
    /// Added (`true`) or removed.
    pub added: bool,
}

impl GroupRec {
    /// The sequence number `groups/delta` orders this group by within a round ending at
    /// `upto`: its newest property or membership change up to `upto`.
    pub fn delta_seq(&self, upto: u64) -> u64 {
        let last_member = self
            .member_log
            .iter()
            .map(|c| c.seq)
            .filter(|&s| s <= upto)
            .max();
        match (self.rec.seq <= upto, last_member) {
            (true, Some(m)) => self.rec.seq.max(m),
            (true, None) => self.rec.seq,
            (false, Some(m)) => m,
            (false, None) => self.rec.seq,
        }
    }

    /// Adds a direct member (no-op answer `false` when it already is one).
    pub fn add_member(&mut self, id: &str, seq: u64) -> bool {
        if self.members.iter().any(|m| m.eq_ignore_ascii_case(id)) {
            return false;
        }
        self.members.push(id.to_string());
        self.member_log.push(MemberChange {
            seq,
            id: id.to_string(),
            added: true,
        });
        true
    }

    /// Removes a direct member (`false` when it is none).
    pub fn remove_member(&mut self, id: &str, seq: u64) -> bool {
        let Some(pos) = self.members.iter().position(|m| m.eq_ignore_ascii_case(id)) else {
            return false;
        };
        let id = self.members.remove(pos);
        self.member_log.push(MemberChange {
            seq,
            id,
            added: false,
        });
        true
    }
}

/// A To Do list with its tasks.
#[derive(Debug, Clone)]
pub struct TodoList {
    /// The `todoTaskList` object.
    pub data: Value,
    /// Its tasks.
    pub tasks: Vec<Rec>,
}

/// Mailbox content of one user.
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    /// Calendar events (series masters and single instances).
    pub events: Vec<Rec>,
    /// Contacts of the default contact folder.
    pub contacts: Vec<Rec>,
    /// To Do lists.
    pub todo_lists: Vec<TodoList>,
    /// Mail messages; `parentFolderId` is the well-known folder name (`inbox`, `sentitems`).
    pub messages: Vec<Rec>,
    /// Single-value extended properties of the mailbox's root folder (`msgfolderroot`):
    /// `{"id": "String {guid} Name …", "value": …}` objects, written with `PATCH
    /// mailFolders/msgfolderroot`, e.g. the sync owner ([`SYNC_OWNER_PROPERTY_ID`]).
    pub root_properties: Vec<Value>,
}

impl Mailbox {
    /// Moves the live message `id` to the well-known `folder` as Graph's `move` does: the
    /// original is gone (a tombstone at `seq_gone`, so its folder's delta reports it
    /// `@removed`) and a copy with a new id is in `folder` (at `seq_new`). The copy, or
    /// `None` when there is no such message.
    pub fn move_message(
        &mut self,
        id: &str,
        folder: &str,
        seq_gone: u64,
        seq_new: u64,
    ) -> Option<Value> {
        let r = self
            .messages
            .iter_mut()
            .find(|r| r.live() && r.id() == id)?;
        r.removed = Some("deleted".into());
        r.seq = seq_gone;
        let copy = model::moved_message(&r.data, folder);
        self.messages.push(Rec {
            seq: seq_new,
            removed: None,
            data: copy.clone(),
        });
        Some(copy)
    }
}

/// An app registration allowed to get tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppReg {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret value.
    pub client_secret: String,
}

/// One Entra tenant.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    /// Tenant id (GUID).
    pub id: String,
    /// Initial domain, e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    /// App registrations.
    pub apps: Vec<AppReg>,
    /// Users (including tombstones).
    pub users: Vec<Rec>,
    /// Groups.
    pub groups: Vec<GroupRec>,
    /// Licences of the tenant.
    pub skus: Vec<Value>,
    /// Mailbox content keyed by user id.
    pub mailboxes: HashMap<String, Mailbox>,
    /// User ids whose mailboxes an Exchange Online application access policy
    /// (`New-ApplicationAccessPolicy -AccessRight DenyAccess`) keeps from the tenant's apps:
    /// their mailbox calls answer 403 `ErrorAccessDenied`.
    pub denied_mailboxes: Vec<String>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Tenant the token is bound to.
    pub tenant: String,
    /// Client id it was issued to.
    pub client_id: String,
    /// Expiry (unix seconds).
    pub expires: i64,
}

/// All Graph state.
#[derive(Debug, Default)]
pub struct GraphState {
    /// Tenants.
    pub tenants: Vec<Tenant>,
    /// Issued tokens.
    pub tokens: HashMap<String, TokenInfo>,
    /// Bumped to invalidate every outstanding delta/skip token.
    pub delta_epoch: u64,
    /// Global change counter.
    pub seq: u64,
}

/// Seed of one tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TenantSeed {
    /// Tenant id; generated when empty.
    pub id: String,
    /// Initial domain; defaults to `{id}.onmicrosoft.com`.
    pub domain: String,
    /// App registrations.
    pub apps: Vec<AppReg>,
    /// Graph `user` objects (missing properties get defaults; `id` generated when absent).
    pub users: Vec<Value>,
    /// Graph `group` objects; a `members` array of user/group ids lists the direct members.
    pub groups: Vec<Value>,
    /// `subscribedSku` objects.
    pub subscribed_skus: Vec<Value>,
    /// Mailbox content keyed by user id or userPrincipalName.
    pub mailboxes: std::collections::BTreeMap<String, MailboxSeed>,
}

/// Seed of one mailbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MailboxSeed {
    /// Graph `event` objects.
    pub events: Vec<Value>,
    /// Graph `contact` objects.
    pub contacts: Vec<Value>,
    /// To Do lists: `todoTaskList` objects with an extra `tasks` array.
    pub todo_lists: Vec<Value>,
    /// Graph `message` objects; `parentFolderId` is a well-known folder name (default
    /// `inbox`), missing properties get defaults.
    pub messages: Vec<Value>,
}

/// Graph section of a seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphSeed {
    /// Tenants to add.
    pub tenants: Vec<TenantSeed>,
}

impl GraphState {
    /// Next change sequence number.
    pub fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A tenant by id or domain (case-insensitive).
    pub fn tenant_index(&self, key: &str) -> Option<usize> {
        self.tenants
            .iter()
            .position(|t| t.id.eq_ignore_ascii_case(key) || t.domain.eq_ignore_ascii_case(key))
    }

    /// Adds seed data.
    pub fn apply_seed(&mut self, seed: &GraphSeed) {
        for ts in &seed.tenants {
            let tid = if ts.id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                ts.id.clone()
            };
            let ti = match self.tenant_index(&tid) {
                Some(i) => i,
                None => {
                    self.tenants.push(Tenant {
                        id: tid.clone(),
                        domain: if ts.domain.is_empty() {
                            format!("{tid}.onmicrosoft.com")
                        } else {
                            ts.domain.clone()
                        },
                        ..Tenant::default()
                    });
                    self.tenants.len() - 1
                }
            };
            self.tenants[ti].apps.extend(ts.apps.iter().cloned());
            let domain = self.tenants[ti].domain.clone();
            for u in &ts.users {
                let seq = self.bump();
                let data = model::default_user(u, &domain);
                self.tenants[ti].users.push(Rec {
                    seq,
                    removed: None,
                    data,
                });
            }
            for g in &ts.groups {
                let seq = self.bump();
                let mut data = model::default_group(g);
                let members = data
                    .as_object_mut()
                    .and_then(|o| o.remove("members"))
                    .and_then(|m| serde_json::from_value::<Vec<String>>(m).ok())
                    .unwrap_or_default();
                self.tenants[ti].groups.push(GroupRec {
                    rec: Rec {
                        seq,
                        removed: None,
                        data,
                    },
                    members,
                    member_log: Vec::new(),
                });
            }
            self.tenants[ti]
                .skus
                .extend(ts.subscribed_skus.iter().map(model::default_sku));
            for (key, mb) in &ts.mailboxes {
                let uid = self.tenants[ti]
                    .find_user(key)
                    .map(|r| r.id().to_string())
                    .unwrap_or_else(|| key.clone());
                for e in &mb.events {
                    let seq = self.bump();
                    let data = model::new_event(e, &uid, &domain);
                    self.tenants[ti]
                        .mailboxes
                        .entry(uid.clone())
                        .or_default()
                        .events
                        .push(Rec {
                            seq,
                            removed: None,
                            data,
                        });
                }
                for c in &mb.contacts {
                    let seq = self.bump();
                    let data = model::new_contact(c);
                    self.tenants[ti]
                        .mailboxes
                        .entry(uid.clone())
                        .or_default()
                        .contacts
                        .push(Rec {
                            seq,
                            removed: None,
                            data,
                        });
                }
                for m in &mb.messages {
                    let seq = self.bump();
                    self.tenants[ti]
                        .mailboxes
                        .entry(uid.clone())
                        .or_default()
                        .messages
                        .push(Rec {
                            seq,
                            removed: None,
                            data: model::seed_message(m),
                        });
                }
                for l in &mb.todo_lists {
                    let mut data = model::new_todo_list(l);
                    let tasks_v = data
                        .as_object_mut()
                        .and_then(|o| o.remove("tasks"))
                        .and_then(|t| t.as_array().cloned())
                        .unwrap_or_default();
                    let mut tasks = Vec::new();
                    for t in &tasks_v {
                        let seq = self.bump();
                        tasks.push(Rec {
                            seq,
                            removed: None,
                            data: model::new_todo_task(t),
                        });
                    }
                    self.tenants[ti]
                        .mailboxes
                        .entry(uid.clone())
                        .or_default()
                        .todo_lists
                        .push(TodoList { data, tasks });
                }
            }
        }
    }

    /// JSON dump for `/_admin/state`.
    pub fn dump(&self) -> Value {
        Value::Array(
            self.tenants
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "domain": t.domain,
                        "apps": t.apps,
                        "users": t.users.iter().filter(|r| r.live()).map(|r| &r.data).collect::<Vec<_>>(),
                        "groups": t.groups.iter().filter(|g| g.rec.live()).map(|g| json!({"group": g.rec.data, "members": g.members})).collect::<Vec<_>>(),
                        "subscribedSkus": t.skus,
                        "mailboxes": t.mailboxes.iter().map(|(k, m)| (k.clone(), json!({
                            "events": m.events.iter().filter(|r| r.live()).map(|r| &r.data).collect::<Vec<_>>(),
                            "contacts": m.contacts.iter().filter(|r| r.live()).map(|r| &r.data).collect::<Vec<_>>(),
                            "messages": m.messages.iter().filter(|r| r.live()).map(|r| &r.data).collect::<Vec<_>>(),
                            "todoLists": m.todo_lists.iter().map(|l| json!({"list": l.data, "tasks": l.tasks.iter().filter(|r| r.live()).map(|r| &r.data).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                            "rootFolderProperties": m.root_properties,
                        }))).collect::<serde_json::Map<_, _>>(),
                    })
                })
                .collect(),
        )
    }
}

impl Tenant {
    /// A live group by id (case-insensitive).
    pub fn live_group_mut(&mut self, id: &str) -> Option<&mut GroupRec> {
        self.groups
            .iter_mut()
            .find(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(id))
    }
    /// A live user by its exact id.
    pub fn live_user_mut(&mut self, id: &str) -> Option<&mut Rec> {
        self.users.iter_mut().find(|r| r.live() && r.id() == id)
    }
    /// A live user by id or userPrincipalName (case-insensitive).
    pub fn find_user(&self, key: &str) -> Option<&Rec> {
        self.users.iter().find(|r| {
            r.live()
                && (r.id().eq_ignore_ascii_case(key)
                    || r.data
                        .get("userPrincipalName")
                        .and_then(|v| v.as_str())
                        .is_some_and(|u| u.eq_ignore_ascii_case(key)))
        })
    }
}

/// The single-value extended property of a mailbox's root folder naming the organization
/// that synchronizes the mailbox (WIT 0.1.5 `mailbox-owner-api`).
pub const SYNC_OWNER_PROPERTY_ID: &str =
    "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeSyncOwner";

impl Mailbox {
    /// The value of the root folder's extended property `id` (ids compare without case).
    pub fn root_property(&self, id: &str) -> Option<&str> {
        self.root_properties
            .iter()
            .find(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
            .and_then(|p| p["value"].as_str())
    }

    /// Sets (`Some`) or removes (`None`) the root folder's extended property `id`, replacing
    /// an earlier value.
    pub fn set_root_property(&mut self, id: &str, value: Option<&str>) {
        self.root_properties
            .retain(|p| !p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)));
        if let Some(v) = value {
            self.root_properties.push(json!({ "id": id, "value": v }));
        }
    }
}

/// Rust API for tests: manipulate Graph state directly.
pub struct GraphHandle<'a>(pub &'a Store);

impl GraphHandle<'_> {
    /// Adds (or extends) a tenant.
    pub fn add_tenant(&self, seed: TenantSeed) {
        lock(&self.0.graph).apply_seed(&GraphSeed {
            tenants: vec![seed],
        });
    }
    /// Adds a user to a tenant (defaults filled in); returns its id.
    pub fn add_user(&self, tenant: &str, user: Value) -> Option<String> {
        let mut g = lock(&self.0.graph);
        let ti = g.tenant_index(tenant)?;
        let seq = g.bump();
        let domain = g.tenants[ti].domain.clone();
        let data = model::default_user(&user, &domain);
        let id = data["id"].as_str().unwrap_or_default().to_string();
        g.tenants[ti].users.push(Rec {
            seq,
            removed: None,
            data,
        });
        Some(id)
    }
    /// Merges properties into a user (a change visible to `users/delta`).
    pub fn update_user(&self, tenant: &str, id: &str, patch: Value) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let seq = g.bump();
        let Some(r) = g.tenants[ti]
            .users
            .iter_mut()
            .find(|r| r.live() && r.id().eq_ignore_ascii_case(id))
        else {
            return false;
        };
        if let (Some(o), Some(p)) = (r.data.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                o.insert(k.clone(), v.clone());
            }
        }
        r.seq = seq;
        true
    }
    /// Deletes a user: `permanent=false` reports `@removed.reason = "changed"` (soft delete),
    /// `true` reports `"deleted"`.
    pub fn delete_user(&self, tenant: &str, id: &str, permanent: bool) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let seq = g.bump();
        match g.tenants[ti]
            .users
            .iter_mut()
            .find(|r| r.live() && r.id().eq_ignore_ascii_case(id))
        {
            Some(r) => {
                r.removed = Some(if permanent { "deleted" } else { "changed" }.into());
                r.seq = seq;
                true
            }
            None => false,
        }
    }
    /// Adds `member_id` (a live user or group) to the direct members of group `group_id`, a
    /// change the next `groups/delta` round reports in `members@delta`. `false` when the
    /// tenant, the group or the member does not exist, or it already is a member.
    pub fn add_member(&self, tenant: &str, group_id: &str, member_id: &str) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let t = &g.tenants[ti];
        let known = t.find_user(member_id).is_some()
            || t.groups
                .iter()
                .any(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(member_id));
        if !known {
            return false;
        }
        let seq = g.bump();
        g.tenants[ti]
            .live_group_mut(group_id)
            .is_some_and(|gr| gr.add_member(member_id, seq))
    }
    /// Removes `member_id` from the direct members of group `group_id` (reported by the next
    /// `groups/delta` round as a member with `@removed`). `false` when it is not a member.
    pub fn remove_member(&self, tenant: &str, group_id: &str, member_id: &str) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let seq = g.bump();
        g.tenants[ti]
            .live_group_mut(group_id)
            .is_some_and(|gr| gr.remove_member(member_id, seq))
    }
    /// Merges properties into a group (a change visible to `groups/delta`).
    pub fn update_group(&self, tenant: &str, group_id: &str, patch: Value) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let seq = g.bump();
        let Some(gr) = g.tenants[ti].live_group_mut(group_id) else {
            return false;
        };
        if let (Some(o), Some(p)) = (gr.rec.data.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                if k != "id" {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
        gr.rec.seq = seq;
        true
    }
    /// Deletes a group: `groups/delta` reports it with `@removed.reason = "changed"`
    /// (soft delete, restorable) or `"deleted"` when `permanent`; it no longer counts as
    /// anybody's group.
    pub fn delete_group(&self, tenant: &str, group_id: &str, permanent: bool) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let seq = g.bump();
        match g.tenants[ti].live_group_mut(group_id) {
            Some(gr) => {
                gr.rec.removed = Some(if permanent { "deleted" } else { "changed" }.into());
                gr.rec.seq = seq;
                true
            }
            None => false,
        }
    }
    /// Direct member ids of a live group (`None` when there is no such group).
    pub fn members(&self, tenant: &str, group_id: &str) -> Option<Vec<String>> {
        let g = lock(&self.0.graph);
        let ti = g.tenant_index(tenant)?;
        g.tenants[ti]
            .groups
            .iter()
            .find(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(group_id))
            .map(|gr| gr.members.clone())
    }
    /// Live users of a tenant.
    pub fn users(&self, tenant: &str) -> Vec<Value> {
        let g = lock(&self.0.graph);
        g.tenant_index(tenant)
            .map(|ti| {
                g.tenants[ti]
                    .users
                    .iter()
                    .filter(|r| r.live())
                    .map(|r| r.data.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Live events of a user's mailbox.
    pub fn events(&self, tenant: &str, user_id: &str) -> Vec<Value> {
        self.mailbox_items(tenant, user_id, |m| &m.events)
    }
    /// Mail messages of a user's mailbox (sent and received).
    pub fn messages(&self, tenant: &str, user_id: &str) -> Vec<Value> {
        self.mailbox_items(tenant, user_id, |m| &m.messages)
    }
    /// Puts a message into the mailbox of `user` (id or UPN): a Graph `message` whose
    /// `parentFolderId` is a well-known folder name (default `inbox`), defaults filled in
    /// (unread, `receivedDateTime`, `internetMessageId`, `changeKey`…), visible to the
    /// folder's messages delta. Answers its id; `None` without such tenant or user.
    pub fn add_message(&self, tenant: &str, user: &str, message: Value) -> Option<String> {
        let mut g = lock(&self.0.graph);
        let ti = g.tenant_index(tenant)?;
        let uid = g.tenants[ti].find_user(user)?.id().to_string();
        let seq = g.bump();
        let data = model::seed_message(&message);
        let id = data["id"].as_str().unwrap_or_default().to_string();
        g.tenants[ti]
            .mailboxes
            .entry(uid)
            .or_default()
            .messages
            .push(Rec {
                seq,
                removed: None,
                data,
            });
        Some(id)
    }
    /// Moves message `id` of `user`'s mailbox to the well-known `folder` (Graph's `move`:
    /// the copy gets a new id, answered; the old one is reported `@removed`).
    pub fn move_message(&self, tenant: &str, user: &str, id: &str, folder: &str) -> Option<String> {
        let folder = model::mail_folder(folder)?;
        let mut g = lock(&self.0.graph);
        let ti = g.tenant_index(tenant)?;
        let uid = g.tenants[ti].find_user(user)?.id().to_string();
        let (gone, new) = (g.bump(), g.bump());
        let copy = g.tenants[ti]
            .mailboxes
            .get_mut(&uid)?
            .move_message(id, folder, gone, new)?;
        copy["id"].as_str().map(str::to_string)
    }
    /// Live contacts of a user's mailbox.
    pub fn contacts(&self, tenant: &str, user_id: &str) -> Vec<Value> {
        self.mailbox_items(tenant, user_id, |m| &m.contacts)
    }
    /// An application access policy denying the tenant's apps the mailbox of `user`
    /// (id or UPN); `false` when there is no such tenant or user.
    pub fn deny_mailbox_access(&self, tenant: &str, user: &str) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let Some(uid) = g.tenants[ti].find_user(user).map(|u| u.id().to_string()) else {
            return false;
        };
        if !g.tenants[ti].denied_mailboxes.contains(&uid) {
            g.tenants[ti].denied_mailboxes.push(uid);
        }
        true
    }
    /// The value of a single-value extended property of the root folder of `user`'s (id or
    /// UPN) mailbox; `None` when unset or there is no such tenant or user.
    pub fn root_folder_property(&self, tenant: &str, user: &str, id: &str) -> Option<String> {
        let g = lock(&self.0.graph);
        let ti = g.tenant_index(tenant)?;
        let uid = g.tenants[ti].find_user(user)?.id().to_string();
        g.tenants[ti]
            .mailboxes
            .get(&uid)?
            .root_property(id)
            .map(str::to_string)
    }
    /// Sets (`Some`) or removes (`None`) a single-value extended property of the root folder
    /// of `user`'s mailbox, as a `PATCH` by someone else would; `false` when there is no such
    /// tenant or user.
    pub fn set_root_folder_property(
        &self,
        tenant: &str,
        user: &str,
        id: &str,
        value: Option<&str>,
    ) -> bool {
        let mut g = lock(&self.0.graph);
        let Some(ti) = g.tenant_index(tenant) else {
            return false;
        };
        let Some(uid) = g.tenants[ti].find_user(user).map(|u| u.id().to_string()) else {
            return false;
        };
        g.tenants[ti]
            .mailboxes
            .entry(uid)
            .or_default()
            .set_root_property(id, value);
        true
    }
    /// The organization marked as the sync owner of `user`'s mailbox
    /// ([`SYNC_OWNER_PROPERTY_ID`] on its root folder), `None` when unmarked.
    pub fn sync_owner(&self, tenant: &str, user: &str) -> Option<String> {
        self.root_folder_property(tenant, user, SYNC_OWNER_PROPERTY_ID)
    }
    /// Marks (`Some`) or unmarks (`None`) the sync owner of `user`'s mailbox, e.g. "another
    /// organization marked this mailbox"; `false` when there is no such tenant or user.
    pub fn set_sync_owner(&self, tenant: &str, user: &str, owner: Option<&str>) -> bool {
        self.set_root_folder_property(tenant, user, SYNC_OWNER_PROPERTY_ID, owner)
    }
    /// Live To Do tasks of a user's mailbox, over all its lists.
    pub fn tasks(&self, tenant: &str, user_id: &str) -> Vec<Value> {
        let g = lock(&self.0.graph);
        g.tenant_index(tenant)
            .and_then(|ti| {
                g.tenants[ti].mailboxes.get(user_id).map(|m| {
                    m.todo_lists
                        .iter()
                        .flat_map(|l| l.tasks.iter())
                        .filter(|r| r.live())
                        .map(|r| r.data.clone())
                        .collect()
                })
            })
            .unwrap_or_default()
    }
    fn mailbox_items(
        &self,
        tenant: &str,
        uid: &str,
        f: impl Fn(&Mailbox) -> &Vec<Rec>,
    ) -> Vec<Value> {
        let g = lock(&self.0.graph);
        g.tenant_index(tenant)
            .and_then(|ti| {
                g.tenants[ti].mailboxes.get(uid).map(|m| {
                    f(m).iter()
                        .filter(|r| r.live())
                        .map(|r| r.data.clone())
                        .collect()
                })
            })
            .unwrap_or_default()
    }
    /// Issues an access token without going through the token endpoint.
    pub fn issue_token(&self, tenant: &str, client_id: &str) -> Option<String> {
        let mut g = lock(&self.0.graph);
        let ti = g.tenant_index(tenant)?;
        let tid = g.tenants[ti].id.clone();
        Some(auth::issue(&mut g, &tid, client_id, 3599))
    }
    /// Makes every issued access token expired.
    pub fn expire_access_tokens(&self) {
        let mut g = lock(&self.0.graph);
        for t in g.tokens.values_mut() {
            t.expires = 0;
        }
    }
    /// Invalidates every outstanding delta/skip token (next use answers 410 SyncStateNotFound).
    pub fn expire_delta_tokens(&self) {
        lock(&self.0.graph).delta_epoch += 1;
    }
    /// Sets the per-mailbox concurrent request limit (default 4).
    pub fn set_mailbox_concurrency_limit(&self, n: usize) {
        *self
            .0
            .mailbox_concurrency_limit
            .write()
            .unwrap_or_else(|e| e.into_inner()) = n;
    }
}

/// Graph's error body.
pub fn error_body(code: &str, message: &str, client_request_id: Option<&str>) -> Value {
    let rid = uuid::Uuid::new_v4().to_string();
    json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": rid,
                "client-request-id": client_request_id.map(str::to_string).unwrap_or_else(|| rid.clone()),
            }
        }
    })
}

/// A Graph error response.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = crate::util::json_response(status, &error_body(code, message, None));
    if let Ok(v) = axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        r.headers_mut().insert("request-id", v);
    }
    r
}

/// The answer for an injected fault status.
pub fn fault_response(status: StatusCode) -> Response {
    let (code, msg) = match status.as_u16() {
        429 => ("TooManyRequests", "Too many requests"),
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        504 => ("UnknownError", "Gateway timeout"),
        401 => (
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        ),
        403 => (
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),
        404 => ("Request_ResourceNotFound", "Resource does not exist."),
        _ => ("generalException", "An unspecified error has occurred."),
    };
    error_response(status, code, msg)
}

/// 429 when a mailbox already has the allowed number of requests in flight.
pub fn mailbox_concurrency_response() -> Response {
    let mut r = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    r
}

/// The mailbox a Graph path addresses (`/v1.0/users/{id}/events…`), for the concurrency limit.
pub fn mailbox_key(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segs.len() >= 4 && segs[1].eq_ignore_ascii_case("users") {
        let s = segs[3].to_ascii_lowercase();
        if matches!(
            s.as_str(),
            "events"
                | "calendar"
                | "calendarview"
                | "contacts"
                | "contactfolders"
                | "todo"
                | "messages"
                | "mailfolders"
                | "calendars"
        ) {
            return Some(segs[2].to_ascii_lowercase());
        }
    }
    None
}

/// Entry point for every Graph and token request.
pub async fn handle(store: Arc<Store>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let lower = path.to_ascii_lowercase();
    if parts.method == axum::http::Method::GET {
        if lower.ends_with("/.well-known/openid-configuration") {
            return auth::openid_configuration(&store, &path);
        }
        if lower == "/common/discovery/instance" {
            return auth::instance_discovery(&store, parts.uri.query());
        }
    }
    if lower.contains("/oauth2/") {
        return auth::token_endpoint(&store, &path, &parts.method, &bytes);
    }
    api::handle_v1(&store, &parts.method, &parts.uri, &parts.headers, &bytes)
}

#[cfg(test)]
mod mail_tests;
#[cfg(test)]
mod mailbox_tests;
#[cfg(test)]
mod tests;

/// Client request id echoed in errors.
pub(crate) fn client_request_id(h: &HeaderMap) -> Option<String> {
    crate::util::header(h, "client-request-id").map(str::to_string)
}
