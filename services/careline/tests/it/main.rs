//! The `careline` binary run as a user runs it: `config apply|check|get`
//! against a real nats-server, and `careline up` started, probed and stopped
//! with SIGTERM.
//!
//! - `big_config`: `check` and `apply` agree on generated big and broken files.
//! - `cli`: running the built binary, the demo tenant text and line-exact edits of it.
//! - `config`: `config apply`, `config get` and `config check`.
//! - `up`: `careline up` from start to a clean SIGTERM stop.

mod big_config;
mod cli;
mod config;
mod key;
mod up;
