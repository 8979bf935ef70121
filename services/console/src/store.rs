//! [`KpiStore`]: the console's own Redis keys. Events are applied through one
//! atomic script (`apply_event.lua`) that marks the event id seen and updates
//! every counter it touches in the same step, so a redelivery, a replay of the
//! log or two replicas handling neighbouring events never count twice.
//!
//! Keys (all under the tenant's hash tag, one Redis Cluster slot per tenant):
//! `kpi:{<tenant>}:k:<scope>:<period>:<start ms>` a hash of counters,
//! `...:i:<scope>:<period>` the periods of a scope (sorted by start),
//! `...:ag:<agent>` an agent's state, since when, and load per channel,
//! `...:agents` the agents seen, `...:ix:<id>` and `...:m:<member>:*` the
//! pairing state of contacts and members, `...:seen:<event id>`,
//! `...:rv:<scored|coaching_marked>:<id>` the claim of an interaction's one quality
//! score or coaching mark.
//! Scopes: `t` (the tenant), `q:<queue>`, `a:<agent>`.

use std::collections::HashMap;
use std::time::Duration;

use careline_kit::RedisConnection;
use chrono_tz::Tz;
use redis::{AsyncCommands, Script};

use crate::error::ConsoleError;
use crate::periods::{self, Bucket, Period};

/// How long seen event ids and per-contact pairing state are kept: longer
/// than the event stream keeps events (7 days by default), so a replay of
/// the whole log finds every id it already applied.
pub const PAIRING_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long KPI periods are kept.
pub const KPI_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);
/// Attempts at applying an agent state change that races other changes of
/// the same agent (on this or another replica).
pub const STATE_ATTEMPTS: u32 = 32;
/// Pause after a lost race, times the attempt number.
pub const STATE_RETRY_BACKOFF: Duration = Duration::from_millis(2);
/// Most periods one GetKpis answer holds (a month of 15-minute periods).
pub const MAX_PERIODS: usize = 31 * 96;
/// State changes of one agent within the same millisecond considered.
pub const MAX_SAME_MS_CHANGES: usize = 16;
/// Longest wrap-up matched to a resolution: a capacity release later than
/// this after it is not its wrap-up's end.
pub const MAX_WRAP_UP: Duration = Duration::from_secs(3600);
/// How long the floor view's waiting samples are kept.
pub const WAITING_HISTORY_MS: i64 = 24 * 3_600_000;
/// Most agents the floor view lists per tenant.
pub const MAX_FLOOR_AGENTS: usize = 2000;

/// One event, as the KPI script reads it.
#[derive(Debug, Clone, Default)]
pub struct KpiEvent {
    pub event_id: String,
    /// `created`, `offered`, `assigned`, `abandoned`, `resolved`, `transferred`,
    /// `offer_timed_out`, `capacity_released`, `state`, or `add`.
    pub kind: &'static str,
    pub at_ms: i64,
    pub sequence: u64,
    pub interaction_id: String,
    pub queue_id: String,
    pub agent_id: String,
    pub member_ref: String,
    /// `voice`, `chat` or `email` (empty when unknown).
    pub channel: &'static str,
    pub outcome_tags: Vec<String>,
    /// For `state`: `available`, `away` or `offline`, and the reason.
    pub state: String,
    pub reason: String,
    /// For `add`: counter fields and what the event adds to them.
    pub adds: Vec<(String, i64)>,
}

impl KpiEvent {
    /// The state as it is counted: `away:<reason>` when away with a reason
    /// (characters the script's separators use are replaced).
    fn state_key(&self) -> String {
        let state = if self.state == "away" && !self.reason.is_empty() {
            format!("away:{}", self.reason)
        } else {
            self.state.clone()
        };
        state.replace(['\t', '\n', '|', '='], "_")
    }

    /// The entry of this state change in the agent's history: ordered by
    /// time, then by sequence.
    fn history_entry(&self) -> String {
        format!("{:020}|{}", self.sequence, self.state_key())
    }
}

/// A state change in an agent's history: when, its history entry.
type HistoryEntry = (i64, String);
/// Sorted-set members with their scores, as `WITHSCORES` answers.
type Scored = Vec<(String, i64)>;

/// The state an agent history entry names.
fn entry_state(entry: &str) -> &str {
    entry.split_once('|').map_or("", |(_, state)| state)
}

