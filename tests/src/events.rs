//! Reading a tenant's event log back from JetStream (`CARELINE_EVENTS`),
//! the record that reporting and audits rely on.

use careline_proto::v1;

pub use careline_bus::read_tenant_events;

/// Whether the event is a routing state change (an interaction or agent
/// event), the events numbered by the tenant's routing sequence.
pub fn is_routing_event(event: &v1::Event) -> bool {
    matches!(
        event.payload,
        Some(v1::event::Payload::Interaction(_) | v1::event::Payload::Agent(_))
    )
}
