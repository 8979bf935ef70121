//! Careline's event bus on NATS JetStream.
//!
//! - [`servers`]: [`server_list`], the servers of a comma-separated `--nats-url`.
//! - [`subject`]: [`Subject`] `careline.<tenant>.<entity>.<event>` and wildcard [`SubjectFilter`]s.
//! - [`streams`]: idempotent set-up of the `CARELINE_EVENTS` stream (replicated on a
//!   cluster) and durable pull consumers.
//! - [`publish`]: [`Publisher`], protobuf events with a dedupe id and the W3C trace context.
//! - [`consume`]: decoding deliveries back into events, each with a [`tracing::Span`]
//!   continuing the publisher's trace, and an [`AckHandle`].
//! - [`notification`]: the notifications contract, [`notification::publish_request`].
//! - [`setup`]: [`setup::start_tenants`], the start-up every service runs, retried.
//! - [`trace_context`]: W3C `traceparent` in NATS headers, both directions.
//! - [`tenants`]: tenant configuration in the `careline-tenants` KV bucket ([`TenantStore`])
//!   and a live, watched in-memory copy of it ([`TenantDirectory`]).
//! - [`error`]: [`BusError`], the one error type of this crate.

#![forbid(unsafe_code)]

pub mod audit;
pub mod config_applied;
pub mod consume;
pub mod error;
pub mod notification;
pub mod publish;
pub mod servers;
pub mod setup;
pub mod streams;
pub mod subject;
pub mod tenants;
pub mod trace_context;

pub use consume::{
    AckHandle, Deliveries, Delivery, decode_event, deliveries, forget_event, read_tenant_events,
};
pub use error::BusError;
pub use publish::{Outgoing, PublishAck, Publisher};
pub use servers::server_list;
pub use streams::{
    EVENTS_STREAM, MAX_REPLICAS, StreamSettings, WorkQueueSettings, ensure_consumer,
    ensure_consumer_of_all, ensure_streams, ensure_streams_with,
};
pub use subject::{Subject, SubjectFilter};
pub use tenants::{TENANTS_BUCKET, TenantDirectory, TenantStore};
pub use trace_context::current_traceparent;
