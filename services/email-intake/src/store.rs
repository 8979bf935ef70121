//! [`ThreadStore`]: email-intake's own Redis keys, every one under the
//! tenant's `{tenant}` hash tag. A thread's keys (the first three below) are
//! kept while its interaction is open and expire the tenant's retention after
//! it ended ([`ThreadStore::end`]):
//!
//! - `email:{t}:msg:<digest of Message-ID>` -> interaction id: threads a reply
//!   (In-Reply-To / References) back onto its interaction.
//! - `email:{t}:thread:<interaction id>`: hash of message digest -> encoded
//!   `EmailMessage` (the bodies the agent reads; a redelivered message
//!   overwrites itself, so it is stored once).
//! - `email:{t}:meta:<interaction id>`: hash of the member's address, the
//!   subject and the thread's Message-IDs, for replies.
//! - `email:{t}:ended:<interaction id>`: when the ended interaction's thread
//!   expires (unix ms), so a message recorded after the end expires with it.
//! - `email:{t}:autoreply:<digest of sender>`: set for an hour after an
//!   automatic answer to that sender.
//!
//! The router's keys are never touched.

use std::sync::Arc;
use std::time::Duration;

use careline_kit::RedisConnection;
use careline_proto::v1;
use prost::Message as _;
use redis::{AsyncCommands, Script};

use crate::error::EmailError;
use crate::inbox::digest;

/// Message-IDs kept for a thread's References header (the first and the latest).
pub const MAX_REFERENCES: usize = 20;
/// Messages of one thread returned by [`ThreadStore::thread`].
pub const MAX_THREAD_MESSAGES: usize = 500;
/// How long an ended interaction's mark outlives its thread: a message of it
/// recorded that late (the intake consumer gives up on a message after about
/// a day) still expires at the thread's time instead of being kept forever.
pub const ENDED_MARK_KEEP: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// What a reply needs to know about a thread.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadMeta {
    /// The member's address (never logged).
    pub member_address: String,
    pub subject: String,
    /// Message-IDs of the thread, oldest first, at most [`MAX_REFERENCES`].
    pub references: Vec<String>,
}

/// email-intake's Redis store; cheap to clone.
#[derive(Clone)]
pub struct ThreadStore {
    redis: RedisConnection,
    record: Arc<Script>,
}

impl std::fmt::Debug for ThreadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadStore").finish_non_exhaustive()
    }
}

/// Digest of a Message-ID: its thread field and the end of its msg key.
fn message_digest(message_id: &str) -> String {
    digest(&[message_id.as_bytes()])
}

fn msg_key(tenant: &str, message_digest: &str) -> String {
    format!("email:{{{tenant}}}:msg:{message_digest}")
}

fn thread_key(tenant: &str, interaction_id: &str) -> String {
    format!("email:{{{tenant}}}:thread:{interaction_id}")
}

fn meta_key(tenant: &str, interaction_id: &str) -> String {
    format!("email:{{{tenant}}}:meta:{interaction_id}")
}

fn ended_key(tenant: &str, interaction_id: &str) -> String {
    format!("email:{{{tenant}}}:ended:{interaction_id}")
}

fn autoreply_key(tenant: &str, sender: &str) -> String {
    format!(
        "email:{{{tenant}}}:autoreply:{}",
        digest(&[sender.to_lowercase().as_bytes()])
    )
}

impl ThreadStore {
    /// A store over `redis`.
    pub fn new(redis: RedisConnection) -> ThreadStore {
        ThreadStore {
            redis,
            record: Arc::new(Script::new(include_str!("lua/record_message.lua"))),
        }
    }

