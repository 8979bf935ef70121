//! [`Publisher`]: puts events on the bus so each is stored once and carries
//! the publisher's trace.
//!
//! The `Nats-Msg-Id` header is the event id, so a publish retried after a lost
//! ack (or by a replica repeating work) lands once within the stream's
//! duplicate window. The call returns only after JetStream stored the event.

use async_nats::HeaderMap;
use async_nats::jetstream;
use careline_proto::v1::Event;
use prost::Message as _;
use tracing::Instrument;

use crate::{BusError, Delivery, Subject, trace_context};

/// Header JetStream de-duplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

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
        let span = tracing::debug_span!(
            "bus.publish",
            subject = %subject,
            event_id = %event.event_id,
        );
        self.send(subject, event, &event.event_id)
            .instrument(span)
            .await
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

    /// Publishes `event` as a child of a stored `traceparent` (the trace of
    /// the request that caused it) rather than of the current span.
    pub async fn publish_with_traceparent(
        &self,
        subject: &Subject,
        event: &Event,
        traceparent: &str,
    ) -> Result<PublishAck, BusError> {
        let span = trace_context::span_from_traceparent("bus.publish", traceparent);
        self.publish(subject, event).instrument(span).await
    }

    async fn send(
        &self,
        subject: &Subject,
        event: &Event,
        msg_id: &str,
    ) -> Result<PublishAck, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID_HEADER, msg_id);
        trace_context::inject(&tracing::Span::current(), &mut headers);
        let action = || format!("publish event {} on {subject}", event.event_id);
        let ack = self
            .js
            .publish_with_headers(subject.to_string(), headers, event.encode_to_vec().into())
            .await
            .map_err(BusError::nats(action()))?
            .await
            .map_err(BusError::nats(action()))?;
        if ack.duplicate {
            tracing::debug!(sequence = ack.sequence, "duplicate event, stored once");
        }
        Ok(PublishAck {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}
