//! End-to-end tests: one binary, one module per scenario.

mod chaos;
mod replicas;
mod walkthrough;
