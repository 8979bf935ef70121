//! The bus side of the contract: where notification requests and status
//! events are published, and how (protobuf, `Nats-Msg-Id`, `traceparent`).

use async_nats::HeaderMap;
use async_nats::jetstream;
use careline_bus::publish::MSG_ID_HEADER;
use careline_bus::{Subject, SubjectFilter};
use careline_proto::v1::NotificationRequested;

use crate::error::NotificationError;

/// Entity token of notification subjects.
pub const ENTITY: &str = "notification";
/// Event token of requests: `careline.<tenant>.notification.requested`.
pub const REQUESTED: &str = "requested";

/// Where `tenant`'s requests are published.
pub fn requested_subject(tenant: &str) -> Result<Subject, NotificationError> {
    Subject::new(tenant, ENTITY, REQUESTED)
        .map_err(|error| NotificationError::Invalid(format!("tenant_id: {error}")))
}

/// Every tenant's requests (what the work queue reads).
pub fn requested_filter() -> SubjectFilter {
    Subject::event_all(ENTITY, REQUESTED).expect("constant subject parts are valid")
}

/// Publishes `payload` on `subject` with dedupe id `msg_id` and the current
/// trace context, and waits until JetStream stored it.
pub async fn publish(
    js: &jetstream::Context,
    subject: &Subject,
    msg_id: &str,
    payload: Vec<u8>,
) -> Result<(), NotificationError> {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, msg_id);
    careline_bus::trace_context::inject(&tracing::Span::current(), &mut headers);
    let failed = |error: &dyn std::fmt::Display| {
        NotificationError::nats(&format!("publish on {subject}"), error)
    };
    js.publish_with_headers(subject.to_string(), headers, payload.into())
        .await
        .map_err(|e| failed(&e))?
        .await
        .map_err(|e| failed(&e))?;
    Ok(())
}

/// Publishes a request as producers do: on its tenant's subject, with
/// `Nats-Msg-Id` = `msg_id` (the notification id, for a first publish).
pub async fn publish_request(
    js: &jetstream::Context,
    request: &NotificationRequested,
    msg_id: &str,
) -> Result<(), NotificationError> {
    let subject = requested_subject(&request.tenant_id)?;
    publish(js, &subject, msg_id, prost::Message::encode_to_vec(request)).await
}
