//! The `careline` binary run as a user runs it: `config apply|check|get`
//! against a real nats-server, and `careline up` started, probed and stopped
//! with SIGTERM.
//!
//! - `cli`: running the built binary, the demo tenant text and line-exact edits of it.
//! - `config`: `config apply`, `config get` and `config check`.
//! - `up`: `careline up` from start to a clean SIGTERM stop.

mod cli;
mod config;
mod up;
