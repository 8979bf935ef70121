//! [`ChatStore`]: chat-gateway's own Redis keys, every one under the tenant's
//! `{tenant}` hash tag (one Redis Cluster slot per tenant, like every Careline key):
//!
//! - `chat:{t}:meta:<interaction id>`: hash of the chat: widget key, SHA-256 of
//!   the resume token, language, topic, the member's first name, state
//!   (`open` / `closed`), the agent holding it and the agent's first name.
//! - `chat:{t}:log:<interaction id>`: the transcript, a Redis stream; entry ids
//!   order it.
//! - `chat:{t}:cids:<interaction id>`: client message id -> entry id, so a
//!   message resent after a reconnect is stored once (`append_entry.lua`).
//! - `chat:{t}:grace`: sorted set of chats by the time their member's resume
//!   grace runs out; any replica claims a due one (ZREM) and settles it.
//!
//! All three per-chat keys expire the tenant's `chat.retention_days` after the
//! last entry. The router's keys are never touched. Texts are stored here and
//! nowhere else: never logged.

use std::time::Duration;

use careline_kit::RedisConnection;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::error::ChatError;
use crate::limits::MAX_TRANSCRIPT_ENTRIES;
use crate::protocol::Party;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Someone said something.
    Message,
    /// An agent joined.
    Assigned,
    /// The chat ended.
    Closed,
}

impl EntryKind {
    fn as_str(self) -> &'static str {
        match self {
            EntryKind::Message => "message",
            EntryKind::Assigned => "assigned",
            EntryKind::Closed => "closed",
        }
    }
}

/// One transcript entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stream id: `<ms>-<seq>`, increasing.
    pub id: String,
    pub kind: EntryKind,
    pub from: Party,
    pub agent_id: String,
    pub agent_first_name: String,
    pub text: String,
    pub client_id: String,
    pub reason: String,
}

impl Entry {
    /// When it was stored (the stream id's milliseconds).
    pub fn at_ms(&self) -> i64 {
        self.id
            .split_once('-')
            .and_then(|(ms, _)| ms.parse().ok())
            .unwrap_or_default()
    }
}

/// An entry to append (its id is assigned by Redis).
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub kind: EntryKind,
    pub from: Party,
    /// Deduplicates: `""` for entries that are never repeated.
    pub client_id: String,
    pub agent_id: String,
    pub agent_first_name: String,
    pub text: String,
    pub reason: String,
}

/// What [`ChatStore::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now.
    New(Entry),
    /// That client id was stored before, as the entry with this id.
    Duplicate(String),
}

/// A chat as the gateway knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatMeta {
    pub widget_key: String,
    pub token_sha256: String,
    pub language: String,
    pub topic: String,
    pub first_name: String,
    pub closed: bool,
    /// Why it closed (`closed.reason`), once closed.
    pub closed_reason: String,
    pub agent_id: String,
    pub agent_first_name: String,
}

/// chat-gateway's Redis store; cheap to clone.
#[derive(Clone)]
pub struct ChatStore {
    redis: RedisConnection,
    append: redis::Script,
}

impl std::fmt::Debug for ChatStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStore").finish_non_exhaustive()
    }
}

fn meta_key(tenant: &str, ix: &str) -> String {
    format!("chat:{{{tenant}}}:meta:{ix}")
}

fn log_key(tenant: &str, ix: &str) -> String {
    format!("chat:{{{tenant}}}:log:{ix}")
}

fn cids_key(tenant: &str, ix: &str) -> String {
    format!("chat:{{{tenant}}}:cids:{ix}")
}

