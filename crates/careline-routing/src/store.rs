//! [`RoutingStore`]: the routing state machine over Redis. Each method runs
//! one atomic script (or reads), so any number of router and presence
//! replicas can share one Redis without double-assigning or losing work.

use std::collections::HashMap;
use std::sync::Arc;

use careline_domain::targets::{Target, agent_targets, routing_targets};
use careline_domain::tenant::{AgentConfig, Strategy, TenantConfig};
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use prost::Message;
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Script, ScriptInvocation, Value};
use sha2::{Digest, Sha256};

use crate::convert::{
    channel_from_str, channel_to_proto, language_from_str, language_to_proto, priority_to_proto,
};
use crate::error::{Result, RoutingError};
use crate::keys;
use crate::scripts::Scripts;

/// How long a replayed idempotency key returns the first interaction.
pub const IDEMPOTENCY_WINDOW_SECS: u64 = 24 * 3600;
/// Timers one `run_timers` call handles at most.
pub const TIMER_BATCH: usize = 200;
/// Agents one pipeline of [`RoutingStore::refresh_agents`] carries: a
/// tenant of thousands takes a few round trips, and other commands on the
/// shared connection (other tenants' timers) wait behind at most this many
/// scripts, well within the client's response timeout.
pub const REFRESH_PIPELINE: usize = 100;

/// A new interaction, validated by the caller against the tenant configuration.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub channel: Channel,
    /// The queue it is routed to (already redirected to the urgent queue if any).
    pub queue: String,
    pub language: Language,
    pub urgent: bool,
    pub priority: Priority,
    pub member_ref: String,
    pub context: v1::InteractionContext,
    pub after_hours: bool,
    pub idempotency_key: String,
}

/// The outcome of [`RoutingStore::create_interaction`].
#[derive(Debug, Clone)]
pub struct Created {
    pub interaction_id: String,
    /// 1-based position in its queue; 0 once offered.
    pub queue_position: u32,
    pub replayed: bool,
}

/// Where a transfer goes.
#[derive(Debug, Clone)]
pub enum TransferTarget {
    Queue(String),
    Agent(String),
    /// A destination outside Careline (stored, never logged or emitted).
    External(String),
}

/// Agent availability, as the agent sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    Available,
    Away,
    Offline,
}

impl AgentStatus {
    fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Available => "available",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }
}

/// An interaction an agent holds: offered to it (with the offer) or assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub interaction_id: String,
    /// The pending offer (while offered) or the offer the agent accepted
    /// (once assigned): each assignment is told apart by it.
    pub offer_id: String,
    pub assigned: bool,
}

/// What [`RoutingStore::timer_check`] found for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTimers {
    pub tenant: String,
    pub due: bool,
    pub settings_lost: bool,
    /// Why the tenant could not be checked (e.g. a key of the wrong type);
    /// the other tenants are checked regardless.
    pub unreadable: Option<String>,
}

/// The outcome of one [`RoutingStore::run_timers`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimersRun {
    pub ran: usize,
    /// Timers already due but left for the next call.
    pub still_due: usize,
}

/// Routing state of every tenant in one Redis.
#[derive(Clone)]
pub struct RoutingStore {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    /// Creates are refused while this many events wait in a tenant's outbox.
    outbox_max_events: u64,
}

impl std::fmt::Debug for RoutingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingStore").finish_non_exhaustive()
    }
}

