//! The Careline console: the supervisor-facing read side. It materialises
//! KPIs from the event log and serves the floor view.
//!
//! - [`config`]: [`ConsoleConfig`], flags and environment.
//! - [`periods`]: 15-minute, hourly and daily periods on the tenant's clock.
//! - [`store`]: [`KpiStore`], the console's Redis keys and the one script
//!   that applies an event.
//! - [`consumer`]: the durable consumer of the event log that feeds it.
//! - [`figures`]: the KPI definitions, counters to figures.
//! - `grpc`: the tonic adapter (`GetKpis`); `error`: [`ConsoleError`] and
//!   its one status table.
//!
//! [`serve`] runs it: the same function backs the binary, `careline up` and the tests.

#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
mod error;
pub mod figures;
mod grpc;
pub mod periods;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::console_server::ConsoleServer;
use tokio::net::TcpListener;

pub use config::ConsoleConfig;
pub use error::ConsoleError;
pub use store::KpiStore;

/// Largest request the console accepts.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Runs the console (gRPC on `listener`) until `shutdown`.
pub async fn serve(
    config: ConsoleConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // URLs are not echoed: they may carry passwords.
    let redis = RedisConnection::connect(&config.common.redis_url)
        .await
        .context("cannot connect to Redis (--redis-url / CARELINE_REDIS_URL)")?;
    let nats = async_nats::connect(careline_bus::server_list(&config.common.nats_url))
        .await
        .context("cannot connect to NATS (--nats-url / CARELINE_NATS_URL)")?;
    let js = async_nats::jetstream::new(nats.clone());
    let tenants = Arc::new(
        careline_bus::setup::start_tenants(&js, config.common.nats_replicas, shutdown.token())
            .await
            .context("setting up the event stream and loading the tenants from NATS")?,
    );
    let store = KpiStore::new(redis.clone());
    let materialiser = consumer::Materialiser {
        store: store.clone(),
        tenants: tenants.clone(),
        short_abandon: config.short_abandon(),
        fcr_window: config.fcr_window(),
    };
    let consuming = tokio::spawn(consumer::run(js, materialiser, shutdown.clone()));
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats, shutdown.token().clone());
    let service = tonic::service::interceptor::InterceptedService::new(
        ConsoleServer::new(grpc::ConsoleService {
            store,
            tenants: tenants.clone(),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES),
        TenantAuth::from_arc(tenants),
    );
    tracing::info!(addr = %listener.local_addr()?, "console gRPC serving");
    GrpcServer::new()
        .add_service(service)
        .shutdown_grace(config.common.shutdown_grace())
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    for (task, name) in [(consuming, "KPI consumer"), (probe, "health probe")] {
        if let Err(error) = task.await {
            tracing::error!(%error, "{name} panicked");
        }
    }
    Ok(())
}
