//! [`SurveyStore`]: the survey service's own Redis keys, every one under the
//! tenant's `{tenant}` hash tag (prefix `cl:{<tenant>}:svy:`), each multi-key
//! change one Lua script:
//!
//! - `due`: sorted set of interaction ids by due time (ms); a claimed one is
//!   pushed past a lease ([`CLAIM_LEASE`]).
//! - `job:<interaction>`: the survey to send (member key, agent, queue, state).
//! - `member:<member key>`: `<sent at ms>:<interaction>`, the member's window.
//! - `optout:<member key>`: the member wants no surveys.
//! - `contact:<member key>`: the member's address and language (never logged).
//! - `sent:<interaction>`: queue and agent of a survey sent, and when it was answered.
//! - `answer:<interaction>`: the answer, comment included (kept the tenant's retention).
//! - `answers`: sorted set by answer time of `<interaction>|<queue>|<agent>|<r>|<h>|<e>`,
//!   what the stats add up.
//!
//! A member key is a digest of tenant and member reference: the tenant's
//! reference never appears in a key, and an address never does.

use std::time::Duration;

use careline_domain::survey::Scores;
use careline_kit::RedisConnection;
use redis::{AsyncCommands, Script};
use sha2::{Digest, Sha256};

use crate::SurveyError;

/// How long a claimed survey is left to its replica before another may take it.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// How long a settled job is remembered: longer than the event stream keeps
/// the resolved event (7 days), so a late redelivery schedules nothing.
pub const SETTLED_JOB_KEEP: Duration = Duration::from_secs(8 * 24 * 60 * 60);
/// Most answers one stats call adds up (past it, the newest are counted and
/// the result says it was truncated).
pub const MAX_STATS_ANSWERS: usize = 200_000;
/// A day, in ms.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Milliseconds of `duration`, for script arguments.
fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn prefix(tenant: &str) -> String {
    format!("cl:{{{tenant}}}:svy:")
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

/// A survey to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub interaction_id: String,
    pub member_key: String,
    pub agent_id: String,
    pub queue_id: String,
    pub due_ms: i64,
}

/// What [`SurveyStore::decide`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send now, to this address, in this language code (may be empty).
    Send {
        address: String,
        language: String,
        agent_id: String,
    },
    /// Settled without an email; the word says why (`throttled`, `opted_out`,
    /// `no_contact`, `done`, `gone`).
    Skip(String),
}

/// How an answer was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now; the survey's queue and agent.
    New { queue_id: String, agent_id: String },
    /// The survey was answered before; nothing stored.
    Already,
    /// No survey was sent for it (or its record expired); nothing stored.
    Unknown,
}

/// An answer to record.
#[derive(Debug, Clone, Copy)]
pub struct NewAnswer<'a> {
    pub scores: Scores,
    /// The member's comment (may be empty). Never logged.
    pub comment: &'a str,
    pub now_ms: i64,
    /// How long the answer is kept (the tenant's retention).
    pub keep_ms: i64,
    /// Index entries answered before this are dropped on the way.
    pub oldest_ms: i64,
}

/// One stored answer, as the stats read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerEntry {
    pub queue_id: String,
    pub agent_id: String,
    pub scores: Scores,
}

struct Scripts {
    enqueue: Script,
    claim_due: Script,
    decide: Script,
    finish: Script,
    answer: Script,
}

/// The survey service's Redis store; cheap to clone.
#[derive(Clone)]
pub struct SurveyStore {
    redis: RedisConnection,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for SurveyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurveyStore").finish_non_exhaustive()
    }
}