impl RoutingStore {
    /// Connects (and keeps reconnecting) to Redis at `redis_url`.
    pub async fn connect(redis_url: &str) -> Result<Self> {
        let client = redis::Client::open(redis_url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            scripts: Arc::new(Scripts::new()),
            outbox_max_events: u64::MAX,
        })
    }

    /// Refuses new interactions (UNAVAILABLE) while `max_events` or more
    /// events of their tenant wait in the outbox for NATS. Unbounded unless
    /// set (tools and tests); services set `--outbox-max-events`.
    pub fn with_outbox_max_events(mut self, max_events: u64) -> Self {
        self.outbox_max_events = max_events;
        self
    }

    /// Whether Redis answers a PING.
    pub async fn ping(&self) -> bool {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .is_ok()
    }

    /// A clone of the underlying connection, for readers such as the relay.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Writes a tenant's routing settings and targets where the scripts read
    /// them. Idempotent; run at start-up and on every configuration change.
    pub async fn sync_tenant(&self, config: &TenantConfig) -> Result<()> {
        let tenant = &config.id;
        let routing = &config.routing;
        let strategy = match routing.strategy {
            Strategy::LongestIdle => "longest_idle",
            Strategy::MostSkilled => "most_skilled",
            Strategy::RoundRobin => "round_robin",
        };
        let (aging_after, aging_max_band) = match routing.aging {
            Some(aging) => (aging.after_secs, aging.max_priority.band()),
            None => (0, 0),
        };
        let settings: Vec<(&str, String)> = vec![
            ("strategy", strategy.into()),
            (
                "offer_timeout:voice",
                routing.offer_timeout_secs.voice.to_string(),
            ),
            (
                "offer_timeout:chat",
                routing.offer_timeout_secs.chat.to_string(),
            ),
            (
                "offer_timeout:email",
                routing.offer_timeout_secs.email.to_string(),
            ),
            (
                "voice_exclusive",
                if routing.voice_exclusive { "1" } else { "0" }.into(),
            ),
            ("wrap_up_secs", routing.wrap_up_secs.to_string()),
            ("heartbeat_ttl_secs", routing.heartbeat_ttl_secs.to_string()),
            (
                "reconnect_grace_secs",
                routing.reconnect_grace_secs.to_string(),
            ),
            ("aging_after_secs", aging_after.to_string()),
            ("aging_max_band", aging_max_band.to_string()),
            (
                "personal_fallback_secs",
                routing.personal_fallback_secs.to_string(),
            ),
        ];
        let targets: Vec<(String, String)> = routing_targets(config)
            .into_iter()
            .map(|t| {
                let (next, after) = t.next.unwrap_or_default();
                (
                    t.name,
                    format!("{next}|{after}|{}|{}", t.service_level_secs, t.queue),
                )
            })
            .collect();
        let targets_key = keys::tenant_key(tenant, "targets");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(keys::tenant_key(tenant, "settings"), &settings)
            .ignore()
            .del(&targets_key)
            .ignore();
        if !targets.is_empty() {
            pipe.hset_multiple(&targets_key, &targets).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn run(&self, script: &Script, tenant: &str, args: &[&[u8]]) -> Result<Vec<Value>> {
        let reply: Vec<Value> = invocation(script, tenant, args)
            .invoke_async(&mut self.conn.clone())
            .await?;
        script_result(reply)
    }

    /// Creates and queues an interaction, offering it at once when an agent is
    /// free. A replayed idempotency key returns the first interaction.
    pub async fn create_interaction(&self, tenant: &str, new: &NewInteraction) -> Result<Created> {
        let id = careline_domain::ids::InteractionId::generate().to_string();
        let context = new.context.encode_to_vec();
        let fingerprint = fingerprint(new, &context);
        let band = new.priority.band().to_string();
        let window = IDEMPOTENCY_WINDOW_SECS.to_string();
        let outbox_max = self.outbox_max_events.to_string();
        let reply = self
            .run(
                &self.scripts.create_interaction,
                tenant,
                &[
                    new.idempotency_key.as_bytes(),
                    fingerprint.as_bytes(),
                    id.as_bytes(),
                    new.channel.as_str().as_bytes(),
                    new.language.as_str().as_bytes(),
                    new.queue.as_bytes(),
                    new.queue.as_bytes(),
                    band.as_bytes(),
                    if new.urgent { b"1" } else { b"0" },
                    new.member_ref.as_bytes(),
                    &context,
                    if new.after_hours { b"1" } else { b"0" },
                    window.as_bytes(),
                    outbox_max.as_bytes(),
                ],
            )
            .await?;
        let [id, position, replayed] = take::<3>(reply)?;
        Ok(Created {
            interaction_id: String::from_redis_value(id)?,
            queue_position: u32::from_redis_value(position)?,
            replayed: i64::from_redis_value(replayed)? == 1,
        })
    }

    /// The interaction, with its notes, or NotFound.
    pub async fn get_interaction(&self, tenant: &str, id: &str) -> Result<v1::Interaction> {
        let key = keys::interaction(tenant, id);
        let (fields, notes, declined): StoredInteraction = redis::pipe()
            .hgetall(&key)
            .lrange(format!("{key}:notes"), 0, -1)
            .smembers(format!("{key}:declined"))
            .query_async(&mut self.conn.clone())
            .await?;
        if fields.is_empty() {
            return Err(RoutingError::NotFound("interaction not found".into()));
        }
        interaction_from_fields(id, &fields, &notes, declined)
    }

    /// Accepts an offer for `agent`; returns the assigned interaction's id.
    pub async fn accept_offer(&self, tenant: &str, offer_id: &str, agent: &str) -> Result<String> {
        let reply = self
            .run(
                &self.scripts.accept_offer,
                tenant,
                &[offer_id.as_bytes(), agent.as_bytes()],
            )
            .await?;
        let [id] = take::<1>(reply)?;
        Ok(String::from_redis_value(id)?)
    }

    /// Rejects an offer for `agent`; returns the interaction's id.
    pub async fn reject_offer(&self, tenant: &str, offer_id: &str, agent: &str) -> Result<String> {
        let reply = self
            .run(
                &self.scripts.reject_offer,
                tenant,
                &[offer_id.as_bytes(), agent.as_bytes()],
            )
            .await?;
        let [id] = take::<1>(reply)?;
        Ok(String::from_redis_value(id)?)
    }

    /// Warm-transfers an interaction held by `agent`.
    pub async fn transfer(
        &self,
        tenant: &str,
        id: &str,
        agent: &str,
        target: &TransferTarget,
        note: Option<&v1::Note>,
    ) -> Result<()> {
        let (kind, to) = match target {
            TransferTarget::Queue(queue) => ("queue", queue.as_str()),
            TransferTarget::Agent(agent) => ("agent", agent.as_str()),
            TransferTarget::External(destination) => ("external", destination.as_str()),
        };
        let note = note.map(Message::encode_to_vec).unwrap_or_default();
        self.run(
            &self.scripts.transfer,
            tenant,
            &[
                id.as_bytes(),
                agent.as_bytes(),
                kind.as_bytes(),
                to.as_bytes(),
                &note,
            ],
        )
        .await?;
        Ok(())
    }

    /// Parks an assigned interaction until `until_ms`.
    pub async fn set_pending(
        &self,
        tenant: &str,
        id: &str,
        agent: &str,
        until_ms: i64,
        return_to_queue: bool,
        note: Option<&v1::Note>,
    ) -> Result<()> {
        let note = note.map(Message::encode_to_vec).unwrap_or_default();
        let until = until_ms.to_string();
        let back_to: &[u8] = if return_to_queue { b"queue" } else { b"agent" };
        self.run(
            &self.scripts.set_pending,
            tenant,
            &[
                id.as_bytes(),
                agent.as_bytes(),
                until.as_bytes(),
                back_to,
                &note,
            ],
        )
        .await?;
        Ok(())
    }

    /// Resolves an interaction held by `agent`.
    pub async fn resolve(
        &self,
        tenant: &str,
        id: &str,
        agent: &str,
        disposition: &str,
        outcome_tags: &[String],
        note: Option<&v1::Note>,
    ) -> Result<()> {
        let note = note.map(Message::encode_to_vec).unwrap_or_default();
        let tags = outcome_tags.join(",");
        self.run(
            &self.scripts.resolve,
            tenant,
            &[
                id.as_bytes(),
                agent.as_bytes(),
                disposition.as_bytes(),
                tags.as_bytes(),
                &note,
            ],
        )
        .await?;
        Ok(())
    }

    /// Ends an interaction whose member left before being served.
    pub async fn abandon(&self, tenant: &str, id: &str) -> Result<()> {
        self.run(&self.scripts.abandon, tenant, &[id.as_bytes()])
            .await?;
        Ok(())
    }

    /// One round trip for many tenants: which have timers due now, and which
    /// have lost their routing settings (Redis restarted without its data).
    pub async fn timer_check(&self, tenants: &[String]) -> Result<Vec<TenantTimers>> {
        if tenants.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let now_ms = crate::stats::redis_now_ms(&mut conn).await?;
        let mut pipe = redis::pipe();
        // One tenant's corrupt key must not hide every other tenant's timers.
        pipe.ignore_errors();
        for tenant in tenants {
            pipe.zcount(keys::tenant_key(tenant, "timers"), "-inf", now_ms)
                .exists(keys::tenant_key(tenant, "settings"));
        }
        let replies: Vec<redis::RedisResult<u64>> = pipe.query_async(&mut conn).await?;
        Ok(tenants
            .iter()
            .zip(replies.chunks(2))
            .map(|(tenant, replies)| match replies {
                [Ok(due), Ok(settings)] => TenantTimers {
                    tenant: tenant.clone(),
                    due: *due > 0,
                    settings_lost: *settings == 0,
                    unreadable: None,
                },
                _ => TenantTimers {
                    tenant: tenant.clone(),
                    due: false,
                    settings_lost: false,
                    unreadable: Some(
                        replies
                            .iter()
                            .find_map(|reply| reply.as_ref().err())
                            .map_or_else(|| "no reply".to_owned(), ToString::to_string),
                    ),
                },
            })
            .collect())
    }

    /// Runs the tenant's due timers (offer deadlines, wrap-up, overflow, ...).
    pub async fn run_timers(&self, tenant: &str) -> Result<TimersRun> {
        let batch = TIMER_BATCH.to_string();
        let reply = self
            .run(&self.scripts.run_timers, tenant, &[batch.as_bytes()])
            .await?;
        let [ran, still_due] = take::<2>(reply)?;
        Ok(TimersRun {
            ran: usize::from_redis_value(ran)?,
            still_due: usize::from_redis_value(still_due)?,
        })
    }

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
        let script = &self.scripts.agent_refresh;
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
            // Unlike `invoke_async`, a pipelined script is not reloaded on
            // NOSCRIPT: load it first in the same pipeline, so a script cache
            // emptied by a Redis restart cannot fail the pass.
            refresh.load_script(script).ignore();
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
                refresh.invoke_script(&invocation(
                    script,
                    tenant,
                    &[id.as_bytes(), targets, profs, langs, caps],
                ));
                stale += 1;
            }
            if stale == 0 {
                continue;
            }
            let replies: Vec<Vec<Value>> = refresh.query_async(&mut conn).await?;
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
    /// client may have missed.
    pub async fn agent_heartbeat(
        &self,
        tenant: &str,
        agent_id: &str,
        session: &str,
    ) -> Result<Vec<Held>> {
        let reply = self
            .run(
                &self.scripts.agent_heartbeat,
                tenant,
                &[agent_id.as_bytes(), session.as_bytes()],
            )
            .await?;
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

/// An interaction's hash, notes and declining agents, as read back.
type StoredInteraction = (HashMap<String, Vec<u8>>, Vec<Vec<u8>>, Vec<String>);

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

/// A stable digest of what a create request asks for, to tell a true replay
/// from a reused idempotency key.
fn fingerprint(new: &NewInteraction, context: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [
        new.channel.as_str().as_bytes(),
        new.queue.as_bytes(),
        new.language.as_str().as_bytes(),
        &[u8::from(new.urgent), new.priority.band()],
        new.member_ref.as_bytes(),
        context,
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// A call of `script` for `tenant`: the tenant's key prefix, the caller's
/// trace context, then the operation's arguments (see `lua/lib.lua`).
fn invocation<'a>(script: &'a Script, tenant: &str, args: &[&[u8]]) -> ScriptInvocation<'a> {
    let mut invocation = script.key(keys::prefix(tenant));
    invocation.arg(careline_bus::current_traceparent());
    for arg in args {
        invocation.arg(*arg);
    }
    invocation
}

/// A script's reply `{status, values...}` as the values, or the error its status names.
fn script_result(reply: Vec<Value>) -> Result<Vec<Value>> {
    let mut items = reply.into_iter();
    let status: String = match items.next() {
        Some(value) => String::from_redis_value(value)?,
        None => return Err(RoutingError::Corrupt("empty script reply".into())),
    };
    let message = || -> String {
        items
            .clone()
            .next()
            .and_then(|v| String::from_redis_value(v).ok())
            .unwrap_or_default()
    };
    match status.as_str() {
        "ok" => Ok(items.collect()),
        "NOT_FOUND" => Err(RoutingError::NotFound(message())),
        "FAILED_PRECONDITION" => Err(RoutingError::FailedPrecondition(message())),
        "ALREADY_EXISTS" => Err(RoutingError::AlreadyExists(message())),
        "UNAVAILABLE" => Err(RoutingError::Unavailable(message())),
        other => Err(RoutingError::Corrupt(format!(
            "unexpected script status {other}"
        ))),
    }
}

fn take<const N: usize>(reply: Vec<Value>) -> Result<[Value; N]> {
    let len = reply.len();
    reply
        .try_into()
        .map_err(|_| RoutingError::Corrupt(format!("script replied {len} values, expected {N}")))
}

fn text(fields: &HashMap<String, Vec<u8>>, name: &str) -> String {
    fields
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn number(fields: &HashMap<String, Vec<u8>>, name: &str) -> i64 {
    text(fields, name).parse().unwrap_or(0)
}

fn interaction_from_fields(
    id: &str,
    fields: &HashMap<String, Vec<u8>>,
    notes: &[Vec<u8>],
    mut declined: Vec<String>,
) -> Result<v1::Interaction> {
    let state = match text(fields, "state").as_str() {
        "queued" => v1::InteractionState::Queued,
        "offered" => v1::InteractionState::Offered,
        "assigned" => v1::InteractionState::Assigned,
        "pending" => v1::InteractionState::Pending,
        "resolved" => v1::InteractionState::Resolved,
        "abandoned" => v1::InteractionState::Abandoned,
        "transferred_external" => v1::InteractionState::TransferredExternal,
        other => {
            return Err(RoutingError::Corrupt(format!(
                "interaction {id} has state {other:?}"
            )));
        }
    };
    let context = fields
        .get("ctx")
        .map(|bytes| v1::InteractionContext::decode(bytes.as_slice()))
        .transpose()
        .map_err(|e| RoutingError::Corrupt(format!("interaction {id} context: {e}")))?;
    let notes = notes
        .iter()
        .map(|bytes| v1::Note::decode(bytes.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RoutingError::Corrupt(format!("interaction {id} notes: {e}")))?;
    let priority = u8::try_from(number(fields, "band"))
        .ok()
        .and_then(Priority::from_band)
        .map(priority_to_proto)
        .unwrap_or(v1::Priority::Unspecified);
    let holds_agent = matches!(
        state,
        v1::InteractionState::Offered
            | v1::InteractionState::Assigned
            | v1::InteractionState::Pending
    );
    declined.sort();
    let tags = text(fields, "tags");
    Ok(v1::Interaction {
        id: id.to_string(),
        channel: channel_from_str(&text(fields, "ch"))
            .map(channel_to_proto)
            .unwrap_or_default() as i32,
        queue_id: text(fields, "queue"),
        language: language_from_str(&text(fields, "lang"))
            .map(language_to_proto)
            .unwrap_or_default() as i32,
        urgent: text(fields, "urgent") == "1",
        priority: priority as i32,
        member_ref: text(fields, "member"),
        context,
        state: state as i32,
        agent_id: if holds_agent {
            text(fields, "agent")
        } else {
            String::new()
        },
        offer_deadline_ms: if state == v1::InteractionState::Offered {
            number(fields, "offer_deadline")
        } else {
            0
        },
        offer_id: if matches!(
            state,
            v1::InteractionState::Offered | v1::InteractionState::Assigned
        ) {
            text(fields, "offer")
        } else {
            String::new()
        },
        notes,
        after_hours: text(fields, "after_hours") == "1",
        created_at_ms: number(fields, "created"),
        updated_at_ms: number(fields, "updated"),
        requeued_after_disconnect: text(fields, "disconnected") == "1",
        disposition: text(fields, "disposition"),
        outcome_tags: tags
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        external_destination: text(fields, "ext_dest"),
        pending_until_ms: number(fields, "pending_until"),
        declined_by: declined,
    })
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
