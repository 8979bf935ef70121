//! The outbox relay: routing scripts append their events to a per-tenant
//! Redis stream in the same atomic step as the state change; the relay
//! publishes them on NATS JetStream and only then deletes them. Nothing else
//! removes an entry, except moving one that cannot become an event to the
//! tenant's dead-letter stream (`outbox:dead`).
//!
//! Every replica runs a relay in one consumer group, so an event is published
//! even when the replica that made the change dies; entries a dead replica had
//! claimed are taken over after [`CLAIM_IDLE_MS`]. An entry holds the events
//! of one script, a JSON array of their fields (entries of older releases:
//! the k-th event's fields prefixed `k:`). JetStream de-duplicates by event
//! id, `<tenant>:<outbox entry id>` for an entry's first event and
//! `<tenant>:<entry id>:<k>` for its k-th: entry ids are time-based and assigned by Redis, so they stay unique
//! when Redis loses its data or fails over (the per-tenant sequence then
//! starts again), and a re-published entry is stored once.
//!
//! Order: one relay publishes a batch in outbox order and waits for the acks
//! after sending all of it. A batch that failed, or entries taken over from
//! another replica, are published again later, so across failures events can
//! reach JetStream out of order; consumers order by `Event.sequence` and must
//! tolerate it (presence does, see its `sessions` module).

use std::collections::HashMap;
use std::sync::LazyLock;

use careline_bus::{Outgoing, Publisher, Subject};
use careline_kit::RedisConnection;
use careline_proto::v1;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamRangeReply, StreamReadOptions,
    StreamReadReply,
};
use redis::{AsyncCommands, Script};

use crate::convert::{channel_from_str, channel_to_proto, priority_to_proto};
use crate::error::{Result, RoutingError};
use crate::keys;

/// Consumer group of every relay.
const GROUP: &str = "relay";
/// Entries one relay pass publishes at most, per tenant.
pub const RELAY_BATCH: usize = 256;
/// Stream the entries that cannot become events are moved to, per tenant.
const DEAD_LETTERS: &str = "outbox:dead";
/// An entry claimed by a replica that has not acknowledged it for this long
/// is taken over by another.
pub const CLAIM_IDLE_MS: u64 = 5_000;
/// Most events one outbox entry holds (`EVENTS_PER_ENTRY` in `lua/lib.lua`).
const MAX_EVENTS_PER_ENTRY: usize = 32;

/// Acknowledges and deletes published entries and raises the tenant's
/// `relayed` mark, which routing scripts subtract from the event sequence to
/// know how many events wait (see the script).
static OUTBOX_RELAYED: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/outbox_relayed.lua")));

/// Publishes routing events from the Redis outbox to NATS, one tenant (one
/// Redis Cluster slot) per command.
pub struct OutboxRelay {
    conn: RedisConnection,
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
    /// The publisher events go out with.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// A relay named `consumer` (unique per replica).
    pub fn new(conn: RedisConnection, publisher: Publisher, consumer: impl Into<String>) -> Self {
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
        let options = StreamAutoClaimOptions::default().count(RELAY_BATCH);
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

    /// Publishes up to [`RELAY_BATCH`] entries of `tenant`'s outbox that no
    /// relay has read yet; returns how many were published ([`RELAY_BATCH`]:
    /// more may be waiting). Never blocks: the worker calls it when a script
    /// of this replica touched the tenant, and on its sweep.
    pub async fn relay_new(&self, tenant: &str) -> Result<usize> {
        self.read_and_publish(tenant, ">").await
    }

    /// Publishes entries this relay read (or took over) earlier but could not
    /// publish (NATS was unreachable); returns how many were published, 0
    /// once none is left. Run it after a failure, before new entries.
    pub async fn relay_backlog(&self, tenant: &str) -> Result<usize> {
        self.read_and_publish(tenant, "0").await
    }

    /// XREADGROUP on one tenant's outbox (one Redis Cluster slot) from
    /// `cursor` (`>`: never delivered; `0`: this consumer's unacknowledged
    /// entries), and publishes what it returns.
    async fn read_and_publish(&self, tenant: &str, cursor: &str) -> Result<usize> {
        let key = keys::tenant_key(tenant, "outbox");
        let options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .count(RELAY_BATCH);
        let mut read = self
            .conn
            .clone()
            .xread_options::<_, _, Option<StreamReadReply>>(&[&key], &[cursor], &options)
            .await;
        if matches!(&read, Err(e) if e.code() == Some("NOGROUP")) {
            self.ensure_group(tenant).await?;
            read = self
                .conn
                .clone()
                .xread_options(&[&key], &[cursor], &options)
                .await;
        }
        let mut published = 0;
        for stream in read?.map(|r| r.keys).unwrap_or_default() {
            published += self.publish(tenant, &stream.ids).await?;
        }
        Ok(published)
    }

    /// Publishes the events of `entries` in order and deletes the entries
    /// JetStream stored all of; entries that cannot become events are
    /// dead-lettered first.
    async fn publish(&self, tenant: &str, entries: &[StreamId]) -> Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut batch = Vec::with_capacity(entries.len());
        let mut kinds = Vec::with_capacity(entries.len());
        // Per entry: its id, where its events end in the batch, and the
        // sequence number of its last event.
        let mut ends = Vec::with_capacity(entries.len());
        for entry in entries {
            match events_of_entry(tenant, entry) {
                Ok(events) => {
                    let last = events
                        .last()
                        .map_or(0, |(outgoing, _)| outgoing.event.sequence);
                    for (outgoing, kind) in events {
                        batch.push(outgoing);
                        kinds.push(kind);
                    }
                    ends.push((entry.id.as_str(), batch.len(), last));
                }
                Err(error) => self.dead_letter(tenant, entry, &error).await?,
            }
        }
        let results = self.publisher.publish_in_order(&batch).await;
        let stored = results.iter().take_while(|r| r.is_ok()).count();
        for kind in &kinds[..stored] {
            metrics::counter!("careline_routing_events_total", "tenant" => tenant.to_string(), "kind" => kind.clone()).increment(1);
        }
        let done: Vec<&str> = ends
            .iter()
            .take_while(|(_, end, _)| *end <= stored)
            .map(|(id, _, _)| *id)
            .collect();
        if let Some(&(_, _, last)) = done.len().checked_sub(1).and_then(|i| ends.get(i)) {
            OUTBOX_RELAYED
                .key(keys::tenant_key(tenant, "outbox"))
                .key(keys::tenant_key(tenant, "settings"))
                .arg(GROUP)
                .arg(last)
                .arg(&done)
                .invoke_async::<()>(&mut self.conn.clone())
                .await?;
        }
        match results.into_iter().find_map(Result::err) {
            // Left unacknowledged: `relay_backlog` (or another replica's
            // reclaim) publishes them again; JetStream drops the events of a
            // half-published entry it already stored (same event ids).
            Some(error) => Err(RoutingError::Bus(error.to_string())),
            None => Ok(stored),
        }
    }

