//! Opaque skip/delta tokens and the generic delta-round logic shared by users, events and
//! contacts.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// State carried inside `$skiptoken` / `$deltatoken` values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageToken {
    /// Delta epoch at issue time (admin can expire all tokens).
    pub e: u64,
    /// Tenant id the token is bound to.
    pub t: String,
    /// Resource the token belongs to (`users`, `events:{uid}`…).
    pub k: String,
    /// Changes after this sequence number…
    pub s: u64,
    /// …up to this one are part of the round.
    pub u: u64,
    /// Offset of the next page.
    pub o: usize,
    /// `$select` of the round.
    #[serde(default)]
    pub sel: Option<String>,
    /// Calendar window of the round.
    #[serde(default)]
    pub w: Option<(String, String)>,
}

impl PageToken {
    /// Opaque string form.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }
    /// Parses the opaque form.
    pub fn decode(s: &str) -> Option<PageToken> {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .ok()?;
        serde_json::from_slice(&b).ok()
    }
}

/// One candidate object of a delta round.
pub struct DeltaItem {
    /// Change sequence number.
    pub seq: u64,
    /// Removal reason for tombstones.
    pub removed: Option<String>,
    /// The object.
    pub data: Value,
}

impl From<&super::Rec> for DeltaItem {
    /// The record as it stands, tombstone included.
    fn from(r: &super::Rec) -> Self {
        DeltaItem {
            seq: r.seq,
            removed: r.removed.clone(),
            data: r.data.clone(),
        }
    }
}

/// Result of one delta page.
pub struct DeltaPage {
    /// Objects of the page (already shaped).
    pub value: Vec<Value>,
    /// `$skiptoken` of the next page, if any.
    pub next: Option<PageToken>,
    /// `$deltatoken` for the next round (on the last page).
    pub delta: Option<PageToken>,
}

/// Computes one page of a delta round. `odata_type` is used for tombstones.
pub fn page(
    mut items: Vec<DeltaItem>,
    tok: &PageToken,
    page_size: usize,
    odata_type: &str,
    shape: impl Fn(&Value) -> Value,
) -> DeltaPage {
    let initial = tok.s == 0;
    items.retain(|i| i.seq > tok.s && i.seq <= tok.u && !(initial && i.removed.is_some()));
    items.sort_by_key(|i| i.seq);
    let total = items.len();
    let value: Vec<Value> = items
        .iter()
        .skip(tok.o)
        .take(page_size)
        .map(|i| match &i.removed {
            Some(reason) => json!({
                "@odata.type": odata_type,
                "id": i.data.get("id").cloned().unwrap_or(Value::Null),
                "@removed": {"reason": reason},
            }),
            None => shape(&i.data),
        })
        .collect();
    let end = tok.o + value.len();
    if end < total {
        DeltaPage {
            value,
            next: Some(PageToken {
                o: end,
                ..tok.clone()
            }),
            delta: None,
        }
    } else {
        DeltaPage {
            value,
            next: None,
            delta: Some(PageToken {
                s: tok.u,
                u: 0,
                o: 0,
                ..tok.clone()
            }),
        }
    }
}
