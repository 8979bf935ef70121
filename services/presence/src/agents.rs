//! Agents as configured and as live: credential checks, and the supervisor
//! view that merges a tenant's configuration with the routing state in Redis.

use careline_domain::Channel;
use careline_domain::targets::{agent_targets, routing_targets};
use careline_domain::tenant::{AgentConfig, TenantConfig};
use careline_proto::v1;
use careline_routing::RoutingStore;
use careline_routing::convert::{channel_to_proto, language_to_proto};

use crate::error::PresenceError;

/// Default ListAgents page size.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest ListAgents page; bigger requests are clamped to it.
pub const MAX_PAGE_SIZE: usize = 500;

/// Queues the agent serves under the current configuration.
pub fn configured_queues(config: &TenantConfig, agent: &AgentConfig) -> Vec<String> {
    agent_targets(&routing_targets(config), agent)
        .into_iter()
        .map(|(target, _)| target)
        .filter(|t| !t.starts_with('@') && !t.contains('~'))
        .collect()
}

/// The supervisor view of an agent: live state when it ever logged in,
/// otherwise OFFLINE with its configured capacity; skills always from config.
pub fn agent_view(
    config: &TenantConfig,
    agent: &AgentConfig,
    live: Option<v1::Agent>,
) -> v1::Agent {
    let skills = agent
        .skills
        .iter()
        .map(|(name, proficiency)| v1::Skill {
            name: name.clone(),
            proficiency: u32::from(*proficiency),
        })
        .collect();
    match live {
        Some(live) => v1::Agent { skills, ..live },
        None => {
            let capacity = config.agent_capacity(agent);
            v1::Agent {
                tenant_id: config.id.clone(),
                agent_id: agent.id.clone(),
                state: v1::AgentState::Offline as i32,
                away_reason: String::new(),
                skills,
                languages: agent
                    .languages
                    .iter()
                    .map(|l| language_to_proto(*l) as i32)
                    .collect(),
                load: Channel::ALL
                    .into_iter()
                    .map(|channel| v1::ChannelLoad {
                        channel: channel_to_proto(channel) as i32,
                        capacity: capacity.get(channel),
                        in_use: 0,
                    })
                    .collect(),
                logged_in: false,
                queues: configured_queues(config, agent),
                state_since_ms: 0,
            }
        }
    }
}

/// One agent of the tenant, or NotFound (also for other tenants' agents).
pub async fn get(
    store: &RoutingStore,
    config: &TenantConfig,
    agent_id: &str,
) -> Result<v1::Agent, PresenceError> {
    let agent = config.agent(agent_id).ok_or_else(|| {
        PresenceError::NotFound(format!(
            "agent \"{agent_id}\" is not configured for this tenant"
        ))
    })?;
    let live = store.get_agent(&config.id, agent_id).await?;
    Ok(agent_view(config, agent, live))
}

/// A page of the tenant's agents sorted by id, optionally only those serving
/// `queue`; returns the next page token (the last id) when more follow.
pub async fn list(
    store: &RoutingStore,
    config: &TenantConfig,
    queue: Option<&str>,
    page_size: usize,
    after: Option<&str>,
) -> Result<(Vec<v1::Agent>, String), PresenceError> {
    let page_size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let mut agents: Vec<&AgentConfig> = config
        .agents
        .iter()
        .filter(|a| after.is_none_or(|after| a.id.as_str() > after))
        .filter(|a| {
            queue.is_none_or(|q| {
                configured_queues(config, a)
                    .iter()
                    .any(|served| served == q)
            })
        })
        .collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    let more = agents.len() > page_size;
    agents.truncate(page_size);
    let live =
        futures::future::try_join_all(agents.iter().map(|a| store.get_agent(&config.id, &a.id)))
            .await?;
    let next = match (more, agents.last()) {
        (true, Some(last)) => last.id.clone(),
        _ => String::new(),
    };
    let page = agents
        .into_iter()
        .zip(live)
        .map(|(agent, live)| agent_view(config, agent, live))
        .collect();
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> TenantConfig {
        TenantConfig::from_yaml(include_str!("../../../deploy/tenants/demo-health.yaml"))
            .expect("demo tenant parses")
    }

    #[test]
    fn never_logged_in_agent_is_offline_with_configured_capacity_and_skills() {
        let config = demo();
        let luis = config.agent("luis").unwrap();
        let view = agent_view(&config, luis, None);
        assert_eq!(view.state, v1::AgentState::Offline as i32);
        assert!(!view.logged_in);
        let chat = view
            .load
            .iter()
            .find(|l| l.channel == v1::Channel::Chat as i32)
            .unwrap();
        assert_eq!((chat.capacity, chat.in_use), (2, 0));
        let skills: Vec<_> = view
            .skills
            .iter()
            .map(|s| (s.name.as_str(), s.proficiency))
            .collect();
        assert_eq!(skills, [("clinical", 7), ("member_services", 5)]);
        assert!(
            view.queues.contains(&"general".to_string()),
            "{:?}",
            view.queues
        );
        assert!(
            view.queues.contains(&"clinical".to_string()),
            "{:?}",
            view.queues
        );
    }
}
