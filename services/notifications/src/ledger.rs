//! What has happened to each notification id, in Redis, so one id sends at
//! most one email however often it is delivered and whichever replica gets
//! it; and the tenant's dead letters.
//!
//! Every key sits under the tenant's hash tag (`cl:{tenant}:ntf:`), so each
//! script touches one Redis Cluster slot. A notification's state key holds
//! - `claimed:<token>` while one replica sends it; the claim expires after
//!   [`CLAIM_TTL`], so a replica that dies mid-send does not block it forever;
//! - `sent` once the SMTP server accepted it (kept [`SENT_RETENTION`]);
//! - `dead` while it is a dead letter.
//!
//! The one gap: a replica that dies after the server's 250 and before it
//! records `sent` leaves a claim that expires, and the redelivered request is
//! sent again (same Message-ID, so mail clients that thread by it show one
//! conversation). We chose a rare duplicate over a lost email: the urgent
//! guidance (call 911 / 988) must not be lost to a crash.

use std::time::Duration;

use careline_kit::RedisConnection;
use careline_proto::v1::{DeadLetter, NotificationRequested};
use prost::Message as _;
use redis::{AsyncCommands as _, Script};

use crate::error::NotificationError;

/// How long a claim protects a send in progress: well past
/// [`crate::mailer::SEND_TIMEOUT`], so it only lapses when its replica died.
pub const CLAIM_TTL: Duration = Duration::from_secs(60);
/// How long a sent id is remembered: past the event stream's age limit, so
/// no redelivery of the request can outlive it.
pub const SENT_RETENTION: Duration = Duration::from_secs(8 * 24 * 60 * 60);
/// How long a dead letter is kept for replay.
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Most expired dead letters removed each time one is added.
pub const PRUNE_BATCH: usize = 100;

/// Who may send a notification now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This attempt holds it: send.
    Claimed,
    /// Already accepted by the SMTP server: drop the copy.
    AlreadySent,
    /// A dead letter: drop the copy (ReplayDeadLetter sends it again).
    DeadLettered,
    /// Another attempt is sending it; its claim lapses within this long.
    Held(Duration),
}

