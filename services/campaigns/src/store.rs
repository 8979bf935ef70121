//! [`CampaignStore`]: the campaigns service's own Redis keys, every one under
//! the tenant's `{tenant}` hash tag (prefix `cl:{<tenant>}:cmp:`), each
//! multi-key change one Lua script that declares its keys:
//!
//! - `c:<code>:t:<member key>`: a target (member ref, contact hint, language,
//!   priority, state `due` / `active` / `done`, attempt number, outcome).
//! - `c:<code>:due:hi`, `c:<code>:due`: sorted sets of member keys by due time
//!   (ms); high-priority targets are claimed first.
//! - `c:<code>:active`: member keys in an attempt, by lease end (ms).
//! - `c:<code>:hour:<hour>`: contacts started in one clock hour (pacing).
//! - `c:<code>:stats`: counters: `targets`, `attempts`, `r:<result>`,
//!   `d:<disposition>`, `o:<outcome tag>`, `f:<failure reason>`.
//! - `optout:<member key>`, `reached:<member key>`: the suppression ledger,
//!   shared by the tenant's campaigns (like the survey throttle).
//! - `open:<member key>`: set of the member's open interactions (from events).
//! - `ix:<interaction>`: the campaign of an outbound interaction (attribution).
//! - `counted:<interaction>`: its resolution was added to the stats.
//!
//! A member key is a digest of tenant and member reference: the tenant's
//! reference never appears in a key (the target hash keeps it, because the
//! router needs it on the outbound interaction).

use std::collections::BTreeMap;
use std::time::Duration;

use careline_kit::RedisConnection;
use redis::{AsyncCommands, Script};
use sha2::{Digest, Sha256};

use crate::CampaignError;

/// How long a claimed target is its replica's before another may claim it
/// again (the attempt has not started: creating the interaction takes less).
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// How long a started attempt waits for its result before the target is
/// claimed again (same attempt number: the router replays the same interaction).
pub const ATTEMPT_LEASE: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a target is kept (a campaign's life).
pub const TARGET_KEEP: Duration = Duration::from_secs(400 * 24 * 60 * 60);
/// How long a settled target is remembered (so re-adding it stays a no-op).
pub const SETTLED_KEEP: Duration = Duration::from_secs(180 * 24 * 60 * 60);
/// How long the open-interaction set of a member lives without a change
/// (a lost end event cannot suppress a member for ever).
pub const OPEN_KEEP: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long an outbound interaction's campaign is remembered for attribution.
pub const ATTRIBUTION_KEEP: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// The pacing counter's life: the hour it counts and one more.
pub const HOUR_COUNTER_KEEP: Duration = Duration::from_secs(2 * 60 * 60);
/// An hour, in ms.
pub const HOUR_MS: i64 = 60 * 60 * 1000;

/// Milliseconds of `duration`, for script arguments.
pub fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn prefix(tenant: &str) -> String {
    format!("cl:{{{tenant}}}:cmp:")
}

fn campaign_prefix(tenant: &str, code: &str) -> String {
    format!("{}c:{code}:", prefix(tenant))
}

/// The opaque key of a member of `tenant`.
pub fn member_key(tenant: &str, member_ref: &str) -> String {
    let digest = Sha256::new()
        .chain_update(tenant.as_bytes())
        .chain_update([0u8])
        .chain_update(member_ref.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// A target to add.
#[derive(Debug, Clone)]
pub struct NewTarget<'a> {
    pub member_ref: &'a str,
    /// Never logged.
    pub contact_hint: &'a str,
    pub language: &'a str,
    /// `high` targets are claimed first.
    pub high: bool,
    pub priority: &'a str,
    pub due_ms: i64,
    /// A call-back's: when the member first queued (ms); 0 for other targets.
    pub queued_since_ms: i64,
}

/// An attempt to make now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub member_key: String,
    pub attempt: u32,
    pub member_ref: String,
    /// Never logged.
    pub contact_hint: String,
    pub language: String,
    pub priority: String,
    /// A call-back's: when the member first queued (ms); 0 for other targets.
    pub queued_since_ms: i64,
    /// This attempt had started before and its lease ran out without a
    /// result (counted as `f:lease_expired`); it is made again.
    pub lease_expired: bool,
}

/// What [`CampaignStore::start_attempt`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// Make the attempt.
    Attempt(Attempt),
    /// Not attempted; the word says why (`suppressed_opted_out`,
    /// `suppressed_reached_recently`, `deferred`, `gone`).
    Skipped(String),
}

