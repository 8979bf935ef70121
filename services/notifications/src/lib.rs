//! The Careline notifications service: sends the emails other services ask
//! for on the bus (receipts, auto-replies, agent replies, surveys), at most
//! once per notification id, and serves `careline.v1.NotificationService`
//! (dead letters) over gRPC.
//!
//! - [`config`]: [`NotificationsConfig`], flags and environment.
//! - [`requests`]: the bus contract: subjects and publishing of requests and status events.
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
pub mod requests;
pub mod retry;
mod templates;
mod validate;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use careline_bus::{BusError, StreamSettings, TenantDirectory, TenantStore, WorkQueueSettings};
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
/// How long start-up retries setting up NATS (a new cluster electing leaders).
pub const NATS_SETUP_DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two NATS set-up attempts.
const NATS_SETUP_RETRY: Duration = Duration::from_millis(500);

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
    let redis = RedisConnection::connect(&config.common.redis_url)
        .await
        .map_err(|e| {
            NotificationError::Unavailable(format!(
                "cannot connect to Redis (--redis-url / CARELINE_REDIS_URL): {e}"
            ))
        })?;
    let nats = async_nats::connect(careline_bus::server_list(&config.common.nats_url))
        .await
        .map_err(|e| {
            NotificationError::Unavailable(format!(
                "cannot connect to NATS (--nats-url / CARELINE_NATS_URL): {e}"
            ))
        })?;
    let js = async_nats::jetstream::new(nats.clone());
    let (tenants, consumer) =
        set_up_nats(&js, config.common.nats_replicas, shutdown.token()).await?;
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
        .shutdown_grace(config.common.shutdown_grace())
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    for (task, name) in [(consuming, "notification worker"), (probe, "health probe")] {
        if let Err(error) = task.await {
            tracing::error!(%error, "{name} panicked");
        }
    }
    Ok(())
}

/// The event stream, the tenant directory and the work-queue consumer,
/// retried for [`NATS_SETUP_DEADLINE`] (a setting that can never work fails at once).
async fn set_up_nats(
    js: &async_nats::jetstream::Context,
    replicas: Option<usize>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(
    Arc<TenantDirectory>,
    async_nats::jetstream::consumer::PullConsumer,
)> {
    let streams = StreamSettings {
        replicas,
        ..StreamSettings::default()
    };
    let queue = WorkQueueSettings {
        ack_wait: worker::ACK_WAIT,
        max_deliver: worker::MAX_DELIVER,
    };
    let deadline = Instant::now() + NATS_SETUP_DEADLINE;
    loop {
        let attempt = async {
            careline_bus::ensure_streams_with(js, &streams).await?;
            let store = TenantStore::open(js, replicas).await?;
            let tenants = TenantDirectory::start(&store, shutdown).await?;
            let consumer =
                careline_bus::ensure_consumer(js, CONSUMER, &requests::requested_filter(), &queue)
                    .await?;
            Ok::<_, BusError>((Arc::new(tenants), consumer))
        };
        match attempt.await {
            Ok(ready) => return Ok(ready),
            Err(error @ BusError::Replicas { .. }) => return Err(error.into()),
            Err(error) if Instant::now() < deadline && !shutdown.is_cancelled() => {
                tracing::warn!(%error, "setting up NATS failed; retrying");
                tokio::time::sleep(NATS_SETUP_RETRY).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
