//! Integration tests of the presence service: a real redis-server and
//! nats-server, the service in-process on 127.0.0.1:0, a real tonic client.

mod harness;
mod history;
mod ordering;
mod sessions;
mod supervisor;