/// What inserting `new` between `previous` and `next` in an agent's history
/// adds to each state's time, per period: the span from `new` to `next`
/// moves from the previous state to the new one; with nothing after it, the
/// previous state's span up to `new` is now closed and counted. Offline time
/// is not counted.
pub fn state_time_changes(
    tz: Tz,
    previous: Option<&HistoryEntry>,
    new: &HistoryEntry,
    next: Option<&HistoryEntry>,
) -> Vec<(Bucket, String, i64)> {
    let mut changes = Vec::new();
    let mut count = |state: &str, from_ms: i64, to_ms: i64, sign: i64| {
        if state.is_empty() || state == "offline" {
            return;
        }
        for (bucket, ms) in periods::split(tz, from_ms, to_ms) {
            changes.push((bucket, state.to_owned(), sign * ms));
        }
    };
    let new_state = entry_state(&new.1);
    match (previous, next) {
        (Some(previous), Some(next)) => {
            let previous_state = entry_state(&previous.1);
            if previous_state != new_state {
                count(previous_state, new.0, next.0, -1);
                count(new_state, new.0, next.0, 1);
            }
        }
        (Some(previous), None) => count(entry_state(&previous.1), previous.0, new.0, 1),
        (None, Some(next)) => count(new_state, new.0, next.0, 1),
        (None, None) => {}
    }
    changes
}

/// Per-tenant settings the script needs.
#[derive(Debug, Clone, Copy)]
pub struct KpiRules {
    pub time_zone: Tz,
    pub service_level: Duration,
    pub short_abandon: Duration,
    pub fcr_window: Duration,
}

/// What an applied event added to the tenant's totals.
pub type Applied = Vec<(String, i64)>;

/// The live state of one agent, for the floor view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentFloor {
    pub agent_id: String,
    pub state: String,
    pub reason: String,
    pub since_ms: i64,
    pub load_voice: i64,
    pub load_chat: i64,
    pub load_email: i64,
}

/// The console's Redis state.
#[derive(Clone)]
pub struct KpiStore {
    redis: RedisConnection,
    apply: Script,
}

impl std::fmt::Debug for KpiStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KpiStore").finish_non_exhaustive()
    }
}

fn prefix(tenant: &str) -> String {
    format!("kpi:{{{tenant}}}:")
}