/// The notification ledger of every tenant.
#[derive(Clone)]
pub struct Ledger {
    conn: RedisConnection,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

struct Scripts {
    claim: Script,
    release: Script,
    dead_letter: Script,
    revive: Script,
    forget: Script,
}

fn prefix(tenant: &str) -> String {
    format!("cl:{{{tenant}}}:ntf:")
}

fn state_key(tenant: &str, id: &str) -> String {
    format!("{}n:{id}", prefix(tenant))
}

fn dead_index_key(tenant: &str) -> String {
    format!("{}dead", prefix(tenant))
}

fn dead_requests_key(tenant: &str) -> String {
    format!("{}dead:req", prefix(tenant))
}

fn dead_details_key(tenant: &str) -> String {
    format!("{}dead:info", prefix(tenant))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Ledger {
    /// A ledger over `conn`.
    pub fn new(conn: RedisConnection) -> Ledger {
        Ledger {
            conn,
            scripts: std::sync::Arc::new(Scripts {
                claim: Script::new(include_str!("lua/claim.lua")),
                release: Script::new(include_str!("lua/release.lua")),
                dead_letter: Script::new(include_str!("lua/dead_letter.lua")),
                revive: Script::new(include_str!("lua/revive.lua")),
                forget: Script::new(include_str!("lua/forget.lua")),
            }),
        }
    }

    /// Tries to claim `id` for the attempt `token`.
    pub async fn claim(
        &self,
        tenant: &str,
        id: &str,
        token: &str,
    ) -> Result<Claim, NotificationError> {
        let reply: Vec<redis::Value> = self
            .scripts
            .claim
            .key(state_key(tenant, id))
            .arg(token)
            .arg(millis(CLAIM_TTL))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| NotificationError::redis("claim a notification", &e))?;
        let word: String = reply
            .first()
            .cloned()
            .map(redis::from_redis_value)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default();
        Ok(match word.as_str() {
            "claimed" => Claim::Claimed,
            "sent" => Claim::AlreadySent,
            "dead" => Claim::DeadLettered,
            _ => {
                let remaining_ms: i64 = reply
                    .get(1)
                    .and_then(|v| redis::from_redis_value(v.clone()).ok())
                    .unwrap_or(0);
                Claim::Held(Duration::from_millis(
                    u64::try_from(remaining_ms).unwrap_or(0),
                ))
            }
        })
    }

    /// Records that the SMTP server accepted `id`.
    pub async fn mark_sent(&self, tenant: &str, id: &str) -> Result<(), NotificationError> {
        self.conn
            .clone()
            .set_ex::<_, _, ()>(state_key(tenant, id), "sent", SENT_RETENTION.as_secs())
            .await
            .map_err(|e| NotificationError::redis("record a sent notification", &e))
    }

    /// Gives up the claim of attempt `token` (after a temporary failure).
    pub async fn release(
        &self,
        tenant: &str,
        id: &str,
        token: &str,
    ) -> Result<(), NotificationError> {
        self.scripts
            .release
            .key(state_key(tenant, id))
            .arg(token)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(|e| NotificationError::redis("release a notification claim", &e))
    }

    /// Parks `request` as a dead letter described by `detail`.
    pub async fn dead_letter(
        &self,
        request: &NotificationRequested,
        detail: &DeadLetter,
    ) -> Result<(), NotificationError> {
        let tenant = &request.tenant_id;
        let id = &request.notification_id;
        self.scripts
            .dead_letter
            .key(state_key(tenant, id))
            .key(dead_index_key(tenant))
            .key(dead_requests_key(tenant))
            .key(dead_details_key(tenant))
            .arg(id)
            .arg(detail.dead_lettered_at_ms)
            .arg(request.encode_to_vec())
            .arg(detail.encode_to_vec())
            .arg(millis(DEAD_LETTER_RETENTION))
            .arg(PRUNE_BATCH)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(|e| NotificationError::redis("store a dead letter", &e))
    }

    /// The tenant's oldest `limit` dead letters, oldest first.
    pub async fn dead_letters(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, NotificationError> {
        let failed = |e: redis::RedisError| NotificationError::redis("list dead letters", &e);
        let mut conn = self.conn.clone();
        let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        let ids: Vec<String> = conn
            .zrange(dead_index_key(tenant), 0, stop)
            .await
            .map_err(failed)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let details: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(dead_details_key(tenant))
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        Ok(details
            .into_iter()
            .flatten()
            .filter_map(|bytes| DeadLetter::decode(bytes.as_slice()).ok())
            .collect())
    }

    /// Clears dead letter `id` for sending again; returns its version (for
    /// [`Ledger::forget`]) and the request, or `None` if it is not one.
    pub async fn revive(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(String, NotificationRequested)>, NotificationError> {
        let reply: Option<(String, Vec<u8>)> = self
            .scripts
            .revive
            .key(state_key(tenant, id))
            .key(dead_index_key(tenant))
            .key(dead_requests_key(tenant))
            .arg(id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| NotificationError::redis("read a dead letter", &e))?;
        let Some((version, bytes)) = reply else {
            return Ok(None);
        };
        let request = NotificationRequested::decode(bytes.as_slice()).map_err(|error| {
            NotificationError::Unavailable(format!(
                "the stored dead letter {id} is unreadable: {error}"
            ))
        })?;
        Ok(Some((version, request)))
    }

    /// Removes dead letter `id` if it is still at `version`.
    pub async fn forget(
        &self,
        tenant: &str,
        id: &str,
        version: &str,
    ) -> Result<(), NotificationError> {
        self.scripts
            .forget
            .key(dead_index_key(tenant))
            .key(dead_requests_key(tenant))
            .key(dead_details_key(tenant))
            .arg(id)
            .arg(version)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(|e| NotificationError::redis("remove a replayed dead letter", &e))
    }
}
