//! A synthetic tenant of N agents, built from the demo tenant, and the
//! (unmeasured) setup that syncs it and logs every agent in.

use std::collections::BTreeMap;

use anyhow::Context;
use careline_domain::tenant::{AgentConfig, PerChannelOverride, TenantConfig};
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use careline_routing::{AgentStatus, NewInteraction, RoutingStore};
use futures::{StreamExt, TryStreamExt};

const DEMO: &str = include_str!("../../deploy/tenants/demo-health.yaml");
/// Logins in flight while setting up; setup is not measured.
const LOGIN_CONCURRENCY: usize = 64;

/// The demo tenant with `agents` identical agents that can serve every demo
/// queue (and its overflow steps) in English and Spanish.
///
/// Wrap-up is 0 so a resolve frees the agent's capacity at once; everything
/// else (longest-idle strategy, aging, overflow timers) is the demo's.
pub fn synthetic(agents: usize, chat_capacity: u32) -> anyhow::Result<TenantConfig> {
    let mut config = TenantConfig::from_yaml(DEMO).context("demo tenant parses")?;
    config.routing.wrap_up_secs = 0;
    config.agents = (0..agents)
        .map(|i| AgentConfig {
            id: agent_id(i),
            key_sha256: "0".repeat(64),
            skills: [("member_services", 5), ("billing", 5), ("clinical", 7)]
                .into_iter()
                .map(|(skill, proficiency)| (skill.to_string(), proficiency))
                .collect::<BTreeMap<_, _>>(),
            languages: vec![Language::En, Language::Es],
            capacity: PerChannelOverride {
                chat: Some(chat_capacity),
                ..Default::default()
            },
        })
        .collect();
    config.validate().context("synthetic tenant is valid")?;
    Ok(config)
}

/// The id of the `i`th synthetic agent.
pub fn agent_id(i: usize) -> String {
    format!("agent-{i:05}")
}

/// The session an agent is logged in with by [`load`].
pub fn session(agent_id: &str) -> String {
    format!("bench-{agent_id}")
}

/// Empties the database, syncs `config` and logs every agent in, available.
pub async fn install(
    store: &RoutingStore,
    conn: &mut redis::aio::MultiplexedConnection,
    config: &TenantConfig,
) -> anyhow::Result<()> {
    redis::cmd("FLUSHDB")
        .query_async::<()>(conn)
        .await
        .context("FLUSHDB")?;
    load(store, config, AgentStatus::Available).await
}

/// Syncs `config` and logs every agent in with state `initial`.
pub async fn load(
    store: &RoutingStore,
    config: &TenantConfig,
    initial: AgentStatus,
) -> anyhow::Result<()> {
    store.sync_tenant(config).await.context("sync_tenant")?;
    futures::stream::iter(config.agents.iter())
        .map(|agent| async move {
            store
                .agent_login(config, &agent.id, &session(&agent.id), initial)
                .await
                .with_context(|| format!("logging in {}", agent.id))
        })
        .buffer_unordered(LOGIN_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// A normal-priority chat in queue "general", English or Spanish at random,
/// with a fresh idempotency key.
pub fn new_chat(seq: u64) -> NewInteraction {
    NewInteraction {
        channel: Channel::Chat,
        queue: "general".into(),
        language: if rand::random::<bool>() {
            Language::En
        } else {
            Language::Es
        },
        urgent: false,
        urgent_reason: None,
        priority: Priority::Normal,
        member_ref: format!("m-{seq}"),
        context: v1::InteractionContext {
            reason: "billing question".into(),
            ..Default::default()
        },
        after_hours: false,
        idempotency_key: format!("bench-{seq}"),
        max_waiting: 0,
        queued_since_ms: None,
    }
}
