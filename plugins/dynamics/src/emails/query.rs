//! Queries of the `emails` entity set: columns, `$filter`s of a scope, lookups.

use super::scope::{Direction, EmailScope};
use crate::odata_string;
use syncbridge_sdk::url;

/// The entity set.
pub const SET: &str = "emails";
/// Columns read of each e-mail row.
pub const SELECT: &str = "activityid,subject,description,directioncode,sender,torecipients,senton,actualend,messageid,statecode,statuscode,modifiedon";
/// The e-mail's participants (Dataverse keeps Cc only there): address and role
/// (`participationtypemask` 1 Sender, 2 To, 3 Cc, 4 Bcc).
pub const EXPAND: &str = "email_activity_parties($select=addressused,participationtypemask)";
/// Message ids per lookup query (an `or` of `eq` conditions).
pub const MESSAGE_IDS_PER_QUERY: usize = 20;

/// `statecode`/`statuscode` of the e-mail table (Dataverse's `email_statecode` and
/// `email_statuscode` choices).
pub mod status {
    /// statecode 1 Completed.
    pub const STATE_COMPLETED: i64 = 1;
    /// statuscode 3 Sent (state Completed).
    pub const SENT: i64 = 3;
    /// statuscode 4 Received (state Completed).
    pub const RECEIVED: i64 = 4;
    /// statuscode 6 Pending Send (state Completed).
    pub const PENDING_SEND: i64 = 6;
}

/// The `$filter` of a pass over `scope`; `since` (a checked UTC date-time) makes it a delta.
///
/// Incoming: received e-mail (`directioncode eq false`) with the mailbox in `torecipients` or
/// among its To/Cc parties. Outgoing: e-mail pending send from the mailbox.
pub fn pass_filter(scope: &EmailScope, since: Option<&str>) -> String {
    let address = odata_string(&scope.mailbox);
    let mut filter = match scope.direction {
        Direction::Incoming => format!(
            "directioncode eq false and (contains(torecipients,{address}) or email_activity_parties/any(p:p/addressused eq {address} and (p/participationtypemask eq 2 or p/participationtypemask eq 3)))"
        ),
        Direction::Outgoing => format!(
            "directioncode eq true and statuscode eq {} and sender eq {address}",
            status::PENDING_SEND
        ),
    };
    if let Some(at) = since {
        filter.push_str(&format!(" and modifiedon ge {at}"));
    }
    filter
}

fn query(api: &str, filter: Option<&str>) -> String {
    let mut q = format!(
        "{api}/{SET}?$select={SELECT}&$expand={}",
        url::encode_query_value(EXPAND)
    );
    if let Some(f) = filter {
        q.push_str(&format!("&$filter={}", url::encode_query_value(f)));
    }
    q
}

/// The first page of a pass over `scope`, oldest change first.
pub fn first_page_url(api: &str, scope: &EmailScope, since: Option<&str>) -> String {
    format!(
        "{}&$orderby={}",
        query(api, Some(&pass_filter(scope, since))),
        url::encode_query_value("modifiedon asc")
    )
}

/// A query for the e-mails with any of the internet message ids `ids`.
pub fn lookup_url(api: &str, ids: &[String]) -> String {
    let filter = ids
        .iter()
        .map(|m| format!("messageid eq {}", odata_string(m)))
        .collect::<Vec<_>>()
        .join(" or ");
    query(api, Some(&filter))
}

/// One e-mail by `activityid` (a checked GUID).
pub fn row_url(api: &str, id: &str) -> String {
    format!(
        "{api}/{SET}({id})?$select={SELECT}&$expand={}",
        url::encode_query_value(EXPAND)
    )
}
