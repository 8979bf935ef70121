//! Careline's routing state in Redis: interactions, queues, agents, offers
//! and timers, changed only by atomic Lua scripts so that any number of
//! router and presence replicas can share it.
//!
//! - [`activity`]: which tenants this replica's scripts changed, for its worker.
//! - [`store`]: [`RoutingStore`], one method per routing operation.
//! - [`list`]: paged listing of interactions.
//! - [`stats`]: queue statistics.
//! - [`relay`]: publishes the scripts' outbox to NATS.
//! - [`backend`]: [`Backend`], a service replica's connections and worker.
//! - [`worker`]: background work of every replica (tenant sync, timers, relay, gauges).
//! - [`failures`]: how the worker's failures are counted and logged.
//! - [`convert`]: domain <-> protobuf enums.
//! - [`keys`]: Redis key names (`cl:{tenant}:...`).
//! - [`error`]: [`RoutingError`], with the one table of error -> gRPC code and client message.
//!
//! The routing operations live in `src/lua/`: one Redis Functions library,
//! `lib.lua` and a function per operation (assembled in `scripts.rs`).

#![forbid(unsafe_code)]

pub mod activity;
pub mod backend;
pub mod convert;
pub mod error;
pub mod failures;
pub mod keys;
pub mod list;
pub mod relay;
mod scripts;
pub mod stats;
pub mod store;
pub mod worker;

pub use backend::Backend;
pub use error::{Result, RoutingError};
pub use list::ListFilter;
pub use relay::{OutboxLag, OutboxRelay, outbox_lag};

pub use store::{
    AgentStatus, Created, Held, NewInteraction, Placed, QueuePlace, RoutingStore, TimersRun,
    TransferTarget,
};
