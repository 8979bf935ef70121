//! Agent sessions in the routing state: login, live configuration changes,
//! states, heartbeats, and reading agents back.

use std::collections::HashMap;

use careline_domain::Channel;
use careline_domain::targets::{Target, agent_targets, routing_targets};
use careline_domain::tenant::{AgentConfig, TenantConfig};
use careline_proto::v1;
use redis::{FromRedisValue, Value};

use super::{AgentStatus, Held, REFRESH_PIPELINE, RoutingStore, script_result, take};
use crate::convert::{channel_to_proto, language_from_str, language_to_proto};
use crate::error::{Result, RoutingError};
use crate::keys;

impl RoutingStore {
    /// Starts (or replaces) an agent's session in one tenant; returns the ids
    /// of interactions the agent already holds (offered or assigned).
    pub async fn agent_login(
        &self,
        config: &TenantConfig,
        agent_id: &str,
        session: &str,
        initial: AgentStatus,
    ) -> Result<Vec<String>> {
        let profile = AgentProfile::of(config, agent_id).ok_or_else(|| {
            RoutingError::NotFound(format!(
                "agent {agent_id} is not configured for this tenant"
            ))
        })?;
        let AgentProfile {
            targets,
            profs,
            langs,
            caps,
        } = &profile;
        let reply = self
            .run(
                &self.scripts.agent_login,
                &config.id,
                &[
                    agent_id.as_bytes(),
                    session.as_bytes(),
                    targets.as_bytes(),
                    profs.as_bytes(),
                    langs.as_bytes(),
                    caps.as_bytes(),
                    initial.as_str().as_bytes(),
                ],
            )
            .await?;
        let [holds] = take::<1>(reply)?;
        Ok(Vec::<String>::from_redis_value(holds)?)
    }

    /// Applies a changed configuration to the tenant's logged-in agents:
    /// new skills, languages, capacity or queues take effect at once; an
    /// agent removed from the configuration is logged out. Returns how many
    /// agents changed.
    ///
    /// Pipelined, [`REFRESH_PIPELINE`] agents per round trip: one read finds
    /// the logged-in agents whose stored profile differs from the
    /// configuration, then `agent_refresh.lua` runs for those only (it checks
    /// again, atomically, so a concurrent login or logout is safe).
    pub async fn refresh_agents(&self, config: &TenantConfig) -> Result<usize> {
        let tenant = &config.id;
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::tenant_key(tenant, "agents"))
            .query_async(&mut conn)
            .await?;
        let routine = &self.scripts.agent_refresh;
        let targets = routing_targets(config);
        let configured: HashMap<&str, &AgentConfig> = config
            .agents
            .iter()
            .map(|agent| (agent.id.as_str(), agent))
            .collect();
        let mut changed = 0;
        for chunk in ids.chunks(REFRESH_PIPELINE) {
            let mut read = redis::pipe();
            for id in chunk {
                read.hmget(keys::agent(tenant, id), &["online", "profile"]);
            }
            let stored: Vec<(Option<String>, Option<String>)> = read.query_async(&mut conn).await?;
            let mut refresh = redis::pipe();
            let mut stale = 0;
            for (id, (online, profile)) in chunk.iter().zip(stored) {
                if online.as_deref() != Some("1") {
                    continue;
                }
                let wanted = configured
                    .get(id.as_str())
                    .map(|agent| AgentProfile::among(config, &targets, agent));
                if let (Some(wanted), Some(profile)) = (&wanted, &profile)
                    && wanted.stored_form() == *profile
                {
                    continue;
                }
                let [targets, profs, langs, caps] = match &wanted {
                    Some(p) => [&p.targets, &p.profs, &p.langs, &p.caps].map(|v| v.as_bytes()),
                    None => [&b""[..]; 4],
                };
                refresh.add_command(
                    routine.call(tenant, &[id.as_bytes(), targets, profs, langs, caps]),
                );
                stale += 1;
            }
            if stale == 0 {
                continue;
            }
            let refresh = &refresh;
            let replies: Vec<Vec<Value>> = self
                .call_routing(|mut conn| async move { refresh.query_async(&mut conn).await })
                .await?;
            for reply in replies {
                let [updated] = take::<1>(script_result(reply)?)?;
                changed += usize::from(i64::from_redis_value(updated)? == 1);
            }
        }
        Ok(changed)
    }

    /// Changes an agent's state within its session.
    pub async fn agent_set_state(
        &self,
        tenant: &str,
        agent_id: &str,
        session: &str,
        status: AgentStatus,
        reason: &str,
    ) -> Result<()> {
        self.run(
            &self.scripts.agent_set_state,
            tenant,
            &[
                agent_id.as_bytes(),
                session.as_bytes(),
                status.as_str().as_bytes(),
                reason.as_bytes(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Extends an agent session by one heartbeat TTL; returns what the agent
    /// holds (offered or assigned), so the session can re-send what its
    /// client may have missed. A standalone script of a few commands that
    /// emits no event and sets no timer due sooner than the worker's sweep:
    /// the worker is not woken for it, so thousands of agents' heartbeats
    /// cost the relay and timer loop nothing.
    pub async fn agent_heartbeat(
        &self,
        tenant: &str,
        agent_id: &str,
        session: &str,
    ) -> Result<Vec<Held>> {
        let reply = self
            .scripts
            .agent_heartbeat
            .key(keys::agent(tenant, agent_id))
            .key(keys::tenant_key(tenant, "timers"))
            .key(keys::tenant_key(tenant, "settings"))
            .key(keys::tenant_key(tenant, &format!("holds:{agent_id}")))
            .arg(keys::prefix(tenant))
            .arg(agent_id)
            .arg(session)
            .invoke_async::<Vec<Value>>(&mut self.conn.clone())
            .await?;
        let reply = script_result(reply)?;
        let [held] = take::<1>(reply)?;
        let flat = Vec::<String>::from_redis_value(held)?;
        Ok(flat
            .chunks(3)
            .filter_map(|triple| match triple {
                [id, offer, state] => Some(Held {
                    interaction_id: id.clone(),
                    offer_id: offer.clone(),
                    assigned: state == "assigned",
                }),
                _ => None,
            })
            .collect())
    }

    /// An agent's live state, or `None` when it never logged in.
    pub async fn get_agent(&self, tenant: &str, agent_id: &str) -> Result<Option<v1::Agent>> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(keys::agent(tenant, agent_id))
            .query_async(&mut self.conn.clone())
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(agent_from_fields(tenant, agent_id, &fields)))
    }

    /// Every agent of the tenant that ever logged in, sorted by id.
    pub async fn list_agents(&self, tenant: &str) -> Result<Vec<v1::Agent>> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::tenant_key(tenant, "agents"))
            .query_async(&mut conn)
            .await?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(keys::agent(tenant, id));
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        Ok(ids
            .iter()
            .zip(all)
            .map(|(id, fields)| agent_from_fields(tenant, id, &fields))
            .collect())
    }
}

