//! Parse + map throughput of EWS responses (items/s): `FindItem`, `GetItem` and
//! `SyncFolderItems` answers with generated contacts and calendar items, read by the wire layer
//! (`soap::read_response`, `soap::into_messages`) and mapped to the canonical model
//! (`pull::take_item`).
//!
//! `cargo run --release -p ews --features bench --bin parse_bench [-- <items> <out-dir>]`; with
//! an out-dir it also writes the responses there (for `scripts/ews-bench-exchangelib.py`). Built
//! for `wasm32-wasip2`, it runs as a command component (see `docs/benchmarks.md`).

use ews::ops::Kind;
use ews::{pull, soap};
use std::time::Instant;

const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";

fn contact(n: usize) -> String {
    format!(
        r#"<t:Contact><t:ItemId Id="AAMkAD{n:08}" ChangeKey="EQAAABYq{n}"/><t:ParentFolderId Id="AQAtAEFk==" ChangeKey="AQAAAA=="/><t:ItemClass>IPM.Contact</t:ItemClass><t:Subject>Given{n} Sur{n}</t:Subject><t:Sensitivity>Normal</t:Sensitivity><t:Body BodyType="Text">Notes about contact {n}</t:Body><t:Categories><t:String>Customer</t:String></t:Categories><t:DateTimeCreated>2026-01-01T10:00:00Z</t:DateTimeCreated><t:HasAttachments>false</t:HasAttachments><t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11" PropertyName="syncbridgeAnchor" PropertyType="String"/><t:Value>link-{n}</t:Value></t:ExtendedProperty><t:LastModifiedTime>2026-01-02T10:00:00Z</t:LastModifiedTime><t:FileAs>Sur{n}, Given{n}</t:FileAs><t:DisplayName>Given{n} Sur{n}</t:DisplayName><t:GivenName>Given{n}</t:GivenName><t:CompanyName>Contoso {n}</t:CompanyName><t:EmailAddresses><t:Entry Key="EmailAddress1">given{n}@contoso.com</t:Entry><t:Entry Key="EmailAddress2">g{n}@fabrikam.com</t:Entry></t:EmailAddresses><t:PhysicalAddresses><t:Entry Key="Business"><t:Street>{n} Main St</t:Street><t:City>Oslo</t:City><t:CountryOrRegion>Norway</t:CountryOrRegion><t:PostalCode>0150</t:PostalCode></t:Entry></t:PhysicalAddresses><t:PhoneNumbers><t:Entry Key="BusinessPhone">+47 555 {n}</t:Entry><t:Entry Key="MobilePhone">+47 999 {n}</t:Entry></t:PhoneNumbers><t:Department>Sales</t:Department><t:JobTitle>Buyer</t:JobTitle><t:Surname>Sur{n}</t:Surname></t:Contact>"#
    )
}

fn calendar_item(n: usize) -> String {
    let day = 1 + n % 28;
    format!(
        r#"<t:CalendarItem><t:ItemId Id="AAMkAE{n:08}" ChangeKey="DwAAABYA{n}"/><t:ParentFolderId Id="AQAtAEFl==" ChangeKey="AQAAAA=="/><t:ItemClass>IPM.Appointment</t:ItemClass><t:Subject>Meeting {n}</t:Subject><t:Sensitivity>Normal</t:Sensitivity><t:Body BodyType="HTML">&lt;p&gt;Agenda {n}&lt;/p&gt;</t:Body><t:Categories><t:String>PSA</t:String></t:Categories><t:ReminderIsSet>true</t:ReminderIsSet><t:ReminderMinutesBeforeStart>15</t:ReminderMinutesBeforeStart><t:Start>2026-02-{day:02}T08:00:00Z</t:Start><t:End>2026-02-{day:02}T09:00:00Z</t:End><t:IsAllDayEvent>false</t:IsAllDayEvent><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus><t:Location>Room {n}</t:Location><t:IsMeeting>true</t:IsMeeting><t:CalendarItemType>Single</t:CalendarItemType><t:Organizer><t:Mailbox><t:Name>Alice</t:Name><t:EmailAddress>alice@contoso.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:Organizer><t:RequiredAttendees><t:Attendee><t:Mailbox><t:Name>Bob</t:Name><t:EmailAddress>bob@contoso.com</t:EmailAddress></t:Mailbox><t:ResponseType>Accept</t:ResponseType></t:Attendee></t:RequiredAttendees><t:StartTimeZone Id="W. Europe Standard Time"/><t:EndTimeZone Id="W. Europe Standard Time"/></t:CalendarItem>"#
    )
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="8606" MinorBuildNumber="23" Version="V2018_01_08" xmlns:h="{T}"/></s:Header><s:Body xmlns:m="{M}" xmlns:t="{T}">{body}</s:Body></s:Envelope>"#
    )
}

