//! The tenant the end-to-end tests run against: the shipped demo tenant,
//! open around the clock, with agents generated to order.

use std::collections::BTreeMap;

use careline_domain::Language;
use careline_domain::tenant::{AgentConfig, PerChannel, PerChannelOverride, TenantConfig};

/// The demo tenant's id and API key (see deploy/tenants/demo-health.yaml).
pub use careline_testkit::demo::{API_KEY, TENANT};

/// The demo tenant with its business hours and holidays cleared, so that
/// every channel is open whenever the test runs.
pub fn demo() -> TenantConfig {
    careline_testkit::demo::tenant_always_open()
}

/// The key a generated agent logs in with.
pub fn agent_key(agent_id: &str) -> String {
    format!("e2e-agent-key-{agent_id}")
}

/// `count` agents `agent-000`, `agent-001`, ... with the same skills,
/// languages and capacity; their keys are [`agent_key`].
pub fn agents(
    count: usize,
    skills: &[(&str, u8)],
    languages: &[Language],
    capacity: PerChannelOverride,
) -> Vec<AgentConfig> {
    let skills: BTreeMap<String, u8> = skills.iter().map(|(s, p)| (s.to_string(), *p)).collect();
    (0..count)
        .map(|i| {
            let id = format!("agent-{i:03}");
            AgentConfig {
                key_sha256: careline_kit::auth::api_key_sha256_hex(&agent_key(&id)),
                id,
                skills: skills.clone(),
                languages: languages.to_vec(),
                capacity,
            }
        })
        .collect()
}

/// The demo tenant for load and fault runs: `agents` generated agents with
/// every skill and both languages and `capacity` on each channel, the same
/// offer timeout on every channel, no wrap-up.
pub fn under_load(
    agents: usize,
    capacity: PerChannel,
    offer_timeout_secs: u32,
    heartbeat_ttl_secs: u32,
) -> TenantConfig {
    let mut config = demo();
    config.routing.offer_timeout_secs = PerChannel {
        voice: offer_timeout_secs,
        chat: offer_timeout_secs,
        email: offer_timeout_secs,
    };
    config.routing.wrap_up_secs = 0;
    config.routing.heartbeat_ttl_secs = heartbeat_ttl_secs;
    config.agents = self::agents(
        agents,
        &[("member_services", 5), ("billing", 5), ("clinical", 7)],
        &[Language::En, Language::Es],
        PerChannelOverride {
            voice: Some(capacity.voice),
            chat: Some(capacity.chat),
            email: Some(capacity.email),
        },
    );
    config
}
