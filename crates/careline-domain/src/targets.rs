//! Routing targets: the (pseudo-)queues an interaction waits in, and which
//! agents may serve each, derived from tenant configuration.
//!
//! A queue `general` with overflow steps becomes the targets `general`,
//! `general~1`, `general~2`, ...: step *i* lowers proficiency minimums
//! (`relax_by`) or adds another queue's agents (`widen_to`) on top of step
//! *i-1*; `move_to` sends the interaction to the other queue's own target.
//! Every agent also has a personal target `@<agent id>` for transfers to
//! that agent and pending follow-ups that return to it.
//!
//! Agent eligibility is computed here, once per login or configuration
//! change, so the Redis scripts only pop from and push to indexes.

use crate::tenant::{AgentConfig, SkillRequirement, TenantConfig};
use crate::{Channel, Language};

/// One target: a queue or one of its overflow steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `queue` or `queue~step`.
    pub name: String,
    /// The queue the interaction belongs to while it waits here.
    pub queue: String,
    /// An agent qualifies by meeting every requirement of any one alternative.
    pub alternatives: Vec<Vec<SkillRequirement>>,
    /// Where the interaction goes next, and when (seconds after it entered `queue`).
    pub next: Option<(String, u32)>,
    /// Service-level threshold of the queue.
    pub service_level_secs: u32,
}

/// The personal target of an agent.
pub fn personal_target(agent_id: &str) -> String {
    format!("@{agent_id}")
}

/// Every target of the tenant, queue by queue.
pub fn routing_targets(config: &TenantConfig) -> Vec<Target> {
    let mut targets = Vec::new();
    for queue in &config.queues {
        let mut alternatives = vec![queue.skills.clone()];
        let mut name = queue.id.clone();
        for (index, step) in queue.overflow.iter().enumerate() {
            let next = if let Some(other) = &step.move_to {
                other.clone()
            } else {
                format!("{}~{}", queue.id, index + 1)
            };
            targets.push(Target {
                name: name.clone(),
                queue: queue.id.clone(),
                alternatives: alternatives.clone(),
                next: Some((next.clone(), step.after_secs)),
                service_level_secs: queue.service_level_secs,
            });
            if step.move_to.is_some() {
                name.clear();
                break;
            }
            if let Some(by) = step.relax_by {
                for requirements in &mut alternatives {
                    *requirements = crate::skills::relax(requirements, by);
                }
            }
            if let Some(other) = step.widen_to.as_ref().and_then(|id| config.queue(id)) {
                alternatives.push(other.skills.clone());
            }
            name = next;
        }
        if !name.is_empty() {
            targets.push(Target {
                name,
                queue: queue.id.clone(),
                alternatives,
                next: None,
                service_level_secs: queue.service_level_secs,
            });
        }
    }
    targets
}

/// The targets an agent may serve, each with the agent's proficiency for it
/// (used by the most-skilled strategy); always ends with its personal target.
pub fn agent_targets(targets: &[Target], agent: &AgentConfig) -> Vec<(String, u8)> {
    let mut served: Vec<(String, u8)> = targets
        .iter()
        .filter_map(|target| {
            target
                .alternatives
                .iter()
                .filter(|requirements| crate::skills::satisfies(&agent.skills, requirements))
                .map(|requirements| crate::skills::proficiency_for(&agent.skills, requirements))
                .max()
                .map(|proficiency| (target.name.clone(), proficiency))
        })
        .collect();
    served.push((personal_target(&agent.id), 10));
    served
}

/// Whether agent `agent_id` can ever take a contact on `channel` in
/// `language` handed to it personally (a transfer to that agent). Skills do
/// not matter (the person transferring chose this agent), but the agent must
/// be configured, speak the language and work the channel; the error says
/// which is not the case. Whether it is free right now is not checked: a
/// busy or away agent gets the contact when it frees up, within the tenant's
/// `personal_fallback_secs`.
pub fn personal_eligibility(
    config: &TenantConfig,
    agent_id: &str,
    channel: Channel,
    language: Language,
) -> Result<(), String> {
    let Some(agent) = config.agent(agent_id) else {
        return Err(format!(
            "agent \"{agent_id}\" is not configured for this tenant (unknown or removed)"
        ));
    };
    if !agent.languages.contains(&language) {
        return Err(format!(
            "agent \"{agent_id}\" does not speak {} (the contact's language)",
            language.as_str()
        ));
    }
    if config.agent_capacity(agent).get(channel) == 0 {
        return Err(format!(
            "agent \"{agent_id}\" does not take {} contacts (capacity 0)",
            channel.as_str()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> TenantConfig {
        TenantConfig::from_yaml(include_str!("../../../deploy/tenants/demo-health.yaml"))
            .expect("demo tenant parses")
    }

    #[test]
    fn overflow_steps_become_chained_targets() {
        let targets = routing_targets(&demo());
        let general: Vec<_> = targets.iter().filter(|t| t.queue == "general").collect();
        assert_eq!(
            general.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["general", "general~1", "general~2"]
        );
        assert_eq!(general[0].next, Some(("general~1".into(), 120)));
        assert_eq!(general[1].next, Some(("general~2".into(), 300)));
        assert_eq!(general[1].alternatives[0][0].min_proficiency, 1);
        assert_eq!(general[2].alternatives.len(), 2, "widened to billing");
    }

    #[test]
    fn personal_eligibility_needs_a_configured_agent_its_language_and_channel() {
        let mut config = demo();
        config
            .agents
            .iter_mut()
            .find(|a| a.id == "kim")
            .expect("kim")
            .capacity
            .email = Some(0);
        let cases = [
            ("kim", Channel::Chat, Language::En, None),
            (
                "kim",
                Channel::Chat,
                Language::Es,
                Some("does not speak es"),
            ),
            (
                "kim",
                Channel::Email,
                Language::En,
                Some("does not take email"),
            ),
            ("ana", Channel::Chat, Language::Es, None),
            (
                "gone",
                Channel::Chat,
                Language::En,
                Some("unknown or removed"),
            ),
        ];
        for (agent, channel, language, refused) in cases {
            let result = personal_eligibility(&config, agent, channel, language);
            match refused {
                None => assert_eq!(result, Ok(()), "{agent} {channel:?} {language:?}"),
                Some(why) => assert!(
                    result.as_ref().is_err_and(|e| e.contains(why)),
                    "{agent} {channel:?} {language:?}: {result:?}"
                ),
            }
        }
    }

    #[test]
    fn agents_serve_targets_they_are_skilled_for() {
        let config = demo();
        let targets = routing_targets(&config);
        let served = |id: &str| -> Vec<String> {
            agent_targets(&targets, config.agent(id).expect("agent"))
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        };
        // kim has billing only: billing itself and general once widened to billing.
        assert_eq!(served("kim"), ["general~2", "billing", "@kim"]);
        // luis: member_services 5 meets general's 3; clinical 7 meets 6.
        assert_eq!(
            served("luis"),
            ["general", "general~1", "general~2", "clinical", "@luis"]
        );
    }

    #[test]
    fn move_to_hands_over_to_the_other_queue() {
        let mut config = demo();
        config.queues[1].overflow = vec![crate::tenant::OverflowStep {
            after_secs: 60,
            relax_by: None,
            widen_to: None,
            move_to: Some("general".into()),
        }];
        let targets = routing_targets(&config);
        let billing: Vec<_> = targets.iter().filter(|t| t.queue == "billing").collect();
        assert_eq!(billing.len(), 1);
        assert_eq!(billing[0].next, Some(("general".into(), 60)));
    }
}
