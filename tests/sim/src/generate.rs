//! Deterministic bulk data for scale tests: N tenants × M users, each user with contacts,
//! appointments and tasks, mirrored into every simulator.

use serde_json::json;

use crate::error::SimError;
use crate::seed::Seed;

/// `tenants=N,users=M[,contacts=C,appointments=A,tasks=T]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Number of tenants / customer companies.
    pub tenants: usize,
    /// Users per tenant.
    pub users: usize,
    /// Contacts per user mailbox.
    pub contacts: usize,
    /// Appointments per user mailbox.
    pub appointments: usize,
    /// Tasks per user mailbox.
    pub tasks: usize,
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        GeneratorSpec {
            tenants: 1,
            users: 10,
            contacts: 2,
            appointments: 2,
            tasks: 1,
        }
    }
}

impl GeneratorSpec {
    /// Parses `tenants=2,users=10,contacts=3`.
    pub fn parse(s: &str) -> Result<GeneratorSpec, SimError> {
        let mut spec = GeneratorSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| SimError::GeneratorSpec(s.to_string()))?;
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| SimError::GeneratorSpec(s.to_string()))?;
            match k.trim() {
                "tenants" => spec.tenants = n,
                "users" => spec.users = n,
                "contacts" => spec.contacts = n,
                "appointments" => spec.appointments = n,
                "tasks" => spec.tasks = n,
                _ => return Err(SimError::GeneratorSpec(s.to_string())),
            }
        }
        Ok(spec)
    }
}

const GIVEN: [&str; 12] = [
    "Adele", "Alex", "Diego", "Grady", "Isaiah", "Johanna", "Lee", "Lidia", "Lynne", "Megan",
    "Nestor", "Patti",
];
const SURNAMES: [&str; 10] = [
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Langer",
    "Lorenz",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
];
const DEPARTMENTS: [&str; 4] = ["IT", "Sales", "HR", "Finance"];
/// SKU id of the generated Office 365 E3 licence.
pub const GENERATED_SKU: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
/// Password of every generated EWS account, Autotask secret, ConnectWise private key.
pub const GENERATED_SECRET: &str = "sim-secret";
/// Bearer token accepted by the generated Dynamics organisation.
pub const GENERATED_DYNAMICS_TOKEN: &str = "sim-dynamics-token";

/// Tenant id of generated tenant `t` (0-based).
pub fn tenant_id(t: usize) -> String {
    format!("{:08x}-0000-4000-8000-000000000000", t + 1)
}
/// App (client) id of generated tenant `t`.
pub fn client_id(t: usize) -> String {
    format!("{:08x}-0000-4000-9000-000000000001", t + 1)
}
/// Domain of generated tenant `t`.
pub fn domain(t: usize) -> String {
    format!("tenant{t}.onmicrosoft.com")
}
/// User principal name (= SMTP address) of generated user `u` of tenant `t`.
pub fn upn(t: usize, u: usize) -> String {
    format!("user{u}@{}", domain(t))
}
/// Graph id of generated user `u` of tenant `t`.
pub fn user_id(t: usize, u: usize) -> String {
    format!("{:08x}-{:04x}-4000-8000-{:012x}", t + 1, 1, u + 1)
}

