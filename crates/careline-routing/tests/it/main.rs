//! Integration tests of the routing store against a real redis-server.

mod big_tenant;
mod cluster;
mod env;
mod relay;
mod scenarios;
mod sessions;
mod strand;
mod sync;
mod timers;
mod worker;
