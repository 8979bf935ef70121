//! The outbox relay: routing scripts append their events to a per-tenant
//! Redis stream in the same atomic step as the state change; the relay
//! publishes them on NATS JetStream and only then deletes them.
//!
//! Every replica runs a relay in one consumer group, so an event is published
//! even when the replica that made the change dies; entries a dead replica had
//! claimed are taken over after [`CLAIM_IDLE_MS`]. JetStream de-duplicates by
//! event id (`<tenant>:<sequence>`), so a re-published entry is stored once.

use std::collections::HashMap;

use careline_bus::{Publisher, Subject};
use careline_proto::v1;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};

use crate::convert::{channel_from_str, channel_to_proto, priority_to_proto};
use crate::error::{Result, RoutingError};
use crate::keys;

/// Consumer group of every relay.
const GROUP: &str = "relay";
/// Entries one relay pass publishes at most.
const BATCH: usize = 256;
/// An entry claimed by a replica that has not acknowledged it for this long
/// is taken over by another.
pub const CLAIM_IDLE_MS: u64 = 5_000;

/// Publishes routing events from the Redis outbox to NATS. Give it a Redis
/// connection of its own: it blocks on XREADGROUP.
pub struct OutboxRelay {
    conn: ConnectionManager,
    publisher: Publisher,
    consumer: String,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay named `consumer` (unique per replica).
    pub fn new(conn: ConnectionManager, publisher: Publisher, consumer: impl Into<String>) -> Self {
        Self {
            conn,
            publisher,
            consumer: consumer.into(),
        }
    }

