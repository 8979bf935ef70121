//! End-to-end test support for Careline: the whole platform (several router
//! and presence replicas over one real Redis and NATS), driven only through
//! its public gRPC API and read back from its event log.
//!
//! - [`platform`]: [`Platform`] and its builder; each service replica runs on
//!   a runtime of its own so a test can kill it like `kill -9`.
//! - [`processes`]: [`ProcessPlatform`], the same with every replica a real
//!   `careline-router` / `careline-presence` child process.
//! - [`tenant`]: the demo tenant made test-friendly, and generated agents.
//! - [`client`]: authenticated Router / Presence clients and retry rules.
//! - [`routers`]: calls retried across router replicas; creating load,
//!   waiting for it to settle, comparing final states with the log.
//! - [`desk`]: agent desktops answering offers at random over session streams.
//! - [`seed`]: the seed of a randomised run, and how to replay it.
//! - [`events`]: reading a tenant's events back from JetStream.
//! - [`audit`]: replaying the event log to find lost, doubled or
//!   double-assigned interactions and capacity violations.

#![forbid(unsafe_code)]

pub mod audit;
pub mod client;
pub mod desk;
pub mod events;
pub mod platform;
pub mod processes;
pub mod routers;
pub mod seed;
pub mod tenant;

pub use platform::{Platform, PlatformBuilder, Replica};
pub use processes::ProcessPlatform;
