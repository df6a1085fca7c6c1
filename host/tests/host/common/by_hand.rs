//! Reading and writing a connection's items directly through its connector,
//! as a person editing in Outlook (or in the PSA) would: what the engine
//! must then notice.

use syncbridge::hub::Hub;
use syncbridge::model::{Item, ItemBody, WriteAction, WriteOp};

/// Item `id` of `scope`, read through connection `connection`'s connector as the engine reads it.
pub async fn item(hub: &Hub, connection: &str, scope: &str, id: &str) -> Item {
    let (record, plugin, ctx) = hub.connection_context(connection).await.unwrap();
    hub.runtime()
        .lookup_items(
            &plugin,
            ctx,
            &record.config,
            scope,
            vec![format!("id:{id}")],
        )
        .await
        .expect("no trap")
        .value
        .expect("lookup")
        .into_iter()
        .next()
        .expect("the item is there")
}

/// One write to item `id` of `scope` through connection `connection`'s connector; it must succeed.
pub async fn write(
    hub: &Hub,
    connection: &str,
    scope: &str,
    action: WriteAction,
    id: &str,
    body: Option<ItemBody>,
    fields: &[&str],
) {
    let (record, plugin, ctx) = hub.connection_context(connection).await.unwrap();
    let answers = hub
        .runtime()
        .push(
            &plugin,
            ctx,
            &record.config,
            scope,
            vec![WriteOp {
                op_id: "by-hand".into(),
                action,
                target_id: Some(id.into()),
                body,
                fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            }],
        )
        .await
        .expect("no trap")
        .value
        .expect("the write is answered");
    assert!(answers.iter().all(|a| a.outcome.is_ok()), "{answers:?}");
}

/// Changes the named fields of item `id` of `scope` with `edit`, over the wire.
pub async fn edit(
    hub: &Hub,
    connection: &str,
    scope: &str,
    id: &str,
    fields: &[&str],
    edit: fn(&mut ItemBody),
) {
    let mut body = item(hub, connection, scope, id).await.body.unwrap();
    edit(&mut body);
    write(
        hub,
        connection,
        scope,
        WriteAction::Update,
        id,
        Some(body),
        fields,
    )
    .await;
}
