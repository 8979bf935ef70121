//! Interactions in the routing state: create, answer offers, transfer, park,
//! resolve, abandon, and reading one back.

use std::collections::HashMap;

use careline_domain::{Language, Priority, UrgentReason};
use careline_proto::v1;
use prost::Message;
use redis::FromRedisValue;
use sha2::{Digest, Sha256};

use super::{
    Created, IDEMPOTENCY_WINDOW_SECS, NewInteraction, Placed, QueuePlace, RoutingStore,
    TransferTarget, take,
};
use crate::convert::{
    channel_from_str, channel_to_proto, language_from_str, language_to_proto, priority_to_proto,
};
use crate::error::{Result, RoutingError};
use crate::keys;

impl RoutingStore {
    /// Creates and queues an interaction, offering it at once when an agent is
    /// free. A replayed idempotency key returns the first interaction.
    pub async fn create_interaction(&self, tenant: &str, new: &NewInteraction) -> Result<Created> {
        let id = careline_domain::ids::InteractionId::generate().to_string();
        let context = new.context.encode_to_vec();
        let fingerprint = fingerprint(new, &context);
        let band = new.priority.band().to_string();
        let window = IDEMPOTENCY_WINDOW_SECS.to_string();
        let outbox_max = self.outbox_max_events.to_string();
        let queued_since = new.queued_since_ms.map(|ms| ms.to_string());
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
                    new.urgent_reason
                        .map_or("", UrgentReason::as_str)
                        .as_bytes(),
                    new.max_waiting.to_string().as_bytes(),
                    queued_since.as_deref().unwrap_or("").as_bytes(),
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
        let mut read = self.get_interactions(tenant, &[id]).await?;
        read.pop().expect("one result per id")
    }

    /// The interactions `ids`, in order, read in one round trip (all share the
    /// tenant's slot): each the interaction with its notes, NotFound or
    /// Corrupt. A failed round trip fails the whole read.
    pub async fn get_interactions(
        &self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<Result<v1::Interaction>>> {
        let stored = self.read_stored(tenant, ids).await?;
        Ok(ids
            .iter()
            .zip(stored)
            .map(|(id, stored)| decode_stored(id, &stored))
            .collect())
    }

    /// The interactions `ids` as [`get_interactions`](Self::get_interactions)
    /// reads them, each with where it stands in its queue while queued: two
    /// round trips for all of them, whatever their number.
    pub async fn get_placed(&self, tenant: &str, ids: &[&str]) -> Result<Vec<Result<Placed>>> {
        let stored = self.read_stored(tenant, ids).await?;
        // Per queued interaction: its rank in its own queue, then per language
        // the number of contacts of its target and channel scored before it.
        let mut pipe = redis::pipe();
        let mut queued = Vec::with_capacity(ids.len());
        for (id, (fields, _, _)) in ids.iter().zip(&stored) {
            let state = text(fields, "state");
            let channel = channel_from_str(&text(fields, "ch"));
            let is_queued = state == "queued" && channel.is_some();
            if let (true, Some(channel)) = (is_queued, channel) {
                let target = text(fields, "target");
                let score = text(fields, "score");
                pipe.zrank(
                    keys::queue(tenant, &target, channel, &text(fields, "lang")),
                    id,
                );
                for lang in Language::ALL {
                    pipe.zcount(
                        keys::queue(tenant, &target, channel, lang.as_str()),
                        "-inf",
                        format!("({score}"),
                    );
                }
            }
            queued.push(is_queued);
        }
        let places: Vec<Option<u64>> = if queued.iter().any(|q| *q) {
            pipe.query_async(&mut self.conn.clone()).await?
        } else {
            Vec::new()
        };
        let mut places = places.into_iter();
        Ok(ids
            .iter()
            .zip(stored)
            .zip(queued)
            .map(|((id, stored), is_queued)| {
                let interaction = decode_stored(id, &stored)?;
                let place = if is_queued {
                    let rank = places.next().flatten();
                    let ahead: u64 = places.by_ref().take(Language::ALL.len()).flatten().sum();
                    rank.map(|rank| QueuePlace {
                        position: u32::try_from(rank + 1).unwrap_or(u32::MAX),
                        ahead: u32::try_from(ahead).unwrap_or(u32::MAX),
                    })
                } else {
                    None
                };
                Ok(Placed { interaction, place })
            })
            .collect())
    }

    /// The stored fields, notes and declined agents of `ids`, in one round trip.
    async fn read_stored(&self, tenant: &str, ids: &[&str]) -> Result<Vec<StoredInteraction>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            let key = keys::interaction(tenant, id);
            pipe.hgetall(&key)
                .lrange(format!("{key}:notes"), 0, -1)
                .smembers(format!("{key}:declined"));
        }
        Ok(pipe.query_async(&mut self.conn.clone()).await?)
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
        let note_text = note.map(|n| n.text.as_str()).unwrap_or_default();
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
                note_text.as_bytes(),
            ],
        )
        .await?;
        Ok(())
    }

    /// The last contacts of `member_ref` resolved in `tenant`, newest first,
    /// as the tenant's `member_history_*` settings keep them (entries past
    /// their age are skipped).
    pub async fn member_history(
        &self,
        tenant: &str,
        member_ref: &str,
    ) -> Result<Vec<v1::PastContact>> {
        if member_ref.is_empty() {
            return Ok(Vec::new());
        }
        let key = keys::tenant_key(tenant, &format!("member:{member_ref}"));
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ok(entries
            .iter()
            .filter_map(|entry| serde_json::from_str::<HistoryEntry>(entry).ok())
            .filter(|entry| entry.until_ms > now_ms)
            .map(|entry| v1::PastContact {
                interaction_id: entry.id,
                resolved_at_ms: entry.at,
                channel: channel_from_str(&entry.ch).map_or(0, |c| channel_to_proto(c) as i32),
                queue_id: entry.queue,
                disposition: entry.disposition,
                outcome_tags: entry
                    .tags
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                agent_id: entry.agent,
                resolution_note: entry.note,
            })
            .collect())
    }

    /// Ends an interaction whose member left before being served.
    pub async fn abandon(&self, tenant: &str, id: &str) -> Result<()> {
        self.run(&self.scripts.abandon, tenant, &[id.as_bytes()])
            .await?;
        Ok(())
    }
}

/// An interaction's hash, notes and declining agents, as read back.
type StoredInteraction = (HashMap<String, Vec<u8>>, Vec<Vec<u8>>, Vec<String>);

/// One interaction as stored, or NotFound when it has no fields.
fn decode_stored(
    id: &str,
    (fields, notes, declined): &StoredInteraction,
) -> Result<v1::Interaction> {
    if fields.is_empty() {
        return Err(RoutingError::NotFound("interaction not found".into()));
    }
    interaction_from_fields(id, fields, notes, declined.clone())
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
    // Only when set, so the keys of creates without it keep their fingerprint.
    if let Some(ms) = new.queued_since_ms {
        hash.update(8u64.to_le_bytes());
        hash.update(ms.to_le_bytes());
    }
    hex::encode(hash.finalize())
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
        urgent_reason: text(fields, "urgent_reason"),
    })
}

/// One entry of a member's history as `resolve.lua` writes it.
#[derive(serde::Deserialize)]
struct HistoryEntry {
    id: String,
    at: i64,
    until_ms: i64,
    ch: String,
    queue: String,
    disposition: String,
    tags: String,
    agent: String,
    note: String,
}
