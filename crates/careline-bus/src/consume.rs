//! Reading events back: decode the protobuf [`Event`] and continue the
//! publisher's trace in a new [`tracing::Span`].
//!
//! [`decode_event`] works on any message (core subscriptions included);
//! [`deliveries`] turns a durable pull consumer into a stream of [`Delivery`]s,
//! each with an [`AckHandle`] the handler settles once it is done;
//! [`read_tenant_events`] reads a tenant's whole stored log (audits, tests).

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use careline_proto::v1::Event;
use futures::StreamExt;
use futures::stream::BoxStream;
use prost::Message as _;

use crate::{BusError, Subject, trace_context};

/// An event received from a durable consumer, ready to handle.
#[derive(Debug)]
pub struct Delivery {
    /// The decoded event.
    pub event: Event,
    /// Where it was published.
    pub subject: Subject,
    /// A `bus.consume` span whose parent is the publisher's span; handle the event inside it.
    pub span: tracing::Span,
    /// How many times this message has been delivered (1 on first delivery).
    pub delivered: i64,
    /// Its place in the event stream (see [`forget_event`]).
    pub stream_sequence: u64,
    /// Settles the message with the server.
    pub ack: AckHandle,
}

/// The stream returned by [`deliveries`]. Items are errors for messages that
/// could not be decoded (already terminated) or when the consumer fails.
pub type Deliveries = BoxStream<'static, Result<Delivery, BusError>>;

/// Decodes an event from a NATS message and starts its `bus.consume` span,
/// parented to the trace context in the message headers.
///
/// Fails when the subject is not a Careline event subject, the payload is not
/// an `Event`, or the event's tenant differs from the subject's.
pub fn decode_event(
    message: &async_nats::Message,
) -> Result<(Subject, Event, tracing::Span), BusError> {
    let subject = Subject::parse(message.subject.as_str())?;
    let event = Event::decode(message.payload.as_ref()).map_err(|source| BusError::Decode {
        subject: subject.to_string(),
        source,
    })?;
    if event.tenant_id != subject.tenant() {
        return Err(BusError::TenantMismatch {
            event_id: event.event_id,
            event_tenant: event.tenant_id,
            subject_tenant: subject.tenant().to_owned(),
        });
    }
    let span = tracing::info_span!(
        "bus.consume",
        subject = %subject,
        tenant = %event.tenant_id,
        event_id = %event.event_id,
    );
    trace_context::set_parent_from(&span, message.headers.as_ref());
    Ok((subject, event, span))
}

/// Deletes the message at `stream_sequence` from the event stream: for work
/// a service has settled whose message carries a member's address or text,
/// which must not stay for the stream's whole age.
pub async fn forget_event(js: &jetstream::Context, stream_sequence: u64) -> Result<(), BusError> {
    let stream = js
        .get_stream_no_info(crate::EVENTS_STREAM)
        .await
        .map_err(BusError::nats("find the event stream"))?;
    stream
        .delete_message(stream_sequence)
        .await
        .map_err(BusError::nats("delete a settled message"))?;
    Ok(())
}

/// Pulls from `consumer` and yields each message as a [`Delivery`].
///
/// A message that cannot be decoded is terminated (never redelivered: retrying
/// cannot fix it) and yielded as an error so the caller can count it.
pub async fn deliveries(consumer: &PullConsumer) -> Result<Deliveries, BusError> {
    let messages = consumer
        .messages()
        .await
        .map_err(BusError::nats("start pulling messages"))?;
    let stream = messages.then(|message| async move {
        let message = message.map_err(BusError::nats("pull messages"))?;
        let (delivered, stream_sequence) = message
            .info()
            .map(|info| (info.delivered, info.stream_sequence))
            .unwrap_or((1, 0));
        let (message, acker) = message.split();
        match decode_event(&message) {
            Ok((subject, event, span)) => Ok(Delivery {
                event,
                subject,
                span,
                delivered,
                stream_sequence,
                ack: AckHandle { acker },
            }),
            Err(err) => {
                tracing::warn!(subject = %message.subject, error = %err, "terminating undecodable message");
                if let Err(term_err) = acker.ack_with(AckKind::Term).await {
                    tracing::warn!(error = %term_err, "could not terminate undecodable message");
                }
                Err(err)
            }
        }
    });
    Ok(stream.boxed())
}

/// Settles one delivered message.
pub struct AckHandle {
    acker: jetstream::message::Acker,
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckHandle").finish_non_exhaustive()
    }
}

impl AckHandle {
    /// Done: the server will not deliver it again.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.acker
            .double_ack()
            .await
            .map_err(BusError::nats_boxed("ack"))
    }

    /// Failed for now: deliver again after `delay` (until max deliveries is reached).
    pub async fn retry_after(&self, delay: Duration) -> Result<(), BusError> {
        self.acker
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(BusError::nats_boxed("nak"))
    }

    /// Cannot ever succeed: never deliver again.
    pub async fn reject(&self) -> Result<(), BusError> {
        self.acker
            .ack_with(AckKind::Term)
            .await
            .map_err(BusError::nats_boxed("terminate"))
    }
}

/// Longest wait for the next stored event while reading a log.
pub const NEXT_EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every event stored for `tenant` (subjects `careline.<tenant>.>`), in the
/// order JetStream stored them.
pub async fn read_tenant_events(
    js: &jetstream::Context,
    tenant: &str,
) -> Result<Vec<Event>, BusError> {
    let stream = js
        .get_stream(crate::EVENTS_STREAM)
        .await
        .map_err(BusError::nats("get the events stream"))?;
    let action = || format!("read the events of tenant {tenant}");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("careline.{tenant}.>"),
            ..Default::default()
        })
        .await
        .map_err(BusError::nats(action()))?;
    let total = consumer.cached_info().num_pending;
    let mut events = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    if total == 0 {
        return Ok(events);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(BusError::nats(action()))?;
    loop {
        let next = tokio::time::timeout(NEXT_EVENT_TIMEOUT, messages.next()).await;
        let message = match next {
            Ok(Some(message)) => message.map_err(BusError::nats(action()))?,
            Ok(None) => return Err(BusError::nats_boxed(action())("the consumer ended".into())),
            Err(elapsed) => return Err(BusError::nats(action())(elapsed)),
        };
        let pending = message
            .info()
            .map_err(|e| BusError::nats_boxed(action())(e))?
            .pending;
        let event = Event::decode(message.payload.clone()).map_err(|source| BusError::Decode {
            subject: message.subject.to_string(),
            source,
        })?;
        events.push(event);
        if pending == 0 {
            return Ok(events);
        }
    }
}