    /// Creates the tenant's outbox stream and consumer group if absent.
    pub async fn ensure_group(&self, tenant: &str) -> Result<()> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(keys::tenant_key(tenant, "outbox"))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Takes over entries another relay claimed but never acknowledged (its
    /// replica died), and publishes them.
    pub async fn reclaim(&self, tenant: &str) -> Result<usize> {
        let key = keys::tenant_key(tenant, "outbox");
        let options = StreamAutoClaimOptions::default().count(BATCH);
        let reply: redis::RedisResult<StreamAutoClaimReply> = self
            .conn
            .clone()
            .xautoclaim_options(&key, GROUP, &self.consumer, CLAIM_IDLE_MS, "0-0", options)
            .await;
        let entries = match reply {
            Ok(reply) => reply.claimed,
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group(tenant).await?;
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        self.publish(tenant, &entries).await
    }

    /// Waits up to `block_ms` for new outbox entries of any of `tenants` and
    /// publishes them; returns how many were published.
    pub async fn relay_new(&self, tenants: &[String], block_ms: usize) -> Result<usize> {
        if tenants.is_empty() {
            return Ok(0);
        }
        let streams: Vec<String> = tenants
            .iter()
            .map(|t| keys::tenant_key(t, "outbox"))
            .collect();
        let cursors = vec![">"; streams.len()];
        let options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .count(BATCH)
            .block(block_ms);
        let reply: Option<StreamReadReply> = match self
            .conn
            .clone()
            .xread_options(&streams, &cursors, &options)
            .await
        {
            Ok(reply) => reply,
            Err(e) if e.code() == Some("NOGROUP") => {
                for tenant in tenants {
                    self.ensure_group(tenant).await?;
                }
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let mut published = 0;
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(tenant) = tenants
                .iter()
                .find(|t| keys::tenant_key(t, "outbox") == stream.key)
            else {
                continue;
            };
            published += self.publish(tenant, &stream.ids).await?;
        }
        Ok(published)
    }

    async fn publish(&self, tenant: &str, entries: &[StreamId]) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut publishes = Vec::with_capacity(entries.len());
        for entry in entries {
            let fields: HashMap<String, String> = entry
                .map
                .iter()
                .map(|(k, v)| Ok((k.clone(), redis::from_redis_value::<String>(v.clone())?)))
                .collect::<Result<_, redis::ParsingError>>()?;
            let (subject, event) = event_from_entry(tenant, &fields)?;
            let traceparent = fields.get("tp").cloned().unwrap_or_default();
            metrics::counter!("careline_routing_events_total", "tenant" => tenant.to_string(), "kind" => fields.get("kind").cloned().unwrap_or_default()).increment(1);
            publishes.push(async move {
                self.publisher
                    .publish_with_traceparent(&subject, &event, &traceparent)
                    .await
            });
        }
        for result in futures::future::join_all(publishes).await {
            result.map_err(|e| RoutingError::Bus(e.to_string()))?;
        }
        let key = keys::tenant_key(tenant, "outbox");
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        redis::pipe()
            .xack(&key, GROUP, &ids)
            .ignore()
            .xdel(&key, &ids)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(entries.len())
    }
}

/// Builds the bus event of one outbox entry.
fn event_from_entry(tenant: &str, f: &HashMap<String, String>) -> Result<(Subject, v1::Event)> {
    let get = |name: &str| f.get(name).cloned().unwrap_or_default();
    let sequence: u64 = get("seq")
        .parse()
        .map_err(|_| RoutingError::Corrupt("outbox entry without seq".into()))?;
    let entity = get("entity");
    let kind = get("kind");
    let channel = channel_from_str(&get("ch"))
        .map(channel_to_proto)
        .unwrap_or_default() as i32;
    let payload = match entity.as_str() {
        "interaction" => v1::event::Payload::Interaction(v1::InteractionEvent {
            kind: interaction_kind(&kind) as i32,
            interaction_id: get("ix"),
            queue_id: get("queue"),
            channel,
            priority: get("band")
                .parse::<u8>()
                .ok()
                .and_then(careline_domain::Priority::from_band)
                .map(priority_to_proto)
                .unwrap_or_default() as i32,
            urgent: get("urgent") == "1",
            agent_id: get("agent"),
            offer_id: get("offer"),
            detail: get("detail"),
            outcome_tags: get("tags")
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            member_ref: get("member"),
        }),
        "agent" => v1::event::Payload::Agent(v1::AgentEvent {
            kind: agent_kind(&kind) as i32,
            agent_id: get("agent"),
            state: get("state"),
            reason: get("reason"),
            channel,
        }),
        other => {
            return Err(RoutingError::Corrupt(format!(
                "outbox entry of unknown entity {other:?}"
            )));
        }
    };
    let subject =
        Subject::new(tenant, &entity, &kind).map_err(|e| RoutingError::Bus(e.to_string()))?;
    let event = v1::Event {
        event_id: format!("{tenant}:{sequence}"),
        tenant_id: tenant.to_string(),
        occurred_at_ms: get("at").parse().unwrap_or(0),
        sequence,
        payload: Some(payload),
    };
    Ok((subject, event))
}

fn interaction_kind(kind: &str) -> v1::InteractionEventKind {
    use v1::InteractionEventKind as K;
    match kind {
        "created" => K::Created,
        "offered" => K::Offered,
        "assigned" => K::Assigned,
        "offer_rejected" => K::OfferRejected,
        "offer_timed_out" => K::OfferTimedOut,
        "offer_revoked" => K::OfferRevoked,
        "requeued" => K::Requeued,
        "transferred" => K::Transferred,
        "pending" => K::Pending,
        "resolved" => K::Resolved,
        "abandoned" => K::Abandoned,
        "overflowed" => K::Overflowed,
        "transferred_external" => K::TransferredExternal,
        _ => K::Unspecified,
    }
}

fn agent_kind(kind: &str) -> v1::AgentEventKind {
    use v1::AgentEventKind as K;
    match kind {
        "logged_in" => K::LoggedIn,
        "state_changed" => K::StateChanged,
        "logged_out" => K::LoggedOut,
        "capacity_released" => K::CapacityReleased,
        _ => K::Unspecified,
    }
}