/// A campaign's figures as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredStats {
    pub counters: BTreeMap<String, u64>,
    pub due: u64,
    pub in_progress: u64,
}

struct Scripts {
    add_target: Script,
    claim_due: Script,
    start_attempt: Script,
    report: Script,
    attribute: Script,
}

/// The campaigns service's Redis store; cheap to clone.
#[derive(Clone)]
pub struct CampaignStore {
    redis: RedisConnection,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for CampaignStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignStore").finish_non_exhaustive()
    }
}

impl CampaignStore {
    /// A store over `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            scripts: std::sync::Arc::new(Scripts {
                add_target: Script::new(include_str!("lua/add_target.lua")),
                claim_due: Script::new(include_str!("lua/claim_due.lua")),
                start_attempt: Script::new(include_str!("lua/start_attempt.lua")),
                report: Script::new(include_str!("lua/report.lua")),
                attribute: Script::new(include_str!("lua/attribute.lua")),
            }),
        }
    }

    /// Adds `target` to campaign `code` unless it has the member; true when new.
    pub async fn add_target(
        &self,
        tenant: &str,
        code: &str,
        target: &NewTarget<'_>,
    ) -> Result<bool, CampaignError> {
        let p = campaign_prefix(tenant, code);
        let member = member_key(tenant, target.member_ref);
        let due = if target.high { "due:hi" } else { "due" };
        let added: i64 = self
            .scripts
            .add_target
            .key(format!("{p}t:{member}"))
            .key(format!("{p}{due}"))
            .key(format!("{p}stats"))
            .arg(&member)
            .arg(target.due_ms)
            .arg(target.member_ref)
            .arg(target.contact_hint)
            .arg(target.language)
            .arg(target.priority)
            .arg(ms(TARGET_KEEP))
            .arg(target.queued_since_ms)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("add a target", &e))?;
        Ok(added == 1)
    }

    /// Claims up to `budget` of campaign `code`'s targets due at `now_ms`,
    /// with at most `max_in_progress` in attempts and `max_per_hour` started
    /// this clock hour (see `lua/claim_due.lua`).
    pub async fn claim_due(
        &self,
        tenant: &str,
        code: &str,
        now_ms: i64,
        max_in_progress: u32,
        max_per_hour: u32,
        budget: usize,
    ) -> Result<Vec<String>, CampaignError> {
        let p = campaign_prefix(tenant, code);
        let hour = now_ms.div_euclid(HOUR_MS);
        self.scripts
            .claim_due
            .key(format!("{p}due:hi"))
            .key(format!("{p}due"))
            .key(format!("{p}active"))
            .key(format!("{p}hour:{hour}"))
            .arg(now_ms)
            .arg(ms(CLAIM_LEASE))
            .arg(max_in_progress)
            .arg(max_per_hour)
            .arg(budget)
            .arg(ms(HOUR_COUNTER_KEEP))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("claim due targets", &e))
    }

    /// Contacts of campaign `code` started in the clock hour of `now_ms`.
    pub async fn started_this_hour(
        &self,
        tenant: &str,
        code: &str,
        now_ms: i64,
    ) -> Result<u32, CampaignError> {
        let hour = now_ms.div_euclid(HOUR_MS);
        let started: Option<u32> = self
            .redis
            .clone()
            .get(format!("{}hour:{hour}", campaign_prefix(tenant, code)))
            .await
            .map_err(|e| CampaignError::redis("read the pacing counter", &e))?;
        Ok(started.unwrap_or(0))
    }

    /// Starts, settles or defers a claimed target (see `lua/start_attempt.lua`).
    pub async fn start_attempt(
        &self,
        tenant: &str,
        code: &str,
        member: &str,
        now_ms: i64,
        defer_ms: i64,
    ) -> Result<Started, CampaignError> {
        let (t, p) = (prefix(tenant), campaign_prefix(tenant, code));
        let reply: Vec<String> = self
            .scripts
            .start_attempt
            .key(format!("{p}t:{member}"))
            .key(format!("{p}active"))
            .key(format!("{p}due"))
            .key(format!("{t}optout:{member}"))
            .key(format!("{t}reached:{member}"))
            .key(format!("{t}open:{member}"))
            .key(format!("{p}stats"))
            .arg(member)
            .arg(now_ms)
            .arg(defer_ms)
            .arg(ms(SETTLED_KEEP))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("start an attempt", &e))?;
        Ok(match reply.as_slice() {
            [
                start,
                attempt,
                member_ref,
                hint,
                language,
                priority,
                queued,
                expired,
            ] if start == "start" => Started::Attempt(Attempt {
                member_key: member.to_owned(),
                attempt: attempt.parse().unwrap_or(1),
                member_ref: member_ref.clone(),
                contact_hint: hint.clone(),
                language: language.clone(),
                priority: priority.clone(),
                queued_since_ms: queued.parse().unwrap_or(0),
                lease_expired: expired == "1",
            }),
            [why, ..] => Started::Skipped(why.clone()),
            [] => Started::Skipped("gone".into()),
        })
    }

    /// The attempt started: it waits [`ATTEMPT_LEASE`] for its result;
    /// `interaction_id` (voice) is remembered for attribution.
    pub async fn attempt_started(
        &self,
        tenant: &str,
        code: &str,
        member: &str,
        now_ms: i64,
        interaction_id: Option<&str>,
    ) -> Result<(), CampaignError> {
        let (t, p) = (prefix(tenant), campaign_prefix(tenant, code));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZADD")
            .arg(format!("{p}active"))
            .arg("XX")
            .arg(now_ms.saturating_add(ms(ATTEMPT_LEASE)))
            .arg(member)
            .ignore();
        pipe.hset(format!("{p}t:{member}"), "started", 1).ignore();
        if let Some(id) = interaction_id {
            pipe.hset(format!("{p}t:{member}"), "interaction", id)
                .ignore()
                .set_ex(format!("{t}ix:{id}"), code, ATTRIBUTION_KEEP.as_secs())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("record a started attempt", &e))
    }

    /// Counts a failed attempt of campaign `code` under `reason` (`f:<reason>`).
    pub async fn attempt_failed(
        &self,
        tenant: &str,
        code: &str,
        reason: &str,
    ) -> Result<(), CampaignError> {
        self.redis
            .clone()
            .hincr::<_, _, _, ()>(
                format!("{}stats", campaign_prefix(tenant, code)),
                format!("f:{reason}"),
                1,
            )
            .await
            .map_err(|e| CampaignError::redis("count a failed attempt", &e))
    }

    /// The attempt number of `member`'s target in campaign `code` while it is
    /// in an attempt, else `None`.
    pub async fn active_attempt(
        &self,
        tenant: &str,
        code: &str,
        member: &str,
    ) -> Result<Option<u32>, CampaignError> {
        let (state, attempt): (Option<String>, Option<u32>) = redis::cmd("HMGET")
            .arg(format!("{}t:{member}", campaign_prefix(tenant, code)))
            .arg("state")
            .arg("attempt")
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("read a target", &e))?;
        Ok(attempt.filter(|_| state.as_deref() == Some("active")))
    }

    /// Records attempt `attempt`'s `result`: due again at `next_due_ms`
    /// (> 0), else settled as `outcome`. False when it was not in that attempt.
    #[allow(clippy::too_many_arguments)]
    pub async fn report(
        &self,
        tenant: &str,
        code: &str,
        member: &str,
        attempt: u32,
        result: &str,
        next_due_ms: i64,
        outcome: &str,
        reached_suppress_ms: i64,
    ) -> Result<bool, CampaignError> {
        let (t, p) = (prefix(tenant), campaign_prefix(tenant, code));
        let reply: Vec<String> = self
            .scripts
            .report
            .key(format!("{p}t:{member}"))
            .key(format!("{p}active"))
            .key(format!("{p}due"))
            .key(format!("{t}reached:{member}"))
            .key(format!("{p}stats"))
            .arg(member)
            .arg(attempt)
            .arg(result)
            .arg(next_due_ms)
            .arg(outcome)
            .arg(reached_suppress_ms)
            .arg(ms(SETTLED_KEEP))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("record an attempt result", &e))?;
        Ok(reply.first().is_some_and(|r| r != "no_attempt"))
    }

    /// The member is contacted by no campaign of `tenant`.
    pub async fn suppress(&self, tenant: &str, member: &str) -> Result<(), CampaignError> {
        self.redis
            .clone()
            .set::<_, _, ()>(format!("{}optout:{member}", prefix(tenant)), 1)
            .await
            .map_err(|e| CampaignError::redis("record an opt-out", &e))
    }

    /// `interaction_id` of the member is open (created) or not (ended).
    pub async fn set_open(
        &self,
        tenant: &str,
        member: &str,
        interaction_id: &str,
        open: bool,
    ) -> Result<(), CampaignError> {
        let key = format!("{}open:{member}", prefix(tenant));
        let mut pipe = redis::pipe();
        pipe.atomic();
        if open {
            pipe.sadd(&key, interaction_id).ignore();
        } else {
            pipe.srem(&key, interaction_id).ignore();
        }
        pipe.pexpire(&key, ms(OPEN_KEEP)).ignore();
        pipe.query_async::<()>(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("record an open interaction", &e))
    }

    /// The campaign an outbound interaction was created for.
    pub async fn campaign_of(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<Option<String>, CampaignError> {
        self.redis
            .clone()
            .get(format!("{}ix:{interaction_id}", prefix(tenant)))
            .await
            .map_err(|e| CampaignError::redis("read an interaction's campaign", &e))
    }

    /// Adds a resolution to campaign `code`'s figures once; true when counted now.
    pub async fn attribute(
        &self,
        tenant: &str,
        code: &str,
        interaction_id: &str,
        disposition: &str,
        outcome_tags: &[String],
    ) -> Result<bool, CampaignError> {
        let t = prefix(tenant);
        let mut invocation = self
            .scripts
            .attribute
            .key(format!("{t}counted:{interaction_id}"));
        invocation
            .key(format!("{}stats", campaign_prefix(tenant, code)))
            .arg(ms(ATTRIBUTION_KEEP))
            .arg(disposition);
        for tag in outcome_tags {
            invocation.arg(tag);
        }
        let counted: i64 = invocation
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("attribute a resolution", &e))?;
        Ok(counted == 1)
    }

    /// Campaign `code`'s counters and set sizes.
    pub async fn stats(&self, tenant: &str, code: &str) -> Result<StoredStats, CampaignError> {
        let p = campaign_prefix(tenant, code);
        let (counters, hi, normal, active): (BTreeMap<String, u64>, u64, u64, u64) = redis::pipe()
            .hgetall(format!("{p}stats"))
            .zcard(format!("{p}due:hi"))
            .zcard(format!("{p}due"))
            .zcard(format!("{p}active"))
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| CampaignError::redis("read campaign stats", &e))?;
        Ok(StoredStats {
            counters,
            due: hi + normal,
            in_progress: active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_keys_are_opaque_and_per_tenant() {
        let key = member_key("acme", "member-42");
        assert_eq!(key.len(), 32);
        assert!(!key.contains("member"));
        assert_ne!(key, member_key("other", "member-42"));
    }
}
