//! The Careline survey-dispatcher: after a contact is resolved, the member
//! may get one short email survey (never more than one per tenant per
//! window, default 90 days); the member answers on a small web page; the
//! scores (NPS, hire-agent, ease) add up per tenant, queue, agent and period.
//!
//! - [`config`]: [`SurveyConfig`], flags and environment.
//! - `consumer`: the durable JetStream consumer of `interaction.resolved`.
//! - `due`: the worker that sends surveys when they are due.
//! - [`surveys`]: [`Surveys`], the core (schedule, send, answer, stats, opt-out).
//! - [`store`]: [`SurveyStore`], the service's Redis keys and Lua scripts.
//! - [`token`]: signed, expiring survey links and key rotation.
//! - `page`: the HTML survey page (axum, no JavaScript).
//! - `grpc`: the tonic adapter.
//! - `validate`: input checks and limits.
//! - `error`: [`SurveyError`] and its mapping to gRPC status codes.
//!
//! [`serve`] runs it: the same function backs the binary, `careline up` and the tests.

#![forbid(unsafe_code)]

pub mod config;
mod consumer;
mod due;
mod error;
mod grpc;
mod page;
pub mod store;
pub mod surveys;
pub mod token;
mod validate;

use std::sync::Arc;

use anyhow::Context as _;
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::survey_service_server::SurveyServiceServer;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::service::interceptor::InterceptedService;

pub use config::SurveyConfig;
pub use consumer::CONSUMER;
pub use error::SurveyError;
pub use store::SurveyStore;
pub use surveys::{Clock, Surveys, notification_id};

/// Largest gRPC request accepted (a comment is at most 2,000 characters).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Binds `config.http_addr` and runs the service (gRPC on `listener`) until `shutdown`.
pub async fn serve(
    config: SurveyConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let http = TcpListener::bind(config.http_addr).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {} (in use? set --http-addr)",
            config.http_addr
        )
    })?;
    serve_with(config, listener, http, shutdown, system_clock()).await
}

/// The wall clock, in ms since the Unix epoch.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// [`serve`] with the HTTP listener already bound and an explicit clock
/// (tests move it by days; `careline up` binds its own port).
pub async fn serve_with(
    config: SurveyConfig,
    listener: TcpListener,
    http: TcpListener,
    shutdown: Shutdown,
    clock: Clock,
) -> anyhow::Result<()> {
    let link_base = config.link_base()?;
    // URLs are not echoed: they may carry passwords.
    let tls = config.common.tls.load()?;
    let redis = RedisConnection::connect(&config.common.redis_url, &tls)
        .await
        .context("cannot connect to Redis (--redis-url / CARELINE_REDIS_URL)")?;
    let nats = careline_kit::nats_client::connect(&config.common).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let tenants =
        careline_bus::setup::start_tenants(&js, config.common.nats_replicas, shutdown.token())
            .await
            .map(Arc::new)?;
    let surveys = Surveys {
        store: SurveyStore::new(redis.clone()),
        tenants: tenants.clone(),
        keys: config.link_keys.clone(),
        link_base,
        js: js.clone(),
        clock,
    };
    let scheduled = Arc::new(Notify::new());
    let consuming = tokio::spawn(consumer::run(
        js.clone(),
        surveys.clone(),
        config.concurrency,
        scheduled.clone(),
        shutdown.clone(),
    ));
    let sending = tokio::spawn(due::run(surveys.clone(), scheduled, shutdown.clone()));
    let page_stop = shutdown.wait();
    tracing::info!(addr = %http.local_addr()?, tls = tls.serves_tls(), "survey page serving");
    let page = tokio::spawn(careline_kit::tls::serve_http(
        http,
        page::router(surveys.clone()),
        &tls,
        page_stop,
    ));
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats, shutdown.token().clone());
    let service = InterceptedService::new(
        SurveyServiceServer::new(grpc::SurveyApi { surveys })
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        TenantAuth::new(tenants),
    );
    tracing::info!(addr = %listener.local_addr()?, "survey-dispatcher serving");
    GrpcServer::new()
        .add_service(service)
        .configure(&config.common)?
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    match page.await {
        Ok(Err(error)) => tracing::error!(%error, "survey page stopped"),
        Err(error) => tracing::error!(%error, "survey page panicked"),
        Ok(Ok(())) => {}
    }
    careline_kit::service::join_tasks([
        (consuming, "survey consumer"),
        (sending, "due worker"),
        (probe, "health probe"),
    ])
    .await;
    Ok(())
}
