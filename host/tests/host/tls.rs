//! Outbound TLS is verified against the system roots plus the CAs the
//! operator adds: a self-signed server is refused, a server whose CA the
//! operator trusts is accepted. The servers are the simulators in TLS mode.

use crate::common;

use syncbridge::capability::http::HttpSettings;
use syncbridge::model::PluginError;
use syncbridge::model::PullRequest;
use syncbridge::runtime::EngineOptions;
use syncbridge_sim::{SimConfig, Simulator, TlsMode};

async fn fetch(t: &common::TestHub, url: &str) -> Result<Option<String>, PluginError> {
    let (record, plugin, ctx) = t.hub.connection_context("c").await.unwrap();
    let request = PullRequest {
        scope: format!("fetch:{url}"),
        cursor: None,
        max_items: 1,
    };
    t.hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .unwrap()
        .value
        .map(|p| p.cursor)
}

async fn hub(extra_ca: Option<String>) -> common::TestHub {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let http = HttpSettings {
        extra_ca_pems: extra_ca.into_iter().map(String::into_bytes).collect(),
        ..HttpSettings::default()
    };
    let t = common::hub_with_options(
        dir,
        &url,
        EngineOptions {
            http,
            ..EngineOptions::default()
        },
    )
    .await;
    common::install(&t.hub, "misbehave").await;
    common::loopback_connection(&t.hub, "c", "misbehave", "{}", &[]).await;
    t
}

fn https_localhost(sim: &Simulator) -> String {
    format!("https://localhost:{}/_admin/requests", sim.addr().port())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_server_is_refused() {
    let sim = Simulator::start(SimConfig {
        tls: TlsMode::SelfSigned,
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let t = hub(None).await;
    match fetch(&t, &https_localhost(&sim)).await {
        Err(PluginError::Forbidden(m)) => {
            assert!(m.contains("not trusted") && m.contains("--ca-cert"), "{m}")
        }
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_added_ca_is_trusted() {
    let sim = Simulator::start(SimConfig {
        tls: TlsMode::GeneratedCa,
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let ca = sim
        .ca_pem()
        .expect("the simulator publishes its CA")
        .to_owned();
    // Without the CA: refused.
    let without = hub(None).await;
    assert!(matches!(
        fetch(&without, &https_localhost(&sim)).await,
        Err(PluginError::Forbidden(_))
    ));
    // With it: the request goes through.
    let with = hub(Some(ca)).await;
    assert_eq!(
        fetch(&with, &https_localhost(&sim)).await.unwrap(),
        Some("200".into())
    );
}
