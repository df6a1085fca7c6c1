//! Writing a batch: one CreateItem for the creates, one UpdateItem for the updates (only the
//! named fields) and one DeleteItem for the deletions, in that order; no meeting mail is sent.
//! After a throttled or refused call the later calls are not made: their operations carry the
//! same error, as `syncbridge_sdk::batch::push_each` does.

use crate::error::EwsError;
use crate::map;
use crate::ops::{self, Change, Folder, Kind};
use crate::scope::MailboxScope;
use crate::soap::{self, Target};
use crate::xml::Elem;
use crate::Config;
use syncbridge_sdk::types::mailbox::{MailboxBody, MailboxWriteOp};
use syncbridge_sdk::types::{PluginError, WriteAction, WriteOk, WriteResult};

/// Items per CreateItem/UpdateItem/DeleteItem request.
pub const WRITE_BATCH: usize = 50;

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Calendar => "an event",
        Kind::Contacts => "a contact",
        Kind::Tasks => "a todo",
    }
}

/// The `t:` item of a create.
pub fn create_xml(kind: Kind, body: Option<&MailboxBody>) -> Result<String, PluginError> {
    match (kind, body) {
        (Kind::Calendar, Some(MailboxBody::Event(e))) => map::event::create_xml(e),
        (Kind::Contacts, Some(MailboxBody::Contact(c))) => map::contact::create_xml(c),
        (Kind::Tasks, Some(MailboxBody::Todo(t))) => map::todo::create_xml(t),
        _ => Err(PluginError::invalid_field(
            "body",
            format!("this scope writes {}", kind_name(kind)),
        )),
    }
}

/// The `SetItemField`/`DeleteItemField` changes of an update.
pub fn update_xml(
    kind: Kind,
    body: Option<&MailboxBody>,
    fields: &[String],
) -> Result<String, PluginError> {
    match (kind, body) {
        (Kind::Calendar, Some(MailboxBody::Event(e))) => map::event::update_xml(e, fields),
        (Kind::Contacts, Some(MailboxBody::Contact(c))) => map::contact::update_xml(c, fields),
        (Kind::Tasks, Some(MailboxBody::Todo(t))) => map::todo::update_xml(t, fields),
        _ => Err(PluginError::invalid_field(
            "body",
            format!("this scope writes {}", kind_name(kind)),
        )),
    }
}

fn written(item: Option<&Elem>) -> Option<WriteOk> {
    let id = item?.child("ItemId")?;
    Some(WriteOk {
        target_id: id.attr("Id")?.to_owned(),
        version: id.attr("ChangeKey").map(str::to_owned),
    })
}

fn stops(e: &PluginError) -> bool {
    matches!(e, PluginError::Throttled(_) | PluginError::Auth(_))
}

