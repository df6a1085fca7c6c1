//! `http-probe`: a small real connector.
//!
//! - `test-connection` GETs `{base_url}{health_path}` with the `default`
//!   credential and remembers the answer in state (`last-test-status`).
//! - `pull(scope)` reads `{base_url}/{scope}?cursor=…`, a JSON feed of the form
//!   `{"items":[{"id","version","first_name","last_name","email"}],"next":…}`
//!   (with `"more": false` the `next` cursor ends the pass: a delta cursor),
//!   and counts pages read in state (`pages-read`).

use serde::Deserialize;
use syncbridge_sdk::http::Request;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::state;

/// Connection configuration.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Config {
    /// Service root, e.g. https://feed.example.com
    pub base_url: String,
    /// Path checked by test-connection.
    #[serde(default = "default_health_path")]
    pub health_path: String,
}

fn default_health_path() -> String {
    "/health".into()
}

#[derive(Debug, Deserialize)]
struct FeedPage {
    items: Vec<FeedItem>,
    next: Option<String>,
    /// `false` with a `next` ends the pass with a delta cursor (the next run
    /// reads changes from it); absent, `next` means another page.
    #[serde(default)]
    more: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct FeedItem {
    id: String,
    version: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    #[serde(default)]
    deleted: bool,
}

/// The connector.
pub struct HttpProbe;

impl Connector for HttpProbe {
    type Config = Config;

    fn describe() -> Description {
        Description {
            reads: vec![ItemKind::Contact],
            credential_slots: vec!["default".into()],
            ..Description::named("HTTP probe")
        }
    }

    fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
        let url = format!("{}{}", cfg.base_url.trim_end_matches('/'), cfg.health_path);
        let response = Request::get(&url).credential("default").send()?;
        state::set("last-test-status", &response.status().to_string());
        Ok(vec![match response.status() {
            200..=299 => Finding::ok("endpoint"),
            401 => Finding::failed(
                "credentials",
                format!("{url} rejected the credentials (HTTP 401)"),
                "check the user name and password of the connection",
            ),
            s => Finding::failed(
                "endpoint",
                format!("{url} answered HTTP {s}"),
                "check the base URL and that the service is up",
            ),
        }])
    }

    fn pull(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
        let mut url = format!("{}/{}", cfg.base_url.trim_end_matches('/'), request.scope);
        if let Some(cursor) = &request.cursor {
            url.push_str("?cursor=");
            url.push_str(cursor);
        }
        let feed: FeedPage = Request::get(&url).credential("default").send()?.json()?;
        let pages = state::get("pages-read")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        state::set("pages-read", &(pages + 1).to_string());
        Ok(Page {
            more: feed.more.unwrap_or(feed.next.is_some()),
            full: request.cursor.is_none(),
            cursor: feed.next,
            items: feed.items.into_iter().map(to_item).collect(),
        })
    }
}

fn to_item(f: FeedItem) -> Item {
    Item {
        id: f.id,
        version: f.version,
        removed: f.deleted.then_some(Removal::Deleted),
        body: Some(ItemBody::Contact(Contact {
            first_name: f.first_name,
            last_name: f.last_name,
            display_name: None,
            title: None,
            email: f.email,
            phone: None,
            mobile: None,
            company: None,
            site: None,
            contact_types: Vec::new(),
            active: !f.deleted,
            extra: Vec::new(),
        })),
    }
}

syncbridge_sdk::export_connector!(HttpProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use syncbridge_sdk::exports;
    use syncbridge_sdk::testing::{response, state as test_state, with_http};

    #[test]
    fn pull_maps_feed_items_and_counts_pages() {
        let page = with_http(
            |req| {
                assert_eq!(req.url, "http://feed.test/contacts?cursor=abc");
                assert_eq!(req.credential.as_deref(), Some("default"));
                Ok(response(
                    200,
                    r#"{"items":[{"id":"1","first_name":"Ada","email":"ada@x.test"},{"id":"2","deleted":true}],"next":"def"}"#,
                ))
            },
            || {
                exports::pull::<HttpProbe>(
                    r#"{"base_url":"http://feed.test/"}"#,
                    PullRequest {
                        scope: "contacts".into(),
                        cursor: Some("abc".into()),
                        max_items: 100,
                    },
                )
            },
        )
        .expect("pull succeeds");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.cursor.as_deref(), Some("def"));
        assert!(page.more && !page.full);
        assert!(matches!(page.items[1].removed, Some(Removal::Deleted)));
        assert_eq!(test_state::get("pages-read").as_deref(), Some("1"));
    }

    #[test]
    fn test_connection_names_rejected_credentials() {
        let findings = with_http(
            |_| Ok(response(401, "")),
            || exports::test_connection::<HttpProbe>(r#"{"base_url":"http://feed.test"}"#),
        )
        .expect("test runs");
        assert_eq!(findings[0].check, "credentials");
        assert!(matches!(findings[0].outcome, Outcome::Failed));
        assert_eq!(test_state::get("last-test-status").as_deref(), Some("401"));
    }

    #[test]
    fn bad_config_is_invalid() {
        let err = exports::pull::<HttpProbe>(
            "{}",
            PullRequest {
                scope: "x".into(),
                cursor: None,
                max_items: 1,
            },
        )
        .unwrap_err();
        assert_eq!(err.class(), "invalid");
        assert!(err.describe().contains("base_url"), "{}", err.describe());
    }

    #[test]
    fn describe_derives_the_config_schema() {
        let d = exports::describe::<HttpProbe>();
        let schema: serde_json::Value = serde_json::from_str(&d.config_schema).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["base_url"]));
        assert_eq!(schema["properties"]["health_path"]["type"], "string");
    }
}
