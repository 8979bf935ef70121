//! Reading a tenant's event log back from JetStream (`CARELINE_EVENTS`),
//! the record that reporting and audits rely on.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use careline_proto::v1;
use futures::StreamExt;
use prost::Message;

/// Longest wait for the next stored event while reading the log.
pub const NEXT_EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every event stored for `tenant` (subjects `careline.<tenant>.>`), in the
/// order JetStream stored them.
pub async fn read_tenant_events(
    js: &jetstream::Context,
    tenant: &str,
) -> anyhow::Result<Vec<v1::Event>> {
    let stream = js
        .get_stream(careline_bus::streams::EVENTS_STREAM)
        .await
        .context("the events stream")?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("careline.{tenant}.>"),
            ..Default::default()
        })
        .await
        .context("an ordered consumer of the tenant's events")?;
    let total = consumer.cached_info().num_pending;
    let mut events = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    if total == 0 {
        return Ok(events);
    }
    let mut messages = consumer.messages().await?;
    loop {
        let message = tokio::time::timeout(NEXT_EVENT_TIMEOUT, messages.next())
            .await
            .with_context(|| {
                format!(
                    "no event within {NEXT_EVENT_TIMEOUT:?} after {}",
                    events.len()
                )
            })?
            .context("the consumer ended")?
            .map_err(|e| anyhow::anyhow!("reading events: {e}"))?;
        let pending = message
            .info()
            .map_err(|e| anyhow::anyhow!("message info: {e}"))?
            .pending;
        let event = v1::Event::decode(message.payload.clone())
            .with_context(|| format!("undecodable event on {}", message.subject))?;
        events.push(event);
        if pending == 0 {
            return Ok(events);
        }
    }
}

/// Whether the event is a routing state change (an interaction or agent
/// event), the events numbered by the tenant's routing sequence.
pub fn is_routing_event(event: &v1::Event) -> bool {
    matches!(
        event.payload,
        Some(v1::event::Payload::Interaction(_) | v1::event::Payload::Agent(_))
    )
}
