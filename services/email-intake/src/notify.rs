//! The notifications contract, from the producer's side, in one place:
//! a `NotificationRequested` (proto/careline/v1/notifications.proto) published
//! on `careline.<tenant>.notification.requested` with `Nats-Msg-Id` =
//! `notification_id`, so a retry or a second replica asks for one email.

use async_nats::HeaderMap;
use async_nats::jetstream;
use careline_bus::Subject;
use careline_bus::publish::MSG_ID_HEADER;
use careline_proto::v1;
use prost::Message as _;

use crate::error::EmailError;

/// Entity and event of the notification request subject.
pub const REQUESTED_ENTITY: &str = "notification";
/// See [`REQUESTED_ENTITY`].
pub const REQUESTED_EVENT: &str = "requested";

/// Asks the notifications service to send emails; cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    js: jetstream::Context,
}

impl Notifier {
    /// A notifier publishing through `js`.
    pub fn new(js: jetstream::Context) -> Notifier {
        Notifier { js }
    }

    /// Publishes `request` and waits for JetStream to store it.
    pub async fn request(&self, request: &v1::NotificationRequested) -> Result<(), EmailError> {
        let subject = Subject::new(&request.tenant_id, REQUESTED_ENTITY, REQUESTED_EVENT)
            .map_err(|e| EmailError::Invalid(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID_HEADER, request.notification_id.as_str());
        careline_bus::trace_context::inject(&tracing::Span::current(), &mut headers);
        let ack = self
            .js
            .publish_with_headers(subject.to_string(), headers, request.encode_to_vec().into())
            .await
            .map_err(|e| EmailError::Bus(e.to_string()))?;
        ack.await.map_err(|e| EmailError::Bus(e.to_string()))?;
        Ok(())
    }
}
