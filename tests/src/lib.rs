//! End-to-end test support for Careline: the whole platform (several router
//! and presence replicas over one real Redis and NATS), driven only through
//! its public gRPC API and read back from its event log.
//!
//! - [`platform`]: [`Platform`] and its builder; each service replica runs on
//!   a runtime of its own so a test can kill it like `kill -9`.
//! - [`tenant`]: the demo tenant made test-friendly, and generated agents.
//! - [`client`]: authenticated Router / Presence clients and retry rules.
//! - [`events`]: reading a tenant's events back from JetStream.

#![forbid(unsafe_code)]

pub mod client;
pub mod events;
pub mod platform;
pub mod tenant;

pub use platform::{Platform, PlatformBuilder, Replica};
