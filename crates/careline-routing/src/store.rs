//! [`RoutingStore`]: the routing state machine over Redis. Each method runs
//! one atomic script (or reads), so any number of router and presence
//! replicas can share one Redis without double-assigning or losing work.
//!
//! This file holds the store itself (connection, script calls, tenant
//! settings, timers); `store/interactions.rs` the interaction operations and
//! `store/agents.rs` the agent sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use careline_domain::targets::routing_targets;
use careline_domain::tenant::{Strategy, TenantConfig};
use careline_domain::{Channel, Language, Priority, UrgentReason};
use careline_kit::{RedisConnection, Tls};
use careline_proto::v1;
use futures::StreamExt;
use redis::{FromRedisValue, Value};

use crate::activity::Activity;
use crate::error::{Result, RoutingError};
use crate::keys;
use crate::scripts::{Routine, Scripts, library_missing};

mod agents;
mod interactions;

/// How long a replayed idempotency key returns the first interaction.
pub const IDEMPOTENCY_WINDOW_SECS: u64 = 24 * 3600;
/// Timers one `run_timers` call handles at most.
pub const TIMER_BATCH: usize = 200;
/// Tenants [`RoutingStore::timer_check`] reads at once (one command each,
/// pipelined by the multiplexed connection).
pub const TIMER_CHECK_CONCURRENCY: usize = 64;
/// Agents one pipeline of [`RoutingStore::refresh_agents`] carries. Redis
/// runs a pipeline's scripts back to back, so every other command (other
/// tenants' timers) waits for up to this many `agent_refresh.lua` runs.
/// Re-syncing a 20,000-agent tenant on a busy 2-core machine (debug build),
/// another tenant's offer timeouts ran up to 1.5-3 s late with 100, up to
/// 0.4 s with 20, no slower overall (`tests/it/big_tenant.rs` prints it).
pub const REFRESH_PIPELINE: usize = 20;

/// A new interaction, validated by the caller against the tenant configuration.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub channel: Channel,
    /// The queue it is routed to (already redirected to the urgent queue if any).
    pub queue: String,
    pub language: Language,
    pub urgent: bool,
    /// The urgent phrase found in its text (stored as its id).
    pub urgent_reason: Option<UrgentReason>,
    pub priority: Priority,
    pub member_ref: String,
    pub context: v1::InteractionContext,
    pub after_hours: bool,
    pub idempotency_key: String,
    /// Refuse it (QueueFull) when this many contacts already wait in its
    /// queue; 0: no cap. Urgent contacts are never refused for it.
    pub max_waiting: u32,
    /// When the member first queued (ms since the epoch, not after now):
    /// its place in its band is that time's. `None`: now.
    pub queued_since_ms: Option<i64>,
}

/// The outcome of [`RoutingStore::create_interaction`].
#[derive(Debug, Clone)]
pub struct Created {
    pub interaction_id: String,
    /// 1-based position in its queue; 0 once offered.
    pub queue_position: u32,
    pub replayed: bool,
}

/// An interaction and, while it is queued, where it stands
/// ([`RoutingStore::get_placed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The interaction as `GetInteraction` returns it.
    pub interaction: v1::Interaction,
    /// Its place while queued; None in any other state.
    pub place: Option<QueuePlace>,
}

/// Where a queued interaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1-based rank in its queue (its target, channel and language), as
    /// `CreateInteraction` reports it.
    pub position: u32,
    /// Contacts of its target and channel, in every language, that are
    /// served before it: what an estimate of its wait counts.
    pub ahead: u32,
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
    /// A timer is due now.
    pub due: bool,
    /// When the next timer is due (zero if due now), if there is one.
    pub next_due_in: Option<Duration>,
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

/// Routing state of every tenant in one Redis (a server or a cluster).
#[derive(Clone)]
pub struct RoutingStore {
    conn: RedisConnection,
    scripts: Arc<Scripts>,
    /// Tenants this store's scripts changed, for the replica's worker.
    activity: Arc<Activity>,
    /// Creates are refused while this many events wait in a tenant's outbox.
    outbox_max_events: u64,
    /// Redis replicas a change waits for before it is answered (0: none).
    replica_acks: u32,
    /// Until when changes are answered without waiting: set when a wait
    /// timed out (a replica is missing), see [`REPLICA_ACK_PAUSE`].
    replica_acks_paused_until: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for RoutingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingStore").finish_non_exhaustive()
    }
}