/// Applies a batch; one result per operation, in order.
pub fn push(cfg: &Config, scope: &MailboxScope, batch: Vec<MailboxWriteOp>) -> Vec<WriteResult> {
    let mut outcomes: Vec<Option<Result<WriteOk, PluginError>>> = vec![None; batch.len()];
    let resolved = (|| -> Result<(Target, Folder, Kind), PluginError> {
        match scope {
            MailboxScope::Mailbox { kind, mailbox, .. } => {
                let target = cfg.target(mailbox)?;
                let folder = cfg.folder(&target, kind.folder(), mailbox);
                Ok((target, folder, *kind))
            }
            MailboxScope::PublicContacts { path } => {
                let target = cfg.public_target()?;
                let folder = Folder::Id(crate::pull::public_folder(cfg, &target, path)?);
                Ok((target, folder, Kind::Contacts))
            }
        }
    })();
    let (target, folder, kind) = match resolved {
        Ok(r) => r,
        Err(e) => return finish(batch, vec![Some(Err(e)); outcomes.len()]),
    };
    let mut creates: Vec<(usize, String)> = Vec::new();
    let mut updates: Vec<(usize, Change)> = Vec::new();
    let mut deletes: Vec<(usize, String)> = Vec::new();
    for (i, op) in batch.iter().enumerate() {
        let id = op.target_id.clone().filter(|t| !t.is_empty());
        let prepared = match (op.action, id) {
            (WriteAction::Create, _) => {
                create_xml(kind, op.body.as_ref()).map(|x| creates.push((i, x)))
            }
            (WriteAction::Update, Some(id)) => {
                update_xml(kind, op.body.as_ref(), &op.fields).map(|u| {
                    if u.is_empty() {
                        outcomes[i] = Some(Ok(WriteOk {
                            target_id: id,
                            version: None,
                        }));
                    } else {
                        updates.push((
                            i,
                            Change {
                                id,
                                change_key: None,
                                updates: u,
                            },
                        ));
                    }
                })
            }
            (WriteAction::Delete | WriteAction::Deactivate, Some(id)) => {
                deletes.push((i, id));
                Ok(())
            }
            (WriteAction::Reactivate, _) => Err(PluginError::invalid(
                "mailbox items cannot be reactivated: a deleted item is created again",
            )),
            (_, None) => Err(PluginError::invalid_field(
                "target-id",
                "an update or delete needs the item's id",
            )),
        };
        if let Err(e) = prepared {
            outcomes[i] = Some(Err(e));
        }
    }
    let mut stop: Option<PluginError> = None;
    let first_item = |m: &Elem| m.child("Items").and_then(|i| i.children.first()).cloned();
    for chunk in creates.chunks(WRITE_BATCH) {
        let xml: Vec<String> = chunk.iter().map(|(_, x)| x.clone()).collect();
        send(
            &target,
            &mut stop,
            chunk.iter().map(|(i, _)| *i).collect(),
            ops::create_item(&folder, &xml),
            &mut outcomes,
            |_, m| {
                let m = m?;
                written(first_item(m).as_ref())
                    .ok_or_else(|| PluginError::invalid("CreateItem answered no ItemId"))
            },
        );
    }
    for chunk in updates.chunks(WRITE_BATCH) {
        let changes: Vec<Change> = chunk.iter().map(|(_, c)| c.clone()).collect();
        let ids: Vec<String> = changes.iter().map(|c| c.id.clone()).collect();
        let idx: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
        send(
            &target,
            &mut stop,
            idx.clone(),
            ops::update_item(&changes),
            &mut outcomes,
            |i, m| {
                let m = m?;
                let pos = idx.iter().position(|x| *x == i).unwrap_or(0);
                Ok(written(first_item(m).as_ref()).unwrap_or(WriteOk {
                    target_id: ids[pos].clone(),
                    version: None,
                }))
            },
        );
    }
    // A series' exceptions are written once its master is in place.
    for (i, op) in batch.iter().enumerate() {
        let Some(MailboxBody::Event(ev)) = &op.body else {
            continue;
        };
        let Some(series) = &ev.series else { continue };
        let writes_series =
            op.action == WriteAction::Create || op.fields.iter().any(|f| f == "series");
        let Some(Ok(done)) = &outcomes[i] else {
            continue;
        };
        if !writes_series || stop.is_some() {
            continue;
        }
        if let Err(e) = crate::series::write_exceptions(
            &target,
            &done.target_id,
            ev,
            series,
            op.action == WriteAction::Update,
        ) {
            if op.action == WriteAction::Create {
                // Creating again would duplicate the series: the master stays, the next update
                // of `series` writes the exceptions again.
                syncbridge_sdk::log::warn!(
                    "the exceptions of series {} were not written: {}",
                    done.target_id,
                    e.describe()
                );
            } else {
                outcomes[i] = Some(Err(e));
            }
        }
    }
    for chunk in deletes.chunks(WRITE_BATCH) {
        let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
        let idx: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
        send(
            &target,
            &mut stop,
            idx.clone(),
            ops::delete_item(&ids),
            &mut outcomes,
            |i, m| {
                let pos = idx.iter().position(|x| *x == i).unwrap_or(0);
                match m {
                    // Already gone is what a delete wants.
                    Ok(_) | Err(EwsError::NotFound { .. }) => Ok(WriteOk {
                        target_id: ids[pos].clone(),
                        version: None,
                    }),
                    Err(e) => Err(e.into()),
                }
            },
        );
    }
    finish(batch, outcomes)
}

/// Sends one call for `ops_` and records each operation's outcome from its response message;
/// after a throttled or refused call (`stop`) nothing more is sent.
fn send(
    target: &Target,
    stop: &mut Option<PluginError>,
    ops_: Vec<usize>,
    body: String,
    outcomes: &mut [Option<Result<WriteOk, PluginError>>],
    on_ok: impl Fn(usize, Result<&Elem, EwsError>) -> Result<WriteOk, PluginError>,
) {
    if ops_.is_empty() {
        return;
    }
    if let Some(e) = stop.as_ref() {
        for i in ops_ {
            outcomes[i] = Some(Err(e.clone()));
        }
        return;
    }
    match soap::call(target, &body) {
        Ok(resp) => {
            let msgs = soap::messages(&resp);
            for (n, i) in ops_.into_iter().enumerate() {
                outcomes[i] = Some(match msgs.get(n) {
                    Some(m) => on_ok(i, m.clone()),
                    None => Err(EwsError::Malformed {
                        status: 200,
                        detail: format!("{} answered too few messages", resp.name),
                    }
                    .into()),
                });
            }
        }
        Err(e) => {
            if stops(&e) {
                *stop = Some(e.clone());
            }
            for i in ops_ {
                outcomes[i] = Some(Err(e.clone()));
            }
        }
    }
}

fn finish(
    batch: Vec<MailboxWriteOp>,
    outcomes: Vec<Option<Result<WriteOk, PluginError>>>,
) -> Vec<WriteResult> {
    batch
        .into_iter()
        .zip(outcomes)
        .map(|(op, o)| WriteResult {
            op_id: op.op_id,
            outcome: o.unwrap_or_else(|| Err(PluginError::invalid("operation was not applied"))),
        })
        .collect()
}
