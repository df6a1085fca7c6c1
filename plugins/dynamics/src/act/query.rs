//! Queries of the owner's rows: columns, the `$filter` of a pass, one row by key.

use super::scope::Kind;
use syncbridge_sdk::url;

/// Columns read of each appointment row.
pub const APPOINTMENT_SELECT: &str = "activityid,subject,description,scheduledstart,scheduledend,isalldayevent,location,utcconversiontimezonecode,statecode,statuscode,modifiedon";
/// Columns read of each recurring appointment master row (the series and its pattern).
pub const RECURRING_SELECT: &str = "activityid,subject,description,location,starttime,endtime,isalldayevent,patternstartdate,patternenddate,patternendtype,occurrences,recurrencepatterntype,interval,daysofweekmask,dayofmonth,monthofyear,instance,isweekdaypattern,isnthmonthly,isnthyearly,firstdayofweek,deletedexceptionslist,utcconversiontimezonecode,statecode,statuscode,modifiedon";
/// Columns read of each task row.
pub const TASK_SELECT: &str = "activityid,subject,description,scheduledstart,scheduledend,actualend,percentcomplete,statecode,statuscode,modifiedon";
/// Columns read of each contact row.
pub const CONTACT_SELECT: &str = "contactid,firstname,lastname,fullname,jobtitle,emailaddress1,emailaddress2,telephone1,mobilephone,department,address1_city,statecode,statuscode,modifiedon";

/// The columns read of a kind's rows.
pub fn select(kind: Kind) -> &'static str {
    match kind {
        Kind::Appointments => APPOINTMENT_SELECT,
        Kind::RecurringAppointments => RECURRING_SELECT,
        Kind::Tasks => TASK_SELECT,
        Kind::Contacts => CONTACT_SELECT,
    }
}

/// The `$filter` of a pass over the rows of `kind` owned by `owner` (a checked GUID); `since` (a
/// checked UTC date-time) makes it a delta. Appointments are only single ones
/// (`instancetypecode eq 0` Not Recurring): the occurrences and exceptions of recurring series
/// are left out; the series themselves are the masters of `recurringappointmentmasters`
/// ([`Kind::RecurringAppointments`]), which holds nothing else. Closed rows are read too (a
/// canceled activity is a removal).
pub fn pass_filter(kind: Kind, owner: &str, since: Option<&str>) -> String {
    let mut filter = format!("_ownerid_value eq {owner}");
    if kind == Kind::Appointments {
        filter.push_str(" and instancetypecode eq 0");
    }
    if let Some(at) = since {
        filter.push_str(&format!(" and modifiedon ge {at}"));
    }
    filter
}

/// The first page of a pass, oldest change first.
pub fn first_page_url(api: &str, kind: Kind, owner: &str, since: Option<&str>) -> String {
    format!(
        "{api}/{}?$select={}&$filter={}&$orderby={}",
        kind.set(),
        select(kind),
        url::encode_query_value(&pass_filter(kind, owner, since)),
        url::encode_query_value("modifiedon asc")
    )
}

/// One row by key (a checked GUID).
pub fn row_url(api: &str, kind: Kind, id: &str) -> String {
    format!("{api}/{}({id})?$select={}", kind.set(), select(kind))
}
