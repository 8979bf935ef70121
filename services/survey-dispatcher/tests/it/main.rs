//! Integration tests of the survey-dispatcher: real Redis, NATS, the
//! notifications service and an SMTP sink, replicas in-process.

mod answers;
mod browser;
mod dispatch;
mod harness;