    /// Moves an entry that cannot become an event aside, with the reason, so
    /// the rest of the outbox flows; it is kept for a person to inspect.
    async fn dead_letter(
        &self,
        tenant: &str,
        entry: &StreamId,
        error: &RoutingError,
    ) -> Result<()> {
        let key = keys::tenant_key(tenant, "outbox");
        let mut fields: Vec<(String, Vec<u8>)> = Vec::with_capacity(entry.map.len() + 2);
        for (name, value) in &entry.map {
            let bytes = redis::from_redis_value::<Vec<u8>>(value.clone()).unwrap_or_default();
            fields.push((name.clone(), bytes));
        }
        fields.push(("error".into(), error.to_string().into_bytes()));
        fields.push(("outbox_id".into(), entry.id.clone().into_bytes()));
        redis::pipe()
            .atomic()
            .xadd(keys::tenant_key(tenant, DEAD_LETTERS), "*", &fields)
            .ignore()
            .xack(&key, GROUP, &[&entry.id])
            .ignore()
            .xdel(&key, &[&entry.id])
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        tracing::error!(%tenant, outbox_id = %entry.id, %error, "outbox entry cannot become an event; moved to the dead letters");
        metrics::counter!("careline_outbox_dead_lettered_total", "tenant" => tenant.to_string())
            .increment(1);
        Ok(())
    }
}

/// How far a tenant's outbox is behind: events not yet on NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLag {
    /// Events in the outbox (not yet published, or published but not yet
    /// deleted); an entry holds the events of one script.
    pub events: u64,
    /// Age of the oldest entry on Redis' clock; 0 when empty.
    pub oldest_age_ms: u64,
}

/// Reads a tenant's [`OutboxLag`] in one round trip.
pub async fn outbox_lag(conn: &mut RedisConnection, tenant: &str) -> Result<OutboxLag> {
    let key = keys::tenant_key(tenant, "outbox");
    type Reply = (
        u64,
        (Option<u64>, Option<u64>),
        StreamRangeReply,
        (u64, u64),
    );
    let (entries, (seq, relayed), oldest, (secs, micros)): Reply = redis::pipe()
        .xlen(&key)
        .hmget(keys::tenant_key(tenant, "settings"), &["seq", "relayed"])
        .xrange_count(&key, "-", "+", 1)
        .cmd("TIME")
        .query_async(conn)
        .await?;
    // The sequence minus the relays' mark counts events; the entries are a
    // floor for it (the mark may run ahead of a replica's batch in flight).
    let events = match (entries, seq, relayed) {
        (0, _, _) => 0,
        (entries, Some(seq), Some(relayed)) => seq.saturating_sub(relayed).max(entries),
        (entries, _, _) => entries,
    };
    let now_ms = secs * 1000 + micros / 1000;
    let oldest_ms = oldest
        .ids
        .first()
        .and_then(|entry| entry.id.split_once('-'))
        .and_then(|(ms, _)| ms.parse::<u64>().ok());
    Ok(OutboxLag {
        events,
        oldest_age_ms: oldest_ms.map_or(0, |ms| now_ms.saturating_sub(ms)),
    })
}

