//! Careline email-intake: members' mail into interactions, agents' replies out.
//!
//! - [`config`]: [`EmailIntakeConfig`], flags and environment.
//! - [`smtp`]: the SMTP listener (STARTTLS, SIZE, recipients of tenants only)
//!   over its command state machine.
//! - [`inbox`]: [`Inbox`], makes a received message durable in JetStream
//!   before the sender is told it was taken.
//! - [`consumer`]: the durable JetStream consumer that hands each message to [`Intake`].
//! - [`intake`]: [`Intake`], parse, thread, create the interaction through the
//!   router, automatic answers, agent replies, the thread for the agent.
//! - [`message`] and [`trim`]: MIME parsing (mail-parser) and what the agent sees first.
//! - [`store`]: the thread store, email-intake's own Redis keys.
//! - [`router`]: the router's gRPC API as email-intake calls it.
//! - [`autoreply`]: RFC 3834 loop protection and the choice of automatic answer.
//! - `grpc`: the `careline.v1.EmailIntake` tonic adapter; `error`: the one error -> status table.
//!
//! [`serve`] runs it: the same function backs the binary, `careline up` and the tests.

#![forbid(unsafe_code)]

pub mod autoreply;
pub mod config;
pub mod consumer;
mod error;
mod grpc;
pub mod inbox;
pub mod intake;
pub mod message;
pub mod router;
pub mod smtp;
pub mod store;
pub mod trim;

use std::sync::Arc;

use anyhow::Context;
use careline_kit::{GrpcServer, RedisConnection, Shutdown, TenantAuth};
use careline_proto::v1::email_intake_server::EmailIntakeServer;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use config::EmailIntakeConfig;
pub use error::EmailError;
pub use inbox::{ENVELOPE_ALLOWANCE, Inbox};
pub use intake::Intake;

/// Largest gRPC request beyond the message itself.
const GRPC_OVERHEAD_BYTES: usize = 64 * 1024;

/// Binds `config.smtp_addr` and runs the service (gRPC on `listener`) until `shutdown`.
pub async fn serve(
    config: EmailIntakeConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let smtp = TcpListener::bind(config.smtp_addr).await.with_context(|| {
        format!(
            "cannot listen for SMTP on {} (in use? set --smtp-addr)",
            config.smtp_addr
        )
    })?;
    serve_with_smtp(config, listener, smtp, shutdown).await
}

/// [`serve`] with the SMTP listener already bound (tests and `careline up` bind port 0).
pub async fn serve_with_smtp(
    config: EmailIntakeConfig,
    listener: TcpListener,
    smtp_listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let tls = config
        .smtp_tls_cert
        .as_deref()
        .zip(config.smtp_tls_key.as_deref())
        .map(|(cert, key)| smtp::tls::acceptor(cert, key))
        .transpose()?;
    let transport_tls = config.common.tls.load()?;
    // URLs are not echoed: they may carry passwords.
    let redis = RedisConnection::connect(&config.common.redis_url, &transport_tls)
        .await
        .context("cannot connect to Redis (--redis-url / CARELINE_REDIS_URL)")?;
    let nats = careline_kit::nats_client::connect(&config.common).await?;
    let js = async_nats::jetstream::new(nats.clone());
    let tenants =
        careline_bus::setup::start_tenants(&js, config.common.nats_replicas, shutdown.token())
            .await
            .map(Arc::new)
            .context("setting up NATS (event stream, tenants)")?;
    let max_message_bytes = message_limit(config.max_message_bytes, nats.server_info().max_payload);
    let inbox = Inbox::new(careline_bus::Publisher::new(js.clone()), max_message_bytes);
    let store = store::ThreadStore::new(redis.clone());
    let intake = Intake {
        tenants: tenants.clone(),
        store: store.clone(),
        router: router::RouterGateway::new(
            &config.router_url,
            config.router_api_keys.clone(),
            &transport_tls,
        )?,
        js: js.clone(),
    };
    let (healthy, probe) =
        careline_kit::readiness::spawn_probe(redis, nats.clone(), shutdown.token().clone());
    let consumer = tokio::spawn(consumer::run(js, intake.clone(), shutdown.clone()));
    tracing::info!(addr = %smtp_listener.local_addr()?, max_message_bytes, starttls = tls.is_some(), "SMTP serving");
    let smtp = tokio::spawn(smtp::serve(
        smtp_listener,
        smtp::SmtpSettings {
            hostname: config.smtp_hostname.clone(),
            max_message_bytes,
            tls,
        },
        inbox.clone(),
        tenants.clone(),
        shutdown.clone(),
    ));
    let audit = careline_bus::audit::AuditLog::new(intake.js.clone(), "email-intake");
    let service = grpc::EmailIntakeService {
        inbox,
        intake,
        audit,
    };
    let server = InterceptedService::new(
        EmailIntakeServer::new(service)
            .max_decoding_message_size(max_message_bytes + GRPC_OVERHEAD_BYTES),
        TenantAuth::from_arc(tenants.clone()),
    );
    tracing::info!(addr = %listener.local_addr()?, "email-intake serving");
    GrpcServer::new()
        .add_service(server)
        .configure(&config.common)?
        .readiness(healthy)
        .serve(listener, shutdown.wait())
        .await?;
    careline_kit::service::join_tasks([
        (smtp, "SMTP listener"),
        (consumer, "email consumer"),
        (probe, "health probe"),
    ])
    .await;
    Ok(())
}

/// The largest message taken: the configured limit, lowered to what one NATS
/// message of this server can carry with the event around it.
pub fn message_limit(configured: usize, nats_max_payload: usize) -> usize {
    let carried = nats_max_payload.saturating_sub(ENVELOPE_ALLOWANCE);
    if configured > carried {
        tracing::info!(
            configured,
            carried,
            "--max-message-bytes is more than the NATS server's max_payload carries; \
             using the smaller limit (raise max_payload in the nats-server configuration)"
        );
    }
    configured.min(carried)
}
