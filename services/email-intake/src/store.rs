//! [`ThreadStore`]: email-intake's own Redis keys, every one under the
//! tenant's `{tenant}` hash tag and expiring after the tenant's retention:
//!
//! - `email:{t}:msg:<digest of Message-ID>` -> interaction id: threads a reply
//!   (In-Reply-To / References) back onto its interaction.
//! - `email:{t}:thread:<interaction id>`: hash of message digest -> encoded
//!   `EmailMessage` (the bodies the agent reads; a redelivered message
//!   overwrites itself, so it is stored once).
//! - `email:{t}:meta:<interaction id>`: hash of the member's address, the
//!   subject and the thread's Message-IDs, for replies.
//! - `email:{t}:autoreply:<digest of sender>`: set for an hour after an
//!   automatic answer to that sender.
//!
//! The router's keys are never touched.

use std::time::Duration;

use careline_kit::RedisConnection;
use careline_proto::v1;
use prost::Message as _;
use redis::AsyncCommands;

use crate::error::EmailError;
use crate::inbox::digest;

/// Message-IDs kept for a thread's References header (the first and the latest).
pub const MAX_REFERENCES: usize = 20;
/// Messages of one thread returned by [`ThreadStore::thread`].
pub const MAX_THREAD_MESSAGES: usize = 500;

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
}

impl std::fmt::Debug for ThreadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadStore").finish_non_exhaustive()
    }
}

fn msg_key(tenant: &str, message_id: &str) -> String {
    format!(
        "email:{{{tenant}}}:msg:{}",
        digest(&[message_id.as_bytes()])
    )
}

fn thread_key(tenant: &str, interaction_id: &str) -> String {
    format!("email:{{{tenant}}}:thread:{interaction_id}")
}

fn meta_key(tenant: &str, interaction_id: &str) -> String {
    format!("email:{{{tenant}}}:meta:{interaction_id}")
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
        ThreadStore { redis }
    }

    /// The interaction the first known id of `message_ids` belongs to.
    pub async fn interaction_of(
        &self,
        tenant: &str,
        message_ids: &[String],
    ) -> Result<Option<String>, EmailError> {
        let mut redis = self.redis.clone();
        for id in message_ids {
            let found: Option<String> = redis.get(msg_key(tenant, id)).await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Stores `message` in the thread of `interaction_id`, maps its
    /// Message-ID to the interaction and updates the thread's meta, all
    /// expiring after `retention`. Storing the same message again changes nothing.
    pub async fn record(
        &self,
        tenant: &str,
        interaction_id: &str,
        message: &v1::EmailMessage,
        member_address: Option<&str>,
        retention: Duration,
    ) -> Result<(), EmailError> {
        let mut redis = self.redis.clone();
        let meta = meta_key(tenant, interaction_id);
        let thread = thread_key(tenant, interaction_id);
        let mut references = self
            .meta(tenant, interaction_id)
            .await?
            .map(|m| m.references)
            .unwrap_or_default();
        if !references.contains(&message.message_id) {
            references.push(message.message_id.clone());
            if references.len() > MAX_REFERENCES {
                // Keep the root and the latest (RFC 5322 3.6.4 allows trimming the middle).
                references.remove(1);
            }
        }
        let secs = retention.as_secs().max(1) as i64;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set_ex(
                msg_key(tenant, &message.message_id),
                interaction_id,
                secs as u64,
            )
            .hset(
                &thread,
                digest(&[message.message_id.as_bytes()]),
                message.encode_to_vec(),
            )
            .expire(&thread, secs)
            .hset(&meta, "references", references.join(" "))
            .hset_nx(&meta, "subject", &message.subject);
        if let Some(address) = member_address {
            pipe.hset(&meta, "member", address);
        }
        pipe.expire(&meta, secs);
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