/// The bus events of one outbox entry, in order, each with its kind (for
/// metrics). An entry holds the events of one script: the first one's fields
/// as they are, the k-th one's prefixed `k:`; `seq` (the number of its first
/// event), `at` and `tp` are the entry's.
fn events_of_entry(tenant: &str, entry: &StreamId) -> Result<Vec<(Outgoing, String)>> {
    let field = |name: &str| -> Result<Option<String>> {
        entry
            .map
            .get(name)
            .map(|value| redis::from_redis_value::<String>(value.clone()))
            .transpose()
            .map_err(RoutingError::from)
    };
    let events = match field("events")? {
        Some(packed) => packed_events(&packed)?,
        None => prefixed_events(entry)?,
    };
    let first: u64 = field("seq")?
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| RoutingError::Corrupt("outbox entry without seq".into()))?;
    let at: i64 = field("at")?.and_then(|at| at.parse().ok()).unwrap_or(0);
    let traceparent = field("tp")?.unwrap_or_default();
    events
        .iter()
        .enumerate()
        .map(|(i, fields)| {
            // The first event keeps the id an entry's one event always had.
            let event_id = match i {
                0 => format!("{tenant}:{}", entry.id),
                _ => format!("{tenant}:{}:{}", entry.id, i + 1),
            };
            let (subject, payload) = payload_of(tenant, fields)?;
            let event = v1::Event {
                event_id,
                tenant_id: tenant.to_string(),
                occurred_at_ms: at,
                sequence: first + i as u64,
                payload: Some(payload),
            };
            // `tp`: the request that caused the event; `ctp`: the contact's
            // creation, kept in the interaction (see the README, "Tracing").
            let outgoing = match fields.get("ctp").filter(|ctp| !ctp.is_empty()) {
                Some(contact) => Outgoing {
                    subject,
                    event,
                    traceparent: contact.clone(),
                    cause: traceparent.clone(),
                },
                None => Outgoing {
                    subject,
                    event,
                    traceparent: traceparent.clone(),
                    cause: String::new(),
                },
            };
            Ok((outgoing, fields.get("kind").cloned().unwrap_or_default()))
        })
        .collect()
}

/// The events of an entry: a JSON array (field `events`) of objects whose
/// values are strings (numbers are taken as their text).
fn packed_events(packed: &str) -> Result<Vec<HashMap<String, String>>> {
    let corrupt = |why: String| RoutingError::Corrupt(format!("outbox entry events: {why}"));
    let events: Vec<HashMap<String, serde_json::Value>> =
        serde_json::from_str(packed).map_err(|e| corrupt(e.to_string()))?;
    if events.is_empty() || events.len() > MAX_EVENTS_PER_ENTRY {
        return Err(corrupt(format!("{} events in one entry", events.len())));
    }
    events
        .into_iter()
        .map(|fields| {
            fields
                .into_iter()
                .map(|(name, value)| match value {
                    serde_json::Value::String(text) => Ok((name, text)),
                    serde_json::Value::Number(number) => Ok((name, number.to_string())),
                    other => Err(corrupt(format!("field {name:?} is {other}"))),
                })
                .collect()
        })
        .collect()
}

/// The events of an entry written by a release before events were packed:
/// the first event's fields as they are, the k-th's prefixed `k:`.
fn prefixed_events(entry: &StreamId) -> Result<Vec<HashMap<String, String>>> {
    let mut events: Vec<HashMap<String, String>> = vec![HashMap::new()];
    for (name, value) in &entry.map {
        let value = redis::from_redis_value::<String>(value.clone())?;
        let (index, field) = match name.split_once(':') {
            None => (0, name.as_str()),
            Some((k, field)) => match k.parse::<usize>() {
                Ok(k) if (2..=MAX_EVENTS_PER_ENTRY).contains(&k) => (k - 1, field),
                _ => {
                    return Err(RoutingError::Corrupt(format!(
                        "outbox entry field {name:?} names no event"
                    )));
                }
            },
        };
        if events.len() <= index {
            events.resize_with(index + 1, HashMap::new);
        }
        events[index].insert(field.to_string(), value);
    }
    Ok(events)
}

/// The subject and payload of one event's fields.
fn payload_of(tenant: &str, f: &HashMap<String, String>) -> Result<(Subject, v1::event::Payload)> {
    let get = |name: &str| f.get(name).cloned().unwrap_or_default();
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
        Subject::new(tenant, &entity, &kind).map_err(|e| RoutingError::Corrupt(e.to_string()))?;
    Ok((subject, payload))
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
