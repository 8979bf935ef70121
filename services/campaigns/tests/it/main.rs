//! Integration tests of the campaigns service: real Redis, NATS and router,
//! campaign replicas in-process (or the core alone, one pass at a time).

mod callbacks;
mod email;
mod failures;
mod harness;
mod pacing;
mod priority;
mod replicas;
mod results;
mod window;