/// What routing needs of an agent's configuration, as the scripts take it
/// (comma-separated): the targets it may serve with its proficiency for
/// each, its languages and its capacity per channel.
struct AgentProfile {
    targets: String,
    profs: String,
    langs: String,
    caps: String,
}

impl AgentProfile {
    /// The form the scripts store in the agent's `profile` field
    /// (`agent_login.lua`, `agent_refresh.lua`), to tell whether it changed.
    fn stored_form(&self) -> String {
        [&self.targets, &self.profs, &self.langs, &self.caps]
            .map(String::as_str)
            .join("|")
    }

    fn of(config: &TenantConfig, agent_id: &str) -> Option<AgentProfile> {
        let agent = config.agent(agent_id)?;
        Some(Self::among(config, &routing_targets(config), agent))
    }

    /// The profile of `agent` given the tenant's `targets` (computed once
    /// when many agents are profiled).
    fn among(config: &TenantConfig, targets: &[Target], agent: &AgentConfig) -> AgentProfile {
        let served = agent_targets(targets, agent);
        let join = |items: Vec<String>| items.join(",");
        let cap = config.agent_capacity(agent);
        AgentProfile {
            targets: join(served.iter().map(|(t, _)| t.clone()).collect()),
            profs: join(served.iter().map(|(_, p)| p.to_string()).collect()),
            langs: join(
                agent
                    .languages
                    .iter()
                    .map(|l| l.as_str().to_string())
                    .collect(),
            ),
            caps: format!("{},{},{}", cap.voice, cap.chat, cap.email),
        }
    }
}

fn agent_from_fields(tenant: &str, agent_id: &str, fields: &HashMap<String, String>) -> v1::Agent {
    let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let num = |name: &str| get(name).parse::<u32>().unwrap_or(0);
    let online = get("online") == "1";
    let state = match (online, get("state").as_str()) {
        (false, _) => v1::AgentState::Offline,
        (true, "available") => v1::AgentState::Available,
        (true, _) => v1::AgentState::Away,
    };
    let load = Channel::ALL
        .into_iter()
        .map(|ch| v1::ChannelLoad {
            channel: channel_to_proto(ch) as i32,
            capacity: num(&format!("cap:{}", ch.as_str())),
            in_use: num(&format!("used:{}", ch.as_str())),
        })
        .collect();
    v1::Agent {
        tenant_id: tenant.to_string(),
        agent_id: agent_id.to_string(),
        state: state as i32,
        away_reason: if state == v1::AgentState::Available {
            String::new()
        } else {
            get("reason")
        },
        skills: Vec::new(),
        languages: get("langs")
            .split(',')
            .filter_map(language_from_str)
            .map(|l| language_to_proto(l) as i32)
            .collect(),
        load,
        logged_in: online,
        queues: get("targets")
            .split(',')
            .filter(|t| !t.is_empty() && !t.starts_with('@') && !t.contains('~'))
            .map(str::to_string)
            .collect(),
        state_since_ms: get("state_since").parse().unwrap_or(0),
    }
}
