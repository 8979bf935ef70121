//! The Careline console: the supervisor-facing read side. It materialises
//! KPIs from the event log and serves the floor view.
//!
//! - [`config`]: [`ConsoleConfig`], flags and environment.
//! - [`periods`]: 15-minute, hourly and daily periods on the tenant's clock.
//! - [`store`]: [`KpiStore`], the console's Redis keys and the one script
//!   that applies an event.
//! - [`consumer`]: the durable consumer of the event log that feeds it.
//! - [`figures`]: the KPI definitions, counters to figures.
//! - [`floor`]: the floor view's data, one shared feed per tenant;
//!   [`session`]: floor view sign-in and session cookies; [`i18n`]: its
//!   words in English and Spanish; `web`: its HTTP routes and live updates.
//! - [`quality`]: quality review and coaching marks, events on the log.
//! - [`overview`]: the platform operator's view across tenants and its gate.
//! - `grpc`: the tonic adapter (`GetKpis`, `ScoreInteraction`,
//!   `MarkForCoaching`); `error`: [`ConsoleError`] and its one status table.
//!
//! [`serve`] runs it: the same function backs the binary, `careline up` and the tests.

#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
mod error;
pub mod figures;
pub mod floor;
mod grpc;
pub mod i18n;
pub mod overview;
pub mod periods;
pub mod quality;
pub mod session;
pub mod store;
pub mod web;

use std::sync::Arc;

use anyhow::Context;
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::console_server::ConsoleServer;
use careline_proto::v1::platform_overview_server::PlatformOverviewServer;
use careline_proto::v1::router_client::RouterClient;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub use config::ConsoleConfig;
pub use error::ConsoleError;
pub use store::KpiStore;

/// Largest request the console accepts.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Binds `config.http_addr` and runs the console (gRPC on `listener`) until `shutdown`.
pub async fn serve(
    config: ConsoleConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let http = TcpListener::bind(config.http_addr).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {} (in use? set --http-addr)",
            config.http_addr
        )
    })?;
    serve_with_http(config, listener, http, shutdown).await
}

/// [`serve`] with the HTTP listener already bound (tests and `careline up` bind port 0).
pub async fn serve_with_http(
    config: ConsoleConfig,
    listener: TcpListener,
    http: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    config.validate()?;
    // URLs are not echoed: they may carry passwords.
    let tls = config.common.tls.load()?;
    let redis = RedisConnection::connect(&config.common.redis_url, &tls)
        .await
        .context("cannot connect to Redis (--redis-url / CARELINE_REDIS_URL)")?;
    let nats = careline_kit::nats_client::connect(&config.common).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let tenants = Arc::new(
        careline_bus::setup::start_tenants(&js, config.common.nats_replicas, shutdown.token())
            .await
            .context("setting up the event stream and loading the tenants from NATS")?,
    );
    let router = tls
        .grpc_endpoint(&config.router_url)
        .context("--router-url / CARELINE_ROUTER_URL is not a URL")?
        .connect_lazy();
    let store = KpiStore::new(redis.clone());
    let materialiser = consumer::Materialiser {
        store: store.clone(),
        tenants: tenants.clone(),
        short_abandon: config.short_abandon(),
        fcr_window: config.fcr_window(),
    };
    let consuming = tokio::spawn(consumer::run(js.clone(), materialiser, shutdown.clone()));
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats.clone(), shutdown.token().clone());
    let gate = overview::OperatorGate::new(
        &config.operator_token,
        TenantAuth::from_arc(tenants.clone()),
    );
    let feed_tasks = TaskTracker::new();
    let web = web::routes(web::WebState {
        tenants: tenants.clone(),
        auth: TenantAuth::from_arc(tenants.clone()),
        sessions: session::Sessions::new(&config.session_secret, config.session_lifetime()),
        feeds: floor::FloorFeeds::new(
            store.clone(),
            tenants.clone(),
            nats,
            RouterClient::new(router),
            config.router_api_keys.clone(),
            shutdown.clone(),
            feed_tasks.clone(),
        ),
        shutdown: shutdown.clone(),
        streams: Arc::new(Semaphore::new(web::MAX_STREAMS)),
        secure_cookie: config.secure_cookie,
        operator: gate.clone(),
        store: store.clone(),
    });
    tracing::info!(addr = %http.local_addr()?, tls = tls.serves_tls(), "console HTTP (floor view) serving");
    let http_server = tokio::spawn(careline_kit::tls::serve_http(
        http,
        web,
        &tls,
        shutdown.wait(),
    ));
    let service = tonic::service::interceptor::InterceptedService::new(
        ConsoleServer::new(grpc::ConsoleService {
            store: store.clone(),
            tenants: tenants.clone(),
            quality: quality::QualityDesk {
                store: store.clone(),
                tenants: tenants.clone(),
                publisher: careline_bus::Publisher::new(js),
            },
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES),
        TenantAuth::from_arc(tenants.clone()),
    );
    let platform = tonic::service::interceptor::InterceptedService::new(
        PlatformOverviewServer::new(overview::PlatformOverviewService { store, tenants })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        gate,
    );
    tracing::info!(addr = %listener.local_addr()?, "console gRPC serving");
    GrpcServer::new()
        .add_service(service)
        .add_service(platform)
        .configure(&config.common)?
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    match http_server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "HTTP server failed"),
        Err(error) => tracing::error!(%error, "HTTP server panicked"),
    }
    feed_tasks.close();
    feed_tasks.wait().await;
    for (task, name) in [(consuming, "KPI consumer"), (probe, "health probe")] {
        if let Err(error) = task.await {
            tracing::error!(%error, "{name} panicked");
        }
    }
    Ok(())
}
