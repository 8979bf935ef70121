//! End-to-end tests: one binary, one module per scenario.

mod chaos;
mod nats_cluster;
mod replicas;
mod trace;
mod walkthrough;
