//! The notifications contract on the bus, in one place for every producer
//! (email-intake, `careline notify`, a dead-letter replay) and for the
//! notifications service that consumes it: a `NotificationRequested`
//! (proto/careline/v1/notifications.proto) on
//! `careline.<tenant>.notification.requested`, with `Nats-Msg-Id` = the
//! notification id on a first publish, so a retry or a second replica asks
//! for one email. Delivery status events use the same entity.

use async_nats::jetstream;
use careline_proto::v1::NotificationRequested;
use prost::Message as _;

use crate::publish::publish_message;
use crate::{BusError, Subject, SubjectFilter};

/// Entity token of notification subjects (requests and status events).
pub const ENTITY: &str = "notification";
/// Event token of requests: `careline.<tenant>.notification.requested`.
pub const REQUESTED: &str = "requested";

/// Where `tenant`'s requests are published.
pub fn requested_subject(tenant: &str) -> Result<Subject, BusError> {
    Subject::new(tenant, ENTITY, REQUESTED)
}

/// Every tenant's requests (what the work queue reads), without the status
/// events published beside them.
pub fn requested_filter() -> SubjectFilter {
    Subject::event_all(ENTITY, REQUESTED).expect("constant subject parts are valid")
}

/// Publishes `request` on its tenant's subject with dedupe id `msg_id` (the
/// notification id, for a first publish) and waits until JetStream stored it.
pub async fn publish_request(
    js: &jetstream::Context,
    request: &NotificationRequested,
    msg_id: &str,
) -> Result<(), BusError> {
    let subject = requested_subject(&request.tenant_id)?;
    publish_message(js, &subject, msg_id, request.encode_to_vec()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_of_one_tenant_match_the_work_queue_filter() {
        let subject = requested_subject("acme").unwrap();
        assert_eq!(subject.as_str(), "careline.acme.notification.requested");
        assert_eq!(
            requested_filter().to_string(),
            "careline.*.notification.requested"
        );
    }

    #[test]
    fn a_tenant_that_would_shift_the_subject_is_refused() {
        assert!(requested_subject("acme.other").is_err());
    }
}
