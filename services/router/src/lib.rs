//! The Careline router service: the `careline.v1.Router` gRPC API over the
//! routing state in Redis.
//!
//! - [`config`]: [`RouterConfig`], flags and environment.
//! - `grpc`: the tonic adapter (authenticate, validate, call, map errors).
//! - `validate`: request validation and size limits.
//! - `intake`: business hours and urgency rules for new interactions.
//! - `error`: [`RouterError`] and its mapping to gRPC status codes.
//! - `watch`: `WatchInteraction`, the status a waiting member follows.
//! - `stats_feed`: `WatchQueueStats`, one stats reader per queue shared by its watchers.
//!
//! [`serve`] runs it: the same function backs the `careline-router` binary,
//! `careline up` and the tests.

#![forbid(unsafe_code)]

mod audit;
pub mod config;
mod error;
mod grpc;
mod intake;
mod stats_feed;
mod validate;
mod watch;

use std::sync::Arc;

use careline_kit::{GrpcServer, Shutdown, TenantAuth};
use careline_proto::v1::audit_log_server::AuditLogServer;
use careline_proto::v1::router_server::RouterServer;
use careline_routing::Backend;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;

pub use config::RouterConfig;
pub use error::RouterError;
pub use grpc::Clock;

/// Largest request the router accepts (contexts are limited to 16 KiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Runs the router on `listener` until `shutdown`, draining in-flight calls and
/// the tasks behind watch streams.
pub async fn serve(
    config: RouterConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    serve_with_clock(config, listener, shutdown, Arc::new(chrono::Utc::now)).await
}

/// [`serve`] with an explicit clock for business-hours decisions (tests).
pub async fn serve_with_clock(
    config: RouterConfig,
    listener: TcpListener,
    shutdown: Shutdown,
    clock: Clock,
) -> anyhow::Result<()> {
    let backend = Backend::start(&config.common, "router", shutdown.token()).await?;
    let watchers = TaskTracker::new();
    let audit = careline_bus::audit::AuditLog::new(
        async_nats::jetstream::new(backend.nats.clone()),
        "router",
    );
    let service = grpc::RouterService {
        store: backend.store.clone(),
        tenants: backend.tenants.clone(),
        nats: backend.nats.clone(),
        shutdown: shutdown.clone(),
        watchers: watchers.clone(),
        watches: watch::Watches::new(
            backend.store.clone(),
            backend.nats.clone(),
            shutdown.clone(),
            watchers.clone(),
        ),
        stats: stats_feed::StatsFeeds::new(
            backend.store.clone(),
            backend.tenants.clone(),
            shutdown.clone(),
            watchers.clone(),
            config.stats_interval(),
        ),
        supervisor_streams: grpc::StreamSlots::new(config.max_supervisor_streams),
        audit: audit.clone(),
        clock,
    };
    let router = InterceptedService::new(
        RouterServer::new(service).max_decoding_message_size(MAX_REQUEST_BYTES),
        TenantAuth::new(backend.tenants.clone()),
    );
    let audit_log = InterceptedService::new(
        AuditLogServer::new(audit::AuditService { audit }),
        TenantAuth::new(backend.tenants.clone()),
    );
    tracing::info!(addr = %listener.local_addr()?, "router serving");
    GrpcServer::new()
        .add_service(router)
        .add_service(audit_log)
        .configure(&config.common)?
        // NOT_SERVING while Redis or NATS is unreachable.
        .readiness(backend.healthy())
        .serve(listener, shutdown.wait())
        .await?;
    // Watch streams end on shutdown; their tasks finish (and unsubscribe) before
    // the backend's connections close.
    watchers.close();
    watchers.wait().await;
    backend.stopped().await;
    Ok(())
}