impl RoutingStore {
    /// Connects (and keeps reconnecting) to Redis at `redis_url`: one
    /// server or a cluster (see [`careline_kit::redis_client`]); `rediss://`
    /// trusts the system roots.
    pub async fn connect(redis_url: &str) -> Result<Self> {
        Self::connect_with_tls(redis_url, &Tls::default()).await
    }

    /// [`RoutingStore::connect`] with a service's TLS settings: its CA file
    /// verifies `rediss://` servers, its certificate is the client's.
    pub async fn connect_with_tls(redis_url: &str, tls: &Tls) -> Result<Self> {
        let conn = RedisConnection::connect(redis_url, tls).await?;
        check_redis_version(&mut conn.clone()).await?;
        let store = Self {
            conn,
            scripts: Arc::new(Scripts::new()),
            activity: Arc::default(),
            outbox_max_events: u64::MAX,
            replica_acks: 0,
            replica_acks_paused_until: Arc::default(),
        };
        // Loaded now so that first calls do not wait for it. A primary that
        // is down (failing over) gets it on its first call instead; a Redis
        // user not allowed to load it is a setup error, said at start-up.
        if let Err(error) = store.load_library().await {
            if error.code() == Some("NOPERM") {
                return Err(RoutingError::Unreachable(format!(
                    "Redis did not take the routing library (FUNCTION LOAD): {error}; \
                     a Redis ACL user for Careline needs FUNCTION LOAD and FCALL"
                )));
            }
            tracing::warn!(%error, "the routing library is loaded on first use: FUNCTION LOAD failed");
        }
        Ok(store)
    }

    /// Takes one token from the tenant's bucket `bucket` (`per_sec` tokens a
    /// second, up to `burst` saved), shared by every replica; None when the
    /// call may go ahead, else how long until one may. A standalone script of
    /// one key: it neither emits events nor touches routing state.
    pub async fn take_token(
        &self,
        tenant: &str,
        bucket: &str,
        per_sec: u32,
        burst: u32,
    ) -> Result<Option<Duration>> {
        let wait_micros: u64 = self
            .scripts
            .rate_limit
            .key(keys::tenant_key(tenant, &format!("limit:{bucket}")))
            .arg(per_sec)
            .arg(burst)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((wait_micros > 0).then(|| Duration::from_micros(wait_micros)))
    }

