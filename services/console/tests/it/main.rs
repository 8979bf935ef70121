//! The console end to end: real Redis and NATS, console replicas in-process,
//! events published on the log as the router publishes them.

mod browser;
mod floor;
mod harness;
mod kpis;
mod operator;
mod quality;