fn grace_key(tenant: &str) -> String {
    format!("chat:{{{tenant}}}:grace")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl ChatStore {
    /// A store over `redis`.
    pub fn new(redis: RedisConnection) -> ChatStore {
        ChatStore {
            redis,
            append: redis::Script::new(include_str!("lua/append_entry.lua")),
        }
    }

    /// Records a new chat (open, no agent yet).
    pub async fn create(
        &self,
        tenant: &str,
        ix: &str,
        meta: &ChatMeta,
        retention: Duration,
    ) -> Result<(), ChatError> {
        let key = meta_key(tenant, ix);
        let mut redis = self.redis.clone();
        redis::pipe()
            .hset_multiple(
                &key,
                &[
                    ("widget_key", meta.widget_key.as_str()),
                    ("token_sha256", meta.token_sha256.as_str()),
                    ("language", meta.language.as_str()),
                    ("topic", meta.topic.as_str()),
                    ("first_name", meta.first_name.as_str()),
                    ("state", "open"),
                ],
            )
            .ignore()
            .pexpire(&key, millis(retention) as i64)
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        Ok(())
    }

    /// The chat `ix` of `tenant`, if it exists (and is still retained).
    pub async fn meta(&self, tenant: &str, ix: &str) -> Result<Option<ChatMeta>, ChatError> {
        let mut redis = self.redis.clone();
        let fields: std::collections::HashMap<String, String> =
            redis.hgetall(meta_key(tenant, ix)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        Ok(Some(ChatMeta {
            widget_key: get("widget_key"),
            token_sha256: get("token_sha256"),
            language: get("language"),
            topic: get("topic"),
            first_name: get("first_name"),
            closed: get("state") == "closed",
            closed_reason: get("closed_reason"),
            agent_id: get("agent_id"),
            agent_first_name: get("agent_first_name"),
        }))
    }

    /// Appends an entry once per client id (`""`: always).
    pub async fn append(
        &self,
        tenant: &str,
        ix: &str,
        entry: NewEntry,
        retention: Duration,
    ) -> Result<Appended, ChatError> {
        let from_str = match entry.from {
            Party::Member => "member",
            Party::Agent => "agent",
            Party::System => "system",
        };
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(log_key(tenant, ix))
            .key(cids_key(tenant, ix))
            .key(meta_key(tenant, ix))
            .arg(&entry.client_id)
            .arg(millis(retention))
            .arg(MAX_TRANSCRIPT_ENTRIES)
            .arg(entry.kind.as_str())
            .arg("from")
            .arg(from_str)
            .arg("client_id")
            .arg(&entry.client_id);
        for (name, value) in [
            ("agent_id", &entry.agent_id),
            ("agent_first_name", &entry.agent_first_name),
            ("text", &entry.text),
            ("reason", &entry.reason),
        ] {
            if !value.is_empty() {
                invocation.arg(name).arg(value);
            }
        }
        let mut redis = self.redis.clone();
        let (status, id): (i64, String) = invocation.invoke_async(&mut redis).await?;
        match (status, id.as_str()) {
            (1, _) => Ok(Appended::New(Entry {
                id,
                kind: entry.kind,
                from: entry.from,
                agent_id: entry.agent_id,
                agent_first_name: entry.agent_first_name,
                text: entry.text,
                client_id: entry.client_id,
                reason: entry.reason,
            })),
            (0, _) => Ok(Appended::Duplicate(id)),
            (_, "closed") => Err(ChatError::Closed),
            (_, "full") => Err(ChatError::TranscriptFull),
            _ => Err(ChatError::NotFound(ix.to_owned())),
        }
    }

    /// The entries after `after` (all when `None`), oldest first, at most
    /// [`MAX_TRANSCRIPT_ENTRIES`].
    pub async fn entries(
        &self,
        tenant: &str,
        ix: &str,
        after: Option<&str>,
    ) -> Result<Vec<Entry>, ChatError> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut redis = self.redis.clone();
        let rows: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(log_key(tenant, ix))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(MAX_TRANSCRIPT_ENTRIES)
            .query_async(&mut redis)
            .await?;
        Ok(rows.into_iter().filter_map(entry_of).collect())
    }

    /// The entry with id `id`, if it is still stored.
    pub async fn entry(
        &self,
        tenant: &str,
        ix: &str,
        id: &str,
    ) -> Result<Option<Entry>, ChatError> {
        let mut redis = self.redis.clone();
        let rows: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(log_key(tenant, ix))
            .arg(id)
            .arg(id)
            .query_async(&mut redis)
            .await?;
        Ok(rows.into_iter().find_map(entry_of))
    }

    /// Sets (or moves) the time the member's resume grace of chat `ix` runs out.
    pub async fn set_grace(&self, tenant: &str, ix: &str, due_ms: i64) -> Result<(), ChatError> {
        let mut redis = self.redis.clone();
        let _: () = redis.zadd(grace_key(tenant), ix, due_ms).await?;
        Ok(())
    }

    /// Moves the grace deadline of chat `ix` only if it still has one (it was not settled).
    pub async fn extend_grace(&self, tenant: &str, ix: &str, due_ms: i64) -> Result<(), ChatError> {
        let mut redis = self.redis.clone();
        let _: i64 = redis::cmd("ZADD")
            .arg(grace_key(tenant))
            .arg("XX")
            .arg(due_ms)
            .arg(ix)
            .query_async(&mut redis)
            .await?;
        Ok(())
    }

    /// Chats of `tenant` whose grace ran out by `now_ms`, at most `limit`.
    pub async fn due(
        &self,
        tenant: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, ChatError> {
        let mut redis = self.redis.clone();
        Ok(redis
            .zrangebyscore_limit(grace_key(tenant), "-inf", now_ms, 0, limit as isize)
            .await?)
    }

    /// Takes chat `ix` off the grace set; true for the one caller that did.
    pub async fn claim(&self, tenant: &str, ix: &str) -> Result<bool, ChatError> {
        let mut redis = self.redis.clone();
        let removed: i64 = redis.zrem(grace_key(tenant), ix).await?;
        Ok(removed == 1)
    }
}

fn entry_of((id, fields): (String, Vec<(String, String)>)) -> Option<Entry> {
    let mut entry = Entry {
        id,
        kind: EntryKind::Message,
        from: Party::System,
        agent_id: String::new(),
        agent_first_name: String::new(),
        text: String::new(),
        client_id: String::new(),
        reason: String::new(),
    };
    for (name, value) in fields {
        match name.as_str() {
            "kind" => {
                entry.kind = match value.as_str() {
                    "message" => EntryKind::Message,
                    "assigned" => EntryKind::Assigned,
                    "closed" => EntryKind::Closed,
                    _ => return None,
                }
            }
            "from" => {
                entry.from = match value.as_str() {
                    "member" => Party::Member,
                    "agent" => Party::Agent,
                    _ => Party::System,
                }
            }
            "agent_id" => entry.agent_id = value,
            "agent_first_name" => entry.agent_first_name = value,
            "text" => entry.text = value,
            "client_id" => entry.client_id = value,
            "reason" => entry.reason = value,
            _ => {}
        }
    }
    Some(entry)
}