impl SurveyStore {
    /// A store over `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            scripts: std::sync::Arc::new(Scripts {
                enqueue: Script::new(include_str!("lua/enqueue.lua")),
                claim_due: Script::new(include_str!("lua/claim_due.lua")),
                decide: Script::new(include_str!("lua/decide.lua")),
                finish: Script::new(include_str!("lua/finish.lua")),
                answer: Script::new(include_str!("lua/answer.lua")),
            }),
        }
    }

    /// Schedules `job` unless its interaction is already known; true when new.
    pub async fn enqueue(&self, tenant: &str, job: &Job) -> Result<bool, SurveyError> {
        let p = prefix(tenant);
        let scheduled: i64 = self
            .scripts
            .enqueue
            .key(format!("{p}due"))
            .key(format!("{p}job:{}", job.interaction_id))
            .arg(job.due_ms)
            .arg(&job.interaction_id)
            .arg(&job.member_key)
            .arg(&job.agent_id)
            .arg(&job.queue_id)
            .arg(ms(SETTLED_JOB_KEEP))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| SurveyError::redis("schedule a survey", &e))?;
        Ok(scheduled == 1)
    }

    /// Claims up to `limit` of `tenant`'s surveys due at `now_ms`.
    pub async fn claim_due(
        &self,
        tenant: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, SurveyError> {
        self.scripts
            .claim_due
            .key(format!("{}due", prefix(tenant)))
            .arg(now_ms)
            .arg(ms(CLAIM_LEASE))
            .arg(limit)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| SurveyError::redis("claim due surveys", &e))
    }

    /// Opt-out, contact and window of a claimed survey, decided in one step
    /// (see `lua/decide.lua`); a survey to send starts the member's window at `now_ms`.
    pub async fn decide(
        &self,
        tenant: &str,
        interaction_id: &str,
        now_ms: i64,
        window_ms: i64,
        link_valid_ms: i64,
    ) -> Result<Decision, SurveyError> {
        let p = prefix(tenant);
        let job_key = format!("{p}job:{interaction_id}");
        let member: Option<String> = self
            .redis
            .clone()
            .hget(&job_key, "member")
            .await
            .map_err(|e| SurveyError::redis("read a survey", &e))?;
        // A job that expired still has to leave the due set.
        let member = member.unwrap_or_default();
        let reply: Vec<String> = self
            .scripts
            .decide
            .key(&job_key)
            .key(format!("{p}due"))
            .key(format!("{p}member:{member}"))
            .key(format!("{p}optout:{member}"))
            .key(format!("{p}contact:{member}"))
            .key(format!("{p}sent:{interaction_id}"))
            .arg(now_ms)
            .arg(window_ms)
            .arg(interaction_id)
            .arg(window_ms.saturating_add(DAY_MS))
            .arg(link_valid_ms.saturating_add(DAY_MS))
            .arg(ms(SETTLED_JOB_KEEP))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| SurveyError::redis("decide a survey", &e))?;
        Ok(match reply.as_slice() {
            [send, address, language, agent] if send == "send" => Decision::Send {
                address: address.clone(),
                language: language.clone(),
                agent_id: agent.clone(),
            },
            [outcome, ..] => Decision::Skip(outcome.clone()),
            [] => Decision::Skip("gone".into()),
        })
    }

    /// How a settled survey ended (`sent`, `throttled`, ...), `None` while due.
    pub async fn outcome(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<Option<String>, SurveyError> {
        self.redis
            .clone()
            .hget(format!("{}job:{interaction_id}", prefix(tenant)), "outcome")
            .await
            .map_err(|e| SurveyError::redis("read a survey", &e))
    }

    /// Settles a survey whose email was handed to notifications.
    pub async fn finish(&self, tenant: &str, interaction_id: &str) -> Result<(), SurveyError> {
        let p = prefix(tenant);
        let _: i64 = self
            .scripts
            .finish
            .key(format!("{p}job:{interaction_id}"))
            .key(format!("{p}due"))
            .arg(interaction_id)
            .arg(ms(SETTLED_JOB_KEEP))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| SurveyError::redis("settle a survey", &e))?;
        Ok(())
    }

    /// Records where a member's surveys go, kept `keep_ms`.
    pub async fn set_contact(
        &self,
        tenant: &str,
        member_key: &str,
        address: &str,
        language: &str,
        keep_ms: i64,
    ) -> Result<(), SurveyError> {
        let key = format!("{}contact:{member_key}", prefix(tenant));
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("address", address), ("language", language)])
            .ignore()
            .pexpire(&key, keep_ms)
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await
            .map_err(|e| SurveyError::redis("record a survey contact", &e))
    }

    /// The member wants no more surveys from `tenant`.
    pub async fn opt_out(&self, tenant: &str, member_key: &str) -> Result<(), SurveyError> {
        self.redis
            .clone()
            .set::<_, _, ()>(format!("{}optout:{member_key}", prefix(tenant)), 1)
            .await
            .map_err(|e| SurveyError::redis("record an opt-out", &e))
    }

    /// Whether the survey of `interaction_id` was answered.
    pub async fn answered(&self, tenant: &str, interaction_id: &str) -> Result<bool, SurveyError> {
        self.redis
            .clone()
            .hexists(
                format!("{}sent:{interaction_id}", prefix(tenant)),
                "answered",
            )
            .await
            .map_err(|e| SurveyError::redis("read a survey", &e))
    }

    /// Records an answer once (see `lua/answer.lua`).
    pub async fn record_answer(
        &self,
        tenant: &str,
        interaction_id: &str,
        answer: &NewAnswer<'_>,
    ) -> Result<Recorded, SurveyError> {
        let p = prefix(tenant);
        let reply: Vec<String> = self
            .scripts
            .answer
            .key(format!("{p}sent:{interaction_id}"))
            .key(format!("{p}answer:{interaction_id}"))
            .key(format!("{p}answers"))
            .arg(answer.now_ms)
            .arg(interaction_id)
            .arg(answer.scores.recommend)
            .arg(answer.scores.hire_agent)
            .arg(answer.scores.ease)
            .arg(answer.comment)
            .arg(answer.keep_ms)
            .arg(answer.oldest_ms)
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|e| SurveyError::redis("record an answer", &e))?;
        Ok(match reply.as_slice() {
            [ok, queue, agent] if ok == "ok" => Recorded::New {
                queue_id: queue.clone(),
                agent_id: agent.clone(),
            },
            [already] if already == "already" => Recorded::Already,
            _ => Recorded::Unknown,
        })
    }

    /// Answers given from `from_ms` (inclusive) to `to_ms` (exclusive), newest
    /// first, at most [`MAX_STATS_ANSWERS`]; true when more matched.
    pub async fn answers(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(Vec<AnswerEntry>, bool), SurveyError> {
        let entries: Vec<String> = self
            .redis
            .clone()
            .zrevrangebyscore_limit(
                format!("{}answers", prefix(tenant)),
                format!("({to_ms}"),
                from_ms,
                0,
                MAX_STATS_ANSWERS as isize + 1,
            )
            .await
            .map_err(|e| SurveyError::redis("read answers", &e))?;
        let truncated = entries.len() > MAX_STATS_ANSWERS;
        let parsed = entries
            .iter()
            .take(MAX_STATS_ANSWERS)
            .filter_map(|entry| parse_entry(entry))
            .collect();
        Ok((parsed, truncated))
    }
}

/// `<interaction>|<queue>|<agent>|<recommend>|<hire>|<ease>` -> an entry;
/// `None` for anything else (never written by this service).
fn parse_entry(entry: &str) -> Option<AnswerEntry> {
    let fields: Vec<&str> = entry.split('|').collect();
    match fields.as_slice() {
        [_, queue, agent, recommend, hire, ease] => Some(AnswerEntry {
            queue_id: (*queue).to_owned(),
            agent_id: (*agent).to_owned(),
            scores: Scores::new(
                recommend.parse().ok()?,
                hire.parse().ok()?,
                ease.parse().ok()?,
            )
            .ok()?,
        }),
        _ => None,
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
        assert_eq!(key, member_key("acme", "member-42"));
        assert_ne!(key, member_key("other", "member-42"));
    }

    #[test]
    fn index_entries_parse_back_into_scores() {
        let entry = parse_entry("ix-1|general|ana|9|7|4").unwrap();
        assert_eq!(entry.queue_id, "general");
        assert_eq!(entry.scores, Scores::new(9, 7, 4).unwrap());
        assert!(parse_entry("ix-1|general|ana|11|7|4").is_none());
        assert!(parse_entry("garbage").is_none());
    }
}
