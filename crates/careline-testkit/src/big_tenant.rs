//! Generated tenants of any size, like an outsourced hub's biggest health plan
//! (thousands of agents, dozens of queues), so no large fixture is committed.

use careline_domain::Language;
use careline_domain::tenant::{
    AgentConfig, PerChannelOverride, QueueConfig, SkillRequirement, TenantConfig,
};

/// Skills each generated agent has.
const SKILLS_PER_AGENT: usize = 3;

/// The demo tenant as `id` with `queues` queues (`q-00`, ..., one skill each)
/// and `agents` agents (`agent-00000`, ..., three skills each, English and
/// Spanish); no API keys, so it may sit beside the demo tenant.
pub fn big_tenant(id: &str, agents: usize, queues: usize) -> TenantConfig {
    let mut config = crate::demo::tenant_always_open();
    config.id = id.into();
    config.name = format!("Generated plan {id}");
    config.api_keys.clear();
    config.inbound_email_addresses = vec![format!("members@{id}.example")];
    config.queues = (0..queues)
        .map(|q| QueueConfig {
            id: format!("q-{q:02}"),
            name: format!("Queue {q}"),
            skills: vec![SkillRequirement {
                skill: format!("skill-{q:02}"),
                min_proficiency: 3,
            }],
            service_level_secs: 30,
            overflow: Vec::new(),
            hours: None,
            open_24_7: false,
            max_waiting: None,
        })
        .collect();
    config.routing.urgent_queue = Some("q-00".into());
    // The demo's topic rules and campaigns name queues this tenant does not have.
    config.routing.topics.clear();
    config.outreach.campaigns.clear();
    config.agents = (0..agents)
        .map(|a| AgentConfig {
            id: format!("agent-{a:05}"),
            key_sha256: format!("{a:064x}"),
            skills: (0..SKILLS_PER_AGENT)
                .map(|s| (format!("skill-{:02}", (a + s * 7) % queues.max(1)), 5))
                .collect(),
            languages: vec![Language::En, Language::Es],
            capacity: PerChannelOverride::default(),
        })
        .collect();
    config.validate().expect("a generated tenant is valid");
    config
}
