//! The router service end to end over gRPC, against real Redis and NATS.

mod api;
mod events;
mod harness;
mod hours;
mod limits;
mod tls;
mod transfers;
mod understanding;
mod watch;