fn get_item(items: &[String]) -> String {
    let msgs: String = items.iter().map(|i| format!(r#"<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>{i}</m:Items></m:GetItemResponseMessage>"#)).collect();
    envelope(&format!(
        "<m:GetItemResponse><m:ResponseMessages>{msgs}</m:ResponseMessages></m:GetItemResponse>"
    ))
}

fn find_item(items: &[String]) -> String {
    envelope(&format!(
        r#"<m:FindItemResponse><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:RootFolder IndexedPagingOffset="{}" TotalItemsInView="{}" IncludesLastItemInRange="true"><t:Items>{}</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#,
        items.len(),
        items.len(),
        items.concat()
    ))
}

fn sync(items: &[String]) -> String {
    let changes: String = items
        .iter()
        .map(|i| format!("<t:Create>{i}</t:Create>"))
        .collect();
    envelope(&format!(
        r#"<m:SyncFolderItemsResponse><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:SyncState>H4sIAAAAAAAEAO29B2AcSZ</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange><m:Changes>{changes}</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#
    ))
}

/// Parses and maps one response as `pull::get_items` does (the messages and their items moved
/// out of the response, their texts moved on into the model); answers the number of items mapped.
fn parse_and_map(body: &str, kind: Kind) -> usize {
    let resp = soap::read_response(200, body, false, None).expect("a response");
    let mut n = 0;
    for msg in soap::into_messages(resp) {
        let mut msg = msg.expect("success");
        let items: Vec<&mut ews::xml::Elem> = if let Some(items) = msg.child_mut("Items") {
            items.children.iter_mut().collect()
        } else if let Some(root) = msg.child_mut("RootFolder") {
            root.child_mut("Items")
                .map(|i| i.children.iter_mut().collect())
                .unwrap_or_default()
        } else {
            msg.child_mut("Changes")
                .map(|c| {
                    c.children
                        .iter_mut()
                        .filter_map(|ch| ch.children.first_mut())
                        .collect()
                })
                .unwrap_or_default()
        };
        for el in items {
            pull::take_item(kind, el, Vec::new()).expect("maps");
            n += 1;
        }
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let out = args.get(2);
    let contacts: Vec<String> = (0..count).map(contact).collect();
    let events: Vec<String> = (0..count).map(calendar_item).collect();
    let cases = [
        ("finditem-contacts", find_item(&contacts), Kind::Contacts),
        ("getitem-contacts", get_item(&contacts), Kind::Contacts),
        ("getitem-calendar", get_item(&events), Kind::Calendar),
        ("syncfolderitems-calendar", sync(&events), Kind::Calendar),
    ];
    println!(
        "{:<26} {:>8} {:>10} {:>12}",
        "response", "items", "bytes", "items/s"
    );
    for (name, body, kind) in &cases {
        if let Some(dir) = out {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(format!("{dir}/{name}.xml"), body).unwrap();
        }
        assert_eq!(parse_and_map(body, *kind), count);
        let rounds = 20;
        let start = Instant::now();
        let mut total = 0;
        for _ in 0..rounds {
            total += parse_and_map(std::hint::black_box(body), *kind);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<26} {count:>8} {:>10} {:>12.0}",
            body.len(),
            total as f64 / secs
        );
    }
}