impl KpiStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            apply: Script::new(include_str!("apply_event.lua")),
        }
    }

    /// Applies `event` of `tenant` once; `None` when it was applied before.
    pub async fn apply(
        &self,
        tenant: &str,
        event: &KpiEvent,
        rules: &KpiRules,
    ) -> Result<Option<Applied>, ConsoleError> {
        let prefix = prefix(tenant);
        let buckets = periods::buckets_at(rules.time_zone, event.at_ms)
            .iter()
            .map(|b| b.key())
            .collect::<Vec<_>>()
            .join(",");
        for attempt in 1..=STATE_ATTEMPTS {
            let (version, changes) = if event.kind == "state" {
                self.state_changes(&prefix, event, rules.time_zone).await?
            } else {
                (String::new(), String::new())
            };
            let mut conn = self.redis.clone();
            let reply: Vec<String> = self
                .apply
                .key(&prefix)
                .arg(&event.event_id)
                .arg(event.kind)
                .arg(event.at_ms)
                .arg(&event.interaction_id)
                .arg(&event.queue_id)
                .arg(&event.agent_id)
                .arg(&event.member_ref)
                .arg(event.channel)
                .arg(event.outcome_tags.join(","))
                .arg(millis(rules.service_level))
                .arg(millis(rules.short_abandon))
                .arg(millis(rules.fcr_window))
                .arg(PAIRING_RETENTION.as_secs())
                .arg(&buckets)
                .arg(event.history_entry())
                .arg(&version)
                .arg(&changes)
                .arg(KPI_RETENTION.as_secs())
                .arg(millis(MAX_WRAP_UP))
                .arg(
                    event
                        .adds
                        .iter()
                        .map(|(field, n)| format!("{field}\t{n}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
                .invoke_async(&mut conn)
                .await?;
            match reply.first().map(String::as_str) {
                Some("dup") => return Ok(None),
                Some("retry") => {
                    tokio::time::sleep(STATE_RETRY_BACKOFF * attempt).await;
                    continue;
                }
                Some("ok") => {
                    let applied = reply[1..]
                        .chunks(2)
                        .filter_map(|pair| match pair {
                            [name, value] => Some((name.clone(), value.parse().ok()?)),
                            _ => None,
                        })
                        .collect();
                    return Ok(Some(applied));
                }
                _ => return Err(ConsoleError::Script(format!("{reply:?}"))),
            }
        }
        Err(ConsoleError::Contended(event.agent_id.clone()))
    }

    /// The agent history's version and what inserting `event` in it changes
    /// (the script's lines `<period>\t<state>\t<ms>`).
    async fn state_changes(
        &self,
        prefix: &str,
        event: &KpiEvent,
        tz: Tz,
    ) -> Result<(String, String), ConsoleError> {
        let history = format!("{prefix}sh:{}", event.agent_id);
        let at = event.at_ms;
        let mut conn = self.redis.clone();
        // The version first: a change after it is read makes the script refuse.
        let (version, before, same_ms, after): (Option<String>, Scored, Scored, Scored) =
            redis::pipe()
                .hget(format!("{prefix}ag:{}", event.agent_id), "ver")
                .cmd("ZREVRANGEBYSCORE")
                .arg(&history)
                .arg(format!("({at}"))
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .cmd("ZRANGEBYSCORE")
                .arg(&history)
                .arg(at)
                .arg(at)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(MAX_SAME_MS_CHANGES)
                .cmd("ZRANGEBYSCORE")
                .arg(&history)
                .arg(format!("({at}"))
                .arg("+inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(1)
                .query_async(&mut conn)
                .await?;
        let new = (at, event.history_entry());
        let mut entries: Vec<HistoryEntry> = before
            .into_iter()
            .chain(same_ms)
            .chain(after)
            .map(|(entry, at)| (at, entry))
            .filter(|entry| *entry != new)
            .collect();
        entries.sort();
        let previous = entries.iter().rfind(|entry| **entry < new);
        let next = entries.iter().find(|entry| **entry > new);
        let changes = state_time_changes(tz, previous, &new, next)
            .iter()
            .map(|(bucket, state, ms)| format!("{}\t{state}\t{ms}", bucket.key()))
            .collect::<Vec<_>>()
            .join("\n");
        Ok((version.unwrap_or_default(), changes))
    }

    /// The counters of `scope` for the periods of length `period` starting
    /// in `[from_ms, to_ms)`, oldest first.
    pub async fn periods(
        &self,
        tenant: &str,
        scope: &str,
        period: Period,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(Bucket, HashMap<String, i64>)>, ConsoleError> {
        let prefix = prefix(tenant);
        let mut conn = self.redis.clone();
        let starts: Vec<i64> = redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{prefix}i:{scope}:{}", period.code()))
            .arg(from_ms)
            .arg(format!("({to_ms}"))
            .arg("LIMIT")
            .arg(0)
            .arg(MAX_PERIODS)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        let buckets: Vec<Bucket> = starts
            .into_iter()
            .map(|start_ms| Bucket { period, start_ms })
            .collect();
        for bucket in &buckets {
            pipe.hgetall(format!("{prefix}k:{scope}:{}", bucket.key()));
        }
        let counters: Vec<HashMap<String, i64>> = if buckets.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await?
        };
        Ok(buckets.into_iter().zip(counters).collect())
    }

    /// The counters of each of `agents` in one period (one round trip).
    pub async fn agents_period(
        &self,
        tenant: &str,
        agents: &[String],
        bucket: Bucket,
    ) -> Result<Vec<HashMap<String, i64>>, ConsoleError> {
        if agents.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = prefix(tenant);
        let mut pipe = redis::pipe();
        for agent in agents {
            pipe.hgetall(format!("{prefix}k:a:{agent}:{}", bucket.key()));
        }
        let mut conn = self.redis.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    /// Every agent of `tenant` seen on the log, with its state and load.
    pub async fn agents(&self, tenant: &str) -> Result<Vec<AgentFloor>, ConsoleError> {
        let prefix = prefix(tenant);
        let mut conn = self.redis.clone();
        let mut ids: Vec<String> = conn.smembers(format!("{prefix}agents")).await?;
        ids.sort();
        ids.truncate(MAX_FLOOR_AGENTS);
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(format!("{prefix}ag:{id}"));
        }
        let hashes: Vec<HashMap<String, String>> = if ids.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await?
        };
        Ok(ids
            .into_iter()
            .zip(hashes)
            .map(|(agent_id, h)| {
                let num = |field: &str| h.get(field).and_then(|v| v.parse().ok()).unwrap_or(0);
                let state = h.get("st").cloned().unwrap_or_default();
                AgentFloor {
                    agent_id,
                    state: state.split(':').next().unwrap_or_default().to_owned(),
                    reason: h.get("reason").cloned().unwrap_or_default(),
                    since_ms: num("since"),
                    load_voice: num("load:voice").max(0),
                    load_chat: num("load:chat").max(0),
                    load_email: num("load:email").max(0),
                }
            })
            .collect())
    }
}

/// What the log says of one interaction, for a quality review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Whether `interaction.resolved` was applied.
    pub resolved: bool,
    /// The queue and agent that resolved it ("" until resolved).
    pub queue_id: String,
    pub agent_id: String,
}

impl KpiStore {
    /// What the console's log knows of `tenant`'s interaction `id`; `None`
    /// when none of its events was applied (unknown, another tenant's, or
    /// older than [`PAIRING_RETENTION`]).
    pub async fn resolution(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Resolution>, ConsoleError> {
        let mut conn = self.redis.clone();
        // A contact's pairing state is a small hash; empty when it is unknown.
        let fields: HashMap<String, String> =
            conn.hgetall(format!("{}ix:{id}", prefix(tenant))).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        Ok(Some(Resolution {
            resolved: fields.contains_key("r"),
            queue_id: field("rq"),
            agent_id: field("ra"),
        }))
    }

    /// Claims the one `what` (a score, a coaching mark) of `tenant`'s
    /// interaction `id` for `keep`; false when it was claimed already. Two
    /// supervisors (or replicas) at once: one wins.
    pub async fn claim_review(
        &self,
        tenant: &str,
        what: &str,
        id: &str,
        keep: Duration,
    ) -> Result<bool, ConsoleError> {
        let mut conn = self.redis.clone();
        let claimed: Option<String> = redis::cmd("SET")
            .arg(format!("{}rv:{what}:{id}", prefix(tenant)))
            .arg("1")
            .arg("NX")
            .arg("EX")
            .arg(keep.as_secs().max(1))
            .query_async(&mut conn)
            .await?;
        Ok(claimed.is_some())
    }

    /// Gives back a claim whose event could not be published, so it can be retried.
    pub async fn release_review(
        &self,
        tenant: &str,
        what: &str,
        id: &str,
    ) -> Result<(), ConsoleError> {
        let mut conn = self.redis.clone();
        let _: i64 = conn
            .del(format!("{}rv:{what}:{id}", prefix(tenant)))
            .await?;
        Ok(())
    }
}

impl KpiStore {
    /// Records how many contacts wait in `tenant`'s queues in the minute
    /// starting at `minute_ms` (the floor view's chart). Replicas sampling
    /// the same minute leave one sample.
    pub async fn sample_waiting(
        &self,
        tenant: &str,
        minute_ms: i64,
        waiting: u32,
    ) -> Result<(), ConsoleError> {
        let key = format!("{}floor:waiting", prefix(tenant));
        let mut conn = self.redis.clone();
        let () = redis::pipe()
            .atomic()
            .zrembyscore(&key, minute_ms, minute_ms)
            .ignore()
            .zadd(&key, format!("{minute_ms}|{waiting}"), minute_ms)
            .ignore()
            .zrembyscore(&key, "-inf", format!("({}", minute_ms - WAITING_HISTORY_MS))
            .ignore()
            .expire(&key, WAITING_HISTORY_MS / 1000)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The waiting samples of `tenant` since `from_ms`, oldest first.
    pub async fn waiting_samples(
        &self,
        tenant: &str,
        from_ms: i64,
    ) -> Result<Vec<(i64, u32)>, ConsoleError> {
        let mut conn = self.redis.clone();
        let samples: Vec<String> = conn
            .zrangebyscore(format!("{}floor:waiting", prefix(tenant)), from_ms, "+inf")
            .await?;
        Ok(samples
            .iter()
            .filter_map(|sample| {
                let (at, waiting) = sample.split_once('|')?;
                Some((at.parse().ok()?, waiting.parse().ok()?))
            })
            .collect())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
