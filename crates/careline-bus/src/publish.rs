//! [`Publisher`]: puts events on the bus so each is stored once and carries
//! the publisher's trace.
//!
//! The `Nats-Msg-Id` header is the event id, so a publish retried after a lost
//! ack (or by a replica repeating work) lands once within the stream's
//! duplicate window. The call returns only after JetStream stored the event.
//! [`Publisher::publish_in_order`] sends a batch in order before awaiting the
//! acks, so the stream stores it in that order at the cost of one round trip.
//! With [`Publisher::with_atomic_batches`], a long batch goes as one JetStream
//! atomic batch (ADR-50): stored all or nothing, and with `sync_interval:
//! always` synced to disk once instead of once per event. It is off by
//! default: with JetStream's default sync an atomic batch is slower than
//! publishing event by event (measured in loadtest/README.md, "Atomic batches").

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::{NATS_BATCH_COMMIT, NATS_BATCH_ID, NATS_BATCH_SEQUENCE};
use async_nats::jetstream;
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use careline_proto::v1::Event;
use prost::Message as _;
use tracing::Instrument;

use crate::{BusError, Delivery, Subject, trace_context};

/// Header JetStream de-duplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// Shorter batches go event by event: an atomic batch costs nats-server a
/// staging store (about 4 ms here, synced or not), which pays only when it
/// replaces enough synced writes; and the relay, which keeps up with short
/// batches, reaches this length only when it falls behind.
pub const ATOMIC_BATCH_MIN: usize = 64;
/// Most events in one atomic batch: nats-server's default `max_batch_size`.
pub const ATOMIC_BATCH_MAX: usize = 1000;

/// One event of a batch for [`Publisher::publish_in_order`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: Subject,
    pub event: Event,
    /// W3C traceparent the publish span continues ("" when none): the
    /// contact's trace for an interaction's events, else the request's.
    pub traceparent: String,
    /// W3C traceparent of the request that caused the event, linked from the
    /// publish span when it is another trace than `traceparent` ("" when none).
    pub cause: String,
}

/// Publishes [`Event`]s to JetStream.
#[derive(Debug, Clone)]
pub struct Publisher {
    js: jetstream::Context,
    /// Long batches go as atomic batches (see [`Publisher::with_atomic_batches`]).
    atomic_batches: bool,
}

/// What JetStream said about a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishAck {
    /// Stream sequence of the stored event (the original one for a duplicate).
    pub sequence: u64,
    /// The event id was already stored within the duplicate window; nothing new was stored.
    pub duplicate: bool,
}

impl Publisher {
    /// A publisher over a JetStream context.
    pub fn new(js: jetstream::Context) -> Self {
        Self {
            js,
            atomic_batches: false,
        }
    }

    /// Whether [`Publisher::publish_in_order`] sends long batches as atomic
    /// batches (default off). Turn it on only when the NATS servers sync every
    /// write (`sync_interval: always`): a batch then costs one disk sync
    /// instead of one per event; with the default sync it is slower.
    pub fn with_atomic_batches(self, atomic_batches: bool) -> Self {
        Self {
            atomic_batches,
            ..self
        }
    }

    /// Publishes `event` on `subject` and waits for JetStream to store it.
    ///
    /// Rejects an event without `event_id` or whose `tenant_id` is not the subject's tenant.
    pub async fn publish(&self, subject: &Subject, event: &Event) -> Result<PublishAck, BusError> {
        check(subject, event)?;
        let span = tracing::debug_span!(
            "bus.publish",
            subject = %subject,
            event_id = %event.event_id,
        );
        self.send(subject, event, &event.event_id)
            .instrument(span)
            .await
    }

