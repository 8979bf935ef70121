//! careline-localdev: runs the servers Careline needs as local child processes, for
//! `careline up` (data kept between runs) and for tests (throw-away, on free ports).
//!
//! - [`redis`]: [`RedisServer`], a `redis-server` on a loopback port.
//! - [`redis_cluster`]: [`RedisCluster`], a few cluster-enabled `redis-server`s joined into a
//!   Redis Cluster (tests).
//! - [`nats`]: [`NatsServer`], a `nats-server` with JetStream on a loopback port.
//! - [`nats_cluster`]: [`NatsCluster`], several of them routed into one JetStream
//!   cluster, each node killable and restartable by index.
//! - [`tls`]: [`ServerTls`], the certificate files of a Redis or NATS server started with TLS.
//! - `process`: what both share: finding the binary, free ports, data dirs, and a child
//!   process stopped on drop ([`free_port`] is public for callers that pick ports).
//! - [`LocalDevError`]: the one error type of this crate.
//!
//! Binaries come from `PATH` unless `CARELINE_REDIS_SERVER` / `CARELINE_REDIS_CLI` /
//! `CARELINE_NATS_SERVER` name them.

#![forbid(unsafe_code)]

mod error;
pub mod nats;
pub mod nats_cluster;
mod process;
pub mod redis;
pub mod redis_cluster;
pub mod tls;

pub use error::LocalDevError;
pub use nats::{JetStreamSync, NatsAccess, NatsServer};
pub use nats_cluster::NatsCluster;
pub use process::free_port;
pub use redis::{AppendFsync, RedisServer};
pub use redis_cluster::RedisCluster;
pub use tls::ServerTls;
