//! Local names of the SOAP and EWS elements and attributes this connector meets, kept as
//! `&'static str`: parsing a response allocates no string for them (others are allocated).

use std::borrow::Cow;
use std::sync::LazyLock;

/// Known local names (elements and attributes of SOAP, EWS messages and types, Autodiscover).
const KNOWN: &[&str] = &[
    "AbsoluteMonthlyRecurrence",
    "AbsoluteYearlyRecurrence",
    "Account",
    "Action",
    "ActualWork",
    "AdditionalProperties",
    "AdjacentMeetingCount",
    "AffectedTaskOccurrences",
    "AlternateId",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "AssistantName",
    "Attendee",
    "BasePoint",
    "BaseShape",
    "BillingInformation",
    "Birthday",
    "Body",
    "BodyType",
    "BusinessFax",
    "BusinessHomePage",
    "CalendarItem",
    "CalendarItemType",
    "Categories",
    "ChangeCount",
    "ChangeKey",
    "Changes",
    "ChildFolderCount",
    "City",
    "Companies",
    "CompanyName",
    "CompleteDate",
    "CompleteName",
    "Completeness",
    "ConflictResolution",
    "ConflictResults",
    "ConflictingMeetingCount",
    "ConnectingSID",
    "Constant",
    "Contact",
    "ContactSource",
    "Contacts",
    "ContactsFolder",
    "ConversationId",
    "ConvertId",
    "Count",
    "CountryOrRegion",
    "Create",
    "CreateFolder",
    "CreateFolderResponse",
    "CreateFolderResponseMessage",
    "CreateItem",
    "CreateItemResponse",
    "CreateItemResponseMessage",
    "Culture",
    "DailyRecurrence",
    "DateTimeCreated",
    "DateTimeReceived",
    "DateTimeSent",
    "DateTimeStamp",
    "DayOfMonth",
    "DayOfWeekIndex",
    "DaysOfWeek",
    "DelegationState",
    "Delete",
    "DeleteItem",
    "DeleteItemField",
    "DeleteItemResponse",
    "DeleteItemResponseMessage",
    "DeleteType",
    "DeletedOccurrence",
    "DeletedOccurrences",
    "Department",
    "DescriptiveLinkKey",
    "DestinationFormat",
    "DisplayName",
    "DisplayTo",
    "DistinguishedFolderId",
    "DueDate",
    "Duration",
    "EXCH",
    "EXPR",
    "EffectiveRights",
    "EmailAddress",
    "EmailAddresses",
    "End",
    "EndDate",
    "EndDateRecurrence",
    "EndTimeZone",
    "EndTimeZoneId",
    "Entry",
    "Envelope",
    "Error",
    "ErrorCode",
    "ErrorMessage",
    "EwsUrl",
    "ExchangeImpersonation",
    "ExtendedFieldURI",
    "ExtendedProperties",
    "ExtendedProperty",
    "ExternalEwsUrl",
    "Fault",
    "FieldIndex",
    "FieldOrder",
    "FieldURI",
    "FieldURIOrConstant",
    "FileAs",
    "FindFolder",
    "FindFolderResponse",
    "FindFolderResponseMessage",
    "FindItem",
    "FindItemResponse",
    "FindItemResponseMessage",
    "FirstDayOfWeek",
    "FirstOccurrence",
    "FolderClass",
    "FolderId",
    "FolderIds",
    "FolderShape",
    "Folders",
    "Format",
    "Generation",
    "GetFolder",
    "GetFolderResponse",
    "GetFolderResponseMessage",
    "GetItem",
    "GetItemResponse",
    "GetItemResponseMessage",
    "GetUserSettingsRequestMessage",
    "GetUserSettingsResponseMessage",
    "GivenName",
    "HasAttachments",
    "HasPicture",
    "Header",
    "Id",
    "ImAddresses",
    "Importance",
    "IncludesLastItemInRange",
    "IndexedFieldURI",
    "IndexedPageItemView",
    "IndexedPagingOffset",
    "Initials",
    "InstanceIndex",
    "InternalEwsUrl",
    "InternetMessageHeaders",
    "Interval",
    "IsAllDayEvent",
    "IsCancelled",
    "IsComplete",
    "IsDraft",
    "IsEqualTo",
    "IsFromMe",
    "IsMeeting",
    "IsRead",
    "IsRecurring",
    "IsResend",
    "IsSubmitted",
    "IsTeamTask",
    "IsUnmodified",
    "ItemChange",
    "ItemChanges",
    "ItemClass",
    "ItemId",
    "ItemIds",
    "ItemShape",
    "Items",
    "JobTitle",
    "Key",
    "LastModifiedName",
    "LastModifiedTime",
    "LastOccurrence",
    "LegacyFreeBusyStatus",
    "Location",
    "Mailbox",
    "MailboxType",
    "MajorBuildNumber",
    "MajorVersion",
    "Manager",
    "MaxChangesReturned",
    "MaxEntriesReturned",
    "MeetingTimeZone",
    "Message",
    "MessageText",
    "MessageXml",
    "MiddleName",
    "Mileage",
    "MinorBuildNumber",
    "MinorVersion",
    "MobilePhone",
    "ModifiedOccurrences",
    "Month",
    "MyResponseType",
    "Name",
    "Nickname",
    "NoEndRecurrence",
    "Notes",
    "NumberOfOccurrences",
    "NumberedRecurrence",
    "Occurrence",
    "OccurrenceItemId",
    "OfficeLocation",
    "Offset",
    "OptionalAttendees",
    "Order",
    "Organizer",
    "OriginalStart",
    "OtherTelephone",
    "Owner",
    "ParentFolderId",
    "ParentFolderIds",
    "PercentComplete",
    "PhoneNumbers",
    "PhysicalAddresses",
    "PostalAddressIndex",
    "PostalCode",
    "PrimarySmtpAddress",
    "Profession",
    "PropertyName",
    "PropertySetId",
    "PropertyType",
    "Protocol",
    "ReadFlagChange",
    "Recurrence",
    "RecurrenceId",
    "RecurringMasterId",
    "RelativeMonthlyRecurrence",
    "RelativeYearlyRecurrence",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderMinutesBeforeStart",
    "Request",
    "RequestServerVersion",
    "RequestedServerVersion",
    "RequestedSettings",
    "RequiredAttendees",
    "Resolution",
    "ResolutionSet",
    "Resources",
    "Response",
    "ResponseClass",
    "ResponseCode",
    "ResponseMessages",
    "ResponseType",
    "Restriction",
    "RootFolder",
    "RoutingType",
    "SavedItemFolderId",
    "SendMeetingCancellations",
    "SendMeetingInvitations",
    "SendMeetingInvitationsOrCancellations",
    "Sensitivity",
    "ServerVersionInfo",
    "SetItemField",
    "Setting",
    "Size",
    "SortOrder",
    "SourceIds",
    "SpouseName",
    "Start",
    "StartDate",
    "StartTimeZone",
    "StartTimeZoneId",
    "State",
    "Status",
    "StatusDescription",
    "Street",
    "String",
    "Subject",
    "Surname",
    "SyncFolderId",
    "SyncFolderItems",
    "SyncFolderItemsResponse",
    "SyncFolderItemsResponseMessage",
    "SyncState",
    "Task",
    "Time",
    "TimeZone",
    "TotalCount",
    "TotalItemsInView",
    "TotalWork",
    "Traversal",
    "Type",
    "UID",
    "UnreadCount",
    "UpdateItem",
    "UpdateItemResponse",
    "UpdateItemResponseMessage",
    "Updates",
    "User",
    "UserResponse",
    "UserSetting",
    "UserSettings",
    "Users",
    "Value",
    "Version",
    "WeddingAnniversary",
    "WeeklyRecurrence",
    "detail",
    "faultcode",
    "faultstring",
    "name",
];

