//! "A tenant's configuration reached the routing state": a `TenantConfigApplied` event
//! (proto/careline/v1/events.proto) on `careline.<tenant>.tenant.config_applied`, published by
//! the routing worker once it has written a revision's settings to Redis, and awaited by
//! `careline config apply`, so that `apply` returns when creates and logins for the tenant work.
//! Every replica applying the same revision publishes the same event id: JetStream stores it once.

use careline_proto::v1::event::Payload;
use careline_proto::v1::{Event, TenantConfigApplied};
use prost::Message as _;

use crate::{BusError, Publisher, Subject};

/// Entity token of tenant configuration events.
pub const ENTITY: &str = "tenant";
/// Event token: `careline.<tenant>.tenant.config_applied`.
pub const APPLIED: &str = "config_applied";

/// Where `tenant`'s applied revisions are announced.
pub fn subject(tenant: &str) -> Result<Subject, BusError> {
    Subject::new(tenant, ENTITY, APPLIED)
}

/// The event saying `tenant`'s configuration `revision` is in the routing state. Its
/// `sequence` is 0: it is not a routing state change.
pub fn event(tenant: &str, revision: u64, occurred_at_ms: i64) -> Event {
    Event {
        event_id: format!("{tenant}:config:{revision}"),
        tenant_id: tenant.to_owned(),
        occurred_at_ms,
        sequence: 0,
        payload: Some(Payload::TenantConfigApplied(TenantConfigApplied {
            revision,
        })),
    }
}

/// Publishes that `tenant`'s `revision` is applied.
pub async fn publish(publisher: &Publisher, tenant: &str, revision: u64) -> Result<(), BusError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
    publisher
        .publish(&subject(tenant)?, &event(tenant, revision, now))
        .await
        .map(|_| ())
}

/// The applied revision in a message received on [`subject`], if it is such an event.
pub fn revision_in(payload: &[u8]) -> Option<u64> {
    match Event::decode(payload).ok()?.payload? {
        Payload::TenantConfigApplied(applied) => Some(applied.revision),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_says_its_revision_and_replicas_give_it_one_id() {
        let event = event("acme", 42, 1);
        assert_eq!(revision_in(&event.encode_to_vec()), Some(42));
        assert_eq!(event.event_id, "acme:config:42");
        assert_eq!(
            subject("acme").unwrap().as_str(),
            "careline.acme.tenant.config_applied"
        );
        assert_eq!(revision_in(b"not an event"), None);
    }
}
