//! careline-kit: what every Careline service binary shares, so each service is just
//! `pub async fn serve(cfg, listener, shutdown)` and `careline up` can run many in one process.
//!
//! - [`config`]: [`CommonConfig`] (flags + env vars every service takes), validation with errors
//!   that name the field, and [`config::parse_from`] to parse any clap config from explicit
//!   args and an explicit env map.
//! - [`telemetry`]: [`init_telemetry`]: tracing subscriber (text/json), optional OTLP span
//!   export, W3C trace-context propagation; safe to call more than once per process.
//! - [`metrics`]: the process-wide Prometheus recorder and the `/metrics` + `/healthz` endpoint.
//! - [`grpc`]: [`GrpcServer`], the tonic server every service uses: health, reflection,
//!   trace-context extraction, graceful drain.
//! - [`auth`]: [`TenantAuth`], the tenant API-key interceptor, and [`authorize`].
//! - [`redis_client`]: [`RedisConnection`], the one Redis client type: a single server or a
//!   Redis Cluster, chosen by the configured URL.
//! - [`readiness`]: [`readiness::spawn_probe`], Redis and NATS reachability as gRPC health.
//! - [`router_keys`]: [`RouterKeys`], the router API key an intake service presents per tenant.
//! - [`service`]: [`service::run_binary`], the whole `main` of a service binary.
//! - [`tls`]: [`TlsConfig`] and the loaded [`Tls`]: TLS (and mTLS) for the gRPC and HTTP
//!   servers, and the CA and client certificate of outgoing gRPC, Redis and NATS connections.
//! - [`nats_client`]: [`nats_client::options`], NATS connect options with the configured TLS
//!   and credentials.
//! - [`shutdown`]: [`Shutdown`], the cancellation handle passed down to every task.
//! - [`KitError`]: the one error type of this crate.
//!
//! A service's `main.rs`, in full (its config implements [`service::ServiceConfig`]):
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     careline_kit::service::run_binary::<RouterConfig, _, _, _>("careline-router", careline_router::serve).await
//! }
//! ```

#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod error;
pub mod grpc;
pub mod metrics;
pub mod nats_client;
pub mod readiness;
pub mod redis_client;
pub mod router_keys;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

pub use auth::{ApiKeyLookup, Caller, TenantAuth, authorize};
pub use config::{
    CommonConfig, LogFormat, MetricsAddr, SampleRatio, ServerLimits, TraceSampler, TracingConfig,
};
pub use error::KitError;
pub use grpc::{GrpcServer, HealthHandle};
pub use redis_client::{RedisConnection, RedisTarget};
pub use router_keys::{RouterKeys, RouterLink};
pub use shutdown::Shutdown;
pub use telemetry::{TelemetryGuard, init_telemetry};
pub use tls::{Tls, TlsConfig};