/// Slots of the open-addressing table: a power of two, well over `KNOWN.len()`.
const SLOTS: usize = 1024;

/// `KNOWN` by FNV-1a hash with linear probing; `""` marks a free slot. Built once, read-only.
static TABLE: LazyLock<Box<[&'static str]>> = LazyLock::new(|| {
    let mut table = vec![""; SLOTS];
    for name in KNOWN {
        let mut i = slot(name.as_bytes());
        while !table[i].is_empty() && table[i] != *name {
            i = (i + 1) % SLOTS;
        }
        table[i] = name;
    }
    table.into_boxed_slice()
});

/// A multiplicative hash over 8 bytes at a time (as `FxHash`): a name costs one or two
/// multiplications, where a byte-at-a-time hash took one per byte.
fn slot(bytes: &[u8]) -> usize {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = bytes.chunks_exact(8);
    let mut h = bytes.len() as u64;
    for c in chunks.by_ref() {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let rest = chunks
        .remainder()
        .iter()
        .fold(0u64, |w, b| (w << 8) | u64::from(*b));
    h = (h.rotate_left(5) ^ rest).wrapping_mul(K);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Whether two short byte strings (names, prefixes) are equal: compared 8 bytes at a time in
/// line, where `==` calls `memcmp` (slower for a few bytes).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let words = x.by_ref().zip(y.by_ref()).all(|(x, y)| {
        u64::from_le_bytes(x.try_into().expect("8 bytes"))
            == u64::from_le_bytes(y.try_into().expect("8 bytes"))
    });
    words && x.remainder().iter().zip(y.remainder()).all(|(x, y)| x == y)
}

/// The name as a static string when known, else allocated (invalid UTF-8 replaced).
pub fn intern(bytes: &[u8]) -> Cow<'static, str> {
    let table = &*TABLE;
    let mut i = slot(bytes);
    while !table[i].is_empty() {
        if same(table[i].as_bytes(), bytes) {
            return Cow::Borrowed(table[i]);
        }
        i = (i + 1) % SLOTS;
    }
    Cow::Owned(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_static_and_others_allocated() {
        assert!(KNOWN.len() * 2 < SLOTS);
        for name in KNOWN {
            assert!(matches!(intern(name.as_bytes()), Cow::Borrowed(n) if n == *name));
        }
        assert!(matches!(intern(b"NotAnEwsName"), Cow::Owned(n) if n == "NotAnEwsName"));
        assert!(matches!(intern(b""), Cow::Owned(n) if n.is_empty()));
    }

    #[test]
    fn same_is_equality() {
        let names = [
            "",
            "t",
            "m",
            "tt",
            "Contact",
            "Contacts",
            "ContactsFolder",
            "ContactsFolderX",
        ];
        for a in names {
            for b in names {
                assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
        }
        assert!(!same(b"GetItemResponseMessage", b"GetItemResponseMessagf"));
        assert!(!same(b"GetItemResponseMessage", b"SetItemResponseMessage"));
    }
}
