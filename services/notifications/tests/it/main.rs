//! The notifications service end to end: real Redis, NATS and an SMTP sink,
//! one or more replicas in-process.

mod dead_letters;
mod delivery;
mod harness;
