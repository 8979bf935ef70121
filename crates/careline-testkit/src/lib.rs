//! Test support for Careline's integration tests: real servers, never mocks.
//!
//! - [`RedisServer`], [`RedisCluster`], [`NatsServer`], [`NatsCluster`]: re-exported from
//!   `careline-localdev`, which runs them as child processes on free loopback ports (also for
//!   `careline up`).
//! - [`test_redis`]: [`TestRedis`], a single server or a local Redis Cluster, for tests that
//!   run on both.
//! - [`sandbox`]: [`Sandbox`], Redis and NATS (one server or a cluster) together plus
//!   ready-made clients.
//! - [`browser`]: [`browser::BrowserRun`], a headless Chromium session of `tests/browser/*.mjs`.
//! - [`big_tenant`](mod@big_tenant): generated tenants of thousands of agents.
//! - [`demo`]: the shipped demo tenant, its keys, and a second tenant for isolation tests.
//! - [`bearer`]: [`Bearer`], the API-key interceptor of test clients.
//! - [`smtp_sink`]: [`SmtpSink`], an SMTP server that records what it accepts and can answer
//!   scripted 4xx/5xx codes or go down, for services that send mail.
//! - [`tls`]: [`TestPki`], a CA generated at test time and the certificates it signed.
//! - [`otlp`]: [`OtlpReceiver`], an OTLP/gRPC trace receiver keeping every span services export.
//! - [`eventually`](mod@eventually): [`eventually()`] and [`assert_eventually!`], how every test waits.

#![forbid(unsafe_code)]

pub mod bearer;
pub mod big_tenant;
pub mod browser;
pub mod demo;
pub mod eventually;
pub mod http;
pub mod otlp;
pub mod router;
pub mod sandbox;
pub mod smtp_sink;
pub mod test_redis;
pub mod tls;

pub use bearer::Bearer;
pub use big_tenant::big_tenant;
pub use careline_localdev::{
    AppendFsync, NatsAccess, NatsCluster, NatsServer, RedisCluster, RedisServer, ServerTls,
    free_port,
};
pub use eventually::{DEFAULT_DEADLINE, POLL_INTERVAL, eventually};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use sandbox::{Sandbox, SandboxNats};
pub use smtp_sink::{ReceivedMail, SmtpSink};
pub use test_redis::TestRedis;
pub use tls::TestPki;