    /// Publishes `batch` in order, so JetStream stores it in that order.
    /// Returns one result per event, in order; after the first failure the
    /// rest count as failed ([`BusError::NotSent`]) whether or not they were
    /// stored: publish them again (the dedupe id stores them once).
    ///
    /// With [`Publisher::with_atomic_batches`] on, from [`ATOMIC_BATCH_MIN`]
    /// valid events on, they go in atomic batches of at most
    /// [`ATOMIC_BATCH_MAX`]. JetStream refuses a whole atomic batch
    /// that holds an event it already stored (a retry after a lost ack or a
    /// half-published batch), or when the stream does not allow them; the
    /// rest of the batch then goes event by event, each stored once.
    pub async fn publish_in_order(&self, batch: &[Outgoing]) -> Vec<Result<PublishAck, BusError>> {
        // The events that may go in atomic batches: the valid prefix, or none.
        let atomic = if self.atomic_batches {
            batch
                .iter()
                .position(|outgoing| check(&outgoing.subject, &outgoing.event).is_err())
                .unwrap_or(batch.len())
        } else {
            0
        };
        let mut results = Vec::with_capacity(batch.len());
        while atomic - results.len() >= ATOMIC_BATCH_MIN {
            let start = results.len();
            let chunk = &batch[start..atomic.min(start + ATOMIC_BATCH_MAX)];
            match self.publish_atomic(chunk).await {
                Ok(acks) => results.extend(acks.into_iter().map(Ok)),
                Err(Atomic::Refused(error)) => {
                    tracing::debug!(events = chunk.len(), %error, "atomic batch refused; publishing event by event");
                    break;
                }
                Err(Atomic::Failed(error)) => {
                    results.push(Err(error));
                    fill_not_sent(&mut results, batch);
                    return results;
                }
            }
        }
        let rest = self.publish_each_in_order(&batch[results.len()..]).await;
        results.extend(rest);
        results
    }

    /// One atomic batch of checked events: every event but the last is
    /// staged without a reply, the last commits, and its ack stands for all.
    async fn publish_atomic(&self, chunk: &[Outgoing]) -> Result<Vec<PublishAck>, Atomic> {
        let Some((last, staged)) = chunk.split_last() else {
            return Ok(Vec::new());
        };
        // At most 64 characters, unique per attempt: a retry is another batch.
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let client = self.js.client();
        for (index, outgoing) in staged.iter().enumerate() {
            let Outgoing { subject, event, .. } = outgoing;
            async {
                let headers = batch_headers(&event.event_id, &batch_id, index + 1);
                client
                    .publish_with_headers(
                        subject.to_string(),
                        headers,
                        event.encode_to_vec().into(),
                    )
                    .await
                    .map_err(BusError::nats(publish_action(subject, event)))
            }
            .instrument(event_span(outgoing))
            .await
            .map_err(Atomic::Failed)?;
        }
        let Outgoing { subject, event, .. } = last;
        let commit = async {
            let mut headers = batch_headers(&event.event_id, &batch_id, chunk.len());
            headers.insert(NATS_BATCH_COMMIT, "1");
            self.js
                .publish_with_headers(subject.to_string(), headers, event.encode_to_vec().into())
                .await?
                .await
        }
        .instrument(event_span(last))
        .await;
        let action = || {
            format!(
                "publish an atomic batch of {} events ending with {}",
                chunk.len(),
                event.event_id
            )
        };
        let ack = match commit {
            Ok(ack) => ack,
            Err(error) if refused(&error) => {
                return Err(Atomic::Refused(BusError::nats(action())(error).to_string()));
            }
            Err(error) => return Err(Atomic::Failed(BusError::nats(action())(error))),
        };
        let count = chunk.len() as u64;
        // The batch is stored contiguously, its last event at the acked
        // sequence. An ack that says otherwise is not trusted: the events are
        // then published one by one, which reports where each one is.
        let first = (ack.sequence + 1)
            .checked_sub(count)
            .filter(|first| *first > 0);
        let (Some(first), Some(stored)) = (first, ack.batch_size) else {
            return Err(Atomic::Refused(format!(
                "{}: ack without the batch's place",
                action()
            )));
        };
        if stored != count {
            return Err(Atomic::Refused(format!(
                "{}: ack for {stored} events",
                action()
            )));
        }
        Ok((first..=ack.sequence)
            .map(|sequence| PublishAck {
                sequence,
                duplicate: false,
            })
            .collect())
    }

