//! Applying a `push` batch one operation at a time.

use crate::types::mailbox::MailboxWriteOp;
use crate::types::{PluginError, WriteOk, WriteOp, WriteResult};

/// A write operation of a `push` batch: core items or mailbox items (WIT 0.1.3).
pub trait BatchOp {
    /// The host's id of the operation, echoed in its result.
    fn op_id(&self) -> &str;
}

impl BatchOp for WriteOp {
    fn op_id(&self) -> &str {
        &self.op_id
    }
}

impl BatchOp for MailboxWriteOp {
    fn op_id(&self) -> &str {
        &self.op_id
    }
}

/// Applies `write` to each operation of `batch` in order, one result each.
///
/// After a `throttled` answer (or refused credentials: `auth`) the rest of the
/// batch is not sent: each remaining operation carries the same error, with
/// its `Retry-After`, so the engine retries them later instead of the service
/// being hammered on. Other errors fail only their own operation.
pub fn push_each<O: BatchOp>(
    batch: Vec<O>,
    mut write: impl FnMut(&O) -> Result<WriteOk, PluginError>,
) -> Vec<WriteResult> {
    let mut stop: Option<PluginError> = None;
    let mut results = Vec::with_capacity(batch.len());
    for op in batch {
        let outcome = match &stop {
            Some(e) => Err(e.clone()),
            None => write(&op),
        };
        if let (None, Err(e @ (PluginError::Throttled(_) | PluginError::Auth(_)))) =
            (&stop, &outcome)
        {
            log::warn!(
                "stopping the batch after op {}: {}",
                op.op_id(),
                e.describe()
            );
            stop = Some(e.clone());
        }
        results.push(WriteResult {
            op_id: op.op_id().to_owned(),
            outcome,
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Throttle, WriteAction};

    fn op(n: u32) -> WriteOp {
        WriteOp {
            op_id: n.to_string(),
            action: WriteAction::Create,
            target_id: None,
            body: None,
            fields: Vec::new(),
        }
    }

    #[test]
    fn stops_after_a_throttle_and_carries_its_retry_after() {
        let mut sent = Vec::new();
        let results = push_each((1..=4).map(op).collect(), |op| {
            sent.push(op.op_id.clone());
            match op.op_id.as_str() {
                "1" => Err(PluginError::invalid("bad phone")),
                "2" => Ok(WriteOk {
                    target_id: "2".into(),
                    version: None,
                }),
                _ => Err(PluginError::Throttled(Throttle {
                    message: "slow down".into(),
                    retry_after_ms: Some(30_000),
                })),
            }
        });
        assert_eq!(sent, ["1", "2", "3"], "nothing is sent after the throttle");
        assert_eq!(results.len(), 4);
        assert_eq!(results[0].outcome.as_ref().unwrap_err().class(), "invalid");
        assert!(results[1].outcome.is_ok());
        for r in &results[2..] {
            match &r.outcome {
                Err(PluginError::Throttled(t)) => assert_eq!(t.retry_after_ms, Some(30_000)),
                other => panic!("op {}: {other:?}", r.op_id),
            }
        }
    }

    #[test]
    fn stops_after_refused_credentials() {
        let results = push_each((1..=3).map(op).collect(), |_| {
            Err(PluginError::Auth("401".into()))
        });
        assert!(results
            .iter()
            .all(|r| r.outcome.as_ref().unwrap_err().class() == "auth"));
    }
}
