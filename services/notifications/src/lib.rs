//! The Careline notifications service: sends the emails other services ask
//! for on the bus (receipts, auto-replies, agent replies, surveys), at most
//! once per notification id, and serves `careline.v1.NotificationService`
//! (dead letters) over gRPC.
//!
//! - [`config`]: [`NotificationsConfig`], flags and environment.
//! - `worker`: the JetStream work queue: claim, send, settle, report status.
//! - `ledger`: per-id claims (sent / dead) and dead letters in Redis.
//! - `compose`: request + tenant -> one threaded multipart email.
//! - `templates`: the EN/ES texts and the shared HTML layout.
//! - `mailer`: SMTP relay or mail directory, and what a failure means.
//! - [`retry`]: exponential backoff with jitter.
//! - `dead_letters`: listing and replaying dead letters (the gRPC core).
//! - `grpc`: the tonic adapter.
//! - `validate`: input checks and limits.
//! - `error`: [`NotificationError`] and its mapping to gRPC status codes.
//!
//! [`serve`] runs it: the same function backs the `careline-notifications`
//! binary, `careline up` and the tests.

#![forbid(unsafe_code)]

mod compose;
pub mod config;
mod dead_letters;
mod error;
mod grpc;
mod ledger;
mod mailer;
pub mod retry;
mod templates;
mod validate;
mod worker;

use std::sync::Arc;

use async_nats::jetstream::consumer::PullConsumer;
use careline_bus::{BusError, WorkQueueSettings, notification};
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::notification_service_server::NotificationServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

pub use compose::NOTIFICATION_ID_HEADER;
pub use config::NotificationsConfig;
pub use error::NotificationError;
pub use mailer::Mailer;
pub use worker::{CONSUMER, status_word};

/// Largest gRPC request accepted (the RPCs carry ids only).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Runs the service on `listener` until `shutdown`: the work-queue consumer
/// and the gRPC API. Emails being sent when shutdown starts are finished.
pub async fn serve(
    config: NotificationsConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mailer = Mailer::from_config(config.smtp_url.as_deref(), &config.mail_dir)?;
    tracing::info!("{}", mailer.describe());
    // URLs are not echoed: they may carry passwords.
    let redis = RedisConnection::connect(&config.common.redis_url, &config.common.tls.load()?)
        .await
        .map_err(|e| {
            NotificationError::Unavailable(format!(
                "cannot connect to Redis (--redis-url / CARELINE_REDIS_URL): {e}"
            ))
        })?;
    let nats = careline_kit::nats_client::connect(&config.common)
        .await
        .map_err(|e| NotificationError::Unavailable(e.to_string()))?;
    let js = async_nats::jetstream::new(nats.clone());
    let tenants =
        careline_bus::setup::start_tenants(&js, config.common.nats_replicas, shutdown.token())
            .await
            .map(Arc::new)?;
    let consumer = work_queue(&js, shutdown.token()).await?;
    let ledger = ledger::Ledger::new(redis.clone());
    let worker = Arc::new(worker::Worker {
        ledger: ledger.clone(),
        tenants: tenants.clone(),
        mailer,
        templates: templates::Templates::defaults(),
        js: js.clone(),
        retry: config.retry_policy(),
    });
    let consuming = tokio::spawn(worker::run(
        worker,
        consumer,
        config.concurrency,
        shutdown.token().clone(),
    ));
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats, shutdown.token().clone());
    let service = InterceptedService::new(
        NotificationServiceServer::new(grpc::Notifications {
            dead_letters: dead_letters::DeadLetters { ledger, js },
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES),
        TenantAuth::new(tenants),
    );
    tracing::info!(addr = %listener.local_addr()?, "notifications serving");
    GrpcServer::new()
        .add_service(service)
        .configure(&config.common)?
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    careline_kit::service::join_tasks([
        (consuming, "notification worker"),
        (probe, "health probe"),
    ])
    .await;
    Ok(())
}

/// The durable work-queue consumer every replica shares, set up with the
/// start-up retries of [`careline_bus::setup`].
async fn work_queue(
    js: &async_nats::jetstream::Context,
    shutdown: &CancellationToken,
) -> Result<PullConsumer, BusError> {
    let queue = WorkQueueSettings {
        ack_wait: worker::ACK_WAIT,
        max_deliver: worker::MAX_DELIVER,
    };
    let requests = notification::requested_filter();
    careline_bus::setup::retrying(shutdown, || {
        careline_bus::ensure_consumer(js, CONSUMER, &requests, &queue)
    })
    .await
}