    /// Every event is handed to the connection before the next, then the
    /// acks are awaited together (one round trip); results as
    /// [`Publisher::publish_in_order`]'s.
    async fn publish_each_in_order(&self, batch: &[Outgoing]) -> Vec<Result<PublishAck, BusError>> {
        let mut pending = Vec::with_capacity(batch.len());
        for outgoing in batch {
            let Outgoing { subject, event, .. } = outgoing;
            let sent = async {
                check(subject, event)?;
                self.start_send(subject, event, &event.event_id).await
            }
            .instrument(event_span(outgoing))
            .await;
            let failed = sent.is_err();
            pending.push(sent);
            if failed {
                break;
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        for (sent, outgoing) in pending.into_iter().zip(batch) {
            let result = match sent {
                Ok(ack) => await_ack(ack, &outgoing.subject, &outgoing.event).await,
                Err(error) => Err(error),
            };
            let failed = result.is_err();
            results.push(result);
            // Each ack wait has its own timeout: with NATS away, waiting for
            // the rest one by one would take a timeout per event.
            if failed {
                break;
            }
        }
        fill_not_sent(&mut results, batch);
        results
    }

    /// Parks a delivery its handler gave up on at `careline.<tenant>.dlq.<consumer>`,
    /// then acknowledges it so the work queue moves on.
    pub async fn dead_letter(
        &self,
        consumer: &str,
        delivery: &Delivery,
    ) -> Result<PublishAck, BusError> {
        let subject = Subject::dead_letter(&delivery.event.tenant_id, consumer)?;
        // Its own dedupe id: the event id is still inside the duplicate window of the original.
        let msg_id = format!("dlq:{consumer}:{}", delivery.event.event_id);
        let ack = self
            .send(&subject, &delivery.event, &msg_id)
            .instrument(delivery.span.clone())
            .await?;
        tracing::warn!(parent: &delivery.span, subject = %subject, delivered = delivery.delivered, "event dead-lettered");
        delivery.ack.ack().await?;
        Ok(ack)
    }

    /// [`Publisher::publish`], the event kept for `keep` (a `Nats-TTL` header)
    /// instead of the stream's age limit: records whose retention is the
    /// tenant's (quality reviews), longer or shorter than the log's.
    pub async fn publish_kept_for(
        &self,
        subject: &Subject,
        event: &Event,
        keep: Duration,
    ) -> Result<PublishAck, BusError> {
        check(subject, event)?;
        let ack = start_publish(
            &self.js,
            subject,
            &event.event_id,
            event.encode_to_vec(),
            Some(keep),
        )
        .await
        .map_err(BusError::nats(publish_action(subject, event)))?;
        await_ack(ack, subject, event).await
    }

    async fn send(
        &self,
        subject: &Subject,
        event: &Event,
        msg_id: &str,
    ) -> Result<PublishAck, BusError> {
        let ack = self.start_send(subject, event, msg_id).await?;
        await_ack(ack, subject, event).await
    }

    /// Hands the event to the connection; the returned future yields JetStream's ack.
    async fn start_send(
        &self,
        subject: &Subject,
        event: &Event,
        msg_id: &str,
    ) -> Result<PublishAckFuture, BusError> {
        start_publish(&self.js, subject, msg_id, event.encode_to_vec(), None)
            .await
            .map_err(BusError::nats(publish_action(subject, event)))
    }
}

/// Publishes a protobuf message that is not an [`Event`] (a work-queue
/// request, a status) on `subject` with dedupe id `msg_id` and the current
/// trace context, and waits until JetStream stored it.
pub async fn publish_message(
    js: &jetstream::Context,
    subject: &(dyn std::fmt::Display + Sync),
    msg_id: &str,
    payload: Vec<u8>,
) -> Result<(), BusError> {
    let action = || format!("publish message {msg_id} on {subject}");
    start_publish(js, subject, msg_id, payload, None)
        .await
        .map_err(BusError::nats(action()))?
        .await
        .map_err(BusError::nats(action()))?;
    Ok(())
}

/// Hands `payload` to the connection with the headers every Careline publish
/// carries; the returned future yields JetStream's ack.
async fn start_publish(
    js: &jetstream::Context,
    subject: &(dyn std::fmt::Display + Sync),
    msg_id: &str,
    payload: Vec<u8>,
    keep: Option<Duration>,
) -> Result<PublishAckFuture, PublishError> {
    let mut headers = headers(msg_id);
    if let Some(keep) = keep {
        headers.insert(
            async_nats::header::NATS_MESSAGE_TTL,
            keep.as_secs().max(1).to_string().as_str(),
        );
    }
    js.publish_with_headers(subject.to_string(), headers, payload.into())
        .await
}

/// The headers every Careline publish carries: the dedupe id and the current trace context.
fn headers(msg_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, msg_id);
    trace_context::inject(&tracing::Span::current(), &mut headers);
    headers
}

/// [`headers`] plus the event's place (from 1) in atomic batch `batch_id`.
fn batch_headers(msg_id: &str, batch_id: &str, place: usize) -> HeaderMap {
    let mut headers = headers(msg_id);
    headers.insert(NATS_BATCH_ID, batch_id);
    headers.insert(NATS_BATCH_SEQUENCE, place.to_string().as_str());
    headers
}

/// The span an event of a batch is published in: it continues the event's
/// trace and links the request that caused it.
fn event_span(outgoing: &Outgoing) -> tracing::Span {
    let Outgoing {
        subject,
        event,
        traceparent,
        cause,
    } = outgoing;
    // Named for the transition (`publish interaction.offer_timed_out`),
    // never for the tenant: span names are a small, fixed set.
    let name = format!("publish {}.{}", subject.entity(), subject.event());
    let span = trace_context::span_from_traceparent(&name, traceparent, cause);
    span.record("subject", subject.as_str());
    span.record("event_id", event.event_id.as_str());
    span
}

/// Why an atomic batch was not stored.
enum Atomic {
    /// JetStream answered that it stored none of it (an event it already
    /// has, too many batches in flight, atomic batches not allowed, ...):
    /// publishing the events one by one stores each once. Says why.
    Refused(String),
    /// The connection failed or the ack did not come: stored or not, unknown.
    Failed(BusError),
}

/// JetStream answered the commit with an error: then no event of the batch is stored.
fn refused(error: &PublishError) -> bool {
    error.kind() == PublishErrorKind::Other
        && std::error::Error::source(error).is_some_and(|source| source.is::<jetstream::Error>())
}

/// Marks the events of `batch` after the last result as not sent.
fn fill_not_sent(results: &mut Vec<Result<PublishAck, BusError>>, batch: &[Outgoing]) {
    results.extend(
        batch[results.len()..]
            .iter()
            .map(|outgoing| Err(BusError::NotSent(outgoing.event.event_id.clone()))),
    );
}

fn publish_action(subject: &Subject, event: &Event) -> String {
    format!("publish event {} on {subject}", event.event_id)
}

/// An event must carry its dedupe id and belong to the subject's tenant.
fn check(subject: &Subject, event: &Event) -> Result<(), BusError> {
    if event.event_id.is_empty() {
        return Err(BusError::MissingEventId);
    }
    if event.tenant_id != subject.tenant() {
        return Err(BusError::TenantMismatch {
            event_id: event.event_id.clone(),
            event_tenant: event.tenant_id.clone(),
            subject_tenant: subject.tenant().to_owned(),
        });
    }
    Ok(())
}

async fn await_ack(
    ack: PublishAckFuture,
    subject: &Subject,
    event: &Event,
) -> Result<PublishAck, BusError> {
    let ack = ack
        .await
        .map_err(BusError::nats(publish_action(subject, event)))?;
    if ack.duplicate {
        tracing::debug!(sequence = ack.sequence, "duplicate event, stored once");
    }
    Ok(PublishAck {
        sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}
