//! Test support for Careline's integration tests: real servers, never mocks.
//!
//! - [`RedisServer`], [`NatsServer`]: re-exported from `careline-localdev`, which runs them
//!   as child processes on free loopback ports (also for `careline up`).
//! - [`sandbox`]: [`Sandbox`], both servers together plus ready-made clients.
//! - [`eventually`](mod@eventually): [`eventually()`] and [`assert_eventually!`], how every test waits.

#![forbid(unsafe_code)]

pub mod eventually;
pub mod sandbox;

pub use careline_localdev::{NatsServer, RedisServer};
pub use eventually::{DEFAULT_DEADLINE, POLL_INTERVAL, eventually};
pub use sandbox::Sandbox;