    /// Interactions of `tenant` not yet ended (queued, offered, assigned, pending).
    pub async fn open_interactions(&self, tenant: &str) -> Result<u64> {
        Ok(redis::cmd("ZCARD")
            .arg(keys::tenant_key(tenant, "live"))
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// Deletes every key of `tenant` (any service's: all carry its hash tag),
    /// for a tenant removed from the configuration; returns how many. Run after
    /// the tenant left the configuration, so that no service writes it again.
    pub async fn purge_tenant(&self, tenant: &str) -> Result<u64> {
        let pattern = format!("*{{{tenant}}}*");
        let mut cursor = "0".to_owned();
        let mut deleted = 0;
        loop {
            let (next, count): (String, u64) = self
                .scripts
                .purge_tenant
                .key(keys::prefix(tenant))
                .arg(&cursor)
                .arg(&pattern)
                .invoke_async(&mut self.conn.clone())
                .await?;
            deleted += count;
            if next == "0" {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// Answers a change only once `replicas` Redis replicas of the tenant's
    /// primary hold it (Redis `WAIT`, at most [`REPLICA_ACK_TIMEOUT`]), so a
    /// replica promoted after a crash has everything that was answered. A
    /// change still unreplicated at the timeout is answered all the same and
    /// counted (`careline_redis_replica_acks_missed_total`): it happened on the
    /// primary, and failing the call would only make the caller retry it.
    /// Then, for [`REPLICA_ACK_PAUSE`], changes are answered without waiting:
    /// `WAIT` holds the connection it is sent on, so waiting on a primary that
    /// lost its replica (the one just promoted, until the old primary comes
    /// back as its replica) would slow every change to one per timeout.
    pub fn with_replica_acks(mut self, replicas: u32) -> Self {
        self.replica_acks = replicas;
        self
    }

    /// Refuses new interactions (UNAVAILABLE) while `max_events` or more
    /// events of their tenant wait in the outbox for NATS. Unbounded unless
    /// set (tools and tests); services set `--outbox-max-events`.
    pub fn with_outbox_max_events(mut self, max_events: u64) -> Self {
        self.outbox_max_events = max_events;
        self
    }

    /// A clone of the underlying connection, for readers such as the relay.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// The tenants this store's scripts changed (shared by its clones).
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
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
        let mut settings: Vec<(&str, String)> = vec![
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
            (
                "member_history_count",
                routing.member_history_count.to_string(),
            ),
            (
                "member_history_secs",
                (u64::from(routing.member_history_days) * 86_400).to_string(),
            ),
            (
                "history_secs",
                (u64::from(routing.history_retention_days) * 86_400).to_string(),
            ),
        ];
        // Routing calls keep the settings they read and read them again
        // only when this digest of them changes (`read_settings` in lib.lua).
        let digest = settings_digest(&settings);
        settings.push(("digest", digest));
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
        self.scripts
            .relayed_init
            .key(keys::tenant_key(tenant, "settings"))
            .key(keys::tenant_key(tenant, "outbox"))
            .key(keys::tenant_key(tenant, "seq"))
            .invoke_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn run(&self, routine: &Routine, tenant: &str, args: &[&[u8]]) -> Result<Vec<Value>> {
        let call = routine.call(tenant, args);
        let reply = self
            .call_routing(|mut conn| {
                let call = &call;
                async move { call.query_async::<Vec<Value>>(&mut conn).await }
            })
            .await;
        let mut conn = self.conn.clone();
        // Even a failed call may have changed state (a reply lost on the way).
        self.activity.touched(tenant);
        let reply = script_result(reply?)?;
        if self.replica_acks > 0 && !self.replica_acks_paused() {
            let acked = conn
                .wait_for_replicas(
                    &keys::prefix(tenant),
                    self.replica_acks,
                    REPLICA_ACK_TIMEOUT,
                )
                .await?;
            if acked < self.replica_acks {
                *self.replica_acks_paused_until.lock().expect("not poisoned") =
                    Some(Instant::now() + REPLICA_ACK_PAUSE);
                tracing::warn!(%tenant, acked, wanted = self.replica_acks, "a routing change was answered before enough Redis replicas had it; not waiting for replicas for a while");
                metrics::counter!("careline_redis_replica_acks_missed_total", "tenant" => tenant.to_string())
                    .increment(1);
            }
        }
        Ok(reply)
    }

    /// Makes a call of the routing library's functions (one FCALL or a
    /// pipeline of them) through `call`; a primary that answers it does not
    /// have the library (a new or emptied one) gets it, and the call is made
    /// again once.
    pub(crate) async fn call_routing<T, F, Fut>(&self, call: F) -> redis::RedisResult<T>
    where
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match call(self.conn.clone()).await {
            Err(error) if library_missing(&error) => {
                self.load_library().await?;
                call(self.conn.clone()).await
            }
            other => other,
        }
    }

    /// Loads the routing library into every primary (replacing one of the
    /// same name: the same code).
    async fn load_library(&self) -> redis::RedisResult<()> {
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(&self.scripts.library)
            .query_async::<Value>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    fn replica_acks_paused(&self) -> bool {
        self.replica_acks_paused_until
            .lock()
            .expect("not poisoned")
            .is_some_and(|until| Instant::now() < until)
    }

    /// How many routing events the tenant has had (its event sequence); it
    /// moves whenever its routing state changes.
    pub async fn event_sequence(&self, tenant: &str) -> Result<u64> {
        let sequence: Option<u64> = redis::cmd("HGET")
            .arg(keys::tenant_key(tenant, "settings"))
            .arg("seq")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(sequence.unwrap_or(0))
    }

    /// For each tenant, one read on the Redis node that owns it: whether a
    /// timer is due and when the next one is, and whether its routing
    /// settings are gone (Redis restarted without its data). One tenant's
    /// unreadable keys never hide another tenant's timers.
    pub async fn timer_check(&self, tenants: &[String]) -> Result<Vec<TenantTimers>> {
        // Owned futures: the worker runs this inside a spawned task.
        let reads: Vec<_> = tenants
            .iter()
            .map(|tenant| {
                let scripts = self.scripts.clone();
                let mut conn = self.conn.clone();
                let tenant = tenant.clone();
                async move {
                    let reply: redis::RedisResult<(u8, i64)> = scripts
                        .timer_check
                        .key(keys::tenant_key(&tenant, "timers"))
                        .key(keys::tenant_key(&tenant, "settings"))
                        .invoke_async(&mut conn)
                        .await;
                    (tenant, reply)
                }
            })
            .collect();
        let checks: Vec<_> = futures::stream::iter(reads)
            .buffered(TIMER_CHECK_CONCURRENCY)
            .collect()
            .await;
        let mut found = Vec::with_capacity(checks.len());
        for (tenant, reply) in checks {
            found.push(match reply {
                Ok((settings, due_in_ms)) => {
                    let next_due_in = u64::try_from(due_in_ms).ok().map(Duration::from_millis);
                    TenantTimers {
                        tenant,
                        due: next_due_in == Some(Duration::ZERO),
                        next_due_in,
                        settings_lost: settings == 0,
                        unreadable: None,
                    }
                }
                // Redis itself unreachable: no tenant can be checked.
                Err(error) if error.is_io_error() || error.is_timeout() => {
                    return Err(error.into());
                }
                Err(error) => TenantTimers {
                    tenant,
                    due: false,
                    next_due_in: None,
                    settings_lost: false,
                    unreadable: Some(error.to_string()),
                },
            });
        }
        Ok(found)
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
/// Longest a change waits for its Redis replicas (see
/// [`RoutingStore::with_replica_acks`]); well under the client's response
/// timeout.
pub const REPLICA_ACK_TIMEOUT: Duration = Duration::from_millis(500);
/// How long changes are answered without waiting for replicas after a wait
/// timed out (see [`RoutingStore::with_replica_acks`]).
pub const REPLICA_ACK_PAUSE: Duration = Duration::from_secs(5);

/// The oldest Redis the scripts run on (`SET ... NX GET` came in 7.0).
const MIN_REDIS_MAJOR: u32 = 7;

/// Refuses a Redis too old for the scripts, naming its version, rather than
/// failing every create later. An unreadable version is let through: the
/// connection's own errors say more.
async fn check_redis_version(conn: &mut RedisConnection) -> Result<()> {
    let Ok(info) = redis::cmd("INFO")
        .arg("server")
        .query_async::<String>(conn)
        .await
    else {
        return Ok(());
    };
    match redis_version(&info) {
        Some((version, major)) if major < MIN_REDIS_MAJOR => {
            Err(RoutingError::Unreachable(format!(
                "Redis {version} is too old: Careline needs Redis {MIN_REDIS_MAJOR}.0 or later"
            )))
        }
        _ => Ok(()),
    }
}

/// `redis_version` of an `INFO server` reply, and its major number.
fn redis_version(info: &str) -> Option<(&str, u32)> {
    let version = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))?;
    let major = version.split('.').next()?.parse().ok()?;
    Some((version, major))
}

/// Hex digits of a digest of the settings written with them.
const SETTINGS_DIGEST_CHARS: usize = 16;

/// A digest of the settings `sync_tenant` writes: equal digests, equal settings.
fn settings_digest(settings: &[(&str, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (name, value) in settings {
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
        hasher.update(b"\n");
    }
    let mut digest = hex::encode(hasher.finalize());
    digest.truncate(SETTINGS_DIGEST_CHARS);
    digest
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
        "SETTINGS_MISSING" => Err(RoutingError::SettingsNotLoaded(message())),
        "QUEUE_FULL" => {
            let numbers: Vec<u64> = items
                .map(u64::from_redis_value)
                .collect::<std::result::Result<_, _>>()?;
            match numbers[..] {
                [waiting, max] => Err(RoutingError::QueueFull { waiting, max }),
                _ => Err(RoutingError::Corrupt(
                    "QUEUE_FULL without its counts".into(),
                )),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::redis_version;

    #[test]
    fn redis_version_is_read_from_info_server() {
        for (info, expected) in [
            (
                "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n",
                Some(("7.0.15", 7)),
            ),
            ("# Server\r\nredis_version:6.2.14\r\n", Some(("6.2.14", 6))),
            ("redis_version:garbage\r\n", None),
            ("# Server\r\n", None),
        ] {
            assert_eq!(redis_version(info), expected, "{info:?}");
        }
    }
}
