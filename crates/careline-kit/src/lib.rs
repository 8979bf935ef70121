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
//! - [`auth`]: [`TenantAuth`], the tenant API-key interceptor, and [`tenant_of`].
//! - [`shutdown`]: [`Shutdown`], the cancellation handle passed down to every task.
//! - [`KitError`]: the one error type of this crate.
//!
//! A service's `main.rs`, in full:
//!
//! ```no_run
//! use careline_kit::{CommonConfig, GrpcServer, Shutdown};
//!
//! #[derive(clap::Parser)]
//! struct Config {
//!     #[command(flatten)]
//!     common: CommonConfig,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let env = std::env::vars().collect();
//!     let cfg: Config = careline_kit::config::parse_from(std::env::args_os(), &env)
//!         .unwrap_or_else(|e| e.exit());
//!     cfg.common.validate()?;
//!     let _telemetry = careline_kit::init_telemetry("router", &cfg.common)?;
//!     let shutdown = Shutdown::on_signals();
//!     let metrics = cfg.common.metrics_addr.socket_addr().map(|addr| {
//!         tokio::spawn(careline_kit::metrics::serve_metrics_on(addr, shutdown.wait()))
//!     });
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:50051").await?;
//!     GrpcServer::new() // .add_service(RouterServer::with_interceptor(router, auth))
//!         .shutdown_grace(cfg.common.shutdown_grace())
//!         .serve(listener, shutdown.wait())
//!         .await?;
//!     if let Some(metrics) = metrics {
//!         metrics.await??;
//!     }
//!     Ok(())
//! }
//! ```

#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod error;
pub mod grpc;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

pub use auth::{ApiKeyLookup, AuthenticatedTenant, TenantAuth, tenant_of};
pub use config::{CommonConfig, LogFormat, MetricsAddr};
pub use error::KitError;
pub use grpc::{GrpcServer, HealthHandle};
pub use shutdown::Shutdown;
pub use telemetry::{TelemetryGuard, init_telemetry};