    /// The interaction the first known id of `message_ids` belongs to.
    pub async fn interaction_of(
        &self,
        tenant: &str,
        message_ids: &[String],
    ) -> Result<Option<String>, EmailError> {
        let mut redis = self.redis.clone();
        for id in message_ids {
            let found: Option<String> = redis.get(msg_key(tenant, &message_digest(id))).await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Stores `message` in the thread of `interaction_id`, maps its
    /// Message-ID to the interaction and updates the thread's meta, in one
    /// step (replicas record messages of one thread at once). Storing the
    /// same message again changes nothing. Kept while the interaction is
    /// open; recorded after it ended, it expires with the thread.
    pub async fn record(
        &self,
        tenant: &str,
        interaction_id: &str,
        message: &v1::EmailMessage,
        member_address: Option<&str>,
    ) -> Result<(), EmailError> {
        let field = message_digest(&message.message_id);
        self.record
            .key(msg_key(tenant, &field))
            .key(thread_key(tenant, interaction_id))
            .key(meta_key(tenant, interaction_id))
            .key(ended_key(tenant, interaction_id))
            .arg(interaction_id)
            .arg(&field)
            .arg(message.encode_to_vec())
            .arg(&message.message_id)
            .arg(&message.subject)
            .arg(member_address.unwrap_or_default())
            .arg(MAX_REFERENCES)
            .invoke_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// The interaction ended: its thread (bodies, meta, Message-ID mappings)
    /// expires at `expire_at_ms` (unix ms; in the past: removed now).
    /// Idempotent, and safe beside a concurrent [`ThreadStore::record`]: the
    /// ended mark is written first, so a message recorded from then on
    /// expires at the same time, and one recorded before is in the thread
    /// read next.
    pub async fn end(
        &self,
        tenant: &str,
        interaction_id: &str,
        expire_at_ms: i64,
    ) -> Result<(), EmailError> {
        let mut redis = self.redis.clone();
        let keep_ms = i64::try_from(ENDED_MARK_KEEP.as_millis()).unwrap_or(i64::MAX);
        redis::cmd("SET")
            .arg(ended_key(tenant, interaction_id))
            .arg(expire_at_ms)
            .arg("PXAT")
            .arg(expire_at_ms.max(0).saturating_add(keep_ms))
            .query_async::<()>(&mut redis)
            .await?;
        let thread = thread_key(tenant, interaction_id);
        let fields: Vec<String> = redis.hkeys(&thread).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in [thread, meta_key(tenant, interaction_id)]
            .into_iter()
            .chain(fields.iter().map(|field| msg_key(tenant, field)))
        {
            pipe.cmd("PEXPIREAT").arg(key).arg(expire_at_ms).ignore();
        }
        pipe.query_async::<()>(&mut redis).await?;
        Ok(())
    }

    /// The thread's meta, `None` when there is no (retained) thread.
    pub async fn meta(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<Option<ThreadMeta>, EmailError> {
        let mut redis = self.redis.clone();
        let fields: std::collections::HashMap<String, String> =
            redis.hgetall(meta_key(tenant, interaction_id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(ThreadMeta {
            member_address: fields.get("member").cloned().unwrap_or_default(),
            subject: fields.get("subject").cloned().unwrap_or_default(),
            references: fields
                .get("references")
                .map(|r| r.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        }))
    }

    /// The thread's messages, oldest first.
    pub async fn thread(
        &self,
        tenant: &str,
        interaction_id: &str,
    ) -> Result<Vec<v1::EmailMessage>, EmailError> {
        let mut redis = self.redis.clone();
        let stored: Vec<Vec<u8>> = redis.hvals(thread_key(tenant, interaction_id)).await?;
        let mut messages: Vec<v1::EmailMessage> = stored
            .iter()
            .filter_map(|bytes| v1::EmailMessage::decode(bytes.as_slice()).ok())
            .collect();
        messages.sort_by(|a, b| {
            (a.received_at_ms, &a.message_id).cmp(&(b.received_at_ms, &b.message_id))
        });
        messages.truncate(MAX_THREAD_MESSAGES);
        Ok(messages)
    }

    /// Claims the one automatic answer to `sender` allowed per `window`:
    /// true for the first caller in the window, false after (any replica).
    pub async fn claim_auto_reply(
        &self,
        tenant: &str,
        sender: &str,
        window: Duration,
    ) -> Result<bool, EmailError> {
        let mut redis = self.redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(autoreply_key(tenant, sender))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(window.as_secs().max(1))
            .query_async(&mut redis)
            .await?;
        Ok(set.is_some())
    }
}
