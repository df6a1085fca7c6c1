//! `syncbridge-sim`: runs the simulators as a process.

use std::path::PathBuf;

use clap::Parser;
use syncbridge_sim::{
    parse_duration, GeneratorSpec, Seed, Services, SimConfig, Simulator, TlsMode,
};

/// Offline simulators of Microsoft Graph (+ Entra token endpoint), Exchange Web Services,
/// Autotask REST, ConnectWise Manage REST and the Dynamics 365 Web API, served on one
/// 127.0.0.1 port. With no service flag, all services are started.
///
/// Admin API on the same port: /_admin/faults, /_admin/seed, /_admin/state,
/// /_admin/requests, /_admin/scenarios, /_admin/latency (see docs/simulators.md).
#[derive(Parser, Debug)]
#[command(name = "syncbridge-sim", version, about, long_about)]
struct Args {
    /// Serve Microsoft Graph /v1.0 and POST /{tenant}/oauth2/v2.0/token.
    #[arg(long)]
    graph: bool,
    /// Serve Autotask REST /ATServicesRest/V1.0.
    #[arg(long)]
    autotask: bool,
    /// Serve ConnectWise /v4_6_release/apis/3.0.
    #[arg(long)]
    connectwise: bool,
    /// Serve EWS /EWS/Exchange.asmx and /autodiscover/autodiscover.xml.
    #[arg(long)]
    ews: bool,
    /// Serve Dynamics 365 /api/data/v9.2.
    #[arg(long)]
    dynamics: bool,
    /// Port on 127.0.0.1 (0 = pick a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed file (JSON with optional sections graph, autotask, connectwise, ews, dynamics).
    #[arg(long, value_name = "FILE")]
    seed: Option<PathBuf>,
    /// Generate deterministic data, e.g. `tenants=3,users=50[,contacts=2,appointments=2,tasks=1]`.
    #[arg(long, value_name = "SPEC")]
    generate: Option<String>,
    /// Latency added to every request, e.g. `50ms`, `1.5s`.
    #[arg(long, value_name = "DURATION")]
    latency: Option<String>,
    /// Serve HTTPS: `ca` (certificate issued by a generated CA; its PEM is written to
    /// --ca-out) or `self-signed` (clients must refuse it).
    #[arg(long, value_name = "MODE", value_parser = ["ca", "self-signed"])]
    tls: Option<String>,
    /// Where to write the PEM a client must trust (with --tls).
    #[arg(long, value_name = "FILE", default_value = "syncbridge-sim-ca.pem")]
    ca_out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let a = Args::parse();
    let mut services = Services {
        graph: a.graph,
        autotask: a.autotask,
        connectwise: a.connectwise,
        ews: a.ews,
        dynamics: a.dynamics,
    };
    if services == Services::NONE {
        services = Services::ALL;
    }
    let cfg = SimConfig {
        services,
        port: a.port,
        latency: a.latency.as_deref().map(parse_duration).transpose()?,
        seed: a.seed.as_deref().map(Seed::from_file).transpose()?,
        generate: a
            .generate
            .as_deref()
            .map(GeneratorSpec::parse)
            .transpose()?,
        tls: match a.tls.as_deref() {
            Some("ca") => TlsMode::GeneratedCa,
            Some("self-signed") => TlsMode::SelfSigned,
            _ => TlsMode::Off,
        },
        rng_seed: 0,
    };
    let sim = Simulator::start(cfg).await?;
    if let Some(pem) = sim.ca_pem() {
        std::fs::write(&a.ca_out, pem)?;
        println!("trust PEM    {}", a.ca_out.display());
    }
    println!("base         {}", sim.base_url());
    if services.graph {
        println!("graph        {}", sim.graph_url());
        println!("token        {}", sim.token_url("{tenant}"));
    }
    if services.autotask {
        println!("autotask     {}", sim.autotask_url());
    }
    if services.connectwise {
        println!("connectwise  {}", sim.connectwise_url());
    }
    if services.ews {
        println!("ews          {}", sim.ews_url());
        println!("autodiscover {}", sim.autodiscover_url());
    }
    if services.dynamics {
        println!("dynamics     {}", sim.dynamics_url());
    }
    println!("admin        {}/_admin/state", sim.base_url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
