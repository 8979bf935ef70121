//! Test support for Careline's integration tests: real servers, never mocks.
//!
//! - [`redis`]: [`RedisServer`], a `redis-server` on a free loopback port, killed on drop.
//! - [`nats`]: [`NatsServer`], a `nats-server` with JetStream on a free loopback port.
//! - [`sandbox`]: [`Sandbox`], both servers together plus ready-made clients.
//! - [`eventually`](mod@eventually): [`eventually()`] and [`assert_eventually!`], how every test waits.
//!
//! Binaries come from `PATH` unless `CARELINE_REDIS_SERVER` / `CARELINE_NATS_SERVER` name them.

#![forbid(unsafe_code)]

pub mod eventually;
pub mod nats;
mod process;
pub mod redis;
pub mod sandbox;

pub use eventually::{DEFAULT_DEADLINE, POLL_INTERVAL, eventually};
pub use nats::NatsServer;
pub use redis::RedisServer;
pub use sandbox::Sandbox;