/// Generates the seed for a spec (same spec → same data). Users whose index is a multiple of
/// 10 (except 0) are unlicensed, multiples of 15 are disabled.
pub fn generate(spec: &GeneratorSpec) -> Seed {
    let mut graph_tenants = vec![];
    let mut ews_accounts = vec![];
    let mut ews_items = serde_json::Map::new();
    let mut at_companies = vec![];
    let mut at_contacts = vec![];
    let mut at_appointments = vec![];
    let mut cw_companies = vec![];
    let mut cw_contacts = vec![];
    let mut cw_entries = vec![];
    let mut dyn_mailboxes = vec![];
    let mut dyn_contacts = vec![];
    let profile = "00000000-0000-4000-a000-000000000001";
    const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
    for t in 0..spec.tenants {
        let dom = domain(t);
        let mut users = vec![];
        let mut mailboxes = serde_json::Map::new();
        let company_at = 1000 + t as i64;
        let company_cw = 2000 + t as i64;
        at_companies.push(json!({"id": company_at, "companyName": format!("Tenant {t} Ltd"), "companyType": 1, "phone": format!("+1 555 01{t:02}")}));
        cw_companies.push(json!({"id": company_cw, "identifier": format!("Tenant{t}"), "name": format!("Tenant {t} Ltd"), "sites": [{"name": "Main"}]}));
        ews_accounts.push(json!({"email": format!("svc@{dom}"), "password": GENERATED_SECRET, "displayName": "Sync Service", "canImpersonate": true, "hasMailbox": false}));
        for u in 0..spec.users {
            let given = GIVEN[(u + t) % GIVEN.len()];
            let surname = SURNAMES[(u * 7 + t) % SURNAMES.len()];
            let mail = upn(t, u);
            let licensed = u == 0 || u % 10 != 0;
            let enabled = u == 0 || u % 15 != 0;
            let dept = DEPARTMENTS[u % DEPARTMENTS.len()];
            users.push(json!({
                "id": user_id(t, u), "userPrincipalName": mail, "mail": mail, "givenName": given, "surname": surname,
                "displayName": format!("{given} {surname}"), "jobTitle": if u % 3 == 0 { json!("Engineer") } else { json!(null) },
                "department": dept, "companyName": format!("Tenant {t} Ltd"), "mobilePhone": format!("+1 555 1{t:02}{u:04}"),
                "businessPhones": [format!("+1 555 2{t:02}{u:04}")], "officeLocation": format!("{}/{}", u % 5, u),
                "accountEnabled": enabled,
                "assignedLicenses": if licensed { json!([{"skuId": GENERATED_SKU, "disabledPlans": []}]) } else { json!([]) },
                "otherMails": []
            }));
            let mut events = vec![];
            let mut items = vec![];
            for a in 0..spec.appointments {
                let day = 1 + (u + a) % 27;
                let hour = 8 + a % 9;
                let (s, e) = (
                    format!("2026-03-{day:02}T{hour:02}:00:00"),
                    format!("2026-03-{day:02}T{hour:02}:30:00"),
                );
                events.push(json!({"subject": format!("Meeting {a} of {given}"), "start": {"dateTime": s, "timeZone": "UTC"}, "end": {"dateTime": e, "timeZone": "UTC"}, "location": {"displayName": format!("Room {a}")}}));
                items.push(json!({"folder": "calendar", "xml": format!(r#"<t:CalendarItem xmlns:t="{T}"><t:Subject>Meeting {a} of {given}</t:Subject><t:Start>{s}Z</t:Start><t:End>{e}Z</t:End><t:Location>Room {a}</t:Location></t:CalendarItem>"#)}));
                at_appointments.push(json!({"title": format!("Meeting {a} of {given}"), "startDateTime": format!("{s}Z"), "endDateTime": format!("{e}Z"), "resourceID": 30 + (u % 5) as i64}));
                cw_entries.push(json!({"name": format!("Meeting {a} of {given}"), "dateStart": format!("{s}Z"), "dateEnd": format!("{e}Z"),
                    "member": {"identifier": format!("tech{}", u % 5)}, "type": {"identifier": "M"}}));
            }
            let mut contacts = vec![];
            for c in 0..spec.contacts {
                let cmail = format!("ext{c}.{u}@partner{t}.example");
                contacts.push(json!({"givenName": format!("Ext{c}"), "surname": surname, "emailAddresses": [{"address": cmail, "name": format!("Ext{c} {surname}")}], "businessPhones": [format!("+1 555 3{c:02}{u:04}")]}));
                items.push(json!({"folder": "contacts", "xml": format!(r#"<t:Contact xmlns:t="{T}"><t:GivenName>Ext{c}</t:GivenName><t:Surname>{surname}</t:Surname><t:EmailAddresses><t:Entry Key="EmailAddress1">{cmail}</t:Entry></t:EmailAddresses></t:Contact>"#)}));
            }
            let mut tasks = vec![];
            for k in 0..spec.tasks {
                tasks.push(json!({"title": format!("Follow up {k}"), "dueDateTime": {"dateTime": format!("2026-03-{:02}T00:00:00", 1 + (u + k) % 27), "timeZone": "UTC"}}));
                items.push(json!({"folder": "tasks", "xml": format!(r#"<t:Task xmlns:t="{T}"><t:Subject>Follow up {k}</t:Subject><t:DueDate>2026-03-{:02}T00:00:00Z</t:DueDate></t:Task>"#, 1 + (u + k) % 27)}));
            }
            mailboxes.insert(user_id(t, u), json!({"events": events, "contacts": contacts, "todoLists": [{"displayName": "Tasks", "wellknownListName": "defaultList", "tasks": tasks}]}));
            ews_accounts.push(json!({"email": mail, "password": GENERATED_SECRET, "displayName": format!("{given} {surname}")}));
            ews_items.insert(mail.clone(), json!(items));
            at_contacts.push(json!({"companyID": company_at, "firstName": given, "lastName": surname, "emailAddress": mail, "isActive": 1, "title": if u % 3 == 0 { json!("Engineer") } else { json!(null) }}));
            cw_contacts.push(json!({"firstName": given, "lastName": surname, "company": {"id": company_cw, "identifier": format!("Tenant{t}")},
                "communicationItems": [{"type": {"id": 1, "name": "Email"}, "value": mail, "defaultFlag": true}], "types": [{"id": 1, "name": "Employee"}]}));
            dyn_mailboxes.push(json!({"name": format!("{given} {surname}"), "emailaddress": mail, "emailrouteraccessapproval": 1, "emailserverprofile@odata.bind": format!("/emailserverprofiles({profile})")}));
            dyn_contacts
                .push(json!({"firstname": given, "lastname": surname, "emailaddress1": mail}));
        }
        let all: Vec<String> = (0..spec.users).map(|u| user_id(t, u)).collect();
        let it: Vec<String> = (0..spec.users)
            .filter(|u| u % DEPARTMENTS.len() == 0)
            .map(|u| user_id(t, u))
            .collect();
        graph_tenants.push(json!({
            "id": tenant_id(t), "domain": dom,
            "apps": [{"client_id": client_id(t), "client_secret": GENERATED_SECRET}],
            "subscribedSkus": [{"skuId": GENERATED_SKU, "skuPartNumber": "ENTERPRISEPACK", "consumedUnits": spec.users}],
            "users": users,
            "groups": [
                {"id": format!("{:08x}-0000-4000-b000-000000000001", t + 1), "displayName": "All Staff", "members": all},
                {"id": format!("{:08x}-0000-4000-b000-000000000002", t + 1), "displayName": "IT", "members": it}
            ],
            "mailboxes": mailboxes
        }));
    }
    let resources: Vec<serde_json::Value> = (0..5).map(|r| json!({"id": 30 + r, "firstName": GIVEN[r as usize], "lastName": "Tech", "email": format!("tech{r}@msp.example"), "userName": format!("tech{r}"), "isActive": true})).collect();
    let members: Vec<serde_json::Value> = (0..5).map(|r| json!({"id": 30 + r, "identifier": format!("tech{r}"), "firstName": GIVEN[r as usize], "lastName": "Tech",
        "primaryEmail": format!("tech{r}@msp.example"), "timeZone": {"name": "Eastern Standard Time"}})).collect();
    let seed = json!({
        "graph": {"tenants": graph_tenants},
        "ews": {"accounts": ews_accounts, "items": ews_items},
        "autotask": {"apiUsers": [{"userName": "api@msp.example", "secret": GENERATED_SECRET, "integrationCode": "SIMCODE"}],
            "entities": {"Companies": at_companies, "Contacts": at_contacts, "Resources": resources, "Appointments": at_appointments}},
        "connectwise": {"credentials": [{"companyId": "msp", "publicKey": "sim-public", "privateKey": GENERATED_SECRET}],
            "contactTypes": [{"id": 1, "description": "Employee", "defaultFlag": true}, {"id": 2, "description": "Owner"}],
            "companies": cw_companies, "contacts": cw_contacts, "members": members, "scheduleEntries": cw_entries},
        "dynamics": {"tokens": [GENERATED_DYNAMICS_TOKEN],
            "rows": {"emailserverprofiles": [{"emailserverprofileid": profile, "name": "Exchange Online", "servertype": 3}],
                     "mailboxes": dyn_mailboxes, "contacts": dyn_contacts}}
    });
    serde_json::from_value(seed).expect("generated seed matches the seed schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        let s = GeneratorSpec::parse("tenants=3,users=50,contacts=1").unwrap();
        assert_eq!(
            (s.tenants, s.users, s.contacts, s.appointments),
            (3, 50, 1, 2)
        );
        assert!(GeneratorSpec::parse("tenants=x").is_err());
        assert!(GeneratorSpec::parse("planets=3").is_err());
    }

    #[test]
    fn deterministic_and_sized() {
        let spec = GeneratorSpec::parse("tenants=2,users=20").unwrap();
        let a = serde_json::to_string(&generate(&spec)).unwrap();
        let b = serde_json::to_string(&generate(&spec)).unwrap();
        assert!(a == b, "generator output differs between runs");
        let s = generate(&spec);
        assert_eq!(s.graph.tenants.len(), 2);
        assert_eq!(s.graph.tenants[1].users.len(), 20);
        assert_eq!(s.ews.accounts.len(), 2 * 21);
        assert_eq!(s.connectwise.contacts.len(), 40);
        assert_eq!(s.connectwise.members.len(), 5);
        assert_eq!(s.connectwise.schedule_entries.len(), 2 * 20 * 2);
        let mut cw = crate::connectwise::CwState::default();
        cw.apply_seed(&s.connectwise);
        let entries = &cw.tables["schedule/entries"];
        assert_eq!(entries.len(), 80, "every generated entry is valid");
        assert!(entries.values().all(|e| e["member"]["name"].is_string()));
    }
}
