//! End-to-end tests: one binary, one module per scenario.

mod replicas;
mod walkthrough;
