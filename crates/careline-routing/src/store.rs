//! [`RoutingStore`]: the routing state machine over Redis. Each method runs
//! one atomic script (or reads), so any number of router and presence
//! replicas can share one Redis without double-assigning or losing work.
//!
//! This file holds the store itself (connection, script calls, tenant
//! settings, timers); `store/interactions.rs` the interaction operations and
//! `store/agents.rs` the agent sessions.

use std::sync::Arc;
use std::time::Duration;

use careline_domain::targets::routing_targets;
use careline_domain::tenant::{Strategy, TenantConfig};
use careline_domain::{Channel, Language, Priority};
use careline_proto::v1;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ScriptInvocation, Value};

use crate::error::{Result, RoutingError};
use crate::keys;
use crate::scripts::Scripts;

mod agents;
mod interactions;

/// How long a replayed idempotency key returns the first interaction.
pub const IDEMPOTENCY_WINDOW_SECS: u64 = 24 * 3600;
/// How long a reply from Redis may take. The client's default (500 ms) fails
/// big pipelines (listing thousands of agents) on a busy server, and a reply
/// that times out leaves the caller unsure whether the script ran.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
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
        let config =
            ConnectionManagerConfig::new().set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client, config).await?;
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
