//! careline-bus against a real nats-server: trace propagation, de-duplication,
//! idempotent set-up, work-queue deliveries and the live tenant directory.

mod big_tenants;
mod consume;
mod publish;
mod replicas;
mod streams;
mod tenants;
mod trace;

use async_nats::jetstream;
use careline_domain::tenant::TenantConfig;
use careline_proto::v1::Event;
use careline_testkit::NatsServer;

/// The demo tenant shipped with the repository.
const DEMO_TENANT_YAML: &str = include_str!("../../../../deploy/tenants/demo-health.yaml");
/// The demo tenant's API key (documented in the YAML).
const DEMO_API_KEY: &str = "demo-health-key-0000000000000000";

fn demo_tenant() -> TenantConfig {
    TenantConfig::from_yaml(DEMO_TENANT_YAML).expect("the demo tenant is valid")
}

/// A fresh nats-server and a JetStream context on it.
async fn jetstream() -> anyhow::Result<(NatsServer, jetstream::Context)> {
    let server = NatsServer::start().await?;
    let client = async_nats::connect(server.url()).await?;
    Ok((server, jetstream::new(client)))
}

/// An event of `tenant` with id `<tenant>:<sequence>`.
fn event(tenant: &str, sequence: u64) -> Event {
    Event {
        event_id: format!("{tenant}:{sequence}"),
        tenant_id: tenant.to_owned(),
        occurred_at_ms: 1_700_000_000_000 + sequence as i64,
        sequence,
        payload: None,
    }
}
