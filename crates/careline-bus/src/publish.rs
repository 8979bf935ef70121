//! [`Publisher`]: puts events on the bus so each is stored once and carries
//! the publisher's trace.
//!
//! The `Nats-Msg-Id` header is the event id, so a publish retried after a lost
//! ack (or by a replica repeating work) lands once within the stream's
//! duplicate window. The call returns only after JetStream stored the event.
//! [`Publisher::publish_in_order`] sends a batch in order before awaiting the
//! acks, so the stream stores it in that order at the cost of one round trip.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishAckFuture;
use careline_proto::v1::Event;
use prost::Message as _;
use tracing::Instrument;

use crate::{BusError, Delivery, Subject, trace_context};

/// Header JetStream de-duplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

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
        Self { js }
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

    /// Publishes `batch` in order: every event is handed to the connection
    /// before the next, then the acks are awaited together, so JetStream
    /// stores the batch in its order. Returns one result per event, in order;
    /// after the first failure the rest count as failed ([`BusError::NotSent`])
    /// whether or not they were stored: publish them again (the dedupe id
    /// stores them once).
    pub async fn publish_in_order(&self, batch: &[Outgoing]) -> Vec<Result<PublishAck, BusError>> {
        let mut pending = Vec::with_capacity(batch.len());
        for outgoing in batch {
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
            let sent = async {
                check(subject, event)?;
                self.start_send(subject, event, &event.event_id).await
            }
            .instrument(span)
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
        while results.len() < batch.len() {
            let event_id = &batch[results.len()].event.event_id;
            results.push(Err(BusError::NotSent(event_id.clone())));
        }
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
) -> Result<PublishAckFuture, async_nats::jetstream::context::PublishError> {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, msg_id);
    if let Some(keep) = keep {
        headers.insert(
            async_nats::header::NATS_MESSAGE_TTL,
            keep.as_secs().max(1).to_string().as_str(),
        );
    }
    trace_context::inject(&tracing::Span::current(), &mut headers);
    js.publish_with_headers(subject.to_string(), headers, payload.into())
        .await
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
